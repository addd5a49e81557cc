//! The streaming command parser. Bytes go in as they arrive; [`Parser::feed`]
//! answers with a complete [`Command`], "need more bytes", "send a
//! continuation request" (a synchronizing literal `{n}` was announced and
//! nothing follows yet), a BAD for one command, or a fatal error that ends
//! the session. Literal sizes are checked before any literal byte is read,
//! and lines, whole commands and nesting are bounded.
//!
//! Framing (this file) finds where a command ends: lines, and after a line
//! ending in `{n}`, `{n+}` (LITERAL+) or `{n-}` (LITERAL-), n octets of
//! literal. The grammar proper (`command`, `fetch`, `search`, `seqset`,
//! `lexer`) then parses the complete command from one slice.

pub mod command;
pub mod fetch;
pub mod lexer;
pub mod search;
pub mod seqset;
pub mod types;

pub use lexer::ParseError;
pub use types::*;

/// Bounds on what a client may send.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest line (without literals), octets.
    pub max_line: usize,
    /// Largest literal accepted (APPEND's message size limit).
    pub max_literal: u64,
    /// Total non-literal octets of one command.
    pub max_command: usize,
    /// Deepest nesting of parentheses and NOT/OR.
    pub max_depth: usize,
    /// Total literal octets in one command other than the largest one.
    pub max_literals: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line: 65_536,
            max_literal: 50 * 1024 * 1024,
            max_command: 262_144,
            max_depth: 64,
            max_literals: 64 * 1024 * 1024,
        }
    }
}

/// What [`Parser::feed`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A complete command.
    Command(Command),
    /// One bad command: answer `tag BAD text` (or `* BAD` without a tag)
    /// and carry on.
    Bad {
        /// The tag, when one could be read.
        tag: Option<String>,
        /// Why.
        text: &'static str,
        /// The command was refused for a literal above the limit (APPEND
        /// answers `NO [TOOBIG]` then).
        too_big: bool,
    },
    /// More bytes are needed.
    NeedMore,
    /// Send a continuation request (`+ Ready`), then feed again.
    Continue,
    /// The client broke the protocol beyond repair: say BYE and close.
    Fatal(&'static str),
}

/// The streaming parser's state between calls: how far the command
/// being received has been framed, so that bytes arriving one at a time
/// cost no rescanning (a slow sender cannot make framing quadratic).
#[derive(Debug, Default)]
pub struct Parser {
    limits: Limits,
    /// Start of the line not yet complete (or of a literal's data).
    pos: usize,
    /// No LF before this offset in the current line.
    searched: usize,
    /// The end of the literal whose data is awaited.
    literal_end: Option<usize>,
    /// Non-literal octets of the command so far.
    text: usize,
    /// Literal octets of the command so far.
    literals: u64,
}

/// A literal announcement at the end of a line: size and synchronizing?
fn literal_suffix(line: &[u8]) -> Option<(Option<u64>, bool, bool)> {
    let body = line.strip_suffix(b"}")?;
    let open = body.iter().rposition(|&c| c == b'{')?;
    let mut inner = &body[open + 1..];
    let mut sync = true;
    let mut minus = false;
    if let Some(r) = inner.strip_suffix(b"+") {
        inner = r;
        sync = false;
    } else if let Some(r) = inner.strip_suffix(b"-") {
        inner = r;
        sync = false;
        minus = true;
    }
    if inner.is_empty() || !inner.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = if inner.len() > 19 {
        None
    } else {
        std::str::from_utf8(inner).ok().and_then(|s| s.parse().ok())
    };
    Some((n, sync, minus))
}

