//! THREAD=REFERENCES (RFC 5256 3): link messages by Message-ID and
//! References/In-Reply-To into containers (no loops), prune empty
//! containers, sort by sent date, merge roots of one base subject, and
//! sort siblings.

use super::{Forest, Node, ThreadInfo};
use std::collections::HashMap;

#[derive(Default, Clone)]
struct Cont {
    msg: Option<usize>,
    parent: Option<usize>,
    children: Vec<usize>,
}

struct Arena {
    c: Vec<Cont>,
    by_id: HashMap<String, usize>,
}

impl Arena {
    fn get(&mut self, id: &str) -> usize {
        if let Some(&i) = self.by_id.get(id) {
            return i;
        }
        self.c.push(Cont::default());
        let i = self.c.len() - 1;
        self.by_id.insert(id.to_string(), i);
        i
    }

    /// Is `a` an ancestor of `b` (or `b` itself)?
    fn is_ancestor(&self, a: usize, b: usize) -> bool {
        let mut cur = Some(b);
        let mut steps = 0;
        while let Some(x) = cur {
            if x == a {
                return true;
            }
            steps += 1;
            if steps > self.c.len() {
                return true; // a loop already: refuse to link
            }
            cur = self.c[x].parent;
        }
        false
    }

    fn unlink(&mut self, child: usize) {
        if let Some(p) = self.c[child].parent.take() {
            self.c[p].children.retain(|&x| x != child);
        }
    }

    fn link(&mut self, parent: usize, child: usize) {
        self.unlink(child);
        self.c[child].parent = Some(parent);
        self.c[parent].children.push(child);
    }
}

/// Thread `msgs` by references.
pub fn references(msgs: &[ThreadInfo]) -> Forest {
    let mut a = Arena {
        c: Vec::new(),
        by_id: HashMap::new(),
    };
    // (1) containers and links.
    for (i, m) in msgs.iter().enumerate() {
        let c = match m.message_id.as_deref().filter(|id| !id.is_empty()) {
            Some(id) => {
                let c = a.get(id);
                if a.c[c].msg.is_some() {
                    // A duplicate Message-ID: a container of its own.
                    a.c.push(Cont::default());
                    a.c.len() - 1
                } else {
                    c
                }
            }
            None => {
                a.c.push(Cont::default());
                a.c.len() - 1
            }
        };
        a.c[c].msg = Some(i);
        let refs: Vec<usize> = m
            .references
            .iter()
            .filter(|r| !r.is_empty())
            .map(|r| a.get(r))
            .collect();
        for w in refs.windows(2) {
            let (p, ch) = (w[0], w[1]);
            if a.c[ch].parent.is_none() && !a.is_ancestor(ch, p) {
                a.link(p, ch);
            }
        }
        match refs.last() {
            Some(&p) if !a.is_ancestor(c, p) => a.link(p, c),
            Some(_) => {}
            None => a.unlink(c),
        }
    }
    // (2) the root set.
    let roots: Vec<usize> = (0..a.c.len())
        .filter(|&i| a.c[i].parent.is_none())
        .collect();
    // (3) prune empty containers.
    let mut roots = prune(&mut a, roots);
    // (4) sort the root set by date.
    let keys = sort_all(&mut a, &roots, msgs);
    roots.sort_by_key(|&r| keys.get(r).copied().unwrap_or_default());
    // (5) merge roots with the same base subject.
    let roots = group_by_subject(&mut a, roots, msgs);
    // (6) sort all siblings.
    sort_all(&mut a, &roots, msgs);
    Forest {
        nodes: a
            .c
            .iter()
            .map(|c| Node {
                id: c.msg.and_then(|m| msgs.get(m)).map(|m| m.id),
                children: c.children.clone(),
            })
            .collect(),
        roots,
    }
}

/// Containers below `roots`, children before parents.
fn post_order(a: &Arena, roots: &[usize]) -> Vec<usize> {
    let mut seen = vec![false; a.c.len()];
    let mut out = Vec::new();
    let mut stack: Vec<(usize, bool)> = roots.iter().map(|&r| (r, false)).collect();
    while let Some((c, done)) = stack.pop() {
        if done {
            out.push(c);
            continue;
        }
        if seen.get(c).copied().unwrap_or(true) {
            continue;
        }
        seen[c] = true;
        stack.push((c, true));
        stack.extend(a.c[c].children.iter().map(|&k| (k, false)));
    }
    out
}

