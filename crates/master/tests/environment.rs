//! What environment master gives its children: import_environment's
//! names (with master's values) and `name=value` entries, plus
//! MAIL_CONFIG and MALLOC_ARENA_MAX; nothing else of the environment
//! master was started with.

#![allow(clippy::unwrap_used, reason = "test code")]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};

/// Stops master when the test ends, however it ends.
struct Master(Child);

impl Drop for Master {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::SIGTERM);
        let _ = self.0.wait();
    }
}

#[test]
fn children_get_import_environment_not_masters_environment() {
    testkit::need_instance(&["master", "echo"]);
    let inst = testkit::Instance::new(
        "import_environment = MAIL_CONFIG TZ LANG=C {GREETING = hello world}\n",
        "e unix - n n - 1 echo\n",
    );
    queue::layout::create_or_repair(&inst.qdir, testkit::mail_owner(), None).unwrap();
    let _master = Master(
        Command::new(testkit::bin_dir().join("master"))
            .arg("-c")
            .arg(&inst.config_dir)
            .env("FOO", "bar")
            .env("TZ", "Europe/Paris")
            .env("LANG", "de_DE.UTF-8")
            .env("LD_LIBRARY_PATH", "/nonexistent")
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    inst.wait_socket("private/e");
    let mut s = UnixStream::connect(inst.socket("private/e")).unwrap();
    s.write_all(b"pid\n").unwrap();
    let mut line = String::new();
    BufReader::new(&s).read_line(&mut line).unwrap();
    let pid: u32 = line.trim().strip_prefix("pid ").unwrap().parse().unwrap();
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let mut vars: Vec<String> = environ
        .split(|b| *b == 0)
        .filter(|v| !v.is_empty())
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    vars.sort();
    let config_dir = inst.config_dir.display();
    assert_eq!(
        vars,
        vec![
            "GREETING=hello world".to_owned(),
            "LANG=C".to_owned(),
            format!("MAIL_CONFIG={config_dir}"),
            "MAIL_SERVICE_MAXPROC=1".to_owned(),
            // master's default malloc arena limit (see master(8)).
            "MALLOC_ARENA_MAX=2".to_owned(),
            "TZ=Europe/Paris".to_owned(),
        ]
    );
}
