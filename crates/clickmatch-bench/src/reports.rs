//! Report latency (`clickmatch-bench reports`, `scripts/bench reports`): ten typical reports
//! over generated clicks and conversions, each run several times through the report code
//! (`clickmatch_clickhouse::report::run`, as the CLI, the API and the page run it), on one
//! ClickHouse engine. The data is generated inside ClickHouse (`reports/*.sql`), then merged
//! (`OPTIMIZE … FINAL`), as background merges leave a table that is not being written.
//! BENCHMARKS.md ("Reports") has the figures and the design behind them.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clickmatch_clickhouse::report::{self, ReportParams};
use clickmatch_clickhouse::ClickHouseSettings;
use clickmatch_testbed::local_server::Engine;
use clickmatch_testbed::LocalServer;
use serde::Serialize;

/// The ten reports: a name and its parameters. The data covers 2025-12-01 to 2025-12-30 (UTC).
pub const REPORTS: [(&str, &[(&str, &str)]); 10] = [
    (
        "campaign × day, Europe/Berlin",
        &[("group_by", "campaign,day"), ("tz", "Europe/Berlin")],
    ),
    (
        "campaign × sub1 × country",
        &[("group_by", "campaign,sub1,country")],
    ),
    (
        "country × device_type",
        &[("group_by", "country,device_type")],
    ),
    (
        "offer × hour, Asia/Kolkata",
        &[("group_by", "offer,hour"), ("tz", "Asia/Kolkata")],
    ),
    (
        "source × os × browser",
        &[("group_by", "source,os,browser")],
    ),
    (
        "campaign, sub1 = zone-1234",
        &[("group_by", "campaign"), ("sub1", "zone-1234")],
    ),
    ("network × offer", &[("group_by", "network,offer")]),
    (
        "route × status × event",
        &[("group_by", "route,status,event")],
    ),
    (
        "day, America/New_York, country = DE",
        &[
            ("group_by", "day"),
            ("tz", "America/New_York"),
            ("country", "DE"),
        ],
    ),
    (
        "campaign × country, last 7 days, Asia/Kathmandu",
        &[
            ("group_by", "campaign,country"),
            ("tz", "Asia/Kathmandu"),
            ("from", "2025-12-24"),
        ],
    ),
];

/// What to measure.
#[derive(Debug, Clone)]
pub struct ReportsSpec {
    pub engine: Engine,
    pub clicks: u64,
    pub conversions: u64,
    pub runs: usize,
    pub out: PathBuf,
    /// A running server to use instead of starting one, and its database: the data is
    /// generated there unless `clicks` already holds rows (then they are measured as they are).
    pub clickhouse: Option<(String, String)>,
    /// The conversions carry their click's sub1 and sub2 (the reports use those two).
    pub conversions_carry_subs: bool,
}

