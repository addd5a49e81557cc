//! Tests of the restrictions, against a real trivial-rewrite (under a
//! real master in a temporary instance) and a real DNS server on
//! 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use super::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use testkit::Instance;

/// What an instance test here needs: the binaries built and, as root,
/// the mail_owner account ([`testkit::need_instance`]); missing, it fails.
fn need_instance() {
    testkit::need_instance(&["master", "trivial-rewrite"]);
}

macro_rules! instance {
    ($name:expr, $extra:expr) => {
        start($extra)
    };
}

/// The main.cf every test shares: our domains are host.example.com,
/// localhost and the interface literals; local users are bob and
/// postmaster.
const BASE: &str = "inet_interfaces = loopback-only\nmyhostname = host.example.com\n\
    mydomain = example.com\nmydestination = $myhostname, localhost\n\
    local_recipient_maps = inline:{ {bob=1}, {postmaster=1} }\n\
    recipient_delimiter = +\nmynetworks = 127.0.0.0/8 [::1]/128\n";

/// A master running trivial-rewrite in a temporary instance.
fn start(extra: &str) -> Instance {
    need_instance();
    let mut inst = Instance::new(
        &format!("{BASE}{extra}"),
        "rewrite unix - - n - - trivial-rewrite\n",
    );
    inst.start_master("private/rewrite");
    inst
}

/// Restrictions from an instance's main.cf.
trait Restrict {
    /// Restrictions from the instance's main.cf plus `more`.
    fn restrictions(&self, more: &str) -> Restrictions;
}

impl Restrict for Instance {
    fn restrictions(&self, more: &str) -> Restrictions {
        try_restrictions(&self.config_dir, &format!("{}{more}", self.main_cf))
            .unwrap()
            .with_queue_dir(self.qdir.clone())
    }
}

fn try_restrictions(etc: &Path, text: &str) -> Result<Restrictions, String> {
    let cfg = config::Config::from_text(etc, text).unwrap();
    Restrictions::from_config(&cfg)
}

/// Restrictions without trivial-rewrite, for rules that do not resolve.
fn offline(more: &str) -> Restrictions {
    try_restrictions(Path::new("/nonexistent"), &format!("{BASE}{more}"))
        .unwrap()
        .with_queue_dir(PathBuf::from("/nonexistent"))
}

fn stranger() -> Facts<'static> {
    Facts {
        client_name: "unknown",
        client_addr: "192.0.2.1".parse().unwrap(),
        helo: Some("client.example.net"),
        sender: Some("sender@example.net"),
        recipient: None,
        sasl_username: None,
        tls: false,
        session: None,
    }
}

fn rcpt<'a>(f: &Facts<'a>, r: &'a str) -> Facts<'a> {
    Facts {
        recipient: Some(r),
        ..f.clone()
    }
}

/// The reply as it goes on the wire, without CRLF; "ok" for Verdict::Ok.
fn wire(v: &Verdict) -> String {
    match v {
        Verdict::Ok => "ok".into(),
        Verdict::Reject(r) => r.to_string().trim_end().to_string(),
        Verdict::Hold(s) => format!("hold: {s}"),
        Verdict::Discard(s) => format!("discard: {s}"),
        Verdict::Actions(a) => format!("actions: {a:?}"),
    }
}

/// The relay tricks, each aimed at remote.example through one of
/// our domains.
const TRICKS: &[&str] = &[
    "user@remote.example",
    "USER@REMOTE.EXAMPLE",
    "user@remote.example.",
    "user%remote.example@localhost",
    "user%remote.example@host.example.com",
    "user%remote.example@[127.0.0.1]",
    "remote.example!user@localhost",
    "remote.example!user@host.example.com",
    "user@remote.example@localhost",
    "user%remote.example%localhost@localhost",
    "@localhost:user@remote.example",
    "@localhost,@host.example.com:user@remote.example",
    "user@remote.example@host.example.com",
    "user@[192.0.2.99]",
    "user@[IPv6:2001:db8::1]",
    "user%[192.0.2.99]@localhost",
    "remote.example!user%localhost@localhost",
    "user@localhost@remote.example",
    "user@localhost.remote.example",
    "user@remote.example%localhost",
];

#[test]
fn relay_tricks_are_never_relayed_for_strangers() {
    let inst = instance!("relay_tricks_are_never_relayed_for_strangers", "");
    let strict = inst.restrictions(
        "smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination\n",
    );
    let default = inst.restrictions("");
    let f = stranger();
    for t in TRICKS {
        let v = strict.at_rcpt(&rcpt(&f, t));
        assert_eq!(
            wire(&v),
            format!("554 5.7.1 <{t}>: Relay access denied"),
            "{t} must not be relayed"
        );
        let d = default.at_rcpt(&rcpt(&f, t));
        assert_eq!(
            wire(&d),
            format!("454 4.7.1 <{t}>: Relay access denied"),
            "{t}: the default relay restrictions defer"
        );
    }
    // Our own recipients are accepted from anyone.
    for ok in [
        "bob@localhost",
        "bob@host.example.com",
        "Bob+tag@LOCALHOST",
        "postmaster",
        "bob@[127.0.0.1]",
    ] {
        assert_eq!(wire(&strict.at_rcpt(&rcpt(&f, ok))), "ok", "{ok}");
    }
}

