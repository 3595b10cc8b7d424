//! The postback debugger: HTML pages for operators, read from ClickHouse.
//!
//! - `GET /debug[?hours=24&per=20]`: the latest postbacks of each route and offer with their
//!   outcome, the unattributed reason, the raw parameters and the fix hint sentence, under a
//!   summary of outcomes (and payout issues) per route and offer. `?click_id=…` jumps to that
//!   click's story.
//! - `GET /debug/click/{click_id}`: one click's whole story: what the ID itself says (time,
//!   signature), the click row, its conversions and every version, the unattributed postbacks
//!   that name it, and the outbound deliveries to its traffic source with every attempt.
//!
//! Money: an attributed conversion whose payout was not booked as sent shows its payout issue
//! (the code, the payout text as sent and what to fix); an unattributed postback shows what its
//! payout would book were it attributed ([`payout_preview`](crate::render::payout_preview), the
//! joiner's own booking), so that an operator sees a `payout_macro` before any conversion lands
//! with it.
//!
//! This module holds the handlers, their guard and the page shell; the HTML of the pages is
//! [`crate::render`]'s.
//!
//! Guarded by the admin token through [`crate::guard::AdminGuard::check`]. Besides its headers
//! (`Authorization: Bearer`, `X-Clickmatch-Admin-Token`) these pages take HTTP Basic credentials
//! whose password is the token, and ask for them with a Basic challenge, so that a browser
//! prompts for the token (the token never goes into a URL). Every value shown is HTML-escaped;
//! the pages carry no script and a Content-Security-Policy that forbids any.

use std::borrow::Cow;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use clickmatch_core::clock::now_ms;
use clickmatch_core::ClickId;
use serde::Deserialize;

use crate::guard::{AdminDenied, Scope};
use crate::render::{esc, render_index, render_story};
use crate::Admin;

/// Longest click ID the story page looks up (foreign IDs are at most 128 characters).
pub(crate) const MAX_CLICK_ID_LEN: usize = 128;
const DEFAULT_HOURS: u32 = 24;
const MAX_HOURS: u32 = 24 * 90;
const DEFAULT_PER_GROUP: u64 = 20;
const MAX_PER_GROUP: u64 = 200;

const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// Query of `/debug`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct IndexQuery {
    hours: Option<u32>,
    per: Option<u64>,
    click_id: Option<String>,
}

/// `GET /debug`.
pub(crate) async fn index(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    Query(query): Query<IndexQuery>,
) -> Response {
    if let Some(denied) = refusal(&admin, &headers) {
        return denied;
    }
    if let Some(click_id) = query.click_id.as_deref().map(str::trim) {
        if !click_id.is_empty() {
            let target = format!(
                "/debug/click/{}",
                clickmatch_core::template::encode_value(click_id)
            );
            return Redirect::to(&target).into_response();
        }
    }
    let Some(reader) = &admin.debug else {
        return no_clickhouse();
    };
    let hours = query.hours.unwrap_or(DEFAULT_HOURS).clamp(1, MAX_HOURS);
    let per = query
        .per
        .unwrap_or(DEFAULT_PER_GROUP)
        .clamp(1, MAX_PER_GROUP);
    let since_s = u32::try_from((now_ms() / 1000).saturating_sub(u64::from(hours) * 3600))
        .unwrap_or(u32::MAX);
    let (latest, counts, issues) = tokio::join!(
        reader.latest_postbacks(since_s, per),
        reader.outcome_counts(since_s),
        reader.payout_issue_counts(since_s)
    );
    let (latest, counts, issues) = match (latest, counts, issues) {
        (Ok(latest), Ok(counts), Ok(issues)) => (latest, counts, issues),
        (Err(error), _, _) | (_, Err(error), _) | (_, _, Err(error)) => {
            return clickhouse_error(&error.to_string())
        }
    };
    let account = admin.account.load_full();
    page(
        StatusCode::OK,
        "postback debugger",
        &render_index(&account, hours, per, &latest, &counts, &issues),
    )
}

/// `GET /debug/click/{click_id}`.
pub(crate) async fn click(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    Path(click_id): Path<String>,
) -> Response {
    if let Some(denied) = refusal(&admin, &headers) {
        return denied;
    }
    let click_id = click_id.trim();
    if click_id.is_empty() || click_id.len() > MAX_CLICK_ID_LEN {
        return page(
            StatusCode::BAD_REQUEST,
            "click story",
            &format!("<p>A click ID has 1 to {MAX_CLICK_ID_LEN} characters.</p>"),
        );
    }
    let Some(reader) = &admin.debug else {
        return no_clickhouse();
    };
    // A clickmatch ID names its click's time: nothing about the click precedes it (a minute
    // of clock skew allowed).
    let since_s = ClickId::parse(click_id)
        .ok()
        .map(|id| u32::try_from((id.time_ms() / 1000).saturating_sub(60)).unwrap_or(u32::MAX));
    let story = match reader.click_story(click_id, since_s).await {
        Ok(story) => story,
        Err(error) => return clickhouse_error(&error.to_string()),
    };
    let account = admin.account.load_full();
    page(
        StatusCode::OK,
        &format!("click {click_id}"),
        &render_story(&account, click_id, &story),
    )
}

/// The admin check of [`crate::guard`], also taking HTTP Basic credentials (the token as the
/// password) and answering 401 with a Basic challenge, so that browsers prompt for it. `None`:
/// the request may proceed.
fn refusal(admin: &Admin, headers: &HeaderMap) -> Option<Response> {
    browser_refusal(admin, headers, Scope::Admin, "clickmatch debugger")
}

