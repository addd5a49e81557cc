//! pipe - Postfix-compatible delivery to external commands
//!
//! # Synopsis
//!
//! master.cf:
//! `mypipe unix - n n - - pipe flags=FR user=nobody argv=/path/prog ${sender} ${recipient}`
//!
//! # Description
//!
//! pipe hands each message of a delivery request to a command. The
//! service arguments are pipe(8)'s:
//!
//! - `flags=`: `F` a `From sender date` line first, `R` `Return-Path:`,
//!   `D` `Delivered-To:`, `O` `X-Original-To:`, `.` dot stuffing, `>`
//!   `>From ` quoting, `B` a blank line at the end, `h` lowercase domains,
//!   `u` lowercase local parts, `q` quote local parts in macros (`X`, `A`
//!   accepted and ignored);
//! - `user=name[:group]`: who runs the command (never root);
//! - `size=N`: bounce larger messages (5.2.3);
//! - `eol=\r\n`: line end written; `directory=`: working directory (the
//!   queue directory by default); `null_sender=` (MAILER-DAEMON);
//! - `argv=prog args...` last; each argument may use `${sender}`,
//!   `${recipient}`, `${original_recipient}`, `${user}`, `${extension}`,
//!   `${domain}`, `${mailbox}`, `${nexthop}`, `${queue_id}`, `${size}`,
//!   `${client_address}`, `${client_hostname}`, `${client_helo}`,
//!   `${client_protocol}`, `${sasl_username}` (also `$name`,
//!   `${name?text}`, `${name:text}`).
//!
//! Unlike Postfix, which runs a command once for all recipients of a
//! request (expanding `${recipient}` into one argument each), this pipe
//! runs the command once per recipient, as Postfix does with the
//! recommended `transport_destination_recipient_limit = 1`.
//!
//! Exit status 0 is `status=sent (delivered via SERVICE service)`; 75
//! (EX_TEMPFAIL) and 71 defer; other sysexits codes bounce with their
//! status (67 is 5.1.1 `user unknown`); any other status bounces with
//! 5.3.0 `Command died with status N: "prog"`; the first 200 printable
//! characters of the command's output follow in the text (`. Command
//! output: ...`). A command past the time limit is killed (whole process
//! group) and the message bounces.
//!
//! # Talks to
//!
//! Serves `private/SERVICE` (proto::deliver requests from qmgr); reads
//! queue files read-only; runs the command.
//!
//! # Security
//!
//! Runs as root (unpriv=n) only to start each command as the user=
//! account; as in Postfix, a user= with root's uid or gid, mail_owner's
//! uid or gid, or setgid_group's gid is refused at start.
//! Not started as root it runs commands as itself. Macro values come from
//! addresses and are passed as single arguments, never through a shell.
//!
//! # Diagnostics
//!
//! A bad master.cf argument list is fatal at start (`fatal: unknown flag:
//! Z`, `fatal: missing argv= command-line attribute`, `fatal: user=
//! command-line attribute specifies root privileges`, `... specifies mail
//! system owner postfix`), as is a bad SERVICE_time_limit (`fatal:
//! invalid SERVICE_time_limit parameter value 99999999999d > 2147483647s`).
//! Per recipient, a `to=` line with the outcome.
//!
//! # Configuration parameters
//!
//! - SERVICE_time_limit (command_time_limit, 1000s): time limit per
//!   command, 1s to 2147483647s.
//! - mail_owner (postfix), setgid_group (postdrop): ids user= may not use.
//! - recipient_delimiter (empty): ${user} and ${extension}.
//! - export_environment (TZ MAIL_CONFIG LANG): environment passed on.
//!
//! # See also
//!
//! pipe(8), master(5), local(8), the delivery crate.

mod args;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use args::PipeArgs;
use delivery::command::{self, Spec};
use delivery::headers::{Prepend, prepend_lines};
use delivery::privs::Ids;
use delivery::{Message, Outcome, copy};
use proto::deliver::Recipient;

/// What pipe knows after start.
struct Pipe {
    service: String,
    args: PipeArgs,
    ids: Option<Ids>,
    time_limit: Duration,
    delimiters: String,
    env: Vec<(String, String)>,
    directory: PathBuf,
}

