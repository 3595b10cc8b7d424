//! Reading an amount from a network's text ([`parse_amount`]): sign, currency marker and
//! number, each format read with certainty or refused with a reason.

use rust_decimal::Decimal;

use super::currency::Currency;
use super::symbols::{symbol_family, SYMBOLS};
use crate::macros;

/// Amounts must stay below this magnitude: `Decimal(18, 6)` holds 12 integer digits.
pub(super) const MAX_INT_DIGITS: i64 = 12;

/// Decimal places booked: the `Decimal(18, 6)` columns' scale.
pub const SCALE: u32 = 6;

/// An amount read from a network's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Amount {
    /// Rounded to [`SCALE`] places, otherwise with the scale sent (`2.50` stays `2.50`).
    pub value: Decimal,
    /// The currency the text itself names (`$`, `EUR`), if any.
    pub currency: Option<Currency>,
    /// The symbol it was named by (`"$"`, `"€"`), `None` for a code: a bare `$` or `¥` only
    /// says "some dollar" or "yen or yuan", so a currency parameter may refine it.
    pub symbol: Option<&'static str>,
}

impl Amount {
    /// Whether a currency named elsewhere (the postback's currency parameter) agrees with the
    /// text: same currency, or one of its symbol's family (`$` and CAD), or the text names none.
    pub fn admits(&self, other: Currency) -> bool {
        self.currency
            .is_none_or(|own| marker_admits((own, self.symbol), other))
    }
}

/// Why a text is not an amount. Each message names the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// A macro the network did not substitute (`{payout}`, `#price#`, `%7Bsum%7D`).
    #[error("`{0}` is a macro the network did not substitute, not an amount")]
    Macro(String),
    /// Not a number in any format networks use (`NaN`, `free`, `1.5 2.5`, `1,23,456`).
    #[error("`{0}` is not an amount")]
    Unparsed(String),
    /// A single `,` followed by three digits (`1,234`): thousands or decimal, no way to tell.
    #[error("`{0}` is ambiguous: its `,` may separate thousands or decimals")]
    Ambiguous(String),
    /// A magnitude of 10^12 or more: beyond the `Decimal(18, 6)` columns, and no real payout.
    #[error("`{0}` is out of range: amounts must be below 10^12")]
    OutOfRange(String),
    /// A three-letter currency word that is not an ISO 4217 code (`2.50 ABC`).
    #[error("`{raw}` names `{currency}`, which is not an ISO 4217 currency code")]
    UnknownCurrency {
        /// The whole text.
        raw: String,
        /// The three letters read as a code.
        currency: String,
    },
}

/// Reads an amount as networks send it; see the [`money`](crate::money) documentation for
/// the formats.
pub fn parse_amount(raw: &str) -> Result<Amount, AmountError> {
    match read_amount(raw.trim()) {
        Ok(amount) => Ok(amount),
        // Only once the text fails as an amount: `$2.50` would otherwise pass for a `$x` macro.
        Err(Refusal::Unparsed | Refusal::UnknownCurrency(_))
            if macros::find_macro(raw).is_some() =>
        {
            Err(AmountError::Macro(raw.to_string()))
        }
        Err(refusal) => Err(match refusal {
            Refusal::Unparsed => AmountError::Unparsed(raw.to_string()),
            Refusal::Ambiguous => AmountError::Ambiguous(raw.to_string()),
            Refusal::OutOfRange => AmountError::OutOfRange(raw.to_string()),
            Refusal::UnknownCurrency(currency) => AmountError::UnknownCurrency {
                raw: raw.to_string(),
                currency,
            },
        }),
    }
}

/// [`AmountError`] before the raw text is attached.
enum Refusal {
    Unparsed,
    Ambiguous,
    OutOfRange,
    UnknownCurrency(String),
}

