//! `>From ` quoting and un-quoting as a streaming state machine.
//!
//! The machine takes input in chunks of any size and never holds more than
//! five pending bytes (one `>` and a prefix of `From `), so a line of a
//! million `>` characters costs no memory. Only the start of a line is
//! examined; the rest of a line is copied with one search for `\n`.
//!
//! Two conventions exist. [`Quoting::Mboxo`] is what Postfix's local writes
//! (`MAIL_COPY_QUOTE`): a body line starting with `From ` gets one `>`; a
//! reader removes one `>` from `>From ` lines, so a message that had a
//! `>From ` line of its own comes back as `From `. [`Quoting::Mboxrd`] adds
//! a `>` to every line matching `>*From ` and removes one again on reading,
//! so every message round-trips exactly.

/// Which `From ` quoting convention a mailbox uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Quoting {
    /// Quote only `From ` lines; un-quote only `>From ` lines (Postfix).
    #[default]
    Mboxo,
    /// Quote and un-quote every `>*From ` line by one `>`: lossless.
    Mboxrd,
}

/// Whether a [`Quoter`] adds or removes the `>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Writing a mailbox: add a `>`.
    Quote,
    /// Reading a mailbox: remove a `>`.
    Unquote,
}

const FROM: &[u8; 5] = b"From ";

/// Where in a line the machine is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the first byte of a line.
    Start,
    /// Saw `gt` (>= 1) leading `>`; the first one is pending, the others
    /// were already written (they are identical bytes, so order is moot).
    Gt(u64),
    /// Saw `gt` leading `>` (the first pending when gt >= 1) and the first
    /// `matched` bytes of `From ` (pending).
    From { gt: u64, matched: usize },
    /// Inside a line that needs no change.
    Body,
}

/// The streaming quoter or un-quoter.
#[derive(Debug, Clone)]
pub(crate) struct Quoter {
    quoting: Quoting,
    direction: Direction,
    state: State,
    /// Lines changed so far (a `>` added or removed).
    changed: u64,
}

impl Quoter {
    /// A machine positioned at the start of a line.
    pub(crate) fn new(quoting: Quoting, direction: Direction) -> Quoter {
        Quoter {
            quoting,
            direction,
            state: State::Start,
            changed: 0,
        }
    }

    /// How many lines had a `>` added or removed.
    pub(crate) fn changed(&self) -> u64 {
        self.changed
    }

