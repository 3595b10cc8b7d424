//! Assembles ingest, joiner and the outbound dispatcher from a validated configuration: the one
//! place that wires adapters together, used by `ingest`, `join`, `outbound`, `dev` and the
//! end-to-end tests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use clickmatch_admin::{Admin, AdminGuard, Uploads};
use clickmatch_clickhouse::{ClickHouseSettings, ClickHouseSink, DebugReader, RecoveryReader};
use clickmatch_config::Config;
use clickmatch_core::model::Account;
use clickmatch_core::params::ParamLimits;
use clickmatch_enrich::Enricher;
use clickmatch_ingest::click_buffer::ClickBuffer;
use clickmatch_ingest::limits::Protection;
use clickmatch_ingest::spool::{Spool, SpoolMetrics};
use clickmatch_ingest::{Ingest, IngestMetrics, Publishers, Topics};
use clickmatch_joiner::{Joiner, JoinerMetrics};
use clickmatch_outbound::{Dispatcher, OutboundMetrics};
use futures::FutureExt;
use prometheus::Registry;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// ClickHouse settings from the configuration.
pub fn clickhouse_settings(config: &Config) -> ClickHouseSettings {
    ClickHouseSettings::from(&config.clickhouse)
}

async fn axum_serve(
    listener: tokio::net::TcpListener,
    router: clickmatch_ops::OpsRouter,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    clickmatch_ops::serve(listener, router, shutdown)
        .await
        .context("metrics server")
}

/// Size and rate limits and trusted proxies of ingest.
fn ingest_protection(config: &Config, registry: &Registry) -> anyhow::Result<Protection> {
    Protection::new(
        config.ingest.http_limits,
        config.ingest.rate_limits,
        config.ingest.trusted_proxies.clone(),
        registry,
    )
    .context("ingest limits")
}

/// What the admin pages ingest serves read (`/admin/spool`, the postback debugger `/debug…`):
/// ingest's account and spool, `[ingest] admin_token` and `report_token`, ClickHouse.
fn admin_pages(config: &Config, registry: &Registry, ingest: &Ingest) -> anyhow::Result<Admin> {
    Ok(Admin {
        account: ingest.account.clone(),
        guard: AdminGuard::new(config.ingest.admin_token.clone(), registry)
            .context("admin metrics")?
            .with_report_token(config.ingest.report_token.clone()),
        spool: ingest.spool.clone(),
        debug: DebugReader::new(&clickhouse_settings(config))
            .map_err(|e| tracing::warn!(error = %e, "postback debugger off"))
            .ok(),
        uploads: RecoveryReader::new(&clickhouse_settings(config))
            .map(|reader| Uploads {
                publisher: ingest.publisher.clone(),
                postbacks_topic: ingest.topics.postbacks.clone(),
                reader,
                // Answered within the request's deadline, which ends the request with a 408.
                wait: Duration::from_millis(config.ingest.http_limits.request_timeout_ms / 2),
            })
            .map_err(|e| tracing::warn!(error = %e, "conversion uploads off"))
            .ok(),
        reports: Some(clickhouse_settings(config)),
    })
}

/// Which services a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    pub ingest: bool,
    pub join: bool,
    /// The outbound dispatcher (traffic-source postbacks).
    pub outbound: bool,
}

impl Roles {
    /// `clickmatch ingest`.
    pub const INGEST: Roles = Roles {
        ingest: true,
        join: false,
        outbound: false,
    };
    /// `clickmatch join`.
    pub const JOIN: Roles = Roles {
        ingest: false,
        join: true,
        outbound: false,
    };
    /// `clickmatch outbound`.
    pub const OUTBOUND: Roles = Roles {
        ingest: false,
        join: false,
        outbound: true,
    };
    /// Ingest and joiner (the e2e tests' usual process).
    pub const INGEST_AND_JOIN: Roles = Roles {
        ingest: true,
        join: true,
        outbound: false,
    };
    /// Everything in one process (`clickmatch dev`).
    pub const ALL: Roles = Roles {
        ingest: true,
        join: true,
        outbound: true,
    };
}

