//! The local ClickHouse ([`clickmatch_testbed::LocalServer`]) of the engine of
//! `$CLICKMATCH_TEST_CLICKHOUSE_ENGINE` (`scripts/test`: 18.16, then 26.9).

mod common;

use clickmatch_clickhouse::ClickHouseSettings;
use clickmatch_testbed::local_server::{chdb, Engine};
use clickmatch_testbed::LocalServer;

/// The engine of `$CLICKMATCH_TEST_CLICKHOUSE_ENGINE` (`server` by default).
#[test]
fn local_server_starts_answers_and_stops() {
    let engine = common::engine();
    if engine == Engine::Server && !LocalServer::is_installed() {
        eprintln!("skipped: no clickhouse-server installed");
        return;
    }
    let mut server = LocalServer::start_temp_with(engine).unwrap();
    assert_eq!(server.engine(), engine);
    let url = server.url();
    let dir = server.dir().to_owned();
    assert!(dir.join("config.xml").is_file());
    assert!(server.pid().is_some());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    assert!(runtime.block_on(clickmatch_testbed::ping(&url)));
    if engine == Engine::Chdb {
        // The pinned chdb-core is ClickHouse <major>.<minor>.
        let version: String = runtime
            .block_on(
                ClickHouseSettings::new(url.clone(), "default")
                    .client()
                    .query("SELECT version()")
                    .fetch_one(),
            )
            .unwrap();
        let pinned = chdb::version().rsplit_once('.').unwrap().0;
        assert!(
            version.starts_with(&format!("{pinned}.")),
            "{version} for chdb-core {pinned}"
        );
    }

    // A second server on the same ports is refused up front, with a readable error.
    let tmp = tempfile::tempdir().unwrap();
    let err = LocalServer::start_with(engine, tmp.path(), server.http_port(), server.tcp_port())
        .unwrap_err();
    assert!(err.to_string().contains("already in use"), "{err}");

    server.stop().unwrap();
    assert!(server.pid().is_none());
    assert!(!runtime.block_on(clickmatch_testbed::ping(&url)));
    drop(server);
    assert!(!dir.exists(), "temporary folder removed");
}
