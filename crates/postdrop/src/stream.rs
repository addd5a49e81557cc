//! Reading sendmail's frames (untrusted) and writing the maildrop file.
//!
//! The input is a sequence of [`proto::cleanup::Request`] frames:
//! `Begin`, any number of `Recipient`, any number of `Content`, `End`.
//! Anything else, a frame that does not decode, or input that stops before
//! `End` is an error, and the partial maildrop file is removed (the
//! [`queue::QueueWriter`] removes its file when dropped unfinished).
//!
//! What reaches the file is chosen here, not by the caller: the flags are
//! masked to [`proto::cleanup::flags::EXTRACT_RECIPIENTS`], the only
//! attributes taken from the caller are `dsn_envid`, `dsn_ret` and `body`
//! (each checked), and `login_name` and `rewrite_context` are set by
//! postdrop itself.

use std::fmt;
use std::io::{Read, Write};
use std::path::Path;
use std::time::SystemTime;

use proto::cleanup::{Begin, Request, flags};
use queue::format::{DsnRet, MAX_FIELD_LEN, MAX_RECIPIENTS};
use queue::{Envelope, Queue, QueueId};

/// Most envelope bytes (sender, recipients, attributes) one submission may
/// carry, well below what the queue format accepts.
pub(crate) const MAX_ENVELOPE_BYTES: usize = 16 * 1024 * 1024;

/// Longest DSN ENVID accepted (RFC 3461 allows 100 characters).
const MAX_ENVID: usize = 100;

/// Attribute names in the maildrop file (pickup reads them).
pub(crate) mod attr {
    /// The submitting user's login name.
    pub(crate) const LOGIN_NAME: &str = "login_name";
    /// Always `local`.
    pub(crate) const REWRITE_CONTEXT: &str = "rewrite_context";
    /// Cleanup flags, decimal; only `EXTRACT_RECIPIENTS` is kept.
    pub(crate) const FLAGS: &str = "flags";
    /// sendmail -F.
    pub(crate) const FULL_NAME: &str = "full_name";
    /// sendmail -B: `7BIT` or `8BITMIME`.
    pub(crate) const BODY: &str = "body";
}

/// Why a submission failed.
#[derive(Debug)]
#[non_exhaustive]
pub(crate) enum DropError {
    /// The maildrop file could not be created.
    Create(queue::Error),
    /// Writing or finishing the file failed.
    Write(queue::Error),
    /// The input could not be read, did not decode, or stopped early.
    Input(proto::Error),
    /// Frames arrived in an order that makes no sense.
    Protocol(&'static str),
    /// An envelope field is too long, or there are too many recipients.
    Envelope(&'static str),
    /// The content exceeds message_size_limit.
    TooBig {
        /// The limit in bytes.
        limit: u64,
    },
    /// The caller gave up (`Abort`).
    Aborted,
}

impl fmt::Display for DropError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DropError::Create(e) => write!(f, "create maildrop file: {e}"),
            DropError::Write(e) => write!(f, "write maildrop file: {e}"),
            DropError::Input(e) => write!(f, "read input: {e}"),
            DropError::Protocol(what) => write!(f, "malformed input: {what}"),
            DropError::Envelope(what) => write!(f, "envelope too large: {what}"),
            DropError::TooBig { limit } => write!(
                f,
                "message size exceeds limit (message_size_limit = {limit} bytes)"
            ),
            DropError::Aborted => write!(f, "submission aborted by the caller"),
        }
    }
}

impl std::error::Error for DropError {}

impl DropError {
    /// The sysexits.h status for this failure.
    pub(crate) fn exit_status(&self) -> i32 {
        match self {
            DropError::Create(_) => 73, // EX_CANTCREAT
            DropError::Write(queue::Error::TooLarge { .. }) | DropError::TooBig { .. } => 65, // EX_DATAERR
            DropError::Write(_) => 75,    // EX_TEMPFAIL
            DropError::Envelope(_) => 65, // EX_DATAERR
            DropError::Input(_) | DropError::Protocol(_) | DropError::Aborted => 70, // EX_SOFTWARE
        }
    }
}

/// Facts postdrop adds itself.
#[derive(Debug, Clone)]
pub(crate) struct Submitter {
    /// The login name of the real uid.
    pub(crate) login_name: String,
}

