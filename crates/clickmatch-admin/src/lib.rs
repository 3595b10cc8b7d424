//! The operator's pages on ingest's port, all behind `[ingest] admin_token` (see [`guard`]):
//!
//! - `GET /admin/spool`: the click spool's depth and size as JSON;
//! - `GET /debug`, `GET /debug/click/{click_id}`: the postback debugger, HTML read from
//!   ClickHouse (see [`debugger`], [`render`]);
//! - `POST /api/conversions`: conversions a network never posted back, through the same path
//!   as postbacks (see [`uploads`]).
//! - `GET /api/report`, `GET /report`: reports as JSON and as a page (see [`report`]), also
//!   open to the read-only `[ingest] report_token`.
//!
//! A crate of its own so that ingest, which serves visitors and networks, does not depend on
//! ClickHouse: [`router`] is handed to `clickmatch_ingest::serve` as extra pages, which ingest
//! serves behind its own front door (size and rate limits, the request deadline, metrics by
//! endpoint). The pages read ingest's state only through the handles in [`Admin`]: the
//! account, the spool.

pub mod debugger;
pub mod guard;
pub mod render;
pub mod report;
pub mod uploads;

use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use clickmatch_clickhouse::{ClickHouseSettings, DebugReader};
use clickmatch_core::model::Account;
use clickmatch_ingest::spool::Spool;

pub use guard::{AdminAuth, AdminDenied, AdminGuard, Scope};
pub use uploads::Uploads;

/// What the admin pages read.
pub struct Admin {
    /// The account ingest serves, swapped whole on a configuration reload.
    pub account: Arc<ArcSwap<Account>>,
    /// The admin token.
    pub guard: AdminGuard,
    /// Ingest's click spool (`/admin/spool`); `None`: that page answers 404.
    pub spool: Option<Arc<Spool>>,
    /// ClickHouse reads of the postback debugger; `None`: its pages say so (404).
    pub debug: Option<DebugReader>,
    /// `POST /api/conversions`; `None`: it answers 404.
    pub uploads: Option<Uploads>,
    /// The database reports read; `None`: the report API and page answer 404.
    pub reports: Option<ClickHouseSettings>,
}

/// The admin pages, state applied: merge them into ingest's router (`clickmatch_ingest::router`
/// and `serve` take them as `pages`).
pub fn router(admin: Arc<Admin>) -> Router {
    Router::new()
        .route("/admin/spool", get(spool_status))
        .route("/debug", get(debugger::index))
        .route("/debug/click/{click_id}", get(debugger::click))
        .route("/api/conversions", post(uploads::upload))
        .route("/api/report", get(report::api))
        .route("/report", get(report::page))
        .with_state(admin)
}

/// `GET /admin/spool`: the click spool's depth and size.
async fn spool_status(_: AdminAuth, State(admin): State<Arc<Admin>>) -> Response {
    match &admin.spool {
        Some(spool) => Json(spool.status()).into_response(),
        None => (StatusCode::NOT_FOUND, "no spool configured\n").into_response(),
    }
}

#[cfg(test)]
mod tests;
