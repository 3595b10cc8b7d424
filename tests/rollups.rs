//! The hourly rollups (migrations 0003 and 0004) against the base tables on the dev pipeline's
//! demo traffic: the same totals, also after a replay of every row and after a status update;
//! and the money figures against what the demo sent, computed by hand.

use std::collections::BTreeMap;

use clickmatch_cli::demo;
use clickmatch_clickhouse::money::{figures_from_base_tables, figures_since, Figures};
use clickmatch_clickhouse::{
    ClickHouseSink, ClickRow, ConversionRow, RollupCheck, UnattributedRow,
};
use clickmatch_e2e::TestPipeline;
use reqwest::StatusCode;
use rust_decimal::Decimal;

// Scalar subqueries are Nullable on current ClickHouse: a u64 needs assumeNotNull.
const ROWS: &str = "SELECT assumeNotNull((SELECT count() FROM conversions FINAL) \
                    + (SELECT count() FROM unattributed FINAL))";

fn by_reason(check: &RollupCheck) -> BTreeMap<String, usize> {
    let mut totals: BTreeMap<String, usize> = BTreeMap::new();
    for (key, n) in &check.unattributed {
        *totals.entry(key.reason.clone()).or_default() += *n as usize;
    }
    totals
}

/// The money figures of the rollup, checked equal to those of the base tables.
async fn figures(t: &TestPipeline) -> Figures {
    let rollup = figures_since(&t.settings, 0).await.unwrap();
    let base = figures_from_base_tables(&t.settings, 0).await.unwrap();
    assert_eq!(rollup, base, "figures_hourly against the base tables");
    rollup
}

