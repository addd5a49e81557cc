//! Reading Postfix's queue files and moving their messages into our queue
//! (the library behind postfix-import-queue(8)).
//!
//! - [`record`]: Postfix's record layer (type, length, data; pointers).
//! - [`message`]: one queue or maildrop file as envelope and content.
//! - [`import`]: the walk over Postfix's queues, the journal that makes a
//!   rerun after a crash safe, and the writes into our queue.

pub mod import;
pub mod journal;
pub mod message;
pub mod record;
