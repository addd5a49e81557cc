//! smtpd access restrictions, with Postfix's names and semantics.
//!
//! # Synopsis
//!
//! ```text
//! let r = Restrictions::from_config(&cfg)?;          // before chroot
//! let f = Facts { client_name, client_addr, helo, sender, recipient, sasl_username, tls };
//! match r.at_rcpt(&f) { Verdict::Ok | Verdict::Hold(_) | Verdict::Discard(_) => .., Verdict::Reject(reply) => .. }
//! ```
//!
//! # Description
//!
//! Six lists of restrictions are evaluated, each at its SMTP command:
//! smtpd_client_restrictions (connect), smtpd_helo_restrictions
//! (HELO/EHLO), smtpd_sender_restrictions (MAIL FROM),
//! smtpd_relay_restrictions then smtpd_recipient_restrictions (RCPT TO),
//! smtpd_data_restrictions (DATA), smtpd_end_of_data_restrictions (after
//! the final dot, [`Restrictions::at_end_of_data`]) and
//! smtpd_etrn_restrictions (ETRN, [`Restrictions::at_etrn`], where
//! `check_etrn_access type:table` looks the domain up). With smtpd_delay_reject = yes (the
//! default) the client, HELO and sender lists are evaluated at RCPT TO
//! instead, so that the log shows the sender and recipient of a rejected
//! message and clients that do not expect a reject at connect time are
//! not confused. Within a list, the first restriction that permits or
//! rejects decides for that list; `permit` ends only its own list, so a
//! client permitted by smtpd_client_restrictions still meets the relay
//! check. Every restriction may appear in every list; one that needs
//! information not yet known (a recipient in the client list, evaluated at
//! connect time) does nothing.
//!
//! After the relay and recipient lists, with smtpd_reject_unlisted_recipient
//! = yes (the default), a recipient in one of our domains that no table
//! knows is refused even without reject_unlisted_recipient in any list.
//!
//! Relay control: smtpd_relay_restrictions defaults to `permit_mynetworks,
//! permit_sasl_authenticated, defer_unauth_destination`. One of the two
//! lists must contain reject_unauth_destination, defer_unauth_destination,
//! reject, defer or defer_if_permit, otherwise [`Restrictions::from_config`]
//! fails: no configuration makes an open relay by omission.
//! reject_unauth_destination asks trivial-rewrite (`private/rewrite`,
//! relative to the current directory, which is the queue directory in a
//! daemon) to rewrite and resolve the recipient: only the address classes
//! local (mydestination, inet_interfaces, proxy_interfaces), virtual alias,
//! virtual mailbox and relay_domains are authorized destinations, and an
//! address that still carries routing operators after resolving
//! (`user%other@relay-domain`, flag ROUTED) is not, unless
//! allow_untrusted_routing = yes. trivial-rewrite undoes `user%remote@local`,
//! `remote!user@local`, `"user@remote"@local`, `@local:user@remote` and
//! `user@remote@local` before deciding, so all of these count as remote.
//!
//! # Restrictions
//!
//! Generic: `permit`, `reject` (reject_code, 554 5.7.1 `<name>: Class
//! rejected: Access denied`), `defer` (defer_code, 450 4.3.2 `Try again
//! later`), `defer_if_permit`, `defer_if_reject`, `warn_if_reject` (the
//! next restriction only logs `reject_warning` instead of rejecting),
//! `reject_unauth_pipelining` (accepted; smtpd itself enforces
//! smtpd_forbid_unauth_pipelining), `reject_plaintext_session`.
//!
//! Client: `permit_mynetworks`, `permit_sasl_authenticated`,
//! `check_client_access type:table`, `reject_rbl_client domain[=pattern]`,
//! `reject_unknown_client_hostname`.
//!
//! ETRN: `check_etrn_access type:table` (the ETRN domain, class `Etrn
//! command`).
//!
//! HELO: `check_helo_access type:table`, `reject_invalid_helo_hostname`
//! (invalid_hostname_reject_code, 501 5.5.2 `Invalid name`),
//! `reject_non_fqdn_helo_hostname` (non_fqdn_reject_code, 504 5.5.2 `need
//! fully-qualified hostname`).
//!
//! Sender: `check_sender_access type:table`, `reject_non_fqdn_sender` (504
//! 5.5.2 `need fully-qualified address`), `reject_unknown_sender_domain`.
//!
//! Recipient: `check_recipient_access type:table`,
//! `reject_unauth_destination` (relay_domains_reject_code, 554 5.7.1
//! `<rcpt>: Relay access denied`), `defer_unauth_destination` (relay_domains_reject_code
//! less 100: 454 4.7.1), `permit_auth_destination`, `reject_unlisted_recipient`
//! (local_recipient_maps for the local class, virtual_mailbox_maps for
//! the virtual class, the virtual alias class is always unknown,
//! relay_recipient_maps for relay_domains; an address found in
//! virtual_alias_maps, canonical_maps or recipient_canonical_maps is
//! always known; 550 5.1.1 `User unknown in local recipient table` with
//! unknown_local_recipient_reject_code, unknown_virtual_mailbox_reject_code,
//! unknown_virtual_alias_reject_code, unknown_relay_recipient_reject_code),
//! `reject_non_fqdn_recipient`, `reject_unknown_recipient_domain` (the
//! domain is not ours and has no MX, A or AAAA record:
//! unknown_address_reject_code, 450 4.1.2 `Domain not found`; a DNS
//! failure defers with 450).
//!
//! smtpd_restriction_classes names parameters whose values are
//! restriction lists; such a name may then appear in any list or as an
//! access table value (`example.com  my_class`), and its list is
//! evaluated in place.
//!
//! A bare `type:table` in a list is short for the list's check: in
//! smtpd_client_restrictions `check_client_access type:table`, in the
//! relay and recipient lists `check_recipient_access type:table`.
//!
//! # Access tables
//!
//! access(5) values: `OK` / `RELAY` / all digits (permit), `REJECT [dsn]
//! [text]` (access_map_reject_code), `DEFER [dsn] [text]`
//! (access_map_defer_code), `DEFER_IF_PERMIT`, `DEFER_IF_REJECT`, `4NN
//! [dsn] text` / `5NN [dsn] text`, `DUNNO` (stop looking in this table,
//! go on with the list), `HOLD [text]` (hold the message, go on),
//! `DISCARD [text]` (accept and throw the message away; the remaining
//! restrictions are skipped), `WARN text` / `INFO text` (log, go on), or a
//! list of restriction names evaluated in place (no tables inside).
//! FILTER, REDIRECT, BCC and PREPEND are logged as unsupported and
//! ignored. Reply text: `<name>: Class rejected: text` where Class is
//! `Client host`, `Helo command`, `Sender address`, `Recipient address`
//! or `Data command`. An OK for a ROUTED recipient counts as DUNNO. Key
//! search orders are in [`access`]; parent domains follow
//! parent_domain_matches_subdomains (`smtpd_access_maps`). A table that
//! cannot be opened or read gives `451 4.3.5 Server configuration
//! error` for the requests that reach it.
//!
//! # DNS
//!
//! reject_rbl_client and reject_unknown_recipient_domain send their own
//! queries over UDP (TCP when truncated) to the nameservers of
//! `/etc/resolv.conf`, read in [`Restrictions::from_config`]; the
//! environment variable `MAIL_RESOLV_CONF` names another file (tests use
//! it to reach a server on 127.0.0.1; `nameserver 127.0.0.1#5353`
//! gives a port). See [`dns`] and [`rbl`].
//!
//! # Security
//!
//! Client input reaches this module as host names, HELO names and
//! addresses: they are only compared, looked up in tables (whose keys
//! are bounded by the tables crate) and sent to trivial-rewrite and DNS.
//! Nothing here panics on them. The calls block (table lookups, a
//! trivial-rewrite round trip, DNS), so smtpd makes them on worker threads.
//! Build the restrictions before chroot: tables, resolv.conf and the
//! passwd snapshot for `unix:passwd.byname` in local_recipient_maps are
//! read then.
//!
//! # Configuration parameters
//!
//! smtpd_client_restrictions (empty), smtpd_helo_restrictions (empty),
//! smtpd_sender_restrictions (empty), smtpd_relay_restrictions
//! (permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination),
//! smtpd_recipient_restrictions (empty), smtpd_data_restrictions (empty),
//! smtpd_delay_reject (yes), smtpd_reject_unlisted_recipient (yes),
//! smtpd_restriction_classes (empty),
//! mynetworks (computed from mynetworks_style), mynetworks_style (host),
//! parent_domain_matches_subdomains, recipient_delimiter,
//! smtpd_null_access_lookup_key (<>), allow_untrusted_routing (no),
//! soft_bounce (no), local_recipient_maps, virtual_mailbox_maps,
//! virtual_alias_maps, relay_recipient_maps, canonical_maps,
//! recipient_canonical_maps, show_user_unknown_table_name (yes),
//! reject_code (554), defer_code (450), relay_domains_reject_code (554),
//! access_map_reject_code (554), access_map_defer_code (450),
//! maps_rbl_reject_code (554), default_rbl_reply, invalid_hostname_reject_code
//! (501), non_fqdn_reject_code (504), unknown_address_reject_code (450),
//! unknown_client_reject_code (450), plaintext_reject_code (450),
//! unknown_local_recipient_reject_code (550),
//! unknown_virtual_mailbox_reject_code (550),
//! unknown_virtual_alias_reject_code (550),
//! unknown_relay_recipient_reject_code (550).
//!
//! # See also
//!
//! postconf(5), access(5), trivial-rewrite(8), smtpd(8).

