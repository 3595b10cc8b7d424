//! The reference of `clickhouse_report.rs`: the base tables read under `FINAL`, and the report
//! figures folded from them in Rust with docs/reports.md's table of what each dimension is on
//! each fact, time buckets by chrono-tz.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::DateTime;
use chrono_tz::Tz;
use clickhouse::Row;
use clickmatch_clickhouse::report::{Dimension, ReportRequest};
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::common::TestDb;

fn dec(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap()
}

#[derive(Debug, Row, Deserialize)]
struct BaseClick {
    t: u32,
    campaign_id: String,
    offer_id: String,
    source: String,
    sub1: String,
    country: String,
    device_type: String,
    os: String,
    browser: String,
    cost: String,
    cost_currency: String,
}

#[derive(Debug, Row, Deserialize)]
struct BaseConversion {
    click_id: String,
    t: u32,
    campaign_id: String,
    offer_id: String,
    source: String,
    route: String,
    event: String,
    status: String,
    country: String,
    device_type: String,
    os: String,
    browser: String,
    payout_account: String,
}

#[derive(Debug, Row, Deserialize)]
struct BaseUnattributed {
    t: u32,
    route: String,
    offer_id: String,
}

#[derive(Debug, Row, Deserialize)]
struct BaseCost {
    t: u32,
    campaign_id: String,
    offer_id: String,
    source: String,
    sub1: String,
    amount: String,
    currency: String,
}

#[derive(Debug, Row, Deserialize)]
struct Factor {
    day: u16,
    currency: String,
    factor: f64,
}

#[derive(Debug, Row, Deserialize)]
struct ClickSide {
    click_id: String,
    sub1: String,
}

pub struct Base {
    clicks: Vec<BaseClick>,
    conversions: Vec<BaseConversion>,
    unattributed: Vec<BaseUnattributed>,
    costs: Vec<BaseCost>,
    /// sub1 of each click, for conversions.
    click_side: BTreeMap<String, ClickSide>,
    /// `currency_factors`: (day, currency) → account currency per unit.
    factors: BTreeMap<(u16, String), f64>,
}

/// The account currency of the tests.
const ACCOUNT_CURRENCY: &str = "USD";

impl Base {
    /// `amount` of `currency` at time `t` in the account currency, as docs/money.md values
    /// it: the day's factor, rounded to a millionth; no rate is nothing (counted as unvalued).
    fn valued(&self, amount: &str, currency: &str, t: u32) -> Decimal {
        if currency == ACCOUNT_CURRENCY {
            return dec(amount);
        }
        let day = u16::try_from(t / 86_400).unwrap();
        let Some(factor) = self.factors.get(&(day, currency.to_string())) else {
            return Decimal::ZERO;
        };
        let value = (f64::from_str(amount).unwrap() * factor * 1e6).round() / 1e6;
        Decimal::from_f64_retain(value).unwrap().round_dp(6)
    }
}

pub async fn base(db: &TestDb) -> Base {
    let client = db.client();
    let clicks = client
        .query(
            "SELECT toUInt32(click_time) AS t, campaign_id, offer_id, source, sub1, country, \
             device_type, os, browser, toString(cost) AS cost, cost_currency FROM clicks FINAL \
             WHERE is_test = 0",
        )
        .fetch_all::<BaseClick>()
        .await
        .unwrap();
    let conversions = client
        .query(
            "SELECT click_id, toUInt32(conversion_time) AS t, campaign_id, offer_id, source, \
             route, event, status, country, device_type, os, browser, \
             toString(payout_account) AS payout_account \
             FROM conversions_valued WHERE is_test = 0",
        )
        .fetch_all::<BaseConversion>()
        .await
        .unwrap();
    let unattributed = client
        .query(
            "SELECT toUInt32(received_time) AS t, route, offer_id FROM unattributed FINAL \
             WHERE is_test = 0 AND reason != 'duplicate'",
        )
        .fetch_all::<BaseUnattributed>()
        .await
        .unwrap();
    let costs = client
        .query(
            "SELECT toUInt32(period_start) AS t, campaign_id, offer_id, source, sub1, \
             toString(amount) AS amount, currency FROM costs_current",
        )
        .fetch_all::<BaseCost>()
        .await
        .unwrap();
    let click_side = client
        .query("SELECT click_id, sub1 FROM clicks FINAL")
        .fetch_all::<ClickSide>()
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.click_id.clone(), c))
        .collect();
    let factors = client
        .query("SELECT toUInt16(day) AS day, currency, factor FROM currency_factors")
        .fetch_all::<Factor>()
        .await
        .unwrap()
        .into_iter()
        .map(|f| ((f.day, f.currency), f.factor))
        .collect();
    Base {
        clicks,
        conversions,
        unattributed,
        costs,
        click_side,
        factors,
    }
}

