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

use clickmatch_core::subs::SubSet;

use super::request::{Dimension, ReportRequest};
use crate::statement::{Arg, Sql};

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
        // On conversions, their own or their click's ([`ConversionSubs`]).
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

/// Dimensions a conversion may need its click for: the subs, which a row carries only as
/// configured ([`ConversionSubs`]). (The click's country, device type, OS and browser are
/// always on the conversion row.)
fn from_click(dimension: Dimension) -> bool {
    matches!(dimension, Dimension::Sub(_))
}

/// Where the statement runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Target {
    /// Slices of the range the clicks are read in, side by side: the server's `max_threads`
    /// where it merges a `FINAL` read on one thread (18.16), else 1.
    pub slices: u32,
    /// The cluster layout: the base tables are `Distributed`.
    pub distributed: bool,
}

impl Target {
    /// What a dimension a fact lacks reads as. On one server the literal `''`: a constant
    /// costs nothing per row. Through `Distributed` tables `materialize('')`, a column: 18.16
    /// refuses a constant that comes back from the shards as a column ("non constant in
    /// source stream but must be constant in result"), and making 10 M empty strings costs
    /// ~0.1 s per dimension (26.9).
    fn empty(self) -> &'static str {
        if self.distributed {
            "materialize('')"
        } else {
            "''"
        }
    }

    /// How a set read from a table is tested. Through `Distributed` tables `GLOBAL IN`: clicks
    /// and conversions are sharded by different keys, so the set is built once, on the host
    /// that runs the report, and sent to the shards (a plain `IN` of a `Distributed` table
    /// inside a distributed read is refused: "Double-distributed IN/JOIN subqueries is
    /// denied"). On one server a plain `IN`: with `GLOBAL` the `sub1` filter report of the
    /// benchmark took 0.93 s (p50, 26.9) against 0.83 s in the run before.
    fn in_table(self) -> &'static str {
        if self.distributed {
            "GLOBAL IN"
        } else {
            "IN"
        }
    }
}

/// When the clicks of the conversions in a report's range were made (Unix seconds, both ends
/// included), from the conversions' own `click_time`: the clicks a conversion needs for its subs
/// are read from this span only, not from the whole history of `clicks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClickSpan {
    pub first: u32,
    pub last: u32,
}

/// Where a report's conversions take the subs it groups or filters by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConversionSubs {
    /// From their own rows: the report uses no sub, or every conversion in its range carries
    /// those it uses (`[joiner] conversion_subs`).
    OnRows,
    /// From their clicks, joined by click ID (or, filtered only, narrowed to the click IDs the
    /// filter selects), read from this span (`None`: every click held).
    FromClicks(Option<ClickSpan>),
}

impl ConversionSubs {
    /// Whether conversions take `dimension` from their click.
    fn takes_from_click(self, dimension: Dimension) -> bool {
        matches!(self, ConversionSubs::FromClicks(_)) && from_click(dimension)
    }
}

/// The subs a report groups or filters by.
pub(crate) fn subs_used(request: &ReportRequest) -> SubSet {
    request
        .group_by
        .iter()
        .chain(request.filters.iter().map(|f| &f.dimension))
        .filter_map(|&d| match d {
            Dimension::Sub(n) => SubSet::one(n),
            _ => None,
        })
        .fold(SubSet::NONE, SubSet::union)
}

/// The condition on a conversion row: it does not carry every sub of `subs`. The set is a
/// number made from the whitelist of dimensions or the configuration, never a user's text.
pub(crate) fn lacks_subs(subs: SubSet) -> String {
    let bits = subs.bits();
    format!("bitAnd(subs_carried, {bits}) != {bits}")
}

/// The query for a report's [`ConversionSubs`]: over the conversions in its range (every
/// version, so a superset of what the report counts), how many do not carry every sub in `used`,
/// and the first and last `click_time` of all of them.
pub(crate) fn conversion_subs_sql(request: &ReportRequest, used: SubSet) -> Sql {
    let head = format!(
        "SELECT toUInt32(min(click_time)), toUInt32(max(click_time)), \
         countIf({}) FROM conversions WHERE ",
        lacks_subs(used)
    );
    in_range(&head, request)
}

