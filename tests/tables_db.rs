//! Private database servers for the table tests: a PostgreSQL cluster
//! (initdb in a temp dir), a MariaDB server (mariadb-install-db in a temp
//! datadir) and an OpenLDAP slapd (a temp slapd.conf and ldapadd
//! fixtures), each on a free port of 127.0.0.1 with its socket in the
//! temp dir, run as an unprivileged user when the tests run as root
//! (postgres and mariadbd refuse root), stopped and restarted at will
//! (the outage tests) and killed when dropped.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use testkit::{free_port, wait_until};

/// The uid/gid the servers run as: nobody when root, else ourselves.
fn server_ids() -> (u32, u32) {
    if nix::unistd::geteuid().is_root() {
        (65534, 65534)
    } else {
        (
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        )
    }
}

/// A temp dir that the server user owns, reachable by everyone (proxymap
/// runs as the mail owner and reads the tables' .cf files beside it).
fn server_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let (uid, gid) = server_ids();
    std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn as_server(cmd: &mut Command) -> &mut Command {
    let (uid, gid) = server_ids();
    if nix::unistd::geteuid().is_root() {
        cmd.uid(uid).gid(gid).env("HOME", "/tmp");
    }
    cmd
}

fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stop_child(child: &mut Option<Child>, signal: nix::sys::signal::Signal) {
    if let Some(mut c) = child.take() {
        let pid = nix::unistd::Pid::from_raw(c.id() as i32);
        let _ = nix::sys::signal::kill(pid, signal);
        let done = wait_until(Duration::from_secs(20), || {
            matches!(c.try_wait(), Ok(Some(_)))
        });
        if !done {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Writes a file that every user can read.
pub fn write_public(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
}

/// A private PostgreSQL server with a database `mail`.
pub struct Postgres {
    /// Data, socket and log directory.
    pub dir: tempfile::TempDir,
    /// TCP port on 127.0.0.1.
    pub port: u16,
    bin: PathBuf,
    child: Option<Child>,
    /// More server options (TLS).
    options: Vec<String>,
}

fn pg_bin() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| rd.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    found.sort();
    let bin = found
        .pop()
        .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"));
    testkit::need_file(&bin.join("initdb"), "postgresql");
    bin
}

impl Postgres {
    /// initdb, start, create database `mail`.
    pub fn start() -> Postgres {
        Postgres::start_with(None)
    }

    /// As [`Postgres::start`], with TLS (ssl=on) on `pki`'s certificate
    /// when given.
    pub fn start_with(pki: Option<&crate::util::Pki>) -> Postgres {
        let bin = pg_bin();
        let dir = server_dir();
        let data = dir.path().join("data");
        run(
            as_server(
                Command::new(bin.join("initdb"))
                    .args([
                        "-A",
                        "trust",
                        "-U",
                        "postgres",
                        "-E",
                        "UTF8",
                        "--no-sync",
                        "-D",
                    ])
                    .arg(&data),
            ),
            "initdb",
        );
        let mut options = Vec::new();
        if let Some(p) = pki {
            // The server reads its key only when the key is its own, 0600.
            let (uid, gid) = server_ids();
            let (cert, key) = (dir.path().join("server.crt"), dir.path().join("server.key"));
            std::fs::copy(&p.cert, &cert).unwrap();
            std::fs::copy(&p.key, &key).unwrap();
            for f in [&cert, &key] {
                std::os::unix::fs::chown(f, Some(uid), Some(gid)).unwrap();
            }
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
            options = vec![
                "ssl=on".to_string(),
                format!("ssl_cert_file={}", cert.display()),
                format!("ssl_key_file={}", key.display()),
            ];
        }
        let mut pg = Postgres {
            dir,
            port: free_port(),
            bin,
            child: None,
            options,
        };
        pg.resume();
        pg.psql("postgres", "CREATE DATABASE mail");
        pg
    }

    /// Starts the server (again) and waits until it answers.
    pub fn resume(&mut self) {
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(self.dir.path().join("postgres.log"))
            .unwrap();
        let (uid, gid) = server_ids();
        std::os::unix::fs::chown(self.dir.path().join("postgres.log"), Some(uid), Some(gid))
            .unwrap();
        let child = as_server(
            Command::new(self.bin.join("postgres"))
                .arg("-D")
                .arg(self.dir.path().join("data"))
                .arg("-k")
                .arg(self.dir.path())
                .args(["-p", &self.port.to_string()])
                .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
                .args(self.options.iter().flat_map(|o| ["-c", o.as_str()]))
                .stdout(Stdio::null())
                .stderr(log),
        )
        .spawn()
        .unwrap();
        self.child = Some(child);
        let ready = wait_until(Duration::from_secs(30), || {
            as_server(Command::new(self.bin.join("pg_isready")).args([
                "-q",
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
            ]))
            .status()
            .is_ok_and(|s| s.success())
        });
        assert!(ready, "postgres did not start: {}", self.log());
    }

    /// Stops the server (fast shutdown: clients are disconnected).
    pub fn stop(&mut self) {
        stop_child(&mut self.child, nix::sys::signal::Signal::SIGINT);
    }

    /// The server's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    /// Runs SQL in database `db`; returns psql's unaligned output.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        run(
            as_server(
                Command::new(self.bin.join("psql"))
                    .args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1"])
                    .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
                    .args(["-U", "postgres", "-d", db, "-c", sql]),
            ),
            &format!("psql {sql}"),
        )
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        stop_child(&mut self.child, nix::sys::signal::Signal::SIGQUIT);
    }
}

