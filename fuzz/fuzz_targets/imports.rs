//! The files an operator imports (ECB rate files, cost CSVs): any bytes give rows or an error
//! naming a position, never a panic; every rate read is positive and every cost amount fits
//! the `Decimal(18, 6)` columns.
#![no_main]

use clickmatch_import::{parse_costs, parse_ecb_rates};
use libfuzzer_sys::fuzz_target;
use rust_decimal::Decimal;

fuzz_target!(|data: &[u8]| {
    if let Ok(file) = parse_ecb_rates(data, "fuzz.xml") {
        assert!(!file.rates.is_empty());
        assert!(file.rates.iter().all(|r| r.per_eur > Decimal::ZERO));
    }
    if let Ok(rows) = parse_costs(data, "fuzz.csv") {
        let limit = Decimal::from(1_000_000_000_000i64);
        assert!(rows
            .iter()
            .all(|r| !r.amount.is_sign_negative() && r.amount < limit && r.amount.scale() <= 6));
    }
});
