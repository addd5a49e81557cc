//! The content processor (Postfix's cleanup_message with mime_state's
//! header/body split): reads the message as it streams in, cut into
//! records of at most line_length_limit bytes, collects each logical
//! header (continuation lines included, at most header_size_limit bytes:
//! the excess is discarded), applies header_checks, address rewriting and
//! message_drop_headers, adds the missing headers at the end of the header
//! block, applies body_checks to the body, and writes the result.
//!
//! Nothing here can panic on any input: NUL bytes, bare CRs, 8-bit text
//! and endless lines are bytes like any other. A non-header line in the
//! header block starts the body, and an empty line is inserted before it
//! so the stored message has a proper header/body separator.

use std::io::Write;
use std::time::SystemTime;

use proto::cleanup::flags;
use proto::rewrite::Context;

use crate::addr::{Mapper, Role};
use crate::headers::{Kind, header_name, header_value, rewrite_address_list};
use crate::mime::{self, Boundary, PartType};
use crate::settings::{EXTRACT_RECIPIENT_LIMIT, Settings};
use crate::stamp;
use tables::Maps;

/// Facts about the message that the processor needs.
#[derive(Debug, Clone)]
pub(crate) struct Info {
    /// The queue id.
    pub(crate) queue_id: String,
    /// The envelope sender after rewriting (internal form; empty = `<>`).
    pub(crate) sender: String,
    /// Bits from [`proto::cleanup::flags`].
    pub(crate) flags: u32,
    /// Full name for a From header we add.
    pub(crate) full_name: Option<String>,
    /// `local` or `name[address]`, for log lines.
    pub(crate) origin: String,
    /// `proto=... helo=<...>` for log lines, or empty.
    pub(crate) log_extra: String,
    /// The first envelope recipient, for log lines.
    pub(crate) first_recipient: Option<String>,
    /// Header address rewriting context; `None` leaves header addresses
    /// alone (and adds no missing headers unless always_add_missing_headers).
    pub(crate) header_rewrite: Option<Context>,
    /// Our Received header (lines separated by `\n`, no final newline).
    pub(crate) received: String,
    /// Arrival time (Date and Message-Id).
    pub(crate) arrival: SystemTime,
}

/// Why a message cannot be queued.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Refused with this enhanced status and text (REJECT, too many hops).
    Reject {
        /// `5.7.1`, `4.7.1`, `5.4.0`...
        status: String,
        /// Text for the client.
        text: String,
    },
    /// message_size_limit was crossed.
    TooBig,
    /// Writing the queue file failed.
    Write(std::io::Error),
    /// A header address could not be rewritten or a check table failed.
    Temporary(String),
}

/// What a header_checks or body_checks action asks for.
enum Act {
    Keep,
    Drop,
    Replace(String),
    Prepend(String),
}

/// Which missing-header checks a header satisfies.
#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    message_id: bool,
    resent_message_id: bool,
    date: bool,
    resent_date: bool,
    from: bool,
    resent_from: bool,
    visible_recipient: bool,
}

/// The content processor of one message.
#[derive(Debug)]
pub(crate) struct Message<'s> {
    settings: &'s Settings,
    info: Info,
    partial: Vec<u8>,
    mid_line: bool,
    started: bool,
    in_body: bool,
    header: Option<Vec<u8>>,
    seen: Seen,
    resent: bool,
    hops: usize,
    extracted: Vec<String>,
    extracted_resent: Vec<String>,
    body_offset: u64,
    written: u64,
    filter: bool,
    discard: bool,
    hold: bool,
    failure: Option<Failure>,
    message_id: Option<String>,
    last_byte: Option<u8>,
    primary_type: PartType,
    mime: Option<MimeState>,
}

/// Where the body is in its MIME structure (only followed while
/// mime_header_checks or nested_header_checks apply).
#[derive(Debug, Default)]
struct MimeState {
    /// Open multipart boundaries, innermost last.
    boundaries: Vec<Vec<u8>>,
    /// Inside the header block of a body part.
    part: Option<PartHead>,
}

