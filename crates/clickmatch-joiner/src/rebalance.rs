//! Partitions given and taken, on the loop's side of the rebalance.
//!
//! An assigned partition with a local checkpoint resumes at the checkpoint's offsets on both
//! topics. One without (first run, another member's partition, deleted state) is rebuilt: both
//! topics from the beginning, with rows only emitted from the group's committed offsets on,
//! and its postbacks paused until its clicks are read up to there.
//!
//! A revoked partition's rows are written and its offsets committed before the consumer lets
//! it go, so that the member taking it over starts exactly after them.

use std::collections::HashMap;

use clickmatch_core::join::{JoinStore, PartitionJoin};
use clickmatch_store::Checkpoint;

use crate::partition::{PartitionState, Restore};
use crate::run::Run;
use crate::sink::Sink;
use crate::source::{Source, StartAt, Topic, TopicPartition};
use crate::JoinerError;

impl<K: Sink, S: Source> Run<K, S> {
    /// Sets up the partitions' state and says where each starts reading.
    pub fn assign(
        &mut self,
        partitions: &[TopicPartition],
    ) -> Result<Vec<(TopicPartition, StartAt)>, JoinerError> {
        let committed = self.source.committed(partitions).unwrap_or_else(|error| {
            tracing::warn!(error = %error, "cannot read committed offsets; rebuilds emit everything");
            HashMap::new()
        });
        // One decision per partition, for both topics: resume from the checkpoint only when
        // it fits every assigned topic.
        let mut checkpoints: HashMap<i32, Option<Checkpoint>> = HashMap::new();
        for &(topic, partition) in partitions {
            let entry = checkpoints
                .entry(partition)
                .or_insert_with(|| self.read_checkpoint(partition));
            if let Some(checkpoint) = *entry {
                if !self.checkpoint_fits((topic, partition), next_of(&checkpoint, topic)) {
                    *entry = None;
                }
            }
        }
        let mut starts = Vec::with_capacity(partitions.len());
        for &(topic, partition) in partitions {
            let checkpoint = checkpoints.get(&partition).copied().flatten();
            let committed = committed.get(&(topic, partition)).copied();
            self.add(topic, partition, committed, checkpoint)?;
            let start =
                checkpoint.map_or(StartAt::Beginning, |c| StartAt::Offset(next_of(&c, topic)));
            starts.push(((topic, partition), start));
        }
        Ok(starts)
    }

    fn add(
        &mut self,
        topic: Topic,
        partition: i32,
        committed: Option<i64>,
        checkpoint: Option<Checkpoint>,
    ) -> Result<(), JoinerError> {
        let joiner = &*self.joiner;
        let name = self.source.topic_name(topic);
        tracing::info!(
            topic = name,
            partition,
            ?committed,
            ?checkpoint,
            "partition assigned"
        );
        joiner
            .metrics
            .assigned_partitions
            .with_label_values(&[name])
            .inc();
        self.assigned.insert((topic, partition));
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
        state.set_committed(topic == Topic::Clicks, committed);
        Ok(())
    }

    /// Writes and commits what the partitions produced, then lets their state go.
    pub async fn revoke(&mut self, partitions: &[TopicPartition]) -> Result<(), JoinerError> {
        self.flush().await?;
        let names: Vec<(&str, i32)> = partitions
            .iter()
            .map(|&(topic, partition)| (self.source.topic_name(topic), partition))
            .collect();
        let positions = self.commits.wanted_of(&names);
        if !positions.is_empty() {
            let result = tokio::task::block_in_place(|| self.source.commit_sync(&positions));
            if let Err(error) = &result {
                // The member taking over rebuilds from the last confirmed commit: rows in
                // between are written again, identically.
                tracing::warn!(error = %error, "offsets of revoked partitions not committed");
            }
            self.count_commit(result.is_ok());
            self.commits.answered(&positions, result.is_ok());
        }
        for &(topic, partition) in partitions {
            self.remove(topic, partition);
        }
        Ok(())
    }

    fn remove(&mut self, topic: Topic, partition: i32) {
        let joiner = &*self.joiner;
        let name = self.source.topic_name(topic);
        tracing::info!(topic = name, partition, "partition revoked");
        if self.assigned.remove(&(topic, partition)) {
            joiner
                .metrics
                .assigned_partitions
                .with_label_values(&[name])
                .dec();
        }
        self.commits.forget(name, partition);
        let Some(state) = self.partitions.get_mut(&partition) else {
            return;
        };
        state.topics_assigned = state.topics_assigned.saturating_sub(1);
        if state.topics_assigned == 0 {
            // Flushed before: its state and checkpoint are durable.
            self.partitions.remove(&partition);
            joiner.metrics.forget_partition(partition);
        }
    }

    /// Postbacks of a rebuilding partition wait until its clicks are restored.
    pub fn pause_restoring_postbacks(&mut self) {
        let waiting: Vec<_> = self
            .partitions
            .iter()
            .filter(|(_, s)| {
                matches!(s.restore, Restore::Rebuilding { .. }) && !s.restore_reached()
            })
            .map(|(&partition, _)| (Topic::Postbacks, partition))
            .collect();
        if !waiting.is_empty() {
            if let Err(e) = self.source.pause(&waiting) {
                tracing::warn!(error = %e, "cannot pause postbacks during restore");
            }
        }
    }

    pub fn finish_restore(&mut self, partition: i32) {
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
        if let Err(e) = self.source.resume(&[(Topic::Postbacks, partition)]) {
            tracing::warn!(error = %e, "cannot resume postbacks after restore");
        }
    }

    fn read_checkpoint(&self, partition: i32) -> Option<Checkpoint> {
        self.state
            .checkpoint(partition)
            .map_err(
                |e| tracing::error!(partition, error = %e, "cannot read checkpoint; rebuilding"),
            )
            .ok()
            .flatten()
    }

    /// A checkpoint past the end of its partition belongs to another incarnation of the topic
    /// (recreated, or another cluster): it is not used.
    fn checkpoint_fits(&self, partition: TopicPartition, next: i64) -> bool {
        match self.source.fetch_high_watermark(partition) {
            Ok(high) if next > high => {
                tracing::warn!(
                    topic = self.source.topic_name(partition.0),
                    partition = partition.1,
                    next,
                    high,
                    "checkpoint is past the end of the partition; rebuilding"
                );
                false
            }
            _ => true,
        }
    }
}

fn next_of(checkpoint: &Checkpoint, topic: Topic) -> i64 {
    match topic {
        Topic::Clicks => checkpoint.clicks_next,
        Topic::Postbacks => checkpoint.postbacks_next,
    }
}
