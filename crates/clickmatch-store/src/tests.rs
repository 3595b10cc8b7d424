use super::*;
use clickmatch_core::click_id::ClickIdSigner;
use clickmatch_core::model::DAY_MS;
use clickmatch_core::records::{Conversion, IngestVerdict, PostbackRecord, RECORD_VERSION};
use clickmatch_core::subs::{CarriedSubs, SubSet};
use proptest::prelude::*;

const T0: u64 = 1_764_000_000_000;

fn click(signer: &ClickIdSigner, time_ms: u64) -> JoinClick {
    JoinClick {
        click_id: signer.mint(time_ms, time_ms ^ 0x5555).to_string(),
        time_ms,
        campaign_id: "demo".into(),
        offer_id: "1".into(),
        is_test: time_ms.is_multiple_of(2),
        foreign: false,
        country: "DE".into(),
        device_type: "mobile".into(),
        os: "Android".into(),
        browser: "Chrome".into(),
        subs: CarriedSubs::of(&["pub-1".into()], SubSet::parse(["sub1", "sub2"]).unwrap()),
    }
}

fn checkpoint(clicks_next: i64) -> Checkpoint {
    Checkpoint {
        version: LAYOUT_VERSION,
        clicks_next,
        postbacks_next: 7,
        watermark_ms: T0,
    }
}

fn pending(id: &str) -> StoredPending {
    StoredPending {
        record: PostbackRecord {
            v: RECORD_VERSION,
            postback_id: id.into(),
            received_ms: T0,
            method: "GET".into(),
            route: None,
            params: vec![("cid".into(), "x".into())],
            remote_ip: String::new(),
            verdict: IngestVerdict::Accepted,
            key: String::new(),
            origin: Default::default(),
        },
        deadline_ms: T0 + 5,
        since_ms: T0,
    }
}

#[test]
fn a_layout_2_state_is_read_after_an_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let old_checkpoint = Checkpoint {
        version: 2,
        ..checkpoint(9)
    };
    {
        let db = StateDb::open(dir.path(), 8).unwrap();
        let mut store = db.partition(0).unwrap();
        // Layout 2's seen entry: the whole conversion.
        let conversion = Conversion::example();
        let whole = serde_json::json!({
            "postback_id": conversion.postback_id,
            "status": conversion.status,
            "conversion": conversion,
        });
        store.write(
            Target::Bucket(bucket_of(T0)),
            codec::seen_key("click:x:sale"),
            Some(serde_json::to_vec(&whole).unwrap()),
        );
        db.commit(&mut [(&mut store, old_checkpoint)]).unwrap();
    }
    let db = StateDb::open(dir.path(), 8).unwrap();
    assert_eq!(db.checkpoint(0).unwrap(), Some(old_checkpoint));
    let store = db.partition(0).unwrap();
    assert_eq!(
        store.seen("click:x:sale", T0).unwrap(),
        Some(Seen::of(&Conversion::example()))
    );
}

#[test]
fn checkpoints_of_other_layouts_are_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let db = StateDb::open(dir.path(), 8).unwrap();
    for version in [1, LAYOUT_VERSION + 1] {
        let mut store = db.partition(0).unwrap();
        let other = Checkpoint {
            version,
            ..checkpoint(9)
        };
        db.commit(&mut [(&mut store, other)]).unwrap();
        assert_eq!(db.checkpoint(0).unwrap(), None, "layout {version}");
    }
}

#[test]
fn corrupt_seen_entries_are_errors() {
    for bytes in [&b""[..], b"{}", b"{\"p\":1}", b"\xff"] {
        assert!(codec::decode_seen(bytes).is_err());
    }
}

