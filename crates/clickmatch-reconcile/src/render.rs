//! The report as text for a person: a summary line per section and a table of its rows.

use comfy_table::presets::ASCII_BORDERS_ONLY_CONDENSED;
use comfy_table::Table;
use rust_decimal::Decimal;

use crate::Report;

/// The report as tables, ending with the verdict `--max-differences` gives.
pub fn render_table(report: &Report) -> String {
    let mut out = String::new();
    let export = &report.export;
    out.push_str(&format!(
        "reconcile {} ({} export, {} conversions) against clickmatch from {} to {}\n",
        export.file, export.format, export.rows, report.from, report.to
    ));
    let columns: Vec<String> = export
        .columns
        .iter()
        .map(|(field, column)| format!("{field}={column}"))
        .collect();
    out.push_str(&format!("columns: {}\n", columns.join(", ")));
    for note in &report.notes {
        out.push_str(&format!("note: {note}\n"));
    }

    out.push_str(&format!("\nmatched: {}\n", report.matched));

    out.push_str(&format!(
        "\ndifferences: {} (payouts in the export's currency against clickmatch's payout as \
         sent, tolerance {})\n",
        report.differences.len(),
        report.tolerance
    ));
    if !report.differences.is_empty() {
        let mut table = table(&[
            "line",
            "matched by",
            "click ID",
            "txid",
            "differs",
            "network",
            "clickmatch",
        ]);
        for d in &report.differences {
            let network = format!(
                "{} {}",
                money(d.network.payout, d.network.currency.as_deref()),
                d.network.status_raw
            );
            let mut here = format!(
                "{} {}",
                money(Some(d.here.payout), Some(&d.here.currency)),
                d.here.status
            );
            if !d.here.payout_issue.is_empty() {
                here.push_str(&format!(" ({})", d.here.payout_issue));
            }
            table.add_row(vec![
                d.line.to_string(),
                d.matched_by.to_string(),
                d.click_id.clone(),
                d.txid.clone(),
                d.fields.join(", "),
                network.trim().to_string(),
                here.trim().to_string(),
            ]);
        }
        out.push_str(&format!("{table}\n"));
    }

    out.push_str(&format!(
        "\nonly in the network: {}\n",
        report.only_network.len()
    ));
    if !report.only_network.is_empty() {
        let mut table = table(&[
            "line",
            "click ID",
            "txid",
            "time",
            "payout",
            "status",
            "clickmatch",
        ]);
        for n in &report.only_network {
            table.add_row(vec![
                n.line.to_string(),
                n.click_id.clone(),
                n.txid.clone(),
                n.time.clone().unwrap_or_default(),
                money(n.payout, n.currency.as_deref()),
                n.status.clone().unwrap_or_default(),
                n.here.describe(),
            ]);
        }
        out.push_str(&format!("{table}\n"));
    }

    out.push_str(&format!("\nonly here: {}\n", report.only_here.len()));
    if !report.only_here.is_empty() {
        let mut table = table(&[
            "conversion",
            "click ID",
            "txid",
            "offer",
            "time",
            "payout",
            "status",
        ]);
        for h in &report.only_here {
            table.add_row(vec![
                h.conversion_id.clone(),
                h.click_id.clone(),
                h.txid.clone(),
                h.offer_id.clone(),
                h.time.clone(),
                money(Some(h.payout), Some(&h.currency)),
                h.status.clone(),
            ]);
        }
        out.push_str(&format!("{table}\n"));
    }

    let verdict = if report.passed { "within" } else { "more than" };
    out.push_str(&format!(
        "\n{} discrepancies: {verdict} --max-differences {}\n",
        report.discrepancies, report.max_differences
    ));
    out
}

fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_style(ASCII_BORDERS_ONLY_CONDENSED);
    table.set_header(header.to_vec());
    table
}

fn money(amount: Option<Decimal>, currency: Option<&str>) -> String {
    match amount {
        Some(amount) => format!("{amount} {}", currency.unwrap_or_default())
            .trim()
            .to_string(),
        None => String::new(),
    }
}
