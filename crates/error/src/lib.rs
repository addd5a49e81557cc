//! What the error, retry and discard delivery agents share: the nexthop
//! of the request is the reason, optionally led by an enhanced status
//! code (`5.1.1 user has left`, Postfix's dsn_split()); each recipient
//! gets the same outcome, logged with `relay=none`.

use delivery::Outcome;
use proto::deliver::Action;

/// What the agent does with every recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// error(8): bounce (default code 5.0.0).
    Bounce,
    /// retry: defer (default code 4.0.0).
    Defer,
    /// discard(8): report delivered (default code 2.0.0).
    Discard,
}

impl Kind {
    fn class(self) -> char {
        match self {
            Kind::Bounce => '5',
            Kind::Defer => '4',
            Kind::Discard => '2',
        }
    }
}

/// Splits `D.D.D text` into code and text; the code's class is forced to
/// the agent's (a `2.0.0` in an error: nexthop still bounces).
pub fn split_dsn(nexthop: &str, kind: Kind) -> (String, String) {
    let nexthop = nexthop.trim();
    let (first, rest) = nexthop.split_once(' ').unwrap_or((nexthop, ""));
    let parts: Vec<&str> = first.split('.').collect();
    let valid = matches!(parts.as_slice(), [c, s, d]
        if matches!(*c, "2" | "4" | "5")
            && (1..=3).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
            && (1..=3).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()));
    let (code, text) = if valid {
        (first.to_string(), rest.trim_start().to_string())
    } else {
        (format!("{}.0.0", kind.class()), nexthop.to_string())
    };
    let code = format!("{}{}", kind.class(), code.get(1..).unwrap_or(".0.0"));
    let text = if text.is_empty() {
        match kind {
            Kind::Discard => "discarded".to_string(),
            _ => "delivery failed".to_string(),
        }
    } else {
        text
    };
    (code, text)
}

/// The outcome for every recipient of a request with this nexthop.
pub fn outcome(nexthop: &str, kind: Kind) -> Outcome {
    let (code, text) = split_dsn(nexthop, kind);
    let action = match kind {
        Kind::Bounce => Action::Bounced,
        Kind::Defer => Action::Deferred,
        Kind::Discard => Action::Delivered,
    };
    Outcome {
        action,
        dsn: code,
        text,
        expanded: 0,
        findable: false,
    }
}

/// Serves requests until the skeleton ends: every recipient gets
/// [`outcome`], logged with `relay=none`.
pub fn serve(daemon: ipc::daemon::Daemon, kind: impl Fn(&str) -> Kind + Send + 'static) {
    daemon.single_server(move |stream, ctx| {
        let kind = kind(&ctx.args.service_name);
        delivery::agent::serve(stream, "none", &mut |msg, rcpt| {
            let o = outcome(&msg.request.nexthop, kind);
            msg.log(&rcpt.address, &rcpt.original, "none", &o);
            o
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsn_split_as_postfix() {
        assert_eq!(
            split_dsn("5.1.1 user unknown", Kind::Bounce),
            ("5.1.1".into(), "user unknown".into())
        );
        assert_eq!(
            split_dsn("mailbox moved", Kind::Bounce),
            ("5.0.0".into(), "mailbox moved".into())
        );
        assert_eq!(
            split_dsn("2.0.0 odd", Kind::Bounce),
            ("5.0.0".into(), "odd".into())
        );
        assert_eq!(
            split_dsn("4.3.2 later", Kind::Defer),
            ("4.3.2".into(), "later".into())
        );
        assert_eq!(
            split_dsn("", Kind::Discard),
            ("2.0.0".into(), "discarded".into())
        );
        assert_eq!(
            split_dsn("example.org", Kind::Discard),
            ("2.0.0".into(), "example.org".into())
        );
        assert_eq!(split_dsn("5.1.1000 x", Kind::Bounce).0, "5.0.0");
    }

    #[test]
    fn outcomes() {
        assert_eq!(outcome("5.1.1 gone", Kind::Bounce).action, Action::Bounced);
        assert_eq!(outcome("x", Kind::Defer).action, Action::Deferred);
        let d = outcome("spam", Kind::Discard);
        assert_eq!(
            (d.action, d.dsn.as_str(), d.text.as_str()),
            (Action::Delivered, "2.0.0", "spam")
        );
    }
}
