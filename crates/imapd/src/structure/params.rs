//! Content-Type and Content-Disposition values parsed from the raw header:
//! the main value (`type/subtype` or the disposition type) and the
//! parameters, names and values as sent (Dovecot keeps their case too),
//! comments skipped. RFC 2231 continuations
//! are joined as Dovecot joins them: `name*0`, `name*1` into `name`; an
//! extended parameter (`name*=` or `name*0*=`) stays `name*` with its
//! charset'language'%-encoded value undecoded. mail-parser decodes these,
//! which BODYSTRUCTURE must not, so this parser is ours.

/// The main value (trimmed) and the parameters.
pub fn parse(raw: &[u8]) -> (String, Vec<(String, Vec<u8>)>) {
    let mut i = 0;
    let main = token_until(raw, &mut i, b';');
    let mut raw_params: Vec<(String, Vec<u8>)> = Vec::new();
    while i < raw.len() && raw_params.len() < 100 {
        if raw[i] != b';' {
            i += 1;
            continue;
        }
        i += 1;
        skip_ws(raw, &mut i);
        let start = i;
        while i < raw.len() && !matches!(raw[i], b'=' | b';') && !raw[i].is_ascii_whitespace() {
            i += 1;
        }
        let name = String::from_utf8_lossy(&raw[start..i]).into_owned();
        skip_ws(raw, &mut i);
        if raw.get(i) != Some(&b'=') || name.is_empty() {
            continue;
        }
        i += 1;
        skip_ws(raw, &mut i);
        let value = if raw.get(i) == Some(&b'"') {
            i += 1;
            let mut v = Vec::new();
            while i < raw.len() && raw[i] != b'"' {
                if raw[i] == b'\\' && i + 1 < raw.len() {
                    i += 1;
                }
                if raw[i] != b'\r' && raw[i] != b'\n' {
                    v.push(raw[i]);
                }
                i += 1;
            }
            i += 1;
            v
        } else {
            let start = i;
            while i < raw.len() && raw[i] != b';' && !raw[i].is_ascii_whitespace() {
                i += 1;
            }
            raw[start..i].to_vec()
        };
        raw_params.push((name, value));
    }
    (
        String::from_utf8_lossy(&main).trim().to_string(),
        join_continuations(raw_params),
    )
}

/// Skip white space and comments.
fn skip_ws(raw: &[u8], i: &mut usize) {
    while *i < raw.len() {
        if raw[*i].is_ascii_whitespace() {
            *i += 1;
        } else if raw[*i] == b'(' {
            let mut depth = 0usize;
            while *i < raw.len() {
                match raw[*i] {
                    b'\\' => *i += 1,
                    b'(' => depth += 1,
                    b')' => {
                        depth -= 1;
                        if depth == 0 {
                            *i += 1;
                            break;
                        }
                    }
                    _ => {}
                }
                *i += 1;
            }
        } else {
            break;
        }
    }
}

fn token_until(raw: &[u8], i: &mut usize, stop: u8) -> Vec<u8> {
    let start = *i;
    while *i < raw.len() && raw[*i] != stop {
        *i += 1;
    }
    raw[start..*i]
        .iter()
        .copied()
        .filter(|c| !c.is_ascii_whitespace())
        .collect()
}

/// `name*N[*]` segments joined in order, other parameters kept.
fn join_continuations(params: Vec<(String, Vec<u8>)>) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    let mut segs: Vec<(String, u32, bool, Vec<u8>)> = Vec::new();
    for (name, value) in params {
        let (base, ext) = match name.strip_suffix('*') {
            Some(b) => (b.to_string(), true),
            None => (name.clone(), false),
        };
        if let Some((b, n)) = base
            .rsplit_once('*')
            .and_then(|(b, n)| Some((b, n.parse::<u32>().ok()?)))
        {
            segs.push((b.to_string(), n, ext, value));
            continue;
        }
        out.push((name, value));
    }
    let mut bases: Vec<String> = Vec::new();
    for s in &segs {
        if !bases.contains(&s.0) {
            bases.push(s.0.clone());
        }
    }
    for b in bases {
        let mut parts: Vec<&(String, u32, bool, Vec<u8>)> =
            segs.iter().filter(|s| s.0 == b).collect();
        parts.sort_by_key(|s| s.1);
        let ext = parts.first().is_some_and(|s| s.2);
        let value: Vec<u8> = parts.iter().flat_map(|s| s.3.iter().copied()).collect();
        out.push((if ext { format!("{b}*") } else { b }, value));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> (String, Vec<(String, String)>) {
        let (m, v) = parse(s.as_bytes());
        (
            m,
            v.into_iter()
                .map(|(a, b)| (a, String::from_utf8_lossy(&b).into_owned()))
                .collect(),
        )
    }

    #[test]
    fn params() {
        assert_eq!(
            p(" TEXT/Plain; CHARSET=US-ASCII"),
            (
                "TEXT/Plain".into(),
                vec![("CHARSET".into(), "US-ASCII".into())]
            )
        );
        assert_eq!(
            p(" multipart/x; (c (nested)) b=1").1,
            vec![("b".into(), "1".into())]
        );
        assert_eq!(
            p(" multipart/mixed; boundary=\"a b\\\"c\" ; x=1"),
            (
                "multipart/mixed".into(),
                vec![
                    ("boundary".into(), "a b\"c".into()),
                    ("x".into(), "1".into())
                ]
            )
        );
        assert_eq!(
            p(" application/x;\r\n name*0=\"long-\";\r\n name*1=\"name.bin\"\r\n").1,
            vec![("name".into(), "long-name.bin".into())]
        );
        assert_eq!(
            p(" attachment; filename*=utf-8''%C3%A9.txt").1,
            vec![("filename*".into(), "utf-8''%C3%A9.txt".into())]
        );
        assert_eq!(
            p(" a; n*0*=utf-8''x; n*1*=y").1,
            vec![("n*".into(), "utf-8''xy".into())]
        );
        assert_eq!(p("").0, "");
        assert_eq!(
            p(" text/plain; junk; =v; a=").1,
            vec![("a".into(), "".into())]
        );
    }
}
