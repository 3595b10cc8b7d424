//! The stream joiner: a consumer group over the clicks and postbacks topics (range assignor, so
//! partition N of both lands here together), the pure join of `clickmatch-core` per partition
//! over disk-backed state, batches to ClickHouse, and offsets that only move after ClickHouse
//! acknowledged the rows they produced:
//!
//! 1. rows of a batch are written to ClickHouse (retried with backoff) and its conversions
//!    published outbound;
//! 2. the state those rows came from is committed to disk with the offsets it reflects;
//! 3. Kafka offsets are committed (for another member that would have to rebuild).
//!
//! A crash between any two steps replays records whose rows are rebuilt identically
//! (deterministic conversion IDs and versions on `ReplacingMergeTree`).
//!
//! Step 1 of batch N runs in its own task while batch N+1 is joined (the store seals each
//! batch's writes, so N's state commits alone). When N+1 is due before N is acknowledged, N+1
//! keeps growing up to [`BATCH_GROWTH`] × `batch_max_rows`: under backlog, inserts get bigger
//! and fewer, which is what ClickHouse is fast at. Only then does the joiner wait (and, while
//! ClickHouse fails, pause its partitions so that nothing piles up in memory).
//!
//! The modules follow the loop's roles: [`source`] and [`kafka`] (records and rebalances as
//! events), `run` (the loop), `rebalance` (assign and revoke), `partition` (one partition's
//! positions), `batch` and `write` (the batch in flight), `commit` (Kafka commits and their
//! answers), [`sink`] (ClickHouse) and [`metrics`].

mod batch;
mod commit;
pub mod kafka;
pub mod metrics;
mod partition;
mod rebalance;
mod run;
pub mod sink;
pub mod source;
mod write;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;

use clickmatch_clickhouse::ClickHouseSink;
use clickmatch_config::{JoinerConfig, KafkaConfig};
use clickmatch_core::join::StoreError;
use clickmatch_core::model::Account;
use clickmatch_kafka::Publisher;
use clickmatch_store::StateDb;
use rdkafka::error::KafkaError;
use tokio::sync::mpsc;

pub use metrics::JoinerMetrics;
pub use sink::Sink;
pub use source::{Event, Source};

/// Errors that stop the joiner.
#[derive(Debug, thiserror::Error)]
pub enum JoinerError {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("outbound producer: {0}")]
    Outbound(String),
    #[error("the joiner needs tokio's multi-threaded runtime (it blocks in place for disk I/O)")]
    Runtime,
    #[error("the Kafka consumer stopped delivering records")]
    SourceStopped,
}

/// Records joined in one go (the blocking section and the clock read are per chunk, not per
/// record), and handed from the polling thread to the loop together.
pub(crate) const CHUNK: usize = 1024;
/// How far a batch may grow past `batch_max_rows` while the previous one is being written.
pub const BATCH_GROWTH: usize = 2;

pub struct Joiner<K: Sink = ClickHouseSink> {
    account: Arc<arc_swap::ArcSwap<Account>>,
    kafka: KafkaConfig,
    config: JoinerConfig,
    sink: K,
    metrics: JoinerMetrics,
    /// Producer for `kafka.outbound_topic`, when `joiner.publish_outbound` is on.
    outbound: Option<Publisher>,
}

impl<K: Sink> Joiner<K> {
    pub fn new(
        account: Arc<arc_swap::ArcSwap<Account>>,
        kafka: KafkaConfig,
        config: JoinerConfig,
        sink: K,
        metrics: JoinerMetrics,
    ) -> Result<Self, JoinerError> {
        let outbound = if config.publish_outbound {
            let publisher = Publisher::new(&kafka.bootstrap_servers, &kafka.properties)
                .map_err(|e| JoinerError::Outbound(e.to_string()))?;
            Some(publisher)
        } else {
            None
        };
        Ok(Joiner {
            account,
            kafka,
            config,
            sink,
            metrics,
            outbound,
        })
    }

    /// Runs until `shutdown` resolves; the last batch is written and committed before returning.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), JoinerError> {
        if tokio::runtime::Handle::current().runtime_flavor()
            != tokio::runtime::RuntimeFlavor::MultiThread
        {
            return Err(JoinerError::Runtime);
        }
        let (source, events) = kafka::KafkaSource::start(&self.kafka)?;
        let source = Arc::new(source);
        let (result, events) = self.run_on(source.clone(), events, shutdown).await;
        // Leaving the group serves librdkafka's queue until it is closed: off the runtime.
        tokio::task::spawn_blocking(move || {
            source.close(events);
            drop(source);
        })
        .await
        .expect("closing the consumer");
        result
    }

    /// The loop over any source of events; gives the channel back for the source to close.
    pub(crate) async fn run_on<S: Source>(
        self,
        source: Arc<S>,
        events: mpsc::Receiver<Event>,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> (Result<(), JoinerError>, mpsc::Receiver<Event>) {
        let state_dir = PathBuf::from(&self.config.state_dir);
        let cache = self.config.state_cache_mib;
        let state = match tokio::task::spawn_blocking(move || StateDb::open(&state_dir, cache))
            .await
            .expect("state open task")
        {
            Ok(state) => state,
            Err(error) => return (Err(error.into()), events),
        };
        let mut run = run::Run::new(Arc::new(self), source, events, state);
        let result = run.main_loop(shutdown).await;
        (result, run.into_events())
    }
}
