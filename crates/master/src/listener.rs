//! Creating the listeners master.cf names, and waking services up.
//!
//! - inet `[host:]port`: TCP sockets with SO_REUSEADDR; no host or `*`
//!   means every address inet_interfaces lists (`all` = 0.0.0.0 and `[::]`,
//!   the IPv6 one with IPV6_V6ONLY so both can coexist).
//! - unix and pass: a stream socket `queue_directory/{public,private}/NAME`,
//!   mode 0666 in public/, 0600 in private/, owned by mail_owner when root.
//! - fifo: a named pipe in the same places (0622 public, 0600 private),
//!   held open read-write by master so it never sees end-of-file.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::lchown;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use config::master_cf::{Service as Entry, ServiceType};
use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, SockaddrIn, SockaddrIn6, UnixAddr, bind, connect,
    listen, setsockopt, socket, sockopt,
};

/// The listen queue length for inet and unix sockets: the kernel's
/// largest (net.core.somaxconn caps it). Postfix uses the service's
/// maxproc or default_process_limit (100), one queued connection per
/// process that could accept it; one smtpd of ours serves many sessions,
/// so a burst of clients must wait in the queue, not be dropped or
/// answered with SYN cookies while smtpd accepts them.
const BACKLOG: Backlog = Backlog::MAXCONN;

/// One open listener.
#[derive(Debug)]
pub(crate) struct Listener {
    /// The listening descriptor (close-on-exec, non-blocking).
    pub(crate) fd: OwnedFd,
}

/// Where a service listens, computed before anything is opened (reload
/// compares these to decide whether listeners can be kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// TCP addresses.
    Inet(Vec<SocketAddr>),
    /// A unix socket path (unix and pass).
    Unix(PathBuf),
    /// A fifo path.
    Fifo(PathBuf),
}

/// Computes where `entry` listens.
///
/// # Errors
/// A bad service name, an unknown port or host.
pub(crate) fn endpoint(
    entry: &Entry,
    config: &config::Config,
    qdir: &Path,
) -> Result<Endpoint, String> {
    match entry.kind {
        ServiceType::Inet => inet_addrs(&entry.name, config).map(Endpoint::Inet),
        ServiceType::Fifo => socket_path(entry, qdir).map(Endpoint::Fifo),
        _ => socket_path(entry, qdir).map(Endpoint::Unix),
    }
}

/// Opens the listeners for an endpoint. `owner` is mail_owner when root.
///
/// # Errors
/// socket, bind, listen, mkfifo or open failed; the text says which and where.
pub(crate) fn open(
    ep: &Endpoint,
    private: bool,
    owner: Option<(u32, u32)>,
) -> Result<Vec<Listener>, String> {
    match ep {
        Endpoint::Inet(addrs) => open_inet_all(addrs),
        Endpoint::Unix(p) => open_unix(p, private, owner).map(|l| vec![l]),
        Endpoint::Fifo(p) => open_fifo(p, private, owner).map(|l| vec![l]),
    }
}

/// Removes a unix socket or fifo left by a stopped service.
pub(crate) fn unlink(ep: &Endpoint) {
    if let Endpoint::Unix(p) | Endpoint::Fifo(p) = ep {
        let _ = std::fs::remove_file(p);
    }
}

/// Sends a wake-up request (`W`) to a fifo or unix service; inet services
/// cannot be woken. Failure (full pipe, full backlog) is harmless: a wake-up
/// is already pending.
pub(crate) fn wake(ep: &Endpoint, listeners: &[Listener]) {
    match ep {
        Endpoint::Fifo(_) => {
            if let Some(l) = listeners.first() {
                let _ = nix::unistd::write(&l.fd, &[ipc::trigger::WAKEUP]);
            }
        }
        Endpoint::Unix(p) => {
            let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
            let Ok(fd) = socket(AddressFamily::Unix, SockType::Stream, flags, None) else {
                return;
            };
            let Ok(addr) = UnixAddr::new(p.as_path()) else {
                return;
            };
            if connect(fd.as_raw_fd(), &addr).is_ok() {
                let _ = nix::unistd::write(&fd, &[ipc::trigger::WAKEUP]);
            }
        }
        Endpoint::Inet(_) => {}
    }
}

