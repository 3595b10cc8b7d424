//! The Kafka side of [`Source`]: a consumer polled on a thread of its own, whose records and
//! rebalances become [`Event`]s for the loop.
//!
//! The rebalance callback runs on the polling thread. It hands the records read before it to
//! the loop, sends the rebalance, and waits for the answer: the loop reads committed offsets
//! and checkpoints (for an assignment) or writes and commits what the partitions produced
//! (for a revoke) while librdkafka waits, and only then are partitions assigned or given up.
//!
//! Commits are made synchronously on a third thread, which sends the broker's answer back as
//! an event: librdkafka reports the outcome of an asynchronous manual commit only to a C
//! `offset_commit_cb`, never as the event rust-rdkafka's `commit_callback` listens for, so a
//! queued commit's `Ok` would be all there is to know.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use clickmatch_config::KafkaConfig;
use clickmatch_kafka::consumer::consumer_config;
use clickmatch_kafka::offsets::CommitPositions;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::Message;
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::{mpsc, oneshot};

use crate::source::{Event, Record, Source, StartAt, Topic, TopicPartition};
use crate::CHUNK;

/// How long one poll waits for a record when none is buffered.
const POLL_WAIT: Duration = Duration::from_millis(100);
/// Chunks of records the channel holds before the polling thread waits for the loop.
const CHANNEL_CHUNKS: usize = 4;
/// Broker calls made for an assignment.
const COMMITTED_TIMEOUT: Duration = Duration::from_secs(10);
const WATERMARKS_TIMEOUT: Duration = Duration::from_secs(5);

type JoinConsumer = BaseConsumer<JoinContext>;

/// The topics' names, both ways.
#[derive(Clone)]
struct Topics {
    clicks: String,
    postbacks: String,
}

impl Topics {
    fn of(&self, name: &str) -> Option<Topic> {
        if name == self.clicks {
            Some(Topic::Clicks)
        } else if name == self.postbacks {
            Some(Topic::Postbacks)
        } else {
            None
        }
    }

    fn name(&self, topic: Topic) -> &str {
        match topic {
            Topic::Clicks => &self.clicks,
            Topic::Postbacks => &self.postbacks,
        }
    }

    fn partitions(&self, list: &TopicPartitionList) -> Vec<TopicPartition> {
        list.elements()
            .iter()
            .filter_map(|e| Some((self.of(e.topic())?, e.partition())))
            .collect()
    }

    fn list(&self, partitions: &[TopicPartition]) -> TopicPartitionList {
        let mut list = TopicPartitionList::new();
        for &(topic, partition) in partitions {
            list.add_partition(self.name(topic), partition);
        }
        list
    }
}

pub struct JoinContext {
    topics: Topics,
    events: mpsc::Sender<Event>,
    /// Records polled but not yet handed to the loop (touched by the polling thread only).
    buffered: Mutex<Vec<Record>>,
    /// High watermarks from librdkafka's statistics: lag and "caught up" without requests.
    high_watermarks: Mutex<HashMap<TopicPartition, i64>>,
}

impl JoinContext {
    /// Hands the buffered records to the loop; false once the loop is gone.
    fn hand_over(&self) -> bool {
        let records = std::mem::take(&mut *self.buffered.lock().expect("buffer lock"));
        records.is_empty() || self.events.blocking_send(Event::Records(records)).is_ok()
    }

    fn buffer(&self, record: Record) -> usize {
        let mut buffered = self.buffered.lock().expect("buffer lock");
        buffered.push(record);
        buffered.len()
    }

    /// Sends a rebalance to the loop and waits for its answer; `None` once the loop is gone
    /// (shutting down: everything was flushed already).
    fn ask<T>(&self, event: impl FnOnce(oneshot::Sender<T>) -> Event) -> Option<T> {
        if !self.hand_over() {
            return None;
        }
        let (reply, answer) = oneshot::channel();
        self.events.blocking_send(event(reply)).ok()?;
        answer.blocking_recv().ok()
    }
}

