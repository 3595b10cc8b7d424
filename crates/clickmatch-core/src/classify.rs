//! From a raw postback to either a final unattributed reason or a click to join against.
//!
//! This is everything that can be decided from the postback alone: route, authorization,
//! click-ID presence, literal macros, the ID's form and signature. Window, existence and dedup
//! need state and live in [`crate::join`].

use std::str::FromStr;

use rust_decimal::Decimal;

use crate::click_id::ClickId;
use crate::macros::{self, ValueShape};
use crate::model::{Account, DedupMode, Offer, PayoutModel, Route};
use crate::reason::Reason;
use crate::records::{IngestVerdict, PostbackRecord, Unattributed};
use crate::salvage;

/// The fields a route reads out of a postback.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Extracted {
    /// The value under the click-ID parameter, as sent.
    pub raw_click_id: Option<String>,
    pub payout_raw: Option<String>,
    pub offer_id: Option<String>,
    pub event: String,
    pub txid: Option<String>,
    /// Our status after the route's status mapping.
    pub status: String,
    pub currency: String,
}

impl Extracted {
    /// The postback's payout as a number, when it sent a readable one.
    pub fn payout_sent(&self) -> Option<Decimal> {
        self.payout_raw
            .as_deref()
            .and_then(|raw| Decimal::from_str(raw.trim()).ok())
    }

    /// The payout to book under `model`.
    pub fn payout(&self, model: PayoutModel) -> Decimal {
        match model {
            PayoutModel::Fixed(amount) => amount,
            PayoutModel::FromPostback => self.payout_sent().unwrap_or_default(),
            PayoutModel::RevShare(share) => {
                (self.payout_sent().unwrap_or_default() * share).round_dp(6)
            }
        }
    }
}

/// The click a postback names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClickRef {
    /// A clickmatch ID whose signature verified.
    Signed(ClickId),
    /// Another tracker's ID, accepted as an opaque string where the route allows it.
    Foreign(String),
}

impl ClickRef {
    /// The state key and Kafka key: the canonical text form.
    pub fn key(&self) -> String {
        match self {
            ClickRef::Signed(id) => id.to_string(),
            ClickRef::Foreign(s) => s.clone(),
        }
    }
}

/// A postback whose click can be looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub click: ClickRef,
    pub extracted: Extracted,
    /// Hint code when the click ID had to be salvaged from a mangled postback.
    pub repair: Option<&'static str>,
}

/// The result of classifying a postback on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Classified {
    /// Ends here, unattributed.
    Final(Unattributed),
    /// Goes on to the join.
    Joinable(Candidate),
}

/// First value under any of `names` (lowercase, in preference order), names compared
/// case-insensitively.
pub fn param<'a>(params: &'a [(String, String)], names: &[String]) -> Option<&'a str> {
    names.iter().find_map(|name| {
        params
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    })
}

/// Reads the route's fields out of the postback's parameters.
pub fn extract(route: &Route, params: &[(String, String)]) -> Extracted {
    let names = &route.params;
    let get = |list: &[String]| param(params, list).map(str::to_string);
    let status_raw = get(&names.status);
    let status = match status_raw {
        Some(raw) => route
            .status_map
            .get(raw.trim())
            .cloned()
            .unwrap_or_else(|| raw.trim().to_ascii_lowercase()),
        None => route.default_status.clone(),
    };
    let non_empty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    Extracted {
        raw_click_id: get(&names.click_id),
        payout_raw: non_empty(get(&names.payout)),
        offer_id: non_empty(get(&names.offer)).or_else(|| route.offer_id.clone()),
        event: non_empty(get(&names.event)).unwrap_or_else(|| route.default_event.clone()),
        txid: non_empty(get(&names.txid)),
        status,
        currency: non_empty(get(&names.currency))
            .map(|c| c.trim().to_ascii_uppercase())
            .unwrap_or_else(|| route.currency.clone()),
    }
}

