//! The stream joiner: a consumer group over the clicks and postbacks topics (range assignor, so
//! partition N of both lands here together), the pure join of `clickmatch-core` per partition
//! over disk-backed state, batches to ClickHouse, and offsets that only move after ClickHouse
//! acknowledged the rows they produced:
//!
//! 1. rows of a batch are written to ClickHouse (retried with backoff, partitions paused);
//! 2. the state those rows came from is committed to disk with the offsets it reflects;
//! 3. Kafka offsets are committed (for another member that would have to rebuild).
//!
//! A crash between any two steps replays records whose rows are rebuilt identically
//! (deterministic conversion IDs and versions on `ReplacingMergeTree`).

mod context;
pub mod metrics;
mod partition;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clickmatch_clickhouse::{ClickHouseError, ClickHouseSink};
use clickmatch_config::{JoinerConfig, KafkaConfig};
use clickmatch_core::join::{JoinStore, PartitionJoin, Positioned, StoreError};
use clickmatch_core::records::{ClickRecord, OutboundRecord, Outcome, PostbackRecord};
use clickmatch_kafka::consumer::consumer_config;
use clickmatch_kafka::offsets::CommitPositions;
use clickmatch_kafka::Publisher;
use clickmatch_store::StateDb;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::TopicPartitionList;

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

type JoinConsumer = StreamConsumer<JoinContext>;

/// Rows waiting to be written.
#[derive(Default)]
struct Batch {
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
}

pub struct Joiner {
    account: Arc<arc_swap::ArcSwap<clickmatch_core::model::Account>>,
    kafka: KafkaConfig,
    config: JoinerConfig,
    sink: ClickHouseSink,
    metrics: JoinerMetrics,
    /// Producer for `kafka.outbound_topic`, when `joiner.publish_outbound` is on.
    outbound: Option<Publisher>,
}

