//! The cluster variant of the schema, rendered from the single-server migration files so that
//! the two never drift apart. `deploy/clickhouse/cluster/` holds the rendered files for review
//! and for applying by hand; a test keeps them equal to [`render_files`].
//!
//! Per statement of a migration (placeholders `{database}` and `{cluster}` are substituted when
//! the statement runs; `{shard}` and `{replica}` are the servers' own `<macros>`):
//!
//! - `CREATE TABLE … ENGINE = XMergeTree…` becomes two tables: `T_local` on every host with
//!   `ReplicatedXMergeTree('/clickhouse/tables/{shard}/{database}/T_local', '{replica}', …)`,
//!   and `T` = `Distributed` over them, sharded by `cityHash64` of the first `ORDER BY`
//!   element. Rows that replace (or aggregate with) each other share their whole sorting key,
//!   so they land on the same shard, where `ReplacingMergeTree` and `FINAL` can see them
//!   together. Everything else (the joiner's inserts, reads, `FINAL`) goes through `T` as on
//!   one server.
//! - `CREATE MATERIALIZED VIEW … TO …` reads and writes the `_local` tables: an insert through
//!   `Distributed` lands in a shard's local table, and the view runs there.
//! - `CREATE VIEW` reads the `Distributed` tables; `INSERT … SELECT` (a rollup backfill) runs
//!   once, through them.
//! - `ALTER TABLE T ADD COLUMN …` alters `T_local`, then drops `T` (the `Distributed` table, which
//!   holds no rows: inserts are synchronous) and creates it again `AS T_local`, so that it has
//!   the new column. ClickHouse 18.16 refuses `ALTER … ON CLUSTER` on a table that is not
//!   replicated when the cluster's shards have `internal_replication` (code 371,
//!   `INCONSISTENT_CLUSTER_DEFINITION`); `DROP` and `CREATE` are not checked that way. An insert
//!   that arrives between the two fails with `UNKNOWN_TABLE` and is retried by the joiner.
//! - Every DDL statement runs `ON CLUSTER '{cluster}'`.
//!
//! Anything else in a migration is refused with an error naming the statement: a migration that
//! the renderer cannot translate fails the test suite, not a production `migrate`.

use std::collections::BTreeMap;

use crate::error::ClickHouseError;
use crate::migrations::Migration;

/// Suffix of the per-host tables behind each `Distributed` table.
pub const LOCAL_SUFFIX: &str = "_local";

/// Placeholder of the cluster name in rendered statements.
pub const CLUSTER_PLACEHOLDER: &str = "{cluster}";

/// Where the schema goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// One server: the migration files as written.
    Single,
    /// A cluster of the servers' `remote_servers`.
    Cluster(ClusterLayout),
}

/// A cluster layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterLayout {
    /// The cluster's name in `remote_servers`.
    pub name: String,
    /// `true` (what `[clickhouse] cluster` selects): `Replicated*MergeTree` engines and DDL
    /// `ON CLUSTER`, which need ZooKeeper or ClickHouse Keeper. `false`: the same local and
    /// `Distributed` tables with plain engines, created only on the server connected to — for
    /// a cluster of one server, and for testing the layout on a server without ZooKeeper.
    pub replicated: bool,
}

impl Layout {
    /// The layout the settings select: a replicated cluster when `cluster` is set.
    pub fn of(settings: &crate::settings::ClickHouseSettings) -> Layout {
        match &settings.cluster {
            Some(name) => Layout::Cluster(ClusterLayout {
                name: name.clone(),
                replicated: true,
            }),
            None => Layout::Single,
        }
    }

    /// The cluster's name, if any.
    pub fn cluster(&self) -> Option<&str> {
        match self {
            Layout::Single => None,
            Layout::Cluster(c) => Some(&c.name),
        }
    }
}

