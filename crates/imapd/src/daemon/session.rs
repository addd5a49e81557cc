//! One IMAP client connection, in three processes (Dovecot's model):
//!
//! 1. the service process (root when master runs imapd as root) accepts
//!    the connection and starts
//! 2. the login process (imapd again, `IMAPD_ROLE=login`, the client's
//!    socket on stdin, one end of a socketpair on stdout), which chroots
//!    to the queue directory and becomes mail_owner, does TLS and
//!    everything before authentication ([`super::login`]); on success it
//!    writes the user name as the first line on the socketpair
//!    ([`login::handoff`]), the tag of the LOGIN or AUTHENTICATE command
//!    as the second (the mail process answers it once the mailbox is open),
//!    and then relays cleartext between the client
//!    and
//! 3. the mail process (`IMAPD_ROLE=mail`, the other end of the socketpair
//!    on stdin), started by the service process once it has read that line
//!    and found the mailbox, which becomes the mailbox owner's uid and gid
//!    (virtual_uid_maps for virtual users, the account for system users)
//!    before it opens anything.
//!
//! A new process after login, rather than passing the client's descriptor
//! with SCM_RIGHTS to a separate mail service, keeps TLS in the login
//! process (the mail process never holds the key or the client socket)
//! and needs no second listener, at the cost of a process start per
//! login, as Dovecot's per-connection mail processes. The children are
//! started with exec (std::process::Command) rather than a bare fork, so no
//! unsafe code is needed and each starts clean. A failed login never
//! starts a mail process. Not as root (the development instance) the same
//! processes run as the invoking user, without chroot.

use std::io::{self, Write};
use std::net::TcpStream;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};

use login::conn::{Client, Conn};
use login::handoff::Verified;

use super::login::Peer;
use super::settings::Settings;
use login::location::Target;

/// The environment variable that starts a child role.
pub const ROLE: &str = "IMAPD_ROLE";

/// Serves one accepted connection; returns when every child has exited.
pub fn serve(tcp: TcpStream, s: &Settings) {
    let (login_end, mail_end) = match UnixStream::pair() {
        Ok(p) => p,
        Err(e) => {
            maillog::warning!("socketpair: {e}");
            return;
        }
    };
    let Ok(exe) = std::env::current_exe() else {
        maillog::warning!("cannot find my own executable");
        return;
    };
    let mut login = match Command::new(&exe)
        .args(std::env::args_os().skip(1))
        .env(ROLE, "login")
        .stdin(Stdio::from(OwnedFd::from(tcp)))
        .stdout(Stdio::from(OwnedFd::from(login_end)))
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            maillog::warning!("start login process: {e}");
            return;
        }
    };
    let mut mail = None;
    if let Some(user) = admit(&mail_end, login.id(), s) {
        mail = start_mail(&exe, mail_end, s, &user);
    }
    let _ = login.wait();
    if let Some(mut m) = mail {
        let _ = m.wait();
    }
}

/// Reads the login process's ticket (a byte at a time: what follows, the
/// tag of the login command, is the mail process's input) and has the
/// auth service confirm it (login::handoff::verify): the user to start a
/// mail process for, or None (the client is told why). A login process
/// cannot name a user the auth service did not authenticate for it.
fn admit(sock: &UnixStream, login_pid: u32, s: &Settings) -> Option<String> {
    let Ok(Some(ticket)) = login::handoff::receive_ticket(sock) else {
        return None;
    };
    let why: &[u8] = match login::handoff::verify(&s.sasl_path, login_pid, &ticket) {
        Verified::User(u) => return Some(u),
        Verified::Refused => b"* BYE [AUTHENTICATIONFAILED] Authentication failed.\r\n",
        Verified::TempFail => b"* BYE [UNAVAILABLE] Temporary authentication failure.\r\n",
    };
    let _ = (&*sock).write_all(why);
    None
}

/// Finds the mailbox and starts the mail process for it.
fn start_mail(
    exe: &std::path::Path,
    sock: UnixStream,
    s: &Settings,
    user: &str,
) -> Option<std::process::Child> {
    let target = match s.location.locate(user) {
        Ok(Some(t)) => t,
        Ok(None) => {
            maillog::warning!("{user}: no mailbox (not in virtual_mailbox_maps, no such account)");
            let _ = (&sock).write_all(b"* BYE [UNAVAILABLE] No mailbox for this user.\r\n");
            return None;
        }
        Err(e) => {
            maillog::warning!("{user}: {e}");
            let _ = (&sock).write_all(b"* BYE [UNAVAILABLE] Mailbox lookup failed.\r\n");
            return None;
        }
    };
    let spawned = Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(ROLE, "mail")
        .env("IMAPD_USER", user)
        .env("IMAPD_MAILBOX", &target.path)
        .env("IMAPD_MAILDIR", if target.maildir { "1" } else { "0" })
        .env("IMAPD_UID", target.uid.to_string())
        .env("IMAPD_GID", target.gid.to_string())
        .stdin(Stdio::from(OwnedFd::from(sock)))
        .stdout(Stdio::null())
        .spawn();
    match spawned {
        Ok(c) => Some(c),
        Err(e) => {
            maillog::warning!("{user}: start mail process: {e}");
            None
        }
    }
}

/// The login process: jail, pre-login session, hand-off, relay. Its exit code.
pub fn login_main(s: &Settings) -> i32 {
    let (tcp, mail, peer) = match login::process::login_start(&s.mail_owner, &s.queue_directory) {
        login::process::LoginStart::Serve(tcp, mail, peer) => (tcp, mail, peer),
        login::process::LoginStart::Exit(code) => return code,
    };
    let code = login_session(tcp, mail, s, &peer);
    maillog::info!("disconnect from [{}]", peer.addr);
    code
}

fn login_session(tcp: TcpStream, mut mail: UnixStream, s: &Settings, peer: &Peer) -> i32 {
    let _counted =
        match login::anvil::connect(&s.service, &peer.addr.to_string(), s.connection_limit) {
            Ok(c) => c,
            Err(count) => {
                maillog::warning!(
                    "Connection concurrency limit exceeded: {count} from [{}] for service {}",
                    peer.addr,
                    s.service
                );
                let _ = (&tcp).write_all(b"* BYE Too many connections from your address.\r\n");
                return 0;
            }
        };
    let _ = tcp.set_read_timeout(Some(s.login_timeout));
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
    if let Err(e) = target.become_owner(&user) {
        maillog::warning!("{e}");
        let _ = (&sock).write_all(b"* BYE [UNAVAILABLE] Internal error.\r\n");
        return 1;
    }
    super::mail::run(sock, s, &user, &target);
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::settings::Role;
    use std::io::Read;

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
