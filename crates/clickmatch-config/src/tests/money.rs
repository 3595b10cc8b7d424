//! The money keys: the account currency, exchange-rate age, payouts and costs.

use super::{env, load, load_error, MINIMAL};
use crate::*;

/// [`MINIMAL`] with `lines` added to its `[account]` table.
fn with_account(lines: &str) -> String {
    MINIMAL.replace(
        "secret = \"0123456789abcdef\"\n",
        &format!("secret = \"0123456789abcdef\"\n{lines}\n"),
    )
}

fn decimal(text: &str) -> rust_decimal::Decimal {
    text.parse().unwrap()
}

#[test]
fn the_account_currency_defaults_to_usd_and_reads_any_case() {
    use clickmatch_core::money::Currency;
    let config = load(MINIMAL);
    assert_eq!(config.account.currency, Currency::USD);
    assert_eq!(
        load(&with_account("currency = \"EUR\"")).account.currency,
        Currency::EUR
    );
    // Lower case and surrounding blanks, as operators type them, normalised.
    let config = load(&with_account("currency = \" gbp \""));
    assert_eq!(config.account.currency, Currency::GBP);
    assert_eq!(config.account.currency.as_str(), "GBP");
    // From the environment, like every [account] scalar.
    let config = Config::from_toml(
        MINIMAL,
        "x.toml",
        &env(&[("CLICKMATCH_ACCOUNT_CURRENCY", "chf")]),
    )
    .unwrap();
    assert_eq!(config.account.currency.as_str(), "CHF");
}

#[test]
fn an_invalid_account_currency_is_refused_naming_the_key() {
    // Not three letters, "no currency", a withdrawn code, a symbol, empty.
    for code in ["usd1", "XXX", "HRK", "$", "US", ""] {
        let error = load_error(&with_account(&format!("currency = \"{code}\"")));
        assert!(
            error.starts_with("x.toml: key `account.currency`"),
            "{code:?}: {error}"
        );
    }
    let error = load_error(&with_account("currency = \"usd1\""));
    assert!(
        error.contains("`usd1` is not an ISO 4217 currency code"),
        "{error}"
    );
}

#[test]
fn max_rate_age_days_defaults_to_7_and_stops_at_90() {
    assert_eq!(load(MINIMAL).account.max_rate_age_days, 7);
    assert_eq!(
        load(&with_account("max_rate_age_days = 0"))
            .account
            .max_rate_age_days,
        0
    );
    assert_eq!(
        load(&with_account("max_rate_age_days = 90"))
            .account
            .max_rate_age_days,
        90
    );
    for days in ["91", "365", "65535"] {
        let error = load_error(&with_account(&format!("max_rate_age_days = {days}")));
        assert!(
            error.starts_with("x.toml: key `account.max_rate_age_days`"),
            "{error}"
        );
        assert!(error.contains("at most 90"), "{error}");
    }
    let config = Config::from_toml(
        MINIMAL,
        "x.toml",
        &env(&[("CLICKMATCH_ACCOUNT_MAX_RATE_AGE_DAYS", "14")]),
    )
    .unwrap();
    assert_eq!(config.account.max_rate_age_days, 14);
}

#[test]
fn routes_default_to_the_account_currency() {
    use clickmatch_core::money::Currency;
    let routes = "\n[routes.r]\noffer = \"1\"\n[routes.own]\ncurrency = \"gbp\"\n";
    // No account currency: USD everywhere a route names none.
    let config = load(&format!("{MINIMAL}{routes}"));
    assert_eq!(config.account.global_route.currency, Currency::USD);
    assert_eq!(config.account.routes["r"].currency, Currency::USD);
    assert_eq!(config.account.routes["own"].currency, Currency::GBP);
    // An account currency: every route without its own, the global one included.
    let config = load(&format!("{}{routes}", with_account("currency = \"eur\"")));
    assert_eq!(config.account.global_route.currency, Currency::EUR);
    assert_eq!(config.account.routes["r"].currency, Currency::EUR);
    assert_eq!(config.account.routes["own"].currency, Currency::GBP);
    // Also when the global route is configured without a currency.
    let config = load(&format!(
        "{}\n[routes.global]\ndefault_event = \"lead\"\n",
        with_account("currency = \"EUR\"")
    ));
    assert_eq!(config.account.global_route.currency, Currency::EUR);
    // A route's currency is checked like the account's.
    let error = load_error(&format!("{MINIMAL}\n[routes.r]\ncurrency = \"XXX\"\n"));
    assert!(
        error.starts_with("x.toml: key `routes.r.currency`"),
        "{error}"
    );
}

