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
//! gets 401. The reports (`/api/report`, `/report`) are the one [`Scope::Report`]: they also
//! open to the read-only `[ingest] report_token`, which opens nothing else. Refusals are counted in `clickmatch_ingest_admin_denied_total`; the token itself
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

/// What a request asks to see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everything behind the admin token.
    Admin,
    /// Reports only: the admin token or the report token.
    Report,
}

/// The admin token (`[ingest] admin_token`), the report token, and the count of refusals.
pub struct AdminGuard {
    /// `None`: admin endpoints are off.
    token: Option<Secret>,
    /// `None`: only the admin token opens the reports.
    report_token: Option<Secret>,
    denied: IntCounterVec,
}

impl std::fmt::Debug for AdminGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminGuard")
            .field("token", &self.token)
            .field("report_token", &self.report_token)
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
        Ok(AdminGuard {
            token,
            report_token: None,
            denied,
        })
    }

    /// Also let `report_token` (`[ingest] report_token`) open the reports.
    pub fn with_report_token(mut self, report_token: Option<Secret>) -> Self {
        self.report_token = report_token;
        self
    }

    /// Checks the admin token of a request.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), AdminDenied> {
        self.check_scope(headers, Scope::Admin)
    }

    /// Checks a request for `scope`: the admin token, or for reports the report token too.
    pub fn check_scope(&self, headers: &HeaderMap, scope: Scope) -> Result<(), AdminDenied> {
        let report_token = match scope {
            Scope::Admin => None,
            Scope::Report => self.report_token.as_ref(),
        };
        if self.token.is_none() && report_token.is_none() {
            self.denied.with_label_values(&["disabled"]).inc();
            return Err(AdminDenied::Disabled);
        }
        let opens = |candidate: &str| {
            // Both compared, so that the time taken does not tell which token was close.
            let admin = self.token.as_ref().is_some_and(|t| t.matches(candidate));
            let report = report_token.is_some_and(|t| t.matches(candidate));
            admin | report
        };
        match presented(headers) {
            Some(candidate) if opens(candidate) => Ok(()),
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

    #[test]
    fn the_report_token_opens_reports_and_nothing_else() {
        let registry = Registry::new();
        let admin = headers(&[("authorization", "Bearer admin-token-0123")]);
        let report = headers(&[("authorization", "Bearer report-token-0123")]);
        let guard = AdminGuard::new(Some(Secret::new("admin-token-0123")), &registry)
            .unwrap()
            .with_report_token(Some(Secret::new("report-token-0123")));
        assert_eq!(guard.check_scope(&report, Scope::Report), Ok(()));
        assert_eq!(guard.check_scope(&admin, Scope::Report), Ok(()));
        assert_eq!(guard.check_scope(&admin, Scope::Admin), Ok(()));
        assert_eq!(
            guard.check_scope(&report, Scope::Admin),
            Err(AdminDenied::Unauthorized)
        );
        assert_eq!(guard.check(&report), Err(AdminDenied::Unauthorized));
        assert!(!format!("{guard:?}").contains("report-token"));
        // Only a report token: the reports are on, the admin pages off.
        let registry = Registry::new();
        let guard = AdminGuard::new(None, &registry)
            .unwrap()
            .with_report_token(Some(Secret::new("report-token-0123")));
        assert_eq!(guard.check_scope(&report, Scope::Report), Ok(()));
        assert_eq!(guard.check(&report), Err(AdminDenied::Disabled));
        assert_eq!(
            guard.check_scope(&HeaderMap::new(), Scope::Report),
            Err(AdminDenied::Unauthorized)
        );
    }
}
