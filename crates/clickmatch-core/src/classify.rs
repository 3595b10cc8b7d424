//! From a raw postback to either a final unattributed reason or a click to join against.
//!
//! This is everything that can be decided from the postback alone: route, authorization,
//! click-ID presence, literal macros, the ID's form and signature. Window, existence and dedup
//! need state and live in [`crate::join`].

use rust_decimal::Decimal;

use crate::click_id::{ClickId, CLICK_ID_LEN};
use crate::macros::{self, ValueShape};
use crate::model::{Account, DedupMode, Offer, PayoutModel, Route};
use crate::money::{self, BookedPayout, Currency};
use crate::presets::{self, Preset};
use crate::reason::{hint_sentence, hints, Reason};
use crate::records::{IngestVerdict, PostbackRecord, Unattributed};
use crate::salvage;

/// The fields a route reads out of a postback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    /// The value under the click-ID parameter, as sent.
    pub raw_click_id: Option<String>,
    pub payout_raw: Option<String>,
    pub offer_id: Option<String>,
    pub event: String,
    pub txid: Option<String>,
    /// Our status after the route's status mapping.
    pub status: String,
    /// The currency parameter as sent, when not empty.
    pub currency_raw: Option<String>,
    /// The route's currency, for a postback that names none.
    pub default_currency: Currency,
}

impl Default for Extracted {
    fn default() -> Self {
        Extracted {
            raw_click_id: None,
            payout_raw: None,
            offer_id: None,
            event: String::new(),
            txid: None,
            status: String::new(),
            currency_raw: None,
            default_currency: Route::new(crate::model::GLOBAL_ROUTE).currency,
        }
    }
}

impl Extracted {
    /// The payout the joiner books for this postback as a conversion of `offer` (the click's)
    /// through `route`: the route's payout model, else the offer's, else the payout sent, and
    /// the offer's `default_payout`.
    pub fn book_conversion_payout(
        &self,
        route: Option<&Route>,
        offer: Option<&Offer>,
    ) -> BookedPayout {
        let model = route
            .and_then(|r| r.payout)
            .or(offer.map(|o| o.payout))
            .unwrap_or(PayoutModel::FromPostback);
        self.book_payout(model, offer.and_then(|o| o.default_payout))
    }

    /// The payout to book under `model`, with what was sent and why it differs (see
    /// [`money::book_payout`]).
    pub fn book_payout(&self, model: PayoutModel, default_payout: Option<Decimal>) -> BookedPayout {
        money::book_payout(
            self.payout_raw.as_deref(),
            self.currency_raw.as_deref(),
            self.default_currency,
            model,
            default_payout,
        )
    }
}

/// The click a postback names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClickRef {
    /// A clickmatch ID whose signature verified.
    Signed(ClickId),
    /// Another tracker's ID, accepted as an opaque string where the route allows it.
    Foreign(String),
}

impl ClickRef {
    /// The state key and Kafka key: the canonical text form.
    pub fn key(&self) -> String {
        match self {
            ClickRef::Signed(id) => id.to_string(),
            ClickRef::Foreign(s) => s.clone(),
        }
    }
}

/// A postback whose click can be looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub click: ClickRef,
    pub extracted: Extracted,
    /// Hint code when the click ID had to be salvaged from a mangled postback.
    pub repair: Option<&'static str>,
}

/// The result of classifying a postback on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Classified {
    /// Ends here, unattributed.
    Final(Unattributed),
    /// Goes on to the join.
    Joinable(Candidate),
}

/// First value under any of `names` (lowercase, in preference order), names compared
/// case-insensitively.
pub fn param<'a>(params: &'a [(String, String)], names: &[String]) -> Option<&'a str> {
    names.iter().find_map(|name| {
        params
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    })
}

