//! The delivery of one recipient, with its expansion (Postfix's
//! local/recipient.c, alias.c, dotforward.c, include.c, mailbox.c,
//! command.c, file.c, indirect.c in one walk).
//!
//! A recipient is looked up in alias_maps (`local+ext`, then `local`),
//! then the user's .forward (forward_path), then delivered to the
//! mailbox (mailbox_command, home_mailbox or mail_spool_directory).
//! Alias and .forward targets are delivered recursively: local users
//! again through this walk (up to [`MAX_LEVEL`] deep), other addresses
//! collected and forwarded as one new message through cleanup, commands
//! and files as the user, an :include: file's owner or default_privs
//! (never as root: see [`Walk::delivery_ids`]). Each final
//! delivery logs its own `to=` line; the recipient's status is the worst
//! of them (deferred, then bounced, then delivered). Repeated targets in
//! one expansion are delivered once.

use std::collections::HashSet;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use delivery::command::{self, Spec};
use delivery::headers::{Prepend, delivered_form, prepend_lines};
use delivery::privs::{AsUser, Ids, become_user, can_switch};
use delivery::{Message, Outcome, copy};
use mailstore::{maildir, mbox};
use proto::deliver::{Action, Recipient};

use crate::forward;
use crate::settings::{Account, Settings};
use crate::targets::{self, Target};

/// relay= in log lines.
pub(crate) const RELAY: &str = "local";

/// Deepest alias/.forward nesting before it is called a loop.
pub(crate) const MAX_LEVEL: usize = 100;

/// Largest .forward or :include: file read.
pub(crate) const LIST_FILE_LIMIT: u64 = 1 << 20;

/// How an address was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Top,
    Alias,
    Forward,
    Include,
}

impl Kind {
    /// The word allow_mail_to_commands and allow_mail_to_files use.
    fn word(self) -> &'static str {
        match self {
            Kind::Top => "",
            Kind::Alias => "alias",
            Kind::Forward => "forward",
            Kind::Include => "include",
        }
    }
}

/// Postfix's msg_attr: the address being delivered and how it came here.
#[derive(Debug, Clone)]
struct Attr {
    address: String,
    level: usize,
    kind: Kind,
    /// The alias name or user whose expansion produced this address.
    exp_from: Option<String>,
    /// `\user`: no alias or .forward.
    bypass: bool,
    /// The address whose expansion produced this one (the Delivered-To
    /// of a forwarded copy).
    parent: Option<String>,
}

/// The parts of an address that commands and forward_path see.
#[derive(Debug, Clone, Default)]
struct Parts {
    local: String,
    user: String,
    extension: String,
    delimiter: String,
    domain: String,
}

impl Parts {
    fn of(address: &str, delimiters: &str) -> Parts {
        let (local, domain) = match address.rfind('@') {
            Some(at) => (
                address.get(..at).unwrap_or_default(),
                address.get(at + 1..).unwrap_or_default(),
            ),
            None => (address, ""),
        };
        let local = local.to_lowercase();
        let mut p = Parts {
            user: local.clone(),
            domain: domain.to_lowercase(),
            ..Parts::default()
        };
        if let Some(e) = address::split_extension(&local, delimiters) {
            if e.extension.contains('/') {
                maillog::warning!(
                    "address with illegal extension: {}",
                    maillog::printable(address, 200)
                );
            } else {
                p.user = e.base.to_string();
                p.extension = e.extension.to_string();
                p.delimiter = e.delimiter.to_string();
            }
        }
        p.local = local;
        p
    }
}

/// One recipient's walk.
struct Walk<'a> {
    s: &'a Settings,
    msg: &'a Message<'a>,
    original: &'a str,
    /// Names this recipient's deliveries in Maildir file names.
    tag: String,
    results: Vec<Outcome>,
    forwards: Vec<(String, String)>,
    seen: HashSet<String>,
}

/// Delivers one recipient of a request.
pub(crate) fn deliver(s: &Settings, msg: &Message<'_>, rcpt: &Recipient) -> Outcome {
    let mut w = Walk {
        s,
        msg,
        original: &rcpt.original,
        tag: msg.delivery_tag(rcpt),
        results: Vec::new(),
        forwards: Vec::new(),
        seen: HashSet::new(),
    };
    w.recipient(Attr {
        address: rcpt.address.clone(),
        level: 0,
        kind: Kind::Top,
        exp_from: None,
        bypass: false,
        parent: None,
    });
    w.flush_forwards();
    w.summary(&rcpt.address)
}

