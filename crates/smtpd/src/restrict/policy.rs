//! check_policy_service: Postfix's policy delegation protocol
//! (SMTPD_POLICY_README).
//!
//! For each check smtpd sends the policy server one request, a block of
//! `name=value` lines ended by an empty line (`request=smtpd_access_policy`,
//! `protocol_state=RCPT`, `client_address=...`, ...), and reads one reply
//! block of the same shape whose `action=` value is then read as an
//! access(5) table value (OK, DUNNO, REJECT text, DEFER_IF_PERMIT text,
//! 450 text, a restriction list, ...).
//!
//! Connections (`inet:host:port`, or `unix:path`, relative to the queue
//! directory like `private/policy`) are kept and reused across requests
//! and worker threads; a connection is closed after
//! smtpd_policy_service_max_idle without use, after
//! smtpd_policy_service_max_ttl of life or after
//! smtpd_policy_service_request_limit requests. A request that fails (no
//! connection, a write or read error, smtpd_policy_service_timeout
//! without a full answer, a reply without `action=`) is tried again on a
//! new connection after smtpd_policy_service_retry_delay, up to
//! smtpd_policy_service_try_limit attempts; then the check acts as
//! smtpd_policy_service_default_action says (`451 4.3.5 Server
//! configuration problem` by default). So a policy server that is down or
//! hangs costs at most try_limit × timeout per check, never a crash.
//!
//! Per-service settings override the main.cf ones, as in Postfix 3.0:
//! `check_policy_service { inet:127.0.0.1:9998, timeout=10s,
//! default_action=DUNNO, max_idle=.., max_ttl=.., try_limit=..,
//! request_limit=.., retry_delay=.., policy_context=.. }`.
//!
//! # Security
//!
//! The policy server is trusted configuration, but its replies are still
//! bounded: [`REPLY_LIMIT`] bytes per reply, and the action text goes
//! through the same parser as an access table value.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most bytes read for one policy reply.
pub const REPLY_LIMIT: usize = 64 * 1024;

/// The session facts only a policy request needs (the restrictions
/// themselves look at [`super::Facts`]).
#[derive(Debug, Clone, Default)]
pub struct SessionInfo {
    /// `SMTP` or `ESMTP`.
    pub protocol_name: String,
    /// The queue id, once cleanup has assigned one.
    pub queue_id: String,
    /// Recipients accepted so far in this transaction.
    pub recipient_count: usize,
    /// The SASL mechanism, after AUTH.
    pub sasl_method: String,
    /// The MAIL FROM AUTH= parameter.
    pub sasl_sender: String,
    /// The client's TCP port.
    pub client_port: Option<u16>,
    /// Our address and port.
    pub server_address: String,
    /// Our port.
    pub server_port: Option<u16>,
    /// Unique per mail transaction (policy servers correlate requests).
    pub instance: String,
    /// The MAIL FROM SIZE= value.
    pub size: u64,
    /// The TLS protocol version, when TLS is on.
    pub encryption_protocol: String,
    /// The TLS cipher, when TLS is on.
    pub encryption_cipher: String,
    /// The cipher's key size.
    pub encryption_keysize: u32,
}

/// The settings of one policy service (main.cf's, or the `{ }` overrides).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// smtpd_policy_service_timeout.
    pub timeout: Duration,
    /// smtpd_policy_service_max_idle.
    pub max_idle: Duration,
    /// smtpd_policy_service_max_ttl.
    pub max_ttl: Duration,
    /// smtpd_policy_service_try_limit.
    pub try_limit: u32,
    /// smtpd_policy_service_retry_delay.
    pub retry_delay: Duration,
    /// smtpd_policy_service_request_limit (0: no limit).
    pub request_limit: u64,
    /// smtpd_policy_service_default_action.
    pub default_action: String,
    /// smtpd_policy_service_policy_context.
    pub policy_context: String,
}

impl Settings {
    /// The main.cf settings.
    pub fn from_config(cfg: &config::Config) -> Settings {
        Settings {
            timeout: cfg.time("smtpd_policy_service_timeout"),
            max_idle: cfg.time("smtpd_policy_service_max_idle"),
            max_ttl: cfg.time("smtpd_policy_service_max_ttl"),
            try_limit: u32::try_from(cfg.int("smtpd_policy_service_try_limit"))
                .unwrap_or(2)
                .max(1),
            retry_delay: cfg.time("smtpd_policy_service_retry_delay"),
            request_limit: u64::try_from(cfg.int("smtpd_policy_service_request_limit"))
                .unwrap_or(0),
            default_action: cfg.str("smtpd_policy_service_default_action"),
            policy_context: cfg.str("smtpd_policy_service_policy_context"),
        }
    }