/// The statements that create the database and `schema_migrations`, placeholders kept.
pub fn bootstrap_statements(layout: &Layout) -> Vec<String> {
    const COLUMNS: &str = "(version UInt32, name String, applied_at DateTime)";
    match layout {
        Layout::Single | Layout::Cluster(ClusterLayout { replicated: false, .. }) => vec![
            "CREATE DATABASE IF NOT EXISTS {database}".to_owned(),
            format!(
                "CREATE TABLE IF NOT EXISTS {{database}}.schema_migrations {COLUMNS} \
                 ENGINE = ReplacingMergeTree ORDER BY version"
            ),
        ],
        // Replicated to every host of the cluster (one ZooKeeper path for all shards), so that
        // `migrate` run against any host sees what was applied.
        Layout::Cluster(ClusterLayout {
            replicated: true, ..
        }) => vec![
            "CREATE DATABASE IF NOT EXISTS {database} ON CLUSTER '{cluster}'".to_owned(),
            format!(
                "CREATE TABLE IF NOT EXISTS {{database}}.schema_migrations ON CLUSTER '{{cluster}}' \
                 {COLUMNS} ENGINE = ReplicatedReplacingMergeTree(\
                 '/clickhouse/tables/all/{{database}}/schema_migrations', '{{shard}}-{{replica}}') \
                 ORDER BY version"
            ),
        ],
    }
}

/// Every migration's statements for `layout`, placeholders kept, in version order.
pub fn plan(
    migrations: &[Migration],
    layout: &Layout,
) -> Result<Vec<(Migration, Vec<String>)>, ClickHouseError> {
    let replicated = match layout {
        Layout::Single => {
            return Ok(migrations
                .iter()
                .map(|m| (*m, m.raw_statements()))
                .collect())
        }
        Layout::Cluster(c) => c.replicated,
    };
    let mut renderer = Renderer {
        replicated,
        sharded: BTreeMap::new(),
    };
    migrations
        .iter()
        .map(|m| {
            let statements = m
                .raw_statements()
                .iter()
                .map(|s| renderer.render(s))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| {
                    ClickHouseError::Schema(format!("migration {:04}_{}: {e}", m.version, m.name))
                })?;
            Ok((*m, statements.into_iter().flatten().collect()))
        })
        .collect()
}

/// The files of `deploy/clickhouse/cluster/`: (file name, text), the replicated cluster layout.
pub fn render_files(migrations: &[Migration]) -> Result<Vec<(String, String)>, ClickHouseError> {
    let layout = Layout::Cluster(ClusterLayout {
        name: String::new(),
        replicated: true,
    });
    let mut files = vec![(
        "bootstrap.sql".to_owned(),
        file_text(
            "the database and `schema_migrations` (what `clickmatch migrate` creates first)",
            &bootstrap_statements(&layout),
        ),
    )];
    for (migration, statements) in plan(migrations, &layout)? {
        let name = format!("{:04}_{}.sql", migration.version, migration.name);
        let source = format!("crates/clickmatch-clickhouse/migrations/{name}");
        files.push((name, file_text(&format!("`{source}`"), &statements)));
    }
    Ok(files)
}

fn file_text(what: &str, statements: &[String]) -> String {
    let mut text = format!(
        "-- GENERATED: the cluster variant of {what}.\n\
         -- Do not edit: `clickmatch migrate` renders it from the single-server migrations when\n\
         -- `[clickhouse] cluster` is set (crates/clickmatch-clickhouse/src/cluster.rs). Regenerate\n\
         -- with `CLICKMATCH_BLESS=1 cargo test -p clickmatch-clickhouse --lib cluster`.\n\
         -- By hand: replace {{database}} and {{cluster}}, keep {{shard}} and {{replica}} (macros).\n"
    );
    for statement in statements {
        text.push('\n');
        text.push_str(statement);
        text.push_str(";\n");
    }
    text
}

