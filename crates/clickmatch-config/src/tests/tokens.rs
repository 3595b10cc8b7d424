use super::{env, MINIMAL};
use crate::*;

#[test]
fn admin_token_is_a_secret_of_at_least_16_characters() {
    let config = Config::from_toml(MINIMAL, "x.toml", &BTreeMap::new()).unwrap();
    assert!(config.ingest.admin_token.is_none());
    let config = Config::from_toml(
        &format!("{MINIMAL}\n[ingest]\nadmin_token = \"admin-token-0123456789\"\n"),
        "x.toml",
        &BTreeMap::new(),
    )
    .unwrap();
    let token = config.ingest.admin_token.as_ref().unwrap();
    assert!(token.matches("admin-token-0123456789"));
    assert!(!token.matches("admin-token-012345678"));
    assert!(!format!("{config:?}").contains("admin-token-0123456789"));
    let config = Config::from_toml(
        MINIMAL,
        "x.toml",
        &env(&[("CLICKMATCH_INGEST_ADMIN_TOKEN", "from-the-environment")]),
    )
    .unwrap();
    assert!(config
        .ingest
        .admin_token
        .unwrap()
        .matches("from-the-environment"));
    let error = Config::from_toml(
        &format!("{MINIMAL}\n[ingest]\nadmin_token = \"short\"\n"),
        "x.toml",
        &BTreeMap::new(),
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("key `ingest.admin_token`"), "{error}");
}

#[test]
fn report_token_is_a_secret_of_its_own() {
    let config = Config::from_toml(MINIMAL, "x.toml", &BTreeMap::new()).unwrap();
    assert!(config.ingest.report_token.is_none());
    let config = Config::from_toml(
        MINIMAL,
        "x.toml",
        &env(&[("CLICKMATCH_INGEST_REPORT_TOKEN", "report-token-0123456789")]),
    )
    .unwrap();
    let token = config.ingest.report_token.as_ref().unwrap();
    assert!(token.matches("report-token-0123456789"));
    assert!(!format!("{config:?}").contains("report-token-0123456789"));
    for (toml, message) in [
        ("report_token = \"short\"\n", "at least 16 characters"),
        (
            "admin_token = \"same-token-0123456789\"\nreport_token = \"same-token-0123456789\"\n",
            "must differ from admin_token",
        ),
    ] {
        let error = Config::from_toml(
            &format!("{MINIMAL}\n[ingest]\n{toml}"),
            "x.toml",
            &BTreeMap::new(),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("key `ingest.report_token`"), "{error}");
        assert!(error.contains(message), "{error}");
    }
}
