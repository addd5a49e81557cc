//! virtual under a real master: Maildir and mbox delivery, catch-all,
//! unknown user, Delivered-To loop, ids of the delivered files.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use delivery::testing::{Instance, bin_dir, need_instance};
use proto::deliver::Action;

const MASTER_CF: &str = "virtual unix - n n - - virtual\n";

fn bin() -> std::path::PathBuf {
    bin_dir(env!("CARGO_BIN_EXE_virtual"))
}

/// The uid virtual should deliver as: nobody when root, else ourselves.
fn target_uid() -> u32 {
    if nix::unistd::geteuid().is_root() {
        65534
    } else {
        nix::unistd::geteuid().as_raw()
    }
}

fn instance() -> Instance {
    need_instance();
    let uid = target_uid();
    let main = format!(
        "virtual_mailbox_base = @BASE@/vmail\nvirtual_mailbox_maps = texthash:@BASE@/vmailbox\n\
         virtual_uid_maps = static:{uid}\nvirtual_gid_maps = static:{uid}\nvirtual_minimum_uid = 1\n\
         recipient_delimiter = +\n"
    );
    let mut inst = Instance::new(&bin(), &main, MASTER_CF);
    let vmail = inst.base.join("vmail");
    std::fs::create_dir(&vmail).unwrap();
    std::os::unix::fs::chown(&vmail, Some(uid), Some(uid)).unwrap();
    std::fs::write(
        inst.base.join("vmailbox"),
        "bob@example.com example.com/bob/\ncarol@example.com example.com/carol\n\
         @catch.example catchall/\n",
    )
    .unwrap();
    std::fs::create_dir(vmail.join("example.com")).unwrap();
    std::os::unix::fs::chown(vmail.join("example.com"), Some(uid), Some(uid)).unwrap();
    inst.start(&bin(), "virtual");
    inst
}