/// A currency marker in the text: the currency and, when written as a symbol, the symbol.
type Marker = (Currency, Option<&'static str>);

fn read_amount(text: &str) -> Result<Amount, Refusal> {
    let start = text
        .find(|c: char| c.is_ascii_digit())
        .ok_or(Refusal::Unparsed)?;
    let end = start + number_len(&text[start..]);
    let (prefix, number, suffix) = (&text[..start], &text[start..end], &text[end..]);

    let (negative, before) = read_prefix(prefix)?;
    let after = read_marker(suffix.trim())?;
    let marker = match (before, after) {
        (Some(a), Some(b)) => Some(agree(a, b)?),
        (a, b) => a.or(b),
    };
    let value = read_number(number, negative, marker.is_some())?;
    Ok(Amount {
        value,
        currency: marker.map(|(currency, _)| currency),
        symbol: marker.and_then(|(_, symbol)| symbol),
    })
}

/// The length of the number starting `s` (which starts with a digit): digits, separators
/// between digits, and one exponent. It always ends with a digit.
fn number_len(s: &str) -> usize {
    let digit_at = |i: usize| s.as_bytes().get(i).is_some_and(u8::is_ascii_digit);
    let mut i = 0;
    let mut exponent = false;
    while let Some(c) = s[i..].chars().next() {
        let next = i + c.len_utf8();
        // A separator counts only between digits (`2.50.` ends at `0`).
        if c.is_ascii_digit() || (!exponent && group_kind(c).is_some() && digit_at(next)) {
            i = next;
        } else if !exponent && matches!(c, 'e' | 'E') {
            let sign = usize::from(matches!(s.as_bytes().get(next), Some(b'+' | b'-')));
            if !digit_at(next + sign) {
                break;
            }
            exponent = true;
            i = next + sign;
        } else {
            break;
        }
    }
    i
}

/// A separator's kind: `.`, `,`, `'` (both apostrophes) or ` ` (space, NBSP, narrow NBSP).
fn group_kind(c: char) -> Option<char> {
    match c {
        '.' | ',' => Some(c),
        '\'' | '\u{2019}' => Some('\''),
        ' ' | '\u{a0}' | '\u{202f}' => Some(' '),
        _ => None,
    }
}

/// The sign and currency before the number: `-`, `$`, `-$`, `$-`, `USD -`, `- EUR`.
fn read_prefix(prefix: &str) -> Result<(bool, Option<Marker>), Refusal> {
    let mut rest = prefix.trim();
    let leading = strip_sign(rest, str::strip_prefix);
    if let Some((_, tail)) = leading {
        rest = tail.trim_start();
    }
    let trailing = strip_sign(rest, str::strip_suffix);
    if let Some((_, head)) = trailing {
        rest = head.trim_end();
    }
    let negative = match (leading, trailing) {
        (Some(_), Some(_)) => return Err(Refusal::Unparsed),
        (Some((negative, _)), None) | (None, Some((negative, _))) => negative,
        (None, None) => false,
    };
    Ok((negative, read_marker(rest)?))
}

/// Strips one sign (`+`, `-` or the minus sign U+2212) at the end `strip` looks at.
fn strip_sign<'a>(
    s: &'a str,
    strip: fn(&'a str, char) -> Option<&'a str>,
) -> Option<(bool, &'a str)> {
    [('+', false), ('-', true), ('\u{2212}', true)]
        .into_iter()
        .find_map(|(sign, negative)| strip(s, sign).map(|rest| (negative, rest)))
}

/// A currency symbol or code, or nothing.
fn read_marker(token: &str) -> Result<Option<Marker>, Refusal> {
    if token.is_empty() {
        return Ok(None);
    }
    let lower = |s: &'static str| s.chars().flat_map(char::to_lowercase);
    if let Some(symbol) = SYMBOLS
        .iter()
        .find(|symbol| lower(symbol.text).eq(token.chars().flat_map(char::to_lowercase)))
    {
        return Ok(Some((symbol.family[0], Some(symbol.text))));
    }
    if token.len() == 3 && token.bytes().all(|b| b.is_ascii_alphabetic()) {
        return match Currency::parse(token) {
            Ok(currency) => Ok(Some((currency, None))),
            Err(_) => Err(Refusal::UnknownCurrency(token.to_string())),
        };
    }
    Err(Refusal::Unparsed)
}

/// A symbol before and a code after (`$2.50 CAD`) must name the same currency; the more
/// precise one is kept.
fn agree(a: Marker, b: Marker) -> Result<Marker, Refusal> {
    match (a.1, b.1) {
        (Some(_), None) if marker_admits(a, b.0) => Ok(b),
        (None, Some(_)) if marker_admits(b, a.0) => Ok(a),
        _ if a == b => Ok(a),
        _ => Err(Refusal::Unparsed),
    }
}

/// Whether a marker agrees with a currency named elsewhere: the same currency, or one of its
/// symbol's family (`$` and CAD). Shared by [`Amount::admits`] and [`agree`], so that the
/// text's two markers and the currency parameter agree by the same rule.
fn marker_admits((own, symbol): Marker, other: Currency) -> bool {
    own == other || symbol.is_some_and(|s| symbol_family(s).contains(&other))
}

/// Reads the number (see the table in the [`money`](crate::money) documentation) and rounds
/// it to [`SCALE`].
/// `formatted`: the text names a currency, so a person's locale formatted it, not a machine.
fn read_number(number: &str, negative: bool, formatted: bool) -> Result<Decimal, Refusal> {
    if let Some(at) = number.find(['e', 'E']) {
        let (mantissa, exponent) = (&number[..at], &number[at + 1..]);
        // Scientific notation comes from machines: a plain mantissa only.
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if !is_digits(int) || !(frac.is_empty() || is_digits(frac)) {
            return Err(Refusal::Unparsed);
        }
        let (sign, digits) = match exponent.strip_prefix('-') {
            Some(digits) => (-1, digits),
            None => (1, exponent.strip_prefix('+').unwrap_or(exponent)),
        };
        // Saturates: any exponent this large is out of range or rounds to 0 anyway.
        let exponent = digits
            .bytes()
            .fold(0i64, |e, b| (e * 10 + i64::from(b - b'0')).min(1_000_000));
        return to_decimal(int, frac, sign * exponent, negative);
    }

    let mut groups = Vec::new();
    let mut seps = Vec::new();
    let mut from = 0;
    for (i, c) in number.char_indices() {
        if let Some(kind) = group_kind(c) {
            groups.push(&number[from..i]);
            seps.push(kind);
            from = i + c.len_utf8();
        }
    }
    groups.push(&number[from..]);

    // `0,123` and `1234,567` cannot be thousands; `1,234` can be either.
    let could_be_thousands =
        |int: &str, frac: &str| frac.len() == 3 && int.len() <= 3 && !int.starts_with('0');
    let decimal = match seps.as_slice() {
        [] => false,
        // Machines write `1.234` for 1.234; with a currency, a de-DE or pt-BR locale may have
        // written it for 1234.
        ['.'] if formatted && could_be_thousands(groups[0], groups[1]) => {
            return Err(Refusal::Ambiguous);
        }
        ['.'] => true,
        [','] if could_be_thousands(groups[0], groups[1]) => return Err(Refusal::Ambiguous),
        [','] => true,
        [_] => false,
        [before @ .., last] => {
            if before.iter().any(|s| s != &before[0]) {
                return Err(Refusal::Unparsed);
            }
            if *last == before[0] {
                false
            } else if matches!(last, '.' | ',') {
                true
            } else {
                return Err(Refusal::Unparsed);
            }
        }
    };
    let (int_groups, frac) = if decimal {
        (&groups[..groups.len() - 1], groups[groups.len() - 1])
    } else {
        (&groups[..], "")
    };
    if let [first, rest @ ..] = int_groups {
        let grouped =
            first.len() <= 3 && !first.starts_with('0') && rest.iter().all(|g| g.len() == 3);
        if !rest.is_empty() && !grouped {
            return Err(Refusal::Unparsed);
        }
    }
    to_decimal(&int_groups.concat(), frac, 0, negative)
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// `int.frac × 10^exponent`, rounded half away from zero to [`SCALE`] places, with the sent
/// scale kept below that. Works on the digits, so no size of input can overflow.
fn to_decimal(int: &str, frac: &str, exponent: i64, negative: bool) -> Result<Decimal, Refusal> {
    let digits: Vec<u8> = int.bytes().chain(frac.bytes()).map(|b| b - b'0').collect();
    // Digits after the point once the exponent is applied (negative: trailing zeros to add).
    let frac_len = frac.len() as i64 - exponent;
    let scale = frac_len.clamp(0, i64::from(SCALE));
    let Some(first) = digits.iter().position(|&d| d != 0) else {
        return Ok(Decimal::new(0, scale as u32)); // `0e999`: zero whatever the exponent
    };
    let significant = &digits[first..];
    let int_len = significant.len() as i64 - frac_len;
    if int_len > MAX_INT_DIGITS {
        return Err(Refusal::OutOfRange);
    }
    // The digits of `value × 10^scale`; past them, the first dropped digit rounds.
    let keep = int_len + scale;
    let mut mantissa: i128 = 0;
    for i in 0..keep.max(0) {
        let digit = significant.get(i as usize).copied().unwrap_or(0);
        mantissa = mantissa * 10 + i128::from(digit);
    }
    let dropped = usize::try_from(keep).ok().and_then(|k| significant.get(k));
    if dropped.is_some_and(|&d| d >= 5) {
        mantissa += 1;
    }
    if mantissa >= 10i128.pow((MAX_INT_DIGITS + scale) as u32) {
        return Err(Refusal::OutOfRange);
    }
    let value = Decimal::from_i128_with_scale(mantissa, scale as u32);
    Ok(if negative && mantissa != 0 {
        -value
    } else {
        value
    })
}
