//! `clickmatch report`: a report (`clickmatch_clickhouse::report`) printed as an aligned table,
//! JSON (the API's answer) or CSV. `dev` prints its campaign × country table the same way.

use std::fmt::Write as _;

use clickmatch_clickhouse::report::{self, figure, Column, Report, ReportParams};
use clickmatch_clickhouse::ClickHouseSettings;
use clickmatch_core::model::Account;

/// How `clickmatch report` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
}

/// The header and the text of every row, the totals last (its dimension cells say `total`).
fn cells(report: &Report) -> (Vec<String>, Vec<Vec<String>>) {
    let columns = report.columns();
    let group_by = &report.request.group_by;
    let header = columns.iter().map(|c| c.name().to_string()).collect();
    let mut rows: Vec<Vec<String>> = report
        .rows
        .iter()
        .map(|row| {
            columns
                .iter()
                .map(|&c| row.cell(group_by, c).text())
                .collect()
        })
        .collect();
    rows.push(
        columns
            .iter()
            .enumerate()
            .map(|(i, &c)| match c {
                Column::Dimension(_) if i == 0 => "total".to_string(),
                Column::Dimension(_) => String::new(),
                Column::Figure(f) => figure(&report.totals, f).text(),
            })
            .collect(),
    );
    (header, rows)
}

/// What `clickmatch dev` ends with: the top `limit` rows of a campaign × country report by
/// revenue, of the rows since `from_s` (Unix seconds), through the same code as `report`.
pub async fn top_campaigns_by_country(
    settings: &ClickHouseSettings,
    account: &Account,
    from_s: u32,
    limit: usize,
) -> anyhow::Result<Report> {
    let from = chrono::DateTime::from_timestamp(i64::from(from_s), 0).unwrap_or_default();
    let params = ReportParams {
        group_by: Some("campaign,country".into()),
        from: Some(from.to_rfc3339()),
        sort: Some("-revenue".into()),
        limit: Some(limit.to_string()),
        ..ReportParams::default()
    };
    // `to` a second from now: rows written this very second are in.
    let request = params.check(now() + chrono::Duration::seconds(1))?;
    Ok(report::run(settings, request, &report::networks(account)).await?)
}

/// The wall clock, for a report's default range.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    let ms = i64::try_from(clickmatch_core::clock::now_ms()).unwrap_or_default();
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// An aligned table: dimensions left, figures right; a value the rows lack as `-`, ratios
/// without a denominator empty.
pub fn table(report: &Report) -> String {
    let (header, mut rows) = cells(report);
    let dimensions = report.request.group_by.len();
    let totals = rows.pop().unwrap_or_default();
    for row in &mut rows {
        for text in row.iter_mut().take(dimensions) {
            if text.is_empty() {
                *text = "-".to_string();
            }
        }
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows.iter().chain([&totals]) {
        for (i, text) in row.iter().enumerate() {
            widths[i] = widths[i].max(text.chars().count());
        }
    }
    let line = |out: &mut String, row: &[String]| {
        let texts: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let pad = " ".repeat(widths[i].saturating_sub(text.chars().count()));
                if i < dimensions {
                    format!("{text}{pad}")
                } else {
                    format!("{pad}{text}")
                }
            })
            .collect();
        let _ = writeln!(out, "{}", texts.join("  ").trim_end());
    };
    let mut out = String::new();
    line(&mut out, &header);
    for row in &rows {
        line(&mut out, row);
    }
    let _ = writeln!(
        out,
        "{}",
        "-".repeat(widths.iter().sum::<usize>() + 2 * (widths.len() - 1))
    );
    line(&mut out, &totals);
    out
}

/// CSV with a header line, the totals as the last line.
pub fn csv(report: &Report) -> anyhow::Result<String> {
    let (header, rows) = cells(report);
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(&header)?;
    for row in &rows {
        writer.write_record(row)?;
    }
    Ok(String::from_utf8(writer.into_inner()?)?)
}

/// The report in `format`, with a line on its range, zone and size for the table.
pub fn render(report: &Report, format: Format) -> anyhow::Result<String> {
    Ok(match format {
        Format::Json => format!("{:#}\n", report.to_json()),
        Format::Csv => csv(report)?,
        Format::Table => {
            let request = &report.request;
            let mut out = format!(
                "{} to {} ({}), amounts in {}, {} of {} rows by {}\n",
                request
                    .from
                    .with_timezone(&request.tz)
                    .format("%Y-%m-%d %H:%M"),
                request
                    .to
                    .with_timezone(&request.tz)
                    .format("%Y-%m-%d %H:%M"),
                request.tz.name(),
                report.currency,
                report.rows.len(),
                report.rows_total,
                request.sort.param(),
            );
            out.push_str(&table(report));
            out
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use clickmatch_clickhouse::money::Figures;
    use clickmatch_clickhouse::report::{ReportParams, ReportRow};

    fn report() -> Report {
        let now = chrono::Utc.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).unwrap();
        let request = ReportParams::from_pairs([("group_by", "campaign,country")])
            .unwrap()
            .check(now)
            .unwrap();
        let row = |campaign: &str, country: &str, clicks, revenue: &str| ReportRow {
            keys: vec![campaign.into(), country.into()],
            figures: Figures {
                account_currency: "USD".into(),
                clicks,
                conversions: 1,
                revenue: revenue.parse().unwrap(),
                cost: "1.5".parse().unwrap(),
                unattributed: 0,
                unvalued: 0,
            },
        };
        Report::assemble(
            request,
            "USD".into(),
            vec![row("push-de", "DE", 10, "4"), row("x,\"y\"", "", 0, "2.25")],
        )
    }

    #[test]
    fn the_table_aligns_columns_and_ends_with_totals() {
        let table = table(&report());
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("campaign  country  clicks"), "{table}");
        assert!(lines[1].starts_with("push-de   DE"), "{table}");
        // A value the row lacks shows as "-", a missing ratio as nothing.
        assert!(lines[2].starts_with("x,\"y\"     -"), "{table}");
        assert!(lines[4].starts_with("total"), "{table}");
        assert!(lines[4].contains(" 6.25 "), "{table}");
    }

    #[test]
    fn csv_quotes_values_and_keeps_empty_ones_empty() {
        let csv = csv(&report()).unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert!(lines[0]
            .starts_with("campaign,country,clicks,conversions,revenue,cost,profit,roi,cr,epc"));
        assert_eq!(lines[2], "\"x,\"\"y\"\"\",,0,1,2.25,1.5,0.75,0.5,,,0,0");
        assert!(lines[3].starts_with("total,,10,2,6.25,3,3.25,"), "{csv}");
    }
}
