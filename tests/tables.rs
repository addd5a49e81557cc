//! Whole-system tests of tables in databases and directories (issue 13):
//! pgsql:, mysql: and ldap: tables, named directly and through proxy:,
//! served by proxymap against private PostgreSQL, MariaDB and slapd
//! servers ([`tables_db`]), with mail flowing through each table class
//! (virtual_mailbox_domains, virtual_mailbox_maps, virtual_alias_maps,
//! transport_maps, an smtpd access check, alias_maps), outages answered
//! as temporary failures (451, defer, nothing bounced) and postmap -q.
//!
//! Build first: `cargo build --bins`, then
//! `cargo test -p system-tests --test tables`. scripts/install-deps
//! installs the servers (postgresql, mariadb-server, slapd, ldap-utils).

#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub, dead_code)]

mod tables_common;
mod tables_db;
mod tables_ldap;
mod tables_mysql;
mod tables_pgsql;
mod util;
