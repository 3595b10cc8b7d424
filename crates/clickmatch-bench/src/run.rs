//! `clickmatch-bench run`: the whole table in one command. Services run as separate processes
//! (`clickmatch broker`, `clickmatch ingest`, `clickmatch join`, nginx, clickhouse-server),
//! load generators as processes of their own, pinned with taskset where the figure is a ratio
//! of throughputs (service on CPU 0, load generator, broker and ClickHouse on CPU 1).

mod e2e;
mod enrich;
mod http;
mod joiner;
mod loadgen;
mod machine;
mod services;
mod sink;
mod state;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};
use clickmatch_testbed::LocalServer;

use crate::procs::{self, Pinning};
use crate::report::{self, Results};
use crate::traffic;
pub use machine::machine;
use machine::utc_now;

/// One phase of the benchmark.
type Phase = fn(&mut Bench) -> anyhow::Result<()>;

/// What to run.
#[derive(Debug, Clone)]
pub struct RunArgs {
    pub out: PathBuf,
    pub smoke: bool,
    pub runs: usize,
    /// Phases to run (empty: all): http, enrich, joiner, sink, e2e, state.
    pub only: Vec<String>,
    pub clickmatch: PathBuf,
    /// First rate tried for the end-to-end latency (postbacks/s).
    pub e2e_rate: f64,
    /// Overrides the clicks prefilled for the joiner phase.
    pub joiner_clicks: Option<u64>,
    /// Records the services under study with `perf` (see [`procs::Profiler`]).
    pub profile: bool,
    /// The ClickHouse the joiner, sink and end-to-end phases write to.
    pub engine: clickmatch_testbed::local_server::Engine,
    pub command: String,
}

/// Sizes of one run.
#[derive(Debug, Clone)]
struct Sizes {
    http_seconds: u64,
    http_paths: usize,
    /// Networks in the enrich phase's synthetic City and ASN databases.
    enrich_networks: u32,
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
                enrich_networks: 2_000,
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
                enrich_networks: 200_000,
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
                // The performance goal is set at 50 M clicks (about 5 minutes to load here).
                state_clicks: 50_000_000,
                state_marks: vec![1_000_000, 10_000_000, 50_000_000],
                state_partitions: 8,
            }
        }
    }
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

/// The server's `version()`, or why it could not be read.
fn clickhouse_version(url: &str) -> String {
    match clickmatch_testbed::local_server::query_blocking(
        url,
        "SELECT version()",
        std::time::Duration::from_secs(10),
    ) {
        Ok((200, body)) => body.trim().to_string(),
        Ok((status, body)) => format!("unknown (HTTP {status}: {})", body.trim()),
        Err(error) => format!("unknown ({error})"),
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
    let clickhouse = LocalServer::start_with(
        args.engine,
        &clickhouse_dir,
        procs::free_port()?,
        procs::free_port()?,
    )?;
    let server = format!(
        "{} ({:?})",
        clickhouse_version(&clickhouse.url()),
        args.engine
    );
    let machine = format!(
        "{}clickhouse server: {server}\nclickhouse data: {}\n",
        machine(),
        clickhouse_dir.display()
    );
    std::fs::write(args.out.join("machine.txt"), &machine)?;
    let mut bench = Bench {
        results: Results {
            started_utc: utc_now(),
            command: args.command.clone(),
            machine,
            pinning: pin.describe(),
            clickhouse: server,
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
    let phases: [(&str, Phase); 6] = [
        ("http", Bench::http),
        ("enrich", Bench::enrich),
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

impl Bench {
    fn save(&self) -> anyhow::Result<()> {
        std::fs::write(
            self.args.out.join("results.json"),
            serde_json::to_string_pretty(&self.results)?,
        )?;
        Ok(())
    }
}
