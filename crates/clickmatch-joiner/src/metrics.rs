//! Joiner metrics: one struct, registered once, updated where the event happens.

use std::collections::BTreeMap;

use clickmatch_core::model::{Account, UNKNOWN_ROUTE_LABEL};
use clickmatch_core::records::{ClickRecord, Origin, Outcome};
use prometheus::{
    GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

#[derive(Clone)]
pub struct JoinerMetrics {
    pub clicks: IntCounter,
    pub postbacks: IntCounterVec,
    /// Reprocessed and uploaded records, counted apart from live postbacks so that a recovery
    /// run moves none of the rates the alerts watch.
    pub recovered: IntCounterVec,
    pub attribution_latency: Histogram,
    pub records_skipped: IntCounterVec,
    pub consumer_lag: IntGaugeVec,
    pub state_clicks: IntGaugeVec,
    pub pending_postbacks: IntGaugeVec,
    pub batch_rows: Histogram,
    pub insert_duration: Histogram,
    pub insert_errors: IntCounterVec,
    pub commits: IntCounterVec,
    pub assigned_partitions: IntGaugeVec,
    pub repairs: IntCounterVec,
    pub payout_issues: IntCounterVec,
    pub restore_progress: GaugeVec,
    pub state_disk_bytes: IntGauge,
    pub outbound_errors: IntCounter,
    /// Clicks and attributed postbacks of tracked offers (`[[offers]] tracked = true`), by
    /// offer: what the postbacks-stopped alert compares.
    pub offer_clicks: IntCounterVec,
    pub offer_conversions: IntCounterVec,
}

impl JoinerMetrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let m = JoinerMetrics {
            clicks: IntCounter::new("clickmatch_joiner_clicks_total", "Clicks joined into state and written.")?,
            postbacks: IntCounterVec::new(
                Opts::new(
                    "clickmatch_joiner_postbacks_total",
                    "Postbacks with their row acknowledged by ClickHouse, by route, outcome (attributed, unattributed) and reason.",
                ),
                &["route", "outcome", "reason"],
            )?,
            recovered: IntCounterVec::new(
                Opts::new(
                    "clickmatch_joiner_recovered_total",
                    "Reprocessed and uploaded records with their row acknowledged by ClickHouse, by origin (reprocess, upload), outcome (attributed, unattributed) and reason.",
                ),
                &["origin", "outcome", "reason"],
            )?,
            attribution_latency: Histogram::with_opts(
                HistogramOpts::new(
                    "clickmatch_attribution_latency_seconds",
                    "Postback received by ingest until its row was acknowledged by ClickHouse.",
                )
                .buckets(vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0]),
            )?,
            records_skipped: IntCounterVec::new(
                Opts::new("clickmatch_joiner_records_skipped_total", "Unreadable Kafka records skipped, by topic."),
                &["topic"],
            )?,
            consumer_lag: IntGaugeVec::new(
                Opts::new("clickmatch_joiner_consumer_lag_records", "High watermark minus processed position, by topic and partition."),
                &["topic", "partition"],
            )?,
            state_clicks: IntGaugeVec::new(
                Opts::new("clickmatch_joiner_state_clicks", "Clicks held in join state, by partition."),
                &["partition"],
            )?,
            pending_postbacks: IntGaugeVec::new(
                Opts::new("clickmatch_joiner_pending_postbacks", "Postbacks waiting for their click, by partition."),
                &["partition"],
            )?,
            batch_rows: Histogram::with_opts(
                HistogramOpts::new("clickmatch_clickhouse_batch_rows", "Rows per ClickHouse batch.")
                    .buckets(prometheus::exponential_buckets(1.0, 4.0, 10)?),
            )?,
            insert_duration: Histogram::with_opts(
                HistogramOpts::new("clickmatch_clickhouse_insert_duration_seconds", "Time to write one batch, retries included.")
                    .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
            )?,
            insert_errors: IntCounterVec::new(
                Opts::new("clickmatch_clickhouse_insert_errors_total", "Failed ClickHouse batch attempts, by kind (retryable, permanent)."),
                &["kind"],
            )?,
            commits: IntCounterVec::new(
                Opts::new("clickmatch_joiner_commits_total", "Kafka offset commits after a ClickHouse ack, by the broker's answer (ok, error)."),
                &["result"],
            )?,
            assigned_partitions: IntGaugeVec::new(
                Opts::new("clickmatch_joiner_assigned_partitions", "Partitions assigned to this joiner, by topic."),
                &["topic"],
            )?,
            repairs: IntCounterVec::new(
                Opts::new(
                    "clickmatch_joiner_click_id_repairs_total",
                    "Attributed conversions whose signed click ID was salvaged from a mangled postback, by route and hint code.",
                ),
                &["route", "hint"],
            )?,
            payout_issues: IntCounterVec::new(
                Opts::new(
                    "clickmatch_joiner_payout_issues_total",
                    "Attributed conversions whose payout could not be booked as sent (kept raw, the offer's default_payout or 0 booked), by route and issue code.",
                ),
                &["route", "code"],
            )?,
            restore_progress: GaugeVec::new(
                Opts::new(
                    "clickmatch_joiner_restore_progress_ratio",
                    "Restore of a partition's state from the clicks topic, 0 to 1 (1 when restored or resumed from a checkpoint).",
                ),
                &["partition"],
            )?,
            state_disk_bytes: IntGauge::new(
                "clickmatch_joiner_state_disk_bytes",
                "Bytes the joiner's state database holds on disk.",
            )?,
            outbound_errors: IntCounter::new(
                "clickmatch_joiner_outbound_publish_errors_total",
                "Failed attempts to publish an attributed conversion to the outbound topic.",
            )?,
            offer_clicks: IntCounterVec::new(
                Opts::new(
                    "clickmatch_joiner_offer_clicks_total",
                    "Clicks of tracked offers joined and written, by offer (test clicks left out).",
                ),
                &["offer"],
            )?,
            offer_conversions: IntCounterVec::new(
                Opts::new(
                    "clickmatch_joiner_offer_conversions_total",
                    "Attributed postbacks of tracked offers written, by offer (test conversions \
                     left out).",
                ),
                &["offer"],
            )?,
        };
        registry.register(Box::new(m.clicks.clone()))?;
        registry.register(Box::new(m.postbacks.clone()))?;
        registry.register(Box::new(m.recovered.clone()))?;
        registry.register(Box::new(m.attribution_latency.clone()))?;
        registry.register(Box::new(m.records_skipped.clone()))?;
        registry.register(Box::new(m.consumer_lag.clone()))?;
        registry.register(Box::new(m.state_clicks.clone()))?;
        registry.register(Box::new(m.pending_postbacks.clone()))?;
        registry.register(Box::new(m.batch_rows.clone()))?;
        registry.register(Box::new(m.insert_duration.clone()))?;
        registry.register(Box::new(m.insert_errors.clone()))?;
        registry.register(Box::new(m.commits.clone()))?;
        registry.register(Box::new(m.assigned_partitions.clone()))?;
        registry.register(Box::new(m.repairs.clone()))?;
        registry.register(Box::new(m.payout_issues.clone()))?;
        registry.register(Box::new(m.restore_progress.clone()))?;
        registry.register(Box::new(m.state_disk_bytes.clone()))?;
        registry.register(Box::new(m.outbound_errors.clone()))?;
        registry.register(Box::new(m.offer_clicks.clone()))?;
        registry.register(Box::new(m.offer_conversions.clone()))?;
        Ok(m)
    }

    /// Drops the per-partition series of a partition that left this member.
    pub fn forget_partition(&self, partition: i32) {
        let label = partition.to_string();
        for gauge in [&self.state_clicks, &self.pending_postbacks] {
            let _ = gauge.remove_label_values(&[&label]);
        }
        let _ = self.restore_progress.remove_label_values(&[&label]);
    }
}

