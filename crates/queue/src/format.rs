//! The queue file format, version 1: encoding and checked decoding.
//!
//! A queue file is, in this order:
//!
//! ```text
//! offset          length        section
//! 0               64            header (little endian):
//!                                 0  magic "\x89PFXQF\r\n"
//!                                 8  version u16 (1)
//!                                10  header length u16 (64)
//!                                12  recipient count u32 (N)
//!                                16  content offset u64 (64)
//!                                24  content length u64 (C)
//!                                32  envelope offset u64 (64 + C)
//!                                40  envelope length u32 (E)
//!                                44  CRC-32C of the content
//!                                48  state table offset u64 (64 + C + E)
//!                                56  reserved u32, zero
//!                                60  CRC-32C of header bytes 0..60 and the envelope
//! 64              C             content: the message, stored as given
//! 64+C            E             envelope record (postcard): arrival time,
//!                               sender, recipients with original recipient
//!                               and DSN fields, attributes, DSN ENVID/RET
//! 64+C+E          N             recipient states, one byte each:
//!                               'P' pending, 'D' done
//! 64+C+E+N        16            end marker: "QEND", N u32, file length u64
//! ```
//!
//! Why this shape:
//!
//! - Content comes first so cleanup can stream a message of any size straight
//!   to disk; the envelope goes after it because recipients may still change
//!   while the content is read (header-extracted recipients, virtual alias
//!   expansion). The header is written last, at offset 0, so a file that was
//!   not finished has no valid magic.
//! - Each recipient's state is one byte at a fixed offset, so marking it
//!   done is a one-byte pwrite plus fdatasync that cannot tear, and the
//!   state is outside the checksum so that write needs no other update.
//! - Readers treat the file as untrusted: the layout is fully determined by
//!   the header, every offset and length is checked against the file size
//!   and against named limits before anything is allocated, the header and
//!   envelope carry a checksum, the content checksum is verified as the
//!   content is streamed, and every state byte and the end marker are
//!   checked. Nothing here panics on any input.
//!
//! A new version gets a new number; this reader refuses versions it does not
//! know (the file goes to corrupt/, where a newer reader can recover it).

use crate::crc::Crc32c;
use crate::error::Problem;
use serde::{Deserialize, Serialize};
use std::io;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// First bytes of every queue file.
pub const MAGIC: [u8; 8] = *b"\x89PFXQF\r\n";
/// The format version this library writes and reads.
pub const VERSION: u16 = 1;
/// Length of the header.
pub const HEADER_LEN: u64 = 64;
/// Length of the end marker.
pub const END_LEN: u64 = 16;
/// First bytes of the end marker.
const END_MAGIC: [u8; 4] = *b"QEND";
/// Largest envelope record a reader accepts (it is held in memory).
pub const MAX_ENVELOPE_LEN: u64 = 32 * 1024 * 1024;
/// Most recipients one queue file may hold.
pub const MAX_RECIPIENTS: u32 = 100_000;
/// Largest address, original recipient, DSN or attribute field.
pub const MAX_FIELD_LEN: usize = 64 * 1024;
/// Most attributes one envelope may hold.
pub const MAX_ATTRIBUTES: usize = 1024;
/// Largest content; far above any message_size_limit, it only bounds
/// arithmetic (the content is streamed, never held in memory).
pub const MAX_CONTENT_LEN: u64 = 1 << 44;

/// Byte value of a pending recipient.
const STATE_PENDING: u8 = b'P';
/// Byte value of a recipient that needs no more delivery attempts.
const STATE_DONE: u8 = b'D';

/// DSN NOTIFY bits, as Postfix's dsn_mask.h numbers them.
pub mod dsn_notify {
    /// NOTIFY=NEVER.
    pub const NEVER: u8 = 1 << 0;
    /// NOTIFY=SUCCESS.
    pub const SUCCESS: u8 = 1 << 1;
    /// NOTIFY=FAILURE.
    pub const FAILURE: u8 = 1 << 2;
    /// NOTIFY=DELAY.
    pub const DELAY: u8 = 1 << 3;
}