pub mod access;
pub mod dns;
pub mod mynetworks;
pub mod rbl;

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::PathBuf;

use proto::rewrite::{AddressClass, flags};

use crate::reply::Reply;
use access::{Action, Key};

/// What the restrictions look at. Filled by the shell.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    /// The client's verified reverse name, `"unknown"` when it has none.
    pub client_name: &'a str,
    /// The client's address.
    pub client_addr: IpAddr,
    /// The HELO/EHLO argument, once given.
    pub helo: Option<&'a str>,
    /// The MAIL FROM address (internal form), `Some("")` for `<>`.
    pub sender: Option<&'a str>,
    /// The RCPT TO address being checked (internal form); at DATA time the
    /// only recipient when there is exactly one, as Postfix.
    pub recipient: Option<&'a str>,
    /// The SASL login name, when the client authenticated.
    pub sasl_username: Option<&'a str>,
    /// The session runs over TLS.
    pub tls: bool,
}

/// The outcome of one restriction stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Go on (permit, or every list ran out).
    Ok,
    /// Refuse this command with this reply (5xx, or 4xx for defer / defer_if_*).
    Reject(Reply),
    /// Accept the command, but put the message on hold (access HOLD), with
    /// the reason for the log (`<addr>: Sender address triggers HOLD action`).
    Hold(String),
    /// Accept the command (and the rest of the transaction), but throw the
    /// message away (access DISCARD), with the reason for the log. As in
    /// Postfix, the shell then skips the checks of the later commands of
    /// this transaction: they are all accepted.
    Discard(String),
}

/// The names of the lists, for errors and the log.
const LISTS: [&str; 8] = [
    "smtpd_client_restrictions",
    "smtpd_helo_restrictions",
    "smtpd_sender_restrictions",
    "smtpd_relay_restrictions",
    "smtpd_recipient_restrictions",
    "smtpd_data_restrictions",
    "smtpd_etrn_restrictions",
    "smtpd_end_of_data_restrictions",
];

/// Index of smtpd_etrn_restrictions in [`LISTS`].
const ETRN_LIST: usize = 6;
/// Index of smtpd_end_of_data_restrictions in [`LISTS`].
const EOD_LIST: usize = 7;

/// Which access check a table belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    Client,
    Helo,
    Sender,
    Recipient,
    Etrn,
}

/// One parsed restriction.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Rule {
    Permit,
    Reject,
    Defer,
    DeferIfPermit,
    DeferIfReject,
    WarnIfReject,
    RejectUnauthPipelining,
    RejectPlaintextSession,
    PermitMynetworks,
    PermitSaslAuthenticated,
    RejectUnknownClientHostname,
    RejectRblClient(String),
    RejectInvalidHeloHostname,
    RejectNonFqdnHeloHostname,
    RejectNonFqdnSender,
    RejectUnknownSenderDomain,
    RejectNonFqdnRecipient,
    RejectUnknownRecipientDomain,
    RejectUnauthDestination,
    DeferUnauthDestination,
    PermitAuthDestination,
    RejectUnlistedRecipient,
    Access(Check, usize),
    /// A name from smtpd_restriction_classes.
    Class(usize),
}

/// Reply codes from main.cf.
#[derive(Debug, Clone)]
struct Codes {
    reject: u16,
    defer: u16,
    relay: u16,
    map_reject: u16,
    map_defer: u16,
    rbl: u16,
    bad_name: u16,
    non_fqdn: u16,
    unknown_addr: u16,
    unknown_client: u16,
    plaintext: u16,
    local_rcpt: u16,
    virt_mailbox: u16,
    virt_alias: u16,
    relay_rcpt: u16,
}

/// Tables for reject_unlisted_recipient.
#[derive(Debug)]
struct RcptMaps {
    /// Empty local_recipient_maps: no check for the local class.
    local: Vec<Result<tables::Table, String>>,
    /// Users of `unix:passwd.byname`, read from /etc/passwd before chroot.
    local_users: Option<HashSet<String>>,
    /// local_recipient_maps names unix:passwd.byname.
    local_passwd: bool,
    virtual_mailbox: Result<tables::Maps, String>,
    virtual_alias: Result<tables::Maps, String>,
    relay: Result<tables::Maps, String>,
    canonical: Result<tables::Maps, String>,
    show_table: bool,
}

/// Parsed restriction lists and opened tables. `Send + Sync`: one value
/// serves every worker thread.
#[derive(Debug)]
pub struct Restrictions {
    lists: [Vec<Rule>; 8],
    /// smtpd_restriction_classes: names and their lists.
    classes: Vec<(String, Vec<Rule>)>,
    tables: Vec<(String, Result<tables::Table, String>)>,
    mynetworks: mynetworks::Networks,
    delay_reject: bool,
    reject_unlisted_recipient: bool,
    allow_untrusted_routing: bool,
    soft_bounce: bool,
    parent_style: bool,
    delimiters: String,
    null_key: String,
    default_rbl_reply: String,
    codes: Codes,
    rcpt_maps: RcptMaps,
    resolver: dns::Resolver,
    queue_dir: PathBuf,
    rewrite: RewriteClient,
}

/// A list's own names for replies and the log.
#[derive(Debug, Clone, Copy)]
struct Frame<'a> {
    name: &'a str,
    class: &'static str,
    def_acl: Option<Check>,
}

/// The restrictions that make a recipient list safe against relaying.
const RELAY_GUARDS: [&str; 5] = [
    "reject_unauth_destination",
    "defer_unauth_destination",
    "reject",
    "defer",
    "defer_if_permit",
];

