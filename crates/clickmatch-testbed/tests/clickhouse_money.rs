//! Money against a real ClickHouse (`$CLICKMATCH_TEST_CLICKHOUSE_URL`, or a local server):
//! conversions valued in the account currency with imported ECB rates, click and imported
//! costs, and the figures of the `figures_hourly` rollup next to the base tables, through
//! replays and a chargeback. Every expected number is worked out by hand below.
//!
//! The ECB sample `tests/data/ecb/eurofxref-hist.xml` has rates (units per 1 EUR) for
//! 2026-11-27 (Fri) and 2026-11-30 … 2026-12-04 (Mon–Fri); the ones used here:
//!
//! | day        | USD    | GBP     |
//! |------------|--------|---------|
//! | 2026-11-27 | 1.0519 | 0.82980 |
//! | 2026-12-01 | 1.0476 | 0.83190 |
//! | 2026-12-02 | 1.0498 | 0.83312 |
//! | 2026-12-03 | 1.0521 | 0.83240 |
//! | 2026-12-04 | 1.0543 | 0.83105 |
//!
//! The servers run in UTC; all times below are UTC.

mod common;

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::NaiveDate;
use clickmatch_clickhouse::money::{self, CostImport, CostRow, Figures, RateRow};
use clickmatch_clickhouse::{ClickHouseSettings, ClickHouseSink, RollupCheck};
use clickmatch_core::model::Campaign;
use clickmatch_core::records::{
    ClickCostRecord, ClickRecord, Conversion, Outcome, Unattributed, RECORD_VERSION,
};
use clickmatch_core::Reason;
use clickmatch_import::{parse_costs, parse_ecb_rates};
use common::TestDb;
use rust_decimal::Decimal;

const OFFER: &str = "7";

fn dec(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap()
}

/// Unix ms of 2026-`month`-`day` `hour`:`minute` UTC.
fn ms(month: u32, day: u32, hour: u32, minute: u32) -> u64 {
    let at = NaiveDate::from_ymd_opt(2026, month, day)
        .unwrap()
        .and_hms_opt(hour, minute, 0)
        .unwrap();
    u64::try_from(at.and_utc().timestamp_millis()).unwrap()
}

/// Unix seconds of the same, for the `*_since` readers.
fn secs(month: u32, day: u32, hour: u32, minute: u32) -> u32 {
    u32::try_from(ms(month, day, hour, minute) / 1000).unwrap()
}

/// As `clickmatch rates import` does (crates/clickmatch-cli/src/money.rs): parse, one row per
/// rate with its day as days since 1970-01-01, one insert. Returns the rows written.
async fn import_rates(
    settings: &ClickHouseSettings,
    bytes: &[u8],
    name: &str,
    imported_ms: u64,
) -> usize {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
    let file = parse_ecb_rates(bytes, name).unwrap();
    let rows: Vec<RateRow> = file
        .rates
        .iter()
        .map(|rate| RateRow {
            day: u16::try_from((rate.day - epoch).num_days()).unwrap(),
            currency: rate.currency.to_string(),
            per_eur: rate.per_eur,
            source: name.into(),
            imported_ms,
        })
        .collect();
    money::insert_rates(settings, &rows).await.unwrap();
    rows.len()
}

/// Account currency USD, rates from the sample file.
async fn usd_account_with_sample_rates(settings: &ClickHouseSettings) {
    money::write_account(settings, "USD", 7, 1_000)
        .await
        .unwrap();
    import_sample_rates(settings, 2_000).await;
}

async fn import_sample_rates(settings: &ClickHouseSettings, imported_ms: u64) -> usize {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/ecb/eurofxref-hist.xml"
    );
    let bytes = std::fs::read(path).unwrap();
    import_rates(settings, &bytes, "eurofxref-hist.xml", imported_ms).await
}

/// An ECB daily file with one day's USD and GBP rates.
fn daily_xml(day: &str, usd: &str, gbp: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<gesmes:Envelope \
         xmlns:gesmes=\"http://www.gesmes.org/xml/2002-08-01\" \
         xmlns=\"http://www.ecb.int/vocabulary/2002-08-01/eurofxref\">\n\
         <gesmes:subject>Reference rates</gesmes:subject>\n<gesmes:Sender>\
         <gesmes:name>European Central Bank</gesmes:name></gesmes:Sender>\n<Cube>\n\
         <Cube time='{day}'><Cube currency='USD' rate='{usd}'/>\
         <Cube currency='GBP' rate='{gbp}'/></Cube>\n</Cube>\n</gesmes:Envelope>\n"
    )
}

