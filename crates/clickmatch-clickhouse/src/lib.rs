//! ClickHouse adapter for clickmatch: settings, migrations, row types, and the batch writer with
//! its retry classification. The local ClickHouse that `clickmatch dev` and the tests run is not
//! here but in the `clickmatch-testbed` crate.
//!
//! Everything here runs on the ClickHouse 18.16 that Debian ships and on current releases:
//! no `DateTime64`, `TTL` or `LowCardinality` in the schema, and the `clickhouse` crate's
//! schema validation is a setting ([`ClickHouseSettings::validation`]) that must be off on 18.16.
//! Current releases type scalar subqueries `Nullable` (wrap them in `assumeNotNull` where a
//! plain value is read) and collapse the versions a `ReplacingMergeTree` insert holds.
//!
//! This crate's tests against a real server live in `crates/clickmatch-testbed/tests/`
//! (`clickhouse*.rs`). `scripts/test` runs them and the end-to-end tests on both versions: on
//! Debian's 18.16, then on ClickHouse 26.9 (the `clickhouse-local` of PyPI's chdb-core, pinned
//! in `crates/clickmatch-testbed/src/local_server/chdb-requirements.txt`). By hand:
//!
//! ```sh
//! target/debug/clickmatch local-clickhouse --engine chdb --dir /tmp/ch26 --http-port 28123 --tcp-port 29000 &
//! CLICKMATCH_TEST_CLICKHOUSE_URL=http://127.0.0.1:28123 CLICKMATCH_TEST_CLICKHOUSE_ENGINE=chdb \
//!     cargo nextest run -p clickmatch-testbed
//! ```
//!
//! (`--engine server`, the default, for 18.16.) Without `CLICKMATCH_TEST_CLICKHOUSE_URL` the
//! tests start a server of the engine of `CLICKMATCH_TEST_CLICKHOUSE_ENGINE` themselves.

pub mod carry;
pub mod cluster;
pub mod debugger;
pub mod error;
pub mod migrate;
pub mod migrations;
pub mod money;
pub mod outbound;
pub mod outcomes;
mod read;
pub mod reconcile;
pub mod recovery;
pub mod report;
pub mod rollups;
pub mod rows;
pub mod schema;
pub mod settings;
pub mod sink;
mod statement;

pub use cluster::{ClusterLayout, Layout};
pub use debugger::{ClickStory, DebugReader, OutcomeCount, PostbackEntry};
pub use error::ClickHouseError;
pub use migrate::{migrate, migrate_with, MigrationReport};
pub use migrations::{Migration, MIGRATIONS};
pub use outbound::{ClickSubs, DeliveryState, OutboundRow, OutboundStore, Recorded};
pub use recovery::{ConversionState, CurrentUnattributed, RecoveryReader, ReprocessFilter};
pub use rollups::RollupCheck;
pub use rows::{
    ClickRow, ClickRowRef, ConversionRow, ConversionRowRef, RecoveredRow, UnattributedRow,
    UnattributedRowRef,
};
pub use schema::check_schema;
pub use settings::{validate_cluster_name, validate_identifier, ClickHouseSettings};
pub use sink::{ClickHouseSink, WriteStats};