impl Restrictions {
    /// Parses smtpd_client/helo/sender/relay/recipient/data_restrictions,
    /// mynetworks(_style), smtpd_delay_reject and the access tables named
    /// in the lists, and reads resolv.conf.
    ///
    /// # Errors
    /// A bad list (unknown restriction, a check without its table, no relay
    /// guard in either smtpd_relay_restrictions or
    /// smtpd_recipient_restrictions), naming the parameter; a bad
    /// mynetworks.
    pub fn from_config(cfg: &config::Config) -> Result<Restrictions, String> {
        let mut tables: Vec<(String, Result<tables::Table, String>)> = Vec::new();
        let class_names: Vec<String> = tables::split_list(&cfg.str("smtpd_restriction_classes"))
            .into_iter()
            .map(str::to_string)
            .collect();
        let mut classes = Vec::new();
        for name in &class_names {
            let Some(text) = cfg.get(name) else {
                return Err(format!(
                    "parameter smtpd_restriction_classes: restriction class \"{name}\" is not defined"
                ));
            };
            let rules = parse_list(&text, None, Some(&mut tables), &class_names)
                .map_err(|e| format!("parameter {name}: {e}"))?;
            classes.push((name.clone(), rules));
        }
        let mut lists: [Vec<Rule>; 8] = Default::default();
        for (i, name) in LISTS.iter().enumerate() {
            let def = match i {
                0 => Some(Check::Client),
                1 => Some(Check::Helo),
                2 => Some(Check::Sender),
                3 | 4 => Some(Check::Recipient),
                ETRN_LIST => Some(Check::Etrn),
                _ => None,
            };
            let text = cfg.str(name);
            let rules = parse_list(&text, def, Some(&mut tables), &class_names)
                .map_err(|e| format!("parameter {name}: {e}"))?;
            if let Some(slot) = lists.get_mut(i) {
                *slot = rules;
            }
        }
        let guarded = [3usize, 4].iter().any(|&i| {
            let text = cfg.str(LISTS[i]);
            tables::split_list(&text)
                .iter()
                .any(|w| RELAY_GUARDS.contains(&w.to_ascii_lowercase().as_str()))
        });
        if !guarded {
            return Err(format!(
                "parameter smtpd_relay_restrictions: specify at least one working instance of: {}",
                RELAY_GUARDS.join(", ")
            ));
        }
        for (spec, t) in &tables {
            if let Err(e) = t {
                maillog::warning!("{spec}: cannot open access table: {e}");
            }
        }
        let mynetworks = cfg.str("mynetworks");
        let mynetworks = mynetworks::Networks::parse(&mynetworks, &mut |w| {
            maillog::warning!("{w}");
        })
        .map_err(|e| format!("parameter mynetworks: {e}"))?;
        let code = |n: &str, d: u16| u16::try_from(cfg.int(n)).unwrap_or(d);
        let codes = Codes {
            reject: code("reject_code", 554),
            defer: code("defer_code", 450),
            relay: code("relay_domains_reject_code", 554),
            map_reject: code("access_map_reject_code", 554),
            map_defer: code("access_map_defer_code", 450),
            rbl: code("maps_rbl_reject_code", 554),
            bad_name: code("invalid_hostname_reject_code", 501),
            non_fqdn: code("non_fqdn_reject_code", 504),
            unknown_addr: code("unknown_address_reject_code", 450),
            unknown_client: code("unknown_client_reject_code", 450),
            plaintext: code("plaintext_reject_code", 450),
            local_rcpt: code("unknown_local_recipient_reject_code", 550),
            virt_mailbox: code("unknown_virtual_mailbox_reject_code", 550),
            virt_alias: code("unknown_virtual_alias_reject_code", 550),
            relay_rcpt: code("unknown_relay_recipient_reject_code", 550),
        };
        let parent_style = tables::split_list(&cfg.str("parent_domain_matches_subdomains"))
            .contains(&"smtpd_access_maps");
        Ok(Restrictions {
            lists,
            classes,
            tables,
            mynetworks,
            delay_reject: cfg.bool("smtpd_delay_reject"),
            reject_unlisted_recipient: cfg.bool("smtpd_reject_unlisted_recipient"),
            allow_untrusted_routing: cfg.bool("allow_untrusted_routing"),
            soft_bounce: cfg.bool("soft_bounce"),
            parent_style,
            delimiters: cfg.str("recipient_delimiter"),
            null_key: cfg.str("smtpd_null_access_lookup_key"),
            default_rbl_reply: cfg.raw("default_rbl_reply").unwrap_or_default(),
            codes,
            rcpt_maps: RcptMaps::open(cfg),
            resolver: dns::Resolver::from_system(),
            queue_dir: PathBuf::from("."),
            rewrite: RewriteClient::default(),
        })
    }

    /// Where `private/rewrite` is found: the current directory (the queue
    /// directory, or `/` inside its chroot) unless set here (tests).
    pub fn with_queue_dir(mut self, dir: PathBuf) -> Restrictions {
        self.queue_dir = dir;
        self
    }

    /// Another resolver (tests).
    pub fn with_resolver(mut self, resolver: dns::Resolver) -> Restrictions {
        self.resolver = resolver;
        self
    }

    /// smtpd_delay_reject.
    pub fn delay_reject(&self) -> bool {
        self.delay_reject
    }

    /// Connect time: client restrictions (Ok when delay_reject).
    pub fn at_connect(&self, f: &Facts) -> Verdict {
        if self.delay_reject {
            return Verdict::Ok;
        }
        let mut e = Eval::new(self, f, "CONNECT");
        let s = e.client();
        outside_transaction(e.verdict(s), "client")
    }

    /// HELO/EHLO time (Ok when delay_reject).
    pub fn at_helo(&self, f: &Facts) -> Verdict {
        if self.delay_reject {
            return Verdict::Ok;
        }
        let mut e = Eval::new(self, f, "HELO");
        let s = e.helo();
        outside_transaction(e.verdict(s), "helo")
    }

    /// MAIL time (Ok when delay_reject).
    pub fn at_mail(&self, f: &Facts) -> Verdict {
        if self.delay_reject {
            return Verdict::Ok;
        }
        let mut e = Eval::new(self, f, "MAIL");
        let s = e.sender();
        e.verdict(s)
    }

    /// RCPT time: with delay_reject client, helo, sender first; then relay
    /// and recipient restrictions, then smtpd_reject_unlisted_recipient.
    pub fn at_rcpt(&self, f: &Facts) -> Verdict {
        let mut e = Eval::new(self, f, "RCPT");
        let s = e.rcpt();
        e.verdict(s)
    }

    /// DATA time: smtpd_data_restrictions.
    pub fn at_data(&self, f: &Facts) -> Verdict {
        let mut e = Eval::new(self, f, "DATA");
        let s = e.list(
            5,
            Frame {
                name: "DATA",
                class: "Data command",
                def_acl: None,
            },
        );
        let s = e.finish_defer_if_permit(s);
        e.verdict(s)
    }

    /// END-OF-MESSAGE time, after the final dot and before the reply:
    /// smtpd_end_of_data_restrictions. `size` is the message size.
    pub fn at_end_of_data(&self, f: &Facts, size: u64) -> Verdict {
        let mut e = Eval::new(self, f, "END-OF-MESSAGE");
        e.size = Some(size);
        let s = e.list(
            EOD_LIST,
            Frame {
                name: "END-OF-MESSAGE",
                class: "End-of-data",
                def_acl: None,
            },
        );
        let s = e.finish_defer_if_permit(s);
        e.verdict(s)
    }

    /// True when smtpd_end_of_data_restrictions is not empty.
    pub fn has_end_of_data(&self) -> bool {
        self.lists.get(EOD_LIST).is_some_and(|l| !l.is_empty())
    }

    /// ETRN time: with smtpd_delay_reject the client and HELO
    /// restrictions first (Postfix's smtpd_check_etrn), then
    /// smtpd_etrn_restrictions with `domain` as the ETRN name. HOLD and
    /// DISCARD mean nothing here.
    pub fn at_etrn(&self, f: &Facts, domain: &str) -> Verdict {
        let mut e = Eval::new(self, f, "ETRN");
        e.etrn = Some(domain.to_string());
        if self.delay_reject {
            for stage in [Eval::client, Eval::helo] {
                let s = stage(&mut e);
                if matches!(s, Status::Reject(_)) {
                    return e.verdict(s);
                }
            }
        }
        let s = e.list(
            ETRN_LIST,
            Frame {
                name: domain,
                class: "Etrn command",
                def_acl: Some(Check::Etrn),
            },
        );
        let s = e.finish_defer_if_permit(s);
        match e.verdict(s) {
            Verdict::Reject(r) => Verdict::Reject(r),
            _ => Verdict::Ok,
        }
    }

    /// The client's address is in mynetworks.
    pub fn in_mynetworks(&self, addr: IpAddr) -> bool {
        self.mynetworks.contains(addr)
    }
}

