//! Errors of the testbed's servers.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestbedError {
    /// Starting or stopping a local ClickHouse ([`crate::local_server`]).
    #[error("local ClickHouse in {dir}: {message}")]
    LocalServer { dir: PathBuf, message: String },

    /// The local broker ([`crate::broker`]).
    #[error("local broker: {0}")]
    Broker(String),

    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// An I/O error without a file to name (sockets, threads, signals).
    #[error("io: {0}")]
    Os(#[from] std::io::Error),
}
