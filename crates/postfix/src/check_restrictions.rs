//! `postfix check`: smtpd restriction lists that name a restriction or a
//! lookup table type that is not built. Each is a problem (so `postfix
//! start` refuses), naming the parameter, its place (main.cf, or the
//! master.cf service whose `-o` sets it) and the word. smtpd would
//! otherwise answer `451 4.3.5 Server configuration error` when it
//! reaches the word.

use config::Config;
use config::master_cf::Service;
use config::restrictions::{LISTS, scan_list};

/// Problems in main.cf's lists and in each smtpd service's `-o` lists.
pub(crate) fn check(config: &Config, services: &[Service]) -> Vec<String> {
    let mut problems = Vec::new();
    scan_config(
        config,
        &config.main_cf_path().display().to_string(),
        &mut problems,
    );
    let master = config.config_dir().join("master.cf");
    for s in services {
        let overrides = s.overrides();
        let touches = overrides
            .iter()
            .any(|(n, _)| LISTS.contains(&n.as_str()) || n == "smtpd_restriction_classes");
        // Each such service is checked whole, so main.cf's problems would
        // repeat under its name: only new ones are kept below.
        if s.command.rsplit('/').next() != Some("smtpd") || !touches {
            continue;
        }
        let mut c = config.clone();
        for (n, v) in &overrides {
            c.set_override(n, v);
        }
        let place = format!("{}, line {}: service {}", master.display(), s.line, s.id());
        let mut found = Vec::new();
        scan_config(&c, &place, &mut found);
        for p in found {
            if !problems.contains(&p) {
                problems.push(p);
            }
        }
    }
    problems
}

fn scan_config(config: &Config, place: &str, problems: &mut Vec<String>) {
    if !config::restrictions::relay_guarded(
        &config.str("smtpd_relay_restrictions"),
        &config.str("smtpd_recipient_restrictions"),
    ) {
        problems.push(format!(
            "{place}: parameter smtpd_relay_restrictions: specify at least one working instance of: {}",
            config::restrictions::RELAY_GUARDS.join(", ")
        ));
    }
    let classes: Vec<String> = tables::split_list(&config.str("smtpd_restriction_classes"))
        .into_iter()
        .map(str::to_string)
        .collect();
    let names = LISTS
        .iter()
        .map(|s| s.to_string())
        .chain(classes.iter().cloned());
    for name in names {
        let value = config.str(&name);
        let found = scan_list(&value, &classes);
        for w in &found.unknown {
            problems.push(format!(
                "{place}: parameter {name}: restriction \"{w}\" is not built (unknown smtpd restriction)"
            ));
        }
        for w in &found.missing_arg {
            problems.push(format!(
                "{place}: parameter {name}: restriction {w} requires an argument"
            ));
        }
        for spec in &found.tables {
            if let Some(t) = unbuilt_type(spec) {
                problems.push(format!(
                    "{place}: parameter {name}: lookup table type \"{t}\" ({spec}) is not built"
                ));
            }
        }
    }
}

/// The type of `spec` when no table of that type can be opened here.
pub(crate) fn unbuilt_type(spec: &str) -> Option<String> {
    match tables::open(spec, tables::Flags::default()) {
        Err(tables::Error::UnknownType { type_name, .. }) => Some(type_name),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_restriction_and_table_type_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config::from_text(
            dir.path(),
            "smtpd_recipient_restrictions = permit_mynetworks, reject_rhsbl_sender x.example, \
             check_sender_access sqlite:/etc/postfix/x.cf, reject_unauth_destination\n\
             smtpd_client_restrictions = check_policy_service unix:private/policy\n",
        )
        .unwrap();
        let p = check(&cfg, &[]);
        assert!(
            p.iter()
                .any(|p| p.contains("restriction \"reject_rhsbl_sender\" is not built")),
            "{p:?}"
        );
        assert!(
            p.iter().any(|p| p.contains("lookup table type \"sqlite\"")),
            "{p:?}"
        );
        assert!(!p.iter().any(|p| p.contains("policy")), "{p:?}");
        let cfg = Config::from_text(
            dir.path(),
            "smtpd_relay_restrictions = permit_mynetworks
smtpd_recipient_restrictions = permit
",
        )
        .unwrap();
        let p = check(&cfg, &[]);
        assert!(
            p.iter()
                .any(|p| p.contains("specify at least one working instance")),
            "{p:?}"
        );
    }

    #[test]
    fn master_cf_override_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("master.cf"),
            "submission inet n - n - - smtpd\n  -o smtpd_client_restrictions=permit_tls_clientcerts,reject\n",
        )
        .unwrap();
        let cfg = Config::from_text(dir.path(), "").unwrap();
        let services = config::master_cf::load(&dir.path().join("master.cf")).unwrap();
        let p = check(&cfg, &services);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].contains("service submission/inet") && p[0].contains("permit_tls_clientcerts"),
            "{p:?}"
        );
    }
}
