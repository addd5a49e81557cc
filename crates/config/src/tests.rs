//! Tests of `Config`: loading, expansion through the parameter table,
//! validation with file and line, and the table itself.

use super::*;
use std::collections::HashSet;

fn dir_with(main_cf: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.cf"), main_cf).unwrap();
    dir
}

fn load(main_cf: &str) -> Result<Config, Error> {
    let dir = dir_with(main_cf);
    Config::load(dir.path())
}

#[test]
fn defaults_without_main_cf_settings() {
    let c = load("").unwrap();
    assert_eq!(c.str("queue_directory"), "/var/spool/postfix");
    assert_eq!(c.str("mail_owner"), "postfix");
    assert_eq!(c.str("syslog_name"), "postfix");
    assert_eq!(c.int("default_process_limit"), 100);
    assert_eq!(c.size("message_size_limit"), 10_240_000);
    assert_eq!(
        c.time("maximal_queue_lifetime"),
        Duration::from_secs(5 * 86400)
    );
    assert_eq!(c.time("max_idle"), Duration::from_secs(100));
    assert_eq!(c.time("smtpd_timeout"), Duration::from_secs(300));
    assert_eq!(c.int("smtpd_hard_error_limit"), 20);
    assert!(c.bool("biff"));
    assert!(!c.bool("smtpd_tls_auth_only"));
    assert_eq!(c.get("no_such_parameter"), None);
    assert_eq!(c.str("no_such_parameter"), "");
    assert!(c.warnings().is_empty());
}

#[test]
fn hostname_domain_origin_destination() {
    let c = load("").unwrap();
    let host = c.str("myhostname");
    assert!(host.contains('.'), "{host}");
    assert_eq!(c.str("mydomain"), params::domain_of(&host));
    assert_eq!(c.str("myorigin"), host);
    assert_eq!(
        c.str("mydestination"),
        format!("{host}, localhost.{}, localhost", c.str("mydomain"))
    );
    let c = load("myhostname = mail.example.com\n").unwrap();
    assert_eq!(c.str("mydomain"), "example.com");
    assert_eq!(
        c.str("mydestination"),
        "mail.example.com, localhost.example.com, localhost"
    );
    assert_eq!(c.str("local_transport"), "local:mail.example.com");
    let c = load("myhostname = mail\n").unwrap();
    assert_eq!(c.str("mydomain"), "localdomain");
    // myhostname referring to mydomain: mydomain is undefined while its own
    // default is computed (from "mx."), so this is no loop.
    let c = load("myhostname = mx.$mydomain\n").unwrap();
    assert_eq!(c.str("myhostname"), "mx.localdomain");
    let c = load("myhostname = mx.$mydomain\nmydomain = example.org\n").unwrap();
    assert_eq!(c.str("myhostname"), "mx.example.org");
    assert!(c.str("mynetworks").starts_with(params::HOST_NETWORKS));
}

#[test]
fn later_definition_wins_and_comments_continuations() {
    let c = load(
        "# comment\nmessage_size_limit = 1000\n  # indented comment\n\
         mydestination = a,\n    b\nmessage_size_limit = 2000\n",
    )
    .unwrap();
    assert_eq!(c.size("message_size_limit"), 2000);
    assert_eq!(c.str("mydestination"), "a,    b");
    assert!(c.is_set_in_main_cf("mydestination"));
    assert!(!c.is_set_in_main_cf("myorigin"));
    let names: Vec<&str> = c.main_cf_settings().map(|(n, _)| n).collect();
    assert_eq!(names, ["message_size_limit", "mydestination"]);
    assert_eq!(
        c.main_cf_settings().next().unwrap().1,
        &Setting {
            value: "2000".into(),
            line: 6
        }
    );
}

#[test]
fn expansion_forms_through_config() {
    let c = load(
        "a = A\nempty =\nplain = $a\nbraced = ${a}\nparen = $(a)\n\
         q1 = ${a?yes}\nq2 = ${empty?yes}\nc1 = ${a:no}\nc2 = ${empty:no}\n\
         q3 = ${a?{x y}}\nc3 = ${undefined:{x y}}\nlit = $$a\nundef = [$nothing]\n\
         deep = $plain$braced\nboth = ${empty?{1}:{2}}\n",
    )
    .unwrap();
    for (name, want) in [
        ("plain", "A"),
        ("braced", "A"),
        ("paren", "A"),
        ("q1", "yes"),
        ("q2", ""),
        ("c1", ""),
        ("c2", "no"),
        ("q3", "x y"),
        ("c3", "x y"),
        ("lit", "$a"),
        ("undef", "[]"),
        ("deep", "AA"),
        ("both", "2"),
    ] {
        assert_eq!(c.str(name), want, "{name}");
    }
    assert_eq!(c.raw("plain").unwrap(), "$a");
    assert_eq!(c.expand("<$a>").unwrap(), "<A>");
}

