use super::*;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 6, 12, 30, 0).unwrap()
}

fn check(pairs: &[(&str, &str)]) -> Result<ReportRequest, ReportError> {
    ReportParams::from_pairs(pairs.iter().copied())?.check(now())
}

fn refused(pairs: &[(&str, &str)]) -> ReportError {
    check(pairs).expect_err("should be refused")
}

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

#[test]
fn defaults_group_by_campaign_over_the_last_seven_days_in_utc() {
    let request = check(&[]).unwrap();
    assert_eq!(request.group_by, vec![Dimension::Campaign]);
    assert_eq!(request.tz, Tz::UTC);
    assert_eq!(request.from, utc("2026-11-30T00:00:00Z"));
    assert_eq!(request.to, now());
    assert_eq!(request.sort, Sort::default());
    assert_eq!(request.limit, DEFAULT_LIMIT);
}

#[test]
fn every_dimension_parses_by_its_name() {
    for d in Dimension::ALL {
        assert_eq!(Dimension::parse(d.name()), Some(d));
    }
    assert_eq!(Dimension::parse("sub10"), Some(Dimension::Sub(10)));
    assert_eq!(Dimension::parse("sub11"), None);
    assert_eq!(Dimension::parse("Country"), None);
    let request = check(&[("group_by", "campaign, sub1,country,hour")]).unwrap();
    assert_eq!(
        request.group_by,
        vec![
            Dimension::Campaign,
            Dimension::Sub(1),
            Dimension::Country,
            Dimension::Hour
        ]
    );
}

#[test]
fn days_are_in_the_reports_zone_and_to_includes_its_day() {
    let request = check(&[
        ("from", "2026-12-01"),
        ("to", "2026-12-02"),
        ("tz", "Asia/Kolkata"),
    ])
    .unwrap();
    assert_eq!(request.from, utc("2026-11-30T18:30:00Z"));
    assert_eq!(request.to, utc("2026-12-02T18:30:00Z"));
    let request = check(&[
        ("from", "2026-12-01T10:00:00+01:00"),
        ("to", "2026-12-01T12:00:00Z"),
        ("tz", "Europe/Berlin"),
    ])
    .unwrap();
    assert_eq!(request.from, utc("2026-12-01T09:00:00Z"));
    assert_eq!(request.to, utc("2026-12-01T12:00:00Z"));
    // The default range starts at local midnight six days ago.
    let request = check(&[("tz", "Asia/Kathmandu")]).unwrap();
    assert_eq!(request.from, utc("2026-11-29T18:15:00Z"));
}

#[test]
fn a_zone_that_skips_midnight_starts_the_day_at_its_first_instant() {
    // America/Santiago moved its clocks from 00:00 to 01:00 on 2022-09-11.
    let request = check(&[
        ("from", "2022-09-11"),
        ("to", "2022-09-11"),
        ("tz", "America/Santiago"),
    ])
    .unwrap();
    assert_eq!(request.from, utc("2022-09-11T04:00:00Z"));
}

#[test]
fn filters_collect_values_per_dimension() {
    let request = check(&[
        ("country", "DE"),
        ("sub1", "zone 1"),
        ("country", "AT"),
        ("status", ""),
    ])
    .unwrap();
    assert_eq!(
        request.filters,
        vec![
            Filter {
                dimension: Dimension::Country,
                values: vec!["DE".into(), "AT".into()]
            },
            Filter {
                dimension: Dimension::Sub(1),
                values: vec!["zone 1".into()]
            },
            Filter {
                dimension: Dimension::Status,
                values: vec![String::new()]
            },
        ]
    );
    assert!(request.uses(Dimension::Status));
    assert!(!request.uses(Dimension::Os));
}

#[test]
fn sort_takes_a_figure_or_a_grouped_dimension() {
    let request = check(&[("group_by", "country"), ("sort", "-roi")]).unwrap();
    assert_eq!(
        request.sort,
        Sort {
            column: Column::Figure(Figure::Roi),
            descending: true
        }
    );
    let request = check(&[("group_by", "country"), ("sort", "country")]).unwrap();
    assert_eq!(request.sort.param(), "country");
    assert_eq!(
        refused(&[("group_by", "country"), ("sort", "os")]).parameter,
        "sort"
    );
}

