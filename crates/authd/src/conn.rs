//! One client connection (a Postfix or our smtpd, later pop3d or imapd):
//! the handshake, then each line through [`auth::dovecot::ServerConnection`],
//! each complete set of credentials through [`check`], and each answer
//! written now or, for a failure, after its delay ([`crate::delay`]).
//! A successful login (AUTH without `nologin`) is kept for the master's
//! REQUEST ([`crate::logins`]), which only root or our own uid may send.

use std::io::{BufReader, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use auth::dovecot::{self, Event, RequestInfo, ServerConnection, ServerReply, printable};
use auth::limiter::{Decision, FailureLimiter};
use auth::sasl::Credentials;

use crate::delay::{Delayer, Outstanding, Writer};
use crate::logins::Logins;
use crate::settings::Settings;

/// Who is at the other end of a connection (SO_PEERCRED), when known.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Peer {
    /// The peer's pid.
    pub(crate) pid: Option<u32>,
    /// The peer's uid.
    pub(crate) uid: Option<u32>,
}

/// What every connection thread shares.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The settings from main.cf.
    pub(crate) settings: Settings,
    /// Failures per client address.
    pub(crate) limiter: Mutex<FailureLimiter<String>>,
    /// The timer for delayed answers.
    pub(crate) delayer: Delayer,
    /// Connection counter, for CUID.
    pub(crate) next_cuid: AtomicUsize,
    /// Finished logins waiting for the master's REQUEST.
    pub(crate) logins: Mutex<Logins>,
    /// /dev/urandom, opened at startup, for the per-connection cookies.
    pub(crate) random: Option<Mutex<std::fs::File>>,
}

impl Shared {
    /// Shared state for these settings.
    pub(crate) fn new(settings: Settings, delayer: Delayer) -> Shared {
        let limiter = Mutex::new(FailureLimiter::new(settings.limiter));
        Shared {
            settings,
            limiter,
            delayer,
            next_cuid: AtomicUsize::new(1),
            logins: Mutex::new(Logins::default()),
            random: std::fs::File::open("/dev/urandom").ok().map(Mutex::new),
        }
    }

    /// cookie - 32 hex digits from /dev/urandom, new for each connection:
    /// the master's REQUEST names a login by it, so another login process
    /// cannot guess it (Dovecot's cookie). Without /dev/urandom, from the
    /// clock, pid and connection number (unique, not secret).
    fn cookie(&self, cuid: usize) -> String {
        let mut bytes = [0u8; 16];
        if let Some(r) = &self.random
            && let Ok(mut f) = r.lock()
            && f.read_exact(&mut bytes).is_ok()
        {
            return bytes.iter().map(|b| format!("{b:02x}")).collect();
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        format!(
            "{:032x}",
            nanos ^ (u128::from(std::process::id()) << 96) ^ ((cuid as u128) << 64)
        )
    }
}

/// May this peer send REQUEST? Root, or our own uid (the development
/// instance, where every process is one user).
fn master_allowed(peer: Peer) -> bool {
    let me = nix::unistd::geteuid().as_raw();
    peer.uid.is_some_and(|u| u == 0 || u == me)
}

/// What to answer, and after how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    /// The OK or FAIL line.
    pub(crate) reply: ServerReply,
    /// How long to wait before sending it.
    pub(crate) delay: Duration,
}

