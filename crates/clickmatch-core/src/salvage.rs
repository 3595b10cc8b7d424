//! Recovering a signed click ID from a mangled postback.
//!
//! clickmatch IDs carry an HMAC tag, so a genuine ID found anywhere in a postback can be trusted
//! even when the network mangled the template: surrounding whitespace or quotes, trailing junk
//! (`<id>&`, `<id>_123`, `<id>/`), a duplicated value (`<id>,<id>`), the rest of the query
//! encoded into the value (`<id>%26payout%3D1`), a second `?` (`<id>?payout=1`,
//! `x?cid=<id>`), an HTML-escaped key (`amp;cid`), a key that swallowed its value
//! (`cid=<id>` as a key), or the ID under another parameter (`s2=<id>`).
//!
//! Rules, chosen so that salvage can never attribute to the wrong click:
//! - A candidate is a *maximal* run of ASCII letters and digits that is exactly 26 characters
//!   long, or exactly 52 characters made of the same 26 twice. A genuine ID with letters or digits
//!   glued to it (`<id>0`, `x<id>`) is never cut out of the longer run.
//! - Each text is scanned as sent and percent-decoded up to two more times.
//! - A candidate counts only if [`ClickId::parse`] accepts it and the signer verifies it.
//! - The whole postback (the click-ID value, every other value, every key) must hold exactly one
//!   distinct verifying ID; the same ID seen several times counts once. Two different genuine
//!   IDs make the postback ambiguous: nothing is returned.
//! - At most [`MAX_CANDIDATES`] candidates are checked per postback; beyond that the postback is
//!   treated as hostile and nothing is returned.

use std::borrow::Cow;

use crate::click_id::{ClickId, ClickIdSigner, CLICK_ID_LEN};
use crate::macros::{decode_layers, strip_whitespace_and_quotes};

/// A click ID recovered from a mangled postback, with the hint code naming what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repaired {
    pub id: ClickId,
    /// Hint code (see [`crate::reason::hint_text`]).
    pub hint: &'static str,
}

/// A [`Repaired`] ID with where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Salvaged {
    pub repaired: Repaired,
    /// `None` when the ID came out of the click-ID value itself; else the key of the parameter
    /// whose key or value held it (e.g. `s2`, `amp;cid`), for the operator's message.
    pub found_in: Option<String>,
}

/// Hint codes salvage produces; each has a sentence in [`crate::reason::hint_text`].
pub mod hints {
    /// `" <id> "`, `"<id>"`, `%22<id>%22`.
    pub const WHITESPACE_OR_QUOTES: &str = "click_id_whitespace_or_quotes";
    /// `<ID>` upper-cased by the network.
    pub const CASE_CHANGED: &str = "click_id_case_changed";
    /// `<id>&`, `<id>_123`, `<id>/`, `id:<id>`.
    pub const TRAILING_JUNK: &str = "click_id_trailing_junk";
    /// `<id>,<id>`, `<id><id>`, or the click-ID parameter twice (`cid={x}&cid=<id>`).
    pub const DUPLICATED: &str = "click_id_duplicated";
    /// `<id>%26payout%3D1`: the rest of the query encoded into the value.
    pub const QUERY_IN_VALUE: &str = "click_id_query_in_value";
    /// `<id>?payout=1` or `x?cid=<id>`: a second `?` where `&` belongs.
    pub const SECOND_QUESTION_MARK: &str = "click_id_second_question_mark";
    /// `amp;cid=<id>`: `&amp;` copied from HTML.
    pub const HTML_ESCAPED_KEY: &str = "click_id_html_escaped_key";
    /// The key itself is `cid=<id>` (an encoded `=`) or the ID (`&<id>`).
    pub const KEY_CONTAINS_VALUE: &str = "click_id_key_contains_value";
    /// The ID under a parameter the route does not read, such as `s2`.
    pub const OTHER_PARAM: &str = "click_id_other_param";
    /// The value is the ID percent-encoded once more than it should be.
    pub const DOUBLE_ENCODED: &str = "click_id_double_encoded";

    /// Every code above.
    pub const ALL: &[&str] = &[
        WHITESPACE_OR_QUOTES,
        CASE_CHANGED,
        TRAILING_JUNK,
        DUPLICATED,
        QUERY_IN_VALUE,
        SECOND_QUESTION_MARK,
        HTML_ESCAPED_KEY,
        KEY_CONTAINS_VALUE,
        OTHER_PARAM,
        DOUBLE_ENCODED,
    ];
}

/// Most candidates checked (HMACs computed) per postback.
pub const MAX_CANDIDATES: usize = 256;

/// How many more times a text is percent-decoded while scanning.
const EXTRA_DECODES: usize = 2;

