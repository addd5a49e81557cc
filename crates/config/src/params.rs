//! The parameter table: every main.cf parameter the project knows, declared
//! once with its Postfix name, type, default and bounds.
//!
//! This is the one place parameter names exist as strings (STYLE.md). The
//! table drives `postconf -d`, the type checks `Config::load` makes on each
//! value, and the typed accessors (`Config::time` knows each parameter's
//! default unit from here). Defaults are Postfix's own (postconf(5),
//! global/mail_params.h), including the
//! `${{$compatibility_level} <level {2} ? {old} : {new}}` forms of settings
//! that depend on the compatibility level. One difference:
//! `compatibility_level` itself defaults to `3.6` (Postfix: `0`), so an
//! instance without it gets today's behaviour (`mynetworks_style = host`,
//! empty `relay_domains`, `append_dot_mydomain = no`, `smtputf8_enable =
//! yes`) rather than Postfix 2.x's. `mynetworks` is computed from
//! mynetworks_style on this machine, as Postfix does ([`crate::networks`]).
//! Upstream file locations are used (`/usr/libexec/postfix`, not Debian's
//! `/usr/lib/postfix/sbin`).

/// The type of a parameter, with its bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// Free text (lists, paths, lookup tables, names).
    Str,
    /// `yes` or `no`, case-insensitive.
    Bool,
    /// A decimal integer within `min..=max`.
    Int {
        /// Smallest accepted value.
        min: i64,
        /// Largest accepted value.
        max: i64,
    },
    /// A time: a number with an optional unit `s`, `m`, `h`, `d` or `w`.
    Time {
        /// The unit of a bare number (`s`, `m`, `h`, `d` or `w`).
        unit: char,
        /// Smallest accepted value in seconds.
        min: u64,
        /// Largest accepted value in seconds.
        max: u64,
    },
    /// A size in bytes within `min..=max`.
    Size {
        /// Smallest accepted value.
        min: u64,
        /// Largest accepted value.
        max: u64,
    },
}

impl Kind {
    /// A short name of the type, for messages and documentation.
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Str => "string",
            Kind::Bool => "boolean",
            Kind::Int { .. } => "integer",
            Kind::Time { .. } => "time",
            Kind::Size { .. } => "size",
        }
    }
}

/// Where a parameter's default value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Default {
    /// A fixed text, possibly with `$name` references (unexpanded, as
    /// `postconf -d` prints it).
    Fixed(&'static str),
    /// The system host name, with `.localdomain` appended when it has no dot.
    Hostname,
    /// `$myhostname` without its first label (`localdomain` when that leaves
    /// no dot).
    Domain,
    /// The networks mynetworks_style trusts ([`crate::networks::from_style`]).
    Networks,
    /// This software's version.
    Version,
}

/// One parameter: name, type with bounds, default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param {
    /// The main.cf name.
    pub name: &'static str,
    /// Type and bounds.
    pub kind: Kind,
    /// Built-in default.
    pub default: Default,
    /// False when no program reads the parameter yet: setting it has no
    /// effect, `postfix check` and `postfix start` warn about it
    /// ([`crate::Config::unsupported_warnings`]), and postconf(5) and
    /// `postconf -U` list it.
    pub supported: bool,
}

impl Param {
    /// The same parameter marked as read by no program yet.
    const fn unsupported(self) -> Param {
        Param {
            supported: false,
            ..self
        }
    }
}

const fn s(name: &'static str, default: &'static str) -> Param {
    Param {
        name,
        kind: Kind::Str,
        default: Default::Fixed(default),
        supported: true,
    }
}

const fn b(name: &'static str, default: &'static str) -> Param {
    Param {
        name,
        kind: Kind::Bool,
        default: Default::Fixed(default),
        supported: true,
    }
}

const fn i(name: &'static str, default: &'static str, min: i64, max: i64) -> Param {
    Param {
        name,
        kind: Kind::Int { min, max },
        default: Default::Fixed(default),
        supported: true,
    }
}

const fn t(name: &'static str, default: &'static str, unit: char, min: u64, max: u64) -> Param {
    Param {
        name,
        kind: Kind::Time { unit, min, max },
        default: Default::Fixed(default),
        supported: true,
    }
}

const fn z(name: &'static str, default: &'static str, min: u64, max: u64) -> Param {
    Param {
        name,
        kind: Kind::Size { min, max },
        default: Default::Fixed(default),
        supported: true,
    }
}

const fn computed(name: &'static str, default: Default) -> Param {
    Param {
        name,
        kind: Kind::Str,
        default,
        supported: true,
    }
}

/// Largest int parameter value (Postfix's `int` is 32 bits).
const IMAX: i64 = i32::MAX as i64;
/// Largest time value in seconds (Postfix keeps times in an `int`).
const TMAX: u64 = i32::MAX as u64;
/// Largest size value (Postfix keeps sizes in a `long`/`off_t`).
const ZMAX: u64 = i64::MAX as u64;

/// Every parameter, grouped by theme. Names are unique (a test checks).
///
/// `.unsupported()` marks a parameter that Postfix has and no program here
/// reads yet (its name appears in no crate's source outside this table):
/// it is parsed and checked like any other, and an administrator who sets it
/// is warned that it has no effect. A change that makes a program read such a
/// parameter removes the mark.
pub static PARAMS: &[Param] = ALL;

