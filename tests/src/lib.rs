//! Shared harness for the end-to-end tests: each test gets its own in-process broker (librdkafka's
//! mock cluster), its own ClickHouse database and its own ingest + joiner, all talking over real
//! sockets.
//!
//! ClickHouse: `CLICKMATCH_TEST_CLICKHOUSE_URL` (the test script starts one server for the whole
//! suite); without it, the harness starts a private server for this test process.
//! `CLICKMATCH_TEST_CLICKHOUSE_ENGINE` (`server`, the default, or `chdb`) picks the engine of the
//! servers tests start themselves ([`clickhouse_engine`]).

pub mod accounting;
pub mod browser;
pub mod process;
pub mod scenario;
pub mod traffic_source;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use anyhow::Context;
use clickmatch_cli::pipeline::{clickhouse_settings, Pipeline, Roles};
use clickmatch_clickhouse::{migrate, ClickHouseSettings};
use clickmatch_config::Config;
use clickmatch_testbed::local_server::Engine;
use clickmatch_testbed::{LocalBroker, LocalServer};

pub const CLICKHOUSE_URL_ENV: &str = "CLICKMATCH_TEST_CLICKHOUSE_URL";
pub const CLICKHOUSE_ENGINE_ENV: &str = "CLICKMATCH_TEST_CLICKHOUSE_ENGINE";

/// The engine of the ClickHouse servers tests start themselves:
/// `CLICKMATCH_TEST_CLICKHOUSE_ENGINE`, else `server`.
pub fn clickhouse_engine() -> Engine {
    match std::env::var(CLICKHOUSE_ENGINE_ENV) {
        Ok(name) if !name.is_empty() => name
            .parse()
            .unwrap_or_else(|e| panic!("{CLICKHOUSE_ENGINE_ENV}: {e}")),
        _ => Engine::Server,
    }
}

static SHARED_SERVER: Mutex<Weak<LocalServer>> = Mutex::new(Weak::new());

/// The ClickHouse for tests: `CLICKMATCH_TEST_CLICKHOUSE_URL`, else a private server shared by
/// the tests of this process that run at the same time, stopped when the last one ends.
pub fn clickhouse_server() -> (String, Option<Arc<LocalServer>>) {
    if let Ok(url) = std::env::var(CLICKHOUSE_URL_ENV) {
        if !url.is_empty() {
            return (url, None);
        }
    }
    let mut shared = SHARED_SERVER.lock().expect("server lock");
    if let Some(server) = shared.upgrade() {
        return (server.url(), Some(server));
    }
    let server = Arc::new(
        LocalServer::start_temp_with(clickhouse_engine()).unwrap_or_else(|e| {
            panic!("no {CLICKHOUSE_URL_ENV} and no local ClickHouse could start: {e}")
        }),
    );
    *shared = Arc::downgrade(&server);
    (server.url(), Some(server))
}

/// A pipeline of its own for one test.
pub struct TestPipeline {
    pub config: Config,
    pub broker: LocalBroker,
    pub pipeline: Option<Pipeline>,
    pub settings: ClickHouseSettings,
    pub base: String,
    /// The joiner's state folder, kept across restarts.
    pub state_dir: tempfile::TempDir,
    /// Ingest's click spool, kept across restarts.
    pub spool_dir: tempfile::TempDir,
    /// Declared last: stops (when private and unshared) after everything else.
    _clickhouse: Option<Arc<LocalServer>>,
}

impl TestPipeline {
    /// The demo configuration with `overrides` (CLICKMATCH_* style), a fresh database and broker.
    pub async fn start(overrides: &[(&str, &str)]) -> anyhow::Result<TestPipeline> {
        Self::start_with(overrides, 4, Roles::INGEST_AND_JOIN).await
    }

    /// Like [`TestPipeline::start`] with `partitions` per topic and only `roles` started.
    pub async fn start_with(
        overrides: &[(&str, &str)],
        partitions: i32,
        roles: Roles,
    ) -> anyhow::Result<TestPipeline> {
        Self::start_custom("", overrides, partitions, roles).await
    }

    /// Like [`TestPipeline::start_with`] with `extra_toml` appended to the demo configuration
    /// (more routes, campaigns or offers). An override of `CLICKMATCH_CLICKHOUSE_URL` names the
    /// ClickHouse to use (e.g. a host of a [`clickmatch_testbed::LocalCluster`], with
    /// `CLICKMATCH_CLICKHOUSE_CLUSTER`), else [`clickhouse_server`]'s.
    pub async fn start_custom(
        extra_toml: &str,
        overrides: &[(&str, &str)],
        partitions: i32,
        roles: Roles,
    ) -> anyhow::Result<TestPipeline> {
        let database = format!("cm_e2e_{:016x}", rand::random::<u64>());
        let mut env: BTreeMap<String, String> = overrides
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let clickhouse = match env.get("CLICKMATCH_CLICKHOUSE_URL") {
            Some(_) => None,
            None => {
                let (url, server) = tokio::task::spawn_blocking(clickhouse_server).await?;
                env.insert("CLICKMATCH_CLICKHOUSE_URL".into(), url);
                server
            }
        };
        env.insert("CLICKMATCH_CLICKHOUSE_DATABASE".into(), database);
        env.entry("CLICKMATCH_JOINER_BATCH_MAX_MS".into())
            .or_insert("50".into());
        env.entry("CLICKMATCH_ACCOUNT_GRACE_SECONDS".into())
            .or_insert("1".into());
        let mut config = Config::from_toml(
            &format!("{}\n{extra_toml}", clickmatch_config::DEMO_CONFIG),
            clickmatch_config::BUILTIN_SOURCE,
            &env,
        )?;
        let state_dir = tempfile::tempdir()?;
        config.joiner.state_dir = state_dir.path().display().to_string();
        let spool_dir = tempfile::tempdir()?;
        config.ingest.spool.dir = spool_dir.path().display().to_string();
        let broker = LocalBroker::start(&config.kafka.topics(), partitions)?;
        config.kafka.bootstrap_servers = broker.bootstrap_servers().to_string();
        let settings = clickhouse_settings(&config);
        migrate(&settings).await.context("migrate")?;
        let pipeline = Pipeline::start(&config, roles, "127.0.0.1:0").await?;
        if roles.join {
            pipeline
                .wait_joiner_assigned(Duration::from_secs(30))
                .await?;
        }
        let base = pipeline.base_url().unwrap_or_default();
        Ok(TestPipeline {
            config,
            broker,
            pipeline: Some(pipeline),
            settings,
            base,
            state_dir,
            spool_dir,
            _clickhouse: clickhouse,
        })
    }

