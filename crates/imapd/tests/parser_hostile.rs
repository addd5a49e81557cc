//! The command parser under a few hundred thousand generated hostile
//! inputs (a fixed seed, so every run and CI sees the same ones): command
//! fragments of every kind glued together with random bytes, literals of
//! absurd, negative-looking and overflowing sizes, deep nesting, long
//! lines, NULs and CR without LF, fed in random-sized pieces the way a
//! server's read loop feeds them. Nothing may panic, the driver's buffer
//! stays within what the limits allow, and the process's peak memory
//! stays small. The cargo-fuzz target fuzz/fuzz_targets/imapd_command.rs
//! does the same with coverage guidance.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use imapd::parse::{Event, Limits, Parser, take_line};

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[self.below(v.len())]
    }
}

const COMMANDS: &[&str] = &[
    "CAPABILITY",
    "NOOP",
    "LOGOUT",
    "STARTTLS",
    "AUTHENTICATE PLAIN",
    "AUTHENTICATE PLAIN AGFsaWNlAHB3",
    "LOGIN",
    "LOGIN alice",
    "LOGIN \"al\\\"ice\" {3}",
    "SELECT",
    "SELECT INBOX (CONDSTORE)",
    "SELECT INBOX (QRESYNC (1 2 1:5 (1:3 1:3)))",
    "EXAMINE \"&AOQ-\"",
    "CREATE",
    "DELETE",
    "RENAME a b",
    "SUBSCRIBE",
    "UNSUBSCRIBE",
    "LIST",
    "LIST \"\" *",
    "LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (% *) RETURN (CHILDREN STATUS (MESSAGES SIZE))",
    "LSUB \"\" %",
    "NAMESPACE",
    "STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN SIZE HIGHESTMODSEQ",
    "APPEND INBOX (\\Seen $Junk) \"07-Dec-2026 10:00:00 +0000\"",
    "APPEND INBOX UTF8 (",
    "IDLE",
    "CHECK",
    "CLOSE",
    "UNSELECT",
    "EXPUNGE",
    "UID EXPUNGE 1:*",
    "SEARCH",
    "SEARCH CHARSET UTF-8",
    "SEARCH RETURN (MIN MAX COUNT ALL SAVE)",
    "UID SEARCH OR OR OR OR",
    "SEARCH NOT NOT NOT NOT NOT",
    "SEARCH (((((((",
    "SEARCH HEADER",
    "SEARCH MODSEQ \"/flags/\\\\Seen\" all 5",
    "SEARCH SENTBEFORE 31-Feb-99999",
    "FETCH",
    "FETCH 1:* (FLAGS ENVELOPE BODYSTRUCTURE)",
    "FETCH 1 BODY[1.2.3.4.5.6.7.8.9.10.HEADER.FIELDS (",
    "FETCH 4294967295:4294967296 BODY.PEEK[]<0.4294967296>",
    "UID FETCH $ (BINARY.PEEK[1] BINARY.SIZE[2] MODSEQ) (CHANGEDSINCE 1 VANISHED)",
    "FETCH 1 BODY[]<",
    "STORE 1 +FLAGS.SILENT (\\Deleted",
    "STORE 1:* (UNCHANGEDSINCE 18446744073709551616) FLAGS ()",
    "COPY 1,2,3:4 ",
    "MOVE * \"Trash\"",
    "UID MOVE 1:*",
    "SORT (REVERSE ARRIVAL CC DATE FROM SIZE SUBJECT TO) UTF-8",
    "THREAD REFERENCES UTF-8",
    "THREAD ORDEREDSUBJECT US-ASCII ALL",
    "ID (\"name\" \"x\" \"version\"",
    "ID NIL",
    "ENABLE UTF8=ACCEPT CONDSTORE QRESYNC",
    "COMPRESS DEFLATE",
    "GETQUOTA \"\"",
    "GETQUOTAROOT INBOX",
    "SETQUOTA \"\" (STORAGE 10)",
    "XYZZY",
    "",
];

