//! `clickmatch dev`: the embedded default, one process with demo traffic and a report.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clickmatch_cli::pipeline::{clickhouse_settings, Pipeline, Roles};
use clickmatch_cli::reload::{self, Reloader};
use clickmatch_cli::{demo, dev_report, money, report};
use clickmatch_clickhouse::migrate;
use clickmatch_config::{process_env, Config};
use clickmatch_testbed::{ping, LocalBroker, LocalServer};

use super::{shutdown_signal, DevArgs};

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

pub(super) async fn dev(config_path: Option<&Path>, args: DevArgs) -> anyhow::Result<ExitCode> {
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
