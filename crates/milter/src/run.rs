//! Taking one message through a list of milters, each in turn, with
//! milter_default_action for a milter that fails.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::Error;
use crate::conn::{Conn, Reply, Stage, cmd, proto};
use crate::mail::{Edit, Mail};
use crate::packet::put_str;
use crate::settings::{DefaultAction, Spec};

/// What the milters are told about the client and the session.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// The client's name (`localhost` for local submissions).
    pub client_name: String,
    /// The client's address, empty when unknown.
    pub client_addr: String,
    /// The client's port (0 when unknown).
    pub client_port: u16,
    /// The HELO/EHLO name (empty: no HELO event).
    pub helo: String,
    /// Macro values by name (`j`, `{daemon_name}`, `i`, `{auth_authen}`, ...).
    pub macros: HashMap<String, String>,
    /// Where relative `unix:` milter paths are found.
    pub queue_dir: PathBuf,
}

/// The milters' decision on the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Go on (with the modifications already applied to the [`Mail`]).
    Accept,
    /// Refuse with this reply (`550 5.7.1 text`).
    Reject(String),
    /// Refuse for now with this reply (`451 4.7.1 text`).
    Tempfail(String),
    /// Accept and throw away; the name of the milter.
    Discard(String),
}

/// The result of [`run`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The decision.
    pub verdict: Verdict,
    /// Recipients a milter refused at RCPT, with the reply (they are
    /// already removed from the [`Mail`]).
    pub rejected: Vec<(String, String)>,
}

/// Takes `mail` through `milters` in order; each sees the message as
/// the ones before it left it. Stops at the first reject, tempfail or
/// discard. A milter that fails is logged and replaced by its default
/// action.
pub fn run(milters: &[Spec], facts: &Facts, mail: &mut Mail) -> Outcome {
    let mut rejected = Vec::new();
    for spec in milters {
        let verdict = match one(spec, facts, mail, &mut rejected) {
            Ok(v) => v,
            Err(e) => {
                maillog::warning!("milter {}: {e}", spec.name);
                match spec.settings.default_action {
                    DefaultAction::Accept => Verdict::Accept,
                    DefaultAction::Tempfail => {
                        Verdict::Tempfail("451 4.7.1 Service unavailable - try again later".into())
                    }
                    DefaultAction::Reject => Verdict::Reject("550 5.7.1 Command rejected".into()),
                    DefaultAction::Quarantine => {
                        mail.apply(Edit::Quarantine(format!(
                            "milter {} is unavailable (milter_default_action = quarantine)",
                            spec.name
                        )));
                        Verdict::Accept
                    }
                }
            }
        };
        if verdict != Verdict::Accept {
            return Outcome { verdict, rejected };
        }
    }
    Outcome {
        verdict: Verdict::Accept,
        rejected,
    }
}

/// How a milter ended before end of message.
enum Early {
    Done(Verdict),
}

/// Maps an event reply: continue goes on, accept ends this milter,
/// reject/tempfail/discard end the message.
fn early(r: Reply, name: &str) -> Option<Early> {
    match r {
        Reply::Continue | Reply::Skip => None,
        Reply::Accept => Some(Early::Done(Verdict::Accept)),
        Reply::Reject(t) => Some(Early::Done(Verdict::Reject(t))),
        Reply::Tempfail(t) => Some(Early::Done(Verdict::Tempfail(t))),
        Reply::Discard => Some(Early::Done(Verdict::Discard(name.to_string()))),
    }
}

fn one(
    spec: &Spec,
    facts: &Facts,
    mail: &mut Mail,
    rejected: &mut Vec<(String, String)>,
) -> Result<Verdict, Error> {
    let mut c = Conn::open(spec, &facts.queue_dir)?;
    let result = events(&mut c, facts, mail, rejected);
    c.quit();
    result
}

