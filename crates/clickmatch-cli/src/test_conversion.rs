//! `clickmatch test-conversion`: one test click and one postback through a running deployment,
//! then where the postback landed in ClickHouse, or why it did not land as expected.
//!
//! 1. [`plan()`] picks, from the configuration, the campaign that sends traffic to the offer, the
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
//!    and turns it into a [`Verdict`] with [`verdict()`], a pure function. A conversion whose
//!    payout was not booked as sent (its `payout_issue`) fails the test like any other problem.

mod network;
mod plan;
#[cfg(test)]
mod tests;
mod verdict;

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clickmatch_clickhouse::outcomes::{find_postback, Found};
use clickmatch_clickhouse::ClickHouseSettings;
use clickmatch_config::Config;
use clickmatch_core::presets;
use serde::Deserialize;

use crate::demo;

pub use clickmatch_clickhouse::outcomes::{ConversionFound, UnattributedFound};
pub use network::{fire_values, read_redirect, TestClick, TEST_PAYOUT};
pub use plan::{plan, Plan, TestConversionArgs};
pub use verdict::{verdict, Landed, Observation, Verdict};

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
