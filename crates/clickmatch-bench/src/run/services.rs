//! The services under study: starting them as processes (broker, ingest, joiner), waiting on
//! their progress, their ClickHouse databases, and `perf` recordings of them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clickmatch_clickhouse::{migrate, ClickHouseSettings};

use super::Bench;
use crate::kafka;
use crate::procs::{self, Proc};

/// How far a consumer group got.
pub(super) struct Progress {
    pub(super) at: Instant,
    pub(super) events: u64,
    pub(super) peak_rss: u64,
    pub(super) complete: bool,
    pub(super) committed: kafka::Positions,
}

impl Bench {
    pub(super) fn logs(&self) -> PathBuf {
        self.raw.clone()
    }

    pub(super) fn clickhouse_url(&self) -> String {
        self.clickhouse.url()
    }

    pub(super) fn settings(&self, database: &str) -> ClickHouseSettings {
        ClickHouseSettings::new(self.clickhouse_url(), database)
    }

    pub(super) fn fresh_database(&self, database: &str) -> anyhow::Result<ClickHouseSettings> {
        let settings = self.settings(database);
        self.drop_database(database);
        self.rt.block_on(migrate(&settings)).context("migrate")?;
        Ok(settings)
    }

    pub(super) fn drop_database(&self, database: &str) {
        let client = self.settings("default").client();
        let _ = self.rt.block_on(
            client
                .query(&format!("DROP DATABASE IF EXISTS {database}"))
                .execute(),
        );
    }