#[test]
fn loop_is_a_clear_error() {
    let e = load("\na = $b\nb = $a\n").unwrap_err();
    let text = e.to_string();
    assert!(
        text.ends_with("main.cf, line 2: parameter a: parameter expansion loop: a -> b -> a"),
        "{text}"
    );
    let e = load("myorigin = $myhostname\nmyhostname = $myorigin\n").unwrap_err();
    assert!(
        e.to_string()
            .contains("line 1: parameter myorigin: parameter expansion loop"),
        "{e}"
    );
}

#[test]
fn bad_values_name_file_and_line() {
    let dir = dir_with("# x\n\nmyhostname = a.b\n\n\n\n\n\n\n\n\nmessage_size_limit = 10x\n");
    let e = Config::load(dir.path()).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{}, line 12: bad numerical configuration: message_size_limit = 10x",
            dir.path().join("main.cf").display()
        )
    );
    for (text, want) in [
        (
            "biff = maybe\n",
            "line 1: bad boolean configuration: biff = maybe",
        ),
        (
            "biff = YES\nmax_idle = 10q\n",
            "line 2: parameter max_idle: bad time value or unit: 10q",
        ),
        (
            "default_process_limit = 0\n",
            "line 1: invalid default_process_limit parameter value 0 < 1",
        ),
        (
            "line_length_limit = 100\n",
            "invalid line_length_limit parameter value 100 < 512",
        ),
        (
            "mailbox_size_limit = -5\n",
            "bad numerical configuration: mailbox_size_limit = -5",
        ),
        (
            "x = 1k\nmessage_size_limit = $x\n",
            "line 2: bad numerical configuration: message_size_limit = 1k",
        ),
        ("smtpd_timeout = 1h30m\n", "bad time value or unit"),
        (
            "myorigin = $\n",
            "line 1: parameter myorigin: improper macro call",
        ),
    ] {
        let e = load(text).unwrap_err().to_string();
        assert!(e.contains(want), "{text:?}: {e}");
    }
    // An unused parameter that does not expand is only a warning (Postfix
    // never expands it); a loop is an error even there.
    let c = load("my_table = regexp:{{/^x$/ REJECT}}\nmyorigin = $myhostname\n").unwrap();
    assert!(
        c.warnings()
            .iter()
            .any(|w| w.contains("line 1: parameter my_table: improper macro call")),
        "{:?}",
        c.warnings()
    );
    // A default that refers to a bad main.cf value is caught at the value.
    let e = load("default_destination_concurrency_limit = many\n").unwrap_err();
    assert!(e.to_string().contains("line 1: bad numerical"), "{e}");
}

#[test]
fn syntax_error_names_line() {
    let e = load("a = b\nnonsense\n").unwrap_err();
    assert!(matches!(e, Error::Syntax { line: 2, .. }), "{e}");
}

#[test]
fn missing_main_cf_is_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let e = Config::load(dir.path()).unwrap_err();
    assert!(matches!(e, Error::Io { .. }));
    assert!(e.to_string().starts_with("open "));
    assert!(
        e.to_string()
            .ends_with("main.cf: No such file or directory"),
        "{e}"
    );
}

#[test]
fn unknown_names_warn() {
    let dir = dir_with(
        "myhostname = a.b\nfoo = bar\nmy_restrictions = reject\n\
         smtpd_client_restrictions = $my_restrictions\nrelay_destination_concurrency_limit = 2\n\
         smtpd_bogus = 1\nfrom_master = x\nsmtpd_restriction_classes = cls1, cls2\n\
         cls1 = permit\ncls2 = reject\n",
    );
    std::fs::write(
        dir.path().join("master.cf"),
        "smtp inet n - n - - smtpd -o x=$from_master\n",
    )
    .unwrap();
    let c = Config::load(dir.path()).unwrap();
    let main = dir.path().join("main.cf");
    assert_eq!(
        c.warnings(),
        [
            format!("{}, line 2: unused parameter: foo=bar", main.display()),
            format!(
                "{}, line 6: unused parameter: smtpd_bogus=1",
                main.display()
            ),
        ]
    );
    assert_eq!(c.str("foo"), "bar");
}

