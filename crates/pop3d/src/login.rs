//! The AUTHORIZATION state, in the login process (chrooted, unprivileged):
//! greeting, CAPA, STLS, USER/PASS, AUTH PLAIN/LOGIN through the auth
//! service, QUIT; the pre-login command cap, the failed-login delay and
//! pop3d_disable_plaintext_auth; APOP (RFC 1939) when pop3d_apop = yes and
//! the auth service offers it (the greeting then ends in a timestamp
//! `<pid.time@myhostname>`, as Dovecot's shows one only when its auth
//! service has the APOP mechanism). It never opens a mailbox: on success
//! it returns the auth service's ticket and the caller hands the session
//! over.

use std::io;

use auth::dovecot::ClientInfo;
use login::conn::{Client, Line};
use login::sasl::{self, Outcome, Ticket};

use crate::settings::Settings;

/// Longest command line before login (AUTH initial responses included).
const LINE_LIMIT: usize = 8192;

/// Who is connected (the login crate's).
pub use login::process::Peer;

/// The capabilities, as CAPA lists them (RFC 2449); `logged_in` for the
/// TRANSACTION state's list.
pub fn capabilities(s: &Settings, tls_active: bool, plaintext_ok: bool, logged_in: bool) -> String {
    let mut c = String::from(
        "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\n",
    );
    if !logged_in {
        if s.tls.is_some() && !tls_active {
            c.push_str("STLS\r\n");
        }
        if plaintext_ok {
            c.push_str("USER\r\nSASL PLAIN LOGIN\r\n");
        } else {
            c.push_str("SASL\r\n");
        }
    }
    if !s.expire.is_empty() {
        c.push_str(&format!("EXPIRE {}\r\n", s.expire));
    }
    if !s.login_delay.is_empty() {
        c.push_str(&format!("LOGIN-DELAY {}\r\n", s.login_delay));
    }
    if !s.implementation.is_empty() {
        c.push_str(&format!("IMPLEMENTATION {}\r\n", s.implementation));
    }
    c.push_str(".\r\n");
    c
}

/// The APOP timestamp for this connection: `<pid.seconds@myhostname>`
/// (RFC 1939's form; the login process's pid makes it unique).
pub fn apop_timestamp(hostname: &str) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("<{}.{secs}@{hostname}>", std::process::id())
}

