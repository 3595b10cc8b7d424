//! Network presets: the macro dialects of real affiliate networks and trackers.
//!
//! A preset knows, for one network or tracker:
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

use crate::model::{DedupMode, ParamNames, Route, GLOBAL_ROUTE};
use crate::template::{self, encode_value, TemplateError};

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

    /// Whether `name` (any case; `-`, `_`, `.` and spaces ignored) names this preset.
    pub fn is_named(&self, name: &str) -> bool {
        let wanted = normalize(name);
        normalize(self.name) == wanted || self.aliases.iter().any(|a| normalize(a) == wanted)
    }
}

fn normalize(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, '-' | '_' | '.' | ' ' | '/'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Our statuses: what route status maps produce.
const APPROVED: &str = "approved";
const PENDING: &str = "pending";
const DECLINED: &str = "declined";
const HOLD: &str = "hold";

/// Every built-in preset, networks first.
pub static PRESETS: &[Preset] = &[
    Preset {
        name: "tune",
        title: "TUNE (HasOffers)",
        aliases: &["hasoffers", "tune-hasoffers", "go2cloud"],
        kind: PresetKind::Network,
        offer_param: "aff_sub",
        click_id: Field {
            param: "aff_sub",
            macro_token: "{aff_sub}",
        },
        payout: field("payout", "{payout}"),
        offer: field("offer_id", "{offer_id}"),
        txid: field("transaction_id", "{transaction_id}"),
        event: field("goal_id", "{goal_id}"),
        status: None,
        currency: None,
        status_map: &[],
        txid_scope: Some(TxidScope::Click),
        dedup: DedupMode::ClickEvent,
        case_sensitive: false,
        other_macros: &[
            "{aff_sub2}",
            "{aff_sub3}",
            "{aff_sub4}",
            "{aff_sub5}",
            "{affiliate_id}",
            "{aff_click_id}",
            "{sale_amount}",
            "{source}",
            "{ip}",
        ],
        offer_param_max_len: Some(500),
        notes: &[
            "TUNE's {transaction_id} identifies the click, not the conversion: keep dedup = \"click_event\" (the default).",
            "aff_sub..aff_sub5 keep up to 500 characters.",
        ],
    },
    Preset {
        name: "cake",
        title: "CAKE",
        aliases: &["getcake"],
        kind: PresetKind::Network,
        offer_param: "s2",
        click_id: Field {
            param: "s2",
            macro_token: "#s2#",
        },
        payout: field("price", "#price#"),
        offer: field("oid", "#oid#"),
        txid: field("leadid", "#leadid#"),
        event: None,
        status: None,
        currency: None,
        status_map: &[],
        txid_scope: Some(TxidScope::Conversion),
        dedup: DedupMode::Transaction,
        case_sensitive: false,
        other_macros: &[
            "#s1#",
            "#s3#",
            "#s4#",
            "#s5#",
            "#tid#",
            "#affid#",
            "#campid#",
            "#cid#",
            "#reqid#",
            "#ip#",
            "#sourceip#",
            "#utcunixtime#",
            "#sourcetime#",
            "#udid#",
        ],
        offer_param_max_len: Some(100),
        notes: &[
            "Paste the URL as printed: CAKE replaces #s2# before it fires (an encoded %23s2%23 would not be recognised).",
            "An unsubstituted #...# token goes out unencoded and starts a URL fragment, cutting everything after it: the route token comes first and the click ID last, so such a postback still arrives authorised, with payout and lead ID, as missing_click_id.",
            "#leadid# identifies the conversion (#tid# is the advertiser's transaction ID): dedup = \"transaction\" suits CAKE routes.",
            "s1 keeps 50 characters, s2..s5 100 (a longer value spills into the next sub).",
        ],
    },
    Preset {
        name: "everflow",
        title: "Everflow",
        aliases: &[],
        kind: PresetKind::Network,
        offer_param: "sub1",
        click_id: Field {
            param: "sub1",
            macro_token: "{sub1}",
        },
        payout: field("payout_amount", "{payout_amount}"),
        offer: field("offer_id", "{offer_id}"),
        txid: field("transaction_id", "{transaction_id}"),
        event: field("event_name", "{event_name}"),
        status: None,
        currency: None,
        status_map: &[],
        txid_scope: Some(TxidScope::Click),
        dedup: DedupMode::ClickEvent,
        case_sensitive: true,
        other_macros: &[
            "{sub2}",
            "{sub3}",
            "{sub4}",
            "{sub5}",
            "{event_id}",
            "{sale_amount}",
            "{order_id}",
            "{affiliate_id}",
            "{source_id}",
        ],
        offer_param_max_len: None,
        notes: &[
            "Everflow's {transaction_id} is its click ID (32 hex characters): it identifies the click, so keep dedup = \"click_event\".",
            "Macros must be spelt exactly: {Sub5} or {sub_5} arrive literally.",
            "Everflow switches a partner postback off after 10 consecutive failures in 72 hours; clickmatch answers 200 to every recorded postback.",
        ],
    },
    Preset {
        name: "affise",
        title: "Affise",
        aliases: &[],
        kind: PresetKind::Network,
        offer_param: "sub1",
        click_id: Field {
            param: "sub1",
            macro_token: "{sub1}",
        },
        payout: field("sum", "{sum}"),
        offer: field("offerid", "{offerid}"),
        txid: field("transactionid", "{transactionid}"),
        event: field("goal", "{goal}"),
        status: field("status", "{status}"),
        currency: field("currency", "{currency}"),
        status_map: &[("1", APPROVED), ("2", PENDING), ("3", DECLINED), ("5", HOLD)],
        txid_scope: Some(TxidScope::Conversion),
        dedup: DedupMode::Transaction,
        case_sensitive: false,
        other_macros: &[
            "{sub2}",
            "{sub3}",
            "{sub4}",
            "{sub5}",
            "{sub6}",
            "{sub7}",
            "{sub8}",
            "{clickid}",
            "{ref_id}",
            "{ext1}",
            "{offer_name}",
            "{date}",
            "{ip}",
            "{custom_field1}",
        ],
        offer_param_max_len: None,
        notes: &[
            "{status}: 1 approved, 2 pending, 3 declined, 5 hold. Status changes (\"any\" mode) re-send the same click ID and update the conversion.",
            "{transactionid} identifies the conversion: dedup = \"transaction\" suits Affise routes.",
            "Affise has no click-ID macro for affiliate postbacks: the click ID rides in sub1..sub8.",
        ],
    },
    Preset {
        name: "impact",
        title: "Impact (impact.com)",
        aliases: &["impact.com", "impactradius"],
        kind: PresetKind::Network,
        offer_param: "subId1",
        click_id: Field {
            param: "subid1",
            macro_token: "{SubId1}",
        },
        payout: field("payout", "{Payout}"),
        offer: None,
        txid: field("actionid", "{ActionId}"),
        event: None,
        status: field("status", "{Status}"),
        currency: field("currency", "{Currency}"),
        // Impact sends PENDING / APPROVED / REVERSED; unmapped statuses are stored lowercased.
        status_map: &[],
        txid_scope: Some(TxidScope::Conversion),
        dedup: DedupMode::Transaction,
        case_sensitive: true,
        other_macros: &[
            "{SubId2}",
            "{SubId3}",
            "{Amount}",
            "{OID}",
            "{ActionStatus}",
            "{SharedId}",
            "{CampaignId}",
            "{ClickId}",
        ],
        offer_param_max_len: None,
        notes: &[
            "Impact macros are case-sensitive: {SubId1}, not {subid1}.",
            "Impact may POST the postback with a form or JSON body; clickmatch reads both.",
            "Action trackers fire again on status changes (pending, approved, reversed); {ActionId} identifies the action.",
        ],
    },
    Preset {
        name: "adcombo",
        title: "AdCombo",
        aliases: &[],
        kind: PresetKind::Network,
        offer_param: "clickid",
        click_id: Field {
            param: "clickid",
            macro_token: "{clickid}",
        },
        payout: field("revenue", "{revenue}"),
        offer: None,
        txid: field("trans_id", "{trans_id}"),
        event: None,
        status: None,
        currency: None,
        status_map: &[],
        txid_scope: Some(TxidScope::Conversion),
        dedup: DedupMode::Transaction,
        case_sensitive: false,
        other_macros: &["{subacc}", "{subacc2}", "{subacc3}", "{subacc4}"],
        offer_param_max_len: None,
        notes: &[
            "AdCombo has one postback field per status: paste the URL into each with &status=hold (lead, at the call centre), &status=approved (sale) or &status=declined (rejected) appended.",
            "AdCombo has been seen sending every macro URL-encoded and unsubstituted (%7Bclickid%7D): that ends as unsubstituted_macro.",
        ],
    },
    Preset {
        name: "maxbounty",
        title: "MaxBounty",
        aliases: &[],
        kind: PresetKind::Network,
        offer_param: "s2",
        click_id: Field {
            param: "s2",
            macro_token: "#S2#",
        },
        payout: field("rate", "#RATE#"),
        offer: field("offid", "#OFFID#"),
        txid: None,
        event: None,
        status: None,
        currency: None,
        status_map: &[],
        txid_scope: None,
        dedup: DedupMode::ClickEvent,
        case_sensitive: false,
        other_macros: &["#S1#", "#S3#", "#S4#", "#S5#", "#LEADID#", "#IP#"],
        offer_param_max_len: None,
        notes: &[
            "Paste the URL as printed: MaxBounty replaces #S2# before it fires.",
            "An unsubstituted #S2# goes out unencoded and starts a URL fragment: the route token comes first and the click ID last, so such a postback still arrives authorised, as missing_click_id.",
        ],
    },
    Preset {
        name: "voluum",
        title: "Voluum",
        aliases: &[],
        kind: PresetKind::Tracker,
        offer_param: "externalid",
        click_id: Field {
            param: "externalid",
            macro_token: "{externalid}",
        },
        payout: field("payout", "{payout}"),
        offer: None,
        txid: None,
        event: None,
        status: None,
        currency: None,
        status_map: &[],
        txid_scope: None,
        dedup: DedupMode::ClickEvent,
        case_sensitive: false,
        other_macros: &["{clickid}", "{campaign.id}", "{offer.id}"],
        offer_param_max_len: None,
        notes: &[
            "In Voluum, add clickmatch as a traffic source whose External ID parameter is `externalid`, and paste this URL as its postback URL: Voluum relays our click ID as {externalid}.",
            "{clickid} is Voluum's own click ID (26 mixed-case characters): it belongs in the offer URL Voluum sends the visitor to, not in the postback to clickmatch.",
        ],
    },
    Preset {
        name: "redtrack",
        title: "RedTrack",
        aliases: &[],
        kind: PresetKind::Tracker,
        offer_param: "ref_id",
        click_id: Field {
            param: "ref_id",
            macro_token: "{ref_id}",
        },
        payout: field("payout", "{payout}"),
        offer: None,
        txid: None,
        event: None,
        status: None,
        currency: None,
        status_map: &[],
        txid_scope: None,
        dedup: DedupMode::ClickEvent,
        case_sensitive: false,
        other_macros: &["{clickid}", "{type}", "{sub1}", "{sub2}", "{sub3}"],
        offer_param_max_len: None,
        notes: &[
            "RedTrack keeps the traffic source's click ID in ref_id and relays it as {ref_id}; {clickid} is RedTrack's own.",
        ],
    },
    Preset {
        name: "keitaro",
        title: "Keitaro",
        aliases: &[],
        kind: PresetKind::Tracker,
        offer_param: "external_id",
        click_id: Field {
            param: "external_id",
            macro_token: "{external_id}",
        },
        payout: field("revenue", "{revenue}"),
        offer: None,
        txid: field("tid", "{tid}"),
        event: None,
        status: field("status", "{status}"),
        currency: None,
        status_map: &[("lead", PENDING), ("sale", APPROVED), ("rejected", DECLINED)],
        txid_scope: Some(TxidScope::Relayed),
        dedup: DedupMode::ClickEvent,
        case_sensitive: false,
        other_macros: &[
            "{subid}",
            "{offer_id}",
            "{campaign_id}",
            "{sub_id_1}",
            "{sub_id_2}",
            "{profit}",
            "{cost}",
        ],
        offer_param_max_len: None,
        notes: &[
            "Keitaro stores the traffic source's click ID as external_id and relays it as {external_id}; {subid} is Keitaro's own click ID.",
            "{status} is lead, sale or rejected (mapped to pending, approved, declined); {tid} is the upstream network's transaction ID.",
        ],
    },
    Preset {
        name: "binom",
        title: "Binom",
        aliases: &[],
        kind: PresetKind::Tracker,
        offer_param: "externalid",
        click_id: Field {
            param: "externalid",
            macro_token: "{externalid}",
        },
        payout: field("payout", "{payout}"),
        offer: None,
        txid: None,
        event: None,
        status: field("cnv_status", "{cnv_status}"),
        currency: field("cnv_currency", "{cnv_currency}"),
        status_map: &[],
        txid_scope: None,
        dedup: DedupMode::ClickEvent,
        case_sensitive: false,
        other_macros: &[
            "{clickid}",
            "{external_id}",
            "{campaign}",
            "{cnv_status2}",
        ],
        offer_param_max_len: None,
        notes: &[
            "In Binom, set the traffic source's External ID parameter to `externalid`: Binom relays it as {externalid}; {clickid} is Binom's own.",
        ],
    },
    Preset {
        name: "prosper202",
        title: "Prosper202",
        aliases: &["prosper", "tracking202"],
        kind: PresetKind::Tracker,
        offer_param: "c1",
        click_id: Field {
            param: "c1",
            macro_token: "[[c1]]",
        },
        payout: None,
        offer: None,
        txid: None,
        event: None,
        status: None,
        currency: None,
        status_map: &[],
        txid_scope: None,
        dedup: DedupMode::ClickEvent,
        case_sensitive: false,
        other_macros: &["[[subid]]", "[[c2]]", "[[c3]]", "[[c4]]", "[[t202kw]]"],
        offer_param_max_len: None,
        notes: &[
            "Prosper202's [[subid]] is its own click ID (an integer): pass clickmatch's click ID in c1 and relay it as [[c1]].",
            "No payout macro: give the offer or route a fixed payout.",
        ],
    },
    Preset {
        name: "clickflare",
        title: "ClickFlare",
        aliases: &[],
        kind: PresetKind::Tracker,
        offer_param: "externalid",
        click_id: Field {
            param: "externalid",
            macro_token: "{externalid}",
        },
        payout: field("payout", "{payout}"),
        offer: None,
        txid: field("txid", "{transaction.id}"),
        event: None,
        status: None,
        currency: None,
        status_map: &[],
        txid_scope: Some(TxidScope::Relayed),
        dedup: DedupMode::ClickEvent,
        case_sensitive: false,
        other_macros: &[
            "{click_id}",
            "{cf_click_id}",
            "{campaign.id}",
            "{offer.id}",
            "{var1}",
        ],
        offer_param_max_len: None,
        notes: &[
            "In ClickFlare, map the traffic source's click ID parameter `externalid` to External ID: ClickFlare relays it as {externalid}; {click_id} and {cf_click_id} are ClickFlare's own.",
        ],
    },
];

/// The preset named `name` (any case; aliases such as `hasoffers` accepted).
pub fn preset(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.is_named(name))
}

