//! Issue 14: `postsuper -e` and `-f` (forced expiration), as in Postfix
//! 3.5 and later: a marked message is returned to its sender the next
//! time qmgr takes it, with the reason of its last delay or "message is
//! administratively expired"; `-f` also releases it from hold.

use std::time::Duration;

use crate::util::{SmtpInstance, SmtpSetup, need_smtp, wait_until};

/// `program -c CONFIG args`, which must succeed; its stdout and stderr.
fn run(inst: &SmtpInstance, program: &str, args: &[&str]) -> String {
    let out = inst.inst.command(program, args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{program} {args:?}: {text}");
    text
}

/// Queues one message from alice@virt.test to `rcpt`; its queue id.
fn submit(inst: &SmtpInstance, rcpt: &str, tag: &str) -> String {
    let out = inst.sendmail(
        &["-oi", "-f", "alice@virt.test", rcpt],
        format!("Subject: {tag}\n\n{tag}\n").as_bytes(),
    );
    assert!(out.status.success(), "{out:?}");
    let needle = format!("to=<{rcpt}>");
    let mut id = String::new();
    assert!(
        wait_until(Duration::from_secs(20), || {
            let log = inst.inst.log();
            let line = log
                .lines()
                .find(|l| l.contains(&needle) && l.contains("status=deferred"));
            if let Some(l) = line {
                id = l.split(": ").nth(1).unwrap_or_default().to_string();
            }
            !id.is_empty()
        }),
        "no deferral:\n{}",
        inst.inst.log()
    );
    // The log line comes before qmgr moves the file to deferred/: wait for
    // the move, so that a flush finds it there.
    assert!(
        wait_until(Duration::from_secs(20), || in_deferred(inst, &id)),
        "{id} never reached deferred/"
    );
    id
}

/// True when deferred/ (or one of its hashed subdirectories) holds `id`.
fn in_deferred(inst: &SmtpInstance, id: &str) -> bool {
    fn walk(dir: &std::path::Path, id: &str) -> bool {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, id)
                } else {
                    e.file_name() == id
                }
            })
    }
    walk(&inst.inst.qdir.join("deferred"), id)
}

#[test]
fn issue14_postsuper_forced_expiration() {
    need_smtp();
    let closed = testkit::free_port();
    let inst = SmtpSetup::new()
        .main(&format!("relayhost = [127.0.0.1]:{closed}"))
        .main("smtp_connect_timeout = 2s")
        .start();
    // -e on a deferred message: returned with the reason of its delay.
    let id = submit(&inst, "bob@remote.test", "deferred-one");
    let out = run(&inst, "postsuper", &["-e", &id]);
    assert!(out.contains(&format!("{id}: expired")), "{out}");
    assert!(out.contains("Force-expired: 1 message"), "{out}");
    run(&inst, "postqueue", &["-f"]);
    inst.wait_log(&format!(
        "{id}: from=<alice@virt.test>, status=force-expired, returned to sender"
    ));
    assert!(
        wait_until(Duration::from_secs(20), || inst.bounces().len() == 1),
        "{}",
        inst.inst.log()
    );
    let bounce = inst.bounces().remove(0);
    assert!(
        bounce.contains("Subject: Undelivered Mail Returned to Sender"),
        "{bounce}"
    );
    assert!(
        bounce.contains(&format!(
            "<bob@remote.test>: connect to 127.0.0.1[127.0.0.1]:{closed}: Connection refused"
        )),
        "{bounce}"
    );

    // -f on a held message: released and returned, never delivered.
    let id2 = submit(&inst, "carol@remote.test", "held-one");
    let out = run(&inst, "postsuper", &["-h", &id2]);
    assert!(out.contains("Placed on hold: 1 message"), "{out}");
    let out = run(&inst, "postsuper", &["-f", &id2]);
    assert!(out.contains("Force-expired: 1 message"), "{out}");
    assert!(out.contains("Released from hold: 1 message"), "{out}");
    inst.wait_log(&format!(
        "{id2}: from=<alice@virt.test>, status=force-expired, returned to sender"
    ));
    assert!(
        wait_until(Duration::from_secs(20), || inst.bounces().len() == 2),
        "{}",
        inst.inst.log()
    );
    inst.wait_queue_empty();
    let log = inst.inst.log();
    // The held message had been tried once; no further attempt.
    let attempts = log
        .lines()
        .filter(|l| l.contains(&format!("{id2}: to=<carol@remote.test>")))
        .count();
    assert_eq!(attempts, 1, "{log}");
}
