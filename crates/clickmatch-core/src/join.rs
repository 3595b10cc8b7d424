//! The join of one partition: clicks in their window, postbacks waiting for their click, and
//! conversions already seen (for dedup and status updates).
//!
//! Pure and synchronous: the joiner's I/O layer feeds records in partition order together with
//! their source positions (Kafka offsets) and the current time, and writes what comes out. State
//! lives behind [`JoinStore`]: [`MemoryStore`] here, a disk-backed store in `clickmatch-store`.
//! Only the postbacks still waiting for their click are indexed in memory (they are few: those
//! that beat their click by less than the grace period).

mod store;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};

use sha2::{Digest, Sha256};

use crate::classify::{self, Candidate, Classified, ClickRef};
use crate::model::{Account, DedupMode, DAY_MS, DEFAULT_WINDOW_MS};
use crate::reason::{hints, Reason};
use crate::records::{ClickRecord, Outcome, PostbackRecord};

pub use store::{
    bucket_of, JoinClick, JoinStore, MemoryStore, Seen, StoreError, StoreResult, StoredPending,
};

/// A postback waiting for its click, in memory.
#[derive(Debug, Clone)]
struct Pending {
    record: PostbackRecord,
    candidate: Candidate,
    /// Signed IDs: click time + grace, compared with the clicks watermark (foreign: unused).
    deadline_ms: u64,
    /// Wall-clock time the joiner first saw it: once the clicks partition is caught up (or for
    /// foreign IDs, which name no time), it waits `grace` from here.
    since_ms: u64,
}

/// An outcome with the position (postback offset) of the postback it belongs to.
pub type Positioned = (i64, Outcome);

/// Join state of one partition.
#[derive(Debug)]
pub struct PartitionJoin<S: JoinStore> {
    store: S,
    pending: BTreeMap<i64, Pending>,
    pending_by_click: HashMap<String, Vec<i64>>,
    /// At most the earliest deadline of the signed postbacks pending (`u64::MAX`: none), so
    /// that a click, which moves only the watermark, need not look at every one of them.
    earliest_deadline_ms: u64,
    /// Latest click time read from the clicks partition: event time, moved by data only.
    watermark_ms: u64,
}

impl<S: JoinStore> PartitionJoin<S> {
    /// A join over `store`, with the pending postbacks it holds (after a restart) re-indexed.
    pub fn restore(account: &Account, store: S, watermark_ms: u64) -> StoreResult<Self> {
        let mut join = PartitionJoin {
            store,
            pending: BTreeMap::new(),
            pending_by_click: HashMap::new(),
            earliest_deadline_ms: u64::MAX,
            watermark_ms,
        };
        for (position, stored) in join.store.pending()? {
            match classify::classify(account, &stored.record) {
                Classified::Joinable(candidate) => join.index_pending(
                    position,
                    Pending {
                        record: stored.record,
                        candidate,
                        deadline_ms: stored.deadline_ms,
                        since_ms: stored.since_ms,
                    },
                ),
                // The configuration changed under it: the postback is decided now, when the
                // next click or tick releases it.
                Classified::Final(_) => {
                    let candidate = Candidate {
                        click: ClickRef::Foreign(String::new()),
                        extracted: Default::default(),
                        repair: None,
                    };
                    join.index_pending(
                        position,
                        Pending {
                            record: stored.record,
                            candidate,
                            deadline_ms: 0,
                            since_ms: 0,
                        },
                    );
                }
            }
        }
        Ok(join)
    }