const PIECES: &[&str] = &[
    " ",
    "  ",
    "(",
    ")",
    "[",
    "]",
    "<",
    ">",
    "{",
    "}",
    "\"",
    "\\",
    "*",
    "%",
    "$",
    ":",
    ",",
    ".",
    "~",
    "+",
    "-",
    "NIL",
    "{0}",
    "{1}",
    "{5}",
    "{5+}",
    "{5-}",
    "~{5}",
    "{4097-}",
    "{99999999999}",
    "{18446744073709551615}",
    "{18446744073709551616+}",
    "{-1}",
    "{ 1}",
    "{1 }",
    "{}",
    "{+}",
    "1",
    "0",
    "*",
    "1:*",
    "4294967295",
    "4294967296",
    "99999999999999999999",
    "\r\n",
    "\n",
    "\r",
    "\0",
    "\u{7f}",
    "\u{e9}",
    "\u{1F600}",
    "&AOQ-",
    "&-",
    "&",
    "&AOQ",
    "INBOX",
    "BODY[",
    "]<1.2>",
    "HEADER.FIELDS",
    "(\\Seen \\Deleted $x)",
    "\\",
    "\"\\",
    "\"\r\n",
];

/// One hostile input: a tag, a command, then pieces and random bytes.
fn generate(r: &mut Rng) -> Vec<u8> {
    let mut v = Vec::new();
    let cmds = 1 + r.below(3);
    for _ in 0..cmds {
        match r.below(10) {
            0 => {}
            1 => v.extend_from_slice(b"*"),
            2 => v.extend_from_slice(b"+"),
            _ => v.extend_from_slice(format!("a{}", r.below(1000)).as_bytes()),
        }
        v.push(b' ');
        if r.below(4) == 0 {
            v.extend_from_slice(b"UID ");
        }
        v.extend_from_slice(r.pick(COMMANDS).as_bytes());
        for _ in 0..r.below(12) {
            match r.below(8) {
                0 => {
                    for _ in 0..r.below(8) {
                        v.push(r.next() as u8);
                    }
                }
                1 => {
                    // deep nesting
                    let depth = r.below(300);
                    let open = if r.below(2) == 0 { "(" } else { "NOT " };
                    v.extend(std::iter::repeat_n(open.as_bytes(), depth).flatten());
                }
                2 => {
                    // a literal with its announced or a wrong number of octets
                    let n = r.below(40);
                    let kind = r.pick(&["", "+", "-"]);
                    v.extend_from_slice(format!("{{{n}{kind}}}\r\n").as_bytes());
                    let sent = if r.below(3) == 0 { r.below(40) } else { n };
                    for _ in 0..sent {
                        v.push(r.next() as u8);
                    }
                }
                3 => {
                    // a long line
                    let len = r.below(3000);
                    v.extend(std::iter::repeat_n(b'x', len));
                }
                _ => v.extend_from_slice(r.pick(PIECES).as_bytes()),
            }
        }
        if r.below(8) != 0 {
            v.extend_from_slice(b"\r\n");
        }
    }
    v
}

