//! Demo traffic for `clickmatch dev`: real HTTP requests to ingest, clicks with redirects and
//! postbacks in several network dialects, including the broken ones operators meet every day.
//! Each postback's expected outcome is recorded, so the report can check ClickHouse against it.

mod visitors;

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use clickmatch_core::clock::now_ms;
use clickmatch_core::model::{Account, DAY_MS};
use clickmatch_core::money::{Currency, MoneyIssue};
use clickmatch_core::reason::hints;
use clickmatch_core::salvage::hints as repairs;
use clickmatch_core::ClickId;
use reqwest::StatusCode;
use rust_decimal::Decimal;

pub use visitors::{enrichment_for_dev, visitor, Visitor, DEMO_USER_AGENTS};

/// Key of expected outcomes: `attributed` or an unattributed reason.
pub const ATTRIBUTED: &str = "attributed";

/// What the demo sent and what it expects ClickHouse to hold.
#[derive(Debug, Default, Clone)]
pub struct DemoTraffic {
    pub clicks: usize,
    /// Postbacks ingest recorded (answered 200, 403 or 404).
    pub postbacks: usize,
    /// Expected rows by outcome: `attributed` or a reason.
    pub expected: BTreeMap<String, usize>,
    /// Expected rows by outcome and hint code: (`attributed`, repair hint or `""`) or
    /// (reason, hint).
    pub expected_hints: BTreeMap<(String, String), usize>,
    /// One line per postback: dialect, what was wrong, expected outcome.
    pub log: Vec<String>,
    /// What the demo's money adds up to.
    pub money: DemoMoney,
}

/// The revenue and cost the demo expects, in the account currency, valued with
/// [`DEMO_RATES`].
#[derive(Debug, Default, Clone, PartialEq)]
pub struct DemoMoney {
    pub revenue: Decimal,
    pub cost: Decimal,
    /// Conversions expected with a payout issue, by code.
    pub payout_issues: BTreeMap<String, u64>,
    /// Clicks expected with a cost issue.
    pub cost_issues: u64,
}

/// Exchange rates `dev` imports for the demo, dated the day it runs (units per EUR): sample
/// values in the ECB's format, not the ECB's figures. `clickmatch rates import
/// eurofxref-daily.xml` loads real ones.
pub const DEMO_RATES: &[(&str, &str)] = &[
    ("USD", "1.0500"),
    ("GBP", "0.8300"),
    ("CHF", "0.9300"),
    ("PLN", "4.2700"),
];

/// [`DEMO_RATES`] as the ECB's daily XML file for `day` (`YYYY-MM-DD`).
pub fn demo_rates_xml(day: &str) -> String {
    let cubes: String = DEMO_RATES
        .iter()
        .map(|(currency, rate)| format!("\n\t\t\t<Cube currency='{currency}' rate='{rate}'/>"))
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <gesmes:Envelope xmlns:gesmes=\"http://www.gesmes.org/xml/2002-08-01\" \
         xmlns=\"http://www.ecb.int/vocabulary/2002-08-01/eurofxref\">\n\
         \t<gesmes:subject>Reference rates</gesmes:subject>\n\
         \t<gesmes:Sender>\n\t\t<gesmes:name>European Central Bank</gesmes:name>\n\t</gesmes:Sender>\n\
         \t<Cube>\n\t\t<Cube time='{day}'>{cubes}\n\t\t</Cube>\n\t</Cube>\n\
         </gesmes:Envelope>\n"
    )
}

/// What one unit of `currency` is worth in `account` under [`DEMO_RATES`].
fn demo_factor(currency: Currency, account: Currency) -> Decimal {
    let per_eur = |c: Currency| -> Decimal {
        if c == Currency::EUR {
            return Decimal::ONE;
        }
        DEMO_RATES
            .iter()
            .find(|(code, _)| *code == c.as_str())
            .and_then(|(_, rate)| rate.parse().ok())
            .expect("the demo uses currencies of DEMO_RATES")
    };
    per_eur(account) / per_eur(currency)
}