#[test]
fn mynetworks_and_sasl_clients_may_relay() {
    let inst = instance!("mynetworks_and_sasl_clients_may_relay", "");
    let r = inst.restrictions("");
    let local = Facts {
        client_addr: "127.0.0.1".parse().unwrap(),
        ..stranger()
    };
    let v6 = Facts {
        client_addr: "::1".parse().unwrap(),
        ..stranger()
    };
    let sasl = Facts {
        sasl_username: Some("alice"),
        ..stranger()
    };
    let empty_sasl = Facts {
        sasl_username: Some(""),
        ..stranger()
    };
    for t in TRICKS {
        assert_eq!(
            wire(&r.at_rcpt(&rcpt(&local, t))),
            "ok",
            "{t} from 127.0.0.1"
        );
        assert_eq!(wire(&r.at_rcpt(&rcpt(&v6, t))), "ok", "{t} from ::1");
        assert_eq!(wire(&r.at_rcpt(&rcpt(&sasl, t))), "ok", "{t} with SASL");
        assert!(
            matches!(r.at_rcpt(&rcpt(&empty_sasl, t)), Verdict::Reject(_)),
            "{t}: an empty SASL name is no login"
        );
    }
    assert!(r.in_mynetworks("127.0.0.1".parse().unwrap()));
    assert!(!r.in_mynetworks("192.0.2.1".parse().unwrap()));
}

#[test]
fn relay_domains_and_routed_addresses() {
    let inst = instance!(
        "relay_domains_and_routed_addresses",
        "relay_domains = relay.example\nvirtual_mailbox_domains = vmail.example\n\
         virtual_mailbox_maps = inline:{ {box@vmail.example=x} }\n\
         virtual_alias_domains = valias.example\n\
         virtual_alias_maps = inline:{ {al@valias.example=bob@localhost} }\n"
    );
    let r = inst
        .restrictions("smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination\n");
    let f = stranger();
    let check = |a: &str| wire(&r.at_rcpt(&rcpt(&f, a)));
    assert_eq!(check("anyone@relay.example"), "ok");
    assert_eq!(check("anyone@sub.relay.example"), "ok");
    assert_eq!(
        check("user%other.example@relay.example"),
        "554 5.7.1 <user%other.example@relay.example>: Relay access denied"
    );
    assert_eq!(
        check("other.example!user@relay.example"),
        "554 5.7.1 <other.example!user@relay.example>: Relay access denied"
    );
    assert_eq!(check("box@vmail.example"), "ok");
    assert_eq!(check("al@valias.example"), "ok");
    // Unlisted recipients in each class (smtpd_reject_unlisted_recipient).
    assert_eq!(
        check("nobody@localhost"),
        "550 5.1.1 <nobody@localhost>: Recipient address rejected: User unknown in local recipient table"
    );
    assert_eq!(
        check("nobody@vmail.example"),
        "550 5.1.1 <nobody@vmail.example>: Recipient address rejected: User unknown in virtual mailbox table"
    );
    assert_eq!(
        check("nobody@valias.example"),
        "550 5.1.1 <nobody@valias.example>: Recipient address rejected: User unknown in virtual alias table"
    );
    let untrusted = inst.restrictions(
        "smtpd_relay_restrictions = reject_unauth_destination\nallow_untrusted_routing = yes\n",
    );
    assert_eq!(
        wire(&untrusted.at_rcpt(&rcpt(&f, "user%other.example@relay.example"))),
        "ok"
    );
}

#[test]
fn unlisted_recipients() {
    let inst = instance!(
        "unlisted_recipients",
        "relay_domains = relay.example\nrelay_recipient_maps = inline:{ {known@relay.example=x} }\n"
    );
    let f = stranger();
    let r = inst.restrictions("");
    assert_eq!(wire(&r.at_rcpt(&rcpt(&f, "known@relay.example"))), "ok");
    assert_eq!(
        wire(&r.at_rcpt(&rcpt(&f, "other@relay.example"))),
        "550 5.1.1 <other@relay.example>: Recipient address rejected: User unknown in relay recipient table"
    );
    // Extensions are stripped for the lookup.
    assert_eq!(wire(&r.at_rcpt(&rcpt(&f, "bob+x@localhost"))), "ok");
    let off = inst.restrictions("smtpd_reject_unlisted_recipient = no\n");
    assert_eq!(wire(&off.at_rcpt(&rcpt(&f, "nobody@localhost"))), "ok");
    let explicit = inst.restrictions(
        "smtpd_reject_unlisted_recipient = no\nsmtpd_recipient_restrictions = reject_unlisted_recipient\n",
    );
    assert!(wire(&explicit.at_rcpt(&rcpt(&f, "nobody@localhost"))).starts_with("550 5.1.1"));
    let terse = inst.restrictions("show_user_unknown_table_name = no\n");
    assert_eq!(
        wire(&terse.at_rcpt(&rcpt(&f, "nobody@localhost"))),
        "550 5.1.1 <nobody@localhost>: Recipient address rejected: User unknown"
    );
    // Empty local_recipient_maps: every local name is accepted.
    let any = inst.restrictions("local_recipient_maps =\n");
    assert_eq!(wire(&any.at_rcpt(&rcpt(&f, "nobody@localhost"))), "ok");
}

