//! One IMAP client connection (Dovecot's model, as pop3d's):
//!
//! 1. the service process (root when master runs imapd as root) accepts
//!    the connection and starts
//! 2. the login process (imapd again, `IMAPD_ROLE=login`, the client's
//!    socket on stdin, one end of a socketpair on stdout), which chroots
//!    to the queue directory and becomes mail_owner, does TLS and
//!    everything before authentication ([`super::login`]); on success it
//!    writes its ticket ([`login::handoff`]), the tag of the LOGIN or
//!    AUTHENTICATE command (the mail process answers it once the mailbox
//!    is open) and how it hands the session over: `direct` and the base64
//!    of what the client pipelined behind its login command (cleartext),
//!    or `relay` (TLS);
//! 3. the service process has the auth service confirm the ticket
//!    ([`login::handoff::verify`]), finds the mailbox and starts the mail
//!    process (`IMAPD_ROLE=mail`), which becomes the mailbox owner's uid
//!    and gid (virtual_uid_maps for virtual users, the account for system
//!    users) before it opens anything. Its stdin is the client's own TCP
//!    socket for a cleartext session (the login process exits, as Dovecot
//!    hands a plaintext client's descriptor to its imap process), else
//!    the socketpair, which the login process relays under TLS (the mail
//!    process never holds the key).
//!
//! A cleartext session thus costs one process once logged in: the service
//! process does not wait for it but serves the next connection (the mail
//! process is reaped at a later connection, or by init once the service
//! process has exited). Only when imapd_client_connection_count_limit is
//! set does the service process wait for the session's end, as it holds
//! the client's count at anvil until then. A new process after login,
//! rather than passing the descriptor with SCM_RIGHTS to a separate mail
//! service, needs no second listener, at the cost of a process start per
//! login, as Dovecot's per-connection imap processes. The children are
//! started with exec (std::process::Command) rather than a bare fork, so no
//! unsafe code is needed and each starts clean. A failed login never
//! starts a mail process. Not as root (the development instance) the same
//! processes run as the invoking user, without chroot.

use std::io::{self, Write};
use std::net::TcpStream;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

use login::conn::{Client, Conn};
use login::handoff::{DIRECT_PENDING_LIMIT, Mode, Verified, read_line, read_mode};

use super::login::Peer;
use super::settings::Settings;
use login::location::Target;

/// The environment variable that starts a child role.
pub const ROLE: &str = "IMAPD_ROLE";

/// The mail processes of sessions this service process no longer waits
/// for (see [`serve`]): reaped when they end, at the next connection, and
/// at most [`UNWAITED_LIMIT`] (the oldest waited for first), as pop3d's
/// ([`login::process::Sessions`]).
pub use login::process::{Sessions, UNWAITED_LIMIT};

/// Serves one accepted connection. Returns once the session is the mail
/// process's alone (a cleartext session without a connection count:
/// the mail process, kept in `sessions` to be reaped later), else when
/// every child has exited.
pub fn serve(tcp: TcpStream, s: &Settings, sessions: &mut Sessions) {
    sessions.reap();
    // The per-client count (anvil) lasts the whole connection: held here,
    // where the connection ends (a cleartext session's login process
    // exits at the hand-off).
    let Ok(counted) = login::process::count_client(
        &s.service,
        &tcp,
        s.connection_limit,
        b"* BYE Too many connections from your address.\r\n",
    ) else {
        return;
    };
    let Some(login::process::Login {
        exe,
        child: mut login,
        mail_end,
        client: mut client_socket,
    }) = login::process::start_login(tcp, ROLE)
    else {
        return;
    };
    let mut mail = None;
    let mut direct = false;
    match check_ticket(&mail_end, login.id(), s) {
        Ok(user) => match read_handoff(&mail_end) {
            Some((tag, Mode::Relay)) => {
                mail = start_mail(&exe, OwnedFd::from(mail_end), &tag, None, s, &user);
            }
            Some((tag, Mode::Direct(pending))) => {
                if let Some(tcp) = client_socket.take() {
                    mail = start_mail(&exe, OwnedFd::from(tcp), &tag, Some(&pending), s, &user);
                    direct = true;
                }
            }
            None => {}
        },
        // Refused: the client is told, on its socket or through the relay.
        Err(Some(why)) => match (read_handoff(&mail_end), &client_socket) {
            (Some((_, Mode::Direct(_))), Some(tcp)) => {
                let _ = (&*tcp).write_all(why);
            }
            _ => {
                let _ = (&mail_end).write_all(why);
            }
        },
        Err(None) => {}
    }
    drop(client_socket);
    // The login process ends at a direct hand-off (else with the session).
    let _ = login.wait();
    if let Some(mut m) = mail {
        if direct && counted.is_none() {
            // Nothing to hold for the session: this process serves the
            // next connection, and the session costs one process.
            sessions.keep(m);
        } else {
            let _ = m.wait();
        }
    }
    drop(counted);
}

/// login_session's result when the mail process took the connection.
const HANDED_OVER: i32 = -1;

