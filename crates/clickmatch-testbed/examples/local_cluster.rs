//! Runs the cluster of the cluster test by hand: ZooKeeper and SHARDS × REPLICAS (default 2 × 2)
//! ClickHouse 18.16 servers on loopback, until Ctrl-C or SIGTERM; prints each host's URL and
//! TCP port, the cluster's name and the folder (removed on exit).
//!
//! ```sh
//! cargo run -p clickmatch-testbed --example local_cluster [-- SHARDS REPLICAS]
//! ```

use clickmatch_testbed::LocalCluster;
use tokio::signal::unix::{signal, SignalKind};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let shards = args.next().transpose()?.unwrap_or(2);
    let replicas = args.next().transpose()?.unwrap_or(2);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Signals first: a Ctrl-C while starting stops what started.
    let mut terminate = runtime.block_on(async { signal(SignalKind::terminate()) })?;
    let mut interrupt = runtime.block_on(async { signal(SignalKind::interrupt()) })?;
    let mut cluster = LocalCluster::start_temp(shards, replicas)?;
    println!("cluster {} in {}", cluster.name(), cluster.dir().display());
    println!("zookeeper 127.0.0.1:{}", cluster.zookeeper().port());
    for shard in 0..shards {
        for replica in 0..replicas {
            let host = cluster.host(shard, replica);
            println!(
                "shard {} replica {}: {} (tcp {}, folder {})",
                shard + 1,
                replica + 1,
                host.url(),
                host.tcp_port(),
                host.dir().display()
            );
        }
    }
    println!("running until Ctrl-C");
    runtime.block_on(async {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    });
    cluster.stop()?;
    Ok(())
}
