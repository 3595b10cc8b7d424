//! What the joiner loop needs from Kafka, as a trait so that the loop is tested with a fake.
//!
//! Records and rebalances reach the loop as [`Event`]s on one channel, in the order the
//! consumer saw them. A rebalance carries a oneshot the loop answers once it is done (start
//! offsets for an assignment; flushed and committed for a revoke), so the consumer's callback
//! does no I/O of its own and never lets partitions go before their rows are safe.

use std::collections::HashMap;

use clickmatch_kafka::offsets::CommitPositions;
use rdkafka::error::KafkaError;
use tokio::sync::oneshot;

/// The two topics the joiner reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    Clicks,
    Postbacks,
}

/// One record as read, owned so that it can wait while a batch is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub topic: Topic,
    pub partition: i32,
    pub offset: i64,
    pub payload: Vec<u8>,
}

/// A topic's partition.
pub type TopicPartition = (Topic, i32);

/// Where an assigned partition starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    Beginning,
    Offset(i64),
}

/// What the consumer hands the loop, in order.
#[derive(Debug)]
pub enum Event {
    Records(Vec<Record>),
    /// Partitions given to this member; the answer says where each starts.
    Assign {
        partitions: Vec<TopicPartition>,
        reply: oneshot::Sender<Vec<(TopicPartition, StartAt)>>,
    },
    /// Partitions taken away: answered once their rows are written and their offsets committed.
    Revoke {
        partitions: Vec<TopicPartition>,
        done: oneshot::Sender<()>,
    },
    /// The broker's answer to a commit queued with [`Source::commit`].
    Committed {
        positions: CommitPositions,
        result: Result<(), KafkaError>,
    },
}

/// The consumer's controls. Calls may block on the broker; the loop makes them from a
/// blocking section.
pub trait Source: Send + Sync + 'static {
    fn topic_name(&self, topic: Topic) -> &str;
    fn pause(&self, partitions: &[TopicPartition]) -> Result<(), KafkaError>;
    fn resume(&self, partitions: &[TopicPartition]) -> Result<(), KafkaError>;
    /// Queues a commit without waiting; the broker's answer arrives as [`Event::Committed`].
    fn commit(&self, positions: &CommitPositions) -> Result<(), KafkaError>;
    /// Commits and waits for the broker's answer (before partitions are given up).
    fn commit_sync(&self, positions: &CommitPositions) -> Result<(), KafkaError>;
    /// The group's committed next offsets of `partitions` (absent: none committed).
    fn committed(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<HashMap<TopicPartition, i64>, KafkaError>;
    /// The latest high watermark the consumer's statistics reported.
    fn high_watermark(&self, partition: TopicPartition) -> Option<i64>;
    /// The high watermark, asked of the broker now.
    fn fetch_high_watermark(&self, partition: TopicPartition) -> Result<i64, KafkaError>;
}