#[test]
fn defaults_are_never_an_open_relay() {
    let inst = instance!("defaults_are_never_an_open_relay", "");
    let cfg = config::Config::defaults(&inst.config_dir);
    let r = Restrictions::from_config(&cfg)
        .unwrap()
        .with_queue_dir(inst.qdir.clone());
    let f = stranger();
    for t in TRICKS {
        assert!(
            matches!(r.at_rcpt(&rcpt(&f, t)), Verdict::Reject(_)),
            "{t} with default settings"
        );
    }
    // Lists without any relay guard are refused.
    let e = try_restrictions(
        &inst.config_dir,
        "smtpd_relay_restrictions = permit_mynetworks\nsmtpd_recipient_restrictions = permit\n",
    )
    .unwrap_err();
    assert!(e.contains("smtpd_relay_restrictions"), "{e}");
    assert!(
        try_restrictions(
            &inst.config_dir,
            "smtpd_relay_restrictions =\nsmtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination\n"
        )
        .is_ok()
    );
    // trivial-rewrite gone: a temporary failure, never a relay.
    let gone = offline("");
    assert_eq!(
        wire(&gone.at_rcpt(&rcpt(&f, "user@remote.example"))),
        "451 4.3.0 <user@remote.example>: Temporary lookup failure"
    );
}

#[test]
fn bad_lists_name_the_parameter() {
    let etc = Path::new("/nonexistent");
    let e = try_restrictions(etc, "smtpd_client_restrictions = permit_everyone\n").unwrap_err();
    assert!(
        e.contains("smtpd_client_restrictions") && e.contains("permit_everyone"),
        "{e}"
    );
    let e = try_restrictions(etc, "smtpd_helo_restrictions = check_helo_access\n").unwrap_err();
    assert!(e.contains("smtpd_helo_restrictions"), "{e}");
    let e = try_restrictions(etc, "smtpd_data_restrictions = inline:{a=b}\n").unwrap_err();
    assert!(e.contains("smtpd_data_restrictions"), "{e}");
    let e = try_restrictions(etc, "smtpd_sender_restrictions = reject_rbl_client\n").unwrap_err();
    assert!(e.contains("requires an argument"), "{e}");
}

