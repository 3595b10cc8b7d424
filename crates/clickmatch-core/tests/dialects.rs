//! Broken postbacks as real networks and trackers send them, one table per dialect, each with
//! its exact outcome before the join: a clean or repaired click (with the repair's hint code) or
//! an unattributed reason with its hint code.
//!
//! The dialects and their failure modes come from docs/architecture.md ("Facts from real
//! networks") and
//! the networks' own documentation: TUNE/HasOffers `{aff_sub}`, CAKE `#s2#` (a URL fragment
//! when unencoded), MaxBounty `#S2#`, Everflow `{sub1}` (lower case, `{Sub5}` arrives
//! literally), Affise `{clickid}` with numeric statuses, Impact `{SubId1}` (PascalCase,
//! case-sensitive), Awin `!!!clickref!!!` (lower-case names), Admitad named parameters (and its
//! 32-hex `admitad_uid`), AdCombo macros sent URL-encoded, Keitaro `{subid}`/`{sub_id_1}`,
//! Voluum `{clickid}` (26 mixed-case IDs), Prosper202 `[[subid]]` (integer IDs), Binom
//! `cnv_id={clickid}` (UUID-like IDs), RedTrack (24-hex IDs), ClickBank `tid` (upper-cased
//! and truncated).

mod common;

use clickmatch_core::reason::{hint_text, hints as hint};
use clickmatch_core::records::IngestVerdict;
use clickmatch_core::salvage::hints as repair;
use clickmatch_core::Reason;
use common::{account, genuine, outcome, postback, Expect, TOKEN};

use Expect::{Clean, Final, Foreign, Repaired};
use Reason::{
    InvalidSignature, MalformedClickId, MissingClickId, Unauthorized, UnknownRoute,
    UnsubstitutedMacro,
};

