//! Money as networks send it: ISO 4217 currencies, payout and click-cost amounts.
//!
//! A network substitutes a payout into its postback template in whatever form its platform,
//! or the advertiser's shop behind it, prints: `1.50`, `1,5`, `$2.50`, `2.50USD`, `1.234,56 €`,
//! `1e-6` from a JSON body, or the macro itself when the template is wrong. Every amount here
//! is either read with certainty or refused with a reason ([`AmountError`]); the booking
//! functions ([`book_payout`], [`book_cost`]) keep the raw text and turn the reason into a
//! [`MoneyIssue`], so that nothing unreadable silently becomes a payout of 0.
//!
//! # Reading an amount ([`parse_amount`])
//!
//! Surrounding whitespace, a leading `+` or `-` (before or after a currency prefix: `-$2.50`,
//! `$-2.50`), and one currency marker before or after the number, with or without a space
//! (`$2.50`, `2.50USD`, `EUR 3`, `3 €`), are accepted. Both a symbol and a code may appear when
//! they agree (`$2.50 USD`, `$2.50 CAD`). Then the number:
//!
//! | text | reads as | why |
//! |---|---|---|
//! | `1.5`, `1.234`, `0.123` | decimal point | machine-formatted values (JSON, PHP, SQL) use `.`: a lone `.` is the decimal point |
//! | `€1.234`, `1.234 EUR`, `R$ 12.345` | **ambiguous** | with a currency a person's locale wrote it, and de-DE or pt-BR write 1234 so |
//! | `1,5`, `1,50`, `0,123`, `1,2345`, `1234,567` | decimal comma | not three digits after, or a first group no thousands separator could produce |
//! | `1,234`, `12,345`, `123,456` | **ambiguous** | one `,` followed by exactly three digits: 1234 in English, 1.234 in German |
//! | `1,234,567`, `1.234.567`, `1 234`, `1'234` | thousands | a separator repeated, or one that is never a decimal point (space, NBSP, narrow NBSP, `'`, `’`) |
//! | `1,234.56`, `1.234,56`, `1 234,56`, `1'234.56` | last separator is the decimal one | the other separator must group the integer part in threes |
//! | `1e-6`, `1.5E3` | scientific | what JSON encoders print for small and large floats; the mantissa must be plain (`1.5`, not `1,5`) |
//!
//! Refused: macros (`{payout}`, `#price#`, `[[payout]]`, `%7Bsum%7D`, `$payout`), words
//! (`NaN`, `inf`, `Infinity`, `null`, `free`), two numbers (`1.5 2.5`, `1.5/2`), separators
//! that do not group in threes (`1,23,456` Indian lakh grouping, `12,34.5`), accounting
//! parentheses (`(2.50)`), ambiguous symbols (`R`, `kr`, `Rs`), three-letter words that are not
//! codes (`2.50 ABC`, [`AmountError::UnknownCurrency`]) and magnitudes of 10^12 or more
//! (outside the `Decimal(18, 6)` columns).
//!
//! # Rounding
//!
//! To 6 decimal places (the columns are `Decimal(18, 6)`), half away from zero: commercial
//! rounding, what a network's dashboard or a spreadsheet shows for the same amount
//! (`0.0000005` → `0.000001`, `-0.0000005` → `-0.000001`). The sent scale is otherwise kept
//! (`2.50` stays `2.50`).
//!
//! # Negative amounts
//!
//! Read and booked as sent: a network's reversal or clawback (`-2.50`, `-$2.50`). The
//! conversion's status decides whether it counts as revenue; a negative amount on a revenue
//! status reduces revenue. A click cost, however, is never negative (a click never pays us):
//! [`book_cost`] refuses one.
//!
//! # Currency
//!
//! A currency parameter that is a valid code wins over the text's own marker; a bare `$` or
//! `¥` in the text only says "some dollar" or "yen or yuan", so it agrees with any currency of
//! its family (the `SYMBOLS` table lists them). Costs book the currency their text names, since that is what
//! the source charged.

use std::fmt;
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::macros;
use crate::model::PayoutModel;

