//! `clickmatch test-conversion`: one test click and one postback through a running deployment,
//! then where the postback landed in ClickHouse, or why it did not land as expected.
//!
//! 1. [`plan`] picks, from the configuration, the campaign that sends traffic to the offer, the
//!    route (the offer's own, else the global one), the network preset and the postback URL
//!    that network would have been given ([`presets::postback_url_for_route`]).
//! 2. A test click: `GET {ingest}/c/{campaign}?cm_test=1` (ingest marks it `is_test`); the
//!    click ID is read from the redirect, and so is the value of the preset's offer-link
//!    parameter, which is what the network would echo back.
//! 3. The postback is fired exactly as that network would: its macros replaced by test values
//!    (payout 1.23, a `test-…` transaction ID), and the click-ID macro left literal when the
//!    offer link never filled the network's sub-parameter. A hash-dialect macro left literal
//!    cuts the URL at the `#`, as it does for the real network.
//! 4. It waits until a row with the postback's ID is in `conversions` or `unattributed` (FINAL)
//!    and turns it into a [`Verdict`] with [`verdict`], a pure function. A conversion whose
//!    payout was not booked as sent (its `payout_issue`) fails the test like any other problem.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clickmatch_clickhouse::outcomes::{find_postback, Found};
use clickmatch_clickhouse::ClickHouseSettings;
use clickmatch_config::Config;
use clickmatch_core::model::{Route, GLOBAL_ROUTE};
use clickmatch_core::money::MoneyIssue;
use clickmatch_core::presets::{self, FireValues, Preset};
use clickmatch_core::reason::hint_text;
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::demo;
use crate::pipeline::clickhouse_settings;
use crate::postback_url::find_preset;

/// The payout a test conversion reports.
pub const TEST_PAYOUT: &str = "1.23";

/// What to test; unset fields come from the configuration.
#[derive(Debug, Clone)]
pub struct TestConversionArgs {
    pub offer: String,
    /// A route name (`global` for `/postback`); default: the offer's own route, else global.
    pub route: Option<String>,
    /// A network preset; default: the offer's `network`.
    pub network: Option<String>,
    /// Ingest's base URL; default: `ingest.public_url`.
    pub ingest_url: Option<String>,
    /// Default: `clickhouse.url`.
    pub clickhouse_url: Option<String>,
    pub timeout: Duration,
}

impl TestConversionArgs {
    pub fn new(offer: impl Into<String>) -> Self {
        TestConversionArgs {
            offer: offer.into(),
            route: None,
            network: None,
            ingest_url: None,
            clickhouse_url: None,
            timeout: Duration::from_secs(30),
        }
    }
}

/// What the test will do, decided from the configuration alone.
#[derive(Debug, Clone)]
pub struct Plan {
    pub offer: String,
    pub campaign: String,
    pub route: Route,
    pub preset: &'static Preset,
    pub ingest_url: String,
    /// The postback URL with the network's macros, as pasted into the network.
    pub template: String,
    pub settings: ClickHouseSettings,
}

impl Plan {
    /// The route's label in ClickHouse rows.
    pub fn route_label(&self) -> &str {
        &self.route.name
    }

    /// Our status the conversion should carry.
    pub fn expected_status(&self) -> String {
        if self.preset.status.is_some() {
            "approved".to_string()
        } else {
            self.route.default_status.clone()
        }
    }
}

