//! The joiner loop against a fake source and a fake sink: rows before offsets, pending
//! postbacks holding their offset back, real commit answers, revokes answered only once their
//! rows are safe, and backpressure while the sink is slow or failing.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clickmatch_config::Config;
use clickmatch_core::clock::now_ms;
use clickmatch_core::model::Account;
use clickmatch_core::records::{
    ClickRecord, IngestVerdict, Outcome, PostbackRecord, RECORD_VERSION,
};
use clickmatch_kafka::offsets::CommitPositions;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use tokio::sync::{mpsc, oneshot};

use crate::sink::Sink;
use crate::source::{Event, Record, Source, StartAt, Topic, TopicPartition};
use crate::{Joiner, JoinerMetrics, CHUNK};

/// What the fakes saw, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Call {
    /// Rows written: click IDs, then outcomes as `attributed:<click>` or `<reason>`.
    Write(Vec<String>),
    Commit(Vec<(String, i32, i64)>),
    CommitSync(Vec<(String, i32, i64)>),
    Pause(Vec<TopicPartition>),
    Resume(Vec<TopicPartition>),
}

type Log = Arc<Mutex<Vec<Call>>>;

fn positions_of(positions: &CommitPositions) -> Vec<(String, i32, i64)> {
    let mut out = Vec::new();
    for topic in ["clicks", "postbacks"] {
        for partition in 0..4 {
            if let Some(next) = positions.get(topic, partition) {
                out.push((topic.to_string(), partition, next));
            }
        }
    }
    out
}

struct FakeSource {
    log: Log,
    events: mpsc::Sender<Event>,
    /// Commits still to be rejected by the "broker".
    rejections: AtomicUsize,
    highs: Mutex<HashMap<TopicPartition, i64>>,
}

impl Source for FakeSource {
    fn topic_name(&self, topic: Topic) -> &str {
        match topic {
            Topic::Clicks => "clicks",
            Topic::Postbacks => "postbacks",
        }
    }

    fn pause(&self, partitions: &[TopicPartition]) -> Result<(), KafkaError> {
        self.log
            .lock()
            .unwrap()
            .push(Call::Pause(partitions.to_vec()));
        Ok(())
    }

    fn resume(&self, partitions: &[TopicPartition]) -> Result<(), KafkaError> {
        self.log
            .lock()
            .unwrap()
            .push(Call::Resume(partitions.to_vec()));
        Ok(())
    }

    fn commit(&self, positions: &CommitPositions) -> Result<(), KafkaError> {
        self.log
            .lock()
            .unwrap()
            .push(Call::Commit(positions_of(positions)));
        let rejected = self
            .rejections
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok();
        let result = if rejected {
            Err(KafkaError::ConsumerCommit(
                RDKafkaErrorCode::RebalanceInProgress,
            ))
        } else {
            Ok(())
        };
        // The answer comes later, like the commit callback's.
        let events = self.events.clone();
        let positions = positions.clone();
        tokio::spawn(async move {
            let _ = events.send(Event::Committed { positions, result }).await;
        });
        Ok(())
    }

    fn commit_sync(&self, positions: &CommitPositions) -> Result<(), KafkaError> {
        self.log
            .lock()
            .unwrap()
            .push(Call::CommitSync(positions_of(positions)));
        Ok(())
    }

    fn committed(
        &self,
        _partitions: &[TopicPartition],
    ) -> Result<HashMap<TopicPartition, i64>, KafkaError> {
        Ok(HashMap::new())
    }

    fn high_watermark(&self, partition: TopicPartition) -> Option<i64> {
        self.highs.lock().unwrap().get(&partition).copied()
    }

    fn fetch_high_watermark(&self, partition: TopicPartition) -> Result<i64, KafkaError> {
        Ok(self.high_watermark(partition).unwrap_or(0))
    }
}

#[derive(Debug, thiserror::Error)]
#[error("fake sink refused the batch")]
struct Refused;

struct FakeSink {
    log: Log,
    /// Writes still to be refused.
    refusals: AtomicUsize,
    delay: Duration,
}

