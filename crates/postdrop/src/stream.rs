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
use std::time::{Duration, SystemTime};

use proto::cleanup::{Begin, Request, flags};
use queue::format::{DsnRet, MAX_FIELD_LEN, MAX_RECIPIENTS};
use queue::{Envelope, Queue, QueueId, QueueWriter};

use crate::handover::Handed;

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
    /// The whole message went to pickup but no answer came (why): it may
    /// or may not be queued.
    Unknown(String),
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
            DropError::Unknown(why) => write!(
                f,
                "pickup did not answer whether it queued the message (it may have): {why}"
            ),
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
            DropError::Write(_) | DropError::Unknown(_) => 75, // EX_TEMPFAIL
            DropError::Envelope(_) => 65,                      // EX_DATAERR
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

/// Where a submission went.
#[derive(Debug)]
pub(crate) enum Dropped {
    /// Into this maildrop file, for pickup's next scan.
    Maildrop(QueueId),
    /// To pickup itself, which answered for good (queued, discarded, or
    /// refused with a 5.x.x status).
    HandedOver(proto::cleanup::Reply),
}

/// Most content bytes kept in memory for a hand-over to pickup; a larger
/// message goes into a maildrop file as it arrives.
pub(crate) const HANDOVER_MAX: usize = 256 * 1024;

/// The message body while it arrives.
enum Body {
    /// Kept for a hand-over to pickup, which has this long to give the
    /// go-ahead.
    Memory(Vec<u8>, Duration),
    File(QueueWriter),
}

/// Reads one submission from `input` and, with `hand_over` (how long to
/// wait for pickup's go-ahead) and when it is small, hands it to pickup
/// (see [`crate::handover`]); otherwise, or when pickup does not take it,
/// writes it into `queue_dir`/maildrop.
/// `limit` is message_size_limit (0: none).
///
/// # Errors
/// See [`DropError`]; on error no file is left behind.
pub(crate) fn drop_message<R: Read>(
    input: &mut R,
    queue_dir: &Path,
    limit: u64,
    who: &Submitter,
    hand_over: Option<Duration>,
) -> Result<Dropped, DropError> {
    let begin = match recv(input)? {
        Request::Begin(b) => b,
        _ => return Err(DropError::Protocol("first request is not Begin")),
    };
    let mut env = envelope(&begin, who)?;
    let mut size = env_size(&env);
    let mut body = match hand_over {
        Some(go_ahead) => Body::Memory(Vec::new(), go_ahead),
        None => Body::File(create(queue_dir)?),
    };
    let mut content_len: u64 = 0;
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
                content_len = content_len.saturating_add(bytes.len() as u64);
                if limit > 0 && content_len > limit {
                    return Err(DropError::TooBig { limit });
                }
                if let Body::Memory(m, _) = &body
                    && m.len().saturating_add(bytes.len()) > HANDOVER_MAX
                {
                    let mut w = create(queue_dir)?;
                    write(&mut w, m)?;
                    body = Body::File(w);
                }
                match &mut body {
                    Body::Memory(m, _) => m.extend_from_slice(&bytes),
                    Body::File(w) => write(w, &bytes)?,
                }
            }
            Request::End => break,
            Request::Abort => return Err(DropError::Aborted),
            Request::Attribute(..) => return Err(DropError::Protocol("Attribute")),
            Request::Begin(_) => return Err(DropError::Protocol("Begin twice")),
        }
    }
    let writer = match body {
        Body::File(w) => w,
        Body::Memory(m, go_ahead) => {
            match crate::handover::hand_over(queue_dir, &env, &m, go_ahead) {
                Handed::Taken(reply) => return Ok(Dropped::HandedOver(reply)),
                Handed::Unknown(why) => return Err(DropError::Unknown(why)),
                Handed::Keep(why) => {
                    maillog::verbose!("not handed to pickup: {why}");
                    let mut w = create(queue_dir)?;
                    write(&mut w, &m)?;
                    w
                }
            }
        }
    };
    let proof = writer.finish(&env).map_err(DropError::Write)?;
    Ok(Dropped::Maildrop(*proof.id()))
}