    /// Processes `input`, appending the result to `out`. `out` grows by at
    /// most `input.len() + 6` bytes.
    pub(crate) fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let mut i = 0;
        while let Some(&b) = input.get(i) {
            match self.state {
                State::Body => {
                    let rest = input.get(i..).unwrap_or_default();
                    match rest.iter().position(|&c| c == b'\n') {
                        Some(nl) => {
                            out.extend_from_slice(rest.get(..=nl).unwrap_or_default());
                            i = i.saturating_add(nl).saturating_add(1);
                            self.state = State::Start;
                        }
                        None => {
                            out.extend_from_slice(rest);
                            i = input.len();
                        }
                    }
                }
                State::Start => {
                    i += 1;
                    match b {
                        b'>' => self.state = State::Gt(1),
                        b'F' => self.state = State::From { gt: 0, matched: 1 },
                        _ => self.plain(b, out),
                    }
                }
                State::Gt(gt) => {
                    i += 1;
                    match b {
                        b'>' => {
                            out.push(b'>');
                            self.state = State::Gt(gt.saturating_add(1));
                        }
                        b'F' => self.state = State::From { gt, matched: 1 },
                        _ => {
                            out.push(b'>');
                            self.plain(b, out);
                        }
                    }
                }
                State::From { gt, matched } => {
                    if FROM.get(matched) == Some(&b) {
                        i += 1;
                        if matched + 1 == FROM.len() {
                            self.matched(gt, out);
                        } else {
                            self.state = State::From {
                                gt,
                                matched: matched + 1,
                            };
                        }
                    } else {
                        // Not a From_ line: release what was held and look
                        // at this byte again as ordinary line content.
                        self.release(gt, matched, out);
                        self.state = State::Body;
                    }
                }
            }
        }
    }

    /// Releases pending bytes at the end of the input.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>) {
        match self.state {
            State::Gt(_) => out.push(b'>'),
            State::From { gt, matched } => self.release(gt, matched, out),
            State::Start | State::Body => {}
        }
        self.state = State::Start;
    }

    /// Writes an ordinary byte and moves to the right state.
    fn plain(&mut self, b: u8, out: &mut Vec<u8>) {
        out.push(b);
        self.state = if b == b'\n' {
            State::Start
        } else {
            State::Body
        };
    }

    /// Writes the held `>` (if any) and the held prefix of `From `.
    fn release(&self, gt: u64, matched: usize, out: &mut Vec<u8>) {
        if gt > 0 {
            out.push(b'>');
        }
        out.extend_from_slice(FROM.get(..matched).unwrap_or_default());
    }

    /// A complete `>*From ` prefix: add or drop one `>` by the convention.
    fn matched(&mut self, gt: u64, out: &mut Vec<u8>) {
        let change = match (self.direction, self.quoting) {
            (Direction::Quote, Quoting::Mboxo) => gt == 0,
            (Direction::Quote, Quoting::Mboxrd) => true,
            (Direction::Unquote, Quoting::Mboxo) => gt == 1,
            (Direction::Unquote, Quoting::Mboxrd) => gt >= 1,
        };
        let mut held = u64::from(gt > 0);
        if change {
            self.changed = self.changed.saturating_add(1);
            match self.direction {
                Direction::Quote => held += 1,
                Direction::Unquote => held -= 1,
            }
        }
        for _ in 0..held {
            out.push(b'>');
        }
        out.extend_from_slice(FROM);
        self.state = State::Body;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(q: Quoting, d: Direction, input: &[u8], chunk: usize) -> Vec<u8> {
        let mut m = Quoter::new(q, d);
        let mut out = Vec::new();
        for c in input.chunks(chunk.max(1)) {
            m.feed(c, &mut out);
        }
        m.finish(&mut out);
        out
    }

    #[test]
    fn mboxo_quotes_only_from() {
        let input = b"From a\nx From b\n>From c\nFrom\nFrom x";
        let out = run(Quoting::Mboxo, Direction::Quote, input, 1000);
        assert_eq!(out, b">From a\nx From b\n>From c\nFrom\n>From x");
        for chunk in 1..8 {
            assert_eq!(run(Quoting::Mboxo, Direction::Quote, input, chunk), out);
        }
        let back = run(Quoting::Mboxo, Direction::Unquote, &out, 3);
        assert_eq!(back, b"From a\nx From b\nFrom c\nFrom\nFrom x");
    }

    #[test]
    fn mboxrd_round_trips() {
        let input = b">>>From a\n>From\n>>x\n>\nFro\nFrom ";
        let out = run(Quoting::Mboxrd, Direction::Quote, input, 2);
        assert_eq!(out, b">>>>From a\n>From\n>>x\n>\nFro\n>From ");
        for chunk in 1..8 {
            assert_eq!(run(Quoting::Mboxrd, Direction::Unquote, &out, chunk), input);
        }
    }

    proptest::proptest! {
        #[test]
        fn chunking_does_not_change_output(
            input in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just(b'>'),
                    proptest::strategy::Just(b'\n'),
                    proptest::strategy::Just(b'F'),
                    proptest::strategy::Just(b'r'),
                    proptest::strategy::Just(b'o'),
                    proptest::strategy::Just(b'm'),
                    proptest::strategy::Just(b' '),
                    proptest::prelude::any::<u8>(),
                ],
                0..200,
            ),
            chunk in 1usize..17,
        ) {
            for q in [Quoting::Mboxo, Quoting::Mboxrd] {
                for d in [Direction::Quote, Direction::Unquote] {
                    let whole = run(q, d, &input, input.len().max(1));
                    proptest::prop_assert_eq!(&run(q, d, &input, chunk), &whole);
                }
                let quoted = run(q, Direction::Quote, &input, chunk);
                if q == Quoting::Mboxrd {
                    proptest::prop_assert_eq!(run(q, Direction::Unquote, &quoted, chunk), input.clone());
                }
            }
        }
    }

    #[test]
    fn long_gt_run_costs_no_memory() {
        let mut input = vec![b'>'; 100_000];
        input.extend_from_slice(b"From x\n");
        let out = run(Quoting::Mboxrd, Direction::Quote, &input, 4096);
        assert_eq!(out.len(), input.len() + 1);
        assert_eq!(run(Quoting::Mboxrd, Direction::Unquote, &out, 4096), input);
    }
}
