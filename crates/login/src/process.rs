//! What pop3d's and imapd's three process roles share: the service
//! process (root under master) starts a login process and, after a
//! verified login, a mail process, both by executing itself again with a
//! role in the environment. Each child reads the service's command line
//! and main.cf again ([`child_config`]), takes its descriptors from
//! stdin/stdout ([`owned`]), and the mail process becomes the mailbox
//! owner ([`crate::location::Target::become_owner`]) while the login
//! process is jailed ([`enter_login_jail`]).

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

/// Who is connected to a login process.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The client's address.
    pub addr: IpAddr,
    /// Our address on the connection.
    pub local: IpAddr,
}

/// What a login process starts with.
#[derive(Debug)]
pub enum LoginStart {
    /// Serve this client (stdin), handing off to the mail process
    /// through the socket (stdout).
    Serve(std::net::TcpStream, std::os::unix::net::UnixStream, Peer),
    /// Exit with this code (no client, or the jail failed).
    Exit(i32),
}

/// The login process's start: its client and mail-process socket from
/// stdin and stdout, the client's addresses ("connect from" logged),
/// then the jail ([`enter_login_jail`]).
pub fn login_start(mail_owner: &str, queue_directory: &std::path::Path) -> LoginStart {
    let (Ok(tcp_fd), Ok(mail_fd)) = (owned(&io::stdin()), owned(&io::stdout())) else {
        return LoginStart::Exit(1);
    };
    let tcp = std::net::TcpStream::from(tcp_fd);
    let mail = std::os::unix::net::UnixStream::from(mail_fd);
    let (Ok(peer_addr), Ok(local_addr)) = (tcp.peer_addr(), tcp.local_addr()) else {
        return LoginStart::Exit(0);
    };
    let peer = Peer {
        addr: canonical(peer_addr.ip()),
        local: canonical(local_addr.ip()),
    };
    maillog::info!("connect from [{}]", peer.addr);
    if let Err(e) = enter_login_jail(mail_owner, queue_directory) {
        maillog::warning!("{e}");
        return LoginStart::Exit(1);
    }
    LoginStart::Serve(tcp, mail, peer)
}

/// A child role's start: the service's arguments (as master gave them to
/// the service process) and main.cf with the master.cf `-o` overrides
/// and service_name, and the log opened under the service's program
/// name. None when either cannot be read (the child exits 1).
pub fn child_config() -> Option<(ipc::args::ServiceArgs, config::Config)> {
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let args = ipc::args::ServiceArgs::parse(argv).ok()?;
    let mut config = config::Config::load(&config::default_config_dir()).ok()?;
    if !args.service_name.is_empty() {
        config.set_override("service_name", &args.service_name);
    }
    for (k, v) in &args.overrides {
        config.set_override(k, v);
    }
    let file = config.str("maillog_file");
    // maillog_file records name myhostname's first label, as ipc's daemons.
    maillog::init(
        maillog::Setup::new(maillog::Options {
            syslog_name: config.str("syslog_name"),
            program: args.program.clone(),
            maillog_file: (!file.is_empty()).then(|| PathBuf::from(file)),
            stderr: false,
        })
        .hostname(&config.str("myhostname")),
    );
    Some((args, config))
}

/// A standard stream's descriptor, owned (the std handle is not used
/// again).
///
/// # Errors
/// The descriptor cannot be duplicated.
pub fn owned(stream: &impl AsFd) -> io::Result<OwnedFd> {
    stream.as_fd().try_clone_to_owned()
}

/// IPv4-mapped IPv6 addresses as IPv4 (for logs and loopback checks).
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The login process's jail: as root, chroot into `queue_directory` and
/// become `mail_owner` (never uid 0), as Dovecot's login processes run
/// unprivileged; not as root (a development instance), nothing.
///
/// # Errors
/// The account is unknown or privileged, or a step failed: the process
/// must not serve (the text says why, for the log).
pub fn enter_login_jail(mail_owner: &str, queue_directory: &std::path::Path) -> Result<(), String> {
    if !privsep::is_root() {
        return Ok(());
    }
    let account = match privsep::lookup_user(mail_owner) {
        Ok(Some(a)) if a.uid != 0 => a,
        _ => return Err(format!("unknown or privileged mail_owner {mail_owner}")),
    };
    privsep::drop_privileges(&account, Some(queue_directory))
        .map(|_| ())
        .map_err(|e| format!("login process: drop privileges: {e}"))
}

