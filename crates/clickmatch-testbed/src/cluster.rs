//! A replicated, sharded ClickHouse cluster on loopback, for the cluster test
//! (`tests/cluster.rs` of `clickmatch-e2e`): a [`LocalZooKeeper`] and `shards × replicas`
//! Debian 18.16 `clickhouse-server`s ([`LocalServer`]s), each in a folder of its own under one
//! temporary folder, on free ports.
//!
//! Every host's config names the same cluster, [`CLUSTER`], in `remote_servers` (every shard
//! with `internal_replication`, its replicas by TCP port), its own macros (`{shard}` `01`, `02`,
//! …; `{replica}` `r1`, `r2`, …), the ZooKeeper, `distributed_ddl`, and an interserver HTTP
//! port on 127.0.0.1 for replicas to fetch parts from each other: what
//! `deploy/clickhouse/cluster/README.md` asks of a production cluster. The hosts start in
//! parallel (about 3 s); [`LocalCluster::start_temp`] returns once every host answers and
//! reads ZooKeeper. Dropping the cluster stops the hosts (in parallel), then ZooKeeper, then
//! removes the folder.

use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::TestbedError;
use crate::local_server::{query_blocking, xml_escape, LocalServer, StartFailure, Topology};
use crate::zookeeper::{self, LocalZooKeeper};

/// The cluster's name in every host's `remote_servers`.
pub const CLUSTER: &str = "clickmatch_replicated";

/// How long `start` waits for every host to read ZooKeeper once it answers.
const ZOOKEEPER_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The ports of one host.
#[derive(Debug, Clone, Copy)]
struct HostPorts {
    http: u16,
    tcp: u16,
    interserver: u16,
}

/// A running cluster: ZooKeeper and `shards × replicas` ClickHouse servers.
pub struct LocalCluster {
    /// `hosts[shard][replica]`, both from 0. Declared first: the hosts stop before ZooKeeper.
    hosts: Vec<Vec<LocalServer>>,
    zookeeper: LocalZooKeeper,
    /// Declared last: removed once every process has stopped.
    tempdir: tempfile::TempDir,
}

impl LocalCluster {
    /// Whether a ClickHouse server binary, ZooKeeper and Java can be found.
    pub fn is_installed() -> bool {
        LocalServer::is_installed() && LocalZooKeeper::is_installed()
    }

    /// Starts ZooKeeper and `shards × replicas` servers in a fresh temporary folder on free
    /// ports, and waits until every host answers and reads ZooKeeper. Blocking.
    pub fn start_temp(shards: usize, replicas: usize) -> Result<LocalCluster, TestbedError> {
        assert!(shards > 0 && replicas > 0, "a cluster has hosts");
        let tempdir = tempfile::Builder::new()
            .prefix("clickmatch-cluster-")
            .tempdir()
            .map_err(|source| TestbedError::Io {
                path: std::env::temp_dir(),
                source,
            })?;
        let mut last_error = None;
        // Free ports can be taken by someone else between the check and the bind: retry.
        for attempt in 0..3 {
            let dir = tempdir.path().join(format!("attempt-{attempt}"));
            match start_in(&dir, shards, replicas) {
                Ok((zookeeper, hosts)) => {
                    let cluster = LocalCluster {
                        hosts,
                        zookeeper,
                        tempdir,
                    };
                    cluster.wait_zookeeper_ready(ZOOKEEPER_READY_TIMEOUT)?;
                    return Ok(cluster);
                }
                Err(failed) if failed.may_be_port_race => last_error = Some(failed.error),
                Err(failed) => return Err(failed.error),
            }
        }
        Err(last_error.expect("at least one attempt"))
    }

