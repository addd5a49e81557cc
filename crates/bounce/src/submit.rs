//! Handing a notification to cleanup (public/cleanup) over proto::cleanup:
//! Begin, one Recipient, Content chunks, End; the answer is the new queue
//! id once cleanup has fsynced the file.

use proto::cleanup::{Begin, RecipientSpec, Reply, Request, flags};
use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

/// Why a notification was not queued.
#[derive(Debug)]
pub(crate) enum SubmitError {
    /// cleanup could not be reached or broke off: try again later.
    Temporary(String),
    /// cleanup refused the message (status, text).
    Rejected(String, String),
}

impl std::fmt::Display for SubmitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SubmitError::Temporary(t) => write!(f, "{t}"),
            SubmitError::Rejected(s, t) => write!(f, "cleanup rejected: {s} {t}"),
        }
    }
}

impl From<proto::Error> for SubmitError {
    fn from(e: proto::Error) -> Self {
        SubmitError::Temporary(format!("cleanup service: {e}"))
    }
}

/// A [`Write`] that sends what it is given as Content frames.
struct ContentSink<'a> {
    stream: &'a mut UnixStream,
    buf: Vec<u8>,
}

impl ContentSink<'_> {
    fn send_buffered(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::take(&mut self.buf);
        proto::send(self.stream, &Request::Content(chunk)).map_err(io::Error::other)
    }
}

impl Write for ContentSink<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = proto::CONTENT_CHUNK.saturating_sub(self.buf.len());
        let n = data.len().min(room);
        self.buf
            .extend_from_slice(data.get(..n).unwrap_or_default());
        if self.buf.len() >= proto::CONTENT_CHUNK {
            self.send_buffered()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_buffered()
    }
}

/// Sends one message from `sender` ("" for `<>`) to `recipient` through
/// cleanup; `body` writes the content. Returns the new queue id, or
/// `None` when cleanup accepted and discarded the message.
///
/// # Errors
/// [`SubmitError::Temporary`] when cleanup cannot be reached or the body
/// cannot be produced, [`SubmitError::Rejected`] when cleanup refuses.
pub(crate) fn submit(
    queue_dir: &Path,
    sender: &str,
    recipient: &str,
    body: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<Option<String>, SubmitError> {
    let mut s = proto::connect(queue_dir, proto::cleanup::SERVICE)?;
    proto::send(
        &mut s,
        &Request::Begin(Begin {
            flags: flags::NOTIFICATION | flags::NO_CHECKS,
            sender: sender.to_string(),
            full_name: None,
            attributes: vec![("rewrite_context".into(), "local".into())],
        }),
    )?;
    match proto::recv::<_, Reply>(&mut s)? {
        Reply::Started { .. } => {}
        other => return Err(final_reply(other)),
    }
    proto::send(
        &mut s,
        &Request::Recipient(RecipientSpec {
            address: recipient.to_string(),
            orcpt: None,
            notify: 0,
        }),
    )?;
    let written = {
        let mut sink = ContentSink {
            stream: &mut s,
            buf: Vec::with_capacity(proto::CONTENT_CHUNK),
        };
        body(&mut sink).and_then(|()| sink.flush())
    };
    if let Err(e) = written {
        // cleanup may have refused early and hung up: its reply says why.
        if let Ok(reply) = proto::recv::<_, Reply>(&mut s) {
            return Err(final_reply(reply));
        }
        let _ = proto::send(&mut s, &Request::Abort);
        return Err(SubmitError::Temporary(format!(
            "cannot write notification: {e}"
        )));
    }
    proto::send(&mut s, &Request::End)?;
    match proto::recv::<_, Reply>(&mut s)? {
        Reply::Queued { queue_id } => Ok(Some(queue_id)),
        Reply::Discarded { .. } => Ok(None),
        other => Err(final_reply(other)),
    }
}

fn final_reply(reply: Reply) -> SubmitError {
    match reply {
        Reply::Queued { queue_id } | Reply::Started { queue_id } => {
            SubmitError::Temporary(format!("unexpected cleanup reply for {queue_id}"))
        }
        Reply::Discarded { reason } => SubmitError::Rejected("2.0.0".into(), reason),
        Reply::Rejected { status, text, .. } => SubmitError::Rejected(status, text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    /// A cleanup that refuses right after Begin (a size limit, say).
    fn refusing_cleanup(qdir: &Path) {
        std::fs::create_dir_all(qdir.join("public")).unwrap();
        let l = UnixListener::bind(qdir.join(proto::cleanup::SERVICE)).unwrap();
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = l.accept() {
                let _: Request = proto::recv(&mut s).unwrap();
                proto::send(
                    &mut s,
                    &Reply::Rejected {
                        status: "5.3.4".into(),
                        text: "message file too big".into(),
                        code: 0,
                    },
                )
                .unwrap();
            }
        });
    }

    #[test]
    fn early_rejection_is_reported() {
        let q = tempfile::tempdir().unwrap();
        refusing_cleanup(q.path());
        let r = submit(q.path(), "", "alice@example.org", |out| {
            out.write_all(&vec![b'x'; 200_000])
        });
        match r {
            Err(SubmitError::Rejected(status, text)) => {
                assert_eq!(status, "5.3.4");
                assert_eq!(text, "message file too big");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn no_cleanup_is_temporary() {
        let q = tempfile::tempdir().unwrap();
        let r = submit(q.path(), "", "a@b", |_| Ok(()));
        assert!(matches!(r, Err(SubmitError::Temporary(_))), "{r:?}");
    }
}
