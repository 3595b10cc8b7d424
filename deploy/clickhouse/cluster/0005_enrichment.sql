-- GENERATED: the cluster variant of `crates/clickmatch-clickhouse/migrations/0005_enrichment.sql`.
-- Do not edit: `clickmatch migrate` renders it from the single-server migrations when
-- `[clickhouse] cluster` is set (crates/clickmatch-clickhouse/src/cluster.rs). Regenerate
-- with `CLICKMATCH_BLESS=1 cargo test -p clickmatch-clickhouse --lib cluster`.
-- By hand: replace {database} and {cluster}, keep {shard} and {replica} (macros).

ALTER TABLE {database}.clicks_local ON CLUSTER '{cluster}' ADD COLUMN IF NOT EXISTS region String;

DROP TABLE IF EXISTS {database}.clicks ON CLUSTER '{cluster}';

CREATE TABLE IF NOT EXISTS {database}.clicks ON CLUSTER '{cluster}'
AS {database}.clicks_local
ENGINE = Distributed('{cluster}', '{database}', 'clicks_local', cityHash64(click_id));

ALTER TABLE {database}.clicks_local ON CLUSTER '{cluster}' ADD COLUMN IF NOT EXISTS city String;

DROP TABLE IF EXISTS {database}.clicks ON CLUSTER '{cluster}';

CREATE TABLE IF NOT EXISTS {database}.clicks ON CLUSTER '{cluster}'
AS {database}.clicks_local
ENGINE = Distributed('{cluster}', '{database}', 'clicks_local', cityHash64(click_id));

ALTER TABLE {database}.clicks_local ON CLUSTER '{cluster}' ADD COLUMN IF NOT EXISTS asn UInt32;

DROP TABLE IF EXISTS {database}.clicks ON CLUSTER '{cluster}';

CREATE TABLE IF NOT EXISTS {database}.clicks ON CLUSTER '{cluster}'
AS {database}.clicks_local
ENGINE = Distributed('{cluster}', '{database}', 'clicks_local', cityHash64(click_id));

ALTER TABLE {database}.clicks_local ON CLUSTER '{cluster}' ADD COLUMN IF NOT EXISTS isp String;

DROP TABLE IF EXISTS {database}.clicks ON CLUSTER '{cluster}';

CREATE TABLE IF NOT EXISTS {database}.clicks ON CLUSTER '{cluster}'
AS {database}.clicks_local
ENGINE = Distributed('{cluster}', '{database}', 'clicks_local', cityHash64(click_id));

ALTER TABLE {database}.clicks_local ON CLUSTER '{cluster}' ADD COLUMN IF NOT EXISTS device_type String;

DROP TABLE IF EXISTS {database}.clicks ON CLUSTER '{cluster}';

CREATE TABLE IF NOT EXISTS {database}.clicks ON CLUSTER '{cluster}'
AS {database}.clicks_local
ENGINE = Distributed('{cluster}', '{database}', 'clicks_local', cityHash64(click_id));

ALTER TABLE {database}.clicks_local ON CLUSTER '{cluster}' ADD COLUMN IF NOT EXISTS os String;

DROP TABLE IF EXISTS {database}.clicks ON CLUSTER '{cluster}';

CREATE TABLE IF NOT EXISTS {database}.clicks ON CLUSTER '{cluster}'
AS {database}.clicks_local
ENGINE = Distributed('{cluster}', '{database}', 'clicks_local', cityHash64(click_id));

ALTER TABLE {database}.clicks_local ON CLUSTER '{cluster}' ADD COLUMN IF NOT EXISTS browser String;

DROP TABLE IF EXISTS {database}.clicks ON CLUSTER '{cluster}';

CREATE TABLE IF NOT EXISTS {database}.clicks ON CLUSTER '{cluster}'
AS {database}.clicks_local
ENGINE = Distributed('{cluster}', '{database}', 'clicks_local', cityHash64(click_id));

ALTER TABLE {database}.clicks_local ON CLUSTER '{cluster}' ADD COLUMN IF NOT EXISTS is_bot UInt8;

DROP TABLE IF EXISTS {database}.clicks ON CLUSTER '{cluster}';

CREATE TABLE IF NOT EXISTS {database}.clicks ON CLUSTER '{cluster}'
AS {database}.clicks_local
ENGINE = Distributed('{cluster}', '{database}', 'clicks_local', cityHash64(click_id));

ALTER TABLE {database}.conversions_local ON CLUSTER '{cluster}' ADD COLUMN IF NOT EXISTS country String;

DROP TABLE IF EXISTS {database}.conversions ON CLUSTER '{cluster}';

CREATE TABLE IF NOT EXISTS {database}.conversions ON CLUSTER '{cluster}'
AS {database}.conversions_local
ENGINE = Distributed('{cluster}', '{database}', 'conversions_local', cityHash64(conversion_id));

ALTER TABLE {database}.conversions_local ON CLUSTER '{cluster}' ADD COLUMN IF NOT EXISTS device_type String;

DROP TABLE IF EXISTS {database}.conversions ON CLUSTER '{cluster}';

CREATE TABLE IF NOT EXISTS {database}.conversions ON CLUSTER '{cluster}'
AS {database}.conversions_local
ENGINE = Distributed('{cluster}', '{database}', 'conversions_local', cityHash64(conversion_id));
