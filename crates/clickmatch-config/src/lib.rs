//! clickmatch configuration: one TOML file plus `CLICKMATCH_*` environment overrides, parsed,
//! then validated without I/O into a [`Config`].
//!
//! Every error names the file and the key, so an operator can fix it without reading code.

mod money;
pub mod names;
mod raw;

pub use raw::MAX_TRACKED_OFFERS;

use std::collections::BTreeMap;
use std::path::Path;

use clickmatch_core::model::{Account, Secret};

pub use raw::RawConfig;

/// The built-in demo configuration that `clickmatch dev` runs without `--config`.
pub const DEMO_CONFIG: &str = include_str!("../../../config/demo.toml");

/// Where a configuration came from, for error messages.
pub const BUILTIN_SOURCE: &str = "<built-in demo config>";

/// A configuration error, naming the file and the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {file}: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    #[error("{file}: key `{key}`: {message}")]
    Invalid {
        file: String,
        key: String,
        message: String,
    },
}

/// The [`ConfigError::Invalid`] of `key` in `file`.
pub(crate) fn invalid(
    file: &str,
    key: impl Into<String>,
    message: impl Into<String>,
) -> ConfigError {
    ConfigError::Invalid {
        file: file.to_string(),
        key: key.into(),
        message: message.into(),
    }
}

/// HTTP ingest settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestConfig {
    pub listen: String,
    pub public_url: String,
    pub max_body_bytes: usize,
    /// Token of the admin pages (`/debug`), compared in constant time; `None`: they are off.
    pub admin_token: Option<Secret>,
    /// Read-only token that opens only the report API and page (`/api/report`, `/report`);
    /// the admin token opens them too.
    pub report_token: Option<Secret>,
    /// Request size and time limits.
    pub http_limits: HttpLimits,
    pub rate_limits: RateLimits,
    /// Peers whose `X-Forwarded-For` is believed (load balancers, reverse proxies); the
    /// client IP of everyone else is the connection's peer address.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub spool: SpoolConfig,
}

/// Request size and time limits of the ingest HTTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Request target (path and query) longer than this: 414.
    pub max_uri_bytes: usize,
    /// Header names and values together longer than this: 431.
    pub max_header_bytes: usize,
    /// Parameters per postback (query, form and JSON together): more is a 400.
    pub max_params: usize,
    /// A client that has not sent its request head within this time is disconnected.
    pub header_read_timeout_ms: u64,
    /// Whole-request limit (body included): 408 past it.
    pub request_timeout_ms: u64,
}

/// Token-bucket rate limits (requests per second and burst); a rate of 0 turns a limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RateLimits {
    /// Per client IP, over the traffic endpoints (clicks and postbacks).
    pub per_ip_per_second: u32,
    pub per_ip_burst: u32,
    /// Per postback route (each configured route; unknown routes share one bucket).
    pub per_route_per_second: u32,
    pub per_route_burst: u32,
}

/// When the spool syncs appended clicks to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpoolFsync {
    /// Before the append returns.
    Always,
    /// At most this many milliseconds after the append.
    IntervalMs(u64),
}

/// The local disk log of clicks the broker did not acknowledge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolConfig {
    pub dir: String,
    /// Beyond this many bytes on disk, clicks are refused (counted and logged).
    pub max_bytes: u64,
    /// A segment is closed for replay past this size.
    pub segment_bytes: u64,
    pub fsync: SpoolFsync,
}

/// Kafka settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaConfig {
    pub bootstrap_servers: String,
    pub clicks_topic: String,
    pub postbacks_topic: String,
    /// Where the joiner publishes attributed conversions for traffic-source postbacks.
    pub outbound_topic: String,
    pub group_id: String,
    /// Extra librdkafka properties, passed through as they are.
    pub properties: BTreeMap<String, String>,
}

impl KafkaConfig {
    /// Every topic clickmatch uses (a local broker creates them all).
    pub fn topics(&self) -> [&str; 3] {
        [
            &self.clicks_topic,
            &self.postbacks_topic,
            &self.outbound_topic,
        ]
    }
}

/// ClickHouse settings.
#[derive(Clone, PartialEq, Eq)]
pub struct ClickHouseConfig {
    pub url: String,
    pub database: String,
    pub user: Option<String>,
    pub password: Option<String>,
    /// The `clickhouse` crate's schema validation; off for ClickHouse 18.16.
    pub validation: bool,
    /// The cluster (in the servers' `remote_servers`) that `clickmatch migrate` creates the
    /// cluster schema on: replicated local tables, `Distributed` tables, DDL `ON CLUSTER`
    /// (deploy/clickhouse/cluster/). `None`: one server.
    pub cluster: Option<String>,
}

impl std::fmt::Debug for ClickHouseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseConfig")
            .field("url", &self.url)
            .field("database", &self.database)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("validation", &self.validation)
            .field("cluster", &self.cluster)
            .finish()
    }
}

