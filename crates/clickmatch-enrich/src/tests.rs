use std::path::Path;

use clickmatch_config::EnrichmentConfig;
use prometheus::Registry;

use super::*;
use crate::demo::{self, DEMO_NETWORKS};

const CHROME_ANDROID: &str = "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36";

fn config(dir: &Path) -> EnrichmentConfig {
    let files = demo::write_databases(dir).unwrap();
    EnrichmentConfig {
        geoip_db: Some(files.geoip_db),
        asn_db: Some(files.asn_db),
        ..EnrichmentConfig::default()
    }
}

#[test]
fn a_click_gets_geo_asn_and_device() {
    let dir = tempfile::tempdir().unwrap();
    let enricher = Enricher::open(&config(dir.path()), &Registry::new()).unwrap();
    let india = DEMO_NETWORKS.iter().find(|n| n.country == "IN").unwrap();
    let found = enricher.click(Some(india.address(3)), CHROME_ANDROID);
    assert_eq!(
        found,
        Enriched {
            country: "IN".into(),
            enrichment: Enrichment {
                region: "Maharashtra".into(),
                city: "Mumbai".into(),
                asn: 64_499,
                isp: "Demo Mobile India".into(),
                device_type: "mobile".into(),
                os: "Android".into(),
                browser: "Chrome".into(),
                is_bot: false,
            },
        }
    );
    // Two countries in one /24 (two /25s): each address gets its own, in any order.
    for (address, country) in [
        ("192.0.2.1", "DE"),
        ("192.0.2.200", "US"),
        ("192.0.2.2", "DE"),
        ("192.0.2.201", "US"),
    ] {
        let found = enricher.click(Some(address.parse().unwrap()), "");
        assert_eq!(found.country, country, "{address}");
    }
    // One network for the block: every address alike, from the cache after the first.
    for address in ["203.0.113.1", "203.0.113.250", "203.0.113.1"] {
        let found = enricher.click(Some(address.parse().unwrap()), "");
        assert_eq!(found.enrichment.asn, 64_500, "{address}");
    }
    assert_eq!(enricher.metrics().block_cached.get(), 2);
    assert_eq!(enricher.metrics().block_walked.get(), 1 + 4 + 1);
    // No address (e.g. an unreadable one sent to `POST /clicks`), no user agent.
    let nothing = enricher.click(None, "");
    assert_eq!(nothing, Enriched::default());
}

#[test]
fn with_nothing_configured_every_field_stays_empty() {
    for enricher in [
        Enricher::off(),
        Enricher::open(
            &EnrichmentConfig {
                user_agent: false,
                ..EnrichmentConfig::default()
            },
            &Registry::new(),
        )
        .unwrap(),
    ] {
        assert!(!enricher.is_on());
        assert_eq!(
            enricher.click(Some(DEMO_NETWORKS[0].address(1)), CHROME_ANDROID),
            Enriched::default()
        );
        assert!(enricher.reload_changed().is_empty());
    }
    // User agents only (the default): device fields, no geo.
    let agents = Enricher::open(&EnrichmentConfig::default(), &Registry::new()).unwrap();
    let found = agents.click(Some(DEMO_NETWORKS[0].address(1)), CHROME_ANDROID);
    assert_eq!(found.country, "");
    assert_eq!(found.enrichment.device_type.as_ref(), "mobile");
}

