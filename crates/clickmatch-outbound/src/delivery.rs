//! The decisions of the dispatcher, without I/O: what to do with a record, how an HTTP answer
//! counts, how long to back off, and the row each attempt leaves in ClickHouse.

use std::time::Duration;

use clickmatch_clickhouse::outbound::duration_ms;
use clickmatch_clickhouse::rows::datetime;
use clickmatch_clickhouse::{ClickSubs, DeliveryState, OutboundRow, Recorded};
use clickmatch_config::OutboundConfig;
use clickmatch_core::model::Account;
use clickmatch_core::records::{Conversion, OutboundRecord};
use clickmatch_core::template::{render_postback, PostbackValues};

/// Header carrying the delivery's idempotency key (`conversion_id:version`).
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// What a record needs, decided from the configuration alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent {
    /// Fire the campaign's postback template.
    Fire { template: String },
    /// A test conversion: record it as skipped, fire nothing.
    SkipTest,
    /// Nothing to do (counted under this result).
    Ignore(&'static str),
}

/// What the configuration says about `record`.
pub fn intent(record: &OutboundRecord, account: &Account, config: &OutboundConfig) -> Intent {
    let conversion = &record.conversion;
    let Some(campaign) = account.campaigns.get(&conversion.campaign_id) else {
        return Intent::Ignore("unknown_campaign");
    };
    let Some(template) = &campaign.postback_url else {
        return Intent::Ignore("no_postback_url");
    };
    if conversion.is_test && !config.fire_test_conversions {
        return Intent::SkipTest;
    }
    Intent::Fire {
        template: template.clone(),
    }
}

/// A postback to fire, with the attempts it has left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub key: String,
    pub conversion: Conversion,
    /// The rendered URL, or why none could be rendered.
    pub url: Result<String, String>,
    /// Number of the next attempt (1 for a fresh delivery; a replay continues the count).
    pub next_attempt: u32,
    /// Number of the last attempt allowed.
    pub last_attempt: u32,
}

impl Delivery {
    /// Whether rendering `template` for `record` needs its click's row: the template uses the
    /// click's `source`, or a sub the conversion does not carry (`[joiner] conversion_subs`).
    pub fn needs_click(record: &OutboundRecord, template: &str) -> bool {
        !PostbackValues::click_tokens(template).carried_by(&record.conversion)
    }

    /// A delivery of `record` through `template`, continuing after what is `recorded`;
    /// `click` is the click's row (`None`: not found, which matters only when the delivery
    /// [`needs_click`](Delivery::needs_click)). `None` when a final state is already recorded.
    pub fn plan(
        record: &OutboundRecord,
        template: &str,
        recorded: Option<&Recorded>,
        click: Option<&ClickSubs>,
        max_attempts: u32,
    ) -> Option<Delivery> {
        let done = recorded.copied().unwrap_or_default();
        if done.delivered || done.finished {
            return None;
        }
        let conversion = &record.conversion;
        let url = match click {
            _ if !Delivery::needs_click(record, template) => Ok(render_postback(
                template,
                &PostbackValues::of_conversion(conversion),
            )),
            Some(click) => Ok(render_postback(
                template,
                &PostbackValues::new(conversion, &click.source, &click.subs),
            )),
            None => Err(format!(
                "click {} is not in ClickHouse's clicks table: its subs are unknown, so the \
                 postback was not fired",
                conversion.click_id
            )),
        };
        let next_attempt = done.attempts + 1;
        Some(Delivery {
            key: record.idempotency_key(),
            conversion: conversion.clone(),
            url,
            next_attempt,
            // A replay gets what was left, and at least one attempt.
            last_attempt: max_attempts.max(next_attempt),
        })
    }
}

/// How one attempt went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// HTTP status, 0 when there was no answer.
    pub status: u16,
    pub class: AttemptClass,
    /// Why it failed (empty when delivered).
    pub error: String,
    pub started_ms: u64,
    pub duration: Duration,
}

/// How an attempt's outcome counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptClass {
    Delivered,
    /// Another attempt may succeed: no answer, 5xx, 408, 425, 429.
    Retryable,
    /// The same request will fail the same way: other 4xx and 3xx, or no URL to request.
    Permanent,
}

impl AttemptClass {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptClass::Delivered => "delivered",
            AttemptClass::Retryable => "retryable",
            AttemptClass::Permanent => "permanent",
        }
    }
}

/// How an HTTP status counts.
pub fn classify_status(status: u16) -> AttemptClass {
    match status {
        200..=299 => AttemptClass::Delivered,
        408 | 425 | 429 | 500..=599 => AttemptClass::Retryable,
        _ => AttemptClass::Permanent,
    }
}

/// The state after `attempt` of `delivery`.
pub fn state_after(delivery: &Delivery, attempt_no: u32, class: AttemptClass) -> DeliveryState {
    match class {
        AttemptClass::Delivered => DeliveryState::Delivered,
        AttemptClass::Retryable if attempt_no < delivery.last_attempt => DeliveryState::Retrying,
        AttemptClass::Retryable | AttemptClass::Permanent => DeliveryState::Failed,
    }
}