const ALL: &[Param] = &[
    // Identity and network.
    computed("myhostname", Default::Hostname),
    computed("mydomain", Default::Domain),
    s("myorigin", "$myhostname"),
    s(
        "mydestination",
        "$myhostname, localhost.$mydomain, localhost",
    ),
    computed("mynetworks", Default::Networks),
    s(
        "mynetworks_style",
        "${{$compatibility_level} <level {2} ? {subnet} : {host}}",
    ),
    s("inet_interfaces", "all"),
    s("inet_protocols", "all"),
    s("proxy_interfaces", ""),
    s("compatibility_level", "3.6"),
    s("mail_name", "Postfix"),
    computed("mail_version", Default::Version).unsupported(),
    s("multi_instance_name", ""),
    b("multi_instance_enable", "no").unsupported(),
    s("multi_instance_directories", ""),
    s("multi_instance_group", "").unsupported(),
    s(
        "parent_domain_matches_subdomains",
        "debug_peer_list,fast_flush_domains,mynetworks,permit_mx_backup_networks,qmqpd_authorized_clients,relay_domains,smtpd_access_maps",
    ),
    // Files, directories, accounts.
    s("config_directory", "/etc/postfix"),
    s("queue_directory", "/var/spool/postfix"),
    s("command_directory", "/usr/sbin"),
    s("daemon_directory", "/usr/libexec/postfix"),
    s("data_directory", "/var/lib/postfix"),
    s("meta_directory", "/etc/postfix").unsupported(),
    s("shlib_directory", "/usr/lib/postfix").unsupported(),
    s("sample_directory", "/etc/postfix").unsupported(),
    s("readme_directory", "no").unsupported(),
    s("html_directory", "no").unsupported(),
    s("manpage_directory", "/usr/local/man").unsupported(),
    s("sendmail_path", "/usr/sbin/sendmail").unsupported(),
    s("newaliases_path", "/usr/bin/newaliases").unsupported(),
    s("mailq_path", "/usr/bin/mailq").unsupported(),
    s("process_id_directory", "pid").unsupported(),
    s("mail_owner", "postfix"),
    s("setgid_group", "postdrop"),
    s("default_privs", "nobody"),
    s(
        "import_environment",
        "MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ XAUTHORITY DISPLAY LANG=C POSTLOG_SERVICE POSTLOG_HOSTNAME",
    ),
    s("export_environment", "TZ MAIL_CONFIG LANG"),
    s("default_database_type", "hash"),
    s("default_cache_db_type", "btree").unsupported(),
    // Logging.
    s(
        "syslog_name",
        "${multi_instance_name?{$multi_instance_name}:{postfix}}",
    ),
    s("syslog_facility", "mail").unsupported(),
    s("maillog_file", ""),
    s("maillog_file_prefixes", "/var, /dev/stdout"),
    s("maillog_file_rotate_suffix", "%Y%m%d-%H%M%S").unsupported(),
    s("maillog_file_compressor", "gzip").unsupported(),
    s("postlog_service_name", "postlog").unsupported(),
    s("debug_peer_list", "").unsupported(),
    i("debug_peer_level", "2", 1, IMAX).unsupported(),
    s("notify_classes", "resource, software"),
    i("delay_logging_resolution_limit", "2", 0, 6).unsupported(),
    // Process management (master).
    i("default_process_limit", "100", 1, IMAX),
    i("max_use", "100", 1, IMAX),
    t("max_idle", "100s", 's', 1, TMAX),
    t("ipc_timeout", "3600s", 's', 1, TMAX),
    t("ipc_idle", "5s", 's', 1, TMAX).unsupported(),
    t("ipc_ttl", "1000s", 's', 1, TMAX).unsupported(),
    t("daemon_timeout", "18000s", 's', 1, TMAX).unsupported(),
    t("in_flow_delay", "1s", 's', 0, 10),
    i("fork_attempts", "5", 1, IMAX).unsupported(),
    t("fork_delay", "1s", 's', 1, TMAX).unsupported(),
    t("service_throttle_time", "60s", 's', 1, TMAX),
    t("transport_retry_time", "60s", 's', 1, TMAX).unsupported(),
    t("trigger_timeout", "10s", 's', 1, TMAX).unsupported(),
    s("master_service_disable", "").unsupported(),
    s("stress", ""),
    // Queue.
    s("hash_queue_names", "deferred, defer").unsupported(),
    i("hash_queue_depth", "1", 1, 16).unsupported(),
    z("queue_minfree", "0", 0, ZMAX).unsupported(),
    b("enable_long_queue_ids", "no").unsupported(),
    i("queue_file_attribute_count_limit", "100", 1, IMAX).unsupported(),
    t("minimal_backoff_time", "300s", 's', 1, TMAX),
    t("maximal_backoff_time", "4000s", 's', 1, TMAX),
    t("maximal_queue_lifetime", "5d", 'd', 0, 8_640_000),
    t("bounce_queue_lifetime", "5d", 'd', 0, 8_640_000),
    t("delay_warning_time", "0h", 'h', 0, TMAX),
    t("queue_run_delay", "300s", 's', 1, TMAX),
    i("qmgr_message_active_limit", "20000", 1, IMAX),
    i("qmgr_message_recipient_limit", "20000", 1, IMAX).unsupported(),
    i("qmgr_message_recipient_minimum", "10", 1, IMAX).unsupported(),
    i("qmgr_fudge_factor", "100", 10, 100).unsupported(),
    t("qmgr_clog_warn_time", "300s", 's', 0, TMAX).unsupported(),
    t("qmgr_daemon_timeout", "1000s", 's', 1, TMAX).unsupported(),
    t("qmgr_ipc_timeout", "60s", 's', 1, TMAX),
    b("confirm_delay_cleared", "no").unsupported(),
    s("defer_transports", ""),
    b("soft_bounce", "no"),
    // Scheduling.
    i("default_destination_concurrency_limit", "20", 0, IMAX),
    i("initial_destination_concurrency", "5", 1, IMAX),
    i("default_destination_recipient_limit", "50", 0, IMAX),
    t("default_destination_rate_delay", "0s", 's', 0, TMAX).unsupported(),
    i("default_recipient_limit", "20000", 1, IMAX).unsupported(),
    i("default_extra_recipient_limit", "1000", 1, IMAX).unsupported(),
    i("default_delivery_slot_cost", "5", 0, IMAX).unsupported(),
    i("default_minimum_delivery_slots", "3", 0, IMAX).unsupported(),
    i("local_destination_concurrency_limit", "2", 0, IMAX),
    i("local_destination_recipient_limit", "1", 0, IMAX),
    i("default_delivery_batch_limit", "1", 1, 1001),
    i("local_delivery_batch_limit", "20", 1, 1001),
    i("virtual_delivery_batch_limit", "20", 1, 1001),
    i(
        "smtp_destination_concurrency_limit",
        "$default_destination_concurrency_limit",
        0,
        IMAX,
    ),
    i(
        "smtp_destination_recipient_limit",
        "$default_destination_recipient_limit",
        0,
        IMAX,
    ),
    i(
        "virtual_destination_concurrency_limit",
        "$default_destination_concurrency_limit",
        0,
        IMAX,
    ),
    i(
        "virtual_destination_recipient_limit",
        "$default_destination_recipient_limit",
        0,
        IMAX,
    ),
    // Transports and routing.
    s("default_transport", "smtp"),
    s("local_transport", "local:$myhostname"),
    s("virtual_transport", "virtual"),
    s("relay_transport", "relay"),
    s("error_service_name", "error").unsupported(),
    s("transport_maps", ""),
    s("relayhost", ""),
    s(
        "relay_domains",
        "${{$compatibility_level} <level {2} ? {$mydestination} : {}}",
    ),
    s("relay_recipient_maps", ""),
    s("fallback_relay", "").unsupported(),
    s("relocated_maps", ""),
    s("content_filter", ""),
    s("receive_override_options", ""),
    // Service names.
    s("cleanup_service_name", "cleanup").unsupported(),
    s("queue_service_name", "qmgr"),
    s("rewrite_service_name", "rewrite").unsupported(),
    s("bounce_service_name", "bounce").unsupported(),
    s("defer_service_name", "defer").unsupported(),
    s("trace_service_name", "trace").unsupported(),
    s("showq_service_name", "showq").unsupported(),
    s("flush_service_name", "flush"),
    s("pickup_service_name", "pickup").unsupported(),
    s("verify_service_name", "verify").unsupported(),
    s("proxymap_service_name", "proxymap").unsupported(),
    // proxymap(8): the proxy: tables it may open (Postfix's list, where
    // the parameters exist here).
    s(
        "proxy_read_maps",
        "$local_recipient_maps $mydestination $virtual_alias_maps $virtual_alias_domains $virtual_mailbox_maps $virtual_mailbox_domains $relay_recipient_maps $relay_domains $canonical_maps $sender_canonical_maps $recipient_canonical_maps $relocated_maps $transport_maps $mynetworks $smtpd_sender_login_maps $sender_bcc_maps $recipient_bcc_maps $smtp_generic_maps $alias_maps $smtpd_client_restrictions $smtpd_helo_restrictions $smtpd_sender_restrictions $smtpd_relay_restrictions $smtpd_recipient_restrictions $sender_dependent_relayhost_maps $smtp_sasl_password_maps $smtp_tls_policy_maps $virtual_uid_maps $virtual_gid_maps $sender_dependent_default_transport_maps $header_checks $body_checks $mime_header_checks $nested_header_checks",
    ),
    s("proxy_write_maps", ""),
    s("anvil_service_name", "anvil"),
    s("scache_service_name", "scache").unsupported(),
    s("tlsmgr_service_name", "tlsmgr").unsupported(),
    // Address rewriting.
    b(
        "append_dot_mydomain",
        "${{$compatibility_level} <level {1} ? {yes} : {no}}",
    ),
    b("append_at_myorigin", "yes"),
    b("swap_bangpath", "yes"),
    b("allow_percent_hack", "yes"),
    b("resolve_dequoted_address", "yes"),
    b("resolve_null_domain", "no"),
    s("canonical_maps", ""),
    s("sender_canonical_maps", ""),
    s("recipient_canonical_maps", ""),
    s(
        "canonical_classes",
        "envelope_sender, envelope_recipient, header_sender, header_recipient",
    ),
    s("masquerade_domains", ""),
    s(
        "masquerade_classes",
        "envelope_sender, header_sender, header_recipient",
    ),
    s("masquerade_exceptions", ""),
    s("local_header_rewrite_clients", "permit_inet_interfaces"),
    s("remote_header_rewrite_domain", ""),
    s("always_bcc", ""),
    s("sender_bcc_maps", ""),
    s("recipient_bcc_maps", ""),
    s("propagate_unmatched_extensions", "canonical, virtual"),
    s("recipient_delimiter", ""),
    s("empty_address_recipient", "MAILER-DAEMON"),
    s("double_bounce_sender", "double-bounce"),
    // Content.
    z("message_size_limit", "10240000", 0, ZMAX),
    i("header_size_limit", "102400", 1, IMAX),
    i("line_length_limit", "2048", 512, IMAX),
    i("header_address_token_limit", "10240", 1, IMAX).unsupported(),
    i("hopcount_limit", "50", 1, IMAX),
    i("duplicate_filter_limit", "1000", 0, IMAX),
    i("body_checks_size_limit", "51200", 1, IMAX),
    i("mime_nesting_limit", "100", 1, IMAX).unsupported(),
    i("mime_boundary_length_limit", "2048", 1, IMAX).unsupported(),
    s("header_checks", ""),
    s("mime_header_checks", "$header_checks"),
    s("nested_header_checks", "$header_checks"),
    s("body_checks", ""),
    b("disable_mime_input_processing", "no").unsupported(),
    b("disable_mime_output_conversion", "no"),
    b("strict_7bit_headers", "no").unsupported(),
    b("strict_8bitmime", "no").unsupported(),
    b("strict_rfc821_envelopes", "no").unsupported(),
    b("always_add_missing_headers", "no"),
    s("header_from_format", "standard").unsupported(),
    s("undisclosed_recipients_header", ""),
    b("enable_original_recipient", "yes"),
    s("message_reject_characters", "").unsupported(),
    s("message_strip_characters", "").unsupported(),
    b(
        "smtputf8_enable",
        "${{$compatibility_level} <level {1} ? {no} : {yes}}",
    ).unsupported(),
    b("allow_min_user", "no"),
    s("sendmail_fix_line_endings", "always").unsupported(),
    s("authorized_submit_users", "static:anyone"),
    s("authorized_mailq_users", "static:anyone"),
    s("authorized_flush_users", "static:anyone"),
    s("default_verp_delimiters", "+=").unsupported(),
    s("verp_delimiter_filter", "-=+").unsupported(),
    s("authorized_verp_clients", "$mynetworks").unsupported(),
    // Bounces and notices.
    i("bounce_size_limit", "50000", 1, IMAX),
    s("bounce_notice_recipient", "postmaster"),
    s("2bounce_notice_recipient", "postmaster"),
    s("delay_notice_recipient", "postmaster"),
    s("error_notice_recipient", "postmaster").unsupported(),
    // Local delivery.
    s("alias_maps", "hash:/etc/aliases"),
    s("alias_database", "hash:/etc/aliases"),
    s("allow_mail_to_commands", "alias, forward"),
    s("allow_mail_to_files", "alias, forward"),
    s("home_mailbox", ""),
    s("mail_spool_directory", "/var/mail"),
    s("mailbox_command", ""),
    s("mailbox_command_maps", "").unsupported(),
    s("mailbox_transport", "").unsupported(),
    s("mailbox_transport_maps", "").unsupported(),
    s("fallback_transport", "").unsupported(),
    s("fallback_transport_maps", "").unsupported(),
    z("mailbox_size_limit", "51200000", 0, ZMAX),
    s("mailbox_delivery_lock", "fcntl, dotlock"),
    s(
        "forward_path",
        "$home/.forward${recipient_delimiter}${extension}, $home/.forward",
    ),
    s(
        "local_recipient_maps",
        "proxy:unix:passwd.byname $alias_maps",
    ),
    s("local_command_shell", ""),
    t("command_time_limit", "1000s", 's', 1, TMAX),
    s("luser_relay", ""),
    b("biff", "yes").unsupported(),
    b("expand_owner_alias", "no").unsupported(),
    b("owner_request_special", "yes").unsupported(),
    s("prepend_delivered_header", "command, file, forward"),
    i("deliver_lock_attempts", "20", 1, IMAX),
    t("deliver_lock_delay", "1s", 's', 1, TMAX),
    t("stale_lock_time", "500s", 's', 1, TMAX),
    b("strict_mailbox_ownership", "yes").unsupported(),
    b("require_home_directory", "no").unsupported(),
    i("unknown_local_recipient_reject_code", "550", 400, 599),
    b("show_user_unknown_table_name", "yes"),
    // Virtual delivery.
    s("virtual_mailbox_domains", "$virtual_mailbox_maps"),
    s("virtual_mailbox_base", ""),
    s("virtual_mailbox_maps", ""),
    s("virtual_uid_maps", ""),
    s("virtual_gid_maps", ""),
    s("virtual_maps", ""),
    s("virtual_alias_maps", "$virtual_maps"),
    s("virtual_alias_domains", "$virtual_alias_maps"),
    i("virtual_minimum_uid", "100", 1, IMAX),
    z("virtual_mailbox_limit", "51200000", 0, ZMAX),
    s("virtual_mailbox_lock", "fcntl, dotlock"),
    i("unknown_virtual_mailbox_reject_code", "550", 400, 599),
    i("unknown_virtual_alias_reject_code", "550", 400, 599),
    // SMTP server.
    s("smtpd_banner", "$myhostname ESMTP $mail_name"),
    t("smtpd_timeout", "${stress?{10}:{300}}s", 's', 1, TMAX),
    t(
        "smtpd_starttls_timeout",
        "${stress?{10}:{300}}s",
        's',
        1,
        TMAX,
    ),
    b("smtpd_per_record_deadline", "${stress?{yes}:{no}}").unsupported(),
    i("smtpd_recipient_limit", "1000", 1, IMAX),
    i("smtpd_recipient_overshoot_limit", "1000", 1, IMAX).unsupported(),
    i("smtpd_hard_error_limit", "${stress?{1}:{20}}", 1, IMAX),
    i("smtpd_soft_error_limit", "10", 1, IMAX),
    t("smtpd_error_sleep_time", "1s", 's', 0, TMAX),
    i("smtpd_junk_command_limit", "${stress?{1}:{100}}", 1, IMAX),
    i("smtpd_history_flush_threshold", "100", 1, IMAX).unsupported(),
    s("smtpd_client_restrictions", ""),
    s("smtpd_helo_restrictions", ""),
    s("smtpd_sender_restrictions", ""),
    s(
        "smtpd_relay_restrictions",
        "${{$compatibility_level} <level {1} ? {} : {permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination}}",
    ),
    s("smtpd_recipient_restrictions", ""),
    s("smtpd_data_restrictions", ""),
    s("smtpd_end_of_data_restrictions", ""),
    s("smtpd_etrn_restrictions", ""),
    s("smtpd_restriction_classes", ""),
    b("smtpd_helo_required", "no"),
    b("smtpd_delay_reject", "yes"),
    b("smtpd_reject_unlisted_sender", "no").unsupported(),
    b("smtpd_reject_unlisted_recipient", "yes"),
    s("smtpd_null_access_lookup_key", "<>"),
    s("smtpd_discard_ehlo_keywords", "").unsupported(),
    s("smtpd_noop_commands", "").unsupported(),
    b("smtpd_peername_lookup", "yes"),
    b("smtpd_client_port_logging", "no").unsupported(),
    s("smtpd_authorized_xclient_hosts", "").unsupported(),
    s("smtpd_proxy_filter", "").unsupported(),
    s("smtpd_milters", ""),
    s("non_smtpd_milters", ""),
    s("milter_default_action", "tempfail"),
    s("smtpd_forbid_bare_newline", "normalize"),
    s("smtpd_forbid_bare_newline_exclusions", "$mynetworks").unsupported(),
    b("smtpd_forbid_unauth_pipelining", "yes"),
    i("smtpd_client_connection_count_limit", "50", 0, IMAX),
    i("smtpd_client_connection_rate_limit", "0", 0, IMAX),
    i("smtpd_client_message_rate_limit", "0", 0, IMAX),
    i("smtpd_client_recipient_rate_limit", "0", 0, IMAX).unsupported(),
    s(
        "smtpd_client_event_limit_exceptions",
        "${smtpd_client_connection_limit_exceptions:$mynetworks}",
    ),
    s("smtpd_tls_cert_file", ""),
    s("smtpd_tls_key_file", "$smtpd_tls_cert_file"),
    s("smtpd_tls_chain_files", ""),
    s("smtpd_tls_CAfile", "").unsupported(),
    s("smtpd_tls_CApath", "").unsupported(),
    s("smtpd_tls_security_level", ""),
    b("smtpd_tls_auth_only", "no"),
    b("smtpd_tls_wrappermode", "no"),
    s("smtpd_tls_loglevel", "0").unsupported(),
    b("smtpd_tls_received_header", "no"),
    s("smtpd_tls_protocols", ">=TLSv1"),
    s("smtpd_tls_mandatory_protocols", ">=TLSv1"),
    s("smtpd_tls_ciphers", "medium"),
    s("smtpd_tls_mandatory_ciphers", "medium"),
    s("smtpd_tls_session_cache_database", "").unsupported(),
    b("smtpd_sasl_auth_enable", "no"),
    s("smtpd_sasl_type", "dovecot"),
    s("smtpd_sasl_path", "private/auth"),
    s("smtpd_sasl_security_options", "noanonymous"),
    s(
        "smtpd_sasl_tls_security_options",
        "$smtpd_sasl_security_options",
    ),
    s("smtpd_sasl_local_domain", "").unsupported(),
    b("smtpd_sasl_authenticated_header", "no").unsupported(),
    s("smtpd_sender_login_maps", "").unsupported(),
    b("disable_vrfy_command", "no"),
    i("reject_code", "554", 400, 599),
    i("defer_code", "450", 400, 599),
    i("relay_domains_reject_code", "554", 400, 599),
    i("access_map_reject_code", "554", 400, 599),
    i("maps_rbl_reject_code", "554", 400, 599),
    i("invalid_hostname_reject_code", "501", 400, 599),
    i("non_fqdn_reject_code", "504", 400, 599),
    i("unknown_address_reject_code", "450", 400, 599),
    i("unknown_client_reject_code", "450", 400, 599),
    i("unknown_hostname_reject_code", "450", 400, 599).unsupported(),
    i("unknown_relay_recipient_reject_code", "550", 400, 599),
    i("plaintext_reject_code", "450", 400, 599),
    s("fast_flush_domains", "$relay_domains"),
    // SMTP client.
    t("smtp_connect_timeout", "30s", 's', 0, TMAX),
    t("smtp_helo_timeout", "300s", 's', 1, TMAX),
    t("smtp_mail_timeout", "300s", 's', 1, TMAX),
    t("smtp_rcpt_timeout", "300s", 's', 1, TMAX),
    t("smtp_data_init_timeout", "120s", 's', 1, TMAX),
    t("smtp_data_xfer_timeout", "180s", 's', 1, TMAX),
    t("smtp_data_done_timeout", "600s", 's', 1, TMAX),
    t("smtp_quit_timeout", "300s", 's', 1, TMAX),
    s("smtp_helo_name", "$myhostname"),
    s("smtp_bind_address", ""),
    s("smtp_bind_address6", ""),
    s("smtp_host_lookup", "dns").unsupported(),
    s("smtp_dns_support_level", "").unsupported(),
    s("smtp_dns_resolv_conf", ""),
    b("smtp_tls_mta_sts", "no"),
    s("smtp_tls_mta_sts_connect", ""),
    s("smtp_address_preference", "any").unsupported(),
    b("smtp_skip_5xx_greeting", "yes"),
    b("smtp_always_send_ehlo", "yes").unsupported(),
    b("smtp_never_send_ehlo", "no").unsupported(),
    i("smtp_line_length_limit", "998", 0, IMAX),
    i("smtp_mx_address_limit", "5", 0, IMAX),
    i("smtp_mx_session_limit", "2", 0, IMAX),
    s("smtp_fallback_relay", "$fallback_relay"),
    b("smtp_connection_cache_on_demand", "yes"),
    s("smtp_generic_maps", "").unsupported(),
    s("smtp_tls_security_level", ""),
    s("smtp_tls_cert_file", "").unsupported(),
    s("smtp_tls_key_file", "$smtp_tls_cert_file").unsupported(),
    s("smtp_tls_CAfile", ""),
    s("smtp_tls_CApath", ""),
    s("smtp_tls_loglevel", "0").unsupported(),
    s("smtp_tls_session_cache_database", "").unsupported(),
    b("smtp_sasl_auth_enable", "no"),
    s("smtp_sasl_password_maps", ""),
    s("smtp_sasl_security_options", "noplaintext, noanonymous"),
    b("disable_dns_lookups", "no").unsupported(),
    b("ignore_mx_lookup_error", "no").unsupported(),
    s("address_verify_map", "btree:$data_directory/verify_cache"),
    s("tls_random_source", "dev:/dev/urandom").unsupported(),
    b("tls_append_default_CA", "no").unsupported(),
    // More of Postfix's table, so `postconf -d` reads like Postfix's.
    b("helpful_warnings", "yes").unsupported(),
    s("alternate_config_directories", ""),
    s(
        "message_drop_headers",
        "bcc, content-length, resent-bcc, return-path",
    ),
    b("broken_sasl_auth_clients", "no").unsupported(),
    b("allow_untrusted_routing", "no"),
    s("sender_canonical_classes", "envelope_sender, header_sender"),
    s(
        "recipient_canonical_classes",
        "envelope_recipient, header_recipient",
    ),
    s("sender_dependent_relayhost_maps", ""),
    s("sender_dependent_default_transport_maps", ""),
    s("local_login_sender_maps", "static:*").unsupported(),
    s("empty_address_relayhost_maps_lookup_key", "<>"),
    s("command_execution_directory", ""),
    s("mailbox_defer_errors", "eagain, enospc, estale").unsupported(),
    s("maildir_defer_errors", "enospc, estale").unsupported(),
    b("relocated_prefix_enable", "yes"),
    i("default_recipient_refill_limit", "100", 1, IMAX).unsupported(),
    t("default_recipient_refill_delay", "5s", 's', 1, TMAX).unsupported(),
    i("default_delivery_slot_loan", "3", 0, IMAX).unsupported(),
    i("default_delivery_slot_discount", "50", 0, 100).unsupported(),
    s("default_destination_concurrency_positive_feedback", "1"),
    s("default_destination_concurrency_negative_feedback", "1"),
    i(
        "default_destination_concurrency_failed_cohort_limit",
        "1",
        0,
        IMAX,
    ),
    t("default_transport_rate_delay", "0s", 's', 0, TMAX).unsupported(),
    b("destination_concurrency_feedback_debug", "no"),
    t("application_event_drain_time", "100s", 's', 1, TMAX).unsupported(),
    s("best_mx_transport", "").unsupported(),
    t("smtp_connection_cache_time_limit", "2s", 's', 1, TMAX),
    i("smtp_connection_reuse_count_limit", "0", 0, IMAX),
    t("smtp_connection_reuse_time_limit", "300s", 's', 1, TMAX),
    s("smtp_connection_cache_destinations", ""),
    t("smtp_xforward_timeout", "300s", 's', 1, TMAX).unsupported(),
    t("smtp_starttls_timeout", "300s", 's', 1, TMAX),
    t("smtp_rset_timeout", "20s", 's', 1, TMAX),
    b("smtp_quote_rfc821_envelope", "yes").unsupported(),
    b("smtp_skip_quit_response", "yes").unsupported(),
    s("smtp_reply_filter", "").unsupported(),
    b("smtp_bind_address_enforce", "no").unsupported(),
    b("smtp_randomize_addresses", "yes").unsupported(),
    b("smtp_defer_if_no_mx_address_found", "no").unsupported(),
    b("smtp_send_xforward_command", "no").unsupported(),
    s("smtp_tls_policy_maps", ""),
    s("smtp_tls_protocols", ">=TLSv1"),
    s("smtp_tls_mandatory_protocols", ">=TLSv1").unsupported(),
    s("smtp_tls_ciphers", "medium"),
    s("smtp_tls_mandatory_ciphers", "medium").unsupported(),
    s(
        "smtp_tls_fingerprint_digest",
        "${{$compatibility_level} <level {3.6} ? {md5} : {sha256}}",
    ).unsupported(),
    s("smtp_tls_verify_cert_match", "hostname").unsupported(),
    s("smtp_tls_secure_cert_match", "nexthop, dot-nexthop").unsupported(),
    i("smtp_tls_scert_verifydepth", "9", 1, IMAX).unsupported(),
    b("smtp_tls_wrappermode", "no").unsupported(),
    b("smtp_tls_note_starttls_offer", "no").unsupported(),
    s("smtp_tls_chain_files", "").unsupported(),
    s("smtp_tls_servername", "").unsupported(),
    s("smtp_sasl_type", "cyrus").unsupported(),
    s("smtp_sasl_path", "").unsupported(),
    s("smtp_sasl_mechanism_filter", "").unsupported(),
    s(
        "smtp_sasl_tls_security_options",
        "$smtp_sasl_security_options",
    ).unsupported(),
    s(
        "smtp_sasl_tls_verified_security_options",
        "$smtp_sasl_tls_security_options",
    ).unsupported(),
    b("smtp_sasl_auth_soft_bounce", "yes").unsupported(),
    s("smtp_tcp_port", "smtp").unsupported(),
    i("smtp_min_data_rate", "500", 1, IMAX).unsupported(),
    b("smtp_balance_inet_protocols", "yes").unsupported(),
    b("smtp_per_record_deadline", "no").unsupported(),
    s("smtp_address_verify_target", "rcpt").unsupported(),
    s("smtp_header_checks", "").unsupported(),
    s("smtp_mime_header_checks", "").unsupported(),
    s("smtp_nested_header_checks", "").unsupported(),
    s("smtp_body_checks", "").unsupported(),
    s("smtp_discard_ehlo_keywords", "").unsupported(),
    s("smtp_discard_ehlo_keyword_address_maps", "").unsupported(),
    s(
        "smtpd_forbidden_commands",
        "CONNECT GET POST regexp:{{/^[^A-Z]/ Bogus}}",
    ),
    s("smtpd_command_filter", "").unsupported(),
    b("smtpd_use_tls", "no"),
    b("smtpd_enforce_tls", "no"),
    b("smtpd_tls_ask_ccert", "no").unsupported(),
    b("smtpd_tls_req_ccert", "no").unsupported(),
    i("smtpd_tls_ccert_verifydepth", "9", 1, IMAX).unsupported(),
    s("smtpd_tls_exclude_ciphers", ""),
    s("smtpd_tls_mandatory_exclude_ciphers", "").unsupported(),
    s(
        "smtpd_tls_fingerprint_digest",
        "${{$compatibility_level} <level {3.6} ? {md5} : {sha256}}",
    ).unsupported(),
    s("smtpd_tls_dh1024_param_file", "").unsupported(),
    s("smtpd_tls_eecdh_grade", "auto").unsupported(),
    t(
        "smtpd_tls_session_cache_timeout",
        "3600s",
        's',
        0,
        8_640_000,
    ).unsupported(),
    b("smtpd_tls_always_issue_session_ids", "yes").unsupported(),
    b("smtpd_delay_open_until_valid_rcpt", "yes").unsupported(),
    s("smtpd_sasl_service", "smtp").unsupported(),
    s("smtpd_sasl_exceptions_networks", "").unsupported(),
    i("smtpd_sasl_response_limit", "12288", 12288, IMAX).unsupported(),
    s("smtpd_sasl_mechanism_filter", "!external, static:rest").unsupported(),
    s("cyrus_sasl_config_path", "").unsupported(),
    s("auth_passdb", "passwd-file:${config_directory}/passwd, pam"),
    t("auth_failure_delay", "1s", 's', 0, 60),
    i("auth_failure_limit", "10", 1, IMAX),
    i("auth_client_limit", "256", 1, 100_000),
    b(
        "smtpd_relay_before_recipient_restrictions",
        "${{$compatibility_level} <level {3.6} ? {no} : {yes}}",
    ).unsupported(),
    s("relay_clientcerts", "").unsupported(),
    s("permit_mx_backup_networks", "").unsupported(),
    s("reject_tempfail_action", "defer_if_permit"),
    s(
        "unknown_helo_hostname_tempfail_action",
        "$reject_tempfail_action",
    ).unsupported(),
    s("unknown_address_tempfail_action", "$reject_tempfail_action").unsupported(),
    i("access_map_defer_code", "450", 400, 599),
    i("unverified_recipient_reject_code", "450", 400, 599),
    i("unverified_sender_reject_code", "450", 400, 599),
    i("unverified_recipient_defer_code", "450", 400, 599),
    i("unverified_sender_defer_code", "450", 400, 599),
    s("unverified_recipient_reject_reason", ""),
    s("unverified_sender_reject_reason", ""),
    s("unverified_recipient_tempfail_action", "$reject_tempfail_action"),
    s("unverified_sender_tempfail_action", "$reject_tempfail_action"),
    i("multi_recipient_bounce_reject_code", "550", 400, 599).unsupported(),
    s("rbl_reply_maps", "").unsupported(),
    s(
        "default_rbl_reply",
        "$rbl_code Service unavailable; $rbl_class [$rbl_what] blocked using $rbl_domain${rbl_reason?; $rbl_reason}",
    ),
    s("smtpd_proxy_ehlo", "$myhostname").unsupported(),
    t("smtpd_proxy_timeout", "100s", 's', 1, TMAX).unsupported(),
    s("smtpd_proxy_options", "").unsupported(),
    t("smtpd_policy_service_timeout", "100s", 's', 1, TMAX),
    i("smtpd_policy_service_request_limit", "0", 0, IMAX),
    t("smtpd_policy_service_max_idle", "300s", 's', 1, TMAX),
    t("smtpd_policy_service_max_ttl", "1000s", 's', 1, TMAX),
    i("smtpd_policy_service_try_limit", "2", 1, IMAX),
    t("smtpd_policy_service_retry_delay", "1s", 's', 1, TMAX),
    s(
        "smtpd_policy_service_default_action",
        "451 4.3.5 Server configuration problem",
    ),
    s("smtpd_policy_service_policy_context", ""),
    i("smtpd_client_new_tls_session_rate_limit", "0", 0, IMAX).unsupported(),
    i("smtpd_client_auth_rate_limit", "0", 0, IMAX),
    i("smtpd_client_ipv4_prefix_length", "32", 0, 32).unsupported(),
    i("smtpd_client_ipv6_prefix_length", "84", 0, 128).unsupported(),
    t("anvil_rate_time_unit", "60s", 's', 1, TMAX),
    t("anvil_status_update_time", "600s", 's', 1, TMAX),
    s("smtpd_authorized_verp_clients", "$authorized_verp_clients").unsupported(),
    s("smtpd_authorized_xforward_hosts", "").unsupported(),
    b("disable_verp_bounces", "no").unsupported(),
    s("smtpd_reject_footer", "").unsupported(),
    s("smtpd_reject_footer_maps", "").unsupported(),
    s("smtpd_discard_ehlo_keyword_address_maps", "").unsupported(),
    i("smtpd_min_data_rate", "500", 1, IMAX).unsupported(),
    s("smtpd_upstream_proxy_protocol", "").unsupported(),
    t("smtpd_upstream_proxy_timeout", "5s", 's', 1, TMAX).unsupported(),
    s("smtpd_log_access_permit_actions", "").unsupported(),
    i("smtpd_forbid_bare_newline_reject_code", "550", 400, 599),
    b("cleanup_replace_stray_cr_lf", "yes").unsupported(),
    s("smtputf8_autodetect_classes", "sendmail, verify").unsupported(),
    b("strict_smtputf8", "no").unsupported(),
    s("info_log_address_format", "external").unsupported(),
    b(
        "respectful_logging",
        "${{$compatibility_level} <level {3.6} ? {no} : {yes}}",
    ).unsupported(),
    s("maillog_file_permissions", "0600"),
    t("postlogd_watchdog_timeout", "10s", 's', 1, TMAX).unsupported(),
    s(
        "known_tcp_ports",
        "lmtp=24, smtp=25, smtps=submissions=465, submission=587",
    ).unsupported(),
    s("milter_connect_macros", "j {daemon_name} {daemon_addr} v _"),
    s(
        "milter_helo_macros",
        "{tls_version} {cipher} {cipher_bits} {cert_subject} {cert_issuer}",
    ),
    s(
        "milter_mail_macros",
        "i {auth_type} {auth_authen} {auth_author} {mail_addr} {mail_host} {mail_mailer}",
    ),
    s(
        "milter_rcpt_macros",
        "i {rcpt_addr} {rcpt_host} {rcpt_mailer}",
    ),
    s("milter_data_macros", "i"),
    s("milter_end_of_header_macros", "i"),
    s("milter_end_of_data_macros", "i"),
    t("milter_connect_timeout", "30s", 's', 1, TMAX),
    t("milter_command_timeout", "30s", 's', 1, TMAX),
    t("milter_content_timeout", "300s", 's', 1, TMAX),
    s("milter_protocol", "6"),
    s("milter_macro_daemon_name", "$myhostname"),
    s("milter_macro_v", "$mail_name $mail_version"),
    s("milter_header_checks", "").unsupported(),
    i("virtual_alias_recursion_limit", "1000", 1, IMAX),
    i("virtual_alias_expansion_limit", "1000", 1, IMAX),
    i("virtual_alias_address_length_limit", "1000", 1, IMAX).unsupported(),
    t("fast_flush_purge_time", "7d", 'd', 1, TMAX).unsupported(),
    t("fast_flush_refresh_time", "12h", 'h', 1, TMAX).unsupported(),
    s("qmqpd_authorized_clients", "").unsupported(),
    t("qmqpd_timeout", "300s", 's', 1, TMAX).unsupported(),
    t("qmqpd_error_delay", "1s", 's', 0, TMAX).unsupported(),
    s("proxywrite_service_name", "proxywrite").unsupported(),
    s("address_verify_service_name", "verify"),
    t("address_verify_positive_expire_time", "31d", 'd', 1, TMAX),
    t("address_verify_positive_refresh_time", "7d", 'd', 1, TMAX),
    t("address_verify_negative_expire_time", "3d", 'd', 1, TMAX),
    t("address_verify_negative_refresh_time", "3h", 'h', 1, TMAX),
    b("address_verify_negative_cache", "yes"),
    t("address_verify_cache_cleanup_interval", "12h", 'h', 0, TMAX),
    s("address_verify_sender", "$double_bounce_sender"),
    t("address_verify_sender_ttl", "0s", 's', 0, TMAX),
    i("address_verify_poll_count", "${stress?{1}:{3}}", 1, IMAX),
    t("address_verify_poll_delay", "3s", 's', 1, TMAX),
    // Postfix's DEF_VRFY_PEND_LIMIT: a quarter of qmgr_message_active_limit's default.
    i("address_verify_pending_request_limit", "5000", 1, IMAX),
    s("address_verify_local_transport", "$local_transport"),
    s("address_verify_virtual_transport", "$virtual_transport"),
    s("address_verify_relay_transport", "$relay_transport"),
    s("address_verify_default_transport", "$default_transport"),
    s("address_verify_relayhost", "$relayhost"),
    s("address_verify_transport_maps", "$transport_maps"),
    s(
        "address_verify_sender_dependent_relayhost_maps",
        "$sender_dependent_relayhost_maps",
    ),
    s(
        "address_verify_sender_dependent_default_transport_maps",
        "$sender_dependent_default_transport_maps",
    ),
    i("berkeley_db_create_buffer_size", "16777216", 1, IMAX).unsupported(),
    i("berkeley_db_read_buffer_size", "131072", 1, IMAX).unsupported(),
    b("force_mime_input_conversion", "no").unsupported(),
    b("strict_8bitmime_body", "no").unsupported(),
    b("strict_mime_encoding_domain", "no").unsupported(),
    b("detect_8bit_encoding_header", "yes").unsupported(),
    b("sender_based_routing", "no").unsupported(),
    s("transport_null_address_lookup_key", "<>").unsupported(),
    b("backwards_bounce_logfile_compatibility", "yes").unsupported(),
    s("bounce_template_file", "").unsupported(),
    b("frozen_delivered_to", "yes").unsupported(),
    b("reset_owner_alias", "no").unsupported(),
    s("default_filter_nexthop", "").unsupported(),
    s("internal_mail_filter_classes", "").unsupported(),
    s("default_delivery_status_filter", "").unsupported(),
    s(
        "local_delivery_status_filter",
        "$default_delivery_status_filter",
    ).unsupported(),
    s(
        "virtual_delivery_status_filter",
        "$default_delivery_status_filter",
    ).unsupported(),
    s(
        "smtp_delivery_status_filter",
        "$default_delivery_status_filter",
    ).unsupported(),
    s(
        "pipe_delivery_status_filter",
        "$default_delivery_status_filter",
    ).unsupported(),
    b("daemon_table_open_error_is_fatal", "no").unsupported(),
    b("dont_remove", "no").unsupported(),
    i("tcp_windowsize", "0", 0, IMAX).unsupported(),
    s(
        "tls_high_cipherlist",
        "aNULL:-aNULL:HIGH:!SEED:!IDEA:!3DES:!RC2:!RC4:!RC5:!kDH:!kECDH:!aDSS:!MD5:@STRENGTH",
    ).unsupported(),
    s(
        "tls_medium_cipherlist",
        "aNULL:-aNULL:HIGH:MEDIUM:!SEED:!IDEA:!3DES:!RC2:!RC4:!RC5:!kDH:!kECDH:!aDSS:!MD5:+RC4:@STRENGTH",
    ).unsupported(),
    b("tls_preempt_cipherlist", "no").unsupported(),
    s("tls_ssl_options", "").unsupported(),
    s("tls_disable_workarounds", "").unsupported(),
    s("tls_session_ticket_cipher", "aes-256-cbc").unsupported(),
    s("tls_server_sni_maps", "").unsupported(),
    s("tls_dane_digests", "sha512 sha256").unsupported(),
    b("tls_fast_shutdown_enable", "yes").unsupported(),
    s("tls_config_file", "default").unsupported(),
    s("tls_config_name", "").unsupported(),
    s("tls_random_exchange_name", "${data_directory}/prng_exch").unsupported(),
    i("tls_random_bytes", "32", 0, IMAX).unsupported(),
    t("tls_random_reseed_period", "3600s", 's', 1, TMAX).unsupported(),
    t("tls_random_prng_update_period", "3600s", 's', 1, TMAX).unsupported(),
    s("openssl_path", "openssl").unsupported(),
    s("dnssec_probe", "ns:.").unsupported(),
    s("postmulti_start_commands", "start").unsupported(),
    s("postmulti_stop_commands", "stop abort drain quick-stop").unsupported(),
    s("postmulti_control_commands", "reload flush").unsupported(),
    i("socketmap_max_reply_size", "100000", 1, IMAX).unsupported(),
    s("full_name_encoding_charset", "utf-8").unsupported(),
    b("enable_idna2003_compatibility", "no").unsupported(),
    s("proxy_read_access_list", "reject").unsupported(),
    s("proxy_write_access_list", "reject").unsupported(),
    // pop3d: our own (Postfix has no POP3 server); names after Dovecot's settings.
    s("pop3d_banner", "$myhostname POP3 server ready"),
    s("pop3d_tls_cert_file", "$smtpd_tls_cert_file"),
    s("pop3d_tls_key_file", "$smtpd_tls_key_file"),
    s("pop3d_tls_chain_files", ""),
    b("pop3d_tls_wrappermode", "no"),
    b("pop3d_disable_plaintext_auth", "yes"),
    s("pop3d_sasl_path", "private/auth"),
    t("pop3d_idle_timeout", "10m", 's', 1, TMAX),
    t("pop3d_login_timeout", "60s", 's', 1, TMAX),
    t("pop3d_login_failure_delay", "2s", 's', 0, TMAX),
    i("pop3d_login_command_limit", "20", 1, IMAX),
    i("pop3d_client_connection_count_limit", "10", 0, IMAX),
    s("pop3d_expire", ""),
    s("pop3d_login_delay", ""),
    // imapd: our own, after Dovecot's settings (as pop3d).
    s("imapd_banner", "$mail_name ready."),
    s("imapd_tls_cert_file", "$smtpd_tls_cert_file"),
    s("imapd_tls_key_file", "$smtpd_tls_key_file"),
    s("imapd_tls_chain_files", ""),
    b("imapd_tls_wrappermode", "no"),
    b("imapd_disable_plaintext_auth", "yes"),
    s("imapd_sasl_path", "private/auth"),
    t("imapd_idle_timeout", "30m", 's', 1, TMAX),
    t("imapd_login_timeout", "60s", 's', 1, TMAX),
    t("imapd_login_failure_delay", "2s", 's', 0, TMAX),
    i("imapd_login_command_limit", "20", 1, IMAX),
    i("imapd_client_connection_count_limit", "10", 0, IMAX),
    i("imapd_max_line_length", "65536", 1024, IMAX),
    i("imapd_append_size_limit", "52428800", 0, IMAX),
    s("imapd_special_use_folders", "Drafts Sent Trash Junk"),
    z("imapd_quota_storage_limit", "0", 0, ZMAX),
    b("pop3d_apop", "no"),
];

