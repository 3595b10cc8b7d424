//! Network presets: one row per affiliate network or tracker clickmatch knows ([`PRESETS`]), so
//! adding a network is one edit.
//!
//! A preset knows, for one network or tracker:
//! - the names it goes by (`tune`, `hasoffers`, `HasOffers`), compared one way ([`preset`]);
//! - its macro dialect ([`Preset::dialect`]): the form its macros take and their documented
//!   spellings, which the postback classifier compares an unsubstituted macro with to say
//!   whether it is in the wrong form, the wrong case or misspelt;
//! - which parameter of the offer link carries our click ID (`aff_sub` for TUNE, `s2` for CAKE),
//!   so that [`offer_url`] can place `{click_id}` there;
//! - which macros the network substitutes when it fires a postback (click ID, payout, offer,
//!   transaction ID, event/goal, status, currency), so that [`postback_url`] prints the exact
//!   URL to paste into the network: our parameter names with the network's macros as values;
//! - the parameter names a route reads for it ([`Preset::param_names`]), its status codes
//!   ([`Preset::status_map`]) and whether its transaction ID identifies the click or the
//!   conversion ([`Preset::txid_scope`], [`Preset::dedup`]);
//! - every macro token of its dialect ([`all_macro_tokens`]), so that literal-macro detection
//!   ([`crate::macros`]) can be checked against all of them.
//!
//! **Trackers** (Voluum, RedTrack, Keitaro, Binom, Prosper202, ClickFlare) sit between
//! clickmatch and the network: clickmatch redirects the visitor to the tracker's campaign link
//! with our click ID in the tracker's *external ID* parameter, and the tracker relays it back in
//! its traffic-source postback with its external-ID macro (`{externalid}`, `{external_id}`,
//! `{ref_id}`, `[[c1]]`). The tracker's own click-ID token (`{clickid}`, `{subid}`,
//! `[[subid]]`) names the tracker's click, not ours; it is listed among the dialect's macros for
//! detection only.
//!
//! **Hash dialects** (CAKE `#s2#`, MaxBounty `#S2#`): the network replaces `#s2#` before it
//! fires, so the template pasted into the network carries the hash tokens literally (an encoded
//! `%23s2%23` would not be recognised by the network and would always arrive literally). When a
//! hash token is *not* substituted, the network sends it unencoded and the `#` starts a URL
//! fragment: everything after it never reaches the server. The URLs printed here therefore put
//! the route token first and the click-ID parameter last, so such a postback still arrives
//! authorised, with its payout and transaction ID, and ends as `missing_click_id` instead of a
//! misleading `unauthorized`.
//!
//! Everything here is pure: no I/O.

use std::collections::BTreeMap;

use crate::macros::{Dialect, GENERIC_DIALECT};
use crate::model::{DedupMode, ParamNames};

mod table;
mod urls;

pub use table::PRESETS;
pub use urls::{
    fire_url, offer_url, postback_url, postback_url_for_route, FireValues, OfferUrlError,
};

/// Network or tracker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresetKind {
    /// A CPA network: it pays for the conversion and fires the postback.
    Network,
    /// A tracker between clickmatch and the network that relays conversions to us.
    Tracker,
}

impl PresetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PresetKind::Network => "network",
            PresetKind::Tracker => "tracker",
        }
    }
}

/// What the preset's transaction-ID macro identifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxidScope {
    /// The click (TUNE's and Everflow's `{transaction_id}`): several conversions of one click
    /// share it, so it cannot be the dedup key.
    Click,
    /// The conversion (CAKE `#leadid#`, Affise `{transactionid}`): a repeat is a retry or a
    /// status update of that conversion.
    Conversion,
    /// Passed through from the network upstream of a tracker: its meaning is that network's.
    Relayed,
}

impl TxidScope {
    pub fn as_str(self) -> &'static str {
        match self {
            TxidScope::Click => "click",
            TxidScope::Conversion => "conversion",
            TxidScope::Relayed => "relayed",
        }
    }
}

/// One postback field: our parameter name and the network's macro for its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// The parameter name in the URL we print (lowercase; routes compare names
    /// case-insensitively).
    pub param: &'static str,
    /// The network's macro, exactly as the network spells it.
    pub macro_token: &'static str,
}

const fn field(param: &'static str, macro_token: &'static str) -> Option<Field> {
    Some(Field { param, macro_token })
}

