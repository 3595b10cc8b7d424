//! Click endpoints: the visitor's redirect and server-side registration.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use clickmatch_core::model::Campaign;
use clickmatch_core::records::{ClickCostRecord, ClickRecord, RECORD_VERSION, SUB_COUNT};
use clickmatch_core::template;
use serde::{Deserialize, Serialize};

use crate::{now_ms, Ingest};

/// Sub-parameters longer than this are cut: no network echoes more than 500 characters back.
const MAX_SUB_LEN: usize = 500;
/// User agents longer than this are cut.
const MAX_USER_AGENT_LEN: usize = 512;
/// Foreign click IDs: printable ASCII, bounded.
const MAX_FOREIGN_ID_LEN: usize = 128;

/// `value` cut to `max_chars` characters. Most values are short: they are copied whole.
fn truncated(value: &str, max_chars: usize) -> String {
    // No more bytes than `max_chars`, so no more characters either.
    if value.len() <= max_chars {
        return value.to_owned();
    }
    match value.char_indices().nth(max_chars) {
        Some((end, _)) => value[..end].to_owned(),
        None => value.to_owned(),
    }
}

/// Puts `value` in the slot of sub-parameter `name` (`sub1` … `sub10`), cut to
/// [`MAX_SUB_LEN`]; other names are ignored. A later value of the same name wins.
fn set_sub(subs: &mut [String], name: &str, value: &str) {
    if let Some(slot) = template::sub_index(name) {
        subs[slot] = truncated(value, MAX_SUB_LEN);
    }
}

/// The ten sub-parameters among `params` (missing ones empty, long ones cut); a repeated name
/// keeps its last value.
fn subs_from<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<String> {
    let mut subs = vec![String::new(); SUB_COUNT];
    for (name, value) in params {
        set_sub(&mut subs, name, value);
    }
    subs
}

/// What a redirect reads from its query string.
struct ClickQuery {
    subs: Vec<String>,
    is_test: bool,
    /// The value of the campaign's cost parameter, when it reads one and the URL has it.
    cost: Option<String>,
}

/// Decodes the query string once, in one pass, without collecting its parameters.
fn click_query(query: Option<&str>, cost_param: Option<&str>) -> ClickQuery {
    let mut query_read = ClickQuery {
        subs: vec![String::new(); SUB_COUNT],
        is_test: false,
        cost: None,
    };
    for (name, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if name == "cm_test" {
            query_read.is_test = value == "1";
        } else if cost_param.is_some_and(|param| name.eq_ignore_ascii_case(param)) {
            if query_read.cost.is_none() {
                query_read.cost = Some(truncated(&value, MAX_SUB_LEN));
            }
        } else {
            set_sub(&mut query_read.subs, &name, &value);
        }
    }
    query_read
}

/// The click's cost under its campaign's cost model, counting what could not be read.
fn click_cost(ingest: &Ingest, campaign: &Campaign, sent: Option<&str>) -> Option<ClickCostRecord> {
    let cost = campaign.cost.as_ref()?.book(sent);
    if !cost.issue.is_empty() {
        ingest
            .metrics
            .cost_issues
            .with_label_values(&[cost.issue.as_str()])
            .inc();
    }
    Some(cost)
}

fn offer_url(campaign: &Campaign, click: &ClickRecord) -> String {
    template::render(&campaign.url_template, |token| match token {
        "click_id" => Some(click.click_id.as_str()),
        "campaign" => Some(campaign.id.as_str()),
        "offer_id" => Some(campaign.offer_id.as_str()),
        "source" => Some(campaign.source.as_str()),
        other => template::sub_index(other)
            .and_then(|i| click.subs.get(i))
            .map(String::as_str),
    })
}

fn user_agent(headers: &HeaderMap) -> String {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map_or(String::new(), |agent| truncated(agent, MAX_USER_AGENT_LEN))
}

