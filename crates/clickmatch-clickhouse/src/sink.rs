//! The batch writer: one `INSERT` per non-empty table, returning only once ClickHouse has
//! acknowledged every one of them.

use std::borrow::Borrow;
use std::time::Duration;

use clickhouse::{Client, Row, RowWrite};
use clickmatch_core::clock::now_ms;
use clickmatch_core::records::{ClickRecord, Outcome};

use crate::error::ClickHouseError;
use crate::rows::{
    ClickRow, ClickRowRef, ConversionRow, ConversionRowRef, RecoveredRow, UnattributedRow,
    UnattributedRowRef,
};
use crate::settings::ClickHouseSettings;

/// Default limit on sending one chunk of rows to the socket.
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// Default limit on waiting for ClickHouse's answer after the last row.
pub const DEFAULT_END_TIMEOUT: Duration = Duration::from_secs(60);

type InsertResults = [Result<(), ClickHouseError>; 4];

/// Rows acknowledged by one [`ClickHouseSink::write`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    pub clicks: usize,
    pub conversions: usize,
    pub unattributed: usize,
    /// Decisions about reprocessed and uploaded records (`recovered`).
    pub recovered: usize,
}

impl WriteStats {
    pub fn total(&self) -> usize {
        self.clicks + self.conversions + self.unattributed + self.recovered
    }
}

/// Writes clicks and outcomes to `clicks`, `conversions` and `unattributed`, and the decisions
/// about reprocessed and uploaded records to `recovered` (an unattributed one there only: the
/// history in `unattributed` is what live postbacks first ended in). Cheap to clone.
///
/// Writes are at-least-once: when `write` fails, some tables may hold the batch already, and
/// the caller writes the whole batch again. The tables are `ReplacingMergeTree` keyed by
/// deterministic IDs, so the repeat replaces instead of duplicating (read with `FINAL`).
#[derive(Clone)]
pub struct ClickHouseSink {
    client: Client,
    validation: bool,
    send_timeout: Option<Duration>,
    end_timeout: Option<Duration>,
}

impl std::fmt::Debug for ClickHouseSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseSink")
            .field("database", &self.client.database())
            .field("send_timeout", &self.send_timeout)
            .field("end_timeout", &self.end_timeout)
            .finish()
    }
}

impl ClickHouseSink {
    /// Validates the settings (no I/O) and builds the client.
    pub fn new(settings: &ClickHouseSettings) -> Result<ClickHouseSink, ClickHouseError> {
        settings.validate()?;
        Ok(ClickHouseSink {
            client: settings.client(),
            validation: settings.validation,
            send_timeout: Some(DEFAULT_SEND_TIMEOUT),
            end_timeout: Some(DEFAULT_END_TIMEOUT),
        })
    }

    /// Overrides the insert timeouts (`None`: wait forever). An expired timeout is a
    /// retryable [`ClickHouseError::Timeout`].
    pub fn with_timeouts(mut self, send: Option<Duration>, end: Option<Duration>) -> Self {
        self.send_timeout = send;
        self.end_timeout = end;
        self
    }

    /// Inserts the batch: one `INSERT` per non-empty table, concurrently, and returns once
    /// ClickHouse has acknowledged all of them. `latency_ms` is measured against the clock now.
    pub async fn write(
        &self,
        clicks: &[ClickRecord],
        outcomes: &[Outcome],
    ) -> Result<WriteStats, ClickHouseError> {
        self.write_at(clicks, outcomes, now_ms()).await
    }

    /// [`write`](Self::write) with the insert time given, for deterministic `latency_ms`.
    pub async fn write_at(
        &self,
        clicks: &[ClickRecord],
        outcomes: &[Outcome],
        now_ms: u64,
    ) -> Result<WriteStats, ClickHouseError> {
        let mut conversions = Vec::new();
        let mut unattributed = Vec::new();
        let mut recovered = Vec::new();
        for outcome in outcomes {
            recovered.extend(RecoveredRow::of(outcome, now_ms));
            match outcome {
                Outcome::Attributed(c) => conversions.push(c),
                Outcome::Unattributed(u) if u.origin.is_postback() => unattributed.push(u),
                Outcome::Unattributed(_) => {}
            }
        }
        // Rows borrow from the batch: a row is built as it is serialized, no string copied.
        let (clicks_written, conversions_written, unattributed_written) = tokio::join!(
            self.insert::<ClickRowRef, _>("clicks", clicks.iter().map(ClickRowRef::new)),
            self.insert::<ConversionRowRef, _>(
                "conversions",
                conversions.iter().map(|c| ConversionRowRef::new(c, now_ms)),
            ),
            self.insert::<UnattributedRowRef, _>(
                "unattributed",
                unattributed
                    .iter()
                    .map(|u| UnattributedRowRef::new(u, now_ms)),
            ),
        );
        // `reprocess` and `upload --apply` read the decisions back from `recovered` and then
        // the rows they name: written last, once those rows are in (a failed batch is retried
        // whole).
        let all_in = [&clicks_written, &conversions_written, &unattributed_written]
            .iter()
            .all(|r| r.is_ok());
        let recovered_written = if all_in {
            self.insert::<RecoveredRow, _>("recovered", recovered.iter())
                .await
        } else {
            Ok(())
        };
        self.acknowledged(
            [
                clicks_written,
                conversions_written,
                unattributed_written,
                recovered_written,
            ],
            WriteStats {
                clicks: clicks.len(),
                conversions: conversions.len(),
                unattributed: unattributed.len(),
                recovered: recovered.len(),
            },
        )
    }

