//! One client of a daemon that answers frames from its own event loop
//! (trivial-rewrite, anvil): non-blocking reads into a bounded buffer,
//! every complete request answered in order, replies written as the
//! client takes them.

use std::io::{ErrorKind, Read, Write};

use serde::Serialize;
use serde::de::DeserializeOwned;

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
    pub fn serve<Q: DeserializeOwned, A: Serialize>(
        &mut self,
        mut answer: impl FnMut(Q) -> A,
    ) -> bool {
        if !self.flush() {
            return false;
        }
        let mut buf = [0u8; 8192];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return false,
                Ok(n) => {
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
}
