//! `clickmatch reconcile`: a network's conversion export against our conversions in ClickHouse.
//! The reading is `clickmatch-import`'s, the queries `clickmatch-clickhouse`'s, the comparison
//! `clickmatch-reconcile`'s; this module wires them and decides the exit status.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use chrono::{DateTime, Duration, Utc};
use clickmatch_clickhouse::reconcile::{ReconcileConversion, ReconcileReader, UnattributedHit};
use clickmatch_clickhouse::ClickHouseSettings;
use clickmatch_config::Config;
use clickmatch_import::{parse_export, parse_time, ExportFormat, NetworkExport, Tz};
use clickmatch_reconcile::{
    build_report, match_conversions, render_table, Lookups, Options, Ours, Report,
};
use rust_decimal::Decimal;

/// Our side's period ends this long after the export's last conversion: postbacks reach us
/// after the network records the conversion.
pub const MARGIN: Duration = Duration::hours(1);
/// A click precedes its conversions by at most the longest attribution window (90 days).
const LONGEST_WINDOW: Duration = Duration::days(91);
/// Unattributed postbacks of the export's conversions arrive after the network records them;
/// a day allows for clocks and time zones that disagree.
const POSTBACK_SLACK: Duration = Duration::days(1);

/// What `clickmatch reconcile` was asked.
#[derive(Debug, Clone)]
pub struct ReconcileArgs {
    pub report: PathBuf,
    pub network: Option<String>,
    pub columns: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub tz: String,
    pub offers: Vec<String>,
    pub tolerance: Decimal,
    pub max_differences: usize,
}

/// Why there is no report. Both end with exit status 2, so that 1 always means "the numbers
/// differ" to a cron job.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// A bad option or an export that cannot be read.
    #[error("{0}")]
    Input(String),
    /// ClickHouse could not be read.
    #[error("{0:#}")]
    Store(anyhow::Error),
}

/// Runs the comparison. `Ok` whatever the differences; [`Report::passed`] says whether they are
/// within `--max-differences`.
pub async fn run(
    config: &Config,
    settings: &ClickHouseSettings,
    args: &ReconcileArgs,
) -> Result<Report, ReconcileError> {
    let input = ReconcileError::Input;
    let mut format = match &args.network {
        Some(network) => ExportFormat::for_network(network).map_err(|e| input(e.to_string()))?,
        None => ExportFormat::clickmatch(),
    };
    if let Some(columns) = &args.columns {
        format = format
            .with_columns(columns)
            .map_err(|e| input(e.to_string()))?;
    }
    let tz: Tz = args.tz.parse().map_err(|_| {
        input(format!(
            "--tz {:?}: expected an IANA time zone such as UTC or Europe/Berlin",
            args.tz
        ))
    })?;
    if args.tolerance.is_sign_negative() {
        return Err(input(format!(
            "--tolerance {}: expected an amount of 0 or more",
            args.tolerance
        )));
    }
    let name = args.report.display().to_string();
    let bytes =
        std::fs::read(&args.report).map_err(|e| input(format!("cannot read {name}: {e}")))?;
    let export =
        parse_export(&bytes, &name, &format, tz).map_err(|e| input(format!("refused: {e}")))?;
    let (from, to) = period(&export, args, tz)?;
    let offers = scope(config, &export, &args.offers);

    let store = |e: clickmatch_clickhouse::ClickHouseError| ReconcileError::Store(e.into());
    let reader = ReconcileReader::new(settings).map_err(store)?;
    let clicks_since = seconds(from - LONGEST_WINDOW);
    let in_period = reader
        .conversions_between(clicks_since, seconds(from), seconds(to), &offers)
        .await
        .map_err(store)?;
    let click_ids = distinct(export.rows.iter().map(|r| r.click_id.as_str()));
    let txids = distinct(export.rows.iter().map(|r| r.txid.as_str()));
    let by_ids = reader
        .conversions_with_ids(&click_ids, &txids, clicks_since, seconds(to))
        .await
        .map_err(store)?;
    let ours = ours(in_period, by_ids);

    let matching = match_conversions(&export.rows, &ours);
    let missing = matching.only_network.iter().map(|&n| &export.rows[n]);
    let missing_clicks = distinct(missing.clone().map(|r| r.click_id.as_str()));
    let missing_txids = distinct(missing.map(|r| r.txid.as_str()));
    let postbacks_since = seconds(from - POSTBACK_SLACK);
    let mut lookups = Lookups::default();
    for hit in reader
        .unattributed_by_click_ids(&missing_clicks, postbacks_since)
        .await
        .map_err(store)?
    {
        add(&mut lookups.unattributed_by_click, &hit);
    }
    for hit in reader
        .unattributed_by_txids(&missing_txids, postbacks_since)
        .await
        .map_err(store)?
    {
        add(&mut lookups.unattributed_by_txid, &hit);
    }
    for click in reader
        .clicks(&missing_clicks, clicks_since)
        .await
        .map_err(store)?
    {
        let time = DateTime::from_timestamp(i64::from(click.click_time), 0).unwrap_or_default();
        lookups.clicks.insert(click.click_id, time);
    }

    let options = Options {
        file: name,
        tolerance: args.tolerance,
        max_differences: args.max_differences,
        from,
        to,
    };
    let mut report = build_report(&export, &ours, &matching, &lookups, &options);
    if offers.is_empty() {
        report.notes.push(
            "only here: every offer's conversions in the period (name offers with --offer, or \
             give offers this network in the configuration)"
                .to_string(),
        );
    } else {
        report
            .notes
            .push(format!("only here: offers {}", offers.join(", ")));
    }
    Ok(report)
}