impl RcptMaps {
    fn open(cfg: &config::Config) -> RcptMaps {
        let fl = tables::Flags::default();
        let maps = |name: &str| -> Result<tables::Maps, String> {
            let list: Vec<String> = tables::split_list(&cfg.str(name))
                .into_iter()
                .map(|s| s.strip_prefix("proxy:").unwrap_or(s).to_string())
                .collect();
            tables::Maps::open(&list.join(" "), fl).map_err(|e| {
                maillog::warning!("{name}: {e}");
                format!("{name}: {e}")
            })
        };
        let mut local = Vec::new();
        let mut local_passwd = false;
        for spec in tables::split_list(&cfg.str("local_recipient_maps")) {
            let spec = spec.strip_prefix("proxy:").unwrap_or(spec);
            if spec == "unix:passwd.byname" {
                local_passwd = true;
            }
            local.push(tables::open(spec, fl).map_err(|e| {
                maillog::warning!("local_recipient_maps: {spec}: {e}");
                format!("{spec}: {e}")
            }));
        }
        let local_users = local_passwd
            .then(|| std::fs::read_to_string("/etc/passwd").ok())
            .flatten()
            .map(|t| {
                t.lines()
                    .filter_map(|l| l.split(':').next())
                    .filter(|n| !n.is_empty() && !n.starts_with('#'))
                    .map(str::to_lowercase)
                    .collect()
            });
        let canonical = {
            let list = format!(
                "{} {}",
                cfg.str("canonical_maps"),
                cfg.str("recipient_canonical_maps")
            );
            tables::Maps::open(&list, fl).map_err(|e| e.to_string())
        };
        RcptMaps {
            local,
            local_users,
            local_passwd,
            virtual_mailbox: maps("virtual_mailbox_maps"),
            virtual_alias: maps("virtual_alias_maps"),
            relay: maps("relay_recipient_maps"),
            canonical,
            show_table: cfg.bool("show_user_unknown_table_name"),
        }
    }
}

/// Idle connections to trivial-rewrite kept for reuse.
const REWRITE_POOL: usize = 8;

/// Connections to trivial-rewrite, reused across requests and threads.
/// trivial-rewrite ends a connection when it reaches max_use or
/// max_idle, so a failed request is tried once more on a new connection
/// (as Postfix's clnt_stream does).
#[derive(Debug, Default)]
struct RewriteClient {
    idle: std::sync::Mutex<Vec<std::os::unix::net::UnixStream>>,
}

impl RewriteClient {
    fn resolve(&self, dir: &std::path::Path, sender: &str, addr: &str) -> Result<Resolved, String> {
        let pooled = self.idle.lock().ok().and_then(|mut v| v.pop());
        let mut s = match pooled {
            Some(s) => s,
            None => proto::connect(dir, proto::rewrite::SERVICE).map_err(|e| e.to_string())?,
        };
        // One more try on a new connection: a pooled one may have been
        // closed, and a retiring trivial-rewrite may drop even a new one.
        let mut result = Self::exchange(&mut s, sender, addr);
        // A retiring trivial-rewrite hangs up between two requests, so
        // even a fresh connection may fail once more (shell: several tries).
        for _ in 0..4 {
            if result.is_ok() {
                break;
            }
            s = proto::connect(dir, proto::rewrite::SERVICE).map_err(|e| e.to_string())?;
            result = Self::exchange(&mut s, sender, addr);
        }
        let r = result?;
        if let Ok(mut v) = self.idle.lock()
            && v.len() < REWRITE_POOL
        {
            v.push(s);
        }
        Ok(r)
    }

    fn exchange(
        s: &mut std::os::unix::net::UnixStream,
        sender: &str,
        addr: &str,
    ) -> Result<Resolved, String> {
        use proto::rewrite::{Context, Reply, Request};
        let timeout = Some(std::time::Duration::from_secs(30));
        s.set_read_timeout(timeout).map_err(|e| e.to_string())?;
        proto::send(
            s,
            &Request::Rewrite {
                context: Context::Local,
                address: addr.to_string(),
            },
        )
        .map_err(|e| e.to_string())?;
        let rewritten = match proto::recv(s).map_err(|e| e.to_string())? {
            Reply::Rewritten { address } => address,
            other => return Err(format!("unexpected reply {other:?}")),
        };
        proto::send(
            s,
            &Request::Resolve {
                sender: sender.to_string(),
                address: rewritten,
            },
        )
        .map_err(|e| e.to_string())?;
        match proto::recv(s).map_err(|e| e.to_string())? {
            Reply::Resolved {
                recipient,
                class,
                flags,
                ..
            } => Ok(Resolved {
                address: recipient,
                class,
                flags,
            }),
            other => Err(format!("unexpected reply {other:?}")),
        }
    }
}

/// Parses one restriction list. `tables` receives the access tables it
/// names (from main.cf); `None` (a list inside an access table value)
/// refuses tables, as Postfix.
fn parse_list(
    text: &str,
    def_acl: Option<Check>,
    mut tables: Option<&mut Vec<(String, Result<tables::Table, String>)>>,
    classes: &[String],
) -> Result<Vec<Rule>, String> {
    let words = tables::split_list(text);
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&word) = words.get(i) {
        i += 1;
        let lower = word.to_ascii_lowercase();
        let mut table_for = |check: Check, spec: &str| -> Result<Rule, String> {
            let Some(tables) = tables.as_deref_mut() else {
                return Err(format!("lookup table {spec} inside an access table value"));
            };
            if !spec.contains(':') {
                return Err(format!("bad argument \"{spec}\": need maptype:mapname"));
            }
            let idx = match tables.iter().position(|(s, _)| s == spec) {
                Some(idx) => idx,
                None => {
                    let t = tables::open(spec, tables::Flags::default()).map_err(|e| e.to_string());
                    tables.push((spec.to_string(), t));
                    tables.len() - 1
                }
            };
            Ok(Rule::Access(check, idx))
        };
        let mut arg = |name: &str| -> Result<&str, String> {
            let a = words
                .get(i)
                .copied()
                .ok_or_else(|| format!("restriction {name} requires an argument"))?;
            i += 1;
            Ok(a)
        };
        let rule = match lower.as_str() {
            "permit" => Rule::Permit,
            "reject" => Rule::Reject,
            "defer" => Rule::Defer,
            "defer_if_permit" => Rule::DeferIfPermit,
            "defer_if_reject" => Rule::DeferIfReject,
            "warn_if_reject" => Rule::WarnIfReject,
            "reject_unauth_pipelining" => Rule::RejectUnauthPipelining,
            "reject_plaintext_session" => Rule::RejectPlaintextSession,
            "permit_mynetworks" => Rule::PermitMynetworks,
            "permit_sasl_authenticated" => Rule::PermitSaslAuthenticated,
            "reject_unknown_client_hostname" | "reject_unknown_client" => {
                Rule::RejectUnknownClientHostname
            }
            "reject_rbl_client" | "reject_rbl" => {
                Rule::RejectRblClient(arg(&lower)?.to_ascii_lowercase())
            }
            "reject_invalid_helo_hostname" | "reject_invalid_hostname" => {
                Rule::RejectInvalidHeloHostname
            }
            "reject_non_fqdn_helo_hostname" | "reject_non_fqdn_hostname" => {
                Rule::RejectNonFqdnHeloHostname
            }
            "reject_non_fqdn_sender" => Rule::RejectNonFqdnSender,
            "reject_unknown_sender_domain" => Rule::RejectUnknownSenderDomain,
            "reject_non_fqdn_recipient" => Rule::RejectNonFqdnRecipient,
            "reject_unknown_recipient_domain" => Rule::RejectUnknownRecipientDomain,
            "reject_unauth_destination" => Rule::RejectUnauthDestination,
            "defer_unauth_destination" => Rule::DeferUnauthDestination,
            "permit_auth_destination" => Rule::PermitAuthDestination,
            "reject_unlisted_recipient" | "check_recipient_maps" => Rule::RejectUnlistedRecipient,
            "check_client_access" => {
                let spec = arg(&lower)?;
                table_for(Check::Client, spec)?
            }
            "check_helo_access" => {
                let spec = arg(&lower)?;
                table_for(Check::Helo, spec)?
            }
            "check_sender_access" => {
                let spec = arg(&lower)?;
                table_for(Check::Sender, spec)?
            }
            "check_recipient_access" => {
                let spec = arg(&lower)?;
                table_for(Check::Recipient, spec)?
            }
            "check_etrn_access" => {
                let spec = arg(&lower)?;
                table_for(Check::Etrn, spec)?
            }
            _ if classes.iter().any(|c| *c == word) => {
                Rule::Class(classes.iter().position(|c| *c == word).unwrap_or_default())
            }
            _ if word.contains(':') => match def_acl {
                Some(c) => table_for(c, word)?,
                None => {
                    return Err(format!(
                        "specify one of check_client_access, check_helo_access, \
                         check_sender_access or check_recipient_access before \"{word}\""
                    ));
                }
            },
            _ => return Err(format!("unknown smtpd restriction: \"{word}\"")),
        };
        out.push(rule);
    }
    Ok(out)
}

