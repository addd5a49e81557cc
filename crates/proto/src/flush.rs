//! flush: the fast flush service (public/flush) that smtpd's ETRN (and
//! `postqueue -s`) ask to deliver the deferred mail of one destination
//! now.
//!
//! One request frame and one reply frame per call ([`send_site`]). The
//! statuses are Postfix's FLUSH_STAT_*, so smtpd answers as Postfix does:
//! `250 Queuing started`, `459 <site>: service unavailable` (the site is
//! not in fast_flush_domains), `458 Unable to queue messages` (a bad site
//! or no flush service).

use serde::{Deserialize, Serialize};

/// The socket, under the queue directory.
pub const SERVICE: &str = "public/flush";

/// From a client (smtpd, postqueue) to flush.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Deliver now the deferred mail with a pending recipient at `site`.
    SendSite {
        /// The destination (a domain, or an address literal in `[]`).
        site: String,
    },
    /// Deliver now the deferred message `queue_id` (`postqueue -i`,
    /// `sendmail -qI`), as Postfix's flush_send_file.
    SendFile {
        /// The queue id.
        queue_id: String,
    },
}

/// From flush to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// Delivery requested (or requested very recently already).
    Ok,
    /// The site is not eligible (not in fast_flush_domains).
    Deny,
    /// The site is not a valid destination name.
    Bad,
    /// flush could not do it (a table or queue problem).
    Fail,
}

/// How long a client waits for flush, which walks deferred/.
pub const CLIENT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Asks the flush service at `service` under `queue_dir` to deliver the
/// mail for `site`.
///
/// # Errors
/// flush is not running or did not answer in [`CLIENT_TIMEOUT`].
pub fn send_site(
    queue_dir: &std::path::Path,
    service: &str,
    site: &str,
) -> Result<Reply, crate::Error> {
    call(
        queue_dir,
        service,
        &Request::SendSite {
            site: site.to_string(),
        },
    )
}

/// Asks the flush service at `service` under `queue_dir` to deliver the
/// deferred message `queue_id` now.
///
/// # Errors
/// flush is not running or did not answer in [`CLIENT_TIMEOUT`].
pub fn send_file(
    queue_dir: &std::path::Path,
    service: &str,
    queue_id: &str,
) -> Result<Reply, crate::Error> {
    call(
        queue_dir,
        service,
        &Request::SendFile {
            queue_id: queue_id.to_string(),
        },
    )
}

/// One request, one reply.
fn call(
    queue_dir: &std::path::Path,
    service: &str,
    request: &Request,
) -> Result<Reply, crate::Error> {
    let mut s = crate::connect(queue_dir, service)?;
    s.set_read_timeout(Some(CLIENT_TIMEOUT))
        .map_err(crate::Error::Io)?;
    s.set_write_timeout(Some(CLIENT_TIMEOUT))
        .map_err(crate::Error::Io)?;
    crate::send(&mut s, request)?;
    crate::recv(&mut s)
}