    /// The cluster's name in `remote_servers`: [`CLUSTER`].
    pub fn name(&self) -> &'static str {
        CLUSTER
    }

    pub fn shards(&self) -> usize {
        self.hosts.len()
    }

    pub fn replicas(&self) -> usize {
        self.hosts[0].len()
    }

    /// The host of `replica` (from 0) in `shard` (from 0).
    pub fn host(&self, shard: usize, replica: usize) -> &LocalServer {
        &self.hosts[shard][replica]
    }

    /// The same, to [`LocalServer::kill`] or [`LocalServer::restart`] it.
    pub fn host_mut(&mut self, shard: usize, replica: usize) -> &mut LocalServer {
        &mut self.hosts[shard][replica]
    }

    /// `http://127.0.0.1:<http_port>` of a host.
    pub fn url(&self, shard: usize, replica: usize) -> String {
        self.host(shard, replica).url()
    }

    pub fn zookeeper(&self) -> &LocalZooKeeper {
        &self.zookeeper
    }

    /// The folder holding every process's folder.
    pub fn dir(&self) -> &Path {
        self.tempdir.path()
    }

    /// Stops every host (in parallel), then ZooKeeper. Blocking; idempotent (drop does it
    /// too).
    pub fn stop(&mut self) -> Result<(), TestbedError> {
        let results: Vec<Result<(), TestbedError>> = std::thread::scope(|scope| {
            let stopping: Vec<_> = self
                .hosts
                .iter_mut()
                .flatten()
                .map(|host| scope.spawn(move || host.stop()))
                .collect();
            stopping
                .into_iter()
                .map(|h| h.join().expect("stop thread"))
                .collect()
        });
        let zookeeper = self.zookeeper.stop();
        results.into_iter().chain([zookeeper]).collect()
    }

    /// Waits until every running host reads ZooKeeper (`system.zookeeper`).
    fn wait_zookeeper_ready(&self, timeout: Duration) -> Result<(), TestbedError> {
        let deadline = Instant::now() + timeout;
        for host in self.hosts.iter().flatten() {
            loop {
                let sql = "SELECT count() FROM system.zookeeper WHERE path = '/'";
                let answer = query_blocking(&host.url(), sql, Duration::from_secs(5));
                match answer {
                    Ok((200, _)) => break,
                    _ if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(100))
                    }
                    Ok((status, body)) => {
                        return Err(TestbedError::LocalServer {
                            dir: host.dir().to_owned(),
                            message: format!(
                                "does not read ZooKeeper within {timeout:?}: {status} {}",
                                body.trim()
                            ),
                        })
                    }
                    Err(e) => {
                        return Err(TestbedError::LocalServer {
                            dir: host.dir().to_owned(),
                            message: format!("does not read ZooKeeper within {timeout:?}: {e}"),
                        })
                    }
                }
            }
        }
        Ok(())
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            tracing::warn!(error = %e, "could not stop the local cluster");
        }
    }
}

type Started = (LocalZooKeeper, Vec<Vec<LocalServer>>);

/// ZooKeeper and the hosts in `dir`; on any failure, whatever started is stopped (dropped).
fn start_in(dir: &Path, shards: usize, replicas: usize) -> Result<Started, StartFailure> {
    let (zookeeper_port, ports) =
        free_ports(shards, replicas).map_err(|source| TestbedError::Io {
            path: dir.to_owned(),
            source,
        })?;
    let zookeeper = LocalZooKeeper::start_inner(&dir.join("zookeeper"), zookeeper_port)?;
    let remote_servers = remote_servers(&ports);
    let started: Vec<Vec<Result<LocalServer, StartFailure>>> = std::thread::scope(|scope| {
        let starting: Vec<Vec<_>> = ports
            .iter()
            .enumerate()
            .map(|(shard, shard_ports)| {
                shard_ports
                    .iter()
                    .enumerate()
                    .map(|(replica, host)| {
                        let topology = Topology {
                            xml: host_config(
                                &remote_servers,
                                shard,
                                replica,
                                host.interserver,
                                zookeeper_port,
                            ),
                            more_ports: vec![host.interserver],
                        };
                        let dir = dir.join(format!("s{}r{}", shard + 1, replica + 1));
                        scope.spawn(move || {
                            LocalServer::start_host(&dir, host.http, host.tcp, topology)
                        })
                    })
                    .collect()
            })
            .collect();
        starting
            .into_iter()
            .map(|shard| {
                shard
                    .into_iter()
                    .map(|h| h.join().expect("start thread"))
                    .collect()
            })
            .collect()
    });
    let mut hosts = Vec::with_capacity(shards);
    let mut failure = None;
    for shard in started {
        let mut shard_hosts = Vec::with_capacity(replicas);
        for host in shard {
            match host {
                Ok(host) => shard_hosts.push(host),
                Err(failed) => {
                    failure.get_or_insert(failed);
                }
            }
        }
        hosts.push(shard_hosts);
    }
    match failure {
        // Dropping `hosts` and `zookeeper` stops what did start.
        Some(failed) => Err(failed),
        None => Ok((zookeeper, hosts)),
    }
}

