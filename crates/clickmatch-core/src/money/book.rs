//! Booking a conversion's payout ([`book_payout`]) and a click's cost ([`book_cost`]): the
//! amount and currency booked, the text sent, and at most one issue.

use rust_decimal::{Decimal, RoundingStrategy};

use super::amount::{parse_amount, MAX_INT_DIGITS, SCALE};
use super::currency::Currency;
use super::issue::MoneyIssue;
use crate::model::PayoutModel;

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
/// [`Amount::admits`](super::Amount::admits)) is a `CurrencyConflict`. An invalid parameter
/// (`{currency}`, `dollars`, `US`) is `CurrencyUnknown` and the text's currency, else
/// `default_currency`, is booked.
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
