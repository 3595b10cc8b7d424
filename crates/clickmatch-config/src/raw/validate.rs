//! Validation of a parsed [`RawConfig`] into a [`Config`]: the account and its campaigns, and
//! the service sections (`[ingest]`, `[kafka]`, `[clickhouse]`, `[joiner]`, `[outbound]`).

use std::collections::BTreeMap;

use clickmatch_core::click_id::ClickIdSigner;
use clickmatch_core::model::{
    Account, Campaign, Route, Secret, DEFAULT_MAX_RATE_AGE_DAYS, GLOBAL_ROUTE,
};
use clickmatch_core::money::Currency;
use clickmatch_core::subs::SubSet;
use clickmatch_core::template;
use ipnet::IpNet;

use super::routes::{validate_offer, validate_route};

/// Tracked offers are metric labels: enough for an account's live offers, few enough for
/// Prometheus.
pub const MAX_TRACKED_OFFERS: usize = 200;
use super::{ip_net, RawConfig, RawEnrichment, RawIngest, RawKafka, RawOutbound};
use crate::money;
use crate::names;
use crate::{
    invalid, ClickHouseConfig, Config, ConfigError, EnrichmentConfig, HttpLimits, IngestConfig,
    JoinerConfig, KafkaConfig, OutboundConfig, RateLimits, SpoolConfig, SpoolFsync,
};

