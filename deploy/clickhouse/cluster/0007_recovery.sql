-- GENERATED: the cluster variant of `crates/clickmatch-clickhouse/migrations/0007_recovery.sql`.
-- Do not edit: `clickmatch migrate` renders it from the single-server migrations when
-- `[clickhouse] cluster` is set (crates/clickmatch-clickhouse/src/cluster.rs). Regenerate
-- with `CLICKMATCH_BLESS=1 cargo test -p clickmatch-clickhouse --lib cluster`.
-- By hand: replace {database} and {cluster}, keep {shard} and {replica} (macros).

ALTER TABLE {database}.conversions_local ON CLUSTER '{cluster}' ADD COLUMN IF NOT EXISTS origin String DEFAULT 'postback';

DROP TABLE IF EXISTS {database}.conversions ON CLUSTER '{cluster}';

CREATE TABLE IF NOT EXISTS {database}.conversions ON CLUSTER '{cluster}'
AS {database}.conversions_local
ENGINE = Distributed('{cluster}', '{database}', 'conversions_local', cityHash64(conversion_id));

CREATE TABLE IF NOT EXISTS {database}.recovered_local ON CLUSTER '{cluster}'
(
    postback_id String,
    origin String,
    received_time DateTime,
    received_time_ms UInt64,
    decided_time_ms UInt64,
    route String,
    outcome String,
    reason String,
    hint String,
    click_id String,
    conversion_id String,
    offer_id String,
    is_test UInt8,
    payout Decimal(18, 6),
    currency String
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/recovered_local', '{replica}', decided_time_ms)
PARTITION BY toYYYYMM(received_time)
ORDER BY postback_id;

CREATE TABLE IF NOT EXISTS {database}.recovered ON CLUSTER '{cluster}'
AS {database}.recovered_local
ENGINE = Distributed('{cluster}', '{database}', 'recovered_local', cityHash64(postback_id));

CREATE VIEW IF NOT EXISTS {database}.unattributed_current ON CLUSTER '{cluster}'
AS SELECT
    postback_id,
    received_time,
    received_time_ms,
    route,
    if(decision_outcome = '', first_reason, decision_reason) AS reason,
    raw_click_id,
    if(decision_outcome = '', first_offer_id, decision_offer_id) AS offer_id,
    payout,
    currency,
    remote_ip,
    raw_params,
    if(decision_outcome = '', first_hint, decision_hint) AS hint,
    if(decision_outcome = '', first_is_test, decision_is_test) AS is_test,
    latency_ms,
    first_reason,
    first_hint,
    toUInt8(decision_outcome != '') AS reprocessed
FROM
(
    SELECT postback_id, received_time, received_time_ms, route, reason AS first_reason,
        raw_click_id, offer_id AS first_offer_id, payout, currency, remote_ip, raw_params,
        hint AS first_hint, is_test AS first_is_test, latency_ms
    FROM {database}.unattributed FINAL
) AS first
ANY LEFT JOIN
(
    SELECT postback_id, outcome AS decision_outcome, reason AS decision_reason,
        hint AS decision_hint, offer_id AS decision_offer_id, is_test AS decision_is_test
    FROM {database}.recovered FINAL
    WHERE origin = 'reprocess'
) AS decision USING postback_id
WHERE decision_outcome != 'attributed';

DROP TABLE IF EXISTS {database}.unattributed_hourly_totals ON CLUSTER '{cluster}';

CREATE VIEW IF NOT EXISTS {database}.unattributed_hourly_totals ON CLUSTER '{cluster}'
AS SELECT
    hour,
    route,
    reason,
    offer_id,
    is_test,
    toUInt64(sum(part_postbacks)) AS postbacks
FROM
(
    SELECT hour, route, reason, offer_id, is_test,
        toInt64(uniqExactMerge(postback_ids)) AS part_postbacks
    FROM {database}.unattributed_hourly
    GROUP BY hour, route, reason, offer_id, is_test
    UNION ALL
    SELECT toStartOfHour(received_time) AS hour, route, reason, offer_id, is_test,
        -toInt64(count()) AS part_postbacks
    FROM {database}.unattributed FINAL
    WHERE postback_id GLOBAL IN
        (SELECT postback_id FROM {database}.recovered WHERE origin = 'reprocess')
    GROUP BY hour, route, reason, offer_id, is_test
    UNION ALL
    SELECT toStartOfHour(received_time) AS hour, route, reason, offer_id, is_test,
        toInt64(count()) AS part_postbacks
    FROM {database}.recovered FINAL
    WHERE origin = 'reprocess' AND outcome = 'unattributed'
    GROUP BY hour, route, reason, offer_id, is_test
)
GROUP BY hour, route, reason, offer_id, is_test
HAVING postbacks > 0;
