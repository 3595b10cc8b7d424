//! What keeps hostile or broken clients from costing unbounded resources: request size limits
//! (414 for the request target, 431 for headers; 413 for bodies comes from `DefaultBodyLimit`,
//! 400 for too many parameters from the parameter parser), token-bucket rate limits per client
//! IP and per postback route (429), and the client IP itself, which believes `X-Forwarded-For`
//! only from configured trusted proxies.
//!
//! Slow clients are handled by the server (see [`crate::server`]): a request head must arrive
//! within `header_read_timeout_ms`, and a request whose handler waits (for a body, the broker
//! or ClickHouse) is answered within `request_timeout_ms` (408; see [`crate::router`]).

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use clickmatch_config::{HttpLimits, RateLimits};
use clickmatch_core::params::ParamLimits;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;
use prometheus::{IntCounterVec, Opts, Registry};

use crate::Ingest;

/// Rate-limit keys of postbacks to routes that are not configured share this one.
const UNKNOWN_ROUTE_KEY: &str = "\u{0}unknown";
/// How often idle rate-limit keys are forgotten (memory stays bounded by recent clients).
pub const RATE_LIMIT_GC_INTERVAL: Duration = Duration::from_secs(60);

/// Limits, rate limiters and trusted proxies of one ingest server.
pub struct Protection {
    pub http: HttpLimits,
    trusted_proxies: Vec<IpNet>,
    per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    per_route: Option<DefaultKeyedRateLimiter<String>>,
    refused: IntCounterVec,
}

fn quota(per_second: u32, burst: u32) -> Option<Quota> {
    let rate = NonZeroU32::new(per_second)?;
    let burst = NonZeroU32::new(burst.max(per_second)).unwrap_or(rate);
    Some(Quota::per_second(rate).allow_burst(burst))
}

impl Protection {
    pub fn new(
        http: HttpLimits,
        rate_limits: RateLimits,
        trusted_proxies: Vec<IpNet>,
        registry: &Registry,
    ) -> Result<Protection, prometheus::Error> {
        let refused = IntCounterVec::new(
            Opts::new(
                "clickmatch_ingest_requests_refused_total",
                "Requests refused before their handler, by reason (uri_too_long, \
                 headers_too_large, rate_limited_ip, rate_limited_route).",
            ),
            &["reason"],
        )?;
        registry.register(Box::new(refused.clone()))?;
        Ok(Protection {
            http,
            trusted_proxies,
            per_ip: quota(rate_limits.per_ip_per_second, rate_limits.per_ip_burst)
                .map(RateLimiter::dashmap),
            per_route: quota(
                rate_limits.per_route_per_second,
                rate_limits.per_route_burst,
            )
            .map(RateLimiter::dashmap),
            refused,
        })
    }

    /// No limits beyond the defaults, no proxies: for tests and tools.
    pub fn unlimited(registry: &Registry) -> Result<Protection, prometheus::Error> {
        Protection::new(
            HttpLimits {
                max_uri_bytes: 8 * 1024,
                max_header_bytes: 16 * 1024,
                max_params: ParamLimits::default().max_params,
                header_read_timeout_ms: 10_000,
                request_timeout_ms: 15_000,
            },
            RateLimits::default(),
            Vec::new(),
            registry,
        )
    }

    /// Parameter limits of postbacks.
    pub fn param_limits(&self) -> ParamLimits {
        ParamLimits {
            max_params: self.http.max_params,
            ..ParamLimits::default()
        }
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.trusted_proxies.iter().any(|net| net.contains(&ip))
    }

