//! mysql: tables (mysql_table(5)) on the `mysql` crate (pure Rust, no
//! tokio), for MySQL and MariaDB.
//!
//! `hosts` entries: `inet:host:port`, `host:port`, `host` (TCP, port
//! 3306), `unix:/path/to/socket`. `user`, `password` and `dbname` as in
//! Postfix. Values are quoted as mysql_real_escape_string does (`\0`,
//! `\n`, `\r`, `\\`, `'`, `"` and `^Z` get a backslash).
//!
//! TLS (rustls) as Postfix's client turns it on: when `tls_CAfile` is set
//! the server's certificate must chain to it, and with `tls_verify_cert =
//! yes` also name the host; `tls_verify_cert = yes` alone checks against
//! the built-in roots.

use std::time::Duration;

use mysql::prelude::Queryable;

use crate::cf::Cf;
use crate::sql::{Driver, Row, SqlTable};

/// How long connecting to or reading from one host may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The MySQL client settings from the configuration file.
pub(crate) struct Mysql {
    user: String,
    password: String,
    dbname: String,
    tls: Option<mysql::SslOpts>,
}

/// Opens a mysql: table from its configuration file.
pub(crate) fn open(path: &str) -> Result<SqlTable<Mysql>, String> {
    let cf = Cf::read(path)?;
    let ca = cf.str("tls_CAfile", "");
    let verify = cf.bool("tls_verify_cert", false)?;
    let tls = (!ca.is_empty() || verify).then(|| {
        let opts = mysql::SslOpts::default().with_danger_skip_domain_validation(!verify);
        if ca.is_empty() {
            opts
        } else {
            opts.with_root_cert_path(Some(std::path::PathBuf::from(ca)))
        }
    });
    let driver = Mysql {
        user: cf.str("user", ""),
        password: cf.str("password", ""),
        dbname: cf.str("dbname", ""),
        tls,
    };
    if driver.dbname.is_empty() {
        return Err(format!("{path}: missing dbname"));
    }
    SqlTable::open(driver, path, "localhost")
}

impl Mysql {
    fn opts(&self, host: &str) -> Result<mysql::OptsBuilder, String> {
        let mut o = mysql::OptsBuilder::new()
            .user((!self.user.is_empty()).then(|| self.user.clone()))
            .pass((!self.password.is_empty()).then(|| self.password.clone()))
            .db_name(Some(self.dbname.clone()))
            .tcp_connect_timeout(Some(TIMEOUT))
            .read_timeout(Some(TIMEOUT))
            .write_timeout(Some(TIMEOUT))
            .prefer_socket(false)
            .ssl_opts(self.tls.clone());
        if let Some(path) = host.strip_prefix("unix:") {
            return Ok(o.socket(Some(path)));
        }
        let name = host.strip_prefix("inet:").unwrap_or(host);
        match name.rsplit_once(':') {
            Some((h, p)) => {
                let port: u16 = p.parse().map_err(|_| format!("{host}: bad port"))?;
                o = o.ip_or_hostname(Some(h)).tcp_port(port);
            }
            None => o = o.ip_or_hostname(Some(name)),
        }
        Ok(o)
    }
}

impl Driver for Mysql {
    type Conn = mysql::Conn;

    fn connect(&self, host: &str) -> Result<mysql::Conn, String> {
        mysql::Conn::new(self.opts(host)?)
            .map_err(|e| format!("cannot connect to MySQL server {host}: {e}"))
    }

    fn query(&self, conn: &mut mysql::Conn, sql: &str) -> Result<Vec<Row>, String> {
        let rows: Vec<mysql::Row> = conn.query(sql).map_err(|e| e.to_string())?;
        Ok(rows
            .into_iter()
            .map(|r| {
                r.unwrap()
                    .into_iter()
                    .map(|v| match v {
                        mysql::Value::NULL => None,
                        mysql::Value::Bytes(b) => Some(String::from_utf8_lossy(&b).into_owned()),
                        other => Some(other.as_sql(true).trim_matches('\'').to_string()),
                    })
                    .collect()
            })
            .collect())
    }

    fn quote(&self, value: &str) -> String {
        let mut out = String::with_capacity(value.len());
        for c in value.chars() {
            match c {
                '\0' => out.push_str("\\0"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\\' => out.push_str("\\\\"),
                '\'' => out.push_str("\\'"),
                '"' => out.push_str("\\\""),
                '\x1a' => out.push_str("\\Z"),
                c => out.push(c),
            }
        }
        out
    }

    fn type_name(&self) -> &'static str {
        "mysql"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_and_hosts() {
        let m = Mysql {
            user: String::new(),
            password: String::new(),
            dbname: "mail".into(),
            tls: None,
        };
        assert_eq!(m.quote("x'; DROP\\ \"t\""), "x\\'; DROP\\\\ \\\"t\\\"");
        assert!(m.opts("inet:127.0.0.1:3307").is_ok());
        assert!(m.opts("unix:/run/mysqld/mysqld.sock").is_ok());
        assert!(m.opts("h:xx").is_err());
    }
}
