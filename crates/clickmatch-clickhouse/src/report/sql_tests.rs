use super::*;
use crate::report::request::ReportParams;
use chrono::TimeZone;

/// One server with `slices` threads.
fn server(slices: u32) -> Target {
    Target {
        slices,
        distributed: false,
    }
}

fn request(pairs: &[(&str, &str)]) -> ReportRequest {
    let now = chrono::Utc.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).unwrap();
    ReportParams::from_pairs(pairs.iter().copied())
        .unwrap()
        .check(now)
        .unwrap()
}

#[test]
fn user_values_are_bound_never_spliced() {
    let hostile = "x' OR 1=1 --; DROP TABLE clicks";
    let request = request(&[
        ("group_by", "campaign,sub1,hour"),
        ("tz", "Asia/Kolkata"),
        ("country", hostile),
        ("sub1", hostile),
    ]);
    let sql = report_sql(
        &request,
        &[("o1".into(), "tune".into())],
        "USD",
        Grouping::Hashed,
        server(2),
        ConversionSubs::FromClicks(None),
    );
    assert!(!sql.text.contains("DROP"), "{}", sql.text);
    assert!(!sql.text.contains("Kolkata"), "{}", sql.text);
    assert_eq!(
        sql.text.matches('?').count(),
        sql.args.len(),
        "one value per placeholder"
    );
    assert!(sql.args.contains(&Arg::Strs(vec![hostile.to_string()])));
    assert!(sql.args.contains(&Arg::Str("Asia/Kolkata".into())));
}

#[test]
fn conversions_join_their_clicks_only_when_grouped_by_a_click_dimension() {
    let sql = |pairs: &[(&str, &str)]| {
        report_sql(
            &request(pairs),
            &[],
            "USD",
            Grouping::Values,
            server(1),
            ConversionSubs::FromClicks(None),
        )
        .text
    };
    let plain = sql(&[("group_by", "campaign,country")]);
    assert!(!plain.contains("JOIN (SELECT click_id"), "{plain}");
    assert!(
        !plain.contains("click_id IN (SELECT click_id FROM clicks"),
        "{plain}"
    );
    let joined = sql(&[("group_by", "campaign,sub1")]);
    assert!(
        joined.contains("JOIN (SELECT click_id, sub1 AS click_sub1 FROM"),
        "{joined}"
    );
    // Keys a fact lacks: a constant on one server, a column through `Distributed` tables.
    assert!(joined.contains("'' AS k0"), "{joined}");
    let request = request(&[("group_by", "campaign,sub1")]);
    let target = Target {
        slices: 1,
        distributed: true,
    };
    let distributed = report_sql(
        &request,
        &[],
        "USD",
        Grouping::Values,
        target,
        ConversionSubs::FromClicks(None),
    )
    .text;
    assert!(!distributed.contains("'' AS k"), "{distributed}");
    assert!(
        distributed.contains("materialize('') AS k0"),
        "{distributed}"
    );
    // Sets read from tables are built once and sent to the shards.
    assert!(
        distributed.contains("cityHash64(click_id) GLOBAL IN (SELECT cityHash64(click_id)"),
        "{distributed}"
    );
    assert!(!joined.contains("GLOBAL"), "{joined}");
    // Filtered only: narrowed to the clicks the filter selects, no join.
    let narrowed = sql(&[("group_by", "campaign"), ("sub2", "zone-7")]);
    assert!(!narrowed.contains("JOIN (SELECT click_id"), "{narrowed}");
    assert!(
        narrowed.contains(
            "click_id IN (SELECT click_id FROM clicks WHERE 1 AND sub2 IN \
             (SELECT arrayJoin(CAST(? AS Array(String)))))"
        ),
        "{narrowed}"
    );
    // The click's OS and browser are on the conversion row: grouped or filtered by them,
    // conversions read neither the clicks nor a join.
    let by_os = sql(&[("group_by", "os,browser"), ("os", "iOS")]);
    assert!(!by_os.contains("JOIN (SELECT click_id"), "{by_os}");
    assert!(!by_os.contains("FROM clicks WHERE"), "{by_os}");
}