impl DemoMoney {
    /// A conversion booked at `payout` in `currency`, with `issue` when it is not as sent.
    fn conversion(
        &mut self,
        account: Currency,
        payout: &str,
        currency: Currency,
        issue: Option<MoneyIssue>,
    ) {
        let payout: Decimal = payout.parse().expect("a decimal");
        self.revenue += (payout * demo_factor(currency, account)).round_dp(6);
        if let Some(issue) = issue {
            *self
                .payout_issues
                .entry(issue.code().to_string())
                .or_default() += 1;
        }
    }

    /// A click booked at `cost` in the account currency.
    fn click(&mut self, cost: &str, issue: bool) {
        self.cost += cost.parse::<Decimal>().expect("a decimal");
        self.cost_issues += u64::from(issue);
    }
}

impl DemoTraffic {
    fn expect(&mut self, outcome: &str, hint: &str, line: String) {
        *self.expected.entry(outcome.to_string()).or_default() += 1;
        *self
            .expected_hints
            .entry((outcome.to_string(), hint.to_string()))
            .or_default() += 1;
        self.postbacks += 1;
        let shown = match (outcome, hint) {
            (_, "") => outcome.to_string(),
            (ATTRIBUTED, hint) => format!("{outcome}, repaired: {hint}"),
            (_, hint) => format!("{outcome} [{hint}]"),
        };
        self.log.push(format!("{line:<70} → {shown}"));
    }

    /// Expected repairs by hint code.
    pub fn expected_repairs(&self) -> BTreeMap<String, usize> {
        self.expected_hints
            .iter()
            .filter(|((outcome, hint), _)| outcome == ATTRIBUTED && !hint.is_empty())
            .map(|((_, hint), n)| (hint.clone(), *n))
            .collect()
    }
}

/// An HTTP client that does not follow redirects (the offer URL is not ours to visit).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(15))
        .build()
        .expect("HTTP client")
}

/// Sends a click to `/c/{campaign}` and returns the click ID found in the redirect.
pub async fn click(
    client: &reqwest::Client,
    base: &str,
    campaign: &str,
    sub1: &str,
) -> anyhow::Result<String> {
    click_with(client, base, campaign, &[("sub1", sub1)]).await
}

/// [`click`] with any query parameters (subs, the traffic source's `cost`).
pub async fn click_with(
    client: &reqwest::Client,
    base: &str,
    campaign: &str,
    query: &[(&str, &str)],
) -> anyhow::Result<String> {
    click_as(client, base, campaign, query, None).await
}

/// [`click_with`] from `visitor`: its address in `X-Forwarded-For` (believed when ingest
/// trusts the sender as a proxy) and its user agent.
pub async fn click_as(
    client: &reqwest::Client,
    base: &str,
    campaign: &str,
    query: &[(&str, &str)],
    visitor: Option<&Visitor>,
) -> anyhow::Result<String> {
    let mut request = client.get(format!("{base}/c/{campaign}")).query(query);
    if let Some(visitor) = visitor {
        request = request
            .header("x-forwarded-for", visitor.ip.to_string())
            .header(reqwest::header::USER_AGENT, visitor.user_agent);
    }
    let response = request.send().await.context("click request")?;
    if response.status() != StatusCode::FOUND {
        bail!("/c/{campaign} answered {}", response.status());
    }
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .context("redirect without Location")?;
    click_id_in(location).with_context(|| format!("no click ID in redirect {location}"))
}

/// The clickmatch click ID among a URL's query values.
pub fn click_id_in(url: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes())
        .map(|(_, v)| v.into_owned())
        .find(|v| ClickId::parse(v).is_ok())
}

/// Sends a GET to `path_and_query` exactly as written (no encoding added): the way a network
/// with a broken template sends it.
pub async fn get_raw(
    client: &reqwest::Client,
    base: &str,
    path_and_query: &str,
) -> anyhow::Result<StatusCode> {
    let response = client
        .get(format!("{base}{path_and_query}"))
        .send()
        .await
        .context("postback request")?;
    Ok(response.status())
}

