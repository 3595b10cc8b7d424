//! The click spool: a local append-only disk log of clicks the broker did not acknowledge, and
//! the background task that replays them to Kafka when the broker is back.
//!
//! A click goes here only after librdkafka reported it failed (enqueue refused, or delivery
//! error or timeout after its own retries), so a click librdkafka delivered late is never
//! spooled as well. The log is a folder of segments `{seq:020}.spool`; each record is
//!
//! ```text
//! u32 LE length | u32 LE FNV-1a of the payload | payload: JSON {"topic","key","value"}
//! ```
//!
//! Appends go to the newest segment and are synced to disk before `append` returns
//! (`fsync = always`) or within an interval (`interval`). Past `max_bytes` on disk a click is
//! refused: counted in `clickmatch_ingest_spool_records_total{result="refused"}` and logged as
//! an error, never dropped silently. The replayer takes the oldest segment, publishes every
//! record and waits for the acknowledgements; records that fail again are appended anew, then
//! the segment is deleted. A crash between the acknowledgements and the deletion replays the
//! segment again: at-least-once, and the clicks table is keyed by click ID (ReplacingMergeTree).
//!
//! All file work is blocking: call it through `spawn_blocking` (the replayer does).

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clickmatch_config::{SpoolConfig, SpoolFsync};
use clickmatch_kafka::Publisher;
use prometheus::{IntCounterVec, IntGauge, Opts, Registry};
use serde::{Deserialize, Serialize};

const SEGMENT_SUFFIX: &str = ".spool";
const LOCK_FILE: &str = "LOCK";
const HEADER_BYTES: u64 = 8;
/// A record longer than this is not a click: the rest of the segment is unreadable.
const MAX_RECORD_BYTES: u32 = 16 * 1024 * 1024;
/// How often the replayer looks for work (and syncs under `fsync = interval`).
const TICK: Duration = Duration::from_millis(250);
/// Pause after a replay that did not get every record acknowledged.
const RETRY_PAUSE: Duration = Duration::from_secs(2);

/// Why a click could not be spooled.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool full: {bytes} bytes on disk, limit {limit}")]
    Full { bytes: u64, limit: u64 },
    #[error("spool i/o on {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("spool folder {0} is in use by another process")]
    Locked(PathBuf),
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_owned(),
        source,
    }
}

/// One spooled record: what to publish again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpoolRecord {
    pub topic: String,
    pub key: String,
    pub value: String,
}

/// Spool metrics: depth, bytes and what happened to records.
#[derive(Clone)]
pub struct SpoolMetrics {
    pub depth: IntGauge,
    pub bytes: IntGauge,
    pub records: IntCounterVec,
}

impl SpoolMetrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let depth = IntGauge::new(
            "clickmatch_ingest_spool_depth_records",
            "Clicks in the local spool, waiting to be replayed to Kafka.",
        )?;
        let bytes = IntGauge::new(
            "clickmatch_ingest_spool_bytes",
            "Bytes of spool segments on disk.",
        )?;
        let records = IntCounterVec::new(
            Opts::new(
                "clickmatch_ingest_spool_records_total",
                "Spooled clicks by result: spooled, replayed (acknowledged by the broker), \
                 refused (spool full or unwritable: lost), unreadable (torn or corrupt on disk).",
            ),
            &["result"],
        )?;
        registry.register(Box::new(depth.clone()))?;
        registry.register(Box::new(bytes.clone()))?;
        registry.register(Box::new(records.clone()))?;
        Ok(SpoolMetrics {
            depth,
            bytes,
            records,
        })
    }
}

#[derive(Debug)]
struct Segment {
    seq: u64,
    path: PathBuf,
    records: u64,
    bytes: u64,
}

struct Writer {
    segment: Segment,
    file: File,
    dirty: bool,
}

struct Inner {
    current: Option<Writer>,
    sealed: VecDeque<Segment>,
    /// The segment the replayer works on (removed from `sealed`, still counted).
    replaying: Option<u64>,
    next_seq: u64,
    records: u64,
    bytes: u64,
    last_sync: Instant,
}

/// Status of the spool, for the admin endpoint.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SpoolStatus {
    pub depth_records: u64,
    pub bytes: u64,
    pub segments: usize,
    pub max_bytes: u64,
}

