//! Validation of `[[offers]]` and `[routes.*]`: payout models, dedup modes, network presets and
//! the parameter names a route reads.

use std::collections::BTreeMap;
use std::str::FromStr;

use clickmatch_core::model::{
    DedupMode, Offer, ParamNames, PayoutModel, Route, Secret, DAY_MS, MAX_WINDOW_MS,
};
use clickmatch_core::money::Currency;
use clickmatch_core::presets::{self, Preset};
use rust_decimal::Decimal;

use super::{ip_net, RawOffer, RawRoute};
use crate::money;
use crate::names;
use crate::{invalid, ConfigError};

fn parse_decimal(value: &str, file: &str, key: String) -> Result<Decimal, ConfigError> {
    Decimal::from_str(value.trim())
        .map_err(|_| invalid(file, key, format!("{value:?} is not a decimal number")))
}

fn parse_payout_model(
    model: Option<&str>,
    fixed: Option<&str>,
    revshare: Option<&str>,
    file: &str,
    key: &dyn Fn(&str) -> String,
) -> Result<Option<PayoutModel>, ConfigError> {
    let model = match (model, fixed, revshare) {
        (None, None, None) => return Ok(None),
        (Some(m), _, _) => m,
        (None, Some(_), _) => "fixed",
        (None, None, Some(_)) => "revshare",
    };
    Ok(Some(match model {
        "postback" => PayoutModel::FromPostback,
        "fixed" => {
            let amount = fixed.ok_or_else(|| {
                invalid(
                    file,
                    key("fixed_payout"),
                    "is required when the payout is fixed",
                )
            })?;
            PayoutModel::Fixed(parse_decimal(amount, file, key("fixed_payout"))?)
        }
        "revshare" => {
            let share = revshare
                .ok_or_else(|| invalid(file, key("revshare"), "is required for a revenue share"))?;
            let share = parse_decimal(share, file, key("revshare"))?;
            if share < Decimal::ZERO || share > Decimal::ONE {
                return Err(invalid(file, key("revshare"), "must be between 0 and 1"));
            }
            PayoutModel::RevShare(share)
        }
        other => {
            return Err(invalid(
                file,
                key("payout"),
                format!("{other:?} is not one of \"postback\", \"fixed\", \"revshare\""),
            ))
        }
    }))
}

fn parse_dedup(value: &str, file: &str, key: String) -> Result<DedupMode, ConfigError> {
    match value {
        "click_event" => Ok(DedupMode::ClickEvent),
        "transaction" => Ok(DedupMode::Transaction),
        "all" => Ok(DedupMode::All),
        other => Err(invalid(
            file,
            key,
            format!("{other:?} is not one of \"click_event\", \"transaction\", \"all\""),
        )),
    }
}

pub(super) fn validate_offer(
    raw: &RawOffer,
    file: &str,
    key: &dyn Fn(&str) -> String,
) -> Result<Offer, ConfigError> {
    names::config_id(&raw.id).map_err(|m| invalid(file, key("id"), m))?;
    let network = raw
        .network
        .as_deref()
        .map(|name| known_preset(name, file, key("network")))
        .transpose()?
        .map(|preset| preset.name.to_string());
    let window_ms = raw
        .window_days
        .map(|d| d.saturating_mul(DAY_MS))
        .unwrap_or(30 * DAY_MS);
    if window_ms == 0 || window_ms > MAX_WINDOW_MS {
        return Err(invalid(
            file,
            key("window_days"),
            "must be between 1 and 90 days",
        ));
    }
    let payout = parse_payout_model(
        raw.payout.as_deref(),
        raw.fixed_payout.as_deref(),
        raw.revshare.as_deref(),
        file,
        key,
    )?
    .unwrap_or(PayoutModel::FromPostback);
    let dedup = match &raw.dedup {
        Some(d) => parse_dedup(d, file, key("dedup"))?,
        None => DedupMode::default(),
    };
    let default_payout = raw
        .default_payout
        .as_deref()
        .map(|amount| money::amount(amount, file, key("default_payout")))
        .transpose()?;
    Ok(Offer {
        id: raw.id.clone(),
        network,
        payout,
        window_ms,
        dedup,
        default_payout,
        tracked: raw.tracked,
    })
}

