//! `postfix check` on a real configuration: a parameter no program reads yet
//! gives one warning; a supported one gives none.

use std::os::unix::fs::PermissionsExt;

use testkit::Instance;

#[test]
fn check_warns_once_per_unsupported_parameter() {
    // Stand-ins for master and smtpd: `postfix check` only looks for
    // executables in daemon_directory.
    let daemons = tempfile::tempdir().unwrap();
    for name in ["master", "smtpd"] {
        let p = daemons.path().join(name);
        std::fs::write(&p, "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let port = testkit::free_port();
    let inst = Instance::new(
        &format!(
            "daemon_directory = {}\n\
             always_bcc = archive@example.com\n\
             smtpd_proxy_filter = inet:127.0.0.1:8891\n",
            daemons.path().display()
        ),
        &format!(
            "127.0.0.1:{port} inet n - n - 1 smtpd\n  -o smtpd_proxy_filter=inet:127.0.0.1:8892\n"
        ),
    );
    let out = inst.postfix(&["check"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("warning:")).collect();
    assert_eq!(warnings.len(), 1, "{err}");
    let main_cf = inst.config_dir.join("main.cf");
    assert!(
        warnings[0].ends_with(&format!(
            "warning: {}, line 7: parameter smtpd_proxy_filter is not supported yet and has no effect \
             (also set at {}, line 1: service 127.0.0.1:{port}/inet)",
            main_cf.display(),
            inst.config_dir.join("master.cf").display()
        )),
        "{err}"
    );
    assert!(!err.contains("always_bcc"), "{err}");
}

/// Debian's stock master.cf names Postfix programs this suite does not
/// build (tlsmgr, scache, postlogd: not needed); verify, which we do
/// build, starts and is not warned about:
/// `postfix check` warns once for each and passes, and `postfix start`
/// starts the rest; a program of no known name is still an error.
#[test]
fn programs_we_do_not_build_are_skipped_with_a_warning() {
    testkit::need_instance(&["master", "postfix", "echo", "verify"]);
    let stock = "\
tlsmgr    unix  -       -       y       1000?   1       tlsmgr
scache    unix  -       -       y       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
verify    unix  -       -       y       -       1       verify
echo      unix  n       -       n       -       -       echo
";
    let data = tempfile::tempdir().unwrap();
    let main = format!("data_directory = {}/data\n", data.path().display());
    let mut inst = Instance::new(&main, stock);
    let out = inst.postfix(&["check"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    for (service, program) in [
        ("tlsmgr", "tlsmgr"),
        ("scache", "scache"),
        ("postlog", "postlogd"),
    ] {
        let needle = format!("service {service}: program {program} ");
        assert_eq!(err.matches(&needle).count(), 1, "{needle}\n{err}");
    }
    assert!(err.contains("program tlsmgr not needed"), "{err}");
    inst.start_postfix();
    assert!(
        testkit::wait_until(std::time::Duration::from_secs(10), || inst
            .socket("public/echo")
            .exists()),
        "{}",
        inst.log()
    );
    assert!(!err.contains("program verify"), "{err}");
    inst.wait_socket("private/verify");
    assert!(!inst.log().contains("program verify"), "{}", inst.log());

    let typo = Instance::new("", "echo unix n - n - - echoo\n");
    let out = typo.postfix(&["check"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("command not found or not executable"));
}
