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

mod context;
pub mod metrics;
mod partition;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clickmatch_clickhouse::{ClickHouseError, ClickHouseSink};
use clickmatch_config::{JoinerConfig, KafkaConfig};
use clickmatch_core::backoff::Backoff;
use clickmatch_core::clock::now_ms;
use clickmatch_core::join::{JoinStore, PartitionJoin, Positioned, StoreError};
use clickmatch_core::model::Account;
use clickmatch_core::records::{ClickRecord, Conversion, OutboundRecord, Outcome, PostbackRecord};
use clickmatch_kafka::consumer::consumer_config;
use clickmatch_kafka::offsets::CommitPositions;
use clickmatch_kafka::Publisher;
use clickmatch_store::StateDb;
use futures::FutureExt;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::TopicPartitionList;
use tokio::task::JoinHandle;

pub use context::{JoinContext, RebalanceEvent};
pub use metrics::JoinerMetrics;
use partition::{PartitionState, Restore};

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
}

/// How often lag is measured and idle partitions' watermarks advanced.
const TICK: Duration = Duration::from_millis(250);
/// Records taken from the consumer's queue per wake-up and joined in one go (the blocking
/// section and the clock read are per chunk, not per record).
const CHUNK: usize = 1024;
/// How far a batch may grow past `batch_max_rows` while the previous one is being written.
pub const BATCH_GROWTH: usize = 2;

type JoinConsumer = StreamConsumer<JoinContext>;

/// Rows waiting to be written.
#[derive(Default)]
pub(crate) struct Batch {
    clicks: Vec<ClickRecord>,
    outcomes: Vec<Outcome>,
    opened: Option<Instant>,
}

impl Batch {
    fn len(&self) -> usize {
        self.clicks.len() + self.outcomes.len()
    }

    fn touch(&mut self) {
        self.opened.get_or_insert_with(Instant::now);
    }

    /// An empty batch keeping this one's capacity: batches of tens of thousands of records
    /// would otherwise regrow (copies, fresh pages) every time.
    fn recycled(mut self) -> Batch {
        self.clicks.clear();
        self.outcomes.clear();
        self.opened = None;
        self
    }
}

pub struct Joiner {
    account: Arc<arc_swap::ArcSwap<Account>>,
    kafka: KafkaConfig,
    config: JoinerConfig,
    sink: ClickHouseSink,
    metrics: JoinerMetrics,
    /// Producer for `kafka.outbound_topic`, when `joiner.publish_outbound` is on.
    outbound: Option<Publisher>,
}

impl Joiner {
    pub fn new(
        account: Arc<arc_swap::ArcSwap<Account>>,
        kafka: KafkaConfig,
        config: JoinerConfig,
        sink: ClickHouseSink,
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
        let joiner = Arc::new(self);
        if tokio::runtime::Handle::current().runtime_flavor()
            != tokio::runtime::RuntimeFlavor::MultiThread
        {
            return Err(JoinerError::Runtime);
        }
        let state_dir = PathBuf::from(&joiner.config.state_dir);
        let cache = joiner.config.state_cache_mib;
        let state = tokio::task::spawn_blocking(move || StateDb::open(&state_dir, cache))
            .await
            .expect("state open task")?;
        let consumer: Arc<JoinConsumer> = Arc::new(
            consumer_config(
                &joiner.kafka.bootstrap_servers,
                &joiner.kafka.group_id,
                &joiner.kafka.properties,
            )
            .create_with_context(JoinContext::new(&joiner.kafka.clicks_topic, state.clone()))?,
        );
        consumer.subscribe(&[&joiner.kafka.clicks_topic, &joiner.kafka.postbacks_topic])?;
        let mut run = Run {
            joiner,
            consumer: consumer.clone(),
            state,
            partitions: BTreeMap::new(),
            batch: Batch::default(),
            sealed: 0,
            in_flight: None,
            spare: None,
            committed: CommitPositions::default(),
            to_commit: CommitPositions::default(),
            deferred: Vec::new(),
        };
        let result = run.main_loop(shutdown).await;
        drop(run);
        // Leave the group promptly so partitions move to another member without waiting for
        // the session timeout.
        consumer.unsubscribe();
        result
    }
}

