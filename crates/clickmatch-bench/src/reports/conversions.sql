-- Benchmark conversions: {conversions} of the clicks (one in every {clicks}/{conversions}, picked
-- by hash), up to two hours after the click; 70 % approved, 10 % each pending, hold, declined;
-- payouts 1 to 50, a fifth in EUR; routes global and affise; events sale and lead. Each carries
-- its click's campaign, offer, source, country, device type, OS and browser, and sub1 and sub2
-- as a joiner with `conversion_subs = ["sub1", "sub2"]` writes them. `{subs_carried}` is 3, or 0
-- for conversions written by a joiner that carried no sub (reports then join them to their
-- clicks).
INSERT INTO conversions (conversion_id, click_id, click_time, conversion_time, conversion_time_ms, postback_id, campaign_id, offer_id, route, event, status, payout, currency, txid, offer_mismatch, click_id_repaired, repair_hint, is_test, version, latency_ms, payout_raw, payout_issue, source, country, device_type, os, browser, subs_carried, sub1, sub2)
SELECT
    hex(cityHash64(m, 9)) AS conversion_id,
    {click_id} AS click_id,
    toDateTime(1764547200 + intDiv(n * 2592000, {clicks})) AS click_time,
    toDateTime(toUInt32(click_time) + cityHash64(m, 10) % 7200) AS conversion_time,
    toUInt64(conversion_time) * 1000 AS conversion_time_ms,
    hex(cityHash64(m, 11)) AS postback_id,
    concat('camp-', toString(cityHash64(n, 1) % 50)) AS campaign_id,
    concat('offer-', toString(cityHash64(n, 1) % 50 % 20)) AS offer_id,
    if(cityHash64(m, 12) % 4 = 0, 'affise', 'global') AS route,
    if(cityHash64(m, 13) % 3 = 0, 'lead', 'sale') AS event,
    arrayElement(['approved','approved','approved','approved','approved','approved','approved','pending','hold','declined'], 1 + cityHash64(m, 14) % 10) AS status,
    toDecimal64(1 + (cityHash64(m, 15) % 4900) / 100, 6) AS payout,
    if(cityHash64(m, 16) % 5 = 0, 'EUR', 'USD') AS currency,
    '' AS txid, toUInt8(0), toUInt8(0), '', toUInt8(0),
    conversion_time_ms AS version, toUInt32(100), toString(payout) AS payout_raw, '' AS payout_issue,
    concat('src-', toString(cityHash64(n, 1) % 50 % 8)) AS source,
    arrayElement(['US','DE','GB','FR','IN','BR','ES','IT','NL','PL','CA','AU','MX','JP','KR','TR','ID','PH','VN','TH','SE','NO','DK','FI','AT','CH','BE','PT','CZ','RO'], 1 + toUInt32(floor(pow((cityHash64(n, 3) % 1000) / 1000, 2) * 30))) AS country,
    arrayElement(['mobile','mobile','mobile','desktop','desktop','tablet'], 1 + cityHash64(n, 5) % 6) AS device_type,
    arrayElement(['Android','iOS','Windows','macOS','Linux'], 1 + cityHash64(n, 6) % 5) AS os,
    arrayElement(['Chrome','Safari','Firefox','Edge','Samsung Internet'], 1 + cityHash64(n, 7) % 5) AS browser,
    toUInt16({subs_carried}) AS subs_carried,
    if(subs_carried = 0, '', concat('zone-', toString(cityHash64(n, 1) % 50 * 100 + cityHash64(n, 2) % 100))) AS sub1,
    if(subs_carried = 0, '', concat('creative-', toString(cityHash64(n, 4) % 100))) AS sub2
FROM (SELECT m, m * intDiv({clicks}, {conversions}) + cityHash64(m, 8) % intDiv({clicks}, {conversions}) AS n FROM (SELECT number AS m FROM system.numbers LIMIT {conversions}))
