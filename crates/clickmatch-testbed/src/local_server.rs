//! A ClickHouse server of our own, in a folder of its own: for `clickmatch dev` and tests.
//!
//! Two [`Engine`]s: a `clickhouse-server` binary (Debian's 18.16 here), and ClickHouse 26.9's
//! `clickhouse-local` from PyPI's chdb-core ([`chdb`]), so that the tests run on both.
//!
//! Starting and stopping block (a second or so); call them through `spawn_blocking` from async
//! code. The process is stopped on [`LocalServer::stop`] or drop (SIGTERM, or for chdb the end
//! of its stdin; then SIGKILL); a `clickhouse-server` is not stopped if this process is killed
//! with SIGKILL (a chdb one is: its stdin closes).

pub mod chdb;
mod config;
mod files;
mod http;

pub use http::{free_port, ping, ping_blocking, query_blocking};

use config::write_config;
pub(crate) use config::{cluster_config, xml_escape};
pub(crate) use files::{absolute, create, create_dir, tail};
use http::free_port_pair;

use std::fmt;
use std::fs;
use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use crate::error::TestbedError;

/// How long `start` waits for `/ping` to answer.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `stop` waits after SIGTERM before it sends SIGKILL. Idle keep-alive connections
/// hold a shutdown for up to `keep_alive_timeout` (3 s here), but a connection opened and never
/// used (HTTP clients' pools open them speculatively) holds 18.16 for 10–15 s. ClickHouse is
/// crash-safe (parts are written and renamed atomically), so a SIGKILL after this grace loses
/// nothing that was acknowledged.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// A cluster of this one server (one shard, one replica) in the server's `remote_servers`, and
/// the macros `{shard}` and `{replica}`: enough to try the cluster layout's `Distributed`
/// tables (`clickmatch_clickhouse::cluster`); replicated tables and `ON CLUSTER` need ZooKeeper as well.
pub const LOCAL_CLUSTER: &str = "clickmatch_local";

const SERVER_ENV: &str = "CLICKMATCH_CLICKHOUSE_SERVER";
const SYSTEM_USERS_XML: &str = "/etc/clickhouse-server/users.xml";
const ERR_LOG: &str = "clickhouse-server.err.log";
const PING_TIMEOUT: Duration = Duration::from_millis(500);

/// Which ClickHouse a [`LocalServer`] runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Engine {
    /// A `clickhouse-server` binary ([`server_command`]): Debian's 18.16 here.
    #[default]
    Server,
    /// ClickHouse 26.9: `clickhouse-local` from PyPI's chdb-core, run by `python3` ([`chdb`];
    /// the version is pinned there). For tests: it has no Keeper, like a `clickhouse-server`
    /// without ZooKeeper.
    Chdb,
}

impl Engine {
    /// What the process is called in messages.
    fn process(self) -> &'static str {
        match self {
            Engine::Server => "clickhouse-server",
            Engine::Chdb => "clickhouse-local (chdb-core)",
        }
    }
}

impl FromStr for Engine {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "server" => Ok(Engine::Server),
            "chdb" => Ok(Engine::Chdb),
            _ => Err(format!(
                "unknown ClickHouse engine `{s}`: `server` or `chdb`"
            )),
        }
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Engine::Server => "server",
            Engine::Chdb => "chdb",
        })
    }
}

/// A running ClickHouse child process listening on 127.0.0.1.
#[derive(Debug)]
pub struct LocalServer {
    engine: Engine,
    child: Option<Child>,
    dir: PathBuf,
    http_port: u16,
    tcp_port: u16,
    /// Size of the error log before this start: older lines are not ours to report.
    err_log_start: u64,
    /// The cluster this server is a host of, when not [`LOCAL_CLUSTER`] alone.
    topology: Option<Topology>,
    /// Declared last so that the folder is removed after the process has stopped.
    _tempdir: Option<tempfile::TempDir>,
}

