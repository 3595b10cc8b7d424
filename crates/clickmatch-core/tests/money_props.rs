//! Properties of money parsing: it never panics, every supported style reads back the value
//! and currency it was written from (or is refused as ambiguous where the rules say so), and
//! booking agrees with parsing.

use clickmatch_core::model::PayoutModel;
use clickmatch_core::money::{
    book_cost, book_payout, parse_amount, AmountError, Currency, MoneyIssue,
};
use proptest::prelude::*;
use rust_decimal::Decimal;

const LIMIT: i64 = 1_000_000_000_000;

fn in_range(value: Decimal) -> bool {
    value.abs() < Decimal::from(LIMIT) && value.scale() <= 6
}

/// Text made of what amounts are made of, so that the parser's corners are reached often.
fn amountish() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("0"),
            Just("1"),
            Just("5"),
            Just("9"),
            Just("123"),
            Just("."),
            Just(","),
            Just("'"),
            Just(" "),
            Just("\u{a0}"),
            Just("\u{202f}"),
            Just("e"),
            Just("E"),
            Just("+"),
            Just("-"),
            Just("\u{2212}"),
            Just("$"),
            Just("€"),
            Just("¥"),
            Just("zł"),
            Just("USD"),
            Just("usd"),
            Just("ABC"),
            Just("{payout}"),
            Just("%7B"),
            Just("#"),
            Just("NaN"),
            Just("C$"),
            Just("R"),
        ],
        0..12,
    )
    .prop_map(|parts| parts.concat())
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), amountish()]
}

proptest! {
    #[test]
    fn parse_amount_never_panics(raw in text()) {
        if let Ok(amount) = parse_amount(&raw) {
            prop_assert!(in_range(amount.value), "{raw:?} -> {}", amount.value);
        }
    }
}

/// How the number is written.
#[derive(Debug, Clone, Copy)]
enum Style {
    /// `1234.5`
    Plain,
    /// `1234,5`
    DecimalComma,
    /// The integer part grouped in threes by `group`, `decimal` before the fraction.
    Grouped { group: &'static str, decimal: char },
    /// `12345e-1`: the digits and a negative exponent (`E` when `upper`).
    Scientific { upper: bool },
}

fn style() -> impl Strategy<Value = Style> {
    prop_oneof![
        Just(Style::Plain),
        Just(Style::DecimalComma),
        Just(Style::Grouped {
            group: ",",
            decimal: '.'
        }),
        Just(Style::Grouped {
            group: ".",
            decimal: ','
        }),
        Just(Style::Grouped {
            group: " ",
            decimal: ','
        }),
        Just(Style::Grouped {
            group: " ",
            decimal: '.'
        }),
        Just(Style::Grouped {
            group: "\u{a0}",
            decimal: ','
        }),
        Just(Style::Grouped {
            group: "\u{202f}",
            decimal: ','
        }),
        Just(Style::Grouped {
            group: "'",
            decimal: '.'
        }),
        Just(Style::Scientific { upper: false }),
        Just(Style::Scientific { upper: true }),
    ]
}

/// A currency marker and the currency it should be read as.
fn marker() -> impl Strategy<Value = Option<(&'static str, &'static str)>> {
    prop_oneof![
        Just(None),
        Just(Some(("$", "USD"))),
        Just(Some(("€", "EUR"))),
        Just(Some(("£", "GBP"))),
        Just(Some(("¥", "JPY"))),
        Just(Some(("₹", "INR"))),
        Just(Some(("zł", "PLN"))),
        Just(Some(("R$", "BRL"))),
        Just(Some(("CA$", "CAD"))),
        Just(Some(("USD", "USD"))),
        Just(Some(("eur", "EUR"))),
        Just(Some(("CHF", "CHF"))),
        Just(Some(("XOF", "XOF"))),
    ]
}

/// A value of at most 12 integer digits and 6 decimals, with its scale kept (`2.50`).
fn value() -> impl Strategy<Value = Decimal> {
    (0u32..=6, 0u32..=12, any::<u64>(), any::<bool>()).prop_map(|(scale, digits, raw, negative)| {
        let mantissa = i128::from(raw) % 10i128.pow(digits + scale);
        let value = Decimal::from_i128_with_scale(mantissa, scale);
        if negative {
            -value
        } else {
            value
        }
    })
}

fn group_thousands(int: &str, group: &str) -> String {
    let mut out = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i).is_multiple_of(3) {
            out.push_str(group);
        }
        out.push(c);
    }
    out
}

/// `value`'s magnitude written in `style`.
fn render(value: Decimal, style: Style) -> String {
    let text = value.abs().to_string();
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let with = |decimal: char| {
        if frac.is_empty() {
            int.to_string()
        } else {
            format!("{int}{decimal}{frac}")
        }
    };
    match style {
        Style::Plain => with('.'),
        Style::DecimalComma => with(','),
        Style::Grouped { group, decimal } => {
            let int = group_thousands(int, group);
            if frac.is_empty() {
                int
            } else {
                format!("{int}{decimal}{frac}")
            }
        }
        Style::Scientific { upper } => {
            format!(
                "{int}{frac}{}-{}",
                if upper { 'E' } else { 'e' },
                frac.len()
            )
        }
    }
}