/// A sealed batch being written by its own task, and the offsets its state reaches.
struct InFlight {
    number: u64,
    positions: CommitPositions,
    task: JoinHandle<Batch>,
    /// Set by the task when ClickHouse refused the batch (it retries until acknowledged).
    failing: Arc<AtomicBool>,
}

struct Run {
    joiner: Arc<Joiner>,
    consumer: Arc<JoinConsumer>,
    state: StateDb,
    partitions: BTreeMap<i32, PartitionState>,
    batch: Batch,
    /// Batches sealed so far (the number of the newest).
    sealed: u64,
    in_flight: Option<InFlight>,
    /// The last batch written, emptied, to be filled again.
    spare: Option<Batch>,
    /// What was last sent to Kafka, to skip commits that would change nothing. (An asynchronous
    /// commit's `Ok` only means it was queued: counting the broker's real answers is open work.)
    committed: CommitPositions,
    /// The positions of the last batch acknowledged by ClickHouse: what Kafka should hold.
    to_commit: CommitPositions,
    /// Records received while waiting for a batch, processed after it.
    deferred: Vec<OwnedMessage>,
}

impl Run {
    async fn main_loop(
        &mut self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), JoinerError> {
        tokio::pin!(shutdown);
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let consumer = self.consumer.clone();
        loop {
            self.process_deferred().await?;
            // While a batch is in flight, the next one is sent when it is acknowledged.
            let flush_at = self.flush_deadline().filter(|_| self.in_flight.is_none());
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep_until(flush_at.unwrap_or_else(far_future)), if flush_at.is_some() => {}
                written = in_flight_task(&mut self.in_flight) => {
                    let written = propagate_panic(written);
                    let in_flight = self.in_flight.take().expect("polled");
                    self.complete(in_flight, written)?;
                }
                message = consumer.recv() => {
                    let mut messages = Vec::with_capacity(CHUNK);
                    let mut next = Some(message);
                    while let Some(message) = next.take() {
                        match message {
                            Ok(message) => messages.push(message),
                            Err(error) => tracing::warn!(error = %error, "consumer error"),
                        }
                        if messages.len() < CHUNK {
                            next = consumer.recv().now_or_never();
                        }
                    }
                    // Partitions assigned while the chunk was taken get their state first.
                    self.apply_rebalance_events().await?;
                    self.on_messages(&messages)?;
                }
                _ = tick.tick() => {
                    self.apply_rebalance_events().await?;
                    tokio::task::block_in_place(|| self.on_tick())?;
                    // A commit that could not even be queued is tried again.
                    self.commit_kafka();
                }
            }
            if self.batch_due() {
                self.send_batch().await?;
            }
        }
        self.flush().await
    }

    async fn apply_rebalance_events(&mut self) -> Result<(), JoinerError> {
        let events = self.consumer.context().take_events();
        if events.is_empty() {
            return Ok(());
        }
        if events
            .iter()
            .any(|e| matches!(e, RebalanceEvent::Revoked { .. }))
        {
            // Finish what the revoked partitions produced, so their state can be kept.
            self.flush().await?;
        }
        tokio::task::block_in_place(|| {
            for event in events {
                self.apply_rebalance_event(event)?;
            }
            Ok::<_, JoinerError>(())
        })?;
        self.pause_restoring_postbacks();
        Ok(())
    }

    fn apply_rebalance_event(&mut self, event: RebalanceEvent) -> Result<(), JoinerError> {
        let joiner = &*self.joiner;
        match event {
            RebalanceEvent::Assigned {
                topic,
                partition,
                committed,
                checkpoint,
            } => {
                tracing::info!(
                    topic,
                    partition,
                    ?committed,
                    ?checkpoint,
                    "partition assigned"
                );
                joiner
                    .metrics
                    .assigned_partitions
                    .with_label_values(&[&topic])
                    .inc();
                if !self.partitions.contains_key(&partition) {
                    let state = match checkpoint {
                        Some(checkpoint) => {
                            let store = self.state.partition(partition)?;
                            let join = PartitionJoin::restore(
                                &joiner.account.load(),
                                store,
                                checkpoint.watermark_ms,
                            )?;
                            PartitionState::from_checkpoint(join, &checkpoint)
                        }
                        None => {
                            self.state.clear_partition(partition)?;
                            let store = self.state.partition(partition)?;
                            PartitionState::rebuilding(PartitionJoin::new(store))
                        }
                    };
                    self.partitions.insert(partition, state);
                }
                let state = self.partitions.get_mut(&partition).expect("inserted");
                state.topics_assigned += 1;
                state.set_committed(topic == joiner.kafka.clicks_topic, committed);
            }
            RebalanceEvent::Revoked { topic, partition } => {
                tracing::info!(topic, partition, "partition revoked");
                joiner
                    .metrics
                    .assigned_partitions
                    .with_label_values(&[&topic])
                    .dec();
                self.committed.remove_partition(&topic, partition);
                self.to_commit.remove_partition(&topic, partition);
                let Some(state) = self.partitions.get_mut(&partition) else {
                    return Ok(());
                };
                state.topics_assigned = state.topics_assigned.saturating_sub(1);
                if state.topics_assigned == 0 {
                    // Flushed before the events were applied: state and checkpoint are durable.
                    self.partitions.remove(&partition);
                    let label = partition.to_string();
                    for gauge in [
                        &joiner.metrics.state_clicks,
                        &joiner.metrics.pending_postbacks,
                    ] {
                        let _ = gauge.remove_label_values(&[&label]);
                    }
                    let _ = joiner
                        .metrics
                        .restore_progress
                        .remove_label_values(&[&label]);
                }
            }
        }
        Ok(())
    }

    /// Postbacks of a rebuilding partition wait until its clicks are restored.
    fn pause_restoring_postbacks(&mut self) {
        let topic = &self.joiner.kafka.postbacks_topic;
        let mut list = TopicPartitionList::new();
        for (&partition, state) in &self.partitions {
            if matches!(state.restore, Restore::Rebuilding { .. }) && !state.restore_reached() {
                list.add_partition(topic, partition);
            }
        }
        if list.count() > 0 {
            if let Err(e) = self.consumer.pause(&list) {
                tracing::warn!(error = %e, "cannot pause postbacks during restore");
            }
        }
    }

    fn finish_restore(&mut self, partition: i32) {
        let Some(state) = self.partitions.get_mut(&partition) else {
            return;
        };
        if !matches!(state.restore, Restore::Rebuilding { .. }) || !state.restore_reached() {
            return;
        }
        state.restore = Restore::Done;
        tracing::info!(
            partition,
            clicks = state.join.store().clicks_len(),
            "partition restored"
        );
        let mut list = TopicPartitionList::new();
        list.add_partition(&self.joiner.kafka.postbacks_topic, partition);
        if let Err(e) = self.consumer.resume(&list) {
            tracing::warn!(error = %e, "cannot resume postbacks after restore");
        }
    }

    /// Joins a chunk of records in one blocking section, with one clock read and one load of
    /// the account for all of them.
    fn on_messages(&mut self, messages: &[impl Message]) -> Result<(), JoinerError> {
        let now = now_ms();
        let account = self.joiner.account.load_full();
        tokio::task::block_in_place(|| {
            messages
                .iter()
                .try_for_each(|message| self.on_message(message, &account, now))
        })
    }

    fn on_message(
        &mut self,
        message: &impl Message,
        account: &Account,
        now: u64,
    ) -> Result<(), JoinerError> {
        let joiner = &*self.joiner;
        let (topic, partition, offset) = (message.topic(), message.partition(), message.offset());
        let payload = message.payload().unwrap_or_default();
        let Some(state) = self.partitions.get_mut(&partition) else {
            // Not ours (a message fetched just before a revoke).
            return Ok(());
        };
        if topic == joiner.kafka.clicks_topic {
            if offset < state.clicks_next {
                return Ok(());
            }
            state.clicks_next = offset + 1;
            match ClickRecord::decode(payload) {
                Ok(click) => {
                    let released = state.join.on_click(account, &click)?;
                    if state.emits_click(offset) {
                        self.batch.clicks.push(click);
                        self.batch.touch();
                    }
                    emit(&mut self.batch, state, released);
                }
                Err(error) => skip(joiner, topic, partition, offset, &error),
            }
            if matches!(state.restore, Restore::Rebuilding { .. }) && state.restore_reached() {
                self.finish_restore(partition);
            }
        } else if topic == joiner.kafka.postbacks_topic {
            if offset < state.postbacks_next {
                return Ok(());
            }
            state.postbacks_next = offset + 1;
            match PostbackRecord::decode(payload) {
                Ok(record) => {
                    if let Some(outcome) = state.join.on_postback(account, record, offset, now)? {
                        emit(&mut self.batch, state, [(offset, outcome)]);
                    }
                }
                Err(error) => skip(joiner, topic, partition, offset, &error),
            }
        }
        Ok(())
    }

    fn on_tick(&mut self) -> Result<(), JoinerError> {
        self.refresh_lag_metrics();
        let now = now_ms();
        let joiner = self.joiner.clone();
        let mut restored = Vec::new();
        for (&partition, state) in self.partitions.iter_mut() {
            let label = partition.to_string();
            let ctx = self.consumer.context();
            if let Some(high) = ctx.high_watermark(&joiner.kafka.clicks_topic, partition) {
                state.clicks_caught_up = state.clicks_next >= high;
                // An empty or fully read partition completes a rebuild too.
                if state.clicks_caught_up && !state.restore_reached() {
                    state.restore = Restore::Rebuilding {
                        clicks_target: state.clicks_next,
                    };
                    restored.push(partition);
                }
            }
            joiner
                .metrics
                .restore_progress
                .with_label_values(&[&label])
                .set(state.restore_progress());
            // Once every click up to now has been read, a postback that waited its grace
            // will not see its click come.
            if state.restore_reached() {
                let released =
                    state
                        .join
                        .advance(&joiner.account.load(), state.clicks_caught_up, now)?;
                emit(&mut self.batch, state, released);
            }
            joiner
                .metrics
                .state_clicks
                .with_label_values(&[&label])
                .set(state.join.store().clicks_len() as i64);
            joiner
                .metrics
                .pending_postbacks
                .with_label_values(&[&label])
                .set(state.join.pending_len() as i64);
        }
        for partition in restored {
            self.finish_restore(partition);
        }
        joiner
            .metrics
            .state_disk_bytes
            .set(self.state.disk_bytes() as i64);
        Ok(())
    }

    /// When the open batch must be written, if one is open.
    fn flush_deadline(&self) -> Option<tokio::time::Instant> {
        let max_age = Duration::from_millis(self.joiner.config.batch_max_ms);
        self.batch
            .opened
            .map(|opened| tokio::time::Instant::from_std(opened + max_age))
    }

    fn batch_due(&self) -> bool {
        let config = &self.joiner.config;
        self.batch.len() >= config.batch_max_rows
            || self
                .batch
                .opened
                .is_some_and(|t| t.elapsed() >= Duration::from_millis(config.batch_max_ms))
    }

    /// Sends the open batch unless the one in flight is still being written and the open one
    /// may still grow; waits for the one in flight first.
    async fn send_batch(&mut self) -> Result<(), JoinerError> {
        if let Some(in_flight) = &self.in_flight {
            let cap = self
                .joiner
                .config
                .batch_max_rows
                .saturating_mul(BATCH_GROWTH);
            if !in_flight.task.is_finished() && self.batch.len() < cap {
                return Ok(());
            }
            self.finish_in_flight().await?;
        }
        self.seal_and_send();
        Ok(())
    }

    /// Writes everything joined so far and commits it (before a revoke, at shutdown).
    async fn flush(&mut self) -> Result<(), JoinerError> {
        self.finish_in_flight().await?;
        self.seal_and_send();
        self.finish_in_flight().await
    }

    /// Seals every partition's writes as the next batch, with the checkpoint and Kafka
    /// positions they reach, and starts writing its rows.
    fn seal_and_send(&mut self) {
        debug_assert!(self.in_flight.is_none(), "one batch in flight at a time");
        self.sealed += 1;
        let number = self.sealed;
        let kafka = &self.joiner.kafka;
        let mut positions = CommitPositions::default();
        for (&partition, state) in self.partitions.iter_mut() {
            let checkpoint = state.checkpoint();
            state.join.store_mut().seal(number, checkpoint);
            let (clicks, postbacks) = state.kafka_positions();
            if clicks > 0 {
                positions.set(&kafka.clicks_topic, partition, clicks);
            }
            if postbacks > 0 {
                positions.set(&kafka.postbacks_topic, partition, postbacks);
            }
        }
        let failing = Arc::new(AtomicBool::new(false));
        let next = self.spare.take().map(Batch::recycled).unwrap_or_default();
        let batch = std::mem::replace(&mut self.batch, next);
        let task = tokio::spawn(write_batch(self.joiner.clone(), batch, failing.clone()));
        self.in_flight = Some(InFlight {
            number,
            positions,
            task,
            failing,
        });
    }

    /// Waits for the batch in flight, if any, and commits it.
    async fn finish_in_flight(&mut self) -> Result<(), JoinerError> {
        let Some(mut in_flight) = self.in_flight.take() else {
            return Ok(());
        };
        let written = self.wait_polling(&mut in_flight).await;
        self.complete(in_flight, written)
    }

    /// After ClickHouse acknowledged a batch: its state becomes durable, then its offsets are
    /// committed to Kafka.
    fn complete(&mut self, in_flight: InFlight, written: Batch) -> Result<(), JoinerError> {
        self.spare = Some(written);
        let state = self.state.clone();
        let partitions = &mut self.partitions;
        tokio::task::block_in_place(|| {
            let mut stores: Vec<_> = partitions
                .values_mut()
                .map(|p| p.join.store_mut())
                .collect();
            state.commit_sealed(&mut stores, in_flight.number)
        })?;
        self.to_commit = in_flight.positions;
        self.commit_kafka();
        Ok(())
    }

    /// Waits for the batch in flight while still polling the consumer, so that the group keeps
    /// this member (heartbeats, rebalance callbacks) and statistics keep coming. Records that
    /// arrive are kept, unprocessed, for after it: the open batch is full. While ClickHouse
    /// fails, or once [`deferred_cap`] records wait (a slow but successful insert), partitions
    /// are paused so that only records fetched before the pause arrive.
    async fn wait_polling(&mut self, in_flight: &mut InFlight) -> Batch {
        let consumer = self.consumer.clone();
        let mut paused: Option<TopicPartitionList> = None;
        let mut check = tokio::time::interval(TICK);
        let written = loop {
            tokio::select! {
                written = &mut in_flight.task => break propagate_panic(written),
                message = consumer.recv() => {
                    match message {
                        Ok(message) => self.deferred.push(message.detach()),
                        Err(error) => tracing::warn!(error = %error, "consumer error"),
                    }
                    if paused.is_none() && self.deferred.len() >= deferred_cap(&self.joiner.config) {
                        paused = self.pause_assignment();
                    }
                }
                _ = check.tick() => {
                    self.refresh_lag_metrics();
                    if paused.is_none() && in_flight.failing.load(Ordering::Relaxed) {
                        paused = self.pause_assignment();
                    }
                }
            }
        };
        if let Some(list) = paused {
            if let Err(e) = self.consumer.resume(&list) {
                tracing::warn!(error = %e, "cannot resume partitions after ClickHouse recovered");
            }
            self.pause_restoring_postbacks();
        }
        written
    }

    /// Pauses every assigned partition; the list to resume, when it worked.
    fn pause_assignment(&self) -> Option<TopicPartitionList> {
        let assignment = self.consumer.assignment().ok()?;
        self.consumer.pause(&assignment).ok()?;
        Some(assignment)
    }

    /// Consumer lag from the latest statistics, without touching the join.
    fn refresh_lag_metrics(&self) {
        let joiner = &*self.joiner;
        let ctx = self.consumer.context();
        for (&partition, state) in &self.partitions {
            let label = partition.to_string();
            for (topic, next) in [
                (&joiner.kafka.clicks_topic, state.clicks_next),
                (&joiner.kafka.postbacks_topic, state.postbacks_next),
            ] {
                if let Some(high) = ctx.high_watermark(topic, partition) {
                    let lag = (high - next).max(0);
                    joiner
                        .metrics
                        .consumer_lag
                        .with_label_values(&[topic.as_str(), &label])
                        .set(lag);
                }
            }
        }
    }

    /// Records received while a batch was being retried, in the order they came.
    async fn process_deferred(&mut self) -> Result<(), JoinerError> {
        while !self.deferred.is_empty() {
            // Their partitions may have been assigned meanwhile.
            self.apply_rebalance_events().await?;
            let deferred = std::mem::take(&mut self.deferred);
            self.on_messages(&deferred)?;
            if self.batch_due() {
                self.send_batch().await?;
            }
        }
        Ok(())
    }

    /// Commits the positions of the last acknowledged batch, asynchronously (the loop never
    /// waits on a broker that may be down), unless they were sent already.
    fn commit_kafka(&mut self) {
        if self.to_commit.is_empty() || self.to_commit == self.committed {
            return;
        }
        match self
            .consumer
            .commit(&self.to_commit.to_list(), CommitMode::Async)
        {
            Ok(()) => {
                self.joiner.metrics.commits.with_label_values(&["ok"]).inc();
                self.committed = self.to_commit.clone();
            }
            Err(error) => {
                self.joiner
                    .metrics
                    .commits
                    .with_label_values(&["error"])
                    .inc();
                tracing::warn!(error = %error, "offset commit failed; will retry");
            }
        }
    }
}