/// Active ISO 4217 currency codes (SIX "List One"), sorted so that lookups can binary-search.
///
/// Left out on purpose: the X-codes that are not money one is paid in (gold `XAU`, silver `XAG`,
/// palladium `XPD`, platinum `XPT`, bond units `XBA`..`XBD`, SDR `XDR`, Sucre `XSU`, ADB unit
/// `XUA`, testing `XTS`, "no currency" `XXX`) and withdrawn codes (`HRK`, `VEF`, `MRO`, `STD`,
/// ...). Kept: the real X-currencies (`XAF`, `XOF`, `XCD`, `XPF`, `XCG`), the fund codes
/// (`BOV`, `CHE`, `CHW`, `CLF`, `COU`, `MXV`, `USN`, `UYI`, `UYW`) since they are on the active
/// list, and the old code of a currency still in its changeover (`ANG`/`XCG`, `SLL`/`SLE`,
/// `ZWL`/`ZWG`, `CUC`), since networks lag behind ISO.
#[rustfmt::skip]
const ISO_4217: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
    "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BOV", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD",
    "CAD", "CDF", "CHE", "CHF", "CHW", "CLF", "CLP", "CNY", "COP", "COU", "CRC", "CUC", "CUP",
    "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP",
    "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS",
    "INR", "IQD", "IRR", "ISK", "JMD", "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW",
    "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD",
    "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MXV", "MYR", "MZN", "NAD", "NGN",
    "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG", "QAR",
    "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SLL",
    "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY",
    "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "USN", "UYI", "UYU", "UYW", "UZS", "VED", "VES",
    "VND", "VUV", "WST", "XAF", "XCD", "XCG", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWG", "ZWL",
];

/// A validated ISO 4217 code, upper case (`USD`).
///
/// Three bytes rather than a `String`: it is `Copy` and compares cheaply, and it can only be
/// built from [`Currency::parse`] or the constants, so it always names an active currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency([u8; 3]);

/// Why a text is not a currency code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CurrencyError {
    /// Nothing but whitespace: callers usually treat this as "no currency" before parsing.
    #[error("empty currency code")]
    Empty,
    /// Not an active ISO 4217 code (a typo, a word, a macro, a withdrawn or non-money code).
    #[error("`{0}` is not an ISO 4217 currency code")]
    Unknown(String),
}

impl Currency {
    /// US dollar: what most networks pay in, and the default of a route that names none.
    pub const USD: Currency = Currency(*b"USD");
    /// Euro.
    pub const EUR: Currency = Currency(*b"EUR");
    /// Pound sterling.
    pub const GBP: Currency = Currency(*b"GBP");
    /// Canadian dollar.
    pub const CAD: Currency = Currency(*b"CAD");
    /// Australian dollar.
    pub const AUD: Currency = Currency(*b"AUD");
    /// Japanese yen.
    pub const JPY: Currency = Currency(*b"JPY");
    /// Chinese yuan.
    pub const CNY: Currency = Currency(*b"CNY");

    /// The code, upper case (`USD`).
    pub fn as_str(&self) -> &str {
        // Only built from the ASCII list above or the ASCII constants.
        std::str::from_utf8(&self.0).expect("a Currency holds ASCII letters")
    }

    /// Reads a currency code: surrounding whitespace is ignored and any case is accepted
    /// (`usd`, `Usd`), since networks send what their operators typed.
    pub fn parse(raw: &str) -> Result<Currency, CurrencyError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(CurrencyError::Empty);
        }
        let bytes = trimmed.as_bytes();
        if bytes.len() == 3 && bytes.iter().all(u8::is_ascii_alphabetic) {
            let upper = [
                bytes[0].to_ascii_uppercase(),
                bytes[1].to_ascii_uppercase(),
                bytes[2].to_ascii_uppercase(),
            ];
            if ISO_4217
                .binary_search_by(|code| code.as_bytes().cmp(&upper[..]))
                .is_ok()
            {
                return Ok(Currency(upper));
            }
        }
        Err(CurrencyError::Unknown(trimmed.to_string()))
    }
}

