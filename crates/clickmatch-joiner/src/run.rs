//! The joiner's loop: events from the source, the batch's deadline, the batch in flight and a
//! tick, one at a time; records are joined in chunks within one blocking section.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use clickmatch_core::clock::now_ms;
use clickmatch_core::join::JoinStore;
use clickmatch_core::model::Account;
use clickmatch_core::records::{ClickRecord, PostbackRecord};
use clickmatch_store::StateDb;
use tokio::sync::mpsc;

use crate::batch::Batch;
use crate::commit::{Answer, Commits};
use crate::partition::{PartitionState, Restore};
use crate::sink::Sink;
use crate::source::{Event, Record, Source, Topic, TopicPartition};
use crate::write::{in_flight_task, propagate_panic, InFlight};
use crate::{Joiner, JoinerError, JoinerMetrics};

/// How often lag is measured, idle partitions' watermarks advanced and commits retried.
pub(crate) const TICK: Duration = Duration::from_millis(250);

pub(crate) struct Run<K: Sink, S: Source> {
    pub joiner: Arc<Joiner<K>>,
    pub source: Arc<S>,
    pub events: mpsc::Receiver<Event>,
    pub state: StateDb,
    pub partitions: BTreeMap<i32, PartitionState>,
    /// Every topic partition assigned to this member.
    pub assigned: BTreeSet<TopicPartition>,
    pub batch: Batch,
    /// Batches sealed so far (the number of the newest).
    pub sealed: u64,
    pub in_flight: Option<InFlight>,
    /// The last batch written, emptied, to be filled again.
    pub spare: Option<Batch>,
    pub commits: Commits,
    /// Events received while waiting for a batch, handled after it in the order they came.
    pub deferred: VecDeque<Event>,
}

impl<K: Sink, S: Source> Run<K, S> {
    pub fn new(
        joiner: Arc<Joiner<K>>,
        source: Arc<S>,
        events: mpsc::Receiver<Event>,
        state: StateDb,
    ) -> Self {
        Run {
            joiner,
            source,
            events,
            state,
            partitions: BTreeMap::new(),
            assigned: BTreeSet::new(),
            batch: Batch::default(),
            sealed: 0,
            in_flight: None,
            spare: None,
            commits: Commits::default(),
            deferred: VecDeque::new(),
        }
    }

    pub fn into_events(self) -> mpsc::Receiver<Event> {
        self.events
    }

