//! Reports over HTTP (docs/reports.md), behind the admin token or the read-only report token
//! ([`crate::guard::Scope::Report`]):
//!
//! - `GET /api/report?group_by=…&from=…&to=…&tz=…&sort=…&limit=…&<dimension>=<value>`: the
//!   report as JSON; `400 {"error", "parameter"}` naming the parameter it refuses;
//! - `GET /report?…` (the same parameters): the page, server-rendered HTML with a form, column
//!   headers that sort (links that ask again), a totals row; no script, no external assets, the
//!   debugger's Content-Security-Policy. An empty filter field of its form means no filter.
//!
//! Parsing and checking are `clickmatch_clickhouse::report`'s; every value shown is escaped.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use clickmatch_clickhouse::report::{
    self, figure, Column, Dimension, Report, ReportError, ReportFailure, ReportParams, Sort, PARAMS,
};
use serde_json::json;

use crate::debugger::{browser_refusal, no_clickhouse, page_in};
use crate::guard::Scope;
use crate::render::esc;
use crate::Admin;

/// The wall clock, for a report's default range.
fn now() -> chrono::DateTime<chrono::Utc> {
    let ms = i64::try_from(clickmatch_core::clock::now_ms()).unwrap_or_default();
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn pairs(query: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

/// Checks the parameters, then reads the report: a refused parameter is answered before
/// ClickHouse is needed.
async fn make(admin: &Admin, params: Result<ReportParams, ReportError>) -> Result<Report, Failure> {
    let request = params
        .and_then(|p| p.check(now()))
        .map_err(Failure::Request)?;
    let settings = admin.reports.as_ref().ok_or(Failure::NoClickHouse)?;
    let networks = report::networks(&admin.account.load());
    report::run(settings, request, &networks)
        .await
        .map_err(|e| match e {
            ReportFailure::Request(e) => Failure::Request(e),
            ReportFailure::ClickHouse(e) => Failure::ClickHouse(e.to_string()),
        })
}

enum Failure {
    Request(ReportError),
    NoClickHouse,
    ClickHouse(String),
}

const NO_CLICKHOUSE: &str = "reports read ClickHouse, which this process has not been given";

/// `GET /api/report`.
pub(crate) async fn api(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Err(denied) = admin.guard.check_scope(&headers, Scope::Report) {
        return denied.into_response();
    }
    match make(&admin, ReportParams::from_pairs(pairs(query.as_deref()))).await {
        Ok(made) => Json(made.to_json()).into_response(),
        Err(Failure::Request(error)) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": error.to_string(), "parameter": error.parameter})),
        )
            .into_response(),
        Err(Failure::NoClickHouse) => {
            (StatusCode::NOT_FOUND, Json(json!({"error": NO_CLICKHOUSE}))).into_response()
        }
        Err(Failure::ClickHouse(error)) => {
            tracing::warn!(error, "report could not read ClickHouse");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": format!("ClickHouse could not be read: {error}")})),
            )
                .into_response()
        }
    }
}

/// `GET /report`.
pub(crate) async fn page(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Some(denied) = browser_refusal(&admin, &headers, Scope::Report, "clickmatch reports") {
        return denied;
    }
    // The form sends every filter field; an empty one is no filter.
    let given: Vec<(String, String)> = pairs(query.as_deref())
        .into_iter()
        .filter(|(name, value)| PARAMS.contains(&name.as_str()) || !value.is_empty())
        .collect();
    let params = ReportParams::from_pairs(given.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    let shown = params.clone().unwrap_or_default();
    let error = |status, text: String| {
        (
            status,
            render(
                &shown,
                None,
                Some(&format!("<p class=\"bad\" id=\"error\">{}</p>", esc(&text))),
            ),
        )
    };
    let (status, body) = match make(&admin, params).await {
        Ok(made) => (StatusCode::OK, render(&shown, Some(&made), None)),
        Err(Failure::Request(e)) => error(StatusCode::BAD_REQUEST, e.to_string()),
        Err(Failure::NoClickHouse) => return no_clickhouse(),
        Err(Failure::ClickHouse(e)) => {
            tracing::warn!(error = e, "report page could not read ClickHouse");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("ClickHouse could not be read: {e}"),
            )
        }
    };
    page_in(
        status,
        "report",
        "<a href=\"/report\"><b>clickmatch</b> reports</a>",
        &body,
    )
}

