use super::*;
use crate::reason::hint_text;
use proptest::prelude::*;

fn signer() -> ClickIdSigner {
    ClickIdSigner::new(b"salvage-secret".to_vec(), vec![])
}

fn names() -> Vec<String> {
    ["cid", "clickid", "click_id", "subid", "sub_id", "aff_sub"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// What `classify` passes: the first value under a click-ID name, names case-insensitive.
fn run(pairs: &[(&str, &str)]) -> Option<Salvaged> {
    let params = params(pairs);
    let names = names();
    let value = names.iter().find_map(|name| {
        params
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    });
    salvage_located(value, &params, &names, &signer())
}

#[test]
fn every_hint_code_has_an_operator_sentence() {
    for code in hints::ALL {
        assert_ne!(hint_text(code), hint_text("no-such-code"), "{code}");
    }
}

/// Parameters, the expected hint, and the expected `found_in`.
type Case<'a> = (Vec<(&'a str, String)>, &'static str, Option<&'a str>);

#[test]
fn recovers_each_mangling_with_its_hint() {
    let id = signer().mint(1_764_000_000_000, 0x1234_5678_9abc);
    let s = id.to_string();
    let up = s.to_ascii_uppercase();
    let key_with_value = format!("cid={s}");
    let cases: Vec<Case> = vec![
        (
            vec![("cid", format!(" {s} "))],
            hints::WHITESPACE_OR_QUOTES,
            None,
        ),
        (
            vec![("cid", format!("{s}\n"))],
            hints::WHITESPACE_OR_QUOTES,
            None,
        ),
        (
            vec![("cid", format!("\"{s}\""))],
            hints::WHITESPACE_OR_QUOTES,
            None,
        ),
        (
            vec![("cid", format!("'{s}'"))],
            hints::WHITESPACE_OR_QUOTES,
            None,
        ),
        (
            vec![("cid", format!("%22{s}%22"))],
            hints::WHITESPACE_OR_QUOTES,
            None,
        ),
        (
            vec![("cid", format!("%2520{s}"))],
            hints::WHITESPACE_OR_QUOTES,
            None,
        ),
        (
            vec![("cid", format!("\u{201C}{up}\u{201D}"))],
            hints::WHITESPACE_OR_QUOTES,
            None,
        ),
        (vec![("cid", up.clone())], hints::CASE_CHANGED, None),
        (vec![("cid", format!("{s}&"))], hints::TRAILING_JUNK, None),
        (
            vec![("cid", format!("{s}_123"))],
            hints::TRAILING_JUNK,
            None,
        ),
        (vec![("cid", format!("{s}/"))], hints::TRAILING_JUNK, None),
        (vec![("cid", format!("{s}#"))], hints::TRAILING_JUNK, None),
        (vec![("cid", format!("id:{s}"))], hints::TRAILING_JUNK, None),
        (vec![("cid", format!("{up}-x"))], hints::TRAILING_JUNK, None),
        (vec![("cid", format!("{s},{s}"))], hints::DUPLICATED, None),
        (vec![("cid", format!("{s}|{up}"))], hints::DUPLICATED, None),
        (vec![("cid", format!("{s}{s}"))], hints::DUPLICATED, None),
        (vec![("cid", format!("{s}%2C{s}"))], hints::DUPLICATED, None),
        (
            vec![("cid", "{click_id}".into()), ("cid", s.clone())],
            hints::DUPLICATED,
            Some("cid"),
        ),
        (
            vec![("cid", "".into()), ("subid", s.clone())],
            hints::DUPLICATED,
            Some("subid"),
        ),
        (
            vec![("cid", format!("{s}%26payout%3D1"))],
            hints::QUERY_IN_VALUE,
            None,
        ),
        (
            vec![("cid", format!("{s}&payout=1"))],
            hints::QUERY_IN_VALUE,
            None,
        ),
        (
            vec![("cid", format!("{s}%2526payout%253D1"))],
            hints::QUERY_IN_VALUE,
            None,
        ),
        (
            vec![("cid", format!("{s}?payout=1"))],
            hints::SECOND_QUESTION_MARK,
            None,
        ),
        (
            vec![("cid", format!("x?cid={s}"))],
            hints::SECOND_QUESTION_MARK,
            None,
        ),
        (
            vec![("route", format!("lead?cid={s}")), ("payout", "1".into())],
            hints::SECOND_QUESTION_MARK,
            Some("route"),
        ),
        (
            vec![("?cid", s.clone())],
            hints::SECOND_QUESTION_MARK,
            Some("?cid"),
        ),
        (
            vec![("payout", format!("1&cid={s}"))],
            hints::QUERY_IN_VALUE,
            Some("payout"),
        ),
        (
            vec![("payout", "1".into()), ("amp;cid", s.clone())],
            hints::HTML_ESCAPED_KEY,
            Some("amp;cid"),
        ),
        (
            vec![("AMP;amp;CID", s.clone())],
            hints::HTML_ESCAPED_KEY,
            Some("AMP;amp;CID"),
        ),
        (
            vec![("#038;clickid", s.clone())],
            hints::HTML_ESCAPED_KEY,
            Some("#038;clickid"),
        ),
        (
            vec![("payout", format!("1&amp;cid={s}"))],
            hints::HTML_ESCAPED_KEY,
            Some("payout"),
        ),
        (
            vec![(&*key_with_value, String::new())],
            hints::KEY_CONTAINS_VALUE,
            Some(&*key_with_value),
        ),
        (
            vec![("payout", "2".into()), (&*s, String::new())],
            hints::KEY_CONTAINS_VALUE,
            Some(&*s),
        ),
        (
            vec![("cid", "#s2#".into()), ("s2", s.clone())],
            hints::OTHER_PARAM,
            Some("s2"),
        ),
        (vec![("s2", up.clone())], hints::OTHER_PARAM, Some("s2")),
        (
            vec![("cid", "{sub1}".into()), ("sub1", format!(" {s}"))],
            hints::OTHER_PARAM,
            Some("sub1"),
        ),
        (
            vec![("cid", format!("%{}", encode_all(&s)))],
            hints::TRAILING_JUNK,
            None,
        ),
        (vec![("cid", encode_all(&s))], hints::DOUBLE_ENCODED, None),
        // Found in the value and elsewhere: the value's hint wins.
        (
            vec![("cid", format!("{s}&")), ("s2", s.clone())],
            hints::TRAILING_JUNK,
            None,
        ),
        // The same ID echoed by several parameters counts once.
        (
            vec![
                ("s2", s.clone()),
                ("s3", up.clone()),
                ("amp;cid", s.clone()),
            ],
            hints::HTML_ESCAPED_KEY,
            Some("amp;cid"),
        ),
    ];
    for (pairs, hint, found_in) in cases {
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let got = run(&pairs).unwrap_or_else(|| panic!("nothing recovered from {pairs:?}"));
        assert_eq!(got.repaired.id, id, "{pairs:?}");
        assert_eq!(got.repaired.hint, hint, "{pairs:?}");
        assert_eq!(got.found_in.as_deref(), found_in, "{pairs:?}");
    }
}

