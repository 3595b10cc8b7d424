//! The unattributed-rate spike alert, for real: Debian's `prometheus` scrapes a running pipeline's
//! `/metrics` every second and evaluates the project's own rules (`deploy/prometheus/rules.yml`)
//! every second; normal traffic over HTTP must leave the alert quiet, a burst of unattributed
//! postbacks must make it fire. Assertions go through Prometheus' HTTP API.
//!
//! The production rules look back a day (baseline) and ten minutes (current rate). The test runs
//! a copy with every time constant divided by 60 — range selectors, `offset`s, `for:` and the
//! window lengths in seconds that turn a rate back into a count (`rate10m * 600`) — so minutes
//! become seconds: `[10m]` → `[10s]`, `offset 1h` → `offset 1m`, `[1d]` → `[24m]`, `for: 5m` →
//! `for: 5s`, `* 600` → `* 10`. The copy is checked: scaling it back by 60 gives the production
//! file byte for byte (nothing else changed), the window literals rewritten are exactly the
//! expected ones, and `promtool check rules` accepts it. Expressions, thresholds (2x, +5 points,
//! at least 20 unattributed per window) and labels are the production ones.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clickmatch_cli::demo;
use clickmatch_e2e::{free_port, TestPipeline};
use reqwest::StatusCode;
use serde_json::Value;

const PROMETHEUS: &str = "/usr/bin/prometheus";
const PROMTOOL: &str = "/usr/bin/promtool";
/// Every time constant of the rules is divided by this.
const SCALE: u64 = 60;

const SPIKE: &str = "ClickmatchUnattributedRateSpike";
const ROUTE_SPIKE: &str = "ClickmatchRouteUnattributedRateSpike";
const REASON_DOMINATING: &str = "ClickmatchUnattributedReasonDominating";
const BASELINE: &str = "clickmatch:postbacks_unattributed:ratio_rate1d_offset1h";
const RATIO: &str = "clickmatch:postbacks_unattributed:ratio_rate10m";

fn rules_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/prometheus/rules.yml")
}

// ------------------------------------------------------------------------------------------------
// The mechanical time scaling of a rules file.
// ------------------------------------------------------------------------------------------------

/// Units of Prometheus durations, with their length in ms; `ms` before `m` when parsing.
const UNITS: &[(&str, u64)] = &[
    ("ms", 1),
    ("y", 365 * 86_400_000),
    ("w", 7 * 86_400_000),
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
];

/// What [`rescale`] rewrote, as `from -> to` with counts, by kind.
#[derive(Debug, Default, PartialEq, Eq)]
struct Rewrites {
    ranges: BTreeMap<String, usize>,
    offsets: BTreeMap<String, usize>,
    fors: BTreeMap<String, usize>,
    /// `* N` where N is the length in seconds of a range window of the file.
    window_literals: BTreeMap<String, usize>,
}

/// A Prometheus duration (`10m`, `1h30m`, `500ms`) at the start of `s`: (ms, bytes used).
fn parse_duration(s: &str) -> Option<(u64, usize)> {
    let bytes = s.as_bytes();
    let mut at = 0;
    let mut total = 0u64;
    while at < bytes.len() && bytes[at].is_ascii_digit() {
        let digits = bytes[at..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        let n: u64 = s[at..at + digits].parse().ok()?;
        let rest = &s[at + digits..];
        let (unit, ms) = UNITS.iter().find(|(u, _)| rest.starts_with(u))?;
        total = total.checked_add(n.checked_mul(*ms)?)?;
        at += digits + unit.len();
    }
    (at > 0).then_some((total, at))
}

/// `ms` in the largest of d, h, m, s, ms that divides it.
fn format_duration(ms: u64) -> String {
    for (unit, len) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms > 0 && ms.is_multiple_of(len) {
            return format!("{}{unit}", ms / len);
        }
    }
    format!("{ms}ms")
}

fn scaled(ms: u64, num: u64, den: u64) -> Result<u64, String> {
    let scaled = ms * num;
    if !scaled.is_multiple_of(den) {
        return Err(format!(
            "{} does not scale by {num}/{den} to whole ms",
            format_duration(ms)
        ));
    }
    Ok(scaled / den)
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b':'
}

