//! smtpd access restrictions (PLACEHOLDER: the policy helper's module
//! replaces this file on merge).
//!
//! Only the contract's signatures with a minimal body: the recipient check
//! is `permit_mynetworks, permit_sasl_authenticated,
//! reject_unauth_destination`, whatever main.cf says, so the server is
//! never an open relay while the real restrictions are being written.

use std::net::IpAddr;
use std::path::Path;

use crate::reply::Reply;

/// What the restrictions look at. Filled by the shell.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    /// The client's name, "unknown" when no reverse name.
    pub client_name: &'a str,
    /// The client's address.
    pub client_addr: IpAddr,
    /// HELO/EHLO name.
    pub helo: Option<&'a str>,
    /// Envelope sender; `Some("")` for `<>`.
    pub sender: Option<&'a str>,
    /// The recipient being checked.
    pub recipient: Option<&'a str>,
    /// The SASL login name.
    pub sasl_username: Option<&'a str>,
    /// TLS is active.
    pub tls: bool,
}

/// A restriction's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Go on (permit, or every list ran out).
    Ok,
    /// Refuse this command with this reply.
    Reject(Reply),
    /// Accept, but put the message on hold, with the reason for the log.
    Hold(String),
    /// Accept and throw the message away, with the reason for the log.
    Discard(String),
}

/// Parsed lists and opened tables.
#[derive(Debug)]
pub struct Restrictions {
    mynetworks: Vec<(IpAddr, u8)>,
    delay_reject: bool,
}

impl Restrictions {
    /// Reads mynetworks and smtpd_delay_reject.
    ///
    /// # Errors
    /// Never, in this placeholder.
    pub fn from_config(cfg: &config::Config) -> Result<Restrictions, String> {
        Ok(Restrictions {
            mynetworks: crate::settings::parse_networks(&cfg.str("mynetworks")),
            delay_reject: cfg.bool("smtpd_delay_reject"),
        })
    }

    /// smtpd_delay_reject.
    pub fn delay_reject(&self) -> bool {
        self.delay_reject
    }

    /// Connect time: nothing in this placeholder.
    pub fn at_connect(&self, _f: &Facts) -> Verdict {
        Verdict::Ok
    }

    /// HELO/EHLO time: nothing in this placeholder.
    pub fn at_helo(&self, _f: &Facts) -> Verdict {
        Verdict::Ok
    }

    /// MAIL time: nothing in this placeholder.
    pub fn at_mail(&self, _f: &Facts) -> Verdict {
        Verdict::Ok
    }

    /// RCPT time: permit_mynetworks, permit_sasl_authenticated,
    /// reject_unauth_destination (through trivial-rewrite).
    pub fn at_rcpt(&self, f: &Facts) -> Verdict {
        if self.in_mynetworks(f.client_addr) || f.sasl_username.is_some() {
            return Verdict::Ok;
        }
        let rcpt = f.recipient.unwrap_or("");
        let req = proto::rewrite::Request::Resolve {
            sender: f.sender.unwrap_or("").to_string(),
            address: rcpt.to_string(),
        };
        match proto::call(Path::new("."), proto::rewrite::SERVICE, &req) {
            Ok(proto::rewrite::Reply::Resolved { flags, class, .. }) => {
                use proto::rewrite::{AddressClass, flags as fl};
                if flags & fl::DEFER != 0 {
                    return Verdict::Reject(Reply::new(
                        451,
                        Some("4.3.0"),
                        format!("<{rcpt}>: Temporary lookup failure"),
                    ));
                }
                let ours = flags & fl::FINAL != 0 || class == AddressClass::Relay;
                if ours && flags & fl::ROUTED == 0 && flags & fl::ERROR == 0 {
                    Verdict::Ok
                } else {
                    Verdict::Reject(Reply::new(
                        554,
                        Some("5.7.1"),
                        format!("<{rcpt}>: Relay access denied"),
                    ))
                }
            }
            _ => Verdict::Reject(Reply::new(
                451,
                Some("4.3.0"),
                format!("<{rcpt}>: Temporary lookup failure"),
            )),
        }
    }

    /// DATA time: nothing in this placeholder.
    pub fn at_data(&self, _f: &Facts) -> Verdict {
        Verdict::Ok
    }

    /// The client's address is in mynetworks.
    pub fn in_mynetworks(&self, addr: IpAddr) -> bool {
        self.mynetworks
            .iter()
            .any(|(n, b)| crate::settings::in_network(addr, *n, *b))
    }
}
