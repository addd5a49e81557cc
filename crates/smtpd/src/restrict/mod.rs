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
//! failure defers with 450), `reject_unverified_recipient` (the verify
//! service and its probes, see [`unverified`]).
//!
//! Sender, also: `reject_unverified_sender`.
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
//! reject_rbl_client and reject_unknown_recipient_domain ask the
//! nameservers of `/etc/resolv.conf` through the shared `dns` crate (the
//! same stub resolver and per-process cache the smtp client uses);
//! resolv.conf is read in [`Restrictions::from_config`], before the
//! chroot; the environment variable `MAIL_RESOLV_CONF` names another file
//! (tests use it to reach a server on 127.0.0.1; `nameserver
//! 127.0.0.1#5353` gives a port). See [`rbl`].
//!
//! # Layout
//!
//! This file holds the types and [`Restrictions`]; `parse` reads the
//! lists, `maps` opens the recipient tables and talks to trivial-rewrite,
//! `eval` runs a list, `lookup` the check_*_access tables, `destination`
//! the relay, DNS and recipient-table checks, `replies` the reply helpers.
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
//! unknown_relay_recipient_reject_code (550),
//! unverified_recipient_reject_code (450), unverified_sender_reject_code (450),
//! unverified_recipient_defer_code (450), unverified_sender_defer_code (450),
//! unverified_recipient_reject_reason, unverified_sender_reject_reason,
//! unverified_recipient_tempfail_action, unverified_sender_tempfail_action
//! ($reject_tempfail_action: defer_if_permit), address_verify_poll_count (3),
//! address_verify_poll_delay (3s), address_verify_service_name (verify).
//!
//! # See also
//!
//! postconf(5), access(5), trivial-rewrite(8), smtpd(8).

pub mod access;
pub mod mynetworks;
pub mod policy;
pub mod rbl;

mod destination;
mod eval;
mod lookup;
mod maps;
mod parse;
mod replies;
mod unverified;

use parse::*;
use replies::*;

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
    /// What only policy requests need (none at connect time and in tests).
    pub session: Option<&'a policy::SessionInfo>,
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
    /// Accept the command with access actions that change the message
    /// (FILTER, REDIRECT, BCC, PREPEND; HOLD may come with them).
    Actions(Box<Actions>),
}

/// What FILTER, REDIRECT, BCC, PREPEND (and HOLD) access actions asked
/// for during one check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actions {
    /// HOLD, with the reason for the log.
    pub hold: Option<String>,
    /// FILTER transport:nexthop (the last one wins).
    pub filter: Option<String>,
    /// REDIRECT address (the last one wins).
    pub redirect: Option<String>,
    /// BCC addresses.
    pub bcc: Vec<String>,
    /// PREPEND header lines.
    pub prepend: Vec<String>,
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