impl FromStr for Currency {
    type Err = CurrencyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::parse(s)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // An owned String, not &str: borrowing fails for readers and escaped JSON strings.
        let raw = String::deserialize(deserializer)?;
        Currency::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// Amounts must stay below this magnitude: `Decimal(18, 6)` holds 12 integer digits.
const MAX_INT_DIGITS: i64 = 12;

/// Decimal places booked: the `Decimal(18, 6)` columns' scale.
pub const SCALE: u32 = 6;

/// A currency symbol as networks print it, and its family: the currency it is read as
/// (first), then the others a currency parameter may name without a conflict.
struct Symbol {
    text: &'static str,
    family: &'static [Currency],
}

const fn code(bytes: &[u8; 3]) -> Currency {
    Currency(*bytes)
}

/// Every currency written with a bare `$`: the dollars and pesos.
#[rustfmt::skip]
const DOLLARS: &[Currency] = &[
    Currency::USD, code(b"CAD"), code(b"AUD"), code(b"NZD"), code(b"SGD"), code(b"HKD"),
    code(b"TWD"), code(b"MXN"), code(b"ARS"), code(b"CLP"), code(b"COP"), code(b"CUP"),
    code(b"DOP"), code(b"UYU"), code(b"BSD"), code(b"BBD"), code(b"BZD"), code(b"BMD"),
    code(b"BND"), code(b"FJD"), code(b"GYD"), code(b"JMD"), code(b"KYD"), code(b"LRD"),
    code(b"NAD"), code(b"SBD"), code(b"SRD"), code(b"TTD"), code(b"XCD"),
];

/// Symbols read as a currency, compared case-insensitively. Left out as ambiguous: `R` (ZAR,
/// or BRL's `R$` cut short), `kr` (SEK, NOK, DKK, ISK), `Rs` (INR, PKR, LKR, NPR), `Fr`.
#[rustfmt::skip]
const SYMBOLS: &[Symbol] = &[
    // `$` alone is USD, as in CLDR's English data, where the other dollars are `CA$`, `A$`...
    Symbol { text: "$", family: DOLLARS },
    Symbol { text: "US$", family: &[Currency::USD] },
    // `C$` is also the Nicaraguan córdoba's symbol.
    Symbol { text: "C$", family: &[Currency::CAD, code(b"NIO")] },
    Symbol { text: "CA$", family: &[Currency::CAD] },
    Symbol { text: "A$", family: &[Currency::AUD] },
    Symbol { text: "AU$", family: &[Currency::AUD] },
    Symbol { text: "NZ$", family: &[code(b"NZD")] },
    Symbol { text: "HK$", family: &[code(b"HKD")] },
    Symbol { text: "S$", family: &[code(b"SGD")] },
    Symbol { text: "MX$", family: &[code(b"MXN")] },
    Symbol { text: "NT$", family: &[code(b"TWD")] },
    Symbol { text: "R$", family: &[code(b"BRL")] },
    Symbol { text: "€", family: &[Currency::EUR] },
    // The pound sterling and the pounds pegged to it.
    Symbol { text: "£", family: &[Currency::GBP, code(b"GIP"), code(b"FKP"), code(b"SHP")] },
    // `¥` is both the yen and the yuan: read as JPY, as in CLDR's English data (where the
    // yuan is `CN¥`), but a `CNY` currency parameter agrees with it.
    Symbol { text: "¥", family: &[Currency::JPY, Currency::CNY] },
    Symbol { text: "￥", family: &[Currency::JPY, Currency::CNY] },
    Symbol { text: "CN¥", family: &[Currency::CNY] },
    Symbol { text: "₹", family: &[code(b"INR")] },
    Symbol { text: "₽", family: &[code(b"RUB")] },
    Symbol { text: "₩", family: &[code(b"KRW")] },
    Symbol { text: "₺", family: &[code(b"TRY")] },
    Symbol { text: "₴", family: &[code(b"UAH")] },
    Symbol { text: "₱", family: &[code(b"PHP")] },
    Symbol { text: "฿", family: &[code(b"THB")] },
    Symbol { text: "₫", family: &[code(b"VND")] },
    Symbol { text: "₪", family: &[code(b"ILS")] },
    Symbol { text: "₦", family: &[code(b"NGN")] },
    Symbol { text: "zł", family: &[code(b"PLN")] },
    Symbol { text: "Kč", family: &[code(b"CZK")] },
];

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
        match (self.currency, self.symbol) {
            (None, _) => true,
            (Some(own), _) if own == other => true,
            (Some(_), Some(symbol)) => symbol_family(symbol).contains(&other),
            (Some(_), None) => false,
        }
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

/// Reads an amount as networks send it; see the module documentation for the formats.
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
    let admits = |(own, symbol): Marker, other: Currency| {
        own == other || symbol.is_some_and(|s| symbol_family(s).contains(&other))
    };
    match (a.1, b.1) {
        (Some(_), None) if admits(a, b.0) => Ok(b),
        (None, Some(_)) if admits(b, a.0) => Ok(a),
        _ if a == b => Ok(a),
        _ => Err(Refusal::Unparsed),
    }
}

