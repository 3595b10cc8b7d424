//! Outbound postbacks: each attributed conversion reported to its campaign's traffic source.
//!
//! The joiner publishes every attributed conversion version, once ClickHouse has it, to
//! `kafka.outbound_topic` (at least once). The dispatcher here is a consumer group of its own
//! on that topic; never the request path. Per batch of records:
//!
//! 1. each record's campaign says what to do ([`delivery::intent`]): fire its `postback_url`,
//!    record a test conversion as skipped, or nothing;
//! 2. `outbound_deliveries` says what is already recorded for the batch's idempotency keys
//!    (`conversion_id:version`): a delivery recorded as delivered (or otherwise final) is never
//!    fired again, and a replayed unfinished one continues its attempt count;
//! 3. what the template takes from the click comes from the conversion when it carries it
//!    (the subs of `[joiner] conversion_subs`), otherwise from ClickHouse's `clicks` row (the
//!    click's `source`, other subs): a batch whose templates need only carried subs reads no
//!    clicks;
//! 4. rounds of attempts, concurrently within a round: a `GET` of the rendered URL with the key
//!    in an `Idempotency-Key` header; 2xx is delivered, no answer, 5xx, 408, 425 and 429 are
//!    retried after an exponential backoff until `max_attempts`, anything else fails at once;
//!    each round's attempt rows are written to ClickHouse (retried until acknowledged) before
//!    the next round, so a crash loses no delivered mark;
//! 5. the batch's Kafka offsets are committed only when every delivery of the batch reached a
//!    final state and its rows are in ClickHouse.
//!
//! A shutdown stops between rounds: attempt rows written so far stay, the batch is not
//! committed, and the next run continues where the rows say.

pub mod delivery;
pub mod metrics;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use clickmatch_clickhouse::{ClickHouseError, ClickHouseSettings, OutboundRow, OutboundStore};
use clickmatch_config::{KafkaConfig, OutboundConfig};
use clickmatch_core::backoff::Backoff;
use clickmatch_core::clock::now_ms;
use clickmatch_core::model::Account;
use clickmatch_core::records::OutboundRecord;
use clickmatch_kafka::consumer::consumer_config;
use clickmatch_kafka::offsets::CommitPositions;
use futures::future::{BoxFuture, FutureExt};
use futures::StreamExt;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Message, OwnedMessage};
use tokio::sync::watch;

pub use delivery::{AttemptClass, Delivery, IDEMPOTENCY_HEADER};
pub use metrics::OutboundMetrics;

