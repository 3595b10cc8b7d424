//! Checks a live database against the row types. Without the `clickhouse` crate's validation
//! (unavailable on 18.16) a mismatched column would otherwise show up as a cryptic insert error
//! or, worse, as wrong values.

use serde::Deserialize;

use crate::error::ClickHouseError;
use crate::migrate::applied_versions;
use crate::migrations::MIGRATIONS;
use crate::outbound::OUTBOUND_COLUMNS;
use crate::rows::{CLICK_COLUMNS, CONVERSION_COLUMNS, RECOVERED_COLUMNS, UNATTRIBUTED_COLUMNS};
use crate::settings::ClickHouseSettings;

/// Tables written by the sink, with the columns and types it writes.
pub const TABLES: &[(&str, &[(&str, &str)])] = &[
    ("clicks", CLICK_COLUMNS),
    ("conversions", CONVERSION_COLUMNS),
    ("unattributed", UNATTRIBUTED_COLUMNS),
    ("recovered", RECOVERED_COLUMNS),
    ("outbound_deliveries", OUTBOUND_COLUMNS),
];

#[derive(Debug, clickhouse::Row, Deserialize)]
struct ColumnInfo {
    table: String,
    name: String,
    #[serde(rename = "type")]
    ty: String,
}

/// Checks that every migration is applied and every column the sink writes exists with the
/// type it writes. Extra columns (added by later migrations, with defaults) are fine.
pub async fn check_schema(settings: &ClickHouseSettings) -> Result<(), ClickHouseError> {
    settings.validate()?;
    let applied = applied_versions(settings).await?;
    let missing: Vec<u32> = MIGRATIONS
        .iter()
        .map(|m| m.version)
        .filter(|v| !applied.contains(v))
        .collect();
    if !missing.is_empty() {
        return Err(ClickHouseError::Schema(format!(
            "database {} lacks migrations {missing:?}: run `clickmatch migrate`",
            settings.database
        )));
    }

    let columns = settings
        .server_client()
        .query("SELECT table, name, type FROM system.columns WHERE database = ?")
        .bind(settings.database.as_str())
        .fetch_all::<ColumnInfo>()
        .await
        .map_err(|e| ClickHouseError::from_client("reading system.columns", e))?;
    let mut problems = Vec::new();
    for (table, expected) in TABLES {
        for (name, ty) in *expected {
            match columns
                .iter()
                .find(|c| c.table == *table && c.name == *name)
            {
                None => problems.push(format!("{table}.{name} is missing")),
                Some(c) if c.ty != *ty => {
                    problems.push(format!("{table}.{name} is {} but rows write {ty}", c.ty))
                }
                Some(_) => {}
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ClickHouseError::Schema(format!(
            "database {}: {}",
            settings.database,
            problems.join("; ")
        )))
    }
}
