//! Recovery: deciding again what did not attribute, once the operator fixed the cause.
//!
//! - [`reprocess_record`]: a stored unattributed postback (what `unattributed` keeps) as the
//!   record `clickmatch reprocess --apply` publishes: its original postback ID, receive time and
//!   parameters, the Kafka key the current configuration gives, marked [`Origin::Reprocess`].
//! - [`upload_record`]: a conversion a network reported but never posted back, as the record of
//!   a postback that would have carried it ([`Origin::Upload`]).
//! - [`predict`]: what the joiner will make of such a record, given its click and the
//!   conversion already stored under the same conversion ID (both looked up by the caller). It
//!   runs the join itself, over a state holding just that click, so a prediction follows every
//!   rule the joiner follows.
//!
//! The joiner decides both kinds of record exactly as a live postback: the window is measured
//! from the record's receive time, dedup holds against conversions that exist.

use std::net::IpAddr;

use crate::classify::partition_key;
use crate::join::{conversion_id, MemoryStore, PartitionJoin};
use crate::model::{ingest_verdict, Account, ParamNames, GLOBAL_ROUTE};
use crate::reason::Reason;
use crate::records::{
    ClickRecord, Conversion, IngestVerdict, Origin, Outcome, PostbackRecord, RECORD_VERSION,
};

/// What `unattributed` keeps of a postback: enough to publish it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPostback {
    pub postback_id: String,
    pub received_ms: u64,
    /// `global` for `/postback`, else the route name as requested.
    pub route: String,
    /// The reason it was first stored with.
    pub reason: Reason,
    /// `unattributed.raw_params`: a JSON list of `[name, value]` pairs.
    pub raw_params: String,
    pub remote_ip: String,
}

/// Why a record could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecoveryError {
    #[error(
        "postback {postback_id}: raw_params is not a JSON list of [name, value] pairs ({message})"
    )]
    RawParams {
        postback_id: String,
        message: String,
    },
    #[error("route `{0}` is not configured (expected `global` or a name under [routes])")]
    UnknownRoute(String),
}

/// The record `reprocess --apply` publishes for `stored`, under the current configuration.
///
/// A reprocessed postback is never trusted more than it was at ingest. The route token is not
/// kept (ingest redacts it), so:
/// - one refused as `unauthorized` stays refused when its route has a token; without a token
///   its source IP (kept) is checked against the route's `allow_ips` again;
/// - one sent to a route that was not configured had no token parameter redacted (no route
///   named it a token): it gets the whole check ingest would make now, token and IP;
/// - one admitted at ingest is admitted again if its IP passes the route's current
///   `allow_ips`.
///
/// The method is not kept with the row and no decision reads it: it is left empty.
pub fn reprocess_record(
    account: &Account,
    stored: &StoredPostback,
) -> Result<PostbackRecord, RecoveryError> {
    let mut params: Vec<(String, String)> =
        serde_json::from_str(&stored.raw_params).map_err(|e| RecoveryError::RawParams {
            postback_id: stored.postback_id.clone(),
            message: e.to_string(),
        })?;
    let route_name = (stored.route != GLOBAL_ROUTE).then(|| stored.route.clone());
    let route = account.route(route_name.as_deref());
    let ip: Option<IpAddr> = stored.remote_ip.parse().ok();
    let verdict = match (route, stored.reason) {
        (None, _) => IngestVerdict::UnknownRoute,
        (Some(route), Reason::Unauthorized) if route.token.is_some() => IngestVerdict::Unauthorized,
        (Some(route), Reason::UnknownRoute) => ingest_verdict(Some(route), &params, ip),
        (Some(route), _) if route.ip_allowed(ip) => IngestVerdict::Accepted,
        (Some(_), _) => IngestVerdict::Unauthorized,
    };
    if let Some(route) = route {
        route.redact_tokens(&mut params);
    }
    let mut record = PostbackRecord {
        v: RECORD_VERSION,
        postback_id: stored.postback_id.clone(),
        received_ms: stored.received_ms,
        method: String::new(),
        route: route_name,
        params,
        remote_ip: stored.remote_ip.clone(),
        verdict,
        key: String::new(),
        origin: Origin::Reprocess,
    };
    record.key = partition_key(account, &record);
    Ok(record)
}

/// A conversion a network reported but never posted back (a line of `clickmatch upload`, an
/// element of `POST /api/conversions`). Values as the network reports them; empty = absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedConversion {
    pub click_id: String,
    pub payout: String,
    pub currency: String,
    pub txid: String,
    pub event: String,
    pub status: String,
    /// When the conversion happened, Unix ms: the window is measured to it, and it is the
    /// conversion's time and version.
    pub time_ms: u64,
}

