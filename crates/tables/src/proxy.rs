//! The client side of proxymap(8): tables that another process looks up.
//!
//! `proxy:TYPE:NAME` names a table that the proxymap service opens and
//! queries on the caller's behalf, as in Postfix, so that chrooted daemons
//! reach tables they cannot open themselves and a busy smtpd does not hold
//! one database connection per process. The database types (`pgsql:`,
//! `mysql:`, `ldap:`) always go this way, named with or without `proxy:`:
//! this library links no database client, the one proxymap process holds
//! the connections (reused, and re-established after a database restart).
//!
//! The conversation runs over `private/proxymap` under the queue directory
//! (a daemon's working directory; other programs such as postmap call
//! [`set_queue_directory`] first). A command may also name the proxymap
//! program ([`set_standalone`]): when no proxymap answers on the socket
//! (the instance is not running, or the user may not reach private/), it
//! runs one of its own over a socket pair, as the invoking user, so that
//! postmap -q pgsql:... works as Postfix's does. One [`Request`] and one [`Reply`] per
//! frame in the `proto` framing. Postfix's proxymap protocol semantics:
//! open by table name (refused when an explicit `proxy:` table is not in
//! proxy_read_maps), then lookups that answer found, not found or a
//! temporary failure. A temporary failure, or proxymap not reachable, is
//! [`Error::Temporary`]: every caller defers, never "not found".

use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Error;

/// The read service (Postfix's proxymap_service_name).
pub const SERVICE: &str = "private/proxymap";

/// The table types that are always looked up through proxymap.
pub const DATABASE_TYPES: [&str; 3] = ["pgsql", "mysql", "ldap"];

/// How long a client waits for proxymap's answer (a database that does not
/// answer is proxymap's to time out first).
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(100);

static QUEUE_DIRECTORY: OnceLock<PathBuf> = OnceLock::new();

/// The proxymap program and configuration directory for [`set_standalone`].
static STANDALONE: OnceLock<(PathBuf, Option<PathBuf>)> = OnceLock::new();

/// The process's one connection to proxymap, shared by all its proxied
/// tables (as Postfix's clients share one stream), so that proxymap serves
/// one connection per client process however many tables it names.
static CONNECTION: Mutex<Option<UnixStream>> = Mutex::new(None);

/// Where `private/proxymap` is found, for a program that does not run in
/// the queue directory (postmap). Daemons need not call it: their working
/// directory is the queue directory. The first call wins.
pub fn set_queue_directory(dir: impl Into<PathBuf>) {
    let _ = QUEUE_DIRECTORY.set(dir.into());
}

/// Lets this process run `program` (proxymap, with `-S` and `-c
/// config_dir` when given) over a socket pair when no proxymap answers on
/// the socket. For commands (postmap); the first call wins.
pub fn set_standalone(program: impl Into<PathBuf>, config_dir: Option<PathBuf>) {
    let _ = STANDALONE.set((program.into(), config_dir));
}

/// A request to proxymap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Open (or check that proxymap may open) a table.
    Open {
        /// `type:name` without `proxy:`.
        table: String,
        /// Named with `proxy:` (subject to proxy_read_maps) or a database
        /// type named directly.
        explicit: bool,
        /// Lowercase keys (the caller already did; proxymap keeps it for
        /// tables it opens itself).
        fold_case: bool,
    },
    /// Look a key up in a table opened before on this connection.
    Lookup {
        /// `type:name` without `proxy:`.
        table: String,
        /// As in [`Request::Open`].
        explicit: bool,
        /// As in [`Request::Open`].
        fold_case: bool,
        /// The key.
        key: String,
    },
}

/// proxymap's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// Opened; or the value found.
    Ok(String),
    /// The key is not in the table.
    NotFound,
    /// The table cannot answer now (database down): try again later.
    Temp(String),
    /// The table is not in proxy_read_maps.
    Deny,
    /// The table cannot be opened (bad name, bad configuration file).
    Bad(String),
}

/// A table looked up through proxymap.
#[derive(Debug)]
pub(crate) struct ProxyTable {
    table: String,
    explicit: bool,
    fold_case: bool,
}

