//! One connection to one milter: connect, negotiate, send events with
//! their macros, read replies and end-of-message modifications.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use crate::Error;
use crate::mail::Edit;
use crate::packet::{self, Cursor};
use crate::settings::{Endpoint, Spec};

/// Commands (MTA to milter).
pub(crate) mod cmd {
    pub(crate) const OPTNEG: u8 = b'O';
    pub(crate) const MACRO: u8 = b'D';
    pub(crate) const CONNECT: u8 = b'C';
    pub(crate) const HELO: u8 = b'H';
    pub(crate) const MAIL: u8 = b'M';
    pub(crate) const RCPT: u8 = b'R';
    pub(crate) const DATA: u8 = b'T';
    pub(crate) const HEADER: u8 = b'L';
    pub(crate) const EOH: u8 = b'N';
    pub(crate) const BODY: u8 = b'B';
    pub(crate) const BODYEOB: u8 = b'E';
    pub(crate) const QUIT: u8 = b'Q';
}

/// SMFIP_* protocol bits.
pub(crate) mod proto {
    pub(crate) const NOCONNECT: u32 = 1 << 0;
    pub(crate) const NOHELO: u32 = 1 << 1;
    pub(crate) const NOMAIL: u32 = 1 << 2;
    pub(crate) const NORCPT: u32 = 1 << 3;
    pub(crate) const NOBODY: u32 = 1 << 4;
    pub(crate) const NOHDRS: u32 = 1 << 5;
    pub(crate) const NOEOH: u32 = 1 << 6;
    pub(crate) const NR_HDR: u32 = 1 << 7;
    pub(crate) const NODATA: u32 = 1 << 9;
    pub(crate) const NR_CONN: u32 = 1 << 12;
    pub(crate) const NR_HELO: u32 = 1 << 13;
    pub(crate) const NR_MAIL: u32 = 1 << 14;
    pub(crate) const NR_RCPT: u32 = 1 << 15;
    pub(crate) const NR_DATA: u32 = 1 << 16;
    pub(crate) const NR_EOH: u32 = 1 << 18;
    pub(crate) const NR_BODY: u32 = 1 << 19;
    pub(crate) const HDR_LEADSPC: u32 = 1 << 20;
    /// Everything up to HDR_LEADSPC (version 6).
    pub(crate) const ALL_V6: u32 = (1 << 21) - 1;
    /// The events a version 2 milter may turn off.
    pub(crate) const ALL_V2: u32 = 0x7f;
}

/// SMFIF_* actions we allow: all of them.
const ALL_ACTIONS: u32 = 0x1ff;

/// Body chunk size (Postfix's MILTER_CHUNK_SIZE).
const CHUNK: usize = 65535;

/// Largest body a milter may put in place of the message's.
pub(crate) const MAX_REPLACED_BODY: usize = 512 * 1024 * 1024;

/// Stages for macro lists, in SMFIM_* order.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stage {
    Connect = 0,
    Helo = 1,
    Mail = 2,
    Rcpt = 3,
    Data = 4,
    Eom = 5,
    Eoh = 6,
}

/// A milter's answer to one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    Continue,
    Accept,
    Reject(String),
    Tempfail(String),
    Discard,
    Skip,
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Read for Stream {
    fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(b),
            Stream::Unix(s) => s.read(b),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(b),
            Stream::Unix(s) => s.write(b),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Stream {
    fn set_timeout(&self, t: Duration) -> Result<(), Error> {
        let t = Some(t.max(Duration::from_millis(1)));
        match self {
            Stream::Tcp(s) => s.set_read_timeout(t).and_then(|()| s.set_write_timeout(t)),
            Stream::Unix(s) => s.set_read_timeout(t).and_then(|()| s.set_write_timeout(t)),
        }
        .map_err(Error::Io)
    }
}

/// An open, negotiated milter connection.
pub(crate) struct Conn<'s> {
    stream: Stream,
    pub(crate) spec: &'s Spec,
    /// The events and replies the milter turned off (SMFIP_*).
    pub(crate) mask: u32,
    /// Macro lists the milter asked for (SMFIR_SETSYMLIST), by stage.
    symlists: [Option<Vec<String>>; 7],
}

