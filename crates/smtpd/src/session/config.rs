//! The session's settings ([`Config`], read from main.cf by settings.rs)
//! and smtpd_sasl_security_options ([`SaslSecurity`]).

use crate::line::BareNewline;

/// Session settings, from main.cf (Postfix's names in the field docs).
#[derive(Debug, Clone)]
pub struct Config {
    /// myhostname, used in HELO / EHLO / 421 replies.
    pub hostname: String,
    /// smtpd_banner, the text after `220 ` (default `$myhostname ESMTP $mail_name`).
    pub banner: String,
    /// line_length_limit (2048).
    pub line_length_limit: usize,
    /// smtpd_forbid_bare_newline (normalize).
    pub bare_newline: BareNewline,
    /// smtpd_forbid_bare_newline_reject_code (550).
    pub bare_newline_reject_code: u16,
    /// message_size_limit (10240000); 0 is no limit.
    pub message_size_limit: u64,
    /// disable_vrfy_command (no).
    pub disable_vrfy_command: bool,
    /// smtpd_helo_required (no).
    pub helo_required: bool,
    /// STARTTLS is offered (smtpd_tls_security_level may or encrypt, with a certificate).
    pub tls_offered: bool,
    /// smtpd_tls_security_level = encrypt: mail commands need TLS first.
    pub tls_required: bool,
    /// smtpd_sasl_auth_enable (no).
    pub auth_enabled: bool,
    /// smtpd_tls_auth_only (no): AUTH only over TLS.
    pub tls_auth_only: bool,
    /// Mail commands need AUTH first (a submission service's restrictions;
    /// set by the shell until restrictions exist).
    pub auth_required: bool,
    /// smtpd_forbid_unauth_pipelining (yes since Postfix 3.9).
    pub forbid_unauth_pipelining: bool,
    /// smtpd_soft_error_limit (10).
    pub soft_error_limit: u32,
    /// smtpd_hard_error_limit (20).
    pub hard_error_limit: u32,
    /// smtpd_recipient_limit (1000).
    pub recipient_limit: usize,
    /// smtpd_junk_command_limit (100).
    pub junk_command_limit: u32,
    /// smtpd_sasl_security_options (noanonymous): what is offered without TLS.
    pub sasl_security: SaslSecurity,
    /// smtpd_sasl_tls_security_options ($smtpd_sasl_security_options):
    /// what is offered after STARTTLS or in wrapper mode.
    pub sasl_tls_security: SaslSecurity,
    /// smtpd_forbidden_commands: words that end the session at once
    /// (`CONNECT GET POST`); lines shaped like a header do too.
    pub forbidden_commands: Vec<String>,
    /// Ask the shell at HELO/EHLO, MAIL and DATA/first BDAT
    /// ([`Action::CheckHelo`], [`Action::CheckSender`],
    /// [`Action::CheckData`]) for the smtpd_*_restrictions.
    pub stage_checks: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            hostname: "localhost".into(),
            banner: "localhost ESMTP Postfix".into(),
            line_length_limit: crate::line::DEFAULT_LINE_LENGTH_LIMIT,
            bare_newline: BareNewline::Normalize,
            bare_newline_reject_code: 550,
            message_size_limit: 10_240_000,
            disable_vrfy_command: false,
            helo_required: false,
            tls_offered: false,
            tls_required: false,
            auth_enabled: false,
            tls_auth_only: false,
            auth_required: false,
            forbid_unauth_pipelining: true,
            soft_error_limit: 10,
            hard_error_limit: 20,
            recipient_limit: 1000,
            junk_command_limit: 100,
            sasl_security: SaslSecurity::default(),
            sasl_tls_security: SaslSecurity::default(),
            forbidden_commands: vec!["CONNECT".into(), "GET".into(), "POST".into()],
            stage_checks: false,
        }
    }
}

/// smtpd_sasl_security_options: the mechanism properties refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaslSecurity {
    /// noplaintext: no mechanism that sends the password in the clear
    /// (PLAIN, LOGIN).
    pub noplaintext: bool,
    /// noanonymous: no ANONYMOUS.
    pub noanonymous: bool,
    /// nodictionary: no mechanism open to a passive dictionary attack
    /// (PLAIN, LOGIN, CRAM-MD5, DIGEST-MD5, NTLM).
    pub nodictionary: bool,
}

impl Default for SaslSecurity {
    fn default() -> SaslSecurity {
        SaslSecurity {
            noplaintext: false,
            noanonymous: true,
            nodictionary: false,
        }
    }
}

impl SaslSecurity {
    /// Parses `noplaintext, noanonymous ...`; other words (noactive,
    /// mutual_auth, forward_secrecy) are accepted and change nothing here.
    pub fn parse(text: &str) -> SaslSecurity {
        let mut s = SaslSecurity {
            noplaintext: false,
            noanonymous: false,
            nodictionary: false,
        };
        for w in text.split([',', ' ', '\t', '\n']).filter(|w| !w.is_empty()) {
            match w.to_ascii_lowercase().as_str() {
                "noplaintext" => s.noplaintext = true,
                "noanonymous" => s.noanonymous = true,
                "nodictionary" => s.nodictionary = true,
                _ => {}
            }
        }
        s
    }

    /// True when the mechanism may be used under these options.
    pub fn allows(&self, mechanism: &str) -> bool {
        let m = mechanism.to_ascii_uppercase();
        let plaintext = matches!(m.as_str(), "PLAIN" | "LOGIN");
        let dictionary = plaintext || matches!(m.as_str(), "CRAM-MD5" | "DIGEST-MD5" | "NTLM");
        !(self.noplaintext && plaintext
            || self.noanonymous && m == "ANONYMOUS"
            || self.nodictionary && dictionary)
    }
}
