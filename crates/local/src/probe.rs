//! Verify-only requests (address verification probes): what local
//! reports instead of delivering, in Postfix's words (local/mailbox.c,
//! maildir.c, file.c, command.c, indirect.c). Alias, .forward and user
//! lookups run as for real mail; only the last step (writing a mailbox
//! or file, running a command, submitting a forwarded copy) is replaced
//! by one of these successes.

use delivery::Outcome;

use crate::settings::Settings;

/// The user's mailbox: mailbox_command, a Maildir or an mbox file.
pub(crate) fn mailbox(s: &Settings) -> Outcome {
    if !s.mailbox_command.is_empty() {
        command(&s.mailbox_command)
    } else if s.home_mailbox.ends_with('/') {
        Outcome::sent("delivers to maildir")
    } else {
        Outcome::sent("delivers to mailbox")
    }
}

/// A `/file` destination.
pub(crate) fn file(path: &str) -> Outcome {
    Outcome::sent(format!("delivers to file: {path}"))
}

/// A `|command` destination.
pub(crate) fn command(cmd: &str) -> Outcome {
    Outcome::sent(format!("delivers to command: {cmd}"))
}

/// A non-local address from an alias or .forward.
pub(crate) fn forward(address: &str) -> Outcome {
    Outcome::sent(format!("forwards to {address}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_as_postfix() {
        assert_eq!(file("/tmp/x").text, "delivers to file: /tmp/x");
        assert_eq!(command("procmail").text, "delivers to command: procmail");
        assert_eq!(forward("a@b").text, "forwards to a@b");
        assert_eq!(forward("a@b").dsn, "2.0.0");
    }
}
