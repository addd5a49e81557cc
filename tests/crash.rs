//! Crash test (issue 3): 2,000 messages through the project's sendmail
//! while pickup, cleanup, qmgr, local, virtual and master are killed with
//! SIGKILL at random moments and restarted; afterwards every message for
//! which sendmail exited 0 is in a mailbox exactly once.
//!
//! The instance runs the shipped master.cf services with virtual Maildir
//! and mbox users and local delivery to `nobody`'s mbox in a spool inside
//! the temp directory. 20 submitters send in parallel; a killer thread
//! picks a victim and a pause from a seeded generator (the seed is
//! printed; `CRASH_SEED=n` repeats the sequence of victims and pauses,
//! though not their timing relative to the mail flow; `CRASH_MESSAGES=n`
//! changes the count for a quick local try). When master is killed its orphaned
//! children are killed too (as `postfix abort` would) and the instance
//! is started again. At the end everything is restarted, the queue is
//! flushed until empty, and every mailbox is read back: loss and
//! duplicate counts are printed and must both be 0.
//!
//! What makes it hold: delivery agents mark a recipient done themselves
//! right after the fsynced delivery (a killed qmgr does not deliver
//! again); a retry after a killed agent or qmgr carries maybe_delivered
//! and local/virtual look for the earlier copy (Maildir tag, mbox
//! Delivered-To + queue id); pickup's maildrop_id/maildrop_retry with
//! qmgr's hold-back let cleanup answer a repeated maildrop file with the
//! first queue file, and cleanup's claim on the maildrop file makes the
//! next pickup wait until that first queue file is complete (a run in CI
//! once delivered a message twice before the claim existed: the second
//! cleanup looked for the first copy while the first was still fsyncing).

use crate::util::{Instance, alive, bin_dir, need_instance, read_maildir, wait_until};
use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// Messages in a run (the number).
const MESSAGES: usize = 2000;

/// Parallel submitters.
const SUBMITTERS: usize = 20;

/// Daemons the killer picks from (master is handled apart).
const VICTIMS: [&str; 6] = ["pickup", "cleanup", "qmgr", "local", "virtual", "master"];

/// Names of the instance's daemons (orphans to kill after master died).
const DAEMONS: [&str; 9] = [
    "pickup",
    "cleanup",
    "qmgr",
    "local",
    "virtual",
    "trivial-rewrite",
    "bounce",
    "showq",
    "master",
];

/// A small seeded generator (xorshift64*): reproducible runs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Who owns what the agents write: nobody when root, else ourselves.
fn mail_ids() -> (u32, u32) {
    if nix::unistd::geteuid().is_root() {
        (65534, 65534)
    } else {
        (
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        )
    }
}

/// The services of etc-postfix/master.cf.
fn shipped_master_cf() -> String {
    // Without the smtp inet service: parallel instances cannot all have port 25.
    crate::util::shipped_services()
}

/// The instance: spool for local, virtual Maildir (vm) and mbox (vb).
fn instance() -> (Instance, PathBuf) {
    let (uid, gid) = mail_ids();
    let inst = Instance::new("", "");
    let base = inst.dir.path().canonicalize().unwrap();
    std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).unwrap();
    let b = base.display();
    let main = format!(
        "myhostname = mx.test.example\n\
         mydestination = localhost, $myhostname\n\
         mail_spool_directory = {b}/spool\n\
         alias_maps = texthash:{b}/aliases\n\
         alias_database = texthash:{b}/aliases\n\
         virtual_mailbox_domains = virt.test\n\
         virtual_mailbox_base = {b}/vmail\n\
         virtual_mailbox_maps = texthash:{b}/vmailbox\n\
         virtual_uid_maps = static:{uid}\n\
         virtual_gid_maps = static:{gid}\n\
         virtual_minimum_uid = 1\n\
         minimal_backoff_time = 1s\n\
         maximal_backoff_time = 2s\n\
         queue_run_delay = 1s\n\
         stale_lock_time = 5s\n"
    );
    let mut cf = std::fs::read_to_string(inst.config_dir.join("main.cf")).unwrap();
    cf.push_str(&main);
    std::fs::write(inst.config_dir.join("main.cf"), cf).unwrap();
    inst.write_master_cf(&shipped_master_cf());
    let spool = base.join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    std::fs::set_permissions(&spool, std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::create_dir_all(base.join("vmail")).unwrap();
    std::os::unix::fs::chown(base.join("vmail"), Some(uid), Some(gid)).unwrap();
    std::fs::write(base.join("vmailbox"), "vm@virt.test vm/\nvb@virt.test vb\n").unwrap();
    std::fs::write(base.join("aliases"), "postmaster: nobody\n").unwrap();
    inst.start();
    (inst, base)
}

