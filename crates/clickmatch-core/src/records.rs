//! Kafka record values (JSON, versioned) and the rows the joiner emits.
//!
//! Records are what ingest publishes: a click, or a raw postback kept lossless so that a fixed
//! configuration can re-classify it. Outcomes are what the joiner writes to ClickHouse: every
//! postback ends in exactly one [`Outcome`].

use std::sync::Arc;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::reason::Reason;
use crate::subs::CarriedSubs;

/// Version written into every record; readers accept this one and ignore unknown fields.
pub const RECORD_VERSION: u32 = 1;

/// Sub-parameters a click keeps: `sub1` … `sub10` (the visitor's, and a cost file's columns).
pub const SUB_COUNT: usize = 10;

/// A recorded click, as published to `clickmatch.clicks` keyed by its click ID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClickRecord {
    pub v: u32,
    pub click_id: String,
    /// Unix milliseconds; for clickmatch IDs this equals the time inside the ID.
    pub time_ms: u64,
    pub campaign_id: String,
    pub offer_id: String,
    #[serde(default)]
    pub source: String,
    /// `sub1`…`sub10` as the visitor brought them; missing ones are empty.
    #[serde(default)]
    pub subs: Vec<String>,
    #[serde(default)]
    pub ip: String,
    #[serde(default)]
    pub user_agent: String,
    /// ISO 3166 alpha-2: from the geo database, else as `POST /clicks` gave it; empty if unknown.
    #[serde(default)]
    pub country: String,
    /// What else ingest learned from the client IP and the user agent (see [`Enrichment`]).
    #[serde(default, skip_serializing_if = "Enrichment::is_empty")]
    pub enrichment: Enrichment,
    #[serde(default)]
    pub is_test: bool,
    /// True for an ID made elsewhere (another tracker's), registered through `POST /clicks`.
    #[serde(default)]
    pub foreign: bool,
    /// What the click cost; `None` when its campaign has no cost model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<ClickCostRecord>,
}

/// Where a click came from and on what, beyond its country: from the user's `.mmdb` files and
/// the user agent. Every field is empty (`asn` 0) when its source is not configured or knows
/// nothing; fields are left out of the record when empty. The strings are shared with ingest's
/// caches (a city, an OS), so an enriched click copies none of them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrichment {
    #[serde(default, skip_serializing_if = "is_empty")]
    pub region: Arc<str>,
    #[serde(default, skip_serializing_if = "is_empty")]
    pub city: Arc<str>,
    /// Autonomous system number, 0 when unknown.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub asn: u32,
    #[serde(default, skip_serializing_if = "is_empty")]
    pub isp: Arc<str>,
    /// `desktop`, `mobile`, `tablet`, `tv`, `bot` or `other`; empty without a user agent.
    #[serde(default, skip_serializing_if = "is_empty")]
    pub device_type: Arc<str>,
    #[serde(default, skip_serializing_if = "is_empty")]
    pub os: Arc<str>,
    #[serde(default, skip_serializing_if = "is_empty")]
    pub browser: Arc<str>,
    /// A known bot: flagged, never blocked.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_bot: bool,
}

impl Enrichment {
    pub fn is_empty(&self) -> bool {
        *self == Enrichment::default()
    }
}

fn is_empty(s: &Arc<str>) -> bool {
    s.is_empty()
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// What a click cost: its campaign's CPC, or what the traffic source put in the click URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClickCostRecord {
    pub amount: Decimal,
    pub currency: String,
    /// The cost parameter as sent, when the campaign reads one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub raw: String,
    /// Why `amount` is not simply `raw` (`cost_unparsed`, …; see
    /// [`crate::money::MoneyIssue`]), empty when all is well.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub issue: String,
}

/// What ingest decided about a postback before publishing it. Authorization depends on the
/// request (token, source IP), which the record does not keep in full, so it is decided once,
/// at the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum IngestVerdict {
    #[default]
    Accepted,
    Unauthorized,
    UnknownRoute,
}

/// Where a record on the postbacks topic came from. The joiner decides every origin alike;
/// the origin is kept on the conversion it makes (`conversions.origin`), and a record that is not
/// a live postback leaves `unattributed` and the postback counters alone: its decision goes to
/// `recovered` and `clickmatch_joiner_recovered_total` (docs/architecture.md, "Recovery").
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Sent by a network to `/postback` (every record written before origins existed).
    #[default]
    Postback,
    /// A conversion the network reported but never posted back: `clickmatch upload`,
    /// `POST /api/conversions`.
    Upload,
    /// A stored unattributed postback sent again by `clickmatch reprocess --apply`, with its
    /// original postback ID and receive time.
    Reprocess,
}

impl Origin {
    pub const ALL: [Origin; 3] = [Origin::Postback, Origin::Upload, Origin::Reprocess];

