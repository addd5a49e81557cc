//! One delivery request: the nexthop's servers in order, one session
//! after another, until every recipient has a final outcome (Postfix's
//! smtp_connect.c). A recipient the server accepted or refused with 5xx
//! is final; a 4xx, a lost connection, a timeout or a connect failure
//! leaves it for the next server, and the last such reason stands when
//! no server is left. smtp_mx_session_limit counts the sessions that got
//! as far as a connection; smtp_mx_address_limit bounds the list.
//! smtp_fallback_relay hosts are tried after the nexthop's own servers.
//! A session kept in the connection cache (`cache`) for the nexthop is
//! used first; when it fails, the servers are tried as usual.

use delivery::agent::Report;
use delivery::{Message, Outcome};
use proto::deliver::{Action, Recipient};

use crate::cache;
use crate::nexthop::{self, Server};
use crate::session;
use crate::settings::Settings;

/// Default TCP port of the service.
fn default_port(s: &Settings) -> u16 {
    if s.lmtp { 24 } else { 25 }
}

/// Delivers `msg` to `rcpts`, reporting (and logging) each outcome.
pub(crate) fn deliver(s: &Settings, msg: &Message<'_>, rcpts: &[Recipient], report: Report<'_>) {
    let nexthop_text = msg.request.nexthop.clone();
    let mut pending: Vec<(&Recipient, Option<Outcome>)> = rcpts.iter().map(|r| (r, None)).collect();
    let mut relay = String::from("none");
    let finish = |r: &Recipient,
                  o: Outcome,
                  relay: &str,
                  report: &mut dyn FnMut(&Recipient, Outcome, &str)| {
        msg.log_with_setup(
            &r.address,
            &r.original,
            relay,
            &o,
            std::time::Duration::ZERO,
        );
        report(r, o, relay);
    };
    let servers = match route(s, &nexthop_text).and_then(|list| sts_filter(s, &nexthop_text, list))
    {
        Ok(list) => list,
        Err(o) => {
            for r in rcpts {
                finish(r, o.clone(), "none", &mut *report);
            }
            return;
        }
    };
    let (servers, sts_verify) = servers;
    let keep = s.cache.wants(&nexthop_text);
    let key = format!(
        "{}\0{:?}\0{sts_verify}",
        nexthop_text,
        s.tls_level_for(&nexthop_text)
    );
    // A session kept from an earlier delivery to this nexthop first.
    let reused = cache::take(&key).and_then(|kept| {
        let todo: Vec<&Recipient> = pending.iter().map(|(r, _)| *r).collect();
        let server = kept.server.clone();
        session::reuse(
            s,
            kept,
            &nexthop_text,
            msg,
            &todo,
            session::Opts {
                last: false,
                keep,
                sts_verify,
            },
        )
        .map(|(session, kept)| (server, session, kept))
    });
    let mut sessions = 0usize;
    let count = servers.len();
    let attempts = reused
        .into_iter()
        .map(|(server, session, kept)| (None, server, Some((session, kept))))
        .chain(
            servers
                .iter()
                .enumerate()
                .map(|(i, server)| (Some(i), server.clone(), None)),
        );
    for (index, server, done) in attempts {
        if pending.is_empty() {
            break;
        }
        let last_server = index.is_some_and(|i| {
            i + 1 == count || (s.session_limit > 0 && sessions + 1 >= s.session_limit)
        });
        let (session, kept) = match done {
            Some(d) => d,
            None => {
                let todo: Vec<&Recipient> = pending.iter().map(|(r, _)| *r).collect();
                session::run(
                    s,
                    &server,
                    &nexthop_text,
                    msg,
                    &todo,
                    session::Opts {
                        last: last_server,
                        keep,
                        sts_verify,
                    },
                )
            }
        };
        if let Some(kept) = kept {
            cache::store(&s.cache, key.clone(), kept);
        }
        if session.connected {
            sessions += 1;
            relay = server.namaddrport();
        }
        let setup = session.setup;
        let mut still = Vec::new();
        for ((r, previous), result) in pending.into_iter().zip(session.results) {
            let o = result.or_else(|| session.rest.clone()).or(previous);
            match o {
                Some(o) if o.action != Action::Deferred => {
                    let rel = if session.connected {
                        server.namaddrport()
                    } else {
                        "none".to_string()
                    };
                    msg.log_with_setup(&r.address, &r.original, &rel, &o, setup);
                    report(r, o, &rel);
                }
                other => still.push((r, other)),
            }
        }
        pending = still;
        if let Some(o) = &session.rest
            && o.action == Action::Bounced
        {
            // A site refusal with 5xx: no other server is asked.
            break;
        }
        if last_server && session.connected {
            break;
        }
    }
    for (r, o) in pending {
        let o = o.unwrap_or_else(|| Outcome::defer("4.4.1", "no server could be reached"));
        let o = if o.action == Action::Delivered {
            o
        } else {
            Outcome::defer(&soft(&o.dsn), o.text)
        };
        finish(r, o, &relay, &mut *report);
    }
}

