//! The commands themselves ([`args`] says what each accepts, [`dev`] is the embedded default).

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clickmatch_cli::carry::{self, CarryArgs};
use clickmatch_cli::pipeline::{clickhouse_settings, Pipeline, Roles};
use clickmatch_cli::reload::{self, Reloader};
use clickmatch_cli::{money, report};
use clickmatch_clickhouse::migrate;
use clickmatch_clickhouse::report::{ReportError, ReportFailure, ReportParams};
use clickmatch_config::{process_env, Config};
use clickmatch_testbed::{LocalBroker, LocalServer};

mod args;
mod dev;

pub use args::Cli;
use args::{
    Command, CostsCommand, DevArgs, RatesCommand, ReconcileArgs, ReconcileFormat, ReportArgs,
};
use dev::dev;

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
        Command::CarrySubs {
            from,
            to,
            subs,
            apply,
            clickhouse_url,
        } => {
            let config = load_config(cli.config.as_deref())?;
            let settings = settings_with(&config, clickhouse_url);
            let args = CarryArgs {
                from,
                to,
                subs,
                apply,
            };
            print!("{}", carry::run(&config, &settings, &args).await?);
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
