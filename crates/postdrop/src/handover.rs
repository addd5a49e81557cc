//! Handing a small message to pickup over public/pickup (proto::pickup),
//! so that it needs no maildrop file: no file to create, fsync and
//! remove, and no scan of maildrop/. Whatever keeps pickup from taking it
//! (no socket, nobody listening, no go-ahead within
//! proto::pickup::GO_AHEAD_WAIT, pickup busy, cleanup refusing for now)
//! sends the message to a maildrop file after all; only an answer missing
//! after the whole message was sent leaves its fate unknown.

use std::io::{BufWriter, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use proto::cleanup::{Begin, RecipientSpec, Reply, Request};
use queue::Envelope;
use queue::format::DsnRet;

use crate::stream::attr;

/// How long writing the message to pickup may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// How a hand-over ended.
#[derive(Debug)]
pub(crate) enum Handed {
    /// pickup answered for good: queued, discarded, or refused (5.x.x).
    Taken(Reply),
    /// pickup did not take it (why): write the maildrop file.
    Keep(String),
    /// The message went out whole but no answer came back (why).
    Unknown(String),
}

/// Offers the message (`env` as postdrop built it, `content`) to pickup,
/// waiting up to `go_ahead` for pickup to take it.
pub(crate) fn hand_over(
    queue_dir: &Path,
    env: &Envelope,
    content: &[u8],
    go_ahead: Duration,
) -> Handed {
    // A fifo there (master.cf's `pickup fifo`) refuses the connection.
    let stream = match UnixStream::connect(queue_dir.join(proto::pickup::SERVICE)) {
        Ok(s) => s,
        Err(e) => return Handed::Keep(format!("connect {}: {e}", proto::pickup::SERVICE)),
    };
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    // master holds the socket even while pickup is not running (throttled
    // after failed starts, say): no go-ahead soon means nobody serves it.
    let _ = stream.set_read_timeout(Some(go_ahead));
    if let Err(e) = (&stream).write_all(&[proto::pickup::HANDOVER]) {
        return Handed::Keep(format!("write {}: {e}", proto::pickup::SERVICE));
    }
    match proto::recv::<_, Reply>(&mut &stream) {
        Ok(Reply::Started { .. }) => {}
        Ok(r) => return Handed::Keep(format!("pickup: {}", reply_text(&r))),
        Err(e) => return Handed::Keep(format!("no go-ahead from pickup: {e}")),
    }
    let _ = stream.set_read_timeout(Some(proto::IPC_TIMEOUT));
    // Until End has gone out whole, pickup cannot have queued anything.
    if let Err(e) = send_message(&stream, env, content) {
        return Handed::Keep(format!("write {}: {e}", proto::pickup::SERVICE));
    }
    match proto::recv::<_, Reply>(&mut &stream) {
        Ok(r) if proto::pickup::must_keep(&r) => {
            Handed::Keep(format!("pickup: {}", reply_text(&r)))
        }
        Ok(r) => Handed::Taken(r),
        Err(e) => Handed::Unknown(e.to_string()),
    }
}

fn reply_text(r: &Reply) -> String {
    match r {
        Reply::Rejected { status, text, .. } => format!("{status} {text}"),
        other => format!("{other:?}"),
    }
}

fn send_message(stream: &UnixStream, env: &Envelope, content: &[u8]) -> Result<(), proto::Error> {
    let mut w = BufWriter::with_capacity(proto::CONTENT_CHUNK + 4096, stream);
    proto::send(&mut w, &Request::Begin(begin(env)))?;
    for r in &env.recipients {
        let spec = RecipientSpec {
            address: r.address.clone(),
            orcpt: r.dsn_orcpt.clone(),
            notify: r.dsn_notify,
        };
        proto::send(&mut w, &Request::Recipient(spec))?;
    }
    for chunk in content.chunks(proto::CONTENT_CHUNK) {
        proto::send(&mut w, &Request::Content(chunk.to_vec()))?;
    }
    proto::send(&mut w, &Request::End)?;
    w.flush()?;
    Ok(())
}

/// `Begin` for pickup: what the maildrop file's envelope would say.
fn begin(env: &Envelope) -> Begin {
    let mut attributes = Vec::new();
    let mut keep = |name: &str, value: Option<&str>| {
        if let Some(v) = value {
            attributes.push((name.to_owned(), v.to_owned()));
        }
    };
    keep(attr::LOGIN_NAME, env.attribute(attr::LOGIN_NAME));
    keep(attr::BODY, env.attribute(attr::BODY));
    keep("dsn_envid", env.dsn_envid.as_deref());
    keep("dsn_ret", env.dsn_ret.map(DsnRet::as_str));
    Begin {
        flags: env
            .attribute(attr::FLAGS)
            .and_then(|f| f.parse().ok())
            .unwrap_or(0),
        sender: env.sender.clone(),
        full_name: env.attribute(attr::FULL_NAME).map(str::to_owned),
        attributes,
    }
}
