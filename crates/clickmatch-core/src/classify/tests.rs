use super::*;
use crate::click_id::ClickIdSigner;
use crate::model::{Campaign, DEFAULT_WINDOW_MS};
use crate::records::RECORD_VERSION;
use std::collections::BTreeMap;

pub fn account() -> Account {
    let mut lead = Route::new("lead");
    lead.offer_id = Some("2".into());
    lead.default_event = "lead".into();
    lead.token = Some(crate::model::Secret::new("tok"));
    let mut offers = BTreeMap::new();
    for id in ["1", "2"] {
        offers.insert(
            id.to_string(),
            Offer {
                id: id.into(),
                network: None,
                payout: PayoutModel::FromPostback,
                window_ms: DEFAULT_WINDOW_MS,
                dedup: DedupMode::ClickEvent,
                default_payout: None,
                tracked: false,
            },
        );
    }
    let mut campaigns = BTreeMap::new();
    campaigns.insert(
        "demo".to_string(),
        Campaign {
            id: "demo".into(),
            offer_id: "1".into(),
            url_template: "https://net.example/?s={click_id}".into(),
            source: "".into(),
            postback_url: None,
            cost: None,
        },
    );
    Account {
        signer: ClickIdSigner::new(b"k".to_vec(), vec![]),
        campaigns,
        offers,
        global_route: Route::new("global"),
        routes: BTreeMap::from([("lead".to_string(), lead)]),
        grace_ms: 5_000,
        currency: crate::money::Currency::USD,
        max_rate_age_days: crate::model::DEFAULT_MAX_RATE_AGE_DAYS,
        conversion_subs: crate::subs::SubSet::parse(["sub1", "sub2"]).unwrap(),
    }
}

pub fn postback(route: Option<&str>, params: &[(&str, &str)]) -> PostbackRecord {
    PostbackRecord {
        v: RECORD_VERSION,
        postback_id: "pb-1".into(),
        received_ms: 1_764_000_100_000,
        method: "GET".into(),
        route: route.map(str::to_string),
        params: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        remote_ip: "192.0.2.1".into(),
        verdict: IngestVerdict::Accepted,
        key: String::new(),
        origin: Default::default(),
    }
}

fn reason_of(account: &Account, record: &PostbackRecord) -> Option<Reason> {
    match classify(account, record) {
        Classified::Final(u) => Some(u.reason),
        Classified::Joinable(_) => None,
    }
}

#[test]
fn reaches_each_stateless_reason() {
    let account = account();
    let id = account.signer.mint(1_764_000_000_000, 9).to_string();
    let mut forged = id.clone();
    let last = if forged.ends_with('0') { "1" } else { "0" };
    forged.replace_range(25..26, last);

    let cases: Vec<(PostbackRecord, Option<Reason>)> = vec![
        (postback(None, &[("cid", &id), ("payout", "1.5")]), None),
        (postback(None, &[("CID", &id)]), None),
        (postback(None, &[("clickid", &id)]), None),
        (
            postback(Some("nope"), &[("cid", &id)]),
            Some(Reason::UnknownRoute),
        ),
        (
            postback(None, &[("payout", "1")]),
            Some(Reason::MissingClickId),
        ),
        (postback(None, &[("cid", "")]), Some(Reason::MissingClickId)),
        (
            postback(None, &[("cid", "{click_id}")]),
            Some(Reason::UnsubstitutedMacro),
        ),
        (
            postback(None, &[("cid", &id[..20])]),
            Some(Reason::MalformedClickId),
        ),
        (
            postback(None, &[("cid", &forged)]),
            Some(Reason::InvalidSignature),
        ),
    ];
    for (record, expected) in cases {
        assert_eq!(
            reason_of(&account, &record),
            expected,
            "{:?}",
            record.params
        );
    }

    let mut unauthorized = postback(Some("lead"), &[("cid", &id)]);
    unauthorized.verdict = IngestVerdict::Unauthorized;
    assert_eq!(
        reason_of(&account, &unauthorized),
        Some(Reason::Unauthorized)
    );
}

#[test]
fn extracts_route_fields_with_defaults() {
    let account = account();
    let lead = account.route(Some("lead")).unwrap();
    let got = extract(
        lead,
        &postback(Some("lead"), &[("sum", "2.50"), ("txid", "t1")]).params,
    );
    assert_eq!(got.offer_id.as_deref(), Some("2"));
    assert_eq!(got.event, "lead");
    assert_eq!(got.payout_raw.as_deref(), Some("2.50"));
    assert_eq!(got.txid.as_deref(), Some("t1"));
    assert_eq!(got.status, "approved");
    assert_eq!(got.currency_raw, None);
    assert_eq!(got.default_currency.as_str(), "USD");
}

#[test]
fn payout_models() {
    let extracted = Extracted {
        payout_raw: Some("100".into()),
        ..Extracted::default()
    };
    let payout = |model| extracted.book_payout(model, None).payout;
    assert_eq!(payout(PayoutModel::FromPostback), Decimal::new(100, 0));
    assert_eq!(
        payout(PayoutModel::Fixed(Decimal::new(7, 0))),
        Decimal::new(7, 0)
    );
    assert_eq!(
        payout(PayoutModel::RevShare(Decimal::new(25, 2))),
        Decimal::new(25, 0)
    );
}

#[test]
fn partition_key_is_the_canonical_click_id() {
    let account = account();
    let id = account.signer.mint(1_764_000_000_000, 9).to_string();
    let record = postback(None, &[("cid", &id.to_uppercase())]);
    assert_eq!(partition_key(&account, &record), id);
    let record = postback(None, &[("cid", "{click_id}")]);
    assert_eq!(partition_key(&account, &record), "pb-1");
}
