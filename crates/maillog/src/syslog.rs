//! The syslog destination: RFC 3164 datagrams written by hand to the
//! local syslog socket (`/dev/log`), the way syslog(3) does.
//!
//! The socket is connected at init, before chroot, and reconnected (once
//! per record) when a send fails, for example after syslogd restarted.
//! After chroot the reconnect looks for the socket path inside the jail
//! (Postfix's chroot setup copies one to `$queue_directory/dev/log`).

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

/// The standard local syslog socket.
pub const DEFAULT_SOCKET: &str = "/dev/log";

/// A syslog facility, as named by the syslog_facility parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Facility {
    /// `kern`
    Kern,
    /// `user`
    User,
    /// `mail`, the default.
    #[default]
    Mail,
    /// `daemon`
    Daemon,
    /// `auth`
    Auth,
    /// `syslog`
    Syslog,
    /// `lpr`
    Lpr,
    /// `news`
    News,
    /// `uucp`
    Uucp,
    /// `cron`
    Cron,
    /// `authpriv`
    AuthPriv,
    /// `ftp`
    Ftp,
    /// `local0` to `local7`; the number is 0..=7.
    Local(u8),
}

const NAMES: [(&str, Facility); 12] = [
    ("kern", Facility::Kern),
    ("user", Facility::User),
    ("mail", Facility::Mail),
    ("daemon", Facility::Daemon),
    ("auth", Facility::Auth),
    ("syslog", Facility::Syslog),
    ("lpr", Facility::Lpr),
    ("news", Facility::News),
    ("uucp", Facility::Uucp),
    ("cron", Facility::Cron),
    ("authpriv", Facility::AuthPriv),
    ("ftp", Facility::Ftp),
];

impl Facility {
    /// Parses a syslog_facility value: `mail`, `daemon`, `local0`..`local7`,
    /// and the other classic names (case-insensitive, as Postfix accepts).
    /// `None` for an unknown name.
    pub fn from_name(name: &str) -> Option<Facility> {
        let lower = name.trim().to_ascii_lowercase();
        if let Some(digit) = lower.strip_prefix("local") {
            return match digit.as_bytes() {
                [d @ b'0'..=b'7'] => Some(Facility::Local(d - b'0')),
                _ => None,
            };
        }
        NAMES
            .iter()
            .find(|(candidate, _)| *candidate == lower)
            .map(|(_, f)| *f)
    }

    /// The facility number of RFC 3164 (mail is 2, local0 is 16).
    pub fn code(self) -> u8 {
        match self {
            Facility::Kern => 0,
            Facility::User => 1,
            Facility::Mail => 2,
            Facility::Daemon => 3,
            Facility::Auth => 4,
            Facility::Syslog => 5,
            Facility::Lpr => 6,
            Facility::News => 7,
            Facility::Uucp => 8,
            Facility::Cron => 9,
            Facility::AuthPriv => 10,
            Facility::Ftp => 11,
            Facility::Local(n) => 16 + n.min(7),
        }
    }

    /// The PRI value of a record: facility * 8 + severity.
    pub fn priority(self, severity: u8) -> u8 {
        self.code() * 8 + severity.min(7)
    }
}

/// A datagram socket to syslogd, reconnected on demand.
#[derive(Debug)]
pub(crate) struct SyslogSocket {
    path: PathBuf,
    sock: Option<UnixDatagram>,
}

impl SyslogSocket {
    /// Connects now if it can; a missing syslogd is not an error here (test
    /// machines and containers have none), records are then dropped or go
    /// to stderr when asked.
    pub(crate) fn open(path: &Path) -> SyslogSocket {
        let mut s = SyslogSocket {
            path: path.to_path_buf(),
            sock: None,
        };
        s.sock = s.connect().ok();
        s
    }

    fn connect(&self) -> io::Result<UnixDatagram> {
        // std sets SOCK_CLOEXEC, so the socket does not leak into commands
        // that a daemon runs (pipe, local's command delivery).
        let sock = UnixDatagram::unbound()?;
        sock.connect(&self.path)?;
        Ok(sock)
    }

    /// Sends one record; on failure reconnects once and tries again.
    pub(crate) fn send(&mut self, record: &[u8]) -> io::Result<()> {
        if let Some(sock) = &self.sock {
            match sock.send(record) {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    if sock.send(record).is_ok() {
                        return Ok(());
                    }
                }
                Err(_) => {}
            }
        }
        self.sock = None;
        let sock = self.connect()?;
        let result = sock.send(record).map(|_| ());
        self.sock = Some(sock);
        result
    }

    /// True while a connection is open.
    #[cfg(test)]
    pub(crate) fn is_connected(&self) -> bool {
        self.sock.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facility_names_and_codes() {
        assert_eq!(Facility::from_name("mail"), Some(Facility::Mail));
        assert_eq!(Facility::from_name("MAIL"), Some(Facility::Mail));
        assert_eq!(Facility::from_name("local0"), Some(Facility::Local(0)));
        assert_eq!(Facility::from_name("local7"), Some(Facility::Local(7)));
        assert_eq!(Facility::from_name("local8"), None);
        assert_eq!(Facility::from_name("local07"), None);
        assert_eq!(Facility::from_name("local"), None);
        assert_eq!(Facility::from_name("bogus"), None);
        assert_eq!(Facility::Mail.priority(6), 22);
        assert_eq!(Facility::Local(3).priority(4), 156);
        assert_eq!(Facility::default(), Facility::Mail);
    }
}
