//! What pgsql: and mysql: tables share: the configuration file
//! (pgsql_table(5), mysql_table(5)), the query built from `query` or from
//! the old `select_field`/`table`/`where_field` form, hosts tried in
//! turn with a failed host skipped for retry_interval seconds, one kept
//! connection re-established when it breaks (a database restart), and the
//! result assembled from every column of every row through
//! result_format, up to expansion_limit values.
//!
//! Every lookup answers found, not found, or a temporary failure (no host
//! reachable, a query that fails, too many results): never "not found"
//! because a database was down.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::cf::Cf;
use crate::expand::Ctx;

/// One row: its columns, `None` for NULL.
pub(crate) type Row = Vec<Option<String>>;

/// A database client: how to connect to one host and run one query.
pub(crate) trait Driver: Send + Sync {
    /// An open connection.
    type Conn: Send;

    /// Connects to `host` as written in `hosts` (after `inet:`/`unix:`
    /// handling is the driver's).
    fn connect(&self, host: &str) -> Result<Self::Conn, String>;

    /// Runs `sql`; an error leaves the connection suspect (it is dropped).
    fn query(&self, conn: &mut Self::Conn, sql: &str) -> Result<Vec<Row>, String>;

    /// Quotes a value for use inside `'...'` in a query.
    fn quote(&self, value: &str) -> String;

    /// The type name (`pgsql`), for messages.
    fn type_name(&self) -> &'static str;
}

struct Host<C> {
    name: String,
    conn: Option<(C, Instant)>,
    /// Skip this host until then.
    down_until: Option<Instant>,
}

/// A pgsql: or mysql: table.
pub(crate) struct SqlTable<D: Driver> {
    name: String,
    driver: D,
    query: String,
    result_format: String,
    expansion_limit: usize,
    retry_interval: Duration,
    idle_interval: Duration,
    ctx: Ctx,
    hosts: Mutex<Vec<Host<D::Conn>>>,
}

impl<D: Driver> std::fmt::Debug for SqlTable<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.driver.type_name(), self.name)
    }
}

/// The old-style query: `SELECT select_field FROM table WHERE where_field
/// = '%s' additional_conditions`.
fn old_style_query(cf: &Cf) -> Result<String, String> {
    let need = |k: &str| {
        let v = cf.str(k, "");
        if v.is_empty() {
            Err(format!("{}: '{k}' parameter not defined", cf.name))
        } else {
            Ok(v)
        }
    };
    let table = need("table")?;
    let select = need("select_field")?;
    let wher = need("where_field")?;
    let extra = cf.str("additional_conditions", "");
    Ok(
        format!("SELECT {select} FROM {table} WHERE {wher} = '%s' {extra}")
            .trim_end()
            .to_string(),
    )
}

impl<D: Driver> SqlTable<D> {
    /// Reads the configuration file; connects at the first lookup.
    pub(crate) fn open(driver: D, path: &str, default_host: &str) -> Result<SqlTable<D>, String> {
        let cf = Cf::read(path)?;
        let query = if cf.has("query") {
            cf.str("query", "")
        } else {
            old_style_query(&cf)?
        };
        let result_format = cf.str("result_format", "%s");
        let mut ctx = Ctx::default();
        ctx.parse(path, &query, true)?;
        ctx.parse(path, &result_format, false)?;
        ctx.set_domain(path, &cf.str("domain", ""))?;
        let mut names = cf.list("hosts");
        if names.is_empty() {
            names.push(default_host.to_string());
        }
        let secs = |k: &str, d: i64| -> Result<Duration, String> {
            Ok(Duration::from_secs(
                u64::try_from(cf.int(k, d)?.max(0)).unwrap_or(0),
            ))
        };
        let expansion_limit = usize::try_from(cf.int("expansion_limit", 0)?.max(0)).unwrap_or(0);
        Ok(SqlTable {
            name: path.to_string(),
            query,
            result_format,
            expansion_limit,
            retry_interval: secs("retry_interval", 60)?,
            idle_interval: secs("idle_interval", 60)?,
            ctx,
            hosts: Mutex::new(
                names
                    .into_iter()
                    .map(|name| Host {
                        name,
                        conn: None,
                        down_until: None,
                    })
                    .collect(),
            ),
            driver,
        })
    }

