//! Dev and test infrastructure for clickmatch, kept out of the production adapter crates
//! (`clickmatch-clickhouse`, `clickmatch-kafka`), which never depend on it:
//!
//! - [`local_server`]: a ClickHouse of our own in a folder of its own, Debian's 18.16
//!   `clickhouse-server` or ClickHouse 26.9's `clickhouse-local` from PyPI's chdb-core;
//! - [`broker`]: librdkafka's mock cluster as a Kafka-protocol broker;
//! - [`cluster`]: a replicated, sharded ClickHouse cluster (18.16 servers) with a
//!   [`zookeeper`] of its own, for the end-to-end cluster test.
//!
//! The `clickmatch` binary uses the first two for `dev`, `local-clickhouse` and `broker`; the
//! end-to-end tests and the benchmark harness start them too. This crate's own tests (`tests/`) are the
//! ClickHouse adapter's tests against a real server (`clickhouse*.rs`) and the local server's.

pub mod broker;
pub mod cluster;
pub mod error;
pub mod local_server;
pub mod zookeeper;

pub use broker::LocalBroker;
pub use cluster::LocalCluster;
pub use error::TestbedError;
pub use local_server::{ping, LocalServer};
pub use zookeeper::LocalZooKeeper;
