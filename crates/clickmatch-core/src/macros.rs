//! Literal-macro and placeholder detection for raw postback values.
//!
//! Networks and trackers write their postback templates in many macro dialects. When a macro is
//! misspelt, in the wrong case, or reads a sub-parameter the offer link never filled, the network
//! sends the macro itself instead of a value. [`shape`] recognises those values so that the
//! postback ends as `unsubstituted_macro` (or `missing_click_id` for placeholder words) rather
//! than the vaguer `malformed_click_id`.
//!
//! Dialects recognised, in any case, anywhere inside the value, and also after URL-decoding the
//! value up to two more times (`%7Bsub1%7D`, `%257Bsub1%257D`):
//!
//! | form | seen at |
//! |---|---|
//! | `{x}`, `{{x}}`, `${x}` | TUNE/HasOffers `{aff_sub}`, Everflow `{sub1}`, Affise/Voluum/Binom `{clickid}`, Keitaro `{subid}`, Jinja-style `{{ x }}` |
//! | `#x#`, `##x##` | CAKE `#s2#`, MaxBounty `#S2#` |
//! | `%x%` | Windows-style templates (`%clickid%`) |
//! | `<x>`, `[x]`, `[[x]]`, `[[[x]]]` | Prosper202 `[[subid]]`, docs' `<click_id>` |
//! | `!!!x!!!`, `$x`, `@x@` | assorted trackers and ad servers |
//! | bare words | `REPLACE`, `CLICK_ID`, `CLICKID`, `SUBID`, `aff_sub`, `sub1`, … |
//!
//! `x` is an identifier-like word: ASCII letters, digits, `_`, `-`, `.`, `:` (inside brackets
//! and braces surrounding spaces are allowed, `{{ click_id }}`).
//!
//! Percent-delimited macros (`%x%`) and real percent-encoding look alike: `%C3%A9` is `é`, not
//! the macro `C3`. A `%x%` whose word starts with two hex digits is therefore a macro only when
//! the value does not read as valid percent-encoding (`%aff_sub%` decodes to invalid UTF-8, so
//! it is a macro; `%C3%A9t%C3%A9` decodes to `été`, so it is not), and never when the word is
//! exactly two hex digits.
//!
//! A genuine clickmatch click ID (26 ASCII alphanumerics) never matches any of these forms.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;

use delimiters::DELIMITERS;
pub use dialect::{spelling, Dialect, Spelling, GENERIC_DIALECT};

mod delimiters;
mod dialect;

/// What a raw parameter value is, before it is read as a click ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueShape {
    /// Empty, or a placeholder word (`undefined`, `null`, `none`, `nil`): counts as no click ID.
    Missing,
    /// A macro the network did not substitute (`{click_id}`, `#s2#`, `%7Bsub1%7D`, ...).
    LiteralMacro,
    /// Anything else: a value to read as a click ID.
    Value,
}

/// How many more times a value is URL-decoded when looking for macros and placeholders.
const EXTRA_DECODES: usize = 2;

/// Placeholder words (compared after trimming whitespace and quotes, case-insensitively) that
/// mean "no value": what JavaScript, PHP, Python, C's printf and spreadsheets print for nothing.
const PLACEHOLDER_WORDS: &[&str] = &[
    "undefined",
    "null",
    "none",
    "nil",
    "nan",
    "(null)",
    "(none)",
    "(nil)",
    "(undefined)",
    "n/a",
    "-",
    "--",
];

/// Bare template words, compared after trimming whitespace and quotes, lowercasing and removing
/// `_`, `-`, `.` and spaces (so `CLICK_ID`, `click-id` and `ClickId` all match `clickid`).
const BARE_WORDS: &[&str] = &[
    "replace",
    "replaceme",
    "replacethis",
    "replacewithclickid",
    "clickid",
    "clickidhere",
    "yourclickid",
    "insertclickid",
    "affclickid",
    "clid",
    "cid",
    "subid",
    "subidhere",
    "yoursubid",
    "affsub",
    "transactionid",
    "transid",
    "tid",
    "trackingid",
    "externalid",
    "visitorid",
    "placeholder",
    "macro",
];

/// Bare words followed by a number: `sub1`…, `aff_sub2`…, `subid3`…, `s1`…`s9`.
const BARE_NUMBERED: &[&str] = &["sub", "affsub", "subid", "s"];

/// Classifies a raw (already once URL-decoded) parameter value.
pub fn shape(raw: &str) -> ValueShape {
    // The common case, a clickmatch ID as sent: 26 characters of its alphabet hold no
    // delimiter, no escape and no placeholder or template word (all shorter).
    if crate::ClickId::parse(raw).is_ok() {
        return ValueShape::Value;
    }
    let layers = decode_layers(raw, EXTRA_DECODES);
    if layers.iter().any(|layer| is_placeholder(layer)) {
        return ValueShape::Missing;
    }
    if layers.iter().any(|layer| contains_macro(layer)) {
        return ValueShape::LiteralMacro;
    }
    ValueShape::Value
}

