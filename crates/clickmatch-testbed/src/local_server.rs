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

use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
            // Someone else's server on the port would answer our ping while ours fails to bind.
            if TcpListener::bind(("127.0.0.1", port)).is_err() {
                return Err(StartFailure {
                    error: TestbedError::LocalServer {
                        dir: dir.to_owned(),
                        message: format!("port {port} on 127.0.0.1 is already in use"),
                    },
                    may_be_port_race: true,
                });
            }
        }

        let dir = absolute(dir)?;
        let log = dir.join("log");
        fs::create_dir_all(&log).map_err(|source| TestbedError::Io {
            path: log.clone(),
            source,
        })?;
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

/// Whether `GET <url>/ping` answers `Ok.` within a couple of seconds.
pub async fn ping(url: &str) -> bool {
    let Some((host, port)) = host_port(url) else {
        return false;
    };
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
        stream.write_all(ping_request(&host).as_bytes()).await?;
        let mut answer = Vec::new();
        stream.take(4096).read_to_end(&mut answer).await?;
        io::Result::Ok(is_ping_answer(&answer))
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), attempt).await,
        Ok(Ok(true))
    )
}

/// Blocking variant of [`ping`].
pub fn ping_blocking(url: &str, timeout: Duration) -> bool {
    get_blocking(url, "/ping", 4096, timeout).is_ok_and(|answer| is_ping_answer(&answer))
}

/// Runs `sql` through ClickHouse's HTTP interface at `url` (`GET /?query=…`, so read-only
/// statements only), blocking: the HTTP status and the body (at most 1 MiB).
pub fn query_blocking(url: &str, sql: &str, timeout: Duration) -> io::Result<(u16, String)> {
    let target = format!("/?query={}", percent_encode(sql));
    let answer = get_blocking(url, &target, 1 << 20, timeout)?;
    split_answer(&answer)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an HTTP answer"))
}

/// `GET target` from the host of `url` over HTTP/1.0: the raw answer, at most `limit` bytes.
fn get_blocking(url: &str, target: &str, limit: u64, timeout: Duration) -> io::Result<Vec<u8>> {
    let (host, port) = host_port(url).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not an http:// URL: {url}"),
        )
    })?;
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address"));
    for addr in (host.as_str(), port).to_socket_addrs()? {
        let mut stream = match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => stream,
            Err(e) => {
                last = e;
                continue;
            }
        };
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.write_all(request(&host, target).as_bytes())?;
        let mut answer = Vec::new();
        stream.take(limit).read_to_end(&mut answer)?;
        return Ok(answer);
    }
    Err(last)
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

fn free_port_pair() -> io::Result<(u16, u16)> {
    // Hold both listeners at once so the two ports differ.
    let a = TcpListener::bind(("127.0.0.1", 0))?;
    let b = TcpListener::bind(("127.0.0.1", 0))?;
    Ok((a.local_addr()?.port(), b.local_addr()?.port()))
}

fn request(host: &str, target: &str) -> String {
    format!("GET {target} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n")
}

fn ping_request(host: &str) -> String {
    request(host, "/ping")
}

/// An HTTP answer's status code and body.
fn split_answer(answer: &[u8]) -> Option<(u16, String)> {
    let text = String::from_utf8_lossy(answer);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head
        .lines()
        .next()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((status, body.to_owned()))
}

fn is_ping_answer(answer: &[u8]) -> bool {
    split_answer(answer).is_some_and(|(status, body)| status == 200 && body.trim() == "Ok.")
}

/// Every byte but ASCII letters, digits and `-._~` as `%XX`.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `http://user@host:port/path` → (`host`, `port`); `None` for anything but plain http.
fn host_port(url: &str) -> Option<(String, u16)> {
    let rest = url.strip_prefix("http://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit('@').next()?;
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None => 80,
        };
        (host.to_owned(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host.to_owned(), port.parse().ok()?),
            None => (authority.to_owned(), 80),
        }
    };
    (!host.is_empty()).then_some((host, port))
}