/// Running services; dropped or [`Pipeline::stop`]ped, they shut down gracefully.
pub struct Pipeline {
    pub http_addr: Option<SocketAddr>,
    pub registry: Registry,
    /// The account every service reads; a configuration reload swaps it (see
    /// [`crate::reload`]).
    pub account: Arc<ArcSwap<Account>>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<anyhow::Result<()>>>,
}

impl Pipeline {
    /// Starts the services of `roles`. Ingest listens on `listen` (port 0 picks a free one).
    pub async fn start(config: &Config, roles: Roles, listen: &str) -> anyhow::Result<Pipeline> {
        let registry = Registry::new_custom(None, None).context("metrics registry")?;
        // CPU seconds, RSS and open files of the process: the standard `process_*` series.
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .context("process metrics")?;
        let account = Arc::new(ArcSwap::from_pointee(config.account.clone()));
        let (shutdown, _) = watch::channel(false);
        let mut tasks = Vec::new();
        let mut http_addr = None;

        if roles.join {
            let settings = clickhouse_settings(config);
            let sink = ClickHouseSink::new(&settings).context("ClickHouse sink")?;
            let joiner = Joiner::new(
                account.clone(),
                config.kafka.clone(),
                config.joiner.clone(),
                sink,
                JoinerMetrics::new(&registry).context("joiner metrics")?,
            )
            .context("joiner")?;
            let mut stop = shutdown.subscribe();
            tasks.push(tokio::spawn(async move {
                joiner
                    .run(async move {
                        let _ = stop.wait_for(|s| *s).await;
                    })
                    .await
                    .context("joiner")
            }));
        }

        if roles.outbound {
            let dispatcher = Dispatcher::new(
                account.clone(),
                config.kafka.clone(),
                config.outbound.clone(),
                &clickhouse_settings(config),
                OutboundMetrics::new(&registry).context("outbound metrics")?,
            )
            .context("outbound dispatcher")?;
            let mut stop = shutdown.subscribe();
            tasks.push(tokio::spawn(async move {
                dispatcher
                    .run(async move {
                        let _ = stop.wait_for(|s| *s).await;
                    })
                    .await
                    .context("outbound dispatcher")
            }));
        }

        if (roles.join || roles.outbound) && !roles.ingest && !listen.is_empty() {
            // A joiner-only or dispatcher-only process serves its metrics and health on
            // `listen`.
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("cannot listen on {listen}"))?;
            http_addr = Some(listener.local_addr()?);
            let router = clickmatch_ops::router(registry.clone());
            let mut stop = shutdown.subscribe();
            tasks.push(tokio::spawn(async move {
                axum_serve(listener, router, async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await
            }));
        }

        if roles.ingest {
            // Before anything else of ingest: a database named in `[enrichment]` that cannot
            // be read stops the start with the key and the file.
            let enrich = Arc::new(
                Enricher::open(&config.enrichment, &registry).context("[enrichment] databases")?,
            );
            let mut stop_watch = shutdown.subscribe();
            tasks.push(tokio::spawn(
                enrich
                    .clone()
                    .watch(
                        std::time::Duration::from_millis(config.enrichment.reload_interval_ms),
                        async move {
                            let _ = stop_watch.wait_for(|s| *s).await;
                        },
                    )
                    .map(Ok),
            ));
            let metrics = IngestMetrics::new(&registry).context("ingest metrics")?;
            let publishers = Publishers::new(
                &config.kafka.bootstrap_servers,
                &config.kafka.properties,
                &metrics,
            )
            .context("Kafka producers")?;
            let ingest = Arc::new(Ingest {
                account: account.clone(),
                publisher: publishers.acked,
                clicks: ClickBuffer::new(publishers.clicks, config.kafka.clicks_topic.clone()),
                topics: Topics {
                    clicks: config.kafka.clicks_topic.clone(),
                    postbacks: config.kafka.postbacks_topic.clone(),
                },
                metrics,
                registry: registry.clone(),
                limits: ParamLimits {
                    max_params: config.ingest.http_limits.max_params,
                    ..ParamLimits::default()
                },
                max_body_bytes: config.ingest.max_body_bytes,
                protection: ingest_protection(config, &registry)?,
                enrich,
                spool: Some(Arc::new(
                    Spool::open(
                        &config.ingest.spool,
                        SpoolMetrics::new(&registry).context("spool metrics")?,
                    )
                    .with_context(|| format!("click spool in {}", config.ingest.spool.dir))?,
                )),
            });
            let pages =
                clickmatch_admin::router(Arc::new(admin_pages(config, &registry, &ingest)?));
            tasks.push(tokio::spawn(ingest.clicks.clone().run().map(Ok)));
            // Spools the clicks the click producer gave up on; ends once that producer is dropped
            // (after the server's last flush), so no click reported late is left out.
            let (spool, metrics) = (ingest.spool.clone(), ingest.metrics.clone());
            tasks.push(tokio::spawn(async move {
                clickmatch_ingest::spool_undelivered(publishers.undelivered, spool, metrics).await;
                Ok(())
            }));
            // Replays spooled clicks whenever the broker answers.
            let spool = ingest.spool.clone().expect("spool");
            let replay_publisher = ingest.publisher.clone();
            let mut stop_replay = shutdown.subscribe();
            tasks.push(tokio::spawn(async move {
                clickmatch_ingest::spool::replay(spool, replay_publisher, async move {
                    let _ = stop_replay.wait_for(|s| *s).await;
                })
                .await;
                Ok(())
            }));
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("cannot listen on {listen}"))?;
            http_addr = Some(listener.local_addr()?);
            let mut stop = shutdown.subscribe();
            tasks.push(tokio::spawn(async move {
                let clicks = ingest.clicks.clone();
                clickmatch_ingest::serve(ingest, pages, listener, async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await
                .context("ingest server")?;
                // Deliver what the visitors' redirects handed over.
                clicks.close();
                tokio::task::spawn_blocking(move || {
                    clicks.publisher().flush(std::time::Duration::from_secs(10))
                })
                .await?
                .context("flushing clicks")?;
                Ok(())
            }));
        }

        Ok(Pipeline {
            http_addr,
            registry,
            account,
            shutdown,
            tasks,
        })
    }

