//! ldap: tables against a private slapd: mail through every table class
//! with bind (bind_dn/bind_pw and anonymous), scope, StartTLS with a
//! private CA, special_result_attribute (a group's members), filter
//! escaping (a `*` recipient is no wildcard), postmap -q, and an outage
//! answered with 451 and healed by a restart.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use crate::tables_common::{self, FIXTURES, Maps, send, wait_subject};
use crate::tables_db::{Slapd, write_public};
use crate::util::{Pki, bin_dir, make_pki};

const BASE: &str = "dc=example,dc=test";

/// The directory: one ou per table, an organizationalRole per row (key in
/// cn, value in description), and a group team@virt.test whose members
/// are alias entries.
fn ldif() -> String {
    let mut l = format!(
        "dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n"
    );
    for t in [
        "domain",
        "mailbox",
        "alias",
        "transport",
        "access",
        "aliases",
    ] {
        let _ = write!(
            l,
            "dn: ou={t},{BASE}\nobjectClass: organizationalUnit\nou: {t}\n\n"
        );
    }
    let role = |l: &mut String, t: &str, k: &str, v: &str| {
        let _ = write!(
            l,
            "dn: cn={k},ou={t},{BASE}\nobjectClass: organizationalRole\ncn: {k}\ndescription: {v}\n\n"
        );
    };
    for (t, k, v) in FIXTURES {
        role(&mut l, t, k, v);
    }
    role(&mut l, "alias", "alice-mail", "alice@virt.test");
    let _ = write!(
        l,
        "dn: cn=team@virt.test,ou=alias,{BASE}\nobjectClass: groupOfNames\ncn: team@virt.test\n\
         member: cn=sales@virt.test,ou=alias,{BASE}\nmember: cn=alice-mail,ou=alias,{BASE}\n\n"
    );
    // A group with a value of its own, which leaf_result_attribute skips.
    let _ = write!(
        l,
        "dn: cn=leafy@virt.test,ou=alias,{BASE}\nobjectClass: groupOfNames\ncn: leafy@virt.test\n\
         description: group-itself@virt.test\nmember: cn=alice-mail,ou=alias,{BASE}\n\n"
    );
    l
}

fn cf_files(s: &Slapd, pki: &Pki, dir: &Path) -> Maps {
    let cf = |table: &str, extra: &str| {
        let path = dir.join(format!("ldap-{table}.cf"));
        write_public(
            &path,
            &format!(
                "server_host = {}\n\
                 search_base = ou={table},{BASE}\n\
                 query_filter = (cn=%s)\n\
                 result_attribute = description\n\
                 version = 3\n{extra}",
                s.url()
            ),
        );
        format!("ldap:{}", path.display())
    };
    let admin = format!(
        "bind = yes\nbind_dn = {}\nbind_pw = {}\n",
        crate::tables_db::LDAP_ADMIN.0,
        crate::tables_db::LDAP_ADMIN.1
    );
    Maps {
        domains: cf("domain", "bind = no\nscope = one\n"),
        mailbox: cf(
            "mailbox",
            &format!(
                "{admin}start_tls = yes\ntls_ca_cert_file = {}\n",
                pki.ca.display()
            ),
        ),
        alias: cf(
            "alias",
            &format!("{admin}special_result_attribute = member\n"),
        ),
        transport: cf("transport", "scope = sub\n"),
        access: cf("access", "bind = no\n"),
        aliases: cf("aliases", "scope = one\n"),
    }
}

/// Every table class in ldap:, a group expanded through
/// special_result_attribute, `*` escaped, postmap -q, and an outage.
#[test]
fn tables_ldap_route_mail_and_outage() {
    tables_common::need_bins();
    let dir = tempfile::tempdir().unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let pki = make_pki(dir.path());
    let mut s = Slapd::start(&ldif(), Some(&pki));
    let maps = cf_files(&s, &pki, dir.path());
    let m = tables_common::start(&maps, "");
    tables_common::check_mail_flow(&m, "ldap");

    let r = send(m.port, &["team@virt.test"], "ldap group");
    assert!(r[0].starts_with("250"), "{r:?}\n{}", m.inst.log());
    wait_subject(&m, "alice", "ldap group");
    wait_subject(&m, "bob", "ldap group");

    let cfg = m.inst.config_dir.display().to_string();
    let postmap = |key: &str, table: &str| {
        Command::new(bin_dir().join("postmap"))
            .args(["-c", &cfg, "-q", key, table])
            .output()
            .unwrap()
    };
    let out = postmap("team@virt.test", &maps.alias);
    let got = String::from_utf8_lossy(&out.stdout);
    let mut values: Vec<&str> = got.trim().split(',').collect();
    values.sort_unstable();
    assert_eq!(values, ["alice@virt.test", "bob@virt.test"], "{out:?}");
    let out = postmap("alice@virt.test", &maps.mailbox);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "alice/\n",
        "StartTLS: {out:?}"
    );
    // leaf_result_attribute: the members' values, not the group's own;
    // result_attribute: both.
    let leaf = dir.path().join("ldap-leaf.cf");
    write_public(
        &leaf,
        &format!(
            "server_host = {}\nsearch_base = ou=alias,{BASE}\nquery_filter = (cn=%s)\n\
             result_attribute =\nleaf_result_attribute = description\n\
             special_result_attribute = member\ndereference = 0\nsize_limit = 5\n",
            s.url()
        ),
    );
    let out = postmap("leafy@virt.test", &format!("ldap:{}", leaf.display()));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "alice@virt.test\n",
        "{out:?}"
    );
    let out = postmap("leafy@virt.test", &maps.alias);
    let got = String::from_utf8_lossy(&out.stdout);
    let mut values: Vec<&str> = got.trim().split(',').collect();
    values.sort_unstable();
    assert_eq!(
        values,
        ["alice@virt.test", "group-itself@virt.test"],
        "{out:?}"
    );
    // StartTLS really verifies: without the private CA the lookup fails.
    let untrusted = dir.path().join("ldap-untrusted.cf");
    let text = std::fs::read_to_string(maps.mailbox.trim_start_matches("ldap:")).unwrap();
    let text: String = text
        .lines()
        .filter(|l| !l.starts_with("tls_ca_cert_file"))
        .map(|l| format!("{l}\n"))
        .collect();
    write_public(&untrusted, &text);
    let out = postmap("alice@virt.test", &format!("ldap:{}", untrusted.display()));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("table lookup failed"), "{out:?}");
    let out = postmap("*@virt.test", &maps.mailbox);
    assert_eq!(out.status.code(), Some(1), "{out:?}");

    s.stop();
    let r = send(m.port, &["alice@virt.test"], "unused");
    assert!(r[0].starts_with("451 4.3.0"), "{r:?}\n{}", m.inst.log());
    s.resume();
    let r = send(m.port, &["alice@virt.test"], "ldap after restart");
    assert!(r[0].starts_with("250"), "{r:?}\n{}", m.inst.log());
    wait_subject(&m, "alice", "ldap after restart");
    assert!(!m.inst.log().contains("status=bounced"));
}
