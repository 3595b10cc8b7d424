//! Child processes of a benchmark: pinned to CPUs with taskset, stopped (SIGTERM, then SIGKILL)
//! when dropped, their output kept in the results folder.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// CPU sets for the service under test and for the load generator.
#[derive(Debug, Clone)]
pub struct Pinning {
    pub service: Option<String>,
    pub load: Option<String>,
}

impl Pinning {
    /// On two or more CPUs with taskset: the service on CPU 0, load generation on the others.
    pub fn detect() -> Pinning {
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let taskset = Command::new("taskset")
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if cpus < 2 || !taskset {
            return Pinning {
                service: None,
                load: None,
            };
        }
        Pinning {
            service: Some("0".into()),
            load: Some(if cpus == 2 {
                "1".into()
            } else {
                format!("1-{}", cpus - 1)
            }),
        }
    }

    pub fn describe(&self) -> String {
        match (&self.service, &self.load) {
            (Some(s), Some(l)) => {
                format!("service on CPU {s}, load generator on CPU {l} (taskset)")
            }
            _ => "not pinned (fewer than 2 CPUs or no taskset)".into(),
        }
    }
}

/// A command, pinned to `cpus` when given.
pub fn command(program: impl AsRef<std::ffi::OsStr>, cpus: Option<&str>) -> Command {
    match cpus {
        Some(cpus) => {
            let mut command = Command::new("taskset");
            command.arg("-c").arg(cpus).arg(program);
            command
        }
        None => Command::new(program),
    }
}

