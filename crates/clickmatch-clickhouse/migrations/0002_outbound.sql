-- Outbound postbacks: one row per delivery attempt of a conversion version's traffic-source
-- postback, the last attempt carrying the final state. Runs on 18.16 and current releases.
-- `state`: `retrying` (this attempt failed, another follows), `delivered`, `failed` (no attempt
-- left, or an answer no retry fixes), `skipped` (nothing to fire: a test conversion).
-- A replay after a crash rewrites the same (idempotency_key, attempt) rows; the newest attempt
-- time wins. Partitioned by the click's month, which every attempt of a delivery shares.

CREATE TABLE IF NOT EXISTS {database}.outbound_deliveries
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
ENGINE = ReplacingMergeTree(attempt_time_ms)
PARTITION BY toYYYYMM(click_time)
ORDER BY (idempotency_key, attempt);