/// As `clickmatch costs import` does, with each campaign's id its name and its offer [`OFFER`]:
/// every line of the file shares one `import_id` and `imported_ms`.
async fn import_costs(settings: &ClickHouseSettings, csv: &str, file: &str, imported_ms: u64) {
    let import_id = format!("{file}@{imported_ms}");
    let rows: Vec<CostRow> = parse_costs(csv.as_bytes(), file)
        .unwrap()
        .into_iter()
        .map(|line| {
            let campaign = Campaign {
                id: line.campaign.clone(),
                offer_id: OFFER.into(),
                url_template: String::new(),
                source: String::new(),
                postback_url: None,
                cost: None,
            };
            let import = CostImport {
                file,
                import_id: &import_id,
                imported_ms,
            };
            CostRow::of_line(&line, &campaign, import)
        })
        .collect();
    money::insert_costs(settings, &rows).await.unwrap();
}

/// A click of camp-x (source google), costing `cost` = (amount, currency) if any.
fn click(id: &str, time_ms: u64, cost: Option<(&str, &str)>) -> ClickRecord {
    ClickRecord {
        v: RECORD_VERSION,
        click_id: id.into(),
        time_ms,
        campaign_id: "camp-x".into(),
        offer_id: OFFER.into(),
        source: "google".into(),
        subs: Vec::new(),
        ip: "203.0.113.9".into(),
        user_agent: "Mozilla/5.0".into(),
        country: "DE".into(),
        enrichment: Default::default(),
        is_test: false,
        foreign: false,
        cost: cost.map(|(amount, currency)| ClickCostRecord {
            amount: dec(amount),
            currency: currency.into(),
            raw: String::new(),
            issue: String::new(),
        }),
    }
}

/// Conversion `id` of campaign camp-x (source google) unless changed by the caller.
fn conversion(id: &str, status: &str, payout: &str, currency: &str, time_ms: u64) -> Conversion {
    Conversion {
        conversion_id: id.into(),
        click_id: format!("click-of-{id}"),
        click_time_ms: time_ms - 60_000,
        conversion_time_ms: time_ms,
        postback_id: format!("pb-{id}"),
        campaign_id: "camp-x".into(),
        offer_id: OFFER.into(),
        source: "google".into(),
        status: status.into(),
        payout: dec(payout),
        payout_raw: payout.into(),
        currency: currency.into(),
        version: 1,
        ..Conversion::example()
    }
}

fn unattributed(id: &str, reason: Reason, time_ms: u64) -> Unattributed {
    Unattributed {
        origin: Default::default(),
        postback_id: id.into(),
        received_time_ms: time_ms,
        route: "global".into(),
        reason,
        raw_click_id: "nope".into(),
        offer_id: OFFER.into(),
        payout: Decimal::ONE,
        currency: "USD".into(),
        remote_ip: "198.51.100.1".into(),
        raw_params: "[]".into(),
        hint: String::new(),
        is_test: false,
    }
}

/// `conversions_valued` by conversion: (payout_account, rate_missing, rate_day).
async fn valued(client: &clickhouse::Client) -> BTreeMap<String, (Decimal, u8, String)> {
    let rows: Vec<(String, String, u8, String)> = client
        .query(
            // Day 0 (no rate) prints as 0000-00-00 on 18.16 and 1970-01-01 on 26.9.
            "SELECT conversion_id, toString(payout_account), rate_missing, \
                if(toUInt16(rate_day) = 0, 'none', toString(rate_day)) \
             FROM conversions_valued ORDER BY conversion_id",
        )
        .fetch_all()
        .await
        .unwrap();
    rows.into_iter()
        .map(|(id, payout, missing, day)| (id, (dec(&payout), missing, day)))
        .collect()
}

/// Figures from the rollup and from the base tables are both `expected`, and every rollup
/// equals its base-table computation (`RollupCheck`).
async fn assert_figures(db: &TestDb, from_s: u32, expected: &Figures) {
    let rollup = money::figures_since(&db.settings, from_s).await.unwrap();
    assert_eq!(&rollup, expected, "figures_since (figures_hourly)");
    let base = money::figures_from_base_tables(&db.settings, from_s)
        .await
        .unwrap();
    assert_eq!(&base, expected, "figures_from_base_tables");
    let check = RollupCheck::read(&db.client()).await.unwrap();
    assert_eq!(check.figures, check.figures_base);
    assert_eq!(check.latest, check.latest_base);
    assert_eq!(check.ledger, check.ledger_base);
    assert_eq!(check.unattributed, check.unattributed_base);
    assert!(check.agrees());
}