impl Parser {
    /// A parser with these limits.
    pub fn new(limits: Limits) -> Self {
        Parser {
            limits,
            ..Parser::default()
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn reset(&mut self) {
        *self = Parser::new(self.limits);
    }

    /// Look at the buffered input `buf`; return how many octets to drop
    /// from its front and what was found. `NeedMore` and `Continue` consume
    /// nothing: call again with the same bytes plus what arrives next.
    pub fn feed(&mut self, buf: &[u8]) -> (usize, Event) {
        if self.pos > buf.len() || self.searched > buf.len() {
            self.reset(); // not the bytes we saw before: frame afresh
        }
        loop {
            if let Some(end) = self.literal_end {
                if buf.len() < end {
                    return (0, Event::NeedMore);
                }
                self.literal_end = None;
                self.pos = end;
                self.searched = end;
            }
            let from = self.searched.max(self.pos);
            let Some(off) = buf[from..].iter().position(|&c| c == b'\n') else {
                self.searched = buf.len();
                if buf.len() - self.pos > self.limits.max_line {
                    self.reset();
                    return (0, Event::Fatal("Line too long"));
                }
                return (0, Event::NeedMore);
            };
            let nl = from + off;
            let line = &buf[self.pos..nl];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.len() > self.limits.max_line {
                self.reset();
                return (0, Event::Fatal("Line too long"));
            }
            self.text += line.len();
            if self.text > self.limits.max_command {
                self.reset();
                return (0, Event::Fatal("Command too long"));
            }
            if let Some((n, sync, minus)) = literal_suffix(line) {
                let over = match n {
                    None => true,
                    Some(n) => {
                        n > self.limits.max_literal
                            || (minus && n > 4096)
                            || self.literals.saturating_add(n)
                                > self
                                    .limits
                                    .max_literals
                                    .saturating_add(self.limits.max_literal)
                    }
                };
                if over {
                    self.reset();
                    if sync {
                        let tag = Self::tag_of(buf);
                        return (
                            nl + 1,
                            Event::Bad {
                                tag,
                                text: "Literal too large",
                                too_big: true,
                            },
                        );
                    }
                    return (0, Event::Fatal("Literal too large"));
                }
                let n = n.unwrap_or(0);
                self.literals += n;
                let start = nl + 1;
                let Some(end) = usize::try_from(n).ok().and_then(|n| start.checked_add(n)) else {
                    self.reset();
                    return (0, Event::Fatal("Literal too large"));
                };
                self.pos = start;
                self.searched = start;
                self.literal_end = Some(end);
                // Ask for a synchronizing literal unless its data is already here.
                if sync && buf.len() == start {
                    return (0, Event::Continue);
                }
                continue;
            }
            self.reset();
            let cmd_end = nl - usize::from(buf[..nl].ends_with(b"\r"));
            let cmd = &buf[..cmd_end];
            if cmd.is_empty() {
                return (
                    nl + 1,
                    Event::Bad {
                        tag: None,
                        text: "Empty command",
                        too_big: false,
                    },
                );
            }
            let ev = match command::parse_command(cmd, self.limits.max_depth) {
                Ok(c) => Event::Command(c),
                Err((tag, e)) => Event::Bad {
                    tag,
                    text: e.0,
                    too_big: false,
                },
            };
            return (nl + 1, ev);
        }
    }

    fn tag_of(buf: &[u8]) -> Option<String> {
        let mut c = lexer::Cursor::new(buf, 1);
        command::parse_tag(&mut c).ok()
    }
}

/// Take one line (AUTHENTICATE responses, IDLE's DONE): the line without
/// CRLF and the octets consumed, `None` while incomplete, `Err` when longer
/// than `max`.
pub fn take_line(buf: &[u8], max: usize) -> Option<Result<(&[u8], usize), ParseError>> {
    match buf.iter().position(|&c| c == b'\n') {
        None if buf.len() > max => Some(Err(ParseError("Line too long"))),
        None => None,
        Some(nl) if nl > max => Some(Err(ParseError("Line too long"))),
        Some(nl) => {
            let l = &buf[..nl];
            Some(Ok((l.strip_suffix(b"\r").unwrap_or(l), nl + 1)))
        }
    }
}

#[cfg(test)]
mod tests;
