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
//! payout would book were it attributed ([`payout_preview`], the joiner's own booking), so that
//! an operator sees a `payout_macro` before any conversion lands with it.
//!
//! Guarded by the admin token through [`crate::admin::check`]. Besides its headers (`Authorization:
//! Bearer`, `X-Clickmatch-Admin-Token`) these pages take HTTP Basic credentials whose password is
//! the token, and ask for them with a Basic challenge, so that a browser prompts for the token
//! (the token never goes into a URL). Every value shown is HTML-escaped; the pages carry no
//! script and a Content-Security-Policy that forbids any.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use clickmatch_clickhouse::{
    ClickRow, ClickStory, ConversionRow, OutboundRow, OutcomeCount, PostbackEntry, UnattributedRow,
};
use clickmatch_core::classify::{diagnose, extract};
use clickmatch_core::model::{Account, GLOBAL_ROUTE};
use clickmatch_core::money::{BookedPayout, MoneyIssue};
use clickmatch_core::reason::hint_text;
use clickmatch_core::records::{IngestVerdict, PostbackRecord, RECORD_VERSION};
use clickmatch_core::ClickId;
use serde::Deserialize;

use crate::admin::{self, AdminDenied};
use crate::{now_ms, Ingest};

/// Longest click ID the story page looks up (foreign IDs are at most 128 characters).
const MAX_CLICK_ID_LEN: usize = 128;
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
    State(ingest): State<Arc<Ingest>>,
    headers: HeaderMap,
    Query(query): Query<IndexQuery>,
) -> Response {
    if let Some(denied) = refusal(&ingest, &headers) {
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
    let Some(reader) = &ingest.debug else {
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
    let account = ingest.account.load_full();
    page(
        StatusCode::OK,
        "postback debugger",
        &render_index(&account, hours, per, &latest, &counts, &issues),
    )
}

/// `GET /debug/click/{click_id}`.
pub(crate) async fn click(
    State(ingest): State<Arc<Ingest>>,
    headers: HeaderMap,
    Path(click_id): Path<String>,
) -> Response {
    if let Some(denied) = refusal(&ingest, &headers) {
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
    let Some(reader) = &ingest.debug else {
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
    let account = ingest.account.load_full();
    page(
        StatusCode::OK,
        &format!("click {click_id}"),
        &render_story(&account, click_id, &story),
    )
}

/// The admin check of [`crate::admin`], also taking HTTP Basic credentials (the token as the
/// password) and answering 401 with a Basic challenge, so that browsers prompt for it. `None`:
/// the request may proceed.
fn refusal(ingest: &Ingest, headers: &HeaderMap) -> Option<Response> {
    let headers = bearer_from_basic(headers);
    match admin::check(ingest, &headers) {
        Ok(()) => None,
        Err(AdminDenied::Disabled) => Some(AdminDenied::Disabled.into_response()),
        Err(AdminDenied::Unauthorized) => Some(
            (
                StatusCode::UNAUTHORIZED,
                [
                    (
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static(
                            "Basic realm=\"clickmatch debugger\", charset=\"UTF-8\"",
                        ),
                    ),
                    (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                ],
                "admin token required: the password of HTTP Basic auth, or Authorization: Bearer\n",
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

fn no_clickhouse() -> Response {
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
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>{title} · clickmatch</title><style>{STYLE}</style></head><body>\
         <header><a href=\"/debug\"><b>clickmatch</b> postback debugger</a>\
         <form action=\"/debug\" method=\"get\"><input name=\"click_id\" \
         placeholder=\"click ID\" size=\"30\" aria-label=\"click ID\">\
         <button>story</button></form></header><main>{body}</main></body></html>\n",
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
gap:.2em 1em;background:#fff;padding:.6em;border:1px solid #d8dde3}dt{font-weight:600}dd{margin:0}";

/// HTML-escapes text for element content and quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `2026-11-26 06:01:11.380` (UTC) from Unix ms.
pub fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:03}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

fn click_link(click_id: &str) -> String {
    if click_id.is_empty() {
        return "<span class=\"muted\">(none)</span>".to_string();
    }
    format!(
        "<a href=\"/debug/click/{}\"><code>{}</code></a>",
        esc(&clickmatch_core::template::encode_value(click_id)),
        esc(click_id)
    )
}

/// The raw parameters as stored: a JSON array of `[name, value]` pairs (or an object).
pub fn raw_params(json: &str) -> Vec<(String, String)> {
    if let Ok(pairs) = serde_json::from_str::<Vec<(String, String)>>(json) {
        return pairs;
    }
    if let Ok(map) = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(json) {
        return map
            .into_iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => (k, s),
                other => (k, other.to_string()),
            })
            .collect();
    }
    Vec::new()
}

fn params_list(json: &str) -> String {
    let params = raw_params(json);
    if params.is_empty() {
        return if json.trim().is_empty() || json.trim() == "[]" {
            "<span class=\"muted\">(no parameters)</span>".to_string()
        } else {
            format!("<code>{}</code>", esc(json))
        };
    }
    let mut out = String::from("<ul class=\"params\">");
    for (name, value) in params {
        let _ = write!(out, "<li><code>{}={}</code></li>", esc(&name), esc(&value));
    }
    out.push_str("</ul>");
    out
}

/// The operator's sentence for an unattributed row: the classifier's, with this postback's
/// specifics, when today's configuration still gives the stored hint; else the hint's text.
pub fn unattributed_hint(account: &Account, row: &UnattributedRow) -> String {
    if row.hint.is_empty() {
        return String::new();
    }
    let verdict = match row.reason.as_str() {
        "unauthorized" => IngestVerdict::Unauthorized,
        "unknown_route" => IngestVerdict::UnknownRoute,
        _ => IngestVerdict::Accepted,
    };
    let record = PostbackRecord {
        v: RECORD_VERSION,
        postback_id: row.postback_id.clone(),
        received_ms: row.received_time_ms,
        method: "GET".to_string(),
        route: (row.route != GLOBAL_ROUTE).then(|| row.route.clone()),
        params: raw_params(&row.raw_params),
        remote_ip: row.remote_ip.clone(),
        verdict,
    };
    let diagnosis = diagnose(account, &record);
    match diagnosis.sentence() {
        Some(sentence) if diagnosis.hint == Some(row.hint.as_str()) => sentence,
        _ => hint_text(&row.hint).to_string(),
    }
}

/// What the joiner would book for an unattributed postback's payout were it attributed: the
/// route's reading of its parameters under the payout model and `default_payout` the joiner
/// uses (the route's model, else the offer's; see `attribute` in `clickmatch_core::join`).
///
/// The joiner takes the offer of the click; `click_offer` is that when the click is known (a
/// click's story), else the offer the postback names (or its route's). `None` when today's
/// configuration does not know the row's route.
pub fn payout_preview(
    account: &Account,
    row: &UnattributedRow,
    click_offer: Option<&str>,
) -> Option<BookedPayout> {
    let route = account.route((row.route != GLOBAL_ROUTE).then_some(row.route.as_str()))?;
    let extracted = extract(route, &raw_params(&row.raw_params));
    let offer = click_offer
        .filter(|id| !id.is_empty())
        .or_else(|| extracted.offer_id.as_deref().map(str::trim))
        .and_then(|id| account.offers.get(id));
    Some(extracted.book_conversion_payout(Some(route), offer))
}

/// A payout issue for the operator: its code, the payout text as sent (`raw`) and the hint.
fn payout_issue(code: &str, raw: &str) -> String {
    let hint = MoneyIssue::hint_of_code(code);
    let sent = if raw.is_empty() {
        "<span class=\"muted\">(no payout sent)</span>".to_string()
    } else {
        format!("<code>{}</code>", esc(raw))
    };
    format!(
        "<span class=\"warn\">payout issue</span> <code class=\"payout-issue\">{}</code> \
         (sent {sent}): {}",
        esc(code),
        esc(hint)
    )
}

/// [`payout_preview`]'s booking, with its issue when there is one; empty without a route.
fn payout_preview_html(booked: Option<&BookedPayout>) -> String {
    let Some(booked) = booked else {
        return String::new();
    };
    let issue = booked
        .issue
        .map(|issue| format!("<br>{}", payout_issue(issue.code(), &booked.payout_raw)))
        .unwrap_or_default();
    format!(
        "<div class=\"booking\">payout if attributed: {} {}{issue}</div>",
        booked.payout.normalize(),
        esc(booked.currency.as_str())
    )
}

fn conversion_flags(row: &ConversionRow) -> String {
    let mut flags = Vec::new();
    if !row.payout_issue.is_empty() {
        flags.push(payout_issue(&row.payout_issue, &row.payout_raw));
    }
    if row.click_id_repaired {
        flags.push(format!(
            "<span class=\"warn\">click ID repaired</span> ({}): {}",
            esc(&row.repair_hint),
            esc(hint_text(&row.repair_hint))
        ));
    }
    if row.offer_mismatch {
        flags.push(
            "<span class=\"warn\">offer mismatch</span>: the postback names another offer than \
             the click's"
                .to_string(),
        );
    }
    if row.is_test {
        flags.push("<span class=\"muted\">test conversion</span>".to_string());
    }
    flags.join("<br>")
}

fn render_index(
    account: &Account,
    hours: u32,
    per: u64,
    latest: &[PostbackEntry],
    counts: &[OutcomeCount],
    payout_issues: &[OutcomeCount],
) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<h1>Postbacks of the last {hours} h</h1><p class=\"muted\">The latest {per} postbacks \
         of each route and offer, newest first, read from ClickHouse. \
         <a href=\"/debug?hours={hours}&amp;per={per}\">refresh</a></p>"
    );
    // Summary per route and offer.
    let mut summary: BTreeMap<(&str, &str), Vec<&OutcomeCount>> = BTreeMap::new();
    for count in counts {
        summary
            .entry((count.route.as_str(), count.offer_id.as_str()))
            .or_default()
            .push(count);
    }
    let mut issues: BTreeMap<(&str, &str), Vec<&OutcomeCount>> = BTreeMap::new();
    for count in payout_issues {
        issues
            .entry((count.route.as_str(), count.offer_id.as_str()))
            .or_default()
            .push(count);
    }
    out.push_str("<h2>Outcomes per route and offer</h2>");
    if summary.is_empty() {
        out.push_str("<p class=\"muted\">No postbacks in this window.</p>");
    } else {
        out.push_str(
            "<table id=\"summary\"><tr><th>route</th><th>offer</th><th>attributed</th>\
             <th>unattributed</th><th>payout issues</th></tr>",
        );
        for ((route, offer), rows) in &summary {
            let attributed: u64 = rows
                .iter()
                .filter(|c| c.outcome == "attributed")
                .map(|c| c.postbacks)
                .sum();
            let reasons: Vec<String> = rows
                .iter()
                .filter(|c| c.outcome != "attributed")
                .map(|c| format!("{} {}", c.postbacks, esc(&c.outcome)))
                .collect();
            let payout: Vec<String> = issues
                .get(&(*route, *offer))
                .into_iter()
                .flatten()
                .map(|c| format!("{} {}", c.postbacks, esc(&c.outcome)))
                .collect();
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td class=\"ok\">{attributed}</td><td>{}</td>\
                 <td>{}</td></tr>",
                esc(route),
                offer_label(offer),
                if reasons.is_empty() {
                    "0".to_string()
                } else {
                    format!("<span class=\"bad\">{}</span>", reasons.join(", "))
                },
                if payout.is_empty() {
                    "0".to_string()
                } else {
                    format!("<span class=\"warn\">{}</span>", payout.join(", "))
                }
            );
        }
        out.push_str("</table>");
    }

    let mut groups: BTreeMap<(&str, &str), Vec<&PostbackEntry>> = BTreeMap::new();
    for entry in latest {
        groups
            .entry((entry.route(), entry.offer_id()))
            .or_default()
            .push(entry);
    }
    for ((route, offer), entries) in groups {
        let _ = write!(
            out,
            "<h2>route <code>{}</code> · offer {}</h2><table class=\"postbacks\">\
             <tr><th>received (UTC)</th><th>outcome</th><th>click ID</th><th>payout</th>\
             <th>raw parameters</th><th>fix hint / details</th></tr>",
            esc(route),
            offer_label(offer)
        );
        for entry in entries {
            match entry {
                PostbackEntry::Attributed(c) => {
                    let _ = write!(
                        out,
                        "<tr class=\"attributed\"><td>{}</td><td class=\"ok\">attributed</td>\
                         <td>{}</td><td>{} {}</td><td class=\"muted\">event {} · status {} · \
                         txid {} · version {}</td><td class=\"hint\">{}</td></tr>",
                        utc(c.conversion_time_ms),
                        click_link(&c.click_id),
                        c.payout.normalize(),
                        esc(&c.currency),
                        esc(&c.event),
                        esc(&c.status),
                        esc(&c.txid),
                        c.version,
                        conversion_flags(c)
                    );
                }
                PostbackEntry::Unattributed(u) => {
                    let _ = write!(
                        out,
                        "<tr class=\"unattributed\"><td>{}</td><td class=\"bad\">{}</td>\
                         <td>{}</td><td>{} {}</td><td>{}</td><td class=\"hint\">{}{}{}</td></tr>",
                        utc(u.received_time_ms),
                        esc(&u.reason),
                        raw_click_id(&u.raw_click_id),
                        u.payout.normalize(),
                        esc(&u.currency),
                        params_list(&u.raw_params),
                        hint_code(&u.hint),
                        esc(&unattributed_hint(account, u)),
                        payout_preview_html(payout_preview(account, u, None).as_ref())
                    );
                }
            }
        }
        out.push_str("</table>");
    }
    out
}

fn offer_label(offer: &str) -> String {
    if offer.is_empty() {
        "<span class=\"muted\">(unknown)</span>".to_string()
    } else {
        format!("<code>{}</code>", esc(offer))
    }
}

fn hint_code(code: &str) -> String {
    if code.is_empty() {
        String::new()
    } else {
        format!("<code>{}</code>: ", esc(code))
    }
}

/// A raw click ID: a link to its story when it looks like one, else the text.
fn raw_click_id(raw: &str) -> String {
    if raw.is_empty() {
        "<span class=\"muted\">(none)</span>".to_string()
    } else if raw.len() <= MAX_CLICK_ID_LEN && raw.bytes().all(|b| b.is_ascii_graphic()) {
        click_link(raw)
    } else {
        format!("<code>{}</code>", esc(raw))
    }
}

fn render_story(account: &Account, click_id: &str, story: &ClickStory) -> String {
    let mut out = String::new();
    let _ = write!(out, "<h1>Click <code>{}</code></h1>", esc(click_id));

    // What the ID says by itself.
    let about = match ClickId::parse(click_id) {
        Ok(id) if account.signer.verify(id) => format!(
            "<span class=\"ok\">genuine clickmatch click ID</span> minted {} UTC",
            utc(id.time_ms())
        ),
        Ok(id) => format!(
            "<span class=\"bad\">signature does not verify</span>: forged, corrupted, or minted \
             with another secret (claims {} UTC)",
            utc(id.time_ms())
        ),
        Err(_) => "<span class=\"warn\">not a clickmatch click ID</span>: a foreign (another \
                   tracker's) or malformed ID"
            .to_string(),
    };
    let _ = write!(out, "<p id=\"id-check\">{about}</p>");

    out.push_str("<h2>Click</h2>");
    match &story.click {
        Some(click) => out.push_str(&render_click(click)),
        None => out.push_str(
            "<p class=\"bad\" id=\"no-click\">No click recorded with this ID (not yet written, \
             outside the data kept, or never made).</p>",
        ),
    }

    out.push_str("<h2>Conversions</h2>");
    if story.conversions.is_empty() {
        out.push_str("<p class=\"muted\">No attributed conversion.</p>");
    } else {
        out.push_str(
            "<table id=\"conversions\"><tr><th>received (UTC)</th><th>conversion</th>\
             <th>version</th><th>route</th><th>offer</th><th>event</th><th>status</th>\
             <th>payout</th><th>txid</th><th>postback</th><th>flags</th></tr>",
        );
        for c in &story.conversions {
            let _ = write!(
                out,
                "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td>\
                 <td>{}</td><td>{}</td><td>{} {}</td><td>{}</td><td><code>{}</code></td>\
                 <td>{}</td></tr>",
                utc(c.conversion_time_ms),
                esc(&c.conversion_id),
                c.version,
                esc(&c.route),
                esc(&c.offer_id),
                esc(&c.event),
                esc(&c.status),
                c.payout.normalize(),
                esc(&c.currency),
                esc(&c.txid),
                esc(&c.postback_id),
                conversion_flags(c)
            );
        }
        out.push_str("</table>");
    }

    out.push_str("<h2>Unattributed postbacks naming this click</h2>");
    if story.unattributed.is_empty() {
        out.push_str("<p class=\"muted\">None.</p>");
    } else {
        out.push_str(
            "<table id=\"unattributed\"><tr><th>received (UTC)</th><th>route</th><th>reason</th>\
             <th>raw click ID</th><th>raw parameters</th><th>fix hint</th></tr>",
        );
        // The joiner books under the offer of the click, when there is one.
        let click_offer = story.click.as_ref().map(|c| c.offer_id.as_str());
        for u in &story.unattributed {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td class=\"bad\">{}</td><td><code>{}</code></td>\
                 <td>{}</td><td class=\"hint\">{}{}{}</td></tr>",
                utc(u.received_time_ms),
                esc(&u.route),
                esc(&u.reason),
                esc(&u.raw_click_id),
                params_list(&u.raw_params),
                hint_code(&u.hint),
                esc(&unattributed_hint(account, u)),
                payout_preview_html(payout_preview(account, u, click_offer).as_ref())
            );
        }
        out.push_str("</table>");
    }

    out.push_str("<h2>Outbound postbacks to the traffic source</h2>");
    out.push_str(&render_deliveries(account, story));
    out
}

fn render_click(click: &ClickRow) -> String {
    let subs = [
        &click.sub1,
        &click.sub2,
        &click.sub3,
        &click.sub4,
        &click.sub5,
        &click.sub6,
        &click.sub7,
        &click.sub8,
        &click.sub9,
        &click.sub10,
    ];
    let subs: Vec<String> = subs
        .iter()
        .enumerate()
        .filter(|(_, v)| !v.is_empty())
        .map(|(i, v)| format!("<code>sub{}={}</code>", i + 1, esc(v)))
        .collect();
    let mut flags = Vec::new();
    if click.is_test {
        flags.push("test click");
    }
    if click.is_foreign {
        flags.push("foreign ID");
    }
    format!(
        "<dl id=\"click\"><dt>time</dt><dd>{} UTC</dd><dt>campaign</dt><dd>{}</dd>\
         <dt>offer</dt><dd>{}</dd><dt>source</dt><dd>{}</dd><dt>subs</dt><dd>{}</dd>\
         <dt>IP</dt><dd>{}</dd><dt>user agent</dt><dd>{}</dd><dt>flags</dt><dd>{}</dd></dl>",
        utc(click.click_time_ms),
        esc(&click.campaign_id),
        esc(&click.offer_id),
        esc(&click.source),
        if subs.is_empty() {
            "<span class=\"muted\">(none)</span>".to_string()
        } else {
            subs.join(" ")
        },
        esc(&click.ip),
        esc(&click.user_agent),
        esc(&flags.join(", "))
    )
}

fn render_deliveries(account: &Account, story: &ClickStory) -> String {
    if story.deliveries.is_empty() {
        let campaign = story
            .click
            .as_ref()
            .and_then(|c| account.campaigns.get(&c.campaign_id));
        let why = match campaign {
            Some(c) if c.postback_url.is_none() => {
                "None: the click's campaign has no <code>postback_url</code>."
            }
            _ => "None recorded.",
        };
        return format!("<p class=\"muted\">{why}</p>");
    }
    // The final state of each delivery is its last attempt's.
    let mut last: HashMap<&str, &OutboundRow> = HashMap::new();
    for row in &story.deliveries {
        let entry = last.entry(row.idempotency_key.as_str()).or_insert(row);
        if row.attempt > entry.attempt {
            *entry = row;
        }
    }
    let mut out = String::from(
        "<table id=\"deliveries\"><tr><th>idempotency key</th><th>attempt</th>\
         <th>time (UTC)</th><th>state</th><th>HTTP</th><th>duration</th><th>error</th>\
         <th>URL</th></tr>",
    );
    for row in &story.deliveries {
        let class = match row.state.as_str() {
            "delivered" => "ok",
            "failed" => "bad",
            _ => "warn",
        };
        let final_marker = if last.get(row.idempotency_key.as_str()) == Some(&row) {
            " (final)"
        } else {
            ""
        };
        let _ = write!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td class=\"{class}\">{}{}</td>\
             <td>{}</td><td>{} ms</td><td>{}</td><td><code>{}</code></td></tr>",
            esc(&row.idempotency_key),
            row.attempt,
            utc(row.attempt_time_ms),
            esc(&row.state),
            final_marker,
            if row.http_status == 0 {
                "-".to_string()
            } else {
                row.http_status.to_string()
            },
            row.duration_ms,
            esc(&row.error),
            esc(&row.url)
        );
    }
    out.push_str("</table>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clickmatch_config::Config;

    #[test]
    fn escaping_leaves_no_markup() {
        assert_eq!(
            esc("<script>alert('x')</script>&\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"
        );
        let list = params_list(r#"[["cid","<img src=x onerror=alert(1)>"],["a&b","\""]]"#);
        assert!(!list.contains("<img"), "{list}");
        assert!(
            list.contains("cid=&lt;img src=x onerror=alert(1)&gt;"),
            "{list}"
        );
    }

    #[test]
    fn raw_params_read_pairs_and_objects() {
        assert_eq!(
            raw_params(r#"[["cid","x"],["cid","y"]]"#),
            vec![("cid".into(), "x".into()), ("cid".into(), "y".into())]
        );
        assert_eq!(
            raw_params(r#"{"sub1":"{sub1}","n":1}"#),
            vec![("n".into(), "1".into()), ("sub1".into(), "{sub1}".into())]
        );
        assert!(raw_params("garbage").is_empty());
    }

    #[test]
    fn utc_times() {
        assert_eq!(utc(0), "1970-01-01 00:00:00.000");
        assert_eq!(utc(1_700_000_000_123), "2023-11-14 22:13:20.123");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00.000");
    }

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

    /// Offer 1 books what the postback sends, offer 2 the same with a default payout, offer 3 a
    /// fixed payout; route `eur` reads `amount` in euros.
    fn money_account() -> Account {
        Config::from_toml(
            r#"
[account]
secret = "0123456789abcdef"
currency = "usd"

[[offers]]
id = "1"

[[offers]]
id = "2"
default_payout = "1.50"

[[offers]]
id = "3"
payout = "fixed"
fixed_payout = "4.50"

[[campaigns]]
id = "c"
offer = "1"
url = "https://net.example/?s={click_id}"

[routes.eur]
offer = "2"
payout = ["amount"]
currency = "EUR"
"#,
            "money.toml",
            &Default::default(),
        )
        .unwrap()
        .account
    }

    fn unattributed_row(route: &str, raw_params: &str) -> UnattributedRow {
        UnattributedRow {
            postback_id: "p".into(),
            received_time: 0,
            received_time_ms: 0,
            route: route.into(),
            reason: "unsubstituted_macro".into(),
            raw_click_id: "{sub1}".into(),
            offer_id: String::new(),
            payout: Default::default(),
            currency: "USD".into(),
            remote_ip: "192.0.2.1".into(),
            raw_params: raw_params.into(),
            hint: "macro_not_substituted".into(),
            is_test: false,
            latency_ms: 0,
        }
    }

    fn conversion_row(payout_raw: &str, payout_issue: &str) -> ConversionRow {
        ConversionRow {
            conversion_id: "conv".into(),
            click_id: "01jc0000000000000000000000".into(),
            click_time: 0,
            conversion_time: 0,
            conversion_time_ms: 0,
            postback_id: "p".into(),
            campaign_id: "c".into(),
            offer_id: "1".into(),
            route: "global".into(),
            event: "sale".into(),
            status: "approved".into(),
            payout: Default::default(),
            currency: "USD".into(),
            txid: String::new(),
            offer_mismatch: false,
            click_id_repaired: false,
            repair_hint: String::new(),
            is_test: false,
            version: 1,
            latency_ms: 0,
            payout_raw: payout_raw.into(),
            payout_issue: payout_issue.into(),
            source: String::new(),
        }
    }

    #[test]
    fn an_attributed_conversion_shows_its_payout_issue_escaped() {
        let flags = conversion_flags(&conversion_row("{payout}<b>", "payout_macro"));
        assert!(
            flags.contains("payout issue</span> <code class=\"payout-issue\">payout_macro</code>"),
            "{flags}"
        );
        assert!(
            flags.contains("(sent <code>{payout}&lt;b&gt;</code>)"),
            "{flags}"
        );
        assert!(!flags.contains("<b>"), "{flags}");
        assert!(
            flags.contains(&esc(MoneyIssue::PayoutMacro.hint())),
            "{flags}"
        );
        // Nothing sent at all.
        let flags = conversion_flags(&conversion_row("", "payout_missing"));
        assert!(flags.contains("(sent <span class=\"muted\">(no payout sent)</span>)"));
        assert!(
            flags.contains(&esc(MoneyIssue::PayoutMissing.hint())),
            "{flags}"
        );
        // A code this build does not know still shows, with a generic sentence.
        let flags = conversion_flags(&conversion_row("1", "payout_from_the_future"));
        assert!(flags.contains("payout_from_the_future"), "{flags}");
        assert!(flags.contains("does not know"), "{flags}");
        // A clean conversion shows none.
        let flags = conversion_flags(&conversion_row("2.50", ""));
        assert!(!flags.contains("payout issue"), "{flags}");
        assert!(flags.is_empty(), "{flags}");
    }

    #[test]
    fn unattributed_postbacks_preview_the_payout_booking() {
        use clickmatch_core::money::Currency;
        let account = money_account();
        let preview = |route: &str, params: &str, click_offer: Option<&str>| {
            payout_preview(&account, &unattributed_row(route, params), click_offer)
        };
        // No rust_decimal in this crate: amounts compared as printed.
        let printed = |s: &str| s.to_string();

        // The macro left literal: payout_macro, 0 booked without a default payout.
        let booked = preview(
            "global",
            r#"[["cid","{sub1}"],["payout","{payout}"],["offer","1"]]"#,
            None,
        )
        .unwrap();
        assert_eq!(booked.issue, Some(MoneyIssue::PayoutMacro));
        assert_eq!(booked.payout.to_string(), printed("0"));
        assert_eq!(booked.payout_raw, "{payout}");
        assert_eq!(booked.currency, Currency::USD);
        // Offer 2's default payout is booked instead, still flagged.
        let booked = preview("global", r#"[["payout","{payout}"],["offer","2"]]"#, None).unwrap();
        assert_eq!(
            (booked.payout.to_string(), booked.issue),
            (printed("1.50"), Some(MoneyIssue::PayoutMacro))
        );
        // The click's offer wins over the one the postback names, as in the joiner: offer 3
        // books its fixed payout whatever was sent.
        let booked = preview(
            "global",
            r#"[["payout","{payout}"],["offer","1"]]"#,
            Some("3"),
        )
        .unwrap();
        assert_eq!(
            (booked.payout.to_string(), booked.issue),
            (printed("4.50"), None)
        );
        // A clean payout in the network's format, through a route with its own names and
        // currency and the route's offer.
        let booked = preview("eur", r#"{"amount":"1.234,56 €"}"#, None).unwrap();
        assert_eq!(booked.payout.to_string(), printed("1234.56"));
        assert_eq!(booked.currency, Currency::EUR);
        assert_eq!(booked.issue, None);
        // Nothing sent under a model that needs it: payout_missing, unless a default exists.
        let booked = preview("global", r#"[["offer","1"]]"#, None).unwrap();
        assert_eq!(booked.issue, Some(MoneyIssue::PayoutMissing));
        let booked = preview("eur", r#"[["cid","x"]]"#, None).unwrap();
        assert_eq!(
            (booked.payout.to_string(), booked.issue),
            (printed("1.50"), None)
        );
        // A route today's configuration does not know: no preview.
        assert_eq!(preview("gone", r#"[["payout","1"]]"#, None), None);

        let html = payout_preview_html(
            preview("global", r#"[["payout","{payout}"],["offer","1"]]"#, None).as_ref(),
        );
        assert!(html.starts_with("<div class=\"booking\">payout if attributed: 0 USD<br>"));
        assert!(
            html.contains("<code class=\"payout-issue\">payout_macro</code>"),
            "{html}"
        );
        assert!(html.contains("(sent <code>{payout}</code>)"), "{html}");
        assert!(
            html.contains(&esc(MoneyIssue::PayoutMacro.hint())),
            "{html}"
        );
        let clean = payout_preview_html(preview("eur", r#"{"amount":"2.5"}"#, None).as_ref());
        assert_eq!(
            clean,
            "<div class=\"booking\">payout if attributed: 2.5 EUR</div>"
        );
        assert_eq!(payout_preview_html(None), "");
    }

    #[test]
    fn the_index_shows_payout_issues_per_row_and_in_the_summary() {
        let account = money_account();
        let mut flagged = conversion_row("{payout}", "payout_macro");
        flagged.txid = "T-macro".into();
        let mut clean = conversion_row("3.25", "");
        clean.txid = "T-clean".into();
        clean.conversion_id = "conv-2".into();
        let unattributed = UnattributedRow {
            offer_id: "1".into(),
            ..unattributed_row(
                "global",
                r#"[["cid","{sub1}"],["payout","{payout}"],["offer","1"]]"#,
            )
        };
        let count = |outcome: &str, postbacks| OutcomeCount {
            route: "global".into(),
            offer_id: "1".into(),
            outcome: outcome.into(),
            postbacks,
        };
        let html = render_index(
            &account,
            24,
            20,
            &[
                PostbackEntry::Attributed(flagged),
                PostbackEntry::Attributed(clean),
                PostbackEntry::Unattributed(unattributed),
            ],
            &[count("attributed", 2), count("unsubstituted_macro", 1)],
            &[count("payout_macro", 1)],
        );
        assert!(
            html.contains("<td><span class=\"warn\">1 payout_macro</span></td>"),
            "{html}"
        );
        let row_with = |needle: &str| {
            html.split("<tr")
                .find(|row| row.contains(needle))
                .unwrap_or_else(|| panic!("no row with {needle}: {html}"))
                .to_string()
        };
        let row = row_with("T-macro");
        assert!(row.contains("payout_macro"), "{row}");
        assert!(row.contains("<code>{payout}</code>"), "{row}");
        assert!(row.contains(&esc(MoneyIssue::PayoutMacro.hint())), "{row}");
        let row = row_with("T-clean");
        assert!(!row.contains("payout issue"), "{row}");
        let row = row_with("class=\"unattributed\"");
        assert!(row.contains("payout if attributed: 0 USD"), "{row}");
        assert!(row.contains("payout_macro"), "{row}");
    }

    #[test]
    fn hints_carry_the_postbacks_specifics_when_the_config_agrees() {
        let account = clickmatch_config::Config::demo(&Default::default())
            .unwrap()
            .account;
        let row = UnattributedRow {
            postback_id: "p".into(),
            received_time: 0,
            received_time_ms: 0,
            route: "global".into(),
            reason: "unsubstituted_macro".into(),
            raw_click_id: "{sub1}".into(),
            offer_id: "1".into(),
            payout: Default::default(),
            currency: "USD".into(),
            remote_ip: "192.0.2.1".into(),
            raw_params: r#"[["cid","{sub1}"]]"#.into(),
            hint: "macro_not_substituted".into(),
            is_test: false,
            latency_ms: 0,
        };
        let sentence = unattributed_hint(&account, &row);
        assert!(!sentence.is_empty());
        let other = UnattributedRow {
            hint: "click_never_recorded".into(),
            reason: "unknown_click_id".into(),
            ..row
        };
        assert_eq!(
            unattributed_hint(&account, &other),
            hint_text("click_never_recorded")
        );
    }
}