/// Classifies a postback as far as it can be without state.
pub fn classify(account: &Account, record: &PostbackRecord) -> Classified {
    let route = match (record.verdict, account.route(record.route.as_deref())) {
        (IngestVerdict::UnknownRoute, _) | (_, None) => {
            let extracted = Extracted {
                raw_click_id: param(
                    record.params.as_slice(),
                    &account.global_route.params.click_id,
                )
                .map(str::to_string),
                ..Extracted::default()
            };
            return Classified::Final(unattributed(record, Reason::UnknownRoute, None, &extracted));
        }
        (_, Some(route)) => route,
    };
    let extracted = extract(route, &record.params);
    if record.verdict == IngestVerdict::Unauthorized {
        return Classified::Final(unattributed(record, Reason::Unauthorized, None, &extracted));
    }

    let raw = extracted.raw_click_id.as_deref();
    let failure = match raw.map(macros::shape) {
        None | Some(ValueShape::Missing) => Reason::MissingClickId,
        Some(ValueShape::LiteralMacro) => Reason::UnsubstitutedMacro,
        Some(ValueShape::Value) => {
            let value = raw.unwrap_or_default();
            match ClickId::parse(value) {
                Ok(id) if account.signer.verify(id) => {
                    return Classified::Joinable(Candidate {
                        click: ClickRef::Signed(id),
                        extracted,
                        repair: None,
                    });
                }
                _ if route.accept_foreign_ids => {
                    return Classified::Joinable(Candidate {
                        click: ClickRef::Foreign(value.trim().to_string()),
                        extracted,
                        repair: None,
                    });
                }
                Ok(_) => Reason::InvalidSignature,
                Err(_) => Reason::MalformedClickId,
            }
        }
    };

    // Signed IDs can be recovered safely from a mangled postback: only one that verifies counts.
    let click_id_names = &route.params.click_id;
    if let Some(repaired) = salvage::salvage(raw, &record.params, click_id_names, &account.signer) {
        return Classified::Joinable(Candidate {
            click: ClickRef::Signed(repaired.id),
            extracted,
            repair: Some(repaired.hint),
        });
    }
    Classified::Final(unattributed(record, failure, None, &extracted))
}

/// The Kafka key of a postback: its click's key when it names one, else its postback ID, so
/// that a postback lands on the partition of its click.
pub fn partition_key(account: &Account, record: &PostbackRecord) -> String {
    match classify(account, record) {
        Classified::Joinable(candidate) => candidate.click.key(),
        Classified::Final(_) => record.postback_id.clone(),
    }
}

/// Builds the unattributed row for `record`.
pub fn unattributed(
    record: &PostbackRecord,
    reason: Reason,
    hint: Option<&str>,
    extracted: &Extracted,
) -> Unattributed {
    Unattributed {
        postback_id: record.postback_id.clone(),
        received_time_ms: record.received_ms,
        route: record.route_label().to_string(),
        reason,
        raw_click_id: extracted.raw_click_id.clone().unwrap_or_default(),
        offer_id: extracted.offer_id.clone().unwrap_or_default(),
        payout: extracted.payout_sent().unwrap_or_default(),
        currency: extracted.currency.clone(),
        remote_ip: record.remote_ip.clone(),
        raw_params: record.params_json(),
        hint: hint.unwrap_or(reason.default_hint()).to_string(),
        is_test: false,
    }
}

/// The dedup mode for a conversion on `offer` through `route`.
pub fn dedup_mode(route: Option<&Route>, offer: Option<&Offer>) -> DedupMode {
    route
        .and_then(|r| r.dedup)
        .or(offer.map(|o| o.dedup))
        .unwrap_or_default()
}

#[cfg(test)]
pub(crate) mod tests {
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
            },
        );
        Account {
            signer: ClickIdSigner::new(b"k".to_vec(), vec![]),
            campaigns,
            offers,
            global_route: Route::new("global"),
            routes: BTreeMap::from([("lead".to_string(), lead)]),
            grace_ms: 5_000,
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
        assert_eq!(got.payout_sent(), Some(Decimal::new(250, 2)));
        assert_eq!(got.txid.as_deref(), Some("t1"));
        assert_eq!(got.status, "approved");
        assert_eq!(got.currency, "USD");
    }

    #[test]
    fn payout_models() {
        let extracted = Extracted {
            payout_raw: Some("100".into()),
            ..Extracted::default()
        };
        assert_eq!(
            extracted.payout(PayoutModel::FromPostback),
            Decimal::new(100, 0)
        );
        assert_eq!(
            extracted.payout(PayoutModel::Fixed(Decimal::new(7, 0))),
            Decimal::new(7, 0)
        );
        assert_eq!(
            extracted.payout(PayoutModel::RevShare(Decimal::new(25, 2))),
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
}
