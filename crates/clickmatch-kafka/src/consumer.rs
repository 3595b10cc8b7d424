//! Consumer configuration for the joiner group.

use std::collections::BTreeMap;

use rdkafka::config::ClientConfig;

/// Group consumer settings: range assignor (partition N of both topics on one member), manual
/// commits after the ClickHouse ack.
pub fn consumer_config(
    bootstrap_servers: &str,
    group_id: &str,
    extra: &BTreeMap<String, String>,
) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap_servers)
        .set("group.id", group_id)
        .set("partition.assignment.strategy", "range")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        // Statistics carry the high watermarks the joiner uses for lag and "caught up".
        .set("statistics.interval.ms", "250")
        // Bounded fetch waits keep attribution latency low on brokers that hold fetches for
        // the full wait (the mock cluster does).
        .set("fetch.wait.max.ms", "50");
    for (key, value) in extra {
        config.set(key, value);
    }
    config
}
