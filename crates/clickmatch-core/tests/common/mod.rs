//! Shared fixtures for the core integration tests: an account with one route per network
//! dialect, built through the public model API, and postback records.

#![allow(dead_code)]

use std::collections::BTreeMap;

use clickmatch_core::classify::{diagnose, Classified, ClickRef};
use clickmatch_core::model::{
    Account, Campaign, DedupMode, Offer, PayoutModel, Route, Secret, DAY_MS, DEFAULT_WINDOW_MS,
};
use clickmatch_core::records::{IngestVerdict, PostbackRecord, RECORD_VERSION};
use clickmatch_core::{ClickId, ClickIdSigner, Reason};

/// When every test postback is received.
pub const NOW_MS: u64 = 1_764_000_100_000;
/// When the test clicks happened: an hour before.
pub const CLICK_MS: u64 = NOW_MS - 3_600_000;

pub const SECRET: &[u8] = b"dialects-secret";
pub const TOKEN: &str = "cake-token";

pub fn signer() -> ClickIdSigner {
    ClickIdSigner::new(SECRET.to_vec(), vec![])
}

/// A genuine click ID minted an hour before the postbacks.
pub fn genuine(n: u64) -> ClickId {
    signer().mint(CLICK_MS, 0x5eed_0000 + n)
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// One per-offer route (and its offer, of that network) per dialect.
struct Dialect {
    route: &'static str,
    network: &'static str,
    click_id: &'static [&'static str],
    payout: &'static [&'static str],
    txid: &'static [&'static str],
}

const DIALECTS: &[Dialect] = &[
    Dialect {
        route: "tune",
        network: "tune",
        click_id: &["aff_sub", "cid"],
        payout: &["payout"],
        txid: &["transaction_id"],
    },
    Dialect {
        route: "cake",
        network: "cake",
        click_id: &["s2"],
        payout: &["price"],
        txid: &["tid"],
    },
    Dialect {
        route: "maxbounty",
        network: "MaxBounty",
        click_id: &["s2"],
        payout: &["rate"],
        txid: &["tid"],
    },
    Dialect {
        route: "everflow",
        network: "everflow",
        click_id: &["sub1", "cid"],
        payout: &["payout_amount", "payout"],
        txid: &["transaction_id"],
    },
    Dialect {
        route: "affise",
        network: "affise",
        click_id: &["clickid"],
        payout: &["sum"],
        txid: &["transactionid"],
    },
    Dialect {
        route: "impact",
        network: "impact",
        click_id: &["subid1"],
        payout: &["payout"],
        txid: &["oid"],
    },
    Dialect {
        route: "awin",
        network: "awin",
        click_id: &["clickref"],
        payout: &["commission"],
        txid: &["transaction_id"],
    },
    Dialect {
        route: "admitad",
        network: "admitad",
        click_id: &["subid"],
        payout: &["payment_sum"],
        txid: &["order_id"],
    },
    Dialect {
        route: "adcombo",
        network: "adcombo",
        click_id: &["subid"],
        payout: &["payout"],
        txid: &["order_id"],
    },
    Dialect {
        route: "keitaro",
        network: "keitaro",
        click_id: &["subid"],
        payout: &["payout"],
        txid: &["tid"],
    },
    Dialect {
        route: "voluum",
        network: "voluum",
        click_id: &["cid", "clickid"],
        payout: &["payout"],
        txid: &["txid"],
    },
    Dialect {
        route: "prosper202",
        network: "Prosper202",
        click_id: &["subid"],
        payout: &["amount"],
        txid: &["txid"],
    },
    Dialect {
        route: "binom",
        network: "binom",
        click_id: &["cnv_id"],
        payout: &["payout"],
        txid: &["txid"],
    },
    Dialect {
        route: "redtrack",
        network: "redtrack",
        click_id: &["clickid"],
        payout: &["sum"],
        txid: &["txid"],
    },
    Dialect {
        route: "clickbank",
        network: "clickbank",
        click_id: &["tid"],
        payout: &["amount"],
        txid: &["receipt"],
    },
];

