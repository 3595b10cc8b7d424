//! The open-loop load generator (`clickmatch-bench loadgen http`), run as a process of its own.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Bench;
use crate::httpload::LoadResult;
use crate::procs::{self, Proc};

/// One run of the open-loop load generator (`clickmatch-bench loadgen http`).
pub(super) struct OpenLoop<'a> {
    /// Names its log and its JSON result in the raw outputs.
    pub(super) name: &'a str,
    pub(super) port: u16,
    /// Request lines, one per line.
    pub(super) file: &'a Path,
    /// Requests per second offered, whatever the answers' pace.
    pub(super) rate: f64,
    pub(super) seconds: u64,
    pub(super) warmup: u64,
    pub(super) connections: usize,
    /// Bootstrap servers and database, to follow each probe postback to its row.
    pub(super) e2e: Option<(&'a str, &'a str)>,
    pub(super) cpus: Option<&'a str>,
}

impl Bench {
    /// Runs the open-loop load generator as a process of its own; returns its result.
    pub(super) fn loadgen(&self, load: &OpenLoop) -> anyhow::Result<LoadResult> {
        let (proc, json) = self.spawn_loadgen(load)?;
        self.finish_loadgen(proc, &json, load.seconds + load.warmup)
    }

    pub(super) fn spawn_loadgen(&self, load: &OpenLoop) -> anyhow::Result<(Proc, PathBuf)> {
        let json = self.raw.join(format!("{}.json", load.name));
        let mut command = procs::command(&self.me, load.cpus);
        command
            .args(["loadgen", "http", "--addr"])
            .arg(format!("127.0.0.1:{}", load.port))
            .arg("--file")
            .arg(load.file)
            .arg("--rate")
            .arg(format!("{:.0}", load.rate))
            .arg("--seconds")
            .arg(load.seconds.to_string())
            .arg("--warmup-seconds")
            .arg(load.warmup.to_string())
            .arg("--connections")
            .arg(load.connections.to_string())
            .arg("--json-out")
            .arg(&json);
        if let Some((bootstrap, database)) = load.e2e {
            command
                .arg("--clickhouse-url")
                .arg(self.clickhouse_url())
                .arg("--database")
                .arg(database)
                .arg("--bootstrap")
                .arg(bootstrap);
        }
        Ok((Proc::spawn(load.name, command, &self.logs())?, json))
    }

    pub(super) fn finish_loadgen(
        &self,
        mut proc: Proc,
        json: &Path,
        seconds: u64,
    ) -> anyhow::Result<LoadResult> {
        let status = proc.wait(Duration::from_secs(seconds + 120))?;
        anyhow::ensure!(
            status.success(),
            "{} failed: {}",
            proc.name,
            procs::tail(&proc.log, 20)
        );
        let text = std::fs::read_to_string(json)?;
        Ok(serde_json::from_str(&text)?)
    }
}
