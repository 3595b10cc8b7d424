//! Crash safety with services as separate processes: a `clickmatch broker` process, a real
//! ClickHouse, and a `clickmatch join` process killed with SIGKILL five times while 100,000
//! postbacks flow. The final tables must hold exactly the expected rows: nothing lost, nothing
//! counted twice.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clickmatch_clickhouse::{migrate, ClickHouseSettings};
use clickmatch_config::Config;
use clickmatch_e2e::clickhouse_server;
use clickmatch_e2e::process::{demo_config_path, services_env, start_broker, Process};
use clickmatch_e2e::scenario::{Scenario, Snapshot};
use clickmatch_kafka::Publisher;

const CLICKS: u64 = 100_000;
const KILLS: usize = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_joiner_killed_five_times_loses_and_duplicates_nothing() {
    let (clickhouse_url, _clickhouse) = tokio::task::spawn_blocking(clickhouse_server)
        .await
        .unwrap();
    let database = format!("cm_crash_{:016x}", rand::random::<u64>());
    let work = tempfile::tempdir().unwrap();

    // The broker as its own process, with enough partitions that none reaches the mock
    // cluster's retention cap (about 5 MiB) before it is consumed.
    let (_broker, bootstrap) = start_broker(32, work.path());
    let env = services_env(
        &bootstrap,
        &clickhouse_url,
        &database,
        &work.path().join("state"),
    );
    let config = Config::load(&demo_config_path(), &env.iter().cloned().collect()).unwrap();
    let settings = ClickHouseSettings::new(clickhouse_url.clone(), database.clone());
    migrate(&settings).await.unwrap();

    let config_path = demo_config_path().display().to_string();
    let spawn_joiner = |n: usize| {
        Process::spawn(
            &["join", "--config", &config_path],
            &env,
            work.path().join(format!("joiner-{n}.log")),
        )
    };
    let mut joiner = spawn_joiner(0);

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let scenario = Scenario::generate(&config.account, CLICKS, now - 120_000);
    let log_path = |n: usize| work.path().join(format!("joiner-{n}.log"));
    let got_partitions = |n: usize| {
        std::fs::read_to_string(log_path(n))
            .unwrap_or_default()
            .contains("partition assigned")
    };
    // The traffic in one segment per joiner run, each produced over about 3 s: every kill lands
    // while records flow, and every run has work to lose.
    let segments = KILLS + 1;
    let per_segment = scenario.records.len().div_ceil(segments);
    let produce_segment = |n: usize| {
        let scenario = scenario.clone();
        let account = config.account.clone();
        let kafka = config.kafka.clone();
        tokio::spawn(async move {
            let publisher = Publisher::new(&kafka.bootstrap_servers, &Default::default()).unwrap();
            let range = n * per_segment..((n + 1) * per_segment).min(scenario.records.len());
            let pace = Some((2_000, Duration::from_millis(200)));
            scenario
                .produce(
                    &account,
                    &publisher,
                    &kafka.clicks_topic,
                    &kafka.postbacks_topic,
                    range,
                    pace,
                )
                .await
                .unwrap();
        })
    };
    let mut killed_mid_flow = 0;
    for n in 0..segments {
        // Each run gets its partitions first (a SIGKILLed member is evicted after the session
        // timeout).
        let deadline = Instant::now() + Duration::from_secs(60);
        while !got_partitions(n) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let producer = produce_segment(n);
        if n == KILLS {
            producer.await.unwrap();
            break;
        }
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        if !producer.is_finished() {
            killed_mid_flow += 1;
        }
        // SIGKILL: no flush, no commit, no leaving the group.
        joiner.kill9();
        producer.await.unwrap();
        joiner = spawn_joiner(n + 1);
    }

    let client = settings.client();
    let expected_rows = scenario.total_rows();
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut snapshot = Snapshot::read(&client).await.unwrap();
    while snapshot.rows() < expected_rows && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
        snapshot = Snapshot::read(&client).await.unwrap();
    }
    // Anything late would show up now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let snapshot = Snapshot::read(&client).await.unwrap();

    snapshot.assert_matches(&scenario);
    assert_eq!(snapshot.rows(), expected_rows);
    assert_eq!(snapshot.clicks, CLICKS);

    let runs = (0..=KILLS).filter(|n| got_partitions(*n)).count();
    assert_eq!(
        runs,
        KILLS + 1,
        "every joiner run got partitions before it was killed"
    );
    assert_eq!(
        killed_mid_flow, KILLS,
        "every kill lands while records flow"
    );

    drop(joiner);
    client
        .query(&format!("DROP DATABASE IF EXISTS {database}"))
        .execute()
        .await
        .unwrap();
}