impl ProxyTable {
    /// Opens `table` (without `proxy:`) through proxymap. When proxymap
    /// cannot be reached now, the table still opens and its lookups fail
    /// temporarily until it can.
    pub(crate) fn open(table: &str, explicit: bool, fold_case: bool) -> Result<ProxyTable, Error> {
        let t = ProxyTable {
            table: table.to_string(),
            explicit,
            fold_case,
        };
        let req = Request::Open {
            table: t.table.clone(),
            explicit,
            fold_case,
        };
        match t.ask(&req) {
            Ok(Reply::Deny) => Err(t.denied()),
            Ok(Reply::Bad(reason)) => Err(Error::Proxy {
                table: t.spec(),
                reason,
            }),
            // Not reachable now, or a database that is down: lookups tell.
            Ok(_) | Err(_) => Ok(t),
        }
    }

    /// True when the table behind is a pattern table (regexp:, pcre:, cidr:).
    pub(crate) fn is_pattern(&self) -> bool {
        matches!(
            self.table.split_once(':').map(|(t, _)| t),
            Some("regexp" | "pcre" | "cidr")
        )
    }

    fn spec(&self) -> String {
        if self.explicit {
            format!("proxy:{}", self.table)
        } else {
            self.table.clone()
        }
    }

    fn denied(&self) -> Error {
        Error::Proxy {
            table: self.spec(),
            reason: format!(
                "proxymap service is not configured for table \"{}\"",
                self.table
            ),
        }
    }

    /// Looks `key` up: `Ok(None)` only when proxymap said not found.
    pub(crate) fn lookup(&self, key: &str) -> Result<Option<String>, Error> {
        let req = Request::Lookup {
            table: self.table.clone(),
            explicit: self.explicit,
            fold_case: self.fold_case,
            key: key.to_string(),
        };
        let temp = |reason: String| Error::Temporary {
            table: self.spec(),
            reason,
        };
        match self.ask(&req).map_err(temp)? {
            Reply::Ok(v) => Ok(Some(v)),
            Reply::NotFound => Ok(None),
            Reply::Temp(reason) => Err(temp(reason)),
            Reply::Deny => Err(self.denied()),
            Reply::Bad(reason) => Err(temp(reason)),
        }
    }

    /// Sends one request and reads the reply, on the kept connection or a
    /// new one; a kept connection that fails (proxymap exited after
    /// max_idle or max_use) is replaced once.
    fn ask(&self, req: &Request) -> Result<Reply, String> {
        let mut guard = CONNECTION.lock().unwrap_or_else(|e| e.into_inner());
        for attempt in 0..2 {
            let reused = guard.is_some();
            let mut s = match guard.take() {
                Some(s) => s,
                None => connect()?,
            };
            let answer = proto::send(&mut s, req).and_then(|()| proto::recv::<_, Reply>(&mut s));
            match answer {
                Ok(reply) => {
                    *guard = Some(s);
                    return Ok(reply);
                }
                Err(e) if !reused || attempt == 1 => {
                    return Err(format!("{SERVICE}: {e}"));
                }
                Err(_) => {}
            }
        }
        Err(format!("{SERVICE}: no answer"))
    }
}

fn connect() -> Result<UnixStream, String> {
    let dir = QUEUE_DIRECTORY
        .get()
        .cloned()
        .unwrap_or_else(|| PathBuf::from("."));
    let s = match proto::connect(&dir, SERVICE) {
        Ok(s) => s,
        Err(e) => match STANDALONE.get() {
            Some((program, config_dir)) => spawn(program, config_dir.as_deref())
                .map_err(|se| format!("{e}; {}: {se}", program.display()))?,
            None => return Err(e.to_string()),
        },
    };
    let _ = s.set_read_timeout(Some(CLIENT_TIMEOUT));
    let _ = s.set_write_timeout(Some(CLIENT_TIMEOUT));
    Ok(s)
}

