//! Row types, field for field the columns of `migrations/`, built from the core types.
//!
//! Times are Unix milliseconds in core; a `DateTime` column holds seconds (RowBinary `u32`), and
//! a `*_ms` `UInt64` column keeps the milliseconds. Payouts are `Decimal(18, 6)`: RowBinary
//! carries them as `i64` scaled by 10^6.

use clickmatch_core::records::{ClickRecord, Conversion, Origin, Outcome, Unattributed};
use clickmatch_core::subs::{CarriedSubs, SubSet};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

/// Sub-parameters stored per click (`sub1`…`sub10`).
pub use clickmatch_core::records::SUB_COUNT;

mod columns;
pub use columns::{CLICK_COLUMNS, CONVERSION_COLUMNS, RECOVERED_COLUMNS, UNATTRIBUTED_COLUMNS};

/// Decimal places of the `payout` columns.
pub const PAYOUT_SCALE: u32 = 6;

/// Largest mantissa a `Decimal(18, 6)` holds: 999 999 999 999.999999.
const PAYOUT_MAX_MANTISSA: i64 = 999_999_999_999_999_999;

/// A row of `clicks`.
#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Serialize, Deserialize)]
pub struct ClickRow {
    pub click_id: String,
    /// Unix seconds (`DateTime`).
    pub click_time: u32,
    pub click_time_ms: u64,
    pub campaign_id: String,
    pub offer_id: String,
    pub source: String,
    pub sub1: String,
    pub sub2: String,
    pub sub3: String,
    pub sub4: String,
    pub sub5: String,
    pub sub6: String,
    pub sub7: String,
    pub sub8: String,
    pub sub9: String,
    pub sub10: String,
    pub ip: String,
    pub user_agent: String,
    pub country: String,
    pub is_test: bool,
    pub is_foreign: bool,
    #[serde(with = "payout")]
    pub cost: Decimal,
    pub cost_currency: String,
    pub cost_raw: String,
    pub cost_issue: String,
    pub region: String,
    pub city: String,
    pub asn: u32,
    pub isp: String,
    pub device_type: String,
    pub os: String,
    pub browser: String,
    pub is_bot: bool,
}

/// A row of `conversions`: one version of an attributed conversion.
#[derive(Debug, Clone, Default, PartialEq, Eq, clickhouse::Row, Serialize, Deserialize)]
pub struct ConversionRow {
    pub conversion_id: String,
    pub click_id: String,
    pub click_time: u32,
    pub conversion_time: u32,
    pub conversion_time_ms: u64,
    pub postback_id: String,
    pub campaign_id: String,
    pub offer_id: String,
    pub route: String,
    pub event: String,
    pub status: String,
    #[serde(with = "payout")]
    pub payout: Decimal,
    pub currency: String,
    pub txid: String,
    pub offer_mismatch: bool,
    pub click_id_repaired: bool,
    pub repair_hint: String,
    pub is_test: bool,
    pub version: u64,
    /// Postback received → row handed to ClickHouse, in ms.
    pub latency_ms: u32,
    pub payout_raw: String,
    pub payout_issue: String,
    pub source: String,
    pub country: String,
    pub device_type: String,
    pub os: String,
    pub browser: String,
    /// `postback`, `upload` or `reprocess` ([`Origin`]).
    pub origin: String,
    /// The click's subs this row carries, bit `i` for `sub{i + 1}` (`[joiner]
    /// conversion_subs`); a report reads the others from the click.
    pub subs_carried: u16,
    pub sub1: String,
    pub sub2: String,
    pub sub3: String,
    pub sub4: String,
    pub sub5: String,
    pub sub6: String,
    pub sub7: String,
    pub sub8: String,
    pub sub9: String,
    pub sub10: String,
}

/// A row of `unattributed`.
#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Serialize, Deserialize)]
pub struct UnattributedRow {
    pub postback_id: String,
    pub received_time: u32,
    pub received_time_ms: u64,
    pub route: String,
    pub reason: String,
    pub raw_click_id: String,
    pub offer_id: String,
    #[serde(with = "payout")]
    pub payout: Decimal,
    pub currency: String,
    pub remote_ip: String,
    pub raw_params: String,
    pub hint: String,
    pub is_test: bool,
    /// Postback received → row handed to ClickHouse, in ms.
    pub latency_ms: u32,
}

