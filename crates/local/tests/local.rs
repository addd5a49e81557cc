//! local under a real master: spool mailbox, recipient_delimiter,
//! unknown user, Delivered-To loop, aliases with every target kind
//! (user, /file, /maildir/, |command, user@remote via a cleanup stand-in,
//! :include:), alias loops, command exit codes, restrictions, .forward,
//! mailbox_command.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use delivery::testing::{Instance, bin_dir, need_instance};
use proto::cleanup::{Reply as CReply, Request as CRequest};
use proto::deliver::Action;

const MASTER_CF: &str = "local unix - n n - - local\n";

const CMD: &str = r#"#!/bin/sh
out=@BASE@/out/$1.$$
{ echo "uid=$(id -u)"; echo "RECIPIENT=$RECIPIENT"; echo "LOCAL=$LOCAL"; echo "EXTENSION=$EXTENSION";
  echo "SENDER=$SENDER"; echo "USER=$USER"; echo "--"; cat; } > "$out"
"#;

const ALIASES: &str = "\
postmaster: nobody
list: nobody, @BASE@/files/list.mbox, \"|@BASE@/cmd.sh list\", remote@far.example, :include:@BASE@/list.inc
maildirbox: @BASE@/files/md/
loop1: loop2
loop2: loop1
tempcmd: \"|echo busy; exit 75\"
badcmd: \"|echo oops; exit 1\"
restricted: :include:@BASE@/cmd.inc
";

fn bin() -> PathBuf {
    bin_dir(env!("CARGO_BIN_EXE_local"))
}

fn nobody_uid() -> u32 {
    if nix::unistd::geteuid().is_root() {
        65534
    } else {
        nix::unistd::geteuid().as_raw()
    }
}

fn mkdir_open(p: &Path) {
    std::fs::create_dir_all(p).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o1777)).unwrap();
}

/// An instance with aliases, spool, files and the command script.
fn instance(extra: &str) -> Instance {
    need_instance();
    assert!(
        nix::unistd::User::from_name("nobody")
            .ok()
            .flatten()
            .is_some(),
        "needs the account `nobody` (Debian's base-passwd has it)"
    );
    let main = format!(
        "alias_maps = texthash:@BASE@/aliases\nmail_spool_directory = @BASE@/mail\n\
         recipient_delimiter = +\nmydestination = host.example.org, localhost\n\
         forward_path = @BASE@/nothing/$user\n{extra}"
    );
    let mut inst = Instance::new(&bin(), &main, MASTER_CF);
    let base = inst.base.display().to_string();
    for d in ["mail", "files", "out"] {
        mkdir_open(&inst.base.join(d));
    }
    std::fs::write(inst.base.join("aliases"), ALIASES.replace("@BASE@", &base)).unwrap();
    std::fs::write(inst.base.join("list.inc"), "inc@far.example\n").unwrap();
    std::fs::write(inst.base.join("cmd.inc"), "|/bin/true\n").unwrap();
    let cmd = inst.base.join("cmd.sh");
    std::fs::write(&cmd, CMD.replace("@BASE@", &base)).unwrap();
    std::fs::set_permissions(&cmd, std::fs::Permissions::from_mode(0o755)).unwrap();
    inst.start(&bin(), "local");
    inst
}

/// What the cleanup stand-in received: sender, recipients, content.
type Received = Arc<Mutex<Vec<(String, Vec<String>, String)>>>;