impl RawConfig {
    /// Checks every value and builds the domain model. No I/O.
    pub fn validate(self, file: &str) -> Result<Config, ConfigError> {
        if self.account.secret.len() < 16 {
            return Err(invalid(
                file,
                "account.secret",
                "must be at least 16 characters",
            ));
        }
        let signer = ClickIdSigner::new(
            self.account.secret.clone().into_bytes(),
            self.account
                .previous_secrets
                .iter()
                .map(|s| s.clone().into_bytes())
                .collect(),
        );

        let account_currency = match &self.account.currency {
            Some(code) => money::currency(code, file, "account.currency".into())?,
            None => Currency::USD,
        };
        let max_rate_age_days = money::max_rate_age_days(
            self.account
                .max_rate_age_days
                .unwrap_or(DEFAULT_MAX_RATE_AGE_DAYS),
            file,
        )?;

        let mut offers = BTreeMap::new();
        for (i, raw) in self.offers.iter().enumerate() {
            let key = |field: &str| format!("offers[{i}].{field}");
            let offer = validate_offer(raw, file, &key)?;
            if offers.insert(offer.id.clone(), offer).is_some() {
                return Err(invalid(
                    file,
                    key("id"),
                    format!("offer {:?} is defined twice", raw.id),
                ));
            }
            let tracked = offers.values().filter(|o| o.tracked).count();
            if tracked > MAX_TRACKED_OFFERS {
                return Err(invalid(
                    file,
                    key("tracked"),
                    format!(
                        "at most {MAX_TRACKED_OFFERS} offers can be tracked (each is a label on \
                         two metrics)"
                    ),
                ));
            }
        }

        let mut campaigns = BTreeMap::new();
        for (i, raw) in self.campaigns.iter().enumerate() {
            let key = |field: &str| format!("campaigns[{i}].{field}");
            names::config_id(&raw.id).map_err(|m| invalid(file, key("id"), m))?;
            if !offers.contains_key(&raw.offer) {
                return Err(invalid(
                    file,
                    key("offer"),
                    format!("no offer with id {:?}", raw.offer),
                ));
            }
            template::validate(&raw.url).map_err(|e| invalid(file, key("url"), e.to_string()))?;
            if let Some(postback_url) = &raw.postback_url {
                template::validate_postback(postback_url)
                    .map_err(|e| invalid(file, key("postback_url"), e.to_string()))?;
            }
            let cost = money::click_cost(
                &money::RawCost {
                    cost_model: raw.cost_model.as_deref(),
                    cost: raw.cost.as_deref(),
                    cost_param: raw.cost_param.as_deref(),
                    cost_currency: raw.cost_currency.as_deref(),
                },
                account_currency,
                file,
                &key,
            )?;
            let campaign = Campaign {
                id: raw.id.clone(),
                offer_id: raw.offer.clone(),
                url_template: raw.url.clone(),
                source: raw.source.clone(),
                postback_url: raw.postback_url.clone(),
                cost,
            };
            if campaigns.insert(raw.id.clone(), campaign).is_some() {
                return Err(invalid(
                    file,
                    key("id"),
                    format!("campaign {:?} is defined twice", raw.id),
                ));
            }
        }

        let mut routes = BTreeMap::new();
        let mut global_route = Route::new(GLOBAL_ROUTE);
        global_route.currency = account_currency;
        for (name, raw) in &self.routes {
            let route = validate_route(name, raw, &offers, account_currency, file)?;
            if name == GLOBAL_ROUTE {
                global_route = route;
            } else {
                names::config_id(name).map_err(|m| invalid(file, format!("routes.{name}"), m))?;
                routes.insert(name.clone(), route);
            }
        }

        let k = &self.kafka;
        for (field, value) in [
            ("bootstrap_servers", &k.bootstrap_servers),
            ("clicks_topic", &k.clicks_topic),
            ("postbacks_topic", &k.postbacks_topic),
            ("group_id", &k.group_id),
        ] {
            if value.trim().is_empty() {
                return Err(invalid(file, format!("kafka.{field}"), "must not be empty"));
            }
        }
        if k.clicks_topic == k.postbacks_topic {
            return Err(invalid(
                file,
                "kafka.postbacks_topic",
                "must differ from kafka.clicks_topic",
            ));
        }
        names::sql_identifier(&self.clickhouse.database)
            .map_err(|m| invalid(file, "clickhouse.database", m))?;
        let cluster = self
            .clickhouse
            .cluster
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned);
        if let Some(name) = &cluster {
            names::cluster_name(name).map_err(|m| invalid(file, "clickhouse.cluster", m))?;
        }
        if !self.clickhouse.url.starts_with("http://")
            && !self.clickhouse.url.starts_with("https://")
        {
            return Err(invalid(
                file,
                "clickhouse.url",
                "must start with http:// or https://",
            ));
        }
        if self.joiner.state_dir.trim().is_empty() {
            return Err(invalid(file, "joiner.state_dir", "must not be empty"));
        }
        if self.joiner.batch_max_rows == 0 {
            return Err(invalid(file, "joiner.batch_max_rows", "must be at least 1"));
        }
        let admin_token = match &self.ingest.admin_token {
            Some(token) if token.len() < 16 => {
                return Err(invalid(
                    file,
                    "ingest.admin_token",
                    "must be at least 16 characters",
                ))
            }
            Some(token) => Some(Secret::new(token.clone())),
            None => None,
        };
        let report_token = match &self.ingest.report_token {
            Some(token) if token.len() < 16 => {
                return Err(invalid(
                    file,
                    "ingest.report_token",
                    "must be at least 16 characters",
                ))
            }
            Some(token) if Some(token) == self.ingest.admin_token.as_ref() => {
                return Err(invalid(
                    file,
                    "ingest.report_token",
                    "must differ from admin_token: it is given to people who may only read reports",
                ))
            }
            Some(token) => Some(Secret::new(token.clone())),
            None => None,
        };
        let conversion_subs = SubSet::parse(self.joiner.conversion_subs.iter().map(String::as_str))
            .map_err(|name| {
                invalid(
                    file,
                    "joiner.conversion_subs",
                    format!("names {name:?}: each must be one of sub1..sub10"),
                )
            })?;
        let outbound = validate_outbound(&self.outbound, &self.kafka, file)?;
        let enrichment = validate_enrichment(&self.enrichment, file)?;
        let (http_limits, rate_limits, trusted_proxies, spool) =
            validate_ingest_protection(&self.ingest, file)?;
        if self.ingest.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(invalid(
                file,
                "ingest.listen",
                "must be an address such as 127.0.0.1:8080",
            ));
        }

        Ok(Config {
            account: Account {
                signer,
                campaigns,
                offers,
                global_route,
                routes,
                grace_ms: self.account.grace_seconds.saturating_mul(1000),
                currency: account_currency,
                max_rate_age_days,
                conversion_subs,
            },
            ingest: IngestConfig {
                listen: self.ingest.listen,
                public_url: self.ingest.public_url.trim_end_matches('/').to_string(),
                max_body_bytes: self.ingest.max_body_bytes,
                admin_token,
                report_token,
                http_limits,
                rate_limits,
                trusted_proxies,
                spool,
            },
            enrichment,
            kafka: KafkaConfig {
                bootstrap_servers: self.kafka.bootstrap_servers,
                clicks_topic: self.kafka.clicks_topic,
                postbacks_topic: self.kafka.postbacks_topic,
                outbound_topic: self.kafka.outbound_topic,
                group_id: self.kafka.group_id,
                properties: self.kafka.properties,
            },
            clickhouse: ClickHouseConfig {
                url: self.clickhouse.url,
                database: self.clickhouse.database,
                user: self.clickhouse.user,
                password: self.clickhouse.password,
                validation: self.clickhouse.validation,
                cluster,
            },
            joiner: JoinerConfig {
                batch_max_rows: self.joiner.batch_max_rows,
                batch_max_ms: self.joiner.batch_max_ms,
                batch_early_rows: self.joiner.batch_early_rows,
                batch_early_ms: self.joiner.batch_early_ms,
                retry_initial_ms: self.joiner.retry_initial_ms.max(1),
                retry_max_ms: self.joiner.retry_max_ms.max(self.joiner.retry_initial_ms),
                state_dir: self.joiner.state_dir,
                state_cache_mib: self.joiner.state_cache_mib.max(1),
                publish_outbound: self.joiner.publish_outbound,
            },
            outbound,
        })
    }
}

