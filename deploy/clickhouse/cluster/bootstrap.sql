-- GENERATED: the cluster variant of the database and `schema_migrations` (what `clickmatch migrate` creates first).
-- Do not edit: `clickmatch migrate` renders it from the single-server migrations when
-- `[clickhouse] cluster` is set (crates/clickmatch-clickhouse/src/cluster.rs). Regenerate
-- with `CLICKMATCH_BLESS=1 cargo test -p clickmatch-clickhouse --lib cluster`.
-- By hand: replace {database} and {cluster}, keep {shard} and {replica} (macros).

CREATE DATABASE IF NOT EXISTS {database} ON CLUSTER '{cluster}';

CREATE TABLE IF NOT EXISTS {database}.schema_migrations ON CLUSTER '{cluster}' (version UInt32, name String, applied_at DateTime) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/all/{database}/schema_migrations', '{shard}-{replica}') ORDER BY version;
