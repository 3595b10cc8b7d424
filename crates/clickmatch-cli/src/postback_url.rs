//! `clickmatch postback-url` and `clickmatch offer-url`: the URLs an operator pastes.
//!
//! Without a network, `postback-url` prints every route's URL with clickmatch's generic macro
//! names. With `--network NAME` it prints the exact URL to paste into that network's dashboard:
//! the route's parameter names with the network's own macros as values (see
//! [`clickmatch_core::presets`]). `offer-url` places our `{click_id}` in the offer link's
//! sub-parameter that the network echoes back.

use anyhow::{bail, Context};
use clickmatch_config::Config;
use clickmatch_core::model::GLOBAL_ROUTE;
use clickmatch_core::presets::{self, Preset};

/// One line per route: the URL with the route's first parameter names and our macro names.
pub fn postback_urls(
    config: &Config,
    base: &str,
    only: Option<&str>,
) -> anyhow::Result<Vec<String>> {
    let account = &config.account;
    let mut routes = vec![(None, &account.global_route)];
    routes.extend(
        account
            .routes
            .iter()
            .map(|(name, route)| (Some(name.as_str()), route)),
    );
    let mut lines = Vec::new();
    for (name, route) in routes {
        if only.is_some() && only != Some(name.unwrap_or("global")) {
            continue;
        }
        let path = match name {
            None => "/postback".to_string(),
            Some(name) => format!("/postback/{name}"),
        };
        let mut query = vec![
            format!("{}={{click_id}}", route.params.click_id[0]),
            format!("{}={{payout}}", route.params.payout[0]),
        ];
        if route.offer_id.is_none() {
            query.push(format!("{}={{offer_id}}", route.params.offer[0]));
        }
        query.push(format!("{}={{transaction_id}}", route.params.txid[0]));
        if let Some(token) = &route.token {
            query.push(format!("{}={}", route.params.token[0], token.expose()));
        }
        let label = name.unwrap_or("global (every offer inherits it)");
        lines.push(format!("{label}: {base}{path}?{}", query.join("&")));
    }
    if lines.is_empty() {
        bail!("no route named {:?}", only.unwrap_or_default());
    }
    Ok(lines)
}

/// The preset named `name`, or an error listing the known ones.
pub fn find_preset(name: &str) -> anyhow::Result<&'static Preset> {
    presets::preset(name).with_context(|| {
        format!(
            "{name:?} is not a known network preset (known: {})",
            presets::names().join(", ")
        )
    })
}

/// The exact postback URL for one network and route, and what the operator should know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkPostbackUrl {
    /// The URL to paste into the network's dashboard.
    pub url: String,
    /// Notes for the operator (stderr), one per line.
    pub notes: Vec<String>,
}

/// The URL to paste into `preset`'s dashboard for `route` (`None` or `global`: the global
/// route) as `config` defines it. A route that is not configured gets the preset's own names
/// and a note saying how to configure it.
pub fn network_postback_url(
    config: &Config,
    preset: &Preset,
    base: &str,
    route: Option<&str>,
) -> NetworkPostbackUrl {
    let base = base.trim_end_matches('/');
    let route_name = route.filter(|r| *r != GLOBAL_ROUTE);
    let mut notes = vec![format!(
        "{} ({}): the offer link must carry the click ID in `{}` (clickmatch offer-url --network {} --url OFFER_LINK)",
        preset.title,
        preset.kind.as_str(),
        preset.offer_param,
        preset.name
    )];
    let url = match config.account.route(route_name) {
        Some(configured) => {
            let unmapped: Vec<String> = preset
                .status_map
                .iter()
                .filter(|(code, _)| !configured.status_map.contains_key(*code))
                .map(|(code, ours)| format!("{code} {ours}"))
                .collect();
            if !unmapped.is_empty() {
                notes.push(format!(
                    "this route does not map {}'s status codes ({}): set network = \"{}\" on it or add a status_map",
                    preset.title,
                    unmapped.join(", "),
                    preset.name
                ));
            }
            presets::postback_url_for_route(preset, base, configured)
        }
        None => {
            let name = route_name.unwrap_or(GLOBAL_ROUTE);
            notes.push(format!(
                "route `{name}` is not configured: add [routes.{name}] with network = \"{}\" (and offer = \"...\") before the network posts to it",
                preset.name
            ));
            presets::postback_url(preset, base, route_name, None)
        }
    };
    notes.extend(preset.notes.iter().map(|n| n.to_string()));
    NetworkPostbackUrl { url, notes }
}

/// The campaign URL for `offer_link` on `preset`'s network, and a note on where it goes.
pub fn network_offer_url(preset: &Preset, offer_link: &str) -> anyhow::Result<NetworkPostbackUrl> {
    let url = presets::offer_url(preset, offer_link)
        .with_context(|| format!("offer link {offer_link:?}"))?;
    let mut notes = vec![format!(
        "use it as a campaign's url ([[campaigns]] url = \"...\"): {} echoes `{}` back as {}",
        preset.title, preset.offer_param, preset.click_id.macro_token
    )];
    if let Some(max) = preset.offer_param_max_len {
        notes.push(format!(
            "`{}` keeps {max} characters; clickmatch click IDs have 26",
            preset.offer_param
        ));
    }
    Ok(NetworkPostbackUrl { url, notes })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn demo() -> Config {
        Config::demo(&BTreeMap::new()).unwrap()
    }

    #[test]
    fn generic_lines_for_every_route() {
        let lines = postback_urls(&demo(), "https://t.example", None).unwrap();
        assert_eq!(
            lines,
            vec![
                "global (every offer inherits it): https://t.example/postback?cid={click_id}&payout={payout}&offer={offer_id}&txid={transaction_id}",
                "lead: https://t.example/postback/lead?s2={click_id}&price={payout}&tid={transaction_id}&token=demo-lead-token",
            ]
        );
        assert!(postback_urls(&demo(), "https://t.example", Some("nope")).is_err());
    }

    #[test]
    fn network_urls_follow_the_configured_route() {
        let cake = find_preset("cake").unwrap();
        let out = network_postback_url(&demo(), cake, "https://t.example/", Some("lead"));
        assert_eq!(
            out.url,
            "https://t.example/postback/lead?token=demo-lead-token&price=#price#&tid=#leadid#&s2=#s2#"
        );
        assert!(out.notes[0].contains("`s2`"), "{:?}", out.notes);
        assert!(out
            .notes
            .iter()
            .any(|n| n.contains("dedup = \"transaction\"")));

        let out = network_postback_url(&demo(), cake, "https://t.example", Some("new"));
        assert_eq!(
            out.url,
            "https://t.example/postback/new?price=#price#&leadid=#leadid#&s2=#s2#"
        );
        assert!(out.notes.iter().any(|n| n.contains("[routes.new]")));

        let tune = find_preset("tune").unwrap();
        let out = network_postback_url(&demo(), tune, "https://t.example", None);
        assert_eq!(
            out.url,
            "https://t.example/postback?aff_sub={aff_sub}&payout={payout}&offer_id={offer_id}&transaction_id={transaction_id}&event={goal_id}"
        );
        assert!(find_preset("nonet").is_err());
    }

    #[test]
    fn offer_urls_with_notes() {
        let cake = find_preset("cake").unwrap();
        let out = network_offer_url(cake, "https://cake.example/?a=12&c=2&s2=old").unwrap();
        assert_eq!(out.url, "https://cake.example/?a=12&c=2&s2={click_id}");
        assert!(out.notes.iter().any(|n| n.contains("100 characters")));
        assert!(network_offer_url(cake, "cake.example").is_err());
    }
}
