//! Postback endpoints. Every postback that reaches here is published raw (so that it ends in
//! exactly one row downstream) and answered only after the broker acknowledged it: 200 when
//! accepted, 403/404 for failed auth or an unknown route, 503 when it could not be recorded.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use clickmatch_core::classify::partition_key;
use clickmatch_core::model::{ingest_verdict, GLOBAL_ROUTE, UNKNOWN_ROUTE_LABEL};
use clickmatch_core::params;
use clickmatch_core::records::{IngestVerdict, PostbackRecord, RECORD_VERSION};
use clickmatch_kafka::PublishError;
use serde::Serialize;
use serde_json::json;

use crate::{now_ms, random_id, Ingest};

pub(crate) async fn global(
    State(ingest): State<Arc<Ingest>>,
    method: Method,
    RawQuery(query): RawQuery,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(ingest, None, method, query, peer, headers, body).await
}

pub(crate) async fn routed(
    State(ingest): State<Arc<Ingest>>,
    Path(route): Path<String>,
    method: Method,
    RawQuery(query): RawQuery,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(ingest, Some(route), method, query, peer, headers, body).await
}

async fn handle(
    ingest: Arc<Ingest>,
    route_name: Option<String>,
    method: Method,
    query: Option<String>,
    peer: SocketAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let parsed =
        params::parse_query(query.as_deref().unwrap_or(""), &ingest.limits).and_then(|mut list| {
            params::append_body(&mut list, content_type, &body, &ingest.limits).map(|_| list)
        });
    let mut params = match parsed {
        Ok(params) => params,
        Err(error) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({ "error": error.to_string() })),
            )
                .into_response();
        }
    };

    let account = ingest.account.load_full();
    let route = account.route(route_name.as_deref());
    let route_label = account
        .route_label(route_name.as_deref().unwrap_or(GLOBAL_ROUTE))
        .unwrap_or(UNKNOWN_ROUTE_LABEL)
        .to_string();
    // Route IP allowlists see the client behind a trusted proxy, never a claimed one.
    let remote_ip: IpAddr = ingest.protection.client_ip(peer.ip(), &headers);
    let verdict = ingest_verdict(route, &params, Some(remote_ip));
    if let Some(route) = route {
        route.redact_tokens(&mut params);
    }

    let mut record = PostbackRecord {
        v: RECORD_VERSION,
        postback_id: random_id(),
        received_ms: now_ms(),
        method: method.to_string(),
        route: route_name,
        params,
        remote_ip: remote_ip.to_string(),
        verdict,
        key: String::new(),
        origin: Default::default(),
    };
    let key = partition_key(&account, &record);
    record.key.clone_from(&key);
    // The answer must be a 503 the network retries, never the request timeout's 408: the
    // broker gets three quarters of the request's time. A record librdkafka still delivers
    // after that is a recorded postback the network sends again (a `duplicate` downstream).
    let deadline = Duration::from_millis(ingest.protection.http.request_timeout_ms * 3 / 4);
    let published = tokio::time::timeout(
        deadline,
        ingest
            .publisher
            .publish(&ingest.topics.postbacks, &key, &record.encode()),
    )
    .await
    .unwrap_or_else(|_| Err(PublishError::Deadline(deadline)));
    let status = match published {
        Ok(_) => match verdict {
            IngestVerdict::Accepted => StatusCode::OK,
            IngestVerdict::Unauthorized => StatusCode::FORBIDDEN,
            IngestVerdict::UnknownRoute => StatusCode::NOT_FOUND,
        },
        Err(error) => {
            ingest
                .metrics
                .produce_errors
                .with_label_values(&[ingest.topics.postbacks.as_str()])
                .inc();
            tracing::error!(postback_id = %record.postback_id, error = %error, "postback not recorded");
            StatusCode::SERVICE_UNAVAILABLE
        }
    };
    ingest
        .metrics
        .postbacks
        .with_label_values(&[route_label.as_str(), status.as_str()])
        .inc();
    let recorded = |error| Answer {
        error,
        postback_id: Some(&record.postback_id),
        status: "recorded",
    };
    let answer = match status {
        StatusCode::OK => recorded(None),
        StatusCode::FORBIDDEN => recorded(Some("unauthorized")),
        StatusCode::NOT_FOUND => recorded(Some("unknown route")),
        _ => Answer {
            error: Some("could not record the postback, retry"),
            postback_id: None,
            status: "not_recorded",
        },
    };
    (status, Json(answer)).into_response()
}

/// The answer to a postback. Typed rather than a `serde_json::Value`, which allocates a map
/// per answer; the fields are in the order that map wrote them (sorted), so the bytes did
/// not change.
#[derive(Serialize)]
struct Answer<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    postback_id: Option<&'a str>,
    status: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_the_bytes_the_json_map_wrote() {
        let answer = |error, postback_id, status| {
            serde_json::to_string(&Answer {
                error,
                postback_id,
                status,
            })
            .unwrap()
        };
        let map = |value: serde_json::Value| value.to_string();
        assert_eq!(
            answer(None, Some("p1"), "recorded"),
            map(json!({ "status": "recorded", "postback_id": "p1" }))
        );
        assert_eq!(
            answer(Some("unauthorized"), Some("p1"), "recorded"),
            map(json!({ "status": "recorded", "error": "unauthorized", "postback_id": "p1" }))
        );
        assert_eq!(
            answer(Some("retry"), None, "not_recorded"),
            map(json!({ "status": "not_recorded", "error": "retry" }))
        );
    }
}