/// Merges drop replaced conversion versions, which `RollupCheck`'s ledger side needs.
async fn stop_merges(client: &clickhouse::Client, table: &str) {
    client
        .query(&format!("SYSTEM STOP MERGES {table}"))
        .execute()
        .await
        .unwrap();
}

#[tokio::test]
async fn conversions_are_valued_in_the_account_currency() {
    let db = TestDb::migrated().await;
    let sink = ClickHouseSink::new(&db.settings).unwrap();
    let client = db.client();
    money::write_account(&db.settings, "USD", 7, 1_000)
        .await
        .unwrap();

    // The sample holds 7 days: 2026-11-30 … 2026-12-04 with 8 currencies each plus EUR (5 × 9
    // = 45), 2026-11-27 without HUF (7 + EUR = 8), 2007-12-28 with 10 currencies of which CYP
    // is withdrawn and skipped (9 + EUR = 10): 45 + 8 + 10 = 63 rates.
    assert_eq!(import_sample_rates(&db.settings, 2_000).await, 63);
    let count_final = || async {
        client
            .query("SELECT count() FROM exchange_rates FINAL")
            .fetch_one::<u64>()
            .await
            .unwrap()
    };
    assert_eq!(count_final().await, 63);

    sink.write(
        &[],
        &[
            // 10 EUR on 2026-12-02: 10 × 1.0498 = 10.498 USD.
            conversion("eur", "approved", "10", "EUR", ms(12, 2, 10, 0)),
            // 20 GBP on 2026-12-04, through EUR: 20 × 1.0543 / 0.83105 = 20 × 1.268636… =
            // 25.3727212… → 25.372721 USD.
            conversion("gbp", "approved", "20", "GBP", ms(12, 4, 9, 30)),
            // Sunday 2026-11-29 has no rate: Friday's serves, 5 × 1.0519 = 5.2595 USD.
            conversion("weekend", "approved", "5", "EUR", ms(11, 29, 18, 0)),
            // Monday 2026-12-14 is 10 days after the last rate (2026-12-04), more than 7.
            conversion("late", "approved", "8", "EUR", ms(12, 14, 10, 0)),
            // The account's own currency needs no rate, even on a day no rate serves.
            conversion("usd-early", "approved", "3.5", "USD", ms(12, 1, 8, 0)),
            conversion("usd-late", "pending", "3.5", "USD", ms(12, 25, 12, 0)),
            // Through a Float64 and `toDecimal64`, which truncates, these lost a millionth
            // (2.009999; 0.97 × 1.0498 = 1.018306 became 1.018305).
            conversion("usd-cents", "approved", "2.01", "USD", ms(12, 1, 9, 0)),
            conversion("eur-cents", "approved", "0.97", "EUR", ms(12, 2, 11, 0)),
        ]
        .map(Outcome::Attributed),
    )
    .await
    .unwrap();

    let rows = valued(&client).await;
    let row = |payout: &str, missing: u8, day: &str| (dec(payout), missing, day.to_owned());
    assert_eq!(rows["eur"], row("10.498", 0, "2026-12-02"));
    assert_eq!(rows["gbp"], row("25.372721", 0, "2026-12-04"));
    assert_eq!(rows["weekend"], row("5.2595", 0, "2026-11-27"));
    assert_eq!(rows["late"], row("0", 1, "none"));
    assert_eq!(rows["usd-early"], row("3.5", 0, "2026-12-01"));
    assert_eq!(rows["usd-late"], row("3.5", 0, "2026-12-25"));
    assert_eq!(rows["usd-cents"], row("2.01", 0, "2026-12-01"));
    assert_eq!(rows["eur-cents"], row("1.018306", 0, "2026-12-02"));

    // The rate for 2026-12-14 arrives: the same row is valued, 8 × 1.0600 = 8.48 USD.
    let daily = daily_xml("2026-12-14", "1.0600", "0.83000");
    // USD, GBP and EUR itself.
    assert_eq!(
        import_rates(&db.settings, daily.as_bytes(), "eurofxref-daily.xml", 3_000).await,
        3
    );
    assert_eq!(valued(&client).await["late"], row("8.48", 0, "2026-12-14"));

    // Importing the sample again rewrites the same rows: nothing changes.
    assert_eq!(import_sample_rates(&db.settings, 4_000).await, 63);
    assert_eq!(count_final().await, 63 + 3);
    let usd_rows = valued(&client).await;
    assert_eq!(usd_rows["eur"], row("10.498", 0, "2026-12-02"));
    assert_eq!(usd_rows["gbp"], row("25.372721", 0, "2026-12-04"));

    // The account switches to EUR (a newer settings row wins): euros are worth themselves,
    // dollars are divided by USD per EUR, and USD now needs a rate.
    money::write_account(&db.settings, "EUR", 7, 5_000)
        .await
        .unwrap();
    let rows = valued(&client).await;
    // 3.5 / 1.0476 (2026-12-01) = 3.34096983… → 3.34097 EUR.
    assert_eq!(rows["usd-early"], row("3.34097", 0, "2026-12-01"));
    // 2026-12-25 is 11 days after the last rate (2026-12-14): no rate for USD.
    assert_eq!(rows["usd-late"], row("0", 1, "none"));
    assert_eq!(rows["eur"], row("10", 0, "2026-12-02"));
    // 20 GBP / 0.83105 = 24.0659406… → 24.065941 EUR.
    assert_eq!(rows["gbp"], row("24.065941", 0, "2026-12-04"));
    assert_eq!(rows["weekend"], row("5", 0, "2026-11-29"));
    drop(sink);
    db.drop_database().await;
}

