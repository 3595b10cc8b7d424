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
//! - `DROP TABLE IF EXISTS V` (a view about to be redefined) drops `V` on every host; a table
//!   with a local twin is never dropped this way.
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
        } else if let Some(rest) = statement.strip_prefix("ALTER TABLE ") {
            self.alter_table(rest)
        } else if let Some(rest) = statement.strip_prefix("DROP TABLE IF EXISTS ") {
            // A view to create again (a table with a local twin would need both dropped).
            let (name, body) = split_name(rest)?;
            let table = name.strip_prefix("{database}.").unwrap_or(name);
            if self.sharded.contains_key(table) || !body.trim().is_empty() {
                return Err(format!("only views are dropped: {first_line}"));
            }
            Ok(vec![format!(
                "DROP TABLE IF EXISTS {name}{}",
                self.on_cluster()
            )])
        } else {
            Err(format!(
                "no cluster rendering for this statement (CREATE TABLE / MATERIALIZED VIEW / \
                 VIEW IF NOT EXISTS, INSERT INTO … SELECT, ALTER TABLE … ADD COLUMN IF NOT \
                 EXISTS, DROP TABLE IF EXISTS a view): {first_line}"
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
mod tests;
