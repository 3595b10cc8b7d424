//! The stream joiner: a consumer group over the clicks and postbacks topics (range assignor, so
//! partition N of both lands here together), the pure join of `clickmatch-core` per partition,
//! batches to ClickHouse, and Kafka offsets committed only after ClickHouse acknowledged the
//! rows they produced.

mod context;
pub mod metrics;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clickmatch_clickhouse::{ClickHouseError, ClickHouseSink};
use clickmatch_config::{JoinerConfig, KafkaConfig};
use clickmatch_core::join::{ClickStore, MemoryClickStore, PartitionJoin};
use clickmatch_core::model::Account;
use clickmatch_core::records::{Click, ClickRecord, Outcome, PostbackRecord};
use clickmatch_kafka::consumer::consumer_config;
use clickmatch_kafka::offsets::CommitPositions;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};

pub use context::{JoinContext, RebalanceEvent};
pub use metrics::JoinerMetrics;

/// Errors that stop the joiner.
#[derive(Debug, thiserror::Error)]
pub enum JoinerError {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
}

/// How far behind wall-clock time the clicks watermark is set once a clicks partition is caught
/// up: covers the producer's linger and the broker's append.
const CAUGHT_UP_MARGIN_MS: u64 = 1_000;
/// How often lag is measured and idle partitions' watermarks advanced.
const TICK: Duration = Duration::from_millis(250);

type Consumer_ = StreamConsumer<JoinContext>;

/// One partition's join plus its bookkeeping.
struct PartitionState {
    join: PartitionJoin<MemoryClickStore>,
    /// Clicks below this offset were written before this assignment: rebuild state only.
    clicks_written_before: i64,
    /// Next offset to read on each topic.
    clicks_next: Option<i64>,
    postbacks_next: Option<i64>,
    clicks_caught_up: bool,
}

impl PartitionState {
    fn new() -> Self {
        PartitionState {
            join: PartitionJoin::new(MemoryClickStore::default()),
            clicks_written_before: 0,
            clicks_next: None,
            postbacks_next: None,
            clicks_caught_up: false,
        }
    }
}

/// Rows waiting to be written.
#[derive(Default)]
struct Batch {
    clicks: Vec<Click>,
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
    account: Arc<Account>,
    kafka: KafkaConfig,
    config: JoinerConfig,
    sink: ClickHouseSink,
    metrics: JoinerMetrics,
}

impl Joiner {
    pub fn new(
        account: Arc<Account>,
        kafka: KafkaConfig,
        config: JoinerConfig,
        sink: ClickHouseSink,
        metrics: JoinerMetrics,
    ) -> Self {
        Joiner {
            account,
            kafka,
            config,
            sink,
            metrics,
        }
    }

    /// Runs until `shutdown` resolves; the last batch is written and committed before returning.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), JoinerError> {
        let consumer: Arc<Consumer_> = Arc::new(
            consumer_config(
                &self.kafka.bootstrap_servers,
                &self.kafka.group_id,
                &self.kafka.properties,
            )
            .create_with_context(JoinContext::new(&self.kafka.clicks_topic))?,
        );
        consumer.subscribe(&[&self.kafka.clicks_topic, &self.kafka.postbacks_topic])?;
        let mut run = Run {
            joiner: &self,
            consumer: consumer.clone(),
            partitions: BTreeMap::new(),
            batch: Batch::default(),
            committed: CommitPositions::default(),
        };
        tokio::pin!(shutdown);
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let flush_at = run.flush_deadline();
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep_until(flush_at.unwrap_or_else(far_future)), if flush_at.is_some() => {}
                message = consumer.recv() => {
                    run.apply_rebalance_events();
                    match message {
                        Ok(message) => run.on_message(&message),
                        Err(KafkaError::PartitionEOF(_)) => {}
                        Err(error) => tracing::warn!(error = %error, "consumer error"),
                    }
                }
                _ = tick.tick() => {
                    run.apply_rebalance_events();
                    run.on_tick();
                }
            }
            if run.batch_due() {
                run.flush().await;
            }
        }
        run.flush().await;
        drop(run);
        // Leave the group promptly so partitions move to another member without waiting for
        // the session timeout.
        consumer.unsubscribe();
        Ok(())
    }
}

struct Run<'a> {
    joiner: &'a Joiner,
    consumer: Arc<Consumer_>,
    partitions: BTreeMap<i32, PartitionState>,
    batch: Batch,
    /// What was last committed, to skip commits that would change nothing.
    committed: CommitPositions,
}