/// (clicks, conversions, revenue, cost, unattributed) per group.
pub type Folded = BTreeMap<Vec<String>, (u64, u64, Decimal, Decimal, u64)>;

fn bucket(t: u32, tz: Tz, dimension: Dimension) -> String {
    let local = DateTime::from_timestamp(i64::from(t), 0)
        .unwrap()
        .with_timezone(&tz);
    match dimension {
        Dimension::Hour => local.format("%Y-%m-%d %H:00").to_string(),
        _ => local.format("%Y-%m-%d").to_string(),
    }
}

/// The documented table: what `dimension` is for a row of each fact, `""` where it has none.
pub fn fold(base: &Base, request: &ReportRequest, networks: &BTreeMap<&str, &str>) -> Folded {
    let in_range = |t: u32| {
        let t = i64::from(t);
        t >= request.from.timestamp() && t < request.to.timestamp()
    };
    let network = |offer: &str| networks.get(offer).copied().unwrap_or("").to_string();
    let mut folded = Folded::new();
    let mut add = |values: &dyn Fn(Dimension) -> String,
                   figures: (u64, u64, Decimal, Decimal, u64)| {
        if request
            .filters
            .iter()
            .any(|f| !f.values.contains(&values(f.dimension)))
        {
            return;
        }
        let key: Vec<String> = request.group_by.iter().map(|&d| values(d)).collect();
        let cell = folded.entry(key).or_default();
        cell.0 += figures.0;
        cell.1 += figures.1;
        cell.2 += figures.2;
        cell.3 += figures.3;
        cell.4 += figures.4;
    };
    let tz = request.tz;
    for c in base.clicks.iter().filter(|c| in_range(c.t)) {
        let values = |d: Dimension| match d {
            Dimension::Campaign => c.campaign_id.clone(),
            Dimension::Source => c.source.clone(),
            Dimension::Offer => c.offer_id.clone(),
            Dimension::Network => network(&c.offer_id),
            Dimension::Sub(1) => c.sub1.clone(),
            Dimension::Country => c.country.clone(),
            Dimension::DeviceType => c.device_type.clone(),
            Dimension::Os => c.os.clone(),
            Dimension::Browser => c.browser.clone(),
            Dimension::Hour | Dimension::Day => bucket(c.t, tz, d),
            _ => String::new(),
        };
        let cost = base.valued(&c.cost, &c.cost_currency, c.t);
        add(&values, (1, 0, Decimal::ZERO, cost, 0));
    }
    for v in base.conversions.iter().filter(|v| in_range(v.t)) {
        if !["approved", "pending", "hold"].contains(&v.status.as_str()) {
            continue;
        }
        let click = base.click_side.get(&v.click_id);
        let values = |d: Dimension| match d {
            Dimension::Campaign => v.campaign_id.clone(),
            Dimension::Source => v.source.clone(),
            Dimension::Offer => v.offer_id.clone(),
            Dimension::Network => network(&v.offer_id),
            Dimension::Route => v.route.clone(),
            Dimension::Event => v.event.clone(),
            Dimension::Status => v.status.clone(),
            Dimension::Country => v.country.clone(),
            Dimension::DeviceType => v.device_type.clone(),
            Dimension::Sub(1) => click.map(|c| c.sub1.clone()).unwrap_or_default(),
            Dimension::Os => v.os.clone(),
            Dimension::Browser => v.browser.clone(),
            Dimension::Hour | Dimension::Day => bucket(v.t, tz, d),
            _ => String::new(),
        };
        add(&values, (0, 1, dec(&v.payout_account), Decimal::ZERO, 0));
    }
    for u in base.unattributed.iter().filter(|u| in_range(u.t)) {
        let values = |d: Dimension| match d {
            Dimension::Offer => u.offer_id.clone(),
            Dimension::Network => network(&u.offer_id),
            Dimension::Route => u.route.clone(),
            Dimension::Hour | Dimension::Day => bucket(u.t, tz, d),
            _ => String::new(),
        };
        add(&values, (0, 0, Decimal::ZERO, Decimal::ZERO, 1));
    }
    for l in base.costs.iter().filter(|l| in_range(l.t)) {
        let values = |d: Dimension| match d {
            Dimension::Campaign => l.campaign_id.clone(),
            Dimension::Source => l.source.clone(),
            Dimension::Offer => l.offer_id.clone(),
            Dimension::Network => network(&l.offer_id),
            Dimension::Sub(1) => l.sub1.clone(),
            Dimension::Hour | Dimension::Day => bucket(l.t, tz, d),
            _ => String::new(),
        };
        let amount = base.valued(&l.amount, &l.currency, l.t);
        add(&values, (0, 0, Decimal::ZERO, amount, 0));
    }
    folded
}