    pub fn pipeline(&self) -> &Pipeline {
        self.pipeline.as_ref().expect("running")
    }

    /// Stops ingest and joiner (last batch written, offsets committed).
    pub async fn stop_services(&mut self) -> anyhow::Result<()> {
        if let Some(pipeline) = self.pipeline.take() {
            pipeline.stop().await?;
        }
        Ok(())
    }

    /// Starts ingest and joiner again on the same broker and database (same consumer group).
    pub async fn restart_services(&mut self) -> anyhow::Result<()> {
        self.stop_services().await?;
        let roles = Roles::INGEST_AND_JOIN;
        // The stopped ingest's spool task lets go of its folder lock a moment after the stop
        // returns (as a restarted process would find it once the old one has exited).
        let deadline = Instant::now() + Duration::from_secs(10);
        let pipeline = loop {
            match Pipeline::start(&self.config, roles, "127.0.0.1:0").await {
                Ok(pipeline) => break pipeline,
                Err(e) if format!("{e:#}").contains("in use") && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e),
            }
        };
        pipeline
            .wait_joiner_assigned(Duration::from_secs(30))
            .await?;
        self.base = pipeline.base_url().expect("ingest");
        self.pipeline = Some(pipeline);
        Ok(())
    }

    /// Another joiner of the same group, with a state folder of its own.
    pub async fn spawn_joiner(&self, state_dir: &Path) -> anyhow::Result<Pipeline> {
        let mut config = self.config.clone();
        config.joiner.state_dir = state_dir.display().to_string();
        Pipeline::start(&config, Roles::JOIN, "").await
    }

    /// A producer on the test's broker.
    pub fn publisher(&self) -> clickmatch_kafka::Publisher {
        clickmatch_kafka::Publisher::new(&self.config.kafka.bootstrap_servers, &Default::default())
            .expect("producer")
    }

    pub fn client(&self) -> clickhouse::Client {
        self.settings.client()
    }

    /// One count read now (see [`count`]).
    pub async fn count(&self, query: &str) -> u64 {
        count(&self.client(), query).await
    }

    /// Polls `query` (returning one count) until it equals `expected` or 20 s pass.
    pub async fn wait_count(&self, query: &str, expected: u64) -> anyhow::Result<u64> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let n: u64 = self
                .client()
                .query(query)
                .fetch_one()
                .await
                .with_context(|| query.to_string())?;
            if n == expected || Instant::now() > deadline {
                return Ok(n);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `Snapshot::rows()` reaches `rows` and stays there for a moment.
    pub async fn wait_rows(
        &self,
        rows: u64,
        timeout: Duration,
    ) -> anyhow::Result<scenario::Snapshot> {
        let deadline = Instant::now() + timeout;
        loop {
            let snapshot = scenario::Snapshot::read(&self.client()).await?;
            if snapshot.rows() >= rows || Instant::now() > deadline {
                return Ok(snapshot);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Waits until the row count has not changed for `quiet` (at most `timeout`).
    pub async fn wait_stable(
        &self,
        quiet: Duration,
        timeout: Duration,
    ) -> anyhow::Result<scenario::Snapshot> {
        let deadline = Instant::now() + timeout;
        let mut last = scenario::Snapshot::read(&self.client()).await?;
        let mut since = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let now = scenario::Snapshot::read(&self.client()).await?;
            if now.rows() != last.rows() || now.clicks != last.clicks {
                since = Instant::now();
                last = now;
            } else if since.elapsed() >= quiet || Instant::now() > deadline {
                return Ok(now);
            }
        }
    }

    /// Drops the test's database.
    pub async fn cleanup(mut self) -> anyhow::Result<()> {
        self.stop_services().await?;
        let database = self.settings.database.clone();
        self.client()
            .query(&format!("DROP DATABASE IF EXISTS {database}"))
            .execute()
            .await?;
        Ok(())
    }
}

/// One count read from ClickHouse; the test fails, naming the query, when it cannot be read.
pub async fn count(client: &clickhouse::Client, query: &str) -> u64 {
    client
        .query(query)
        .fetch_one::<u64>()
        .await
        .with_context(|| query.to_string())
        .unwrap()
}

/// The `clickmatch` binary built next to the test executables (`cargo build --workspace`).
pub fn clickmatch_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/debug/deps/<test> → target/debug/clickmatch
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join("clickmatch");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --workspace` first",
        bin.display()
    );
    bin
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}
