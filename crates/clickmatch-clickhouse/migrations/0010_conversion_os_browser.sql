-- The click's OS and browser on each of its conversions, as its country and device type are
-- since 0005: reports group conversions by them without joining every click of the range (the
-- join read and hashed all clicks' IDs: 2–3 s of a report over 10 M clicks, BENCHMARKS.md).
-- The joiner copies them from the click it keeps; conversions written before, and those of
-- clicks the joiner kept before it kept these two, have them empty and group under the empty
-- value (docs/reports.md). `conversions_valued` is recreated with the two columns, otherwise as
-- in 0009; readers of it fail for the moment in between.
--
-- `ADD COLUMN IF NOT EXISTS`: 18.16 lacks the clause, so `migrate` checks `system.columns` and
-- runs the statement without it only where the column is missing. `{database}` is replaced by
-- the configured database name.

ALTER TABLE {database}.conversions ADD COLUMN IF NOT EXISTS os String;
ALTER TABLE {database}.conversions ADD COLUMN IF NOT EXISTS browser String;

DROP TABLE IF EXISTS {database}.conversions_valued;

CREATE VIEW IF NOT EXISTS {database}.conversions_valued
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
