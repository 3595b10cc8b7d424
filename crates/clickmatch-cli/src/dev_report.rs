//! The report `clickmatch dev` prints: every figure read back from ClickHouse.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::Context;
use clickmatch_clickhouse::money::{self, Figures, PayoutIssueCount, RevenueByCurrency};
use clickmatch_clickhouse::ClickHouseSettings;
use clickmatch_core::money::MoneyIssue;
use clickmatch_core::reason::hint_text;
use rust_decimal::Decimal;

use crate::demo::DemoMoney;

/// Figures for rows received since `since_s` (Unix seconds).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Report {
    pub clicks: u64,
    pub attributed: u64,
    pub repaired: u64,
    pub unattributed: BTreeMap<String, u64>,
    /// Repaired conversions by repair hint code.
    pub repairs: BTreeMap<String, u64>,
    /// Unattributed rows by (reason, hint code).
    pub unattributed_hints: BTreeMap<(String, String), u64>,
    pub latency_ms: [u32; 3],
    pub money: MoneyReport,
}

/// Revenue, cost and what needs fixing, in the account currency.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct MoneyReport {
    pub figures: Figures,
    pub by_currency: Vec<RevenueByCurrency>,
    pub payout_issues: Vec<PayoutIssueCount>,
    /// Clicks whose cost parameter could not be read.
    pub cost_issues: u64,
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

/// Reads the report for rows since `since_s` from ClickHouse.
pub async fn read(settings: &ClickHouseSettings, since_s: u32) -> anyhow::Result<Report> {
    let outcomes = clickmatch_clickhouse::outcomes::outcomes_since(settings, since_s)
        .await
        .context("reading outcomes")?;
    let mut unattributed: BTreeMap<String, u64> = BTreeMap::new();
    for ((reason, _), n) in &outcomes.unattributed {
        *unattributed.entry(reason.clone()).or_default() += n;
    }
    let money = MoneyReport {
        figures: money::figures_from_base_tables(settings, since_s)
            .await
            .context("reading revenue and cost")?,
        by_currency: money::revenue_by_currency_since(settings, since_s)
            .await
            .context("reading revenue by currency")?,
        payout_issues: money::payout_issues_since(settings, since_s)
            .await
            .context("reading payout issues")?,
        cost_issues: outcomes.click_cost_issues,
    };
    Ok(Report {
        money,
        clicks: outcomes.clicks,
        attributed: outcomes.attributed,
        repaired: outcomes.repaired,
        unattributed,
        repairs: outcomes.repairs.into_iter().collect(),
        unattributed_hints: outcomes.unattributed.into_iter().collect(),
        latency_ms: outcomes.latency_ms,
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
        "  attributed                  {:>6}   click ID repaired {}",
        report.attributed, report.repaired
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

/// The money section: revenue by currency sent, cost, profit, ROI, EPC, and the payout and
/// cost issues with their fix; checked against what the demo sent when given.
pub fn render_money(money: &MoneyReport, expected: Option<&DemoMoney>) -> String {
    let f = &money.figures;
    let currency = &f.account_currency;
    let mut out = String::new();
    let _ = writeln!(out, "  money, in the account currency {currency}:");
    let _ = writeln!(out, "    revenue                   {:>12}", f.revenue);
    for c in &money.by_currency {
        let missing = if c.rate_missing > 0 {
            format!("   {} without a rate (rate_missing)", c.rate_missing)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "      {:<3} {:>4} conversions {:>12} sent → {:>12} {currency}{missing}",
            c.currency, c.conversions, c.payout, c.payout_account
        );
    }
    let _ = writeln!(out, "    cost                      {:>12}", f.cost);
    let _ = writeln!(out, "    profit                    {:>12}", f.profit());
    let ratio = |r: Option<Decimal>, percent: bool| match (r, percent) {
        (None, _) => "-".to_string(),
        (Some(r), true) => format!("{:.1} %", r * Decimal::ONE_HUNDRED),
        (Some(r), false) => r.to_string(),
    };
    let _ = writeln!(
        out,
        "    ROI {}   CR {}   EPC {}   ({} clicks, {} conversions)",
        ratio(f.roi(), true),
        ratio(f.cr(), true),
        ratio(f.epc(), false),
        f.clicks,
        f.conversions
    );
    if f.unvalued > 0 {
        let _ = writeln!(
            out,
            "    {} rows without an exchange rate are left out until one is imported (`clickmatch rates import`)",
            f.unvalued
        );
    }
    if !money.payout_issues.is_empty() || money.cost_issues > 0 {
        let _ = writeln!(
            out,
            "  payout and cost issues (booked the configured default, raw text kept):"
        );
    }
    for issue in &money.payout_issues {
        let hint = MoneyIssue::hint_of_code(&issue.payout_issue);
        let _ = writeln!(
            out,
            "    {:<30}{:>4}   {hint}",
            issue.payout_issue, issue.conversions
        );
    }
    if money.cost_issues > 0 {
        let _ = writeln!(
            out,
            "    {:<30}{:>4}   clicks whose cost parameter could not be read: see clicks.cost_issue and cost_raw",
            "click cost", money.cost_issues
        );
    }
    if let Some(expected) = expected {
        match money_check(money, expected) {
            Ok(()) => {
                let _ = writeln!(
                    out,
                    "  check: revenue, cost and issues match what the demo sent ({} {currency} revenue, {} {currency} cost)",
                    expected.revenue.normalize(),
                    expected.cost.normalize()
                );
            }
            Err(mismatch) => {
                let _ = writeln!(out, "  check: MISMATCH {mismatch}");
            }
        }
    }
    out
}

/// Whether the money read back is what the demo sent.
pub fn money_check(money: &MoneyReport, expected: &DemoMoney) -> Result<(), String> {
    let f = &money.figures;
    let issues: BTreeMap<String, u64> = money
        .payout_issues
        .iter()
        .map(|i| (i.payout_issue.clone(), i.conversions))
        .collect();
    let mut wrong = Vec::new();
    if f.revenue != expected.revenue {
        wrong.push(format!(
            "revenue {} (expected {})",
            f.revenue, expected.revenue
        ));
    }
    if f.cost != expected.cost {
        wrong.push(format!("cost {} (expected {})", f.cost, expected.cost));
    }
    if issues != expected.payout_issues {
        wrong.push(format!(
            "payout issues {issues:?} (expected {:?})",
            expected.payout_issues
        ));
    }
    if money.cost_issues != expected.cost_issues {
        wrong.push(format!(
            "click cost issues {} (expected {})",
            money.cost_issues, expected.cost_issues
        ));
    }
    if f.unvalued > 0 {
        wrong.push(format!("{} rows without an exchange rate", f.unvalued));
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(wrong.join("; "))
    }
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
            money: MoneyReport::default(),
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
