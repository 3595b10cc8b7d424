//! Versioned schema migrations, embedded in the binary and applied by `clickmatch migrate`.

use clickhouse::Client;

use crate::cluster::{self, Layout};
use crate::error::ClickHouseError;
use crate::settings::{validate_cluster_name, validate_identifier, ClickHouseSettings};

/// One migration file: `migrations/NNNN_name.sql`, statements ending in `;` at a line end,
/// `{database}` standing for the database name. Every statement must be idempotent on its own
/// (`IF NOT EXISTS`, or an `INSERT … SELECT` into a rollup whose states absorb repeats), so
/// that a migration interrupted half-way can simply run again. Versions are unique and
/// increasing; they need not be contiguous (each is applied once, whenever it is missing).
/// The cluster variant is rendered from the same files (`crate::cluster`), so statements keep to
/// the forms it knows.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// All migrations, in version order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "core_tables",
        sql: include_str!("../migrations/0001_core_tables.sql"),
    },
    Migration {
        version: 2,
        name: "outbound",
        sql: include_str!("../migrations/0002_outbound.sql"),
    },
    Migration {
        version: 3,
        name: "rollups",
        sql: include_str!("../migrations/0003_rollups.sql"),
    },
    Migration {
        version: 4,
        name: "money",
        sql: include_str!("../migrations/0004_money.sql"),
    },
];

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

impl Migration {
    /// The statements of this migration for `database`, ready to run.
    pub fn statements(&self, database: &str) -> Result<Vec<String>, ClickHouseError> {
        split_statements(self.sql, database)
    }

    /// The statements as written, `{database}` not replaced.
    pub fn raw_statements(&self) -> Vec<String> {
        split_raw(self.sql)
    }
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

/// Splits a migration file into statements: comment lines (`--`) dropped, a statement ends at a
/// `;` that ends a line, `{database}` replaced by the (validated) name.
fn split_statements(sql: &str, database: &str) -> Result<Vec<String>, ClickHouseError> {
    validate_identifier("database", database)?;
    Ok(split_raw(sql)
        .iter()
        .map(|s| substitute(s, database, None))
        .collect())
}

/// [`split_statements`] without the replacement.
fn split_raw(sql: &str) -> Vec<String> {
    let mut statements = Vec::new();
    let mut current = String::new();
    for line in sql.lines() {
        if line.trim_start().starts_with("--") {
            continue;
        }
        let trimmed = line.trim_end();
        if let Some(last) = trimmed.strip_suffix(';') {
            current.push_str(last);
            push_statement(&mut statements, &mut current);
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    push_statement(&mut statements, &mut current);
    statements
}

fn push_statement(statements: &mut Vec<String>, current: &mut String) {
    let statement = current.trim();
    if !statement.is_empty() {
        statements.push(statement.to_owned());
    }
    current.clear();
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
    fn migrations_are_numbered_in_order_and_split_cleanly() {
        let mut previous = 0;
        for migration in MIGRATIONS {
            assert!(
                migration.version > previous,
                "versions must be unique and increasing: {} after {previous}",
                migration.version
            );
            previous = migration.version;
            let statements = migration.statements("cm_db").unwrap();
            assert!(!statements.is_empty());
            for statement in &statements {
                assert!(!statement.contains("{database}"), "{statement}");
                assert!(!statement.contains(';'), "{statement}");
                // A backfill is idempotent when its target only holds aggregate states that
                // absorb repeats (uniqExact, groupUniqArray).
                let rollup_backfill = statement.starts_with("INSERT INTO cm_db.")
                    && (statement.contains("uniqExactState(")
                        || statement.contains("groupUniqArrayState("));
                assert!(
                    statement.contains("IF NOT EXISTS") || rollup_backfill,
                    "not idempotent: {statement}"
                );
                for forbidden in ["DateTime64", "LowCardinality", " TTL ", "SummingMergeTree"] {
                    assert!(
                        !statement.contains(forbidden),
                        "18.16 lacks {forbidden}, or replays double count"
                    );
                }
            }
        }
        let core = MIGRATIONS[0].statements("cm_db").unwrap();
        assert_eq!(core.len(), 3);
        assert!(core[0].starts_with("CREATE TABLE IF NOT EXISTS cm_db.clicks"));
    }

    /// Every file in `migrations/` is registered once, under the version and name of its file
    /// name (`NNNN_name.sql`), so that two engineers adding migrations cannot share a number.
    #[test]
    fn every_migration_file_is_registered_under_its_number() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        let registered: Vec<String> = MIGRATIONS
            .iter()
            .map(|m| format!("{:04}_{}.sql", m.version, m.name))
            .collect();
        assert_eq!(files, registered);
        let mut numbers: Vec<&str> = files.iter().map(|f| &f[..4]).collect();
        numbers.dedup();
        assert_eq!(
            numbers.len(),
            files.len(),
            "two migration files share a number"
        );
        for m in MIGRATIONS {
            let file =
                std::fs::read_to_string(dir.join(format!("{:04}_{}.sql", m.version, m.name)));
            assert_eq!(file.unwrap(), m.sql);
        }
    }

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