fn main() {
    let (daemon, started) = ipc::daemon::start(|config, sargs| {
        let parsed = args::parse(&sargs.extra).map_err(|e| e.to_string())?;
        let ids = resolve_user(&parsed, &MailSystem::from_config(config))?;
        let time_limit = time_limit(config, &sargs.service_name)?;
        Ok((parsed, ids, time_limit))
    });
    let ctx = daemon.context();
    let (parsed, ids, time_limit) = started;
    let service = ctx.args.service_name.clone();
    let directory = PathBuf::from(
        parsed
            .directory
            .clone()
            .unwrap_or_else(|| ctx.config.str("queue_directory")),
    );
    let pipe = Pipe {
        service: if service.is_empty() {
            "pipe".into()
        } else {
            service
        },
        args: parsed,
        ids,
        time_limit,
        delimiters: ctx.config.str("recipient_delimiter"),
        env: environment(&ctx.config.str("export_environment")),
        directory,
    };
    daemon.single_server(move |stream, _ctx| {
        delivery::agent::serve(stream, &pipe.service, &mut |msg, rcpt| {
            let outcome = deliver(&pipe, msg, rcpt);
            msg.log(&rcpt.address, &rcpt.original, &pipe.service, &outcome);
            outcome
        });
    });
}

/// The ids pipe(8) refuses for user=: root's, mail_owner's and
/// setgid_group's (None when the account or group does not exist).
struct MailSystem {
    owner: String,
    owner_ids: Option<Ids>,
    setgid_group: String,
    setgid_gid: Option<u32>,
}

impl MailSystem {
    fn from_config(config: &config::Config) -> MailSystem {
        let owner = config.str("mail_owner");
        let owner_ids = nix::unistd::User::from_name(&owner)
            .ok()
            .flatten()
            .map(|u| Ids {
                uid: u.uid.as_raw(),
                gid: u.gid.as_raw(),
            });
        let setgid_group = config.str("setgid_group");
        let setgid_gid = nix::unistd::Group::from_name(&setgid_group)
            .ok()
            .flatten()
            .map(|g| g.gid.as_raw());
        MailSystem {
            owner,
            owner_ids,
            setgid_group,
            setgid_gid,
        }
    }
}

/// The user= account. As Postfix's pipe.c, refuses root's uid or gid,
/// the mail_owner's uid or gid and the setgid_group's gid (a command run
/// with them could change the queue). None when not root and no user= is
/// given (the command runs as the agent).
fn resolve_user(a: &PipeArgs, mail: &MailSystem) -> Result<Option<Ids>, String> {
    let root = delivery::privs::can_switch();
    let Some((name, group)) = &a.user else {
        return if root {
            Err("missing user= command-line attribute".into())
        } else {
            Ok(None)
        };
    };
    if !root {
        // The development instance runs commands as itself.
        return Ok(None);
    }
    let user = nix::unistd::User::from_name(name)
        .map_err(|e| format!("user= command-line attribute: {e}"))?
        .ok_or_else(|| format!("user= command-line attribute: unknown user: {name}"))?;
    let mut gid = user.gid.as_raw();
    if let Some(g) = group {
        gid = nix::unistd::Group::from_name(g)
            .map_err(|e| format!("user= command-line attribute: {e}"))?
            .ok_or_else(|| format!("user= command-line attribute: unknown group: {g}"))?
            .gid
            .as_raw();
    }
    check_ids(
        Ids {
            uid: user.uid.as_raw(),
            gid,
        },
        mail,
    )
    .map(Some)
}

/// pipe.c's checks of the user= ids, in its order and words.
fn check_ids(ids: Ids, mail: &MailSystem) -> Result<Ids, String> {
    let owner = mail.owner_ids;
    if ids.uid == 0 {
        return Err("user= command-line attribute specifies root privileges".into());
    }
    if owner.is_some_and(|o| o.uid == ids.uid) {
        return Err(format!(
            "user= command-line attribute specifies mail system owner {}",
            mail.owner
        ));
    }
    if ids.gid == 0 {
        return Err("user= command-line attribute specifies privileged group id 0".into());
    }
    if owner.is_some_and(|o| o.gid == ids.gid) {
        return Err(format!(
            "user= command-line attribute specifies mail system owner {} group id {}",
            mail.owner, ids.gid
        ));
    }
    if mail.setgid_gid == Some(ids.gid) {
        return Err(format!(
            "user= command-line attribute specifies mail system {} group id {}",
            mail.setgid_group, ids.gid
        ));
    }
    Ok(ids)
}

/// SERVICE_time_limit (a per-transport parameter, default
/// command_time_limit), with command_time_limit's syntax and bounds
/// (1s to 2^31-1 seconds).
fn time_limit(config: &config::Config, service: &str) -> Result<Duration, String> {
    let name = format!("{service}_time_limit");
    let Some(value) = config.get(&name).filter(|_| !service.is_empty()) else {
        return Ok(config.time("command_time_limit"));
    };
    let kind = config::params::lookup("command_time_limit").map_or(
        config::Kind::Time {
            unit: 's',
            min: 1,
            max: i32::MAX as u64,
        },
        |p| p.kind,
    );
    config::value::check(&kind, &value).map_err(|p| p.message(&name, &value))?;
    let secs = config::value::parse_time(&value, 's').unwrap_or(0);
    Ok(Duration::from_secs(secs))
}

