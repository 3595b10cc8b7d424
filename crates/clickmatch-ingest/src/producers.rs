//! Ingest's two producers. Postbacks, registered clicks and spool replays are answered only
//! after the broker's acknowledgement, so their producer does not linger; nobody waits for a
//! visitor's click, so the click producer lingers and fills bigger batches. With many
//! partitions that matters: librdkafka sends one produce request per partition, and each
//! partition's first record after its linger wakes the broker thread, so every linger period
//! costs one wake-up, one request and one response per partition (strace and measurements in
//! BENCHMARKS.md).

use std::collections::BTreeMap;

use clickmatch_kafka::{KafkaAdapterError, Publisher};

use crate::metrics::IngestMetrics;
use crate::undelivered::{ClickDeliveries, UndeliveredClicks};

/// `linger.ms` of the acknowledged producer: a postback's answer waits for it. None: a record
/// leaves at once, and under load the records that arrive while earlier requests are in flight
/// (at most five per connection, for the idempotent producer) go together in the next one.
/// 0 vs 1 ms: 38.9k vs 35.2k postbacks/s over 64 connections (BENCHMARKS.md).
const ACKED_LINGER_MS: &str = "0";
/// `linger.ms` of the click producer: only the click's delivery waits for it. With 32
/// partitions, 10 ms meant 3,200 produce requests and broker-thread wake-ups a second whatever
/// the traffic; 50 ms is 640, and a click still reaches the broker long before any postback.
const CLICK_LINGER_MS: &str = "50";

/// The producers of one ingest process.
pub struct Publishers {
    /// Records someone waits for (`publish`, `enqueue`).
    pub acked: Publisher,
    /// Visitors' clicks (`send_and_forget`), their outcomes reported to [`ClickDeliveries`].
    pub clicks: Publisher,
    /// The clicks the click producer gave up on, for [`crate::spool_undelivered`].
    pub undelivered: UndeliveredClicks,
}

impl Publishers {
    /// Both producers; `properties` from the configuration win over the lingers above.
    pub fn new(
        bootstrap_servers: &str,
        properties: &BTreeMap<String, String>,
        metrics: &IngestMetrics,
    ) -> Result<Publishers, KafkaAdapterError> {
        let acked = Publisher::new(
            bootstrap_servers,
            &with_default_linger(properties, ACKED_LINGER_MS),
        )?;
        let (deliveries, undelivered) = ClickDeliveries::new(metrics);
        let clicks = Publisher::with_forgotten_deliveries(
            bootstrap_servers,
            &with_default_linger(properties, CLICK_LINGER_MS),
            deliveries,
        )?;
        Ok(Publishers {
            acked,
            clicks,
            undelivered,
        })
    }
}

/// `properties` with `linger.ms` unless they set it (or its alias `queue.buffering.max.ms`).
fn with_default_linger(
    properties: &BTreeMap<String, String>,
    linger_ms: &str,
) -> BTreeMap<String, String> {
    let mut properties = properties.clone();
    if !properties.contains_key("queue.buffering.max.ms") {
        properties
            .entry("linger.ms".to_string())
            .or_insert_with(|| linger_ms.to_string());
    }
    properties
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configured_linger_wins() {
        let none = BTreeMap::new();
        assert_eq!(with_default_linger(&none, "10")["linger.ms"], "10");
        let set = BTreeMap::from([("linger.ms".to_string(), "3".to_string())]);
        assert_eq!(with_default_linger(&set, "10")["linger.ms"], "3");
        let alias = BTreeMap::from([("queue.buffering.max.ms".to_string(), "3".to_string())]);
        assert!(!with_default_linger(&alias, "10").contains_key("linger.ms"));
    }
}
