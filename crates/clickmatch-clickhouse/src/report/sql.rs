//! The report's one SQL statement, built from a checked [`ReportRequest`]. Column names and
//! expressions come only from the whitelist below (one per dimension and fact); every user value
//! (filter values, the time zone, the range, the offer-to-network map) is a bound `?` that the
//! `clickhouse` crate sends as an escaped literal. 18.16 has no server-side query parameters.
//!
//! Four facts are read from the base tables, each deduplicated as `FINAL` does, and summed per
//! group: clicks (`clicks FINAL`: clicks, click cost), imported spend (`costs_current`),
//! conversions (`conversions_valued`: each conversion's latest version, valued in the account
//! currency) and unattributed postbacks (`unattributed_current`: `unattributed FINAL` without
//! the postbacks a reprocess attributed since; duplicates aside). Time buckets
//! are computed per row in the report's zone, so every IANA zone buckets exactly (docs/reports.md).

use super::request::{Dimension, ReportRequest};

/// A bound value, in the order of the `?` in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Arg {
    Str(String),
    Strs(Vec<String>),
    Seconds(u32),
}

/// SQL text with `?` placeholders and their values.
#[derive(Debug, Default)]
pub(crate) struct Sql {
    pub text: String,
    pub args: Vec<Arg>,
}

impl Sql {
    fn push(&mut self, text: &str) {
        self.text.push_str(text);
    }

    fn bind(&mut self, arg: Arg) {
        self.text.push('?');
        self.args.push(arg);
    }

    pub fn bound(&self, client: &clickhouse::Client) -> clickhouse::query::Query {
        let mut query = client.query(&self.text);
        for arg in &self.args {
            query = match arg {
                Arg::Str(s) => query.bind(s.as_str()),
                Arg::Strs(v) => query.bind(v.as_slice()),
                Arg::Seconds(s) => query.bind(*s),
            };
        }
        query
    }
}

/// The tables a report reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fact {
    Clicks,
    Costs,
    Conversions,
    Unattributed,
}

impl Fact {
    /// The column that places a row in time.
    fn time(self) -> &'static str {
        match self {
            Fact::Clicks => "click_time",
            Fact::Costs => "period_start",
            Fact::Conversions => "conversion_time",
            Fact::Unattributed => "received_time",
        }
    }
}

/// How a dimension reads on one fact.
enum Expr {
    Column(&'static str),
    /// The fact has no such attribute: its rows group under `''`.
    Empty,
    Hour,
    Day,
    /// The offer's network, from the configuration.
    Network,
}

const SUBS: [&str; 10] = [
    "sub1", "sub2", "sub3", "sub4", "sub5", "sub6", "sub7", "sub8", "sub9", "sub10",
];

/// The whitelist: what each dimension is on each fact (docs/reports.md has the table).
fn expr(dimension: Dimension, fact: Fact) -> Expr {
    use Dimension as D;
    use Fact as F;
    match (dimension, fact) {
        (D::Hour, _) => Expr::Hour,
        (D::Day, _) => Expr::Day,
        (D::Network, _) => Expr::Network,
        (D::Offer, _) => Expr::Column("offer_id"),
        (D::Campaign, F::Clicks | F::Costs | F::Conversions) => Expr::Column("campaign_id"),
        (D::Source, F::Clicks | F::Costs | F::Conversions) => Expr::Column("source"),
        (D::Route, F::Conversions | F::Unattributed) => Expr::Column("route"),
        (D::Event, F::Conversions) => Expr::Column("event"),
        (D::Status, F::Conversions) => Expr::Column("status"),
        // On conversions, from their click (joined by click ID).
        (D::Sub(i), F::Clicks | F::Costs | F::Conversions) => {
            Expr::Column(SUBS[usize::from(i.clamp(1, 10)) - 1])
        }
        (D::Country, F::Clicks | F::Conversions) => Expr::Column("country"),
        (D::DeviceType, F::Clicks | F::Conversions) => Expr::Column("device_type"),
        (D::Os, F::Clicks | F::Conversions) => Expr::Column("os"),
        (D::Browser, F::Clicks | F::Conversions) => Expr::Column("browser"),
        _ => Expr::Empty,
    }
}

/// Dimensions a conversion takes from its click: they need the join.
fn from_click(dimension: Dimension) -> bool {
    matches!(
        dimension,
        Dimension::Sub(_) | Dimension::Os | Dimension::Browser
    )
}

/// The offer → network map of the configuration (offers without a network left out).
pub(crate) type Networks = [(String, String)];

struct Builder<'a> {
    request: &'a ReportRequest,
    networks: &'a Networks,
    sql: Sql,
}