#[test]
fn generic_rules_and_delay_reject() {
    let f = stranger();
    // delay_reject = yes: nothing at connect/helo/mail, all at RCPT.
    let r = offline("smtpd_client_restrictions = reject\n");
    assert!(r.delay_reject());
    assert_eq!(r.at_connect(&f), Verdict::Ok);
    assert_eq!(r.at_helo(&f), Verdict::Ok);
    assert_eq!(r.at_mail(&f), Verdict::Ok);
    assert_eq!(
        wire(&r.at_rcpt(&rcpt(&f, "bob@localhost"))),
        "554 5.7.1 <unknown[192.0.2.1]>: Client host rejected: Access denied"
    );
    // delay_reject = no: at connect.
    let r = offline("smtpd_delay_reject = no\nsmtpd_client_restrictions = defer\n");
    assert_eq!(
        wire(&r.at_connect(&f)),
        "450 4.3.2 <unknown[192.0.2.1]>: Client host rejected: Try again later"
    );
    let r = offline("smtpd_delay_reject = no\nsmtpd_helo_restrictions = reject\n");
    assert_eq!(r.at_connect(&f), Verdict::Ok);
    assert_eq!(
        wire(&r.at_helo(&f)),
        "554 5.7.1 <client.example.net>: Helo command rejected: Access denied"
    );
    let r = offline("smtpd_delay_reject = no\nsmtpd_sender_restrictions = reject\n");
    assert_eq!(
        wire(&r.at_mail(&f)),
        "554 5.7.1 <sender@example.net>: Sender address rejected: Access denied"
    );
    // permit ends only its own list.
    let r = offline(
        "smtpd_delay_reject = no\nsmtpd_client_restrictions = permit, reject\nsmtpd_sender_restrictions = reject\n",
    );
    assert_eq!(r.at_connect(&f), Verdict::Ok);
    assert!(matches!(r.at_mail(&f), Verdict::Reject(_)));
    // reject_code and soft_bounce.
    let r =
        offline("smtpd_delay_reject = no\nsmtpd_client_restrictions = reject\nreject_code = 550\n");
    assert!(wire(&r.at_connect(&f)).starts_with("550 5.7.1 "));
    let r =
        offline("smtpd_delay_reject = no\nsmtpd_client_restrictions = reject\nsoft_bounce = yes\n");
    assert!(wire(&r.at_connect(&f)).starts_with("454 4.7.1 "));
    // warn_if_reject: the next restriction only warns.
    let r = offline(
        "smtpd_delay_reject = no\nsmtpd_client_restrictions = warn_if_reject, reject, defer\n",
    );
    assert!(wire(&r.at_connect(&f)).starts_with("450 4.3.2"));
    let r = offline("smtpd_delay_reject = no\nsmtpd_client_restrictions = warn_if_reject reject\n");
    assert_eq!(r.at_connect(&f), Verdict::Ok);
    // reject_unauth_pipelining is accepted and does nothing here.
    let r =
        offline("smtpd_delay_reject = no\nsmtpd_client_restrictions = reject_unauth_pipelining\n");
    assert_eq!(r.at_connect(&f), Verdict::Ok);
    // Data restrictions.
    let r = offline("smtpd_data_restrictions = reject\n");
    assert_eq!(
        wire(&r.at_data(&f)),
        "554 5.7.1 <DATA>: Data command rejected: Access denied"
    );
    // defer_if_permit turns a later permit into 450.
    let r = offline("smtpd_data_restrictions = defer_if_permit, permit\n");
    assert_eq!(
        wire(&r.at_data(&f)),
        "450 4.7.0 <DATA>: Data command rejected: defer_if_permit requested"
    );
    // defer_if_reject turns a later reject into 450.
    let r = offline("smtpd_data_restrictions = defer_if_reject, reject\n");
    assert!(wire(&r.at_data(&f)).starts_with("450 4.7.0"));
    // reject_plaintext_session.
    let r = offline("smtpd_data_restrictions = reject_plaintext_session\n");
    assert_eq!(
        wire(&r.at_data(&f)),
        "450 4.7.1 Session encryption is required"
    );
    assert_eq!(
        r.at_data(&Facts {
            tls: true,
            ..f.clone()
        }),
        Verdict::Ok
    );
    // reject_unknown_client_hostname.
    let r = offline("smtpd_data_restrictions = reject_unknown_client_hostname\n");
    assert_eq!(
        wire(&r.at_data(&f)),
        "450 4.7.25 Client host rejected: cannot find your hostname, [192.0.2.1]"
    );
}

#[test]
fn helo_and_fqdn_rules() {
    let r = offline(
        "smtpd_delay_reject = no\nsmtpd_helo_restrictions = reject_invalid_helo_hostname, reject_non_fqdn_helo_hostname\n\
         smtpd_sender_restrictions = reject_non_fqdn_sender\n",
    );
    let h = |name: &'static str| {
        wire(&r.at_helo(&Facts {
            helo: Some(name),
            ..stranger()
        }))
    };
    assert_eq!(h("mail.example.net"), "ok");
    assert_eq!(h("mail.example.net."), "ok");
    assert_eq!(h("[192.0.2.1]"), "ok");
    assert_eq!(h("[IPv6:2001:db8::1]"), "ok");
    assert_eq!(
        h("bad_name!"),
        "501 5.5.2 <bad_name!>: Helo command rejected: Invalid name"
    );
    assert_eq!(
        h("-x.example"),
        "501 5.5.2 <-x.example>: Helo command rejected: Invalid name"
    );
    assert_eq!(
        h("[300.1.1.1]"),
        "501 5.5.2 <[300.1.1.1]>: Helo command rejected: invalid ip address"
    );
    assert_eq!(
        h("localhost"),
        "504 5.5.2 <localhost>: Helo command rejected: need fully-qualified hostname"
    );
    let m = |s: &'static str| {
        wire(&r.at_mail(&Facts {
            sender: Some(s),
            ..stranger()
        }))
    };
    assert_eq!(m(""), "ok");
    assert_eq!(m("a@example.net"), "ok");
    assert_eq!(m("a@[192.0.2.1]"), "ok");
    assert_eq!(
        m("a@localhost"),
        "504 5.5.2 <a@localhost>: Sender address rejected: need fully-qualified address"
    );
    assert_eq!(
        m("a"),
        "504 5.5.2 <a>: Sender address rejected: need fully-qualified address"
    );
    let r = offline("smtpd_recipient_restrictions = reject_non_fqdn_recipient\n");
    let f = stranger();
    // Recipient checks after the relay list, which defers strangers: from mynetworks.
    let local = Facts {
        client_addr: "127.0.0.1".parse().unwrap(),
        ..f
    };
    assert_eq!(
        wire(&r.at_rcpt(&rcpt(&local, "bob"))),
        "504 5.5.2 <bob>: Recipient address rejected: need fully-qualified address"
    );
}

