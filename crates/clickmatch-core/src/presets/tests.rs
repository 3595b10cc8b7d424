use super::*;
use crate::macros::{find_macro, shape, ValueShape};
use crate::model::{Route, Secret, GLOBAL_ROUTE};
use crate::template::TemplateError;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

const BASE: &str = "https://track.example";

#[test]
fn at_least_twelve_presets_with_unique_names() {
    assert!(PRESETS.len() >= 12, "{}", PRESETS.len());
    let mut seen = Vec::new();
    for p in PRESETS {
        for name in std::iter::once(p.name).chain(p.aliases.iter().copied()) {
            let n = normalize(name);
            assert!(!seen.contains(&n), "{name} names two presets");
            seen.push(n);
        }
        assert_eq!(p.name, p.name.to_ascii_lowercase());
        assert_eq!(preset(p.name), Some(p));
        for (_, f) in p.fields() {
            assert_eq!(f.param, f.param.to_ascii_lowercase(), "{}", p.name);
        }
        assert!(
            p.txid.is_some() == p.txid_scope.is_some(),
            "{}: a transaction ID needs a scope",
            p.name
        );
        if p.txid_scope == Some(TxidScope::Conversion) {
            assert_eq!(p.dedup, DedupMode::Transaction, "{}", p.name);
        } else {
            assert_eq!(p.dedup, DedupMode::ClickEvent, "{}", p.name);
        }
    }
    assert_eq!(preset("HasOffers").map(|p| p.name), Some("tune"));
    assert_eq!(preset("Prosper-202").map(|p| p.name), Some("prosper202"));
    assert_eq!(preset("impact.com").map(|p| p.name), Some("impact"));
    assert_eq!(preset("nope"), None);
}

