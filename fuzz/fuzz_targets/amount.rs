//! Money amounts: any text read as a payout or a click cost never panics; an amount read fits
//! the `Decimal(18, 6)` columns (|value| < 10^12, scale <= 6); booking books either the amount
//! read or the configured fallback, never a silent 0; a negative cost is never booked.
//!
//! Input: `payout \n currency` (the whole input is also read as one amount).
#![no_main]

use clickmatch_core::model::PayoutModel;
use clickmatch_core::money::{book_cost, book_payout, parse_amount, Currency};
use libfuzzer_sys::fuzz_target;
use rust_decimal::Decimal;

fn fits(value: Decimal) -> bool {
    value.abs() < Decimal::from(1_000_000_000_000i64) && value.scale() <= 6
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(amount) = parse_amount(text) {
        assert!(fits(amount.value), "{text:?} read as {}", amount.value);
    }

    let (payout, currency) = text.split_once('\n').unwrap_or((text, ""));
    let read = parse_amount(payout);
    let default_payout = Decimal::new(150, 2);
    for fallback in [None, Some(default_payout)] {
        let booked = book_payout(
            Some(payout),
            Some(currency),
            Currency::USD,
            PayoutModel::FromPostback,
            fallback,
        );
        assert!(fits(booked.payout));
        assert_eq!(booked.payout_raw, payout);
        match &read {
            Ok(amount) => assert_eq!(booked.payout, amount.value),
            Err(_) if payout.trim().is_empty() => {
                assert_eq!(booked.payout, fallback.unwrap_or_default())
            }
            Err(_) => {
                assert_eq!(booked.payout, fallback.unwrap_or_default());
                assert!(booked.issue.is_some(), "{payout:?} booked without an issue");
            }
        }
        for model in [
            PayoutModel::RevShare(Decimal::new(5, 1)),
            PayoutModel::Fixed(Decimal::ONE),
        ] {
            let booked = book_payout(Some(payout), Some(currency), Currency::EUR, model, fallback);
            assert!(fits(booked.payout));
        }
    }

    let fixed = Decimal::new(5, 2);
    let cost = book_cost(Some(payout), Some(fixed), Currency::USD);
    assert!(fits(cost.cost));
    assert!(
        !cost.cost.is_sign_negative() || cost.cost.is_zero(),
        "{payout:?}: {cost:?}"
    );
    if cost.issue.is_some() {
        assert_eq!(cost.cost, fixed);
    }
});