#[test]
fn committed_state_survives_reopen_and_uncommitted_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let signer = ClickIdSigner::new(b"k".to_vec(), vec![]);
    let kept = click(&signer, T0);
    let lost = click(&signer, T0 + 1);
    {
        let db = StateDb::open(dir.path(), 8).unwrap();
        let mut store = db.partition(3).unwrap();
        store.put_click(kept.clone()).unwrap();
        store.put_pending(5, &pending("p5")).unwrap();
        // Reads see staged writes before the commit.
        assert_eq!(
            store.click(&kept.click_id, Some(T0)).unwrap(),
            Some(kept.clone())
        );
        db.commit(&mut [(&mut store, checkpoint(42))]).unwrap();
        store.put_click(lost.clone()).unwrap();
        // Dropped without a commit: as after a crash.
    }
    let db = StateDb::open(dir.path(), 8).unwrap();
    assert_eq!(db.checkpoint(3).unwrap(), Some(checkpoint(42)));
    assert_eq!(db.checkpoint(4).unwrap(), None);
    let store = db.partition(3).unwrap();
    assert_eq!(store.click(&kept.click_id, Some(T0)).unwrap(), Some(kept));
    assert_eq!(store.click(&lost.click_id, Some(T0 + 1)).unwrap(), None);
    let pending_list = store.pending().unwrap();
    assert_eq!(pending_list.len(), 1);
    assert_eq!(pending_list[0].0, 5);
}

#[test]
fn seen_pending_removal_and_foreign_ids() {
    let dir = tempfile::tempdir().unwrap();
    let db = StateDb::open(dir.path(), 8).unwrap();
    let mut store = db.partition(0).unwrap();
    let foreign = JoinClick {
        click_id: "VoluumMixedCase123".into(),
        time_ms: T0,
        campaign_id: "c".into(),
        offer_id: "o".into(),
        is_test: false,
        foreign: true,
        country: String::new(),
        device_type: String::new(),
        os: String::new(),
        browser: String::new(),
        subs: CarriedSubs::default(),
    };
    store.put_click(foreign.clone()).unwrap();
    let seen = Seen::of(&Conversion::example());
    store.put_seen("click:x:sale", T0, &seen).unwrap();
    store.put_pending(1, &pending("p1")).unwrap();
    store.put_pending(2, &pending("p2")).unwrap();
    db.commit(&mut [(&mut store, checkpoint(1))]).unwrap();
    store.remove_pending(1).unwrap();
    assert_eq!(
        store
            .pending()
            .unwrap()
            .iter()
            .map(|(p, _)| *p)
            .collect::<Vec<_>>(),
        vec![2]
    );
    db.commit(&mut [(&mut store, checkpoint(2))]).unwrap();

    let store = db.partition(0).unwrap();
    assert_eq!(
        store.click("VoluumMixedCase123", None).unwrap(),
        Some(foreign)
    );
    assert_eq!(store.seen("click:x:sale", T0).unwrap(), Some(seen));
    assert_eq!(store.seen("click:x:sale", T0 + 3 * DAY_MS).unwrap(), None);
    assert_eq!(store.pending().unwrap().len(), 1);
}

#[test]
fn expiry_drops_whole_day_buckets() {
    let dir = tempfile::tempdir().unwrap();
    let signer = ClickIdSigner::new(b"k".to_vec(), vec![]);
    let db = StateDb::open(dir.path(), 8).unwrap();
    let mut store = db.partition(1).unwrap();
    let old = click(&signer, T0);
    let new = click(&signer, T0 + 2 * DAY_MS);
    store.put_click(old.clone()).unwrap();
    store.put_click(new.clone()).unwrap();
    db.commit(&mut [(&mut store, checkpoint(2))]).unwrap();
    let buckets_before = db.partition_keyspaces(1).len();

    store.expire(T0 + DAY_MS).unwrap();
    assert_eq!(store.click(&old.click_id, Some(old.time_ms)).unwrap(), None);
    db.commit(&mut [(&mut store, checkpoint(3))]).unwrap();
    assert_eq!(db.partition_keyspaces(1).len(), buckets_before - 1);
    let store = db.partition(1).unwrap();
    assert_eq!(
        store.click(&new.click_id, Some(new.time_ms)).unwrap(),
        Some(new)
    );
    assert_eq!(store.click(&old.click_id, Some(old.time_ms)).unwrap(), None);
}

