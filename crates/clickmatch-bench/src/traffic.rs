//! Realistic, deterministic traffic: campaigns of several networks with sub-parameters,
//! postbacks in each network's dialect (its parameter names, tokens, status codes), network
//! retries, 2–5 % broken postbacks (literal macros, truncated or forged IDs, missing IDs, expired
//! clicks, mangled-but-salvageable values) and postbacks that arrive before their click.
//!
//! The same generator feeds every benchmark: request paths for wrk and the open-loop load
//! generator, and records produced straight to Kafka (as ingest would) for the joiner.

use clickmatch_config::Config;
use clickmatch_core::classify::partition_key;
use clickmatch_core::model::{Account, DAY_MS};
use clickmatch_core::presets;
use clickmatch_core::records::{
    ClickRecord, Enrichment, IngestVerdict, PostbackRecord, RECORD_VERSION,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Secret of the benchmark account (signs click IDs).
pub const SECRET: &str = "bench-secret-0123456789abcdef";
/// Campaigns per network.
pub const CAMPAIGNS_PER_NETWORK: usize = 3;

/// A network the benchmark account works with: its offer, postback route and share of traffic.
#[derive(Debug, Clone, Copy)]
pub struct NetworkSpec {
    pub network: &'static str,
    pub offer: &'static str,
    /// `None`: the global `/postback` route.
    pub route: Option<&'static str>,
    pub token: Option<&'static str>,
    /// Share of clicks, in percent.
    pub weight: u32,
}

pub const NETWORKS: &[NetworkSpec] = &[
    NetworkSpec {
        network: "tune",
        offer: "1",
        route: None,
        token: None,
        weight: 40,
    },
    NetworkSpec {
        network: "cake",
        offer: "2",
        route: Some("cake"),
        token: Some("cake-route-token-7f3a"),
        weight: 20,
    },
    NetworkSpec {
        network: "everflow",
        offer: "3",
        route: Some("everflow"),
        token: None,
        weight: 15,
    },
    NetworkSpec {
        network: "affise",
        offer: "4",
        route: Some("affise"),
        token: None,
        weight: 15,
    },
    NetworkSpec {
        network: "impact",
        offer: "5",
        route: Some("impact"),
        token: Some("impact-route-token-91c2"),
        weight: 10,
    },
];

/// The benchmark configuration (TOML): five networks, three campaigns each, a route per network
/// (TUNE on the global route). Kafka, ClickHouse and joiner settings come from the environment.
pub fn config_toml(grace_seconds: u64) -> String {
    let mut toml = format!(
        "# Written by clickmatch-bench: the benchmark account.\n\
         [account]\nsecret = \"{SECRET}\"\ngrace_seconds = {grace_seconds}\n\n\
         [ingest]\nlisten = \"127.0.0.1:8080\"\npublic_url = \"http://127.0.0.1:8080\"\n\n\
         [kafka]\nbootstrap_servers = \"127.0.0.1:9092\"\n\n\
         [clickhouse]\nurl = \"http://127.0.0.1:8123\"\ndatabase = \"clickmatch\"\n\n"
    );
    for spec in NETWORKS {
        let preset = presets::preset(spec.network).expect("known preset");
        toml.push_str(&format!(
            "[[offers]]\nid = \"{}\"\nnetwork = \"{}\"\npayout = \"postback\"\nwindow_days = 30\n\n",
            spec.offer, spec.network
        ));
        for k in 0..CAMPAIGNS_PER_NETWORK {
            toml.push_str(&format!(
                "[[campaigns]]\nid = \"{net}-{k}\"\noffer = \"{offer}\"\nsource = \"src-{k}\"\n\
                 url = \"https://{net}.example/aff_c?offer_id={offer}&{param}={{click_id}}&s3={{sub1}}&s4={{sub2}}&s5={{sub3}}\"\n\n",
                net = spec.network,
                offer = spec.offer,
                param = preset.offer_param,
            ));
        }
    }
    for spec in NETWORKS {
        if let Some(route) = spec.route {
            toml.push_str(&format!(
                "[routes.{route}]\noffer = \"{}\"\nnetwork = \"{}\"\n",
                spec.offer, spec.network
            ));
            if let Some(token) = spec.token {
                toml.push_str(&format!("token = \"{token}\"\n"));
            }
            toml.push('\n');
        }
    }
    toml
}

/// What a postback is meant to exercise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A correct postback for a click.
    Attributed,
    /// The network sends the same postback again.
    Retry,
    /// The click ID is mangled but recoverable (`<id>,<id>`).
    Repaired,
    /// The network's click-ID macro, unsubstituted.
    Macro,
    /// The click ID cut to 20 characters.
    Truncated,
    /// One character of the click ID changed.
    Forged,
    /// No click-ID parameter at all.
    Missing,
    /// A genuine click older than the window.
    Expired,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Attributed => "attributed",
            Kind::Retry => "retry",
            Kind::Repaired => "repaired",
            Kind::Macro => "macro",
            Kind::Truncated => "truncated",
            Kind::Forged => "forged",
            Kind::Missing => "missing",
            Kind::Expired => "expired",
        }
    }

    /// Whether the postback ends attributed (probes for latency use these).
    pub fn attributes(self) -> bool {
        matches!(self, Kind::Attributed | Kind::Repaired)
    }
}

