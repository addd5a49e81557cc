//! The `trace_flags` a queue file gets (Postfix's MAIL_ATTR_TRACE_FLAGS):
//! only from this daemon's own client flags, never from a client's
//! attributes. A verify(8) probe (VERIFY_PROBE) becomes MTA_VRFY; a
//! `sendmail -bv` submission (VERIFY_REPORT, passed on by postdrop and
//! pickup) becomes USR_VRFY. qmgr and the delivery agents then deliver
//! nothing (see the delivery crate's verify_only module).

use proto::cleanup::flags;
use proto::deliver::trace;

/// The trace flags for Begin `begin_flags` (0: a normal message).
pub(crate) fn flags(begin_flags: u32) -> u32 {
    let mut t = 0;
    if begin_flags & flags::VERIFY_PROBE != 0 {
        t |= trace::MTA_VRFY;
    }
    if begin_flags & flags::VERIFY_REPORT != 0 {
        t |= trace::USR_VRFY;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn begin_flags_map_to_postfix_trace_flags() {
        assert_eq!(flags(0), 0);
        assert_eq!(flags(flags::VERIFY_PROBE), 256);
        assert_eq!(flags(flags::VERIFY_REPORT | flags::LOCAL_SUBMISSION), 512);
    }
}
