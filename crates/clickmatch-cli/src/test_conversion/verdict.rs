//! Judging what happened to the test postback ([`verdict`], pure), and the lines that say why
//! it did not land as expected.

use std::time::Duration;

use clickmatch_clickhouse::outcomes::{ConversionFound, UnattributedFound};
use clickmatch_core::money::MoneyIssue;
use clickmatch_core::reason::hint_text;
use rust_decimal::Decimal;

use super::network::{TestClick, TEST_PAYOUT};
use super::plan::Plan;

/// What happened to the test postback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Landed {
    Conversion(ConversionFound),
    Unattributed(UnattributedFound),
    /// Ingest did not record the postback (no postback ID in its answer).
    NotRecorded {
        status: u16,
        body: String,
    },
    /// No row within the timeout.
    Nothing {
        postback_id: String,
        waited: Duration,
    },
}

/// Everything [`verdict`] judges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub click: TestClick,
    /// The URL fired (macros substituted).
    pub fired_url: String,
    pub http_status: u16,
    pub landed: Landed,
    /// From sending the postback to seeing its row.
    pub measured: Option<Duration>,
}

/// The printed outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// True only when the conversion landed attributed as expected.
    pub ok: bool,
    /// `attributed`, an unattributed reason, `not_recorded` or `timeout`.
    pub outcome: String,
    pub lines: Vec<String>,
}

/// Value display: `1.230000` → `1.23`.
fn money(value: &str) -> String {
    value
        .parse::<Decimal>()
        .map(|d| d.normalize().to_string())
        .unwrap_or_else(|_| value.to_string())
}

/// The problem line of a conversion whose payout was not booked as sent.
fn payout_problem(plan: &Plan, row: &ConversionFound) -> String {
    let booked = format!("{} {}", money(&row.payout), row.currency);
    let issue = &row.payout_issue;
    match MoneyIssue::from_code(issue) {
        Some(MoneyIssue::PayoutMissing) if plan.preset.payout.is_none() => format!(
            "the payout was not booked as sent ({issue}, booked {booked}): {} sends no payout; \
             set default_payout (or payout = \"fixed\" with fixed_payout) on offer {}",
            plan.preset.title, plan.offer
        ),
        Some(MoneyIssue::PayoutMissing) => format!(
            "the payout was not booked as sent ({issue}, booked {booked}): the test sent \
             {TEST_PAYOUT} but route {} found no payout in the postback; check that its payout \
             names include the one in the postback URL",
            plan.route_label()
        ),
        Some(MoneyIssue::CurrencyConflict | MoneyIssue::CurrencyUnknown) => format!(
            "the payout's currency was not booked as sent ({issue}, booked {booked}): the test \
             sent {TEST_PAYOUT} {}, the route's currency",
            plan.route.currency
        ),
        _ => format!(
            "the payout was not booked as sent ({issue}, booked {booked}): the test sent \
             {TEST_PAYOUT}, the row kept {:?}",
            row.payout_raw
        ),
    }
}

