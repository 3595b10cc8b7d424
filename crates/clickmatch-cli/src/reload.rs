//! Configuration hot reload for `ingest`, `join`, `outbound` and `dev --serve`.
//!
//! On SIGHUP, and when the file's content changes (checked every [`WATCH_INTERVAL`]), the file
//! is read and validated again with the current `CLICKMATCH_*` environment. A valid one replaces
//! the account (campaigns, offers, routes, secrets, grace) in one atomic swap: every request
//! and record is handled wholly by the old or wholly by the new account, and none waits or is
//! dropped. An invalid file is refused with its error logged (file and key), and the running
//! configuration stays. The other sections (`ingest`, `enrichment`, `kafka`, `clickhouse`,
//! `joiner`, `outbound`) take effect at the next restart; a reload that changes them says so.
//! (A database file that `[enrichment]` names is reloaded by itself when it is replaced.)

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use clickmatch_config::{process_env, Config, ConfigError};
use clickmatch_core::model::Account;

/// How often the file is compared with what was last loaded.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(2);

/// What a successful reload changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloaded {
    pub campaigns: usize,
    pub offers: usize,
    pub routes: usize,
    /// Sections that differ from the running process's and need a restart.
    pub restart_needed: Vec<&'static str>,
}

/// SIGHUP, registered before the services start so that it never kills the process.
#[cfg(unix)]
pub type Hangup = tokio::signal::unix::Signal;
#[cfg(not(unix))]
pub type Hangup = ();

/// Registers the SIGHUP handler (must run inside the runtime).
#[cfg(unix)]
pub fn hangup() -> std::io::Result<Hangup> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
}

#[cfg(not(unix))]
pub fn hangup() -> std::io::Result<Hangup> {
    Ok(())
}

/// Reloads a configuration file into a running account.
pub struct Reloader {
    path: Option<PathBuf>,
    account: Arc<ArcSwap<Account>>,
    /// The configuration the process started with, for the restart-only sections.
    baseline: Config,
    /// The file content last loaded or refused, for the watch.
    last_seen: Option<Vec<u8>>,
}

impl Reloader {
    /// `path`: the file the process was started from (`None`: the built-in demo, nothing to
    /// reload). `baseline`: the configuration as loaded from it, before any command-line
    /// overrides.
    pub fn new(path: Option<&Path>, account: Arc<ArcSwap<Account>>, baseline: Config) -> Self {
        let last_seen = path.and_then(|p| std::fs::read(p).ok());
        Reloader {
            path: path.map(Path::to_path_buf),
            account,
            baseline,
            last_seen,
        }
    }

    /// Reads and validates the file; if valid, swaps the account in. On error the running
    /// account is untouched.
    pub fn reload(&mut self) -> Result<Reloaded, ConfigError> {
        let Some(path) = &self.path else {
            return Ok(self.summary(&self.baseline.clone()));
        };
        self.last_seen = std::fs::read(path).ok();
        let config = Config::load(path, &process_env())?;
        let summary = self.summary(&config);
        self.account.store(Arc::new(config.account));
        Ok(summary)
    }

    fn summary(&self, config: &Config) -> Reloaded {
        let base = &self.baseline;
        let mut restart_needed = Vec::new();
        if config.ingest != base.ingest {
            restart_needed.push("ingest");
        }
        if config.enrichment != base.enrichment {
            restart_needed.push("enrichment");
        }
        if config.kafka != base.kafka {
            restart_needed.push("kafka");
        }
        if config.clickhouse != base.clickhouse {
            restart_needed.push("clickhouse");
        }
        if config.joiner != base.joiner {
            restart_needed.push("joiner");
        }
        if config.outbound != base.outbound {
            restart_needed.push("outbound");
        }
        Reloaded {
            campaigns: config.account.campaigns.len(),
            offers: config.account.offers.len(),
            routes: config.account.routes.len() + 1,
            restart_needed,
        }
    }

    /// [`Reloader::reload`] with the outcome logged.
    pub fn reload_logged(&mut self, trigger: &str) {
        let Some(path) = self.path.clone() else {
            tracing::warn!(
                trigger,
                "no configuration file (built-in demo configuration): nothing to reload"
            );
            return;
        };
        match self.reload() {
            Ok(done) => {
                tracing::info!(
                    trigger,
                    file = %path.display(),
                    campaigns = done.campaigns,
                    offers = done.offers,
                    routes = done.routes,
                    "configuration reloaded"
                );
                if !done.restart_needed.is_empty() {
                    tracing::warn!(
                        sections = %done.restart_needed.join(", "),
                        "these sections changed and take effect only after a restart"
                    );
                }
            }
            Err(error) => tracing::error!(
                trigger,
                error = %error,
                "configuration reload refused; the running configuration stays"
            ),
        }
    }

    /// Whether the file's content differs from what was last loaded or refused.
    fn file_changed(&self) -> bool {
        match &self.path {
            Some(path) => std::fs::read(path).ok() != self.last_seen,
            None => false,
        }
    }

    /// Reloads on SIGHUP and on file changes until `shutdown` resolves.
    pub async fn run(mut self, hangup: Hangup, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut watch = tokio::time::interval(WATCH_INTERVAL);
        watch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        #[cfg(unix)]
        let mut hangup = hangup;
        #[cfg(not(unix))]
        let _ = hangup;
        loop {
            #[cfg(unix)]
            let signal = hangup.recv();
            #[cfg(not(unix))]
            let signal = std::future::pending::<Option<()>>();
            tokio::select! {
                _ = &mut shutdown => return,
                _ = signal => self.reload_logged("SIGHUP"),
                _ = watch.tick() => {
                    if self.file_changed() {
                        self.reload_logged("file changed");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    const BASE: &str = r#"
[account]
secret = "0123456789abcdef"

[[offers]]
id = "1"

[[campaigns]]
id = "old"
offer = "1"
url = "https://net.example/?s={click_id}"
"#;

    #[test]
    fn a_valid_file_swaps_the_account_and_an_invalid_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clickmatch.toml");
        std::fs::write(&path, BASE).unwrap();
        let config = Config::load(&path, &BTreeMap::new()).unwrap();
        let account = Arc::new(ArcSwap::from_pointee(config.account.clone()));
        let mut reloader = Reloader::new(Some(&path), account.clone(), config);
        assert!(!reloader.file_changed());

        let changed = BASE.replace("id = \"old\"", "id = \"new\"")
            + "\n[ingest]\nlisten = \"127.0.0.1:9999\"\n";
        std::fs::write(&path, &changed).unwrap();
        assert!(reloader.file_changed());
        let done = reloader.reload().unwrap();
        assert_eq!(done.campaigns, 1);
        assert_eq!(done.restart_needed, vec!["ingest"]);
        assert!(account.load().campaigns.contains_key("new"));
        assert!(!reloader.file_changed());

        std::fs::write(&path, changed.replace("offer = \"1\"", "offer = \"9\"")).unwrap();
        let error = reloader.reload().unwrap_err().to_string();
        assert!(error.contains("campaigns[0].offer"), "{error}");
        assert!(
            account.load().campaigns.contains_key("new"),
            "old account kept"
        );
        assert!(
            !reloader.file_changed(),
            "a refused file is not retried until it changes"
        );
    }
}