/// Runs `program -S [-c config_dir]` with one end of a socket pair as its
/// standard input; returns the other end. The program serves that one
/// client and exits when it hangs up.
fn spawn(
    program: &std::path::Path,
    config_dir: Option<&std::path::Path>,
) -> std::io::Result<UnixStream> {
    let (ours, theirs) = UnixStream::pair()?;
    let mut cmd = std::process::Command::new(program);
    cmd.arg("-S");
    if let Some(d) = config_dir {
        cmd.arg("-c").arg(d);
    }
    cmd.stdin(std::process::Stdio::from(std::os::fd::OwnedFd::from(
        theirs,
    )))
    .stdout(std::process::Stdio::null())
    .spawn()?;
    Ok(ours)
}

/// Strips every leading `proxy:` (Postfix accepts `proxy:proxy:x:y`).
pub fn strip_proxy(spec: &str) -> &str {
    let mut s = spec;
    while let Some(rest) = s.strip_prefix("proxy:") {
        s = rest;
    }
    s
}

/// The tables that proxy_read_maps (or proxy_write_maps) approves: the
/// words that start with `proxy:`, without it.
pub fn approved(list: &str) -> Vec<String> {
    crate::split_list(list)
        .into_iter()
        .filter(|w| w.starts_with("proxy:"))
        .map(|w| strip_proxy(w).to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_prefixes_and_approval() {
        assert_eq!(strip_proxy("proxy:proxy:pgsql:/x.cf"), "pgsql:/x.cf");
        assert_eq!(
            approved("hash:/a, proxy:pgsql:/b.cf $x proxy:hash:/c"),
            ["pgsql:/b.cf", "hash:/c"]
        );
    }

    /// A scripted proxymap on DIR/private/proxymap answering one
    /// connection: Deny for tables named `denied`, Temp for key `down`,
    /// a value for key `k`, NotFound otherwise.
    fn fake_proxymap(dir: &std::path::Path) -> std::thread::JoinHandle<()> {
        let listener =
            std::os::unix::net::UnixListener::bind(dir.join("private/proxymap")).unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            while let Ok(req) = proto::recv::<_, Request>(&mut s) {
                let reply = match req {
                    Request::Open { table, .. } | Request::Lookup { table, .. }
                        if table.contains("denied") =>
                    {
                        Reply::Deny
                    }
                    Request::Open { .. } => Reply::Ok(String::new()),
                    Request::Lookup { key, .. } if key == "down" => {
                        Reply::Temp("server gone".into())
                    }
                    Request::Lookup { key, .. } if key == "k" => Reply::Ok("v".into()),
                    Request::Lookup { .. } => Reply::NotFound,
                };
                proto::send(&mut s, &reply).unwrap();
            }
        })
    }

    // One test: the queue directory is process-wide.
    #[test]
    fn answers_denials_and_temporary_failures() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("private")).unwrap();
        set_queue_directory(dir.path());
        // No proxymap: the table opens, its lookups fail for now.
        let t = crate::open("proxy:pgsql:/x.cf", crate::Flags::default()).unwrap();
        let e = t.lookup("a@example.test").unwrap_err();
        assert!(e.is_temporary(), "{e}");
        assert!(
            e.to_string()
                .starts_with("proxy:pgsql:/x.cf: table lookup failed: "),
            "{e}"
        );

        let server = fake_proxymap(dir.path());
        let m = crate::open("mysql:/y.cf", crate::Flags::default()).unwrap();
        assert!(!m.is_pattern());
        assert_eq!(m.lookup("K").unwrap().as_deref(), Some("v"), "key folded");
        assert_eq!(m.lookup("other").unwrap(), None);
        let e = m.lookup("down").unwrap_err();
        assert!(matches!(e, crate::Error::Temporary { .. }), "{e}");
        assert_eq!(
            e.to_string(),
            "mysql:/y.cf: table lookup failed: server gone"
        );
        let e = crate::open("proxy:hash:/denied", crate::Flags::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "proxy:hash:/denied: proxymap service is not configured for table \"hash:/denied\""
        );
        assert!(
            crate::open("proxy:regexp:/r", crate::Flags::default())
                .unwrap()
                .is_pattern()
        );
        drop(server);
    }
}