/// When [`conversion_subs_sql`] counts rows lacking a sub: how many of the latest versions do
/// (`FINAL`). Older versions and copies not merged yet (`clickmatch carry-subs` writes each
/// conversion again carrying its click's subs) count there but not here. A second query, so a
/// range whose rows all carry the subs pays no `FINAL` (0.45 s over 2 M rows on 18.16).
pub(crate) fn latest_lacking_subs_sql(request: &ReportRequest, used: SubSet) -> Sql {
    let head = format!(
        "SELECT count() FROM conversions FINAL WHERE {} AND ",
        lacks_subs(used)
    );
    in_range(&head, request)
}

/// `head` followed by the condition that a conversion is in the report's range.
fn in_range(head: &str, request: &ReportRequest) -> Sql {
    let mut sql = Sql::default();
    sql.push(head);
    sql.between(
        Fact::Conversions.time(),
        seconds(request.from),
        seconds(request.to),
    );
    sql
}

/// The offer → network map of the configuration (offers without a network left out).
pub(crate) type Networks = [(String, String)];

/// How rows are grouped. With two or more dimensions, grouping by the key values themselves is
/// slow (ClickHouse serializes every row's keys: 2.0 s for 10 M clicks by campaign × sub1 ×
/// country on 18.16); grouping by one 64-bit hash `h` of them is faster (1.3 s). A hash can
/// collide, so each group also keeps the bounds of a second hash `c` of the same keys, salted
/// and in reverse order: a group holding two different keys shows two values of `c` unless both
/// hashes collide at once (one chance in 2^64 per pair of keys), is reported (`collided`), and
/// [`super::run`] then runs the report again grouped by the values. (Keeping the bounds of each
/// key instead costs 0.2 to 0.5 s more per report.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    Values,
    Hashed,
    /// Hashed with every key's hash 0: every group collides (tests of the detection).
    #[doc(hidden)]
    AllColliding,
}

impl Grouping {
    pub fn for_request(request: &ReportRequest) -> Grouping {
        if request.group_by.len() >= 2 {
            Grouping::Hashed
        } else {
            Grouping::Values
        }
    }
}

struct Builder<'a> {
    request: &'a ReportRequest,
    networks: &'a Networks,
    grouping: Grouping,
    target: Target,
    subs: ConversionSubs,
    sql: Sql,
}

