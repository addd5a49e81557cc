//! Milters in cleanup: smtpd_milters for mail from smtpd (the list comes
//! from smtpd in the `smtpd_milters` Begin attribute, so that a
//! master.cf `-o smtpd_milters=` of one smtpd service counts) and
//! non_smtpd_milters for mail from pickup (sendmail). Notifications
//! (bounces) and mail with `receive_override_options = no_milters` see
//! no milter.
//!
//! Design: smtpd streams each message to cleanup while it arrives, and
//! cleanup writes the queue file; so the whole milter conversation runs
//! here, at end of message, where the modifications can be applied
//! before the queue file is written. While milters are configured,
//! cleanup holds the processed message in memory (bounded by
//! message_size_limit) instead of streaming it to the queue file; the
//! milters see the connect, HELO, MAIL, RCPT, DATA, header, end of
//! header, body and end of message events in order, replayed from what
//! smtpd told cleanup. smtpd itself asks the milters about each
//! recipient at RCPT TO (connect, HELO, MAIL, RCPT, then goodbye:
//! `milter::check_recipient`), so a refusal there reaches the client at
//! that command, as in Postfix; here a refusal at those events still
//! drops the recipient (none left refuses the message).

use std::collections::HashMap;
use std::path::Path;

use proto::cleanup::{Begin, flags};

/// Begin attribute: smtpd's smtpd_milters value.
pub(crate) const SMTPD_MILTERS: &str = "smtpd_milters";

/// Begin flag bit set by a client whose receive_override_options says
/// no_milters.
pub(crate) const NO_MILTERS_ATTR: &str = "no_milters";

/// The milter settings cleanup reads.
#[derive(Debug)]
pub(crate) struct Milters {
    settings: milter::Settings,
    non_smtpd: String,
    daemon_name: String,
    version: String,
    myhostname: String,
}

impl Milters {
    /// Reads the milter_* parameters and non_smtpd_milters.
    pub(crate) fn from_config(cfg: &config::Config) -> Milters {
        let m = Milters {
            settings: milter::Settings::from_config(cfg),
            non_smtpd: cfg.str("non_smtpd_milters"),
            daemon_name: cfg.str("milter_macro_daemon_name"),
            version: cfg.str("milter_macro_v"),
            myhostname: cfg.str("myhostname"),
        };
        if let Err(e) = milter::parse_list(&m.non_smtpd, &m.settings) {
            maillog::warning!("non_smtpd_milters: {e}");
        }
        m
    }

    /// The milters for this message (none for notifications and when
    /// the client said no_milters); a bad list is an error.
    pub(crate) fn for_message(&self, b: &Begin) -> Result<Vec<milter::Spec>, String> {
        if b.flags & flags::NOTIFICATION != 0 || attr(b, NO_MILTERS_ATTR).is_some() {
            return Ok(Vec::new());
        }
        let from_smtpd = b.flags & flags::LOCAL_SUBMISSION == 0
            && attr(b, "client_address").is_some_and(|a| !a.is_empty());
        let list = if from_smtpd {
            attr(b, SMTPD_MILTERS).unwrap_or_default()
        } else {
            self.non_smtpd.as_str()
        };
        milter::parse_list(list, &self.settings).map_err(|e| e.to_string())
    }

    /// What the milters are told, with Postfix's macro names.
    pub(crate) fn facts(&self, b: &Begin, queue_id: &str, queue_dir: &Path) -> milter::Facts {
        let client_addr = attr(b, "client_address").unwrap_or_default().to_string();
        let local = client_addr.is_empty();
        let client_name = if local {
            "localhost".to_string()
        } else {
            attr(b, "client_name").unwrap_or("unknown").to_string()
        };
        let client_addr = if local {
            "127.0.0.1".to_string()
        } else {
            client_addr
        };
        let helo = match attr(b, "helo_name") {
            Some(h) => h.to_string(),
            None if local => "localhost".to_string(),
            None => String::new(),
        };
        let mut m: HashMap<String, String> = HashMap::new();
        let mut put = |k: &str, v: &str| {
            m.insert(k.to_string(), v.to_string());
        };
        put("j", &self.myhostname);
        put("{daemon_name}", &self.daemon_name);
        put("v", &self.version);
        put("i", queue_id);
        put("_", &format!("{client_name} [{client_addr}]"));
        put("{client_addr}", &client_addr);
        put("{client_name}", &client_name);
        put("{client_ptr}", &client_name);
        put("{client_connections}", "0");
        if let Some(p) = attr(b, "client_port") {
            put("{client_port}", p);
        }
        if let Some(a) = attr(b, "server_address") {
            put("{daemon_addr}", a);
        }
        if let Some(p) = attr(b, "server_port") {
            put("{daemon_port}", p);
        }
        if let Some(u) = attr(b, "sasl_username") {
            put("{auth_authen}", u);
            put("{auth_type}", attr(b, "sasl_method").unwrap_or("PLAIN"));
        }
        if let Some(t) = attr(b, "tls_version") {
            put("{tls_version}", t);
        }
        if let Some(c) = attr(b, "tls_cipher") {
            put("{cipher}", c);
        }
        if let Some(c) = attr(b, "tls_cipher_bits") {
            put("{cipher_bits}", c);
        }
        milter::Facts {
            client_name,
            client_addr,
            client_port: attr(b, "client_port")
                .and_then(|p| p.parse().ok())
                .unwrap_or(0),
            helo,
            macros: m,
            queue_dir: queue_dir.to_path_buf(),
        }
    }
}