    /// Applies one `name=value` of a `{ }` service specification.
    fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        let time = |v: &str| {
            config::value::parse_time(v, 's')
                .map(Duration::from_secs)
                .ok_or_else(|| format!("{name}={v}: bad time value"))
        };
        let int = |v: &str| {
            v.parse::<u64>()
                .map_err(|_| format!("{name}={v}: not a number"))
        };
        match name {
            "timeout" => self.timeout = time(value)?,
            "max_idle" => self.max_idle = time(value)?,
            "max_ttl" => self.max_ttl = time(value)?,
            "retry_delay" => self.retry_delay = time(value)?,
            "try_limit" => self.try_limit = u32::try_from(int(value)?.max(1)).unwrap_or(1),
            "request_limit" => self.request_limit = int(value)?,
            "default_action" => self.default_action = value.to_string(),
            "policy_context" => self.policy_context = value.to_string(),
            _ => return Err(format!("unknown policy service attribute \"{name}\"")),
        }
        Ok(())
    }
}

/// Where a policy server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `inet:host:port`.
    Inet(String),
    /// `unix:path`.
    Unix(String),
}

impl Endpoint {
    /// Parses `inet:host:port`, `inet:[v6]:port` or `unix:path`.
    ///
    /// # Errors
    /// Another type, or no port.
    pub fn parse(spec: &str) -> Result<Endpoint, String> {
        if let Some(hp) = spec.strip_prefix("inet:") {
            let Some((host, port)) = hp.rsplit_once(':') else {
                return Err(format!("{spec}: need inet:host:port"));
            };
            if port.parse::<u16>().is_err() {
                return Err(format!("{spec}: bad port \"{port}\""));
            }
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let host = if host.contains(':') {
                format!("[{host}]")
            } else {
                host.to_string()
            };
            Ok(Endpoint::Inet(format!("{host}:{port}")))
        } else if let Some(p) = spec.strip_prefix("unix:") {
            Ok(Endpoint::Unix(p.to_string()))
        } else {
            Err(format!("{spec}: need inet:host:port or unix:pathname"))
        }
    }
}

/// One `check_policy_service` argument: the server and its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// The address as written (for the log).
    pub name: String,
    /// Where it listens.
    pub endpoint: Endpoint,
    /// Its settings.
    pub settings: Settings,
}

impl Spec {
    /// Parses `inet:host:port` or `{ inet:host:port, name=value, ... }`.
    ///
    /// # Errors
    /// A bad address or attribute.
    pub fn parse(arg: &str, base: &Settings) -> Result<Spec, String> {
        let mut settings = base.clone();
        let inner = arg.trim();
        let words: Vec<&str> = match inner.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(body) => body
                .split([',', ' ', '\t', '\n'])
                .filter(|w| !w.is_empty())
                .collect(),
            None => vec![inner],
        };
        let Some((first, rest)) = words.split_first() else {
            return Err("check_policy_service: empty service specification".into());
        };
        for w in rest {
            let Some((n, v)) = w.split_once('=') else {
                return Err(format!("{arg}: expected name=value, got \"{w}\""));
            };
            settings.set(n.trim(), v.trim())?;
        }
        Ok(Spec {
            name: first.to_string(),
            endpoint: Endpoint::parse(first)?,
            settings,
        })
    }
}

/// An open connection to a policy server.
#[derive(Debug)]
struct Link {
    reader: BufReader<Stream>,
    born: Instant,
    used: Instant,
    requests: u64,
}

#[derive(Debug)]
enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl std::io::Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Stream {
    fn write_all(&mut self, b: &[u8]) -> std::io::Result<()> {
        match self {
            Stream::Tcp(s) => s.write_all(b),
            Stream::Unix(s) => s.write_all(b),
        }
    }

    fn set_timeout(&self, t: Duration) -> std::io::Result<()> {
        let t = Some(t.max(Duration::from_millis(1)));
        match self {
            Stream::Tcp(s) => s.set_read_timeout(t).and_then(|()| s.set_write_timeout(t)),
            Stream::Unix(s) => s.set_read_timeout(t).and_then(|()| s.set_write_timeout(t)),
        }
    }
}

