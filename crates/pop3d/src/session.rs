//! One client connection, in three processes (Dovecot's model):
//!
//! 1. the service process (root when master runs pop3d as root) accepts
//!    the connection and starts
//! 2. the login process (pop3d again, `POP3D_ROLE=login`, the client's
//!    socket on stdin, one end of a socketpair on stdout), which chroots
//!    to the queue directory and becomes mail_owner, does TLS and
//!    everything before authentication ([`crate::login`]); on success it
//!    writes its ticket (user, AUTH id, auth connection cookie) as the
//!    first line on the socketpair ([`login::handoff`]) and then relays
//!    cleartext between the client and
//! 3. the mail process (`POP3D_ROLE=mail`, the other end of the socketpair
//!    on stdin), started by the service process once it has read that line,
//!    had the auth service confirm that it authenticated that user for
//!    that login process ([`login::handoff::verify`], the auth-master
//!    REQUEST: the service process does not take the login process's
//!    word) and found the mailbox; it becomes the mailbox owner's uid and
//!    gid (virtual_uid_maps for virtual users, the account for system
//!    users) before it opens anything.
//!
//! Under TLS the login process keeps the connection and relays (the mail
//! process never holds the key or the client socket). A cleartext session
//! is handed over whole, as Dovecot hands a plaintext client's descriptor
//! to its pop3 process: after its ticket the login process writes `direct`
//! and what the client pipelined after its login command, and exits; the
//! service process starts the mail process on the client's TCP socket
//! itself (no relay hop per command). Under TLS it writes `relay` instead
//! and stays. The per-client connection count (anvil) is held by the
//! service process, for the whole connection; without one
//! (pop3d_client_connection_count_limit = 0) the service process does not
//! wait for the session's processes (it reaps them as they end, see
//! [`Sessions`]) and takes the next connection: a logged-in session is
//! then one process. A new process after login, rather than passing the
//! descriptor with SCM_RIGHTS to a separate mail service, needs no second
//! listener, at the cost of a process start per login, as Dovecot's
//! per-connection mail processes. The children are
//! started with exec (std::process::Command) rather than a bare fork, so no
//! unsafe code is needed and each starts clean. A failed login never
//! starts a mail process. Not as root (the development instance) the same
//! processes run as the invoking user, without chroot.

use std::io::{self, Write};
use std::net::TcpStream;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

use login::conn::{Client, Conn};
use login::handoff::{DIRECT_PENDING_LIMIT, Mode, Verified, read_mode};

use crate::login::Peer;
use crate::mailbox::Target;
use crate::settings::Settings;

/// The environment variable that starts a child role.
pub const ROLE: &str = "POP3D_ROLE";

/// The unwaited session processes, bounded ([`login::process::Sessions`],
/// shared with imapd).
pub use login::process::{Sessions, UNWAITED_LIMIT};

/// Serves one accepted connection. When the connection is counted per
/// client (anvil), returns when every child has exited: the count lasts
/// the whole session and is counted out here. Otherwise returns once the
/// mail process runs, leaving the session's processes to `sessions`, so a
/// logged-in session is one process (the mail process) and this service
/// process takes the next connection.
pub fn serve(tcp: TcpStream, s: &Settings, sessions: &mut Sessions) {
    sessions.reap();
    // The per-client count (anvil) lasts the whole connection: held here,
    // where the connection ends (a cleartext session's login process
    // exits at the hand-off).
    let Ok(_counted) = login::process::count_client(
        &s.service,
        &tcp,
        s.connection_limit,
        b"-ERR [SYS/TEMP] Too many connections from your address.\r\n",
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
    match check_ticket(&mail_end, login.id(), s) {
        Ok(user) => match read_mode(&mail_end) {
            Some(Mode::Relay) => mail = start_mail(&exe, OwnedFd::from(mail_end), None, s, &user),
            Some(Mode::Direct(pending)) => {
                if let Some(tcp) = client_socket.take() {
                    mail = start_mail(&exe, OwnedFd::from(tcp), Some(&pending), s, &user);
                }
            }
            None => {}
        },
        // Refused: the client is told, on its socket or through the relay.
        Err(Some(why)) => match (read_mode(&mail_end), &client_socket) {
            (Some(Mode::Direct(_)), Some(tcp)) => {
                let _ = (&*tcp).write_all(why.as_bytes());
            }
            _ => {
                let _ = (&mail_end).write_all(why.as_bytes());
            }
        },
        Err(None) => {}
    }
    drop(client_socket);
    if _counted.is_none() {
        sessions.keep(login);
        if let Some(m) = mail {
            sessions.keep(m);
        }
        return;
    }
    if let Some(mut m) = mail {
        let _ = m.wait();
    }
    let _ = login.wait();
}

/// login_session's result when the mail process took the connection.
const HANDED_OVER: i32 = -1;

/// Reads the login process's ticket (a byte at a time: what follows is
/// the mail process's input) and has the auth service confirm it: the
/// user to start a mail process for, or None (the client is told why).
pub fn admit(sock: &UnixStream, login_pid: u32, s: &Settings) -> Option<String> {
    match check_ticket(sock, login_pid, s) {
        Ok(u) => Some(u),
        Err(why) => {
            if let Some(why) = why {
                let _ = (&*sock).write_all(why.as_bytes());
            }
            None
        }
    }
}

/// As [`admit`], with the answer for a refused ticket returned (None:
/// no ticket at all, the client left or failed to log in).
fn check_ticket(
    sock: &UnixStream,
    login_pid: u32,
    s: &Settings,
) -> Result<String, Option<&'static str>> {
    let Ok(Some(ticket)) = login::handoff::receive_ticket(sock) else {
        return Err(None);
    };
    match login::handoff::verify(&s.sasl_path, login_pid, &ticket) {
        Verified::User(u) => Ok(u),
        Verified::Refused => Err(Some("-ERR [AUTH] Authentication failed.\r\n")),
        Verified::TempFail => Err(Some(
            "-ERR [SYS/TEMP] Temporary authentication failure.\r\n",
        )),
    }
}