/// Limits, rate limits, trusted proxies and spool of `[ingest]`.
type IngestProtection = (HttpLimits, RateLimits, Vec<IpNet>, SpoolConfig);

fn validate_ingest_protection(
    raw: &RawIngest,
    file: &str,
) -> Result<IngestProtection, ConfigError> {
    for (key, value, min) in [
        ("max_body_bytes", raw.max_body_bytes, 1024),
        ("max_uri_bytes", raw.max_uri_bytes, 256),
        ("max_header_bytes", raw.max_header_bytes, 1024),
        ("max_params", raw.max_params, 1),
    ] {
        if value < min {
            return Err(invalid(
                file,
                format!("ingest.{key}"),
                format!("must be at least {min}"),
            ));
        }
    }
    for (key, value) in [
        ("header_read_timeout_ms", raw.header_read_timeout_ms),
        ("request_timeout_ms", raw.request_timeout_ms),
    ] {
        if value == 0 {
            return Err(invalid(file, format!("ingest.{key}"), "must be at least 1"));
        }
    }
    let mut trusted_proxies = Vec::new();
    for (i, entry) in raw.trusted_proxies.items().iter().enumerate() {
        let net = ip_net(entry.trim()).ok_or_else(|| {
            invalid(
                file,
                format!("ingest.trusted_proxies[{i}]"),
                format!("{entry:?} is not an IP address or CIDR"),
            )
        })?;
        trusted_proxies.push(net);
    }
    if raw.spool_dir.trim().is_empty() {
        return Err(invalid(file, "ingest.spool_dir", "must not be empty"));
    }
    if raw.spool_segment_bytes < 4096 {
        return Err(invalid(
            file,
            "ingest.spool_segment_bytes",
            "must be at least 4096",
        ));
    }
    let fsync = match raw.spool_fsync.as_str() {
        "always" => SpoolFsync::Always,
        "interval" if raw.spool_fsync_interval_ms > 0 => {
            SpoolFsync::IntervalMs(raw.spool_fsync_interval_ms)
        }
        "interval" => {
            return Err(invalid(
                file,
                "ingest.spool_fsync_interval_ms",
                "must be at least 1",
            ))
        }
        other => {
            return Err(invalid(
                file,
                "ingest.spool_fsync",
                format!("{other:?} is not one of \"always\", \"interval\""),
            ))
        }
    };
    let burst = |rate: u32, burst: Option<u32>| burst.unwrap_or(rate.saturating_mul(2)).max(rate);
    Ok((
        HttpLimits {
            max_uri_bytes: raw.max_uri_bytes,
            max_header_bytes: raw.max_header_bytes,
            max_params: raw.max_params,
            header_read_timeout_ms: raw.header_read_timeout_ms,
            request_timeout_ms: raw.request_timeout_ms,
        },
        RateLimits {
            per_ip_per_second: raw.rate_limit_per_ip,
            per_ip_burst: burst(raw.rate_limit_per_ip, raw.rate_limit_per_ip_burst),
            per_route_per_second: raw.rate_limit_per_route,
            per_route_burst: burst(raw.rate_limit_per_route, raw.rate_limit_per_route_burst),
        },
        trusted_proxies,
        SpoolConfig {
            dir: raw.spool_dir.clone(),
            max_bytes: raw.spool_max_bytes,
            segment_bytes: raw.spool_segment_bytes,
            fsync,
        },
    ))
}

