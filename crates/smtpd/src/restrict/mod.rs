//! smtpd access restrictions (skeleton; the full documentation follows).

use crate::reply::Reply;
use std::net::IpAddr;

/// What the restrictions look at. Filled by the shell.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    /// The client's verified reverse name, `"unknown"` when it has none.
    pub client_name: &'a str,
    /// The client's address.
    pub client_addr: IpAddr,
    /// The HELO/EHLO argument, once given.
    pub helo: Option<&'a str>,
    /// The MAIL FROM address, `Some("")` for `<>`.
    pub sender: Option<&'a str>,
    /// The RCPT TO address being checked.
    pub recipient: Option<&'a str>,
    /// The SASL login name, when the client authenticated.
    pub sasl_username: Option<&'a str>,
    /// The session runs over TLS.
    pub tls: bool,
}

/// The outcome of one restriction stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Go on (permit, or every list ran out).
    Ok,
    /// Refuse this command with this reply (5xx, or 4xx for defer / defer_if_*).
    Reject(Reply),
    /// Accept, but put the message on hold (access HOLD), with the reason for the log.
    Hold(String),
    /// Accept, but throw the message away (access DISCARD), with the reason for the log.
    Discard(String),
}

/// Parsed restriction lists and opened tables.
#[derive(Debug)]
pub struct Restrictions {
    delay_reject: bool,
}

impl Restrictions {
    /// Parses smtpd_client/helo/sender/relay/recipient/data_restrictions,
    /// mynetworks(_style), smtpd_delay_reject and the access tables named
    /// in the lists.
    ///
    /// # Errors
    /// A bad list, naming the parameter.
    pub fn from_config(cfg: &config::Config) -> Result<Restrictions, String> {
        Ok(Restrictions {
            delay_reject: cfg.bool("smtpd_delay_reject"),
        })
    }

    /// smtpd_delay_reject.
    pub fn delay_reject(&self) -> bool {
        self.delay_reject
    }

    /// Connect time: client restrictions (Ok when delay_reject).
    pub fn at_connect(&self, _f: &Facts) -> Verdict {
        Verdict::Ok
    }

    /// HELO/EHLO time (Ok when delay_reject).
    pub fn at_helo(&self, _f: &Facts) -> Verdict {
        Verdict::Ok
    }

    /// MAIL time (Ok when delay_reject).
    pub fn at_mail(&self, _f: &Facts) -> Verdict {
        Verdict::Ok
    }

    /// RCPT time: with delay_reject client, helo, sender first; then relay
    /// and recipient restrictions.
    pub fn at_rcpt(&self, _f: &Facts) -> Verdict {
        Verdict::Reject(Reply::new(451, Some("4.3.0"), "Error: restrictions not ready"))
    }

    /// DATA time: smtpd_data_restrictions.
    pub fn at_data(&self, _f: &Facts) -> Verdict {
        Verdict::Ok
    }

    /// The client's address is in mynetworks.
    pub fn in_mynetworks(&self, _addr: IpAddr) -> bool {
        false
    }
}
