//! `clickmatch-bench`: the benchmark harness and its load generators.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use clickmatch_bench::{httpload, kafka, report, reports, run, sink, state, traffic};
use clickmatch_core::subs::SubSet;

/// Benchmarks clickmatch against references measured in the same run (nginx, a bare rdkafka
/// consumer, clickhouse-client) and prints one table. `scripts/bench` builds and runs it.
#[derive(Debug, Parser)]
#[command(name = "clickmatch-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// The whole table: every phase, several runs each, medians and ratios.
    Run {
        /// Folder for results.json, table.md, machine.txt and raw outputs.
        #[arg(long)]
        out: PathBuf,
        /// Tiny sizes, one run: proves the harness works (CI), figures mean nothing.
        #[arg(long)]
        smoke: bool,
        /// Runs per figure (medians are reported).
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Only these phases (comma-separated): http, joiner, sink, e2e, state.
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
        /// The clickmatch binary (default: next to this one).
        #[arg(long)]
        clickmatch: Option<PathBuf>,
        /// First postback rate tried for the end-to-end latency.
        #[arg(long, default_value_t = 10_000.0)]
        e2e_rate: f64,
        /// Clicks prefilled for the joiner phase (default 200,000; postbacks for half of them).
        /// The broker keeps ~5 MiB per partition: about 330,000 clicks fit in 32 partitions.
        #[arg(long)]
        joiner_clicks: Option<u64>,
        /// Record ingest (the http phase) and each joiner run with `perf record` into
        /// raw/NAME.perf.data, with their top functions in raw/NAME.perf.txt. The sampling
        /// slows them: a profiled run's figures are for finding causes, not for the table.
        #[arg(long)]
        profile: bool,
        /// The ClickHouse of the joiner, sink and end-to-end phases: `server` (Debian's 18.16)
        /// or `chdb` (26.9; chdb-core importable by python3). The sink's reference,
        /// Debian's `clickhouse-client`, speaks the native protocol to either.
        #[arg(long, default_value = "server")]
        engine: clickmatch_testbed::local_server::Engine,
    },
    /// Realistic traffic: request files, HTTP load, or records straight to Kafka.
    #[command(subcommand)]
    Loadgen(Loadgen),
    /// The reference consumer: a bare StreamConsumer in a group reading to the end offsets.
    Consume {
        #[arg(long)]
        bootstrap: String,
        #[arg(long)]
        group: String,
        #[arg(long, value_delimiter = ',')]
        topics: Vec<String>,
        #[arg(long, default_value_t = 300)]
        timeout_secs: u64,
        #[arg(long)]
        json_out: Option<PathBuf>,
    },
    /// Writes benchmark rows through the joiner's ClickHouse sink and times it.
    SinkWrite {
        #[arg(long)]
        clickhouse_url: String,
        #[arg(long)]
        database: String,
        #[arg(long)]
        clicks: u64,
        #[arg(long, default_value_t = 31)]
        seed: u64,
        #[arg(long)]
        batch_rows: usize,
        #[arg(long)]
        json_out: Option<PathBuf>,
    },
    /// Loads synthetic clicks into the real state store and measures RSS and disk.
    StateLoad {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 8)]
        partitions: i32,
        #[arg(long)]
        clicks: u64,
        #[arg(long, value_delimiter = ',')]
        marks: Vec<u64>,
        #[arg(long, default_value_t = 64)]
        cache_mib: u64,
        #[arg(long, default_value_t = 20_000)]
        commit_every: u64,
        /// The subs conversions carry (`sub1,sub3`; `none` for none), to measure what keeping
        /// them costs; the configuration's default (sub1) without it.
        #[arg(long)]
        conversion_subs: Option<String>,
        #[arg(long)]
        json_out: Option<PathBuf>,
    },
    /// Restores the state written by state-load from its checkpoints and times it.
    StateRestore {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 8)]
        partitions: i32,
        #[arg(long, default_value_t = 64)]
        cache_mib: u64,
        #[arg(long)]
        json_out: Option<PathBuf>,
    },
    /// Report latency: ten typical reports over generated clicks and conversions on one
    /// ClickHouse engine (a server of its own in a temporary folder), each run --runs times;
    /// writes reports-ENGINE.json (every sample) and reports-ENGINE.md into --out.
    Reports {
        #[arg(long)]
        out: PathBuf,
        /// `server` (Debian's 18.16) or `chdb` (26.9; chdb-core importable by python3).
        #[arg(long, default_value = "server")]
        engine: clickmatch_testbed::local_server::Engine,
        #[arg(long, default_value_t = 10_000_000)]
        clicks: u64,
        #[arg(long, default_value_t = 1_000_000)]
        conversions: u64,
        #[arg(long, default_value_t = 20)]
        runs: usize,
        /// 20,000 clicks, 2,000 conversions, one run: proves the harness works (CI).
        #[arg(long)]
        smoke: bool,
        /// Use this running ClickHouse (and --database) instead of starting one; the data is
        /// generated there only when its `clicks` table is empty.
        #[arg(long)]
        clickhouse_url: Option<String>,
        #[arg(long, default_value = "bench_reports")]
        database: String,
        /// Conversions that carry no sub, as a joiner that carried none wrote them: reports
        /// using a sub join them to their clicks (the figures before they carried them).
        #[arg(long)]
        conversions_without_subs: bool,
    },
    /// Prints the benchmark account's configuration (TOML).
    Config,
}

