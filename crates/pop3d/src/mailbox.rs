//! A user's mailbox as POP3 reads it (where it is: login::location, the
//! rules local and virtual deliver by, shared with imapd): a session lock
//! ([IN-USE]), the message list with RFC 1939 sizes and
//! UIDLs, streaming, and removing the deleted messages at QUIT.
//!
//! UIDLs: for a Maildir, Dovecot's `%08Xu%08Xv` from the dovecot-uidlist
//! that mailstore keeps (a Dovecot-written one is kept). For an mbox, a
//! hash of the From_ line and the header: the mbox is never rewritten to
//! add X-UID headers (which would race other mbox users and change the
//! bytes users download) and no sidecar file is needed where users often
//! cannot create files (the spool directory); the value stays the same
//! across sessions and restarts as long as the message is not changed.
//! Identical messages get `-2`, `-3`... appended in file order.
//!
//! Sizes: a Maildir file name's `,W=` gives the RFC 1939 size; for a name
//! without it the size is read once and kept in the dovecot-uidlist's `W`
//! field (Dovecot's place for it), so a later LIST or STAT of 10,000
//! messages does not read every file again.
//!
//! The session lock is flock() on the maildir directory or the mbox file:
//! it excludes a second POP3 session but not deliveries, which use the
//! dotlock and fcntl locks; those are taken only to list an mbox and to
//! remove messages from it.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

pub use login::location::{LocationSettings, Target};
use mailstore::mbox::{self, MboxMessage};
use mailstore::uidlist::{Item, Listing};
use mailstore::{Maildir, pop3};

/// One message as POP3 shows it.
#[derive(Debug, Clone)]
pub struct Message {
    /// The RFC 1939 size (CRLF line ends).
    pub size: u64,
    uidl: Uidl,
    source: Source,
}

/// A UIDL, made when asked for (a Maildir's from its UID).
#[derive(Debug, Clone)]
enum Uidl {
    /// Dovecot's `%08Xu%08Xv`: the UID and the UIDVALIDITY.
    Dovecot(u32, u32),
    /// As it is (mbox).
    Text(String),
}

impl Message {
    /// The UIDL.
    pub fn uidl(&self) -> String {
        match &self.uidl {
            Uidl::Dovecot(uid, validity) => pop3::dovecot_uidl(*uid, *validity),
            Uidl::Text(t) => t.clone(),
        }
    }
}

#[derive(Debug, Clone)]
enum Source {
    /// A Maildir message: its item in the mailbox's listing.
    Maildir(Item),
    Mbox(MboxMessage),
}

/// Why a mailbox did not open.
#[derive(Debug)]
pub enum OpenError {
    /// Another session has it.
    InUse,
    /// Anything else (logged; the client gets a temporary error).
    Other(String),
}

/// An open mailbox for one session.
#[derive(Debug)]
pub struct Mailbox {
    /// The messages, numbered from 1 in POP3.
    pub messages: Vec<Message>,
    path: PathBuf,
    maildir: bool,
    /// A Maildir's file names (the messages refer into it).
    listing: Listing,
    mbox_file: Option<File>,
    mbox_options: mbox::Options,
    _session_lock: Option<File>,
}

fn session_lock(path: &Path) -> Result<Option<File>, OpenError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(OpenError::Other(format!("open {}: {e}", path.display()))),
    };
    // SAFETY-free: flock through libc via nix's raw call.
    let rc = unsafe_free_flock(&file);
    match rc {
        Ok(()) => Ok(Some(file)),
        Err(nix::errno::Errno::EWOULDBLOCK) => Err(OpenError::InUse),
        Err(e) => Err(OpenError::Other(format!("flock {}: {e}", path.display()))),
    }
}

/// Opens a message file, not following a symlink (as mailstore's Entry::open).
fn open_nofollow(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NOCTTY)
        .open(path)
}

fn unsafe_free_flock(file: &File) -> nix::Result<()> {
    #[allow(deprecated)]
    nix::fcntl::flock(
        file.as_raw_fd(),
        nix::fcntl::FlockArg::LockExclusiveNonblock,
    )
}