#[tokio::test]
async fn click_costs_and_the_latest_cost_import_count() {
    let db = TestDb::migrated().await;
    let sink = ClickHouseSink::new(&db.settings).unwrap();
    usd_account_with_sample_rates(&db.settings).await;

    let clicks = [
        click("k1", ms(12, 2, 10, 5), Some(("0.25", "USD"))),
        click("k2", ms(12, 2, 10, 20), Some(("0.25", "USD"))),
        click("k3", ms(12, 2, 11, 10), Some(("0.5", "EUR"))),
    ];
    sink.write(&clicks, &[]).await.unwrap();

    // Import A: camp-x and camp-y on 2026-12-02. Import B, later: camp-x on the same day with
    // other lines. B replaces A's camp-x lines (google 100, meta 50); A's camp-y line stays.
    import_costs(
        &db.settings,
        "date,campaign,source,amount,currency\n\
         2026-12-02,camp-x,google,100,USD\n\
         2026-12-02,camp-x,meta,50,USD\n\
         2026-12-02,camp-y,google,20,EUR\n",
        "a.csv",
        10_000,
    )
    .await;
    import_costs(
        &db.settings,
        "date,campaign,source,amount,currency\n\
         2026-12-02,camp-x,google,80,USD\n\
         2026-12-02,camp-x,display,5,USD\n",
        "b.csv",
        20_000,
    )
    .await;

    let current: Vec<(String, String)> = db
        .client()
        .query(
            "SELECT concat(campaign_id, ' ', source, ' ', currency, ' ', file), toString(amount) \
             FROM costs_current ORDER BY campaign_id, source",
        )
        .fetch_all()
        .await
        .unwrap();
    let current: Vec<(&str, Decimal)> = current.iter().map(|(l, a)| (l.as_str(), dec(a))).collect();
    assert_eq!(
        current,
        vec![
            ("camp-x display USD b.csv", dec("5")),
            ("camp-x google USD b.csv", dec("80")),
            ("camp-y google EUR a.csv", dec("20")),
        ]
    );

    // Cost on 2026-12-02 (USD 1.0498 per EUR):
    //   clicks   0.25 + 0.25 + 0.5 EUR × 1.0498 (0.5249)  =   1.0249
    //   import B 80 + 5                                   =  85
    //   import A camp-y: 20 EUR × 1.0498                  =  20.996
    //                                                       107.0209
    let expected = Figures {
        account_currency: "USD".into(),
        clicks: 3,
        cost: dec("107.0209"),
        ..Figures::default()
    };
    assert_figures(&db, secs(12, 2, 0, 0), &expected).await;
    assert_eq!(expected.profit(), dec("-107.0209"));
    assert_eq!(expected.roi(), Some(dec("-1")));
    drop(sink);
    db.drop_database().await;
}

