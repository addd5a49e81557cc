//! Test helpers: a temporary instance (config dir, queue dir, maillog) on
//! free ports, the `postfix` command run against it, and process checks.
//! An [`Instance`] always stops what it started when dropped.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// Every program the whole-system tests run; `cargo build --workspace
/// --bins` (scripts/test) builds them.
pub const BINS: &[&str] = &[
    "master",
    "postfix",
    "echo",
    "sendmail",
    "postdrop",
    "mailq",
    "postqueue",
    "postsuper",
    "postcat",
    "pickup",
    "cleanup",
    "qmgr",
    "trivial-rewrite",
    "local",
    "virtual",
    "pipe",
    "bounce",
    "showq",
    "smtpd",
    "anvil",
    "auth",
];

/// The directory holding the built binaries (target/<profile>, or a copy
/// other users can reach: see `testkit::bin_dir`). Fails when one of
/// [`BINS`] is not built.
pub fn bin_dir() -> PathBuf {
    testkit::need_bins(BINS);
    testkit::bin_dir()
}

pub use testkit::{free_port, wait_until};

/// True when [::1] can be bound.
pub fn ipv6_available() -> bool {
    TcpListener::bind("[::1]:0").is_ok()
}

/// What every instance test needs: [`BINS`] built and, as root, the
/// accounts `postfix` and `postdrop` (created if missing). Fails, saying
/// how to provide them, otherwise; never skips.
pub fn need_instance() {
    testkit::need_instance(BINS);
}

/// A temporary instance.
pub struct Instance {
    /// Holds everything; removed on drop.
    pub dir: tempfile::TempDir,
    /// The configuration directory (main.cf, master.cf).
    pub config_dir: PathBuf,
    /// queue_directory.
    pub qdir: PathBuf,
    /// maillog_file.
    pub maillog: PathBuf,
    /// The port of the default echo service on 127.0.0.1 (and [::1]).
    pub port: u16,
    /// True when the echo service also listens on [::1].
    pub v6: bool,
}

impl Instance {
    /// An instance with `main_extra` appended to main.cf and the given master.cf.
    pub fn new(main_extra: &str, master_cf: &str) -> Instance {
        let dir = tempfile::tempdir().unwrap();
        // Canonical, so it compares with /proc/PID/root.
        let base = dir.path().canonicalize().unwrap();
        let config_dir = base.join("etc");
        let qdir = base.join("spool");
        let maillog = base.join("maillog");
        std::fs::create_dir_all(&config_dir).unwrap();
        std::fs::create_dir_all(qdir.join("pid")).unwrap();
        let bin = bin_dir();
        let main_cf = format!(
            "queue_directory = {}\ndaemon_directory = {}\ncommand_directory = {}\nmaillog_file = {}\n\
             inet_interfaces = loopback-only\nservice_throttle_time = 2s\n{main_extra}",
            qdir.display(),
            bin.display(),
            bin.display(),
            maillog.display()
        );
        std::fs::write(config_dir.join("main.cf"), main_cf).unwrap();
        let inst = Instance {
            dir,
            config_dir,
            qdir,
            maillog,
            port: 0,
            v6: false,
        };
        inst.write_master_cf(master_cf);
        inst
    }

    /// An instance running echo on 127.0.0.1:PORT ([::1]:PORT when
    /// available, maxproc 4) and on the unix socket private/echo.
    pub fn echo() -> Instance {
        let port = free_port();
        let v6 = ipv6_available();
        let mut cf = format!("127.0.0.1:{port} inet n - n - 4 echo\necho unix - n n - 4 echo\n");
        if v6 {
            cf.push_str(&format!("[::1]:{port} inet n - n - 4 echo\n"));
        }
        let mut inst = Instance::new("", &cf);
        inst.port = port;
        inst.v6 = v6;
        inst
    }