/// How a literal macro is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacroForm {
    /// `{x}`, `{{x}}`, `${x}`: TUNE, Everflow, Affise, Impact, Voluum, Keitaro, Binom, RedTrack.
    Braces,
    /// `[x]`, `[[x]]`, `[[[x]]]`: Prosper202.
    Brackets,
    /// `<x>`: documentation placeholders.
    Angles,
    /// `#x#`, `##x##`: CAKE, MaxBounty.
    Hashes,
    /// `%x%`.
    Percents,
    /// `@x@`.
    Ats,
    /// `!!!x!!!`: Awin.
    Bangs,
    /// `$x`.
    Dollar,
    /// A bare template word: `REPLACE`, `CLICK_ID`, `sub1`.
    BareWord,
}

/// A literal macro found in a value, for the operator's hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiteralMacro {
    /// The macro as it reads once decoded, delimiters included: `{Sub5}`, `#s2#`, `[[subid]]`.
    pub text: String,
    /// The word between the delimiters: `Sub5`, `s2`, `subid`.
    pub word: String,
    pub form: MacroForm,
    /// How many more percent-decodes it took to see the macro: 0 when it arrived as a macro,
    /// 1 or 2 when it arrived URL-encoded (`%7Bsubid%7D`: the network never saw braces).
    pub decodes: usize,
}

/// The first literal macro in `raw` (as [`shape`] would find it), with its form and word.
/// `None` when [`shape`] would not call `raw` a [`ValueShape::LiteralMacro`].
pub fn find_macro(raw: &str) -> Option<LiteralMacro> {
    let layers = decode_layers(raw, EXTRA_DECODES);
    if layers.iter().any(|layer| is_placeholder(layer)) {
        return None;
    }
    for (decodes, layer) in layers.iter().enumerate() {
        let layer = layer.as_ref();
        if is_bare_word(layer) {
            let word = strip_whitespace_and_quotes(layer);
            return Some(LiteralMacro {
                text: word.to_string(),
                word: word.to_string(),
                form: MacroForm::BareWord,
                decodes,
            });
        }
        for delimiters in DELIMITERS {
            if let Some((start, end, word_start, word_end)) = delimiters.find_widened(layer) {
                return Some(LiteralMacro {
                    text: layer[start..end].to_string(),
                    word: layer[word_start..word_end].to_string(),
                    form: delimiters.form,
                    decodes,
                });
            }
        }
    }
    None
}

/// `raw`, then `raw` percent-decoded once, twice, … up to `extra` more times, stopping when a
/// decode changes nothing or does not yield UTF-8. `+` is left alone: the HTTP layer already
/// turned the query's `+` into spaces, and a deeper `+` is a literal one.
pub(crate) fn decode_layers(raw: &str, extra: usize) -> Vec<Cow<'_, str>> {
    let mut layers = vec![Cow::Borrowed(raw)];
    for _ in 0..extra {
        let last = layers.last().map(|layer| layer.as_ref()).unwrap_or(raw);
        match percent_decode_str(last).decode_utf8() {
            Ok(Cow::Owned(next)) if next != last => layers.push(Cow::Owned(next)),
            _ => break,
        }
    }
    layers
}

/// Quote characters networks and copy-paste wrap values in.
pub(crate) fn is_quote(c: char) -> bool {
    matches!(
        c,
        '"' | '\'' | '`' | '\u{2018}' | '\u{2019}' | '\u{201C}' | '\u{201D}' | '«' | '»'
    )
}

/// `value` without surrounding whitespace and quotes (any number of layers of each).
pub(crate) fn strip_whitespace_and_quotes(value: &str) -> &str {
    let mut current = value;
    loop {
        let next = current
            .trim()
            .trim_start_matches(is_quote)
            .trim_end_matches(is_quote);
        if next.len() == current.len() {
            return current;
        }
        current = next;
    }
}

fn is_placeholder(layer: &str) -> bool {
    let core = strip_whitespace_and_quotes(layer);
    core.is_empty()
        || PLACEHOLDER_WORDS
            .iter()
            .any(|word| core.eq_ignore_ascii_case(word))
}

fn contains_macro(layer: &str) -> bool {
    is_bare_word(layer) || DELIMITERS.iter().any(|d| d.occurs_in(layer))
}

fn is_bare_word(layer: &str) -> bool {
    let normalized: String = strip_whitespace_and_quotes(layer)
        .chars()
        .filter(|c| !matches!(c, '_' | '-' | '.' | ' '))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if normalized.is_empty() {
        return false;
    }
    if BARE_WORDS.contains(&normalized.as_str()) {
        return true;
    }
    BARE_NUMBERED.iter().any(|prefix| {
        normalized.strip_prefix(prefix).is_some_and(|digits| {
            (1..=2).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
        })
    })
}

#[cfg(test)]
mod tests;