impl ClientContext for JoinContext {
    fn stats(&self, statistics: Statistics) {
        let mut highs = self.high_watermarks.lock().expect("watermarks lock");
        for (name, stats_of_topic) in statistics.topics {
            let Some(topic) = self.topics.of(&name) else {
                continue;
            };
            for (partition, stats) in stats_of_topic.partitions {
                // Partition -1 is librdkafka's internal "unassigned" bucket.
                if partition >= 0 && stats.hi_offset >= 0 {
                    highs.insert((topic, partition), stats.hi_offset);
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
        let partitions = self.topics.partitions(tpl);
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let starts = self.ask(|reply| Event::Assign {
                    partitions: partitions.clone(),
                    reply,
                });
                let mut assignment = TopicPartitionList::new();
                for (topic, partition) in partitions {
                    let start = starts
                        .as_ref()
                        .and_then(|s| s.iter().find(|(p, _)| *p == (topic, partition)))
                        .map_or(StartAt::Beginning, |(_, start)| *start);
                    let offset = match start {
                        StartAt::Beginning => Offset::Beginning,
                        StartAt::Offset(o) => Offset::Offset(o),
                    };
                    assignment
                        .add_partition_offset(self.topics.name(topic), partition, offset)
                        .expect("valid offset");
                }
                log_result("assign", consumer.assign(&assignment));
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.ask(|done| Event::Revoke { partitions, done });
                log_result("unassign", consumer.unassign());
            }
            other => {
                tracing::error!(error = ?other, "rebalance error");
                log_result("unassign", consumer.unassign());
            }
        }
    }
}

/// The joiner's consumer, the thread that polls it and the one that commits.
pub struct KafkaSource {
    consumer: Arc<JoinConsumer>,
    topics: Topics,
    stop: Arc<AtomicBool>,
    poller: Mutex<Option<JoinHandle<()>>>,
    commits: Mutex<Option<std::sync::mpsc::Sender<CommitPositions>>>,
}

impl KafkaSource {
    /// Subscribes to both topics and starts polling; events arrive on the returned channel.
    pub fn start(kafka: &KafkaConfig) -> Result<(Self, mpsc::Receiver<Event>), KafkaError> {
        let topics = Topics {
            clicks: kafka.clicks_topic.clone(),
            postbacks: kafka.postbacks_topic.clone(),
        };
        let (events, receiver) = mpsc::channel(CHANNEL_CHUNKS);
        let context = JoinContext {
            topics: topics.clone(),
            events: events.clone(),
            buffered: Mutex::new(Vec::with_capacity(CHUNK)),
            high_watermarks: Mutex::new(HashMap::new()),
        };
        let consumer: Arc<JoinConsumer> = Arc::new(
            consumer_config(&kafka.bootstrap_servers, &kafka.group_id, &kafka.properties)
                .create_with_context(context)?,
        );
        consumer.subscribe(&[&topics.clicks, &topics.postbacks])?;
        let stop = Arc::new(AtomicBool::new(false));
        let poller = std::thread::Builder::new()
            .name("joiner-poll".into())
            .spawn({
                let (consumer, stop) = (consumer.clone(), stop.clone());
                move || poll_loop(&consumer, &stop)
            })
            .expect("spawn the polling thread");
        let (commits, to_commit) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("joiner-commit".into())
            .spawn({
                let consumer = consumer.clone();
                move || commit_loop(&consumer, &to_commit, &events)
            })
            .expect("spawn the committing thread");
        let source = KafkaSource {
            consumer,
            topics,
            stop,
            poller: Mutex::new(Some(poller)),
            commits: Mutex::new(Some(commits)),
        };
        Ok((source, receiver))
    }

