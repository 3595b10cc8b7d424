//! The TOML shape of the configuration: what a file may say and its defaults, read with the
//! environment's overrides ([`RawConfig::parse`]); [`RawConfig::validate`] turns it into the
//! domain model.

mod env;
mod routes;
mod validate;

pub use validate::MAX_TRACKED_OFFERS;

use std::collections::BTreeMap;

use ipnet::IpNet;
use serde::Deserialize;

use crate::{invalid, ConfigError};
use env::apply_env;
pub(crate) use env::ENV_PREFIX;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    account: RawAccount,
    #[serde(default)]
    ingest: RawIngest,
    #[serde(default)]
    enrichment: RawEnrichment,
    #[serde(default)]
    kafka: RawKafka,
    #[serde(default)]
    clickhouse: RawClickHouse,
    #[serde(default)]
    joiner: RawJoiner,
    #[serde(default)]
    outbound: RawOutbound,
    #[serde(default)]
    campaigns: Vec<RawCampaign>,
    #[serde(default)]
    offers: Vec<RawOffer>,
    #[serde(default)]
    routes: BTreeMap<String, RawRoute>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccount {
    secret: String,
    #[serde(default)]
    previous_secrets: Vec<String>,
    #[serde(default = "default_grace_seconds")]
    grace_seconds: u64,
    /// What revenue, cost and profit are reported in (ISO 4217).
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    max_rate_age_days: Option<u16>,
}

