-- EUR rates for the benchmark days: 1.08 USD per EUR.
INSERT INTO exchange_rates (day, currency, per_eur, source, imported_ms)
SELECT toDate('2025-11-20') + number AS day, c AS currency, toDecimal64(if(c = 'EUR', 1, 1.08), 6), 'bench', toUInt64(1)
FROM system.numbers ARRAY JOIN ['EUR', 'USD'] AS c LIMIT 100
