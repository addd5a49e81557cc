//! THREAD (RFC 5256): ORDEREDSUBJECT and REFERENCES over per-message
//! thread data, and the parenthesised THREAD response form.

pub mod orderedsubject;
pub mod references;
pub mod subject;

use mail_parser::{HeaderValue, Message};
use subject::base_subject;

/// What threading needs of one message.
#[derive(Debug, Clone, Default)]
pub struct ThreadInfo {
    /// The number to print (sequence number or UID).
    pub id: u32,
    /// Sequence number (ties).
    pub seq: u32,
    /// Sent date (Date: in UTC, else the internal date), Unix time.
    pub date: i64,
    /// Message-ID without angle brackets.
    pub message_id: Option<String>,
    /// References (or the first In-Reply-To id), oldest first.
    pub references: Vec<String>,
    /// Base subject, case-folded.
    pub subject: String,
    /// The subject was a reply or forward.
    pub is_reply: bool,
}

fn ids(v: &HeaderValue<'_>) -> Vec<String> {
    match v {
        HeaderValue::Text(t) => vec![t.to_string()],
        HeaderValue::TextList(l) => l.iter().map(|s| s.to_string()).collect(),
        _ => Vec::new(),
    }
}

/// The most References ids kept per message (the last ones).
pub const MAX_REFERENCES: usize = 100;

/// Thread data of a message (`msg` None: no ids, no subject).
pub fn thread_info(msg: Option<&Message<'_>>, id: u32, seq: u32, arrival: i64) -> ThreadInfo {
    let Some(m) = msg else {
        return ThreadInfo {
            id,
            seq,
            date: arrival,
            ..ThreadInfo::default()
        };
    };
    let mut references = ids(m.references());
    // Only the nearest ancestors count: a hostile References header with
    // thousands of ids would make linking cost ids times chain depth.
    if references.len() > MAX_REFERENCES {
        references.drain(..references.len() - MAX_REFERENCES);
    }
    if references.is_empty() {
        references = ids(m.in_reply_to()).into_iter().take(1).collect();
    }
    let (subject, is_reply) = base_subject(m.subject().unwrap_or(""));
    ThreadInfo {
        id,
        seq,
        date: m
            .date()
            .filter(|d| d.is_valid())
            .map_or(arrival, |d| d.to_timestamp()),
        message_id: m.message_id().map(str::to_string),
        references,
        subject,
        is_reply,
    }
}

/// One node of a thread forest: a message (or none, for an empty
/// container that holds siblings together) and its children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The message's number, None for an empty container.
    pub id: Option<u32>,
    /// Children, as indices into [`Forest::nodes`], in order.
    pub children: Vec<usize>,
}

/// Threads as a flat forest (deep reply chains need no recursion).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Forest {
    /// All nodes.
    pub nodes: Vec<Node>,
    /// The threads' roots, in order.
    pub roots: Vec<usize>,
}

enum Step {
    Open,
    Close,
    Space,
    Visit(usize),
}

impl Forest {
    /// The THREAD response data: `(1 2 (3)(4))(5)`.
    pub fn format(&self) -> String {
        let mut out = String::new();
        let mut stack: Vec<Step> = Vec::new();
        for &r in self.roots.iter().rev() {
            stack.extend([Step::Close, Step::Visit(r), Step::Open]);
        }
        let mut budget = self.nodes.len().saturating_mul(4) + self.roots.len() * 3 + 16;
        while let Some(step) = stack.pop() {
            budget = budget.saturating_sub(1);
            if budget == 0 {
                break; // a cycle would be a bug; never loop forever
            }
            match step {
                Step::Open => out.push('('),
                Step::Close => out.push(')'),
                Step::Space => out.push(' '),
                Step::Visit(n) => {
                    let Some(node) = self.nodes.get(n) else {
                        continue;
                    };
                    if let Some(id) = node.id {
                        out.push_str(&id.to_string());
                    }
                    match node.children.as_slice() {
                        [] => {}
                        [one] if node.id.is_some() => {
                            stack.extend([Step::Visit(*one), Step::Space])
                        }
                        many => {
                            for &c in many.iter().rev() {
                                stack.extend([Step::Close, Step::Visit(c), Step::Open]);
                            }
                            if node.id.is_some() {
                                stack.push(Step::Space);
                            }
                        }
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
