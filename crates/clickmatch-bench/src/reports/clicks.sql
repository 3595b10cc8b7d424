-- Benchmark clicks, generated inside ClickHouse: {clicks} clicks spread evenly over 30 days from
-- 2025-12-01 UTC; 50 campaigns (each with its offer of 20 and source of 8), 100 sub1 zones per
-- campaign (5,000 in all), 100 sub2 creatives, 30 countries skewed towards the first, device,
-- OS and browser; a CPC of 0.05 USD. Deterministic (hashes of the row number). Click IDs are
-- shaped as ingest mints them (time first, then random; the tag is not a real one).
INSERT INTO clicks (click_id, click_time, click_time_ms, campaign_id, offer_id, source, sub1, sub2, sub3, ip, user_agent, country, is_test, is_foreign, cost, cost_currency, device_type, os, browser)
SELECT
    {click_id} AS click_id,
    toDateTime(1764547200 + intDiv(n * 2592000, {clicks})) AS click_time,
    {click_time_ms} AS click_time_ms,
    concat('camp-', toString(cityHash64(n, 1) % 50)) AS campaign_id,
    concat('offer-', toString(cityHash64(n, 1) % 50 % 20)) AS offer_id,
    concat('src-', toString(cityHash64(n, 1) % 50 % 8)) AS source,
    concat('zone-', toString(cityHash64(n, 1) % 50 * 100 + cityHash64(n, 2) % 100)) AS sub1,
    concat('creative-', toString(cityHash64(n, 4) % 100)) AS sub2,
    '' AS sub3,
    '' AS ip, '' AS user_agent,
    arrayElement(['US','DE','GB','FR','IN','BR','ES','IT','NL','PL','CA','AU','MX','JP','KR','TR','ID','PH','VN','TH','SE','NO','DK','FI','AT','CH','BE','PT','CZ','RO'], 1 + toUInt32(floor(pow((cityHash64(n, 3) % 1000) / 1000, 2) * 30))) AS country,
    toUInt8(0) AS is_test, toUInt8(0) AS is_foreign,
    toDecimal64(0.05, 6) AS cost, 'USD' AS cost_currency,
    arrayElement(['mobile','mobile','mobile','desktop','desktop','tablet'], 1 + cityHash64(n, 5) % 6) AS device_type,
    arrayElement(['Android','iOS','Windows','macOS','Linux'], 1 + cityHash64(n, 6) % 5) AS os,
    arrayElement(['Chrome','Safari','Firefox','Edge','Samsung Internet'], 1 + cityHash64(n, 7) % 5) AS browser
FROM (SELECT number AS n FROM system.numbers LIMIT {clicks})
