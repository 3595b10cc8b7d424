//! The join of one partition: clicks in their window, postbacks waiting for their click, and
//! conversions already seen (for dedup and status updates).
//!
//! Pure and synchronous: the joiner's I/O layer feeds records in partition order together with
//! their source positions (Kafka offsets) and the current time, and writes what comes out.

use std::collections::{BTreeMap, HashMap};

use sha2::{Digest, Sha256};

use crate::classify::{self, Candidate, Classified, ClickRef};
use crate::model::{Account, DedupMode, DEFAULT_WINDOW_MS};
use crate::reason::Reason;
use crate::records::{Click, Conversion, Outcome, PostbackRecord};

/// Where clicks of the window are kept. The in-memory store serves tests and the vertical
/// slice; a disk-backed store implements the same trait.
pub trait ClickStore {
    fn get(&self, key: &str) -> Option<Click>;
    fn insert(&mut self, click: Click);
    /// Drops every click older than `before_ms`.
    fn expire(&mut self, before_ms: u64);
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Clicks in a hash map with a time index for expiry.
#[derive(Debug, Default)]
pub struct MemoryClickStore {
    by_key: HashMap<String, Click>,
    by_time: BTreeMap<(u64, String), ()>,
}

impl ClickStore for MemoryClickStore {
    fn get(&self, key: &str) -> Option<Click> {
        self.by_key.get(key).cloned()
    }

    fn insert(&mut self, click: Click) {
        self.by_time
            .insert((click.time_ms, click.click_id.clone()), ());
        self.by_key.insert(click.click_id.clone(), click);
    }

    fn expire(&mut self, before_ms: u64) {
        let keep = self.by_time.split_off(&(before_ms, String::new()));
        for (_, key) in std::mem::replace(&mut self.by_time, keep).into_keys() {
            self.by_key.remove(&key);
        }
    }

