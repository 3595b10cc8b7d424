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

mod amount;
mod book;
mod currency;
mod iso_4217;
mod issue;
mod symbols;

pub use amount::{parse_amount, Amount, AmountError, SCALE};
pub use book::{book_cost, book_payout, BookedCost, BookedPayout};
pub use currency::{Currency, CurrencyError};
pub use issue::{issue_code, MoneyIssue};
