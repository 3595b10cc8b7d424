-- GENERATED: the cluster variant of `crates/clickmatch-clickhouse/migrations/0003_rollups.sql`.
-- Do not edit: `clickmatch migrate` renders it from the single-server migrations when
-- `[clickhouse] cluster` is set (crates/clickmatch-clickhouse/src/cluster.rs). Regenerate
-- with `CLICKMATCH_BLESS=1 cargo test -p clickmatch-clickhouse --lib cluster`.
-- By hand: replace {database} and {cluster}, keep {shard} and {replica} (macros).

CREATE TABLE IF NOT EXISTS {database}.unattributed_hourly_local ON CLUSTER '{cluster}'
(
    hour DateTime,
    route String,
    reason String,
    offer_id String,
    is_test UInt8,
    postback_ids AggregateFunction(uniqExact, String)
)
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/unattributed_hourly_local', '{replica}')
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, route, reason, offer_id, is_test);

CREATE TABLE IF NOT EXISTS {database}.unattributed_hourly ON CLUSTER '{cluster}'
AS {database}.unattributed_hourly_local
ENGINE = Distributed('{cluster}', '{database}', 'unattributed_hourly_local', cityHash64(hour));

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.unattributed_hourly_mv ON CLUSTER '{cluster}'
TO {database}.unattributed_hourly_local
AS SELECT
    toStartOfHour(received_time) AS hour,
    route,
    reason,
    offer_id,
    is_test,
    uniqExactState(postback_id) AS postback_ids
FROM {database}.unattributed_local
GROUP BY hour, route, reason, offer_id, is_test;

INSERT INTO {database}.unattributed_hourly
SELECT
    toStartOfHour(received_time) AS hour,
    route,
    reason,
    offer_id,
    is_test,
    uniqExactState(postback_id) AS postback_ids
FROM {database}.unattributed
GROUP BY hour, route, reason, offer_id, is_test;

CREATE TABLE IF NOT EXISTS {database}.conversions_hourly_local ON CLUSTER '{cluster}'
(
    hour DateTime,
    offer_id String,
    route String,
    event String,
    currency String,
    is_test UInt8,
    conversion_versions AggregateFunction(groupUniqArray, Tuple(String, UInt64, String, Decimal(18, 6)))
)
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/conversions_hourly_local', '{replica}')
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, offer_id, route, event, currency, is_test);

CREATE TABLE IF NOT EXISTS {database}.conversions_hourly ON CLUSTER '{cluster}'
AS {database}.conversions_hourly_local
ENGINE = Distributed('{cluster}', '{database}', 'conversions_hourly_local', cityHash64(hour));

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.conversions_hourly_mv ON CLUSTER '{cluster}'
TO {database}.conversions_hourly_local
AS SELECT
    toStartOfHour(conversion_time) AS hour,
    offer_id,
    route,
    event,
    currency,
    is_test,
    groupUniqArrayState(tuple(conversion_id, version, status, payout)) AS conversion_versions
FROM {database}.conversions_local
GROUP BY hour, offer_id, route, event, currency, is_test;

INSERT INTO {database}.conversions_hourly
SELECT
    toStartOfHour(conversion_time) AS hour,
    offer_id,
    route,
    event,
    currency,
    is_test,
    groupUniqArrayState(tuple(conversion_id, version, status, payout)) AS conversion_versions
FROM {database}.conversions
GROUP BY hour, offer_id, route, event, currency, is_test;

CREATE VIEW IF NOT EXISTS {database}.unattributed_hourly_totals ON CLUSTER '{cluster}'
AS SELECT
    hour,
    route,
    reason,
    offer_id,
    is_test,
    uniqExactMerge(postback_ids) AS postbacks
FROM {database}.unattributed_hourly
GROUP BY hour, route, reason, offer_id, is_test;

CREATE VIEW IF NOT EXISTS {database}.conversions_hourly_versions ON CLUSTER '{cluster}'
AS SELECT
    hour,
    offer_id,
    route,
    event,
    currency,
    is_test,
    version_tuple.3 AS status,
    uniqExact(version_tuple.1) AS conversions,
    count() AS versions,
    sum(version_tuple.4) AS payout
FROM
(
    SELECT hour, offer_id, route, event, currency, is_test,
        groupUniqArrayMerge(conversion_versions) AS version_tuples
    FROM {database}.conversions_hourly
    GROUP BY hour, offer_id, route, event, currency, is_test
)
ARRAY JOIN version_tuples AS version_tuple
GROUP BY hour, offer_id, route, event, currency, is_test, status;

CREATE VIEW IF NOT EXISTS {database}.conversions_hourly_latest ON CLUSTER '{cluster}'
AS SELECT
    latest_hour AS hour,
    latest_offer_id AS offer_id,
    latest_route AS route,
    latest_event AS event,
    latest_currency AS currency,
    latest_is_test AS is_test,
    latest_status AS status,
    count() AS conversions,
    sum(latest_payout) AS payout
FROM
(
    SELECT
        version_tuple.1 AS conversion_id,
        argMax(hour, version_tuple.2) AS latest_hour,
        argMax(offer_id, version_tuple.2) AS latest_offer_id,
        argMax(route, version_tuple.2) AS latest_route,
        argMax(event, version_tuple.2) AS latest_event,
        argMax(currency, version_tuple.2) AS latest_currency,
        argMax(is_test, version_tuple.2) AS latest_is_test,
        argMax(version_tuple.3, version_tuple.2) AS latest_status,
        argMax(version_tuple.4, version_tuple.2) AS latest_payout
    FROM
    (
        SELECT hour, offer_id, route, event, currency, is_test,
            groupUniqArrayMerge(conversion_versions) AS version_tuples
        FROM {database}.conversions_hourly
        GROUP BY hour, offer_id, route, event, currency, is_test
    )
    ARRAY JOIN version_tuples AS version_tuple
    GROUP BY conversion_id
)
GROUP BY hour, offer_id, route, event, currency, is_test, status;