#[test]
fn overrides() {
    let mut c = load("syslog_name = postfix\n").unwrap();
    c.set_override("syslog_name", "postfix/submission");
    assert_eq!(c.str("syslog_name"), "postfix/submission");
    assert!(c.try_set_override("smtpd_timeout", "10").is_ok());
    assert_eq!(c.time("smtpd_timeout"), Duration::from_secs(10));
    let e = c.try_set_override("smtpd_timeout", "soon").unwrap_err();
    assert_eq!(
        e.to_string(),
        "override: parameter smtpd_timeout: bad time value or unit: soon"
    );
    assert_eq!(c.time("smtpd_timeout"), Duration::from_secs(10));
    assert!(c.try_set_override("x", "$y").is_ok());
    assert!(c.try_set_override("y", "$x").is_err());
    assert_eq!(c.get("y"), None);
    // Unchecked bad values fall back to the default in typed accessors.
    c.set_override("message_size_limit", "lots");
    assert_eq!(c.size("message_size_limit"), 10_240_000);
    c.set_override("stress", "yes");
    assert_eq!(c.int("smtpd_hard_error_limit"), 1);
    assert!(c.bool("smtpd_per_record_deadline"));
}

#[test]
fn config_directory_is_the_directory_read() {
    let dir = dir_with("");
    let c = Config::load(dir.path()).unwrap();
    assert_eq!(c.str("config_directory"), dir.path().display().to_string());
    assert_eq!(c.config_dir(), dir.path());
    assert_eq!(c.default_raw("config_directory").unwrap(), "/etc/postfix");
}

#[test]
fn default_config_dir_is_etc_postfix_or_env() {
    let d = default_config_dir();
    match std::env::var_os("MAIL_CONFIG") {
        Some(v) => assert_eq!(d, PathBuf::from(v)),
        None => assert_eq!(d, PathBuf::from("/etc/postfix")),
    }
}

#[test]
fn table_names_unique_and_many() {
    let mut seen = HashSet::new();
    for p in params::PARAMS {
        assert!(seen.insert(p.name), "duplicate {}", p.name);
        assert!(
            p.name
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_'),
            "{}",
            p.name
        );
    }
    assert!(params::PARAMS.len() >= 120, "{}", params::PARAMS.len());
}

/// The compile-time index finds every entry as itself, and nothing else.
#[test]
fn lookup_finds_each_parameter_and_only_those() {
    for p in params::PARAMS {
        assert!(
            std::ptr::eq(params::lookup(p.name).unwrap(), p),
            "{}",
            p.name
        );
    }
    for name in [
        "",
        "myhostnam",
        "myhostname_",
        "MYHOSTNAME",
        "relay_destination_concurrency_limit",
    ] {
        assert!(params::lookup(name).is_none(), "{name}");
    }
}

/// Every default expands and parses under its type and bounds.
#[test]
fn every_default_parses_within_bounds() {
    let c = Config::defaults(Path::new("/etc/postfix"));
    for p in params::PARAMS {
        let v = c.try_get(p.name).unwrap().unwrap();
        assert_eq!(value::check(&p.kind, &v), Ok(()), "{} = {v}", p.name);
        if let Kind::Time { unit, .. } = p.kind {
            assert!(value::unit_seconds(unit).is_some(), "{}", p.name);
        }
        match p.kind {
            Kind::Int { min, max } => assert!(min <= max, "{}", p.name),
            Kind::Size { min, max } | Kind::Time { min, max, .. } => {
                assert!(min <= max, "{}", p.name)
            }
            _ => {}
        }
    }
    // And the whole default configuration passes load's check.
    assert!(Config::from_text(Path::new("/etc/postfix"), "").is_ok());
}