fn write_config(
    dir: &Path,
    http_port: u16,
    tcp_port: u16,
    topology: Option<&Topology>,
) -> Result<PathBuf, TestbedError> {
    for sub in ["data", "tmp", "user_files", "format_schemas", "log"] {
        let path = dir.join(sub);
        fs::create_dir_all(&path).map_err(|source| TestbedError::Io { path, source })?;
    }
    let users = if Path::new(SYSTEM_USERS_XML).is_file() {
        PathBuf::from(SYSTEM_USERS_XML)
    } else {
        let path = dir.join("users.xml");
        fs::write(&path, USERS_XML).map_err(|source| TestbedError::Io {
            path: path.clone(),
            source,
        })?;
        path
    };
    let p = |sub: &str| xml_escape(&format!("{}/", dir.join(sub).display()));
    let log = |file: &str| xml_escape(&dir.join("log").join(file).display().to_string());
    // No interserver_http_port: the server opens it only when configured (a cluster's hosts get
    // one from their topology).
    // keep_alive_timeout 3 (current ClickHouse's default; 18.16 has 10): on SIGTERM the server
    // waits for idle keep-alive connections to close, and the `clickhouse` crate lets them idle
    // for 2 s, so shutdown takes at most ~3 s instead of ~10 s.
    let config = format!(
        r#"<?xml version="1.0"?>
<yandex>
    <logger>
        <level>information</level>
        <log>{log}</log>
        <errorlog>{errorlog}</errorlog>
        <size>100M</size>
        <count>3</count>
        <console>0</console>
    </logger>
    <http_port>{http_port}</http_port>
    <tcp_port>{tcp_port}</tcp_port>
    <listen_host>127.0.0.1</listen_host>
    <keep_alive_timeout>3</keep_alive_timeout>
    <path>{data}</path>
    <tmp_path>{tmp}</tmp_path>
    <user_files_path>{user_files}</user_files_path>
    <format_schema_path>{format_schemas}</format_schema_path>
    <users_config>{users}</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <mark_cache_size>67108864</mark_cache_size>
    <uncompressed_cache_size>67108864</uncompressed_cache_size>
{cluster}</yandex>
"#,
        log = log("clickhouse-server.log"),
        errorlog = log(ERR_LOG),
        data = p("data"),
        tmp = p("tmp"),
        user_files = p("user_files"),
        format_schemas = p("format_schemas"),
        users = xml_escape(&users.display().to_string()),
        cluster = match topology {
            Some(topology) => topology.xml.clone(),
            None => cluster_config(tcp_port),
        },
    );
    let path = dir.join("config.xml");
    fs::write(&path, config).map_err(|source| TestbedError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// [`LOCAL_CLUSTER`] (this server alone) and the macros, for either engine's config.
fn cluster_config(tcp_port: u16) -> String {
    format!(
        r#"    <remote_servers>
        <{LOCAL_CLUSTER}>
            <shard>
                <internal_replication>true</internal_replication>
                <replica><host>127.0.0.1</host><port>{tcp_port}</port></replica>
            </shard>
        </{LOCAL_CLUSTER}>
    </remote_servers>
    <macros>
        <shard>01</shard>
        <replica>local</replica>
    </macros>
"#
    )
}

/// Used only where the system has no `/etc/clickhouse-server/users.xml`: user `default`, no
/// password, local connections only.
const USERS_XML: &str = r#"<?xml version="1.0"?>
<yandex>
    <profiles><default></default></profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>::1</ip><ip>127.0.0.1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas><default></default></quotas>
</yandex>
"#;

pub(crate) fn xml_escape(value: &str) -> String {
    value
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub(crate) fn absolute(dir: &Path) -> Result<PathBuf, TestbedError> {
    let io_err = |source| TestbedError::Io {
        path: dir.to_owned(),
        source,
    };
    fs::create_dir_all(dir).map_err(io_err)?;
    dir.canonicalize().map_err(io_err)
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
    fn urls_split_into_host_and_port() {
        assert_eq!(
            host_port("http://127.0.0.1:8123"),
            Some(("127.0.0.1".into(), 8123))
        );
        assert_eq!(
            host_port("http://u:p@ch.local:18123/?x=1"),
            Some(("ch.local".into(), 18123))
        );
        assert_eq!(host_port("http://[::1]:9"), Some(("::1".into(), 9)));
        assert_eq!(host_port("http://ch"), Some(("ch".into(), 80)));
        assert_eq!(host_port("https://ch:8443"), None);
        assert_eq!(host_port("http://:80"), None);
    }

    #[test]
    fn ping_answers_are_recognised() {
        let ok = b"HTTP/1.0 200 OK\r\nContent-Type: text/html; charset=UTF-8\r\n\r\nOk.\n";
        assert!(is_ping_answer(ok));
        assert!(!is_ping_answer(b"HTTP/1.0 404 Not Found\r\n\r\nOk.\n"));
        assert!(!is_ping_answer(b"HTTP/1.0 200 OK\r\n\r\nnginx"));
        assert!(!is_ping_answer(b""));
    }

    #[test]
    fn queries_are_percent_encoded_and_answers_split() {
        assert_eq!(
            percent_encode("SELECT 'a b'=1;é"),
            "SELECT%20%27a%20b%27%3D1%3B%C3%A9"
        );
        assert_eq!(
            split_answer(b"HTTP/1.0 500 Internal\r\nX: y\r\n\r\nCode: 999"),
            Some((500, "Code: 999".to_owned()))
        );
        assert_eq!(split_answer(b"garbage"), None);
    }

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

    #[test]
    fn nothing_listening_means_no_pong() {
        let port = free_port().unwrap();
        assert!(!ping_blocking(
            &format!("http://127.0.0.1:{port}"),
            Duration::from_millis(200)
        ));
    }
}
