//! Where ClickHouse is and how to talk to it.

use std::fmt;
use std::time::Duration;

use hyper_util::client::legacy::{connect::HttpConnector, Client as HyperClient};
use hyper_util::rt::TokioExecutor;

use crate::error::ClickHouseError;

/// Connection settings. `validate()` checks them without I/O; `client()` builds the client.
#[derive(Clone)]
pub struct ClickHouseSettings {
    /// HTTP endpoint, e.g. `http://127.0.0.1:8123`.
    pub url: String,
    /// Database holding clickmatch's tables; an identifier (`[A-Za-z_][A-Za-z0-9_]*`) because
    /// it is pasted into SQL.
    pub database: String,
    pub user: Option<String>,
    pub password: Option<String>,
    /// Let the `clickhouse` crate check row types against the table schema
    /// (`RowBinaryWithNamesAndTypes`). Needs ClickHouse 24.10 or so: must be `false` on 18.16.
    pub validation: bool,
    /// A cluster of the server's `remote_servers` (`[clickhouse] cluster`): `clickmatch
    /// migrate` then creates the cluster schema (replicated local tables `*_local` on every
    /// host, `Distributed` tables under the usual names, DDL `ON CLUSTER`), and inserts are
    /// synchronous through the `Distributed` tables. `None`: one server (the default).
    pub cluster: Option<String>,
}

impl ClickHouseSettings {
    /// Settings for `url` and `database`, no credentials, validation off (works everywhere).
    pub fn new(url: impl Into<String>, database: impl Into<String>) -> Self {
        ClickHouseSettings {
            url: url.into(),
            database: database.into(),
            user: None,
            password: None,
            validation: false,
            cluster: None,
        }
    }

    /// Checks the settings without any I/O.
    pub fn validate(&self) -> Result<(), ClickHouseError> {
        validate_identifier("database", &self.database)?;
        if let Some(cluster) = &self.cluster {
            validate_cluster_name(cluster)?;
        }
        // The `clickhouse` crate is built without TLS: an https URL would only fail later.
        let rest = self.url.strip_prefix("http://");
        match rest {
            Some(rest) if !rest.is_empty() && !rest.starts_with('/') => Ok(()),
            _ => Err(ClickHouseError::InvalidSetting {
                field: "url",
                reason: format!(
                    "expected http://host:port (TLS is not built in), got {:?}",
                    self.url
                ),
            }),
        }
    }

    /// A client for this server, with the database selected and validation as configured.
    pub fn client(&self) -> clickhouse::Client {
        let client = self.server_client().with_database(self.database.clone());
        if self.cluster.is_some() {
            // An insert into a `Distributed` table returns once every shard has its rows, not
            // when they are queued on the node that took them: the joiner commits Kafka
            // offsets after this acknowledgement. (Current releases call the setting
            // `distributed_foreground_insert` and keep this name as an alias.)
            client.with_setting("insert_distributed_sync", "1")
        } else {
            client
        }
    }

    /// A client with no database selected: for `CREATE DATABASE` and checks that must work
    /// before the database exists.
    pub(crate) fn server_client(&self) -> clickhouse::Client {
        let mut client = base_client()
            .with_url(self.url.clone())
            .with_validation(self.validation);
        if let Some(user) = &self.user {
            client = client.with_user(user.clone());
        }
        if let Some(password) = &self.password {
            client = client.with_password(password.clone());
        }
        client
    }
}

/// How long an idle connection stays in the pool: below the server's `keep_alive_timeout`
/// (3 s in current releases and in our local server), as in the `clickhouse` crate.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(2);
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);

/// The `clickhouse` crate's default HTTP client, plus `TCP_NODELAY`. An insert streams its rows
/// as a chunked body and ends with a 5-byte terminating chunk; with Nagle's algorithm on, that
/// chunk waits for the ACK of the data before it, which the server delays by up to 40 ms.
fn base_client() -> clickhouse::Client {
    clickhouse::Client::with_http_client(
        HyperClient::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .build(connector()),
    )
}

fn connector() -> HttpConnector {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_keepalive(Some(TCP_KEEPALIVE));
    connector
}

impl fmt::Debug for ClickHouseSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClickHouseSettings")
            .field("url", &self.url)
            .field("database", &self.database)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("validation", &self.validation)
            .field("cluster", &self.cluster)
            .finish()
    }
}

/// Checks that `value` is a plain SQL identifier: `[A-Za-z_][A-Za-z0-9_]*`, at most 64 bytes.
pub fn validate_identifier(field: &'static str, value: &str) -> Result<(), ClickHouseError> {
    clickmatch_config::names::sql_identifier(value)
        .map_err(|reason| ClickHouseError::InvalidSetting { field, reason })
}

/// Checks a cluster name (what `remote_servers` tags allow); it is pasted into SQL inside
/// single quotes. The configuration checks it with the same rule.
pub fn validate_cluster_name(value: &str) -> Result<(), ClickHouseError> {
    clickmatch_config::names::cluster_name(value).map_err(|reason| {
        ClickHouseError::InvalidSetting {
            field: "cluster",
            reason,
        }
    })
}

impl From<&clickmatch_config::ClickHouseConfig> for ClickHouseSettings {
    fn from(config: &clickmatch_config::ClickHouseConfig) -> Self {
        ClickHouseSettings {
            url: config.url.clone(),
            database: config.database.clone(),
            user: config.user.clone(),
            password: config.password.clone(),
            validation: config.validation,
            cluster: config.cluster.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connections_send_without_waiting_for_acks() {
        use tower::ServiceExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri = format!("http://{}", listener.local_addr().unwrap());
        let stream = connector().oneshot(uri.parse().unwrap()).await.unwrap();
        assert!(stream.inner().nodelay().unwrap(), "TCP_NODELAY is off");
    }

    #[test]
    fn database_names_must_be_identifiers() {
        for good in ["clickmatch", "_x", "cmtest_0a1b2c", "A9_"] {
            assert!(validate_identifier("database", good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "9lives",
            "click-match",
            "db; DROP TABLE x",
            "a.b",
            "`x`",
            "naïve",
            "x ",
            &"a".repeat(65),
        ] {
            let err = validate_identifier("database", bad).unwrap_err();
            assert!(!err.is_retryable());
            assert!(err.to_string().contains("database"), "{err}");
        }
    }

    #[test]
    fn settings_validate_url_and_hide_the_password() {
        let mut settings = ClickHouseSettings::new("http://127.0.0.1:8123", "clickmatch");
        settings.password = Some("hunter2".into());
        settings.validate().unwrap();
        let debug = format!("{settings:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("<redacted>"));

        for url in ["https://ch:8443", "127.0.0.1:8123", "http://", "http:///x"] {
            settings.url = url.into();
            assert!(settings.validate().is_err(), "{url}");
        }
        settings.url = "http://ch:8123".into();
        settings.database = "x y".into();
        assert!(settings.validate().is_err());
    }

    #[test]
    fn cluster_names_are_checked() {
        let mut settings = ClickHouseSettings::new("http://127.0.0.1:8123", "clickmatch");
        for good in ["prod", "prod-eu.1", "clickmatch_local"] {
            settings.cluster = Some(good.into());
            settings.validate().unwrap();
        }
        for bad in ["", "a'b", "x y", "c\\", &"c".repeat(65)] {
            settings.cluster = Some(bad.into());
            let err = settings.validate().unwrap_err();
            assert!(err.to_string().contains("cluster"), "{err}");
        }
    }
}
