-- GENERATED: the cluster variant of `crates/clickmatch-clickhouse/migrations/0004_money.sql`.
-- Do not edit: `clickmatch migrate` renders it from the single-server migrations when
-- `[clickhouse] cluster` is set (crates/clickmatch-clickhouse/src/cluster.rs). Regenerate
-- with `CLICKMATCH_BLESS=1 cargo test -p clickmatch-clickhouse --lib cluster`.
-- By hand: replace {database} and {cluster}, keep {shard} and {replica} (macros).

ALTER TABLE {database}.conversions_local ON CLUSTER '{cluster}' ADD COLUMN IF NOT EXISTS payout_raw String;

DROP TABLE IF EXISTS {database}.conversions ON CLUSTER '{cluster}';

CREATE TABLE IF NOT EXISTS {database}.conversions ON CLUSTER '{cluster}'
AS {database}.conversions_local
ENGINE = Distributed('{cluster}', '{database}', 'conversions_local', cityHash64(conversion_id));

ALTER TABLE {database}.conversions_local ON CLUSTER '{cluster}' ADD COLUMN IF NOT EXISTS payout_issue String;

DROP TABLE IF EXISTS {database}.conversions ON CLUSTER '{cluster}';

CREATE TABLE IF NOT EXISTS {database}.conversions ON CLUSTER '{cluster}'
AS {database}.conversions_local
ENGINE = Distributed('{cluster}', '{database}', 'conversions_local', cityHash64(conversion_id));

ALTER TABLE {database}.conversions_local ON CLUSTER '{cluster}' ADD COLUMN IF NOT EXISTS source String;

DROP TABLE IF EXISTS {database}.conversions ON CLUSTER '{cluster}';

CREATE TABLE IF NOT EXISTS {database}.conversions ON CLUSTER '{cluster}'
AS {database}.conversions_local
ENGINE = Distributed('{cluster}', '{database}', 'conversions_local', cityHash64(conversion_id));

ALTER TABLE {database}.clicks_local ON CLUSTER '{cluster}' ADD COLUMN IF NOT EXISTS cost Decimal(18, 6);

DROP TABLE IF EXISTS {database}.clicks ON CLUSTER '{cluster}';

CREATE TABLE IF NOT EXISTS {database}.clicks ON CLUSTER '{cluster}'
AS {database}.clicks_local
ENGINE = Distributed('{cluster}', '{database}', 'clicks_local', cityHash64(click_id));

ALTER TABLE {database}.clicks_local ON CLUSTER '{cluster}' ADD COLUMN IF NOT EXISTS cost_currency String;

DROP TABLE IF EXISTS {database}.clicks ON CLUSTER '{cluster}';

CREATE TABLE IF NOT EXISTS {database}.clicks ON CLUSTER '{cluster}'
AS {database}.clicks_local
ENGINE = Distributed('{cluster}', '{database}', 'clicks_local', cityHash64(click_id));

ALTER TABLE {database}.clicks_local ON CLUSTER '{cluster}' ADD COLUMN IF NOT EXISTS cost_raw String;

DROP TABLE IF EXISTS {database}.clicks ON CLUSTER '{cluster}';

CREATE TABLE IF NOT EXISTS {database}.clicks ON CLUSTER '{cluster}'
AS {database}.clicks_local
ENGINE = Distributed('{cluster}', '{database}', 'clicks_local', cityHash64(click_id));

ALTER TABLE {database}.clicks_local ON CLUSTER '{cluster}' ADD COLUMN IF NOT EXISTS cost_issue String;

DROP TABLE IF EXISTS {database}.clicks ON CLUSTER '{cluster}';

CREATE TABLE IF NOT EXISTS {database}.clicks ON CLUSTER '{cluster}'
AS {database}.clicks_local
ENGINE = Distributed('{cluster}', '{database}', 'clicks_local', cityHash64(click_id));

