//! Address rewriting in Postfix's order: trivial-rewrite (standard form,
//! `@myorigin`), sender/recipient canonical maps, canonical maps,
//! masquerading, and for envelope recipients virtual alias expansion with
//! its nesting and size limits.

use std::fmt;
use std::os::unix::net::UnixStream;
use std::path::Path;

use proto::rewrite::{Context, Reply, Request};
use tables::{AddressSearch, Maps};

use crate::masquerade::masquerade;
use crate::settings::{CANONICAL_NESTING, Settings};

/// Why an address could not be rewritten: every case is temporary (the
/// client tries again later), as in Postfix.
#[derive(Debug)]
#[non_exhaustive]
pub(crate) enum Error {
    /// trivial-rewrite did not answer.
    Rewrite(proto::Error),
    /// trivial-rewrite answered something else.
    Protocol,
    /// A table lookup failed.
    Lookup {
        /// The parameter naming the tables.
        maps: &'static str,
        /// The cause.
        source: tables::Error,
    },
    /// A map nests deeper than its limit (a loop).
    Nesting {
        /// The parameter naming the tables.
        maps: &'static str,
        /// The address.
        address: String,
    },
    /// virtual_alias_maps expands to more than virtual_alias_expansion_limit.
    Expansion {
        /// The address.
        address: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Rewrite(e) => write!(f, "address rewriting service: {e}"),
            Error::Protocol => write!(f, "address rewriting service: unexpected reply"),
            Error::Lookup { maps, source } => write!(f, "{maps} map lookup problem: {source}"),
            Error::Nesting { maps, address } => {
                write!(f, "unreasonable {maps} map nesting for {address}")
            }
            Error::Expansion { address } => {
                write!(
                    f,
                    "unreasonable virtual_alias_maps map expansion size for {address}"
                )
            }
        }
    }
}

/// Asks trivial-rewrite to put an address in standard form.
pub(crate) trait Rewriter {
    /// The rewritten address.
    ///
    /// # Errors
    /// The service cannot be reached or answered nonsense.
    fn rewrite(&mut self, context: Context, address: &str) -> Result<String, Error>;
}

/// The trivial-rewrite client (answers kept for a while in [`RECENT`]): one connection per message (trivial-rewrite
/// is a multi-server that keeps its clients' connections), opened on first
/// use and opened again once if the service closed it.
/// Connections to trivial-rewrite that finished sessions left open, for the
/// next session: trivial-rewrite counts connections against max_use, so a
/// connection per message would make it restart every hundred messages.
static IDLE: std::sync::Mutex<Vec<UnixStream>> = std::sync::Mutex::new(Vec::new());

/// At most this many idle connections are kept.
const IDLE_LIMIT: usize = 64;

impl Drop for RewriteClient {
    fn drop(&mut self) {
        if let (Some(c), Ok(mut idle)) = (self.conn.take(), IDLE.lock())
            && idle.len() < IDLE_LIMIT
        {
            idle.push(c);
        }
    }
}

/// Retries of a failed trivial-rewrite call on a fresh connection.
const REWRITE_ATTEMPTS: u32 = 4;

#[derive(Debug)]
pub(crate) struct RewriteClient {
    queue_dir: &'static Path,
    conn: Option<UnixStream>,
}

impl RewriteClient {
    /// A client for `queue_dir/private/rewrite` (`.` inside the daemon).
    pub(crate) fn new(queue_dir: &'static Path) -> RewriteClient {
        RewriteClient {
            queue_dir,
            conn: None,
        }
    }

    fn call(&mut self, req: &Request) -> Result<Reply, proto::Error> {
        let pooled = || IDLE.lock().ok().and_then(|mut p| p.pop());
        let mut conn = match self.conn.take().or_else(pooled) {
            Some(c) => c,
            None => proto::connect(self.queue_dir, proto::rewrite::SERVICE)?,
        };
        proto::send(&mut conn, req)?;
        let reply = proto::recv(&mut conn)?;
        self.conn = Some(conn);
        Ok(reply)
    }
}

/// trivial-rewrite's recent answers, shared by the client threads
/// (Postfix's rewrite_clnt keeps the last one): a run of messages from
/// one sender to one recipient asks once, not for every message.
static RECENT: std::sync::LazyLock<proto::recent::Recent<(Context, String), String>> =
    std::sync::LazyLock::new(proto::recent::Recent::new);

impl Rewriter for RewriteClient {
    fn rewrite(&mut self, context: Context, address: &str) -> Result<String, Error> {
        let key = (context, address.to_string());
        if let Some(known) = RECENT.get(&key) {
            return Ok(known);
        }
        let rewritten = self.ask(context, address)?;
        RECENT.put(key, rewritten.clone());
        Ok(rewritten)
    }
}

