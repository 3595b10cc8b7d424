//! Postbacks as query, form body and JSON body (string and number values), repeated parameters
//! and names that differ only by case: parsed by `params` the way ingest parses them, then
//! classified.

mod common;

use clickmatch_core::classify::{classify, Classified};
use clickmatch_core::params::{append_body, parse_query, ParamLimits};
use clickmatch_core::reason::hints as hint;
use clickmatch_core::salvage::hints as repair;
use clickmatch_core::Reason;
use common::{account, genuine, outcome, postback_owned, Expect};
use rust_decimal::Decimal;

use Expect::{Clean, Final, Repaired};

/// What ingest does: the query, then the body by its content type.
fn parse(query: &str, content_type: Option<&str>, body: &str) -> Vec<(String, String)> {
    let limits = ParamLimits::default();
    let mut params = parse_query(query, &limits).expect("query");
    append_body(&mut params, content_type, body.as_bytes(), &limits).expect("body");
    params
}

fn outcome_of(route: Option<&str>, params: Vec<(String, String)>) -> Expect {
    outcome(&account(), &postback_owned(route, params))
}

fn payout_of(route: Option<&str>, params: Vec<(String, String)>) -> Option<Decimal> {
    match classify(&account(), &postback_owned(route, params)) {
        Classified::Joinable(candidate) => {
            let booked = candidate
                .extracted
                .book_payout(clickmatch_core::model::PayoutModel::FromPostback, None);
            booked.issue.is_none().then_some(booked.payout)
        }
        Classified::Final(row) => Some(row.payout),
    }
}

const FORM: Option<&str> = Some("application/x-www-form-urlencoded");
const JSON: Option<&str> = Some("application/json");

