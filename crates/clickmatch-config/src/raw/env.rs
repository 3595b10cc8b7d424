//! `CLICKMATCH_<SECTION>_<KEY>` environment overrides, written into the parsed TOML before it
//! is read into a [`RawConfig`](super::RawConfig).

use std::collections::BTreeMap;

pub(crate) const ENV_PREFIX: &str = "CLICKMATCH_";

/// Sections whose scalar keys the environment may override.
const ENV_SECTIONS: &[&str] = &[
    "account",
    "ingest",
    "enrichment",
    "kafka",
    "clickhouse",
    "joiner",
    "outbound",
];

/// Writes `CLICKMATCH_SECTION_KEY=value` into `table[section][key]`. Values that parse as a TOML
/// number or boolean keep that type; everything else is a string.
pub(super) fn apply_env(
    table: &mut toml::Table,
    env: &BTreeMap<String, String>,
) -> Result<(), (String, String)> {
    for (name, value) in env {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let rest = rest.to_ascii_lowercase();
        let Some(section) = ENV_SECTIONS
            .iter()
            .find(|s| rest.starts_with(&format!("{s}_")))
        else {
            continue;
        };
        let key = &rest[section.len() + 1..];
        let typed = match value.parse::<i64>() {
            Ok(n) => toml::Value::Integer(n),
            Err(_) => match value.as_str() {
                "true" => toml::Value::Boolean(true),
                "false" => toml::Value::Boolean(false),
                _ => toml::Value::String(value.clone()),
            },
        };
        let entry = table
            .entry(section.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let Some(section_table) = entry.as_table_mut() else {
            return Err((
                section.to_string(),
                format!("is not a table (set by {name})"),
            ));
        };
        // Secrets and other string fields stay strings even when they look numeric.
        let typed = match section_table.get(key) {
            Some(toml::Value::String(_)) => toml::Value::String(value.clone()),
            _ => typed,
        };
        section_table.insert(key.to_string(), typed);
    }
    Ok(())
}
