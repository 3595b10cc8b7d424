//! Where the state of one partition lives ([`JoinStore`], [`MemoryStore`]) and what it keeps:
//! clicks, the last conversion written under each dedup key, and postbacks still waiting.

use std::collections::{BTreeMap, HashMap};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::conversion_id;
use crate::model::DAY_MS;
use crate::records::{ClickRecord, Conversion, PostbackRecord};
use crate::subs::{CarriedSubs, SubSet};

/// What the join keeps of a click: just enough to attribute, and what its conversion rows copy
/// so that reports group them without a join (the rest is in ClickHouse).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinClick {
    pub click_id: String,
    pub time_ms: u64,
    pub campaign_id: String,
    pub offer_id: String,
    pub is_test: bool,
    pub foreign: bool,
    /// The click's country, device type, OS and browser (empty when unknown, and in state
    /// written before they were kept).
    #[serde(default)]
    pub country: String,
    #[serde(default)]
    pub device_type: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub browser: String,
    /// The subs its conversions carry (none in state written before they were kept).
    #[serde(default)]
    pub subs: CarriedSubs,
}

impl JoinClick {
    /// What the state keeps of `click`, with the subs of `carried` for its conversions.
    pub fn new(click: &ClickRecord, carried: SubSet) -> Self {
        JoinClick {
            click_id: click.click_id.clone(),
            time_ms: click.time_ms,
            campaign_id: click.campaign_id.clone(),
            offer_id: click.offer_id.clone(),
            is_test: click.is_test,
            foreign: click.foreign,
            country: click.country.clone(),
            device_type: click.enrichment.device_type.to_string(),
            os: click.enrichment.os.to_string(),
            browser: click.enrichment.browser.to_string(),
            subs: CarriedSubs::of(&click.subs, carried),
        }
    }
}

/// What the state keeps of the last version written under a dedup key: the postback it came
/// from and what the configuration made of that postback. With the postback's record and its
/// click, which never change, it rebuilds a replay's row exactly as first written, even after
/// a configuration change. Short names: one is stored per attributed conversion, and as a whole
/// `Conversion` (~600 bytes of JSON) it was most of the bytes the state wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    #[serde(rename = "p")]
    pub postback_id: String,
    #[serde(rename = "s")]
    pub status: String,
    #[serde(rename = "e")]
    pub event: String,
    #[serde(rename = "v")]
    pub payout: Decimal,
    #[serde(rename = "c", default, skip_serializing_if = "String::is_empty")]
    pub currency: String,
    #[serde(rename = "pr", default, skip_serializing_if = "String::is_empty")]
    pub payout_raw: String,
    #[serde(rename = "pi", default, skip_serializing_if = "String::is_empty")]
    pub payout_issue: String,
    #[serde(rename = "o", default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    #[serde(rename = "t", default, skip_serializing_if = "String::is_empty")]
    pub txid: String,
    #[serde(rename = "r", default, skip_serializing_if = "String::is_empty")]
    pub repair: String,
    #[serde(rename = "m", default, skip_serializing_if = "std::ops::Not::not")]
    pub offer_mismatch: bool,
    #[serde(rename = "x", default, skip_serializing_if = "std::ops::Not::not")]
    pub click_id_repaired: bool,
}

impl Seen {
    /// The part of `conversion` a seen entry keeps.
    pub fn of(conversion: &Conversion) -> Seen {
        Seen {
            postback_id: conversion.postback_id.clone(),
            status: conversion.status.clone(),
            event: conversion.event.clone(),
            payout: conversion.payout,
            currency: conversion.currency.clone(),
            payout_raw: conversion.payout_raw.clone(),
            payout_issue: conversion.payout_issue.clone(),
            source: conversion.source.clone(),
            txid: conversion.txid.clone(),
            repair: conversion.repair.clone(),
            offer_mismatch: conversion.offer_mismatch,
            click_id_repaired: conversion.click_id_repaired,
        }
    }

    /// The conversion's row: this entry, the postback's record and its click.
    pub(super) fn conversion(
        self,
        dedup_key: &str,
        record: &PostbackRecord,
        click: &JoinClick,
    ) -> Conversion {
        Conversion {
            conversion_id: conversion_id(dedup_key),
            click_id: click.click_id.clone(),
            click_time_ms: click.time_ms,
            conversion_time_ms: record.received_ms,
            postback_id: self.postback_id,
            campaign_id: click.campaign_id.clone(),
            offer_id: click.offer_id.clone(),
            route: record.route_label().to_string(),
            event: self.event,
            status: self.status,
            payout: self.payout,
            currency: self.currency,
            payout_raw: self.payout_raw,
            payout_issue: self.payout_issue,
            source: self.source,
            country: click.country.clone(),
            device_type: click.device_type.clone(),
            os: click.os.clone(),
            browser: click.browser.clone(),
            subs: click.subs.clone(),
            txid: self.txid,
            offer_mismatch: self.offer_mismatch,
            click_id_repaired: self.click_id_repaired,
            repair: self.repair,
            is_test: click.is_test,
            version: record.received_ms,
            origin: record.origin,
        }
    }
}

