//! Issue 14, Postfix compatibility: whole-system checks that an existing
//! Postfix site's main.cf and master.cf habits work unchanged.

use crate::util::{Instance, need_instance, wait_until};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// `-o syslog_name=postfix/$service_name` names the service (and
/// `$process_name` the program), and maillog_file lines carry myhostname's
/// first label (not the system host name), as Postfix's postlogd writes.
#[test]
fn issue14_service_name_in_o_and_myhostname_label_in_maillog() {
    need_instance();
    let inst = Instance::new(
        "myhostname = mx1.compat.example\n",
        "compat unix - n n - 1 echo -o syslog_name=postfix/$service_name-$process_name \
         fail-startup\n",
    );
    inst.start();
    let _c = UnixStream::connect(inst.socket(true, "compat"));
    let want = " mx1 postfix/compat-echo/echo[";
    assert!(
        wait_until(Duration::from_secs(10), || inst.log().contains(want)),
        "no line with {want:?}:\n{}",
        inst.log()
    );
    assert!(inst.log().contains(" mx1 postfix/master["), "{}", inst.log());
}