/// The macro dialect of one network or tracker.
#[derive(Debug, PartialEq, Eq)]
pub struct Preset {
    /// Lowercase name used in configuration and on the command line (`network = "cake"`).
    pub name: &'static str,
    /// Display name.
    pub title: &'static str,
    /// Other names accepted for it (`hasoffers` for `tune`).
    pub aliases: &'static [&'static str],
    pub kind: PresetKind,
    /// How it spells its macros, for the operator's hint on an unsubstituted one.
    pub dialect: Dialect,
    /// The offer-link parameter that carries our click ID: the network stores its value and
    /// echoes it back through [`Preset::click_id`]'s macro.
    pub offer_param: &'static str,
    pub click_id: Field,
    pub payout: Option<Field>,
    /// The network's offer ID (sent on the global route only: a per-offer route knows its offer).
    pub offer: Option<Field>,
    pub txid: Option<Field>,
    /// The conversion event or goal (sent on the global route only: a per-offer route has its
    /// own event).
    pub event: Option<Field>,
    pub status: Option<Field>,
    pub currency: Option<Field>,
    /// The network's status codes → our statuses (`"1" → approved`), where they are codes.
    pub status_map: &'static [(&'static str, &'static str)],
    /// What [`Preset::txid`] identifies; `None` when the preset sends no transaction ID.
    pub txid_scope: Option<TxidScope>,
    /// The dedup mode that suits this network: per transaction where its ID identifies the
    /// conversion, else one conversion per click and event.
    pub dedup: DedupMode,
    /// Whether the network matches macro names case-sensitively (`{SubId1}` is not `{subid1}`).
    pub case_sensitive: bool,
    /// Further macros of the dialect (other sub-parameters, IDs), for macro detection.
    pub other_macros: &'static [&'static str],
    /// The longest value the offer-link parameter keeps, where the network documents one.
    pub offer_param_max_len: Option<usize>,
    /// What an operator should know when pasting the URL.
    pub notes: &'static [&'static str],
}

/// A postback field, by what it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    ClickId,
    Payout,
    Offer,
    Txid,
    Event,
    Status,
    Currency,
}

impl Preset {
    /// The preset's fields in the order a URL lists them.
    pub fn fields(&self) -> Vec<(FieldKind, Field)> {
        [
            (FieldKind::ClickId, Some(self.click_id)),
            (FieldKind::Payout, self.payout),
            (FieldKind::Offer, self.offer),
            (FieldKind::Txid, self.txid),
            (FieldKind::Event, self.event),
            (FieldKind::Status, self.status),
            (FieldKind::Currency, self.currency),
        ]
        .into_iter()
        .filter_map(|(kind, field)| field.map(|f| (kind, f)))
        .collect()
    }

    /// Every macro token of the dialect: the fields' macros, then the others.
    pub fn macro_tokens(&self) -> Vec<&'static str> {
        let mut tokens: Vec<&'static str> = self
            .fields()
            .into_iter()
            .map(|(_, f)| f.macro_token)
            .collect();
        for token in self.other_macros {
            if !tokens.contains(token) {
                tokens.push(token);
            }
        }
        tokens
    }

    /// True for hash dialects (`#s2#`): an unsubstituted token cuts the rest of the URL.
    pub fn hash_dialect(&self) -> bool {
        self.click_id.macro_token.starts_with('#')
    }

    /// The parameter names a route reads for this network: the preset's own name first, then
    /// clickmatch's generic aliases (so a hand-written `cid=` still works).
    pub fn param_names(&self) -> ParamNames {
        let defaults = ParamNames::default();
        let merge = |field: Option<Field>, generic: Vec<String>| -> Vec<String> {
            let mut names: Vec<String> = field.map(|f| f.param.to_string()).into_iter().collect();
            for name in generic {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
            names
        };
        ParamNames {
            click_id: merge(Some(self.click_id), defaults.click_id),
            payout: merge(self.payout, defaults.payout),
            offer: merge(self.offer, defaults.offer),
            event: merge(self.event, defaults.event),
            txid: merge(self.txid, defaults.txid),
            status: merge(self.status, defaults.status),
            currency: merge(self.currency, defaults.currency),
            token: defaults.token,
        }
    }

    /// The status mapping a route uses for this network.
    pub fn status_map(&self) -> BTreeMap<String, String> {
        self.status_map
            .iter()
            .map(|(code, ours)| (code.to_string(), ours.to_string()))
            .collect()
    }

    /// The network's status code for our status `ours` (`approved` → Affise `1`), else `ours`.
    pub fn status_code<'a>(&self, ours: &'a str) -> &'a str {
        self.status_map
            .iter()
            .find(|(_, mapped)| *mapped == ours)
            .map(|(code, _)| *code)
            .unwrap_or(ours)
    }

    /// Whether `name` names this preset (any case; `-`, `_`, `.`, spaces and `/` ignored).
    pub fn is_named(&self, name: &str) -> bool {
        let wanted = normalize(name);
        normalize(self.name) == wanted || self.aliases.iter().any(|a| normalize(a) == wanted)
    }
}

/// A network name as every lookup compares it: lowercase, without `-`, `_`, `.`, spaces and `/`
/// (`Prosper 202`, `impact.com` and `ever-flow` name `prosper202`, `impact` and `everflow`).
fn normalize(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, '-' | '_' | '.' | ' ' | '/'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The preset named `name` (any case; aliases such as `hasoffers` accepted).
pub fn preset(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.is_named(name))
}

/// The names of all presets, for help texts and errors.
pub fn names() -> Vec<&'static str> {
    PRESETS.iter().map(|p| p.name).collect()
}

/// Every preset's macro dialect, then the generic names of no network in particular.
pub fn dialects() -> impl Iterator<Item = &'static Dialect> + Clone {
    PRESETS
        .iter()
        .map(|p| &p.dialect)
        .chain(std::iter::once(&GENERIC_DIALECT))
}

/// Every macro token of every preset's dialect, each once.
pub fn all_macro_tokens() -> Vec<&'static str> {
    let mut tokens = Vec::new();
    for preset in PRESETS {
        for token in preset.macro_tokens() {
            if !tokens.contains(&token) {
                tokens.push(token);
            }
        }
    }
    tokens
}

#[cfg(test)]
mod tests;