/// The report as the operator asked for it.
pub fn render(report: &Report, json: bool) -> String {
    if json {
        let mut text = serde_json::to_string_pretty(report).expect("a report serializes");
        text.push('\n');
        text
    } else {
        render_table(report)
    }
}

/// `--from`/`--to`, each defaulting to the export's first conversion time and its last plus
/// [`MARGIN`].
fn period(
    export: &NetworkExport,
    args: &ReconcileArgs,
    tz: Tz,
) -> Result<(DateTime<Utc>, DateTime<Utc>), ReconcileError> {
    let given = |flag: &str, value: &Option<String>| -> Result<_, ReconcileError> {
        value
            .as_deref()
            .map(|text| {
                parse_time(text, tz)
                    .map_err(|e| ReconcileError::Input(format!("{flag} {text:?}: {e}")))
            })
            .transpose()
    };
    let from = given("--from", &args.from)?;
    let to = given("--to", &args.to)?;
    let own = export.time_range();
    let from = from.or(own.map(|(first, _)| first));
    let to = to.or(own.map(|(_, last)| last + MARGIN));
    match (from, to) {
        (Some(from), Some(to)) if from <= to => Ok((from, to)),
        (Some(from), Some(to)) => Err(ReconcileError::Input(format!(
            "the period ends ({to}) before it starts ({from})"
        ))),
        _ => Err(ReconcileError::Input(
            "the export has no conversion times (no time column, or empty cells): give --from \
             and --to"
                .to_string(),
        )),
    }
}

/// The offers whose conversions may be "only here": `--offer`, else those the configuration
/// gives the export's network, else all (empty).
fn scope(config: &Config, export: &NetworkExport, offers: &[String]) -> Vec<String> {
    if !offers.is_empty() {
        return offers.to_vec();
    }
    config
        .account
        .offers
        .values()
        .filter(|offer| {
            offer
                .network
                .as_deref()
                .and_then(clickmatch_core::presets::preset)
                .is_some_and(|preset| preset.name == export.format.name)
        })
        .map(|offer| offer.id.clone())
        .collect()
}

fn ours(in_period: Vec<ReconcileConversion>, by_ids: Vec<ReconcileConversion>) -> Vec<Ours> {
    let in_scope: BTreeSet<String> = in_period.iter().map(|c| c.conversion_id.clone()).collect();
    let mut all: BTreeMap<String, ReconcileConversion> = BTreeMap::new();
    for conversion in in_period.into_iter().chain(by_ids) {
        all.entry(conversion.conversion_id.clone())
            .or_insert(conversion);
    }
    all.into_values()
        .map(|c| Ours {
            in_scope: in_scope.contains(&c.conversion_id),
            time: DateTime::from_timestamp_millis(i64::try_from(c.conversion_time_ms).unwrap_or(0))
                .unwrap_or_default(),
            conversion_id: c.conversion_id,
            click_id: c.click_id,
            txid: c.txid,
            offer_id: c.offer_id,
            event: c.event,
            status: c.status,
            payout: shown(c.payout),
            currency: c.currency,
            payout_issue: c.payout_issue,
        })
        .collect()
}

