//! Disk-backed join state on fjall: one database per joiner process, keyspaces per partition.
//!
//! - `p{N}-d{day}`: clicks and seen conversions of one day bucket (by click time), so that
//!   expiry drops a whole keyspace instead of deleting key by key; a signed click ID names its
//!   time, so a lookup goes straight to one bucket.
//! - `p{N}-foreign`: clicks with foreign (opaque) IDs, looked up by their text; created with
//!   the first one.
//! - `pending`: postbacks waiting for their click, by partition and Kafka offset.
//! - `meta`: each partition's checkpoint: the offsets (next to read) that its state reflects.
//!
//! Keyspaces are few on purpose: creating one costs a directory, several files and fsyncs
//! (60 ms each on this project's CI disks; a fresh joiner of 32 partitions spent 6 s creating
//! the per-partition `meta`, `pending` and `foreign` keyspaces of layout 1).
//!
//! Writes go to an in-memory overlay and reach fjall in one atomic batch together with the
//! checkpoint, after ClickHouse acknowledged the rows they produced; the batch is synced to disk
//! before Kafka offsets are committed. A crash therefore always restores a state that matches
//! its checkpoint exactly.
//!
//! The joiner writes batch N to ClickHouse while it joins batch N+1, so the overlay is sealed
//! per batch ([`PartitionStore::seal`]): sealed writes stay readable until
//! [`StateDb::commit_sealed`] makes them durable, and newer writes never reach the disk with an
//! older checkpoint.

mod codec;

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};

use clickmatch_core::join::{
    bucket_of, JoinClick, JoinStore, Seen, StoreError, StoreResult, StoredPending,
};
use fjall::config::CompressionPolicy;
use fjall::{CompressionType, Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

/// Version of the on-disk layout the store writes. Layout 3 keeps a compact seen entry where
/// layout 2 kept the whole conversion.
pub const LAYOUT_VERSION: u32 = 3;
/// The oldest layout this store reads (it reads both kinds of seen entries). A checkpoint of
/// another version is not used; a version before this one, meeting a checkpoint of layout 3
/// after a rollback, rebuilds the partition from the topics instead of misreading it.
const OLDEST_READABLE_LAYOUT: u32 = 2;

const META_KEYSPACE: &str = "meta";
const PENDING_KEYSPACE: &str = "pending";
/// Memtable limit of each keyspace. fjall bounds its journals (and so the memtables they keep
/// alive) only when some memtable fills up and is flushed; a day bucket of one partition takes
/// a few MiB a day, so with 8 MiB nothing was ever flushed and RSS and the journal grew with
/// every click held (1.2 GiB RSS, 19 s restore at 10 M clicks). 1 MiB flushes regularly:
/// RSS stays under 100 MiB at 10 M clicks (see BENCHMARKS.md).
const MEMTABLE_BYTES: u64 = 1024 * 1024;

fn store_error(error: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError(Box::new(error))
}

/// What the state of a partition reflects: every record before these offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub version: u32,
    /// Next offset to read on the clicks partition.
    pub clicks_next: i64,
    /// Next offset to read on the postbacks partition.
    pub postbacks_next: i64,
    pub watermark_ms: u64,
}

enum OpenFailure {
    /// The files are not a database fjall can read.
    Unreadable(String),
    Other(fjall::Error),
}

fn open_database(path: &Path, cache_mib: u64) -> Result<Database, OpenFailure> {
    let opened = std::panic::catch_unwind(|| {
        Database::builder(path)
            .cache_size(cache_mib.saturating_mul(1024 * 1024))
            // fjall's minimum. A day bucket's last memtable stays in memory until the journals
            // reach this and force its flush, so this bounds the memtables' RSS (the smaller
            // seen entries of layout 3 left bigger remainders: 113 MiB at 10 M clicks with
            // 128 MiB, 95 MiB with 64; BENCHMARKS.md).
            .max_journaling_size(64 * 1024 * 1024)
            // Durability is ours to decide: synced at each checkpoint.
            .manual_journal_persist(true)
            .open()
    });
    match opened {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(error)) => match &error {
            fjall::Error::Locked | fjall::Error::Poisoned => Err(OpenFailure::Other(error)),
            fjall::Error::Io(io)
                if !matches!(
                    io.kind(),
                    std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof
                ) =>
            {
                Err(OpenFailure::Other(error))
            }
            _ => Err(OpenFailure::Unreadable(format!("{error:?}"))),
        },
        Err(panic) => Err(OpenFailure::Unreadable(format!(
            "fjall panicked opening it: {}",
            panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("?")
        ))),
    }
}

