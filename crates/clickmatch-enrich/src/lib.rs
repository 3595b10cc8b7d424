//! Click enrichment at ingest (`[enrichment]`): country, region and city from a City or
//! Country `.mmdb`, AS number and organisation from an ASN `.mmdb` (the user's files: GeoLite2,
//! DB-IP Lite, IPinfo Lite; see [`ipdb`] for the layouts), device type, OS, browser and bot
//! flag from the user agent ([`agent`]). Database files are swapped for their replacements
//! without a restart ([`watch`], [`Enricher::watch`]). Nothing configured: every field stays
//! empty and nothing fails.
//!
//! [`demo`] writes the small databases `clickmatch dev` runs with.

pub mod agent;
pub mod demo;
pub mod ipdb;
mod metrics;
pub mod watch;

use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clickmatch_config::EnrichmentConfig;
use clickmatch_core::records::Enrichment;
use prometheus::Registry;

pub use agent::{Agent, Agents};
pub use ipdb::{IpDb, IpFacts};
pub use metrics::EnrichMetrics;
pub use watch::{Reload, Watched};

/// User agents whose classes are kept (a few MB at most: user agents are cut to 512 bytes).
pub const AGENT_CACHE_CAPACITY: usize = 10_000;

/// A database that could not be used; names the configuration key and the file.
#[derive(Debug, thiserror::Error)]
pub enum EnrichError {
    #[error("key `{key}`: cannot read {path}: {source}")]
    Read {
        key: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("key `{key}`: {path} is not a valid MaxMind DB (.mmdb) file: {source}")]
    NotADatabase {
        key: &'static str,
        path: PathBuf,
        source: maxminddb::MaxMindDbError,
    },
    #[error("enrichment metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// What enrichment found for one click.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Enriched {
    /// ISO 3166 alpha-2, empty when unknown.
    pub country: String,
    pub enrichment: Enrichment,
}

/// The enrichment sources of one ingest process.
pub struct Enricher {
    geo: Option<Watched>,
    asn: Option<Watched>,
    agents: Option<Agents>,
    metrics: EnrichMetrics,
}

impl Enricher {
    /// Opens the configured databases (an error names the key and the file: ingest does not
    /// start with a database it cannot read) and registers the metrics in `registry`.
    pub fn open(config: &EnrichmentConfig, registry: &Registry) -> Result<Enricher, EnrichError> {
        let metrics = EnrichMetrics::new(registry)?;
        let open = |key, label, path: &Option<PathBuf>| {
            path.as_deref()
                .map(|path| Watched::open(key, label, path, &metrics))
                .transpose()
        };
        Ok(Enricher {
            geo: open("enrichment.geoip_db", "geoip", &config.geoip_db)?,
            asn: open("enrichment.asn_db", "asn", &config.asn_db)?,
            agents: config.user_agent.then(|| Agents::new(AGENT_CACHE_CAPACITY)),
            metrics,
        })
    }

    /// No databases, no user-agent parsing: every click's fields stay empty.
    pub fn off() -> Enricher {
        Enricher {
            geo: None,
            asn: None,
            agents: None,
            metrics: EnrichMetrics::unregistered().expect("valid metric definitions"),
        }
    }

    /// Whether any source is configured.
    pub fn is_on(&self) -> bool {
        self.geo.is_some() || self.asn.is_some() || self.agents.is_some()
    }

    pub fn metrics(&self) -> &EnrichMetrics {
        &self.metrics
    }

    /// What the databases say about `ip` (`None`: no usable address) and what `user_agent`
    /// says about the client. Each database fills the fields it has: a file with country and
    /// ASN (IPinfo Lite) serves both; where both files know a field, the geo one wins.
    pub fn click(&self, ip: Option<IpAddr>, user_agent: &str) -> Enriched {
        let mut facts = IpFacts::default();
        if let Some(ip) = ip {
            if let Some(geo) = &self.geo {
                facts.fill_from(&geo.current().lookup(ip));
            }
            if let Some(asn) = &self.asn {
                facts.fill_from(&asn.current().lookup(ip));
            }
        }
        let mut enrichment = Enrichment {
            region: facts.region,
            city: facts.city,
            asn: facts.asn,
            isp: facts.isp,
            ..Enrichment::default()
        };
        if let Some(agents) = &self.agents {
            let agent = agents.classify(user_agent);
            enrichment.device_type = agent.device_type.to_owned();
            enrichment.os.clone_from(&agent.os);
            enrichment.browser.clone_from(&agent.browser);
            enrichment.is_bot = agent.is_bot;
        }
        Enriched {
            country: facts.country,
            enrichment,
        }
    }

    /// Checks every database file once and swaps in the changed ones (blocking file I/O).
    pub fn reload_changed(&self) -> Vec<Reload> {
        [&self.geo, &self.asn]
            .into_iter()
            .flatten()
            .map(|watched| watched.reload_if_changed(&self.metrics))
            .collect()
    }

    /// Checks the database files every `interval` until `shutdown` resolves. Without
    /// databases it only waits: it is a service task, and one that ends stops the process.
    pub async fn watch(self: Arc<Self>, interval: Duration, shutdown: impl Future<Output = ()>) {
        if self.geo.is_none() && self.asn.is_none() {
            return shutdown.await;
        }
        tokio::pin!(shutdown);
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = ticks.tick() => {
                    let enricher = self.clone();
                    // Reading and verifying a large file takes a while: not on a worker.
                    let _ = tokio::task::spawn_blocking(move || enricher.reload_changed()).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