/// Index of smtpd_data_restrictions in [`LISTS`].
const DATA_LIST: usize = 5;
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
    /// reject_unverified_recipient / reject_unverified_sender.
    RejectUnverified(unverified::Which),
    Access(Check, usize),
    /// check_policy_service with its argument (a key into the policy clients).
    Policy(String),
    /// Stands for every list when the configuration could not be read
    /// (see [`Restrictions::from_config_or_broken`]).
    ConfigError,
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
    /// One client per check_policy_service argument.
    policies: Vec<policy::Client>,
    /// reject_unverified_recipient and _sender settings.
    unverified: unverified::Unverified,
    /// Why the configuration could not be used, when every list is
    /// [`Rule::ConfigError`].
    broken: Option<String>,
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
        let policies = policy_clients(cfg, &lists, &classes)?;
        let parent_style = tables::split_list(&cfg.str("parent_domain_matches_subdomains"))
            .contains(&"smtpd_access_maps");
        Ok(Restrictions {
            lists,
            classes,
            tables,
            mynetworks,
            delay_reject: cfg.bool("smtpd_delay_reject"),
            // receive_override_options = no_unknown_recipient_checks (a
            // content filter's re-injection service) turns it off.
            reject_unlisted_recipient: cfg.bool("smtpd_reject_unlisted_recipient")
                && !crate::filters::ReceiveOverrides::parse(&cfg.str("receive_override_options"))
                    .no_unknown_recipient_checks,
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
            policies,
            unverified: unverified::Unverified::from_config(cfg)?,
            broken: None,
        })
    }

    /// [`Restrictions::from_config`], or when that fails (a restriction
    /// or table type that is not built, a list without relay control),
    /// restrictions that answer every check with `451 4.3.5 Server
    /// configuration error` and log why: smtpd keeps greeting clients
    /// (and refusing mail) instead of exiting at every start while master
    /// restarts it. `postfix check` and `postfix start` name the problem
    /// before it gets here.
    ///
    /// # Errors
    /// Only when even the fallback cannot be built (a bad mynetworks).
    pub fn from_config_or_broken(cfg: &config::Config) -> Result<Restrictions, String> {
        let e = match Restrictions::from_config(cfg) {
            Ok(r) => return Ok(r),
            Err(e) => e,
        };
        maillog::error!(
            "{e}; every mail request gets 451 4.3.5 Server configuration error until this is fixed"
        );
        let mut c = cfg.clone();
        for l in LISTS {
            c.set_override(l, "");
        }
        c.set_override("smtpd_restriction_classes", "");
        c.set_override("smtpd_relay_restrictions", "reject");
        let mut r = Restrictions::from_config(&c)?;
        for l in r.lists.iter_mut() {
            *l = vec![Rule::ConfigError];
        }
        r.broken = Some(e);
        Ok(r)
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

    /// True when the HELO and MAIL verdicts need no lookup: under
    /// smtpd_delay_reject they are Ok (the lists run at RCPT). smtpd then
    /// gives them in its event loop rather than on a worker thread.
    pub fn helo_mail_without_lookup(&self) -> bool {
        self.delay_reject
    }

    /// True when smtpd_data_restrictions is empty: the DATA verdict needs
    /// no lookup (as [`Restrictions::helo_mail_without_lookup`]).
    pub fn data_without_lookup(&self) -> bool {
        self.lists.get(DATA_LIST).is_none_or(|l| l.is_empty())
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

/// One policy client per distinct check_policy_service argument in the
/// lists and classes.
fn policy_clients(
    cfg: &config::Config,
    lists: &[Vec<Rule>],
    classes: &[(String, Vec<Rule>)],
) -> Result<Vec<policy::Client>, String> {
    let base = policy::Settings::from_config(cfg);
    let mut out: Vec<policy::Client> = Vec::new();
    let all = lists.iter().chain(classes.iter().map(|(_, l)| l));
    for rule in all.flatten() {
        if let Rule::Policy(arg) = rule
            && !out.iter().any(|c| c.arg() == arg)
        {
            let spec = policy::Spec::parse(arg, &base)
                .map_err(|e| format!("check_policy_service {arg}: {e}"))?;
            out.push(policy::Client::new(arg.clone(), spec));
        }
    }
    Ok(out)
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
    /// Recent answers by (sender, address), as Postfix's smtpd keeps its
    /// last: a run of mail to one recipient asks trivial-rewrite once.
    /// Only answers for our own domains are kept (see `resolve`).
    recent: proto::recent::Recent<(String, String), Resolved>,
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
    /// FILTER, REDIRECT, BCC and PREPEND actions met.
    actions: Actions,
    /// trivial-rewrite's answers during this evaluation.
    resolved: Vec<(String, Resolved)>,
    /// The ETRN domain, during an ETRN check.
    etrn: Option<String>,
    /// The message size, at END-OF-MESSAGE.
    size: Option<u64>,
}

/// The most nesting of restriction lists inside access table values.
const MAX_RECURSION: usize = 100;

#[cfg(test)]
mod tests;
