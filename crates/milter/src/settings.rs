//! The milter_* parameters and the milter lists (smtpd_milters,
//! non_smtpd_milters): `inet:host:port`, `unix:/path`, or
//! `{ inet:host:port, connect_timeout=.., command_timeout=..,
//! content_timeout=.., default_action=.., protocol=.. }`.

use std::time::Duration;

use crate::Error;

/// milter_default_action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultAction {
    /// Go on as if the milter did not exist.
    Accept,
    /// Refuse the message for now.
    Tempfail,
    /// Refuse the message.
    Reject,
    /// Accept the message and put it on hold.
    Quarantine,
}

impl DefaultAction {
    /// Parses `accept`, `tempfail`, `reject` or `quarantine`.
    ///
    /// # Errors
    /// [`Error::Config`] for another word.
    pub fn parse(s: &str) -> Result<DefaultAction, Error> {
        match s.trim().to_ascii_lowercase().as_str() {
            "accept" => Ok(DefaultAction::Accept),
            "tempfail" => Ok(DefaultAction::Tempfail),
            "reject" => Ok(DefaultAction::Reject),
            "quarantine" => Ok(DefaultAction::Quarantine),
            other => Err(Error::Config(format!(
                "bad milter default action \"{other}\": need accept, tempfail, reject or quarantine"
            ))),
        }
    }
}

/// The macro names sent before each event (milter_*_macros).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MacroLists {
    /// milter_connect_macros.
    pub connect: Vec<String>,
    /// milter_helo_macros.
    pub helo: Vec<String>,
    /// milter_mail_macros.
    pub mail: Vec<String>,
    /// milter_rcpt_macros.
    pub rcpt: Vec<String>,
    /// milter_data_macros.
    pub data: Vec<String>,
    /// milter_end_of_header_macros.
    pub eoh: Vec<String>,
    /// milter_end_of_data_macros.
    pub eod: Vec<String>,
}

/// The settings every milter shares (each may override some).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// milter_protocol (2 to 6).
    pub protocol: u32,
    /// milter_default_action.
    pub default_action: DefaultAction,
    /// milter_connect_timeout.
    pub connect_timeout: Duration,
    /// milter_command_timeout.
    pub command_timeout: Duration,
    /// milter_content_timeout.
    pub content_timeout: Duration,
    /// The macro lists.
    pub macros: MacroLists,
}

fn words(s: &str) -> Vec<String> {
    s.split([',', ' ', '\t', '\n'])
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

impl Settings {
    /// The main.cf settings. A bad milter_protocol or
    /// milter_default_action is logged and replaced by its default.
    pub fn from_config(cfg: &config::Config) -> Settings {
        let protocol = match cfg.str("milter_protocol").trim() {
            p @ ("2" | "3" | "4" | "6") => p.parse().unwrap_or(6),
            "no_header_reply" => 3,
            other => {
                maillog::warning!("milter_protocol: bad value \"{other}\"; using 6");
                6
            }
        };
        let default_action = DefaultAction::parse(&cfg.str("milter_default_action"))
            .unwrap_or_else(|e| {
                maillog::warning!("milter_default_action: {e}; using tempfail");
                DefaultAction::Tempfail
            });
        Settings {
            protocol,
            default_action,
            connect_timeout: cfg.time("milter_connect_timeout"),
            command_timeout: cfg.time("milter_command_timeout"),
            content_timeout: cfg.time("milter_content_timeout"),
            macros: MacroLists {
                connect: words(&cfg.str("milter_connect_macros")),
                helo: words(&cfg.str("milter_helo_macros")),
                mail: words(&cfg.str("milter_mail_macros")),
                rcpt: words(&cfg.str("milter_rcpt_macros")),
                data: words(&cfg.str("milter_data_macros")),
                eoh: words(&cfg.str("milter_end_of_header_macros")),
                eod: words(&cfg.str("milter_end_of_data_macros")),
            },
        }
    }
}

/// Where a milter listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `inet:host:port` (host may be `[v6]`).
    Inet(String),
    /// `unix:/path` (relative paths are relative to the queue directory).
    Unix(String),
}

/// One milter of a list, with its own settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// The address as written (for the log).
    pub name: String,
    /// Where it listens.
    pub endpoint: Endpoint,
    /// Its settings.
    pub settings: Settings,
}

/// Parses a milter list (smtpd_milters, non_smtpd_milters).
///
/// # Errors
/// [`Error::Config`] naming a bad entry.
pub fn parse_list(list: &str, base: &Settings) -> Result<Vec<Spec>, Error> {
    split_entries(list)
        .into_iter()
        .map(|e| parse_entry(&e, base))
        .collect()
}

