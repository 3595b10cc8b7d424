//! One MaxMind-format database (`.mmdb`) and what a lookup reads from it, whatever its vendor's
//! layout. Pure: the bytes come from the caller.
//!
//! Layouts read (each field is taken from the first layout that has it):
//!
//! | field | GeoLite2 / GeoIP2, DB-IP Lite | IPinfo Lite | IPinfo's older free files |
//! |---|---|---|---|
//! | country | `country.iso_code`, else `registered_country.iso_code` | `country_code` | `country` (a code) |
//! | region | `subdivisions[0].names.en` | — | — |
//! | city | `city.names.en` | — | — |
//! | asn | `autonomous_system_number` | `asn` (`"AS15169"`) | `asn` |
//! | isp | `isp`, else `organization`, else `autonomous_system_organization` | `as_name` | `as_name` |
//!
//! IPinfo Lite's `country` is the country's *name*: a `country` string is taken only when it is
//! a two-letter code.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use maxminddb::{MaxMindDbError, Reader};
use quick_cache::sync::Cache;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// What one database knows about an address; empty fields (`asn` 0) where it knows nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpFacts {
    /// ISO 3166 alpha-2, upper case.
    pub country: String,
    /// The names are shared with every click that gets them.
    pub region: Arc<str>,
    pub city: Arc<str>,
    pub asn: u32,
    pub isp: Arc<str>,
}

impl IpFacts {
    /// Fills the fields still empty here from `other` (a second database).
    pub fn fill_from(&mut self, other: &IpFacts) {
        if self.country.is_empty() {
            self.country.clone_from(&other.country);
        }
        let take = |mine: &mut Arc<str>, theirs: &Arc<str>| {
            if mine.is_empty() {
                *mine = theirs.clone();
            }
        };
        take(&mut self.region, &other.region);
        take(&mut self.city, &other.city);
        take(&mut self.isp, &other.isp);
        if self.asn == 0 {
            self.asn = other.asn;
        }
    }
}

/// Decoded records kept per database. Many networks share one record (a city, an AS), and
/// decoding one (a GeoIP2 City record carries names in eight languages, a location, a postal
/// code…) costs more than finding it.
const RECORD_CACHE_CAPACITY: usize = 50_000;

/// A database read whole into memory and checked, with its decoded records cached by their
/// offset in the file (a replacement is a new `IpDb`, with a cache of its own).
pub struct IpDb {
    reader: Reader<Vec<u8>>,
    records: Cache<usize, Arc<IpFacts>>,
}

/// What one lookup found.
#[derive(Debug, Clone, Default)]
pub struct Found {
    pub facts: Arc<IpFacts>,
    /// The network the address fell in covers its whole [`block`](crate::block_of) (IPv4 /24,
    /// IPv6 /48): every address of the block gets the same facts from this database.
    pub covers_block: bool,
}

/// Whether the network a lookup of `ip` ended in covers `ip`'s whole block.
fn covers_block(ip: IpAddr, network: &maxminddb::LookupResult<'_, Vec<u8>>) -> bool {
    let (v4_block, v6_block) = crate::BLOCK_PREFIXES;
    let Ok(net) = network.network() else {
        return false;
    };
    let limit = match (ip, net.ip()) {
        (IpAddr::V4(_), IpAddr::V4(_)) => v4_block,
        (IpAddr::V6(_), IpAddr::V6(_)) => v6_block,
        // An IPv4 address that ended above the IPv4 subtree of an IPv6 database.
        (IpAddr::V4(_), IpAddr::V6(_)) => 96 + v4_block,
        (IpAddr::V6(_), IpAddr::V4(_)) => return false,
    };
    net.prefix() <= limit
}

impl fmt::Debug for IpDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IpDb")
            .field("database_type", &self.database_type())
            .field("build_epoch", &self.build_epoch())
            .finish()
    }
}

impl IpDb {
    /// Reads `bytes` as a MaxMind DB and verifies it whole (search tree, data section,
    /// metadata), so that a truncated or corrupt file is refused here rather than answering
    /// garbage later.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<IpDb, MaxMindDbError> {
        let reader = Reader::from_source(bytes)?;
        reader.verify()?;
        Ok(IpDb {
            reader,
            records: Cache::new(RECORD_CACHE_CAPACITY),
        })
    }

    /// The metadata's `database_type` (`GeoLite2-City`, `DBIP-City-Lite`, `ipinfo lite.mmdb`…).
    pub fn database_type(&self) -> &str {
        &self.reader.metadata().database_type
    }

    /// When the database was built (Unix seconds, from its metadata).
    pub fn build_epoch(&self) -> u64 {
        self.reader.metadata().build_epoch
    }

    /// What the database says about `ip`. An address it does not cover, an IPv6 address in an
    /// IPv4-only database or a record that does not decode gives empty facts: enrichment never
    /// fails a click.
    pub fn lookup(&self, ip: IpAddr) -> Found {
        let found = match self.reader.lookup(ip) {
            Ok(found) => found,
            Err(_) => return Found::default(),
        };
        let facts = match found.offset() {
            None => Arc::default(),
            Some(offset) => match self.records.get(&offset) {
                Some(facts) => facts,
                None => {
                    let facts = Arc::new(match found.decode::<Record>() {
                        Ok(Some(record)) => record.facts(),
                        Ok(None) | Err(_) => IpFacts::default(),
                    });
                    self.records.insert(offset, facts.clone());
                    facts
                }
            },
        };
        Found {
            facts,
            covers_block: covers_block(ip, &found),
        }
    }
}

