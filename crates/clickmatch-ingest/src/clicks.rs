//! Click endpoints: the visitor's redirect and server-side registration.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use clickmatch_core::model::Campaign;
use clickmatch_core::records::{ClickRecord, RECORD_VERSION};
use clickmatch_core::template;
use serde::{Deserialize, Serialize};

use crate::{now_ms, Ingest};

/// Sub-parameters longer than this are cut: no network echoes more than 500 characters back.
const MAX_SUB_LEN: usize = 500;
/// Foreign click IDs: printable ASCII, bounded.
const MAX_FOREIGN_ID_LEN: usize = 128;

fn subs_from(query: &HashMap<String, String>) -> Vec<String> {
    (1..=10)
        .map(|n| {
            let value = query
                .get(&format!("sub{n}"))
                .map(String::as_str)
                .unwrap_or("");
            value.chars().take(MAX_SUB_LEN).collect()
        })
        .collect()
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
        .unwrap_or("")
        .chars()
        .take(512)
        .collect()
}

/// `GET /c/{campaign}`: record the click, then 302 to the campaign's configured offer URL.
pub(crate) async fn redirect(
    State(ingest): State<Arc<Ingest>>,
    Path(campaign_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
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
    let time_ms = now_ms();
    let click = ClickRecord {
        v: RECORD_VERSION,
        click_id: account.signer.mint_now(time_ms).to_string(),
        time_ms,
        campaign_id: campaign.id.clone(),
        offer_id: campaign.offer_id.clone(),
        source: campaign.source.clone(),
        subs: subs_from(&query),
        ip: ingest.protection.client_ip(peer.ip(), &headers).to_string(),
        user_agent: user_agent(&headers),
        country: String::new(),
        is_test: query.get("cm_test").is_some_and(|v| v == "1"),
        foreign: false,
    };
    let location = offer_url(campaign, &click);

    // Hand the click to the producer before answering; the visitor never waits for the broker.
    // The producer reports the outcome to `undelivered::ClickDeliveries`: a click librdkafka
    // reports failed (after its own retries) goes to the spool.
    ingest.metrics.inflight_clicks.inc();
    ingest
        .click_publisher
        .send_and_forget(&ingest.topics.clicks, &click.click_id, &click.encode());
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
    let click = ClickRecord {
        v: RECORD_VERSION,
        click_id,
        time_ms,
        campaign_id: campaign.id.clone(),
        offer_id: campaign.offer_id.clone(),
        source: campaign.source.clone(),
        subs: subs_from(&request.subs),
        ip: request
            .ip
            .unwrap_or_else(|| ingest.protection.client_ip(peer.ip(), &headers).to_string()),
        user_agent: request.user_agent.unwrap_or_default(),
        country: request.country.unwrap_or_default(),
        is_test: request.is_test,
        foreign,
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
