//! The batch in flight: sealing the open batch, writing it until ClickHouse acknowledges it
//! (in a task of its own, while the next batch is joined), publishing its conversions, and
//! what happens once it is acknowledged.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clickmatch_config::JoinerConfig;
use clickmatch_core::backoff::Backoff;
use clickmatch_core::clock::now_ms;
use clickmatch_core::records::{Conversion, OutboundRecord, Outcome};
use clickmatch_kafka::offsets::CommitPositions;
use tokio::task::JoinHandle;

use crate::batch::Batch;
use crate::run::{Run, TICK};
use crate::sink::Sink;
use crate::source::{Event, Source, Topic};
use crate::{metrics, Joiner, JoinerError, BATCH_GROWTH, CHUNK};

/// A sealed batch being written by its own task, and the offsets its state reaches.
pub(crate) struct InFlight {
    number: u64,
    positions: CommitPositions,
    task: JoinHandle<Batch>,
    /// Set by the task when ClickHouse refused the batch (it retries until acknowledged).
    failing: Arc<AtomicBool>,
}

impl<K: Sink, S: Source> Run<K, S> {
    /// When the open batch must be written, if one is open.
    pub fn flush_deadline(&self) -> Option<tokio::time::Instant> {
        let max_age = self.joiner.config.batch_max_age(self.batch.len());
        self.batch
            .opened
            .map(|opened| tokio::time::Instant::from_std(opened + max_age))
    }

    pub fn batch_due(&self) -> bool {
        let config = &self.joiner.config;
        self.batch.len() >= config.batch_max_rows
            || self
                .batch
                .opened
                .is_some_and(|t| t.elapsed() >= config.batch_max_age(self.batch.len()))
    }

    /// Sends the open batch unless the one in flight is still being written and the open one
    /// may still grow; waits for the one in flight first.
    pub async fn send_batch(&mut self) -> Result<(), JoinerError> {
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
    pub async fn flush(&mut self) -> Result<(), JoinerError> {
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
        let mut positions = CommitPositions::default();
        for (&partition, state) in self.partitions.iter_mut() {
            let checkpoint = state.checkpoint();
            state.join.store_mut().seal(number, checkpoint);
            let (clicks, postbacks) = state.kafka_positions();
            if clicks > 0 {
                positions.set(self.source.topic_name(Topic::Clicks), partition, clicks);
            }
            if postbacks > 0 {
                positions.set(
                    self.source.topic_name(Topic::Postbacks),
                    partition,
                    postbacks,
                );
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
        let written = self.wait_deferring(&mut in_flight).await;
        self.complete(in_flight, written)
    }

    /// After ClickHouse acknowledged a batch: its state becomes durable, then its offsets are
    /// committed to Kafka.
    pub fn complete(&mut self, in_flight: InFlight, written: Batch) -> Result<(), JoinerError> {
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
        self.commits.want(in_flight.positions);
        self.commit_kafka();
        Ok(())
    }

    /// Waits for the batch in flight while still taking events, so that the consumer keeps
    /// polling (the group keeps this member) and statistics keep coming. Events that arrive
    /// are kept, unhandled, for after it: the open batch is full. While ClickHouse fails, or
    /// once [`deferred_cap`] records wait (a slow but successful insert), partitions are
    /// paused so that only records fetched before the pause arrive.
    async fn wait_deferring(&mut self, in_flight: &mut InFlight) -> Batch {
        let mut paused = false;
        let mut deferred_records = 0;
        let mut closed = false;
        let mut check = tokio::time::interval(TICK);
        let written = loop {
            tokio::select! {
                written = &mut in_flight.task => break propagate_panic(written),
                event = self.events.recv(), if !closed => {
                    // A closed channel ends the loop after this batch.
                    let Some(event) = event else {
                        closed = true;
                        continue;
                    };
                    if let Event::Records(records) = &event {
                        deferred_records += records.len();
                    }
                    self.deferred.push_back(event);
                    if !paused && deferred_records >= deferred_cap(&self.joiner.config) {
                        paused = self.pause_assignment();
                    }
                }
                _ = check.tick() => {
                    self.refresh_lag_metrics();
                    if !paused && in_flight.failing.load(Ordering::Relaxed) {
                        paused = self.pause_assignment();
                    }
                }
            }
        };
        if paused {
            let assigned: Vec<_> = self.assigned.iter().copied().collect();
            if let Err(e) = self.source.resume(&assigned) {
                tracing::warn!(error = %e, "cannot resume partitions after the batch was written");
            }
            self.pause_restoring_postbacks();
        }
        written
    }

    /// Pauses every assigned partition; whether it worked.
    fn pause_assignment(&self) -> bool {
        let assigned: Vec<_> = self.assigned.iter().copied().collect();
        match self.source.pause(&assigned) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "cannot pause partitions while a batch waits");
                false
            }
        }
    }
}

