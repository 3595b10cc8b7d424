//! The cluster schema end to end: 2 shards × 2 replicas of ClickHouse 18.16 and a ZooKeeper
//! (`clickmatch_testbed::LocalCluster`, on loopback), `migrate` ON CLUSTER, ingest and joiner
//! writing through the `Distributed` tables, and one replica SIGKILLed under load and
//! restarted. The results must be exact (every postback in exactly one row, with its reason and
//! hint), and both replicas of each shard must hold the same rows within 30 s of the restart.
//!
//! Needs `clickhouse-server`, Debian's `zookeeper` and Java (`scripts/setup --test`). It starts
//! its own servers whatever `CLICKMATCH_TEST_CLICKHOUSE_URL` says; `scripts/test` runs it in the
//! 18.16 pass only.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clickhouse::Row;
use clickmatch_cli::demo;
use clickmatch_cli::pipeline::Roles;
use clickmatch_clickhouse::outcomes::outcomes_since;
use clickmatch_clickhouse::{migrate, ClickHouseSettings};
use clickmatch_e2e::scenario::{Scenario, Snapshot};
use clickmatch_e2e::{count, TestPipeline};
use clickmatch_testbed::LocalCluster;
use serde::Deserialize;

const SHARDS: usize = 2;
const REPLICAS: usize = 2;
/// Scenario clicks produced straight to Kafka while the replica is down (each with its
/// postback, plus retries, chargebacks, unknown and expired IDs).
const CLICKS: u64 = 3_000;
/// The replica killed: shard 2, replica 1. Inserts reach shard 2 through `Distributed` from
/// the entry host (shard 1, replica 1), so they must fail over to its other replica.
const KILLED: (usize, usize) = (1, 0);
/// How long the killed replica stays down.
const DOWN: Duration = Duration::from_secs(5);
/// How long after its restart the replicas of every shard must agree.
const CATCH_UP: Duration = Duration::from_secs(30);

fn unix_now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap()
}

fn client(url: &str, database: &str) -> clickhouse::Client {
    ClickHouseSettings::new(url.to_owned(), database.to_owned()).client()
}

#[derive(Debug, Row, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
struct TableEngine {
    name: String,
    engine: String,
}

