//! `POST /api/conversions[?apply=1][&route=R]`: conversions a network reported but never
//! posted back, as a JSON array of objects with the upload CSV's columns (`click_id`, `payout`,
//! `currency`, `txid`, `event`, `status`, `time`), through the same path as postbacks
//! (`clickmatch_recovery`). A dry run unless `apply=1`.
//!
//! Answers `200 {"applied", "results": [per element], "summary"}`: predicted, or with `apply`
//! the joiner's decisions read back within [`Uploads::wait`] (`pending` past it). A bad element
//! refuses the whole request with `400 {"error", "line", "column"}` (`line`: the 1-based
//! element): nothing partial is sent.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use clickmatch_clickhouse::RecoveryReader;
use clickmatch_import::parse_conversions_json;
use clickmatch_kafka::Publisher;
use clickmatch_recovery::{
    await_decisions, decision_times, plan_upload, publish, LineResult, Planned, Summary,
};
use serde::Deserialize;
use serde_json::json;

use crate::{Admin, AdminAuth};

/// What the upload endpoint needs besides the account.
#[derive(Clone)]
pub struct Uploads {
    /// Ingest's acknowledged producer.
    pub publisher: Publisher,
    pub postbacks_topic: String,
    pub reader: RecoveryReader,
    /// How long `apply` waits for the joiner's decisions: within the request's deadline.
    pub wait: Duration,
}

impl std::fmt::Debug for Uploads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Uploads")
            .field("postbacks_topic", &self.postbacks_topic)
            .field("wait", &self.wait)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct UploadQuery {
    #[serde(default)]
    apply: Option<String>,
    #[serde(default)]
    route: Option<String>,
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

pub(crate) async fn upload(
    _: AdminAuth,
    State(admin): State<Arc<Admin>>,
    Query(query): Query<UploadQuery>,
    body: Bytes,
) -> Response {
    let Some(uploads) = &admin.uploads else {
        return error(
            StatusCode::NOT_FOUND,
            "uploads are off: this process has no ClickHouse configured".into(),
        );
    };
    let apply = matches!(query.apply.as_deref(), Some("1" | "true"));
    let lines = match parse_conversions_json(&body, "request") {
        Ok(lines) => lines,
        Err(e) => {
            let body = json!({ "error": e.message, "line": e.line, "column": e.column });
            return (StatusCode::BAD_REQUEST, Json(body)).into_response();
        }
    };
    let account = admin.account.load_full();
    let planned = match plan_upload(&uploads.reader, &account, query.route.as_deref(), &lines).await
    {
        Ok(planned) => planned,
        Err(clickmatch_recovery::RecoveryRunError::Record(e)) => {
            return error(StatusCode::BAD_REQUEST, e.to_string())
        }
        Err(e) => {
            tracing::warn!(error = %e, "conversion upload: ClickHouse unreadable");
            return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
        }
    };
    let results = if apply {
        match applied(uploads, &planned).await {
            Ok(results) => results,
            Err(e) => {
                tracing::warn!(error = %e, "conversion upload not applied");
                return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
            }
        }
    } else {
        planned.iter().map(LineResult::predicted).collect()
    };
    let summary = Summary::of(&planned, &results);
    Json(json!({ "applied": apply, "results": results, "summary": summary })).into_response()
}

async fn applied(
    uploads: &Uploads,
    planned: &[Planned],
) -> Result<Vec<LineResult>, clickmatch_recovery::RecoveryRunError> {
    let ids: Vec<String> = planned
        .iter()
        .map(|p| p.record.postback_id.clone())
        .collect();
    let before = decision_times(&uploads.reader, &ids).await?;
    publish(&uploads.publisher, &uploads.postbacks_topic, planned).await?;
    let decided = await_decisions(&uploads.reader, &ids, &before, uploads.wait).await?;
    Ok(planned
        .iter()
        .map(|p| LineResult::decided(p, decided.get(&p.record.postback_id)))
        .collect())
}
