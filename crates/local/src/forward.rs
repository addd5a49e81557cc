//! Forwarding: addresses from aliases and .forward files that are not
//! delivered here become a new message, submitted to cleanup with the
//! original sender and a `Delivered-To:` line (so a message that comes
//! back is recognised as a loop), as Postfix's forward.c does.

use std::io::Read;
use std::path::Path;

use proto::cleanup::{Begin, RecipientSpec, Reply, Request};

/// Submits the content of the current message, with `prepend` lines in
/// front, to `recipients`; returns the new queue id.
///
/// # Errors
/// An enhanced status code and a text for the DSN (cleanup unreachable
/// or refusing, queue file read error).
pub(crate) fn submit(
    queue_dir: &Path,
    sender: &str,
    recipients: &[String],
    prepend: &[String],
    content: &mut dyn Read,
) -> Result<String, (String, String)> {
    let mut s = proto::connect(queue_dir, proto::cleanup::SERVICE)
        .map_err(|e| temp(format!("cannot forward: {e}")))?;
    let io = |e: proto::Error| temp(format!("cannot forward: cleanup: {e}"));
    proto::send(
        &mut s,
        &Request::Begin(Begin {
            flags: 0,
            sender: sender.to_string(),
            full_name: None,
            attributes: vec![("rewrite_context".into(), "local".into())],
        }),
    )
    .map_err(io)?;
    match proto::recv::<_, Reply>(&mut s).map_err(io)? {
        Reply::Started { .. } => {}
        other => return Err(refused(other)),
    }
    for r in recipients {
        proto::send(
            &mut s,
            &Request::Recipient(RecipientSpec {
                address: r.clone(),
                orcpt: None,
                notify: 0,
            }),
        )
        .map_err(io)?;
    }
    let mut head = String::new();
    for line in prepend {
        head.push_str(line);
        head.push('\n');
    }
    if !head.is_empty() {
        proto::send(&mut s, &Request::Content(head.into_bytes())).map_err(io)?;
    }
    let mut buf = vec![0u8; proto::CONTENT_CHUNK];
    loop {
        let n = match content.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = proto::send(&mut s, &Request::Abort);
                return Err(temp(format!("queue file read error: {e}")));
            }
        };
        if n == 0 {
            break;
        }
        let chunk = buf.get(..n).unwrap_or_default().to_vec();
        proto::send(&mut s, &Request::Content(chunk)).map_err(io)?;
    }
    proto::send(&mut s, &Request::End).map_err(io)?;
    match proto::recv::<_, Reply>(&mut s).map_err(io)? {
        Reply::Queued { queue_id } => Ok(queue_id),
        Reply::Discarded { reason } => {
            Ok(format!("nothing ({})", maillog::printable(&reason, 100)))
        }
        other => Err(refused(other)),
    }
}

fn temp(text: String) -> (String, String) {
    ("4.3.0".to_string(), text)
}

fn refused(reply: Reply) -> (String, String) {
    match reply {
        Reply::Rejected { status, text, .. } => {
            let dsn = if status.starts_with('5') {
                "5.3.0"
            } else {
                "4.3.0"
            };
            (
                dsn.to_string(),
                format!(
                    "cannot forward: {} {}",
                    maillog::printable(&status, 20),
                    maillog::printable(&text, 200)
                ),
            )
        }
        other => temp(format!(
            "cannot forward: unexpected reply from cleanup: {other:?}"
        )),
    }
}
