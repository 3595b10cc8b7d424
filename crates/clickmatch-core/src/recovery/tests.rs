use super::*;
use crate::classify::tests::account;
use crate::model::{Route, Secret, DAY_MS};

const T0: u64 = 1_764_000_000_000;

fn click(account: &Account, time_ms: u64) -> ClickRecord {
    ClickRecord {
        v: RECORD_VERSION,
        click_id: account.signer.mint(time_ms, time_ms).to_string(),
        time_ms,
        campaign_id: "demo".into(),
        offer_id: "1".into(),
        source: String::new(),
        subs: vec![],
        ip: String::new(),
        user_agent: String::new(),
        country: String::new(),
        enrichment: Default::default(),
        is_test: false,
        foreign: false,
        cost: None,
    }
}

fn stored(route: &str, reason: Reason, params: &[(&str, &str)]) -> StoredPostback {
    let params: Vec<(&str, &str)> = params.to_vec();
    StoredPostback {
        postback_id: "pb-9".into(),
        received_ms: T0 + 1_000,
        route: route.into(),
        reason,
        raw_params: serde_json::to_string(&params).unwrap(),
        remote_ip: "192.0.2.1".into(),
    }
}

fn reason(expected: &Expected) -> Option<Reason> {
    expected.reason_and_hint().0
}

#[test]
fn a_postback_to_a_route_configured_since_is_checked_and_attributed() {
    let mut account = account();
    let c = click(&account, T0);
    let raw = stored(
        "sale2",
        Reason::UnknownRoute,
        &[("cid", &c.click_id), ("token", "s3"), ("payout", "4")],
    );
    // Still not configured: unknown_route again, keyed by its postback ID.
    let record = reprocess_record(&account, &raw).unwrap();
    assert_eq!(record.verdict, IngestVerdict::UnknownRoute);
    assert_eq!(record.key, "pb-9");
    assert_eq!(
        reason(&predict(&account, &record, Some(&c), |_| None)),
        Some(Reason::UnknownRoute)
    );

    let mut route = Route::new("sale2");
    route.token = Some(Secret::new("s3"));
    account.routes.insert("sale2".into(), route);
    let record = reprocess_record(&account, &raw).unwrap();
    assert_eq!(record.verdict, IngestVerdict::Accepted);
    assert_eq!(record.origin, Origin::Reprocess);
    assert_eq!(
        (record.postback_id.as_str(), record.received_ms),
        ("pb-9", T0 + 1_000)
    );
    assert_eq!(
        record.key, c.click_id,
        "keyed by its click under the new configuration"
    );
    assert!(
        record.params.contains(&("token".into(), "***".into())),
        "the token is redacted before publishing: {:?}",
        record.params
    );
    let Expected::Attributed(conversion) = predict(&account, &record, Some(&c), |_| None) else {
        panic!("not attributed")
    };
    assert_eq!(conversion.origin, Origin::Reprocess);
    assert_eq!(conversion.version, T0 + 1_000, "the original receive time");

    // A wrong token sent to the route before it existed is refused now.
    let wrong = stored(
        "sale2",
        Reason::UnknownRoute,
        &[("cid", &c.click_id), ("token", "x")],
    );
    let record = reprocess_record(&account, &wrong).unwrap();
    assert_eq!(record.verdict, IngestVerdict::Unauthorized);
}

#[test]
fn a_reprocessed_postback_is_never_trusted_more_than_at_ingest() {
    let mut account = account();
    let c = click(&account, T0);
    // `lead` has a token: the one refused stays refused, whatever the record says now.
    let refused = stored(
        "lead",
        Reason::Unauthorized,
        &[("cid", &c.click_id), ("token", "***")],
    );
    let record = reprocess_record(&account, &refused).unwrap();
    assert_eq!(record.verdict, IngestVerdict::Unauthorized);
    // Admitted at ingest, but the route now allows other IPs only.
    let lead = account.routes.get_mut("lead").unwrap();
    lead.allow_ips = vec!["10.0.0.0/8".parse().unwrap()];
    let admitted = stored("lead", Reason::UnknownClickId, &[("cid", &c.click_id)]);
    let record = reprocess_record(&account, &admitted).unwrap();
    assert_eq!(record.verdict, IngestVerdict::Unauthorized);
    // Without a token, an IP refused before and allowed now is admitted.
    let lead = account.routes.get_mut("lead").unwrap();
    lead.token = None;
    lead.allow_ips = vec!["192.0.2.0/24".parse().unwrap()];
    let record = reprocess_record(&account, &refused).unwrap();
    assert_eq!(record.verdict, IngestVerdict::Accepted);
}