/// Splits a milter reply (`550 5.7.1 text`) into the enhanced status and
/// text cleanup's Rejected carries (smtpd builds the SMTP code from the
/// status class).
pub(crate) fn split_reply(reply: &str) -> (String, String) {
    let mut words = reply.splitn(3, ' ');
    let code = words.next().unwrap_or("451");
    let class = if code.starts_with('5') { '5' } else { '4' };
    let rest: Vec<&str> = words.collect();
    match rest.as_slice() {
        [dsn, text] if is_dsn(dsn) && dsn.starts_with(class) => (dsn.to_string(), text.to_string()),
        [dsn, text] if is_dsn(dsn) => (
            format!("{class}{}", dsn.get(1..).unwrap_or_default()),
            text.to_string(),
        ),
        _ => (format!("{class}.7.1"), rest.join(" ").trim().to_string()),
    }
}

fn is_dsn(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

fn attr<'a>(b: &'a Begin, name: &str) -> Option<&'a str> {
    b.attributes
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_split_into_status_and_text() {
        assert_eq!(
            split_reply("554 5.7.1 Gtube pattern"),
            ("5.7.1".into(), "Gtube pattern".into())
        );
        assert_eq!(
            split_reply("451 4.7.1 Service unavailable - try again later"),
            (
                "4.7.1".into(),
                "Service unavailable - try again later".into()
            )
        );
        assert_eq!(
            split_reply("550 go away"),
            ("5.7.1".into(), "go away".into())
        );
        assert_eq!(split_reply("550 4.7.1 odd"), ("5.7.1".into(), "odd".into()));
    }

    #[test]
    fn which_list_for_which_message() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config::Config::from_text(dir.path(), "non_smtpd_milters = inet:127.0.0.1:1\n")
            .unwrap();
        let m = Milters::from_config(&cfg);
        let mut b = Begin {
            flags: flags::LOCAL_SUBMISSION,
            sender: String::new(),
            full_name: None,
            attributes: vec![],
        };
        assert_eq!(m.for_message(&b).unwrap().len(), 1);
        b.flags = 0;
        b.attributes = vec![
            ("client_address".into(), "192.0.2.1".into()),
            (
                SMTPD_MILTERS.into(),
                "inet:127.0.0.1:2, inet:127.0.0.1:3".into(),
            ),
        ];
        assert_eq!(m.for_message(&b).unwrap().len(), 2);
        b.attributes.push((NO_MILTERS_ATTR.into(), "1".into()));
        assert!(m.for_message(&b).unwrap().is_empty());
        b.flags = flags::NOTIFICATION | flags::LOCAL_SUBMISSION;
        assert!(m.for_message(&b).unwrap().is_empty());
        let f = m.facts(
            &Begin {
                flags: flags::LOCAL_SUBMISSION,
                sender: String::new(),
                full_name: None,
                attributes: vec![],
            },
            "QID",
            dir.path(),
        );
        assert_eq!(
            (f.client_name.as_str(), f.helo.as_str()),
            ("localhost", "localhost")
        );
        assert_eq!(f.macros.get("i").map(String::as_str), Some("QID"));
        // What smtpd passes for a TLS client becomes Postfix's macros.
        let f = m.facts(
            &Begin {
                flags: 0,
                sender: String::new(),
                full_name: None,
                attributes: [
                    ("client_address", "192.0.2.1"),
                    ("client_port", "40123"),
                    ("tls_version", "TLSv1.3"),
                    ("tls_cipher", "TLS_AES_256_GCM_SHA384"),
                    ("tls_cipher_bits", "256"),
                ]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            },
            "QID",
            dir.path(),
        );
        let get = |k: &str| f.macros.get(k).map(String::as_str);
        assert_eq!(f.client_port, 40123);
        assert_eq!(get("{client_port}"), Some("40123"));
        assert_eq!(get("{tls_version}"), Some("TLSv1.3"));
        assert_eq!(get("{cipher}"), Some("TLS_AES_256_GCM_SHA384"));
        assert_eq!(get("{cipher_bits}"), Some("256"));
    }
}