/// Errors that stop the dispatcher (everything else is retried or counted and skipped).
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error(transparent)]
    ClickHouse(#[from] ClickHouseError),
    #[error("HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// How long a batch waits for more records once it has one.
const BATCH_LINGER: Duration = Duration::from_millis(20);
/// Backoff of ClickHouse reads and writes that failed.
const CLICKHOUSE_RETRY_INITIAL: Duration = Duration::from_millis(200);
const CLICKHOUSE_RETRY_MAX: Duration = Duration::from_secs(10);
/// Bytes of a failed answer's body kept in the attempt's `error`.
const ERROR_BODY_BYTES: usize = 200;

/// The outbound dispatcher.
pub struct Dispatcher {
    account: Arc<ArcSwap<Account>>,
    kafka: KafkaConfig,
    config: OutboundConfig,
    store: OutboundStore,
    http: reqwest::Client,
    metrics: OutboundMetrics,
}

impl Dispatcher {
    /// Builds the dispatcher (no I/O). `account` is shared with the reload loop: campaigns'
    /// templates are read from it per batch.
    pub fn new(
        account: Arc<ArcSwap<Account>>,
        kafka: KafkaConfig,
        config: OutboundConfig,
        clickhouse: &ClickHouseSettings,
        metrics: OutboundMetrics,
    ) -> Result<Dispatcher, OutboundError> {
        let timeout = Duration::from_millis(config.request_timeout_ms);
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::limited(5))
            .user_agent(concat!("clickmatch-outbound/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Dispatcher {
            account,
            kafka,
            config,
            store: OutboundStore::new(clickhouse)?,
            http,
            metrics,
        })
    }

    fn consumer(&self) -> Result<StreamConsumer, KafkaError> {
        let mut config = consumer_config(
            &self.kafka.bootstrap_servers,
            &self.config.group_id,
            &self.kafka.properties,
        );
        config.set("statistics.interval.ms", "0");
        // A batch holds the consumer for as long as its retries take; the group must not
        // evict it meanwhile.
        if !self.kafka.properties.contains_key("max.poll.interval.ms") {
            let needed = self.config.worst_case_ms().saturating_add(60_000);
            config.set(
                "max.poll.interval.ms",
                needed.clamp(300_000, i32::MAX as u64).to_string(),
            );
        }
        config.create()
    }

    /// Runs until `shutdown` resolves.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), OutboundError> {
        let consumer = self.consumer()?;
        consumer.subscribe(&[&self.kafka.outbound_topic])?;
        tracing::info!(topic = %self.kafka.outbound_topic, group = %self.config.group_id, "outbound dispatcher started");
        let (stop_tx, stop) = watch::channel(false);
        let main = self.main_loop(&consumer, stop);
        tokio::pin!(main);
        let result = tokio::select! {
            result = &mut main => result,
            _ = shutdown => {
                let _ = stop_tx.send(true);
                main.await
            }
        };
        consumer.unsubscribe();
        result
    }

    async fn main_loop(
        &self,
        consumer: &StreamConsumer,
        mut stop: watch::Receiver<bool>,
    ) -> Result<(), OutboundError> {
        loop {
            let Some(batch) = self.next_batch(consumer, &mut stop).await else {
                return Ok(());
            };
            if !self.process(&batch, &mut stop).await {
                // Stopped mid-batch: nothing committed; the rows say where to continue.
                return Ok(());
            }
            self.commit(consumer, &batch);
        }
    }

    /// Waits for a record, then takes what follows within [`BATCH_LINGER`], up to the batch
    /// size. `None` on shutdown.
    async fn next_batch(
        &self,
        consumer: &StreamConsumer,
        stop: &mut watch::Receiver<bool>,
    ) -> Option<Vec<OwnedMessage>> {
        let mut batch = Vec::new();
        loop {
            if *stop.borrow() {
                return None;
            }
            tokio::select! {
                _ = stop.changed() => return None,
                message = consumer.recv() => match message {
                    Ok(message) => {
                        batch.push(message.detach());
                        break;
                    }
                    Err(error) => tracing::warn!(error = %error, "outbound consumer error"),
                }
            }
        }
        while batch.len() < self.config.batch_max_records {
            match tokio::time::timeout(BATCH_LINGER, consumer.recv()).await {
                Ok(Ok(message)) => batch.push(message.detach()),
                Ok(Err(error)) => tracing::warn!(error = %error, "outbound consumer error"),
                Err(_) => break,
            }
        }
        Some(batch)
    }

    fn count(&self, result: &str) {
        self.metrics.records.with_label_values(&[result]).inc();
    }

    /// Brings every record of the batch to a final state with its rows in ClickHouse; `false`
    /// when a shutdown interrupted it.
    async fn process(&self, batch: &[OwnedMessage], stop: &mut watch::Receiver<bool>) -> bool {
        let account = self.account.load_full();
        let mut seen = HashSet::new();
        let mut to_fire: Vec<(OutboundRecord, String)> = Vec::new();
        let mut skipped_rows = Vec::new();
        for message in batch {
            let record = match OutboundRecord::decode(message.payload().unwrap_or_default()) {
                Ok(record) => record,
                Err(error) => {
                    self.count("unreadable");
                    tracing::warn!(topic = message.topic(), partition = message.partition(), offset = message.offset(), error = %error, "unreadable outbound record skipped");
                    continue;
                }
            };
            if !seen.insert(record.idempotency_key()) {
                self.count("duplicate_in_batch");
                continue;
            }
            match delivery::intent(&record, &account, &self.config) {
                delivery::Intent::Fire { template } => to_fire.push((record, template)),
                delivery::Intent::SkipTest => {
                    self.count("skipped_test");
                    skipped_rows.push(delivery::skipped_row(&record, now_ms()));
                }
                delivery::Intent::Ignore(result) => {
                    self.count(result);
                    tracing::debug!(
                        conversion_id = %record.conversion.conversion_id,
                        campaign = %record.conversion.campaign_id,
                        result,
                        "outbound record not fired"
                    );
                }
            }
        }
        if !self.write_rows(&skipped_rows, stop).await {
            return false;
        }
        if to_fire.is_empty() {
            return true;
        }

        let keys: Vec<String> = to_fire.iter().map(|(r, _)| r.idempotency_key()).collect();
        let Some(recorded) = self
            .retry_clickhouse("read_deliveries", stop, || self.store.recorded(&keys))
            .await
        else {
            return false;
        };
        let need_clicks: Vec<String> = to_fire
            .iter()
            .filter(|(r, template)| Delivery::needs_click(r, template))
            .map(|(r, _)| r.conversion.click_id.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let clicks = if need_clicks.is_empty() {
            HashMap::new()
        } else {
            let read = || self.store.click_subs(&need_clicks);
            let Some(clicks) = self.retry_clickhouse("read_clicks", stop, read).await else {
                return false;
            };
            clicks
        };

        let mut deliveries = Vec::new();
        for (record, template) in &to_fire {
            match Delivery::plan(
                record,
                template,
                recorded.get(&record.idempotency_key()),
                clicks.get(&record.conversion.click_id),
                self.config.max_attempts,
            ) {
                Some(delivery) => deliveries.push(delivery),
                None => self.count("already_done"),
            }
        }
        self.deliver(deliveries, stop).await
    }

    /// Rounds of attempts until every delivery is final. `false` when stopped.
    async fn deliver(&self, mut pending: Vec<Delivery>, stop: &mut watch::Receiver<bool>) -> bool {
        let mut round = 0u32;
        while !pending.is_empty() {
            self.metrics.in_flight.set(pending.len() as i64);
            if round > 0 {
                let wait = delivery::backoff(&self.config, round, rand::random::<f64>());
                if !sleep_or_stop(wait, stop).await {
                    return false;
                }
            }
            round += 1;
            // Boxed: keeps the future `Send` for any lifetime (rustc cannot prove it through
            // `buffer_unordered` over borrowing closures otherwise).
            let requests: Vec<BoxFuture<'_, (usize, delivery::Attempt)>> = pending
                .iter()
                .enumerate()
                .map(|(i, d)| async move { (i, self.attempt(d).await) }.boxed())
                .collect();
            let attempts: Vec<(usize, delivery::Attempt)> = futures::stream::iter(requests)
                .buffer_unordered(self.config.concurrency)
                .collect()
                .await;
            let mut rows = Vec::with_capacity(attempts.len());
            let mut finished = vec![false; pending.len()];
            for (i, attempt) in &attempts {
                let delivery = &pending[*i];
                let row = delivery::attempt_row(delivery, delivery.next_attempt, attempt);
                self.log_attempt(delivery, &row, attempt);
                finished[*i] = row.is_final;
                rows.push(row);
            }
            if !self.write_rows(&rows, stop).await {
                return false;
            }
            let mut next = Vec::with_capacity(pending.len());
            for (i, mut delivery) in pending.into_iter().enumerate() {
                if !finished[i] {
                    delivery.next_attempt += 1;
                    next.push(delivery);
                }
            }
            pending = next;
        }
        self.metrics.in_flight.set(0);
        true
    }

    fn log_attempt(&self, delivery: &Delivery, row: &OutboundRow, attempt: &delivery::Attempt) {
        self.metrics
            .attempts
            .with_label_values(&[attempt.class.as_str()])
            .inc();
        self.metrics
            .attempt_duration
            .observe(attempt.duration.as_secs_f64());
        match row.state.as_str() {
            "delivered" => {
                self.count("delivered");
                tracing::debug!(key = %delivery.key, attempt = row.attempt, status = row.http_status, "outbound postback delivered");
            }
            "failed" => {
                self.count("failed");
                tracing::warn!(key = %delivery.key, campaign = %row.campaign_id, attempt = row.attempt, status = row.http_status, error = %row.error, "outbound postback failed for good");
            }
            _ => {
                tracing::info!(key = %delivery.key, campaign = %row.campaign_id, attempt = row.attempt, status = row.http_status, error = %row.error, "outbound postback attempt failed; will retry");
            }
        }
    }

    /// One HTTP attempt.
    async fn attempt(&self, delivery: &Delivery) -> delivery::Attempt {
        let started_ms = now_ms();
        let started = Instant::now();
        let url = match &delivery.url {
            Ok(url) => url,
            Err(why) => {
                return delivery::Attempt {
                    status: 0,
                    class: AttemptClass::Permanent,
                    error: why.clone(),
                    started_ms,
                    duration: Duration::ZERO,
                }
            }
        };
        let sent = self
            .http
            .get(url)
            .header(IDEMPOTENCY_HEADER, &delivery.key)
            .send()
            .await;
        let (status, class, error) = match sent {
            Ok(response) => {
                let status = response.status().as_u16();
                let class = delivery::classify_status(status);
                let error = if class == AttemptClass::Delivered {
                    String::new()
                } else {
                    let body = error_body(response).await;
                    if body.is_empty() {
                        format!("HTTP {status}")
                    } else {
                        format!("HTTP {status}: {body}")
                    }
                };
                (status, class, error)
            }
            Err(error) => {
                let kind = if error.is_timeout() {
                    "timed out"
                } else if error.is_connect() {
                    "cannot connect"
                } else {
                    "request failed"
                };
                (
                    0,
                    AttemptClass::Retryable,
                    format!("{kind}: {}", error_chain(&error)),
                )
            }
        };
        delivery::Attempt {
            status,
            class,
            error,
            started_ms,
            duration: started.elapsed(),
        }
    }

    /// Writes rows, retrying until ClickHouse acknowledges them. `false` when stopped first.
    async fn write_rows(&self, rows: &[OutboundRow], stop: &mut watch::Receiver<bool>) -> bool {
        if rows.is_empty() {
            return true;
        }
        self.retry_clickhouse("write", stop, || self.store.write(rows))
            .await
            .is_some()
    }

    /// Runs `operation` until it succeeds, with backoff; `None` when stopped first.
    async fn retry_clickhouse<T, F, Fut>(
        &self,
        name: &'static str,
        stop: &mut watch::Receiver<bool>,
        operation: F,
    ) -> Option<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, ClickHouseError>>,
    {
        let mut backoff = Backoff::new(CLICKHOUSE_RETRY_INITIAL, CLICKHOUSE_RETRY_MAX);
        loop {
            match operation().await {
                Ok(value) => return Some(value),
                Err(error) => {
                    self.metrics
                        .clickhouse_errors
                        .with_label_values(&[name])
                        .inc();
                    let delay = backoff.step();
                    tracing::error!(operation = name, error = %error, retry_in_ms = delay.as_millis() as u64, "outbound dispatcher cannot use ClickHouse");
                    if !sleep_or_stop(delay, stop).await {
                        return None;
                    }
                }
            }
        }
    }

    fn commit(&self, consumer: &StreamConsumer, batch: &[OwnedMessage]) {
        let mut positions = CommitPositions::default();
        for message in batch {
            positions.advance(message.topic(), message.partition(), message.offset() + 1);
        }
        if positions.is_empty() {
            return;
        }
        match consumer.commit(&positions.to_list(), CommitMode::Async) {
            Ok(()) => self.metrics.commits.with_label_values(&["ok"]).inc(),
            Err(error) => {
                self.metrics.commits.with_label_values(&["error"]).inc();
                // The rows are in ClickHouse: a replay finds them and fires nothing again.
                tracing::warn!(error = %error, "outbound offset commit failed");
            }
        }
    }
}

/// Sleeps `wait` unless stopped first; `false` when stopped.
async fn sleep_or_stop(wait: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return false;
    }
    tokio::select! {
        _ = tokio::time::sleep(wait) => true,
        _ = stop.changed() => false,
    }
}

/// The start of a failed answer's body, on one line.
async fn error_body(mut response: reqwest::Response) -> String {
    let mut body = Vec::new();
    while body.len() < ERROR_BODY_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    body.truncate(ERROR_BODY_BYTES);
    String::from_utf8_lossy(&body)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
