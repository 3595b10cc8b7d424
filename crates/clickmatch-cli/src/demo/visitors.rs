//! Who the demo's clicks come from: addresses of the demo databases' networks (five countries),
//! forwarded by a proxy in `X-Forwarded-For` as a load balancer would, and real browsers' user
//! agents on desktops, phones and tablets. `dev` trusts the loopback proxy and loads the demo
//! databases ([`enrichment_for_dev`]), so its clicks land with country, region, city, ASN and
//! device.

use std::net::IpAddr;
use std::path::Path;

use anyhow::Context;
use clickmatch_config::Config;
use clickmatch_enrich::demo::{self as databases, DemoDatabases, DEMO_NETWORKS};

/// Real user agents, one or two per device class the demo shows.
pub const DEMO_USER_AGENTS: &[&str] = &[
    // desktop: Chrome on Windows, Safari on macOS
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    // mobile: Safari on iPhone, Chrome on Android
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
    // tablet: iPad, Samsung Galaxy Tab
    "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 13; SM-X706B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
];

/// One demo visitor: the address the proxy forwards and the browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Visitor {
    pub ip: IpAddr,
    pub user_agent: &'static str,
}

/// The `n`-th demo visitor: countries and browsers in turn, so that every country sees more
/// than one kind of device.
pub fn visitor(n: usize) -> Visitor {
    let network = &DEMO_NETWORKS[n % DEMO_NETWORKS.len()];
    Visitor {
        ip: network.address(u32::try_from(n).unwrap_or(0)),
        // Shifted by one each round of networks, so that each country sees each browser.
        user_agent: DEMO_USER_AGENTS[(n + n / DEMO_NETWORKS.len()) % DEMO_USER_AGENTS.len()],
    }
}

/// For `dev` when `[enrichment]` names no database: writes the demo databases into
/// `data_dir/enrichment/`, uses them, and trusts `X-Forwarded-For` from loopback (where the
/// demo's requests come from). Returns the files, `None` when the configuration has its own.
pub fn enrichment_for_dev(
    config: &mut Config,
    data_dir: &Path,
) -> anyhow::Result<Option<DemoDatabases>> {
    let enrichment = &mut config.enrichment;
    if enrichment.geoip_db.is_some() || enrichment.asn_db.is_some() {
        return Ok(None);
    }
    let files = databases::write_databases(&data_dir.join("enrichment"))
        .context("demo enrichment databases")?;
    enrichment.geoip_db = Some(files.geoip_db.clone());
    enrichment.asn_db = Some(files.asn_db.clone());
    for loopback in ["127.0.0.1/32", "::1/128"] {
        let net = loopback.parse().expect("a CIDR");
        if !config.ingest.trusted_proxies.contains(&net) {
            config.ingest.trusted_proxies.push(net);
        }
    }
    Ok(Some(files))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use clickmatch_enrich::agent::classify;

    use super::*;

    #[test]
    fn the_demo_visitors_cover_every_country_and_device_class() {
        let visitors: Vec<Visitor> = (0..30).map(visitor).collect();
        let networks: BTreeSet<&str> = visitors
            .iter()
            .map(|v| {
                DEMO_NETWORKS
                    .iter()
                    .find(|n| n.net().contains(&v.ip))
                    .expect("a demo network")
                    .country
            })
            .collect();
        assert_eq!(networks, BTreeSet::from(["BR", "DE", "FR", "IN", "US"]));
        let devices: BTreeSet<String> = visitors
            .iter()
            .map(|v| classify(v.user_agent).device_type.to_string())
            .collect();
        assert_eq!(
            devices,
            BTreeSet::from(["desktop", "mobile", "tablet"].map(String::from))
        );
    }

    #[test]
    fn dev_uses_the_demo_databases_only_when_none_is_configured() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::demo(&Default::default()).unwrap();
        let files = enrichment_for_dev(&mut config, dir.path())
            .unwrap()
            .unwrap();
        assert!(files.geoip_db.exists() && files.asn_db.exists());
        assert_eq!(config.enrichment.geoip_db.as_ref(), Some(&files.geoip_db));
        assert!(config
            .ingest
            .trusted_proxies
            .contains(&"127.0.0.1/32".parse().unwrap()));
        // Twice: nothing added twice, the configured files kept.
        let proxies = config.ingest.trusted_proxies.clone();
        assert!(enrichment_for_dev(&mut config, dir.path())
            .unwrap()
            .is_none());
        assert_eq!(config.ingest.trusted_proxies, proxies);
    }
}
