//! Offer-URL templates: `{click_id}`, `{sub1}`…`{sub10}` and named tokens, URL-encoded.
//!
//! The redirect target is always the configured template; only token values change, and they
//! are percent-encoded, so a visitor cannot steer the redirect elsewhere (no open redirect).

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Characters left as they are in a substituted value (RFC 3986 unreserved).
const VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Tokens a template may use besides `sub1`…`sub10`.
pub const NAMED_TOKENS: &[&str] = &["click_id", "campaign", "offer_id", "source"];

/// Why a template is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("the offer URL must start with http:// or https://")]
    Scheme,
    #[error("the offer URL has an unclosed '{{'")]
    Unclosed,
    #[error("unknown token {{{0}}} (known: click_id, campaign, offer_id, source, sub1..sub10)")]
    UnknownToken(String),
    #[error("the offer URL never passes {{click_id}}, so no conversion could be attributed")]
    NoClickId,
}

/// Checks a template once, at configuration time.
pub fn validate(template: &str) -> Result<(), TemplateError> {
    if !(template.starts_with("https://") || template.starts_with("http://")) {
        return Err(TemplateError::Scheme);
    }
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

fn is_known_token(token: &str) -> bool {
    NAMED_TOKENS.contains(&token) || sub_index(token).is_some()
}

/// `sub1` → 0 … `sub10` → 9.
pub fn sub_index(token: &str) -> Option<usize> {
    let n: usize = token.strip_prefix("sub")?.parse().ok()?;
    (1..=10).contains(&n).then(|| n - 1)
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
