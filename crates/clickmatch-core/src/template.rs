//! URL templates: `{click_id}`, `{sub1}`…`{sub10}` and named tokens, URL-encoded.
//!
//! Two kinds share one renderer: a campaign's offer URL (the redirect target) and a campaign's
//! traffic-source postback URL (fired by the outbound dispatcher for each attributed
//! conversion). The target is always the configured template; only token values change, and
//! they are percent-encoded, so neither a visitor nor a network can steer the request elsewhere.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::records::Conversion;
use crate::subs::SubSet;

/// Characters left as they are in a substituted value (RFC 3986 unreserved).
const VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Tokens a template may use besides `sub1`…`sub10`.
pub const NAMED_TOKENS: &[&str] = &["click_id", "campaign", "offer_id", "source"];

/// Tokens a traffic-source postback template may use besides `sub1`…`sub10` (the visitor's
/// subs, as the click brought them: the traffic source's own click ID is usually one of them).
pub const POSTBACK_TOKENS: &[&str] = &[
    "click_id",
    "payout",
    "currency",
    "offer_id",
    "event",
    "status",
    "txid",
    "conversion_id",
    "campaign",
    "source",
];

/// Why a template is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("the offer URL must start with http:// or https://")]
    Scheme,
    #[error("the offer URL has an unclosed '{{'")]
    Unclosed,
    #[error("unknown token {{{0}}} (known: click_id, campaign, offer_id, source, sub1..sub10)")]
    UnknownToken(String),
    #[error("tokens may only stand in the path or query, never in the host: the redirect target must be fixed")]
    TokenInHost,
    #[error("the offer URL never passes {{click_id}}, so no conversion could be attributed")]
    NoClickId,
    #[error("unknown token {{{0}}} in the postback URL (known: sub1..sub10, click_id, payout, currency, offer_id, event, status, txid, conversion_id, campaign, source)")]
    UnknownPostbackToken(String),
    #[error("the postback URL passes none of {{sub1}}..{{sub10}} or {{click_id}}, so the traffic source could not tell which click converted")]
    NoClickReference,
}

/// No token may decide where a request goes: scheme, host and port are the configured text
/// (values are percent-encoded, but `.` and `-` are not, so `https://{sub1}/` would let a
/// visitor pick the host — an open redirect).
fn fixed_authority(template: &str) -> Result<(), TemplateError> {
    let after_scheme = template
        .split_once("://")
        .map_or(template, |(_, rest)| rest);
    let authority_end = after_scheme
        .find(['/', '?', '#'])
        .unwrap_or(after_scheme.len());
    let authority = &after_scheme[..authority_end];
    if authority.is_empty() || authority.contains('{') || authority.contains('}') {
        return Err(TemplateError::TokenInHost);
    }
    Ok(())
}

/// Checks a template once, at configuration time.
pub fn validate(template: &str) -> Result<(), TemplateError> {
    if !(template.starts_with("https://") || template.starts_with("http://")) {
        return Err(TemplateError::Scheme);
    }
    fixed_authority(template)?;
    let mut has_click_id = false;
    for token in tokens(template)? {
        if token == "click_id" {
            has_click_id = true;
        }
        if !is_known_token(token) {
            return Err(TemplateError::UnknownToken(token.to_string()));
        }
    }
    if !has_click_id {
        return Err(TemplateError::NoClickId);
    }
    Ok(())
}

/// Checks a traffic-source postback template (a campaign's `postback_url`) once, at
/// configuration time: http(s), every token known, and at least one token naming the click.
pub fn validate_postback(template: &str) -> Result<(), TemplateError> {
    if !(template.starts_with("https://") || template.starts_with("http://")) {
        return Err(TemplateError::Scheme);
    }
    fixed_authority(template)?;
    let mut names_click = false;
    for token in tokens(template)? {
        if token == "click_id" || sub_index(token).is_some() {
            names_click = true;
        } else if !POSTBACK_TOKENS.contains(&token) {
            return Err(TemplateError::UnknownPostbackToken(token.to_string()));
        }
    }
    if !names_click {
        return Err(TemplateError::NoClickReference);
    }
    Ok(())
}

/// The values of a traffic-source postback's tokens for one conversion version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostbackValues {
    pub click_id: String,
    pub payout: String,
    pub currency: String,
    pub offer_id: String,
    pub event: String,
    pub status: String,
    pub txid: String,
    pub conversion_id: String,
    pub campaign: String,
    pub source: String,
    /// `sub1`…`sub10` of the click (missing ones are empty).
    pub subs: Vec<String>,
}