/// Joiner batching and retry limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinerConfig {
    pub batch_max_rows: usize,
    pub batch_max_ms: u64,
    /// A batch of at least `batch_early_rows` rows goes once it is `batch_early_ms` old: at
    /// high rates a row waits less, and no insert is smaller than ClickHouse likes.
    pub batch_early_rows: usize,
    pub batch_early_ms: u64,
    pub retry_initial_ms: u64,
    pub retry_max_ms: u64,
    /// Publish attributed conversions to the outbound topic (after the ClickHouse ack).
    pub publish_outbound: bool,
    /// Folder of the joiner's disk-backed state (one database per partition inside).
    pub state_dir: String,
    /// Block cache of the state store, in MiB.
    pub state_cache_mib: u64,
}

impl JoinerConfig {
    /// How old a batch of `rows` rows may grow before it is written: `batch_max_ms`, or
    /// `batch_early_ms` once it holds `batch_early_rows`. At 10,000 rows/s a 500 ms batch held
    /// a row up to 500 ms before its insert (p99 700 ms to queryable); 2,000 rows every 200 ms
    /// is still a batch ClickHouse takes well, and a quiet stream keeps its few inserts.
    pub fn batch_max_age(&self, rows: usize) -> std::time::Duration {
        let ms = if rows >= self.batch_early_rows {
            self.batch_early_ms.min(self.batch_max_ms)
        } else {
            self.batch_max_ms
        };
        std::time::Duration::from_millis(ms)
    }
}

/// The outbound dispatcher: fires each attributed conversion's traffic-source postback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundConfig {
    /// Its own consumer group on `kafka.outbound_topic`.
    pub group_id: String,
    /// Attempts per delivery, the first included.
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubled each time, at most `retry_max_ms`.
    pub retry_initial_ms: u64,
    pub retry_max_ms: u64,
    /// Limit on one HTTP request to the traffic source.
    pub request_timeout_ms: u64,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Records taken from Kafka per batch (deliveries of a batch run concurrently).
    pub batch_max_records: usize,
    /// Fire postbacks for test conversions (`is_test`) too; off by default.
    pub fire_test_conversions: bool,
}

impl OutboundConfig {
    /// The longest one batch can take: every attempt timing out, every backoff waited. The
    /// dispatcher's `max.poll.interval.ms` must exceed it.
    pub fn worst_case_ms(&self) -> u64 {
        let mut total = 0u64;
        let mut backoff = self.retry_initial_ms;
        for attempt in 0..self.max_attempts {
            total = total.saturating_add(self.request_timeout_ms);
            if attempt + 1 < self.max_attempts {
                total = total.saturating_add(backoff);
                backoff = backoff.saturating_mul(2).min(self.retry_max_ms);
            }
        }
        total
    }
}

/// Enrichment of clicks at ingest: geo and ASN from the user's MaxMind-format `.mmdb` files,
/// device, OS, browser and bot flag from the user agent. Only paths are checked here (no I/O):
/// ingest opens the files at startup and refuses to start when one cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrichmentConfig {
    /// A City or Country database (GeoLite2, DB-IP Lite, IPinfo Lite): country, region, city.
    pub geoip_db: Option<std::path::PathBuf>,
    /// An ASN database (GeoLite2-ASN, DB-IP ASN Lite, IPinfo Lite): AS number and organisation.
    pub asn_db: Option<std::path::PathBuf>,
    /// Classify the user agent (device type, OS, browser, bot flag).
    pub user_agent: bool,
    /// How often the database files are checked for a replacement.
    pub reload_interval_ms: u64,
}

impl Default for EnrichmentConfig {
    /// No databases, user agents classified, files checked every 60 s.
    fn default() -> Self {
        EnrichmentConfig {
            geoip_db: None,
            asn_db: None,
            user_agent: true,
            reload_interval_ms: 60_000,
        }
    }
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub account: Account,
    pub ingest: IngestConfig,
    pub enrichment: EnrichmentConfig,
    pub kafka: KafkaConfig,
    pub clickhouse: ClickHouseConfig,
    pub joiner: JoinerConfig,
    pub outbound: OutboundConfig,
}

impl Config {
    /// Reads and validates `path`, with overrides from `env` (`CLICKMATCH_*` pairs).
    pub fn load(path: &Path, env: &BTreeMap<String, String>) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: file.clone(),
            source,
        })?;
        Config::from_toml(&text, &file, env)
    }

    /// Parses and validates TOML text; `file` names it in errors.
    pub fn from_toml(
        text: &str,
        file: &str,
        env: &BTreeMap<String, String>,
    ) -> Result<Config, ConfigError> {
        let raw = RawConfig::parse(text, file, env)?;
        raw.validate(file)
    }

    /// The built-in demo configuration with `env` overrides.
    pub fn demo(env: &BTreeMap<String, String>) -> Result<Config, ConfigError> {
        Config::from_toml(DEMO_CONFIG, BUILTIN_SOURCE, env)
    }
}

/// The `CLICKMATCH_*` variables of the process environment.
pub fn process_env() -> BTreeMap<String, String> {
    std::env::vars()
        .filter(|(k, _)| k.starts_with(raw::ENV_PREFIX))
        .collect()
}

#[cfg(test)]
mod tests;