impl RewriteClient {
    /// Asks trivial-rewrite itself.
    fn ask(&mut self, context: Context, address: &str) -> Result<String, Error> {
        let req = Request::Rewrite {
            context,
            address: address.to_string(),
        };
        // A kept connection may have been closed by a trivial-rewrite that
        // retired (max_use, changed tables), and a fresh one may reach that
        // process just before it exits: try again on new connections, with
        // a short pause, before calling it a temporary failure.
        let mut attempt = 0;
        let reply = loop {
            match self.call(&req) {
                Ok(r) => break r,
                Err(_) if attempt < REWRITE_ATTEMPTS => {
                    // The pooled connections most likely went to the same
                    // retired process: retry on a fresh one.
                    if let Ok(mut idle) = IDLE.lock() {
                        idle.clear();
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20 << attempt));
                    attempt += 1;
                }
                Err(e) => return Err(Error::Rewrite(e)),
            }
        };
        match reply {
            Reply::Rewritten { address } => Ok(address),
            Reply::Resolved { .. } => Err(Error::Protocol),
        }
    }
}

/// Envelope or header, sender or recipient: which rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The envelope sender.
    EnvelopeSender,
    /// An envelope recipient.
    EnvelopeRecipient,
    /// An address in a sender header.
    HeaderSender,
    /// An address in a recipient header.
    HeaderRecipient,
}

/// Rewrites addresses for one message.
pub(crate) struct Mapper<'a> {
    settings: &'a Settings,
    rewriter: &'a mut dyn Rewriter,
    maps: bool,
}

