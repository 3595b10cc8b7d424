-- GENERATED: the cluster variant of `crates/clickmatch-clickhouse/migrations/0011_conversion_subs.sql`.
-- Do not edit: `clickmatch migrate` renders it from the single-server migrations when
-- `[clickhouse] cluster` is set (crates/clickmatch-clickhouse/src/cluster.rs). Regenerate
-- with `CLICKMATCH_BLESS=1 cargo test -p clickmatch-clickhouse --lib cluster`.
-- By hand: replace {database} and {cluster}, keep {shard} and {replica} (macros).

ALTER TABLE {database}.conversions_local ON CLUSTER '{cluster}' ADD COLUMN IF NOT EXISTS subs_carried UInt16;

DROP TABLE IF EXISTS {database}.conversions ON CLUSTER '{cluster}';

CREATE TABLE IF NOT EXISTS {database}.conversions ON CLUSTER '{cluster}'
AS {database}.conversions_local
ENGINE = Distributed('{cluster}', '{database}', 'conversions_local', cityHash64(conversion_id));

ALTER TABLE {database}.conversions_local ON CLUSTER '{cluster}' ADD COLUMN IF NOT EXISTS sub1 String;

DROP TABLE IF EXISTS {database}.conversions ON CLUSTER '{cluster}';

CREATE TABLE IF NOT EXISTS {database}.conversions ON CLUSTER '{cluster}'
AS {database}.conversions_local
ENGINE = Distributed('{cluster}', '{database}', 'conversions_local', cityHash64(conversion_id));

ALTER TABLE {database}.conversions_local ON CLUSTER '{cluster}' ADD COLUMN IF NOT EXISTS sub2 String;

DROP TABLE IF EXISTS {database}.conversions ON CLUSTER '{cluster}';

CREATE TABLE IF NOT EXISTS {database}.conversions ON CLUSTER '{cluster}'
AS {database}.conversions_local
ENGINE = Distributed('{cluster}', '{database}', 'conversions_local', cityHash64(conversion_id));

ALTER TABLE {database}.conversions_local ON CLUSTER '{cluster}' ADD COLUMN IF NOT EXISTS sub3 String;

DROP TABLE IF EXISTS {database}.conversions ON CLUSTER '{cluster}';

CREATE TABLE IF NOT EXISTS {database}.conversions ON CLUSTER '{cluster}'
AS {database}.conversions_local
ENGINE = Distributed('{cluster}', '{database}', 'conversions_local', cityHash64(conversion_id));

ALTER TABLE {database}.conversions_local ON CLUSTER '{cluster}' ADD COLUMN IF NOT EXISTS sub4 String;

DROP TABLE IF EXISTS {database}.conversions ON CLUSTER '{cluster}';

CREATE TABLE IF NOT EXISTS {database}.conversions ON CLUSTER '{cluster}'
AS {database}.conversions_local
ENGINE = Distributed('{cluster}', '{database}', 'conversions_local', cityHash64(conversion_id));

ALTER TABLE {database}.conversions_local ON CLUSTER '{cluster}' ADD COLUMN IF NOT EXISTS sub5 String;

DROP TABLE IF EXISTS {database}.conversions ON CLUSTER '{cluster}';

CREATE TABLE IF NOT EXISTS {database}.conversions ON CLUSTER '{cluster}'
AS {database}.conversions_local
ENGINE = Distributed('{cluster}', '{database}', 'conversions_local', cityHash64(conversion_id));

ALTER TABLE {database}.conversions_local ON CLUSTER '{cluster}' ADD COLUMN IF NOT EXISTS sub6 String;

DROP TABLE IF EXISTS {database}.conversions ON CLUSTER '{cluster}';

CREATE TABLE IF NOT EXISTS {database}.conversions ON CLUSTER '{cluster}'
AS {database}.conversions_local
ENGINE = Distributed('{cluster}', '{database}', 'conversions_local', cityHash64(conversion_id));

ALTER TABLE {database}.conversions_local ON CLUSTER '{cluster}' ADD COLUMN IF NOT EXISTS sub7 String;

DROP TABLE IF EXISTS {database}.conversions ON CLUSTER '{cluster}';

CREATE TABLE IF NOT EXISTS {database}.conversions ON CLUSTER '{cluster}'
AS {database}.conversions_local
ENGINE = Distributed('{cluster}', '{database}', 'conversions_local', cityHash64(conversion_id));

ALTER TABLE {database}.conversions_local ON CLUSTER '{cluster}' ADD COLUMN IF NOT EXISTS sub8 String;

DROP TABLE IF EXISTS {database}.conversions ON CLUSTER '{cluster}';

CREATE TABLE IF NOT EXISTS {database}.conversions ON CLUSTER '{cluster}'
AS {database}.conversions_local
ENGINE = Distributed('{cluster}', '{database}', 'conversions_local', cityHash64(conversion_id));

ALTER TABLE {database}.conversions_local ON CLUSTER '{cluster}' ADD COLUMN IF NOT EXISTS sub9 String;

DROP TABLE IF EXISTS {database}.conversions ON CLUSTER '{cluster}';

CREATE TABLE IF NOT EXISTS {database}.conversions ON CLUSTER '{cluster}'
AS {database}.conversions_local
ENGINE = Distributed('{cluster}', '{database}', 'conversions_local', cityHash64(conversion_id));

ALTER TABLE {database}.conversions_local ON CLUSTER '{cluster}' ADD COLUMN IF NOT EXISTS sub10 String;

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
    latency_ms, country, device_type, os, browser, subs_carried,
    sub1, sub2, sub3, sub4, sub5, sub6, sub7, sub8, sub9, sub10,
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
        latency_ms, country, device_type, os, browser, subs_carried,
        sub1, sub2, sub3, sub4, sub5, sub6, sub7, sub8, sub9, sub10,
        toDate(conversion_time) AS day
    FROM {database}.conversions FINAL
) AS latest
ANY LEFT JOIN
(
    SELECT day, currency, factor, rate_day FROM {database}.currency_factors
) AS factors USING (day, currency);