#[test]
fn the_request_round_trips_through_its_parameters() {
    let request = check(&[
        ("group_by", "offer,hour"),
        ("tz", "Asia/Kolkata"),
        ("from", "2026-12-01"),
        ("to", "2026-12-03"),
        ("country", "DE"),
        ("country", "IN"),
        ("sort", "hour"),
        ("limit", "5"),
    ])
    .unwrap();
    assert_eq!(request.params().check(now()).unwrap(), request);
}

/// Parameters, the parameter named, a part of the message.
type Refusal = (
    &'static [(&'static str, &'static str)],
    &'static str,
    &'static str,
);

#[test]
fn bad_input_names_its_parameter() {
    let cases: &[Refusal] = &[
        (
            &[("group_by", "campaign,planet")],
            "group_by",
            "\"planet\" is not a dimension",
        ),
        (&[("group_by", "campaign,campaign")], "group_by", "twice"),
        (&[("group_by", "campaign,")], "group_by", "not a dimension"),
        (
            &[(
                "group_by",
                "campaign,source,offer,network,route,event,status",
            )],
            "group_by",
            "at most 6",
        ),
        (&[("tz", "Mars/Olympus")], "tz", "not an IANA time zone"),
        (&[("tz", "+05:30")], "tz", "not an IANA time zone"),
        (&[("from", "2026-13-01")], "from", "neither a day"),
        (&[("to", "yesterday")], "to", "neither a day"),
        (
            &[("from", "2026-12-05"), ("to", "2026-12-01")],
            "from",
            "not before",
        ),
        (
            &[("from", "2026-01-01"), ("to", "2026-12-01")],
            "to",
            "at most 93 days",
        ),
        (&[("limit", "0")], "limit", "from 1 to 10000"),
        (&[("limit", "many")], "limit", "from 1 to 10000"),
        (&[("sort", "-popularity")], "sort", "not a column"),
        (&[("contry", "DE")], "contry", "unknown parameter"),
        (&[("hour", "10")], "hour", "not filters"),
        (&[("tz", "UTC"), ("tz", "UTC")], "tz", "more than once"),
    ];
    for (pairs, parameter, message) in cases {
        let error = refused(pairs);
        assert_eq!(error.parameter, *parameter, "{pairs:?}: {error}");
        assert!(error.message.contains(message), "{pairs:?}: {error}");
    }
}

#[test]
fn hostile_values_are_refused_by_name_or_kept_as_literal_filter_values() {
    let long = "x".repeat(10_000);
    for hostile in [
        "country;DROP TABLE clicks",
        "' OR 1=1 --",
        "country) UNION ALL SELECT * FROM system.users --",
        "страна",
        "country\u{0}",
        long.as_str(),
    ] {
        assert_eq!(refused(&[("group_by", hostile)]).parameter, "group_by");
        assert_eq!(refused(&[("sort", hostile)]).parameter, "sort");
        assert_eq!(refused(&[("tz", hostile)]).parameter, "tz");
        assert_eq!(refused(&[("from", hostile)]).parameter, "from");
        assert_eq!(refused(&[("limit", hostile)]).parameter, "limit");
        // As a parameter name it is an unknown parameter, named (cut to 64 characters).
        let error = refused(&[(hostile, "1")]);
        assert!(hostile.starts_with(error.parameter.trim_end_matches('…')));
        assert!(error.to_string().len() < 1_000, "the answer stays small");
    }
    // As a filter value: a literal to compare with, or too long.
    for value in ["' OR 1=1 --", "a\\'b", "ü🙂", "x');DROP TABLE clicks;--"] {
        let request = check(&[("sub1", value)]).unwrap();
        assert_eq!(request.filters[0].values, vec![value.to_string()]);
    }
    let error = refused(&[("sub1", long.as_str())]);
    assert_eq!(error.parameter, "sub1");
    assert!(error.message.contains("longer than 500"));
}
