//! A database file kept in memory and swapped for its replacement without a restart.
//!
//! The file's size, modification time and inode are compared on a timer (the caller's): a
//! change is read and verified whole, then swapped in atomically (`ArcSwap`: lookups under way
//! finish on the old database, the next ones see the new one). A replacement that cannot be
//! read or is not a valid database is refused: logged, counted, and the running database
//! stays. It is not retried until the file changes again, so a file still being copied in
//! place is read again once the copy has moved it on.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arc_swap::ArcSwap;

use crate::ipdb::IpDb;
use crate::metrics::EnrichMetrics;
use crate::EnrichError;

/// What identifies one version of a file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Signature {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

fn signature(path: &Path) -> std::io::Result<Signature> {
    let meta = std::fs::metadata(path)?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Ok(Signature {
        len: meta.len(),
        modified: meta.modified().ok(),
        inode,
    })
}

/// Reads and verifies the database at `path`; errors name `key` and the path.
fn load(key: &'static str, path: &Path) -> Result<IpDb, EnrichError> {
    let bytes = std::fs::read(path).map_err(|source| EnrichError::Read {
        key,
        path: path.to_path_buf(),
        source,
    })?;
    IpDb::from_bytes(bytes).map_err(|source| EnrichError::NotADatabase {
        key,
        path: path.to_path_buf(),
        source,
    })
}

/// What [`Watched::reload_if_changed`] did.
#[derive(Debug)]
pub enum Reload {
    Unchanged,
    Loaded,
    Refused(EnrichError),
}

/// One configured database file and the version of it in use.
pub struct Watched {
    /// The configuration key that names the file (`enrichment.geoip_db`), for errors.
    key: &'static str,
    /// Its metric label (`geoip`, `asn`).
    label: &'static str,
    path: PathBuf,
    current: ArcSwap<IpDb>,
    /// The file as last loaded or refused (`None`: it could not be looked at).
    seen: Mutex<Option<Signature>>,
}

impl Watched {
    /// Loads the file at startup; any problem is an error naming `key` and the path.
    pub fn open(
        key: &'static str,
        label: &'static str,
        path: &Path,
        metrics: &EnrichMetrics,
    ) -> Result<Watched, EnrichError> {
        let seen = signature(path).map_err(|source| EnrichError::Read {
            key,
            path: path.to_path_buf(),
            source,
        })?;
        let db = load(key, path)?;
        metrics.loaded(label, &db);
        tracing::info!(
            key,
            path = %path.display(),
            database_type = db.database_type(),
            build_epoch = db.build_epoch(),
            "enrichment database loaded"
        );
        Ok(Watched {
            key,
            label,
            path: path.to_path_buf(),
            current: ArcSwap::from_pointee(db),
            seen: Mutex::new(Some(seen)),
        })
    }

    /// The database in use (a cheap, lock-free load).
    pub fn current(&self) -> arc_swap::Guard<Arc<IpDb>> {
        self.current.load()
    }

    /// Swaps in the file if it changed since it was last looked at; see the module's doc.
    pub fn reload_if_changed(&self, metrics: &EnrichMetrics) -> Reload {
        let now = signature(&self.path).ok();
        {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            if *seen == now {
                return Reload::Unchanged;
            }
            *seen = now;
        }
        let loaded = match now {
            Some(_) => load(self.key, &self.path),
            None => Err(EnrichError::Read {
                key: self.key,
                path: self.path.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "the file is gone or cannot be looked at",
                ),
            }),
        };
        match loaded {
            Ok(db) => {
                metrics.loaded(self.label, &db);
                tracing::info!(
                    key = self.key,
                    path = %self.path.display(),
                    database_type = db.database_type(),
                    build_epoch = db.build_epoch(),
                    "enrichment database replaced"
                );
                self.current.store(Arc::new(db));
                Reload::Loaded
            }
            Err(error) => {
                metrics.refused(self.label);
                tracing::error!(
                    error = %error,
                    "enrichment database replacement refused; the one in use stays"
                );
                Reload::Refused(error)
            }
        }
    }
}
