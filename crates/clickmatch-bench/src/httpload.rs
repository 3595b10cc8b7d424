//! An open-loop HTTP/1.1 load generator: requests at a fixed aggregate rate over keep-alive
//! connections, latency measured from the time each request was due whenever the connection was
//! still busy then (no coordinated omission), from its actual send time otherwise.
//!
//! For the end-to-end figure it also marks probes (accepted postbacks meant to be attributed, a
//! few per second), polls ClickHouse until each probe's row is queryable, and produces the
//! clicks of "postback before click" lines to Kafka shortly after their postback was sent.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One request of a load file: `PATH[\tKIND[\tCLICK_JSON]]`.
#[derive(Debug, Clone)]
pub struct Line {
    pub kind: String,
    pub late_click: Option<Vec<u8>>,
    /// The request's bytes, built once: the generator's CPU is the load core's, which a
    /// per-request `format!` would spend.
    request: Vec<u8>,
}

impl Line {
    pub fn parse(text: &str) -> Line {
        let mut parts = text.splitn(3, '\t');
        let path = parts.next().unwrap_or("/");
        let kind = parts.next().unwrap_or("").to_string();
        let late_click = parts.next().map(|s| s.as_bytes().to_vec());
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: clickmatch-bench\r\n\r\n"
        )
        .into_bytes();
        Line {
            kind,
            late_click,
            request,
        }
    }

    fn attributes(&self) -> bool {
        self.kind == "attributed" && self.late_click.is_none()
    }
}

/// Where probes are looked up and late clicks produced.
#[derive(Debug, Clone)]
pub struct E2e {
    pub clickhouse_url: String,
    pub database: String,
    pub bootstrap_servers: String,
    pub clicks_topic: String,
    pub probe_every: Duration,
    pub late_click_delay: Duration,
}

