//! The not-authenticated state, in the login process (chrooted,
//! unprivileged): greeting, CAPABILITY, NOOP, ID, LOGOUT, STARTTLS, LOGIN
//! and AUTHENTICATE PLAIN/LOGIN (with SASL-IR) through the auth service;
//! the pre-login command cap, the failed-login delay and
//! imapd_disable_plaintext_auth (LOGINDISABLED). It never opens a mailbox:
//! on success it returns the user name and the command's tag, and the
//! caller hands the session over (the mail process answers the tag).

use std::io;

use auth::dovecot::ClientInfo;
use base64::Engine;
use login::conn::Client;
use login::sasl::{self, Outcome, Ticket};

use super::settings::Settings;
use crate::parse::{CommandBody, Event, Limits, Parser, take_line};
use crate::response::{Status, continuation, status};

/// Largest literal before login (user names and passwords).
const LOGIN_LITERAL_LIMIT: u64 = 8192;

/// Longest AUTHENTICATE response line.
const SASL_LINE_LIMIT: usize = 8192;

/// Who is connected (the login crate's).
pub use login::process::Peer;

/// The capabilities after login (also the LOGIN/AUTHENTICATE OK's code).
pub const CAPABILITIES: &str = "IMAP4rev1 IMAP4rev2 SASL-IR LITERAL+ ID ENABLE IDLE NAMESPACE \
UIDPLUS MOVE UNSELECT CHILDREN LIST-EXTENDED LIST-STATUS SPECIAL-USE ESEARCH SEARCHRES \
CONDSTORE QRESYNC STATUS=SIZE SORT THREAD=ORDEREDSUBJECT THREAD=REFERENCES BINARY \
COMPRESS=DEFLATE UTF8=ACCEPT";

/// The capabilities before login.
pub fn pre_login_capabilities(s: &Settings, tls_active: bool, plaintext_ok: bool) -> String {
    let mut c = String::from("IMAP4rev1 IMAP4rev2 SASL-IR LITERAL+ ID ENABLE IDLE");
    if s.tls.is_some() && !tls_active {
        c.push_str(" STARTTLS");
    }
    if plaintext_ok {
        c.push_str(" AUTH=PLAIN AUTH=LOGIN");
    } else {
        c.push_str(" LOGINDISABLED");
    }
    c
}

/// The `* ID (...)` answer.
pub const ID_RESPONSE: &[u8] = b"* ID (\"name\" \"imapd\")\r\n";