/// Well-known attribute names, as Postfix's mail_proto.h spells them.
pub mod attr {
    /// Client host name.
    pub const CLIENT_NAME: &str = "client_name";
    /// Client IP address.
    pub const CLIENT_ADDRESS: &str = "client_address";
    /// Client TCP port.
    pub const CLIENT_PORT: &str = "client_port";
    /// HELO/EHLO argument.
    pub const HELO_NAME: &str = "helo_name";
    /// SMTP, ESMTP, ...
    pub const PROTOCOL_NAME: &str = "protocol_name";
    /// SASL mechanism used.
    pub const SASL_METHOD: &str = "sasl_method";
    /// SASL login name.
    pub const SASL_USERNAME: &str = "sasl_username";
    /// Address rewriting context (local, remote).
    pub const REWRITE_CONTEXT: &str = "rewrite_context";
    /// The service that received the message (for log lines).
    pub const LOG_IDENT: &str = "log_ident";
    /// Message-ID header value, for logging.
    pub const MESSAGE_ID: &str = "message_id";
}

/// DSN RET parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DsnRet {
    /// RET=FULL: return the whole message.
    Full,
    /// RET=HDRS: return the headers only.
    Headers,
}

impl DsnRet {
    /// The keyword as SMTP and the attribute `dsn_ret` spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            DsnRet::Full => "FULL",
            DsnRet::Headers => "HDRS",
        }
    }

    /// `FULL` or `HDRS`, in any case; None for anything else.
    pub fn parse(keyword: &str) -> Option<DsnRet> {
        if keyword.eq_ignore_ascii_case("FULL") {
            Some(DsnRet::Full)
        } else if keyword.eq_ignore_ascii_case("HDRS") {
            Some(DsnRet::Headers)
        } else {
            None
        }
    }
}

/// One envelope recipient.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Recipient {
    /// The address to deliver to, after rewriting.
    pub address: String,
    /// The address as the client gave it, before rewriting and aliasing
    /// (Postfix's original recipient).
    pub original: String,
    /// DSN ORCPT parameter (`rfc822;user@example.org`), if any.
    pub dsn_orcpt: Option<String>,
    /// DSN NOTIFY bits ([`dsn_notify`]); 0 when not given.
    pub dsn_notify: u8,
}

/// A name=value attribute of the message (client information, protocol,
/// and so on; see [`attr`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribute {
    /// The name.
    pub name: String,
    /// The value.
    pub value: String,
}

/// The envelope of a queued message.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Envelope {
    /// Arrival time, seconds since the epoch.
    pub arrival_secs: u64,
    /// Arrival time, microseconds within the second.
    pub arrival_micros: u32,
    /// Envelope sender; empty for the null sender `<>`.
    pub sender: String,
    /// Recipients, in the order their states are stored.
    pub recipients: Vec<Recipient>,
    /// Attributes (client information and the like).
    pub attributes: Vec<Attribute>,
    /// DSN ENVID, if any.
    pub dsn_envid: Option<String>,
    /// DSN RET, if any.
    pub dsn_ret: Option<DsnRet>,
}

impl Envelope {
    /// An envelope for `sender` that arrived at `arrival`.
    pub fn new(sender: &str, arrival: SystemTime) -> Envelope {
        let since = arrival.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        Envelope {
            arrival_secs: since.as_secs(),
            arrival_micros: since.subsec_micros(),
            sender: sender.to_owned(),
            ..Envelope::default()
        }
    }

    /// The arrival time.
    pub fn arrival(&self) -> SystemTime {
        UNIX_EPOCH
            .checked_add(Duration::from_secs(self.arrival_secs))
            .and_then(|t| t.checked_add(Duration::from_micros(u64::from(self.arrival_micros))))
            .unwrap_or(UNIX_EPOCH)
    }

    /// Adds a recipient whose original address is the address itself.
    pub fn add_recipient(&mut self, address: &str) -> &mut Recipient {
        self.recipients.push(Recipient {
            address: address.to_owned(),
            original: address.to_owned(),
            ..Recipient::default()
        });
        let last = self.recipients.len() - 1;
        &mut self.recipients[last]
    }

    /// Sets an attribute, replacing an earlier value of the same name.
    pub fn set_attribute(&mut self, name: &str, value: &str) {
        match self.attributes.iter_mut().find(|a| a.name == name) {
            Some(a) => value.clone_into(&mut a.value),
            None => self.attributes.push(Attribute {
                name: name.to_owned(),
                value: value.to_owned(),
            }),
        }
    }