/// A stand-in for the cleanup daemon on public/cleanup: answers Started
/// and Queued (queue id FWD1) and records each message.
fn cleanup_stand_in(inst: &Instance) -> Received {
    let path = inst.qdir.join("public/cleanup");
    let listener = UnixListener::bind(&path).unwrap();
    let got: Received = Arc::default();
    let keep = got.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut s) = conn else { return };
            let (mut sender, mut rcpts, mut content) = (String::new(), Vec::new(), Vec::new());
            while let Ok(req) = proto::recv::<_, CRequest>(&mut s) {
                match req {
                    CRequest::Begin(b) => {
                        sender = b.sender;
                        proto::send(
                            &mut s,
                            &CReply::Started {
                                queue_id: "FWD1".into(),
                            },
                        )
                        .unwrap();
                    }
                    CRequest::Recipient(r) => rcpts.push(r.address),
                    CRequest::Content(c) => content.extend(c),
                    CRequest::End => {
                        keep.lock().unwrap().push((
                            sender.clone(),
                            rcpts.clone(),
                            String::from_utf8_lossy(&content).into_owned(),
                        ));
                        proto::send(
                            &mut s,
                            &CReply::Queued {
                                queue_id: "FWD1".into(),
                            },
                        )
                        .unwrap();
                        break;
                    }
                    CRequest::Abort => break,
                    CRequest::Attribute(..) => {}
                }
            }
        }
    });
    got
}

fn outputs(inst: &Instance, prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(inst.base.join("out"))
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("{prefix}."))
        })
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    v.sort();
    v
}

fn spool(inst: &Instance) -> String {
    std::fs::read_to_string(inst.base.join("mail/nobody")).unwrap_or_default()
}

const MSG: &str = "From: alice@example.org\nSubject: hello\n\nFrom the body\n";

#[test]
fn spool_mailbox_with_headers_once() {
    let inst = instance("");
    let id = inst.enqueue("alice@example.org", &["nobody@host.example.org"], MSG);
    let req = inst.request(
        &id,
        "alice@example.org",
        &[("nobody@host.example.org", "nobody")],
    );
    let reply = inst.deliver("local", &req);
    let st = &reply.statuses[0];
    assert_eq!(
        (st.action, st.dsn.as_str()),
        (Action::Delivered, "2.0.0"),
        "{st:?}\n{}",
        inst.log()
    );
    assert_eq!(st.text, "delivered to mailbox");
    // It names the recipient in Delivered-To: a retry would find it.
    assert!(st.findable, "{st:?}");
    let mbox = spool(&inst);
    assert!(mbox.starts_with("From alice@example.org "), "{mbox}");
    let (_, rest) = mbox.split_once('\n').unwrap();
    assert_eq!(
        rest,
        "Return-Path: <alice@example.org>\nX-Original-To: nobody\n\
         Delivered-To: nobody@host.example.org\nFrom: alice@example.org\nSubject: hello\n\n\
         >From the body\n\n"
    );
    let meta = std::fs::metadata(inst.base.join("mail/nobody")).unwrap();
    assert_eq!(meta.uid(), nobody_uid());
    assert_eq!(meta.mode() & 0o777, 0o600);
    let log = inst.log();
    assert!(
        log.contains("postfix/local[")
            && log.contains(&format!(
                "]: {id}: to=<nobody@host.example.org>, orig_to=<nobody>, relay=local, delay="
            )),
        "{log}"
    );
    assert!(log.contains("dsn=2.0.0, status=sent (delivered to mailbox)"));
}

#[test]
fn extension_unknown_user_and_loop() {
    let inst = instance("");
    let r = inst.send(
        "local",
        "alice@example.org",
        &[
            "nobody+box@host.example.org",
            "zz-no-such-user@host.example.org",
        ],
        MSG,
    );
    assert_eq!(r.statuses[0].action, Action::Delivered, "{}", inst.log());
    assert!(spool(&inst).contains("\nDelivered-To: nobody+box@host.example.org\n"));
    let unknown = &r.statuses[1];
    assert_eq!(
        (unknown.action, unknown.dsn.as_str()),
        (Action::Bounced, "5.1.1")
    );
    assert_eq!(unknown.text, "unknown user: \"zz-no-such-user\"");

    let r = inst.send(
        "local",
        "alice@example.org",
        &["nobody@host.example.org"],
        "Delivered-To: nobody@host.example.org\nSubject: again\n\nx\n",
    );
    let st = &r.statuses[0];
    assert_eq!((st.action, st.dsn.as_str()), (Action::Bounced, "5.4.6"));
    assert_eq!(st.text, "mail forwarding loop for nobody@host.example.org");
    assert_eq!(spool(&inst).matches("\nSubject: again").count(), 0);
    assert!(
        inst.log()
            .contains("status=bounced (unknown user: \"zz-no-such-user\")")
    );
}