/// Counts a batch's outcomes: one update per distinct label set, not a label lookup per row.
pub(crate) fn count_outcomes(
    metrics: &JoinerMetrics,
    account: &Account,
    outcomes: &[Outcome],
    now: u64,
) {
    let mut postbacks: BTreeMap<[&str; 3], u64> = BTreeMap::new();
    let mut repairs: BTreeMap<[&str; 2], u64> = BTreeMap::new();
    let mut payout_issues: BTreeMap<[&str; 2], u64> = BTreeMap::new();
    let mut recovered: BTreeMap<[&str; 3], u64> = BTreeMap::new();
    for outcome in outcomes {
        let (route, kind, reason, origin) = match outcome {
            Outcome::Attributed(c) => (c.route.as_str(), "attributed", "", c.origin),
            Outcome::Unattributed(u) => (
                u.route.as_str(),
                "unattributed",
                u.reason.as_str(),
                u.origin,
            ),
        };
        // Not a live postback: neither its outcome nor its latency (from the original receive
        // time) says anything about the traffic now.
        if !origin.is_postback() {
            *recovered
                .entry([origin.as_str(), kind, reason])
                .or_default() += 1;
            continue;
        }
        let route = account.route_label(route).unwrap_or(UNKNOWN_ROUTE_LABEL);
        *postbacks.entry([route, kind, reason]).or_default() += 1;
        if let Outcome::Attributed(conversion) = outcome {
            if conversion.click_id_repaired {
                *repairs
                    .entry([route, conversion.repair.as_str()])
                    .or_default() += 1;
            }
            if !conversion.payout_issue.is_empty() {
                *payout_issues
                    .entry([route, conversion.payout_issue.as_str()])
                    .or_default() += 1;
            }
        }
        let latency = now.saturating_sub(outcome.received_ms()) as f64 / 1000.0;
        metrics.attribution_latency.observe(latency);
    }
    for (labels, count) in postbacks {
        metrics.postbacks.with_label_values(&labels).inc_by(count);
    }
    for (labels, count) in recovered {
        metrics.recovered.with_label_values(&labels).inc_by(count);
    }
    for (labels, count) in repairs {
        metrics.repairs.with_label_values(&labels).inc_by(count);
    }
    for (labels, count) in payout_issues {
        metrics
            .payout_issues
            .with_label_values(&labels)
            .inc_by(count);
    }
}