/// A [`ClickRow`] borrowing from its click: what the sink writes, without copying a string.
#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Serialize)]
pub struct ClickRowRef<'a> {
    pub click_id: &'a str,
    pub click_time: u32,
    pub click_time_ms: u64,
    pub campaign_id: &'a str,
    pub offer_id: &'a str,
    pub source: &'a str,
    pub sub1: &'a str,
    pub sub2: &'a str,
    pub sub3: &'a str,
    pub sub4: &'a str,
    pub sub5: &'a str,
    pub sub6: &'a str,
    pub sub7: &'a str,
    pub sub8: &'a str,
    pub sub9: &'a str,
    pub sub10: &'a str,
    pub ip: &'a str,
    pub user_agent: &'a str,
    pub country: &'a str,
    pub is_test: bool,
    pub is_foreign: bool,
    /// Rounded and clamped when serialized.
    #[serde(with = "payout")]
    pub cost: Decimal,
    pub cost_currency: &'a str,
    pub cost_raw: &'a str,
    pub cost_issue: &'a str,
    pub region: &'a str,
    pub city: &'a str,
    pub asn: u32,
    pub isp: &'a str,
    pub device_type: &'a str,
    pub os: &'a str,
    pub browser: &'a str,
    pub is_bot: bool,
}

/// A [`ConversionRow`] borrowing from its conversion.
#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Serialize)]
pub struct ConversionRowRef<'a> {
    pub conversion_id: &'a str,
    pub click_id: &'a str,
    pub click_time: u32,
    pub conversion_time: u32,
    pub conversion_time_ms: u64,
    pub postback_id: &'a str,
    pub campaign_id: &'a str,
    pub offer_id: &'a str,
    pub route: &'a str,
    pub event: &'a str,
    pub status: &'a str,
    /// Rounded and clamped when serialized.
    #[serde(with = "payout")]
    pub payout: Decimal,
    pub currency: &'a str,
    pub txid: &'a str,
    pub offer_mismatch: bool,
    pub click_id_repaired: bool,
    pub repair_hint: &'a str,
    pub is_test: bool,
    pub version: u64,
    pub latency_ms: u32,
    pub payout_raw: &'a str,
    pub payout_issue: &'a str,
    pub source: &'a str,
    pub country: &'a str,
    pub device_type: &'a str,
    pub os: &'a str,
    pub browser: &'a str,
    pub origin: &'static str,
    pub subs_carried: u16,
    pub sub1: &'a str,
    pub sub2: &'a str,
    pub sub3: &'a str,
    pub sub4: &'a str,
    pub sub5: &'a str,
    pub sub6: &'a str,
    pub sub7: &'a str,
    pub sub8: &'a str,
    pub sub9: &'a str,
    pub sub10: &'a str,
}

/// An [`UnattributedRow`] borrowing from its outcome.
#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Serialize)]
pub struct UnattributedRowRef<'a> {
    pub postback_id: &'a str,
    pub received_time: u32,
    pub received_time_ms: u64,
    pub route: &'a str,
    pub reason: &'a str,
    pub raw_click_id: &'a str,
    pub offer_id: &'a str,
    /// Rounded and clamped when serialized.
    #[serde(with = "payout")]
    pub payout: Decimal,
    pub currency: &'a str,
    pub remote_ip: &'a str,
    pub raw_params: &'a str,
    pub hint: &'a str,
    pub is_test: bool,
    pub latency_ms: u32,
}

