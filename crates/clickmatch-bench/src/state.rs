//! The joiner's state at scale, measured in-process: the real store (`StateDb` /
//! `PartitionStore` on fjall) under the real join (`PartitionJoin`), fed with synthetic clicks
//! spread over 29 days of a 30-day window (and a postback for every 50th click), committed with
//! checkpoints as the joiner commits them. This measures exactly the state: no Kafka, no
//! ClickHouse, no retention cap.

use std::path::Path;
use std::time::{Duration, Instant};

use clickmatch_core::join::{JoinStore, PartitionJoin};
use clickmatch_core::model::DAY_MS;
use clickmatch_store::{Checkpoint, PartitionStore, StateDb, LAYOUT_VERSION};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::procs;
use crate::traffic::{Kind, Traffic};
use clickmatch_core::subs::SubSet;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StateSpec {
    pub partitions: i32,
    pub clicks: u64,
    /// Click counts at which to measure.
    pub marks: Vec<u64>,
    pub cache_mib: u64,
    /// Events between commits (the joiner commits once per ClickHouse batch).
    pub commit_every: u64,
    /// The subs conversions carry, each kept per click (`None`: the configuration's default).
    pub conversion_subs: Option<SubSet>,
}

/// The state after `clicks` clicks.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StateMark {
    pub clicks: u64,
    pub postbacks: u64,
    pub seconds: f64,
    pub clicks_per_s: f64,
    pub rss_bytes: u64,
    pub peak_rss_bytes: u64,
    /// fjall's own count (tables and journals), as the joiner's metric reports it.
    pub disk_bytes: u64,
    /// The same once background compaction has settled.
    pub settled_disk_bytes: u64,
    /// Total (settled) bytes per click held.
    pub bytes_per_click: f64,
    /// The tables alone (without fjall's journal, whose size is bounded and preallocated).
    pub table_bytes: u64,
    pub table_bytes_per_click: f64,
    /// Keyspace folders (partition-day buckets and per-partition keyspaces).
    pub keyspaces: usize,
}

fn partition_of(id: &str, partitions: i32) -> usize {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    (h % partitions as u64) as usize
}

struct Part {
    join: PartitionJoin<PartitionStore>,
    clicks: i64,
    postbacks: i64,
}

fn commit(db: &StateDb, parts: &mut [Part]) -> anyhow::Result<()> {
    let mut stores: Vec<(&mut PartitionStore, Checkpoint)> = parts
        .iter_mut()
        .map(|p| {
            let checkpoint = Checkpoint {
                version: LAYOUT_VERSION,
                clicks_next: p.clicks,
                postbacks_next: p.postbacks,
                watermark_ms: p.join.watermark_ms(),
            };
            (p.join.store_mut(), checkpoint)
        })
        .collect();
    db.commit(&mut stores)?;
    Ok(())
}

/// Waits until fjall's disk usage stops changing (at most `limit`).
fn settle(db: &StateDb, limit: Duration) -> u64 {
    let deadline = Instant::now() + limit;
    let mut last = db.disk_bytes();
    let mut stable_since = Instant::now();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        let now = db.disk_bytes();
        if now != last {
            last = now;
            stable_since = Instant::now();
        } else if stable_since.elapsed() >= Duration::from_secs(2) {
            break;
        }
    }
    last
}