#[test]
fn names_the_project_uses_are_known() {
    for name in [
        "myhostname",
        "mydomain",
        "myorigin",
        "mydestination",
        "mynetworks",
        "mynetworks_style",
        "inet_interfaces",
        "inet_protocols",
        "queue_directory",
        "command_directory",
        "daemon_directory",
        "data_directory",
        "meta_directory",
        "shlib_directory",
        "sendmail_path",
        "newaliases_path",
        "mailq_path",
        "manpage_directory",
        "mail_owner",
        "setgid_group",
        "default_privs",
        "message_size_limit",
        "header_size_limit",
        "line_length_limit",
        "mailbox_size_limit",
        "maillog_file",
        "syslog_name",
        "syslog_facility",
        "default_process_limit",
        "max_use",
        "max_idle",
        "ipc_timeout",
        "ipc_idle",
        "daemon_timeout",
        "process_id_directory",
        "queue_minfree",
        "hash_queue_names",
        "hash_queue_depth",
        "minimal_backoff_time",
        "maximal_backoff_time",
        "maximal_queue_lifetime",
        "bounce_queue_lifetime",
        "delay_warning_time",
        "queue_run_delay",
        "qmgr_message_active_limit",
        "qmgr_message_recipient_limit",
        "default_destination_concurrency_limit",
        "default_destination_recipient_limit",
        "alias_maps",
        "alias_database",
        "home_mailbox",
        "mail_spool_directory",
        "mailbox_command",
        "recipient_delimiter",
        "local_recipient_maps",
        "virtual_mailbox_domains",
        "virtual_mailbox_base",
        "virtual_mailbox_maps",
        "virtual_uid_maps",
        "virtual_gid_maps",
        "virtual_alias_maps",
        "virtual_alias_domains",
        "virtual_minimum_uid",
        "relay_domains",
        "relayhost",
        "transport_maps",
        "relocated_maps",
        "canonical_maps",
        "sender_canonical_maps",
        "recipient_canonical_maps",
        "masquerade_domains",
        "header_checks",
        "body_checks",
        "append_dot_mydomain",
        "append_at_myorigin",
        "smtpd_banner",
        "mail_name",
        "mail_version",
        "smtpd_timeout",
        "smtpd_recipient_limit",
        "smtpd_hard_error_limit",
        "smtpd_soft_error_limit",
        "smtpd_error_sleep_time",
        "smtpd_client_restrictions",
        "smtpd_helo_restrictions",
        "smtpd_sender_restrictions",
        "smtpd_relay_restrictions",
        "smtpd_recipient_restrictions",
        "smtpd_data_restrictions",
        "smtpd_delay_reject",
        "smtpd_tls_cert_file",
        "smtpd_tls_key_file",
        "smtpd_tls_security_level",
        "smtpd_tls_auth_only",
        "smtpd_tls_wrappermode",
        "smtpd_sasl_auth_enable",
        "smtpd_sasl_type",
        "smtpd_sasl_path",
        "smtpd_forbid_bare_newline",
        "smtpd_client_connection_count_limit",
        "smtpd_client_connection_rate_limit",
        "disable_vrfy_command",
        "biff",
        "compatibility_level",
        "smtp_connect_timeout",
        "smtp_helo_name",
        "smtp_tls_security_level",
    ] {
        assert!(params::lookup(name).is_some(), "{name}");
    }
}

#[test]
fn postfix_defaults_spot_checks() {
    let c = Config::defaults(Path::new("/etc/postfix"));
    for (name, want) in [
        ("queue_directory", "/var/spool/postfix"),
        ("inet_interfaces", "all"),
        ("smtpd_banner", "$myhostname ESMTP $mail_name"),
        ("alias_maps", "hash:/etc/aliases"),
        ("bounce_queue_lifetime", "5d"),
        ("delay_warning_time", "0h"),
        (
            "syslog_name",
            "${multi_instance_name?{$multi_instance_name}:{postfix}}",
        ),
        ("virtual_alias_maps", "$virtual_maps"),
    ] {
        assert_eq!(c.default_raw(name).unwrap(), want, "{name}");
    }
    assert_eq!(c.time("delay_warning_time"), Duration::ZERO);
    // Compatibility-level dependent defaults, at the default level 3.6.
    assert_eq!(c.str("mynetworks_style"), "host");
    assert_eq!(c.str("relay_domains"), "");
    assert!(!c.bool("append_dot_mydomain"));
    assert!(c.bool("smtputf8_enable"));
    assert_eq!(
        c.str("smtpd_relay_restrictions"),
        "permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination"
    );
    assert_eq!(c.str("smtpd_tls_fingerprint_digest"), "sha256");
    assert_eq!(c.int("virtual_destination_concurrency_limit"), 20);
    assert_eq!(
        c.str("smtpd_client_event_limit_exceptions"),
        c.str("mynetworks")
    );
    assert!(c.defaults_raw().len() >= 120);
}

