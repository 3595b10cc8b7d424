//! The cluster layout and the rollups against a real ClickHouse (`$CLICKMATCH_TEST_CLICKHOUSE_URL`
//! or a local server). A local server is a cluster of one (`LOCAL_CLUSTER` in its
//! `remote_servers`) without ZooKeeper: the layout's `Distributed` tables, materialized views on
//! the local tables and the rollups run for real with plain engines; the replicated statements
//! are checked as far as a server without ZooKeeper can (they parse, and the engines take their
//! arguments).

mod common;

use std::str::FromStr;

use clickmatch_clickhouse::cluster::{self, Layout};
use clickmatch_clickhouse::{
    check_schema, migrate_with, ClickHouseError, ClickHouseSettings, ClickHouseSink, RollupCheck,
    MIGRATIONS,
};
use clickmatch_core::records::{Conversion, Outcome, Unattributed};
use clickmatch_core::Reason;
use clickmatch_testbed::local_server::LOCAL_CLUSTER;
use common::{has_local_cluster, local_cluster, TestDb};
use rust_decimal::Decimal;

const HOUR_MS: u64 = 3_600_000;
const T0_MS: u64 = 1_764_000_000_000; // 2025-11-24 16:00:00 UTC

fn conversion(n: u64, version: u64, status: &str, payout: &str, time_ms: u64) -> Conversion {
    Conversion {
        conversion_id: format!("conv-{n}"),
        click_id: format!("click-{n}"),
        click_time_ms: T0_MS - HOUR_MS,
        conversion_time_ms: time_ms,
        postback_id: format!("pb-{n}-{version}"),
        campaign_id: "camp".into(),
        offer_id: if n.is_multiple_of(2) { "1" } else { "2" }.into(),
        route: if n.is_multiple_of(3) {
            "lead"
        } else {
            "global"
        }
        .into(),
        status: status.into(),
        payout: Decimal::from_str(payout).unwrap(),
        version,
        ..Conversion::example()
    }
}

fn unattributed(n: u64, reason: Reason) -> Unattributed {
    Unattributed {
        origin: Default::default(),
        postback_id: format!("un-{n}"),
        received_time_ms: T0_MS + n * 600_000,
        route: if n.is_multiple_of(2) {
            "global"
        } else {
            "cake"
        }
        .into(),
        reason,
        raw_click_id: "{click_id}".into(),
        offer_id: String::new(),
        payout: Decimal::ONE,
        currency: "USD".into(),
        remote_ip: "127.0.0.1".into(),
        raw_params: "[]".into(),
        hint: String::new(),
        is_test: false,
    }
}

/// A batch of 40 conversions (first versions) and 30 unattributed postbacks over several hours.
fn batch() -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    for n in 0..40 {
        let time = T0_MS + n * 7 * 60_000;
        let status = if n.is_multiple_of(4) {
            "pending"
        } else {
            "approved"
        };
        outcomes.push(Outcome::Attributed(conversion(
            n,
            time,
            status,
            &format!("{}.25", n % 5),
            time,
        )));
    }
    for n in 0..30 {
        let reason = match n % 3 {
            0 => Reason::UnsubstitutedMacro,
            1 => Reason::UnknownClickId,
            _ => Reason::MissingClickId,
        };
        outcomes.push(Outcome::Unattributed(unattributed(n, reason)));
    }
    outcomes
}

/// Status updates two hours later: pending → approved (new payout), one approved → chargeback.
fn updates() -> Vec<Outcome> {
    let later = T0_MS + 5 * HOUR_MS + 123;
    let mut outcomes: Vec<Outcome> = (0..40)
        .step_by(4)
        .map(|n| Outcome::Attributed(conversion(n, later + n, "approved", "7.5", later + n)))
        .collect();
    outcomes.push(Outcome::Attributed(conversion(
        1,
        later + 1000,
        "chargeback",
        "-1.25",
        later + 1000,
    )));
    outcomes
}

async fn engines(settings: &ClickHouseSettings) -> Vec<(String, String)> {
    settings
        .client()
        .query("SELECT name, engine FROM system.tables WHERE database = ? ORDER BY name")
        .bind(settings.database.as_str())
        .fetch_all()
        .await
        .unwrap()
}

/// Writes `outcomes` and checks that every rollup equals its base-table figures.
async fn write_and_check(
    sink: &ClickHouseSink,
    client: &clickhouse::Client,
    outcomes: &[Outcome],
) -> RollupCheck {
    sink.write(&[], outcomes).await.unwrap();
    let check = RollupCheck::read(client).await.unwrap();
    assert_eq!(check.unattributed, check.unattributed_base);
    assert_eq!(check.latest, check.latest_base);
    assert_eq!(check.ledger, check.ledger_base);
    check
}

/// Merges drop replaced versions from `table` (the ledger's base-table figures need them).
async fn stop_merges(client: &clickhouse::Client, table: &str) {
    client
        .query(&format!("SYSTEM STOP MERGES {table}"))
        .execute()
        .await
        .unwrap();
}