/// The session up to a successful login: Some(ticket), or None when the
/// client left, failed, or ran into a limit.
///
/// # Errors
/// I/O errors and timeouts on the connection.
pub fn run(client: &mut Client, s: &Settings, peer: &Peer) -> io::Result<Option<Ticket>> {
    let timestamp =
        (s.apop && sasl::offers(&s.sasl_path, "APOP")).then(|| apop_timestamp(&s.hostname));
    match &timestamp {
        Some(t) => client.send(&format!("+OK {} {t}\r\n", s.banner))?,
        None => client.send(&format!("+OK {}\r\n", s.banner))?,
    }
    let mut user: Option<String> = None;
    let mut commands: u32 = 0;
    loop {
        let line = match client.read_line(LINE_LIMIT)? {
            Line::Eof => return Ok(None),
            Line::TooLong => {
                client.send("-ERR Input line too long.\r\n")?;
                continue;
            }
            Line::Text(t) => String::from_utf8_lossy(&t).into_owned(),
        };
        commands += 1;
        if commands > s.command_limit {
            client.send("-ERR Too many commands before login.\r\n")?;
            maillog::info!("too many commands before login from [{}]", peer.addr);
            return Ok(None);
        }
        let (verb, arg) = match line.split_once(' ') {
            Some((v, a)) => (v.to_ascii_uppercase(), a.to_string()),
            None => (line.to_ascii_uppercase(), String::new()),
        };
        let plaintext_ok =
            !s.disable_plaintext || client.is_tls() || login::is_loopback(&peer.addr);
        match verb.as_str() {
            "CAPA" => client.send(&capabilities(s, client.is_tls(), plaintext_ok, false))?,
            "NOOP" => client.send("+OK\r\n")?,
            "QUIT" => {
                client.send("+OK Logging out\r\n")?;
                return Ok(None);
            }
            "STLS" => match &s.tls {
                Some(cfg) if !client.is_tls() => {
                    client.send("+OK Begin TLS negotiation now.\r\n")?;
                    let discarded = client.start_tls(cfg.clone())?;
                    if discarded > 0 {
                        maillog::warning!(
                            "[{}]: {discarded} bytes pipelined before STLS discarded",
                            peer.addr
                        );
                    }
                    user = None;
                }
                Some(_) => client.send("-ERR TLS is already active.\r\n")?,
                None => client.send("-ERR TLS support isn't enabled.\r\n")?,
            },
            "USER" => {
                if !plaintext_ok {
                    client.send("-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.\r\n")?;
                } else if arg.is_empty() {
                    client.send("-ERR No username given.\r\n")?;
                } else {
                    user = Some(arg);
                    client.send("+OK\r\n")?;
                }
            }
            "PASS" => {
                if !plaintext_ok {
                    client.send("-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.\r\n")?;
                    continue;
                }
                let Some(name) = user.take() else {
                    client.send("-ERR No username given.\r\n")?;
                    continue;
                };
                let initial = sasl::plain_response(&name, &arg);
                let out = sasl::authenticate_login(
                    &s.sasl_path,
                    "PLAIN",
                    Some(&initial),
                    &info(s, client, peer),
                    &mut |_| Ok(None),
                );
                if let Some(u) = finish(client, s, peer, out, "PASS")? {
                    return Ok(Some(u));
                }
            }
            "AUTH" => {
                if arg.is_empty() {
                    client.send("+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n")?;
                    continue;
                }
                if !plaintext_ok {
                    client.send("-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.\r\n")?;
                    continue;
                }
                let (mech, initial) = match arg.split_once(' ') {
                    Some((m, i)) => (
                        m.to_ascii_uppercase(),
                        Some(if i == "=" {
                            String::new()
                        } else {
                            i.to_string()
                        }),
                    ),
                    None => (arg.to_ascii_uppercase(), None),
                };
                if mech != "PLAIN" && mech != "LOGIN" {
                    client.send("-ERR Unsupported authentication mechanism.\r\n")?;
                    continue;
                }
                let info = info(s, client, peer);
                let out = {
                    let mut ask = |challenge: &str| -> io::Result<Option<String>> {
                        client.send(&format!("+ {challenge}\r\n"))?;
                        match client.read_line(LINE_LIMIT)? {
                            Line::Text(t) => Ok(Some(String::from_utf8_lossy(&t).into_owned())),
                            _ => Ok(None),
                        }
                    };
                    sasl::authenticate_login(
                        &s.sasl_path,
                        &mech,
                        initial.as_deref(),
                        &info,
                        &mut ask,
                    )
                };
                if out.0 == Outcome::Aborted {
                    client.send("-ERR Authentication aborted by client.\r\n")?;
                    continue;
                }
                if let Some(u) = finish(client, s, peer, out, &mech)? {
                    return Ok(Some(u));
                }
            }
            "APOP" => {
                // RFC 1939: APOP name digest; the digest is 32 hex digits.
                let Some(ts) = &timestamp else {
                    client.send("-ERR Unknown command.\r\n")?;
                    continue;
                };
                let mut words = arg.split(' ').filter(|w| !w.is_empty());
                let (Some(name), Some(digest), None) = (words.next(), words.next(), words.next())
                else {
                    client.send("-ERR Invalid parameters.\r\n")?;
                    continue;
                };
                let Some(initial) = sasl::apop_response(ts, name, digest) else {
                    client.send("-ERR Invalid APOP digest.\r\n")?;
                    continue;
                };
                let out = sasl::authenticate_login(
                    &s.sasl_path,
                    "APOP",
                    Some(&initial),
                    &info(s, client, peer),
                    &mut |_| Ok(None),
                );
                if let Some(u) = finish(client, s, peer, out, "APOP")? {
                    return Ok(Some(u));
                }
            }
            "" => client.send("-ERR Unknown command.\r\n")?,
            _ => client.send("-ERR Unknown command.\r\n")?,
        }
    }
}

