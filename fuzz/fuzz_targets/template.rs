//! URL templates: validation never panics; substitution of a valid offer template with any
//! values yields a URL that starts with the template's own scheme and host part (values are
//! encoded, so they can never move the target: no open redirect).
//!
//! Input: `template \n value` (the value substituted for every token).
#![no_main]

use clickmatch_core::template;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (tmpl, value) = text.split_once('\n').unwrap_or((text, "v"));
    let _ = template::validate_postback(tmpl);
    let _ = template::PostbackValues::click_tokens(tmpl);
    if template::validate(tmpl).is_err() {
        return;
    }
    let rendered = template::render(tmpl, |_| Some(value));
    // Everything before the first token is kept verbatim: scheme and host come from the
    // configuration, never from a value.
    let fixed = tmpl.split('{').next().unwrap_or_default();
    assert!(rendered.starts_with(fixed), "{rendered:?} does not start with {fixed:?}");
    let encoded = template::encode_value(value);
    assert!(encoded
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.~%".contains(&b)));
});