    /// Waits (at most `limit`) until the server merges nothing, so that one side's background
    /// merges do not take CPU from the other side's timed inserts.
    pub(super) fn wait_for_merges(&self, limit: Duration) {
        let client = self.settings("default").client();
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            let merging: Result<u64, _> = self.rt.block_on(
                client
                    .query("SELECT count() FROM system.merges")
                    .fetch_one(),
            );
            if !matches!(merging, Ok(n) if n > 0) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub(super) fn start_broker(
        &self,
        name: &str,
        partitions: i32,
        cpus: Option<&str>,
    ) -> anyhow::Result<(Proc, String)> {
        let port = procs::free_port()?;
        let bootstrap = format!("127.0.0.1:{port}");
        let mut command = procs::command(&self.args.clickmatch, cpus);
        command
            .args(["broker", "--listen", &bootstrap, "--partitions"])
            .arg(partitions.to_string())
            .env("CLICKMATCH_LOG", "warn");
        let proc = Proc::spawn(name, command, &self.logs())?;
        procs::wait_port(port, Duration::from_secs(20))?;
        Ok((proc, bootstrap))
    }

    pub(super) fn start_ingest(
        &self,
        name: &str,
        bootstrap: &str,
        cpus: Option<&str>,
    ) -> anyhow::Result<(Proc, u16)> {
        self.start_ingest_with(name, bootstrap, cpus, &[])
    }

    /// [`Bench::start_ingest`] with configuration overrides (`CLICKMATCH_*` pairs).
    pub(super) fn start_ingest_with(
        &self,
        name: &str,
        bootstrap: &str,
        cpus: Option<&str>,
        env: &[(&str, String)],
    ) -> anyhow::Result<(Proc, u16)> {
        let port = procs::free_port()?;
        let mut command = procs::command(&self.args.clickmatch, cpus);
        command
            .arg("ingest")
            .arg("--config")
            .arg(&self.config_path)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .env("CLICKMATCH_KAFKA_BOOTSTRAP_SERVERS", bootstrap)
            // The default spool folder is relative to the working directory: keep it in ours.
            .env(
                "CLICKMATCH_INGEST_SPOOL_DIR",
                self.work.path().join(format!("{name}-spool")),
            )
            .env("CLICKMATCH_LOG", "warn")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
        let proc = Proc::spawn(name, command, &self.logs())?;
        procs::wait_port(port, Duration::from_secs(20))?;
        Ok((proc, port))
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn start_joiner(
        &self,
        name: &str,
        bootstrap: &str,
        group: &str,
        database: &str,
        state_dir: &Path,
        cpus: Option<&str>,
    ) -> anyhow::Result<(Proc, String)> {
        let port = procs::free_port()?;
        let metrics = format!("127.0.0.1:{port}");
        let mut command = procs::command(&self.args.clickmatch, cpus);
        command
            .arg("join")
            .arg("--config")
            .arg(&self.config_path)
            .arg("--metrics-listen")
            .arg(&metrics)
            .env("CLICKMATCH_KAFKA_BOOTSTRAP_SERVERS", bootstrap)
            .env("CLICKMATCH_KAFKA_GROUP_ID", group)
            .env("CLICKMATCH_CLICKHOUSE_URL", self.clickhouse_url())
            .env("CLICKMATCH_CLICKHOUSE_DATABASE", database)
            .env("CLICKMATCH_JOINER_STATE_DIR", state_dir)
            .env("CLICKMATCH_LOG", "warn");
        for (key, value) in std::env::vars() {
            // Joiner settings under study (e.g. CLICKMATCH_JOINER_BATCH_MAX_ROWS) pass through.
            if key.starts_with("CLICKMATCH_JOINER_BATCH")
                || key == "CLICKMATCH_JOINER_STATE_CACHE_MIB"
            {
                command.env(key, value);
            }
        }
        let proc = Proc::spawn(name, command, &self.logs())?;
        procs::wait_port(port, Duration::from_secs(20))?;
        Ok((proc, metrics))
    }

    /// Waits until the joiner behind `metrics` has partitions; returns when that happened.
    pub(super) fn wait_assigned(
        &self,
        joiner: &mut Proc,
        metrics: &str,
    ) -> anyhow::Result<Instant> {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            joiner.check_running()?;
            if let Ok(text) = kafka::scrape(metrics) {
                let samples = kafka::parse_metrics(&text);
                if kafka::metric_sum(&samples, "clickmatch_joiner_assigned_partitions", None) > 0.0
                {
                    return Ok(Instant::now());
                }
            }
            if Instant::now() > deadline {
                bail!("the joiner got no partitions within 90 s");
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Waits until `group` committed every end offset of `ends`; returns the time and the peak
    /// RSS of `joiner` seen meanwhile.
    pub(super) fn wait_committed(
        &self,
        joiner: &mut Proc,
        bootstrap: &str,
        group: &str,
        ends: &kafka::Positions,
        timeout: Duration,
    ) -> anyhow::Result<(Instant, u64)> {
        let progress = self.wait_progress(joiner, bootstrap, group, ends, timeout)?;
        if !progress.complete {
            bail!("group {group} did not commit the end offsets within {timeout:?}");
        }
        Ok((progress.at, progress.peak_rss))
    }

    /// Waits until `group` committed every end offset of `ends`, at most `cap`: returns how far
    /// it got (records committed), when, and the peak RSS of `joiner` meanwhile.
    pub(super) fn wait_progress(
        &self,
        joiner: &mut Proc,
        bootstrap: &str,
        group: &str,
        ends: &kafka::Positions,
        cap: Duration,
    ) -> anyhow::Result<Progress> {
        let client = kafka::group_client(bootstrap, group)?;
        let deadline = Instant::now() + cap;
        let mut peak = 0;
        loop {
            joiner.check_running()?;
            peak = peak.max(procs::rss(joiner.pid()).0);
            let committed = kafka::committed(&client, ends)?;
            let complete = kafka::caught_up(&committed, ends);
            if complete || Instant::now() > deadline {
                let events = ends
                    .iter()
                    .map(|(k, end)| committed.get(k).copied().unwrap_or(0).clamp(0, *end) as u64)
                    .sum();
                return Ok(Progress {
                    at: Instant::now(),
                    events,
                    peak_rss: peak,
                    complete,
                    committed,
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `perf record` on `service` when `--profile` asked for it.
    pub(super) fn profile(
        &self,
        name: &str,
        service: &Proc,
    ) -> anyhow::Result<Option<procs::Profiler>> {
        if !self.args.profile {
            return Ok(None);
        }
        procs::Profiler::attach(name, service.pid(), &self.raw).map(Some)
    }

    /// Pins the benchmark's ClickHouse server to `cpus` (`None`: any CPU) for a phase that
    /// writes to it.
    pub(super) fn pin_clickhouse(&self, cpus: Option<&str>) {
        if let Some(pid) = self.clickhouse.pid() {
            procs::repin(pid, cpus);
        }
    }

    /// Ends a recording started by [`Bench::profile`]; a report that fails costs only itself.
    pub(super) fn finish_profile(&mut self, profiler: Option<procs::Profiler>) {
        let Some(profiler) = profiler else { return };
        match profiler.finish() {
            Ok(report) => eprintln!("   profile: {}", report.display()),
            Err(e) => self.results.errors.push(format!("profile: {e:#}")),
        }
    }
}