/// How many records may wait, unprocessed, for the batch in flight before the partitions are
/// paused: what one more batch would take, so memory stays bounded however slow an insert.
fn deferred_cap(config: &JoinerConfig) -> usize {
    config
        .batch_max_rows
        .saturating_mul(BATCH_GROWTH)
        .max(CHUNK)
}

/// Resolves when the batch in flight has been written; never when there is none.
async fn in_flight_task(in_flight: &mut Option<InFlight>) -> Result<Batch, tokio::task::JoinError> {
    match in_flight {
        Some(in_flight) => (&mut in_flight.task).await,
        None => std::future::pending().await,
    }
}

fn propagate_panic(written: Result<Batch, tokio::task::JoinError>) -> Batch {
    match written {
        Ok(batch) => batch,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(error) => panic!("batch writer cancelled: {error}"),
    }
}

/// The in-flight task: writes the batch until ClickHouse acknowledges it, counts its rows,
/// then publishes its conversions outbound.
async fn write_batch(joiner: Arc<Joiner>, batch: Batch, failing: Arc<AtomicBool>) -> Batch {
    if batch.len() == 0 {
        return batch;
    }
    let started = Instant::now();
    write_until_acknowledged(&joiner, &batch, &failing).await;
    let metrics = &joiner.metrics;
    metrics
        .insert_duration
        .observe(started.elapsed().as_secs_f64());
    // Counted when ClickHouse has the rows (the latency histogram measures exactly that).
    metrics.batch_rows.observe(batch.len() as f64);
    metrics.clicks.inc_by(batch.clicks.len() as u64);
    count_outcomes(&joiner, &batch.outcomes, now_ms());
    publish_outbound(&joiner, &batch.outcomes).await;
    batch
}