/// SMTP-time check of one recipient (smtpd, at RCPT TO): each milter
/// sees connect, HELO, MAIL and this RCPT, then the conversation ends.
/// The reply when one refuses (or fails with a tempfail or reject
/// default action); None lets the recipient in. cleanup later takes
/// the accepted message through the same milters from the start.
pub fn check_recipient(
    milters: &[Spec],
    facts: &Facts,
    sender: &str,
    rcpt: &str,
) -> Option<String> {
    for spec in milters {
        let result = Conn::open(spec, &facts.queue_dir).and_then(|mut c| {
            let mut macros = facts.macros.clone();
            let r = match greet(&mut c, facts, sender, &mut macros)? {
                Some(v) => Ok(v),
                None => {
                    macros.insert("{rcpt_addr}".into(), rcpt.to_string());
                    let mut data = Vec::new();
                    put_str(&mut data, &format!("<{rcpt}>"));
                    c.macros(Stage::Rcpt, cmd::RCPT, proto::NORCPT, &macros)?;
                    let t = c.spec.settings.command_timeout;
                    let r = c.event(cmd::RCPT, &data, proto::NORCPT, proto::NR_RCPT, t)?;
                    Ok(match r {
                        Reply::Reject(t) => Verdict::Reject(t),
                        Reply::Tempfail(t) => Verdict::Tempfail(t),
                        _ => Verdict::Accept,
                    })
                }
            };
            c.quit();
            r
        });
        match result {
            Ok(Verdict::Reject(t)) | Ok(Verdict::Tempfail(t)) => return Some(t),
            Ok(_) => {}
            Err(e) => {
                maillog::warning!("milter {}: {e}", spec.name);
                match spec.settings.default_action {
                    DefaultAction::Tempfail => {
                        return Some("451 4.7.1 Service unavailable - try again later".into());
                    }
                    DefaultAction::Reject => return Some("550 5.7.1 Command rejected".into()),
                    DefaultAction::Accept | DefaultAction::Quarantine => {}
                }
            }
        }
    }
    None
}

/// Connect, HELO and MAIL; a verdict when the milter ended the message
/// there (accept included).
fn greet(
    c: &mut Conn<'_>,
    facts: &Facts,
    sender: &str,
    macros: &mut HashMap<String, String>,
) -> Result<Option<Verdict>, Error> {
    let name = c.spec.name.clone();
    let cmd_t = c.spec.settings.command_timeout;
    let mut data = Vec::new();
    put_str(&mut data, &facts.client_name);
    match facts.client_addr.parse::<std::net::IpAddr>() {
        Ok(ip) => {
            data.push(if ip.is_ipv4() { b'4' } else { b'6' });
            data.extend_from_slice(&facts.client_port.to_be_bytes());
            put_str(&mut data, &ip.to_string());
        }
        Err(_) => data.push(b'U'),
    }
    c.macros(Stage::Connect, cmd::CONNECT, proto::NOCONNECT, macros)?;
    let r = c.event(cmd::CONNECT, &data, proto::NOCONNECT, proto::NR_CONN, cmd_t)?;
    if let Some(Early::Done(v)) = early(r, &name) {
        return Ok(Some(v));
    }
    if !facts.helo.is_empty() {
        let mut data = Vec::new();
        put_str(&mut data, &facts.helo);
        c.macros(Stage::Helo, cmd::HELO, proto::NOHELO, macros)?;
        let r = c.event(cmd::HELO, &data, proto::NOHELO, proto::NR_HELO, cmd_t)?;
        if let Some(Early::Done(v)) = early(r, &name) {
            return Ok(Some(v));
        }
    }
    macros.insert("{mail_addr}".into(), sender.to_string());
    let mut data = Vec::new();
    put_str(&mut data, &format!("<{sender}>"));
    c.macros(Stage::Mail, cmd::MAIL, proto::NOMAIL, macros)?;
    let r = c.event(cmd::MAIL, &data, proto::NOMAIL, proto::NR_MAIL, cmd_t)?;
    if let Some(Early::Done(v)) = early(r, &name) {
        return Ok(Some(v));
    }
    Ok(None)
}