/// Reads the route's fields out of the postback's parameters.
pub fn extract(route: &Route, params: &[(String, String)]) -> Extracted {
    let names = &route.params;
    let get = |list: &[String]| param(params, list).map(str::to_string);
    let status_raw = get(&names.status);
    let status = match status_raw {
        Some(raw) => route
            .status_map
            .get(raw.trim())
            .cloned()
            .unwrap_or_else(|| raw.trim().to_ascii_lowercase()),
        None => route.default_status.clone(),
    };
    let non_empty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    Extracted {
        raw_click_id: get(&names.click_id),
        payout_raw: non_empty(get(&names.payout)),
        offer_id: non_empty(get(&names.offer)).or_else(|| route.offer_id.clone()),
        event: non_empty(get(&names.event)).unwrap_or_else(|| route.default_event.clone()),
        txid: non_empty(get(&names.txid)),
        status,
        currency_raw: non_empty(get(&names.currency)),
        default_currency: route.currency,
    }
}

/// Classifies a postback as far as it can be without state.
pub fn classify(account: &Account, record: &PostbackRecord) -> Classified {
    diagnose(account, record).classified
}

/// [`classify`]'s result with what the operator reads about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    pub classified: Classified,
    /// The hint code: the row's `hint` for a final outcome, the repair's for a salvaged click
    /// ID, `None` for a clean click ID.
    pub hint: Option<&'static str>,
    /// This postback's specifics for the sentence: the macro as sent (`{Sub5}`), the key the
    /// click ID was found under (`s2`), the tracker the value looks like, the route meant.
    pub detail: Option<String>,
}

impl Diagnosis {
    /// The operator's sentence (see [`hint_sentence`]).
    pub fn sentence(&self) -> Option<String> {
        self.hint
            .map(|code| hint_sentence(code, self.detail.as_deref()))
    }
}

/// A hint code and the specifics behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Hint {
    code: &'static str,
    detail: Option<String>,
}

impl Hint {
    fn new(code: &'static str) -> Self {
        Hint { code, detail: None }
    }

    fn with(code: &'static str, detail: impl Into<String>) -> Self {
        Hint {
            code,
            detail: Some(detail.into()),
        }
    }
}

fn final_outcome(
    record: &PostbackRecord,
    reason: Reason,
    hint: Hint,
    extracted: &Extracted,
) -> Diagnosis {
    Diagnosis {
        classified: Classified::Final(unattributed(record, reason, Some(hint.code), extracted)),
        hint: Some(hint.code),
        detail: hint.detail,
    }
}

/// [`classify`], also saying why and what the operator should fix.
pub fn diagnose(account: &Account, record: &PostbackRecord) -> Diagnosis {
    let route = match (record.verdict, account.route(record.route.as_deref())) {
        (IngestVerdict::UnknownRoute, _) | (_, None) => {
            let extracted = Extracted {
                raw_click_id: param(
                    record.params.as_slice(),
                    &account.global_route.params.click_id,
                )
                .map(str::to_string),
                ..Extracted::default()
            };
            let hint = unknown_route_hint(account, record);
            return final_outcome(record, Reason::UnknownRoute, hint, &extracted);
        }
        (_, Some(route)) => route,
    };
    let extracted = extract(route, &record.params);
    if record.verdict == IngestVerdict::Unauthorized {
        let hint = unauthorized_hint(account, route, record);
        return final_outcome(record, Reason::Unauthorized, hint, &extracted);
    }

    let found = find_click(account, route, record, extracted.raw_click_id.as_deref());
    match found {
        Ok(found) => Diagnosis {
            classified: Classified::Joinable(Candidate {
                click: found.click,
                extracted,
                repair: found.repair,
            }),
            hint: found.repair,
            detail: found.found_in.map(|key| format!("`{key}`")),
        },
        Err(failure) => {
            let raw = extracted.raw_click_id.as_deref();
            let hint = failure_hint(account, route, record, failure, raw);
            final_outcome(record, failure, hint, &extracted)
        }
    }
}

