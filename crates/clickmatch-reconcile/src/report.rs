//! The report: differences of the pairs, the fate of what only the network has, what only we
//! have. Serializes as the JSON of `clickmatch reconcile --format json`.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, SecondsFormat, Utc};
use clickmatch_import::{canonical_status, ExportRow, NetworkExport};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::{Matching, Ours};

/// What the comparison takes from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The export's file name, for the report.
    pub file: String,
    /// Payouts further apart than this (in the export's currency) differ.
    pub tolerance: Decimal,
    /// The most discrepancies that still pass.
    pub max_differences: usize,
    /// The period our side was read for ("only here").
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// An unattributed postback seen here for an ID of the export: the latest one, and how many.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub reason: String,
    pub hint: String,
    pub received: DateTime<Utc>,
    pub postbacks: u64,
}

/// What clickmatch holds about the IDs of the conversions only the network has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lookups {
    /// Unattributed postbacks by the click ID they named.
    pub unattributed_by_click: HashMap<String, Seen>,
    /// Unattributed postbacks by a transaction ID among their parameters.
    pub unattributed_by_txid: HashMap<String, Seen>,
    /// Clicks recorded here, with their time.
    pub clicks: HashMap<String, DateTime<Utc>>,
}

impl Lookups {
    /// Adds one unattributed postback under `key`: the latest received one's reason is kept.
    pub fn add_unattributed(
        map: &mut HashMap<String, Seen>,
        key: &str,
        reason: &str,
        hint: &str,
        received: DateTime<Utc>,
    ) {
        let seen = map.entry(key.to_string()).or_insert_with(|| Seen {
            reason: reason.to_string(),
            hint: hint.to_string(),
            received,
            postbacks: 0,
        });
        seen.postbacks += 1;
        if received > seen.received {
            seen.reason = reason.to_string();
            seen.hint = hint.to_string();
            seen.received = received;
        }
    }
}

/// What clickmatch did with a conversion only the network has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Fate {
    /// Postbacks arrived and ended unattributed: the latest one's reason and hint code.
    Unattributed {
        reason: String,
        hint: String,
        /// `click_id` or `txid`: how the postback was found.
        found_by: &'static str,
        postbacks: u64,
        last_received: String,
    },
    /// The click is recorded here but no postback named it: the network never posted back.
    NeverPostedBack { click_time: String },
    /// Neither a click nor a postback with this click ID (or transaction ID).
    NeverReceived,
    /// The export has no click ID for it and no postback named its transaction ID: the click
    /// did not carry our click ID to the network.
    NoClickId,
}

impl Fate {
    fn of(row: &ExportRow, lookups: &Lookups) -> Fate {
        let unattributed = |seen: &Seen, found_by| Fate::Unattributed {
            reason: seen.reason.clone(),
            hint: seen.hint.clone(),
            found_by,
            postbacks: seen.postbacks,
            last_received: rfc3339(seen.received),
        };
        if let Some(seen) = lookups.unattributed_by_click.get(&row.click_id) {
            return unattributed(seen, "click_id");
        }
        if let Some(seen) = lookups.unattributed_by_txid.get(&row.txid) {
            return unattributed(seen, "txid");
        }
        if let Some(time) = lookups.clicks.get(&row.click_id) {
            return Fate::NeverPostedBack {
                click_time: rfc3339(*time),
            };
        }
        if row.click_id.is_empty() {
            Fate::NoClickId
        } else {
            Fate::NeverReceived
        }
    }

    /// One line for the table.
    pub fn describe(&self) -> String {
        match self {
            Fate::Unattributed {
                reason,
                hint,
                postbacks,
                ..
            } => {
                let times = if *postbacks == 1 {
                    String::new()
                } else {
                    format!(" ({postbacks} postbacks)")
                };
                format!("unattributed: {reason} (hint {hint}){times}")
            }
            Fate::NeverPostedBack { .. } => "click recorded, never posted back".to_string(),
            Fate::NeverReceived => "never received (no click, no postback)".to_string(),
            Fate::NoClickId => "no click ID in the export, no postback".to_string(),
        }
    }
}

/// The export's side of a pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkSide {
    pub payout: Option<Decimal>,
    pub currency: Option<String>,
    pub status: Option<String>,
    pub status_raw: String,
}

/// Our side of a pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HereSide {
    pub payout: Decimal,
    pub currency: String,
    pub status: String,
    /// Why the booked payout may not be what was sent (`payout_macro`, …); empty when none.
    pub payout_issue: String,
}

/// A pair that disagrees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    pub line: u32,
    pub matched_by: &'static str,
    pub click_id: String,
    pub txid: String,
    pub conversion_id: String,
    pub offer_id: String,
    /// Which of `payout`, `currency`, `status` differ.
    pub fields: Vec<&'static str>,
    pub network: NetworkSide,
    pub here: HereSide,
}

/// A conversion only the export has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OnlyNetwork {
    pub line: u32,
    pub click_id: String,
    pub txid: String,
    pub event: String,
    pub time: Option<String>,
    pub payout: Option<Decimal>,
    pub currency: Option<String>,
    pub status: Option<String>,
    pub here: Fate,
}

/// A conversion only we have (in the compared period and offers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OnlyHere {
    pub conversion_id: String,
    pub click_id: String,
    pub txid: String,
    pub offer_id: String,
    pub event: String,
    pub status: String,
    pub payout: Decimal,
    pub currency: String,
    pub time: String,
}