/// `GET /c/{campaign}`: record the click, then 302 to the campaign's configured offer URL.
pub(crate) async fn redirect(
    State(ingest): State<Arc<Ingest>>,
    Path(campaign_id): Path<String>,
    RawQuery(query): RawQuery,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let account = ingest.account.load_full();
    let Some(campaign) = account.campaigns.get(&campaign_id) else {
        ingest
            .metrics
            .clicks
            .with_label_values(&["unknown_campaign"])
            .inc();
        return (StatusCode::NOT_FOUND, "unknown campaign\n").into_response();
    };
    let cost_param = campaign.cost.as_ref().and_then(|c| c.param.as_deref());
    let query = click_query(query.as_deref(), cost_param);
    let cost = click_cost(&ingest, campaign, query.cost.as_deref());
    let time_ms = now_ms();
    let client_ip = ingest.protection.client_ip(peer.ip(), &headers);
    let user_agent = user_agent(&headers);
    let found = ingest.enrich.click(Some(client_ip), &user_agent);
    let click = ClickRecord {
        v: RECORD_VERSION,
        click_id: account.signer.mint_now(time_ms).to_string(),
        time_ms,
        campaign_id: campaign.id.clone(),
        offer_id: campaign.offer_id.clone(),
        source: campaign.source.clone(),
        subs: query.subs,
        ip: client_ip.to_string(),
        user_agent,
        country: found.country,
        enrichment: found.enrichment,
        is_test: query.is_test,
        foreign: false,
        cost,
    };
    let location = offer_url(campaign, &click);

    // Hand the click over before answering (to the producer within `click_buffer::COALESCE`);
    // the visitor never waits for the broker. The producer reports the outcome to `undelivered::ClickDeliveries`: a click librdkafka
    // reports failed (after its own retries) goes to the spool.
    ingest.metrics.inflight_clicks.inc();
    let record = click.encode();
    ingest.clicks.push(click.click_id, record);
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

/// A click that was not recorded (the caller learns it: `POST /clicks` answers 503).
fn click_lost(ingest: &Ingest, error: &str) {
    ingest.metrics.clicks.with_label_values(&["failed"]).inc();
    ingest
        .metrics
        .produce_errors
        .with_label_values(&[ingest.topics.clicks.as_str()])
        .inc();
    tracing::error!(error, "click not recorded by the broker");
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegisterClick {
    campaign: String,
    #[serde(default)]
    subs: HashMap<String, String>,
    /// Another tracker's click ID, stored as an opaque string.
    #[serde(default)]
    click_id: Option<String>,
    #[serde(default)]
    ip: Option<String>,
    #[serde(default)]
    user_agent: Option<String>,
    #[serde(default)]
    country: Option<String>,
    #[serde(default)]
    is_test: bool,
    /// What the click cost, as the campaign's `cost_param` would carry it (`"0.05"`).
    #[serde(default)]
    cost: Option<String>,
}

/// A registered click's country: the one the caller sent, when it sent one (it saw the visitor
/// and may know better, e.g. from its CDN, than a lookup of the address it relays), else the
/// geo database's.
fn registered_country(sent: Option<String>, looked_up: String) -> String {
    match sent.map(|c| c.trim().to_owned()) {
        Some(country) if !country.is_empty() => country,
        _ => looked_up,
    }
}

#[derive(Debug, Serialize)]
struct Registered {
    click_id: String,
    url: String,
}

/// `POST /clicks`: register a click from a lander or server; answers after the broker's ack.
pub(crate) async fn register(
    State(ingest): State<Arc<Ingest>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Json<RegisterClick>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(request) = match body {
        Ok(body) => body,
        Err(rejection) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("{}\n", rejection.body_text()),
            )
                .into_response()
        }
    };
    let account = ingest.account.load_full();
    let Some(campaign) = account.campaigns.get(&request.campaign) else {
        return (StatusCode::NOT_FOUND, "unknown campaign\n").into_response();
    };
    let time_ms = now_ms();
    let (click_id, foreign) = match request.click_id {
        Some(id) => {
            let valid = !id.is_empty()
                && id.len() <= MAX_FOREIGN_ID_LEN
                && id.bytes().all(|b| b.is_ascii_graphic());
            if !valid {
                return (
                    StatusCode::BAD_REQUEST,
                    format!("click_id must be 1-{MAX_FOREIGN_ID_LEN} printable ASCII characters\n"),
                )
                    .into_response();
            }
            (id, true)
        }
        None => (account.signer.mint_now(time_ms).to_string(), false),
    };
    // The visitor's address and user agent as the caller relays them; without an `ip`, the
    // caller's own (behind trusted proxies).
    let ip = request
        .ip
        .unwrap_or_else(|| ingest.protection.client_ip(peer.ip(), &headers).to_string());
    let user_agent = request.user_agent.unwrap_or_default();
    let found = ingest
        .enrich
        .click(ip.trim().parse::<IpAddr>().ok(), &user_agent);
    let click = ClickRecord {
        v: RECORD_VERSION,
        click_id,
        time_ms,
        campaign_id: campaign.id.clone(),
        offer_id: campaign.offer_id.clone(),
        source: campaign.source.clone(),
        subs: subs_from(request.subs.iter().map(|(n, v)| (n.as_str(), v.as_str()))),
        ip,
        user_agent,
        country: registered_country(request.country, found.country),
        enrichment: found.enrichment,
        is_test: request.is_test,
        foreign,
        cost: click_cost(&ingest, campaign, request.cost.as_deref()),
    };
    match ingest
        .publisher
        .publish(&ingest.topics.clicks, &click.click_id, &click.encode())
        .await
    {
        Ok(_) => {
            ingest.metrics.clicks.with_label_values(&["produced"]).inc();
            let url = offer_url(campaign, &click);
            Json(Registered {
                click_id: click.click_id,
                url,
            })
            .into_response()
        }
        Err(error) => {
            click_lost(&ingest, &error.to_string());
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "click not recorded, retry\n",
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_gives_its_subs_in_order_and_the_test_flag() {
        let query = click_query(
            Some("sub2=b&x=1&sub1=a%20b&sub10=j&sub01=no&sub1=last&cm_test=1&COST=0%2C05&cost=2"),
            Some("cost"),
        );
        assert_eq!(query.cost.as_deref(), Some("0,05"));
        assert_eq!(query.subs[0], "last");
        assert_eq!(query.subs[1], "b");
        assert_eq!(query.subs[9], "j");
        assert!(query.subs[2..9].iter().all(String::is_empty));
        assert!(query.is_test);
        let long = format!("sub3={}", "é".repeat(600));
        let query = click_query(Some(&long), None);
        assert_eq!(query.subs[2].chars().count(), MAX_SUB_LEN);
        assert!(!query.is_test);
        assert_eq!(click_query(None, None).subs, vec![String::new(); 10]);
    }

    #[test]
    fn a_registered_country_wins_over_the_looked_up_one() {
        assert_eq!(registered_country(Some("FR".into()), "DE".into()), "FR");
        assert_eq!(registered_country(Some(" ".into()), "DE".into()), "DE");
        assert_eq!(registered_country(None, "DE".into()), "DE");
        assert_eq!(registered_country(None, String::new()), "");
    }

    #[test]
    fn values_are_cut_at_a_character_count_never_inside_a_character() {
        assert_eq!(truncated("abc", 3), "abc");
        assert_eq!(truncated("abcd", 3), "abc");
        assert_eq!(truncated("ééé", 2), "éé");
        assert_eq!(truncated("éé", 2), "éé");
        assert_eq!(truncated("aé", 5), "aé");
        assert_eq!(truncated("", 0), "");
    }
}