#[test]
fn alias_with_every_target_kind() {
    let inst = instance("");
    let cleanup = cleanup_stand_in(&inst);
    let id = inst.enqueue("alice@example.org", &["list@host.example.org"], MSG);
    let req = inst.request(
        &id,
        "alice@example.org",
        &[("list@host.example.org", "list@host.example.org")],
    );
    let r = inst.deliver("local", &req);
    let st = &r.statuses[0];
    assert_eq!(st.action, Action::Delivered, "{st:?}\n{}", inst.log());
    assert_eq!(st.expanded, 2);
    // Part of it went to a command and was forwarded: not findable.
    assert!(!st.findable, "{st:?}");

    // user: the spool mailbox, Delivered-To the expanded address.
    let mbox = spool(&inst);
    assert_eq!(mbox.matches("Subject: hello").count(), 1);
    assert!(mbox.contains(
        "\nX-Original-To: list@host.example.org\nDelivered-To: nobody@host.example.org\n"
    ));

    // /file: an mbox written as default_privs.
    let file = inst.base.join("files/list.mbox");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with("From alice@example.org "));
    assert!(text.contains("\nDelivered-To: list@host.example.org\n"));
    assert_eq!(std::fs::metadata(&file).unwrap().uid(), nobody_uid());

    // |command: as default_privs, with the environment and a From_ line.
    let out = outputs(&inst, "list");
    assert_eq!(out.len(), 1);
    let (head, body) = out[0].split_once("--\n").unwrap();
    assert_eq!(
        head,
        format!(
            "uid={}\nRECIPIENT=list@host.example.org\nLOCAL=list\nEXTENSION=\n\
             SENDER=alice@example.org\nUSER={}\n",
            nobody_uid(),
            if nix::unistd::geteuid().is_root() {
                "nobody".to_string()
            } else {
                nix::unistd::User::from_uid(nix::unistd::geteuid())
                    .unwrap()
                    .unwrap()
                    .name
            }
        )
    );
    assert!(body.starts_with("From alice@example.org "));
    assert!(
        body.ends_with("Subject: hello\n\nFrom the body\n"),
        "{body}"
    );

    // user@remote and :include: -> one forwarded message.
    let fwd = cleanup.lock().unwrap().clone();
    assert_eq!(fwd.len(), 1);
    let (sender, rcpts, content) = &fwd[0];
    assert_eq!(sender, "alice@example.org");
    assert_eq!(rcpts, &["remote@far.example", "inc@far.example"]);
    assert_eq!(
        content,
        &format!("Delivered-To: list@host.example.org\n{MSG}")
    );

    let log = inst.log();
    if std::env::var_os("SHOW_LOG").is_some() {
        println!("{log}");
    }
    for needle in [
        "to=<nobody@host.example.org>, orig_to=<list@host.example.org>, relay=local",
        "status=sent (delivered to file: ",
        "status=sent (delivered to command: ",
        "to=<remote@far.example>, orig_to=<list@host.example.org>, relay=local",
        "status=sent (forwarded as FWD1)",
    ] {
        assert!(log.contains(needle), "{needle} missing:\n{log}");
    }
}

