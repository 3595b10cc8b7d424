//! The acked producer: idempotent, `acks=all`, murmur2 partitioning like the Java clients, so
//! records keyed by click ID land on the same partition number in both topics.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;

use crate::KafkaAdapterError;

/// Why a record was not stored.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("the broker did not acknowledge the record: {0}")]
    NotAcknowledged(rdkafka::error::KafkaError),
    #[error("the producer queue is full or closed: {0}")]
    Enqueue(rdkafka::error::KafkaError),
    #[error("no acknowledgement within {0:?}")]
    Deadline(Duration),
}

/// Where an acknowledged record was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    pub partition: i32,
    pub offset: i64,
}

/// Producer configuration shared by ingest and tools. `extra` is passed through to librdkafka.
pub fn producer_config(bootstrap_servers: &str, extra: &BTreeMap<String, String>) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap_servers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        // The Java clients' partitioner: other producers keyed by click ID co-partition too.
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "2")
        .set("message.timeout.ms", "10000")
        .set("queue.buffering.max.messages", "1000000");
    for (key, value) in extra {
        config.set(key, value);
    }
    config
}

/// A thin wrapper over `FutureProducer` that answers with the broker's acknowledgement.
#[derive(Clone)]
pub struct Publisher {
    producer: FutureProducer,
}

impl Publisher {
    pub fn new(
        bootstrap_servers: &str,
        extra: &BTreeMap<String, String>,
    ) -> Result<Self, KafkaAdapterError> {
        let producer = producer_config(bootstrap_servers, extra).create()?;
        Ok(Publisher { producer })
    }

    pub fn producer(&self) -> &FutureProducer {
        &self.producer
    }

    /// Sends and waits for the broker's acknowledgement (acks=all).
    pub async fn publish(
        &self,
        topic: &str,
        key: &str,
        payload: &[u8],
    ) -> Result<Stored, PublishError> {
        let record = FutureRecord::to(topic).key(key).payload(payload);
        match self
            .producer
            .send(record, Timeout::After(Duration::from_secs(5)))
            .await
        {
            Ok(delivery) => Ok(Stored {
                partition: delivery.partition,
                offset: delivery.offset,
            }),
            Err((error, _)) => Err(PublishError::NotAcknowledged(error)),
        }
    }

    /// Hands the record to the producer queue without waiting for the broker; the returned
    /// future resolves with the acknowledgement. Used where the caller must not wait (the
    /// visitor's redirect) but must still learn about a failure.
    pub fn enqueue(
        &self,
        topic: &str,
        key: &str,
        payload: &[u8],
    ) -> Result<
        impl std::future::Future<Output = Result<Stored, PublishError>> + Send + 'static,
        PublishError,
    > {
        let record = FutureRecord::to(topic).key(key).payload(payload);
        match self.producer.send_result(record) {
            Ok(delivery) => Ok(async move {
                match delivery.await {
                    Ok(Ok(delivery)) => Ok(Stored {
                        partition: delivery.partition,
                        offset: delivery.offset,
                    }),
                    Ok(Err((error, _))) => Err(PublishError::NotAcknowledged(error)),
                    Err(_canceled) => Err(PublishError::NotAcknowledged(
                        rdkafka::error::KafkaError::Canceled,
                    )),
                }
            }),
            Err((error, _)) => Err(PublishError::Enqueue(error)),
        }
    }

    /// True when the cluster answers a metadata request within `timeout`.
    pub fn is_reachable(&self, timeout: Duration) -> bool {
        self.producer.client().fetch_metadata(None, timeout).is_ok()
    }

    /// Waits for queued records to be delivered.
    pub fn flush(&self, timeout: Duration) -> Result<(), KafkaAdapterError> {
        self.producer.flush(timeout)?;
        Ok(())
    }
}