/// One report's latencies.
#[derive(Debug, Clone, Serialize)]
pub struct ReportLatency {
    pub name: String,
    pub params: Vec<(String, String)>,
    /// Groups the report found (before its limit).
    pub rows: usize,
    /// Every run, in milliseconds, in order.
    pub samples_ms: Vec<f64>,
    pub p50_ms: f64,
    pub p95_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReportsResult {
    pub engine: String,
    pub server_version: String,
    pub clicks: u64,
    pub conversions: u64,
    pub runs: usize,
    pub generate_seconds: f64,
    pub reports: Vec<ReportLatency>,
}

/// The `q`-quantile by nearest rank (p95 of 20 runs is the 19th fastest).
pub fn quantile(samples: &[f64], q: f64) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Click `n`'s time in milliseconds: evenly over the 30 days, a millisecond drawn by hash.
const CLICK_TIME_MS: &str =
    "((1764547200 + intDiv(n * 2592000, {clicks})) * 1000 + cityHash64(n, 20) % 1000)";

/// Click `n`'s ID, shaped as ingest mints them (`clickmatch_core::click_id`): 26 characters of
/// Crockford base32, the first ten the 48-bit time in milliseconds (so IDs sort by time, as in
/// production), then 80 bits drawn by hash in place of the random part and the tag.
const CLICK_ID: &str = "concat(\
    arrayStringConcat(arrayMap(j -> substring('0123456789abcdefghjkmnpqrstvwxyz', \
        1 + bitAnd(bitShiftRight(toUInt64({click_time_ms}), 45 - 5 * j), 31), 1), range(10))), \
    arrayStringConcat(arrayMap(j -> substring('0123456789abcdefghjkmnpqrstvwxyz', \
        1 + bitAnd(bitShiftRight(cityHash64(n, 21 + intDiv(j, 12)), 5 * (j % 12)), 31), 1), range(16))))";

fn sql(template: &str, spec: &ReportsSpec) -> String {
    template
        .lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("{click_id}", CLICK_ID)
        .replace("{click_time_ms}", CLICK_TIME_MS)
        .replace("{clicks}", &spec.clicks.to_string())
        .replace("{conversions}", &spec.conversions.to_string())
        .replace(
            "{subs_carried}",
            if spec.conversions_carry_subs {
                "3"
            } else {
                "0"
            },
        )
}

async fn generate(settings: &ClickHouseSettings, spec: &ReportsSpec) -> anyhow::Result<()> {
    let client = settings.client().with_setting("max_execution_time", "3600");
    for (name, template) in [
        ("rates", include_str!("reports/rates.sql")),
        ("clicks", include_str!("reports/clicks.sql")),
        ("conversions", include_str!("reports/conversions.sql")),
    ] {
        client
            .query(&sql(template, spec))
            .execute()
            .await
            .with_context(|| format!("generating {name}"))?;
    }
    check_click_ids(&client).await?;
    for table in ["clicks", "conversions"] {
        client
            .query(&format!("OPTIMIZE TABLE {table} FINAL"))
            .execute()
            .await
            .with_context(|| format!("merging {table}"))?;
    }
    Ok(())
}

/// The generated IDs parse as click IDs and carry their click's time, as ingest's do.
async fn check_click_ids(client: &clickhouse::Client) -> anyhow::Result<()> {
    let sample: Vec<(String, u64)> = client
        .query("SELECT click_id, click_time_ms FROM clicks LIMIT 1000")
        .fetch_all()
        .await?;
    for (text, time_ms) in sample {
        let id = clickmatch_core::ClickId::parse(&text)
            .with_context(|| format!("generated click ID {text:?}"))?;
        anyhow::ensure!(
            id.time_ms() == time_ms,
            "generated click ID {text} holds {} ms, its click {time_ms}",
            id.time_ms()
        );
    }
    Ok(())
}

/// Starts a server of `spec.engine`, generates the data, runs every report `spec.runs` times,
/// and writes `reports-<engine>.json` and `reports-<engine>.md` into `spec.out`.
pub async fn run(spec: &ReportsSpec) -> anyhow::Result<ReportsResult> {
    std::fs::create_dir_all(&spec.out)?;
    let engine = spec.engine;
    let (settings, server) = match &spec.clickhouse {
        Some((url, database)) => (ClickHouseSettings::new(url.clone(), database.clone()), None),
        None => {
            let server =
                tokio::task::spawn_blocking(move || LocalServer::start_temp_with(engine)).await??;
            (
                ClickHouseSettings::new(server.url(), "bench_reports"),
                Some(server),
            )
        }
    };
    clickmatch_clickhouse::migrate(&settings).await?;
    clickmatch_clickhouse::money::write_account(&settings, "USD", 7, 1).await?;
    let existing: u64 = settings
        .client()
        .query("SELECT count() FROM clicks")
        .fetch_one()
        .await?;
    let started = Instant::now();
    if existing == 0 {
        generate(&settings, spec).await?;
    }
    let generate_seconds = started.elapsed().as_secs_f64();
    let clicks: u64 = settings
        .client()
        .query("SELECT count() FROM clicks FINAL")
        .fetch_one()
        .await?;
    let conversions: u64 = settings
        .client()
        .query("SELECT count() FROM conversions FINAL")
        .fetch_one()
        .await?;
    let server_version: String = settings
        .client()
        .query("SELECT version()")
        .fetch_one()
        .await?;
    // Offers offer-0 … offer-19 belong to four networks, as a configuration would say.
    let networks: Vec<(String, String)> = (0..20)
        .map(|i| {
            let network = ["tune", "cake", "everflow", "affise"][i % 4];
            (format!("offer-{i}"), network.to_string())
        })
        .collect();
    // The data's last day; the range defaults to 2025-12-01 …
    let now = chrono::DateTime::from_timestamp(1_767_139_200, 0).unwrap_or_default();
    let mut reports = Vec::new();
    for (name, params) in REPORTS {
        let mut pairs: Vec<(&str, &str)> = vec![("from", "2025-12-01"), ("to", "2025-12-30")];
        pairs.retain(|(k, _)| !params.iter().any(|(p, _)| p == k));
        pairs.extend_from_slice(params);
        let request = ReportParams::from_pairs(pairs.iter().copied())?.check(now)?;
        let mut samples_ms = Vec::new();
        let mut rows = 0;
        for _ in 0..spec.runs {
            let started = Instant::now();
            let made = report::run(&settings, request.clone(), &networks)
                .await
                .with_context(|| format!("report {name}"))?;
            samples_ms.push(started.elapsed().as_secs_f64() * 1000.0);
            rows = made.rows_total;
        }
        eprintln!(
            "{name}: {rows} rows, p50 {:.0} ms, p95 {:.0} ms",
            quantile(&samples_ms, 0.5),
            quantile(&samples_ms, 0.95)
        );
        reports.push(ReportLatency {
            name: name.to_string(),
            params: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            rows,
            p50_ms: quantile(&samples_ms, 0.5),
            p95_ms: quantile(&samples_ms, 0.95),
            samples_ms,
        });
    }
    let result = ReportsResult {
        engine: engine.to_string(),
        server_version,
        clicks,
        conversions,
        runs: spec.runs,
        generate_seconds,
        reports,
    };
    write(&spec.out, &result)?;
    drop(server);
    Ok(result)
}

/// The Markdown table of one engine's figures.
pub fn table(result: &ReportsResult) -> String {
    let mut out = format!(
        "ClickHouse {} ({} engine), {} clicks, {} conversions, {} runs per report\n\n\
         | report | rows | p50 ms | p95 ms |\n|---|---:|---:|---:|\n",
        result.server_version, result.engine, result.clicks, result.conversions, result.runs
    );
    for r in &result.reports {
        out.push_str(&format!(
            "| {} | {} | {:.0} | {:.0} |\n",
            r.name, r.rows, r.p50_ms, r.p95_ms
        ));
    }
    out
}

fn write(out: &Path, result: &ReportsResult) -> anyhow::Result<()> {
    let stem = format!("reports-{}", result.engine);
    std::fs::write(
        out.join(format!("{stem}.json")),
        serde_json::to_string_pretty(result)?,
    )?;
    std::fs::write(out.join(format!("{stem}.md")), table(result))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p95_is_the_nearest_rank() {
        let samples: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(quantile(&samples, 0.95), 19.0);
        assert_eq!(quantile(&samples, 0.5), 10.0);
        assert_eq!(quantile(&[3.0], 0.95), 3.0);
    }

    #[test]
    fn every_report_is_a_valid_request() {
        let now = chrono::DateTime::from_timestamp(1_767_139_200, 0).unwrap();
        for (name, params) in REPORTS {
            let mut pairs = vec![("to", "2025-12-30")];
            pairs.extend_from_slice(params);
            ReportParams::from_pairs(pairs)
                .unwrap()
                .check(now)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