impl Walk<'_> {
    fn record(&mut self, to: &str, outcome: Outcome) {
        self.msg.log(to, self.original, RELAY, &outcome);
        self.results.push(outcome);
    }

    fn summary(&mut self, top: &str) -> Outcome {
        if self.results.is_empty() {
            let o = Outcome::bounce("5.4.6", format!("mail forwarding loop for {top}"));
            self.record(top, o);
        }
        let expanded = self.results.iter().map(|o| o.expanded).sum();
        let first = self.results.first().cloned();
        let worst = self
            .results
            .iter()
            .max_by_key(|o| o.severity())
            .cloned()
            .or(first);
        let mut out = worst.unwrap_or_else(|| Outcome::sent("delivered"));
        out.expanded = expanded;
        // Found again on a retry only when every part of the expansion is.
        out.findable = self.results.iter().all(|o| o.findable);
        out
    }

    fn recipient(&mut self, attr: Attr) {
        let addr = attr.address.clone();
        if attr.level > MAX_LEVEL || self.msg.has_delivered_to(&addr) {
            let o = Outcome::bounce("5.4.6", format!("mail forwarding loop for {addr}"));
            return self.record(&addr, o);
        }
        let parts = Parts::of(&addr, &self.s.delimiters);
        if attr.level > 0 && !parts.domain.is_empty() && !self.s.is_local_domain(&parts.domain) {
            return self.forward(&attr, &addr);
        }
        if parts.user.is_empty() {
            return self.record(
                &addr,
                Outcome::bounce("5.1.3", format!("null username in {addr}")),
            );
        }
        if !attr.bypass {
            if self.alias(&attr, &parts.local) {
                return;
            }
            if !parts.extension.is_empty() && self.alias(&attr, &parts.user) {
                return;
            }
        }
        match self.account(&parts.user, &addr) {
            Ok(Some(account)) => {
                if !attr.bypass && self.dot_forward(&attr, &parts, &account) {
                    return;
                }
                self.mailbox(&attr, &parts, &account);
            }
            Ok(None) => self.unknown(&attr, &parts),
            Err(o) => self.record(&addr, o),
        }
    }

    /// The account to deliver as: from passwd; when not root, also a name
    /// local_recipient_maps knows (delivered as ourselves).
    fn account(&self, user: &str, address: &str) -> Result<Option<Account>, Outcome> {
        if let Some(a) = Account::lookup(user) {
            return Ok(Some(a));
        }
        if can_switch() {
            return Ok(None);
        }
        let maps = match &self.s.recipient_maps {
            Ok(m) => m,
            Err(e) => {
                maillog::warning!("{e}");
                return Err(Outcome::defer("4.3.0", "local_recipient_maps lookup error"));
            }
        };
        let search = tables::AddressSearch {
            delimiters: &self.s.delimiters,
            local_domain: true,
            propagate_extension: false,
        };
        match tables::find_address(maps, address, &search) {
            Ok(Some(_)) => Ok(Some(Account::myself(user))),
            Ok(None) => Ok(None),
            Err(e) => {
                maillog::warning!(
                    "local_recipient_maps lookup for {}: {e}",
                    maillog::printable(address, 200)
                );
                Err(Outcome::defer("4.3.0", "local_recipient_maps lookup error"))
            }
        }
    }

    fn unknown(&mut self, attr: &Attr, parts: &Parts) {
        if !self.s.luser_relay.is_empty() {
            let look = |n: &str| macro_value(n, attr, parts, None);
            match delivery::macros::expand(&self.s.luser_relay, &look) {
                Ok(relay) if !relay.trim().is_empty() => {
                    let privs = self.alias_rights();
                    for t in targets::parse(&relay) {
                        self.target(attr, t, Kind::Alias, &parts.user, &privs);
                    }
                    return;
                }
                Ok(_) => {}
                Err(e) => maillog::warning!("luser_relay: {e}"),
            }
        }
        let o = Outcome::bounce("5.1.1", format!("unknown user: \"{}\"", parts.local));
        self.record(&attr.address, o);
    }

    /// Looks `name` up in alias_maps and expands it; false when not an alias.
    fn alias(&mut self, attr: &Attr, name: &str) -> bool {
        if attr.kind == Kind::Alias && attr.exp_from.as_deref() == Some(name) {
            return false;
        }
        let maps = match &self.s.alias_maps {
            Ok(m) => m,
            Err(e) => {
                maillog::warning!("{e}");
                self.record(
                    &attr.address,
                    Outcome::defer("4.3.0", "alias database unavailable"),
                );
                return true;
            }
        };
        let found = match maps.lookup(name) {
            Ok(Some(v)) => v,
            Ok(None) => return false,
            Err(e) => {
                maillog::warning!(
                    "alias_maps lookup of {}: {e}",
                    maillog::printable(name, 100)
                );
                self.record(
                    &attr.address,
                    Outcome::defer("4.3.0", "alias database unavailable"),
                );
                return true;
            }
        };
        if !self.seen.insert(format!("alias {name}")) {
            return true;
        }
        // Postfix's alias.c: a root-owned table establishes no rights
        // (commands and files then run as default_privs); a table another
        // user owns gives that user's rights.
        let privs = if found.owner == 0 || !can_switch() {
            self.alias_rights()
        } else if let Some(a) = Account::by_uid(found.owner) {
            a
        } else {
            maillog::warning!("cannot find alias database owner for uid {}", found.owner);
            self.record(
                &attr.address,
                Outcome::defer("4.3.0", "cannot find alias database owner"),
            );
            return true;
        };
        for t in targets::parse(&found.value) {
            self.target(attr, t, Kind::Alias, name, &privs);
        }
        true
    }

    /// The rights of a root-owned alias table: uid and gid 0, meaning
    /// none established yet (Postfix's reset user attributes); commands
    /// and files get default_privs' ids ([`Walk::delivery_ids`]), a
    /// user's :include: file its owner's.
    fn alias_rights(&self) -> Account {
        Account {
            name: self.s.default_privs.name.clone(),
            ids: Ids { uid: 0, gid: 0 },
            home: None,
            shell: String::new(),
        }
    }

    /// The ids a command or file delivery runs with: never root's, as in
    /// Postfix's local (command.c, file.c): a uid 0 (root's .forward,
    /// mailbox_command for root, a root-owned alias or :include:) becomes
    /// default_privs' uid, a gid 0 its gid.
    fn delivery_ids(&self, privs: &Account) -> Ids {
        let default = self.s.default_privs.ids;
        Ids {
            uid: if privs.ids.uid == 0 {
                default.uid
            } else {
                privs.ids.uid
            },
            gid: if privs.ids.gid == 0 {
                default.gid
            } else {
                privs.ids.gid
            },
        }
    }

    /// One target of an alias, .forward or :include: expansion of `parent`.
    fn target(&mut self, parent: &Attr, t: Target, kind: Kind, from: &str, privs: &Account) {
        match t {
            Target::Command(cmd) => {
                if !self.s.commands_allowed.iter().any(|k| k == kind.word()) {
                    let o = Outcome::bounce("5.7.1", "mail to command is restricted");
                    return self.record(&parent.address, o);
                }
                self.command(parent, &cmd, privs);
            }
            Target::File(path) => {
                if !self.s.files_allowed.iter().any(|k| k == kind.word()) {
                    let o = Outcome::bounce("5.7.1", "mail to file is restricted");
                    return self.record(&parent.address, o);
                }
                self.file(parent, &path, privs);
            }
            Target::Include(path) => self.include(parent, &path, privs, from),
            Target::Address { address, bypass } => {
                let address = if address.contains('@') {
                    address
                } else {
                    format!("{address}@{}", self.s.myorigin)
                };
                let child = Attr {
                    address,
                    level: parent.level + 1,
                    kind,
                    exp_from: Some(from.to_string()),
                    bypass,
                    parent: Some(parent.address.clone()),
                };
                self.recipient(child);
            }
        }
    }

    fn forward(&mut self, attr: &Attr, address: &str) {
        if self
            .seen
            .insert(format!("forward {}", address.to_lowercase()))
        {
            let delivered = attr.parent.clone().unwrap_or_else(|| attr.address.clone());
            self.forwards.push((delivered, address.to_string()));
        }
    }

    /// Submits the collected forward addresses, one message per
    /// Delivered-To value.
    fn flush_forwards(&mut self) {
        let mut pending = std::mem::take(&mut self.forwards);
        if self.msg.verify_only() {
            for (_, a) in pending {
                self.record(&a, crate::probe::forward(&a));
            }
            return;
        }
        while let Some((delivered, _)) = pending.first().cloned() {
            let (group, rest): (Vec<_>, Vec<_>) =
                pending.into_iter().partition(|(d, _)| *d == delivered);
            pending = rest;
            let addrs: Vec<String> = group.into_iter().map(|(_, a)| a).collect();
            let prepend = if self.s.prepend_delivered.iter().any(|k| k == "forward") {
                vec![format!("Delivered-To: {}", delivered_form(&delivered))]
            } else {
                Vec::new()
            };
            let result = forward::submit(
                Path::new("."),
                self.msg.sender(),
                &addrs,
                &prepend,
                &mut self.msg.content(),
            );
            for a in &addrs {
                let o = match &result {
                    Ok(id) => Outcome {
                        expanded: 1,
                        ..Outcome::sent(format!("forwarded as {id}"))
                    },
                    Err((dsn, text)) if dsn.starts_with('5') => Outcome::bounce(dsn, text.clone()),
                    Err((dsn, text)) => Outcome::defer(dsn, text.clone()),
                };
                self.record(a, o);
            }
        }
    }

    /// The user's .forward, when there is a usable one; true when it was
    /// expanded.
    fn dot_forward(&mut self, attr: &Attr, parts: &Parts, account: &Account) -> bool {
        if attr.kind == Kind::Forward && attr.exp_from.as_deref() == Some(account.name.as_str()) {
            return false;
        }
        if account.home.is_none() {
            return false;
        }
        let look = |n: &str| macro_value(n, attr, parts, Some(account));
        let paths = match delivery::macros::expand(&self.s.forward_path, &look) {
            Ok(p) => p,
            Err(e) => {
                maillog::warning!("forward_path: {e}");
                return false;
            }
        };
        for path in forward_candidates(&paths) {
            let text = match read_list_file(
                Path::new(path),
                account.ids,
                Some(account.ids.uid),
                "forward",
            ) {
                Ok(Some(text)) => text,
                Ok(None) => continue,
                // Not knowing what the .forward says, deliver nothing.
                Err(o) => {
                    self.record(&attr.address, o);
                    return true;
                }
            };
            let targets = targets::parse(&text);
            if targets.is_empty() {
                continue;
            }
            if !self.seen.insert(format!("forward-file {}", account.name)) {
                return true;
            }
            for t in targets {
                self.target(attr, t, Kind::Forward, &account.name, account);
            }
            return true;
        }
        false
    }

    fn include(&mut self, attr: &Attr, path: &str, privs: &Account, from: &str) {
        if !path.starts_with('/') {
            let o = Outcome::bounce("5.3.5", format!(":include:{path} uses a relative path"));
            return self.record(&attr.address, o);
        }
        if !self.seen.insert(format!("include {path}")) {
            return;
        }
        let meta = {
            let _as = match switch_to(privs.ids) {
                Ok(g) => g,
                Err(o) => return self.record(&attr.address, o),
            };
            std::fs::metadata(path)
        };
        let meta = match meta {
            Ok(m) => m,
            Err(e) => {
                let o = Outcome::defer(
                    "4.3.0",
                    format!("unable to lookup include file {path}: {e}"),
                );
                return self.record(&attr.address, o);
            }
        };
        if !meta.is_file() {
            let o = Outcome::bounce("5.3.5", format!("not a regular file: {path}"));
            return self.record(&attr.address, o);
        }
        if meta.mode() & 0o002 != 0 {
            let o = Outcome::bounce("5.3.5", format!("file is world writable: {path}"));
            return self.record(&attr.address, o);
        }
        // Postfix's include.c: when no rights were established (uid 0: a
        // root-owned alias or root's .forward), a file owned by a user is
        // expanded, and its commands and files delivered, with that
        // user's rights; otherwise the rights stay those of the alias or
        // .forward that listed it, so that nobody gains another user's
        // rights by including a file that user owns.
        // (A development instance delivers as itself whoever owns it.)
        let owner = if privs.ids.uid == 0 && meta.uid() != 0 && can_switch() {
            match Account::by_uid(meta.uid()) {
                Some(a) => a,
                None => {
                    maillog::warning!("cannot find username for uid {}", meta.uid());
                    maillog::warning!("{path}: cannot find :include: file owner username");
                    let o = Outcome::defer("4.3.5", "mail system configuration error");
                    return self.record(&attr.address, o);
                }
            }
        } else {
            privs.clone()
        };
        let text = match read_list_file(Path::new(path), owner.ids, None, "include") {
            Ok(Some(text)) => text,
            Ok(None) => {
                let o = Outcome::defer("4.3.0", format!("cannot open include file {path}"));
                return self.record(&attr.address, o);
            }
            Err(o) => return self.record(&attr.address, o),
        };
        for t in targets::parse(&text) {
            self.target(attr, t, Kind::Include, from, &owner);
        }
    }

    fn prepend(&self, attr: &Attr, delivered_to: bool) -> Vec<String> {
        prepend_lines(
            Prepend {
                return_path: true,
                original_to: self.s.original_to,
                delivered_to,
            },
            self.msg.sender(),
            self.original,
            &attr.address,
        )
    }

    fn mailbox(&mut self, attr: &Attr, parts: &Parts, account: &Account) {
        if !self.seen.insert(format!("mailbox {}", account.name)) {
            return;
        }
        if self.msg.verify_only() {
            return self.record(&attr.address, crate::probe::mailbox(self.s));
        }
        if !self.s.mailbox_command.is_empty() {
            let cmd = self.s.mailbox_command.clone();
            let o = self.run_command(attr, parts, &cmd, account);
            return self.record(&attr.address, o);
        }
        let lines = self.prepend(attr, true);
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        let o = match destination(&self.s.home_mailbox, account) {
            Destination::Spool => self.spool(account, &lines),
            Destination::Home { path, maildir } => {
                let policy = mbox::DotlockPolicy::Required;
                self.store(&path, maildir, account.ids, policy, &lines)
            }
            Destination::NoHome => Outcome::defer(
                "4.3.0",
                format!("no home directory for user {}", account.name),
            ),
        };
        self.record(&attr.address, o);
    }

    /// mail_spool_directory/user: opened (and created) as root, owned by
    /// the user, who must own an existing one; as ourselves otherwise.
    fn spool(&self, account: &Account, lines: &[&str]) -> Outcome {
        let path = self.s.spool_dir.join(&account.name);
        if let Some(o) = delivery::dedupe::mbox_duplicate(self.msg, &path, lines) {
            return o;
        }
        let root = can_switch();
        let options = mbox::Options {
            size_limit: self.s.size_limit,
            dotlock: self.dotlock(mbox::DotlockPolicy::MayFail),
            lock: self.s.lock.clone(),
            fcntl: self.s.fcntl,
            owner: root.then_some((account.ids.uid, account.ids.gid)),
            expected_owner: root.then_some(account.ids.uid),
            ..mbox::Options::default()
        };
        match mbox::deliver(
            &path,
            &options,
            self.msg.sender(),
            lines,
            &mut self.msg.content(),
        ) {
            Ok(_) => delivery::dedupe::mbox_delivered(lines),
            Err(e) => Outcome::store_error(
                &format!(
                    "cannot update mailbox {} for user {}",
                    path.display(),
                    account.name
                ),
                &e,
            ),
        }
    }

    fn dotlock(&self, policy: mbox::DotlockPolicy) -> mbox::DotlockPolicy {
        if self.s.dotlock {
            policy
        } else {
            mbox::DotlockPolicy::Off
        }
    }

    /// A Maildir (`maildir`) or an mbox file written as `ids`.
    fn store(
        &self,
        path: &Path,
        is_maildir: bool,
        ids: Ids,
        policy: mbox::DotlockPolicy,
        lines: &[&str],
    ) -> Outcome {
        let _as = match switch_to(ids) {
            Ok(g) => g,
            Err(o) => return o,
        };
        let duplicate = if is_maildir {
            delivery::dedupe::maildir_duplicate(self.msg, path, &self.tag)
        } else {
            delivery::dedupe::mbox_duplicate(self.msg, path, lines)
        };
        if let Some(o) = duplicate {
            return o;
        }
        let mut content = self.msg.content();
        if is_maildir {
            let options = maildir::Options {
                size_limit: self.s.size_limit,
                tag: Some(self.tag.clone()),
                ..maildir::Options::default()
            };
            match delivery::commit::maildir_deliver(path, &options, lines, &mut content) {
                Ok(_) => Outcome::stored("delivered to maildir"),
                Err(e) => {
                    Outcome::store_error(&format!("cannot update maildir {}", path.display()), &e)
                }
            }
        } else {
            let options = mbox::Options {
                size_limit: self.s.size_limit,
                dotlock: self.dotlock(policy),
                lock: self.s.lock.clone(),
                fcntl: self.s.fcntl,
                ..mbox::Options::default()
            };
            match mbox::deliver(path, &options, self.msg.sender(), lines, &mut content) {
                Ok(_) => delivery::dedupe::mbox_delivered(lines),
                Err(e) => {
                    Outcome::store_error(&format!("cannot update mailbox {}", path.display()), &e)
                }
            }
        }
    }

    fn file(&mut self, attr: &Attr, path: &str, privs: &Account) {
        if !self.seen.insert(format!("file {path}")) {
            return;
        }
        if self.msg.verify_only() {
            return self.record(&attr.address, crate::probe::file(path));
        }
        let ids = self.delivery_ids(privs);
        let delivered = self.s.prepend_delivered.iter().any(|k| k == "file");
        let lines = self.prepend(attr, delivered);
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        let is_maildir = path.ends_with('/');
        if !is_maildir {
            match executable_file(Path::new(path), ids) {
                Ok(false) => {}
                Ok(true) => {
                    let o = Outcome::bounce("5.2.0", format!("executable destination file {path}"));
                    return self.record(&attr.address, o);
                }
                Err(o) => return self.record(&attr.address, o),
            }
        }
        let mut o = self.store(
            Path::new(path),
            is_maildir,
            ids,
            mbox::DotlockPolicy::MayFail,
            &lines,
        );
        if o.action == Action::Delivered && !is_maildir {
            o.text = format!("delivered to file: {path}");
        }
        self.record(&attr.address, o);
    }

    fn command(&mut self, attr: &Attr, cmd: &str, privs: &Account) {
        if !self.seen.insert(format!("command {} {cmd}", privs.ids.uid)) {
            return;
        }
        if self.msg.verify_only() {
            return self.record(&attr.address, crate::probe::command(cmd));
        }
        let parts = Parts::of(&attr.address, &self.s.delimiters);
        let o = self.run_command(attr, &parts, cmd, privs);
        self.record(&attr.address, o);
    }

    fn run_command(&self, attr: &Attr, parts: &Parts, cmd: &str, account: &Account) -> Outcome {
        let shell = if self.s.shell.is_empty() {
            "/bin/sh".to_string()
        } else {
            self.s.shell.clone()
        };
        let ids = self.delivery_ids(account);
        let cwd = if self.s.exec_dir.is_empty() {
            // The home directory, unless the command runs as default_privs
            // instead (root's home is not theirs to enter).
            match &account.home {
                Some(home) if home.is_dir() && ids == account.ids => home.clone(),
                _ => PathBuf::from("/"),
            }
        } else {
            let look = |n: &str| macro_value(n, attr, parts, Some(account));
            match delivery::macros::expand(&self.s.exec_dir, &look) {
                Ok(d) => PathBuf::from(d),
                Err(e) => {
                    maillog::warning!("command_execution_directory: {e}");
                    return Outcome::defer("4.3.5", "mail system configuration error");
                }
            }
        };
        let mut env = vec![("PATH".to_string(), "/usr/bin:/bin".to_string())];
        // None for a root-owned alias, as in Postfix.
        if !account.shell.is_empty() {
            env.push(("SHELL".into(), account.shell.clone()));
        }
        if let Some(home) = &account.home {
            env.push(("HOME".into(), home.display().to_string()));
        }
        env.extend([
            ("USER".into(), account.name.clone()),
            ("LOGNAME".into(), account.name.clone()),
            ("LOCAL".into(), parts.local.clone()),
            ("DOMAIN".into(), parts.domain.clone()),
            ("EXTENSION".into(), parts.extension.clone()),
            ("RECIPIENT".into(), attr.address.clone()),
            ("SENDER".into(), self.msg.sender().to_string()),
            ("ORIGINAL_RECIPIENT".into(), self.original.to_string()),
        ]);
        for (var, attr) in [
            ("CLIENT_ADDRESS", "client_address"),
            ("CLIENT_HOSTNAME", "client_name"),
            ("CLIENT_HELO", "helo_name"),
            ("CLIENT_PROTOCOL", "protocol"),
            ("SASL_USERNAME", "sasl_username"),
        ] {
            if let Some(v) = self.msg.attribute(attr) {
                env.push((var.into(), v.to_string()));
            }
        }
        for item in self
            .s
            .export_env
            .split([' ', ',', '\t'])
            .filter(|s| !s.is_empty())
        {
            match item.split_once('=') {
                Some((k, v)) => env.push((k.into(), v.into())),
                None => {
                    if let Ok(v) = std::env::var(item) {
                        env.push((item.into(), v));
                    }
                }
            }
        }
        let now = std::time::SystemTime::now();
        let options = copy::Options {
            from_line: Some(mbox::from_line(
                self.msg.sender(),
                now,
                mailstore::localtime::utc_offset(now),
            )),
            prepend: self.prepend(
                attr,
                self.s.prepend_delivered.iter().any(|k| k == "command"),
            ),
            ..copy::Options::default()
        };
        let spec = Spec {
            argv: vec![shell, "-c".into(), cmd.to_string()],
            env,
            cwd: Some(cwd),
            ids: Some(ids),
            time_limit: self.s.time_limit,
        };
        match command::run(&spec, &mut self.msg.content(), &options) {
            Ok(done) => command::outcome(
                &done,
                cmd,
                &format!("delivered to command: {}", maillog::printable(cmd, 100)),
            ),
            Err(e) => Outcome::defer("4.3.0", format!("cannot run command: {e}")),
        }
    }
}