    pub fn new(store: S) -> Self {
        PartitionJoin {
            store,
            pending: BTreeMap::new(),
            pending_by_click: HashMap::new(),
            earliest_deadline_ms: u64::MAX,
            watermark_ms: 0,
        }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    pub fn into_store(self) -> S {
        self.store
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

    fn index_pending(&mut self, position: i64, pending: Pending) {
        if let ClickRef::Signed(_) = pending.candidate.click {
            self.earliest_deadline_ms = self.earliest_deadline_ms.min(pending.deadline_ms);
        }
        self.pending_by_click
            .entry(pending.candidate.click.key())
            .or_default()
            .push(position);
        self.pending.insert(position, pending);
    }

    fn unindex_pending(&mut self, position: i64) -> Option<Pending> {
        let pending = self.pending.remove(&position)?;
        let key = pending.candidate.click.key();
        if let Some(list) = self.pending_by_click.get_mut(&key) {
            list.retain(|p| *p != position);
            if list.is_empty() {
                self.pending_by_click.remove(&key);
            }
        }
        Some(pending)
    }

    /// Adds a click; postbacks that were waiting for it are attributed now.
    pub fn on_click(
        &mut self,
        account: &Account,
        click: &ClickRecord,
    ) -> StoreResult<Vec<Positioned>> {
        let click = JoinClick::new(click, account.conversion_subs);
        self.watermark_ms = self.watermark_ms.max(click.time_ms);
        let Some(waiting) = self.pending_by_click.get(&click.click_id).cloned() else {
            // The common case: no postback waited for this click.
            self.store.put_click(click)?;
            return self.release_due(account, None);
        };
        self.store.put_click(click.clone())?;
        let mut out = Vec::new();
        for position in waiting {
            if let Some(pending) = self.unindex_pending(position) {
                self.store.remove_pending(position)?;
                let outcome =
                    self.attribute(account, &pending.record, &pending.candidate, &click)?;
                out.push((position, outcome));
            }
        }
        out.extend(self.release_due(account, None)?);
        Ok(out)
    }

    /// Classifies and joins a postback read at `position`. Returns nothing when it waits for
    /// its click.
    pub fn on_postback(
        &mut self,
        account: &Account,
        record: PostbackRecord,
        position: i64,
        now_ms: u64,
    ) -> StoreResult<Option<Outcome>> {
        let candidate = match classify::classify(account, &record) {
            Classified::Final(row) => return Ok(Some(Outcome::Unattributed(row))),
            Classified::Joinable(candidate) => candidate,
        };

        // A signed ID names its click time: past the window it is expired without a lookup,
        // even when the click has long left the store.
        let time_hint = match &candidate.click {
            ClickRef::Signed(id) => {
                let window = window_hint(account, &candidate);
                if record.received_ms > id.time_ms().saturating_add(window) {
                    return Ok(Some(self.unattributed(
                        &record,
                        &candidate,
                        Reason::Expired,
                        None,
                    )));
                }
                Some(id.time_ms())
            }
            ClickRef::Foreign(_) => None,
        };
        if let Some(click) = self.store.click(&candidate.click.key(), time_hint)? {
            return Ok(Some(self.attribute(account, &record, &candidate, &click)?));
        }

        // Keyed by ingest under another configuration: the click lives on another partition
        // and waiting here would only end in a generic `unknown_click_id`.
        if !record.key.is_empty() && record.key != candidate.click.key() {
            let row = classify::unattributed(
                &record,
                Reason::UnknownClickId,
                Some(hints::KEYED_ELSEWHERE),
                &candidate.extracted,
            );
            return Ok(Some(Outcome::Unattributed(row)));
        }

        // Clicks read past the click's time plus grace: in partition order, the click would
        // have come before them.
        let deadline_ms = time_hint.map_or(u64::MAX, |t| t.saturating_add(account.grace_ms));
        if time_hint.is_some() && self.watermark_ms > deadline_ms {
            return Ok(Some(self.unattributed(
                &record,
                &candidate,
                Reason::UnknownClickId,
                None,
            )));
        }
        let stored = StoredPending {
            record,
            deadline_ms,
            since_ms: now_ms,
        };
        self.store.put_pending(position, &stored)?;
        self.index_pending(
            position,
            Pending {
                record: stored.record,
                candidate,
                deadline_ms,
                since_ms: now_ms,
            },
        );
        Ok(None)
    }

    /// Expires old buckets and resolves postbacks whose click can no longer come. With the
    /// clicks partition `caught_up` (read to its end), a postback that waited `grace` of wall
    /// time is decided even when no newer click moves the watermark (idle traffic).
    pub fn advance(
        &mut self,
        account: &Account,
        caught_up: bool,
        now_ms: u64,
    ) -> StoreResult<Vec<Positioned>> {
        // A day of slack past the longest window: expiry drops whole day buckets.
        let expire_before = self
            .watermark_ms
            .saturating_sub(account.max_window_ms())
            .saturating_sub(DAY_MS);
        self.store.expire(expire_before)?;
        self.release_due(account, Some((caught_up, now_ms)))
    }

    /// `wall`: whether the clicks partition is caught up, and the wall-clock time.
    fn release_due(
        &mut self,
        account: &Account,
        wall: Option<(bool, u64)>,
    ) -> StoreResult<Vec<Positioned>> {
        // Without the wall clock only the watermark releases, and nothing before it passes
        // the earliest deadline.
        if wall.is_none() && self.watermark_ms <= self.earliest_deadline_ms {
            return Ok(Vec::new());
        }
        let grace = account.grace_ms;
        let mut earliest = u64::MAX;
        let due: Vec<i64> = self
            .pending
            .iter()
            .filter(|(_, p)| {
                let waited = |now: u64| now > p.since_ms.saturating_add(grace);
                match p.candidate.click {
                    ClickRef::Signed(_) => {
                        let due = self.watermark_ms > p.deadline_ms
                            || wall.is_some_and(|(caught_up, now)| caught_up && waited(now));
                        if !due {
                            earliest = earliest.min(p.deadline_ms);
                        }
                        due
                    }
                    ClickRef::Foreign(_) => wall.is_some_and(|(_, now)| waited(now)),
                }
            })
            .map(|(position, _)| *position)
            .collect();
        self.earliest_deadline_ms = earliest;
        let mut out = Vec::with_capacity(due.len());
        for position in due {
            let Some(pending) = self.unindex_pending(position) else {
                continue;
            };
            self.store.remove_pending(position)?;
            let outcome = match classify::classify(account, &pending.record) {
                // Stored before a configuration change that now rejects it.
                Classified::Final(row) => Outcome::Unattributed(row),
                Classified::Joinable(_) => self.unattributed(
                    &pending.record,
                    &pending.candidate,
                    Reason::UnknownClickId,
                    None,
                ),
            };
            out.push((position, outcome));
        }
        Ok(out)
    }

    fn unattributed(
        &self,
        record: &PostbackRecord,
        candidate: &Candidate,
        reason: Reason,
        click: Option<&JoinClick>,
    ) -> Outcome {
        let mut row = classify::unattributed(record, reason, None, &candidate.extracted);
        row.is_test = click.is_some_and(|c| c.is_test);
        Outcome::Unattributed(row)
    }

    fn attribute(
        &mut self,
        account: &Account,
        record: &PostbackRecord,
        candidate: &Candidate,
        click: &JoinClick,
    ) -> StoreResult<Outcome> {
        let offer = account.offers.get(&click.offer_id);
        let route = account.route(record.route.as_deref());
        let window = offer.map(|o| o.window_ms).unwrap_or(DEFAULT_WINDOW_MS);
        if record.received_ms > click.time_ms.saturating_add(window) {
            return Ok(self.unattributed(record, candidate, Reason::Expired, Some(click)));
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

        if let Some(seen) = self.store.seen(&dedup_key, click.time_ms)? {
            if seen.postback_id == record.postback_id {
                // The same record again (a replay): the same row again.
                return Ok(Outcome::Attributed(
                    seen.conversion(&dedup_key, record, click),
                ));
            }
            if seen.status == extracted.status {
                return Ok(self.unattributed(record, candidate, Reason::Duplicate, Some(click)));
            }
        }

        let booked = extracted.book_conversion_payout(route, offer);
        let seen = Seen {
            postback_id: record.postback_id.clone(),
            status: extracted.status.clone(),
            event: extracted.event.clone(),
            payout: booked.payout,
            currency: booked.currency.to_string(),
            payout_raw: booked.payout_raw,
            payout_issue: booked
                .issue
                .map(|issue| issue.code().to_string())
                .unwrap_or_default(),
            source: account
                .campaigns
                .get(&click.campaign_id)
                .map(|c| c.source.clone())
                .unwrap_or_default(),
            txid: extracted.txid.clone().unwrap_or_default(),
            repair: candidate.repair.unwrap_or_default().to_string(),
            offer_mismatch: extracted
                .offer_id
                .as_deref()
                .is_some_and(|id| id.trim() != click.offer_id),
            click_id_repaired: candidate.repair.is_some(),
        };
        self.store.put_seen(&dedup_key, click.time_ms, &seen)?;
        Ok(Outcome::Attributed(
            seen.conversion(&dedup_key, record, click),
        ))
    }
}

/// The window to check before a lookup: the postback's offer's when it names one, else the
/// longest of the account.
fn window_hint(account: &Account, candidate: &Candidate) -> u64 {
    candidate
        .extracted
        .offer_id
        .as_deref()
        .and_then(|id| account.offers.get(id))
        .map(|o| o.window_ms)
        .unwrap_or_else(|| account.max_window_ms())
}

/// A conversion ID from its dedup key: the same key always gives the same ID, so replays and
/// status updates land on the same `ReplacingMergeTree` row.
pub fn conversion_id(dedup_key: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(dedup_key.as_bytes());
    // By hand, not `format!` per byte: one of these per conversion.
    let mut id = String::with_capacity(32);
    for &byte in &digest[..16] {
        id.push(HEX[usize::from(byte >> 4)] as char);
        id.push(HEX[usize::from(byte & 15)] as char);
    }
    id
}
