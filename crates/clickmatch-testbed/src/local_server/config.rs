//! The configuration files of a `clickhouse-server` of our own.

use std::fs;
use std::path::{Path, PathBuf};

use super::{create_dir, Topology, ERR_LOG, LOCAL_CLUSTER, SYSTEM_USERS_XML};
use crate::error::TestbedError;

pub(super) fn write_config(
    dir: &Path,
    http_port: u16,
    tcp_port: u16,
    topology: Option<&Topology>,
) -> Result<PathBuf, TestbedError> {
    for sub in ["data", "tmp", "user_files", "format_schemas", "log"] {
        create_dir(&dir.join(sub))?;
    }
    let users = if Path::new(SYSTEM_USERS_XML).is_file() {
        PathBuf::from(SYSTEM_USERS_XML)
    } else {
        let path = dir.join("users.xml");
        fs::write(&path, USERS_XML).map_err(|source| TestbedError::Io {
            path: path.clone(),
            source,
        })?;
        path
    };
    let p = |sub: &str| xml_escape(&format!("{}/", dir.join(sub).display()));
    let log = |file: &str| xml_escape(&dir.join("log").join(file).display().to_string());
    // No interserver_http_port: the server opens it only when configured (a cluster's hosts get
    // one from their topology).
    // keep_alive_timeout 3 (current ClickHouse's default; 18.16 has 10): on SIGTERM the server
    // waits for idle keep-alive connections to close, and the `clickhouse` crate lets them idle
    // for 2 s, so shutdown takes at most ~3 s instead of ~10 s.
    let config = format!(
        r#"<?xml version="1.0"?>
<yandex>
    <logger>
        <level>information</level>
        <log>{log}</log>
        <errorlog>{errorlog}</errorlog>
        <size>100M</size>
        <count>3</count>
        <console>0</console>
    </logger>
    <http_port>{http_port}</http_port>
    <tcp_port>{tcp_port}</tcp_port>
    <listen_host>127.0.0.1</listen_host>
    <keep_alive_timeout>3</keep_alive_timeout>
    <path>{data}</path>
    <tmp_path>{tmp}</tmp_path>
    <user_files_path>{user_files}</user_files_path>
    <format_schema_path>{format_schemas}</format_schema_path>
    <users_config>{users}</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <mark_cache_size>67108864</mark_cache_size>
    <uncompressed_cache_size>67108864</uncompressed_cache_size>
{cluster}</yandex>
"#,
        log = log("clickhouse-server.log"),
        errorlog = log(ERR_LOG),
        data = p("data"),
        tmp = p("tmp"),
        user_files = p("user_files"),
        format_schemas = p("format_schemas"),
        users = xml_escape(&users.display().to_string()),
        cluster = match topology {
            Some(topology) => topology.xml.clone(),
            None => cluster_config(tcp_port),
        },
    );
    let path = dir.join("config.xml");
    fs::write(&path, config).map_err(|source| TestbedError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// [`LOCAL_CLUSTER`] (this server alone) and the macros, for either engine's config.
pub(crate) fn cluster_config(tcp_port: u16) -> String {
    format!(
        r#"    <remote_servers>
        <{LOCAL_CLUSTER}>
            <shard>
                <internal_replication>true</internal_replication>
                <replica><host>127.0.0.1</host><port>{tcp_port}</port></replica>
            </shard>
        </{LOCAL_CLUSTER}>
    </remote_servers>
    <macros>
        <shard>01</shard>
        <replica>local</replica>
    </macros>
"#
    )
}

/// Used only where the system has no `/etc/clickhouse-server/users.xml`: user `default`, no
/// password, local connections only.
const USERS_XML: &str = r#"<?xml version="1.0"?>
<yandex>
    <profiles><default></default></profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>::1</ip><ip>127.0.0.1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas><default></default></quotas>
</yandex>
"#;

pub(crate) fn xml_escape(value: &str) -> String {
    value
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
