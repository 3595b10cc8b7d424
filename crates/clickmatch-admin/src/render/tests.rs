use super::*;
use clickmatch_config::Config;

#[test]
fn escaping_leaves_no_markup() {
    assert_eq!(
        esc("<script>alert('x')</script>&\""),
        "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"
    );
    let list = params_list(r#"[["cid","<img src=x onerror=alert(1)>"],["a&b","\""]]"#);
    assert!(!list.contains("<img"), "{list}");
    assert!(
        list.contains("cid=&lt;img src=x onerror=alert(1)&gt;"),
        "{list}"
    );
}

#[test]
fn raw_params_read_pairs_and_objects() {
    assert_eq!(
        raw_params(r#"[["cid","x"],["cid","y"]]"#),
        vec![("cid".into(), "x".into()), ("cid".into(), "y".into())]
    );
    assert_eq!(
        raw_params(r#"{"sub1":"{sub1}","n":1}"#),
        vec![("n".into(), "1".into()), ("sub1".into(), "{sub1}".into())]
    );
    assert!(raw_params("garbage").is_empty());
}

#[test]
fn utc_times() {
    assert_eq!(utc(0), "1970-01-01 00:00:00.000");
    assert_eq!(utc(1_700_000_000_123), "2023-11-14 22:13:20.123");
    assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00.000");
}

/// Offer 1 books what the postback sends, offer 2 the same with a default payout, offer 3 a
/// fixed payout; route `eur` reads `amount` in euros.
fn money_account() -> Account {
    Config::from_toml(
        r#"
[account]
secret = "0123456789abcdef"
currency = "usd"

[[offers]]
id = "1"

[[offers]]
id = "2"
default_payout = "1.50"

[[offers]]
id = "3"
payout = "fixed"
fixed_payout = "4.50"

[[campaigns]]
id = "c"
offer = "1"
url = "https://net.example/?s={click_id}"

[routes.eur]
offer = "2"
payout = ["amount"]
currency = "EUR"
"#,
        "money.toml",
        &Default::default(),
    )
    .unwrap()
    .account
}

fn unattributed_row(route: &str, raw_params: &str) -> UnattributedRow {
    UnattributedRow {
        postback_id: "p".into(),
        received_time: 0,
        received_time_ms: 0,
        route: route.into(),
        reason: "unsubstituted_macro".into(),
        raw_click_id: "{sub1}".into(),
        offer_id: String::new(),
        payout: Default::default(),
        currency: "USD".into(),
        remote_ip: "192.0.2.1".into(),
        raw_params: raw_params.into(),
        hint: "macro_not_substituted".into(),
        is_test: false,
        latency_ms: 0,
    }
}

fn conversion_row(payout_raw: &str, payout_issue: &str) -> ConversionRow {
    ConversionRow {
        conversion_id: "conv".into(),
        click_id: "01jc0000000000000000000000".into(),
        click_time: 0,
        conversion_time: 0,
        conversion_time_ms: 0,
        postback_id: "p".into(),
        campaign_id: "c".into(),
        offer_id: "1".into(),
        route: "global".into(),
        event: "sale".into(),
        status: "approved".into(),
        payout: Default::default(),
        currency: "USD".into(),
        txid: String::new(),
        offer_mismatch: false,
        click_id_repaired: false,
        repair_hint: String::new(),
        is_test: false,
        version: 1,
        latency_ms: 0,
        payout_raw: payout_raw.into(),
        payout_issue: payout_issue.into(),
        source: String::new(),
        country: String::new(),
        device_type: String::new(),
        os: String::new(),
        origin: "postback".into(),
        ..ConversionRow::default()
    }
}

#[test]
fn an_attributed_conversion_shows_its_payout_issue_escaped() {
    let flags = conversion_flags(&conversion_row("{payout}<b>", "payout_macro"));
    assert!(
        flags.contains("payout issue</span> <code class=\"payout-issue\">payout_macro</code>"),
        "{flags}"
    );
    assert!(
        flags.contains("(sent <code>{payout}&lt;b&gt;</code>)"),
        "{flags}"
    );
    assert!(!flags.contains("<b>"), "{flags}");
    assert!(
        flags.contains(&esc(MoneyIssue::PayoutMacro.hint())),
        "{flags}"
    );
    // Nothing sent at all.
    let flags = conversion_flags(&conversion_row("", "payout_missing"));
    assert!(flags.contains("(sent <span class=\"muted\">(no payout sent)</span>)"));
    assert!(
        flags.contains(&esc(MoneyIssue::PayoutMissing.hint())),
        "{flags}"
    );
    // A code this build does not know still shows, with a generic sentence.
    let flags = conversion_flags(&conversion_row("1", "payout_from_the_future"));
    assert!(flags.contains("payout_from_the_future"), "{flags}");
    assert!(flags.contains("does not know"), "{flags}");
    // A clean conversion shows none.
    let flags = conversion_flags(&conversion_row("2.50", ""));
    assert!(!flags.contains("payout issue"), "{flags}");
    assert!(flags.is_empty(), "{flags}");
}

#[test]
fn unattributed_postbacks_preview_the_payout_booking() {
    use clickmatch_core::money::Currency;
    let account = money_account();
    let preview = |route: &str, params: &str, click_offer: Option<&str>| {
        payout_preview(&account, &unattributed_row(route, params), click_offer)
    };
    // No rust_decimal in this crate: amounts compared as printed.
    let printed = |s: &str| s.to_string();

    // The macro left literal: payout_macro, 0 booked without a default payout.
    let booked = preview(
        "global",
        r#"[["cid","{sub1}"],["payout","{payout}"],["offer","1"]]"#,
        None,
    )
    .unwrap();
    assert_eq!(booked.issue, Some(MoneyIssue::PayoutMacro));
    assert_eq!(booked.payout.to_string(), printed("0"));
    assert_eq!(booked.payout_raw, "{payout}");
    assert_eq!(booked.currency, Currency::USD);
    // Offer 2's default payout is booked instead, still flagged.
    let booked = preview("global", r#"[["payout","{payout}"],["offer","2"]]"#, None).unwrap();
    assert_eq!(
        (booked.payout.to_string(), booked.issue),
        (printed("1.50"), Some(MoneyIssue::PayoutMacro))
    );
    // The click's offer wins over the one the postback names, as in the joiner: offer 3
    // books its fixed payout whatever was sent.
    let booked = preview(
        "global",
        r#"[["payout","{payout}"],["offer","1"]]"#,
        Some("3"),
    )
    .unwrap();
    assert_eq!(
        (booked.payout.to_string(), booked.issue),
        (printed("4.50"), None)
    );
    // A clean payout in the network's format, through a route with its own names and
    // currency and the route's offer.
    let booked = preview("eur", r#"{"amount":"1.234,56 €"}"#, None).unwrap();
    assert_eq!(booked.payout.to_string(), printed("1234.56"));
    assert_eq!(booked.currency, Currency::EUR);
    assert_eq!(booked.issue, None);
    // Nothing sent under a model that needs it: payout_missing, unless a default exists.
    let booked = preview("global", r#"[["offer","1"]]"#, None).unwrap();
    assert_eq!(booked.issue, Some(MoneyIssue::PayoutMissing));
    let booked = preview("eur", r#"[["cid","x"]]"#, None).unwrap();
    assert_eq!(
        (booked.payout.to_string(), booked.issue),
        (printed("1.50"), None)
    );
    // A route today's configuration does not know: no preview.
    assert_eq!(preview("gone", r#"[["payout","1"]]"#, None), None);

    let html = payout_preview_html(
        preview("global", r#"[["payout","{payout}"],["offer","1"]]"#, None).as_ref(),
    );
    assert!(html.starts_with("<div class=\"booking\">payout if attributed: 0 USD<br>"));
    assert!(
        html.contains("<code class=\"payout-issue\">payout_macro</code>"),
        "{html}"
    );
    assert!(html.contains("(sent <code>{payout}</code>)"), "{html}");
    assert!(
        html.contains(&esc(MoneyIssue::PayoutMacro.hint())),
        "{html}"
    );
    let clean = payout_preview_html(preview("eur", r#"{"amount":"2.5"}"#, None).as_ref());
    assert_eq!(
        clean,
        "<div class=\"booking\">payout if attributed: 2.5 EUR</div>"
    );
    assert_eq!(payout_preview_html(None), "");
}

#[test]
fn the_index_shows_payout_issues_per_row_and_in_the_summary() {
    let account = money_account();
    let mut flagged = conversion_row("{payout}", "payout_macro");
    flagged.txid = "T-macro".into();
    let mut clean = conversion_row("3.25", "");
    clean.txid = "T-clean".into();
    clean.conversion_id = "conv-2".into();
    let unattributed = UnattributedRow {
        offer_id: "1".into(),
        ..unattributed_row(
            "global",
            r#"[["cid","{sub1}"],["payout","{payout}"],["offer","1"]]"#,
        )
    };
    let count = |outcome: &str, postbacks| OutcomeCount {
        route: "global".into(),
        offer_id: "1".into(),
        outcome: outcome.into(),
        postbacks,
    };
    let html = render_index(
        &account,
        24,
        20,
        &[
            PostbackEntry::Attributed(flagged),
            PostbackEntry::Attributed(clean),
            PostbackEntry::Unattributed(unattributed),
        ],
        &[count("attributed", 2), count("unsubstituted_macro", 1)],
        &[count("payout_macro", 1)],
    );
    assert!(
        html.contains("<td><span class=\"warn\">1 payout_macro</span></td>"),
        "{html}"
    );
    let row_with = |needle: &str| {
        html.split("<tr")
            .find(|row| row.contains(needle))
            .unwrap_or_else(|| panic!("no row with {needle}: {html}"))
            .to_string()
    };
    let row = row_with("T-macro");
    assert!(row.contains("payout_macro"), "{row}");
    assert!(row.contains("<code>{payout}</code>"), "{row}");
    assert!(row.contains(&esc(MoneyIssue::PayoutMacro.hint())), "{row}");
    let row = row_with("T-clean");
    assert!(!row.contains("payout issue"), "{row}");
    let row = row_with("class=\"unattributed\"");
    assert!(row.contains("payout if attributed: 0 USD"), "{row}");
    assert!(row.contains("payout_macro"), "{row}");
}

#[test]
fn hints_carry_the_postbacks_specifics_when_the_config_agrees() {
    let account = clickmatch_config::Config::demo(&Default::default())
        .unwrap()
        .account;
    let row = UnattributedRow {
        postback_id: "p".into(),
        received_time: 0,
        received_time_ms: 0,
        route: "global".into(),
        reason: "unsubstituted_macro".into(),
        raw_click_id: "{sub1}".into(),
        offer_id: "1".into(),
        payout: Default::default(),
        currency: "USD".into(),
        remote_ip: "192.0.2.1".into(),
        raw_params: r#"[["cid","{sub1}"]]"#.into(),
        hint: "macro_not_substituted".into(),
        is_test: false,
        latency_ms: 0,
    };
    let sentence = unattributed_hint(&account, &row);
    assert!(!sentence.is_empty());
    let other = UnattributedRow {
        hint: "click_never_recorded".into(),
        reason: "unknown_click_id".into(),
        ..row
    };
    assert_eq!(
        unattributed_hint(&account, &other),
        hint_text("click_never_recorded")
    );
}

#[test]
fn a_reprocessed_postbacks_history_reads_unattributed_then_reprocessed_then_attributed() {
    let account = money_account();
    let unattributed = UnattributedRow {
        reason: "unknown_route".into(),
        hint: "configure_route".into(),
        ..unattributed_row("sale2", r#"[["cid","x"]]"#)
    };
    let conversion = ConversionRow {
        origin: "reprocess".into(),
        ..conversion_row("", "")
    };
    let recovered = clickmatch_clickhouse::RecoveredRow {
        postback_id: "p".into(),
        origin: "reprocess".into(),
        received_time: 0,
        received_time_ms: 0,
        decided_time_ms: 60_000,
        route: "sale2".into(),
        outcome: "attributed".into(),
        reason: String::new(),
        hint: String::new(),
        click_id: conversion.click_id.clone(),
        conversion_id: "conv".into(),
        offer_id: "1".into(),
        is_test: false,
        payout: Default::default(),
        currency: "USD".into(),
    };
    let story = ClickStory {
        conversions: vec![conversion],
        unattributed: vec![unattributed],
        recovered: vec![recovered],
        ..ClickStory::default()
    };
    let html = render_story(&account, "01jc0000000000000000000000", &story);
    let history = &html[html
        .find("<table id=\"history\">")
        .expect("a history table")..];
    let steps: Vec<usize> = [
        "<td>unattributed</td>",
        "<td>reprocessed</td>",
        "<td>attributed</td>",
    ]
    .iter()
    .map(|step| {
        history
            .find(step)
            .unwrap_or_else(|| panic!("{step} in {history}"))
    })
    .collect();
    assert!(steps.windows(2).all(|w| w[0] < w[1]), "{history}");
    assert!(html.contains("origin reprocess"), "{html}");
    let plain = render_story(
        &account,
        "01jc0000000000000000000000",
        &ClickStory::default(),
    );
    assert!(!plain.contains("Postback history"));
}