#[test]
fn client_and_helo_access_tables() {
    let d = tempfile::tempdir().unwrap();
    let t = d.path().join("access");
    std::fs::write(
        &t,
        "bad.example REJECT\n192.0.2 REJECT 5.7.9 Your network is blocked\n\
         198.51.100.7 OK\n198.51.100 DEFER slow down\n203.0.113.5 450 4.7.2 later please\n\
         203.0.113.6 550 go away\n203.0.113.7 DUNNO\n203.0.113 REJECT\n\
         2001:db8 REJECT v6 net\nhold.example HOLD\ndiscard.example DISCARD spam\n\
         list.example permit_mynetworks, reject\n12.0.0.1 12345\n",
    )
    .unwrap();
    let spec = format!("texthash:{}", t.display());
    let r = offline(&format!(
        "smtpd_delay_reject = no\nsmtpd_client_restrictions = check_client_access {spec}\n\
         smtpd_helo_restrictions = {spec}\n"
    ));
    let c = |name: &'static str, addr: &str| {
        wire(&r.at_connect(&Facts {
            client_name: name,
            client_addr: addr.parse().unwrap(),
            ..stranger()
        }))
    };
    // By name and parent domain (smtpd_access_maps matches subdomains).
    assert_eq!(
        c("mx.bad.example", "10.0.0.1"),
        "554 5.7.1 <mx.bad.example[10.0.0.1]>: Client host rejected: Access denied"
    );
    // By address prefix, with a DSN and text.
    assert_eq!(
        c("unknown", "192.0.2.44"),
        "554 5.7.9 <unknown[192.0.2.44]>: Client host rejected: Your network is blocked"
    );
    assert_eq!(c("unknown", "198.51.100.7"), "ok");
    assert_eq!(
        c("unknown", "198.51.100.8"),
        "450 4.7.1 <unknown[198.51.100.8]>: Client host rejected: slow down"
    );
    assert_eq!(
        c("unknown", "203.0.113.5"),
        "450 4.7.2 <unknown[203.0.113.5]>: Client host rejected: later please"
    );
    assert_eq!(
        c("unknown", "203.0.113.6"),
        "550 5.7.1 <unknown[203.0.113.6]>: Client host rejected: go away"
    );
    // DUNNO stops the search in this table: the /24 entry is not consulted.
    assert_eq!(c("unknown", "203.0.113.7"), "ok");
    assert!(c("unknown", "203.0.113.8").starts_with("554 5.7.1"));
    assert_eq!(
        c("unknown", "2001:db8::5"),
        "554 5.7.1 <unknown[2001:db8::5]>: Client host rejected: v6 net"
    );
    assert_eq!(c("unknown", "12.0.0.1"), "ok");
    // HOLD and DISCARD need a transaction: skipped at connect time...
    assert_eq!(c("hold.example", "10.0.0.2"), "ok");
    assert_eq!(c("discard.example", "10.0.0.3"), "ok");
    // ...and in effect when the client list runs at RCPT time.
    let delayed = offline(&format!(
        "smtpd_client_restrictions = check_client_access {spec}\naccess_map_reject_code = 550\n\
         smtpd_reject_unlisted_recipient = no\n"
    ));
    let d = |name: &'static str, addr: &str| {
        let local = Facts {
            client_name: name,
            client_addr: addr.parse().unwrap(),
            recipient: Some("bob@localhost"),
            ..stranger()
        };
        wire(&delayed.at_rcpt(&local))
    };
    assert!(
        d("hold.example", "127.0.0.2")
            .starts_with("hold: <hold.example[127.0.0.2]>: Client host triggers HOLD action")
    );
    assert_eq!(
        d("discard.example", "127.0.0.3"),
        "discard: <discard.example[127.0.0.3]>: Client host spam"
    );
    assert_eq!(
        d("mx.bad.example", "127.0.0.1"),
        "550 5.7.1 <mx.bad.example[127.0.0.1]>: Client host rejected: Access denied"
    );
    // A value that is a list of restrictions.
    assert_eq!(c("list.example", "127.0.0.1"), "ok");
    assert!(c("list.example", "10.0.0.4").starts_with("554 5.7.1 <list.example[10.0.0.4]>"));
    assert_eq!(c("good.example", "10.0.0.5"), "ok");
    // HELO names by the shorthand form.
    let h = |name: &'static str| {
        wire(&r.at_helo(&Facts {
            helo: Some(name),
            client_addr: "10.9.9.9".parse().unwrap(),
            ..stranger()
        }))
    };
    assert_eq!(
        h("x.bad.example"),
        "554 5.7.1 <x.bad.example>: Helo command rejected: Access denied"
    );
    assert_eq!(h("fine.example"), "ok");
    // Without parent matching, only .domain entries match subdomains.
    let r = offline(&format!(
        "smtpd_delay_reject = no\nsmtpd_client_restrictions = check_client_access {spec}\n\
         parent_domain_matches_subdomains =\n"
    ));
    assert_eq!(
        wire(&r.at_connect(&Facts {
            client_name: "mx.bad.example",
            client_addr: "10.0.0.1".parse().unwrap(),
            ..stranger()
        })),
        "ok"
    );
    // A table that cannot be opened: a temporary server error, not a pass.
    let r = offline(
        "smtpd_delay_reject = no\nsmtpd_client_restrictions = check_client_access texthash:/nonexistent/access\n",
    );
    assert_eq!(
        wire(&r.at_connect(&stranger())),
        "451 4.3.5 <unknown[192.0.2.1]>: Client host rejected: Server configuration error"
    );
}

