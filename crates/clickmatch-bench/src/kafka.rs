//! Kafka helpers: producing a plan as ingest would, end and committed offsets of a group, and
//! the reference consumer (a bare `StreamConsumer` in a group, no processing).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use clickmatch_core::model::Account;
use clickmatch_kafka::consumer::consumer_config;
use clickmatch_kafka::Publisher;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use crate::traffic::Record;

/// Produces `records` in order (clicks to `clicks_topic`, postbacks to `postbacks_topic`,
/// keyed as ingest keys them) and waits for every acknowledgement.
pub async fn produce(
    bootstrap: &str,
    account: &Account,
    records: &[Record],
    clicks_topic: &str,
    postbacks_topic: &str,
) -> anyhow::Result<()> {
    let publisher = Publisher::new(bootstrap, &Default::default())?;
    let mut pending = Vec::with_capacity(10_000);
    for record in records {
        let (click, key, value) = record.encode(account);
        let topic = if click { clicks_topic } else { postbacks_topic };
        loop {
            match publisher.enqueue(topic, &key, &value) {
                Ok(delivery) => {
                    pending.push(delivery);
                    break;
                }
                Err(_) => {
                    // Queue full: wait for what is in flight.
                    for d in pending.drain(..) {
                        d.await?;
                    }
                }
            }
        }
        if pending.len() >= 10_000 {
            for d in pending.drain(..) {
                d.await?;
            }
        }
    }
    for d in pending {
        d.await?;
    }
    Ok(())
}

pub type Positions = BTreeMap<(String, i32), i64>;

fn metadata_consumer(bootstrap: &str, group: &str) -> anyhow::Result<BaseConsumer> {
    Ok(consumer_config(bootstrap, group, &Default::default()).create()?)
}

/// Low and high watermarks of every partition of `topics`.
pub fn watermarks(
    bootstrap: &str,
    topics: &[&str],
) -> anyhow::Result<BTreeMap<(String, i32), (i64, i64)>> {
    let consumer = metadata_consumer(bootstrap, "clickmatch-bench-metadata")?;
    let mut out = BTreeMap::new();
    for topic in topics {
        let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
        let t = metadata
            .topics()
            .first()
            .with_context(|| format!("no metadata for {topic}"))?;
        for p in t.partitions() {
            let marks = consumer.fetch_watermarks(topic, p.id(), Duration::from_secs(10))?;
            out.insert((topic.to_string(), p.id()), marks);
        }
    }
    Ok(out)
}

/// The end offsets of `topics`, once it is checked that the broker still holds every record
/// produced to them. librdkafka's mock cluster (`clickmatch broker`) keeps at most 5 MiB or
/// 100,000 message sets per partition and silently drops the oldest beyond that: the end
/// offsets alone do not show it, the start offsets do.
pub fn retained_end_offsets(bootstrap: &str, topics: &[&str]) -> anyhow::Result<Positions> {
    let marks = watermarks(bootstrap, topics)?;
    let dropped: Vec<String> = marks
        .iter()
        .filter(|(_, (low, _))| *low > 0)
        .map(|((topic, partition), (low, _))| format!("{topic}/{partition} from offset {low}"))
        .collect();
    anyhow::ensure!(
        dropped.is_empty(),
        "the broker dropped the oldest records of {} partition(s) ({}, ...): the mock cluster \
         keeps ~5 MiB per partition; produce fewer records or use more partitions",
        dropped.len(),
        dropped[..dropped.len().min(3)].join(", ")
    );
    Ok(marks
        .into_iter()
        .map(|(key, (_, high))| (key, high))
        .collect())
}

/// A client of `group` that only reads its committed offsets (it joins nothing).
pub fn group_client(bootstrap: &str, group: &str) -> anyhow::Result<BaseConsumer> {
    metadata_consumer(bootstrap, group)
}

/// Offsets the client's group committed for the partitions of `ends`.
pub fn committed(client: &BaseConsumer, ends: &Positions) -> anyhow::Result<Positions> {
    let mut list = TopicPartitionList::new();
    for (topic, partition) in ends.keys() {
        list.add_partition(topic, *partition);
    }
    let list = client.committed_offsets(list, Duration::from_secs(10))?;
    let mut out = BTreeMap::new();
    for element in list.elements() {
        if let Offset::Offset(o) = element.offset() {
            out.insert((element.topic().to_string(), element.partition()), o);
        }
    }
    Ok(out)
}

/// True when `group` committed the end of every non-empty partition.
pub fn caught_up(committed: &Positions, ends: &Positions) -> bool {
    ends.iter()
        .filter(|(_, end)| **end > 0)
        .all(|(k, end)| committed.get(k).is_some_and(|c| c >= end))
}

/// What the reference consumer measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ConsumeResult {
    pub events: u64,
    pub bytes: u64,
    /// Partitions assigned → last message.
    pub seconds: f64,
    pub events_per_s: f64,
    /// Start → partitions assigned (group join).
    pub join_seconds: f64,
}

