//! The configuration cleanup works with, read once at startup (before the
//! jail, so that table files outside the queue directory can be opened).

use std::collections::HashSet;

use config::Config;
use tables::{Flags, Maps};

/// Postfix's limit on canonical map nesting (cleanup_map11 MAX_RECURSION).
pub(crate) const CANONICAL_NESTING: usize = 10;

/// Most recipients taken from headers with sendmail -t
/// (Postfix's extract_recipient_limit).
pub(crate) const EXTRACT_RECIPIENT_LIMIT: usize = 10_240;

/// Which of envelope/header sender/recipient an address class list names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Classes {
    /// envelope_sender.
    pub(crate) env_sender: bool,
    /// envelope_recipient.
    pub(crate) env_recipient: bool,
    /// header_sender.
    pub(crate) hdr_sender: bool,
    /// header_recipient.
    pub(crate) hdr_recipient: bool,
}

impl Classes {
    /// Parses `envelope_sender, header_recipient, ...`.
    pub(crate) fn parse(list: &str) -> Classes {
        let mut c = Classes::default();
        for word in list
            .split(|ch: char| ch == ',' || ch.is_whitespace())
            .filter(|w| !w.is_empty())
        {
            match word.to_ascii_lowercase().as_str() {
                "envelope_sender" => c.env_sender = true,
                "envelope_recipient" => c.env_recipient = true,
                "header_sender" => c.hdr_sender = true,
                "header_recipient" => c.hdr_recipient = true,
                other => {
                    maillog::warning!("unknown address class: {}", maillog::printable(other, 100))
                }
            }
        }
        c
    }
}

/// Everything cleanup reads from main.cf.
#[derive(Debug)]
pub(crate) struct Settings {
    /// myhostname.
    pub(crate) myhostname: String,
    /// mail_name (`Postfix`).
    pub(crate) mail_name: String,
    /// mydestination entries that are plain domain names (lowercase), plus
    /// myhostname and myorigin: where the bare `user` table keys apply.
    pub(crate) local_domains: Vec<String>,
    /// recipient_delimiter.
    pub(crate) delimiters: String,
    /// propagate_unmatched_extensions names canonical.
    pub(crate) propagate_canonical: bool,
    /// propagate_unmatched_extensions names virtual.
    pub(crate) propagate_virtual: bool,
    /// canonical_maps.
    pub(crate) canonical: Maps,
    /// canonical_classes.
    pub(crate) canonical_classes: Classes,
    /// sender_canonical_maps.
    pub(crate) sender_canonical: Maps,
    /// sender_canonical_classes.
    pub(crate) sender_canonical_classes: Classes,
    /// recipient_canonical_maps.
    pub(crate) recipient_canonical: Maps,
    /// recipient_canonical_classes.
    pub(crate) recipient_canonical_classes: Classes,
    /// masquerade_domains.
    pub(crate) masquerade_domains: Vec<String>,
    /// masquerade_exceptions.
    pub(crate) masquerade_exceptions: Vec<String>,
    /// masquerade_classes.
    pub(crate) masquerade_classes: Classes,
    /// virtual_alias_maps.
    pub(crate) virtual_alias: Maps,
    /// virtual_alias_recursion_limit.
    pub(crate) virtual_recursion_limit: usize,
    /// virtual_alias_expansion_limit.
    pub(crate) virtual_expansion_limit: usize,
    /// duplicate_filter_limit.
    pub(crate) duplicate_filter_limit: usize,
    /// empty_address_recipient.
    pub(crate) empty_address_recipient: String,
    /// header_checks.
    pub(crate) header_checks: Maps,
    /// mime_header_checks.
    pub(crate) mime_header_checks: Maps,
    /// nested_header_checks.
    pub(crate) nested_header_checks: Maps,
    /// body_checks.
    pub(crate) body_checks: Maps,
    /// body_checks_size_limit.
    pub(crate) body_checks_size_limit: u64,
    /// message_size_limit (0 = none).
    pub(crate) message_size_limit: u64,
    /// header_size_limit.
    pub(crate) header_size_limit: usize,
    /// line_length_limit.
    pub(crate) line_length_limit: usize,
    /// hopcount_limit.
    pub(crate) hopcount_limit: usize,
    /// always_add_missing_headers.
    pub(crate) always_add_missing_headers: bool,
    /// undisclosed_recipients_header (empty: add nothing).
    pub(crate) undisclosed_recipients_header: String,
    /// message_drop_headers, lowercase.
    pub(crate) drop_headers: HashSet<String>,
    /// remote_header_rewrite_domain.
    pub(crate) remote_header_rewrite_domain: String,
    /// local_header_rewrite_clients says `static:all`: every client's
    /// headers are rewritten in the local context.
    pub(crate) header_rewrite_all: bool,
    /// local_header_rewrite_clients says `permit_inet_interfaces` (or
    /// `permit_mynetworks`): loopback clients count as local. Other
    /// addresses of the machine and mynetworks are not matched yet.
    pub(crate) header_rewrite_loopback: bool,
    /// enable_original_recipient.
    pub(crate) enable_original_recipient: bool,
    /// always_bcc (empty: none).
    pub(crate) always_bcc: String,
    /// sender_bcc_maps.
    pub(crate) sender_bcc: Maps,
    /// recipient_bcc_maps.
    pub(crate) recipient_bcc: Maps,
    /// in_flow_delay with default_process_limit: the incoming backlog
    /// check new messages pass.
    pub(crate) flow: crate::flow::Flow,
    /// smtpd_milters / non_smtpd_milters and the milter_* settings.
    pub(crate) milters: crate::milters::Milters,
}

