//! The postback debugger end to end: traffic through a running pipeline, then the `/debug` pages
//! over HTTP (admin token) and in headless Chromium (Debian's `chromium`): a screenshot that is
//! a real page-sized PNG, and the rendered DOM holding the expected rows. Payouts the network
//! did not substitute (`{payout}` left literal) show their payout issue, sent text and hint,
//! on the conversion and, for an unattributed postback, as the booking it would get.
//!
//! Chromium is required: without it this test fails and says how to install it (scripts/setup
//! does), it is never skipped. `CLICKMATCH_TEST_SCREENSHOT_DIR=DIR` keeps the screenshots.

use std::path::Path;

use clickmatch_cli::demo;
use clickmatch_cli::pipeline::Roles;
use clickmatch_core::money::MoneyIssue;
use clickmatch_e2e::browser::{basic, chromium, png_size, run_chromium};
use clickmatch_e2e::traffic_source::TrafficSource;
use clickmatch_e2e::TestPipeline;
use reqwest::StatusCode;

/// The demo configuration's admin token.
const TOKEN: &str = "demo-admin-token-change-me";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_debugger_shows_postbacks_and_a_clicks_story_in_chromium() {
    let chromium = chromium(); // fail first and clearly when it is missing
    assert!(chromium.exists());
    let ts = TrafficSource::start(|_, nth| if nth == 0 { 503 } else { 200 }).await;
    let extra = format!(
        "\n[[campaigns]]\nid = \"ts\"\noffer = \"1\"\nsource = \"ts-push\"\n\
         url = \"https://net.example/aff_c?offer_id=1&aff_sub={{click_id}}\"\n\
         postback_url = \"{}/cb?clickid={{sub1}}&payout={{payout}}\"\n",
        ts.base()
    );
    let t = TestPipeline::start_custom(
        &extra,
        &[
            ("CLICKMATCH_OUTBOUND_RETRY_INITIAL_MS", "50"),
            ("CLICKMATCH_OUTBOUND_RETRY_MAX_MS", "100"),
        ],
        4,
        Roles::ALL,
    )
    .await
    .unwrap();
    let client = demo::http_client();
    let click_id = demo::click(&client, &t.base, "ts", "ts-click-7")
        .await
        .unwrap();
    for query in [
        // Attributed.
        vec![
            ("cid", click_id.as_str()),
            ("payout", "3.25"),
            ("txid", "T-1"),
        ],
        // A literal macro (its payout too), and markup that must come out escaped.
        vec![
            ("cid", "{sub1}"),
            ("payout", "{payout}"),
            ("note", "<script>alert(1)</script>"),
        ],
        // Another event, the click ID with junk glued on: attributed, flagged as repaired.
        vec![
            ("cid", &format!("{click_id}&")),
            ("payout", "1"),
            ("event", "lead"),
        ],
        // Attributed, but the network left its payout macro: payout_macro.
        vec![
            ("cid", click_id.as_str()),
            ("payout", "{payout}"),
            ("event", "upsell"),
            ("txid", "T-macro"),
        ],
    ] {
        let status = demo::postback_get(&client, &t.base, "/postback", &query)
            .await
            .unwrap();
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(
        t.wait_count(
            "SELECT count() FROM (SELECT postback_id FROM conversions FINAL UNION ALL SELECT postback_id FROM unattributed FINAL)",
            4
        )
        .await
        .unwrap(),
        4
    );
    assert_eq!(
        t.wait_count(
            "SELECT count() FROM outbound_deliveries FINAL WHERE state = 'delivered'",
            3
        )
        .await
        .unwrap(),
        3
    );
    // The joiner flagged the literal macro, and only that conversion.
    let (issue, raw): (String, String) = t
        .client()
        .query("SELECT payout_issue, payout_raw FROM conversions FINAL WHERE txid = 'T-macro'")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!((issue.as_str(), raw.as_str()), ("payout_macro", "{payout}"));
    assert_eq!(
        t.wait_count(
            "SELECT count() FROM conversions FINAL WHERE payout_issue != ''",
            1
        )
        .await
        .unwrap(),
        1
    );

    // Over HTTP: the token is required, as Bearer or as the Basic password.
    let page = format!("{}/debug", t.base);
    let response = client.get(&page).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    let wrong = client
        .get(&page)
        .header("authorization", basic("admin", "not-the-token"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let bearer = client.get(&page).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(bearer.status(), StatusCode::OK);
    assert!(bearer.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
    let html = bearer.text().await.unwrap();
    assert!(!html.contains("<script>alert(1)"), "raw markup leaked");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    let basic_ok = client
        .get(&page)
        .header("authorization", basic("anyone", TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(basic_ok.status(), StatusCode::OK);

    // In Chromium, credentials in the URL answer the Basic challenge.
    let port = t.base.rsplit(':').next().unwrap();
    let browser_base = format!("http://admin:{TOKEN}@127.0.0.1:{port}");
    let shots = tempfile::tempdir().unwrap();
    let shot = shots.path().join("debug.png");
    run_chromium(
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,2000".to_string(),
        ],
        &format!("{browser_base}/debug"),
    )
    .await;
    let png = std::fs::read(&shot).expect("chromium wrote the screenshot");
    assert_eq!(png_size(&png), (1280, 2000));
    assert!(
        png.len() > 20_000,
        "a rendered page compresses to more than {} bytes",
        png.len()
    );

    let dom = run_chromium(
        &["--dump-dom".to_string()],
        &format!("{browser_base}/debug"),
    )
    .await;
    for expected in [
        "Outcomes per route and offer",
        "route <code>global</code>",
        "unsubstituted_macro",
        "click ID repaired",
        &click_id,
        "cid={sub1}",
        "note=&lt;script&gt;alert(1)&lt;/script&gt;",
    ] {
        assert!(
            dom.contains(expected),
            "the debugger DOM lacks {expected:?}:\n{dom}"
        );
    }
    assert_eq!(dom.matches("<tr class=\"attributed\">").count(), 3, "{dom}");
    assert_eq!(
        dom.matches("<tr class=\"unattributed\">").count(),
        1,
        "{dom}"
    );
    assert!(!dom.contains("<script>"), "{dom}");

    // Payout issues: the conversion with `{payout}` shows the code, the text sent and the hint;
    // the clean one none; the unattributed postback the booking it would get; the summary the
    // count. (Chromium's DOM escapes only `&`, `<`, `>`: the hint is compared by a part
    // without quotes.)
    let hint_part = "did not substitute its payout macro";
    assert!(MoneyIssue::PayoutMacro.hint().contains(hint_part));
    let row = |page: &str, needle: &str| -> String {
        page.split("<tr")
            .find(|row| row.contains(needle))
            .unwrap_or_else(|| panic!("no row with {needle:?}:\n{page}"))
            .to_string()
    };
    let flagged = row(&dom, "txid T-macro");
    for expected in [
        "<code class=\"payout-issue\">payout_macro</code>",
        "(sent <code>{payout}</code>)",
        hint_part,
    ] {
        assert!(flagged.contains(expected), "{expected:?}:\n{flagged}");
    }
    let clean = row(&dom, "txid T-1 ");
    assert!(!clean.contains("payout issue"), "{clean}");
    assert!(!clean.contains("payout_macro"), "{clean}");
    let unattributed = row(&dom, "class=\"unattributed\"");
    for expected in [
        "payout if attributed: ",
        "<code class=\"payout-issue\">payout_macro</code>",
        hint_part,
    ] {
        assert!(
            unattributed.contains(expected),
            "{expected:?}:\n{unattributed}"
        );
    }
    // Offer 1's summary row (the unattributed postback, naming no offer, has its own).
    let summary = row(&dom, "<td>global</td><td><code>1</code></td>");
    assert!(summary.contains("1 payout_macro"), "{summary}");

    let story = run_chromium(
        &["--dump-dom".to_string()],
        &format!("{browser_base}/debug/click/{click_id}"),
    )
    .await;
    let flagged = row(&story, "T-macro");
    assert!(flagged.contains("payout_macro"), "{flagged}");
    assert!(flagged.contains(hint_part), "{flagged}");
    assert!(!row(&story, "T-1<").contains("payout issue"), "{story}");
    for expected in [
        "genuine clickmatch click ID",
        "sub1=ts-click-7",
        "ts-push",
        "id=\"conversions\"",
        "id=\"deliveries\"",
        "delivered (final)",
        "retrying",
        "HTTP 503",
        &format!("{}/cb?clickid=ts-click-7&amp;payout=3.25", ts.base()),
    ] {
        assert!(
            story.contains(expected),
            "the click story lacks {expected:?}:\n{story}"
        );
    }
    let story_shot = shots.path().join("story.png");
    run_chromium(
        &[
            format!("--screenshot={}", story_shot.display()),
            "--window-size=1280,2000".to_string(),
        ],
        &format!("{browser_base}/debug/click/{click_id}"),
    )
    .await;
    assert_eq!(png_size(&std::fs::read(&story_shot).unwrap()), (1280, 2000));

    // Kept for a look when asked (CI artifacts, reviews).
    if let Ok(keep) = std::env::var("CLICKMATCH_TEST_SCREENSHOT_DIR") {
        std::fs::create_dir_all(&keep).unwrap();
        std::fs::copy(&shot, Path::new(&keep).join("debug.png")).unwrap();
        std::fs::copy(&story_shot, Path::new(&keep).join("click-story.png")).unwrap();
    }

    // A click nobody made.
    let unknown = client
        .get(format!("{}/debug/click/01aaaaaaaaaaaaaaaaaaaaaaaa", t.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::OK);
    let text = unknown.text().await.unwrap();
    assert!(text.contains("No click recorded"), "{text}");
    t.cleanup().await.unwrap();
}