/// Multiplies every time constant of a rules file by `num / den`: the durations in range
/// selectors (`[10m]`, `[5m:1m]`), after `offset`, in `for:` / `keep_firing_for:`, and the
/// integer literals after `*` that equal a range window of the file in seconds (`* 600` for
/// `[10m]`: a rate times its window is a count). Nothing else changes.
fn rescale(text: &str, num: u64, den: u64) -> Result<(String, Rewrites), String> {
    // Window lengths (s) of the file's range selectors.
    let mut windows = std::collections::BTreeSet::new();
    for (i, _) in text.match_indices('[') {
        if let Some((ms, _)) = parse_duration(&text[i + 1..]) {
            if ms.is_multiple_of(1000) {
                windows.insert(ms / 1000);
            }
        }
    }
    let mut rewrites = Rewrites::default();
    let mut out = String::with_capacity(text.len());
    let bytes = text.as_bytes();
    let mut at = 0;
    let mut line_start = true;
    while at < bytes.len() {
        let rest = &text[at..];
        let b = bytes[at];
        // `for:` at the start of a YAML line.
        if line_start {
            let indent = rest.len() - rest.trim_start_matches(' ').len();
            let after = &rest[indent..];
            let key = ["for:", "keep_firing_for:"]
                .into_iter()
                .find(|k| after.starts_with(k));
            if let Some(key) = key {
                let value = &after[key.len()..];
                let spaces = value.len() - value.trim_start_matches(' ').len();
                if let Some((ms, len)) = parse_duration(&value[spaces..]) {
                    let new = format_duration(scaled(ms, num, den)?);
                    let old = &value[spaces..spaces + len];
                    *rewrites.fors.entry(format!("{old} -> {new}")).or_default() += 1;
                    out.push_str(&rest[..indent + key.len() + spaces]);
                    out.push_str(&new);
                    at += indent + key.len() + spaces + len;
                    line_start = false;
                    continue;
                }
            }
        }
        line_start = b == b'\n';
        // Range selectors and subqueries: [d] [d:] [d:d].
        if b == b'[' {
            if let Some((ms, len)) = parse_duration(&rest[1..]) {
                let mut end = 1 + len;
                let mut new = format!("[{}", format_duration(scaled(ms, num, den)?));
                if rest[end..].starts_with(':') {
                    new.push(':');
                    end += 1;
                    if let Some((step, len)) = parse_duration(&rest[end..]) {
                        new.push_str(&format_duration(scaled(step, num, den)?));
                        end += len;
                    }
                }
                if rest[end..].starts_with(']') {
                    new.push(']');
                    end += 1;
                    *rewrites
                        .ranges
                        .entry(format!("{} -> {new}", &rest[..end]))
                        .or_default() += 1;
                    out.push_str(&new);
                    at += end;
                    continue;
                }
            }
        }
        // `offset d`.
        if rest.starts_with("offset") && (at == 0 || !is_word(bytes[at - 1])) {
            let value = &rest["offset".len()..];
            let spaces = value.len() - value.trim_start_matches(' ').len();
            if spaces > 0 {
                if let Some((ms, len)) = parse_duration(&value[spaces..]) {
                    let new = format_duration(scaled(ms, num, den)?);
                    let old = &value[spaces..spaces + len];
                    *rewrites
                        .offsets
                        .entry(format!("{old} -> {new}"))
                        .or_default() += 1;
                    out.push_str(&rest[.."offset".len() + spaces]);
                    out.push_str(&new);
                    at += "offset".len() + spaces + len;
                    continue;
                }
            }
        }
        // `* N` with N a window length in seconds.
        if b == b'*' {
            let value = &rest[1..];
            let spaces = value.len() - value.trim_start_matches(' ').len();
            let digits = value[spaces..]
                .bytes()
                .take_while(|b| b.is_ascii_digit())
                .count();
            let next = value.as_bytes().get(spaces + digits).copied();
            if digits > 0 && !next.is_some_and(|b| is_word(b) || b == b'.') {
                let n: u64 = value[spaces..spaces + digits].parse().unwrap();
                if windows.contains(&n) {
                    let new = scaled(n, num, den)?;
                    *rewrites
                        .window_literals
                        .entry(format!("{n} -> {new}"))
                        .or_default() += 1;
                    out.push_str(&rest[..1 + spaces]);
                    out.push_str(&new.to_string());
                    at += 1 + spaces + digits;
                    continue;
                }
            }
        }
        let ch = rest.chars().next().unwrap();
        out.push(ch);
        at += ch.len_utf8();
    }
    Ok((out, rewrites))
}

