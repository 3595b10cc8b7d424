//! Against a real ClickHouse: `$CLICKMATCH_TEST_CLICKHOUSE_URL`, or a local server started here.

mod common;

use std::str::FromStr;

use clickmatch_clickhouse::{
    check_schema, migrate, ClickHouseError, ClickHouseSettings, ClickHouseSink, ClickRow,
    ConversionRow, UnattributedRow, WriteStats, MIGRATIONS,
};
use clickmatch_core::records::{ClickRecord, Conversion, Outcome, Unattributed, RECORD_VERSION};
use clickmatch_core::Reason;
use clickmatch_testbed::local_server::free_port;
use common::TestDb;
use rust_decimal::Decimal;

const T0_MS: u64 = 1_700_000_000_123; // 2023-11-14 22:13:20.123 UTC

fn click(id: &str, time_ms: u64) -> ClickRecord {
    ClickRecord {
        v: RECORD_VERSION,
        click_id: id.into(),
        time_ms,
        campaign_id: "camp-1".into(),
        offer_id: "7".into(),
        source: "push".into(),
        subs: vec!["s1".into(), String::new(), "s3 'quoted' \\ \n".into()],
        ip: "203.0.113.9".into(),
        user_agent: "Mozilla/5.0 (X11)".into(),
        country: "DE".into(),
        enrichment: Default::default(),
        is_test: true,
        foreign: false,
        cost: None,
    }
}

fn conversion(id: &str, version: u64, status: &str, conversion_time_ms: u64) -> Conversion {
    Conversion {
        conversion_id: id.into(),
        click_id: "c-1".into(),
        click_time_ms: T0_MS,
        conversion_time_ms,
        postback_id: format!("pb-{version}"),
        campaign_id: "camp-1".into(),
        status: status.into(),
        payout: Decimal::from_str("12.345678").unwrap(),
        txid: "tx-9".into(),
        offer_mismatch: true,
        click_id_repaired: true,
        repair: "alias_s2".into(),
        version,
        ..Conversion::example()
    }
}

fn unattributed(id: &str) -> Unattributed {
    Unattributed {
        origin: Default::default(),
        postback_id: id.into(),
        received_time_ms: T0_MS + 5_000,
        route: "cake".into(),
        reason: Reason::UnsubstitutedMacro,
        raw_click_id: "#s2#".into(),
        offer_id: "9".into(),
        payout: Decimal::from_str("-0.5").unwrap(),
        currency: "EUR".into(),
        remote_ip: "198.51.100.1".into(),
        raw_params: r##"[["cid","#s2#"],["payout","-0.5"]]"##.into(),
        hint: "fix_network_macro".into(),
        is_test: true,
    }
}

#[tokio::test]
async fn migrate_twice_is_idempotent() {
    let db = TestDb::new().await;
    let first = migrate(&db.settings).await.unwrap();
    let all: Vec<u32> = MIGRATIONS.iter().map(|m| m.version).collect();
    assert_eq!(first.applied, all);
    assert!(first.already_applied.is_empty());

    let second = migrate(&db.settings).await.unwrap();
    assert!(second.applied.is_empty(), "{second:?}");
    assert_eq!(second.already_applied, all);

    // Raw rows, without FINAL: each version recorded exactly once.
    let recorded: Vec<(u32, u64)> = db
        .client()
        .query("SELECT version, count() FROM schema_migrations GROUP BY version ORDER BY version")
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(
        recorded,
        all.iter().map(|v| (*v, 1)).collect::<Vec<_>>(),
        "schema_migrations"
    );

    let mut tables: Vec<String> = db.client().query("SHOW TABLES").fetch_all().await.unwrap();
    tables.sort();
    assert_eq!(
        tables,
        [
            "account",
            "account_settings",
            "clicks",
            "clicks_hourly",
            "clicks_hourly_mv",
            "conversions",
            "conversions_figures_hourly",
            "conversions_figures_hourly_mv",
            "conversions_hourly",
            "conversions_hourly_latest",
            "conversions_hourly_mv",
            "conversions_hourly_versions",
            "conversions_valued",
            "costs",
            "costs_current",
            "currency_factors",
            "exchange_rates",
            "exchange_rates_daily",
            "figures_hourly",
            "outbound_deliveries",
            "recovered",
            "schema_migrations",
            "unattributed",
            "unattributed_current",
            "unattributed_hourly",
            "unattributed_hourly_mv",
            "unattributed_hourly_totals"
        ]
    );
    check_schema(&db.settings).await.unwrap();
    db.drop_database().await;
}