#[test]
fn maildir_alias_loops_commands_and_restrictions() {
    let inst = instance("");
    let r = inst.send(
        "local",
        "",
        &[
            "maildirbox@host.example.org",
            "loop1@host.example.org",
            "tempcmd@host.example.org",
            "badcmd@host.example.org",
            "restricted@host.example.org",
            "postmaster@localhost",
        ],
        MSG,
    );
    let got: Vec<(Action, &str)> = r
        .statuses
        .iter()
        .map(|s| (s.action, s.dsn.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (Action::Delivered, "2.0.0"),
            (Action::Bounced, "5.4.6"),
            (Action::Deferred, "4.3.0"),
            (Action::Bounced, "5.3.0"),
            (Action::Bounced, "5.7.1"),
            (Action::Delivered, "2.0.0"),
        ],
        "{r:?}\n{}",
        inst.log()
    );
    assert_eq!(
        r.statuses[1].text,
        "mail forwarding loop for loop1@host.example.org"
    );
    assert_eq!(
        r.statuses[2].text,
        "temporary failure. Command output: busy"
    );
    assert_eq!(
        r.statuses[3].text,
        "Command died with status 1: \"echo oops; exit 1\". Command output: oops"
    );
    assert_eq!(r.statuses[4].text, "mail to command is restricted");
    // A Maildir copy is found again on a retry; postmaster's is too
    // (aliased to a mailbox).
    assert!(r.statuses[0].findable && !r.statuses[1].findable, "{r:?}");
    let md = inst.base.join("files/md/new");
    let files: Vec<_> = std::fs::read_dir(&md).unwrap().flatten().collect();
    assert_eq!(files.len(), 1);
    let mut text = String::new();
    std::fs::File::open(files[0].path())
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(
        text,
        format!(
            "Return-Path: <>\nX-Original-To: maildirbox@host.example.org\nDelivered-To: maildirbox@host.example.org\n{MSG}"
        )
    );
    assert_eq!(files[0].metadata().unwrap().uid(), nobody_uid());
    assert!(inst.log().contains("status=sent (delivered to maildir)"));
}

#[test]
fn dot_forward_keeps_a_copy_and_forwards() {
    let inst = instance("forward_path = @BASE@/forward/$user\n");
    let dir = inst.base.join("forward");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("nobody"),
        "# keep one\n\\nobody\nfwd@far.example\n",
    )
    .unwrap();
    let cleanup = cleanup_stand_in(&inst);
    let r = inst.send(
        "local",
        "alice@example.org",
        &["nobody@host.example.org"],
        MSG,
    );
    assert_eq!(r.statuses[0].action, Action::Delivered, "{}", inst.log());
    assert_eq!(spool(&inst).matches("Subject: hello").count(), 1);
    let fwd = cleanup.lock().unwrap().clone();
    assert_eq!(fwd.len(), 1);
    assert_eq!(fwd[0].1, ["fwd@far.example"]);
    assert!(
        fwd[0]
            .2
            .starts_with("Delivered-To: nobody@host.example.org\n")
    );

    // A world-writable .forward is ignored (with a warning).
    std::fs::set_permissions(dir.join("nobody"), std::fs::Permissions::from_mode(0o666)).unwrap();
    let r = inst.send(
        "local",
        "alice@example.org",
        &["nobody@host.example.org"],
        MSG,
    );
    assert_eq!(r.statuses[0].action, Action::Delivered);
    assert_eq!(cleanup.lock().unwrap().len(), 1);
    assert!(inst.log().contains("is world writable"));
}

#[test]
fn mailbox_command_runs_as_the_user() {
    let inst = instance("mailbox_command = @BASE@/cmd.sh mbox\n");
    let r = inst.send(
        "local",
        "alice@example.org",
        &["nobody+x@host.example.org"],
        MSG,
    );
    let st = &r.statuses[0];
    assert_eq!(st.action, Action::Delivered, "{st:?}\n{}", inst.log());
    assert!(st.text.starts_with("delivered to command: "));
    let out = outputs(&inst, "mbox");
    assert_eq!(out.len(), 1);
    assert!(out[0].starts_with(&format!(
        "uid={}\nRECIPIENT=nobody+x@host.example.org\nLOCAL=nobody+x\nEXTENSION=x\n",
        nobody_uid()
    )));
    assert!(out[0].contains("\nDelivered-To: nobody+x@host.example.org\n"));
}

