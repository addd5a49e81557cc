//! trivial-rewrite: rewrites addresses to standard form and resolves a
//! recipient to transport, nexthop and address class.

use serde::{Deserialize, Serialize};

/// The socket, under the queue directory.
pub const SERVICE: &str = "private/rewrite";

/// Which rules apply (Postfix's rewrite contexts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Context {
    /// Locally submitted mail: append @myorigin and .mydomain.
    Local,
    /// Mail from the network: no appending (remote_header_rewrite_domain empty).
    Remote,
}

/// Postfix's address classes, in the order trivial-rewrite tests them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AddressClass {
    /// mydestination, inet_interfaces: delivered by local_transport.
    Local,
    /// virtual_alias_domains: must be aliased away; otherwise "user unknown".
    Alias,
    /// virtual_mailbox_domains: virtual_transport.
    Virtual,
    /// relay_domains: relay_transport.
    Relay,
    /// Everything else: default_transport (or relayhost).
    Default,
}

/// From client to trivial-rewrite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Rewrite one address to standard form.
    Rewrite {
        /// Local or remote rules.
        context: Context,
        /// The address (internal, unquoted form).
        address: String,
    },
    /// Resolve one recipient.
    Resolve {
        /// Envelope sender (for sender-dependent routing, later).
        sender: String,
        /// The recipient.
        address: String,
    },
    /// Resolve one recipient of an address verification probe: as
    /// [`Request::Resolve`], with the address_verify_* transports,
    /// relayhost and tables in place of the regular ones (Postfix's
    /// resolve_clnt_verify).
    ResolveVerify {
        /// Envelope sender.
        sender: String,
        /// The recipient.
        address: String,
    },
}

/// Bits of [`Reply::Resolved`]'s `flags`.
pub mod flags {
    /// The address is malformed (bad domain syntax, a leading `-`): refuse it.
    pub const ERROR: u32 = 1 << 0;
    /// A lookup failed: try again later.
    pub const DEFER: u32 = 1 << 1;
    /// relocated_maps matched: bounce with the new address in the text.
    pub const RELOCATED: u32 = 1 << 2;
    /// The destination is one of ours (local, virtual alias or mailbox domain).
    pub const FINAL: u32 = 1 << 3;
    /// The recipient still has routing operators (`@`, `%`, `!`) in its
    /// local part after resolving (Postfix's RESOLVE_FLAG_ROUTED): the next
    /// hop may relay it elsewhere, so smtpd's reject_unauth_destination
    /// does not permit it on the strength of the domain alone.
    pub const ROUTED: u32 = 1 << 4;
}

/// From trivial-rewrite to client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// The rewritten address.
    Rewritten {
        /// Standard form.
        address: String,
    },
    /// Where a recipient goes.
    Resolved {
        /// master.cf service that delivers it (`local`, `virtual`, `smtp`, ...).
        transport: String,
        /// Next hop for that transport (a domain, `[host]:port`, or the host name for local).
        nexthop: String,
        /// The recipient, possibly rewritten.
        recipient: String,
        /// Address class.
        class: AddressClass,
        /// Bits from [`flags`].
        flags: u32,
        /// Why, when ERROR, DEFER or RELOCATED is set.
        reason: String,
    },
}