#[test]
fn compatibility_level_zero_gives_old_defaults() {
    let c = load("compatibility_level = 0\nmyhostname = h.example\n").unwrap();
    assert_eq!(c.str("mynetworks_style"), "subnet");
    assert_eq!(
        c.str("relay_domains"),
        "h.example, localhost.localdomain, localhost"
    );
    assert!(c.bool("append_dot_mydomain"));
    assert!(!c.bool("smtputf8_enable"));
    assert_eq!(c.str("smtpd_relay_restrictions"), "");
}

#[test]
fn time_units_per_parameter() {
    let c = load("maximal_queue_lifetime = 2\ndelay_warning_time = 4\nmax_idle = 2m\n").unwrap();
    assert_eq!(
        c.time("maximal_queue_lifetime"),
        Duration::from_secs(2 * 86400)
    );
    assert_eq!(c.time("delay_warning_time"), Duration::from_secs(4 * 3600));
    assert_eq!(c.time("max_idle"), Duration::from_secs(120));
}

proptest::proptest! {
    #[test]
    fn arbitrary_main_cf_never_panics(text in "(?s).{0,300}") {
        if let Ok(c) = Config::from_text(Path::new("/x"), &text) {
            for (name, _) in c.main_cf_settings() {
                let _ = c.get(name);
            }
        }
    }

    #[test]
    fn main_cf_like_text_never_panics(
        lines in proptest::collection::vec(
            "[ #]{0,1}[a-z_]{1,4}[ ]{0,1}={0,1}[ ]{0,1}([a-z0-9$({?:})]{0,8}){0,3}", 0..10)
    ) {
        let text = lines.join("\n");
        if let Ok(c) = Config::from_text(Path::new("/x"), &text) {
            for (name, _) in c.main_cf_settings() {
                let _ = c.get(name);
                let _ = c.bool(name);
                let _ = c.time(name);
            }
        }
    }
}

#[test]
fn shipped_main_cf_loads_cleanly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../etc-postfix");
    let text = std::fs::read_to_string(dir.join("main.cf")).unwrap();
    let c = Config::from_text(&dir, &text).unwrap();
    assert!(c.warnings().is_empty(), "{:?}", c.warnings());
    assert_eq!(c.str("queue_directory"), "/var/spool/postfix");
    assert_eq!(c.str("mail_owner"), "postfix");
    // Everything it sets is a known parameter at its default.
    for (name, s) in c.main_cf_settings() {
        assert!(params::lookup(name).is_some(), "{name}");
        assert_eq!(Some(s.value.clone()), c.default_raw(name), "{name}");
    }
    // Nor does the shipped pair set anything no program reads.
    let services = master_cf::load(&dir.join("master.cf")).unwrap();
    let w = c.unsupported_warnings(&services);
    assert!(w.is_empty(), "{w:?}");
}

#[test]
fn load_for_command_needs_main_cf_only_in_a_named_dir() {
    let dir = dir_with("default_database_type = texthash\n");
    let c = Config::load_for_command(Some(dir.path())).unwrap();
    assert_eq!(c.str("default_database_type"), "texthash");
    let empty = tempfile::tempdir().unwrap();
    assert!(Config::load_for_command(Some(empty.path())).is_err());
    assert_eq!(
        Config::defaults(empty.path()).str("default_database_type"),
        "hash"
    );
}

#[test]
fn unsupported_set_is_marked_in_the_table() {
    let names: Vec<&str> = unsupported::unsupported_params().map(|p| p.name).collect();
    // About 350 of Postfix's parameters are known but read by nothing yet.
    assert!(names.len() > 250 && names.len() < 420, "{}", names.len());
    for n in [
        "smtpd_proxy_filter",
        "milter_header_checks",
        "smtp_sasl_mechanism_filter",
        "biff",
    ] {
        assert!(names.contains(&n), "{n} should be marked unsupported");
    }
    for n in [
        "always_bcc",
        "sender_bcc_maps",
        "recipient_bcc_maps",
        "notify_classes",
        "in_flow_delay",
        "myhostname",
        "smtpd_recipient_restrictions",
    ] {
        assert!(!names.contains(&n), "{n} is read and must not be marked");
    }
}