/// Splits a main.cf list at commas and blanks.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

fn open_maps(config: &Config, name: &str) -> Result<Maps, String> {
    let list = config.str(name);
    let maps = Maps::open(&list, Flags::default()).map_err(|e| format!("{name}: {e}"))?;
    for w in maps.warnings() {
        maillog::warning!("{name}: {w}");
    }
    Ok(maps)
}

fn limit(config: &Config, name: &str) -> usize {
    usize::try_from(config.int(name)).unwrap_or(usize::MAX)
}

impl Settings {
    /// Reads the parameters and opens every table.
    ///
    /// # Errors
    /// A table cannot be opened (Postfix treats that as fatal too).
    pub(crate) fn load(config: &Config) -> Result<Settings, String> {
        let myhostname = config.str("myhostname");
        let mut local_domains: Vec<String> = words(&config.str("mydestination"))
            .into_iter()
            .filter(|w| !w.contains(':') && !w.starts_with('/'))
            .map(|w| w.to_ascii_lowercase())
            .collect();
        local_domains.push(myhostname.to_ascii_lowercase());
        local_domains.push(config.str("myorigin").to_ascii_lowercase());
        let propagate = words(&config.str("propagate_unmatched_extensions"));
        let has = |w: &str| propagate.iter().any(|p| p.eq_ignore_ascii_case(w));
        let rewrite_clients: Vec<String> = words(&config.str("local_header_rewrite_clients"))
            .into_iter()
            .map(|w| w.to_ascii_lowercase())
            .collect();
        Ok(Settings {
            mail_name: config.str("mail_name"),
            local_domains,
            delimiters: config.str("recipient_delimiter"),
            propagate_canonical: has("canonical"),
            propagate_virtual: has("virtual"),
            canonical: open_maps(config, "canonical_maps")?,
            canonical_classes: Classes::parse(&config.str("canonical_classes")),
            sender_canonical: open_maps(config, "sender_canonical_maps")?,
            sender_canonical_classes: Classes::parse(&config.str("sender_canonical_classes")),
            recipient_canonical: open_maps(config, "recipient_canonical_maps")?,
            recipient_canonical_classes: Classes::parse(&config.str("recipient_canonical_classes")),
            masquerade_domains: words(&config.str("masquerade_domains")),
            masquerade_exceptions: words(&config.str("masquerade_exceptions")),
            masquerade_classes: Classes::parse(&config.str("masquerade_classes")),
            virtual_alias: open_maps(config, "virtual_alias_maps")?,
            virtual_recursion_limit: limit(config, "virtual_alias_recursion_limit"),
            virtual_expansion_limit: limit(config, "virtual_alias_expansion_limit"),
            duplicate_filter_limit: limit(config, "duplicate_filter_limit"),
            empty_address_recipient: config.str("empty_address_recipient"),
            header_checks: open_maps(config, "header_checks")?,
            mime_header_checks: open_maps(config, "mime_header_checks")?,
            nested_header_checks: open_maps(config, "nested_header_checks")?,
            body_checks: open_maps(config, "body_checks")?,
            body_checks_size_limit: u64::try_from(config.int("body_checks_size_limit"))
                .unwrap_or(0),
            message_size_limit: config.size("message_size_limit"),
            header_size_limit: limit(config, "header_size_limit").max(1),
            line_length_limit: limit(config, "line_length_limit").max(1),
            hopcount_limit: limit(config, "hopcount_limit"),
            always_add_missing_headers: config.bool("always_add_missing_headers"),
            undisclosed_recipients_header: config.str("undisclosed_recipients_header"),
            drop_headers: words(&config.str("message_drop_headers"))
                .into_iter()
                .map(|w| w.to_ascii_lowercase())
                .collect(),
            remote_header_rewrite_domain: config.str("remote_header_rewrite_domain"),
            header_rewrite_all: rewrite_clients.iter().any(|w| w == "static:all"),
            header_rewrite_loopback: rewrite_clients
                .iter()
                .any(|w| w == "permit_inet_interfaces" || w == "permit_mynetworks"),
            enable_original_recipient: config.bool("enable_original_recipient"),
            always_bcc: config.str("always_bcc").trim().to_string(),
            sender_bcc: open_maps(config, "sender_bcc_maps")?,
            recipient_bcc: open_maps(config, "recipient_bcc_maps")?,
            flow: crate::flow::Flow::new(
                config.time("in_flow_delay"),
                limit(config, "default_process_limit"),
            ),
            milters: crate::milters::Milters::from_config(config),
            myhostname,
        })
    }