/// Step 3: an empty container without children goes; one below the root
/// level gives its children to its parent; one at the root level does so
/// only when it has a single child.
fn prune(a: &mut Arena, roots: Vec<usize>) -> Vec<usize> {
    for c in post_order(a, &roots) {
        let kids = std::mem::take(&mut a.c[c].children);
        let mut keep = Vec::with_capacity(kids.len());
        for k in kids {
            if a.c[k].msg.is_some() {
                keep.push(k);
            } else {
                for g in std::mem::take(&mut a.c[k].children) {
                    a.c[g].parent = Some(c);
                    keep.push(g);
                }
            }
        }
        a.c[c].children = keep;
    }
    let mut out = Vec::new();
    for r in roots {
        if a.c[r].msg.is_some() || a.c[r].children.len() > 1 {
            out.push(r);
        } else if let Some(&only) = a.c[r].children.first() {
            a.c[only].parent = None;
            a.c[r].children.clear();
            out.push(only);
        }
    }
    out
}

/// Sort every set of siblings below `roots` by (sent date, sequence
/// number); an empty container sorts as its first child. Returns the keys.
fn sort_all(a: &mut Arena, roots: &[usize], msgs: &[ThreadInfo]) -> Vec<(i64, u32)> {
    let mut keys = vec![(0i64, 0u32); a.c.len()];
    for c in post_order(a, roots) {
        let mut kids = std::mem::take(&mut a.c[c].children);
        kids.sort_by_key(|&k| keys[k]);
        keys[c] = match a.c[c].msg.and_then(|m| msgs.get(m)) {
            Some(m) => (m.date, m.seq),
            None => kids.first().map_or((0, 0), |&f| keys[f]),
        };
        a.c[c].children = kids;
    }
    keys
}

fn subject_of<'m>(a: &Arena, c: usize, msgs: &'m [ThreadInfo]) -> Option<&'m ThreadInfo> {
    let m = a.c[c]
        .msg
        .or_else(|| a.c[c].children.first().and_then(|&f| a.c[f].msg))?;
    msgs.get(m)
}

fn group_by_subject(a: &mut Arena, roots: Vec<usize>, msgs: &[ThreadInfo]) -> Vec<usize> {
    let mut table: HashMap<String, usize> = HashMap::new();
    for &r in &roots {
        let Some(info) = subject_of(a, r, msgs) else {
            continue;
        };
        if info.subject.is_empty() {
            continue;
        }
        match table.get(&info.subject) {
            None => {
                table.insert(info.subject.clone(), r);
            }
            Some(&old) => {
                let old_dummy = a.c[old].msg.is_none();
                let r_dummy = a.c[r].msg.is_none();
                let old_reply = a.c[old]
                    .msg
                    .and_then(|m| msgs.get(m))
                    .is_some_and(|m| m.is_reply);
                let r_reply = a.c[r]
                    .msg
                    .and_then(|m| msgs.get(m))
                    .is_some_and(|m| m.is_reply);
                if !old_dummy && (r_dummy || (old_reply && !r_reply)) {
                    table.insert(info.subject.clone(), r);
                }
            }
        }
    }
    let mut out: Vec<usize> = Vec::new();
    let mut placed: HashMap<usize, usize> = HashMap::new(); // table container -> index in out
    let mut absorbed = vec![false; a.c.len()];
    for &r in &roots {
        if absorbed.get(r).copied().unwrap_or(false) {
            continue;
        }
        let subj = subject_of(a, r, msgs)
            .map(|i| i.subject.clone())
            .unwrap_or_default();
        let t = if subj.is_empty() {
            r
        } else {
            table.get(&subj).copied().unwrap_or(r)
        };
        if t == r {
            placed.insert(r, out.len());
            out.push(r);
            continue;
        }
        let t_dummy = a.c[t].msg.is_none();
        let r_dummy = a.c[r].msg.is_none();
        let r_reply = a.c[r]
            .msg
            .and_then(|m| msgs.get(m))
            .is_some_and(|m| m.is_reply);
        let t_reply = a.c[t]
            .msg
            .and_then(|m| msgs.get(m))
            .is_some_and(|m| m.is_reply);
        if t_dummy && r_dummy {
            let kids = std::mem::take(&mut a.c[r].children);
            for k in kids {
                a.link(t, k);
            }
        } else if t_dummy {
            a.link(t, r);
        } else if r_dummy {
            // The table entry prefers empty containers; kept for safety.
            a.link(r, t);
            table.insert(subj, r);
            if let Some(&pos) = placed.get(&t) {
                out[pos] = r;
                placed.insert(r, pos);
            } else {
                absorbed[t] = true;
                placed.insert(r, out.len());
                out.push(r);
            }
        } else if r_reply && !t_reply {
            a.link(t, r);
        } else {
            a.c.push(Cont::default());
            let d = a.c.len() - 1;
            absorbed.push(false);
            a.link(d, t);
            a.link(d, r);
            table.insert(subj, d);
            if let Some(&pos) = placed.get(&t) {
                out[pos] = d;
                placed.insert(d, pos);
            } else {
                absorbed[t] = true;
                placed.insert(d, out.len());
                out.push(d);
            }
        }
    }
    out
}
