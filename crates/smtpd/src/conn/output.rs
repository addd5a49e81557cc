//! The client socket: replies out, bytes in, and the TLS record layer
//! between them.

use super::*;

impl Conn {
    /// Queues a reply for the client.
    pub(super) fn send(&mut self, r: &Reply) {
        self.send_bytes(&r.to_wire());
    }

    pub(super) fn send_bytes(&mut self, bytes: &[u8]) {
        match self.tls.as_mut() {
            Some(t) => {
                if t.write_plaintext(bytes).is_err() {
                    self.dead = true;
                }
                t.take_ciphertext(&mut self.output);
            }
            None => self.output.extend_from_slice(bytes),
        }
    }

    /// Writes output until the socket would block; true if something went out.
    pub(super) fn flush_output(&mut self) -> bool {
        let mut wrote = false;
        while !self.output.is_empty() && !self.dead {
            match self.sock.write(&self.output) {
                Ok(0) => self.dead = true,
                Ok(n) => {
                    self.output.drain(..n);
                    wrote = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.writable = false;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => self.dead = true,
            }
        }
        if self.output.is_empty() && self.output.capacity() > 1024 {
            self.output = Vec::new();
        }
        wrote
    }

    pub(super) fn may_read(&self) -> bool {
        // Nothing is read before the greeting: in wrapper mode the TLS
        // session starts then, and the ClientHello must go to it.
        self.greeted
            && self.readable
            && !self.eof
            && !self.dead
            && !self.closing
            && self.input.len() < INPUT_LIMIT
            && self.cipher_in.len() < INPUT_LIMIT
            && self.output.len() < OUTPUT_LIMIT
            && self.cleanup_backlog() < BACKLOG_LIMIT
    }

    pub(super) fn cleanup_backlog(&self) -> usize {
        self.cleanup.as_ref().map_or(0, CleanupClient::backlog)
    }

    /// Reads from the socket once into `buf`; true if bytes arrived.
    pub(super) fn read_socket(&mut self, buf: &mut [u8]) -> bool {
        let n = match self.sock.read(buf) {
            Ok(0) => {
                self.eof = true;
                return false;
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.readable = false;
                return false;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return false,
            Err(_) => {
                self.eof = true;
                return false;
            }
        };
        self.last_active = Instant::now();
        // A read shorter than the buffer emptied the socket: more data
        // makes a new edge-triggered event, so the read that would fail
        // with EAGAIN is not needed (4.6 such reads a message before).
        // A hang-up may have come with the data: then read on to the end.
        if n < buf.len() && !self.hup {
            self.readable = false;
        }
        let data = buf.get(..n).unwrap_or(&[]);
        if self.tls.is_none() {
            self.input.extend_from_slice(data);
            return true;
        }
        self.cipher_in.extend_from_slice(data);
        self.pump_tls();
        true
    }

    /// Moves ciphertext into TLS and plaintext out of it; true when
    /// something moved.
    pub(super) fn pump_tls(&mut self) -> bool {
        let Some(t) = self.tls.as_mut() else {
            return false;
        };
        let mut moved = false;
        let was_handshaking = t.is_handshaking();
        loop {
            let used = match t.feed_ciphertext(&self.cipher_in) {
                Ok(n) => n,
                Err(e) => {
                    maillog::warning!("TLS library problem: {e} from {}", self.namaddr);
                    t.take_ciphertext(&mut self.output);
                    self.cipher_in.clear();
                    self.closing = true;
                    return true;
                }
            };
            self.cipher_in.drain(..used);
            let mut progress = used > 0;
            let mut tmp = [0u8; 4096];
            while self.input.len() < INPUT_LIMIT {
                match t.read_plaintext(&mut tmp) {
                    Ok(tls::Plaintext::Data(n)) if n > 0 => {
                        self.input.extend_from_slice(tmp.get(..n).unwrap_or(&[]));
                        progress = true;
                    }
                    Ok(tls::Plaintext::Closed) => {
                        self.eof = true;
                        break;
                    }
                    Ok(_) => break,
                    Err(_) => {
                        self.eof = true;
                        break;
                    }
                }
            }
            t.take_ciphertext(&mut self.output);
            moved |= progress;
            if !progress || self.cipher_in.is_empty() || self.input.len() >= INPUT_LIMIT {
                break;
            }
        }
        if self.cipher_in.is_empty() && self.cipher_in.capacity() > 1024 {
            self.cipher_in = Vec::new();
        }
        if was_handshaking && !t.is_handshaking() {
            if let Some(info) = t.info() {
                maillog::info!(
                    "Anonymous TLS connection established from {}: {} with cipher {} ({}/{} bits)",
                    self.namaddr,
                    info.protocol,
                    info.cipher,
                    info.bits,
                    info.bits
                );
            }
            self.session.tls_started();
            moved = true;
        }
        moved
    }
}