impl Sink for FakeSink {
    type Error = Refused;

    async fn write(&self, clicks: &[ClickRecord], outcomes: &[Outcome]) -> Result<(), Refused> {
        tokio::time::sleep(self.delay).await;
        if self
            .refusals
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(Refused);
        }
        let mut rows: Vec<String> = clicks.iter().map(|c| c.click_id.clone()).collect();
        rows.extend(outcomes.iter().map(|o| match o {
            Outcome::Attributed(c) => format!("attributed:{}", c.click_id),
            Outcome::Unattributed(u) => u.reason.as_str().to_string(),
        }));
        self.log.lock().unwrap().push(Call::Write(rows));
        Ok(())
    }

    fn is_retryable(_: &Refused) -> bool {
        true
    }
}

struct Harness {
    account: Account,
    log: Log,
    events: mpsc::Sender<Event>,
    source: Arc<FakeSource>,
    metrics: JoinerMetrics,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    _state: tempfile::TempDir,
}

struct Setup {
    batch_max_rows: usize,
    batch_max_ms: u64,
    batch_early_rows: usize,
    sink_refusals: usize,
    sink_delay: Duration,
    commit_rejections: usize,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            batch_max_rows: 1000,
            batch_max_ms: 20,
            batch_early_rows: 1000,
            sink_refusals: 0,
            sink_delay: Duration::ZERO,
            commit_rejections: 0,
        }
    }
}

impl Harness {
    fn start(setup: Setup) -> Harness {
        let config = Config::demo(&BTreeMap::new()).expect("demo config");
        let state = tempfile::tempdir().unwrap();
        let mut joiner_config = config.joiner.clone();
        joiner_config.state_dir = state.path().display().to_string();
        joiner_config.batch_max_rows = setup.batch_max_rows;
        joiner_config.batch_max_ms = setup.batch_max_ms;
        joiner_config.batch_early_rows = setup.batch_early_rows;
        joiner_config.batch_early_ms = 50;
        joiner_config.retry_initial_ms = 10;
        joiner_config.retry_max_ms = 20;
        joiner_config.publish_outbound = false;
        let log: Log = Arc::default();
        let (events, receiver) = mpsc::channel(1024);
        let source = Arc::new(FakeSource {
            log: log.clone(),
            events: events.clone(),
            rejections: AtomicUsize::new(setup.commit_rejections),
            highs: Mutex::default(),
        });
        let sink = FakeSink {
            log: log.clone(),
            refusals: AtomicUsize::new(setup.sink_refusals),
            delay: setup.sink_delay,
        };
        let metrics = JoinerMetrics::new(&prometheus::Registry::new()).unwrap();
        let account = config.account.clone();
        let joiner = Joiner::new(
            Arc::new(arc_swap::ArcSwap::from_pointee(config.account)),
            config.kafka,
            joiner_config,
            sink,
            metrics.clone(),
        )
        .unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn({
            let source = source.clone();
            async move {
                let (result, _events) = joiner
                    .run_on(source, receiver, async {
                        let _ = stopped.await;
                    })
                    .await;
                result.expect("the joiner loop ends cleanly");
            }
        });
        Harness {
            account,
            log,
            events,
            source,
            metrics,
            stop: Some(stop),
            task,
            _state: state,
        }
    }

    /// Assigns partition 0 of both topics, as a first run (rebuild from the beginning).
    async fn assign(&self) {
        for topic in [Topic::Clicks, Topic::Postbacks] {
            self.source.highs.lock().unwrap().insert((topic, 0), 0);
        }
        let (reply, starts) = oneshot::channel();
        let partitions = vec![(Topic::Clicks, 0), (Topic::Postbacks, 0)];
        self.events
            .send(Event::Assign { partitions, reply })
            .await
            .unwrap();
        let starts = starts.await.unwrap();
        assert!(
            starts.iter().all(|(_, s)| *s == StartAt::Beginning),
            "{starts:?}"
        );
    }