/// Splits at commas and whitespace outside `{ }`.
fn split_entries(list: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0usize;
    for c in list.chars() {
        match c {
            '{' => {
                depth += 1;
                cur.push(c);
            }
            '}' => {
                depth = depth.saturating_sub(1);
                cur.push(c);
            }
            c if depth == 0 && (c == ',' || c.is_whitespace()) => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn parse_entry(entry: &str, base: &Settings) -> Result<Spec, Error> {
    let mut settings = base.clone();
    let body = entry
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .unwrap_or(entry);
    let parts = words(body);
    let Some((first, rest)) = parts.split_first() else {
        return Err(Error::Config(format!("empty milter entry \"{entry}\"")));
    };
    for kv in rest {
        let Some((k, v)) = kv.split_once('=') else {
            return Err(Error::Config(format!(
                "{entry}: expected name=value, got \"{kv}\""
            )));
        };
        let time = || {
            config::value::parse_time(v, 's')
                .map(Duration::from_secs)
                .ok_or_else(|| Error::Config(format!("{entry}: bad time \"{v}\"")))
        };
        match k {
            "connect_timeout" => settings.connect_timeout = time()?,
            "command_timeout" => settings.command_timeout = time()?,
            "content_timeout" => settings.content_timeout = time()?,
            "default_action" => settings.default_action = DefaultAction::parse(v)?,
            "protocol" => {
                settings.protocol = v
                    .parse()
                    .ok()
                    .filter(|p| (2..=6).contains(p))
                    .ok_or_else(|| Error::Config(format!("{entry}: bad protocol \"{v}\"")))?
            }
            _ => {
                return Err(Error::Config(format!(
                    "{entry}: unknown milter attribute \"{k}\""
                )));
            }
        }
    }
    let endpoint = if let Some(hp) = first.strip_prefix("inet:") {
        let (host, port) = hp
            .rsplit_once(':')
            .filter(|(_, p)| p.parse::<u16>().is_ok())
            .ok_or_else(|| Error::Config(format!("{first}: need inet:host:port")))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let host = if host.contains(':') {
            format!("[{host}]")
        } else if host.is_empty() {
            "127.0.0.1".to_string()
        } else {
            host.to_string()
        };
        Endpoint::Inet(format!("{host}:{port}"))
    } else if let Some(p) = first
        .strip_prefix("unix:")
        .or_else(|| first.strip_prefix("local:"))
    {
        Endpoint::Unix(p.to_string())
    } else {
        return Err(Error::Config(format!(
            "{first}: need inet:host:port or unix:pathname"
        )));
    };
    Ok(Spec {
        name: first.clone(),
        endpoint,
        settings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Settings {
        Settings {
            protocol: 6,
            default_action: DefaultAction::Tempfail,
            connect_timeout: Duration::from_secs(30),
            command_timeout: Duration::from_secs(30),
            content_timeout: Duration::from_secs(300),
            macros: MacroLists::default(),
        }
    }

    #[test]
    fn lists_and_overrides() {
        let l = parse_list(
            "inet:localhost:8891, { unix:/run/x.sock, default_action=accept, command_timeout=5s } inet:[::1]:1",
            &base(),
        )
        .unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!(l[0].endpoint, Endpoint::Inet("localhost:8891".into()));
        assert_eq!(l[1].endpoint, Endpoint::Unix("/run/x.sock".into()));
        assert_eq!(l[1].settings.default_action, DefaultAction::Accept);
        assert_eq!(l[1].settings.command_timeout, Duration::from_secs(5));
        assert_eq!(l[2].endpoint, Endpoint::Inet("[::1]:1".into()));
        assert!(parse_list("tcp:x:1", &base()).is_err());
        assert!(parse_list("inet:x", &base()).is_err());
        assert!(parse_list("{ inet:x:1, nope=1 }", &base()).is_err());
        assert!(parse_list("", &base()).unwrap().is_empty());
    }

    #[test]
    fn config_defaults() {
        let cfg = config::Config::from_text(std::path::Path::new("/nonexistent"), "").unwrap();
        let s = Settings::from_config(&cfg);
        assert_eq!(s.protocol, 6);
        assert_eq!(s.default_action, DefaultAction::Tempfail);
        assert!(s.macros.connect.contains(&"{daemon_name}".to_string()));
        assert_eq!(s.macros.eod, ["i"]);
    }
}