/// Retries with backoff until ClickHouse acknowledges the batch; `failing` tells the joiner to
/// pause its partitions meanwhile.
async fn write_until_acknowledged(joiner: &Joiner, batch: &Batch, failing: &AtomicBool) {
    let mut backoff = retry_backoff(joiner);
    while let Err(error) = joiner.sink.write(&batch.clicks, &batch.outcomes).await {
        failing.store(true, Ordering::Relaxed);
        let delay = backoff.step();
        record_insert_error(joiner, &error, delay);
        tokio::time::sleep(delay).await;
    }
}

/// The configured retry delays of ClickHouse writes and outbound publishes.
fn retry_backoff(joiner: &Joiner) -> Backoff {
    Backoff::new(
        Duration::from_millis(joiner.config.retry_initial_ms),
        Duration::from_millis(joiner.config.retry_max_ms),
    )
}

/// Publishes the batch's conversions for traffic-source postbacks, after ClickHouse has
/// them and before the state moves on, retrying until the broker acknowledges: at least
/// once (a replay publishes again; the dispatcher deduplicates by idempotency key).
async fn publish_outbound(joiner: &Joiner, outcomes: &[Outcome]) {
    let Some(publisher) = &joiner.outbound else {
        return;
    };
    let topic = &joiner.kafka.outbound_topic;
    let conversions: Vec<&Conversion> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Attributed(c) => Some(c),
            Outcome::Unattributed(_) => None,
        })
        .collect();
    // All records of the batch in flight at once (the producer batches them); the ones the
    // broker did not acknowledge are sent again after a backoff.
    let mut unsent = conversions;
    let mut backoff = retry_backoff(joiner);
    while !unsent.is_empty() {
        let mut in_flight = Vec::with_capacity(unsent.len());
        let mut failed = Vec::new();
        for conversion in unsent {
            let record = OutboundRecord::encode_conversion(conversion);
            match publisher.enqueue(topic, &conversion.click_id, &record) {
                Ok(delivery) => in_flight.push((conversion, delivery)),
                Err(_) => failed.push(conversion),
            }
        }
        for (conversion, delivery) in in_flight {
            if delivery.await.is_err() {
                failed.push(conversion);
            }
        }
        if !failed.is_empty() {
            let delay = backoff.step();
            joiner.metrics.outbound_errors.inc_by(failed.len() as u64);
            tracing::error!(
                records = failed.len(),
                retry_in_ms = delay.as_millis() as u64,
                "outbound conversions not published"
            );
            tokio::time::sleep(delay).await;
        }
        unsent = failed;
    }
}