CREATE TABLE IF NOT EXISTS {database}.account_settings_local ON CLUSTER '{cluster}'
(
    id UInt8,
    currency String,
    max_rate_age_days UInt16,
    updated_ms UInt64
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/account_settings_local', '{replica}', updated_ms)
ORDER BY id;

CREATE TABLE IF NOT EXISTS {database}.account_settings ON CLUSTER '{cluster}'
AS {database}.account_settings_local
ENGINE = Distributed('{cluster}', '{database}', 'account_settings_local', cityHash64(id));

CREATE TABLE IF NOT EXISTS {database}.exchange_rates_local ON CLUSTER '{cluster}'
(
    day Date,
    currency String,
    per_eur Decimal(18, 6),
    source String,
    imported_ms UInt64
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/exchange_rates_local', '{replica}', imported_ms)
PARTITION BY toYear(day)
ORDER BY (currency, day);

CREATE TABLE IF NOT EXISTS {database}.exchange_rates ON CLUSTER '{cluster}'
AS {database}.exchange_rates_local
ENGINE = Distributed('{cluster}', '{database}', 'exchange_rates_local', cityHash64(currency));

CREATE TABLE IF NOT EXISTS {database}.costs_local ON CLUSTER '{cluster}'
(
    period_start DateTime,
    period_hours UInt8,
    campaign_id String,
    offer_id String,
    source String,
    sub1 String,
    sub2 String,
    sub3 String,
    sub4 String,
    sub5 String,
    sub6 String,
    sub7 String,
    sub8 String,
    sub9 String,
    sub10 String,
    amount Decimal(18, 6),
    currency String,
    file String,
    line UInt32,
    import_id String,
    imported_ms UInt64
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/costs_local', '{replica}', imported_ms)
PARTITION BY toYYYYMM(period_start)
ORDER BY (campaign_id, period_start, period_hours, import_id, line);

CREATE TABLE IF NOT EXISTS {database}.costs ON CLUSTER '{cluster}'
AS {database}.costs_local
ENGINE = Distributed('{cluster}', '{database}', 'costs_local', cityHash64(campaign_id));

CREATE TABLE IF NOT EXISTS {database}.clicks_hourly_local ON CLUSTER '{cluster}'
(
    hour DateTime,
    campaign_id String,
    offer_id String,
    source String,
    cost_currency String,
    is_test UInt8,
    click_ids AggregateFunction(uniqExact, String),
    click_costs AggregateFunction(groupUniqArray, Tuple(UInt64, Int64))
)
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/clicks_hourly_local', '{replica}')
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, campaign_id, offer_id, source, cost_currency, is_test);

CREATE TABLE IF NOT EXISTS {database}.clicks_hourly ON CLUSTER '{cluster}'
AS {database}.clicks_hourly_local
ENGINE = Distributed('{cluster}', '{database}', 'clicks_hourly_local', cityHash64(hour));

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.clicks_hourly_mv ON CLUSTER '{cluster}'
TO {database}.clicks_hourly_local
AS SELECT
    toStartOfHour(click_time) AS hour,
    campaign_id,
    offer_id,
    source,
    cost_currency,
    is_test,
    uniqExactState(click_id) AS click_ids,
    groupUniqArrayState(tuple(sipHash64(click_id), toInt64(toDecimal128(cost, 6) * 1000000))) AS click_costs
FROM {database}.clicks_local
GROUP BY hour, campaign_id, offer_id, source, cost_currency, is_test;

INSERT INTO {database}.clicks_hourly
SELECT
    toStartOfHour(click_time) AS hour,
    campaign_id,
    offer_id,
    source,
    cost_currency,
    is_test,
    uniqExactState(click_id) AS click_ids,
    groupUniqArrayState(tuple(sipHash64(click_id), toInt64(toDecimal128(cost, 6) * 1000000))) AS click_costs
FROM {database}.clicks
GROUP BY hour, campaign_id, offer_id, source, cost_currency, is_test;

CREATE TABLE IF NOT EXISTS {database}.conversions_figures_hourly_local ON CLUSTER '{cluster}'
(
    hour DateTime,
    campaign_id String,
    offer_id String,
    source String,
    currency String,
    is_test UInt8,
    conversion_versions AggregateFunction(groupUniqArray, Tuple(String, UInt64, String, Decimal(18, 6)))
)
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/conversions_figures_hourly_local', '{replica}')
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, campaign_id, offer_id, source, currency, is_test);

CREATE TABLE IF NOT EXISTS {database}.conversions_figures_hourly ON CLUSTER '{cluster}'
AS {database}.conversions_figures_hourly_local
ENGINE = Distributed('{cluster}', '{database}', 'conversions_figures_hourly_local', cityHash64(hour));

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.conversions_figures_hourly_mv ON CLUSTER '{cluster}'
TO {database}.conversions_figures_hourly_local
AS SELECT
    toStartOfHour(conversion_time) AS hour,
    campaign_id,
    offer_id,
    source,
    currency,
    is_test,
    groupUniqArrayState(tuple(conversion_id, version, status, payout)) AS conversion_versions
FROM {database}.conversions_local
GROUP BY hour, campaign_id, offer_id, source, currency, is_test;

INSERT INTO {database}.conversions_figures_hourly
SELECT
    toStartOfHour(conversion_time) AS hour,
    campaign_id,
    offer_id,
    source,
    currency,
    is_test,
    groupUniqArrayState(tuple(conversion_id, version, status, payout)) AS conversion_versions
FROM {database}.conversions
GROUP BY hour, campaign_id, offer_id, source, currency, is_test;

CREATE VIEW IF NOT EXISTS {database}.account ON CLUSTER '{cluster}'
AS SELECT
    if(count() = 0, 'USD', argMax(currency, updated_ms)) AS currency,
    if(count() = 0, 7, toUInt64(argMax(max_rate_age_days, updated_ms))) AS max_rate_age_days
FROM {database}.account_settings;

CREATE VIEW IF NOT EXISTS {database}.exchange_rates_daily ON CLUSTER '{cluster}'
AS SELECT
    day,
    currency,
    argMax(published_per_eur, published_day) AS per_eur,
    max(published_day) AS rate_day
FROM
(
    SELECT
        published_day + age AS day,
        currency,
        published_per_eur,
        published_day
    FROM
    (
        SELECT day AS published_day, currency, toFloat64(per_eur) AS published_per_eur
        FROM {database}.exchange_rates FINAL
    )
    ARRAY JOIN range(assumeNotNull((SELECT max_rate_age_days FROM {database}.account)) + 1) AS age
)
GROUP BY day, currency;

CREATE VIEW IF NOT EXISTS {database}.currency_factors ON CLUSTER '{cluster}'
AS SELECT
    day,
    currency,
    account_per_eur / per_eur AS factor,
    rate_day
FROM
(
    SELECT day, currency, per_eur, rate_day
    FROM {database}.exchange_rates_daily
) AS rates
ALL INNER JOIN
(
    SELECT day, per_eur AS account_per_eur
    FROM {database}.exchange_rates_daily
    WHERE currency = (SELECT currency FROM {database}.account)
) AS account_rates USING day;

CREATE VIEW IF NOT EXISTS {database}.conversions_valued ON CLUSTER '{cluster}'
AS SELECT
    conversion_id, click_id, click_time, conversion_time, conversion_time_ms, postback_id,
    campaign_id, offer_id, source, route, event, status, payout, currency, payout_raw,
    payout_issue, txid, offer_mismatch, click_id_repaired, repair_hint, is_test, version,
    latency_ms,
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
        latency_ms,
        toDate(conversion_time) AS day,
        assumeNotNull((SELECT currency FROM {database}.account)) AS account_currency
    FROM {database}.conversions FINAL
) AS latest
ANY LEFT JOIN
(
    SELECT day, currency, factor, rate_day FROM {database}.currency_factors
) AS factors USING (day, currency);

