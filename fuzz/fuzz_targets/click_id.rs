//! Click IDs: parsing any text never panics; a parsed ID prints back to a text that parses to
//! the same ID; verification and the embedded time never panic.
#![no_main]

use clickmatch_core::{ClickId, ClickIdSigner};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let signer = ClickIdSigner::new(
        b"fuzz-secret-0123456789".to_vec(),
        vec![b"fuzz-previous-secret".to_vec()],
    );
    if let Ok(id) = ClickId::parse(text) {
        let printed = id.to_string();
        assert_eq!(ClickId::parse(&printed).ok(), Some(id), "round trip of {text:?}");
        let _ = signer.verify(id);
        let _ = id.time_ms();
    }
    // Minting from fuzzed numbers verifies with the same signer.
    if data.len() >= 16 {
        let time = u64::from_le_bytes(data[0..8].try_into().unwrap()) & ((1 << 48) - 1);
        let random = u64::from_le_bytes(data[8..16].try_into().unwrap());
        let id = signer.mint(time, random);
        assert!(signer.verify(id));
        assert_eq!(ClickId::parse(&id.to_string()).ok(), Some(id));
    }
});
