//! The command line master gives a child:
//! `<command> -n <service> -t <type> [-c] [-u] [-z] [-v] [-s <nsock>] [-o name=value]... [args]`.
//!
//! `-c` chroot to queue_directory, `-u` run as mail_owner, `-z` no
//! max_idle/max_use (a service master wakes up periodically must stay),
//! `-s` the number of inherited listeners (default 1 when `-n` is given),
//! `-o` a main.cf override. Everything else is kept in order in
//! [`ServiceArgs::extra`] for the daemon itself.

use crate::Error;

/// The parsed command line of a service process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceArgs {
    /// The program name (basename of `argv[0]`).
    pub program: String,
    /// `-n`: the master.cf service name; empty when run by hand.
    pub service_name: String,
    /// `-t`: the master.cf type (`inet`, `unix`, `fifo`, `pass`).
    pub service_type: String,
    /// `-c`: chroot to queue_directory.
    pub chroot: bool,
    /// `-u`: run as mail_owner.
    pub unpriv: bool,
    /// `-z`: ignore max_idle and max_use.
    pub no_limits: bool,
    /// `-v`: verbose logging.
    pub verbose: bool,
    /// `-s`: number of inherited listeners.
    pub nsock: usize,
    /// `-o name=value` overrides, in order.
    pub overrides: Vec<(String, String)>,
    /// Remaining master.cf arguments, in order.
    pub extra: Vec<String>,
}

/// Largest `-s` accepted; master never passes more than a few.
pub const MAX_SOCKETS: usize = 64;

impl ServiceArgs {
    /// Parses argv (`argv[0]` included).
    ///
    /// # Errors
    /// An option is missing its value, or a value is malformed.
    pub fn parse<I: IntoIterator<Item = String>>(argv: I) -> Result<ServiceArgs, Error> {
        let mut it = argv.into_iter();
        let argv0 = it.next().unwrap_or_default();
        let program = argv0.rsplit('/').next().unwrap_or_default().to_string();
        let mut out = ServiceArgs {
            program,
            ..ServiceArgs::default()
        };
        let mut nsock = None;
        while let Some(a) = it.next() {
            match a.as_str() {
                "-n" => out.service_name = it.next().ok_or(Error::MissingValue("-n"))?,
                "-t" => out.service_type = it.next().ok_or(Error::MissingValue("-t"))?,
                "-c" => out.chroot = true,
                "-u" => out.unpriv = true,
                "-z" => out.no_limits = true,
                "-v" => out.verbose = true,
                "-s" => {
                    let v = it.next().ok_or(Error::MissingValue("-s"))?;
                    match v.parse::<usize>() {
                        Ok(n) if n <= MAX_SOCKETS => nsock = Some(n),
                        _ => return Err(Error::BadSocketCount(v)),
                    }
                }
                "-o" => {
                    let v = it.next().ok_or(Error::MissingValue("-o"))?;
                    let (k, val) = v
                        .split_once('=')
                        .ok_or_else(|| Error::BadOverride(v.clone()))?;
                    let k = k.trim();
                    if k.is_empty() {
                        return Err(Error::BadOverride(v.clone()));
                    }
                    out.overrides.push((k.to_string(), val.trim().to_string()));
                }
                _ => out.extra.push(a),
            }
        }
        // Started by master (-n given): one listener unless told otherwise.
        out.nsock = nsock.unwrap_or(if out.service_name.is_empty() { 0 } else { 1 });
        Ok(out)
    }

    /// Builds the argv master passes (without `argv[0]`); the inverse of [`ServiceArgs::parse`]
    /// for the options master sets. `extra` is appended as given (it holds `-o` words
    /// from master.cf unchanged).
    pub fn to_argv(&self) -> Vec<String> {
        let mut v = vec![
            "-n".to_string(),
            self.service_name.clone(),
            "-t".to_string(),
            self.service_type.clone(),
        ];
        for (on, flag) in [
            (self.chroot, "-c"),
            (self.unpriv, "-u"),
            (self.no_limits, "-z"),
            (self.verbose, "-v"),
        ] {
            if on {
                v.push(flag.to_string());
            }
        }
        v.push("-s".to_string());
        v.push(self.nsock.to_string());
        for (k, val) in &self.overrides {
            v.push("-o".to_string());
            v.push(format!("{k}={val}"));
        }
        v.extend(self.extra.iter().cloned());
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn parses_master_command_line() {
        let a = ServiceArgs::parse(s(&[
            "/usr/libexec/postfix/smtpd",
            "-n",
            "smtp",
            "-t",
            "inet",
            "-u",
            "-c",
            "-s",
            "2",
            "-o",
            "max_use=5",
            "extra",
            "-x",
        ]))
        .unwrap();
        assert_eq!(a.program, "smtpd");
        assert_eq!(a.service_name, "smtp");
        assert_eq!(a.service_type, "inet");
        assert!(a.unpriv && a.chroot && !a.no_limits);
        assert_eq!(a.nsock, 2);
        assert_eq!(a.overrides, vec![("max_use".to_string(), "5".to_string())]);
        assert_eq!(a.extra, s(&["extra", "-x"]));
    }

    #[test]
    fn round_trips() {
        let a =
            ServiceArgs::parse(s(&["echo", "-n", "x", "-t", "unix", "-z", "-o", "a=b"])).unwrap();
        let mut argv = vec!["echo".to_string()];
        argv.extend(a.to_argv());
        assert_eq!(ServiceArgs::parse(argv).unwrap(), a);
    }

    #[test]
    fn by_hand_has_no_sockets() {
        assert_eq!(ServiceArgs::parse(s(&["echo"])).unwrap().nsock, 0);
    }

    #[test]
    fn rejects_bad_values() {
        assert!(ServiceArgs::parse(s(&["x", "-s", "many"])).is_err());
        assert!(ServiceArgs::parse(s(&["x", "-s", "1000"])).is_err());
        assert!(ServiceArgs::parse(s(&["x", "-o", "novalue"])).is_err());
        assert!(ServiceArgs::parse(s(&["x", "-n"])).is_err());
    }
}
