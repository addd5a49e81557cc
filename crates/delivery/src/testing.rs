//! The integration-test harness of the delivery agents (feature
//! `test-support`): a temporary instance with its own main.cf, master.cf,
//! queue directory and maillog, run by a real `master`; queue files made
//! with [`queue::enter`] and moved to active/; requests sent over
//! `private/<service>` with [`proto`]. Dropping the [`Instance`] stops
//! master and its children.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use proto::deliver::{Recipient, Reply, Request};

/// The directory of the built binaries, from one of them
/// (`env!("CARGO_BIN_EXE_local")`): [`testkit::bin_dir`], which other
/// users can reach from any checkout. Fails when master is not built.
pub fn bin_dir(exe: &str) -> PathBuf {
    let dir = Path::new(exe).parent().unwrap().to_path_buf();
    assert!(
        dir.join("master").is_file(),
        "master is not built: run scripts/test or cargo build --workspace --bins \
         (looked in {})",
        dir.display()
    );
    testkit::bin_dir()
}

/// What an instance test here needs: the binaries built and, as root,
/// the mail_owner account ([`testkit::need_instance`]); missing, it fails.
pub fn need_instance() {
    testkit::need_instance(&["master"]);
}

/// Polls `f` every 20 ms until it is true or `limit` passes.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running temporary instance.
pub struct Instance {
    pub dir: tempfile::TempDir,
    /// The canonical temp directory (mode 0755, so other users can reach
    /// what tests put below it).
    pub base: PathBuf,
    pub config_dir: PathBuf,
    pub qdir: PathBuf,
    pub maillog: PathBuf,
    master: Option<Child>,
}