#[test]
fn the_clicks_of_conversions_are_read_from_their_span_only() {
    let span = ClickSpan {
        first: 1_764_547_200,
        last: 1_765_000_000,
    };
    for pairs in [
        &[("group_by", "campaign,sub1")][..],
        &[("group_by", "campaign"), ("sub2", "zone-7")][..],
    ] {
        let request = request(pairs);
        let sql = report_sql(
            &request,
            &[],
            "USD",
            Grouping::Values,
            server(1),
            ConversionSubs::FromClicks(Some(span)),
        );
        assert!(
            sql.text.contains(
                "FROM clicks WHERE 1 AND click_time >= toDateTime(?) AND click_time <= \
                 toDateTime(?)"
            ) || sql.text.contains(
                "FROM conversions WHERE conversion_time >= toDateTime(?) AND conversion_time \
                 < toDateTime(?)) AND click_time >= toDateTime(?) AND click_time <= \
                 toDateTime(?)) AS click"
            ),
            "{}",
            sql.text
        );
        assert!(sql.args.contains(&Arg::Seconds(span.first)));
        assert!(sql.args.contains(&Arg::Seconds(span.last)));
        assert_eq!(sql.text.matches('?').count(), sql.args.len());
    }
}

#[test]
fn which_subs_a_report_uses_and_whether_the_conversions_carry_them() {
    let request = request(&[("group_by", "campaign,sub1,country"), ("sub3", "x")]);
    assert_eq!(subs_used(&request).bits(), 0b101);
    assert!(subs_used(&self::request(&[("group_by", "os,country")])).is_empty());
    // Counted over the conversions of the report's own range; the set is a number of ours.
    let sql = conversion_subs_sql(&request, subs_used(&request));
    assert_eq!(
        sql.text,
        "SELECT toUInt32(min(click_time)), toUInt32(max(click_time)), \
         countIf(bitAnd(subs_carried, 5) != 5) FROM conversions WHERE conversion_time >= \
         toDateTime(?) AND conversion_time < toDateTime(?)"
    );
    assert_eq!(
        sql.args,
        [
            Arg::Seconds(seconds(request.from)),
            Arg::Seconds(seconds(request.to))
        ]
    );
    // Rows lacking one: are the latest versions among them?
    let latest = latest_lacking_subs_sql(&request, subs_used(&request));
    assert_eq!(
        latest.text,
        "SELECT count() FROM conversions FINAL WHERE bitAnd(subs_carried, 5) != 5 AND \
         conversion_time >= toDateTime(?) AND conversion_time < toDateTime(?)"
    );
    assert_eq!(latest.args, sql.args);
}

#[test]
fn conversions_that_carry_the_subs_read_neither_clicks_nor_a_join() {
    let hostile = "x' OR 1=1 --";
    for pairs in [
        &[("group_by", "campaign,sub1,country")][..],
        &[("group_by", "campaign"), ("sub2", hostile)][..],
    ] {
        let request = request(pairs);
        let on_rows = report_sql(
            &request,
            &[],
            "USD",
            Grouping::Hashed,
            server(1),
            ConversionSubs::OnRows,
        );
        let conversions = &on_rows.text[on_rows.text.find("FROM conversions_valued").unwrap()..];
        let conversions = &conversions[..conversions.find("unattributed_current").unwrap()];
        assert!(!conversions.contains("FROM clicks"), "{conversions}");
        assert!(!conversions.contains("click_id IN"), "{conversions}");
        assert!(!conversions.contains("JOIN"), "{conversions}");
        assert!(!on_rows.text.contains("click_sub"), "{}", on_rows.text);
        assert_eq!(on_rows.text.matches('?').count(), on_rows.args.len());
    }
    // Grouped by sub1 and filtered by sub2 on the rows: both are the conversion's columns.
    let both = request(&[("group_by", "sub1"), ("sub2", "a")]);
    let text = report_sql(
        &both,
        &[],
        "USD",
        Grouping::Values,
        server(1),
        ConversionSubs::OnRows,
    )
    .text;
    assert!(
        text.contains("SELECT sub1 AS k0, payout_account, rate_missing FROM conversions_valued"),
        "{text}"
    );
    assert!(
        text.contains("AND sub2 IN (SELECT arrayJoin(CAST(? AS Array(String))))) GROUP BY"),
        "{text}"
    );
    // Joined, the click's subs are named apart from the conversion's own (empty) columns.
    let joined = report_sql(
        &both,
        &[],
        "USD",
        Grouping::Values,
        server(1),
        ConversionSubs::FromClicks(None),
    )
    .text;
    assert!(
        joined
            .contains("JOIN (SELECT click_id, sub1 AS click_sub1, sub2 AS click_sub2 FROM clicks"),
        "{joined}"
    );
    assert!(joined.contains("SELECT click_sub1 AS k0"), "{joined}");
    assert!(joined.contains("AND click_sub2 IN"), "{joined}");
}