    fn click(&self, n: u64) -> ClickRecord {
        let campaign = self
            .account
            .campaigns
            .values()
            .next()
            .expect("a demo campaign");
        let time_ms = now_ms() - 60_000;
        ClickRecord {
            v: RECORD_VERSION,
            click_id: self.account.signer.mint(time_ms, n).to_string(),
            time_ms,
            campaign_id: campaign.id.clone(),
            offer_id: campaign.offer_id.clone(),
            source: String::new(),
            subs: Vec::new(),
            ip: String::new(),
            user_agent: String::new(),
            country: String::new(),
            enrichment: Default::default(),
            is_test: false,
            foreign: false,
            cost: None,
        }
    }

    fn postback(&self, click: &ClickRecord) -> PostbackRecord {
        PostbackRecord {
            v: RECORD_VERSION,
            postback_id: format!("pb-{}", click.click_id),
            received_ms: now_ms(),
            method: "GET".into(),
            route: None,
            params: vec![
                ("cid".into(), click.click_id.clone()),
                ("payout".into(), "1.50".into()),
                ("offer".into(), click.offer_id.clone()),
            ],
            remote_ip: "127.0.0.1".into(),
            verdict: IngestVerdict::Accepted,
            key: String::new(),
            origin: Default::default(),
        }
    }

    /// Sends records of partition 0, raising the statistics' high watermark past them.
    async fn send(&self, topic: Topic, from: i64, payloads: Vec<Vec<u8>>) {
        let records: Vec<Record> = payloads
            .into_iter()
            .enumerate()
            .map(|(i, payload)| Record {
                topic,
                partition: 0,
                offset: from + i as i64,
                payload,
            })
            .collect();
        let end = records.last().map_or(from, |r| r.offset + 1);
        self.source.highs.lock().unwrap().insert((topic, 0), end);
        self.events.send(Event::Records(records)).await.unwrap();
    }

    fn calls(&self) -> Vec<Call> {
        self.log.lock().unwrap().clone()
    }