/// Feeds `input` in random pieces as a server would; returns the largest
/// buffer the driver had to hold.
fn drive(r: &mut Rng, parser: &mut Parser, input: &[u8], limits: &Limits) -> usize {
    let mut buf: Vec<u8> = Vec::new();
    let mut at = 0;
    let mut peak = 0;
    let mut rounds = 0;
    while at < input.len() || !buf.is_empty() {
        rounds += 1;
        assert!(rounds < 100_000, "no progress on {input:?}");
        if at < input.len() {
            let n = 1 + r.below(256);
            let end = (at + n).min(input.len());
            buf.extend_from_slice(&input[at..end]);
            at = end;
        }
        peak = peak.max(buf.len());
        loop {
            let (used, ev) = parser.feed(&buf);
            assert!(used <= buf.len(), "consumed past the buffer");
            buf.drain(..used);
            match ev {
                Event::Command(c) => {
                    assert!(!c.tag.is_empty());
                    // The parsed form is usable: format it.
                    let _ = format!("{c:?}");
                }
                Event::Bad { .. } => {
                    // Sometimes the session is in IDLE or AUTHENTICATE: a
                    // line is taken raw.
                    if r.below(16) == 0
                        && let Some(Ok((_, n))) = take_line(&buf, limits.max_line)
                    {
                        buf.drain(..n);
                    }
                }
                Event::NeedMore | Event::Continue => {
                    if at >= input.len() {
                        // The client sends nothing more: the session
                        // would time out.
                        buf.clear();
                    }
                    break;
                }
                Event::Fatal(_) => {
                    // BYE: the session is over; the rest is not read.
                    buf.clear();
                    at = input.len();
                    *parser = Parser::new(*limits);
                    break;
                }
            }
            if buf.is_empty() {
                break;
            }
        }
    }
    peak
}

fn vm_hwm_kb() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn parser_survives_hostile_inputs_with_bounded_buffers() {
    let count: usize = std::env::var("IMAPD_HOSTILE_INPUTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300_000);
    let limits = Limits {
        max_line: 2048,
        max_literal: 4096,
        max_command: 8192,
        max_depth: 16,
        max_literals: 8192,
    };
    // What a session may have to buffer: a command's text and literals
    // plus one read.
    let bound = limits.max_command
        + limits.max_line
        + (limits.max_literals + limits.max_literal) as usize
        + 64;
    let mut r = Rng(0x1A9D_0C0F_FEE5_EED5);
    let mut parser = Parser::new(limits);
    let mut worst = 0;
    let mut total = 0usize;
    for i in 0..count {
        let input = generate(&mut r);
        total += input.len();
        // Now and then the parser state carries over from the last input.
        if i % 7 == 0 {
            parser = Parser::new(limits);
        }
        let peak = drive(&mut r, &mut parser, &input, &limits);
        assert!(
            peak <= bound,
            "input {i}: buffered {peak} octets (bound {bound})"
        );
        worst = worst.max(peak);
    }
    let hwm = vm_hwm_kb();
    println!("{count} inputs, {total} octets, largest buffer {worst}, VmHWM {hwm} kB");
    assert!(hwm < 256 * 1024, "peak memory {hwm} kB");
}

/// Huge announced literals are refused before any of their octets is
/// read, whatever the default limits, and a line without LF is cut off.
#[test]
fn parser_refuses_huge_literals_and_endless_lines_before_reading_them() {
    let mut p = Parser::default();
    for lit in ["{99999999999}", "{18446744073709551615}", "{52428801}"] {
        let cmd = format!("a APPEND INBOX {lit}\r\n");
        let (used, ev) = p.feed(cmd.as_bytes());
        assert!(
            matches!(ev, Event::Bad { too_big: true, .. }),
            "{lit}: {ev:?}"
        );
        assert_eq!(used, cmd.len());
    }
    for lit in ["{99999999999+}", "{4097-}"] {
        let mut p = Parser::default();
        let cmd = format!("a APPEND INBOX {lit}\r\n");
        assert!(matches!(p.feed(cmd.as_bytes()).1, Event::Fatal(_)), "{lit}");
    }
    let mut p = Parser::default();
    let mut buf = b"a NOOP ".to_vec();
    let mut fatal = false;
    for _ in 0..100 {
        buf.extend(std::iter::repeat_n(b'x', 4096));
        if let (_, Event::Fatal(_)) = p.feed(&buf) {
            fatal = true;
            break;
        }
    }
    assert!(
        fatal && buf.len() < 80_000,
        "no end to a {}-octet line",
        buf.len()
    );
}
