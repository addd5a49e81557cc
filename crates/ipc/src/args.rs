//! The command line master gives a child:
//! `<command> -n <service> -t <type> [-c] [-u] [-z] [-v] [-s <nsock>] [-o name=value]... [args]`.
//!
//! `-c` chroot to queue_directory, `-u` run as mail_owner, `-z` no
//! max_idle/max_use (a service master wakes up periodically must stay),
//! `-s` the number of inherited listeners (default 1 when `-n` is given),
//! `-o` a main.cf override (`-i` and `-m` set max_idle and max_use; `-d`,
//! `-D`, `-l`, `-S`, `-V` and `-r N` are accepted and ignored). As with
//! Postfix's getopt, options may be bundled (`-uc`) and a value attached
//! (`-omax_use=5`); option parsing ends at `--` or at the first word that
//! is not an option, so a pipe service's `flags=... argv=/bin/sh -c ...`
//! is never read as options. That word and everything after it are kept
//! in order in [`ServiceArgs::extra`] for the daemon itself; an unknown
//! option before it is an error (Postfix: `invalid option`).

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

/// The options that take a value (Postfix's `i:m:n:o:r:s:t:`).
const OPTIONS_WITH_VALUE: &str = "imnorst";

/// The `-x` name of an option letter, for [`Error::MissingValue`].
fn option_name(c: char) -> &'static str {
    match c {
        'i' => "-i",
        'm' => "-m",
        'n' => "-n",
        'o' => "-o",
        'r' => "-r",
        's' => "-s",
        _ => "-t",
    }
}

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
        // getopt with a leading `+` (Postfix's GETOPT): options end at the
        // first word that is not one (`flags=...`, `argv=...`) or after
        // `--`; what follows belongs to the daemon, whatever it looks like.
        while let Some(word) = it.next() {
            if word == "--" {
                break;
            }
            let Some(letters) = word.strip_prefix('-').filter(|l| !l.is_empty()) else {
                out.extra.push(word);
                break;
            };
            for (i, c) in letters.char_indices() {
                if !OPTIONS_WITH_VALUE.contains(c) {
                    out.flag(c)?;
                    continue;
                }
                // The value is the rest of this word, or the next word.
                let rest = letters.get(i + c.len_utf8()..).unwrap_or_default();
                let value = if rest.is_empty() {
                    it.next().ok_or(Error::MissingValue(option_name(c)))?
                } else {
                    rest.to_string()
                };
                out.valued(c, value, &mut nsock)?;
                break;
            }
        }
        out.extra.extend(it);
        // Started by master (-n given): one listener unless told otherwise.
        out.nsock = nsock.unwrap_or(if out.service_name.is_empty() { 0 } else { 1 });
        Ok(out)
    }

    /// An option without a value.
    fn flag(&mut self, c: char) -> Result<(), Error> {
        match c {
            'c' => self.chroot = true,
            'u' => self.unpriv = true,
            'z' => self.no_limits = true,
            'v' => self.verbose = true,
            // Postfix's -d (foreground), -D (debugger), -l (alone), -S
            // (stdin), -V (log to stderr): accepted and ignored.
            'd' | 'D' | 'l' | 'S' | 'V' => {}
            _ => return Err(Error::InvalidOption(c)),
        }
        Ok(())
    }

    /// An option with its value.
    fn valued(&mut self, c: char, v: String, nsock: &mut Option<usize>) -> Result<(), Error> {
        match c {
            'n' => self.service_name = v,
            't' => self.service_type = v,
            's' => match v.parse::<usize>() {
                Ok(n) if n <= MAX_SOCKETS => *nsock = Some(n),
                _ => return Err(Error::BadSocketCount(v)),
            },
            'o' => {
                let (k, val) = v
                    .split_once('=')
                    .ok_or_else(|| Error::BadOverride(v.clone()))?;
                let k = k.trim();
                if k.is_empty() {
                    return Err(Error::BadOverride(v.clone()));
                }
                self.overrides.push((k.to_string(), val.trim().to_string()));
            }
            'i' => self.overrides.push(("max_idle".into(), v)),
            'm' => self.overrides.push(("max_use".into(), v)),
            // -r (retirement time): accepted and ignored.
            _ => {}
        }
        Ok(())
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

    /// What a child started by master for this master.cf line parses:
    /// the argv master builds (as master's spawn does) read back.
    fn as_started(line: &str) -> ServiceArgs {
        let entries =
            config::master_cf::parse(line, std::path::Path::new("master.cf"), 100).unwrap();
        let svc = &entries[0].service;
        let master = ServiceArgs {
            program: svc.command.clone(),
            service_name: svc.name.clone(),
            service_type: "unix".into(),
            chroot: svc.chroot,
            unpriv: svc.unpriv,
            nsock: 1,
            extra: svc.args.clone(),
            ..ServiceArgs::default()
        };
        let mut argv = vec![svc.command.clone()];
        argv.extend(master.to_argv());
        ServiceArgs::parse(argv).unwrap()
    }

    /// Real sites' pipe lines: the command's -u, -n, -o, -c, -e, -f, -a,
    /// -d stay the command's; only master's options are read.
    #[test]
    fn options_end_at_the_first_argument() {
        let a = as_started(
            "spamassassin unix - n n - - pipe flags=Rq user=nobody \
             argv=/usr/bin/spamc -u ${user} -e /usr/sbin/sendmail -oi -f ${sender} ${recipient}\n",
        );
        assert!(!a.unpriv && !a.chroot, "{a:?}");
        assert_eq!(a.service_name, "spamassassin");
        assert!(a.overrides.is_empty(), "{a:?}");
        assert_eq!(
            a.extra,
            s(&[
                "flags=Rq",
                "user=nobody",
                "argv=/usr/bin/spamc",
                "-u",
                "${user}",
                "-e",
                "/usr/sbin/sendmail",
                "-oi",
                "-f",
                "${sender}",
                "${recipient}"
            ])
        );

        let a =
            as_started("shell unix - n n - - pipe user=nobody argv=/bin/sh -c 'cat > /tmp/x'\n");
        assert!(!a.chroot && !a.unpriv, "{a:?}");
        assert_eq!(
            a.extra,
            s(&["user=nobody", "argv=/bin/sh", "-c", "'cat", ">", "/tmp/x'"])
        );

        let a = as_started(
            "dovecot unix - n n - - pipe flags=DRhu user=vmail \
             argv=/usr/lib/dovecot/dovecot-lda -f ${sender} -a ${original_recipient} -d ${user}@${nexthop}\n",
        );
        assert_eq!(a.service_name, "dovecot");
        assert!(!a.unpriv && !a.chroot && a.overrides.is_empty(), "{a:?}");
        assert_eq!(a.extra.len(), 9, "{a:?}");
        assert_eq!(a.extra[2], "argv=/usr/lib/dovecot/dovecot-lda");
        assert_eq!(a.extra[8], "${user}@${nexthop}");

        // With chroot=y and -o in master.cf: those are master's options,
        // the command's -n -o -u are not.
        let a = as_started(
            "tool unix - n y - - pipe -o max_use=7 user=nobody argv=/bin/x -n -o a=b -u -z\n",
        );
        assert!(a.chroot && !a.unpriv && !a.no_limits, "{a:?}");
        assert_eq!(a.service_name, "tool");
        assert_eq!(a.overrides, vec![("max_use".to_string(), "7".to_string())]);
        assert_eq!(
            a.extra,
            s(&["user=nobody", "argv=/bin/x", "-n", "-o", "a=b", "-u", "-z"])
        );
    }

    #[test]
    fn getopt_bundles_values_and_double_dash() {
        let a = ServiceArgs::parse(s(&[
            "x",
            "-uc",
            "-nsvc",
            "-omax_use=3",
            "-s1",
            "--",
            "-u",
            "rest",
        ]))
        .unwrap();
        assert!(a.unpriv && a.chroot);
        assert_eq!(a.service_name, "svc");
        assert_eq!(a.nsock, 1);
        assert_eq!(a.overrides, vec![("max_use".to_string(), "3".to_string())]);
        assert_eq!(a.extra, s(&["-u", "rest"]));
        // A lone "-" is an argument, as with getopt.
        let a = ServiceArgs::parse(s(&["x", "-", "-u"])).unwrap();
        assert!(!a.unpriv);
        assert_eq!(a.extra, s(&["-", "-u"]));
        let e = ServiceArgs::parse(s(&["x", "-q", "a"])).unwrap_err();
        assert_eq!(e.to_string(), "invalid option: q");
    }

    #[test]
    fn rejects_bad_values() {
        assert!(ServiceArgs::parse(s(&["x", "-s", "many"])).is_err());
        assert!(ServiceArgs::parse(s(&["x", "-s", "1000"])).is_err());
        assert!(ServiceArgs::parse(s(&["x", "-o", "novalue"])).is_err());
        assert!(ServiceArgs::parse(s(&["x", "-n"])).is_err());
    }
}