#[test]
fn clear_partition_removes_its_state_only() {
    let dir = tempfile::tempdir().unwrap();
    let signer = ClickIdSigner::new(b"k".to_vec(), vec![]);
    let db = StateDb::open(dir.path(), 8).unwrap();
    let mut a = db.partition(1).unwrap();
    let mut b = db.partition(2).unwrap();
    let c = click(&signer, T0);
    a.put_click(c.clone()).unwrap();
    b.put_click(c.clone()).unwrap();
    db.commit(&mut [(&mut a, checkpoint(1)), (&mut b, checkpoint(1))])
        .unwrap();
    db.clear_partition(1).unwrap();
    assert_eq!(db.checkpoint(1).unwrap(), None);
    assert_eq!(
        db.partition(1)
            .unwrap()
            .click(&c.click_id, Some(T0))
            .unwrap(),
        None
    );
    assert_eq!(
        db.partition(2)
            .unwrap()
            .click(&c.click_id, Some(T0))
            .unwrap(),
        Some(c)
    );
}

#[test]
fn a_click_written_before_its_enrichment_was_kept_reads_with_it_empty() {
    // The value layout 3 wrote until then: flags, time, campaign, offer.
    let mut old = vec![1]; // flags: a test click
    old.extend_from_slice(&T0.to_be_bytes());
    old.extend_from_slice(&[4, b'd', b'e', b'm', b'o', 1, b'7']);
    let click = codec::decode_click("id", &old).unwrap();
    assert_eq!(
        click,
        JoinClick {
            click_id: "id".into(),
            time_ms: T0,
            campaign_id: "demo".into(),
            offer_id: "7".into(),
            is_test: true,
            foreign: false,
            country: String::new(),
            device_type: String::new(),
            os: String::new(),
            browser: String::new(),
            subs: CarriedSubs::default(),
        }
    );
    // A click without either is still written that way; one with them adds both.
    assert_eq!(codec::encode_click(&click), old);
    let enriched = JoinClick {
        country: "DE".into(),
        ..click.clone()
    };
    let value = codec::encode_click(&enriched);
    assert_eq!(&value[old.len()..], &[2, b'D', b'E', 0]);
    assert_eq!(codec::decode_click("id", &value).unwrap(), enriched);
    // Cut inside the new fields: corrupt, not silently empty.
    assert!(codec::decode_click("id", &value[..value.len() - 2]).is_err());

    // The OS and browser follow as a second pair, which the reader of the release before
    // ignores: what it reads of such a value is the first pair.
    let with_os = JoinClick {
        os: "Android".into(),
        ..enriched.clone()
    };
    let value = codec::encode_click(&with_os);
    assert_eq!(
        &value[old.len()..],
        &[2, b'D', b'E', 0, 7, b'A', b'n', b'd', b'r', b'o', b'i', b'd', 0]
    );
    assert_eq!(codec::decode_click("id", &value).unwrap(), with_os);
    assert!(codec::decode_click("id", &value[..value.len() - 1]).is_err());

    // The carried subs follow the four enrichment fields, all written, so that the reader of
    // the release before reads those four and ignores the subs.
    let with_subs = JoinClick {
        subs: CarriedSubs::of(
            &["pub-1".into(), String::new(), "x".into()],
            SubSet::parse(["sub1", "sub2"]).unwrap(),
        ),
        ..enriched.clone()
    };
    let value = codec::encode_click(&with_subs);
    assert_eq!(
        &value[old.len()..],
        &[2, b'D', b'E', 0, 0, 0, 0, 0b11, 5, b'p', b'u', b'b', b'-', b'1', 0]
    );
    assert_eq!(codec::decode_click("id", &value).unwrap(), with_subs);
    for cut in 1..=8 {
        assert!(
            codec::decode_click("id", &value[..value.len() - cut]).is_err(),
            "cut by {cut}"
        );
    }
    // Carried and empty is not the same as not carried.
    let empty_carried = JoinClick {
        subs: CarriedSubs::of(&[], SubSet::parse(["sub3"]).unwrap()),
        ..click.clone()
    };
    let value = codec::encode_click(&empty_carried);
    assert_eq!(&value[old.len()..], &[0, 0, 0, 0, 0, 0b100, 0]);
    assert_eq!(codec::decode_click("id", &value).unwrap(), empty_carried);
}