/// The fields of every supported layout; absent ones stay `None`, unknown ones are skipped.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Record<'a> {
    #[serde(borrow)]
    country: Option<Country<'a>>,
    #[serde(borrow)]
    registered_country: Option<Place<'a>>,
    country_code: Option<&'a str>,
    #[serde(borrow)]
    subdivisions: Option<First<Place<'a>>>,
    #[serde(borrow)]
    city: Option<Place<'a>>,
    autonomous_system_number: Option<u32>,
    autonomous_system_organization: Option<&'a str>,
    isp: Option<&'a str>,
    organization: Option<&'a str>,
    asn: Option<Asn>,
    as_name: Option<&'a str>,
}

impl Record<'_> {
    fn facts(&self) -> IpFacts {
        let country = self
            .country_code
            .or(match &self.country {
                Some(Country::Code(code)) => Some(*code),
                Some(Country::Place(place)) => place.iso_code,
                None => None,
            })
            .or(self.registered_country.as_ref().and_then(|p| p.iso_code))
            .filter(|code| code.len() == 2 && code.bytes().all(|b| b.is_ascii_alphabetic()))
            .map(str::to_ascii_uppercase)
            .unwrap_or_default();
        let name = |place: &Option<Place<'_>>| {
            place
                .as_ref()
                .and_then(|p| p.names.as_ref())
                .and_then(|n| n.en)
                .unwrap_or_default()
                .into()
        };
        IpFacts {
            country,
            region: name(&self.subdivisions.as_ref().and_then(|s| s.0.clone())),
            city: name(&self.city),
            asn: self
                .autonomous_system_number
                .or(self.asn.map(|a| a.0))
                .unwrap_or(0),
            isp: self
                .isp
                .or(self.organization)
                .or(self.autonomous_system_organization)
                .or(self.as_name)
                .unwrap_or_default()
                .into(),
        }
    }
}

/// A GeoIP2 place (`country`, `city`, a subdivision): its code and English name.
#[derive(Deserialize, Default, Clone)]
#[serde(default)]
struct Place<'a> {
    iso_code: Option<&'a str>,
    #[serde(borrow)]
    names: Option<Names<'a>>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(default)]
struct Names<'a> {
    en: Option<&'a str>,
}

/// `country`: a GeoIP2 place (a map), or a bare string (a code in IPinfo's older files, a name
/// in IPinfo Lite).
enum Country<'a> {
    Code(&'a str),
    Place(Place<'a>),
}

impl<'de: 'a, 'a> Deserialize<'de> for Country<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CountryVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for CountryVisitor<'a> {
            type Value = Country<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a country code or a GeoIP2 country map")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Country::Code(v))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                // Not borrowable from the database: no code.
                Ok(Country::Code(""))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                Place::deserialize(de::value::MapAccessDeserializer::new(map)).map(Country::Place)
            }
        }
        deserializer.deserialize_any(CountryVisitor(std::marker::PhantomData))
    }
}

/// An AS number: an integer, or IPinfo's text form `"AS15169"`.
#[derive(Clone, Copy)]
struct Asn(u32);

impl<'de> Deserialize<'de> for Asn {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AsnVisitor;
        impl Visitor<'_> for AsnVisitor {
            type Value = Asn;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an AS number")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Asn, E> {
                Ok(Asn(u32::try_from(v).unwrap_or(0)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Asn, E> {
                Ok(Asn(u32::try_from(v).unwrap_or(0)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Asn, E> {
                let digits = v
                    .strip_prefix("AS")
                    .or_else(|| v.strip_prefix("as"))
                    .unwrap_or(v);
                Ok(Asn(digits.trim().parse().unwrap_or(0)))
            }
        }
        deserializer.deserialize_any(AsnVisitor)
    }
}

/// The first element of an array, the rest skipped (`subdivisions`: the largest one first).
struct First<T>(Option<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for First<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FirstVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for FirstVisitor<T> {
            type Value = First<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<First<T>, A::Error> {
                let first = seq.next_element::<T>()?;
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(First(first))
            }
        }
        deserializer.deserialize_seq(FirstVisitor(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests;
