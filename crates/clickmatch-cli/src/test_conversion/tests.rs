use std::collections::BTreeMap;

use clickmatch_core::money::MoneyIssue;
use clickmatch_core::reason::hint_text;

use super::*;

const CLICK: &str = "01jc0000000000000000000000";

fn demo_config() -> Config {
    Config::demo(&BTreeMap::new()).unwrap()
}

fn plan_for(offer: &str, network: Option<&str>, route: Option<&str>) -> Plan {
    let mut args = TestConversionArgs::new(offer);
    args.network = network.map(str::to_string);
    args.route = route.map(str::to_string);
    args.ingest_url = Some("http://ingest.example/".into());
    plan(&demo_config(), &args).unwrap()
}

fn click(network_value: Option<&str>, param: &str) -> TestClick {
    TestClick {
        click_id: CLICK.into(),
        location: format!("https://net.example/?{param}={CLICK}"),
        click_param: Some(param.into()),
        network_value: network_value.map(str::to_string),
    }
}

fn conversion() -> ConversionFound {
    ConversionFound {
        conversion_id: "conv-1".into(),
        click_id: CLICK.into(),
        offer_id: "1".into(),
        route: "global".into(),
        event: "sale".into(),
        status: "approved".into(),
        payout: "1.230000".into(),
        currency: "USD".into(),
        txid: "test-1".into(),
        offer_mismatch: 0,
        click_id_repaired: 0,
        repair_hint: String::new(),
        is_test: 1,
        latency_ms: 180,
        payout_raw: "1.23".into(),
        payout_issue: String::new(),
    }
}

fn observe(click: TestClick, landed: Landed) -> Observation {
    Observation {
        click,
        fired_url: "http://ingest.example/postback?x".into(),
        http_status: 200,
        landed,
        measured: Some(Duration::from_millis(240)),
    }
}

#[test]
fn plans_from_the_demo_configuration() {
    let p = plan_for("1", None, None);
    assert_eq!(p.campaign, "demo");
    assert_eq!(p.route_label(), "global");
    assert_eq!(p.preset.name, "tune");
    assert_eq!(
        p.template,
        "http://ingest.example/postback?aff_sub={aff_sub}&payout={payout}&offer_id={offer_id}&transaction_id={transaction_id}&event={goal_id}"
    );
    let p = plan_for("2", None, None);
    assert_eq!(
        (p.campaign.as_str(), p.route_label()),
        ("demo-lead", "lead")
    );
    assert_eq!(
        p.template,
        "http://ingest.example/postback/lead?token=demo-lead-token&price=#price#&tid=#leadid#&s2=#s2#"
    );
    let p = plan_for("2", Some("affise"), Some("global"));
    assert_eq!(p.preset.name, "affise");
    assert_eq!(p.route_label(), "global");

    let mut args = TestConversionArgs::new("9");
    assert!(plan(&demo_config(), &args).is_err());
    args.offer = "1".into();
    args.network = Some("nonet".into());
    assert!(plan(&demo_config(), &args).is_err());
    args.network = None;
    args.route = Some("nope".into());
    assert!(plan(&demo_config(), &args).is_err());
}

#[test]
fn redirects_and_fire_values() {
    let tune = presets::preset("tune").unwrap();
    let location = format!("https://net.example/aff_c?offer_id=1&aff_sub={CLICK}&aff_sub2=");
    let c = read_redirect(tune, &location).unwrap();
    assert_eq!(c.click_param.as_deref(), Some("aff_sub"));
    assert_eq!(c.network_value.as_deref(), Some(CLICK));
    let everflow = presets::preset("everflow").unwrap();
    let c = read_redirect(everflow, &location).unwrap();
    assert_eq!(c.network_value, None);
    assert!(read_redirect(tune, "https://net.example/?aff_sub=x").is_none());

    let p = plan_for("1", None, None);
    let c = read_redirect(tune, &location).unwrap();
    assert_eq!(
        presets::fire_url(p.preset, &p.template, &fire_values(&p, &c, "test-7")),
        format!("http://ingest.example/postback?aff_sub={CLICK}&payout=1.23&offer_id=1&transaction_id=test-7&event=sale")
    );
    // CAKE through the global route with no s2 in the offer link: the hash macro stays.
    let p = plan_for("1", Some("cake"), None);
    let c = read_redirect(p.preset, &location).unwrap();
    assert_eq!(
        presets::fire_url(p.preset, &p.template, &fire_values(&p, &c, "test-7")),
        "http://ingest.example/postback?payout=1.23&offer=1&txid=test-7&cid=#s2#"
    );
}

