//! Applies the versioned schema migrations (`crate::migrations`) for `clickmatch migrate`: once
//! each, recorded in `schema_migrations`, on one server or a cluster.

use clickhouse::Client;

use crate::cluster::{self, Layout};
use crate::error::ClickHouseError;
use crate::migrations::MIGRATIONS;
use crate::settings::{validate_cluster_name, ClickHouseSettings};

/// What [`migrate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    pub database: String,
    /// The cluster the schema was created on (`None`: one server).
    pub cluster: Option<String>,
    /// Versions applied by this run, in order.
    pub applied: Vec<u32>,
    /// Versions found already applied.
    pub already_applied: Vec<u32>,
}

/// Creates the database if missing, then applies every migration not yet recorded in
/// `schema_migrations`. Running it again changes nothing. With `settings.cluster`, the cluster
/// variant (replicated local tables, `Distributed` tables, DDL `ON CLUSTER`).
pub async fn migrate(settings: &ClickHouseSettings) -> Result<MigrationReport, ClickHouseError> {
    migrate_with(settings, &Layout::of(settings)).await
}

/// [`migrate`] with the layout given (see [`Layout`]).
pub async fn migrate_with(
    settings: &ClickHouseSettings,
    layout: &Layout,
) -> Result<MigrationReport, ClickHouseError> {
    settings.validate()?;
    let db = &settings.database;
    let cluster = layout.cluster();
    if let Some(name) = cluster {
        validate_cluster_name(name)?;
    }
    let server = settings.server_client();
    for statement in cluster::bootstrap_statements(layout) {
        run(
            &server,
            &substitute(&statement, db, cluster),
            "create database and schema_migrations",
        )
        .await?;
    }

    let plan = cluster::plan(MIGRATIONS, layout)?;
    let done = applied_versions(settings).await?;
    let mut report = MigrationReport {
        database: db.clone(),
        cluster: cluster.map(str::to_owned),
        applied: Vec::new(),
        already_applied: Vec::new(),
    };
    for (migration, statements) in plan {
        if done.contains(&migration.version) {
            report.already_applied.push(migration.version);
            continue;
        }
        let context = format!("migration {:04}_{}", migration.version, migration.name);
        for statement in statements {
            let statement = substitute(&statement, db, cluster);
            match add_column(&statement) {
                Some(add) => add_column_if_missing(&server, &add, &context).await?,
                None => run(&server, &statement, &context).await?,
            }
        }
        server
            .query(&format!(
                "INSERT INTO {db}.schema_migrations (version, name, applied_at) VALUES (?, ?, now())"
            ))
            .bind(migration.version)
            .bind(migration.name)
            .execute()
            .await
            .map_err(|e| ClickHouseError::from_client(format!("recording {context}"), e))?;
        tracing::info!(database = %db, cluster = ?cluster, version = migration.version, name = migration.name, "applied migration");
        report.applied.push(migration.version);
    }
    Ok(report)
}

/// Versions recorded in `schema_migrations`, ascending (each once, even if two migrators raced).
pub async fn applied_versions(settings: &ClickHouseSettings) -> Result<Vec<u32>, ClickHouseError> {
    settings.validate()?;
    let db = &settings.database;
    settings
        .server_client()
        .query(&format!(
            "SELECT DISTINCT version FROM {db}.schema_migrations FINAL ORDER BY version"
        ))
        .fetch_all::<u32>()
        .await
        .map_err(|e| ClickHouseError::from_client("reading schema_migrations", e))
}

async fn run(client: &Client, sql: &str, context: &str) -> Result<(), ClickHouseError> {
    client
        .query_raw(sql)
        .execute()
        .await
        .map_err(|e| ClickHouseError::from_client(context, e))
}

/// `ALTER TABLE db.t [ON CLUSTER 'c'] ADD COLUMN IF NOT EXISTS name …`, taken apart: 18.16
/// lacks the clause, so the column is looked up first and the statement runs without it.
#[derive(Debug, PartialEq, Eq)]
struct AddColumn {
    database: String,
    table: String,
    column: String,
    /// The statement without `IF NOT EXISTS`.
    sql: String,
}

const ADD_COLUMN_IF_MISSING: &str = " ADD COLUMN IF NOT EXISTS ";

fn add_column(statement: &str) -> Option<AddColumn> {
    let rest = statement.strip_prefix("ALTER TABLE ")?;
    let at = rest.find(ADD_COLUMN_IF_MISSING)?;
    let target = rest[..at].split_whitespace().next()?;
    let (database, table) = target.split_once('.')?;
    let column = rest[at + ADD_COLUMN_IF_MISSING.len()..]
        .split_whitespace()
        .next()?;
    Some(AddColumn {
        database: database.to_owned(),
        table: table.to_owned(),
        column: column.to_owned(),
        sql: statement.replacen(ADD_COLUMN_IF_MISSING, " ADD COLUMN ", 1),
    })
}

async fn add_column_if_missing(
    client: &Client,
    add: &AddColumn,
    context: &str,
) -> Result<(), ClickHouseError> {
    let present = client
        .query("SELECT count() FROM system.columns WHERE database = ? AND table = ? AND name = ?")
        .bind(add.database.as_str())
        .bind(add.table.as_str())
        .bind(add.column.as_str())
        .fetch_one::<u64>()
        .await
        .map_err(|e| ClickHouseError::from_client(context, e))?;
    if present > 0 {
        return Ok(());
    }
    run(client, &add.sql, context).await
}

/// Replaces `{database}` and `{cluster}` (both validated names); `{shard}` and `{replica}` stay
/// for the servers' macros.
fn substitute(statement: &str, database: &str, cluster: Option<&str>) -> String {
    let statement = statement.replace("{database}", database);
    match cluster {
        Some(name) => statement.replace(cluster::CLUSTER_PLACEHOLDER, name),
        None => statement,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_column_statements_are_taken_apart() {
        let add = add_column(
            "ALTER TABLE db.clicks_local ON CLUSTER 'c' ADD COLUMN IF NOT EXISTS cost Decimal(18, 6)",
        )
        .unwrap();
        assert_eq!(
            add,
            AddColumn {
                database: "db".into(),
                table: "clicks_local".into(),
                column: "cost".into(),
                sql: "ALTER TABLE db.clicks_local ON CLUSTER 'c' ADD COLUMN cost Decimal(18, 6)"
                    .into(),
            }
        );
        assert_eq!(add_column("ALTER TABLE db.t ADD COLUMN x String"), None);
        assert_eq!(
            add_column("CREATE TABLE IF NOT EXISTS db.t (x String)"),
            None
        );
    }
}