fn info(_s: &Settings, client: &Client, peer: &Peer) -> ClientInfo {
    ClientInfo {
        service: "pop3".to_string(),
        remote_ip: peer.addr.to_string(),
        local_ip: peer.local.to_string(),
        secured: client.is_tls() || login::is_loopback(&peer.addr),
    }
}

/// After an exchange: Some(ticket) on success; a failure is answered
/// after the failure delay.
fn finish(
    client: &mut Client,
    s: &Settings,
    peer: &Peer,
    out: (Outcome, Option<Ticket>),
    method: &str,
) -> io::Result<Option<Ticket>> {
    match out.0 {
        Outcome::Ok(u) => {
            let Some(ticket) = out.1 else {
                // An auth service without the login hand-off (no COOKIE).
                maillog::warning!(
                    "auth service gave no login ticket for user=<{}>",
                    maillog::printable(&u, 200)
                );
                client.send("-ERR [SYS/TEMP] Temporary authentication failure.\r\n")?;
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
            client.send("-ERR [SYS/TEMP] Temporary authentication failure.\r\n")?;
            Ok(None)
        }
        Outcome::Fail | Outcome::Aborted => {
            maillog::info!("authentication failed: method={method}, rip={}", peer.addr);
            std::thread::sleep(s.failure_delay);
            client.send("-ERR [AUTH] Authentication failed.\r\n")?;
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Role;
    use std::io::{BufRead, BufReader, Write};
    use std::net::{TcpListener, TcpStream};

    fn settings(extra: &str) -> Settings {
        let dir = tempfile::tempdir().unwrap();
        let config = config::Config::from_text(dir.path(), extra).unwrap();
        Settings::load(&config, "pop3", Role::Login).unwrap()
    }

    /// Runs the login state for a client at `addr` (the TCP connection
    /// itself is on loopback); returns what the client saw for `input`.
    fn talk(s: Settings, addr: &str, input: &str) -> (Vec<String>, Option<Ticket>) {
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
            "CAPA\r\nUSER a\r\nAUTH PLAIN AGEAYg==\r\nQUIT\r\n",
        );
        assert!(lines[0].starts_with("+OK "), "{lines:?}");
        let capa: Vec<&str> = lines
            .iter()
            .take_while(|l| *l != ".")
            .map(String::as_str)
            .collect();
        assert!(
            capa.contains(&"SASL") && !capa.contains(&"USER"),
            "{capa:?}"
        );
        let refused =
            "-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.";
        assert_eq!(
            lines.iter().filter(|l| *l == refused).count(),
            2,
            "{lines:?}"
        );
        assert_eq!(lines.last().unwrap(), "+OK Logging out");
        assert_eq!(user, None);
        // Loopback, or the setting off: USER is accepted (PASS would ask auth).
        let (lines, _) = talk(settings(""), "127.0.0.1", "CAPA\r\nUSER a\r\nQUIT\r\n");
        assert!(
            lines.contains(&"USER".to_string()) && lines.contains(&"+OK".to_string()),
            "{lines:?}"
        );
        let (lines, _) = talk(
            settings("pop3d_disable_plaintext_auth = no"),
            "192.0.2.1",
            "USER a\r\nQUIT\r\n",
        );
        assert_eq!(lines[1], "+OK", "{lines:?}");
    }

    #[test]
    fn commands_before_login_are_capped_and_unknown_ones_refused() {
        let (lines, user) = talk(
            settings("pop3d_login_command_limit = 3"),
            "127.0.0.1",
            "STAT\r\nNOOP\r\nRETR 1\r\nNOOP\r\nNOOP\r\n",
        );
        assert_eq!(
            lines[1..],
            [
                "-ERR Unknown command.",
                "+OK",
                "-ERR Unknown command.",
                "-ERR Too many commands before login."
            ],
            "{lines:?}"
        );
        assert_eq!(user, None);
        let (lines, _) = talk(
            settings(""),
            "127.0.0.1",
            &format!("{}\r\nPASS x\r\nSTLS\r\nQUIT\r\n", "N".repeat(9000)),
        );
        assert_eq!(
            lines[1..],
            [
                "-ERR Input line too long.",
                "-ERR No username given.",
                "-ERR TLS support isn't enabled.",
                "+OK Logging out"
            ],
            "{lines:?}"
        );
    }
}