/// Result of one restriction or list.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Status {
    Dunno,
    Permit,
    Reject(Reply),
}

/// A recipient or sender after trivial-rewrite.
#[derive(Debug, Clone)]
struct Resolved {
    address: String,
    class: AddressClass,
    flags: u32,
}

/// One evaluation (one command), with Postfix's per-check state.
struct Eval<'r, 'f> {
    r: &'r Restrictions,
    f: &'f Facts<'f>,
    stage: &'static str,
    recursion: usize,
    warn_if_reject: usize,
    defer_if_permit: Option<Reply>,
    defer_if_reject: Option<Reply>,
    hold: Option<String>,
    discard: Option<String>,
    /// trivial-rewrite's answers during this evaluation.
    resolved: Vec<(String, Resolved)>,
    /// The ETRN domain, during an ETRN check.
    etrn: Option<String>,
    /// The message size, at END-OF-MESSAGE.
    size: Option<u64>,
}

/// The most nesting of restriction lists inside access table values.
const MAX_RECURSION: usize = 100;

impl<'r, 'f> Eval<'r, 'f> {
    fn new(r: &'r Restrictions, f: &'f Facts<'f>, stage: &'static str) -> Eval<'r, 'f> {
        Eval {
            r,
            f,
            stage,
            recursion: 0,
            warn_if_reject: 0,
            defer_if_permit: None,
            defer_if_reject: None,
            hold: None,
            discard: None,
            resolved: Vec::new(),
            etrn: None,
            size: None,
        }
    }

    fn namaddr(&self) -> String {
        format!("{}[{}]", self.f.client_name, self.f.client_addr)
    }

    fn client(&mut self) -> Status {
        let name = self.namaddr();
        self.list(
            0,
            Frame {
                name: &name,
                class: "Client host",
                def_acl: Some(Check::Client),
            },
        )
    }

    fn helo(&mut self) -> Status {
        let name = self.f.helo.unwrap_or_default().to_string();
        self.list(
            1,
            Frame {
                name: &name,
                class: "Helo command",
                def_acl: Some(Check::Helo),
            },
        )
    }

    fn sender(&mut self) -> Status {
        let name = self.f.sender.unwrap_or_default().to_string();
        self.list(
            2,
            Frame {
                name: &name,
                class: "Sender address",
                def_acl: Some(Check::Sender),
            },
        )
    }

    fn rcpt(&mut self) -> Status {
        if self.r.delay_reject {
            for stage in [Self::client, Self::helo, Self::sender] {
                let s = stage(self);
                if matches!(s, Status::Reject(_)) {
                    return s;
                }
            }
        }
        let name = self.f.recipient.unwrap_or_default().to_string();
        let frame = Frame {
            name: &name,
            class: "Recipient address",
            def_acl: Some(Check::Recipient),
        };
        for idx in [3, 4] {
            let s = self.list(idx, frame);
            if matches!(s, Status::Reject(_)) {
                return s;
            }
        }
        let s = self.finish_defer_if_permit(Status::Dunno);
        if matches!(s, Status::Reject(_)) {
            return s;
        }
        if self.r.reject_unlisted_recipient && self.discard.is_none() {
            let s = self.unlisted_recipient(frame);
            if matches!(s, Status::Reject(_)) {
                return s;
            }
        }
        Status::Dunno
    }

    /// Turns a permit into the deferral that defer_if_permit recorded.
    fn finish_defer_if_permit(&mut self, s: Status) -> Status {
        match (&s, self.defer_if_permit.take()) {
            (Status::Reject(_), _) | (_, None) => s,
            (_, Some(reply)) => Status::Reject(reply),
        }
    }

    fn verdict(&self, s: Status) -> Verdict {
        match s {
            Status::Reject(r) => Verdict::Reject(r),
            _ => match (&self.discard, &self.hold) {
                (Some(d), _) => Verdict::Discard(d.clone()),
                (None, Some(h)) => Verdict::Hold(h.clone()),
                (None, None) => Verdict::Ok,
            },
        }
    }

    /// Evaluates main.cf list `idx` (Postfix's generic_checks).
    fn list(&mut self, idx: usize, frame: Frame<'_>) -> Status {
        let r = self.r;
        let Some(rules) = r.lists.get(idx) else {
            return Status::Dunno;
        };
        self.rules(rules, frame)
    }

    fn rules(&mut self, rules: &[Rule], frame: Frame<'_>) -> Status {
        self.recursion += 1;
        let mut status = Status::Dunno;
        for rule in rules {
            if self.discard.is_some() {
                break;
            }
            if *rule == Rule::WarnIfReject {
                if self.warn_if_reject == 0 {
                    self.warn_if_reject = self.recursion;
                }
                continue;
            }
            status = self.apply(rule, frame);
            if self.warn_if_reject >= self.recursion {
                self.warn_if_reject = 0;
            }
            if status != Status::Dunno {
                break;
            }
        }
        self.recursion -= 1;
        status
    }

    /// Postfix's smtpd_check_reject: soft_bounce, defer_if_reject,
    /// warn_if_reject, and the DSN class made to agree with the code.
    fn reject(&mut self, code: u16, dsn: &str, text: String) -> Status {
        let mut code = code;
        if self.r.soft_bounce && code >= 500 {
            code -= 100;
        }
        let mut reply = make_reply(code, dsn, text);
        if code >= 500
            && let Some(d) = &self.defer_if_reject
        {
            reply = d.clone();
        }
        if self.warn_if_reject > 0 {
            let size = self.size.map(|n| format!(" size={n}")).unwrap_or_default();
            maillog::info!(
                "NOQUEUE: reject_warning: {} from {}: {}; from=<{}> to=<{}> helo=<{}>{size}",
                self.stage,
                self.namaddr(),
                reply.to_string().trim_end(),
                maillog::printable(self.f.sender.unwrap_or_default(), 100),
                maillog::printable(self.f.recipient.unwrap_or_default(), 100),
                maillog::printable(self.f.helo.unwrap_or_default(), 100)
            );
            return Status::Dunno;
        }
        Status::Reject(reply)
    }

    fn server_error(&mut self) -> Status {
        Status::Reject(make_reply(
            451,
            "4.3.5",
            "Server configuration error".into(),
        ))
    }

    fn dict_retry(&mut self, name: &str) -> Status {
        Status::Reject(make_reply(
            451,
            "4.3.0",
            format!("<{name}>: Temporary lookup failure"),
        ))
    }

