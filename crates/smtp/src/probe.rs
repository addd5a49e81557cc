//! Verify-only requests (address verification probes): the transaction
//! stops after RCPT TO, as Postfix's smtp_proto.c does for a trace-only
//! request (smtp_address_verify_target = rcpt): MAIL FROM and RCPT TO go
//! out as for real mail, a recipient the server accepts is reported
//! deliverable with the server's reply, a refused one with its refusal;
//! DATA is never sent. The session then ends with QUIT, or is kept for
//! the connection cache (its next use starts with RSET).

use delivery::{Message, Outcome};

use crate::reply::Reply;
use crate::session::Session;

/// Records the server's acceptance of recipient `i` of a probe.
pub(crate) fn accepted(msg: &Message<'_>, out: &mut Session, i: usize, r: &Reply) {
    if !msg.verify_only() {
        return;
    }
    if let Some(slot) = out.results.get_mut(i) {
        *slot = Some(Outcome {
            dsn: r.dsn(),
            ..Outcome::sent(maillog::printable(&r.text(), 400))
        });
    }
}