impl LocalServer {
    /// Whether a ClickHouse server binary can be found (see [`server_command`]): the default
    /// engine, [`Engine::Server`].
    pub fn is_installed() -> bool {
        server_command().is_some()
    }

    /// Starts a `clickhouse-server` with its data, logs and config in `dir` (created if
    /// missing), listening on 127.0.0.1 at the given ports, and waits until `GET /ping`
    /// answers. Blocking.
    pub fn start(dir: &Path, http_port: u16, tcp_port: u16) -> Result<LocalServer, TestbedError> {
        LocalServer::start_with(Engine::Server, dir, http_port, tcp_port)
    }

    /// [`LocalServer::start`] with the given engine.
    pub fn start_with(
        engine: Engine,
        dir: &Path,
        http_port: u16,
        tcp_port: u16,
    ) -> Result<LocalServer, TestbedError> {
        LocalServer::start_inner(engine, dir, http_port, tcp_port, None)
            .map_err(|failed| failed.error)
    }

    /// A `clickhouse-server` that is a host of a cluster ([`crate::cluster`]).
    pub(crate) fn start_host(
        dir: &Path,
        http_port: u16,
        tcp_port: u16,
        topology: Topology,
    ) -> Result<LocalServer, StartFailure> {
        LocalServer::start_inner(Engine::Server, dir, http_port, tcp_port, Some(topology))
    }

    fn start_inner(
        engine: Engine,
        dir: &Path,
        http_port: u16,
        tcp_port: u16,
        topology: Option<Topology>,
    ) -> Result<LocalServer, StartFailure> {
        let binary = match engine {
            Engine::Server => Some(server_command().ok_or_else(|| {
                TestbedError::LocalServer {
                    dir: dir.to_owned(),
                    message: format!(
                        "no clickhouse server binary found (set {SERVER_ENV}, or install clickhouse-server)"
                    ),
                }
            })?),
            Engine::Chdb => None,
        };
        if engine == Engine::Chdb && topology.is_some() {
            return Err(TestbedError::LocalServer {
                dir: dir.to_owned(),
                message: "a cluster host needs the clickhouse-server engine".into(),
            }
            .into());
        }
        let more_ports = topology.iter().flat_map(|t| t.more_ports.iter().copied());
        for port in [http_port, tcp_port].into_iter().chain(more_ports) {
            port_free(dir, port)?;
        }

        let dir = absolute(dir)?;
        let log = dir.join("log");
        create_dir(&log)?;
        let (mut command, stdin) = match binary {
            Some((program, args)) => {
                let config = write_config(&dir, http_port, tcp_port, topology.as_ref())?;
                let mut command = Command::new(program);
                command
                    .args(args)
                    .arg(format!("--config-file={}", config.display()));
                (command, Stdio::null())
            }
            // The launcher serves until its stdin closes: see `stop`.
            None => (chdb::command(&dir, http_port, tcp_port)?, Stdio::piped()),
        };
        let err_log_start = fs::metadata(log.join(ERR_LOG))
            .map(|m| m.len())
            .unwrap_or(0);
        let stdout = create(&log.join("stdout.log"))?;
        let stderr = create(&log.join("stderr.log"))?;
        let child = command
            .current_dir(&dir)
            .stdin(stdin)
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|e| TestbedError::LocalServer {
                dir: dir.clone(),
                message: format!(
                    "cannot run {}: {e}",
                    command.get_program().to_string_lossy()
                ),
            })?;
        tracing::info!(pid = child.id(), http_port, tcp_port, dir = %dir.display(), "started {}", engine.process());

