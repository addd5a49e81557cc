//! The status protocol: a child tells master when it takes a client and
//! when it is available again, so master can fork more while all are busy.
//!
//! Each record is [`RECORD_SIZE`] bytes: the child's pid and the status, both
//! little-endian u32. Records are smaller than PIPE_BUF, so every write is
//! atomic even with many children sharing one pipe (one pipe per service).
//! The child writes to fd [`STATUS_FD`]; when master goes away (or retires
//! the child on reload by closing the read end), that fd reports an error
//! and the child exits after its current client.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::io::RawFd;

/// The fd on which a child finds the write end of its status pipe.
pub const STATUS_FD: RawFd = 3;

/// Size of one status record in bytes.
pub const RECORD_SIZE: usize = 8;

/// What a child reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Busy with a client (Postfix's MASTER_STAT_TAKEN).
    Taken,
    /// Waiting for a client (MASTER_STAT_AVAIL).
    Available,
}

/// One status record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// The reporting child.
    pub pid: u32,
    /// Its status.
    pub status: Status,
}

impl Record {
    /// The record's wire form.
    pub fn encode(&self) -> [u8; RECORD_SIZE] {
        let mut out = [0u8; RECORD_SIZE];
        let code: u32 = match self.status {
            Status::Taken => 0,
            Status::Available => 1,
        };
        out[..4].copy_from_slice(&self.pid.to_le_bytes());
        out[4..].copy_from_slice(&code.to_le_bytes());
        out
    }

    /// Parses a record; `None` when the status code is unknown.
    pub fn decode(bytes: &[u8; RECORD_SIZE]) -> Option<Record> {
        let [a, b, c, d, e, f, g, h] = *bytes;
        let pid = u32::from_le_bytes([a, b, c, d]);
        let status = match u32::from_le_bytes([e, f, g, h]) {
            0 => Status::Taken,
            1 => Status::Available,
            _ => return None,
        };
        Some(Record { pid, status })
    }
}

/// Splits a buffer read from a status pipe into records; returns the records and
/// the number of bytes consumed (a partial tail stays for the next read).
pub fn decode_all(buf: &[u8]) -> (Vec<Record>, usize) {
    let mut out = Vec::new();
    let mut used = 0;
    for chunk in buf.chunks_exact(RECORD_SIZE) {
        let mut rec = [0u8; RECORD_SIZE];
        rec.copy_from_slice(chunk);
        if let Some(r) = Record::decode(&rec) {
            out.push(r);
        }
        used += RECORD_SIZE;
    }
    (out, used)
}

/// The child's end of the status pipe.
#[derive(Debug)]
pub struct StatusPipe {
    file: File,
    pid: u32,
}

impl StatusPipe {
    /// Wraps the inherited write end.
    pub fn new(file: File) -> StatusPipe {
        StatusPipe {
            file,
            pid: std::process::id(),
        }
    }

    /// Reports a status. A failure means master is gone; the caller finds out
    /// from [`StatusPipe::fd`] polling as an error and exits when done.
    pub fn notify(&mut self, status: Status) -> bool {
        let rec = Record {
            pid: self.pid,
            status,
        };
        self.file.write_all(&rec.encode()).is_ok()
    }

    /// Reports a client taken and the process available again in one
    /// write, which master reads whole (a pipe write of two records is
    /// atomic): a multi-client process that stays available never looks
    /// busy to master, so a burst of connections does not make master
    /// start another process of the service in the instant between the
    /// two records, as two writes did.
    pub fn notify_taken_available(&mut self) -> bool {
        let taken = Record {
            pid: self.pid,
            status: Status::Taken,
        };
        let available = Record {
            pid: self.pid,
            status: Status::Available,
        };
        let mut both = [0u8; 2 * RECORD_SIZE];
        both[..RECORD_SIZE].copy_from_slice(&taken.encode());
        both[RECORD_SIZE..].copy_from_slice(&available.encode());
        self.file.write_all(&both).is_ok()
    }

    /// The pipe, to poll for errors (master gone).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        for status in [Status::Taken, Status::Available] {
            let r = Record { pid: 4242, status };
            assert_eq!(Record::decode(&r.encode()), Some(r));
        }
        assert_eq!(Record::decode(&[1, 0, 0, 0, 9, 0, 0, 0]), None);
    }

    #[test]
    fn decode_all_keeps_partial_tail() {
        let a = Record {
            pid: 1,
            status: Status::Taken,
        }
        .encode();
        let mut buf = a.to_vec();
        buf.extend_from_slice(&a[..3]);
        let (recs, used) = decode_all(&buf);
        assert_eq!(recs.len(), 1);
        assert_eq!(used, RECORD_SIZE);
    }

    #[test]
    fn notify_writes_a_record() {
        let (r, w) = nix::unistd::pipe().unwrap();
        let mut p = StatusPipe::new(File::from(w));
        assert!(p.notify(Status::Taken));
        let mut buf = [0u8; RECORD_SIZE];
        std::io::Read::read_exact(&mut File::from(r), &mut buf).unwrap();
        let rec = Record::decode(&buf).unwrap();
        assert_eq!(rec.status, Status::Taken);
        assert_eq!(rec.pid, std::process::id());
    }
}
