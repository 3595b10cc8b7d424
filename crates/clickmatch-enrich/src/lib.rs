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

use arc_swap::ArcSwap;
use clickmatch_config::EnrichmentConfig;
use clickmatch_core::records::Enrichment;
use prometheus::Registry;
use quick_cache::sync::Cache;

pub use agent::{Agent, Agents};
pub use ipdb::{Found, IpDb, IpFacts};
pub use metrics::EnrichMetrics;
pub use watch::{Reload, Watched};

/// User agents whose classes are kept (a few MB at most: user agents are cut to 512 bytes).
pub const AGENT_CACHE_CAPACITY: usize = 10_000;

/// The address blocks whose facts are kept: IPv4 /24s and IPv6 /48s (prefix lengths).
/// Finding an address walks up to 32 (128) nodes of a tree of tens of MB in each file, a cache
/// miss each; clicks come in runs from the same networks, and a block that one network of
/// each file covers whole gets the same facts for every address in it.
pub const BLOCK_PREFIXES: (u8, u8) = (24, 48);
/// Blocks kept (about 100 bytes each, plus the facts they share).
pub const BLOCK_CACHE_CAPACITY: usize = 100_000;

/// The block of `ip` as a cache key (IPv4 and IPv6 kept apart by the top bit).
pub fn block_of(ip: IpAddr) -> u128 {
    let (v4, v6) = BLOCK_PREFIXES;
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a) >> (32 - v4)),
        IpAddr::V6(a) => (1 << 127) | (u128::from(a) >> (128 - v6)),
    }
}

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
    /// Both files' facts by address block; a new, empty cache whenever a file is replaced.
    blocks: ArcSwap<Cache<u128, Arc<IpFacts>>>,
    agents: Option<Agents>,
    metrics: EnrichMetrics,
}

fn block_cache() -> Cache<u128, Arc<IpFacts>> {
    Cache::new(BLOCK_CACHE_CAPACITY)
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
            blocks: ArcSwap::from_pointee(block_cache()),
            agents: config.user_agent.then(|| Agents::new(AGENT_CACHE_CAPACITY)),
            metrics,
        })
    }

    /// No databases, no user-agent parsing: every click's fields stay empty.
    pub fn off() -> Enricher {
        Enricher {
            geo: None,
            asn: None,
            blocks: ArcSwap::from_pointee(block_cache()),
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
        let facts = match ip {
            Some(ip) if self.geo.is_some() || self.asn.is_some() => self.facts(ip),
            _ => Arc::default(),
        };
        let mut enrichment = Enrichment {
            region: facts.region.clone(),
            city: facts.city.clone(),
            asn: facts.asn,
            isp: facts.isp.clone(),
            ..Enrichment::default()
        };
        if let Some(agents) = &self.agents {
            let agent = agents.classify(user_agent);
            enrichment.device_type = agent.device_type.clone();
            enrichment.os = agent.os.clone();
            enrichment.browser = agent.browser.clone();
            enrichment.is_bot = agent.is_bot;
        }
        Enriched {
            country: facts.country.clone(),
            enrichment,
        }
    }

    /// Both files' facts about `ip`, from the block cache when they cover its block whole.
    fn facts(&self, ip: IpAddr) -> Arc<IpFacts> {
        // The cache before the files: a replacement stores the file first, then a new cache, so
        // facts of an old file can only land in an old cache.
        let blocks = self.blocks.load();
        let block = block_of(ip);
        if let Some(facts) = blocks.get(&block) {
            self.metrics.block_cached.inc();
            return facts;
        }
        self.metrics.block_walked.inc();
        let mut facts = IpFacts::default();
        let mut whole_block = true;
        for watched in [&self.geo, &self.asn].into_iter().flatten() {
            let found = watched.current().lookup(ip);
            facts.fill_from(&found.facts);
            whole_block &= found.covers_block;
        }
        let facts = Arc::new(facts);
        if whole_block {
            blocks.insert(block, facts.clone());
        }
        facts
    }

    /// Checks every database file once and swaps in the changed ones (blocking file I/O).
    pub fn reload_changed(&self) -> Vec<Reload> {
        let done: Vec<Reload> = [&self.geo, &self.asn]
            .into_iter()
            .flatten()
            .map(|watched| watched.reload_if_changed(&self.metrics))
            .collect();
        if done.iter().any(|r| matches!(r, Reload::Loaded)) {
            self.blocks.store(Arc::new(block_cache()));
        }
        done
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
