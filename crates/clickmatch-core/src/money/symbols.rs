//! Currency symbols as networks print them (`$`, `€`, `R$`), and the currencies each may mean.

use super::currency::{code, Currency};

/// A currency symbol as networks print it, and its family: the currency it is read as
/// (first), then the others a currency parameter may name without a conflict.
pub(super) struct Symbol {
    pub(super) text: &'static str,
    pub(super) family: &'static [Currency],
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
pub(super) const SYMBOLS: &[Symbol] = &[
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

pub(super) fn symbol_family(text: &str) -> &'static [Currency] {
    SYMBOLS
        .iter()
        .find(|symbol| symbol.text == text)
        .map_or(&[], |symbol| symbol.family)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::iso_4217::ISO_4217;

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
