//! Helpers for auth's integration tests: one of our instances (master and
//! auth) in a temporary directory, stopped when dropped.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Output;

#[allow(unused_imports, reason = "not every test file uses both")]
pub(crate) use testkit::{open_dir, wait_until};

/// What an instance test here needs: the binaries built and, as root,
/// the mail_owner account ([`testkit::need_instance`]); missing, it fails.
pub(crate) fn need_instance() {
    testkit::need_instance(&["master", "postfix", "auth"]);
}

/// Our instance: master with the auth service only.
pub(crate) struct Ours {
    inst: testkit::Instance,
    /// The passwd-file auth_passdb names.
    pub(crate) passwd: PathBuf,
}

impl Ours {
    /// Writes an instance under `base` (which must exist) with
    /// `auth_passdb = passwd-file:BASE/etc/passwd` and `main_extra`.
    pub(crate) fn new(base: &Path, main_extra: &str) -> Ours {
        let passwd = base.join("etc/passwd");
        let main_extra = format!(
            "inet_interfaces = loopback-only\nservice_throttle_time = 2s\n\
             auth_passdb = passwd-file:{}\n{main_extra}",
            passwd.display(),
        );
        // The line etc-postfix/master.cf ships.
        let inst = testkit::Instance::new_in(
            base,
            &main_extra,
            "auth      unix  -       n       n       -       1       auth\n",
        );
        Ours { inst, passwd }
    }

    /// Replaces the passwd-file.
    pub(crate) fn write_passwd(&self, text: &str) {
        let tmp = self.passwd.with_extension("new");
        let mut f = std::fs::File::create(&tmp).unwrap();
        f.write_all(text.as_bytes()).unwrap();
        std::fs::rename(&tmp, &self.passwd).unwrap();
    }

    /// Runs `postfix -c CONFIG args...`.
    pub(crate) fn postfix(&self, args: &[&str]) -> Output {
        self.inst.postfix(args)
    }

    /// Starts master and waits for private/auth.
    pub(crate) fn start(&mut self) {
        self.inst.start_postfix();
        self.inst.wait_socket("private/auth");
    }

    /// The auth socket.
    pub(crate) fn socket(&self) -> PathBuf {
        self.inst.socket("private/auth")
    }

    /// The maillog so far.
    pub(crate) fn log(&self) -> String {
        self.inst.log()
    }

    /// Waits until the maillog contains `needle`.
    pub(crate) fn wait_log(&self, needle: &str) -> bool {
        self.inst.wait_log(needle)
    }
}