    /// Base URL of the ingest service.
    pub fn base_url(&self) -> Option<String> {
        self.http_addr.map(|a| format!("http://{a}"))
    }

    /// Sum of a counter's samples whose labels include `filter` pairs.
    pub fn counter(&self, name: &str, filter: &[(&str, &str)]) -> f64 {
        self.registry
            .gather()
            .iter()
            .filter(|family| family.name() == name)
            .flat_map(|family| family.get_metric())
            .filter(|metric| {
                filter.iter().all(|(k, v)| {
                    metric
                        .get_label()
                        .iter()
                        .any(|l| l.name() == *k && l.value() == *v)
                })
            })
            .map(|metric| metric.get_counter().get_value())
            .sum()
    }

    /// Current value of a gauge summed over its label values.
    pub fn gauge(&self, name: &str) -> f64 {
        self.registry
            .gather()
            .iter()
            .filter(|family| family.name() == name)
            .flat_map(|family| family.get_metric())
            .map(|metric| metric.get_gauge().get_value())
            .sum()
    }

    /// Waits until the joiner has been assigned its partitions (the first group join takes a
    /// few seconds), so that traffic sent next is measured in steady state.
    pub async fn wait_joiner_assigned(&self, timeout: std::time::Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.gauge("clickmatch_joiner_assigned_partitions") <= 0.0 {
            if tokio::time::Instant::now() > deadline {
                anyhow::bail!("the joiner got no partitions within {timeout:?}");
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Signals shutdown and waits for every service to finish its last batch.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            task.await.context("service task panicked")??;
        }
        Ok(())
    }

    /// Waits until any service stops (an error) or `shutdown` resolves.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<()> {
        tokio::select! {
            _ = shutdown => {}
            _ = futures_any(&self.tasks) => {}
        }
        self.stop().await
    }
}

async fn futures_any(tasks: &[JoinHandle<anyhow::Result<()>>]) {
    loop {
        if tasks.iter().any(|t| t.is_finished()) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
