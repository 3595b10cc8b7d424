-- GENERATED: the cluster variant of `crates/clickmatch-clickhouse/migrations/0001_core_tables.sql`.
-- Do not edit: `clickmatch migrate` renders it from the single-server migrations when
-- `[clickhouse] cluster` is set (crates/clickmatch-clickhouse/src/cluster.rs). Regenerate
-- with `CLICKMATCH_BLESS=1 cargo test -p clickmatch-clickhouse --lib cluster`.
-- By hand: replace {database} and {cluster}, keep {shard} and {replica} (macros).

CREATE TABLE IF NOT EXISTS {database}.clicks_local ON CLUSTER '{cluster}'
(
    click_id String,
    click_time DateTime,
    click_time_ms UInt64,
    campaign_id String,
    offer_id String,
    source String,
    sub1 String,
    sub2 String,
    sub3 String,
    sub4 String,
    sub5 String,
    sub6 String,
    sub7 String,
    sub8 String,
    sub9 String,
    sub10 String,
    ip String,
    user_agent String,
    country String,
    is_test UInt8,
    is_foreign UInt8
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/clicks_local', '{replica}')
PARTITION BY toYYYYMM(click_time)
ORDER BY click_id;

CREATE TABLE IF NOT EXISTS {database}.clicks ON CLUSTER '{cluster}'
AS {database}.clicks_local
ENGINE = Distributed('{cluster}', '{database}', 'clicks_local', cityHash64(click_id));

CREATE TABLE IF NOT EXISTS {database}.conversions_local ON CLUSTER '{cluster}'
(
    conversion_id String,
    click_id String,
    click_time DateTime,
    conversion_time DateTime,
    conversion_time_ms UInt64,
    postback_id String,
    campaign_id String,
    offer_id String,
    route String,
    event String,
    status String,
    payout Decimal(18, 6),
    currency String,
    txid String,
    offer_mismatch UInt8,
    click_id_repaired UInt8,
    repair_hint String,
    is_test UInt8,
    version UInt64,
    latency_ms UInt32
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/conversions_local', '{replica}', version)
PARTITION BY toYYYYMM(click_time)
ORDER BY conversion_id;

CREATE TABLE IF NOT EXISTS {database}.conversions ON CLUSTER '{cluster}'
AS {database}.conversions_local
ENGINE = Distributed('{cluster}', '{database}', 'conversions_local', cityHash64(conversion_id));

CREATE TABLE IF NOT EXISTS {database}.unattributed_local ON CLUSTER '{cluster}'
(
    postback_id String,
    received_time DateTime,
    received_time_ms UInt64,
    route String,
    reason String,
    raw_click_id String,
    offer_id String,
    payout Decimal(18, 6),
    currency String,
    remote_ip String,
    raw_params String,
    hint String,
    is_test UInt8,
    latency_ms UInt32
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/unattributed_local', '{replica}')
PARTITION BY toYYYYMM(received_time)
ORDER BY postback_id;

CREATE TABLE IF NOT EXISTS {database}.unattributed ON CLUSTER '{cluster}'
AS {database}.unattributed_local
ENGINE = Distributed('{cluster}', '{database}', 'unattributed_local', cityHash64(postback_id));
