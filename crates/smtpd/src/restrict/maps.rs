//! The tables behind reject_unlisted_recipient, opened before the
//! chroot, and the pooled trivial-rewrite client that resolves addresses.

use super::*;

impl RcptMaps {
    pub(super) fn open(cfg: &config::Config) -> RcptMaps {
        let fl = tables::Flags::default();
        let maps = |name: &str| -> Result<tables::Maps, String> {
            let list: Vec<String> = tables::split_list(&cfg.str(name))
                .into_iter()
                .map(|s| s.strip_prefix("proxy:").unwrap_or(s).to_string())
                .collect();
            tables::Maps::open(&list.join(" "), fl).map_err(|e| {
                maillog::warning!("{name}: {e}");
                format!("{name}: {e}")
            })
        };
        let mut local = Vec::new();
        let mut local_passwd = false;
        for spec in tables::split_list(&cfg.str("local_recipient_maps")) {
            let spec = spec.strip_prefix("proxy:").unwrap_or(spec);
            if spec == "unix:passwd.byname" {
                local_passwd = true;
            }
            local.push(tables::open(spec, fl).map_err(|e| {
                maillog::warning!("local_recipient_maps: {spec}: {e}");
                format!("{spec}: {e}")
            }));
        }
        let local_users = local_passwd
            .then(|| std::fs::read_to_string("/etc/passwd").ok())
            .flatten()
            .map(|t| {
                t.lines()
                    .filter_map(|l| l.split(':').next())
                    .filter(|n| !n.is_empty() && !n.starts_with('#'))
                    .map(str::to_lowercase)
                    .collect()
            });
        let canonical = {
            let list = format!(
                "{} {}",
                cfg.str("canonical_maps"),
                cfg.str("recipient_canonical_maps")
            );
            tables::Maps::open(&list, fl).map_err(|e| e.to_string())
        };
        RcptMaps {
            local,
            local_users,
            local_passwd,
            virtual_mailbox: maps("virtual_mailbox_maps"),
            virtual_alias: maps("virtual_alias_maps"),
            relay: maps("relay_recipient_maps"),
            canonical,
            show_table: cfg.bool("show_user_unknown_table_name"),
        }
    }
}

impl RewriteClient {
    pub(super) fn resolve(
        &self,
        dir: &std::path::Path,
        sender: &str,
        addr: &str,
    ) -> Result<Resolved, String> {
        let key = (sender.to_string(), addr.to_string());
        if let Some(r) = self.recent.get(&key) {
            return Ok(r);
        }
        let pooled = self.idle.lock().ok().and_then(|mut v| v.pop());
        let mut s = match pooled {
            Some(s) => s,
            None => proto::connect(dir, proto::rewrite::SERVICE).map_err(|e| e.to_string())?,
        };
        // One more try on a new connection: a pooled one may have been
        // closed, and a retiring trivial-rewrite may drop even a new one.
        let mut result = Self::exchange(&mut s, sender, addr);
        // A retiring trivial-rewrite hangs up between two requests, so
        // even a fresh connection may fail once more (shell: several tries).
        for _ in 0..4 {
            if result.is_ok() {
                break;
            }
            s = proto::connect(dir, proto::rewrite::SERVICE).map_err(|e| e.to_string())?;
            result = Self::exchange(&mut s, sender, addr);
        }
        let r = result?;
        if let Ok(mut v) = self.idle.lock()
            && v.len() < REWRITE_POOL
        {
            v.push(s);
        }
        // A failed lookup is asked again next time, and so is an address
        // in none of our domains: a domain added to a table (a database
        // row) is served at once.
        if r.flags & proto::rewrite::flags::DEFER == 0 && r.class != AddressClass::Default {
            self.recent.put(key, r.clone());
        }
        Ok(r)
    }

    fn exchange(
        s: &mut std::os::unix::net::UnixStream,
        sender: &str,
        addr: &str,
    ) -> Result<Resolved, String> {
        use proto::rewrite::{Context, Reply, Request};
        let timeout = Some(std::time::Duration::from_secs(30));
        s.set_read_timeout(timeout).map_err(|e| e.to_string())?;
        proto::send(
            s,
            &Request::Rewrite {
                context: Context::Local,
                address: addr.to_string(),
            },
        )
        .map_err(|e| e.to_string())?;
        let rewritten = match proto::recv(s).map_err(|e| e.to_string())? {
            Reply::Rewritten { address } => address,
            other => return Err(format!("unexpected reply {other:?}")),
        };
        proto::send(
            s,
            &Request::Resolve {
                sender: sender.to_string(),
                address: rewritten,
            },
        )
        .map_err(|e| e.to_string())?;
        match proto::recv(s).map_err(|e| e.to_string())? {
            Reply::Resolved {
                recipient,
                class,
                flags,
                ..
            } => Ok(Resolved {
                address: recipient,
                class,
                flags,
            }),
            other => Err(format!("unexpected reply {other:?}")),
        }
    }
}
