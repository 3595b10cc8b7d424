//! The wall clock, for the crates that do I/O. Nothing else in this crate reads it: its logic
//! takes the time as an argument, so that every decision replays deterministically.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in Unix milliseconds (0 before 1970: a clock that far off fails loudly elsewhere).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