/// A postback waiting for its click, as stored (re-classified on restore: classification is a
/// pure function of the record and the configuration).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredPending {
    pub record: PostbackRecord,
    pub deadline_ms: u64,
    /// Wall-clock time the joiner first saw it.
    #[serde(default)]
    pub since_ms: u64,
}

/// A failure of the state store (disk I/O, corruption).
#[derive(Debug, thiserror::Error)]
#[error("state store: {0}")]
pub struct StoreError(pub Box<dyn std::error::Error + Send + Sync>);

pub type StoreResult<T> = Result<T, StoreError>;

/// The day bucket a click time belongs to: state is grouped by it so that expiry drops whole
/// buckets.
pub fn bucket_of(time_ms: u64) -> u64 {
    time_ms / DAY_MS
}

/// Where the state of one partition lives.
pub trait JoinStore {
    /// A click by key; `time_ms` (known for signed IDs) names its bucket.
    fn click(&self, key: &str, time_ms: Option<u64>) -> StoreResult<Option<JoinClick>>;
    fn put_click(&mut self, click: JoinClick) -> StoreResult<()>;
    /// The conversion last written under `dedup_key`, stored in the bucket of `click_time_ms`.
    fn seen(&self, dedup_key: &str, click_time_ms: u64) -> StoreResult<Option<Seen>>;
    fn put_seen(&mut self, dedup_key: &str, click_time_ms: u64, seen: &Seen) -> StoreResult<()>;
    fn put_pending(&mut self, position: i64, pending: &StoredPending) -> StoreResult<()>;
    fn remove_pending(&mut self, position: i64) -> StoreResult<()>;
    /// Every stored pending postback, oldest position first (for restore).
    fn pending(&self) -> StoreResult<Vec<(i64, StoredPending)>>;
    /// Drops every bucket entirely older than `before_ms`.
    fn expire(&mut self, before_ms: u64) -> StoreResult<()>;
    /// Approximate number of clicks held.
    fn clicks_len(&self) -> u64;
}

/// State in hash maps, for tests and tools.
#[derive(Debug, Default)]
pub struct MemoryStore {
    buckets: BTreeMap<u64, MemoryBucket>,
    foreign: HashMap<String, JoinClick>,
    pending: BTreeMap<i64, StoredPending>,
}

#[derive(Debug, Default)]
struct MemoryBucket {
    clicks: HashMap<String, JoinClick>,
    seen: HashMap<String, Seen>,
}

impl JoinStore for MemoryStore {
    fn click(&self, key: &str, time_ms: Option<u64>) -> StoreResult<Option<JoinClick>> {
        Ok(match time_ms {
            Some(t) => self
                .buckets
                .get(&bucket_of(t))
                .and_then(|b| b.clicks.get(key))
                .cloned(),
            None => self.foreign.get(key).cloned(),
        })
    }

    fn put_click(&mut self, click: JoinClick) -> StoreResult<()> {
        if click.foreign {
            self.foreign.insert(click.click_id.clone(), click);
        } else {
            let bucket = self.buckets.entry(bucket_of(click.time_ms)).or_default();
            bucket.clicks.insert(click.click_id.clone(), click);
        }
        Ok(())
    }

    fn seen(&self, dedup_key: &str, click_time_ms: u64) -> StoreResult<Option<Seen>> {
        Ok(self
            .buckets
            .get(&bucket_of(click_time_ms))
            .and_then(|b| b.seen.get(dedup_key))
            .cloned())
    }

    fn put_seen(&mut self, dedup_key: &str, click_time_ms: u64, seen: &Seen) -> StoreResult<()> {
        let bucket = self.buckets.entry(bucket_of(click_time_ms)).or_default();
        bucket.seen.insert(dedup_key.to_string(), seen.clone());
        Ok(())
    }

    fn put_pending(&mut self, position: i64, pending: &StoredPending) -> StoreResult<()> {
        self.pending.insert(position, pending.clone());
        Ok(())
    }

    fn remove_pending(&mut self, position: i64) -> StoreResult<()> {
        self.pending.remove(&position);
        Ok(())
    }

    fn pending(&self) -> StoreResult<Vec<(i64, StoredPending)>> {
        Ok(self.pending.iter().map(|(p, s)| (*p, s.clone())).collect())
    }

    fn expire(&mut self, before_ms: u64) -> StoreResult<()> {
        let keep_from = bucket_of(before_ms);
        self.buckets = self.buckets.split_off(&keep_from);
        self.foreign.retain(|_, c| c.time_ms >= before_ms);
        Ok(())
    }

    fn clicks_len(&self) -> u64 {
        let signed: usize = self.buckets.values().map(|b| b.clicks.len()).sum();
        (signed + self.foreign.len()) as u64
    }
}
