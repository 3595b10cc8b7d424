//! The report `clickmatch dev` prints: every figure read back from ClickHouse.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::Context;
use clickhouse::Row;
use clickmatch_clickhouse::ClickHouseSettings;
use clickmatch_core::reason::hint_text;
use serde::Deserialize;

/// Figures for rows received since `since_s` (Unix seconds).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Report {
    pub clicks: u64,
    pub attributed: u64,
    pub repaired: u64,
    pub payout: String,
    pub unattributed: BTreeMap<String, u64>,
    /// Repaired conversions by repair hint code.
    pub repairs: BTreeMap<String, u64>,
    /// Unattributed rows by (reason, hint code).
    pub unattributed_hints: BTreeMap<(String, String), u64>,
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

    /// Rows by outcome and hint: (`attributed`, repair hint or `""`) and (reason, hint), the
    /// shape of [`crate::demo::DemoTraffic::expected_hints`].
    pub fn outcome_hints(&self) -> BTreeMap<(String, String), u64> {
        let mut out = self.unattributed_hints.clone();
        for (hint, n) in &self.repairs {
            out.insert((crate::demo::ATTRIBUTED.to_string(), hint.clone()), *n);
        }
        let clean = self.attributed.saturating_sub(self.repairs.values().sum());
        if clean > 0 {
            out.insert((crate::demo::ATTRIBUTED.to_string(), String::new()), clean);
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
struct ReasonHintCount {
    reason: String,
    hint: String,
    n: u64,
}

#[derive(Row, Deserialize)]
struct HintCount {
    hint: String,
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
    let repairs = client
        .query(
            "SELECT repair_hint AS hint, count() AS n FROM conversions FINAL \
             WHERE conversion_time >= toDateTime(?) AND click_id_repaired = 1 \
             GROUP BY repair_hint ORDER BY repair_hint",
        )
        .bind(since_s)
        .fetch_all::<HintCount>()
        .await
        .context("counting repairs")?;
    let reasons = client
        .query(
            "SELECT reason, hint, count() AS n FROM unattributed FINAL WHERE received_time >= toDateTime(?) \
             GROUP BY reason, hint ORDER BY reason, hint",
        )
        .bind(since_s)
        .fetch_all::<ReasonHintCount>()
        .await
        .context("counting unattributed")?;
    let mut unattributed: BTreeMap<String, u64> = BTreeMap::new();
    for row in &reasons {
        *unattributed.entry(row.reason.clone()).or_default() += row.n;
    }
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
        unattributed,
        repairs: repairs.into_iter().map(|r| (r.hint, r.n)).collect(),
        unattributed_hints: reasons
            .into_iter()
            .map(|r| ((r.reason, r.hint), r.n))
            .collect(),
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
    for (hint, n) in &report.repairs {
        let _ = writeln!(out, "    repaired {hint:<31}{n:>4}   {}", hint_text(hint));
    }
    let unattributed: u64 = report.unattributed.values().sum();
    let _ = writeln!(out, "  unattributed                {unattributed:>6}");
    for (reason, n) in &report.unattributed {
        let _ = writeln!(out, "    {reason:<40}{n:>4}");
        for ((_, hint), n) in report
            .unattributed_hints
            .iter()
            .filter(|((r, _), _)| r == reason)
        {
            let _ = writeln!(out, "      {hint:<38}{n:>4}   {}", hint_text(hint));
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_prints_each_repair_and_hint_with_its_sentence() {
        let report = Report {
            clicks: 3,
            attributed: 2,
            repaired: 1,
            payout: "3.5".into(),
            unattributed: BTreeMap::from([("missing_click_id".to_string(), 2)]),
            repairs: BTreeMap::from([("click_id_other_param".to_string(), 1)]),
            unattributed_hints: BTreeMap::from([
                (
                    (
                        "missing_click_id".to_string(),
                        "cake_hash_fragment".to_string(),
                    ),
                    1,
                ),
                (
                    (
                        "missing_click_id".to_string(),
                        "placeholder_sent".to_string(),
                    ),
                    1,
                ),
            ]),
            latency_ms: [1, 2, 3],
        };
        let printed = render(&report, None);
        for code in [
            "click_id_other_param",
            "cake_hash_fragment",
            "placeholder_sent",
        ] {
            let line = printed
                .lines()
                .find(|l| l.contains(code))
                .unwrap_or_else(|| panic!("{code} missing:\n{printed}"));
            assert!(line.ends_with(hint_text(code)), "{line}");
        }
        assert_eq!(
            report.outcome_hints(),
            BTreeMap::from([
                (("attributed".to_string(), String::new()), 1),
                (
                    ("attributed".to_string(), "click_id_other_param".to_string()),
                    1
                ),
                (
                    (
                        "missing_click_id".to_string(),
                        "cake_hash_fragment".to_string()
                    ),
                    1
                ),
                (
                    (
                        "missing_click_id".to_string(),
                        "placeholder_sent".to_string()
                    ),
                    1
                ),
            ])
        );
    }
}
