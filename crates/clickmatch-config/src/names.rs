//! The names a configuration gives that end up in SQL, URLs and metric labels, checked once
//! here: the ClickHouse adapter uses the same rules, so a name that loads also works.

/// Campaign, offer and route IDs: they appear in URLs, SQL strings and metric labels.
pub fn config_id(value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{value:?} must be 1-64 characters of letters, digits, '_' or '-'"
        ))
    }
}

/// A name pasted into SQL unquoted (the database): `[A-Za-z_][A-Za-z0-9_]*`, at most 64.
pub fn sql_identifier(value: &str) -> Result<(), String> {
    let mut chars = value.chars();
    let ok = match chars.next() {
        Some(first) => {
            (first.is_ascii_alphabetic() || first == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        }
        None => false,
    };
    if ok && value.len() <= 64 {
        Ok(())
    } else {
        Err(format!(
            "{value:?} is not an identifier ([A-Za-z_][A-Za-z0-9_]*, at most 64 characters)"
        ))
    }
}

/// A cluster of the servers' `remote_servers`, pasted into SQL inside single quotes: letters,
/// digits, `_`, `-` and `.`, at most 64.
pub fn cluster_name(value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{value:?} is not a cluster name (letters, digits, _ - ., at most 64 characters)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_name_with_a_dash_is_not_an_identifier() {
        assert!(sql_identifier("clickmatch_2").is_ok());
        assert!(sql_identifier("click-match").is_err());
        assert!(sql_identifier("2db").is_err());
        assert!(config_id("click-match").is_ok());
        assert!(cluster_name("prod.eu-1").is_ok());
        assert!(cluster_name("a'b").is_err());
    }
}
