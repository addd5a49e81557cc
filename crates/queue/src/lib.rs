//! Queue ids, queue files and the queue directory layout.
//!
//! CONTRACT (other crates build against this; keep it):
//!
//! ```text
//! queue::layout::create_or_repair(queue_dir: &Path, owner: Option<(u32, u32)>, setgid_gid: Option<u32>)
//!     -> Result<Vec<String>, queue::Error>
//!   creates every directory spool-layout/ lists, fixes owner and mode,
//!   returns one line per repair made (for `postfix check` to log).
//!
//! Added by the queue owner (also stable; extend, do not change):
//!
//! QueueId::parse(&str) -> Result<QueueId, Error>      the one id validator
//! QueueId: Copy + Ord + Display; as_str(), time(), inode()
//! Queue::{Maildrop, Incoming, Active, Deferred, Hold, Corrupt, Bounce, Defer,
//!         Trace, Flush, Saved}; Queue::parse(&str), as_str(), is_hashed()
//! queue_path(queue_dir, Queue, &QueueId) -> PathBuf   the one path function
//! enter(queue_dir) -> Result<QueueWriter, Error>      new file in incoming/
//! enter_queue(queue_dir, Queue) -> Result<QueueWriter, Error>  (maildrop/)
//! QueueWriter: io::Write (content); id(); finish(self, &Envelope)
//!     -> Result<Fsynced, Error>; abort(self)
//! Fsynced: id() (private constructor: proof of fsync + complete mark)
//! Envelope { arrival_secs, arrival_micros, sender, recipients: Vec<Recipient>,
//!     attributes: Vec<Attribute>, dsn_envid, dsn_ret }; Envelope::new(sender,
//!     SystemTime), add_recipient, set_attribute, attribute, arrival
//! Recipient { address, original, dsn_orcpt, dsn_notify }
//! QueueFile::open / open_read_only / open_or_quarantine(queue_dir, Queue, &QueueId)
//!     -> Result<QueueFile, Error>
//! QueueFile: envelope(), recipients() -> (index, &Recipient, RecipientState),
//!     recipient_state(i), pending(), mark_done(i), reload_states(),
//!     content() -> ContentReader (io::Read), content_len(), content_offset(),
//!     lock_shared(), try_lock_exclusive() -> bool, metadata() (owner uid, times)
//! rename(queue_dir, &QueueId, from: Queue, to: Queue)  rename + dir fsync
//! quarantine(queue_dir, from: Queue, &QueueId)          move to corrupt/
//! remove(queue_dir, Queue, &QueueId); list(queue_dir, Queue) -> Vec<QueueId>;
//! scan(queue_dir, Queue) -> Scan { ids, others }; incomplete_age(..);
//! fsync_dir(&Path)
//! status_log::{append, read, remove, Record, StatusLog}  (added: bounce/defer/trace logs)
//! Error (non_exhaustive): Io, BadQueueId, BadQueueName, Incomplete, Malformed
//!     { queue, id, path, offset, problem }, Quarantined, QuarantineFailed, ...;
//!     is_corrupt(), is_not_found(), queue_id()
//! ```
//!
//! # Synopsis
//!
//! ```text
//! // cleanup: write a new message
//! let mut w = queue::enter(queue_dir)?;              // incoming/ID, not complete
//! std::io::copy(&mut client, &mut w)?;               // stream the content
//! let proof: queue::Fsynced = w.finish(&envelope)?;  // complete + fsynced
//!
//! // qmgr: take it in, deliver, mark done
//! for id in queue::list(queue_dir, Queue::Incoming)? { ... }
//! queue::rename(queue_dir, &id, Queue::Incoming, Queue::Active)?;
//! let mut qf = QueueFile::open_or_quarantine(queue_dir, Queue::Active, &id)?;
//! for (i, rcpt, state) in qf.recipients() { ... }
//! qf.mark_done(i)?;                                  // pwrite + fdatasync
//!
//! // delivery agents, postcat: stream the content
//! std::io::copy(&mut qf.content(), &mut out)?;
//! ```
//!
//! # Examples
//!
//! ```
//! use queue::{Envelope, Queue, QueueFile, RecipientState};
//! use std::io::{Read, Write};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let tmp = tempfile::tempdir()?;
//! # let queue_dir = tmp.path();
//! queue::layout::create_or_repair(queue_dir, None, None)?;
//!
//! // cleanup
//! let mut w = queue::enter(queue_dir)?;
//! w.write_all(b"Subject: test\n\nhello\n")?;
//! let mut env = Envelope::new("alice@example.org", std::time::SystemTime::now());
//! env.add_recipient("bob@example.net");
//! let proof = w.finish(&env)?;
//! let id = *proof.id();
//!
//! // qmgr
//! assert_eq!(queue::list(queue_dir, Queue::Incoming)?, vec![id]);
//! queue::rename(queue_dir, &id, Queue::Incoming, Queue::Active)?;
//! let mut qf = QueueFile::open_or_quarantine(queue_dir, Queue::Active, &id)?;
//! let mut body = String::new();
//! qf.content().read_to_string(&mut body)?;
//! assert_eq!(body, "Subject: test\n\nhello\n");
//! qf.mark_done(0)?;
//! assert_eq!(qf.recipient_state(0), Some(RecipientState::Done));
//! queue::remove(queue_dir, Queue::Active, &id)?;
//! # Ok(())
//! # }
//! ```
//!
//! # Description
//!
//! - [`QueueId`]: unique ids ordered by arrival time, built from the time and
//!   the queue file's inode as Postfix's long queue ids are;
//!   [`QueueId::parse`] is the one validator before a path is built.
//! - [`Queue`] and [`queue_path`]: the queue names and the one function that
//!   maps a queue and an id to a path (hashed subdirectories included).
//! - [`format`](mod@format): the versioned queue file format (see there for the layout).
//! - [`enter`] / [`QueueWriter`]: create, stream, fsync, mark complete;
//!   [`Fsynced`] proves it was done.
//! - [`QueueFile`]: open a file as untrusted input, read envelope and
//!   recipients, mark recipients done, stream the content.
//! - [`rename`], [`quarantine`], [`remove`], [`list`], [`scan`],
//!   [`incomplete_age`], [`fsync_dir`]: moving and listing.
//! - [`layout`]: the directory tree from spool-layout/queue-dirs.
//! - [`status_log`]: the per-message bounce/, defer/ and trace/ logs
//!   (written by the bounce daemon, read by it and by showq).
//!
//! # Diagnostics
//!
//! Nothing in this crate logs or panics on bad input. Every failure is an
//! [`Error`]: [`Error::Incomplete`] for a file without the complete mark
//! (not corrupt: a writer may be at work), [`Error::Malformed`] with queue,
//! id, path and byte offset for a damaged one (the caller logs it and calls
//! [`quarantine`]), [`Error::Io`] with the path for the environment.

mod claim;
mod crc;
mod error;
pub mod expire;
pub mod format;
mod group_sync;
mod id;
pub mod layout;
mod name;
mod ops;
mod reader;
pub mod status_log;
mod writer;

#[cfg(feature = "fuzzing")]
pub mod fuzzing;

pub use claim::{MaildropClaim, claim_maildrop, maildrop_claimed};
pub use error::{Error, Problem};
pub use format::{ContentReader, Envelope, Recipient, RecipientState};
pub use group_sync::{Ticket, fsync_dir_grouped, ticket};
pub use id::QueueId;
pub use name::{Queue, queue_file_dir, queue_path};
pub use ops::{
    Scan, fsync_dir, incomplete_age, list, quarantine, remove, rename, rename_unsynced, scan,
};
pub use reader::QueueFile;
pub use writer::{Fsynced, QueueWriter, enter, enter_queue};

#[cfg(test)]
mod proptests;
