//! Phase enrich: what enrichment costs a redirect. Two ingests on the same core, one with both
//! databases and user-agent parsing, one with enrichment off, take the same requests (each with
//! an `X-Forwarded-For` from a trusted proxy and a user agent), in pairs taken back to back; the
//! figure is the median of the pairs' ratios of redirects/s.
//!
//! The databases are synthetic, written here with `mmdb-writer` in GeoLite2's layouts: City
//! records as large as GeoLite2's (names in eight languages, location, postal code, a
//! subdivision), spread over many /24 networks, so that lookups walk a deep tree and the record
//! cache holds what real traffic would need.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use ipnet::Ipv4Net;
use mmdb_writer::{Value, Writer};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::Bench;
use crate::procs::Proc;
use crate::report::{one_decimal, EnrichPhase};
use crate::traffic::Traffic;
use crate::wrk;

/// Distinct City records: one per city, shared by many networks as in GeoLite2.
const CITY_RECORDS: u32 = 20_000;
/// Distinct AS records.
const AS_RECORDS: u32 = 5_000;

/// The user agents of the requests: real browsers' strings with many build numbers, so that
/// the class cache holds thousands of entries.
const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.{n}.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.{n} Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E{n} Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.{n}.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E{n} Safari/604.1",
    "Mozilla/5.0 (Linux; Android 13; SM-X706B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.{n}.0 Safari/537.36",
];
const BUILDS_PER_AGENT: usize = 400;

fn names(place: &str, n: u32) -> Value {
    Value::map(
        ["de", "en", "es", "fr", "ja", "pt-BR", "ru", "zh-CN"]
            .iter()
            .map(|lang| (*lang, Value::from(format!("{place} {n} ({lang})")))),
    )
}

/// A GeoLite2-City record of about its real size.
fn city_record(n: u32) -> Value {
    let country = ["DE", "US", "FR", "IN", "BR", "GB", "JP", "PL"][(n % 8) as usize];
    Value::map([
        (
            "city",
            Value::map([("geoname_id", Value::from(n)), ("names", names("City", n))]),
        ),
        (
            "continent",
            Value::map([
                ("code", Value::from("EU")),
                ("geoname_id", Value::from(6_255_148u32)),
                ("names", names("Continent", n % 7)),
            ]),
        ),
        (
            "country",
            Value::map([
                ("geoname_id", Value::from(n % 250)),
                ("iso_code", Value::from(country)),
                ("names", names("Country", n % 250)),
            ]),
        ),
        (
            "location",
            Value::map([
                ("accuracy_radius", Value::from(20u16)),
                ("latitude", Value::from(f64::from(n % 180) - 90.0)),
                ("longitude", Value::from(f64::from(n % 360) - 180.0)),
                ("time_zone", Value::from("Europe/Berlin")),
            ]),
        ),
        (
            "postal",
            Value::map([("code", Value::from(format!("{:05}", n % 99_999)))]),
        ),
        (
            "registered_country",
            Value::map([
                ("geoname_id", Value::from(n % 250)),
                ("iso_code", Value::from(country)),
                ("names", names("Country", n % 250)),
            ]),
        ),
        (
            "subdivisions",
            Value::Array(vec![Value::map([
                ("geoname_id", Value::from(n % 5_000)),
                ("iso_code", Value::from("BE")),
                ("names", names("Region", n % 5_000)),
            ])]),
        ),
    ])
}

/// The `i`-th /24 network: spread over 1.0.0.0–223.255.255.255, distinct for every `i` below
/// 223 × 2^16 (211 is prime to it).
fn network(i: u32) -> Ipv4Net {
    let block = 0x01_0000 + (i.wrapping_mul(211) % 0xDF_0000);
    Ipv4Net::new(Ipv4Addr::from(block << 8), 24).expect("a /24")
}

fn writer(database_type: &str) -> Writer {
    Writer::builder(database_type)
        .description(&[("en", "clickmatch-bench synthetic data")])
        .build()
}

/// Writes `city.mmdb` and `asn.mmdb` with `networks` /24s into `dir`; the City file's size.
fn write_databases(dir: &Path, networks: u32) -> anyhow::Result<u64> {
    let cities: Vec<Value> = (0..CITY_RECORDS).map(city_record).collect();
    let ases: Vec<Value> = (0..AS_RECORDS)
        .map(|n| {
            Value::map([
                ("autonomous_system_number", Value::from(64_512 + n)),
                (
                    "autonomous_system_organization",
                    Value::from(format!("Example Networks {n}")),
                ),
            ])
        })
        .collect();
    let mut city = writer("GeoLite2-City");
    let mut asn = writer("GeoLite2-ASN");
    for i in 0..networks {
        city.insert_value(network(i), cities[(i % CITY_RECORDS) as usize].clone())?;
        asn.insert_value(network(i), ases[(i % AS_RECORDS) as usize].clone())?;
    }
    let city = city.to_bytes()?;
    std::fs::write(dir.join("city.mmdb"), &city)?;
    std::fs::write(dir.join("asn.mmdb"), asn.to_bytes()?)?;
    Ok(city.len() as u64)
}

