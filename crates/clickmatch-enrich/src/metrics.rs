//! The enrichment databases' metrics: reloads by outcome, and the build time of each database in
//! use (to tell from `/metrics` whether a replacement was taken).

use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};

use crate::ipdb::IpDb;

#[derive(Clone)]
pub struct EnrichMetrics {
    reloads: IntCounterVec,
    build_epoch: IntGaugeVec,
}

impl EnrichMetrics {
    /// The metrics, registered in `registry`.
    pub fn new(registry: &Registry) -> Result<EnrichMetrics, prometheus::Error> {
        let metrics = EnrichMetrics::unregistered()?;
        registry.register(Box::new(metrics.reloads.clone()))?;
        registry.register(Box::new(metrics.build_epoch.clone()))?;
        Ok(metrics)
    }

    /// The same metrics, registered nowhere (enrichment off, tools, tests).
    pub fn unregistered() -> Result<EnrichMetrics, prometheus::Error> {
        Ok(EnrichMetrics {
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
        })
    }

    pub(crate) fn loaded(&self, label: &str, db: &IpDb) {
        self.reloads.with_label_values(&[label, "loaded"]).inc();
        self.build_epoch
            .with_label_values(&[label])
            .set(i64::try_from(db.build_epoch()).unwrap_or(i64::MAX));
    }

    pub(crate) fn refused(&self, label: &str) {
        self.reloads.with_label_values(&[label, "refused"]).inc();
    }

    /// Files of `label` read so far with `result` (`loaded`, `refused`).
    pub fn loads(&self, label: &str, result: &str) -> u64 {
        self.reloads.with_label_values(&[label, result]).get()
    }
}