#[test]
fn a_missing_or_invalid_file_is_an_error_naming_the_key_and_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("GeoLite2-City.mmdb");
    let error = Enricher::open(
        &EnrichmentConfig {
            geoip_db: Some(missing.clone()),
            ..EnrichmentConfig::default()
        },
        &Registry::new(),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(error.contains("key `enrichment.geoip_db`"), "{error}");
    assert!(error.contains(&missing.display().to_string()), "{error}");

    let csv = dir.path().join("asn.csv");
    std::fs::write(&csv, "network,asn\n192.0.2.0/24,64496\n").unwrap();
    let error = Enricher::open(
        &EnrichmentConfig {
            asn_db: Some(csv.clone()),
            ..EnrichmentConfig::default()
        },
        &Registry::new(),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(error.contains("key `enrichment.asn_db`"), "{error}");
    assert!(error.contains("is not a valid MaxMind DB"), "{error}");
    assert!(error.contains(&csv.display().to_string()), "{error}");
}

/// A City database saying `country` for every demo network.
fn city_of(country: &str) -> Vec<u8> {
    let mut writer = demo::writer("GeoLite2-Country");
    for network in DEMO_NETWORKS {
        writer
            .insert_value(
                network.net(),
                mmdb_writer::Value::map([(
                    "country",
                    mmdb_writer::Value::map([("iso_code", mmdb_writer::Value::from(country))]),
                )]),
            )
            .unwrap();
    }
    writer.to_bytes().unwrap()
}

/// Replaces `path` as an operator should: a new file renamed over the old one.
fn replace(path: &Path, bytes: &[u8]) {
    let next = path.with_extension("mmdb.new");
    std::fs::write(&next, bytes).unwrap();
    std::fs::rename(&next, path).unwrap();
}

#[test]
fn a_replaced_file_is_used_without_a_restart_and_a_bad_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let path = config.geoip_db.clone().unwrap();
    let registry = Registry::new();
    let enricher = Enricher::open(&config, &registry).unwrap();
    let ip = Some(DEMO_NETWORKS[0].address(1));
    assert_eq!(enricher.click(ip, "").country, "DE");
    // An address whose whole /24 is one network: its facts are kept by block.
    let block = Some("203.0.113.9".parse().unwrap());
    assert_eq!(enricher.click(block, "").country, "BR");
    assert!(matches!(
        enricher.reload_changed()[..],
        [Reload::Unchanged, Reload::Unchanged]
    ));

    replace(&path, &city_of("AT"));
    let done = enricher.reload_changed();
    assert!(
        matches!(done[..], [Reload::Loaded, Reload::Unchanged]),
        "{done:?}"
    );
    assert_eq!(enricher.click(ip, "").country, "AT");
    assert_eq!(
        enricher.click(block, "").country,
        "AT",
        "kept blocks are dropped"
    );
    assert_eq!(enricher.metrics().loads("geoip", "loaded"), 2);

    // Half a file (a copy under way): refused, the one in use stays, and it is not read again
    // until it changes.
    let whole = city_of("CH");
    replace(&path, &whole[..whole.len() / 2]);
    let done = enricher.reload_changed();
    match &done[..] {
        [Reload::Refused(error), Reload::Unchanged] => {
            let error = error.to_string();
            assert!(error.contains("enrichment.geoip_db"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(enricher.click(ip, "").country, "AT");
    assert_eq!(enricher.metrics().loads("geoip", "refused"), 1);
    assert!(enricher.metrics().refused_now("geoip"));
    assert!(!enricher.metrics().refused_now("asn"));
    assert!(matches!(
        enricher.reload_changed()[..],
        [Reload::Unchanged, Reload::Unchanged]
    ));
    // The file removed: refused too, the database in memory still answers.
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(
        enricher.reload_changed()[..],
        [Reload::Refused(_), Reload::Unchanged]
    ));
    assert_eq!(enricher.click(ip, "").country, "AT");

    // The copy completed: taken.
    replace(&path, &whole);
    enricher.reload_changed();
    assert_eq!(enricher.click(ip, "").country, "CH");
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&registry.gather())
        .unwrap();
    // What the alert for a refused replacement reads: set while refused, cleared by a load.
    for line in [
        "clickmatch_enrich_database_loads_total{database=\"geoip\",result=\"refused\"} 2",
        "clickmatch_enrich_database_file_refused{database=\"geoip\"} 0",
    ] {
        assert!(text.contains(line), "no `{line}` in:\n{text}");
    }
}

#[tokio::test]
async fn the_watch_task_picks_up_a_replacement() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let path = config.geoip_db.clone().unwrap();
    let enricher = Arc::new(Enricher::open(&config, &Registry::new()).unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(enricher.clone().watch(Duration::from_millis(20), async {
        let _ = stopped.await;
    }));
    replace(&path, &city_of("NL"));
    let ip = Some(DEMO_NETWORKS[0].address(1));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while enricher.click(ip, "").country != "NL" {
        assert!(tokio::time::Instant::now() < deadline, "not reloaded");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.send(()).unwrap();
    task.await.unwrap();
}

#[tokio::test]
async fn the_watch_task_without_databases_runs_until_shutdown() {
    // A service task that ended would stop the whole process (`Pipeline::run_until`).
    let enricher = Arc::new(Enricher::off());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(enricher.watch(Duration::from_millis(5), async {
        let _ = stopped.await;
    }));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!task.is_finished(), "ended before the shutdown");
    stop.send(()).unwrap();
    task.await.unwrap();
}
