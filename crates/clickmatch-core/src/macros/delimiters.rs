//! The delimiter forms of literal macros (`{x}`, `[x]`, `#x#`, `%x%`, ...) and how to find one
//! in a value. Which forms exist and why `%x%` needs care is in the [`super`] module docs.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;

use super::MacroForm;

/// What may start the word inside a delimiter pair.
#[derive(Clone, Copy)]
enum First {
    /// A letter or `_` (`#s2#`, `%sub1%`): digits would clash with real text.
    Letter,
    /// Any word character (`{0}` from format strings is a macro too).
    Any,
}

/// One delimiter form: `open` word `close`.
pub(super) struct Delimiters {
    open: &'static [u8],
    /// Empty for prefix-only forms (`$x`).
    close: &'static [u8],
    /// Spaces allowed between the delimiters and the word (`{{ click_id }}`).
    spaces: bool,
    first: First,
    /// `%x%` needs the percent-encoding check (see the `macros` module docs).
    percent: bool,
    pub(super) form: MacroForm,
}

/// `{{x}}`, `${x}` and `{{{x}}}` contain `{x}`; `[[x]]`, `[[[x]]]` contain `[x]`; `##x##`
/// contains `#x#`; `!!!x!!!` contains `!!x!!`; so one entry covers each family.
pub(super) const DELIMITERS: &[Delimiters] = &[
    Delimiters {
        open: b"{",
        close: b"}",
        spaces: true,
        first: First::Any,
        percent: false,
        form: MacroForm::Braces,
    },
    Delimiters {
        open: b"[",
        close: b"]",
        spaces: true,
        first: First::Letter,
        percent: false,
        form: MacroForm::Brackets,
    },
    Delimiters {
        open: b"<",
        close: b">",
        spaces: true,
        first: First::Letter,
        percent: false,
        form: MacroForm::Angles,
    },
    Delimiters {
        open: b"#",
        close: b"#",
        spaces: false,
        first: First::Letter,
        percent: false,
        form: MacroForm::Hashes,
    },
    Delimiters {
        open: b"%",
        close: b"%",
        spaces: false,
        first: First::Letter,
        percent: true,
        form: MacroForm::Percents,
    },
    Delimiters {
        open: b"@",
        close: b"@",
        spaces: false,
        first: First::Letter,
        percent: false,
        form: MacroForm::Ats,
    },
    Delimiters {
        open: b"!!",
        close: b"!!",
        spaces: false,
        first: First::Letter,
        percent: false,
        form: MacroForm::Bangs,
    },
    Delimiters {
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

impl Delimiters {
    pub(super) fn occurs_in(&self, layer: &str) -> bool {
        self.find_in(layer).is_some()
    }

    /// The first occurrence in `layer`, widened to its whole family (`{{x}}`, `${x}`, `[[x]]`,
    /// `!!!x!!!`, `##x##`): (start of the opening delimiters, end of the closing ones, start of
    /// the word, end of the word).
    pub(super) fn find_widened(&self, layer: &str) -> Option<(usize, usize, usize, usize)> {
        let (open_at, close_end, word_start, word_end) = self.find_in(layer)?;
        let bytes = layer.as_bytes();
        let opener = self.open[0];
        let mut start = open_at;
        while start > 0
            && (bytes[start - 1] == opener || (opener == b'{' && bytes[start - 1] == b'$'))
        {
            start -= 1;
        }
        let mut end = close_end;
        if let Some(&closer) = self.close.first() {
            while end < bytes.len() && bytes[end] == closer {
                end += 1;
            }
        }
        Some((start, end, word_start, word_end))
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