        let mut server = LocalServer {
            engine,
            child: Some(child),
            dir,
            http_port,
            tcp_port,
            err_log_start,
            topology,
            _tempdir: None,
        };
        server.wait_ready(START_TIMEOUT)?;
        Ok(server)
    }

    /// Starts the server again in its folder, on its ports, with its configuration (stopping
    /// it first if it runs). Blocking.
    pub fn restart(&mut self) -> Result<(), TestbedError> {
        self.stop()?;
        let mut again = LocalServer::start_inner(
            self.engine,
            &self.dir,
            self.http_port,
            self.tcp_port,
            self.topology.clone(),
        )
        .map_err(|failed| failed.error)?;
        self.child = again.child.take();
        self.err_log_start = again.err_log_start;
        Ok(())
    }

    /// Kills the server with SIGKILL, as a crash would, and reaps it. Blocking; idempotent.
    pub fn kill(&mut self) -> Result<(), TestbedError> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let io_err = |source| TestbedError::Io {
            path: self.dir.clone(),
            source,
        };
        child.kill().map_err(io_err)?;
        child.wait().map_err(io_err)?;
        tracing::info!(pid = child.id(), "{} killed", self.engine.process());
        Ok(())
    }

    /// Starts a `clickhouse-server` in a fresh temporary folder on free ports; the folder is
    /// removed when the server is dropped. Blocking.
    pub fn start_temp() -> Result<LocalServer, TestbedError> {
        LocalServer::start_temp_with(Engine::Server)
    }

    /// [`LocalServer::start_temp`] with the given engine.
    pub fn start_temp_with(engine: Engine) -> Result<LocalServer, TestbedError> {
        let tempdir = tempfile::Builder::new()
            .prefix("clickmatch-clickhouse-")
            .tempdir()
            .map_err(|source| TestbedError::Io {
                path: std::env::temp_dir(),
                source,
            })?;
        let mut last_error = None;
        // Free ports can be taken by someone else between the check and the bind: retry.
        for _ in 0..3 {
            let (http_port, tcp_port) = free_port_pair().map_err(|source| TestbedError::Io {
                path: tempdir.path().to_owned(),
                source,
            })?;
            match LocalServer::start_inner(engine, tempdir.path(), http_port, tcp_port, None) {
                Ok(mut server) => {
                    server._tempdir = Some(tempdir);
                    return Ok(server);
                }
                Err(failed) if failed.may_be_port_race => last_error = Some(failed.error),
                Err(failed) => return Err(failed.error),
            }
        }
        Err(last_error.expect("at least one attempt"))
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// `http://127.0.0.1:<http_port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    pub fn http_port(&self) -> u16 {
        self.http_port
    }

    pub fn tcp_port(&self) -> u16 {
        self.tcp_port
    }

    /// The folder holding `config.xml`, `data/` and `log/`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Process ID, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Stops the server: SIGTERM (chdb: the launcher's stdin closed), then SIGKILL after
    /// [`STOP_TIMEOUT`]. Blocking; idempotent.
    pub fn stop(&mut self) -> Result<(), TestbedError> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let ask = match self.engine {
            Engine::Server => Ask::Sigterm,
            // The launcher ends the serving query when its stdin reaches its end.
            Engine::Chdb => Ask::CloseStdin,
        };
        stop_child(&mut child, ask, STOP_TIMEOUT, self.engine.process()).map_err(|source| {
            TestbedError::Io {
                path: self.dir.clone(),
                source,
            }
        })
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<(), StartFailure> {
        let url = self.url();
        let deadline = Instant::now() + timeout;
        loop {
            let child = self.child.as_mut().expect("running");
            let exited = child.try_wait().map_err(|source| TestbedError::Io {
                path: self.dir.clone(),
                source,
            })?;
            if let Some(status) = exited {
                self.child = None;
                let process = self.engine.process();
                // Exiting during startup most likely means it lost its port to someone else,
                // unless chdb-core is missing.
                let not_installed =
                    self.engine == Engine::Chdb && status.code() == Some(chdb::NOT_INSTALLED);
                return Err(StartFailure {
                    error: self.failure(&format!("{process} exited with {status}")),
                    may_be_port_race: !not_installed,
                });
            }
            if ping_blocking(&url, PING_TIMEOUT) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let error = self.failure(&format!(
                    "{} did not answer {url}/ping within {timeout:?}",
                    self.engine.process()
                ));
                let _ = self.stop();
                return Err(error.into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn failure(&self, what: &str) -> TestbedError {
        let log = self.dir.join("log");
        let mut message = what.to_owned();
        for (file, from) in [(ERR_LOG, self.err_log_start), ("stderr.log", 0)] {
            let tail = tail(&log.join(file), from, 20);
            if !tail.trim().is_empty() {
                message.push_str(&format!("\n--- tail of log/{file}:\n{tail}"));
            }
        }
        TestbedError::LocalServer {
            dir: self.dir.clone(),
            message,
        }
    }
}

/// How [`stop_child`] asks a process to stop.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ask {
    Sigterm,
    CloseStdin,
}

/// Asks `child` to stop, waits up to `timeout`, then kills it (SIGKILL) and reaps it.
pub(crate) fn stop_child(
    child: &mut Child,
    ask: Ask,
    timeout: Duration,
    process: &str,
) -> io::Result<()> {
    if child.try_wait()?.is_some() {
        return Ok(());
    }
    let pid = libc::pid_t::try_from(child.id()).expect("pids fit pid_t");
    match ask {
        // SAFETY: `kill` has no memory-safety preconditions; the pid is our own unreaped
        // child, so it cannot have been recycled for another process.
        Ask::Sigterm => unsafe {
            libc::kill(pid, libc::SIGTERM);
        },
        Ask::CloseStdin => drop(child.stdin.take()),
    }
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if child.try_wait()?.is_some() {
            tracing::info!(pid, "{process} stopped");
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    tracing::warn!(pid, "{process} did not stop when asked; killing it");
    child.kill()?;
    child.wait()?;
    Ok(())
}

/// Why `start` failed, and whether other ports might do better.
pub(crate) struct StartFailure {
    pub(crate) error: TestbedError,
    pub(crate) may_be_port_race: bool,
}

/// Fails when `port` on 127.0.0.1 is taken: someone else's server there would answer our
/// ping while ours fails to bind.
pub(crate) fn port_free(dir: &Path, port: u16) -> Result<(), StartFailure> {
    match TcpListener::bind(("127.0.0.1", port)) {
        Ok(_) => Ok(()),
        Err(_) => Err(StartFailure {
            error: TestbedError::LocalServer {
                dir: dir.to_owned(),
                message: format!("port {port} on 127.0.0.1 is already in use"),
            },
            may_be_port_race: true,
        }),
    }
}

/// What makes a server a host of a cluster: config elements in place of [`LOCAL_CLUSTER`] and
/// its macros (`remote_servers`, `macros`, `zookeeper`, `distributed_ddl`, the interserver
/// port and host), and the ports they open besides HTTP and TCP.
#[derive(Debug, Clone)]
pub(crate) struct Topology {
    pub(crate) xml: String,
    pub(crate) more_ports: Vec<u16>,
}

impl From<TestbedError> for StartFailure {
    fn from(error: TestbedError) -> Self {
        StartFailure {
            error,
            may_be_port_race: false,
        }
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            tracing::warn!(error = %e, "could not stop {}", self.engine.process());
        }
    }
}

/// The program and leading arguments that run a ClickHouse server: `$CLICKMATCH_CLICKHOUSE_SERVER`,
/// else `clickhouse-server` on `PATH` or in `/usr/bin`, `/usr/sbin`, else `clickhouse server`.
pub fn server_command() -> Option<(PathBuf, Vec<String>)> {
    if let Some(path) = std::env::var_os(SERVER_ENV) {
        let path = PathBuf::from(path);
        return path.is_file().then(|| (path, Vec::new()));
    }
    let path_dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    let mut dirs = path_dirs;
    dirs.extend([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")]);
    if let Some(found) = dirs
        .iter()
        .map(|d| d.join("clickhouse-server"))
        .find(|p| p.is_file())
    {
        return Some((found, Vec::new()));
    }
    dirs.iter()
        .map(|d| d.join("clickhouse"))
        .find(|p| p.is_file())
        .map(|p| (p, vec!["server".to_owned()]))
}