impl Mailbox {
    /// Opens the mailbox, takes the session lock and lists the messages.
    ///
    /// # Errors
    /// [`OpenError::InUse`] when another session holds it.
    pub fn open(target: &Target, settings: &LocationSettings) -> Result<Mailbox, OpenError> {
        let lock = session_lock(&target.path)?;
        let other = |e: mailstore::Error| OpenError::Other(e.to_string());
        let mut mb = Mailbox {
            messages: Vec::new(),
            path: target.path.clone(),
            maildir: target.maildir,
            listing: Listing::default(),
            mbox_file: None,
            mbox_options: settings.mbox_options(),
            _session_lock: lock,
        };
        if target.maildir {
            let md = Maildir::open(&target.path);
            if !target.path.join("cur").is_dir() && !target.path.join("new").is_dir() {
                return Ok(mb);
            }
            let listing = md.listing(&settings.lock_options()).map_err(other)?;
            // Sizes from the name (,W=) or the list's W field, else read
            // once and remembered there (as Dovecot does).
            let mut learned = HashMap::new();
            mb.messages.reserve_exact(listing.items.len());
            for item in &listing.items {
                let size = match item.crlf_size {
                    Some(s) => s,
                    None => match open_nofollow(&listing.path(&target.path, item)) {
                        Ok(f) => {
                            let s =
                                pop3::crlf_size(f).map_err(|e| OpenError::Other(e.to_string()))?;
                            learned.insert(listing.unique(item).to_string(), s);
                            s
                        }
                        Err(_) => continue,
                    },
                };
                mb.messages.push(Message {
                    size,
                    uidl: Uidl::Dovecot(item.uid, listing.uid_validity),
                    source: Source::Maildir(*item),
                });
            }
            mb.listing = listing;
            if !learned.is_empty()
                && let Err(e) = md.remember_sizes(&settings.lock_options(), &learned)
            {
                maillog::warning!(
                    "{}: cannot remember message sizes: {e}",
                    target.path.display()
                );
            }
            return Ok(mb);
        }
        let locked = match mbox::lock(&target.path, &mb.mbox_options) {
            Ok(l) => l,
            Err(mailstore::Error::NotFound { .. }) => return Ok(mb),
            Err(e) => return Err(other(e)),
        };
        let msgs = locked.messages().map_err(other)?;
        let mut seen: HashMap<String, u32> = HashMap::new();
        for m in msgs {
            let mut body = locked.open_message(&m).map_err(other)?;
            let size = pop3::crlf_size(&mut body).map_err(|e| OpenError::Other(e.to_string()))?;
            let header = pop3::read_header(locked.open_message(&m).map_err(other)?, 64 * 1024)
                .map_err(|e| OpenError::Other(e.to_string()))?;
            let mut uidl = pop3::content_uidl(&m.from_line, &header);
            let n = seen.entry(uidl.clone()).or_insert(0);
            *n += 1;
            if *n > 1 {
                uidl = format!("{uidl}-{n}");
            }
            mb.messages.push(Message {
                size,
                uidl: Uidl::Text(uidl),
                source: Source::Mbox(m),
            });
        }
        drop(locked);
        mb.mbox_file = Some(mbox::open_for_reading(&target.path).map_err(other)?);
        Ok(mb)
    }

    /// Sends message `i` (0-based) as a multi-line answer body; `top`
    /// limits the body lines (TOP).
    ///
    /// # Errors
    /// The message went away, or I/O errors.
    pub fn send<W: Write>(&self, i: usize, out: &mut W, top: Option<u64>) -> io::Result<()> {
        let msg = self.messages.get(i).ok_or(io::ErrorKind::NotFound)?;
        match &msg.source {
            Source::Maildir(item) => {
                let f = File::open(self.listing.path(&self.path, item))?;
                pop3::send_message(f, out, top)
            }
            Source::Mbox(m) => {
                let file = self.mbox_file.as_ref().ok_or(io::ErrorKind::NotFound)?;
                let reader = mbox::open_message(file, m, self.mbox_options.quoting)?;
                pop3::send_message(reader, out, top)
            }
        }
    }

