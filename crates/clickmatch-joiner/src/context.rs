//! The consumer context: rebalances become events for the joiner loop, and assignments start
//! where the partition's state says.
//!
//! A partition with a local checkpoint resumes at the checkpoint's offsets on both topics. One
//! without (first run, another member's partition, deleted state) is rebuilt: both topics from
//! the beginning, with rows only emitted from the group's committed offsets on.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use clickmatch_store::{Checkpoint, StateDb};
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaResult;
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};

/// A partition given to or taken from this member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RebalanceEvent {
    Assigned {
        topic: String,
        partition: i32,
        /// The group's committed next offset, when there is one.
        committed: Option<i64>,
        /// The local checkpoint the assignment starts from; `None` means rebuild.
        checkpoint: Option<Checkpoint>,
    },
    Revoked {
        topic: String,
        partition: i32,
    },
}

pub struct JoinContext {
    clicks_topic: String,
    state: StateDb,
    events: Mutex<Vec<RebalanceEvent>>,
    /// High watermarks per (topic, partition) from librdkafka's statistics: lag and "caught
    /// up" without extra requests to the brokers.
    high_watermarks: Mutex<HashMap<(String, i32), i64>>,
}

impl JoinContext {
    pub fn new(clicks_topic: &str, state: StateDb) -> Self {
        JoinContext {
            clicks_topic: clicks_topic.to_string(),
            state,
            events: Mutex::new(Vec::new()),
            high_watermarks: Mutex::new(HashMap::new()),
        }
    }

    /// Events since the last call, in order.
    pub fn take_events(&self) -> Vec<RebalanceEvent> {
        std::mem::take(&mut *self.events.lock().expect("rebalance events lock"))
    }

    /// The latest high watermark librdkafka reported for a partition.
    pub fn high_watermark(&self, topic: &str, partition: i32) -> Option<i64> {
        self.high_watermarks
            .lock()
            .expect("watermarks lock")
            .get(&(topic.to_string(), partition))
            .copied()
    }

    fn push(&self, event: RebalanceEvent) {
        self.events
            .lock()
            .expect("rebalance events lock")
            .push(event);
    }

    fn checkpoint(&self, partition: i32) -> Option<Checkpoint> {
        self.state
            .checkpoint(partition)
            .map_err(
                |e| tracing::error!(partition, error = %e, "cannot read checkpoint; rebuilding"),
            )
            .ok()
            .flatten()
    }
}

impl ClientContext for JoinContext {
    fn stats(&self, statistics: Statistics) {
        let mut highs = self.high_watermarks.lock().expect("watermarks lock");
        for (name, topic) in statistics.topics {
            for (partition, stats) in topic.partitions {
                // Partition -1 is librdkafka's internal "unassigned" bucket.
                if partition >= 0 && stats.hi_offset >= 0 {
                    highs.insert((name.clone(), partition), stats.hi_offset);
                }
            }
        }
    }
}

impl ConsumerContext for JoinContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let committed = consumer
                    .committed_offsets(tpl.clone(), Duration::from_secs(10))
                    .map_err(|e| tracing::warn!(error = %e, "cannot read committed offsets"))
                    .ok();
                // One decision per partition, for both topics: resume from the checkpoint only
                // when it fits every assigned topic.
                let mut checkpoints: HashMap<i32, Option<Checkpoint>> = HashMap::new();
                for element in tpl.elements() {
                    let (topic, partition) = (element.topic(), element.partition());
                    let entry = checkpoints
                        .entry(partition)
                        .or_insert_with(|| self.checkpoint(partition));
                    if let Some(cp) = *entry {
                        let next = if topic == self.clicks_topic {
                            cp.clicks_next
                        } else {
                            cp.postbacks_next
                        };
                        if !checkpoint_fits(consumer, topic, partition, next) {
                            *entry = None;
                        }
                    }
                }
                let mut assignment = TopicPartitionList::new();
                for element in tpl.elements() {
                    let (topic, partition) = (element.topic().to_string(), element.partition());
                    let committed = committed
                        .as_ref()
                        .and_then(|c| c.find_partition(&topic, partition))
                        .and_then(|e| match e.offset() {
                            Offset::Offset(o) => Some(o),
                            _ => None,
                        });
                    let checkpoint = checkpoints.get(&partition).copied().flatten();
                    let start = match checkpoint {
                        Some(cp) if topic == self.clicks_topic => Offset::Offset(cp.clicks_next),
                        Some(cp) => Offset::Offset(cp.postbacks_next),
                        None => Offset::Beginning,
                    };
                    assignment
                        .add_partition_offset(&topic, partition, start)
                        .expect("valid offset");
                    self.push(RebalanceEvent::Assigned {
                        topic,
                        partition,
                        committed,
                        checkpoint,
                    });
                }
                log_result("assign", consumer.assign(&assignment));
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                for element in tpl.elements() {
                    self.push(RebalanceEvent::Revoked {
                        topic: element.topic().to_string(),
                        partition: element.partition(),
                    });
                }
                log_result("unassign", consumer.unassign());
            }
            other => {
                tracing::error!(error = ?other, "rebalance error");
                log_result("unassign", consumer.unassign());
            }
        }
    }
}

/// A checkpoint past the end of its partition belongs to another incarnation of the topic
/// (recreated, or another cluster): it is not used.
fn checkpoint_fits(
    consumer: &BaseConsumer<JoinContext>,
    topic: &str,
    partition: i32,
    next: i64,
) -> bool {
    match consumer.fetch_watermarks(topic, partition, Duration::from_secs(5)) {
        Ok((_, high)) if next > high => {
            tracing::warn!(
                topic,
                partition,
                next,
                high,
                "checkpoint is past the end of the partition; rebuilding"
            );
            false
        }
        _ => true,
    }
}

fn log_result(what: &str, result: KafkaResult<()>) {
    if let Err(e) = result {
        tracing::error!(error = %e, "{what} failed during rebalance");
    }
}
