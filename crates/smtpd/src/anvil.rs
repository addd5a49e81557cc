//! Client limits through the anvil service (private/anvil):
//! smtpd_client_connection_count_limit,
//! smtpd_client_connection_rate_limit, smtpd_client_message_rate_limit
//! and smtpd_client_auth_rate_limit. Called on worker threads. When anvil
//! cannot be reached the client is let in, with a warning.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::conn::Peer;
use crate::reply::Reply;
use crate::settings::Settings;

use proto::anvil as wire;

static WARNED: AtomicBool = AtomicBool::new(false);

/// Counts a new connection; the 421 reply when the client is over a limit.
pub fn connect(s: &Settings, anvil: &str, peer: &Peer) -> Option<Reply> {
    let req = wire::Request::Connect {
        service: s.service.clone(),
        client: peer.addr.to_string(),
    };
    let (count, rate) = match wire::call(Path::new("."), anvil, &req) {
        Ok(counts) => counts,
        Err(e) => {
            if !WARNED.swap(true, Ordering::Relaxed) {
                maillog::warning!("problem talking to server {anvil}: {e}");
            }
            return None;
        }
    };
    let namaddr = peer.namaddr();
    let too_many = |what: &str, n: u32| {
        maillog::warning!(
            "Connection {what} limit exceeded: {n} from {namaddr} for service {}",
            s.service
        );
        Some(Reply::new(
            421,
            Some("4.7.0"),
            format!("{}: Too many connections from {}", s.hostname, peer.addr),
        ))
    };
    if s.connection_count_limit > 0 && count > s.connection_count_limit {
        return too_many("concurrency", count);
    }
    if s.connection_rate_limit > 0 && rate > s.connection_rate_limit {
        return too_many("rate", rate);
    }
    None
}

/// Counts a MAIL FROM; Postfix's 450 reply when the client is over
/// smtpd_client_message_rate_limit.
pub fn message(s: &Settings, anvil: &str, peer: &Peer) -> Option<Reply> {
    if !counts_messages(s, peer) {
        return None;
    }
    let req = wire::Request::Message {
        service: s.service.clone(),
        client: peer.addr.to_string(),
    };
    let rate = ask(anvil, &req)?;
    if rate <= s.message_rate_limit {
        return None;
    }
    maillog::warning!(
        "Message delivery request rate limit exceeded: {rate} from {} for service {}",
        peer.namaddr(),
        s.service
    );
    Some(Reply::new(
        450,
        Some("4.7.1"),
        format!("Error: too much mail from {}", peer.addr),
    ))
}

/// True when a MAIL FROM of `peer` is counted (and so asks anvil): a
/// message rate limit is set and the client is not exempt.
pub fn counts_messages(s: &Settings, peer: &Peer) -> bool {
    s.message_rate_limit != 0 && !s.limit_exempt(peer.addr)
}

/// Counts an AUTH; Postfix's 450 reply when the client is over
/// smtpd_client_auth_rate_limit.
pub fn auth(s: &Settings, anvil: &str, peer: &Peer) -> Option<Reply> {
    if s.auth_rate_limit == 0 || s.limit_exempt(peer.addr) {
        return None;
    }
    let req = wire::Request::Auth {
        service: s.service.clone(),
        client: peer.addr.to_string(),
    };
    let rate = ask(anvil, &req)?;
    if rate <= s.auth_rate_limit {
        return None;
    }
    maillog::warning!(
        "AUTH command rate limit exceeded: {rate} from {} for service {}",
        peer.namaddr(),
        s.service
    );
    Some(Reply::new(
        450,
        Some("4.7.1"),
        format!("Error: too many AUTH commands from {}", peer.addr),
    ))
}

/// One request; the rate it answers, or None (warned once) when anvil
/// cannot be reached.
fn ask(anvil: &str, req: &wire::Request) -> Option<u32> {
    match wire::call(Path::new("."), anvil, req) {
        Ok((_, rate)) => Some(rate),
        Err(e) => {
            if !WARNED.swap(true, Ordering::Relaxed) {
                maillog::warning!("problem talking to server {anvil}: {e}");
            }
            None
        }
    }
}

/// Tells anvil a counted connection ended.
pub fn disconnect(s: &Settings, anvil: &str, peer: &Peer) {
    let req = wire::Request::Disconnect {
        service: s.service.clone(),
        client: peer.addr.to_string(),
    };
    let _ = wire::call(Path::new("."), anvil, &req);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_anvil_lets_the_client_in() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("main.cf"), "myhostname = mx.example\n").unwrap();
        let cfg = config::Config::load(dir.path()).unwrap();
        let s = Settings::from_config(&cfg, "smtp").unwrap();
        let peer = Peer {
            name: "unknown".into(),
            addr: "192.0.2.1".parse().unwrap(),
            local: None,
            port: 0,
        };
        // No private/anvil below the current directory.
        assert_eq!(connect(&s, "private/no-such-anvil", &peer), None);
        assert_eq!(message(&s, "private/no-such-anvil", &peer), None);
        assert_eq!(auth(&s, "private/no-such-anvil", &peer), None);
        disconnect(&s, "private/no-such-anvil", &peer);
    }
}
