//! [`Engine::Chdb`](super::Engine::Chdb): ClickHouse 26.9 for tests, from PyPI's chdb-core.
//!
//! chdb-core embeds ClickHouse's `clickhouse-local`, which opens the real HTTP and native
//! handlers on request. `python3` runs `chdb_launcher.py` in the server's folder: it reads
//! `config.xml` there (ports, `remote_servers`, macros), keeps its data in `data/`, and serves
//! until its stdin closes ([`LocalServer::stop`](super::LocalServer::stop) closes it; so does
//! the death of this process). No Keeper: replicated tables and `ON CLUSTER` DDL are refused,
//! as on a `clickhouse-server` without ZooKeeper.
//!
//! The version is pinned in `chdb-requirements.txt`, which `scripts/test` installs with
//! `pip install --no-deps -r`; the launcher refuses any other version.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::error::TestbedError;

const LAUNCHER: &str = include_str!("chdb_launcher.py");
const REQUIREMENTS: &str = include_str!("chdb-requirements.txt");
const LAUNCHER_FILE: &str = "chdb_launcher.py";

/// The launcher's exit status when the pinned chdb-core cannot be imported.
pub(super) const NOT_INSTALLED: i32 = 2;

/// The pinned package, `chdb-core==<version>`.
pub fn requirement() -> &'static str {
    REQUIREMENTS
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty() && !line.starts_with('#'))
        .expect("chdb-requirements.txt names the package")
}

/// The pinned chdb-core version (ClickHouse's major.minor and chdb's patch level).
pub fn version() -> &'static str {
    requirement()
        .split_once("==")
        .map(|(_, version)| version)
        .expect("chdb-requirements.txt pins with ==")
}

/// Writes `config.xml` and the launcher into `dir` (absolute, existing) and returns the command
/// that serves from there.
pub(super) fn command(dir: &Path, http_port: u16, tcp_port: u16) -> Result<Command, TestbedError> {
    let write = |name: &str, contents: &str| {
        let path = dir.join(name);
        fs::write(&path, contents).map_err(|source| TestbedError::Io { path, source })
    };
    // keep_alive_timeout as for clickhouse-server (super::write_config).
    write(
        "config.xml",
        &format!(
            "<clickhouse>\n    <listen_host>127.0.0.1</listen_host>\n    \
             <http_port>{http_port}</http_port>\n    <tcp_port>{tcp_port}</tcp_port>\n    \
             <keep_alive_timeout>3</keep_alive_timeout>\n{}</clickhouse>\n",
            super::cluster_config(tcp_port)
        ),
    )?;
    write(LAUNCHER_FILE, LAUNCHER)?;
    let mut command = Command::new("python3");
    command.arg(dir.join(LAUNCHER_FILE)).arg(version());
    Ok(command)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pin_is_one_exact_version() {
        assert!(
            requirement().starts_with("chdb-core=="),
            "{}",
            requirement()
        );
        let parts: Vec<&str> = version().split('.').collect();
        assert_eq!(parts.len(), 3, "{}", version());
        assert!(
            parts.iter().all(|p| p.parse::<u32>().is_ok()),
            "{}",
            version()
        );
    }
}