#[test]
fn several_dimensions_group_by_a_hash_and_report_collisions() {
    let one = request(&[("group_by", "campaign")]);
    let two = request(&[("group_by", "campaign,hour")]);
    assert_eq!(Grouping::for_request(&one), Grouping::Values);
    assert_eq!(Grouping::for_request(&two), Grouping::Hashed);
    let hashed = report_sql(
        &two,
        &[],
        "USD",
        Grouping::Hashed,
        server(1),
        ConversionSubs::OnRows,
    )
    .text;
    assert!(hashed.contains("cityHash64(k0, k1) AS h"), "{hashed}");
    assert!(
        hashed.contains("cityHash64('check', k1, k0) AS c"),
        "{hashed}"
    );
    assert!(
        hashed.contains("toUInt8(min(cl) != max(cu)) AS collided"),
        "{hashed}"
    );
    let values = report_sql(
        &two,
        &[],
        "USD",
        Grouping::Values,
        server(1),
        ConversionSubs::OnRows,
    )
    .text;
    assert!(!values.contains("cityHash64"), "{values}");
    assert!(values.ends_with("GROUP BY m0, m1"), "{values}");
}

#[test]
fn clicks_are_read_in_slices_that_cover_the_range() {
    let request = request(&[
        ("group_by", "campaign"),
        ("from", "2026-12-01"),
        ("to", "2026-12-03"),
    ]);
    let (from, to) = (seconds(request.from), seconds(request.to));
    let sql = report_sql(
        &request,
        &[],
        "USD",
        Grouping::Values,
        server(3),
        ConversionSubs::OnRows,
    );
    assert_eq!(sql.text.matches("FROM clicks FINAL PREWHERE").count(), 3);
    let day = 86_400;
    let bounds: Vec<u32> = sql
        .args
        .iter()
        .filter_map(|a| match a {
            Arg::Seconds(s) => Some(*s),
            _ => None,
        })
        .take(6)
        .collect();
    assert_eq!(
        bounds,
        [
            from,
            from + day,
            from + day,
            from + 2 * day,
            from + 2 * day,
            to
        ]
    );
}

#[test]
fn dimensions_a_fact_lacks_group_under_empty() {
    assert!(matches!(expr(Dimension::Status, Fact::Clicks), Expr::Empty));
    assert!(matches!(
        expr(Dimension::Campaign, Fact::Unattributed),
        Expr::Empty
    ));
    assert!(matches!(expr(Dimension::Os, Fact::Costs), Expr::Empty));
    assert!(matches!(
        expr(Dimension::Route, Fact::Unattributed),
        Expr::Column("route")
    ));
    assert!(matches!(
        expr(Dimension::Sub(10), Fact::Costs),
        Expr::Column("sub10")
    ));
}

mod any_request {
    //! Any query string: checking never panics, and what it accepts builds statements on every
    //! path in which no user text appears, each value bound to one placeholder.
    use super::*;
    use proptest::prelude::*;