#[test]
fn offers_default_payout_is_read_and_checked() {
    let offer = |line: &str| MINIMAL.replace("id = \"1\"\n", &format!("id = \"1\"\n{line}\n"));
    assert_eq!(load(MINIMAL).account.offers["1"].default_payout, None);
    let config = load(&offer("default_payout = \"2.50\""));
    assert_eq!(
        config.account.offers["1"].default_payout,
        Some(decimal("2.50"))
    );
    assert_eq!(
        load(&offer("default_payout = \"0\"")).account.offers["1"].default_payout,
        Some(decimal("0"))
    );
    assert_eq!(
        load(&offer("default_payout = \" 0.000001 \""))
            .account
            .offers["1"]
            .default_payout,
        Some(decimal("0.000001"))
    );
    for bad in [
        "-1",
        "-0.01",
        "abc",
        "",
        "2,50",
        "$2.50",
        "{payout}",
        "0.0000001",
        "1000000000000",
    ] {
        let error = load_error(&offer(&format!("default_payout = \"{bad}\"")));
        assert!(
            error.starts_with("x.toml: key `offers[0].default_payout`"),
            "{bad:?}: {error}"
        );
    }
    // The second offer's key names its index.
    let two = format!(
        "{}\n[[offers]]\nid = \"2\"\ndefault_payout = \"nope\"\n",
        offer("default_payout = \"1\"")
    );
    assert!(load_error(&two).starts_with("x.toml: key `offers[1].default_payout`"));
}

#[test]
fn offers_are_untracked_unless_asked_and_tracked_ones_are_capped() {
    assert!(!load(MINIMAL).account.offers["1"].tracked);
    let tracked = MINIMAL.replace("id = \"1\"\n", "id = \"1\"\ntracked = true\n");
    assert!(load(&tracked).account.offers["1"].tracked);

    let many: String = (0..=MAX_TRACKED_OFFERS)
        .map(|i| format!("[[offers]]\nid = \"t{i}\"\ntracked = true\n"))
        .collect();
    let error = load_error(&format!("{MINIMAL}{many}"));
    assert!(
        error.contains("tracked") && error.contains("at most 200 offers"),
        "{error}"
    );
}

/// [`MINIMAL`] with `lines` added to its campaign.
fn with_campaign(lines: &str) -> String {
    format!("{MINIMAL}{lines}\n")
}

#[test]
fn campaigns_cost_per_click() {
    use clickmatch_core::model::ClickCost;
    use clickmatch_core::money::Currency;
    let cost = |text: &str| load(text).account.campaigns["c"].cost.clone();
    assert_eq!(cost(MINIMAL), None);
    assert_eq!(
        cost(&with_campaign("cost_model = \"cpc\"\ncost = \"0.05\"")),
        Some(ClickCost {
            fixed: Some(decimal("0.05")),
            param: None,
            currency: Currency::USD,
        })
    );
    assert_eq!(
        cost(&with_campaign(
            "cost_model = \"cpc\"\ncost_param = \"cost\""
        )),
        Some(ClickCost {
            fixed: None,
            param: Some("cost".into()),
            currency: Currency::USD,
        })
    );
    assert_eq!(
        cost(&with_campaign(
            "cost_model = \"cpc\"\ncost = \"0.10\"\ncost_param = \"cpc\"\ncost_currency = \"gbp\""
        )),
        Some(ClickCost {
            fixed: Some(decimal("0.10")),
            param: Some("cpc".into()),
            currency: Currency::GBP,
        })
    );
    // cost_currency defaults to the account currency, not USD.
    let text = format!(
        "{}cost_model = \"cpc\"\ncost = \"0.02\"\n",
        with_account("currency = \"EUR\"")
    );
    assert_eq!(cost(&text).unwrap().currency, Currency::EUR);
    // A free click is a cost model too.
    assert_eq!(
        cost(&with_campaign("cost_model = \"cpc\"\ncost = \"0\""))
            .unwrap()
            .fixed,
        Some(decimal("0"))
    );
}

#[test]
fn campaigns_cost_keys_are_refused_naming_the_key() {
    for (lines, key, says) in [
        (
            "cost = \"0.05\"",
            "campaigns[0].cost",
            "needs cost_model = \"cpc\"",
        ),
        (
            "cost_param = \"cost\"",
            "campaigns[0].cost_param",
            "needs cost_model",
        ),
        (
            "cost_currency = \"EUR\"",
            "campaigns[0].cost_currency",
            "needs cost_model",
        ),
        (
            "cost_model = \"cpm\"\ncost = \"1.00\"",
            "campaigns[0].cost_model",
            "\"cpm\" is not \"cpc\"",
        ),
        (
            "cost_model = \"CPC\"\ncost = \"1.00\"",
            "campaigns[0].cost_model",
            "is not \"cpc\"",
        ),
        (
            "cost_model = \"cpc\"",
            "campaigns[0].cost_model",
            "needs `cost`",
        ),
        (
            "cost_model = \"cpc\"\ncost = \"-0.05\"",
            "campaigns[0].cost",
            "at least 0",
        ),
        (
            "cost_model = \"cpc\"\ncost = \"0,05\"",
            "campaigns[0].cost",
            "not a decimal",
        ),
        (
            "cost_model = \"cpc\"\ncost_param = \" \"",
            "campaigns[0].cost_param",
            "empty",
        ),
        (
            "cost_model = \"cpc\"\ncost = \"0.05\"\ncost_currency = \"usd1\"",
            "campaigns[0].cost_currency",
            "ISO 4217",
        ),
    ] {
        let error = load_error(&with_campaign(lines));
        assert!(
            error.starts_with(&format!("x.toml: key `{key}`")),
            "{lines:?}: {error}"
        );
        assert!(error.contains(says), "{lines:?}: {error:?} lacks {says:?}");
    }
}
