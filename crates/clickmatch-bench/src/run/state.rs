//! Phase state: RSS and disk per click at two sizes, then a restore from the checkpoint in a
//! fresh process.

use std::process::Command;
use std::time::Duration;

use super::Bench;
use crate::procs::{self, Proc};
use crate::report::StatePhase;
use crate::traffic::Traffic;

impl Bench {
    /// Phase state: RSS and disk per click at two sizes, then a restore from the checkpoint in
    /// a fresh process.
    pub(super) fn state(&mut self) -> anyhow::Result<()> {
        let s = self.sizes.clone();
        let cache_mib = Traffic::bench_config().joiner.state_cache_mib;
        let dir = self.work.path().join("state-bench").join("db");
        let json = self.raw.join("state-load.json");
        let mut command = Command::new(&self.me);
        command
            .args(["state-load", "--dir"])
            .arg(&dir)
            .arg("--partitions")
            .arg(s.state_partitions.to_string())
            .arg("--clicks")
            .arg(s.state_clicks.to_string())
            .arg("--marks")
            .arg(
                s.state_marks
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            )
            .arg("--cache-mib")
            .arg(cache_mib.to_string())
            .arg("--json-out")
            .arg(&json);
        let mut proc = Proc::spawn("state-load", command, &self.logs())?;
        let status = proc.wait(Duration::from_secs(900))?;
        anyhow::ensure!(
            status.success(),
            "state-load: {}",
            procs::tail(&proc.log, 20)
        );
        let marks: Vec<crate::state::StateMark> =
            serde_json::from_str(&std::fs::read_to_string(&json)?)?;

        let json = self.raw.join("state-restore.json");
        let mut command = Command::new(&self.me);
        command
            .args(["state-restore", "--dir"])
            .arg(&dir)
            .arg("--partitions")
            .arg(s.state_partitions.to_string())
            .arg("--cache-mib")
            .arg(cache_mib.to_string())
            .arg("--json-out")
            .arg(&json);
        let mut proc = Proc::spawn("state-restore", command, &self.logs())?;
        let status = proc.wait(Duration::from_secs(300))?;
        anyhow::ensure!(
            status.success(),
            "state-restore: {}",
            procs::tail(&proc.log, 20)
        );
        let restore: crate::state::RestoreResult =
            serde_json::from_str(&std::fs::read_to_string(&json)?)?;
        let _ = std::fs::remove_dir_all(self.work.path().join("state-bench"));
        self.results.state = Some(StatePhase {
            partitions: s.state_partitions,
            cache_mib,
            marks,
            restore: Some(restore),
        });
        Ok(())
    }
}