/// What a host's local tables hold under `FINAL`: (table, rows, a hash of their keys).
type Fingerprint = Vec<(&'static str, u64, u64)>;

/// The base tables' `_local` tables on one host, and what identifies a row's content.
const LOCAL_TABLES: [(&str, &str); 3] = [
    ("clicks_local", "click_id"),
    (
        "conversions_local",
        "conversion_id, version, postback_id, status",
    ),
    ("unattributed_local", "postback_id, reason, hint"),
];

async fn fingerprint(url: &str, database: &str) -> anyhow::Result<Fingerprint> {
    let client = client(url, database);
    let mut out = Vec::new();
    for (table, key) in LOCAL_TABLES {
        let (rows, hash): (u64, u64) = client
            .query(&format!(
                "SELECT count(), sum(cityHash64({key})) FROM {table} FINAL"
            ))
            .fetch_one()
            .await?;
        out.push((table, rows, hash));
    }
    Ok(out)
}

/// `expected` plus `more`, by outcome.
fn merged(
    expected: &BTreeMap<String, usize>,
    more: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    let mut out: BTreeMap<String, u64> = expected
        .iter()
        .map(|(k, v)| (k.clone(), *v as u64))
        .collect();
    for (k, v) in more {
        *out.entry(k.clone()).or_default() += v;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_shards_by_two_replicas_stay_exact_through_a_replica_killed_under_load() {
    let began = Instant::now();
    let lap = |what: &str| eprintln!("[{:>5.1} s] {what}", began.elapsed().as_secs_f64());
    assert!(
        LocalCluster::is_installed(),
        "the cluster test needs clickhouse-server, zookeeper and java: scripts/setup --test"
    );
    let mut cluster = tokio::task::spawn_blocking(|| LocalCluster::start_temp(SHARDS, REPLICAS))
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("start the local cluster: {e}"));
    lap("cluster started (ZooKeeper, 4 servers)");

    // `migrate` ON CLUSTER through the first host, as TestPipeline starts.
    let entry = cluster.url(0, 0);
    let t = TestPipeline::start_custom(
        "",
        &[
            ("CLICKMATCH_CLICKHOUSE_URL", &entry),
            ("CLICKMATCH_CLICKHOUSE_CLUSTER", cluster.name()),
        ],
        4,
        Roles::INGEST_AND_JOIN,
    )
    .await
    .unwrap();
    lap("migrated ON CLUSTER, ingest and joiner running");
    let database = t.settings.database.clone();
    assert_eq!(t.settings.cluster.as_deref(), Some(cluster.name()));

    // Every host has every table: replicated local tables, Distributed tables over them.
    let mut hosts = Vec::new();
    for shard in 0..SHARDS {
        for replica in 0..REPLICAS {
            hosts.push((shard, replica, cluster.url(shard, replica)));
        }
    }
    let mut schemas = Vec::new();
    for (_, _, url) in &hosts {
        let tables: Vec<TableEngine> = client(url, "default")
            .query("SELECT name, engine FROM system.tables WHERE database = ? ORDER BY name")
            .bind(database.as_str())
            .fetch_all()
            .await
            .unwrap();
        schemas.push(tables);
    }
    let engine_of = |name: &str| {
        schemas[0]
            .iter()
            .find(|t| t.name == name)
            .map(|t| t.engine.clone())
            .unwrap_or_else(|| panic!("no table {name} in {:?}", schemas[0]))
    };
    assert_eq!(
        engine_of("conversions_local"),
        "ReplicatedReplacingMergeTree"
    );
    assert_eq!(engine_of("conversions"), "Distributed");
    assert_eq!(engine_of("clicks"), "Distributed");
    assert_eq!(
        engine_of("schema_migrations"),
        "ReplicatedReplacingMergeTree"
    );
    for (host, tables) in hosts.iter().zip(&schemas) {
        assert_eq!(tables, &schemas[0], "host {host:?} has the same tables");
    }
    // The applied versions are replicated: migrate through another host applies nothing.
    let mut other = t.settings.clone();
    other.url = cluster.url(1, 1);
    let again = migrate(&other).await.unwrap();
    assert!(again.applied.is_empty(), "{again:?}");
    assert!(!again.already_applied.is_empty(), "{again:?}");

    // Demo traffic over HTTP: every postback with its exact reason and hint, read back through
    // the Distributed tables (the outcomes of the `clickmatch dev` report).
    let since_s = unix_now().as_secs() as u32 - 1;
    let traffic = demo::run(&t.base, &t.config.account).await.unwrap();
    let demo_rows = traffic.postbacks as u64;
    let total = "SELECT assumeNotNull((SELECT count() FROM conversions FINAL) \
                 + (SELECT count() FROM unattributed FINAL))";
    assert_eq!(t.wait_count(total, demo_rows).await.unwrap(), demo_rows);
    let outcomes = outcomes_since(&t.settings, since_s).await.unwrap();
    let mut hints: BTreeMap<(String, String), u64> = outcomes.unattributed.into_iter().collect();
    let repaired: u64 = outcomes.repairs.iter().map(|(_, n)| n).sum();
    for (hint, n) in outcomes.repairs {
        hints.insert((demo::ATTRIBUTED.to_owned(), hint), n);
    }
    hints.insert(
        (demo::ATTRIBUTED.to_owned(), String::new()),
        outcomes.attributed - repaired,
    );
    hints.retain(|_, n| *n > 0);
    let expected_hints: BTreeMap<(String, String), u64> = traffic
        .expected_hints
        .iter()
        .map(|(k, v)| (k.clone(), *v as u64))
        .collect();
    assert_eq!(hints, expected_hints, "demo outcomes by reason and hint");
    assert_eq!(outcomes.clicks, traffic.clicks as u64);
    lap("demo traffic exact");

    // Under load: the scenario produced over ~10 s, the replica killed once rows flow.
    // Clicks timed from now: the demo's clicks have moved every partition's watermark to now,
    // and a postback read before its click waits for it only while the watermark is within the
    // grace of the click's time.
    let now_ms = unix_now().as_millis() as u64;
    let scenario = Scenario::generate(&t.config.account, CLICKS, now_ms);
    let producer = {
        let (scenario, account, kafka) = (
            scenario.clone(),
            t.config.account.clone(),
            t.config.kafka.clone(),
        );
        let publisher = t.publisher();
        tokio::spawn(async move {
            let all = 0..scenario.records.len();
            let pace = Some((250, Duration::from_millis(400)));
            scenario
                .produce(
                    &account,
                    &publisher,
                    &kafka.clicks_topic,
                    &kafka.postbacks_topic,
                    all,
                    pace,
                )
                .await
                .unwrap();
        })
    };
    let rows_now = || async {
        Snapshot::read(&t.client())
            .await
            .map(|s| s.rows())
            .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while rows_now().await < demo_rows + 200 {
        assert!(Instant::now() < deadline, "scenario rows do not arrive");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (ks, kr) = KILLED;
    let peer = cluster.url(ks, 1 - kr);
    let peer_rows = |fp: &Fingerprint| fp.iter().map(|(_, rows, _)| rows).sum::<u64>();
    let at_kill = peer_rows(&fingerprint(&peer, &database).await.unwrap());
    tokio::task::block_in_place(|| cluster.host_mut(ks, kr).kill()).unwrap();
    lap("replica s2r1 SIGKILLed under load");
    tokio::time::sleep(DOWN).await;
    let at_restart = peer_rows(&fingerprint(&peer, &database).await.unwrap());
    tokio::task::block_in_place(|| cluster.host_mut(ks, kr).restart()).unwrap();
    let restarted = Instant::now();
    lap("replica s2r1 restarted");
    assert!(
        at_restart > at_kill,
        "shard 2 took writes while its replica was down ({at_kill} → {at_restart} rows)"
    );
    producer.await.unwrap();
    lap("scenario produced");

    // Every row through the Distributed tables.
    let expected_rows = demo_rows + scenario.total_rows();
    let snapshot = t
        .wait_rows(expected_rows, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        snapshot.rows(),
        expected_rows,
        "rows through Distributed; by outcome {:?}, expected {:?}",
        snapshot.outcomes(),
        merged(&traffic.expected, &scenario.expected)
    );
    lap("every row written");

    // Both replicas of every shard hold the same rows within CATCH_UP of the restart.
    let agreed = loop {
        let mut fingerprints: Vec<(_, Option<Fingerprint>)> = Vec::new();
        for (shard, replica, url) in &hosts {
            let fp = fingerprint(url, &database).await.ok();
            fingerprints.push(((shard, replica), fp));
        }
        let agree = (0..SHARDS).all(|shard| {
            let of = |replica: usize| &fingerprints[shard * REPLICAS + replica].1;
            of(0).is_some() && (1..REPLICAS).all(|replica| of(replica) == of(0))
        });
        if agree {
            break fingerprints;
        }
        assert!(
            restarted.elapsed() < CATCH_UP,
            "replicas disagree {CATCH_UP:?} after the restart: {fingerprints:#?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    lap(&format!(
        "replicas agree, {:.1} s after the restart",
        restarted.elapsed().as_secs_f64()
    ));

    // Exact: each row on exactly one shard, and every outcome as expected, now that any
    // replica would answer the same.
    let first_replicas: Vec<&Fingerprint> = (0..SHARDS)
        .map(|shard| agreed[shard * REPLICAS].1.as_ref().unwrap())
        .collect();
    let shard_sum = |table: &str| -> u64 {
        first_replicas
            .iter()
            .map(|fp| fp.iter().find(|(t, _, _)| *t == table).unwrap().1)
            .sum()
    };
    assert!(
        first_replicas.iter().all(|fp| fp[1].1 > 0),
        "both shards hold conversions: {first_replicas:?}"
    );
    let snapshot = Snapshot::read(&t.client()).await.unwrap();
    assert_eq!(
        shard_sum("conversions_local"),
        snapshot.conversions.len() as u64
    );
    assert_eq!(
        shard_sum("unattributed_local"),
        snapshot.unattributed.len() as u64
    );
    assert_eq!(shard_sum("clicks_local"), snapshot.clicks);
    assert_eq!(snapshot.clicks, traffic.clicks as u64 + CLICKS);

    assert_eq!(
        snapshot.outcomes(),
        merged(&traffic.expected, &scenario.expected),
        "rows by outcome"
    );
    // Each conversion once; each postback in one table once.
    let conversion_ids: BTreeSet<&str> = snapshot
        .conversions
        .iter()
        .map(|c| c.conversion_id.as_str())
        .collect();
    assert_eq!(conversion_ids.len(), snapshot.conversions.len());
    let mut postback_ids: Vec<&str> = snapshot
        .conversions
        .iter()
        .map(|c| c.postback_id.as_str())
        .chain(snapshot.unattributed.iter().map(|u| u.postback_id.as_str()))
        .collect();
    let all = postback_ids.len();
    postback_ids.sort_unstable();
    postback_ids.dedup();
    assert_eq!(postback_ids.len(), all, "a postback has two rows");
    // The scenario's conversions: one per click, each scenario click exactly once, its
    // chargebacks as the latest version.
    let scenario_clicks: BTreeSet<String> = scenario
        .records
        .iter()
        .filter_map(|r| match r {
            clickmatch_e2e::scenario::Record::Click(c) => Some(c.click_id.clone()),
            _ => None,
        })
        .collect();
    let scenario_conversions: Vec<_> = snapshot
        .conversions
        .iter()
        .filter(|c| scenario_clicks.contains(&c.click_id))
        .collect();
    assert_eq!(scenario_conversions.len() as u64, CLICKS);
    let converted: BTreeSet<&str> = scenario_conversions
        .iter()
        .map(|c| c.click_id.as_str())
        .collect();
    assert_eq!(converted.len() as u64, CLICKS, "every scenario click once");
    let chargebacks = scenario_conversions
        .iter()
        .filter(|c| c.status == "chargeback")
        .count() as u64;
    assert_eq!(chargebacks, scenario.chargebacks, "status updates");
    lap("exact");

    reports_read_the_shards_whole(&t.settings).await;
    lap("reports");
    carried_subs_reach_every_shard(&t.settings).await;
    reports_read_the_shards_whole(&t.settings).await;
    lap("subs carried, reports again");

    let mut pipeline = t;
    pipeline.stop_services().await.unwrap();
    drop(pipeline);
    lap("services stopped");
    tokio::task::spawn_blocking(move || drop(cluster))
        .await
        .unwrap();
    lap("stopped");
}

/// Reports through the sharded tables (clicks by click ID, conversions by conversion ID):
/// plain, grouped by a click's dimension (conversions joined to their clicks) and filtered by
/// one (conversions narrowed to the clicks it selects). Each one's totals equal the base tables
/// read directly; the subqueries must reach every shard.
async fn reports_read_the_shards_whole(settings: &ClickHouseSettings) {
    use clickmatch_clickhouse::report::{self, ReportParams};
    let now = chrono::DateTime::<chrono::Utc>::from(SystemTime::now());
    let from = (now - chrono::Duration::days(2)).to_rfc3339();
    let to = (now + chrono::Duration::seconds(1)).to_rfc3339();
    let client = settings.client();
    let range = |column: &str| {
        format!(
            "{column} >= parseDateTimeBestEffort('{from}') AND {column} < parseDateTimeBestEffort('{to}')"
        )
    };
    let clicks = count(
        &client,
        &format!(
            "SELECT count() FROM clicks FINAL WHERE is_test = 0 AND {}",
            range("click_time")
        ),
    )
    .await;
    let counted = "is_test = 0 AND status IN ('approved', 'pending', 'hold')";
    let conversions = count(
        &client,
        &format!(
            "SELECT count() FROM conversions_valued WHERE {counted} AND {}",
            range("conversion_time")
        ),
    )
    .await;
    let without_os = count(
        &client,
        &format!(
            "SELECT count() FROM conversions_valued WHERE {counted} AND {} \
         AND click_id GLOBAL IN (SELECT click_id FROM clicks WHERE os = '')",
            range("conversion_time")
        ),
    )
    .await;
    assert!(
        clicks > 0 && conversions > 0,
        "{clicks} clicks, {conversions} conversions"
    );
    // The clicks a filter on their OS selects are not counted here: only its conversions.
    for (pairs, expected) in [
        (vec![("group_by", "campaign")], (Some(clicks), conversions)),
        (vec![("group_by", "sub1,os")], (Some(clicks), conversions)),
        (
            vec![("group_by", "campaign"), ("os", "")],
            (None, without_os),
        ),
    ] {
        let mut all = vec![("from", from.as_str()), ("to", to.as_str())];
        all.extend(pairs);
        let request = ReportParams::from_pairs(all.iter().copied())
            .unwrap()
            .check(now)
            .unwrap();
        let made = report::run(settings, request.clone(), &[])
            .await
            .unwrap_or_else(|e| panic!("{request:?}: {e}"));
        let totals = &made.totals;
        let clicks = expected.0.map(|_| totals.clicks);
        assert_eq!((clicks, totals.conversions), expected, "{request:?}");
    }
}

/// `clickmatch carry-subs` through the sharded tables: every conversion (the pipeline's carry
/// `sub1`..`sub3`, so `sub9` is carried by none) is written again carrying its click's `sub9`,
/// on its own shard (the copy must replace its original there, not add a conversion), and a
/// report grouped by `sub9` then reads the rows.
async fn carried_subs_reach_every_shard(settings: &ClickHouseSettings) {
    use clickmatch_clickhouse::carry::carry_subs;
    use clickmatch_clickhouse::report::{self, ReportParams};
    use clickmatch_core::subs::SubSet;
    let client = settings.client();
    let latest = "SELECT count() FROM conversions FINAL";
    let before = count(&client, latest).await;
    let sub9 = SubSet::parse(["sub9"]).unwrap();
    let carried = carry_subs(settings, sub9, 0, u32::MAX, false)
        .await
        .unwrap();
    assert_eq!(carried.lacking, before, "{carried:?}");
    assert_eq!(
        carried.written, before,
        "every click is in clicks: {carried:?}"
    );
    assert_eq!(carried.still_lacking, 0);
    assert_eq!(
        count(&client, latest).await,
        before,
        "copies, not conversions"
    );
    let lacking = "SELECT count() FROM conversions FINAL WHERE bitAnd(subs_carried, 256) = 0";
    assert_eq!(count(&client, lacking).await, 0);
    let now = chrono::DateTime::<chrono::Utc>::from(SystemTime::now());
    let from = (now - chrono::Duration::days(2)).to_rfc3339();
    let request = ReportParams::from_pairs([("group_by", "sub9"), ("from", from.as_str())])
        .unwrap()
        .check(now)
        .unwrap();
    assert!(report::subs_on_rows(settings, &request).await.unwrap());
}
