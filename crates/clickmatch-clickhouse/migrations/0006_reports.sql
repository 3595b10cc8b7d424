-- Reports (docs/reports.md): conversions group by their click's country and device type
-- without a join, so `conversions_valued` (0004) gains the two columns of 0005. A view cannot be
-- altered on 18.16: it is dropped and created again, which is idempotent (readers of the view
-- fail for the moment in between). The valuation is unchanged; docs/money.md explains it.
-- `{database}` is replaced by the configured database name.

DROP TABLE IF EXISTS {database}.conversions_valued;

-- As in 0004, plus `country` and `device_type`.
CREATE VIEW IF NOT EXISTS {database}.conversions_valued
AS SELECT
    conversion_id, click_id, click_time, conversion_time, conversion_time_ms, postback_id,
    campaign_id, offer_id, source, route, event, status, payout, currency, payout_raw,
    payout_issue, txid, offer_mismatch, click_id_repaired, repair_hint, is_test, version,
    latency_ms, country, device_type,
    account_currency,
    toDecimal64(round(toFloat64(payout) * multiIf(currency = account_currency, 1, factor), 6), 6)
        AS payout_account,
    toUInt8(currency != account_currency AND factor = 0) AS rate_missing,
    if(currency = account_currency, day, rate_day) AS rate_day
FROM
(
    SELECT
        conversion_id, click_id, click_time, conversion_time, conversion_time_ms, postback_id,
        campaign_id, offer_id, source, route, event, status, payout, currency, payout_raw,
        payout_issue, txid, offer_mismatch, click_id_repaired, repair_hint, is_test, version,
        latency_ms, country, device_type,
        toDate(conversion_time) AS day,
        assumeNotNull((SELECT currency FROM {database}.account)) AS account_currency
    FROM {database}.conversions FINAL
) AS latest
ANY LEFT JOIN
(
    SELECT day, currency, factor, rate_day FROM {database}.currency_factors
) AS factors USING (day, currency);
