//! A local Kafka-protocol broker from librdkafka's mock cluster, for `clickmatch dev`, tests and
//! `clickmatch broker`. It speaks the real protocol over TCP, so clients use it through ordinary
//! bootstrap servers.
//!
//! It holds every partition in memory and keeps at most 5 MiB or 100,000 message sets of each
//! (librdkafka's fixed limits), dropping the oldest beyond that: fine for tests and demos, not
//! for holding an attribution window's clicks.
//!
//! The mock cluster is not `Send`; it lives on a thread of its own and is driven by commands.

use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread;

use rdkafka::mocking::MockCluster;

use crate::error::TestbedError;

enum Command {
    Down,
    Up,
    Stop,
}

/// A running mock cluster with clickmatch's topics created.
pub struct LocalBroker {
    bootstrap_servers: String,
    commands: mpsc::SyncSender<Command>,
    replies: mpsc::Receiver<Result<(), String>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl LocalBroker {
    /// Starts one mock broker and creates `topics` with `partitions` partitions each.
    pub fn start(topics: &[&str], partitions: i32) -> Result<LocalBroker, TestbedError> {
        let topics: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
        let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<String, String>>(1);
        let (command_tx, command_rx) = mpsc::sync_channel::<Command>(4);
        let (reply_tx, reply_rx) = mpsc::sync_channel::<Result<(), String>>(4);
        let thread = thread::Builder::new()
            .name("mock-broker".into())
            .spawn(move || {
                let cluster = match MockCluster::new(1) {
                    Ok(cluster) => cluster,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                for topic in &topics {
                    if let Err(e) = cluster.create_topic(topic, partitions, 1) {
                        let _ = ready_tx.send(Err(format!("create topic {topic}: {e}")));
                        return;
                    }
                }
                let _ = ready_tx.send(Ok(cluster.bootstrap_servers()));
                for command in command_rx {
                    let result = match command {
                        Command::Down => cluster.broker_down(1),
                        Command::Up => cluster.broker_up(1),
                        Command::Stop => break,
                    };
                    let _ = reply_tx.send(result.map_err(|e| e.to_string()));
                }
                drop(cluster);
            })?;
        let bootstrap_servers = ready_rx
            .recv()
            .map_err(|_| TestbedError::Broker("mock broker thread died".into()))?
            .map_err(TestbedError::Broker)?;
        Ok(LocalBroker {
            bootstrap_servers,
            commands: command_tx,
            replies: reply_rx,
            thread: Some(thread),
        })
    }

    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap_servers
    }

    /// The address of the (single) broker.
    pub fn broker_addr(&self) -> Result<SocketAddr, TestbedError> {
        let first = self.bootstrap_servers.split(',').next().unwrap_or_default();
        first
            .parse()
            .map_err(|_| TestbedError::Broker(format!("unexpected bootstrap servers {first:?}")))
    }

    fn command(&self, command: Command) -> Result<(), TestbedError> {
        self.commands
            .send(command)
            .map_err(|_| TestbedError::Broker("mock broker thread died".into()))?;
        self.replies
            .recv()
            .map_err(|_| TestbedError::Broker("mock broker thread died".into()))?
            .map_err(TestbedError::Broker)
    }

    /// Takes the broker down (connections are refused) for outage tests.
    pub fn down(&self) -> Result<(), TestbedError> {
        self.command(Command::Down)
    }

    pub fn up(&self) -> Result<(), TestbedError> {
        self.command(Command::Up)
    }
}

impl Drop for LocalBroker {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Forwards TCP connections from `listen` to `target`, so that the mock broker (which binds a
/// random port) can be bootstrapped from a fixed one. Clients learn the broker's own address
/// from metadata and then connect to it directly.
pub async fn forward(listen: SocketAddr, target: SocketAddr) -> Result<(), TestbedError> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    loop {
        let (mut inbound, _) = listener.accept().await?;
        tokio::spawn(async move {
            match tokio::net::TcpStream::connect(target).await {
                Ok(mut outbound) => {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "broker forwarder cannot reach the mock broker")
                }
            }
        });
    }
}

/// Serves a standalone broker (`clickmatch broker`): forwards `listen` to the mock broker until
/// `shutdown` resolves. On Unix, `SIGUSR1` takes the broker down (connections are closed and
/// refused, as when a real broker dies) and `SIGUSR2` brings it back with its topics, offsets
/// and groups intact: outage tests drive a broker in another process with `kill -USR1 <pid>`.
pub async fn serve_standalone(
    broker: &LocalBroker,
    listen: SocketAddr,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), TestbedError> {
    let target = broker.broker_addr()?;
    let forwarder = forward(listen, target);
    tokio::pin!(forwarder);
    tokio::pin!(shutdown);
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut down = signal(SignalKind::user_defined1())?;
        let mut up = signal(SignalKind::user_defined2())?;
        loop {
            tokio::select! {
                result = &mut forwarder => return result,
                _ = &mut shutdown => return Ok(()),
                _ = down.recv() => {
                    broker.down()?;
                    tracing::warn!("broker down (SIGUSR1)");
                    eprintln!("broker: down");
                }
                _ = up.recv() => {
                    broker.up()?;
                    tracing::warn!("broker up (SIGUSR2)");
                    eprintln!("broker: up");
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        tokio::select! {
            result = &mut forwarder => result,
            _ = &mut shutdown => Ok(()),
        }
    }
}