/// The click a postback names, as the join looks it up.
struct Found {
    click: ClickRef,
    /// The repair's hint code when the signed ID was salvaged from a mangled postback.
    repair: Option<&'static str>,
    /// The parameter a salvaged ID was found under, when not the click-ID one.
    found_in: Option<String>,
}

/// Finds the click `raw` (the value under the route's click-ID names) refers to, salvaging a
/// signed ID from a mangled postback; else the reason it names none. No hint is worked out:
/// ingest calls this on the request path for the Kafka key alone.
fn find_click(
    account: &Account,
    route: &Route,
    record: &PostbackRecord,
    raw: Option<&str>,
) -> Result<Found, Reason> {
    let found = |click| Found {
        click,
        repair: None,
        found_in: None,
    };
    let failure = match raw.map(macros::shape) {
        None | Some(ValueShape::Missing) => Reason::MissingClickId,
        Some(ValueShape::LiteralMacro) => Reason::UnsubstitutedMacro,
        Some(ValueShape::Value) => {
            let value = raw.unwrap_or_default();
            match ClickId::parse(value) {
                Ok(id) if account.signer.verify(id) => return Ok(found(ClickRef::Signed(id))),
                _ if route.accept_foreign_ids => {
                    return Ok(found(ClickRef::Foreign(value.trim().to_string())))
                }
                Ok(_) => Reason::InvalidSignature,
                Err(_) => Reason::MalformedClickId,
            }
        }
    };
    // Signed IDs can be recovered safely from a mangled postback: only one that verifies counts.
    let click_id_names = &route.params.click_id;
    match salvage::salvage_located(raw, &record.params, click_id_names, &account.signer) {
        Some(salvaged) => Ok(Found {
            click: ClickRef::Signed(salvaged.repaired.id),
            repair: Some(salvaged.repaired.hint),
            found_in: salvaged.found_in,
        }),
        None => Err(failure),
    }
}

/// The most specific hint for a postback that ends unattributed before the join.
fn failure_hint(
    account: &Account,
    route: &Route,
    record: &PostbackRecord,
    reason: Reason,
    raw: Option<&str>,
) -> Hint {
    let specific = match reason {
        Reason::MissingClickId => missing_hint(route, account, record, raw),
        Reason::UnsubstitutedMacro => raw.and_then(|raw| macro_hint(route, account, raw)),
        Reason::MalformedClickId => raw.and_then(|raw| malformed_hint(account, record, raw)),
        Reason::InvalidSignature => raw.and_then(|raw| {
            foreign_tracker(raw.trim()).map(|name| Hint::with(hints::FOREIGN_TRACKER_ID, name))
        }),
        _ => None,
    };
    specific.unwrap_or_else(|| Hint::new(reason.default_hint()))
}

/// The network of a route: its offer's `network`, when it names a known one.
fn route_network(account: &Account, route: &Route) -> Option<&'static Preset> {
    let offer = account.offers.get(route.offer_id.as_deref()?)?;
    presets::preset(offer.network.as_deref()?)
}

/// CAKE names its sub-parameters `s1`…`s5` (MaxBounty `S1`…`S5`).
fn is_cake_sub_key(key: &str) -> bool {
    let key = key.trim().as_bytes();
    key.len() == 2 && key[0].eq_ignore_ascii_case(&b's') && (b'1'..=b'5').contains(&key[1])
}

/// The click-ID parameter (first under the route's names) is present, empty, and the last
/// parameter of a hash-dialect postback: `#s2#` sent unencoded started a fragment there.
fn hash_fragment_cut(account: &Account, route: &Route, record: &PostbackRecord) -> bool {
    let names = &route.params.click_id;
    let Some(position) = names.iter().find_map(|name| {
        record
            .params
            .iter()
            .position(|(key, _)| key.eq_ignore_ascii_case(name))
    }) else {
        return false;
    };
    let (key, value) = &record.params[position];
    if !value.is_empty() || position + 1 != record.params.len() {
        return false;
    }
    let hash_dialect = route_network(account, route)
        .is_some_and(|n| n.dialect.form == Some(macros::MacroForm::Hashes));
    hash_dialect || is_cake_sub_key(key)
}