impl<'a> Mapper<'a> {
    /// A mapper over the settings' tables and a trivial-rewrite client.
    pub(crate) fn new(settings: &'a Settings, rewriter: &'a mut dyn Rewriter) -> Mapper<'a> {
        Mapper {
            settings,
            rewriter,
            maps: true,
        }
    }

    /// Skips canonical and virtual alias maps (the client's
    /// NO_ADDRESS_MAPS flag); trivial-rewrite and masquerading still apply.
    pub(crate) fn without_maps(mut self) -> Mapper<'a> {
        self.maps = false;
        self
    }

    /// trivial-rewrite, canonical maps and masquerading for one address
    /// in `role` (Postfix's cleanup_addr_sender / cleanup_rewrite_tree +
    /// cleanup_map11 + cleanup_masquerade). The null address is kept.
    ///
    /// # Errors
    /// See [`Error`]; all temporary.
    pub(crate) fn rewrite(
        &mut self,
        role: Role,
        context: Context,
        addr: &str,
    ) -> Result<String, Error> {
        if addr.is_empty() {
            return Ok(String::new());
        }
        let s = self.settings;
        let mut a = self.rewriter.rewrite(context, addr)?;
        // Headers from remote clients: incomplete addresses get
        // remote_header_rewrite_domain (trivial-rewrite's remote context
        // appends nothing itself).
        if matches!(role, Role::HeaderSender | Role::HeaderRecipient)
            && context == Context::Remote
            && !a.contains('@')
            && !s.remote_header_rewrite_domain.is_empty()
        {
            a = format!("{a}@{}", s.remote_header_rewrite_domain);
        }
        let (specific, specific_classes, specific_name) = match role {
            Role::EnvelopeSender | Role::HeaderSender => (
                &s.sender_canonical,
                s.sender_canonical_classes,
                "sender_canonical_maps",
            ),
            Role::EnvelopeRecipient | Role::HeaderRecipient => (
                &s.recipient_canonical,
                s.recipient_canonical_classes,
                "recipient_canonical_maps",
            ),
        };
        let applies = |c: crate::settings::Classes| match role {
            Role::EnvelopeSender => c.env_sender,
            Role::EnvelopeRecipient => c.env_recipient,
            Role::HeaderSender => c.hdr_sender,
            Role::HeaderRecipient => c.hdr_recipient,
        };
        if self.maps && applies(specific_classes) {
            a = self.map11(specific, specific_name, a)?;
        }
        if self.maps && applies(s.canonical_classes) {
            a = self.map11(&s.canonical, "canonical_maps", a)?;
        }
        if applies(s.masquerade_classes)
            && let Some(m) = masquerade(&a, &s.masquerade_domains, &s.masquerade_exceptions)
        {
            a = m;
        }
        Ok(a)
    }

    fn search(&self, addr: &str, propagate: bool) -> AddressSearch<'a> {
        AddressSearch {
            delimiters: &self.settings.delimiters,
            local_domain: self.settings.is_local(addr),
            propagate_extension: propagate,
        }
    }

    /// One-to-one mapping through `maps`, repeated until the address maps
    /// to itself or does not map (at most [`CANONICAL_NESTING`] times).
    fn map11(&self, maps: &Maps, name: &'static str, mut addr: String) -> Result<String, Error> {
        if maps.is_empty() {
            return Ok(addr);
        }
        for _ in 0..CANONICAL_NESTING {
            let search = self.search(&addr, self.settings.propagate_canonical);
            let found = tables::map_address(maps, &addr, &search)
                .map_err(|source| Error::Lookup { maps: name, source })?;
            let Some(list) = found else {
                return Ok(addr);
            };
            let Some(first) = list.into_iter().next() else {
                return Ok(addr);
            };
            let to_self = first.eq_ignore_ascii_case(&addr);
            addr = first;
            if to_self {
                return Ok(addr);
            }
        }
        Err(Error::Nesting {
            maps: name,
            address: addr,
        })
    }

    /// The automatic BCC address for `addr` in sender_bcc_maps or
    /// recipient_bcc_maps (Postfix's mail_addr_find without extension
    /// propagation; only the first address of a result counts, as Postfix
    /// supports no more).
    ///
    /// # Errors
    /// A lookup failed (temporary).
    pub(crate) fn bcc_for(
        &self,
        maps: &Maps,
        name: &'static str,
        addr: &str,
    ) -> Result<Option<String>, Error> {
        if maps.is_empty() || addr.is_empty() {
            return Ok(None);
        }
        let search = self.search(addr, false);
        let found = tables::map_address(maps, addr, &search)
            .map_err(|source| Error::Lookup { maps: name, source })?;
        Ok(found.and_then(|list| list.into_iter().find(|a| !a.is_empty())))
    }

    /// Expands an envelope recipient through virtual_alias_maps
    /// (Postfix's cleanup_map1n_internal): each result is looked up again,
    /// an address that expands to itself is kept, and both the nesting
    /// depth and the size of the result are limited.
    ///
    /// # Errors
    /// A lookup failed or a limit was crossed (temporary).
    pub(crate) fn expand_virtual(&self, addr: &str) -> Result<Vec<String>, Error> {
        let s = self.settings;
        let mut list = vec![addr.to_string()];
        if !self.maps || s.virtual_alias.is_empty() || addr.is_empty() {
            return Ok(list);
        }
        let mut to_self: Vec<String> = Vec::new();
        let mut i = 0usize;
        while i < list.len() {
            if list.len() > s.virtual_expansion_limit {
                return Err(Error::Expansion {
                    address: addr.to_string(),
                });
            }
            let mut count = 0usize;
            while let Some(current) = list.get(i).cloned() {
                if to_self.iter().any(|t| t.eq_ignore_ascii_case(&current)) {
                    break;
                }
                if count >= s.virtual_recursion_limit {
                    return Err(Error::Nesting {
                        maps: "virtual_alias_maps",
                        address: addr.to_string(),
                    });
                }
                count += 1;
                let search = self.search(&current, s.propagate_virtual);
                let found =
                    tables::map_address(&s.virtual_alias, &current, &search).map_err(|source| {
                        Error::Lookup {
                            maps: "virtual_alias_maps",
                            source,
                        }
                    })?;
                let Some(results) = found else {
                    break;
                };
                if results.is_empty() {
                    break;
                }
                for (n, r) in results.into_iter().enumerate() {
                    if r.eq_ignore_ascii_case(&current) {
                        to_self.push(current.clone());
                    }
                    if n == 0 {
                        if let Some(slot) = list.get_mut(i) {
                            *slot = r;
                        }
                    } else {
                        list.push(r);
                    }
                }
            }
            i += 1;
        }
        Ok(list)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::settings::tests::settings;

    /// Appends `@origin.example` to bare users, like trivial-rewrite's
    /// local context with myorigin = origin.example.
    pub(crate) struct AppendOrigin;

    impl Rewriter for AppendOrigin {
        fn rewrite(&mut self, _c: Context, a: &str) -> Result<String, Error> {
            Ok(if a.contains('@') {
                a.to_string()
            } else {
                format!("{a}@origin.example")
            })
        }
    }

    #[test]
    fn a_recent_rewrite_is_not_asked_again() {
        use std::os::unix::net::UnixListener;
        use std::sync::atomic::{AtomicUsize, Ordering};
        static ASKED: AtomicUsize = AtomicUsize::new(0);
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("private")).unwrap();
        let listener = UnixListener::bind(dir.path().join(proto::rewrite::SERVICE)).unwrap();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                while let Ok(Request::Rewrite { address, .. }) = proto::recv(&mut conn) {
                    ASKED.fetch_add(1, Ordering::SeqCst);
                    let reply = Reply::Rewritten {
                        address: format!("{address}@cache.example"),
                    };
                    if proto::send(&mut conn, &reply).is_err() {
                        break;
                    }
                }
            }
        });
        let queue_dir: &'static Path = Box::leak(dir.path().to_path_buf().into_boxed_path());
        for _ in 0..3 {
            let mut c = RewriteClient::new(queue_dir);
            let a = c.rewrite(Context::Local, "cached-user-8412").unwrap();
            assert_eq!(a, "cached-user-8412@cache.example");
        }
        assert_eq!(
            ASKED.load(Ordering::SeqCst),
            1,
            "asked once, then answered from RECENT"
        );
        let mut c = RewriteClient::new(queue_dir);
        c.rewrite(Context::Remote, "cached-user-8412").unwrap();
        assert_eq!(
            ASKED.load(Ordering::SeqCst),
            2,
            "another context is another question"
        );
        drop(c);
        std::mem::forget(dir);
    }

    fn inline(entries: &str) -> String {
        format!("inline:{{ {entries} }}")
    }

    #[test]
    fn canonical_then_masquerade() {
        let s = settings(&format!(
            "sender_canonical_maps = {}\ncanonical_maps = {}\nmasquerade_domains = example.com\n",
            inline("alice@origin.example=alice@host.example.com"),
            inline(
                "bob@origin.example=robert@x.org, { loop1@origin.example = loop2@origin.example }, { loop2@origin.example = loop1@origin.example }"
            ),
        ));
        let mut rw = AppendOrigin;
        let mut m = Mapper::new(&s, &mut rw);
        assert_eq!(
            m.rewrite(Role::EnvelopeSender, Context::Local, "alice")
                .unwrap(),
            "alice@example.com"
        );
        assert_eq!(
            m.rewrite(Role::EnvelopeRecipient, Context::Local, "bob")
                .unwrap(),
            "robert@x.org"
        );
        // Not masqueraded: envelope_recipient is not in masquerade_classes.
        assert_eq!(
            m.rewrite(
                Role::EnvelopeRecipient,
                Context::Local,
                "c@host.example.com"
            )
            .unwrap(),
            "c@host.example.com"
        );
        assert_eq!(
            m.rewrite(Role::EnvelopeSender, Context::Local, "").unwrap(),
            ""
        );
        assert!(matches!(
            m.rewrite(Role::EnvelopeRecipient, Context::Local, "loop1"),
            Err(Error::Nesting { .. })
        ));
    }

    #[test]
    fn remote_headers_get_remote_header_rewrite_domain() {
        struct Keep;
        impl Rewriter for Keep {
            fn rewrite(&mut self, _c: Context, a: &str) -> Result<String, Error> {
                Ok(a.to_string())
            }
        }
        let s = settings("remote_header_rewrite_domain = domain.invalid\n");
        let mut rw = Keep;
        let mut m = Mapper::new(&s, &mut rw);
        assert_eq!(
            m.rewrite(Role::HeaderRecipient, Context::Remote, "joe")
                .unwrap(),
            "joe@domain.invalid"
        );
        assert_eq!(
            m.rewrite(Role::EnvelopeRecipient, Context::Remote, "joe")
                .unwrap(),
            "joe"
        );
    }

    #[test]
    fn virtual_expansion() {
        let s = settings(&format!(
            "virtual_alias_maps = {}\nvirtual_alias_recursion_limit = 5\nvirtual_alias_expansion_limit = 4\n",
            inline(
                "{ list@x = a@x, b@x, list@x }, { a@x = a2@x }, { self@x = self@x }, \
                 { l1@x = l2@x }, { l2@x = l1@x }, { big@x = 1@x, 2@x, 3@x, 4@x, 5@x }"
            ),
        ));
        let mut rw = AppendOrigin;
        let m = Mapper::new(&s, &mut rw);
        assert_eq!(
            m.expand_virtual("list@x").unwrap(),
            ["a2@x", "b@x", "list@x"]
        );
        assert_eq!(m.expand_virtual("self@x").unwrap(), ["self@x"]);
        assert_eq!(m.expand_virtual("none@x").unwrap(), ["none@x"]);
        assert!(matches!(
            m.expand_virtual("l1@x"),
            Err(Error::Nesting { .. })
        ));
        assert!(matches!(
            m.expand_virtual("big@x"),
            Err(Error::Expansion { .. })
        ));
    }
}
