//! Pure attribution logic for clickmatch: click IDs, postback classification and the join.
//!
//! Nothing here does I/O or spawns tasks, and no decision reads a clock: time comes in as
//! arguments, so every decision can be tested alone and replayed deterministically ([`clock`]
//! is the one clock read, for the I/O crates).

pub mod backoff;
pub mod classify;
pub mod click_id;
pub mod clock;
pub mod join;
pub mod macros;
pub mod model;
pub mod money;
pub mod params;
pub mod presets;
pub mod reason;
pub mod records;
pub mod recovery;
pub mod salvage;
pub mod subs;
pub mod template;

pub use click_id::{ClickId, ClickIdError, ClickIdSigner, CLICK_ID_LEN};
pub use reason::Reason;