fn symbol_family(text: &str) -> &'static [Currency] {
    SYMBOLS
        .iter()
        .find(|symbol| symbol.text == text)
        .map_or(&[], |symbol| symbol.family)
}

/// Reads the number (see the module documentation's table) and rounds it to [`SCALE`].
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

/// Why a booked amount is not simply what was sent. Stored as its code in ClickHouse
/// (`payout_issue`, `cost_issue`), empty when all is well ([`issue_code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MoneyIssue {
    /// The payout is an unsubstituted macro ([`AmountError::Macro`]).
    PayoutMacro,
    /// The payout is not a number ([`AmountError::Unparsed`]).
    PayoutUnparsed,
    /// The payout is `1,234`-like ([`AmountError::Ambiguous`]).
    PayoutAmbiguous,
    /// The payout, or its revenue share, is 10^12 or more ([`AmountError::OutOfRange`]).
    PayoutOutOfRange,
    /// No payout under a model that needs one, and no `default_payout`.
    PayoutMissing,
    /// The currency parameter and the payout text name different currencies.
    CurrencyConflict,
    /// The currency parameter, or a code in the payout text, is not an ISO 4217 code.
    CurrencyUnknown,
    /// The click's cost parameter is an unsubstituted macro.
    CostMacro,
    /// The cost parameter is not a number, or is negative.
    CostUnparsed,
    /// The cost parameter is `1,234`-like.
    CostAmbiguous,
    /// The cost parameter is 10^12 or more.
    CostOutOfRange,
    /// The cost parameter names a code that is not ISO 4217.
    CostCurrencyUnknown,
}

