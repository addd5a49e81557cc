//! Issue 14: `postfix flush`, `set-permissions` and
//! `upgrade-configuration`, which Postfix administrators use.

use std::os::unix::fs::PermissionsExt;

use testkit::Instance;

#[test]
fn issue14_upgrade_configuration_adds_missing_services_once() {
    testkit::need_bins(&["postfix"]);
    let inst = Instance::new(
        "",
        "smtp inet n - y - - smtpd\nflush unix n - y - 0 flush\n",
    );
    let out = inst.postfix(&["upgrade-configuration"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cf = std::fs::read_to_string(inst.config_dir.join("master.cf")).unwrap();
    for svc in ["trace ", "anvil ", "discard ", "retry ", "verify "] {
        assert_eq!(
            cf.lines().filter(|l| l.starts_with(svc)).count(),
            1,
            "{svc}: {cf}"
        );
    }
    assert_eq!(
        cf.lines().filter(|l| l.starts_with("flush ")).count(),
        1,
        "{cf}"
    );
    let again = inst.postfix(&["upgrade-configuration"]);
    assert!(again.status.success());
    assert_eq!(
        std::fs::read_to_string(inst.config_dir.join("master.cf")).unwrap(),
        cf
    );
}

#[test]
fn issue14_flush_and_set_permissions() {
    testkit::need_bins(&["postfix", "postqueue"]);
    let inst = Instance::new("", "");
    // Mail system down: postfix flush says so as postqueue -f does.
    let out = inst.postfix(&["flush"]);
    assert_eq!(out.status.code(), Some(69));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("Cannot flush mail queue - mail system is down"),
        "{out:?}"
    );
    let out = inst.postfix(&["set-permissions"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = std::fs::metadata(inst.qdir.join("maildrop"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o1730);
}