    /// The value of an attribute.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.value.as_str())
    }

    /// Checks the envelope against the format's limits; names the first
    /// field over its limit.
    pub(crate) fn check_limits(&self) -> Result<(), (&'static str, u64)> {
        if self.recipients.len() > MAX_RECIPIENTS as usize {
            return Err(("recipient count", u64::from(MAX_RECIPIENTS)));
        }
        if self.attributes.len() > MAX_ATTRIBUTES {
            return Err(("attribute count", MAX_ATTRIBUTES as u64));
        }
        let long = |s: &str| s.len() > MAX_FIELD_LEN;
        let field = MAX_FIELD_LEN as u64;
        if long(&self.sender) {
            return Err(("sender", field));
        }
        if self.dsn_envid.as_deref().is_some_and(long) {
            return Err(("dsn envid", field));
        }
        for r in &self.recipients {
            if long(&r.address) || long(&r.original) || r.dsn_orcpt.as_deref().is_some_and(long) {
                return Err(("recipient field", field));
            }
        }
        for a in &self.attributes {
            if long(&a.name) || long(&a.value) {
                return Err(("attribute", field));
            }
        }
        Ok(())
    }
}

/// Whether a recipient still needs delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecipientState {
    /// Not yet delivered (or deferred): must be tried again.
    Pending,
    /// Delivered, bounced, or otherwise finished: never tried again.
    Done,
}

impl RecipientState {
    pub(crate) fn to_byte(self) -> u8 {
        match self {
            RecipientState::Pending => STATE_PENDING,
            RecipientState::Done => STATE_DONE,
        }
    }
}

/// The state a byte of the state table stands for, if any.
pub(crate) fn state_from_byte(b: u8) -> Option<RecipientState> {
    match b {
        STATE_PENDING => Some(RecipientState::Pending),
        STATE_DONE => Some(RecipientState::Done),
        _ => None,
    }
}

/// The section offsets of a queue file, derived from its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) nrcpt: u32,
    pub(crate) content_len: u64,
    pub(crate) envelope_len: u32,
    pub(crate) content_crc: u32,
}

impl Layout {
    pub(crate) fn content_offset(&self) -> u64 {
        HEADER_LEN
    }
    pub(crate) fn envelope_offset(&self) -> u64 {
        HEADER_LEN + self.content_len
    }
    pub(crate) fn state_offset(&self) -> u64 {
        self.envelope_offset() + u64::from(self.envelope_len)
    }
    pub(crate) fn end_offset(&self) -> u64 {
        self.state_offset() + u64::from(self.nrcpt)
    }
    pub(crate) fn file_len(&self) -> u64 {
        self.end_offset() + END_LEN
    }

    /// The header for this layout; `envelope` is the encoded envelope.
    pub(crate) fn header(&self, envelope: &[u8]) -> [u8; HEADER_LEN as usize] {
        let mut h = [0u8; HEADER_LEN as usize];
        h[0..8].copy_from_slice(&MAGIC);
        h[8..10].copy_from_slice(&VERSION.to_le_bytes());
        h[10..12].copy_from_slice(&(HEADER_LEN as u16).to_le_bytes());
        h[12..16].copy_from_slice(&self.nrcpt.to_le_bytes());
        h[16..24].copy_from_slice(&self.content_offset().to_le_bytes());
        h[24..32].copy_from_slice(&self.content_len.to_le_bytes());
        h[32..40].copy_from_slice(&self.envelope_offset().to_le_bytes());
        h[40..44].copy_from_slice(&self.envelope_len.to_le_bytes());
        h[44..48].copy_from_slice(&self.content_crc.to_le_bytes());
        h[48..56].copy_from_slice(&self.state_offset().to_le_bytes());
        let mut crc = Crc32c::new();
        crc.update(&h[0..60]);
        crc.update(envelope);
        h[60..64].copy_from_slice(&crc.finish().to_le_bytes());
        h
    }

    /// The end marker for this layout.
    pub(crate) fn end_marker(&self) -> [u8; END_LEN as usize] {
        let mut e = [0u8; END_LEN as usize];
        e[0..4].copy_from_slice(&END_MAGIC);
        e[4..8].copy_from_slice(&self.nrcpt.to_le_bytes());
        e[8..16].copy_from_slice(&self.file_len().to_le_bytes());
        e
    }
}

/// Encodes an envelope record.
pub(crate) fn encode_envelope(envelope: &Envelope) -> Result<Vec<u8>, (&'static str, u64)> {
    envelope.check_limits()?;
    let bytes = postcard::to_stdvec(envelope).map_err(|_| ("envelope", MAX_ENVELOPE_LEN))?;
    if bytes.len() as u64 > MAX_ENVELOPE_LEN {
        return Err(("envelope", MAX_ENVELOPE_LEN));
    }
    Ok(bytes)
}

