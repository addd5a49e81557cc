//! Where the frames for postdrop go: into memory first, then either into a
//! memory file on which sendmail becomes postdrop, or down a pipe to a
//! postdrop child.
//!
//! A message whose frames fit in [`IN_PLACE_MAX`] is read whole; sendmail
//! then puts them in a memory file (memfd) on its stdin and executes
//! postdrop in its own place, so that a submission starts one process, not
//! two (docs/BENCH.md, "Issue 12: two commands a message, started lean").
//! postdrop's exit status and its diagnostics are then the command's own.
//! A larger message starts postdrop as a child the moment the bound is
//! passed and streams the rest to it, so memory stays bounded whatever the
//! size; sendmail waits for it and reports its status (`sendmail: fatal:
//! ... message not queued: ...`). `-bv` always uses a child: sendmail has
//! to say something after postdrop's success.

use std::io::{Seek, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};

use crate::sysexits::{EX_OSERR, EX_UNAVAILABLE};

/// Most bytes of frames kept in memory for a postdrop run in place (the
/// bound above which postdrop itself writes a maildrop file rather than
/// handing the message to pickup).
pub(crate) const IN_PLACE_MAX: usize = 256 * 1024;

/// postdrop's command line, for a child or for this process.
pub(crate) struct Postdrop {
    cmd: Command,
    path: PathBuf,
    who: String,
}

/// Frames on their way to postdrop.
pub(crate) struct Sink {
    postdrop: Postdrop,
    to: To,
}

enum To {
    /// Not yet started: the frames so far.
    Memory(Vec<u8>),
    /// A child reading its stdin.
    Child(Child, ChildStdin),
}

/// How a message went to postdrop, once all of it went.
#[allow(clippy::large_enum_variant, reason = "one a process, moved once")]
pub(crate) enum Handed {
    /// All frames are in memory: [`Postdrop::exec_in_place`] with them.
    InMemory(Postdrop, Vec<u8>),
    /// A child has them (its stdin is closed): wait for it.
    Child(Child),
}

impl Postdrop {
    /// `cmd` runs postdrop at `path`; `who` is the `user(uid)` for messages.
    pub(crate) fn new(cmd: Command, path: PathBuf, who: &str) -> Postdrop {
        Postdrop {
            cmd,
            path,
            who: who.to_owned(),
        }
    }

    /// Starts postdrop as a child and gives it `kept`, the frames so far.
    /// Exits when it cannot be started. A failed write of `kept` is left
    /// for the next write to report (the child went away).
    fn start(&mut self, kept: &[u8]) -> (Child, ChildStdin) {
        let mut child = match self.cmd.stdin(Stdio::piped()).spawn() {
            Ok(c) => c,
            Err(e) => die!(
                EX_UNAVAILABLE,
                "{}: execvp {}: {e}",
                self.who,
                self.path.display()
            ),
        };
        let Some(mut pipe) = child.stdin.take() else {
            die!(EX_OSERR, "{}: no pipe to postdrop", self.who);
        };
        let _ = pipe.write_all(kept);
        (child, pipe)
    }

    /// Executes postdrop in this process with `frames` on stdin (a memory
    /// file, read from its start). Returns only when no memory file can be
    /// made (a kernel without memfd_create): then a child has the frames.
    pub(crate) fn exec_in_place(mut self, frames: Vec<u8>) -> Child {
        if let Ok(file) = memory_file(&frames) {
            let e = self.cmd.stdin(Stdio::from(file)).exec();
            die!(
                EX_UNAVAILABLE,
                "{}: execvp {}: {e}",
                self.who,
                self.path.display()
            )
        }
        let (child, pipe) = self.start(&frames);
        drop(pipe);
        child
    }
}

impl Sink {
    /// Frames for `postdrop`, kept in memory while they fit when
    /// `in_place`, else given to a child started now.
    pub(crate) fn new(mut postdrop: Postdrop, in_place: bool) -> Sink {
        let to = if in_place {
            To::Memory(Vec::new())
        } else {
            let (child, pipe) = postdrop.start(&[]);
            To::Child(child, pipe)
        };
        Sink { postdrop, to }
    }

    /// The frames are all written: what holds them now.
    pub(crate) fn finish(self) -> Handed {
        match self.to {
            To::Memory(frames) => Handed::InMemory(self.postdrop, frames),
            To::Child(child, pipe) => {
                drop(pipe);
                Handed::Child(child)
            }
        }
    }
}

/// A memory file holding `frames`, positioned at its start.
fn memory_file(frames: &[u8]) -> std::io::Result<std::fs::File> {
    let fd = nix::sys::memfd::memfd_create(c"sendmail", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)?;
    let mut file = std::fs::File::from(fd);
    file.write_all(frames)?;
    file.rewind()?;
    Ok(file)
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        loop {
            match &mut self.to {
                To::Child(_, pipe) => return pipe.write(buf),
                To::Memory(kept) if kept.len() + buf.len() <= IN_PLACE_MAX => {
                    kept.extend_from_slice(buf);
                    return Ok(buf.len());
                }
                To::Memory(kept) => {
                    let (child, pipe) = self.postdrop.start(kept);
                    self.to = To::Child(child, pipe);
                }
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.to {
            To::Memory(_) => Ok(()),
            To::Child(_, pipe) => pipe.flush(),
        }
    }
}