/// Percent-encodes every byte: `%30%31…`.
fn encode_all(text: &str) -> String {
    text.bytes().map(|b| format!("%{b:02X}")).collect()
}

#[test]
fn refuses_what_it_cannot_trust() {
    let signer = signer();
    let id = signer.mint(1_764_000_000_000, 1).to_string();
    let other = signer.mint(1_764_000_000_001, 2).to_string();
    let foreign = ClickIdSigner::new(b"someone-else".to_vec(), vec![])
        .mint(1_764_000_000_000, 1)
        .to_string();
    let other_key = format!("cid={other}");
    let cases: Vec<Vec<(&str, String)>> = vec![
        vec![],
        vec![("cid", String::new())],
        vec![("cid", "{click_id}".into())],
        // A clean ID needs no repair.
        vec![("cid", id.clone())],
        // Not ours.
        vec![("cid", format!(" {foreign} "))],
        vec![("s2", foreign.clone())],
        // Glued to letters or digits: an extension, not junk.
        vec![("cid", format!("{id}0"))],
        vec![("cid", format!("x{id}"))],
        vec![("cid", format!("{}_{}", &id[..25], &id[1..]))],
        // Truncated.
        vec![("cid", format!(" {} ", &id[..25]))],
        // Two different genuine IDs.
        vec![("cid", format!("{id},{other}"))],
        vec![("cid", format!("{id}&")), ("s2", other.clone())],
        vec![("s2", id.clone()), ("s3", other.clone())],
        vec![("amp;cid", id.clone()), (&*other_key, String::new())],
        // A 52-char run that is not the same ID twice.
        vec![("cid", format!("{id}{other}"))],
    ];
    for pairs in cases {
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(run(&pairs), None, "{pairs:?}");
    }
}

#[test]
fn a_flood_of_candidates_is_refused() {
    let id = signer().mint(1, 1).to_string();
    let junk = "0123456789abcdefghjkmnpqrs,".repeat(MAX_CANDIDATES + 1);
    assert_eq!(run(&[("cid", &format!("{junk}{id}"))]), None);
    let few = "0123456789abcdefghjkmnpqrs,".repeat(10);
    assert!(run(&[("cid", &format!("{few}{id}"))]).is_some());
}

/// Junk made only of non-alphanumeric characters (ASCII punctuation, spaces, other scripts).
fn junk() -> impl Strategy<Value = String> {
    "[^a-zA-Z0-9]{0,12}"
}

