//! Property tests: no input makes the reader panic, and what it accepts is
//! what was written.

use crate::format::tests::{check, sample_envelope};
use crate::format::{self, Envelope};
use proptest::prelude::*;

fn valid_file(rcpts: usize, content: &[u8]) -> Vec<u8> {
    format::build(&sample_envelope(rcpts), content)
}

fn arb_envelope() -> impl Strategy<Value = Envelope> {
    (
        any::<u64>(),
        0u32..1_000_000,
        ".{0,40}",
        proptest::collection::vec(
            (
                ".{0,30}",
                ".{0,30}",
                proptest::option::of(".{0,20}"),
                any::<u8>(),
            ),
            0..6,
        ),
        proptest::collection::vec(("[a-z_]{1,12}", ".{0,30}"), 0..4),
    )
        .prop_map(|(secs, micros, sender, rcpts, attrs)| {
            let mut e = Envelope {
                arrival_secs: secs,
                arrival_micros: micros,
                sender,
                ..Envelope::default()
            };
            for (a, o, orcpt, notify) in rcpts {
                let r = e.add_recipient(&a);
                r.original = o;
                r.dsn_orcpt = orcpt;
                r.dsn_notify = notify;
            }
            for (n, v) in attrs {
                e.set_attribute(&n, &v);
            }
            e
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, failure_persistence: None, ..ProptestConfig::default() })]

    /// Arbitrary bytes: never a panic, never accepted.
    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        prop_assert!(check(&data).is_err());
    }

    /// Random bytes after a valid magic and version, to get past the first
    /// checks.
    #[test]
    fn random_body_after_magic_never_panics(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut bytes = format::MAGIC.to_vec();
        bytes.extend_from_slice(&format::VERSION.to_le_bytes());
        bytes.extend_from_slice(&data);
        let _ = check(&bytes);
    }

    /// A valid file truncated anywhere is rejected.
    #[test]
    fn truncated_valid_file_is_rejected(rcpts in 0usize..5, content in proptest::collection::vec(any::<u8>(), 0..300), cut in any::<prop::sample::Index>()) {
        let bytes = valid_file(rcpts, &content);
        let at = cut.index(bytes.len());
        prop_assert!(check(&bytes[..at]).is_err());
    }

    /// A valid file with random bytes overwritten: no panic, and accepted
    /// only with the envelope and content unchanged.
    #[test]
    fn mutated_valid_file_accepted_only_if_intact(
        rcpts in 0usize..5,
        content in proptest::collection::vec(any::<u8>(), 0..300),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let env = sample_envelope(rcpts);
        let good = format::build(&env, &content);
        let mut bad = good.clone();
        for (i, b) in &edits {
            let at = i.index(bad.len());
            bad[at] = *b;
        }
        if let Ok((e, _states, c)) = check(&bad) {
            prop_assert_eq!(e, env);
            prop_assert_eq!(c, content);
        }
    }
}

proptest! {
    // Fewer cases: these check encoders, not the hostile-input paths.
    #![proptest_config(ProptestConfig { cases: 500, failure_persistence: None, ..ProptestConfig::default() })]

    /// Any envelope within limits round-trips.
    #[test]
    fn envelopes_round_trip(env in arb_envelope(), content in proptest::collection::vec(any::<u8>(), 0..200)) {
        let bytes = format::build(&env, &content);
        let (e, states, c) = check(&bytes).map_err(TestCaseError::fail)?;
        prop_assert_eq!(e, env);
        prop_assert_eq!(c, content);
        prop_assert!(states.iter().all(|s| *s == crate::RecipientState::Pending));
    }

    /// Ids from any time and inode parse back to themselves; any string
    /// either fails to parse or re-displays as itself.
    #[test]
    fn queue_ids_round_trip(secs in 0u64..(1u64 << 34), micros in 0u32..1_000_000, inode in any::<u64>(), junk in "[0-9A-Za-z./]{0,25}") {
        let id = crate::QueueId::new(std::time::Duration::new(secs, micros * 1000), inode);
        prop_assert_eq!(crate::QueueId::parse(id.as_str()).ok(), Some(id));
        prop_assert_eq!(id.inode(), inode);
        if let Ok(parsed) = crate::QueueId::parse(&junk) {
            prop_assert_eq!(parsed.as_str(), junk.as_str());
        }
    }
}