/// The session up to a successful login: Some((user, tag)), or None when
/// the client left, failed, or ran into a limit.
///
/// # Errors
/// I/O errors and timeouts on the connection.
pub fn run(client: &mut Client, s: &Settings, peer: &Peer) -> io::Result<Option<(Ticket, String)>> {
    let plaintext_ok =
        |c: &Client| !s.disable_plaintext || c.is_tls() || login::is_loopback(&peer.addr);
    let mut out = Vec::new();
    status(
        &mut out,
        None,
        Status::Ok,
        Some(&format!(
            "CAPABILITY {}",
            pre_login_capabilities(s, client.is_tls(), plaintext_ok(client))
        )),
        &s.banner,
    );
    send(client, &mut out)?;
    let mut parser = Parser::new(Limits {
        max_line: 8192,
        max_literal: LOGIN_LITERAL_LIMIT,
        max_command: 16_384,
        max_depth: 8,
        max_literals: LOGIN_LITERAL_LIMIT,
    });
    let mut buf: Vec<u8> = Vec::new();
    let mut commands: u32 = 0;
    loop {
        let (used, ev) = parser.feed(&buf);
        let cmd = match ev {
            Event::NeedMore => {
                if client.read_more(&mut buf)? == 0 {
                    return Ok(None);
                }
                continue;
            }
            Event::Continue => {
                continuation(&mut out, "OK");
                send(client, &mut out)?;
                if client.read_more(&mut buf)? == 0 {
                    return Ok(None);
                }
                continue;
            }
            Event::Fatal(text) => {
                status(&mut out, None, Status::Bye, None, text);
                send(client, &mut out)?;
                return Ok(None);
            }
            Event::Bad { tag, text, .. } => {
                buf.drain(..used.min(buf.len()));
                status(&mut out, tag.as_deref(), Status::Bad, None, text);
                send(client, &mut out)?;
                commands += 1;
                if commands > s.command_limit {
                    return too_many(client, peer);
                }
                continue;
            }
            Event::Command(c) => {
                buf.drain(..used.min(buf.len()));
                c
            }
        };
        commands += 1;
        if commands > s.command_limit {
            return too_many(client, peer);
        }
        let tag = cmd.tag.as_str();
        match cmd.body {
            CommandBody::Capability => {
                out.extend_from_slice(
                    format!(
                        "* CAPABILITY {}\r\n",
                        pre_login_capabilities(s, client.is_tls(), plaintext_ok(client))
                    )
                    .as_bytes(),
                );
                status(
                    &mut out,
                    Some(tag),
                    Status::Ok,
                    None,
                    "Pre-login capabilities listed, post-login capabilities have more.",
                );
            }
            CommandBody::Noop => status(&mut out, Some(tag), Status::Ok, None, "NOOP completed."),
            CommandBody::Id(_) => {
                out.extend_from_slice(ID_RESPONSE);
                status(&mut out, Some(tag), Status::Ok, None, "ID completed.");
            }
            CommandBody::Logout => {
                status(&mut out, None, Status::Bye, None, "Logging out");
                status(&mut out, Some(tag), Status::Ok, None, "Logout completed.");
                send(client, &mut out)?;
                return Ok(None);
            }
            CommandBody::StartTls => match &s.tls {
                Some(cfg) if !client.is_tls() => {
                    status(
                        &mut out,
                        Some(tag),
                        Status::Ok,
                        None,
                        "Begin TLS negotiation now.",
                    );
                    send(client, &mut out)?;
                    let discarded = client.start_tls(cfg.clone())? + buf.len();
                    buf.clear();
                    parser = Parser::new(*parser.limits());
                    if discarded > 0 {
                        maillog::warning!(
                            "[{}]: {discarded} bytes pipelined before STARTTLS discarded",
                            peer.addr
                        );
                    }
                }
                Some(_) => status(
                    &mut out,
                    Some(tag),
                    Status::Bad,
                    None,
                    "TLS is already active.",
                ),
                None => status(
                    &mut out,
                    Some(tag),
                    Status::Bad,
                    None,
                    "TLS support isn't enabled.",
                ),
            },
            CommandBody::Login { user, password } => {
                if !plaintext_ok(client) {
                    status(
                        &mut out,
                        Some(tag),
                        Status::No,
                        Some("PRIVACYREQUIRED"),
                        "Plaintext authentication disallowed on non-secure (SSL/TLS) connections.",
                    );
                } else {
                    let (u, p) = (
                        String::from_utf8_lossy(&user),
                        String::from_utf8_lossy(&password),
                    );
                    let initial = sasl::plain_response(&u, &p);
                    let out_come = sasl::authenticate_login(
                        &s.sasl_path,
                        "PLAIN",
                        Some(&initial),
                        &info(client, peer),
                        &mut |_| Ok(None),
                    );
                    if let Some(t) = finish(client, s, peer, out_come, "LOGIN", tag, &mut out)? {
                        client.unread(&buf);
                        return Ok(Some((t, tag.to_string())));
                    }
                }
            }
            CommandBody::Authenticate { mechanism, initial } => {
                if !plaintext_ok(client) {
                    status(
                        &mut out,
                        Some(tag),
                        Status::No,
                        Some("PRIVACYREQUIRED"),
                        "Plaintext authentication disallowed on non-secure (SSL/TLS) connections.",
                    );
                } else if mechanism != "PLAIN" && mechanism != "LOGIN" {
                    status(
                        &mut out,
                        Some(tag),
                        Status::No,
                        None,
                        "Unsupported authentication mechanism.",
                    );
                } else {
                    let initial = initial.map(|i| {
                        if i == b"=" {
                            String::new()
                        } else {
                            String::from_utf8_lossy(&i).into_owned()
                        }
                    });
                    let ci = info(client, peer);
                    let result = {
                        let mut ask = |challenge: &str| -> io::Result<Option<String>> {
                            let mut o = Vec::new();
                            continuation(&mut o, challenge);
                            send(client, &mut o)?;
                            loop {
                                match take_line(&buf, SASL_LINE_LIMIT) {
                                    Some(Ok((line, n))) => {
                                        let l = String::from_utf8_lossy(line).into_owned();
                                        buf.drain(..n);
                                        return Ok(Some(l));
                                    }
                                    Some(Err(_)) => return Ok(None),
                                    None => {
                                        if client.read_more(&mut buf)? == 0 {
                                            return Ok(None);
                                        }
                                    }
                                }
                            }
                        };
                        sasl::authenticate_login(
                            &s.sasl_path,
                            &mechanism,
                            initial.as_deref(),
                            &ci,
                            &mut ask,
                        )
                    };
                    if result.0 == Outcome::Aborted {
                        status(
                            &mut out,
                            Some(tag),
                            Status::Bad,
                            None,
                            "Authentication aborted by client.",
                        );
                    } else if let Some(t) =
                        finish(client, s, peer, result, &mechanism, tag, &mut out)?
                    {
                        client.unread(&buf);
                        return Ok(Some((t, tag.to_string())));
                    }
                }
            }
            CommandBody::Enable(_) | CommandBody::Compress(_) => status(
                &mut out,
                Some(tag),
                Status::Bad,
                None,
                "Not allowed before login.",
            ),
            _ => status(
                &mut out,
                Some(tag),
                Status::Bad,
                None,
                "Please log in first.",
            ),
        }
        send(client, &mut out)?;
    }
}

fn send(client: &mut Client, out: &mut Vec<u8>) -> io::Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(out).into_owned();
    out.clear();
    client.send(&text)
}

fn too_many(client: &mut Client, peer: &Peer) -> io::Result<Option<(Ticket, String)>> {
    client.send("* BYE Too many commands before login.\r\n")?;
    maillog::info!("too many commands before login from [{}]", peer.addr);
    Ok(None)
}