/// The query string of `params` with `sort` replaced.
fn link(params: &ReportParams, sort: &str) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    let named = [
        ("group_by", &params.group_by),
        ("from", &params.from),
        ("to", &params.to),
        ("tz", &params.tz),
        ("limit", &params.limit),
    ];
    for (name, value) in named {
        if let Some(value) = value {
            out.append_pair(name, value);
        }
    }
    out.append_pair("sort", sort);
    for (name, value) in &params.filters {
        out.append_pair(name, value);
    }
    format!("/report?{}", out.finish())
}

fn input(name: &str, label: &str, value: Option<&str>, extra: &str) -> String {
    format!(
        "<label>{label}<input name=\"{name}\" value=\"{}\"{extra}></label>",
        esc(value.unwrap_or_default())
    )
}

/// The form, then the table (or `error`).
fn render(params: &ReportParams, report: Option<&Report>, error: Option<&str>) -> String {
    let mut out =
        String::from("<h1>Report</h1><form class=\"report\" action=\"/report\" method=\"get\">");
    out.push_str(&input(
        "group_by",
        "group by",
        Some(params.group_by.as_deref().unwrap_or("campaign")),
        " size=\"24\" list=\"dimensions\"",
    ));
    out.push_str(&input(
        "from",
        "from",
        params.from.as_deref(),
        " size=\"11\" placeholder=\"YYYY-MM-DD\"",
    ));
    out.push_str(&input(
        "to",
        "to",
        params.to.as_deref(),
        " size=\"11\" placeholder=\"YYYY-MM-DD\"",
    ));
    out.push_str(&input(
        "tz",
        "time zone",
        Some(params.tz.as_deref().unwrap_or("UTC")),
        " size=\"16\" list=\"zones\"",
    ));
    out.push_str(&input(
        "sort",
        "sort",
        params.sort.as_deref(),
        " size=\"10\" placeholder=\"-revenue\"",
    ));
    out.push_str(&input(
        "limit",
        "rows",
        params.limit.as_deref(),
        " size=\"5\" inputmode=\"numeric\"",
    ));
    out.push_str("<button>show</button><details");
    if !params.filters.is_empty() {
        out.push_str(" open");
    }
    out.push_str("><summary>filters</summary><div class=\"filters\">");
    for dimension in Dimension::ALL.into_iter().filter(|d| !d.is_time()) {
        let value = params
            .filters
            .iter()
            .find(|(name, _)| name == dimension.name())
            .map(|(_, v)| v.as_str());
        out.push_str(&input(
            dimension.name(),
            dimension.name(),
            value,
            " size=\"10\"",
        ));
    }
    out.push_str("</div></details></form><datalist id=\"dimensions\">");
    for dimension in Dimension::ALL {
        out.push_str(&format!("<option value=\"{}\">", dimension.name()));
    }
    out.push_str("</datalist><datalist id=\"zones\">");
    for zone in [
        "UTC",
        "Europe/London",
        "Europe/Berlin",
        "America/New_York",
        "America/Los_Angeles",
        "America/Sao_Paulo",
        "Asia/Kolkata",
        "Asia/Kathmandu",
        "Asia/Tokyo",
        "Australia/Sydney",
    ] {
        out.push_str(&format!("<option value=\"{zone}\">"));
    }
    out.push_str("</datalist>");
    if let Some(error) = error {
        out.push_str(error);
    }
    if let Some(report) = report {
        out.push_str(&table(params, report));
    }
    out
}

