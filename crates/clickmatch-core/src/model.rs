//! The account's domain model: campaigns, offers and postback routes, already validated.
//!
//! `clickmatch-config` builds these from TOML; everything here can be constructed in tests
//! directly.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use rust_decimal::Decimal;
use subtle::ConstantTimeEq;

use crate::click_id::ClickIdSigner;
use crate::money::Currency;
use crate::records::{ClickCostRecord, IngestVerdict};
use crate::subs::SubSet;

/// Route label of the account-level route `/postback`.
pub const GLOBAL_ROUTE: &str = "global";
/// Metric label of the postbacks to routes that are not configured.
pub const UNKNOWN_ROUTE_LABEL: &str = "unknown";

pub const DAY_MS: u64 = 24 * 60 * 60 * 1000;
/// Default attribution window.
pub const DEFAULT_WINDOW_MS: u64 = 30 * DAY_MS;
/// The longest window an offer may have.
pub const MAX_WINDOW_MS: u64 = 90 * DAY_MS;
/// How old a rate may be before a conversion is flagged `rate_missing` instead.
pub const DEFAULT_MAX_RATE_AGE_DAYS: u16 = 7;
/// The oldest a rate may ever be: past a quarter, a rate says little about today's value.
pub const MAX_RATE_AGE_DAYS: u16 = 90;

/// Everything the pure logic needs to know about an account.
#[derive(Debug, Clone)]
pub struct Account {
    pub signer: ClickIdSigner,
    pub campaigns: BTreeMap<String, Campaign>,
    pub offers: BTreeMap<String, Offer>,
    /// The global route `/postback` that every offer inherits.
    pub global_route: Route,
    /// Per-offer routes `/postback/{name}`.
    pub routes: BTreeMap<String, Route>,
    /// How long a postback may wait for its click, past the click's time, before it is
    /// `unknown_click_id`.
    pub grace_ms: u64,
    /// What the account reports revenue, cost and profit in; also the currency of a route or
    /// campaign that names none.
    pub currency: Currency,
    /// A day without an exchange rate uses the latest earlier one up to this age.
    pub max_rate_age_days: u16,
    /// The click's subs each conversion row carries (`[joiner] conversion_subs`).
    pub conversion_subs: SubSet,
}

impl Account {
    /// The route for `/postback` (`None`) or `/postback/{name}`.
    pub fn route(&self, name: Option<&str>) -> Option<&Route> {
        match name {
            None => Some(&self.global_route),
            Some(name) => self.routes.get(name),
        }
    }

    /// The configured route a URL or a row names (`global` for `/postback`), as a label:
    /// metrics and rate limits key on it, so made-up route names never grow their label sets.
    /// `None` for a route that is not configured.
    pub fn route_label<'a>(&'a self, name: &str) -> Option<&'a str> {
        let route = if name == GLOBAL_ROUTE {
            Some(&self.global_route)
        } else {
            self.routes.get(name)
        };
        route.map(|r| r.name.as_str())
    }

    /// The longest window of any offer: past it a click is expired whatever its offer.
    pub fn max_window_ms(&self) -> u64 {
        self.offers
            .values()
            .map(|o| o.window_ms)
            .max()
            .unwrap_or(DEFAULT_WINDOW_MS)
    }
}

/// A traffic-source entry point: `GET /c/{id}` redirects to `url_template`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Campaign {
    pub id: String,
    pub offer_id: String,
    /// The offer URL with `{click_id}`, `{sub1}`…`{sub10}` and other tokens to substitute.
    pub url_template: String,
    pub source: String,
    /// The traffic source's postback template (`{sub1}`…`{sub10}`, `{click_id}`, `{payout}`,
    /// `{currency}`, `{offer_id}`, `{event}`, `{status}`, `{txid}`, `{conversion_id}`), fired
    /// by the outbound dispatcher for each attributed conversion; `None`: nothing is fired.
    pub postback_url: Option<String>,
    /// What each click costs; `None`: clicks carry no cost (spend comes from `costs import`).
    pub cost: Option<ClickCost>,
}

/// A campaign's cost per click (`cost_model = "cpc"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClickCost {
    /// The fixed CPC, booked when the click URL carries no readable cost.
    pub fixed: Option<Decimal>,
    /// The click-URL parameter the traffic source substitutes its per-click cost into
    /// (`cost={cost}`); a readable value there overrides `fixed`.
    pub param: Option<String>,
    pub currency: Currency,
}

impl ClickCost {
    /// What a click costs, given the value of the click URL's cost parameter (`None` when the
    /// campaign reads none or the URL lacks it). Never refuses: an unreadable value is kept raw
    /// and flagged, since the visitor's redirect must not depend on the source's macro.
    pub fn book(&self, param_value: Option<&str>) -> ClickCostRecord {
        let booked = crate::money::book_cost(param_value, self.fixed, self.currency);
        ClickCostRecord {
            amount: booked.cost,
            currency: booked.currency.to_string(),
            raw: booked.cost_raw,
            issue: crate::money::issue_code(booked.issue).to_string(),
        }
    }
}

/// How an offer's payout is determined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayoutModel {
    /// The payout parameter of the postback (0 when absent).
    FromPostback,
    /// A fixed amount whatever the postback says.
    Fixed(Decimal),
    /// A share (0..=1) of the sale amount sent in the payout parameter.
    RevShare(Decimal),
}

/// Which repeats of a conversion are duplicates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DedupMode {
    /// One conversion per click and event (TUNE/Everflow `{transaction_id}` identify the click).
    #[default]
    ClickEvent,
    /// One per transaction ID (CAKE `#leadid#`, Affise `{transactionid}`).
    Transaction,
    /// Every postback is a conversion.
    All,
}