#[test]
fn an_expected_attributed_conversion_passes() {
    let p = plan_for("1", None, None);
    let v = verdict(
        &p,
        &observe(
            click(Some(CLICK), "aff_sub"),
            Landed::Conversion(conversion()),
        ),
    );
    assert!(v.ok, "{v:?}");
    assert_eq!(v.outcome, "attributed");
    assert_eq!(
        v.lines,
        vec![
            "attributed: conversion conv-1",
            "  offer 1, route global, event sale, status approved, payout 1.23 USD, txid test-1, is_test 1",
            "latency: 180 ms from ingest receiving the postback to the ClickHouse row, 240 ms measured from sending the postback",
            "OK: the TUNE (HasOffers) test conversion landed attributed",
        ]
    );
}

#[test]
fn attributed_but_not_as_expected_fails() {
    let p = plan_for("1", Some("affise"), None);
    let mut row = conversion();
    row.status = "1".into();
    row.click_id_repaired = 1;
    row.repair_hint = "click_id_other_param".into();
    row.is_test = 0;
    let v = verdict(
        &p,
        &observe(click(Some(CLICK), "sub1"), Landed::Conversion(row)),
    );
    assert!(!v.ok);
    let text = v.lines.join("\n");
    assert!(
        text.contains("status \"1\" instead of \"approved\""),
        "{text}"
    );
    assert!(text.contains("set network = \"affise\""), "{text}");
    assert!(text.contains("click_id_other_param"), "{text}");
    assert!(text.contains("not marked is_test"), "{text}");
    assert!(
        text.ends_with("FAILED: attributed, but not as expected"),
        "{text}"
    );
}

#[test]
fn a_payout_not_booked_as_sent_fails_and_says_why() {
    let p = plan_for("1", None, None);
    let mut row = conversion();
    row.payout = "0.000000".into();
    row.payout_raw = "{payout}".into();
    row.payout_issue = "payout_macro".into();
    let v = verdict(
        &p,
        &observe(click(Some(CLICK), "aff_sub"), Landed::Conversion(row)),
    );
    assert!(!v.ok, "{v:?}");
    assert_eq!(v.outcome, "attributed");
    assert_eq!(
        v.lines[..2],
        [
            "attributed: conversion conv-1",
            "  offer 1, route global, event sale, status approved, payout 0 USD, txid test-1, is_test 1",
        ]
    );
    assert_eq!(
        v.lines[2],
        format!(
            "  payout issue payout_macro: sent \"{{payout}}\": {}",
            MoneyIssue::PayoutMacro.hint()
        )
    );
    assert_eq!(
        v.lines[4],
        "problem: the payout was not booked as sent (payout_macro, booked 0 USD): the test sent 1.23, the row kept \"{payout}\""
    );
    assert_eq!(
        v.lines.last().unwrap(),
        "FAILED: attributed, but not as expected"
    );

    // A network that sends no payout, under an offer without default_payout.
    let p = plan_for("1", Some("prosper202"), None);
    assert!(p.preset.payout.is_none());
    let mut row = conversion();
    row.payout = "0.000000".into();
    row.payout_raw = String::new();
    row.payout_issue = "payout_missing".into();
    let v = verdict(
        &p,
        &observe(click(Some(CLICK), "aff_sub"), Landed::Conversion(row)),
    );
    assert!(!v.ok);
    let text = v.lines.join("\n");
    assert!(
        text.contains("  payout issue payout_missing: sent \"\": "),
        "{text}"
    );
    assert!(
        text.contains("Prosper202 sends no payout; set default_payout"),
        "{text}"
    );
    assert!(text.contains("on offer 1"), "{text}");

    // A code this build does not know still fails, and says so.
    let mut row = conversion();
    row.payout_issue = "payout_from_the_future".into();
    let v = verdict(
        &plan_for("1", None, None),
        &observe(click(Some(CLICK), "aff_sub"), Landed::Conversion(row)),
    );
    assert!(!v.ok);
    assert!(v.lines[2].contains("does not know"), "{:?}", v.lines);

    // A currency issue: the amount was booked, its currency not as sent.
    let mut row = conversion();
    row.currency = "EUR".into();
    row.payout_issue = "currency_conflict".into();
    let v = verdict(
        &plan_for("1", None, None),
        &observe(click(Some(CLICK), "aff_sub"), Landed::Conversion(row)),
    );
    assert!(!v.ok);
    assert!(
        v.lines.contains(&"problem: the payout's currency was not booked as sent (currency_conflict, booked 1.23 EUR): the test sent 1.23 USD, the route's currency".to_string()),
        "{:?}",
        v.lines
    );
}