/// The figures data set (account USD, sample rates):
///
/// clicks (offer 7)                      cost
///   k1 12-02 10:05 camp-x google        0.25 USD                     0.25
///   k2 12-02 10:20 camp-x google        0.25 USD                     0.25
///   k3 12-02 11:10 camp-x google        0.40 EUR × 1.0498           0.41992
///   k4 12-03 09:00 camp-y meta          none                         0
/// conversions                           payout                     revenue
///   c1 approved 12-02 10:30 camp-x      20 EUR × 1.0498             20.996
///   c2 pending  12-02 11:30 camp-x      10 USD                      10
///   c3 hold     12-03 12:00 camp-y      5 GBP × 1.0521 / 0.83240     6.319678 (6.3196780…)
///   c4 declined 12-02 12:00 camp-x      8 USD                        not counted
///   c5 reversed 12-03 13:00 camp-y      7 USD                        not counted
///   c6 approved 12-14 10:00 camp-x      4 EUR, no rate (> 7 days)    0, unvalued
/// unattributed: u1 unknown click ID 12-02, u2 missing click ID 12-03, u3 duplicate (not counted)
/// imported costs: 12-02 camp-x google 20 USD (20), 12-03 camp-y meta 30 EUR × 1.0521 (31.563)
fn figures_data() -> (Vec<ClickRecord>, Vec<Outcome>) {
    let clicks = vec![
        click("k1", ms(12, 2, 10, 5), Some(("0.25", "USD"))),
        click("k2", ms(12, 2, 10, 20), Some(("0.25", "USD"))),
        click("k3", ms(12, 2, 11, 10), Some(("0.40", "EUR"))),
        ClickRecord {
            campaign_id: "camp-y".into(),
            source: "meta".into(),
            ..click("k4", ms(12, 3, 9, 0), None)
        },
    ];
    let camp_y = |c: Conversion| Conversion {
        campaign_id: "camp-y".into(),
        source: "meta".into(),
        ..c
    };
    let mut outcomes: Vec<Outcome> = [
        conversion("c1", "approved", "20", "EUR", ms(12, 2, 10, 30)),
        conversion("c2", "pending", "10", "USD", ms(12, 2, 11, 30)),
        camp_y(conversion("c3", "hold", "5", "GBP", ms(12, 3, 12, 0))),
        conversion("c4", "declined", "8", "USD", ms(12, 2, 12, 0)),
        camp_y(conversion("c5", "reversed", "7", "USD", ms(12, 3, 13, 0))),
        conversion("c6", "approved", "4", "EUR", ms(12, 14, 10, 0)),
    ]
    .into_iter()
    .map(Outcome::Attributed)
    .collect();
    outcomes.extend(
        [
            unattributed("u1", Reason::UnknownClickId, ms(12, 2, 10, 40)),
            unattributed("u2", Reason::MissingClickId, ms(12, 3, 8, 0)),
            unattributed("u3", Reason::Duplicate, ms(12, 2, 10, 45)),
        ]
        .map(Outcome::Unattributed),
    );
    (clicks, outcomes)
}

