//! Outbound metrics: one struct, registered once. Labels are fixed sets (no campaign, click or
//! traffic-source host ever becomes a label).

use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry};

#[derive(Clone)]
pub struct OutboundMetrics {
    /// What became of each record read: delivered, failed, skipped_test, no_postback_url,
    /// unknown_campaign, already_done, duplicate_in_batch, unreadable.
    pub records: IntCounterVec,
    /// HTTP attempts by result: delivered, retryable, permanent.
    pub attempts: IntCounterVec,
    pub attempt_duration: Histogram,
    /// ClickHouse reads and writes that failed (retried), by operation.
    pub clickhouse_errors: IntCounterVec,
    /// Kafka commits by result.
    pub commits: IntCounterVec,
    /// Deliveries of the batch in progress that have not reached a final state.
    pub in_flight: IntGauge,
}

impl OutboundMetrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let records = IntCounterVec::new(
            Opts::new(
                "clickmatch_outbound_records_total",
                "Outbound records read, by what became of them (delivered, failed, skipped_test, \
                 no_postback_url, unknown_campaign, already_done, duplicate_in_batch, unreadable).",
            ),
            &["result"],
        )?;
        let attempts = IntCounterVec::new(
            Opts::new(
                "clickmatch_outbound_attempts_total",
                "Traffic-source postback attempts, by result (delivered, retryable, permanent).",
            ),
            &["result"],
        )?;
        let attempt_duration = Histogram::with_opts(
            HistogramOpts::new(
                "clickmatch_outbound_attempt_duration_seconds",
                "Duration of one traffic-source postback request.",
            )
            .buckets(vec![
                0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
        )?;
        let clickhouse_errors = IntCounterVec::new(
            Opts::new(
                "clickmatch_outbound_clickhouse_errors_total",
                "Failed ClickHouse reads and writes of the dispatcher (retried), by operation.",
            ),
            &["operation"],
        )?;
        let commits = IntCounterVec::new(
            Opts::new(
                "clickmatch_outbound_commits_total",
                "Kafka offset commits of the dispatcher, by result.",
            ),
            &["result"],
        )?;
        let in_flight = IntGauge::new(
            "clickmatch_outbound_deliveries_in_flight",
            "Deliveries of the current batch not yet in a final state.",
        )?;
        registry.register(Box::new(records.clone()))?;
        registry.register(Box::new(attempts.clone()))?;
        registry.register(Box::new(attempt_duration.clone()))?;
        registry.register(Box::new(clickhouse_errors.clone()))?;
        registry.register(Box::new(commits.clone()))?;
        registry.register(Box::new(in_flight.clone()))?;
        Ok(OutboundMetrics {
            records,
            attempts,
            attempt_duration,
            clickhouse_errors,
            commits,
            in_flight,
        })
    }
}
