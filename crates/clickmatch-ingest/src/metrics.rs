//! Ingest metrics. Labels stay low-cardinality: route names come from configuration, unknown
//! routes share one label, and no click ID or campaign ever becomes a label.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};

#[derive(Clone)]
pub struct IngestMetrics {
    pub clicks: IntCounterVec,
    pub postbacks: IntCounterVec,
    pub produce_errors: IntCounterVec,
    pub http_duration: HistogramVec,
    pub inflight_clicks: IntGauge,
    pub cost_issues: IntCounterVec,
}

impl IngestMetrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let clicks = IntCounterVec::new(
            Opts::new(
                "clickmatch_ingest_clicks_total",
                "Clicks recorded, by result (produced, failed, unknown_campaign).",
            ),
            &["result"],
        )?;
        let postbacks = IntCounterVec::new(
            Opts::new(
                "clickmatch_ingest_postbacks_total",
                "Postbacks received, by route and HTTP status answered.",
            ),
            &["route", "status"],
        )?;
        let produce_errors = IntCounterVec::new(
            Opts::new(
                "clickmatch_ingest_produce_errors_total",
                "Records the broker did not acknowledge, by topic.",
            ),
            &["topic"],
        )?;
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "clickmatch_http_request_duration_seconds",
                "HTTP request latency by endpoint and status.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["endpoint", "status"],
        )?;
        let inflight_clicks = IntGauge::new(
            "clickmatch_ingest_clicks_inflight",
            "Clicks handed to the producer and not yet acknowledged by the broker.",
        )?;
        let cost_issues = IntCounterVec::new(
            Opts::new(
                "clickmatch_click_cost_issues_total",
                "Clicks whose cost parameter could not be read (kept raw, the campaign's fixed \
                 cost or 0 booked), by issue code.",
            ),
            &["code"],
        )?;
        registry.register(Box::new(cost_issues.clone()))?;
        registry.register(Box::new(clicks.clone()))?;
        registry.register(Box::new(postbacks.clone()))?;
        registry.register(Box::new(produce_errors.clone()))?;
        registry.register(Box::new(http_duration.clone()))?;
        registry.register(Box::new(inflight_clicks.clone()))?;
        Ok(IngestMetrics {
            clicks,
            postbacks,
            produce_errors,
            http_duration,
            inflight_clicks,
            cost_issues,
        })
    }
}