    /// Stops polling and leaves the group (the loop has flushed everything, and the revoke
    /// that leaving triggers finds no loop to ask).
    pub fn close(&self, receiver: mpsc::Receiver<Event>) {
        self.stop.store(true, Ordering::Relaxed);
        // The committing thread ends after the commit it is making, if any (not waited for:
        // during a broker outage that may take long; the consumer closes when it is done).
        self.commits.lock().expect("commits lock").take();
        // A polling thread waiting for room in the channel sees it closed.
        drop(receiver);
        if let Some(poller) = self.poller.lock().expect("poller lock").take() {
            let _ = poller.join();
        }
        self.consumer.unsubscribe();
    }
}

/// Polls until stopped, handing records over in chunks: when a chunk is full or nothing more
/// is waiting.
fn poll_loop(consumer: &JoinConsumer, stop: &AtomicBool) {
    let context = consumer.context();
    let mut buffered = 0;
    while !stop.load(Ordering::Relaxed) {
        let wait = if buffered == 0 {
            POLL_WAIT
        } else {
            Duration::ZERO
        };
        match consumer.poll(wait) {
            Some(Ok(message)) => {
                let Some(topic) = context.topics.of(message.topic()) else {
                    continue;
                };
                buffered = context.buffer(Record {
                    topic,
                    partition: message.partition(),
                    offset: message.offset(),
                    payload: message.payload().unwrap_or_default().to_vec(),
                });
                if buffered >= CHUNK {
                    if !context.hand_over() {
                        return;
                    }
                    buffered = 0;
                }
            }
            Some(Err(error)) => tracing::warn!(error = %error, "consumer error"),
            None => {
                if !context.hand_over() {
                    return;
                }
                buffered = 0;
            }
        }
    }
}

/// Commits what it is sent, synchronously, the newest positions first when several wait, and
/// sends each answer back to the loop.
fn commit_loop(
    consumer: &JoinConsumer,
    to_commit: &std::sync::mpsc::Receiver<CommitPositions>,
    events: &mpsc::Sender<Event>,
) {
    while let Ok(mut positions) = to_commit.recv() {
        while let Ok(newer) = to_commit.try_recv() {
            positions = newer;
        }
        let result = consumer.commit(&positions.to_list(), CommitMode::Sync);
        if events
            .blocking_send(Event::Committed { positions, result })
            .is_err()
        {
            return;
        }
    }
}

impl Source for KafkaSource {
    fn topic_name(&self, topic: Topic) -> &str {
        self.topics.name(topic)
    }

    fn pause(&self, partitions: &[TopicPartition]) -> Result<(), KafkaError> {
        self.consumer.pause(&self.topics.list(partitions))
    }

    fn resume(&self, partitions: &[TopicPartition]) -> Result<(), KafkaError> {
        self.consumer.resume(&self.topics.list(partitions))
    }

    fn commit(&self, positions: &CommitPositions) -> Result<(), KafkaError> {
        let commits = self.commits.lock().expect("commits lock");
        match commits.as_ref().map(|c| c.send(positions.clone())) {
            Some(Ok(())) => Ok(()),
            _ => Err(KafkaError::Canceled),
        }
    }

    fn commit_sync(&self, positions: &CommitPositions) -> Result<(), KafkaError> {
        self.consumer.commit(&positions.to_list(), CommitMode::Sync)
    }

    fn committed(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<HashMap<TopicPartition, i64>, KafkaError> {
        let list = self
            .consumer
            .committed_offsets(self.topics.list(partitions), COMMITTED_TIMEOUT)?;
        Ok(list
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) => Some(((self.topics.of(e.topic())?, e.partition()), o)),
                _ => None,
            })
            .collect())
    }

    fn high_watermark(&self, partition: TopicPartition) -> Option<i64> {
        let context = self.consumer.context();
        let highs = context.high_watermarks.lock().expect("watermarks lock");
        highs.get(&partition).copied()
    }

    fn fetch_high_watermark(&self, (topic, partition): TopicPartition) -> Result<i64, KafkaError> {
        let (_, high) = self.consumer.fetch_watermarks(
            self.topics.name(topic),
            partition,
            WATERMARKS_TIMEOUT,
        )?;
        Ok(high)
    }
}

fn log_result(what: &str, result: KafkaResult<()>) {
    if let Err(e) = result {
        tracing::error!(error = %e, "{what} failed during rebalance");
    }
}