/// A private MariaDB server with a database `mail`.
pub struct Mariadb {
    /// Data, socket and log directory.
    pub dir: tempfile::TempDir,
    /// TCP port on 127.0.0.1.
    pub port: u16,
    child: Option<Child>,
    /// More server options (TLS).
    options: Vec<String>,
}

impl Mariadb {
    /// mariadb-install-db, start, create database `mail`.
    pub fn start() -> Mariadb {
        Mariadb::start_with(None)
    }

    /// As [`Mariadb::start`], with TLS on `pki`'s certificate when given.
    pub fn start_with(pki: Option<&crate::util::Pki>) -> Mariadb {
        testkit::need_file(Path::new("/usr/sbin/mariadbd"), "mariadb-server");
        let dir = server_dir();
        let data = dir.path().join("data");
        let (uid, _) = server_ids();
        let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .ok()
            .flatten()
            .map(|u| u.name)
            .unwrap_or_else(|| "nobody".into());
        // One bootstrap at a time: two at once (the mysql tests run in
        // parallel) once failed without a word; native AIO off, as the
        // server below, so parallel servers cannot exhaust fs.aio-max-nr.
        static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
        {
            let _one = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
            run(
                as_server(
                    Command::new("mariadb-install-db")
                        .arg("--no-defaults")
                        .arg(format!("--datadir={}", data.display()))
                        .arg(format!("--user={user}"))
                        .args([
                            "--auth-root-authentication-method=normal",
                            "--skip-test-db",
                            "--innodb-use-native-aio=0",
                        ]),
                ),
                "mariadb-install-db",
            );
        }
        let options = pki
            .map(|p| {
                vec![
                    format!("--ssl-ca={}", p.ca.display()),
                    format!("--ssl-cert={}", p.cert.display()),
                    format!("--ssl-key={}", p.key.display()),
                ]
            })
            .unwrap_or_default();
        let mut db = Mariadb {
            dir,
            port: free_port(),
            child: None,
            options,
        };
        db.resume();
        db.sql("CREATE DATABASE mail");
        db
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("mysqld.sock")
    }

