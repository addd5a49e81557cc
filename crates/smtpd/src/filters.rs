//! What smtpd tells cleanup about mail filters: the smtpd_milters list
//! (cleanup runs the milters, see cleanup's `milters` module),
//! content_filter (kept in the queue file; qmgr sends the mail to that
//! transport instead of its destination) and receive_override_options
//! (flags for cleanup), all as this service's main.cf and `-o` options
//! set them.

use std::collections::HashMap;
use std::path::Path;

use config::Config;
use proto::cleanup::flags;

use crate::reply::Reply;
use crate::restrict::{Facts, Verdict};

/// receive_override_options words.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReceiveOverrides {
    /// no_address_mappings: no canonical, virtual alias or BCC mapping.
    pub no_address_mappings: bool,
    /// no_header_body_checks: no header_checks or body_checks.
    pub no_header_body_checks: bool,
    /// no_milters: no smtpd_milters or non_smtpd_milters.
    pub no_milters: bool,
    /// no_unknown_recipient_checks: no smtpd_reject_unlisted_recipient.
    pub no_unknown_recipient_checks: bool,
}

impl ReceiveOverrides {
    /// Parses receive_override_options; unknown words are logged.
    pub fn parse(value: &str) -> ReceiveOverrides {
        let mut o = ReceiveOverrides::default();
        for w in value
            .split([',', ' ', '\t', '\n'])
            .filter(|w| !w.is_empty())
        {
            match w.to_ascii_lowercase().as_str() {
                "no_address_mappings" => o.no_address_mappings = true,
                "no_header_body_checks" => o.no_header_body_checks = true,
                "no_milters" => o.no_milters = true,
                "no_unknown_recipient_checks" => o.no_unknown_recipient_checks = true,
                // 8-bit conversion is not done here; nothing to turn off.
                "no_8bit_conversion" => {}
                other => maillog::warning!(
                    "receive_override_options: unknown option \"{}\"",
                    maillog::printable(other, 50)
                ),
            }
        }
        o
    }
}

/// The filter settings of one smtpd service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterSettings {
    /// smtpd_milters, each entry with this service's milter_* settings.
    pub milters: String,
    /// The same, parsed, for the SMTP-time recipient check.
    pub milter_specs: Vec<milter::Spec>,
    /// Macro values every milter gets: `j`, `{daemon_name}`, `v`.
    pub milter_macros: Vec<(String, String)>,
    /// content_filter (`transport:nexthop`, empty: none).
    pub content_filter: String,
    /// receive_override_options.
    pub overrides: ReceiveOverrides,
}

impl FilterSettings {
    /// Reads smtpd_milters, content_filter and receive_override_options.
    /// A bad smtpd_milters list is logged here; cleanup then refuses the
    /// mail with a temporary error (the milter default), never accepting
    /// it unfiltered.
    pub fn from_config(cfg: &Config) -> FilterSettings {
        let milters = cfg.str("smtpd_milters");
        let base = milter::Settings::from_config(cfg);
        // Each entry carries this service's milter_* settings, so that a
        // master.cf `-o milter_default_action=` of this smtpd counts in
        // cleanup, which talks to the milters.
        let (milters, milter_specs) = match milter::parse_list(&milters, &base) {
            Ok(list) => (
                list.iter()
                    .map(entry_with_settings)
                    .collect::<Vec<_>>()
                    .join(", "),
                list,
            ),
            Err(e) => {
                maillog::error!("smtpd_milters: {e}");
                (milters.trim().to_string(), Vec::new())
            }
        };
        let overrides = ReceiveOverrides::parse(&cfg.str("receive_override_options"));
        FilterSettings {
            milters,
            milter_specs: if overrides.no_milters {
                Vec::new()
            } else {
                milter_specs
            },
            milter_macros: vec![
                ("j".into(), cfg.str("myhostname")),
                ("{daemon_name}".into(), cfg.str("milter_macro_daemon_name")),
                ("v".into(), cfg.str("milter_macro_v")),
            ],
            content_filter: cfg.str("content_filter").trim().to_string(),
            overrides,
        }
    }