/// [`refusal`] for `scope`, the Basic challenge naming `realm`.
pub(crate) fn browser_refusal(
    admin: &Admin,
    headers: &HeaderMap,
    scope: Scope,
    realm: &'static str,
) -> Option<Response> {
    let headers = bearer_from_basic(headers);
    match admin.guard.check_scope(&headers, scope) {
        Ok(()) => None,
        Err(AdminDenied::Disabled) => Some(AdminDenied::Disabled.into_response()),
        Err(AdminDenied::Unauthorized) => Some(
            (
                StatusCode::UNAUTHORIZED,
                [
                    (
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_str(&format!(
                            "Basic realm=\"{realm}\", charset=\"UTF-8\""
                        ))
                        .unwrap_or(HeaderValue::from_static("Basic")),
                    ),
                    (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                ],
                match scope {
                    Scope::Admin => "admin token required: the password of HTTP Basic auth, or Authorization: Bearer\n",
                    Scope::Report => "report or admin token required: the password of HTTP Basic auth, or Authorization: Bearer\n",
                },
            )
                .into_response(),
        ),
    }
}

/// `Authorization: Basic base64(user:token)` rewritten as `Authorization: Bearer token`; any
/// other headers as they are.
fn bearer_from_basic(headers: &HeaderMap) -> Cow<'_, HeaderMap> {
    let password = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .and_then(|(_, encoded)| {
            base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok()
        })
        .and_then(|decoded| String::from_utf8(decoded).ok())
        .and_then(|pair| {
            pair.split_once(':')
                .map(|(_, password)| password.to_string())
        });
    match password.and_then(|p| HeaderValue::from_str(&format!("Bearer {p}")).ok()) {
        Some(bearer) => {
            let mut rewritten = headers.clone();
            rewritten.insert(header::AUTHORIZATION, bearer);
            Cow::Owned(rewritten)
        }
        None => Cow::Borrowed(headers),
    }
}

pub(crate) fn no_clickhouse() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "postback debugger",
        "<p>The debugger reads ClickHouse, which this ingest process has not been given.</p>",
    )
}

fn clickhouse_error(error: &str) -> Response {
    tracing::warn!(error, "debugger could not read ClickHouse");
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "postback debugger",
        &format!(
            "<p class=\"bad\">ClickHouse could not be read: {}</p>",
            esc(error)
        ),
    )
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    page_in(
        status,
        title,
        "<a href=\"/debug\"><b>clickmatch</b> postback debugger</a>\
         <form action=\"/debug\" method=\"get\"><input name=\"click_id\" \
         placeholder=\"click ID\" size=\"30\" aria-label=\"click ID\">\
         <button>story</button></form>",
        body,
    )
}

/// An HTML page of the house style: `header` (trusted HTML) in the bar, `body` below, no script
/// allowed by its Content-Security-Policy.
pub(crate) fn page_in(status: StatusCode, title: &str, header: &str, body: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · clickmatch</title><style>{STYLE}</style></head><body>\
         <header>{header}</header><main>{body}</main></body></html>\n",
        title = esc(title)
    );
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
        ],
        html,
    )
        .into_response()
}

const STYLE: &str =
    "body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d232a;background:#f6f7f9}\
header{display:flex;gap:2em;align-items:center;padding:.6em 1.2em;background:#1d3557;color:#fff}\
header a{color:#fff;text-decoration:none}main{padding:0 1.2em 2em}\
h1{font-size:1.3em}h2{font-size:1.1em;margin-top:1.6em}\
table{border-collapse:collapse;background:#fff;width:100%;margin:.4em 0}\
th,td{border:1px solid #d8dde3;padding:.25em .5em;text-align:left;vertical-align:top}\
th{background:#eef1f4}code{font:12px ui-monospace,monospace;word-break:break-all}\
.ok{color:#1b7f3b;font-weight:600}.bad{color:#b3261e;font-weight:600}\
.warn{color:#9a5b00;font-weight:600}.muted{color:#66707a}.hint{max-width:42em}\
ul.params{margin:0;padding-left:1em}dl{display:grid;grid-template-columns:max-content auto;\
gap:.2em 1em;background:#fff;padding:.6em;border:1px solid #d8dde3}dt{font-weight:600}dd{margin:0}\
.scroll{overflow-x:auto}th.n,td.n{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}\
th a{color:inherit}tfoot td{font-weight:600;background:#eef1f4}\
form.report{display:flex;flex-wrap:wrap;gap:.6em;align-items:flex-end;margin:1em 0}\
form.report label{display:flex;flex-direction:column;font-size:.9em}\
form.report details{flex-basis:100%}form.report .filters{display:flex;flex-wrap:wrap;gap:.6em}\
@media(max-width:600px){header{flex-wrap:wrap;gap:.5em}main{padding:0 .5em 2em}\
form.report input{max-width:9em}}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_become_a_bearer_token() {
        let mut headers = HeaderMap::new();
        let encoded = base64::engine::general_purpose::STANDARD.encode("admin:s3cret-token");
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {encoded}")).unwrap(),
        );
        let rewritten = bearer_from_basic(&headers);
        assert_eq!(
            rewritten.get(header::AUTHORIZATION).unwrap(),
            "Bearer s3cret-token"
        );
        let mut bearer = HeaderMap::new();
        bearer.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer t"));
        assert!(matches!(bearer_from_basic(&bearer), Cow::Borrowed(_)));
    }
}