/// Small memtables: only the newest day buckets take writes, and memory must stay bounded
/// however many buckets the window holds. LZ4 on every level (fjall compresses only its
/// deepest level by default, which small day buckets never reach): 35 instead of 52 bytes per
/// click on disk.
fn keyspace_options() -> KeyspaceCreateOptions {
    KeyspaceCreateOptions::default()
        .max_memtable_size(MEMTABLE_BYTES)
        .data_block_compression_policy(CompressionPolicy::all(CompressionType::Lz4))
}

/// Opens (or creates) keyspace `name` with [`keyspace_options`].
fn open_keyspace(db: &Database, name: &str) -> StoreResult<Keyspace> {
    db.keyspace(name, keyspace_options).map_err(store_error)
}

/// The joiner's state database.
#[derive(Clone)]
pub struct StateDb {
    db: Database,
    path: PathBuf,
    /// Checkpoints, by partition.
    meta: Keyspace,
    /// Pending postbacks of every partition, by partition and offset.
    pending: Keyspace,
}

/// Key of a partition's entries in the shared keyspaces.
fn partition_prefix(partition: i32) -> [u8; 4] {
    partition.to_be_bytes()
}

fn prefixed(partition: i32, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + key.len());
    out.extend_from_slice(&partition_prefix(partition));
    out.extend_from_slice(key);
    out
}

impl StateDb {
    /// Opens (or creates) the database in `path` with a block cache of `cache_mib`.
    ///
    /// The state is a cache of the topics: a folder that fjall cannot read (corrupt files, a
    /// foreign layout) is moved aside to `<path>.unreadable-<unix ms>` and a fresh one is
    /// created, so that every partition is rebuilt from the topics. A folder that is merely
    /// locked (another joiner process) or not accessible is an error, never moved.
    pub fn open(path: &Path, cache_mib: u64) -> StoreResult<StateDb> {
        std::fs::create_dir_all(path).map_err(store_error)?;
        let db = match open_database(path, cache_mib) {
            Ok(db) => db,
            Err(OpenFailure::Unreadable(reason)) => {
                let stamp = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis())
                    .unwrap_or_default();
                let mut aside = path.as_os_str().to_owned();
                aside.push(format!(".unreadable-{stamp}"));
                let aside = PathBuf::from(aside);
                tracing::error!(
                    path = %path.display(),
                    aside = %aside.display(),
                    reason,
                    "joiner state unreadable: moved aside, every partition will be rebuilt from the topics"
                );
                std::fs::rename(path, &aside).map_err(store_error)?;
                std::fs::create_dir_all(path).map_err(store_error)?;
                open_database(path, cache_mib).map_err(|failure| match failure {
                    OpenFailure::Unreadable(reason) => store_error(std::io::Error::other(reason)),
                    OpenFailure::Other(error) => store_error(error),
                })?
            }
            Err(OpenFailure::Other(error)) => return Err(store_error(error)),
        };
        Ok(StateDb {
            meta: open_keyspace(&db, META_KEYSPACE)?,
            pending: open_keyspace(&db, PENDING_KEYSPACE)?,
            db,
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn keyspace(&self, name: &str) -> StoreResult<Keyspace> {
        open_keyspace(&self.db, name)
    }

    fn partition_keyspaces(&self, partition: i32) -> Vec<String> {
        let prefix = format!("p{partition}-");
        self.db
            .list_keyspace_names()
            .into_iter()
            .map(|name| name.to_string())
            .filter(|name| name.starts_with(&prefix))
            .collect()
    }

    /// The checkpoint of `partition`, when one of this layout exists.
    pub fn checkpoint(&self, partition: i32) -> StoreResult<Option<Checkpoint>> {
        let Some(bytes) = self
            .meta
            .get(partition_prefix(partition))
            .map_err(store_error)?
        else {
            return Ok(None);
        };
        let checkpoint: Checkpoint = match serde_json::from_slice(&bytes) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(partition, error = %e, "unreadable checkpoint, state will be rebuilt");
                return Ok(None);
            }
        };
        let readable = (OLDEST_READABLE_LAYOUT..=LAYOUT_VERSION).contains(&checkpoint.version);
        Ok(readable.then_some(checkpoint))
    }