    fn apply(&mut self, rule: &Rule, fr: Frame<'_>) -> Status {
        let f = self.f;
        let c = self.r.codes.clone();
        match rule {
            Rule::Permit => Status::Permit,
            Rule::Reject => self.reject(
                c.reject,
                "5.7.1",
                format!("<{}>: {} rejected: Access denied", fr.name, fr.class),
            ),
            Rule::Defer => self.reject(
                c.defer,
                "4.3.2",
                format!("<{}>: {} rejected: Try again later", fr.name, fr.class),
            ),
            Rule::DeferIfPermit => {
                if self.defer_if_permit.is_none() {
                    self.defer_if_permit = Some(make_reply(
                        450,
                        "4.7.0",
                        format!(
                            "<{}>: {} rejected: defer_if_permit requested",
                            fr.name, fr.class
                        ),
                    ));
                }
                Status::Dunno
            }
            Rule::DeferIfReject => {
                if self.defer_if_reject.is_none() {
                    self.defer_if_reject = Some(make_reply(
                        450,
                        "4.7.0",
                        format!(
                            "<{}>: {} rejected: defer_if_reject requested",
                            fr.name, fr.class
                        ),
                    ));
                }
                Status::Dunno
            }
            Rule::WarnIfReject | Rule::RejectUnauthPipelining => Status::Dunno,
            Rule::RejectPlaintextSession => {
                if f.tls {
                    Status::Dunno
                } else {
                    self.reject(
                        c.plaintext,
                        "4.7.1",
                        "Session encryption is required".into(),
                    )
                }
            }
            Rule::PermitMynetworks => {
                if self.r.in_mynetworks(f.client_addr) {
                    Status::Permit
                } else {
                    Status::Dunno
                }
            }
            Rule::PermitSaslAuthenticated => {
                if f.sasl_username.is_some_and(|u| !u.is_empty()) {
                    Status::Permit
                } else {
                    Status::Dunno
                }
            }
            Rule::RejectUnknownClientHostname => {
                if f.client_name.eq_ignore_ascii_case("unknown") {
                    self.reject(
                        c.unknown_client,
                        "4.7.25",
                        format!(
                            "Client host rejected: cannot find your hostname, [{}]",
                            f.client_addr
                        ),
                    )
                } else {
                    Status::Dunno
                }
            }
            Rule::RejectRblClient(domain) => self.rbl_client(domain),
            Rule::RejectInvalidHeloHostname => match f.helo {
                None => Status::Dunno,
                Some(h) if h.starts_with('[') => self.invalid_hostaddr(h),
                Some(h) => {
                    let t = truncate_dot(h);
                    if valid_hostname(t) || valid_hostaddr(t) {
                        Status::Dunno
                    } else {
                        self.reject(
                            c.bad_name,
                            "5.5.2",
                            format!("<{h}>: Helo command rejected: Invalid name"),
                        )
                    }
                }
            },
            Rule::RejectNonFqdnHeloHostname => match f.helo {
                None => Status::Dunno,
                Some(h) if h.starts_with('[') => self.invalid_hostaddr(h),
                Some(h) => {
                    let t = truncate_dot(h);
                    if valid_hostname(t) && t.contains('.') {
                        Status::Dunno
                    } else {
                        self.reject(
                            c.non_fqdn,
                            "5.5.2",
                            format!("<{h}>: Helo command rejected: need fully-qualified hostname"),
                        )
                    }
                }
            },
            Rule::RejectNonFqdnSender => match f.sender {
                Some(s) if !s.is_empty() => self.non_fqdn_address(s, "Sender address"),
                _ => Status::Dunno,
            },
            Rule::RejectNonFqdnRecipient => match f.recipient {
                Some(r) if !r.is_empty() => self.non_fqdn_address(r, "Recipient address"),
                _ => Status::Dunno,
            },
            Rule::RejectUnknownSenderDomain => match f.sender {
                Some(s) if !s.is_empty() => self.unknown_address(s, "Sender address", "4.1.8"),
                _ => Status::Dunno,
            },
            Rule::RejectUnknownRecipientDomain => match f.recipient {
                Some(r) => self.unknown_address(r, "Recipient address", "4.1.2"),
                None => Status::Dunno,
            },
            Rule::RejectUnauthDestination | Rule::DeferUnauthDestination => {
                let Some(rcpt) = f.recipient else {
                    return Status::Dunno;
                };
                match self.permit_auth_destination(rcpt) {
                    Status::Permit => Status::Dunno,
                    Status::Reject(r) => Status::Reject(r),
                    Status::Dunno => {
                        let (code, dsn) = if *rule == Rule::RejectUnauthDestination {
                            (c.relay, "5.7.1")
                        } else {
                            // Postfix: relay_domains_reject_code - 100 (454).
                            (c.relay.saturating_sub(100), "4.7.1")
                        };
                        self.reject(code, dsn, format!("<{rcpt}>: Relay access denied"))
                    }
                }
            }
            Rule::PermitAuthDestination => match f.recipient {
                Some(rcpt) => self.permit_auth_destination(rcpt),
                None => Status::Dunno,
            },
            Rule::RejectUnlistedRecipient => {
                if f.recipient.is_some() {
                    self.unlisted_recipient(fr)
                } else {
                    Status::Dunno
                }
            }
            Rule::Access(check, idx) => self.access(*check, *idx, fr.def_acl),
            Rule::Class(idx) => {
                let r = self.r;
                let Some((_, rules)) = r.classes.get(*idx) else {
                    return self.server_error();
                };
                if self.recursion > MAX_RECURSION {
                    maillog::warning!("restriction classes nest too deeply");
                    return self.server_error();
                }
                self.rules(rules, fr)
            }
        }
    }

    fn invalid_hostaddr(&mut self, h: &str) -> Status {
        let inner = h
            .strip_prefix('[')
            .and_then(|x| x.strip_suffix(']'))
            .unwrap_or(h);
        if valid_hostaddr(inner) {
            Status::Dunno
        } else {
            let code = self.r.codes.bad_name;
            self.reject(
                code,
                "5.5.2",
                format!("<{h}>: Helo command rejected: invalid ip address"),
            )
        }
    }

    fn non_fqdn_address(&mut self, addr: &str, class: &str) -> Status {
        let domain = addr
            .rfind('@')
            .and_then(|i| addr.get(i + 1..))
            .unwrap_or("");
        if domain.starts_with('[') && domain.ends_with(']') {
            return Status::Dunno;
        }
        let d = truncate_dot(domain);
        if !d.is_empty() && valid_hostname(d) && d.contains('.') {
            return Status::Dunno;
        }
        let code = self.r.codes.non_fqdn;
        self.reject(
            code,
            "4.5.2",
            format!("<{addr}>: {class} rejected: need fully-qualified address"),
        )
    }

    /// Rewrites (local context) and resolves through trivial-rewrite.
    fn resolve(&self, addr: &str) -> Result<Resolved, String> {
        self.r
            .rewrite
            .resolve(&self.r.queue_dir, self.f.sender.unwrap_or_default(), addr)
    }

    /// resolve(), with failures as Postfix's reject_dict_retry.
    fn resolve_or_retry(&mut self, addr: &str) -> Result<Resolved, Status> {
        if let Some((_, r)) = self.resolved.iter().find(|(a, _)| a == addr) {
            return Ok(r.clone());
        }
        match self.resolve(addr) {
            Ok(r) if r.flags & flags::DEFER != 0 => Err(self.dict_retry(addr)),
            Ok(r) => {
                self.resolved.push((addr.to_string(), r.clone()));
                Ok(r)
            }
            Err(e) => {
                maillog::warning!(
                    "resolve {}: {}: {e}",
                    maillog::printable(addr, 100),
                    proto::rewrite::SERVICE
                );
                Err(self.dict_retry(addr))
            }
        }
    }

    /// Permit when the recipient is ours or in relay_domains, not routed.
    fn permit_auth_destination(&mut self, rcpt: &str) -> Status {
        let res = match self.resolve_or_retry(rcpt) {
            Ok(r) => r,
            Err(s) => return s,
        };
        if !res.address.contains('@') {
            return Status::Permit;
        }
        if !self.r.allow_untrusted_routing && res.flags & flags::ROUTED != 0 {
            return Status::Dunno;
        }
        match res.class {
            AddressClass::Local
            | AddressClass::Alias
            | AddressClass::Virtual
            | AddressClass::Relay => Status::Permit,
            AddressClass::Default => Status::Dunno,
        }
    }

    fn unknown_address(&mut self, addr: &str, class: &str, dsn: &str) -> Status {
        let res = match self.resolve_or_retry(addr) {
            Ok(r) => r,
            Err(s) => return s,
        };
        let Some(domain) = res
            .address
            .rfind('@')
            .and_then(|i| res.address.get(i + 1..))
        else {
            return Status::Dunno;
        };
        if res.flags & flags::FINAL != 0
            || res.class != AddressClass::Default && res.class != AddressClass::Relay
        {
            return Status::Dunno;
        }
        if domain.starts_with('[') && domain.ends_with(']') {
            return Status::Dunno;
        }
        use hickory_proto::rr::RecordType;
        let mut retry = None;
        for t in [RecordType::MX, RecordType::A, RecordType::AAAA] {
            match self.r.resolver.lookup(domain, t) {
                dns::Answer::Found(_) => return Status::Dunno,
                dns::Answer::NotFound => {}
                dns::Answer::Retry(why) => retry = Some(why),
            }
        }
        if let Some(why) = retry {
            maillog::warning!("{domain}: MX or address lookup error: {why}");
            if self.defer_if_permit.is_none() {
                self.defer_if_permit = Some(make_reply(
                    450,
                    dsn,
                    format!("<{addr}>: {class} rejected: Domain not found"),
                ));
            }
            return Status::Dunno;
        }
        let code = self.r.codes.unknown_addr;
        self.reject(
            code,
            dsn,
            format!("<{addr}>: {class} rejected: Domain not found"),
        )
    }

