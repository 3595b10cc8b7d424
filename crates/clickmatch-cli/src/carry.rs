//! `clickmatch carry-subs`: conversions written before they carried subs (before migration
//! 0011, or before a sub was added to `[joiner] conversion_subs`) given their click's, so that
//! reports using those subs over their range read the conversions alone (docs/reports.md).

use anyhow::Context;
use chrono::NaiveDate;
use clickmatch_clickhouse::carry::{carry_subs, Carried};
use clickmatch_clickhouse::ClickHouseSettings;
use clickmatch_config::Config;
use clickmatch_core::subs::SubSet;

/// What to carry, over which days.
#[derive(Debug, Clone, Default)]
pub struct CarryArgs {
    /// First day (UTC), inclusive; `None`: the first conversion.
    pub from: Option<String>,
    /// Last day (UTC), exclusive; `None`: after the last conversion.
    pub to: Option<String>,
    /// Subs to carry, comma-separated; `None`: `[joiner] conversion_subs`.
    pub subs: Option<String>,
    /// Write the copies (otherwise only count).
    pub apply: bool,
}

/// Unix seconds of `[from, to)`, each a day `YYYY-MM-DD` in UTC.
pub fn range(from: Option<&str>, to: Option<&str>) -> anyhow::Result<(u32, u32)> {
    let seconds = |option: &str, day: Option<&str>, default: u32| -> anyhow::Result<u32> {
        let Some(day) = day else { return Ok(default) };
        let date = NaiveDate::parse_from_str(day, "%Y-%m-%d")
            .with_context(|| format!("--{option} {day:?} is not a day YYYY-MM-DD"))?;
        let seconds = date
            .and_hms_opt(0, 0, 0)
            .expect("midnight")
            .and_utc()
            .timestamp();
        u32::try_from(seconds)
            .with_context(|| format!("--{option} {day:?} is outside 1970-01-01..2106-02-07"))
    };
    let (from, to) = (seconds("from", from, 0)?, seconds("to", to, u32::MAX)?);
    anyhow::ensure!(from < to, "--from must be before --to");
    Ok((from, to))
}

/// `sub1, sub3`.
fn names(subs: SubSet) -> String {
    subs.indexes()
        .map(|i| format!("sub{}", i + 1))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the run found and did, for a person.
pub fn summary(carried: &Carried, subs: SubSet, apply: bool) -> String {
    let subs = names(subs);
    let Carried {
        lacking,
        written,
        still_lacking,
        days,
    } = *carried;
    if lacking == 0 {
        return format!("every conversion in range carries {subs}: nothing to do\n");
    }
    let days = if days == 1 {
        "1 day".to_string()
    } else {
        format!("{days} days")
    };
    let found = format!("{lacking} conversions over {days} lacked {subs}");
    if !apply {
        return format!("{found} (dry run: --apply gives them their click's)\n");
    }
    let mut text = format!("{found}; {written} now carry their click's\n");
    if still_lacking > 0 {
        text.push_str(&format!(
            "{still_lacking} still lack one: their click is not in ClickHouse's clicks table, \
             or its sub is longer than 255 bytes (reports using it read their clicks)\n"
        ));
    }
    text
}

pub async fn run(
    config: &Config,
    settings: &ClickHouseSettings,
    args: &CarryArgs,
) -> anyhow::Result<String> {
    let subs = match &args.subs {
        None => config.account.conversion_subs,
        Some(names) => SubSet::parse(names.split(',').map(str::trim)).map_err(|name| {
            anyhow::anyhow!("--subs names {name:?}: each must be one of sub1..sub10")
        })?,
    };
    anyhow::ensure!(
        !subs.is_empty(),
        "no subs to carry: [joiner] conversion_subs is empty and --subs names none"
    );
    let (from, to) = range(args.from.as_deref(), args.to.as_deref())?;
    let carried = carry_subs(settings, subs, from, to, !args.apply).await?;
    Ok(summary(&carried, subs, args.apply))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_utc_days_and_bad_ones_are_named() {
        assert_eq!(range(None, None).unwrap(), (0, u32::MAX));
        assert_eq!(
            range(Some("2026-12-01"), Some("2026-12-02")).unwrap(),
            (1_796_083_200, 1_796_169_600)
        );
        let bad = range(Some("2026-13-01"), None).unwrap_err().to_string();
        assert!(bad.contains("--from \"2026-13-01\""), "{bad}");
        let before = range(Some("1969-12-31"), None).unwrap_err().to_string();
        assert!(before.contains("--from"), "{before}");
        let backwards = range(Some("2026-12-02"), Some("2026-12-01")).unwrap_err();
        assert!(backwards.to_string().contains("before --to"));
    }

    #[test]
    fn the_summary_says_what_was_found_and_done() {
        let subs = SubSet::parse(["sub1", "sub3"]).unwrap();
        assert_eq!(
            summary(&Carried::default(), subs, true),
            "every conversion in range carries sub1, sub3: nothing to do\n"
        );
        let found = Carried {
            lacking: 12,
            written: 0,
            still_lacking: 12,
            days: 3,
        };
        assert_eq!(
            summary(&found, subs, false),
            "12 conversions over 3 days lacked sub1, sub3 (dry run: --apply gives them their \
             click's)\n"
        );
        let done = Carried {
            written: 10,
            still_lacking: 2,
            ..found
        };
        let text = summary(&done, subs, true);
        assert!(text.starts_with(
            "12 conversions over 3 days lacked sub1, sub3; 10 now carry their click's\n2 still lack"
        ));
    }
}
