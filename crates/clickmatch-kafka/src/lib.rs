//! Kafka adapters for clickmatch, all through rdkafka with ordinary bootstrap servers, so they
//! run unchanged against Apache Kafka, Redpanda or librdkafka's mock cluster (the local broker
//! of `clickmatch dev` and the tests, in the `clickmatch-testbed` crate).

pub mod consumer;
pub mod offsets;
pub mod producer;
pub mod topics;

pub use producer::{ForgottenDeliveries, PublishError, Publisher, Stored, Undelivered};

/// Errors at this crate's boundary.
#[derive(Debug, thiserror::Error)]
pub enum KafkaAdapterError {
    #[error("kafka client: {0}")]
    Client(#[from] rdkafka::error::KafkaError),
    #[error("local broker: {0}")]
    Broker(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("a producer must be created inside a tokio runtime, which serves its deliveries")]
    NoRuntime,
}