#[tokio::test]
async fn rollups_stay_exact_under_replays_and_versions_on_one_server() {
    let db = TestDb::migrated().await;
    let sink = ClickHouseSink::new(&db.settings).unwrap();
    let client = db.client();
    stop_merges(&client, "conversions").await;

    let first = write_and_check(&sink, &client, &batch()).await;
    assert_eq!(first.unattributed_total(), 30);
    assert_eq!(first.conversions_total(), 40);
    assert_eq!(
        first.latest, first.ledger,
        "one version each: ledger = latest state"
    );

    // A replay writes the same batch again, twice: the base tables hold three copies (until
    // merged), the rollups count each row once.
    write_and_check(&sink, &client, &batch()).await;
    let again = write_and_check(&sink, &client, &batch()).await;
    assert_eq!(again, first);
    let raw: u64 = client
        .query("SELECT count() FROM conversions")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(raw, 120, "the replays did write");

    // Status updates, then their replay.
    let updated = write_and_check(&sink, &client, &updates()).await;
    let replayed = write_and_check(&sink, &client, &updates()).await;
    assert_eq!(updated, replayed);
    assert_eq!(
        updated.conversions_total(),
        40,
        "updates are not new conversions"
    );
    assert_ne!(
        updated.latest, updated.ledger,
        "the ledger keeps the earlier versions"
    );
    let ledger_versions: u64 = updated.ledger.values().map(|f| f.versions).sum();
    assert_eq!(ledger_versions, 40 + 11);

    // Merges change no rollup figure. They do drop the replaced versions from `conversions`
    // (ReplacingMergeTree keeps the latest): from then on only the rollup knows the ledger.
    client
        .query("SYSTEM START MERGES conversions")
        .execute()
        .await
        .unwrap();
    for table in [
        "conversions_hourly",
        "unattributed_hourly",
        "conversions",
        "unattributed",
    ] {
        client
            .query(&format!("OPTIMIZE TABLE {table} FINAL"))
            .execute()
            .await
            .unwrap();
    }
    let merged = RollupCheck::read(&client).await.unwrap();
    assert_eq!(merged.unattributed, updated.unattributed);
    assert_eq!(merged.unattributed_base, updated.unattributed);
    assert_eq!(merged.latest, updated.latest);
    assert_eq!(merged.latest_base, updated.latest);
    assert_eq!(merged.ledger, updated.ledger);
    assert_eq!(
        merged.ledger_base, updated.latest,
        "the base table forgot the old versions"
    );
    db.drop_database().await;
}

/// A database with rows before migration 0003: the backfill fills the rollups, and rows
/// written while (or after) it ran are not counted twice.
#[tokio::test]
async fn the_rollup_migration_backfills_existing_rows() {
    let db = TestDb::new().await;
    let before: Vec<_> = MIGRATIONS
        .iter()
        .filter(|m| m.version < 3)
        .copied()
        .collect();
    assert!(MIGRATIONS.iter().any(|m| m.name == "rollups"));
    let server = ClickHouseSettings::new(db.settings.url.clone(), "default").client();
    server
        .query(&format!("CREATE DATABASE {}", db.settings.database))
        .execute()
        .await
        .unwrap();
    // The columns every later migration adds (0004, 0005, 0007, 0010, 0011, …), which the sink
    // writes, without 0004's rollups (their backfill is checked below as well).
    let columns = MIGRATIONS
        .iter()
        .filter(|m| m.version > 3)
        .flat_map(|m| m.raw_statements())
        .filter(|s| s.starts_with("ALTER TABLE") && s.contains(" ADD COLUMN "))
        .map(|s| s.replace(" IF NOT EXISTS", ""));
    let plan = cluster::plan(&before, &Layout::Single).unwrap();
    for statement in plan.into_iter().flat_map(|(_, s)| s).chain(columns) {
        let sql = statement.replace("{database}", &db.settings.database);
        server.query(&sql).execute().await.unwrap();
    }
    let sink = ClickHouseSink::new(&db.settings).unwrap();
    stop_merges(&db.client(), "conversions").await;
    sink.write(&[], &batch()).await.unwrap();

    // schema_migrations does not exist yet: every migration runs, 0001 and 0002 as no-ops.
    let report = migrate_with(&db.settings, &Layout::Single).await.unwrap();
    assert_eq!(report.applied.len(), MIGRATIONS.len());
    let client = db.client();
    let check = RollupCheck::read(&client).await.unwrap();
    assert!(check.agrees(), "{check:#?}");
    assert_eq!(check.conversions_total(), 40);

    // The rows again, as if they had been in flight during the backfill.
    let check = write_and_check(&sink, &client, &batch()).await;
    assert_eq!(check.conversions_total(), 40);
    db.drop_database().await;
}