fn create(queue_dir: &Path) -> Result<QueueWriter, DropError> {
    queue::enter_queue(queue_dir, Queue::Maildrop).map_err(DropError::Create)
}

fn write(w: &mut QueueWriter, bytes: &[u8]) -> Result<(), DropError> {
    w.write_all(bytes).map_err(|source| {
        let path = w.path().to_path_buf();
        DropError::Write(queue::Error::Io { path, source })
    })
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
            "dsn_ret" => {
                if let Some(ret) = DsnRet::parse(value) {
                    env.dsn_ret = Some(ret);
                }
            }
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
    use proto::cleanup::{RecipientSpec, Reply};
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

    /// The go-ahead wait in tests.
    const GO: Option<Duration> = Some(Duration::from_secs(5));

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
        let Dropped::Maildrop(id) =
            drop_message(&mut input.as_slice(), q.path(), 0, &who(), GO).unwrap()
        else {
            panic!("no pickup listens: a maildrop file")
        };
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
            let e = drop_message(&mut input.as_slice(), q.path(), 500, &who(), GO).unwrap_err();
            assert_ne!(e.exit_status(), 0);
            assert_empty(q.path());
        }
        let e = drop_message(
            &mut &[0u8, 0, 0, 2, 0xff, 0xff][..],
            q.path(),
            0,
            &who(),
            GO,
        );
        assert!(matches!(e, Err(DropError::Input(_))));
        let mut too_big = frames(&[begin(0, &[]), Request::Content(vec![b'x'; 600])]);
        too_big.extend(frames(&[Request::End]));
        let e = drop_message(&mut too_big.as_slice(), q.path(), 500, &who(), GO).unwrap_err();
        assert_eq!(e.exit_status(), 65);
        assert_empty(q.path());
    }

    /// A pickup stand-in on public/pickup that reads one hand-over and
    /// answers with `reply` (none: hangs up); returns what it read.
    fn fake_pickup(q: &Path, reply: Option<Reply>) -> std::thread::JoinHandle<Vec<Request>> {
        let l = std::os::unix::net::UnixListener::bind(q.join(proto::pickup::SERVICE)).unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut mark = [0u8];
            s.read_exact(&mut mark).unwrap();
            assert_eq!(mark[0], proto::pickup::HANDOVER);
            proto::send(&mut s, &proto::pickup::go_ahead()).unwrap();
            let mut got = Vec::new();
            loop {
                let r: Request = proto::recv(&mut s).unwrap();
                let end = r == Request::End;
                got.push(r);
                if end {
                    break;
                }
            }
            if let Some(reply) = reply {
                proto::send(&mut s, &reply).unwrap();
            }
            got
        })
    }

    fn message() -> Vec<u8> {
        frames(&[
            begin(
                flags::EXTRACT_RECIPIENTS | flags::NO_CHECKS,
                &[
                    ("login_name", "root"),
                    ("dsn_ret", "full"),
                    ("body", "7bit"),
                ],
            ),
            rcpt("bob"),
            Request::Content(b"Subject: hi\n\nbody\n".to_vec()),
            Request::End,
        ])
    }

    #[test]
    fn small_message_goes_to_pickup_without_a_file() {
        let q = queue();
        let queued = Reply::Queued {
            queue_id: "4ABC".into(),
        };
        let pickup = fake_pickup(q.path(), Some(queued.clone()));
        let got = drop_message(&mut message().as_slice(), q.path(), 0, &who(), GO).unwrap();
        assert!(
            matches!(got, Dropped::HandedOver(ref r) if *r == queued),
            "{got:?}"
        );
        assert_empty(q.path());
        let seen = pickup.join().unwrap();
        let Request::Begin(b) = &seen[0] else {
            panic!("{seen:?}")
        };
        // What the maildrop file would say: postdrop's login name, the
        // kept flag only, checked DSN and body values.
        assert_eq!(b.sender, "alice");
        assert_eq!(b.flags, flags::EXTRACT_RECIPIENTS);
        assert_eq!(b.full_name.as_deref(), Some("Alice A"));
        let attrs: Vec<(&str, &str)> = b
            .attributes
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert!(attrs.contains(&("login_name", "alice")), "{attrs:?}");
        assert!(attrs.contains(&("dsn_ret", "FULL")), "{attrs:?}");
        assert!(attrs.contains(&("body", "7BIT")), "{attrs:?}");
        assert!(
            matches!(&seen[1], Request::Recipient(r) if r.address == "bob" && r.notify == 0x0f)
        );
        assert_eq!(seen[2], Request::Content(b"Subject: hi\n\nbody\n".to_vec()));
        assert_eq!(seen.len(), 4);
    }

    #[test]
    fn pickup_saying_not_now_gets_a_maildrop_file() {
        let q = queue();
        let pickup = fake_pickup(
            q.path(),
            Some(Reply::Rejected {
                status: proto::pickup::NOT_NOW.into(),
                text: "busy".into(),
                code: 0,
            }),
        );
        let got = drop_message(&mut message().as_slice(), q.path(), 0, &who(), GO).unwrap();
        let Dropped::Maildrop(id) = got else {
            panic!("{got:?}")
        };
        pickup.join().unwrap();
        let qf = QueueFile::open_read_only(q.path(), Queue::Maildrop, &id).unwrap();
        assert_eq!(qf.envelope().recipients[0].address, "bob");
        let mut body = Vec::new();
        qf.content().read_to_end(&mut body).unwrap();
        assert_eq!(body, b"Subject: hi\n\nbody\n");
    }

    #[test]
    fn no_answer_after_the_whole_message_is_a_temporary_failure() {
        let q = queue();
        let pickup = fake_pickup(q.path(), None);
        let e = drop_message(&mut message().as_slice(), q.path(), 0, &who(), GO).unwrap_err();
        assert!(matches!(e, DropError::Unknown(_)), "{e:?}");
        assert_eq!(e.exit_status(), 75);
        pickup.join().unwrap();
        // Not written twice: pickup may have queued it.
        assert_empty(q.path());
    }

    /// master holds public/pickup while no pickup runs: no go-ahead, and
    /// the message goes into a maildrop file with none of it sent.
    #[test]
    fn a_socket_nobody_serves_gets_a_maildrop_file() {
        let q = queue();
        let l =
            std::os::unix::net::UnixListener::bind(q.path().join(proto::pickup::SERVICE)).unwrap();
        let wait = Some(Duration::from_millis(300));
        let got = drop_message(&mut message().as_slice(), q.path(), 0, &who(), wait).unwrap();
        assert!(matches!(got, Dropped::Maildrop(_)), "{got:?}");
        let (mut s, _) = l.accept().unwrap();
        let mut sent = Vec::new();
        s.read_to_end(&mut sent).unwrap();
        assert_eq!(sent, [proto::pickup::HANDOVER], "only the mark went out");
    }

    #[test]
    fn large_message_goes_to_a_file_without_asking_pickup() {
        let q = queue();
        let l =
            std::os::unix::net::UnixListener::bind(q.path().join(proto::pickup::SERVICE)).unwrap();
        l.set_nonblocking(true).unwrap();
        let big = vec![b'x'; HANDOVER_MAX + 1];
        let input = frames(&[
            begin(0, &[]),
            rcpt("bob"),
            Request::Content(big[..HANDOVER_MAX / 2].to_vec()),
            Request::Content(big[HANDOVER_MAX / 2..].to_vec()),
            Request::End,
        ]);
        let got = drop_message(&mut input.as_slice(), q.path(), 0, &who(), GO).unwrap();
        let Dropped::Maildrop(id) = got else {
            panic!("{got:?}")
        };
        assert!(l.accept().is_err(), "pickup was asked");
        let qf = QueueFile::open_read_only(q.path(), Queue::Maildrop, &id).unwrap();
        let mut body = Vec::new();
        qf.content().read_to_end(&mut body).unwrap();
        assert_eq!(body, big);
    }
}
