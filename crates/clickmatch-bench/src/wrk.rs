//! wrk runs (closed loop, maximum throughput) and the nginx reference answering `return 302`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::procs::{self, Proc};

/// Cycles through the request paths of a file (`PATH[\tKIND...]` lines), one per request;
/// requests are formatted once, in `init`, so that wrk spends its time on the sockets.
pub const LUA: &str = r#"-- written by clickmatch-bench: cycle through the request paths of a file
local requests = {}
local i = 0
function init(args)
  for line in io.lines(args[1]) do
    local path = line:match("^[^\t]+")
    if path then requests[#requests + 1] = wrk.format("GET", path) end
  end
  i = math.random(#requests)
end
function request()
  i = i + 1
  if i > #requests then i = 1 end
  return requests[i]
end
"#;

/// Like [`LUA`] for lines `PATH\tX-FORWARDED-FOR\tUSER-AGENT`: each request carries its
/// client's address (as a proxy forwards it) and user agent.
pub const LUA_WITH_CLIENT: &str = r#"-- written by clickmatch-bench: request paths with a forwarded address and a user agent
local requests = {}
local i = 0
function init(args)
  for line in io.lines(args[1]) do
    local path, forwarded, agent = line:match("^([^\t]+)\t([^\t]+)\t([^\t]+)$")
    if path then
      requests[#requests + 1] = wrk.format("GET", path, { ["X-Forwarded-For"] = forwarded, ["User-Agent"] = agent })
    end
  end
  i = math.random(#requests)
end
function request()
  i = i + 1
  if i > #requests then i = 1 end
  return requests[i]
end
"#;

/// What wrk reported.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WrkResult {
    pub requests: u64,
    pub seconds: f64,
    pub rps: f64,
    /// Responses other than 2xx/3xx.
    pub non_2xx_3xx: u64,
    pub socket_errors: u64,
    /// Requests/s answered 2xx/3xx.
    pub ok_rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// CPU time (user + system) the server spent per request during the run, where the
    /// harness could read it: throughput on one pinned core is its inverse, and unlike
    /// requests/s it hardly moves with the machine's noise.
    #[serde(default)]
    pub server_cpu_us_per_request: Option<f64>,
}

fn duration_ms(text: &str) -> Option<f64> {
    let text = text.trim();
    let (number, factor) = if let Some(n) = text.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1000.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60_000.0)
    } else {
        return None;
    };
    number.trim().parse::<f64>().ok().map(|n| n * factor)
}

/// Parses wrk's report (with `--latency`).
pub fn parse(text: &str) -> anyhow::Result<WrkResult> {
    let mut result = WrkResult::default();
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("Requests/sec:") {
            result.rps = rest.trim().parse().context("Requests/sec")?;
        } else if line.contains(" requests in ") {
            let mut words = line.split_whitespace();
            result.requests = words.next().unwrap_or("0").parse().unwrap_or(0);
            if let Some(d) = line
                .split(" requests in ")
                .nth(1)
                .and_then(|r| r.split(',').next())
            {
                result.seconds = duration_ms(d).unwrap_or(0.0) / 1000.0;
            }
        } else if let Some(rest) = line.strip_prefix("Non-2xx or 3xx responses:") {
            result.non_2xx_3xx = rest.trim().parse().unwrap_or(0);
        } else if let Some(rest) = line.strip_prefix("Socket errors:") {
            result.socket_errors = rest
                .split(',')
                .filter_map(|part| part.split_whitespace().last())
                .filter_map(|n| n.parse::<u64>().ok())
                .sum();
        } else if let Some(rest) = line.strip_prefix("50%") {
            result.p50_ms = duration_ms(rest).unwrap_or(0.0);
        } else if let Some(rest) = line.strip_prefix("99%") {
            result.p99_ms = duration_ms(rest).unwrap_or(0.0);
        }
    }
    anyhow::ensure!(result.rps > 0.0, "no Requests/sec in wrk's output:\n{text}");
    let good = result.requests.saturating_sub(result.non_2xx_3xx) as f64;
    result.ok_rps = if result.requests > 0 {
        result.rps * good / result.requests as f64
    } else {
        0.0
    };
    Ok(result)
}

