//! Reports against a real ClickHouse (`$CLICKMATCH_TEST_CLICKHOUSE_URL`, or a local server):
//! every report equals the same figures folded in Rust from the base tables read under `FINAL`
//! (`clicks FINAL`, `conversions_valued` = `conversions FINAL` valued, `unattributed FINAL`,
//! `costs_current`), with the dimension-per-fact rules of docs/reports.md written out again
//! here, and time buckets computed by chrono-tz. Then again after a replay of every row (merges
//! stopped, so the duplicates stay in the tables) and after a status change. Hostile filter
//! values are bound literals: they match nothing, or exactly the row that holds them.

mod common;
mod report_base;

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{TimeZone, Utc};
use clickmatch_clickhouse::carry::{carry_subs, Carried};
use clickmatch_clickhouse::money::{self, CostRow};
use clickmatch_clickhouse::report::{self, Grouping, ReportParams, ReportRequest};
use clickmatch_clickhouse::{ClickHouseSink, RollupCheck};
use clickmatch_core::records::{
    ClickCostRecord, ClickRecord, Conversion, Enrichment, Outcome, Unattributed, RECORD_VERSION,
};
use clickmatch_core::subs::{CarriedSubs, SubSet};
use clickmatch_core::Reason;
use common::TestDb;
use report_base::{base, fold, Folded};
use rust_decimal::Decimal;

fn dec(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap()
}

/// Unix ms of 2026-12-`day` `hour`:`minute` UTC.
fn ms(day: u32, hour: u32, minute: u32) -> u64 {
    u64::try_from(
        Utc.with_ymd_and_hms(2026, 12, day, hour, minute, 0)
            .unwrap()
            .timestamp_millis(),
    )
    .unwrap()
}

const QUOTED: &str = "it's \"q\" \\ ok";

struct ClickSpec {
    id: &'static str,
    time_ms: u64,
    campaign: &'static str,
    sub1: &'static str,
    country: &'static str,
    os: &'static str,
    /// `0.05`, or `0.10 EUR` in another currency than the account's (USD).
    cost: &'static str,
}

fn click(spec: &ClickSpec) -> ClickRecord {
    let offer = if spec.campaign == "push-de" {
        "o1"
    } else {
        "o2"
    };
    ClickRecord {
        v: RECORD_VERSION,
        click_id: spec.id.into(),
        time_ms: spec.time_ms,
        campaign_id: spec.campaign.into(),
        offer_id: offer.into(),
        source: "propeller".into(),
        subs: vec![spec.sub1.into(), "creative-1".into()],
        ip: "203.0.113.9".into(),
        user_agent: "Mozilla/5.0".into(),
        country: spec.country.into(),
        enrichment: Enrichment {
            device_type: if spec.os == "iOS" {
                "mobile"
            } else {
                "desktop"
            }
            .into(),
            os: spec.os.into(),
            browser: "Chrome".into(),
            ..Enrichment::default()
        },
        is_test: false,
        foreign: false,
        cost: Some(ClickCostRecord {
            amount: dec(spec.cost.split(' ').next().unwrap()),
            currency: spec.cost.split(' ').nth(1).unwrap_or("USD").into(),
            raw: String::new(),
            issue: String::new(),
        }),
    }
}

fn clicks() -> Vec<ClickRecord> {
    let spec = |id, time_ms, campaign, sub1, country, os, cost| ClickSpec {
        id,
        time_ms,
        campaign,
        sub1,
        country,
        os,
        cost,
    };
    [
        // 18:29 UTC is 23:59 on Dec 1 in Kolkata (+5:30); 18:31 is 00:01 on Dec 2.
        spec(
            "c1",
            ms(1, 18, 29),
            "push-de",
            "zone-1",
            "DE",
            "iOS",
            "0.05",
        ),
        spec(
            "c2",
            ms(1, 18, 31),
            "push-de",
            "zone-1",
            "DE",
            "Android",
            "0.05",
        ),
        spec("c3", ms(1, 18, 45), "push-de", QUOTED, "IN", "iOS", "0.07"),
        spec(
            "c4",
            ms(2, 9, 10),
            "native-in",
            "zone-9",
            "IN",
            "Windows",
            "0.10",
        ),
        spec(
            "c5",
            ms(2, 9, 50),
            "native-in",
            "zone-9",
            "",
            "Windows",
            "0.10 EUR",
        ),
        spec(
            "c6",
            ms(3, 0, 5),
            "native-in",
            "zone-1",
            "IN",
            "iOS",
            "0.03",
        ),
        // Outside the range of the reports below.
        spec("c7", ms(9, 12, 0), "push-de", "zone-1", "DE", "iOS", "0.05"),
    ]
    .iter()
    .map(click)
    .collect()
}