    /// Deletes everything of `partition` (before a rebuild from the topics): its keyspaces,
    /// its checkpoint and its pending postbacks.
    pub fn clear_partition(&self, partition: i32) -> StoreResult<()> {
        let mut batch = self.db.batch();
        batch.remove(&self.meta, partition_prefix(partition));
        for guard in self.pending.prefix(partition_prefix(partition)) {
            let key = guard.key().map_err(store_error)?;
            batch.remove(&self.pending, key);
        }
        batch.commit().map_err(store_error)?;
        for name in self.partition_keyspaces(partition) {
            let keyspace = self.keyspace(&name)?;
            self.db.delete_keyspace(keyspace).map_err(store_error)?;
        }
        Ok(())
    }

    /// The store of `partition`, over whatever it holds on disk.
    pub fn partition(&self, partition: i32) -> StoreResult<PartitionStore> {
        let bucket_prefix = format!("p{partition}-d");
        let foreign_name = foreign_keyspace_name(partition);
        let mut buckets = BTreeMap::new();
        let mut foreign = None;
        for name in self.partition_keyspaces(partition) {
            if let Some(day) = name
                .strip_prefix(&bucket_prefix)
                .and_then(|d| d.parse::<u64>().ok())
            {
                buckets.insert(day, self.keyspace(&name)?);
            } else if name == foreign_name {
                foreign = Some(self.keyspace(&name)?);
            }
        }
        Ok(PartitionStore {
            db: self.clone(),
            partition,
            foreign,
            buckets,
            overlay: Overlay::default(),
            expired: Vec::new(),
        })
    }

    /// Writes every store's overlay and checkpoint in one atomic batch, syncs it to disk, then
    /// drops expired buckets.
    pub fn commit(&self, stores: &mut [(&mut PartitionStore, Checkpoint)]) -> StoreResult<()> {
        let mut sealed: Vec<&mut PartitionStore> = Vec::with_capacity(stores.len());
        for (store, checkpoint) in stores.iter_mut() {
            store.seal(SEAL_EVERYTHING, *checkpoint);
            sealed.push(store);
        }
        self.commit_sealed(&mut sealed, SEAL_EVERYTHING)
    }

    /// Writes every store's writes sealed up to batch `through` (with the newest of their
    /// checkpoints) in one atomic batch, syncs it to disk, then drops the buckets those batches
    /// expired. Writes sealed later, or not sealed yet, stay in memory.
    pub fn commit_sealed(
        &self,
        stores: &mut [&mut PartitionStore],
        through: u64,
    ) -> StoreResult<()> {
        let mut batch = self.db.batch();
        for store in stores.iter_mut() {
            store.stage(&mut batch, through)?;
        }
        batch.commit().map_err(store_error)?;
        self.db
            .persist(PersistMode::SyncData)
            .map_err(store_error)?;
        for store in stores.iter_mut() {
            let (due, kept) = std::mem::take(&mut store.expired)
                .into_iter()
                .partition(|(sealed_in, _)| matches!(sealed_in, Some(s) if *s <= through));
            store.expired = kept;
            for (_, (_, keyspace)) in due {
                self.db.delete_keyspace(keyspace).map_err(store_error)?;
            }
        }
        Ok(())
    }

    /// Bytes on disk (tables and journals).
    pub fn disk_bytes(&self) -> u64 {
        self.db.disk_space().unwrap_or(0)
    }
}

fn foreign_keyspace_name(partition: i32) -> String {
    format!("p{partition}-foreign")
}

/// Where a staged write goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Target {
    Bucket(u64),
    Foreign,
    Pending,
}

/// Batch number that [`StateDb::commit`] seals and commits at once: after every real one.
const SEAL_EVERYTHING: u64 = u64::MAX;

/// Writes by key: `None` deletes. FxHash: the keys are our own (click IDs, offsets), and
/// SipHash was a measurable share of the joiner's time.
type Writes = FxHashMap<(Target, Vec<u8>), Option<Vec<u8>>>;

/// The writes of one closed batch, readable until committed.
#[derive(Debug)]
struct Sealed {
    batch: u64,
    writes: Writes,
    checkpoint: Checkpoint,
}

/// Writes not yet committed: the open batch's, then sealed batches, oldest first.
#[derive(Debug, Default)]
struct Overlay {
    open: Writes,
    sealed: VecDeque<Sealed>,
}

impl Overlay {
    /// The newest write of `key`, if any batch not yet committed wrote it.
    fn get(&self, target: Target, key: &[u8]) -> Option<&Option<Vec<u8>>> {
        // `(Target, Vec<u8>)` cannot be borrowed as `(Target, &[u8])`: one copy per lookup.
        let probe = (target, key.to_vec());
        self.open.get(&probe).or_else(|| {
            self.sealed
                .iter()
                .rev()
                .find_map(|sealed| sealed.writes.get(&probe))
        })
    }
}