    pub async fn main_loop(
        &mut self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), JoinerError> {
        tokio::pin!(shutdown);
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            self.handle_deferred().await?;
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
                event = self.events.recv() => {
                    let event = event.ok_or(JoinerError::SourceStopped)?;
                    self.handle(event).await?;
                }
                _ = tick.tick() => {
                    tokio::task::block_in_place(|| self.on_tick())?;
                    self.commit_kafka();
                }
            }
            if self.batch_due() {
                self.send_batch().await?;
            }
        }
        self.flush().await
    }

    pub async fn handle(&mut self, event: Event) -> Result<(), JoinerError> {
        match event {
            Event::Records(records) => self.on_records(&records),
            Event::Assign { partitions, reply } => {
                let starts = tokio::task::block_in_place(|| self.assign(&partitions))?;
                // No answer means the consumer is closing: nothing to start.
                let _ = reply.send(starts);
                self.pause_restoring_postbacks();
                Ok(())
            }
            Event::Revoke { partitions, done } => {
                self.revoke(&partitions).await?;
                let _ = done.send(());
                Ok(())
            }
            Event::Committed { positions, result } => {
                if let Err(error) = &result {
                    tracing::warn!(error = %error, "offset commit rejected; will retry");
                }
                if self.commits.answered(&positions, result.is_ok()) == Answer::Awaited {
                    self.count_commit(result.is_ok());
                }
                Ok(())
            }
        }
    }

    /// Events received while a batch was being written, in the order they came.
    async fn handle_deferred(&mut self) -> Result<(), JoinerError> {
        while let Some(event) = self.deferred.pop_front() {
            self.handle(event).await?;
            if self.batch_due() {
                self.send_batch().await?;
            }
        }
        Ok(())
    }

    /// Joins a chunk of records in one blocking section, with one clock read and one load of
    /// the account for all of them.
    fn on_records(&mut self, records: &[Record]) -> Result<(), JoinerError> {
        let now = now_ms();
        let account = self.joiner.account.load_full();
        tokio::task::block_in_place(|| {
            records
                .iter()
                .try_for_each(|record| self.on_record(record, &account, now))
        })
    }

    fn on_record(
        &mut self,
        record: &Record,
        account: &Account,
        now: u64,
    ) -> Result<(), JoinerError> {
        let (partition, offset) = (record.partition, record.offset);
        let Some(state) = self.partitions.get_mut(&partition) else {
            // Not ours (a record fetched just before a revoke).
            return Ok(());
        };
        match record.topic {
            Topic::Clicks => {
                if offset < state.clicks_next {
                    return Ok(());
                }
                state.clicks_next = offset + 1;
                match ClickRecord::decode(&record.payload) {
                    Ok(click) => {
                        let released = state.join.on_click(account, &click)?;
                        if state.emits_click(offset) {
                            self.batch.clicks.push(click);
                            self.batch.touch();
                        }
                        self.batch.emit(state, released);
                    }
                    Err(error) => skip(
                        &self.joiner.metrics,
                        self.source.topic_name(record.topic),
                        record,
                        &error,
                    ),
                }
                if matches!(state.restore, Restore::Rebuilding { .. }) && state.restore_reached() {
                    self.finish_restore(partition);
                }
            }
            Topic::Postbacks => {
                if offset < state.postbacks_next {
                    return Ok(());
                }
                state.postbacks_next = offset + 1;
                match PostbackRecord::decode(&record.payload) {
                    Ok(postback) => {
                        if let Some(outcome) =
                            state.join.on_postback(account, postback, offset, now)?
                        {
                            self.batch.emit(state, [(offset, outcome)]);
                        }
                    }
                    Err(error) => skip(
                        &self.joiner.metrics,
                        self.source.topic_name(record.topic),
                        record,
                        &error,
                    ),
                }
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
            if let Some(high) = self.source.high_watermark((Topic::Clicks, partition)) {
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
                self.batch.emit(state, released);
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

    /// Consumer lag from the latest statistics, without touching the join.
    pub fn refresh_lag_metrics(&self) {
        for (&partition, state) in &self.partitions {
            let label = partition.to_string();
            for (topic, next) in [
                (Topic::Clicks, state.clicks_next),
                (Topic::Postbacks, state.postbacks_next),
            ] {
                if let Some(high) = self.source.high_watermark((topic, partition)) {
                    self.joiner
                        .metrics
                        .consumer_lag
                        .with_label_values(&[self.source.topic_name(topic), &label])
                        .set((high - next).max(0));
                }
            }
        }
    }

    /// Queues a commit of the last acknowledged batch's positions, unless it is confirmed
    /// already or an answer is awaited.
    pub fn commit_kafka(&mut self) {
        let Some(positions) = self.commits.due() else {
            return;
        };
        match self.source.commit(positions) {
            Ok(()) => self.commits.sent(),
            Err(error) => {
                self.count_commit(false);
                tracing::warn!(error = %error, "offset commit not queued; will retry");
            }
        }
    }

    pub fn count_commit(&self, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.joiner
            .metrics
            .commits
            .with_label_values(&[result])
            .inc();
    }
}

fn skip(metrics: &JoinerMetrics, topic: &str, record: &Record, error: &dyn std::fmt::Display) {
    metrics.records_skipped.with_label_values(&[topic]).inc();
    tracing::warn!(topic, partition = record.partition, offset = record.offset, error = %error, "unreadable record skipped");
}

fn far_future() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(3600)
}