    /// Removes the messages (0-based) at QUIT.
    ///
    /// # Errors
    /// What could not be removed.
    pub fn remove(&mut self, deleted: &[usize]) -> Result<(), String> {
        if deleted.is_empty() {
            return Ok(());
        }
        if self.maildir {
            let mut failed = Vec::new();
            for &i in deleted {
                if let Some(Message {
                    source: Source::Maildir(item),
                    ..
                }) = self.messages.get(i)
                {
                    let p = self.listing.path(&self.path, item);
                    if let Err(e) = std::fs::remove_file(&p)
                        && e.kind() != io::ErrorKind::NotFound
                    {
                        failed.push(format!("{}: {e}", p.display()));
                    }
                }
            }
            return if failed.is_empty() {
                Ok(())
            } else {
                Err(failed.join("; "))
            };
        }
        let offsets: Vec<u64> = deleted
            .iter()
            .filter_map(|&i| match self.messages.get(i).map(|m| &m.source) {
                Some(Source::Mbox(m)) => Some(m.from_offset),
                _ => None,
            })
            .collect();
        let mut locked = mbox::lock(&self.path, &self.mbox_options).map_err(|e| e.to_string())?;
        locked.remove_messages(&offsets).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(text: &str) -> (tempfile::TempDir, LocationSettings) {
        let dir = tempfile::tempdir().unwrap();
        let map = dir.path().join("vmailbox");
        std::fs::write(
            &map,
            "alice@virt.test alice/\ncarol@virt.test carol\nbad@virt.test ../x/\n",
        )
        .unwrap();
        let text = format!(
            "virtual_mailbox_base = /srv/vmail\nvirtual_mailbox_maps = texthash:{}\n\
             virtual_uid_maps = static:5000\nvirtual_gid_maps = static:5001\n\
             mail_spool_directory = /var/mail\n{text}",
            map.display()
        );
        let config = config::Config::from_text(dir.path(), &text).unwrap();
        (dir, LocationSettings::load(&config, true))
    }

    #[test]
    fn mailboxes_are_where_local_and_virtual_deliver() {
        let (_d, s) = settings("");
        let root = nix::unistd::geteuid().is_root();
        let me = (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        );
        let alice = s.locate("alice@virt.test").unwrap().unwrap();
        assert_eq!(alice.path, Path::new("/srv/vmail/alice"));
        assert!(alice.maildir);
        assert_eq!((alice.uid, alice.gid), if root { (5000, 5001) } else { me });
        let carol = s.locate("carol@virt.test").unwrap().unwrap();
        assert_eq!(carol.path, Path::new("/srv/vmail/carol"));
        assert!(!carol.maildir);
        assert!(
            s.locate("bad@virt.test").is_err(),
            "a path leaving the base"
        );
        assert_eq!(s.locate("nobody@virt.test").unwrap(), None);
        assert_eq!(s.locate("no-such-account-here").unwrap(), None);
        // A system account: mail_spool_directory/user, or home_mailbox.
        let user = nix::unistd::User::from_uid(nix::unistd::geteuid())
            .unwrap()
            .unwrap();
        let spool = s.locate(&user.name).unwrap().unwrap();
        assert_eq!(spool.path, Path::new("/var/mail").join(&user.name));
        assert!(!spool.maildir);
        let (_d, s) = settings("home_mailbox = Maildir/");
        let home = s.locate(&user.name).unwrap().unwrap();
        assert_eq!(home.path, user.dir.join("Maildir/"));
        assert!(home.maildir);
        assert_eq!((home.uid, home.gid), (user.uid.as_raw(), user.gid.as_raw()));
    }

    /// A Maildir file without ,W= in its name is read for its size once:
    /// the size goes into the dovecot-uidlist's W field and the next
    /// session takes it from there (a file grown behind our back shows
    /// the remembered size, which proves it was not read again).
    #[test]
    fn sizes_without_w_are_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let md = dir.path().join("Maildir");
        for d in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(md.join(d)).unwrap();
        }
        let file = md.join("cur/1700000000.M1P1.host:2,");
        std::fs::write(&file, "Subject: x\n\nline\n").unwrap();
        std::fs::write(md.join("cur/1700000001.M2P1.host,S=3,W=5:2,"), "a\nb").unwrap();
        let (_d, s) = settings("");
        let target = Target {
            path: md.clone(),
            maildir: true,
            uid: 0,
            gid: 0,
        };
        let sizes = |mb: &Mailbox| mb.messages.iter().map(|m| m.size).collect::<Vec<_>>();
        let mb = Mailbox::open(&target, &s).unwrap();
        assert_eq!(sizes(&mb), [20, 5]);
        drop(mb);
        let list = std::fs::read_to_string(md.join("dovecot-uidlist")).unwrap();
        assert!(list.contains("1 W20 :1700000000.M1P1.host\n"), "{list}");
        assert!(list.contains("2 :1700000001.M2P1.host,S=3,W=5\n"), "{list}");
        std::fs::write(&file, "Subject: x\n\nline\nmore\n").unwrap();
        let mb = Mailbox::open(&target, &s).unwrap();
        assert_eq!(sizes(&mb), [20, 5], "remembered, not read again");
    }

    /// Once the Maildir has settled, sessions take the listing from the
    /// stamped dovecot-uidlist (not rewritten again): the sizes (from
    /// `,W=` and from the list's W field) and UIDLs stay exact.
    #[test]
    fn a_settled_maildir_lists_the_same_sizes_and_uidls() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let md = dir.path().join("Maildir");
        for d in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(md.join(d)).unwrap();
        }
        std::fs::write(
            md.join("cur/1700000000.M1P1.host:2,S"),
            "Subject: x\n\nline\n",
        )
        .unwrap();
        std::fs::write(md.join("cur/1700000001.M2P1.host,S=3,W=5:2,"), "a\nb").unwrap();
        std::fs::write(md.join("new/1700000002.M3P1.host"), "new\n").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2200));
        let (_d, s) = settings("");
        let target = Target {
            path: md.clone(),
            maildir: true,
            uid: 0,
            gid: 0,
        };
        let seen = |mb: &Mailbox| {
            mb.messages
                .iter()
                .map(|m| (m.size, m.uidl()))
                .collect::<Vec<_>>()
        };
        let first = seen(&Mailbox::open(&target, &s).unwrap());
        assert_eq!(first.iter().map(|m| m.0).collect::<Vec<_>>(), [20, 5, 5]);
        let list = md.join("dovecot-uidlist");
        for _ in 0..3 {
            assert_eq!(seen(&Mailbox::open(&target, &s).unwrap()), first);
        }
        let text = std::fs::read_to_string(&list).unwrap();
        assert!(text.lines().next().unwrap().contains(" p"), "{text}");
        assert!(text.contains(" W20 :1700000000.M1P1.host:2,S\n"), "{text}");
        let ino = std::fs::metadata(&list).unwrap().ino();
        assert_eq!(seen(&Mailbox::open(&target, &s).unwrap()), first);
        assert_eq!(std::fs::metadata(&list).unwrap().ino(), ino, "rewritten");
    }
}
