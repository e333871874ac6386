//! `--geoip MMDB --ip PATH`: the geo-location of an IP address, from a
//! MaxMind DB file in the GeoIP2 layout (MaxMind's GeoIP2 and GeoLite2 City
//! and Country databases, and DB-IP's City and Country databases, which use
//! the same layout).
//!
//! The result has the country (ISO code and English name), the first-level
//! region (subdivision), the city, the postal code, latitude and longitude,
//! and the IANA time zone; a field the database does not have is null (a
//! Country database has no city). An address the database does not know
//! (a private address such as 10.0.0.1, or IPv6 in an IPv4-only database),
//! and an event without an address, give no result; a value that is not an
//! IP address fails the event.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use maxminddb::{geoip2, Reader};
use serde::Serialize;

use super::{error_kind, raw, schema, Derived, Event, Flow, Step};
use crate::event::FailureMessage;
use crate::path::FieldPath;

/// How many decoded records are kept; many addresses share a record (every
/// address of a network), so a small cache saves most decoding.
const CACHE_LIMIT: usize = 65_536;

/// The geo-IP step.
pub struct GeoIp {
    /// Shared by every worker thread's copy of the step.
    reader: Arc<Reader<Vec<u8>>>,
    ip: FieldPath,
    /// Serialized result data by the record's offset in the database.
    cache: HashMap<usize, Box<[u8]>>,
}

/// The data of a geo-location result.
#[derive(Debug, Serialize, PartialEq)]
pub struct GeoLocation<'a> {
    /// ISO 3166-1 alpha-2 country code, such as `NZ`.
    pub country_code: Option<&'a str>,
    /// The country's English name.
    pub country_name: Option<&'a str>,
    /// ISO 3166-2 code of the first-level subdivision, such as `CA`.
    pub region_code: Option<&'a str>,
    /// The first-level subdivision's English name.
    pub region_name: Option<&'a str>,
    /// The city's English name.
    pub city: Option<&'a str>,
    /// Postal code.
    pub postal_code: Option<&'a str>,
    /// Latitude in degrees.
    pub latitude: Option<f64>,
    /// Longitude in degrees.
    pub longitude: Option<f64>,
    /// IANA time zone, such as `Pacific/Auckland`.
    pub time_zone: Option<&'a str>,
    /// `country` when the country fields are the record's country,
    /// `registered_country` when the record has none and they are the
    /// country the network is registered in; null when neither is known.
    pub country_source: Option<&'static str>,
}

impl<'a> From<&geoip2::City<'a>> for GeoLocation<'a> {
    fn from(c: &geoip2::City<'a>) -> Self {
        let region = c.subdivisions.first();
        // Some networks (anycast, satellite, some mobile carriers) have no
        // `country` in GeoIP2 and GeoLite2; MaxMind's documentation points
        // to `registered_country` for them, as its own clients' examples do.
        let (country, country_source) = if c.country.iso_code.is_some() {
            (&c.country, Some("country"))
        } else if c.registered_country.iso_code.is_some() {
            (&c.registered_country, Some("registered_country"))
        } else {
            (&c.country, None)
        };
        GeoLocation {
            country_code: country.iso_code,
            country_name: country.names.english,
            country_source,
            region_code: region.and_then(|r| r.iso_code),
            region_name: region.and_then(|r| r.names.english),
            city: c.city.names.english,
            postal_code: c.postal.code,
            latitude: c.location.latitude,
            longitude: c.location.longitude,
            time_zone: c.location.time_zone,
        }
    }
}