/// Decides campaign, route, preset and URLs from `config` and `args`.
pub fn plan(config: &Config, args: &TestConversionArgs) -> anyhow::Result<Plan> {
    let account = &config.account;
    let offer = account.offers.get(&args.offer).with_context(|| {
        format!(
            "no offer {:?} in the configuration (offers: {})",
            args.offer,
            account
                .offers
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    let campaign = account
        .campaigns
        .values()
        .find(|c| c.offer_id == offer.id)
        .with_context(|| {
            format!(
                "no campaign sends traffic to offer {:?}: add a [[campaigns]] entry with offer = {:?}",
                offer.id, offer.id
            )
        })?;
    let route = match args.route.as_deref() {
        Some(GLOBAL_ROUTE) => account.global_route.clone(),
        Some(name) => account.routes.get(name).cloned().with_context(|| {
            format!(
                "no route named {name:?} (routes: global, {})",
                account
                    .routes
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?,
        None => account
            .routes
            .values()
            .find(|r| r.offer_id.as_deref() == Some(offer.id.as_str()))
            .unwrap_or(&account.global_route)
            .clone(),
    };
    let preset = match (args.network.as_deref(), offer.network.as_deref()) {
        (Some(name), _) | (None, Some(name)) => find_preset(name)?,
        (None, None) => bail!(
            "offer {:?} names no network: pass --network NAME (known: {})",
            offer.id,
            presets::names().join(", ")
        ),
    };
    let ingest_url = args
        .ingest_url
        .clone()
        .unwrap_or_else(|| config.ingest.public_url.clone())
        .trim_end_matches('/')
        .to_string();
    let template = presets::postback_url_for_route(preset, &ingest_url, &route);
    let mut settings = clickhouse_settings(config);
    if let Some(url) = &args.clickhouse_url {
        settings.url = url.clone();
    }
    Ok(Plan {
        offer: offer.id.clone(),
        campaign: campaign.id.clone(),
        route,
        preset,
        ingest_url,
        template,
        settings,
    })
}

/// The test click as the redirect showed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestClick {
    pub click_id: String,
    /// The redirect target (the offer link with the click ID in it).
    pub location: String,
    /// The query parameter of the offer link that carries the click ID.
    pub click_param: Option<String>,
    /// The value of the preset's offer-link parameter: what the network echoes back. `None`
    /// when the offer link has no such parameter (the network then sends its macro literally).
    pub network_value: Option<String>,
}

/// Reads [`TestClick`] out of a redirect `location` for `preset`.
pub fn read_redirect(preset: &Preset, location: &str) -> Option<TestClick> {
    let click_id = demo::click_id_in(location)?;
    let query = location.split_once('?').map_or("", |(_, q)| q);
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let click_param = pairs
        .iter()
        .find(|(_, v)| *v == click_id)
        .map(|(k, _)| k.clone());
    let network_value = pairs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(preset.offer_param))
        .map(|(_, v)| v.clone());
    Some(TestClick {
        click_id,
        location: location.to_string(),
        click_param,
        network_value,
    })
}

/// The values the network substitutes into its postback for the test conversion.
pub fn fire_values(plan: &Plan, click: &TestClick, txid: &str) -> FireValues {
    FireValues {
        click_id: click.network_value.clone(),
        payout: Some(TEST_PAYOUT.to_string()),
        offer: Some(plan.offer.clone()),
        txid: Some(txid.to_string()),
        event: Some(plan.route.default_event.clone()),
        status: Some(plan.preset.status_code("approved").to_string()),
        currency: Some(plan.route.currency.to_string()),
    }
}

pub use clickmatch_clickhouse::outcomes::{ConversionFound, UnattributedFound};

/// What happened to the test postback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Landed {
    Conversion(ConversionFound),
    Unattributed(UnattributedFound),
    /// Ingest did not record the postback (no postback ID in its answer).
    NotRecorded {
        status: u16,
        body: String,
    },
    /// No row within the timeout.
    Nothing {
        postback_id: String,
        waited: Duration,
    },
}

/// Everything [`verdict`] judges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub click: TestClick,
    /// The URL fired (macros substituted).
    pub fired_url: String,
    pub http_status: u16,
    pub landed: Landed,
    /// From sending the postback to seeing its row.
    pub measured: Option<Duration>,
}

/// The printed outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// True only when the conversion landed attributed as expected.
    pub ok: bool,
    /// `attributed`, an unattributed reason, `not_recorded` or `timeout`.
    pub outcome: String,
    pub lines: Vec<String>,
}

/// Value display: `1.230000` → `1.23`.
fn money(value: &str) -> String {
    value
        .parse::<Decimal>()
        .map(|d| d.normalize().to_string())
        .unwrap_or_else(|_| value.to_string())
}

/// The problem line of a conversion whose payout was not booked as sent.
fn payout_problem(plan: &Plan, row: &ConversionFound) -> String {
    let booked = format!("{} {}", money(&row.payout), row.currency);
    let issue = &row.payout_issue;
    match MoneyIssue::from_code(issue) {
        Some(MoneyIssue::PayoutMissing) if plan.preset.payout.is_none() => format!(
            "the payout was not booked as sent ({issue}, booked {booked}): {} sends no payout; \
             set default_payout (or payout = \"fixed\" with fixed_payout) on offer {}",
            plan.preset.title, plan.offer
        ),
        Some(MoneyIssue::PayoutMissing) => format!(
            "the payout was not booked as sent ({issue}, booked {booked}): the test sent \
             {TEST_PAYOUT} but route {} found no payout in the postback; check that its payout \
             names include the one in the postback URL",
            plan.route_label()
        ),
        Some(MoneyIssue::CurrencyConflict | MoneyIssue::CurrencyUnknown) => format!(
            "the payout's currency was not booked as sent ({issue}, booked {booked}): the test \
             sent {TEST_PAYOUT} {}, the route's currency",
            plan.route.currency
        ),
        _ => format!(
            "the payout was not booked as sent ({issue}, booked {booked}): the test sent \
             {TEST_PAYOUT}, the row kept {:?}",
            row.payout_raw
        ),
    }
}

/// Turns what was observed into the verdict and the lines to print. Pure.
pub fn verdict(plan: &Plan, observed: &Observation) -> Verdict {
    let preset = plan.preset;
    let click = &observed.click;
    let mut lines = Vec::new();
    let latency = |lines: &mut Vec<String>, row_ms: u32| {
        let measured = observed
            .measured
            .map(|d| format!(", {} ms measured from sending the postback", d.as_millis()))
            .unwrap_or_default();
        lines.push(format!(
            "latency: {row_ms} ms from ingest receiving the postback to the ClickHouse row{measured}"
        ));
    };
    let offer_link_fix = || {
        format!(
            "fix: put the click ID in `{}` of the campaign's offer link (clickmatch offer-url --network {} --url OFFER_LINK)",
            preset.offer_param, preset.name
        )
    };
    let carried_in = click
        .click_param
        .as_deref()
        .map(|p| format!("`{p}`"))
        .unwrap_or_else(|| "no parameter".to_string());

    match &observed.landed {
        Landed::Conversion(row) => {
            lines.push(format!("attributed: conversion {}", row.conversion_id));
            lines.push(format!(
                "  offer {}, route {}, event {}, status {}, payout {} {}, txid {}, is_test {}",
                row.offer_id,
                row.route,
                row.event,
                row.status,
                money(&row.payout),
                row.currency,
                row.txid,
                row.is_test
            ));
            if !row.payout_issue.is_empty() {
                lines.push(format!(
                    "  payout issue {}: sent {:?}: {}",
                    row.payout_issue,
                    row.payout_raw,
                    MoneyIssue::hint_of_code(&row.payout_issue)
                ));
            }
            latency(&mut lines, row.latency_ms);
            let mut problems = Vec::new();
            // A payout issue fails the test (a non-zero exit), like any problem here: the test
            // sent a plain, known payout ({TEST_PAYOUT}) through the very URL the network is
            // given, so an issue means the setup, not the network, keeps payouts from being
            // booked (a preset that sends no payout under an offer without default_payout, a
            // route that reads the payout under another name, a currency the route cannot
            // read). Every real conversion would then be booked 0 or the default and flagged;
            // an exit status of 0 would let a scripted check pass a setup that loses revenue.
            if !row.payout_issue.is_empty() {
                problems.push(payout_problem(plan, row));
            }
            if row.click_id != click.click_id {
                problems.push(format!(
                    "attributed to click {} instead of the test click {}",
                    row.click_id, click.click_id
                ));
            }
            if row.click_id_repaired != 0 {
                problems.push(format!(
                    "the click ID had to be repaired ({}): {}",
                    row.repair_hint,
                    hint_text(&row.repair_hint)
                ));
            }
            if row.offer_mismatch != 0 {
                problems.push(format!(
                    "the postback names offer {} but the click was for offer {}: the network's offer ID differs from clickmatch's",
                    row.offer_id, plan.offer
                ));
            }
            if row.route != plan.route_label() {
                problems.push(format!(
                    "landed on route {} instead of {}",
                    row.route,
                    plan.route_label()
                ));
            }
            let expected_status = plan.expected_status();
            if row.status != expected_status {
                problems.push(format!(
                    "status {:?} instead of {expected_status:?}: the route does not map {}'s status codes; set network = \"{}\" on the route or add a status_map",
                    row.status, preset.title, preset.name
                ));
            }
            if row.is_test == 0 {
                problems.push(
                    "the conversion is not marked is_test: the click was not recorded as a test click (cm_test=1)"
                        .to_string(),
                );
            }
            let ok = problems.is_empty();
            for problem in problems {
                lines.push(format!("problem: {problem}"));
            }
            lines.push(if ok {
                format!("OK: the {} test conversion landed attributed", preset.title)
            } else {
                "FAILED: attributed, but not as expected".to_string()
            });
            Verdict {
                ok,
                outcome: "attributed".into(),
                lines,
            }
        }
        Landed::Unattributed(row) => {
            lines.push(format!("unattributed: {}", row.reason));
            lines.push(format!("  hint {}: {}", row.hint, hint_text(&row.hint)));
            lines.push(format!(
                "  route {}, raw click ID {:?}, ingest received {}",
                row.route, row.raw_click_id, row.raw_params
            ));
            latency(&mut lines, row.latency_ms);
            let macro_token = preset.click_id.macro_token;
            if click.network_value.is_none() {
                if preset.hash_dialect() {
                    lines.push(format!(
                        "why: the offer link carries the click ID in {carried_in}, not `{}`, so {} had nothing for {macro_token} and sent it unencoded: the `#` starts a URL fragment and everything after it was cut",
                        preset.offer_param, preset.title
                    ));
                } else {
                    lines.push(format!(
                        "why: the network sent `{macro_token}` literally: the offer link carries the click ID in {carried_in}, not `{}`",
                        preset.offer_param
                    ));
                }
                lines.push(offer_link_fix());
            } else if row.reason == "unknown_click_id" {
                lines.push(
                    "why: the joiner never saw the test click within the grace period: do ingest and the joiner use the same Kafka topics?"
                        .to_string(),
                );
            } else if row.reason == "unauthorized" {
                lines.push(
                    "fix: copy the URL again from `clickmatch postback-url --network ... --route ...`: the token in it is the route's"
                        .to_string(),
                );
            } else if row.reason == "missing_click_id" {
                lines.push(format!(
                    "fix: the route must read `{}` (set network = \"{}\" on it, or add the name to its click_id list)",
                    preset.click_id.param, preset.name
                ));
            }
            lines.push(format!(
                "FAILED: the {} test conversion was not attributed",
                preset.title
            ));
            Verdict {
                ok: false,
                outcome: row.reason.clone(),
                lines,
            }
        }
        Landed::NotRecorded { status, body } => {
            lines.push(format!(
                "not recorded: ingest answered {status}: {}",
                body.trim()
            ));
            lines.push(match status {
                503 => "fix: ingest could not reach Kafka; check the broker and retry".to_string(),
                400 => "fix: the postback was over ingest's size limits".to_string(),
                _ => format!(
                    "fix: is {} clickmatch's ingest? (postbacks go to {}/postback)",
                    plan.ingest_url, plan.ingest_url
                ),
            });
            lines.push("FAILED: the test postback was not recorded".to_string());
            Verdict {
                ok: false,
                outcome: "not_recorded".into(),
                lines,
            }
        }
        Landed::Nothing {
            postback_id,
            waited,
        } => {
            lines.push(format!(
                "nothing landed: no row for postback {postback_id} in {db}.conversions or {db}.unattributed after {} s",
                waited.as_secs(),
                db = plan.settings.database
            ));
            lines.push(format!(
                "fix: is the joiner running, consuming ingest's topics and writing to {} (database {})?",
                plan.settings.url, plan.settings.database
            ));
            lines.push("FAILED: the test conversion did not land".to_string());
            Verdict {
                ok: false,
                outcome: "timeout".into(),
                lines,
            }
        }
    }
}

/// The whole test: plan, observation and verdict.
#[derive(Debug, Clone)]
pub struct TestConversion {
    pub plan: Plan,
    pub observation: Observation,
    pub verdict: Verdict,
}

impl TestConversion {
    /// The text `clickmatch test-conversion` prints.
    pub fn render(&self) -> String {
        let plan = &self.plan;
        let o = &self.observation;
        let mut out = String::new();
        out.push_str(&format!(
            "test conversion: offer {} through campaign {} and route {} as {} ({})\n",
            plan.offer,
            plan.campaign,
            plan.route_label(),
            plan.preset.title,
            plan.preset.kind.as_str()
        ));
        out.push_str(&format!(
            "click:    {} → {}\n",
            o.click.click_id, o.click.location
        ));
        out.push_str(&format!("template: {}\n", plan.template));
        let cut = if o.fired_url.contains('#') {
            " (an HTTP client sends it only up to the `#`)"
        } else {
            ""
        };
        out.push_str(&format!(
            "fired:    {} → {}{cut}\n",
            o.fired_url, o.http_status
        ));
        for line in &self.verdict.lines {
            out.push_str(line);
            out.push('\n');
        }
        out
    }
}

#[derive(Deserialize)]
struct IngestAnswer {
    postback_id: Option<String>,
}

/// Polls ClickHouse for the row of `postback_id` until `timeout`.
async fn wait_for_row(
    settings: &ClickHouseSettings,
    postback_id: &str,
    timeout: Duration,
) -> anyhow::Result<Option<Landed>> {
    let deadline = Instant::now() + timeout;
    loop {
        let found = find_postback(settings, postback_id)
            .await
            .with_context(|| format!("reading ClickHouse at {}", settings.url))?;
        match found {
            Some(Found::Conversion(row)) => return Ok(Some(Landed::Conversion(row))),
            Some(Found::Unattributed(row)) => return Ok(Some(Landed::Unattributed(row))),
            None if Instant::now() >= deadline => return Ok(None),
            None => tokio::time::sleep(Duration::from_millis(150)).await,
        }
    }
}

/// Runs the test against the deployment `config` describes (with `args`' overrides).
pub async fn run(config: &Config, args: &TestConversionArgs) -> anyhow::Result<TestConversion> {
    let plan = plan(config, args)?;
    let client = demo::http_client();

    // The test click.
    let response = client
        .get(format!("{}/c/{}", plan.ingest_url, plan.campaign))
        .query(&[("cm_test", "1")])
        .send()
        .await
        .with_context(|| format!("test click to {}", plan.ingest_url))?;
    if response.status() != reqwest::StatusCode::FOUND {
        bail!(
            "{}/c/{} answered {} instead of a redirect",
            plan.ingest_url,
            plan.campaign,
            response.status()
        );
    }
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .context("the test click's redirect has no Location")?
        .to_string();
    let click = read_redirect(plan.preset, &location)
        .with_context(|| format!("no click ID in the redirect {location}"))?;

    // The postback, as the network would fire it.
    let txid = format!("test-{:016x}", rand::random::<u64>());
    let fired_url = presets::fire_url(
        plan.preset,
        &plan.template,
        &fire_values(&plan, &click, &txid),
    );
    let sent = Instant::now();
    let response = client
        .get(&fired_url)
        .send()
        .await
        .with_context(|| format!("test postback to {fired_url}"))?;
    let http_status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    let postback_id = serde_json::from_str::<IngestAnswer>(&body)
        .ok()
        .and_then(|a| a.postback_id);

    let (landed, measured) = match postback_id {
        None => (
            Landed::NotRecorded {
                status: http_status,
                body,
            },
            None,
        ),
        Some(postback_id) => {
            match wait_for_row(&plan.settings, &postback_id, args.timeout).await? {
                Some(landed) => (landed, Some(sent.elapsed())),
                None => (
                    Landed::Nothing {
                        postback_id,
                        waited: args.timeout,
                    },
                    None,
                ),
            }
        }
    };
    let observation = Observation {
        click,
        fired_url,
        http_status,
        landed,
        measured,
    };
    let verdict = verdict(&plan, &observation);
    Ok(TestConversion {
        plan,
        observation,
        verdict,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const CLICK: &str = "01jc0000000000000000000000";

    fn demo_config() -> Config {
        Config::demo(&BTreeMap::new()).unwrap()
    }

    fn plan_for(offer: &str, network: Option<&str>, route: Option<&str>) -> Plan {
        let mut args = TestConversionArgs::new(offer);
        args.network = network.map(str::to_string);
        args.route = route.map(str::to_string);
        args.ingest_url = Some("http://ingest.example/".into());
        plan(&demo_config(), &args).unwrap()
    }

    fn click(network_value: Option<&str>, param: &str) -> TestClick {
        TestClick {
            click_id: CLICK.into(),
            location: format!("https://net.example/?{param}={CLICK}"),
            click_param: Some(param.into()),
            network_value: network_value.map(str::to_string),
        }
    }

    fn conversion() -> ConversionFound {
        ConversionFound {
            conversion_id: "conv-1".into(),
            click_id: CLICK.into(),
            offer_id: "1".into(),
            route: "global".into(),
            event: "sale".into(),
            status: "approved".into(),
            payout: "1.230000".into(),
            currency: "USD".into(),
            txid: "test-1".into(),
            offer_mismatch: 0,
            click_id_repaired: 0,
            repair_hint: String::new(),
            is_test: 1,
            latency_ms: 180,
            payout_raw: "1.23".into(),
            payout_issue: String::new(),
        }
    }

    fn observe(click: TestClick, landed: Landed) -> Observation {
        Observation {
            click,
            fired_url: "http://ingest.example/postback?x".into(),
            http_status: 200,
            landed,
            measured: Some(Duration::from_millis(240)),
        }
    }

    #[test]
    fn plans_from_the_demo_configuration() {
        let p = plan_for("1", None, None);
        assert_eq!(p.campaign, "demo");
        assert_eq!(p.route_label(), "global");
        assert_eq!(p.preset.name, "tune");
        assert_eq!(
            p.template,
            "http://ingest.example/postback?aff_sub={aff_sub}&payout={payout}&offer_id={offer_id}&transaction_id={transaction_id}&event={goal_id}"
        );
        let p = plan_for("2", None, None);
        assert_eq!(
            (p.campaign.as_str(), p.route_label()),
            ("demo-lead", "lead")
        );
        assert_eq!(
            p.template,
            "http://ingest.example/postback/lead?token=demo-lead-token&price=#price#&tid=#leadid#&s2=#s2#"
        );
        let p = plan_for("2", Some("affise"), Some("global"));
        assert_eq!(p.preset.name, "affise");
        assert_eq!(p.route_label(), "global");

        let mut args = TestConversionArgs::new("9");
        assert!(plan(&demo_config(), &args).is_err());
        args.offer = "1".into();
        args.network = Some("nonet".into());
        assert!(plan(&demo_config(), &args).is_err());
        args.network = None;
        args.route = Some("nope".into());
        assert!(plan(&demo_config(), &args).is_err());
    }

    #[test]
    fn redirects_and_fire_values() {
        let tune = presets::preset("tune").unwrap();
        let location = format!("https://net.example/aff_c?offer_id=1&aff_sub={CLICK}&aff_sub2=");
        let c = read_redirect(tune, &location).unwrap();
        assert_eq!(c.click_param.as_deref(), Some("aff_sub"));
        assert_eq!(c.network_value.as_deref(), Some(CLICK));
        let everflow = presets::preset("everflow").unwrap();
        let c = read_redirect(everflow, &location).unwrap();
        assert_eq!(c.network_value, None);
        assert!(read_redirect(tune, "https://net.example/?aff_sub=x").is_none());

        let p = plan_for("1", None, None);
        let c = read_redirect(tune, &location).unwrap();
        assert_eq!(
            presets::fire_url(p.preset, &p.template, &fire_values(&p, &c, "test-7")),
            format!("http://ingest.example/postback?aff_sub={CLICK}&payout=1.23&offer_id=1&transaction_id=test-7&event=sale")
        );
        // CAKE through the global route with no s2 in the offer link: the hash macro stays.
        let p = plan_for("1", Some("cake"), None);
        let c = read_redirect(p.preset, &location).unwrap();
        assert_eq!(
            presets::fire_url(p.preset, &p.template, &fire_values(&p, &c, "test-7")),
            "http://ingest.example/postback?payout=1.23&offer=1&txid=test-7&cid=#s2#"
        );
    }

    #[test]
    fn an_expected_attributed_conversion_passes() {
        let p = plan_for("1", None, None);
        let v = verdict(
            &p,
            &observe(
                click(Some(CLICK), "aff_sub"),
                Landed::Conversion(conversion()),
            ),
        );
        assert!(v.ok, "{v:?}");
        assert_eq!(v.outcome, "attributed");
        assert_eq!(
            v.lines,
            vec![
                "attributed: conversion conv-1",
                "  offer 1, route global, event sale, status approved, payout 1.23 USD, txid test-1, is_test 1",
                "latency: 180 ms from ingest receiving the postback to the ClickHouse row, 240 ms measured from sending the postback",
                "OK: the TUNE (HasOffers) test conversion landed attributed",
            ]
        );
    }

    #[test]
    fn attributed_but_not_as_expected_fails() {
        let p = plan_for("1", Some("affise"), None);
        let mut row = conversion();
        row.status = "1".into();
        row.click_id_repaired = 1;
        row.repair_hint = "click_id_other_param".into();
        row.is_test = 0;
        let v = verdict(
            &p,
            &observe(click(Some(CLICK), "sub1"), Landed::Conversion(row)),
        );
        assert!(!v.ok);
        let text = v.lines.join("\n");
        assert!(
            text.contains("status \"1\" instead of \"approved\""),
            "{text}"
        );
        assert!(text.contains("set network = \"affise\""), "{text}");
        assert!(text.contains("click_id_other_param"), "{text}");
        assert!(text.contains("not marked is_test"), "{text}");
        assert!(
            text.ends_with("FAILED: attributed, but not as expected"),
            "{text}"
        );
    }

    #[test]
    fn a_payout_not_booked_as_sent_fails_and_says_why() {
        let p = plan_for("1", None, None);
        let mut row = conversion();
        row.payout = "0.000000".into();
        row.payout_raw = "{payout}".into();
        row.payout_issue = "payout_macro".into();
        let v = verdict(
            &p,
            &observe(click(Some(CLICK), "aff_sub"), Landed::Conversion(row)),
        );
        assert!(!v.ok, "{v:?}");
        assert_eq!(v.outcome, "attributed");
        assert_eq!(
            v.lines[..2],
            [
                "attributed: conversion conv-1",
                "  offer 1, route global, event sale, status approved, payout 0 USD, txid test-1, is_test 1",
            ]
        );
        assert_eq!(
            v.lines[2],
            format!(
                "  payout issue payout_macro: sent \"{{payout}}\": {}",
                MoneyIssue::PayoutMacro.hint()
            )
        );
        assert_eq!(
            v.lines[4],
            "problem: the payout was not booked as sent (payout_macro, booked 0 USD): the test sent 1.23, the row kept \"{payout}\""
        );
        assert_eq!(
            v.lines.last().unwrap(),
            "FAILED: attributed, but not as expected"
        );

        // A network that sends no payout, under an offer without default_payout.
        let p = plan_for("1", Some("prosper202"), None);
        assert!(p.preset.payout.is_none());
        let mut row = conversion();
        row.payout = "0.000000".into();
        row.payout_raw = String::new();
        row.payout_issue = "payout_missing".into();
        let v = verdict(
            &p,
            &observe(click(Some(CLICK), "aff_sub"), Landed::Conversion(row)),
        );
        assert!(!v.ok);
        let text = v.lines.join("\n");
        assert!(
            text.contains("  payout issue payout_missing: sent \"\": "),
            "{text}"
        );
        assert!(
            text.contains("Prosper202 sends no payout; set default_payout"),
            "{text}"
        );
        assert!(text.contains("on offer 1"), "{text}");

        // A code this build does not know still fails, and says so.
        let mut row = conversion();
        row.payout_issue = "payout_from_the_future".into();
        let v = verdict(
            &plan_for("1", None, None),
            &observe(click(Some(CLICK), "aff_sub"), Landed::Conversion(row)),
        );
        assert!(!v.ok);
        assert!(v.lines[2].contains("does not know"), "{:?}", v.lines);

        // A currency issue: the amount was booked, its currency not as sent.
        let mut row = conversion();
        row.currency = "EUR".into();
        row.payout_issue = "currency_conflict".into();
        let v = verdict(
            &plan_for("1", None, None),
            &observe(click(Some(CLICK), "aff_sub"), Landed::Conversion(row)),
        );
        assert!(!v.ok);
        assert!(
            v.lines.contains(&"problem: the payout's currency was not booked as sent (currency_conflict, booked 1.23 EUR): the test sent 1.23 USD, the route's currency".to_string()),
            "{:?}",
            v.lines
        );
    }

    #[test]
    fn a_literal_macro_names_the_sub_parameter_to_fix() {
        let p = plan_for("1", Some("everflow"), None);
        let row = UnattributedFound {
            reason: "unsubstituted_macro".into(),
            hint: "fix_network_macro".into(),
            raw_click_id: "{sub1}".into(),
            route: "global".into(),
            offer_id: "1".into(),
            raw_params: "{\"sub1\":\"{sub1}\"}".into(),
            is_test: 0,
            latency_ms: 90,
        };
        let v = verdict(
            &p,
            &observe(click(None, "aff_sub"), Landed::Unattributed(row)),
        );
        assert!(!v.ok);
        assert_eq!(v.outcome, "unsubstituted_macro");
        let text = v.lines.join("\n");
        assert!(text.contains(hint_text("fix_network_macro")), "{text}");
        assert!(
            text.contains("the network sent `{sub1}` literally: the offer link carries the click ID in `aff_sub`, not `sub1`"),
            "{text}"
        );
        assert!(
            text.contains("clickmatch offer-url --network everflow"),
            "{text}"
        );
    }

    #[test]
    fn a_cut_hash_macro_is_explained() {
        let p = plan_for("1", Some("cake"), None);
        let row = UnattributedFound {
            reason: "missing_click_id".into(),
            hint: "add_click_id_param".into(),
            raw_click_id: String::new(),
            route: "global".into(),
            offer_id: "1".into(),
            raw_params: "{}".into(),
            is_test: 0,
            latency_ms: 90,
        };
        let v = verdict(
            &p,
            &observe(click(None, "aff_sub"), Landed::Unattributed(row)),
        );
        assert!(!v.ok);
        let text = v.lines.join("\n");
        assert!(
            text.contains("nothing for #s2# and sent it unencoded"),
            "{text}"
        );
        assert!(text.contains("put the click ID in `s2`"), "{text}");
    }

    #[test]
    fn nothing_or_not_recorded_fails() {
        let p = plan_for("1", None, None);
        let v = verdict(
            &p,
            &observe(
                click(Some(CLICK), "aff_sub"),
                Landed::Nothing {
                    postback_id: "pb".into(),
                    waited: Duration::from_secs(30),
                },
            ),
        );
        assert!(!v.ok);
        assert_eq!(v.outcome, "timeout");
        assert!(v.lines[0].contains("no row for postback pb"));
        let v = verdict(
            &p,
            &observe(
                click(Some(CLICK), "aff_sub"),
                Landed::NotRecorded {
                    status: 503,
                    body: "{}".into(),
                },
            ),
        );
        assert!(!v.ok);
        assert_eq!(v.outcome, "not_recorded");
        assert!(v.lines[1].contains("Kafka"));
    }
}
