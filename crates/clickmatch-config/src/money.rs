//! The money keys of the configuration: the account currency, offers' default payouts and
//! campaigns' cost per click.

use std::str::FromStr;

use clickmatch_core::model::{ClickCost, MAX_RATE_AGE_DAYS};
use clickmatch_core::money::Currency;
use rust_decimal::Decimal;

use crate::{invalid, ConfigError};

/// A campaign's keys about cost, as written.
pub(crate) struct RawCost<'a> {
    /// `"cpc"`: every click costs `cost`, or what `cost_param` carries.
    pub cost_model: Option<&'a str>,
    pub cost: Option<&'a str>,
    pub cost_param: Option<&'a str>,
    pub cost_currency: Option<&'a str>,
}

/// A currency key: an ISO 4217 code in any case.
pub(crate) fn currency(value: &str, file: &str, key: String) -> Result<Currency, ConfigError> {
    Currency::parse(value).map_err(|e| invalid(file, key, e.to_string()))
}

/// `[account] max_rate_age_days`.
pub(crate) fn max_rate_age_days(value: u16, file: &str) -> Result<u16, ConfigError> {
    if value > MAX_RATE_AGE_DAYS {
        return Err(invalid(
            file,
            "account.max_rate_age_days",
            format!("must be at most {MAX_RATE_AGE_DAYS}"),
        ));
    }
    Ok(value)
}

/// An amount in the configuration: a plain decimal (`0.05`), at most 6 places, not negative.
pub(crate) fn amount(value: &str, file: &str, key: String) -> Result<Decimal, ConfigError> {
    let parsed = Decimal::from_str(value.trim()).map_err(|_| {
        invalid(
            file,
            key.clone(),
            format!("{value:?} is not a decimal number"),
        )
    })?;
    if parsed.is_sign_negative()
        || parsed.scale() > 6
        || parsed >= Decimal::from(1_000_000_000_000u64)
    {
        return Err(invalid(
            file,
            key,
            format!("{value:?} must be at least 0, below 10^12, with at most 6 decimal places"),
        ));
    }
    Ok(parsed)
}

/// A campaign's cost keys; `None` when it has no cost model.
pub(crate) fn click_cost(
    raw: &RawCost<'_>,
    account_currency: Currency,
    file: &str,
    key: &dyn Fn(&str) -> String,
) -> Result<Option<ClickCost>, ConfigError> {
    let model = match raw.cost_model {
        None => {
            if let Some((name, _)) = [
                ("cost", raw.cost.is_some()),
                ("cost_param", raw.cost_param.is_some()),
                ("cost_currency", raw.cost_currency.is_some()),
            ]
            .into_iter()
            .find(|(_, set)| *set)
            {
                return Err(invalid(
                    file,
                    key(name),
                    "needs cost_model = \"cpc\" (spend that is not per click: `clickmatch costs import`)",
                ));
            }
            return Ok(None);
        }
        Some(model) => model,
    };
    if model != "cpc" {
        return Err(invalid(
            file,
            key("cost_model"),
            format!(
                "{model:?} is not \"cpc\" (spend that is not per click: `clickmatch costs import`)"
            ),
        ));
    }
    let fixed = raw.cost.map(|c| amount(c, file, key("cost"))).transpose()?;
    let param = match raw.cost_param.map(str::trim) {
        Some("") => return Err(invalid(file, key("cost_param"), "must not be empty")),
        Some(name) => Some(name.to_string()),
        None => None,
    };
    if fixed.is_none() && param.is_none() {
        return Err(invalid(
            file,
            key("cost_model"),
            "\"cpc\" needs `cost` (the price of a click) or `cost_param` (the click-URL parameter the traffic source puts its cost in), or both",
        ));
    }
    let currency = match raw.cost_currency {
        Some(code) => currency(code, file, key("cost_currency"))?,
        None => account_currency,
    };
    Ok(Some(ClickCost {
        fixed,
        param,
        currency,
    }))
}
