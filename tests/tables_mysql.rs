//! mysql: tables against a private MariaDB: mail through every table
//! class (over TCP and the Unix socket, with a password), SQL injection,
//! postmap -q, and an outage answered with 451 and healed by a restart.

use std::path::Path;
use std::process::Command;

use crate::tables_common::{self, FIXTURES, Maps, send, wait_subject};
use crate::tables_db::{Mariadb, write_public};
use crate::util::bin_dir;

/// Creates the tables, rows and a read-only user `postfix`.
fn load(db: &Mariadb) {
    let mut sql = String::new();
    for t in [
        "domain",
        "mailbox",
        "alias",
        "transport",
        "access",
        "aliases",
    ] {
        sql.push_str(&format!(
            "CREATE TABLE {t} (k VARCHAR(255) NOT NULL, v VARCHAR(255));\n"
        ));
    }
    for (t, k, v) in FIXTURES {
        sql.push_str(&format!("INSERT INTO {t} VALUES ('{k}', '{v}');\n"));
    }
    sql.push_str(
        "CREATE USER 'postfix'@'%' IDENTIFIED BY 'pf pass';\n\
         GRANT SELECT ON mail.* TO 'postfix'@'%';\n\
         CREATE USER 'postfix'@'localhost' IDENTIFIED BY 'pf pass';\n\
         GRANT SELECT ON mail.* TO 'postfix'@'localhost';\n",
    );
    db.sql(&sql);
}

fn cf_files(db: &Mariadb, dir: &Path, prefix: &str) -> Maps {
    let cf = |table: &str, host: &str| {
        let path = dir.join(format!("mysql-{table}.cf"));
        write_public(
            &path,
            &format!(
                "hosts = {host}\n\
                 user = postfix\n\
                 password = pf pass\n\
                 dbname = mail\n\
                 query = SELECT v FROM {table} WHERE k = '%s'\n"
            ),
        );
        format!("{prefix}{}", path.display())
    };
    let tcp = format!("inet:127.0.0.1:{}", db.port);
    let unix = format!("unix:{}", db.dir.path().join("mysqld.sock").display());
    Maps {
        domains: cf("domain", &tcp),
        mailbox: cf("mailbox", &unix),
        alias: cf("alias", &tcp),
        transport: cf("transport", &unix),
        access: cf("access", &tcp),
        aliases: cf("aliases", &tcp),
    }
}

/// Every table class in mysql:, mail delivered, injected recipients
/// unknown, postmap -q answers; the server stopped gives 451 and mail
/// flows again after its restart.
#[test]
fn tables_mysql_route_mail_and_outage() {
    tables_common::need_bins();
    let mut db = Mariadb::start();
    load(&db);
    let dir = tempfile::tempdir().unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let maps = cf_files(&db, dir.path(), "mysql:");
    let m = tables_common::start(&maps, "");
    tables_common::check_mail_flow(&m, "mysql");
    assert_eq!(db.sql("SELECT count(*) FROM mailbox").trim(), "2");

    let cfg = m.inst.config_dir.display().to_string();
    let out = Command::new(bin_dir().join("postmap"))
        .args(["-c", &cfg, "-q", "sales@virt.test", &maps.alias])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "bob@virt.test\n",
        "{out:?}"
    );
    let out = Command::new(bin_dir().join("postmap"))
        .args(["-c", &cfg, "-q", "x\\' OR 1=1 -- @virt.test", &maps.mailbox])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");

    db.stop();
    let r = send(m.port, &["alice@virt.test"], "unused");
    assert!(r[0].starts_with("451 4.3.0"), "{r:?}\n{}", m.inst.log());
    db.resume();
    let r = send(m.port, &["alice@virt.test"], "mysql after restart");
    assert!(r[0].starts_with("250"), "{r:?}\n{}", m.inst.log());
    wait_subject(&m, "alice", "mysql after restart");
    assert!(!m.inst.log().contains("status=bounced"));
}

/// TLS to MariaDB as Postfix's mysql client asks for it: a user that the
/// server admits over TLS only (REQUIRE SSL) is refused without
/// tls_CAfile and served with it; tls_verify_cert = yes checks the host
/// name (127.0.0.1 is in the certificate).
#[test]
fn tables_mysql_tls() {
    tables_common::need_bins();
    let dir = tempfile::tempdir().unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let pki = crate::util::make_pki(dir.path());
    let db = Mariadb::start_with(Some(&pki));
    load(&db);
    db.sql(
        "CREATE USER 'tls'@'%' IDENTIFIED BY 'tls pass' REQUIRE SSL;\
         GRANT SELECT ON mail.* TO 'tls'@'%';",
    );
    let cf = |name: &str, extra: &str| {
        let path = dir.path().join(name);
        write_public(
            &path,
            &format!(
                "hosts = inet:127.0.0.1:{}\nuser = tls\npassword = tls pass\ndbname = mail\n\
                 query = SELECT v FROM mailbox WHERE k = '%s'\n{extra}",
                db.port
            ),
        );
        format!("mysql:{}", path.display())
    };
    let plain = cf("plain.cf", "");
    let tls = cf("tls.cf", &format!("tls_CAfile = {}\n", pki.ca.display()));
    let verified = cf(
        "verified.cf",
        &format!("tls_CAfile = {}\ntls_verify_cert = yes\n", pki.ca.display()),
    );
    // No instance: postmap runs its own proxymap.
    let idle = crate::util::Instance::new("", "");
    let postmap = |table: &str| {
        Command::new(bin_dir().join("postmap"))
            .args(["-c", &idle.config_dir.display().to_string()])
            .args(["-q", "alice@virt.test", table])
            .output()
            .unwrap()
    };
    let out = postmap(&plain);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("table lookup failed"),
        "REQUIRE SSL refuses a plain connection: {out:?}\n{}",
        db.log()
    );
    let other = tempfile::tempdir().unwrap();
    let stranger = crate::util::make_pki(other.path());
    let wrong = cf(
        "wrong.cf",
        &format!("tls_CAfile = {}\n", stranger.ca.display()),
    );
    let out = postmap(&wrong);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("table lookup failed"),
        "a stranger's CA: {out:?}\n{}",
        db.log()
    );
    for t in [&tls, &verified] {
        let out = postmap(t);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "alice/\n",
            "{t}: {out:?}\n{}",
            db.log()
        );
    }
}
