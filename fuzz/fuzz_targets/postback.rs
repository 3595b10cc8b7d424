//! Postbacks end to end through the pure code: query and body parsing (within limits), literal
//! macro detection, value shapes, salvage, classification and diagnosis against the demo
//! account. Nothing may panic, and parsing stays within its limits.
//!
//! Input: `query \n content-type \n body` (missing parts are empty).
#![no_main]

use std::sync::OnceLock;

use clickmatch_core::model::Account;
use clickmatch_core::params::{self, ParamLimits};
use clickmatch_core::records::{IngestVerdict, PostbackRecord, RECORD_VERSION};
use clickmatch_core::{classify, macros, salvage};
use libfuzzer_sys::fuzz_target;

fn account() -> &'static Account {
    static ACCOUNT: OnceLock<Account> = OnceLock::new();
    ACCOUNT.get_or_init(|| {
        clickmatch_config::Config::demo(&Default::default())
            .expect("demo config")
            .account
    })
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |b| *b == b'\n');
    let query = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let content_type = std::str::from_utf8(parts.next().unwrap_or_default()).ok();
    let body = parts.next().unwrap_or_default();
    let limits = ParamLimits {
        max_params: 50,
        max_name_len: 128,
        max_value_len: 1024,
    };
    let Ok(mut list) = params::parse_query(&query, &limits) else {
        return;
    };
    if params::append_body(&mut list, content_type, body, &limits).is_err() {
        return;
    }
    assert!(list.len() <= limits.max_params);
    for (name, value) in &list {
        assert!(name.len() <= limits.max_name_len);
        assert!(value.len() <= limits.max_value_len || name == params::RAW_BODY_PARAM);
        let _ = macros::find_macro(value);
        let _ = macros::shape(value);
    }
    let account = account();
    for route in [None, Some("lead"), Some("nope")] {
        let record = PostbackRecord {
            v: RECORD_VERSION,
            postback_id: "fuzz".into(),
            received_ms: 1_700_000_000_000,
            method: "GET".into(),
            route: route.map(String::from),
            params: list.clone(),
            remote_ip: "192.0.2.1".into(),
            verdict: IngestVerdict::Accepted,
            key: String::new(),
            origin: Default::default(),
        };
        let _ = classify::classify(account, &record);
        let _ = classify::diagnose(account, &record).sentence();
        let _ = classify::partition_key(account, &record);
        if let Some(r) = account.route(route) {
            let value = classify::param(&list, &r.params.click_id);
            let _ = salvage::salvage_located(value, &list, &r.params.click_id, &account.signer);
        }
    }
});