/// The server TLS settings of a daemon whose parameters start with
/// `prefix` (`pop3d`, `imapd`): `PREFIX_tls_cert_file`, `_key_file`,
/// `_chain_files` and `_wrappermode`. The certificate is loaded only when
/// `load` (the mail process never does TLS). Returns the configuration
/// (None: no certificate) and wrapper mode.
///
/// # Errors
/// A certificate or key that does not load, or wrapper mode without one.
pub fn server_tls(
    config: &config::Config,
    prefix: &str,
    load: bool,
) -> Result<(Option<std::sync::Arc<rustls::ServerConfig>>, bool), String> {
    let cert = config.str(&format!("{prefix}_tls_cert_file"));
    let key = config.str(&format!("{prefix}_tls_key_file"));
    let chain: Vec<String> = config
        .str(&format!("{prefix}_tls_chain_files"))
        .split([',', ' ', '\t'])
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let wrapper = config.bool(&format!("{prefix}_tls_wrappermode"));
    if !load {
        return Ok((None, wrapper));
    }
    let tls = if cert.is_empty() && chain.is_empty() {
        None
    } else {
        Some(
            tls::ServerConfig::load(
                PathBuf::from(&cert).as_path(),
                PathBuf::from(&key).as_path(),
                &chain,
            )
            .map_err(|e| format!("{prefix}_tls_cert_file {cert}: {e}"))?,
        )
    };
    if wrapper && tls.is_none() {
        return Err(format!(
            "{prefix}_tls_wrappermode = yes needs {prefix}_tls_cert_file"
        ));
    }
    Ok((tls, wrapper))
}

/// Counts a new connection of `service` in for its client address
/// (anvil, `limit` per client; 0: not counted). Over the limit the
/// client gets `refusal` and a warning is logged: Err.
///
/// # Errors
/// The client has `limit` connections already: how many it has.
pub fn count_client(
    service: &str,
    tcp: &std::net::TcpStream,
    limit: u32,
    refusal: &[u8],
) -> Result<Option<crate::anvil::Counted>, u32> {
    use std::io::Write;
    let addr = tcp.peer_addr().map(|a| canonical(a.ip()).to_string());
    let addr = addr.as_deref().unwrap_or("unknown");
    crate::anvil::connect(service, addr, limit).inspect_err(|count| {
        maillog::warning!(
            "Connection concurrency limit exceeded: {count} from [{addr}] for service {service}"
        );
        let _ = (&*tcp).write_all(refusal);
    })
}

/// A started login process and what the service process keeps.
#[derive(Debug)]
pub struct Login {
    /// This program, to start the mail process with.
    pub exe: PathBuf,
    /// The login process.
    pub child: std::process::Child,
    /// The service's end of the socketpair: the ticket and the hand-off
    /// come on it, and it is the relay when the login process keeps TLS.
    pub mail_end: std::os::unix::net::UnixStream,
    /// The client's socket, for a cleartext session handed to the mail
    /// process directly.
    pub client: Option<std::net::TcpStream>,
}

/// Starts this program again as the login process (environment `role`
/// = `login`) on the client's socket, its standard output one end of a
/// new socketpair. None (logged) when that cannot be done.
pub fn start_login(tcp: std::net::TcpStream, role: &str) -> Option<Login> {
    use std::process::{Command, Stdio};
    let client = tcp.try_clone().ok();
    let (login_end, mail_end) = match std::os::unix::net::UnixStream::pair() {
        Ok(p) => p,
        Err(e) => {
            maillog::warning!("socketpair: {e}");
            return None;
        }
    };
    let Ok(exe) = std::env::current_exe() else {
        maillog::warning!("cannot find my own executable");
        return None;
    };
    match Command::new(&exe)
        .args(std::env::args_os().skip(1))
        .env(role, "login")
        .stdin(Stdio::from(OwnedFd::from(tcp)))
        .stdout(Stdio::from(OwnedFd::from(login_end)))
        .spawn()
    {
        Ok(child) => Some(Login {
            exe,
            child,
            mail_end,
            client,
        }),
        Err(e) => {
            maillog::warning!("start login process: {e}");
            None
        }
    }
}

/// How a service starts its mail process ([`start_mail`]).
#[derive(Debug)]
pub struct MailStart<'a> {
    /// The environment variable that says the role (`POP3D_ROLE`); the
    /// others are named with its prefix (`POP3D_USER`, `POP3D_MAILBOX`,
    /// `POP3D_MAILDIR`, `POP3D_UID`, `POP3D_GID`, `POP3D_DIRECT`).
    pub role: &'a str,
    /// More variables for the mail process (imapd: the login's tag).
    pub extra: &'a [(&'a str, &'a str)],
    /// glibc's compact heap ([`privsep::memory::COMPACT_HEAP_TUNABLES`])
    /// unless the administrator set the tunables: for a mail process idle
    /// most of its life.
    pub compact_heap: bool,
    /// The client's line when the user has no mailbox.
    pub no_mailbox: &'a [u8],
    /// The client's line when the mailbox look-up failed.
    pub lookup_failed: &'a [u8],
}