#[tokio::test]
async fn rows_round_trip_with_exact_values() {
    let db = TestDb::migrated().await;
    let sink = ClickHouseSink::new(&db.settings).unwrap();
    let clicks = vec![click("c-1", T0_MS), click("c-2", T0_MS + 1)];
    let conv = conversion("conv-1", 1, "approved", T0_MS + 60_000);
    let unat = unattributed("pb-u");
    let outcomes = vec![
        Outcome::Attributed(conv.clone()),
        Outcome::Unattributed(unat.clone()),
    ];
    let now = T0_MS + 60_250;
    let stats = sink.write_at(&clicks, &outcomes, now).await.unwrap();
    assert_eq!(
        stats,
        WriteStats {
            clicks: 2,
            conversions: 1,
            unattributed: 1,
            recovered: 0,
        }
    );

    let client = db.client();
    let got: Vec<ClickRow> = client
        .query("SELECT ?fields FROM clicks FINAL ORDER BY click_id")
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(got, clicks.iter().map(ClickRow::new).collect::<Vec<_>>());
    assert_eq!(got[0].sub3, "s3 'quoted' \\ \n");

    let got: Vec<ConversionRow> = client
        .query("SELECT ?fields FROM conversions FINAL")
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(got, vec![ConversionRow::new(&conv, now)]);
    assert_eq!(got[0].latency_ms, 250);
    assert_eq!(got[0].payout, Decimal::from_str("12.345678").unwrap());

    let got: Vec<UnattributedRow> = client
        .query("SELECT ?fields FROM unattributed FINAL")
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(got, vec![UnattributedRow::new(&unat, now)]);
    assert_eq!(got[0].reason, "unsubstituted_macro");

    // What ClickHouse itself makes of them, not just our own decoding.
    let text: (String, String, u32, u8, u8, u8, String) = client
        .query(
            "SELECT toString(payout), toString(conversion_time, 'UTC'), \
             toUInt32(toUnixTimestamp(click_time)), offer_mismatch, click_id_repaired, is_test, \
             toString(toYYYYMM(click_time)) FROM conversions FINAL",
        )
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(
        text,
        (
            "12.345678".to_owned(),
            "2023-11-14 22:14:20".to_owned(),
            1_700_000_000,
            1,
            1,
            0,
            "202311".to_owned()
        )
    );
    // 18.16 prints a decimal with all its scale's digits ("-0.500000"), current releases
    // without trailing zeros ("-0.5"): compare the values, and the type.
    let (payout, payout_type): (String, String) = client
        .query("SELECT toString(payout), toTypeName(payout) FROM unattributed FINAL")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(
        Decimal::from_str(&payout).unwrap(),
        Decimal::new(-5, 1),
        "{payout}"
    );
    assert_eq!(payout_type, "Decimal(18, 6)");

    // Nothing to write: no request, nothing acknowledged.
    assert_eq!(sink.write(&[], &[]).await.unwrap(), WriteStats::default());
    drop(sink);
    db.drop_database().await;
}

#[tokio::test]
async fn replayed_and_updated_conversions_collapse_to_the_newest_version() {
    let db = TestDb::migrated().await;
    let sink = ClickHouseSink::new(&db.settings).unwrap();
    let pending = conversion("conv-x", 1, "pending", T0_MS + 1_000);
    // The status update arrives a month later: another conversion_time, same click.
    let approved = conversion("conv-x", 2, "approved", T0_MS + 31 * 86_400_000);
    let other = conversion("conv-y", 1, "pending", T0_MS + 2_000);

    for batch in [
        vec![pending.clone(), other.clone()],
        vec![pending.clone()], // replay after a crash
        vec![approved.clone()],
        vec![pending.clone()], // a late replay of the old version
    ] {
        let outcomes: Vec<Outcome> = batch.into_iter().map(Outcome::Attributed).collect();
        sink.write(&[], &outcomes).await.unwrap();
    }

    let rows: Vec<(String, u64, String)> = db
        .client()
        .query(
            "SELECT conversion_id, version, status FROM conversions FINAL ORDER BY conversion_id",
        )
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(
        rows,
        vec![
            ("conv-x".to_owned(), 2, "approved".to_owned()),
            ("conv-y".to_owned(), 1, "pending".to_owned()),
        ]
    );
    drop(sink);
    db.drop_database().await;
}

