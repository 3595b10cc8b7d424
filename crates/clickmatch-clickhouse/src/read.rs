//! What the read-only queries (debugger, recovery, reconcile) share: their error context and
//! long ID lists sent in chunks, so that no query passes ClickHouse's `max_query_size` (256 KiB).

use std::future::Future;

use crate::error::ClickHouseError;

/// IDs per query: 1,000 IDs of up to 128 characters stay far below `max_query_size`.
pub(crate) const CHUNK: usize = 1_000;

/// Maps a client error to one that names what was being read and for whom
/// (`reading the click for the debugger`).
pub(crate) fn read_error<'a>(
    what: &'a str,
    purpose: &'a str,
) -> impl Fn(clickhouse::error::Error) -> ClickHouseError + 'a {
    move |e| ClickHouseError::from_client(format!("reading {what} for {purpose}"), e)
}

/// Runs `query` on each chunk of `values` in turn, at most `size` values each, and gathers
/// the rows.
pub(crate) async fn in_chunks<'v, V, T, F, Fut>(
    values: &'v [V],
    size: usize,
    mut query: F,
) -> Result<Vec<T>, ClickHouseError>
where
    F: FnMut(&'v [V]) -> Fut,
    Fut: Future<Output = Result<Vec<T>, ClickHouseError>>,
{
    let mut rows = Vec::new();
    for chunk in values.chunks(size) {
        rows.extend(query(chunk).await?);
    }
    Ok(rows)
}