/// Longest `enrichment.reload_interval_seconds`: a day.
const MAX_RELOAD_INTERVAL_SECONDS: u64 = 86_400;

/// `[enrichment]`: paths are taken as written (blank means none); whether the files exist and
/// are databases is checked when ingest opens them.
fn validate_enrichment(raw: &RawEnrichment, file: &str) -> Result<EnrichmentConfig, ConfigError> {
    let path = |value: &str| {
        let value = value.trim();
        (!value.is_empty()).then(|| std::path::PathBuf::from(value))
    };
    if !(1..=MAX_RELOAD_INTERVAL_SECONDS).contains(&raw.reload_interval_seconds) {
        return Err(invalid(
            file,
            "enrichment.reload_interval_seconds",
            format!("must be between 1 and {MAX_RELOAD_INTERVAL_SECONDS}"),
        ));
    }
    Ok(EnrichmentConfig {
        geoip_db: path(&raw.geoip_db),
        asn_db: path(&raw.asn_db),
        user_agent: raw.user_agent,
        reload_interval_ms: raw.reload_interval_seconds * 1000,
    })
}

fn validate_outbound(
    raw: &RawOutbound,
    kafka: &RawKafka,
    file: &str,
) -> Result<OutboundConfig, ConfigError> {
    let key = |field: &str| format!("outbound.{field}");
    if raw.group_id.trim().is_empty() {
        return Err(invalid(file, key("group_id"), "must not be empty"));
    }
    if raw.group_id == kafka.group_id {
        return Err(invalid(
            file,
            key("group_id"),
            "must differ from kafka.group_id (the dispatcher is a consumer group of its own)",
        ));
    }
    if kafka.outbound_topic.trim().is_empty()
        || kafka.outbound_topic == kafka.clicks_topic
        || kafka.outbound_topic == kafka.postbacks_topic
    {
        return Err(invalid(
            file,
            "kafka.outbound_topic",
            "must be set and differ from the clicks and postbacks topics",
        ));
    }
    if !(1..=50).contains(&raw.max_attempts) {
        return Err(invalid(
            file,
            key("max_attempts"),
            "must be between 1 and 50",
        ));
    }
    if raw.retry_initial_ms == 0 || raw.retry_max_ms < raw.retry_initial_ms {
        return Err(invalid(
            file,
            key("retry_max_ms"),
            "retry_initial_ms must be at least 1 and retry_max_ms at least retry_initial_ms",
        ));
    }
    if raw.request_timeout_ms == 0 {
        return Err(invalid(
            file,
            key("request_timeout_ms"),
            "must be at least 1",
        ));
    }
    if raw.concurrency == 0 {
        return Err(invalid(file, key("concurrency"), "must be at least 1"));
    }
    if raw.batch_max_records == 0 {
        return Err(invalid(
            file,
            key("batch_max_records"),
            "must be at least 1",
        ));
    }
    Ok(OutboundConfig {
        group_id: raw.group_id.clone(),
        max_attempts: raw.max_attempts,
        retry_initial_ms: raw.retry_initial_ms,
        retry_max_ms: raw.retry_max_ms,
        request_timeout_ms: raw.request_timeout_ms,
        concurrency: raw.concurrency,
        batch_max_records: raw.batch_max_records,
        fire_test_conversions: raw.fire_test_conversions,
    })
}