#[test]
fn damaged_queue_file_defers_and_mailbox_is_unchanged() {
    let inst = instance("");
    let r = inst.send("local", "a@b", &["nobody@host.example.org"], MSG);
    assert_eq!(r.statuses[0].action, Action::Delivered);
    let before = spool(&inst);
    let id = inst.enqueue(
        "a@b",
        &["nobody@host.example.org"],
        "Subject: x\n\nMARKER\n",
    );
    delivery::testing::damage_content(&inst.qdir, &id, "MARKER");
    let req = inst.request(
        &id,
        "a@b",
        &[("nobody@host.example.org", "nobody@host.example.org")],
    );
    let st = inst.deliver("local", &req).statuses[0].clone();
    assert_eq!(st.action, Action::Deferred, "{st:?}");
    assert_eq!(spool(&inst), before);
}

#[test]
fn mailbox_size_limit_bounces() {
    let inst = instance("mailbox_size_limit = 2000\nmessage_size_limit = 1000\n");
    let big = format!("Subject: big\n\n{}\n", "x".repeat(3000));
    let st = inst
        .send("local", "a@b", &["nobody@host.example.org"], &big)
        .statuses[0]
        .clone();
    assert_eq!(
        (st.action, st.dsn.as_str()),
        (Action::Bounced, "5.2.2"),
        "{st:?}"
    );
    assert!(spool(&inst).is_empty());
}

#[test]
fn development_instance_delivers_as_itself() {
    if !nix::unistd::geteuid().is_root() {
        testkit::skip("needs root to run master as nobody");
        return;
    }
    need_instance();
    let main = "alias_maps = texthash:@BASE@/aliases\nmail_spool_directory = @BASE@/mail\n\
                local_recipient_maps = proxy:unix:passwd.byname texthash:@BASE@/users $alias_maps\n\
                mydestination = host.example.org\nforward_path =\n";
    let mut inst = Instance::new(&bin(), main, MASTER_CF);
    std::fs::create_dir(inst.base.join("mail")).unwrap();
    std::fs::write(inst.base.join("aliases"), "team: devuser, nobody\n").unwrap();
    std::fs::write(inst.base.join("users"), "devuser x\n").unwrap();
    inst.start_as(&bin(), "local", Some((65534, 65534)));
    let r = inst.send(
        "local",
        "a@b",
        &["team@host.example.org", "zz-no-such-user@host.example.org"],
        MSG,
    );
    assert_eq!(
        r.statuses[0].action,
        Action::Delivered,
        "{r:?}\n{}",
        inst.log()
    );
    assert_eq!(r.statuses[1].dsn, "5.1.1");
    for user in ["devuser", "nobody"] {
        let path = inst.base.join("mail").join(user);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.matches("Subject: hello").count(), 1);
        assert_eq!(std::fs::metadata(&path).unwrap().uid(), 65534);
    }
}

#[test]
fn luser_relay_takes_unknown_users() {
    let inst = instance("luser_relay = nobody+$user\n");
    let r = inst.send("local", "a@b", &["zz-no-such-user@host.example.org"], MSG);
    assert_eq!(r.statuses[0].action, Action::Delivered, "{}", inst.log());
    assert!(spool(&inst).contains("\nDelivered-To: nobody+zz-no-such-user@host.example.org\n"));
}

/// A retry flagged maybe_delivered finds the earlier copy in the spool
/// mbox (Delivered-To and the queue id in Received) and in an alias's
/// Maildir (the tag in the file name) and writes none; without the flag
/// it delivers again.
#[test]
fn maybe_delivered_retry_suppresses_duplicates() {
    let inst = instance("");
    let rcpts = ["nobody@host.example.org", "maildirbox@host.example.org"];
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
    let count = || {
        let md = std::fs::read_dir(inst.base.join("files/md/new"))
            .map(|d| d.count())
            .unwrap_or(0);
        (spool(&inst).matches("Subject: once").count(), md)
    };
    let delivered = |r: &proto::deliver::Reply| {
        r.statuses.len() == 2 && r.statuses.iter().all(|s| s.action == Action::Delivered)
    };
    let r = inst.deliver("local", &retry);
    assert!(delivered(&r), "{r:?}\n{}", inst.log());
    assert_eq!(count(), (1, 1));
    let r = inst.deliver("local", &retry);
    assert!(delivered(&r), "{r:?}");
    assert!(
        r.statuses
            .iter()
            .all(|s| s.text.contains("(duplicate suppressed)")),
        "{r:?}"
    );
    assert_eq!(count(), (1, 1));
    inst.deliver("local", &plain);
    assert_eq!(count(), (2, 2));
}

