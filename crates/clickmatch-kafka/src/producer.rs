//! The acked producer: idempotent, `acks=all`, murmur2 partitioning like the Java clients, so
//! records keyed by click ID land on the same partition number in both topics.
//!
//! Every record's delivery report arrives in one producer-context callback on librdkafka's
//! polling thread. A record someone waits for carries a oneshot sender there; a record sent
//! with [`Publisher::send_and_forget`] carries nothing, and its outcome goes to the publisher's
//! [`ForgottenDeliveries`] handler — no future and no task per record, so no cross-thread wake
//! per record either.
//!
//! The callbacks run on the tokio runtime that created the publisher, not on a polling thread of
//! their own: librdkafka writes a byte to a pipe when its event queue gets an event, and a task
//! waiting on that pipe serves the queue (see [`serve_events`]). Waking an awaiting handler is
//! then a wake on the same runtime, and a busy runtime picks the events up without a thread
//! switch.

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use rdkafka::bindings as rdsys;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::ClientContext;
use tokio::net::unix::pipe;
use tokio::sync::oneshot;

use crate::KafkaAdapterError;

/// How long [`Publisher::publish`] retries a full producer queue before giving up.
const ENQUEUE_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause between those retries.
const ENQUEUE_RETRY_PAUSE: Duration = Duration::from_millis(10);

/// Why a record was not stored.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("the broker did not acknowledge the record: {0}")]
    NotAcknowledged(KafkaError),
    #[error("the producer queue is full or closed: {0}")]
    Enqueue(KafkaError),
    #[error("no acknowledgement within {0:?}")]
    Deadline(Duration),
}

impl PublishError {
    fn is_queue_full(&self) -> bool {
        matches!(
            self,
            PublishError::Enqueue(KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull))
        )
    }
}

/// Where an acknowledged record was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    pub partition: i32,
    pub offset: i64,
}

/// A record sent with [`Publisher::send_and_forget`] that the broker did not take, handed back
/// whole so that its sender can keep it elsewhere.
#[derive(Debug)]
pub struct Undelivered {
    pub topic: String,
    pub key: String,
    pub payload: Vec<u8>,
    pub error: PublishError,
}

/// Learns the outcome of every record sent with [`Publisher::send_and_forget`]. Called on
/// librdkafka's polling thread (or the sender's, when the producer refuses the record at
/// once): it must not block.
pub trait ForgottenDeliveries: Send + Sync + 'static {
    /// The broker acknowledged a record.
    fn delivered(&self);
    /// The broker did not take a record (after librdkafka's own retries), or the producer
    /// refused it.
    fn undelivered(&self, record: Undelivered);
}

/// The handler of a publisher nobody gave one: a lost record is at least logged.
struct LogUndelivered;

impl ForgottenDeliveries for LogUndelivered {
    fn delivered(&self) {}

    fn undelivered(&self, record: Undelivered) {
        tracing::error!(topic = record.topic, key = record.key, error = %record.error, "record lost: the broker did not take it");
    }
}

/// What a record's delivery report is for.
enum Delivery {
    /// Someone awaits the acknowledgement.
    Awaited(oneshot::Sender<Result<Stored, PublishError>>),
    /// Nobody waits: the outcome goes to the [`ForgottenDeliveries`] handler.
    Forgotten,
}

struct PublisherContext {
    forgotten: Arc<dyn ForgottenDeliveries>,
    /// Where librdkafka signals queued events. Dropped with the context, i.e. after the
    /// librdkafka handle: the reading end then sees the pipe closed and [`serve_events`] ends.
    _wakeup: OwnedFd,
}

impl ClientContext for PublisherContext {}

impl ProducerContext for PublisherContext {
    type DeliveryOpaque = Box<Delivery>;

    fn delivery(&self, result: &DeliveryResult<'_>, delivery: Box<Delivery>) {
        match *delivery {
            Delivery::Awaited(sender) => {
                // The receiver may be gone (a postback past its deadline): nothing to tell.
                let _ = sender.send(acknowledgement(result));
            }
            Delivery::Forgotten => match result {
                Ok(_) => self.forgotten.delivered(),
                Err((error, message)) => self.forgotten.undelivered(Undelivered {
                    topic: message.topic().to_string(),
                    key: String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned(),
                    payload: message.payload().unwrap_or_default().to_vec(),
                    error: PublishError::NotAcknowledged(error.clone()),
                }),
            },
        }
    }
}