/// PATH plus the export_environment names (NAME or NAME=value).
fn environment(export: &str) -> Vec<(String, String)> {
    let mut env = vec![("PATH".to_string(), "/usr/bin:/bin".to_string())];
    for item in export.split([' ', ',', '\t']).filter(|s| !s.is_empty()) {
        match item.split_once('=') {
            Some((k, v)) => env.push((k.to_string(), v.to_string())),
            None => {
                if let Ok(v) = std::env::var(item) {
                    env.push((item.to_string(), v));
                }
            }
        }
    }
    env
}

/// Delivers to one recipient.
fn deliver(p: &Pipe, msg: &Message<'_>, rcpt: &Recipient) -> Outcome {
    if let Some(limit) = p.args.size_limit
        && msg.size() > limit
    {
        return Outcome::bounce("5.2.3", "message too large");
    }
    let values = Macros::new(p, msg, rcpt);
    let mut argv = Vec::with_capacity(p.args.argv.len());
    for arg in &p.args.argv {
        match delivery::macros::expand(arg, &|n| values.get(n)) {
            Ok(a) => argv.push(a),
            Err(e) => {
                maillog::warning!("{}: argv= {}: {e}", p.service, maillog::printable(arg, 100));
                return Outcome::defer("4.3.5", "mail system configuration error");
            }
        }
    }
    let f = p.args.flags;
    let sender = values.sender();
    let options = copy::Options {
        from_line: f.from_line.then(|| {
            let now = SystemTime::now();
            mailstore::mbox::from_line(&sender, now, mailstore::localtime::utc_offset(now))
        }),
        prepend: prepend_lines(
            Prepend {
                return_path: f.return_path,
                original_to: f.original_to,
                delivered_to: f.delivered_to,
            },
            msg.sender(),
            &rcpt.original,
            &rcpt.address,
        ),
        quote_from: f.quote_from,
        dot_stuff: f.dot_stuff,
        eol: p.args.eol.clone(),
        blank_line: f.blank_line,
    };
    let spec = Spec {
        argv,
        env: p.env.clone(),
        cwd: Some(p.directory.clone()),
        ids: p.ids,
        time_limit: p.time_limit,
    };
    let program = p.args.argv.first().cloned().unwrap_or_default();
    // A verify-only request (a probe): run nothing, as Postfix's pipe.
    if msg.verify_only() {
        return Outcome::sent(format!("delivers to command: {program}"));
    }
    match command::run(&spec, &mut msg.content(), &options) {
        Ok(done) => {
            let mut o = command::outcome(
                &done,
                &program,
                &format!("delivered via {} service", p.service),
            );
            if o.dsn == "2.0.0" && !done.output.is_empty() {
                o.text = format!("{} ({})", o.text, done.output);
            }
            o
        }
        Err(e) => Outcome::defer(
            "4.3.0",
            format!("cannot run {}: {e}", maillog::printable(&program, 100)),
        ),
    }
}

/// The macro values for one recipient.
struct Macros<'a> {
    p: &'a Pipe,
    msg: &'a Message<'a>,
    rcpt: &'a Recipient,
}