/// Random access to the bytes of a queue file: a `File` or, in tests and
/// fuzzing, a byte slice. One parser serves both.
pub(crate) trait Source {
    /// Fills `buf` from `offset`; an error if the source ends first.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Reads what is available at `offset`, up to `buf.len()`.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
}

impl Source for std::fs::File {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self, buf, offset)
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        loop {
            match std::os::unix::fs::FileExt::read_at(self, buf, offset) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }
}

impl Source for [u8] {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let n = self.read_at(buf, offset)?;
        if n == buf.len() {
            Ok(())
        } else {
            Err(io::ErrorKind::UnexpectedEof.into())
        }
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let avail = self.get(start..).unwrap_or(&[]);
        let n = avail.len().min(buf.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), avail.get(..n)) {
            dst.copy_from_slice(src);
        }
        Ok(n)
    }
}

impl Source for &[u8] {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        (**self).read_exact_at(buf, offset)
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        (**self).read_at(buf, offset)
    }
}

/// Why parsing stopped: a problem at an offset, or an I/O error.
#[derive(Debug)]
pub(crate) enum Fault {
    Bad { offset: u64, problem: Problem },
    Io(io::Error),
}

fn bad(offset: u64, problem: Problem) -> Fault {
    Fault::Bad { offset, problem }
}

/// A checked queue file: its layout, envelope and recipient states.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub(crate) layout: Layout,
    pub(crate) envelope: Envelope,
    pub(crate) states: Vec<RecipientState>,
}

fn read_section(src: &(impl Source + ?Sized), buf: &mut [u8], offset: u64) -> Result<(), Fault> {
    src.read_exact_at(buf, offset).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            bad(offset, Problem::Truncated)
        } else {
            Fault::Io(e)
        }
    })
}

