-- Recovery: `clickmatch reprocess` sends stored unattributed postbacks back through the joiner
-- once the operator fixed the cause, `clickmatch upload` and `POST /api/conversions` send
-- conversions a network reported but never posted back. docs/architecture.md, "Recovery".
--
-- `unattributed` stays the history of what live postbacks first ended in: a reprocessed
-- postback's decision does not replace its row there (a row of the same postback ID would
-- replace it on merge). The decisions about reprocessed and uploaded records go to
-- `recovered`, one row per record, its latest decision; attributed ones also to `conversions`
-- (origin `reprocess` or `upload`). What is still unattributed *now* is `unattributed_current`,
-- and `unattributed_hourly_totals` (which `figures_hourly` and the reports read) is redefined
-- to count it.
--
-- Runs on ClickHouse 18.16 (no window functions, one JOIN per SELECT) and current releases.
-- `ADD COLUMN IF NOT EXISTS`: 18.16 lacks the clause, so `migrate` checks `system.columns` and
-- runs the statement without it only where the column is missing.

-- What made each conversion version: `postback`, `upload` or `reprocess` (rows written before
-- this migration are postbacks).
ALTER TABLE {database}.conversions ADD COLUMN IF NOT EXISTS origin String DEFAULT 'postback';

-- One row per reprocessed or uploaded record: the joiner's latest decision about it
-- (ReplacingMergeTree by the decision time: applying again replaces the row, read with FINAL).
--   outcome        `attributed` or `unattributed`
--   reason, hint   of an unattributed decision (hint: of a conversion, its repair hint)
--   click_id       the conversion's click, or the click ID as sent
--   conversion_id  of an attributed decision
--   offer_id, is_test, payout, currency as the conversion or the unattributed row has them
CREATE TABLE IF NOT EXISTS {database}.recovered
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
ENGINE = ReplacingMergeTree(decided_time_ms)
PARTITION BY toYYYYMM(received_time)
ORDER BY postback_id;

-- Unattributed postbacks as they stand now: `unattributed FINAL` without the postbacks that a
-- reprocess attributed, and with the reason, hint, offer and test flag of the latest reprocess
-- decision for those still unattributed (`first_reason`, `first_hint`: what they first ended
-- in; `reprocessed`: 1 when a reprocess decided them since). Same columns as `unattributed`
-- otherwise, so a query of `unattributed FINAL` reads the current state from here.
CREATE VIEW IF NOT EXISTS {database}.unattributed_current
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

-- Redefined from 0003 to count `unattributed_current`: the rollup of `unattributed` (every
-- postback as first decided), minus the reprocessed ones in the cell they were first counted in,
-- plus those still unattributed in the cell of their latest decision. The corrections read only
-- the reprocessed postbacks (`GLOBAL IN`: the set is built once, also on a cluster, and the
-- lookup uses the primary key).
DROP TABLE IF EXISTS {database}.unattributed_hourly_totals;

CREATE VIEW IF NOT EXISTS {database}.unattributed_hourly_totals
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
