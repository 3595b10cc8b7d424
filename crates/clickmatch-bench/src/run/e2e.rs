//! Phase e2e: postbacks through HTTP at a fixed rate, all services running, latency to a
//! queryable row.

use std::time::{Duration, Instant};

use super::loadgen::OpenLoop;
use super::Bench;
use crate::kafka;
use crate::report::{E2eAttempt, E2ePhase};
use crate::traffic::{self, Record, Traffic};

impl Bench {
    /// Phase e2e: postbacks through HTTP at a fixed rate, all services running (unpinned: they
    /// share the machine as they would share a small host), latency to a queryable row.
    pub(super) fn e2e(&mut self) -> anyhow::Result<()> {
        let s = self.sizes.clone();
        let mut rate = if self.args.smoke {
            200.0
        } else {
            self.args.e2e_rate
        };
        let mut phase = E2ePhase::default();
        for attempt in 0..s.e2e_attempts {
            let result = self.e2e_attempt(attempt, rate);
            let a = match result {
                Ok(a) => a,
                Err(e) => {
                    self.results.e2e = Some(phase);
                    return Err(e);
                }
            };
            eprintln!(
                "   {:.0}/s: {:.0}/s accepted, probes p50 {:.0} ms p99 {:.0} ms, rows {}/{} (drain {:.1} s){}",
                rate,
                a.load.ok_rps,
                a.load.probes.as_ref().map(|p| p.p50_ms).unwrap_or(0.0),
                a.load.probes.as_ref().map(|p| p.p99_ms).unwrap_or(0.0),
                a.rows_landed,
                a.rows_expected,
                a.drain_seconds,
                if a.sustained { "" } else { ", not sustained" }
            );
            let sustained = a.sustained;
            let capacity = rate.min(a.load.ok_rps).min(a.landed_rps);
            phase.attempts.push(a);
            if sustained {
                break;
            }
            // Next: a little under what the slowest stage kept up with.
            rate = (0.8 * capacity).max(100.0).round();
        }
        self.results.e2e = Some(phase);
        Ok(())
    }

    fn e2e_attempt(&self, attempt: usize, rate: f64) -> anyhow::Result<E2eAttempt> {
        let s = &self.sizes;
        let (mut broker, bootstrap) =
            self.start_broker(&format!("e2e-broker-{attempt}"), s.partitions, None)?;
        let database = format!("bench_e2e_{attempt}");
        let settings = self.fresh_database(&database)?;
        let group = format!("bench-e2e-{attempt}");
        let state_dir = self.work.path().join(format!("e2e-state-{attempt}"));
        let (mut joiner, metrics) = self.start_joiner(
            &format!("e2e-joiner-{attempt}"),
            &bootstrap,
            &group,
            &database,
            &state_dir,
            None,
        )?;
        let (mut ingest, port) =
            self.start_ingest(&format!("e2e-ingest-{attempt}"), &bootstrap, None)?;
        self.wait_assigned(&mut joiner, &metrics)?;

        let config = Traffic::bench_config();
        let mut traffic = Traffic::new(&config, 41 + attempt as u64);
        let total = (rate * (s.e2e_seconds + s.e2e_warmup) as f64 * 1.05) as usize + 100;
        let now = crate::unix_ms();
        let (clicks, lines) = traffic::e2e_plan(&mut traffic, total, now - 600_000, 600_000);
        let records: Vec<Record> = clicks.into_iter().map(Record::Click).collect();
        self.rt.block_on(kafka::produce(
            &bootstrap,
            &config.account,
            &records,
            &config.kafka.clicks_topic,
            &config.kafka.postbacks_topic,
        ))?;
        drop(records);
        let ends = kafka::retained_end_offsets(&bootstrap, &[config.kafka.clicks_topic.as_str()])?;
        self.wait_committed(
            &mut joiner,
            &bootstrap,
            &group,
            &ends,
            Duration::from_secs(300),
        )?;
        let file = self.work.path().join(format!("e2e-{attempt}.txt"));
        std::fs::write(&file, lines.join("\n") + "\n")?;

        let client = settings.client();
        let count = || -> anyhow::Result<u64> {
            let c: u64 = self.rt.block_on(
                client
                    // assumeNotNull: scalar subqueries are Nullable on current ClickHouse.
                    .query(
                        "SELECT assumeNotNull((SELECT count() FROM conversions) \
                         + (SELECT count() FROM unattributed))",
                    )
                    .fetch_one(),
            )?;
            Ok(c)
        };
        let (mut proc, json) = self.spawn_loadgen(&OpenLoop {
            name: &format!("e2e-loadgen-{attempt}"),
            port,
            file: &file,
            rate,
            seconds: s.e2e_seconds,
            warmup: s.e2e_warmup,
            connections: s.e2e_connections,
            e2e: Some((&bootstrap, &database)),
            cpus: None,
        })?;
        // While the load runs: rows landed over time, to see what the pipeline kept up with.
        let spawned = Instant::now();
        let load_seconds = (s.e2e_seconds + s.e2e_warmup) as f64;
        let mut at_load_end: Option<u64> = None;
        while proc.check_running().is_ok() {
            std::thread::sleep(Duration::from_millis(250));
            if at_load_end.is_none() && spawned.elapsed().as_secs_f64() >= load_seconds + 0.1 {
                at_load_end = Some(count()?);
            }
        }
        let load = self.finish_loadgen(proc, &json, s.e2e_seconds + s.e2e_warmup)?;
        let ended = Instant::now();
        let landed_at_end = match at_load_end {
            Some(n) => n,
            None => count()?,
        };
        let landed_rps = landed_at_end as f64 / load_seconds;
        let expected = load.total_ok;
        let mut landed = count()?;
        while landed < expected && ended.elapsed() < Duration::from_secs(15) {
            std::thread::sleep(Duration::from_millis(100));
            landed = count()?;
        }
        let drain_seconds = ended.elapsed().as_secs_f64();
        let quantiles: Vec<f64> = self
            .rt
            .block_on(
                client
                    .query(
                        "SELECT quantilesExact(0.5, 0.99)(toFloat64(latency_ms)) FROM \
                         (SELECT latency_ms FROM conversions UNION ALL \
                          SELECT latency_ms FROM unattributed WHERE reason != 'unknown_click_id')",
                    )
                    .fetch_one(),
            )
            .unwrap_or_default();
        if let Ok(text) = kafka::scrape(&metrics) {
            std::fs::write(
                self.raw.join(format!("e2e-joiner-{attempt}-metrics.txt")),
                text,
            )?;
        }
        // Sustained: every postback accepted at the rate, every row landed, and no backlog
        // building up (a backlog shows as probe latencies of many seconds).
        let probes_p99 = load.probes.as_ref().map(|p| p.p99_ms).unwrap_or(f64::MAX);
        let sustained = load.ok_rps >= 0.95 * rate
            && landed >= expected
            && load.probes_missing == 0
            && load.errors == 0
            && probes_p99 <= 5_000.0;
        ingest.stop(Duration::from_secs(15));
        joiner.stop(Duration::from_secs(30));
        broker.stop(Duration::from_secs(5));
        self.drop_database(&database);
        let _ = std::fs::remove_dir_all(&state_dir);
        Ok(E2eAttempt {
            target_rps: rate,
            load,
            rows_expected: expected,
            rows_landed: landed,
            drain_seconds,
            landed_rps,
            column_p50_ms: quantiles.first().copied().unwrap_or(0.0),
            column_p99_ms: quantiles.get(1).copied().unwrap_or(0.0),
            sustained,
        })
    }
}