fn conversion(
    id: &str,
    click: &ClickRecord,
    time_ms: u64,
    status: &str,
    payout: &str,
    currency: &str,
) -> Conversion {
    Conversion {
        conversion_id: id.into(),
        click_id: click.click_id.clone(),
        click_time_ms: click.time_ms,
        conversion_time_ms: time_ms,
        postback_id: format!("pb-{id}"),
        campaign_id: click.campaign_id.clone(),
        offer_id: click.offer_id.clone(),
        source: click.source.clone(),
        route: if currency == "EUR" {
            "affise"
        } else {
            "global"
        }
        .into(),
        event: "sale".into(),
        status: status.into(),
        payout: dec(payout),
        payout_raw: payout.into(),
        currency: currency.into(),
        country: click.country.clone(),
        device_type: click.enrichment.device_type.to_string(),
        os: click.enrichment.os.to_string(),
        browser: click.enrichment.browser.to_string(),
        version: time_ms,
        origin: Default::default(),
        // As the joiner writes them by default; `conversions` takes them off one.
        subs: CarriedSubs::of(&click.subs, SubSet::parse(["sub1", "sub2"]).unwrap()),
        ..Conversion::example()
    }
}

/// v5, on Dec 3, carries no sub (its click was kept by a joiner that carried none): a report
/// that reaches Dec 3 and uses a sub reads it from the clicks; one that ends before reads
/// them from the conversion rows.
fn conversions(clicks: &[ClickRecord]) -> Vec<Conversion> {
    let mut v5 = conversion("v5", &clicks[5], ms(3, 1, 0), "hold", "1.5", "USD");
    v5.subs = CarriedSubs::default();
    vec![
        conversion("v1", &clicks[0], ms(1, 18, 40), "approved", "2.5", "USD"),
        conversion("v2", &clicks[2], ms(1, 19, 0), "pending", "10", "EUR"),
        conversion("v3", &clicks[3], ms(2, 11, 0), "approved", "4.35", "USD"),
        conversion("v4", &clicks[4], ms(2, 12, 0), "declined", "9", "USD"),
        v5,
    ]
}

fn unattributed(id: &str, time_ms: u64, route: &str, reason: Reason) -> Unattributed {
    Unattributed {
        postback_id: id.into(),
        received_time_ms: time_ms,
        route: route.into(),
        reason,
        raw_click_id: "{clickid}".into(),
        offer_id: "o2".into(),
        payout: Decimal::ONE,
        currency: "USD".into(),
        remote_ip: "198.51.100.1".into(),
        raw_params: "[]".into(),
        hint: String::new(),
        is_test: false,
        origin: Default::default(),
    }
}

fn outcomes(clicks: &[ClickRecord]) -> Vec<Outcome> {
    conversions(clicks)
        .into_iter()
        .map(Outcome::Attributed)
        .chain([
            Outcome::Unattributed(unattributed(
                "u1",
                ms(2, 10, 0),
                "affise",
                Reason::UnsubstitutedMacro,
            )),
            Outcome::Unattributed(unattributed(
                "u2",
                ms(2, 10, 5),
                "global",
                Reason::Duplicate,
            )),
        ])
        .collect()
}

/// Dec 1 to 3 unless `pairs` say `to`.
fn request(pairs: &[(&str, &str)]) -> ReportRequest {
    let mut all: Vec<(&str, &str)> = vec![("from", "2026-12-01"), ("limit", "10000")];
    if !pairs.iter().any(|(name, _)| *name == "to") {
        all.push(("to", "2026-12-03"));
    }
    all.extend_from_slice(pairs);
    let now = Utc.with_ymd_and_hms(2026, 12, 20, 0, 0, 0).unwrap();
    ReportParams::from_pairs(all).unwrap().check(now).unwrap()
}