/// The names of all presets, for help texts and errors.
pub fn names() -> Vec<&'static str> {
    PRESETS.iter().map(|p| p.name).collect()
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

/// The postback URL to paste into `preset`'s dashboard, with the preset's own parameter
/// names: `{base_url}/postback` (or `/postback/{route}`) with our parameter names and the
/// network's macros as values, and the route token when there is one.
///
/// The offer and event fields are sent on the global route only: a per-offer route knows its
/// offer and event. Hash dialects list the token first and the click ID last (see the module
/// docs).
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
        // Token first, click ID (the first field) last: see the module docs.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::macros::{shape, ValueShape};
    use crate::model::Secret;
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

    const BASE: &str = "https://track.example";

    #[test]
    fn at_least_twelve_presets_with_unique_names() {
        assert!(PRESETS.len() >= 12, "{}", PRESETS.len());
        let mut seen = Vec::new();
        for p in PRESETS {
            for name in std::iter::once(p.name).chain(p.aliases.iter().copied()) {
                let n = normalize(name);
                assert!(!seen.contains(&n), "{name} names two presets");
                seen.push(n);
            }
            assert_eq!(p.name, p.name.to_ascii_lowercase());
            assert_eq!(preset(p.name), Some(p));
            for (_, f) in p.fields() {
                assert_eq!(f.param, f.param.to_ascii_lowercase(), "{}", p.name);
            }
            assert!(
                p.txid.is_some() == p.txid_scope.is_some(),
                "{}: a transaction ID needs a scope",
                p.name
            );
            if p.txid_scope == Some(TxidScope::Conversion) {
                assert_eq!(p.dedup, DedupMode::Transaction, "{}", p.name);
            } else {
                assert_eq!(p.dedup, DedupMode::ClickEvent, "{}", p.name);
            }
        }
        assert_eq!(preset("HasOffers").map(|p| p.name), Some("tune"));
        assert_eq!(preset("Prosper-202").map(|p| p.name), Some("prosper202"));
        assert_eq!(preset("impact.com").map(|p| p.name), Some("impact"));
        assert_eq!(preset("nope"), None);
    }

    /// Every preset's postback URL, for the global route and a per-offer route with a token,
    /// and its offer link: exact strings.
    #[test]
    fn every_preset_postback_url_and_offer_link() {
        let offer = "https://net.example/click?offer_id=7&aff_id=3";
        let table: &[(&str, &str, &str, &str)] = &[
            (
                "tune",
                "https://track.example/postback?aff_sub={aff_sub}&payout={payout}&offer_id={offer_id}&transaction_id={transaction_id}&goal_id={goal_id}",
                "https://track.example/postback/lead?aff_sub={aff_sub}&payout={payout}&transaction_id={transaction_id}&token=s3cret-token",
                "https://net.example/click?offer_id=7&aff_id=3&aff_sub={click_id}",
            ),
            (
                "cake",
                "https://track.example/postback?price=#price#&oid=#oid#&leadid=#leadid#&s2=#s2#",
                "https://track.example/postback/lead?token=s3cret-token&price=#price#&leadid=#leadid#&s2=#s2#",
                "https://net.example/click?offer_id=7&aff_id=3&s2={click_id}",
            ),
            (
                "everflow",
                "https://track.example/postback?sub1={sub1}&payout_amount={payout_amount}&offer_id={offer_id}&transaction_id={transaction_id}&event_name={event_name}",
                "https://track.example/postback/lead?sub1={sub1}&payout_amount={payout_amount}&transaction_id={transaction_id}&token=s3cret-token",
                "https://net.example/click?offer_id=7&aff_id=3&sub1={click_id}",
            ),
            (
                "affise",
                "https://track.example/postback?sub1={sub1}&sum={sum}&offerid={offerid}&transactionid={transactionid}&goal={goal}&status={status}&currency={currency}",
                "https://track.example/postback/lead?sub1={sub1}&sum={sum}&transactionid={transactionid}&status={status}&currency={currency}&token=s3cret-token",
                "https://net.example/click?offer_id=7&aff_id=3&sub1={click_id}",
            ),
            (
                "impact",
                "https://track.example/postback?subid1={SubId1}&payout={Payout}&actionid={ActionId}&status={Status}&currency={Currency}",
                "https://track.example/postback/lead?subid1={SubId1}&payout={Payout}&actionid={ActionId}&status={Status}&currency={Currency}&token=s3cret-token",
                "https://net.example/click?offer_id=7&aff_id=3&subId1={click_id}",
            ),
            (
                "adcombo",
                "https://track.example/postback?clickid={clickid}&revenue={revenue}&trans_id={trans_id}",
                "https://track.example/postback/lead?clickid={clickid}&revenue={revenue}&trans_id={trans_id}&token=s3cret-token",
                "https://net.example/click?offer_id=7&aff_id=3&clickid={click_id}",
            ),
            (
                "maxbounty",
                "https://track.example/postback?rate=#RATE#&offid=#OFFID#&s2=#S2#",
                "https://track.example/postback/lead?token=s3cret-token&rate=#RATE#&s2=#S2#",
                "https://net.example/click?offer_id=7&aff_id=3&s2={click_id}",
            ),
            (
                "voluum",
                "https://track.example/postback?externalid={externalid}&payout={payout}",
                "https://track.example/postback/lead?externalid={externalid}&payout={payout}&token=s3cret-token",
                "https://net.example/click?offer_id=7&aff_id=3&externalid={click_id}",
            ),
            (
                "redtrack",
                "https://track.example/postback?ref_id={ref_id}&payout={payout}",
                "https://track.example/postback/lead?ref_id={ref_id}&payout={payout}&token=s3cret-token",
                "https://net.example/click?offer_id=7&aff_id=3&ref_id={click_id}",
            ),
            (
                "keitaro",
                "https://track.example/postback?external_id={external_id}&revenue={revenue}&tid={tid}&status={status}",
                "https://track.example/postback/lead?external_id={external_id}&revenue={revenue}&tid={tid}&status={status}&token=s3cret-token",
                "https://net.example/click?offer_id=7&aff_id=3&external_id={click_id}",
            ),
            (
                "binom",
                "https://track.example/postback?externalid={externalid}&payout={payout}&cnv_status={cnv_status}&cnv_currency={cnv_currency}",
                "https://track.example/postback/lead?externalid={externalid}&payout={payout}&cnv_status={cnv_status}&cnv_currency={cnv_currency}&token=s3cret-token",
                "https://net.example/click?offer_id=7&aff_id=3&externalid={click_id}",
            ),
            (
                "prosper202",
                "https://track.example/postback?c1=[[c1]]",
                "https://track.example/postback/lead?c1=[[c1]]&token=s3cret-token",
                "https://net.example/click?offer_id=7&aff_id=3&c1={click_id}",
            ),
            (
                "clickflare",
                "https://track.example/postback?externalid={externalid}&payout={payout}&txid={transaction.id}",
                "https://track.example/postback/lead?externalid={externalid}&payout={payout}&txid={transaction.id}&token=s3cret-token",
                "https://net.example/click?offer_id=7&aff_id=3&externalid={click_id}",
            ),
        ];
        assert_eq!(
            table.len(),
            PRESETS.len(),
            "every preset has a row in this table"
        );
        for (name, global, lead, link) in table {
            let p = preset(name).unwrap();
            assert_eq!(postback_url(p, BASE, None, None), *global, "{name} global");
            assert_eq!(
                postback_url(p, &format!("{BASE}/"), Some("lead"), Some("s3cret-token")),
                *lead,
                "{name} lead route"
            );
            assert_eq!(offer_url(p, offer).unwrap(), *link, "{name} offer link");

            // A route configured with this preset reads exactly the printed names.
            let mut route = Route::new("lead");
            route.offer_id = Some("7".into());
            route.params = p.param_names();
            route.token = Some(Secret::new("s3cret-token"));
            assert_eq!(
                postback_url_for_route(p, BASE, &route),
                *lead,
                "{name} configured route"
            );
            let mut global_route = Route::new(GLOBAL_ROUTE);
            global_route.params = p.param_names();
            assert_eq!(
                postback_url_for_route(p, BASE, &global_route),
                *global,
                "{name} configured global route"
            );
        }
    }

    #[test]
    fn route_names_win_where_the_route_does_not_read_the_presets() {
        // The global route of config/demo.toml: generic names, no s2, price or leadid.
        let route = Route::new(GLOBAL_ROUTE);
        let cake = preset("cake").unwrap();
        assert_eq!(
            postback_url_for_route(cake, BASE, &route),
            "https://track.example/postback?payout=#price#&oid=#oid#&txid=#leadid#&cid=#s2#"
        );
        // The demo's `lead` route: s2/price/tid, a token under a custom name.
        let mut lead = Route::new("lead");
        lead.offer_id = Some("2".into());
        lead.params.click_id = vec!["s2".into(), "cid".into()];
        lead.params.payout = vec!["price".into()];
        lead.params.txid = vec!["tid".into()];
        lead.params.token = vec!["key".into()];
        lead.token = Some(Secret::new("demo-lead-token"));
        assert_eq!(
            postback_url_for_route(cake, BASE, &lead),
            "https://track.example/postback/lead?key=demo-lead-token&price=#price#&tid=#leadid#&s2=#s2#"
        );
        let tune = preset("tune").unwrap();
        assert_eq!(
            postback_url_for_route(tune, BASE, &route),
            "https://track.example/postback?aff_sub={aff_sub}&payout={payout}&offer_id={offer_id}&transaction_id={transaction_id}&event={goal_id}"
        );
    }

    #[test]
    fn tokens_are_encoded() {
        let tune = preset("tune").unwrap();
        assert_eq!(
            postback_url(tune, BASE, Some("r"), Some("a&b#c d")),
            "https://track.example/postback/r?aff_sub={aff_sub}&payout={payout}&transaction_id={transaction_id}&token=a%26b%23c%20d"
        );
    }

    #[test]
    fn offer_links_replace_an_existing_value_and_keep_the_rest() {
        let tune = preset("tune").unwrap();
        let cases: &[(&str, &str)] = &[
            (
                "https://net.example/aff_c?offer_id=1&aff_sub=OLD&aff_sub2=x",
                "https://net.example/aff_c?offer_id=1&aff_sub={click_id}&aff_sub2=x",
            ),
            (
                "https://net.example/aff_c?AFF_SUB=&offer_id=1&aff_sub=again",
                "https://net.example/aff_c?AFF_SUB={click_id}&offer_id=1",
            ),
            (
                "https://net.example/aff_c",
                "https://net.example/aff_c?aff_sub={click_id}",
            ),
            (
                "https://net.example/aff_c?offer_id=1&aff_sub={sub1}#top",
                "https://net.example/aff_c?offer_id=1&aff_sub={click_id}#top",
            ),
            (
                "  https://net.example/aff_c?offer_id=1&&q=a%20b  ",
                "https://net.example/aff_c?offer_id=1&q=a%20b&aff_sub={click_id}",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(offer_url(tune, input).unwrap(), *expected, "{input}");
        }
        let impact = preset("impact").unwrap();
        assert_eq!(
            offer_url(impact, "https://brand.sjv.io/c/1/2/3?subid1=x").unwrap(),
            "https://brand.sjv.io/c/1/2/3?subid1={click_id}"
        );
        assert_eq!(
            offer_url(tune, "net.example/aff_c"),
            Err(OfferUrlError::Scheme)
        );
        assert!(matches!(
            offer_url(tune, "https://net.example/?x={unknown}"),
            Err(OfferUrlError::Template(TemplateError::UnknownToken(_)))
        ));
    }

    #[test]
    fn firing_substitutes_values_and_leaves_unknown_ones_literal() {
        let affise = preset("affise").unwrap();
        let template = postback_url(affise, BASE, Some("a"), None);
        let values = FireValues {
            click_id: Some("01abc".into()),
            payout: Some("1.23".into()),
            txid: Some("test-1".into()),
            status: Some(affise.status_code("approved").into()),
            currency: Some("USD".into()),
            ..FireValues::default()
        };
        assert_eq!(
            fire_url(affise, &template, &values),
            "https://track.example/postback/a?sub1=01abc&sum=1.23&transactionid=test-1&status=1&currency=USD"
        );
        let missing = FireValues {
            click_id: None,
            ..values
        };
        assert_eq!(
            fire_url(affise, &template, &missing),
            "https://track.example/postback/a?sub1={sub1}&sum=1.23&transactionid=test-1&status=1&currency=USD"
        );
        assert_eq!(affise.status_code("hold"), "5");
        assert_eq!(affise.status_code("other"), "other");
    }

    #[test]
    fn param_names_put_the_preset_first_and_keep_generic_aliases() {
        let affise = preset("affise").unwrap().param_names();
        assert_eq!(affise.click_id[0], "sub1");
        assert!(affise.click_id.contains(&"cid".to_string()));
        assert_eq!(
            affise.payout[..2],
            ["sum".to_string(), "payout".to_string()]
        );
        assert_eq!(affise.status, vec!["status".to_string()]);
        assert_eq!(affise.token, vec!["token".to_string()]);
        let prosper = preset("prosper202").unwrap().param_names();
        assert_eq!(prosper.payout, ParamNames::default().payout);
    }

    /// Literal-macro detection (`macros.rs`) knows every preset's dialect: each macro, its
    /// URL-encoded forms and its upper- and lower-case variants are `LiteralMacro`.
    #[test]
    fn macro_detection_knows_every_preset_dialect() {
        let mut failures = Vec::new();
        for token in all_macro_tokens() {
            let variants = [
                token.to_string(),
                token.to_ascii_uppercase(),
                token.to_ascii_lowercase(),
            ];
            for variant in variants {
                let once = utf8_percent_encode(&variant, NON_ALPHANUMERIC).to_string();
                let twice = utf8_percent_encode(&once, NON_ALPHANUMERIC).to_string();
                for form in [variant.clone(), once, twice] {
                    if shape(&form) != ValueShape::LiteralMacro {
                        failures.push(form);
                    }
                }
            }
        }
        assert!(
            failures.is_empty(),
            "not detected as literal macros: {failures:?}"
        );
    }

    #[test]
    fn every_preset_has_notes_and_a_known_kind() {
        for p in PRESETS {
            assert!(!p.notes.is_empty(), "{}", p.name);
            assert!(!p.title.is_empty());
            assert!(matches!(p.kind, PresetKind::Network | PresetKind::Tracker));
        }
        assert_eq!(
            PRESETS
                .iter()
                .filter(|p| p.kind == PresetKind::Tracker)
                .count(),
            6
        );
    }
}
