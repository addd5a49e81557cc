//! Running one delivery with another user's rights (Postfix's set_eugid).
//!
//! local and virtual run as root and write each mailbox with the
//! recipient's effective user and group ids, so file ownership and quotas
//! are the recipient's, then switch back to root. The process is
//! single-threaded while it switches. A delivery agent not started as
//! root (the development instance) delivers as itself: [`become_user`]
//! then does nothing.

use nix::unistd::{Gid, Uid, getuid, setegid, seteuid, setgroups};

/// A user and group to act as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ids {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// True when the process can switch users (its real user is root).
pub fn can_switch() -> bool {
    getuid().is_root()
}

/// While alive, the effective ids are the user's; dropping it goes back
/// to root.
#[derive(Debug)]
#[must_use = "the ids switch back when this is dropped"]
pub struct AsUser {
    /// What was changed (and so is restored): groups, gid, uid.
    changed: [bool; 3],
}

/// Switches the effective group list, group and user to `ids` (only when
/// the real user is root; otherwise a no-op guard).
///
/// # Errors
/// A set-id call failed; what it had changed is back to root then.
pub fn become_user(ids: Ids) -> Result<AsUser, nix::Error> {
    let mut guard = AsUser {
        changed: [false; 3],
    };
    if !can_switch() {
        return Ok(guard);
    }
    let gid = Gid::from_raw(ids.gid);
    setgroups(&[gid])?;
    guard.changed[0] = true;
    setegid(gid)?;
    guard.changed[1] = true;
    seteuid(Uid::from_raw(ids.uid))?;
    guard.changed[2] = true;
    Ok(guard)
}

impl Drop for AsUser {
    fn drop(&mut self) {
        let [groups, gid, uid] = self.changed;
        let root = Gid::from_raw(0);
        // The uid first: only root may change the rest back.
        let back = (if uid {
            seteuid(Uid::from_raw(0))
        } else {
            Ok(())
        })
        .and_then(|()| if gid { setegid(root) } else { Ok(()) })
        .and_then(|()| if groups { setgroups(&[root]) } else { Ok(()) });
        if let Err(e) = back {
            // Going on with another user's rights would be worse.
            maillog::fatal!("cannot switch back to root privileges: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switch_and_back_when_root() {
        if !can_switch() {
            testkit::skip("needs root to change ids");
            return;
        }
        // Run in a child so the test process (with other threads) keeps root.
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "privs::tests::child_switch",
                "--ignored",
                "--nocapture",
            ])
            .env("DELIVERY_PRIVS_CHILD", "1")
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&status.stdout);
        assert!(
            status.status.success() && out.contains("test result: ok. 1 passed"),
            "{out}"
        );
    }

    /// A switch refused by the kernel (gid -1 is never valid) fails
    /// before anything changed; dropping the guard restores nothing.
    #[test]
    fn refused_switch_fails_and_changes_nothing() {
        if !can_switch() {
            testkit::skip("needs root");
            return;
        }
        let before = nix::unistd::getgroups().unwrap();
        let r = become_user(Ids {
            uid: 65534,
            gid: u32::MAX,
        });
        assert_eq!(r.unwrap_err(), nix::Error::EINVAL);
        assert!(nix::unistd::geteuid().is_root());
        assert_eq!(nix::unistd::getgroups().unwrap(), before);
    }

    /// The child of [`switch_and_back_when_root`], not a test of its own
    /// (ignored in a normal run, so never counted as passing).
    #[test]
    #[ignore = "child-process helper, run by switch_and_back_when_root"]
    fn child_switch() {
        if std::env::var_os("DELIVERY_PRIVS_CHILD").is_none() || !can_switch() {
            return;
        }
        {
            let _g = become_user(Ids {
                uid: 65534,
                gid: 65534,
            })
            .unwrap();
            assert_eq!(nix::unistd::geteuid().as_raw(), 65534);
            assert_eq!(nix::unistd::getegid().as_raw(), 65534);
            assert!(std::fs::File::create("/root/.delivery-privs-test").is_err());
        }
        assert!(nix::unistd::geteuid().is_root());
    }
}