impl Bench {
    /// Phase enrich: see the module's doc.
    pub(super) fn enrich(&mut self) -> anyhow::Result<()> {
        let s = self.sizes.clone();
        let pin = self.pin.clone();
        let dir = self.work.path().join("enrich");
        std::fs::create_dir_all(&dir)?;
        eprintln!("   writing databases ({} networks)", s.enrich_networks);
        let city_db_bytes = write_databases(&dir, s.enrich_networks)?;

        // Requests: the redirect phase's paths, each from an address of one of the networks,
        // through a proxy, with a user agent.
        let mut traffic = Traffic::new(&Traffic::bench_config(), 13);
        let mut rng = StdRng::seed_from_u64(17);
        let lines: Vec<String> = (0..s.http_paths)
            .map(|_| {
                let net = network(rng.random_range(0..s.enrich_networks));
                let host = u32::from(net.network()) + rng.random_range(1..255u32);
                let agent = USER_AGENTS[rng.random_range(0..USER_AGENTS.len())]
                    .replace("{n}", &rng.random_range(0..BUILDS_PER_AGENT).to_string());
                format!(
                    "{}\t{}\t{agent}",
                    traffic.click_path(),
                    Ipv4Addr::from(host)
                )
            })
            .collect();
        let requests = dir.join("clicks-with-clients.txt");
        std::fs::write(&requests, lines.join("\n") + "\n")?;
        std::fs::write(
            self.raw.join("enrich-clicks-sample.txt"),
            lines[..lines.len().min(200)].join("\n") + "\n",
        )?;
        let lua = dir.join("clients.lua");
        std::fs::write(&lua, wrk::LUA_WITH_CLIENT)?;

        let (mut broker, bootstrap) =
            self.start_broker("enrich-broker", s.partitions, pin.load.as_deref())?;
        // Both trust the load generator as a proxy, so that they differ in enrichment alone.
        let common = [("CLICKMATCH_INGEST_TRUSTED_PROXIES", "127.0.0.1".to_string())];
        let off = [
            common.clone(),
            [("CLICKMATCH_ENRICHMENT_USER_AGENT", "false".to_string())],
        ]
        .concat();
        let on = [
            common.to_vec(),
            vec![
                ("CLICKMATCH_ENRICHMENT_USER_AGENT", "true".to_string()),
                (
                    "CLICKMATCH_ENRICHMENT_GEOIP_DB",
                    dir.join("city.mmdb").display().to_string(),
                ),
                (
                    "CLICKMATCH_ENRICHMENT_ASN_DB",
                    dir.join("asn.mmdb").display().to_string(),
                ),
            ],
        ]
        .concat();
        let service = pin.service.as_deref();
        let (mut ingest_off, port_off) =
            self.start_ingest_with("enrich-off-ingest", &bootstrap, service, &off)?;
        let (mut ingest_on, port_on) =
            self.start_ingest_with("enrich-on-ingest", &bootstrap, service, &on)?;
        // Both, so that their profiles can be compared symbol by symbol.
        let profilers = [
            self.profile("enrich-on-ingest", &ingest_on)?,
            self.profile("enrich-off-ingest", &ingest_off)?,
        ];

        let load = pin.load.as_deref();
        let run = |port: u16, duration: Duration, raw: &Path, server: Option<&Proc>| {
            let meter = server.map(Proc::cpu_meter);
            let url = format!("http://127.0.0.1:{port}");
            let mut result = wrk::run(&url, &requests, &lua, s.connections, duration, load, raw)?;
            result.server_cpu_us_per_request =
                meter.and_then(|m| m.us_per_request(result.requests));
            anyhow::Ok(result)
        };
        // Warm-up: connections, producer metadata, the caches of the enriching ingest.
        let scratch = self.work.path().join("enrich-warmup.txt");
        run(port_off, Duration::from_secs(1), &scratch, None)?;
        run(port_on, Duration::from_secs(2), &scratch, None)?;
        let mut phase = EnrichPhase {
            connections: s.connections,
            networks: s.enrich_networks,
            city_records: CITY_RECORDS.min(s.enrich_networks),
            user_agents: USER_AGENTS.len() * BUILDS_PER_AGENT,
            city_db_bytes,
            ..EnrichPhase::default()
        };
        let seconds = Duration::from_secs(s.http_seconds);
        for r in 0..self.args.runs {
            // Each run is a pair, taken back to back; the order alternates (off-on, on-off, …)
            // so that a machine slowing down or speeding up over the phase favours neither.
            let order = if r % 2 == 0 {
                ["off", "on"]
            } else {
                ["on", "off"]
            };
            for side in order {
                let raw = self.raw.join(format!("wrk-enrich-{side}-{r}.txt"));
                let (port, ingest, results) = match side {
                    "on" => (port_on, &ingest_on, &mut phase.on),
                    _ => (port_off, &ingest_off, &mut phase.off),
                };
                results.push(run(port, seconds, &raw, Some(ingest))?);
            }
            ingest_off.check_running()?;
            ingest_on.check_running()?;
            let show = |w: Option<&wrk::WrkResult>| {
                w.map_or("?".to_string(), |w| {
                    format!(
                        "{:.0}/s ({} µs CPU each)",
                        w.ok_rps,
                        one_decimal(w.server_cpu_us_per_request)
                    )
                })
            };
            eprintln!(
                "   run {r}: enrichment off {}, on {}",
                show(phase.off.last()),
                show(phase.on.last())
            );
        }
        self.results.enrich = Some(phase);
        for profiler in profilers {
            self.finish_profile(profiler);
        }
        ingest_on.stop(Duration::from_secs(15));
        ingest_off.stop(Duration::from_secs(15));
        broker.stop(Duration::from_secs(5));
        Ok(())
    }
}
