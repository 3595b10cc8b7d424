//! What the machine is, for the results: CPU, memory, kernel, load and tool versions.

use std::process::Command;

pub(super) fn utc_now() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn sh(command: &str) -> String {
    Command::new("sh")
        .arg("-c")
        .arg(command)
        .output()
        .map(|o| {
            let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
            s.push_str(&String::from_utf8_lossy(&o.stderr));
            s.trim().to_string()
        })
        .unwrap_or_default()
}

/// What the machine is.
pub fn machine() -> String {
    let mut out = String::new();
    out.push_str(&format!("date: {}\n", utc_now()));
    out.push_str(&format!(
        "lscpu:\n{}\n",
        sh("lscpu | grep -E '^(Architecture|CPU\\(s\\)|Model name|Thread|Core|Socket|Hypervisor|L2|L3|CPU MHz|BogoMIPS)'")
    ));
    out.push_str(&format!("memory (free -m):\n{}\n", sh("free -m")));
    out.push_str(&format!("kernel: {}\n", sh("uname -srm")));
    out.push_str(&format!(
        "load average at the start: {}\n",
        sh("cat /proc/loadavg")
    ));
    out.push_str(&format!(
        "tools: {}; {}; {}; {}\n",
        sh("nginx -v 2>&1"),
        sh("wrk -v 2>&1 | head -1"),
        sh("clickhouse-client --version 2>&1 | head -1"),
        sh("rustc --version 2>/dev/null || true")
    ));
    out.push_str(&format!(
        "clickmatch: {}\n",
        sh("git rev-parse --short HEAD 2>/dev/null; git status --porcelain 2>/dev/null | wc -l | sed 's/$/ files changed/'")
            .replace('\n', ", ")
    ));
    out
}