    fn rbl_client(&mut self, spec: &str) -> Status {
        let Some(listed) = rbl::lookup(&self.r.resolver, spec, self.f.client_addr) else {
            return Status::Dunno;
        };
        let domain = spec.split('=').next().unwrap_or(spec);
        let text = rbl::expand_reply(
            &self.r.default_rbl_reply,
            self.r.codes.rbl,
            "Client host",
            &self.f.client_addr.to_string(),
            domain,
            &listed.reason,
        );
        let ok = text.len() > 4
            && matches!(text.as_bytes().first(), Some(b'4' | b'5'))
            && text
                .as_bytes()
                .get(1..3)
                .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
            && text.as_bytes().get(3) == Some(&b' ');
        if !ok {
            maillog::warning!("rbl response code configuration error: {text}");
            return self.reject(450, "4.7.1", "Service unavailable".into());
        }
        let code: u16 = text.get(..3).and_then(|c| c.parse().ok()).unwrap_or(554);
        let rest = text.get(4..).unwrap_or_default();
        let (dsn, msg) = match rest.split_once(' ') {
            Some((d, m)) if access::is_dsn(d) => (d.to_string(), m.to_string()),
            _ => ("4.7.1".to_string(), rest.to_string()),
        };
        self.reject(code, &dsn_fix(&dsn, "Client host"), msg)
    }

    /// reject_unlisted_recipient (Postfix's check_rcpt_maps).
    fn unlisted_recipient(&mut self, fr: Frame<'_>) -> Status {
        let Some(rcpt) = self.f.recipient else {
            return Status::Dunno;
        };
        let res = match self.resolve_or_retry(rcpt) {
            Ok(r) => r,
            Err(s) => return s,
        };
        if !res.address.contains('@') || res.flags & flags::ROUTED != 0 {
            return Status::Dunno;
        }
        let m = &self.r.rcpt_maps;
        let delims = self.r.delimiters.clone();
        let search = |local: bool| tables::AddressSearch {
            delimiters: &delims,
            local_domain: local,
            propagate_extension: false,
        };
        let found_in = |maps: &Result<tables::Maps, String>, local: bool| -> Result<bool, ()> {
            match maps {
                Ok(mp) => tables::find_address(mp, &res.address, &search(local))
                    .map(|f| f.is_some())
                    .map_err(|_| ()),
                Err(_) => Err(()),
            }
        };
        let is_local = res.class == AddressClass::Local;
        for maps in [&m.virtual_alias, &m.canonical] {
            match found_in(maps, is_local) {
                Ok(true) => return Status::Dunno,
                Ok(false) => {}
                Err(()) => return self.dict_retry(rcpt),
            }
        }
        let c = &self.r.codes;
        let (code, table, known) = match res.class {
            AddressClass::Local => {
                if m.local.is_empty() {
                    return Status::Dunno;
                }
                match self.local_known(&res.address) {
                    Ok(k) => (c.local_rcpt, "local recipient table", k),
                    Err(()) => return self.dict_retry(rcpt),
                }
            }
            AddressClass::Virtual => match found_in(&m.virtual_mailbox, false) {
                Ok(k) => (c.virt_mailbox, "virtual mailbox table", k),
                Err(()) => return self.dict_retry(rcpt),
            },
            AddressClass::Alias => (c.virt_alias, "virtual alias table", false),
            AddressClass::Relay => {
                if m.relay.as_ref().is_ok_and(|r| r.is_empty()) {
                    return Status::Dunno;
                }
                match found_in(&m.relay, false) {
                    Ok(k) => (c.relay_rcpt, "relay recipient table", k),
                    Err(()) => return self.dict_retry(rcpt),
                }
            }
            AddressClass::Default => return Status::Dunno,
        };
        if known {
            return Status::Dunno;
        }
        let text = if m.show_table {
            format!("User unknown in {table}")
        } else {
            "User unknown".to_string()
        };
        self.reject(
            code,
            "5.1.1",
            format!("<{rcpt}>: {} rejected: {text}", fr.class),
        )
    }

    /// The local class: local_recipient_maps, unix:passwd.byname from the
    /// snapshot taken before chroot.
    fn local_known(&self, addr: &str) -> Result<bool, ()> {
        let m = &self.r.rcpt_maps;
        let search = tables::AddressSearch {
            delimiters: &self.r.delimiters,
            local_domain: true,
            propagate_extension: false,
        };
        let local = addr.rfind('@').and_then(|i| addr.get(..i)).unwrap_or(addr);
        let local = local.to_lowercase();
        let base = address::split_extension(&local, &self.r.delimiters)
            .map(|e| e.base.to_string())
            .unwrap_or_else(|| local.clone());
        for t in &m.local {
            let Ok(t) = t else { return Err(()) };
            if m.local_passwd
                && t.spec() == "unix:passwd.byname"
                && let Some(users) = &m.local_users
            {
                if users.contains(&local) || users.contains(&base) {
                    return Ok(true);
                }
                continue;
            }
            match tables::find_address(std::slice::from_ref(t), addr, &search) {
                Ok(Some(_)) => return Ok(true),
                Ok(None) => {}
                Err(_) => return Err(()),
            }
        }
        Ok(false)
    }

    /// check_{client,helo,sender,recipient}_access.
    fn access(&mut self, check: Check, idx: usize, def_acl: Option<Check>) -> Status {
        let f = self.f;
        let r = self.r;
        let (name, class, keys, routed) = match check {
            Check::Client => {
                let mut keys = Vec::new();
                keys.extend(access::domain_keys(f.client_name, r.parent_style));
                keys.extend(access::addr_keys(&f.client_addr.to_string()));
                (self.namaddr(), "Client host", keys, false)
            }
            Check::Etrn => {
                let Some(d) = self.etrn.clone() else {
                    return Status::Dunno;
                };
                let keys = access::domain_keys(&d, r.parent_style);
                (d, "Etrn command", keys, false)
            }
            Check::Helo => {
                let Some(h) = f.helo else {
                    return Status::Dunno;
                };
                (
                    h.to_string(),
                    "Helo command",
                    access::domain_keys(h, r.parent_style),
                    false,
                )
            }
            Check::Sender | Check::Recipient => {
                let (addr, class) = if check == Check::Sender {
                    (f.sender, "Sender address")
                } else {
                    (f.recipient, "Recipient address")
                };
                let Some(addr) = addr else {
                    return Status::Dunno;
                };
                if addr.is_empty() {
                    (
                        String::new(),
                        class,
                        vec![(r.null_key.clone(), false)],
                        false,
                    )
                } else {
                    let res = match self.resolve_or_retry(addr) {
                        Ok(x) => x,
                        Err(s) => return s,
                    };
                    let routed = check == Check::Recipient
                        && !r.allow_untrusted_routing
                        && res.flags & flags::ROUTED != 0;
                    (
                        addr.to_string(),
                        class,
                        access::mail_keys(&res.address, &r.delimiters, r.parent_style),
                        routed,
                    )
                }
            }
        };
        let value = match self.table_find(idx, &keys) {
            Ok(Some(v)) => v,
            Ok(None) => return Status::Dunno,
            Err(()) => {
                return self.table_result(
                    "451 4.3.5 Server configuration error",
                    &name,
                    class,
                    def_acl,
                );
            }
        };
        let s = self.table_result(&value, &name, class, def_acl);
        if routed && s == Status::Permit {
            Status::Dunno
        } else {
            s
        }
    }

    fn table_find(&self, idx: usize, keys: &[Key]) -> Result<Option<String>, ()> {
        let Some((spec, t)) = self.r.tables.get(idx) else {
            return Err(());
        };
        let Ok(t) = t else { return Err(()) };
        for (key, partial) in keys {
            if *partial && t.is_pattern() {
                continue;
            }
            match t.lookup(key) {
                Ok(Some(v)) => return Ok(Some(v)),
                Ok(None) => {}
                Err(e) => {
                    maillog::warning!("{spec}: table lookup problem: {e}");
                    return Err(());
                }
            }
        }
        Ok(None)
    }