/// Adds released outcomes to the batch, except those a rebuild replays from before the group's
/// committed offset (their rows were written by whoever processed them first).
fn emit(batch: &mut Batch, state: &PartitionState, outcomes: impl IntoIterator<Item = Positioned>) {
    let before = batch.outcomes.len();
    batch.outcomes.extend(
        outcomes
            .into_iter()
            .filter(|(p, _)| state.emits_postback(*p))
            .map(|(_, o)| o),
    );
    if batch.outcomes.len() > before {
        batch.touch();
    }
}

fn skip(joiner: &Joiner, topic: &str, partition: i32, offset: i64, error: &dyn std::fmt::Display) {
    joiner
        .metrics
        .records_skipped
        .with_label_values(&[topic])
        .inc();
    tracing::warn!(topic, partition, offset, error = %error, "unreadable record skipped");
}

fn record_insert_error(joiner: &Joiner, error: &ClickHouseError, backoff: Duration) {
    let kind = if error.is_retryable() {
        "retryable"
    } else {
        "permanent"
    };
    joiner
        .metrics
        .insert_errors
        .with_label_values(&[kind])
        .inc();
    // Nothing is dropped: even a permanent error (schema drift) is retried until an operator
    // fixes it, and the alert on insert errors tells them to.
    tracing::error!(error = %error, kind, retry_in_ms = backoff.as_millis() as u64, "ClickHouse batch failed");
}