/// Records when the group first assigned partitions to the consumer.
#[derive(Default)]
pub struct AssignmentClock {
    assigned: std::sync::Mutex<Option<Instant>>,
}

impl AssignmentClock {
    pub fn assigned(&self) -> Option<Instant> {
        *self.assigned.lock().expect("clock lock")
    }
}

impl rdkafka::client::ClientContext for AssignmentClock {}

impl rdkafka::consumer::ConsumerContext for AssignmentClock {
    fn post_rebalance(
        &self,
        _: &rdkafka::consumer::BaseConsumer<Self>,
        rebalance: &rdkafka::consumer::Rebalance<'_>,
    ) {
        if let rdkafka::consumer::Rebalance::Assign(list) = rebalance {
            if list.count() > 0 {
                self.assigned
                    .lock()
                    .expect("clock lock")
                    .get_or_insert_with(Instant::now);
            }
        }
    }
}

/// A bare consumer of `topics` in group `group` (the joiner's consumer settings), reading until
/// it has seen every record up to the current end offsets.
pub async fn consume(
    bootstrap: &str,
    group: &str,
    topics: &[&str],
    timeout: Duration,
) -> anyhow::Result<ConsumeResult> {
    // What the broker still holds (a mock cluster may have dropped a partition's oldest).
    let expected: i64 = watermarks(bootstrap, topics)?
        .values()
        .map(|(low, high)| high - low)
        .sum();
    let consumer: StreamConsumer<AssignmentClock> =
        consumer_config(bootstrap, group, &Default::default())
            .create_with_context(AssignmentClock::default())?;
    consumer.subscribe(topics)?;
    let started = Instant::now();
    let mut first: Option<Instant> = None;
    let mut last = Instant::now();
    let mut events = 0u64;
    let mut bytes = 0u64;
    while (events as i64) < expected {
        let message =
            tokio::time::timeout(timeout.saturating_sub(started.elapsed()), consumer.recv())
                .await
                .context("the reference consumer timed out")??;
        first.get_or_insert_with(Instant::now);
        bytes += message.payload().map(<[u8]>::len).unwrap_or(0) as u64;
        events += 1;
        last = Instant::now();
    }
    let first = first.unwrap_or(last);
    // From the assignment (as the joiner is timed): librdkafka fetches ahead before the first
    // message is handed over.
    let assigned = consumer.context().assigned().unwrap_or(first).min(first);
    let seconds = (last - assigned).as_secs_f64().max(1e-6);
    consumer.unsubscribe();
    Ok(ConsumeResult {
        events,
        bytes,
        seconds,
        events_per_s: events as f64 / seconds,
        join_seconds: (assigned - started).as_secs_f64(),
    })
}

/// Reads `metrics` text (Prometheus exposition) into (name, labels, value) samples.
pub fn parse_metrics(text: &str) -> Vec<(String, String, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let value: f64 = value.parse().ok()?;
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n.to_string(), rest.trim_end_matches('}').to_string()),
                None => (series.to_string(), String::new()),
            };
            Some((name, labels, value))
        })
        .collect()
}

/// `GET /metrics` from `addr` (blocking, HTTP/1.0).
pub fn scrape(addr: &str) -> anyhow::Result<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    Ok(text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default())
}

/// Sum of a metric's samples (optionally only those whose labels contain `label`).
pub fn metric_sum(samples: &[(String, String, f64)], name: &str, label: Option<&str>) -> f64 {
    samples
        .iter()
        .filter(|(n, l, _)| n == name && label.is_none_or(|want| l.contains(want)))
        .map(|(_, _, v)| v)
        .sum()
}

/// Minimum of a metric's samples, if any.
pub fn metric_min(samples: &[(String, String, f64)], name: &str) -> Option<f64> {
    samples
        .iter()
        .filter(|(n, _, _)| n == name)
        .map(|(_, _, v)| *v)
        .reduce(f64::min)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_text_and_progress() {
        let text = "# HELP x\nclickmatch_joiner_assigned_partitions{topic=\"a\"} 4\nclickmatch_joiner_assigned_partitions{topic=\"b\"} 4\nup 1\n";
        let samples = parse_metrics(text);
        assert_eq!(
            metric_sum(&samples, "clickmatch_joiner_assigned_partitions", None),
            8.0
        );
        assert_eq!(
            metric_sum(
                &samples,
                "clickmatch_joiner_assigned_partitions",
                Some("topic=\"a\"")
            ),
            4.0
        );
        assert_eq!(metric_min(&samples, "up"), Some(1.0));
        let mut ends = Positions::new();
        ends.insert(("t".into(), 0), 10);
        ends.insert(("t".into(), 1), 0);
        let mut done = Positions::new();
        assert!(!caught_up(&done, &ends));
        done.insert(("t".into(), 0), 10);
        assert!(caught_up(&done, &ends));
    }
}
