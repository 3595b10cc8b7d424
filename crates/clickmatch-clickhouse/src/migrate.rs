//! Versioned schema migrations, embedded in the binary and applied by `clickmatch migrate`.

use clickhouse::Client;

use crate::error::ClickHouseError;
use crate::settings::{validate_identifier, ClickHouseSettings};

/// One migration file: `migrations/NNNN_name.sql`, statements ending in `;` at a line end,
/// `{database}` standing for the database name. Every statement must be idempotent on its own
/// (`IF NOT EXISTS`), so that a migration interrupted half-way can simply run again.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// All migrations, in version order.
pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "core_tables",
    sql: include_str!("../migrations/0001_core_tables.sql"),
}];

/// What [`migrate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    pub database: String,
    /// Versions applied by this run, in order.
    pub applied: Vec<u32>,
    /// Versions found already applied.
    pub already_applied: Vec<u32>,
}

impl Migration {
    /// The statements of this migration for `database`, ready to run.
    pub fn statements(&self, database: &str) -> Result<Vec<String>, ClickHouseError> {
        split_statements(self.sql, database)
    }
}

/// Creates the database if missing, then applies every migration not yet recorded in
/// `schema_migrations`. Running it again changes nothing.
pub async fn migrate(settings: &ClickHouseSettings) -> Result<MigrationReport, ClickHouseError> {
    settings.validate()?;
    let db = &settings.database;
    let server = settings.server_client();
    run(
        &server,
        &format!("CREATE DATABASE IF NOT EXISTS {db}"),
        "create database",
    )
    .await?;
    run(
        &server,
        &format!(
            "CREATE TABLE IF NOT EXISTS {db}.schema_migrations \
             (version UInt32, name String, applied_at DateTime) \
             ENGINE = ReplacingMergeTree ORDER BY version"
        ),
        "create schema_migrations",
    )
    .await?;

    let done = applied_versions(settings).await?;
    let mut report = MigrationReport {
        database: db.clone(),
        applied: Vec::new(),
        already_applied: Vec::new(),
    };
    for migration in MIGRATIONS {
        if done.contains(&migration.version) {
            report.already_applied.push(migration.version);
            continue;
        }
        let context = format!("migration {:04}_{}", migration.version, migration.name);
        for statement in migration.statements(db)? {
            run(&server, &statement, &context).await?;
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
        tracing::info!(database = %db, version = migration.version, name = migration.name, "applied migration");
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

/// Splits a migration file into statements: comment lines (`--`) dropped, a statement ends at a
/// `;` that ends a line, `{database}` replaced by the (validated) name.
fn split_statements(sql: &str, database: &str) -> Result<Vec<String>, ClickHouseError> {
    validate_identifier("database", database)?;
    let mut statements = Vec::new();
    let mut current = String::new();
    for line in sql.lines() {
        if line.trim_start().starts_with("--") {
            continue;
        }
        let trimmed = line.trim_end();
        if let Some(last) = trimmed.strip_suffix(';') {
            current.push_str(last);
            push_statement(&mut statements, &mut current, database);
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    push_statement(&mut statements, &mut current, database);
    Ok(statements)
}

fn push_statement(statements: &mut Vec<String>, current: &mut String, database: &str) {
    let statement = current.trim();
    if !statement.is_empty() {
        statements.push(statement.replace("{database}", database));
    }
    current.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order_and_split_cleanly() {
        for (i, migration) in MIGRATIONS.iter().enumerate() {
            assert_eq!(migration.version as usize, i + 1);
            let statements = migration.statements("cm_db").unwrap();
            assert!(!statements.is_empty());
            for statement in &statements {
                assert!(!statement.contains("{database}"), "{statement}");
                assert!(!statement.contains(';'), "{statement}");
                assert!(
                    statement.contains("IF NOT EXISTS"),
                    "not idempotent: {statement}"
                );
                for forbidden in ["DateTime64", "LowCardinality", " TTL "] {
                    assert!(!statement.contains(forbidden), "18.16 lacks {forbidden}");
                }
            }
        }
        let core = MIGRATIONS[0].statements("cm_db").unwrap();
        assert_eq!(core.len(), 3);
        assert!(core[0].starts_with("CREATE TABLE IF NOT EXISTS cm_db.clicks"));
    }

    #[test]
    fn splitting_keeps_inner_semicolons_and_refuses_bad_names() {
        let sql = "-- a; comment;\nCREATE TABLE IF NOT EXISTS {database}.t (a String DEFAULT ';x')\nENGINE = Log;\n\n  ;\nSELECT 1";
        let statements = split_statements(sql, "d").unwrap();
        assert_eq!(
            statements,
            vec![
                "CREATE TABLE IF NOT EXISTS d.t (a String DEFAULT ';x')\nENGINE = Log".to_owned(),
                "SELECT 1".to_owned()
            ]
        );
        assert!(split_statements(sql, "d; DROP DATABASE x").is_err());
    }
}
