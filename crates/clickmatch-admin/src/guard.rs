//! Admin and debug endpoints require `[ingest] admin_token`, sent as `Authorization: Bearer
//! <token>` (or `X-Clickmatch-Admin-Token: <token>`), compared in constant time. Never in the
//! query string: URLs end up in access logs and browser histories.
//!
//! Two ways to guard a route of [`crate::router`]:
//! - the middleware [`require_admin`]:
//!   `router.layer(axum::middleware::from_fn_with_state(admin.clone(), guard::require_admin))`
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
use clickmatch_core::model::Secret;
use prometheus::{IntCounterVec, Opts, Registry};

use crate::Admin;

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

/// The admin token (`[ingest] admin_token`) and the count of refusals.
pub struct AdminGuard {
    /// `None`: admin endpoints are off.
    token: Option<Secret>,
    denied: IntCounterVec,
}

impl std::fmt::Debug for AdminGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminGuard")
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

impl AdminGuard {
    /// Registers `clickmatch_ingest_admin_denied_total` in `registry`.
    pub fn new(token: Option<Secret>, registry: &Registry) -> Result<Self, prometheus::Error> {
        let denied = IntCounterVec::new(
            Opts::new(
                "clickmatch_ingest_admin_denied_total",
                "Admin requests refused, by reason (disabled, unauthorized).",
            ),
            &["reason"],
        )?;
        registry.register(Box::new(denied.clone()))?;
        Ok(AdminGuard { token, denied })
    }

    /// Checks the admin token of a request.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), AdminDenied> {
        let Some(token) = &self.token else {
            self.denied.with_label_values(&["disabled"]).inc();
            return Err(AdminDenied::Disabled);
        };
        match presented(headers) {
            Some(candidate) if token.matches(candidate) => Ok(()),
            _ => {
                self.denied.with_label_values(&["unauthorized"]).inc();
                tracing::warn!("admin request without a valid token refused");
                Err(AdminDenied::Unauthorized)
            }
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

/// Extractor: the handler runs only for a request with the admin token.
#[derive(Debug, Clone, Copy)]
pub struct AdminAuth;

impl FromRequestParts<Arc<Admin>> for AdminAuth {
    type Rejection = AdminDenied;

    async fn from_request_parts(
        parts: &mut Parts,
        admin: &Arc<Admin>,
    ) -> Result<Self, Self::Rejection> {
        admin.guard.check(&parts.headers).map(|_| AdminAuth)
    }
}

/// Middleware: the wrapped routes run only for requests with the admin token.
pub async fn require_admin(
    State(admin): State<Arc<Admin>>,
    request: Request,
    next: Next,
) -> Response {
    match admin.guard.check(request.headers()) {
        Ok(()) => next.run(request).await,
        Err(denied) => denied.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    fn denied(registry: &Registry, reason: &str) -> u64 {
        registry
            .gather()
            .iter()
            .filter(|family| family.name() == "clickmatch_ingest_admin_denied_total")
            .flat_map(|family| family.get_metric())
            .filter(|metric| metric.get_label().iter().any(|l| l.value() == reason))
            .map(|metric| metric.get_counter().get_value() as u64)
            .sum()
    }

    #[test]
    fn without_a_token_admin_endpoints_are_off() {
        let registry = Registry::new();
        let guard = AdminGuard::new(None, &registry).unwrap();
        assert_eq!(
            guard.check(&headers(&[("authorization", "Bearer anything")])),
            Err(AdminDenied::Disabled)
        );
        assert_eq!(guard.check(&HeaderMap::new()), Err(AdminDenied::Disabled));
        assert_eq!(denied(&registry, "disabled"), 2);
        let response = AdminDenied::Disabled.into_response();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn the_token_comes_as_bearer_or_in_its_header_and_nowhere_else() {
        let registry = Registry::new();
        let guard = AdminGuard::new(Some(Secret::new("s3cret-token")), &registry).unwrap();
        for ok in [
            headers(&[("authorization", "Bearer s3cret-token")]),
            headers(&[("authorization", "bearer  s3cret-token ")]),
            headers(&[(ADMIN_TOKEN_HEADER, "s3cret-token")]),
        ] {
            assert_eq!(guard.check(&ok), Ok(()), "{ok:?}");
        }
        for wrong in [
            HeaderMap::new(),
            headers(&[("authorization", "Bearer s3cret-tokeN")]),
            headers(&[("authorization", "Bearer ")]),
            headers(&[("authorization", "Basic s3cret-token")]),
            headers(&[("authorization", "s3cret-token")]),
            // An Authorization header wins over the admin header, even a wrong one.
            headers(&[
                ("authorization", "Bearer nope"),
                (ADMIN_TOKEN_HEADER, "s3cret-token"),
            ]),
        ] {
            assert_eq!(
                guard.check(&wrong),
                Err(AdminDenied::Unauthorized),
                "{wrong:?}"
            );
        }
        assert_eq!(denied(&registry, "unauthorized"), 6);
        assert_eq!(denied(&registry, "disabled"), 0);
        let response = AdminDenied::Unauthorized.into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
        assert!(!format!("{guard:?}").contains("s3cret"));
    }
}