proptest! {
    #[test]
    fn click_values_round_trip(time in 0u64..(1 << 48), campaign in "[a-z0-9_-]{0,64}", offer in "[a-z0-9_-]{0,64}", test: bool, foreign: bool, country in "([A-Z]{2})?", device_type in "(desktop|mobile|tablet|tv|bot|other)?", os in "(Android|iOS|Windows 10|Mac OSX)?", browser in "(Chrome|Safari|Firefox)?", subs in proptest::collection::vec(".{0,40}", 0..12), carried in 0u16..1024) {
        let subs = CarriedSubs::of(&subs, SubSet::from_bits(carried));
        let click = JoinClick { click_id: "id".into(), time_ms: time, campaign_id: campaign, offer_id: offer, is_test: test, foreign, country, device_type, os, browser, subs };
        prop_assert_eq!(codec::decode_click("id", &codec::encode_click(&click)).unwrap(), click);
    }

    #[test]
    fn corrupt_values_are_errors_not_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
        let _ = codec::decode_click("id", &bytes);
        let _ = codec::position(&bytes);
    }
}

#[test]
fn a_sealed_batch_commits_alone_while_newer_writes_stay_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let signer = ClickIdSigner::new(b"k".to_vec(), vec![]);
    let first = click(&signer, T0);
    let second = click(&signer, T0 + 1);
    {
        let db = StateDb::open(dir.path(), 8).unwrap();
        let mut store = db.partition(1).unwrap();
        store.put_click(first.clone()).unwrap();
        store.put_pending(5, &pending("p5")).unwrap();
        store.seal(1, checkpoint(10));
        // Batch 2, joined while batch 1 is being written: overrides batch 1's pending entry.
        store.put_click(second.clone()).unwrap();
        store.remove_pending(5).unwrap();
        store.seal(2, checkpoint(20));
        store.put_pending(6, &pending("p6")).unwrap();
        // Every write is readable before any commit, the newest winning.
        assert_eq!(
            store.click(&first.click_id, Some(T0)).unwrap(),
            Some(first.clone())
        );
        let positions: Vec<i64> = store.pending().unwrap().iter().map(|p| p.0).collect();
        assert_eq!(positions, vec![6]);
        db.commit_sealed(&mut [&mut store], 1).unwrap();
        assert_eq!(
            store.click(&second.click_id, Some(T0 + 1)).unwrap(),
            Some(second.clone())
        );
        // Crash before batch 2 is committed.
    }
    let db = StateDb::open(dir.path(), 8).unwrap();
    assert_eq!(db.checkpoint(1).unwrap(), Some(checkpoint(10)));
    let store = db.partition(1).unwrap();
    assert_eq!(store.click(&first.click_id, Some(T0)).unwrap(), Some(first));
    assert_eq!(store.click(&second.click_id, Some(T0 + 1)).unwrap(), None);
    let positions: Vec<i64> = store.pending().unwrap().iter().map(|p| p.0).collect();
    assert_eq!(positions, vec![5]);
}

#[test]
fn sealed_batches_commit_together_with_the_newest_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let db = StateDb::open(dir.path(), 8).unwrap();
    let mut store = db.partition(2).unwrap();
    store.put_pending(5, &pending("p5")).unwrap();
    store.seal(1, checkpoint(10));
    store.remove_pending(5).unwrap();
    store.seal(2, checkpoint(20));
    db.commit_sealed(&mut [&mut store], 2).unwrap();
    assert_eq!(store.staged(), 0);
    assert_eq!(db.checkpoint(2).unwrap(), Some(checkpoint(20)));
    drop(store);
    let store = db.partition(2).unwrap();
    assert!(store.pending().unwrap().is_empty());
}
