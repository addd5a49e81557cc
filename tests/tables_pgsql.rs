//! pgsql: tables against a private PostgreSQL: mail through every table
//! class (named directly and through proxy:), an outage mid-run (451,
//! nothing bounced, delivery after the restart without restarting any
//! daemon), two instances sharing one database, SQL injection, postmap -q.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::tables_common::{self, FIXTURES, Maps, send, wait_subject};
use crate::tables_db::{Postgres, write_public};
use crate::util::{SmtpInstance, bin_dir, wait_until};

/// Creates the tables and rows of [`FIXTURES`].
fn load(pg: &Postgres) {
    let mut sql = String::new();
    for t in [
        "domain",
        "mailbox",
        "alias",
        "transport",
        "access",
        "aliases",
    ] {
        sql.push_str(&format!("CREATE TABLE {t} (k text NOT NULL, v text);\n"));
    }
    for (t, k, v) in FIXTURES {
        sql.push_str(&format!("INSERT INTO {t} VALUES ('{k}', '{v}');\n"));
    }
    pg.psql("mail", &sql);
}

/// Writes one .cf per table beside the database and returns the maps
/// (`prefix` is `pgsql:` or `proxy:pgsql:`).
fn cf_files(pg: &Postgres, dir: &Path, prefix: &str) -> Maps {
    let cf = |table: &str, extra: &str| {
        let path = dir.join(format!("pgsql-{table}.cf"));
        write_public(
            &path,
            &format!(
                "# hosts are tried in turn: the first has no server\n\
                 hosts = unix:{}/nonexistent inet:127.0.0.1:{}\n\
                 user = postgres\n\
                 dbname = mail\n\
                 query = SELECT v FROM {table} WHERE k = '%s'\n{extra}",
                dir.display(),
                pg.port
            ),
        );
        format!("{prefix}{}", path.display())
    };
    Maps {
        domains: cf("domain", ""),
        mailbox: cf("mailbox", "domain = virt.test, new.test\n"),
        alias: cf("alias", ""),
        // A URI naming the Unix socket's directory (a later hosts wins).
        transport: cf(
            "transport",
            &format!(
                "hosts = postgresql://postgres@{}:{}/mail\n",
                pg.dir.path().display().to_string().replace('/', "%2F"),
                pg.port
            ),
        ),
        access: cf("access", ""),
        aliases: cf("aliases", ""),
    }
}

/// A private PostgreSQL with the test tables loaded, and the pgsql_table
/// files for it (named with `prefix`) in a directory everyone may read.
fn database(prefix: &str) -> (Postgres, tempfile::TempDir, Maps) {
    let pg = Postgres::start();
    load(&pg);
    let dir = public_dir();
    let maps = cf_files(&pg, dir.path(), prefix);
    (pg, dir, maps)
}

fn public_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// Every table class in pgsql: named directly (looked up by proxymap all
/// the same), mail delivered; unknown and injected recipients are
/// unknown and the mailbox table is still there.
#[test]
fn tables_pgsql_route_mail() {
    tables_common::need_bins();
    let (pg, _dir, maps) = database("pgsql:");
    let m = tables_common::start(&maps, "");
    tables_common::check_mail_flow(&m, "pgsql");
    assert_eq!(pg.psql("mail", "SELECT count(*) FROM mailbox").trim(), "2");
    // The connections are kept: more mail, the same server processes.
    let backends = || {
        pg.psql(
            "mail",
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'proxymap' ORDER BY pid",
        )
    };
    let before = backends();
    assert!(!before.trim().is_empty());
    let r = send(m.port, &["alice@virt.test", "sales@virt.test"], "reuse");
    assert!(r.iter().all(|r| r.starts_with("250")), "{r:?}");
    wait_subject(&m, "bob", "reuse");
    assert_eq!(backends(), before, "connections reused");
    // The connections are proxymap's: smtpd, cleanup and the rest ask it.
    let clients = pg.psql(
        "mail",
        "SELECT count(*) FILTER (WHERE application_name <> 'proxymap'), \
                count(*) FILTER (WHERE application_name = 'proxymap' AND client_addr IS NULL) \
         FROM pg_stat_activity WHERE datname = 'mail' AND pid <> pg_backend_pid()",
    );
    // None but proxymap's; one of them over the Unix socket (the URI).
    assert_eq!(clients.trim(), "0|1", "{clients}");
}

