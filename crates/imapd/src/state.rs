//! Session states (RFC 9051 3) and which commands each admits: the
//! session answers a command outside its states with BAD.

use crate::parse::CommandBody;

/// The state of an IMAP session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Before LOGIN/AUTHENTICATE.
    NotAuthenticated,
    /// Logged in, no mailbox selected.
    Authenticated,
    /// A mailbox is selected.
    Selected,
    /// LOGOUT seen.
    Logout,
}

/// Is `cmd` allowed in state `s`?
pub fn allowed(cmd: &CommandBody, s: State) -> bool {
    use CommandBody as B;
    match cmd {
        B::Capability | B::Noop | B::Logout | B::Id(_) => s != State::Logout,
        B::StartTls | B::Authenticate { .. } | B::Login { .. } => s == State::NotAuthenticated,
        B::Enable(_)
        | B::Select(..)
        | B::Examine(..)
        | B::Create(..)
        | B::Delete(_)
        | B::Rename(..)
        | B::Subscribe(_)
        | B::Unsubscribe(_)
        | B::List { .. }
        | B::Lsub(..)
        | B::Namespace
        | B::Status(..)
        | B::Append { .. }
        | B::Idle
        | B::GetQuota(_)
        | B::GetQuotaRoot(_)
        | B::SetQuota(..)
        | B::Compress(_) => matches!(s, State::Authenticated | State::Selected),
        B::Check
        | B::Close
        | B::Unselect
        | B::Expunge
        | B::UidExpunge(_)
        | B::Search { .. }
        | B::Fetch { .. }
        | B::Store { .. }
        | B::Copy { .. }
        | B::Move { .. }
        | B::Sort { .. }
        | B::Thread { .. } => s == State::Selected,
    }
}

/// Does the command refer to messages by sequence number (so that
/// EXPUNGE responses must wait, RFC 9051 7.5.1)?
pub fn uses_sequence_numbers(cmd: &CommandBody) -> bool {
    use CommandBody as B;
    match cmd {
        B::Fetch { uid, .. } | B::Store { uid, .. } | B::Copy { uid, .. } | B::Move { uid, .. } => {
            !uid
        }
        B::Search { uid, .. } | B::Sort { uid, .. } | B::Thread { uid, .. } => !uid,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{Event, Parser};

    fn cmd(s: &str) -> CommandBody {
        match Parser::default().feed(format!("a {s}\r\n").as_bytes()).1 {
            Event::Command(c) => c.body,
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn states() {
        assert!(allowed(&cmd("LOGIN a b"), State::NotAuthenticated));
        assert!(!allowed(&cmd("LOGIN a b"), State::Authenticated));
        assert!(!allowed(&cmd("SELECT INBOX"), State::NotAuthenticated));
        assert!(allowed(&cmd("SELECT INBOX"), State::Selected));
        assert!(!allowed(&cmd("FETCH 1 FLAGS"), State::Authenticated));
        assert!(allowed(&cmd("UID FETCH 1 FLAGS"), State::Selected));
        assert!(allowed(&cmd("CAPABILITY"), State::NotAuthenticated));
        assert!(!allowed(&cmd("STARTTLS"), State::Selected));
        assert!(
            uses_sequence_numbers(&cmd("FETCH 1 FLAGS"))
                && !uses_sequence_numbers(&cmd("UID FETCH 1 FLAGS"))
        );
    }
}