/// One broken (or clean) postback and what it must end in.
struct Case {
    label: &'static str,
    route: Option<&'static str>,
    params: Vec<(&'static str, String)>,
    verdict: IngestVerdict,
    expect: Expect,
}

fn case(
    label: &'static str,
    route: &'static str,
    params: Vec<(&'static str, String)>,
    expect: Expect,
) -> Case {
    Case {
        label,
        route: (route != "global").then_some(route),
        params,
        verdict: IngestVerdict::Accepted,
        expect,
    }
}

fn unauthorized(mut case: Case) -> Case {
    case.verdict = IngestVerdict::Unauthorized;
    case
}

fn s(text: &str) -> String {
    text.to_string()
}

fn run(cases: Vec<Case>) -> usize {
    let account = account();
    let mut failures = Vec::new();
    for case in &cases {
        let params: Vec<(&str, &str)> = case.params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut record = postback(case.route, &params);
        record.verdict = case.verdict;
        let got = outcome(&account, &record);
        if got != case.expect {
            failures.push(format!(
                "{}: {:?} {:?}\n    expected {:?}\n    got      {:?}",
                case.label, case.route, params, case.expect, got
            ));
        }
        if let Final(_, code) | Repaired(_, code) = &got {
            assert_ne!(
                hint_text(code),
                hint_text("no-such-code"),
                "{code} has no sentence"
            );
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    cases.len()
}

/// 26 mixed-case characters that parse as a click ID (all in the alphabet, first below `8`).
const VOLUUM_PARSEABLE: &str = "3AbCdEfGhJkMnPqRsTvWxYz012";
/// 26 mixed-case characters outside the click-ID alphabet.
const VOLUUM_OTHER: &str = "AbCdEfGhIjKlMnOpQrStUvWxYz";
const EVERFLOW_HEX: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90";
const REDTRACK_HEX: &str = "64f1c2b3a4d5e6f708192a3b";
const FUNNELFLUX: &str = "Xk2mP9qLr4TvW8yZa1Bc3De5";
const BINOM_UUID: &str = "3f2a9c1e-7b4d-4e8a-9c2f-1a2b3c4d5e6f";
const FBCLID: &str = "IwAR2xKjH8vQmPz1Lr7TnY4bCd9EfGh0IjKlMnOpQrStUvWx";
const GCLID: &str = "Cj0KCQjw9KmBhD8ARIsAJ3pY7xQmZk1vL2nR4tW8yB6cD0eF";

#[test]
fn tune_hasoffers() {
    let id = genuine(1);
    let t = id.to_string();
    let n = run(vec![
        case(
            "clean",
            "tune",
            vec![
                ("aff_sub", t.clone()),
                ("payout", s("1.75")),
                ("transaction_id", s("102ab")),
            ],
            Clean(id),
        ),
        case(
            "the offer link never filled aff_sub",
            "tune",
            vec![("aff_sub", s("{aff_sub}")), ("payout", s("1.75"))],
            Final(UnsubstitutedMacro, hint::MACRO_NOT_SUBSTITUTED),
        ),
        case(
            "upper-case macro",
            "tune",
            vec![("aff_sub", s("{AFF_SUB}"))],
            Final(UnsubstitutedMacro, hint::MACRO_WRONG_CASE),
        ),
        case(
            "CAKE's syntax on a TUNE offer",
            "tune",
            vec![("aff_sub", s("#s2#"))],
            Final(UnsubstitutedMacro, hint::MACRO_WRONG_DIALECT),
        ),
        case(
            "trailing ampersand",
            "tune",
            vec![("aff_sub", format!("{t}&"))],
            Repaired(id, repair::TRAILING_JUNK),
        ),
        case(
            "rest of the query encoded into the value",
            "tune",
            vec![("aff_sub", format!("{t}%26payout%3D1.75"))],
            Repaired(id, repair::QUERY_IN_VALUE),
        ),
        case(
            "empty sub-parameter",
            "tune",
            vec![("aff_sub", s("")), ("payout", s("1.75"))],
            Final(MissingClickId, hint::CLICK_ID_EMPTY),
        ),
        case(
            "&amp; copied from HTML",
            "tune",
            vec![("payout", s("1.75")), ("amp;aff_sub", t.clone())],
            Repaired(id, repair::HTML_ESCAPED_KEY),
        ),
        case(
            "the click ID in aff_sub2",
            "tune",
            vec![("aff_sub", s("{aff_sub}")), ("aff_sub2", t.clone())],
            Repaired(id, repair::OTHER_PARAM),
        ),
        case(
            "the same parameter twice",
            "tune",
            vec![("aff_sub", t.clone()), ("aff_sub", t.clone())],
            Clean(id),
        ),
        case(
            "a literal macro first, the ID in the repeat",
            "tune",
            vec![("aff_sub", s("{aff_sub}")), ("AFF_SUB", t.clone())],
            Repaired(id, repair::DUPLICATED),
        ),
    ]);
    assert_eq!(n, 11);
}

#[test]
fn cake() {
    let id = genuine(2);
    let t = id.to_string();
    let tok = s(TOKEN);
    let n = run(vec![
        case(
            "clean",
            "cake",
            vec![
                ("s2", t.clone()),
                ("price", s("9.99")),
                ("tid", s("c1")),
                ("token", tok.clone()),
            ],
            Clean(id),
        ),
        case(
            "#s2# unencoded: everything from it on is a fragment",
            "cake",
            vec![("token", tok.clone()), ("s2", s(""))],
            Final(MissingClickId, hint::CAKE_HASH_FRAGMENT),
        ),
        unauthorized(case(
            "#s2# unencoded before the token: the token is cut too",
            "cake",
            vec![("s2", s(""))],
            Final(Unauthorized, hint::CAKE_HASH_FRAGMENT),
        )),
        case(
            "empty s2 with parameters after it: not a fragment",
            "cake",
            vec![("token", tok.clone()), ("s2", s("")), ("price", s("9.99"))],
            Final(MissingClickId, hint::CLICK_ID_EMPTY),
        ),
        case(
            "#s2# encoded but not substituted",
            "cake",
            vec![("s2", s("#s2#")), ("token", tok.clone())],
            Final(UnsubstitutedMacro, hint::MACRO_NOT_SUBSTITUTED),
        ),
        case(
            "#s2# encoded twice",
            "cake",
            vec![("s2", s("%23s2%23")), ("token", tok.clone())],
            Final(UnsubstitutedMacro, hint::MACRO_URL_ENCODED),
        ),
        case(
            "TUNE's syntax on a CAKE offer",
            "cake",
            vec![("s2", s("{aff_sub}")), ("token", tok.clone())],
            Final(UnsubstitutedMacro, hint::MACRO_WRONG_DIALECT),
        ),
        case(
            "suffix appended",
            "cake",
            vec![("s2", format!("{t}_123")), ("token", tok.clone())],
            Repaired(id, repair::TRAILING_JUNK),
        ),
        case(
            "the click ID in s1, the route reads s2",
            "cake",
            vec![("s1", t.clone()), ("token", tok.clone())],
            Repaired(id, repair::OTHER_PARAM),
        ),
        case(
            "cut to 20 characters",
            "cake",
            vec![("s2", t[..20].to_string()), ("token", tok.clone())],
            Final(MalformedClickId, hint::CLICK_ID_TRUNCATED),
        ),
        unauthorized(case(
            "wrong token",
            "cake",
            vec![("s2", t.clone()), ("token", s("***"))],
            Final(Unauthorized, hint::ROUTE_TOKEN_WRONG),
        )),
        unauthorized(case(
            "no token",
            "cake",
            vec![("s2", t.clone()), ("price", s("9.99"))],
            Final(Unauthorized, hint::ROUTE_TOKEN_MISSING),
        )),
    ]);
    assert_eq!(n, 12);
}

#[test]
fn maxbounty() {
    let id = genuine(3);
    let t = id.to_string();
    let n = run(vec![
        case(
            "clean, upper-case key",
            "maxbounty",
            vec![("S2", t.clone())],
            Clean(id),
        ),
        case(
            "upper-cased ID",
            "maxbounty",
            vec![("S2", t.to_ascii_uppercase())],
            Clean(id),
        ),
        case(
            "#S2# unencoded",
            "maxbounty",
            vec![("rate", s("2")), ("S2", s(""))],
            Final(MissingClickId, hint::CAKE_HASH_FRAGMENT),
        ),
        case(
            "#S2# not substituted",
            "maxbounty",
            vec![("S2", s("#S2#"))],
            Final(UnsubstitutedMacro, hint::MACRO_NOT_SUBSTITUTED),
        ),
        case(
            "quoted",
            "maxbounty",
            vec![("S2", format!("\"{t}\""))],
            Repaired(id, repair::WHITESPACE_OR_QUOTES),
        ),
    ]);
    assert_eq!(n, 5);
}

#[test]
fn everflow() {
    let id = genuine(4);
    let t = id.to_string();
    let n = run(vec![
        case(
            "clean",
            "everflow",
            vec![
                ("sub1", t.clone()),
                ("payout_amount", s("3")),
                ("transaction_id", s(EVERFLOW_HEX)),
            ],
            Clean(id),
        ),
        case(
            "{Sub1}: wrong case arrives literally",
            "everflow",
            vec![("sub1", s("{Sub1}"))],
            Final(UnsubstitutedMacro, hint::MACRO_WRONG_CASE),
        ),
        case(
            "{sub_1}: wrong spelling arrives literally",
            "everflow",
            vec![("sub1", s("{sub_1}"))],
            Final(UnsubstitutedMacro, hint::MACRO_MISSPELT),
        ),
        case(
            "{sub1} not filled",
            "everflow",
            vec![("sub1", s("{sub1}"))],
            Final(UnsubstitutedMacro, hint::MACRO_NOT_SUBSTITUTED),
        ),
        case(
            "Everflow's own transaction_id where the click ID belongs",
            "everflow",
            vec![("sub1", s(EVERFLOW_HEX))],
            Final(MalformedClickId, hint::FOREIGN_TRACKER_ID),
        ),
        case(
            "duplicated value",
            "everflow",
            vec![("sub1", format!("{t},{t}"))],
            Repaired(id, repair::DUPLICATED),
        ),
    ]);
    assert_eq!(n, 6);
}

#[test]
fn affise() {
    let id = genuine(5);
    let t = id.to_string();
    let n = run(vec![
        case(
            "clean",
            "affise",
            vec![("clickid", t.clone()), ("sum", s("5")), ("status", s("1"))],
            Clean(id),
        ),
        case(
            "{clickid} not filled",
            "affise",
            vec![("clickid", s("{clickid}"))],
            Final(UnsubstitutedMacro, hint::MACRO_NOT_SUBSTITUTED),
        ),
        case(
            "{ClickId}",
            "affise",
            vec![("clickid", s("{ClickId}"))],
            Final(UnsubstitutedMacro, hint::MACRO_WRONG_CASE),
        ),
        case(
            "padded with spaces",
            "affise",
            vec![("clickid", format!(" {t} "))],
            Repaired(id, repair::WHITESPACE_OR_QUOTES),
        ),
        case(
            "null",
            "affise",
            vec![("clickid", s("null")), ("status", s("2"))],
            Final(MissingClickId, hint::PLACEHOLDER_SENT),
        ),
    ]);
    assert_eq!(n, 5);
}

#[test]
fn affise_status_mapping() {
    let account = account();
    let t = genuine(6).to_string();
    for (sent, ours) in [
        ("1", "approved"),
        ("2", "pending"),
        ("3", "declined"),
        ("5", "hold"),
    ] {
        let record = postback(Some("affise"), &[("clickid", &t), ("status", sent)]);
        match clickmatch_core::classify::classify(&account, &record) {
            clickmatch_core::classify::Classified::Joinable(c) => {
                assert_eq!(c.extracted.status, ours)
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn impact() {
    let id = genuine(7);
    let t = id.to_string();
    let n = run(vec![
        case(
            "clean, PascalCase keys",
            "impact",
            vec![("SubId1", t.clone()), ("Payout", s("4")), ("OID", s("A-1"))],
            Clean(id),
        ),
        case(
            "{subid1}: Impact's macros are PascalCase",
            "impact",
            vec![("SubId1", s("{subid1}"))],
            Final(UnsubstitutedMacro, hint::MACRO_WRONG_CASE),
        ),
        case(
            "{SubId1} not filled",
            "impact",
            vec![("SubId1", s("{SubId1}"))],
            Final(UnsubstitutedMacro, hint::MACRO_NOT_SUBSTITUTED),
        ),
        case(
            "trailing slash",
            "impact",
            vec![("SubId1", format!("{t}/"))],
            Repaired(id, repair::TRAILING_JUNK),
        ),
    ]);
    assert_eq!(n, 4);
}

#[test]
fn awin() {
    let id = genuine(8);
    let t = id.to_string();
    let n = run(vec![
        case("clean", "awin", vec![("clickref", t.clone())], Clean(id)),
        case(
            "!!!clickRef!!!: Awin's names are lower case",
            "awin",
            vec![("clickref", s("!!!clickRef!!!"))],
            Final(UnsubstitutedMacro, hint::MACRO_WRONG_CASE),
        ),
        case(
            "!!!clickref!!! not filled",
            "awin",
            vec![("clickref", s("!!!clickref!!!"))],
            Final(UnsubstitutedMacro, hint::MACRO_NOT_SUBSTITUTED),
        ),
        case(
            "braces on Awin",
            "awin",
            vec![("clickref", s("{clickref}"))],
            Final(UnsubstitutedMacro, hint::MACRO_WRONG_DIALECT),
        ),
    ]);
    assert_eq!(n, 4);
}

#[test]
fn admitad() {
    let id = genuine(9);
    let t = id.to_string();
    let n = run(vec![
        case(
            "clean",
            "admitad",
            vec![
                ("subid", t.clone()),
                ("payment_sum", s("10")),
                ("order_id", s("A1")),
            ],
            Clean(id),
        ),
        case(
            "single quotes",
            "admitad",
            vec![("subid", format!("'{t}'"))],
            Repaired(id, repair::WHITESPACE_OR_QUOTES),
        ),
        case(
            "empty subid",
            "admitad",
            vec![("subid", s("")), ("payment_sum", s("10"))],
            Final(MissingClickId, hint::CLICK_ID_EMPTY),
        ),
        case(
            "admitad_uid (32 hex) where the click ID belongs",
            "admitad",
            vec![("subid", s(EVERFLOW_HEX))],
            Final(MalformedClickId, hint::FOREIGN_TRACKER_ID),
        ),
    ]);
    assert_eq!(n, 4);
}

#[test]
fn adcombo() {
    let id = genuine(10);
    let t = id.to_string();
    let n = run(vec![
        case(
            "every macro sent URL-encoded",
            "adcombo",
            vec![("subid", s("%7Bsubid%7D")), ("payout", s("%7Bpayout%7D"))],
            Final(UnsubstitutedMacro, hint::MACRO_URL_ENCODED),
        ),
        case(
            "encoded twice",
            "adcombo",
            vec![("subid", s("%257Bsubid%257D"))],
            Final(UnsubstitutedMacro, hint::MACRO_URL_ENCODED),
        ),
        case(
            "{subid} not filled",
            "adcombo",
            vec![("subid", s("{subid}"))],
            Final(UnsubstitutedMacro, hint::MACRO_NOT_SUBSTITUTED),
        ),
        case(
            "status change re-sends the click",
            "adcombo",
            vec![("subid", t.clone()), ("status", s("confirmed"))],
            Clean(id),
        ),
        case(
            "the click ID encoded once more",
            "adcombo",
            vec![("subid", t.bytes().map(|b| format!("%{b:02X}")).collect())],
            Repaired(id, repair::DOUBLE_ENCODED),
        ),
    ]);
    assert_eq!(n, 5);
}

#[test]
fn keitaro() {
    let id = genuine(11);
    let t = id.to_string();
    let n = run(vec![
        case(
            "clean",
            "keitaro",
            vec![
                ("subid", t.clone()),
                ("status", s("sale")),
                ("payout", s("2")),
            ],
            Clean(id),
        ),
        case(
            "{subid} not filled",
            "keitaro",
            vec![("subid", s("{subid}"))],
            Final(UnsubstitutedMacro, hint::MACRO_NOT_SUBSTITUTED),
        ),
        case(
            "{sub_id_1} not filled",
            "keitaro",
            vec![("subid", s("{sub_id_1}"))],
            Final(UnsubstitutedMacro, hint::MACRO_NOT_SUBSTITUTED),
        ),
        case(
            "{SUBID}",
            "keitaro",
            vec![("subid", s("{SUBID}"))],
            Final(UnsubstitutedMacro, hint::MACRO_WRONG_CASE),
        ),
        case(
            "value with a second ?",
            "keitaro",
            vec![("subid", format!("{t}?status=sale"))],
            Repaired(id, repair::SECOND_QUESTION_MARK),
        ),
    ]);
    assert_eq!(n, 5);
}

#[test]
fn voluum() {
    let id = genuine(12);
    let t = id.to_string();
    let n = run(vec![
        case(
            "a Voluum clickid that happens to parse: mixed case, so foreign",
            "voluum",
            vec![("cid", s(VOLUUM_PARSEABLE))],
            Final(InvalidSignature, hint::FOREIGN_TRACKER_ID),
        ),
        case(
            "a Voluum clickid outside the alphabet",
            "voluum",
            vec![("cid", s(VOLUUM_OTHER))],
            Final(MalformedClickId, hint::FOREIGN_TRACKER_ID),
        ),
        case(
            "accepted where the route takes foreign IDs",
            "voluum-foreign",
            vec![("cid", s(VOLUUM_OTHER))],
            Foreign(s(VOLUUM_OTHER)),
        ),
        case(
            "a clickmatch ID on the foreign route is still verified",
            "voluum-foreign",
            vec![("clickid", t.clone())],
            Clean(id),
        ),
        case(
            "{clickid} not filled",
            "voluum",
            vec![("cid", s("{clickid}"))],
            Final(UnsubstitutedMacro, hint::MACRO_NOT_SUBSTITUTED),
        ),
        case(
            "second ? in the template",
            "voluum",
            vec![("cid", format!("{t}?payout=1"))],
            Repaired(id, repair::SECOND_QUESTION_MARK),
        ),
    ]);
    assert_eq!(n, 6);
}

#[test]
fn prosper202() {
    let id = genuine(13);
    let t = id.to_string();
    let n = run(vec![
        case("clean", "prosper202", vec![("subid", t.clone())], Clean(id)),
        case(
            "[[subid]] not filled",
            "prosper202",
            vec![("subid", s("[[subid]]"))],
            Final(UnsubstitutedMacro, hint::MACRO_NOT_SUBSTITUTED),
        ),
        case(
            "braces on Prosper202",
            "prosper202",
            vec![("subid", s("{subid}"))],
            Final(UnsubstitutedMacro, hint::MACRO_WRONG_DIALECT),
        ),
        case(
            "Prosper202's integer subid",
            "prosper202",
            vec![("subid", s("48213"))],
            Final(MalformedClickId, hint::FOREIGN_TRACKER_ID),
        ),
    ]);
    assert_eq!(n, 4);
}

#[test]
fn binom() {
    let id = genuine(14);
    let t = id.to_string();
    let n = run(vec![
        case(
            "clean",
            "binom",
            vec![("cnv_id", t.clone()), ("payout", s("1"))],
            Clean(id),
        ),
        case(
            "{clickid} not filled",
            "binom",
            vec![("cnv_id", s("{clickid}"))],
            Final(UnsubstitutedMacro, hint::MACRO_NOT_SUBSTITUTED),
        ),
        case(
            "a UUID",
            "binom",
            vec![("cnv_id", s(BINOM_UUID))],
            Final(MalformedClickId, hint::FOREIGN_TRACKER_ID),
        ),
        case(
            "the click ID as clickid, the route reads cnv_id",
            "binom",
            vec![("clickid", t.clone()), ("payout", s("1"))],
            Repaired(id, repair::OTHER_PARAM),
        ),
    ]);
    assert_eq!(n, 4);
}

#[test]
fn redtrack() {
    let id = genuine(15);
    let t = id.to_string();
    let n = run(vec![
        case(
            "a 24-hex RedTrack ID",
            "redtrack",
            vec![("clickid", s(REDTRACK_HEX))],
            Final(MalformedClickId, hint::FOREIGN_TRACKER_ID),
        ),
        case(
            "pipe-joined duplicate",
            "redtrack",
            vec![("clickid", format!("{t}|{t}"))],
            Repaired(id, repair::DUPLICATED),
        ),
        case(
            "{clickid} not filled",
            "redtrack",
            vec![("clickid", s("{clickid}"))],
            Final(UnsubstitutedMacro, hint::MACRO_NOT_SUBSTITUTED),
        ),
    ]);
    assert_eq!(n, 3);
}

#[test]
fn clickbank() {
    let id = genuine(16);
    let t = id.to_string();
    let up = t.to_ascii_uppercase();
    let n = run(vec![
        case(
            "upper-cased tid",
            "clickbank",
            vec![("tid", up.clone())],
            Clean(id),
        ),
        case(
            "upper-cased and truncated",
            "clickbank",
            vec![("tid", up[..18].to_string())],
            Final(MalformedClickId, hint::CLICK_ID_TRUNCATED),
        ),
        case(
            "a digit glued to the ID",
            "clickbank",
            vec![("tid", format!("{t}7"))],
            Final(MalformedClickId, hint::CLICK_ID_GLUED_CHARS),
        ),
    ]);
    assert_eq!(n, 3);
}

/// The global route (no network preset): template leftovers, placeholders, platform IDs,
/// routes and authorization.
#[test]
fn global_route_and_generic_breakage() {
    let id = genuine(17);
    let t = id.to_string();
    let mut forged = t.clone();
    let last = if forged.ends_with('0') { "1" } else { "0" };
    forged.replace_range(25..26, last);
    let other_secret = clickmatch_core::ClickIdSigner::new(b"staging".to_vec(), vec![])
        .mint(common::CLICK_MS, 1)
        .to_string();
    let swallowed_key = format!("cid%3D{t}");
    let n = run(vec![
        case("clean", "global", vec![("cid", t.clone())], Clean(id)),
        case(
            "REPLACE left in the template",
            "global",
            vec![("cid", s("REPLACE"))],
            Final(UnsubstitutedMacro, hint::TEMPLATE_PLACEHOLDER_WORD),
        ),
        case(
            "<click_id> from documentation",
            "global",
            vec![("cid", s("<click_id>"))],
            Final(UnsubstitutedMacro, hint::TEMPLATE_PLACEHOLDER_WORD),
        ),
        case(
            "{{click_id}}",
            "global",
            vec![("cid", s("{{click_id}}"))],
            Final(UnsubstitutedMacro, hint::MACRO_NOT_SUBSTITUTED),
        ),
        case(
            "{Sub5}",
            "global",
            vec![("cid", s("{Sub5}"))],
            Final(UnsubstitutedMacro, hint::MACRO_WRONG_CASE),
        ),
        case(
            "undefined",
            "global",
            vec![("cid", s("undefined"))],
            Final(MissingClickId, hint::PLACEHOLDER_SENT),
        ),
        case(
            "an encoded space",
            "global",
            vec![("cid", s("%20"))],
            Final(MissingClickId, hint::CLICK_ID_EMPTY),
        ),
        case(
            "no parameters at all",
            "global",
            vec![],
            Final(MissingClickId, hint::EMPTY_POSTBACK),
        ),
        case(
            "no click-ID parameter",
            "global",
            vec![("payout", s("1"))],
            Final(MissingClickId, "add_click_id_param"),
        ),
        case(
            "amp;cid holding garbage",
            "global",
            vec![("payout", s("1")), ("amp;cid", s("{aff_sub}"))],
            Final(MissingClickId, hint::HTML_ESCAPED_KEY),
        ),
        case(
            "?cid holding garbage",
            "global",
            vec![("?cid", s("abc"))],
            Final(MissingClickId, hint::CLICK_ID_KEY_MANGLED),
        ),
        case(
            "a body that was neither form nor JSON",
            "global",
            vec![("_body", s("cid: 12"))],
            Final(MissingClickId, hint::UNREADABLE_BODY),
        ),
        case(
            "one character changed",
            "global",
            vec![("cid", forged.clone())],
            Final(InvalidSignature, "forged_or_corrupted_id"),
        ),
        case(
            "one character changed, upper-cased",
            "global",
            vec![("cid", forged.to_ascii_uppercase())],
            Final(InvalidSignature, "forged_or_corrupted_id"),
        ),
        case(
            "minted by another deployment",
            "global",
            vec![("cid", other_secret)],
            Final(InvalidSignature, "forged_or_corrupted_id"),
        ),
        case(
            "a FunnelFlux ID",
            "global",
            vec![("cid", s(FUNNELFLUX))],
            Final(MalformedClickId, hint::FOREIGN_TRACKER_ID),
        ),
        case(
            "a Facebook fbclid",
            "global",
            vec![("cid", s(FBCLID))],
            Final(MalformedClickId, hint::FOREIGN_TRACKER_ID),
        ),
        case(
            "a Google gclid",
            "global",
            vec![("cid", s(GCLID))],
            Final(MalformedClickId, hint::FOREIGN_TRACKER_ID),
        ),
        case(
            "some other word",
            "global",
            vec![("cid", s("hello world"))],
            Final(MalformedClickId, "check_sub_param_passthrough"),
        ),
        case(
            "the ID under s2 on the global route",
            "global",
            vec![("s2", t.clone()), ("payout", s("1"))],
            Repaired(id, repair::OTHER_PARAM),
        ),
        case(
            "an encoded = swallowed the value into the key",
            "global",
            vec![(Box::leak(swallowed_key.into_boxed_str()), s(""))],
            Repaired(id, repair::KEY_CONTAINS_VALUE),
        ),
        case(
            "a newline after the ID",
            "global",
            vec![("cid", format!("{t}\n"))],
            Repaired(id, repair::WHITESPACE_OR_QUOTES),
        ),
        case(
            "¤cy= copied from HTML: the click still attributes",
            "global",
            vec![("cid", t.clone()), ("¤cy", s("EUR"))],
            Clean(id),
        ),
        case(
            "unknown route",
            "nope",
            vec![("cid", t.clone())],
            Final(UnknownRoute, "configure_route"),
        ),
        case(
            "a route name in another case",
            "CAKE",
            vec![("s2", t.clone())],
            Final(UnknownRoute, hint::ROUTE_NAME_MISMATCH),
        ),
        unauthorized(case(
            "a route that checks only source IPs",
            "ip-only",
            vec![("cid", t.clone())],
            Final(Unauthorized, hint::SOURCE_IP_NOT_ALLOWED),
        )),
    ]);
    assert_eq!(n, 26);
}

/// Each dialect's malformed macro is named in the sentence the operator reads.
#[test]
fn sentences_name_the_macro_and_the_key() {
    let account = account();
    let diagnosis = clickmatch_core::classify::diagnose(
        &account,
        &postback(Some("everflow"), &[("sub1", "{Sub5}")]),
    );
    let sentence = diagnosis.sentence().unwrap();
    assert!(sentence.contains("`{Sub5}`"), "{sentence}");

    let t = genuine(18).to_string();
    let diagnosis =
        clickmatch_core::classify::diagnose(&account, &postback(None, &[("s2", t.as_str())]));
    assert_eq!(diagnosis.hint, Some(repair::OTHER_PARAM));
    let sentence = diagnosis.sentence().unwrap();
    assert!(sentence.contains("(here: `s2`)"), "{sentence}");

    let diagnosis = clickmatch_core::classify::diagnose(
        &account,
        &postback(Some("cake"), &[("token", TOKEN), ("s2", "{aff_sub}")]),
    );
    let sentence = diagnosis.sentence().unwrap();
    assert!(
        sentence.contains("`{aff_sub}` on a cake offer, whose macros read like `#s2#`"),
        "{sentence}"
    );

    let diagnosis =
        clickmatch_core::classify::diagnose(&account, &postback(None, &[("cid", EVERFLOW_HEX)]));
    assert!(diagnosis.sentence().unwrap().contains("accept_foreign_ids"));
}