    /// SMTP-time milter check of one recipient that the restrictions let
    /// in (Postfix's milters at RCPT TO): a refusal replaces the verdict.
    /// The whole message goes through the milters again in cleanup.
    pub fn check_recipient(&self, v: Verdict, f: &Facts<'_>, queue_dir: &Path) -> Verdict {
        if self.milter_specs.is_empty() || matches!(v, Verdict::Reject(_) | Verdict::Discard(_)) {
            return v;
        }
        let Some(rcpt) = f.recipient else { return v };
        let mut macros: HashMap<String, String> = self.milter_macros.iter().cloned().collect();
        let addr = f.client_addr.to_string();
        macros.insert("{client_addr}".into(), addr.clone());
        macros.insert("{client_name}".into(), f.client_name.to_string());
        macros.insert("_".into(), format!("{} [{addr}]", f.client_name));
        if let Some(u) = f.sasl_username {
            macros.insert("{auth_authen}".into(), u.to_string());
        }
        let facts = milter::Facts {
            client_name: f.client_name.to_string(),
            client_addr: addr,
            client_port: 0,
            helo: f.helo.unwrap_or_default().to_string(),
            macros,
            queue_dir: queue_dir.to_path_buf(),
        };
        let sender = f.sender.unwrap_or_default();
        match milter::check_recipient(&self.milter_specs, &facts, sender, rcpt) {
            Some(reply) => Verdict::Reject(milter_reply(&reply)),
            None => v,
        }
    }
}

/// `550 5.7.1 text` as a reply.
fn milter_reply(text: &str) -> Reply {
    let code = text
        .get(..3)
        .and_then(|c| c.parse::<u16>().ok())
        .filter(|c| (400..600).contains(c))
        .unwrap_or(451);
    let rest = text.get(3..).unwrap_or_default().trim_start();
    Reply::new(code, None, rest.to_string())
}

impl FilterSettings {
    /// Adds the Begin attributes and flags for cleanup.
    pub fn begin(&self, attributes: &mut Vec<(String, String)>, begin_flags: &mut u32) {
        if !self.milters.is_empty() && !self.overrides.no_milters {
            attributes.push(("smtpd_milters".into(), self.milters.clone()));
        }
        if self.overrides.no_milters {
            attributes.push(("no_milters".into(), "1".into()));
        }
        if !self.content_filter.is_empty() {
            attributes.push(("content_filter".into(), self.content_filter.clone()));
        }
        if self.overrides.no_address_mappings {
            *begin_flags |= flags::NO_ADDRESS_MAPS;
        }
        if self.overrides.no_header_body_checks {
            *begin_flags |= flags::NO_CHECKS;
        }
    }
}

/// `{ address, default_action=.., connect_timeout=.., ... }`.
fn entry_with_settings(m: &milter::Spec) -> String {
    let s = &m.settings;
    let action = match s.default_action {
        milter::DefaultAction::Accept => "accept",
        milter::DefaultAction::Tempfail => "tempfail",
        milter::DefaultAction::Reject => "reject",
        milter::DefaultAction::Quarantine => "quarantine",
    };
    format!(
        "{{ {}, default_action={action}, connect_timeout={}s, command_timeout={}s, content_timeout={}s, protocol={} }}",
        m.name,
        s.connect_timeout.as_secs(),
        s.command_timeout.as_secs(),
        s.content_timeout.as_secs(),
        s.protocol
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_and_flags() {
        let dir = std::path::Path::new("/nonexistent");
        let cfg = Config::from_text(
            dir,
            "smtpd_milters = inet:127.0.0.1:8891\ncontent_filter = smtp:[127.0.0.1]:10024\n",
        )
        .unwrap();
        let f = FilterSettings::from_config(&cfg);
        let (mut a, mut fl) = (Vec::new(), 0);
        f.begin(&mut a, &mut fl);
        assert_eq!(
            a,
            [
                (
                    "smtpd_milters".to_string(),
                    "{ inet:127.0.0.1:8891, default_action=tempfail, connect_timeout=30s, \
                     command_timeout=30s, content_timeout=300s, protocol=6 }"
                        .to_string()
                ),
                (
                    "content_filter".to_string(),
                    "smtp:[127.0.0.1]:10024".to_string()
                )
            ]
        );
        assert_eq!(fl, 0);
        let cfg = Config::from_text(
            dir,
            "smtpd_milters = inet:127.0.0.1:8891\nreceive_override_options = no_unknown_recipient_checks,no_header_body_checks,no_milters,no_address_mappings\n",
        )
        .unwrap();
        let f = FilterSettings::from_config(&cfg);
        let (mut a, mut fl) = (Vec::new(), 0);
        f.begin(&mut a, &mut fl);
        assert_eq!(a, [("no_milters".to_string(), "1".to_string())]);
        assert_eq!(fl, flags::NO_ADDRESS_MAPS | flags::NO_CHECKS);
        assert!(f.overrides.no_unknown_recipient_checks);
    }
}