fn default_grace_seconds() -> u64 {
    10
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawIngest {
    listen: String,
    public_url: String,
    max_body_bytes: usize,
    /// Token of the admin pages (`/debug`); without it they are off.
    admin_token: Option<String>,
    /// Read-only token of the report API and page (`/api/report`, `/report`).
    report_token: Option<String>,
    max_uri_bytes: usize,
    max_header_bytes: usize,
    max_params: usize,
    header_read_timeout_ms: u64,
    request_timeout_ms: u64,
    rate_limit_per_ip: u32,
    rate_limit_per_ip_burst: Option<u32>,
    rate_limit_per_route: u32,
    rate_limit_per_route_burst: Option<u32>,
    /// A list, or one comma-separated string (so that the environment can set it).
    trusted_proxies: StringOrList,
    spool_dir: String,
    spool_max_bytes: u64,
    spool_segment_bytes: u64,
    /// `always`, or `interval` with `spool_fsync_interval_ms`.
    spool_fsync: String,
    spool_fsync_interval_ms: u64,
}

impl Default for RawIngest {
    fn default() -> Self {
        RawIngest {
            listen: "127.0.0.1:8080".into(),
            public_url: "http://127.0.0.1:8080".into(),
            max_body_bytes: 64 * 1024,
            admin_token: None,
            report_token: None,
            max_uri_bytes: 8 * 1024,
            max_header_bytes: 16 * 1024,
            max_params: 200,
            header_read_timeout_ms: 10_000,
            request_timeout_ms: 15_000,
            rate_limit_per_ip: 0,
            rate_limit_per_ip_burst: None,
            rate_limit_per_route: 0,
            rate_limit_per_route_burst: None,
            trusted_proxies: StringOrList::List(Vec::new()),
            spool_dir: "clickmatch-spool".into(),
            spool_max_bytes: 1024 * 1024 * 1024,
            spool_segment_bytes: 8 * 1024 * 1024,
            spool_fsync: "always".into(),
            spool_fsync_interval_ms: 200,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawEnrichment {
    /// Path of a City or Country `.mmdb`; empty or absent: no geo lookup.
    geoip_db: String,
    /// Path of an ASN `.mmdb`; empty or absent: no ASN lookup.
    asn_db: String,
    user_agent: bool,
    reload_interval_seconds: u64,
}

impl Default for RawEnrichment {
    fn default() -> Self {
        RawEnrichment {
            geoip_db: String::new(),
            asn_db: String::new(),
            user_agent: true,
            reload_interval_seconds: 60,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum StringOrList {
    One(String),
    List(Vec<String>),
}

impl StringOrList {
    fn items(&self) -> Vec<String> {
        match self {
            StringOrList::One(s) => s
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
            StringOrList::List(list) => list.clone(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawKafka {
    bootstrap_servers: String,
    clicks_topic: String,
    postbacks_topic: String,
    outbound_topic: String,
    group_id: String,
    properties: BTreeMap<String, String>,
}

impl Default for RawKafka {
    fn default() -> Self {
        RawKafka {
            bootstrap_servers: "127.0.0.1:9092".into(),
            clicks_topic: "clickmatch.clicks".into(),
            postbacks_topic: "clickmatch.postbacks".into(),
            outbound_topic: "clickmatch.outbound".into(),
            group_id: "clickmatch-joiner".into(),
            properties: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawClickHouse {
    url: String,
    database: String,
    user: Option<String>,
    password: Option<String>,
    validation: bool,
    /// A cluster of the servers' `remote_servers`: cluster schema; empty or absent: one server.
    cluster: Option<String>,
}

impl Default for RawClickHouse {
    fn default() -> Self {
        RawClickHouse {
            url: "http://127.0.0.1:8123".into(),
            database: "clickmatch".into(),
            user: None,
            password: None,
            validation: false,
            cluster: None,
        }
    }
}

/// The subs conversions carry unless `[joiner] conversion_subs` says otherwise: `sub1`, where
/// most traffic sources put the zone or placement a media buyer cuts by. Each carried sub costs
/// state per click (`sub1` ~6 B in the benchmark, BENCHMARKS.md).
const DEFAULT_CONVERSION_SUBS: [&str; 1] = ["sub1"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawJoiner {
    batch_max_rows: usize,
    batch_max_ms: u64,
    batch_early_rows: usize,
    batch_early_ms: u64,
    retry_initial_ms: u64,
    retry_max_ms: u64,
    state_dir: String,
    state_cache_mib: u64,
    publish_outbound: bool,
    conversion_subs: Vec<String>,
}

impl Default for RawJoiner {
    fn default() -> Self {
        RawJoiner {
            batch_max_rows: 50_000,
            batch_max_ms: 500,
            batch_early_rows: 1_000,
            batch_early_ms: 200,
            retry_initial_ms: 200,
            retry_max_ms: 30_000,
            state_dir: "clickmatch-state".into(),
            state_cache_mib: 64,
            publish_outbound: true,
            conversion_subs: DEFAULT_CONVERSION_SUBS.map(String::from).to_vec(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawOutbound {
    group_id: String,
    max_attempts: u32,
    retry_initial_ms: u64,
    retry_max_ms: u64,
    request_timeout_ms: u64,
    concurrency: usize,
    batch_max_records: usize,
    fire_test_conversions: bool,
}

impl Default for RawOutbound {
    fn default() -> Self {
        RawOutbound {
            group_id: "clickmatch-outbound".into(),
            max_attempts: 6,
            retry_initial_ms: 1_000,
            retry_max_ms: 30_000,
            request_timeout_ms: 10_000,
            concurrency: 32,
            batch_max_records: 500,
            fire_test_conversions: false,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCampaign {
    id: String,
    offer: String,
    url: String,
    #[serde(default)]
    source: String,
    /// The traffic source's postback template, fired for each attributed conversion.
    #[serde(default)]
    postback_url: Option<String>,
    #[serde(default)]
    cost_model: Option<String>,
    #[serde(default)]
    cost: Option<String>,
    #[serde(default)]
    cost_param: Option<String>,
    #[serde(default)]
    cost_currency: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOffer {
    id: String,
    #[serde(default)]
    network: Option<String>,
    #[serde(default)]
    payout: Option<String>,
    #[serde(default)]
    fixed_payout: Option<String>,
    #[serde(default)]
    revshare: Option<String>,
    #[serde(default)]
    window_days: Option<u64>,
    #[serde(default)]
    dedup: Option<String>,
    /// Booked when a postback's payout is missing or unreadable.
    #[serde(default)]
    default_payout: Option<String>,
    /// Count the offer's clicks and conversions by offer in metrics (the postbacks-stopped
    /// alert).
    #[serde(default)]
    tracked: bool,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    offer: Option<String>,
    /// A network preset (`cake`, `affise`, ...): parameter names and status map default to it.
    network: Option<String>,
    click_id: Option<Vec<String>>,
    payout: Option<Vec<String>>,
    #[serde(rename = "offer_param")]
    offer_names: Option<Vec<String>>,
    event: Option<Vec<String>>,
    txid: Option<Vec<String>>,
    status: Option<Vec<String>>,
    currency_param: Option<Vec<String>>,
    token_param: Option<Vec<String>>,
    default_event: Option<String>,
    default_status: Option<String>,
    currency: Option<String>,
    status_map: Option<BTreeMap<String, String>>,
    payout_model: Option<String>,
    fixed_payout: Option<String>,
    revshare: Option<String>,
    dedup: Option<String>,
    token: Option<String>,
    allow_ips: Option<Vec<String>>,
    accept_foreign_ids: Option<bool>,
}

/// An IP address or CIDR (`10.0.0.0/8`, `192.0.2.1`) of `[ingest] trusted_proxies` or a
/// route's `allow_ips`.
fn ip_net(entry: &str) -> Option<IpNet> {
    entry
        .parse::<IpNet>()
        .or_else(|_| entry.parse::<std::net::IpAddr>().map(IpNet::from))
        .ok()
}

impl RawConfig {
    /// Parses TOML, applies `CLICKMATCH_<SECTION>_<KEY>` overrides, then deserializes.
    pub fn parse(
        text: &str,
        file: &str,
        env: &BTreeMap<String, String>,
    ) -> Result<RawConfig, ConfigError> {
        let parse_error = |message: String| ConfigError::Parse {
            file: file.to_string(),
            message,
        };
        let mut table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| parse_error(e.to_string()))?;
        apply_env(&mut table, env).map_err(|(key, message)| invalid(file, key, message))?;
        RawConfig::deserialize(table).map_err(|e| parse_error(e.to_string()))
    }
}