/// A postback as a network would send it.
#[derive(Debug, Clone)]
pub struct PostbackSpec {
    pub kind: Kind,
    pub route: Option<String>,
    pub params: Vec<(String, String)>,
}

impl PostbackSpec {
    /// `/postback[/route]?...` with the parameters URL-encoded once.
    pub fn path(&self) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.params {
            query.append_pair(k, v);
        }
        match &self.route {
            Some(route) => format!("/postback/{route}?{}", query.finish()),
            None => format!("/postback?{}", query.finish()),
        }
    }

    /// The record ingest would publish for it.
    pub fn record(&self, postback_id: String, received_ms: u64) -> PostbackRecord {
        PostbackRecord {
            v: RECORD_VERSION,
            postback_id,
            received_ms,
            method: "GET".into(),
            route: self.route.clone(),
            params: self
                .params
                .iter()
                .map(|(k, v)| {
                    let redacted = if k == "token" { "***" } else { v.as_str() };
                    (k.clone(), redacted.to_string())
                })
                .collect(),
            remote_ip: "127.0.0.1".into(),
            verdict: IngestVerdict::Accepted,
            key: String::new(),
            origin: Default::default(),
        }
    }
}

/// A record in production order, as ingest would publish it.
// Mostly clicks: boxing them would allocate once more per record generated.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Record {
    Click(ClickRecord),
    Postback(PostbackRecord, Kind),
}

impl Record {
    /// Topic role (`true` for clicks), key and value.
    pub fn encode(&self, account: &Account) -> (bool, String, Vec<u8>) {
        match self {
            Record::Click(c) => (true, c.click_id.clone(), c.encode()),
            Record::Postback(p, _) => (false, partition_key(account, p), p.encode()),
        }
    }
}

/// A user agent of the benchmark's clicks and what ingest's parser makes of it.
struct Agent {
    user_agent: &'static str,
    device_type: &'static str,
    os: &'static str,
    browser: &'static str,
}

/// Clicks come from these, evenly: the click record carries what ingest's enrichment adds, so
/// the joiner decodes and keeps what it would in production.
const AGENTS: [Agent; 4] = [
    Agent {
        user_agent: "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/126 Mobile",
        device_type: "mobile",
        os: "Android",
        browser: "Chrome",
    },
    Agent {
        user_agent: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 \
                     (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
        device_type: "mobile",
        os: "iOS",
        browser: "Safari",
    },
    Agent {
        user_agent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like \
                     Gecko) Chrome/124.0.0.0 Safari/537.36",
        device_type: "desktop",
        os: "Windows 10",
        browser: "Chrome",
    },
    Agent {
        user_agent: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, \
                     like Gecko) Version/17.4 Safari/605.1.15",
        device_type: "desktop",
        os: "Mac OSX",
        browser: "Safari",
    },
];

/// Deterministic traffic for the benchmark account.
pub struct Traffic {
    pub account: Account,
    rng: StdRng,
    campaigns: Vec<(String, &'static NetworkSpec)>,
    postbacks: u64,
}

impl Traffic {
    pub fn new(config: &Config, seed: u64) -> Traffic {
        let mut campaigns = Vec::new();
        for spec in NETWORKS {
            for k in 0..CAMPAIGNS_PER_NETWORK {
                campaigns.push((format!("{}-{k}", spec.network), spec));
            }
        }
        Traffic {
            account: config.account.clone(),
            rng: StdRng::seed_from_u64(seed),
            campaigns,
            postbacks: 0,
        }
    }

