//! `clickmatch reconcile`: a network's conversion export against clickmatch's conversions.
//!
//! Pure logic, no I/O: the caller reads the export ([`clickmatch_import::parse_export`]) and
//! our side from ClickHouse (the latest version of each conversion, and for the conversions
//! only the network has, what clickmatch did with their click IDs), then
//!
//! 1. [`match_conversions`] pairs them: by transaction ID first, then by click ID;
//! 2. [`build_report`] compares each pair (payout beyond a tolerance, currency, status) and
//!    says, for each conversion only the network has, what became of it here ([`Fate`]);
//! 3. [`render_table`] prints it for a person; the [`Report`] serializes as the JSON of
//!    `--format json`.
//!
//! Payouts are compared in the export's currency against the payout clickmatch booked as the
//! postback sent it (`conversions.payout` and `currency`, not the account-currency value):
//! both sides then speak of the same amount. A pair in two different currencies is a
//! `currency` difference; its amounts are not compared.

mod matching;
mod render;
mod report;

pub use matching::{match_conversions, MatchedBy, Matching, Pair};
pub use render::render_table;
pub use report::{
    build_report, Difference, ExportSummary, Fate, HereSide, Lookups, NetworkSide, OnlyHere,
    OnlyNetwork, Options, Report, Seen,
};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

/// One conversion of ours, as its latest version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ours {
    pub conversion_id: String,
    pub click_id: String,
    pub txid: String,
    pub offer_id: String,
    pub event: String,
    pub status: String,
    /// As booked from the postback, in `currency`.
    pub payout: Decimal,
    pub currency: String,
    pub payout_issue: String,
    /// When its latest version was received.
    pub time: DateTime<Utc>,
    /// In the compared period and among the compared offers: listed as "only here" when the
    /// export does not have it. Conversions found only through the export's IDs are not.
    pub in_scope: bool,
}

#[cfg(test)]
mod tests;