/// Reads one submission from `input` and writes it into
/// `queue_dir`/maildrop. `limit` is message_size_limit (0: none).
///
/// # Errors
/// See [`DropError`]; on error no file is left behind.
pub(crate) fn drop_message<R: Read>(
    input: &mut R,
    queue_dir: &Path,
    limit: u64,
    who: &Submitter,
) -> Result<QueueId, DropError> {
    let begin = match recv(input)? {
        Request::Begin(b) => b,
        _ => return Err(DropError::Protocol("first request is not Begin")),
    };
    let mut env = envelope(&begin, who)?;
    let mut size = env_size(&env);
    let mut writer = queue::enter_queue(queue_dir, Queue::Maildrop).map_err(DropError::Create)?;
    let mut in_content = false;
    loop {
        match recv(input)? {
            Request::Recipient(r) if !in_content => {
                if env.recipients.len() >= MAX_RECIPIENTS as usize {
                    return Err(DropError::Envelope("too many recipients"));
                }
                let orcpt_len = r.orcpt.as_ref().map_or(0, String::len);
                if r.address.len() > MAX_FIELD_LEN || orcpt_len > MAX_FIELD_LEN {
                    return Err(DropError::Envelope("recipient too long"));
                }
                size = size.saturating_add(2 * r.address.len() + orcpt_len + 16);
                if size > MAX_ENVELOPE_BYTES {
                    return Err(DropError::Envelope("recipient list too long"));
                }
                let rcpt = env.add_recipient(&r.address);
                rcpt.dsn_orcpt = r.orcpt;
                rcpt.dsn_notify = r.notify & 0x0f;
            }
            Request::Recipient(_) => {
                return Err(DropError::Protocol("recipient after content"));
            }
            Request::Content(bytes) => {
                in_content = true;
                let after = writer.content_len().saturating_add(bytes.len() as u64);
                if limit > 0 && after > limit {
                    return Err(DropError::TooBig { limit });
                }
                if let Err(source) = writer.write_all(&bytes) {
                    let path = writer.path().to_path_buf();
                    return Err(DropError::Write(queue::Error::Io { path, source }));
                }
            }
            Request::End => break,
            Request::Abort => return Err(DropError::Aborted),
            Request::Attribute(..) => return Err(DropError::Protocol("Attribute")),
            Request::Begin(_) => return Err(DropError::Protocol("Begin twice")),
        }
    }
    let proof = writer.finish(&env).map_err(DropError::Write)?;
    Ok(*proof.id())
}

fn recv<R: Read>(input: &mut R) -> Result<Request, DropError> {
    proto::recv(input).map_err(DropError::Input)
}

/// The envelope from `Begin`, with only what the caller may choose.
fn envelope(begin: &Begin, who: &Submitter) -> Result<Envelope, DropError> {
    let long = |s: &str| s.len() > MAX_FIELD_LEN;
    if long(&begin.sender) {
        return Err(DropError::Envelope("sender too long"));
    }
    let mut env = Envelope::new(&begin.sender, SystemTime::now());
    env.set_attribute(attr::LOGIN_NAME, &who.login_name);
    env.set_attribute(attr::REWRITE_CONTEXT, "local");
    let kept = begin.flags & (flags::EXTRACT_RECIPIENTS | flags::VERIFY_REPORT);
    env.set_attribute(attr::FLAGS, &kept.to_string());
    if let Some(name) = &begin.full_name {
        if long(name) {
            return Err(DropError::Envelope("full name too long"));
        }
        env.set_attribute(attr::FULL_NAME, name);
    }
    for (name, value) in &begin.attributes {
        match name.as_str() {
            "dsn_envid" if is_envid(value) => env.dsn_envid = Some(value.clone()),
            "dsn_ret" => match value.to_ascii_uppercase().as_str() {
                "FULL" => env.dsn_ret = Some(DsnRet::Full),
                "HDRS" => env.dsn_ret = Some(DsnRet::Headers),
                _ => {}
            },
            "body" => {
                let up = value.to_ascii_uppercase();
                if up == "7BIT" || up == "8BITMIME" {
                    env.set_attribute(attr::BODY, &up);
                }
            }
            // rewrite_context and anything else: postdrop decides.
            _ => {}
        }
    }
    Ok(env)
}

/// A DSN ENVID: printable ASCII, at most [`MAX_ENVID`] bytes.
fn is_envid(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_ENVID
        && value.bytes().all(|b| (0x21..0x7f).contains(&b))
}

