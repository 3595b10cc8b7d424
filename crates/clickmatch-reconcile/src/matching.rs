//! Pairing the export's conversions with ours.

use std::collections::HashMap;

use clickmatch_import::ExportRow;
use serde::Serialize;

use crate::Ours;

/// How a pair was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchedBy {
    Txid,
    ClickId,
}

impl MatchedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchedBy::Txid => "txid",
            MatchedBy::ClickId => "click_id",
        }
    }
}

/// An export row (index into the export's rows) and the conversion of ours (index) it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair {
    pub network: usize,
    pub ours: usize,
    pub by: MatchedBy,
}

/// Which conversions pair up, and which are on one side only (indices, in input order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matching {
    pub pairs: Vec<Pair>,
    pub only_network: Vec<usize>,
    /// Ours that are in scope ([`Ours::in_scope`]) and unpaired.
    pub only_here: Vec<usize>,
}

/// Pairs each export row with at most one conversion of ours, each used once.
///
/// 1. By transaction ID, for every row that has one: TUNE's and Everflow's identify the click
///    (its conversions share it), CAKE's lead ID the conversion.
/// 2. The rows left, by click ID, with a conversion whose transaction ID does not contradict
///    the row's (one side has none): two different transaction IDs are two conversions.
///
/// Among several candidates (a click with a lead and a sale) the one with the row's event
/// wins, then the one nearest in time, then the earliest.
pub fn match_conversions(network: &[ExportRow], ours: &[Ours]) -> Matching {
    let mut by_txid: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut by_click: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, conversion) in ours.iter().enumerate() {
        if !conversion.txid.is_empty() {
            by_txid.entry(&conversion.txid).or_default().push(i);
        }
        if !conversion.click_id.is_empty() {
            by_click.entry(&conversion.click_id).or_default().push(i);
        }
    }
    let mut used = vec![false; ours.len()];
    let mut paired: Vec<Option<Pair>> = vec![None; network.len()];

    for (n, row) in network.iter().enumerate() {
        if row.txid.is_empty() {
            continue;
        }
        let candidates = by_txid
            .get(row.txid.as_str())
            .map_or(&[][..], Vec::as_slice);
        if let Some(o) = best(row, ours, candidates, &used, |_| true) {
            used[o] = true;
            paired[n] = Some(Pair {
                network: n,
                ours: o,
                by: MatchedBy::Txid,
            });
        }
    }
    for (n, row) in network.iter().enumerate() {
        if paired[n].is_some() || row.click_id.is_empty() {
            continue;
        }
        let candidates = by_click
            .get(row.click_id.as_str())
            .map_or(&[][..], Vec::as_slice);
        let agrees = |c: &Ours| c.txid.is_empty() || row.txid.is_empty() || c.txid == row.txid;
        if let Some(o) = best(row, ours, candidates, &used, agrees) {
            used[o] = true;
            paired[n] = Some(Pair {
                network: n,
                ours: o,
                by: MatchedBy::ClickId,
            });
        }
    }

    let mut matching = Matching::default();
    for (n, pair) in paired.into_iter().enumerate() {
        match pair {
            Some(pair) => matching.pairs.push(pair),
            None => matching.only_network.push(n),
        }
    }
    matching.only_here = (0..ours.len())
        .filter(|&o| !used[o] && ours[o].in_scope)
        .collect();
    matching
}

fn best(
    row: &ExportRow,
    ours: &[Ours],
    candidates: &[usize],
    used: &[bool],
    allowed: impl Fn(&Ours) -> bool,
) -> Option<usize> {
    candidates
        .iter()
        .copied()
        .filter(|&o| !used[o] && allowed(&ours[o]))
        .min_by_key(|&o| {
            let c = &ours[o];
            let other_event = !(row.event.is_empty() || row.event.eq_ignore_ascii_case(&c.event));
            let distance = row
                .time
                .map_or(0, |t| (t - c.time).num_milliseconds().unsigned_abs());
            (other_event, distance, c.time)
        })
}