#[derive(Debug, Subcommand)]
enum Loadgen {
    /// Writes request paths: `clicks` (GET /c/...) or `postbacks` (every dialect, 1.5 %
    /// retries, 3 % broken).
    Paths {
        #[arg(long)]
        kind: String,
        #[arg(long)]
        count: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long)]
        out: PathBuf,
    },
    /// Open-loop HTTP load at a fixed rate from a paths file; with --clickhouse-url, probes
    /// postbacks until their rows are queryable.
    Http {
        #[arg(long)]
        addr: String,
        #[arg(long)]
        file: PathBuf,
        #[arg(long)]
        rate: f64,
        #[arg(long)]
        seconds: u64,
        #[arg(long, default_value_t = 1)]
        warmup_seconds: u64,
        #[arg(long, default_value_t = 64)]
        connections: usize,
        #[arg(long)]
        clickhouse_url: Option<String>,
        #[arg(long, default_value = "clickmatch")]
        database: String,
        #[arg(long)]
        bootstrap: Option<String>,
        #[arg(long)]
        json_out: Option<PathBuf>,
    },
    /// Produces clicks and postbacks straight to Kafka, as ingest would (1 % of postbacks
    /// before their click).
    Kafka {
        #[arg(long)]
        bootstrap: String,
        #[arg(long)]
        clicks: u64,
        #[arg(long, default_value_t = 0.5)]
        postback_ratio: f64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

fn emit<T: serde::Serialize>(value: &T, out: Option<&PathBuf>) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    match out {
        Some(path) => std::fs::write(path, text).with_context(|| path.display().to_string())?,
        None => println!("{text}"),
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Run {
            out,
            smoke,
            runs,
            only,
            clickmatch,
            e2e_rate,
            joiner_clicks,
            profile,
            engine,
        } => {
            let clickmatch = match clickmatch {
                Some(path) => path,
                None => std::env::current_exe()?
                    .parent()
                    .context("binary folder")?
                    .join("clickmatch"),
            };
            let command = std::env::args().collect::<Vec<_>>().join(" ");
            let results = run::run(run::RunArgs {
                out: out.clone(),
                smoke,
                runs: if smoke { 1 } else { runs.max(1) },
                only,
                clickmatch,
                e2e_rate,
                joiner_clicks,
                profile,
                engine,
                command,
            })?;
            println!("\n{}", report::table(&results));
            println!(
                "pinning: {}\nresults: {} ({:.0} s)",
                results.pinning,
                out.display(),
                results.elapsed_seconds
            );
            if !results.errors.is_empty() {
                for error in &results.errors {
                    eprintln!("error: {error}");
                }
                std::process::exit(1);
            }
        }
        Cmd::Loadgen(Loadgen::Paths {
            kind,
            count,
            seed,
            out,
        }) => {
            let config = traffic::Traffic::bench_config();
            let mut t = traffic::Traffic::new(&config, seed);
            let lines: Vec<String> = match kind.as_str() {
                "clicks" => (0..count).map(|_| t.click_path()).collect(),
                "postbacks" => traffic::postback_paths(&mut t, count, clickmatch_bench::unix_ms()),
                other => anyhow::bail!("--kind clicks|postbacks, not {other}"),
            };
            std::fs::write(out, lines.join("\n") + "\n")?;
        }
        Cmd::Loadgen(Loadgen::Http {
            addr,
            file,
            rate,
            seconds,
            warmup_seconds,
            connections,
            clickhouse_url,
            database,
            bootstrap,
            json_out,
        }) => {
            let text = std::fs::read_to_string(&file)?;
            let lines = text
                .lines()
                .filter(|l| !l.is_empty())
                .map(httpload::Line::parse)
                .collect();
            let config = traffic::Traffic::bench_config();
            let e2e = clickhouse_url.map(|url| httpload::E2e {
                clickhouse_url: url,
                database,
                bootstrap_servers: bootstrap
                    .unwrap_or_else(|| config.kafka.bootstrap_servers.clone()),
                clicks_topic: config.kafka.clicks_topic.clone(),
                // ~1,500 probes in a 15 s run: with one every 50 ms (~300), the p99 was the
                // third or fourth slowest probe, and a single slow insert moved it.
                probe_every: Duration::from_millis(10),
                late_click_delay: Duration::from_millis(300),
            });
            let result = httpload::run(httpload::LoadSpec {
                addr,
                lines,
                rate,
                connections,
                warmup: Duration::from_secs(warmup_seconds),
                duration: Duration::from_secs(seconds),
                e2e,
            })?;
            emit(&result, json_out.as_ref())?;
        }
        Cmd::Loadgen(Loadgen::Kafka {
            bootstrap,
            clicks,
            postback_ratio,
            seed,
        }) => {
            let config = traffic::Traffic::bench_config();
            let mut t = traffic::Traffic::new(&config, seed);
            let now = clickmatch_bench::unix_ms();
            let plan = t.kafka_plan(clicks, postback_ratio, now - 3_600_000, 3_000_000);
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(kafka::produce(
                &bootstrap,
                &config.account,
                &plan,
                &config.kafka.clicks_topic,
                &config.kafka.postbacks_topic,
            ))?;
            println!("produced {} records", plan.len());
        }
        Cmd::Consume {
            bootstrap,
            group,
            topics,
            timeout_secs,
            json_out,
        } => {
            let runtime = tokio::runtime::Runtime::new()?;
            let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
            let result = runtime.block_on(kafka::consume(
                &bootstrap,
                &group,
                &topics,
                Duration::from_secs(timeout_secs),
            ))?;
            emit(&result, json_out.as_ref())?;
            // Leave without waiting for librdkafka's close (rust-rdkafka #509).
            std::process::exit(0);
        }
        Cmd::SinkWrite {
            clickhouse_url,
            database,
            clicks,
            seed,
            batch_rows,
            json_out,
        } => {
            let batch = sink::batch(clicks, seed)?;
            sink::trim_heap();
            let settings = clickmatch_clickhouse::ClickHouseSettings::new(clickhouse_url, database);
            let runtime = tokio::runtime::Runtime::new()?;
            let result = runtime.block_on(sink::write_with_sink(&settings, &batch, batch_rows))?;
            emit(&result, json_out.as_ref())?;
        }
        Cmd::StateLoad {
            dir,
            partitions,
            clicks,
            marks,
            cache_mib,
            commit_every,
            conversion_subs,
            json_out,
        } => {
            let conversion_subs = conversion_subs
                .map(|list| {
                    let names = list.split(',').filter(|n| !n.is_empty() && *n != "none");
                    SubSet::parse(names).map_err(|name| {
                        anyhow::anyhow!("--conversion-subs: {name:?} is not sub1..sub10")
                    })
                })
                .transpose()?;
            let marks = state::load(
                &dir,
                &state::StateSpec {
                    partitions,
                    clicks,
                    marks,
                    cache_mib,
                    commit_every,
                    conversion_subs,
                },
            )?;
            emit(&marks, json_out.as_ref())?;
        }
        Cmd::StateRestore {
            dir,
            partitions,
            cache_mib,
            json_out,
        } => {
            let result = state::restore(&dir, partitions, cache_mib)?;
            emit(&result, json_out.as_ref())?;
        }
        Cmd::Reports {
            out,
            engine,
            clicks,
            conversions,
            runs,
            smoke,
            clickhouse_url,
            database,
            conversions_without_subs,
        } => {
            let spec = reports::ReportsSpec {
                engine,
                clicks: if smoke { 20_000 } else { clicks },
                conversions: if smoke {
                    2_000
                } else {
                    conversions.min(clicks)
                },
                runs: if smoke { 1 } else { runs.max(1) },
                out,
                clickhouse: clickhouse_url.map(|url| (url, database)),
                conversions_carry_subs: !conversions_without_subs,
            };
            let runtime = tokio::runtime::Runtime::new()?;
            let result = runtime.block_on(reports::run(&spec))?;
            println!("{}", reports::table(&result));
        }
        Cmd::Config => print!("{}", traffic::config_toml(3)),
    }
    Ok(())
}