fn info(client: &Client, peer: &Peer) -> ClientInfo {
    ClientInfo {
        service: "imap".to_string(),
        remote_ip: peer.addr.to_string(),
        local_ip: peer.local.to_string(),
        secured: client.is_tls() || login::is_loopback(&peer.addr),
    }
}

/// After an exchange: Some(ticket) on success (the privileged side has
/// the auth service confirm it; the mail process answers the tag); a
/// failure is answered after the failure delay.
fn finish(
    client: &mut Client,
    s: &Settings,
    peer: &Peer,
    (out_come, ticket): (Outcome, Option<Ticket>),
    method: &str,
    tag: &str,
    out: &mut Vec<u8>,
) -> io::Result<Option<Ticket>> {
    match out_come {
        Outcome::Ok(u) => {
            let Some(ticket) = ticket else {
                status(
                    out,
                    Some(tag),
                    Status::No,
                    Some("UNAVAILABLE"),
                    "Temporary authentication failure.",
                );
                return Ok(None);
            };
            maillog::info!(
                "login: user=<{}>, method={method}, rip={}, lip={}{}",
                maillog::printable(&u, 200),
                peer.addr,
                peer.local,
                if client.is_tls() { ", TLS" } else { "" }
            );
            Ok(Some(ticket))
        }
        Outcome::TempFail => {
            status(
                out,
                Some(tag),
                Status::No,
                Some("UNAVAILABLE"),
                "Temporary authentication failure.",
            );
            Ok(None)
        }
        Outcome::Fail | Outcome::Aborted => {
            maillog::info!("authentication failed: method={method}, rip={}", peer.addr);
            std::thread::sleep(s.failure_delay);
            status(
                out,
                Some(tag),
                Status::No,
                Some("AUTHENTICATIONFAILED"),
                "Authentication failed.",
            );
            Ok(None)
        }
    }
}

/// Decodes a base64 SASL response (for tests and logging).
pub fn decode_b64(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::settings::Role;
    use std::io::{BufRead, BufReader, Write};
    use std::net::{TcpListener, TcpStream};

    fn settings(extra: &str) -> Settings {
        let dir = tempfile::tempdir().unwrap();
        let config = config::Config::from_text(dir.path(), extra).unwrap();
        Settings::load(&config, "imap", Role::Login).unwrap()
    }

    /// Runs the login state for a client at `addr`; what the client saw.
    fn talk(s: Settings, addr: &str, input: &str) -> (Vec<String>, Option<(Ticket, String)>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let peer = Peer {
            addr: addr.parse().unwrap(),
            local: "127.0.0.1".parse().unwrap(),
        };
        let t = std::thread::spawn(move || {
            let mut client = Client::new(login::conn::Conn::Plain(server));
            run(&mut client, &s, &peer).unwrap()
        });
        c.write_all(input.as_bytes()).unwrap();
        c.shutdown(std::net::Shutdown::Write).unwrap();
        let lines = BufReader::new(c).lines().map(|l| l.unwrap()).collect();
        (lines, t.join().unwrap())
    }

    #[test]
    fn plaintext_is_refused_outside_tls_except_from_loopback() {
        let (lines, user) = talk(
            settings(""),
            "192.0.2.1",
            "a CAPABILITY\r\nb LOGIN u p\r\nc AUTHENTICATE PLAIN AHUAcA==\r\nd LOGOUT\r\n",
        );
        assert!(
            lines[0].starts_with("* OK [CAPABILITY IMAP4rev1")
                && lines[0].contains("LOGINDISABLED"),
            "{lines:?}"
        );
        assert!(
            lines[1].contains("LOGINDISABLED") && !lines[1].contains("AUTH=PLAIN"),
            "{lines:?}"
        );
        let refused = "NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.";
        assert_eq!(lines[3], format!("b {refused}"));
        assert_eq!(lines[4], format!("c {refused}"));
        assert_eq!(lines[5..], ["* BYE Logging out", "d OK Logout completed."]);
        assert_eq!(user, None);
        let (lines, _) = talk(settings(""), "127.0.0.1", "a CAPABILITY\r\n");
        assert!(lines[1].contains("AUTH=PLAIN AUTH=LOGIN"), "{lines:?}");
    }

    #[test]
    fn commands_before_login_are_capped_and_others_refused() {
        let (lines, user) = talk(
            settings("imapd_login_command_limit = 3"),
            "127.0.0.1",
            "a SELECT INBOX\r\nb NOOP\r\nc STARTTLS\r\nd NOOP\r\n",
        );
        assert_eq!(
            lines[1..],
            [
                "a BAD Please log in first.",
                "b OK NOOP completed.",
                "c BAD TLS support isn't enabled.",
                "* BYE Too many commands before login."
            ],
            "{lines:?}"
        );
        assert_eq!(user, None);
        // A LOGIN literal is asked for with a continuation.
        let (lines, _) = talk(settings(""), "127.0.0.1", "a LOGIN {1}\r\n");
        assert_eq!(lines[1], "+ OK");
    }
}
