//! The versioned schema migrations embedded in the binary (`migrations/NNNN_name.sql`), split
//! into statements. `crate::migrate` applies them; `crate::cluster` renders their cluster
//! variant.

use crate::error::ClickHouseError;
use crate::settings::validate_identifier;

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
    Migration {
        version: 5,
        name: "enrichment",
        sql: include_str!("../migrations/0005_enrichment.sql"),
    },
    Migration {
        version: 6,
        name: "reports",
        sql: include_str!("../migrations/0006_reports.sql"),
    },
    Migration {
        version: 7,
        name: "recovery",
        sql: include_str!("../migrations/0007_recovery.sql"),
    },
    Migration {
        version: 8,
        name: "exact_valuation",
        sql: include_str!("../migrations/0008_exact_valuation.sql"),
    },
    Migration {
        version: 9,
        name: "valuation_on_shards",
        sql: include_str!("../migrations/0009_valuation_on_shards.sql"),
    },
    Migration {
        version: 10,
        name: "conversion_os_browser",
        sql: include_str!("../migrations/0010_conversion_os_browser.sql"),
    },
    Migration {
        version: 11,
        name: "conversion_subs",
        sql: include_str!("../migrations/0011_conversion_subs.sql"),
    },
];

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

/// Splits a migration file into statements: comment lines (`--`) dropped, a statement ends at a
/// `;` that ends a line, `{database}` replaced by the (validated) name.
fn split_statements(sql: &str, database: &str) -> Result<Vec<String>, ClickHouseError> {
    validate_identifier("database", database)?;
    Ok(split_raw(sql)
        .iter()
        .map(|s| s.replace("{database}", database))
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
                // Dropping a view to create it anew (the next statement) runs again as well.
                let view_redefined = statement.starts_with("DROP TABLE IF EXISTS cm_db.")
                    && statements.iter().any(|s| {
                        s.starts_with("CREATE VIEW IF NOT EXISTS ")
                            && s.contains(&statement["DROP TABLE IF EXISTS ".len()..])
                    });
                assert!(
                    statement.contains("IF NOT EXISTS") || rollup_backfill || view_redefined,
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
