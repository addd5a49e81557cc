//! The tables proxymap has open, shared by all its clients, and the
//! approval rule: an explicit `proxy:type:name` table must be listed (with
//! `proxy:`) in proxy_read_maps (proxy_write_maps for proxywrite), as in
//! Postfix; a database type named directly in main.cf (`pgsql:/x.cf`,
//! which this suite always looks up here) is allowed without, since the
//! process that names it could open it itself in Postfix.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tables::proxy::{Reply, Request};

/// An open table of any kind.
pub(crate) enum Open {
    /// A table the tables library opens (hash:, regexp:, ...).
    Plain(Box<tables::Table>),
    /// pgsql:
    Pgsql(Box<crate::sql::SqlTable<crate::pgsql::Pgsql>>),
    /// mysql:
    Mysql(Box<crate::sql::SqlTable<crate::mysql::Mysql>>),
    /// ldap:
    Ldap(Box<crate::ldap::LdapTable>),
}

impl Open {
    fn lookup(&self, key: &str) -> Result<Option<String>, String> {
        match self {
            Open::Plain(t) => t.lookup(key).map_err(|e| e.to_string()),
            Open::Pgsql(t) => t.lookup(key),
            Open::Mysql(t) => t.lookup(key),
            Open::Ldap(t) => t.lookup(key),
        }
    }
}

/// Opens `spec` (no `proxy:`) here.
fn open(spec: &str, fold_case: bool) -> Result<Open, String> {
    let (type_name, name) = tables::split_spec(spec).map_err(|e| e.to_string())?;
    Ok(match type_name {
        "pgsql" => Open::Pgsql(Box::new(crate::pgsql::open(name)?)),
        "mysql" => Open::Mysql(Box::new(crate::mysql::open(name)?)),
        "ldap" => Open::Ldap(Box::new(crate::ldap::open(name)?)),
        "proxy" => return Err(format!("{spec}: nested proxy: table")),
        _ => {
            let t = tables::open(spec, tables::Flags { fold_case }).map_err(|e| e.to_string())?;
            for w in t.warnings() {
                maillog::warning!("{w}");
            }
            Open::Plain(Box::new(t))
        }
    })
}

/// The open tables and the approved list.
pub(crate) struct Registry {
    approved: Vec<String>,
    /// The parameter that approves tables, for the refusal message.
    param: &'static str,
    access: &'static str,
    tables: Mutex<HashMap<(String, bool), Arc<Open>>>,
}

impl Registry {
    /// A registry approving the `proxy:` tables in `list` (the value of
    /// `param`).
    pub(crate) fn new(list: &str, param: &'static str) -> Registry {
        Registry {
            approved: tables::proxy::approved(list),
            param,
            access: if param == "proxy_write_maps" {
                "read-write"
            } else {
                "read-only"
            },
            tables: Mutex::new(HashMap::new()),
        }
    }

    /// Finds or opens a table, applying the approval rule.
    fn find(&self, table: &str, explicit: bool, fold_case: bool) -> Result<Arc<Open>, Reply> {
        let table = tables::proxy::strip_proxy(table);
        if tables::split_spec(table).is_err() {
            return Err(Reply::Bad(format!("bad table name \"{table}\"")));
        }
        let database = tables::split_spec(table)
            .is_ok_and(|(t, _)| tables::proxy::DATABASE_TYPES.contains(&t));
        if (explicit || !database) && !self.approved.iter().any(|a| a == table) {
            maillog::warning!("request for unapproved table: \"{table}\"");
            maillog::warning!(
                "to approve this table for {} access, list proxy:{table} in main.cf:{}",
                self.access,
                self.param
            );
            return Err(Reply::Deny);
        }
        let key = (table.to_string(), fold_case);
        let mut map = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = map.get(&key) {
            return Ok(Arc::clone(t));
        }
        match open(table, fold_case) {
            Ok(t) => {
                let t = Arc::new(t);
                map.insert(key, Arc::clone(&t));
                Ok(t)
            }
            Err(e) => {
                maillog::warning!("open {table}: {e}");
                Err(Reply::Bad(e))
            }
        }
    }

    /// Answers one request.
    pub(crate) fn handle(&self, req: &Request) -> Reply {
        match req {
            Request::Open {
                table,
                explicit,
                fold_case,
            } => match self.find(table, *explicit, *fold_case) {
                Ok(_) => Reply::Ok(String::new()),
                Err(r) => r,
            },
            Request::Lookup {
                table,
                explicit,
                fold_case,
                key,
            } => {
                let t = match self.find(table, *explicit, *fold_case) {
                    Ok(t) => t,
                    Err(r) => return r,
                };
                match t.lookup(key) {
                    Ok(Some(v)) => Reply::Ok(v),
                    Ok(None) => Reply::NotFound,
                    Err(e) => {
                        maillog::warning!("{table}: lookup of \"{key}\" failed: {e}");
                        Reply::Temp(e)
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approval_and_lookups() {
        let r = Registry::new("proxy:inline:{a=1} $x hash:/b", "proxy_read_maps");
        let ask = |table: &str, explicit: bool, key: &str| {
            r.handle(&Request::Lookup {
                table: table.into(),
                explicit,
                fold_case: true,
                key: key.into(),
            })
        };
        assert_eq!(ask("inline:{a=1}", true, "a"), Reply::Ok("1".into()));
        assert_eq!(ask("proxy:inline:{a=1}", true, "b"), Reply::NotFound);
        assert_eq!(ask("inline:{a=2}", true, "a"), Reply::Deny);
        assert_eq!(
            ask("hash:/b", true, "a"),
            Reply::Deny,
            "listed without proxy:"
        );
        // A database type named directly needs no approval, but must open.
        assert!(matches!(
            ask("pgsql:/nonexistent.cf", false, "a"),
            Reply::Bad(_)
        ));
        assert_eq!(ask("pgsql:/nonexistent.cf", true, "a"), Reply::Deny);
        assert!(matches!(ask("nocolon", true, "a"), Reply::Bad(_)));
    }
}