/// Loads `spec.clicks` clicks into a fresh state in `dir`, measuring at each mark. Every
/// 1000th click is written to `dir/../sample.txt` for the restore's lookups.
pub fn load(dir: &Path, spec: &StateSpec) -> anyhow::Result<Vec<StateMark>> {
    let config = Traffic::bench_config();
    let mut account = config.account.clone();
    if let Some(subs) = spec.conversion_subs {
        account.conversion_subs = subs;
    }
    let mut traffic = Traffic::new(&config, 42);
    let mut rng = StdRng::seed_from_u64(43);
    let db = StateDb::open(dir, spec.cache_mib)?;
    let mut parts = Vec::new();
    for p in 0..spec.partitions {
        parts.push(Part {
            join: PartitionJoin::new(db.partition(p)?),
            clicks: 0,
            postbacks: 0,
        });
    }
    let now = crate::unix_ms();
    let span = 29 * DAY_MS;
    let start_ms = now - span;
    let mut recent: Vec<clickmatch_core::records::ClickRecord> = Vec::with_capacity(4096);
    let mut sample = String::new();
    let mut marks = Vec::new();
    let mut postbacks = 0u64;
    let started = Instant::now();
    let mut since_commit = 0u64;
    for i in 0..spec.clicks {
        let time = start_ms + i * span / spec.clicks.max(1);
        let click = traffic.click(time);
        let part = partition_of(&click.click_id, spec.partitions);
        let p = &mut parts[part];
        p.join.on_click(&account, &click)?;
        p.clicks += 1;
        since_commit += 1;
        if i % 1000 == 0 {
            sample.push_str(&format!("{}\t{}\n", click.click_id, click.time_ms));
        }
        if recent.len() < 4096 {
            recent.push(click);
        } else {
            let slot = rng.random_range(0..recent.len());
            recent[slot] = click;
        }
        if i % 50 == 49 {
            let target = recent[rng.random_range(0..recent.len())].clone();
            let spec_pb = traffic.postback_for(&target, Kind::Attributed);
            let received = target.time_ms + 60_000;
            let record = spec_pb.record(format!("state-{i:x}"), received);
            let part = partition_of(&target.click_id, spec.partitions);
            let p = &mut parts[part];
            let position = p.postbacks;
            p.join.on_postback(&account, record, position, received)?;
            p.postbacks += 1;
            postbacks += 1;
            since_commit += 1;
        }
        if since_commit >= spec.commit_every {
            commit(&db, &mut parts)?;
            since_commit = 0;
        }
        let n = i + 1;
        if spec.marks.contains(&n) {
            commit(&db, &mut parts)?;
            since_commit = 0;
            let seconds = started.elapsed().as_secs_f64();
            let disk_bytes = db.disk_bytes();
            let settled = settle(&db, Duration::from_secs(20));
            let (rss, peak) = procs::rss(std::process::id());
            let table_bytes = procs::dir_bytes(&dir.join("keyspaces"));
            let buckets = std::fs::read_dir(dir.join("keyspaces"))
                .map(|d| d.count())
                .unwrap_or(0);
            let mark = StateMark {
                clicks: n,
                postbacks,
                seconds,
                clicks_per_s: n as f64 / seconds,
                rss_bytes: rss,
                peak_rss_bytes: peak,
                disk_bytes,
                settled_disk_bytes: settled,
                bytes_per_click: settled as f64 / n as f64,
                table_bytes,
                table_bytes_per_click: table_bytes as f64 / n as f64,
                keyspaces: buckets,
            };
            eprintln!("state: {mark:?}");
            marks.push(mark);
        }
    }
    commit(&db, &mut parts)?;
    if let Some(parent) = dir.parent() {
        std::fs::write(parent.join("sample.txt"), sample)?;
    }
    Ok(marks)
}

/// Restore from the checkpoint in `dir`, as the joiner does on assignment.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RestoreResult {
    pub clicks: u64,
    /// Open the database and restore every partition from its checkpoint.
    pub seconds: f64,
    pub seconds_per_million_clicks: f64,
    pub rss_bytes: u64,
    /// Lookups of sampled clicks right after the restore (cold cache).
    pub lookups: usize,
    pub lookups_found: usize,
    pub lookup_p50_us: f64,
    pub lookup_p99_us: f64,
}

pub fn restore(dir: &Path, partitions: i32, cache_mib: u64) -> anyhow::Result<RestoreResult> {
    let config = Traffic::bench_config();
    let account = config.account.clone();
    let started = Instant::now();
    let db = StateDb::open(dir, cache_mib)?;
    let mut joins = Vec::new();
    let mut clicks = 0;
    for p in 0..partitions {
        let checkpoint = db
            .checkpoint(p)?
            .ok_or_else(|| anyhow::anyhow!("no checkpoint for partition {p}"))?;
        let store = db.partition(p)?;
        let join = PartitionJoin::restore(&account, store, checkpoint.watermark_ms)?;
        clicks += checkpoint.clicks_next as u64;
        joins.push(join);
    }
    let seconds = started.elapsed().as_secs_f64();
    let sample = dir
        .parent()
        .map(|p| std::fs::read_to_string(p.join("sample.txt")).unwrap_or_default())
        .unwrap_or_default();
    let mut times = Vec::new();
    let mut found = 0;
    for line in sample.lines() {
        let Some((id, time)) = line.split_once('\t') else {
            continue;
        };
        let time: u64 = time.parse()?;
        let join = &joins[partition_of(id, partitions)];
        let t = Instant::now();
        if join.store().click(id, Some(time))?.is_some() {
            found += 1;
        }
        times.push(t.elapsed().as_nanos() as u64);
    }
    times.sort_unstable();
    let pct = |q: f64| {
        if times.is_empty() {
            0.0
        } else {
            times[((times.len() as f64 * q) as usize).min(times.len() - 1)] as f64 / 1000.0
        }
    };
    let (rss, _) = procs::rss(std::process::id());
    Ok(RestoreResult {
        clicks,
        seconds,
        seconds_per_million_clicks: seconds / (clicks.max(1) as f64 / 1e6),
        rss_bytes: rss,
        lookups: times.len(),
        lookups_found: found,
        lookup_p50_us: pct(0.5),
        lookup_p99_us: pct(0.99),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_state_loads_and_restores() {
        let work = tempfile::tempdir().unwrap();
        let dir = work.path().join("state");
        let spec = StateSpec {
            partitions: 2,
            clicks: 3000,
            marks: vec![1000, 3000],
            cache_mib: 8,
            commit_every: 500,
            conversion_subs: None,
        };
        let marks = load(&dir, &spec).unwrap();
        assert_eq!(marks.len(), 2);
        assert!(marks[1].disk_bytes > 0);
        let restored = restore(&dir, 2, 8).unwrap();
        assert_eq!(restored.clicks, 3000);
        assert_eq!(restored.lookups, 3);
        assert_eq!(restored.lookups_found, 3);
    }
}