impl PostbackValues {
    /// Values from a conversion and its click's `source` and subs. The payout is the exact
    /// decimal, without trailing zeros (`2.5`, not `2.500000`).
    pub fn new(conversion: &Conversion, source: &str, subs: &[String]) -> Self {
        PostbackValues {
            click_id: conversion.click_id.clone(),
            payout: conversion.payout.normalize().to_string(),
            currency: conversion.currency.clone(),
            offer_id: conversion.offer_id.clone(),
            event: conversion.event.clone(),
            status: conversion.status.clone(),
            txid: conversion.txid.clone(),
            conversion_id: conversion.conversion_id.clone(),
            campaign: conversion.campaign_id.clone(),
            source: source.to_string(),
            subs: subs.to_vec(),
        }
    }

    /// The raw value of `token`, `None` for an unknown one.
    pub fn get(&self, token: &str) -> Option<&str> {
        Some(match token {
            "click_id" => &self.click_id,
            "payout" => &self.payout,
            "currency" => &self.currency,
            "offer_id" => &self.offer_id,
            "event" => &self.event,
            "status" => &self.status,
            "txid" => &self.txid,
            "conversion_id" => &self.conversion_id,
            "campaign" => &self.campaign,
            "source" => &self.source,
            other => return sub_index(other).map(|i| self.subs.get(i).map_or("", String::as_str)),
        })
    }

    /// Values from a conversion alone: the subs it carries (others empty), no source. Enough
    /// for a template whose [`ClickTokens`] the conversion [`carries`](ClickTokens::carried_by).
    pub fn of_conversion(conversion: &Conversion) -> Self {
        PostbackValues::new(conversion, "", &conversion.subs.values)
    }

    /// What `template` takes from the click rather than from the conversion.
    pub fn click_tokens(template: &str) -> ClickTokens {
        let mut needs = ClickTokens::default();
        for token in tokens(template).unwrap_or_default() {
            if token == "source" {
                needs.source = true;
            } else if let Some(sub) = sub_index(token).and_then(|i| SubSet::one(i as u8 + 1)) {
                needs.subs = needs.subs.union(sub);
            }
        }
        needs
    }
}

/// The click's values a postback template uses: its subs and its `source` (the source its
/// campaign had when the click came; a conversion's own `source` is its campaign's when it
/// was joined, so it does not stand in for it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClickTokens {
    pub subs: SubSet,
    pub source: bool,
}

impl ClickTokens {
    /// Whether `conversion` holds all of them, so its click need not be looked up: no
    /// `source`, and every sub among those it carries.
    pub fn carried_by(self, conversion: &Conversion) -> bool {
        !self.source && conversion.subs.carried.contains(self.subs)
    }
}

/// Renders a traffic-source postback template for one conversion (values URL-encoded).
pub fn render_postback(template: &str, values: &PostbackValues) -> String {
    render(template, |token| values.get(token))
}

fn is_known_token(token: &str) -> bool {
    NAMED_TOKENS.contains(&token) || sub_index(token).is_some()
}

/// `sub1` → 0 … `sub10` → 9; nothing else (not `sub01`, `sub+1`, `sub11`).
pub fn sub_index(token: &str) -> Option<usize> {
    let digits = token.strip_prefix("sub")?;
    if digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: usize = digits.parse().ok()?;
    (1..=crate::records::SUB_COUNT).contains(&n).then(|| n - 1)
}

fn tokens(template: &str) -> Result<Vec<&str>, TemplateError> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        let end = after.find('}').ok_or(TemplateError::Unclosed)?;
        out.push(&after[..end]);
        rest = &after[end + 1..];
    }
    Ok(out)
}

