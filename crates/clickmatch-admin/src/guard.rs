//! Admin and debug endpoints require `[ingest] admin_token`, sent as `Authorization: Bearer
//! <token>` (or `X-Clickmatch-Admin-Token: <token>`), compared in constant time. Never in the
//! query string: URLs end up in access logs and browser histories.
//!
//! Two ways to guard a route:
//! - the middleware [`require_admin`]:
//!   `router.layer(axum::middleware::from_fn_with_state(ingest.clone(), admin::require_admin))`
//!   (or `route_layer` on a sub-router of `/debug…` pages);
//! - the extractor [`AdminAuth`] as a handler argument: `async fn page(_: AdminAuth, …)`.
//!
//! Without a configured token every admin endpoint answers 404 (off); a missing or wrong token
//! gets 401. Refusals are counted in `clickmatch_ingest_admin_denied_total`; the token itself
//! is never logged, echoed or counted.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::Ingest;

/// Header accepted besides `Authorization: Bearer`.
pub const ADMIN_TOKEN_HEADER: &str = "x-clickmatch-admin-token";

/// Why an admin request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminDenied {
    /// No `admin_token` configured: admin endpoints are off.
    Disabled,
    /// Missing or wrong token.
    Unauthorized,
}

impl IntoResponse for AdminDenied {
    fn into_response(self) -> Response {
        match self {
            AdminDenied::Disabled => (
                StatusCode::NOT_FOUND,
                "admin endpoints are off: set [ingest] admin_token\n",
            )
                .into_response(),
            AdminDenied::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "admin token required\n",
            )
                .into_response(),
        }
    }
}

fn presented(headers: &HeaderMap) -> Option<&str> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then_some(token.trim());
    }
    headers
        .get(ADMIN_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// Checks the admin token of a request.
pub fn check(ingest: &Ingest, headers: &HeaderMap) -> Result<(), AdminDenied> {
    let Some(token) = &ingest.protection.admin_token else {
        ingest
            .protection
            .admin_denied
            .with_label_values(&["disabled"])
            .inc();
        return Err(AdminDenied::Disabled);
    };
    match presented(headers) {
        Some(candidate) if token.matches(candidate) => Ok(()),
        _ => {
            ingest
                .protection
                .admin_denied
                .with_label_values(&["unauthorized"])
                .inc();
            tracing::warn!("admin request without a valid token refused");
            Err(AdminDenied::Unauthorized)
        }
    }
}

/// Extractor: the handler runs only for a request with the admin token.
#[derive(Debug, Clone, Copy)]
pub struct AdminAuth;

impl FromRequestParts<Arc<Ingest>> for AdminAuth {
    type Rejection = AdminDenied;

    async fn from_request_parts(
        parts: &mut Parts,
        ingest: &Arc<Ingest>,
    ) -> Result<Self, Self::Rejection> {
        check(ingest, &parts.headers).map(|_| AdminAuth)
    }
}

/// Middleware: the wrapped routes run only for requests with the admin token.
pub async fn require_admin(
    State(ingest): State<Arc<Ingest>>,
    request: Request,
    next: Next,
) -> Response {
    match check(&ingest, request.headers()) {
        Ok(()) => next.run(request).await,
        Err(denied) => denied.into_response(),
    }
}

/// `GET /admin/spool`: the click spool's depth and size.
pub(crate) async fn spool_status(_: AdminAuth, State(ingest): State<Arc<Ingest>>) -> Response {
    match &ingest.spool {
        Some(spool) => Json(spool.status()).into_response(),
        None => (StatusCode::NOT_FOUND, "no spool configured\n").into_response(),
    }
}