#[tokio::test]
async fn cluster_layout_runs_through_distributed_tables() {
    let mut db = TestDb::new().await;
    if !has_local_cluster(&db.settings).await {
        eprintln!("SKIP: the test server has no `{LOCAL_CLUSTER}` cluster in remote_servers");
        return;
    }
    db.settings.cluster = Some(LOCAL_CLUSTER.to_owned());
    let layout = local_cluster(false);
    let report = migrate_with(&db.settings, &layout).await.unwrap();
    assert_eq!(report.cluster.as_deref(), Some(LOCAL_CLUSTER));
    assert_eq!(report.applied.len(), MIGRATIONS.len());
    let again = migrate_with(&db.settings, &layout).await.unwrap();
    assert!(again.applied.is_empty());

    let engines = engines(&db.settings).await;
    let engine = |name: &str| {
        engines
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, e)| e.as_str())
            .unwrap_or_else(|| panic!("no table {name}: {engines:?}"))
    };
    for table in [
        "clicks",
        "conversions",
        "unattributed",
        "conversions_hourly",
        "unattributed_hourly",
    ] {
        assert_eq!(engine(table), "Distributed", "{table}");
        assert!(
            engine(&format!("{table}_local")).ends_with("MergeTree"),
            "{table}"
        );
    }
    assert_eq!(engine("conversions_hourly_mv"), "MaterializedView");
    assert_eq!(engine("conversions_hourly_latest"), "View");
    // The sink's columns are there, through the Distributed tables.
    check_schema(&db.settings).await.unwrap();

    // The joiner's path: inserts into the Distributed tables (synchronous), views on the
    // local tables, reads through Distributed with FINAL.
    let sink = ClickHouseSink::new(&db.settings).unwrap();
    let client = db.client();
    stop_merges(&client, "conversions_local").await;
    let first = write_and_check(&sink, &client, &batch()).await;
    assert_eq!(first.conversions_total(), 40);
    assert_eq!(first.unattributed_total(), 30);
    let replay = write_and_check(&sink, &client, &batch()).await;
    assert_eq!(replay, first);
    let updated = write_and_check(&sink, &client, &updates()).await;
    assert_eq!(updated.conversions_total(), 40);
    let local: u64 = client
        .query("SELECT count() FROM conversions_local")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(
        local,
        40 + 40 + 11,
        "synchronous inserts reached the local table"
    );
    db.drop_database().await;
}

/// The replicated statements (what `[clickhouse] cluster` runs) on a server without
/// ZooKeeper: each parses (the `ON CLUSTER` form is refused only for want of the DDL queue),
/// and each replicated table, tried without `ON CLUSTER`, is refused only for want of
/// ZooKeeper (code 225), not for its engine arguments.
#[tokio::test]
async fn replicated_statements_parse_and_their_engines_take_their_arguments() {
    let db = TestDb::new().await;
    if !has_local_cluster(&db.settings).await {
        eprintln!("SKIP: the test server has no `{LOCAL_CLUSTER}` cluster in remote_servers");
        return;
    }
    let zookeeper: u64 = ClickHouseSettings::new(db.settings.url.clone(), "system")
        .client()
        .query("SELECT count() FROM system.tables WHERE database = 'system' AND name = 'zookeeper'")
        .fetch_one()
        .await
        .unwrap();
    if zookeeper > 0 {
        eprintln!("SKIP: this server has ZooKeeper; the statements would really run");
        return;
    }
    let database = &db.settings.database;
    let server = ClickHouseSettings::new(db.settings.url.clone(), "default").client();
    server
        .query(&format!("CREATE DATABASE {database}"))
        .execute()
        .await
        .unwrap();
    let layout = local_cluster(true);
    let mut statements = cluster::bootstrap_statements(&layout);
    for (_, s) in cluster::plan(MIGRATIONS, &layout).unwrap() {
        statements.extend(s);
    }
    let on_cluster = format!(" ON CLUSTER '{LOCAL_CLUSTER}'");
    let mut replicated_tables = 0;
    for statement in statements {
        if statement.starts_with("INSERT INTO") {
            continue;
        }
        // `ADD COLUMN` goes out without `IF NOT EXISTS`, as `migrate` sends it when the column
        // is missing (18.16 has no such clause).
        let sql = statement
            .replace("{database}", database)
            .replace("{cluster}", LOCAL_CLUSTER)
            .replace(" ADD COLUMN IF NOT EXISTS ", " ADD COLUMN ");
        assert!(sql.contains(&on_cluster), "{sql}");
        let code = code_of(server.query(&sql).execute().await, &sql);
        assert_ne!(code, Some(62), "syntax error in {sql}");
        if sql.contains("ENGINE = Replicated") {
            let local = sql.replace(&on_cluster, "");
            let code = code_of(server.query(&local).execute().await, &local);
            assert_eq!(code, Some(225), "expected only `no ZooKeeper` for {local}");
            replicated_tables += 1;
        }
    }
    // schema_migrations and the five sharded tables of the migrations, at least.
    assert!(replicated_tables >= 6, "{replicated_tables}");
    db.drop_database().await;
}

fn code_of(result: Result<(), clickhouse::error::Error>, sql: &str) -> Option<u32> {
    match result {
        Ok(()) => None,
        Err(e) => {
            let error = ClickHouseError::from_client(sql.to_owned(), e);
            assert!(error.code().is_some(), "{error}");
            error.code()
        }
    }
}