/// How many records may wait, unhandled, for the batch in flight before the partitions are
/// paused: what one more batch would take, so memory stays bounded however slow an insert.
pub(crate) fn deferred_cap(config: &JoinerConfig) -> usize {
    config
        .batch_max_rows
        .saturating_mul(BATCH_GROWTH)
        .max(CHUNK)
}

/// Resolves when the batch in flight has been written; never when there is none.
pub(crate) async fn in_flight_task(
    in_flight: &mut Option<InFlight>,
) -> Result<Batch, tokio::task::JoinError> {
    match in_flight {
        Some(in_flight) => (&mut in_flight.task).await,
        None => std::future::pending().await,
    }
}

pub(crate) fn propagate_panic(written: Result<Batch, tokio::task::JoinError>) -> Batch {
    match written {
        Ok(batch) => batch,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(error) => panic!("batch writer cancelled: {error}"),
    }
}

/// The in-flight task: writes the batch until the sink acknowledges it, counts its rows, then
/// publishes its conversions outbound.
async fn write_batch<K: Sink>(
    joiner: Arc<Joiner<K>>,
    batch: Batch,
    failing: Arc<AtomicBool>,
) -> Batch {
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
    {
        let account = joiner.account.load();
        metrics::count_outcomes(metrics, &account, &batch.outcomes, now_ms());
        metrics::count_tracked_offers(metrics, &account, &batch.clicks, &batch.outcomes);
    }
    publish_outbound(&joiner, &batch.outcomes).await;
    batch
}

/// Retries with backoff until the sink acknowledges the batch; `failing` tells the joiner to
/// pause its partitions meanwhile.
async fn write_until_acknowledged<K: Sink>(
    joiner: &Joiner<K>,
    batch: &Batch,
    failing: &AtomicBool,
) {
    let mut backoff = retry_backoff(&joiner.config);
    while let Err(error) = joiner.sink.write(&batch.clicks, &batch.outcomes).await {
        failing.store(true, Ordering::Relaxed);
        let delay = backoff.step();
        let kind = if K::is_retryable(&error) {
            "retryable"
        } else {
            "permanent"
        };
        joiner
            .metrics
            .insert_errors
            .with_label_values(&[kind])
            .inc();
        // Nothing is dropped: even a permanent error (schema drift) is retried until an
        // operator fixes it, and the alert on insert errors tells them to.
        tracing::error!(error = %error, kind, retry_in_ms = delay.as_millis() as u64, "ClickHouse batch failed");
        tokio::time::sleep(delay).await;
    }
}

/// The configured retry delays of ClickHouse writes and outbound publishes.
fn retry_backoff(config: &JoinerConfig) -> Backoff {
    Backoff::new(
        Duration::from_millis(config.retry_initial_ms),
        Duration::from_millis(config.retry_max_ms),
    )
}

/// Publishes the batch's conversions for traffic-source postbacks, after ClickHouse has
/// them and before the state moves on, retrying until the broker acknowledges: at least
/// once (a replay publishes again; the dispatcher deduplicates by idempotency key).
async fn publish_outbound<K: Sink>(joiner: &Joiner<K>, outcomes: &[Outcome]) {
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
    let mut backoff = retry_backoff(&joiner.config);
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