/// Finds `user`'s mailbox and starts this program (`exe`) again as the
/// mail process for it, on `sock` (the socketpair to the relaying login
/// process, or with `direct` the client's TCP socket and the base64 of
/// its pipelined input). None, the client told why on `sock` and the
/// reason logged, when there is no mailbox or no process.
pub fn start_mail(
    exe: &std::path::Path,
    sock: OwnedFd,
    direct: Option<&str>,
    location: &crate::location::LocationSettings,
    user: &str,
    how: &MailStart<'_>,
) -> Option<std::process::Child> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let sock = std::fs::File::from(sock);
    let target = match location.locate(user) {
        Ok(Some(t)) => t,
        Ok(None) => {
            maillog::warning!("{user}: no mailbox (not in virtual_mailbox_maps, no such account)");
            let _ = (&sock).write_all(how.no_mailbox);
            return None;
        }
        Err(e) => {
            maillog::warning!("{user}: {e}");
            let _ = (&sock).write_all(how.lookup_failed);
            return None;
        }
    };
    let prefix = how.role.strip_suffix("_ROLE").unwrap_or(how.role);
    let mut command = Command::new(exe);
    if how.compact_heap && std::env::var_os(privsep::memory::TUNABLES_VARIABLE).is_none() {
        command.env(
            privsep::memory::TUNABLES_VARIABLE,
            privsep::memory::COMPACT_HEAP_TUNABLES,
        );
    }
    command
        .args(std::env::args_os().skip(1))
        .env(how.role, "mail")
        .env(format!("{prefix}_USER"), user)
        .env(format!("{prefix}_MAILBOX"), &target.path)
        .env(
            format!("{prefix}_MAILDIR"),
            if target.maildir { "1" } else { "0" },
        )
        .env(format!("{prefix}_UID"), target.uid.to_string())
        .env(format!("{prefix}_GID"), target.gid.to_string())
        .env(format!("{prefix}_DIRECT"), direct.unwrap_or("-"));
    for (name, value) in how.extra {
        command.env(name, value);
    }
    match command
        .stdin(Stdio::from(sock))
        .stdout(Stdio::null())
        .spawn()
    {
        Ok(c) => Some(c),
        Err(e) => {
            maillog::warning!("{user}: start mail process: {e}");
            None
        }
    }
}

/// Most session processes (mail processes, and login processes relaying
/// TLS) a service process leaves running without waiting for them; at
/// this many it waits for the oldest to end before it takes the next
/// connection, so master.cf's process limit times this bounds them.
pub const UNWAITED_LIMIT: usize = 100;

/// The processes of sessions that a service process (pop3d's, imapd's)
/// did not wait for (no per-client count to hold until the session's
/// end): reaped as they end, at the next connection, and at most
/// [`UNWAITED_LIMIT`] of them (the oldest is waited for first).
#[derive(Debug)]
pub struct Sessions {
    children: Vec<std::process::Child>,
    limit: usize,
}

impl Default for Sessions {
    fn default() -> Sessions {
        Sessions::with_limit(UNWAITED_LIMIT)
    }
}

impl Sessions {
    /// At most `limit` (at least 1) unwaited processes.
    pub fn with_limit(limit: usize) -> Sessions {
        Sessions {
            children: Vec::new(),
            limit: limit.max(1),
        }
    }

    /// Reaps the children that have ended.
    pub fn reap(&mut self) {
        self.children
            .retain_mut(|c| matches!(c.try_wait(), Ok(None)));
    }

    /// Keeps `child` to reap later, first waiting for the oldest while
    /// the limit's number are unwaited.
    pub fn keep(&mut self, child: std::process::Child) {
        self.reap();
        while self.children.len() >= self.limit {
            let mut oldest = self.children.remove(0);
            let _ = oldest.wait();
        }
        self.children.push(child);
    }

    /// How many started children have not been reaped.
    pub fn live(&self) -> usize {
        self.children.len()
    }
}

#[cfg(test)]
mod sessions_tests {
    use super::*;
    use std::process::Command;

    /// Past the limit the oldest is waited for: never more than the
    /// limit unwaited, and the ended ones reaped.
    #[test]
    fn unwaited_sessions_are_bounded() {
        let mut s = Sessions::with_limit(3);
        let mut first = None;
        for i in 0..6 {
            let child = Command::new("sleep")
                .arg("0.2")
                .spawn()
                .unwrap_or_else(|e| panic!("sleep: {e}"));
            if i == 0 {
                first = Some(child.id());
            }
            s.keep(child);
            assert!(s.live() <= 3, "{} unwaited", s.live());
        }
        assert!(
            s.children.iter().all(|c| Some(c.id()) != first),
            "the oldest was waited for"
        );
        for c in &mut s.children {
            let _ = c.wait();
        }
        s.reap();
        assert_eq!(s.live(), 0);
        assert_eq!(Sessions::default().limit, UNWAITED_LIMIT);
    }
}
