//! The FILTER, REDIRECT, BCC and PREPEND access actions of a
//! transaction: kept on the transaction and handed to cleanup as soon as
//! its conversation is open (Postfix's FILTER and REDIRECT records): the
//! filter and the redirect address as `Attribute` requests, each BCC
//! address as one more recipient, the PREPEND headers as the first lines
//! of the message content.

use proto::cleanup::{RecipientSpec, Request};

use super::Conn;
use crate::restrict::Actions;

impl Conn {
    /// Records the actions of one check and sends what cleanup can take.
    pub(super) fn note_actions(&mut self, a: Actions) {
        let Some(t) = self.txn.as_mut() else {
            return;
        };
        let p = &mut t.actions;
        if a.filter.is_some() {
            p.filter = a.filter;
        }
        if a.redirect.is_some() {
            p.redirect = a.redirect;
        }
        p.bcc.extend(a.bcc);
        p.prepend.extend(a.prepend);
        self.flush_actions();
    }

    /// Sends the filter, redirect and BCC recipients noted so far, once
    /// cleanup's conversation is open.
    pub(super) fn flush_actions(&mut self) {
        let (Some(t), Some(c)) = (self.txn.as_mut(), self.cleanup.as_mut()) else {
            return;
        };
        let p = &mut t.actions;
        if let Some(f) = p.filter.take() {
            c.send(&Request::Attribute("content_filter".into(), f));
        }
        if let Some(r) = p.redirect.take() {
            c.send(&Request::Attribute("redirect".into(), r));
        }
        for b in p.bcc.drain(..) {
            c.send(&Request::Recipient(RecipientSpec {
                address: b,
                orcpt: None,
                notify: proto::deliver::notify::NEVER,
            }));
        }
    }

    /// Before the first content: the PREPEND headers.
    pub(super) fn send_prepend(&mut self) {
        let (Some(t), Some(c)) = (self.txn.as_mut(), self.cleanup.as_mut()) else {
            return;
        };
        if t.actions.prepend.is_empty() {
            return;
        }
        let mut text = String::new();
        for h in t.actions.prepend.drain(..) {
            text.push_str(&h);
            text.push('\n');
        }
        c.send(&Request::Content(text.into_bytes()));
    }
}