    /// Inserts rows already built.
    pub async fn write_rows(
        &self,
        clicks: &[ClickRow],
        conversions: &[ConversionRow],
        unattributed: &[UnattributedRow],
    ) -> Result<WriteStats, ClickHouseError> {
        let results = tokio::join!(
            self.insert::<ClickRow, _>("clicks", clicks.iter()),
            self.insert::<ConversionRow, _>("conversions", conversions.iter()),
            self.insert::<UnattributedRow, _>("unattributed", unattributed.iter()),
            async { Ok::<(), ClickHouseError>(()) },
        );
        self.acknowledged(
            results.into(),
            WriteStats {
                clicks: clicks.len(),
                conversions: conversions.len(),
                unattributed: unattributed.len(),
                recovered: 0,
            },
        )
    }

    /// The outcome of a batch's three inserts.
    fn acknowledged(
        &self,
        results: InsertResults,
        stats: WriteStats,
    ) -> Result<WriteStats, ClickHouseError> {
        // When several inserts failed, report one that no retry fixes, if any.
        let mut errors: Vec<ClickHouseError> =
            results.into_iter().filter_map(Result::err).collect();
        if !errors.is_empty() {
            let pick = errors.iter().position(|e| !e.is_retryable()).unwrap_or(0);
            let error = errors.swap_remove(pick);
            tracing::warn!(error = %error, retryable = error.is_retryable(), "clickhouse batch failed");
            return Err(error);
        }
        tracing::debug!(
            clicks = stats.clicks,
            conversions = stats.conversions,
            unattributed = stats.unattributed,
            recovered = stats.recovered,
            "clickhouse batch acknowledged"
        );
        Ok(stats)
    }

    /// What 18.16 answers to the `clickhouse` crate's schema validation, made readable.
    fn explain(&self, error: ClickHouseError) -> ClickHouseError {
        match error {
            ClickHouseError::Server {
                context,
                code: code @ Some(73 | 115),
                status,
                message,
            } if self.validation => ClickHouseError::Server {
                context,
                code,
                status,
                message: format!(
                    "{message} (this server is too old for `validation = true`: turn it off)"
                ),
            },
            other => other,
        }
    }

    /// [`insert_rows`] with this sink's timeouts, its errors explained.
    async fn insert<'a, T, R>(
        &self,
        table: &str,
        rows: impl ExactSizeIterator<Item = R> + Send,
    ) -> Result<(), ClickHouseError>
    where
        T: Row + RowWrite,
        R: Borrow<T::Value<'a>> + Send,
    {
        insert_rows::<T, R>(
            &self.client,
            table,
            rows,
            (self.send_timeout, self.end_timeout),
        )
        .await
        .map_err(|e| self.explain(e))
    }
}

/// One `INSERT` of `rows` into `table`, returning once ClickHouse acknowledged it (nothing when
/// there are none); `T` names the row type, `R` is a row of it or a reference to one, and
/// `timeouts` are the send and end timeouts of the `clickhouse` crate's insert.
pub(crate) async fn insert_rows<'a, T, R>(
    client: &Client,
    table: &str,
    rows: impl ExactSizeIterator<Item = R> + Send,
    timeouts: (Option<Duration>, Option<Duration>),
) -> Result<(), ClickHouseError>
where
    T: Row + RowWrite,
    R: Borrow<T::Value<'a>> + Send,
{
    if rows.len() == 0 {
        return Ok(());
    }
    let count = rows.len();
    let context = || format!("insert of {count} rows into {table}");
    let mut insert = client
        .insert::<T>(table)
        .await
        .map_err(|e| ClickHouseError::from_client(context(), e))?
        .with_timeouts(timeouts.0, timeouts.1);
    for row in rows {
        insert
            .write(row.borrow())
            .await
            .map_err(|e| ClickHouseError::from_client(context(), e))?;
    }
    insert
        .end()
        .await
        .map_err(|e| ClickHouseError::from_client(context(), e))
}
