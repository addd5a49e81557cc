//! The SASL client for relay hosts (smtp_sasl_auth_enable): PLAIN and
//! LOGIN (RFC 4616, the LOGIN draft), with the username and password from
//! smtp_sasl_password_maps (`user:password`), looked up by the nexthop as
//! written (`[mail.example]:587`), then by the server's host name.
//!
//! Plaintext mechanisms are used over TLS; without TLS only when
//! smtp_sasl_security_options does not say `noplaintext`. (Postfix with
//! Cyrus SASL applies smtp_sasl_tls_security_options to TLS sessions,
//! whose default also forbids plaintext mechanisms; this client treats a
//! TLS session as enough protection for the password.)

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use delivery::Outcome;

use crate::conn::Conn;
use crate::reply::Reply;
use crate::session::Features;

/// What the client may do.
pub(crate) struct Client {
    /// The password maps, or why they could not be opened.
    pub(crate) maps: Result<tables::Maps, String>,
    /// PLAIN and LOGIN without TLS.
    pub(crate) plaintext_without_tls: bool,
}

/// A username and password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub(crate) user: String,
    pub(crate) password: String,
}

impl Client {
    /// Opens smtp_sasl_password_maps (before the chroot).
    pub(crate) fn load(maps: &str, security_options: &str) -> Client {
        Client {
            maps: tables::Maps::open(maps, tables::Flags::default())
                .map_err(|e| format!("smtp_sasl_password_maps: {e}")),
            plaintext_without_tls: !security_options
                .split([',', ' ', '\t'])
                .any(|o| o.eq_ignore_ascii_case("noplaintext")),
        }
    }

    /// The credentials for `nexthop` or `host`; Err on a table error.
    pub(crate) fn credentials(
        &self,
        nexthop: &str,
        host: &str,
    ) -> Result<Option<Credentials>, String> {
        let maps = self.maps.as_ref().map_err(Clone::clone)?;
        for key in [nexthop, host] {
            if key.is_empty() {
                continue;
            }
            match maps.lookup(key) {
                Ok(Some(v)) => {
                    let (user, password) = v.split_once(':').unwrap_or((v.as_str(), ""));
                    return Ok(Some(Credentials {
                        user: user.trim().to_string(),
                        password: password.to_string(),
                    }));
                }
                Ok(None) => {}
                Err(e) => return Err(format!("smtp_sasl_password_maps lookup for {key}: {e}")),
            }
        }
        Ok(None)
    }
}

/// The mechanism to use from the server's AUTH list, if any.
pub(crate) fn choose(offered: &[String]) -> Option<&'static str> {
    ["PLAIN", "LOGIN"]
        .into_iter()
        .find(|m| offered.iter().any(|o| o.eq_ignore_ascii_case(m)))
}

/// The PLAIN initial response.
pub(crate) fn plain(c: &Credentials) -> String {
    let mut raw = Vec::with_capacity(c.user.len() + c.password.len() + 2);
    raw.push(0);
    raw.extend_from_slice(c.user.as_bytes());
    raw.push(0);
    raw.extend_from_slice(c.password.as_bytes());
    STANDARD.encode(raw)
}

/// One base64 line.
pub(crate) fn encode(s: &str) -> String {
    STANDARD.encode(s.as_bytes())
}

impl crate::session::Talk<'_> {
    /// AUTH with the credentials for this nexthop or server, if any.
    pub(crate) fn authenticate(
        &self,
        conn: &mut Conn,
        client: &crate::sasl::Client,
        f: &Features,
    ) -> Result<(), Outcome> {
        let creds = match client.credentials(self.nexthop, &self.server.name) {
            Ok(Some(c)) => c,
            Ok(None) => return Ok(()),
            Err(e) => {
                maillog::warning!("{}", maillog::printable(&e, 300));
                return Err(Outcome::defer("4.7.0", "SASL configuration error"));
            }
        };
        if f.auth.is_empty() {
            return Ok(());
        }
        let failed = |why: String| {
            Outcome::defer(
                "4.7.0",
                format!(
                    "SASL authentication failed; cannot authenticate to server {}: {why}",
                    self.server.namaddr()
                ),
            )
        };
        let usable = conn.tls_summary().is_some() || client.plaintext_without_tls;
        let Some(mech) = crate::sasl::choose(&f.auth).filter(|_| usable) else {
            return Err(failed("no mechanism available".into()));
        };
        let stage = "performing the SASL authentication";
        let t = self.s.helo_timeout;
        let said = |r: &Reply| {
            Outcome::defer(
                "4.7.0",
                format!(
                    "SASL authentication failed; server {} said: {}",
                    self.server.namaddr(),
                    maillog::printable(&r.text(), 400)
                ),
            )
        };
        let mut r = if mech == "PLAIN" {
            self.command(
                conn,
                &format!("AUTH PLAIN {}", crate::sasl::plain(&creds)),
                t,
                stage,
            )?
        } else {
            let r = self.command(conn, "AUTH LOGIN", t, stage)?;
            if r.code != 334 {
                return Err(said(&r));
            }
            let r = self.command(conn, &crate::sasl::encode(&creds.user), t, stage)?;
            if r.code != 334 {
                return Err(said(&r));
            }
            self.command(conn, &crate::sasl::encode(&creds.password), t, stage)?
        };
        if r.code == 334 {
            // A challenge we do not expect: cancel the exchange.
            r = self.command(conn, "*", t, stage)?;
        }
        if r.class() == 2 {
            Ok(())
        } else {
            Err(said(&r))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mechanisms_and_encodings() {
        let offered = vec!["login".to_string(), "PLAIN".to_string(), "CRAM-MD5".into()];
        assert_eq!(choose(&offered), Some("PLAIN"));
        assert_eq!(choose(&["LOGIN".to_string()]), Some("LOGIN"));
        assert_eq!(choose(&["CRAM-MD5".to_string()]), None);
        let c = Credentials {
            user: "u".into(),
            password: "p w".into(),
        };
        assert_eq!(plain(&c), "AHUAcCB3");
        assert_eq!(encode("u"), "dQ==");
    }

    #[test]
    fn credentials_by_nexthop_then_host() {
        let c = Client::load(
            "inline:{ [relay.test]:587=alice:secret, mx.test=bob:pw:with:colons }",
            "noplaintext, noanonymous",
        );
        assert!(!c.plaintext_without_tls);
        assert_eq!(
            c.credentials("[relay.test]:587", "relay.test").unwrap(),
            Some(Credentials {
                user: "alice".into(),
                password: "secret".into()
            })
        );
        assert_eq!(
            c.credentials("other.test", "mx.test")
                .unwrap()
                .unwrap()
                .password,
            "pw:with:colons"
        );
        assert_eq!(c.credentials("x.test", "y.test").unwrap(), None);
        assert!(Client::load("", "noanonymous").plaintext_without_tls);
    }
}