#[test]
fn unsupported_settings_warn_once_each() {
    let dir = dir_with(
        "always_bcc = archive@example.com\n\
         smtpd_proxy_filter = inet:localhost:8891\n\
         readme_directory = no\n\
         biff = no\n\
         smtp_generic_maps = hash:/etc/postfix/generic\n\
         canonical_maps = $smtp_generic_maps\n",
    );
    std::fs::write(
        dir.path().join("master.cf"),
        "smtp inet n - n - - smtpd\n\
         submission inet n - n - - smtpd\n  -o smtpd_proxy_filter=inet:other:1\n  -o milter_header_checks=\n",
    )
    .unwrap();
    let c = Config::load(dir.path()).unwrap();
    assert!(c.warnings().is_empty(), "{:?}", c.warnings());
    let services = master_cf::load(&dir.path().join("master.cf")).unwrap();
    let w = c.unsupported_warnings(&services);
    let main = dir.path().join("main.cf");
    let master = dir.path().join("master.cf");
    assert_eq!(
        w,
        vec![
            format!(
                "{}, line 2: parameter smtpd_proxy_filter is not supported yet and has no effect \
                 (also set at {}, line 2: service submission/inet)",
                main.display(),
                master.display()
            ),
            format!(
                "{}, line 4: parameter biff is not supported yet and has no effect",
                main.display()
            ),
        ]
    );
    // smtp_generic_maps (which canonical_maps refers to), readme_directory
    // and the empty -o milter_header_checks (the defaults) and always_bcc (read
    // by cleanup) give nothing.
    assert_eq!(c.unsupported_warnings(&[]).len(), 2);
}

#[test]
fn unsupported_values_of_a_supported_list_warn() {
    let c = load("notify_classes = bounce, resource,software\n").unwrap();
    let w = c.unsupported_warnings(&[]);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].ends_with(
            "main.cf, line 1: parameter notify_classes: resource, software are not supported \
             yet and have no effect"
        ),
        "{w:?}"
    );
    assert!(
        load("notify_classes = bounce, 2bounce, delay\n")
            .unwrap()
            .unsupported_warnings(&[])
            .is_empty()
    );
    // The default is not a setting.
    assert!(load("").unwrap().unsupported_warnings(&[]).is_empty());
}

/// The `.rs` files under `dir`, recursively.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn a_parameter_marked_unsupported_is_named_by_no_program() {
    // When a program starts reading a parameter (by its quoted name), its
    // `.unsupported()` mark in params.rs must go.
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut files = Vec::new();
    for krate in std::fs::read_dir(crates).unwrap().flatten() {
        let src = krate.path().join("src");
        if src.is_dir() && krate.file_name() != "config" {
            rust_files(&src, &mut files);
        }
    }
    files.push(crates.join("config/src/lib.rs"));
    assert!(files.len() > 100, "{}", files.len());
    let texts: Vec<(PathBuf, String)> = files
        .into_iter()
        .map(|f| {
            let t = std::fs::read_to_string(&f).unwrap();
            // Tests may name anything.
            let code = t
                .split("#[cfg(test)]")
                .next()
                .unwrap_or_default()
                .to_string();
            (f, code)
        })
        .collect();
    let mut named = Vec::new();
    for p in unsupported::unsupported_params() {
        let quoted = format!("\"{}\"", p.name);
        if let Some((f, _)) = texts.iter().find(|(_, t)| t.contains(&quoted)) {
            named.push(format!("{} in {}", p.name, f.display()));
        }
    }
    assert!(named.is_empty(), "marked unsupported but read: {named:#?}");
}

/// Config::check skips the defaults without `$` at every load: each is
/// checked here, under its type and its enumeration.
#[test]
fn constant_defaults_are_valid() {
    let mut checked = 0;
    for p in params::PARAMS {
        if let params::Default::Fixed(v) = p.default
            && !v.contains('$')
        {
            let r = value::check(&p.kind, v).and_then(|()| enums::check(p.name, v));
            assert!(r.is_ok(), "{} = {v}: {r:?}", p.name);
            checked += 1;
        }
    }
    assert!(checked > 300, "only {checked} constant defaults");
}