/// The row attempt `attempt_no` of `delivery` leaves.
pub fn attempt_row(delivery: &Delivery, attempt_no: u32, attempt: &Attempt) -> OutboundRow {
    let state = state_after(delivery, attempt_no, attempt.class);
    let conversion = &delivery.conversion;
    OutboundRow {
        idempotency_key: delivery.key.clone(),
        conversion_id: conversion.conversion_id.clone(),
        conversion_version: conversion.version,
        click_id: conversion.click_id.clone(),
        click_time: datetime(conversion.click_time_ms),
        campaign_id: conversion.campaign_id.clone(),
        offer_id: conversion.offer_id.clone(),
        attempt: attempt_no,
        attempt_time: datetime(attempt.started_ms),
        attempt_time_ms: attempt.started_ms,
        url: delivery.url.clone().unwrap_or_default(),
        http_status: attempt.status,
        error: attempt.error.clone(),
        duration_ms: duration_ms(attempt.duration),
        state: state.as_str().to_string(),
        is_final: state.is_final(),
    }
}

/// The row of a test conversion that is not fired (attempt 0, final).
pub fn skipped_row(record: &OutboundRecord, now_ms: u64) -> OutboundRow {
    let conversion = &record.conversion;
    OutboundRow {
        idempotency_key: record.idempotency_key(),
        conversion_id: conversion.conversion_id.clone(),
        conversion_version: conversion.version,
        click_id: conversion.click_id.clone(),
        click_time: datetime(conversion.click_time_ms),
        campaign_id: conversion.campaign_id.clone(),
        offer_id: conversion.offer_id.clone(),
        attempt: 0,
        attempt_time: datetime(now_ms),
        attempt_time_ms: now_ms,
        url: String::new(),
        http_status: 0,
        error: "test conversion: not fired (outbound.fire_test_conversions is off)".to_string(),
        duration_ms: 0,
        state: DeliveryState::Skipped.as_str().to_string(),
        is_final: true,
    }
}