fn maildir_messages(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir.join("new"))
        .map(|rd| {
            rd.flatten()
                .map(|e| std::fs::read_to_string(e.path()).unwrap())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

#[test]
fn maildir_mbox_catchall_and_unknown() {
    let inst = instance();
    let msg = "From: alice@example.org\nSubject: hi\n\nFrom the start\nbody\n";
    let reply = inst.send(
        "virtual",
        "alice@example.org",
        &[
            "bob+box@example.com",
            "carol@example.com",
            "anyone@catch.example",
            "nobody@example.com",
        ],
        msg,
    );
    let actions: Vec<Action> = reply.statuses.iter().map(|s| s.action).collect();
    assert_eq!(
        actions,
        [
            Action::Delivered,
            Action::Delivered,
            Action::Delivered,
            Action::Bounced
        ],
        "{reply:?}\n{}",
        inst.log()
    );
    let unknown = &reply.statuses[3];
    assert_eq!(unknown.dsn, "5.1.1");
    assert_eq!(unknown.text, "unknown user: \"nobody@example.com\"");

    let bob = inst.base.join("vmail/example.com/bob");
    let got = maildir_messages(&bob);
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0],
        format!(
            "Return-Path: <alice@example.org>\nX-Original-To: bob+box@example.com\n\
             Delivered-To: bob+box@example.com\n{msg}"
        )
    );
    let file = std::fs::read_dir(bob.join("new"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(file.metadata().unwrap().uid(), target_uid());

    let carol = std::fs::read_to_string(inst.base.join("vmail/example.com/carol")).unwrap();
    assert!(carol.starts_with("From alice@example.org "), "{carol}");
    assert!(carol.contains("\nDelivered-To: carol@example.com\n"));
    assert!(carol.contains("\n>From the start\n"));
    assert_eq!(carol.matches("Subject: hi").count(), 1);

    assert_eq!(maildir_messages(&inst.base.join("vmail/catchall")).len(), 1);

    let log = inst.log();
    assert!(
        log.contains("to=<bob+box@example.com>, relay=virtual, delay=")
            && log.contains("dsn=2.0.0, status=sent (delivered to maildir)"),
        "{log}"
    );
    assert!(log.contains("status=sent (delivered to mailbox)"));
    assert!(log.contains("to=<nobody@example.com>, relay=virtual, delay="));
    assert!(log.contains("dsn=5.1.1, status=bounced (unknown user: \"nobody@example.com\")"));
}

#[test]
fn delivered_to_loop_bounces() {
    let inst = instance();
    let reply = inst.send(
        "virtual",
        "alice@example.org",
        &["bob@example.com"],
        "Delivered-To: Bob@Example.com\nSubject: loop\n\nx\n",
    );
    let st = &reply.statuses[0];
    assert_eq!((st.action, st.dsn.as_str()), (Action::Bounced, "5.4.6"));
    assert_eq!(st.text, "mail forwarding loop for bob@example.com");
    assert!(maildir_messages(&inst.base.join("vmail/example.com/bob")).is_empty());
}

#[test]
fn missing_queue_file_defers() {
    let inst = instance();
    let id = inst.enqueue("a@b", &["bob@example.com"], "S: x\n\ny\n");
    let mut req = inst.request(&id, "a@b", &[("bob@example.com", "bob@example.com")]);
    req.queue_name = "deferred".into();
    let reply = inst.deliver("virtual", &req);
    assert_eq!(reply.statuses[0].action, Action::Deferred);
}

#[test]
fn damaged_queue_file_defers_and_leaves_no_mail() {
    let inst = instance();
    let id = inst.enqueue("a@b", &["bob@example.com"], "Subject: x\n\nMARKER body\n");
    delivery::testing::damage_content(&inst.qdir, &id, "MARKER");
    let req = inst.request(&id, "a@b", &[("bob@example.com", "bob@example.com")]);
    let st = inst.deliver("virtual", &req).statuses[0].clone();
    assert_eq!(st.action, Action::Deferred, "{st:?}");
    let bob = inst.base.join("vmail/example.com/bob");
    assert!(maildir_messages(&bob).is_empty());
    let tmp: Vec<_> = std::fs::read_dir(bob.join("tmp")).unwrap().collect();
    assert!(tmp.is_empty());
}

#[test]
fn development_instance_delivers_as_itself() {
    if !nix::unistd::geteuid().is_root() {
        testkit::skip("needs root to run master as nobody");
        return;
    }
    need_instance();
    let main = "virtual_mailbox_base = @BASE@/vmail\nvirtual_mailbox_maps = texthash:@BASE@/vmailbox\n\
                virtual_uid_maps = static:5000\nvirtual_gid_maps = static:5000\n\
                virtual_mailbox_limit = 1000\n";
    let mut inst = Instance::new(&bin(), main, MASTER_CF);
    std::fs::create_dir(inst.base.join("vmail")).unwrap();
    std::fs::write(
        inst.base.join("vmailbox"),
        "dev@example.net example.net/dev/\n",
    )
    .unwrap();
    inst.start_as(&bin(), "virtual", Some((65534, 65534)));
    let reply = inst.send(
        "virtual",
        "a@b",
        &["dev@example.net"],
        "Subject: s\n\nbody\n",
    );
    assert_eq!(
        reply.statuses[0].action,
        Action::Delivered,
        "{}",
        inst.log()
    );
    let dev = inst.base.join("vmail/example.net/dev");
    let file = std::fs::read_dir(dev.join("new"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(file.metadata().unwrap().uid(), 65534);
    // virtual_mailbox_limit applies to each Maildir file.
    let big = format!("Subject: big\n\n{}\n", "x".repeat(2000));
    let st = inst
        .send("virtual", "a@b", &["dev@example.net"], &big)
        .statuses[0]
        .clone();
    assert_eq!(
        (st.action, st.dsn.as_str()),
        (Action::Bounced, "5.2.2"),
        "{st:?}"
    );
}

#[test]
fn bad_ids_defer_as_configuration_errors() {
    if !nix::unistd::geteuid().is_root() {
        testkit::skip("ids are only used as root");
        return;
    }
    need_instance();
    let main = "virtual_mailbox_base = @BASE@/vmail\nvirtual_mailbox_maps = texthash:@BASE@/vmailbox\n\
                virtual_uid_maps = inline:{ low@example.net=10 }\nvirtual_gid_maps = static:65534\n";
    let mut inst = Instance::new(&bin(), main, MASTER_CF);
    std::fs::write(
        inst.base.join("vmailbox"),
        "low@example.net low/\nnone@example.net none/\n",
    )
    .unwrap();
    inst.start(&bin(), "virtual");
    let r = inst.send(
        "virtual",
        "a@b",
        &["low@example.net", "none@example.net"],
        "S: x\n\ny\n",
    );
    for st in &r.statuses {
        assert_eq!(
            (st.action, st.dsn.as_str(), st.text.as_str()),
            (Action::Deferred, "4.3.5", "mail system configuration error")
        );
    }
    let log = inst.log();
    assert!(log.contains("bad uid 10 in virtual_uid_maps"), "{log}");
    assert!(log.contains("not found in virtual_uid_maps"), "{log}");
}

/// A retry that qmgr flags `maybe_delivered` finds the earlier copy in a
/// Maildir (by its tag) and in an mbox (Delivered-To and the queue id in
/// Received) and does not write another; without the flag it would.
#[test]
fn maybe_delivered_retry_suppresses_duplicates() {
    let inst = instance();
    let rcpts = ["bob@example.com", "carol@example.com"];
    let id = inst.enqueue_with("alice@example.org", &rcpts, &|id| {
        format!(
            "Received: by host.example.org (Postfix, from userid 0)\n\tid {id}; \
             Mon, 23 Nov 2026 13:00:00 +0000 (UTC)\nSubject: once\n\nbody\n"
        )
    });
    let pairs: Vec<(&str, &str)> = rcpts.iter().map(|r| (*r, *r)).collect();
    let plain = inst.request(&id, "alice@example.org", &pairs);
    let mut retry = plain.clone();
    retry
        .attributes
        .push((delivery::agent::MAYBE_DELIVERED.into(), "1".into()));
    let bob = inst.base.join("vmail/example.com/bob");
    let carol = inst.base.join("vmail/example.com/carol");
    let count = || {
        let mbox = std::fs::read_to_string(&carol).unwrap_or_default();
        (
            maildir_messages(&bob).len(),
            mbox.matches("Subject: once").count(),
        )
    };
    // A retry of a delivery that never happened delivers.
    let r = inst.deliver("virtual", &retry);
    assert!(
        r.statuses.iter().all(|s| s.action == Action::Delivered),
        "{r:?}"
    );
    assert_eq!(count(), (1, 1));
    // The same retry again: reported delivered, nothing written.
    let r = inst.deliver("virtual", &retry);
    assert!(
        r.statuses.iter().all(|s| s.action == Action::Delivered),
        "{r:?}"
    );
    assert!(
        r.statuses
            .iter()
            .all(|s| s.text.contains("duplicate suppressed")),
        "{r:?}"
    );
    assert_eq!(count(), (1, 1));
    // Without the flag nothing is checked (the normal, fast path).
    inst.deliver("virtual", &plain);
    assert_eq!(count(), (2, 2));
    // The queue file's recipients were marked done by the agent.
    let qf = queue::QueueFile::open_read_only(
        &inst.qdir,
        queue::Queue::Active,
        &queue::QueueId::parse(&id).unwrap(),
    )
    .unwrap();
    assert_eq!(qf.pending(), 0);
}