/// Reads the login command's tag and the mode line that follow the ticket.
fn read_handoff(sock: &UnixStream) -> Option<(String, Mode)> {
    let tag = read_line(sock, 1024)?;
    Some((tag, read_mode(sock)?))
}

/// Reads the login process's ticket (a byte at a time: what follows, the
/// tag of the login command and the mode, is read next) and has the
/// auth service confirm it (login::handoff::verify, as pop3d): the user
/// to start a mail process for. A login process cannot name a user the
/// auth service did not authenticate for it.
///
/// # Errors
/// The answer for the client (None: no ticket at all, the client left or
/// failed to log in).
fn check_ticket(
    sock: &UnixStream,
    login_pid: u32,
    s: &Settings,
) -> Result<String, Option<&'static [u8]>> {
    let Ok(Some(ticket)) = login::handoff::receive_ticket(sock) else {
        return Err(None);
    };
    match login::handoff::verify(&s.sasl_path, login_pid, &ticket) {
        Verified::User(u) => Ok(u),
        Verified::Refused => Err(Some(
            b"* BYE [AUTHENTICATIONFAILED] Authentication failed.\r\n",
        )),
        Verified::TempFail => Err(Some(
            b"* BYE [UNAVAILABLE] Temporary authentication failure.\r\n",
        )),
    }
}

/// As [`check_ticket`], the client told why on `sock` when refused.
#[cfg(test)]
fn admit(sock: &UnixStream, login_pid: u32, s: &Settings) -> Option<String> {
    match check_ticket(sock, login_pid, s) {
        Ok(u) => Some(u),
        Err(why) => {
            if let Some(why) = why {
                let _ = (&*sock).write_all(why);
            }
            None
        }
    }
}

/// Finds the mailbox and starts the mail process for it
/// ([`login::process::start_mail`]); `tag` is the login command's, which
/// the mail process answers. Idle most of its life, the mail process gets
/// a heap that gives its pages back.
fn start_mail(
    exe: &std::path::Path,
    sock: OwnedFd,
    tag: &str,
    direct: Option<&str>,
    s: &Settings,
    user: &str,
) -> Option<std::process::Child> {
    let how = login::process::MailStart {
        role: ROLE,
        extra: &[("IMAPD_TAG", tag)],
        compact_heap: true,
        no_mailbox: b"* BYE [UNAVAILABLE] No mailbox for this user.\r\n",
        lookup_failed: b"* BYE [UNAVAILABLE] Mailbox lookup failed.\r\n",
    };
    login::process::start_mail(exe, sock, direct, &s.location, user, &how)
}

/// The login process: jail, pre-login session, hand-off, relay. Its exit code.
pub fn login_main(s: &Settings) -> i32 {
    let (tcp, mail, peer) = match login::process::login_start(&s.mail_owner, &s.queue_directory) {
        login::process::LoginStart::Serve(tcp, mail, peer) => (tcp, mail, peer),
        login::process::LoginStart::Exit(code) => return code,
    };
    match login_session(tcp, mail, s, &peer) {
        HANDED_OVER => 0,
        code => {
            maillog::info!("disconnect from [{}]", peer.addr);
            code
        }
    }
}

fn login_session(tcp: TcpStream, mut mail: UnixStream, s: &Settings, peer: &Peer) -> i32 {
    let _ = tcp.set_read_timeout(Some(s.login_timeout));
    // Whole answers are written at once (the relay too): no Nagle delay.
    let _ = tcp.set_nodelay(true);
    let _ = tcp.set_write_timeout(Some(s.idle));
    let mut client = if s.wrapper {
        let Some(cfg) = &s.tls else { return 1 };
        match tls::TlsStream::accept(cfg.clone(), tcp) {
            Ok(t) => Client::new(Conn::Tls(Box::new(t))),
            Err(e) => {
                maillog::info!("TLS handshake failed for [{}]: {e}", peer.addr);
                return 0;
            }
        }
    } else {
        Client::new(Conn::Plain(tcp))
    };
    let (ticket, tag) = match super::login::run(&mut client, s, peer) {
        Ok(Some(u)) => u,
        Ok(None) => return 0,
        Err(e) => {
            maillog::info!("lost connection from [{}] before login: {e}", peer.addr);
            return 0;
        }
    };
    if login::handoff::send_ticket(&mut mail, &ticket).is_err()
        || mail.write_all(format!("{tag}\n").as_bytes()).is_err()
    {
        return 1;
    }
    let user = ticket.user;
    if !client.is_tls() && client.pending().len() <= DIRECT_PENDING_LIMIT {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(client.take_pending());
        if mail
            .write_all(format!("direct {b64}\n").as_bytes())
            .is_err()
        {
            return 1;
        }
        // The mail process gets the connection: this process ends (the
        // mail process logs the session's end).
        return HANDED_OVER;
    }
    if mail.write_all(b"relay\n").is_err() {
        return 1;
    }
    if let Ok(c) = client.conn() {
        let _ = c.tcp().set_read_timeout(None);
    }
    match login::relay::relay(&mut client, mail, s.idle) {
        Ok(true) => {
            let _ = client.send("* BYE Disconnected for inactivity.\r\n");
            maillog::info!("{user}: Disconnected for inactivity");
        }
        Ok(false) => {}
        Err(e) => maillog::info!("{user}: relay ended: {e}"),
    }
    if let Ok(Conn::Tls(t)) = client.conn() {
        let _ = t.close();
    }
    0
}