/// Every preset's postback URL, for the global route and a per-offer route with a token,
/// and its offer link: exact strings.
#[test]
fn every_preset_postback_url_and_offer_link() {
    let offer = "https://net.example/click?offer_id=7&aff_id=3";
    let table: &[(&str, &str, &str, &str)] = &[
        (
            "tune",
            "https://track.example/postback?aff_sub={aff_sub}&payout={payout}&offer_id={offer_id}&transaction_id={transaction_id}&goal_id={goal_id}",
            "https://track.example/postback/lead?aff_sub={aff_sub}&payout={payout}&transaction_id={transaction_id}&token=s3cret-token",
            "https://net.example/click?offer_id=7&aff_id=3&aff_sub={click_id}",
        ),
        (
            "cake",
            "https://track.example/postback?price=#price#&oid=#oid#&leadid=#leadid#&s2=#s2#",
            "https://track.example/postback/lead?token=s3cret-token&price=#price#&leadid=#leadid#&s2=#s2#",
            "https://net.example/click?offer_id=7&aff_id=3&s2={click_id}",
        ),
        (
            "everflow",
            "https://track.example/postback?sub1={sub1}&payout_amount={payout_amount}&offer_id={offer_id}&transaction_id={transaction_id}&event_name={event_name}",
            "https://track.example/postback/lead?sub1={sub1}&payout_amount={payout_amount}&transaction_id={transaction_id}&token=s3cret-token",
            "https://net.example/click?offer_id=7&aff_id=3&sub1={click_id}",
        ),
        (
            "affise",
            "https://track.example/postback?sub1={sub1}&sum={sum}&offerid={offerid}&transactionid={transactionid}&goal={goal}&status={status}&currency={currency}",
            "https://track.example/postback/lead?sub1={sub1}&sum={sum}&transactionid={transactionid}&status={status}&currency={currency}&token=s3cret-token",
            "https://net.example/click?offer_id=7&aff_id=3&sub1={click_id}",
        ),
        (
            "impact",
            "https://track.example/postback?subid1={SubId1}&payout={Payout}&actionid={ActionId}&status={Status}&currency={Currency}",
            "https://track.example/postback/lead?subid1={SubId1}&payout={Payout}&actionid={ActionId}&status={Status}&currency={Currency}&token=s3cret-token",
            "https://net.example/click?offer_id=7&aff_id=3&subId1={click_id}",
        ),
        (
            "adcombo",
            "https://track.example/postback?clickid={clickid}&revenue={revenue}&trans_id={trans_id}",
            "https://track.example/postback/lead?clickid={clickid}&revenue={revenue}&trans_id={trans_id}&token=s3cret-token",
            "https://net.example/click?offer_id=7&aff_id=3&clickid={click_id}",
        ),
        (
            "maxbounty",
            "https://track.example/postback?rate=#RATE#&offid=#OFFID#&s2=#S2#",
            "https://track.example/postback/lead?token=s3cret-token&rate=#RATE#&s2=#S2#",
            "https://net.example/click?offer_id=7&aff_id=3&s2={click_id}",
        ),
        (
            "awin",
            "https://track.example/postback?clickref=!!!clickRef!!!&commission=!!!commission!!!&merchantid=!!!merchantId!!!&transactionid=!!!transactionId!!!&currency=!!!transactionCurrency!!!",
            "https://track.example/postback/lead?clickref=!!!clickRef!!!&commission=!!!commission!!!&transactionid=!!!transactionId!!!&currency=!!!transactionCurrency!!!&token=s3cret-token",
            "https://net.example/click?offer_id=7&aff_id=3&clickref={click_id}",
        ),
        (
            "admitad",
            "https://track.example/postback?subid=[[[subid]]]&payment_sum=[[[payment_sum]]]&offer_id=[[[offer_id]]]&order_id=[[[order_id]]]&currency=[[[currency]]]",
            "https://track.example/postback/lead?subid=[[[subid]]]&payment_sum=[[[payment_sum]]]&order_id=[[[order_id]]]&currency=[[[currency]]]&token=s3cret-token",
            "https://net.example/click?offer_id=7&aff_id=3&subid={click_id}",
        ),
        (
            "clickbank",
            "https://track.example/postback?tid={tid}&affiliate_earnings={affiliate_earnings}&receipt_id={receipt_id}",
            "https://track.example/postback/lead?tid={tid}&affiliate_earnings={affiliate_earnings}&receipt_id={receipt_id}&token=s3cret-token",
            "https://net.example/click?offer_id=7&aff_id=3&tid={click_id}",
        ),
        (
            "voluum",
            "https://track.example/postback?externalid={externalid}&payout={payout}",
            "https://track.example/postback/lead?externalid={externalid}&payout={payout}&token=s3cret-token",
            "https://net.example/click?offer_id=7&aff_id=3&externalid={click_id}",
        ),
        (
            "redtrack",
            "https://track.example/postback?ref_id={ref_id}&payout={payout}",
            "https://track.example/postback/lead?ref_id={ref_id}&payout={payout}&token=s3cret-token",
            "https://net.example/click?offer_id=7&aff_id=3&ref_id={click_id}",
        ),
        (
            "keitaro",
            "https://track.example/postback?external_id={external_id}&revenue={revenue}&tid={tid}&status={status}",
            "https://track.example/postback/lead?external_id={external_id}&revenue={revenue}&tid={tid}&status={status}&token=s3cret-token",
            "https://net.example/click?offer_id=7&aff_id=3&external_id={click_id}",
        ),
        (
            "binom",
            "https://track.example/postback?externalid={externalid}&payout={payout}&cnv_status={cnv_status}&cnv_currency={cnv_currency}",
            "https://track.example/postback/lead?externalid={externalid}&payout={payout}&cnv_status={cnv_status}&cnv_currency={cnv_currency}&token=s3cret-token",
            "https://net.example/click?offer_id=7&aff_id=3&externalid={click_id}",
        ),
        (
            "prosper202",
            "https://track.example/postback?c1=[[c1]]",
            "https://track.example/postback/lead?c1=[[c1]]&token=s3cret-token",
            "https://net.example/click?offer_id=7&aff_id=3&c1={click_id}",
        ),
        (
            "clickflare",
            "https://track.example/postback?externalid={externalid}&payout={payout}&txid={transaction.id}",
            "https://track.example/postback/lead?externalid={externalid}&payout={payout}&txid={transaction.id}&token=s3cret-token",
            "https://net.example/click?offer_id=7&aff_id=3&externalid={click_id}",
        ),
    ];
    assert_eq!(
        table.len(),
        PRESETS.len(),
        "every preset has a row in this table"
    );
    for (name, global, lead, link) in table {
        let p = preset(name).unwrap();
        assert_eq!(postback_url(p, BASE, None, None), *global, "{name} global");
        assert_eq!(
            postback_url(p, &format!("{BASE}/"), Some("lead"), Some("s3cret-token")),
            *lead,
            "{name} lead route"
        );
        assert_eq!(offer_url(p, offer).unwrap(), *link, "{name} offer link");

        // A route configured with this preset reads exactly the printed names.
        let mut route = Route::new("lead");
        route.offer_id = Some("7".into());
        route.params = p.param_names();
        route.token = Some(Secret::new("s3cret-token"));
        assert_eq!(
            postback_url_for_route(p, BASE, &route),
            *lead,
            "{name} configured route"
        );
        let mut global_route = Route::new(GLOBAL_ROUTE);
        global_route.params = p.param_names();
        assert_eq!(
            postback_url_for_route(p, BASE, &global_route),
            *global,
            "{name} configured global route"
        );
    }
}

