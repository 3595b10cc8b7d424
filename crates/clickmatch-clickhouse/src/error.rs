//! Typed errors of the ClickHouse adapter and the one place that decides which are retried.

/// ClickHouse exception codes that no retry can fix: the statement, the schema or the data is
/// wrong, so the same request fails the same way again.
///
/// The first six are the classic ones (Vector's sink also refuses to retry 53 and 117); the
/// rest are their close relatives: a row that does not parse or is cut short (27, 33, 70), an
/// unknown identifier (47), a format or setting the server does not know (73, 115: what 18.16
/// answers to `validation = true`), and authentication or permission failures (164, 192, 193,
/// 497, 516) that need a configuration change, not a retry.
pub const NON_RETRYABLE_CODES: &[u32] = &[
    16,  // NO_SUCH_COLUMN_IN_TABLE
    27,  // CANNOT_PARSE_INPUT_ASSERTION_FAILED
    33,  // CANNOT_READ_ALL_DATA (RowBinary row shorter than the columns)
    47,  // UNKNOWN_IDENTIFIER
    53,  // TYPE_MISMATCH
    60,  // UNKNOWN_TABLE
    62,  // SYNTAX_ERROR
    70,  // CANNOT_CONVERT_TYPE
    73,  // UNKNOWN_FORMAT (e.g. RowBinaryWithNamesAndTypes on 18.16)
    81,  // UNKNOWN_DATABASE
    115, // UNKNOWN_SETTING
    117, // INCORRECT_DATA
    164, // READONLY
    192, // UNKNOWN_USER
    193, // WRONG_PASSWORD
    497, // ACCESS_DENIED
    516, // AUTHENTICATION_FAILED
];

/// Errors at this crate's boundary.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClickHouseError {
    /// A configuration value that would be unsafe or meaningless (checked without I/O).
    #[error("invalid clickhouse setting `{field}`: {reason}")]
    InvalidSetting { field: &'static str, reason: String },

    /// The server answered with an exception (`Code: N`) or an HTTP error status.
    #[error("clickhouse rejected {context}: {message}")]
    Server {
        context: String,
        /// The exception code, when the answer carried one.
        code: Option<u32>,
        /// The HTTP status, when the answer had no body to say more.
        status: Option<u16>,
        message: String,
    },

    /// The server could not be reached or the connection broke.
    #[error("clickhouse unreachable during {context}: {source}")]
    Network {
        context: String,
        #[source]
        source: clickhouse::error::Error,
    },

    /// A send or response timeout expired.
    #[error("clickhouse timed out during {context}")]
    Timeout { context: String },

    /// Anything else the client reported: serialization, a malformed answer, …
    #[error("clickhouse client error during {context}: {source}")]
    Client {
        context: String,
        #[source]
        source: clickhouse::error::Error,
    },

    /// The database lacks a table or column the row types write, or has it with another type.
    #[error("clickhouse schema mismatch: {0}")]
    Schema(String),
}

impl ClickHouseError {
    /// Wraps a `clickhouse` crate error, naming what was being done.
    pub fn from_client(context: impl Into<String>, error: clickhouse::error::Error) -> Self {
        use clickhouse::error::Error as E;
        let context = context.into();
        match error {
            E::Network(_) => ClickHouseError::Network {
                context,
                source: error,
            },
            E::TimedOut => ClickHouseError::Timeout { context },
            E::BadResponse(message) => {
                let code = exception_code(&message);
                let status = if code.is_none() {
                    http_status(&message)
                } else {
                    None
                };
                ClickHouseError::Server {
                    context,
                    code,
                    status,
                    message,
                }
            }
            other => ClickHouseError::Client {
                context,
                source: other,
            },
        }
    }

    /// The ClickHouse exception code, if the server sent one.
    pub fn code(&self) -> Option<u32> {
        match self {
            ClickHouseError::Server { code, .. } => *code,
            _ => None,
        }
    }

    /// Whether the same request may succeed later (the caller backs off and retries it), as
    /// opposed to failing the same way until someone changes the schema, the data or the
    /// configuration. This is the only place that decides.
    pub fn is_retryable(&self) -> bool {
        match self {
            ClickHouseError::Network { .. } | ClickHouseError::Timeout { .. } => true,
            ClickHouseError::Server { code, status, .. } => match (code, status) {
                (Some(code), _) => !NON_RETRYABLE_CODES.contains(code),
                // No exception code: a bare HTTP status, usually from a proxy or a restarting
                // server. 5xx, 408 and 429 are transient; other 4xx are not.
                (None, Some(status)) => *status >= 500 || *status == 408 || *status == 429,
                (None, None) => true,
            },
            // Serialization and answer-format errors repeat with the same rows.
            ClickHouseError::Client { .. }
            | ClickHouseError::InvalidSetting { .. }
            | ClickHouseError::Schema(_) => false,
        }
    }
}

/// `Code: 60, e.displayText() = …` (18.16) or `Code: 60. DB::Exception: …` (current) → 60.
pub(crate) fn exception_code(message: &str) -> Option<u32> {
    let start = message.find("Code: ")? + "Code: ".len();
    let digits: String = message[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// `503 Service Unavailable` (what the client reports for an empty error body) → 503.
fn http_status(message: &str) -> Option<u16> {
    let head = message.split_whitespace().next()?;
    if head.len() == 3 {
        head.parse().ok().filter(|s| (100..600).contains(s))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(message: &str) -> ClickHouseError {
        ClickHouseError::from_client(
            "test",
            clickhouse::error::Error::BadResponse(message.into()),
        )
    }

    #[test]
    fn codes_are_read_from_both_dialects() {
        let old = "Code: 60, e.displayText() = DB::Exception: Table default.nosuch doesn't exist., e.what() = DB::Exception";
        let new = "Code: 81. DB::Exception: Database x does not exist. (UNKNOWN_DATABASE) (version 24.8.1.1)";
        assert_eq!(server(old).code(), Some(60));
        assert_eq!(server(new).code(), Some(81));
        assert!(!server(old).is_retryable());
        assert!(!server(new).is_retryable());
        assert!(!server("Code: 117. DB::Exception: bad data").is_retryable());
        let validation_on_18_16 = "Code: 115, e.displayText() = DB::Exception: Unknown setting describe_include_subcolumns, e.what() = DB::Exception";
        assert!(!server(validation_on_18_16).is_retryable());
    }

    #[test]
    fn transient_server_errors_are_retried() {
        // 252 TOO_MANY_PARTS, 241 MEMORY_LIMIT_EXCEEDED, 159 TIMEOUT_EXCEEDED.
        for code in [252, 241, 159, 202] {
            assert!(server(&format!("Code: {code}. DB::Exception: x")).is_retryable());
        }
        assert!(server("503 Service Unavailable").is_retryable());
        assert!(server("502 Bad Gateway").is_retryable());
        assert!(!server("404 Not Found").is_retryable());
        assert_eq!(server("404 Not Found").code(), None);
        let timeout = ClickHouseError::from_client("insert", clickhouse::error::Error::TimedOut);
        assert!(timeout.is_retryable());
        let serde = ClickHouseError::from_client(
            "insert",
            clickhouse::error::Error::Custom("bad value".into()),
        );
        assert!(!serde.is_retryable());
    }
}
