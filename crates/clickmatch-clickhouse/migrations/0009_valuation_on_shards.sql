-- The account currency of `conversions_valued` (docs/money.md) is read in the view's outer
-- query instead of beside the conversions. In the cluster layout the inner read goes through the
-- `Distributed` table to every shard, and 18.16 cannot send a scalar subquery there: with two
-- shards or more every read of the view failed ("Not found column assumeNotNull(_subquery…)"),
-- and with it the reports and money figures. The view is otherwise as in 0008; readers of it
-- fail for the moment in between. `{database}` is replaced by the configured database name.

DROP TABLE IF EXISTS {database}.conversions_valued;

CREATE VIEW IF NOT EXISTS {database}.conversions_valued
AS SELECT
    conversion_id, click_id, click_time, conversion_time, conversion_time_ms, postback_id,
    campaign_id, offer_id, source, route, event, status, payout, currency, payout_raw,
    payout_issue, txid, offer_mismatch, click_id_repaired, repair_hint, is_test, version,
    latency_ms, country, device_type,
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
        latency_ms, country, device_type,
        toDate(conversion_time) AS day
    FROM {database}.conversions FINAL
) AS latest
ANY LEFT JOIN
(
    SELECT day, currency, factor, rate_day FROM {database}.currency_factors
) AS factors USING (day, currency);