#[test]
fn route_names_win_where_the_route_does_not_read_the_presets() {
    // The global route of config/demo.toml: generic names, no s2, price or leadid.
    let route = Route::new(GLOBAL_ROUTE);
    let cake = preset("cake").unwrap();
    assert_eq!(
        postback_url_for_route(cake, BASE, &route),
        "https://track.example/postback?payout=#price#&oid=#oid#&txid=#leadid#&cid=#s2#"
    );
    // The demo's `lead` route: s2/price/tid, a token under a custom name.
    let mut lead = Route::new("lead");
    lead.offer_id = Some("2".into());
    lead.params.click_id = vec!["s2".into(), "cid".into()];
    lead.params.payout = vec!["price".into()];
    lead.params.txid = vec!["tid".into()];
    lead.params.token = vec!["key".into()];
    lead.token = Some(Secret::new("demo-lead-token"));
    assert_eq!(
        postback_url_for_route(cake, BASE, &lead),
        "https://track.example/postback/lead?key=demo-lead-token&price=#price#&tid=#leadid#&s2=#s2#"
    );
    let tune = preset("tune").unwrap();
    assert_eq!(
        postback_url_for_route(tune, BASE, &route),
        "https://track.example/postback?aff_sub={aff_sub}&payout={payout}&offer_id={offer_id}&transaction_id={transaction_id}&event={goal_id}"
    );
}

#[test]
fn tokens_are_encoded() {
    let tune = preset("tune").unwrap();
    assert_eq!(
        postback_url(tune, BASE, Some("r"), Some("a&b#c d")),
        "https://track.example/postback/r?aff_sub={aff_sub}&payout={payout}&transaction_id={transaction_id}&token=a%26b%23c%20d"
    );
}

