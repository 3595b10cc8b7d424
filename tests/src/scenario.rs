//! Deterministic traffic written straight to Kafka (as ingest would), with the outcome each
//! postback must end in, and snapshots of what ClickHouse holds, for tests that compare runs.

use std::collections::BTreeMap;
use std::time::Duration;

use clickhouse::Row;
use clickmatch_core::classify::partition_key;
use clickmatch_core::model::{Account, DAY_MS};
use clickmatch_core::records::{ClickRecord, IngestVerdict, PostbackRecord, RECORD_VERSION};
use clickmatch_kafka::Publisher;
use serde::Deserialize;

/// Records in the order they are produced, and the expected count per outcome.
#[derive(Debug, Clone, Default)]
pub struct Scenario {
    pub records: Vec<Record>,
    pub expected: BTreeMap<String, u64>,
    /// Status updates (new versions of a conversion).
    pub chargebacks: u64,
}

// Mostly clicks: boxing them would allocate once more per record generated.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Record {
    Click(ClickRecord),
    Postback(PostbackRecord),
}

fn click(account: &Account, n: u64, time_ms: u64) -> ClickRecord {
    ClickRecord {
        v: RECORD_VERSION,
        click_id: account.signer.mint(time_ms, n).to_string(),
        time_ms,
        campaign_id: "demo".into(),
        offer_id: "1".into(),
        source: "scenario".into(),
        subs: vec![format!("pub-{}", n % 7)],
        ip: String::new(),
        user_agent: String::new(),
        country: String::new(),
        enrichment: Default::default(),
        is_test: false,
        foreign: false,
        cost: None,
    }
}

fn postback(n: u64, received_ms: u64, params: Vec<(&str, String)>) -> PostbackRecord {
    PostbackRecord {
        v: RECORD_VERSION,
        postback_id: format!("pb-{n:08}"),
        received_ms,
        method: "GET".into(),
        route: None,
        params: params
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        remote_ip: "192.0.2.10".into(),
        verdict: IngestVerdict::Accepted,
        key: String::new(),
        origin: Default::default(),
    }
}

impl Scenario {
    fn expect(&mut self, outcome: &str) {
        *self.expected.entry(outcome.to_string()).or_default() += 1;
    }

    /// `clicks` clicks starting at `start_ms`, each followed by its postback; every 10th
    /// postback is retried by the network (`duplicate`), every 25th conversion later charged
    /// back (a new version), every 50th postback beats its click, plus a few postbacks for
    /// clicks that never come and for clicks older than the window.
    pub fn generate(account: &Account, clicks: u64, start_ms: u64) -> Scenario {
        let mut s = Scenario::default();
        let mut pb = 0u64;
        for n in 0..clicks {
            let time = start_ms + n;
            let c = click(account, n, time);
            let id = c.click_id.clone();
            let sale = |pb: u64, status: &str| {
                postback(
                    pb,
                    time + 5,
                    vec![
                        ("cid", id.clone()),
                        ("payout", format!("{}.{:02}", 1 + n % 9, n % 100)),
                        ("status", status.into()),
                    ],
                )
            };
            if n % 50 == 49 {
                s.records.push(Record::Postback(sale(pb, "approved")));
                s.records.push(Record::Click(c));
            } else {
                s.records.push(Record::Click(c));
                s.records.push(Record::Postback(sale(pb, "approved")));
            }
            pb += 1;
            s.expect("attributed");
            if n % 10 == 3 {
                s.records.push(Record::Postback(sale(pb, "approved")));
                pb += 1;
                s.expect("duplicate");
            }
            if n % 25 == 7 {
                // A new version of the same conversion: no new row under FINAL.
                s.records.push(Record::Postback(sale(pb, "chargeback")));
                pb += 1;
                s.chargebacks += 1;
            }
            if n % 1000 == 500 {
                let never = account.signer.mint(time, u64::MAX - n).to_string();
                s.records
                    .push(Record::Postback(postback(pb, time, vec![("cid", never)])));
                pb += 1;
                s.expect("unknown_click_id");
                let old = account.signer.mint(time - 40 * DAY_MS, n).to_string();
                s.records
                    .push(Record::Postback(postback(pb, time, vec![("cid", old)])));
                pb += 1;
                s.expect("expired");
            }
        }
        s
    }

