use super::*;
use crate::classify::tests::{account, postback};
use crate::records::{Conversion, RECORD_VERSION};
use crate::subs::{CarriedSubs, SubSet};

const T0: u64 = 1_764_000_000_000;

fn click(account: &Account, time_ms: u64, offer: &str) -> ClickRecord {
    ClickRecord {
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
        enrichment: Default::default(),
        is_test: false,
        foreign: false,
        cost: None,
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

/// The conversion `record` ends in, at position `position`.
fn attributed(
    join: &mut PartitionJoin<MemoryStore>,
    account: &Account,
    record: PostbackRecord,
    position: i64,
) -> Conversion {
    match join.on_postback(account, record, position, T0).unwrap() {
        Some(Outcome::Attributed(conversion)) => conversion,
        other => panic!("not attributed: {other:?}"),
    }
}

fn join() -> PartitionJoin<MemoryStore> {
    PartitionJoin::new(MemoryStore::default())
}

#[test]
fn attributes_a_postback_after_its_click() {
    let account = account();
    let mut join = join();
    let c = click(&account, T0, "1");
    assert!(join.on_click(&account, &c).unwrap().is_empty());
    let pb = at(
        postback(
            None,
            &[("cid", &c.click_id), ("payout", "3.2"), ("offer", "9")],
        ),
        "p1",
        T0 + 1000,
    );
    let Some(Outcome::Attributed(conv)) = join.on_postback(&account, pb, 0, T0 + 1000).unwrap()
    else {
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
    let mut join = join();
    let c = click(&account, T0, "1");
    let pb = at(postback(None, &[("cid", &c.click_id)]), "p1", T0 + 10);
    assert!(join
        .on_postback(&account, pb, 7, T0 + 10)
        .unwrap()
        .is_none());
    assert_eq!(join.oldest_pending_position(), Some(7));
    let out = join.on_click(&account, &c).unwrap();
    assert!(matches!(out.as_slice(), [(7, Outcome::Attributed(_))]));
    assert_eq!(join.oldest_pending_position(), None);
    assert!(join.store().pending().unwrap().is_empty());
}

#[test]
fn pending_postbacks_survive_a_restore() {
    let account = account();
    let mut first = join();
    let c = click(&account, T0, "1");
    let pb = at(postback(None, &[("cid", &c.click_id)]), "p1", T0 + 10);
    assert!(first
        .on_postback(&account, pb, 3, T0 + 10)
        .unwrap()
        .is_none());
    let watermark = first.watermark_ms();
    let mut restored = PartitionJoin::restore(&account, first.into_store(), watermark).unwrap();
    assert_eq!(restored.oldest_pending_position(), Some(3));
    let out = restored.on_click(&account, &c).unwrap();
    assert!(matches!(out.as_slice(), [(3, Outcome::Attributed(_))]));
}

#[test]
fn unknown_once_caught_up_and_the_grace_has_passed() {
    let account = account();
    let mut join = join();
    let missing = click(&account, T0, "1");
    let pb = at(postback(None, &[("cid", &missing.click_id)]), "p1", T0 + 10);
    assert!(join
        .on_postback(&account, pb, 3, T0 + 10)
        .unwrap()
        .is_none());
    // Not caught up: wall time alone decides nothing (the click may be in the backlog).
    assert!(join
        .advance(&account, false, T0 + 60_000)
        .unwrap()
        .is_empty());
    // Caught up, but it has not waited its grace yet.
    assert!(join
        .advance(&account, true, T0 + 10 + account.grace_ms)
        .unwrap()
        .is_empty());
    let out = join
        .advance(&account, true, T0 + 11 + account.grace_ms)
        .unwrap();
    assert_eq!(out.len(), 1);
    assert!(matches!(&out[0], (3, Outcome::Unattributed(u)) if u.reason == Reason::UnknownClickId));
    // A later click no longer attributes it: the postback already has its row.
    assert!(join.on_click(&account, &missing).unwrap().is_empty());
}

#[test]
fn newer_clicks_decide_a_missing_click_without_the_wall_clock() {
    let account = account();
    let mut join = join();
    let missing = click(&account, T0, "1");
    let pb = at(postback(None, &[("cid", &missing.click_id)]), "p1", T0 + 10);
    assert!(join.on_postback(&account, pb, 3, T0).unwrap().is_none());
    let newer = click(&account, T0 + account.grace_ms, "1");
    assert!(join.on_click(&account, &newer).unwrap().is_empty());
    let newest = click(&account, T0 + account.grace_ms + 1, "1");
    let out = join.on_click(&account, &newest).unwrap();
    assert!(
        matches!(out.as_slice(), [(3, Outcome::Unattributed(u))] if u.reason == Reason::UnknownClickId)
    );
}

#[test]
fn expired_duplicate_and_status_update() {
    let mut account = account();
    account.offers.get_mut("1").unwrap().window_ms = 1_000;
    let mut join = join();
    let c = click(&account, T0, "1");
    join.on_click(&account, &c).unwrap();

    let late = at(
        postback(None, &[("cid", &c.click_id), ("offer", "1")]),
        "late",
        T0 + 5_000,
    );
    assert_eq!(
        reason(join.on_postback(&account, late, 0, T0).unwrap()),
        Some(Reason::Expired)
    );

    account.offers.get_mut("1").unwrap().window_ms = DEFAULT_WINDOW_MS;
    let first = at(
        postback(None, &[("cid", &c.click_id), ("status", "pending")]),
        "a",
        T0 + 1,
    );
    let v1 = attributed(&mut join, &account, first.clone(), 1);
    let retry = at(
        postback(None, &[("cid", &c.click_id), ("status", "pending")]),
        "b",
        T0 + 2,
    );
    assert_eq!(
        reason(join.on_postback(&account, retry, 2, T0).unwrap()),
        Some(Reason::Duplicate)
    );
    let replay = join.on_postback(&account, first, 1, T0).unwrap();
    assert_eq!(replay, Some(Outcome::Attributed(v1.clone())));

    let chargeback = at(
        postback(None, &[("cid", &c.click_id), ("status", "chargeback")]),
        "c",
        T0 + 3,
    );
    let v2 = attributed(&mut join, &account, chargeback, 3);
    assert_eq!(v2.conversion_id, v1.conversion_id);
    assert!(v2.version > v1.version);
    assert_eq!(v2.status, "chargeback");
}

#[test]
fn a_replay_after_a_configuration_change_is_the_row_first_written() {
    let mut account = account();
    let mut join = join();
    let c = click(&account, T0, "1");
    join.on_click(&account, &c).unwrap();
    let first = at(
        postback(None, &[("cid", &c.click_id), ("payout", "4.20")]),
        "a",
        T0 + 1,
    );
    let v1 = attributed(&mut join, &account, first.clone(), 1);
    assert_eq!(v1.payout, "4.20".parse().unwrap());

    // The offer now pays a fixed amount; the same record again keeps its first row.
    account.offers.get_mut("1").unwrap().payout =
        crate::model::PayoutModel::Fixed("9".parse().unwrap());
    let replay = join.on_postback(&account, first, 1, T0).unwrap();
    assert_eq!(replay, Some(Outcome::Attributed(v1.clone())));

    // What the state keeps of it is small: the first row is rebuilt from it.
    let key = format!("click:{}:{}", c.click_id, v1.event);
    let seen = join.store.seen(&key, c.time_ms).unwrap().unwrap();
    assert_eq!(seen, Seen::of(&v1));
    let stored = serde_json::to_vec(&seen).unwrap();
    assert!(stored.len() < 100, "{}", String::from_utf8_lossy(&stored));
}

#[test]
fn conversion_ids_are_the_first_16_bytes_of_the_sha256_in_hex() {
    // SHA-256 of "abc".
    assert_eq!(conversion_id("abc"), "ba7816bf8f01cfea414140de5dae2223");
}

#[test]
fn memory_store_expires_whole_buckets() {
    let account = account();
    let mut store = MemoryStore::default();
    store
        .put_click(JoinClick::new(&click(&account, 10, "1"), SubSet::NONE))
        .unwrap();
    store
        .put_click(JoinClick::new(
            &click(&account, 2 * DAY_MS + 5, "1"),
            SubSet::NONE,
        ))
        .unwrap();
    store.expire(DAY_MS + 1).unwrap();
    assert_eq!(store.clicks_len(), 1);
}

#[test]
fn a_postback_keyed_under_another_configuration_is_flagged_at_once() {
    // Ingest, before a reload, refused the foreign ID and keyed the postback by its own ID;
    // the joiner, after it, accepts foreign IDs: the click lives on the foreign ID's partition.
    let before = account();
    let mut after = account();
    after.global_route.accept_foreign_ids = true;
    let mut record = at(
        postback(None, &[("cid", "gclid-123"), ("payout", "2")]),
        "pb-1",
        T0,
    );
    record.key = crate::classify::partition_key(&before, &record);
    assert_eq!(
        record.key, "pb-1",
        "keyed by its postback ID before the reload"
    );

    let mut join = join();
    match join.on_postback(&after, record.clone(), 0, T0).unwrap() {
        Some(Outcome::Unattributed(row)) => {
            assert_eq!(row.reason, Reason::UnknownClickId);
            assert_eq!(row.hint, hints::KEYED_ELSEWHERE);
        }
        other => panic!("not flagged at once: {other:?}"),
    }
    assert_eq!(
        join.pending_len(),
        0,
        "nothing waits for a click that cannot come here"
    );

    // The same postback keyed under the joiner's configuration waits for its click as usual.
    record.key = crate::classify::partition_key(&after, &record);
    assert_eq!(record.key, "gclid-123");
    assert_eq!(join.on_postback(&after, record, 1, T0).unwrap(), None);
}

#[test]
fn conversions_carry_their_clicks_country_device_type_os_and_browser() {
    let account = account();
    let mut join = join();
    let mut c = click(&account, T0, "1");
    c.country = "FR".into();
    c.enrichment.device_type = "tablet".into();
    c.enrichment.os = "iPadOS".into();
    c.enrichment.browser = "Safari".into();
    c.enrichment.city = "Paris".into();
    join.on_click(&account, &c).unwrap();
    let pb = at(postback(None, &[("cid", &c.click_id)]), "p1", T0 + 10);
    let first = attributed(&mut join, &account, pb.clone(), 0);
    let carried = |c: &Conversion| {
        (
            c.country.clone(),
            c.device_type.clone(),
            c.os.clone(),
            c.browser.clone(),
        )
    };
    assert_eq!(
        carried(&first),
        (
            "FR".into(),
            "tablet".into(),
            "iPadOS".into(),
            "Safari".into()
        )
    );
    // A replay rebuilds the row from the seen entry and the click: the same fields.
    assert_eq!(attributed(&mut join, &account, pb, 0), first);
    // A postback waiting for its click gets them when the click arrives.
    let mut late = click(&account, T0 + 5, "1");
    late.country = "BR".into();
    late.enrichment.device_type = "mobile".into();
    late.enrichment.os = "Android".into();
    late.enrichment.browser = "Chrome".into();
    let pb = at(postback(None, &[("cid", &late.click_id)]), "p2", T0 + 6);
    assert!(join.on_postback(&account, pb, 1, T0 + 6).unwrap().is_none());
    match join.on_click(&account, &late).unwrap().as_slice() {
        [(1, Outcome::Attributed(conversion))] => {
            assert_eq!(
                carried(conversion),
                (
                    "BR".into(),
                    "mobile".into(),
                    "Android".into(),
                    "Chrome".into()
                )
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn conversions_carry_the_configured_subs_of_their_click() {
    let account = account();
    assert_eq!(account.conversion_subs.bits(), 0b11, "sub1 and sub2");
    let mut join = join();
    let mut c = click(&account, T0, "1");
    c.subs = ["pub-7", "", "mobile"].map(String::from).to_vec();
    join.on_click(&account, &c).unwrap();
    let pb = at(postback(None, &[("cid", &c.click_id)]), "p1", T0 + 10);
    let first = attributed(&mut join, &account, pb.clone(), 0);
    // sub2 is carried empty (the click had none); sub3 is not carried.
    assert_eq!(
        first.subs,
        CarriedSubs {
            carried: account.conversion_subs,
            values: vec!["pub-7".into()],
        }
    );
    assert_eq!(attributed(&mut join, &account, pb, 0), first, "a replay");

    // A click kept under a configuration that carried no subs: its conversions carry none,
    // whatever the configuration says now, and a report reads their subs from the click.
    let before = Account {
        conversion_subs: SubSet::NONE,
        ..account.clone()
    };
    let old = click(&before, T0 + 1, "1");
    join.on_click(&before, &old).unwrap();
    let pb = at(postback(None, &[("cid", &old.click_id)]), "p2", T0 + 20);
    assert!(attributed(&mut join, &account, pb, 1).subs.is_empty());
}
