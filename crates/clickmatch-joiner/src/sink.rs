//! Where the joiner's rows go, as a trait so that the loop is tested with a fake.

use std::future::Future;

use clickmatch_clickhouse::{ClickHouseError, ClickHouseSink};
use clickmatch_core::records::{ClickRecord, Outcome};

/// A store that acknowledges a batch of rows, or says why not.
pub trait Sink: Send + Sync + 'static {
    type Error: std::error::Error + Send + 'static;

    fn write(
        &self,
        clicks: &[ClickRecord],
        outcomes: &[Outcome],
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Whether the same write may succeed later, as opposed to failing until someone changes
    /// the schema or the data (the joiner retries both; the metric tells them apart).
    fn is_retryable(error: &Self::Error) -> bool;
}

impl Sink for ClickHouseSink {
    type Error = ClickHouseError;

    async fn write(&self, clicks: &[ClickRecord], outcomes: &[Outcome]) -> Result<(), Self::Error> {
        ClickHouseSink::write(self, clicks, outcomes)
            .await
            .map(|_stats| ())
    }

    fn is_retryable(error: &Self::Error) -> bool {
        error.is_retryable()
    }
}