impl<'a> ClickRowRef<'a> {
    pub fn new(click: &'a ClickRecord) -> ClickRowRef<'a> {
        let sub = |i: usize| click.subs.get(i).map_or("", String::as_str);
        ClickRowRef {
            click_id: &click.click_id,
            click_time: datetime(click.time_ms),
            click_time_ms: click.time_ms,
            campaign_id: &click.campaign_id,
            offer_id: &click.offer_id,
            source: &click.source,
            sub1: sub(0),
            sub2: sub(1),
            sub3: sub(2),
            sub4: sub(3),
            sub5: sub(4),
            sub6: sub(5),
            sub7: sub(6),
            sub8: sub(7),
            sub9: sub(8),
            sub10: sub(9),
            ip: &click.ip,
            user_agent: &click.user_agent,
            country: &click.country,
            is_test: click.is_test,
            is_foreign: click.foreign,
            cost: click.cost.as_ref().map_or(Decimal::ZERO, |c| c.amount),
            cost_currency: click.cost.as_ref().map_or("", |c| c.currency.as_str()),
            cost_raw: click.cost.as_ref().map_or("", |c| c.raw.as_str()),
            cost_issue: click.cost.as_ref().map_or("", |c| c.issue.as_str()),
            region: &click.enrichment.region,
            city: &click.enrichment.city,
            asn: click.enrichment.asn,
            isp: &click.enrichment.isp,
            device_type: &click.enrichment.device_type,
            os: &click.enrichment.os,
            browser: &click.enrichment.browser,
            is_bot: click.enrichment.is_bot,
        }
    }
}

impl ClickRow {
    pub fn new(click: &ClickRecord) -> ClickRow {
        let row = ClickRowRef::new(click);
        ClickRow {
            click_id: row.click_id.to_owned(),
            click_time: row.click_time,
            click_time_ms: row.click_time_ms,
            campaign_id: row.campaign_id.to_owned(),
            offer_id: row.offer_id.to_owned(),
            source: row.source.to_owned(),
            sub1: row.sub1.to_owned(),
            sub2: row.sub2.to_owned(),
            sub3: row.sub3.to_owned(),
            sub4: row.sub4.to_owned(),
            sub5: row.sub5.to_owned(),
            sub6: row.sub6.to_owned(),
            sub7: row.sub7.to_owned(),
            sub8: row.sub8.to_owned(),
            sub9: row.sub9.to_owned(),
            sub10: row.sub10.to_owned(),
            ip: row.ip.to_owned(),
            user_agent: row.user_agent.to_owned(),
            country: row.country.to_owned(),
            is_test: row.is_test,
            is_foreign: row.is_foreign,
            cost: payout_decimal(row.cost),
            cost_currency: row.cost_currency.to_owned(),
            cost_raw: row.cost_raw.to_owned(),
            cost_issue: row.cost_issue.to_owned(),
            region: row.region.to_owned(),
            city: row.city.to_owned(),
            asn: row.asn,
            isp: row.isp.to_owned(),
            device_type: row.device_type.to_owned(),
            os: row.os.to_owned(),
            browser: row.browser.to_owned(),
            is_bot: row.is_bot,
        }
    }
}

impl<'a> ConversionRowRef<'a> {
    /// `now_ms` is the time of the insert, for `latency_ms`.
    pub fn new(conversion: &'a Conversion, now_ms: u64) -> ConversionRowRef<'a> {
        ConversionRowRef {
            conversion_id: &conversion.conversion_id,
            click_id: &conversion.click_id,
            click_time: datetime(conversion.click_time_ms),
            conversion_time: datetime(conversion.conversion_time_ms),
            conversion_time_ms: conversion.conversion_time_ms,
            postback_id: &conversion.postback_id,
            campaign_id: &conversion.campaign_id,
            offer_id: &conversion.offer_id,
            route: &conversion.route,
            event: &conversion.event,
            status: &conversion.status,
            payout: conversion.payout,
            currency: &conversion.currency,
            txid: &conversion.txid,
            offer_mismatch: conversion.offer_mismatch,
            click_id_repaired: conversion.click_id_repaired,
            repair_hint: &conversion.repair,
            is_test: conversion.is_test,
            version: conversion.version,
            latency_ms: latency_ms(now_ms, conversion.conversion_time_ms),
            payout_raw: &conversion.payout_raw,
            payout_issue: &conversion.payout_issue,
            source: &conversion.source,
            country: &conversion.country,
            device_type: &conversion.device_type,
            os: &conversion.os,
            browser: &conversion.browser,
            origin: conversion.origin.as_str(),
            subs_carried: conversion.subs.carried.bits(),
            sub1: conversion.subs.get(0),
            sub2: conversion.subs.get(1),
            sub3: conversion.subs.get(2),
            sub4: conversion.subs.get(3),
            sub5: conversion.subs.get(4),
            sub6: conversion.subs.get(5),
            sub7: conversion.subs.get(6),
            sub8: conversion.subs.get(7),
            sub9: conversion.subs.get(8),
            sub10: conversion.subs.get(9),
        }
    }
}

impl ConversionRow {
    /// The click's subs the row carries, as the conversion held them.
    pub fn carried_subs(&self) -> CarriedSubs {
        let values = [
            &self.sub1,
            &self.sub2,
            &self.sub3,
            &self.sub4,
            &self.sub5,
            &self.sub6,
            &self.sub7,
            &self.sub8,
            &self.sub9,
            &self.sub10,
        ];
        let mut subs = CarriedSubs::default();
        for i in SubSet::from_bits(self.subs_carried).indexes() {
            subs.carry(i, values[i].clone());
        }
        subs
    }

