//! The TRANSACTION and UPDATE states, in the mail process (running as the
//! mailbox's owner, talking cleartext to the login process over a unix
//! socket under TLS, or to the client's own TCP connection for a
//! cleartext session): STAT, LIST, RETR, DELE, NOOP, RSET, TOP, UIDL,
//! CAPA, QUIT.
//! Deletions are only marks until QUIT; a connection that drops, or a
//! killed process, removes nothing.

use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;

use crate::mailbox::{Mailbox, OpenError, Target};
use crate::settings::Settings;

/// Longest command line after login.
const LINE_LIMIT: u64 = 1024;

/// Serves one logged-in session on `sock` (the login process relays).
pub fn run(sock: UnixStream, s: &Settings, user: &str, target: &Target) {
    let _ = sock.set_read_timeout(Some(s.idle));
    let Ok(read_half) = sock.try_clone() else {
        return;
    };
    serve(Box::new(read_half), Box::new(sock), false, s, user, target);
}

/// Serves one logged-in session on the client's own TCP connection (a
/// cleartext session handed over directly): `pending` is what the client
/// pipelined after its login command; the idle timeout is answered here.
pub fn run_direct(tcp: TcpStream, pending: Vec<u8>, s: &Settings, user: &str, target: &Target) {
    let _ = tcp.set_read_timeout(Some(s.idle));
    let _ = tcp.set_write_timeout(Some(s.idle));
    // Answers are buffered here and written whole: no Nagle delay waiting
    // for the client's delayed ACK on the last segment of a long answer.
    let _ = tcp.set_nodelay(true);
    let Ok(read_half) = tcp.try_clone() else {
        return;
    };
    let input = io::Cursor::new(pending).chain(read_half);
    serve(Box::new(input), Box::new(tcp), true, s, user, target);
}

fn serve(
    input: Box<dyn Read>,
    output: Box<dyn Write>,
    direct: bool,
    s: &Settings,
    user: &str,
    target: &Target,
) {
    let mut out = BufWriter::with_capacity(64 * 1024, output);
    let mut mb = match Mailbox::open(target, &s.location) {
        Ok(m) => m,
        Err(OpenError::InUse) => {
            maillog::info!("{user}: mailbox in use by another session");
            let _ = out.write_all(b"-ERR [IN-USE] Mailbox is locked by another POP3 session.\r\n");
            let _ = out.flush();
            return;
        }
        Err(OpenError::Other(e)) => {
            maillog::warning!("{user}: open mailbox {}: {e}", target.path.display());
            let _ = out.write_all(b"-ERR [SYS/TEMP] Couldn't open INBOX.\r\n");
            let _ = out.flush();
            return;
        }
    };
    if out
        .write_all(b"+OK Logged in.\r\n")
        .and_then(|()| out.flush())
        .is_err()
    {
        return;
    }
    let mut input = BufReader::new(input);
    let mut deleted = vec![false; mb.messages.len()];
    let (mut retr, mut retr_bytes) = (0u64, 0u64);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = match input.by_ref().take(LINE_LIMIT).read_until(b'\n', &mut line) {
            Ok(n) => n,
            Err(e)
                if direct
                    && matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
            {
                let _ = out
                    .write_all(b"-ERR Disconnected for inactivity.\r\n")
                    .and_then(|()| out.flush());
                maillog::info!("{user}: Disconnected for inactivity retr={retr}/{retr_bytes}");
                return;
            }
            Err(e) => {
                maillog::info!("{user}: Disconnected: {e} retr={retr}/{retr_bytes}");
                return;
            }
        };
        if n == 0 {
            maillog::info!(
                "{user}: Disconnected: connection closed, nothing deleted, retr={retr}/{retr_bytes}"
            );
            return;
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        let mut words = text.split(' ').filter(|w| !w.is_empty());
        let verb = words.next().unwrap_or_default().to_ascii_uppercase();
        let args: Vec<&str> = words.collect();
        let result = match verb.as_str() {
            "QUIT" => {
                let doomed: Vec<usize> = (0..deleted.len())
                    .filter(|&i| deleted.get(i) == Some(&true))
                    .collect();
                let reply = match mb.remove(&doomed) {
                    Ok(()) if doomed.is_empty() => "+OK Logging out.\r\n".to_string(),
                    Ok(()) => "+OK Logging out, messages deleted.\r\n".to_string(),
                    Err(e) => {
                        maillog::warning!("{user}: removing messages: {e}");
                        "-ERR [SYS/TEMP] Some deleted messages were not removed.\r\n".to_string()
                    }
                };
                maillog::info!(
                    "{user}: Disconnected: Logged out retr={retr}/{retr_bytes}, del={}/{}",
                    doomed.len(),
                    mb.messages.len()
                );
                // The session lock goes before the answer: a client that
                // logs in again right after +OK must not get [IN-USE].
                drop(mb);
                let _ = out.write_all(reply.as_bytes()).and_then(|()| out.flush());
                return;
            }
            "CAPA" => out.write_all(crate::login::capabilities(s, false, false, true).as_bytes()),
            "NOOP" => out.write_all(b"+OK\r\n"),
            "RSET" => {
                deleted.iter_mut().for_each(|d| *d = false);
                out.write_all(b"+OK\r\n")
            }
            "STAT" => {
                let (count, size) =
                    live(&mb, &deleted).fold((0u64, 0u64), |(c, z), (_, m)| (c + 1, z + m.size));
                out.write_all(format!("+OK {count} {size}\r\n").as_bytes())
            }
            "LIST" | "UIDL" => list(&mut out, &mb, &deleted, &verb, args.first().copied()),
            "RETR" | "TOP" => match pick(&mb, &deleted, args.first().copied()) {
                Err(e) => out.write_all(e.as_bytes()),
                Ok(i) => {
                    let top = if verb == "TOP" {
                        match args.get(1).and_then(|a| a.parse::<u64>().ok()) {
                            Some(n) => Some(n),
                            None => {
                                let _ = out
                                    .write_all(b"-ERR Invalid number of lines.\r\n")
                                    .and_then(|()| out.flush());
                                continue;
                            }
                        }
                    } else {
                        None
                    };
                    let size = mb.messages.get(i).map_or(0, |m| m.size);
                    let head = if top.is_some() {
                        "+OK\r\n".to_string()
                    } else {
                        format!("+OK {size} octets\r\n")
                    };
                    if top.is_none() {
                        retr += 1;
                        retr_bytes += size;
                    }
                    out.write_all(head.as_bytes())
                        .and_then(|()| match mb.send(i, &mut out, top) {
                            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                                // Gone meanwhile (another client): end the answer.
                                out.write_all(b".\r\n")
                            }
                            other => other,
                        })
                }
            },
            "DELE" => match pick(&mb, &deleted, args.first().copied()) {
                Err(e) => out.write_all(e.as_bytes()),
                Ok(i) => {
                    if let Some(d) = deleted.get_mut(i) {
                        *d = true;
                    }
                    out.write_all(b"+OK Marked to be deleted.\r\n")
                }
            },
            _ => out.write_all(b"-ERR Unknown command.\r\n"),
        };
        // Flush when the client has nothing more pipelined.
        let flushed = result.and_then(|()| {
            if input.buffer().is_empty() {
                out.flush()
            } else {
                Ok(())
            }
        });
        if let Err(e) = flushed {
            maillog::info!("{user}: Disconnected: {e}");
            return;
        }
    }
}

