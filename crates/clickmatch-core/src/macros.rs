//! Literal-macro and placeholder detection for raw postback values.
//!
//! STUB: a helper replaces this file with the full dialect coverage of DESIGN.md.

/// What a raw parameter value is, before it is read as a click ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueShape {
    /// Empty, or a placeholder word (`undefined`, `null`, `none`, `nil`): counts as no click ID.
    Missing,
    /// A macro the network did not substitute (`{click_id}`, `#s2#`, `%7Bsub1%7D`, ...).
    LiteralMacro,
    /// Anything else: a value to read as a click ID.
    Value,
}

/// Classifies a raw (already once URL-decoded) parameter value.
pub fn shape(raw: &str) -> ValueShape {
    let value = raw.trim();
    if value.is_empty() || ["undefined", "null", "none", "nil"].contains(&value.to_ascii_lowercase().as_str()) {
        return ValueShape::Missing;
    }
    if value.starts_with('{') && value.ends_with('}') {
        return ValueShape::LiteralMacro;
    }
    ValueShape::Value
}