/// Counts a batch's clicks and attributed postbacks of tracked offers, by offer. Every tracked
/// offer's series is touched, so that an offer whose postbacks stopped reads 0 rather than
/// nothing (an absent series would keep the alert silent).
pub(crate) fn count_tracked_offers(
    metrics: &JoinerMetrics,
    account: &Account,
    clicks: &[ClickRecord],
    outcomes: &[Outcome],
) {
    let mut counts: BTreeMap<&str, [u64; 2]> = account
        .offers
        .values()
        .filter(|offer| offer.tracked)
        .map(|offer| (offer.id.as_str(), [0, 0]))
        .collect();
    if counts.is_empty() {
        return;
    }
    for click in clicks.iter().filter(|c| !c.is_test) {
        if let Some(count) = counts.get_mut(click.offer_id.as_str()) {
            count[0] += 1;
        }
    }
    for outcome in outcomes {
        if let Outcome::Attributed(conversion) = outcome {
            // A postback the network sent now, not one recovered by reprocess or upload.
            if conversion.is_test || conversion.origin != Origin::Postback {
                continue;
            }
            if let Some(count) = counts.get_mut(conversion.offer_id.as_str()) {
                count[1] += 1;
            }
        }
    }
    for (offer, [clicks, conversions]) in counts {
        metrics
            .offer_clicks
            .with_label_values(&[offer])
            .inc_by(clicks);
        metrics
            .offer_conversions
            .with_label_values(&[offer])
            .inc_by(conversions);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use clickmatch_config::Config;
    use clickmatch_core::records::Conversion;

    use super::*;

    #[test]
    fn recovered_records_are_counted_apart_from_live_postbacks() {
        let registry = Registry::new();
        let metrics = JoinerMetrics::new(&registry).unwrap();
        let config = Config::demo(&BTreeMap::new()).unwrap();
        let account = config.account;
        let live = Outcome::Attributed(Conversion {
            click_id_repaired: true,
            repair: "click_id_other_param".into(),
            ..Conversion::example()
        });
        let reprocessed = Outcome::Attributed(Conversion {
            origin: Origin::Reprocess,
            click_id_repaired: true,
            ..Conversion::example()
        });
        count_outcomes(&metrics, &account, &[live, reprocessed], 0);
        let attributed = |route| {
            metrics
                .postbacks
                .with_label_values(&[route, "attributed", ""])
                .get()
        };
        assert_eq!(attributed("global"), 1);
        assert_eq!(
            metrics
                .recovered
                .with_label_values(&["reprocess", "attributed", ""])
                .get(),
            1
        );
        assert_eq!(metrics.attribution_latency.get_sample_count(), 1);
        assert_eq!(
            metrics
                .repairs
                .with_label_values(&["global", "click_id_other_param"])
                .get(),
            1
        );
    }
}