    /// The benchmark configuration, parsed (no environment overrides).
    pub fn bench_config() -> Config {
        Config::from_toml(&config_toml(3), "bench.toml", &Default::default())
            .expect("the benchmark configuration is valid")
    }

    fn campaign(&mut self) -> (String, &'static NetworkSpec) {
        let mut roll = self.rng.random_range(0..100u32);
        for spec in NETWORKS {
            if roll < spec.weight {
                let k = self.rng.random_range(0..CAMPAIGNS_PER_NETWORK);
                return (format!("{}-{k}", spec.network), spec);
            }
            roll -= spec.weight;
        }
        self.campaigns[0].clone()
    }

    fn subs(&mut self) -> Vec<String> {
        let count = self.rng.random_range(1..=5usize);
        let mut subs = vec![String::new(); 10];
        subs[0] = format!("pub-{}", self.rng.random_range(0..500u32));
        if count > 1 {
            subs[1] = format!("site{}.example", self.rng.random_range(0..2000u32));
        }
        if count > 2 {
            subs[2] = ["mobile", "desktop", "tablet"][self.rng.random_range(0..3usize)].into();
        }
        if count > 3 {
            subs[3] = format!("cr-{:x}", self.rng.random::<u32>());
        }
        if count > 4 {
            subs[4] = format!("kw {} & more", self.rng.random_range(0..100u32));
        }
        subs
    }

    /// `GET /c/{campaign}?sub1=...` path of a visitor's click.
    pub fn click_path(&mut self) -> String {
        let (campaign, _) = self.campaign();
        let subs = self.subs();
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (i, value) in subs.iter().enumerate().filter(|(_, v)| !v.is_empty()) {
            query.append_pair(&format!("sub{}", i + 1), value);
        }
        format!("/c/{campaign}?{}", query.finish())
    }

    /// A click record at `time_ms`, as ingest would publish it.
    pub fn click(&mut self, time_ms: u64) -> ClickRecord {
        let (campaign, spec) = self.campaign();
        let subs = self.subs();
        let agent = &AGENTS[self.rng.random_range(0..AGENTS.len())];
        ClickRecord {
            v: RECORD_VERSION,
            click_id: self
                .account
                .signer
                .mint(time_ms, self.rng.random::<u64>())
                .to_string(),
            time_ms,
            campaign_id: campaign,
            offer_id: spec.offer.into(),
            source: "bench".into(),
            subs,
            ip: format!("198.51.100.{}", self.rng.random_range(1..255u32)),
            user_agent: agent.user_agent.into(),
            country: ["US", "DE", "BR", "IN", "FR"][self.rng.random_range(0..5usize)].into(),
            // What ingest's user-agent parsing makes of it (no geo database: no city or ASN).
            enrichment: Enrichment {
                device_type: agent.device_type.into(),
                os: agent.os.into(),
                browser: agent.browser.into(),
                ..Default::default()
            },
            is_test: false,
            foreign: false,
            cost: None,
        }
    }

    /// What the next postback exercises: about 1.5 % retries and 3 % broken ones (half a
    /// percent of those salvageable).
    pub fn pick_kind(&mut self) -> Kind {
        match self.rng.random_range(0..1000u32) {
            0..=14 => Kind::Retry,
            15..=20 => Kind::Macro,
            21..=25 => Kind::Truncated,
            26..=29 => Kind::Forged,
            30..=34 => Kind::Missing,
            35..=39 => Kind::Expired,
            40..=44 => Kind::Repaired,
            _ => Kind::Attributed,
        }
    }

    fn spec_of(&self, click: &ClickRecord) -> &'static NetworkSpec {
        NETWORKS
            .iter()
            .find(|s| s.offer == click.offer_id)
            .unwrap_or(&NETWORKS[0])
    }