/// The record of `line` as a postback to `route` (`None`: the global route) would have carried
/// it: each value under the route's first name for it, admitted (the uploader holds the admin
/// token). Its postback ID is a digest of the route and every value, so uploading the same line
/// again is a replay that changes nothing.
pub fn upload_record(
    account: &Account,
    route: Option<&str>,
    line: &UploadedConversion,
) -> Result<PostbackRecord, RecoveryError> {
    let route_name = route.filter(|r| *r != GLOBAL_ROUTE).map(str::to_string);
    let Some(config) = account.route(route_name.as_deref()) else {
        return Err(RecoveryError::UnknownRoute(
            route.unwrap_or_default().into(),
        ));
    };
    let defaults = ParamNames::default();
    let name = |names: &[String], fallback: &[String]| {
        names
            .first()
            .or(fallback.first())
            .cloned()
            .unwrap_or_default()
    };
    let names = &config.params;
    let params: Vec<(String, String)> = [
        (name(&names.click_id, &defaults.click_id), &line.click_id),
        (name(&names.payout, &defaults.payout), &line.payout),
        (name(&names.currency, &defaults.currency), &line.currency),
        (name(&names.txid, &defaults.txid), &line.txid),
        (name(&names.event, &defaults.event), &line.event),
        (name(&names.status, &defaults.status), &line.status),
    ]
    .into_iter()
    .filter(|(_, value)| !value.is_empty())
    .map(|(name, value)| (name, value.clone()))
    .collect();
    let identity = format!(
        "upload\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}",
        config.name,
        line.click_id,
        line.payout,
        line.currency,
        line.txid,
        line.event,
        line.status,
        line.time_ms
    );
    let mut record = PostbackRecord {
        v: RECORD_VERSION,
        postback_id: conversion_id(&identity),
        received_ms: line.time_ms,
        method: String::new(),
        route: route_name,
        params,
        remote_ip: String::new(),
        verdict: IngestVerdict::Accepted,
        key: String::new(),
        origin: Origin::Upload,
    };
    record.key = partition_key(account, &record);
    Ok(record)
}

/// What a conversion ID already holds in ClickHouse (its latest version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredConversion {
    pub postback_id: String,
    pub status: String,
}

/// What the joiner is expected to decide about a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// A new conversion.
    Attributed(Conversion),
    /// A new version of a stored conversion (another status).
    StatusUpdate(Conversion),
    /// This very record made the stored conversion already (applied before): nothing changes.
    Unchanged(Conversion),
    Unattributed {
        reason: Reason,
        hint: String,
    },
}

impl Expected {
    /// `attributed`, `status_update`, `unchanged` or `unattributed`.
    pub fn outcome(&self) -> &'static str {
        match self {
            Expected::Attributed(_) => "attributed",
            Expected::StatusUpdate(_) => "status_update",
            Expected::Unchanged(_) => "unchanged",
            Expected::Unattributed { .. } => "unattributed",
        }
    }

    pub fn conversion(&self) -> Option<&Conversion> {
        match self {
            Expected::Attributed(c) | Expected::StatusUpdate(c) | Expected::Unchanged(c) => Some(c),
            Expected::Unattributed { .. } => None,
        }
    }

    /// The reason and hint of an unattributed outcome; for a conversion, its repair hint.
    pub fn reason_and_hint(&self) -> (Option<Reason>, &str) {
        match self {
            Expected::Unattributed { reason, hint } => (Some(*reason), hint),
            Expected::Attributed(c) | Expected::StatusUpdate(c) | Expected::Unchanged(c) => {
                (None, &c.repair)
            }
        }
    }
}

/// What the joiner will decide about `record`, given its click (`None`: not recorded) and
/// `stored`, which looks up a conversion ID in ClickHouse.
///
/// A prediction, not the decision: a click that arrives later, or a postback decided in
/// between, changes the answer; and the joiner's state forgets a conversion whose postbacks
/// left the topic's retention, where this sees the stored row.
pub fn predict(
    account: &Account,
    record: &PostbackRecord,
    click: Option<&ClickRecord>,
    stored: impl FnOnce(&str) -> Option<StoredConversion>,
) -> Expected {
    // The memory store does not fail.
    const INFALLIBLE: &str = "the memory store does not fail";
    let mut join = PartitionJoin::new(MemoryStore::default());
    if let Some(click) = click {
        join.on_click(account, click).expect(INFALLIBLE);
    }
    let outcome = match join
        .on_postback(account, record.clone(), 0, 0)
        .expect(INFALLIBLE)
    {
        Some(outcome) => outcome,
        // Waiting for a click that is not recorded: what the grace period ends in.
        None => join
            .advance(account, true, u64::MAX)
            .expect(INFALLIBLE)
            .pop()
            .map(|(_, outcome)| outcome)
            .expect("a pending postback is released once its grace has passed"),
    };
    match outcome {
        Outcome::Unattributed(row) => Expected::Unattributed {
            reason: row.reason,
            hint: row.hint,
        },
        Outcome::Attributed(conversion) => match stored(&conversion.conversion_id) {
            None => Expected::Attributed(conversion),
            Some(s) if s.postback_id == conversion.postback_id => Expected::Unchanged(conversion),
            Some(s) if s.status == conversion.status => Expected::Unattributed {
                reason: Reason::Duplicate,
                hint: Reason::Duplicate.default_hint().to_string(),
            },
            Some(_) => Expected::StatusUpdate(conversion),
        },
    }
}

#[cfg(test)]
mod tests;