/// Re-pins every thread of a running process.
pub fn repin(pid: u32, cpus: Option<&str>) {
    let cpus = cpus.unwrap_or("0-1023");
    let _ = Command::new("taskset")
        .args(["-a", "-c", "-p", cpus, &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// A running child, stopped when dropped.
pub struct Proc {
    pub name: String,
    child: Option<Child>,
    pub log: PathBuf,
}

impl Proc {
    /// Spawns `command` with stdout and stderr to `dir/name.log`.
    pub fn spawn(name: &str, mut command: Command, dir: &Path) -> anyhow::Result<Proc> {
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).with_context(|| log.display().to_string())?;
        let child = command
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {name}: {command:?}"))?;
        Ok(Proc {
            name: name.into(),
            child: Some(child),
            log,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// CPU time (user + system) used so far, from `/proc/<pid>/stat` in clock ticks (the
    /// `process_cpu_seconds_total` of the prometheus crate is whole seconds only).
    pub fn cpu_seconds(&self) -> Option<f64> {
        pid_cpu_seconds(self.pid())
    }

    /// Starts charging this process's CPU time (its children's included) to the requests a
    /// run serves from now on.
    pub fn cpu_meter(&self) -> CpuMeter<'_> {
        CpuMeter {
            process: self,
            start: self.tree_cpu_seconds(),
        }
    }

    /// [`Proc::cpu_seconds`] of the process and of its children (nginx serves from a worker
    /// process its master started).
    pub fn tree_cpu_seconds(&self) -> Option<f64> {
        let pid = self.pid();
        let children =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        let children: Option<f64> = children
            .split_whitespace()
            .map(|child| pid_cpu_seconds(child.parse().ok()?))
            .sum();
        Some(pid_cpu_seconds(pid)? + children?)
    }

    /// Fails when the process has exited.
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        if let Some(child) = self.child.as_mut() {
            if let Some(status) = child.try_wait()? {
                let tail = tail(&self.log, 20);
                bail!("{} exited ({status}); its log ends:\n{tail}", self.name);
            }
        }
        Ok(())
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL.
    pub fn stop(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        send_signal(&child, libc::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Waits for the process to exit on its own.
    pub fn wait(&mut self, timeout: Duration) -> anyhow::Result<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut().context("not running")?;
        loop {
            if let Some(status) = child.try_wait()? {
                self.child = None;
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!("{} did not finish within {timeout:?}", self.name);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(10));
    }
}

/// Sends `signal` to a child not yet waited for.
fn send_signal(child: &Child, signal: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) has no memory-safety preconditions; the pid is our unreaped child.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

/// The last `lines` lines of a file.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port`.
pub fn wait_port(port: u16, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("nothing listens on 127.0.0.1:{port} after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    Ok(())
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Resident set size of a process, and its peak, in bytes (from /proc).
pub fn rss(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Bytes of the files under `dir`.
pub fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                total += dir_bytes(&entry.path());
            } else {
                total += meta.len();
            }
        }
    }
    total
}

/// Runs a command to completion and returns its stdout (stderr appended on failure).
pub fn output(mut command: Command) -> anyhow::Result<String> {
    let out = command
        .output()
        .with_context(|| format!("running {command:?}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "{command:?} failed ({}): {}{}",
            out.status,
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(stdout)
}

/// `perf record` attached to a running service, for `run --profile`: samples with call graphs
/// from DWARF (the release build keeps debug info), written to `<dir>/<name>.perf.data`.
pub struct Profiler {
    name: String,
    data: PathBuf,
    perf: Child,
}

impl Profiler {
    /// Fails when `perf` is missing or cannot attach (perf_event_paranoid, permissions).
    pub fn attach(name: &str, pid: u32, dir: &Path) -> anyhow::Result<Profiler> {
        let data = dir.join(format!("{name}.perf.data"));
        let log = dir.join(format!("{name}.perf.log"));
        let out = std::fs::File::create(&log).with_context(|| log.display().to_string())?;
        let mut perf = Command::new("perf")
            .args([
                "record",
                "-q",
                "-F",
                "499",
                "--call-graph",
                "dwarf,8192",
                "-p",
            ])
            .arg(pid.to_string())
            .arg("-o")
            .arg(&data)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("--profile needs `perf` (Debian: linux-perf)")?;
        // perf exits at once when it cannot attach; give it the moment that takes.
        std::thread::sleep(Duration::from_millis(300));
        if let Some(status) = perf.try_wait()? {
            bail!("perf record on {name} exited ({status}): {}", tail(&log, 5));
        }
        Ok(Profiler {
            name: name.into(),
            data,
            perf,
        })
    }

    /// Stops the recording and writes `<name>.perf.txt`: the functions by their own samples,
    /// then by their callees' too (the call tree's heavy branches), each from 0.5 %.
    pub fn finish(mut self) -> anyhow::Result<PathBuf> {
        // perf writes its file and exits on SIGINT, as on Ctrl-C.
        send_signal(&self.perf, libc::SIGINT);
        self.perf.wait()?;
        let text = self.data.with_extension("txt");
        let mut report = String::new();
        for (title, mode) in [
            ("self samples", "--no-children"),
            ("with callees", "--children"),
        ] {
            let mut command = Command::new("perf");
            // Inlined frames are resolved by addr2line, which takes minutes on a debug build.
            command
                .args(["report", "--stdio", "-q", "-g", "none", "--no-inline"])
                .args([
                    "--percent-limit",
                    "0.5",
                    mode,
                    "--sort",
                    "comm,dso,sym",
                    "-i",
                ])
                .arg(&self.data)
                .env("DEBUGINFOD_URLS", "");
            report.push_str(&format!("# {}: {title}\n", self.name));
            report.push_str(&output(command)?);
            report.push('\n');
        }
        std::fs::write(&text, report)?;
        Ok(text)
    }
}

/// A process's CPU time from [`Proc::cpu_meter`] on.
pub struct CpuMeter<'a> {
    process: &'a Proc,
    start: Option<f64>,
}

impl CpuMeter<'_> {
    /// CPU microseconds spent since the meter started, per request of `requests` (`None` where
    /// `/proc` could not be read).
    pub fn us_per_request(&self, requests: u64) -> Option<f64> {
        let spent = self.process.tree_cpu_seconds()? - self.start?;
        Some(spent * 1e6 / requests.max(1) as f64)
    }
}

/// CPU time (user + system) of process `pid` so far, from `/proc/<pid>/stat`.
fn pid_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces: state is
    // field 3, utime 14 and stime 15.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf has no memory-safety preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (per_second > 0).then(|| ticks / per_second as f64)
}
