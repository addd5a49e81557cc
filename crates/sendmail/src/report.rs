//! `sendmail -bv` (Postfix's address verification report): no message
//! is read; a small one is made up (`From:` the sender, `Subject: probe`,
//! `To:` the recipients, as Postfix's sendmail writes it) and queued with
//! the VERIFY_REPORT flag. qmgr and the delivery agents then deliver
//! nothing; each recipient's result ("deliverable", "undeliverable" and
//! the agent's text) goes into the message's trace log, and bounce mails
//! the sender a "Mail Delivery Status Report".

use crate::options::Options;
use crate::sysexits::EX_USAGE;

/// Refuses what Postfix refuses with -bv.
pub(crate) fn check_options(o: &Options, who: &str) {
    let bad = |opt: &str| -> ! {
        crate::fatal_status(
            EX_USAGE,
            format_args!("{who}: {opt} option cannot be used with -bv"),
        )
    };
    if o.extract {
        bad("-t");
    }
    if o.notify != 0 {
        bad("-N");
    }
    if o.ret.is_some() {
        bad("-R");
    }
    if o.verbose == 1 {
        bad("-v");
    }
}

/// The made-up message.
pub(crate) fn probe_content(sender: &str, recipients: &[String]) -> Vec<u8> {
    let mut text = String::new();
    if !sender.is_empty() {
        text.push_str(&format!("From: {sender}\n"));
    }
    text.push_str("Subject: probe\n");
    if !recipients.is_empty() {
        text.push_str("To:");
        for (i, r) in recipients.iter().enumerate() {
            let comma = if i + 1 < recipients.len() { "," } else { "" };
            text.push_str(&format!("\n\t{r}{comma}"));
        }
        text.push('\n');
    }
    text.push('\n');
    text.into_bytes()
}

/// What Postfix's sendmail prints after queuing the request.
pub(crate) fn announce(sender: &str) {
    println!("Mail Delivery Status Report will be mailed to <{sender}>.");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_message_as_postfix_writes_it() {
        let got = probe_content("alice", &["bob".into(), "carol@example.org".into()]);
        assert_eq!(
            String::from_utf8(got).unwrap(),
            "From: alice\nSubject: probe\nTo:\n\tbob,\n\tcarol@example.org\n\n"
        );
        assert_eq!(probe_content("", &[]), b"Subject: probe\n\n");
    }
}
