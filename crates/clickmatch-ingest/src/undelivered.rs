//! Clicks the broker did not take. The visitor's redirect never waits for the broker: the
//! producer reports each click's outcome to [`ClickDeliveries`] on its own polling thread
//! (a counter for a delivered click), and hands failed clicks over a channel to
//! [`spool_undelivered`], which writes them to the spool (see [`crate::spool`]).

use std::sync::Arc;

use clickmatch_kafka::{ForgottenDeliveries, Undelivered};
use prometheus::{IntCounter, IntGauge};
use tokio::sync::mpsc;

use crate::metrics::IngestMetrics;
use crate::spool::{Spool, SpoolError, SpoolRecord};

/// The producer's handler of fire-and-forget clicks.
pub struct ClickDeliveries {
    produced: IntCounter,
    inflight: IntGauge,
    undelivered: mpsc::UnboundedSender<Undelivered>,
}

/// Clicks the producer gave up on, for [`spool_undelivered`].
pub struct UndeliveredClicks(mpsc::UnboundedReceiver<Undelivered>);

impl ClickDeliveries {
    /// The handler to give the publisher (`Publisher::with_forgotten_deliveries`), and the
    /// clicks it reports failed. The channel closes when the publisher is dropped.
    pub fn new(metrics: &IngestMetrics) -> (Arc<ClickDeliveries>, UndeliveredClicks) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let deliveries = ClickDeliveries {
            produced: metrics.clicks.with_label_values(&["produced"]),
            inflight: metrics.inflight_clicks.clone(),
            undelivered: sender,
        };
        (Arc::new(deliveries), UndeliveredClicks(receiver))
    }
}

impl ForgottenDeliveries for ClickDeliveries {
    fn delivered(&self) {
        self.inflight.dec();
        self.produced.inc();
    }

    fn undelivered(&self, record: Undelivered) {
        self.inflight.dec();
        if let Err(mpsc::error::SendError(record)) = self.undelivered.send(record) {
            // Only after ingest stopped spooling, i.e. never while it serves.
            tracing::error!(key = record.key, error = %record.error, "click lost: not delivered and no spool running");
        }
    }
}

/// Spools the clicks the producer gave up on, until the publisher is dropped. Without a spool
/// they are counted and logged as lost.
pub async fn spool_undelivered(
    mut clicks: UndeliveredClicks,
    spool: Option<Arc<Spool>>,
    metrics: IngestMetrics,
) {
    while let Some(click) = clicks.0.recv().await {
        metrics
            .produce_errors
            .with_label_values(&[click.topic.as_str()])
            .inc();
        match &spool {
            Some(spool) => spool_click(spool, &metrics, click).await,
            None => click_lost(&metrics, &click.error.to_string()),
        }
    }
}

/// Writes one click to the spool; a click the spool refuses too is counted and logged as lost.
async fn spool_click(spool: &Arc<Spool>, metrics: &IngestMetrics, click: Undelivered) {
    let error = click.error.to_string();
    let record = SpoolRecord {
        topic: click.topic,
        key: click.key,
        value: String::from_utf8_lossy(&click.payload).into_owned(),
    };
    let was_empty = spool.depth() == 0;
    let writer = spool.clone();
    let spooled = tokio::task::spawn_blocking(move || writer.append(&record))
        .await
        .unwrap_or_else(|_| {
            Err(SpoolError::Io {
                path: Default::default(),
                source: std::io::Error::other("spool task failed"),
            })
        });
    match spooled {
        Ok(()) => {
            metrics.clicks.with_label_values(&["spooled"]).inc();
            spool
                .metrics()
                .records
                .with_label_values(&["spooled"])
                .inc();
            if was_empty {
                tracing::warn!(
                    error,
                    "the broker did not take a click; spooling clicks to disk until it is back"
                );
            } else {
                tracing::debug!(error, "click spooled");
            }
        }
        Err(spool_error) => {
            spool
                .metrics()
                .records
                .with_label_values(&["refused"])
                .inc();
            metrics.clicks.with_label_values(&["failed"]).inc();
            tracing::error!(error, spool_error = %spool_error, "click lost: the broker did not take it and the spool refused it");
        }
    }
}

/// A click that was not recorded anywhere.
fn click_lost(metrics: &IngestMetrics, error: &str) {
    metrics.clicks.with_label_values(&["failed"]).inc();
    tracing::error!(error, "click not recorded by the broker");
}
