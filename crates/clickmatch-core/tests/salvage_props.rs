//! Properties of salvage through the public `classify`, on every route of the dialect account:
//! a genuine click ID wrapped in arbitrary junk is found and attributed to that click; an ID
//! whose tag does not verify (a changed character anywhere, truncated, extended, random) is
//! never attributed; whatever the postback, every final outcome carries a hint with a sentence;
//! and the Kafka key ingest works out without hints is the key of what `classify` decides.

mod common;

use clickmatch_core::classify::{classify, diagnose, partition_key, Classified, ClickRef};
use clickmatch_core::model::Account;
use clickmatch_core::reason::{all_hint_codes, hint_text};
use clickmatch_core::records::IngestVerdict;
use clickmatch_core::{ClickId, CLICK_ID_LEN};
use common::{account, postback_owned, signer, CLICK_MS};
use proptest::prelude::*;

/// Routes and the click-ID parameter each reads first.
const ROUTES: &[(Option<&str>, &str)] = &[
    (None, "cid"),
    (Some("tune"), "aff_sub"),
    (Some("everflow"), "sub1"),
    (Some("affise"), "clickid"),
    (Some("impact"), "subid1"),
    (Some("awin"), "clickref"),
    (Some("admitad"), "subid"),
    (Some("keitaro"), "subid"),
    (Some("voluum"), "cid"),
    (Some("prosper202"), "subid"),
    (Some("binom"), "cnv_id"),
    (Some("redtrack"), "clickid"),
    (Some("clickbank"), "tid"),
    (Some("maxbounty"), "s2"),
];

fn the_account() -> &'static Account {
    static ACCOUNT: std::sync::OnceLock<Account> = std::sync::OnceLock::new();
    ACCOUNT.get_or_init(account)
}

fn genuine() -> impl Strategy<Value = (ClickId, String)> {
    (0u64..(30 * 86_400_000), any::<u64>(), any::<bool>()).prop_map(|(ago, random, upper)| {
        let id = signer().mint(CLICK_MS - ago, random);
        let text = id.to_string();
        (
            id,
            if upper {
                text.to_ascii_uppercase()
            } else {
                text
            },
        )
    })
}

/// Arbitrary text, then one separator that is not an ASCII letter or digit, so that the junk
/// ends where the ID begins (letters or digits glued to an ID make a longer run, which salvage
/// refuses by design).
fn prefix() -> impl Strategy<Value = String> {
    ("\\PC{0,24}", "[^a-zA-Z0-9]").prop_map(|(text, sep)| format!("{text}{sep}"))
}

fn suffix() -> impl Strategy<Value = String> {
    ("[^a-zA-Z0-9]", "\\PC{0,24}").prop_map(|(sep, text)| format!("{sep}{text}"))
}

