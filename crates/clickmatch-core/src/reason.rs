//! Why a postback was not attributed, most specific first, and the operator's fix for each.

use std::fmt;

use serde::Serialize;

/// Unattributed reasons, in DESIGN.md's order (most specific first).
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

/// The sentence an operator reads for a hint code.
pub fn hint_text(code: &str) -> &'static str {
    match code {
        "check_route_token_or_ip" => {
            "the postback's route token is wrong or missing, or its source IP is not allowed: \
             copy the URL again from `clickmatch postback-url` or add the network's IPs"
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
            "CAKE's `#s2#` was sent unencoded, so everything after it was cut off: URL-encode \
             it as `%23s2%23`"
        }
        "check_sub_param_passthrough" => {
            "the value is not a clickmatch click ID: the network truncates or rewrites the \
             sub-parameter, or another tracker's ID arrives here"
        }
        "forged_or_corrupted_id" => {
            "the click ID looks genuine but its signature does not verify: it was altered in \
             transit or forged"
        }
        "click_outside_window" => "the click is older than the offer's attribution window",
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
        _ => "see the clickmatch runbook for this hint code",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
