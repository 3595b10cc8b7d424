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
        for dialect in DIALECTS {
            let Some((open_at, close_end, word_start, word_end)) = dialect.find_in(layer) else {
                continue;
            };
            // Widen to the whole family: `{{x}}`, `${x}`, `[[x]]`, `!!!x!!!`, `##x##`.
            let bytes = layer.as_bytes();
            let opener = dialect.open[0];
            let closer = dialect.close.first().copied();
            let mut start = open_at;
            while start > 0
                && (bytes[start - 1] == opener || (opener == b'{' && bytes[start - 1] == b'$'))
            {
                start -= 1;
            }
            let mut end = close_end;
            if let Some(closer) = closer {
                while end < bytes.len() && bytes[end] == closer {
                    end += 1;
                }
            }
            return Some(LiteralMacro {
                text: layer[start..end].to_string(),
                word: layer[word_start..word_end].to_string(),
                form: dialect.form,
                decodes,
            });
        }
    }
    None
}

/// A network's or tracker's macro dialect: the form its postback macros take and their exact
/// spellings (from the networks' documentation and support threads, see docs/architecture.md,
/// "Facts from real networks").
#[derive(Debug, Clone, Copy)]
pub struct NetworkMacros {
    /// Names an offer's `network` may use for it (lowercase, letters and digits only).
    pub names: &'static [&'static str],
    /// How it writes macros, when it has one documented form.
    pub form: Option<MacroForm>,
    /// Exact spellings. A trailing `+` stands for a number (`sub+`: `sub1`, `sub2`, …), a
    /// trailing `*` for an optional number (`aff_sub*`: `aff_sub`, `aff_sub2`, …).
    pub macros: &'static [&'static str],
    /// A macro to quote as an example of the right form.
    pub example: &'static str,
}

/// The dialects clickmatch knows by name, and last the generic names many platforms and
/// documentation pages use (no network is called by it).
pub const NETWORKS: &[NetworkMacros] = &[
    NetworkMacros {
        names: &["tune", "hasoffers"],
        form: Some(MacroForm::Braces),
        macros: &[
            "aff_sub*",
            "aff_click_id",
            "transaction_id",
            "offer_id",
            "payout",
            "aff_id",
            "source",
        ],
        example: "{aff_sub}",
    },
    NetworkMacros {
        names: &["cake"],
        form: Some(MacroForm::Hashes),
        macros: &["s+", "tid", "price", "oid", "leadid", "reqid"],
        example: "#s2#",
    },
    NetworkMacros {
        names: &["maxbounty"],
        form: Some(MacroForm::Hashes),
        macros: &["S+", "OFFID", "RATE"],
        example: "#S2#",
    },
    NetworkMacros {
        names: &["everflow"],
        form: Some(MacroForm::Braces),
        macros: &[
            "sub+",
            "transaction_id",
            "payout_amount",
            "sale_amount",
            "oid",
            "aid",
            "affid",
            "adv+",
        ],
        example: "{sub1}",
    },
    NetworkMacros {
        names: &["affise"],
        form: Some(MacroForm::Braces),
        macros: &[
            "clickid",
            "sub+",
            "sum",
            "status",
            "goal",
            "offer_id",
            "transactionid",
            "currency",
        ],
        example: "{clickid}",
    },
    NetworkMacros {
        names: &["impact", "impactradius"],
        form: Some(MacroForm::Braces),
        macros: &[
            "SubId+",
            "Payout",
            "Amount",
            "ActionId",
            "OID",
            "Currency",
            "Status",
            "ActionStatus",
            "SharedId",
        ],
        example: "{SubId1}",
    },
    NetworkMacros {
        names: &["awin"],
        form: Some(MacroForm::Bangs),
        macros: &["clickref*", "awc", "linkid", "promotype", "companyname"],
        example: "!!!clickref!!!",
    },
    NetworkMacros {
        names: &["admitad"],
        form: None,
        macros: &[
            "subid*",
            "payment_sum",
            "order_id",
            "action_id",
            "status",
            "currency",
        ],
        example: "subid",
    },
    NetworkMacros {
        names: &["adcombo"],
        form: Some(MacroForm::Braces),
        macros: &["subid*", "payout", "status", "order_id"],
        example: "{subid}",
    },
    NetworkMacros {
        names: &["keitaro"],
        form: Some(MacroForm::Braces),
        macros: &[
            "subid", "sub_id_+", "status", "payout", "tid", "revenue", "currency",
        ],
        example: "{subid}",
    },
    NetworkMacros {
        names: &["voluum"],
        form: Some(MacroForm::Braces),
        macros: &["clickid", "payout", "txid", "var+"],
        example: "{clickid}",
    },
    NetworkMacros {
        names: &["binom"],
        form: Some(MacroForm::Braces),
        macros: &["clickid", "payout", "status"],
        example: "{clickid}",
    },
    NetworkMacros {
        names: &["redtrack"],
        form: Some(MacroForm::Braces),
        macros: &["clickid", "sum", "payout", "sub+"],
        example: "{clickid}",
    },
    NetworkMacros {
        names: &["prosper202", "p202"],
        form: Some(MacroForm::Brackets),
        macros: &["subid", "t202kw"],
        example: "[[subid]]",
    },
    NetworkMacros {
        names: &["clickbank"],
        form: None,
        macros: &["tid"],
        example: "tid",
    },
    NetworkMacros {
        names: &[],
        form: None,
        macros: &[
            "click_id", "clickid", "cid", "subid*", "sub_id*", "sub+", "txid", "payout",
        ],
        example: "{click_id}",
    },
];

