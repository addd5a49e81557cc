//! Command-line parsing: Postfix's getopt-style options for postconf.
//!
//! Options may be bundled (`-nh`), `-c` takes a value attached or as the
//! next argument, `--` ends options. Options and operands may be mixed.

use std::path::PathBuf;

/// What postconf is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Print main.cf parameters (the default).
    Print,
    /// `-e` or `name=value` operands: set parameters in main.cf.
    Edit,
    /// `-X`: remove parameters from main.cf.
    Remove,
    /// `-#`: comment out parameters in main.cf.
    Comment,
    /// `-M`: print master.cf entries.
    Master,
    /// `-F`: print master.cf fields as `service/type/field = value`.
    MasterFields,
    /// `-P`: print master.cf `-o` settings as `service/type/name = value`.
    MasterParams,
    /// `-l`: list mailbox locking methods.
    Locks,
    /// `-m`: list lookup table types.
    MapTypes,
    /// `-a`: list SASL server plug-in types.
    SaslServer,
    /// `-A`: list SASL client plug-in types.
    SaslClient,
    /// `-T mode`: TLS library information.
    Tls,
}

/// Parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Args {
    /// `-c config_dir`.
    pub(crate) config_dir: Option<PathBuf>,
    /// `-d`: defaults instead of actual settings.
    pub(crate) defaults: bool,
    /// `-n`: only parameters main.cf sets.
    pub(crate) non_default: bool,
    /// `-h`: values only.
    pub(crate) values_only: bool,
    /// `-x`: expand `$name` in values.
    pub(crate) expand: bool,
    /// The operation.
    pub(crate) mode: Mode,
    /// Operands: names, `name=value`, or `service[/type]`.
    pub(crate) operands: Vec<String>,
    /// `-T mode`.
    pub(crate) tls_mode: String,
}

/// The usage line printed after `fatal: usage:`.
pub(crate) const USAGE: &str = "postconf [-dhnx] [-c config_dir] [parameter ...] | \
postconf [-e] [-c config_dir] parameter=value ... | \
postconf -X|-# [-c config_dir] parameter ... | \
postconf -M [-x] [-c config_dir] [service[/type] ...] | \
postconf -F [-x] [-c config_dir] [service[/type[/field]] ...] | \
postconf -P [-x] [-c config_dir] [service[/type[/parameter]] ...] | \
postconf -a|-A|-l|-m | postconf -T compile-version|run-version|public-key-algorithms";

/// Parses the arguments after the program name.
///
/// # Errors
/// A message for an unknown option, a missing `-c` value or conflicting
/// modes.
pub(crate) fn parse(argv: &[String]) -> Result<Args, String> {
    let mut a = Args {
        config_dir: None,
        defaults: false,
        non_default: false,
        values_only: false,
        expand: false,
        mode: Mode::Print,
        operands: Vec::new(),
        tls_mode: String::new(),
    };
    let mut explicit: Option<Mode> = None;
    let mut set_mode = |m: Mode| -> Result<(), String> {
        match explicit {
            Some(old) if old != m => Err("conflicting options".to_string()),
            _ => {
                explicit = Some(m);
                Ok(())
            }
        }
    };
    let mut it = argv.iter();
    let mut options_done = false;
    while let Some(arg) = it.next() {
        if options_done || arg == "-" || !arg.starts_with('-') {
            a.operands.push(arg.clone());
            continue;
        }
        if arg == "--" {
            options_done = true;
            continue;
        }
        for (i, c) in arg.char_indices().skip(1) {
            match c {
                'c' => {
                    let rest = arg.get(i + 1..).unwrap_or("");
                    let dir = if rest.is_empty() {
                        it.next()
                            .cloned()
                            .ok_or_else(|| "option -c requires an argument".to_string())?
                    } else {
                        rest.to_string()
                    };
                    a.config_dir = Some(PathBuf::from(dir));
                    break;
                }
                'd' => a.defaults = true,
                'n' => a.non_default = true,
                'h' => a.values_only = true,
                'x' => a.expand = true,
                'e' => set_mode(Mode::Edit)?,
                'X' => set_mode(Mode::Remove)?,
                '#' => set_mode(Mode::Comment)?,
                'M' => set_mode(Mode::Master)?,
                'F' => set_mode(Mode::MasterFields)?,
                'P' => set_mode(Mode::MasterParams)?,
                'l' => set_mode(Mode::Locks)?,
                'm' => set_mode(Mode::MapTypes)?,
                'a' => set_mode(Mode::SaslServer)?,
                'A' => set_mode(Mode::SaslClient)?,
                'T' => {
                    set_mode(Mode::Tls)?;
                    let rest = arg.get(i + 1..).unwrap_or("");
                    a.tls_mode = if rest.is_empty() {
                        it.next()
                            .cloned()
                            .ok_or_else(|| "option -T requires an argument".to_string())?
                    } else {
                        rest.to_string()
                    };
                    break;
                }
                other => return Err(format!("invalid option -- '{other}'")),
            }
        }
    }
    a.mode = match explicit {
        Some(m) => m,
        // `postconf name=value` edits, as `postconf -e name=value` does.
        None if !a.operands.is_empty() && a.operands.iter().all(|o| o.contains('=')) => Mode::Edit,
        None => Mode::Print,
    };
    let edits = matches!(a.mode, Mode::Edit | Mode::Remove | Mode::Comment);
    if a.mode != Mode::Print && a.mode != Mode::Master && (a.defaults || a.non_default) {
        return Err("-d and -n are for printing only".to_string());
    }
    if edits && a.operands.is_empty() {
        return Err("no parameters given to edit".to_string());
    }
    if a.defaults && a.non_default {
        return Err("-d and -n cannot be combined".to_string());
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Args, String> {
        parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn flags_and_operands() {
        let a = p(&["-nh", "-c", "/tmp/x", "myhostname"]).unwrap();
        assert!(a.non_default && a.values_only && !a.defaults);
        assert_eq!(a.config_dir, Some(PathBuf::from("/tmp/x")));
        assert_eq!(a.operands, ["myhostname"]);
        assert_eq!(a.mode, Mode::Print);
        let a = p(&["-c/etc/x", "-d"]).unwrap();
        assert_eq!(a.config_dir, Some(PathBuf::from("/etc/x")));
        assert!(a.defaults);
    }

    #[test]
    fn modes() {
        assert_eq!(p(&["-e", "a=b"]).unwrap().mode, Mode::Edit);
        assert_eq!(p(&["a=b", "c=d"]).unwrap().mode, Mode::Edit);
        assert_eq!(p(&["-X", "a"]).unwrap().mode, Mode::Remove);
        assert_eq!(p(&["-#", "a"]).unwrap().mode, Mode::Comment);
        assert_eq!(p(&["-M"]).unwrap().mode, Mode::Master);
        assert_eq!(p(&["-Mx", "smtp/inet"]).unwrap().operands, ["smtp/inet"]);
        assert!(p(&["-e", "-X", "a"]).is_err());
        assert!(p(&["-X"]).is_err());
        assert!(p(&["-q"]).is_err());
        assert!(p(&["-c"]).is_err());
        assert!(p(&["-dn"]).is_err());
        assert!(p(&["-d", "-e", "a=b"]).is_err());
    }
}