struct Renderer {
    replicated: bool,
    /// Tables created so far with a local twin (names without the database), and what their
    /// `Distributed` table shards by.
    sharded: BTreeMap<String, String>,
}

impl Renderer {
    fn on_cluster(&self) -> &'static str {
        if self.replicated {
            " ON CLUSTER '{cluster}'"
        } else {
            ""
        }
    }

    fn render(&mut self, statement: &str) -> Result<Vec<String>, String> {
        let first_line = statement.lines().next().unwrap_or_default();
        if let Some(rest) = statement.strip_prefix("CREATE TABLE IF NOT EXISTS ") {
            self.create_table(rest)
        } else if let Some(rest) = statement.strip_prefix("CREATE MATERIALIZED VIEW IF NOT EXISTS ")
        {
            let (name, body) = split_name(rest)?;
            if !body.trim_start().starts_with("TO ") {
                return Err(format!(
                    "materialized view {name} needs `TO` a table of its own: {first_line}"
                ));
            }
            Ok(vec![format!(
                "CREATE MATERIALIZED VIEW IF NOT EXISTS {name}{}{}",
                self.on_cluster(),
                self.to_local(body)
            )])
        } else if let Some(rest) = statement.strip_prefix("CREATE VIEW IF NOT EXISTS ") {
            let (name, body) = split_name(rest)?;
            Ok(vec![format!(
                "CREATE VIEW IF NOT EXISTS {name}{}{body}",
                self.on_cluster()
            )])
        } else if statement.starts_with("INSERT INTO ") {
            Ok(vec![statement.to_owned()])
        } else if let Some(rest) = statement.strip_prefix("DROP TABLE IF EXISTS ") {
            // A view to create again (a table with a local twin would need both dropped).
            let (name, body) = split_name(rest)?;
            let table = name.strip_prefix("{database}.").unwrap_or(name);
            if self.sharded.contains_key(table) {
                return Err(format!(
                    "DROP TABLE {name}: only views are dropped by migrations"
                ));
            }
            Ok(vec![format!(
                "DROP TABLE IF EXISTS {name}{}{body}",
                self.on_cluster()
            )])
        } else if let Some(rest) = statement.strip_prefix("ALTER TABLE ") {
            self.alter_table(rest)
        } else {
            Err(format!(
                "no cluster rendering for this statement (CREATE TABLE / MATERIALIZED VIEW / \
                 VIEW IF NOT EXISTS, INSERT INTO … SELECT, ALTER TABLE … ADD COLUMN IF NOT \
                 EXISTS): {first_line}"
            ))
        }
    }

    fn create_table(&mut self, rest: &str) -> Result<Vec<String>, String> {
        let (name, body) = split_name(rest)?;
        let table = name
            .strip_prefix("{database}.")
            .ok_or_else(|| format!("table {name} is not in {{database}}"))?;
        let engine_at =
            find_keyword(body, "ENGINE").ok_or_else(|| format!("table {name}: no ENGINE"))?;
        let after_engine = &body[engine_at + "ENGINE".len()..];
        let eq = after_engine
            .trim_start()
            .strip_prefix('=')
            .ok_or_else(|| format!("table {name}: expected `ENGINE =`"))?
            .trim_start();
        let engine_len = eq
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(eq.len());
        let engine = &eq[..engine_len];
        if !engine.ends_with("MergeTree") || engine.starts_with("Replicated") {
            return Err(format!(
                "table {name}: engine {engine} (expected a non-replicated *MergeTree)"
            ));
        }
        let mut after = &eq[engine_len..];
        let mut args = "";
        if after.starts_with('(') {
            let close = matching_paren(after)
                .ok_or_else(|| format!("table {name}: unbalanced engine arguments"))?;
            args = after[1..close].trim();
            after = &after[close + 1..];
        }
        let local = format!("{table}{LOCAL_SUFFIX}");
        let engine_sql = if self.replicated {
            let mut replicated_args =
                format!("'/clickhouse/tables/{{shard}}/{{database}}/{local}', '{{replica}}'");
            if !args.is_empty() {
                replicated_args.push_str(", ");
                replicated_args.push_str(args);
            }
            format!("ENGINE = Replicated{engine}({replicated_args})")
        } else if args.is_empty() {
            format!("ENGINE = {engine}")
        } else {
            format!("ENGINE = {engine}({args})")
        };
        let columns = &body[..engine_at];
        let shard_by = first_order_by(after).ok_or_else(|| format!("table {name}: no ORDER BY"))?;
        let on_cluster = self.on_cluster();
        let create_local = format!(
            "CREATE TABLE IF NOT EXISTS {{database}}.{local}{on_cluster}{columns}{engine_sql}{after}"
        );
        let create_distributed = self.create_distributed(table, &shard_by);
        self.sharded.insert(table.to_owned(), shard_by);
        Ok(vec![create_local, create_distributed])
    }

    /// `CREATE TABLE {database}.T AS {database}.T_local ENGINE = Distributed(…)`.
    fn create_distributed(&self, table: &str, shard_by: &str) -> String {
        let local = format!("{table}{LOCAL_SUFFIX}");
        format!(
            "CREATE TABLE IF NOT EXISTS {{database}}.{table}{}\n\
             AS {{database}}.{local}\n\
             ENGINE = Distributed('{{cluster}}', '{{database}}', '{local}', cityHash64({shard_by}))",
            self.on_cluster()
        )
    }

    /// `ALTER TABLE T ADD COLUMN …` changes the local table, then replaces the `Distributed`
    /// one over it, whose columns were copied when it was created (see the module
    /// documentation for why it is not altered).
    fn alter_table(&self, rest: &str) -> Result<Vec<String>, String> {
        let (name, body) = split_name(rest)?;
        if !body.trim_start().starts_with("ADD COLUMN IF NOT EXISTS ") {
            return Err(format!(
                "ALTER TABLE {name}: only ADD COLUMN IF NOT EXISTS is rendered"
            ));
        }
        let table = name
            .strip_prefix("{database}.")
            .ok_or_else(|| format!("table {name} is not in {{database}}"))?;
        let Some(shard_by) = self.sharded.get(table) else {
            return Err(format!(
                "ALTER TABLE {name}: no table created by a migration"
            ));
        };
        let on_cluster = self.on_cluster();
        Ok(vec![
            format!("ALTER TABLE {{database}}.{table}{LOCAL_SUFFIX}{on_cluster}{body}"),
            format!("DROP TABLE IF EXISTS {name}{on_cluster}"),
            self.create_distributed(table, shard_by),
        ])
    }

    /// `{database}.T` → `{database}.T_local` for every table with a local twin.
    fn to_local(&self, body: &str) -> String {
        const PREFIX: &str = "{database}.";
        let mut out = String::with_capacity(body.len() + 32);
        let mut rest = body;
        while let Some(at) = rest.find(PREFIX) {
            let (before, from) = rest.split_at(at);
            out.push_str(before);
            let name_start = &from[PREFIX.len()..];
            let len = name_start
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(name_start.len());
            let name = &name_start[..len];
            out.push_str(PREFIX);
            out.push_str(name);
            if self.sharded.contains_key(name) {
                out.push_str(LOCAL_SUFFIX);
            }
            rest = &name_start[len..];
        }
        out.push_str(rest);
        out
    }
}