    /// Rows expected in `conversions FINAL` plus `unattributed FINAL`.
    pub fn total_rows(&self) -> u64 {
        self.expected.values().sum()
    }

    /// Produces the records in order, keyed like ingest keys them. `pace` spreads them out.
    pub async fn produce(
        &self,
        account: &Account,
        publisher: &Publisher,
        clicks_topic: &str,
        postbacks_topic: &str,
        range: std::ops::Range<usize>,
        pace: Option<(usize, Duration)>,
    ) -> anyhow::Result<()> {
        let mut pending = Vec::new();
        for (i, record) in self.records[range].iter().enumerate() {
            let delivery = match record {
                Record::Click(c) => publisher.enqueue(clicks_topic, &c.click_id, &c.encode())?,
                Record::Postback(p) => {
                    publisher.enqueue(postbacks_topic, &partition_key(account, p), &p.encode())?
                }
            };
            pending.push(delivery);
            if let Some((every, pause)) = pace {
                if i % every == every - 1 {
                    for d in pending.drain(..) {
                        d.await?;
                    }
                    tokio::time::sleep(pause).await;
                }
            }
        }
        for d in pending {
            d.await?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Row, Deserialize)]
pub struct ConversionSnapshot {
    pub conversion_id: String,
    pub click_id: String,
    pub postback_id: String,
    pub status: String,
    pub version: u64,
    pub payout_micros: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Row, Deserialize)]
pub struct UnattributedSnapshot {
    pub postback_id: String,
    pub reason: String,
}

/// What ClickHouse holds, in a comparable form (no latencies or insert times).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub conversions: Vec<ConversionSnapshot>,
    pub unattributed: Vec<UnattributedSnapshot>,
    pub clicks: u64,
}

impl Snapshot {
    pub async fn read(client: &clickhouse::Client) -> anyhow::Result<Snapshot> {
        let conversions = client
            .query(
                "SELECT conversion_id, click_id, postback_id, status, version, toInt64(payout * 1000000) AS payout_micros \
                 FROM conversions FINAL ORDER BY conversion_id",
            )
            .fetch_all()
            .await?;
        let unattributed = client
            .query("SELECT postback_id, reason FROM unattributed FINAL ORDER BY postback_id")
            .fetch_all()
            .await?;
        let clicks = client
            .query("SELECT count() FROM clicks FINAL")
            .fetch_one()
            .await?;
        Ok(Snapshot {
            conversions,
            unattributed,
            clicks,
        })
    }

    /// Rows by outcome, counting status updates once (as `FINAL` does).
    pub fn outcomes(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        out.insert("attributed".to_string(), self.conversions.len() as u64);
        for row in &self.unattributed {
            *out.entry(row.reason.clone()).or_default() += 1;
        }
        out
    }

    /// Asserts the outcomes the scenario expects: rows by outcome, status updates as versions,
    /// and every postback in exactly one table.
    pub fn assert_matches(&self, scenario: &Scenario) {
        assert_eq!(self.outcomes(), scenario.expected, "rows by outcome");
        let chargebacks = self
            .conversions
            .iter()
            .filter(|c| c.status == "chargeback")
            .count();
        assert_eq!(chargebacks as u64, scenario.chargebacks, "status updates");
        let mut ids: Vec<&str> = self
            .conversions
            .iter()
            .map(|c| c.postback_id.as_str())
            .collect();
        ids.extend(self.unattributed.iter().map(|u| u.postback_id.as_str()));
        let before = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), before, "a postback has rows in both tables");
    }

    pub fn rows(&self) -> u64 {
        (self.conversions.len() + self.unattributed.len()) as u64
    }
}
