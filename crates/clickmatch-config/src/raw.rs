//! The TOML shape of the configuration and its validation into the domain model.

use std::collections::BTreeMap;
use std::str::FromStr;

use clickmatch_core::click_id::ClickIdSigner;
use clickmatch_core::model::{
    Account, Campaign, DedupMode, Offer, ParamNames, PayoutModel, Route, Secret, DAY_MS,
    DEFAULT_MAX_RATE_AGE_DAYS, GLOBAL_ROUTE, MAX_WINDOW_MS,
};
use clickmatch_core::money::Currency;
use clickmatch_core::presets::{self, Preset};
use clickmatch_core::template;
use ipnet::IpNet;
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::money;
use crate::names;
use crate::{
    ClickHouseConfig, Config, ConfigError, HttpLimits, IngestConfig, JoinerConfig, KafkaConfig,
    OutboundConfig, RateLimits, SpoolConfig, SpoolFsync,
};

pub(crate) const ENV_PREFIX: &str = "CLICKMATCH_";

/// Sections whose scalar keys the environment may override.
const ENV_SECTIONS: &[&str] = &[
    "account",
    "ingest",
    "kafka",
    "clickhouse",
    "joiner",
    "outbound",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    account: RawAccount,
    #[serde(default)]
    ingest: RawIngest,
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

/// Limits, rate limits, trusted proxies and spool of `[ingest]`.
type IngestProtection = (HttpLimits, RateLimits, Vec<IpNet>, SpoolConfig);

fn validate_ingest_protection(
    raw: &RawIngest,
    file: &str,
) -> Result<IngestProtection, ConfigError> {
    for (key, value, min) in [
        ("max_body_bytes", raw.max_body_bytes, 1024),
        ("max_uri_bytes", raw.max_uri_bytes, 256),
        ("max_header_bytes", raw.max_header_bytes, 1024),
        ("max_params", raw.max_params, 1),
    ] {
        if value < min {
            return Err(invalid(
                file,
                format!("ingest.{key}"),
                format!("must be at least {min}"),
            ));
        }
    }
    for (key, value) in [
        ("header_read_timeout_ms", raw.header_read_timeout_ms),
        ("request_timeout_ms", raw.request_timeout_ms),
    ] {
        if value == 0 {
            return Err(invalid(file, format!("ingest.{key}"), "must be at least 1"));
        }
    }
    let mut trusted_proxies = Vec::new();
    for (i, entry) in raw.trusted_proxies.items().iter().enumerate() {
        let net = entry
            .trim()
            .parse::<IpNet>()
            .or_else(|_| entry.trim().parse::<std::net::IpAddr>().map(IpNet::from))
            .map_err(|_| {
                invalid(
                    file,
                    format!("ingest.trusted_proxies[{i}]"),
                    format!("{entry:?} is not an IP address or CIDR"),
                )
            })?;
        trusted_proxies.push(net);
    }
    if raw.spool_dir.trim().is_empty() {
        return Err(invalid(file, "ingest.spool_dir", "must not be empty"));
    }
    if raw.spool_segment_bytes < 4096 {
        return Err(invalid(
            file,
            "ingest.spool_segment_bytes",
            "must be at least 4096",
        ));
    }
    let fsync = match raw.spool_fsync.as_str() {
        "always" => SpoolFsync::Always,
        "interval" if raw.spool_fsync_interval_ms > 0 => {
            SpoolFsync::IntervalMs(raw.spool_fsync_interval_ms)
        }
        "interval" => {
            return Err(invalid(
                file,
                "ingest.spool_fsync_interval_ms",
                "must be at least 1",
            ))
        }
        other => {
            return Err(invalid(
                file,
                "ingest.spool_fsync",
                format!("{other:?} is not one of \"always\", \"interval\""),
            ))
        }
    };
    let burst = |rate: u32, burst: Option<u32>| burst.unwrap_or(rate.saturating_mul(2)).max(rate);
    Ok((
        HttpLimits {
            max_uri_bytes: raw.max_uri_bytes,
            max_header_bytes: raw.max_header_bytes,
            max_params: raw.max_params,
            header_read_timeout_ms: raw.header_read_timeout_ms,
            request_timeout_ms: raw.request_timeout_ms,
        },
        RateLimits {
            per_ip_per_second: raw.rate_limit_per_ip,
            per_ip_burst: burst(raw.rate_limit_per_ip, raw.rate_limit_per_ip_burst),
            per_route_per_second: raw.rate_limit_per_route,
            per_route_burst: burst(raw.rate_limit_per_route, raw.rate_limit_per_route_burst),
        },
        trusted_proxies,
        SpoolConfig {
            dir: raw.spool_dir.clone(),
            max_bytes: raw.spool_max_bytes,
            segment_bytes: raw.spool_segment_bytes,
            fsync,
        },
    ))
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawJoiner {
    batch_max_rows: usize,
    batch_max_ms: u64,
    retry_initial_ms: u64,
    retry_max_ms: u64,
    state_dir: String,
    state_cache_mib: u64,
    publish_outbound: bool,
}

impl Default for RawJoiner {
    fn default() -> Self {
        RawJoiner {
            batch_max_rows: 50_000,
            batch_max_ms: 500,
            retry_initial_ms: 200,
            retry_max_ms: 30_000,
            state_dir: "clickmatch-state".into(),
            state_cache_mib: 64,
            publish_outbound: true,
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

fn invalid(file: &str, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        file: file.to_string(),
        key: key.into(),
        message: message.into(),
    }
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

    /// Checks every value and builds the domain model. No I/O.
    pub fn validate(self, file: &str) -> Result<Config, ConfigError> {
        if self.account.secret.len() < 16 {
            return Err(invalid(
                file,
                "account.secret",
                "must be at least 16 characters",
            ));
        }
        let signer = ClickIdSigner::new(
            self.account.secret.clone().into_bytes(),
            self.account
                .previous_secrets
                .iter()
                .map(|s| s.clone().into_bytes())
                .collect(),
        );

        let account_currency = match &self.account.currency {
            Some(code) => money::currency(code, file, "account.currency".into())?,
            None => Currency::USD,
        };
        let max_rate_age_days = money::max_rate_age_days(
            self.account
                .max_rate_age_days
                .unwrap_or(DEFAULT_MAX_RATE_AGE_DAYS),
            file,
        )?;

        let mut offers = BTreeMap::new();
        for (i, raw) in self.offers.iter().enumerate() {
            let key = |field: &str| format!("offers[{i}].{field}");
            let offer = validate_offer(raw, file, &key)?;
            if offers.insert(offer.id.clone(), offer).is_some() {
                return Err(invalid(
                    file,
                    key("id"),
                    format!("offer {:?} is defined twice", raw.id),
                ));
            }
        }

        let mut campaigns = BTreeMap::new();
        for (i, raw) in self.campaigns.iter().enumerate() {
            let key = |field: &str| format!("campaigns[{i}].{field}");
            names::config_id(&raw.id).map_err(|m| invalid(file, key("id"), m))?;
            if !offers.contains_key(&raw.offer) {
                return Err(invalid(
                    file,
                    key("offer"),
                    format!("no offer with id {:?}", raw.offer),
                ));
            }
            template::validate(&raw.url).map_err(|e| invalid(file, key("url"), e.to_string()))?;
            if let Some(postback_url) = &raw.postback_url {
                template::validate_postback(postback_url)
                    .map_err(|e| invalid(file, key("postback_url"), e.to_string()))?;
            }
            let cost = money::click_cost(
                &money::RawCost {
                    cost_model: raw.cost_model.as_deref(),
                    cost: raw.cost.as_deref(),
                    cost_param: raw.cost_param.as_deref(),
                    cost_currency: raw.cost_currency.as_deref(),
                },
                account_currency,
                file,
                &key,
            )?;
            let campaign = Campaign {
                id: raw.id.clone(),
                offer_id: raw.offer.clone(),
                url_template: raw.url.clone(),
                source: raw.source.clone(),
                postback_url: raw.postback_url.clone(),
                cost,
            };
            if campaigns.insert(raw.id.clone(), campaign).is_some() {
                return Err(invalid(
                    file,
                    key("id"),
                    format!("campaign {:?} is defined twice", raw.id),
                ));
            }
        }

        let mut routes = BTreeMap::new();
        let mut global_route = Route::new(GLOBAL_ROUTE);
        global_route.currency = account_currency;
        for (name, raw) in &self.routes {
            let route = validate_route(name, raw, &offers, account_currency, file)?;
            if name == GLOBAL_ROUTE {
                global_route = route;
            } else {
                names::config_id(name).map_err(|m| invalid(file, format!("routes.{name}"), m))?;
                routes.insert(name.clone(), route);
            }
        }

        let k = &self.kafka;
        for (field, value) in [
            ("bootstrap_servers", &k.bootstrap_servers),
            ("clicks_topic", &k.clicks_topic),
            ("postbacks_topic", &k.postbacks_topic),
            ("group_id", &k.group_id),
        ] {
            if value.trim().is_empty() {
                return Err(invalid(file, format!("kafka.{field}"), "must not be empty"));
            }
        }
        if k.clicks_topic == k.postbacks_topic {
            return Err(invalid(
                file,
                "kafka.postbacks_topic",
                "must differ from kafka.clicks_topic",
            ));
        }
        names::sql_identifier(&self.clickhouse.database)
            .map_err(|m| invalid(file, "clickhouse.database", m))?;
        let cluster = self
            .clickhouse
            .cluster
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned);
        if let Some(name) = &cluster {
            names::cluster_name(name).map_err(|m| invalid(file, "clickhouse.cluster", m))?;
        }
        if !self.clickhouse.url.starts_with("http://")
            && !self.clickhouse.url.starts_with("https://")
        {
            return Err(invalid(
                file,
                "clickhouse.url",
                "must start with http:// or https://",
            ));
        }
        if self.joiner.state_dir.trim().is_empty() {
            return Err(invalid(file, "joiner.state_dir", "must not be empty"));
        }
        if self.joiner.batch_max_rows == 0 {
            return Err(invalid(file, "joiner.batch_max_rows", "must be at least 1"));
        }
        let admin_token = match &self.ingest.admin_token {
            Some(token) if token.len() < 16 => {
                return Err(invalid(
                    file,
                    "ingest.admin_token",
                    "must be at least 16 characters",
                ))
            }
            Some(token) => Some(Secret::new(token.clone())),
            None => None,
        };
        let outbound = validate_outbound(&self.outbound, &self.kafka, file)?;
        let (http_limits, rate_limits, trusted_proxies, spool) =
            validate_ingest_protection(&self.ingest, file)?;
        if self.ingest.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(invalid(
                file,
                "ingest.listen",
                "must be an address such as 127.0.0.1:8080",
            ));
        }

        Ok(Config {
            account: Account {
                signer,
                campaigns,
                offers,
                global_route,
                routes,
                grace_ms: self.account.grace_seconds.saturating_mul(1000),
                currency: account_currency,
                max_rate_age_days,
            },
            ingest: IngestConfig {
                listen: self.ingest.listen,
                public_url: self.ingest.public_url.trim_end_matches('/').to_string(),
                max_body_bytes: self.ingest.max_body_bytes,
                admin_token,
                http_limits,
                rate_limits,
                trusted_proxies,
                spool,
            },
            kafka: KafkaConfig {
                bootstrap_servers: self.kafka.bootstrap_servers,
                clicks_topic: self.kafka.clicks_topic,
                postbacks_topic: self.kafka.postbacks_topic,
                outbound_topic: self.kafka.outbound_topic,
                group_id: self.kafka.group_id,
                properties: self.kafka.properties,
            },
            clickhouse: ClickHouseConfig {
                url: self.clickhouse.url,
                database: self.clickhouse.database,
                user: self.clickhouse.user,
                password: self.clickhouse.password,
                validation: self.clickhouse.validation,
                cluster,
            },
            joiner: JoinerConfig {
                batch_max_rows: self.joiner.batch_max_rows,
                batch_max_ms: self.joiner.batch_max_ms,
                retry_initial_ms: self.joiner.retry_initial_ms.max(1),
                retry_max_ms: self.joiner.retry_max_ms.max(self.joiner.retry_initial_ms),
                state_dir: self.joiner.state_dir,
                state_cache_mib: self.joiner.state_cache_mib.max(1),
                publish_outbound: self.joiner.publish_outbound,
            },
            outbound,
        })
    }
}

fn validate_outbound(
    raw: &RawOutbound,
    kafka: &RawKafka,
    file: &str,
) -> Result<OutboundConfig, ConfigError> {
    let key = |field: &str| format!("outbound.{field}");
    if raw.group_id.trim().is_empty() {
        return Err(invalid(file, key("group_id"), "must not be empty"));
    }
    if raw.group_id == kafka.group_id {
        return Err(invalid(
            file,
            key("group_id"),
            "must differ from kafka.group_id (the dispatcher is a consumer group of its own)",
        ));
    }
    if kafka.outbound_topic.trim().is_empty()
        || kafka.outbound_topic == kafka.clicks_topic
        || kafka.outbound_topic == kafka.postbacks_topic
    {
        return Err(invalid(
            file,
            "kafka.outbound_topic",
            "must be set and differ from the clicks and postbacks topics",
        ));
    }
    if !(1..=50).contains(&raw.max_attempts) {
        return Err(invalid(
            file,
            key("max_attempts"),
            "must be between 1 and 50",
        ));
    }
    if raw.retry_initial_ms == 0 || raw.retry_max_ms < raw.retry_initial_ms {
        return Err(invalid(
            file,
            key("retry_max_ms"),
            "retry_initial_ms must be at least 1 and retry_max_ms at least retry_initial_ms",
        ));
    }
    if raw.request_timeout_ms == 0 {
        return Err(invalid(
            file,
            key("request_timeout_ms"),
            "must be at least 1",
        ));
    }
    if raw.concurrency == 0 {
        return Err(invalid(file, key("concurrency"), "must be at least 1"));
    }
    if raw.batch_max_records == 0 {
        return Err(invalid(
            file,
            key("batch_max_records"),
            "must be at least 1",
        ));
    }
    Ok(OutboundConfig {
        group_id: raw.group_id.clone(),
        max_attempts: raw.max_attempts,
        retry_initial_ms: raw.retry_initial_ms,
        retry_max_ms: raw.retry_max_ms,
        request_timeout_ms: raw.request_timeout_ms,
        concurrency: raw.concurrency,
        batch_max_records: raw.batch_max_records,
        fire_test_conversions: raw.fire_test_conversions,
    })
}

/// Writes `CLICKMATCH_SECTION_KEY=value` into `table[section][key]`. Values that parse as a TOML
/// number or boolean keep that type; everything else is a string.
fn apply_env(
    table: &mut toml::Table,
    env: &BTreeMap<String, String>,
) -> Result<(), (String, String)> {
    for (name, value) in env {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let rest = rest.to_ascii_lowercase();
        let Some(section) = ENV_SECTIONS
            .iter()
            .find(|s| rest.starts_with(&format!("{s}_")))
        else {
            continue;
        };
        let key = &rest[section.len() + 1..];
        let typed = match value.parse::<i64>() {
            Ok(n) => toml::Value::Integer(n),
            Err(_) => match value.as_str() {
                "true" => toml::Value::Boolean(true),
                "false" => toml::Value::Boolean(false),
                _ => toml::Value::String(value.clone()),
            },
        };
        let entry = table
            .entry(section.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let Some(section_table) = entry.as_table_mut() else {
            return Err((
                section.to_string(),
                format!("is not a table (set by {name})"),
            ));
        };
        // Secrets and other string fields stay strings even when they look numeric.
        let typed = match section_table.get(key) {
            Some(toml::Value::String(_)) => toml::Value::String(value.clone()),
            _ => typed,
        };
        section_table.insert(key.to_string(), typed);
    }
    Ok(())
}

fn parse_decimal(value: &str, file: &str, key: String) -> Result<Decimal, ConfigError> {
    Decimal::from_str(value.trim())
        .map_err(|_| invalid(file, key, format!("{value:?} is not a decimal number")))
}

fn parse_payout_model(
    model: Option<&str>,
    fixed: Option<&str>,
    revshare: Option<&str>,
    file: &str,
    key: &dyn Fn(&str) -> String,
) -> Result<Option<PayoutModel>, ConfigError> {
    let model = match (model, fixed, revshare) {
        (None, None, None) => return Ok(None),
        (Some(m), _, _) => m,
        (None, Some(_), _) => "fixed",
        (None, None, Some(_)) => "revshare",
    };
    Ok(Some(match model {
        "postback" => PayoutModel::FromPostback,
        "fixed" => {
            let amount = fixed.ok_or_else(|| {
                invalid(
                    file,
                    key("fixed_payout"),
                    "is required when the payout is fixed",
                )
            })?;
            PayoutModel::Fixed(parse_decimal(amount, file, key("fixed_payout"))?)
        }
        "revshare" => {
            let share = revshare
                .ok_or_else(|| invalid(file, key("revshare"), "is required for a revenue share"))?;
            let share = parse_decimal(share, file, key("revshare"))?;
            if share < Decimal::ZERO || share > Decimal::ONE {
                return Err(invalid(file, key("revshare"), "must be between 0 and 1"));
            }
            PayoutModel::RevShare(share)
        }
        other => {
            return Err(invalid(
                file,
                key("payout"),
                format!("{other:?} is not one of \"postback\", \"fixed\", \"revshare\""),
            ))
        }
    }))
}

fn parse_dedup(value: &str, file: &str, key: String) -> Result<DedupMode, ConfigError> {
    match value {
        "click_event" => Ok(DedupMode::ClickEvent),
        "transaction" => Ok(DedupMode::Transaction),
        "all" => Ok(DedupMode::All),
        other => Err(invalid(
            file,
            key,
            format!("{other:?} is not one of \"click_event\", \"transaction\", \"all\""),
        )),
    }
}

fn validate_offer(
    raw: &RawOffer,
    file: &str,
    key: &dyn Fn(&str) -> String,
) -> Result<Offer, ConfigError> {
    names::config_id(&raw.id).map_err(|m| invalid(file, key("id"), m))?;
    let network = raw
        .network
        .as_deref()
        .map(|name| known_preset(name, file, key("network")))
        .transpose()?
        .map(|preset| preset.name.to_string());
    let window_ms = raw
        .window_days
        .map(|d| d.saturating_mul(DAY_MS))
        .unwrap_or(30 * DAY_MS);
    if window_ms == 0 || window_ms > MAX_WINDOW_MS {
        return Err(invalid(
            file,
            key("window_days"),
            "must be between 1 and 90 days",
        ));
    }
    let payout = parse_payout_model(
        raw.payout.as_deref(),
        raw.fixed_payout.as_deref(),
        raw.revshare.as_deref(),
        file,
        key,
    )?
    .unwrap_or(PayoutModel::FromPostback);
    let dedup = match &raw.dedup {
        Some(d) => parse_dedup(d, file, key("dedup"))?,
        None => DedupMode::default(),
    };
    let default_payout = raw
        .default_payout
        .as_deref()
        .map(|amount| money::amount(amount, file, key("default_payout")))
        .transpose()?;
    Ok(Offer {
        id: raw.id.clone(),
        network,
        payout,
        window_ms,
        dedup,
        default_payout,
    })
}

/// The preset named `name`, or an error listing the known ones.
fn known_preset(name: &str, file: &str, key: String) -> Result<&'static Preset, ConfigError> {
    presets::preset(name).ok_or_else(|| {
        invalid(
            file,
            key,
            format!(
                "{name:?} is not a known network preset (known: {})",
                presets::names().join(", ")
            ),
        )
    })
}

fn lowercase_names(
    list: &Option<Vec<String>>,
    default: Vec<String>,
    file: &str,
    key: String,
) -> Result<Vec<String>, ConfigError> {
    match list {
        None => Ok(default),
        Some(list) if list.is_empty() || list.iter().any(|n| n.trim().is_empty()) => Err(invalid(
            file,
            key,
            "needs at least one non-empty parameter name",
        )),
        Some(list) => Ok(list.iter().map(|n| n.trim().to_ascii_lowercase()).collect()),
    }
}

fn validate_route(
    name: &str,
    raw: &RawRoute,
    offers: &BTreeMap<String, Offer>,
    account_currency: Currency,
    file: &str,
) -> Result<Route, ConfigError> {
    let key = |field: &str| format!("routes.{name}.{field}");
    let preset = raw
        .network
        .as_deref()
        .map(|network| known_preset(network, file, key("network")))
        .transpose()?;
    // A preset supplies the names and the status map that the route does not give itself.
    let defaults = preset.map(Preset::param_names).unwrap_or_default();
    let params = ParamNames {
        click_id: lowercase_names(&raw.click_id, defaults.click_id, file, key("click_id"))?,
        payout: lowercase_names(&raw.payout, defaults.payout, file, key("payout"))?,
        offer: lowercase_names(&raw.offer_names, defaults.offer, file, key("offer_param"))?,
        event: lowercase_names(&raw.event, defaults.event, file, key("event"))?,
        txid: lowercase_names(&raw.txid, defaults.txid, file, key("txid"))?,
        status: lowercase_names(&raw.status, defaults.status, file, key("status"))?,
        currency: lowercase_names(
            &raw.currency_param,
            defaults.currency,
            file,
            key("currency_param"),
        )?,
        token: lowercase_names(&raw.token_param, defaults.token, file, key("token_param"))?,
    };
    if let Some(offer) = &raw.offer {
        if !offers.contains_key(offer) {
            return Err(invalid(
                file,
                key("offer"),
                format!("no offer with id {offer:?}"),
            ));
        }
    }
    let mut allow_ips = Vec::new();
    for (i, entry) in raw.allow_ips.iter().flatten().enumerate() {
        let net = entry
            .parse::<IpNet>()
            .or_else(|_| entry.parse::<std::net::IpAddr>().map(IpNet::from))
            .map_err(|_| {
                invalid(
                    file,
                    format!("routes.{name}.allow_ips[{i}]"),
                    format!("{entry:?} is not an IP address or CIDR"),
                )
            })?;
        allow_ips.push(net);
    }
    let mut route = Route::new(name);
    route.offer_id = raw.offer.clone();
    route.params = params;
    if let Some(event) = &raw.default_event {
        route.default_event = event.clone();
    }
    if let Some(status) = &raw.default_status {
        route.default_status = status.clone();
    }
    route.currency = match &raw.currency {
        Some(code) => money::currency(code, file, key("currency"))?,
        None => account_currency,
    };
    route.status_map = match &raw.status_map {
        Some(map) => map.clone(),
        None => preset.map(Preset::status_map).unwrap_or_default(),
    };
    route.payout = parse_payout_model(
        raw.payout_model.as_deref(),
        raw.fixed_payout.as_deref(),
        raw.revshare.as_deref(),
        file,
        &key,
    )?;
    route.dedup = raw
        .dedup
        .as_deref()
        .map(|d| parse_dedup(d, file, key("dedup")))
        .transpose()?;
    if let Some(token) = &raw.token {
        if token.len() < 8 {
            return Err(invalid(file, key("token"), "must be at least 8 characters"));
        }
        route.token = Some(Secret::new(token.clone()));
    }
    route.allow_ips = allow_ips;
    route.accept_foreign_ids = raw.accept_foreign_ids.unwrap_or(false);
    Ok(route)
}
