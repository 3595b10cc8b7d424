//! clickmatch's benchmark harness: realistic traffic ([`traffic`]), load generators
//! ([`httpload`], wrk), reference measurements in the same run (nginx, a bare rdkafka
//! consumer, clickhouse-client) and the table ([`report`]). `scripts/bench` runs it all;
//! BENCHMARKS.md explains the figures.

pub mod httpload;
pub mod kafka;
pub mod procs;
pub mod report;
pub mod reports;
pub mod run;
pub mod sink;
pub mod state;
pub mod traffic;
pub mod wrk;

/// Unix time in milliseconds.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}
