//! What smtpd tells cleanup about mail filters: the smtpd_milters list
//! (cleanup runs the milters, see cleanup's `milters` module),
//! content_filter (kept in the queue file; qmgr sends the mail to that
//! transport instead of its destination) and receive_override_options
//! (flags for cleanup), all as this service's main.cf and `-o` options
//! set them.

use config::Config;
use proto::cleanup::flags;

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
    /// smtpd_milters, as written.
    pub milters: String,
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
        let milters = match milter::parse_list(&milters, &base) {
            Ok(list) => list
                .iter()
                .map(entry_with_settings)
                .collect::<Vec<_>>()
                .join(", "),
            Err(e) => {
                maillog::error!("smtpd_milters: {e}");
                milters.trim().to_string()
            }
        };
        FilterSettings {
            milters,
            content_filter: cfg.str("content_filter").trim().to_string(),
            overrides: ReceiveOverrides::parse(&cfg.str("receive_override_options")),
        }
    }

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
