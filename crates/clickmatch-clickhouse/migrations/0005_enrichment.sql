-- Enrichment: where a click came from and on what, for reports grouped by country and device.
-- Ingest fills these from the user's `.mmdb` files (`[enrichment] geoip_db`, `asn_db`) and the
-- user agent; without a database they stay empty (and `asn` 0). docs/reports.md explains them.
--
-- `ADD COLUMN IF NOT EXISTS` is written for the reader: 18.16 lacks the clause, so `migrate`
-- checks `system.columns` and runs the statement without it only where the column is missing.

-- Geo (`country`, ISO 3166 alpha-2, is on `clicks` since 0001), network, and device.
ALTER TABLE {database}.clicks ADD COLUMN IF NOT EXISTS region String;
ALTER TABLE {database}.clicks ADD COLUMN IF NOT EXISTS city String;
ALTER TABLE {database}.clicks ADD COLUMN IF NOT EXISTS asn UInt32;
ALTER TABLE {database}.clicks ADD COLUMN IF NOT EXISTS isp String;
-- desktop, mobile, tablet, tv, bot, other ('' when there was no user agent).
ALTER TABLE {database}.clicks ADD COLUMN IF NOT EXISTS device_type String;
ALTER TABLE {database}.clicks ADD COLUMN IF NOT EXISTS os String;
ALTER TABLE {database}.clicks ADD COLUMN IF NOT EXISTS browser String;
-- A known bot: flagged, never blocked.
ALTER TABLE {database}.clicks ADD COLUMN IF NOT EXISTS is_bot UInt8;

-- The click's country and device type on each of its conversions, so that reports group
-- conversions without a join.
ALTER TABLE {database}.conversions ADD COLUMN IF NOT EXISTS country String;
ALTER TABLE {database}.conversions ADD COLUMN IF NOT EXISTS device_type String;