fn uid_of(name: &str) -> u32 {
    nix::unistd::User::from_name(name)
        .unwrap()
        .unwrap()
        .uid
        .as_raw()
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

/// Postfix never delivers to a command or file as root: root's .forward,
/// a root-owned :include: it lists, and mailbox_command for root run as
/// default_privs; a user-owned :include: in root's .forward runs as its
/// owner; a user's .forward that includes another user's file keeps the
/// user's rights; an alias table a user owns gives that user's rights.
#[test]
fn commands_and_files_for_root_run_as_default_privs() {
    if !nix::unistd::geteuid().is_root() {
        testkit::skip("needs root");
        return;
    }
    let inst = instance(
        "forward_path = @BASE@/forward/$user\n\
         allow_mail_to_commands = alias, forward, include\n\
         allow_mail_to_files = alias, forward, include\n\
         alias_maps = texthash:@BASE@/aliases, texthash:@BASE@/owned-aliases\n",
    );
    let base = inst.base.display().to_string();
    let dir = inst.base.join("forward");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("root"),
        format!(
            "\"|{base}/cmd.sh rootfwd\"\n{base}/files/root.mbox\n\
             :include:{base}/root.inc\n:include:{base}/owned.inc\n"
        ),
    )
    .unwrap();
    std::fs::write(
        inst.base.join("root.inc"),
        format!("\"|{base}/cmd.sh rootinc\"\n"),
    )
    .unwrap();
    let owned = inst.base.join("owned.inc");
    std::fs::write(&owned, format!("\"|{base}/cmd.sh ownedinc\"\n")).unwrap();
    let postfix = nix::unistd::User::from_name("postfix").unwrap().unwrap();
    std::os::unix::fs::chown(
        &owned,
        Some(postfix.uid.as_raw()),
        Some(postfix.gid.as_raw()),
    )
    .unwrap();
    // nobody's .forward includes a file that postfix owns.
    std::fs::write(dir.join("nobody"), format!(":include:{base}/owned.inc\n")).unwrap();
    // An alias table that postfix owns.
    let table = inst.base.join("owned-aliases");
    std::fs::write(
        &table,
        format!("ownedalias: \"|{base}/cmd.sh ownedalias\", {base}/files/owned.mbox\n"),
    )
    .unwrap();
    std::os::unix::fs::chown(
        &table,
        Some(postfix.uid.as_raw()),
        Some(postfix.gid.as_raw()),
    )
    .unwrap();

    let r = inst.send(
        "local",
        "alice@example.org",
        &[
            "root@host.example.org",
            "nobody@host.example.org",
            "ownedalias@host.example.org",
        ],
        MSG,
    );
    for st in &r.statuses {
        assert_eq!(st.action, Action::Delivered, "{r:?}\n{}", inst.log());
    }
    let nobody = uid_of("nobody");
    for (prefix, uid) in [
        ("rootfwd", nobody),
        ("rootinc", nobody),
        ("ownedinc", postfix.uid.as_raw()),
        ("ownedalias", postfix.uid.as_raw()),
    ] {
        let mut got: Vec<String> = outputs(&inst, prefix)
            .iter()
            .map(|o| first_line(o).to_string())
            .collect();
        got.sort();
        let mut want = vec![format!("uid={uid}")];
        if prefix == "ownedinc" {
            // Once from root's .forward (the owner's rights), once from
            // nobody's (nobody's rights, not the owner's).
            want.push(format!("uid={nobody}"));
            want.sort();
        }
        assert_eq!(got, want, "{prefix}\n{}", inst.log());
    }
    let file = inst.base.join("files/root.mbox");
    let meta = std::fs::metadata(&file).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (nobody, 65534));
    assert!(
        std::fs::read_to_string(&file)
            .unwrap()
            .contains("Subject: hello")
    );
    let meta = std::fs::metadata(inst.base.join("files/owned.mbox")).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid()),
        (postfix.uid.as_raw(), postfix.gid.as_raw())
    );
}