/// Where in the postback the mangled value goes.
fn place(route: usize, at: u8, value: String) -> Vec<(String, String)> {
    let name = ROUTES[route].1.to_string();
    match at {
        0 => vec![(name, value), ("payout".into(), "1".into())],
        1 => vec![
            ("payout".into(), "1".into()),
            (format!("amp;{name}"), value),
        ],
        2 => vec![(name, "{sub1}".into()), ("s4".into(), value)],
        _ => vec![("s3".into(), value)],
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_genuine_id_in_arbitrary_junk_is_attributed_to_its_click(
        (id, text) in genuine(),
        prefix in prefix(),
        suffix in suffix(),
        route in 0..ROUTES.len(),
        at in 0u8..4,
    ) {
        // An arbitrary prefix could hold a second genuine ID only by forging a tag.
        let value = format!("{prefix}{text}{suffix}");
        let record = postback_owned(ROUTES[route].0, place(route, at, value));
        match classify(the_account(), &record) {
            Classified::Joinable(candidate) => {
                prop_assert_eq!(candidate.click, ClickRef::Signed(id));
                let hint = candidate.repair.expect("a wrapped ID is a repair");
                prop_assert!(clickmatch_core::salvage::hints::ALL.contains(&hint));
            }
            Classified::Final(row) => prop_assert!(false, "not attributed: {:?}", row),
        }
    }

    #[test]
    fn an_id_whose_tag_does_not_verify_is_never_attributed(
        (_, text) in genuine(),
        at in 0usize..CLICK_ID_LEN,
        replacement in any::<char>(),
        extra in "[a-zA-Z0-9]{1,6}",
        how in 0u8..5,
        // No `%`: `%` before hex digits that lead the damaged text (`%0A` + ID) is a
        // percent-encoded separator, and the genuine ID after it is rightly salvaged.
        prefix in "[^a-zA-Z0-9%]{0,4}",
        route in 0..ROUTES.len(),
        place_at in 0u8..4,
    ) {
        let damaged = match how {
            0 => {
                // Any change but a change of case (IDs are case-insensitive).
                let original = text.as_bytes()[at] as char;
                let c = if replacement.eq_ignore_ascii_case(&original) {
                    if original == '0' { '1' } else { '0' }
                } else {
                    replacement
                };
                let mut changed = text.clone();
                changed.replace_range(at..at + 1, &c.to_string());
                changed
            }
            1 => text[..at].to_string(),
            2 => text[at + 1..].to_string(),
            3 => format!("{text}{extra}"),
            _ => format!("{extra}{text}"),
        };
        let record = postback_owned(ROUTES[route].0, place(route, place_at, format!("{prefix}{damaged}")));
        let diagnosis = diagnose(the_account(), &record);
        prop_assert!(
            !matches!(diagnosis.classified, Classified::Joinable(_)),
            "attributed {:?}", record.params
        );
        let hint = diagnosis.hint.expect("a final outcome has a hint");
        prop_assert!(all_hint_codes().contains(&hint), "{}", hint);
    }

    #[test]
    fn random_postbacks_are_never_attributed_and_always_hinted(
        pairs in proptest::collection::vec(("\\PC{0,12}", "\\PC{0,60}"), 0..6),
        route in 0..ROUTES.len(),
    ) {
        let record = postback_owned(ROUTES[route].0, pairs);
        let diagnosis = diagnose(the_account(), &record);
        prop_assert!(!matches!(diagnosis.classified, Classified::Joinable(_)));
        let hint = diagnosis.hint.expect("hinted");
        prop_assert!(all_hint_codes().contains(&hint), "{}", hint);
        prop_assert_ne!(hint_text(hint), hint_text("no-such-code"));
    }

    #[test]
    fn the_partition_key_is_the_key_of_the_classification(
        (_, text) in genuine(),
        prefix in prefix(),
        suffix in suffix(),
        shape in 0u8..4,
        noise in proptest::collection::vec(("\\PC{0,8}", "\\PC{0,30}"), 0..3),
        // One past the last route: a route the account does not have.
        route in 0..=ROUTES.len(),
        at in 0u8..4,
        verdict in 0u8..3,
    ) {
        let value = match shape {
            0 => text.clone(),
            1 => format!("{prefix}{text}{suffix}"),
            2 => format!("{prefix}{suffix}"),
            _ => text[..text.len() / 2].to_string(),
        };
        let mut params = place(route.min(ROUTES.len() - 1), at, value);
        params.extend(noise);
        let mut record = postback_owned(ROUTES.get(route).map_or(Some("nowhere"), |r| r.0), params);
        record.verdict = match verdict {
            0 => IngestVerdict::Accepted,
            1 => IngestVerdict::Unauthorized,
            _ => IngestVerdict::UnknownRoute,
        };
        let classified = match classify(the_account(), &record) {
            Classified::Joinable(candidate) => candidate.click.key(),
            Classified::Final(_) => record.postback_id.clone(),
        };
        prop_assert_eq!(partition_key(the_account(), &record), classified);
    }

    #[test]
    fn random_alphanumeric_ids_are_never_attributed(
        candidates in proptest::collection::vec("[0-7][0-9a-hjkmnp-tv-zA-HJKMNP-TV-Z]{25}", 1..6),
        route in 0..ROUTES.len(),
    ) {
        let name = ROUTES[route].1.to_string();
        let mut params = vec![(name, candidates.join(","))];
        params.extend(candidates.iter().enumerate().map(|(n, c)| (format!("s{n}"), c.clone())));
        let record = postback_owned(ROUTES[route].0, params);
        prop_assert!(!matches!(classify(the_account(), &record), Classified::Joinable(_)));
    }
}