fn missing_hint(
    route: &Route,
    account: &Account,
    record: &PostbackRecord,
    raw: Option<&str>,
) -> Option<Hint> {
    if let Some(raw) = raw {
        if hash_fragment_cut(account, route, record) {
            return Some(Hint::new(hints::CAKE_HASH_FRAGMENT));
        }
        let blank = macros::decode_layers(raw, 2)
            .iter()
            .any(|layer| macros::strip_whitespace_and_quotes(layer).is_empty());
        if blank {
            return Some(Hint::new(hints::CLICK_ID_EMPTY));
        }
        let core = macros::strip_whitespace_and_quotes(raw);
        return Some(Hint::with(hints::PLACEHOLDER_SENT, format!("`{core}`")));
    }
    if record.params.is_empty() {
        return Some(Hint::new(hints::EMPTY_POSTBACK));
    }
    let names = &route.params.click_id;
    for (key, _) in &record.params {
        let (rest, escaped) = salvage::strip_html_escapes(key.trim());
        if escaped && names.iter().any(|n| rest.eq_ignore_ascii_case(n)) {
            return Some(Hint::with(hints::HTML_ESCAPED_KEY, format!("`{key}`")));
        }
    }
    for (key, _) in &record.params {
        let cleaned = macros::strip_whitespace_and_quotes(key)
            .trim_start_matches(['?', '&', ';'])
            .trim();
        let before_equals = cleaned.split(['=', ':']).next().unwrap_or_default().trim();
        let mangled = cleaned != key.as_str() || before_equals != cleaned;
        if mangled && names.iter().any(|n| before_equals.eq_ignore_ascii_case(n)) {
            return Some(Hint::with(hints::CLICK_ID_KEY_MANGLED, format!("`{key}`")));
        }
    }
    if record
        .params
        .iter()
        .any(|(key, _)| key == crate::params::RAW_BODY_PARAM)
    {
        return Some(Hint::new(hints::UNREADABLE_BODY));
    }
    None
}

fn macro_hint(route: &Route, account: &Account, raw: &str) -> Option<Hint> {
    use macros::{MacroForm, Spelling};
    let found = macros::find_macro(raw)?;
    let text = format!("`{}`", found.text);
    if found.decodes > 0 {
        return Some(Hint::with(hints::MACRO_URL_ENCODED, text));
    }
    if matches!(found.form, MacroForm::BareWord | MacroForm::Angles) {
        return Some(Hint::with(hints::TEMPLATE_PLACEHOLDER_WORD, text));
    }
    let network = route_network(account, route);
    if let Some(network) = network {
        if let Some(form) = network.dialect.form {
            if form != found.form {
                let detail = format!(
                    "{text} on a {} offer, whose macros read like `{}`",
                    network.name, network.dialect.example
                );
                return Some(Hint::with(hints::MACRO_WRONG_DIALECT, detail));
            }
        }
    }
    let spelling = match network {
        Some(network) => match macros::spelling(&found.word, [&network.dialect]) {
            // Documented elsewhere in this case, but not for this network.
            Spelling::Unknown => macros::spelling(&found.word, presets::dialects()),
            other => other,
        },
        None => macros::spelling(&found.word, presets::dialects()),
    };
    let code = match spelling {
        Spelling::WrongCase => hints::MACRO_WRONG_CASE,
        Spelling::Misspelt => hints::MACRO_MISSPELT,
        Spelling::Exact | Spelling::Unknown => hints::MACRO_NOT_SUBSTITUTED,
    };
    Some(Hint::with(code, text))
}

