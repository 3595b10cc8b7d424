-- GENERATED: the cluster variant of `crates/clickmatch-clickhouse/migrations/0002_outbound.sql`.
-- Do not edit: `clickmatch migrate` renders it from the single-server migrations when
-- `[clickhouse] cluster` is set (crates/clickmatch-clickhouse/src/cluster.rs). Regenerate
-- with `CLICKMATCH_BLESS=1 cargo test -p clickmatch-clickhouse --lib cluster`.
-- By hand: replace {database} and {cluster}, keep {shard} and {replica} (macros).

CREATE TABLE IF NOT EXISTS {database}.outbound_deliveries_local ON CLUSTER '{cluster}'
(
    idempotency_key String,
    conversion_id String,
    conversion_version UInt64,
    click_id String,
    click_time DateTime,
    campaign_id String,
    offer_id String,
    attempt UInt32,
    attempt_time DateTime,
    attempt_time_ms UInt64,
    url String,
    http_status UInt16,
    error String,
    duration_ms UInt32,
    state String,
    is_final UInt8
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/outbound_deliveries_local', '{replica}', attempt_time_ms)
PARTITION BY toYYYYMM(click_time)
ORDER BY (idempotency_key, attempt);

CREATE TABLE IF NOT EXISTS {database}.outbound_deliveries ON CLUSTER '{cluster}'
AS {database}.outbound_deliveries_local
ENGINE = Distributed('{cluster}', '{database}', 'outbound_deliveries_local', cityHash64(idempotency_key));
