//! The demo's databases: a City and an ASN `.mmdb` in GeoLite2's layouts, mapping the
//! documentation ranges (RFC 5737, RFC 3849; never routed on the internet) to a few countries,
//! with documentation AS numbers (RFC 5398). `clickmatch dev` writes them into its data folder
//! and sends its demo clicks from these addresses; tests use them too. Written with
//! `mmdb-writer`, so they are real MaxMind DB files that any reader opens.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use ipnet::IpNet;
use mmdb_writer::{Value, Writer};

/// One demo network and what the demo databases say about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoNetwork {
    pub network: &'static str,
    pub country: &'static str,
    pub country_name: &'static str,
    pub region: &'static str,
    pub city: &'static str,
    pub asn: u32,
    pub isp: &'static str,
}

/// The demo networks: five countries over IPv4, and Germany over IPv6 as well.
pub const DEMO_NETWORKS: &[DemoNetwork] = &[
    DemoNetwork {
        network: "192.0.2.0/25",
        country: "DE",
        country_name: "Germany",
        region: "Berlin",
        city: "Berlin",
        asn: 64_496,
        isp: "Demo Telekom",
    },
    DemoNetwork {
        network: "192.0.2.128/25",
        country: "US",
        country_name: "United States",
        region: "California",
        city: "San Francisco",
        asn: 64_497,
        isp: "Demo Cable",
    },
    DemoNetwork {
        network: "198.51.100.0/25",
        country: "FR",
        country_name: "France",
        region: "Île-de-France",
        city: "Paris",
        asn: 64_498,
        isp: "Démo Fibre",
    },
    DemoNetwork {
        network: "198.51.100.128/25",
        country: "IN",
        country_name: "India",
        region: "Maharashtra",
        city: "Mumbai",
        asn: 64_499,
        isp: "Demo Mobile India",
    },
    DemoNetwork {
        network: "203.0.113.0/24",
        country: "BR",
        country_name: "Brazil",
        region: "São Paulo",
        city: "São Paulo",
        asn: 64_500,
        isp: "Demo Telecom Brasil",
    },
    DemoNetwork {
        network: "2001:db8:de::/48",
        country: "DE",
        country_name: "Germany",
        region: "Hamburg",
        city: "Hamburg",
        asn: 64_496,
        isp: "Demo Telekom",
    },
];

/// A fixed build time, so that the same databases are the same bytes.
const BUILD_EPOCH_SECONDS: u64 = 1_764_547_200;

/// Why the demo databases could not be written.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("demo database: {0}")]
    Build(#[from] mmdb_writer::Error),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl DemoNetwork {
    pub fn net(&self) -> IpNet {
        self.network.parse().expect("demo networks are CIDRs")
    }

    /// The `n`-th address of the network, skipping the network's own address; past its
    /// first 250 hosts (or its size) it wraps around.
    pub fn address(&self, n: u32) -> IpAddr {
        let net = self.net();
        let host_bits = u32::from(net.max_prefix_len() - net.prefix_len());
        let hosts = 1u32
            .checked_shl(host_bits)
            .map_or(250, |size| size.saturating_sub(2).clamp(1, 250));
        let offset = 1 + n % hosts;
        match net.network() {
            IpAddr::V4(base) => IpAddr::V4((u32::from(base) + offset).into()),
            IpAddr::V6(base) => IpAddr::V6((u128::from(base) + u128::from(offset)).into()),
        }
    }
}

/// A writer with what every database needs (readers' verification wants a description).
pub(crate) fn writer(database_type: &str) -> Writer {
    Writer::builder(database_type)
        .build_epoch(SystemTime::UNIX_EPOCH + Duration::from_secs(BUILD_EPOCH_SECONDS))
        .description(&[(
            "en",
            "clickmatch demo data: documentation address ranges only",
        )])
        .build()
}

fn names(english: &str) -> Value {
    Value::map([("names", Value::map([("en", Value::from(english))]))])
}

/// A City database in GeoLite2-City's layout.
pub fn city_database() -> Result<Vec<u8>, DemoError> {
    let mut db = writer("GeoLite2-City");
    for demo in DEMO_NETWORKS {
        let mut country = names(demo.country_name);
        if let Value::Map(map) = &mut country {
            map.insert("iso_code".into(), Value::from(demo.country));
        }
        let record = Value::map([
            ("country", country.clone()),
            ("registered_country", country),
            ("subdivisions", Value::Array(vec![names(demo.region)])),
            ("city", names(demo.city)),
        ]);
        db.insert_value(demo.net(), record)?;
    }
    Ok(db.to_bytes()?)
}

/// An ASN database in GeoLite2-ASN's layout.
pub fn asn_database() -> Result<Vec<u8>, DemoError> {
    let mut db = writer("GeoLite2-ASN");
    for demo in DEMO_NETWORKS {
        let record = Value::map([
            ("autonomous_system_number", Value::from(demo.asn)),
            ("autonomous_system_organization", Value::from(demo.isp)),
        ]);
        db.insert_value(demo.net(), record)?;
    }
    Ok(db.to_bytes()?)
}

/// Where [`write_databases`] put the files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoDatabases {
    pub geoip_db: PathBuf,
    pub asn_db: PathBuf,
}

/// Writes `demo-city.mmdb` and `demo-asn.mmdb` into `dir` (created if missing).
pub fn write_databases(dir: &Path) -> Result<DemoDatabases, DemoError> {
    let write = |name: &str, bytes: Vec<u8>| {
        let path = dir.join(name);
        std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&path, bytes))
            .map_err(|source| DemoError::Write {
                path: path.clone(),
                source,
            })?;
        Ok::<_, DemoError>(path)
    };
    Ok(DemoDatabases {
        geoip_db: write("demo-city.mmdb", city_database()?)?,
        asn_db: write("demo-asn.mmdb", asn_database()?)?,
    })
}
