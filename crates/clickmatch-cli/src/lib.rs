//! The pieces of the `clickmatch` binary that tests reuse: assembling a pipeline from a
//! configuration, the demo traffic and the report.

pub mod carry;
pub mod demo;
pub mod dev_report;
pub mod money;
pub mod pipeline;
pub mod postback_url;
pub mod reconcile;
pub mod recovery;
pub mod reload;
pub mod report;
pub mod test_conversion;