/// A service name used as a file name: no slashes, no dot files.
fn socket_path(entry: &Entry, qdir: &Path) -> Result<PathBuf, String> {
    let ok = !entry.name.is_empty()
        && !entry.name.starts_with('.')
        && entry
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !ok {
        return Err(format!(
            "bad service name for a local socket: {}",
            entry.name
        ));
    }
    let dir = if entry.private { "private" } else { "public" };
    Ok(qdir.join(dir).join(&entry.name))
}

/// Splits `[host:]port` (`[v6]:port`, `host:port`, `port`).
fn split_host_port(name: &str) -> Result<(Option<&str>, &str), String> {
    if let Some(rest) = name.strip_prefix('[') {
        let (host, port) = rest
            .split_once("]:")
            .ok_or_else(|| format!("bad inet service name: {name}"))?;
        return Ok((Some(host), port));
    }
    match name.rsplit_once(':') {
        Some((host, port)) => Ok(((!host.is_empty() && host != "*").then_some(host), port)),
        None => Ok((None, name)),
    }
}

/// A port number or a well-known service name.
fn port_number(port: &str) -> Result<u16, String> {
    if let Ok(n) = port.parse::<u16>() {
        return Ok(n);
    }
    let known = [
        ("smtp", 25),
        ("submission", 587),
        ("submissions", 465),
        ("smtps", 465),
        ("pop3", 110),
        ("pop3s", 995),
        ("imap", 143),
        ("imap2", 143),
        ("imaps", 993),
    ];
    if let Some((_, n)) = known.iter().find(|(k, _)| *k == port) {
        return Ok(*n);
    }
    services_lookup(port).ok_or_else(|| format!("unknown service: {port}/tcp"))
}

/// Looks a TCP service up in /etc/services.
fn services_lookup(name: &str) -> Option<u16> {
    let text = std::fs::read_to_string("/etc/services").ok()?;
    text.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        let first = words.next()?;
        let (num, proto) = words.next()?.split_once('/')?;
        let aliases: Vec<&str> = words.collect();
        ((first == name || aliases.contains(&name)) && proto == "tcp")
            .then(|| num.parse().ok())
            .flatten()
    })
}

/// The TCP addresses of an inet service.
fn inet_addrs(name: &str, config: &config::Config) -> Result<Vec<SocketAddr>, String> {
    let (host, port) = split_host_port(name)?;
    let port = port_number(port)?;
    let hosts: Vec<IpAddr> = match host {
        Some(h) => resolve(h)?,
        None => interfaces(config)?,
    };
    let mut out: Vec<SocketAddr> = Vec::new();
    for ip in hosts {
        let sa = SocketAddr::new(ip, port);
        if !out.contains(&sa) {
            out.push(sa);
        }
    }
    Ok(out)
}