    /// The name in `conversions.origin`, `recovered.origin` and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Postback => "postback",
            Origin::Upload => "upload",
            Origin::Reprocess => "reprocess",
        }
    }

    pub fn is_postback(&self) -> bool {
        *self == Origin::Postback
    }
}

/// A raw postback, as published to `clickmatch.postbacks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostbackRecord {
    pub v: u32,
    pub postback_id: String,
    pub received_ms: u64,
    pub method: String,
    /// `None` for the global route `/postback`, else the name in `/postback/{route}`.
    #[serde(default)]
    pub route: Option<String>,
    /// Query, form and JSON-body parameters in arrival order, repeats kept. Route tokens are
    /// redacted before publishing.
    pub params: Vec<(String, String)>,
    #[serde(default)]
    pub remote_ip: String,
    #[serde(default)]
    pub verdict: IngestVerdict,
    /// The Kafka key ingest published the record under, decided with ingest's configuration:
    /// the joiner, deciding with its own, tells when the two disagree (a reload in between)
    /// and the record sits on a partition that cannot hold its click. Empty in older records.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key: String,
    /// Left out for a live postback, so that its bytes are what they always were.
    #[serde(default, skip_serializing_if = "Origin::is_postback")]
    pub origin: Origin,
}

impl PostbackRecord {
    /// Route name as stored in ClickHouse: `global` for the account-level route.
    pub fn route_label(&self) -> &str {
        self.route.as_deref().unwrap_or(crate::model::GLOBAL_ROUTE)
    }
}

/// An attributed conversion (one version of it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversion {
    /// Deterministic, from the offer's dedup key, so replays rewrite the same row.
    pub conversion_id: String,
    pub click_id: String,
    pub click_time_ms: u64,
    pub conversion_time_ms: u64,
    pub postback_id: String,
    pub campaign_id: String,
    pub offer_id: String,
    pub route: String,
    pub event: String,
    pub status: String,
    /// What was booked: see `payout_issue` when it is not simply what the postback sent.
    pub payout: Decimal,
    pub currency: String,
    /// The payout parameter as sent (empty when none).
    #[serde(default)]
    pub payout_raw: String,
    /// Why `payout` is not simply `payout_raw` (`payout_macro`, `currency_conflict`, …; see
    /// [`crate::money::MoneyIssue`]), empty when all is well.
    #[serde(default)]
    pub payout_issue: String,
    /// The click's traffic source (its campaign's), for figures by source.
    #[serde(default)]
    pub source: String,
    /// The click's country, device type, OS and browser, so that reports group conversions
    /// by them without a join (empty when the click had none, or was kept before they were).
    #[serde(default)]
    pub country: String,
    #[serde(default)]
    pub device_type: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub browser: String,
    /// The click's subs this row carries (`[joiner] conversion_subs`); a report reads the
    /// others from the click.
    #[serde(default, skip_serializing_if = "CarriedSubs::is_empty")]
    pub subs: CarriedSubs,
    pub txid: String,
    pub offer_mismatch: bool,
    pub click_id_repaired: bool,
    /// Hint code of the repair, empty when none was needed.
    pub repair: String,
    pub is_test: bool,
    /// Later status updates carry larger versions; `ReplacingMergeTree(version)` keeps the last.
    pub version: u64,
    /// What made this version: a postback, an upload, or a reprocessed postback.
    #[serde(default)]
    pub origin: Origin,
}

#[cfg(any(test, feature = "test-util"))]
impl Conversion {
    /// For tests (feature `test-util`): an approved 2.50 USD sale through the global route,
    /// version 1. A test names the fields it is about and takes the rest from here:
    /// `Conversion { status: "rejected".into(), ..Conversion::example() }`.
    pub fn example() -> Conversion {
        Conversion {
            conversion_id: "conv-1".into(),
            click_id: "click-1".into(),
            click_time_ms: 1_700_000_000_000,
            conversion_time_ms: 1_700_000_001_000,
            postback_id: "pb-1".into(),
            campaign_id: "demo".into(),
            offer_id: "7".into(),
            route: "global".into(),
            event: "sale".into(),
            status: "approved".into(),
            payout: Decimal::new(250, 2),
            currency: "USD".into(),
            payout_raw: "2.50".into(),
            payout_issue: String::new(),
            source: String::new(),
            country: String::new(),
            device_type: String::new(),
            os: String::new(),
            browser: String::new(),
            subs: CarriedSubs::default(),
            txid: String::new(),
            offer_mismatch: false,
            click_id_repaired: false,
            repair: String::new(),
            is_test: false,
            version: 1,
            origin: Origin::Postback,
        }
    }
}

/// An attributed conversion to report to its campaign's traffic source, published by the joiner
/// to `clickmatch.outbound` (keyed by click ID) once ClickHouse acknowledged it. Delivery is at
/// least once: consumers deduplicate by [`OutboundRecord::idempotency_key`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundRecord {
    pub v: u32,
    pub conversion: Conversion,
}

