//! Visitors' clicks wait here a few milliseconds and reach the producer together.
//!
//! Handed to librdkafka one by one as requests come, each partition's first record of a produce
//! cycle wakes the broker thread, which shares the core with the HTTP worker: with 32 partitions
//! that was up to 32 wake-ups and thread switches per linger period (perf: ~20 % of ingest's
//! CPU in waking and switching). Handed over together, every partition gets its first record at
//! once: one switch per flush, and the partitions' lingers expire together.
//!
//! A click waits here at most [`COALESCE`] before the producer has it: the redirect never
//! waited for the broker, and a crash loses at most what the producer's own queue would hold.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clickmatch_kafka::Publisher;
use tokio::sync::Notify;

/// How long the first click of a flush waits for others.
pub const COALESCE: Duration = Duration::from_millis(5);

pub struct ClickBuffer {
    publisher: Publisher,
    topic: String,
    /// Click ID (the record's key) and encoded record.
    records: Mutex<Vec<(String, Vec<u8>)>>,
    wake: Notify,
    closed: AtomicBool,
}

impl ClickBuffer {
    /// A buffer for `topic`; [`ClickBuffer::run`] must run for clicks to leave it.
    pub fn new(publisher: Publisher, topic: String) -> Arc<ClickBuffer> {
        Arc::new(ClickBuffer {
            publisher,
            topic,
            records: Mutex::new(Vec::new()),
            wake: Notify::new(),
            closed: AtomicBool::new(false),
        })
    }

    /// The producer the clicks go to (its delivery reports go to `ClickDeliveries`).
    pub fn publisher(&self) -> &Publisher {
        &self.publisher
    }

    /// Queues a click for the next flush (at once after [`ClickBuffer::close`]).
    pub fn push(&self, key: String, record: Vec<u8>) {
        let first = {
            let mut records = self.records.lock().expect("click buffer lock");
            records.push((key, record));
            records.len() == 1
        };
        if self.closed.load(Ordering::Acquire) {
            self.send_buffered();
        } else if first {
            self.wake.notify_one();
        }
    }

    /// Hands every buffered click to the producer.
    pub fn send_buffered(&self) {
        let records = std::mem::take(&mut *self.records.lock().expect("click buffer lock"));
        for (key, record) in records {
            self.publisher.send_and_forget(&self.topic, &key, &record);
        }
    }

    /// Flushes [`COALESCE`] after the first click of each flush, until closed.
    pub async fn run(self: Arc<Self>) {
        while !self.closed.load(Ordering::Acquire) {
            self.wake.notified().await;
            tokio::time::sleep(COALESCE).await;
            self.send_buffered();
        }
        self.send_buffered();
    }

    /// Stops [`ClickBuffer::run`] and hands over what is buffered; later clicks go straight
    /// to the producer.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.wake.notify_one();
        self.send_buffered();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::atomic::AtomicUsize;
    use std::time::Instant;

    use clickmatch_kafka::{ForgottenDeliveries, Undelivered};
    use clickmatch_testbed::LocalBroker;

    use super::*;

    const TOPIC: &str = "clicks";

    #[derive(Default)]
    struct Count {
        delivered: AtomicUsize,
        undelivered: AtomicUsize,
    }

    impl ForgottenDeliveries for Count {
        fn delivered(&self) {
            self.delivered.fetch_add(1, Ordering::SeqCst);
        }
        fn undelivered(&self, _record: Undelivered) {
            self.undelivered.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn buffer(broker: &LocalBroker, count: &Arc<Count>) -> Arc<ClickBuffer> {
        let publisher = Publisher::with_forgotten_deliveries(
            broker.bootstrap_servers(),
            &BTreeMap::new(),
            count.clone(),
        )
        .unwrap();
        ClickBuffer::new(publisher, TOPIC.to_string())
    }

    async fn wait_delivered(count: &Count, expected: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while count.delivered.load(Ordering::SeqCst) < expected {
            assert!(Instant::now() < deadline, "not every click was delivered");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(count.delivered.load(Ordering::SeqCst), expected);
        assert_eq!(count.undelivered.load(Ordering::SeqCst), 0);
    }

    fn push(buffer: &ClickBuffer, n: usize) {
        for i in 0..n {
            buffer.push(format!("click-{i}"), format!("{{\"n\":{i}}}").into_bytes());
        }
    }

    #[tokio::test]
    async fn every_click_pushed_reaches_the_broker_in_bursts() {
        let broker = LocalBroker::start(&[TOPIC], 4).unwrap();
        let count = Arc::new(Count::default());
        let buffer = buffer(&broker, &count);
        let runner = tokio::spawn(buffer.clone().run());
        push(&buffer, 500);
        wait_delivered(&count, 500).await;
        // A second burst after the first flush went out.
        push(&buffer, 100);
        wait_delivered(&count, 600).await;
        buffer.close();
        tokio::time::timeout(Duration::from_secs(5), runner)
            .await
            .expect("run returns once closed")
            .unwrap();
    }

    #[tokio::test]
    async fn closing_hands_over_what_is_buffered_and_later_clicks_go_straight_through() {
        let broker = LocalBroker::start(&[TOPIC], 4).unwrap();
        let count = Arc::new(Count::default());
        let buffer = buffer(&broker, &count);
        // Nothing flushes without `run`: the clicks wait in the buffer.
        push(&buffer, 5);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(count.delivered.load(Ordering::SeqCst), 0);
        buffer.close();
        wait_delivered(&count, 5).await;
        push(&buffer, 1);
        wait_delivered(&count, 6).await;
    }
}
