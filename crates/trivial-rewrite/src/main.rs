//! trivial-rewrite - Postfix-compatible address rewriting and resolving daemon
//!
//! # Synopsis
//!
//! master.cf: `rewrite unix - - n - - trivial-rewrite`
//!
//! # Description
//!
//! trivial-rewrite answers two requests from [`proto::rewrite`] on
//! `private/rewrite`, as many per connection as the client sends, until
//! the client hangs up (qmgr, cleanup and smtpd keep a connection open):
//!
//! - `Rewrite`: bring an address to standard form. In the local context a
//!   bare user gets `@$myorigin` (append_at_myorigin) and a domain without
//!   a dot gets `.$mydomain` (append_dot_mydomain, off at
//!   compatibility_level 1 and later); in the remote context both use
//!   remote_header_rewrite_domain, and nothing is appended when it is
//!   empty. `host!user` becomes `user@host` (swap_bangpath) and
//!   `user%host` becomes `user@host` (allow_percent_hack); a source route
//!   is dropped, and one trailing dot of the domain.
//! - `Resolve`: find the address class, transport and nexthop of a
//!   recipient, in Postfix's order: a domain in mydestination, or an
//!   address literal of inet_interfaces or proxy_interfaces, is class
//!   local (local_transport, `local:$myhostname`); virtual_alias_domains is
//!   class alias (transport `error`, `5.1.1 User unknown in virtual alias
//!   table`); virtual_mailbox_domains is class virtual
//!   (virtual_transport); relay_domains is class relay (relay_transport);
//!   anything else is class default (default_transport, or the sender's
//!   sender_dependent_default_transport_maps entry), with the sender's
//!   sender_dependent_relayhost_maps entry (relay and default classes;
//!   the null sender looks up empty_address_relayhost_maps_lookup_key,
//!   `DUNNO` means none), else relayhost, as the nexthop when set, else
//!   the domain. A `transport:nexthop` value in
//!   main.cf sets the nexthop. transport_maps overrides (full address,
//!   address without extension, domain, parent domains, `*`; an empty
//!   transport or nexthop keeps or resets as in Postfix), and
//!   relocated_maps turns the recipient into an `error` delivery with
//!   `5.1.6 User has moved to ...` and the RELOCATED flag.
//!
//!   Routing in a local part is undone the way Postfix does: every local
//!   domain at the end is stripped, and what is left, `user%remote`,
//!   `remote!user` or a quoted `"user@remote"`, is rewritten to
//!   `user@remote` and resolved again. Such addresses therefore resolve
//!   to the remote destination, not to local delivery. Routing operators
//!   left before the final domain set the ROUTED flag.
//!
//! - `ResolveVerify`: the same for an address verification probe (qmgr
//!   asks it for verify(8)'s probes), with the address_verify_*
//!   transports, relay host and tables in place of the regular ones.
//!
//! # Talks to
//!
//! Its clients on private/rewrite; nothing else.
//!
//! # Security
//!
//! Runs as mail_owner, chrooted when master.cf says so. Requests come
//! from other daemons but are handled as untrusted: frames are bounded,
//! a malformed one ends that client's connection, and the resolver loop
//! is bounded by the address length. Tables are opened before the jail.
//!
//! # Diagnostics
//!
//! `warning: malformed request: ...` (client dropped); `warning:
//! resolve_addr: <addr>: giving up after N iterations`; a table that fails
//! answers with the DEFER flag. A table that cannot be opened at startup is
//! fatal. When a table file changes, the process finishes its clients and
//! exits so that master starts one with the new table.
//!
//! # Configuration parameters
//!
//! - myhostname, mydomain, myorigin ($myhostname), mydestination
//!   ($myhostname, localhost.$mydomain, localhost)
//! - append_at_myorigin (yes), append_dot_mydomain (no at level >= 1),
//!   swap_bangpath (yes), allow_percent_hack (yes),
//!   resolve_dequoted_address (yes), resolve_null_domain (no),
//!   allow_min_user (no), empty_address_recipient (MAILER-DAEMON),
//!   remote_header_rewrite_domain (empty), recipient_delimiter (empty)
//! - inet_interfaces (all), proxy_interfaces (empty)
//! - virtual_alias_domains ($virtual_alias_maps), virtual_mailbox_domains
//!   ($virtual_mailbox_maps), relay_domains (empty at level >= 2)
//! - local_transport (local:$myhostname), virtual_transport (virtual),
//!   relay_transport (relay), default_transport (smtp), relayhost (empty)
//! - sender_dependent_relayhost_maps (empty),
//!   empty_address_relayhost_maps_lookup_key (<>),
//!   sender_dependent_default_transport_maps (empty)
//! - transport_maps (empty), relocated_maps (empty),
//!   relocated_prefix_enable (yes), parent_domain_matches_subdomains
//! - address_verify_local_transport ($local_transport),
//!   address_verify_virtual_transport ($virtual_transport),
//!   address_verify_relay_transport ($relay_transport),
//!   address_verify_default_transport ($default_transport),
//!   address_verify_relayhost ($relayhost),
//!   address_verify_transport_maps ($transport_maps),
//!   address_verify_sender_dependent_relayhost_maps
//!   ($sender_dependent_relayhost_maps),
//!   address_verify_sender_dependent_default_transport_maps
//!   ($sender_dependent_default_transport_maps)
//!
//! # See also
//!
//! qmgr(8), cleanup(8), smtpd(8), transport(5), relocated(5), master(8).

mod resolve;
mod rewrite;
mod server;
mod settings;
mod verify;

fn main() {
    let (daemon, (settings, probes)) = ipc::daemon::start(|config, _args| {
        let s = settings::Settings::load(config).map_err(|e| e.to_string())?;
        let v = verify::load(config).map_err(|e| format!("address verification: {e}"))?;
        for w in s
            .transport_maps
            .warnings()
            .chain(s.relocated_maps.warnings())
            .chain(s.sender_relayhost_maps.warnings())
            .chain(s.sender_default_transport_maps.warnings())
        {
            maillog::warning!("{w}");
        }
        Ok((s, v))
    });
    let probes = probes.as_ref().unwrap_or(&settings);
    server::run(daemon.multi_server(), &settings, probes)
}