impl Run<'_> {
    fn apply_rebalance_events(&mut self) {
        let clicks_topic = self.joiner.kafka.clicks_topic.clone();
        for event in self.consumer.context().take_events() {
            match event {
                RebalanceEvent::Assigned {
                    topic,
                    partition,
                    committed,
                } => {
                    tracing::info!(topic, partition, ?committed, "partition assigned");
                    self.joiner
                        .metrics
                        .assigned_partitions
                        .with_label_values(&[&topic])
                        .inc();
                    let state = self
                        .partitions
                        .entry(partition)
                        .or_insert_with(PartitionState::new);
                    if topic == clicks_topic {
                        // State is rebuilt from the beginning of the clicks partition.
                        *state = PartitionState {
                            postbacks_next: state.postbacks_next,
                            ..PartitionState::new()
                        };
                        state.clicks_written_before = committed.unwrap_or(0);
                    }
                }
                RebalanceEvent::Revoked { topic, partition } => {
                    tracing::info!(topic, partition, "partition revoked");
                    self.joiner
                        .metrics
                        .assigned_partitions
                        .with_label_values(&[&topic])
                        .dec();
                    self.partitions.remove(&partition);
                    self.committed.remove_partition(&topic, partition);
                    let label = partition.to_string();
                    let _ = self
                        .joiner
                        .metrics
                        .state_clicks
                        .remove_label_values(&[&label]);
                    let _ = self
                        .joiner
                        .metrics
                        .pending_postbacks
                        .remove_label_values(&[&label]);
                }
            }
        }
    }

    fn on_message(&mut self, message: &BorrowedMessage<'_>) {
        let topic = message.topic();
        let partition = message.partition();
        let offset = message.offset();
        let payload = message.payload().unwrap_or_default();
        let joiner = self.joiner;
        let account = &joiner.account;
        let state = self
            .partitions
            .entry(partition)
            .or_insert_with(PartitionState::new);
        let now = now_ms();

        if topic == joiner.kafka.clicks_topic {
            state.clicks_next = Some(offset + 1);
            match ClickRecord::decode(payload) {
                Ok(click) => {
                    if offset >= state.clicks_written_before {
                        self.batch.clicks.push(click.clone());
                        self.batch.touch();
                    }
                    let out = state.join.on_click(account, click);
                    push_outcomes(&mut self.batch, out);
                }
                Err(error) => skip(joiner, topic, partition, offset, &error),
            }
        } else if topic == joiner.kafka.postbacks_topic {
            state.postbacks_next = Some(offset + 1);
            match PostbackRecord::decode(payload) {
                Ok(record) => {
                    if let Some(outcome) = state.join.on_postback(account, record, offset, now) {
                        push_outcomes(&mut self.batch, vec![outcome]);
                    }
                }
                Err(error) => skip(joiner, topic, partition, offset, &error),
            }
        }
    }

    fn on_tick(&mut self) {
        let now = now_ms();
        let joiner = self.joiner;
        for (&partition, state) in self.partitions.iter_mut() {
            let label = partition.to_string();
            for (topic, next) in [
                (&joiner.kafka.clicks_topic, state.clicks_next),
                (&joiner.kafka.postbacks_topic, state.postbacks_next),
            ] {
                if let Some(high) = self.consumer.context().high_watermark(topic, partition) {
                    let lag = (high - next.unwrap_or(0)).max(0);
                    joiner
                        .metrics
                        .consumer_lag
                        .with_label_values(&[topic.as_str(), &label])
                        .set(lag);
                    if topic == &joiner.kafka.clicks_topic {
                        state.clicks_caught_up = lag == 0;
                    }
                }
            }
            // Once every click up to now has been read, wall-clock time bounds the clicks
            // that can still arrive.
            let watermark = if state.clicks_caught_up {
                now.saturating_sub(CAUGHT_UP_MARGIN_MS)
            } else {
                0
            };
            let out = state.join.advance(&joiner.account, watermark, now);
            push_outcomes(&mut self.batch, out);
            joiner
                .metrics
                .state_clicks
                .with_label_values(&[&label])
                .set(state.join.store().len() as i64);
            joiner
                .metrics
                .pending_postbacks
                .with_label_values(&[&label])
                .set(state.join.pending_len() as i64);
        }
        if self.batch.len() == 0 && self.positions() != self.committed {
            // Nothing to write, but skipped records or already-written clicks moved positions.
            self.commit();
        }
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

    /// Writes the batch, retrying until ClickHouse acknowledges it, then commits offsets.
    async fn flush(&mut self) {
        let joiner = self.joiner;
        if self.batch.len() > 0 {
            let batch = std::mem::take(&mut self.batch);
            let started = Instant::now();
            let mut backoff = Duration::from_millis(joiner.config.retry_initial_ms);
            loop {
                match joiner.sink.write(&batch.clicks, &batch.outcomes).await {
                    Ok(_) => break,
                    Err(error) => {
                        record_insert_error(joiner, &error, backoff);
                        tokio::time::sleep(backoff).await;
                        backoff =
                            (backoff * 2).min(Duration::from_millis(joiner.config.retry_max_ms));
                    }
                }
            }
            joiner
                .metrics
                .insert_duration
                .observe(started.elapsed().as_secs_f64());
            joiner.metrics.batch_rows.observe(batch.len() as f64);
            joiner.metrics.clicks.inc_by(batch.clicks.len() as u64);
            let now = now_ms();
            for outcome in &batch.outcomes {
                count_outcome(joiner, outcome, now);
            }
        }
        self.commit();
    }

    /// Next offsets that are safe to commit: everything processed, except that a postbacks
    /// partition stops at its oldest pending postback.
    fn positions(&self) -> CommitPositions {
        let kafka = &self.joiner.kafka;
        let mut positions = CommitPositions::default();
        for (&partition, state) in &self.partitions {
            if let Some(next) = state.clicks_next {
                positions.set(
                    &kafka.clicks_topic,
                    partition,
                    next.max(state.clicks_written_before),
                );
            }
            if let Some(next) = state.postbacks_next {
                let held = state
                    .join
                    .oldest_pending_position()
                    .map_or(next, |p| p.min(next));
                positions.set(&kafka.postbacks_topic, partition, held);
            }
        }
        positions
    }

    fn commit(&mut self) {
        let positions = self.positions();
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

fn push_outcomes(batch: &mut Batch, outcomes: Vec<Outcome>) {
    if !outcomes.is_empty() {
        batch.outcomes.extend(outcomes);
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
        || joiner.account.routes.contains_key(route)
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
            joiner.metrics.repairs.with_label_values(&[route, hint]).inc();
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
