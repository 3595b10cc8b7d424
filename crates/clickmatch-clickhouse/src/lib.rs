//! ClickHouse adapter for clickmatch: settings, migrations, row types, the batch writer with its
//! retry classification, and a local `clickhouse-server` for `dev` and tests.
//!
//! Everything here runs on the ClickHouse 18.16 that Debian ships and on current releases:
//! no `DateTime64`, `TTL` or `LowCardinality` in the schema, and the `clickhouse` crate's
//! schema validation is a setting ([`ClickHouseSettings::validation`]) that must be off on 18.16.

pub mod cluster;
pub mod debugger;
pub mod error;
pub mod local_server;
pub mod migrate;
pub mod migrations;
pub mod money;
pub mod outbound;
pub mod outcomes;
pub mod rollups;
pub mod rows;
pub mod schema;
pub mod settings;
pub mod sink;

pub use cluster::{ClusterLayout, Layout};
pub use debugger::{ClickStory, DebugReader, OutcomeCount, PostbackEntry};
pub use error::ClickHouseError;
pub use local_server::{ping, LocalServer};
pub use migrate::{migrate, migrate_with, MigrationReport};
pub use migrations::{Migration, MIGRATIONS};
pub use outbound::{ClickSubs, DeliveryState, OutboundRow, OutboundStore, Recorded};
pub use rollups::RollupCheck;
pub use rows::{
    ClickRow, ClickRowRef, ConversionRow, ConversionRowRef, UnattributedRow, UnattributedRowRef,
};
pub use schema::check_schema;
pub use settings::{validate_cluster_name, validate_identifier, ClickHouseSettings};
pub use sink::{ClickHouseSink, WriteStats};
