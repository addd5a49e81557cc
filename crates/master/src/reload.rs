//! Starting services, and SIGHUP (`postfix reload`): reread main.cf and
//! master.cf, start services that are new, stop those removed, keep the
//! listeners of those that still listen on the same place. A kept service
//! whose entry or main.cf changed gets a new status pipe: its old children
//! see the old one close and exit after their current client (Postfix's
//! behaviour), and new children start with the new settings. A service
//! whose entry and main.cf are unchanged keeps its children too.

use std::path::PathBuf;

use config::master_cf::{self, Service as Entry};

use crate::event::Master;
use crate::listener::{self, Endpoint};
use crate::service::Service;

/// The version master reports.
pub(crate) const VERSION: &str = env!("CARGO_PKG_VERSION");

impl Master {
    /// `daemon_directory/command`.
    pub(crate) fn program_path(&self, entry: &Entry) -> PathBuf {
        PathBuf::from(self.config.str("daemon_directory")).join(&entry.command)
    }

    /// True (after a warning) when `entry` names a Postfix program this
    /// suite does not build and that is not installed: the service is
    /// skipped, as `postfix check` says, instead of failing the start.
    pub(crate) fn not_built(&self, entry: &Entry) -> bool {
        let Some(why) = config::master_cf::not_built(&entry.command) else {
            return false;
        };
        if self.program_path(entry).is_file() {
            return false;
        }
        maillog::warning!(
            "master.cf line {}: service {}: program {} {why}; service skipped",
            entry.line,
            entry.name,
            entry.command
        );
        true
    }

    /// Opens the listeners of a new service.
    ///
    /// # Errors
    /// The listen address is bad or bind failed.
    pub(crate) fn start_service(
        &self,
        entry: Entry,
        endpoint: Endpoint,
    ) -> Result<Service, String> {
        let listeners = listener::open(&endpoint, entry.private, self.owner)?;
        let path = self.program_path(&entry);
        Service::new(entry, path, endpoint, listeners)
    }

    /// Stops a removed service: closes its listeners and sends SIGTERM to its children.
    fn stop_service(&mut self, mut svc: Service) {
        let pids: Vec<u32> = svc.children.drain().map(|(pid, _)| pid).collect();
        self.retire(pids, &svc.path, true);
        listener::unlink(&svc.endpoint);
    }

    /// Rereads both files and applies the difference.
    pub(crate) fn reload(&mut self) {
        let dir = self.config_dir.display().to_string();
        maillog::info!("reload -- version {VERSION}, configuration {dir}");
        let config = match config::Config::load(&self.config_dir) {
            Ok(c) => c,
            Err(e) => {
                maillog::error!("{e}; configuration not reloaded");
                return;
            }
        };
        let entries = match master_cf::load(&self.config_dir.join("master.cf")) {
            Ok(e) => e,
            Err(e) => {
                maillog::error!("{e}; configuration not reloaded");
                return;
            }
        };
        // Started as root (an owner was checked then): check the new value too.
        if self.owner.is_some() {
            match crate::setup::mail_owner(&config) {
                Ok(o) => self.owner = Some(o),
                Err(e) => {
                    maillog::error!("{e}; configuration not reloaded");
                    return;
                }
            }
        }
        let text = std::fs::read_to_string(self.config_dir.join("main.cf")).unwrap_or_default();
        let main_changed = text != self.main_cf_text;
        self.config = config;
        self.main_cf_text = text;
        self.apply(entries, main_changed);
    }

    fn apply(&mut self, entries: Vec<Entry>, main_changed: bool) {
        let mut old: Vec<Option<Service>> = std::mem::take(&mut self.services)
            .into_iter()
            .map(Some)
            .collect();
        let mut plan: Vec<(Entry, Endpoint, Option<Service>)> = Vec::new();
        for entry in entries {
            if self.not_built(&entry) {
                continue;
            }
            let ep = match listener::endpoint(&entry, &self.config, &self.qdir) {
                Ok(ep) => ep,
                Err(e) => {
                    maillog::warning!(
                        "master.cf line {}: {e}; service {} skipped",
                        entry.line,
                        entry.name
                    );
                    continue;
                }
            };
            let kept = old
                .iter_mut()
                .find(|o| o.as_ref().is_some_and(|s| same_listener(s, &entry, &ep)))
                .and_then(Option::take);
            plan.push((entry, ep, kept));
        }
        // Stop removed services first, so a new service may reuse an address.
        for svc in old.into_iter().flatten() {
            self.stop_service(svc);
        }
        for (entry, ep, kept) in plan {
            match kept {
                Some(svc) => {
                    let svc = self.keep_service(svc, entry, main_changed);
                    self.services.push(svc);
                }
                None => match self.start_service(entry, ep) {
                    Ok(s) => self.services.push(s),
                    Err(e) => maillog::warning!("{e}; service not started"),
                },
            }
        }
    }