/// The mail process: become the mailbox owner, serve. Its exit code.
///
/// Its stdin is the socketpair to the relaying login process, or (direct)
/// the client's own TCP socket, with the input the client pipelined
/// behind its login command in IMAPD_DIRECT. Both are driven through
/// [`UnixStream`]: for either kind of socket read, write, the timeouts
/// and shutdown are the same system calls.
pub fn mail_main(s: &Settings) -> i32 {
    let var = |n: &str| std::env::var(n).unwrap_or_default();
    let user = var("IMAPD_USER");
    let target = Target {
        path: std::path::PathBuf::from(var("IMAPD_MAILBOX")),
        maildir: var("IMAPD_MAILDIR") == "1",
        uid: var("IMAPD_UID").parse().unwrap_or(0),
        gid: var("IMAPD_GID").parse().unwrap_or(0),
    };
    let Ok(fd) = login::process::owned(&io::stdin()) else {
        return 1;
    };
    let sock = UnixStream::from(fd);
    let direct = var("IMAPD_DIRECT");
    let pending = if direct == "-" {
        Vec::new()
    } else {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(direct.as_bytes())
            .unwrap_or_default()
    };
    if let Err(e) = target.become_owner(&user) {
        maillog::warning!("{e}");
        let _ = (&sock).write_all(b"* BYE [UNAVAILABLE] Internal error.\r\n");
        return 1;
    }
    let direct = direct != "-";
    let tag = var("IMAPD_TAG");
    super::mail::run(sock, s, &user, &target, &tag, pending, direct);
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::settings::Role;
    use std::io::Read;
    use std::process::{Command, Stdio};

    /// imapd's service process (main.rs keeps `Sessions::default()`)
    /// leaves at most UNWAITED_LIMIT mail processes unwaited: one more is
    /// kept only once the oldest has ended (before, imapd's list grew
    /// without bound). The children are `cat`s that end when their input
    /// is closed, so none ends unless the test ends it.
    #[test]
    fn imapd_leaves_a_bounded_number_of_sessions_unwaited() {
        let spawn = || {
            Command::new("cat")
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cat: {e}"))
        };
        let mut sessions = Sessions::default();
        let mut inputs = Vec::new();
        for _ in 0..UNWAITED_LIMIT {
            let mut child = spawn();
            inputs.push(child.stdin.take());
            sessions.keep(child);
        }
        assert_eq!(sessions.live(), UNWAITED_LIMIT);
        for k in 0..3 {
            // The oldest is let go; keeping one more waits for it.
            inputs[k].take();
            let mut child = spawn();
            inputs.push(child.stdin.take());
            sessions.keep(child);
            assert_eq!(sessions.live(), UNWAITED_LIMIT);
        }
        inputs.clear();
    }

    /// A forged hand-off (a user, id or cookie the auth service never
    /// authenticated for that login process) admits nobody, so serve()
    /// starts no mail process; the real one admits the auth service's user.
    #[test]
    fn a_forged_handoff_admits_nobody() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("auth");
        login::stub::serve(
            &sock,
            login::stub::Login {
                pid: 4242,
                auth_id: 7,
                cookie: "c00k1e".into(),
                user: "alice@virt.test".into(),
            },
        )
        .unwrap();
        let config = config::Config::from_text(
            dir.path(),
            &format!("imapd_sasl_path = {}\n", sock.display()),
        )
        .unwrap();
        let s = Settings::load(&config, "imap", Role::Mail).unwrap();
        let try_line = |line: &str, pid: u32| {
            let (mut login_end, mail_end) = UnixStream::pair().unwrap();
            login_end.write_all(line.as_bytes()).unwrap();
            let got = admit(&mail_end, pid, &s);
            drop(mail_end);
            let mut told = String::new();
            login_end
                .set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .unwrap();
            let _ = login_end.read_to_string(&mut told);
            (got, told)
        };
        let (got, told) = try_line("root\t7\tc00k1e\na1\n", 4242);
        assert_eq!(got, None, "another user than the auth service's");
        assert!(told.starts_with("* BYE [AUTHENTICATIONFAILED]"), "{told}");
        for (line, pid, what) in [
            ("alice@virt.test\t7\tc00k1e\n", 4243, "another process"),
            ("alice@virt.test\t8\tc00k1e\n", 4242, "another request"),
            ("alice@virt.test\t7\tguess\n", 4242, "another cookie"),
            ("alice@virt.test\n", 4242, "a bare name"),
        ] {
            assert_eq!(try_line(line, pid).0, None, "{what}");
        }
        assert_eq!(
            try_line("alice@virt.test\t7\tc00k1e\n", 4242).0.as_deref(),
            Some("alice@virt.test")
        );
    }
}