    /// Replaces master.cf.
    pub fn write_master_cf(&self, text: &str) {
        std::fs::write(self.config_dir.join("master.cf"), text).unwrap();
    }

    /// Runs `postfix -c CONFIG args...`.
    pub fn postfix(&self, args: &[&str]) -> Output {
        self.command("postfix", args)
    }

    /// Runs the project's `program -c CONFIG args...` (postsuper,
    /// postqueue, postmap, ...).
    pub fn command(&self, program: &str, args: &[&str]) -> Output {
        Command::new(bin_dir().join(program))
            .arg("-c")
            .arg(&self.config_dir)
            .args(args)
            .output()
            .unwrap()
    }

    /// Runs `postfix -c CONFIG args...` as another user.
    pub fn postfix_as(&self, uid: u32, gid: u32, args: &[&str]) -> Output {
        use std::os::unix::process::CommandExt;
        Command::new(bin_dir().join("postfix"))
            .arg("-c")
            .arg(&self.config_dir)
            .args(args)
            .uid(uid)
            .gid(gid)
            .output()
            .unwrap()
    }

    /// Gives the whole instance directory to `uid:gid`.
    pub fn chown_all(&self, uid: u32, gid: u32) {
        fn walk(p: &Path, uid: u32, gid: u32) {
            std::os::unix::fs::lchown(p, Some(uid), Some(gid)).unwrap();
            if p.is_dir() && !p.is_symlink() {
                for e in std::fs::read_dir(p).unwrap().flatten() {
                    walk(&e.path(), uid, gid);
                }
            }
        }
        walk(self.dir.path(), uid, gid);
    }

    /// `postfix start`, which must succeed.
    pub fn start(&self) {
        let out = self.postfix(&["start"]);
        assert!(
            out.status.success(),
            "postfix start failed: {}\nmaillog:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }

    /// The maillog so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.maillog).unwrap_or_default()
    }

    /// master's pid from the pid file (only meaningful while running).
    pub fn master_pid(&self) -> Option<i32> {
        let text = std::fs::read_to_string(self.qdir.join("pid/master.pid")).ok()?;
        text.trim().parse().ok()
    }

    /// master's live children.
    pub fn children(&self) -> Vec<i32> {
        match self.master_pid() {
            Some(m) => children_of(m),
            None => Vec::new(),
        }
    }

    /// The path of a unix service socket.
    pub fn socket(&self, private: bool, name: &str) -> PathBuf {
        self.qdir
            .join(if private { "private" } else { "public" })
            .join(name)
    }

    /// Live processes other than this one that mention the instance's
    /// directory in their command line or environment.
    pub fn leftovers(&self) -> Vec<i32> {
        let needle = self
            .dir
            .path()
            .canonicalize()
            .unwrap()
            .display()
            .to_string();
        let me = std::process::id() as i32;
        all_pids()
            .into_iter()
            .filter(|p| *p != me && alive(*p))
            .filter(|p| {
                ["cmdline", "environ"].iter().any(|f| {
                    std::fs::read(format!("/proc/{p}/{f}"))
                        .map(|b| String::from_utf8_lossy(&b).contains(&needle))
                        .unwrap_or(false)
                })
            })
            .collect()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if self.master_pid().is_some() {
            let _ = self.postfix(&["stop"]);
        }
        for p in self.leftovers() {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), nix::sys::signal::SIGKILL);
        }
    }
}

/// Sends "pid" over TCP and returns the serving process's pid.
pub fn ask_pid(addr: SocketAddr) -> i32 {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    ask(s)
}

/// Sends "pid" over a unix socket and returns the serving process's pid.
pub fn ask_pid_unix(path: &Path) -> i32 {
    let s = UnixStream::connect(path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    ask(s)
}

fn ask<S: std::io::Read + Write>(mut s: S) -> i32 {
    s.write_all(b"pid\n").unwrap();
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).unwrap();
    line.trim()
        .strip_prefix("pid ")
        .expect("pid reply")
        .parse()
        .unwrap()
}