    /// Keeps a service's listeners; retires its children when anything changed.
    fn keep_service(&mut self, mut svc: Service, entry: Entry, main_changed: bool) -> Service {
        let mut same = entry.clone();
        same.line = svc.entry.line;
        let unchanged = same == svc.entry && !main_changed;
        svc.path = self.program_path(&entry);
        let wakeup_changed = entry.wakeup != svc.entry.wakeup;
        svc.entry = entry;
        if wakeup_changed {
            svc.next_wakeup = (svc.entry.wakeup > 0).then(std::time::Instant::now);
        }
        if !unchanged {
            svc.throttled_until = None;
            match svc.retire_children() {
                Ok(pids) => {
                    let path = svc.path.clone();
                    self.retire(pids, &path, false);
                }
                Err(e) => maillog::warning!("service {}: {e}", svc.entry.name),
            }
        }
        svc
    }
}

/// Same type, name, private flag and listen address.
fn same_listener(s: &Service, entry: &Entry, ep: &Endpoint) -> bool {
    s.entry.kind == entry.kind
        && s.entry.name == entry.name
        && s.entry.private == entry.private
        && &s.endpoint == ep
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn write_cf(m: &Master, text: &str) {
        std::fs::write(m.config_dir.join("master.cf"), text).unwrap();
    }

    #[test]
    fn reload_keeps_adds_removes_and_retires() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = Master::for_test(dir.path(), "");
        write_cf(
            &m,
            "a unix - n n - 2 echo\nb unix - n n - 2 echo\nc unix - n n - 2 echo\n",
        );
        m.reload();
        assert_eq!(m.services.len(), 3);
        let fd_a = m.services[0].listeners[0].fd.as_raw_fd();
        let fd_c = m.services[2].listeners[0].fd.as_raw_fd();
        // Real processes stand in for children, so the SIGTERM hits something we own.
        let mut kids: Vec<std::process::Child> = (0..3)
            .map(|_| {
                std::process::Command::new("sleep")
                    .arg("30")
                    .spawn()
                    .unwrap()
            })
            .collect();
        for (i, k) in kids.iter().enumerate() {
            m.services[i].add_child(k.id());
        }
        // a unchanged, b removed, c changed (maxproc), d new.
        write_cf(
            &m,
            "a unix - n n - 2 echo\nc unix - n n - 3 echo\nd unix - n n - 2 echo\n",
        );
        m.reload();
        let names: Vec<&str> = m.services.iter().map(|s| s.entry.name.as_str()).collect();
        assert_eq!(names, ["a", "c", "d"]);
        assert_eq!(
            m.services[0].listeners[0].fd.as_raw_fd(),
            fd_a,
            "a keeps its listener"
        );
        assert!(
            m.services[0].children.contains_key(&kids[0].id()),
            "a keeps its child"
        );
        assert_eq!(
            m.services[1].listeners[0].fd.as_raw_fd(),
            fd_c,
            "c keeps its listener"
        );
        assert!(m.services[1].children.is_empty(), "c's child is retired");
        assert!(!m.retired[&kids[2].id()].killed, "retired gracefully");
        assert!(m.retired[&kids[1].id()].killed, "b's child got SIGTERM");
        assert!(!m.qdir.join("private/b").exists(), "b's socket removed");
        assert!(m.qdir.join("private/d").exists());
        let st = kids[1].wait().unwrap();
        assert_eq!(std::os::unix::process::ExitStatusExt::signal(&st), Some(15));
        for i in [0, 2] {
            kids[i].kill().unwrap();
            kids[i].wait().unwrap();
        }
    }

    #[test]
    fn bad_master_cf_keeps_running_services() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = Master::for_test(dir.path(), "");
        write_cf(&m, "a unix - n n - 2 echo\n");
        m.reload();
        write_cf(&m, "a unix - n n - 2\n");
        m.reload();
        assert_eq!(m.services.len(), 1);
    }
}
