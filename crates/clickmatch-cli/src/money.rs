//! `clickmatch rates import` and `clickmatch costs import`: a file read whole, refused whole on
//! the first bad line (file, line and column named), written in one insert.

use std::path::Path;

use anyhow::{bail, Context};
use clickmatch_clickhouse::money::{self as store, CostImport, CostRow, RateRow};
use clickmatch_clickhouse::ClickHouseSettings;
use clickmatch_config::Config;
use clickmatch_core::clock::now_ms;
use clickmatch_core::model::Account;
use clickmatch_import::{parse_costs, parse_ecb_rates, ImportError, Period};

/// What an import wrote, for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    pub rows: usize,
    pub summary: String,
}

/// Records `[account] currency` and `max_rate_age_days` for the views that value money; run by
/// every `migrate`.
pub async fn write_account(settings: &ClickHouseSettings, account: &Account) -> anyhow::Result<()> {
    store::write_account(
        settings,
        account.currency.as_str(),
        account.max_rate_age_days,
        now_ms(),
    )
    .await
    .context("recording the account currency")
}

/// Today in UTC, the day the demo's rates are dated.
pub fn today_utc() -> chrono::NaiveDate {
    let seconds = i64::try_from(now_ms() / 1000).unwrap_or_default();
    chrono::DateTime::from_timestamp(seconds, 0)
        .unwrap_or_default()
        .date_naive()
}

/// Imports [`crate::demo::DEMO_RATES`] dated `day`, through the same reader as a real file.
pub async fn import_demo_rates(
    settings: &ClickHouseSettings,
    day: chrono::NaiveDate,
) -> anyhow::Result<()> {
    let xml = crate::demo::demo_rates_xml(&day.to_string());
    let file = parse_ecb_rates(xml.as_bytes(), "demo rates").map_err(refused)?;
    insert_rate_rows(settings, &file.rates, "demo rates (sample values)").await?;
    Ok(())
}

async fn insert_rate_rows(
    settings: &ClickHouseSettings,
    rates: &[clickmatch_import::Rate],
    source: &str,
) -> anyhow::Result<usize> {
    let imported_ms = now_ms();
    let rows: Vec<RateRow> = rates
        .iter()
        .map(|rate| RateRow {
            day: days_since_epoch(rate.day),
            currency: rate.currency.to_string(),
            per_eur: rate.per_eur,
            source: source.to_string(),
            imported_ms,
        })
        .collect();
    store::insert_rates(settings, &rows)
        .await
        .context("writing exchange_rates")?;
    Ok(rows.len())
}

/// Imports an ECB euro reference-rate file (daily or historical, XML or CSV). Importing the
/// same file again rewrites the same rows.
pub async fn import_rates(settings: &ClickHouseSettings, path: &Path) -> anyhow::Result<Imported> {
    let (bytes, name) = read(path)?;
    let file = parse_ecb_rates(&bytes, &name).map_err(refused)?;
    let rows = insert_rate_rows(settings, &file.rates, &name).await?;
    let first = file.rates.first().map(|r| r.day);
    let last = file.rates.last().map(|r| r.day);
    let mut summary = format!(
        "{rows} rates ({} days {} to {}) from {name}",
        distinct_days(&file.rates),
        first.map(|d| d.to_string()).unwrap_or_default(),
        last.map(|d| d.to_string()).unwrap_or_default(),
    );
    if !file.skipped_currencies.is_empty() {
        summary.push_str(&format!(
            "; skipped withdrawn currencies {}",
            file.skipped_currencies.join(", ")
        ));
    }
    Ok(Imported { rows, summary })
}

/// Imports a cost file. Every campaign must exist in the configuration (a typo must not book
/// spend nowhere); a later import of the same campaign and period replaces this one.
pub async fn import_costs(
    settings: &ClickHouseSettings,
    config: &Config,
    path: &Path,
) -> anyhow::Result<Imported> {
    let (bytes, name) = read(path)?;
    let lines = parse_costs(&bytes, &name).map_err(refused)?;
    let imported_ms = now_ms();
    let import_id = format!("{name}@{imported_ms}");
    let mut rows = Vec::with_capacity(lines.len());
    for line in &lines {
        let Some(campaign) = config.account.campaigns.get(&line.campaign) else {
            bail!(
                "refused, nothing imported: {name}:{}: no campaign {:?} in the configuration (known: {})",
                line.line,
                line.campaign,
                config.account.campaigns.keys().cloned().collect::<Vec<_>>().join(", ")
            );
        };
        let import = CostImport {
            file: &name,
            import_id: &import_id,
            imported_ms,
        };
        rows.push(CostRow::of_line(line, campaign, import));
    }
    store::insert_costs(settings, &rows)
        .await
        .context("writing costs")?;
    let periods: std::collections::BTreeSet<(String, Period)> = lines
        .iter()
        .map(|l| (l.campaign.clone(), l.period))
        .collect();
    Ok(Imported {
        rows: rows.len(),
        summary: format!(
            "{} cost lines for {} campaign periods from {name} (replacing earlier imports of those periods)",
            rows.len(),
            periods.len()
        ),
    })
}

fn read(path: &Path) -> anyhow::Result<(Vec<u8>, String)> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok((bytes, path.display().to_string()))
}

fn refused(error: ImportError) -> anyhow::Error {
    anyhow::anyhow!("refused, nothing imported: {error}")
}

fn days_since_epoch(day: chrono::NaiveDate) -> u16 {
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("a valid date");
    u16::try_from((day - epoch).num_days()).unwrap_or(0)
}

fn distinct_days(rates: &[clickmatch_import::Rate]) -> usize {
    let mut days: Vec<_> = rates.iter().map(|r| r.day).collect();
    days.dedup();
    days.len()
}