/// smtpd chrooted in the queue directory (the shipped master.cf's
/// setting, effective when root) reaches the database through proxymap:
/// the tables' .cf files and the database are outside its jail.
#[test]
fn tables_pgsql_chrooted_smtpd() {
    tables_common::need_bins();
    let (_pg, _dir, maps) = database("pgsql:");
    let port = testkit::free_port();
    let m = tables_common::start_with(
        &maps,
        "",
        &format!("127.0.0.1:{port} inet n - y - - smtpd\n"),
    );
    assert!(
        wait_until(Duration::from_secs(10), || crate::util::answers(
            crate::util::local(port)
        )),
        "{}",
        m.inst.log()
    );
    let r = send(port, &["sales@virt.test", "nobody@virt.test"], "chrooted");
    assert!(r[0].starts_with("250"), "{r:?}\n{}", m.inst.log());
    assert!(r[1].starts_with("550 5.1.1"), "{r:?}");
    wait_subject(&m, "bob", "chrooted");
    if nix::unistd::geteuid().is_root() {
        let chrooted = m.inst.children().into_iter().any(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "smtpd")
                && std::fs::read_link(format!("/proc/{pid}/root"))
                    .is_ok_and(|root| root == m.inst.qdir)
        });
        assert!(chrooted, "an smtpd runs chrooted in the queue directory");
    }
}

/// The same through explicit proxy: names, approved by the default
/// proxy_read_maps; a proxy: table not listed there is refused with
/// Postfix's messages.
#[test]
fn tables_pgsql_through_proxy_and_proxy_read_maps() {
    tables_common::need_bins();
    let (_pg, dir, maps) = database("proxy:pgsql:");
    let m = tables_common::start(&maps, "");
    tables_common::check_mail_flow(&m, "proxy");

    // A proxy: table that no parameter names is refused.
    let cfg = m.inst.config_dir.display().to_string();
    let unlisted = format!("proxy:{}", maps.alias.trim_start_matches("proxy:"))
        .replace("pgsql-alias.cf", "pgsql-unlisted.cf");
    std::fs::copy(
        dir.path().join("pgsql-alias.cf"),
        dir.path().join("pgsql-unlisted.cf"),
    )
    .unwrap();
    let out = Command::new(bin_dir().join("postmap"))
        .args(["-c", &cfg, "-q", "sales@virt.test", &unlisted])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("proxymap service is not configured for table"),
        "{err}"
    );
    let table = unlisted.trim_start_matches("proxy:");
    assert!(
        wait_until(Duration::from_secs(10), || {
            m.inst.log().contains(&format!(
            "warning: to approve this table for read-only access, list proxy:{table} in main.cf:proxy_read_maps"
        ))
        }),
        "{}",
        m.inst.log()
    );
    assert!(
        m.inst.log().contains(&format!(
            "warning: request for unapproved table: \"{table}\""
        )),
        "{}",
        m.inst.log()
    );
}

