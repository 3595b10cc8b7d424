//! Why a postback was not attributed, most specific first, and the operator's fix for each.

use std::fmt;

use serde::Serialize;

/// Unattributed reasons, in the order of docs/architecture.md, "Outcomes and hints" (most
/// specific first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Unauthorized,
    UnknownRoute,
    MissingClickId,
    UnsubstitutedMacro,
    MalformedClickId,
    InvalidSignature,
    Expired,
    UnknownClickId,
    Duplicate,
}

impl Reason {
    pub const ALL: [Reason; 9] = [
        Reason::Unauthorized,
        Reason::UnknownRoute,
        Reason::MissingClickId,
        Reason::UnsubstitutedMacro,
        Reason::MalformedClickId,
        Reason::InvalidSignature,
        Reason::Expired,
        Reason::UnknownClickId,
        Reason::Duplicate,
    ];

    /// The reason named `name` (as in the `reason` column), if any.
    pub fn from_name(name: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Unauthorized => "unauthorized",
            Reason::UnknownRoute => "unknown_route",
            Reason::MissingClickId => "missing_click_id",
            Reason::UnsubstitutedMacro => "unsubstituted_macro",
            Reason::MalformedClickId => "malformed_click_id",
            Reason::InvalidSignature => "invalid_signature",
            Reason::Expired => "expired",
            Reason::UnknownClickId => "unknown_click_id",
            Reason::Duplicate => "duplicate",
        }
    }

    /// Duplicates are network retries, not lost money: they stay out of the unattributed rate.
    pub fn counts_as_unattributed(self) -> bool {
        self != Reason::Duplicate
    }

    /// The default hint code for this reason when nothing more specific is known.
    pub fn default_hint(self) -> &'static str {
        match self {
            Reason::Unauthorized => "check_route_token_or_ip",
            Reason::UnknownRoute => "configure_route",
            Reason::MissingClickId => "add_click_id_param",
            Reason::UnsubstitutedMacro => "fix_network_macro",
            Reason::MalformedClickId => "check_sub_param_passthrough",
            Reason::InvalidSignature => "forged_or_corrupted_id",
            Reason::Expired => "click_outside_window",
            Reason::UnknownClickId => "click_never_recorded",
            Reason::Duplicate => "network_retry",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Hint codes more specific than a reason's default, decided by [`crate::classify`] from the
/// postback alone. Codes are static and few (they are metric labels and ClickHouse values); the
/// specifics of one postback (the macro as sent, the key an ID was found under) go into the
/// sentence through [`hint_sentence`], never into the code.
pub mod hints {
    /// `missing_click_id`: CAKE `#s2#` / MaxBounty `#S2#` sent unencoded cut the query.
    pub const CAKE_HASH_FRAGMENT: &str = "cake_hash_fragment";
    /// `missing_click_id`: the click-ID parameter is there, empty.
    pub const CLICK_ID_EMPTY: &str = "click_id_empty";
    /// `missing_click_id`: `undefined`, `null`, `none`, `nil`, …
    pub const PLACEHOLDER_SENT: &str = "placeholder_sent";
    /// `missing_click_id`: `amp;cid` holding no verifying ID.
    pub const HTML_ESCAPED_KEY: &str = "html_escaped_key";
    /// `missing_click_id`: `?cid`, ` cid`, `cid=…` as a key, holding no verifying ID.
    pub const CLICK_ID_KEY_MANGLED: &str = "click_id_key_mangled";
    /// `missing_click_id`: a body that was neither form nor JSON object.
    pub const UNREADABLE_BODY: &str = "unreadable_body";
    /// `missing_click_id`: no parameters at all.
    pub const EMPTY_POSTBACK: &str = "empty_postback";
    /// `unsubstituted_macro`: a documented-looking macro the network did not fill.
    pub const MACRO_NOT_SUBSTITUTED: &str = "macro_not_substituted";
    /// `unsubstituted_macro`: `{Sub5}` for Everflow's `{sub5}`, `{subid1}` for Impact's `{SubId1}`.
    pub const MACRO_WRONG_CASE: &str = "macro_wrong_case";
    /// `unsubstituted_macro`: `{sub_5}` for `{sub5}`.
    pub const MACRO_MISSPELT: &str = "macro_misspelt";
    /// `unsubstituted_macro`: the macro arrived URL-encoded (`%7Bsubid%7D`, AdCombo).
    pub const MACRO_URL_ENCODED: &str = "macro_url_encoded";
    /// `unsubstituted_macro`: another network's syntax (`{aff_sub}` on a CAKE offer).
    pub const MACRO_WRONG_DIALECT: &str = "macro_wrong_dialect";
    /// `unsubstituted_macro`: `REPLACE`, `CLICK_ID`, `sub1` left in the template.
    pub const TEMPLATE_PLACEHOLDER_WORD: &str = "template_placeholder_word";
    /// `malformed_click_id` / `invalid_signature`: another tracker's or platform's ID.
    pub const FOREIGN_TRACKER_ID: &str = "foreign_tracker_id";
    /// `malformed_click_id`: the start of a recent clickmatch ID, cut short.
    pub const CLICK_ID_TRUNCATED: &str = "click_id_truncated";
    /// `malformed_click_id`: a genuine ID with letters or digits glued to it.
    pub const CLICK_ID_GLUED_CHARS: &str = "click_id_glued_chars";
    /// `unknown_route`: a configured route's name in another case or with slashes.
    pub const ROUTE_NAME_MISMATCH: &str = "route_name_mismatch";
    /// `unauthorized`: no token parameter at all.
    pub const ROUTE_TOKEN_MISSING: &str = "route_token_missing";
    /// `unauthorized`: a token that does not match (the route has no IP allowlist).
    pub const ROUTE_TOKEN_WRONG: &str = "route_token_wrong";
    /// `unauthorized`: the route checks only source IPs.
    pub const SOURCE_IP_NOT_ALLOWED: &str = "source_ip_not_allowed";

    /// `unknown_click_id`: ingest keyed the postback with a configuration the joiner no longer
    /// has (a reload in between), so it sits on a partition that cannot hold its click.
    pub const KEYED_ELSEWHERE: &str = "keyed_elsewhere";

    /// Every code above.
    pub const ALL: &[&str] = &[
        CAKE_HASH_FRAGMENT,
        CLICK_ID_EMPTY,
        PLACEHOLDER_SENT,
        HTML_ESCAPED_KEY,
        CLICK_ID_KEY_MANGLED,
        UNREADABLE_BODY,
        EMPTY_POSTBACK,
        MACRO_NOT_SUBSTITUTED,
        MACRO_WRONG_CASE,
        MACRO_MISSPELT,
        MACRO_URL_ENCODED,
        MACRO_WRONG_DIALECT,
        TEMPLATE_PLACEHOLDER_WORD,
        FOREIGN_TRACKER_ID,
        CLICK_ID_TRUNCATED,
        CLICK_ID_GLUED_CHARS,
        ROUTE_NAME_MISMATCH,
        ROUTE_TOKEN_MISSING,
        ROUTE_TOKEN_WRONG,
        SOURCE_IP_NOT_ALLOWED,
        KEYED_ELSEWHERE,
    ];
}

/// Every hint code clickmatch writes: the reasons' defaults, the specific unattributed hints and
/// the repair hints of [`crate::salvage::hints`].
pub fn all_hint_codes() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = Reason::ALL.iter().map(|r| r.default_hint()).collect();
    all.extend_from_slice(hints::ALL);
    all.extend_from_slice(crate::salvage::hints::ALL);
    all
}

