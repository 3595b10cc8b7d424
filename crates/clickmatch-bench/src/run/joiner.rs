//! Phase joiner: the joiner against a bare consumer over the same prefilled topics, then a
//! rebuild of the state from the clicks topic.

use std::time::{Duration, Instant};

use anyhow::bail;

use super::Bench;
use crate::kafka;
use crate::procs::{self, Proc};
use crate::report::{JoinerPhase, JoinerRun, RebuildResult};
use crate::traffic::{Record, Traffic};

impl Bench {
    /// Phase joiner: the joiner against a bare consumer over the same prefilled topics, then a
    /// rebuild of the state from the clicks topic.
    pub(super) fn joiner(&mut self) -> anyhow::Result<()> {
        let s = self.sizes.clone();
        let pin = self.pin.clone();
        self.pin_clickhouse(pin.load.as_deref());
        let (mut broker, bootstrap) =
            self.start_broker("joiner-broker", s.partitions, pin.load.as_deref())?;
        let config = Traffic::bench_config();
        let mut traffic = Traffic::new(&config, 21);
        let now = crate::unix_ms();
        let plan = traffic.kafka_plan(s.joiner_clicks, 0.5, now - 7_200_000, 3_600_000);
        let clicks = plan
            .iter()
            .filter(|r| matches!(r, Record::Click(_)))
            .count() as u64;
        let postbacks = plan.len() as u64 - clicks;
        let bytes: u64 = plan
            .iter()
            .map(|r| r.encode(&config.account).2.len() as u64)
            .sum();
        let topics = [
            config.kafka.clicks_topic.as_str(),
            config.kafka.postbacks_topic.as_str(),
        ];
        self.rt.block_on(kafka::produce(
            &bootstrap,
            &config.account,
            &plan,
            topics[0],
            topics[1],
        ))?;
        drop(plan);
        let ends = kafka::retained_end_offsets(&bootstrap, &topics)?;
        let produced: i64 = ends.values().sum();
        anyhow::ensure!(
            produced as u64 == clicks + postbacks,
            "the broker holds {produced} records of {} produced",
            clicks + postbacks
        );
        let mut phase = JoinerPhase {
            partitions: s.partitions,
            clicks,
            postbacks,
            topic_bytes: bytes,
            max_partition_bytes: bytes / s.partitions.max(1) as u64,
            ..Default::default()
        };
        let mut last_group = String::new();
        let mut rebuild_clicks = 0u64;
        let mut last_db = String::new();
        for r in 0..self.args.runs {
            // The reference: same topics, same consumer settings, no processing.
            let json = self.raw.join(format!("bare-consumer-{r}.json"));
            let mut command = procs::command(&self.me, pin.service.as_deref());
            command
                .args(["consume", "--bootstrap", &bootstrap, "--group"])
                .arg(format!("bench-bare-{r}"))
                .arg("--topics")
                .arg(topics.join(","))
                .arg("--json-out")
                .arg(&json);
            let mut proc = Proc::spawn(&format!("bare-consumer-{r}"), command, &self.logs())?;
            let status = proc.wait(Duration::from_secs(300))?;
            anyhow::ensure!(
                status.success(),
                "bare consumer: {}",
                procs::tail(&proc.log, 20)
            );
            let bare: kafka::ConsumeResult =
                serde_json::from_str(&std::fs::read_to_string(&json)?)?;

            let group = format!("bench-join-{r}");
            let database = format!("bench_join_{r}");
            let settings = self.fresh_database(&database)?;
            let state_dir = self.work.path().join(format!("join-state-{r}"));
            let spawned = Instant::now();
            let (mut joiner, metrics) = self.start_joiner(
                &format!("joiner-{r}"),
                &bootstrap,
                &group,
                &database,
                &state_dir,
                pin.service.as_deref(),
            )?;
            let profiler = self.profile(&format!("joiner-{r}"), &joiner)?;
            let assigned = self.wait_assigned(&mut joiner, &metrics)?;
            let progress = self.wait_progress(
                &mut joiner,
                &bootstrap,
                &group,
                &ends,
                Duration::from_secs(s.joiner_cap_seconds),
            )?;
            let (done, peak) = (progress.at, progress.peak_rss);
            if r + 1 == self.args.runs {
                rebuild_clicks = progress
                    .committed
                    .iter()
                    .filter(|((topic, _), _)| topic == topics[0])
                    .map(|(_, o)| (*o).max(0) as u64)
                    .sum();
            }
            let cpu_seconds = joiner.cpu_seconds();
            if let Ok(text) = kafka::scrape(&metrics) {
                std::fs::write(self.raw.join(format!("joiner-{r}-metrics.txt")), text)?;
            }
            self.finish_profile(profiler);
            joiner.stop(Duration::from_secs(30));
            let rows = self.rt.block_on(crate::sink::count_rows(&settings))?;
            let seconds = (done - assigned).as_secs_f64();
            let run = JoinerRun {
                events: progress.events,
                complete: progress.complete,
                seconds,
                events_per_s: progress.events as f64 / seconds,
                join_seconds: (assigned - spawned).as_secs_f64(),
                peak_rss_bytes: peak,
                rows,
                cpu_seconds,
            };
            eprintln!(
                "   run {r}: bare consumer {:.0}/s, joiner {:.0}/s ({} of {} events in {:.1} s, {} rows, peak RSS {} MiB, CPU {})",
                bare.events_per_s,
                run.events_per_s,
                run.events,
                produced,
                run.seconds,
                rows,
                peak / (1024 * 1024),
                cpu_seconds.map_or("?".to_string(), |cpu| format!(
                    "{:.1} s = {:.1} µs per event",
                    cpu,
                    cpu * 1e6 / run.events.max(1) as f64
                )),
            );
            phase.bare.push(bare);
            phase.joiner.push(run);
            if r + 1 < self.args.runs {
                self.drop_database(&database);
                let _ = std::fs::remove_dir_all(&state_dir);
            } else {
                let _ = std::fs::remove_dir_all(&state_dir);
                last_group = group;
                last_db = database;
            }
        }
        // Rebuild: the last run's group (offsets committed), its state folder deleted.
        if !last_group.is_empty() {
            let state_dir = self.work.path().join("rebuild-state");
            let (mut joiner, metrics) = self.start_joiner(
                "joiner-rebuild",
                &bootstrap,
                &last_group,
                &last_db,
                &state_dir,
                pin.service.as_deref(),
            )?;
            let assigned = self.wait_assigned(&mut joiner, &metrics)?;
            let deadline = Instant::now() + Duration::from_secs(600);
            loop {
                joiner.check_running()?;
                let samples = kafka::parse_metrics(&kafka::scrape(&metrics).unwrap_or_default());
                let series = samples
                    .iter()
                    .filter(|(n, _, _)| n == "clickmatch_joiner_restore_progress_ratio")
                    .count();
                let min = kafka::metric_min(&samples, "clickmatch_joiner_restore_progress_ratio");
                if series as i32 >= s.partitions && min.is_some_and(|m| m >= 1.0) {
                    break;
                }
                if Instant::now() > deadline {
                    bail!("the rebuild did not finish within 600 s");
                }
                std::thread::sleep(Duration::from_millis(25));
            }
            let seconds = assigned.elapsed().as_secs_f64();
            phase.rebuild = Some(RebuildResult {
                clicks: rebuild_clicks,
                seconds,
                seconds_per_million_clicks: seconds / (rebuild_clicks.max(1) as f64 / 1e6),
            });
            joiner.stop(Duration::from_secs(30));
            self.drop_database(&last_db);
        }
        self.results.joiner = Some(phase);
        broker.stop(Duration::from_secs(5));
        self.pin_clickhouse(None);
        Ok(())
    }
}
