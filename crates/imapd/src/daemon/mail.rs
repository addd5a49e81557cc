//! The authenticated and selected states, in the mail process (running as
//! the mailbox's owner, talking cleartext to the login process over a
//! unix socket): the command loop, COMPRESS, IDLE, and dispatch to the
//! command groups in `select`, `messages` and `folders`.

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::login::ID_RESPONSE;
use super::settings::Settings;
use crate::compress::Deflate;
use crate::parse::{Command, CommandBody, Event, Parser, take_line};
use crate::response::{Status, status};
use crate::state::{State, allowed, uses_sequence_numbers};
use crate::store::Store;
use crate::store::mailbox::Mailbox;
use login::location::Target;

/// How much output a long command gathers before sending it.
pub const FLUSH_AT: usize = 256 * 1024;

/// How often IDLE looks for changes.
pub const IDLE_POLL: Duration = Duration::from_millis(500);

/// The selected mailbox.
pub struct Selected {
    /// Its name.
    pub name: String,
    /// The store side.
    pub mb: Mailbox,
    /// The messages as this session knows them (sequence order).
    pub view: crate::store::view::View,
    /// EXAMINE, or a read-only mailbox.
    pub read_only: bool,
    /// Modification times of new/, cur/ and the index at the last scan.
    pub stamp: crate::store::mailbox::Stamp,
    /// The view while the session is idle (`view` is then empty).
    pub parked: Option<super::park::Parked>,
    /// Messages gone from the store whose expunge a command that used
    /// sequence numbers held back: the next refresh that may report them
    /// rescans even when nothing changed since.
    pub held_expunges: bool,
}

/// One logged-in session.
pub struct Session<'a> {
    /// Settings.
    pub s: &'a Settings,
    /// The user.
    pub user: String,
    /// The store.
    pub store: Store,
    /// Responses not yet sent.
    pub out: Vec<u8>,
    sock: UnixStream,
    deflate: Option<Deflate>,
    /// The selected mailbox.
    pub sel: Option<Selected>,
    /// UTF8=ACCEPT or IMAP4rev2 enabled.
    pub utf8: bool,
    /// IMAP4rev2 enabled.
    pub rev2: bool,
    /// CONDSTORE enabled (or implied).
    pub condstore: bool,
    /// QRESYNC enabled.
    pub qresync: bool,
    /// SEARCHRES's saved UIDs.
    pub saved: Vec<u32>,
    /// Local time zone, minutes east of UTC (INTERNALDATE).
    pub zone: i16,
    /// Counters for the log.
    pub fetched: u64,
}

/// Serves one logged-in session on `sock`: the socketpair to the
/// relaying login process, or (`direct`) the client's own socket, then
/// with the idle timeout enforced here. `tag` is the login command's
/// (answered here, once the store is open); `pending` what the client
/// sent after it.
pub fn run(
    sock: UnixStream,
    s: &Settings,
    user: &str,
    target: &Target,
    tag: &str,
    pending: Vec<u8>,
    direct: bool,
) {
    let _ = sock.set_read_timeout(direct.then_some(s.idle));
    if direct {
        let _ = sock.set_write_timeout(Some(s.idle));
    }
    let mut out = Vec::new();
    let store = if target.maildir {
        Store::new(&target.path, s.location.lock_options())
    } else {
        match Store::mbox_index_dir(&target.path) {
            Some(dir) => Store::new_mbox(
                &target.path,
                &dir,
                s.location.lock_options(),
                s.location.mbox_options(),
            ),
            None => {
                maillog::warning!(
                    "{user}: {}: no place for the mbox's index (beside it or in a home directory)",
                    target.path.display()
                );
                status(
                    &mut out,
                    None,
                    Status::Bye,
                    Some("UNAVAILABLE"),
                    "Internal error occurred.",
                );
                let _ = (&sock).write_all(&out);
                return;
            }
        }
    };
    store.ensure_special_use(&s.special_use);
    status(
        &mut out,
        Some(tag),
        Status::Ok,
        Some(&format!("CAPABILITY {}", s.capabilities())),
        "Logged in",
    );
    let offset = mailstore::localtime::utc_offset(std::time::SystemTime::now());
    let Ok(read_half) = sock.try_clone() else {
        return;
    };
    let mut sess = Session {
        s,
        user: user.to_string(),
        store,
        out,
        sock,
        deflate: None,
        sel: None,
        utf8: false,
        rev2: false,
        condstore: false,
        qresync: false,
        saved: Vec::new(),
        zone: i16::try_from(offset / 60).unwrap_or(0),
        fetched: 0,
    };
    if sess.flush().is_err() {
        return;
    }
    let reason = sess.serve(read_half, pending);
    maillog::info!("{}: Disconnected: {reason} fetched={}", user, sess.fetched);
}