/// postmap -q with pgsql: and proxy:pgsql: asks the running proxymap;
/// exit 1 for not found, a fatal error for a database that is down.
#[test]
fn tables_pgsql_postmap_query() {
    tables_common::need_bins();
    let mut pg = Postgres::start();
    load(&pg);
    let dir = public_dir();
    let maps = cf_files(&pg, dir.path(), "pgsql:");
    let m = tables_common::start(&maps, "");
    let cfg = m.inst.config_dir.display().to_string();
    let postmap = |key: &str, table: &str| {
        Command::new(bin_dir().join("postmap"))
            .args(["-c", &cfg, "-q", key, table])
            .output()
            .unwrap()
    };
    let out = postmap("Alice@virt.test", &maps.mailbox);
    assert!(out.status.success(), "{out:?}\n{}", m.inst.log());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "alice/\n");
    let out = postmap("sales@virt.test", &maps.alias);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "bob@virt.test\n");
    let out = postmap("nobody@virt.test", &maps.mailbox);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    // The domain = list keeps other domains from the database.
    let out = postmap("alice@other.test", &maps.mailbox);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    // The injection attempt, unquoted, straight to the table.
    let out = postmap("x'; DROP TABLE mailbox; --@virt.test", &maps.mailbox);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(pg.psql("mail", "SELECT count(*) FROM mailbox").trim(), "2");
    // No instance running for this configuration: postmap runs a
    // proxymap of its own, as Postfix's postmap reads pgsql: itself.
    let idle = crate::util::Instance::new("", "");
    let out = Command::new(bin_dir().join("postmap"))
        .args(["-c", &idle.config_dir.display().to_string()])
        .args(["-q", "bob@virt.test", &maps.mailbox])
        .output()
        .unwrap();
    assert!(!idle.qdir.join("private/proxymap").exists());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "bob/\n", "{out:?}");
    pg.stop();
    let out = postmap("alice@virt.test", &maps.mailbox);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{out:?}");
    assert!(
        err.contains("postmap: fatal: ") && err.contains("table lookup failed: cannot connect"),
        "{err}"
    );
}

/// The database stops mid-run: smtpd answers 451 4.3.0, mail from
/// sendmail waits, nothing bounces; after the restart the same daemons
/// deliver.
#[test]
fn tables_pgsql_outage_defers_then_delivers() {
    tables_common::need_bins();
    let mut pg = Postgres::start();
    load(&pg);
    let dir = public_dir();
    let maps = cf_files(&pg, dir.path(), "pgsql:");
    let m = tables_common::start(&maps, "");
    let r = send(m.port, &["alice@virt.test"], "before");
    assert!(r[0].starts_with("250"), "{r:?}");
    wait_subject(&m, "alice", "before");
    let daemons_before = m.inst.children();

    pg.stop();
    let r = send(m.port, &["alice@virt.test", "sales@virt.test"], "unused");
    for got in &r {
        assert!(got.starts_with("451 4.3.0"), "{r:?}\n{}", m.inst.log());
    }
    // Mail that does not pass smtpd's checks: sendmail straight in
    // (cleanup cannot expand virtual aliases and leaves it in maildrop/).
    sendmail(&m, "bob@virt.test", "during outage");
    std::thread::sleep(Duration::from_secs(5));
    assert!(m.maildir("bob").is_empty(), "{}", m.inst.log());
    assert!(m.queued() > 0, "the message waits in the queue");

    pg.resume();
    // pickup retries the maildrop file at its next scan; new mail wakes it.
    sendmail(&m, "bob@virt.test", "wake-up");
    wait_subject(&m, "bob", "during outage");
    let r = send(m.port, &["alice@virt.test"], "after");
    assert!(r[0].starts_with("250"), "{r:?}\n{}", m.inst.log());
    wait_subject(&m, "alice", "after");
    m.wait_queue_empty();
    let log = m.inst.log();
    assert!(!log.contains("status=bounced"), "{log}");
    assert!(!log.contains("sender non-delivery notification"), "{log}");
    // Long-running daemons (qmgr, proxymap...) were not restarted.
    let daemons_after = m.inst.children();
    for pid in &daemons_before {
        let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if name.trim() == "qmgr" {
            assert!(daemons_after.contains(pid), "qmgr {pid} was restarted");
        }
    }
}

/// Sends a message with `subject` to `rcpt` with the instance's sendmail.
fn sendmail(m: &SmtpInstance, rcpt: &str, subject: &str) {
    let message = format!("Subject: {subject}\n\nqueued\n");
    let out = m.sendmail(&["-f", "sender@client.test", rcpt], message.as_bytes());
    assert!(out.status.success(), "{out:?}");
}