/// A port for ZooKeeper and three per host, all different (held at once while chosen).
fn free_ports(shards: usize, replicas: usize) -> std::io::Result<(u16, Vec<Vec<HostPorts>>)> {
    let mut held = Vec::new();
    let mut next = || -> std::io::Result<u16> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let port = listener.local_addr()?.port();
        held.push(listener);
        Ok(port)
    };
    let zookeeper = next()?;
    let mut ports = Vec::with_capacity(shards);
    for _ in 0..shards {
        let mut shard = Vec::with_capacity(replicas);
        for _ in 0..replicas {
            shard.push(HostPorts {
                http: next()?,
                tcp: next()?,
                interserver: next()?,
            });
        }
        ports.push(shard);
    }
    Ok((zookeeper, ports))
}

/// The `remote_servers` element every host shares.
fn remote_servers(ports: &[Vec<HostPorts>]) -> String {
    let mut xml = format!("    <remote_servers>\n        <{CLUSTER}>\n");
    for shard in ports {
        xml.push_str("            <shard>\n                <internal_replication>true</internal_replication>\n");
        for host in shard {
            xml.push_str(&format!(
                "                <replica><host>127.0.0.1</host><port>{}</port></replica>\n",
                host.tcp
            ));
        }
        xml.push_str("            </shard>\n");
    }
    xml.push_str(&format!("        </{CLUSTER}>\n    </remote_servers>\n"));
    xml
}

/// One host's cluster configuration (see the module documentation).
fn host_config(
    remote_servers: &str,
    shard: usize,
    replica: usize,
    interserver_port: u16,
    zookeeper_port: u16,
) -> String {
    let session_timeout_ms = zookeeper::SESSION_TIMEOUT_MS;
    format!(
        r#"    <interserver_http_port>{interserver_port}</interserver_http_port>
    <interserver_http_host>127.0.0.1</interserver_http_host>
{remote_servers}    <macros>
        <shard>{shard:02}</shard>
        <replica>r{replica}</replica>
    </macros>
    <zookeeper>
        <node><host>127.0.0.1</host><port>{zookeeper_port}</port></node>
        <session_timeout_ms>{session_timeout_ms}</session_timeout_ms>
    </zookeeper>
    <distributed_ddl>
        <path>{ddl_path}</path>
    </distributed_ddl>
"#,
        shard = shard + 1,
        replica = replica + 1,
        ddl_path = xml_escape("/clickhouse/task_queue/ddl"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_host_names_every_replica_and_its_own_macros() {
        let host = |http, tcp, interserver| HostPorts {
            http,
            tcp,
            interserver,
        };
        let ports = vec![
            vec![host(1, 2, 3), host(4, 5, 6)],
            vec![host(7, 8, 9), host(10, 11, 12)],
        ];
        let shared = remote_servers(&ports);
        assert_eq!(shared.matches("<shard>").count(), 2);
        assert_eq!(
            shared.matches("<internal_replication>true").count(),
            2,
            "{shared}"
        );
        for tcp in [2, 5, 8, 11] {
            assert!(shared.contains(&format!("<port>{tcp}</port>")), "{shared}");
        }
        let config = host_config(&shared, 1, 0, 9, 2181);
        assert!(config.contains("<shard>02</shard>"), "{config}");
        assert!(config.contains("<replica>r1</replica>"), "{config}");
        assert!(config.contains("<interserver_http_port>9<"), "{config}");
        assert!(config.contains("<port>2181</port>"), "{config}");
        assert!(config.contains(&format!("<{CLUSTER}>")), "{config}");
    }
}