fn malformed_hint(account: &Account, record: &PostbackRecord, raw: &str) -> Option<Hint> {
    let value = macros::strip_whitespace_and_quotes(raw);
    if value.len() > CLICK_ID_LEN
        && value.len() < 2 * CLICK_ID_LEN + 8
        && value.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        let verifies = |text: &str| ClickId::parse(text).is_ok_and(|id| account.signer.verify(id));
        let head = &value[..CLICK_ID_LEN];
        let tail = &value[value.len() - CLICK_ID_LEN..];
        if verifies(head) || verifies(tail) {
            return Some(Hint::new(hints::CLICK_ID_GLUED_CHARS));
        }
    }
    if truncated_recent_id(account, record, value) {
        return Some(Hint::with(
            hints::CLICK_ID_TRUNCATED,
            format!("{} of {CLICK_ID_LEN} characters", value.len()),
        ));
    }
    foreign_tracker(value).map(|name| Hint::with(hints::FOREIGN_TRACKER_ID, name))
}

/// Characters of a click ID's text that hold its 48-bit time (the first two bits are zero).
const TIME_CHARS: usize = 10;
/// Shortest prefix read as a truncated click ID: 6 characters pin the click time to ~17 minutes.
const MIN_TRUNCATED_LEN: usize = 6;

/// `value` is 6 to 25 click-ID characters whose leading time bits place the click within the
/// account's longest window before the postback (plus a day either side): the start of a
/// recent clickmatch ID, cut short.
fn truncated_recent_id(account: &Account, record: &PostbackRecord, value: &str) -> bool {
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
    if !(MIN_TRUNCATED_LEN..CLICK_ID_LEN).contains(&value.len()) {
        return false;
    }
    let mut digits = Vec::with_capacity(value.len());
    for b in value.bytes() {
        let lower = b.to_ascii_lowercase();
        match ALPHABET.iter().position(|&c| c == lower) {
            Some(d) => digits.push(d as u64),
            None => return false,
        }
    }
    let known = digits.len().min(TIME_CHARS);
    let prefix = digits[..known].iter().fold(0u64, |acc, d| (acc << 5) | d);
    let free_bits = 5 * (TIME_CHARS - known) as u32;
    let low = prefix << free_bits;
    let high = low | ((1u64 << free_bits) - 1);
    let slack = crate::model::DAY_MS;
    let earliest = record
        .received_ms
        .saturating_sub(account.max_window_ms() + slack);
    let latest = record.received_ms.saturating_add(slack);
    low <= latest && high >= earliest
}

/// Which tracker or platform a foreign click ID looks like, from its shape (docs/architecture.md,
/// "Facts from real networks"). Mixed case matters: clickmatch IDs are all one case.
pub fn foreign_tracker(value: &str) -> Option<&'static str> {
    let len = value.len();
    let alnum = value.bytes().all(|b| b.is_ascii_alphanumeric());
    let hex = value.bytes().all(|b| b.is_ascii_hexdigit());
    let has_upper = value.bytes().any(|b| b.is_ascii_uppercase());
    let has_lower = value.bytes().any(|b| b.is_ascii_lowercase());
    if len == 0 {
        return None;
    }
    if value.bytes().all(|b| b.is_ascii_digit()) && len <= 20 {
        return Some("an integer, like Prosper202's subid");
    }
    if len == 32 && hex {
        return Some("32 hex characters, like an Everflow transaction_id");
    }
    if len == 36
        && value.char_indices().all(|(i, c)| {
            matches!(i, 8 | 13 | 18 | 23) == (c == '-') && (c == '-' || c.is_ascii_hexdigit())
        })
    {
        return Some("a UUID, another tracker's or the network's own ID");
    }
    if len == CLICK_ID_LEN && alnum && has_upper && has_lower {
        return Some("26 mixed-case characters, like a Voluum clickid");
    }
    if len == 24 && alnum {
        return Some("24 characters, like a FunnelFlux or RedTrack click ID");
    }
    let platform = |prefixes: &[&str]| prefixes.iter().any(|p| value.starts_with(p));
    if len > 40 && platform(&["IwAR", "IwZX", "IwY2", "IwAB"]) {
        return Some("a Facebook fbclid");
    }
    if len > 40 && platform(&["Cj0K", "CjwK", "EAIaI"]) {
        return Some("a Google gclid");
    }
    None
}