/// The recipient of message `i`: Maildir, mbox (virtual) or local mbox.
fn recipient(i: usize) -> &'static str {
    match i % 3 {
        0 => "vm@virt.test",
        1 => "vb@virt.test",
        _ => "nobody",
    }
}

/// One submission; true when sendmail exited 0.
fn submit(config: &Path, i: usize) -> bool {
    let mut child = match Command::new(bin_dir().join("sendmail"))
        .arg("-C")
        .arg(config)
        .args(["-i", "-f", "crash@mx.test.example", recipient(i)])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(_) => return false,
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = write!(
            stdin,
            "From: crash@mx.test.example\nTo: {}\nSubject: crash-test id {i}\n\n\
             body of crash-test message {i}\n",
            recipient(i)
        );
    }
    child.wait().map(|s| s.success()).unwrap_or(false)
}

/// The process name (comm) of `pid`.
fn comm(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// master's children named `name`.
fn daemon_pids(inst: &Instance, name: &str) -> Vec<i32> {
    inst.children()
        .into_iter()
        .filter(|p| comm(*p) == name)
        .collect()
}

fn kill9(pid: i32) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
}

/// The instance's daemons still alive (orphans after master died),
/// submitters' sendmail and postdrop left alone.
fn orphans(inst: &Instance) -> Vec<i32> {
    inst.leftovers()
        .into_iter()
        .filter(|p| DAEMONS.contains(&comm(*p).as_str()))
        .collect()
}

/// master is down: kill its orphans (`postfix abort` style) and start
/// again, retrying while a start fails.
fn restart(inst: &Instance) {
    for _ in 0..50 {
        for p in orphans(inst) {
            kill9(p);
        }
        wait_until(Duration::from_secs(2), || {
            orphans(inst).iter().all(|p| !alive(*p))
        });
        if inst.postfix(&["start"]).status.success() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("cannot restart the instance\n{}", inst.log());
}

fn master_running(inst: &Instance) -> bool {
    inst.master_pid().is_some_and(alive)
}

/// Kills one random victim at random moments until `stop`; returns the
/// kills per victim.
fn killer(inst: &Instance, seed: u64, stop: &AtomicBool) -> HashMap<&'static str, usize> {
    let mut rng = Rng(seed | 1);
    let mut kills: HashMap<&'static str, usize> = HashMap::new();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50 + rng.below(400)));
        if !master_running(inst) {
            restart(inst);
            continue;
        }
        let victim = VICTIMS[rng.below(VICTIMS.len() as u64) as usize];
        if victim == "master" {
            // Less often than the others: each costs a full restart.
            if rng.below(3) != 0 {
                continue;
            }
            if let Some(m) = inst.master_pid() {
                kill9(m);
                *kills.entry(victim).or_default() += 1;
                wait_until(Duration::from_secs(5), || !alive(m));
                // Sometimes leave the orphans a moment to finish.
                if rng.below(2) == 0 {
                    std::thread::sleep(Duration::from_millis(rng.below(300)));
                }
                restart(inst);
            }
            continue;
        }
        let pids = daemon_pids(inst, victim);
        if pids.is_empty() {
            continue;
        }
        let p = pids[rng.below(pids.len() as u64) as usize];
        kill9(p);
        *kills.entry(victim).or_default() += 1;
    }
    kills
}