    /// A postback for `click` in its network's dialect (`Retry` is sent like `Attributed`:
    /// the caller sends it twice).
    pub fn postback_for(&mut self, click: &ClickRecord, kind: Kind) -> PostbackSpec {
        let spec = self.spec_of(click);
        let preset = presets::preset(spec.network).expect("known preset");
        self.postbacks += 1;
        let n = self.postbacks;
        let mut params: Vec<(String, String)> = Vec::new();
        if let Some(token) = spec.token {
            params.push(("token".into(), token.into()));
        }
        let id = &click.click_id;
        let click_value = match kind {
            Kind::Attributed | Kind::Retry => Some(id.clone()),
            Kind::Repaired => Some(format!("{id},{id}")),
            Kind::Macro => Some(preset.click_id.macro_token.to_string()),
            Kind::Truncated => Some(id[..20].to_string()),
            Kind::Forged => {
                let mut forged = id.clone();
                let last = if forged.ends_with('0') { "1" } else { "0" };
                forged.replace_range(forged.len() - 1.., last);
                Some(forged)
            }
            Kind::Missing => None,
            Kind::Expired => Some(
                self.account
                    .signer
                    .mint(click.time_ms.saturating_sub(40 * DAY_MS), n)
                    .to_string(),
            ),
        };
        if let Some(value) = click_value {
            params.push((preset.click_id.param.to_string(), value));
        }
        if let Some(payout) = preset.payout {
            params.push((
                payout.param.into(),
                format!(
                    "{}.{:02}",
                    self.rng.random_range(1..40u32),
                    self.rng.random_range(0..100u32)
                ),
            ));
        }
        if spec.route.is_none() {
            if let Some(offer) = preset.offer {
                params.push((offer.param.into(), spec.offer.into()));
            }
        }
        if let Some(txid) = preset.txid {
            params.push((txid.param.into(), format!("tx-{n:x}")));
        }
        if let Some(status) = preset.status {
            let value = preset
                .status_map
                .first()
                .map(|(code, _)| code.to_string())
                .unwrap_or_else(|| "approved".into());
            params.push((status.param.into(), value));
        }
        PostbackSpec {
            kind,
            route: spec.route.map(String::from),
            params,
        }
    }

    /// Records for the joiner, in production order: `clicks` clicks spread over
    /// `[start_ms, start_ms + span_ms)`, a postback for every `1 / postback_ratio`-th click a few
    /// clicks later (retries sent twice), and 1 % of postbacks produced before their click.
    pub fn kafka_plan(
        &mut self,
        clicks: u64,
        postback_ratio: f64,
        start_ms: u64,
        span_ms: u64,
    ) -> Vec<Record> {
        let mut records = Vec::with_capacity((clicks as f64 * (1.0 + postback_ratio)) as usize);
        let mut delayed: std::collections::VecDeque<(u64, Record)> = Default::default();
        for i in 0..clicks {
            let time = start_ms + i * span_ms / clicks.max(1);
            let click = self.click(time);
            while delayed.front().is_some_and(|(due, _)| *due <= i) {
                records.push(delayed.pop_front().expect("front").1);
            }
            if self.rng.random_bool(postback_ratio.clamp(0.0, 1.0)) {
                let kind = self.pick_kind();
                let spec = self.postback_for(&click, kind);
                let received = time + 50;
                let record =
                    spec.record(format!("bench-{:016x}", self.rng.random::<u64>()), received);
                let before = kind == Kind::Attributed && self.rng.random_range(0..100) == 0;
                if before {
                    records.push(Record::Postback(record, kind));
                    records.push(Record::Click(click));
                    continue;
                }
                records.push(Record::Click(click));
                // The postback comes a few clicks later; a retry right after it.
                let due = i + self.rng.random_range(1..20u64);
                if kind == Kind::Retry {
                    let mut again = record.clone();
                    again.postback_id = format!("bench-{:016x}", self.rng.random::<u64>());
                    delayed.push_back((due, Record::Postback(record, kind)));
                    delayed.push_back((due, Record::Postback(again, kind)));
                } else {
                    delayed.push_back((due, Record::Postback(record, kind)));
                }
            } else {
                records.push(Record::Click(click));
            }
        }
        records.extend(delayed.into_iter().map(|(_, r)| r));
        records
    }
}