/// The dialect of a network name (`"CAKE"`, `"TUNE"`, `"HasOffers"`, `"Prosper 202"`, …).
pub fn network(name: &str) -> Option<&'static NetworkMacros> {
    let key: String = name
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    NETWORKS.iter().find(|n| n.names.contains(&key.as_str()))
}

/// How a macro word relates to a set of documented spellings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spelling {
    /// Spelt exactly as documented.
    Exact,
    /// Documented, but in another letter case (`Sub5` for `sub5`, `subid1` for `SubId1`).
    WrongCase,
    /// Documented once `_`, `-` and `.` are ignored (`sub_5` for `sub5`).
    Misspelt,
    /// Not a documented macro.
    Unknown,
}

/// Compares `word` with the spellings of `networks`.
pub fn spelling<'a>(
    word: &str,
    networks: impl IntoIterator<Item = &'a NetworkMacros> + Clone,
) -> Spelling {
    let specs = || {
        networks
            .clone()
            .into_iter()
            .flat_map(|n| n.macros.iter().copied())
    };
    if specs().any(|spec| spec_matches(spec, word, false)) {
        return Spelling::Exact;
    }
    if specs().any(|spec| spec_matches(spec, word, true)) {
        return Spelling::WrongCase;
    }
    let loose = |s: &str| -> String {
        s.chars()
            .filter(|c| !matches!(c, '_' | '-' | '.'))
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    let word = loose(word);
    if specs().any(|spec| {
        let (base, marker) = split_spec(spec);
        let mut spec = loose(base);
        spec.push_str(marker);
        spec_matches(&spec, &word, false)
    }) {
        return Spelling::Misspelt;
    }
    Spelling::Unknown
}

fn split_spec(spec: &str) -> (&str, &str) {
    match spec.as_bytes().last() {
        Some(b'+') | Some(b'*') => spec.split_at(spec.len() - 1),
        _ => (spec, ""),
    }
}

fn spec_matches(spec: &str, word: &str, ignore_case: bool) -> bool {
    let (base, marker) = split_spec(spec);
    let prefix_ok = word.len() >= base.len()
        && word.is_char_boundary(base.len())
        && if ignore_case {
            word[..base.len()].eq_ignore_ascii_case(base)
        } else {
            &word[..base.len()] == base
        };
    if !prefix_ok {
        return false;
    }
    let digits = &word[base.len()..];
    let numbered = (1..=2).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
    match marker {
        "+" => numbered,
        "*" => digits.is_empty() || numbered,
        _ => digits.is_empty(),
    }
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
    is_bare_word(layer) || DIALECTS.iter().any(|d| d.occurs_in(layer))
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

/// What may start the word inside a delimiter pair.
#[derive(Clone, Copy)]
enum First {
    /// A letter or `_` (`#s2#`, `%sub1%`): digits would clash with real text.
    Letter,
    /// Any word character (`{0}` from format strings is a macro too).
    Any,
}

/// One delimiter form: `open` word `close`.
struct Dialect {
    open: &'static [u8],
    /// Empty for prefix-only forms (`$x`).
    close: &'static [u8],
    /// Spaces allowed between the delimiters and the word (`{{ click_id }}`).
    spaces: bool,
    first: First,
    /// `%x%` needs the percent-encoding check (see the module docs).
    percent: bool,
    form: MacroForm,
}

/// `{{x}}`, `${x}` and `{{{x}}}` contain `{x}`; `[[x]]`, `[[[x]]]` contain `[x]`; `##x##`
/// contains `#x#`; `!!!x!!!` contains `!!x!!`; so one entry covers each family.
const DIALECTS: &[Dialect] = &[
    Dialect {
        open: b"{",
        close: b"}",
        spaces: true,
        first: First::Any,
        percent: false,
        form: MacroForm::Braces,
    },
    Dialect {
        open: b"[",
        close: b"]",
        spaces: true,
        first: First::Letter,
        percent: false,
        form: MacroForm::Brackets,
    },
    Dialect {
        open: b"<",
        close: b">",
        spaces: true,
        first: First::Letter,
        percent: false,
        form: MacroForm::Angles,
    },
    Dialect {
        open: b"#",
        close: b"#",
        spaces: false,
        first: First::Letter,
        percent: false,
        form: MacroForm::Hashes,
    },
    Dialect {
        open: b"%",
        close: b"%",
        spaces: false,
        first: First::Letter,
        percent: true,
        form: MacroForm::Percents,
    },
    Dialect {
        open: b"@",
        close: b"@",
        spaces: false,
        first: First::Letter,
        percent: false,
        form: MacroForm::Ats,
    },
    Dialect {
        open: b"!!",
        close: b"!!",
        spaces: false,
        first: First::Letter,
        percent: false,
        form: MacroForm::Bangs,
    },
    Dialect {
        open: b"$",
        close: b"",
        spaces: false,
        first: First::Letter,
        percent: false,
        form: MacroForm::Dollar,
    },
];

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':')
}