fn table(params: &ReportParams, report: &Report) -> String {
    let request = &report.request;
    let mut out = format!(
        "<p class=\"muted\" id=\"summary\">{} to {} ({}), amounts in {}: {} of {} rows</p>",
        esc(&request
            .from
            .with_timezone(&request.tz)
            .format("%Y-%m-%d %H:%M")
            .to_string()),
        esc(&request
            .to
            .with_timezone(&request.tz)
            .format("%Y-%m-%d %H:%M")
            .to_string()),
        esc(request.tz.name()),
        esc(&report.currency),
        report.rows.len(),
        report.rows_total
    );
    out.push_str("<div class=\"scroll\"><table id=\"report\"><thead><tr>");
    let columns = report.columns();
    for column in &columns {
        // A click on the sorted column turns its order round; on another, figures sort
        // largest first and dimensions A to Z.
        let descending = if request.sort.column == *column {
            !request.sort.descending
        } else {
            matches!(column, Column::Figure(_))
        };
        let sort = Sort {
            column: *column,
            descending,
        };
        let arrow = match (request.sort.column == *column, request.sort.descending) {
            (true, true) => " ▼",
            (true, false) => " ▲",
            (false, _) => "",
        };
        let class = if matches!(column, Column::Figure(_)) {
            " class=\"n\""
        } else {
            ""
        };
        let aria = if request.sort.column == *column {
            if request.sort.descending {
                " aria-sort=\"descending\""
            } else {
                " aria-sort=\"ascending\""
            }
        } else {
            ""
        };
        out.push_str(&format!(
            "<th{class}{aria} data-column=\"{name}\"><a href=\"{href}\">{name}{arrow}</a></th>",
            name = column.name(),
            href = esc(&link(params, &sort.param())),
        ));
    }
    out.push_str("</tr></thead><tbody>");
    for row in &report.rows {
        out.push_str("<tr>");
        for column in &columns {
            let text = row.cell(&request.group_by, *column).text();
            match column {
                Column::Dimension(_) if text.is_empty() => {
                    out.push_str("<td class=\"muted\" title=\"no value\">—</td>")
                }
                Column::Dimension(_) => out.push_str(&format!("<td>{}</td>", esc(&text))),
                Column::Figure(_) => out.push_str(&format!("<td class=\"n\">{}</td>", esc(&text))),
            }
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody><tfoot><tr id=\"totals\">");
    for (i, column) in columns.iter().enumerate() {
        match column {
            Column::Dimension(_) if i == 0 => out.push_str("<td>total</td>"),
            Column::Dimension(_) => out.push_str("<td></td>"),
            Column::Figure(f) => out.push_str(&format!(
                "<td class=\"n\">{}</td>",
                esc(&figure(&report.totals, *f).text())
            )),
        }
    }
    out.push_str("</tr></tfoot></table></div>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use clickmatch_clickhouse::money::Figures;
    use clickmatch_clickhouse::report::ReportRow;

    #[test]
    fn values_are_escaped_and_headers_link_to_the_other_order() {
        let params = ReportParams::from_pairs([
            ("group_by", "sub1"),
            ("sort", "-clicks"),
            ("sub1", "<b>&\"x\""),
        ])
        .unwrap();
        let now = chrono::Utc.with_ymd_and_hms(2026, 12, 6, 0, 0, 0).unwrap();
        let request = params.check(now).unwrap();
        let row = ReportRow {
            keys: vec!["<script>alert(1)</script>".into()],
            figures: Figures {
                clicks: 3,
                ..Figures::default()
            },
        };
        let report = Report::assemble(request, "USD".into(), vec![row]);
        let html = render(&params, Some(&report), None);
        assert!(!html.contains("<script>"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(
            html.contains("value=\"&lt;b&gt;&amp;&quot;x&quot;\""),
            "{html}"
        );
        // Sorted by clicks descending: its header offers ascending, the others descending.
        assert!(
            html.contains("sort=clicks&amp;sub1=%3Cb%3E%26%22x%22\">clicks ▼"),
            "{html}"
        );
        assert!(html.contains("sort=-revenue"), "{html}");
        assert!(html.contains("<tr id=\"totals\"><td>total</td>"), "{html}");
    }
}