fn genuine() -> impl Strategy<Value = (ClickId, String)> {
    (0u64..(1 << 48), any::<u64>(), any::<bool>()).prop_map(|(time, random, upper)| {
        let id = signer().mint(time, random);
        let text = if upper {
            id.to_string().to_ascii_uppercase()
        } else {
            id.to_string()
        };
        (id, text)
    })
}

/// Every way to change, cut or extend a genuine ID so that it is no longer that ID.
fn damaged() -> impl Strategy<Value = String> {
    (
        genuine(),
        0usize..CLICK_ID_LEN,
        any::<char>(),
        "[a-zA-Z0-9]{1,8}",
        0u8..5,
    )
        .prop_map(|((_, text), at, c, extra, how)| match how {
            0 => {
                // Any single-character change other than a change of case.
                let original = text.as_bytes()[at] as char;
                let c = if c.eq_ignore_ascii_case(&original) {
                    if original == '0' {
                        '1'
                    } else {
                        '0'
                    }
                } else {
                    c
                };
                let mut changed = text.clone();
                changed.replace_range(at..at + 1, &c.to_string());
                changed
            }
            1 => text[..at].to_string(),
            2 => text[at + 1..].to_string(),
            3 => format!("{text}{extra}"),
            _ => format!("{extra}{text}"),
        })
}

proptest! {
    #[test]
    fn genuine_id_in_non_alphanumeric_junk_is_found(
        (id, text) in genuine(),
        prefix in junk(),
        suffix in junk(),
        elsewhere: bool,
    ) {
        let value = format!("{prefix}{text}{suffix}");
        let pairs: Vec<(&str, &str)> = if elsewhere {
            vec![("cid", "{click_id}"), ("s2", &value)]
        } else {
            vec![("payout", "1"), ("cid", &value)]
        };
        let got = run(&pairs);
        if value == id.to_string() && !elsewhere {
            prop_assert_eq!(got, None);
        } else {
            let got = got.expect("recovered");
            prop_assert_eq!(got.repaired.id, id);
            prop_assert!(hints::ALL.contains(&got.repaired.hint));
        }
    }

    #[test]
    fn damaged_ids_are_never_returned(
        damaged in damaged(),
        // No `%`: `%` before an ID lengthened by two hex digits (`%00<id>`) is a percent-escape,
        // and the decoded layer rightly holds the genuine ID.
        prefix in "[^a-zA-Z0-9%]{0,12}",
        place in 0u8..4,
    ) {
        let value = format!("{prefix}{damaged}");
        let key = format!("cid={damaged}");
        let pairs: Vec<(&str, &str)> = match place {
            0 => vec![("cid", &value)],
            1 => vec![("cid", ""), ("s2", &value)],
            2 => vec![("amp;cid", &value)],
            _ => vec![(&key, "")],
        };
        prop_assert_eq!(run(&pairs), None, "{:?}", pairs);
    }

    #[test]
    fn random_postbacks_yield_nothing(
        value in proptest::option::of("\\PC{0,80}"),
        pairs in proptest::collection::vec(("\\PC{0,30}", "\\PC{0,80}"), 0..6),
    ) {
        let params: Vec<(String, String)> = pairs;
        let got = salvage(value.as_deref(), &params, &names(), &signer());
        prop_assert_eq!(got, None);
    }

    #[test]
    fn random_alphanumeric_runs_yield_nothing(
        runs in proptest::collection::vec("[0-9a-zA-Z]{26}", 1..8),
    ) {
        let value = runs.join(",");
        prop_assert_eq!(run(&[("cid", &value), ("s2", &runs[0])]), None);
    }

    #[test]
    fn two_genuine_ids_are_ambiguous(
        (a, a_text) in genuine(),
        (b, b_text) in genuine(),
        junk in junk(),
        place_a in 0u8..4,
        place_b in 0u8..4,
    ) {
        prop_assume!(a != b);
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (text, place, other) in [(&a_text, place_a, "s2"), (&b_text, place_b, "s3")] {
            let mangled = format!("{junk}{text}{junk}");
            pairs.push(match place {
                0 => ("cid".into(), mangled),
                1 => (other.into(), mangled),
                2 => ("amp;cid".into(), mangled),
                _ => (format!("cid={text}"), String::new()),
            });
        }
        let pairs: Vec<(&str, &str)> =
            pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        prop_assert_eq!(run(&pairs), None, "{:?}", pairs);
    }
}

#[test]
fn a_percent_escape_in_front_of_an_id_is_decoded_away() {
    // `%00<id>` reads as a 28-character run as sent, and as NUL then the ID once decoded.
    let id = signer().mint(0, 0);
    let got = run(&[("cid", &format!("%00{id}"))]).expect("recovered");
    assert_eq!(got.repaired.id, id);
}