fn events(
    c: &mut Conn<'_>,
    facts: &Facts,
    mail: &mut Mail,
    rejected: &mut Vec<(String, String)>,
) -> Result<Verdict, Error> {
    let s = c.spec.settings.clone();
    let name = c.spec.name.clone();
    let cmd_t = s.command_timeout;
    let content_t = s.content_timeout;
    let mut macros = facts.macros.clone();
    let sender = mail.sender.clone();
    if let Some(v) = greet(c, facts, &sender, &mut macros)? {
        return Ok(v);
    }
    // RCPT, one by one; a refusal drops that recipient.
    let mut kept = Vec::new();
    let mut last_refusal = None;
    for rcpt in std::mem::take(&mut mail.recipients) {
        macros.insert("{rcpt_addr}".into(), rcpt.clone());
        let mut data = Vec::new();
        put_str(&mut data, &format!("<{rcpt}>"));
        c.macros(Stage::Rcpt, cmd::RCPT, proto::NORCPT, &macros)?;
        match c.event(cmd::RCPT, &data, proto::NORCPT, proto::NR_RCPT, cmd_t)? {
            Reply::Reject(t) | Reply::Tempfail(t) => {
                maillog::info!(
                    "milter {name}: recipient <{}> refused: {}",
                    maillog::printable(&rcpt, 100),
                    maillog::printable(&t, 200)
                );
                rejected.push((rcpt, t.clone()));
                last_refusal = Some(t);
            }
            Reply::Discard => return Ok(Verdict::Discard(name)),
            _ => kept.push(rcpt),
        }
    }
    mail.recipients = kept;
    if mail.recipients.is_empty()
        && let Some(t) = last_refusal
    {
        return Ok(if t.starts_with('4') {
            Verdict::Tempfail(t)
        } else {
            Verdict::Reject(t)
        });
    }
    macros.remove("{rcpt_addr}");
    // DATA (protocol 4 and later).
    if s.protocol >= 4 {
        c.macros(Stage::Data, cmd::DATA, proto::NODATA, &macros)?;
        let r = c.event(cmd::DATA, &[], proto::NODATA, proto::NR_DATA, cmd_t)?;
        if let Some(Early::Done(v)) = early(r, &name) {
            return Ok(v);
        }
    }
    // Headers, then end of headers.
    let eat_space = c.mask & proto::HDR_LEADSPC == 0;
    let headers: Vec<(String, String)> = mail.visible_headers().cloned().collect();
    for (n, v) in &headers {
        let v = if eat_space {
            v.strip_prefix(' ').unwrap_or(v)
        } else {
            v
        };
        let mut data = Vec::new();
        put_str(&mut data, n);
        put_str(&mut data, v);
        let r = c.event(cmd::HEADER, &data, proto::NOHDRS, proto::NR_HDR, content_t)?;
        match early(r, &name) {
            Some(Early::Done(Verdict::Accept)) => return Ok(Verdict::Accept),
            Some(Early::Done(v)) => return Ok(v),
            None => {}
        }
    }
    c.macros(Stage::Eoh, cmd::EOH, proto::NOEOH, &macros)?;
    let r = c.event(cmd::EOH, &[], proto::NOEOH, proto::NR_EOH, content_t)?;
    if let Some(Early::Done(v)) = early(r, &name) {
        return Ok(v);
    }
    // Body.
    let r = c.body(&mail.body)?;
    if r != Reply::Skip
        && let Some(Early::Done(v)) = early(r, &name)
    {
        return Ok(v);
    }
    // End of message: modifications, then the verdict.
    c.macros(Stage::Eom, cmd::BODYEOB, 0, &macros)?;
    let (r, edits) = c.end_of_message()?;
    let verdict = match r {
        Reply::Continue | Reply::Accept | Reply::Skip => Verdict::Accept,
        Reply::Reject(t) => Verdict::Reject(t),
        Reply::Tempfail(t) => Verdict::Tempfail(t),
        Reply::Discard => Verdict::Discard(name.clone()),
    };
    if verdict == Verdict::Accept {
        for e in edits {
            mail.apply(e);
        }
    }
    Ok(verdict)
}
