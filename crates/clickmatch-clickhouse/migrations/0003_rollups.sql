-- Hourly rollups: unattributed postbacks by reason, and conversions with their payout, by offer
-- and route. Materialized views `TO` AggregatingMergeTree tables, read through plain views.
--
-- Exact under replays. The joiner writes at least once: after a crash it writes the same rows
-- again, and base tables collapse them (ReplacingMergeTree, read with FINAL). A view into a
-- SummingMergeTree would add every repeat. Here every rollup cell keeps the set of row IDs it
-- has seen (uniqExact over postback IDs; for conversions, the distinct (conversion_id,
-- version, status, payout) tuples), so a row written twice is counted once, and a backfill that
-- overlaps rows the view already saw cannot double count either. The price is memory in
-- proportion to the distinct rows (16 bytes per unattributed postback, about 60 bytes per
-- conversion version), not a handful of numbers per cell: there is no exact rollup of
-- at-least-once inserts without remembering what was counted.
--
-- Versions. A status update (pending -> approved, approved -> chargeback) is a new version of
-- the same conversion, arriving in its own hour; `conversions FINAL` keeps only the latest.
-- The rollup keeps every version, bucketed by the hour the version arrived:
--   conversions_hourly_versions  a ledger: per hour and status, the conversions that reached
--                                the status that hour and the payout of those versions
--   conversions_hourly_latest    the current state: each conversion once, with its latest
--                                version's hour, route, status and payout = `conversions FINAL`
--
-- Runs on ClickHouse 18.16 and current releases. No column of a base table changes; the
-- backfill statements fill the rollups from rows written before this migration (and are
-- harmless when repeated). `{database}` is replaced by the configured database name.

CREATE TABLE IF NOT EXISTS {database}.unattributed_hourly
(
    hour DateTime,
    route String,
    reason String,
    offer_id String,
    is_test UInt8,
    postback_ids AggregateFunction(uniqExact, String)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, route, reason, offer_id, is_test);

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.unattributed_hourly_mv
TO {database}.unattributed_hourly
AS SELECT
    toStartOfHour(received_time) AS hour,
    route,
    reason,
    offer_id,
    is_test,
    uniqExactState(postback_id) AS postback_ids
FROM {database}.unattributed
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

CREATE TABLE IF NOT EXISTS {database}.conversions_hourly
(
    hour DateTime,
    offer_id String,
    route String,
    event String,
    currency String,
    is_test UInt8,
    conversion_versions AggregateFunction(groupUniqArray, Tuple(String, UInt64, String, Decimal(18, 6)))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, offer_id, route, event, currency, is_test);

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.conversions_hourly_mv
TO {database}.conversions_hourly
AS SELECT
    toStartOfHour(conversion_time) AS hour,
    offer_id,
    route,
    event,
    currency,
    is_test,
    groupUniqArrayState(tuple(conversion_id, version, status, payout)) AS conversion_versions
FROM {database}.conversions
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

-- Unattributed postbacks per hour received, route, reason and offer; equal to
-- `SELECT ..., count() FROM unattributed FINAL GROUP BY ...`.
CREATE VIEW IF NOT EXISTS {database}.unattributed_hourly_totals
AS SELECT
    hour,
    route,
    reason,
    offer_id,
    is_test,
    uniqExactMerge(postback_ids) AS postbacks
FROM {database}.unattributed_hourly
GROUP BY hour, route, reason, offer_id, is_test;

-- The ledger: per hour a version arrived and its status, the distinct conversions, their
-- versions and the sum of those versions' payouts (each version once). A conversion approved
-- at 10:00 and charged back at 14:00 is in 10:00/approved and in 14:00/chargeback.
CREATE VIEW IF NOT EXISTS {database}.conversions_hourly_versions
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

-- The current state: each conversion once, as its latest version (hour it arrived, route,
-- status, payout); equal to `SELECT ..., count(), sum(payout) FROM conversions FINAL GROUP BY
-- toStartOfHour(conversion_time), ...`. It expands every version it reads: for a time range,
-- copy it with `WHERE hour >= ...` in the innermost query (the latest version within the range).
CREATE VIEW IF NOT EXISTS {database}.conversions_hourly_latest
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