/// The sentence for `code` with the specifics of one postback (`detail`: the macro as sent,
/// the key the click ID was found under, the tracker the value looks like, …). The code's
/// sentence alone when there is no detail.
pub fn hint_sentence(code: &str, detail: Option<&str>) -> String {
    match detail {
        Some(detail) if !detail.is_empty() => format!("{} (here: {detail})", hint_text(code)),
        _ => hint_text(code).to_string(),
    }
}

/// Text for an unknown code.
const UNKNOWN_HINT: &str = "see the clickmatch runbook for this hint code";

/// The sentence an operator reads for a hint code.
pub fn hint_text(code: &str) -> &'static str {
    match code {
        "check_route_token_or_ip" => {
            "the postback's route token is wrong or missing, or its source IP is not allowed: \
             copy the URL again from `clickmatch postback-url` or add the network's IPs"
        }
        "keyed_elsewhere" => {
            "ingest decided this postback's Kafka key with another configuration than the \
             joiner's (a reload in between, e.g. accept_foreign_ids turned on), so it landed on \
             a partition that cannot hold its click: reload ingest and the joiner with the same \
             file, then have the network send the postback again"
        }
        "configure_route" => {
            "the network posts to a route that is not configured: add it under [routes] or \
             point the network at /postback"
        }
        "add_click_id_param" => {
            "the postback carries no click ID under any configured name: add the click-ID \
             macro to the network's postback URL, or the parameter name as an alias"
        }
        "fix_network_macro" => {
            "the network sent its macro literally: the offer link does not carry the click ID \
             in the sub-parameter that macro reads, or the macro is misspelt"
        }
        "cake_hash_fragment" => {
            "CAKE's `#s2#` (MaxBounty's `#S2#`) was sent unencoded, so it started a URL fragment \
             and everything from it on was cut off, payout and txid included: URL-encode the \
             hashes in the postback template (`%23s2%23`) or use the network's other form"
        }
        "check_sub_param_passthrough" => {
            "the value is not a clickmatch click ID: the network truncates or rewrites the \
             sub-parameter, or another tracker's ID arrives here"
        }
        "forged_or_corrupted_id" => {
            "the value has the form of a clickmatch click ID but its signature does not verify: \
             a character was changed in transit, it was forged, or another secret minted it \
             (after a rotation keep the old secret in `previous_secrets`; a staging deployment \
             has its own)"
        }
        "click_outside_window" => {
            "the click is older than the offer's attribution window at conversion time: \
             nothing to fix if the window is right; otherwise raise the offer's window_days \
             (at most 90)"
        }
        "click_never_recorded" => {
            "no click with this ID reached clickmatch within the grace period: the visitor did \
             not come through /c/, or the click was produced elsewhere"
        }
        "network_retry" => "a repeat of a conversion already recorded (network retry)",
        "click_id_whitespace_or_quotes" => {
            "the click ID arrives wrapped in whitespace or quotes (recovered): remove the \
             spaces or quotes around the click-ID macro in the network's postback template"
        }
        "click_id_case_changed" => {
            "the network changes the click ID's letter case (recovered): ask it to pass the \
             sub-parameter unchanged"
        }
        "click_id_trailing_junk" => {
            "the click ID arrives with extra characters next to it, such as `<id>&`, \
             `<id>_123` or `<id>/` (recovered): remove what the template adds around the \
             click-ID macro"
        }
        "click_id_duplicated" => {
            "the click ID arrives twice, as `<id>,<id>` or in a repeated click-ID parameter \
             (recovered): keep a single click-ID macro in the postback template"
        }
        "click_id_query_in_value" => {
            "the rest of the query is encoded into the click-ID value, as in \
             `<id>%26payout%3D1` (recovered; payout and other fields are lost): write `&` and \
             `=` in the template literally, not URL-encoded"
        }
        "click_id_second_question_mark" => {
            "the postback template has a second `?` where `&` belongs, as in `<id>?payout=1` \
             or `x?cid=<id>` (recovered): replace the second `?` with `&`"
        }
        "click_id_html_escaped_key" => {
            "the template contains `&amp;` from HTML (recovered): replace `&amp;` with `&`"
        }
        "click_id_key_contains_value" => {
            "the click ID arrives inside a parameter name, as in `cid%3D<id>` or `&<id>` \
             (recovered): the template URL-encodes or omits the `=` after the click-ID \
             parameter name"
        }
        "click_id_other_param" => {
            "the network sends the click ID under a parameter this route does not read, such \
             as `s2` (recovered): add that name as an alias of the route's click-ID parameter \
             or fix the template"
        }
        "click_id_double_encoded" => {
            "the click ID arrives URL-encoded twice (recovered): the network encodes the \
             macro's value again; pass it unencoded"
        }
        "click_id_empty" => {
            "the click-ID parameter arrived empty: the network had no value for its macro, so \
             the click ID never reached it in the sub-parameter that macro reads: check that the \
             campaign's offer URL puts `{click_id}` in that sub-parameter and that landers and \
             redirects in between keep it"
        }
        "placeholder_sent" => {
            "the network sent a placeholder such as `null`, `undefined` or `none` instead of the \
             click ID: its sub-parameter was empty when the conversion fired; check that the \
             offer URL carries `{click_id}` in the sub-parameter the postback macro reads and \
             that landers pass it on"
        }
        "html_escaped_key" => {
            "the postback template contains `&amp;` copied from HTML, so the click ID arrives \
             under `amp;cid`, where this route does not read it (and it is no valid click ID \
             either): replace `&amp;` with `&` in the network's postback URL"
        }
        "click_id_key_mangled" => {
            "the click-ID parameter's name arrives mangled (`?cid`, ` cid`, `cid%3D…` as a \
             name) and holds no valid click ID: fix the parameter name in the network's \
             postback template (copy it from `clickmatch postback-url`)"
        }
        "unreadable_body" => {
            "the postback's body was neither a form nor a JSON object, so no parameter could be \
             read from it (it is kept raw in raw_params): have the network send \
             `application/x-www-form-urlencoded` or a JSON object with `Content-Type: \
             application/json`, or put the parameters in the query"
        }
        "empty_postback" => {
            "the postback arrived without any parameters: the network fires the bare URL; paste \
             the full postback URL from `clickmatch postback-url`, query string included"
        }
        "macro_not_substituted" => {
            "the network sent its click-ID macro literally instead of a value: either this was \
             the network's test button (no real click behind it), or the macro is not the one \
             this network fills from the sub-parameter that carries the click ID: check the \
             network's macro list and which sub-parameter the campaign's offer URL uses"
        }
        "macro_wrong_case" => {
            "the network sent its macro literally because its letter case is wrong: macros are \
             case-sensitive (Everflow's are lower case, `{sub5}` not `{Sub5}`; Impact's \
             PascalCase, `{SubId1}` not `{subid1}`; Awin's `clickref` lower case): copy the \
             macro exactly from the network's macro list"
        }
        "macro_misspelt" => {
            "the network sent a misspelt macro literally (`{sub_5}` for Everflow's `{sub5}`): \
             copy the macro exactly from the network's macro list"
        }
        "macro_url_encoded" => {
            "the macro arrived URL-encoded inside the value (`%7Bsubid%7D` once the query is \
             decoded): the network got its postback URL with encoded delimiters, did not \
             recognise the macro and sent it back unsubstituted (AdCombo has been seen doing \
             this): enter the postback URL in the network with literal braces or hashes"
        }
        "macro_wrong_dialect" => {
            "the postback template uses another network's macro syntax (TUNE's `{aff_sub}` on a \
             CAKE offer, whose macros read `#s2#`): use this network's own macros; \
             `clickmatch postback-url --network <name>` prints them"
        }
        "template_placeholder_word" => {
            "the postback template still holds a placeholder from documentation (`REPLACE`, \
             `CLICK_ID`, `<click_id>`, a bare `sub1`) where the network's click-ID macro \
             belongs: replace it with the macro as the network writes it, delimiters included \
             (`{sub1}`, `#s2#`, `[[subid]]`)"
        }
        "foreign_tracker_id" => {
            "the value looks like another tracker's or platform's click ID (Everflow 32 hex, \
             Voluum 26 mixed-case, FunnelFlux or RedTrack 24, Prosper202 an integer, a UUID, a \
             gclid or fbclid), not a clickmatch one: pass `{click_id}` in the sub-parameter this \
             postback reads, or register those clicks through `POST /clicks` and set \
             `accept_foreign_ids = true` on this route"
        }
        "click_id_truncated" => {
            "the click ID arrives cut short: it starts like the clickmatch ID of a recent click \
             but has fewer than 26 characters, so a hop truncates the sub-parameter (CAKE's s1 \
             holds 50 characters, s2–s5 100; ClickBank's tid holds 100 and used to be cut and \
             upper-cased): find the hop that shortens it, or carry the click ID in a longer \
             sub-parameter"
        }
        "click_id_glued_chars" => {
            "a genuine click ID arrives with letters or digits glued to it (`<id>0`, `x<id>`); \
             clickmatch does not cut it out, since the result could name another click: stop the \
             template or network from appending to the click-ID value (separate added text with \
             `_`, or give it its own parameter)"
        }
        "route_name_mismatch" => {
            "the network posts to a route whose name differs from a configured one only by case \
             or slashes: fix the URL in the network (copy it from `clickmatch postback-url`)"
        }
        "route_token_missing" => {
            "the postback carries no route token: add the `token` parameter to the network's \
             postback URL (copy the URL from `clickmatch postback-url`); if `#…#` macros come \
             before it unencoded, they cut it off"
        }
        "route_token_wrong" => {
            "the route token does not match this route's: copy the postback URL again from \
             `clickmatch postback-url`; after a token rotation, update it in the network"
        }
        "source_ip_not_allowed" => {
            "the postback came from an address outside this route's allow_ips: add the \
             network's postback server addresses (see its documentation) to allow_ips"
        }
        _ => UNKNOWN_HINT,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hint_code_is_unique_and_has_its_own_sentence() {
        let codes = all_hint_codes();
        let mut seen = std::collections::BTreeSet::new();
        for code in &codes {
            assert!(seen.insert(*code), "{code} listed twice");
            assert_ne!(hint_text(code), UNKNOWN_HINT, "{code}");
            assert!(
                code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{code} is a low-cardinality label value"
            );
        }
        let sentences: std::collections::BTreeSet<&str> =
            codes.iter().map(|c| hint_text(c)).collect();
        assert_eq!(sentences.len(), codes.len(), "two codes share a sentence");
    }

    #[test]
    fn sentences_carry_the_detail() {
        assert_eq!(
            hint_sentence("network_retry", None),
            hint_text("network_retry")
        );
        let s = hint_sentence("click_id_other_param", Some("`s2`"));
        assert!(s.starts_with(hint_text("click_id_other_param")));
        assert!(s.ends_with("(here: `s2`)"));
    }

    #[test]
    fn every_reason_has_a_specific_hint() {
        for reason in Reason::ALL {
            assert_ne!(
                hint_text(reason.default_hint()),
                hint_text("no-such-code"),
                "{reason}"
            );
        }
    }
}
