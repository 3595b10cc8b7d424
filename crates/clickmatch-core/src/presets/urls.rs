//! The URLs an operator pastes: the postback URL for a network's dashboard, the campaign URL
//! built from an offer link, and a postback as the network would fire it.

use super::{FieldKind, Preset};
use crate::model::{Route, GLOBAL_ROUTE};
use crate::template::{self, encode_value, TemplateError};

/// The postback URL to paste into `preset`'s dashboard, with the preset's own parameter
/// names: `{base_url}/postback` (or `/postback/{route}`) with our parameter names and the
/// network's macros as values, and the route token when there is one.
///
/// The offer and event fields are sent on the global route only: a per-offer route knows its
/// offer and event. Hash dialects list the token first and the click ID last (see the
/// [`presets`](super) module docs).
pub fn postback_url(
    preset: &Preset,
    base_url: &str,
    route: Option<&str>,
    token: Option<&str>,
) -> String {
    let global = route.is_none_or(|r| r == GLOBAL_ROUTE);
    let params: Vec<(&str, &str)> = preset
        .fields()
        .into_iter()
        .filter(|(kind, _)| global || !matches!(kind, FieldKind::Offer | FieldKind::Event))
        .map(|(_, f)| (f.param, f.macro_token))
        .collect();
    build(
        preset,
        base_url,
        route,
        &params,
        token.map(|t| ("token", t)),
    )
}

/// The postback URL to paste into `preset`'s dashboard for a configured `route`.
///
/// Each field uses the preset's parameter name when the route reads it, else the route's
/// first name for that field, so the URL works with the route as configured (the global route
/// of `config/demo.toml` reads `cid`, not CAKE's `s2`). The token is the route's own.
pub fn postback_url_for_route(preset: &Preset, base_url: &str, route: &Route) -> String {
    let global = route.name == GLOBAL_ROUTE;
    let with_offer = route.offer_id.is_none();
    let names = &route.params;
    let mut params = Vec::new();
    for (kind, field) in preset.fields() {
        let route_names = match kind {
            FieldKind::ClickId => &names.click_id,
            FieldKind::Payout => &names.payout,
            FieldKind::Offer if with_offer => &names.offer,
            FieldKind::Event if global => &names.event,
            FieldKind::Offer | FieldKind::Event => continue,
            FieldKind::Txid => &names.txid,
            FieldKind::Status => &names.status,
            FieldKind::Currency => &names.currency,
        };
        let param = if route_names
            .iter()
            .any(|n| n.eq_ignore_ascii_case(field.param))
        {
            field.param
        } else {
            match route_names.first() {
                Some(name) => name.as_str(),
                None => field.param,
            }
        };
        params.push((param, field.macro_token));
    }
    let token = route.token.as_ref().map(|secret| {
        let name = names.token.first().map(String::as_str).unwrap_or("token");
        (name, secret.expose())
    });
    let route_name = (!global).then_some(route.name.as_str());
    build(preset, base_url, route_name, &params, token)
}

fn build(
    preset: &Preset,
    base_url: &str,
    route: Option<&str>,
    params: &[(&str, &str)],
    token: Option<(&str, &str)>,
) -> String {
    let base = base_url.trim_end_matches('/');
    let path = match route {
        None => "/postback".to_string(),
        Some(r) if r == GLOBAL_ROUTE => "/postback".to_string(),
        Some(r) => format!("/postback/{}", encode_value(r)),
    };
    let mut query: Vec<String> = params
        .iter()
        .map(|(name, macro_token)| format!("{name}={macro_token}"))
        .collect();
    let token = token.map(|(name, value)| format!("{name}={}", encode_value(value)));
    if preset.hash_dialect() {
        // Token first, click ID (the first field) last: see the `presets` module docs.
        let click = query.remove(0);
        query.push(click);
        if let Some(token) = token {
            query.insert(0, token);
        }
    } else if let Some(token) = token {
        query.push(token);
    }
    format!("{base}{path}?{}", query.join("&"))
}

/// Why an offer link could not be turned into a campaign URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfferUrlError {
    #[error("the offer URL must start with http:// or https://")]
    Scheme,
    #[error("the resulting campaign URL is not usable: {0}")]
    Template(#[from] TemplateError),
}

/// The offer link with our `{click_id}` placed in the preset's sub-parameter: an existing value
/// of that parameter is replaced (the first occurrence; repeats are dropped), otherwise the
/// parameter is appended. Every other parameter, the path and a fragment are kept as they are.
/// The result is a campaign URL (`[[campaigns]] url`).
pub fn offer_url(preset: &Preset, offer_url: &str) -> Result<String, OfferUrlError> {
    let url = offer_url.trim();
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(OfferUrlError::Scheme);
    }
    let (url, fragment) = match url.split_once('#') {
        Some((before, after)) => (before, Some(after)),
        None => (url, None),
    };
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, query),
        None => (url, ""),
    };
    let wanted = preset.offer_param;
    let mut pairs: Vec<String> = Vec::new();
    let mut placed = false;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let key = pair.split_once('=').map_or(pair, |(k, _)| k);
        let decoded: String = form_urlencoded::parse(key.as_bytes())
            .next()
            .map(|(k, _)| k.into_owned())
            .unwrap_or_default();
        if decoded.eq_ignore_ascii_case(wanted) {
            if !placed {
                pairs.push(format!("{key}={{click_id}}"));
                placed = true;
            }
            continue;
        }
        pairs.push(pair.to_string());
    }
    if !placed {
        pairs.push(format!("{wanted}={{click_id}}"));
    }
    let mut out = format!("{base}?{}", pairs.join("&"));
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    template::validate(&out)?;
    Ok(out)
}

/// The values a network substitutes when it fires a postback (a test conversion's values).
/// `None` leaves the macro in the URL literally, as a network does for a value it does not have
/// (a click-ID sub-parameter the offer link never filled).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FireValues {
    pub click_id: Option<String>,
    pub payout: Option<String>,
    pub offer: Option<String>,
    pub txid: Option<String>,
    pub event: Option<String>,
    pub status: Option<String>,
    pub currency: Option<String>,
}

/// `template` (a URL from [`postback_url`]) with the preset's macros replaced by `values`,
/// URL-encoded, as the network would fire it.
pub fn fire_url(preset: &Preset, template: &str, values: &FireValues) -> String {
    let mut url = template.to_string();
    for (kind, field) in preset.fields() {
        let value = match kind {
            FieldKind::ClickId => &values.click_id,
            FieldKind::Payout => &values.payout,
            FieldKind::Offer => &values.offer,
            FieldKind::Txid => &values.txid,
            FieldKind::Event => &values.event,
            FieldKind::Status => &values.status,
            FieldKind::Currency => &values.currency,
        };
        if let Some(value) = value {
            url = url.replace(field.macro_token, &encode_value(value));
        }
    }
    url
}