/// What the network pays for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub id: String,
    /// Network preset name (dialect), when known.
    pub network: Option<String>,
    pub payout: PayoutModel,
    pub window_ms: u64,
    pub dedup: DedupMode,
    /// Booked when the postback's payout is missing or cannot be read (the conversion keeps
    /// the raw text and a `payout_issue`); `None`: 0 is booked.
    pub default_payout: Option<Decimal>,
    /// Its clicks and attributed postbacks are counted by offer in the joiner's metrics (an
    /// `offer` label), which the postbacks-stopped alert reads. Opt-in, to keep labels few.
    pub tracked: bool,
}

/// Parameter names (lowercase) and aliases a route reads, in preference order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamNames {
    pub click_id: Vec<String>,
    pub payout: Vec<String>,
    pub offer: Vec<String>,
    pub event: Vec<String>,
    pub txid: Vec<String>,
    pub status: Vec<String>,
    pub currency: Vec<String>,
    pub token: Vec<String>,
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

impl Default for ParamNames {
    fn default() -> Self {
        ParamNames {
            click_id: names(&["cid", "clickid", "click_id", "subid", "sub_id", "aff_sub"]),
            payout: names(&["payout", "sum", "amount", "revenue"]),
            offer: names(&["offer", "offer_id", "oid"]),
            event: names(&["event", "goal"]),
            txid: names(&["txid", "transaction_id", "order_id"]),
            status: names(&["status"]),
            currency: names(&["currency", "cur"]),
            token: names(&["token"]),
        }
    }
}

/// A shared secret compared in constant time and never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn matches(&self, candidate: &str) -> bool {
        self.0.as_bytes().ct_eq(candidate.as_bytes()).into()
    }

    /// The secret itself, for building URLs an operator pastes (never for logs).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where a network sends conversions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// `global` or the name in `/postback/{name}`.
    pub name: String,
    /// The offer this route is for; `None` for the global route (the offer comes from the click).
    pub offer_id: Option<String>,
    pub params: ParamNames,
    /// Event when the postback names none (`sale`, `lead`, ...).
    pub default_event: String,
    /// Network status codes to our statuses (`"1" → approved`); unmapped values pass through.
    pub status_map: BTreeMap<String, String>,
    /// Status when the postback names none.
    pub default_status: String,
    /// Currency when the postback names none.
    pub currency: Currency,
    /// Overrides the offer's payout model.
    pub payout: Option<PayoutModel>,
    pub dedup: Option<DedupMode>,
    pub token: Option<Secret>,
    /// Source networks allowed to post here; empty = any.
    pub allow_ips: Vec<IpNet>,
    /// Accept click IDs made elsewhere (looked up as opaque strings).
    pub accept_foreign_ids: bool,
}

impl Route {
    /// A route with default names, for tests and the built-in demo.
    pub fn new(name: &str) -> Self {
        Route {
            name: name.to_string(),
            offer_id: None,
            params: ParamNames::default(),
            default_event: "sale".to_string(),
            status_map: BTreeMap::new(),
            default_status: "approved".to_string(),
            currency: Currency::USD,
            payout: None,
            dedup: None,
            token: None,
            allow_ips: Vec::new(),
            accept_foreign_ids: false,
        }
    }

    /// Token and source-IP check, done at ingest on the live request.
    pub fn authorize(&self, token: Option<&str>, remote_ip: Option<IpAddr>) -> bool {
        let token_ok = match &self.token {
            None => true,
            Some(secret) => token.is_some_and(|t| secret.matches(t)),
        };
        token_ok && self.ip_allowed(remote_ip)
    }

    /// The source-IP half of [`Route::authorize`]: the IP is kept with the postback, so it can
    /// be checked again later (the token cannot: it is redacted).
    pub fn ip_allowed(&self, remote_ip: Option<IpAddr>) -> bool {
        self.allow_ips.is_empty()
            || remote_ip.is_some_and(|ip| self.allow_ips.iter().any(|net| net.contains(&ip)))
    }

    /// Replaces the values of this route's token parameters by `***`: route tokens are
    /// secrets and never reach Kafka, ClickHouse or logs.
    pub fn redact_tokens(&self, params: &mut [(String, String)]) {
        for (name, value) in params.iter_mut() {
            if self
                .params
                .token
                .iter()
                .any(|t| name.eq_ignore_ascii_case(t))
            {
                *value = REDACTED.to_string();
            }
        }
    }
}

/// What a redacted route token reads as.
pub const REDACTED: &str = "***";

/// What ingest decides about a postback to `route` (`None`: not configured) from the live
/// request: its token parameter among `params` and the client's IP.
pub fn ingest_verdict(
    route: Option<&Route>,
    params: &[(String, String)],
    remote_ip: Option<IpAddr>,
) -> IngestVerdict {
    match route {
        None => IngestVerdict::UnknownRoute,
        Some(route) => {
            let token = crate::classify::param(params, &route.params.token);
            if route.authorize(token, remote_ip) {
                IngestVerdict::Accepted
            } else {
                IngestVerdict::Unauthorized
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_needs_token_and_allowed_ip() {
        let mut route = Route::new("r");
        assert!(route.authorize(None, None));
        route.token = Some(Secret::new("s3cret"));
        route.allow_ips = vec!["10.0.0.0/8".parse().unwrap()];
        let inside: IpAddr = "10.1.2.3".parse().unwrap();
        let outside: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(route.authorize(Some("s3cret"), Some(inside)));
        assert!(!route.authorize(Some("s3cret"), Some(outside)));
        assert!(!route.authorize(Some("wrong"), Some(inside)));
        assert!(!route.authorize(None, Some(inside)));
        assert_eq!(format!("{:?}", route.token), "Some(Secret(***))");
    }
}
