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
    active: bool,
}

/// Switches the effective group list, group and user to `ids` (only when
/// the real user is root; otherwise a no-op guard).
///
/// # Errors
/// A set-id call failed; the ids are back to root then.
pub fn become_user(ids: Ids) -> Result<AsUser, nix::Error> {
    if !can_switch() {
        return Ok(AsUser { active: false });
    }
    let guard = AsUser { active: true };
    let gid = Gid::from_raw(ids.gid);
    setgroups(&[gid])?;
    setegid(gid)?;
    seteuid(Uid::from_raw(ids.uid))?;
    Ok(guard)
}

impl Drop for AsUser {
    fn drop(&mut self) {
        if !self.active {
            return;
        }
        let root = Gid::from_raw(0);
        let back = seteuid(Uid::from_raw(0))
            .and_then(|()| setegid(root))
            .and_then(|()| setgroups(&[root]));
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
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "privs::tests::child_switch",
                "--ignored",
                "--nocapture",
            ])
            .env("DELIVERY_PRIVS_CHILD", "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        assert!(text.contains("1 passed"), "the child did not run: {text}");
    }

    /// Not a test: the child mode of switch_and_back_when_root, run by it
    /// with `--ignored --exact`.
    #[test]
    #[ignore = "child process of switch_and_back_when_root"]
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