impl<'s> Conn<'s> {
    /// Connects and negotiates.
    pub(crate) fn open(spec: &'s Spec, queue_dir: &Path) -> Result<Conn<'s>, Error> {
        let s = &spec.settings;
        let stream = match &spec.endpoint {
            Endpoint::Inet(hp) => {
                let addrs = std::net::ToSocketAddrs::to_socket_addrs(hp).map_err(Error::Io)?;
                let mut last = None;
                let mut found = None;
                for a in addrs {
                    match TcpStream::connect_timeout(&a, s.connect_timeout) {
                        Ok(c) => {
                            found = Some(c);
                            break;
                        }
                        Err(e) => last = Some(e),
                    }
                }
                match found {
                    Some(c) => Stream::Tcp(c),
                    None => {
                        return Err(Error::Io(last.unwrap_or_else(|| {
                            std::io::Error::new(std::io::ErrorKind::NotFound, "no address")
                        })));
                    }
                }
            }
            Endpoint::Unix(p) => {
                Stream::Unix(UnixStream::connect(queue_dir.join(p)).map_err(Error::Io)?)
            }
        };
        let mut c = Conn {
            stream,
            spec,
            mask: 0,
            symlists: Default::default(),
        };
        c.negotiate()?;
        Ok(c)
    }

    fn negotiate(&mut self) -> Result<(), Error> {
        let s = &self.spec.settings;
        self.stream.set_timeout(s.command_timeout)?;
        let offered = if s.protocol >= 6 {
            proto::ALL_V6
        } else {
            proto::ALL_V2
        };
        let mut data = Vec::new();
        data.extend_from_slice(&s.protocol.to_be_bytes());
        data.extend_from_slice(&ALL_ACTIONS.to_be_bytes());
        data.extend_from_slice(&offered.to_be_bytes());
        packet::write(&mut self.stream, cmd::OPTNEG, &data)?;
        let (c, data) = packet::read(&mut self.stream)?;
        if c != cmd::OPTNEG {
            return Err(Error::Protocol(format!(
                "unexpected reply '{}' to option negotiation",
                char::from(c).escape_default()
            )));
        }
        let mut cur = Cursor::new(&data);
        let version = cur.u32()?;
        if version < 2 {
            return Err(Error::Protocol(format!(
                "milter protocol version {version}"
            )));
        }
        let _actions = cur.u32()?;
        self.mask = cur.u32()? & offered;
        // Version 6: the macro lists the milter wants, per stage.
        while !cur.is_empty() {
            let stage = cur.u32()? as usize;
            let names: Vec<String> = cur
                .string()
                .split_whitespace()
                .map(str::to_string)
                .collect();
            if let Some(slot) = self.symlists.get_mut(stage) {
                *slot = Some(names);
            }
        }
        Ok(())
    }

    fn macro_names(&self, stage: Stage) -> Vec<String> {
        if let Some(Some(l)) = self.symlists.get(stage as usize) {
            return l.clone();
        }
        let m = &self.spec.settings.macros;
        match stage {
            Stage::Connect => m.connect.clone(),
            Stage::Helo => m.helo.clone(),
            Stage::Mail => m.mail.clone(),
            Stage::Rcpt => m.rcpt.clone(),
            Stage::Data => m.data.clone(),
            Stage::Eoh => m.eoh.clone(),
            Stage::Eom => m.eod.clone(),
        }
    }

    /// Sends the macros of `stage` (before event `event`, unless the
    /// milter turned that event off with `off`), those with a value only.
    pub(crate) fn macros(
        &mut self,
        stage: Stage,
        event: u8,
        off: u32,
        values: &HashMap<String, String>,
    ) -> Result<(), Error> {
        if off != 0 && self.mask & off != 0 {
            return Ok(());
        }
        let mut data = vec![event];
        let mut any = false;
        for name in self.macro_names(stage) {
            let bare = name.trim_start_matches('{').trim_end_matches('}');
            let v = values
                .get(&name)
                .or_else(|| values.get(bare))
                .or_else(|| values.get(&format!("{{{bare}}}")));
            if let Some(v) = v {
                packet::put_str(&mut data, &name);
                packet::put_str(&mut data, v);
                any = true;
            }
        }
        if any {
            packet::write(&mut self.stream, cmd::MACRO, &data)?;
        }
        Ok(())
    }

    /// Sends one event unless the milter turned it off (`off`), and reads
    /// the reply unless it said it sends none (`no_reply`).
    pub(crate) fn event(
        &mut self,
        event: u8,
        data: &[u8],
        off: u32,
        no_reply: u32,
        timeout: Duration,
    ) -> Result<Reply, Error> {
        if off != 0 && self.mask & off != 0 {
            return Ok(Reply::Continue);
        }
        self.stream.set_timeout(timeout)?;
        packet::write(&mut self.stream, event, data)?;
        if no_reply != 0 && self.mask & no_reply != 0 {
            return Ok(Reply::Continue);
        }
        loop {
            let (c, data) = packet::read(&mut self.stream)?;
            if let Some(r) = final_reply(c, &data)? {
                return Ok(r);
            }
            if c != b'p' {
                return Err(Error::Protocol(format!(
                    "unexpected reply '{}' to event '{}'",
                    char::from(c).escape_default(),
                    char::from(event)
                )));
            }
        }
    }

    /// Sends end of message and collects the modifications up to the
    /// final reply.
    pub(crate) fn end_of_message(&mut self) -> Result<(Reply, Vec<Edit>), Error> {
        self.stream
            .set_timeout(self.spec.settings.content_timeout)?;
        packet::write(&mut self.stream, cmd::BODYEOB, &[])?;
        let mut edits = Vec::new();
        let mut body: Option<Vec<u8>> = None;
        loop {
            let (c, data) = packet::read(&mut self.stream)?;
            if let Some(r) = final_reply(c, &data)? {
                if let Some(b) = body {
                    edits.push(Edit::ReplaceBody(b));
                }
                return Ok((r, edits));
            }
            let mut cur = Cursor::new(&data);
            match c {
                b'p' => {}
                b'h' => {
                    let n = cur.string();
                    edits.push(Edit::AddHeader(n, cur.string()));
                }
                b'i' => {
                    let i = cur.u32()? as usize;
                    let n = cur.string();
                    edits.push(Edit::InsertHeader(i, n, cur.string()));
                }
                b'm' => {
                    let i = cur.u32()? as usize;
                    let n = cur.string();
                    edits.push(Edit::ChangeHeader(i, n, cur.string()));
                }
                b'+' | b'2' => edits.push(Edit::AddRecipient(cur.string())),
                b'-' => edits.push(Edit::DeleteRecipient(cur.string())),
                b'e' => edits.push(Edit::ChangeSender(cur.string())),
                b'q' => edits.push(Edit::Quarantine(cur.string())),
                b'b' => {
                    let chunk = cur.rest();
                    let b = body.get_or_insert_with(Vec::new);
                    if b.len().saturating_add(chunk.len()) > MAX_REPLACED_BODY {
                        return Err(Error::TooLong(b.len().saturating_add(chunk.len())));
                    }
                    // CRLF from the milter; LF in our queue file.
                    for (i, byte) in chunk.iter().enumerate() {
                        if *byte == b'\r' && chunk.get(i + 1) == Some(&b'\n') {
                            continue;
                        }
                        b.push(*byte);
                    }
                }
                other => {
                    return Err(Error::Protocol(format!(
                        "unexpected reply '{}' at end of message",
                        char::from(other).escape_default()
                    )));
                }
            }
        }
    }

    /// Sends the body in chunks, CRLF line ends; stops at a final reply
    /// other than continue (skip ends the body early).
    pub(crate) fn body(&mut self, body: &[u8]) -> Result<Reply, Error> {
        let mut crlf = Vec::with_capacity(CHUNK + 1);
        let mut prev = 0u8;
        let t = self.spec.settings.content_timeout;
        for &b in body {
            if b == b'\n' && prev != b'\r' {
                crlf.push(b'\r');
            }
            crlf.push(b);
            prev = b;
            if crlf.len() >= CHUNK {
                let rest = crlf.split_off(CHUNK);
                let r = self.event(cmd::BODY, &crlf, proto::NOBODY, proto::NR_BODY, t)?;
                crlf = rest;
                if r != Reply::Continue {
                    return Ok(r);
                }
            }
        }
        if !crlf.is_empty() {
            return self.event(cmd::BODY, &crlf, proto::NOBODY, proto::NR_BODY, t);
        }
        Ok(Reply::Continue)
    }

    /// Says goodbye (errors do not matter any more).
    pub(crate) fn quit(mut self) {
        let _ = packet::write(&mut self.stream, cmd::QUIT, &[]);
    }
}

/// A final reply, or None for a packet that is not one.
fn final_reply(c: u8, data: &[u8]) -> Result<Option<Reply>, Error> {
    Ok(Some(match c {
        b'c' => Reply::Continue,
        b'a' => Reply::Accept,
        b'r' => Reply::Reject("550 5.7.1 Command rejected".into()),
        b't' => Reply::Tempfail("451 4.7.1 Service unavailable - try again later".into()),
        b'd' => Reply::Discard,
        b's' => Reply::Skip,
        b'f' | b'4' => Reply::Tempfail("421 4.7.0 Service unavailable - closing connection".into()),
        b'y' => {
            let text = Cursor::new(data).string().replace("\r\n", "\n");
            let text = text.trim_end().to_string();
            match text.as_bytes().first() {
                Some(b'4') => Reply::Tempfail(text),
                Some(b'5') => Reply::Reject(text),
                _ => {
                    return Err(Error::Protocol(format!(
                        "bad reply code \"{}\"",
                        text.escape_default()
                    )));
                }
            }
        }
        _ => return Ok(None),
    }))
}
