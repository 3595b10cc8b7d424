//! Test helper: a ClickHouse to test against and a database of the test's own.
//!
//! The server is `$CLICKMATCH_TEST_CLICKHOUSE_URL` when set; otherwise a [`LocalServer`] in a
//! temporary folder on free ports, shared by the tests of one binary that run at the same time
//! and stopped when the last of them finishes. `$CLICKMATCH_TEST_CLICKHOUSE_ENGINE` (`server`,
//! the default, or `chdb`) picks the engine of the servers tests start themselves.

#![allow(dead_code)]

use std::sync::{Arc, Mutex, Weak};

use clickmatch_clickhouse::cluster::{ClusterLayout, Layout};
use clickmatch_clickhouse::ClickHouseSettings;
use clickmatch_testbed::local_server::{Engine, LOCAL_CLUSTER};
use clickmatch_testbed::LocalServer;

pub const URL_ENV: &str = "CLICKMATCH_TEST_CLICKHOUSE_URL";
pub const ENGINE_ENV: &str = "CLICKMATCH_TEST_CLICKHOUSE_ENGINE";

/// The engine of the servers tests start: `$CLICKMATCH_TEST_CLICKHOUSE_ENGINE`, else `server`.
pub fn engine() -> Engine {
    match std::env::var(ENGINE_ENV) {
        Ok(name) if !name.is_empty() => {
            name.parse().unwrap_or_else(|e| panic!("{ENGINE_ENV}: {e}"))
        }
        _ => Engine::Server,
    }
}

static SHARED: Mutex<Weak<LocalServer>> = Mutex::new(Weak::new());

/// Whether the server at `settings.url` has the testbed's cluster of one.
pub async fn has_local_cluster(settings: &ClickHouseSettings) -> bool {
    let server = ClickHouseSettings::new(settings.url.clone(), "system");
    let n: u64 = server
        .client()
        .query("SELECT count() FROM system.clusters WHERE cluster = ?")
        .bind(LOCAL_CLUSTER)
        .fetch_one()
        .await
        .unwrap();
    n > 0
}

/// The cluster layout on the testbed's cluster of one ([`LOCAL_CLUSTER`]); `replicated` as in
/// [`ClusterLayout`].
pub fn local_cluster(replicated: bool) -> Layout {
    Layout::Cluster(ClusterLayout {
        name: LOCAL_CLUSTER.to_owned(),
        replicated,
    })
}

/// A database `cmtest_<random hex>` on the test server, dropped with this value.
pub struct TestDb {
    pub settings: ClickHouseSettings,
    dropped: bool,
    // Declared last: the database is dropped before the server may stop.
    _server: Option<Arc<LocalServer>>,
}

impl TestDb {
    /// A fresh database name on the test server (the database itself is not created).
    pub async fn new() -> TestDb {
        let (url, server) = match std::env::var(URL_ENV) {
            Ok(url) if !url.is_empty() => (url, None),
            _ => {
                let server = tokio::task::spawn_blocking(shared_server)
                    .await
                    .expect("server start task");
                (server.url(), Some(server))
            }
        };
        let database = format!("cmtest_{:016x}", rand::random::<u64>());
        TestDb {
            settings: ClickHouseSettings::new(url, database),
            dropped: false,
            _server: server,
        }
    }

    /// A fresh database with every migration applied.
    pub async fn migrated() -> TestDb {
        let db = TestDb::new().await;
        clickmatch_clickhouse::migrate(&db.settings)
            .await
            .expect("migrate");
        db
    }

    /// A database migrated in the cluster layout on the test server's cluster of one
    /// ([`LOCAL_CLUSTER`]): `Distributed` tables over `_local` ones. `None` when the server has
    /// no such cluster (a `$CLICKMATCH_TEST_CLICKHOUSE_URL` server configured otherwise).
    pub async fn migrated_as_cluster() -> Option<TestDb> {
        let mut db = TestDb::new().await;
        if !has_local_cluster(&db.settings).await {
            return None;
        }
        db.settings.cluster = Some(LOCAL_CLUSTER.to_owned());
        clickmatch_clickhouse::migrate_with(&db.settings, &local_cluster(false))
            .await
            .expect("migrate the cluster layout");
        Some(db)
    }

    pub fn client(&self) -> clickhouse::Client {
        self.settings.client()
    }

    /// Drops the database now (else `Drop` does it).
    pub async fn drop_database(self) {
        let server = self.drop_database_keep_server().await;
        // If this was the server's last user, it stops now. Stop it off the runtime thread, so
        // that the runtime can close the client's idle keep-alive connections meanwhile: the
        // server waits for them before it exits.
        tokio::task::spawn_blocking(move || drop(server))
            .await
            .expect("server stop task");
    }

    /// Drops the database now and hands back the local server (if any), for a test that
    /// still needs it.
    pub async fn drop_database_keep_server(mut self) -> Option<Arc<LocalServer>> {
        drop_database(&self.settings).await;
        self.dropped = true;
        self._server.take()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        // Also runs when a test panicked: clean up on a runtime of our own.
        let settings = self.settings.clone();
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(drop_database(&settings));
        })
        .join();
    }
}

async fn drop_database(settings: &ClickHouseSettings) {
    let sql = format!("DROP DATABASE IF EXISTS {}", settings.database);
    let server = ClickHouseSettings::new(settings.url.clone(), "default");
    if let Err(e) = server.client().query(&sql).execute().await {
        eprintln!("could not drop test database {}: {e}", settings.database);
    }
}

fn shared_server() -> Arc<LocalServer> {
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(server) = shared.upgrade() {
        return server;
    }
    let engine = engine();
    assert!(
        engine != Engine::Server || LocalServer::is_installed(),
        "no clickhouse-server installed: install it or set {URL_ENV}"
    );
    let server = Arc::new(
        LocalServer::start_temp_with(engine)
            .unwrap_or_else(|e| panic!("start a local ClickHouse ({engine} engine): {e}")),
    );
    *shared = Arc::downgrade(&server);
    server
}