/// The rollups once they agree with the base tables (at most 10 s). A view's part is committed
/// just after its base table's part within the same INSERT, so a reader can briefly see the
/// base row without its rollup.
async fn settled(client: &clickhouse::Client) -> RollupCheck {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let check = RollupCheck::read(client).await.unwrap();
        if check.agrees() || std::time::Instant::now() > deadline {
            return check;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollups_equal_the_base_tables_on_demo_traffic_after_replays_and_status_updates() {
    let t = TestPipeline::start(&[]).await.unwrap();
    // Merges would drop replaced versions from `conversions`, and with them the base-table
    // side of the ledger (the rollup keeps it).
    t.client()
        .query("SYSTEM STOP MERGES conversions")
        .execute()
        .await
        .unwrap();
    clickmatch_cli::money::write_account(&t.settings, &t.config.account)
        .await
        .unwrap();
    clickmatch_cli::money::import_demo_rates(&t.settings, clickmatch_cli::money::today_utc())
        .await
        .unwrap();
    let traffic = demo::run(&t.base, &t.config.account).await.unwrap();
    let total = traffic.postbacks as u64;
    assert_eq!(t.wait_count(ROWS, total).await.unwrap(), total);
    let client = t.client();

    // 1. The demo's postbacks, every reason of the design, through HTTP, Kafka and the joiner.
    let demo_check = settled(&client).await;
    assert!(demo_check.agrees(), "{demo_check:#?}");
    let mut expected = traffic.expected.clone();
    let attributed = expected.remove(demo::ATTRIBUTED).unwrap();
    assert_eq!(by_reason(&demo_check), expected);
    assert_eq!(demo_check.conversions_total() as usize, attributed);
    assert_eq!(
        demo_check.latest, demo_check.ledger,
        "one version per conversion"
    );
    // The money, by hand: what the demo booked (a fixed CPC, the source's per-click cost with
    // its decimal comma and literal `{cost}`, payouts in USD and EUR, the `{payout}` default),
    // valued at the demo's rates.
    let money = figures(&t).await;
    assert_eq!(money.account_currency, "USD");
    assert_eq!(money.clicks, traffic.clicks as u64);
    assert_eq!(money.conversions as usize, attributed);
    assert_eq!(money.revenue, traffic.money.revenue, "{money:?}");
    assert_eq!(money.cost, traffic.money.cost, "{money:?}");
    assert_eq!(
        money.revenue,
        Decimal::new(52_705, 3),
        "the README's figure"
    );
    assert_eq!(money.cost, Decimal::new(218, 2));
    assert_eq!(money.unvalued, 0);
    let unattributed_counted = expected.values().sum::<usize>() - expected["duplicate"];
    assert_eq!(money.unattributed as usize, unattributed_counted);

    // 2. A replay: every row the joiner wrote, written again twice, as a joiner restarted after
    //    a crash before its Kafka commit would.
    let clicks: Vec<ClickRow> = client
        .query("SELECT ?fields FROM clicks")
        .fetch_all()
        .await
        .unwrap();
    let conversions: Vec<ConversionRow> = client
        .query("SELECT ?fields FROM conversions")
        .fetch_all()
        .await
        .unwrap();
    let unattributed: Vec<UnattributedRow> = client
        .query("SELECT ?fields FROM unattributed")
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(conversions.len(), attributed);
    let sink = ClickHouseSink::new(&t.settings).unwrap();
    for _ in 0..2 {
        sink.write_rows(&clicks, &conversions, &unattributed)
            .await
            .unwrap();
    }
    let raw: u64 = client
        .query("SELECT count() FROM conversions")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(raw as usize, 3 * attributed, "the replay did write");
    let replayed = RollupCheck::read(&client).await.unwrap();
    assert!(replayed.agrees(), "{replayed:#?}");
    assert_eq!(replayed, demo_check, "a replay changes no figure");
    assert_eq!(figures(&t).await, money, "a replay changes no money figure");

    // 3. A status update over HTTP: the network charges back one TUNE conversion (same click,
    //    status=chargeback, payout 0). A new version of the same conversion, not a new one.
    let charged: ConversionRow = conversions
        .iter()
        .find(|c| c.route == "global" && c.offer_id == "1" && c.status == "approved")
        .cloned()
        .expect("a TUNE conversion");
    let charged_value: String = client
        .query("SELECT toString(payout_account) FROM conversions_valued WHERE conversion_id = ?")
        .bind(&charged.conversion_id)
        .fetch_one()
        .await
        .unwrap();
    let charged_value: Decimal = charged_value.parse().unwrap();
    assert!(charged_value > Decimal::ZERO);
    let status = demo::postback_get(
        &demo::http_client(),
        &t.base,
        "/postback",
        &[
            ("cid", &charged.click_id),
            ("payout", "0"),
            ("offer", "1"),
            ("status", "chargeback"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(status, StatusCode::OK);
    let sql = "SELECT count() FROM conversions FINAL WHERE status = 'chargeback'";
    assert_eq!(t.wait_count(sql, 1).await.unwrap(), 1);
    let updated = settled(&client).await;
    assert!(updated.agrees(), "{updated:#?}");
    assert_eq!(updated.conversions_total() as usize, attributed);
    let chargebacks: Vec<_> = updated
        .latest
        .iter()
        .filter(|(k, _)| k.status == "chargeback")
        .collect();
    assert_eq!(chargebacks.len(), 1, "{chargebacks:?}");
    assert_eq!(chargebacks[0].1.conversions, 1);
    // "0.000000" on 18.16, "0" on current releases.
    assert_eq!(
        chargebacks[0].1.payout.parse::<Decimal>().unwrap(),
        Decimal::ZERO
    );
    // The ledger keeps the approval as well: one more version than conversions.
    let versions: u64 = updated.ledger.values().map(|f| f.versions).sum();
    assert_eq!(versions as usize, attributed + 1);
    // A chargeback is not revenue: exactly that conversion's value leaves it.
    let charged_back = figures(&t).await;
    assert_eq!(charged_back.conversions, money.conversions - 1);
    assert_eq!(charged_back.revenue, money.revenue - charged_value);
    assert_eq!(charged_back.cost, money.cost);

    // 4. The update replayed as well.
    let rows: Vec<ConversionRow> = client
        .query("SELECT ?fields FROM conversions WHERE status = 'chargeback'")
        .fetch_all()
        .await
        .unwrap();
    sink.write_rows(&[], &rows, &[]).await.unwrap();
    assert_eq!(RollupCheck::read(&client).await.unwrap(), updated);
    assert_eq!(figures(&t).await, charged_back);
    t.cleanup().await.unwrap();
}
