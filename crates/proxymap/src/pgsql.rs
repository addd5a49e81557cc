//! pgsql: tables (pgsql_table(5)) on the `postgres` crate, the synchronous
//! client over tokio-postgres (each connection runs a private tokio
//! runtime, which is why it lives in proxymap alone).
//!
//! `hosts` entries: `inet:host:port`, `host:port`, `host` (TCP, port
//! 5432), `unix:/directory` or `/directory` (the socket directory, as
//! libpq reads it), or a `postgresql://` URI. `user`, `password` and
//! `dbname` apply to the non-URI forms; a URI may ask for TLS with libpq's
//! `sslmode` and `sslrootcert` ([`crate::pgtls`]). Values are quoted by doubling `'`,
//! with standard_conforming_strings turned on for the session so that a
//! backslash is an ordinary character (PQescapeStringConn's rule).

use std::str::FromStr;
use std::time::Duration;

use crate::cf::Cf;
use crate::pgtls::Tls;
use crate::sql::{Driver, Row, SqlTable};

/// How long connecting to one host may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The PostgreSQL client settings from the configuration file.
pub(crate) struct Pgsql {
    user: String,
    password: String,
    dbname: String,
}

/// Opens a pgsql: table from its configuration file.
pub(crate) fn open(path: &str) -> Result<SqlTable<Pgsql>, String> {
    let cf = Cf::read(path)?;
    let driver = Pgsql {
        user: cf.str("user", ""),
        password: cf.str("password", ""),
        dbname: cf.str("dbname", ""),
    };
    if driver.dbname.is_empty()
        && !cf
            .list("hosts")
            .iter()
            .any(|h| h.starts_with("postgresql:") || h.starts_with("postgres:"))
    {
        return Err(format!("{path}: missing dbname"));
    }
    SqlTable::open(driver, path, "localhost")
}

impl Pgsql {
    fn config(&self, host: &str) -> Result<(postgres::Config, Tls), String> {
        if host.starts_with("postgresql:") || host.starts_with("postgres:") {
            let (uri, tls) = crate::pgtls::split_uri(host)?;
            let mut c = postgres::Config::from_str(&uri).map_err(|e| format!("{host}: {e}"))?;
            c.ssl_mode(match tls {
                Tls::Off => postgres::config::SslMode::Disable,
                Tls::Unverified { required: false } => postgres::config::SslMode::Prefer,
                _ => postgres::config::SslMode::Require,
            });
            c.connect_timeout(CONNECT_TIMEOUT);
            if c.get_application_name().is_none() {
                c.application_name("proxymap");
            }
            return Ok((c, tls));
        }
        let mut c = postgres::Config::new();
        let name = host
            .strip_prefix("inet:")
            .or_else(|| host.strip_prefix("unix:"))
            .unwrap_or(host);
        if name.starts_with('/') {
            c.host_path(name);
        } else {
            match name.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') || h.starts_with('[') => {
                    let port: u16 = p.parse().map_err(|_| format!("{host}: bad port"))?;
                    c.host(h.trim_start_matches('[').trim_end_matches(']'));
                    c.port(port);
                }
                _ => {
                    c.host(name);
                }
            }
        }
        if !self.user.is_empty() {
            c.user(&self.user);
        }
        if !self.password.is_empty() {
            c.password(&self.password);
        }
        c.dbname(&self.dbname);
        c.connect_timeout(CONNECT_TIMEOUT);
        c.application_name("proxymap");
        // A server that vanishes mid-query (no RST) is noticed.
        c.keepalives(true);
        c.keepalives_idle(Duration::from_secs(30));
        c.ssl_mode(postgres::config::SslMode::Disable);
        Ok((c, Tls::Off))
    }
}

impl Driver for Pgsql {
    type Conn = postgres::Client;

    fn connect(&self, host: &str) -> Result<postgres::Client, String> {
        let (config, tls) = self.config(host)?;
        let connected = match tls {
            Tls::Off => config.connect(postgres::NoTls),
            tls => config.connect(tokio_postgres_rustls::MakeRustlsConnect::new(
                crate::pgtls::client_config(&tls)?,
            )),
        };
        let mut client =
            connected.map_err(|e| format!("cannot connect to PostgreSQL server {host}: {e}"))?;
        client
            .batch_execute("SET standard_conforming_strings = on")
            .map_err(|e| format!("{host}: {e}"))?;
        Ok(client)
    }

    fn query(&self, conn: &mut postgres::Client, sql: &str) -> Result<Vec<Row>, String> {
        let messages = conn.simple_query(sql).map_err(|e| e.to_string())?;
        Ok(messages
            .iter()
            .filter_map(|m| match m {
                postgres::SimpleQueryMessage::Row(r) => {
                    Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
                }
                _ => None,
            })
            .collect())
    }

    fn quote(&self, value: &str) -> String {
        value.replace('\'', "''")
    }

    fn type_name(&self) -> &'static str {
        "pgsql"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_forms() {
        let p = Pgsql {
            user: "u".into(),
            password: "p".into(),
            dbname: "mail".into(),
        };
        let c = p.config("inet:db.example:5433").unwrap().0;
        assert_eq!(c.get_ports(), [5433]);
        assert!(
            matches!(c.get_hosts()[0], postgres::config::Host::Tcp(ref h) if h == "db.example")
        );
        let c = p.config("unix:/run/postgresql").unwrap().0;
        assert!(matches!(c.get_hosts()[0], postgres::config::Host::Unix(_)));
        let c = p.config("localhost").unwrap().0;
        assert_eq!(c.get_dbname(), Some("mail"));
        assert_eq!(c.get_user(), Some("u"));
        let (c, tls) = p
            .config("postgresql://x@h:6000/other?sslmode=require")
            .unwrap();
        assert_eq!(tls, Tls::Unverified { required: true });
        assert_eq!(c.get_dbname(), Some("other"));
        assert!(p.config("h:notaport").is_err());
        assert_eq!(p.quote("x'; DROP TABLE t; --"), "x''; DROP TABLE t; --");
    }
}