/// The requests every state is checked with.
fn requests() -> Vec<ReportRequest> {
    [
        &[("group_by", "campaign,country"), ("tz", "Asia/Kolkata")][..],
        &[("group_by", "day,hour"), ("tz", "Asia/Kolkata")],
        &[("group_by", "day"), ("tz", "America/New_York")],
        &[("group_by", "sub1,os,browser")],
        &[("group_by", "route,status,event")],
        &[("group_by", "network,offer,source,device_type")],
        &[
            ("group_by", "campaign"),
            ("country", "IN"),
            ("country", "DE"),
        ],
        &[("group_by", "campaign"), ("sub1", QUOTED)],
        &[
            ("group_by", "campaign"),
            ("os", "iOS"),
            ("tz", "Asia/Kathmandu"),
        ],
        &[("group_by", "country"), ("status", "approved")],
        // Until Dec 2 every conversion carries sub1 and sub2: read from their rows.
        &[("group_by", "campaign,sub1,country"), ("to", "2026-12-02")],
        &[
            ("group_by", "campaign"),
            ("sub1", QUOTED),
            ("to", "2026-12-02"),
        ],
        // To Dec 3, v5 does not: read from the clicks.
        &[("group_by", "campaign,sub1,country")],
    ]
    .iter()
    .map(|pairs| request(pairs))
    .collect()
}

const NETWORKS: [(&str, &str); 1] = [("o1", "tune")];

async fn report_of(db: &TestDb, request: &ReportRequest) -> Folded {
    let networks: Vec<(String, String)> = NETWORKS
        .iter()
        .map(|(o, n)| (o.to_string(), n.to_string()))
        .collect();
    let made = report::run(&db.settings, request.clone(), &networks)
        .await
        .unwrap_or_else(|e| panic!("{request:?}: {e}"));
    // Several dimensions group by a hash of the keys: the same report grouped by the values,
    // and with every hash colliding (detected, then grouped by the values).
    for grouping in [Grouping::Values, Grouping::AllColliding] {
        let other = report::run_grouping(&db.settings, request.clone(), &networks, grouping)
            .await
            .unwrap_or_else(|e| panic!("{request:?}: {e}"));
        assert_eq!(made, other, "{grouping:?}: {request:?}");
    }
    assert_eq!(made.rows.len(), made.rows_total);
    let folded: Folded = made
        .rows
        .iter()
        .map(|r| {
            let f = &r.figures;
            (
                r.keys.clone(),
                (f.clicks, f.conversions, f.revenue, f.cost, f.unattributed),
            )
        })
        .collect();
    let mut totals = (0, 0, Decimal::ZERO, Decimal::ZERO, 0);
    for cell in folded.values() {
        totals.0 += cell.0;
        totals.1 += cell.1;
        totals.2 += cell.2;
        totals.3 += cell.3;
        totals.4 += cell.4;
    }
    let t = &made.totals;
    assert_eq!(
        (t.clicks, t.conversions, t.revenue, t.cost, t.unattributed),
        totals
    );
    folded
}

/// Every request's report equals the fold of the base tables; returns the reports.
async fn assert_reports_match_base(db: &TestDb, label: &str) -> Vec<Folded> {
    let base = base(db).await;
    let networks: BTreeMap<&str, &str> = NETWORKS.into_iter().collect();
    let mut reports = Vec::new();
    for request in requests() {
        let made = report_of(db, &request).await;
        let expected = fold(&base, &request, &networks);
        assert_eq!(made, expected, "{label}: {request:?}");
        reports.push(made);
    }
    reports
}

