//! ldap: tables (ldap_table(5)) on the `ldap3` crate's synchronous
//! connection (LDAP version 3; TLS by rustls with the ring provider).
//!
//! Parameters: server_host (names or `ldap://`, `ldaps://`, `ldapi://`
//! URLs, tried in turn), server_port, search_base, query_filter,
//! result_attribute, special_result_attribute (attributes holding DNs
//! whose entries are searched in turn, up to recursion_limit deep),
//! terminal_result_attribute, leaf_result_attribute, result_format,
//! domain, expansion_limit, size_limit, dereference, scope (sub, one,
//! base), bind (yes, no), bind_dn, bind_pw, timeout, version (3; 2 is
//! taken as 3), start_tls, tls_ca_cert_file. `%`
//! expansions in query_filter and search_base are escaped as RFC 4515
//! requires (`*`, `(`, `)`, `\`, NUL).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ldap3::{DerefAliases, LdapConn, LdapConnSettings, Scope, SearchEntry, SearchOptions};

use crate::cf::Cf;
use crate::expand::Ctx;

/// An ldap: table.
pub(crate) struct LdapTable {
    name: String,
    hosts: Vec<String>,
    search_base: String,
    filter: String,
    result_attributes: Vec<String>,
    special_attributes: Vec<String>,
    terminal_attributes: Vec<String>,
    leaf_attributes: Vec<String>,
    result_format: String,
    size_limit: i32,
    dereference: DerefAliases,
    expansion_limit: usize,
    recursion_limit: usize,
    scope: Scope,
    bind: Option<(String, String)>,
    timeout: Duration,
    start_tls: bool,
    tls: Option<Arc<rustls::ClientConfig>>,
    ctx: Ctx,
    conn: Mutex<Option<LdapConn>>,
}

/// Opens an ldap: table from its configuration file.
pub(crate) fn open(path: &str) -> Result<LdapTable, String> {
    let cf = Cf::read(path)?;
    let port = cf.int("server_port", 389)?;
    let hosts: Vec<String> = {
        let mut h = cf.list("server_host");
        if h.is_empty() {
            h.push("localhost".into());
        }
        h.into_iter()
            .map(|h| {
                if h.contains("://") {
                    h
                } else if h.contains(':') {
                    format!("ldap://{h}")
                } else {
                    format!("ldap://{h}:{port}")
                }
            })
            .collect()
    };
    let filter = cf.str("query_filter", "(mailacceptinggeneralid=%s)");
    let search_base = cf.str("search_base", "");
    let result_format = cf.str("result_format", "%s");
    let mut ctx = Ctx::default();
    ctx.parse(path, &filter, true)?;
    ctx.parse(path, &search_base, true)?;
    ctx.parse(path, &result_format, false)?;
    ctx.set_domain(path, &cf.str("domain", ""))?;
    let scope = match cf.str("scope", "sub").to_ascii_lowercase().as_str() {
        "sub" => Scope::Subtree,
        "one" => Scope::OneLevel,
        "base" => Scope::Base,
        s => return Err(format!("{path}: unrecognized scope: {s}")),
    };
    let bind = match cf.str("bind", "yes").to_ascii_lowercase().as_str() {
        "yes" | "true" | "1" | "simple" => Some((cf.str("bind_dn", ""), cf.str("bind_pw", ""))),
        "no" | "false" | "0" | "none" => None,
        b => return Err(format!("{path}: unsupported bind type: {b}")),
    };
    let expansion_limit = usize::try_from(cf.int("expansion_limit", 0)?.max(0)).unwrap_or(0);
    let size_limit = i32::try_from(
        cf.int("size_limit", i64::try_from(expansion_limit).unwrap_or(0))?
            .max(0),
    )
    .unwrap_or(i32::MAX);
    let dereference = match cf.int("dereference", 0)? {
        0 => DerefAliases::Never,
        1 => DerefAliases::Searching,
        2 => DerefAliases::Finding,
        3 => DerefAliases::Always,
        d => return Err(format!("{path}: unrecognized dereference: {d}")),
    };
    let version = cf.int("version", 2)?;
    if !(2..=3).contains(&version) {
        return Err(format!("{path}: unsupported LDAP version: {version}"));
    }
    let ca = cf.str("tls_ca_cert_file", "");
    let tls = if ca.is_empty() {
        None
    } else {
        Some(tls_config(&ca)?)
    };
    let list = |k: &str, d: &str| -> Vec<String> {
        if cf.has(k) {
            cf.list(k)
        } else {
            vec![d.to_string()]
        }
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect()
    };
    let nonneg = |k: &str, d: i64| -> Result<u64, String> {
        Ok(u64::try_from(cf.int(k, d)?.max(0)).unwrap_or(0))
    };
    Ok(LdapTable {
        name: path.to_string(),
        hosts,
        search_base,
        filter,
        result_attributes: list("result_attribute", "maildrop"),
        special_attributes: list("special_result_attribute", ""),
        terminal_attributes: list("terminal_result_attribute", ""),
        leaf_attributes: list("leaf_result_attribute", ""),
        result_format,
        size_limit,
        dereference,
        expansion_limit,
        recursion_limit: usize::try_from(nonneg("recursion_limit", 1000)?).unwrap_or(1000),
        scope,
        bind,
        timeout: Duration::from_secs(nonneg("timeout", 10)?.max(1)),
        start_tls: cf.bool("start_tls", false)?,
        tls,
        ctx,
        conn: Mutex::new(None),
    })
}