/// One line of a postback file for the HTTP load generators: `PATH\tKIND[\tCLICK_JSON]`; the
/// click, when present, is produced to Kafka shortly after the postback was sent (a postback
/// before its click).
pub fn postback_line(spec: &PostbackSpec, late_click: Option<&ClickRecord>) -> String {
    let mut line = format!("{}\t{}", spec.path(), spec.kind.as_str());
    if let Some(click) = late_click {
        line.push('\t');
        line.push_str(&String::from_utf8_lossy(&click.encode()));
    }
    line
}

/// Request paths of postbacks for clicks minted now (ingest does not look clicks up), for
/// throughput runs: one line each, retries included.
pub fn postback_paths(traffic: &mut Traffic, count: usize, now_ms: u64) -> Vec<String> {
    let mut lines = Vec::with_capacity(count);
    while lines.len() < count {
        let age = traffic.rng.random_range(0..3_600_000u64);
        let click = traffic.click(now_ms - age);
        let kind = traffic.pick_kind();
        let spec = traffic.postback_for(&click, kind);
        lines.push(spec.path());
        if kind == Kind::Retry {
            lines.push(spec.path());
        }
    }
    lines.truncate(count);
    lines
}

/// Clicks to prefill Kafka with and postback lines for them (see [`postback_line`]): one
/// postback per click over `[start_ms, start_ms + span_ms)`, 1 % of them for clicks that are
/// only produced after the postback was sent.
pub fn e2e_plan(
    traffic: &mut Traffic,
    postbacks: usize,
    start_ms: u64,
    span_ms: u64,
) -> (Vec<ClickRecord>, Vec<String>) {
    let mut clicks = Vec::with_capacity(postbacks);
    let mut lines = Vec::with_capacity(postbacks);
    let n = postbacks.max(1) as u64;
    let mut i = 0u64;
    while lines.len() < postbacks {
        let click = traffic.click(start_ms + i * span_ms / n);
        i += 1;
        let kind = traffic.pick_kind();
        let spec = traffic.postback_for(&click, kind);
        let late = kind == Kind::Attributed && traffic.rng.random_range(0..100) == 0;
        if late {
            lines.push(postback_line(&spec, Some(&click)));
            continue;
        }
        lines.push(postback_line(&spec, None));
        if kind == Kind::Retry {
            lines.push(postback_line(&spec, None));
        }
        clicks.push(click);
    }
    lines.truncate(postbacks);
    (clicks, lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clickmatch_core::classify::{classify, Classified};

    #[test]
    fn the_config_is_valid_and_the_mix_classifies_as_intended() {
        let config = Traffic::bench_config();
        let mut traffic = Traffic::new(&config, 7);
        let mut joinable = 0;
        let mut broken = 0;
        for _ in 0..2000 {
            let click = traffic.click(1_800_000_000_000);
            let kind = traffic.pick_kind();
            let spec = traffic.postback_for(&click, kind);
            let record = spec.record("p".into(), click.time_ms + 10);
            match classify(&config.account, &record) {
                Classified::Joinable(_) => joinable += 1,
                Classified::Final(_) => {
                    broken += 1;
                    assert!(
                        matches!(
                            kind,
                            Kind::Macro
                                | Kind::Truncated
                                | Kind::Forged
                                | Kind::Missing
                                | Kind::Expired
                        ),
                        "{kind:?} {:?}",
                        spec.params
                    );
                }
            }
        }
        assert!(joinable > 1800, "{joinable}");
        assert!(broken > 10 && broken < 100, "{broken}");
    }

    #[test]
    fn plans_keep_postbacks_near_their_clicks() {
        let config = Traffic::bench_config();
        let mut traffic = Traffic::new(&config, 1);
        let plan = traffic.kafka_plan(1000, 0.5, 1_800_000_000_000, 60_000);
        let clicks = plan
            .iter()
            .filter(|r| matches!(r, Record::Click(_)))
            .count();
        assert_eq!(clicks, 1000);
        assert!(plan.len() > 1400 && plan.len() < 1600, "{}", plan.len());
        let paths = postback_paths(&mut traffic, 100, 1_800_000_000_000);
        assert_eq!(paths.len(), 100);
        assert!(paths.iter().all(|p| p.starts_with("/postback")));
        assert!(traffic.click_path().starts_with("/c/"));
    }
}
