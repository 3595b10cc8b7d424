//! A standalone ZooKeeper of our own on loopback, in a folder of its own: the coordination that
//! a ClickHouse cluster's replicated tables and `ON CLUSTER` DDL need ([`crate::cluster`]).
//!
//! Debian's `zookeeper` package (3.8; `scripts/setup --test` installs it, Java with it): `java`
//! runs `QuorumPeerMain` from `/usr/share/java/zookeeper.jar`, whose manifest names its
//! dependencies, with `slf4j-simple` for a log. `$CLICKMATCH_ZOOKEEPER_CLASSPATH` replaces that
//! class path elsewhere. The admin server is off; the `srvr` four-letter word tells when it
//! serves. Starting blocks (about half a second); the process is stopped on
//! [`LocalZooKeeper::stop`] or drop (SIGTERM, then SIGKILL).

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::TestbedError;
use crate::local_server::{
    absolute, create, create_dir, port_free, stop_child, tail, Ask, StartFailure,
};

/// How long `start` waits for ZooKeeper to serve.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `stop` waits after SIGTERM before it sends SIGKILL.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// ZooKeeper's tick: sessions may time out between 2 and 20 ticks (1–10 s). The cluster's
/// servers ask for [`SESSION_TIMEOUT_MS`].
pub const TICK_MS: u64 = 500;
/// The session timeout the cluster's servers ask for: a killed server's session (and its
/// ephemeral nodes) lingers this long.
pub const SESSION_TIMEOUT_MS: u64 = 10 * TICK_MS;

const CLASSPATH_ENV: &str = "CLICKMATCH_ZOOKEEPER_CLASSPATH";
const ZOOKEEPER_JAR: &str = "/usr/share/java/zookeeper.jar";
const SLF4J_SIMPLE_JAR: &str = "/usr/share/java/slf4j-simple.jar";
const MAIN_CLASS: &str = "org.apache.zookeeper.server.quorum.QuorumPeerMain";
const PROCESS: &str = "zookeeper";

/// A running ZooKeeper child process listening on 127.0.0.1.
#[derive(Debug)]
pub struct LocalZooKeeper {
    child: Option<Child>,
    dir: PathBuf,
    port: u16,
}

impl LocalZooKeeper {
    /// Whether ZooKeeper and `java` can be found (see the module documentation).
    pub fn is_installed() -> bool {
        classpath().is_some() && java().is_some()
    }

    /// Starts ZooKeeper with its data, config and log in `dir` (created if missing), its
    /// client port `port` on 127.0.0.1, and waits until it serves. Blocking.
    pub fn start(dir: &Path, port: u16) -> Result<LocalZooKeeper, TestbedError> {
        LocalZooKeeper::start_inner(dir, port).map_err(|failed| failed.error)
    }

    pub(crate) fn start_inner(dir: &Path, port: u16) -> Result<LocalZooKeeper, StartFailure> {
        let not_found = |what: &str| {
            TestbedError::LocalServer {
            dir: dir.to_owned(),
            message: format!(
                "{what} not found: `apt-get install zookeeper` (scripts/setup --test), or set {CLASSPATH_ENV}"
            ),
        }
        };
        let classpath = classpath().ok_or_else(|| not_found(ZOOKEEPER_JAR))?;
        let java = java().ok_or_else(|| not_found("java"))?;
        port_free(dir, port)?;
        let dir = absolute(dir)?;
        let data = dir.join("data");
        create_dir(&data)?;
        let config = dir.join("zoo.cfg");
        let text = format!(
            "tickTime={TICK_MS}\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
             admin.enableServer=false\n4lw.commands.whitelist=ruok,srvr,stat,mntr\nmaxClientCnxns=0\n",
            data.display()
        );
        fs::write(&config, text).map_err(|source| TestbedError::Io {
            path: config.clone(),
            source,
        })?;
        let log = dir.join("zookeeper.log");
        let child = Command::new(java)
            .args(["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"])
            .arg("-Dorg.slf4j.simpleLogger.showDateTime=true")
            .arg("-cp")
            .arg(&classpath)
            .arg(MAIN_CLASS)
            .arg(&config)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(create(&dir.join("stdout.log"))?)
            .stderr(create(&log)?)
            .spawn()
            .map_err(|e| TestbedError::LocalServer {
                dir: dir.clone(),
                message: format!("cannot run java: {e}"),
            })?;
        tracing::info!(pid = child.id(), port, dir = %dir.display(), "started {PROCESS}");
        let mut zookeeper = LocalZooKeeper {
            child: Some(child),
            dir,
            port,
        };
        zookeeper.wait_ready(START_TIMEOUT)?;
        Ok(zookeeper)
    }