#[test]
fn a_literal_macro_names_the_sub_parameter_to_fix() {
    let p = plan_for("1", Some("everflow"), None);
    let row = UnattributedFound {
        reason: "unsubstituted_macro".into(),
        hint: "fix_network_macro".into(),
        raw_click_id: "{sub1}".into(),
        route: "global".into(),
        offer_id: "1".into(),
        raw_params: "{\"sub1\":\"{sub1}\"}".into(),
        is_test: 0,
        latency_ms: 90,
    };
    let v = verdict(
        &p,
        &observe(click(None, "aff_sub"), Landed::Unattributed(row)),
    );
    assert!(!v.ok);
    assert_eq!(v.outcome, "unsubstituted_macro");
    let text = v.lines.join("\n");
    assert!(text.contains(hint_text("fix_network_macro")), "{text}");
    assert!(
        text.contains("the network sent `{sub1}` literally: the offer link carries the click ID in `aff_sub`, not `sub1`"),
        "{text}"
    );
    assert!(
        text.contains("clickmatch offer-url --network everflow"),
        "{text}"
    );
}

#[test]
fn a_cut_hash_macro_is_explained() {
    let p = plan_for("1", Some("cake"), None);
    let row = UnattributedFound {
        reason: "missing_click_id".into(),
        hint: "add_click_id_param".into(),
        raw_click_id: String::new(),
        route: "global".into(),
        offer_id: "1".into(),
        raw_params: "{}".into(),
        is_test: 0,
        latency_ms: 90,
    };
    let v = verdict(
        &p,
        &observe(click(None, "aff_sub"), Landed::Unattributed(row)),
    );
    assert!(!v.ok);
    let text = v.lines.join("\n");
    assert!(
        text.contains("nothing for #s2# and sent it unencoded"),
        "{text}"
    );
    assert!(text.contains("put the click ID in `s2`"), "{text}");
}

#[test]
fn nothing_or_not_recorded_fails() {
    let p = plan_for("1", None, None);
    let v = verdict(
        &p,
        &observe(
            click(Some(CLICK), "aff_sub"),
            Landed::Nothing {
                postback_id: "pb".into(),
                waited: Duration::from_secs(30),
            },
        ),
    );
    assert!(!v.ok);
    assert_eq!(v.outcome, "timeout");
    assert!(v.lines[0].contains("no row for postback pb"));
    let v = verdict(
        &p,
        &observe(
            click(Some(CLICK), "aff_sub"),
            Landed::NotRecorded {
                status: 503,
                body: "{}".into(),
            },
        ),
    );
    assert!(!v.ok);
    assert_eq!(v.outcome, "not_recorded");
    assert!(v.lines[1].contains("Kafka"));
}