#[tokio::test]
async fn figures_agree_through_replays_and_a_chargeback() {
    let db = TestDb::migrated().await;
    let sink = ClickHouseSink::new(&db.settings).unwrap();
    let client = db.client();
    stop_merges(&client, "conversions").await;
    usd_account_with_sample_rates(&db.settings).await;

    let (clicks, outcomes) = figures_data();
    sink.write(&clicks, &outcomes).await.unwrap();
    import_costs(
        &db.settings,
        "date,campaign,source,amount,currency\n\
         2026-12-02,camp-x,google,20,USD\n\
         2026-12-03,camp-y,meta,30,EUR\n",
        "costs.csv",
        10_000,
    )
    .await;

    // revenue = 20.996 + 10 + 6.319678 + 0                      = 37.315678
    // cost    = 0.25 + 0.25 + 0.41992 + 20 + 31.563             = 52.48292
    // profit  = 37.315678 − 52.48292                            = −15.167242
    // roi     = −15.167242 / 52.48292 = −0.288993… → −0.2890
    let from_s = secs(12, 2, 0, 0);
    let expected = Figures {
        account_currency: "USD".into(),
        clicks: 4,
        conversions: 4, // c1, c2, c3, c6
        revenue: dec("37.315678"),
        cost: dec("52.48292"),
        unattributed: 2,
        unvalued: 1, // c6
    };
    assert_eq!(expected.profit(), dec("-15.167242"));
    assert_eq!(expected.roi(), Some(dec("-0.2890")));
    assert_figures(&db, from_s, &expected).await;

    // A joiner that crashed before committing its offsets writes everything again, twice.
    for _ in 0..2 {
        sink.write(&clicks, &outcomes).await.unwrap();
    }
    let raw: u64 = client
        .query("SELECT count() FROM conversions")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(raw, 3 * 6, "the replays did write");
    assert_figures(&db, from_s, &expected).await;

    // Chargeback: c1 (approved, 20 EUR valued 20.996 USD) reversed a day later.
    let chargeback = Outcome::Attributed(Conversion {
        version: 2,
        postback_id: "pb-c1-chargeback".into(),
        ..conversion("c1", "reversed", "20", "EUR", ms(12, 3, 15, 0))
    });
    sink.write(&[], std::slice::from_ref(&chargeback))
        .await
        .unwrap();
    // revenue = 37.315678 − 20.996                              = 16.319678
    // profit  = 16.319678 − 52.48292                            = −36.163242
    // roi     = −36.163242 / 52.48292 = −0.689047… → −0.6890
    let charged_back = Figures {
        conversions: 3,
        revenue: dec("16.319678"),
        ..expected.clone()
    };
    assert_eq!(charged_back.profit(), dec("-36.163242"));
    assert_eq!(charged_back.roi(), Some(dec("-0.6890")));
    assert_figures(&db, from_s, &charged_back).await;

    // The chargeback replayed, and the whole first batch once more: still the same.
    sink.write(&[], std::slice::from_ref(&chargeback))
        .await
        .unwrap();
    sink.write(&clicks, &outcomes).await.unwrap();
    assert_figures(&db, from_s, &charged_back).await;
    drop(sink);
    db.drop_database().await;
}

#[tokio::test]
async fn test_traffic_is_left_out_of_the_figures() {
    let db = TestDb::migrated().await;
    let sink = ClickHouseSink::new(&db.settings).unwrap();
    let client = db.client();
    stop_merges(&client, "conversions").await;
    usd_account_with_sample_rates(&db.settings).await;

    let test_click = ClickRecord {
        is_test: true,
        ..click("t1", ms(12, 2, 10, 10), Some(("1", "USD")))
    };
    let test_conversion = Conversion {
        is_test: true,
        ..conversion("t-conv", "approved", "50", "USD", ms(12, 2, 10, 30))
    };
    let test_postback = Unattributed {
        origin: Default::default(),
        is_test: true,
        ..unattributed("t-un", Reason::UnknownClickId, ms(12, 2, 10, 40))
    };
    sink.write(
        &[
            click("r1", ms(12, 2, 10, 0), Some(("0.25", "USD"))),
            test_click,
        ],
        &[
            Outcome::Attributed(conversion(
                "r-conv",
                "approved",
                "10",
                "USD",
                ms(12, 2, 10, 20),
            )),
            Outcome::Attributed(test_conversion),
            Outcome::Unattributed(test_postback),
        ],
    )
    .await
    .unwrap();

    // Only r1 (0.25 USD) and r-conv (10 USD): profit 9.75, roi 9.75 / 0.25 = 39.
    let expected = Figures {
        account_currency: "USD".into(),
        clicks: 1,
        conversions: 1,
        revenue: dec("10"),
        cost: dec("0.25"),
        ..Figures::default()
    };
    assert_eq!(expected.roi(), Some(dec("39")));
    assert_figures(&db, secs(12, 2, 0, 0), &expected).await;

    // The test traffic is there, in cells of its own.
    let (clicks, conversions, revenue, cost, unattributed): (u64, u64, String, String, u64) =
        client
            .query(
                "SELECT toUInt64(sum(clicks)), toUInt64(sum(conversions)), \
                 toString(sum(revenue)), toString(sum(cost)), toUInt64(sum(unattributed)) \
                 FROM figures_hourly WHERE is_test = 1",
            )
            .fetch_one()
            .await
            .unwrap();
    assert_eq!(
        (clicks, conversions, dec(&revenue), dec(&cost), unattributed),
        (1, 1, dec("50"), dec("1"), 1)
    );
    drop(sink);
    db.drop_database().await;
}
