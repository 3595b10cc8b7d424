//! `clickmatch` commands run as processes of their own, as in production.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{clickmatch_bin, free_port};

/// A `clickmatch` child process, killed (SIGKILL) when dropped; its stderr goes to `log`.
pub struct Process {
    child: Child,
    log: PathBuf,
}

impl Process {
    pub fn spawn(args: &[&str], env: &[(String, String)], log: PathBuf) -> Process {
        let child = Command::new(clickmatch_bin())
            .args(args)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Process { child, log }
    }

    pub fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        // SAFETY: `kill` has no memory-safety preconditions; the pid is our unreaped child.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill({pid}, {signal})");
    }

    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `lines` lines of the log, for a failure's message.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = self.log_text();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `config/demo.toml`, the account the process tests run with.
pub fn demo_config_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/demo.toml")
}

/// Waits until something accepts connections on `127.0.0.1:port`.
pub fn wait_for_port(port: u16, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A `clickmatch broker` process with `partitions` per topic, once it listens, and its
/// bootstrap address; its log is `dir/broker.log`.
pub fn start_broker(partitions: u32, dir: &Path) -> (Process, String) {
    let port = free_port();
    let bootstrap = format!("127.0.0.1:{port}");
    let broker = Process::spawn(
        &[
            "broker",
            "--listen",
            &bootstrap,
            "--partitions",
            &partitions.to_string(),
        ],
        &[],
        dir.join("broker.log"),
    );
    wait_for_port(port, Duration::from_secs(10));
    (broker, bootstrap)
}

/// The environment of the process tests' services: the broker at `bootstrap`, the ClickHouse
/// `database`, the joiner's state in `state_dir`, short batches and grace, info logs and the
/// demo account.
pub fn services_env(
    bootstrap: &str,
    clickhouse_url: &str,
    database: &str,
    state_dir: &Path,
) -> Vec<(String, String)> {
    [
        ("CLICKMATCH_KAFKA_BOOTSTRAP_SERVERS", bootstrap.to_string()),
        ("CLICKMATCH_CLICKHOUSE_URL", clickhouse_url.to_string()),
        ("CLICKMATCH_CLICKHOUSE_DATABASE", database.to_string()),
        (
            "CLICKMATCH_JOINER_STATE_DIR",
            state_dir.display().to_string(),
        ),
        ("CLICKMATCH_JOINER_BATCH_MAX_MS", "100".to_string()),
        ("CLICKMATCH_ACCOUNT_GRACE_SECONDS", "2".to_string()),
        ("CLICKMATCH_LOG", "info".to_string()),
        (
            "CLICKMATCH_CONFIG",
            demo_config_path().display().to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}