    /// The client port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The folder holding `zoo.cfg`, `data/` and `zookeeper.log`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stops ZooKeeper: SIGTERM, then SIGKILL after [`STOP_TIMEOUT`]. Blocking; idempotent.
    pub fn stop(&mut self) -> Result<(), TestbedError> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        stop_child(&mut child, Ask::Sigterm, STOP_TIMEOUT, PROCESS).map_err(|source| {
            TestbedError::Io {
                path: self.dir.clone(),
                source,
            }
        })
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<(), StartFailure> {
        let deadline = Instant::now() + timeout;
        loop {
            let child = self.child.as_mut().expect("running");
            let exited = child.try_wait().map_err(|source| TestbedError::Io {
                path: self.dir.clone(),
                source,
            })?;
            if let Some(status) = exited {
                self.child = None;
                return Err(StartFailure {
                    error: self.failure(&format!("{PROCESS} exited with {status}")),
                    may_be_port_race: true,
                });
            }
            // `ruok` answers `imok` before the server takes sessions; `srvr` tells its mode
            // only once it does.
            if four_letter_word(self.port, "srvr").is_some_and(|answer| answer.contains("Mode:")) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let error = self.failure(&format!(
                    "{PROCESS} did not serve on port {} within {timeout:?}",
                    self.port
                ));
                let _ = self.stop();
                return Err(error.into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn failure(&self, what: &str) -> TestbedError {
        let mut message = what.to_owned();
        let tail = tail(&self.dir.join("zookeeper.log"), 0, 20);
        if !tail.trim().is_empty() {
            message.push_str(&format!("\n--- tail of zookeeper.log:\n{tail}"));
        }
        TestbedError::LocalServer {
            dir: self.dir.clone(),
            message,
        }
    }
}

impl Drop for LocalZooKeeper {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            tracing::warn!(error = %e, "could not stop {PROCESS}");
        }
    }
}

/// `$CLICKMATCH_ZOOKEEPER_CLASSPATH`, else Debian's jar (plus slf4j-simple when present).
fn classpath() -> Option<String> {
    if let Some(classpath) = std::env::var_os(CLASSPATH_ENV) {
        return Some(classpath.to_string_lossy().into_owned());
    }
    if !Path::new(ZOOKEEPER_JAR).is_file() {
        return None;
    }
    let mut classpath = ZOOKEEPER_JAR.to_owned();
    if Path::new(SLF4J_SIMPLE_JAR).is_file() {
        classpath.push(':');
        classpath.push_str(SLF4J_SIMPLE_JAR);
    }
    Some(classpath)
}

/// `java` on `PATH`, else `$JAVA_HOME/bin/java`.
fn java() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.join("java"))
        .find(|p| p.is_file());
    on_path.or_else(|| {
        let home = PathBuf::from(std::env::var_os("JAVA_HOME")?);
        Some(home.join("bin/java")).filter(|p| p.is_file())
    })
}

/// ZooKeeper's answer to a four-letter word, if it gives one within a second.
pub fn four_letter_word(port: u16, word: &str) -> Option<String> {
    let timeout = Duration::from_secs(1);
    let addr = ([127, 0, 0, 1], port).into();
    let mut stream = TcpStream::connect_timeout(&addr, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.write_all(word.as_bytes()).ok()?;
    let mut answer = String::new();
    stream.take(64 * 1024).read_to_string(&mut answer).ok()?;
    Some(answer)
}