/// Sends a GET postback and returns the HTTP status.
pub async fn postback_get(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    query: &[(&str, &str)],
) -> anyhow::Result<StatusCode> {
    let response = client
        .get(format!("{base}{path}"))
        .query(query)
        .send()
        .await
        .context("postback request")?;
    Ok(response.status())
}

fn recorded(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::OK | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND
    )
}

/// Runs the demo scenario against the ingest at `base` configured with `account` (the
/// built-in demo configuration).
pub async fn run(base: &str, account: &Account) -> anyhow::Result<DemoTraffic> {
    let client = http_client();
    let mut traffic = DemoTraffic::default();
    let lead_token = account
        .routes
        .get("lead")
        .and_then(|r| r.token.as_ref())
        .map(|t| t.expose().to_string())
        .context("the demo needs the demo configuration's `lead` route with a token")?;

    let account_currency = account.currency;
    let mut money = DemoMoney::default();
    // `demo`: a fixed CPC of 0.05. `demo-lead`: the traffic source puts each click's cost in
    // the URL (`cost_param = "cost"`), once with a decimal comma, once unsubstituted (the
    // campaign's fixed 0.10 is booked and the click flagged).
    let mut sale_clicks = Vec::new();
    // Visitors from five countries on desktops, phones and tablets (see [`visitors`]).
    for n in 0..20 {
        let sub1 = format!("pub-{}", n % 4);
        let query = [("sub1", sub1.as_str())];
        sale_clicks.push(click_as(&client, base, "demo", &query, Some(&visitor(n))).await?);
        money.click("0.05", false);
    }
    let mut lead_clicks = Vec::new();
    for n in 0..10 {
        let (cost, booked, issue) = match n {
            8 => ("0,12", "0.12", false),
            9 => ("{cost}", "0.10", true),
            _ => ("0.12", "0.12", false),
        };
        let sub1 = format!("pub-{}", n % 3);
        let query = [("sub1", sub1.as_str()), ("cost", cost)];
        let from = visitor(20 + n);
        lead_clicks.push(click_as(&client, base, "demo-lead", &query, Some(&from)).await?);
        money.click(booked, issue);
    }
    traffic.clicks = sale_clicks.len() + lead_clicks.len();

    let mut send =
        |status: StatusCode, outcome: &str, hint: &str, line: String| -> anyhow::Result<()> {
            if !recorded(status) {
                bail!("postback not recorded ({status}): {line}");
            }
            traffic.expect(outcome, hint, line);
            Ok(())
        };

    // TUNE/HasOffers on the global route: cid={aff_sub}&payout={payout}&offer={offer_id}.
    // Payouts as networks send them: plain, with a decimal comma, in EUR, and a `{payout}` the
    // network left literal (the offer's default_payout of 1.50 is booked, flagged).
    for (n, id) in sale_clicks.iter().take(8).enumerate() {
        let txid = format!("tune-{n}");
        let (payout, currency, line) = match n {
            5 => ("1,75", None, "TUNE global postback, payout 1,75"),
            6 => (
                "{payout}",
                None,
                "TUNE global postback, payout {payout} literal",
            ),
            7 => ("2.10", Some("EUR"), "TUNE global postback, 2.10 EUR"),
            _ => ("1.75", None, "TUNE global postback"),
        };
        let mut query = vec![
            ("cid", id.as_str()),
            ("payout", payout),
            ("offer", "1"),
            ("txid", &txid),
        ];
        query.extend(currency.map(|c| ("currency", c)));
        let status = postback_get(&client, base, "/postback", &query).await?;
        send(status, ATTRIBUTED, "", line.into())?;
        match n {
            6 => money.conversion(
                account_currency,
                "1.50",
                account_currency,
                Some(MoneyIssue::PayoutMacro),
            ),
            7 => money.conversion(account_currency, "2.10", Currency::EUR, None),
            _ => money.conversion(account_currency, "1.75", account_currency, None),
        }
    }
    // A network retry of the first one.
    let status = postback_get(
        &client,
        base,
        "/postback",
        &[
            ("cid", &sale_clicks[0]),
            ("payout", "1.75"),
            ("offer", "1"),
            ("txid", "tune-0"),
        ],
    )
    .await?;
    send(
        status,
        "duplicate",
        "network_retry",
        "TUNE retry of the same conversion".into(),
    )?;

    // Everflow-style POST with a JSON body on the global route.
    for id in sale_clicks.iter().skip(8).take(3) {
        let response = client
            .post(format!("{base}/postback"))
            .json(&serde_json::json!({ "click_id": id, "amount": 2.0, "offer_id": "1" }))
            .send()
            .await?;
        send(
            response.status(),
            ATTRIBUTED,
            "",
            "Everflow-style JSON POST".into(),
        )?;
        money.conversion(account_currency, "2.0", account_currency, None);
    }

    // CAKE on the per-offer `lead` route: s2=#s2#&price=#price#&tid=#tid#.
    for (n, id) in lead_clicks.iter().take(5).enumerate() {
        let tid = format!("cake-{n}");
        let status = postback_get(
            &client,
            base,
            "/postback/lead",
            &[
                ("s2", id),
                ("price", "9.99"),
                ("tid", &tid),
                ("token", &lead_token),
            ],
        )
        .await?;
        send(
            status,
            ATTRIBUTED,
            "",
            "CAKE lead route (fixed payout)".into(),
        )?;
        money.conversion(account_currency, "4.50", account_currency, None);
    }

    // Broken postbacks, one per reason.
    let status = postback_get(
        &client,
        base,
        "/postback",
        &[("payout", "1.75"), ("offer", "1")],
    )
    .await?;
    send(
        status,
        "missing_click_id",
        "add_click_id_param",
        "no click ID at all".into(),
    )?;
    let status = postback_get(
        &client,
        base,
        "/postback/lead",
        &[("token", &lead_token), ("s2", "")],
    )
    .await?;
    send(
        status,
        "missing_click_id",
        hints::CAKE_HASH_FRAGMENT,
        "CAKE #s2# unencoded: cut at the fragment".into(),
    )?;
    let status = postback_get(
        &client,
        base,
        "/postback",
        &[("cid", "{sub1}"), ("payout", "1.75")],
    )
    .await?;
    send(
        status,
        "unsubstituted_macro",
        hints::MACRO_NOT_SUBSTITUTED,
        "literal {sub1}".into(),
    )?;
    let status = postback_get(
        &client,
        base,
        "/postback/lead",
        &[("s2", "#s2#"), ("token", &lead_token)],
    )
    .await?;
    send(
        status,
        "unsubstituted_macro",
        hints::MACRO_NOT_SUBSTITUTED,
        "CAKE literal #s2#".into(),
    )?;
    let truncated = &sale_clicks[11][..20];
    let status = postback_get(
        &client,
        base,
        "/postback",
        &[("cid", truncated), ("payout", "1")],
    )
    .await?;
    send(
        status,
        "malformed_click_id",
        hints::CLICK_ID_TRUNCATED,
        "click ID truncated to 20 characters".into(),
    )?;
    let forged = forge(&sale_clicks[12]);
    let status = postback_get(
        &client,
        base,
        "/postback",
        &[("cid", &forged), ("payout", "100")],
    )
    .await?;
    send(
        status,
        "invalid_signature",
        "forged_or_corrupted_id",
        "one character of a click ID changed".into(),
    )?;
    let unknown = account.signer.mint_now(now_ms()).to_string();
    let status = postback_get(
        &client,
        base,
        "/postback",
        &[("cid", &unknown), ("payout", "1")],
    )
    .await?;
    send(
        status,
        "unknown_click_id",
        "click_never_recorded",
        "genuine-looking ID whose click never came".into(),
    )?;
    let old = account.signer.mint_now(now_ms() - 40 * DAY_MS).to_string();
    let status = postback_get(
        &client,
        base,
        "/postback",
        &[("cid", &old), ("payout", "1")],
    )
    .await?;
    send(
        status,
        "expired",
        "click_outside_window",
        "click 40 days old (window 30 days)".into(),
    )?;
    let status = postback_get(
        &client,
        base,
        "/postback/lead",
        &[("s2", &lead_clicks[5]), ("token", "wrong-token")],
    )
    .await?;
    send(
        status,
        "unauthorized",
        hints::ROUTE_TOKEN_WRONG,
        "wrong route token".into(),
    )?;
    let status = postback_get(
        &client,
        base,
        "/postback/nope",
        &[("cid", &sale_clicks[13])],
    )
    .await?;
    send(
        status,
        "unknown_route",
        "configure_route",
        "route that is not configured".into(),
    )?;

    // More broken postbacks, each with the specific hint an operator acts on.
    let broken: [(&str, &str, &str, &str); 4] = [
        (
            "/postback?cid={Sub5}&payout=2",
            "unsubstituted_macro",
            hints::MACRO_WRONG_CASE,
            "Everflow {Sub5}: wrong case arrives literally",
        ),
        (
            "/postback?cid=%257Bsubid%257D&payout=%257Bpayout%257D",
            "unsubstituted_macro",
            hints::MACRO_URL_ENCODED,
            "AdCombo: macros sent URL-encoded, unsubstituted",
        ),
        (
            "/postback?cid=a1b2c3d4e5f60718293a4b5c6d7e8f90&payout=2",
            "malformed_click_id",
            hints::FOREIGN_TRACKER_ID,
            "Everflow's 32-hex transaction_id instead of the click ID",
        ),
        (
            "/postback?cid=undefined&payout=2",
            "missing_click_id",
            hints::PLACEHOLDER_SENT,
            "`undefined` from a lander's JavaScript",
        ),
    ];
    for (path, reason, hint, line) in broken {
        let status = get_raw(&client, base, path).await?;
        send(status, reason, hint, line.into())?;
    }

    // Mangled but salvageable: the signed ID is found and verified, the conversion attributed
    // and flagged repaired with the fix. Clicks 14-19 are used by nothing else.
    let salvageable: [(String, &str, &str); 6] = [
        (
            format!("/postback?cid={0},{0}&payout=1.75&offer=1", sale_clicks[14]),
            repairs::DUPLICATED,
            "click ID sent twice: cid=<id>,<id>",
        ),
        (
            format!(
                "/postback?cid=%22%20{}%20%22&payout=1.75&offer=1",
                sale_clicks[15]
            ),
            repairs::WHITESPACE_OR_QUOTES,
            "click ID in quotes and spaces: cid=\" <id> \"",
        ),
        (
            format!("/postback?payout=1.75&offer=1&amp;cid={}", sale_clicks[16]),
            repairs::HTML_ESCAPED_KEY,
            "&amp;cid= copied from HTML",
        ),
        (
            format!("/postback?s2={}&payout=1.75&offer=1", sale_clicks[17]),
            repairs::OTHER_PARAM,
            "click ID under s2 on the global route",
        ),
        (
            format!("/postback?cid={}?payout=1.75&offer=1", sale_clicks[18]),
            repairs::SECOND_QUESTION_MARK,
            "second ? in the template: cid=<id>?payout=1.75",
        ),
        (
            format!("/postback?cid={}%26payout%3D1.75&offer=1", sale_clicks[19]),
            repairs::QUERY_IN_VALUE,
            "query encoded into the value: cid=<id>%26payout%3D1.75",
        ),
    ];
    for (path, hint, line) in &salvageable {
        let status = get_raw(&client, base, path).await?;
        send(status, ATTRIBUTED, hint, (*line).into())?;
        // The last two lost their payout parameter with the rest of the query: the offer's
        // default_payout is booked.
        let lost = [repairs::SECOND_QUESTION_MARK, repairs::QUERY_IN_VALUE].contains(hint);
        money.conversion(
            account_currency,
            if lost { "1.50" } else { "1.75" },
            account_currency,
            None,
        );
    }
    traffic.money = money;
    Ok(traffic)
}

/// The same ID with its last character changed: well-formed, signature broken.
pub fn forge(id: &str) -> String {
    let mut forged = id.to_string();
    let last = if forged.ends_with('0') { "1" } else { "0" };
    forged.replace_range(forged.len() - 1.., last);
    forged
}