/// The production rules with every time constant divided by [`SCALE`], checked: it scales back
/// to the production file exactly, the window literals are the expected ones, promtool accepts
/// it. Returns the text.
fn scaled_rules() -> String {
    let original = std::fs::read_to_string(rules_path()).expect("deploy/prometheus/rules.yml");
    let (scaled, rewrites) = rescale(&original, 1, SCALE).unwrap();
    let (back, _) = rescale(&scaled, SCALE, 1).unwrap();
    assert!(
        back == original,
        "scaling the test copy back by {SCALE} must give the production rules exactly"
    );
    // Rates turned back into counts: `rate10m * 600 >= 20` in the three attribution alerts,
    // `* 600 >= 10` in ClickmatchPayoutIssuesRising and `* 600 >= 50` in
    // ClickmatchClickCostIssues, `rate5m * 300 >= 10` in ClickmatchIngest5xx. A new one must be
    // listed here on purpose.
    let expected: BTreeMap<String, usize> =
        [("600 -> 10".to_owned(), 5), ("300 -> 5".to_owned(), 1)].into();
    assert_eq!(rewrites.window_literals, expected, "{rewrites:#?}");
    assert!(
        rewrites.ranges.contains_key("[1d] -> [24m]"),
        "{rewrites:#?}"
    );
    assert!(rewrites.offsets.contains_key("1h -> 1m"), "{rewrites:#?}");
    assert!(rewrites.fors.contains_key("5m -> 5s"), "{rewrites:#?}");
    scaled
}

