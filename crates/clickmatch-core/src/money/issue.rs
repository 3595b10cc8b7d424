//! [`MoneyIssue`]: why a booked amount is not simply what was sent, with its stored code and
//! its hint.

use std::fmt;

use super::amount::AmountError;

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
    pub(super) fn of_payout(error: &AmountError) -> MoneyIssue {
        match error {
            AmountError::Macro(_) => MoneyIssue::PayoutMacro,
            AmountError::Unparsed(_) => MoneyIssue::PayoutUnparsed,
            AmountError::Ambiguous(_) => MoneyIssue::PayoutAmbiguous,
            AmountError::OutOfRange(_) => MoneyIssue::PayoutOutOfRange,
            AmountError::UnknownCurrency { .. } => MoneyIssue::CurrencyUnknown,
        }
    }

    /// How an unreadable cost is recorded.
    pub(super) fn of_cost(error: &AmountError) -> MoneyIssue {
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