fn add(
    map: &mut std::collections::HashMap<String, clickmatch_reconcile::Seen>,
    hit: &UnattributedHit,
) {
    let received =
        DateTime::from_timestamp_millis(i64::try_from(hit.received_time_ms).unwrap_or(0))
            .unwrap_or_default();
    Lookups::add_unattributed(map, &hit.key, &hit.reason, &hit.hint, received);
}

/// A `Decimal(18, 6)` as people write it: `2.50`, not `2.500000`.
fn shown(amount: Decimal) -> Decimal {
    let mut amount = amount.normalize();
    if amount.scale() < 2 {
        amount.rescale(2);
    }
    amount
}

fn distinct<'a>(values: impl Iterator<Item = &'a str>) -> Vec<String> {
    let set: BTreeSet<&str> = values.filter(|v| !v.is_empty()).collect();
    set.into_iter().map(str::to_string).collect()
}

/// Unix seconds for a `DateTime` column, clamped to its range.
fn seconds(time: DateTime<Utc>) -> u32 {
    u32::try_from(time.timestamp().max(0)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(from: Option<&str>, to: Option<&str>) -> ReconcileArgs {
        ReconcileArgs {
            report: PathBuf::from("x.csv"),
            network: None,
            columns: None,
            from: from.map(str::to_string),
            to: to.map(str::to_string),
            tz: "UTC".into(),
            offers: Vec::new(),
            tolerance: Decimal::new(1, 2),
            max_differences: 0,
        }
    }

    fn export(text: &str, format: ExportFormat) -> NetworkExport {
        parse_export(text.as_bytes(), "x.csv", &format, Tz::UTC).unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn the_period_defaults_to_the_exports_own_with_a_margin() {
        let e = export(
            "click_id,time\na,2026-11-02 12:00:00\nb,2026-11-02 09:30:00\n",
            ExportFormat::clickmatch(),
        );
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        assert_eq!(
            period(&e, &args(None, None), Tz::UTC).unwrap(),
            (at("2026-11-02T09:30:00Z"), at("2026-11-02T13:00:00Z"))
        );
        // Given bounds win, read in --tz.
        assert_eq!(
            period(&e, &args(Some("2026-11-02"), None), berlin).unwrap(),
            (at("2026-11-01T23:00:00Z"), at("2026-11-02T13:00:00Z"))
        );
        assert!(matches!(
            period(&e, &args(Some("2026-11-03"), None), Tz::UTC),
            Err(ReconcileError::Input(m)) if m.contains("before it starts")
        ));
        assert!(matches!(
            period(&e, &args(Some("soon"), None), Tz::UTC),
            Err(ReconcileError::Input(m)) if m.contains("--from \"soon\"")
        ));
        let untimed = export("click_id\na\n", ExportFormat::clickmatch());
        assert!(matches!(
            period(&untimed, &args(None, None), Tz::UTC),
            Err(ReconcileError::Input(m)) if m.contains("give --from and --to")
        ));
        assert!(period(
            &untimed,
            &args(Some("2026-11-01"), Some("2026-11-02")),
            Tz::UTC
        )
        .is_ok());
    }

    #[test]
    fn only_here_covers_the_networks_offers_unless_told() {
        let config = Config::demo(&Default::default()).unwrap();
        let tune = export(
            "Partner Sub ID 1\na\n",
            ExportFormat::for_network("tune").unwrap(),
        );
        // The demo's offer 1 is TUNE's, offer 2 CAKE's.
        assert_eq!(scope(&config, &tune, &[]), ["1"]);
        assert_eq!(scope(&config, &tune, &["2".to_string()]), ["2"]);
        let everflow = export("sub1\na\n", ExportFormat::for_network("everflow").unwrap());
        assert!(
            scope(&config, &everflow, &[]).is_empty(),
            "no Everflow offer: all offers"
        );
    }

    #[test]
    fn amounts_as_people_write_them() {
        assert_eq!(shown(Decimal::new(2_500_000, 6)).to_string(), "2.50");
        assert_eq!(shown(Decimal::new(1_234_567, 6)).to_string(), "1.234567");
        assert_eq!(shown(Decimal::ZERO).to_string(), "0.00");
    }
}
