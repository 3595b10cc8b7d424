-- Core tables. Runs on ClickHouse 18.16 (Debian) and current releases: no DateTime64, TTL or
-- LowCardinality. ReplacingMergeTree everywhere, so a replay after a crash rewrites the same
-- rows instead of adding new ones; read with FINAL.
-- Rows replace each other only within a partition, so every table is partitioned by a time
-- that all versions of a row share: `conversions` by the click's month, because a status update
-- received in a later month than the conversion must still replace it.
-- `{database}` is replaced by the configured (validated) database name.

CREATE TABLE IF NOT EXISTS {database}.clicks
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
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(click_time)
ORDER BY click_id;

CREATE TABLE IF NOT EXISTS {database}.conversions
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
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(click_time)
ORDER BY conversion_id;

CREATE TABLE IF NOT EXISTS {database}.unattributed
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
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(received_time)
ORDER BY postback_id;