fn acknowledgement(result: &DeliveryResult<'_>) -> Result<Stored, PublishError> {
    match result {
        Ok(message) => Ok(Stored {
            partition: message.partition(),
            offset: message.offset(),
        }),
        Err((error, _)) => Err(PublishError::NotAcknowledged(error.clone())),
    }
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

/// A producer that answers with the broker's acknowledgement ([`Publisher::publish`],
/// [`Publisher::enqueue`]) or reports it to a handler ([`Publisher::send_and_forget`]).
/// Create it inside a tokio runtime: that runtime serves its delivery reports.
#[derive(Clone)]
pub struct Publisher {
    producer: Arc<BaseProducer<PublisherContext>>,
}

impl Publisher {
    /// A publisher whose forgotten records, if any, are logged when lost.
    pub fn new(
        bootstrap_servers: &str,
        extra: &BTreeMap<String, String>,
    ) -> Result<Self, KafkaAdapterError> {
        Self::with_forgotten_deliveries(bootstrap_servers, extra, Arc::new(LogUndelivered))
    }

    /// A publisher that reports the outcome of [`Publisher::send_and_forget`] to `handler`.
    pub fn with_forgotten_deliveries(
        bootstrap_servers: &str,
        extra: &BTreeMap<String, String>,
        handler: Arc<dyn ForgottenDeliveries>,
    ) -> Result<Self, KafkaAdapterError> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| KafkaAdapterError::NoRuntime)?;
        let _entered = runtime.enter();
        let (wakeup, woken) = pipe::pipe()?;
        let wakeup = wakeup.into_nonblocking_fd()?;
        let wakeup_fd = wakeup.as_raw_fd();
        let context = PublisherContext {
            forgotten: handler,
            _wakeup: wakeup,
        };
        let producer: Arc<BaseProducer<PublisherContext>> =
            Arc::new(producer_config(bootstrap_servers, extra).create_with_context(context)?);
        let queue = EventQueue::of(&producer);
        queue.signal_events_to(wakeup_fd);
        runtime.spawn(serve_events(Arc::downgrade(&producer), queue, woken));
        Ok(Publisher { producer })
    }

    fn send(
        &self,
        topic: &str,
        key: &str,
        payload: &[u8],
        delivery: Delivery,
    ) -> Result<(), (KafkaError, Box<Delivery>)> {
        let record = BaseRecord::with_opaque_to(topic, Box::new(delivery))
            .key(key)
            .payload(payload);
        self.producer
            .send(record)
            .map_err(|(error, record)| (error, record.delivery_opaque))
    }

    /// Sends and waits for the broker's acknowledgement (acks=all); a full producer queue is
    /// retried for a few seconds.
    pub async fn publish(
        &self,
        topic: &str,
        key: &str,
        payload: &[u8],
    ) -> Result<Stored, PublishError> {
        let give_up = Instant::now() + ENQUEUE_TIMEOUT;
        loop {
            match self.enqueue(topic, key, payload) {
                Ok(acknowledgement) => return acknowledgement.await,
                Err(error) if error.is_queue_full() && Instant::now() < give_up => {
                    tokio::time::sleep(ENQUEUE_RETRY_PAUSE).await;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Hands the record to the producer queue without waiting for the broker; the returned
    /// future resolves with the acknowledgement.
    pub fn enqueue(
        &self,
        topic: &str,
        key: &str,
        payload: &[u8],
    ) -> Result<
        impl std::future::Future<Output = Result<Stored, PublishError>> + Send + 'static,
        PublishError,
    > {
        let (sender, receiver) = oneshot::channel();
        self.send(topic, key, payload, Delivery::Awaited(sender))
            .map_err(|(error, _)| PublishError::Enqueue(error))?;
        Ok(async move {
            receiver
                .await
                .unwrap_or(Err(PublishError::NotAcknowledged(KafkaError::Canceled)))
        })
    }

    /// Hands the record to the producer queue; its outcome goes to this publisher's
    /// [`ForgottenDeliveries`] handler, a refusal by the producer at once. Used where the
    /// caller must not wait (the visitor's redirect) but a failure must still be handled.
    pub fn send_and_forget(&self, topic: &str, key: &str, payload: &[u8]) {
        if let Err((error, _)) = self.send(topic, key, payload, Delivery::Forgotten) {
            self.producer.context().forgotten.undelivered(Undelivered {
                topic: topic.to_string(),
                key: key.to_string(),
                payload: payload.to_vec(),
                error: PublishError::Enqueue(error),
            });
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

/// The producer's event queue (delivery reports, errors), as librdkafka's C handle.
struct EventQueue(*mut rdsys::rd_kafka_queue_t);

// SAFETY: librdkafka queue handles may be used from any thread (the queue locks itself).
unsafe impl Send for EventQueue {}

impl EventQueue {
    fn of(producer: &BaseProducer<PublisherContext>) -> EventQueue {
        // SAFETY: the client pointer is valid while `producer` lives; the returned handle holds
        // its own reference to the queue.
        EventQueue(unsafe { rdsys::rd_kafka_queue_get_main(producer.client().native_ptr()) })
    }

    /// librdkafka writes one byte to `fd` whenever the queue gets an event while it was empty
    /// since it was last served.
    fn signal_events_to(&self, fd: std::os::fd::RawFd) {
        const BYTE: &[u8] = b"e";
        // SAFETY: valid queue handle; librdkafka copies the payload.
        unsafe { rdsys::rd_kafka_queue_io_event_enable(self.0, fd, BYTE.as_ptr().cast(), 1) }
    }

    fn len(&self) -> usize {
        // SAFETY: valid queue handle.
        unsafe { rdsys::rd_kafka_queue_length(self.0) }
    }
}

impl Drop for EventQueue {
    fn drop(&mut self) {
        // SAFETY: the handle came from rd_kafka_queue_get_main and is released once.
        unsafe { rdsys::rd_kafka_queue_destroy(self.0) }
    }
}

/// Runs the producer's callbacks whenever librdkafka signals an event, until the producer is
/// dropped (its end of the pipe closes with it).
async fn serve_events(
    producer: Weak<BaseProducer<PublisherContext>>,
    queue: EventQueue,
    woken: pipe::Receiver,
) {
    let mut signals = [0u8; 64];
    loop {
        if woken.readable().await.is_err() {
            return;
        }
        // Empty the pipe before serving: an event queued after this point leaves a new byte.
        loop {
            match woken.try_read(&mut signals) {
                Ok(0) => return,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => return,
            }
        }
        let Some(producer) = producer.upgrade() else {
            return;
        };
        // One poll serves one event: a whole batch of delivery reports.
        while queue.len() > 0 {
            producer.poll(Duration::ZERO);
        }
    }
}
