//! [`Currency`]: a validated ISO 4217 code.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::iso_4217::ISO_4217;

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
        // Only built from the ASCII ISO 4217 list or the ASCII constants.
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

/// A currency from its code, unchecked: for the hand-typed symbol tables, whose codes a test
/// checks against the ISO 4217 list.
pub(super) const fn code(bytes: &[u8; 3]) -> Currency {
    Currency(*bytes)
}