#[test]
fn query_form_and_json_bodies_read_alike() {
    let id = genuine(100);
    let t = id.to_string();
    let variants = [
        parse(&format!("cid={t}&payout=1.5&offer=1"), None, ""),
        parse("", FORM, &format!("cid={t}&payout=1.5&offer=1")),
        parse("", FORM, &format!("cid={t}&payout=1.5&offer=1\n")),
        parse(
            "",
            JSON,
            &format!(r#"{{"cid":"{t}","payout":"1.5","offer":"1"}}"#),
        ),
        parse(
            "",
            JSON,
            &format!(r#"{{"cid":"{t}","payout":1.5,"offer":1}}"#),
        ),
        parse(
            "",
            Some("application/json; charset=utf-8"),
            &format!(r#" {{"cid":"{t}","payout":1.50,"offer":1}}"#),
        ),
        // No content type: JSON recognised by its opening brace, forms by their `=`.
        parse(
            "",
            None,
            &format!(r#"{{"cid":"{t}","payout":1.5,"offer":1}}"#),
        ),
        parse("", None, &format!("cid={t}&payout=1.5&offer=1")),
        // Query and body together.
        parse("offer=1", JSON, &format!(r#"{{"cid":"{t}","payout":1.5}}"#)),
        parse(&format!("cid={t}"), FORM, "payout=1.5&offer=1"),
    ];
    for params in variants {
        assert_eq!(outcome_of(None, params.clone()), Clean(id), "{params:?}");
        assert_eq!(
            payout_of(None, params.clone()),
            Some(Decimal::new(15, 1)),
            "{params:?}"
        );
    }
}

#[test]
fn json_numbers_as_click_ids_and_payouts() {
    // Prosper202 sends integer subids: a number where the click ID belongs.
    let params = parse("", JSON, r#"{"subid":48213,"amount":12}"#);
    assert_eq!(
        outcome_of(Some("prosper202"), params.clone()),
        Final(Reason::MalformedClickId, hint::FOREIGN_TRACKER_ID)
    );
    assert_eq!(
        payout_of(Some("prosper202"), params),
        Some(Decimal::new(12, 0))
    );

    // serde_json prints small and large floats in scientific notation; the payout still reads.
    let id = genuine(101).to_string();
    let params = parse("", JSON, &format!(r#"{{"cid":"{id}","payout":0.000001}}"#));
    assert_eq!(payout_of(None, params), Some(Decimal::new(1, 6)));
    let params = parse("", JSON, &format!(r#"{{"cid":"{id}","payout":2.5E3}}"#));
    assert_eq!(payout_of(None, params), Some(Decimal::new(2500, 0)));
    // A null is no value.
    let params = parse("", JSON, r#"{"cid":null,"payout":1}"#);
    assert_eq!(
        outcome_of(None, params),
        Final(Reason::MissingClickId, hint::CLICK_ID_EMPTY)
    );
}

#[test]
fn names_that_differ_only_by_case() {
    let id = genuine(102);
    let t = id.to_string();
    for query in [
        format!("CID={t}"),
        format!("Cid={t}"),
        format!("ClickId={t}"),
        format!("CLICK_ID={t}"),
        format!("Sub_Id={t}"),
        format!("AFF_SUB={t}"),
    ] {
        assert_eq!(
            outcome_of(None, parse(&query, None, "")),
            Clean(id),
            "{query}"
        );
    }
    let params = parse("", JSON, &format!(r#"{{"Click_ID":"{t}","Payout":"2"}}"#));
    assert_eq!(outcome_of(None, params.clone()), Clean(id));
    assert_eq!(payout_of(None, params), Some(Decimal::new(2, 0)));
    // Impact's PascalCase keys against a route configured in lower case.
    let params = parse("", FORM, &format!("SubId1={t}&Payout=4&OID=A-1"));
    assert_eq!(outcome_of(Some("impact"), params.clone()), Clean(id));
    assert_eq!(payout_of(Some("impact"), params), Some(Decimal::new(4, 0)));
}

#[test]
fn repeated_parameters() {
    let id = genuine(103);
    let t = id.to_string();
    let other = genuine(104).to_string();
    // The same ID twice: nothing to repair.
    assert_eq!(
        outcome_of(None, parse(&format!("cid={t}&cid={t}"), None, "")),
        Clean(id)
    );
    // A literal macro, then the ID: recovered from the repeat.
    assert_eq!(
        outcome_of(None, parse(&format!("cid=%7Baff_sub%7D&cid={t}"), None, "")),
        Repaired(id, repair::DUPLICATED)
    );
    // Empty first, the ID under another alias and another case.
    assert_eq!(
        outcome_of(None, parse(&format!("cid=&CLICKID={t}"), None, "")),
        Repaired(id, repair::DUPLICATED)
    );
    // In the query and again in the body.
    assert_eq!(
        outcome_of(
            None,
            parse(&format!("cid={t}"), JSON, &format!(r#"{{"cid":"{t}"}}"#))
        ),
        Clean(id)
    );
    // The first clean ID is the one read; a different second one does not change that.
    assert_eq!(
        outcome_of(None, parse(&format!("cid={t}&cid={other}"), None, "")),
        Clean(id)
    );
    // Two different genuine IDs in a mangled value are ambiguous: never salvaged.
    assert!(matches!(
        outcome_of(None, parse(&format!("cid={t},{other}"), None, "")),
        Final(Reason::MalformedClickId, _)
    ));
}

#[test]
fn bodies_that_hide_the_click_id() {
    let id = genuine(105);
    let t = id.to_string();
    // A nested JSON object: kept as JSON text, the ID found inside it.
    let params = parse(
        "",
        JSON,
        &format!(r#"{{"data":{{"click_id":"{t}"}},"payout":1}}"#),
    );
    assert_eq!(outcome_of(None, params), Repaired(id, repair::OTHER_PARAM));
    // A body that is neither form nor JSON: kept raw, the ID still found in it.
    let params = parse("", Some("application/octet-stream"), &format!("click {t}"));
    assert_eq!(outcome_of(None, params), Repaired(id, repair::OTHER_PARAM));
    // Without an ID in it, the hint says the body was unreadable.
    let params = parse("", Some("application/octet-stream"), "click 123");
    assert_eq!(
        outcome_of(None, params),
        Final(Reason::MissingClickId, hint::UNREADABLE_BODY)
    );
    // A JSON array is not an object: kept raw.
    let params = parse("", JSON, r#"[{"cid":"x"}]"#);
    assert_eq!(
        outcome_of(None, params),
        Final(Reason::MissingClickId, hint::UNREADABLE_BODY)
    );
}

/// JSON sent with a form or text content type is kept raw (`_body`), not read as JSON: the
/// click ID is still recovered by salvage, but payout and the other fields are lost.
#[test]
fn json_under_a_form_content_type_is_recovered_by_salvage_only() {
    let id = genuine(106);
    let t = id.to_string();
    for content_type in [FORM, Some("text/plain")] {
        let params = parse("", content_type, &format!(r#"{{"cid":"{t}","payout":3}}"#));
        assert_eq!(params[0].0, "_body", "{content_type:?}");
        assert_eq!(
            outcome_of(None, params.clone()),
            Repaired(id, repair::OTHER_PARAM)
        );
        assert_eq!(payout_of(None, params), None);
    }
}