/// `"{database}.name (…"` → (`"{database}.name"`, `" (…"`).
fn split_name(rest: &str) -> Result<(&str, &str), String> {
    let len = rest
        .find(|c: char| c.is_whitespace() || c == '(')
        .unwrap_or(rest.len());
    if len == 0 {
        return Err("statement without a name".into());
    }
    Ok(rest.split_at(len))
}

/// Byte offset of `keyword` as a whole word, outside parentheses and quotes.
fn find_keyword(text: &str, keyword: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut depth = 0i32;
    let mut quoted = false;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if quoted {
            if c == b'\\' {
                i += 1;
            } else if c == b'\'' {
                quoted = false;
            }
        } else if c == b'\'' {
            quoted = true;
        } else if c == b'(' {
            depth += 1;
        } else if c == b')' {
            depth -= 1;
        } else if depth == 0
            && text[i..].starts_with(keyword)
            && (i == 0 || !is_word(bytes[i - 1]))
            && bytes.get(i + keyword.len()).is_none_or(|b| !is_word(*b))
        {
            return Some(i);
        }
        i += 1;
    }
    None
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Index of the `)` closing the `(` at the start of `text`.
fn matching_paren(text: &str) -> Option<usize> {
    let mut depth = 0i32;
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if quoted {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '\'' {
                quoted = false;
            }
            continue;
        }
        match c {
            '\'' => quoted = true,
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// The first element of the `ORDER BY` clause in `text` (after the engine).
fn first_order_by(text: &str) -> Option<String> {
    let at = find_keyword(text, "ORDER BY")?;
    let clause = text[at + "ORDER BY".len()..].trim_start();
    if clause.starts_with('(') {
        let close = matching_paren(clause)?;
        let inner = &clause[1..close];
        // The first element at depth 0.
        let mut depth = 0i32;
        let mut end = inner.len();
        for (i, c) in inner.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                ',' if depth == 0 => {
                    end = i;
                    break;
                }
                _ => {}
            }
        }
        let first = inner[..end].trim();
        (!first.is_empty()).then(|| first.to_owned())
    } else {
        // An identifier, or a function call.
        let len = clause
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(clause.len());
        let mut expr = &clause[..len];
        if clause[len..].starts_with('(') {
            let close = matching_paren(&clause[len..])?;
            expr = &clause[..len + close + 1];
        }
        (!expr.is_empty()).then(|| expr.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrations::MIGRATIONS;

    fn replicated() -> Layout {
        Layout::Cluster(ClusterLayout {
            name: "prod".into(),
            replicated: true,
        })
    }

    fn render(sql: &'static str, layout: &Layout) -> Vec<String> {
        let migration = Migration {
            version: 9,
            name: "t",
            sql,
        };
        plan(&[migration], layout).unwrap().remove(0).1
    }

    #[test]
    fn tables_become_replicated_local_tables_behind_distributed_ones() {
        let sql = "CREATE TABLE IF NOT EXISTS {database}.conversions\n(\n    conversion_id String,\n    version UInt64\n)\nENGINE = ReplacingMergeTree(version)\nPARTITION BY toYYYYMM(click_time)\nORDER BY conversion_id;\n\
                   CREATE TABLE IF NOT EXISTS {database}.t (a String, b DateTime) ENGINE = AggregatingMergeTree ORDER BY (toStartOfHour(b), a)";
        let statements = render(sql, &replicated());
        assert_eq!(
            statements,
            vec![
                "CREATE TABLE IF NOT EXISTS {database}.conversions_local ON CLUSTER '{cluster}'\n(\n    conversion_id String,\n    version UInt64\n)\nENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/conversions_local', '{replica}', version)\nPARTITION BY toYYYYMM(click_time)\nORDER BY conversion_id",
                "CREATE TABLE IF NOT EXISTS {database}.conversions ON CLUSTER '{cluster}'\nAS {database}.conversions_local\nENGINE = Distributed('{cluster}', '{database}', 'conversions_local', cityHash64(conversion_id))",
                "CREATE TABLE IF NOT EXISTS {database}.t_local ON CLUSTER '{cluster}' (a String, b DateTime) ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/t_local', '{replica}') ORDER BY (toStartOfHour(b), a)",
                "CREATE TABLE IF NOT EXISTS {database}.t ON CLUSTER '{cluster}'\nAS {database}.t_local\nENGINE = Distributed('{cluster}', '{database}', 't_local', cityHash64(toStartOfHour(b)))",
            ]
        );

        let plain = Layout::Cluster(ClusterLayout {
            name: "one".into(),
            replicated: false,
        });
        let statements = render(sql, &plain);
        assert!(
            statements[0].starts_with("CREATE TABLE IF NOT EXISTS {database}.conversions_local\n(")
        );
        assert!(statements[0].contains("ENGINE = ReplacingMergeTree(version)\n"));
        assert!(statements[1].starts_with("CREATE TABLE IF NOT EXISTS {database}.conversions\nAS"));
        assert!(statements.iter().all(|s| !s.contains("ON CLUSTER")));
    }

    #[test]
    fn views_read_local_or_distributed_tables_and_inserts_stay() {
        let sql = "CREATE TABLE IF NOT EXISTS {database}.base (id String) ENGINE = ReplacingMergeTree ORDER BY id;\n\
                   CREATE TABLE IF NOT EXISTS {database}.roll (n AggregateFunction(uniqExact, String)) ENGINE = AggregatingMergeTree ORDER BY tuple();\n\
                   CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.roll_mv\nTO {database}.roll\nAS SELECT uniqExactState(id) AS n FROM {database}.base, {database}.base_other;\n\
                   INSERT INTO {database}.roll SELECT uniqExactState(id) FROM {database}.base;\n\
                   CREATE VIEW IF NOT EXISTS {database}.v\nAS SELECT uniqExactMerge(n) FROM {database}.roll";
        let statements = render(sql, &replicated());
        assert_eq!(statements.len(), 7);
        assert!(
            statements[3].ends_with("cityHash64(tuple()))"),
            "{}",
            statements[3]
        );
        assert_eq!(
            statements[4],
            "CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.roll_mv ON CLUSTER '{cluster}'\nTO {database}.roll_local\nAS SELECT uniqExactState(id) AS n FROM {database}.base_local, {database}.base_other"
        );
        assert_eq!(
            statements[5],
            "INSERT INTO {database}.roll SELECT uniqExactState(id) FROM {database}.base"
        );
        assert_eq!(
            statements[6],
            "CREATE VIEW IF NOT EXISTS {database}.v ON CLUSTER '{cluster}'\nAS SELECT uniqExactMerge(n) FROM {database}.roll"
        );
    }

    #[test]
    fn added_columns_alter_the_local_table_and_replace_the_distributed_one() {
        let sql = "CREATE TABLE IF NOT EXISTS {database}.t (id String, x UInt8) ENGINE = ReplacingMergeTree ORDER BY (id, x);\n\
                   ALTER TABLE {database}.t ADD COLUMN IF NOT EXISTS extra String";
        let statements = render(sql, &replicated());
        assert_eq!(statements.len(), 5, "{statements:#?}");
        assert_eq!(
            statements[2],
            "ALTER TABLE {database}.t_local ON CLUSTER '{cluster}' ADD COLUMN IF NOT EXISTS extra String"
        );
        // 18.16 refuses ALTER ON CLUSTER on a Distributed table over replicated shards.
        assert_eq!(
            statements[3],
            "DROP TABLE IF EXISTS {database}.t ON CLUSTER '{cluster}'"
        );
        assert_eq!(statements[4], statements[1], "created again AS t_local");
        assert!(statements
            .iter()
            .all(|s| !s.starts_with("ALTER TABLE {database}.t ")));
        let plain = render(
            sql,
            &Layout::Cluster(ClusterLayout {
                name: "one".into(),
                replicated: false,
            }),
        );
        assert_eq!(plain[3], "DROP TABLE IF EXISTS {database}.t");
    }

    #[test]
    fn statements_without_a_rendering_are_refused() {
        for sql in [
            "ALTER TABLE {database}.t ADD COLUMN x String",
            "CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.mv ENGINE = SummingMergeTree ORDER BY a AS SELECT 1",
            "CREATE TABLE IF NOT EXISTS {database}.t (a String) ENGINE = Log",
            "CREATE TABLE IF NOT EXISTS {database}.t (a String) ENGINE = ReplicatedMergeTree('/p', 'r') ORDER BY a",
            "CREATE TABLE IF NOT EXISTS {database}.t (a String) ENGINE = MergeTree",
        ] {
            let migration = Migration {
                version: 9,
                name: "t",
                sql,
            };
            let err = plan(&[migration], &replicated()).unwrap_err();
            assert!(err.to_string().contains("migration 0009_t"), "{err}");
        }
    }

    #[test]
    fn every_migration_renders_and_single_is_unchanged() {
        let single = plan(MIGRATIONS, &Layout::Single).unwrap();
        let cluster = plan(MIGRATIONS, &replicated()).unwrap();
        assert_eq!(single.len(), cluster.len());
        for ((m, plain), (_, rendered)) in single.iter().zip(&cluster) {
            assert_eq!(plain, &m.raw_statements());
            for statement in rendered {
                if !statement.starts_with("INSERT INTO") {
                    assert!(statement.contains(" ON CLUSTER '{cluster}'"), "{statement}");
                }
                assert!(!statement.contains(" ENGINE = MergeTree"), "{statement}");
                for forbidden in ["DateTime64", "LowCardinality", " TTL "] {
                    assert!(!statement.contains(forbidden), "{statement}");
                }
            }
        }
        // Every base and rollup table has its local twin and Distributed table.
        let all: Vec<&String> = cluster.iter().flat_map(|(_, s)| s).collect();
        for table in [
            "clicks",
            "conversions",
            "unattributed",
            "unattributed_hourly",
            "conversions_hourly",
        ] {
            let local = format!("CREATE TABLE IF NOT EXISTS {{database}}.{table}_local ON CLUSTER");
            let dist =
                format!("ENGINE = Distributed('{{cluster}}', '{{database}}', '{table}_local'");
            assert!(all.iter().any(|s| s.starts_with(&local)), "{table}");
            assert!(all.iter().any(|s| s.contains(&dist)), "{table}");
        }
        // Materialized views read and write local tables only.
        for s in all
            .iter()
            .filter(|s| s.starts_with("CREATE MATERIALIZED VIEW"))
        {
            assert!(
                s.contains("TO {database}.") && s.contains("_local\n"),
                "{s}"
            );
            assert!(
                s.contains("FROM {database}.") && s.contains("_local\n"),
                "{s}"
            );
        }
    }

    /// `deploy/clickhouse/cluster/` holds exactly the rendered files. With `CLICKMATCH_BLESS=1`
    /// the test writes them instead.
    #[test]
    fn cluster_files_in_deploy_are_the_rendered_ones() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../deploy/clickhouse/cluster");
        let files = render_files(MIGRATIONS).unwrap();
        let bless = std::env::var_os("CLICKMATCH_BLESS").is_some_and(|v| v == "1");
        if bless {
            std::fs::create_dir_all(&dir).unwrap();
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "sql") {
                    std::fs::remove_file(path).unwrap();
                }
            }
            for (name, text) in &files {
                std::fs::write(dir.join(name), text).unwrap();
            }
        }
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        on_disk.sort();
        let mut expected: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
        expected.sort();
        let hint = "run `CLICKMATCH_BLESS=1 cargo test -p clickmatch-clickhouse --lib cluster` and commit deploy/clickhouse/cluster/";
        assert_eq!(on_disk, expected, "{hint}");
        for (name, text) in &files {
            let found = std::fs::read_to_string(dir.join(name)).unwrap();
            assert!(
                &found == text,
                "deploy/clickhouse/cluster/{name} differs from the rendering: {hint}"
            );
        }
    }
}