/// Looks for exactly one verifying click ID inside `value` (the click-ID parameter's value),
/// then in the other parameters and keys of `params`. `click_id_names` are the route's names
/// and aliases for the click-ID parameter (lowercase).
///
/// Returns `None` when nothing verifies, when two different IDs verify, and when `value` is
/// already a clean click ID (nothing to repair).
pub fn salvage(
    value: Option<&str>,
    params: &[(String, String)],
    click_id_names: &[String],
    signer: &ClickIdSigner,
) -> Option<Repaired> {
    salvage_located(value, params, click_id_names, signer).map(|found| found.repaired)
}

/// [`salvage`], also telling which parameter held the ID.
pub fn salvage_located(
    value: Option<&str>,
    params: &[(String, String)],
    click_id_names: &[String],
    signer: &ClickIdSigner,
) -> Option<Salvaged> {
    let mut search = Search {
        signer,
        checked: 0,
        ids: Vec::new(),
        best: None,
    };

    if let Some(value) = value {
        if ClickId::parse(value).is_ok_and(|id| signer.verify(id) && id.to_string() == value) {
            return None;
        }
        let layers = search.scan_layers(value)?;
        for id in distinct_ids(&layers) {
            search.offer(id, value_hint(&layers, id), 0, None);
        }
    }

    for (key, param_value) in params {
        let named = is_click_id_name(key, click_id_names);
        if named && Some(param_value.as_str()) == value {
            continue; // the click-ID value, scanned above
        }
        let key_layers = search.scan_layers(key)?;
        let value_layers = search.scan_layers(param_value)?;
        let key_ids = distinct_ids(&key_layers);
        for id in key_ids {
            search.offer(id, hints::KEY_CONTAINS_VALUE, 2, Some(key));
        }
        let value_ids = distinct_ids(&value_layers);
        if value_ids.is_empty() {
            continue;
        }
        let key_hint = if named {
            Some((hints::DUPLICATED, 5))
        } else {
            key_hint(key, click_id_names)
        };
        for id in value_ids {
            let (hint, rank) = key_hint
                .or_else(|| value_in_other_param_hint(&value_layers, id, click_id_names))
                .unwrap_or((hints::OTHER_PARAM, 6));
            search.offer(id, hint, rank, Some(key));
        }
    }

    search.finish()
}

/// One candidate occurrence in a text.
#[derive(Debug, Clone, Copy)]
struct Occurrence {
    id: ClickId,
    start: usize,
    end: usize,
    /// A 52-character run made of the ID twice.
    doubled: bool,
}

/// A text as sent and decoded, with the verified occurrences in each layer.
type Layers<'a> = Vec<(Cow<'a, str>, Vec<Occurrence>)>;

struct Search<'s> {
    signer: &'s ClickIdSigner,
    checked: usize,
    /// Distinct verified IDs seen anywhere.
    ids: Vec<ClickId>,
    /// The most specific finding for the first ID: (id, hint, rank, found_in). Lower rank wins.
    best: Option<(ClickId, &'static str, u8, Option<String>)>,
}

impl Search<'_> {
    /// Scans every decode layer of `text`; `None` when the candidate budget ran out.
    fn scan_layers<'a>(&mut self, text: &'a str) -> Option<Layers<'a>> {
        let mut out = Vec::new();
        for layer in decode_layers(text, EXTRA_DECODES) {
            let found = self.scan(&layer)?;
            out.push((layer, found));
        }
        Some(out)
    }

    fn scan(&mut self, text: &str) -> Option<Vec<Occurrence>> {
        let bytes = text.as_bytes();
        let mut found = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            if !bytes[at].is_ascii_alphanumeric() {
                at += 1;
                continue;
            }
            let start = at;
            while at < bytes.len() && bytes[at].is_ascii_alphanumeric() {
                at += 1;
            }
            let run = &text[start..at];
            let doubled = run.len() == 2 * CLICK_ID_LEN
                && run[..CLICK_ID_LEN].eq_ignore_ascii_case(&run[CLICK_ID_LEN..]);
            if run.len() != CLICK_ID_LEN && !doubled {
                continue;
            }
            self.checked += 1;
            if self.checked > MAX_CANDIDATES {
                return None;
            }
            if let Ok(id) = ClickId::parse(&run[..CLICK_ID_LEN]) {
                if self.signer.verify(id) {
                    found.push(Occurrence {
                        id,
                        start,
                        end: at,
                        doubled,
                    });
                }
            }
        }
        Some(found)
    }

    fn offer(&mut self, id: ClickId, hint: &'static str, rank: u8, found_in: Option<&str>) {
        if !self.ids.contains(&id) {
            self.ids.push(id);
        }
        let better = match &self.best {
            None => true,
            Some((best_id, _, best_rank, _)) => *best_id == id && rank < *best_rank,
        };
        if better {
            self.best = Some((id, hint, rank, found_in.map(str::to_string)));
        }
    }

    fn finish(self) -> Option<Salvaged> {
        if self.ids.len() != 1 {
            return None;
        }
        let (id, hint, _, found_in) = self.best?;
        Some(Salvaged {
            repaired: Repaired { id, hint },
            found_in,
        })
    }
}