/// The header block of a body part being read.
#[derive(Debug, Default)]
struct PartHead {
    /// The headers of a message/rfc822 part (nested_header_checks).
    nested: bool,
    /// The logical header being collected.
    current: Option<Vec<u8>>,
    /// What the part's Content-Type said.
    kind: PartType,
}

impl<'s> Message<'s> {
    /// A processor for one message.
    pub(crate) fn new(settings: &'s Settings, info: Info) -> Message<'s> {
        let filter = info.flags & flags::NO_CHECKS == 0;
        Message {
            settings,
            info,
            partial: Vec::new(),
            mid_line: false,
            started: false,
            in_body: false,
            header: None,
            seen: Seen::default(),
            resent: false,
            hops: 0,
            extracted: Vec::new(),
            extracted_resent: Vec::new(),
            body_offset: 0,
            written: 0,
            filter,
            discard: false,
            hold: false,
            failure: None,
            message_id: None,
            last_byte: None,
            primary_type: PartType::Other,
            mime: None,
        }
    }

    /// The failure that stops this message, if any.
    #[cfg(test)]
    pub(crate) fn failure(&self) -> Option<&Failure> {
        self.failure.as_ref()
    }

    /// Takes the failure out.
    pub(crate) fn take_failure(&mut self) -> Option<Failure> {
        self.failure.take()
    }

    /// A DISCARD action matched.
    pub(crate) fn discarded(&self) -> bool {
        self.discard
    }

    /// A HOLD action matched.
    pub(crate) fn held(&self) -> bool {
        self.hold
    }

    /// The Message-Id value (with angle brackets) seen or added.
    pub(crate) fn message_id(&self) -> Option<&str> {
        self.message_id.as_deref()
    }

    /// Content bytes written.
    #[cfg(test)]
    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    /// Recipients from headers (sendmail -t): Resent-To/Cc/Bcc when the
    /// message has Resent- headers, else To/Cc/Bcc. Internal forms.
    pub(crate) fn extracted(&mut self) -> Vec<String> {
        if self.resent && !self.extracted_resent.is_empty() {
            std::mem::take(&mut self.extracted_resent)
        } else {
            std::mem::take(&mut self.extracted)
        }
    }

    /// Processes the next piece of content.
    pub(crate) fn feed(&mut self, data: &[u8], mapper: &mut Mapper<'_>, out: &mut dyn Write) {
        self.start(mapper, out);
        let limit = self.settings.line_length_limit;
        let mut rest = data;
        while !rest.is_empty() {
            if self.failure.is_some() {
                return;
            }
            if self.in_body && self.partial.is_empty() && !self.line_mode() {
                // Nothing looks at body lines any more: copy as is.
                self.body_offset = self.body_offset.saturating_add(rest.len() as u64);
                self.emit(rest, out);
                return;
            }
            let room = limit.saturating_sub(self.partial.len()).max(1);
            let take = room.min(rest.len());
            let (window, after) = rest.split_at(take);
            match window.iter().position(|&b| b == b'\n') {
                Some(p) => {
                    self.partial
                        .extend_from_slice(window.get(..p).unwrap_or_default());
                    rest = rest.get(p + 1..).unwrap_or_default();
                    self.record(true, mapper, out);
                }
                None => {
                    self.partial.extend_from_slice(window);
                    rest = after;
                    if self.partial.len() >= limit {
                        self.record(false, mapper, out);
                    }
                }
            }
        }
    }

    /// The end of the content: a final line without newline is completed,
    /// and a message that is all header gets its missing headers.
    pub(crate) fn end(&mut self, mapper: &mut Mapper<'_>, out: &mut dyn Write) {
        self.start(mapper, out);
        if !self.partial.is_empty() {
            self.record(true, mapper, out);
        }
        if let Some(mut m) = self.mime.take()
            && let Some(part) = m.part.as_mut()
            && let Some(h) = part.current.take()
        {
            let nested = part.nested;
            self.part_header(h, nested, &mut part.kind, out);
        }
        if !self.in_body {
            self.flush_header(mapper, out);
            self.headers_done(out);
            self.in_body = true;
        }
        // The stored message ends with a complete line.
        if self.last_byte.is_some_and(|b| b != b'\n') {
            self.emit(b"\n", out);
        }
    }

    /// Body lines still need looking at: body_checks apply at this point
    /// of the body, or MIME part headers are checked.
    fn line_mode(&self) -> bool {
        self.filter
            && (self.mime.is_some()
                || (!self.settings.body_checks.is_empty()
                    && self.body_offset < self.settings.body_checks_size_limit))
    }

    /// Our Received header goes first, through the same header processing.
    fn start(&mut self, mapper: &mut Mapper<'_>, out: &mut dyn Write) {
        if self.started {
            return;
        }
        self.started = true;
        let received = std::mem::take(&mut self.info.received);
        for line in received.split('\n').filter(|l| !l.is_empty()) {
            self.partial.extend_from_slice(line.as_bytes());
            self.record(true, mapper, out);
        }
    }

    /// Handles one record (a line, or a piece of a long line when
    /// `complete` is false).
    fn record(&mut self, complete: bool, mapper: &mut Mapper<'_>, out: &mut dyn Write) {
        let line = std::mem::take(&mut self.partial);
        let mid_line = std::mem::replace(&mut self.mid_line, !complete);
        if self.failure.is_some() {
            return;
        }
        if self.in_body {
            if self.filter && self.mime.is_some() {
                self.mime_record(&line, complete, mid_line, out);
            } else {
                self.body_record(&line, complete, out);
            }
            // Keep the buffer's capacity for the next line.
            self.partial = line;
            self.partial.clear();
            return;
        }
        if mid_line {
            self.append_header(&line);
            return;
        }
        if line.is_empty() || line == b"\r" {
            self.flush_header(mapper, out);
            self.headers_done(out);
            self.in_body = true;
            self.emit(&line, out);
            self.emit(b"\n", out);
            return;
        }
        let first = line.first().copied().unwrap_or(0);
        if (first == b' ' || first == b'\t') && self.header.is_some() {
            self.append_header(b"\n");
            self.append_header(&line);
            return;
        }
        if header_name(&line).is_some() {
            self.flush_header(mapper, out);
            self.header = Some(line);
            return;
        }
        // Not a header: the body starts here, after the separator Postfix
        // would have wanted.
        self.flush_header(mapper, out);
        self.headers_done(out);
        self.in_body = true;
        self.emit(b"\n", out);
        if self.filter && self.mime.is_some() {
            self.mime_record(&line, complete, false, out);
        } else {
            self.body_record(&line, complete, out);
        }
    }

    /// Adds to the current header up to header_size_limit; the rest goes.
    fn append_header(&mut self, more: &[u8]) {
        let limit = self.settings.header_size_limit;
        if let Some(h) = self.header.as_mut() {
            let room = limit.saturating_sub(h.len());
            h.extend_from_slice(more.get(..room.min(more.len())).unwrap_or_default());
        }
    }

    /// Writes bytes to the queue file, counting them against
    /// message_size_limit.
    fn emit(&mut self, bytes: &[u8], out: &mut dyn Write) {
        if self.failure.is_some() {
            return;
        }
        if let Err(e) = out.write_all(bytes) {
            self.failure = Some(Failure::Write(e));
            return;
        }
        self.written = self.written.saturating_add(bytes.len() as u64);
        if let Some(&b) = bytes.last() {
            self.last_byte = Some(b);
        }
        let max = self.settings.message_size_limit;
        if max > 0 && self.written > max {
            self.failure = Some(Failure::TooBig);
        }
    }

    /// Processes one complete logical header.
    fn flush_header(&mut self, mapper: &mut Mapper<'_>, out: &mut dyn Write) {
        let Some(h) = self.header.take() else {
            return;
        };
        if self.failure.is_some() {
            return;
        }
        if header_name(&h).map(Kind::of) == Some(Kind::Received) {
            self.hops = self.hops.saturating_add(1);
        }
        let s = self.settings;
        let is_mime = header_name(&h).is_some_and(mime::is_mime_header);
        let (maps, map_name) = if is_mime {
            (&s.mime_header_checks, "mime_header_checks")
        } else {
            (&s.header_checks, "header_checks")
        };
        // A REPLACE may have changed the header name.
        let Some(mut h) = self.check_header(maps, map_name, h, out) else {
            return;
        };
        let kind = header_name(&h).map_or(Kind::Other, Kind::of);
        if header_name(&h).is_some_and(|n| n.eq_ignore_ascii_case("content-type")) {
            self.primary_type = mime::content_type(header_value(&h));
        }
        self.note_header(kind, &h);
        if self.failure.is_some() {
            return;
        }
        if let Some(context) = self.info.header_rewrite
            && (kind.is_sender() || kind.is_recipient())
        {
            let role = if kind.is_sender() {
                Role::HeaderSender
            } else {
                Role::HeaderRecipient
            };
            match rewrite_header(&h, |a| mapper.rewrite(role, context, a)) {
                Ok(Some(new)) => h = new,
                Ok(None) => {}
                Err(e) => {
                    maillog::warning!(
                        "{}: header address rewriting -- message not accepted, try again later: {e}",
                        self.info.queue_id
                    );
                    self.failure = Some(Failure::Temporary(e.to_string()));
                    return;
                }
            }
        }
        let name = header_name(&h).unwrap_or_default().to_ascii_lowercase();
        if self.settings.drop_headers.contains(&name) {
            return;
        }
        self.emit(&h, out);
        self.emit(b"\n", out);
    }

    /// Applies a header check table to one logical header: the header to
    /// keep (maybe replaced), or `None` when it goes (or the message
    /// failed). A PREPEND text is written before it.
    fn check_header(
        &mut self,
        maps: &Maps,
        map_name: &str,
        h: Vec<u8>,
        out: &mut dyn Write,
    ) -> Option<Vec<u8>> {
        if !self.filter || maps.is_empty() {
            return Some(h);
        }
        let text = String::from_utf8_lossy(&h).into_owned();
        let kept = match maps.lookup(&text) {
            Ok(Some(action)) => match self.act("header", &text, &action) {
                Act::Keep => Some(h),
                Act::Drop => None,
                Act::Replace(new) => Some(new.into_bytes()),
                Act::Prepend(text) => {
                    self.emit(text.as_bytes(), out);
                    self.emit(b"\n", out);
                    Some(h)
                }
            },
            Ok(None) => Some(h),
            Err(e) => {
                maillog::warning!(
                    "{}: {map_name} map lookup problem -- message not accepted, try again later: {e}",
                    self.info.queue_id
                );
                self.failure = Some(Failure::Temporary(e.to_string()));
                None
            }
        };
        kept.filter(|_| self.failure.is_none())
    }

    /// One complete header of a body part: mime_header_checks (MIME
    /// headers and multipart part headers) or nested_header_checks (the
    /// headers of an attached message), then out as it is.
    fn part_header(&mut self, h: Vec<u8>, nested: bool, kind: &mut PartType, out: &mut dyn Write) {
        let s = self.settings;
        let is_mime = header_name(&h).is_some_and(mime::is_mime_header);
        let (maps, map_name) = if nested && !is_mime {
            (&s.nested_header_checks, "nested_header_checks")
        } else {
            (&s.mime_header_checks, "mime_header_checks")
        };
        let Some(h) = self.check_header(maps, map_name, h, out) else {
            return;
        };
        if header_name(&h).is_some_and(|n| n.eq_ignore_ascii_case("content-type")) {
            *kind = mime::content_type(header_value(&h));
        }
        self.body_offset = self.body_offset.saturating_add(h.len() as u64 + 1);
        self.emit(&h, out);
        self.emit(b"\n", out);
    }

    /// A body record while the MIME structure is followed: part headers
    /// go to [`Message::part_header`], everything else to body_checks.
    fn mime_record(&mut self, line: &[u8], complete: bool, mid_line: bool, out: &mut dyn Write) {
        let Some(mut m) = self.mime.take() else {
            self.body_record(line, complete, out);
            return;
        };
        if let Some(part) = m.part.as_mut() {
            let limit = self.settings.header_size_limit;
            let append = |h: &mut Vec<u8>, more: &[u8]| {
                let room = limit.saturating_sub(h.len());
                h.extend_from_slice(more.get(..room.min(more.len())).unwrap_or_default());
            };
            let first = line.first().copied().unwrap_or(0);
            if mid_line || ((first == b' ' || first == b'\t') && part.current.is_some()) {
                if let Some(h) = part.current.as_mut() {
                    if !mid_line {
                        append(h, b"\n");
                    }
                    append(h, line);
                    self.mime = Some(m);
                    return;
                }
            } else if header_name(line).is_some() {
                if let Some(h) = part.current.take() {
                    self.part_header(h, part.nested, &mut part.kind, out);
                }
                part.current = Some(line.to_vec());
                self.mime = Some(m);
                return;
            } else {
                // The part's header block ends (normally at a blank line).
                if let Some(h) = part.current.take() {
                    self.part_header(h, part.nested, &mut part.kind, out);
                }
                let kind = std::mem::take(&mut part.kind);
                m.part = None;
                let blank = line.is_empty() || line == b"\r";
                match kind {
                    PartType::Multipart(b) if m.boundaries.len() < mime::NESTING_LIMIT => {
                        m.boundaries.push(b);
                    }
                    PartType::Message if blank => {
                        m.part = Some(PartHead {
                            nested: true,
                            ..PartHead::default()
                        });
                    }
                    _ => {}
                }
                if blank {
                    self.mime = Some(m);
                    self.body_offset = self.body_offset.saturating_add(line.len() as u64 + 1);
                    self.emit(line, out);
                    self.emit(b"\n", out);
                    return;
                }
            }
        }
        if !mid_line {
            match mime::boundary(line, &m.boundaries) {
                Boundary::Next(i) => {
                    m.boundaries.truncate(i + 1);
                    m.part = Some(PartHead::default());
                }
                Boundary::Close(i) => m.boundaries.truncate(i),
                Boundary::None => {}
            }
        }
        self.mime = Some(m);
        self.body_record(line, complete, out);
    }

    /// Bookkeeping for a header that stays: missing-header flags, the
    /// message-id log line, the hop count, recipient extraction.
    fn note_header(&mut self, kind: Kind, h: &[u8]) {
        let value = String::from_utf8_lossy(header_value(h));
        let value = value.trim();
        let qid = &self.info.queue_id;
        match kind {
            Kind::MessageId => {
                self.seen.message_id = true;
                maillog::info!("{qid}: message-id={}", maillog::printable(value, 200));
                self.message_id.get_or_insert_with(|| value.to_string());
            }
            Kind::ResentMessageId => {
                self.seen.resent_message_id = true;
                maillog::info!(
                    "{qid}: resent-message-id={}",
                    maillog::printable(value, 200)
                );
            }
            Kind::Date => self.seen.date = true,
            Kind::ResentDate => self.seen.resent_date = true,
            Kind::From => self.seen.from = true,
            Kind::ResentFrom => self.seen.resent_from = true,
            Kind::To | Kind::Cc | Kind::ResentTo | Kind::ResentCc => {
                self.seen.visible_recipient = true;
            }
            Kind::Received if self.hops >= self.settings.hopcount_limit => {
                maillog::warning!("{qid}: message rejected: hopcount exceeded");
                self.failure = Some(Failure::Reject {
                    status: "5.4.0".into(),
                    text: "too many hops".into(),
                });
            }
            _ => {}
        }
        if kind.is_resent() {
            self.resent = true;
        }
        if self.info.flags & flags::EXTRACT_RECIPIENTS != 0 {
            let list = match kind {
                Kind::To | Kind::Cc | Kind::Bcc => Some(&mut self.extracted),
                Kind::ResentTo | Kind::ResentCc | Kind::ResentBcc => {
                    Some(&mut self.extracted_resent)
                }
                _ => None,
            };
            if let Some(list) = list {
                for a in extract_addresses(value) {
                    if list.len() < EXTRACT_RECIPIENT_LIMIT {
                        list.push(a);
                    }
                }
            }
        }
    }

    /// The end of the header block: add what is missing.
    fn headers_done(&mut self, out: &mut dyn Write) {
        if self.failure.is_some() {
            return;
        }
        let s = self.settings;
        if self.filter && (!s.mime_header_checks.is_empty() || !s.nested_header_checks.is_empty()) {
            let mut m = MimeState::default();
            match std::mem::take(&mut self.primary_type) {
                PartType::Multipart(b) => m.boundaries.push(b),
                PartType::Message => {
                    m.part = Some(PartHead {
                        nested: true,
                        ..PartHead::default()
                    });
                }
                PartType::Other => {}
            }
            self.mime = Some(m);
        }
        let add = self.info.header_rewrite.is_some() || s.always_add_missing_headers;
        let resent = if self.resent { "Resent-" } else { "" };
        let qid = self.info.queue_id.clone();
        let has_mid = if self.resent {
            self.seen.resent_message_id
        } else {
            self.seen.message_id
        };
        if add && !has_mid {
            let mid = stamp::message_id(self.info.arrival, &qid, &s.myhostname);
            self.emit(format!("{resent}Message-Id: <{mid}>\n").as_bytes(), out);
            let what = if self.resent { "resent-" } else { "" };
            maillog::info!("{qid}: {what}message-id=<{mid}>");
            if self.resent {
                self.seen.resent_message_id = true;
            } else {
                self.seen.message_id = true;
                self.message_id = Some(format!("<{mid}>"));
            }
        }
        if !self.seen.message_id {
            maillog::info!("{qid}: message-id=<>");
        }
        let has_date = if self.resent {
            self.seen.resent_date
        } else {
            self.seen.date
        };
        if add && !has_date {
            let date = stamp::mail_date(self.info.arrival);
            self.emit(format!("{resent}Date: {date}\n").as_bytes(), out);
        }
        let has_from = if self.resent {
            self.seen.resent_from
        } else {
            self.seen.from
        };
        if add && !has_from {
            let from = from_header(&self.info.sender, self.info.full_name.as_deref());
            self.emit(format!("{resent}From: {from}\n").as_bytes(), out);
        }
        let witheld = &s.undisclosed_recipients_header;
        if add && !self.seen.visible_recipient && !witheld.is_empty() {
            if header_name(witheld.as_bytes()).is_some() {
                self.emit(format!("{witheld}\n").as_bytes(), out);
            } else {
                maillog::warning!(
                    "bad undisclosed_recipients_header header text \"{}\" -- need \"headername: headervalue\"",
                    maillog::printable(witheld, 100)
                );
            }
        }
    }

    /// One body record: body_checks (within body_checks_size_limit), then out.
    fn body_record(&mut self, line: &[u8], complete: bool, out: &mut dyn Write) {
        if self.failure.is_some() {
            return;
        }
        let offset = self.body_offset;
        self.body_offset = offset
            .saturating_add(line.len() as u64)
            .saturating_add(u64::from(complete));
        if self.filter
            && !self.settings.body_checks.is_empty()
            && offset < self.settings.body_checks_size_limit
        {
            let text = String::from_utf8_lossy(line).into_owned();
            match self.settings.body_checks.lookup(&text) {
                Ok(Some(action)) => match self.act("body", &text, &action) {
                    Act::Keep => {}
                    Act::Drop => return,
                    Act::Replace(new) => {
                        self.emit(new.as_bytes(), out);
                        if complete {
                            self.emit(b"\n", out);
                        }
                        return;
                    }
                    Act::Prepend(t) => {
                        self.emit(t.as_bytes(), out);
                        self.emit(b"\n", out);
                    }
                },
                Ok(None) => {}
                Err(e) => {
                    maillog::warning!(
                        "{}: body_checks map lookup problem -- message not accepted, try again later: {e}",
                        self.info.queue_id
                    );
                    self.failure = Some(Failure::Temporary(e.to_string()));
                }
            }
            if self.failure.is_some() {
                return;
            }
        }
        self.emit(line, out);
        if complete {
            self.emit(b"\n", out);
        }
    }

    /// Carries out a header_checks/body_checks action (Postfix's cleanup_act).
    fn act(&mut self, class: &str, content: &str, value: &str) -> Act {
        let value = value.trim();
        let (command, text) = match value.find([' ', '\t']) {
            Some(i) => (
                value.get(..i).unwrap_or_default(),
                value.get(i..).unwrap_or_default().trim(),
            ),
            None => (value, ""),
        };
        let map = if class == "header" {
            "header_checks"
        } else {
            "body_checks"
        };
        match command.to_ascii_uppercase().as_str() {
            "REJECT" => {
                let (status, text) = dsn_split("5.7.1", text, "message content rejected");
                let (status, text) = if status.starts_with(['4', '5']) {
                    (status, text)
                } else {
                    maillog::warning!("bad DSN action in {text} -- need 4.x.x or 5.x.x");
                    (format!("4{}", status.get(1..).unwrap_or_default()), text)
                };
                self.filter = false;
                self.log_action("reject", class, content, &format!("{status} {text}"));
                self.failure = Some(Failure::Reject { status, text });
                Act::Keep
            }
            "WARN" => {
                self.log_action("warning", class, content, text);
                Act::Keep
            }
            "INFO" => {
                self.log_action("info", class, content, text);
                Act::Keep
            }
            "DISCARD" => {
                self.log_action("discard", class, content, text);
                self.discard = true;
                self.filter = false;
                Act::Keep
            }
            "HOLD" => {
                if !self.hold && !self.discard {
                    self.log_action("hold", class, content, text);
                    self.hold = true;
                }
                Act::Keep
            }
            "PASS" => {
                self.log_action("pass", class, content, text);
                self.filter = false;
                Act::Keep
            }
            "PREPEND" | "REPLACE" => {
                let prepend = command.eq_ignore_ascii_case("PREPEND");
                if text.is_empty() {
                    maillog::warning!("{command} action without text in {map} map");
                    return Act::Keep;
                }
                if class == "header" && header_name(text.as_bytes()).is_none() {
                    maillog::warning!(
                        "bad {command} header text \"{}\" in {map} map -- need \"headername: headervalue\"",
                        maillog::printable(text, 100)
                    );
                    return Act::Keep;
                }
                let action = if prepend { "prepend" } else { "replace" };
                self.log_action(action, class, content, text);
                if prepend {
                    Act::Prepend(text.to_string())
                } else {
                    Act::Replace(text.to_string())
                }
            }
            "STRIP" => {
                self.log_action("strip", class, content, text);
                Act::Drop
            }
            "IGNORE" => Act::Drop,
            "DUNNO" | "OK" => Act::Keep,
            "FILTER" | "REDIRECT" | "BCC" => {
                maillog::warning!(
                    "unsupported command in {map} map: {}",
                    maillog::printable(value, 100)
                );
                Act::Keep
            }
            _ => {
                maillog::warning!(
                    "unknown command in {map} map: {}",
                    maillog::printable(value, 100)
                );
                Act::Keep
            }
        }
    }

    /// `QID: action: class CONTENT from ORIGIN; from=<s> to=<r>: text`.
    fn log_action(&self, action: &str, class: &str, content: &str, text: &str) {
        let i = &self.info;
        let mut line = format!(
            "{}: {action}: {class} {} from {};",
            i.queue_id,
            maillog::printable(content, 200),
            i.origin
        );
        line.push_str(&format!(" from=<{}>", maillog::printable(&i.sender, 200)));
        if let Some(r) = &i.first_recipient {
            line.push_str(&format!(" to=<{}>", maillog::printable(r, 200)));
        }
        line.push_str(&i.log_extra);
        if !text.is_empty() {
            line.push_str(": ");
            line.push_str(&maillog::printable(text, 200));
        }
        maillog::info!("{line}");
    }
}

/// Rewrites the addresses of one header; `None` when nothing changed.
fn rewrite_header<E>(
    h: &[u8],
    map: impl FnMut(&str) -> Result<String, E>,
) -> Result<Option<Vec<u8>>, E> {
    let value = header_value(h);
    let prefix_len = h.len().saturating_sub(value.len());
    let Ok(text) = std::str::from_utf8(value) else {
        return Ok(None);
    };
    Ok(rewrite_address_list(text, map)?.map(|new| {
        let mut out = h.get(..prefix_len).unwrap_or_default().to_vec();
        out.extend_from_slice(new.as_bytes());
        out
    }))
}

/// The addresses of a To/Cc/Bcc value, internal forms; lenient like
/// Postfix's tokenizer: when the list does not parse as a whole, each
/// comma-separated item that parses is taken.
pub(crate) fn extract_addresses(value: &str) -> Vec<String> {
    match address::parse_address_list(value) {
        Ok(list) => list.iter().map(|a| a.to_internal()).collect(),
        Err(_) => value
            .split(',')
            .filter_map(|item| address::parse_mailbox(item.trim()).ok())
            .filter(|a| !a.is_null())
            .map(|a| a.to_internal())
            .collect(),
    }
}

/// Splits an optional leading enhanced status code off `text` (Postfix's
/// dsn_prepend), giving `default` and `empty` when absent.
fn dsn_split(default: &str, text: &str, empty: &str) -> (String, String) {
    let text = text.trim();
    let (first, rest) = match text.find([' ', '\t']) {
        Some(i) => (
            text.get(..i).unwrap_or_default(),
            text.get(i..).unwrap_or_default().trim(),
        ),
        None => (text, ""),
    };
    let is_dsn = {
        let parts: Vec<&str> = first.split('.').collect();
        parts.len() == 3
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
            && parts.first().is_some_and(|p| p.len() == 1)
    };
    if is_dsn {
        let rest = if rest.is_empty() { empty } else { rest };
        (first.to_string(), rest.to_string())
    } else if text.is_empty() {
        (default.to_string(), empty.to_string())
    } else {
        (default.to_string(), text.to_string())
    }
}

/// The From header value for the sender: `"Full Name" <addr>` or `addr`
/// (`MAILER-DAEMON` for the null sender), as Postfix's standard
/// header_from_format writes it.
pub(crate) fn from_header(sender: &str, full_name: Option<&str>) -> String {
    let addr = if sender.is_empty() {
        "MAILER-DAEMON".to_string()
    } else {
        address::quote_822_local(sender)
    };
    let name = full_name
        .map(|n| n.replace(['\r', '\n'], " "))
        .filter(|n| !n.trim().is_empty());
    match name {
        Some(n) if !sender.is_empty() => {
            const SPECIALS: &[char] = &[
                '(', ')', '<', '>', '@', ',', ';', ':', '\\', '"', '.', '[', ']', '%', '!',
            ];
            let phrase = if !n.is_ascii() {
                // Postfix encodes a non-ASCII full name (full_name_encoding_charset).
                encode_word(n.trim())
            } else if n.contains(SPECIALS) {
                let escaped = n.replace('\\', "\\\\").replace('"', "\\\"");
                format!("\"{escaped}\"")
            } else {
                n.split_whitespace().collect::<Vec<_>>().join(" ")
            };
            format!("{phrase} <{addr}>")
        }
        _ => addr,
    }
}

/// An RFC 2047 encoded word, `=?utf-8?B?...?=`, split into several
/// words of at most 75 characters as the RFC asks.
fn encode_word(text: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    // 45 input bytes make 60 characters, plus 12 for the =?utf-8?B??=.
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in text.chars() {
        if chunk.len() + c.len_utf8() > 45 {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(chunk);
    }
    let encode = |bytes: &[u8]| {
        let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
        for group in bytes.chunks(3) {
            let b = [
                group.first().copied().unwrap_or(0),
                group.get(1).copied().unwrap_or(0),
                group.get(2).copied().unwrap_or(0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= group.len() {
                    let idx = ((n >> (18 - 6 * i)) & 63) as usize;
                    out.push(char::from(ALPHABET.get(idx).copied().unwrap_or(b'A')));
                } else {
                    out.push('=');
                }
            }
        }
        out
    };
    words
        .iter()
        .map(|w| format!("=?utf-8?B?{}?=", encode(w.as_bytes())))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests;