    fn len(&self) -> usize {
        self.by_key.len()
    }
}

/// A postback waiting for its click.
#[derive(Debug, Clone)]
struct Pending {
    record: PostbackRecord,
    candidate: Candidate,
    /// Source position (Kafka offset) of the postback: nothing at or after the oldest pending
    /// position may be committed.
    position: i64,
    /// Signed IDs: click time + grace, compared with the clicks watermark.
    /// Foreign IDs: received time + grace, compared with the wall clock.
    deadline_ms: u64,
}

/// The last version written for a dedup key.
#[derive(Debug, Clone)]
struct Seen {
    postback_id: String,
    status: String,
    conversion: Conversion,
}

/// Join state of one partition.
#[derive(Debug)]
pub struct PartitionJoin<S: ClickStore> {
    store: S,
    pending: BTreeMap<i64, Pending>,
    pending_by_click: HashMap<String, Vec<i64>>,
    seen: HashMap<String, Seen>,
    /// Latest click time seen on the clicks partition.
    watermark_ms: u64,
}

impl<S: ClickStore> PartitionJoin<S> {
    pub fn new(store: S) -> Self {
        PartitionJoin {
            store,
            pending: BTreeMap::new(),
            pending_by_click: HashMap::new(),
            seen: HashMap::new(),
            watermark_ms: 0,
        }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// The position of the oldest postback still waiting, if any.
    pub fn oldest_pending_position(&self) -> Option<i64> {
        self.pending.keys().next().copied()
    }

    pub fn watermark_ms(&self) -> u64 {
        self.watermark_ms
    }

    /// Adds a click; postbacks that were waiting for it are attributed now.
    pub fn on_click(&mut self, account: &Account, click: Click) -> Vec<Outcome> {
        let key = click.click_id.clone();
        self.watermark_ms = self.watermark_ms.max(click.time_ms);
        self.store.insert(click.clone());
        let mut out = Vec::new();
        for position in self.pending_by_click.remove(&key).unwrap_or_default() {
            if let Some(pending) = self.pending.remove(&position) {
                out.push(self.attribute(account, &pending.record, &pending.candidate, &click));
            }
        }
        out.extend(self.release_due(account, u64::MAX));
        out
    }

    /// Classifies and joins a postback read at `position`. Returns nothing when it waits for
    /// its click.
    pub fn on_postback(
        &mut self,
        account: &Account,
        record: PostbackRecord,
        position: i64,
        now_ms: u64,
    ) -> Option<Outcome> {
        let candidate = match classify::classify(account, &record) {
            Classified::Final(row) => return Some(Outcome::Unattributed(row)),
            Classified::Joinable(candidate) => candidate,
        };
        let key = candidate.click.key();

        // A signed ID names its click time: past the longest window it is expired without a
        // lookup, even when the click has long left the store.
        if let ClickRef::Signed(id) = &candidate.click {
            let window = self.window_hint(account, &record, &candidate);
            if record.received_ms > id.time_ms().saturating_add(window) {
                return Some(self.unattributed(&record, &candidate, Reason::Expired));
            }
        }
        if let Some(click) = self.store.get(&key) {
            return Some(self.attribute(account, &record, &candidate, &click));
        }

        let (deadline_ms, due) = match &candidate.click {
            ClickRef::Signed(id) => {
                let deadline = id.time_ms().saturating_add(account.grace_ms);
                (deadline, self.watermark_ms > deadline)
            }
            ClickRef::Foreign(_) => {
                let deadline = record.received_ms.saturating_add(account.grace_ms);
                (deadline, now_ms > deadline)
            }
        };
        if due {
            return Some(self.unattributed(&record, &candidate, Reason::UnknownClickId));
        }
        self.pending_by_click.entry(key).or_default().push(position);
        self.pending.insert(
            position,
            Pending {
                record,
                candidate,
                position,
                deadline_ms,
            },
        );
        None
    }

    /// Moves the clicks watermark (e.g. to wall-clock time minus a safety margin once the
    /// clicks partition is caught up) and resolves postbacks whose click can no longer come.
    pub fn advance(&mut self, account: &Account, watermark_ms: u64, now_ms: u64) -> Vec<Outcome> {
        self.watermark_ms = self.watermark_ms.max(watermark_ms);
        let expire_before = self.watermark_ms.saturating_sub(account.max_window_ms());
        self.store.expire(expire_before);
        self.release_due(account, now_ms)
    }

    fn release_due(&mut self, account: &Account, now_ms: u64) -> Vec<Outcome> {
        let due: Vec<i64> = self
            .pending
            .values()
            .filter(|p| match p.candidate.click {
                ClickRef::Signed(_) => self.watermark_ms > p.deadline_ms,
                ClickRef::Foreign(_) => now_ms != u64::MAX && now_ms > p.deadline_ms,
            })
            .map(|p| p.position)
            .collect();
        let _ = account;
        let mut out = Vec::with_capacity(due.len());
        for position in due {
            let Some(pending) = self.pending.remove(&position) else {
                continue;
            };
            let key = pending.candidate.click.key();
            if let Some(list) = self.pending_by_click.get_mut(&key) {
                list.retain(|p| *p != pending.position);
                if list.is_empty() {
                    self.pending_by_click.remove(&key);
                }
            }
            out.push(self.unattributed(
                &pending.record,
                &pending.candidate,
                Reason::UnknownClickId,
            ));
        }
        out
    }

    /// The window to check before a lookup: the postback's offer's when it names one, else the
    /// longest of the account.
    fn window_hint(
        &self,
        account: &Account,
        record: &PostbackRecord,
        candidate: &Candidate,
    ) -> u64 {
        let _ = record;
        candidate
            .extracted
            .offer_id
            .as_deref()
            .and_then(|id| account.offers.get(id))
            .map(|o| o.window_ms)
            .unwrap_or_else(|| account.max_window_ms())
    }

    fn unattributed(
        &self,
        record: &PostbackRecord,
        candidate: &Candidate,
        reason: Reason,
    ) -> Outcome {
        let mut row = classify::unattributed(record, reason, None, &candidate.extracted);
        if let Some(click) = self.store.get(&candidate.click.key()) {
            row.is_test = click.is_test;
        }
        Outcome::Unattributed(row)
    }

    fn attribute(
        &mut self,
        account: &Account,
        record: &PostbackRecord,
        candidate: &Candidate,
        click: &Click,
    ) -> Outcome {
        let offer = account.offers.get(&click.offer_id);
        let route = account.route(record.route.as_deref());
        let window = offer.map(|o| o.window_ms).unwrap_or(DEFAULT_WINDOW_MS);
        if record.received_ms > click.time_ms.saturating_add(window) {
            let mut row =
                classify::unattributed(record, Reason::Expired, None, &candidate.extracted);
            row.is_test = click.is_test;
            return Outcome::Unattributed(row);
        }

        let extracted = &candidate.extracted;
        let dedup_key = match classify::dedup_mode(route, offer) {
            DedupMode::ClickEvent => format!("click:{}:{}", click.click_id, extracted.event),
            DedupMode::Transaction => match &extracted.txid {
                Some(txid) => format!("tx:{}:{}", click.offer_id, txid),
                None => format!("click:{}:{}", click.click_id, extracted.event),
            },
            DedupMode::All => format!("postback:{}", record.postback_id),
        };

        if let Some(seen) = self.seen.get(&dedup_key) {
            if seen.postback_id == record.postback_id {
                // The same record again (a replay): the same row again.
                return Outcome::Attributed(seen.conversion.clone());
            }
            if seen.status == extracted.status {
                let mut row =
                    classify::unattributed(record, Reason::Duplicate, None, &candidate.extracted);
                row.is_test = click.is_test;
                return Outcome::Unattributed(row);
            }
        }

        let payout_model = route
            .and_then(|r| r.payout)
            .or(offer.map(|o| o.payout))
            .unwrap_or(crate::model::PayoutModel::FromPostback);
        let conversion = Conversion {
            conversion_id: conversion_id(&dedup_key),
            click_id: click.click_id.clone(),
            click_time_ms: click.time_ms,
            conversion_time_ms: record.received_ms,
            postback_id: record.postback_id.clone(),
            campaign_id: click.campaign_id.clone(),
            offer_id: click.offer_id.clone(),
            route: record.route_label().to_string(),
            event: extracted.event.clone(),
            status: extracted.status.clone(),
            payout: extracted.payout(payout_model),
            currency: extracted.currency.clone(),
            txid: extracted.txid.clone().unwrap_or_default(),
            offer_mismatch: extracted
                .offer_id
                .as_deref()
                .is_some_and(|id| id.trim() != click.offer_id),
            click_id_repaired: candidate.repair.is_some(),
            repair: candidate.repair.unwrap_or_default().to_string(),
            is_test: click.is_test,
            version: record.received_ms,
        };
        self.seen.insert(
            dedup_key,
            Seen {
                postback_id: record.postback_id.clone(),
                status: extracted.status.clone(),
                conversion: conversion.clone(),
            },
        );
        Outcome::Attributed(conversion)
    }
}

/// A conversion ID from its dedup key: the same key always gives the same ID, so replays and
/// status updates land on the same `ReplacingMergeTree` row.
pub fn conversion_id(dedup_key: &str) -> String {
    let digest = Sha256::digest(dedup_key.as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::tests::{account, postback};
    use crate::records::RECORD_VERSION;

    const T0: u64 = 1_764_000_000_000;

    fn click(account: &Account, time_ms: u64, offer: &str) -> Click {
        Click {
            v: RECORD_VERSION,
            click_id: account.signer.mint(time_ms, time_ms).to_string(),
            time_ms,
            campaign_id: "demo".into(),
            offer_id: offer.into(),
            source: String::new(),
            subs: vec![],
            ip: String::new(),
            user_agent: String::new(),
            country: String::new(),
            is_test: false,
            foreign: false,
        }
    }

    fn at(mut record: PostbackRecord, id: &str, received_ms: u64) -> PostbackRecord {
        record.postback_id = id.into();
        record.received_ms = received_ms;
        record
    }

    fn reason(outcome: Option<Outcome>) -> Option<Reason> {
        match outcome {
            Some(Outcome::Unattributed(u)) => Some(u.reason),
            _ => None,
        }
    }

    #[test]
    fn attributes_a_postback_after_its_click() {
        let account = account();
        let mut join = PartitionJoin::new(MemoryClickStore::default());
        let c = click(&account, T0, "1");
        assert!(join.on_click(&account, c.clone()).is_empty());
        let pb = at(
            postback(
                None,
                &[("cid", &c.click_id), ("payout", "3.2"), ("offer", "9")],
            ),
            "p1",
            T0 + 1000,
        );
        let Some(Outcome::Attributed(conv)) = join.on_postback(&account, pb, 0, T0 + 1000) else {
            panic!("not attributed")
        };
        assert_eq!(conv.click_id, c.click_id);
        assert_eq!(conv.payout.to_string(), "3.2");
        assert!(conv.offer_mismatch);
        assert_eq!(conv.route, "global");
        assert_eq!(
            conv.conversion_id,
            conversion_id(&format!("click:{}:sale", c.click_id))
        );
    }

    #[test]
    fn a_postback_before_its_click_waits_then_is_attributed() {
        let account = account();
        let mut join = PartitionJoin::new(MemoryClickStore::default());
        let c = click(&account, T0, "1");
        let pb = at(postback(None, &[("cid", &c.click_id)]), "p1", T0 + 10);
        assert!(join.on_postback(&account, pb, 7, T0 + 10).is_none());
        assert_eq!(join.oldest_pending_position(), Some(7));
        let out = join.on_click(&account, c);
        assert!(matches!(out.as_slice(), [Outcome::Attributed(_)]));
        assert_eq!(join.oldest_pending_position(), None);
    }

    #[test]
    fn unknown_once_the_watermark_passes_click_time_plus_grace() {
        let account = account();
        let mut join = PartitionJoin::new(MemoryClickStore::default());
        let missing = click(&account, T0, "1");
        let pb = at(postback(None, &[("cid", &missing.click_id)]), "p1", T0 + 10);
        assert!(join.on_postback(&account, pb, 3, T0 + 10).is_none());
        assert!(join.advance(&account, T0 + account.grace_ms, T0).is_empty());
        let out = join.advance(&account, T0 + account.grace_ms + 1, T0);
        assert_eq!(out.len(), 1);
        assert!(matches!(&out[0], Outcome::Unattributed(u) if u.reason == Reason::UnknownClickId));
        // A later click no longer attributes it: the postback already has its row.
        assert!(join.on_click(&account, missing).is_empty());
    }

    #[test]
    fn expired_duplicate_and_status_update() {
        let mut account = account();
        account.offers.get_mut("1").unwrap().window_ms = 1_000;
        let mut join = PartitionJoin::new(MemoryClickStore::default());
        let c = click(&account, T0, "1");
        join.on_click(&account, c.clone());

        let late = at(
            postback(None, &[("cid", &c.click_id), ("offer", "1")]),
            "late",
            T0 + 5_000,
        );
        assert_eq!(
            reason(join.on_postback(&account, late, 0, T0)),
            Some(Reason::Expired)
        );

        account.offers.get_mut("1").unwrap().window_ms = DEFAULT_WINDOW_MS;
        let first = at(
            postback(None, &[("cid", &c.click_id), ("status", "pending")]),
            "a",
            T0 + 1,
        );
        let Some(Outcome::Attributed(v1)) = join.on_postback(&account, first.clone(), 1, T0) else {
            panic!()
        };
        let retry = at(
            postback(None, &[("cid", &c.click_id), ("status", "pending")]),
            "b",
            T0 + 2,
        );
        assert_eq!(
            reason(join.on_postback(&account, retry, 2, T0)),
            Some(Reason::Duplicate)
        );
        let replay = join.on_postback(&account, first, 1, T0);
        assert_eq!(replay, Some(Outcome::Attributed(v1.clone())));

        let approved = at(
            postback(None, &[("cid", &c.click_id), ("status", "approved")]),
            "c",
            T0 + 3,
        );
        let Some(Outcome::Attributed(v2)) = join.on_postback(&account, approved, 3, T0) else {
            panic!()
        };
        assert_eq!(v2.conversion_id, v1.conversion_id);
        assert!(v2.version > v1.version);
        assert_eq!(v2.status, "approved");
    }

    #[test]
    fn memory_store_expires_by_time() {
        let account = account();
        let mut store = MemoryClickStore::default();
        store.insert(click(&account, 10, "1"));
        store.insert(click(&account, 20, "1"));
        store.expire(15);
        assert_eq!(store.len(), 1);
    }
}