#[test]
fn offer_links_replace_an_existing_value_and_keep_the_rest() {
    let tune = preset("tune").unwrap();
    let cases: &[(&str, &str)] = &[
        (
            "https://net.example/aff_c?offer_id=1&aff_sub=OLD&aff_sub2=x",
            "https://net.example/aff_c?offer_id=1&aff_sub={click_id}&aff_sub2=x",
        ),
        (
            "https://net.example/aff_c?AFF_SUB=&offer_id=1&aff_sub=again",
            "https://net.example/aff_c?AFF_SUB={click_id}&offer_id=1",
        ),
        (
            "https://net.example/aff_c",
            "https://net.example/aff_c?aff_sub={click_id}",
        ),
        (
            "https://net.example/aff_c?offer_id=1&aff_sub={sub1}#top",
            "https://net.example/aff_c?offer_id=1&aff_sub={click_id}#top",
        ),
        (
            "  https://net.example/aff_c?offer_id=1&&q=a%20b  ",
            "https://net.example/aff_c?offer_id=1&q=a%20b&aff_sub={click_id}",
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(offer_url(tune, input).unwrap(), *expected, "{input}");
    }
    let impact = preset("impact").unwrap();
    assert_eq!(
        offer_url(impact, "https://brand.sjv.io/c/1/2/3?subid1=x").unwrap(),
        "https://brand.sjv.io/c/1/2/3?subid1={click_id}"
    );
    assert_eq!(
        offer_url(tune, "net.example/aff_c"),
        Err(OfferUrlError::Scheme)
    );
    assert!(matches!(
        offer_url(tune, "https://net.example/?x={unknown}"),
        Err(OfferUrlError::Template(TemplateError::UnknownToken(_)))
    ));
}

#[test]
fn firing_substitutes_values_and_leaves_unknown_ones_literal() {
    let affise = preset("affise").unwrap();
    let template = postback_url(affise, BASE, Some("a"), None);
    let values = FireValues {
        click_id: Some("01abc".into()),
        payout: Some("1.23".into()),
        txid: Some("test-1".into()),
        status: Some(affise.status_code("approved").into()),
        currency: Some("USD".into()),
        ..FireValues::default()
    };
    assert_eq!(
        fire_url(affise, &template, &values),
        "https://track.example/postback/a?sub1=01abc&sum=1.23&transactionid=test-1&status=1&currency=USD"
    );
    let missing = FireValues {
        click_id: None,
        ..values
    };
    assert_eq!(
        fire_url(affise, &template, &missing),
        "https://track.example/postback/a?sub1={sub1}&sum=1.23&transactionid=test-1&status=1&currency=USD"
    );
    assert_eq!(affise.status_code("hold"), "5");
    assert_eq!(affise.status_code("other"), "other");
}

#[test]
fn param_names_put_the_preset_first_and_keep_generic_aliases() {
    let affise = preset("affise").unwrap().param_names();
    assert_eq!(affise.click_id[0], "sub1");
    assert!(affise.click_id.contains(&"cid".to_string()));
    assert_eq!(
        affise.payout[..2],
        ["sum".to_string(), "payout".to_string()]
    );
    assert_eq!(affise.status, vec!["status".to_string()]);
    assert_eq!(affise.token, vec!["token".to_string()]);
    let prosper = preset("prosper202").unwrap().param_names();
    assert_eq!(prosper.payout, ParamNames::default().payout);
}

/// Literal-macro detection (`macros.rs`) knows every preset's dialect: each macro, its
/// URL-encoded forms and its upper- and lower-case variants are `LiteralMacro`.
#[test]
fn macro_detection_knows_every_preset_dialect() {
    let mut failures = Vec::new();
    for token in all_macro_tokens() {
        let variants = [
            token.to_string(),
            token.to_ascii_uppercase(),
            token.to_ascii_lowercase(),
        ];
        for variant in variants {
            let once = utf8_percent_encode(&variant, NON_ALPHANUMERIC).to_string();
            let twice = utf8_percent_encode(&once, NON_ALPHANUMERIC).to_string();
            for form in [variant.clone(), once, twice] {
                if shape(&form) != ValueShape::LiteralMacro {
                    failures.push(form);
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "not detected as literal macros: {failures:?}"
    );
}

#[test]
fn every_preset_has_notes_and_a_known_kind() {
    for p in PRESETS {
        assert!(!p.notes.is_empty(), "{}", p.name);
        assert!(!p.title.is_empty());
        assert!(matches!(p.kind, PresetKind::Network | PresetKind::Tracker));
    }
    assert_eq!(
        PRESETS
            .iter()
            .filter(|p| p.kind == PresetKind::Tracker)
            .count(),
        6
    );
}

/// One row per network holds both its dialect and its preset, and every lookup by name
/// normalises one way: the names the dialect lookup knew and those configuration knew all
/// resolve, in any case and with any separators.
#[test]
fn every_network_has_a_dialect_and_a_preset_under_one_name() {
    for p in PRESETS {
        assert!(!p.dialect.spellings.is_empty(), "{}: no spellings", p.name);
        assert!(!p.dialect.example.is_empty(), "{}: no example", p.name);
        assert!(!p.offer_param.is_empty(), "{}: no offer parameter", p.name);
        assert!(!p.click_id.macro_token.is_empty(), "{}", p.name);
        assert_eq!(
            normalize(p.name),
            p.name,
            "{}: a name is its own key",
            p.name
        );
        // A dialect with one form writes the preset's click-ID macro in it.
        if let Some(form) = p.dialect.form {
            let found = find_macro(p.click_id.macro_token).map(|m| m.form);
            assert_eq!(found, Some(form), "{}", p.name);
        }
    }
    let name_of = |name: &str| preset(name).map(|p| p.name);
    for name in [
        "Everflow",
        "everflow",
        "EVERFLOW",
        "ever-flow",
        "ever_flow",
        "Ever Flow",
    ] {
        assert_eq!(name_of(name), Some("everflow"), "{name}");
    }
    let known_before = [
        ("tune", "tune"),
        ("hasoffers", "tune"),
        ("HasOffers", "tune"),
        ("go2cloud", "tune"),
        ("cake", "cake"),
        ("getcake", "cake"),
        ("MaxBounty", "maxbounty"),
        ("affise", "affise"),
        ("impact", "impact"),
        ("impact.com", "impact"),
        ("impactradius", "impact"),
        ("awin", "awin"),
        ("admitad", "admitad"),
        ("adcombo", "adcombo"),
        ("keitaro", "keitaro"),
        ("voluum", "voluum"),
        ("binom", "binom"),
        ("redtrack", "redtrack"),
        ("Prosper202", "prosper202"),
        ("Prosper 202", "prosper202"),
        ("Prosper-202", "prosper202"),
        ("p202", "prosper202"),
        ("tracking202", "prosper202"),
        ("clickbank", "clickbank"),
        ("clickflare", "clickflare"),
    ];
    for (name, expected) in known_before {
        assert_eq!(name_of(name), Some(expected), "{name}");
    }
    assert_eq!(
        dialects().count(),
        PRESETS.len() + 1,
        "every row, then the generic names"
    );
}