/// inet_interfaces, filtered by inet_protocols.
fn interfaces(config: &config::Config) -> Result<Vec<IpAddr>, String> {
    let value = config
        .get("inet_interfaces")
        .unwrap_or_else(|| "all".into());
    let protocols = config.get("inet_protocols").unwrap_or_else(|| "all".into());
    let v4 = protocols.contains("all") || protocols.contains("ipv4");
    let v6 = protocols.contains("all") || protocols.contains("ipv6");
    let mut out = Vec::new();
    for word in value.split([',', ' ', '\t']).filter(|w| !w.is_empty()) {
        match word {
            "all" => {
                out.push(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
                out.push(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
            }
            "loopback-only" | "localhost" => {
                out.push(IpAddr::V4(Ipv4Addr::LOCALHOST));
                out.push(IpAddr::V6(Ipv6Addr::LOCALHOST));
            }
            w => out.extend(resolve(w)?),
        }
    }
    out.retain(|ip| if ip.is_ipv4() { v4 } else { v6 });
    if out.is_empty() {
        return Err(format!("inet_interfaces: no usable address in \"{value}\""));
    }
    Ok(out)
}

/// An address literal or a host name.
fn resolve(host: &str) -> Result<Vec<IpAddr>, String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    let addrs = (bare, 0)
        .to_socket_addrs()
        .map_err(|e| format!("host not found: {bare}: {e}"))?;
    Ok(addrs.map(|a| a.ip()).collect())
}

/// Opens every address; an IPv6 address the host cannot use (no IPv6 in
/// the kernel, no ::1) is skipped with a warning when others remain, as
/// Postfix disables IPv6 support on such hosts instead of refusing to run.
fn open_inet_all(addrs: &[SocketAddr]) -> Result<Vec<Listener>, String> {
    use nix::errno::Errno;
    let mut out = Vec::new();
    for sa in addrs {
        match open_inet(sa) {
            Ok(l) => out.push(l),
            Err((Errno::EAFNOSUPPORT | Errno::EADDRNOTAVAIL, msg))
                if sa.is_ipv6() && addrs.len() > 1 =>
            {
                maillog::warning!("{msg}; IPv6 address skipped");
            }
            Err((_, msg)) => return Err(msg),
        }
    }
    if out.is_empty() {
        return Err("no usable listen address".to_string());
    }
    Ok(out)
}

fn open_inet(sa: &SocketAddr) -> Result<Listener, (nix::errno::Errno, String)> {
    let what = sa.to_string();
    let err = |op: &str, e: nix::errno::Errno| (e, format!("{op} {what}: {e}"));
    let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
    let fam = if sa.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd = socket(fam, SockType::Stream, flags, None).map_err(|e| err("socket", e))?;
    setsockopt(&fd, sockopt::ReuseAddr, &true).map_err(|e| err("setsockopt SO_REUSEADDR", e))?;
    match sa {
        SocketAddr::V4(a) => bind(fd.as_raw_fd(), &SockaddrIn::from(*a)),
        SocketAddr::V6(a) => {
            setsockopt(&fd, sockopt::Ipv6V6Only, &true)
                .map_err(|e| err("setsockopt IPV6_V6ONLY", e))?;
            bind(fd.as_raw_fd(), &SockaddrIn6::from(*a))
        }
    }
    .map_err(|e| err("bind", e))?;
    listen(&fd, BACKLOG).map_err(|e| err("listen", e))?;
    Ok(Listener { fd })
}

/// Gives a new socket or fifo to mail_owner. lchown, not chown: in a
/// directory mail_owner can write, the name could have been swapped for a
/// symlink, and root must not be tricked into changing another file.
fn set_owner(path: &Path, owner: Option<(u32, u32)>) -> Result<(), String> {
    if let Some((uid, gid)) = owner {
        lchown(path, Some(uid), Some(gid)).map_err(|e| format!("chown {}: {e}", path.display()))?;
    }
    Ok(())
}

/// Runs `f` with the umask that turns 0777 into `mode`, so a socket or fifo
/// is born with its final mode (no chmod by name afterwards). master is
/// single-threaded, so the process-wide umask change is safe. Unit tests
/// are not: there each test thread first takes a umask of its own.
fn with_mode<T>(mode: u32, f: impl FnOnce() -> T) -> T {
    use nix::sys::stat::{Mode, umask};
    #[cfg(test)]
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_FS).expect("unshare(CLONE_FS)");
    let old = umask(Mode::from_bits_truncate(!mode & 0o777));
    let out = f();
    umask(old);
    out
}