#[test]
fn sender_and_recipient_access_tables() {
    let inst = instance!(
        "sender_and_recipient_access_tables",
        "relay_domains = relay.example\n"
    );
    let d = tempfile::tempdir().unwrap();
    let t = d.path().join("access");
    std::fs::write(
        &t,
        "spammer@example.net REJECT\nexample.org REJECT no mail from example.org\n\
         <> 550 5.7.1 no bounces\nabuse@ OK\nhold@example.net HOLD\n\
         bob@localhost DISCARD\nrelay.example OK\nuser@relay.example REJECT no such user\n\
         other.example OK\n",
    )
    .unwrap();
    let spec = format!("texthash:{}", t.display());
    let r = inst.restrictions(&format!(
        "smtpd_sender_restrictions = check_sender_access {spec}\n\
         smtpd_recipient_restrictions = check_recipient_access {spec}\n\
         smtpd_relay_restrictions = permit_mynetworks, check_recipient_access {spec}, reject_unauth_destination\n"
    ));
    let with = |s: &'static str, rc: &'static str| {
        wire(&r.at_rcpt(&Facts {
            sender: Some(s),
            recipient: Some(rc),
            ..stranger()
        }))
    };
    assert_eq!(
        with("spammer@example.net", "bob@localhost"),
        "554 5.7.1 <spammer@example.net>: Sender address rejected: Access denied"
    );
    assert_eq!(
        with("Spammer+tag@EXAMPLE.net", "postmaster@localhost"),
        "554 5.7.1 <Spammer+tag@EXAMPLE.net>: Sender address rejected: Access denied"
    );
    assert_eq!(
        with("x@sub.example.org", "postmaster@localhost"),
        "554 5.7.1 <x@sub.example.org>: Sender address rejected: no mail from example.org"
    );
    assert_eq!(
        with("", "postmaster@localhost"),
        "550 5.7.1 <>: Sender address rejected: no bounces"
    );
    // `user@` comes after the domain and its parents (Postfix's order).
    assert_eq!(with("abuse@example.com", "postmaster@localhost"), "ok");
    assert!(with("abuse@example.org", "postmaster@localhost").starts_with("554"));
    assert_eq!(
        with("hold@example.net", "postmaster@localhost"),
        "hold: <hold@example.net>: Sender address triggers HOLD action"
    );
    assert_eq!(
        with("a@example.net", "bob@localhost"),
        "discard: <bob@localhost>: Recipient address triggers DISCARD action"
    );
    assert_eq!(with("a@example.net", "x@relay.example"), "ok");
    assert_eq!(
        with("a@example.net", "user@relay.example"),
        "554 5.7.1 <user@relay.example>: Recipient address rejected: no such user"
    );
    // OK in the relay list for a remote domain: the table's OK permits,
    // but never for a routed address.
    assert_eq!(with("a@example.net", "u@other.example"), "ok");
    assert_eq!(
        with("a@example.net", "u%third.example@other.example"),
        "554 5.7.1 <u%third.example@other.example>: Relay access denied"
    );
}

/// Records for the dns crate's test server from (name, type, value).
fn recs(list: &[(&str, &str, &str)]) -> Vec<(String, dns::testserver::Rec)> {
    use dns::testserver::Rec;
    list.iter()
        .map(|(n, t, v)| {
            let r = match *t {
                "A" => Rec::A(v.to_string()),
                "TXT" => Rec::Txt(v.to_string()),
                "MX" => Rec::Mx(10, v.to_string()),
                _ => Rec::Exists,
            };
            (n.to_string(), r)
        })
        .collect()
}