/// What was compared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportSummary {
    pub file: String,
    /// `tune`, `everflow`, `cake` or `clickmatch`.
    pub format: &'static str,
    pub rows: usize,
    /// For each field, the export's column it was read from.
    pub columns: BTreeMap<String, String>,
}

/// The whole comparison.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub matched: usize,
    pub differences: Vec<Difference>,
    pub only_network: Vec<OnlyNetwork>,
    pub only_here: Vec<OnlyHere>,
    /// Differences + only in the network + only here: what `--max-differences` bounds.
    pub discrepancies: usize,
    pub max_differences: usize,
    /// Whether `discrepancies` is within `max_differences` (exit status 0).
    pub passed: bool,
    pub tolerance: Decimal,
    /// Our side's period (the export's own, with a margin, unless given).
    pub from: String,
    pub to: String,
    pub export: ExportSummary,
    /// What was not compared and why (no payout column, …).
    pub notes: Vec<String>,
}

/// Compares the pairs of `matching` and explains the rest.
pub fn build_report(
    export: &NetworkExport,
    ours: &[Ours],
    matching: &Matching,
    lookups: &Lookups,
    options: &Options,
) -> Report {
    let rows = &export.rows;
    let differences: Vec<Difference> = matching
        .pairs
        .iter()
        .filter_map(|pair| {
            let row = &rows[pair.network];
            let here = &ours[pair.ours];
            let fields = differing(row, here, options.tolerance);
            (!fields.is_empty()).then(|| Difference {
                line: row.line,
                matched_by: pair.by.as_str(),
                click_id: row.click_id.clone(),
                txid: row.txid.clone(),
                conversion_id: here.conversion_id.clone(),
                offer_id: here.offer_id.clone(),
                fields,
                network: NetworkSide {
                    payout: row.payout,
                    currency: row.currency.map(|c| c.to_string()),
                    status: row.status.clone(),
                    status_raw: row.status_raw.clone(),
                },
                here: HereSide {
                    payout: here.payout,
                    currency: here.currency.clone(),
                    status: here.status.clone(),
                    payout_issue: here.payout_issue.clone(),
                },
            })
        })
        .collect();
    let only_network: Vec<OnlyNetwork> = matching
        .only_network
        .iter()
        .map(|&n| {
            let row = &rows[n];
            OnlyNetwork {
                line: row.line,
                click_id: row.click_id.clone(),
                txid: row.txid.clone(),
                event: row.event.clone(),
                time: row.time.map(rfc3339),
                payout: row.payout,
                currency: row.currency.map(|c| c.to_string()),
                status: row.status.clone(),
                here: Fate::of(row, lookups),
            }
        })
        .collect();
    let only_here: Vec<OnlyHere> = matching
        .only_here
        .iter()
        .map(|&o| {
            let c = &ours[o];
            OnlyHere {
                conversion_id: c.conversion_id.clone(),
                click_id: c.click_id.clone(),
                txid: c.txid.clone(),
                offer_id: c.offer_id.clone(),
                event: c.event.clone(),
                status: c.status.clone(),
                payout: c.payout,
                currency: c.currency.clone(),
                time: rfc3339(c.time),
            }
        })
        .collect();
    let discrepancies = differences.len() + only_network.len() + only_here.len();
    Report {
        matched: matching.pairs.len(),
        differences,
        only_network,
        only_here,
        discrepancies,
        max_differences: options.max_differences,
        passed: discrepancies <= options.max_differences,
        tolerance: options.tolerance,
        from: rfc3339(options.from),
        to: rfc3339(options.to),
        export: ExportSummary {
            file: options.file.clone(),
            format: export.format.name,
            rows: rows.len(),
            columns: export
                .columns
                .iter()
                .map(|(field, column)| (field.name().to_string(), column.clone()))
                .collect(),
        },
        notes: notes(export),
    }
}

/// The fields of a pair that disagree. Payouts are compared in the export's currency: when the
/// export names one and ours is another, that is the difference and amounts are not compared.
fn differing(row: &ExportRow, here: &Ours, tolerance: Decimal) -> Vec<&'static str> {
    let mut fields = Vec::new();
    if let Some(payout) = row.payout {
        match row.currency {
            Some(currency) if !currency.as_str().eq_ignore_ascii_case(&here.currency) => {
                fields.push("currency");
            }
            _ if (payout - here.payout).abs() > tolerance => fields.push("payout"),
            _ => {}
        }
    }
    if let Some(status) = &row.status {
        if *status != canonical_status(&here.status) {
            fields.push("status");
        }
    }
    fields
}

fn notes(export: &NetworkExport) -> Vec<String> {
    use clickmatch_import::ExportField as F;
    let mut notes = Vec::new();
    if !export.has(F::Payout) {
        notes.push("the export has no payout column: payouts not compared".to_string());
    } else if !export.has(F::Currency) && export.rows.iter().any(|r| r.currency.is_none()) {
        notes.push(
            "the export names no currency for some payouts: those are compared with ours as if \
             in our currency"
                .to_string(),
        );
    }
    if !export.has(F::Status) {
        notes.push("the export has no status column: statuses not compared".to_string());
    }
    if !export.has(F::ClickId) {
        notes.push("the export has no click ID column: matched by transaction ID only".to_string());
    }
    notes
}

pub(crate) fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}