    /// Looks `key` up: `Ok(None)` for not found, `Err` for a temporary
    /// failure (logged here with the reason).
    pub(crate) fn lookup(&self, key: &str) -> Result<Option<String>, String> {
        if key.contains('\0') || !self.ctx.check_domain(key)? {
            return Ok(None);
        }
        let quote = |s: &str| self.driver.quote(s);
        let mut sql = String::new();
        if !self.ctx.expand(&self.query, key, None, &mut sql, &quote) {
            return Ok(None);
        }
        let rows = self.run(&sql)?;
        let mut out = String::new();
        let mut count = 0usize;
        for value in rows.iter().flatten().flatten() {
            if self
                .ctx
                .expand(&self.result_format, value, Some(key), &mut out, &quote_none)
            {
                count += 1;
                if self.expansion_limit > 0 && count > self.expansion_limit {
                    let e = format!("{}: Expansion limit exceeded for key: '{key}'", self.name);
                    maillog::warning!("{e}");
                    return Err(e);
                }
            }
        }
        Ok((!out.is_empty()).then_some(out))
    }

    /// Runs `sql` on the first host that answers.
    fn run(&self, sql: &str) -> Result<Vec<Row>, String> {
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let mut last_error = String::from("no database host available");
        let all_down = hosts.iter().all(|h| h.down_until.is_some_and(|t| t > now));
        for h in hosts.iter_mut() {
            // When every host is resting, try them all anyway: a database
            // back after a restart answers the next lookup.
            if !all_down && h.down_until.is_some_and(|t| t > now) {
                continue;
            }
            if let Some((_, used)) = &h.conn
                && now.duration_since(*used) > self.idle_interval
            {
                h.conn = None;
            }
            // A kept connection that fails gets one fresh try (the server
            // restarted); a fresh one that fails marks the host down.
            for _ in 0..2 {
                let fresh = h.conn.is_none();
                let mut conn = match h.conn.take() {
                    Some((c, _)) => c,
                    None => match self.driver.connect(&h.name) {
                        Ok(c) => c,
                        Err(e) => {
                            last_error = e;
                            break;
                        }
                    },
                };
                match self.driver.query(&mut conn, sql) {
                    Ok(rows) => {
                        h.conn = Some((conn, Instant::now()));
                        h.down_until = None;
                        return Ok(rows);
                    }
                    Err(e) => {
                        last_error = e;
                        if fresh {
                            break;
                        }
                    }
                }
            }
            maillog::warning!(
                "{}:{}: host {}: {last_error}",
                self.driver.type_name(),
                self.name,
                h.name
            );
            h.down_until = Some(now + self.retry_interval);
        }
        Err(last_error)
    }
}

/// Result values are not quoted.
fn quote_none(s: &str) -> String {
    s.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake database: keys in a map, or down.
    struct Fake {
        down: std::sync::Arc<std::sync::atomic::AtomicBool>,
    }

    impl Driver for Fake {
        type Conn = ();
        fn connect(&self, host: &str) -> Result<(), String> {
            if host == "bad" || self.down.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(format!("cannot connect to {host}"));
            }
            Ok(())
        }
        fn query(&self, _c: &mut (), sql: &str) -> Result<Vec<Row>, String> {
            if self.down.load(std::sync::atomic::Ordering::SeqCst) {
                return Err("connection closed".into());
            }
            Ok(match sql {
                "k='a@x.test'" => vec![vec![Some("one".into()), None], vec![Some("two".into())]],
                _ => vec![],
            })
        }
        fn quote(&self, v: &str) -> String {
            v.replace('\'', "''")
        }
        fn type_name(&self) -> &'static str {
            "fake"
        }
    }

    #[test]
    fn hosts_in_turn_results_joined_and_failures_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let cf = dir.path().join("t.cf");
        std::fs::write(
            &cf,
            "hosts = bad good\nquery = k='%s'\nresult_format = <%s>\nretry_interval = 0\n",
        )
        .unwrap();
        let down = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let t = SqlTable::open(
            Fake { down: down.clone() },
            cf.to_str().unwrap(),
            "localhost",
        )
        .unwrap();
        assert_eq!(
            t.lookup("a@x.test").unwrap().as_deref(),
            Some("<one>,<two>")
        );
        assert_eq!(t.lookup("b@x.test").unwrap(), None);
        down.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(t.lookup("a@x.test").is_err(), "down is not 'not found'");
        down.store(false, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(
            t.lookup("a@x.test").unwrap().as_deref(),
            Some("<one>,<two>")
        );

        std::fs::write(&cf, "query = k='%s'\nexpansion_limit = 1\n").unwrap();
        let t = SqlTable::open(Fake { down }, cf.to_str().unwrap(), "localhost").unwrap();
        assert!(t.lookup("a@x.test").is_err());
    }

    #[test]
    fn old_style_queries() {
        let cf = Cf::parse(
            "t.cf",
            "table = mailbox\nselect_field = maildir\nwhere_field = username\nadditional_conditions = and active = '1'\n",
        )
        .unwrap();
        assert_eq!(
            old_style_query(&cf).unwrap(),
            "SELECT maildir FROM mailbox WHERE username = '%s' and active = '1'"
        );
        let cf = Cf::parse("t.cf", "table = x\n").unwrap();
        assert!(old_style_query(&cf).is_err());
    }
}