#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub addr: String,
    pub lines: Vec<Line>,
    pub rate: f64,
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub e2e: Option<E2e>,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: usize,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    /// From samples in microseconds.
    pub fn of(mut samples: Vec<u64>) -> Percentiles {
        if samples.is_empty() {
            return Percentiles::default();
        }
        samples.sort_unstable();
        let at = |q: f64| {
            let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
            samples[i] as f64 / 1000.0
        };
        Percentiles {
            count: samples.len(),
            p50_ms: at(0.50),
            p90_ms: at(0.90),
            p99_ms: at(0.99),
            p999_ms: at(0.999),
            max_ms: *samples.last().expect("non-empty") as f64 / 1000.0,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LoadResult {
    pub target_rps: f64,
    pub connections: usize,
    pub measured_seconds: f64,
    /// Requests due in the measured window.
    pub scheduled: u64,
    /// Responses received for them.
    pub completed: u64,
    pub achieved_rps: f64,
    /// Responses with 200/302.
    pub ok: u64,
    pub ok_rps: f64,
    /// 200/302 answers over the whole run, warm-up included (rows the pipeline must write).
    pub total_ok: u64,
    pub statuses: BTreeMap<u16, u64>,
    pub errors: u64,
    pub latency: Percentiles,
    /// How late the generator itself sent the requests whose connection was free when they were
    /// due: its own scheduling delay. A stall here is the load core's, not the server's (the
    /// requests queued behind it count from their due time in `latency`).
    #[serde(default)]
    pub send_lag: Percentiles,
    /// CPU time (user + system) the server spent per answered request over the whole run,
    /// warm-up included, where the harness could read it (it fills this in, not the generator).
    #[serde(default)]
    pub server_cpu_us_per_request: Option<f64>,
    /// Postback sent → row queryable in ClickHouse, for probes: until the start of the poll
    /// whose query found the row (a query reads the parts committed when it starts).
    pub probes: Option<Percentiles>,
    /// How long the probes' polling queries themselves took (not part of the figure above).
    #[serde(default)]
    pub probe_queries: Option<Percentiles>,
    /// The probes timed to the answer of the query that found them instead (the query's run
    /// included), as the harness counted them before.
    #[serde(default)]
    pub probes_answered: Option<Percentiles>,
    pub probes_missing: usize,
    pub late_clicks: u64,
}

struct Shared {
    next_line: usize,
    latencies: Vec<u64>,
    send_lags: Vec<u64>,
    statuses: BTreeMap<u16, u64>,
    errors: u64,
    scheduled: u64,
    completed: u64,
    total_ok: u64,
    last_probe: Option<Instant>,
    /// (postback ID, sent at unix ms), still to be found.
    probes_open: Vec<(String, u64)>,
    probe_latencies: Vec<u64>,
    probe_query_times: Vec<u64>,
    probe_answered: Vec<u64>,
    late_clicks: u64,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

/// Runs the load on the current thread and returns its result.
pub fn run(spec: LoadSpec) -> anyhow::Result<LoadResult> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, run_local(spec))
}

async fn run_local(spec: LoadSpec) -> anyhow::Result<LoadResult> {
    anyhow::ensure!(!spec.lines.is_empty(), "no request lines");
    anyhow::ensure!(
        spec.rate > 0.0 && spec.connections > 0,
        "rate and connections"
    );
    let shared = Rc::new(RefCell::new(Shared {
        next_line: 0,
        latencies: Vec::new(),
        send_lags: Vec::new(),
        statuses: BTreeMap::new(),
        errors: 0,
        scheduled: 0,
        completed: 0,
        total_ok: 0,
        last_probe: None,
        probes_open: Vec::new(),
        probe_latencies: Vec::new(),
        probe_query_times: Vec::new(),
        probe_answered: Vec::new(),
        late_clicks: 0,
    }));
    let lines = Rc::new(spec.lines.clone());
    let publisher = match &spec.e2e {
        Some(e2e) => Some(
            clickmatch_kafka::Publisher::new(&e2e.bootstrap_servers, &Default::default())
                .context("producer for late clicks")?,
        ),
        None => None,
    };
    let start = tokio::time::Instant::now() + Duration::from_millis(50);
    let measure_from = start + spec.warmup;
    let end = measure_from + spec.duration;
    let interval = Duration::from_secs_f64(spec.connections as f64 / spec.rate);
    let done = Rc::new(RefCell::new(false));

    let poller = spec.e2e.clone().map(|e2e| {
        let shared = shared.clone();
        let done = done.clone();
        tokio::task::spawn_local(async move { poll_probes(e2e, shared, done).await })
    });

    let mut tasks = Vec::new();
    for c in 0..spec.connections {
        let shared = shared.clone();
        let lines = lines.clone();
        let addr = spec.addr.clone();
        let e2e = spec.e2e.clone();
        let publisher = publisher.clone();
        let first = start + interval.mul_f64(c as f64 / spec.connections as f64);
        tasks.push(tokio::task::spawn_local(async move {
            connection(
                addr,
                lines,
                shared,
                first,
                interval,
                measure_from,
                end,
                e2e,
                publisher,
            )
            .await
        }));
    }
    for task in tasks {
        task.await?;
    }
    *done.borrow_mut() = true;
    if let Some(poller) = poller {
        poller.await??;
    }
    if let Some(publisher) = &publisher {
        let publisher = publisher.clone();
        tokio::task::spawn_blocking(move || publisher.flush(Duration::from_secs(10))).await??;
    }
    let s = shared.borrow();
    let seconds = spec.duration.as_secs_f64();
    let ok: u64 = s
        .statuses
        .iter()
        .filter(|(code, _)| matches!(**code, 200 | 302))
        .map(|(_, n)| n)
        .sum();
    // Probe figures exist only where probes were sent (an end-to-end load).
    let probed = |samples: &Vec<u64>| spec.e2e.as_ref().map(|_| Percentiles::of(samples.clone()));
    Ok(LoadResult {
        target_rps: spec.rate,
        connections: spec.connections,
        measured_seconds: seconds,
        scheduled: s.scheduled,
        completed: s.completed,
        achieved_rps: s.completed as f64 / seconds,
        ok,
        ok_rps: ok as f64 / seconds,
        total_ok: s.total_ok,
        statuses: s.statuses.clone(),
        errors: s.errors,
        latency: Percentiles::of(s.latencies.clone()),
        send_lag: Percentiles::of(s.send_lags.clone()),
        server_cpu_us_per_request: None,
        probes: probed(&s.probe_latencies),
        probe_queries: probed(&s.probe_query_times),
        probes_answered: probed(&s.probe_answered),
        probes_missing: s.probes_open.len(),
        late_clicks: s.late_clicks,
    })
}

#[allow(clippy::too_many_arguments)]
async fn connection(
    addr: String,
    lines: Rc<Vec<Line>>,
    shared: Rc<RefCell<Shared>>,
    first: tokio::time::Instant,
    interval: Duration,
    measure_from: tokio::time::Instant,
    end: tokio::time::Instant,
    e2e: Option<E2e>,
    publisher: Option<clickmatch_kafka::Publisher>,
) {
    let mut stream: Option<TcpStream> = None;
    let mut buf = Vec::with_capacity(8192);
    let mut previous_done = first;
    let mut k: u32 = 0;
    loop {
        let due = first + interval * k;
        k += 1;
        if due >= end {
            break;
        }
        if tokio::time::Instant::now() < due {
            tokio::time::sleep_until(due).await;
        }
        let measured = due >= measure_from;
        let line = {
            let mut s = shared.borrow_mut();
            let i = s.next_line;
            s.next_line = (i + 1) % lines.len();
            if measured {
                s.scheduled += 1;
            }
            &lines[i]
        };
        let probe = e2e.as_ref().is_some_and(|e2e| {
            let mut s = shared.borrow_mut();
            let wanted = measured
                && line.attributes()
                && s.last_probe.is_none_or(|t| t.elapsed() >= e2e.probe_every);
            if wanted {
                s.last_probe = Some(Instant::now());
            }
            wanted
        });
        let sent = tokio::time::Instant::now();
        // Busy past the due time: the wait counts (no coordinated omission). Free at it: any
        // lateness is the generator's own.
        let (origin, send_lag) = if previous_done > due {
            (due, None)
        } else {
            (sent, Some(sent.saturating_duration_since(due)))
        };
        let sent_unix = unix_ms();
        let result = exchange(&addr, &mut stream, &mut buf, &line.request, probe).await;
        let now = tokio::time::Instant::now();
        previous_done = now;
        let mut s = shared.borrow_mut();
        if let Some(lag) = send_lag.filter(|_| measured) {
            s.send_lags.push(lag.as_micros() as u64);
        }
        match result {
            Ok((status, body)) => {
                if matches!(status, 200 | 302) {
                    s.total_ok += 1;
                }
                if measured {
                    s.completed += 1;
                    *s.statuses.entry(status).or_default() += 1;
                    s.latencies.push((now - origin).as_micros() as u64);
                }
                if probe && status == 200 {
                    if let Some(id) = body.as_deref().and_then(postback_id) {
                        s.probes_open.push((id, sent_unix));
                    }
                }
                if let (Some(click), Some(e2e), Some(publisher)) =
                    (&line.late_click, &e2e, &publisher)
                {
                    s.late_clicks += 1;
                    let click = click.clone();
                    let e2e = e2e.clone();
                    let publisher = publisher.clone();
                    tokio::task::spawn_local(async move {
                        tokio::time::sleep(e2e.late_click_delay).await;
                        produce_click(&publisher, &e2e.clicks_topic, &click).await;
                    });
                }
            }
            Err(_) => {
                if measured {
                    s.errors += 1;
                }
                stream = None;
            }
        }
    }
}

async fn produce_click(publisher: &clickmatch_kafka::Publisher, topic: &str, json: &[u8]) {
    let Ok(click) = clickmatch_core::records::ClickRecord::decode(json) else {
        return;
    };
    if let Ok(delivery) = publisher.enqueue(topic, &click.click_id, json) {
        let _ = delivery.await;
    }
}

fn postback_id(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value.get("postback_id")?.as_str().map(String::from)
}

/// Sends one request on the connection (opening it when needed) and reads the response.
async fn exchange(
    addr: &str,
    stream: &mut Option<TcpStream>,
    buf: &mut Vec<u8>,
    request: &[u8],
    want_body: bool,
) -> std::io::Result<(u16, Option<Vec<u8>>)> {
    if stream.is_none() {
        let s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        *stream = Some(s);
        buf.clear();
    }
    let s = stream.as_mut().expect("connected");
    s.write_all(request).await?;
    loop {
        if let Some((status, head_len, body_len, close)) = parse_head(buf)? {
            while buf.len() < head_len + body_len {
                read_more(s, buf).await?;
            }
            let body = want_body.then(|| buf[head_len..head_len + body_len].to_vec());
            buf.drain(..head_len + body_len);
            if close {
                *stream = None;
            }
            return Ok((status, body));
        }
        read_more(s, buf).await?;
    }
}

async fn read_more(s: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<()> {
    buf.reserve(4096);
    if s.read_buf(buf).await? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

/// Status, header length, body length and `Connection: close`, once the head is complete.
fn parse_head(buf: &[u8]) -> std::io::Result<Option<(u16, usize, usize, bool)>> {
    let invalid = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(invalid(&format!("response head: {e}"))),
    };
    let status = response.code.ok_or_else(|| invalid("status"))?;
    let mut body = 0;
    let mut close = false;
    for header in response.headers.iter() {
        let value = std::str::from_utf8(header.value)
            .map_err(|_| invalid("header"))?
            .trim();
        if header.name.eq_ignore_ascii_case("content-length") {
            body = value.parse().map_err(|_| invalid("content-length"))?;
        } else if header.name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case("close");
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(std::io::Error::other("chunked responses are not supported"));
        }
    }
    Ok(Some((status, head_len, body, close)))
}

#[derive(clickhouse::Row, Deserialize)]
struct Found {
    postback_id: String,
}

/// Every 50 ms (from the start of one poll to the next, however long a query takes): which
/// open probes have a row in `conversions` or `unattributed`. A row a query finds was
/// queryable when that query started, so that is the time the probe is counted to; the
/// query's own duration is recorded apart.
async fn poll_probes(
    e2e: E2e,
    shared: Rc<RefCell<Shared>>,
    done: Rc<RefCell<bool>>,
) -> anyhow::Result<()> {
    let client = clickmatch_clickhouse::ClickHouseSettings::new(
        e2e.clickhouse_url.clone(),
        e2e.database.clone(),
    )
    .client();
    let mut finished_at: Option<Instant> = None;
    let mut polls = tokio::time::interval(Duration::from_millis(50));
    polls.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    polls.tick().await;
    loop {
        polls.tick().await;
        let open: Vec<(String, u64)> = shared.borrow().probes_open.clone();
        if *done.borrow() {
            let since = *finished_at.get_or_insert_with(Instant::now);
            if open.is_empty() || since.elapsed() > Duration::from_secs(30) {
                return Ok(());
            }
        }
        if open.is_empty() {
            continue;
        }
        let oldest = open.iter().map(|(_, t)| *t).min().unwrap_or(0);
        let ids = open
            .iter()
            .map(|(id, _)| format!("'{}'", id.replace(['\'', '\\'], "")))
            .collect::<Vec<_>>()
            .join(",");
        let query = format!(
            "SELECT postback_id FROM conversions WHERE conversion_time_ms >= {} AND postback_id IN ({ids}) \
             UNION ALL SELECT postback_id FROM unattributed WHERE received_time_ms >= {} AND postback_id IN ({ids})",
            oldest.saturating_sub(10_000),
            oldest.saturating_sub(10_000)
        );
        let started = unix_ms();
        let timer = Instant::now();
        let found: Vec<Found> = match client.query(&query).fetch_all().await {
            Ok(rows) => rows,
            Err(_) => continue,
        };
        let answered = unix_ms();
        let mut s = shared.borrow_mut();
        s.probe_query_times.push(timer.elapsed().as_micros() as u64);
        for row in found {
            if let Some(i) = s
                .probes_open
                .iter()
                .position(|(id, _)| *id == row.postback_id)
            {
                let (_, sent) = s.probes_open.swap_remove(i);
                s.probe_latencies.push(started.saturating_sub(sent) * 1000);
                s.probe_answered.push(answered.saturating_sub(sent) * 1000);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_and_percentiles() {
        let buf = b"HTTP/1.1 302 Found\r\nlocation: x\r\ncontent-length: 3\r\n\r\nabc";
        assert_eq!(
            parse_head(buf).unwrap(),
            Some((302, buf.len() - 3, 3, false))
        );
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\n").unwrap(), None);
        let closing = b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\n";
        assert_eq!(
            parse_head(closing).unwrap(),
            Some((503, closing.len(), 0, true))
        );
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").is_err());
        assert!(parse_head(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        let p = Percentiles::of((1..=1000).map(|n| n * 1000).collect());
        assert_eq!(p.p50_ms, 500.0);
        assert_eq!(p.p99_ms, 990.0);
        assert_eq!(p.max_ms, 1000.0);
        let line = Line::parse("/postback?cid=x\tattributed");
        assert!(line.attributes());
    }
}
