//! The formats networks and trackers send amounts in, and how each is read and booked.
//! Where a case names a source, the format is that source's; "generic" cases are what any
//! hand-written template or shop plug-in may produce.

use std::str::FromStr;

use clickmatch_core::model::PayoutModel;
use clickmatch_core::money::{
    book_cost, book_payout, issue_code, parse_amount, AmountError, BookedCost, BookedPayout,
    Currency, CurrencyError, MoneyIssue,
};
use rust_decimal::Decimal;

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn cur(s: &str) -> Currency {
    Currency::parse(s).unwrap()
}

/// What `parse_amount` should give: a value and currency, or the error's kind.
#[derive(Debug, PartialEq)]
enum Want {
    Ok(&'static str, Option<&'static str>),
    Macro,
    Unparsed,
    Ambiguous,
    OutOfRange,
    UnknownCurrency(&'static str),
}
use Want::*;

const NBSP: &str = "\u{a0}";

#[rustfmt::skip]
const AMOUNTS: &[(&str, Want, &str)] = &[
    // Plain decimals: TUNE/HasOffers {payout}, Everflow {payout_amount}, Affise {sum} (`1.5`),
    // Impact {Payout} (`2.50`, with the currency in {Currency}).
    ("1.50", Ok("1.50", None), "TUNE {payout}"),
    ("1.5", Ok("1.5", None), "Affise {sum}"),
    ("2.50", Ok("2.50", None), "Impact {Payout}"),
    ("0", Ok("0", None), "generic"),
    ("10", Ok("10", None), "generic"),
    ("  1.50\t", Ok("1.50", None), "surrounding whitespace"),
    ("\u{3000}1.50\u{a0}", Ok("1.50", None), "Unicode whitespace"),
    ("+2.50", Ok("2.50", None), "leading plus"),
    ("00.5", Ok("0.5", None), "leading zeros"),
    // Scientific: what JSON encoders print for small and large floats.
    ("1e-6", Ok("0.000001", None), "JSON body"),
    ("1e-06", Ok("0.000001", None), "Python str(0.000001)"),
    ("1e-7", Ok("0.000000", None), "JavaScript String(1e-7): rounds to 0 at 6 places"),
    ("5e-7", Ok("0.000001", None), "half rounds away from zero"),
    ("-5e-7", Ok("-0.000001", None), "half rounds away from zero"),
    ("1.5E3", Ok("1500", None), "JSON body"),
    ("1.5e+3", Ok("1500", None), "JSON body"),
    ("2.5E-1", Ok("0.25", None), "JSON body"),
    ("0e999999999", Ok("0", None), "zero with any exponent"),
    ("1e-999999999", Ok("0.000000", None), "tiny"),
    ("1e308", OutOfRange, "f64 max-ish"),
    ("1e+21", OutOfRange, "JavaScript String(1e21)"),
    ("1,5e3", Unparsed, "scientific needs a plain mantissa"),
    ("1e5e5", Unparsed, "two exponents"),
    ("2.5e", Unparsed, "dangling exponent"),
    // Decimal comma: European shop plug-ins, PHP number_format($x, 2, ',', '.').
    ("1,50", Ok("1.50", None), "decimal comma"),
    ("1,5", Ok("1.5", None), "decimal comma"),
    ("0,123", Ok("0.123", None), "leading 0 group: never thousands"),
    ("1,2345", Ok("1.2345", None), "four digits after"),
    ("1234,567", Ok("1234.567", None), "first group too long for thousands"),
    // Thousands.
    ("1,234.56", Ok("1234.56", None), "PHP number_format($x, 2)"),
    ("1.234,56", Ok("1234.56", None), "PHP number_format($x, 2, ',', '.'), JS de-DE"),
    ("1 234,56", Ok("1234.56", None), "space grouping"),
    ("1\u{a0}234,56", Ok("1234.56", None), "NBSP grouping"),
    ("1\u{202f}234,56", Ok("1234.56", None), "JS Intl fr-FR (narrow NBSP)"),
    ("1'234.56", Ok("1234.56", None), "Swiss apostrophe"),
    ("1\u{2019}234.56", Ok("1234.56", None), "JS Intl de-CH (U+2019)"),
    ("1 234", Ok("1234", None), "space is never a decimal point"),
    ("1,234,567", Ok("1234567", None), "repeated comma"),
    ("1.234.567", Ok("1234567", None), "repeated dot"),
    ("1.234.567,89", Ok("1234567.89", None), "de-DE"),
    ("1,234,567.89", Ok("1234567.89", None), "en-US"),
    ("1 234 567,89", Ok("1234567.89", None), "fr-FR"),
    ("-1,234.56", Ok("-1234.56", None), "negative with thousands"),
    // The single dot is always the decimal point (machine-formatted values use `.`).
    ("1.234", Ok("1.234", None), "single dot, three digits: decimal"),
    ("12.345", Ok("12.345", None), "single dot, three digits: decimal"),
    // With a currency a person's locale wrote it: `1.234 €` is 1234 in de-DE.
    ("1.234 €", Ambiguous, "de-DE thousands, or a decimal point"),
    ("€1.234", Ambiguous, "either"),
    ("R$ 12.345", Ambiguous, "pt-BR thousands, or a decimal point"),
    ("$0.125", Ok("0.125", Some("USD")), "a leading 0 group is never thousands"),
    ("1.2345 EUR", Ok("1.2345", Some("EUR")), "four decimals cannot be thousands"),
    // Ambiguous: one comma, three digits, a first group that thousands could produce.
    ("1,234", Ambiguous, "PHP number_format(1234) or decimal comma"),
    ("12,345", Ambiguous, "either"),
    ("123,456", Ambiguous, "either"),
    ("-1,234", Ambiguous, "either"),
    ("$1,234", Ambiguous, "either"),
    ("1,234 €", Ambiguous, "either"),
    // Groupings that are not threes.
    ("1,23,456", Unparsed, "Indian lakh grouping"),
    ("₹1,23,456.00", Unparsed, "JS Intl en-IN"),
    ("12,34.5", Unparsed, "not grouped in threes"),
    ("1.50.00", Unparsed, "not grouped in threes"),
    ("0,123,456", Unparsed, "thousands never start with 0"),
    ("1.234 567", Unparsed, "space after a dot"),
    ("1,234.567,8", Unparsed, "three kinds"),
    ("1  234", Unparsed, "double space"),
    ("2.", Unparsed, "trailing separator"),
    (".5", Unparsed, "no leading digit"),
    // Currency symbols and codes, before or after, with or without space.
    ("$2.50", Ok("2.50", Some("USD")), "generic, JS Intl en-US"),
    ("2.50USD", Ok("2.50", Some("USD")), "generic"),
    ("2.50 USD", Ok("2.50", Some("USD")), "generic"),
    ("EUR 3", Ok("3", Some("EUR")), "generic"),
    ("€3", Ok("3", Some("EUR")), "generic"),
    ("3 €", Ok("3", Some("EUR")), "generic"),
    ("1.234,56\u{a0}€", Ok("1234.56", Some("EUR")), "JS Intl de-DE currency"),
    ("1\u{202f}234,56\u{a0}€", Ok("1234.56", Some("EUR")), "JS Intl fr-FR currency"),
    ("usd 4", Ok("4", Some("USD")), "lower case code"),
    ("Usd4", Ok("4", Some("USD")), "mixed case code"),
    ("$2.50 USD", Ok("2.50", Some("USD")), "symbol and code agree"),
    ("$2.50 CAD", Ok("2.50", Some("CAD")), "a dollar symbol and a dollar code"),
    ("€2.50 USD", Unparsed, "two currencies"),
    ("US$2.50", Ok("2.50", Some("USD")), "US$"),
    ("C$2.50", Ok("2.50", Some("CAD")), "C$"),
    ("CA$2.50", Ok("2.50", Some("CAD")), "JS Intl en-US for CAD"),
    ("A$2.50", Ok("2.50", Some("AUD")), "A$"),
    ("AU$2.50", Ok("2.50", Some("AUD")), "AU$"),
    ("R$ 2,50", Ok("2.50", Some("BRL")), "JS Intl pt-BR"),
    ("£2.50", Ok("2.50", Some("GBP")), "£"),
    ("¥300", Ok("300", Some("JPY")), "¥ (JPY; CNY agrees when named)"),
    ("CN¥300", Ok("300", Some("CNY")), "CN¥"),
    ("₹250", Ok("250", Some("INR")), "₹"),
    ("250 ₽", Ok("250", Some("RUB")), "₽"),
    ("₩3000", Ok("3000", Some("KRW")), "₩"),
    ("₺5", Ok("5", Some("TRY")), "₺"),
    ("5 ₴", Ok("5", Some("UAH")), "₴"),
    ("₱50", Ok("50", Some("PHP")), "₱"),
    ("฿50", Ok("50", Some("THB")), "฿"),
    ("5000 ₫", Ok("5000", Some("VND")), "₫"),
    ("₪5", Ok("5", Some("ILS")), "₪"),
    ("₦500", Ok("500", Some("NGN")), "₦"),
    ("5,50 zł", Ok("5.50", Some("PLN")), "zł"),
    ("5 ZŁ", Ok("5", Some("PLN")), "zł, any case"),
    ("50 Kč", Ok("50", Some("CZK")), "Kč"),
    ("XOF 500", Ok("500", Some("XOF")), "CFA franc"),
    // Signs.
    ("-2.50", Ok("-2.50", None), "reversal"),
    ("-$2.50", Ok("-2.50", Some("USD")), "reversal"),
    ("$-2.50", Ok("-2.50", Some("USD")), "reversal"),
    ("- $2.50", Ok("-2.50", Some("USD")), "reversal"),
    ("EUR -3", Ok("-3", Some("EUR")), "reversal"),
    ("\u{2212}2.50", Ok("-2.50", None), "minus sign U+2212"),
    ("-0", Ok("0", None), "negative zero"),
    ("--2", Unparsed, "two signs"),
    ("-$-2", Unparsed, "two signs"),
    ("+-2", Unparsed, "two signs"),
    ("2.50-", Unparsed, "trailing sign"),
    ("(2.50)", Unparsed, "accounting negative"),
    // Range: Decimal(18, 6).
    ("999999999999.999999", Ok("999999999999.999999", None), "largest"),
    ("999999999999.9999995", OutOfRange, "rounds up to 10^12"),
    ("1000000000000", OutOfRange, "10^12"),
    ("-1000000000000", OutOfRange, "-10^12"),
    ("000000000000000000001", Ok("1", None), "leading zeros do not count"),
    ("0.1234565", Ok("0.123457", None), "rounded half away from zero"),
    ("0.1234564999", Ok("0.123456", None), "rounded down"),
    ("2.50000000000000000000000000000000001", Ok("2.500000", None), "long fraction"),
    // Macros: unsubstituted templates.
    ("{payout}", Macro, "TUNE"),
    ("{payout_amount}", Macro, "Everflow"),
    ("{sum}", Macro, "Affise"),
    ("{Payout}", Macro, "Impact"),
    ("#price#", Macro, "CAKE"),
    ("[[payout]]", Macro, "Prosper202-style"),
    ("%7Bsum%7D", Macro, "URL-encoded braces"),
    ("$payout", Macro, "dollar macro"),
    ("${payout}", Macro, "dollar braces"),
    ("{sub1}", Macro, "wrong macro in the payout parameter"),
    // Not numbers.
    ("NaN", Unparsed, "JavaScript NaN"),
    ("nan", Unparsed, "Python nan"),
    ("inf", Unparsed, "Python inf"),
    ("-Infinity", Unparsed, "JavaScript -Infinity"),
    ("Infinity", Unparsed, "JavaScript Infinity"),
    ("null", Unparsed, "placeholder"),
    ("undefined", Unparsed, "placeholder"),
    ("free", Unparsed, "word"),
    ("USD", Unparsed, "code alone"),
    ("$", Unparsed, "symbol alone"),
    ("", Unparsed, "empty"),
    ("1.5 2.5", Unparsed, "two numbers"),
    ("1.5/2", Unparsed, "two numbers"),
    ("1.5-2", Unparsed, "range"),
    ("1 2", Unparsed, "two numbers"),
    ("R 5", Unparsed, "R is ZAR or a cut BRL"),
    ("5 kr", Unparsed, "kr is SEK, NOK, DKK or ISK"),
    ("Rs 5", Unparsed, "Rs is INR, PKR, LKR or NPR"),
    ("2.50 dollars", Unparsed, "word"),
    ("2.50 ABC", UnknownCurrency("ABC"), "three letters, not a code"),
    ("XAU 2", UnknownCurrency("XAU"), "gold is not money here"),
    ("2 HRK", UnknownCurrency("HRK"), "withdrawn in 2023"),
];

fn got(raw: &str) -> Want {
    match parse_amount(raw) {
        Result::Ok(a) => {
            let value: &'static str = Box::leak(a.value.to_string().into_boxed_str());
            let currency: Option<&'static str> = a
                .currency
                .map(|c| &*Box::leak(c.to_string().into_boxed_str()));
            Ok(value, currency)
        }
        Err(AmountError::Macro(_)) => Macro,
        Err(AmountError::Unparsed(_)) => Unparsed,
        Err(AmountError::Ambiguous(_)) => Ambiguous,
        Err(AmountError::OutOfRange(_)) => OutOfRange,
        Err(AmountError::UnknownCurrency { currency, .. }) => {
            UnknownCurrency(Box::leak(currency.into_boxed_str()))
        }
    }
}

#[test]
fn amounts_as_networks_send_them() {
    let mut failures = Vec::new();
    for (raw, want, source) in AMOUNTS {
        let got = got(raw);
        if &got != want {
            failures.push(format!("{raw:?} ({source}): want {want:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn nbsp_constant_is_what_the_table_means() {
    assert_eq!(got(&format!("1{NBSP}234")), Ok("1234", None));
}

#[test]
fn errors_name_the_value() {
    let message = |raw: &str| parse_amount(raw).unwrap_err().to_string();
    assert_eq!(
        message("{payout}"),
        "`{payout}` is a macro the network did not substitute, not an amount"
    );
    assert_eq!(message("NaN"), "`NaN` is not an amount");
    assert!(message("1,234").starts_with("`1,234` is ambiguous"));
    assert!(message("1e308").starts_with("`1e308` is out of range"));
    assert_eq!(
        message("2.50 ABC"),
        "`2.50 ABC` names `ABC`, which is not an ISO 4217 currency code"
    );
}

#[test]
fn symbols_are_remembered_so_a_parameter_can_refine_them() {
    let dollar = parse_amount("$2.50").unwrap();
    assert_eq!(dollar.symbol, Some("$"));
    assert!(
        dollar.admits(cur("CAD")) && dollar.admits(cur("MXN")) && !dollar.admits(Currency::EUR)
    );
    let yen = parse_amount("¥300").unwrap();
    assert!(yen.admits(Currency::CNY) && !yen.admits(Currency::USD));
    let code = parse_amount("2.50 USD").unwrap();
    assert_eq!(code.symbol, None);
    assert!(!code.admits(cur("CAD")));
    assert!(parse_amount("2.50").unwrap().admits(Currency::EUR));
}

#[test]
fn currency_codes() {
    assert_eq!(Currency::parse("USD"), Result::Ok(Currency::USD));
    assert_eq!(Currency::parse(" usd\n"), Result::Ok(Currency::USD));
    assert_eq!(Currency::parse("Eur"), Result::Ok(Currency::EUR));
    assert_eq!(
        Currency::parse("\u{a0}gbp\u{3000}"),
        Result::Ok(Currency::GBP)
    );
    assert_eq!("jpy".parse::<Currency>(), Result::Ok(Currency::JPY));
    assert_eq!(Currency::USD.as_str(), "USD");
    assert_eq!(cur("chf").to_string(), "CHF");
    for real in [
        "XAF", "XOF", "XCD", "XPF", "CHF", "AED", "ZWG", "SLE", "VES", "MRU", "STN",
    ] {
        assert!(Currency::parse(real).is_ok(), "{real}");
    }
    for not_money in [
        "XAU", "XAG", "XPT", "XPD", "XXX", "XTS", "XDR", "XBA", "XSU", "XUA",
    ] {
        assert!(Currency::parse(not_money).is_err(), "{not_money}");
    }
    for historic in [
        "HRK", "VEF", "MRO", "STD", "DEM", "FRF", "LTL", "EEK", "BYR",
    ] {
        assert!(Currency::parse(historic).is_err(), "{historic}");
    }
    assert_eq!(Currency::parse("  "), Err(CurrencyError::Empty));
    assert_eq!(
        Currency::parse("USX").unwrap_err().to_string(),
        "`USX` is not an ISO 4217 currency code"
    );
    for wrong in ["US", "USDD", "dollars", "{currency}", "U$D", "ÜSD"] {
        assert_eq!(
            Currency::parse(wrong),
            Err(CurrencyError::Unknown(wrong.to_string()))
        );
    }
}

#[test]
fn currency_serde_is_the_code() {
    assert_eq!(serde_json::to_string(&Currency::EUR).unwrap(), "\"EUR\"");
    assert_eq!(
        serde_json::from_str::<Currency>("\"usd\"").unwrap(),
        Currency::USD
    );
    assert!(serde_json::from_str::<Currency>("\"USX\"").is_err());
}

#[test]
fn money_issue_codes() {
    let mut codes: Vec<&str> = MoneyIssue::ALL.iter().map(|i| i.code()).collect();
    for issue in MoneyIssue::ALL {
        assert_eq!(MoneyIssue::from_code(issue.code()), Some(*issue));
        assert!(issue
            .code()
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'_'));
        assert!(issue.hint().len() > 40, "{issue}");
        assert_eq!(issue.to_string(), issue.code());
    }
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), MoneyIssue::ALL.len());
    assert_eq!(MoneyIssue::from_code(""), None);
    assert_eq!(MoneyIssue::from_code("payout_nope"), None);
    assert_eq!(MoneyIssue::PayoutOutOfRange.code(), "payout_out_of_range");
    assert_eq!(issue_code(None), "");
    assert_eq!(
        issue_code(Some(MoneyIssue::CurrencyConflict)),
        "currency_conflict"
    );
    assert!(MoneyIssue::PayoutMacro.hint().contains("{payout}"));
}

/// What a booking should give: amount (exactly as displayed), currency, issue.
type Booked = (&'static str, &'static str, Option<MoneyIssue>);

/// A `book_payout` case: what it shows, payout, currency parameter, model, default_payout and
/// what is booked (the route's currency is USD).
type PayoutCase = (
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    PayoutModel,
    Option<&'static str>,
    Booked,
);

#[test]
fn booking_payouts() {
    use MoneyIssue::*;
    let post = PayoutModel::FromPostback;
    let share = PayoutModel::RevShare(dec("0.25"));
    let fixed = PayoutModel::Fixed(dec("7.00"));
    let four = Some("4.00");
    #[rustfmt::skip]
    let cases: Vec<PayoutCase> = vec![
        ("TUNE {payout}, route currency", Some("1.50"), None, post, None, ("1.50", "USD", None)),
        ("Impact {Payout} and {Currency}", Some("2.50"), Some("EUR"), post, None, ("2.50", "EUR", None)),
        ("Affise {sum} and {currency}, lower case", Some("1.5"), Some("eur"), post, None, ("1.5", "EUR", None)),
        ("the text's currency", Some("€3"), None, post, None, ("3", "EUR", None)),
        ("text and parameter agree", Some("3 EUR"), Some("EUR"), post, None, ("3", "EUR", None)),
        ("$ and a CAD parameter", Some("$2.50"), Some("CAD"), post, None, ("2.50", "CAD", None)),
        ("$ and an AUD parameter", Some("$2.50"), Some("AUD"), post, None, ("2.50", "AUD", None)),
        ("¥ and a CNY parameter", Some("¥300"), Some("CNY"), post, None, ("300", "CNY", None)),
        ("¥ alone", Some("¥300"), None, post, None, ("300", "JPY", None)),
        ("€ but USD named", Some("€2.50"), Some("USD"), post, None, ("2.50", "USD", Some(CurrencyConflict))),
        ("USD code but CAD named", Some("2.50 USD"), Some("CAD"), post, None, ("2.50", "CAD", Some(CurrencyConflict))),
        ("$ but EUR named", Some("$2.50"), Some("EUR"), post, None, ("2.50", "EUR", Some(CurrencyConflict))),
        ("{currency} unsubstituted", Some("2.50"), Some("{currency}"), post, None, ("2.50", "USD", Some(CurrencyUnknown))),
        ("{currency} unsubstituted, € in text", Some("€2.50"), Some("{currency}"), post, None, ("2.50", "EUR", Some(CurrencyUnknown))),
        ("currency `dollars`", Some("2.50"), Some("dollars"), post, None, ("2.50", "USD", Some(CurrencyUnknown))),
        ("currency `US`", Some("2.50"), Some("US"), post, None, ("2.50", "USD", Some(CurrencyUnknown))),
        ("blank currency is none", Some("2.50"), Some("  "), post, None, ("2.50", "USD", None)),
        ("reversal", Some("-2.50"), None, post, None, ("-2.50", "USD", None)),
        ("reversal with symbol", Some("-$2.50"), Some("USD"), post, None, ("-2.50", "USD", None)),
        ("missing", None, None, post, None, ("0", "USD", Some(PayoutMissing))),
        ("blank is missing", Some(" "), Some("EUR"), post, None, ("0", "EUR", Some(PayoutMissing))),
        ("{payout}", Some("{payout}"), None, post, None, ("0", "USD", Some(PayoutMacro))),
        ("payout issue before currency issue", Some("{payout}"), Some("{currency}"), post, None, ("0", "USD", Some(PayoutMacro))),
        ("NaN", Some("NaN"), None, post, None, ("0", "USD", Some(PayoutUnparsed))),
        ("1,234", Some("1,234"), None, post, None, ("0", "USD", Some(PayoutAmbiguous))),
        ("1e308", Some("1e308"), None, post, None, ("0", "USD", Some(PayoutOutOfRange))),
        ("2.50 ABC", Some("2.50 ABC"), None, post, None, ("0", "USD", Some(CurrencyUnknown))),
        ("2.50 ABC, valid parameter", Some("2.50 ABC"), Some("EUR"), post, None, ("0", "EUR", Some(CurrencyUnknown))),
        ("missing, default_payout", None, None, post, four, ("4.00", "USD", None)),
        ("macro, default_payout", Some("{payout}"), None, post, four, ("4.00", "USD", Some(PayoutMacro))),
        ("readable beats default_payout", Some("1,50"), None, post, four, ("1.50", "USD", None)),
        ("revshare", Some("100"), None, share, None, ("25.00", "USD", None)),
        ("revshare rounds half away from zero", Some("0.000002"), None, share, None, ("0.000001", "USD", None)),
        ("revshare of a reversal", Some("-$10"), None, share, None, ("-2.50", "USD", None)),
        ("revshare, missing", None, None, share, None, ("0", "USD", Some(PayoutMissing))),
        ("revshare, missing, default_payout", None, None, share, four, ("4.00", "USD", None)),
        ("revshare, unreadable: default_payout, not shared", Some("{sale_amount}"), None, share, four, ("4.00", "USD", Some(PayoutMacro))),
        ("revshare over range", Some("999999999999"), None, PayoutModel::RevShare(dec("2")), None, ("0", "USD", Some(PayoutOutOfRange))),
        ("fixed ignores the text", Some("{payout}"), None, fixed, None, ("7.00", "USD", None)),
        ("fixed ignores a missing payout", None, None, fixed, None, ("7.00", "USD", None)),
        ("fixed ignores the text's currency", Some("€2"), None, fixed, None, ("7.00", "USD", None)),
        ("fixed, currency parameter", Some("€2"), Some("GBP"), fixed, None, ("7.00", "GBP", None)),
        ("fixed, currency issue still applies", None, Some("{currency}"), fixed, None, ("7.00", "USD", Some(CurrencyUnknown))),
    ];
    let mut failures = Vec::new();
    for (what, payout, currency, model, default_payout, (amount, code, issue)) in cases {
        let booked = book_payout(
            payout,
            currency,
            Currency::USD,
            model,
            default_payout.map(dec),
        );
        let want = BookedPayout {
            payout: dec(amount),
            currency: cur(code),
            payout_raw: payout.unwrap_or_default().to_string(),
            issue,
        };
        if booked != want || booked.payout.to_string() != amount {
            failures.push(format!("{what}: want {want:?}, got {booked:?}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn booked_payout_keeps_the_raw_text_verbatim() {
    let booked = book_payout(
        Some(" $2.50 "),
        None,
        Currency::EUR,
        PayoutModel::FromPostback,
        None,
    );
    assert_eq!(booked.payout_raw, " $2.50 ");
    assert_eq!(
        (booked.payout, booked.currency),
        (dec("2.50"), Currency::USD)
    );
}

#[test]
fn booking_costs() {
    use MoneyIssue::*;
    let usd = Currency::USD;
    let cpc = Some(dec("0.05"));
    #[rustfmt::skip]
    let cases: &[(Option<&str>, Option<Decimal>, Booked)] = &[
        (None, cpc, ("0.05", "USD", None)),
        (None, None, ("0", "USD", None)),
        (Some(""), cpc, ("0.05", "USD", None)),
        (Some("0.012"), cpc, ("0.012", "USD", None)),
        (Some("0,012"), None, ("0.012", "USD", None)),
        (Some("1.5e-3"), None, ("0.0015", "USD", None)),
        (Some("€0.04"), cpc, ("0.04", "EUR", None)),
        (Some("0.04 GBP"), cpc, ("0.04", "GBP", None)),
        (Some("0"), cpc, ("0", "USD", None)),
        (Some("-0"), cpc, ("0", "USD", None)),
        (Some("{cost}"), cpc, ("0.05", "USD", Some(CostMacro))),
        (Some("{cost}"), None, ("0", "USD", Some(CostMacro))),
        (Some("-0.01"), cpc, ("0.05", "USD", Some(CostUnparsed))),
        (Some("free"), cpc, ("0.05", "USD", Some(CostUnparsed))),
        (Some("1,234"), cpc, ("0.05", "USD", Some(CostAmbiguous))),
        (Some("1e13"), cpc, ("0.05", "USD", Some(CostOutOfRange))),
        (Some("0.05 ABC"), cpc, ("0.05", "USD", Some(CostCurrencyUnknown))),
    ];
    for (raw, fixed, want) in cases {
        let booked = book_cost(*raw, *fixed, usd);
        let expected = BookedCost {
            cost: dec(want.0),
            currency: cur(want.1),
            cost_raw: raw.unwrap_or_default().to_string(),
            issue: want.2,
        };
        assert_eq!(booked, expected, "{raw:?} with {fixed:?}");
    }
}