/// The spool of one ingest process (the folder is locked against a second one).
pub struct Spool {
    dir: PathBuf,
    config: SpoolConfig,
    inner: Mutex<Inner>,
    metrics: SpoolMetrics,
    _lock: File,
}

fn fnv1a(bytes: &[u8]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for b in bytes {
        hash ^= u32::from(*b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}{SEGMENT_SUFFIX}"))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Encodes one record (header and payload).
pub fn encode_record(record: &SpoolRecord) -> Vec<u8> {
    let payload = serde_json::to_vec(record).expect("spool records serialize");
    let mut out = Vec::with_capacity(payload.len() + HEADER_BYTES as usize);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&fnv1a(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

/// What a segment holds: the readable records, and whether unreadable bytes followed them
/// (a torn last write, or corruption).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SegmentContents {
    pub records: Vec<SpoolRecord>,
    pub unreadable_tail: bool,
}

/// Decodes records from `bytes` until the end or the first unreadable one. Never panics and
/// never allocates more than the input's size.
pub fn decode_records(bytes: &[u8]) -> SegmentContents {
    let mut out = SegmentContents::default();
    let mut rest = bytes;
    while !rest.is_empty() {
        if rest.len() < HEADER_BYTES as usize {
            out.unreadable_tail = true;
            break;
        }
        let len = u32::from_le_bytes(rest[0..4].try_into().expect("4 bytes"));
        let sum = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
        let body = &rest[8..];
        if len > MAX_RECORD_BYTES || body.len() < len as usize {
            out.unreadable_tail = true;
            break;
        }
        let payload = &body[..len as usize];
        let record = (fnv1a(payload) == sum)
            .then(|| serde_json::from_slice::<SpoolRecord>(payload).ok())
            .flatten();
        match record {
            Some(record) => out.records.push(record),
            None => {
                out.unreadable_tail = true;
                break;
            }
        }
        rest = &body[len as usize..];
    }
    out
}

fn read_segment(path: &Path) -> Result<SegmentContents, SpoolError> {
    let mut bytes = Vec::new();
    BufReader::new(File::open(path).map_err(io_error(path))?)
        .read_to_end(&mut bytes)
        .map_err(io_error(path))?;
    Ok(decode_records(&bytes))
}

impl Spool {
    /// Opens (or creates) the spool in `config.dir`; segments left by an earlier run are
    /// counted and will be replayed.
    pub fn open(config: &SpoolConfig, metrics: SpoolMetrics) -> Result<Spool, SpoolError> {
        let dir = PathBuf::from(&config.dir);
        fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_error(&lock_path))?;
        if lock.try_lock().is_err() {
            return Err(SpoolError::Locked(dir));
        }
        let mut seqs: Vec<u64> = fs::read_dir(&dir)
            .map_err(io_error(&dir))?
            .filter_map(|entry| entry.ok())
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                name.strip_suffix(SEGMENT_SUFFIX)
                    .and_then(|n| n.parse::<u64>().ok())
            })
            .collect();
        seqs.sort_unstable();
        let mut sealed = VecDeque::new();
        let (mut records, mut bytes) = (0, 0);
        for seq in &seqs {
            let path = segment_path(&dir, *seq);
            let contents = read_segment(&path)?;
            let size = fs::metadata(&path).map_err(io_error(&path))?.len();
            if contents.unreadable_tail {
                tracing::warn!(segment = %path.display(), readable = contents.records.len(), "spool segment ends in unreadable bytes (a torn write); its readable records will be replayed");
                metrics.records.with_label_values(&["unreadable"]).inc();
            }
            records += contents.records.len() as u64;
            bytes += size;
            sealed.push_back(Segment {
                seq: *seq,
                path,
                records: contents.records.len() as u64,
                bytes: size,
            });
        }
        if records > 0 {
            tracing::info!(records, segments = sealed.len(), dir = %dir.display(), "spooled clicks from an earlier run will be replayed");
        }
        metrics.depth.set(records as i64);
        metrics.bytes.set(bytes as i64);
        Ok(Spool {
            dir,
            config: config.clone(),
            inner: Mutex::new(Inner {
                current: None,
                sealed,
                replaying: None,
                next_seq: seqs.last().map_or(1, |s| s + 1),
                records,
                bytes,
                last_sync: Instant::now(),
            }),
            metrics,
            _lock: lock,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn metrics(&self) -> &SpoolMetrics {
        &self.metrics
    }

    /// Records in the spool.
    pub fn depth(&self) -> u64 {
        self.inner.lock().expect("spool lock").records
    }

    pub fn status(&self) -> SpoolStatus {
        let inner = self.inner.lock().expect("spool lock");
        SpoolStatus {
            depth_records: inner.records,
            bytes: inner.bytes,
            segments: inner.sealed.len()
                + usize::from(inner.current.is_some())
                + usize::from(inner.replaying.is_some()),
            max_bytes: self.config.max_bytes,
        }
    }

    fn publish_gauges(&self, inner: &Inner) {
        self.metrics.depth.set(inner.records as i64);
        self.metrics.bytes.set(inner.bytes as i64);
    }

    /// Appends one record; durable on return under `fsync = always`. Blocking.
    pub fn append(&self, record: &SpoolRecord) -> Result<(), SpoolError> {
        let bytes = encode_record(record);
        let mut inner = self.inner.lock().expect("spool lock");
        self.append_locked(&mut inner, &bytes)?;
        self.publish_gauges(&inner);
        Ok(())
    }

    fn append_locked(&self, inner: &mut Inner, bytes: &[u8]) -> Result<(), SpoolError> {
        let len = bytes.len() as u64;
        if inner.bytes + len > self.config.max_bytes {
            return Err(SpoolError::Full {
                bytes: inner.bytes,
                limit: self.config.max_bytes,
            });
        }
        if inner.current.is_none() {
            let seq = inner.next_seq;
            inner.next_seq += 1;
            let path = segment_path(&self.dir, seq);
            let file = OpenOptions::new()
                .create_new(true)
                .append(true)
                .open(&path)
                .map_err(io_error(&path))?;
            // The new file's name must survive a crash too.
            sync_dir(&self.dir).map_err(io_error(&self.dir))?;
            inner.current = Some(Writer {
                segment: Segment {
                    seq,
                    path,
                    records: 0,
                    bytes: 0,
                },
                file,
                dirty: false,
            });
        }
        let writer = inner.current.as_mut().expect("current segment");
        let path = writer.segment.path.clone();
        if let Err(e) = writer.file.write_all(bytes) {
            // A partial write leaves a torn record: start a fresh segment for the next one.
            let _ = writer.file.sync_data();
            let full = inner.current.take().expect("current segment");
            if full.segment.records > 0 {
                inner.sealed.push_back(full.segment);
            }
            return Err(SpoolError::Io { path, source: e });
        }
        writer.segment.records += 1;
        writer.segment.bytes += len;
        writer.dirty = true;
        inner.records += 1;
        inner.bytes += len;
        let sync_now = match self.config.fsync {
            SpoolFsync::Always => true,
            SpoolFsync::IntervalMs(ms) => inner.last_sync.elapsed() >= Duration::from_millis(ms),
        };
        if sync_now {
            Self::sync_locked(inner)?;
        }
        let writer = inner.current.as_ref().expect("current segment");
        if writer.segment.bytes >= self.config.segment_bytes {
            Self::seal_locked(inner)?;
        }
        Ok(())
    }

    fn sync_locked(inner: &mut Inner) -> Result<(), SpoolError> {
        if let Some(writer) = inner.current.as_mut() {
            if writer.dirty {
                writer
                    .file
                    .sync_data()
                    .map_err(io_error(&writer.segment.path))?;
                writer.dirty = false;
            }
        }
        inner.last_sync = Instant::now();
        Ok(())
    }

    fn seal_locked(inner: &mut Inner) -> Result<(), SpoolError> {
        Self::sync_locked(inner)?;
        if let Some(writer) = inner.current.take() {
            inner.sealed.push_back(writer.segment);
        }
        Ok(())
    }

    /// Syncs appended records under `fsync = interval`. Blocking.
    pub fn sync(&self) -> Result<(), SpoolError> {
        let mut inner = self.inner.lock().expect("spool lock");
        Self::sync_locked(&mut inner)
    }

    /// The oldest segment's records, for replay; the segment stays counted until
    /// [`Spool::finish`]. Seals the open segment when nothing older waits. Blocking.
    pub fn take_oldest(&self) -> Result<Option<(u64, Vec<SpoolRecord>)>, SpoolError> {
        let mut inner = self.inner.lock().expect("spool lock");
        if inner.replaying.is_some() {
            return Ok(None);
        }
        if inner.sealed.is_empty() {
            if inner
                .current
                .as_ref()
                .is_some_and(|w| w.segment.records > 0)
            {
                Self::seal_locked(&mut inner)?;
            } else {
                return Ok(None);
            }
        }
        let Some(segment) = inner.sealed.front() else {
            return Ok(None);
        };
        let seq = segment.seq;
        let path = segment.path.clone();
        inner.replaying = Some(seq);
        drop(inner);
        match read_segment(&path) {
            Ok(contents) => Ok(Some((seq, contents.records))),
            Err(e) => {
                self.inner.lock().expect("spool lock").replaying = None;
                Err(e)
            }
        }
    }

    /// Ends the replay of segment `seq`: `failed` records are appended anew, then the segment
    /// is deleted. Blocking.
    pub fn finish(&self, seq: u64, failed: &[SpoolRecord]) -> Result<(), SpoolError> {
        let mut inner = self.inner.lock().expect("spool lock");
        inner.replaying = None;
        let Some(index) = inner.sealed.iter().position(|s| s.seq == seq) else {
            return Ok(());
        };
        for record in failed {
            self.append_locked(&mut inner, &encode_record(record))?;
        }
        Self::sync_locked(&mut inner)?;
        let segment = inner.sealed.remove(index).expect("segment index");
        fs::remove_file(&segment.path).map_err(io_error(&segment.path))?;
        sync_dir(&self.dir).map_err(io_error(&self.dir))?;
        inner.records = inner.records.saturating_sub(segment.records);
        inner.bytes = inner.bytes.saturating_sub(segment.bytes);
        self.publish_gauges(&inner);
        Ok(())
    }

    /// Lets a failed replay be retried later (nothing was published or nothing is known).
    pub fn abandon(&self, seq: u64) {
        let mut inner = self.inner.lock().expect("spool lock");
        if inner.replaying == Some(seq) {
            inner.replaying = None;
        }
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        if let Ok(mut inner) = self.inner.lock() {
            let _ = Self::sync_locked(&mut inner);
        }
    }
}

/// Replays the spool to Kafka until `shutdown` resolves: whenever it holds records and the
/// broker answers, the oldest segment is published and deleted once acknowledged.
pub async fn replay(
    spool: Arc<Spool>,
    publisher: Publisher,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(TICK) => {}
        }
        if let SpoolFsync::IntervalMs(_) = spool.config.fsync {
            let s = spool.clone();
            if let Ok(Err(e)) = tokio::task::spawn_blocking(move || s.sync()).await {
                tracing::error!(error = %e, "cannot sync the click spool");
            }
        }
        if spool.depth() == 0 {
            continue;
        }
        let p = publisher.clone();
        let reachable = tokio::task::spawn_blocking(move || p.is_reachable(Duration::from_secs(1)))
            .await
            .unwrap_or(false);
        if !reachable {
            continue;
        }
        match replay_one(&spool, &publisher).await {
            Ok(0) => {}
            Ok(failed) => {
                tracing::warn!(
                    failed,
                    "spooled clicks not acknowledged on replay; kept for the next try"
                );
                tokio::select! {
                    _ = &mut shutdown => return,
                    _ = tokio::time::sleep(RETRY_PAUSE) => {}
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "click spool replay failed");
                tokio::select! {
                    _ = &mut shutdown => return,
                    _ = tokio::time::sleep(RETRY_PAUSE) => {}
                }
            }
        }
    }
}

/// Replays the oldest segment; returns how many records failed again.
async fn replay_one(spool: &Arc<Spool>, publisher: &Publisher) -> Result<usize, SpoolError> {
    let s = spool.clone();
    let taken = tokio::task::spawn_blocking(move || s.take_oldest())
        .await
        .expect("spool task")?;
    let Some((seq, records)) = taken else {
        return Ok(0);
    };
    let mut deliveries = Vec::with_capacity(records.len());
    for record in &records {
        deliveries.push(publisher.enqueue(&record.topic, &record.key, record.value.as_bytes()));
    }
    let mut failed = Vec::new();
    for (record, delivery) in records.iter().zip(deliveries) {
        let result = match delivery {
            Ok(delivery) => delivery.await.map(|_| ()),
            Err(e) => Err(e),
        };
        if result.is_err() {
            failed.push(record.clone());
        }
    }
    let replayed = records.len() - failed.len();
    let s = spool.clone();
    let retry = failed.clone();
    let finished = tokio::task::spawn_blocking(move || s.finish(seq, &retry))
        .await
        .expect("spool task");
    if let Err(e) = finished {
        spool.abandon(seq);
        return Err(e);
    }
    spool
        .metrics
        .records
        .with_label_values(&["replayed"])
        .inc_by(replayed as u64);
    if replayed > 0 {
        tracing::info!(
            replayed,
            remaining = spool.depth(),
            "spooled clicks replayed to Kafka"
        );
    }
    Ok(failed.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path, max_bytes: u64, segment_bytes: u64) -> SpoolConfig {
        SpoolConfig {
            dir: dir.display().to_string(),
            max_bytes,
            segment_bytes,
            fsync: SpoolFsync::Always,
        }
    }

    fn record(n: u32) -> SpoolRecord {
        SpoolRecord {
            topic: "clicks".into(),
            key: format!("k{n}"),
            value: format!("{{\"v\":1,\"n\":{n}}}"),
        }
    }

    fn metrics() -> SpoolMetrics {
        SpoolMetrics::new(&Registry::new()).unwrap()
    }

    #[test]
    fn records_survive_a_reopen_and_are_replayed_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        {
            let spool = Spool::open(&config(dir.path(), 1 << 20, 4096), metrics()).unwrap();
            for n in 0..100 {
                spool.append(&record(n)).unwrap();
            }
            assert_eq!(spool.depth(), 100);
        }
        let spool = Spool::open(&config(dir.path(), 1 << 20, 4096), metrics()).unwrap();
        assert_eq!(spool.depth(), 100);
        let mut seen = Vec::new();
        while let Some((seq, records)) = spool.take_oldest().unwrap() {
            seen.extend(records.iter().map(|r| r.key.clone()));
            spool.finish(seq, &[]).unwrap();
        }
        let expected: Vec<String> = (0..100).map(|n| format!("k{n}")).collect();
        assert_eq!(seen, expected);
        assert_eq!(spool.depth(), 0);
        assert_eq!(spool.status().bytes, 0);
    }

    #[test]
    fn failed_records_are_kept_and_the_rest_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(&config(dir.path(), 1 << 20, 1 << 20), metrics()).unwrap();
        for n in 0..10 {
            spool.append(&record(n)).unwrap();
        }
        let (seq, records) = spool.take_oldest().unwrap().unwrap();
        assert_eq!(records.len(), 10);
        spool.finish(seq, &records[3..5]).unwrap();
        assert_eq!(spool.depth(), 2);
        let (seq, records) = spool.take_oldest().unwrap().unwrap();
        assert_eq!(records, vec![record(3), record(4)]);
        spool.finish(seq, &[]).unwrap();
        assert_eq!(spool.depth(), 0);
    }

    #[test]
    fn a_full_spool_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let one = encode_record(&record(0)).len() as u64;
        let spool = Spool::open(&config(dir.path(), one * 3, 4096), metrics()).unwrap();
        for n in 0..3 {
            spool.append(&record(n)).unwrap();
        }
        assert!(matches!(
            spool.append(&record(3)),
            Err(SpoolError::Full { .. })
        ));
        assert_eq!(spool.depth(), 3);
    }

    #[test]
    fn a_second_process_cannot_share_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Spool::open(&config(dir.path(), 1 << 20, 4096), metrics()).unwrap();
        assert!(matches!(
            Spool::open(&config(dir.path(), 1 << 20, 4096), metrics()),
            Err(SpoolError::Locked(_))
        ));
    }

    #[test]
    fn a_torn_tail_keeps_the_records_before_it() {
        let mut bytes = Vec::new();
        for n in 0..3 {
            bytes.extend(encode_record(&record(n)));
        }
        let whole = bytes.len();
        bytes.extend(&encode_record(&record(9))[..5]);
        let contents = decode_records(&bytes);
        assert_eq!(contents.records.len(), 3);
        assert!(contents.unreadable_tail);
        // A flipped byte inside a record stops the read there.
        let mut corrupt = bytes[..whole].to_vec();
        corrupt[whole - 3] ^= 0xff;
        let contents = decode_records(&corrupt);
        assert_eq!(contents.records.len(), 2);
        assert!(contents.unreadable_tail);
    }
}
