//! What a run tells the operator: a result per record, and the before → after table.

use std::collections::BTreeMap;
use std::fmt::Write;

use clickmatch_clickhouse::RecoveredRow;
use serde::Serialize;

use crate::Planned;

/// One record's result: predicted (dry run), or the joiner's decision read back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineResult {
    /// The upload's line or element (1-based); absent for a reprocessed postback.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    pub postback_id: String,
    /// `attributed`, `status_update`, `unchanged` (this record made the conversion before),
    /// `unattributed`, or `pending` (applied, but not decided within the wait).
    pub result: String,
    /// Of an unattributed result.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// The fix for an unattributed result; a conversion's repair hint.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub hint: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub conversion_id: String,
    /// `false`: what the current configuration predicts; `true`: what the joiner decided.
    pub decided: bool,
}

impl LineResult {
    pub fn predicted(planned: &Planned) -> LineResult {
        let (reason, hint) = planned.expected.reason_and_hint();
        LineResult {
            line: planned.line,
            postback_id: planned.record.postback_id.clone(),
            result: planned.expected.outcome().to_string(),
            reason: reason.map(|r| r.as_str().to_string()).unwrap_or_default(),
            hint: hint.to_string(),
            conversion_id: planned
                .expected
                .conversion()
                .map(|c| c.conversion_id.clone())
                .unwrap_or_default(),
            decided: false,
        }
    }

    /// The joiner's decision `row` about `planned`; `None`: not decided yet (`pending`).
    pub fn decided(planned: &Planned, row: Option<&RecoveredRow>) -> LineResult {
        let Some(row) = row else {
            return LineResult {
                result: "pending".into(),
                reason: String::new(),
                hint: String::new(),
                conversion_id: String::new(),
                decided: false,
                ..LineResult::predicted(planned)
            };
        };
        LineResult {
            line: planned.line,
            postback_id: row.postback_id.clone(),
            result: row.outcome.clone(),
            reason: row.reason.clone(),
            hint: row.hint.clone(),
            conversion_id: row.conversion_id.clone(),
            decided: true,
        }
    }
}

/// One cell of the before → after table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct SummaryRow {
    /// `reason (hint)` a reprocessed postback had, `upload` for an uploaded line.
    pub before: String,
    /// `attributed`, `unattributed: reason (hint)`, ….
    pub after: String,
    pub records: u64,
}

/// The before → after table of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub rows: Vec<SummaryRow>,
    /// Whether `after` is the joiner's decisions or predictions.
    pub decided: bool,
}

impl Summary {
    /// The table of `planned` with its `results` (same order).
    pub fn of(planned: &[Planned], results: &[LineResult]) -> Summary {
        let mut cells: BTreeMap<(String, String), u64> = BTreeMap::new();
        for (p, r) in planned.iter().zip(results) {
            let before = match &p.before {
                Some((reason, hint)) => format!("{reason} ({hint})"),
                None => "upload".to_string(),
            };
            let after = match (r.result.as_str(), r.reason.is_empty()) {
                ("unattributed", false) => format!("unattributed: {} ({})", r.reason, r.hint),
                (result, _) => result.to_string(),
            };
            *cells.entry((before, after)).or_default() += 1;
        }
        Summary {
            rows: cells
                .into_iter()
                .map(|((before, after), records)| SummaryRow {
                    before,
                    after,
                    records,
                })
                .collect(),
            decided: !results.is_empty() && results.iter().all(|r| r.decided),
        }
    }

    /// An aligned text table.
    pub fn render(&self) -> String {
        let head = (
            "before",
            if self.decided {
                "after (decided)"
            } else {
                "after (predicted)"
            },
        );
        let before_w = self
            .rows
            .iter()
            .map(|r| r.before.len())
            .chain([head.0.len()])
            .max();
        let after_w = self
            .rows
            .iter()
            .map(|r| r.after.len())
            .chain([head.1.len()])
            .max();
        let (bw, aw) = (before_w.unwrap_or(0), after_w.unwrap_or(0));
        let mut out = String::new();
        let _ = writeln!(out, "{:bw$}  →  {:aw$}  records", head.0, head.1);
        for row in &self.rows {
            let _ = writeln!(
                out,
                "{:bw$}  →  {:aw$}  {}",
                row.before, row.after, row.records
            );
        }
        let total: u64 = self.rows.iter().map(|r| r.records).sum();
        let _ = writeln!(out, "{:bw$}     {:aw$}  {total}", "", "total");
        out
    }
}

#[cfg(test)]
mod tests {
    use clickmatch_core::records::{Conversion, PostbackRecord};
    use clickmatch_core::recovery::Expected;
    use clickmatch_core::Reason;

    use super::*;

    fn planned(id: &str, before: Option<&str>, expected: Expected) -> Planned {
        let record: PostbackRecord = serde_json::from_str(&format!(
            r#"{{"v":1,"postback_id":"{id}","received_ms":1,"method":"","params":[]}}"#
        ))
        .unwrap();
        Planned {
            line: before.is_none().then_some(2),
            record,
            before: before.map(|b| (b.to_string(), "configure_route".to_string())),
            expected,
        }
    }

    #[test]
    fn the_table_counts_before_and_after_and_says_whether_it_was_decided() {
        let plans = vec![
            planned(
                "p1",
                Some("unknown_route"),
                Expected::Attributed(Conversion::example()),
            ),
            planned(
                "p2",
                Some("unknown_route"),
                Expected::Attributed(Conversion::example()),
            ),
            planned(
                "p3",
                Some("unknown_route"),
                Expected::Unattributed {
                    reason: Reason::UnknownClickId,
                    hint: "click_never_recorded".into(),
                },
            ),
        ];
        let predicted: Vec<LineResult> = plans.iter().map(LineResult::predicted).collect();
        let summary = Summary::of(&plans, &predicted);
        assert!(!summary.decided);
        assert_eq!(summary.rows[0].after, "attributed");
        assert_eq!(summary.rows[0].records, 2);
        assert_eq!(
            summary.rows[1].after,
            "unattributed: unknown_click_id (click_never_recorded)"
        );
        let text = summary.render();
        assert!(text.contains("after (predicted)"), "{text}");
        assert!(
            text.contains("unknown_route (configure_route)  →  attributed"),
            "{text}"
        );
        assert!(text.trim_end().ends_with('3'), "{text}");

        // Applied: p3 not decided within the wait.
        let row = RecoveredRow {
            postback_id: "p1".into(),
            origin: "reprocess".into(),
            received_time: 0,
            received_time_ms: 1,
            decided_time_ms: 2,
            route: "sale2".into(),
            outcome: "attributed".into(),
            reason: String::new(),
            hint: String::new(),
            click_id: "c".into(),
            conversion_id: "conv-1".into(),
            offer_id: "7".into(),
            is_test: false,
            payout: Default::default(),
            currency: "USD".into(),
        };
        let decided = LineResult::decided(&plans[0], Some(&row));
        assert!(decided.decided);
        assert_eq!(decided.conversion_id, "conv-1");
        let pending = LineResult::decided(&plans[2], None);
        assert_eq!(
            (pending.result.as_str(), pending.decided),
            ("pending", false)
        );
        assert!(Summary::of(&plans[..1], &[decided]).decided);
        let upload = planned("u1", None, Expected::Attributed(Conversion::example()));
        let json = serde_json::to_string(&LineResult::predicted(&upload)).unwrap();
        assert_eq!(
            json,
            r#"{"line":2,"postback_id":"u1","result":"attributed","conversion_id":"conv-1","decided":false}"#
        );
    }
}
