//! Folders, log files and their tails, for the processes the testbed starts.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::TestbedError;

/// `dir`, created if need be, as an absolute path.
pub(crate) fn absolute(dir: &Path) -> Result<PathBuf, TestbedError> {
    create_dir(dir)?;
    dir.canonicalize().map_err(|source| TestbedError::Io {
        path: dir.to_owned(),
        source,
    })
}

/// Creates `dir` and its parents, naming it in the error.
pub(crate) fn create_dir(dir: &Path) -> Result<(), TestbedError> {
    fs::create_dir_all(dir).map_err(|source| TestbedError::Io {
        path: dir.to_owned(),
        source,
    })
}

pub(crate) fn create(path: &Path) -> Result<fs::File, TestbedError> {
    fs::File::create(path).map_err(|source| TestbedError::Io {
        path: path.to_owned(),
        source,
    })
}

/// The last `lines` lines of `path` after byte `from`.
pub(crate) fn tail(path: &Path, from: u64, lines: usize) -> String {
    let Ok(bytes) = fs::read(path) else {
        return String::new();
    };
    let from = usize::try_from(from).unwrap_or(usize::MAX).min(bytes.len());
    let text = String::from_utf8_lossy(&bytes[from..]);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_tails_skip_older_runs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("err.log");
        fs::write(&path, "old 1\nold 2\nnew 1\nnew 2\nnew 3\n").unwrap();
        assert_eq!(tail(&path, 12, 2), "new 2\nnew 3");
        assert_eq!(tail(&path, 12, 20), "new 1\nnew 2\nnew 3");
        assert_eq!(tail(&path, 1_000, 20), "");
        assert_eq!(tail(&dir.path().join("missing"), 0, 20), "");
    }
}