/// The wait before retry round `round` (1 = before the second attempt): `retry_initial_ms`
/// doubled each round, at most `retry_max_ms`, then `jitter` (0..1) takes up to a fifth off so
/// that deliveries failing together do not retry in lockstep.
pub fn backoff(config: &OutboundConfig, round: u32, jitter: f64) -> Duration {
    let exp = round.saturating_sub(1).min(32);
    let base = config
        .retry_initial_ms
        .saturating_mul(1u64 << exp)
        .min(config.retry_max_ms);
    let cut = (base as f64 * 0.2 * jitter.clamp(0.0, 1.0)) as u64;
    Duration::from_millis(base - cut)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use clickmatch_core::records::RECORD_VERSION;
    use clickmatch_core::subs::{CarriedSubs, SubSet};

    use super::*;

    fn config() -> OutboundConfig {
        clickmatch_config::Config::demo(&BTreeMap::new())
            .unwrap()
            .outbound
    }

    fn record(is_test: bool) -> OutboundRecord {
        OutboundRecord {
            v: RECORD_VERSION,
            conversion: Conversion {
                conversion_id: "cv".into(),
                postback_id: "pb".into(),
                offer_id: "1".into(),
                txid: "T1".into(),
                is_test,
                version: 3,
                ..Conversion::example()
            },
        }
    }

    const TEMPLATE: &str = "https://ts.example/cb?clickid={sub1}&payout={payout}&tx={txid}";

    fn subs() -> ClickSubs {
        ClickSubs {
            source: "push".into(),
            subs: vec!["ts-42".into()],
        }
    }

    #[test]
    fn intent_follows_the_campaign() {
        let mut account = clickmatch_config::Config::demo(&BTreeMap::new())
            .unwrap()
            .account;
        let config = config();
        assert_eq!(
            intent(&record(false), &account, &config),
            Intent::Ignore("no_postback_url")
        );
        account.campaigns.get_mut("demo").unwrap().postback_url = Some(TEMPLATE.into());
        assert_eq!(
            intent(&record(false), &account, &config),
            Intent::Fire {
                template: TEMPLATE.into()
            }
        );
        assert_eq!(intent(&record(true), &account, &config), Intent::SkipTest);
        let fire_tests = OutboundConfig {
            fire_test_conversions: true,
            ..config.clone()
        };
        assert!(matches!(
            intent(&record(true), &account, &fire_tests),
            Intent::Fire { .. }
        ));
        let mut other = record(false);
        other.conversion.campaign_id = "gone".into();
        assert_eq!(
            intent(&other, &account, &config),
            Intent::Ignore("unknown_campaign")
        );
    }

    #[test]
    fn plans_render_the_url_and_continue_a_replay() {
        let fresh = Delivery::plan(&record(false), TEMPLATE, None, Some(&subs()), 5).unwrap();
        assert_eq!(fresh.key, "cv:3");
        assert_eq!(
            fresh.url.as_deref(),
            Ok("https://ts.example/cb?clickid=ts-42&payout=2.5&tx=T1")
        );
        assert_eq!((fresh.next_attempt, fresh.last_attempt), (1, 5));

        let replay = Recorded {
            attempts: 2,
            delivered: false,
            finished: false,
        };
        let again =
            Delivery::plan(&record(false), TEMPLATE, Some(&replay), Some(&subs()), 5).unwrap();
        assert_eq!((again.next_attempt, again.last_attempt), (3, 5));
        let spent = Recorded {
            attempts: 7,
            ..replay
        };
        let last =
            Delivery::plan(&record(false), TEMPLATE, Some(&spent), Some(&subs()), 5).unwrap();
        assert_eq!((last.next_attempt, last.last_attempt), (8, 8));

        for done in [
            Recorded {
                attempts: 1,
                delivered: true,
                finished: true,
            },
            Recorded {
                attempts: 5,
                delivered: false,
                finished: true,
            },
        ] {
            assert_eq!(
                Delivery::plan(&record(false), TEMPLATE, Some(&done), Some(&subs()), 5),
                None
            );
        }

        let no_click = Delivery::plan(&record(false), TEMPLATE, None, None, 5).unwrap();
        assert!(no_click.url.unwrap_err().contains("click-1"));
        let no_subs_needed = Delivery::plan(
            &record(false),
            "https://ts.example/cb?c={click_id}&p={payout}",
            None,
            None,
            5,
        )
        .unwrap();
        assert_eq!(
            no_subs_needed.url.as_deref(),
            Ok("https://ts.example/cb?c=click-1&p=2.5")
        );

        // A conversion carrying its click's sub1 renders without the click's row, and with
        // the carried value when the row is there too (they are the same).
        let mut carrying = record(false);
        carrying.conversion.subs = CarriedSubs::of(&["ts-42".into()], SubSet::one(1).unwrap());
        assert!(!Delivery::needs_click(&carrying, TEMPLATE));
        assert!(Delivery::needs_click(&record(false), TEMPLATE));
        for click in [None, Some(&subs())] {
            let carried = Delivery::plan(&carrying, TEMPLATE, None, click, 5).unwrap();
            assert_eq!(
                carried.url.as_deref(),
                Ok("https://ts.example/cb?clickid=ts-42&payout=2.5&tx=T1")
            );
        }
        let with_source = "https://ts.example/cb?clickid={sub1}&src={source}";
        assert!(Delivery::needs_click(&carrying, with_source));
        assert!(Delivery::plan(&carrying, with_source, None, None, 5)
            .unwrap()
            .url
            .is_err());
    }

    #[test]
    fn statuses_and_states() {
        assert_eq!(classify_status(200), AttemptClass::Delivered);
        assert_eq!(classify_status(204), AttemptClass::Delivered);
        for status in [408, 425, 429, 500, 502, 503, 504] {
            assert_eq!(classify_status(status), AttemptClass::Retryable, "{status}");
        }
        for status in [301, 400, 401, 403, 404, 410, 422] {
            assert_eq!(classify_status(status), AttemptClass::Permanent, "{status}");
        }
        let delivery = Delivery::plan(&record(false), TEMPLATE, None, Some(&subs()), 3).unwrap();
        assert_eq!(
            state_after(&delivery, 1, AttemptClass::Retryable),
            DeliveryState::Retrying
        );
        assert_eq!(
            state_after(&delivery, 3, AttemptClass::Retryable),
            DeliveryState::Failed
        );
        assert_eq!(
            state_after(&delivery, 1, AttemptClass::Permanent),
            DeliveryState::Failed
        );
        let attempt = Attempt {
            status: 503,
            class: AttemptClass::Retryable,
            error: "HTTP 503".into(),
            started_ms: 1_700_000_002_500,
            duration: Duration::from_millis(42),
        };
        let row = attempt_row(&delivery, 2, &attempt);
        assert_eq!(row.idempotency_key, "cv:3");
        assert_eq!(row.conversion_version, 3);
        assert_eq!(row.attempt, 2);
        assert_eq!(row.state, "retrying");
        assert!(!row.is_final);
        assert_eq!(row.click_time, 1_700_000_000);
        assert_eq!(row.attempt_time, 1_700_000_002);
        assert_eq!(row.duration_ms, 42);
        let skipped = skipped_row(&record(true), 1_700_000_003_000);
        assert_eq!((skipped.attempt, skipped.state.as_str()), (0, "skipped"));
        assert!(skipped.is_final);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_bounded_jitter() {
        let config = OutboundConfig {
            retry_initial_ms: 100,
            retry_max_ms: 1_000,
            ..config()
        };
        let waits: Vec<u64> = (1..=6)
            .map(|r| backoff(&config, r, 0.0).as_millis() as u64)
            .collect();
        assert_eq!(waits, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(backoff(&config, 1, 1.0), Duration::from_millis(80));
        assert_eq!(backoff(&config, 40, 0.5), Duration::from_millis(900));
    }
}