impl MoneyIssue {
    /// Every issue, for documentation and for checking that codes round-trip.
    pub const ALL: &'static [MoneyIssue] = &[
        MoneyIssue::PayoutMacro,
        MoneyIssue::PayoutUnparsed,
        MoneyIssue::PayoutAmbiguous,
        MoneyIssue::PayoutOutOfRange,
        MoneyIssue::PayoutMissing,
        MoneyIssue::CurrencyConflict,
        MoneyIssue::CurrencyUnknown,
        MoneyIssue::CostMacro,
        MoneyIssue::CostUnparsed,
        MoneyIssue::CostAmbiguous,
        MoneyIssue::CostOutOfRange,
        MoneyIssue::CostCurrencyUnknown,
    ];

    /// The code stored in ClickHouse and shown in reports; never change one once stored.
    pub fn code(self) -> &'static str {
        match self {
            MoneyIssue::PayoutMacro => "payout_macro",
            MoneyIssue::PayoutUnparsed => "payout_unparsed",
            MoneyIssue::PayoutAmbiguous => "payout_ambiguous",
            MoneyIssue::PayoutOutOfRange => "payout_out_of_range",
            MoneyIssue::PayoutMissing => "payout_missing",
            MoneyIssue::CurrencyConflict => "currency_conflict",
            MoneyIssue::CurrencyUnknown => "currency_unknown",
            MoneyIssue::CostMacro => "cost_macro",
            MoneyIssue::CostUnparsed => "cost_unparsed",
            MoneyIssue::CostAmbiguous => "cost_ambiguous",
            MoneyIssue::CostOutOfRange => "cost_out_of_range",
            MoneyIssue::CostCurrencyUnknown => "cost_currency_unknown",
        }
    }

    /// What is wrong and how to fix it, for the operator reading a conversion or click.
    pub fn hint(self) -> &'static str {
        match self {
            MoneyIssue::PayoutMacro => "the network did not substitute its payout macro: check the macro's spelling and case in the postback template (e.g. TUNE {payout}, Everflow {payout_amount}, Affise {sum}, CAKE #price#); the offer's default_payout was booked, else 0",
            MoneyIssue::PayoutUnparsed => "the payout is not a number clickmatch can read (a word, NaN, two numbers, an unknown symbol or grouping): have the network send a plain number such as 1.50; the offer's default_payout was booked, else 0",
            MoneyIssue::PayoutAmbiguous => "the payout has one separator followed by three digits (1,234, or €1.234 with a currency), which is either thousands or a decimal separator: have the network send a plain number such as 1234.00 or 1.234; the offer's default_payout was booked, else 0",
            MoneyIssue::PayoutOutOfRange => "the payout is 10^12 or more in magnitude (or its revenue share is): no real payout is, so check that the right macro fills the payout parameter; the offer's default_payout was booked, else 0",
            MoneyIssue::PayoutMissing => "the postback has no payout parameter, or an empty one, and the offer has no default_payout: 0 was booked; add the payout macro to the network's postback template or set the offer's default_payout",
            MoneyIssue::CurrencyConflict => "the currency parameter names another currency than the payout text itself ($, EUR): the parameter's currency was booked; check which one the network really pays in",
            MoneyIssue::CurrencyUnknown => "the currency is not an ISO 4217 code (an unsubstituted {currency} macro, a word such as dollars, or an unknown code): the payout text's own currency or the route's currency was booked; fix the currency macro or drop the parameter",
            MoneyIssue::CostMacro => "the traffic source did not substitute its cost macro into the click URL: check the macro's spelling in the source's campaign URL; the campaign's fixed cost was booked, else 0",
            MoneyIssue::CostUnparsed => "the cost parameter is not a number clickmatch can read, or is negative: have the traffic source send a plain number such as 0.05; the campaign's fixed cost was booked, else 0",
            MoneyIssue::CostAmbiguous => "the cost has one comma followed by three digits (1,234), either thousands or a decimal comma: have the traffic source send a plain number such as 0.05; the campaign's fixed cost was booked, else 0",
            MoneyIssue::CostOutOfRange => "the cost is 10^12 or more: no click costs that, so check that the cost parameter carries the source's cost macro; the campaign's fixed cost was booked, else 0",
            MoneyIssue::CostCurrencyUnknown => "the cost names a currency that is not an ISO 4217 code: have the traffic source send a plain number or a valid code; the campaign's fixed cost was booked, else 0",
        }
    }

    /// The issue of a stored code; `None` for "" and for unknown codes.
    pub fn from_code(code: &str) -> Option<MoneyIssue> {
        MoneyIssue::ALL
            .iter()
            .copied()
            .find(|issue| issue.code() == code)
    }

    /// The hint of a stored code, for the pages and reports that print one; a code this build
    /// does not know (a newer one wrote it) still gets a sentence.
    pub fn hint_of_code(code: &str) -> &'static str {
        MoneyIssue::from_code(code).map_or(
            "an issue this version of clickmatch does not know (written by a newer one)",
            MoneyIssue::hint,
        )
    }

    /// How an unreadable payout is recorded.
    fn of_payout(error: &AmountError) -> MoneyIssue {
        match error {
            AmountError::Macro(_) => MoneyIssue::PayoutMacro,
            AmountError::Unparsed(_) => MoneyIssue::PayoutUnparsed,
            AmountError::Ambiguous(_) => MoneyIssue::PayoutAmbiguous,
            AmountError::OutOfRange(_) => MoneyIssue::PayoutOutOfRange,
            AmountError::UnknownCurrency { .. } => MoneyIssue::CurrencyUnknown,
        }
    }

    /// How an unreadable cost is recorded.
    fn of_cost(error: &AmountError) -> MoneyIssue {
        match error {
            AmountError::Macro(_) => MoneyIssue::CostMacro,
            AmountError::Unparsed(_) => MoneyIssue::CostUnparsed,
            AmountError::Ambiguous(_) => MoneyIssue::CostAmbiguous,
            AmountError::OutOfRange(_) => MoneyIssue::CostOutOfRange,
            AmountError::UnknownCurrency { .. } => MoneyIssue::CostCurrencyUnknown,
        }
    }
}