impl Builder<'_> {
    fn expr(&mut self, dimension: Dimension, fact: Fact) {
        let time = fact.time();
        let tz = self.request.tz.name().to_string();
        match expr(dimension, fact) {
            Expr::Column(column) => self.sql.push(column),
            Expr::Empty => self.sql.push("''"),
            Expr::Hour => {
                self.sql
                    .push(&format!("substring(toString(toStartOfHour({time}, "));
                self.sql.bind(Arg::Str(tz.clone()));
                self.sql.push("), ");
                self.sql.bind(Arg::Str(tz));
                self.sql.push("), 1, 16)");
            }
            Expr::Day => {
                self.sql.push(&format!("toString(toDate({time}, "));
                self.sql.bind(Arg::Str(tz));
                self.sql.push("))");
            }
            Expr::Network if self.networks.is_empty() => self.sql.push("''"),
            Expr::Network => {
                let (offers, networks): (Vec<String>, Vec<String>) =
                    self.networks.iter().cloned().unzip();
                self.sql.push("transform(offer_id, ");
                self.sql.bind(Arg::Strs(offers));
                self.sql.push(", ");
                self.sql.bind(Arg::Strs(networks));
                self.sql.push(", '')");
            }
        }
    }

    /// `expr AS k0, expr AS k1, ` for the grouped dimensions.
    fn keys(&mut self, fact: Fact) {
        for (i, &dimension) in self.request.group_by.iter().enumerate() {
            self.expr(dimension, fact);
            self.sql.push(&format!(" AS k{i}, "));
        }
    }

    fn key_list(&self) -> String {
        (0..self.request.group_by.len())
            .map(|i| format!("k{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `time >= from AND time < to` and the filters that apply on this side of a join.
    fn conditions(&mut self, fact: Fact, click_side: Option<bool>) {
        let time = fact.time();
        if click_side != Some(true) {
            self.sql.push(&format!("{time} >= toDateTime("));
            self.sql.bind(Arg::Seconds(seconds(self.request.from)));
            self.sql.push(&format!(") AND {time} < toDateTime("));
            self.sql.bind(Arg::Seconds(seconds(self.request.to)));
            self.sql.push(")");
        } else {
            self.sql.push("1");
        }
        for filter in &self.request.filters {
            if let Some(click) = click_side {
                if from_click(filter.dimension) != click {
                    continue;
                }
            }
            self.sql.push(" AND has(");
            self.sql.bind(Arg::Strs(filter.values.clone()));
            self.sql.push(", ");
            self.expr(filter.dimension, fact);
            self.sql.push(")");
        }
    }

    /// Clicks and imported spend, valued in the account currency per group, day and currency
    /// (in decimals where no rate is needed: a float round trip can lose a millionth).
    fn money(&mut self) {
        let keys = self.key_list();
        self.sql.push(&format!(
            "SELECT {keys}, clicks, toUInt64(0) AS conversions, toDecimal64(0, 6) AS revenue, \
             if(currency = account_currency, amount, \
             toDecimal64(round(toFloat64(amount) * factor, 6), 6)) AS cost, toUInt64(0) AS unattributed, \
             toUInt64(amount != 0 AND currency != account_currency AND factor = 0) AS unvalued \
             FROM (SELECT {keys}, clicks, amount, currency, day, \
             assumeNotNull((SELECT currency FROM account)) AS account_currency FROM ("
        ));
        self.sql.push("SELECT ");
        self.keys(Fact::Clicks);
        self.sql.push(
            "toUInt64(count()) AS clicks, toDecimal64(sum(cost), 6) AS amount, \
             cost_currency AS currency, toDate(click_time) AS day \
             FROM clicks FINAL WHERE is_test = 0 AND ",
        );
        self.conditions(Fact::Clicks, None);
        self.sql.push(&format!(
            " GROUP BY {keys}, currency, day UNION ALL SELECT "
        ));
        self.keys(Fact::Costs);
        self.sql.push(
            "toUInt64(0) AS clicks, toDecimal64(sum(amount), 6) AS amount, currency, \
             toDate(period_start) AS day FROM costs_current WHERE ",
        );
        self.conditions(Fact::Costs, None);
        self.sql.push(&format!(
            " GROUP BY {keys}, currency, day)) AS parts ANY LEFT JOIN \
             (SELECT day, currency, factor FROM currency_factors) AS factors USING (day, currency)"
        ));
    }

    /// Conversions whose latest version is approved, pending or hold, in the hour it arrived;
    /// joined to their clicks only when a dimension needs the click.
    fn conversions(&mut self) {
        let keys = self.key_list();
        let request = self.request;
        let join = request
            .group_by
            .iter()
            .chain(request.filters.iter().map(|f| &f.dimension))
            .any(|&d| from_click(d));
        self.sql.push("SELECT ");
        self.keys(Fact::Conversions);
        self.sql.push(
            "toUInt64(0) AS clicks, toUInt64(count()) AS conversions, \
             toDecimal64(sum(payout_account), 6) AS revenue, toDecimal64(0, 6) AS cost, \
             toUInt64(0) AS unattributed, toUInt64(sum(rate_missing)) AS unvalued FROM ",
        );
        let condition = |b: &mut Self, click_side| {
            b.sql
                .push("is_test = 0 AND status IN ('approved', 'pending', 'hold') AND ");
            b.conditions(Fact::Conversions, click_side);
        };
        if !join {
            self.sql.push("conversions_valued WHERE ");
            condition(self, None);
        } else {
            // The click's subs, OS and browser: ANY takes one row per click ID, so a click
            // written twice (before a merge) joins once.
            let mut columns = vec!["click_id"];
            for &dimension in request
                .group_by
                .iter()
                .chain(request.filters.iter().map(|f| &f.dimension))
            {
                if let (true, Expr::Column(c)) =
                    (from_click(dimension), expr(dimension, Fact::Clicks))
                {
                    if !columns.contains(&c) {
                        columns.push(c);
                    }
                }
            }
            let columns = columns.join(", ");
            self.sql.push("(SELECT * FROM conversions_valued WHERE ");
            condition(self, Some(false));
            self.sql.push(&format!(
                ") AS conversion ANY LEFT JOIN (SELECT {columns} FROM clicks WHERE click_id IN \
                 (SELECT click_id FROM conversions WHERE "
            ));
            self.conditions(Fact::Conversions, Some(false));
            self.sql.push(")) AS click USING click_id WHERE ");
            self.conditions(Fact::Conversions, Some(true));
        }
        self.sql.push(&format!(" GROUP BY {keys}"));
    }

    fn unattributed(&mut self) {
        let keys = self.key_list();
        self.sql.push("SELECT ");
        self.keys(Fact::Unattributed);
        self.sql.push(
            "toUInt64(0) AS clicks, toUInt64(0) AS conversions, toDecimal64(0, 6) AS revenue, \
             toDecimal64(0, 6) AS cost, toUInt64(count()) AS unattributed, \
             toUInt64(0) AS unvalued FROM unattributed_current \
             WHERE is_test = 0 AND reason != 'duplicate' AND ",
        );
        self.conditions(Fact::Unattributed, None);
        self.sql.push(&format!(" GROUP BY {keys}"));
    }
}

/// The statement: one row per group, `keys` in `group_by` order.
pub(crate) fn report_sql(request: &ReportRequest, networks: &Networks) -> Sql {
    let mut builder = Builder {
        request,
        networks,
        sql: Sql::default(),
    };
    let keys = builder.key_list();
    builder.sql.push(&format!(
        "SELECT [{keys}] AS keys, toUInt64(sum(clicks)) AS clicks, \
         toUInt64(sum(conversions)) AS conversions, toString(sum(revenue)) AS revenue, \
         toString(sum(cost)) AS cost, toUInt64(sum(unattributed)) AS unattributed, \
         toUInt64(sum(unvalued)) AS unvalued FROM ("
    ));
    builder.money();
    builder.sql.push(" UNION ALL ");
    builder.conversions();
    builder.sql.push(" UNION ALL ");
    builder.unattributed();
    builder.sql.push(&format!(") GROUP BY {keys}"));
    builder.sql
}

/// Unix seconds for `DateTime`, clamped to its range (1970 to 2106).
fn seconds(time: chrono::DateTime<chrono::Utc>) -> u32 {
    u32::try_from(time.timestamp().max(0)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::request::ReportParams;
    use chrono::TimeZone;

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
        let sql = report_sql(&request, &[("o1".into(), "tune".into())]);
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
    fn conversions_join_their_clicks_only_for_click_dimensions() {
        let plain = report_sql(&request(&[("group_by", "campaign,country")]), &[]);
        assert!(
            !plain.text.contains("JOIN (SELECT click_id"),
            "{}",
            plain.text
        );
        for pairs in [
            &[("group_by", "campaign,sub1")][..],
            &[("group_by", "campaign"), ("os", "iOS")][..],
        ] {
            let joined = report_sql(&request(pairs), &[]);
            assert!(
                joined.text.contains("JOIN (SELECT click_id"),
                "{}",
                joined.text
            );
        }
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
}
