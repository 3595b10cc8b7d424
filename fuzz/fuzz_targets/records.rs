//! Kafka record decoding: any bytes decode to a record or an error (the joiner counts and
//! skips those); a decoded record encodes to bytes that decode to the same record.
#![no_main]

use clickmatch_core::records::{ClickRecord, OutboundRecord, PostbackRecord};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(click) = ClickRecord::decode(data) {
        assert_eq!(ClickRecord::decode(&click.encode()).ok(), Some(click));
    }
    if let Ok(postback) = PostbackRecord::decode(data) {
        let again = PostbackRecord::decode(&postback.encode()).expect("re-decode");
        assert_eq!(again, postback);
        let _ = postback.params_json();
        let _ = postback.route_label();
    }
    if let Ok(outbound) = OutboundRecord::decode(data) {
        let _ = outbound.idempotency_key();
        let _ = OutboundRecord::decode(&outbound.encode()).expect("re-decode");
    }
});