    /// Starts the server (again) and waits until it answers.
    pub fn resume(&mut self) {
        let log = self.dir.path().join("mariadb.log");
        let child = as_server(
            Command::new("/usr/sbin/mariadbd")
                .arg("--no-defaults")
                .arg(format!(
                    "--datadir={}",
                    self.dir.path().join("data").display()
                ))
                .arg(format!("--socket={}", self.socket().display()))
                .arg(format!("--port={}", self.port))
                .arg("--bind-address=127.0.0.1")
                .arg(format!(
                    "--pid-file={}",
                    self.dir.path().join("mariadb.pid").display()
                ))
                .arg(format!("--log-error={}", log.display()))
                .arg("--innodb-buffer-pool-size=16M")
                .arg("--innodb-use-native-aio=0")
                .args(&self.options)
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
        .spawn()
        .unwrap();
        self.child = Some(child);
        let ready = wait_until(Duration::from_secs(60), || {
            Command::new("mariadb")
                .arg("--no-defaults")
                .arg(format!("--socket={}", self.socket().display()))
                .args(["-u", "root", "-e", "SELECT 1"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        assert!(
            ready,
            "mariadbd did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// Stops the server.
    pub fn stop(&mut self) {
        stop_child(&mut self.child, nix::sys::signal::Signal::SIGTERM);
    }

    /// The server's error log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mariadb.log")).unwrap_or_default()
    }

    /// Runs SQL as root over the socket (database `mail` once created).
    pub fn sql(&self, sql: &str) -> String {
        let mut cmd = Command::new("mariadb");
        cmd.arg("--no-defaults")
            .arg(format!("--socket={}", self.socket().display()))
            .args(["-u", "root", "-N", "-B"]);
        if !sql.starts_with("CREATE DATABASE") {
            cmd.arg("mail");
        }
        run(cmd.args(["-e", sql]), &format!("mariadb {sql}"))
    }
}

impl Drop for Mariadb {
    fn drop(&mut self) {
        stop_child(&mut self.child, nix::sys::signal::Signal::SIGKILL);
    }
}

/// A private slapd with suffix dc=example,dc=test (rootdn
/// cn=admin,dc=example,dc=test, password `secret`).
pub struct Slapd {
    /// Configuration, database and pid directory.
    pub dir: tempfile::TempDir,
    /// TCP port on 127.0.0.1.
    pub port: u16,
    child: Option<Child>,
}

/// The LDAP admin's DN and password.
pub const LDAP_ADMIN: (&str, &str) = ("cn=admin,dc=example,dc=test", "secret");

impl Slapd {
    /// Writes slapd.conf (with TLS for StartTLS when `pki` is given),
    /// starts slapd and loads `ldif`.
    pub fn start(ldif: &str, pki: Option<&crate::util::Pki>) -> Slapd {
        testkit::need_file(Path::new("/usr/sbin/slapd"), "slapd");
        testkit::need_program("ldapadd", "ldap-utils");
        let dir = server_dir();
        let d = dir.path().display();
        let db = dir.path().join("db");
        std::fs::create_dir(&db).unwrap();
        let (uid, gid) = server_ids();
        std::os::unix::fs::chown(&db, Some(uid), Some(gid)).unwrap();
        let tls = pki
            .map(|p| {
                format!(
                    "TLSCACertificateFile {}\nTLSCertificateFile {}\nTLSCertificateKeyFile {}\n",
                    p.ca.display(),
                    p.cert.display(),
                    p.key.display()
                )
            })
            .unwrap_or_default();
        write_public(
            &dir.path().join("slapd.conf"),
            &format!(
                "include /etc/ldap/schema/core.schema\n\
                 include /etc/ldap/schema/cosine.schema\n\
                 include /etc/ldap/schema/inetorgperson.schema\n\
                 include /etc/ldap/schema/nis.schema\n\
                 pidfile {d}/slapd.pid\n\
                 {tls}\
                 modulepath /usr/lib/ldap\n\
                 moduleload back_mdb\n\
                 database mdb\n\
                 maxsize 10485760\n\
                 suffix \"dc=example,dc=test\"\n\
                 rootdn \"{}\"\n\
                 rootpw {}\n\
                 directory {d}/db\n",
                LDAP_ADMIN.0, LDAP_ADMIN.1
            ),
        );
        let mut s = Slapd {
            dir,
            port: free_port(),
            child: None,
        };
        s.resume();
        let path = s.dir.path().join("fixtures.ldif");
        write_public(&path, ldif);
        s.ldap("ldapadd", &path);
        s
    }

    /// The server's URL.
    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// Runs ldapadd or ldapmodify with the admin's bind on `ldif`.
    pub fn ldap(&self, tool: &str, ldif: &Path) {
        run(
            Command::new(tool)
                .args([
                    "-x",
                    "-H",
                    &self.url(),
                    "-D",
                    LDAP_ADMIN.0,
                    "-w",
                    LDAP_ADMIN.1,
                    "-f",
                ])
                .arg(ldif),
            tool,
        );
    }

    /// Starts slapd (again) in the foreground and waits until it answers.
    pub fn resume(&mut self) {
        let (uid, gid) = server_ids();
        let mut cmd = Command::new("/usr/sbin/slapd");
        cmd.arg("-d")
            .arg("0")
            .arg("-f")
            .arg(self.dir.path().join("slapd.conf"))
            .arg("-h")
            .arg(self.url());
        if nix::unistd::geteuid().is_root() {
            cmd.args(["-u", &uid.to_string(), "-g", &gid.to_string()]);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let ready = wait_until(Duration::from_secs(30), || {
            Command::new("ldapsearch")
                .args(["-x", "-H", &self.url(), "-b", "", "-s", "base"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        assert!(ready, "slapd did not start");
    }

    /// Stops slapd.
    pub fn stop(&mut self) {
        stop_child(&mut self.child, nix::sys::signal::Signal::SIGTERM);
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        stop_child(&mut self.child, nix::sys::signal::Signal::SIGKILL);
    }
}
