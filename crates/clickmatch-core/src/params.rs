//! Postback parameters from the query string and the body (form or JSON), in arrival order.
//!
//! Nothing is dropped that was valid: repeats are kept, names keep their case (matching is
//! case-insensitive later), and a body that is neither form nor JSON is kept whole under
//! [`RAW_BODY_PARAM`] so a fixed configuration can still read it.

/// Name under which an unreadable body is kept.
pub const RAW_BODY_PARAM: &str = "_body";

/// Limits that keep one request from costing unbounded memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamLimits {
    pub max_params: usize,
    pub max_name_len: usize,
    pub max_value_len: usize,
}

impl Default for ParamLimits {
    fn default() -> Self {
        ParamLimits {
            max_params: 200,
            max_name_len: 256,
            max_value_len: 8 * 1024,
        }
    }
}

/// Why a request's parameters were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    #[error("too many parameters (more than {0})")]
    TooMany(usize),
    #[error("parameter name longer than {0} bytes")]
    NameTooLong(usize),
    #[error("value of parameter {0:?} longer than {1} bytes")]
    ValueTooLong(String, usize),
}

/// Parses `a=1&b=2` (percent- and plus-decoded; invalid UTF-8 replaced, not refused).
pub fn parse_query(
    query: &str,
    limits: &ParamLimits,
) -> Result<Vec<(String, String)>, ParamsError> {
    let mut out = Vec::new();
    push_form(&mut out, query.as_bytes(), limits)?;
    Ok(out)
}

fn push_form(
    out: &mut Vec<(String, String)>,
    bytes: &[u8],
    limits: &ParamLimits,
) -> Result<(), ParamsError> {
    for (name, value) in form_urlencoded::parse(bytes) {
        if name.is_empty() && value.is_empty() {
            continue;
        }
        push(out, name.into_owned(), value.into_owned(), limits)?;
    }
    Ok(())
}

fn push(
    out: &mut Vec<(String, String)>,
    name: String,
    value: String,
    limits: &ParamLimits,
) -> Result<(), ParamsError> {
    if out.len() >= limits.max_params {
        return Err(ParamsError::TooMany(limits.max_params));
    }
    if name.len() > limits.max_name_len {
        return Err(ParamsError::NameTooLong(limits.max_name_len));
    }
    if value.len() > limits.max_value_len {
        return Err(ParamsError::ValueTooLong(name, limits.max_value_len));
    }
    out.push((name, value));
    Ok(())
}

/// Appends the body's parameters to `out`. `content_type` picks the reader; JSON object values
/// become strings (null as empty, nested values as JSON text).
pub fn append_body(
    out: &mut Vec<(String, String)>,
    content_type: Option<&str>,
    body: &[u8],
    limits: &ParamLimits,
) -> Result<(), ParamsError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let mime = content_type
        .and_then(|ct| ct.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let looks_json = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if mime == "application/json" || mime.ends_with("+json") || (mime.is_empty() && looks_json) {
        return append_json(out, body, limits);
    }
    let form_like =
        mime == "application/x-www-form-urlencoded" || mime.is_empty() || mime == "text/plain";
    if form_like && std::str::from_utf8(body).is_ok_and(|s| s.contains('=')) {
        return push_form(out, body, limits);
    }
    push(
        out,
        RAW_BODY_PARAM.to_string(),
        String::from_utf8_lossy(body).into_owned(),
        limits,
    )
}

fn append_json(
    out: &mut Vec<(String, String)>,
    body: &[u8],
    limits: &ParamLimits,
) -> Result<(), ParamsError> {
    // A body that is not a JSON object is kept whole rather than refused: the query may still
    // carry a valid postback, and a fixed configuration can re-read the body later.
    let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(body)
    else {
        return push(
            out,
            RAW_BODY_PARAM.to_string(),
            String::from_utf8_lossy(body).into_owned(),
            limits,
        );
    };
    for (name, value) in map {
        let text = match value {
            serde_json::Value::String(s) => s,
            serde_json::Value::Null => String::new(),
            // Numbers keep their exact text; nested values are kept as JSON.
            other => other.to_string(),
        };
        push(out, name, text, limits)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn query_keeps_order_repeats_and_case() {
        let got = parse_query(
            "cid=a%20b&CID=x&payout=1.5&cid=a+b&empty=",
            &ParamLimits::default(),
        )
        .unwrap();
        assert_eq!(
            got,
            pairs(&[
                ("cid", "a b"),
                ("CID", "x"),
                ("payout", "1.5"),
                ("cid", "a b"),
                ("empty", "")
            ])
        );
    }

    #[test]
    fn bodies_form_json_and_raw() {
        let limits = ParamLimits::default();
        let mut out = Vec::new();
        append_body(
            &mut out,
            Some("application/x-www-form-urlencoded"),
            b"a=1&b=2",
            &limits,
        )
        .unwrap();
        append_body(
            &mut out,
            Some("application/json; charset=utf-8"),
            br#"{"c":"x","d":2.5,"e":true,"f":null}"#,
            &limits,
        )
        .unwrap();
        append_body(
            &mut out,
            Some("application/octet-stream"),
            b"\x00binary",
            &limits,
        )
        .unwrap();
        assert_eq!(
            out,
            pairs(&[
                ("a", "1"),
                ("b", "2"),
                ("c", "x"),
                ("d", "2.5"),
                ("e", "true"),
                ("f", ""),
                ("_body", "\u{0}binary")
            ])
        );
        let mut kept = Vec::new();
        append_body(
            &mut kept,
            Some("application/json"),
            br#"{"a":{"b":1}}"#,
            &limits,
        )
        .unwrap();
        append_body(&mut kept, Some("application/json"), b"[1", &limits).unwrap();
        assert_eq!(kept, pairs(&[("a", r#"{"b":1}"#), ("_body", "[1")]));
    }

    #[test]
    fn limits_are_enforced() {
        let limits = ParamLimits {
            max_params: 2,
            max_name_len: 4,
            max_value_len: 4,
        };
        assert_eq!(
            parse_query("a=1&b=2&c=3", &limits),
            Err(ParamsError::TooMany(2))
        );
        assert_eq!(
            parse_query("abcde=1", &limits),
            Err(ParamsError::NameTooLong(4))
        );
        assert!(matches!(
            parse_query("a=12345", &limits),
            Err(ParamsError::ValueTooLong(..))
        ));
    }

    proptest! {
        #[test]
        fn arbitrary_input_never_panics(query in "\\PC{0,200}", body in proptest::collection::vec(any::<u8>(), 0..200), ct in "\\PC{0,30}") {
            let limits = ParamLimits::default();
            if let Ok(mut out) = parse_query(&query, &limits) {
                let _ = append_body(&mut out, Some(&ct), &body, &limits);
            }
        }

        #[test]
        fn encoded_pairs_round_trip(name in "[a-z_]{1,10}", value in "\\PC{0,40}") {
            let query: String = form_urlencoded::Serializer::new(String::new()).append_pair(&name, &value).finish();
            let got = parse_query(&query, &ParamLimits::default()).unwrap();
            if value.is_empty() {
                prop_assert_eq!(got, vec![(name, String::new())]);
            } else {
                prop_assert_eq!(got, vec![(name, value)]);
            }
        }
    }
}