/// serve - runs one connection until the client hangs up or breaks the
/// protocol. `reader` and `writer` are the two halves of one stream.
pub(crate) fn serve<R: Read, W: Write + Send + 'static>(
    reader: R,
    writer: W,
    peer: Peer,
    shared: &Shared,
) {
    let cuid = shared.next_cuid.fetch_add(1, Ordering::Relaxed);
    let cookie = shared.cookie(cuid);
    let writer: Writer = Arc::new(Mutex::new(writer));
    let outstanding: Outstanding = Arc::default();
    let hello = dovecot::server_handshake(
        &shared.settings.mechanisms,
        std::process::id(),
        u32::try_from(cuid).unwrap_or(u32::MAX),
        &cookie,
    );
    if !write_now(&writer, &hello) {
        return;
    }
    let mut conn = ServerConnection::new(&shared.settings.mechanisms);
    let mut reader = BufReader::new(reader);
    loop {
        let line = match dovecot::read_line(&mut reader) {
            Ok(Some(l)) => l,
            Ok(None) => return,
            Err(e) => {
                maillog::warning!("{}: read: {e}; disconnecting", who(&conn));
                return;
            }
        };
        match conn.handle_line(&line) {
            Ok(Event::None) => {}
            Ok(Event::Reply(r)) => {
                log_protocol_fail(&conn, &r);
                if !write_now(&writer, &r.encode()) {
                    return;
                }
            }
            Ok(Event::Verify { info, credentials }) => {
                let a = check(shared, &info, &credentials, Instant::now());
                if let ServerReply::Ok { user: Some(u), .. } = &a.reply
                    && !info.nologin
                {
                    // Kept before the OK is written: the login process
                    // hands over only after it has read the OK.
                    let pid = peer.pid.or(conn.client_pid()).unwrap_or(0);
                    if let Ok(mut l) = shared.logins.lock() {
                        l.insert(&cookie, info.id, pid, u, Instant::now());
                    }
                }
                shared
                    .delayer
                    .send(a.delay, &writer, &outstanding, a.reply.encode());
            }
            Ok(Event::MasterRequest {
                id,
                client_pid,
                auth_id,
                cookie: asked,
            }) => {
                let reply = master_request(shared, peer, id, client_pid, auth_id, &asked);
                if !write_now(&writer, &reply.encode()) {
                    return;
                }
            }
            Err(e) => {
                maillog::warning!("{}: {e}; disconnecting", who(&conn));
                return;
            }
        }
    }
}

/// master_request - the answer to a REQUEST from `peer`.
fn master_request(
    shared: &Shared,
    peer: Peer,
    id: u32,
    client_pid: u32,
    auth_id: u32,
    cookie: &str,
) -> ServerReply {
    if !master_allowed(peer) {
        maillog::warning!(
            "REQUEST from uid {} refused: only root may ask for logins",
            peer.uid.map_or("unknown".to_string(), |u| u.to_string())
        );
        return ServerReply::fail(id, Some("REQUEST not allowed"), None, false);
    }
    let user = shared
        .logins
        .lock()
        .ok()
        .and_then(|mut l| l.take(cookie, auth_id, client_pid, Instant::now()));
    match user {
        Some(u) => ServerReply::User {
            id,
            user: u,
            extra: Vec::new(),
        },
        None => {
            maillog::warning!(
                "REQUEST for login pid {client_pid} request {auth_id}: no such login (never authenticated, expired or already handed over)"
            );
            ServerReply::NotFound(id)
        }
    }
}

fn who(conn: &ServerConnection) -> String {
    match conn.client_pid() {
        Some(pid) => format!("client pid {pid}"),
        None => "client".to_string(),
    }
}

fn write_now(writer: &Writer, text: &str) -> bool {
    match writer.lock() {
        Ok(mut w) => w.write_all(text.as_bytes()).is_ok(),
        Err(_) => false,
    }
}

/// Failures the state machine answers itself (bad base64, cancelled,
/// unknown mechanism) are logged at info level: no password was tried.
fn log_protocol_fail(conn: &ServerConnection, r: &ServerReply) {
    if let ServerReply::Fail {
        id,
        reason: Some(reason),
        ..
    } = r
    {
        maillog::info!("{}: request {id}: {reason}", who(conn));
    }
}