fn skip_spaces(bytes: &[u8], mut at: usize) -> usize {
    while at < bytes.len() && (bytes[at] == b' ' || bytes[at] == b'\t') {
        at += 1;
    }
    at
}

impl Dialect {
    fn occurs_in(&self, layer: &str) -> bool {
        self.find_in(layer).is_some()
    }

    /// The first occurrence in `layer`: (start of the opening delimiter, end of the closing
    /// one, start of the word, end of the word).
    fn find_in(&self, layer: &str) -> Option<(usize, usize, usize, usize)> {
        let bytes = layer.as_bytes();
        // Computed at most once, and only for a `%x%` candidate whose word starts with hex.
        let mut reads_as_encoding: Option<bool> = None;
        let mut at = 0;
        while at + self.open.len() <= bytes.len() {
            if !bytes[at..].starts_with(self.open) {
                at += 1;
                continue;
            }
            let mut start = at + self.open.len();
            if self.spaces {
                start = skip_spaces(bytes, start);
            }
            let len = bytes[start..]
                .iter()
                .take_while(|&&b| is_word_byte(b))
                .count();
            let word = &bytes[start..start + len];
            let first_ok = match (self.first, word.first()) {
                (_, None) => false,
                (First::Any, Some(_)) => true,
                (First::Letter, Some(&b)) => b.is_ascii_alphabetic() || b == b'_',
            };
            if first_ok {
                let mut end = start + len;
                if self.spaces {
                    end = skip_spaces(bytes, end);
                }
                if bytes[end..].starts_with(self.close)
                    && (!self.percent
                        || !percent_word_is_encoding(word, layer, &mut reads_as_encoding))
                {
                    return Some((at, end + self.close.len(), start, start + len));
                }
            }
            at += 1;
        }
        None
    }
}

