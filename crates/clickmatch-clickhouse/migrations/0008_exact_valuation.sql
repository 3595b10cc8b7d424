-- Exact valuation (docs/money.md): an amount valued in the account currency went through
-- Float64 and `toDecimal64(Float64, 6)`, which truncates: 0.29 became 0.289999 (1,196 of the
-- cent values 0.00 to 999.99 lost a millionth, on 18.16 and current releases alike). A payout
-- already in the account currency is now taken as it is, and a converted amount is rounded to
-- six decimals and read back through its shortest text, which is exact. The two views that value
-- money are dropped and created again, otherwise unchanged (`conversions_valued` as in 0006,
-- `figures_hourly` as in 0004); readers of a view fail for the moment in between.
-- `{database}` is replaced by the configured database name.

DROP TABLE IF EXISTS {database}.conversions_valued;

CREATE VIEW IF NOT EXISTS {database}.conversions_valued
AS SELECT
    conversion_id, click_id, click_time, conversion_time, conversion_time_ms, postback_id,
    campaign_id, offer_id, source, route, event, status, payout, currency, payout_raw,
    payout_issue, txid, offer_mismatch, click_id_repaired, repair_hint, is_test, version,
    latency_ms, country, device_type,
    account_currency,
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
        toDate(conversion_time) AS day,
        assumeNotNull((SELECT currency FROM {database}.account)) AS account_currency
    FROM {database}.conversions FINAL
) AS latest
ANY LEFT JOIN
(
    SELECT day, currency, factor, rate_day FROM {database}.currency_factors
) AS factors USING (day, currency);

DROP TABLE IF EXISTS {database}.figures_hourly;

CREATE VIEW IF NOT EXISTS {database}.figures_hourly
AS SELECT
    hour,
    campaign_id,
    offer_id,
    source,
    is_test,
    sum(part_clicks) AS clicks,
    sum(part_conversions) AS conversions,
    toDecimal64(sum(part_revenue), 6) AS revenue,
    toDecimal64(sum(part_cost), 6) AS cost,
    revenue - cost AS profit,
    if(cost = 0, NULL, toFloat64(profit) / toFloat64(cost)) AS roi,
    if(clicks = 0, NULL, conversions / clicks) AS cr,
    if(clicks = 0, NULL, toFloat64(revenue) / clicks) AS epc,
    sum(part_unattributed) AS unattributed,
    sum(part_unvalued) AS unvalued
FROM
(
    SELECT
        hour, campaign_id, offer_id, source, is_test,
        part_clicks, part_conversions, part_unattributed,
        toDecimal64(toString(round(amount * valued, 6)), 6) AS part_revenue_or_cost,
        if(is_revenue, part_revenue_or_cost, toDecimal64(0, 6)) AS part_revenue,
        if(is_revenue, toDecimal64(0, 6), part_revenue_or_cost) AS part_cost,
        -- A conversion without a rate is unvalued whatever its payout (as in
        -- conversions_valued.rate_missing); a cell or cost line only when it has an amount.
        toUInt64((amount != 0 OR is_revenue) AND valued = 0) AS part_unvalued
    FROM
    (
        SELECT
            hour, campaign_id, offer_id, source, is_test, currency, amount, is_revenue,
            part_clicks, part_conversions, part_unattributed,
            multiIf(currency = assumeNotNull((SELECT currency FROM {database}.account)), 1, factor)
                AS valued
        FROM
        (
            SELECT
                hour, campaign_id, offer_id, source, is_test,
                cost_currency AS currency,
                toDate(hour) AS day,
                arraySum(arrayMap(pair -> pair.2, click_costs)) / 1000000 AS amount,
                0 AS is_revenue,
                toUInt64(clicks) AS part_clicks,
                toUInt64(0) AS part_conversions,
                toUInt64(0) AS part_unattributed
            FROM
            (
                SELECT hour, campaign_id, offer_id, source, cost_currency, is_test,
                    uniqExactMerge(click_ids) AS clicks,
                    groupUniqArrayMerge(click_costs) AS click_costs
                FROM {database}.clicks_hourly
                GROUP BY hour, campaign_id, offer_id, source, cost_currency, is_test
            )
            UNION ALL
            SELECT
                latest_hour AS hour, campaign_id, offer_id, source, is_test,
                latest_currency AS currency,
                toDate(latest_hour) AS day,
                toFloat64(latest_payout) AS amount,
                1 AS is_revenue,
                toUInt64(0) AS part_clicks,
                toUInt64(1) AS part_conversions,
                toUInt64(0) AS part_unattributed
            FROM
            (
                SELECT
                    version_tuple.1 AS conversion_id,
                    any(campaign_id) AS campaign_id,
                    any(offer_id) AS offer_id,
                    any(source) AS source,
                    any(is_test) AS is_test,
                    argMax(hour, version_tuple.2) AS latest_hour,
                    argMax(currency, version_tuple.2) AS latest_currency,
                    argMax(version_tuple.3, version_tuple.2) AS latest_status,
                    argMax(version_tuple.4, version_tuple.2) AS latest_payout
                FROM
                (
                    SELECT hour, campaign_id, offer_id, source, currency, is_test,
                        groupUniqArrayMerge(conversion_versions) AS version_tuples
                    FROM {database}.conversions_figures_hourly
                    GROUP BY hour, campaign_id, offer_id, source, currency, is_test
                )
                ARRAY JOIN version_tuples AS version_tuple
                GROUP BY conversion_id
            )
            WHERE latest_status IN ('approved', 'pending', 'hold')
            UNION ALL
            SELECT
                period_start AS hour, campaign_id, offer_id, source,
                toUInt8(0) AS is_test,
                currency,
                toDate(period_start) AS day,
                toFloat64(amount) AS amount,
                0 AS is_revenue,
                toUInt64(0) AS part_clicks,
                toUInt64(0) AS part_conversions,
                toUInt64(0) AS part_unattributed
            FROM {database}.costs_current
            UNION ALL
            SELECT
                hour, '' AS campaign_id, offer_id, '' AS source, is_test,
                '' AS currency,
                toDate(hour) AS day,
                toFloat64(0) AS amount,
                0 AS is_revenue,
                toUInt64(0) AS part_clicks,
                toUInt64(0) AS part_conversions,
                toUInt64(postbacks) AS part_unattributed
            FROM {database}.unattributed_hourly_totals
            WHERE reason != 'duplicate'
        ) AS parts
        ANY LEFT JOIN
        (
            SELECT day, currency, factor FROM {database}.currency_factors
        ) AS factors USING (day, currency)
    )
)
GROUP BY hour, campaign_id, offer_id, source, is_test;