/// The servers of the nexthop, then of smtp_fallback_relay.
fn route(s: &Settings, nexthop_text: &str) -> Result<Vec<Server>, Outcome> {
    let hop = nexthop::parse(nexthop_text, default_port(s), s.lmtp)
        .map_err(|e| Outcome::defer("4.3.5", e))?;
    let o = nexthop::Options {
        resolver: &s.resolver,
        ipv4: s.ipv4,
        ipv6: s.ipv6,
        loop_detect: s.loop_detect(hop.port),
        own: &s.own,
        address_limit: s.address_limit,
        myhostname: &s.myhostname,
    };
    let mut servers = nexthop::servers(&hop, &o);
    for relay in &s.fallback_relay {
        let Ok(fhop) = nexthop::parse(relay, default_port(s), s.lmtp) else {
            maillog::warning!(
                "bad smtp_fallback_relay entry: {}",
                maillog::printable(relay, 100)
            );
            continue;
        };
        let fo = nexthop::Options {
            loop_detect: s.loop_detect(fhop.port),
            ..o
        };
        match (&mut servers, nexthop::servers(&fhop, &fo)) {
            (Ok(list), Ok(more)) => list.extend(more),
            // The nexthop failed softly: the fallback relays may do.
            (Err(e), Ok(more)) if e.action == Action::Deferred => servers = Ok(more),
            _ => {}
        }
    }
    servers
}

/// MTA-STS (smtp_tls_mta_sts): with a policy in enforce mode only the
/// listed MX hosts remain, and they need verified TLS (true); in testing
/// mode unlisted hosts are only logged.
fn sts_filter(
    s: &Settings,
    nexthop_text: &str,
    servers: Vec<Server>,
) -> Result<(Vec<Server>, bool), Outcome> {
    if !s.sts.enabled || s.lmtp {
        return Ok((servers, false));
    }
    let Ok(hop) = nexthop::parse(nexthop_text, 25, false) else {
        return Ok((servers, false));
    };
    if !hop.mx || hop.path.is_some() {
        return Ok((servers, false));
    }
    let Some(policy) = s.sts.policy(&s.resolver, &hop.host) else {
        return Ok((servers, false));
    };
    let enforce = policy.mode == crate::mtasts::Mode::Enforce;
    let (listed, unlisted): (Vec<Server>, Vec<Server>) =
        servers.into_iter().partition(|sv| policy.allows(&sv.name));
    for sv in &unlisted {
        maillog::warning!(
            "MTA-STS policy of {} ({}) does not list MX host {}",
            maillog::printable(&hop.host, 100),
            if enforce { "enforce" } else { "testing" },
            sv.namaddr()
        );
    }
    if !enforce {
        let mut all = listed;
        all.extend(unlisted);
        return Ok((all, false));
    }
    if listed.is_empty() {
        return Err(Outcome::defer(
            "4.7.5",
            format!(
                "MTA-STS policy of {} lists none of its MX hosts",
                maillog::printable(&hop.host, 100)
            ),
        ));
    }
    Ok((listed, true))
}

fn soft(dsn: &str) -> String {
    match dsn.strip_prefix('5') {
        Some(rest) => format!("4{rest}"),
        None => dsn.to_string(),
    }
}
