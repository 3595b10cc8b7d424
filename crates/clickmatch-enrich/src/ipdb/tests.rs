use mmdb_writer::{Value, Writer};

use super::*;
use crate::demo;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn db(database_type: &str, records: &[(&str, Value)]) -> IpDb {
    let mut writer = demo::writer(database_type);
    for (network, value) in records {
        writer
            .insert_value(network.parse::<ipnet::IpNet>().unwrap(), value.clone())
            .unwrap();
    }
    IpDb::from_bytes(writer.to_bytes().unwrap()).unwrap()
}

fn names(en: &str) -> Value {
    Value::map([
        ("de", Value::from("…")),
        ("en", Value::from(en)),
        ("fr", Value::from("…")),
    ])
}

#[test]
fn geolite2_city_and_asn_layouts() {
    let city = IpDb::from_bytes(demo::city_database().unwrap()).unwrap();
    assert_eq!(city.database_type(), "GeoLite2-City");
    let asn = IpDb::from_bytes(demo::asn_database().unwrap()).unwrap();
    let mut facts = IpFacts::clone(&city.lookup(ip("198.51.100.7")).facts);
    assert_eq!(
        facts,
        IpFacts {
            country: "FR".into(),
            region: "Île-de-France".into(),
            city: "Paris".into(),
            asn: 0,
            isp: Arc::default(),
        }
    );
    facts.fill_from(&asn.lookup(ip("198.51.100.7")).facts);
    // The same record again, for another address of the network: from the cache, the same.
    assert_eq!(city.lookup(ip("198.51.100.8")).facts.city.as_ref(), "Paris");
    assert_eq!((facts.asn, facts.isp.as_ref()), (64_498, "Démo Fibre"));
    // 192.0.2.0/24 is two /25s of two countries: neither covers the /24 block.
    let de = city.lookup(ip("192.0.2.1"));
    assert_eq!((de.facts.country.as_str(), de.covers_block), ("DE", false));
    assert_eq!(city.lookup(ip("192.0.2.200")).facts.country, "US");
    // 203.0.113.0/24 is one network, and an unlisted address lies in an empty network wider
    // than its block: both cover it.
    let br = city.lookup(ip("203.0.113.1"));
    assert_eq!(
        (br.facts.city.as_ref(), br.covers_block),
        ("São Paulo", true)
    );
    assert!(city.lookup(ip("8.8.8.8")).covers_block);
    // IPv6, and IPv4 written the IPv4-mapped way.
    assert_eq!(
        city.lookup(ip("2001:db8:de::42")).facts.city.as_ref(),
        "Hamburg"
    );
    assert!(city.lookup(ip("2001:db8:de:ffff::1")).covers_block);
    assert_eq!(*city.lookup(ip("2001:db8:df::1")).facts, IpFacts::default());
    assert_eq!(city.lookup(ip("::ffff:203.0.113.9")).facts.country, "BR");
    // Outside every network: nothing.
    assert_eq!(*city.lookup(ip("8.8.8.8")).facts, IpFacts::default());
    assert_eq!(*asn.lookup(ip("2001:db9::1")).facts, IpFacts::default());
}

#[test]
fn geoip2_records_with_many_fields_and_a_registered_country_only() {
    let full = Value::map([
        (
            "continent",
            Value::map([("code", Value::from("EU")), ("names", names("Europe"))]),
        ),
        (
            "country",
            Value::map([
                ("geoname_id", Value::from(2_921_044_u32)),
                ("is_in_european_union", Value::from(true)),
                ("iso_code", Value::from("DE")),
                ("names", names("Germany")),
            ]),
        ),
        (
            "location",
            Value::map([
                ("latitude", Value::from(52.5_f64)),
                ("longitude", Value::from(13.4_f64)),
            ]),
        ),
        (
            "subdivisions",
            Value::Array(vec![
                Value::map([("iso_code", Value::from("BE")), ("names", names("Berlin"))]),
                Value::map([("iso_code", Value::from("XX")), ("names", names("Second"))]),
            ]),
        ),
        ("city", Value::map([("names", names("Berlin"))])),
    ]);
    // An anonymous proxy: GeoIP2 leaves `country` out and keeps `registered_country`.
    let registered = Value::map([(
        "registered_country",
        Value::map([
            ("iso_code", Value::from("us")),
            ("names", names("United States")),
        ]),
    )]);
    let db = db(
        "GeoIP2-City",
        &[("10.0.0.0/8", full), ("10.1.0.0/16", registered)],
    );
    let facts = db.lookup(ip("10.2.3.4")).facts;
    assert_eq!(
        (
            facts.country.as_str(),
            facts.region.as_ref(),
            facts.city.as_ref()
        ),
        ("DE", "Berlin", "Berlin")
    );
    let facts = db.lookup(ip("10.1.3.4")).facts;
    assert_eq!(facts.country, "US", "upper-cased from registered_country");
    assert_eq!(facts.city.as_ref(), "");
}

