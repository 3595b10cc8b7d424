//! Whatever an operator passes in, the readers answer with rows or an error, never a panic.

use clickmatch_import::{parse_costs, parse_ecb_rates};
use proptest::prelude::*;

/// Starts that steer the bytes past format detection into each reader's deeper paths.
const PREFIXES: &[&str] = &[
    "",
    "<?xml version=\"1.0\"?><gesmes:Envelope><Cube><Cube time='2026-12-04'>",
    "<gesmes:Envelope><gesmes:Sender><gesmes:name>European Central Bank</gesmes:name>\
     </gesmes:Sender><Cube><Cube time=\"2026-12-04\"><Cube currency=\"USD\" rate=\"",
    "Date,USD,JPY,CYP,\n2026-12-04,",
    "Date, USD, \n04 December 2026, ",
    "date,campaign,amount,currency,sub1\n2026-12-04,x,",
    "hour,campaign,amount,currency\n2026-12-04 13:",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = parse_ecb_rates(&bytes, "fuzz");
        let _ = parse_costs(&bytes, "fuzz");
    }

    #[test]
    fn arbitrary_tails(prefix in 0..PREFIXES.len(), tail in "[ -~\\n\\t\u{e9}]{0,200}") {
        let text = format!("{}{tail}", PREFIXES[prefix]);
        let _ = parse_ecb_rates(text.as_bytes(), "fuzz");
        let _ = parse_costs(text.as_bytes(), "fuzz");
    }

    #[test]
    fn arbitrary_tails_of_good_files(cut in 0usize..2000, junk in any::<Vec<u8>>()) {
        for good in [
            include_str!("../../../tests/data/ecb/eurofxref-hist.xml"),
            include_str!("../../../tests/data/ecb/eurofxref-hist.csv"),
            include_str!("../../../tests/data/costs/hourly.csv"),
        ] {
            let mut bytes = good.as_bytes()[..cut.min(good.len())].to_vec();
            bytes.extend_from_slice(&junk);
            let _ = parse_ecb_rates(&bytes, "fuzz");
            let _ = parse_costs(&bytes, "fuzz");
        }
    }
}