/// The socket is made under a temporary name and renamed into place once it
/// listens and has its owner: a client that finds the name always finds a
/// listener (between bind and listen, connect would be refused).
fn open_unix(path: &Path, private: bool, owner: Option<(u32, u32)>) -> Result<Listener, String> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = std::path::PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let mode = if private { 0o600 } else { 0o666 };
    let l = with_mode(mode, || UnixListener::bind(&tmp))
        .map_err(|e| format!("bind {}: {e}", path.display()))?;
    l.set_nonblocking(true)
        .map_err(|e| format!("non-blocking {}: {e}", path.display()))?;
    set_owner(&tmp, owner)?;
    std::fs::rename(&tmp, path).map_err(|e| format!("rename to {}: {e}", path.display()))?;
    Ok(Listener {
        fd: OwnedFd::from(l),
    })
}

fn open_fifo(path: &Path, private: bool, owner: Option<(u32, u32)>) -> Result<Listener, String> {
    use nix::fcntl::OFlag;
    use nix::sys::stat::Mode;
    let _ = std::fs::remove_file(path);
    let mode = if private { 0o600 } else { 0o622 };
    with_mode(mode, || {
        nix::unistd::mkfifo(path, Mode::from_bits_truncate(mode))
    })
    .map_err(|e| format!("mkfifo {}: {e}", path.display()))?;
    set_owner(path, owner)?;
    let flags = OFlag::O_RDWR | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW;
    let fd = nix::fcntl::open(path, flags, Mode::empty())
        .map_err(|e| format!("open {}: {e}", path.display()))?;
    Ok(Listener { fd })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_inet_names() {
        assert_eq!(split_host_port("25").unwrap(), (None, "25"));
        assert_eq!(split_host_port("*:25").unwrap(), (None, "25"));
        assert_eq!(
            split_host_port("127.0.0.1:2525").unwrap(),
            (Some("127.0.0.1"), "2525")
        );
        assert_eq!(
            split_host_port("[::1]:2525").unwrap(),
            (Some("::1"), "2525")
        );
        assert!(split_host_port("[::1]").is_err());
    }

    #[test]
    fn knows_service_names() {
        assert_eq!(port_number("smtp").unwrap(), 25);
        assert_eq!(port_number("submission").unwrap(), 587);
        assert_eq!(port_number("10025").unwrap(), 10025);
        assert!(port_number("no-such-service-xyz").is_err());
    }

    #[test]
    fn opens_v4_and_v6_any_on_one_port() {
        let l = open_inet(&"0.0.0.0:0".parse().unwrap()).unwrap();
        let port = nix::sys::socket::getsockname::<SockaddrIn>(l.fd.as_raw_fd())
            .unwrap()
            .port();
        // Only a machine without IPv6 may skip the rest.
        if let Err(e) = std::net::TcpListener::bind("[::]:0") {
            testkit::skip(format_args!("no IPv6 on this machine ({e})"));
            return;
        }
        // Without IPV6_V6ONLY this bind would collide with the IPv4 one.
        let l6 = open_inet(&format!("[::]:{port}").parse().unwrap())
            .unwrap_or_else(|(_, msg)| panic!("[::]:{port} beside 0.0.0.0:{port}: {msg}"));
        assert!(nix::sys::socket::getsockopt(&l6.fd, sockopt::Ipv6V6Only).unwrap());
        let port6 = nix::sys::socket::getsockname::<SockaddrIn6>(l6.fd.as_raw_fd())
            .unwrap()
            .port();
        assert_eq!(port6, port);
    }

    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn fifo_wakeup_is_readable() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pickup");
        let ep = Endpoint::Fifo(p.clone());
        let ls = open(&ep, false, None).unwrap();
        wake(&ep, &ls);
        let mut b = [0u8; 4];
        let n = nix::unistd::read(&ls[0].fd, &mut b).unwrap();
        assert_eq!(&b[..n], b"W");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o622);
    }

    #[test]
    fn unix_socket_modes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        let l = open(&Endpoint::Unix(p.clone()), true, None).unwrap();
        assert_eq!(l.len(), 1);
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