#[tokio::test]
async fn larger_batches_arrive_complete() {
    let db = TestDb::migrated().await;
    let sink = ClickHouseSink::new(&db.settings).unwrap();
    let clicks: Vec<ClickRecord> = (0..20_000)
        .map(|i| click(&format!("c-{i:06}"), T0_MS + i))
        .collect();
    // Written twice, as after a crash between insert and offset commit.
    for _ in 0..2 {
        let stats = sink.write(&clicks, &[]).await.unwrap();
        assert_eq!(stats.total(), 20_000);
    }
    let (rows, distinct): (u64, u64) = db
        .client()
        .query("SELECT count(), uniqExact(click_id) FROM clicks FINAL")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!((rows, distinct), (20_000, 20_000));
    drop(sink);
    db.drop_database().await;
}

#[tokio::test]
async fn errors_are_classified() {
    let db = TestDb::migrated().await;

    // A query against a missing table: Code 60, no retry fixes it.
    let err = db
        .client()
        .query("SELECT count() FROM no_such_table")
        .fetch_one::<u64>()
        .await
        .map_err(|e| ClickHouseError::from_client("select", e))
        .unwrap_err();
    assert_eq!(err.code(), Some(60), "{err}");
    assert!(!err.is_retryable(), "{err}");

    // A syntax error.
    let err = db
        .client()
        .query("SELEC 1")
        .execute()
        .await
        .map_err(|e| ClickHouseError::from_client("select", e))
        .unwrap_err();
    assert_eq!(err.code(), Some(62), "{err}");
    assert!(!err.is_retryable());

    // The sink against a database that was never migrated: unknown database/table.
    let mut unmigrated = db.settings.clone();
    unmigrated.database = format!("{}_missing", db.settings.database);
    let err = ClickHouseSink::new(&unmigrated)
        .unwrap()
        .write(&[click("c-1", T0_MS)], &[])
        .await
        .unwrap_err();
    assert!(matches!(err.code(), Some(60 | 81)), "{err}");
    assert!(!err.is_retryable(), "{err}");

    // Nobody listening: connection refused, worth retrying.
    let port = free_port().unwrap();
    let down = ClickHouseSettings::new(format!("http://127.0.0.1:{port}"), "clickmatch");
    let sink = ClickHouseSink::new(&down).unwrap();
    let err = sink.write(&[click("c-1", T0_MS)], &[]).await.unwrap_err();
    assert!(matches!(err, ClickHouseError::Network { .. }), "{err:?}");
    assert!(err.is_retryable(), "{err}");
    let err = migrate(&down).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");

    // Invalid settings never reach the server.
    let mut bad = db.settings.clone();
    bad.database = "x; DROP DATABASE default".into();
    assert!(matches!(
        ClickHouseSink::new(&bad),
        Err(ClickHouseError::InvalidSetting { .. })
    ));
    assert!(!migrate(&bad).await.unwrap_err().is_retryable());
    db.drop_database().await;
}

#[tokio::test]
async fn test_databases_are_dropped() {
    let db = TestDb::migrated().await;
    let settings = db.settings.clone();
    let local_server = db.drop_database_keep_server().await;
    let listed: u64 = ClickHouseSettings::new(settings.url.clone(), "default")
        .client()
        .query("SELECT count() FROM system.databases WHERE name = ?")
        .bind(settings.database.as_str())
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(listed, 0);
    tokio::task::spawn_blocking(move || drop(local_server))
        .await
        .unwrap();
}
