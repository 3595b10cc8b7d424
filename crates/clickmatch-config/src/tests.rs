use super::*;
use proptest::prelude::*;

pub(crate) fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub(crate) const MINIMAL: &str = r#"
[account]
secret = "0123456789abcdef"

[[offers]]
id = "1"

[[campaigns]]
id = "c"
offer = "1"
url = "https://net.example/?s={click_id}"
"#;

#[test]
fn demo_config_is_valid() {
    let config = Config::demo(&BTreeMap::new()).unwrap();
    assert!(config.account.campaigns.contains_key("demo"));
    assert_eq!(config.account.campaigns["demo"].offer_id, "1");
    let lead = &config.account.routes["lead"];
    assert_eq!(lead.offer_id.as_deref(), Some("2"));
    assert_eq!(lead.default_event, "lead");
    assert!(config
        .account
        .global_route
        .params
        .click_id
        .contains(&"cid".to_string()));
    assert_eq!(config.account.global_route.name, "global");
}

#[test]
fn env_overrides_scalars() {
    let config = Config::from_toml(
        MINIMAL,
        "x.toml",
        &env(&[
            ("CLICKMATCH_CLICKHOUSE_URL", "http://10.0.0.1:8123"),
            ("CLICKMATCH_JOINER_BATCH_MAX_ROWS", "7"),
            ("CLICKMATCH_ACCOUNT_SECRET", "1234567890123456"),
            ("UNRELATED", "x"),
        ]),
    )
    .unwrap();
    assert_eq!(config.clickhouse.url, "http://10.0.0.1:8123");
    assert_eq!(config.joiner.batch_max_rows, 7);
    // A numeric-looking secret stays a string.
    assert!(config.account.signer.verify(
        clickmatch_core::ClickIdSigner::new(b"1234567890123456".to_vec(), vec![]).mint(1, 1)
    ));
}

#[test]
fn a_batch_of_enough_rows_goes_early() {
    let config = Config::from_toml(MINIMAL, "x.toml", &BTreeMap::new()).unwrap();
    let joiner = &config.joiner;
    let ms = |rows| joiner.batch_max_age(rows).as_millis();
    assert_eq!(
        (ms(0), ms(999), ms(1_000), ms(60_000)),
        (500, 500, 200, 200)
    );
    // An early age above the cap is the cap.
    let config = Config::from_toml(
        MINIMAL,
        "x.toml",
        &env(&[
            ("CLICKMATCH_JOINER_BATCH_MAX_MS", "100"),
            ("CLICKMATCH_JOINER_BATCH_EARLY_ROWS", "10"),
        ]),
    )
    .unwrap();
    assert_eq!(config.joiner.batch_max_age(10).as_millis(), 100);
}