/// Flushes the deferred queue (postqueue -f).
fn flush(m: &SmtpInstance) {
    let out = Command::new(bin_dir().join("postqueue"))
        .args(["-c", &m.inst.config_dir.display().to_string(), "-f"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

/// With the database down, mail already past cleanup waits in every
/// later stage: virtual (virtual_mailbox_maps) and local (alias_maps)
/// defer their recipients, and qmgr defers when trivial-rewrite cannot
/// read transport_maps; nothing bounces, and all of it is delivered after
/// the restart by the same daemons.
#[test]
fn tables_pgsql_outage_defers_in_qmgr_local_and_virtual() {
    tables_common::need_bins();
    let mut pg = Postgres::start();
    load(&pg);
    let dir = public_dir();
    let db = cf_files(&pg, dir.path(), "pgsql:");
    // Agents: only their own tables are in the database.
    let agents = Maps {
        domains: "virt.test".into(),
        mailbox: db.mailbox.clone(),
        alias: String::new(),
        transport: String::new(),
        access: "static:DUNNO".into(),
        aliases: db.aliases.clone(),
    };
    // The resolver: transport_maps in the database.
    let resolver = Maps {
        domains: "virt.test".into(),
        mailbox: "inline:{ alice@virt.test=alice/ }".into(),
        alias: String::new(),
        transport: db.transport.clone(),
        access: "static:DUNNO".into(),
        aliases: String::new(),
    };
    let a = tables_common::start(&agents, "");
    let r = tables_common::start(&resolver, "");
    pg.stop();
    sendmail(&a, "alice@virt.test", "virtual waits");
    sendmail(&a, "info@localhost", "local waits");
    sendmail(&r, "alice@virt.test", "qmgr waits");
    let deferred = |m: &SmtpInstance, needle: &str| {
        assert!(
            wait_until(Duration::from_secs(30), || m
                .inst
                .log()
                .lines()
                .any(|l| l.contains(needle) && l.contains("status=deferred"))),
            "{needle}\n{}",
            m.inst.log()
        );
    };
    deferred(&a, "to=<alice@virt.test>, relay=virtual");
    deferred(&a, "to=<info@localhost>, relay=local");
    deferred(&r, "to=<alice@virt.test>");
    assert!(a.maildir("alice").is_empty() && r.maildir("alice").is_empty());

    pg.resume();
    flush(&a);
    flush(&r);
    wait_subject(&a, "alice", "virtual waits");
    wait_subject(&a, "alice", "local waits");
    wait_subject(&r, "alice", "qmgr waits");
    for m in [&a, &r] {
        m.wait_queue_empty();
        let log = m.inst.log();
        assert!(!log.contains("status=bounced"), "{log}");
        assert!(log.contains("lookup"), "the reason names the lookup: {log}");
    }
}

/// cleanup cannot expand virtual aliases while the database is down: smtpd
/// (not checking recipients itself here) answers the end of DATA with a
/// 451, so the client keeps the message; after the restart it goes through.
#[test]
fn tables_pgsql_outage_in_cleanup_is_451_at_end_of_data() {
    tables_common::need_bins();
    let mut pg = Postgres::start();
    load(&pg);
    let dir = public_dir();
    let db = cf_files(&pg, dir.path(), "pgsql:");
    let maps = Maps {
        domains: "virt.test".into(),
        mailbox: "inline:{ alice@virt.test=alice/, bob@virt.test=bob/ }".into(),
        alias: db.alias.clone(),
        transport: String::new(),
        access: "static:DUNNO".into(),
        aliases: String::new(),
    };
    // virtual_alias_domains would look the domain up in the alias table
    // (its default is $virtual_alias_maps): not here.
    let m = tables_common::start(
        &maps,
        "smtpd_reject_unlisted_recipient = no\nvirtual_alias_domains =",
    );
    pg.stop();
    let (r, data) = tables_common::send_full(m.port, &["sales@virt.test"], "cleanup waits");
    assert!(r[0].starts_with("250"), "{r:?}\n{}", m.inst.log());
    let data = data.unwrap_or_default();
    assert!(data.starts_with("451 4.3.0"), "{data}\n{}", m.inst.log());
    assert!(
        m.inst
            .log()
            .contains("virtual_alias_maps map lookup problem")
    );
    assert_eq!(m.queued(), 0, "nothing half-queued");
    pg.resume();
    let r = send(m.port, &["sales@virt.test"], "cleanup after restart");
    assert!(r[0].starts_with("250"), "{r:?}");
    wait_subject(&m, "bob", "cleanup after restart");
}

/// TLS to PostgreSQL from a URI: sslmode=verify-full checks the server's
/// certificate against sslrootcert (a stranger's CA fails, as a temporary
/// failure), sslmode=require encrypts without checking; the server sees
/// proxymap's connections encrypted.
#[test]
fn tables_pgsql_tls_from_uri() {
    tables_common::need_bins();
    let dir = public_dir();
    let pki = crate::util::make_pki(dir.path());
    let other = tempfile::tempdir().unwrap();
    let stranger = crate::util::make_pki(other.path());
    let pg = Postgres::start_with(Some(&pki));
    load(&pg);
    let cf = |name: &str, query: &str| {
        let path = dir.path().join(name);
        write_public(
            &path,
            &format!(
                "hosts = postgresql://postgres@127.0.0.1:{}/mail?{query}\n\
                 query = SELECT v FROM mailbox WHERE k = '%s'\n",
                pg.port
            ),
        );
        format!("pgsql:{}", path.display())
    };
    let verified = cf(
        "verified.cf",
        &format!("sslmode=verify-full&sslrootcert={}", pki.ca.display()),
    );
    let stranger_ca = cf(
        "stranger.cf",
        &format!("sslmode=verify-full&sslrootcert={}", stranger.ca.display()),
    );
    let required = cf("required.cf", "sslmode=require");
    let maps = Maps {
        domains: "virt.test".into(),
        mailbox: verified.clone(),
        alias: String::new(),
        transport: String::new(),
        access: "static:DUNNO".into(),
        aliases: String::new(),
    };
    let m = tables_common::start(&maps, "");
    let r = send(m.port, &["alice@virt.test"], "over TLS");
    assert!(r[0].starts_with("250"), "{r:?}\n{}", m.inst.log());
    wait_subject(&m, "alice", "over TLS");
    let cfg = m.inst.config_dir.display().to_string();
    let postmap = |table: &str| {
        Command::new(bin_dir().join("postmap"))
            .args(["-c", &cfg, "-q", "bob@virt.test", table])
            .output()
            .unwrap()
    };
    assert_eq!(
        String::from_utf8_lossy(&postmap(&verified).stdout),
        "bob/\n"
    );
    assert_eq!(
        String::from_utf8_lossy(&postmap(&required).stdout),
        "bob/\n"
    );
    let out = postmap(&stranger_ca);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("table lookup failed"), "{out:?}");
    let ssl = pg.psql(
        "mail",
        "SELECT count(*), bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
         WHERE a.application_name = 'proxymap'",
    );
    assert_eq!(ssl.trim(), "2|t", "verified and required, both encrypted");
}

/// Two instances, each with its own queue and smtpd, share one
/// PostgreSQL: a domain and mailbox added to the database are served by
/// both at once, without a reload.
#[test]
fn tables_pgsql_two_instances_share_one_database() {
    tables_common::need_bins();
    let (pg, _dir, maps) = database("proxy:pgsql:");
    // No relaying for the client: an unknown domain is refused.
    let strict = "smtpd_recipient_restrictions = reject_unauth_destination";
    let a = tables_common::start(&maps, strict);
    let b = tables_common::start(&maps, strict);
    for m in [&a, &b] {
        let r = send(m.port, &["carol@new.test"], "too early");
        assert!(r[0].starts_with("554 5.7.1"), "{r:?}");
    }
    pg.psql(
        "mail",
        "INSERT INTO domain VALUES ('new.test', 'new.test');\
         INSERT INTO mailbox VALUES ('carol@new.test', 'carol/');",
    );
    for (m, name) in [(&a, "first"), (&b, "second")] {
        let r = send(m.port, &["carol@new.test"], name);
        assert!(r[0].starts_with("250"), "{r:?}\n{}", m.inst.log());
        wait_subject(m, "carol", name);
        assert_eq!(m.maildir("carol").len(), 1, "only this instance's mail");
    }
}
