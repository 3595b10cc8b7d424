//! HTTP ingest: `GET /c/{campaign}` records a click and redirects; `/postback[/{route}]` records
//! the raw postback and answers after the broker's acknowledgement.
//!
//! Handlers parse, ask `clickmatch-core`, publish, and map the result to a status code; no
//! attribution logic lives here.
//!
//! Ingest serves, besides its own routes, the pages it is handed ([`router`]'s `pages`): the
//! admin pages and postback debugger of `clickmatch-admin`, which read ClickHouse, so that this
//! crate does not. `/metrics` and `/healthz` are `clickmatch-ops`'s.

pub mod click_buffer;
mod clicks;
pub mod limits;
pub mod metrics;
mod postbacks;
mod producers;
mod server;
pub mod spool;
pub mod undelivered;

pub(crate) use clickmatch_core::clock::now_ms;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use clickmatch_core::model::Account;
use clickmatch_core::params::ParamLimits;
use clickmatch_kafka::Publisher;
use prometheus::Registry;

pub use metrics::IngestMetrics;
pub use producers::Publishers;
pub use undelivered::{spool_undelivered, ClickDeliveries, UndeliveredClicks};

/// Topic names ingest publishes to.
#[derive(Debug, Clone)]
pub struct Topics {
    pub clicks: String,
    pub postbacks: String,
}

/// Shared state of the ingest service.
pub struct Ingest {
    /// The account, swapped whole on a configuration reload: each request loads it once.
    pub account: Arc<ArcSwap<Account>>,
    /// Records answered after the broker's acknowledgement: postbacks, registered clicks.
    pub publisher: Publisher,
    /// Visitors' clicks, fire-and-forget, handed to their producer in bursts (see
    /// [`click_buffer`], [`producers`], [`undelivered`]).
    pub clicks: Arc<click_buffer::ClickBuffer>,
    pub topics: Topics,
    pub metrics: IngestMetrics,
    pub registry: Registry,
    pub limits: ParamLimits,
    pub max_body_bytes: usize,
    /// Size and rate limits, trusted proxies (see [`limits`]).
    pub protection: limits::Protection,
    /// Geo, ASN and device of each click, from the client IP behind trusted proxies and the
    /// user agent (`[enrichment]`; [`clickmatch_enrich::Enricher::off`] for none).
    pub enrich: Arc<clickmatch_enrich::Enricher>,
    /// Where clicks go that the broker did not acknowledge (see [`spool`]).
    pub spool: Option<Arc<spool::Spool>>,
}

type Shared = Arc<Ingest>;

/// The ingest router, with `pages` (routes with their state applied, such as
/// `clickmatch_admin::router`; `Router::new()` for none) served as ingest's own: behind the
/// same limits and metrics by endpoint, and, as handlers that wait (for ClickHouse, say), under
/// the request deadline. A path of `pages` that ingest serves too panics here. Serve it with
/// [`serve`] (or any server that inserts `ConnectInfo<std::net::SocketAddr>`).
pub fn router(ingest: Arc<Ingest>, pages: Router) -> Router {
    let max_body = ingest.max_body_bytes;
    // Only handlers that wait (for a body, the broker's ack or ClickHouse) get a deadline: the
    // redirect and the health and metrics pages answer from memory, and a timer per redirect
    // cost ~3 % of its CPU (perf, BENCHMARKS.md).
    let waiting = Router::new()
        .route("/clicks", post(clicks::register))
        .route("/postback", get(postbacks::global).post(postbacks::global))
        .route(
            "/postback/{route}",
            get(postbacks::routed).post(postbacks::routed),
        )
        .with_state(ingest.clone())
        .merge(pages)
        .route_layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_millis(ingest.protection.http.request_timeout_ms),
        ));
    Router::new()
        .route("/c/{campaign}", get(clicks::redirect))
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(clickmatch_ops::healthz))
        .route("/readyz", get(ready))
        .with_state(ingest.clone())
        .merge(waiting)
        .layer(middleware::from_fn_with_state(ingest, front_door))
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
}

/// Serves [`router`]`(ingest, pages)` on `listener` until `shutdown` resolves, with the
/// configured header read timeout and head size (see [`server`]).
pub async fn serve(
    ingest: Arc<Ingest>,
    pages: Router,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = ingest.protection.http;
    let gc = tokio::spawn(forget_idle_clients(ingest.clone()));
    let served = server::serve_with_limits(listener, router(ingest, pages), limits, shutdown).await;
    gc.abort();
    served
}

async fn forget_idle_clients(ingest: Arc<Ingest>) {
    loop {
        tokio::time::sleep(limits::RATE_LIMIT_GC_INTERVAL).await;
        ingest.protection.forget_idle_clients();
    }
}

/// Every request passes here once: the limits (see [`limits::refusal`]), then its duration by
/// endpoint and status, refusals included. One middleware rather than two: each `from_fn`
/// layer costs a boxed future and a clone of the inner service per request.
async fn front_door(State(ingest): State<Shared>, request: Request, next: Next) -> Response {
    // A clone of the route's shared string, not a new one per request.
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let endpoint = matched.as_ref().map_or("unmatched", MatchedPath::as_str);
    let started = Instant::now();
    let response = match limits::refusal(&ingest, &request) {
        Some(refused) => refused,
        None => next.run(request).await,
    };
    ingest
        .metrics
        .http_duration
        .with_label_values(&[endpoint, response.status().as_str()])
        .observe(started.elapsed().as_secs_f64());
    response
}

async fn metrics_text(State(ingest): State<Shared>) -> Response {
    clickmatch_ops::metrics(&ingest.registry)
}

async fn ready(State(ingest): State<Shared>) -> Response {
    let publisher = ingest.publisher.clone();
    let reachable =
        tokio::task::spawn_blocking(move || publisher.is_reachable(Duration::from_secs(1)))
            .await
            .unwrap_or(false);
    if reachable {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "kafka unreachable\n").into_response()
    }
}

/// A random 128-bit identifier in hex (postback IDs).
pub(crate) fn random_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

#[cfg(test)]
mod tests;
