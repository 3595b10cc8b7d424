//! The HTML of the postback debugger's pages (see [`crate::debugger`]): the index of the latest
//! postbacks per route and offer, a click's story, and the pieces both show (raw parameters,
//! fix hints, payout issues and previews). Pure functions of rows read from ClickHouse and the
//! account; every value is HTML-escaped ([`esc`]).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use clickmatch_clickhouse::{
    ClickRow, ClickStory, ConversionRow, OutboundRow, OutcomeCount, PostbackEntry, UnattributedRow,
};
use clickmatch_core::classify::{diagnose, extract};
use clickmatch_core::model::{Account, GLOBAL_ROUTE};
use clickmatch_core::money::{BookedPayout, MoneyIssue};
use clickmatch_core::reason::hint_text;
use clickmatch_core::records::{IngestVerdict, PostbackRecord, RECORD_VERSION};
use clickmatch_core::ClickId;

use crate::debugger::MAX_CLICK_ID_LEN;

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
        key: String::new(),
        origin: Default::default(),
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
    if row.origin != "postback" && !row.origin.is_empty() {
        flags.push(format!(
            "<span class=\"muted\">origin {}</span>",
            esc(&row.origin)
        ));
    }
    if row.is_test {
        flags.push("<span class=\"muted\">test conversion</span>".to_string());
    }
    flags.join("<br>")
}

pub(crate) fn render_index(
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

pub(crate) fn render_story(account: &Account, click_id: &str, story: &ClickStory) -> String {
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

    if !story.recovered.is_empty() {
        out.push_str("<h2>Postback history</h2>");
        out.push_str(&render_history(story));
    }

    out.push_str("<h2>Outbound postbacks to the traffic source</h2>");
    out.push_str(&render_deliveries(account, story));
    out
}

/// Each reprocessed or uploaded postback of the story, step by step: what it first ended in
/// (unattributed), that it was reprocessed (or uploaded), and what that made of it.
fn render_history(story: &ClickStory) -> String {
    let mut out = String::from(
        "<table id=\"history\"><tr><th>postback</th><th>step</th><th>at (UTC)</th>\
         <th>outcome</th></tr>",
    );
    for r in &story.recovered {
        let mut step = |name: &str, at_ms: u64, outcome: String| {
            let _ = write!(
                out,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&r.postback_id),
                name,
                utc(at_ms),
                outcome
            );
        };
        if let Some(u) = story
            .unattributed
            .iter()
            .find(|u| u.postback_id == r.postback_id)
        {
            step(
                "unattributed",
                u.received_time_ms,
                format!(
                    "<span class=\"bad\">{}</span> ({})",
                    esc(&u.reason),
                    esc(&u.hint)
                ),
            );
        }
        let name = if r.origin == "upload" {
            "uploaded"
        } else {
            "reprocessed"
        };
        let decided = match r.outcome.as_str() {
            "attributed" => format!(
                "decided: attributed, conversion <code>{}</code>",
                esc(&r.conversion_id)
            ),
            _ => format!(
                "decided: <span class=\"bad\">{}</span> ({})",
                esc(&r.reason),
                esc(&r.hint)
            ),
        };
        step(name, r.decided_time_ms, decided);
        let conversion = story
            .conversions
            .iter()
            .find(|c| c.postback_id == r.postback_id);
        if let Some(c) = conversion {
            step(
                "attributed",
                c.conversion_time_ms,
                format!(
                    "<span class=\"ok\">conversion <code>{}</code></span> version {}, {} {}",
                    esc(&c.conversion_id),
                    c.version,
                    c.payout.normalize(),
                    esc(&c.currency)
                ),
            );
        }
    }
    out.push_str("</table>");
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
mod tests;
