//! clickmatch configuration: one TOML file plus `CLICKMATCH_*` environment overrides, parsed,
//! then validated without I/O into a [`Config`].
//!
//! Every error names the file and the key, so an operator can fix it without reading code.

mod raw;

use std::collections::BTreeMap;
use std::path::Path;

use clickmatch_core::model::Account;

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

/// HTTP ingest settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestConfig {
    pub listen: String,
    pub public_url: String,
    pub max_body_bytes: usize,
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

/// ClickHouse settings.
#[derive(Clone, PartialEq, Eq)]
pub struct ClickHouseConfig {
    pub url: String,
    pub database: String,
    pub user: Option<String>,
    pub password: Option<String>,
    /// The `clickhouse` crate's schema validation; off for ClickHouse 18.16.
    pub validation: bool,
}

impl std::fmt::Debug for ClickHouseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseConfig")
            .field("url", &self.url)
            .field("database", &self.database)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("validation", &self.validation)
            .finish()
    }
}

/// Joiner batching and retry limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinerConfig {
    pub batch_max_rows: usize,
    pub batch_max_ms: u64,
    pub retry_initial_ms: u64,
    pub retry_max_ms: u64,
    /// Publish attributed conversions to the outbound topic (after the ClickHouse ack).
    pub publish_outbound: bool,
    /// Folder of the joiner's disk-backed state (one database per partition inside).
    pub state_dir: String,
    /// Block cache of the state store, in MiB.
    pub state_cache_mib: u64,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub account: Account,
    pub ingest: IngestConfig,
    pub kafka: KafkaConfig,
    pub clickhouse: ClickHouseConfig,
    pub joiner: JoinerConfig,
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