/// Suffixes of per-transport parameters (`relay_destination_concurrency_limit`,
/// `submission_time_limit`): Postfix accepts these for any master.cf service
/// name, so they are not warned about as unknown.
pub const TRANSPORT_SUFFIXES: &[&str] = &[
    "_destination_concurrency_limit",
    "_destination_recipient_limit",
    "_delivery_batch_limit",
    "_initial_destination_concurrency",
    "_destination_rate_delay",
    "_destination_concurrency_failed_cohort_limit",
    "_destination_concurrency_negative_feedback",
    "_destination_concurrency_positive_feedback",
    "_extra_recipient_limit",
    "_recipient_limit",
    "_recipient_refill_limit",
    "_recipient_refill_delay",
    "_delivery_slot_cost",
    "_delivery_slot_loan",
    "_delivery_slot_discount",
    "_minimum_delivery_slots",
    "_time_limit",
    "_transport_rate_delay",
];

/// Slots of [`INDEX`]: a power of two, at least twice the table.
const SLOTS: usize = 2048;
const _: () = assert!(ALL.len() * 2 <= SLOTS && SLOTS.is_power_of_two());
/// An empty slot of [`INDEX`].
const EMPTY: u16 = u16::MAX;

/// The table's positions by name, hashed at compile time (open addressing,
/// linear probing): a process that looks up a parameter builds nothing
/// first. (A HashMap built on first use cost every sendmail and postdrop
/// run about 50 µs.)
static INDEX: [u16; SLOTS] = index();

