//! `clickmatch-bench run`: the whole table in one command. Services run as separate processes
//! (`clickmatch broker`, `clickmatch ingest`, `clickmatch join`, nginx, clickhouse-server),
//! load generators as processes of their own, pinned with taskset where the figure is a ratio
//! of throughputs (service on CPU 0, load generator, broker and ClickHouse on CPU 1).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clickmatch_clickhouse::{migrate, ClickHouseSettings};
use clickmatch_testbed::LocalServer;

use crate::httpload::LoadResult;
use crate::kafka;
use crate::procs::{self, Pinning, Proc};
use crate::report::{self, *};
use crate::traffic::{self, Record, Traffic};
use crate::wrk;

/// One phase of the benchmark.
type Phase = fn(&mut Bench) -> anyhow::Result<()>;

/// What to run.
#[derive(Debug, Clone)]
pub struct RunArgs {
    pub out: PathBuf,
    pub smoke: bool,
    pub runs: usize,
    /// Phases to run (empty: all): http, joiner, sink, e2e, state.
    pub only: Vec<String>,
    pub clickmatch: PathBuf,
    /// First rate tried for the end-to-end latency (postbacks/s).
    pub e2e_rate: f64,
    /// Overrides the clicks prefilled for the joiner phase.
    pub joiner_clicks: Option<u64>,
    /// Records the services under study with `perf` (see [`procs::Profiler`]).
    pub profile: bool,
    pub command: String,
}

/// Sizes of one run.
#[derive(Debug, Clone)]
struct Sizes {
    http_seconds: u64,
    http_paths: usize,
    connections: usize,
    half_seconds: u64,
    joiner_clicks: u64,
    /// A joiner run stops here; its rate is what it committed by then.
    joiner_cap_seconds: u64,
    partitions: i32,
    sink_clicks: u64,
    e2e_seconds: u64,
    e2e_warmup: u64,
    e2e_connections: usize,
    e2e_attempts: usize,
    state_clicks: u64,
    state_marks: Vec<u64>,
    state_partitions: i32,
}

impl Sizes {
    fn new(smoke: bool) -> Sizes {
        if smoke {
            Sizes {
                http_seconds: 1,
                http_paths: 2_000,
                connections: 16,
                half_seconds: 1,
                joiner_clicks: 2_000,
                joiner_cap_seconds: 30,
                partitions: 4,
                sink_clicks: 2_000,
                e2e_seconds: 2,
                e2e_warmup: 1,
                e2e_connections: 16,
                e2e_attempts: 1,
                state_clicks: 20_000,
                state_marks: vec![10_000, 20_000],
                state_partitions: 2,
            }
        } else {
            Sizes {
                http_seconds: 5,
                http_paths: 20_000,
                connections: 64,
                half_seconds: 5,
                joiner_clicks: 200_000,
                joiner_cap_seconds: 45,
                partitions: 32,
                sink_clicks: 200_000,
                e2e_seconds: 15,
                e2e_warmup: 2,
                e2e_connections: 256,
                e2e_attempts: 3,
                state_clicks: 10_000_000,
                state_marks: vec![1_000_000, 10_000_000],
                state_partitions: 8,
            }
        }
    }
}

/// How far a consumer group got.
struct Progress {
    at: Instant,
    events: u64,
    peak_rss: u64,
    complete: bool,
    committed: kafka::Positions,
}

/// One run of the open-loop load generator (`clickmatch-bench loadgen http`).
struct OpenLoop<'a> {
    /// Names its log and its JSON result in the raw outputs.
    name: &'a str,
    port: u16,
    /// Request lines, one per line.
    file: &'a Path,
    /// Requests per second offered, whatever the answers' pace.
    rate: f64,
    seconds: u64,
    warmup: u64,
    connections: usize,
    /// Bootstrap servers and database, to follow each probe postback to its row.
    e2e: Option<(&'a str, &'a str)>,
    cpus: Option<&'a str>,
}

struct Bench {
    args: RunArgs,
    sizes: Sizes,
    pin: Pinning,
    rt: tokio::runtime::Runtime,
    work: tempfile::TempDir,
    raw: PathBuf,
    config_path: PathBuf,
    me: PathBuf,
    clickhouse: LocalServer,
    results: Results,
    /// Where the server's folder is when `CLICKMATCH_BENCH_CLICKHOUSE_PARENT` is set; removed
    /// after the server has stopped (fields drop in declaration order).
    _clickhouse_home: Option<tempfile::TempDir>,
}

/// A folder for the benchmark's ClickHouse: in the run's work folder, or in a fresh folder under
/// `$CLICKMATCH_BENCH_CLICKHOUSE_PARENT` (e.g. `/dev/shm`). On this machine's ext4 without a
/// journal, creating a file costs up to ~0.7 ms after deletions nearby (other engineers' builds
/// and tests); the sink creates ~30 times the reference's files, so that noise lands on it.
fn clickhouse_home(work: &Path) -> anyhow::Result<(PathBuf, Option<tempfile::TempDir>)> {
    match std::env::var_os("CLICKMATCH_BENCH_CLICKHOUSE_PARENT").filter(|p| !p.is_empty()) {
        Some(parent) => {
            let home = tempfile::Builder::new()
                .prefix("clickmatch-bench-clickhouse-")
                .tempdir_in(parent)
                .context("CLICKMATCH_BENCH_CLICKHOUSE_PARENT")?;
            Ok((home.path().to_owned(), Some(home)))
        }
        None => Ok((work.join("clickhouse"), None)),
    }
}

