//! Configuration: any TOML text, with and without environment overrides, is either a valid
//! configuration or an error naming the file and key; never a panic.
#![no_main]

use std::collections::BTreeMap;

use clickmatch_config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Config::from_toml(text, "fuzz.toml", &BTreeMap::new());
    // The same text as the value of an override of every section's string keys.
    let mut env = BTreeMap::new();
    for key in [
        "CLICKMATCH_INGEST_TRUSTED_PROXIES",
        "CLICKMATCH_INGEST_SPOOL_FSYNC",
        "CLICKMATCH_ACCOUNT_SECRET",
        "CLICKMATCH_CLICKHOUSE_DATABASE",
        "CLICKMATCH_KAFKA_CLICKS_TOPIC",
    ] {
        env.clear();
        env.insert(key.to_string(), text.to_string());
        let _ = Config::demo(&env);
    }
});
