//! What the test will do, decided from the configuration alone: the campaign, route, network
//! preset and URLs.

use std::time::Duration;

use anyhow::{bail, Context};
use clickmatch_clickhouse::ClickHouseSettings;
use clickmatch_config::Config;
use clickmatch_core::model::{Route, GLOBAL_ROUTE};
use clickmatch_core::presets::{self, Preset};

use crate::pipeline::clickhouse_settings;
use crate::postback_url::find_preset;

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