impl Builder<'_> {
    fn n(&self) -> usize {
        self.request.group_by.len()
    }

    /// One dimension on one fact, as a value: time buckets stay `Date` and `DateTime` until
    /// the groups are formed (formatting every row's bucket as text costs more than the rest).
    fn expr(&mut self, dimension: Dimension, fact: Fact) {
        let time = fact.time();
        let tz = self.request.tz.name().to_string();
        match expr(dimension, fact) {
            // A sub joined from the click, named apart from the conversion's own column.
            Expr::Column(column)
                if fact == Fact::Conversions && self.subs.takes_from_click(dimension) =>
            {
                self.sql.push(&format!("click_{column}"))
            }
            Expr::Column(column) => self.sql.push(column),
            Expr::Empty => self.sql.push(self.target.empty()),
            Expr::Hour => {
                self.sql.push(&format!("toStartOfHour({time}, "));
                self.sql.bind(Arg::Str(tz));
                self.sql.push(")");
            }
            Expr::Day => {
                self.sql.push(&format!("toDate({time}, "));
                self.sql.bind(Arg::Str(tz));
                self.sql.push(")");
            }
            Expr::Network if self.networks.is_empty() => self.sql.push(self.target.empty()),
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

    /// A grouped key as the report prints it: hours `YYYY-MM-DD HH:00` and days in the zone.
    fn format(&mut self, i: usize, value: &str) {
        let tz = self.request.tz.name().to_string();
        match self.request.group_by[i] {
            Dimension::Hour => {
                self.sql.push(&format!("substring(toString({value}, "));
                self.sql.bind(Arg::Str(tz));
                self.sql.push("), 1, 16)");
            }
            Dimension::Day => self.sql.push(&format!("toString({value})")),
            _ => self.sql.push(value),
        }
    }

    /// `expr AS k0, expr AS k1, ` for the grouped dimensions, then the hash `h` when grouping
    /// by it.
    fn keys(&mut self, fact: Fact) {
        for (i, &dimension) in self.request.group_by.iter().enumerate() {
            self.expr(dimension, fact);
            self.sql.push(&format!(" AS k{i}, "));
        }
        if self.grouping != Grouping::Values {
            let keys = list(self.n(), |i| format!("k{i}"));
            let reversed = list(self.n(), |i| format!("k{}", self.n() - 1 - i));
            self.sql.push(&format!(
                "cityHash64({keys}) AS h, cityHash64('check', {reversed}) AS c, "
            ));
            if self.grouping == Grouping::AllColliding {
                // From `h`, not a literal: see `Target::empty`.
                self.sql.push("h * 0 AS h0, ");
            }
        }
    }

    /// What a part groups by.
    fn part_group(&self) -> String {
        match self.grouping {
            Grouping::Values => list(self.n(), |i| format!("k{i}")),
            Grouping::Hashed => "h".into(),
            Grouping::AllColliding => "h0".into(),
        }
    }

    /// The key columns a part passes on: `m<i>`, and when hashed the bounds `cl`, `cu` of the
    /// check hash.
    fn part_keys(&self) -> String {
        match self.grouping {
            Grouping::Values => list(self.n(), |i| format!("k{i} AS m{i}")),
            Grouping::Hashed | Grouping::AllColliding => format!(
                "{}, {}, min(c) AS cl, max(c) AS cu",
                self.part_group(),
                list(self.n(), |i| format!("any(k{i}) AS m{i}"))
            ),
        }
    }

    /// The same columns passed through a query that does not group.
    fn pass_keys(&self) -> String {
        match self.grouping {
            Grouping::Values => list(self.n(), |i| format!("m{i}")),
            Grouping::Hashed | Grouping::AllColliding => format!(
                "{}, {}, cl, cu",
                self.part_group(),
                list(self.n(), |i| format!("m{i}"))
            ),
        }
    }
    /// `time >= from AND time < to`.
    fn range(&mut self, fact: Fact) {
        let (from, to) = (seconds(self.request.from), seconds(self.request.to));
        self.between(fact, from, to);
    }

    /// `time >= from AND time < to`, in Unix seconds.
    fn between(&mut self, fact: Fact, from: u32, to: u32) {
        self.sql.between(fact.time(), from, to);
    }

    /// ` AND dimension IN (values)` for the filters `which` selects.
    fn filters(&mut self, fact: Fact, which: impl Fn(Dimension) -> bool) {
        for filter in &self.request.filters {
            if !which(filter.dimension) {
                continue;
            }
            // `IN` a set: twice as fast as `has(array, value)` per row on 18.16.
            self.sql.push(" AND ");
            self.expr(filter.dimension, fact);
            self.sql.push(" IN (SELECT arrayJoin(CAST(");
            self.sql.bind(Arg::Strs(filter.values.clone()));
            self.sql.push(" AS Array(String))))");
        }
    }

    /// Which clicks count, as a `PREWHERE` of `clicks FINAL`, between `from` and `to`. 18.16
    /// filters before it merges the copies of a click (current releases after): the copies
    /// are the same row, so both give the same clicks, and filtering first leaves 18.16 fewer
    /// rows to merge (a 7-day report of 30 days: 0.4 s instead of 0.8 s).
    fn clicks_condition(&mut self, from: u32, to: u32) {
        self.sql.push("is_test = 0 AND ");
        self.between(Fact::Clicks, from, to);
        self.filters(Fact::Clicks, |_| true);
    }

    /// ` AND click_time` within the span of the conversions' clicks, when it is known: a click a
    /// conversion names was made then (its copies share its time), so the rest of `clicks`,
    /// months of it in production, is not read.
    fn clicks_of_conversions(&mut self) {
        if let ConversionSubs::FromClicks(Some(span)) = self.subs {
            self.sql.push(" AND click_time >= toDateTime(");
            self.sql.bind(Arg::Seconds(span.first));
            self.sql.push(") AND click_time <= toDateTime(");
            self.sql.bind(Arg::Seconds(span.last));
            self.sql.push(")");
        }
    }

    /// `SELECT <keys> <columns> FROM costs_current WHERE currency = | != account AND …`: the
    /// imported lines in the account currency (`same`), or in another.
    fn costs_rows(&mut self, columns: &str, account_currency: &str, same: bool) {
        self.sql.push("SELECT ");
        self.keys(Fact::Costs);
        let op = if same { "=" } else { "!=" };
        self.sql.push(&format!(
            "{columns} FROM costs_current WHERE currency {op} "
        ));
        self.sql.bind(Arg::Str(account_currency.into()));
        self.sql.push(" AND ");
        self.range(Fact::Costs);
        self.filters(Fact::Costs, |_| true);
    }

    /// Clicks and imported spend, valued in the account currency. Clicks whose cost is in the
    /// account currency need no rate and are summed per group; the rest (and imported spend)
    /// is summed per group, day and currency and valued at that day's rate (in decimals where
    /// no rate is needed: a float round trip can lose a millionth). The clicks are read twice;
    /// the second read takes only rows of another currency, usually none.
    fn money(&mut self, account_currency: &str) {
        let (group, keys, pass) = (self.part_group(), self.part_keys(), self.pass_keys());
        let (from, to) = (seconds(self.request.from), seconds(self.request.to));
        self.sql.push(&format!(
            "SELECT {keys}, toUInt64(count()) AS clicks, toUInt64(0) AS conversions, \
             toDecimal64(0, 6) AS revenue, toDecimal64(sumIf(cost, cost_currency = "
        ));
        self.sql.bind(Arg::Str(account_currency.into()));
        self.sql
            .push("), 6) AS cost, toUInt64(0) AS unattributed, toUInt64(0) AS unvalued FROM (");
        // One read per slice of the range, side by side: 18.16 merges the copies of a
        // `FINAL` read on one thread, and a click's copies share its time, so slicing by
        // time keeps them in one slice.
        let slices = self.target.slices.clamp(1, 16);
        for slice in 0..slices {
            if slice > 0 {
                self.sql.push(" UNION ALL ");
            }
            let bound = |k: u32| {
                if k == slices {
                    to
                } else {
                    from + u32::try_from(
                        u64::from(to.saturating_sub(from)) * u64::from(k) / u64::from(slices),
                    )
                    .unwrap_or(to)
                }
            };
            self.sql.push("SELECT ");
            self.keys(Fact::Clicks);
            self.sql
                .push("cost, cost_currency FROM clicks FINAL PREWHERE ");
            self.clicks_condition(bound(slice), bound(slice + 1));
        }
        self.sql.push(&format!(") GROUP BY {group}"));

        // Another currency: per group, day and currency, then the day's rate, rounded to a
        // millionth and read back through its text (`toDecimal64` of a Float64 truncates).
        self.sql.push(&format!(
            " UNION ALL SELECT {pass}, toUInt64(0) AS clicks, toUInt64(0) AS conversions, \
             toDecimal64(0, 6) AS revenue, \
             toDecimal64(toString(round(toFloat64(amount) * factor, 6)), 6) AS cost, \
             toUInt64(0) AS unattributed, toUInt64(amount != 0 AND factor = 0) AS unvalued FROM ("
        ));
        self.sql.push(&format!(
            "SELECT {keys}, toDecimal64(sum(cost), 6) AS amount, currency, day FROM (SELECT "
        ));
        self.keys(Fact::Clicks);
        self.sql.push(
            "cost, cost_currency AS currency, toDate(click_time) AS day FROM (SELECT * FROM clicks \
             PREWHERE cost_currency != ",
        );
        self.sql.bind(Arg::Str(account_currency.into()));
        self.sql.push(" AND cost != 0 AND ");
        self.clicks_condition(from, to);
        // Each click once without `FINAL`, whose merge costs 0.15 s on 18.16 even when no row
        // is left: the copies are the same row, any one will do.
        self.sql.push(" LIMIT 1 BY click_id)");
        self.sql.push(&format!(
            ") GROUP BY {group}, currency, day UNION ALL SELECT {keys}, toDecimal64(sum(amount), 6) \
             AS amount, currency, day FROM ("
        ));
        self.costs_rows(
            "amount, currency, toDate(period_start) AS day",
            account_currency,
            false,
        );
        self.sql.push(&format!(
            ") GROUP BY {group}, currency, day) AS parts ANY LEFT JOIN \
             (SELECT day, currency, factor FROM currency_factors) AS factors USING (day, currency)"
        ));

        // Imported spend in the account currency.
        self.sql.push(&format!(
            " UNION ALL SELECT {keys}, toUInt64(0) AS clicks, toUInt64(0) AS conversions, \
             toDecimal64(0, 6) AS revenue, toDecimal64(sum(amount), 6) AS cost, \
             toUInt64(0) AS unattributed, toUInt64(0) AS unvalued FROM ("
        ));
        self.costs_rows("amount", account_currency, true);
        self.sql.push(&format!(") GROUP BY {group}"));
    }

    /// Conversions whose latest version is approved, pending or hold, in the hour it arrived.
    /// The subs are on their rows when they carry them ([`ConversionSubs`]); else a sub needs
    /// the click: grouped by one, they are joined to their clicks; only filtered by one, they
    /// are narrowed to the click IDs the filter selects, which reads one column of the clicks
    /// instead of joining.
    fn conversions(&mut self) {
        let (group, keys) = (self.part_group(), self.part_keys());
        let request = self.request;
        let subs = self.subs;
        let grouped_by_click = request.group_by.iter().any(|&d| subs.takes_from_click(d));
        let filtered_by_click = request
            .filters
            .iter()
            .any(|f| subs.takes_from_click(f.dimension));
        self.sql.push(&format!(
            "SELECT {keys}, toUInt64(0) AS clicks, toUInt64(count()) AS conversions, \
             toDecimal64(sum(payout_account), 6) AS revenue, toDecimal64(0, 6) AS cost, \
             toUInt64(0) AS unattributed, toUInt64(sum(rate_missing)) AS unvalued FROM (SELECT "
        ));
        self.keys(Fact::Conversions);
        self.sql.push("payout_account, rate_missing FROM ");
        let own = |b: &mut Self| {
            b.sql
                .push("is_test = 0 AND status IN ('approved', 'pending', 'hold') AND ");
            b.range(Fact::Conversions);
            b.filters(Fact::Conversions, |d| !subs.takes_from_click(d));
        };
        if !grouped_by_click {
            self.sql.push("conversions_valued WHERE ");
            own(self);
            if filtered_by_click {
                let in_table = self.target.in_table();
                self.sql.push(&format!(
                    " AND click_id {in_table} (SELECT click_id FROM clicks WHERE 1"
                ));
                self.clicks_of_conversions();
                self.filters(Fact::Clicks, from_click);
                self.sql.push(")");
            }
        } else {
            // The click's subs: ANY takes one row per click ID, so a click
            // written twice (before a merge) joins once.
            let mut columns = vec!["click_id".to_string()];
            for &dimension in request
                .group_by
                .iter()
                .chain(request.filters.iter().map(|f| &f.dimension))
            {
                if let (true, Expr::Column(c)) =
                    (from_click(dimension), expr(dimension, Fact::Clicks))
                {
                    let column = format!("{c} AS click_{c}");
                    if !columns.contains(&column) {
                        columns.push(column);
                    }
                }
            }
            let columns = columns.join(", ");
            self.sql.push("(SELECT * FROM conversions_valued WHERE ");
            own(self);
            // The clicks side is narrowed by the hashes of the conversions' click IDs: a set of
            // numbers is tested faster than one of strings, and ClickHouse does not try it
            // against the primary key (1 s of index analysis for a million IDs on 18.16). A
            // colliding hash only lets an extra click in, which the join by ID never matches.
            let in_table = self.target.in_table();
            self.sql.push(&format!(
                ") AS conversion ANY LEFT JOIN (SELECT {columns} FROM clicks WHERE \
                 cityHash64(click_id) {in_table} (SELECT cityHash64(click_id) FROM conversions WHERE "
            ));
            self.range(Fact::Conversions);
            self.sql.push(")");
            self.clicks_of_conversions();
            self.sql.push(") AS click USING click_id WHERE 1");
            self.filters(Fact::Conversions, from_click);
        }
        self.sql.push(&format!(") GROUP BY {group}"));
    }

    fn unattributed(&mut self) {
        let (group, keys) = (self.part_group(), self.part_keys());
        self.sql.push(&format!(
            "SELECT {keys}, toUInt64(0) AS clicks, toUInt64(0) AS conversions, \
             toDecimal64(0, 6) AS revenue, toDecimal64(0, 6) AS cost, \
             toUInt64(count()) AS unattributed, toUInt64(0) AS unvalued FROM (SELECT "
        ));
        self.keys(Fact::Unattributed);
        self.sql.push(
            "received_time FROM unattributed_current WHERE is_test = 0 AND reason != 'duplicate' AND ",
        );
        self.range(Fact::Unattributed);
        self.filters(Fact::Unattributed, |_| true);
        self.sql.push(&format!(") GROUP BY {group}"));
    }
}

/// `f(0), f(1), …, f(n - 1)`.
fn list(n: usize, f: impl Fn(usize) -> String) -> String {
    (0..n).map(f).collect::<Vec<_>>().join(", ")
}

/// The statement: one row per group, `keys` in `group_by` order, and `collided` (a hash
/// grouping put two different keys together: see [`Grouping`]). `subs` says where the
/// conversions take the subs the report uses.
pub(crate) fn report_sql(
    request: &ReportRequest,
    networks: &Networks,
    account_currency: &str,
    grouping: Grouping,
    target: Target,
    subs: ConversionSubs,
) -> Sql {
    let mut builder = Builder {
        request,
        networks,
        grouping,
        target,
        subs,
        sql: Sql::default(),
    };
    let n = builder.n();
    builder.sql.push("SELECT [");
    for i in 0..n {
        if i > 0 {
            builder.sql.push(", ");
        }
        let value = match grouping {
            Grouping::Values => format!("m{i}"),
            Grouping::Hashed | Grouping::AllColliding => format!("any(m{i})"),
        };
        builder.format(i, &value);
    }
    let (group, collided) = match grouping {
        Grouping::Values => (list(n, |i| format!("m{i}")), "0".to_string()),
        Grouping::Hashed | Grouping::AllColliding => {
            (builder.part_group(), "min(cl) != max(cu)".to_string())
        }
    };
    builder.sql.push(&format!(
        "] AS keys, toUInt64(sum(clicks)) AS clicks, \
         toUInt64(sum(conversions)) AS conversions, toString(sum(revenue)) AS revenue, \
         toString(sum(cost)) AS cost, toUInt64(sum(unattributed)) AS unattributed, \
         toUInt64(sum(unvalued)) AS unvalued, toUInt8({collided}) AS collided FROM ("
    ));
    builder.money(account_currency);
    builder.sql.push(" UNION ALL ");
    builder.conversions();
    builder.sql.push(" UNION ALL ");
    builder.unattributed();
    builder.sql.push(&format!(") GROUP BY {group}"));
    builder.sql
}

/// Unix seconds for `DateTime`, clamped to its range (1970 to 2106).
fn seconds(time: chrono::DateTime<chrono::Utc>) -> u32 {
    u32::try_from(time.timestamp().max(0)).unwrap_or(u32::MAX)
}

#[cfg(test)]
#[path = "sql_tests.rs"]
mod tests;