    /// What a table value means (Postfix's check_table_result).
    fn table_result(
        &mut self,
        value: &str,
        name: &str,
        class: &str,
        def_acl: Option<Check>,
    ) -> Status {
        let c = self.r.codes.clone();
        let fix = |dsn: &str| dsn_fix(dsn, class);
        let or = |t: &str, d: &str| {
            if t.is_empty() {
                d.to_string()
            } else {
                t.to_string()
            }
        };
        match access::parse_action(value) {
            Action::Permit => Status::Permit,
            Action::Dunno => Status::Dunno,
            Action::Reject { dsn, text } => self.reject(
                c.map_reject,
                &fix(&dsn),
                format!("<{name}>: {class} rejected: {}", or(&text, "Access denied")),
            ),
            Action::Defer { dsn, text } => self.reject(
                c.map_defer,
                &fix(&dsn),
                format!("<{name}>: {class} rejected: {}", or(&text, "Access denied")),
            ),
            Action::Code { code, dsn, text } => self.reject(
                code,
                &fix(&dsn),
                format!("<{name}>: {class} rejected: {text}"),
            ),
            Action::DeferIfPermit { dsn, text } => {
                if self.defer_if_permit.is_none() {
                    self.defer_if_permit = Some(make_reply(
                        c.map_defer,
                        &fix(&dsn),
                        format!(
                            "<{name}>: {class} rejected: {}",
                            or(&text, "Service unavailable")
                        ),
                    ));
                }
                Status::Dunno
            }
            Action::DeferIfReject { dsn, text } => {
                if self.defer_if_reject.is_none() {
                    self.defer_if_reject = Some(make_reply(
                        c.map_defer,
                        &fix(&dsn),
                        format!(
                            "<{name}>: {class} rejected: {}",
                            or(&text, "Service unavailable")
                        ),
                    ));
                }
                Status::Dunno
            }
            Action::Hold(text) => {
                if self.hold.is_none() {
                    self.hold = Some(format!(
                        "<{name}>: {class} {}",
                        or(&text, "triggers HOLD action")
                    ));
                }
                Status::Dunno
            }
            Action::Discard(text) => {
                self.discard = Some(format!(
                    "<{name}>: {class} {}",
                    or(&text, "triggers DISCARD action")
                ));
                Status::Permit
            }
            Action::Log { warn, text } => {
                let what = if warn { "warn" } else { "info" };
                maillog::info!(
                    "NOQUEUE: {what}: {} from {}: {}; from=<{}> to=<{}>",
                    self.stage,
                    self.namaddr(),
                    maillog::printable(&text, 200),
                    maillog::printable(self.f.sender.unwrap_or_default(), 100),
                    maillog::printable(self.f.recipient.unwrap_or_default(), 100)
                );
                Status::Dunno
            }
            Action::Unsupported(what) => {
                maillog::warning!("access table action {what} is not supported; ignored");
                Status::Dunno
            }
            Action::Restrictions(list) => {
                if self.recursion > MAX_RECURSION {
                    maillog::warning!("access table entry {list} causes unreasonable recursion");
                    return self.server_error();
                }
                let names: Vec<String> = self.r.classes.iter().map(|(n, _)| n.clone()).collect();
                match parse_list(&list, def_acl, None, &names) {
                    Ok(rules) => self.rules(
                        &rules,
                        Frame {
                            name,
                            class: class_static(class),
                            def_acl,
                        },
                    ),
                    Err(e) => {
                        maillog::warning!("access table entry \"{list}\": {e}");
                        self.server_error()
                    }
                }
            }
        }
    }
}

/// With smtpd_delay_reject = no, client and HELO restrictions run outside
/// any mail transaction, so HOLD and DISCARD have nothing to act on:
/// Postfix skips them with a warning.
fn outside_transaction(v: Verdict, list: &str) -> Verdict {
    match v {
        Verdict::Hold(why) | Verdict::Discard(why) => {
            maillog::warning!(
                "with smtpd_delay_reject=no, HOLD and DISCARD are always skipped in {list} \
                 restrictions ({})",
                maillog::printable(&why, 100)
            );
            Verdict::Ok
        }
        other => other,
    }
}

fn class_static(class: &str) -> &'static str {
    match class {
        "Client host" => "Client host",
        "Helo command" => "Helo command",
        "Sender address" => "Sender address",
        "Recipient address" => "Recipient address",
        "Etrn command" => "Etrn command",
        "End-of-data" => "End-of-data",
        _ => "Data command",
    }
}

/// Postfix's smtpd_dsn_fix: an address-specific DSN (`x.1.y`) in an
/// access table or RBL reply is made to fit what is being rejected.
fn dsn_fix(dsn: &str, class: &str) -> String {
    let Some(micro) = dsn.get(1..4).filter(|m| *m == ".1.").and(dsn.get(4..)) else {
        return dsn.to_string();
    };
    let (sender, rcpt) = match micro {
        "1" => ("4.1.0", "4.1.1"),
        "2" => ("4.1.8", "4.1.2"),
        "3" => ("4.1.7", "4.1.3"),
        "4" => ("4.1.0", "4.1.4"),
        "5" => ("4.1.0", "4.1.5"),
        "6" => ("4.1.0", "4.1.6"),
        "7" => ("4.1.7", "4.1.3"),
        "8" => ("4.1.8", "4.1.2"),
        _ => ("4.1.0", "4.1.0"),
    };
    match class {
        "Sender address" => sender.to_string(),
        "Recipient address" => rcpt.to_string(),
        _ => "4.0.0".to_string(),
    }
}

/// Enhanced status codes the replies use, as `&'static str` for [`Reply`].
const DSNS: [&str; 28] = [
    "4.0.0", "5.0.0", "4.1.0", "5.1.0", "4.1.1", "4.1.2", "4.1.8", "4.3.0", "4.3.2", "4.3.5",
    "4.5.2", "4.5.0", "4.7.0", "4.7.1", "4.7.25", "4.5.2", "5.1.1", "5.1.2", "5.1.8", "5.3.0",
    "5.3.2", "5.5.2", "5.5.0", "5.7.0", "5.7.1", "5.7.25", "4.5.1", "5.5.1",
];

/// A reply with `dsn`'s class set to the code's (Postfix's
/// smtpd_check_reject); a DSN outside [`DSNS`] goes into the text, which
/// reads the same on the wire.
fn make_reply(code: u16, dsn: &str, text: String) -> Reply {
    let class = if code < 500 { '4' } else { '5' };
    let dsn: String = std::iter::once(class).chain(dsn.chars().skip(1)).collect();
    match DSNS.iter().find(|d| **d == dsn) {
        Some(d) => Reply::new(code, Some(d), text),
        None => Reply::new(code, None, format!("{dsn} {text}")),
    }
}

/// A name with one trailing dot removed (not `..`).
fn truncate_dot(name: &str) -> &str {
    match name.strip_suffix('.') {
        Some(t) if !t.ends_with('.') && !t.is_empty() => t,
        _ => name,
    }
}

/// Postfix's valid_hostname: labels of letters, digits, `-`, `_`, at most
/// 63 bytes each and 255 in all, no label starting or ending with `-`, and
/// not all-numeric.
fn valid_hostname(d: &str) -> bool {
    if d.is_empty() || d.len() > 255 {
        return false;
    }
    let mut numeric = true;
    for label in d.split('.') {
        if label.is_empty() || label.len() > 63 || label.starts_with('-') || label.ends_with('-') {
            return false;
        }
        for c in label.bytes() {
            if !(c.is_ascii_alphanumeric() || c == b'-' || c == b'_') {
                return false;
            }
            if !c.is_ascii_digit() {
                numeric = false;
            }
        }
    }
    !numeric
}

/// An IPv4 or IPv6 address (`IPv6:` prefix allowed).
fn valid_hostaddr(a: &str) -> bool {
    let bare = match a.get(..5) {
        Some(p) if p.eq_ignore_ascii_case("ipv6:") => a.get(5..).unwrap_or(""),
        _ => a,
    };
    bare.parse::<IpAddr>().is_ok()
}

#[cfg(test)]
mod tests;