fn wants(args: &RunArgs, phase: &str) -> bool {
    args.only.is_empty() || args.only.iter().any(|p| p == phase)
}

/// Runs the benchmark and writes `results.json`, `table.md` and raw outputs into `args.out`.
pub fn run(args: RunArgs) -> anyhow::Result<Results> {
    let started = Instant::now();
    std::fs::create_dir_all(&args.out)?;
    let raw = args.out.join("raw");
    std::fs::create_dir_all(&raw)?;
    let mut sizes = Sizes::new(args.smoke);
    if let Some(clicks) = args.joiner_clicks {
        sizes.joiner_clicks = clicks;
    }
    let pin = Pinning::detect();
    for tool in ["clickhouse-server", "clickhouse-client"] {
        if Command::new("which")
            .arg(tool)
            .output()
            .map(|o| !o.status.success())
            .unwrap_or(true)
        {
            bail!("{tool} is not installed (scripts/bench installs it)");
        }
    }
    anyhow::ensure!(
        args.clickmatch.exists(),
        "{} is missing: build it with `cargo build --release -p clickmatch-cli`",
        args.clickmatch.display()
    );
    let work = tempfile::Builder::new()
        .prefix("clickmatch-bench-")
        .tempdir()?;
    let config_path = work.path().join("bench.toml");
    let mut config_text = traffic::config_toml(3);
    // Producer settings under study: CLICKMATCH_BENCH_KAFKA_PROPERTIES="linger.ms=1,...".
    if let Ok(properties) = std::env::var("CLICKMATCH_BENCH_KAFKA_PROPERTIES") {
        config_text.push_str("[kafka.properties]\n");
        for pair in properties.split(',').filter(|p| !p.trim().is_empty()) {
            let (key, value) = pair.split_once('=').with_context(|| {
                format!("CLICKMATCH_BENCH_KAFKA_PROPERTIES: {pair:?} is not key=value")
            })?;
            config_text.push_str(&format!("\"{}\" = \"{}\"\n", key.trim(), value.trim()));
        }
    }
    std::fs::write(&config_path, &config_text)?;
    std::fs::write(raw.join("bench.toml"), &config_text)?;
    let (clickhouse_dir, clickhouse_home) = clickhouse_home(work.path())?;
    let machine = format!(
        "{}clickhouse data: {}\n",
        machine(),
        clickhouse_dir.display()
    );
    std::fs::write(args.out.join("machine.txt"), &machine)?;
    let clickhouse = LocalServer::start(&clickhouse_dir, procs::free_port()?, procs::free_port()?)?;
    let mut bench = Bench {
        results: Results {
            started_utc: utc_now(),
            command: args.command.clone(),
            machine,
            pinning: pin.describe(),
            smoke: args.smoke,
            profiled: args.profile,
            runs: args.runs,
            ..Default::default()
        },
        me: std::env::current_exe()?,
        rt: tokio::runtime::Runtime::new()?,
        args,
        sizes,
        pin,
        work,
        raw,
        config_path,
        clickhouse,
        _clickhouse_home: clickhouse_home,
    };
    let phases: [(&str, Phase); 5] = [
        ("http", Bench::http),
        ("joiner", Bench::joiner),
        ("sink", Bench::sink),
        ("e2e", Bench::e2e),
        ("state", Bench::state),
    ];
    for (name, phase) in phases {
        if !wants(&bench.args, name) {
            continue;
        }
        eprintln!(
            "== {name} ({:.0} s elapsed)",
            started.elapsed().as_secs_f64()
        );
        if let Err(error) = phase(&mut bench) {
            eprintln!("!! {name}: {error:#}");
            bench.results.errors.push(format!("{name}: {error:#}"));
        }
        bench.save()?;
    }
    bench.results.elapsed_seconds = started.elapsed().as_secs_f64();
    bench.results.machine.push_str(&format!(
        "\nload average at the end: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    ));
    bench.save()?;
    let table = report::table(&bench.results);
    let out = bench.args.out.clone();
    std::fs::write(out.join("table.md"), &table)?;
    Ok(bench.results)
}

fn utc_now() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn sh(command: &str) -> String {
    Command::new("sh")
        .arg("-c")
        .arg(command)
        .output()
        .map(|o| {
            let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
            s.push_str(&String::from_utf8_lossy(&o.stderr));
            s.trim().to_string()
        })
        .unwrap_or_default()
}

/// What the machine is.
pub fn machine() -> String {
    let mut out = String::new();
    out.push_str(&format!("date: {}\n", utc_now()));
    out.push_str(&format!(
        "lscpu:\n{}\n",
        sh("lscpu | grep -E '^(Architecture|CPU\\(s\\)|Model name|Thread|Core|Socket|Hypervisor|L2|L3|CPU MHz|BogoMIPS)'")
    ));
    out.push_str(&format!("memory (free -m):\n{}\n", sh("free -m")));
    out.push_str(&format!("kernel: {}\n", sh("uname -srm")));
    out.push_str(&format!(
        "load average at the start: {}\n",
        sh("cat /proc/loadavg")
    ));
    out.push_str(&format!(
        "tools: {}; {}; {}; {}\n",
        sh("nginx -v 2>&1"),
        sh("wrk -v 2>&1 | head -1"),
        sh("clickhouse-client --version 2>&1 | head -1"),
        sh("rustc --version 2>/dev/null || true")
    ));
    out.push_str(&format!(
        "clickmatch: {}\n",
        sh("git rev-parse --short HEAD 2>/dev/null; git status --porcelain 2>/dev/null | wc -l | sed 's/$/ files changed/'")
            .replace('\n', ", ")
    ));
    out
}

impl Bench {
    fn save(&self) -> anyhow::Result<()> {
        std::fs::write(
            self.args.out.join("results.json"),
            serde_json::to_string_pretty(&self.results)?,
        )?;
        Ok(())
    }

    fn logs(&self) -> PathBuf {
        self.raw.clone()
    }

    fn clickhouse_url(&self) -> String {
        self.clickhouse.url()
    }

    fn settings(&self, database: &str) -> ClickHouseSettings {
        ClickHouseSettings::new(self.clickhouse_url(), database)
    }

    fn fresh_database(&self, database: &str) -> anyhow::Result<ClickHouseSettings> {
        let settings = self.settings(database);
        self.drop_database(database);
        self.rt.block_on(migrate(&settings)).context("migrate")?;
        Ok(settings)
    }

    fn drop_database(&self, database: &str) {
        let client = self.settings("default").client();
        let _ = self.rt.block_on(
            client
                .query(&format!("DROP DATABASE IF EXISTS {database}"))
                .execute(),
        );
    }

    /// Waits (at most `limit`) until the server merges nothing, so that one side's background
    /// merges do not take CPU from the other side's timed inserts.
    fn wait_for_merges(&self, limit: Duration) {
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

    fn start_broker(
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

    fn start_ingest(
        &self,
        name: &str,
        bootstrap: &str,
        cpus: Option<&str>,
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
            .env("CLICKMATCH_LOG", "warn");
        let proc = Proc::spawn(name, command, &self.logs())?;
        procs::wait_port(port, Duration::from_secs(20))?;
        Ok((proc, port))
    }

    #[allow(clippy::too_many_arguments)]
    fn start_joiner(
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
    fn wait_assigned(&self, joiner: &mut Proc, metrics: &str) -> anyhow::Result<Instant> {
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
    fn wait_committed(
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
    fn wait_progress(
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

    /// Phase http: redirects and postbacks against nginx, then the latency at half load.
    fn http(&mut self) -> anyhow::Result<()> {
        let s = self.sizes.clone();
        let pin = self.pin.clone();
        let (mut broker, bootstrap) =
            self.start_broker("http-broker", s.partitions, pin.load.as_deref())?;
        let (mut ingest, ingest_port) =
            self.start_ingest("http-ingest", &bootstrap, pin.service.as_deref())?;
        let profiler = self.profile("http-ingest", &ingest)?;
        let nginx_port = procs::free_port()?;
        let nginx = wrk::start_nginx(self.work.path(), nginx_port, pin.service.as_deref());
        let mut nginx = match nginx {
            Ok(n) => Some(n),
            Err(e) => {
                self.results
                    .errors
                    .push(format!("http: nginx could not start: {e:#}"));
                None
            }
        };

        let config = Traffic::bench_config();
        let mut traffic = Traffic::new(&config, 11);
        let clicks_file = self.work.path().join("clicks.txt");
        let postbacks_file = self.work.path().join("postbacks.txt");
        let lua = self.work.path().join("paths.lua");
        std::fs::write(&lua, wrk::LUA)?;
        let clicks: Vec<String> = (0..s.http_paths).map(|_| traffic.click_path()).collect();
        std::fs::write(&clicks_file, clicks.join("\n") + "\n")?;
        let postbacks = traffic::postback_paths(&mut traffic, s.http_paths, crate::unix_ms());
        std::fs::write(&postbacks_file, postbacks.join("\n") + "\n")?;
        std::fs::copy(&clicks_file, self.raw.join("http-clicks-sample.txt")).ok();
        std::fs::write(
            self.raw.join("http-postbacks-sample.txt"),
            postbacks[..postbacks.len().min(200)].join("\n") + "\n",
        )?;
        std::fs::write(
            self.raw.join("http-clicks-sample.txt"),
            clicks[..clicks.len().min(200)].join("\n") + "\n",
        )?;

        let nginx_url = format!("http://127.0.0.1:{nginx_port}");
        let ingest_url = format!("http://127.0.0.1:{ingest_port}");
        let load = pin.load.as_deref();
        let seconds = Duration::from_secs(s.http_seconds);
        let mut phase = HttpPhase {
            connections: s.connections,
            seconds_per_run: s.http_seconds,
            ..Default::default()
        };
        // One wrk run against `url`; with `server`, also the server's CPU per request.
        let wrk_run =
            |url: &str, paths: &Path, duration: Duration, raw: &Path, server: Option<&Proc>| {
                let cpu_before = server.and_then(Proc::cpu_seconds);
                let mut result = wrk::run(url, paths, &lua, s.connections, duration, load, raw)?;
                if let (Some(before), Some(after)) =
                    (cpu_before, server.and_then(Proc::cpu_seconds))
                {
                    result.server_cpu_us_per_request =
                        Some((after - before) * 1e6 / result.requests.max(1) as f64);
                }
                anyhow::Ok(result)
            };
        // Warm-up: connections, producer metadata, page cache.
        let warm = Duration::from_secs(1);
        let scratch = self.work.path().join("warmup.txt");
        if nginx.is_some() {
            wrk_run(&nginx_url, &clicks_file, warm, &scratch, None)?;
        }
        wrk_run(&ingest_url, &clicks_file, warm, &scratch, None)?;
        wrk_run(&ingest_url, &postbacks_file, warm, &scratch, None)?;
        for r in 0..self.args.runs {
            if nginx.is_some() {
                let raw = self.raw.join(format!("wrk-nginx-{r}.txt"));
                phase
                    .nginx
                    .push(wrk_run(&nginx_url, &clicks_file, seconds, &raw, None)?);
            }
            let raw = self.raw.join(format!("wrk-clicks-{r}.txt"));
            phase.clicks.push(wrk_run(
                &ingest_url,
                &clicks_file,
                seconds,
                &raw,
                Some(&ingest),
            )?);
            let raw = self.raw.join(format!("wrk-postbacks-{r}.txt"));
            phase.postbacks.push(wrk_run(
                &ingest_url,
                &postbacks_file,
                seconds,
                &raw,
                Some(&ingest),
            )?);
            ingest.check_running()?;
            let cpu = |w: Option<&wrk::WrkResult>| {
                w.and_then(|w| w.server_cpu_us_per_request)
                    .map_or("?".to_string(), |us| format!("{us:.1}"))
            };
            eprintln!(
                "   run {r}: nginx {:.0}/s, clicks {:.0}/s ({} µs CPU each), postbacks {:.0}/s ({} µs CPU each)",
                phase.nginx.last().map(|w| w.ok_rps).unwrap_or(0.0),
                phase.clicks.last().map(|w| w.ok_rps).unwrap_or(0.0),
                cpu(phase.clicks.last()),
                phase.postbacks.last().map(|w| w.ok_rps).unwrap_or(0.0),
                cpu(phase.postbacks.last()),
            );
        }
        let half = 0.5 * median(&phase.clicks.iter().map(|w| w.ok_rps).collect::<Vec<_>>());
        if half > 1.0 {
            for r in 0..self.args.runs {
                let run_half = |name: &str, port: u16| -> anyhow::Result<LoadResult> {
                    self.loadgen(&OpenLoop {
                        name,
                        port,
                        file: &clicks_file,
                        rate: half,
                        seconds: s.half_seconds,
                        warmup: 1,
                        connections: s.connections,
                        e2e: None,
                        cpus: load,
                    })
                };
                phase
                    .clicks_half_load
                    .push(run_half(&format!("half-load-clicks-{r}"), ingest_port)?);
                if nginx.is_some() {
                    phase
                        .nginx_half_load
                        .push(run_half(&format!("half-load-nginx-{r}"), nginx_port)?);
                }
            }
        }
        if let Ok(text) = kafka::scrape(&format!("127.0.0.1:{ingest_port}")) {
            std::fs::write(self.raw.join("http-ingest-metrics.txt"), &text)?;
            let samples = kafka::parse_metrics(&text);
            phase.clicks_failed =
                kafka::metric_sum(&samples, "clickmatch_ingest_clicks_total", Some("failed"));
            phase.produce_errors =
                kafka::metric_sum(&samples, "clickmatch_ingest_produce_errors_total", None);
        }
        self.results.http = Some(phase);
        self.finish_profile(profiler);
        ingest.stop(Duration::from_secs(15));
        if let Some(n) = nginx.as_mut() {
            n.stop(Duration::from_secs(5));
        }
        broker.stop(Duration::from_secs(5));
        Ok(())
    }

    /// `perf record` on `service` when `--profile` asked for it.
    fn profile(&self, name: &str, service: &Proc) -> anyhow::Result<Option<procs::Profiler>> {
        if !self.args.profile {
            return Ok(None);
        }
        procs::Profiler::attach(name, service.pid(), &self.raw).map(Some)
    }

    /// Ends a recording started by [`Bench::profile`]; a report that fails costs only itself.
    fn finish_profile(&mut self, profiler: Option<procs::Profiler>) {
        let Some(profiler) = profiler else { return };
        match profiler.finish() {
            Ok(report) => eprintln!("   profile: {}", report.display()),
            Err(e) => self.results.errors.push(format!("profile: {e:#}")),
        }
    }

    /// Runs the open-loop load generator as a process of its own; returns its result.
    fn loadgen(&self, load: &OpenLoop) -> anyhow::Result<LoadResult> {
        let (proc, json) = self.spawn_loadgen(load)?;
        self.finish_loadgen(proc, &json, load.seconds + load.warmup)
    }

    fn spawn_loadgen(&self, load: &OpenLoop) -> anyhow::Result<(Proc, PathBuf)> {
        let json = self.raw.join(format!("{}.json", load.name));
        let mut command = procs::command(&self.me, load.cpus);
        command
            .args(["loadgen", "http", "--addr"])
            .arg(format!("127.0.0.1:{}", load.port))
            .arg("--file")
            .arg(load.file)
            .arg("--rate")
            .arg(format!("{:.0}", load.rate))
            .arg("--seconds")
            .arg(load.seconds.to_string())
            .arg("--warmup-seconds")
            .arg(load.warmup.to_string())
            .arg("--connections")
            .arg(load.connections.to_string())
            .arg("--json-out")
            .arg(&json);
        if let Some((bootstrap, database)) = load.e2e {
            command
                .arg("--clickhouse-url")
                .arg(self.clickhouse_url())
                .arg("--database")
                .arg(database)
                .arg("--bootstrap")
                .arg(bootstrap);
        }
        Ok((Proc::spawn(load.name, command, &self.logs())?, json))
    }

    fn finish_loadgen(
        &self,
        mut proc: Proc,
        json: &Path,
        seconds: u64,
    ) -> anyhow::Result<LoadResult> {
        let status = proc.wait(Duration::from_secs(seconds + 120))?;
        anyhow::ensure!(
            status.success(),
            "{} failed: {}",
            proc.name,
            procs::tail(&proc.log, 20)
        );
        let text = std::fs::read_to_string(json)?;
        Ok(serde_json::from_str(&text)?)
    }

    /// Phase joiner: the joiner against a bare consumer over the same prefilled topics, then a
    /// rebuild of the state from the clicks topic.
    fn joiner(&mut self) -> anyhow::Result<()> {
        let s = self.sizes.clone();
        let pin = self.pin.clone();
        if let Some(pid) = self.clickhouse.pid() {
            procs::repin(pid, pin.load.as_deref());
        }
        let (mut broker, bootstrap) =
            self.start_broker("joiner-broker", s.partitions, pin.load.as_deref())?;
        let config = Traffic::bench_config();
        let mut traffic = Traffic::new(&config, 21);
        let now = crate::unix_ms();
        let plan = traffic.kafka_plan(s.joiner_clicks, 0.5, now - 7_200_000, 3_600_000);
        let clicks = plan
            .iter()
            .filter(|r| matches!(r, Record::Click(_)))
            .count() as u64;
        let postbacks = plan.len() as u64 - clicks;
        let bytes: u64 = plan
            .iter()
            .map(|r| r.encode(&config.account).2.len() as u64)
            .sum();
        let topics = [
            config.kafka.clicks_topic.as_str(),
            config.kafka.postbacks_topic.as_str(),
        ];
        self.rt.block_on(kafka::produce(
            &bootstrap,
            &config.account,
            &plan,
            topics[0],
            topics[1],
        ))?;
        drop(plan);
        let ends = kafka::retained_end_offsets(&bootstrap, &topics)?;
        let produced: i64 = ends.values().sum();
        anyhow::ensure!(
            produced as u64 == clicks + postbacks,
            "the broker holds {produced} records of {} produced",
            clicks + postbacks
        );
        let mut phase = JoinerPhase {
            partitions: s.partitions,
            clicks,
            postbacks,
            topic_bytes: bytes,
            max_partition_bytes: bytes / s.partitions.max(1) as u64,
            ..Default::default()
        };
        let mut last_group = String::new();
        let mut rebuild_clicks = 0u64;
        let mut last_db = String::new();
        for r in 0..self.args.runs {
            // The reference: same topics, same consumer settings, no processing.
            let json = self.raw.join(format!("bare-consumer-{r}.json"));
            let mut command = procs::command(&self.me, pin.service.as_deref());
            command
                .args(["consume", "--bootstrap", &bootstrap, "--group"])
                .arg(format!("bench-bare-{r}"))
                .arg("--topics")
                .arg(topics.join(","))
                .arg("--json-out")
                .arg(&json);
            let mut proc = Proc::spawn(&format!("bare-consumer-{r}"), command, &self.logs())?;
            let status = proc.wait(Duration::from_secs(300))?;
            anyhow::ensure!(
                status.success(),
                "bare consumer: {}",
                procs::tail(&proc.log, 20)
            );
            let bare: kafka::ConsumeResult =
                serde_json::from_str(&std::fs::read_to_string(&json)?)?;

            let group = format!("bench-join-{r}");
            let database = format!("bench_join_{r}");
            let settings = self.fresh_database(&database)?;
            let state_dir = self.work.path().join(format!("join-state-{r}"));
            let spawned = Instant::now();
            let (mut joiner, metrics) = self.start_joiner(
                &format!("joiner-{r}"),
                &bootstrap,
                &group,
                &database,
                &state_dir,
                pin.service.as_deref(),
            )?;
            let profiler = self.profile(&format!("joiner-{r}"), &joiner)?;
            let assigned = self.wait_assigned(&mut joiner, &metrics)?;
            let progress = self.wait_progress(
                &mut joiner,
                &bootstrap,
                &group,
                &ends,
                Duration::from_secs(s.joiner_cap_seconds),
            )?;
            let (done, peak) = (progress.at, progress.peak_rss);
            if r + 1 == self.args.runs {
                rebuild_clicks = progress
                    .committed
                    .iter()
                    .filter(|((topic, _), _)| topic == topics[0])
                    .map(|(_, o)| (*o).max(0) as u64)
                    .sum();
            }
            let cpu_seconds = joiner.cpu_seconds();
            if let Ok(text) = kafka::scrape(&metrics) {
                std::fs::write(self.raw.join(format!("joiner-{r}-metrics.txt")), text)?;
            }
            self.finish_profile(profiler);
            joiner.stop(Duration::from_secs(30));
            let rows = self.rt.block_on(crate::sink::count_rows(&settings))?;
            let seconds = (done - assigned).as_secs_f64();
            let run = JoinerRun {
                events: progress.events,
                complete: progress.complete,
                seconds,
                events_per_s: progress.events as f64 / seconds,
                join_seconds: (assigned - spawned).as_secs_f64(),
                peak_rss_bytes: peak,
                rows,
                cpu_seconds,
            };
            eprintln!(
                "   run {r}: bare consumer {:.0}/s, joiner {:.0}/s ({} of {} events in {:.1} s, {} rows, peak RSS {} MiB, CPU {})",
                bare.events_per_s,
                run.events_per_s,
                run.events,
                produced,
                run.seconds,
                rows,
                peak / (1024 * 1024),
                cpu_seconds.map_or("?".to_string(), |cpu| format!(
                    "{:.1} s = {:.1} µs per event",
                    cpu,
                    cpu * 1e6 / run.events.max(1) as f64
                )),
            );
            phase.bare.push(bare);
            phase.joiner.push(run);
            if r + 1 < self.args.runs {
                self.drop_database(&database);
                let _ = std::fs::remove_dir_all(&state_dir);
            } else {
                let _ = std::fs::remove_dir_all(&state_dir);
                last_group = group;
                last_db = database;
            }
        }
        // Rebuild: the last run's group (offsets committed), its state folder deleted.
        if !last_group.is_empty() {
            let state_dir = self.work.path().join("rebuild-state");
            let (mut joiner, metrics) = self.start_joiner(
                "joiner-rebuild",
                &bootstrap,
                &last_group,
                &last_db,
                &state_dir,
                pin.service.as_deref(),
            )?;
            let assigned = self.wait_assigned(&mut joiner, &metrics)?;
            let deadline = Instant::now() + Duration::from_secs(600);
            loop {
                joiner.check_running()?;
                let samples = kafka::parse_metrics(&kafka::scrape(&metrics).unwrap_or_default());
                let series = samples
                    .iter()
                    .filter(|(n, _, _)| n == "clickmatch_joiner_restore_progress_ratio")
                    .count();
                let min = kafka::metric_min(&samples, "clickmatch_joiner_restore_progress_ratio");
                if series as i32 >= s.partitions && min.is_some_and(|m| m >= 1.0) {
                    break;
                }
                if Instant::now() > deadline {
                    bail!("the rebuild did not finish within 600 s");
                }
                std::thread::sleep(Duration::from_millis(25));
            }
            let seconds = assigned.elapsed().as_secs_f64();
            phase.rebuild = Some(RebuildResult {
                clicks: rebuild_clicks,
                seconds,
                seconds_per_million_clicks: seconds / (rebuild_clicks.max(1) as f64 / 1e6),
            });
            joiner.stop(Duration::from_secs(30));
            self.drop_database(&last_db);
        }
        self.results.joiner = Some(phase);
        broker.stop(Duration::from_secs(5));
        if let Some(pid) = self.clickhouse.pid() {
            procs::repin(pid, None);
        }
        Ok(())
    }

    /// Phase sink: the joiner's ClickHouse sink against clickhouse-client, same rows.
    fn sink(&mut self) -> anyhow::Result<()> {
        let s = self.sizes.clone();
        let pin = self.pin.clone();
        if let Some(pid) = self.clickhouse.pid() {
            procs::repin(pid, pin.service.as_deref());
        }
        let batch_rows = Traffic::bench_config().joiner.batch_max_rows;
        let batch_rows = std::env::var("CLICKMATCH_JOINER_BATCH_MAX_ROWS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(batch_rows);
        let seed = 31;
        let batch = crate::sink::batch(s.sink_clicks, seed)?;
        let files = crate::sink::write_files(&batch, &self.work.path().join("sink-files"))?;
        let mut phase = SinkPhase {
            rows: batch.len(),
            batch_rows,
            ..Default::default()
        };
        drop(batch);
        for r in 0..self.args.runs {
            let database = format!("bench_sink_{r}");
            let settings = self.fresh_database(&database)?;
            let json = self.raw.join(format!("sink-{r}.json"));
            let mut command = procs::command(&self.me, pin.load.as_deref());
            command
                .args(["sink-write", "--clickhouse-url"])
                .arg(self.clickhouse_url())
                .arg("--database")
                .arg(&database)
                .arg("--clicks")
                .arg(s.sink_clicks.to_string())
                .arg("--seed")
                .arg(seed.to_string())
                .arg("--batch-rows")
                .arg(batch_rows.to_string())
                .arg("--json-out")
                .arg(&json);
            let mut proc = Proc::spawn(&format!("sink-{r}"), command, &self.logs())?;
            let status = proc.wait(Duration::from_secs(600))?;
            anyhow::ensure!(status.success(), "sink: {}", procs::tail(&proc.log, 20));
            let sink: crate::sink::InsertResult =
                serde_json::from_str(&std::fs::read_to_string(&json)?)?;
            let landed = self.rt.block_on(crate::sink::count_rows(&settings))?;
            anyhow::ensure!(
                landed as usize == phase.rows,
                "the sink wrote {landed} rows of {}",
                phase.rows
            );
            self.wait_for_merges(Duration::from_secs(30));

            let database = format!("bench_client_{r}");
            let settings = self.fresh_database(&database)?;
            let client = crate::sink::insert_with_client(
                self.clickhouse.tcp_port(),
                &database,
                &files,
                pin.load.as_deref(),
            )?;
            let landed = self.rt.block_on(crate::sink::count_rows(&settings))?;
            anyhow::ensure!(
                landed as usize == phase.rows,
                "clickhouse-client wrote {landed} rows of {}",
                phase.rows
            );
            self.wait_for_merges(Duration::from_secs(30));
            eprintln!(
                "   run {r}: sink {:.0} rows/s, clickhouse-client {:.0} rows/s",
                sink.rows_per_s, client.rows_per_s
            );
            phase.sink.push(sink);
            phase.client.push(client);
        }
        // Dropped only now: on ext4 without a journal (this machine), every file created within
        // a minute or more of many deletions in the same block group scans past the deleted
        // inodes (`recently_deleted`). A drop between runs made the next runs pay for it, in
        // proportion to the files they create: the sink's 31 inserts create ~5,000 part files,
        // clickhouse-client's 3 inserts ~170.
        for r in 0..self.args.runs {
            self.drop_database(&format!("bench_sink_{r}"));
            self.drop_database(&format!("bench_client_{r}"));
        }
        self.results.sink = Some(phase);
        if let Some(pid) = self.clickhouse.pid() {
            procs::repin(pid, None);
        }
        Ok(())
    }

    /// Phase e2e: postbacks through HTTP at a fixed rate, all services running (unpinned: they
    /// share the machine as they would share a small host), latency to a queryable row.
    fn e2e(&mut self) -> anyhow::Result<()> {
        let s = self.sizes.clone();
        let mut rate = if self.args.smoke {
            200.0
        } else {
            self.args.e2e_rate
        };
        let mut phase = E2ePhase::default();
        for attempt in 0..s.e2e_attempts {
            let result = self.e2e_attempt(attempt, rate);
            let a = match result {
                Ok(a) => a,
                Err(e) => {
                    self.results.e2e = Some(phase);
                    return Err(e);
                }
            };
            eprintln!(
                "   {:.0}/s: {:.0}/s accepted, probes p50 {:.0} ms p99 {:.0} ms, rows {}/{} (drain {:.1} s){}",
                rate,
                a.load.ok_rps,
                a.load.probes.as_ref().map(|p| p.p50_ms).unwrap_or(0.0),
                a.load.probes.as_ref().map(|p| p.p99_ms).unwrap_or(0.0),
                a.rows_landed,
                a.rows_expected,
                a.drain_seconds,
                if a.sustained { "" } else { ", not sustained" }
            );
            let sustained = a.sustained;
            let capacity = rate.min(a.load.ok_rps).min(a.landed_rps);
            phase.attempts.push(a);
            if sustained {
                break;
            }
            // Next: a little under what the slowest stage kept up with.
            rate = (0.8 * capacity).max(100.0).round();
        }
        self.results.e2e = Some(phase);
        Ok(())
    }

    fn e2e_attempt(&self, attempt: usize, rate: f64) -> anyhow::Result<E2eAttempt> {
        let s = &self.sizes;
        let (mut broker, bootstrap) =
            self.start_broker(&format!("e2e-broker-{attempt}"), s.partitions, None)?;
        let database = format!("bench_e2e_{attempt}");
        let settings = self.fresh_database(&database)?;
        let group = format!("bench-e2e-{attempt}");
        let state_dir = self.work.path().join(format!("e2e-state-{attempt}"));
        let (mut joiner, metrics) = self.start_joiner(
            &format!("e2e-joiner-{attempt}"),
            &bootstrap,
            &group,
            &database,
            &state_dir,
            None,
        )?;
        let (mut ingest, port) =
            self.start_ingest(&format!("e2e-ingest-{attempt}"), &bootstrap, None)?;
        self.wait_assigned(&mut joiner, &metrics)?;

        let config = Traffic::bench_config();
        let mut traffic = Traffic::new(&config, 41 + attempt as u64);
        let total = (rate * (s.e2e_seconds + s.e2e_warmup) as f64 * 1.05) as usize + 100;
        let now = crate::unix_ms();
        let (clicks, lines) = traffic::e2e_plan(&mut traffic, total, now - 600_000, 600_000);
        let records: Vec<Record> = clicks.into_iter().map(Record::Click).collect();
        self.rt.block_on(kafka::produce(
            &bootstrap,
            &config.account,
            &records,
            &config.kafka.clicks_topic,
            &config.kafka.postbacks_topic,
        ))?;
        drop(records);
        let ends = kafka::retained_end_offsets(&bootstrap, &[config.kafka.clicks_topic.as_str()])?;
        self.wait_committed(
            &mut joiner,
            &bootstrap,
            &group,
            &ends,
            Duration::from_secs(300),
        )?;
        let file = self.work.path().join(format!("e2e-{attempt}.txt"));
        std::fs::write(&file, lines.join("\n") + "\n")?;

        let client = settings.client();
        let count = || -> anyhow::Result<u64> {
            let c: u64 = self.rt.block_on(
                client
                    // assumeNotNull: scalar subqueries are Nullable on current ClickHouse.
                    .query(
                        "SELECT assumeNotNull((SELECT count() FROM conversions) \
                         + (SELECT count() FROM unattributed))",
                    )
                    .fetch_one(),
            )?;
            Ok(c)
        };
        let (mut proc, json) = self.spawn_loadgen(&OpenLoop {
            name: &format!("e2e-loadgen-{attempt}"),
            port,
            file: &file,
            rate,
            seconds: s.e2e_seconds,
            warmup: s.e2e_warmup,
            connections: s.e2e_connections,
            e2e: Some((&bootstrap, &database)),
            cpus: None,
        })?;
        // While the load runs: rows landed over time, to see what the pipeline kept up with.
        let spawned = Instant::now();
        let load_seconds = (s.e2e_seconds + s.e2e_warmup) as f64;
        let mut at_load_end: Option<u64> = None;
        while proc.check_running().is_ok() {
            std::thread::sleep(Duration::from_millis(250));
            if at_load_end.is_none() && spawned.elapsed().as_secs_f64() >= load_seconds + 0.1 {
                at_load_end = Some(count()?);
            }
        }
        let load = self.finish_loadgen(proc, &json, s.e2e_seconds + s.e2e_warmup)?;
        let ended = Instant::now();
        let landed_at_end = match at_load_end {
            Some(n) => n,
            None => count()?,
        };
        let landed_rps = landed_at_end as f64 / load_seconds;
        let expected = load.total_ok;
        let mut landed = count()?;
        while landed < expected && ended.elapsed() < Duration::from_secs(15) {
            std::thread::sleep(Duration::from_millis(100));
            landed = count()?;
        }
        let drain_seconds = ended.elapsed().as_secs_f64();
        let quantiles: Vec<f64> = self
            .rt
            .block_on(
                client
                    .query(
                        "SELECT quantilesExact(0.5, 0.99)(toFloat64(latency_ms)) FROM \
                         (SELECT latency_ms FROM conversions UNION ALL \
                          SELECT latency_ms FROM unattributed WHERE reason != 'unknown_click_id')",
                    )
                    .fetch_one(),
            )
            .unwrap_or_default();
        if let Ok(text) = kafka::scrape(&metrics) {
            std::fs::write(
                self.raw.join(format!("e2e-joiner-{attempt}-metrics.txt")),
                text,
            )?;
        }
        // Sustained: every postback accepted at the rate, every row landed, and no backlog
        // building up (a backlog shows as probe latencies of many seconds).
        let probes_p99 = load.probes.as_ref().map(|p| p.p99_ms).unwrap_or(f64::MAX);
        let sustained = load.ok_rps >= 0.95 * rate
            && landed >= expected
            && load.probes_missing == 0
            && load.errors == 0
            && probes_p99 <= 5_000.0;
        ingest.stop(Duration::from_secs(15));
        joiner.stop(Duration::from_secs(30));
        broker.stop(Duration::from_secs(5));
        self.drop_database(&database);
        let _ = std::fs::remove_dir_all(&state_dir);
        Ok(E2eAttempt {
            target_rps: rate,
            load,
            rows_expected: expected,
            rows_landed: landed,
            drain_seconds,
            landed_rps,
            column_p50_ms: quantiles.first().copied().unwrap_or(0.0),
            column_p99_ms: quantiles.get(1).copied().unwrap_or(0.0),
            sustained,
        })
    }

    /// Phase state: RSS and disk per click at two sizes, then a restore from the checkpoint in
    /// a fresh process.
    fn state(&mut self) -> anyhow::Result<()> {
        let s = self.sizes.clone();
        let cache_mib = Traffic::bench_config().joiner.state_cache_mib;
        let dir = self.work.path().join("state-bench").join("db");
        let json = self.raw.join("state-load.json");
        let mut command = Command::new(&self.me);
        command
            .args(["state-load", "--dir"])
            .arg(&dir)
            .arg("--partitions")
            .arg(s.state_partitions.to_string())
            .arg("--clicks")
            .arg(s.state_clicks.to_string())
            .arg("--marks")
            .arg(
                s.state_marks
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            )
            .arg("--cache-mib")
            .arg(cache_mib.to_string())
            .arg("--json-out")
            .arg(&json);
        let mut proc = Proc::spawn("state-load", command, &self.logs())?;
        let status = proc.wait(Duration::from_secs(900))?;
        anyhow::ensure!(
            status.success(),
            "state-load: {}",
            procs::tail(&proc.log, 20)
        );
        let marks: Vec<crate::state::StateMark> =
            serde_json::from_str(&std::fs::read_to_string(&json)?)?;

        let json = self.raw.join("state-restore.json");
        let mut command = Command::new(&self.me);
        command
            .args(["state-restore", "--dir"])
            .arg(&dir)
            .arg("--partitions")
            .arg(s.state_partitions.to_string())
            .arg("--cache-mib")
            .arg(cache_mib.to_string())
            .arg("--json-out")
            .arg(&json);
        let mut proc = Proc::spawn("state-restore", command, &self.logs())?;
        let status = proc.wait(Duration::from_secs(300))?;
        anyhow::ensure!(
            status.success(),
            "state-restore: {}",
            procs::tail(&proc.log, 20)
        );
        let restore: crate::state::RestoreResult =
            serde_json::from_str(&std::fs::read_to_string(&json)?)?;
        let _ = std::fs::remove_dir_all(self.work.path().join("state-bench"));
        self.results.state = Some(StatePhase {
            partitions: s.state_partitions,
            cache_mib,
            marks,
            restore: Some(restore),
        });
        Ok(())
    }
}