fn le_u16(b: &[u8], at: usize) -> u16 {
    let mut a = [0u8; 2];
    if let Some(s) = b.get(at..at + 2) {
        a.copy_from_slice(s);
    }
    u16::from_le_bytes(a)
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

/// Checks the header against the file size and the limits.
fn parse_header(h: &[u8; HEADER_LEN as usize], size: u64) -> Result<Layout, Fault> {
    if h[0..8] != MAGIC {
        return Err(bad(0, Problem::BadMagic));
    }
    let version = le_u16(h, 8);
    if version != VERSION {
        return Err(bad(8, Problem::UnsupportedVersion(version)));
    }
    if u64::from(le_u16(h, 10)) != HEADER_LEN {
        return Err(bad(10, Problem::BadLayout));
    }
    let nrcpt = le_u32(h, 12);
    if nrcpt > MAX_RECIPIENTS {
        let limit = u64::from(MAX_RECIPIENTS);
        return Err(bad(
            12,
            Problem::TooLarge {
                what: "recipient count",
                limit,
            },
        ));
    }
    if le_u64(h, 16) != HEADER_LEN {
        return Err(bad(16, Problem::BadLayout));
    }
    let content_len = le_u64(h, 24);
    if content_len > MAX_CONTENT_LEN {
        let limit = MAX_CONTENT_LEN;
        return Err(bad(
            24,
            Problem::TooLarge {
                what: "content",
                limit,
            },
        ));
    }
    let envelope_len = le_u32(h, 40);
    if u64::from(envelope_len) > MAX_ENVELOPE_LEN {
        let limit = MAX_ENVELOPE_LEN;
        return Err(bad(
            40,
            Problem::TooLarge {
                what: "envelope",
                limit,
            },
        ));
    }
    if le_u32(h, 56) != 0 {
        return Err(bad(56, Problem::BadLayout));
    }
    // All lengths are bounded above, so this arithmetic cannot overflow.
    let layout = Layout {
        nrcpt,
        content_len,
        envelope_len,
        content_crc: le_u32(h, 44),
    };
    if le_u64(h, 32) != layout.envelope_offset() {
        return Err(bad(32, Problem::BadLayout));
    }
    if le_u64(h, 48) != layout.state_offset() {
        return Err(bad(48, Problem::BadLayout));
    }
    if size != layout.file_len() {
        let problem = Problem::BadSize {
            expected: layout.file_len(),
            actual: size,
        };
        return Err(bad(size.min(layout.file_len()), problem));
    }
    Ok(layout)
}

/// Decodes the envelope and checks it against the header.
fn decode_envelope(bytes: &[u8], layout: &Layout) -> Result<Envelope, Fault> {
    let at = layout.envelope_offset();
    let (envelope, rest) =
        postcard::take_from_bytes::<Envelope>(bytes).map_err(|_| bad(at, Problem::BadEnvelope))?;
    if !rest.is_empty() {
        return Err(bad(at, Problem::BadEnvelope));
    }
    if let Err((what, limit)) = envelope.check_limits() {
        return Err(bad(at, Problem::TooLarge { what, limit }));
    }
    if envelope.recipients.len() != layout.nrcpt as usize {
        return Err(bad(12, Problem::RecipientCount));
    }
    Ok(envelope)
}

/// Parses and checks everything but the content of a queue file of `size`
/// bytes (the content is checked as it is read, see [`ContentReader`]).
pub(crate) fn parse(src: &(impl Source + ?Sized), size: u64) -> Result<Parsed, Fault> {
    if size < HEADER_LEN {
        return Err(bad(size, Problem::Truncated));
    }
    let mut h = [0u8; HEADER_LEN as usize];
    read_section(src, &mut h, 0)?;
    let layout = parse_header(&h, size)?;

    // Bounded by MAX_ENVELOPE_LEN and, via the size check, by the file.
    let mut envelope_bytes = vec![0u8; layout.envelope_len as usize];
    read_section(src, &mut envelope_bytes, layout.envelope_offset())?;
    let mut crc = Crc32c::new();
    crc.update(&h[0..60]);
    crc.update(&envelope_bytes);
    if crc.finish() != le_u32(&h, 60) {
        return Err(bad(60, Problem::EnvelopeChecksum));
    }
    let envelope = decode_envelope(&envelope_bytes, &layout)?;
    drop(envelope_bytes);

    let mut state_bytes = vec![0u8; layout.nrcpt as usize];
    read_section(src, &mut state_bytes, layout.state_offset())?;
    let mut states = Vec::with_capacity(state_bytes.len());
    for (i, &b) in state_bytes.iter().enumerate() {
        match state_from_byte(b) {
            Some(s) => states.push(s),
            None => {
                let offset = layout.state_offset() + i as u64;
                return Err(bad(offset, Problem::BadRecipientState(b)));
            }
        }
    }

    let mut end = [0u8; END_LEN as usize];
    read_section(src, &mut end, layout.end_offset())?;
    if end != layout.end_marker() {
        return Err(bad(layout.end_offset(), Problem::BadEndMarker));
    }
    Ok(Parsed {
        layout,
        envelope,
        states,
    })
}

/// Offset of recipient `index`'s state byte.
pub(crate) fn state_offset(layout: &Layout, index: usize) -> u64 {
    layout.state_offset() + index as u64
}

/// Streams the content section of a checked queue file.
///
/// Reads return the stored bytes in order. The content checksum is verified
/// when the end is reached: if it does not match, the read that would
/// return end-of-file returns an `InvalidData` error instead, so a consumer
/// must not commit a delivery until it has read to the end without error.
pub struct ContentReader<'a> {
    src: &'a (dyn Source + Sync),
    start: u64,
    len: u64,
    pos: u64,
    crc: Crc32c,
    expected: u32,
}

impl<'a> ContentReader<'a> {
    pub(crate) fn new(src: &'a (dyn Source + Sync), layout: &Layout) -> ContentReader<'a> {
        ContentReader {
            src,
            start: layout.content_offset(),
            len: layout.content_len,
            pos: 0,
            crc: Crc32c::new(),
            expected: layout.content_crc,
        }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> u64 {
        self.len - self.pos
    }
}

impl io::Read for ContentReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let remaining = self.len - self.pos;
        if remaining == 0 {
            if buf.is_empty() {
                return Ok(0);
            }
            return if self.crc.finish() == self.expected {
                Ok(0)
            } else {
                Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    Problem::ContentChecksum.to_string(),
                ))
            };
        }
        let want = usize::try_from(remaining)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let Some(dst) = buf.get_mut(..want) else {
            return Ok(0);
        };
        let n = self.src.read_at(dst, self.start + self.pos)?;
        if n == 0 && want > 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                Problem::Truncated.to_string(),
            ));
        }
        if let Some(got) = dst.get(..n) {
            self.crc.update(got);
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl std::fmt::Debug for ContentReader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContentReader")
            .field("start", &self.start)
            .field("len", &self.len)
            .field("pos", &self.pos)
            .finish()
    }
}

