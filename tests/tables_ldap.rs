//! ldap: tables against a private slapd.
