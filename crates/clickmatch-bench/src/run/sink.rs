//! Phase sink: the joiner's ClickHouse sink against clickhouse-client, same rows.

use std::time::Duration;

use super::Bench;
use crate::procs::{self, Proc};
use crate::report::SinkPhase;
use crate::traffic::Traffic;

impl Bench {
    /// Phase sink: the joiner's ClickHouse sink against clickhouse-client, same rows.
    pub(super) fn sink(&mut self) -> anyhow::Result<()> {
        let s = self.sizes.clone();
        let pin = self.pin.clone();
        self.pin_clickhouse(pin.service.as_deref());
        let batch_rows = Traffic::bench_config().joiner.batch_max_rows;
        let batch_rows = std::env::var("CLICKMATCH_JOINER_BATCH_MAX_ROWS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(batch_rows);
        let seed = 31;
        let batch = crate::sink::batch(s.sink_clicks, seed)?;
        let files = crate::sink::write_files(&batch, &self.work.path().join("sink-files"))?;
        let mut phase = SinkPhase {
            rows: batch.len(),
            batch_rows,
            ..Default::default()
        };
        drop(batch);
        for r in 0..self.args.runs {
            let database = format!("bench_sink_{r}");
            let settings = self.fresh_database(&database)?;
            let json = self.raw.join(format!("sink-{r}.json"));
            let mut command = procs::command(&self.me, pin.load.as_deref());
            command
                .args(["sink-write", "--clickhouse-url"])
                .arg(self.clickhouse_url())
                .arg("--database")
                .arg(&database)
                .arg("--clicks")
                .arg(s.sink_clicks.to_string())
                .arg("--seed")
                .arg(seed.to_string())
                .arg("--batch-rows")
                .arg(batch_rows.to_string())
                .arg("--json-out")
                .arg(&json);
            let mut proc = Proc::spawn(&format!("sink-{r}"), command, &self.logs())?;
            let status = proc.wait(Duration::from_secs(600))?;
            anyhow::ensure!(status.success(), "sink: {}", procs::tail(&proc.log, 20));
            let sink: crate::sink::InsertResult =
                serde_json::from_str(&std::fs::read_to_string(&json)?)?;
            let landed = self.rt.block_on(crate::sink::count_rows(&settings))?;
            anyhow::ensure!(
                landed as usize == phase.rows,
                "the sink wrote {landed} rows of {}",
                phase.rows
            );
            self.wait_for_merges(Duration::from_secs(30));

            let database = format!("bench_client_{r}");
            let settings = self.fresh_database(&database)?;
            let client = crate::sink::insert_with_client(
                self.clickhouse.tcp_port(),
                &database,
                &files,
                pin.load.as_deref(),
            )?;
            let landed = self.rt.block_on(crate::sink::count_rows(&settings))?;
            anyhow::ensure!(
                landed as usize == phase.rows,
                "clickhouse-client wrote {landed} rows of {}",
                phase.rows
            );
            self.wait_for_merges(Duration::from_secs(30));
            eprintln!(
                "   run {r}: sink {:.0} rows/s, clickhouse-client {:.0} rows/s",
                sink.rows_per_s, client.rows_per_s
            );
            phase.sink.push(sink);
            phase.client.push(client);
        }
        // Dropped only now: on ext4 without a journal (this machine), every file created within
        // a minute or more of many deletions in the same block group scans past the deleted
        // inodes (`recently_deleted`). A drop between runs made the next runs pay for it, in
        // proportion to the files they create: the sink's 31 inserts create ~5,000 part files,
        // clickhouse-client's 3 inserts ~170.
        for r in 0..self.args.runs {
            self.drop_database(&format!("bench_sink_{r}"));
            self.drop_database(&format!("bench_client_{r}"));
        }
        self.results.sink = Some(phase);
        self.pin_clickhouse(None);
        Ok(())
    }
}