/// One policy server with its idle connections, shared by the worker
/// threads.
#[derive(Debug)]
pub struct Client {
    arg: String,
    spec: Spec,
    idle: Mutex<Vec<Link>>,
}

/// Most idle connections kept per policy server.
const IDLE_POOL: usize = 8;

impl Client {
    /// A client for `spec`, written `arg` in main.cf; nothing is
    /// connected yet.
    pub fn new(arg: String, spec: Spec) -> Client {
        Client {
            arg,
            spec,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// The check_policy_service argument as written.
    pub fn arg(&self) -> &str {
        &self.arg
    }

    /// The specification this client serves.
    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// Sends `request` (name, value pairs) and returns the action, or the
    /// default action after try_limit failed attempts. `queue_dir` anchors
    /// relative `unix:` paths.
    pub fn query(&self, queue_dir: &Path, request: &[(&str, String)]) -> String {
        let s = &self.spec.settings;
        let mut text = String::new();
        for (n, v) in request {
            // A value cannot carry a newline: it would end the attribute.
            let v: String = v
                .chars()
                .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
                .collect();
            text.push_str(n);
            text.push('=');
            text.push_str(&v);
            text.push('\n');
        }
        text.push('\n');
        for attempt in 1..=s.try_limit {
            match self.attempt(queue_dir, text.as_bytes()) {
                Ok(action) => return action,
                Err(e) => {
                    maillog::warning!("problem talking to server {}: {e}", self.spec.name);
                    if attempt < s.try_limit {
                        std::thread::sleep(s.retry_delay);
                    }
                }
            }
        }
        maillog::warning!(
            "{}: no response from policy server; using default action: {}",
            self.spec.name,
            s.default_action
        );
        s.default_action.clone()
    }

    fn attempt(&self, queue_dir: &Path, request: &[u8]) -> Result<String, String> {
        let s = &self.spec.settings;
        let mut link = match self.take_idle() {
            Some(l) => l,
            None => self.connect(queue_dir)?,
        };
        link.reader
            .get_ref()
            .set_timeout(s.timeout)
            .map_err(|e| e.to_string())?;
        link.reader
            .get_mut()
            .write_all(request)
            .map_err(|e| e.to_string())?;
        let attrs = read_reply(&mut link.reader, s.timeout)?;
        link.requests += 1;
        link.used = Instant::now();
        let action = attrs
            .into_iter()
            .find(|(n, _)| n == "action")
            .map(|(_, v)| v)
            .ok_or_else(|| "reply without action attribute".to_string())?;
        self.put_idle(link);
        Ok(action)
    }

    fn connect(&self, queue_dir: &Path) -> Result<Link, String> {
        let t = self.spec.settings.timeout;
        let stream = match &self.spec.endpoint {
            Endpoint::Inet(hp) => {
                let addrs: Vec<std::net::SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(hp)
                    .map_err(|e| format!("{hp}: {e}"))?
                    .collect();
                let mut last = format!("{hp}: no address");
                let mut found = None;
                for a in addrs {
                    match TcpStream::connect_timeout(&a, t) {
                        Ok(s) => {
                            found = Some(s);
                            break;
                        }
                        Err(e) => last = format!("connect to {a}: {e}"),
                    }
                }
                Stream::Tcp(found.ok_or(last)?)
            }
            Endpoint::Unix(p) => {
                let path = queue_dir.join(p);
                Stream::Unix(
                    UnixStream::connect(&path)
                        .map_err(|e| format!("connect to {}: {e}", path.display()))?,
                )
            }
        };
        let now = Instant::now();
        Ok(Link {
            reader: BufReader::new(stream),
            born: now,
            used: now,
            requests: 0,
        })
    }

    fn take_idle(&self) -> Option<Link> {
        let s = &self.spec.settings;
        let mut idle = self.idle.lock().ok()?;
        while let Some(l) = idle.pop() {
            let fresh = l.used.elapsed() < s.max_idle && l.born.elapsed() < s.max_ttl;
            if fresh {
                return Some(l);
            }
        }
        None
    }

    fn put_idle(&self, link: Link) {
        let s = &self.spec.settings;
        if s.request_limit > 0 && link.requests >= s.request_limit {
            return;
        }
        if link.born.elapsed() >= s.max_ttl {
            return;
        }
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < IDLE_POOL
        {
            idle.push(link);
        }
    }
}

impl super::Eval<'_, '_> {
    /// check_policy_service: ask the server, then read its action as an
    /// access table value (Postfix's check_policy_service and
    /// check_table_result).
    pub(super) fn policy(&mut self, arg: &str, fr: super::Frame<'_>) -> super::Status {
        let r = self.r;
        let Some(client) = r.policies.iter().find(|c| c.arg() == arg) else {
            maillog::warning!("check_policy_service {arg}: not configured here");
            return self.server_error();
        };
        let request = self.policy_request(&client.spec().settings.policy_context);
        let action = client.query(&r.queue_dir, &request);
        self.table_result(&action, fr.name, fr.class, fr.def_acl)
    }

    /// The attributes of one request, in SMTPD_POLICY_README's order.
    fn policy_request(&self, context: &str) -> Vec<(&'static str, String)> {
        let f = self.f;
        let none = SessionInfo::default();
        let s = f.session.unwrap_or(&none);
        let opt = |v: Option<u16>| v.map(|p| p.to_string()).unwrap_or_default();
        let nz = |v: u64| if v == 0 { String::new() } else { v.to_string() };
        let protocol = if s.protocol_name.is_empty() {
            "SMTP"
        } else {
            &s.protocol_name
        };
        vec![
            ("request", "smtpd_access_policy".into()),
            ("protocol_state", self.stage.into()),
            ("protocol_name", protocol.into()),
            ("helo_name", f.helo.unwrap_or_default().into()),
            ("queue_id", s.queue_id.clone()),
            ("sender", f.sender.unwrap_or_default().into()),
            ("recipient", f.recipient.unwrap_or_default().into()),
            ("recipient_count", s.recipient_count.to_string()),
            ("client_address", f.client_addr.to_string()),
            ("client_name", f.client_name.into()),
            ("reverse_client_name", f.client_name.into()),
            ("instance", s.instance.clone()),
            ("sasl_method", s.sasl_method.clone()),
            ("sasl_username", f.sasl_username.unwrap_or_default().into()),
            ("sasl_sender", s.sasl_sender.clone()),
            ("size", nz(self.size.unwrap_or(s.size))),
            ("ccert_subject", String::new()),
            ("ccert_issuer", String::new()),
            ("ccert_fingerprint", String::new()),
            ("ccert_pubkey_fingerprint", String::new()),
            ("encryption_protocol", s.encryption_protocol.clone()),
            ("encryption_cipher", s.encryption_cipher.clone()),
            ("encryption_keysize", nz(u64::from(s.encryption_keysize))),
            ("etrn_domain", self.etrn.clone().unwrap_or_default()),
            ("stress", String::new()),
            ("server_address", s.server_address.clone()),
            ("server_port", opt(s.server_port)),
            ("client_port", opt(s.client_port)),
            ("policy_context", context.into()),
        ]
    }
}

/// Reads `name=value` lines up to an empty line, within [`REPLY_LIMIT`]
/// bytes and `timeout`.
fn read_reply(r: &mut impl BufRead, timeout: Duration) -> Result<Vec<(String, String)>, String> {
    let deadline = Instant::now() + timeout;
    let mut attrs = Vec::new();
    let mut total = 0usize;
    loop {
        if Instant::now() > deadline {
            return Err("timeout".into());
        }
        let mut line = Vec::new();
        let n = std::io::Read::take(&mut *r, (REPLY_LIMIT - total.min(REPLY_LIMIT)) as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                    "timeout".to_string()
                }
                _ => e.to_string(),
            })?;
        if n == 0 {
            return Err("lost connection".into());
        }
        total = total.saturating_add(n);
        if total > REPLY_LIMIT {
            return Err(format!("reply longer than {REPLY_LIMIT} bytes"));
        }
        if line.last() != Some(&b'\n') {
            return Err("lost connection".into());
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\n', '\r']);
        if text.is_empty() {
            return Ok(attrs);
        }
        match text.split_once('=') {
            Some((n, v)) => attrs.push((n.trim().to_string(), v.trim().to_string())),
            None => {
                return Err(format!(
                    "bad attribute \"{}\"",
                    maillog::printable(text, 100)
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn base() -> Settings {
        Settings {
            timeout: Duration::from_secs(2),
            max_idle: Duration::from_secs(300),
            max_ttl: Duration::from_secs(1000),
            try_limit: 2,
            retry_delay: Duration::from_millis(10),
            request_limit: 0,
            default_action: "451 4.3.5 Server configuration problem".into(),
            policy_context: String::new(),
        }
    }

    #[test]
    fn spec_with_overrides() {
        let s = Spec::parse(
            "{ inet:127.0.0.1:9998, timeout=10s, default_action=DUNNO, try_limit=3 }",
            &base(),
        )
        .unwrap();
        assert_eq!(s.endpoint, Endpoint::Inet("127.0.0.1:9998".into()));
        assert_eq!(s.settings.timeout, Duration::from_secs(10));
        assert_eq!(s.settings.default_action, "DUNNO");
        assert_eq!(s.settings.try_limit, 3);
        assert_eq!(
            Spec::parse("inet:[::1]:10023", &base()).unwrap().endpoint,
            Endpoint::Inet("[::1]:10023".into())
        );
        assert_eq!(
            Spec::parse("unix:private/policy", &base())
                .unwrap()
                .endpoint,
            Endpoint::Unix("private/policy".into())
        );
        assert!(Spec::parse("inet:host", &base()).is_err());
        assert!(Spec::parse("tcp:host:1", &base()).is_err());
        assert!(Spec::parse("{ inet:h:1, bogus=1 }", &base()).is_err());
    }

    #[test]
    fn reply_parsing_is_bounded() {
        let mut r = BufReader::new(&b"action=DUNNO\nx=y\n\n"[..]);
        let a = read_reply(&mut r, Duration::from_secs(1)).unwrap();
        assert_eq!(a[0], ("action".into(), "DUNNO".into()));
        let long = vec![b'a'; REPLY_LIMIT + 10];
        let mut r = BufReader::new(&long[..]);
        assert!(read_reply(&mut r, Duration::from_secs(1)).is_err());
        let mut r = BufReader::new(&b"action=OK\n"[..]);
        assert!(read_reply(&mut r, Duration::from_secs(1)).is_err());
        let mut r = BufReader::new(&b"garbage\n\n"[..]);
        assert!(read_reply(&mut r, Duration::from_secs(1)).is_err());
    }

    /// A server that answers each request with the given action and
    /// counts connections and requests.
    fn server(action: &'static str) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let conns = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let c2 = conns.clone();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { return };
                c2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                std::thread::spawn(move || {
                    let mut buf = Vec::new();
                    let mut b = [0u8; 512];
                    loop {
                        let Ok(n) = s.read(&mut b) else { return };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&b[..n]);
                        while let Some(i) = buf.windows(2).position(|w| w == b"\n\n") {
                            buf.drain(..i + 2);
                            let _ = s.write_all(format!("action={action}\n\n").as_bytes());
                        }
                    }
                });
            }
        });
        (port, conns)
    }

    #[test]
    fn connection_is_reused_and_request_limit_honoured() {
        let (port, conns) = server("DUNNO");
        let c = Client::new(
            String::new(),
            Spec::parse(&format!("inet:127.0.0.1:{port}"), &base()).unwrap(),
        );
        let req = [("request", "smtpd_access_policy".to_string())];
        for _ in 0..3 {
            assert_eq!(c.query(Path::new("/"), &req), "DUNNO");
        }
        assert_eq!(conns.load(std::sync::atomic::Ordering::SeqCst), 1);
        let mut s = base();
        s.request_limit = 1;
        let c = Client::new(
            String::new(),
            Spec::parse(&format!("inet:127.0.0.1:{port}"), &s).unwrap(),
        );
        for _ in 0..3 {
            assert_eq!(c.query(Path::new("/"), &req), "DUNNO");
        }
        assert_eq!(conns.load(std::sync::atomic::Ordering::SeqCst), 4);
    }

    #[test]
    fn down_or_silent_server_gives_the_default_action() {
        let port = testkit::free_port();
        let c = Client::new(
            String::new(),
            Spec::parse(&format!("inet:127.0.0.1:{port}"), &base()).unwrap(),
        );
        assert_eq!(
            c.query(Path::new("/"), &[]),
            "451 4.3.5 Server configuration problem"
        );
        // A server that accepts and never answers: the timeout, then default.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let mut s = base();
        s.timeout = Duration::from_millis(200);
        s.default_action = "DUNNO".into();
        let c = Client::new(
            String::new(),
            Spec::parse(&format!("inet:127.0.0.1:{port}"), &s).unwrap(),
        );
        let t = Instant::now();
        assert_eq!(c.query(Path::new("/"), &[]), "DUNNO");
        assert!(t.elapsed() < Duration::from_secs(2));
        drop(l);
    }
}