/// True when a TCP connection to `addr` is accepted by the kernel.
pub fn answers(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
}

/// 127.0.0.1:port.
pub fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// True when the process exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rfind(')')
            .and_then(|i| stat.get(i + 1..))
            .and_then(|r| r.split_whitespace().next())
            .is_some_and(|state| state != "Z"),
        Err(_) => false,
    }
}

fn all_pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

/// Live processes whose parent is `ppid`.
pub fn children_of(ppid: i32) -> Vec<i32> {
    all_pids()
        .into_iter()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| {
                    let r = s.get(s.rfind(')')? + 1..)?.to_string();
                    r.split_whitespace().nth(1)?.parse::<i32>().ok()
                })
                == Some(ppid)
        })
        .filter(|p| alive(*p))
        .collect()
}

/// Sends SIGKILL.
pub fn kill9(pid: i32) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap();
}

// --- SMTP instances ----------------------------------------------------------

/// The test PKI: a CA and a certificate for `localhost` / 127.0.0.1 it signed.
pub struct Pki {
    /// The CA certificate (PEM) clients trust.
    pub ca: PathBuf,
    /// The server certificate chain (PEM: leaf then CA).
    pub cert: PathBuf,
    /// The server's private key (PEM).
    pub key: PathBuf,
}

/// Writes a fresh CA and server certificate into `dir`.
pub fn make_pki(dir: &Path) -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "system-tests CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    // localhost, 127.0.0.1, and the MX host name of the dnsmasq test.
    let mut leaf_params =
        CertificateParams::new(vec!["localhost".to_string(), "up.dnsmasq.test".to_string()])
            .unwrap();
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf_params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
    let pki = Pki {
        ca: dir.join("ca.pem"),
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    std::fs::write(&pki.ca, ca_cert.pem()).unwrap();
    std::fs::write(&pki.cert, leaf.pem() + &ca_cert.pem()).unwrap();
    std::fs::write(&pki.key, leaf_key.serialize_pem()).unwrap();
    // smtpd may read them after dropping privileges (test files only).
    use std::os::unix::fs::PermissionsExt;
    for p in [&pki.ca, &pki.cert, &pki.key] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    pki
}

/// The password of every user in an [`SmtpInstance`]'s passwd-file.
pub const PASSWORD: &str = "s3cret pass";

/// What an [`SmtpInstance`] runs; see [`SmtpSetup::start`].
#[derive(Default)]
pub struct SmtpSetup {
    main: String,
    smtp_o: Vec<String>,
    tls: bool,
    submission: bool,
    extra: Vec<Vec<String>>,
    master_extra: String,
    users: Vec<(String, String)>,
}

impl SmtpSetup {
    /// Appends raw master.cf text (more services).
    pub fn master(mut self, text: &str) -> SmtpSetup {
        self.master_extra.push_str(text);
        self
    }
    /// One more virt.test user: the address, its virtual_mailbox_maps
    /// result (`carol` for an mbox, `carol/` for a Maildir) and password
    /// [`PASSWORD`].
    pub fn user(mut self, address: &str, mailbox: &str) -> SmtpSetup {
        self.users.push((address.to_string(), mailbox.to_string()));
        self
    }
    /// Plain smtpd on a free port of 127.0.0.1, no TLS, no AUTH.
    pub fn new() -> SmtpSetup {
        SmtpSetup::default()
    }
    /// Appends a main.cf line.
    pub fn main(mut self, line: &str) -> SmtpSetup {
        self.main.push_str(line);
        self.main.push('\n');
        self
    }
    /// Adds `-o name=value` to the smtp service.
    pub fn o(mut self, kv: &str) -> SmtpSetup {
        self.smtp_o.push(kv.to_string());
        self
    }
    /// A certificate for smtpd (smtpd_tls_security_level = may).
    pub fn tls(mut self) -> SmtpSetup {
        self.tls = true;
        self
    }
    /// Also the submission (STARTTLS, AUTH required) and submissions
    /// (implicit TLS) services, as Postfix's master.cf shows them; implies
    /// [`SmtpSetup::tls`].
    pub fn submission(mut self) -> SmtpSetup {
        self.submission = true;
        self.tls = true;
        self
    }
    /// One more smtpd service on a free port with these `-o` overrides
    /// (ports in [`SmtpInstance::extra_ports`], in order).
    pub fn service(mut self, overrides: &[&str]) -> SmtpSetup {
        self.extra
            .push(overrides.iter().map(|o| o.to_string()).collect());
        self
    }
    /// Writes the instance and starts it.
    pub fn start(self) -> SmtpInstance {
        SmtpInstance::start(self)
    }
}