/// Counts a batch's outcomes: one update per distinct label set, not a label lookup per row.
fn count_outcomes(joiner: &Joiner, outcomes: &[Outcome], now: u64) {
    let account = joiner.account.load();
    let mut postbacks: BTreeMap<[&str; 3], u64> = BTreeMap::new();
    let mut repairs: BTreeMap<[&str; 2], u64> = BTreeMap::new();
    let mut payout_issues: BTreeMap<[&str; 2], u64> = BTreeMap::new();
    for outcome in outcomes {
        let (route, kind, reason) = match outcome {
            Outcome::Attributed(c) => (c.route.as_str(), "attributed", ""),
            Outcome::Unattributed(u) => (u.route.as_str(), "unattributed", u.reason.as_str()),
        };
        let route = account
            .route_label(route)
            .unwrap_or(clickmatch_core::model::UNKNOWN_ROUTE_LABEL);
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
        joiner.metrics.attribution_latency.observe(latency);
    }
    for (labels, count) in postbacks {
        joiner
            .metrics
            .postbacks
            .with_label_values(&labels)
            .inc_by(count);
    }
    for (labels, count) in repairs {
        joiner
            .metrics
            .repairs
            .with_label_values(&labels)
            .inc_by(count);
    }
    for (labels, count) in payout_issues {
        joiner
            .metrics
            .payout_issues
            .with_label_values(&labels)
            .inc_by(count);
    }
}

fn far_future() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(3600)
}