/// The account: the global route with the default names, and one route per dialect. `cake`
/// has a token; `affise` maps Affise's numeric statuses; `voluum-foreign` accepts foreign IDs;
/// `ip-only` checks source IPs only.
pub fn account() -> Account {
    let mut offers = BTreeMap::new();
    let mut routes = BTreeMap::new();
    offers.insert(
        "1".to_string(),
        Offer {
            id: "1".into(),
            network: None,
            payout: PayoutModel::FromPostback,
            window_ms: DEFAULT_WINDOW_MS,
            dedup: DedupMode::ClickEvent,
            default_payout: None,
            tracked: false,
        },
    );
    for (n, dialect) in DIALECTS.iter().enumerate() {
        let offer_id = format!("{}", n + 10);
        offers.insert(
            offer_id.clone(),
            Offer {
                id: offer_id.clone(),
                network: Some(dialect.network.to_string()),
                payout: PayoutModel::FromPostback,
                window_ms: 30 * DAY_MS,
                dedup: DedupMode::ClickEvent,
                default_payout: None,
                tracked: false,
            },
        );
        let mut route = Route::new(dialect.route);
        route.offer_id = Some(offer_id);
        route.params.click_id = names(dialect.click_id);
        route.params.payout = names(dialect.payout);
        route.params.txid = names(dialect.txid);
        routes.insert(dialect.route.to_string(), route);
    }
    let cake = routes.get_mut("cake").expect("cake route");
    cake.token = Some(Secret::new(TOKEN));
    cake.default_event = "lead".into();
    let affise = routes.get_mut("affise").expect("affise route");
    affise.status_map = BTreeMap::from([
        ("1".to_string(), "approved".to_string()),
        ("2".to_string(), "pending".to_string()),
        ("3".to_string(), "declined".to_string()),
        ("5".to_string(), "hold".to_string()),
    ]);
    affise.dedup = Some(DedupMode::Transaction);
    let mut foreign = routes["voluum"].clone();
    foreign.name = "voluum-foreign".into();
    foreign.accept_foreign_ids = true;
    routes.insert(foreign.name.clone(), foreign);
    let mut ip_only = Route::new("ip-only");
    ip_only.allow_ips = vec!["203.0.113.0/24".parse().expect("net")];
    routes.insert(ip_only.name.clone(), ip_only);

    let campaigns = BTreeMap::from([(
        "demo".to_string(),
        Campaign {
            id: "demo".into(),
            offer_id: "1".into(),
            url_template: "https://net.example/?aff_sub={click_id}".into(),
            source: String::new(),
            postback_url: None,
            cost: None,
        },
    )]);
    Account {
        signer: signer(),
        campaigns,
        offers,
        global_route: Route::new("global"),
        routes,
        grace_ms: 5_000,
        currency: clickmatch_core::money::Currency::USD,
        max_rate_age_days: clickmatch_core::model::DEFAULT_MAX_RATE_AGE_DAYS,
        conversion_subs: clickmatch_core::subs::SubSet::NONE,
    }
}

/// A recorded postback to `route` (`None`: `/postback`) with `params` in this order.
pub fn postback(route: Option<&str>, params: &[(&str, &str)]) -> PostbackRecord {
    postback_owned(
        route,
        params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

pub fn postback_owned(route: Option<&str>, params: Vec<(String, String)>) -> PostbackRecord {
    PostbackRecord {
        v: RECORD_VERSION,
        postback_id: "pb-test".into(),
        received_ms: NOW_MS,
        method: "GET".into(),
        route: route.map(str::to_string),
        params,
        remote_ip: "192.0.2.1".into(),
        verdict: IngestVerdict::Accepted,
        key: String::new(),
        origin: Default::default(),
    }
}

/// What a postback should end in before the join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// Joinable with this signed click ID, nothing repaired.
    Clean(ClickId),
    /// Joinable with this signed click ID, repaired, with this hint.
    Repaired(ClickId, &'static str),
    /// Joinable with this foreign ID.
    Foreign(String),
    /// Unattributed with this reason and hint.
    Final(Reason, &'static str),
}

/// The outcome of `record`, in [`Expect`]'s terms.
pub fn outcome(account: &Account, record: &PostbackRecord) -> Expect {
    let diagnosis = diagnose(account, record);
    let sentence = diagnosis.sentence();
    match diagnosis.classified {
        Classified::Joinable(candidate) => match (candidate.click, candidate.repair) {
            (ClickRef::Signed(id), None) => {
                assert_eq!(sentence, None);
                Expect::Clean(id)
            }
            (ClickRef::Signed(id), Some(hint)) => {
                assert_eq!(diagnosis.hint, Some(hint));
                Expect::Repaired(id, hint)
            }
            (ClickRef::Foreign(value), _) => Expect::Foreign(value),
        },
        Classified::Final(row) => {
            let hint = diagnosis.hint.expect("a final outcome has a hint");
            assert_eq!(row.hint, hint, "the row carries the diagnosis' hint");
            assert!(sentence.is_some());
            Expect::Final(row.reason, hint)
        }
    }
}