#[test]
fn rbl_client_against_a_real_dns_server() {
    let s = dns::testserver::start(recs(&[
        ("2.0.0.127.rbl.test", "A", "127.0.0.2"),
        ("2.0.0.127.rbl.test", "TXT", "listed for testing"),
        ("3.0.0.127.rbl.test", "A", "127.0.0.3"),
    ]));
    let resolver = || dns::Resolver::new(dns::ResolvConf::parse(&s.resolv_conf()));
    let r = offline(
        "smtpd_delay_reject = no\nsmtpd_client_restrictions = reject_rbl_client rbl.test\n",
    )
    .with_resolver(resolver());
    let c = |addr: &str| {
        wire(&r.at_connect(&Facts {
            client_addr: addr.parse().unwrap(),
            ..stranger()
        }))
    };
    assert_eq!(
        c("127.0.0.2"),
        "554 5.7.1 Service unavailable; Client host [127.0.0.2] blocked using rbl.test; listed for testing"
    );
    assert_eq!(
        c("127.0.0.3"),
        "554 5.7.1 Service unavailable; Client host [127.0.0.3] blocked using rbl.test"
    );
    assert_eq!(c("127.0.0.4"), "ok");
    // A reply filter: only 127.0.0.3 answers count.
    let r = offline(
        "smtpd_delay_reject = no\nsmtpd_client_restrictions = reject_rbl_client rbl.test=127.0.0.3\nmaps_rbl_reject_code = 550\n",
    )
    .with_resolver(resolver());
    let c = |addr: &str| {
        wire(&r.at_connect(&Facts {
            client_addr: addr.parse().unwrap(),
            ..stranger()
        }))
    };
    assert_eq!(c("127.0.0.2"), "ok");
    assert!(c("127.0.0.3").starts_with("550 5.7.1 Service unavailable"));
    // An unreachable list: the client gets the benefit of the doubt.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let r = offline(
        "smtpd_delay_reject = no\nsmtpd_client_restrictions = reject_rbl_client rbl.test\n",
    )
    .with_resolver(
        dns::Resolver::new(dns::ResolvConf::parse(&format!(
            "nameserver {}",
            silent.local_addr().unwrap()
        )))
        .with_timeout(Duration::from_millis(100), 1),
    );
    assert_eq!(
        r.at_connect(&Facts {
            client_addr: "127.0.0.2".parse().unwrap(),
            ..stranger()
        }),
        Verdict::Ok
    );
}

#[test]
fn mail_resolv_conf_names_the_servers() {
    // Run in a child process, so that the environment stays this test's.
    if std::env::var_os("RESTRICT_TEST_CHILD").is_some() {
        let r = offline(
            "smtpd_delay_reject = no\nsmtpd_client_restrictions = reject_rbl_client rbl.test\n",
        );
        let v = r.at_connect(&Facts {
            client_addr: "127.0.0.2".parse().unwrap(),
            ..stranger()
        });
        assert!(
            wire(&v).starts_with("554 5.7.1 Service unavailable"),
            "{v:?}"
        );
        return;
    }
    let s = dns::testserver::start(recs(&[("2.0.0.127.rbl.test", "A", "127.0.0.2")]));
    let d = tempfile::tempdir().unwrap();
    let conf = d.path().join("resolv.conf");
    std::fs::write(&conf, s.resolv_conf()).unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "restrict::tests::mail_resolv_conf_names_the_servers",
            "--test-threads=1",
        ])
        .env("RESTRICT_TEST_CHILD", "1")
        .env(dns::RESOLV_CONF_ENV, &conf)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("1 passed"), "{text}");
}

#[test]
fn unknown_recipient_domain_needs_dns() {
    let inst = instance!("unknown_recipient_domain_needs_dns", "");
    let s = dns::testserver::start(recs(&[
        ("mx.test", "MX", "mail.mx.test."),
        ("a.test", "A", "192.0.2.10"),
    ]));
    let r = inst
        .restrictions("smtpd_recipient_restrictions = reject_unknown_recipient_domain\n")
        .with_resolver(dns::Resolver::new(dns::ResolvConf::parse(&s.resolv_conf())));
    let local = Facts {
        client_addr: "127.0.0.1".parse().unwrap(),
        ..stranger()
    };
    let c = |a: &str| wire(&r.at_rcpt(&rcpt(&local, a)));
    assert_eq!(c("u@mx.test"), "ok");
    assert_eq!(c("u@a.test"), "ok");
    assert_eq!(
        c("u@nx.test"),
        "450 4.1.2 <u@nx.test>: Recipient address rejected: Domain not found"
    );
    // Our own domains and literals are not looked up.
    assert_eq!(c("bob@localhost"), "ok");
    assert_eq!(c("u@[192.0.2.1]"), "ok");
    // No answer: 450 as well (defer_if_permit), never a pass.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let r = inst
        .restrictions("smtpd_recipient_restrictions = reject_unknown_recipient_domain\n")
        .with_resolver(
            dns::Resolver::new(dns::ResolvConf::parse(&format!(
                "nameserver {}",
                silent.local_addr().unwrap()
            )))
            .with_timeout(Duration::from_millis(100), 1),
        );
    assert_eq!(
        wire(&r.at_rcpt(&rcpt(&local, "u@whatever.test"))),
        "450 4.1.2 <u@whatever.test>: Recipient address rejected: Domain not found"
    );
}

#[test]
fn address_dsns_fit_what_is_rejected() {
    assert_eq!(dsn_fix("5.1.1", "Sender address"), "4.1.0");
    assert_eq!(dsn_fix("5.1.8", "Recipient address"), "4.1.2");
    assert_eq!(dsn_fix("5.1.1", "Client host"), "4.0.0");
    assert_eq!(dsn_fix("5.7.1", "Client host"), "5.7.1");
    let r = offline(
        "smtpd_delay_reject = no\nsmtpd_client_restrictions = check_client_access inline:{ {unknown=REJECT 5.1.1 no} }\n",
    );
    assert_eq!(
        wire(&r.at_connect(&stranger())),
        "554 5.0.0 <unknown[192.0.2.1]>: Client host rejected: no"
    );
}