impl OutboundRecord {
    pub fn new(conversion: Conversion) -> Self {
        OutboundRecord {
            v: RECORD_VERSION,
            conversion,
        }
    }

    /// The same conversion version always has the same key, however often it is replayed.
    pub fn idempotency_key(&self) -> String {
        format!(
            "{}:{}",
            self.conversion.conversion_id, self.conversion.version
        )
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        let record: OutboundRecord = serde_json::from_slice(bytes)?;
        check_version(record.v)?;
        Ok(record)
    }

    pub fn encode(&self) -> Vec<u8> {
        to_json(self)
    }

    /// The encoded record of `conversion`, without copying the conversion into one: the same
    /// bytes as `OutboundRecord::new(conversion.clone()).encode()`.
    pub fn encode_conversion(conversion: &Conversion) -> Vec<u8> {
        #[derive(Serialize)]
        struct Borrowed<'a> {
            v: u32,
            conversion: &'a Conversion,
        }
        let record = Borrowed {
            v: RECORD_VERSION,
            conversion,
        };
        to_json(&record)
    }
}

/// A postback that could not be attributed, with the precise reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unattributed {
    pub postback_id: String,
    pub received_time_ms: u64,
    pub route: String,
    pub reason: Reason,
    pub raw_click_id: String,
    pub offer_id: String,
    pub payout: Decimal,
    pub currency: String,
    pub remote_ip: String,
    /// The raw parameters as JSON, so a fixed configuration can re-classify them.
    pub raw_params: String,
    /// A code naming the operator's fix (see [`crate::reason::hint_text`]).
    pub hint: String,
    pub is_test: bool,
    /// Not a live postback: the decision goes to `recovered`, not `unattributed`.
    pub origin: Origin,
}

/// What a postback ended in.
// Outcomes sit in a batch's `Vec` until written, most of them conversions: boxing the larger
// variant would add an allocation to nearly every one to save space on the rest.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Attributed(Conversion),
    Unattributed(Unattributed),
}

impl Outcome {
    /// When the postback was received, for latency accounting.
    pub fn received_ms(&self) -> u64 {
        match self {
            Outcome::Attributed(c) => c.conversion_time_ms,
            Outcome::Unattributed(u) => u.received_time_ms,
        }
    }
}

/// Errors reading a record value from Kafka.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("record is not valid JSON for this type: {0}")]
    Json(#[from] serde_json::Error),
    #[error("record version {0} is newer than this reader ({RECORD_VERSION})")]
    Version(u32),
}

fn check_version(v: u32) -> Result<(), RecordError> {
    if v == 0 || v > RECORD_VERSION {
        return Err(RecordError::Version(v));
    }
    Ok(())
}

impl ClickRecord {
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        let record: ClickRecord = serde_json::from_slice(bytes)?;
        check_version(record.v)?;
        Ok(record)
    }

    pub fn encode(&self) -> Vec<u8> {
        to_json(self)
    }
}

impl PostbackRecord {
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        let record: PostbackRecord = serde_json::from_slice(bytes)?;
        check_version(record.v)?;
        Ok(record)
    }

    pub fn encode(&self) -> Vec<u8> {
        to_json(self)
    }

    /// The parameters as a JSON array of `[name, value]` pairs, for `unattributed.raw_params`.
    pub fn params_json(&self) -> String {
        serde_json::to_string(&self.params).expect("strings serialize")
    }
}

/// A record's JSON. Click and postback records take a few hundred bytes (an enriched click with
/// a browser's user agent 600–800): starting there saves the reallocations
/// `serde_json::to_vec` (128 bytes first) makes on ingest's hottest path.
fn to_json(record: &impl Serialize) -> Vec<u8> {
    let mut json = Vec::with_capacity(1024);
    serde_json::to_writer(&mut json, record).expect("records have string keys only");
    json
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_are_ignored_and_newer_versions_refused() {
        let json = br#"{"v":1,"postback_id":"p","received_ms":1,"method":"GET","params":[["cid","x"]],"future":true}"#;
        let record = PostbackRecord::decode(json).unwrap();
        assert_eq!(record.params, vec![("cid".into(), "x".into())]);
        assert_eq!(record.route_label(), "global");

        let json = br#"{"v":2,"postback_id":"p","received_ms":1,"method":"GET","params":[]}"#;
        assert!(matches!(
            PostbackRecord::decode(json),
            Err(RecordError::Version(2))
        ));
        assert!(ClickRecord::decode(b"not json").is_err());
    }

    #[test]
    fn an_outbound_record_encodes_the_same_borrowed_or_owned() {
        let conversion = Conversion {
            txid: "t\"x".into(),
            offer_mismatch: true,
            version: 2,
            ..Conversion::example()
        };
        let owned = OutboundRecord::new(conversion.clone()).encode();
        assert_eq!(OutboundRecord::encode_conversion(&conversion), owned);
        assert_eq!(
            OutboundRecord::decode(&owned).unwrap().conversion,
            conversion
        );
    }
}