/// A file for root in a directory only root may write fails: it is
/// written as default_privs.
#[test]
fn file_for_root_is_not_written_as_root() {
    if !nix::unistd::geteuid().is_root() {
        testkit::skip("needs root");
        return;
    }
    let inst = instance("forward_path = @BASE@/forward/$user\n");
    let dir = inst.base.join("forward");
    std::fs::create_dir(&dir).unwrap();
    let private = inst.base.join("rootonly");
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(dir.join("root"), format!("{}/x.mbox\n", private.display())).unwrap();
    let r = inst.send("local", "a@b", &["root@host.example.org"], MSG);
    let st = &r.statuses[0];
    assert_ne!(st.action, Action::Delivered, "{st:?}\n{}", inst.log());
    assert!(st.text.contains("Permission denied"), "{st:?}");
    assert!(!private.join("x.mbox").exists());
}

#[test]
fn mailbox_command_for_root_runs_as_default_privs() {
    if !nix::unistd::geteuid().is_root() {
        testkit::skip("needs root");
        return;
    }
    let inst = instance("mailbox_command = @BASE@/cmd.sh mbox\n");
    let r = inst.send("local", "a@b", &["root@host.example.org"], MSG);
    assert_eq!(r.statuses[0].action, Action::Delivered, "{}", inst.log());
    let out = outputs(&inst, "mbox");
    assert_eq!(out.len(), 1);
    assert_eq!(first_line(&out[0]), format!("uid={}", uid_of("nobody")));
    // The user's environment stays root's.
    assert!(out[0].contains("\nUSER=root\n"), "{}", out[0]);
}

/// local whose switches to the user fail (no CAP_SETUID/CAP_SETGID, as
/// under a restricted service manager): a .forward it cannot read as the
/// user defers the recipient, it is not skipped for the mailbox, and
/// nothing is read or written as root instead.
#[test]
fn failed_switch_to_the_user_defers() {
    if !nix::unistd::geteuid().is_root() {
        testkit::skip("needs root");
        return;
    }
    need_instance();
    let main = "alias_maps = texthash:@BASE@/aliases\nmail_spool_directory = @BASE@/mail\n\
                mydestination = host.example.org\nforward_path = @BASE@/forward/$user\n";
    let mut inst = Instance::new(&bin(), main, MASTER_CF);
    for d in ["mail", "forward", "files"] {
        mkdir_open(&inst.base.join(d));
    }
    let base = inst.base.display().to_string();
    std::fs::write(
        inst.base.join("aliases"),
        format!("tofile: {base}/files/f.mbox\n"),
    )
    .unwrap();
    std::fs::write(
        inst.base.join("forward/nobody"),
        "\\nobody, other@far.example\n",
    )
    .unwrap();
    inst.start_wrapped(
        &bin(),
        "local",
        &[
            "setpriv",
            "--inh-caps=-setuid,-setgid",
            "--bounding-set=-setuid,-setgid",
            "--",
        ],
    );
    let r = inst.send(
        "local",
        "a@b",
        &["nobody@host.example.org", "tofile@host.example.org"],
        MSG,
    );
    for st in &r.statuses {
        assert_eq!(
            (st.action, st.dsn.as_str()),
            (Action::Deferred, "4.3.0"),
            "{r:?}\n{}",
            inst.log()
        );
        assert!(
            st.text.starts_with("cannot set user and group ids: "),
            "{st:?}"
        );
    }
    assert!(!inst.base.join("mail/nobody").exists());
    assert!(!inst.base.join("files/f.mbox").exists());
}