impl Joiner {
    pub fn new(
        account: Arc<arc_swap::ArcSwap<clickmatch_core::model::Account>>,
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
        if tokio::runtime::Handle::current().runtime_flavor()
            != tokio::runtime::RuntimeFlavor::MultiThread
        {
            return Err(JoinerError::Runtime);
        }
        let state_dir = PathBuf::from(&self.config.state_dir);
        let cache = self.config.state_cache_mib;
        let state = tokio::task::spawn_blocking(move || StateDb::open(&state_dir, cache))
            .await
            .expect("state open task")?;
        let consumer: Arc<JoinConsumer> = Arc::new(
            consumer_config(
                &self.kafka.bootstrap_servers,
                &self.kafka.group_id,
                &self.kafka.properties,
            )
            .create_with_context(JoinContext::new(&self.kafka.clicks_topic, state.clone()))?,
        );
        consumer.subscribe(&[&self.kafka.clicks_topic, &self.kafka.postbacks_topic])?;
        let mut run = Run {
            joiner: &self,
            consumer: consumer.clone(),
            state,
            partitions: BTreeMap::new(),
            batch: Batch::default(),
            committed: CommitPositions::default(),
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

struct Run<'a> {
    joiner: &'a Joiner,
    consumer: Arc<JoinConsumer>,
    state: StateDb,
    partitions: BTreeMap<i32, PartitionState>,
    batch: Batch,
    /// What was last committed to Kafka, to skip commits that would change nothing.
    committed: CommitPositions,
    /// Records received while a batch was retried, processed after it.
    deferred: Vec<OwnedMessage>,
}

impl Run<'_> {
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
            let flush_at = self.flush_deadline();
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep_until(flush_at.unwrap_or_else(far_future)), if flush_at.is_some() => {}
                message = consumer.recv() => {
                    self.apply_rebalance_events().await?;
                    match message {
                        Ok(message) => {
                            let message = message.detach();
                            tokio::task::block_in_place(|| self.on_message(&message))?;
                        }
                        Err(error) => tracing::warn!(error = %error, "consumer error"),
                    }
                }
                _ = tick.tick() => {
                    self.apply_rebalance_events().await?;
                    tokio::task::block_in_place(|| self.on_tick())?;
                }
            }
            if self.batch_due() {
                self.flush().await?;
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
        let joiner = self.joiner;
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

    fn on_message(&mut self, message: &OwnedMessage) -> Result<(), JoinerError> {
        let joiner = self.joiner;
        let account = &joiner.account.load();
        let (topic, partition, offset) = (message.topic(), message.partition(), message.offset());
        let payload = message.payload().unwrap_or_default();
        let Some(state) = self.partitions.get_mut(&partition) else {
            // Not ours (a message fetched just before a revoke).
            return Ok(());
        };
        let now = now_ms();
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
                        emit(&mut self.batch, state, vec![(offset, outcome)]);
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
        let joiner = self.joiner;
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

    /// Writes the batch (retrying until ClickHouse acknowledges it), makes the state durable
    /// with its checkpoint, then commits offsets to Kafka.
    async fn flush(&mut self) -> Result<(), JoinerError> {
        let joiner = self.joiner;
        if self.batch.len() > 0 {
            let batch = std::mem::take(&mut self.batch);
            let started = Instant::now();
            self.write_until_acknowledged(&batch).await;
            joiner
                .metrics
                .insert_duration
                .observe(started.elapsed().as_secs_f64());
            // Counted when ClickHouse has the rows (the latency histogram measures exactly that).
            joiner.metrics.batch_rows.observe(batch.len() as f64);
            joiner.metrics.clicks.inc_by(batch.clicks.len() as u64);
            let now = now_ms();
            for outcome in &batch.outcomes {
                count_outcome(joiner, outcome, now);
            }
            self.publish_outbound(&batch.outcomes).await;
        }
        let state = self.state.clone();
        let partitions = &mut self.partitions;
        tokio::task::block_in_place(|| {
            let mut stores: Vec<_> = partitions
                .values_mut()
                .map(|p| {
                    let checkpoint = p.checkpoint();
                    (p.join.store_mut(), checkpoint)
                })
                .collect();
            state.commit(&mut stores)
        })?;
        self.commit_kafka();
        Ok(())
    }

    /// Publishes the batch's conversions for traffic-source postbacks, after ClickHouse has
    /// them and before the state moves on, retrying until the broker acknowledges: at least
    /// once (a replay publishes again; the dispatcher deduplicates by idempotency key).
    async fn publish_outbound(&mut self, outcomes: &[Outcome]) {
        let joiner = self.joiner;
        let Some(publisher) = &joiner.outbound else {
            return;
        };
        let topic = &joiner.kafka.outbound_topic;
        let records: Vec<OutboundRecord> = outcomes
            .iter()
            .filter_map(|o| match o {
                Outcome::Attributed(c) => Some(OutboundRecord::new(c.clone())),
                Outcome::Unattributed(_) => None,
            })
            .collect();
        // All records of the batch in flight at once (the producer batches them); the ones the
        // broker did not acknowledge are sent again after a backoff.
        let mut unsent = records;
        let mut backoff = Duration::from_millis(joiner.config.retry_initial_ms);
        while !unsent.is_empty() {
            let mut in_flight = Vec::with_capacity(unsent.len());
            let mut failed = Vec::new();
            for record in unsent {
                match publisher.enqueue(topic, &record.conversion.click_id, &record.encode()) {
                    Ok(delivery) => in_flight.push((record, delivery)),
                    Err(_) => failed.push(record),
                }
            }
            for (record, delivery) in in_flight {
                if delivery.await.is_err() {
                    failed.push(record);
                }
            }
            if !failed.is_empty() {
                joiner.metrics.outbound_errors.inc_by(failed.len() as u64);
                tracing::error!(
                    records = failed.len(),
                    retry_in_ms = backoff.as_millis() as u64,
                    "outbound conversions not published"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_millis(joiner.config.retry_max_ms));
            }
            unsent = failed;
        }
    }

    /// Retries with backoff until ClickHouse acknowledges the batch. Meanwhile partitions are
    /// paused and nothing is processed (the state must match the batch), so memory does not
    /// grow; the consumer is still polled so that the member stays in its group.
    async fn write_until_acknowledged(&mut self, batch: &Batch) {
        let joiner = self.joiner;
        let mut backoff = Duration::from_millis(joiner.config.retry_initial_ms);
        let mut paused: Option<TopicPartitionList> = None;
        loop {
            match joiner.sink.write(&batch.clicks, &batch.outcomes).await {
                Ok(_) => break,
                Err(error) => {
                    record_insert_error(joiner, &error, backoff);
                    if paused.is_none() {
                        if let Ok(assignment) = self.consumer.assignment() {
                            if self.consumer.pause(&assignment).is_ok() {
                                paused = Some(assignment);
                            }
                        }
                    }
                    self.wait_polling(backoff).await;
                    self.refresh_lag_metrics();
                    backoff = (backoff * 2).min(Duration::from_millis(joiner.config.retry_max_ms));
                }
            }
        }
        if let Some(list) = paused {
            if let Err(e) = self.consumer.resume(&list) {
                tracing::warn!(error = %e, "cannot resume partitions after ClickHouse recovered");
            }
            self.pause_restoring_postbacks();
        }
    }

    /// Waits `duration` while still polling the consumer, so that the group keeps this member
    /// (heartbeats, rebalance callbacks) and statistics keep coming. Partitions are paused, so
    /// only records fetched before the pause (or of a new assignment) arrive: they are kept,
    /// unprocessed, for after the flush, because the state must match the batch being written.
    async fn wait_polling(&mut self, duration: Duration) {
        let consumer = self.consumer.clone();
        let sleep = tokio::time::sleep(duration);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => return,
                message = consumer.recv() => match message {
                    Ok(message) => self.deferred.push(message.detach()),
                    Err(error) => tracing::warn!(error = %error, "consumer error"),
                },
            }
        }
    }

