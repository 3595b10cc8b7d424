//! The report `clickmatch dev` prints: every figure read back from ClickHouse.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::Context;
use clickhouse::Row;
use clickmatch_clickhouse::ClickHouseSettings;
use serde::Deserialize;

/// Figures for rows received since `since_s` (Unix seconds).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Report {
    pub clicks: u64,
    pub attributed: u64,
    pub repaired: u64,
    pub payout: String,
    pub unattributed: BTreeMap<String, u64>,
    pub latency_ms: [u32; 3],
}

impl Report {
    pub fn postbacks(&self) -> u64 {
        self.attributed + self.unattributed.values().sum::<u64>()
    }

    /// Rows by outcome: `attributed` and each reason.
    pub fn outcomes(&self) -> BTreeMap<String, u64> {
        let mut out = self.unattributed.clone();
        if self.attributed > 0 {
            out.insert(crate::demo::ATTRIBUTED.to_string(), self.attributed);
        }
        out
    }
}

#[derive(Row, Deserialize)]
struct Count {
    n: u64,
}

#[derive(Row, Deserialize)]
struct Attributed {
    n: u64,
    repaired: u64,
    payout: String,
}

#[derive(Row, Deserialize)]
struct ReasonCount {
    reason: String,
    n: u64,
}

#[derive(Row, Deserialize)]
struct Latency {
    p50: u32,
    p90: u32,
    p99: u32,
}

/// Reads the report for rows since `since_s` from ClickHouse.
pub async fn read(settings: &ClickHouseSettings, since_s: u32) -> anyhow::Result<Report> {
    let client = settings.client();
    let clicks = client
        .query("SELECT count() AS n FROM clicks FINAL WHERE click_time >= toDateTime(?)")
        .bind(since_s)
        .fetch_one::<Count>()
        .await
        .context("counting clicks")?;
    let attributed = client
        .query(
            "SELECT count() AS n, toUInt64(sum(click_id_repaired)) AS repaired, toString(sum(payout)) AS payout \
             FROM conversions FINAL WHERE conversion_time >= toDateTime(?)",
        )
        .bind(since_s)
        .fetch_one::<Attributed>()
        .await
        .context("counting conversions")?;
    let reasons = client
        .query(
            "SELECT reason, count() AS n FROM unattributed FINAL WHERE received_time >= toDateTime(?) \
             GROUP BY reason ORDER BY reason",
        )
        .bind(since_s)
        .fetch_all::<ReasonCount>()
        .await
        .context("counting unattributed")?;
    let latency = client
        .query(
            "SELECT toUInt32(quantileExact(0.5)(latency_ms)) AS p50, toUInt32(quantileExact(0.9)(latency_ms)) AS p90, \
             toUInt32(quantileExact(0.99)(latency_ms)) AS p99 FROM ( \
               SELECT latency_ms FROM conversions FINAL WHERE conversion_time >= toDateTime(?) \
               UNION ALL SELECT latency_ms FROM unattributed FINAL WHERE received_time >= toDateTime(?))",
        )
        .bind(since_s)
        .bind(since_s)
        .fetch_one::<Latency>()
        .await
        .context("latency percentiles")?;
    Ok(Report {
        clicks: clicks.n,
        attributed: attributed.n,
        repaired: attributed.repaired,
        payout: attributed.payout,
        unattributed: reasons.into_iter().map(|r| (r.reason, r.n)).collect(),
        latency_ms: [latency.p50, latency.p90, latency.p99],
    })
}

/// The printed form.
pub fn render(report: &Report, expected: Option<&BTreeMap<String, usize>>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "  clicks                      {:>6}", report.clicks);
    let _ = writeln!(
        out,
        "  postbacks                   {:>6}",
        report.postbacks()
    );
    let _ = writeln!(
        out,
        "  attributed                  {:>6}   payout {}   click ID repaired {}",
        report.attributed, report.payout, report.repaired
    );
    let unattributed: u64 = report.unattributed.values().sum();
    let _ = writeln!(out, "  unattributed                {unattributed:>6}");
    for (reason, n) in &report.unattributed {
        let hint = clickmatch_core::reason::Reason::ALL
            .iter()
            .find(|r| r.as_str() == reason)
            .map(|r| clickmatch_core::reason::hint_text(r.default_hint()))
            .unwrap_or("");
        let _ = writeln!(out, "    {reason:<24}{n:>6}   {hint}");
    }
    let [p50, p90, p99] = report.latency_ms;
    let _ = writeln!(
        out,
        "  latency postback → ClickHouse  p50 {p50} ms   p90 {p90} ms   p99 {p99} ms"
    );
    if let Some(expected) = expected {
        let stored = report.outcomes();
        let expected: BTreeMap<String, u64> = expected
            .iter()
            .map(|(k, v)| (k.clone(), *v as u64))
            .collect();
        if stored == expected {
            let _ = writeln!(
                out,
                "  check: every outcome matches what the demo sent ({} postbacks)",
                report.postbacks()
            );
        } else {
            let _ = writeln!(
                out,
                "  check: MISMATCH expected {expected:?}, ClickHouse holds {stored:?}"
            );
        }
    }
    out
}