    /// `now_ms` is the time of the insert, for `latency_ms`.
    pub fn new(conversion: &Conversion, now_ms: u64) -> ConversionRow {
        let row = ConversionRowRef::new(conversion, now_ms);
        ConversionRow {
            conversion_id: row.conversion_id.to_owned(),
            click_id: row.click_id.to_owned(),
            click_time: row.click_time,
            conversion_time: row.conversion_time,
            conversion_time_ms: row.conversion_time_ms,
            postback_id: row.postback_id.to_owned(),
            campaign_id: row.campaign_id.to_owned(),
            offer_id: row.offer_id.to_owned(),
            route: row.route.to_owned(),
            event: row.event.to_owned(),
            status: row.status.to_owned(),
            payout: payout_decimal(row.payout),
            currency: row.currency.to_owned(),
            txid: row.txid.to_owned(),
            offer_mismatch: row.offer_mismatch,
            click_id_repaired: row.click_id_repaired,
            repair_hint: row.repair_hint.to_owned(),
            is_test: row.is_test,
            version: row.version,
            latency_ms: row.latency_ms,
            payout_raw: row.payout_raw.to_owned(),
            payout_issue: row.payout_issue.to_owned(),
            source: row.source.to_owned(),
            country: row.country.to_owned(),
            device_type: row.device_type.to_owned(),
            os: row.os.to_owned(),
            browser: row.browser.to_owned(),
            origin: row.origin.to_owned(),
            subs_carried: row.subs_carried,
            sub1: row.sub1.to_owned(),
            sub2: row.sub2.to_owned(),
            sub3: row.sub3.to_owned(),
            sub4: row.sub4.to_owned(),
            sub5: row.sub5.to_owned(),
            sub6: row.sub6.to_owned(),
            sub7: row.sub7.to_owned(),
            sub8: row.sub8.to_owned(),
            sub9: row.sub9.to_owned(),
            sub10: row.sub10.to_owned(),
        }
    }
}

impl<'a> UnattributedRowRef<'a> {
    /// `now_ms` is the time of the insert, for `latency_ms`.
    pub fn new(unattributed: &'a Unattributed, now_ms: u64) -> UnattributedRowRef<'a> {
        UnattributedRowRef {
            postback_id: &unattributed.postback_id,
            received_time: datetime(unattributed.received_time_ms),
            received_time_ms: unattributed.received_time_ms,
            route: &unattributed.route,
            reason: unattributed.reason.as_str(),
            raw_click_id: &unattributed.raw_click_id,
            offer_id: &unattributed.offer_id,
            payout: unattributed.payout,
            currency: &unattributed.currency,
            remote_ip: &unattributed.remote_ip,
            raw_params: &unattributed.raw_params,
            hint: &unattributed.hint,
            is_test: unattributed.is_test,
            latency_ms: latency_ms(now_ms, unattributed.received_time_ms),
        }
    }
}

impl UnattributedRow {
    /// `now_ms` is the time of the insert, for `latency_ms`.
    pub fn new(unattributed: &Unattributed, now_ms: u64) -> UnattributedRow {
        let row = UnattributedRowRef::new(unattributed, now_ms);
        UnattributedRow {
            postback_id: row.postback_id.to_owned(),
            received_time: row.received_time,
            received_time_ms: row.received_time_ms,
            route: row.route.to_owned(),
            reason: row.reason.to_owned(),
            raw_click_id: row.raw_click_id.to_owned(),
            offer_id: row.offer_id.to_owned(),
            payout: payout_decimal(row.payout),
            currency: row.currency.to_owned(),
            remote_ip: row.remote_ip.to_owned(),
            raw_params: row.raw_params.to_owned(),
            hint: row.hint.to_owned(),
            is_test: row.is_test,
            latency_ms: row.latency_ms,
        }
    }
}

/// A row of `recovered`: the joiner's decision about a reprocessed or uploaded record (see
/// `migrations/0007_recovery.sql`).
#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Serialize, Deserialize)]
pub struct RecoveredRow {
    pub postback_id: String,
    pub origin: String,
    pub received_time: u32,
    pub received_time_ms: u64,
    pub decided_time_ms: u64,
    pub route: String,
    /// `attributed` or `unattributed`.
    pub outcome: String,
    pub reason: String,
    pub hint: String,
    pub click_id: String,
    pub conversion_id: String,
    pub offer_id: String,
    pub is_test: bool,
    #[serde(with = "payout")]
    pub payout: Decimal,
    pub currency: String,
}

impl RecoveredRow {
    /// The row of `outcome` when it decides a reprocessed or uploaded record (`None` for a
    /// live postback's), decided at `now_ms`.
    pub fn of(outcome: &Outcome, now_ms: u64) -> Option<RecoveredRow> {
        let row = match outcome {
            Outcome::Attributed(c) if c.origin != Origin::Postback => RecoveredRow {
                postback_id: c.postback_id.clone(),
                origin: c.origin.as_str().to_owned(),
                received_time: datetime(c.conversion_time_ms),
                received_time_ms: c.conversion_time_ms,
                decided_time_ms: now_ms,
                route: c.route.clone(),
                outcome: "attributed".to_owned(),
                reason: String::new(),
                hint: c.repair.clone(),
                click_id: c.click_id.clone(),
                conversion_id: c.conversion_id.clone(),
                offer_id: c.offer_id.clone(),
                is_test: c.is_test,
                payout: payout_decimal(c.payout),
                currency: c.currency.clone(),
            },
            Outcome::Unattributed(u) if u.origin != Origin::Postback => RecoveredRow {
                postback_id: u.postback_id.clone(),
                origin: u.origin.as_str().to_owned(),
                received_time: datetime(u.received_time_ms),
                received_time_ms: u.received_time_ms,
                decided_time_ms: now_ms,
                route: u.route.clone(),
                outcome: "unattributed".to_owned(),
                reason: u.reason.as_str().to_owned(),
                hint: u.hint.clone(),
                click_id: u.raw_click_id.clone(),
                conversion_id: String::new(),
                offer_id: u.offer_id.clone(),
                is_test: u.is_test,
                payout: payout_decimal(u.payout),
                currency: u.currency.clone(),
            },
            _ => return None,
        };
        Some(row)
    }
}

/// Unix ms → `DateTime` seconds (saturating at 2106-02-07, the end of `DateTime`).
pub fn datetime(ms: u64) -> u32 {
    u32::try_from(ms / 1000).unwrap_or(u32::MAX)
}

/// `now_ms − received_ms`, 0 if the clock went backwards, at most `u32::MAX` (49 days).
pub fn latency_ms(now_ms: u64, received_ms: u64) -> u32 {
    u32::try_from(now_ms.saturating_sub(received_ms)).unwrap_or(u32::MAX)
}

/// A payout as `Decimal(18, 6)` holds it: rounded to 6 places (half away from zero), and
/// clamped to ±999 999 999 999.999999 with a warning. A clamped payout is garbage in any case,
/// but an error here would block the partition forever, since a batch is never skipped.
pub fn payout_decimal(value: Decimal) -> Decimal {
    Decimal::new(payout_mantissa(value), PAYOUT_SCALE)
}

/// The RowBinary form of a `Decimal(18, 6)`: the value × 10^6 as `i64`.
pub fn payout_mantissa(value: Decimal) -> i64 {
    let max = Decimal::new(PAYOUT_MAX_MANTISSA, PAYOUT_SCALE);
    let mut rounded =
        value.round_dp_with_strategy(PAYOUT_SCALE, RoundingStrategy::MidpointAwayFromZero);
    if rounded > max || rounded < -max {
        tracing::warn!(payout = %value, "payout outside Decimal(18, 6); clamped");
        rounded = if rounded.is_sign_negative() {
            -max
        } else {
            max
        };
    }
    rounded.rescale(PAYOUT_SCALE);
    i64::try_from(rounded.mantissa()).expect("clamped to Decimal(18, 6)")
}

/// `#[serde(with = "payout")]`: a `Decimal` as RowBinary `Decimal(18, 6)` (`i64` × 10^-6).
pub(crate) mod payout {
    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Decimal, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(super::payout_mantissa(*value))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
        Ok(Decimal::new(
            i64::deserialize(deserializer)?,
            super::PAYOUT_SCALE,
        ))
    }
}

#[cfg(test)]
mod tests;