#[test]
fn restriction_classes() {
    let r = offline(
        "smtpd_restriction_classes = strict, lenient\nstrict = reject\nlenient = permit\n\
         smtpd_delay_reject = no\n\
         smtpd_client_restrictions = check_client_access inline:{ {bad.example=strict}, {good.example=lenient} }, strict\n",
    );
    let c = |name: &'static str| {
        wire(&r.at_connect(&Facts {
            client_name: name,
            ..stranger()
        }))
    };
    assert_eq!(
        c("x.bad.example"),
        "554 5.7.1 <x.bad.example[192.0.2.1]>: Client host rejected: Access denied"
    );
    assert_eq!(c("x.good.example"), "ok");
    assert!(
        c("other.example").starts_with("554 5.7.1"),
        "the class as a list item"
    );
    let e = try_restrictions(
        Path::new("/nonexistent"),
        "smtpd_restriction_classes = nothere\n",
    )
    .unwrap_err();
    assert!(e.contains("nothere"), "{e}");
}

#[test]
fn restrictions_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Restrictions>();
}

#[test]
fn etrn_restrictions() {
    let f = stranger();
    let local = Facts {
        client_addr: "127.0.0.1".parse().unwrap(),
        ..stranger()
    };
    let r = offline(
        "mynetworks = 127.0.0.0/8\nsmtpd_etrn_restrictions = \
         check_etrn_access inline:{ {bad.example=REJECT no flush} {sub.example=OK} }, \
         permit_mynetworks, reject\n",
    );
    // Not in mynetworks: `reject`, as Postfix words it for ETRN.
    assert_eq!(
        wire(&r.at_etrn(&f, "a.example")),
        "554 5.7.1 <a.example>: Etrn command rejected: Access denied"
    );
    assert_eq!(r.at_etrn(&local, "a.example"), Verdict::Ok);
    assert_eq!(
        wire(&r.at_etrn(&local, "bad.example")),
        "554 5.7.1 <bad.example>: Etrn command rejected: no flush"
    );
    assert_eq!(r.at_etrn(&f, "x.sub.example"), Verdict::Ok);
    // An empty list permits; the client restrictions apply first
    // (smtpd_delay_reject).
    let r = offline(
        "mynetworks = 127.0.0.0/8\nsmtpd_client_restrictions = permit_mynetworks, reject\n",
    );
    assert_eq!(r.at_etrn(&local, "a.example"), Verdict::Ok);
    assert!(wire(&r.at_etrn(&f, "a.example")).starts_with("554 5.7.1 <unknown[192.0.2.1]>"));
    // A bare table in the ETRN list is check_etrn_access.
    let r = offline("smtpd_etrn_restrictions = inline:{ {a.example=REJECT} }\n");
    assert!(wire(&r.at_etrn(&f, "a.example")).contains("Etrn command rejected"));
}

#[test]
fn end_of_data_restrictions() {
    let f = stranger();
    let r = offline("");
    assert!(!r.has_end_of_data());
    assert_eq!(r.at_end_of_data(&f, 100), Verdict::Ok);
    let r = offline("smtpd_end_of_data_restrictions = reject\n");
    assert!(r.has_end_of_data());
    assert_eq!(
        wire(&r.at_end_of_data(&f, 100)),
        "554 5.7.1 <END-OF-MESSAGE>: End-of-data rejected: Access denied"
    );
    let r = offline(
        "smtpd_end_of_data_restrictions = check_client_access inline:{ {192.0.2.1=REJECT big} }\n",
    );
    assert_eq!(
        wire(&r.at_end_of_data(&f, 100)),
        "554 5.7.1 <unknown[192.0.2.1]>: Client host rejected: big"
    );
}

#[test]
fn every_restriction_postfix_check_knows_is_built_here() {
    for (name, arg) in config::restrictions::RESTRICTIONS {
        let text = match arg {
            config::restrictions::Arg::None => name.to_string(),
            config::restrictions::Arg::Word => format!("{name} zen.example"),
            config::restrictions::Arg::Table => format!("{name} inline:{{a=b}}"),
            config::restrictions::Arg::Service => format!("{name} inet:127.0.0.1:1"),
        };
        assert!(
            parse::parse_list(&text, None, Some(&mut Vec::new()), &[]).is_ok(),
            "{text}"
        );
    }
}

#[test]
fn broken_configuration_answers_451_instead_of_exiting() {
    let cfg = config::Config::from_text(
        Path::new("/nonexistent"),
        "smtpd_recipient_restrictions = reject_rhsbl_sender x.example, reject_unauth_destination\n",
    )
    .unwrap();
    assert!(Restrictions::from_config(&cfg).is_err());
    let r = Restrictions::from_config_or_broken(&cfg).unwrap();
    let f = stranger();
    assert_eq!(r.at_connect(&f), Verdict::Ok);
    assert_eq!(
        wire(&r.at_rcpt(&rcpt(&f, "a@example.com"))),
        "451 4.3.5 Server configuration error"
    );
}
