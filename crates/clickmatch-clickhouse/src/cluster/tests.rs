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
    assert!(statements[0].starts_with("CREATE TABLE IF NOT EXISTS {database}.conversions_local\n("));
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
        let dist = format!("ENGINE = Distributed('{{cluster}}', '{{database}}', '{table}_local'");
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
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/clickhouse/cluster");
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

#[test]
fn views_are_dropped_on_every_host_and_tables_never() {
    let sql = "CREATE TABLE IF NOT EXISTS {database}.t (a String) ENGINE = MergeTree ORDER BY a;\n\
               DROP TABLE IF EXISTS {database}.v;";
    let statements = render(sql, &replicated());
    assert_eq!(
        statements.last().unwrap(),
        "DROP TABLE IF EXISTS {database}.v ON CLUSTER '{cluster}'"
    );
    let migration = Migration {
        version: 9,
        name: "t",
        sql: "CREATE TABLE IF NOT EXISTS {database}.t (a String) ENGINE = MergeTree ORDER BY a;\n\
              DROP TABLE IF EXISTS {database}.t;",
    };
    let error = plan(&[migration], &replicated()).unwrap_err().to_string();
    assert!(error.contains("only views are dropped"), "{error}");
}