fn distinct_ids(layers: &Layers<'_>) -> Vec<ClickId> {
    let mut ids: Vec<ClickId> = Vec::new();
    for occurrence in layers.iter().flat_map(|(_, found)| found) {
        if !ids.contains(&occurrence.id) {
            ids.push(occurrence.id);
        }
    }
    ids
}

/// The hint for `id`, found in the click-ID value itself.
fn value_hint(layers: &Layers<'_>, id: ClickId) -> &'static str {
    // The most decoded layer that still holds the ID shows the mangling most plainly.
    let Some((depth, text, found)) =
        layers
            .iter()
            .enumerate()
            .rev()
            .find_map(|(depth, (text, found))| {
                let found: Vec<Occurrence> = found.iter().copied().filter(|o| o.id == id).collect();
                (!found.is_empty()).then_some((depth, text.as_ref(), found))
            })
    else {
        return hints::TRAILING_JUNK;
    };
    let core = strip_whitespace_and_quotes(text);
    if core.eq_ignore_ascii_case(&id.to_string()) {
        return if core.len() != text.len() {
            hints::WHITESPACE_OR_QUOTES
        } else if depth > 0 {
            hints::DOUBLE_ENCODED
        } else {
            hints::CASE_CHANGED
        };
    }
    if found.len() >= 2 || found.iter().any(|o| o.doubled) {
        return hints::DUPLICATED;
    }
    let before = &text[..found[0].start];
    let after = &text[found[0].end..];
    let after_layers = decode_layers(after, EXTRA_DECODES);
    let after = after_layers.last().map(|a| a.as_ref()).unwrap_or(after);
    let question_then_equals = |s: &str| s.find('?').is_some_and(|q| s[q..].contains('='));
    if question_then_equals(after) || (before.ends_with('=') && before.contains('?')) {
        hints::SECOND_QUESTION_MARK
    } else if after.contains(['&', ';']) && after.contains('=') {
        hints::QUERY_IN_VALUE
    } else {
        hints::TRAILING_JUNK
    }
}

fn is_click_id_name(key: &str, click_id_names: &[String]) -> bool {
    let key = key.trim();
    click_id_names
        .iter()
        .any(|name| key.eq_ignore_ascii_case(name))
}

/// Prefixes that HTML escaping leaves in front of a key: `&amp;cid` arrives as `amp;cid`,
/// WordPress's `&#038;cid` as `#038;cid`.
const HTML_ESCAPES: &[&str] = &["amp;", "amp%3b", "#038;", "#38;", "#x26;"];

/// The hint when a key is a mangled click-ID name.
fn key_hint(key: &str, click_id_names: &[String]) -> Option<(&'static str, u8)> {
    let (rest, escaped) = strip_html_escapes(key.trim());
    if escaped && is_click_id_name(rest, click_id_names) {
        return Some((hints::HTML_ESCAPED_KEY, 1));
    }
    let unquestioned = rest.trim_start_matches('?');
    if unquestioned.len() != rest.len() && is_click_id_name(unquestioned, click_id_names) {
        return Some((hints::SECOND_QUESTION_MARK, 3));
    }
    None
}

/// `key` without leading HTML-escape remnants, and whether there were any.
pub(crate) fn strip_html_escapes(key: &str) -> (&str, bool) {
    let mut rest = key;
    let mut escaped = false;
    'strip: loop {
        for prefix in HTML_ESCAPES {
            if rest.len() >= prefix.len()
                && rest.is_char_boundary(prefix.len())
                && rest[..prefix.len()].eq_ignore_ascii_case(prefix)
            {
                rest = &rest[prefix.len()..];
                escaped = true;
                continue 'strip;
            }
        }
        return (rest, escaped);
    }
}

/// The hint for `id` found in the value of a parameter that is not the click-ID one: a query
/// string inside it naming a click-ID parameter (`x?cid=<id>`, `1&cid=<id>`), else a plain
/// other parameter.
fn value_in_other_param_hint(
    layers: &Layers<'_>,
    id: ClickId,
    click_id_names: &[String],
) -> Option<(&'static str, u8)> {
    for (text, found) in layers.iter().rev() {
        let Some(occurrence) = found.iter().find(|o| o.id == id) else {
            continue;
        };
        let before = &text[..occurrence.start];
        // `name=` right before the ID, and what separates it from the text before.
        let Some(before_eq) = before.strip_suffix('=') else {
            continue;
        };
        let Some(separator_at) = before_eq.rfind(['?', '&']) else {
            continue;
        };
        let (name, html) = strip_html_escapes(&before_eq[separator_at + 1..]);
        if !is_click_id_name(name, click_id_names) {
            continue;
        }
        return Some(match before_eq.as_bytes()[separator_at] {
            _ if html => (hints::HTML_ESCAPED_KEY, 1),
            b'?' => (hints::SECOND_QUESTION_MARK, 3),
            _ => (hints::QUERY_IN_VALUE, 4),
        });
    }
    None
}

#[cfg(test)]
mod tests;