    /// True when the domain of `addr` (internal form) is one of ours, or
    /// it has none: table searches then also try `user` keys.
    pub(crate) fn is_local(&self, addr: &str) -> bool {
        match addr.rfind('@') {
            Some(at) => {
                let d = addr.get(at + 1..).unwrap_or_default().to_ascii_lowercase();
                self.local_domains.contains(&d)
            }
            None => true,
        }
    }

    /// True when a table file changed since startup: finish the clients
    /// and exit, so master starts a process with fresh tables.
    pub(crate) fn tables_changed(&self) -> bool {
        [
            &self.canonical,
            &self.sender_canonical,
            &self.recipient_canonical,
            &self.virtual_alias,
            &self.header_checks,
            &self.mime_header_checks,
            &self.nested_header_checks,
            &self.body_checks,
            &self.sender_bcc,
            &self.recipient_bcc,
        ]
        .iter()
        .any(|m| m.changed())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Settings from main.cf text, for the unit tests.
    pub(crate) fn settings(main_cf: &str) -> Settings {
        let dir = tempfile::tempdir().unwrap();
        let text = format!("myhostname = mail.example.org\nmydomain = example.org\n{main_cf}");
        let config = Config::from_text(dir.path(), &text).unwrap();
        Settings::load(&config).unwrap()
    }

    #[test]
    fn defaults_follow_postfix() {
        let s = settings("");
        assert_eq!(s.message_size_limit, 10_240_000);
        assert_eq!(s.header_size_limit, 102_400);
        assert_eq!(s.line_length_limit, 2048);
        assert_eq!(s.hopcount_limit, 50);
        assert!(s.drop_headers.contains("bcc"));
        assert!(s.drop_headers.contains("return-path"));
        assert!(s.masquerade_classes.env_sender && !s.masquerade_classes.env_recipient);
        assert!(s.canonical_classes.hdr_recipient);
        assert!(s.undisclosed_recipients_header.is_empty());
        assert!(s.header_rewrite_loopback && !s.header_rewrite_all);
        assert!(settings("local_header_rewrite_clients = static:all\n").header_rewrite_all);
        assert!(s.is_local("bob@MAIL.example.org"));
        assert!(s.is_local("bob@localhost"));
        assert!(s.is_local("bob"));
        assert!(!s.is_local("bob@example.net"));
    }

    #[test]
    fn classes_parse() {
        let c = Classes::parse("envelope_recipient,header_sender");
        assert!(c.env_recipient && c.hdr_sender && !c.env_sender && !c.hdr_recipient);
    }
}
