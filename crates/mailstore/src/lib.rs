//! Mail stores: where local and virtual deliver and where pop3d and imapd
//! read.
//!
//! * [`maildir`]: Maildir delivery (tmp/ -> new/, unique names, fsync of
//!   the file and of new/), listing with flags, flag changes by rename,
//!   and Maildir++ folders.
//! * [`mbox`]: mbox delivery with dotlock and fcntl locking, `From ` line,
//!   `>From ` quoting, fsync and truncation on failure; reading messages
//!   back by offset with un-quoting.
//! * [`uidlist`]: IMAP UIDs and UIDVALIDITY kept beside a maildir.
//! * [`localtime`]: the local UTC offset for From_ line dates.
//! * [`lock`]: the dotlock and fcntl locks that Debian's MUAs agree on.
//! * [`Error`]: every failure, with the enhanced status code and whether
//!   the delivery agent should defer or bounce.
//!
//! Message content is always a [`std::io::Read`] source streamed through a
//! 64 KiB buffer, never held whole in memory; size limits are checked
//! while streaming.
//!
//! ```text
//! maildir::deliver(dir, &maildir::Options, prepend: &[&str], &mut dyn Read) -> Result<maildir::Delivered>
//! mbox::deliver(path, &mbox::Options, sender, prepend: &[&str], &mut dyn Read) -> Result<mbox::Delivered>
//! mbox::messages(reader, Quoting) -> impl Iterator<Item = io::Result<MboxMessage>>
//! mbox::open_message(reader, &MboxMessage, Quoting) -> io::Result<MessageReader>
//! mbox::lock(path, &mbox::Options) -> Result<LockedMbox>   // .messages() .open_message() .remove_messages()
//! Maildir::open(path).list() / move_to_cur / set_flags / remove / folders / create_folder
//! Maildir::sync_uids(&LockOptions) -> Result<UidList>
//! Error::status() -> "4.2.0" | "5.2.2" | ...     Error::is_temporary() -> bool
//! ```
//!
//! # Security
//!
//! The caller runs as the recipient (local) or as the virtual uid. Mailbox
//! files are opened with O_NOFOLLOW; a symlink, a non-regular file or a
//! hard-linked mbox is refused, as Postfix's local refuses them. Maildir
//! names never come from message content. Reading an mbox uses a bounded
//! line buffer ([`mbox::LINE_PIECE_LIMIT`]).

pub mod error;
pub mod localtime;
pub mod lock;
pub mod maildir;
pub mod mbox;
pub mod pop3;
mod quote;
mod stream;
pub mod uidlist;

pub use error::{Error, FileKind, Result};
pub use maildir::{Entry, Flags, Location, Maildir};
pub use mbox::{LockedMbox, MboxMessage, MessageReader};
pub use quote::Quoting;
pub use uidlist::{UidEntry, UidList};