fn promtool_check_rules(path: &Path) {
    let output = Command::new(PROMTOOL)
        .arg("check")
        .arg("rules")
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {PROMTOOL} (Debian package prometheus): {e}"));
    assert!(
        output.status.success(),
        "promtool check rules {}:\n{}{}",
        path.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn scaled_rules_are_a_mechanical_copy_of_the_production_rules() {
    let scaled = scaled_rules();
    assert!(scaled.contains("[10s]") && scaled.contains("[24m] offset 1m"));
    assert!(scaled.contains("clickmatch:postbacks_unattributed:rate10m * 10 >= 20"));
    assert!(!scaled.contains("[10m]") && !scaled.contains("offset 1h"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.yml");
    std::fs::write(&path, scaled).unwrap();
    promtool_check_rules(&path);

    // The transform itself on the forms it knows.
    let (text, rewrites) = rescale(
        "expr: rate(x[5m:30s]) * 300 > 2 * y offset 1d and z[1h30m]\n    for: 10m\n# [x] offset\n",
        1,
        60,
    )
    .unwrap();
    assert_eq!(
        text,
        "expr: rate(x[5s:500ms]) * 5 > 2 * y offset 24m and z[90s]\n    for: 10s\n# [x] offset\n"
    );
    assert_eq!(rewrites.window_literals.len(), 1);
    assert!(
        rescale("x[7s]", 1, 60).is_err(),
        "7s / 60 is not whole ms... 116.67 ms"
    );
}

// ------------------------------------------------------------------------------------------------
// A Prometheus of the test's own.
// ------------------------------------------------------------------------------------------------

struct Prometheus {
    child: Child,
    url: String,
    http: reqwest::Client,
    /// Config, rules, storage (`--storage.tsdb.path`) and log; removed after the process ends.
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Debian's prometheus on 127.0.0.1 (a free port) with a storage folder of its own,
    /// scraping `target` (`host:port`) every second and evaluating `rules` every second.
    async fn start(target: &str, rules: &str) -> anyhow::Result<Prometheus> {
        anyhow::ensure!(
            Path::new(PROMETHEUS).is_file(),
            "{PROMETHEUS} is missing: apt-get install prometheus (scripts/setup does)"
        );
        let dir = tempfile::Builder::new()
            .prefix("clickmatch-prometheus-")
            .tempdir()?;
        std::fs::write(dir.path().join("rules.yml"), rules)?;
        promtool_check_rules(&dir.path().join("rules.yml"));
        // The job name matters: ClickmatchTargetDown matches on it.
        std::fs::write(
            dir.path().join("prometheus.yml"),
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 rule_files:\n  - rules.yml\n\
                 scrape_configs:\n  - job_name: clickmatch-ingest\n    static_configs:\n      - targets: [\"{target}\"]\n"
            ),
        )?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()?;
        let mut last_error = None;
        // A free port can be taken between the check and prometheus' bind: try another.
        for _ in 0..3 {
            let port = free_port();
            let url = format!("http://127.0.0.1:{port}");
            let log = std::fs::File::create(dir.path().join("prometheus.log"))?;
            let mut child = Command::new(PROMETHEUS)
                .arg(format!(
                    "--config.file={}",
                    dir.path().join("prometheus.yml").display()
                ))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--log.level=warn")
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .with_context(|| format!("running {PROMETHEUS}"))?;
            match wait_ready(&mut child, &http, &url, dir.path()).await {
                Ok(()) => {
                    return Ok(Prometheus {
                        child,
                        url,
                        http,
                        dir,
                    })
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_error = Some(e);
                }
            }
        }
        Err(last_error.expect("tried"))
    }

    /// `GET /api/v1/<path>` with `query`, the `data` member of the answer.
    async fn api(&self, path: &str, query: &[(&str, &str)]) -> anyhow::Result<Value> {
        let answer: Value = self
            .http
            .get(format!("{}/api/v1/{path}", self.url))
            .query(query)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        anyhow::ensure!(answer["status"] == "success", "{path}: {answer}");
        Ok(answer["data"].clone())
    }

    /// The value of an instant query that returns at most one sample.
    async fn scalar(&self, expr: &str) -> anyhow::Result<Option<f64>> {
        let data = self.api("query", &[("query", expr)]).await?;
        let result = data["result"].as_array().context("result")?;
        anyhow::ensure!(result.len() <= 1, "{expr}: {data}");
        Ok(result
            .first()
            .and_then(|s| s["value"][1].as_str())
            .and_then(|v| v.parse().ok()))
    }

    /// Active alerts (pending or firing): (alertname, state, labels).
    async fn alerts(&self) -> anyhow::Result<Vec<(String, String, Value)>> {
        let data = self.api("alerts", &[]).await?;
        Ok(data["alerts"]
            .as_array()
            .context("alerts")?
            .iter()
            .map(|a| {
                (
                    a["labels"]["alertname"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    a["state"].as_str().unwrap_or_default().to_owned(),
                    a["labels"].clone(),
                )
            })
            .collect())
    }

    fn log(&self) -> String {
        log_of(self.dir.path())
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

fn log_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default()
}

async fn wait_ready(
    child: &mut Child,
    http: &reqwest::Client,
    url: &str,
    dir: &Path,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait()? {
            bail!("prometheus exited with {status}:\n{}", log_of(dir));
        }
        if let Ok(answer) = http.get(format!("{url}/-/ready")).send().await {
            if answer.status() == StatusCode::OK {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!(
                "prometheus not ready at {url} within 30 s:\n{}",
                log_of(dir)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ------------------------------------------------------------------------------------------------
// Traffic over HTTP.
// ------------------------------------------------------------------------------------------------

/// What the traffic task sent.
#[derive(Debug, Default)]
struct Sent {
    clicks: u64,
    attributed: u64,
    /// Truncated click IDs in normal traffic: `malformed_click_id`.
    malformed: u64,
    /// `cid={click_id}` sent literally during the burst: `unsubstituted_macro`.
    macros: u64,
}

/// Every 100 ms: two clicks and their attributed postbacks (TUNE on the global route), and in
/// normal traffic one postback with a truncated click ID on 3 ticks of 10 (about 13% of the
/// postbacks unattributed); while `spike` is set, two postbacks with the macro `{click_id}`
/// sent literally each tick (about 50% unattributed). Runs until `stop`.
async fn traffic(
    base: String,
    spike: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<Sent> {
    let client = demo::http_client();
    let mut sent = Sent::default();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n = 0u64;
    let ok = |status: StatusCode, what: &str| -> anyhow::Result<()> {
        anyhow::ensure!(status == StatusCode::OK, "{what} answered {status}");
        Ok(())
    };
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        n += 1;
        for _ in 0..2 {
            let id = demo::click(&client, &base, "demo", "pub-1").await?;
            sent.clicks += 1;
            let txid = format!("alert-{n}-{}", sent.clicks);
            let status = demo::postback_get(
                &client,
                &base,
                "/postback",
                &[
                    ("cid", &id),
                    ("payout", "1.5"),
                    ("offer", "1"),
                    ("txid", &txid),
                ],
            )
            .await?;
            ok(status, "attributed postback")?;
            sent.attributed += 1;
        }
        if spike.load(Ordering::Relaxed) {
            for _ in 0..2 {
                let status = demo::postback_get(
                    &client,
                    &base,
                    "/postback",
                    &[("cid", "{click_id}"), ("payout", "1.5"), ("offer", "1")],
                )
                .await?;
                ok(status, "macro postback")?;
                sent.macros += 1;
            }
        } else if matches!(n % 10, 0 | 3 | 6) {
            let status = demo::postback_get(
                &client,
                &base,
                "/postback",
                &[
                    ("cid", "01m8b66tw9t968z636rg"),
                    ("payout", "1.5"),
                    ("offer", "1"),
                ],
            )
            .await?;
            ok(status, "truncated postback")?;
            sent.malformed += 1;
        }
    }
    Ok(sent)
}

fn active<'a>(
    alerts: &'a [(String, String, Value)],
    names: &[&str],
) -> Vec<&'a (String, String, Value)> {
    alerts
        .iter()
        .filter(|(name, state, _)| {
            names.contains(&name.as_str()) && matches!(state.as_str(), "pending" | "firing")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unattributed_spike_alert_stays_quiet_for_normal_traffic_and_fires_on_a_burst() {
    let started = Instant::now();
    let rules = scaled_rules();
    // Batches every 500 ms instead of the harness' 50 ms: counters still move several times per
    // 10 s window, and ClickHouse gets a tenth of the inserts (every insert is a part; 18.16
    // takes seconds to drop a table of thousands of parts at cleanup).
    let t = TestPipeline::start(&[("CLICKMATCH_JOINER_BATCH_MAX_MS", "500")])
        .await
        .unwrap();
    let target = t
        .base
        .strip_prefix("http://")
        .expect("http base")
        .to_owned();
    let prometheus = Prometheus::start(&target, &rules).await.unwrap();
    let spike = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = tokio::spawn(traffic(t.base.clone(), spike.clone(), stop.clone()));
    let attribution = [SPIKE, ROUTE_SPIKE, REASON_DOMINATING];

    // Normal traffic until the baseline exists ([24m] offset 1m: after a minute of history),
    // then 16 s more: the 10 s window, the 5 s `for` and a second. The rate-spike alerts stay
    // quiet all along, while the volume floor (>= 20 unattributed per window) is passed: it is
    // the ratio against the baseline that keeps them quiet. The reason alert is checked from the
    // baseline on: without a baseline every reason counts as new, so the production rule raises
    // ClickmatchUnattributedReasonDominating for any route with >= 20 unattributed postbacks of
    // one reason per window during the first hour of a fresh Prometheus (here: the first
    // minute). That is the rule as written; the test does not hide it, it just does not assert
    // on that start-up hour.
    let mut baseline_at = None;
    let mut volume_passed = 0;
    let last = loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!traffic.is_finished(), "traffic stopped early");
        let last = (
            prometheus.scalar(RATIO).await.unwrap(),
            prometheus.scalar(BASELINE).await.unwrap(),
        );
        let alerts = prometheus.alerts().await.unwrap();
        let checked: &[&str] = if baseline_at.is_some() {
            &attribution
        } else {
            &[SPIKE, ROUTE_SPIKE]
        };
        let raised = active(&alerts, checked);
        assert!(
            raised.is_empty(),
            "normal traffic raised {raised:?} after {:?} (ratio, baseline) = {last:?}",
            started.elapsed()
        );
        let volume = "clickmatch:postbacks_unattributed:rate10m * 10 >= 20";
        if prometheus.scalar(volume).await.unwrap().is_some() {
            volume_passed += 1;
        }
        match baseline_at {
            None if last.1.is_some() => baseline_at = Some(Instant::now()),
            Some(at) if at.elapsed() >= Duration::from_secs(16) => break last,
            _ => {}
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no baseline after {:?}; prometheus log:\n{}",
            started.elapsed(),
            prometheus.log()
        );
    };
    let quiet_phase = started.elapsed();
    let (ratio, baseline) = (last.0.expect("ratio"), last.1.expect("baseline"));
    assert!(
        (0.05..0.25).contains(&ratio) && (0.05..0.25).contains(&baseline),
        "normal traffic is about 13% unattributed: ratio {ratio}, baseline {baseline}"
    );
    assert!(
        volume_passed >= 12,
        "volume floor passed only {volume_passed} times"
    );

    // The burst: literal `{click_id}` macros, half of the postbacks.
    spike.store(true, Ordering::Relaxed);
    let burst = Instant::now();
    let mut pending_after = None;
    let fired = loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(!traffic.is_finished(), "traffic stopped early");
        let alerts = prometheus.alerts().await.unwrap();
        if let Some((_, state, labels)) = alerts.iter().find(|(name, _, _)| name == SPIKE) {
            if pending_after.is_none() {
                pending_after = Some(burst.elapsed());
            }
            if state == "firing" {
                assert_eq!(labels["severity"], "critical");
                break alerts;
            }
        }
        assert!(
            burst.elapsed() < Duration::from_secs(45),
            "{SPIKE} did not fire within 45 s of the burst: alerts {alerts:?}, ratio {:?}, \
             baseline {:?}",
            prometheus.scalar(RATIO).await.unwrap(),
            prometheus.scalar(BASELINE).await.unwrap(),
        );
    };
    let firing_after = burst.elapsed();
    let ratio = prometheus.scalar(RATIO).await.unwrap().expect("ratio");
    assert!(
        ratio > 2.0 * baseline,
        "ratio {ratio} vs baseline {baseline}"
    );
    // The same burst on the only route, with a reason that route did not have: the route-level
    // and reason alerts are raised as well (pending or firing).
    let route = active(&fired, &[ROUTE_SPIKE]);
    assert!(
        route.iter().any(|(_, _, l)| l["route"] == "global"),
        "{fired:?}"
    );
    let reason = active(&fired, &[REASON_DOMINATING]);
    assert!(
        reason
            .iter()
            .any(|(_, _, l)| l["route"] == "global" && l["reason"] == "unsubstituted_macro"),
        "{fired:?}"
    );

    // Every rule of the copy evaluated without error on the real metrics.
    let groups = prometheus.api("rules", &[]).await.unwrap();
    let mut rules = 0;
    for group in groups["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            rules += 1;
            assert_ne!(rule["health"], "err", "{rule}");
        }
    }
    assert!(rules >= 30, "{rules} rules loaded");
    // The reasons as the joiner counted them.
    let reasons = prometheus
        .api(
            "query",
            &[(
                "query",
                "sum by (reason) (clickmatch_joiner_postbacks_total{outcome=\"unattributed\"})",
            )],
        )
        .await
        .unwrap();
    let mut seen: Vec<String> = reasons["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            s["metric"]["reason"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    seen.sort();
    assert_eq!(seen, ["malformed_click_id", "unsubstituted_macro"]);

    stop.store(true, Ordering::Relaxed);
    let sent = traffic.await.unwrap().unwrap();
    drop(prometheus);
    let checked = started.elapsed();
    t.cleanup().await.unwrap();
    eprintln!(
        "alerts: quiet phase {quiet_phase:?} (baseline {baseline:.3}, ratio {:.3}); burst: pending \
         after {pending_after:?}, firing after {firing_after:?} (ratio {ratio:.3}); sent {sent:?}; \
         checked after {checked:?}, total {:?}",
        last.0.unwrap_or_default(),
        started.elapsed()
    );
}