/// The state of one partition.
pub struct PartitionStore {
    db: StateDb,
    partition: i32,
    /// Created with the first foreign click.
    foreign: Option<Keyspace>,
    buckets: BTreeMap<u64, Keyspace>,
    overlay: Overlay,
    /// Expired buckets by day, deleted once the batch that expired them (sealed in `Some`) is
    /// committed; until then older sealed batches may still write to them.
    expired: Vec<(Option<u64>, (u64, Keyspace))>,
}

impl PartitionStore {
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// Uncommitted writes (open and sealed).
    pub fn staged(&self) -> usize {
        self.overlay.open.len()
            + self
                .overlay
                .sealed
                .iter()
                .map(|s| s.writes.len())
                .sum::<usize>()
    }

    /// Closes the writes made so far as batch `batch` (numbers increase), whose state is
    /// `checkpoint`; later writes belong to the next batch. Sealed writes stay readable and reach
    /// the disk with [`StateDb::commit_sealed`].
    pub fn seal(&mut self, batch: u64, checkpoint: Checkpoint) {
        // The next batch likely writes as much: sized for it, the map does not regrow (and
        // rehash) all the way up every batch.
        let next = Writes::with_capacity_and_hasher(self.overlay.open.len(), Default::default());
        let writes = std::mem::replace(&mut self.overlay.open, next);
        self.overlay.sealed.push_back(Sealed {
            batch,
            writes,
            checkpoint,
        });
        for (sealed_in, _) in &mut self.expired {
            sealed_in.get_or_insert(batch);
        }
    }

    fn keyspace_for(&mut self, target: Target) -> StoreResult<Keyspace> {
        Ok(match target {
            Target::Foreign => match &self.foreign {
                Some(keyspace) => keyspace.clone(),
                None => {
                    let keyspace = self.db.keyspace(&foreign_keyspace_name(self.partition))?;
                    self.foreign = Some(keyspace.clone());
                    keyspace
                }
            },
            Target::Pending => self.db.pending.clone(),
            Target::Bucket(day) => {
                if let Some(keyspace) = self.buckets.get(&day) {
                    return Ok(keyspace.clone());
                }
                // A batch sealed before the expiry still writes to the expired bucket; it is
                // deleted after that batch.
                if let Some((_, (_, keyspace))) = self.expired.iter().find(|(_, (d, _))| *d == day)
                {
                    return Ok(keyspace.clone());
                }
                let keyspace = self.db.keyspace(&format!("p{}-d{day}", self.partition))?;
                self.buckets.insert(day, keyspace.clone());
                keyspace
            }
        })
    }

    /// Adds the batches sealed up to `through` to `batch`, with the newest one's checkpoint.
    fn stage(&mut self, batch: &mut fjall::OwnedWriteBatch, through: u64) -> StoreResult<()> {
        let mut merged: Option<Writes> = None;
        let mut checkpoint = None;
        while self
            .overlay
            .sealed
            .front()
            .is_some_and(|sealed| sealed.batch <= through)
        {
            let sealed = self.overlay.sealed.pop_front().expect("checked");
            // Oldest first, so a newer write of the same key wins (one batch must not hold
            // two writes of a key). Usually there is just one batch: nothing to merge.
            match &mut merged {
                None => merged = Some(sealed.writes),
                Some(merged) => merged.extend(sealed.writes),
            }
            checkpoint = Some(sealed.checkpoint);
        }
        let (Some(merged), Some(checkpoint)) = (merged, checkpoint) else {
            return Ok(());
        };
        // Writes mostly go to the newest day bucket: its keyspace is looked up once per run.
        let mut current: Option<(Target, Keyspace)> = None;
        for ((target, key), value) in merged {
            let keyspace = match &current {
                Some((t, keyspace)) if *t == target => keyspace,
                _ => &current.insert((target, self.keyspace_for(target)?)).1,
            };
            let key = match target {
                Target::Pending => prefixed(self.partition, &key),
                _ => key,
            };
            match value {
                Some(value) => batch.insert(keyspace, key, value),
                None => batch.remove(keyspace, key),
            }
        }
        let bytes = serde_json::to_vec(&checkpoint).map_err(store_error)?;
        batch.insert(&self.db.meta, partition_prefix(self.partition), bytes);
        Ok(())
    }