#[test]
fn dbip_lite_layouts() {
    // DB-IP's Lite files follow GeoIP2's layout; their ASN file has the GeoLite2-ASN fields.
    let city = db(
        "DBIP-City-Lite",
        &[(
            "203.0.113.0/24",
            Value::map([
                (
                    "country",
                    Value::map([("iso_code", Value::from("BR")), ("names", names("Brazil"))]),
                ),
                (
                    "subdivisions",
                    Value::Array(vec![Value::map([("names", names("São Paulo"))])]),
                ),
                ("city", Value::map([("names", names("Campinas"))])),
            ]),
        )],
    );
    let asn = db(
        "DBIP-ASN-Lite (compat=GeoLite2-ASN)",
        &[(
            "203.0.113.0/24",
            Value::map([
                ("autonomous_system_number", Value::from(64_500_u32)),
                ("autonomous_system_organization", Value::from("Example BR")),
            ]),
        )],
    );
    let mut facts = IpFacts::clone(&city.lookup(ip("203.0.113.1")).facts);
    facts.fill_from(&asn.lookup(ip("203.0.113.1")).facts);
    assert_eq!(
        facts,
        IpFacts {
            country: "BR".into(),
            region: "São Paulo".into(),
            city: "Campinas".into(),
            asn: 64_500,
            isp: "Example BR".into(),
        }
    );
}

#[test]
fn ipinfo_layouts() {
    // IPinfo Lite: flat, `country` is the name, the code is `country_code`, `asn` is text.
    let lite = db(
        "ipinfo lite.mmdb",
        &[(
            "198.51.100.0/24",
            Value::map([
                ("as_domain", Value::from("example.in")),
                ("as_name", Value::from("Example India")),
                ("asn", Value::from("AS64499")),
                ("continent", Value::from("Asia")),
                ("continent_code", Value::from("AS")),
                ("country", Value::from("India")),
                ("country_code", Value::from("IN")),
            ]),
        )],
    );
    assert_eq!(
        *lite.lookup(ip("198.51.100.200")).facts,
        IpFacts {
            country: "IN".into(),
            asn: 64_499,
            isp: "Example India".into(),
            ..IpFacts::default()
        }
    );
    // IPinfo's older free country_asn file: `country` is the code.
    let older = db(
        "ipinfo country_asn.mmdb",
        &[(
            "192.0.2.0/24",
            Value::map([
                ("country", Value::from("FR")),
                ("country_name", Value::from("France")),
                ("asn", Value::from("AS64498")),
                ("as_name", Value::from("Example FR")),
            ]),
        )],
    );
    let facts = older.lookup(ip("192.0.2.1")).facts;
    assert_eq!((facts.country.as_str(), facts.asn), ("FR", 64_498));
    // A country name where a code was expected is not taken for one.
    let named = db(
        "odd",
        &[(
            "192.0.2.0/24",
            Value::map([("country", Value::from("France"))]),
        )],
    );
    assert_eq!(named.lookup(ip("192.0.2.1")).facts.country, "");
}

#[test]
fn unexpected_types_give_empty_facts_never_a_failure() {
    let odd = db(
        "odd",
        &[(
            "192.0.2.0/24",
            Value::map([
                ("country", Value::from(7_u32)),
                ("city", Value::from("not a map")),
            ]),
        )],
    );
    assert_eq!(*odd.lookup(ip("192.0.2.1")).facts, IpFacts::default());
    // An IPv6 address in an IPv4-only database.
    let mut writer = Writer::builder("v4")
        .ip_version(mmdb_writer::IpVersion::V4)
        .description(&[("en", "IPv4 only")])
        .build();
    writer
        .insert_value(
            "192.0.2.0/24".parse::<ipnet::IpNet>().unwrap(),
            Value::map([("country_code", Value::from("DE"))]),
        )
        .unwrap();
    let v4 = IpDb::from_bytes(writer.to_bytes().unwrap()).unwrap();
    assert_eq!(v4.lookup(ip("192.0.2.1")).facts.country, "DE");
    assert_eq!(*v4.lookup(ip("2001:db8::1")).facts, IpFacts::default());
}

#[test]
fn files_that_are_not_databases_are_refused() {
    assert!(IpDb::from_bytes(Vec::new()).is_err());
    assert!(IpDb::from_bytes(b"country,code\n1.2.3.0/24,DE\n".to_vec()).is_err());
    let whole = demo::city_database().unwrap();
    // Cut short, as a copy still under way leaves it.
    assert!(IpDb::from_bytes(whole[..whole.len() / 2].to_vec()).is_err());
    // The search tree damaged: found by the verification, not at a later lookup.
    let mut damaged = whole.clone();
    for byte in &mut damaged[..64] {
        *byte = 0xff;
    }
    assert!(IpDb::from_bytes(damaged).is_err());
}
