//! Results of a run and the one table they are printed as.

use serde::{Deserialize, Serialize};

use crate::httpload::LoadResult;
use crate::kafka::ConsumeResult;
use crate::sink::InsertResult;
use crate::state::{RestoreResult, StateMark};
use crate::wrk::WrkResult;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Results {
    pub started_utc: String,
    pub command: String,
    pub machine: String,
    pub pinning: String,
    /// The server the joiner, sink and end-to-end phases wrote to: version and engine.
    #[serde(default)]
    pub clickhouse: String,
    pub smoke: bool,
    /// Services ran under `perf record`: their figures are slowed by the sampling.
    #[serde(default)]
    pub profiled: bool,
    pub runs: usize,
    pub http: Option<HttpPhase>,
    #[serde(default)]
    pub enrich: Option<EnrichPhase>,
    pub joiner: Option<JoinerPhase>,
    pub sink: Option<SinkPhase>,
    pub e2e: Option<E2ePhase>,
    pub state: Option<StatePhase>,
    pub errors: Vec<String>,
    pub elapsed_seconds: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HttpPhase {
    pub connections: usize,
    pub seconds_per_run: u64,
    pub nginx: Vec<WrkResult>,
    pub clicks: Vec<WrkResult>,
    pub postbacks: Vec<WrkResult>,
    /// Open-loop clicks at half the median redirect rate, one per run.
    pub clicks_half_load: Vec<LoadResult>,
    /// nginx at the same fixed rate (the load generator's and the machine's own floor).
    pub nginx_half_load: Vec<LoadResult>,
    /// Clicks the ingest could not hand to Kafka, and produce errors (from its /metrics).
    pub clicks_failed: f64,
    pub produce_errors: f64,
}

/// Redirects with enrichment on (both databases, user agents) and off, the same requests
/// (`X-Forwarded-For` through a trusted proxy, a user agent each) to two ingests on the same
/// core, in pairs taken back to back: `off[i]` and `on[i]` are one pair.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EnrichPhase {
    pub connections: usize,
    /// Networks and distinct records of the synthetic City database, and distinct user agents.
    pub networks: u32,
    pub city_records: u32,
    pub user_agents: usize,
    pub city_db_bytes: u64,
    pub off: Vec<WrkResult>,
    pub on: Vec<WrkResult>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct JoinerRun {
    /// Records whose offsets were committed (all of them when `complete`).
    pub events: u64,
    /// False when the run hit its time limit (the rate is what it committed by then).
    pub complete: bool,
    /// Partitions assigned → every offset committed (rows acknowledged by ClickHouse, state
    /// durable).
    pub seconds: f64,
    pub events_per_s: f64,
    /// Start → partitions assigned.
    pub join_seconds: f64,
    pub peak_rss_bytes: u64,
    pub rows: u64,
    /// The joiner process's CPU time (user + system), start to end, when it reported it.
    #[serde(default)]
    pub cpu_seconds: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RebuildResult {
    pub clicks: u64,
    pub seconds: f64,
    pub seconds_per_million_clicks: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct JoinerPhase {
    pub partitions: i32,
    pub clicks: u64,
    pub postbacks: u64,
    pub topic_bytes: u64,
    pub max_partition_bytes: u64,
    pub bare: Vec<ConsumeResult>,
    pub joiner: Vec<JoinerRun>,
    pub rebuild: Option<RebuildResult>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SinkPhase {
    pub rows: usize,
    pub batch_rows: usize,
    pub sink: Vec<InsertResult>,
    pub client: Vec<InsertResult>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct E2eAttempt {
    pub target_rps: f64,
    pub load: LoadResult,
    pub rows_expected: u64,
    pub rows_landed: u64,
    /// Load end → every row landed.
    pub drain_seconds: f64,
    /// Rows landed by the end of the load per second of load: what the pipeline kept up with.
    pub landed_rps: f64,
    /// `latency_ms` of the rows (postback received → batch handed to ClickHouse).
    pub column_p50_ms: f64,
    pub column_p99_ms: f64,
    pub sustained: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct E2ePhase {
    pub attempts: Vec<E2eAttempt>,
}

impl E2ePhase {
    /// The highest sustained attempt, else the last.
    pub fn reported(&self) -> Option<&E2eAttempt> {
        self.attempts
            .iter()
            .filter(|a| a.sustained)
            .max_by(|a, b| a.target_rps.total_cmp(&b.target_rps))
            .or(self.attempts.last())
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StatePhase {
    pub partitions: i32,
    pub cache_mib: u64,
    pub marks: Vec<StateMark>,
    pub restore: Option<RestoreResult>,
}

pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// A figure to one decimal, or `?` where the harness could not read it.
pub fn one_decimal(figure: Option<f64>) -> String {
    figure.map_or("?".into(), |v| format!("{v:.1}"))
}

fn int(n: f64) -> String {
    let n = n.round() as i64;
    let s = n.abs().to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**short**"
    }
}

fn spread(values: &[f64]) -> String {
    if values.len() < 2 {
        return String::new();
    }
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!(" ({}–{})", int(min), int(max))
}

/// "; N µs of CPU per request" (the median over the runs), or nothing when it was not read.
fn cpu_per_request(runs: &[WrkResult]) -> String {
    let us: Vec<f64> = runs
        .iter()
        .filter_map(|w| w.server_cpu_us_per_request)
        .collect();
    if us.is_empty() {
        return String::new();
    }
    format!("; {:.1} µs of CPU per request", median(&us))
}

/// What ClickHouse alone allows the joiner, which commits an event only once its row is
/// written: the sink phase's best rows/s (either writer) at the joiner's rows per event, as a
/// share of the bare consumer (`bare` events/s). Empty without a sink phase.
fn clickhouse_ceiling(j: &JoinerPhase, sink: Option<&SinkPhase>, bare: f64) -> String {
    let Some(s) = sink else {
        return String::new();
    };
    let events: u64 = j.joiner.iter().map(|r| r.events).sum();
    let rows: u64 = j.joiner.iter().map(|r| r.rows).sum();
    let sink: Vec<f64> = s.sink.iter().map(|x| x.rows_per_s).collect();
    let client: Vec<f64> = s.client.iter().map(|x| x.rows_per_s).collect();
    let best = median(&sink).max(median(&client));
    if events == 0 || rows == 0 || best <= 0.0 {
        return String::new();
    }
    let rows_per_event = rows as f64 / events as f64;
    format!(
        "; ClickHouse takes at most {} rows/s here (sink phase), {:.2} rows per event: a ceiling of {:.2}× of the bare consumer",
        int(best),
        rows_per_event,
        best / rows_per_event / bare.max(1e-9)
    )
}

/// The table: each figure next to its reference from the same run, the ratio and the goal.
pub fn table(r: &Results) -> String {
    let mut rows: Vec<[String; 6]> = Vec::new();
    if let Some(h) = &r.http {
        let nginx: Vec<f64> = h.nginx.iter().map(|w| w.ok_rps).collect();
        let clicks: Vec<f64> = h.clicks.iter().map(|w| w.ok_rps).collect();
        let postbacks: Vec<f64> = h.postbacks.iter().map(|w| w.ok_rps).collect();
        let n = median(&nginx);
        let c = median(&clicks);
        let p = median(&postbacks);
        let reference = format!("nginx `return 302`: {}/s{}", int(n), spread(&nginx));
        rows.push([
            format!(
                "click redirects/s, click produced to Kafka (wrk, {} connections)",
                h.connections
            ),
            format!(
                "{}/s{}{}",
                int(c),
                spread(&clicks),
                cpu_per_request(&h.clicks)
            ),
            reference.clone(),
            format!("{:.2}×", c / n.max(1e-9)),
            "≥ 0.65×".into(),
            verdict(c / n.max(1e-9) >= 0.65).into(),
        ]);
        if let Some(half) = h.clicks_half_load.first() {
            let p99: Vec<f64> = h
                .clicks_half_load
                .iter()
                .map(|l| l.latency.p99_ms)
                .collect();
            let p50: Vec<f64> = h
                .clicks_half_load
                .iter()
                .map(|l| l.latency.p50_ms)
                .collect();
            let done: Vec<f64> = h.clicks_half_load.iter().map(|l| l.ok_rps).collect();
            let nginx_p99: Vec<f64> = h.nginx_half_load.iter().map(|l| l.latency.p99_ms).collect();
            // The generator's own stalls, to tell them from the server's; and the servers' CPU
            // per request at this rate, which tells a slower machine from a stalled server.
            let list = |runs: &[LoadResult], figure: fn(&LoadResult) -> Option<f64>| {
                runs.iter()
                    .map(|l| one_decimal(figure(l)))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let lag_max = list(&h.clicks_half_load, |l| Some(l.send_lag.max_ms));
            let ingest_cpu = list(&h.clicks_half_load, |l| l.server_cpu_us_per_request);
            let nginx_cpu = list(&h.nginx_half_load, |l| l.server_cpu_us_per_request);
            let nginx_half = if nginx_p99.is_empty() {
                "—".to_string()
            } else {
                format!(
                    "nginx at that rate: p99 {:.2} ms ({nginx_cpu} µs of CPU each)",
                    median(&nginx_p99)
                )
            };
            let (p99, done) = (median(&p99), median(&done));
            rows.push([
                format!(
                    "click redirect latency at half that load ({}/s, open loop, {} connections)",
                    int(half.target_rps),
                    half.connections
                ),
                format!(
                    "p50 {:.2} ms, p99 {:.2} ms ({}/s done; {ingest_cpu} µs of CPU each; the generator's longest send lag {lag_max} ms)",
                    median(&p50),
                    p99,
                    int(done),
                ),
                nginx_half,
                "—".into(),
                "p99 ≤ 5 ms".into(),
                verdict(p99 <= 5.0 && done >= 0.95 * half.target_rps).into(),
            ]);
        }
        rows.push([
            "postbacks accepted/s (200 after the broker's ack)".into(),
            format!(
                "{}/s{}{}",
                int(p),
                spread(&postbacks),
                cpu_per_request(&h.postbacks)
            ),
            reference,
            format!("{:.2}×", p / n.max(1e-9)),
            "≥ 0.5×".into(),
            verdict(p / n.max(1e-9) >= 0.5).into(),
        ]);
    }
    if let Some(e) = &r.enrich {
        let on: Vec<f64> = e.on.iter().map(|w| w.ok_rps).collect();
        let off: Vec<f64> = e.off.iter().map(|w| w.ok_rps).collect();
        // Each run is a pair taken back to back (`run::enrich`), so the pairs' ratios compare
        // like with like while the machine drifts; the ratio of the medians mixes periods.
        let pairs: Vec<f64> = on
            .iter()
            .zip(&off)
            .map(|(on, off)| on / off.max(1e-9))
            .collect();
        let ratio = median(&pairs);
        let of_medians = median(&on) / median(&off).max(1e-9);
        rows.push([
            format!(
                "click redirects/s with enrichment on: City + ASN databases ({} networks, {} city records, {}) and user agents ({} distinct), wrk, {} connections",
                int(f64::from(e.networks)),
                int(f64::from(e.city_records)),
                mib(e.city_db_bytes),
                int(e.user_agents as f64),
                e.connections
            ),
            format!("{}/s{}{}", int(median(&on)), spread(&on), cpu_per_request(&e.on)),
            format!(
                "enrichment off, same requests: {}/s{}{}",
                int(median(&off)),
                spread(&off),
                cpu_per_request(&e.off)
            ),
            format!(
                "{ratio:.2}× (median of {} pairs' ratios, {}; ratio of the medians {of_medians:.2}×)",
                pairs.len(),
                pairs
                    .iter()
                    .map(|r| format!("{r:.2}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "≥ 0.9×".into(),
            verdict(ratio >= 0.9).into(),
        ]);
    }
    if let Some(j) = &r.joiner {
        let bare: Vec<f64> = j.bare.iter().map(|b| b.events_per_s).collect();
        let joiner: Vec<f64> = j.joiner.iter().map(|b| b.events_per_s).collect();
        let b = median(&bare);
        let jm = median(&joiner);
        // The goal's reference: what ClickHouse itself takes of the same kind of rows.
        let client_rows = r.sink.as_ref().map(|s| {
            let client: Vec<f64> = s.client.iter().map(|x| x.rows_per_s).collect();
            median(&client)
        });
        rows.push([
            format!(
                "joiner events/s, state on disk ({} events: {} clicks + {} postbacks, {} partitions)",
                int((j.clicks + j.postbacks) as f64),
                int(j.clicks as f64),
                int(j.postbacks as f64),
                j.partitions
            ),
            format!(
                "{}/s{}{}",
                int(jm),
                spread(&joiner),
                clickhouse_ceiling(j, r.sink.as_ref(), b)
            ),
            format!(
                "ClickHouse taking the same rows (clickhouse-client, sink phase): {}; bare rdkafka StreamConsumer in a group: {}/s{}",
                client_rows.map_or("not run".into(), |c| format!("{}/s", int(c))),
                int(b),
                spread(&bare)
            ),
            client_rows.map_or("—".into(), |c| format!("{:.2}×", jm / c.max(1e-9))),
            "≥ 0.6× of ClickHouse".into(),
            client_rows.map_or("", |c| verdict(jm / c.max(1e-9) >= 0.6)).into(),
        ]);
    }
    if let Some(s) = &r.sink {
        let sink: Vec<f64> = s.sink.iter().map(|x| x.rows_per_s).collect();
        let client: Vec<f64> = s.client.iter().map(|x| x.rows_per_s).collect();
        let a = median(&sink);
        let b = median(&client);
        rows.push([
            format!(
                "ClickHouse sink rows/s ({} rows, batches of {})",
                int(s.rows as f64),
                int(s.batch_rows as f64)
            ),
            format!("{}/s{}", int(a), spread(&sink)),
            format!(
                "clickhouse-client, TSV files, one INSERT per table: {}/s{}",
                int(b),
                spread(&client)
            ),
            format!("{:.2}×", a / b.max(1e-9)),
            "≥ 1.0×".into(),
            verdict(a / b.max(1e-9) >= 1.0).into(),
        ]);
    }
    if let Some(e) = &r.e2e {
        if let Some(a) = e.reported() {
            let probes = a.load.probes.clone().unwrap_or_default();
            let tried: Vec<String> = e
                .attempts
                .iter()
                .map(|t| {
                    format!(
                        "{}/s{}",
                        int(t.target_rps),
                        if t.sustained { "" } else { " not sustained" }
                    )
                })
                .collect();
            let at = if a.sustained {
                format!("at {}/s sustained", int(a.load.ok_rps))
            } else {
                format!("best attempt {}/s, NOT sustained", int(a.load.ok_rps))
            };
            rows.push([
                format!(
                    "postback received → row queryable in ClickHouse, {at} (tried {})",
                    tried.join(", ")
                ),
                format!(
                    "p50 {:.0} ms, p99 {:.0} ms ({} probes, polled every 50 ms{}); rows' latency_ms p50 {:.0} / p99 {:.0} ms",
                    probes.p50_ms,
                    probes.p99_ms,
                    probes.count,
                    a.load.probe_queries.as_ref().map_or(String::new(), |q| format!(
                        ", each poll's query p99 {:.0} ms, not counted",
                        q.p99_ms
                    )),
                    a.column_p50_ms,
                    a.column_p99_ms
                ),
                "—".into(),
                "—".into(),
                "p99 ≤ 500 ms at 10k/s".into(),
                verdict(a.sustained && probes.p99_ms <= 500.0 && a.target_rps >= 10_000.0)
                    .into(),
            ]);
        }
    }
    if let Some(s) = &r.state {
        let marks = &s.marks;
        if let (Some(first), Some(last)) = (marks.first(), marks.last()) {
            let limit = 512 * 1024 * 1024;
            let flat = last.peak_rss_bytes <= limit;
            rows.push([
                format!(
                    "RSS holding {} vs {} clicks ({} partitions, cache {} MiB)",
                    int(first.clicks as f64),
                    int(last.clicks as f64),
                    s.partitions,
                    s.cache_mib
                ),
                format!(
                    "{} vs {} (peak {})",
                    mib(first.rss_bytes),
                    mib(last.rss_bytes),
                    mib(last.peak_rss_bytes)
                ),
                "—".into(),
                format!(
                    "{:.2}×",
                    last.rss_bytes as f64 / first.rss_bytes.max(1) as f64
                ),
                "flat, ≤ 512 MiB".into(),
                verdict(flat).into(),
            ]);
            rows.push([
                "disk bytes per click held".into(),
                format!(
                    "{:.1} B at {} vs {:.1} B at {} (tables alone {:.1} vs {:.1} B; the rest is fjall's journal)",
                    first.bytes_per_click,
                    int(first.clicks as f64),
                    last.bytes_per_click,
                    int(last.clicks as f64),
                    first.table_bytes_per_click,
                    last.table_bytes_per_click
                ),
                "—".into(),
                "—".into(),
                "≤ 40 B".into(),
                verdict(last.bytes_per_click <= 40.0).into(),
            ]);
        }
        let mut restore = Vec::new();
        let mut restore_met = None;
        if let Some(rs) = &s.restore {
            restore_met = Some(rs.seconds_per_million_clicks <= 0.2);
            restore.push(format!(
                "from checkpoint {:.3} s per million ({:.2} s for {}; first lookups p99 {:.0} µs)",
                rs.seconds_per_million_clicks,
                rs.seconds,
                int(rs.clicks as f64),
                rs.lookup_p99_us
            ));
        }
        if let Some(rb) = r.joiner.as_ref().and_then(|j| j.rebuild.as_ref()) {
            restore.push(format!(
                "rebuilt from the clicks topic {:.1} s per million ({:.1} s for {} clicks)",
                rb.seconds_per_million_clicks,
                rb.seconds,
                int(rb.clicks as f64)
            ));
        }
        if !restore.is_empty() {
            rows.push([
                "restore time per million clicks".into(),
                restore.join("; "),
                "—".into(),
                "—".into(),
                "from checkpoint ≤ 0.2 s".into(),
                restore_met.map_or("", verdict).into(),
            ]);
        }
    }
    let mut out = String::new();
    if r.profiled {
        out.push_str(
            "Profiled (`--profile`): ingest and the joiner ran under `perf record`, which slows \
             them; their profiles are `raw/*.perf.txt`, not these figures.\n\n",
        );
    }
    out.push_str(
        "| figure | clickmatch (median) | reference, same run (median) | ratio | goal | |\n|---|---|---|---|---|---|\n",
    );
    for row in rows {
        out.push_str(&format!("| {} |\n", row.join(" | ")));
    }
    if !r.clickhouse.is_empty() {
        out.push_str(&format!("\nClickHouse: {}\n", r.clickhouse));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_numbers_and_an_empty_table() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(int(1234567.4), "1,234,567");
        assert_eq!(int(999.0), "999");
        let t = table(&Results::default());
        assert!(t.starts_with("| figure |"));
    }

    #[test]
    fn enrichment_is_judged_by_its_pairs_not_by_medians_of_different_moments() {
        let rate = |ok_rps| WrkResult {
            ok_rps,
            ..Default::default()
        };
        // The machine slows in the middle: each pair costs 4–5 %, but the medians of the two
        // columns come from different moments (100 off against 60 on: 0.60×).
        let results = Results {
            enrich: Some(EnrichPhase {
                off: [100.0, 50.0, 100.0].map(rate).to_vec(),
                on: [95.0, 48.0, 60.0].map(rate).to_vec(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let t = table(&results);
        let row = t.lines().find(|l| l.contains("enrichment on")).unwrap();
        assert!(
            row.contains(
                "0.95× (median of 3 pairs' ratios, 0.95, 0.96, 0.60; ratio of the medians 0.60×)"
            ),
            "{row}"
        );
        assert!(row.ends_with("| ≥ 0.9× | met |"), "{row}");
    }

    #[test]
    fn the_joiner_row_names_the_ceiling_clickhouse_sets() {
        let joiner = JoinerPhase {
            joiner: vec![JoinerRun {
                events: 300,
                rows: 330,
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(clickhouse_ceiling(&joiner, None, 1000.0), "");
        let rate = |rows_per_s| InsertResult {
            rows_per_s,
            ..Default::default()
        };
        let sink = SinkPhase {
            sink: vec![rate(400.0)],
            client: vec![rate(550.0)],
            ..Default::default()
        };
        // 550 rows/s at 1.1 rows per event: 500 events/s, half of the bare consumer's 1000.
        assert_eq!(
            clickhouse_ceiling(&joiner, Some(&sink), 1000.0),
            "; ClickHouse takes at most 550 rows/s here (sink phase), 1.10 rows per event: a ceiling of 0.50× of the bare consumer"
        );
    }
}