/// A rustls client configuration trusting the CAs in `path`.
fn tls_config(path: &str) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| format!("{path}: {e}"))? {
        let cert = cert.map_err(|e| format!("{path}: {e}"))?;
        roots.add(cert).map_err(|e| format!("{path}: {e}"))?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// RFC 4515 escaping for values inside a filter.
fn quote(s: &str) -> String {
    ldap3::ldap_escape(s).into_owned()
}

impl LdapTable {
    fn connect(&self, url: &str) -> Result<LdapConn, String> {
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(self.timeout)
            .set_starttls(self.start_tls);
        if let Some(c) = &self.tls {
            settings = settings.set_config(Arc::clone(c));
        }
        let mut conn = LdapConn::with_settings(settings, url)
            .map_err(|e| format!("cannot connect to LDAP server {url}: {e}"))?;
        if let Some((dn, pw)) = &self.bind {
            conn.with_timeout(self.timeout)
                .simple_bind(dn, pw)
                .and_then(|r| r.success())
                .map_err(|e| format!("{url}: bind {dn}: {e}"))?;
        }
        Ok(conn)
    }

    /// One search: the entries' attributes by lowercased name.
    fn search(
        &self,
        conn: &mut LdapConn,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[String],
    ) -> Result<Vec<HashMap<String, Vec<String>>>, String> {
        let (entries, _) = conn
            .with_timeout(self.timeout)
            .with_search_options(
                SearchOptions::new()
                    .sizelimit(self.size_limit)
                    .deref(self.dereference),
            )
            .search(base, scope, filter, attrs.to_vec())
            .and_then(|r| r.success())
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for e in entries {
            // ldap3 panics on a malformed entry: a broken server must not
            // take proxymap down.
            let entry = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                SearchEntry::construct(e)
            }))
            .map_err(|_| "malformed search result entry".to_string())?;
            out.push(
                entry
                    .attrs
                    .into_iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), v))
                    .collect(),
            );
        }
        Ok(out)
    }

    /// Collects the result values of `entries`, following special
    /// attributes' DNs.
    fn collect(
        &self,
        conn: &mut LdapConn,
        entries: Vec<HashMap<String, Vec<String>>>,
        depth: usize,
        values: &mut Vec<String>,
    ) -> Result<(), String> {
        let attrs: Vec<String> = self
            .result_attributes
            .iter()
            .chain(&self.special_attributes)
            .chain(&self.terminal_attributes)
            .chain(&self.leaf_attributes)
            .cloned()
            .collect();
        for entry in entries {
            let get = |a: &String| entry.get(&a.to_ascii_lowercase());
            let terminal: Vec<&String> = self
                .terminal_attributes
                .iter()
                .filter_map(get)
                .flatten()
                .collect();
            if !terminal.is_empty() {
                values.extend(terminal.into_iter().cloned());
                continue;
            }
            values.extend(
                self.result_attributes
                    .iter()
                    .filter_map(get)
                    .flatten()
                    .cloned(),
            );
            let special: Vec<&String> = self
                .special_attributes
                .iter()
                .filter_map(get)
                .flatten()
                .collect();
            // Leaf attributes count only in entries that refer to no others.
            if special.is_empty() {
                values.extend(
                    self.leaf_attributes
                        .iter()
                        .filter_map(get)
                        .flatten()
                        .cloned(),
                );
            }
            for dn in special {
                if depth >= self.recursion_limit {
                    return Err(format!("{}: recursion limit exceeded", self.name));
                }
                let sub = self.search(conn, dn, Scope::Base, "(objectClass=*)", &attrs)?;
                self.collect(conn, sub, depth + 1, values)?;
            }
        }
        Ok(())
    }

    fn query(&self, conn: &mut LdapConn, key: &str) -> Result<Option<String>, String> {
        let mut filter = String::new();
        if !self
            .ctx
            .expand(&self.filter, key, None, &mut filter, &quote)
        {
            return Ok(None);
        }
        let mut base = String::new();
        if !self.search_base.is_empty()
            && !self
                .ctx
                .expand(&self.search_base, key, None, &mut base, &quote)
        {
            return Ok(None);
        }
        let attrs: Vec<String> = self
            .result_attributes
            .iter()
            .chain(&self.special_attributes)
            .chain(&self.terminal_attributes)
            .chain(&self.leaf_attributes)
            .cloned()
            .collect();
        let entries = self.search(conn, &base, self.scope, &filter, &attrs)?;
        let mut values = Vec::new();
        self.collect(conn, entries, 0, &mut values)?;
        let mut out = String::new();
        let mut count = 0usize;
        for v in &values {
            if self
                .ctx
                .expand(&self.result_format, v, Some(key), &mut out, &|s| {
                    s.to_string()
                })
            {
                count += 1;
                if self.expansion_limit > 0 && count > self.expansion_limit {
                    return Err(format!(
                        "{}: Expansion limit exceeded for key: '{key}'",
                        self.name
                    ));
                }
            }
        }
        Ok((!out.is_empty()).then_some(out))
    }

    /// Looks `key` up: `Ok(None)` for not found, `Err` for a temporary
    /// failure (no server, a search that fails).
    pub(crate) fn lookup(&self, key: &str) -> Result<Option<String>, String> {
        if key.contains('\0') || !self.ctx.check_domain(key)? {
            return Ok(None);
        }
        let mut guard = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        // A kept connection that fails gets one fresh try per server.
        if let Some(conn) = guard.as_mut() {
            match self.query(conn, key) {
                Ok(r) => return Ok(r),
                Err(e) => {
                    maillog::warning!("ldap:{}: {e}; reconnecting", self.name);
                    *guard = None;
                }
            }
        }
        let mut last = String::from("no LDAP server");
        for url in &self.hosts {
            let mut conn = match self.connect(url) {
                Ok(c) => c,
                Err(e) => {
                    maillog::warning!("ldap:{}: {e}", self.name);
                    last = e;
                    continue;
                }
            };
            match self.query(&mut conn, key) {
                Ok(r) => {
                    *guard = Some(conn);
                    return Ok(r);
                }
                Err(e) => {
                    maillog::warning!("ldap:{}: {url}: {e}", self.name);
                    last = e;
                }
            }
        }
        Err(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_and_filter_quoting() {
        let dir = tempfile::tempdir().unwrap();
        let cf = dir.path().join("l.cf");
        std::fs::write(
            &cf,
            "server_host = h1 ldap://h2:1389\nsearch_base = dc=example,dc=test\nscope = one\nversion = 3\n",
        )
        .unwrap();
        let t = open(cf.to_str().unwrap()).unwrap();
        assert_eq!(t.hosts, ["ldap://h1:389", "ldap://h2:1389"]);
        assert_eq!(t.result_attributes, ["maildrop"]);
        assert!(t.special_attributes.is_empty());
        assert_eq!(quote("a*(b)\\"), "a\\2a\\28b\\29\\5c");
        std::fs::write(&cf, "scope = deep\n").unwrap();
        assert!(open(cf.to_str().unwrap()).is_err());
    }
}