    /// Every user value carries this, so the text can be searched for it.
    const MARK: &str = "ZqX";

    const DIMENSIONS: &[&str] = &[
        "campaign",
        "source",
        "offer",
        "network",
        "route",
        "event",
        "status",
        "sub1",
        "sub2",
        "sub10",
        "country",
        "device_type",
        "os",
        "browser",
        "hour",
        "day",
    ];

    fn one_of(values: &'static [&'static str]) -> impl Strategy<Value = String> {
        proptest::sample::select(values).prop_map(String::from)
    }

    /// Any text, marked as the user's.
    fn marked() -> impl Strategy<Value = String> {
        ".{0,40}".prop_map(|s| format!("{MARK}{s}"))
    }

    /// A parameter that is there, right or wrong, or not there.
    fn param(
        name: &'static str,
        right: impl Strategy<Value = String>,
    ) -> impl Strategy<Value = Option<(String, String)>> {
        proptest::option::of(prop_oneof![12 => right, 1 => marked()])
            .prop_map(move |v| v.map(|v| (name.to_string(), v)))
    }

    fn day() -> impl Strategy<Value = String> {
        one_of(&[
            "2026-11-01",
            "2026-12-01",
            "2026-12-05T22:00:00+05:45",
            "2026-13-01",
            "",
        ])
    }

    fn pairs() -> impl Strategy<Value = Vec<(String, String)>> {
        let group_by = proptest::sample::subsequence(DIMENSIONS, 0..=7).prop_map(|d| d.join(","));
        let tz = one_of(&[
            "UTC",
            "Asia/Kolkata",
            "Asia/Kathmandu",
            "America/New_York",
            "Mars/Base",
        ]);
        let sort = one_of(&[
            "-revenue", "roi", "clicks", "-country", "sub1", "cr", "-epc", "",
        ]);
        let limit = one_of(&["1", "100", "10000", "0", "10001", "-1", " "]);
        let filter = (
            prop_oneof![8 => one_of(DIMENSIONS), 1 => one_of(&["sub0", "sub11", "", "revenue"]), 1 => marked()],
            prop_oneof![4 => marked(), 1 => one_of(&["", "DE", "a,b"])],
        );
        (
            (
                param("group_by", group_by),
                param("tz", tz),
                param("from", day()),
            ),
            (
                param("to", day()),
                param("sort", sort),
                param("limit", limit),
            ),
            proptest::collection::vec(filter, 0..5),
        )
            .prop_map(|((g, tz, from), (to, sort, limit), filters)| {
                [g, tz, from, to, sort, limit]
                    .into_iter()
                    .flatten()
                    .chain(filters)
                    .collect()
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]
        #[test]
        fn user_text_never_reaches_the_statement(pairs in pairs()) {
            let now = chrono::Utc.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).unwrap();
            let Ok(params) = ReportParams::from_pairs(pairs.iter().map(|(n, v)| (n, v))) else {
                return Ok(());
            };
            let Ok(request) = params.check(now) else {
                return Ok(());
            };
            let networks = [(format!("{MARK}-offer"), format!("{MARK}-network"))];
            let span = ClickSpan { first: 1, last: 2 };
            for subs in [ConversionSubs::OnRows, ConversionSubs::FromClicks(Some(span))] {
                for grouping in [Grouping::Values, Grouping::Hashed] {
                    for target in [server(1), server(2), Target { slices: 1, distributed: true }] {
                        let sql = report_sql(&request, &networks, "USD", grouping, target, subs);
                        prop_assert!(!sql.text.contains(MARK), "{}", sql.text);
                        prop_assert_eq!(sql.text.matches('?').count(), sql.args.len());
                    }
                }
            }
            let used = subs_used(&request);
            for count in [conversion_subs_sql(&request, used), latest_lacking_subs_sql(&request, used)] {
                prop_assert!(!count.text.contains(MARK));
                prop_assert_eq!(count.text.matches('?').count(), count.args.len());
            }
        }
    }
}