fn key(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn reports_equal_the_base_tables_through_replays_and_status_changes() {
    reports_stay_exact(TestDb::migrated().await, "").await;
}

/// The same through the cluster layout (`Distributed` tables over `_local` ones, on the test
/// server's cluster of one): the report's subqueries read distributed tables too.
#[tokio::test]
async fn reports_equal_the_base_tables_in_the_cluster_layout() {
    let Some(db) = TestDb::migrated_as_cluster().await else {
        panic!("the test server has no cluster of one: the testbed's servers all have it");
    };
    reports_stay_exact(db, "_local").await;
}

/// Writes the scenario, a replay and status changes and checks every report against the base
/// tables each time. `local` is the suffix of the tables that hold the rows (merges stopped).
async fn reports_stay_exact(db: TestDb, local: &str) {
    let client = db.client();
    money::write_account(&db.settings, "USD", 7, 1_000)
        .await
        .unwrap();
    // EUR: 1.25 USD on every day of December.
    for day in 1..=20u32 {
        let day = u16::try_from(
            (chrono::NaiveDate::from_ymd_opt(2026, 12, day).unwrap()
                - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap())
            .num_days(),
        )
        .unwrap();
        money::insert_rates(
            &db.settings,
            &[
                money::RateRow {
                    day,
                    currency: "USD".into(),
                    per_eur: dec("1.25"),
                    source: "test".into(),
                    imported_ms: 1,
                },
                money::RateRow {
                    day,
                    currency: "EUR".into(),
                    per_eur: Decimal::ONE,
                    source: "test".into(),
                    imported_ms: 1,
                },
            ],
        )
        .await
        .unwrap();
    }
    let cost_line = CostRow {
        period_start: u32::try_from(ms(2, 0, 0) / 1000).unwrap(),
        period_hours: 24,
        campaign_id: "native-in".into(),
        offer_id: "o2".into(),
        source: "propeller".into(),
        sub1: "zone-9".into(),
        sub2: String::new(),
        sub3: String::new(),
        sub4: String::new(),
        sub5: String::new(),
        sub6: String::new(),
        sub7: String::new(),
        sub8: String::new(),
        sub9: String::new(),
        sub10: String::new(),
        amount: dec("12.5"),
        currency: "USD".into(),
        file: "spend.csv".into(),
        line: 2,
        import_id: "spend".into(),
        imported_ms: 5,
    };
    let eur_line = CostRow {
        sub1: "zone-1".into(),
        amount: dec("2"),
        currency: "EUR".into(),
        line: 3,
        ..cost_line.clone()
    };
    money::insert_costs(&db.settings, &[cost_line, eur_line])
        .await
        .unwrap();
    for table in ["clicks", "conversions", "unattributed"] {
        client
            .query(&format!("SYSTEM STOP MERGES {table}{local}"))
            .execute()
            .await
            .unwrap();
    }
    let sink = ClickHouseSink::new(&db.settings).unwrap();
    let clicks = clicks();
    sink.write(&clicks, &outcomes(&clicks)).await.unwrap();

    let first = assert_reports_match_base(&db, "first write").await;
    // By hand, so that the reference is not wrong the same way: campaign × country in
    // Kolkata. c1-c3 (push-de) and c4-c6 (native-in) are in range; v4 is declined; v2 is
    // 10 EUR = 12.5 USD; the unattributed postback has no campaign; the cost lines no country.
    let by_country = &first[0];
    assert_eq!(
        by_country[&key(&["push-de", "DE"])],
        (2, 1, dec("2.5"), dec("0.10"), 0)
    );
    assert_eq!(
        by_country[&key(&["push-de", "IN"])],
        (1, 1, dec("12.5"), dec("0.07"), 0)
    );
    assert_eq!(
        by_country[&key(&["native-in", "IN"])],
        (2, 2, dec("5.85"), dec("0.13"), 0)
    );
    assert_eq!(
        by_country[&key(&["native-in", ""])],
        (1, 0, dec("0"), dec("15.125"), 0),
        "c5's 0.10 EUR, 12.50 USD and 2 EUR of imported spend"
    );
    assert_eq!(by_country[&key(&["", ""])], (0, 0, dec("0"), dec("0"), 1));
    // Day × hour in Kolkata: 18:29 UTC is Dec 1 23:00, 18:31 and 18:45 are Dec 2 00:00.
    let by_hour = &first[1];
    assert_eq!(by_hour[&key(&["2026-12-01", "2026-12-01 23:00"])].0, 1);
    assert_eq!(by_hour[&key(&["2026-12-02", "2026-12-02 00:00"])].0, 2);
    // The quoted sub1 is matched as the literal it is.
    assert_eq!(
        first[7][&key(&["push-de"])],
        (1, 1, dec("12.5"), dec("0.07"), 0)
    );

    // A replay: every row written again; merges are stopped, so the tables hold duplicates.
    sink.write(&clicks, &outcomes(&clicks)).await.unwrap();
    let rows: u64 = client
        .query("SELECT count() FROM clicks")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(rows, 2 * clicks.len() as u64, "the duplicates are there");
    let replayed = assert_reports_match_base(&db, "after a replay").await;
    assert_eq!(replayed, first, "a replay changes no figure");

    // A status change: v1 is reversed (a newer version), v5 approved later that night.
    let mut changed = conversions(&clicks);
    changed[0].status = "reversed".into();
    changed[0].conversion_time_ms = ms(2, 20, 0);
    changed[0].version = ms(2, 20, 0);
    changed[4].status = "approved".into();
    changed[4].conversion_time_ms = ms(3, 2, 0);
    changed[4].version = ms(3, 2, 0);
    let updates: Vec<Outcome> = [changed[0].clone(), changed[4].clone()]
        .into_iter()
        .map(Outcome::Attributed)
        .collect();
    sink.write(&[], &updates).await.unwrap();
    let after = assert_reports_match_base(&db, "after a status change").await;
    assert_eq!(
        after[0][&key(&["push-de", "DE"])],
        (2, 0, dec("0"), dec("0.10"), 0),
        "the reversed conversion is no longer revenue"
    );
    let statuses = &after[4];
    assert!(!statuses
        .keys()
        .any(|k| k[1] == "reversed" || k[1] == "declined"));

    // v5 was written before conversions carried subs: given its click's, every report stays
    // the same, and all latest versions carry sub1 and sub2 (so those reports use the rows).
    let wanted = SubSet::parse(["sub1", "sub2"]).unwrap();
    let count = |sql: &'static str| {
        let query = client.query(sql);
        async move { query.fetch_one::<u64>().await.unwrap() }
    };
    let lacking = "SELECT count() FROM conversions FINAL WHERE bitAnd(subs_carried, 3) != 3";
    let latest = "SELECT count() FROM conversions FINAL";
    let conversions_before = count(latest).await;
    assert_eq!(count(lacking).await, 1, "v5");
    let reaching_dec3 = request(&[("group_by", "campaign,sub1,country")]);
    let on_rows = || report::subs_on_rows(&db.settings, &reaching_dec3);
    assert!(!on_rows().await.unwrap(), "v5 lacks sub1");
    let everything = (0, u32::MAX);
    let dry = carry_subs(&db.settings, wanted, everything.0, everything.1, true)
        .await
        .unwrap();
    let found = Carried {
        lacking: 1,
        written: 0,
        still_lacking: 1,
        days: 1,
    };
    assert_eq!(dry, found);
    let done = carry_subs(&db.settings, wanted, everything.0, everything.1, false)
        .await
        .unwrap();
    let wrote = Carried {
        written: 1,
        still_lacking: 0,
        ..found
    };
    assert_eq!(done, wrote);
    assert_eq!(count(lacking).await, 0);
    assert_eq!(
        count(latest).await,
        conversions_before,
        "a copy, not a conversion more"
    );
    assert!(
        on_rows().await.unwrap(),
        "v5's old rows are not merged away (merges are stopped), but its latest version carries"
    );
    let (sub1, carried): (String, u16) = client
        .query("SELECT sub1, subs_carried FROM conversions FINAL WHERE conversion_id = 'v5'")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!((sub1, carried), (clicks[5].subs[0].clone(), 3));
    let status: String = client
        .query("SELECT status FROM conversions FINAL WHERE conversion_id = 'v5'")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(status, "approved", "the latest version was copied");
    let given = assert_reports_match_base(&db, "after carrying subs").await;
    assert_eq!(given, after, "carrying subs changes no figure");
    if local.is_empty() {
        let rollups = RollupCheck::read(&client).await.unwrap();
        assert!(rollups.agrees(), "{rollups:#?}");
    }
    let again = carry_subs(&db.settings, wanted, everything.0, everything.1, false)
        .await
        .unwrap();
    assert_eq!(again, Carried::default(), "nothing left to carry");

    // Hostile filter values are literals: they match nothing and break nothing.
    for hostile in [
        "' OR 1=1 --",
        "x'); DROP TABLE clicks; --",
        "\\' OR ''='",
        "zone-1' OR sub1 != '",
        "日本語 🙂",
    ] {
        for dimension in ["sub1", "country", "campaign", "os", "route"] {
            let made = report_of(
                &db,
                &request(&[("group_by", "campaign"), (dimension, hostile)]),
            )
            .await;
            assert!(made.is_empty(), "{dimension}={hostile:?} matched {made:?}");
        }
    }
    let still: u64 = client
        .query("SELECT count() FROM clicks FINAL")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(still, clicks.len() as u64);

    drop(sink);
    db.drop_database().await;
}
