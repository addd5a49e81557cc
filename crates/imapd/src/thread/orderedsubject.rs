//! THREAD=ORDEREDSUBJECT (RFC 5256 3): messages sorted by base subject and
//! sent date; each run of one subject is a thread whose first message is
//! the parent of the others; threads ordered by their first message's date.

use super::{Forest, Node, ThreadInfo};

/// Thread `msgs` by subject.
pub fn ordered_subject(msgs: &[ThreadInfo]) -> Forest {
    let mut v: Vec<&ThreadInfo> = msgs.iter().collect();
    v.sort_by(|a, b| {
        a.subject
            .cmp(&b.subject)
            .then(a.date.cmp(&b.date))
            .then(a.seq.cmp(&b.seq))
    });
    let mut f = Forest::default();
    let mut roots: Vec<(i64, u32, usize)> = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let first = v[i];
        let root = f.nodes.len();
        f.nodes.push(Node {
            id: Some(first.id),
            children: Vec::new(),
        });
        let mut j = i + 1;
        while j < v.len() && v[j].subject == first.subject {
            f.nodes.push(Node {
                id: Some(v[j].id),
                children: Vec::new(),
            });
            let k = f.nodes.len() - 1;
            f.nodes[root].children.push(k);
            j += 1;
        }
        roots.push((first.date, first.seq, root));
        i = j;
    }
    roots.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    f.roots = roots.into_iter().map(|r| r.2).collect();
    f
}
