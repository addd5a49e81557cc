//! sysexits.h codes and what Postfix makes of them (global/sys_exits.c):
//! an enhanced status code, a text, and whether the failure is temporary.

/// EX_TEMPFAIL: temporary failure, try again later.
pub const EX_TEMPFAIL: i32 = 75;

/// One entry of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detail {
    /// The exit status.
    pub code: i32,
    /// Enhanced status code.
    pub dsn: &'static str,
    /// Postfix's text for it.
    pub text: &'static str,
}

impl Detail {
    /// True when the status means "defer", not "bounce".
    pub fn is_temporary(&self) -> bool {
        self.dsn.starts_with('4')
    }
}

const TABLE: [Detail; 15] = [
    d(64, "5.3.0", "command line usage error"),
    d(65, "5.6.0", "data format error"),
    d(66, "5.3.0", "cannot open input"),
    d(67, "5.1.1", "user unknown"),
    d(68, "5.1.2", "host name unknown"),
    d(69, "5.3.0", "service unavailable"),
    d(70, "5.3.0", "internal software error"),
    d(71, "4.3.0", "system resource problem"),
    d(72, "5.3.0", "critical OS file missing"),
    d(73, "5.2.0", "can't create user output file"),
    d(74, "5.3.0", "input/output error"),
    d(75, "4.3.0", "temporary failure"),
    d(76, "5.5.0", "remote error in protocol"),
    d(77, "5.7.0", "permission denied"),
    d(78, "5.3.5", "local configuration error"),
];

const fn d(code: i32, dsn: &'static str, text: &'static str) -> Detail {
    Detail { code, dsn, text }
}

/// The entry for a sysexits code (64..=78), None for any other status.
pub fn detail(code: i32) -> Option<Detail> {
    TABLE.iter().copied().find(|e| e.code == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_codes() {
        assert_eq!(detail(67).unwrap().dsn, "5.1.1");
        assert!(detail(EX_TEMPFAIL).unwrap().is_temporary());
        assert!(detail(71).unwrap().is_temporary());
        assert!(!detail(64).unwrap().is_temporary());
        assert_eq!(detail(1), None);
        assert_eq!(detail(79), None);
    }
}
