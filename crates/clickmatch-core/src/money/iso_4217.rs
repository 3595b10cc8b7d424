//! The active ISO 4217 currency codes, the data behind [`Currency::parse`].
//!
//! [`Currency::parse`]: super::Currency::parse

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
pub(super) const ISO_4217: &[&str] = &[
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
