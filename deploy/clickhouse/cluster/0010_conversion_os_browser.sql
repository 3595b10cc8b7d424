-- GENERATED: the cluster variant of `crates/clickmatch-clickhouse/migrations/0010_conversion_os_browser.sql`.
-- Do not edit: `clickmatch migrate` renders it from the single-server migrations when
-- `[clickhouse] cluster` is set (crates/clickmatch-clickhouse/src/cluster.rs). Regenerate
-- with `CLICKMATCH_BLESS=1 cargo test -p clickmatch-clickhouse --lib cluster`.
-- By hand: replace {database} and {cluster}, keep {shard} and {replica} (macros).

ALTER TABLE {database}.conversions_local ON CLUSTER '{cluster}' ADD COLUMN IF NOT EXISTS os String;

DROP TABLE IF EXISTS {database}.conversions ON CLUSTER '{cluster}';

CREATE TABLE IF NOT EXISTS {database}.conversions ON CLUSTER '{cluster}'
AS {database}.conversions_local
ENGINE = Distributed('{cluster}', '{database}', 'conversions_local', cityHash64(conversion_id));

ALTER TABLE {database}.conversions_local ON CLUSTER '{cluster}' ADD COLUMN IF NOT EXISTS browser String;

DROP TABLE IF EXISTS {database}.conversions ON CLUSTER '{cluster}';

CREATE TABLE IF NOT EXISTS {database}.conversions ON CLUSTER '{cluster}'
AS {database}.conversions_local
ENGINE = Distributed('{cluster}', '{database}', 'conversions_local', cityHash64(conversion_id));

DROP TABLE IF EXISTS {database}.conversions_valued ON CLUSTER '{cluster}';

CREATE VIEW IF NOT EXISTS {database}.conversions_valued ON CLUSTER '{cluster}'
AS SELECT
    conversion_id, click_id, click_time, conversion_time, conversion_time_ms, postback_id,
    campaign_id, offer_id, source, route, event, status, payout, currency, payout_raw,
    payout_issue, txid, offer_mismatch, click_id_repaired, repair_hint, is_test, version,
    latency_ms, country, device_type, os, browser,
    assumeNotNull((SELECT currency FROM {database}.account)) AS account_currency,
    if(currency = account_currency, payout,
        toDecimal64(toString(round(toFloat64(payout) * factor, 6)), 6)) AS payout_account,
    toUInt8(currency != account_currency AND factor = 0) AS rate_missing,
    if(currency = account_currency, day, rate_day) AS rate_day
FROM
(
    SELECT
        conversion_id, click_id, click_time, conversion_time, conversion_time_ms, postback_id,
        campaign_id, offer_id, source, route, event, status, payout, currency, payout_raw,
        payout_issue, txid, offer_mismatch, click_id_repaired, repair_hint, is_test, version,
        latency_ms, country, device_type, os, browser,
        toDate(conversion_time) AS day
    FROM {database}.conversions FINAL
) AS latest
ANY LEFT JOIN
(
    SELECT day, currency, factor, rate_day FROM {database}.currency_factors
) AS factors USING (day, currency);
