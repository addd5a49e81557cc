//! One client connection (a Postfix or our smtpd, later pop3d or imapd):
//! the handshake, then each line through [`auth::dovecot::ServerConnection`],
//! each complete set of credentials through [`check`], and each answer
//! written now or, for a failure, after its delay ([`crate::delay`]).

use std::io::{BufReader, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use auth::dovecot::{self, Event, RequestInfo, ServerConnection, ServerReply, printable};
use auth::limiter::{Decision, FailureLimiter};
use auth::sasl::Credentials;

use crate::delay::{Delayer, Outstanding, Writer};
use crate::settings::Settings;

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
    /// This process's random-enough COOKIE (not used for anything here:
    /// there is no master login hand-off, but clients expect the line).
    pub(crate) cookie: String,
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
            cookie: cookie(),
        }
    }
}

/// cookie - 32 hex digits from the clock and pid; Dovecot's cookie proves a
/// login to its master process, which we do not have.
fn cookie() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{:032x}", nanos ^ (u128::from(std::process::id()) << 96))
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
pub(crate) fn serve<R: Read, W: Write + Send + 'static>(reader: R, writer: W, shared: &Shared) {
    let cuid = shared.next_cuid.fetch_add(1, Ordering::Relaxed);
    let writer: Writer = Arc::new(Mutex::new(writer));
    let outstanding: Outstanding = Arc::default();
    let hello = dovecot::server_handshake(
        &shared.settings.mechanisms,
        std::process::id(),
        u32::try_from(cuid).unwrap_or(u32::MAX),
        &shared.cookie,
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
                shared
                    .delayer
                    .send(a.delay, &writer, &outstanding, a.reply.encode());
            }
            Err(e) => {
                maillog::warning!("{}: {e}; disconnecting", who(&conn));
                return;
            }
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
        let (a, b) = UnixStream::pair().unwrap();
        let s = Arc::clone(s);
        std::thread::spawn(move || {
            let r = b.try_clone().unwrap();
            serve(r, b, &s);
        });
        auth::dovecot::Client::from_stream(a).unwrap()
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
            serve(r, b, &s2);
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