/// The value of the `payout_issue`/`cost_issue` columns: the code, "" when all is well.
pub fn issue_code(issue: Option<MoneyIssue>) -> &'static str {
    issue.map_or("", MoneyIssue::code)
}

impl fmt::Display for MoneyIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A conversion's payout as booked, with what was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookedPayout {
    /// What counts: the amount sent, its share, the fixed payout, or the fallback.
    pub payout: Decimal,
    /// The currency `payout` is in.
    pub currency: Currency,
    /// The payout parameter as sent ("" when none), so that an issue can be checked later.
    pub payout_raw: String,
    /// At most one; payout problems before currency ones (see [`book_payout`]).
    pub issue: Option<MoneyIssue>,
}

/// Books a postback's payout.
///
/// - `payout_raw`: the payout parameter's value as sent (`None` when the postback has none or
///   it is empty; blank counts as empty)
/// - `currency_raw`: the currency parameter's value (`None` when absent or empty)
/// - `default_currency`: the route's currency, when the postback names none
/// - `model`: `FromPostback` books the amount sent; `Fixed(d)` books `d` and ignores the
///   payout text (its currency too); `RevShare(share)` books share × the amount sent, rounded
///   half away from zero to 6 places
/// - `default_payout`: the offer's `default_payout`, booked (instead of 0) whenever the sent
///   payout cannot be read, or is missing under `FromPostback`/`RevShare`; a missing payout
///   with a `default_payout` is no issue (the operator configured exactly that)
///
/// Currency: a valid currency parameter wins; one the payout text does not admit (see
/// [`Amount::admits`]) is a `CurrencyConflict`. An invalid parameter (`{currency}`, `dollars`,
/// `US`) is `CurrencyUnknown` and the text's currency, else `default_currency`, is booked.
///
/// One issue is kept, the first of: the payout's (`PayoutMacro`, `PayoutUnparsed`,
/// `PayoutAmbiguous`, `PayoutOutOfRange`, `CurrencyUnknown` for `2.50 ABC`, `PayoutMissing`),
/// then the currency parameter's (`CurrencyUnknown`, `CurrencyConflict`): a payout that was
/// not booked matters more than the currency it was in.
pub fn book_payout(
    payout_raw: Option<&str>,
    currency_raw: Option<&str>,
    default_currency: Currency,
    model: PayoutModel,
    default_payout: Option<Decimal>,
) -> BookedPayout {
    let fallback = default_payout.unwrap_or(Decimal::ZERO);
    let sent = payout_raw.filter(|raw| !raw.trim().is_empty());
    let (payout, amount, payout_issue) = match (model, sent.map(parse_amount)) {
        (PayoutModel::Fixed(fixed), _) => (fixed, None, None),
        (_, None) => (
            fallback,
            None,
            default_payout
                .is_none()
                .then_some(MoneyIssue::PayoutMissing),
        ),
        (_, Some(Err(error))) => (fallback, None, Some(MoneyIssue::of_payout(&error))),
        (PayoutModel::FromPostback, Some(Ok(amount))) => (amount.value, Some(amount), None),
        (PayoutModel::RevShare(share), Some(Ok(amount))) => {
            match revenue_share(amount.value, share) {
                Some(payout) => (payout, Some(amount), None),
                None => (fallback, Some(amount), Some(MoneyIssue::PayoutOutOfRange)),
            }
        }
    };

    let own = amount.and_then(|amount| amount.currency);
    let parameter = currency_raw
        .map(str::trim)
        .filter(|raw| !raw.is_empty())
        .map(Currency::parse);
    let (currency, currency_issue) = match parameter {
        Some(Ok(named)) if amount.is_some_and(|amount| !amount.admits(named)) => {
            (named, Some(MoneyIssue::CurrencyConflict))
        }
        Some(Ok(named)) => (named, None),
        Some(Err(_)) => (
            own.unwrap_or(default_currency),
            Some(MoneyIssue::CurrencyUnknown),
        ),
        None => (own.unwrap_or(default_currency), None),
    };

    BookedPayout {
        payout,
        currency,
        payout_raw: payout_raw.unwrap_or_default().to_string(),
        issue: payout_issue.or(currency_issue),
    }
}