impl<'a> Macros<'a> {
    fn new(p: &'a Pipe, msg: &'a Message<'a>, rcpt: &'a Recipient) -> Macros<'a> {
        Macros { p, msg, rcpt }
    }

    fn sender(&self) -> String {
        let s = self.msg.sender();
        if s.is_empty() {
            return self.p.args.null_sender.clone();
        }
        if self.p.args.flags.quote {
            address::quote_822_local(s)
        } else {
            s.to_string()
        }
    }

    /// An address with the h, u and q flags applied.
    fn address(&self, addr: &str) -> String {
        let f = self.p.args.flags;
        let (local, domain) = split(addr);
        let local = if f.fold_user {
            local.to_lowercase()
        } else {
            local.to_string()
        };
        let domain = domain.map(|d| {
            if f.fold_host {
                d.to_lowercase()
            } else {
                d.to_string()
            }
        });
        let joined = match &domain {
            Some(d) => format!("{local}@{d}"),
            None => local,
        };
        if f.quote {
            address::quote_822_local(&joined)
        } else {
            joined
        }
    }

    fn get(&self, name: &str) -> Option<String> {
        let f = self.p.args.flags;
        let (local, domain) = split(&self.rcpt.address);
        let local = if f.fold_user {
            local.to_lowercase()
        } else {
            local.to_string()
        };
        let ext = address::split_extension(&local, &self.p.delimiters);
        let attr = |n: &str| self.msg.attribute(n).unwrap_or_default().to_string();
        Some(match name {
            "sender" => self.sender(),
            "recipient" => self.address(&self.rcpt.address),
            "original_recipient" => self.address(&self.rcpt.original),
            "user" => ext
                .map(|e| e.base.to_string())
                .unwrap_or_else(|| local.clone()),
            "extension" => ext.map(|e| e.extension.to_string()).unwrap_or_default(),
            "mailbox" => local.clone(),
            "domain" => {
                let d = domain.unwrap_or_default();
                if f.fold_host {
                    d.to_lowercase()
                } else {
                    d.to_string()
                }
            }
            "nexthop" => {
                let n = &self.msg.request.nexthop;
                if f.fold_host {
                    n.to_lowercase()
                } else {
                    n.clone()
                }
            }
            "queue_id" => self.msg.queue_id().to_string(),
            "size" => self.msg.size().to_string(),
            "client_address" => attr("client_address"),
            "client_hostname" => attr("client_name"),
            "client_helo" => attr("helo_name"),
            "client_protocol" => attr("protocol"),
            "client_port" => attr("client_port"),
            "sasl_method" => attr("sasl_method"),
            "sasl_username" => attr("sasl_username"),
            "sasl_sender" => attr("sasl_sender"),
            _ => return None,
        })
    }
}

/// Local part and domain of an internal-form address (split at the last `@`).
fn split(addr: &str) -> (&str, Option<&str>) {
    match addr.rfind('@') {
        Some(at) => (addr.get(..at).unwrap_or_default(), addr.get(at + 1..)),
        None => (addr, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(main_cf: &str) -> (config::Config, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("main.cf"), main_cf).unwrap();
        (config::Config::load(dir.path()).unwrap(), dir)
    }

    #[test]
    fn time_limit_values_and_bounds() {
        let (c, _d) = config("p_time_limit = 2m\nq_time_limit = 10\n");
        assert_eq!(time_limit(&c, "p"), Ok(Duration::from_secs(120)));
        assert_eq!(time_limit(&c, "q"), Ok(Duration::from_secs(10)));
        assert_eq!(time_limit(&c, "other"), Ok(Duration::from_secs(1000)));
        for (value, message) in [
            (
                "99999999999d",
                "invalid p_time_limit parameter value 99999999999d > 2147483647s",
            ),
            (
                "99999999999",
                "invalid p_time_limit parameter value 99999999999 > 2147483647s",
            ),
            (
                "18446744073709551615w",
                "parameter p_time_limit: bad time value or unit: 18446744073709551615w",
            ),
            ("0", "invalid p_time_limit parameter value 0 < 1s"),
            ("x", "parameter p_time_limit: bad time value or unit: x"),
        ] {
            let (c, _d) = config(&format!("p_time_limit = {value}\n"));
            assert_eq!(time_limit(&c, "p"), Err(message.to_string()), "{value}");
        }
    }

    #[test]
    fn user_ids_of_the_mail_system_are_refused() {
        let mail = MailSystem {
            owner: "postfix".into(),
            owner_ids: Some(Ids { uid: 100, gid: 101 }),
            setgid_group: "postdrop".into(),
            setgid_gid: Some(102),
        };
        let ids = |uid, gid| check_ids(Ids { uid, gid }, &mail);
        assert_eq!(
            ids(1000, 1000),
            Ok(Ids {
                uid: 1000,
                gid: 1000
            })
        );
        for (uid, gid, message) in [
            (
                0,
                1000,
                "user= command-line attribute specifies root privileges",
            ),
            (
                100,
                1000,
                "user= command-line attribute specifies mail system owner postfix",
            ),
            (
                1000,
                0,
                "user= command-line attribute specifies privileged group id 0",
            ),
            (
                1000,
                101,
                "user= command-line attribute specifies mail system owner postfix group id 101",
            ),
            (
                1000,
                102,
                "user= command-line attribute specifies mail system postdrop group id 102",
            ),
        ] {
            assert_eq!(ids(uid, gid), Err(message.to_string()));
        }
    }

    #[test]
    fn split_at_last_at() {
        assert_eq!(split("a@b@c"), ("a@b", Some("c")));
        assert_eq!(split("a"), ("a", None));
    }

    #[test]
    fn environment_has_path_and_fixed_values() {
        let env = environment("LANG=C FOO_UNSET_XYZ");
        assert!(env.contains(&("PATH".into(), "/usr/bin:/bin".into())));
        assert!(env.contains(&("LANG".into(), "C".into())));
        assert!(!env.iter().any(|(k, _)| k == "FOO_UNSET_XYZ"));
    }
}