/// Where a user's mailbox is (without mailbox_command).
#[derive(Debug, PartialEq, Eq)]
enum Destination {
    /// mail_spool_directory/USER.
    Spool,
    /// home_mailbox under the home directory; a Maildir when it ends in `/`.
    Home { path: PathBuf, maildir: bool },
    /// home_mailbox is set but the user has no home directory.
    NoHome,
}

fn destination(home_mailbox: &str, account: &Account) -> Destination {
    if home_mailbox.is_empty() {
        return Destination::Spool;
    }
    match &account.home {
        Some(home) => Destination::Home {
            path: home.join(home_mailbox.trim_start_matches('/')),
            maildir: home_mailbox.ends_with('/'),
        },
        None => Destination::NoHome,
    }
}

fn ids_error(e: nix::Error) -> Outcome {
    Outcome::defer("4.3.0", format!("cannot set user and group ids: {e}"))
}

/// Switches to `ids` for a check or a read; a failure defers the
/// delivery rather than letting it go on as root.
fn switch_to(ids: Ids) -> Result<AsUser, Outcome> {
    become_user(ids).map_err(|e| {
        maillog::warning!("cannot switch to uid {} gid {}: {e}", ids.uid, ids.gid);
        ids_error(e)
    })
}

/// True when `path` is an executable regular file, looked at as `ids`.
///
/// # Errors
/// A deferral when the switch to `ids` fails.
fn executable_file(path: &Path, ids: Ids) -> Result<bool, Outcome> {
    let _as = switch_to(ids)?;
    Ok(std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false))
}

