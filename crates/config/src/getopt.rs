//! getopt - how the administrator's commands (postmap, postalias, postcat,
//! postqueue) read their options, as Postfix's getopt(3) use: flags
//! bundled (`-fr`), a value attached or in the next word (`-qkey`,
//! `-q key`), `--` ending the options. Words that are not options
//! (operands: table names, queue ids) are returned in place, so the caller
//! decides whether they may stand between options.

/// One word, or one flag out of a bundle, of a command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// `-x` for a flag without a value.
    Flag(char),
    /// `-x value` or `-xvalue` for a flag named in `with_value`.
    Value(char, String),
    /// A word that is not an option, or any word after `--`.
    Operand(String),
}

/// Splits `argv` (without argv\[0\]) into [`Arg`]s. `with_value` lists the
/// flags that take a value (`"cdq"` for postmap's `-c dir -d key -q key`).
///
/// # Errors
/// The flag whose value is missing at the end of the line.
pub fn getopt(argv: &[String], with_value: &str) -> Result<Vec<Arg>, char> {
    let mut out = Vec::with_capacity(argv.len());
    let mut words = argv.iter();
    while let Some(word) = words.next() {
        if word == "--" {
            out.extend(words.by_ref().map(|w| Arg::Operand(w.clone())));
            break;
        }
        let Some(flags) = word.strip_prefix('-').filter(|f| !f.is_empty()) else {
            out.push(Arg::Operand(word.clone()));
            continue;
        };
        for (pos, flag) in flags.char_indices() {
            if !with_value.contains(flag) {
                out.push(Arg::Flag(flag));
                continue;
            }
            let attached = flags.get(pos + flag.len_utf8()..).unwrap_or_default();
            let value = if attached.is_empty() {
                words.next().cloned().ok_or(flag)?
            } else {
                attached.to_string()
            };
            out.push(Arg::Value(flag, value));
            break;
        }
    }
    Ok(out)
}

/// The arguments after argv\[0\]; `None` when one is not UTF-8 (a usage
/// error for our commands: std::env::args would panic on it).
pub fn utf8_args() -> Option<Vec<String>> {
    std::env::args_os()
        .skip(1)
        .map(|a| a.into_string().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn bundles_values_operands_and_double_dash() {
        let got = getopt(&words(&["-fq", "key", "hash:a", "-cdir", "--", "-x"]), "cq").unwrap();
        assert_eq!(
            got,
            vec![
                Arg::Flag('f'),
                Arg::Value('q', "key".into()),
                Arg::Operand("hash:a".into()),
                Arg::Value('c', "dir".into()),
                Arg::Operand("-x".into()),
            ]
        );
        assert_eq!(
            getopt(&words(&["-"]), "q").unwrap(),
            vec![Arg::Operand("-".into())]
        );
        assert_eq!(
            getopt(&words(&["-q", "-"]), "q").unwrap(),
            vec![Arg::Value('q', "-".into())]
        );
    }

    #[test]
    fn missing_value_names_the_flag() {
        assert_eq!(getopt(&words(&["-v", "-q"]), "q"), Err('q'));
        assert_eq!(getopt(&words(&["-vc"]), "c"), Err('c'));
    }
}