    /// Waits for `done`, up to a minute (generous: CI runs these beside heavy tests).
    async fn until(&self, what: &str, done: impl Fn(&[Call]) -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            if done(&self.calls()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("timed out waiting for {what}: {:#?}", self.calls());
    }

    fn commits(&self, result: &str) -> u64 {
        self.metrics.commits.with_label_values(&[result]).get()
    }

    async fn stop(mut self) -> Vec<Call> {
        let _ = self.stop.take().unwrap().send(());
        (&mut self.task).await.unwrap();
        self.calls()
    }
}

fn rows_written(calls: &[Call]) -> Vec<String> {
    calls
        .iter()
        .filter_map(|c| match c {
            Call::Write(rows) => Some(rows.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn has_commit(calls: &[Call], expected: &[(&str, i64)]) -> bool {
    let expected: Vec<_> = expected
        .iter()
        .map(|(t, n)| (t.to_string(), 0, *n))
        .collect();
    calls
        .iter()
        .any(|c| matches!(c, Call::Commit(p) | Call::CommitSync(p) if *p == expected))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_follow_acknowledged_rows_and_a_pending_postback_holds_its_offset() {
    let h = Harness::start(Setup::default());
    h.assign().await;
    let (a, b) = (h.click(1), h.click(2));
    // A's postback beats its click: it waits, and holds the postbacks offset at 0.
    h.send(Topic::Postbacks, 0, vec![h.postback(&a).encode()])
        .await;
    h.send(Topic::Clicks, 0, vec![b.encode()]).await;
    h.until("B's click committed", |c| has_commit(c, &[("clicks", 1)]))
        .await;
    assert!(!has_commit(&h.calls(), &[("clicks", 1), ("postbacks", 1)]));
    h.send(Topic::Clicks, 1, vec![a.encode()]).await;
    h.until("A's conversion committed", |c| {
        has_commit(c, &[("clicks", 2), ("postbacks", 1)])
    })
    .await;
    let calls = h.stop().await;
    let rows = rows_written(&calls);
    assert_eq!(
        rows,
        vec![
            b.click_id.clone(),
            a.click_id.clone(),
            format!("attributed:{}", a.click_id)
        ]
    );
    // Every commit comes after the write of the rows it covers.
    let first_commit_of_a = calls
        .iter()
        .position(|c| matches!(c, Call::Commit(p) if p.contains(&("postbacks".into(), 0, 1))))
        .unwrap();
    let write_of_a = calls
        .iter()
        .position(|c| matches!(c, Call::Write(r) if r.contains(&a.click_id)))
        .unwrap();
    assert!(write_of_a < first_commit_of_a, "{calls:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracked_offers_count_written_clicks_and_conversions_and_start_at_zero() {
    let h = Harness::start(Setup::default());
    h.assign().await;
    let (a, b) = (h.click(1), h.click(2));
    let test_click = ClickRecord {
        is_test: true,
        ..h.click(3)
    };
    h.send(
        Topic::Clicks,
        0,
        vec![a.encode(), b.encode(), test_click.encode()],
    )
    .await;
    h.send(Topic::Postbacks, 0, vec![h.postback(&a).encode()])
        .await;
    h.until("both topics committed", |c| {
        has_commit(c, &[("clicks", 3), ("postbacks", 1)])
    })
    .await;
    let metrics = h.metrics.clone();
    let offer = a.offer_id.clone();
    h.stop().await;
    assert_eq!(metrics.offer_clicks.with_label_values(&[&offer]).get(), 2);
    assert_eq!(
        metrics.offer_conversions.with_label_values(&[&offer]).get(),
        1
    );
    // Every tracked offer has its series, at 0 when nothing came: the alert can see a stop.
    let others: Vec<_> = tracked_offer_conversions(&metrics)
        .into_iter()
        .filter(|(name, _)| *name != offer)
        .collect();
    assert!(!others.is_empty(), "the demo tracks more than one offer");
    assert!(others.iter().all(|(_, n)| *n == 0), "{others:?}");
}

/// The offer labels of the conversions counter, with their values.
fn tracked_offer_conversions(metrics: &JoinerMetrics) -> Vec<(String, u64)> {
    use prometheus::core::Collector;
    metrics
        .offer_conversions
        .collect()
        .iter()
        .flat_map(|family| family.get_metric())
        .map(|m| {
            let label = m.get_label()[0].value().to_string();
            (label, m.get_counter().get_value() as u64)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_commit_is_counted_as_an_error_and_sent_again() {
    let h = Harness::start(Setup {
        commit_rejections: 2,
        ..Setup::default()
    });
    h.assign().await;
    h.send(Topic::Clicks, 0, vec![h.click(1).encode()]).await;
    h.until("three attempts at the same commit", |c| {
        c.iter()
            .filter(|c| matches!(c, Call::Commit(p) if *p == vec![("clicks".to_string(), 0, 1)]))
            .count()
            >= 3
    })
    .await;
    for _ in 0..3000 {
        if h.commits("ok") == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!((h.commits("error"), h.commits("ok")), (2, 1));
    let calls = h.stop().await;
    let attempts = calls
        .iter()
        .filter(|c| matches!(c, Call::Commit(_)))
        .count();
    assert_eq!(
        attempts, 3,
        "confirmed positions are not sent again: {calls:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_enough_rows_goes_early_and_a_small_one_waits_its_full_age() {
    // Ten seconds for any batch; 50 ms for one of three rows or more.
    let h = Harness::start(Setup {
        batch_max_ms: 10_000,
        batch_early_rows: 3,
        ..Setup::default()
    });
    h.assign().await;
    let clicks: Vec<_> = (1..=3).map(|n| h.click(n)).collect();
    h.send(
        Topic::Clicks,
        0,
        vec![clicks[0].encode(), clicks[1].encode()],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(rows_written(&h.calls()).is_empty(), "two rows wait");
    h.send(Topic::Clicks, 2, vec![clicks[2].encode()]).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while rows_written(&h.calls()).len() < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "three rows are written long before ten seconds"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_is_answered_once_its_rows_are_written_and_committed() {
    // Batches would wait ten seconds: only the revoke sends this one.
    let h = Harness::start(Setup {
        batch_max_ms: 10_000,
        ..Setup::default()
    });
    h.assign().await;
    let a = h.click(1);
    h.send(Topic::Clicks, 0, vec![a.encode()]).await;
    h.send(Topic::Postbacks, 0, vec![h.postback(&a).encode()])
        .await;
    let (done, answered) = oneshot::channel();
    h.events
        .send(Event::Revoke {
            partitions: vec![(Topic::Clicks, 0), (Topic::Postbacks, 0)],
            done,
        })
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(60), answered)
        .await
        .expect("the revoke is answered")
        .unwrap();
    let calls = h.calls();
    assert_eq!(
        rows_written(&calls),
        vec![a.click_id.clone(), format!("attributed:{}", a.click_id)],
        "rows written before the answer"
    );
    assert!(
        calls.contains(&Call::CommitSync(vec![
            ("clicks".into(), 0, 1),
            ("postbacks".into(), 0, 1)
        ])),
        "offsets committed before the answer: {calls:#?}"
    );
    // Records of the partition that arrive late are not ours any more.
    h.send(Topic::Clicks, 1, vec![h.click(2).encode()]).await;
    let calls = h.stop().await;
    assert_eq!(rows_written(&calls).len(), 2, "{calls:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_sink_refuses_batches_partitions_pause_and_nothing_is_lost() {
    let h = Harness::start(Setup {
        batch_max_rows: 2,
        sink_refusals: 20,
        ..Setup::default()
    });
    h.assign().await;
    let clicks: Vec<_> = (0..10).map(|n| h.click(n)).collect();
    // The first five are refused in flight; the next five fill the following batch, which
    // then waits for them.
    h.send(
        Topic::Clicks,
        0,
        clicks[..5].iter().map(|c| c.encode()).collect(),
    )
    .await;
    h.send(
        Topic::Clicks,
        5,
        clicks[5..].iter().map(|c| c.encode()).collect(),
    )
    .await;
    h.until("the rows written after the refusals", |c| {
        !rows_written(c).is_empty()
    })
    .await;
    let calls = h.stop().await;
    let all = vec![(Topic::Clicks, 0), (Topic::Postbacks, 0)];
    let paused = calls.iter().position(|c| *c == Call::Pause(all.clone()));
    let resumed = calls.iter().position(|c| *c == Call::Resume(all.clone()));
    assert!(
        matches!((paused, resumed), (Some(p), Some(r)) if p < r),
        "paused while refused, resumed after: {calls:#?}"
    );
    let ids: Vec<_> = clicks.iter().map(|c| c.click_id.clone()).collect();
    assert_eq!(rows_written(&calls), ids, "each row once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_waiting_for_a_slow_batch_are_bounded_by_pausing() {
    let h = Harness::start(Setup {
        batch_max_rows: 10,
        sink_delay: Duration::from_millis(300),
        ..Setup::default()
    });
    h.assign().await;
    let total = 3 * CHUNK + 10;
    let clicks: Vec<_> = (0..total as u64).map(|n| h.click(n)).collect();
    for (i, chunk) in clicks.chunks(CHUNK / 4).enumerate() {
        let from = (i * (CHUNK / 4)) as i64;
        h.send(
            Topic::Clicks,
            from,
            chunk.iter().map(|c| c.encode()).collect(),
        )
        .await;
    }
    h.until("every click written", |c| rows_written(c).len() == total)
        .await;
    let calls = h.stop().await;
    let all = vec![(Topic::Clicks, 0), (Topic::Postbacks, 0)];
    assert!(
        calls.contains(&Call::Pause(all)),
        "a slow but successful insert pauses the partitions once the deferred records reach the cap"
    );
    let mut written = rows_written(&calls);
    written.sort();
    written.dedup();
    assert_eq!(written.len(), total, "each click once");
}