    /// Consumer lag from the latest statistics, without touching the join.
    fn refresh_lag_metrics(&self) {
        let joiner = self.joiner;
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
            tokio::task::block_in_place(|| {
                deferred
                    .iter()
                    .try_for_each(|message| self.on_message(message))
            })?;
        }
        Ok(())
    }

    fn commit_kafka(&mut self) {
        let kafka = &self.joiner.kafka;
        let mut positions = CommitPositions::default();
        for (&partition, state) in &self.partitions {
            let (clicks, postbacks) = state.kafka_positions();
            if clicks > 0 {
                positions.set(&kafka.clicks_topic, partition, clicks);
            }
            if postbacks > 0 {
                positions.set(&kafka.postbacks_topic, partition, postbacks);
            }
        }
        if positions.is_empty() || positions == self.committed {
            return;
        }
        match self
            .consumer
            .commit(&positions.to_list(), CommitMode::Async)
        {
            Ok(()) => {
                self.joiner.metrics.commits.with_label_values(&["ok"]).inc();
                self.committed = positions;
            }
            Err(error) => {
                self.joiner
                    .metrics
                    .commits
                    .with_label_values(&["error"])
                    .inc();
                tracing::warn!(error = %error, "offset commit failed; will retry with the next batch");
            }
        }
    }
}

/// Adds released outcomes to the batch, except those a rebuild replays from before the group's
/// committed offset (their rows were written by whoever processed them first).
fn emit(batch: &mut Batch, state: &PartitionState, outcomes: Vec<Positioned>) {
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

fn count_outcome(joiner: &Joiner, outcome: &Outcome, now: u64) {
    let (route, kind, reason) = match outcome {
        Outcome::Attributed(c) => (c.route.as_str(), "attributed", ""),
        Outcome::Unattributed(u) => (u.route.as_str(), "unattributed", u.reason.as_str()),
    };
    // Only configured routes become label values.
    let route = if route == clickmatch_core::model::GLOBAL_ROUTE
        || joiner.account.load().routes.contains_key(route)
    {
        route
    } else {
        "unknown"
    };
    joiner
        .metrics
        .postbacks
        .with_label_values(&[route, kind, reason])
        .inc();
    if let Outcome::Attributed(conversion) = outcome {
        if conversion.click_id_repaired {
            let hint = conversion.repair.as_str();
            joiner
                .metrics
                .repairs
                .with_label_values(&[route, hint])
                .inc();
        }
    }
    let latency = now.saturating_sub(outcome.received_ms()) as f64 / 1000.0;
    joiner.metrics.attribution_latency.observe(latency);
}

fn far_future() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(3600)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}