/// Turns what was observed into the verdict and the lines to print. Pure.
pub fn verdict(plan: &Plan, observed: &Observation) -> Verdict {
    let preset = plan.preset;
    let click = &observed.click;
    let mut lines = Vec::new();
    let latency = |lines: &mut Vec<String>, row_ms: u32| {
        let measured = observed
            .measured
            .map(|d| format!(", {} ms measured from sending the postback", d.as_millis()))
            .unwrap_or_default();
        lines.push(format!(
            "latency: {row_ms} ms from ingest receiving the postback to the ClickHouse row{measured}"
        ));
    };
    let offer_link_fix = || {
        format!(
            "fix: put the click ID in `{}` of the campaign's offer link (clickmatch offer-url --network {} --url OFFER_LINK)",
            preset.offer_param, preset.name
        )
    };
    let carried_in = click
        .click_param
        .as_deref()
        .map(|p| format!("`{p}`"))
        .unwrap_or_else(|| "no parameter".to_string());

    match &observed.landed {
        Landed::Conversion(row) => {
            lines.push(format!("attributed: conversion {}", row.conversion_id));
            lines.push(format!(
                "  offer {}, route {}, event {}, status {}, payout {} {}, txid {}, is_test {}",
                row.offer_id,
                row.route,
                row.event,
                row.status,
                money(&row.payout),
                row.currency,
                row.txid,
                row.is_test
            ));
            if !row.payout_issue.is_empty() {
                lines.push(format!(
                    "  payout issue {}: sent {:?}: {}",
                    row.payout_issue,
                    row.payout_raw,
                    MoneyIssue::hint_of_code(&row.payout_issue)
                ));
            }
            latency(&mut lines, row.latency_ms);
            let mut problems = Vec::new();
            // A payout issue fails the test (a non-zero exit), like any problem here: the test
            // sent a plain, known payout ({TEST_PAYOUT}) through the very URL the network is
            // given, so an issue means the setup, not the network, keeps payouts from being
            // booked (a preset that sends no payout under an offer without default_payout, a
            // route that reads the payout under another name, a currency the route cannot
            // read). Every real conversion would then be booked 0 or the default and flagged;
            // an exit status of 0 would let a scripted check pass a setup that loses revenue.
            if !row.payout_issue.is_empty() {
                problems.push(payout_problem(plan, row));
            }
            if row.click_id != click.click_id {
                problems.push(format!(
                    "attributed to click {} instead of the test click {}",
                    row.click_id, click.click_id
                ));
            }
            if row.click_id_repaired != 0 {
                problems.push(format!(
                    "the click ID had to be repaired ({}): {}",
                    row.repair_hint,
                    hint_text(&row.repair_hint)
                ));
            }
            if row.offer_mismatch != 0 {
                problems.push(format!(
                    "the postback names offer {} but the click was for offer {}: the network's offer ID differs from clickmatch's",
                    row.offer_id, plan.offer
                ));
            }
            if row.route != plan.route_label() {
                problems.push(format!(
                    "landed on route {} instead of {}",
                    row.route,
                    plan.route_label()
                ));
            }
            let expected_status = plan.expected_status();
            if row.status != expected_status {
                problems.push(format!(
                    "status {:?} instead of {expected_status:?}: the route does not map {}'s status codes; set network = \"{}\" on the route or add a status_map",
                    row.status, preset.title, preset.name
                ));
            }
            if row.is_test == 0 {
                problems.push(
                    "the conversion is not marked is_test: the click was not recorded as a test click (cm_test=1)"
                        .to_string(),
                );
            }
            let ok = problems.is_empty();
            for problem in problems {
                lines.push(format!("problem: {problem}"));
            }
            lines.push(if ok {
                format!("OK: the {} test conversion landed attributed", preset.title)
            } else {
                "FAILED: attributed, but not as expected".to_string()
            });
            Verdict {
                ok,
                outcome: "attributed".into(),
                lines,
            }
        }
        Landed::Unattributed(row) => {
            lines.push(format!("unattributed: {}", row.reason));
            lines.push(format!("  hint {}: {}", row.hint, hint_text(&row.hint)));
            lines.push(format!(
                "  route {}, raw click ID {:?}, ingest received {}",
                row.route, row.raw_click_id, row.raw_params
            ));
            latency(&mut lines, row.latency_ms);
            let macro_token = preset.click_id.macro_token;
            if click.network_value.is_none() {
                if preset.hash_dialect() {
                    lines.push(format!(
                        "why: the offer link carries the click ID in {carried_in}, not `{}`, so {} had nothing for {macro_token} and sent it unencoded: the `#` starts a URL fragment and everything after it was cut",
                        preset.offer_param, preset.title
                    ));
                } else {
                    lines.push(format!(
                        "why: the network sent `{macro_token}` literally: the offer link carries the click ID in {carried_in}, not `{}`",
                        preset.offer_param
                    ));
                }
                lines.push(offer_link_fix());
            } else if row.reason == "unknown_click_id" {
                lines.push(
                    "why: the joiner never saw the test click within the grace period: do ingest and the joiner use the same Kafka topics?"
                        .to_string(),
                );
            } else if row.reason == "unauthorized" {
                lines.push(
                    "fix: copy the URL again from `clickmatch postback-url --network ... --route ...`: the token in it is the route's"
                        .to_string(),
                );
            } else if row.reason == "missing_click_id" {
                lines.push(format!(
                    "fix: the route must read `{}` (set network = \"{}\" on it, or add the name to its click_id list)",
                    preset.click_id.param, preset.name
                ));
            }
            lines.push(format!(
                "FAILED: the {} test conversion was not attributed",
                preset.title
            ));
            Verdict {
                ok: false,
                outcome: row.reason.clone(),
                lines,
            }
        }
        Landed::NotRecorded { status, body } => {
            lines.push(format!(
                "not recorded: ingest answered {status}: {}",
                body.trim()
            ));
            lines.push(match status {
                503 => "fix: ingest could not reach Kafka; check the broker and retry".to_string(),
                400 => "fix: the postback was over ingest's size limits".to_string(),
                _ => format!(
                    "fix: is {} clickmatch's ingest? (postbacks go to {}/postback)",
                    plan.ingest_url, plan.ingest_url
                ),
            });
            lines.push("FAILED: the test postback was not recorded".to_string());
            Verdict {
                ok: false,
                outcome: "not_recorded".into(),
                lines,
            }
        }
        Landed::Nothing {
            postback_id,
            waited,
        } => {
            lines.push(format!(
                "nothing landed: no row for postback {postback_id} in {db}.conversions or {db}.unattributed after {} s",
                waited.as_secs(),
                db = plan.settings.database
            ));
            lines.push(format!(
                "fix: is the joiner running, consuming ingest's topics and writing to {} (database {})?",
                plan.settings.url, plan.settings.database
            ));
            lines.push("FAILED: the test conversion did not land".to_string());
            Verdict {
                ok: false,
                outcome: "timeout".into(),
                lines,
            }
        }
    }
}