/// Finds the mailbox and starts the mail process for it
/// ([`login::process::start_mail`]).
fn start_mail(
    exe: &std::path::Path,
    sock: OwnedFd,
    direct: Option<&str>,
    s: &Settings,
    user: &str,
) -> Option<std::process::Child> {
    let how = login::process::MailStart {
        role: ROLE,
        extra: &[],
        compact_heap: false,
        no_mailbox: b"-ERR [SYS/PERM] No mailbox for this user.\r\n",
        lookup_failed: b"-ERR [SYS/TEMP] Mailbox lookup failed.\r\n",
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
    let ticket = match crate::login::run(&mut client, s, peer) {
        Ok(Some(t)) => t,
        Ok(None) => return 0,
        Err(e) => {
            maillog::info!("lost connection from [{}] before login: {e}", peer.addr);
            return 0;
        }
    };
    if login::handoff::send_ticket(&mut mail, &ticket).is_err() {
        return 1;
    }
    let user = ticket.user;
    if !client.is_tls() && client.pending().len() <= DIRECT_PENDING_LIMIT {
        let pending = client.take_pending();
        {
            use base64::Engine as _;
            let b64 = base64::engine::general_purpose::STANDARD.encode(&pending);
            if (&mail)
                .write_all(format!("direct {b64}\n").as_bytes())
                .is_err()
            {
                return 1;
            }
            // The mail process gets the connection: this process ends
            // (the mail process logs the session's end).
            return HANDED_OVER;
        }
    }
    if (&mail).write_all(b"relay\n").is_err() {
        return 1;
    }
    if let Ok(c) = client.conn() {
        let _ = c.tcp().set_read_timeout(None);
    }
    match login::relay::relay(&mut client, mail, s.idle) {
        Ok(true) => {
            let _ = client.send("-ERR Disconnected for inactivity.\r\n");
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
pub fn mail_main(s: &Settings) -> i32 {
    let var = |n: &str| std::env::var(n).unwrap_or_default();
    let user = var("POP3D_USER");
    let target = Target {
        path: std::path::PathBuf::from(var("POP3D_MAILBOX")),
        maildir: var("POP3D_MAILDIR") == "1",
        uid: var("POP3D_UID").parse().unwrap_or(0),
        gid: var("POP3D_GID").parse().unwrap_or(0),
    };
    let Ok(fd) = login::process::owned(&io::stdin()) else {
        return 1;
    };
    let direct = var("POP3D_DIRECT");
    if direct != "-" {
        use base64::Engine as _;
        let pending = base64::engine::general_purpose::STANDARD
            .decode(direct.as_bytes())
            .unwrap_or_default();
        let tcp = TcpStream::from(fd);
        if let Err(e) = target.become_owner(&user) {
            maillog::warning!("{e}");
            let _ = (&tcp).write_all(b"-ERR [SYS/TEMP] Internal error.\r\n");
            return 1;
        }
        crate::mail::run_direct(tcp, pending, s, &user, &target);
        return 0;
    }
    let sock = UnixStream::from(fd);
    if let Err(e) = target.become_owner(&user) {
        maillog::warning!("{e}");
        let _ = (&sock).write_all(b"-ERR [SYS/TEMP] Internal error.\r\n");
        return 1;
    }
    crate::mail::run(sock, s, &user, &target);
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Role;
    use std::io::Read;

    /// An auth service that authenticated one login: pid 4242, request 7
    /// on the connection with cookie "c00k1e", as alice@virt.test.
    fn fake_auth(path: &std::path::Path) {
        login::stub::serve(
            path,
            login::stub::Login {
                pid: 4242,
                auth_id: 7,
                cookie: "c00k1e".into(),
                user: "alice@virt.test".into(),
            },
        )
        .unwrap();
    }

    /// A forged hand-off (a user, id or cookie the auth service never
    /// authenticated for that login process) admits nobody, so serve()
    /// starts no mail process; the real one admits the auth service's user.
    #[test]
    fn a_forged_handoff_admits_nobody() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("auth");
        fake_auth(&sock);
        let config = config::Config::from_text(
            dir.path(),
            &format!("pop3d_sasl_path = {}\n", sock.display()),
        )
        .unwrap();
        let s = Settings::load(&config, "pop3", Role::Mail).unwrap();
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
        let (got, told) = try_line("root\t7\tc00k1e\n", 4242);
        assert_eq!(got, None, "another user than the auth service's");
        assert!(told.starts_with("-ERR [AUTH]"), "{told}");
        assert_eq!(
            try_line("alice@virt.test\t7\tc00k1e\n", 4243).0,
            None,
            "another process"
        );
        assert_eq!(
            try_line("alice@virt.test\t8\tc00k1e\n", 4242).0,
            None,
            "another request"
        );
        assert_eq!(
            try_line("alice@virt.test\t7\tguess\n", 4242).0,
            None,
            "another cookie"
        );
        assert_eq!(try_line("alice@virt.test\n", 4242).0, None, "a bare name");
        assert_eq!(
            try_line("alice@virt.test\t7\tc00k1e\n", 4242).0.as_deref(),
            Some("alice@virt.test")
        );
    }
}
