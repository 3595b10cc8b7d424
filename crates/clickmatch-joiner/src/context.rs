//! The consumer context: rebalances become events for the joiner loop.
//!
//! The in-memory click state of a partition is rebuilt from the clicks topic on assignment, so
//! clicks partitions are assigned from the beginning; their committed offset only tells which
//! clicks were already written to ClickHouse.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaResult;
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};

/// A partition given to or taken from this member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RebalanceEvent {
    /// `committed` is the group's committed next offset, when there is one.
    Assigned {
        topic: String,
        partition: i32,
        committed: Option<i64>,
    },
    Revoked {
        topic: String,
        partition: i32,
    },
}

pub struct JoinContext {
    clicks_topic: String,
    events: Mutex<Vec<RebalanceEvent>>,
    /// High watermarks per (topic, partition) from librdkafka's statistics: lag and "caught
    /// up" without extra requests to the brokers.
    high_watermarks: Mutex<HashMap<(String, i32), i64>>,
}

impl JoinContext {
    pub fn new(clicks_topic: &str) -> Self {
        JoinContext {
            clicks_topic: clicks_topic.to_string(),
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
                    // Clicks: from the beginning, to rebuild the partition's state.
                    // Postbacks: from the committed offset (the oldest one still pending).
                    let start = if topic == self.clicks_topic {
                        Offset::Beginning
                    } else {
                        committed.map(Offset::Offset).unwrap_or(Offset::Invalid)
                    };
                    assignment
                        .add_partition_offset(&topic, partition, start)
                        .expect("valid offset");
                    self.push(RebalanceEvent::Assigned {
                        topic,
                        partition,
                        committed,
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

fn log_result(what: &str, result: KafkaResult<()>) {
    if let Err(e) = result {
        tracing::error!(error = %e, "{what} failed during rebalance");
    }
}
