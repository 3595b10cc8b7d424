//! Command-line parsing and the commands themselves.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use clickmatch_cli::pipeline::{clickhouse_settings, Pipeline, Roles};
use clickmatch_cli::reload::{self, Reloader};
use clickmatch_cli::{demo, dev_report, money, report};
use clickmatch_clickhouse::migrate;
use clickmatch_clickhouse::report::{ReportError, ReportFailure, ReportParams};
use clickmatch_config::{process_env, Config};
use clickmatch_testbed::local_server::Engine;
use clickmatch_testbed::{ping, LocalBroker, LocalServer};

/// clickmatch attributes ad conversions to clicks: ingest records clicks and raw postbacks into
/// Kafka, the joiner matches them within each offer's attribution window and writes attributed
/// and unattributed conversions (with the precise reason) to ClickHouse.
///
/// Configuration: one TOML file (--config or CLICKMATCH_CONFIG; see config/demo.toml) plus
/// CLICKMATCH_<SECTION>_<KEY> environment overrides, e.g. CLICKMATCH_CLICKHOUSE_URL.
/// Enrichment: [enrichment] geoip_db and asn_db (MaxMind-format .mmdb files you supply, replaced
/// in place without a restart) and user_agent give each click country, region, city, ASN,
/// device type, OS, browser and a bot flag (CLICKMATCH_ENRICHMENT_GEOIP_DB, …).
/// Logs: CLICKMATCH_LOG (e.g. `info`, `clickmatch_joiner=debug`).
/// Hot reload: `ingest`, `join`, `outbound` and `dev --serve --config FILE` re-read the file on
/// SIGHUP or when it changes; an invalid file is refused (logged) and the running one stays.
#[derive(Debug, Parser)]
#[command(name = "clickmatch", version, about, long_about)]
pub struct Cli {
    /// Configuration file (TOML).
    #[arg(long, global = true, env = "CLICKMATCH_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The embedded default: in-process broker, local ClickHouse, ingest and joiner in one
    /// process, demo traffic through real HTTP, then a report read back from ClickHouse. When
    /// [enrichment] names no database, dev writes demo .mmdb files into --data-dir/enrichment,
    /// trusts X-Forwarded-For from loopback, and its clicks come from five countries on
    /// desktops, phones and tablets.
    Dev(DevArgs),
    /// Serve the HTTP ingest (clicks, postbacks, metrics).
    Ingest {
        /// Listen address; overrides ingest.listen.
        #[arg(long)]
        listen: Option<String>,
    },
    /// Run the stream joiner (consumer group member) writing to ClickHouse.
    Join {
        /// Also serve /metrics and /healthz on this address.
        #[arg(long)]
        metrics_listen: Option<String>,
    },
    /// Run the outbound dispatcher: fires each attributed conversion's traffic-source postback
    /// (the campaign's postback_url) from the outbound topic, with retries, backoff and an
    /// Idempotency-Key header, recording every attempt in ClickHouse (outbound_deliveries).
    /// SIGHUP (or a change of the file) reloads campaigns, as for ingest and join.
    Outbound {
        /// Also serve /metrics and /healthz on this address.
        #[arg(long)]
        metrics_listen: Option<String>,
    },
    /// Create or upgrade the ClickHouse database and tables (idempotent), and record the
    /// account currency and rate age ([account] currency, max_rate_age_days) for the views.
    Migrate {
        /// Overrides clickhouse.url.
        #[arg(long)]
        clickhouse_url: Option<String>,
    },
    /// Exchange rates: `rates import FILE` loads the ECB's euro reference rates.
    Rates {
        #[command(subcommand)]
        command: RatesCommand,
    },
    /// Spend that is not per click: `costs import FILE.csv`.
    Costs {
        #[command(subcommand)]
        command: CostsCommand,
    },
    /// Compare a network's conversion export (CSV) with clickmatch's conversions.
    ///
    /// Conversions are matched by transaction ID, else by click ID. Lists matched conversions
    /// whose payout or status differ, conversions only in the export (with what clickmatch did with their click ID:
    /// unattributed and why, click recorded but never posted back, or never received) and
    /// conversions only here. Payouts are compared in the export's currency against the payout
    /// as the postback sent it. Exit status: 0 when the discrepancies (differences + only in
    /// the network + only here) are at most --max-differences, 1 when more (for cron), 2 when
    /// the comparison could not be made (bad option or export, ClickHouse unreachable).
    Reconcile(ReconcileArgs),
    /// Decide stored unattributed postbacks again under the current configuration.
    ///
    /// After a route was added, an alias fixed, foreign IDs accepted (reload the joiner
    /// first). A dry run by default: a before → after table by reason and hint, predicted against the clicks
    /// and conversions in ClickHouse. --apply sends them through the postbacks topic with their
    /// original postback ID and receive time; the joiner decides them like any postback (the
    /// window from the original time, dedup against existing conversions; applying twice
    /// changes nothing) and the table shows its decisions. Attributed ones leave
    /// unattributed_current and the figures; unattributed keeps the history.
    Reprocess(clickmatch_cli::recovery::ReprocessCli),
    /// Send conversions a network reported but never posted back, from a CSV file.
    ///
    /// CSV columns click_id, payout, currency, txid, event, status, time (click_id and time
    /// required; time as 2026-12-04 13:05:00 UTC, RFC 3339 or Unix seconds), through the same
    /// path as postbacks. A dry run by default with a result per line; --apply sends them
    /// and prints the joiner's decision per line. A bad line refuses the whole file
    /// (file:line:column named): nothing partial is sent. Uploading a line again changes
    /// nothing. Exit status 1 when a line is not attributed.
    Upload {
        /// The CSV file.
        file: PathBuf,
        /// Route whose parameters and rules apply (`global` for /postback, the default).
        #[arg(long)]
        route: Option<String>,
        /// Send the conversions (default: dry run).
        #[arg(long)]
        apply: bool,
        /// How long --apply waits for the joiner's decisions.
        #[arg(long, default_value_t = 30)]
        timeout_secs: u64,
        /// Overrides clickhouse.url.
        #[arg(long)]
        clickhouse_url: Option<String>,
    },
    /// A report: clicks, conversions, revenue, cost, profit, ROI, CR, EPC and unattributed
    /// postbacks grouped by any dimensions, in any IANA time zone, read from the base tables
    /// (docs/reports.md). Example: `clickmatch report --group-by campaign,sub1,country --from
    /// 2026-12-01 --to 2026-12-07 --tz Europe/Berlin --filter country=DE --sort -revenue`
    Report(ReportArgs),
    /// A standalone local Kafka-protocol broker (librdkafka's mock cluster) on a fixed port,
    /// with clickmatch's topics created, for multi-process local runs and tests. SIGUSR1 takes
    /// it down (connections closed and refused), SIGUSR2 brings it back.
    Broker {
        #[arg(long, default_value = "127.0.0.1:9092")]
        listen: String,
        /// Partitions of each topic (both topics get the same count).
        #[arg(long, default_value_t = 4)]
        partitions: i32,
    },
    /// Run a ClickHouse server in a folder of its own on loopback until interrupted (used by
    /// the test suite and `dev`).
    LocalClickhouse {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 8123)]
        http_port: u16,
        #[arg(long, default_value_t = 9000)]
        tcp_port: u16,
        /// `server`: a clickhouse-server binary (Debian's 18.16). `chdb`: ClickHouse 26.9, the
        /// clickhouse-local of PyPI's chdb-core (scripts/test installs the pinned version) run
        /// by python3, for testing on a current release; no Keeper.
        #[arg(long, default_value = "server")]
        engine: Engine,
    },
    /// Print the postback URLs to paste into a network: the global one and each route's, with
    /// clickmatch's generic macros; with --network, the exact URL for that network's dashboard
    /// (its own macros in the route's parameters; notes on stderr).
    PostbackUrl {
        /// Only this route (`global` for /postback); with --network: this route, else global.
        #[arg(long)]
        route: Option<String>,
        /// Public base URL; overrides ingest.public_url.
        #[arg(long)]
        base_url: Option<String>,
        /// Network preset: tune (hasoffers), cake, everflow, affise, impact, adcombo,
        /// maxbounty, awin, admitad, clickbank, voluum, redtrack, keitaro, binom, prosper202,
        /// clickflare.
        #[arg(long)]
        network: Option<String>,
    },
    /// Print an offer link with clickmatch's {click_id} placed in the sub-parameter the network
    /// echoes back (aff_sub for TUNE, s2 for CAKE, ...): the URL for a campaign.
    OfferUrl {
        /// Network preset (see postback-url --help).
        #[arg(long)]
        network: String,
        /// The offer link from the network.
        #[arg(long)]
        url: String,
    },
    /// Fire one test click (marked is_test) and one postback, exactly as the offer's network
    /// would, through a running deployment; report where it landed in ClickHouse, or why not.
    /// Exit status 0 only when the conversion landed attributed as expected.
    TestConversion {
        /// The offer to test (a campaign for it makes the click).
        #[arg(long)]
        offer: String,
        /// Route to post to (`global` for /postback); default: the offer's route, else global.
        #[arg(long)]
        route: Option<String>,
        /// Network preset; default: the offer's `network`.
        #[arg(long)]
        network: Option<String>,
        /// Ingest base URL; overrides ingest.public_url.
        #[arg(long)]
        ingest_url: Option<String>,
        /// Overrides clickhouse.url.
        #[arg(long)]
        clickhouse_url: Option<String>,
        /// How long to wait for the row in ClickHouse.
        #[arg(long, default_value_t = 30)]
        timeout_secs: u64,
    },
}