/// FNV-1a, which a `const fn` can compute.
const fn hash(name: &[u8]) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < name.len() {
        h ^= name[i] as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    h as usize & (SLOTS - 1)
}

const fn index() -> [u16; SLOTS] {
    let mut slots = [EMPTY; SLOTS];
    let mut i = 0;
    while i < ALL.len() {
        let mut s = hash(ALL[i].name.as_bytes());
        while slots[s] != EMPTY {
            s = (s + 1) & (SLOTS - 1);
        }
        slots[s] = i as u16;
        i += 1;
    }
    slots
}

/// The table entry for `name`, if the parameter is known.
pub fn lookup(name: &str) -> Option<&'static Param> {
    let mut s = hash(name.as_bytes());
    loop {
        let p = ALL.get(usize::from(*INDEX.get(s)?))?;
        if p.name == name {
            return Some(p);
        }
        s = (s + 1) & (SLOTS - 1);
    }
}

/// True when `name` is a per-transport parameter such as
/// `relay_destination_concurrency_limit` (any `<service>` prefix).
pub fn is_transport_param(name: &str) -> bool {
    TRANSPORT_SUFFIXES
        .iter()
        .any(|suffix| name.len() > suffix.len() && name.ends_with(suffix))
}

/// The host name as Postfix's `myhostname` default: `gethostname()`, with
/// `.localdomain` appended when it has no dot.
pub fn system_hostname() -> String {
    let name = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string());
    if name.contains('.') {
        name
    } else {
        format!("{name}.localdomain")
    }
}

/// Postfix's `mydomain` default for a given `myhostname`: the name without
/// its first label, or `localdomain` when that leaves no dot.
pub fn domain_of(hostname: &str) -> String {
    match hostname.split_once('.') {
        Some((_, rest)) if rest.contains('.') => rest.to_string(),
        _ => "localdomain".to_string(),
    }
}

/// The loopback networks that start every computed `mynetworks`.
pub const HOST_NETWORKS: &str = "127.0.0.0/8 [::ffff:127.0.0.0]/104 [::1]/128";