/// check - the password check for one request, with the per-client limit.
/// Never logs the password.
pub(crate) fn check(
    shared: &Shared,
    info: &RequestInfo,
    creds: &Credentials,
    now: Instant,
) -> Answer {
    let rip = info
        .remote_ip
        .as_deref()
        .map(printable)
        .unwrap_or_else(|| "unknown".to_string());
    let user = printable(&creds.authcid);
    let service = if info.service.is_empty() {
        "unknown".to_string()
    } else {
        printable(&info.service)
    };
    let method = info.mechanism.name();
    let decision = match shared.limiter.lock() {
        Ok(mut l) => l.check(&rip, now),
        Err(_) => Decision::Allow,
    };
    if let Decision::Deny { retry_after } = decision {
        maillog::warning!(
            "{service}: {method} authentication refused for user=<{user}> rip={rip}: too many failures, try again in {}s",
            retry_after.as_secs().max(1)
        );
        return Answer {
            reply: ServerReply::fail(
                info.id,
                Some("Too many failed authentication attempts, try again later"),
                Some(&user),
                true,
            ),
            delay: shared.settings.limiter.base_delay,
        };
    }
    match shared.settings.passdb.verify_credentials(creds) {
        Ok(Some(a)) => {
            if let Ok(mut l) = shared.limiter.lock() {
                l.record_success(&rip, now);
            }
            maillog::info!(
                "{service}: {method} authentication succeeded for user=<{}> rip={rip} passdb={}",
                printable(a.user()),
                a.source()
            );
            Answer {
                reply: ServerReply::ok(info.id, a.user()),
                delay: Duration::ZERO,
            }
        }
        Ok(None) => {
            let delay = match shared.limiter.lock() {
                Ok(mut l) => l.record_failure(&rip, now),
                Err(_) => shared.settings.limiter.max_delay,
            };
            let why = if creds.authzid_ok() {
                String::new()
            } else {
                format!(
                    " (authorization id <{}> is not the login)",
                    printable(creds.authzid.as_deref().unwrap_or(""))
                )
            };
            maillog::warning!(
                "{service}: {method} authentication failed for user=<{user}> rip={rip}{why}"
            );
            Answer {
                reply: ServerReply::fail(
                    info.id,
                    Some("Authentication failed"),
                    Some(&user),
                    false,
                ),
                delay,
            }
        }
        Err(e) => {
            maillog::warning!(
                "{service}: {method} authentication failed for user=<{user}> rip={rip}: {e}"
            );
            Answer {
                reply: ServerReply::fail(
                    info.id,
                    Some("Temporary authentication failure"),
                    Some(&user),
                    true,
                ),
                delay: Duration::ZERO,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Settings;
    use auth::limiter::LimiterConfig;
    use auth::sasl::Mechanism;
    use auth::{PassDb, Source};
    use base64::Engine as _;
    use std::os::unix::net::UnixStream;

    fn shared(dir: &std::path::Path, base_delay: Duration, max_attempts: usize) -> Arc<Shared> {
        let pw = dir.join("passwd");
        std::fs::write(
            &pw,
            "alice@example.com:{PLAIN}secret::::::\nbroken:{ROT13}x\n",
        )
        .unwrap();
        let settings = Settings {
            passdb: PassDb::from_sources(vec![Source::PasswdFile(pw)]),
            limiter: LimiterConfig {
                base_delay,
                max_attempts,
                ..LimiterConfig::default()
            },
            client_limit: 10,
            mechanisms: vec![Mechanism::Plain, Mechanism::Login],
        };
        Arc::new(Shared::new(settings, Delayer::start().unwrap()))
    }

    fn creds(user: &str, pw: &str) -> Credentials {
        Credentials {
            authzid: None,
            authcid: user.into(),
            password: pw.into(),
            apop: None,
        }
    }

    fn info(id: u32, rip: &str) -> RequestInfo {
        RequestInfo {
            id,
            mechanism: Mechanism::Plain,
            service: "smtp".into(),
            remote_ip: Some(rip.into()),
            local_ip: None,
            secured: false,
            nologin: true,
        }
    }

    #[test]
    fn check_ok_fail_temp_and_limit() {
        let dir = tempfile::tempdir().unwrap();
        let s = shared(dir.path(), Duration::from_secs(1), 3);
        let t = Instant::now();
        let a = check(
            &s,
            &info(1, "192.0.2.1"),
            &creds("alice@example.com", "secret"),
            t,
        );
        assert_eq!(a.reply, ServerReply::ok(1, "alice@example.com"));
        assert_eq!(a.delay, Duration::ZERO);
        let a = check(
            &s,
            &info(2, "192.0.2.1"),
            &creds("alice@example.com", "nope"),
            t,
        );
        assert!(matches!(a.reply, ServerReply::Fail { temp: false, .. }));
        assert_eq!(a.delay, Duration::from_secs(1));
        let a = check(&s, &info(3, "192.0.2.1"), &creds("nobody", "x"), t);
        assert_eq!(a.delay, Duration::from_secs(2));
        let a = check(&s, &info(4, "192.0.2.1"), &creds("broken", "x"), t);
        assert!(matches!(a.reply, ServerReply::Fail { temp: true, .. }));
        let mut other = creds("alice@example.com", "secret");
        other.authzid = Some("bob".into());
        let a = check(&s, &info(5, "192.0.2.1"), &other, t);
        assert!(matches!(a.reply, ServerReply::Fail { temp: false, .. }));
        // Three failures in the window: refused without a check, even with
        // the right password; another client is not affected.
        let a = check(
            &s,
            &info(6, "192.0.2.1"),
            &creds("alice@example.com", "secret"),
            t,
        );
        assert!(
            matches!(&a.reply, ServerReply::Fail { temp: true, reason: Some(r), .. } if r.contains("Too many")),
            "{a:?}"
        );
        let a = check(
            &s,
            &info(7, "192.0.2.2"),
            &creds("alice@example.com", "secret"),
            t,
        );
        assert!(matches!(a.reply, ServerReply::Ok { .. }));
    }

    fn b64(s: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn start(s: &Arc<Shared>) -> auth::dovecot::Client {
        auth::dovecot::Client::from_stream(connect(s)).unwrap()
    }

    fn connect(s: &Arc<Shared>) -> UnixStream {
        let (a, b) = UnixStream::pair().unwrap();
        let s = Arc::clone(s);
        std::thread::spawn(move || {
            let peer = crate::server::peer_of(&b);
            let r = b.try_clone().unwrap();
            serve(r, b, peer, &s);
        });
        a
    }

    /// A login (no `nologin`) can be asked for once by the master, with
    /// the right pid, id and cookie; a check (`nologin`) or a failed login
    /// cannot; a peer that is neither root nor our uid may not ask.
    #[test]
    fn master_request_for_logins_only() {
        use auth::dovecot::{MasterAnswer, request_over};
        let dir = tempfile::tempdir().unwrap();
        let s = shared(dir.path(), Duration::ZERO, 10);
        let ci = auth::dovecot::ClientInfo {
            service: "pop3".into(),
            remote_ip: "192.0.2.1".into(),
            local_ip: "127.0.0.1".into(),
            secured: true,
        };
        let me = std::process::id();
        let mut login = start(&s);
        login.set_login(true);
        let ok = login
            .begin("PLAIN", Some(&b64(b"\0alice@example.com\0secret")), &ci)
            .unwrap();
        assert_eq!(ok, auth::dovecot::Step::Ok("alice@example.com".into()));
        let id = login.last_request_id().unwrap();
        let cookie = login.cookie().unwrap().to_string();
        assert_eq!(cookie.len(), 32);
        assert_ne!(
            start(&s).cookie(),
            Some(cookie.as_str()),
            "a cookie per connection"
        );
        let ask = |pid, id, cookie: &str| request_over(connect(&s), pid, id, cookie).unwrap();
        assert_eq!(
            ask(me + 1, id, &cookie),
            MasterAnswer::NotFound,
            "another pid"
        );
        // The wrong ask forgot it: the hand-off fails closed.
        assert_eq!(ask(me, id, &cookie), MasterAnswer::NotFound);
        login
            .begin("PLAIN", Some(&b64(b"\0alice@example.com\0secret")), &ci)
            .unwrap();
        let id = login.last_request_id().unwrap();
        assert_eq!(
            ask(me, id, "0123"),
            MasterAnswer::NotFound,
            "another cookie"
        );
        login
            .begin("PLAIN", Some(&b64(b"\0alice@example.com\0secret")), &ci)
            .unwrap();
        let id = login.last_request_id().unwrap();
        assert_eq!(
            ask(me, id, &cookie),
            MasterAnswer::User("alice@example.com".into())
        );
        assert_eq!(ask(me, id, &cookie), MasterAnswer::NotFound, "only once");
        // A failed login, and a check without login, leave nothing.
        let fail = login
            .begin("PLAIN", Some(&b64(b"\0alice@example.com\0wrong")), &ci)
            .unwrap();
        assert!(matches!(fail, auth::dovecot::Step::Fail(_)));
        let id = login.last_request_id().unwrap();
        assert_eq!(ask(me, id, &cookie), MasterAnswer::NotFound);
        let mut check = start(&s);
        check
            .begin("PLAIN", Some(&b64(b"\0alice@example.com\0secret")), &ci)
            .unwrap();
        let cookie = check.cookie().unwrap().to_string();
        let id = check.last_request_id().unwrap();
        assert_eq!(ask(me, id, &cookie), MasterAnswer::NotFound, "nologin");
        // Only root or our own uid may ask.
        let stranger = Peer {
            pid: Some(1),
            uid: Some(nix::unistd::geteuid().as_raw() + 1),
        };
        let reply = master_request(&s, stranger, 5, me, 1, &cookie);
        assert!(
            matches!(reply, ServerReply::Fail { id: 5, .. }),
            "{reply:?}"
        );
        assert!(master_allowed(Peer {
            pid: None,
            uid: Some(0)
        }));
        assert!(!master_allowed(Peer::default()));
    }

    #[test]
    fn a_delayed_failure_does_not_hold_up_others() {
        let dir = tempfile::tempdir().unwrap();
        let s = shared(dir.path(), Duration::from_millis(800), 10);
        let ci = |rip: &str| auth::dovecot::ClientInfo {
            service: "smtp".into(),
            remote_ip: rip.into(),
            local_ip: "127.0.0.1".into(),
            secured: false,
        };
        let mut bad = start(&s);
        let t0 = Instant::now();
        let h = std::thread::spawn(move || {
            let step = bad.begin(
                "PLAIN",
                Some(&b64(b"\0alice@example.com\0wrong")),
                &ci("192.0.2.9"),
            );
            (step.unwrap(), Instant::now())
        });
        std::thread::sleep(Duration::from_millis(100));
        let mut good = start(&s);
        let step = good.begin("LOGIN", None, &ci("192.0.2.10")).unwrap();
        assert_eq!(step, auth::dovecot::Step::Continue("VXNlcm5hbWU6".into()));
        good.respond(&b64(b"alice@example.com")).unwrap();
        assert_eq!(
            good.respond(&b64(b"secret")).unwrap(),
            auth::dovecot::Step::Ok("alice@example.com".into())
        );
        assert!(
            t0.elapsed() < Duration::from_millis(700),
            "good client waited"
        );
        let (step, at) = h.join().unwrap();
        assert_eq!(
            step,
            auth::dovecot::Step::Fail("Authentication failed".into())
        );
        assert!(at.duration_since(t0) >= Duration::from_millis(800));
    }

    #[test]
    fn protocol_error_disconnects() {
        let dir = tempfile::tempdir().unwrap();
        let s = shared(dir.path(), Duration::ZERO, 10);
        let (mut a, b) = UnixStream::pair().unwrap();
        let s2 = Arc::clone(&s);
        let t = std::thread::spawn(move || {
            let r = b.try_clone().unwrap();
            serve(r, b, Peer::default(), &s2);
        });
        a.write_all(b"HELLO\n").unwrap();
        t.join().unwrap();
        let mut got = String::new();
        a.read_to_string(&mut got).unwrap();
        assert!(
            got.starts_with("VERSION\t1\t2\nMECH\tPLAIN\tplaintext\n"),
            "{got}"
        );
        assert!(got.ends_with("DONE\n"));
    }
}