fn env_size(env: &Envelope) -> usize {
    env.sender.len()
        + env
            .attributes
            .iter()
            .map(|a| a.name.len() + a.value.len())
            .sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::cleanup::RecipientSpec;
    use queue::QueueFile;

    fn frames(reqs: &[Request]) -> Vec<u8> {
        let mut v = Vec::new();
        for r in reqs {
            proto::send(&mut v, r).unwrap();
        }
        v
    }

    fn begin(flags: u32, attrs: &[(&str, &str)]) -> Request {
        Request::Begin(Begin {
            flags,
            sender: "alice".into(),
            full_name: Some("Alice A".into()),
            attributes: attrs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        })
    }

    fn rcpt(a: &str) -> Request {
        Request::Recipient(RecipientSpec {
            address: a.into(),
            orcpt: None,
            notify: 0xff,
        })
    }

    fn queue() -> tempfile::TempDir {
        let q = tempfile::tempdir().unwrap();
        queue::layout::create_or_repair(q.path(), None, None).unwrap();
        q
    }

    fn who() -> Submitter {
        Submitter {
            login_name: "alice".into(),
        }
    }

    #[test]
    fn writes_envelope_and_content() {
        let q = queue();
        let input = frames(&[
            begin(
                flags::EXTRACT_RECIPIENTS | flags::NO_CHECKS,
                &[
                    ("rewrite_context", "remote"),
                    ("login_name", "root"),
                    ("dsn_envid", "abc"),
                    ("dsn_ret", "hdrs"),
                    ("body", "8bitmime"),
                    ("client_address", "1.2.3.4"),
                ],
            ),
            rcpt("bob"),
            Request::Content(b"Subject: hi\r\n\r\n\0body\n".to_vec()),
            Request::Content(b"more\n".to_vec()),
            Request::End,
        ]);
        let id = drop_message(&mut input.as_slice(), q.path(), 0, &who()).unwrap();
        let qf = QueueFile::open_read_only(q.path(), Queue::Maildrop, &id).unwrap();
        let env = qf.envelope();
        assert_eq!(env.sender, "alice");
        assert_eq!(env.attribute("login_name"), Some("alice"));
        assert_eq!(env.attribute("rewrite_context"), Some("local"));
        assert_eq!(env.attribute("flags"), Some("1"));
        assert_eq!(env.attribute("full_name"), Some("Alice A"));
        assert_eq!(env.attribute("body"), Some("8BITMIME"));
        assert_eq!(env.attribute("client_address"), None);
        assert_eq!(env.dsn_envid.as_deref(), Some("abc"));
        assert_eq!(env.dsn_ret, Some(DsnRet::Headers));
        assert_eq!(env.recipients.len(), 1);
        assert_eq!(env.recipients[0].address, "bob");
        assert_eq!(env.recipients[0].dsn_notify, 0x0f);
        let mut body = Vec::new();
        qf.content().read_to_end(&mut body).unwrap();
        assert_eq!(body, b"Subject: hi\r\n\r\n\0body\nmore\n");
    }

    fn assert_empty(q: &Path) {
        let s = queue::scan(q, Queue::Maildrop).unwrap();
        assert!(s.ids.is_empty() && s.others.is_empty(), "{s:?}");
    }

    #[test]
    fn failures_leave_no_file() {
        let q = queue();
        let cases: Vec<Vec<Request>> = vec![
            vec![rcpt("bob")],
            vec![begin(0, &[]), rcpt("bob"), Request::Content(b"x".to_vec())],
            vec![begin(0, &[]), Request::Content(b"x".to_vec()), rcpt("bob")],
            vec![begin(0, &[]), begin(0, &[])],
            vec![begin(0, &[]), Request::Abort],
            vec![
                begin(0, &[]),
                Request::Content(vec![b'x'; 600]),
                Request::End,
            ],
        ];
        for c in cases {
            let input = frames(&c);
            let e = drop_message(&mut input.as_slice(), q.path(), 500, &who()).unwrap_err();
            assert_ne!(e.exit_status(), 0);
            assert_empty(q.path());
        }
        let e = drop_message(&mut &[0u8, 0, 0, 2, 0xff, 0xff][..], q.path(), 0, &who());
        assert!(matches!(e, Err(DropError::Input(_))));
        let mut too_big = frames(&[begin(0, &[]), Request::Content(vec![b'x'; 600])]);
        too_big.extend(frames(&[Request::End]));
        let e = drop_message(&mut too_big.as_slice(), q.path(), 500, &who()).unwrap_err();
        assert_eq!(e.exit_status(), 65);
        assert_empty(q.path());
    }
}