#[test]
fn a_foreign_id_is_attributed_once_the_route_accepts_foreign_ids() {
    let mut account = account();
    let foreign = ClickRecord {
        click_id: "vlm-ABC123".into(),
        foreign: true,
        ..click(&account, T0)
    };
    let raw = stored("global", Reason::MalformedClickId, &[("cid", "vlm-ABC123")]);
    let record = reprocess_record(&account, &raw).unwrap();
    assert_eq!(record.route, None);
    assert_eq!(
        reason(&predict(&account, &record, Some(&foreign), |_| None)),
        Some(Reason::MalformedClickId)
    );
    account.global_route.accept_foreign_ids = true;
    let record = reprocess_record(&account, &raw).unwrap();
    assert_eq!(record.key, "vlm-ABC123");
    let expected = predict(&account, &record, Some(&foreign), |_| None);
    assert_eq!(expected.outcome(), "attributed");
    // Its click was never registered: what the grace period ends in.
    assert_eq!(
        reason(&predict(&account, &record, None, |_| None)),
        Some(Reason::UnknownClickId)
    );
}

#[test]
fn the_window_is_measured_from_the_original_receive_time() {
    let account = account();
    let c = click(&account, T0);
    let mut raw = stored("global", Reason::UnknownClickId, &[("cid", &c.click_id)]);
    let record = reprocess_record(&account, &raw).unwrap();
    assert_eq!(
        predict(&account, &record, Some(&c), |_| None).outcome(),
        "attributed"
    );
    raw.received_ms = T0 + 31 * DAY_MS;
    let record = reprocess_record(&account, &raw).unwrap();
    assert_eq!(
        reason(&predict(&account, &record, Some(&c), |_| None)),
        Some(Reason::Expired)
    );
}

#[test]
fn stored_conversions_make_it_unchanged_a_duplicate_or_a_status_update() {
    let account = account();
    let c = click(&account, T0);
    let record = reprocess_record(
        &account,
        &stored("global", Reason::UnknownClickId, &[("cid", &c.click_id)]),
    )
    .unwrap();
    let stored_as = |postback_id: &str, status: &str| {
        let conversion = StoredConversion {
            postback_id: postback_id.into(),
            status: status.into(),
        };
        move |_: &str| Some(conversion)
    };
    let unchanged = predict(&account, &record, Some(&c), stored_as("pb-9", "approved"));
    assert_eq!(unchanged.outcome(), "unchanged");
    let duplicate = predict(&account, &record, Some(&c), stored_as("pb-1", "approved"));
    assert_eq!(reason(&duplicate), Some(Reason::Duplicate));
    let update = predict(&account, &record, Some(&c), stored_as("pb-1", "pending"));
    assert_eq!(update.outcome(), "status_update");
}

#[test]
fn unreadable_raw_params_name_the_postback() {
    let account = account();
    let mut raw = stored("global", Reason::MissingClickId, &[]);
    raw.raw_params = "{oops".into();
    let error = reprocess_record(&account, &raw).unwrap_err();
    assert!(error.to_string().contains("pb-9"), "{error}");
}

#[test]
fn an_uploaded_line_is_a_postback_under_the_routes_names_with_a_stable_id() {
    let mut account = account();
    account.global_route.params.click_id = vec!["aff_sub".into(), "cid".into()];
    let c = click(&account, T0);
    let line = UploadedConversion {
        click_id: c.click_id.clone(),
        payout: "12.50".into(),
        currency: "EUR".into(),
        txid: "T-1".into(),
        event: String::new(),
        status: "approved".into(),
        time_ms: T0 + 5_000,
    };
    let record = upload_record(&account, None, &line).unwrap();
    assert_eq!(record.origin, Origin::Upload);
    assert_eq!(record.params[0], ("aff_sub".into(), c.click_id.clone()));
    assert!(
        !record.params.iter().any(|(name, _)| name == "event"),
        "empty values are absent"
    );
    assert_eq!(record.key, c.click_id);
    assert_eq!(
        upload_record(&account, Some("global"), &line).unwrap(),
        record
    );
    let other = UploadedConversion {
        payout: "12.51".into(),
        ..line.clone()
    };
    assert_ne!(
        upload_record(&account, None, &other).unwrap().postback_id,
        record.postback_id
    );

    let Expected::Attributed(conversion) = predict(&account, &record, Some(&c), |_| None) else {
        panic!("not attributed")
    };
    assert_eq!(conversion.payout.to_string(), "12.50");
    assert_eq!(
        (conversion.currency.as_str(), conversion.txid.as_str()),
        ("EUR", "T-1")
    );
    assert_eq!(conversion.conversion_time_ms, T0 + 5_000);
    assert_eq!(conversion.origin, Origin::Upload);

    assert_eq!(
        upload_record(&account, Some("nope"), &line),
        Err(RecoveryError::UnknownRoute("nope".into()))
    );
}