/// Substitutes tokens; `lookup` returns a token's raw value (encoded here), unknown → empty.
pub fn render<'a>(template: &str, lookup: impl Fn(&str) -> Option<&'a str>) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        match after.find('}') {
            Some(end) => {
                let value = lookup(&after[..end]).unwrap_or("");
                out.extend(utf8_percent_encode(value, VALUE));
                rest = &after[end + 1..];
            }
            None => {
                // Validated templates never get here; keep the text as is.
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Percent-encodes one value for a query string.
pub fn encode_value(value: &str) -> String {
    utf8_percent_encode(value, VALUE).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subs::CarriedSubs;
    use proptest::prelude::*;

    #[test]
    fn substitutes_and_encodes() {
        let template = "https://net.example/aff_c?offer_id=7&aff_sub={click_id}&aff_sub2={sub1}";
        validate(template).unwrap();
        let url = render(template, |t| match t {
            "click_id" => Some("abc"),
            "sub1" => Some("a b&c=d/https://evil.example"),
            _ => None,
        });
        assert_eq!(
            url,
            "https://net.example/aff_c?offer_id=7&aff_sub=abc&aff_sub2=a%20b%26c%3Dd%2Fhttps%3A%2F%2Fevil.example"
        );
    }

    #[test]
    fn rejects_bad_templates() {
        assert_eq!(validate("ftp://x/{click_id}"), Err(TemplateError::Scheme));
        assert_eq!(
            validate("https://x/?a={click_id"),
            Err(TemplateError::Unclosed)
        );
        assert_eq!(
            validate("https://x/?a={click_id}&b={sub11}"),
            Err(TemplateError::UnknownToken("sub11".into()))
        );
        assert_eq!(validate("https://x/?a=1"), Err(TemplateError::NoClickId));
        for host_token in [
            "https://{sub1}/c?id={click_id}",
            "https://{sub1}.net.example/c?id={click_id}",
            "https://net.example:{sub1}/c?id={click_id}",
            "http://{click_id}",
            "https:///c?id={click_id}",
        ] {
            assert_eq!(
                validate(host_token),
                Err(TemplateError::TokenInHost),
                "{host_token}"
            );
        }
        assert_eq!(
            validate_postback("https://{sub1}/cb?c={sub1}"),
            Err(TemplateError::TokenInHost)
        );
    }

    fn conversion() -> Conversion {
        Conversion {
            click_id: "01m8b66tw9t968z636rg9cqbnt".into(),
            payout: "2.500000".parse().unwrap(),
            txid: "T 1&x".into(),
            ..Conversion::example()
        }
    }

    #[test]
    fn postback_templates_render_every_token() {
        let template = "https://ts.example/cb?clickid={sub1}&s2={sub2}&p={payout}&c={currency}\
                        &o={offer_id}&e={event}&st={status}&tx={txid}&cv={conversion_id}\
                        &cid={click_id}&cmp={campaign}&src={source}&s10={sub10}";
        validate_postback(template).unwrap();
        let subs = vec!["ts-click/1".to_string(), "b".to_string()];
        let values = PostbackValues::new(&conversion(), "push", &subs);
        let needs = PostbackValues::click_tokens(template);
        assert_eq!(
            needs,
            ClickTokens {
                subs: SubSet::parse(["sub1", "sub2", "sub10"]).unwrap(),
                source: true,
            }
        );
        assert_eq!(
            render_postback(template, &values),
            "https://ts.example/cb?clickid=ts-click%2F1&s2=b&p=2.5&c=USD&o=7&e=sale&st=approved\
             &tx=T%201%26x&cv=conv-1&cid=01m8b66tw9t968z636rg9cqbnt&cmp=demo&src=push&s10="
        );
        assert_eq!(
            PostbackValues::click_tokens("https://ts.example/?c={click_id}&p={payout}"),
            ClickTokens::default()
        );
    }

    #[test]
    fn a_conversion_carrying_the_subs_renders_without_its_click() {
        let mut carrying = conversion();
        carrying.subs = CarriedSubs::of(
            &["ts-1".into(), String::new(), "z".into()],
            SubSet::parse(["sub1", "sub2"]).unwrap(),
        );
        let sub1 =
            PostbackValues::click_tokens("https://ts.example/?c={sub1}&s2={sub2}&p={payout}");
        assert!(sub1.carried_by(&carrying));
        assert!(!sub1.carried_by(&conversion()));
        assert_eq!(
            render_postback(
                "https://ts.example/?c={sub1}&s2={sub2}&p={payout}",
                &PostbackValues::of_conversion(&carrying)
            ),
            "https://ts.example/?c=ts-1&s2=&p=2.5"
        );
        // sub3 is the click's but not carried; the source is always the click's.
        assert!(
            !PostbackValues::click_tokens("https://ts.example/?c={sub1}&z={sub3}")
                .carried_by(&carrying)
        );
        assert!(
            !PostbackValues::click_tokens("https://ts.example/?c={sub1}&s={source}")
                .carried_by(&carrying)
        );
        assert!(
            PostbackValues::click_tokens("https://ts.example/?c={click_id}")
                .carried_by(&conversion())
        );
    }

    #[test]
    fn postback_templates_are_checked() {
        assert_eq!(
            validate_postback("ftp://ts.example/?c={sub1}"),
            Err(TemplateError::Scheme)
        );
        assert_eq!(
            validate_postback("https://ts.example/?c={sub1}&x={aff_sub}"),
            Err(TemplateError::UnknownPostbackToken("aff_sub".into()))
        );
        assert_eq!(
            validate_postback("https://ts.example/?p={payout}"),
            Err(TemplateError::NoClickReference)
        );
        assert_eq!(
            validate_postback("https://ts.example/?c={sub1"),
            Err(TemplateError::Unclosed)
        );
        validate_postback("http://127.0.0.1:9/cb?c={click_id}").unwrap();
        let error = validate_postback("https://ts.example/?c={sub11}").unwrap_err();
        assert!(error.to_string().contains("sub11"), "{error}");
    }

    proptest! {
        #[test]
        fn visitor_values_never_change_the_host(sub in "\\PC{0,64}") {
            let url = render("https://net.example/c?s={sub1}&id={click_id}", |t| match t {
                "sub1" => Some(sub.as_str()),
                "click_id" => Some("x"),
                _ => None,
            });
            prop_assert!(url.starts_with("https://net.example/c?s="));
            let query = &url["https://net.example/c?s=".len()..];
            prop_assert_eq!(query.matches('&').count(), 1);
            prop_assert!(!query.contains('#'));
        }
    }
}
