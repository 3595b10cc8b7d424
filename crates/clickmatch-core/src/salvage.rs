//! Recovering a signed click ID from a mangled postback.
//!
//! STUB: a helper replaces this file with the full salvage of DESIGN.md ("Salvage").

use crate::click_id::{ClickId, ClickIdSigner};

/// A click ID recovered from a mangled postback, with the hint code naming what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repaired {
    pub id: ClickId,
    /// Hint code (see [`crate::reason::hint_text`]).
    pub hint: &'static str,
}

/// Looks for exactly one verifying click ID inside `value` (the click-ID parameter's value),
/// then in the other parameters and keys of `params`. `click_id_names` are the route's names
/// and aliases for the click-ID parameter (lowercase).
pub fn salvage(
    _value: Option<&str>,
    _params: &[(String, String)],
    _click_id_names: &[String],
    _signer: &ClickIdSigner,
) -> Option<Repaired> {
    None
}
