//! newaliases - rebuild the alias databases (Sendmail compatibility)
//!
//! # Synopsis
//!
//! `newaliases [-C config_dir] [-v]`
//!
//! # Description
//!
//! The same program as sendmail(1) in `-bi` mode: it runs
//! command_directory/postalias with every alias_database entry as an
//! argument (nothing to do when alias_database is empty).
//!
//! # Talks to
//!
//! Execs postalias(1).
//!
//! # Security
//!
//! Runs as the calling user, who must be allowed to write the databases.
//!
//! # Diagnostics
//!
//! `newaliases: fatal: ...` on stderr; exit 69 when postalias cannot be
//! run, otherwise postalias's exit status.
//!
//! # Configuration parameters
//!
//! - alias_database (hash:/etc/aliases): the databases to rebuild.
//! - command_directory (/usr/sbin): where postalias is.
//!
//! # See also
//!
//! sendmail(1), postalias(1), aliases(5).

fn main() {
    sendmail::main(sendmail::Mode::NewAliases)
}