/// `share × amount`, rounded like every amount; `None` beyond the columns' range.
fn revenue_share(amount: Decimal, share: Decimal) -> Option<Decimal> {
    let value = amount
        .checked_mul(share)?
        .round_dp_with_strategy(SCALE, RoundingStrategy::MidpointAwayFromZero);
    (value.abs() < Decimal::from(10i64.pow(MAX_INT_DIGITS as u32))).then_some(value)
}

/// A click's cost as booked, with what the traffic source sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookedCost {
    /// What the click cost: the parameter's amount, else the campaign's fixed cost, else 0.
    pub cost: Decimal,
    /// The currency `cost` is in.
    pub currency: Currency,
    /// The cost parameter as sent ("" when none).
    pub cost_raw: String,
    /// Why `cost` is not the parameter's amount (a `Cost*` issue), `None` when it is.
    pub issue: Option<MoneyIssue>,
}

/// Books a click's cost.
///
/// - `param_raw`: the cost parameter's value when the campaign reads one (`None`: the
///   campaign has no `cost_param`, or the click URL lacks it)
/// - `fixed`: the campaign's fixed CPC `cost`
/// - `currency`: the campaign's cost currency
///
/// A readable parameter wins over `fixed`, in the currency its text names if any (that is what
/// the source charged), else `currency`. An unreadable or negative one (a click never pays us)
/// books `fixed`, else 0, with a `cost_*` issue; an absent or blank one books `fixed`, else 0,
/// with no issue.
pub fn book_cost(
    param_raw: Option<&str>,
    fixed: Option<Decimal>,
    currency: Currency,
) -> BookedCost {
    let fallback = BookedCost {
        cost: fixed.unwrap_or(Decimal::ZERO),
        currency,
        cost_raw: param_raw.unwrap_or_default().to_string(),
        issue: None,
    };
    let Some(raw) = param_raw.filter(|raw| !raw.trim().is_empty()) else {
        return fallback;
    };
    match parse_amount(raw) {
        Ok(amount) if amount.value.is_sign_negative() && !amount.value.is_zero() => BookedCost {
            issue: Some(MoneyIssue::CostUnparsed),
            ..fallback
        },
        Ok(amount) => BookedCost {
            cost: amount.value,
            currency: amount.currency.unwrap_or(currency),
            ..fallback
        },
        Err(error) => BookedCost {
            issue: Some(MoneyIssue::of_cost(&error)),
            ..fallback
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tables are typed by hand: the list must stay sorted for `binary_search`, and every
    /// code built with `code()` (unchecked) must be on it.
    #[test]
    fn tables_hold_active_codes() {
        assert!(ISO_4217.windows(2).all(|pair| pair[0] < pair[1]));
        assert!(ISO_4217
            .iter()
            .all(|c| c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase())));
        let listed = |c: &Currency| ISO_4217.contains(&c.as_str());
        assert!(SYMBOLS.iter().flat_map(|s| s.family).all(listed));
        assert!(DOLLARS.iter().all(listed));
        for constant in [
            Currency::USD,
            Currency::EUR,
            Currency::GBP,
            Currency::CAD,
            Currency::AUD,
            Currency::JPY,
            Currency::CNY,
        ] {
            assert!(listed(&constant));
        }
    }
}