/// A running instance with smtpd (and optionally submission, submissions,
/// TLS and the auth service), virtual Maildir users alice, bob and load
/// at virt.test, and the passwd-file users alice@virt.test and
/// bob@virt.test (password [`PASSWORD`]).
pub struct SmtpInstance {
    /// The instance (stopped on drop).
    pub inst: Instance,
    /// The instance directory (canonical).
    pub base: PathBuf,
    /// smtpd's port on 127.0.0.1.
    pub port: u16,
    /// submission's port (0 when not configured).
    pub submission_port: u16,
    /// submissions' port (0 when not configured).
    pub submissions_port: u16,
    /// The ports of the services added with [`SmtpSetup::service`].
    pub extra_ports: Vec<u16>,
    /// The certificates, when TLS is configured.
    pub pki: Option<Pki>,
}

/// Runs the project's sendmail with `-C config_dir` and `args`, `message`
/// on stdin, and returns what it did (the caller checks the status).
pub fn run_sendmail(config_dir: &Path, args: &[&str], message: &[u8]) -> Output {
    let mut child = Command::new(bin_dir().join("sendmail"))
        .arg("-C")
        .arg(config_dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // A sendmail that refuses early closes its end: its status says why.
    let _ = stdin.write_all(message);
    drop(stdin);
    child.wait_with_output().unwrap()
}

/// A sender instance for outbound tests: mail for other domains leaves
/// through our smtp client as `main` says (relayhost,
/// smtp_dns_resolv_conf); virtual user alice@sender.test gets bounces.
pub fn sender_instance(main: &str) -> SmtpInstance {
    SmtpSetup::new()
        .main("myhostname = sender.test")
        .main("virtual_mailbox_domains = sender.test")
        .main("virtual_mailbox_maps = inline:{ alice@sender.test=alice/ }")
        .main("mydestination = localhost")
        .main("minimal_backoff_time = 300s")
        .main("maximal_backoff_time = 600s")
        .main("smtp_connect_timeout = 5s")
        .main(main)
        .start()
}

/// The standard services of etc-postfix/master.cf without any smtpd
/// entry (the tests add their own on free ports).
pub fn shipped_services() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../etc-postfix/master.cf");
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = String::new();
    let mut skipping = false;
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if line.starts_with(char::is_whitespace) {
            if !skipping {
                out.push_str(line);
                out.push('\n');
            }
            continue;
        }
        let mut f = line.split_whitespace();
        let (name, kind) = (f.next().unwrap_or(""), f.next().unwrap_or(""));
        let command = line.split_whitespace().nth(7).unwrap_or("");
        skipping = command == "smtpd"
            || (matches!(name, "smtp" | "submission" | "submissions") && kind == "inet");
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

impl SmtpInstance {
    /// Runs the project's sendmail against this instance ([`run_sendmail`]).
    pub fn sendmail(&self, args: &[&str], message: &[u8]) -> Output {
        run_sendmail(&self.inst.config_dir, args, message)
    }

    /// Waits (30 s at most) for `needle` in the maillog; panics with the
    /// log when it never comes.
    pub fn wait_log(&self, needle: &str) {
        assert!(
            wait_until(Duration::from_secs(30), || self.inst.log().contains(needle)),
            "no {needle:?} in the maillog:\n{}",
            self.inst.log()
        );
    }

    /// The bounce notices to the sender alice@sender.test (the messages
    /// in the Maildir of the virtual user alice).
    pub fn bounces(&self) -> Vec<String> {
        read_maildir(&self.base.join("vmail/alice"))
            .iter()
            .map(|m| String::from_utf8_lossy(m).into_owned())
            .collect()
    }

    fn start(setup: SmtpSetup) -> SmtpInstance {
        use std::os::unix::fs::PermissionsExt;
        let (uid, gid) = if nix::unistd::geteuid().is_root() {
            (65534, 65534)
        } else {
            (
                nix::unistd::getuid().as_raw(),
                nix::unistd::getgid().as_raw(),
            )
        };
        let inst = Instance::new("", "");
        let base = inst.dir.path().canonicalize().unwrap();
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).unwrap();
        let b = base.display();
        let pki = setup.tls.then(|| make_pki(&base));
        let mut main = format!(
            "myhostname = mx.test.example\n\
             data_directory = {b}/data\n\
             mydestination = localhost, $myhostname\n\
             mail_spool_directory = {b}/spool\n\
             alias_maps =\nalias_database =\n\
             virtual_mailbox_domains = virt.test\n\
             virtual_mailbox_base = {b}/vmail\n\
             virtual_mailbox_maps = texthash:{b}/vmailbox\n\
             virtual_uid_maps = static:{uid}\n\
             virtual_gid_maps = static:{gid}\n\
             virtual_minimum_uid = 1\n\
             smtpd_sasl_type = dovecot\n\
             smtpd_sasl_path = private/auth\n\
             auth_passdb = passwd-file:{b}/passwd\n"
        );
        if let Some(p) = &pki {
            main.push_str(&format!(
                "smtpd_tls_cert_file = {}\nsmtpd_tls_key_file = {}\nsmtpd_tls_security_level = may\n\
                 smtpd_tls_received_header = yes\n",
                p.cert.display(),
                p.key.display()
            ));
        }
        main.push_str(&setup.main);
        let mut cf = std::fs::read_to_string(inst.config_dir.join("main.cf")).unwrap();
        cf.push_str(&main);
        std::fs::write(inst.config_dir.join("main.cf"), cf).unwrap();

        let port = free_port();
        let mut master = shipped_services();
        master.push_str(&format!("127.0.0.1:{port} inet n - n - - smtpd\n"));
        for o in &setup.smtp_o {
            master.push_str(&format!("  -o {o}\n"));
        }
        let (mut submission_port, mut submissions_port) = (0, 0);
        if setup.submission {
            submission_port = free_port();
            submissions_port = free_port();
            // Postfix's master.cf entries, uncommented, with the
            // restrictions its comments suggest for mail submission.
            master.push_str(&format!(
                "127.0.0.1:{submission_port} inet n - n - - smtpd\n\
                 \x20 -o syslog_name=postfix/submission\n\
                 \x20 -o smtpd_tls_security_level=encrypt\n\
                 \x20 -o smtpd_sasl_auth_enable=yes\n\
                 \x20 -o smtpd_tls_auth_only=yes\n\
                 \x20 -o smtpd_reject_unlisted_recipient=no\n\
                 \x20 -o smtpd_client_restrictions=permit_sasl_authenticated,reject\n\
                 \x20 -o smtpd_relay_restrictions=permit_sasl_authenticated,reject\n\
                 127.0.0.1:{submissions_port} inet n - n - - smtpd\n\
                 \x20 -o syslog_name=postfix/submissions\n\
                 \x20 -o smtpd_tls_wrappermode=yes\n\
                 \x20 -o smtpd_sasl_auth_enable=yes\n\
                 \x20 -o smtpd_reject_unlisted_recipient=no\n\
                 \x20 -o smtpd_client_restrictions=permit_sasl_authenticated,reject\n\
                 \x20 -o smtpd_relay_restrictions=permit_sasl_authenticated,reject\n"
            ));
        }
        let mut extra_ports = Vec::new();
        for overrides in &setup.extra {
            let p = free_port();
            extra_ports.push(p);
            master.push_str(&format!("127.0.0.1:{p} inet n - n - - smtpd\n"));
            for o in overrides {
                master.push_str(&format!("  -o {o}\n"));
            }
        }
        master.push_str(&setup.master_extra);
        // anvil and auth as their man pages give them, unless shipped.
        for (name, line) in [
            ("anvil", "anvil unix - - n - 1 anvil\n"),
            ("auth", "auth unix - n n - 1 auth\n"),
        ] {
            let shipped = master
                .lines()
                .any(|l| l.split_whitespace().next() == Some(name));
            if !shipped && bin_dir().join(name).is_file() {
                master.push_str(line);
            }
        }
        inst.write_master_cf(&master);

        for d in ["vmail", "spool"] {
            std::fs::create_dir_all(base.join(d)).unwrap();
        }
        std::os::unix::fs::chown(base.join("vmail"), Some(uid), Some(gid)).unwrap();
        std::fs::set_permissions(base.join("spool"), std::fs::Permissions::from_mode(0o1777))
            .unwrap();
        let mut vmailbox =
            "alice@virt.test alice/\nbob@virt.test bob/\nload@virt.test load/\n".to_string();
        let mut passwd = format!(
            "alice@virt.test:{{PLAIN}}{PASSWORD}::::::\nbob@virt.test:{{PLAIN}}{PASSWORD}::::::\n"
        );
        for (address, mailbox) in &setup.users {
            vmailbox.push_str(&format!("{address} {mailbox}\n"));
            passwd.push_str(&format!("{address}:{{PLAIN}}{PASSWORD}::::::\n"));
        }
        std::fs::write(base.join("vmailbox"), vmailbox).unwrap();
        std::fs::write(base.join("passwd"), passwd).unwrap();
        inst.start();
        let me = SmtpInstance {
            inst,
            base,
            port,
            submission_port,
            submissions_port,
            extra_ports,
            pki,
        };
        let mut ports = vec![port, submission_port, submissions_port];
        ports.extend(&me.extra_ports);
        for p in ports {
            if p != 0 {
                assert!(
                    wait_until(Duration::from_secs(10), || answers(local(p))),
                    "nothing listens on port {p}\nmaillog:\n{}",
                    me.inst.log()
                );
            }
        }
        me
    }

    /// The messages in a virt.test user's Maildir (new/ and cur/).
    pub fn maildir(&self, user: &str) -> Vec<Vec<u8>> {
        read_maildir(&self.base.join("vmail").join(user))
    }

    /// Waits until `user` has at least `n` messages; returns them.
    pub fn wait_mail(&self, user: &str, n: usize) -> Vec<Vec<u8>> {
        let ok = wait_until(Duration::from_secs(30), || self.maildir(user).len() >= n);
        let got = self.maildir(user);
        assert!(
            ok,
            "{user} has {} messages, expected {n}\nmaillog:\n{}",
            got.len(),
            self.inst.log()
        );
        got
    }

    /// Files in the queue (incoming, active, deferred, hold, maildrop).
    pub fn queued(&self) -> usize {
        fn count(p: &Path) -> usize {
            match std::fs::read_dir(p) {
                Ok(rd) => rd
                    .flatten()
                    .map(|e| {
                        let p = e.path();
                        if p.is_dir() { count(&p) } else { 1 }
                    })
                    .sum(),
                Err(_) => 0,
            }
        }
        ["incoming", "active", "deferred", "hold", "maildrop"]
            .iter()
            .map(|d| count(&self.inst.qdir.join(d)))
            .sum()
    }

    /// Waits until the queue is empty (every message delivered).
    pub fn wait_queue_empty(&self) {
        assert!(
            wait_until(Duration::from_secs(30), || self.queued() == 0),
            "{} files still queued\nmaillog:\n{}",
            self.queued(),
            self.inst.log()
        );
    }

    /// Runs tests/py/smtpcheck.py CHECK with --port (and --ca,
    /// --submission-port) filled in, then `args`; asserts it succeeded and
    /// returns its stdout.
    pub fn py(&self, check: &str, args: &[&str]) -> String {
        let out = self.py_output(check, self.port, args);
        assert!(
            out.status.success(),
            "smtpcheck.py {check} {args:?} failed:\n{}{}\nmaillog:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.inst.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// As [`SmtpInstance::py`] against another port; returns the output
    /// whatever the exit status.
    pub fn py_output(&self, check: &str, port: u16, args: &[&str]) -> Output {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("py/smtpcheck.py");
        let mut cmd = Command::new("python3");
        cmd.arg(script)
            .arg(check)
            .arg("--port")
            .arg(port.to_string());
        if let Some(p) = &self.pki {
            cmd.arg("--ca").arg(&p.ca);
        }
        if self.submission_port != 0 {
            cmd.arg("--submission-port")
                .arg(self.submission_port.to_string());
        }
        cmd.args(args).output().unwrap()
    }
}

/// The messages of a Maildir (new/ and cur/).
pub fn read_maildir(path: &Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        if let Ok(rd) = std::fs::read_dir(path.join(sub)) {
            for e in rd.flatten() {
                if let Ok(b) = std::fs::read(e.path()) {
                    out.push(b);
                }
            }
        }
    }
    out
}

/// The header section of a message, with folded lines joined.
pub fn header_block(msg: &[u8]) -> String {
    let text = String::from_utf8_lossy(msg);
    let head = text.split("\n\n").next().unwrap_or("");
    head.replace("\n\t", " ").replace("\n ", " ")
}

/// True when python3 runs.
pub fn have_python() -> bool {
    Command::new("python3")
        .arg("-c")
        .arg("import smtplib, ssl")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// What the SMTP tests need: [`need_instance`] and python3 with smtplib
/// and ssl (scripts/install-deps installs it).
pub fn need_smtp() {
    need_instance();
    assert!(
        have_python(),
        "python3 (with smtplib and ssl) is not installed: run scripts/install-deps"
    );
}

// --- Debian's Postfix, for interoperation tests --------------------------------

/// A throw-away instance of Debian's Postfix (/usr/sbin/postfix) in a
/// temporary directory: its own config, queue, data directory and
/// maillog_file, smtpd on a free port of 127.0.0.1, nothing chrooted. It
/// never touches /etc/postfix or the system instance; stopped on drop.
pub struct DebianPostfix {
    /// Holds everything; removed on drop.
    pub dir: tempfile::TempDir,
    /// The configuration directory.
    pub config_dir: PathBuf,
    /// Its maillog_file.
    pub maillog: PathBuf,
    /// Its smtpd's port on 127.0.0.1.
    pub port: u16,
}

/// True when Debian's Postfix can run here; not root: skips (and false).
/// Fails when its package is missing (scripts/install-deps installs it).
pub fn debian_postfix_ready() -> bool {
    if testkit::skip_unless_root("it runs Debian's postfix, which needs root") {
        return false;
    }
    for f in ["/usr/sbin/postfix", "/usr/lib/postfix/sbin/master"] {
        testkit::need_file(Path::new(f), "Debian's postfix package");
    }
    testkit::need_mail_owner();
    true
}

impl DebianPostfix {
    /// Writes and starts an instance; `main_extra` is appended to main.cf,
    /// `master_extra` to master.cf.
    pub fn start(main_extra: &str, master_extra: &str) -> DebianPostfix {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).unwrap();
        let config_dir = base.join("etc");
        let maillog = base.join("maillog");
        for d in ["etc", "queue", "data"] {
            std::fs::create_dir_all(base.join(d)).unwrap();
        }
        let pf = nix::unistd::User::from_name("postfix").unwrap().unwrap();
        std::os::unix::fs::chown(
            base.join("data"),
            Some(pf.uid.as_raw()),
            Some(pf.gid.as_raw()),
        )
        .unwrap();
        let port = free_port();
        let b = base.display();
        std::fs::write(
            config_dir.join("main.cf"),
            format!(
                "compatibility_level = 3.6\nqueue_directory = {b}/queue\ndata_directory = {b}/data\n\
                 maillog_file = {b}/maillog\nmaillog_file_prefixes = {b}\n\
                 inet_interfaces = loopback-only\ninet_protocols = ipv4\n\
                 myhostname = postfix.test\nmydomain = postfix.test\nmyorigin = $myhostname\n\
                 mydestination = $myhostname\nmynetworks = 127.0.0.0/8\nalias_maps =\nalias_database =\n\
                 biff = no\nsmtp_host_lookup = native\nsmtp_dns_support_level = disabled\n\
                 {main_extra}"
            ),
        )
        .unwrap();
        std::fs::write(
            config_dir.join("master.cf"),
            format!(
                "127.0.0.1:{port} inet n - n - - smtpd\n\
                 pickup unix n - n 60 1 pickup\ncleanup unix n - n - 0 cleanup\n\
                 qmgr unix n - n 300 1 qmgr\ntlsmgr unix - - n 1000? 1 tlsmgr\n\
                 rewrite unix - - n - - trivial-rewrite\nbounce unix - - n - 0 bounce\n\
                 defer unix - - n - 0 bounce\ntrace unix - - n - 0 bounce\n\
                 verify unix - - n - 1 verify\nflush unix n - n 1000? 0 flush\n\
                 proxymap unix - - n - - proxymap\nshowq unix n - n - - showq\n\
                 error unix - - n - - error\nretry unix - - n - - error\n\
                 discard unix - - n - - discard\nsmtp unix - - n - - smtp\n\
                 relay unix - - n - - smtp\nanvil unix - - n - 1 anvil\n\
                 scache unix - - n - 1 scache\npostlog unix-dgram n - n - 1 postlogd\n\
                 {master_extra}"
            ),
        )
        .unwrap();
        let me = DebianPostfix {
            dir,
            config_dir,
            maillog,
            port,
        };
        let out = Command::new("/usr/sbin/postfix")
            .arg("-c")
            .arg(&me.config_dir)
            .arg("start")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "Debian's postfix start failed: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            me.log()
        );
        assert!(
            wait_until(Duration::from_secs(15), || answers(local(port))),
            "Debian's postfix smtpd does not answer\n{}",
            me.log()
        );
        me
    }

    /// Its maillog so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.maillog).unwrap_or_default()
    }

    /// master's pid.
    pub fn master_pid(&self) -> Option<i32> {
        let text = std::fs::read_to_string(self.dir.path().join("queue/pid/master.pid")).ok()?;
        text.trim().parse().ok()
    }
}

impl Drop for DebianPostfix {
    fn drop(&mut self) {
        let tree: Vec<i32> = self.master_pid().map(descendants).unwrap_or_default();
        let _ = Command::new("/usr/sbin/postfix")
            .arg("-c")
            .arg(&self.config_dir)
            .arg("stop")
            .output();
        let _ = wait_until(Duration::from_secs(10), || !tree.iter().any(|p| alive(*p)));
        for p in tree {
            if alive(p) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(p),
                    nix::sys::signal::SIGKILL,
                );
            }
        }
    }
}

/// `pid` and every live process below it.
pub fn descendants(pid: i32) -> Vec<i32> {
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let kids = children_of(out[i]);
        out.extend(kids);
        i += 1;
    }
    out
}