/// Wakes pickup (it waits for a trigger after cleanup went away).
fn wake(inst: &Instance, service: &str, byte: u8) {
    if let Ok(mut s) = std::os::unix::net::UnixStream::connect(inst.socket(false, service)) {
        let _ = s.write_all(&[byte]);
    }
}

/// Files in the queues that hold mail not yet delivered.
fn queued(qdir: &Path) -> usize {
    fn count(p: &Path) -> usize {
        std::fs::read_dir(p)
            .map(|rd| {
                rd.flatten()
                    .map(|e| {
                        if e.file_type().is_ok_and(|t| t.is_dir()) {
                            count(&e.path())
                        } else {
                            1
                        }
                    })
                    .sum()
            })
            .unwrap_or(0)
    }
    ["maildrop", "incoming", "active", "deferred", "hold"]
        .iter()
        .map(|q| count(&qdir.join(q)))
        .sum()
}

/// Complete queue files (incomplete ones from a killed cleanup or postdrop
/// are left for postsuper's cleanup after a day and hold no mail).
fn complete_queued(qdir: &Path) -> usize {
    fn count(p: &Path) -> usize {
        std::fs::read_dir(p)
            .map(|rd| {
                rd.flatten()
                    .map(|e| {
                        let Ok(m) = e.metadata() else { return 0 };
                        if m.is_dir() {
                            count(&e.path())
                        } else if m.permissions().mode() & 0o100 != 0 {
                            1
                        } else {
                            0
                        }
                    })
                    .sum()
            })
            .unwrap_or(0)
    }
    ["maildrop", "incoming", "active", "deferred", "hold"]
        .iter()
        .map(|q| count(&qdir.join(q)))
        .sum()
}

/// The messages of an mbox file (From_ lines removed).
fn read_mbox(path: &Path) -> Vec<Vec<u8>> {
    let Ok(data) = std::fs::read(path) else {
        return Vec::new();
    };
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut previous_blank = true;
    for line in data.split_inclusive(|b| *b == b'\n') {
        if previous_blank && line.starts_with(b"From ") {
            out.push(Vec::new());
        } else if let Some(m) = out.last_mut() {
            m.extend_from_slice(line);
        }
        previous_blank = line == b"\n";
    }
    out
}

/// The test id in a message's Subject header (and checked in its body).
fn message_id(msg: &[u8]) -> Option<usize> {
    let text = String::from_utf8_lossy(msg);
    let (head, body) = text.split_once("\n\n")?;
    let id = head
        .lines()
        .find_map(|l| l.strip_prefix("Subject: crash-test id "))?
        .trim()
        .parse()
        .ok()?;
    body.contains(&format!("body of crash-test message {id}\n"))
        .then_some(id)
}