    fn read(&self, target: Target, key: &[u8]) -> StoreResult<Option<Vec<u8>>> {
        if let Some(staged) = self.overlay.get(target, key) {
            return Ok(staged.clone());
        }
        let found = match target {
            Target::Foreign => match &self.foreign {
                Some(keyspace) => keyspace.get(key),
                None => return Ok(None),
            },
            Target::Pending => self.db.pending.get(prefixed(self.partition, key)),
            Target::Bucket(day) => match self.buckets.get(&day) {
                Some(keyspace) => keyspace.get(key),
                None => return Ok(None),
            },
        };
        Ok(found.map_err(store_error)?.map(|v| v.to_vec()))
    }

    fn write(&mut self, target: Target, key: Vec<u8>, value: Option<Vec<u8>>) {
        self.overlay.open.insert((target, key), value);
    }
}

impl JoinStore for PartitionStore {
    fn click(&self, key: &str, time_ms: Option<u64>) -> StoreResult<Option<JoinClick>> {
        let (target, key_bytes) = match time_ms {
            Some(t) => (Target::Bucket(bucket_of(t)), codec::click_key(key)),
            None => (Target::Foreign, key.as_bytes().to_vec()),
        };
        self.read(target, &key_bytes)?
            .map(|value| codec::decode_click(key, &value))
            .transpose()
    }

    fn put_click(&mut self, click: JoinClick) -> StoreResult<()> {
        let value = codec::encode_click(&click);
        if click.foreign {
            self.write(Target::Foreign, click.click_id.into_bytes(), Some(value));
        } else {
            let target = Target::Bucket(bucket_of(click.time_ms));
            self.write(target, codec::click_key(&click.click_id), Some(value));
        }
        Ok(())
    }

    fn seen(&self, dedup_key: &str, click_time_ms: u64) -> StoreResult<Option<Seen>> {
        let target = Target::Bucket(bucket_of(click_time_ms));
        self.read(target, &codec::seen_key(dedup_key))?
            .map(|value| codec::decode_seen(&value))
            .transpose()
    }

    fn put_seen(&mut self, dedup_key: &str, click_time_ms: u64, seen: &Seen) -> StoreResult<()> {
        let value = codec::encode_seen(seen)?;
        let target = Target::Bucket(bucket_of(click_time_ms));
        self.write(target, codec::seen_key(dedup_key), Some(value));
        Ok(())
    }

    fn put_pending(&mut self, position: i64, pending: &StoredPending) -> StoreResult<()> {
        let value = serde_json::to_vec(pending).map_err(store_error)?;
        self.write(
            Target::Pending,
            position.to_be_bytes().to_vec(),
            Some(value),
        );
        Ok(())
    }

    fn remove_pending(&mut self, position: i64) -> StoreResult<()> {
        self.write(Target::Pending, position.to_be_bytes().to_vec(), None);
        Ok(())
    }

    fn pending(&self) -> StoreResult<Vec<(i64, StoredPending)>> {
        let mut out = BTreeMap::new();
        for guard in self.db.pending.prefix(partition_prefix(self.partition)) {
            let (key, value) = guard.into_inner().map_err(store_error)?;
            let position = codec::position(&key[4..])?;
            out.insert(position, value.to_vec());
        }
        let overlays = self
            .overlay
            .sealed
            .iter()
            .map(|sealed| &sealed.writes)
            .chain(std::iter::once(&self.overlay.open));
        for ((target, key), value) in overlays.flatten() {
            if *target == Target::Pending {
                let position = codec::position(key)?;
                match value {
                    Some(v) => out.insert(position, v.clone()),
                    None => out.remove(&position),
                };
            }
        }
        out.into_iter()
            .map(|(position, value)| {
                let pending = serde_json::from_slice(&value).map_err(store_error)?;
                Ok((position, pending))
            })
            .collect()
    }

    fn expire(&mut self, before_ms: u64) -> StoreResult<()> {
        let keep_from = bucket_of(before_ms);
        let keep = self.buckets.split_off(&keep_from);
        let expired = std::mem::replace(&mut self.buckets, keep);
        if !expired.is_empty() {
            // Sealed batches keep their writes: they commit with an older checkpoint, before
            // the bucket is deleted.
            self.overlay.open.retain(
                |(target, _), _| !matches!(target, Target::Bucket(day) if *day < keep_from),
            );
            self.expired
                .extend(expired.into_iter().map(|bucket| (None, bucket)));
        }
        Ok(())
    }

    fn clicks_len(&self) -> u64 {
        let on_disk: usize = self
            .buckets
            .values()
            .chain(self.foreign.as_ref())
            .map(|k| k.approximate_len())
            .sum();
        on_disk as u64
    }
}

#[cfg(test)]
mod tests;