/// `/postback/{route}` not configured: say so when only case or slashes differ.
fn unknown_route_hint(account: &Account, record: &PostbackRecord) -> Hint {
    let asked = record
        .route
        .as_deref()
        .unwrap_or_default()
        .trim()
        .trim_matches('/');
    match account
        .routes
        .keys()
        .find(|name| name.eq_ignore_ascii_case(asked))
    {
        Some(name) => Hint::with(hints::ROUTE_NAME_MISMATCH, format!("route `{name}`")),
        None => Hint::new(Reason::UnknownRoute.default_hint()),
    }
}

/// Ingest decided `unauthorized`; the record tells whether a token was sent (redacted).
fn unauthorized_hint(account: &Account, route: &Route, record: &PostbackRecord) -> Hint {
    let token_sent = param(&record.params, &route.params.token).is_some_and(|t| !t.is_empty());
    match (&route.token, token_sent, route.allow_ips.is_empty()) {
        // `#s2#` unencoded before the token cut the token off too.
        (Some(_), false, _) if hash_fragment_cut(account, route, record) => {
            Hint::new(hints::CAKE_HASH_FRAGMENT)
        }
        (Some(_), false, _) => Hint::new(hints::ROUTE_TOKEN_MISSING),
        (Some(_), true, true) => Hint::new(hints::ROUTE_TOKEN_WRONG),
        (None, _, false) => Hint::new(hints::SOURCE_IP_NOT_ALLOWED),
        _ => Hint::new(Reason::Unauthorized.default_hint()),
    }
}

/// The Kafka key of a postback: its click's key when it names one, else its postback ID, so
/// that a postback lands on the partition of its click. The key of [`classify`]'s result, with
/// only what the key needs (ingest calls it on the request path): the route, the click ID and,
/// for a mangled one, salvage; no payout, no hint, no unattributed row.
pub fn partition_key(account: &Account, record: &PostbackRecord) -> String {
    let route = match (record.verdict, account.route(record.route.as_deref())) {
        (IngestVerdict::Accepted, Some(route)) => route,
        _ => return record.postback_id.clone(),
    };
    let raw = param(&record.params, &route.params.click_id);
    match find_click(account, route, record, raw) {
        Ok(found) => found.click.key(),
        Err(_) => record.postback_id.clone(),
    }
}

/// Builds the unattributed row for `record`.
pub fn unattributed(
    record: &PostbackRecord,
    reason: Reason,
    hint: Option<&str>,
    extracted: &Extracted,
) -> Unattributed {
    // What the postback says it was worth, for recovery: the row attributes nothing.
    let booked = extracted.book_payout(PayoutModel::FromPostback, None);
    Unattributed {
        origin: record.origin,
        postback_id: record.postback_id.clone(),
        received_time_ms: record.received_ms,
        route: record.route_label().to_string(),
        reason,
        raw_click_id: extracted.raw_click_id.clone().unwrap_or_default(),
        offer_id: extracted.offer_id.clone().unwrap_or_default(),
        payout: booked.payout,
        currency: booked.currency.to_string(),
        remote_ip: record.remote_ip.clone(),
        raw_params: record.params_json(),
        hint: hint.unwrap_or(reason.default_hint()).to_string(),
        is_test: false,
    }
}

/// The dedup mode for a conversion on `offer` through `route`.
pub fn dedup_mode(route: Option<&Route>, offer: Option<&Offer>) -> DedupMode {
    route
        .and_then(|r| r.dedup)
        .or(offer.map(|o| o.dedup))
        .unwrap_or_default()
}

#[cfg(test)]
pub(crate) mod tests;