#[test]
fn crash_test_loses_nothing_and_delivers_nothing_twice() {
    need_instance();
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    let total = std::env::var("CRASH_MESSAGES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(MESSAGES);
    println!(
        "crash test: seed {seed} (CRASH_SEED={seed} repeats the kill sequence), {total} messages"
    );
    let (inst, base) = instance();
    let inst = Arc::new(inst);
    let started = Instant::now();

    let next = Arc::new(AtomicUsize::new(0));
    let accepted: Arc<std::sync::Mutex<Vec<bool>>> =
        Arc::new(std::sync::Mutex::new(vec![false; total]));
    let stop = Arc::new(AtomicBool::new(false));
    let kill_thread = {
        let inst = Arc::clone(&inst);
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || killer(&inst, seed, &stop))
    };
    let submitters: Vec<_> = (0..SUBMITTERS)
        .map(|_| {
            let next = Arc::clone(&next);
            let accepted = Arc::clone(&accepted);
            let config = inst.config_dir.clone();
            std::thread::spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return;
                    }
                    let ok = submit(&config, i);
                    accepted.lock().unwrap()[i] = ok;
                }
            })
        })
        .collect();
    for s in submitters {
        s.join().unwrap();
    }
    let submitted = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let kills = kill_thread.join().unwrap();

    // Everything up again; flush until nothing complete is queued.
    if !master_running(&inst) {
        restart(&inst);
    }
    let drained = wait_until(Duration::from_secs(90), || {
        if !master_running(&inst) {
            restart(&inst);
        }
        wake(&inst, "pickup", b'W');
        let _ = Command::new(bin_dir().join("postqueue"))
            .arg("-c")
            .arg(&inst.config_dir)
            .arg("-f")
            .output();
        std::thread::sleep(Duration::from_millis(500));
        complete_queued(&inst.qdir) == 0
    });
    let elapsed = started.elapsed();

    // Read every mailbox back.
    let mut seen: HashMap<usize, usize> = HashMap::new();
    let mut other = 0usize;
    let boxes = [
        read_maildir(&base.join("vmail/vm")),
        read_mbox(&base.join("vmail/vb")),
        read_mbox(&base.join("spool/nobody")),
    ];
    for msg in boxes.iter().flatten() {
        match message_id(msg) {
            Some(id) if id < total => *seen.entry(id).or_default() += 1,
            _ => other += 1,
        }
    }
    let accepted = accepted.lock().unwrap().clone();
    let ok_count = accepted.iter().filter(|a| **a).count();
    let failed = total - ok_count;
    let lost: Vec<usize> = (0..total)
        .filter(|i| accepted[*i] && !seen.contains_key(i))
        .collect();
    let duplicates: Vec<(usize, usize)> = seen
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(i, n)| (*i, *n))
        .collect();
    let failed_but_delivered = (0..total)
        .filter(|i| !accepted[*i] && seen.contains_key(i))
        .count();
    let log = inst.log();
    let suppressed = log.matches("(duplicate suppressed)").count();
    let maildrop_repeats = log.matches(": duplicate of maildrop file ").count();
    let mut kills: Vec<_> = kills.into_iter().collect();
    kills.sort();
    println!(
        "crash test: seed {seed}: {total} submitted in {:.1}s, all done in {:.1}s; \
         sendmail exit 0: {ok_count}, non-zero: {failed} \
         ({failed_but_delivered} of those delivered anyway); kills: {kills:?}; \
         lost: {}, duplicates: {}, other messages: {other}, left in queue: {} ({} complete); \
         retries that found the earlier copy: {suppressed} in a mailbox, \
         {maildrop_repeats} in incoming/",
        submitted.as_secs_f64(),
        elapsed.as_secs_f64(),
        lost.len(),
        duplicates.len(),
        queued(&inst.qdir),
        complete_queued(&inst.qdir),
    );
    assert!(drained, "queue not empty after 90 s\n{}", tail(&inst.log()));
    assert!(
        lost.is_empty(),
        "lost (sendmail exited 0, not delivered): {lost:?}\n{}",
        tail(&inst.log())
    );
    assert!(
        duplicates.is_empty(),
        "delivered more than once (id, copies): {duplicates:?}\n{}",
        duplicate_story(&boxes, &duplicates, &log)
    );
    assert_eq!(other, 0, "unexpected messages in the mailboxes");
    // Messages whose sendmail failed are not required, but they were
    // counted: every index is either accepted or failed.
    assert_eq!(ok_count + failed, total);
}

/// For each duplicated message: the headers of every copy and the log
/// lines of every queue id those headers name.
fn duplicate_story(boxes: &[Vec<Vec<u8>>], duplicates: &[(usize, usize)], log: &str) -> String {
    let mut out = String::new();
    for (id, _) in duplicates {
        let mut ids: Vec<String> = Vec::new();
        for msg in boxes.iter().flatten() {
            if message_id(msg) != Some(*id) {
                continue;
            }
            let text = String::from_utf8_lossy(msg);
            let head = text.split("\n\n").next().unwrap_or_default();
            out.push_str(&format!("--- copy of id {id}:\n{head}\n"));
            for word in head.split_whitespace().collect::<Vec<_>>().windows(2) {
                if word[0] == "id" {
                    let q = word[1].trim_end_matches(';').to_string();
                    if !ids.contains(&q) {
                        ids.push(q);
                    }
                }
            }
        }
        for q in &ids {
            out.push_str(&format!("--- log of {q}:\n"));
            for line in log.lines().filter(|l| l.contains(q.as_str())) {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// The last lines of the log, for a failure message.
fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}
