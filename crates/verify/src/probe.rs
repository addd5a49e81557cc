//! Probe messages (Postfix's post_mail_fopen_async in verify.c): one
//! message per address, from address_verify_sender to the address,
//! through cleanup with the VERIFY_PROBE flag, so that qmgr and the
//! delivery agents only find out whether it would be delivered and tell
//! verify. A probe has no content: it is never delivered, deferred or
//! bounced. Each probe is sent from its own thread, so a slow cleanup
//! never holds up the answers to smtpd.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use proto::cleanup::{self, Begin, Reply, Request};

/// Postfix's safe_ultostr digits; the sender's time stamp uses base 31.
const SAFE_DIGITS: &[u8] = b"0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz";

/// The base of the time stamp in a time-dependent probe sender.
const SENDER_BASE: u64 = 31;

/// Most probes being handed to cleanup at once: a flood of queries for
/// new addresses does not become a flood of threads (the queries beyond
/// it are answered "in progress" and probe on a later query).
pub(crate) const MAX_IN_FLIGHT: usize = 64;

/// How probes are sent.
#[derive(Debug, Clone)]
pub(crate) struct Sender {
    /// The queue directory (cleanup's socket is under it).
    pub(crate) queue_dir: PathBuf,
    /// `public/` + cleanup_service_name.
    pub(crate) cleanup: String,
    /// address_verify_sender, `<>` as empty.
    pub(crate) sender: String,
    /// address_verify_sender_ttl in seconds (0: a fixed sender).
    pub(crate) sender_ttl: u64,
    /// Probes being handed to cleanup now.
    pub(crate) in_flight: Arc<AtomicUsize>,
}

/// The probe's envelope sender at time `now` (Postfix's
/// make_verify_sender_addr): empty for `<>`; with a ttl, the local part
/// gets a base-31 stamp of `now / ttl` so that the address changes every
/// ttl seconds. cleanup completes a bare name with @$myorigin.
pub(crate) fn sender_address(sender: &str, ttl: u64, now: u64) -> String {
    if sender.is_empty() || sender == "<>" {
        return String::new();
    }
    if ttl == 0 {
        return sender.to_string();
    }
    let (local, domain) = match sender.rfind('@') {
        Some(at) => (
            sender.get(..at).unwrap_or(""),
            sender.get(at..).unwrap_or(""),
        ),
        None => (sender, ""),
    };
    format!("{local}{}{domain}", base31(now / ttl))
}

fn base31(mut n: u64) -> String {
    let mut digits = Vec::new();
    loop {
        let d = usize::try_from(n % SENDER_BASE).unwrap_or(0);
        digits.push(SAFE_DIGITS.get(d).copied().unwrap_or(b'0'));
        n /= SENDER_BASE;
        if n == 0 {
            break;
        }
    }
    digits.reverse();
    String::from_utf8(digits).unwrap_or_default()
}

/// Checks address_verify_sender as Postfix does.
///
/// # Errors
/// The value starts or ends with `@`.
pub(crate) fn check_sender(sender: &str) -> Result<(), String> {
    if sender.starts_with('@') {
        return Err(format!(
            "parameter address_verify_sender: value \"{sender}\" must not start with '@'"
        ));
    }
    if sender.ends_with('@') {
        return Err(format!(
            "parameter address_verify_sender: value \"{sender}\" must not end with '@'"
        ));
    }
    Ok(())
}

impl Sender {
    /// Sends a probe for `address` from a new thread.
    /// Returns false when it could not be started (too many in flight,
    /// no thread).
    pub(crate) fn send(&self, address: &str, now: u64) -> bool {
        if self.in_flight.fetch_add(1, Ordering::SeqCst) >= MAX_IN_FLIGHT {
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            return false;
        }
        let me = self.clone();
        let address = address.to_string();
        let spawned = std::thread::Builder::new()
            .name("probe".into())
            .spawn(move || {
                if let Err(e) = me.post(&address, now) {
                    maillog::warning!("probe for {}: {e}", maillog::printable(&address, 200));
                }
                me.in_flight.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(e) = spawned {
            maillog::warning!("cannot start a probe: {e}");
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// The conversation with cleanup.
    fn post(&self, address: &str, now: u64) -> Result<(), String> {
        let mut s = proto::connect(&self.queue_dir, &self.cleanup).map_err(|e| e.to_string())?;
        let t = Some(proto::verify::CLIENT_TIMEOUT);
        s.set_read_timeout(t).map_err(|e| e.to_string())?;
        s.set_write_timeout(t).map_err(|e| e.to_string())?;
        let begin = Begin {
            flags: cleanup::flags::VERIFY_PROBE
                | cleanup::flags::NOTIFICATION
                | cleanup::flags::NO_CHECKS
                | cleanup::flags::LOCAL_SUBMISSION,
            sender: sender_address(&self.sender, self.sender_ttl, now),
            full_name: None,
            attributes: vec![("rewrite_context".into(), "local".into())],
        };
        let ask = |s: &mut std::os::unix::net::UnixStream, r: &Request| {
            proto::send(s, r).map_err(|e| e.to_string())
        };
        ask(&mut s, &Request::Begin(begin))?;
        match proto::recv::<_, Reply>(&mut s).map_err(|e| e.to_string())? {
            Reply::Started { .. } => {}
            other => return Err(refused(other)),
        }
        ask(
            &mut s,
            &Request::Recipient(cleanup::RecipientSpec {
                address: address.to_string(),
                orcpt: None,
                notify: 0,
            }),
        )?;
        ask(&mut s, &Request::End)?;
        match proto::recv::<_, Reply>(&mut s).map_err(|e| e.to_string())? {
            Reply::Queued { .. } | Reply::Discarded { .. } => Ok(()),
            other => Err(refused(other)),
        }
    }
}

fn refused(r: Reply) -> String {
    match r {
        Reply::Rejected { status, text, .. } => format!("cleanup refused it: {status} {text}"),
        other => format!("unexpected reply from cleanup: {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_more_than_max_in_flight_probes() {
        let s = Sender {
            queue_dir: "/nonexistent".into(),
            cleanup: "public/cleanup".into(),
            sender: String::new(),
            sender_ttl: 0,
            in_flight: Arc::new(AtomicUsize::new(MAX_IN_FLIGHT)),
        };
        assert!(!s.send("a@b", 1));
        assert_eq!(s.in_flight.load(Ordering::SeqCst), MAX_IN_FLIGHT);
    }

    #[test]
    fn sender_as_postfix_makes_it() {
        assert_eq!(sender_address("<>", 0, 5), "");
        assert_eq!(sender_address("", 60, 5), "");
        assert_eq!(sender_address("double-bounce", 0, 5), "double-bounce");
        assert_eq!(
            sender_address("postmaster@example.org", 0, 5),
            "postmaster@example.org"
        );
        // 1000 / 10 = 100 = 3*31 + 7: "37".
        assert_eq!(sender_address("probe", 10, 1000), "probe37");
        assert_eq!(
            sender_address("probe@example.org", 10, 1000),
            "probe37@example.org"
        );
        // 30 is the last base-31 digit: Z.
        assert_eq!(sender_address("p", 1, 30), "pZ");
        assert!(check_sender("@x").is_err());
        assert!(check_sender("x@").is_err());
        assert!(check_sender("x@y").is_ok());
    }
}
