//! One client of a daemon that answers frames from its own event loop
//! (trivial-rewrite, anvil): non-blocking reads into a bounded buffer,
//! every complete request answered in order, replies written as the
//! client takes them.

use std::io::{ErrorKind, Read, Write};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// What an edge-triggered event said of a client socket, for
/// [`FrameClient::serve_ready`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ready {
    /// Readable, and neither hung up nor failed: a short read means
    /// the socket is empty for now.
    Readable,
    /// Only writable: the client took some replies.
    Writable,
    /// Anything else (a hang-up, an error, or not known): read until
    /// the socket says it would block or is at its end.
    Unknown,
}

impl Ready {
    /// From an event's flags.
    pub fn of(readable: bool, writable: bool, closed_or_error: bool) -> Ready {
        match (readable, writable, closed_or_error) {
            (_, _, true) => Ready::Unknown,
            (true, _, false) => Ready::Readable,
            (false, true, false) => Ready::Writable,
            (false, false, false) => Ready::Unknown,
        }
    }
}

/// A connected client and its buffers.
#[derive(Debug)]
pub struct FrameClient<S> {
    /// The connection (non-blocking).
    pub stream: S,
    input: Vec<u8>,
    output: Vec<u8>,
    max_input: usize,
    max_output: usize,
}

impl<S: Read + Write> FrameClient<S> {
    /// A client whose unanswered input may reach `max_input` bytes (and
    /// no request may be larger) and whose unread replies `max_output`.
    pub fn new(stream: S, max_input: usize, max_output: usize) -> FrameClient<S> {
        FrameClient {
            stream,
            input: Vec::new(),
            output: Vec::new(),
            max_input: max_input.min(crate::MAX_FRAME),
            max_output,
        }
    }

    /// Nothing half-read and nothing unwritten: the client may be hung up
    /// on between two requests.
    pub fn is_idle(&self) -> bool {
        self.input.is_empty() && self.output.is_empty()
    }

    /// Reads what arrived, answers every complete request with `answer`
    /// and writes what the client takes; false when the client is gone
    /// or misbehaved (the caller drops it).
    pub fn serve<Q: DeserializeOwned, A: Serialize>(&mut self, answer: impl FnMut(Q) -> A) -> bool {
        self.serve_ready(answer, Ready::Unknown)
    }

    /// As [`FrameClient::serve`] for an edge-triggered event that says
    /// what happened: after [`Ready::Writable`] only the replies are
    /// written, and after [`Ready::Readable`] reading stops at a short
    /// read (the socket had no more; more data makes a new event) rather
    /// than at a read failing with EAGAIN. Two of the three reads a
    /// request cost in trivial-rewrite failed so (one after each event
    /// for the client's reading a reply, one ending each round).
    pub fn serve_ready<Q: DeserializeOwned, A: Serialize>(
        &mut self,
        mut answer: impl FnMut(Q) -> A,
        ready: Ready,
    ) -> bool {
        if !self.flush() {
            return false;
        }
        if ready == Ready::Writable {
            return true;
        }
        let mut buf = [0u8; 8192];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return false,
                Ok(n) => {
                    let short = n < buf.len();
                    self.input.extend_from_slice(buf.get(..n).unwrap_or(&[]));
                    if !self.answer_frames(&mut answer) {
                        return false;
                    }
                    if self.input.len() > self.max_input || self.output.len() > self.max_output {
                        maillog::warning!(
                            "client sends too much or reads too little: disconnecting"
                        );
                        return false;
                    }
                    if short && ready == Ready::Readable {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        self.flush()
    }

    fn answer_frames<Q: DeserializeOwned, A: Serialize>(
        &mut self,
        answer: &mut impl FnMut(Q) -> A,
    ) -> bool {
        loop {
            let Some(len) = self
                .input
                .first_chunk::<4>()
                .map(|b| u32::from_be_bytes(*b) as usize)
            else {
                return true;
            };
            if len > self.max_input {
                maillog::warning!("request of {len} bytes: disconnecting");
                return false;
            }
            let total = len + 4;
            if self.input.len() < total {
                return true;
            }
            let request: Result<Q, crate::Error> =
                crate::recv(&mut self.input.get(..total).unwrap_or(&[]));
            self.input.drain(..total);
            let reply = match request {
                Ok(r) => answer(r),
                Err(e) => {
                    maillog::warning!("malformed request: {e}");
                    return false;
                }
            };
            if crate::send(&mut self.output, &reply).is_err() {
                return false;
            }
        }
    }

    fn flush(&mut self) -> bool {
        while !self.output.is_empty() {
            match self.stream.write(&self.output) {
                Ok(0) => return false,
                Ok(n) => {
                    self.output.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    #[test]
    fn answers_pipelined_requests_in_order_and_drops_oversize_ones() {
        let (mut peer, ours) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        let mut c = FrameClient::new(ours, 1024, 1024);
        crate::send(&mut peer, &1u32).unwrap();
        crate::send(&mut peer, &2u32).unwrap();
        assert!(c.serve(|n: u32| n * 10));
        assert!(c.is_idle());
        assert_eq!(crate::recv::<_, u32>(&mut peer).unwrap(), 10);
        assert_eq!(crate::recv::<_, u32>(&mut peer).unwrap(), 20);
        crate::send(&mut peer, &vec![7u8; 2000]).unwrap();
        assert!(!c.serve(|v: Vec<u8>| v.len()));
        drop(peer);
        let (peer, ours) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        drop(peer);
        assert!(!FrameClient::new(ours, 1024, 1024).serve(|n: u32| n));
    }

    #[test]
    fn ready_events_read_only_what_they_need() {
        let (mut peer, ours) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        let mut c = FrameClient::new(ours, 1024, 1024);
        crate::send(&mut peer, &1u32).unwrap();
        // A writable event does not read.
        assert!(c.serve_ready(|n: u32| n * 10, Ready::Writable));
        assert!(c.is_idle());
        assert!(c.serve_ready(|n: u32| n * 10, Ready::Readable));
        assert_eq!(crate::recv::<_, u32>(&mut peer).unwrap(), 10);
        drop(peer);
        assert!(!c.serve_ready(|n: u32| n, Ready::Unknown));
        assert_eq!(Ready::of(true, true, false), Ready::Readable);
        assert_eq!(Ready::of(false, true, false), Ready::Writable);
        assert_eq!(Ready::of(true, false, true), Ready::Unknown);
    }
}