fn live<'a>(
    mb: &'a Mailbox,
    deleted: &'a [bool],
) -> impl Iterator<Item = (usize, &'a crate::mailbox::Message)> {
    mb.messages
        .iter()
        .enumerate()
        .filter(move |(i, _)| deleted.get(*i) != Some(&true))
}

/// A message number argument: its index, or the -ERR line.
fn pick(mb: &Mailbox, deleted: &[bool], arg: Option<&str>) -> Result<usize, String> {
    let Some(arg) = arg else {
        return Err("-ERR Missing message number.\r\n".to_string());
    };
    let n: usize = arg.parse().map_err(|_| {
        format!(
            "-ERR Invalid message number: {}\r\n",
            arg.chars().take(20).collect::<String>()
        )
    })?;
    if n == 0 || n > mb.messages.len() {
        return Err(format!("-ERR There's no message {n}.\r\n"));
    }
    if deleted.get(n - 1) == Some(&true) {
        return Err("-ERR Message is deleted.\r\n".to_string());
    }
    Ok(n - 1)
}

fn list(
    out: &mut dyn Write,
    mb: &Mailbox,
    deleted: &[bool],
    verb: &str,
    arg: Option<&str>,
) -> io::Result<()> {
    let field = |m: &crate::mailbox::Message| {
        if verb == "UIDL" {
            m.uidl()
        } else {
            m.size.to_string()
        }
    };
    if let Some(a) = arg {
        return match pick(mb, deleted, Some(a)) {
            Err(e) => out.write_all(e.as_bytes()),
            Ok(i) => {
                let v = mb.messages.get(i).map(field).unwrap_or_default();
                out.write_all(format!("+OK {} {v}\r\n", i + 1).as_bytes())
            }
        };
    }
    let mut text = String::from("+OK\r\n");
    for (i, m) in live(mb, deleted) {
        text.push_str(&format!("{} {}\r\n", i + 1, field(m)));
        if text.len() > 60_000 {
            out.write_all(text.as_bytes())?;
            text.clear();
        }
    }
    text.push_str(".\r\n");
    out.write_all(text.as_bytes())
}
