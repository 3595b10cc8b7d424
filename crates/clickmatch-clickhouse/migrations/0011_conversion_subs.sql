-- The click's subs on each of its conversions, as its country, device type, OS and browser
-- are since 0005 and 0010: a report grouped by a sub reads the conversions alone, where it
-- joined them to their clicks (reading and hashing every click's ID: 2.7–3.9 s of a report
-- over 10 M clicks on 26.9, BENCHMARKS.md). The joiner carries those `[joiner]
-- conversion_subs` names (sub1 by default), each kept in its state for every click.
-- `subs_carried` says which a row carries, bit `i` for `sub{i + 1}`: a carried sub may be
-- empty (the click had none), a sub not carried is empty and read from the click. Rows written
-- before have 0 and are joined as before (docs/reports.md). `conversions_valued` is recreated
-- with the columns, otherwise as in 0010; readers of it fail for the moment in between.
--
-- `ADD COLUMN IF NOT EXISTS`: 18.16 lacks the clause, so `migrate` checks `system.columns` and
-- runs the statement without it only where the column is missing. `{database}` is replaced by
-- the configured database name.

ALTER TABLE {database}.conversions ADD COLUMN IF NOT EXISTS subs_carried UInt16;
ALTER TABLE {database}.conversions ADD COLUMN IF NOT EXISTS sub1 String;
ALTER TABLE {database}.conversions ADD COLUMN IF NOT EXISTS sub2 String;
ALTER TABLE {database}.conversions ADD COLUMN IF NOT EXISTS sub3 String;
ALTER TABLE {database}.conversions ADD COLUMN IF NOT EXISTS sub4 String;
ALTER TABLE {database}.conversions ADD COLUMN IF NOT EXISTS sub5 String;
ALTER TABLE {database}.conversions ADD COLUMN IF NOT EXISTS sub6 String;
ALTER TABLE {database}.conversions ADD COLUMN IF NOT EXISTS sub7 String;
ALTER TABLE {database}.conversions ADD COLUMN IF NOT EXISTS sub8 String;
ALTER TABLE {database}.conversions ADD COLUMN IF NOT EXISTS sub9 String;
ALTER TABLE {database}.conversions ADD COLUMN IF NOT EXISTS sub10 String;

DROP TABLE IF EXISTS {database}.conversions_valued;

CREATE VIEW IF NOT EXISTS {database}.conversions_valued
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
