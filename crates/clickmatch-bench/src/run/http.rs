//! Phase http: redirects and postbacks against nginx, then the latency at half load.

use std::path::Path;
use std::time::Duration;

use super::loadgen::OpenLoop;
use super::Bench;
use crate::kafka;
use crate::procs::{self, Proc};
use crate::report::{median, one_decimal, HttpPhase};
use crate::traffic::{self, Traffic};
use crate::wrk;

impl Bench {
    /// Phase http: redirects and postbacks against nginx, then the latency at half load.
    pub(super) fn http(&mut self) -> anyhow::Result<()> {
        let s = self.sizes.clone();
        let pin = self.pin.clone();
        let (mut broker, bootstrap) =
            self.start_broker("http-broker", s.partitions, pin.load.as_deref())?;
        let (mut ingest, ingest_port) =
            self.start_ingest("http-ingest", &bootstrap, pin.service.as_deref())?;
        let profiler = self.profile("http-ingest", &ingest)?;
        let nginx_port = procs::free_port()?;
        let nginx = wrk::start_nginx(self.work.path(), nginx_port, pin.service.as_deref());
        let mut nginx = match nginx {
            Ok(n) => Some(n),
            Err(e) => {
                self.results
                    .errors
                    .push(format!("http: nginx could not start: {e:#}"));
                None
            }
        };

        let config = Traffic::bench_config();
        let mut traffic = Traffic::new(&config, 11);
        let clicks_file = self.work.path().join("clicks.txt");
        let postbacks_file = self.work.path().join("postbacks.txt");
        let lua = self.work.path().join("paths.lua");
        std::fs::write(&lua, wrk::LUA)?;
        let clicks: Vec<String> = (0..s.http_paths).map(|_| traffic.click_path()).collect();
        std::fs::write(&clicks_file, clicks.join("\n") + "\n")?;
        let postbacks = traffic::postback_paths(&mut traffic, s.http_paths, crate::unix_ms());
        std::fs::write(&postbacks_file, postbacks.join("\n") + "\n")?;
        std::fs::copy(&clicks_file, self.raw.join("http-clicks-sample.txt")).ok();
        std::fs::write(
            self.raw.join("http-postbacks-sample.txt"),
            postbacks[..postbacks.len().min(200)].join("\n") + "\n",
        )?;
        std::fs::write(
            self.raw.join("http-clicks-sample.txt"),
            clicks[..clicks.len().min(200)].join("\n") + "\n",
        )?;

        let nginx_url = format!("http://127.0.0.1:{nginx_port}");
        let ingest_url = format!("http://127.0.0.1:{ingest_port}");
        let load = pin.load.as_deref();
        let seconds = Duration::from_secs(s.http_seconds);
        let mut phase = HttpPhase {
            connections: s.connections,
            seconds_per_run: s.http_seconds,
            ..Default::default()
        };
        // One wrk run against `url`; with `server`, also the server's CPU per request.
        let wrk_run =
            |url: &str, paths: &Path, duration: Duration, raw: &Path, server: Option<&Proc>| {
                let meter = server.map(Proc::cpu_meter);
                let mut result = wrk::run(url, paths, &lua, s.connections, duration, load, raw)?;
                result.server_cpu_us_per_request =
                    meter.and_then(|m| m.us_per_request(result.requests));
                anyhow::Ok(result)
            };
        // Warm-up: connections, producer metadata, page cache.
        let warm = Duration::from_secs(1);
        let scratch = self.work.path().join("warmup.txt");
        if nginx.is_some() {
            wrk_run(&nginx_url, &clicks_file, warm, &scratch, None)?;
        }
        wrk_run(&ingest_url, &clicks_file, warm, &scratch, None)?;
        wrk_run(&ingest_url, &postbacks_file, warm, &scratch, None)?;
        for r in 0..self.args.runs {
            if nginx.is_some() {
                let raw = self.raw.join(format!("wrk-nginx-{r}.txt"));
                phase
                    .nginx
                    .push(wrk_run(&nginx_url, &clicks_file, seconds, &raw, None)?);
            }
            let raw = self.raw.join(format!("wrk-clicks-{r}.txt"));
            phase.clicks.push(wrk_run(
                &ingest_url,
                &clicks_file,
                seconds,
                &raw,
                Some(&ingest),
            )?);
            let raw = self.raw.join(format!("wrk-postbacks-{r}.txt"));
            phase.postbacks.push(wrk_run(
                &ingest_url,
                &postbacks_file,
                seconds,
                &raw,
                Some(&ingest),
            )?);
            ingest.check_running()?;
            let cpu = |w: Option<&wrk::WrkResult>| {
                one_decimal(w.and_then(|w| w.server_cpu_us_per_request))
            };
            eprintln!(
                "   run {r}: nginx {:.0}/s, clicks {:.0}/s ({} µs CPU each), postbacks {:.0}/s ({} µs CPU each)",
                phase.nginx.last().map(|w| w.ok_rps).unwrap_or(0.0),
                phase.clicks.last().map(|w| w.ok_rps).unwrap_or(0.0),
                cpu(phase.clicks.last()),
                phase.postbacks.last().map(|w| w.ok_rps).unwrap_or(0.0),
                cpu(phase.postbacks.last()),
            );
        }
        let half = 0.5 * median(&phase.clicks.iter().map(|w| w.ok_rps).collect::<Vec<_>>());
        if half > 1.0 {
            for r in 0..self.args.runs {
                // One open-loop run, with the server's CPU per answered request.
                let run_half = |name: &str, port: u16, server: &Proc| {
                    let meter = server.cpu_meter();
                    let mut result = self.loadgen(&OpenLoop {
                        name,
                        port,
                        file: &clicks_file,
                        rate: half,
                        seconds: s.half_seconds,
                        warmup: 1,
                        connections: s.connections,
                        e2e: None,
                        cpus: load,
                    })?;
                    result.server_cpu_us_per_request = meter.us_per_request(result.total_ok);
                    anyhow::Ok(result)
                };
                let clicks = run_half(&format!("half-load-clicks-{r}"), ingest_port, &ingest)?;
                let reference = match &nginx {
                    Some(n) => Some(run_half(&format!("half-load-nginx-{r}"), nginx_port, n)?),
                    None => None,
                };
                eprintln!(
                    "   half load {r}: clicks p99 {:.2} ms (max {:.1}; {} µs CPU each; the generator's send lag max {:.1}), nginx p99 {}",
                    clicks.latency.p99_ms,
                    clicks.latency.max_ms,
                    one_decimal(clicks.server_cpu_us_per_request),
                    clicks.send_lag.max_ms,
                    reference.as_ref().map_or("?".into(), |n| format!(
                        "{:.2} ms ({} µs CPU each; send lag max {:.1})",
                        n.latency.p99_ms,
                        one_decimal(n.server_cpu_us_per_request),
                        n.send_lag.max_ms
                    )),
                );
                phase.clicks_half_load.push(clicks);
                phase.nginx_half_load.extend(reference);
            }
        }
        if let Ok(text) = kafka::scrape(&format!("127.0.0.1:{ingest_port}")) {
            std::fs::write(self.raw.join("http-ingest-metrics.txt"), &text)?;
            let samples = kafka::parse_metrics(&text);
            phase.clicks_failed =
                kafka::metric_sum(&samples, "clickmatch_ingest_clicks_total", Some("failed"));
            phase.produce_errors =
                kafka::metric_sum(&samples, "clickmatch_ingest_produce_errors_total", None);
        }
        self.results.http = Some(phase);
        self.finish_profile(profiler);
        ingest.stop(Duration::from_secs(15));
        if let Some(n) = nginx.as_mut() {
            n.stop(Duration::from_secs(5));
        }
        broker.stop(Duration::from_secs(5));
        Ok(())
    }
}