#[derive(Debug, Subcommand)]
enum RatesCommand {
    /// Load an ECB euro reference-rate file into exchange_rates: eurofxref-daily.xml,
    /// eurofxref-hist.xml, eurofxref-hist-90d.xml, eurofxref.csv or eurofxref-hist.csv.
    /// Idempotent; a bad line refuses the whole file (file:line:column named).
    Import {
        file: PathBuf,
        /// Overrides clickhouse.url.
        #[arg(long)]
        clickhouse_url: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum CostsCommand {
    /// Load a cost CSV (columns `date` or `hour`, `campaign`, `amount`, `currency`, optional
    /// `source` and `sub1`…`sub10`) into costs. Importing a campaign and period again replaces
    /// the earlier import; a bad line refuses the whole file (file:line:column named).
    Import {
        file: PathBuf,
        /// Overrides clickhouse.url.
        #[arg(long)]
        clickhouse_url: Option<String>,
    },
}

#[derive(Debug, clap::Args)]
struct ReconcileArgs {
    /// The network's conversion export, CSV with a header line.
    #[arg(long, value_name = "FILE.csv")]
    report: PathBuf,
    /// The export's network: tune (hasoffers), everflow or cake, whose export columns are
    /// known (README, "Reconciliation"). Without it: clickmatch's own columns click_id, txid,
    /// payout, currency, status, time, event.
    #[arg(long)]
    network: Option<String>,
    /// Columns of the export, over the network's: FIELD=COLUMN,… with FIELD one of click_id,
    /// txid, payout, currency, status, time, event, e.g. click_id=aff_sub2,payout=Revenue.
    #[arg(long, value_name = "FIELD=COLUMN,…")]
    columns: Option<String>,
    /// Start of the period whose conversions here are compared (default: the export's first
    /// conversion time); a time in --tz, or with an offset.
    #[arg(long)]
    from: Option<String>,
    /// End of the period (default: the export's last conversion time plus an hour).
    #[arg(long)]
    to: Option<String>,
    /// Time zone of the export's times without an offset (the account's zone the network
    /// exported in), an IANA name.
    #[arg(long, default_value = "UTC")]
    tz: String,
    /// Only these offers' conversions can be "only here" (repeatable); default: the offers the
    /// configuration gives --network, else every offer.
    #[arg(long = "offer", value_name = "OFFER")]
    offers: Vec<String>,
    /// Payouts further apart than this, in the export's currency, differ.
    #[arg(long, default_value = "0.01")]
    tolerance: rust_decimal::Decimal,
    /// Discrepancies allowed before the exit status is 1.
    #[arg(long, default_value_t = 0)]
    max_differences: usize,
    /// `table` (default) or `json`: {"matched", "differences", "only_network", "only_here", …}.
    #[arg(long, value_enum, default_value_t = ReconcileFormat::Table)]
    format: ReconcileFormat,
    /// Overrides clickhouse.url.
    #[arg(long)]
    clickhouse_url: Option<String>,
}

#[derive(Debug, clap::Args)]
struct ReportArgs {
    /// Dimensions, comma-separated: campaign, source, offer, network (the offer's, from the
    /// configuration), route, event, status, sub1…sub10, country, device_type, os, browser,
    /// hour, day (at most 6).
    #[arg(long, default_value = "campaign")]
    group_by: String,
    /// Start (inclusive): a day YYYY-MM-DD in --tz, or an RFC 3339 time. Default: the start of
    /// the day six days ago (seven days with today).
    #[arg(long)]
    from: Option<String>,
    /// End (exclusive): a day YYYY-MM-DD in --tz counts whole, or an RFC 3339 time. Default:
    /// now. At most 93 days after --from.
    #[arg(long)]
    to: Option<String>,
    /// IANA time zone of the days and hours (UTC, Europe/Berlin, Asia/Kolkata, …).
    #[arg(long, default_value = "UTC")]
    tz: String,
    /// DIMENSION=VALUE: only rows with that value (exact; an empty value matches rows without
    /// one). Repeat it: values of one dimension match any, different dimensions all.
    #[arg(long, value_name = "DIMENSION=VALUE")]
    filter: Vec<String>,
    /// Column to sort by, `-` first for descending: a figure (clicks, conversions, revenue,
    /// cost, profit, roi, cr, epc, unattributed, unvalued) or a grouped dimension.
    #[arg(long, default_value = "-revenue", allow_hyphen_values = true)]
    sort: String,
    /// At most this many rows (1 to 10000); the totals cover every row.
    #[arg(long, default_value_t = 100)]
    limit: usize,
    #[arg(long, value_enum, default_value = "table")]
    format: report::Format,
    /// Overrides clickhouse.url.
    #[arg(long)]
    clickhouse_url: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ReconcileFormat {
    Table,
    Json,
}

#[derive(Debug, clap::Args)]
struct DevArgs {
    /// Keep the pipeline running after the report, for manual tries (Ctrl-C stops it).
    #[arg(long)]
    serve: bool,
    /// HTTP address of ingest.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// ClickHouse to use; when nothing answers there and clickhouse-server is installed, dev
    /// starts its own on that port in --data-dir.
    #[arg(long, default_value = "http://127.0.0.1:8123")]
    clickhouse_url: String,
    /// Folder for the ClickHouse server dev starts and the demo enrichment databases.
    #[arg(long, default_value = ".clickmatch-dev")]
    data_dir: PathBuf,
    /// Skip the demo traffic (with --serve: an empty pipeline to try by hand).
    #[arg(long)]
    no_demo: bool,
}

impl Cli {
    pub fn default_log_filter(&self) -> &'static str {
        match self.command {
            Command::Dev(_)
            | Command::PostbackUrl { .. }
            | Command::OfferUrl { .. }
            | Command::TestConversion { .. }
            | Command::Reconcile(_)
            | Command::Reprocess(_)
            | Command::Upload { .. } => "warn",
            _ => "info",
        }
    }
}

/// The options of `clickmatch report` as report parameters.
fn report_params(args: &ReportArgs) -> anyhow::Result<ReportParams> {
    let mut filters = Vec::new();
    for filter in &args.filter {
        let Some((name, value)) = filter.split_once('=') else {
            bail!("--filter {filter:?}: expected DIMENSION=VALUE, e.g. country=DE");
        };
        filters.push((name.trim().to_string(), value.to_string()));
    }
    Ok(ReportParams {
        group_by: Some(args.group_by.clone()),
        from: args.from.clone(),
        to: args.to.clone(),
        tz: Some(args.tz.clone()),
        sort: Some(args.sort.clone()),
        limit: Some(args.limit.to_string()),
        filters,
    })
}

/// A refused report in the CLI's words: parameters are options here (`group_by` is
/// `--group-by`, a filter is `--filter NAME=…`).
fn cli_error(error: &ReportError) -> String {
    let option = match error.parameter.as_str() {
        p @ ("group_by" | "from" | "to" | "tz" | "sort" | "limit") => {
            format!("--{}", p.replace('_', "-"))
        }
        filter => format!("--filter {filter}=…"),
    };
    format!("{option}: {}", error.message)
}

fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    let env = process_env();
    match path {
        Some(path) => Ok(Config::load(path, &env)?),
        None => bail!("this command needs --config FILE (or CLICKMATCH_CONFIG); config/demo.toml is an example"),
    }
}

/// Runs the services of `roles` until SIGINT/SIGTERM, reloading the configuration file on
/// SIGHUP or when it changes.
async fn serve(
    config_path: Option<&Path>,
    config: Config,
    roles: Roles,
    listen: &str,
) -> anyhow::Result<ExitCode> {
    let hangup = reload::hangup()?;
    let pipeline = Pipeline::start(&config, roles, listen).await?;
    if let Some(addr) = pipeline.http_addr {
        tracing::info!(%addr, "listening");
    }
    let reloader = Reloader::new(config_path, pipeline.account.clone(), config);
    pipeline
        .run_until(reloader.run(hangup, shutdown_signal()))
        .await?;
    Ok(ExitCode::SUCCESS)
}

pub async fn execute(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Dev(args) => dev(cli.config.as_deref(), args).await,
        Command::Ingest { listen } => {
            let config = load_config(cli.config.as_deref())?;
            let listen = listen.unwrap_or_else(|| config.ingest.listen.clone());
            serve(cli.config.as_deref(), config, Roles::INGEST, &listen).await
        }
        Command::Join { metrics_listen } => {
            crate::allocator::keep_memory_without_huge_pages();
            let config = load_config(cli.config.as_deref())?;
            let listen = metrics_listen.unwrap_or_default();
            serve(cli.config.as_deref(), config, Roles::JOIN, &listen).await
        }
        Command::Outbound { metrics_listen } => {
            let config = load_config(cli.config.as_deref())?;
            let listen = metrics_listen.unwrap_or_default();
            serve(cli.config.as_deref(), config, Roles::OUTBOUND, &listen).await
        }
        Command::Migrate { clickhouse_url } => {
            let config = load_config(cli.config.as_deref())?;
            let settings = settings_with(&config, clickhouse_url);
            let report = migrate(&settings).await?;
            money::write_account(&settings, &config.account).await?;
            println!("{report:?}");
            println!(
                "account currency {}, rates up to {} days old",
                config.account.currency, config.account.max_rate_age_days
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Rates {
            command:
                RatesCommand::Import {
                    file,
                    clickhouse_url,
                },
        } => {
            let config = load_config(cli.config.as_deref())?;
            let settings = settings_with(&config, clickhouse_url);
            let imported = money::import_rates(&settings, &file).await?;
            println!("imported {}", imported.summary);
            Ok(ExitCode::SUCCESS)
        }
        Command::Costs {
            command:
                CostsCommand::Import {
                    file,
                    clickhouse_url,
                },
        } => {
            let config = load_config(cli.config.as_deref())?;
            let settings = settings_with(&config, clickhouse_url);
            let imported = money::import_costs(&settings, &config, &file).await?;
            println!("imported {}", imported.summary);
            Ok(ExitCode::SUCCESS)
        }
        Command::Reconcile(args) => reconcile(cli.config.as_deref(), args).await,
        Command::Reprocess(args) => {
            let config = load_config(cli.config.as_deref())?;
            let settings = settings_with(&config, args.clickhouse_url.clone());
            let args = args.into_args();
            print!(
                "{}",
                clickmatch_cli::recovery::reprocess(&config, &settings, &args).await?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Upload {
            file,
            route,
            apply,
            timeout_secs,
            clickhouse_url,
        } => {
            let config = load_config(cli.config.as_deref())?;
            let settings = settings_with(&config, clickhouse_url);
            let timeout = Duration::from_secs(timeout_secs);
            let (text, all_attributed) = clickmatch_cli::recovery::upload(
                &config,
                &settings,
                &file,
                route.as_deref(),
                apply,
                timeout,
            )
            .await?;
            print!("{text}");
            Ok(if all_attributed {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Report(args) => {
            let config = load_config(cli.config.as_deref())?;
            let settings = settings_with(&config, args.clickhouse_url.clone());
            let request = report_params(&args)?
                .check(report::now())
                .map_err(|e| anyhow::anyhow!("{}", cli_error(&e)))?;
            let networks = clickmatch_clickhouse::report::networks(&config.account);
            let made = clickmatch_clickhouse::report::run(&settings, request, &networks)
                .await
                .map_err(|e| match e {
                    ReportFailure::Request(e) => anyhow::anyhow!("{}", cli_error(&e)),
                    ReportFailure::ClickHouse(e) => anyhow::Error::new(e),
                })?;
            print!("{}", report::render(&made, args.format)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Broker { listen, partitions } => {
            let config = Config::demo(&process_env())?;
            let broker = LocalBroker::start(&config.kafka.topics(), partitions)?;
            let listen_addr = listen
                .parse()
                .with_context(|| format!("--listen {listen}"))?;
            println!(
                "broker: bootstrap.servers={listen} (mock broker at {}); topics {} and {} with {partitions} partitions",
                broker.bootstrap_servers(),
                config.kafka.clicks_topic,
                config.kafka.postbacks_topic
            );
            println!("broker: in memory, keeping ~5 MiB per partition (older records are dropped): for local runs and tests only");
            // SIGUSR1 takes the broker down, SIGUSR2 brings it back (outage tests).
            clickmatch_testbed::broker::serve_standalone(&broker, listen_addr, shutdown_signal())
                .await?;
            drop(broker);
            Ok(ExitCode::SUCCESS)
        }
        Command::LocalClickhouse {
            dir,
            http_port,
            tcp_port,
            engine,
        } => {
            let server = tokio::task::spawn_blocking(move || {
                LocalServer::start_with(engine, &dir, http_port, tcp_port)
            })
            .await??;
            println!(
                "clickhouse: {} ({engine} engine, data in {})",
                server.url(),
                server.dir().display()
            );
            shutdown_signal().await;
            drop(server);
            Ok(ExitCode::SUCCESS)
        }
        Command::PostbackUrl {
            route,
            base_url,
            network,
        } => {
            use clickmatch_cli::postback_url::{find_preset, network_postback_url, postback_urls};
            let config = match cli.config.as_deref() {
                Some(path) => Config::load(path, &process_env())?,
                None => Config::demo(&process_env())?,
            };
            let base = base_url.unwrap_or_else(|| config.ingest.public_url.clone());
            match network {
                None => {
                    for line in postback_urls(&config, &base, route.as_deref())? {
                        println!("{line}");
                    }
                }
                Some(network) => {
                    let preset = find_preset(&network)?;
                    let out = network_postback_url(&config, preset, &base, route.as_deref());
                    println!("{}", out.url);
                    for note in out.notes {
                        eprintln!("# {note}");
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::OfferUrl { network, url } => {
            use clickmatch_cli::postback_url::{find_preset, network_offer_url};
            let out = network_offer_url(find_preset(&network)?, &url)?;
            println!("{}", out.url);
            for note in out.notes {
                eprintln!("# {note}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::TestConversion {
            offer,
            route,
            network,
            ingest_url,
            clickhouse_url,
            timeout_secs,
        } => {
            use clickmatch_cli::test_conversion::{run, TestConversionArgs};
            let config = match cli.config.as_deref() {
                Some(path) => Config::load(path, &process_env())?,
                None => {
                    eprintln!("# no --config: testing the built-in demo configuration (clickmatch dev --serve)");
                    Config::demo(&process_env())?
                }
            };
            let args = TestConversionArgs {
                offer,
                route,
                network,
                ingest_url,
                clickhouse_url,
                timeout: Duration::from_secs(timeout_secs),
            };
            let test = run(&config, &args).await?;
            print!("{}", test.render());
            Ok(if test.verdict.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

/// `clickmatch reconcile`: prints the report; exit status 0, 1 (too many discrepancies) or 2
/// (no comparison: bad input, unreadable configuration or ClickHouse).
async fn reconcile(config_path: Option<&Path>, args: ReconcileArgs) -> anyhow::Result<ExitCode> {
    use clickmatch_cli::reconcile::{render, run, ReconcileArgs as Run};
    const NO_COMPARISON: u8 = 2;
    let config = match load_config(config_path) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error:#}");
            return Ok(ExitCode::from(NO_COMPARISON));
        }
    };
    let settings = settings_with(&config, args.clickhouse_url);
    let run_args = Run {
        report: args.report,
        network: args.network,
        columns: args.columns,
        from: args.from,
        to: args.to,
        tz: args.tz,
        offers: args.offers,
        tolerance: args.tolerance,
        max_differences: args.max_differences,
    };
    match run(&config, &settings, &run_args).await {
        Ok(report) => {
            print!("{}", render(&report, args.format == ReconcileFormat::Json));
            Ok(if report.passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Err(error) => {
            eprintln!("error: {error}");
            Ok(ExitCode::from(NO_COMPARISON))
        }
    }
}

fn settings_with(
    config: &Config,
    clickhouse_url: Option<String>,
) -> clickmatch_clickhouse::ClickHouseSettings {
    let mut settings = clickhouse_settings(config);
    if let Some(url) = clickhouse_url {
        settings.url = url;
    }
    settings
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// A ClickHouse at `url`, or one started in `data_dir` on that URL's port.
async fn clickhouse_for_dev(url: &str, data_dir: &Path) -> anyhow::Result<Option<LocalServer>> {
    if ping(url).await {
        return Ok(None);
    }
    if !LocalServer::is_installed() {
        bail!(
            "nothing answers at {url} and clickhouse-server is not installed: \
             `apt-get install clickhouse-server clickhouse-client`, or pass --clickhouse-url"
        );
    }
    let port: u16 = url
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .with_context(|| format!("cannot read a port from {url}"))?;
    let tcp_port = clickmatch_testbed::local_server::free_port()?;
    let dir = data_dir.join("clickhouse");
    eprintln!(
        "starting clickhouse-server on 127.0.0.1:{port} with data in {}",
        dir.display()
    );
    let server =
        tokio::task::spawn_blocking(move || LocalServer::start(&dir, port, tcp_port)).await??;
    Ok(Some(server))
}

async fn dev(config_path: Option<&Path>, args: DevArgs) -> anyhow::Result<ExitCode> {
    let env = process_env();
    let mut config = match config_path {
        Some(path) => Config::load(path, &env)?,
        None => Config::demo(&env)?,
    };
    // What a reload compares with, and SIGHUP handled before anything serves.
    let file_config = config.clone();
    let hangup = reload::hangup()?;
    config.clickhouse.url = args.clickhouse_url.clone();
    let started = Instant::now();
    let since_s = unix_now().as_secs() as u32;

    let broker = LocalBroker::start(&config.kafka.topics(), 4)?;
    config.kafka.bootstrap_servers = broker.bootstrap_servers().to_string();
    // The in-process broker starts empty, so the joiner's state starts empty too.
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create {}", args.data_dir.display()))?;
    let state_dir = tempfile::Builder::new()
        .prefix("joiner-state-")
        .tempdir_in(&args.data_dir)
        .context("joiner state folder")?;
    config.joiner.state_dir = state_dir.path().display().to_string();
    // Likewise the click spool: an old run's clicks belong to an old broker.
    let spool_dir = tempfile::Builder::new()
        .prefix("ingest-spool-")
        .tempdir_in(&args.data_dir)
        .context("click spool folder")?;
    config.ingest.spool.dir = spool_dir.path().display().to_string();
    // Geo, ASN and device for the demo's clicks, from databases of its own.
    if let Some(files) = demo::enrichment_for_dev(&mut config, &args.data_dir)? {
        println!(
            "enrichment: demo databases {} and {}; X-Forwarded-For trusted from loopback",
            files.geoip_db.display(),
            files.asn_db.display()
        );
    }
    let clickhouse_server = clickhouse_for_dev(&config.clickhouse.url, &args.data_dir).await?;
    let settings = clickhouse_settings(&config);
    migrate(&settings).await.context("migrating ClickHouse")?;
    money::write_account(&settings, &config.account).await?;

    let pipeline = Pipeline::start(&config, Roles::ALL, &args.listen).await?;
    let base = pipeline.base_url().expect("ingest runs in dev");
    println!(
        "clickmatch dev: ingest {base}, broker {}, ClickHouse {} (database {})",
        broker.bootstrap_servers(),
        settings.url,
        settings.database
    );

    pipeline
        .wait_joiner_assigned(Duration::from_secs(30))
        .await?;
    let mut exit = ExitCode::SUCCESS;
    if !args.no_demo {
        money::import_demo_rates(&settings, money::today_utc()).await?;
        let traffic = demo::run(&base, &config.account).await?;
        println!(
            "\ndemo traffic: {} clicks, {} postbacks",
            traffic.clicks, traffic.postbacks
        );
        for line in &traffic.log {
            println!("  {line}");
        }
        // Wait until ClickHouse holds a row for every recorded postback.
        let deadline = Instant::now() + Duration::from_secs(60);
        let report = loop {
            let report = dev_report::read(&settings, since_s).await?;
            let complete = report.postbacks() >= traffic.postbacks as u64
                && report.clicks >= traffic.clicks as u64;
            if complete || Instant::now() > deadline {
                break report;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        println!("\nreport (read back from ClickHouse, rows since this run started):");
        print!("{}", dev_report::render(&report, Some(&traffic.expected)));
        print!(
            "{}",
            dev_report::render_money(&report.money, Some(&traffic.money))
        );
        let expected: std::collections::BTreeMap<String, u64> = traffic
            .expected
            .iter()
            .map(|(k, v)| (k.clone(), *v as u64))
            .collect();
        if report.outcomes() != expected
            || report.clicks != traffic.clicks as u64
            || dev_report::money_check(&report.money, &traffic.money).is_err()
        {
            exit = ExitCode::FAILURE;
        }
        let top = report::top_campaigns_by_country(&settings, &config.account, since_s, 10)
            .await
            .context("the campaign × country report")?;
        println!(
            "\ntop campaigns × countries by revenue ({} of {} rows; `clickmatch report` makes any report):",
            top.rows.len(),
            top.rows_total
        );
        for line in report::table(&top).lines() {
            println!("  {line}");
        }
        println!("  elapsed {:.1} s", started.elapsed().as_secs_f64());
    }

    let db = &settings.database;
    let client_port = clickhouse_server
        .as_ref()
        .map(|s| format!(" --port {}", s.tcp_port()))
        .unwrap_or_default();
    println!("\nwhere the data is: ClickHouse {} database `{db}`, tables clicks, conversions, unattributed{}", settings.url,
        clickhouse_server.as_ref().map(|s| format!(" (server data in {})", s.dir().display())).unwrap_or_default());
    println!("example queries:");
    println!("  clickhouse-client{client_port} --query \"SELECT reason, count() FROM {db}.unattributed FINAL GROUP BY reason ORDER BY count() DESC\"");
    println!("  clickhouse-client{client_port} --query \"SELECT offer_id, route, count(), sum(payout) FROM {db}.conversions FINAL GROUP BY offer_id, route\"");
    println!("  clickhouse-client{client_port} --query \"SELECT campaign_id, sum(clicks) AS clicks, sum(revenue) AS revenue, sum(cost) AS cost, revenue - cost AS profit, round(toFloat64(profit) / toFloat64(cost), 4) AS roi FROM {db}.figures_hourly WHERE hour >= toStartOfDay(now()) AND is_test = 0 GROUP BY campaign_id\"");

    if args.serve {
        println!("\nserving: try  curl -i '{base}/c/demo?sub1=me'  then  curl '{base}/postback?cid=<click id>&payout=2'   (Ctrl-C stops)");
        println!("metrics: {base}/metrics");
        if config.ingest.admin_token.is_some() {
            println!("postback debugger: {base}/debug (HTTP Basic, any user, [ingest] admin_token as the password)");
        }
        let reloader = Reloader::new(config_path, pipeline.account.clone(), file_config);
        pipeline
            .run_until(reloader.run(hangup, shutdown_signal()))
            .await?;
    } else {
        pipeline.stop().await?;
    }
    drop(broker);
    drop(clickhouse_server);
    drop(state_dir);
    drop(spool_dir);
    Ok(exit)
}