/// The preset named `name`, or an error listing the known ones.
fn known_preset(name: &str, file: &str, key: String) -> Result<&'static Preset, ConfigError> {
    presets::preset(name).ok_or_else(|| {
        invalid(
            file,
            key,
            format!(
                "{name:?} is not a known network preset (known: {})",
                presets::names().join(", ")
            ),
        )
    })
}

fn lowercase_names(
    list: &Option<Vec<String>>,
    default: Vec<String>,
    file: &str,
    key: String,
) -> Result<Vec<String>, ConfigError> {
    match list {
        None => Ok(default),
        Some(list) if list.is_empty() || list.iter().any(|n| n.trim().is_empty()) => Err(invalid(
            file,
            key,
            "needs at least one non-empty parameter name",
        )),
        Some(list) => Ok(list.iter().map(|n| n.trim().to_ascii_lowercase()).collect()),
    }
}

pub(super) fn validate_route(
    name: &str,
    raw: &RawRoute,
    offers: &BTreeMap<String, Offer>,
    account_currency: Currency,
    file: &str,
) -> Result<Route, ConfigError> {
    let key = |field: &str| format!("routes.{name}.{field}");
    let preset = raw
        .network
        .as_deref()
        .map(|network| known_preset(network, file, key("network")))
        .transpose()?;
    // A preset supplies the names and the status map that the route does not give itself.
    let defaults = preset.map(Preset::param_names).unwrap_or_default();
    let params = ParamNames {
        click_id: lowercase_names(&raw.click_id, defaults.click_id, file, key("click_id"))?,
        payout: lowercase_names(&raw.payout, defaults.payout, file, key("payout"))?,
        offer: lowercase_names(&raw.offer_names, defaults.offer, file, key("offer_param"))?,
        event: lowercase_names(&raw.event, defaults.event, file, key("event"))?,
        txid: lowercase_names(&raw.txid, defaults.txid, file, key("txid"))?,
        status: lowercase_names(&raw.status, defaults.status, file, key("status"))?,
        currency: lowercase_names(
            &raw.currency_param,
            defaults.currency,
            file,
            key("currency_param"),
        )?,
        token: lowercase_names(&raw.token_param, defaults.token, file, key("token_param"))?,
    };
    if let Some(offer) = &raw.offer {
        if !offers.contains_key(offer) {
            return Err(invalid(
                file,
                key("offer"),
                format!("no offer with id {offer:?}"),
            ));
        }
    }
    let mut allow_ips = Vec::new();
    for (i, entry) in raw.allow_ips.iter().flatten().enumerate() {
        let net = ip_net(entry).ok_or_else(|| {
            invalid(
                file,
                format!("routes.{name}.allow_ips[{i}]"),
                format!("{entry:?} is not an IP address or CIDR"),
            )
        })?;
        allow_ips.push(net);
    }
    let mut route = Route::new(name);
    route.offer_id = raw.offer.clone();
    route.params = params;
    if let Some(event) = &raw.default_event {
        route.default_event = event.clone();
    }
    if let Some(status) = &raw.default_status {
        route.default_status = status.clone();
    }
    route.currency = match &raw.currency {
        Some(code) => money::currency(code, file, key("currency"))?,
        None => account_currency,
    };
    route.status_map = match &raw.status_map {
        Some(map) => map.clone(),
        None => preset.map(Preset::status_map).unwrap_or_default(),
    };
    route.payout = parse_payout_model(
        raw.payout_model.as_deref(),
        raw.fixed_payout.as_deref(),
        raw.revshare.as_deref(),
        file,
        &key,
    )?;
    route.dedup = raw
        .dedup
        .as_deref()
        .map(|d| parse_dedup(d, file, key("dedup")))
        .transpose()?;
    if let Some(token) = &raw.token {
        if token.len() < 8 {
            return Err(invalid(file, key("token"), "must be at least 8 characters"));
        }
        route.token = Some(Secret::new(token.clone()));
    }
    route.allow_ips = allow_ips;
    route.accept_foreign_ids = raw.accept_foreign_ids.unwrap_or(false);
    Ok(route)
}