/// What the rules say `render(value, style)` reads as (`marked`: a currency marker goes with
/// it): the value itself, except
/// - one `,` followed by exactly three digits after a 1-3 digit group not starting with 0
///   (`1,234` as thousands, `1,234` as a decimal comma) is ambiguous;
/// - one `.` followed by three digits is the decimal point without a marker, so a whole number
///   of 4 to 6 digits grouped by `.` (`1.234` meaning 1234) reads as a thousandth of itself;
///   with a marker it is ambiguous like the comma.
fn expected(value: Decimal, style: Style, marked: bool) -> Result<Decimal, ()> {
    let text = value.abs().to_string();
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let ambiguous_comma = |before: &str, after: &str| {
        after.len() == 3 && before.len() <= 3 && !before.starts_with('0')
    };
    let one_group = (4..=6).contains(&int.len());
    match style {
        Style::Plain if marked && ambiguous_comma(int, frac) => Err(()),
        Style::Grouped { decimal: '.', .. }
            if marked && int.len() <= 3 && ambiguous_comma(int, frac) =>
        {
            Err(())
        }
        Style::Grouped { group: ".", .. } if marked && one_group && frac.is_empty() => Err(()),
        Style::DecimalComma if ambiguous_comma(int, frac) => Err(()),
        Style::Grouped { decimal: ',', .. } if int.len() <= 3 && ambiguous_comma(int, frac) => {
            Err(())
        }
        Style::Grouped { group: ",", .. } if one_group && frac.is_empty() => Err(()),
        Style::Grouped { group: ".", .. } if one_group && frac.is_empty() => {
            Ok(value / Decimal::from(1000))
        }
        _ => Ok(value),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn every_style_reads_back(
        value in value(),
        style in style(),
        marker in marker(),
        before in any::<bool>(),
        space in prop_oneof![Just(""), Just(" "), Just("\u{a0}")],
        plus in any::<bool>(),
        sign_inside in any::<bool>(),
    ) {
        let number = render(value, style);
        let sign = if value.is_sign_negative() && !value.is_zero() { "-" } else if plus { "+" } else { "" };
        let text = match marker {
            None => format!("{sign}{number}"),
            Some((mark, _)) if before && sign_inside => format!("{mark}{space}{sign}{number}"),
            Some((mark, _)) if before => format!("{sign}{mark}{space}{number}"),
            Some((mark, _)) => format!("{sign}{number}{space}{mark}"),
        };
        let want_currency = marker.map(|(_, code)| Currency::parse(code).unwrap());
        match (expected(value, style, marker.is_some()), parse_amount(&text)) {
            (Ok(want), Ok(got)) => {
                prop_assert_eq!(got.value, want, "{:?}", text);
                prop_assert_eq!(got.currency, want_currency, "{:?}", text);
            }
            (Err(()), Err(AmountError::Ambiguous(_))) => {}
            (want, got) => prop_assert!(false, "{text:?}: want {want:?}, got {got:?}"),
        }
    }

    #[test]
    fn book_payout_agrees_with_parse_amount(
        raw in prop_oneof![text(), value().prop_map(|v| v.to_string())],
        currency in prop_oneof![Just(None), text().prop_map(Some), Just(Some("EUR".to_string()))],
        default_payout in prop_oneof![Just(None), value().prop_map(Some)],
    ) {
        let booked = book_payout(Some(&raw), currency.as_deref(), Currency::USD, PayoutModel::FromPostback, default_payout);
        prop_assert_eq!(&booked.payout_raw, &raw);
        let payout_issue = matches!(
            booked.issue,
            Some(MoneyIssue::PayoutMacro | MoneyIssue::PayoutUnparsed | MoneyIssue::PayoutAmbiguous
                | MoneyIssue::PayoutOutOfRange | MoneyIssue::PayoutMissing)
        );
        if raw.trim().is_empty() {
            prop_assert_eq!(booked.payout, default_payout.unwrap_or_default());
        } else {
            match parse_amount(&raw) {
                Ok(amount) => {
                    prop_assert_eq!(booked.payout, amount.value);
                    prop_assert!(!payout_issue);
                }
                Err(_) => {
                    prop_assert_eq!(booked.payout, default_payout.unwrap_or_default());
                    prop_assert!(booked.issue.is_some());
                }
            }
        }
        if booked.issue.is_none() && !raw.trim().is_empty() {
            prop_assert_eq!(Some(booked.payout), parse_amount(&raw).ok().map(|a| a.value));
        }

        for model in [PayoutModel::RevShare(Decimal::new(5, 1)), PayoutModel::Fixed(Decimal::ONE)] {
            let booked = book_payout(Some(&raw), currency.as_deref(), Currency::EUR, model, default_payout);
            prop_assert!(in_range(booked.payout));
        }
        let cost = book_cost(Some(&raw), default_payout.map(|d| d.abs()), Currency::USD);
        prop_assert!(cost.issue.is_some() || !cost.cost.is_sign_negative() || cost.cost.is_zero());
    }
}