    /// The client's IP: the peer's, unless the peer is a trusted proxy; then the right-most
    /// `X-Forwarded-For` entry that is not itself a trusted proxy (entries left of it are
    /// whatever the client claimed, and a client can claim anything).
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.is_trusted(peer) {
            return peer;
        }
        let mut hops: Vec<IpAddr> = Vec::new();
        for value in headers.get_all("x-forwarded-for") {
            let Ok(text) = value.to_str() else {
                return peer;
            };
            for entry in text.split(',') {
                match parse_forwarded_ip(entry) {
                    Some(ip) => hops.push(canonical(ip)),
                    // An unreadable hop: nothing left of it can be trusted.
                    None => hops.clear(),
                }
            }
        }
        let mut client = peer;
        for hop in hops.iter().rev() {
            client = *hop;
            if !self.is_trusted(*hop) {
                break;
            }
        }
        client
    }

    fn refuse(&self, reason: &str, status: StatusCode, message: &'static str) -> Response {
        self.refused.with_label_values(&[reason]).inc();
        (status, message).into_response()
    }

    /// Forgets rate-limit keys that are back to a full bucket.
    pub fn forget_idle_clients(&self) {
        if let Some(limiter) = &self.per_ip {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        if let Some(limiter) = &self.per_route {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`) as the IPv4 address they are.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// One `X-Forwarded-For` entry: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or `[2001:db8::1]:80`.
fn parse_forwarded_ip(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|a| a.ip()))
}

/// Which rate limits a path falls under: traffic endpoints only (never metrics, health or
/// admin pages). `Some(None)`: per-IP only; `Some(Some(route))`: per-IP and per-route.
fn traffic_class(path: &str) -> Option<Option<&str>> {
    if path.starts_with("/c/") || path == "/clicks" {
        Some(None)
    } else if path == "/postback" || path == "/postback/" {
        Some(Some(clickmatch_core::model::GLOBAL_ROUTE))
    } else {
        path.strip_prefix("/postback/").map(Some)
    }
}

fn header_bytes(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum()
}

/// Size limits first, then rate limits for the traffic endpoints: the answer for a request
/// refused, or `None` to serve it.
pub fn refusal(ingest: &Ingest, request: &Request) -> Option<Response> {
    let protection = &ingest.protection;
    let target_len = request
        .uri()
        .path_and_query()
        .map_or(0, |pq| pq.as_str().len());
    if target_len > protection.http.max_uri_bytes {
        return Some(protection.refuse(
            "uri_too_long",
            StatusCode::URI_TOO_LONG,
            "request target too long\n",
        ));
    }
    if header_bytes(request.headers()) > protection.http.max_header_bytes {
        return Some(protection.refuse(
            "headers_too_large",
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request headers too large\n",
        ));
    }
    let route = traffic_class(request.uri().path())?;
    if let Some(limiter) = &protection.per_ip {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        if let Some(peer) = peer {
            let client = protection.client_ip(peer, request.headers());
            if limiter.check_key(&client).is_err() {
                return Some(too_many(protection, "rate_limited_ip"));
            }
        }
    }
    if let (Some(limiter), Some(route)) = (&protection.per_route, route) {
        let key = ingest
            .account
            .load()
            .route_label(route)
            .unwrap_or(UNKNOWN_ROUTE_KEY)
            .to_string();
        if limiter.check_key(&key).is_err() {
            return Some(too_many(protection, "rate_limited_route"));
        }
    }
    None
}

fn too_many(protection: &Protection, reason: &str) -> Response {
    let mut response = protection.refuse(
        reason,
        StatusCode::TOO_MANY_REQUESTS,
        "too many requests, retry later\n",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn protection(trusted: &[&str]) -> Protection {
        let mut p = Protection::unlimited(&Registry::new()).unwrap();
        p.trusted_proxies = trusted.iter().map(|t| t.parse().unwrap()).collect();
        p
    }

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_ignored_from_untrusted_peers() {
        let p = protection(&["10.0.0.0/8"]);
        assert_eq!(
            p.client_ip(ip("198.51.100.9"), &headers(&["203.0.113.5"])),
            ip("198.51.100.9")
        );
        let none = protection(&[]);
        assert_eq!(
            none.client_ip(ip("10.1.1.1"), &headers(&["203.0.113.5"])),
            ip("10.1.1.1")
        );
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let p = protection(&["10.0.0.0/8", "127.0.0.1/32"]);
        // The client claimed 192.0.2.1; the trusted proxy appended what it saw.
        assert_eq!(
            p.client_ip(
                ip("127.0.0.1"),
                &headers(&["192.0.2.1, 203.0.113.5, 10.0.0.7"])
            ),
            ip("203.0.113.5")
        );
        // Several headers are one list.
        assert_eq!(
            p.client_ip(ip("10.0.0.2"), &headers(&["192.0.2.1", "203.0.113.5:4000"])),
            ip("203.0.113.5")
        );
        // Only proxies: the left-most is as far as we can see.
        assert_eq!(
            p.client_ip(ip("10.0.0.2"), &headers(&["10.0.0.3, 10.0.0.4"])),
            ip("10.0.0.3")
        );
        // No header: the proxy itself.
        assert_eq!(p.client_ip(ip("10.0.0.2"), &headers(&[])), ip("10.0.0.2"));
        // Garbage right of a good entry: nothing left of it counts.
        assert_eq!(
            p.client_ip(ip("10.0.0.2"), &headers(&["203.0.113.5, garbage"])),
            ip("10.0.0.2")
        );
        assert_eq!(
            p.client_ip(ip("::ffff:10.0.0.2"), &headers(&["[2001:db8::1]:80"])),
            ip("2001:db8::1")
        );
    }

    #[test]
    fn traffic_classes() {
        assert_eq!(traffic_class("/c/demo"), Some(None));
        assert_eq!(traffic_class("/clicks"), Some(None));
        assert_eq!(traffic_class("/postback"), Some(Some("global")));
        assert_eq!(traffic_class("/postback/lead"), Some(Some("lead")));
        assert_eq!(traffic_class("/metrics"), None);
        assert_eq!(traffic_class("/readyz"), None);
        assert_eq!(traffic_class("/admin/spool"), None);
    }
}
