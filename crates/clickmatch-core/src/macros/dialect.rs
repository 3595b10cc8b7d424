//! Macro dialects: how a network or tracker spells its postback macros, and how a literal macro
//! found in a postback compares with those spellings (the operator's hint says "wrong case" or
//! "misspelt" only against a documented spelling). Each network's dialect sits in its row of
//! [`crate::presets::PRESETS`].

use super::MacroForm;

/// A network's or tracker's macro dialect: the form its postback macros take and their exact
/// spellings (from the networks' documentation and support threads, see docs/architecture.md,
/// "Facts from real networks").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialect {
    /// How it writes macros, when it has one documented form.
    pub form: Option<MacroForm>,
    /// Exact spellings. A trailing `+` stands for a number (`sub+`: `sub1`, `sub2`, …), a
    /// trailing `*` for an optional number (`aff_sub*`: `aff_sub`, `aff_sub2`, …).
    pub spellings: &'static [&'static str],
    /// A macro to quote as an example of the right form.
    pub example: &'static str,
}

/// The generic names many platforms and documentation pages use, of no network in particular.
pub const GENERIC_DIALECT: Dialect = Dialect {
    form: None,
    spellings: &[
        "click_id", "clickid", "cid", "subid*", "sub_id*", "sub+", "txid", "payout",
    ],
    example: "{click_id}",
};

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

/// Compares `word` with the spellings of `dialects`.
pub fn spelling<'a>(
    word: &str,
    dialects: impl IntoIterator<Item = &'a Dialect> + Clone,
) -> Spelling {
    let specs = || {
        dialects
            .clone()
            .into_iter()
            .flat_map(|d| d.spellings.iter().copied())
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