/// A read that ran into the idle timeout (a direct session's socket).
fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

impl Session<'_> {
    /// Sends what is pending (compressed after COMPRESS).
    pub fn flush(&mut self) -> io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let data = std::mem::take(&mut self.out);
        match &mut self.deflate {
            Some(d) => self.sock.write_all(&d.compress(&data)),
            None => self.sock.write_all(&data),
        }
    }

    /// Sends what is pending once it has grown past [`FLUSH_AT`]: a long
    /// FETCH's responses go out as they are made, through one buffer.
    pub fn flush_large(&mut self) -> io::Result<()> {
        if self.out.len() < FLUSH_AT {
            return Ok(());
        }
        let sent = match &mut self.deflate {
            Some(d) => self.sock.write_all(&d.compress(&self.out)),
            None => self.sock.write_all(&self.out),
        };
        self.out.clear();
        sent
    }

    /// Waits up to [`super::park::PARK_AFTER`] for input; when none comes,
    /// parks the selected mailbox's view and gives the memory of the
    /// command just served back (the read that follows then blocks).
    fn wait_or_park(&mut self, input: &UnixStream, buf: &mut Vec<u8>) -> io::Result<()> {
        let busy = self.sel.as_ref().is_some_and(|s| !s.parked())
            || self.out.capacity() > 0
            || buf.capacity() > 4096;
        if !busy {
            return Ok(());
        }
        let mut fds = [PollFd::new(input.as_fd(), PollFlags::POLLIN)];
        let ms = u16::try_from(super::park::PARK_AFTER.as_millis()).unwrap_or(500);
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) => {}
            Ok(_) | Err(nix::errno::Errno::EINTR) => return Ok(()),
            Err(e) => return Err(io::Error::from(e)),
        }
        if let Some(sel) = &mut self.sel {
            sel.park();
        }
        self.out = Vec::new();
        buf.shrink_to_fit();
        // The command's peak (a scan's listing, a FETCH's responses) is
        // free but scattered over the heap: give its pages back.
        privsep::memory::trim_heap();
        Ok(())
    }

    /// Reads more client input into `buf`; false at end of input.
    fn read_more(&mut self, input: &mut UnixStream, buf: &mut Vec<u8>) -> io::Result<bool> {
        let mut chunk = vec![0u8; 64 * 1024];
        let n = loop {
            match input.read(&mut chunk) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => break r?,
            }
        };
        if n == 0 {
            return Ok(false);
        }
        let data = chunk.get(..n).unwrap_or_default();
        match &mut self.deflate {
            Some(d) => {
                // One read inflates to at most one command's worth.
                let l = self.s.limits();
                let bound = usize::try_from(l.max_literal)
                    .unwrap_or(usize::MAX)
                    .saturating_add(l.max_command);
                let plain = d
                    .decompress(data, bound)
                    .map_err(|_| io::Error::other("bad compressed data"))?;
                buf.extend_from_slice(&plain);
            }
            None => buf.extend_from_slice(data),
        }
        Ok(true)
    }

    fn state(&self) -> State {
        if self.sel.is_some() {
            State::Selected
        } else {
            State::Authenticated
        }
    }

    /// The command loop; returns why it ended.
    fn serve(&mut self, mut input: UnixStream, pending: Vec<u8>) -> String {
        let mut parser = Parser::new(self.s.limits());
        let mut buf: Vec<u8> = pending;
        loop {
            let (used, ev) = parser.feed(&buf);
            let cmd = match ev {
                Event::NeedMore => match self
                    .wait_or_park(&input, &mut buf)
                    .and_then(|()| self.read_more(&mut input, &mut buf))
                {
                    Ok(true) => continue,
                    Ok(false) => return "connection closed".into(),
                    Err(e) if timed_out(&e) => {
                        status(
                            &mut self.out,
                            None,
                            Status::Bye,
                            None,
                            "Disconnected for inactivity.",
                        );
                        let _ = self.flush();
                        return "Disconnected for inactivity".into();
                    }
                    Err(e) => return e.to_string(),
                },
                Event::Continue => {
                    crate::response::continuation(&mut self.out, "OK");
                    if let Err(e) = self.flush() {
                        return e.to_string();
                    }
                    match self.read_more(&mut input, &mut buf) {
                        Ok(true) => continue,
                        Ok(false) => return "connection closed".into(),
                        Err(e) => return e.to_string(),
                    }
                }
                Event::Fatal(text) => {
                    status(&mut self.out, None, Status::Bye, None, text);
                    let _ = self.flush();
                    return text.to_string();
                }
                Event::Bad { tag, text, too_big } => {
                    buf.drain(..used.min(buf.len()));
                    if too_big {
                        status(
                            &mut self.out,
                            tag.as_deref(),
                            Status::No,
                            Some("TOOBIG"),
                            "Message too large.",
                        );
                    } else {
                        status(&mut self.out, tag.as_deref(), Status::Bad, None, text);
                    }
                    if let Err(e) = self.flush() {
                        return e.to_string();
                    }
                    continue;
                }
                Event::Command(c) => {
                    buf.drain(..used.min(buf.len()));
                    c
                }
            };
            match self.command(cmd, &mut input, &mut buf) {
                Ok(true) => {}
                Ok(false) => {
                    let _ = self.flush();
                    return "Logged out".into();
                }
                Err(e) => return e.to_string(),
            }
            if let Err(e) = self.flush() {
                return e.to_string();
            }
        }
    }

    /// One command; false after LOGOUT.
    fn command(
        &mut self,
        cmd: Command,
        input: &mut UnixStream,
        buf: &mut Vec<u8>,
    ) -> io::Result<bool> {
        let tag = cmd.tag.clone();
        let t = Some(tag.as_str());
        if let Some(sel) = &mut self.sel
            && let Err(e) = sel.unpark()
        {
            maillog::warning!("{}: {}: {e}", self.user, sel.name);
            status(
                &mut self.out,
                t,
                Status::No,
                Some("SERVERBUG"),
                "Internal error occurred.",
            );
            return Ok(true);
        }
        if !allowed(&cmd.body, self.state()) {
            let text = match cmd.body {
                CommandBody::Login { .. } | CommandBody::Authenticate { .. } => {
                    "Already logged in."
                }
                CommandBody::StartTls => "TLS is already active or not available after login.",
                _ => "No mailbox selected.",
            };
            status(&mut self.out, t, Status::Bad, None, text);
            return Ok(true);
        }
        let seqs = uses_sequence_numbers(&cmd.body);
        let report = !matches!(
            cmd.body,
            CommandBody::Select(..)
                | CommandBody::Examine(..)
                | CommandBody::Close
                | CommandBody::Unselect
        );
        use CommandBody as B;
        match cmd.body {
            B::Capability => {
                self.out.extend_from_slice(
                    format!("* CAPABILITY {}\r\n", self.s.capabilities()).as_bytes(),
                );
                status(&mut self.out, t, Status::Ok, None, "Capability completed.");
            }
            B::Noop | B::Check => {
                self.notify(true);
                status(&mut self.out, t, Status::Ok, None, "NOOP completed.");
                return Ok(true);
            }
            B::Logout => {
                status(&mut self.out, None, Status::Bye, None, "Logging out");
                status(&mut self.out, t, Status::Ok, None, "Logout completed.");
                return Ok(false);
            }
            B::Id(_) => {
                self.out.extend_from_slice(ID_RESPONSE);
                status(&mut self.out, t, Status::Ok, None, "ID completed.");
            }
            B::Enable(caps) => {
                let mut on = Vec::new();
                for c in caps {
                    match c.as_str() {
                        "CONDSTORE" => self.condstore = true,
                        "QRESYNC" => {
                            self.condstore = true;
                            self.qresync = true;
                        }
                        "UTF8=ACCEPT" => self.utf8 = true,
                        "IMAP4REV2" => {
                            self.rev2 = true;
                            self.utf8 = true;
                        }
                        _ => continue,
                    }
                    on.push(if c == "IMAP4REV2" {
                        "IMAP4rev2".to_string()
                    } else {
                        c
                    });
                }
                self.out.extend_from_slice(
                    format!("* ENABLED {}\r\n", on.join(" "))
                        .as_bytes()
                        .trim_ascii_end(),
                );
                self.out.extend_from_slice(b"\r\n");
                status(&mut self.out, t, Status::Ok, None, "Enabled.");
            }
            B::Compress(mech) => {
                if self.deflate.is_some() {
                    status(
                        &mut self.out,
                        t,
                        Status::No,
                        Some("COMPRESSIONACTIVE"),
                        "Compression already active.",
                    );
                } else if mech != "DEFLATE" {
                    status(
                        &mut self.out,
                        t,
                        Status::Bad,
                        None,
                        "Unknown compression mechanism.",
                    );
                } else {
                    status(&mut self.out, t, Status::Ok, None, "Begin compression.");
                    self.flush()?;
                    self.deflate = Some(Deflate::new());
                    if !buf.is_empty() {
                        // Bytes after the command were already compressed.
                        let raw = std::mem::take(buf);
                        if let Some(d) = &mut self.deflate {
                            *buf = d
                                .decompress(&raw, 1 << 20)
                                .map_err(|_| io::Error::other("bad compressed data"))?;
                        }
                    }
                }
                return Ok(true);
            }
            B::Idle => return self.idle(&tag, input, buf),
            B::Select(name, p) => self.select(&tag, &name, p, false),
            B::Examine(name, p) => self.select(&tag, &name, p, true),
            B::Close => self.close(&tag, true),
            B::Unselect => self.close(&tag, false),
            B::Create(name, _) => self.create(&tag, &name),
            B::Delete(name) => self.delete(&tag, &name),
            B::Rename(a, b) => self.rename(&tag, &a, &b),
            B::Subscribe(name) => self.subscribe(&tag, &name, true),
            B::Unsubscribe(name) => self.subscribe(&tag, &name, false),
            B::List {
                reference,
                patterns,
                options,
            } => self.list(&tag, &reference, &patterns, &options, false),
            B::Lsub(reference, pattern) => {
                self.list(&tag, &reference, &[pattern], &Default::default(), true)
            }
            B::Namespace => {
                self.out
                    .extend_from_slice(b"* NAMESPACE ((\"\" \".\")) NIL NIL\r\n");
                status(&mut self.out, t, Status::Ok, None, "Namespace completed.");
            }
            B::Status(name, items) => self.status_cmd(&tag, &name, &items),
            B::Append {
                mailbox,
                flags,
                date,
                message,
            } => self.append(&tag, &mailbox, &flags, date, &message),
            B::Expunge => self.expunge(&tag, None),
            B::UidExpunge(set) => self.expunge(&tag, Some(set)),
            B::Search {
                uid,
                ret,
                charset,
                key,
            } => self.search(&tag, uid, ret, charset, key),
            B::Fetch {
                uid,
                set,
                attrs,
                changed_since,
                vanished,
            } => self.fetch(&tag, uid, &set, attrs, changed_since, vanished),
            B::Store {
                uid,
                set,
                unchanged_since,
                mode,
                silent,
                flags,
            } => self.store_flags(&tag, uid, &set, unchanged_since, mode, silent, &flags),
            B::Copy { uid, set, mailbox } => self.copy(&tag, uid, &set, &mailbox, false),
            B::Move { uid, set, mailbox } => self.copy(&tag, uid, &set, &mailbox, true),
            B::Sort {
                uid,
                criteria,
                charset,
                key,
                ..
            } => self.sort(&tag, uid, &criteria, &charset, key),
            B::Thread {
                uid,
                algorithm,
                charset,
                key,
            } => self.thread(&tag, uid, algorithm, &charset, key),
            B::GetQuotaRoot(name) => {
                let name = self.decode(&name).unwrap_or_default();
                self.out.extend_from_slice(b"* QUOTAROOT ");
                crate::response::mailbox_name(&mut self.out, &name, self.utf8);
                if self.s.quota > 0 {
                    self.out.extend_from_slice(b" \"\"\r\n");
                    self.quota_line();
                } else {
                    self.out.extend_from_slice(b"\r\n");
                }
                status(
                    &mut self.out,
                    t,
                    Status::Ok,
                    None,
                    "Getquotaroot completed.",
                );
            }
            B::GetQuota(root) if root.is_empty() && self.s.quota > 0 => {
                self.quota_line();
                status(&mut self.out, t, Status::Ok, None, "Getquota completed.");
            }
            B::GetQuota(_) => status(
                &mut self.out,
                t,
                Status::No,
                Some("NONEXISTENT"),
                "No such quota root.",
            ),
            B::SetQuota(..) => status(
                &mut self.out,
                t,
                Status::No,
                Some("NOPERM"),
                "Quota can't be set.",
            ),
            B::StartTls | B::Login { .. } | B::Authenticate { .. } => {
                status(&mut self.out, t, Status::Bad, None, "Already logged in.")
            }
        }
        if report && self.sel.is_some() {
            self.report_before_tag(&tag, !seqs);
        }
        Ok(true)
    }

    /// Puts change reports before the tagged response just written.
    fn report_before_tag(&mut self, tag: &str, expunges: bool) {
        let out = std::mem::take(&mut self.out);
        let needle = format!("{tag} ");
        let mut cut = 0;
        if !out.starts_with(needle.as_bytes()) {
            let mut i = out.len().saturating_sub(2);
            cut = out.len();
            while i > 0 {
                if out.get(i - 1..i + 1) == Some(b"\r\n")
                    && out
                        .get(i + 1..)
                        .is_some_and(|r| r.starts_with(needle.as_bytes()))
                {
                    cut = i + 1;
                    break;
                }
                i -= 1;
            }
        }
        let (head, tail) = out.split_at(cut.min(out.len()));
        self.out = head.to_vec();
        self.notify(expunges);
        self.out.extend_from_slice(tail);
    }

    /// Octets stored in all mailboxes (from their indexes).
    pub fn usage(&self) -> u64 {
        let mut total = 0u64;
        for name in self.store.list() {
            let Ok(mut mb) = self.store.open(&name) else {
                continue;
            };
            // From the index while it knows every size; else listed and
            // measured (the sizes are then recorded for next time).
            let from_index = crate::store::index::Index::load(mb.dir())
                .and_then(|ix| ix.records.values().map(|r| r.size).sum::<Option<u64>>());
            total += match from_index {
                Some(n) => n,
                None => mb
                    .scan(false)
                    .map(|mut v| {
                        mb.fill(v.iter_mut(), true, false);
                        v.iter().filter_map(|m| m.size).sum()
                    })
                    .unwrap_or(0),
            };
        }
        total
    }

    /// `* QUOTA "" (STORAGE used limit)` in units of 1024 octets.
    fn quota_line(&mut self) {
        let used = self.usage().div_ceil(1024);
        let limit = self.s.quota / 1024;
        self.out
            .extend_from_slice(format!("* QUOTA \"\" (STORAGE {used} {limit})\r\n").as_bytes());
    }

    /// Would `more` octets go over the quota?
    pub fn over_quota(&self, more: u64) -> bool {
        self.s.quota > 0 && self.usage().saturating_add(more) > self.s.quota
    }

    /// A mailbox name from the client, decoded.
    pub fn decode(&self, name: &[u8]) -> Option<String> {
        let n = crate::response::decode_mailbox_name(name, self.utf8)?;
        Some(if crate::store::is_inbox(&n) {
            "INBOX".to_string()
        } else {
            n
        })
    }

    /// IDLE: changes are reported as they happen (polled every
    /// [`IDLE_POLL`]) until DONE.
    fn idle(&mut self, tag: &str, input: &mut UnixStream, buf: &mut Vec<u8>) -> io::Result<bool> {
        crate::response::continuation(&mut self.out, "idling");
        self.flush()?;
        let started = Instant::now();
        loop {
            if let Some(r) = take_line(buf, 1024) {
                return match r {
                    Ok((line, n)) => {
                        let done = line.eq_ignore_ascii_case(b"DONE");
                        buf.drain(..n);
                        if done {
                            self.notify(true);
                            status(
                                &mut self.out,
                                Some(tag),
                                Status::Ok,
                                None,
                                "Idle completed.",
                            );
                        } else {
                            status(
                                &mut self.out,
                                Some(tag),
                                Status::Bad,
                                None,
                                "Expected DONE.",
                            );
                        }
                        Ok(true)
                    }
                    Err(_) => {
                        status(&mut self.out, None, Status::Bye, None, "Line too long");
                        Ok(false)
                    }
                };
            }
            let ready = {
                let mut fds = [PollFd::new(input.as_fd(), PollFlags::POLLIN)];
                let ms = u16::try_from(IDLE_POLL.as_millis()).unwrap_or(500);
                match poll(&mut fds, PollTimeout::from(ms)) {
                    Ok(n) => n > 0,
                    Err(nix::errno::Errno::EINTR) => false,
                    Err(e) => return Err(io::Error::from(e)),
                }
            };
            if ready {
                if !self.read_more(input, buf)? {
                    return Ok(false);
                }
                continue;
            }
            if started.elapsed() > self.s.idle {
                status(
                    &mut self.out,
                    None,
                    Status::Bye,
                    None,
                    "Disconnected for inactivity.",
                );
                return Ok(false);
            }
            self.notify(true);
            self.flush()?;
            // Nothing changed, or what did is reported: idle with the
            // view parked until the next change.
            if let Some(sel) = &mut self.sel {
                sel.park();
            }
        }
    }

    /// Reports changes made by other sessions and deliveries (EXISTS,
    /// EXPUNGE or VANISHED, FETCH FLAGS); `expunges` false while the
    /// command used sequence numbers (RFC 9051 7.5.1: they wait).
    pub fn notify(&mut self, expunges: bool) {
        if self.sel.is_none() {
            return;
        }
        let quiet = HashSet::new();
        self.refresh(expunges, &quiet, false);
    }
}