impl Instance {
    /// A stopped instance: main.cf gets `main_extra`; both it and
    /// `master_cf` may use `@BASE@` for the temp directory.
    pub fn new(bin: &Path, main_extra: &str, master_cf: &str) -> Instance {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).unwrap();
        let config_dir = base.join("etc");
        let qdir = base.join("spool");
        let maillog = base.join("maillog");
        std::fs::create_dir_all(&config_dir).unwrap();
        std::fs::create_dir_all(qdir.join("pid")).unwrap();
        queue::layout::create_or_repair(&qdir, None, None).unwrap();
        let main_cf = format!(
            "queue_directory = {}\ndaemon_directory = {}\ncommand_directory = {}\n\
             maillog_file = {}\ninet_interfaces = loopback-only\nservice_throttle_time = 1s\n\
             myhostname = host.example.org\nmydomain = example.org\n{}\n",
            qdir.display(),
            bin.display(),
            bin.display(),
            maillog.display(),
            main_extra.replace("@BASE@", &base.display().to_string())
        );
        std::fs::write(config_dir.join("main.cf"), main_cf).unwrap();
        std::fs::write(
            config_dir.join("master.cf"),
            master_cf.replace("@BASE@", &base.display().to_string()),
        )
        .unwrap();
        Instance {
            dir,
            base,
            config_dir,
            qdir,
            maillog,
            master: None,
        }
    }

    /// Starts master in the foreground (as a child of the test) and waits
    /// for `private/<service>`.
    pub fn start(&mut self, bin: &Path, service: &str) {
        self.start_as(bin, service, None);
    }

    /// Like [`Instance::start`], as another user (a development instance:
    /// nothing switches ids); the whole temp directory is given to that
    /// user first. Only root can do this.
    pub fn start_as(&mut self, bin: &Path, service: &str, ids: Option<(u32, u32)>) {
        self.start_with(bin, service, ids, &[]);
    }

    /// Like [`Instance::start`], master run by `wrapper` (a command and
    /// its arguments that execs the rest, such as `setpriv
    /// --bounding-set=-setuid --`).
    pub fn start_wrapped(&mut self, bin: &Path, service: &str, wrapper: &[&str]) {
        self.start_with(bin, service, None, wrapper);
    }

    fn start_with(&mut self, bin: &Path, service: &str, ids: Option<(u32, u32)>, wrapper: &[&str]) {
        use std::os::unix::process::CommandExt;
        let master = bin.join("master");
        let mut cmd = match wrapper.split_first() {
            Some((prog, args)) => {
                let mut c = Command::new(prog);
                c.args(args).arg(&master);
                c
            }
            None => Command::new(&master),
        };
        if let Some((uid, gid)) = ids {
            chown_tree(&self.base, uid, gid);
            cmd.uid(uid).gid(gid);
        }
        let child = cmd
            .arg("-c")
            .arg(&self.config_dir)
            .env("MAIL_CONFIG", &self.config_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.master = Some(child);
        let sock = self.qdir.join("private").join(service);
        assert!(
            wait_until(Duration::from_secs(10), || sock.exists()),
            "no socket {}; maillog:\n{}",
            sock.display(),
            self.log()
        );
    }

    /// Writes a queue file (sender, recipients, content) and moves it to
    /// active/; returns its queue id.
    pub fn enqueue(&self, sender: &str, recipients: &[&str], content: &str) -> String {
        self.enqueue_with(sender, recipients, &|_| content.to_string())
    }

    /// As [`Instance::enqueue`], the content made from the new queue id
    /// (for a cleanup-style `Received: ... id QUEUEID;` header).
    pub fn enqueue_with(
        &self,
        sender: &str,
        recipients: &[&str],
        content: &dyn Fn(&str) -> String,
    ) -> String {
        let mut w = queue::enter(&self.qdir).unwrap();
        let text = content(&w.id().to_string());
        w.write_all(text.as_bytes()).unwrap();
        let mut env = queue::Envelope::new(sender, SystemTime::now());
        for r in recipients {
            env.add_recipient(r);
        }
        let id = *w.finish(&env).unwrap().id();
        queue::rename(
            &self.qdir,
            &id,
            queue::Queue::Incoming,
            queue::Queue::Active,
        )
        .unwrap();
        // An instance run by another user (start_as) must be able to read it.
        use std::os::unix::fs::MetadataExt;
        let owner = std::fs::metadata(&self.qdir).unwrap();
        let path = queue::queue_path(&self.qdir, queue::Queue::Active, &id);
        std::os::unix::fs::lchown(&path, Some(owner.uid()), Some(owner.gid())).unwrap();
        id.to_string()
    }

    /// A request for `id` with (address, original) recipients.
    pub fn request(&self, id: &str, sender: &str, recipients: &[(&str, &str)]) -> Request {
        Request {
            queue_name: "active".into(),
            queue_id: id.into(),
            sender: sender.into(),
            nexthop: "host.example.org".into(),
            arrival_secs: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
            arrival_micros: 0,
            recipients: recipients
                .iter()
                .enumerate()
                .map(|(i, (a, o))| Recipient {
                    index: i as u32,
                    address: a.to_string(),
                    original: o.to_string(),
                    dsn_orcpt: None,
                    dsn_notify: 0,
                })
                .collect(),
            attributes: vec![],
            batched: 0,
        }
    }

    /// Connects to `private/<service>`, waiting up to 10 s for master to
    /// create and listen on it.
    pub fn connect(&self, service: &str) -> std::os::unix::net::UnixStream {
        let name = format!("private/{service}");
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            match proto::connect(&self.qdir, &name) {
                Ok(s) => return s,
                Err(e) if Instant::now() > end => panic!("connect {name}: {e}\n{}", self.log()),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// Sends a request to `private/<service>` and reads the reply.
    pub fn deliver(&self, service: &str, request: &Request) -> Reply {
        let mut s = self.connect(service);
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        proto::send(&mut s, request).unwrap();
        proto::recv(&mut s).unwrap_or_else(|e| panic!("no reply: {e}\nmaillog:\n{}", self.log()))
    }

    /// Enqueues one message and delivers it to `recipients` (address and
    /// original the same) via `service`.
    pub fn send(&self, service: &str, sender: &str, recipients: &[&str], content: &str) -> Reply {
        let id = self.enqueue(sender, recipients, content);
        let pairs: Vec<(&str, &str)> = recipients.iter().map(|r| (*r, *r)).collect();
        self.deliver(service, &self.request(&id, sender, &pairs))
    }

    /// The maillog so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.maillog).unwrap_or_default()
    }

    /// Waits until the maillog contains `needle`.
    pub fn wait_log(&self, needle: &str) -> bool {
        wait_until(Duration::from_secs(5), || self.log().contains(needle))
    }
}

/// Gives `dir` and everything below it to `uid:gid` (no symlinks followed).
pub fn chown_tree(dir: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(dir, Some(uid), Some(gid)).unwrap();
    if dir.is_dir() && !dir.is_symlink() {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            chown_tree(&e.path(), uid, gid);
        }
    }
}

/// Flips one byte of `marker` inside the queue file of `id` in active/,
/// so that its content checksum no longer matches.
pub fn damage_content(qdir: &Path, id: &str, marker: &str) {
    let qid = queue::QueueId::parse(id).unwrap();
    let path = queue::queue_path(qdir, queue::Queue::Active, &qid);
    let mut bytes = std::fs::read(&path).unwrap();
    let pos = bytes
        .windows(marker.len())
        .position(|w| w == marker.as_bytes())
        .expect("marker in queue file");
    bytes[pos] ^= 0x20;
    std::fs::write(&path, bytes).unwrap();
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(mut child) = self.master.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::SIGTERM);
            let stopped = wait_until(Duration::from_secs(8), || {
                matches!(child.try_wait(), Ok(Some(_)))
            });
            if !stopped {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