impl GeoIp {
    /// Opens a MaxMind DB file and checks it is a City or Country database.
    pub fn open(path: &Path, ip: FieldPath) -> Result<Self> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read MaxMind DB {}", path.display()))?;
        let reader = Reader::from_source(bytes)
            .map_err(|e| anyhow!("{}: not a readable MaxMind DB file: {e}", path.display()))?;
        let kind = reader.metadata().database_type.to_ascii_lowercase();
        if !kind.contains("city") && !kind.contains("country") {
            bail!(
                "{}: database type {:?} is not a City or Country database (GeoIP2, GeoLite2 or DB-IP)",
                path.display(),
                reader.metadata().database_type
            );
        }
        Ok(GeoIp {
            reader: Arc::new(reader),
            ip,
            cache: HashMap::new(),
        })
    }

    /// Looks up an address: the result's data as JSON, or `None` when the
    /// database does not know it.
    pub fn locate(&mut self, ip: IpAddr) -> Result<Option<&[u8]>, String> {
        let result = match self.reader.lookup(ip) {
            Ok(r) => r,
            // IPv6 in an IPv4-only database: nothing to find.
            Err(maxminddb::MaxMindDbError::InvalidInput { .. }) => return Ok(None),
            Err(e) => return Err(e.to_string()),
        };
        let Some(offset) = result.offset() else {
            return Ok(None);
        };
        if !self.cache.contains_key(&offset) {
            let city: geoip2::City<'_> = match result.decode() {
                Ok(Some(c)) => c,
                Ok(None) => return Ok(None),
                Err(e) => return Err(e.to_string()),
            };
            let data = serde_json::to_vec(&GeoLocation::from(&city)).map_err(|e| e.to_string())?;
            if self.cache.len() >= CACHE_LIMIT {
                self.cache.clear();
            }
            self.cache.insert(offset, data.into_boxed_slice());
        }
        Ok(self.cache.get(&offset).map(|b| &**b))
    }
}

/// Parses an address as events carry it. An IPv4-mapped IPv6 address
/// (`::ffff:81.2.69.160`, as dual-stack servers log IPv4 clients) is looked
/// up as the IPv4 address it is, whatever aliases the database has. An
/// IPv6 zone index (`fe80::1%eth0`, RFC 4007) names the sender's interface,
/// not part of the address: it is left out, as MaxMind's readers do.
pub fn parse_ip(text: &str) -> Option<IpAddr> {
    let text = match text.split_once('%') {
        Some((address, zone)) if address.contains(':') && !zone.is_empty() => address,
        _ => text,
    };
    match text.parse().ok()? {
        IpAddr::V6(v6) => Some(v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)),
        v4 => Some(v4),
    }
}

impl Step for GeoIp {
    fn name(&self) -> &'static str {
        "geoip"
    }

    fn fork(&self) -> Result<Box<dyn Step>> {
        Ok(Box::new(GeoIp {
            reader: Arc::clone(&self.reader),
            ip: self.ip.clone(),
            cache: HashMap::new(),
        }))
    }

    fn apply(&mut self, ev: &mut Event, _original: &[u8]) -> Result<Flow, Vec<FailureMessage>> {
        let at = ev.find(&self.ip);
        if let Some(kind) = at
            .as_ref()
            .map(|r| raw::kind_of(ev.bytes(), r))
            .filter(|k| !matches!(*k, "string" | "null"))
        {
            return Err(vec![FailureMessage::new(
                error_kind::WRONG_TYPE,
                format!("{} is a JSON {kind}, not an IP address string", self.ip),
            )
            .with("path", self.ip.to_string())]);
        }
        let ip = match raw::scalar(ev.bytes(), at) {
            raw::Scalar::Missing => {
                ev.derive_nothing("geo").map_err(|e| vec![e])?;
                return Ok(Flow::Continue);
            }
            raw::Scalar::Compound(kind) => {
                return Err(vec![FailureMessage::new(
                    error_kind::WRONG_TYPE,
                    format!("{} is a JSON {kind}, not an IP address", self.ip),
                )
                .with("path", self.ip.to_string())])
            }
            raw::Scalar::Text(text) => match parse_ip(&text) {
                Some(ip) => ip,
                None => {
                    return Err(vec![FailureMessage::new(
                        error_kind::INVALID_IP,
                        format!("{} is {:?}, which is not an IP address", self.ip, text),
                    )
                    .with("path", self.ip.to_string())])
                }
            },
        };
        let ip_path = self.ip.to_string();
        let data = self.locate(ip).map_err(|e| {
            vec![
                FailureMessage::new(error_kind::GEOIP_LOOKUP, format!("looking up {ip}: {e}"))
                    .with("path", ip_path),
            ]
        })?;
        match data {
            Some(data) => ev.derive(Derived {
                field: "geo",
                schema: schema::GEO_LOCATION,
                data,
                value: data,
            }),
            None => ev.derive_nothing("geo"),
        }
        .map_err(|e| vec![e])?;
        Ok(Flow::Continue)
    }
}