/// Runs wrk (one thread, `connections` connections) against `url` with the paths of
/// `paths_file`, pinned to `cpus`; keeps its output in `raw`.
pub fn run(
    url: &str,
    paths_file: &Path,
    lua: &Path,
    connections: usize,
    duration: Duration,
    cpus: Option<&str>,
    raw: &Path,
) -> anyhow::Result<WrkResult> {
    let mut command = procs::command("wrk", cpus);
    command
        .arg("-t1")
        .arg(format!("-c{connections}"))
        .arg(format!("-d{}s", duration.as_secs().max(1)))
        .arg("--latency")
        .arg("-s")
        .arg(lua)
        .arg(url)
        .arg("--")
        .arg(paths_file);
    let text = procs::output(command)?;
    std::fs::write(raw, &text)?;
    parse(&text)
}

/// Debian's nginx on `port` answering every request with `302` to a fixed offer URL, one
/// worker (one CPU, like the service it is compared with), no access log.
pub fn start_nginx(dir: &Path, port: u16, cpus: Option<&str>) -> anyhow::Result<Proc> {
    let root: PathBuf = dir.join("nginx");
    std::fs::create_dir_all(root.join("tmp"))?;
    let conf = format!(
        "worker_processes 1;\n\
         daemon off;\n\
         pid {root}/nginx.pid;\n\
         error_log {root}/error.log warn;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n\
           access_log off;\n\
           keepalive_requests 1000000;\n\
           keepalive_timeout 120s;\n\
           client_body_temp_path {root}/tmp/body;\n\
           proxy_temp_path {root}/tmp/proxy;\n\
           fastcgi_temp_path {root}/tmp/fastcgi;\n\
           uwsgi_temp_path {root}/tmp/uwsgi;\n\
           scgi_temp_path {root}/tmp/scgi;\n\
           server {{\n\
             listen 127.0.0.1:{port} backlog=4096;\n\
             location / {{ return 302 \"https://tune.example/aff_c?offer_id=1&aff_sub=01kbx0d7kq3vdm9xw1dq1tw2cs&s3=pub-17&s4=site1234.example&s5=mobile\"; }}\n\
           }}\n\
         }}\n",
        root = root.display()
    );
    let conf_path = root.join("nginx.conf");
    std::fs::write(&conf_path, conf)?;
    let mut command = procs::command("nginx", cpus);
    command
        .arg("-e")
        .arg(root.join("error.log"))
        .arg("-p")
        .arg(&root)
        .arg("-c")
        .arg(&conf_path);
    let proc = Proc::spawn("nginx", command, dir)?;
    procs::wait_port(port, Duration::from_secs(10))?;
    Ok(proc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_wrk_reports() {
        let text = "Running 5s test @ http://127.0.0.1:1/\n  1 threads and 64 connections\n  Latency Distribution\n     50%  380.00us\n     75%  500.00us\n     90%  800.00us\n     99%    1.23ms\n  123456 requests in 5.00s, 20.00MB read\n  Socket errors: connect 0, read 2, write 0, timeout 1\n  Non-2xx or 3xx responses: 12\nRequests/sec:  24691.20\nTransfer/sec:      4.00MB\n";
        let r = parse(text).unwrap();
        assert_eq!(r.requests, 123456);
        assert_eq!(r.non_2xx_3xx, 12);
        assert_eq!(r.socket_errors, 3);
        assert!((r.p50_ms - 0.38).abs() < 1e-9);
        assert!((r.p99_ms - 1.23).abs() < 1e-9);
        assert!((r.seconds - 5.0).abs() < 1e-9);
        assert!(r.ok_rps < r.rps);
    }
}