CREATE VIEW IF NOT EXISTS {database}.costs_current ON CLUSTER '{cluster}'
AS SELECT
    period_start, period_hours, campaign_id, offer_id, source,
    sub1, sub2, sub3, sub4, sub5, sub6, sub7, sub8, sub9, sub10,
    amount, currency, file, line, import_id, imported_ms
FROM
(
    SELECT
        period_start, period_hours, campaign_id, offer_id, source,
        sub1, sub2, sub3, sub4, sub5, sub6, sub7, sub8, sub9, sub10,
        amount, currency, file, line, import_id, imported_ms
    FROM {database}.costs FINAL
) AS lines
ALL INNER JOIN
(
    SELECT campaign_id, period_start, period_hours, max(imported_ms) AS imported_ms
    FROM {database}.costs FINAL
    GROUP BY campaign_id, period_start, period_hours
) AS latest_imports USING (campaign_id, period_start, period_hours, imported_ms);

CREATE VIEW IF NOT EXISTS {database}.figures_hourly ON CLUSTER '{cluster}'
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
        toDecimal64(round(amount * valued, 6), 6) AS part_revenue_or_cost,
        if(is_revenue, part_revenue_or_cost, toDecimal64(0, 6)) AS part_revenue,
        if(is_revenue, toDecimal64(0, 6), part_revenue_or_cost) AS part_cost,
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