#[test]
fn errors_name_file_and_key() {
    let cases: &[(&str, &str)] = &[
        ("[account]\nsecret = \"short\"", "x.toml: key `account.secret`"),
        (
            "[account]\nsecret = \"0123456789abcdef\"\n[[offers]]\nid = \"1\"\nwindow_days = 91",
            "key `offers[0].window_days`",
        ),
        (
            "[account]\nsecret = \"0123456789abcdef\"\n[[campaigns]]\nid = \"c\"\noffer = \"9\"\nurl = \"https://x/{click_id}\"",
            "key `campaigns[0].offer`",
        ),
        (
            "[account]\nsecret = \"0123456789abcdef\"\n[[offers]]\nid = \"1\"\n[[campaigns]]\nid = \"c\"\noffer = \"1\"\nurl = \"https://x/\"",
            "key `campaigns[0].url`",
        ),
        (
            "[account]\nsecret = \"0123456789abcdef\"\n[routes.r]\nallow_ips = [\"nope\"]",
            "key `routes.r.allow_ips[0]`",
        ),
        ("[account]\nsecret = \"0123456789abcdef\"\nbogus = 1", "unknown field `bogus`"),
        // The database is pasted into SQL unquoted: the sink's rule, checked at load.
        (
            "[account]\nsecret = \"0123456789abcdef\"\n[clickhouse]\ndatabase = \"click-match\"",
            "key `clickhouse.database`: \"click-match\" is not an identifier",
        ),
        ("[account\n", "x.toml"),
    ];
    for (text, expected) in cases {
        let error = Config::from_toml(text, "x.toml", &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(error.contains(expected), "{error:?} lacks {expected:?}");
        assert!(error.starts_with("x.toml"), "{error:?}");
    }
}

#[test]
fn secrets_are_not_debug_printed() {
    let config = Config::from_toml(
        &format!("{MINIMAL}\n[clickhouse]\npassword = \"hunter2hunter2\"\n[routes.r]\ntoken = \"tok-tok-tok\"\n"),
        "x.toml",
        &BTreeMap::new(),
    )
    .unwrap();
    let printed = format!("{config:?}");
    assert!(!printed.contains("hunter2"));
    assert!(!printed.contains("tok-tok-tok"));
    assert!(!printed.contains("0123456789abcdef"));
}

#[test]
fn a_route_with_network_affise_reads_affise_names_and_status_codes() {
    let config = Config::from_toml(
        &format!("{MINIMAL}\n[routes.aff]\noffer = \"1\"\nnetwork = \"affise\"\n"),
        "x.toml",
        &BTreeMap::new(),
    )
    .unwrap();
    let route = &config.account.routes["aff"];
    let preset = clickmatch_core::presets::preset("affise").unwrap();
    assert_eq!(route.params, preset.param_names());
    assert_eq!(route.params.click_id[0], "sub1");
    assert_eq!(route.params.payout[0], "sum");
    assert_eq!(route.params.txid[0], "transactionid");
    assert_eq!(route.params.event[0], "goal");
    assert_eq!(route.params.status, vec!["status".to_string()]);
    let map: Vec<(&str, &str)> = route
        .status_map
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        map,
        vec![
            ("1", "approved"),
            ("2", "pending"),
            ("3", "declined"),
            ("5", "hold")
        ]
    );

    // An Affise postback through this route: status 5 is hold, the payout comes from `sum`.
    let params: Vec<(String, String)> = [
        ("sub1", "x"),
        ("sum", "2.50"),
        ("status", "5"),
        ("goal", "deposit"),
        ("transactionid", "T9"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let extracted = clickmatch_core::classify::extract(route, &params);
    assert_eq!(extracted.raw_click_id.as_deref(), Some("x"));
    assert_eq!(extracted.payout_raw.as_deref(), Some("2.50"));
    assert_eq!(extracted.status, "hold");
    assert_eq!(extracted.event, "deposit");
    assert_eq!(extracted.txid.as_deref(), Some("T9"));
}

#[test]
fn explicit_route_keys_win_over_the_network_preset() {
    let config = Config::from_toml(
        &format!(
            "{MINIMAL}\n[routes.aff]\nnetwork = \"Affise\"\nclick_id = [\"clickid\"]\n\
             [routes.aff.status_map]\n\"1\" = \"confirmed\"\n"
        ),
        "x.toml",
        &BTreeMap::new(),
    )
    .unwrap();
    let route = &config.account.routes["aff"];
    assert_eq!(route.params.click_id, vec!["clickid".to_string()]);
    assert_eq!(route.params.payout[0], "sum");
    assert_eq!(route.status_map.len(), 1);
    assert_eq!(route.status_map["1"], "confirmed");

    // The global route takes a preset too.
    let config = Config::from_toml(
        &format!("{MINIMAL}\n[routes.global]\nnetwork = \"hasoffers\"\n"),
        "x.toml",
        &BTreeMap::new(),
    )
    .unwrap();
    assert_eq!(config.account.global_route.params.click_id[0], "aff_sub");
    assert!(config.account.global_route.status_map.is_empty());
}

#[test]
fn unknown_network_presets_are_refused() {
    for (text, key) in [
        (
            format!("{MINIMAL}\n[routes.r]\nnetwork = \"nonet\"\n"),
            "key `routes.r.network`",
        ),
        (
            MINIMAL.replace("id = \"1\"\n", "id = \"1\"\nnetwork = \"nonet\"\n"),
            "key `offers[0].network`",
        ),
    ] {
        let error = Config::from_toml(&text, "x.toml", &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(error.contains(key), "{error}");
        assert!(
            error.contains("\"nonet\" is not a known network preset"),
            "{error}"
        );
        assert!(error.contains("affise"), "{error}");
    }
    // Offer networks are stored under the preset's canonical name.
    let config = Config::from_toml(
        &MINIMAL.replace("id = \"1\"\n", "id = \"1\"\nnetwork = \"HasOffers\"\n"),
        "x.toml",
        &BTreeMap::new(),
    )
    .unwrap();
    assert_eq!(config.account.offers["1"].network.as_deref(), Some("tune"));
}

proptest! {
    // The parser never panics, whatever the text.
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let _ = Config::from_toml(&text, "fuzz.toml", &BTreeMap::new());
    }

    #[test]
    fn arbitrary_env_never_panics(key in "CLICKMATCH_[A-Z_]{0,20}", value in "\\PC{0,20}") {
        let _ = Config::from_toml(MINIMAL, "fuzz.toml", &env(&[(key.as_str(), value.as_str())]));
    }
}

#[test]
fn campaign_postback_urls_are_validated_at_load() {
    let with_postback = |url: &str| {
        format!(
            "[account]\nsecret = \"0123456789abcdef\"\n[[offers]]\nid = \"1\"\n[[campaigns]]\nid = \"c\"\noffer = \"1\"\nurl = \"https://net.example/?s={{click_id}}\"\npostback_url = \"{url}\"\n"
        )
    };
    let config = Config::from_toml(
        &with_postback("https://ts.example/cb?clickid={sub1}&payout={payout}&tx={txid}"),
        "x.toml",
        &BTreeMap::new(),
    )
    .unwrap();
    assert_eq!(
        config.account.campaigns["c"].postback_url.as_deref(),
        Some("https://ts.example/cb?clickid={sub1}&payout={payout}&tx={txid}")
    );
    assert_eq!(
        Config::from_toml(MINIMAL, "x.toml", &BTreeMap::new())
            .unwrap()
            .account
            .campaigns["c"]
            .postback_url,
        None
    );
    for (url, expected) in [
        ("https://ts.example/cb?c={sub1}&x={aff_sub}", "{aff_sub}"),
        (
            "https://ts.example/cb?p={payout}",
            "none of {sub1}..{sub10}",
        ),
        ("ts.example/cb?c={sub1}", "http://"),
        ("https://ts.example/cb?c={sub1", "unclosed"),
    ] {
        let error = Config::from_toml(&with_postback(url), "x.toml", &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("x.toml: key `campaigns[0].postback_url`"),
            "{error}"
        );
        assert!(error.contains(expected), "{error:?} lacks {expected:?}");
    }
}

#[test]
fn outbound_settings_have_defaults_env_overrides_and_limits() {
    let config = Config::from_toml(MINIMAL, "x.toml", &BTreeMap::new()).unwrap();
    assert_eq!(config.outbound.group_id, "clickmatch-outbound");
    assert_eq!(config.outbound.max_attempts, 6);
    assert!(!config.outbound.fire_test_conversions);
    let config = Config::from_toml(
        MINIMAL,
        "x.toml",
        &env(&[
            ("CLICKMATCH_OUTBOUND_MAX_ATTEMPTS", "3"),
            ("CLICKMATCH_OUTBOUND_RETRY_INITIAL_MS", "100"),
            ("CLICKMATCH_OUTBOUND_RETRY_MAX_MS", "150"),
            ("CLICKMATCH_OUTBOUND_REQUEST_TIMEOUT_MS", "1000"),
        ]),
    )
    .unwrap();
    assert_eq!(config.outbound.max_attempts, 3);
    // 3 requests timing out, backoffs 100 then 150 (capped).
    assert_eq!(config.outbound.worst_case_ms(), 3 * 1000 + 100 + 150);
    for (toml, key) in [
        ("[outbound]\nmax_attempts = 0", "outbound.max_attempts"),
        (
            "[outbound]\ngroup_id = \"clickmatch-joiner\"",
            "outbound.group_id",
        ),
        ("[outbound]\nretry_initial_ms = 0", "outbound.retry_max_ms"),
        ("[outbound]\nconcurrency = 0", "outbound.concurrency"),
        (
            "[kafka]\noutbound_topic = \"clickmatch.clicks\"",
            "kafka.outbound_topic",
        ),
    ] {
        let error = Config::from_toml(&format!("{MINIMAL}\n{toml}\n"), "x.toml", &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(error.contains(&format!("key `{key}`")), "{error}");
    }
}

#[test]
fn clickhouse_cluster_is_optional_and_checked() {
    let single = Config::from_toml(MINIMAL, "x.toml", &BTreeMap::new()).unwrap();
    assert_eq!(single.clickhouse.cluster, None);
    let config = Config::from_toml(
        &format!("{MINIMAL}\n[clickhouse]\ncluster = \"prod-eu.1\"\n"),
        "x.toml",
        &BTreeMap::new(),
    )
    .unwrap();
    assert_eq!(config.clickhouse.cluster.as_deref(), Some("prod-eu.1"));
    let from_env = Config::from_toml(
        MINIMAL,
        "x.toml",
        &env(&[("CLICKMATCH_CLICKHOUSE_CLUSTER", "ch_main")]),
    )
    .unwrap();
    assert_eq!(from_env.clickhouse.cluster.as_deref(), Some("ch_main"));
    // Empty (e.g. an environment override that clears it): one server.
    let cleared = Config::from_toml(
        &format!("{MINIMAL}\n[clickhouse]\ncluster = \"prod\"\n"),
        "x.toml",
        &env(&[("CLICKMATCH_CLICKHOUSE_CLUSTER", "")]),
    )
    .unwrap();
    assert_eq!(cleared.clickhouse.cluster, None);
    let error = Config::from_toml(
        &format!("{MINIMAL}\n[clickhouse]\ncluster = \"a'b\"\n"),
        "x.toml",
        &BTreeMap::new(),
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("key `clickhouse.cluster`"), "{error}");
}

/// The error of loading `text`, as printed.
pub(crate) fn load_error(text: &str) -> String {
    Config::from_toml(text, "x.toml", &BTreeMap::new())
        .unwrap_err()
        .to_string()
}

pub(crate) fn load(text: &str) -> Config {
    Config::from_toml(text, "x.toml", &BTreeMap::new()).unwrap()
}

/// The account currency, exchange-rate age, payouts and costs.
mod money;
/// The admin and report tokens.
mod tokens;

#[test]
fn enrichment_defaults_env_overrides_and_limits() {
    let config = load(MINIMAL);
    assert_eq!(config.enrichment, EnrichmentConfig::default());
    assert_eq!(config.enrichment.geoip_db, None);
    assert!(config.enrichment.user_agent);
    let config = Config::from_toml(
        &format!("{MINIMAL}\n[enrichment]\ngeoip_db = \"/srv/City.mmdb\"\nasn_db = \" \"\n"),
        "x.toml",
        &env(&[
            ("CLICKMATCH_ENRICHMENT_ASN_DB", "/srv/ASN.mmdb"),
            ("CLICKMATCH_ENRICHMENT_USER_AGENT", "false"),
            ("CLICKMATCH_ENRICHMENT_RELOAD_INTERVAL_SECONDS", "5"),
        ]),
    )
    .unwrap();
    let enrichment = config.enrichment;
    assert_eq!(
        enrichment.geoip_db.as_deref(),
        Some(std::path::Path::new("/srv/City.mmdb"))
    );
    assert_eq!(
        enrichment.asn_db.as_deref(),
        Some(std::path::Path::new("/srv/ASN.mmdb"))
    );
    assert!(!enrichment.user_agent);
    assert_eq!(enrichment.reload_interval_ms, 5_000);
    // An empty override switches a database off.
    let cleared = Config::from_toml(
        &format!("{MINIMAL}\n[enrichment]\ngeoip_db = \"/srv/City.mmdb\"\n"),
        "x.toml",
        &env(&[("CLICKMATCH_ENRICHMENT_GEOIP_DB", "")]),
    )
    .unwrap();
    assert_eq!(cleared.enrichment.geoip_db, None);
    for (toml, key) in [
        (
            "[enrichment]\nreload_interval_seconds = 0",
            "enrichment.reload_interval_seconds",
        ),
        (
            "[enrichment]\nreload_interval_seconds = 86401",
            "enrichment.reload_interval_seconds",
        ),
    ] {
        let error = load_error(&format!("{MINIMAL}\n{toml}\n"));
        assert!(error.contains(&format!("key `{key}`")), "{error}");
    }
    let error = load_error(&format!("{MINIMAL}\n[enrichment]\ngeo_db = \"x\"\n"));
    assert!(error.contains("geo_db"), "{error}");
}

#[test]
fn conversions_carry_sub1_unless_configured() {
    let bits = |text: &str| load(text).account.conversion_subs.bits();
    assert_eq!(bits(MINIMAL), 0b1);
    let with = |list: &str| format!("{MINIMAL}\n[joiner]\nconversion_subs = {list}\n");
    assert_eq!(bits(&with("[]")), 0);
    assert_eq!(bits(&with(r#"["sub10", "sub1"]"#)), 0b10_0000_0001);
    let error = load_error(&with(r#"["sub1", "zone"]"#));
    assert!(
        error.starts_with("x.toml: key `joiner.conversion_subs`") && error.contains("\"zone\""),
        "{error}"
    );
}