/// Reads a .forward or :include: file as `ids`: a regular file, not
/// world-writable, owned by root or `owner` (when given). None (with a
/// warning unless it does not exist) when it cannot be used.
///
/// # Errors
/// A deferral when the switch to `ids` fails.
fn read_list_file(
    path: &Path,
    ids: Ids,
    owner: Option<u32>,
    what: &str,
) -> Result<Option<String>, Outcome> {
    // Most users have no .forward: when root sees no such name (no
    // directory on the way hides it from root, or the answer would be
    // EACCES), the user would not either, and the two privilege switches
    // of a read as the user (about a tenth of local's CPU a delivery on a
    // Maildir, `perf record` under scripts/bench smtp) are not made.
    if can_switch()
        && std::fs::symlink_metadata(path).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
    {
        return Ok(None);
    }
    let _as = switch_to(ids)?;
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            maillog::warning!("cannot open {what} file {}: {e}", path.display());
            return Ok(None);
        }
    };
    let Ok(meta) = file.metadata() else {
        return Ok(None);
    };
    if !meta.is_file() {
        maillog::warning!("{what} file {} is not a regular file", path.display());
        return Ok(None);
    }
    if let Some(uid) = owner
        && meta.uid() != 0
        && meta.uid() != uid
    {
        maillog::warning!("file {} has bad owner uid {}", path.display(), meta.uid());
        return Ok(None);
    }
    if meta.mode() & 0o002 != 0 {
        maillog::warning!("file {} is world writable", path.display());
        return Ok(None);
    }
    let mut bytes = Vec::new();
    if let Err(e) = file.take(LIST_FILE_LIMIT).read_to_end(&mut bytes) {
        maillog::warning!("read {what} file {}: {e}", path.display());
        return Ok(None);
    }
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