/// True when the word of a `%word%` candidate is better read as percent-encoding.
fn percent_word_is_encoding(word: &[u8], layer: &str, cache: &mut Option<bool>) -> bool {
    let hex_start = word.len() >= 2 && word[0].is_ascii_hexdigit() && word[1].is_ascii_hexdigit();
    if !hex_start {
        return false;
    }
    if word.len() == 2 {
        return true;
    }
    *cache
        .get_or_insert_with(|| matches!(percent_decode_str(layer).decode_utf8(), Ok(Cow::Owned(_))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::click_id::ClickIdSigner;
    use proptest::prelude::*;
    use ValueShape::{LiteralMacro, Missing, Value};

    #[test]
    fn dialects_of_real_networks() {
        let cases: &[(&str, ValueShape, &str)] = &[
            // TUNE / HasOffers
            ("{aff_sub}", LiteralMacro, "TUNE aff_sub"),
            ("{aff_sub2}", LiteralMacro, "TUNE aff_sub2"),
            ("{transaction_id}", LiteralMacro, "TUNE transaction_id"),
            ("{AFF_SUB}", LiteralMacro, "TUNE upper case"),
            // CAKE, MaxBounty (when URL-encoded so the fragment survives)
            ("#s2#", LiteralMacro, "CAKE s2"),
            ("#tid#", LiteralMacro, "CAKE tid"),
            ("#S2#", LiteralMacro, "MaxBounty S2"),
            ("%23s2%23", LiteralMacro, "CAKE s2 still encoded"),
            ("##s2##", LiteralMacro, "doubled hashes"),
            // Everflow
            ("{sub1}", LiteralMacro, "Everflow sub1"),
            ("{Sub5}", LiteralMacro, "Everflow wrong case"),
            ("{sub_5}", LiteralMacro, "Everflow wrong spelling"),
            (
                "{payout_amount}",
                LiteralMacro,
                "Everflow payout macro in the id slot",
            ),
            // Affise, Voluum, Binom, Keitaro, RedTrack
            ("{clickid}", LiteralMacro, "Affise/Voluum/Binom clickid"),
            ("{ClickID}", LiteralMacro, "mixed case clickid"),
            ("{subid}", LiteralMacro, "Keitaro subid"),
            ("{click_id}", LiteralMacro, "clickmatch's own token"),
            // Prosper202 and bracket families
            ("[[subid]]", LiteralMacro, "Prosper202"),
            ("[subid]", LiteralMacro, "single brackets"),
            ("[[[subid]]]", LiteralMacro, "triple brackets"),
            ("[[ subid ]]", LiteralMacro, "spaced brackets"),
            ("<click_id>", LiteralMacro, "angle brackets"),
            ("{{click_id}}", LiteralMacro, "double braces"),
            ("{{ click_id }}", LiteralMacro, "jinja spacing"),
            ("${click_id}", LiteralMacro, "shell style"),
            ("$clickid", LiteralMacro, "dollar prefix"),
            ("%clickid%", LiteralMacro, "percent delimited"),
            ("%CLICK_ID%", LiteralMacro, "percent delimited upper"),
            (
                "%aff_sub%",
                LiteralMacro,
                "percent delimited, hex-looking start",
            ),
            ("!!!clickid!!!", LiteralMacro, "bang delimited"),
            ("@clickid@", LiteralMacro, "at delimited"),
            // AdCombo and friends: URL-encoded once or twice more
            ("%7Bsubid%7D", LiteralMacro, "AdCombo encoded"),
            ("%7bsubid%7d", LiteralMacro, "AdCombo lowercase hex"),
            ("%7Bcid%7D", LiteralMacro, "encoded cid"),
            ("%257Bsub1%257D", LiteralMacro, "double encoded"),
            ("%5B%5Bsubid%5D%5D", LiteralMacro, "encoded Prosper202"),
            ("%24%7Bclick_id%7D", LiteralMacro, "encoded shell style"),
            ("%3Cclick_id%3E", LiteralMacro, "encoded angle brackets"),
            // Contained in a longer value
            ("abc{sub1}", LiteralMacro, "prefix then macro"),
            ("{sub1}-{sub2}", LiteralMacro, "two macros"),
            ("\"{click_id}\"", LiteralMacro, "quoted macro"),
            (" {click_id} ", LiteralMacro, "padded macro"),
            ("{0}", LiteralMacro, "format string"),
            // Bare template words
            ("REPLACE", LiteralMacro, "bare REPLACE"),
            ("CLICK_ID", LiteralMacro, "bare CLICK_ID"),
            ("CLICKID", LiteralMacro, "bare CLICKID"),
            ("click-id", LiteralMacro, "bare click-id"),
            ("SUBID", LiteralMacro, "bare SUBID"),
            ("aff_sub", LiteralMacro, "bare aff_sub"),
            ("sub1", LiteralMacro, "bare sub1"),
            ("'s2'", LiteralMacro, "bare quoted s2"),
            // Placeholders
            ("", Missing, "empty"),
            ("   ", Missing, "whitespace"),
            ("undefined", Missing, "javascript undefined"),
            ("NULL", Missing, "sql null"),
            ("None", Missing, "python none"),
            ("nil", Missing, "ruby nil"),
            ("(null)", Missing, "printf null"),
            ("N/A", Missing, "n/a"),
            ("-", Missing, "dash"),
            ("\"null\"", Missing, "quoted null"),
            ("''", Missing, "empty quotes"),
            ("%22undefined%22", Missing, "encoded quoted undefined"),
            ("%20", Missing, "encoded space"),
            ("%2520", Missing, "double encoded space"),
            // Values
            ("0123456789abcdefghjkmnpqrs", Value, "26 crockford chars"),
            ("0123456789ABCDEFGHJKMNPQRS", Value, "upper-case 26 chars"),
            ("12345", Value, "Prosper202 integer id"),
            ("a1b2c3d4e5f60718293a4b5c6d7e8f90", Value, "Everflow hex id"),
            ("AbCdEfGhIjKlMnOpQrStUvWxYz", Value, "Voluum mixed-case id"),
            ("%C3%A9t%C3%A9", Value, "double-encoded utf-8 is not %x%"),
            ("%C3%A9", Value, "double-encoded e-acute"),
            ("50%", Value, "lone percent"),
            ("user@example.com", Value, "single at sign"),
            ("#123#", Value, "digits between hashes"),
            ("[1]", Value, "digit in brackets"),
            ("$5", Value, "dollar amount"),
            ("{}", Value, "empty braces hold no word"),
            ("subway", Value, "a word that merely starts like sub"),
        ];
        assert!(cases.len() >= 40);
        for &(raw, expected, label) in cases {
            assert_eq!(shape(raw), expected, "{label}: {raw:?}");
        }
    }

    #[test]
    fn find_macro_names_the_macro_its_form_and_encoding() {
        let cases: &[(&str, &str, &str, MacroForm, usize)] = &[
            ("{aff_sub}", "{aff_sub}", "aff_sub", MacroForm::Braces, 0),
            (
                "x{{ click_id }}y",
                "{{ click_id }}",
                "click_id",
                MacroForm::Braces,
                0,
            ),
            (
                "${click_id}",
                "${click_id}",
                "click_id",
                MacroForm::Braces,
                0,
            ),
            ("#s2#", "#s2#", "s2", MacroForm::Hashes, 0),
            ("##S2##", "##S2##", "S2", MacroForm::Hashes, 0),
            ("[[subid]]", "[[subid]]", "subid", MacroForm::Brackets, 0),
            (
                "!!!clickref!!!",
                "!!!clickref!!!",
                "clickref",
                MacroForm::Bangs,
                0,
            ),
            ("%clickid%", "%clickid%", "clickid", MacroForm::Percents, 0),
            ("<click_id>", "<click_id>", "click_id", MacroForm::Angles, 0),
            ("$clickid", "$clickid", "clickid", MacroForm::Dollar, 0),
            ("%7Bsubid%7D", "{subid}", "subid", MacroForm::Braces, 1),
            ("%257Bsub1%257D", "{sub1}", "sub1", MacroForm::Braces, 2),
            (" REPLACE ", "REPLACE", "REPLACE", MacroForm::BareWord, 0),
        ];
        for &(raw, text, word, form, decodes) in cases {
            let found = find_macro(raw).unwrap_or_else(|| panic!("{raw}"));
            assert_eq!(
                found,
                super::LiteralMacro {
                    text: text.into(),
                    word: word.into(),
                    form,
                    decodes
                },
                "{raw}"
            );
        }
        assert_eq!(find_macro("0123456789abcdefghjkmnpqrs"), None);
        assert_eq!(find_macro("null"), None);
    }

    #[test]
    fn spellings_against_network_dialects() {
        let everflow = network("Everflow").unwrap();
        let impact = network("impact").unwrap();
        assert_eq!(network("Prosper 202").unwrap().example, "[[subid]]");
        assert_eq!(network("HasOffers").unwrap().example, "{aff_sub}");
        assert!(network("nonesuch").is_none());
        assert_eq!(spelling("sub5", [everflow]), Spelling::Exact);
        assert_eq!(spelling("Sub5", [everflow]), Spelling::WrongCase);
        assert_eq!(spelling("sub_5", [everflow]), Spelling::Misspelt);
        assert_eq!(spelling("subid1", [impact]), Spelling::WrongCase);
        assert_eq!(spelling("SubId1", [impact]), Spelling::Exact);
        assert_eq!(spelling("aff_sub", NETWORKS), Spelling::Exact);
        assert_eq!(spelling("aff_sub3", NETWORKS), Spelling::Exact);
        assert_eq!(spelling("AFF_SUB", NETWORKS), Spelling::WrongCase);
        assert_eq!(spelling("whatever", NETWORKS), Spelling::Unknown);
        assert_eq!(spelling("sub", [everflow]), Spelling::Unknown);
    }

    #[test]
    fn words_are_shorter_than_a_click_id() {
        // `shape` takes any 26-character ID-alphabet value for a value without looking.
        for word in PLACEHOLDER_WORDS.iter().chain(BARE_WORDS) {
            assert!(word.len() < crate::CLICK_ID_LEN, "{word}");
        }
    }

    #[test]
    fn decode_layers_stop_at_the_first_fixpoint_or_invalid_utf8() {
        assert_eq!(decode_layers("abc", 2).len(), 1);
        assert_eq!(decode_layers("%257B", 2), vec!["%257B", "%7B", "{"]);
        assert_eq!(decode_layers("%25257B", 2).len(), 3);
        assert_eq!(decode_layers("%aff_sub%", 2).len(), 1);
    }

    #[test]
    fn strips_nested_quotes_and_whitespace() {
        assert_eq!(strip_whitespace_and_quotes(" \"' x '\" "), "x");
        assert_eq!(strip_whitespace_and_quotes("\u{201C}x\u{201D}"), "x");
    }

    fn wrap(form: usize, word: &str) -> String {
        match form {
            0 => format!("{{{word}}}"),
            1 => format!("{{{{{word}}}}}"),
            2 => format!("${{{word}}}"),
            3 => format!("#{word}#"),
            4 => format!("##{word}##"),
            5 => format!("%{word}%"),
            6 => format!("<{word}>"),
            7 => format!("[{word}]"),
            8 => format!("[[{word}]]"),
            9 => format!("[[[{word}]]]"),
            10 => format!("!!!{word}!!!"),
            11 => format!("${word}"),
            _ => format!("@{word}@"),
        }
    }

    fn encode(text: &str) -> String {
        percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
    }

    proptest! {
        #[test]
        fn genuine_click_ids_are_values(time in 0u64..(1 << 48), random: u64, upper: bool) {
            let signer = ClickIdSigner::new(b"macros".to_vec(), vec![]);
            let mut text = signer.mint(time, random).to_string();
            if upper {
                text = text.to_ascii_uppercase();
            }
            prop_assert_eq!(shape(&text), Value);
        }

        #[test]
        fn every_dialect_in_any_case_and_encoding_is_a_macro(
            word in "[a-zA-Z_][a-zA-Z0-9_]{0,15}",
            form in 0usize..13,
            encodings in 0usize..3,
            prefix in "[a-z0-9]{0,4}",
        ) {
            // `%x%` with a hex-looking start is ambiguous by design (module docs).
            prop_assume!(!(form == 5 && word.len() >= 2
                && word.as_bytes()[..2].iter().all(u8::is_ascii_hexdigit)));
            let mut text = format!("{prefix}{}", wrap(form, &word));
            for _ in 0..encodings {
                text = encode(&text);
            }
            prop_assert_eq!(shape(&text), LiteralMacro, "{}", text);
        }

        #[test]
        fn arbitrary_input_never_panics(raw in "\\PC{0,64}") {
            let _ = shape(&raw);
        }

        #[test]
        fn find_macro_agrees_with_shape(
            raw in prop_oneof!["\\PC{0,40}", "[a-z]{0,3}[{#<\\[%!$@]{1,3}[a-zA-Z_][a-zA-Z0-9_]{0,8}[}#>\\]%!@]{0,3}"],
        ) {
            prop_assert_eq!(find_macro(&raw).is_some(), shape(&raw) == LiteralMacro, "{:?}", raw);
        }

        #[test]
        fn alphanumeric_values_longer_than_bare_words_are_values(raw in "[a-zA-Z0-9]{16,40}") {
            prop_assert_eq!(shape(&raw), Value);
        }
    }
}
