//! content_filter and the FILTER action: a message whose queue file
//! carries a `content_filter` attribute (`transport:nexthop`, written by
//! cleanup from what smtpd sent, from smtpd's content_filter or an
//! access table's FILTER action) goes to that transport and next hop for
//! every recipient, instead of where trivial-rewrite routes it (Postfix's
//! FILTER record and qmgr_message_resolve). An empty next hop keeps the
//! recipient's own. The filter re-injects the mail through an smtpd
//! without content_filter, so it is delivered normally the second time.

/// The queue file attribute.
pub(crate) const ATTRIBUTE: &str = "content_filter";

/// The route for one recipient: the filter's when the message has one.
pub(crate) fn route(
    attributes: &[(String, String)],
    transport: String,
    nexthop: String,
) -> (String, String) {
    let Some((_, spec)) = attributes.iter().find(|(k, _)| k == ATTRIBUTE) else {
        return (transport, nexthop);
    };
    // Probes bypass content filters, as in Postfix's qmgr_message_resolve.
    if proto::deliver::trace::verify_only(proto::deliver::trace::of(attributes)) {
        return (transport, nexthop);
    }
    let spec = spec.trim();
    let (t, n) = spec.split_once(':').unwrap_or((spec, ""));
    if t.is_empty() {
        return (transport, nexthop);
    }
    let n = if n.is_empty() { nexthop } else { n.to_string() };
    (t.to_string(), n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_replaces_the_route() {
        let a = |v: &str| vec![(ATTRIBUTE.to_string(), v.to_string())];
        assert_eq!(
            route(
                &a("smtp:[127.0.0.1]:10024"),
                "virtual".into(),
                "virt.test".into()
            ),
            ("smtp".into(), "[127.0.0.1]:10024".into())
        );
        assert_eq!(
            route(&a("scan:"), "local".into(), "host".into()),
            ("scan".into(), "host".into())
        );
        assert_eq!(
            route(&[], "local".into(), "host".into()),
            ("local".into(), "host".into())
        );
    }
}