/// The files of an expanded forward_path, in order, each once: with no
/// address extension the default `$home/.forward${recipient_delimiter}${extension},
/// $home/.forward` names the same file twice, and a file looked at once
/// (as the user, with two privilege switches) says the same the second time.
fn forward_candidates(paths: &str) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for p in paths.split([',', ' ', '\t']).filter(|p| !p.is_empty()) {
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

/// `$name` values for forward_path, command_execution_directory and
/// luser_relay.
fn macro_value(
    name: &str,
    attr: &Attr,
    parts: &Parts,
    account: Option<&Account>,
) -> Option<String> {
    Some(match name {
        "user" => parts.user.clone(),
        "extension" => parts.extension.clone(),
        "recipient_delimiter" => parts.delimiter.clone(),
        "domain" => parts.domain.clone(),
        "local" | "mailbox" => parts.local.clone(),
        "recipient" => attr.address.clone(),
        "home" => account
            .and_then(|a| a.home.as_ref())
            .map(|h| h.display().to_string())
            .unwrap_or_default(),
        "shell" => account.map(|a| a.shell.clone()).unwrap_or_default(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_of_addresses() {
        let p = Parts::of("Bob+Box@Example.org", "+");
        assert_eq!(
            (
                p.local.as_str(),
                p.user.as_str(),
                p.extension.as_str(),
                p.delimiter.as_str(),
                p.domain.as_str()
            ),
            ("bob+box", "bob", "box", "+", "example.org")
        );
        let p = Parts::of("bob+a/b@x", "+");
        assert_eq!((p.user.as_str(), p.extension.as_str()), ("bob+a/b", ""));
        let p = Parts::of("carol", "");
        assert_eq!((p.user.as_str(), p.domain.as_str()), ("carol", ""));
    }

    #[test]
    fn mailbox_destinations() {
        let mut acct = Account {
            name: "bob".into(),
            ids: Ids { uid: 1, gid: 1 },
            home: Some(PathBuf::from("/home/bob")),
            shell: "/bin/sh".into(),
        };
        assert_eq!(destination("", &acct), Destination::Spool);
        assert_eq!(
            destination("Maildir/", &acct),
            Destination::Home {
                path: PathBuf::from("/home/bob/Maildir/"),
                maildir: true
            }
        );
        assert_eq!(
            destination("Mailbox", &acct),
            Destination::Home {
                path: PathBuf::from("/home/bob/Mailbox"),
                maildir: false
            }
        );
        acct.home = None;
        assert_eq!(destination("Maildir/", &acct), Destination::NoHome);
    }

    /// A switch the kernel refuses (gid -1) fails the executable-file
    /// check and the .forward/:include: read with a deferral; neither
    /// goes on as root.
    #[test]
    fn failed_switch_defers_checks_and_reads() {
        if !can_switch() {
            testkit::skip("needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("list");
        std::fs::write(&file, "bob\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
        let bad = Ids {
            uid: 65534,
            gid: u32::MAX,
        };
        let o = executable_file(&file, bad).unwrap_err();
        assert_eq!((o.action, o.dsn.as_str()), (Action::Deferred, "4.3.0"));
        assert!(
            o.text.starts_with("cannot set user and group ids: "),
            "{o:?}"
        );
        let o = read_list_file(&file, bad, None, "include").unwrap_err();
        assert_eq!((o.action, o.dsn.as_str()), (Action::Deferred, "4.3.0"));
        // A file root sees no name for is not looked for as the user.
        let none = dir.path().join(".forward");
        assert_eq!(read_list_file(&none, bad, None, "forward"), Ok(None));
        assert!(nix::unistd::geteuid().is_root());
        // The same as root itself works.
        let root = Ids { uid: 0, gid: 0 };
        assert_eq!(executable_file(&file, root), Ok(true));
        assert_eq!(
            read_list_file(&file, root, None, "include")
                .unwrap()
                .as_deref(),
            Some("bob\n")
        );
    }

    #[test]
    fn forward_files_are_looked_at_once_each() {
        assert_eq!(
            forward_candidates("/home/bob/.forward, /home/bob/.forward"),
            vec!["/home/bob/.forward"]
        );
        assert_eq!(
            forward_candidates("/home/bob/.forward+x,/home/bob/.forward\t/home/bob/.forward+x"),
            vec!["/home/bob/.forward+x", "/home/bob/.forward"]
        );
        assert!(forward_candidates(" , ").is_empty());
    }

    #[test]
    fn forward_path_expansion() {
        let attr = Attr {
            address: "bob+x@h".into(),
            level: 0,
            kind: Kind::Top,
            exp_from: None,
            bypass: false,
            parent: None,
        };
        let parts = Parts::of(&attr.address, "+");
        let acct = Account {
            name: "bob".into(),
            ids: Ids { uid: 1, gid: 1 },
            home: Some(PathBuf::from("/home/bob")),
            shell: "/bin/sh".into(),
        };
        let look = |n: &str| macro_value(n, &attr, &parts, Some(&acct));
        assert_eq!(
            delivery::macros::expand(
                "$home/.forward${recipient_delimiter}${extension}, $home/.forward",
                &look
            )
            .unwrap(),
            "/home/bob/.forward+x, /home/bob/.forward"
        );
    }
}
