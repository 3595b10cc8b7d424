//! The enrichment databases' metrics: reloads by outcome, and the build time of each database in
//! use (to tell from `/metrics` whether a replacement was taken).

use prometheus::{IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry};

use crate::ipdb::IpDb;

#[derive(Clone)]
pub struct EnrichMetrics {
    reloads: IntCounterVec,
    build_epoch: IntGaugeVec,
    /// 1 while the file at a database's path was refused and an older one is in use.
    refused_now: IntGaugeVec,
    /// Address lookups answered from the block cache, and those that walked the files (resolved
    /// once: each click counts one).
    blocks: IntCounterVec,
    pub(crate) block_cached: IntCounter,
    pub(crate) block_walked: IntCounter,
}

impl EnrichMetrics {
    /// The metrics, registered in `registry`.
    pub fn new(registry: &Registry) -> Result<EnrichMetrics, prometheus::Error> {
        let metrics = EnrichMetrics::unregistered()?;
        registry.register(Box::new(metrics.reloads.clone()))?;
        registry.register(Box::new(metrics.build_epoch.clone()))?;
        registry.register(Box::new(metrics.refused_now.clone()))?;
        registry.register(Box::new(metrics.blocks.clone()))?;
        Ok(metrics)
    }

    /// The same metrics, registered nowhere (enrichment off, tools, tests).
    pub fn unregistered() -> Result<EnrichMetrics, prometheus::Error> {
        let blocks = IntCounterVec::new(
            Opts::new(
                "clickmatch_enrich_address_lookups_total",
                "Client addresses looked up in the enrichment databases, by result: cached (the \
                 facts of its /24 or /48 were kept) or walked (the files' search trees were \
                 read).",
            ),
            &["result"],
        )?;
        Ok(EnrichMetrics {
            block_cached: blocks.with_label_values(&["cached"]),
            block_walked: blocks.with_label_values(&["walked"]),
            blocks,
            reloads: IntCounterVec::new(
                Opts::new(
                    "clickmatch_enrich_database_loads_total",
                    "Enrichment database files read, by database (geoip, asn) and result \
                     (loaded, refused: unreadable or not a valid MaxMind DB; the one in use \
                     stays).",
                ),
                &["database", "result"],
            )?,
            build_epoch: IntGaugeVec::new(
                Opts::new(
                    "clickmatch_enrich_database_build_epoch_seconds",
                    "Build time (Unix seconds, from its metadata) of the enrichment database in \
                     use, by database.",
                ),
                &["database"],
            )?,
            refused_now: IntGaugeVec::new(
                Opts::new(
                    "clickmatch_enrich_database_file_refused",
                    "1 while the file at a database's configured path was refused (unreadable, \
                     missing or not a valid MaxMind DB) and an older one is in use; 0 once a \
                     file loads.",
                ),
                &["database"],
            )?,
        })
    }

    pub(crate) fn loaded(&self, label: &str, db: &IpDb) {
        self.reloads.with_label_values(&[label, "loaded"]).inc();
        self.refused_now.with_label_values(&[label]).set(0);
        self.build_epoch
            .with_label_values(&[label])
            .set(i64::try_from(db.build_epoch()).unwrap_or(i64::MAX));
    }

    pub(crate) fn refused(&self, label: &str) {
        self.reloads.with_label_values(&[label, "refused"]).inc();
        self.refused_now.with_label_values(&[label]).set(1);
    }

    /// Whether the file at `label`'s path is refused now (an older database in use).
    pub fn refused_now(&self, label: &str) -> bool {
        self.refused_now.with_label_values(&[label]).get() == 1
    }

    /// Files of `label` read so far with `result` (`loaded`, `refused`).
    pub fn loads(&self, label: &str, result: &str) -> u64 {
        self.reloads.with_label_values(&[label, result]).get()
    }
}