/// Builds a whole queue file in memory (for tests and fuzz seeds).
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn build(envelope: &Envelope, content: &[u8]) -> Vec<u8> {
    let env = encode_envelope(envelope).unwrap_or_default();
    let layout = Layout {
        nrcpt: envelope.recipients.len() as u32,
        content_len: content.len() as u64,
        envelope_len: env.len() as u32,
        content_crc: crate::crc::crc32c(content),
    };
    let mut out = Vec::new();
    out.extend_from_slice(&layout.header(&env));
    out.extend_from_slice(content);
    out.extend_from_slice(&env);
    out.extend(std::iter::repeat_n(
        STATE_PENDING,
        envelope.recipients.len(),
    ));
    out.extend_from_slice(&layout.end_marker());
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn dsn_ret_keywords_round_trip() {
        for ret in [DsnRet::Full, DsnRet::Headers] {
            assert_eq!(DsnRet::parse(ret.as_str()), Some(ret));
            assert_eq!(DsnRet::parse(&ret.as_str().to_lowercase()), Some(ret));
        }
        assert_eq!(DsnRet::parse("HEADERS"), None);
        assert_eq!(DsnRet::parse(""), None);
    }

    pub(crate) fn sample_envelope(n: usize) -> Envelope {
        let mut e = Envelope::new(
            "sender@example.org",
            UNIX_EPOCH + Duration::new(1_763_900_000, 5_000),
        );
        for i in 0..n {
            let r = e.add_recipient(&format!("rcpt{i}@example.net"));
            r.dsn_notify = dsn_notify::FAILURE | dsn_notify::DELAY;
            r.dsn_orcpt = Some(format!("rfc822;orig{i}@example.net"));
        }
        e.set_attribute(attr::CLIENT_NAME, "mx.example.com");
        e.set_attribute(attr::CLIENT_ADDRESS, "192.0.2.1");
        e.dsn_envid = Some("ENV123".into());
        e.dsn_ret = Some(DsnRet::Headers);
        e
    }

    /// Parses and reads everything; the content on success.
    pub(crate) fn check(bytes: &[u8]) -> Result<(Envelope, Vec<RecipientState>, Vec<u8>), String> {
        let p = parse(bytes, bytes.len() as u64).map_err(|f| format!("{f:?}"))?;
        let mut content = Vec::new();
        ContentReader::new(&bytes, &p.layout)
            .read_to_end(&mut content)
            .map_err(|e| e.to_string())?;
        Ok((p.envelope, p.states, content))
    }

    #[test]
    fn built_file_parses() {
        let env = sample_envelope(3);
        let bytes = build(&env, b"Subject: hi\n\nbody\n");
        let (e, s, c) = check(&bytes).unwrap();
        assert_eq!(e, env);
        assert_eq!(s, vec![RecipientState::Pending; 3]);
        assert_eq!(c, b"Subject: hi\n\nbody\n");
    }

    #[test]
    fn every_truncation_and_flip_is_rejected() {
        let env = sample_envelope(3);
        let bytes = build(&env, b"Subject: hi\n\nbody\n");
        for cut in 0..bytes.len() {
            assert!(check(&bytes[..cut]).is_err(), "truncated at {cut} accepted");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(check(&longer).is_err());
        for at in 0..bytes.len() {
            for mask in [0x01u8, 0x80, 0xff, 0x14] {
                let mut m = bytes.clone();
                m[at] ^= mask;
                if let Ok((e, s, c)) = check(&m) {
                    // A two-bit flip can turn 'P' into 'D' in the state
                    // table, which is outside the checksum by design.
                    let flipped_state = s.contains(&RecipientState::Done);
                    assert!(
                        flipped_state && mask == 0x14,
                        "flip {mask:#x} at {at} accepted"
                    );
                    assert_eq!(e, env);
                    assert_eq!(c, b"Subject: hi\n\nbody\n");
                }
            }
        }
    }

    #[test]
    fn limits_refuse_oversized_envelopes() {
        let mut e = sample_envelope(1);
        e.sender = "x".repeat(MAX_FIELD_LEN + 1);
        assert!(encode_envelope(&e).is_err());
    }
}
