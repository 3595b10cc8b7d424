//! Conversions given their click's subs after the fact: those written before they carried subs
//! (before migration 0011), or before a sub was added to `[joiner] conversion_subs`. A report
//! that uses a sub reads the conversions alone only when every conversion in its range carries
//! it, so without this a range reaching back before the upgrade joins the clicks for good.
//!
//! Each conversion's latest version is written again, with the same `version`, the click's subs
//! of the set, and their bits in `subs_carried`, as the joiner would have written it:
//! `ReplacingMergeTree(version)` keeps the row inserted last of equal versions, so the copy
//! replaces the original (the tests check it on both releases and in the cluster layout). The
//! rollups keep sets of conversion versions, so the copy changes no figure. A sub longer than
//! [`MAX_CARRIED_SUB`] bytes is left out, as the joiner leaves it; a conversion whose click is
//! not in `clicks` is left as it is. Run day by day (UTC), so the clicks joined are those of one
//! day's conversions.

use clickmatch_core::subs::{SubSet, MAX_CARRIED_SUB};

use crate::report::sql::lacks_subs;
use crate::rows::CONVERSION_COLUMNS;
use crate::statement::Sql;
use crate::{ClickHouseError, ClickHouseSettings};

/// What [`carry_subs`] found and did over its range.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Carried {
    /// Conversions (latest versions) that lacked a sub of the set before.
    pub lacking: u64,
    /// Of those, the ones written again carrying their click's subs.
    pub written: u64,
    /// Conversions still lacking one after: no click in `clicks`, or a sub too long to carry.
    pub still_lacking: u64,
    /// Days (UTC) that had conversions lacking a sub.
    pub days: u32,
}

const DAY: u32 = 86_400;

/// Gives the conversions of `[from, to)` (Unix seconds of `conversion_time`) that lack a sub of
/// `wanted` their click's subs. `dry_run` only counts them.
pub async fn carry_subs(
    settings: &ClickHouseSettings,
    wanted: SubSet,
    from: u32,
    to: u32,
    dry_run: bool,
) -> Result<Carried, ClickHouseError> {
    let mut carried = Carried::default();
    if wanted.is_empty() {
        return Ok(carried);
    }
    let client = settings.client();
    let lacking_days = || async {
        lacking_days_sql(wanted, from, to)
            .bound(&client)
            .fetch_all::<(u32, u64)>()
            .await
            .map_err(|e| ClickHouseError::from_client("counting conversions lacking subs", e))
    };
    let days = lacking_days().await?;
    carried.days = u32::try_from(days.len()).unwrap_or(u32::MAX);
    carried.lacking = days.iter().map(|(_, n)| n).sum();
    if dry_run {
        carried.still_lacking = carried.lacking;
        return Ok(carried);
    }
    let distributed = settings.cluster.is_some();
    for (day, lacking) in days {
        let start = (day * DAY).max(from);
        let end = (day * DAY).saturating_add(DAY).min(to);
        carry_sql(wanted, distributed, start, end)
            .bound(&client)
            .execute()
            .await
            .map_err(|e| ClickHouseError::from_client("writing conversions again", e))?;
        // A long history takes minutes (~3 s per day of 33,000 conversions on 18.16).
        tracing::info!(day = start, lacking, "subs carried");
    }
    carried.still_lacking = lacking_days().await?.iter().map(|(_, n)| n).sum();
    carried.written = carried.lacking.saturating_sub(carried.still_lacking);
    Ok(carried)
}

/// Appends the condition on a conversion row: it lacks a sub of `wanted`, in `[from, to)`.
fn push_lacking(sql: &mut Sql, wanted: SubSet, from: u32, to: u32) {
    sql.push(&format!("{} AND ", lacks_subs(wanted)));
    sql.between("conversion_time", from, to);
}

/// Per day (UTC, as days since 1970) in `[from, to)`, the latest versions lacking a sub of
/// `wanted`.
fn lacking_days_sql(wanted: SubSet, from: u32, to: u32) -> Sql {
    let mut sql = Sql::default();
    sql.push(&format!(
        "SELECT toUInt32(intDiv(toUInt32(conversion_time), {DAY})) AS day, count() \
         FROM conversions FINAL WHERE "
    ));
    push_lacking(&mut sql, wanted, from, to);
    sql.push(" GROUP BY day ORDER BY day");
    sql
}

/// Writes the latest versions in `[from, to)` lacking a sub of `wanted` again, with their
/// click's subs. Every name and number in the text is ours; the range is bound. The values go
/// to the columns by position, so the expressions need no aliases (an alias equal to a column
/// it reads is a cycle to older releases). `distributed`: the tables are `Distributed`, so the
/// clicks' set of IDs is built once and sent to the shards (`GLOBAL IN`; a plain `IN` of a
/// `Distributed` table inside a distributed read is refused).
fn carry_sql(wanted: SubSet, distributed: bool, from: u32, to: u32) -> Sql {
    let columns: Vec<&str> = CONVERSION_COLUMNS.iter().map(|(name, _)| *name).collect();
    // A wanted sub the click holds short enough is carried; its bit is set only then.
    let fits = |i: usize| format!("(length(click_sub{}) <= {MAX_CARRIED_SUB})", i + 1);
    let values: Vec<String> = columns
        .iter()
        .map(|&name| match SubSet::parse([name]) {
            Ok(one) if wanted.contains(one) => {
                let i = one.indexes().next().expect("one sub");
                format!("if({}, click_sub{}, {name})", fits(i), i + 1)
            }
            _ if name == "subs_carried" => {
                let bits: Vec<String> = wanted
                    .indexes()
                    .map(|i| format!("{} * {}", fits(i), 1u16 << i))
                    .collect();
                format!("toUInt16(bitOr(subs_carried, {}))", bits.join(" + "))
            }
            _ => name.to_string(),
        })
        .collect();
    let click_subs: Vec<String> = wanted
        .indexes()
        .map(|i| format!("sub{n} AS click_sub{n}", n = i + 1))
        .collect();
    let columns = columns.join(", ");
    let mut sql = Sql::default();
    sql.push(&format!(
        "INSERT INTO conversions ({columns}) SELECT {} FROM \
         (SELECT {columns} FROM conversions FINAL WHERE ",
        values.join(", ")
    ));
    push_lacking(&mut sql, wanted, from, to);
    sql.push(&format!(
        ") AS latest ANY INNER JOIN (SELECT click_id, {} FROM clicks FINAL WHERE click_id {} \
         (SELECT click_id FROM conversions WHERE ",
        click_subs.join(", "),
        if distributed { "GLOBAL IN" } else { "IN" },
    ));
    push_lacking(&mut sql, wanted, from, to);
    sql.push(")) AS of_clicks USING (click_id)");
    sql
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::statement::Arg;

    #[test]
    fn the_copy_names_every_column_once_and_sets_only_the_wanted_bits() {
        let wanted = SubSet::parse(["sub1", "sub3"]).unwrap();
        let copy = carry_sql(wanted, false, 100, 200);
        let sql = &copy.text;
        assert!(sql.contains("WHERE click_id IN (SELECT click_id FROM conversions WHERE"));
        let distributed = carry_sql(wanted, true, 100, 200).text;
        assert!(distributed.contains("WHERE click_id GLOBAL IN (SELECT click_id"));
        let names: Vec<&str> = CONVERSION_COLUMNS.iter().map(|(n, _)| *n).collect();
        assert!(sql.starts_with(&format!(
            "INSERT INTO conversions ({}) SELECT conversion_id, click_id, ",
            names.join(", ")
        )));
        assert!(sql.contains("if((length(click_sub1) <= 255), click_sub1, sub1), sub2, "));
        assert!(sql.contains("if((length(click_sub3) <= 255), click_sub3, sub3), sub4, "));
        assert!(sql.contains(
            "toUInt16(bitOr(subs_carried, (length(click_sub1) <= 255) * 1 + \
             (length(click_sub3) <= 255) * 4))"
        ));
        assert!(sql.contains("SELECT click_id, sub1 AS click_sub1, sub3 AS click_sub3 FROM clicks"));
        assert!(!sql.contains("click_sub2"));
        assert_eq!(sql.matches("bitAnd(subs_carried, 5) != 5").count(), 2);
        assert_eq!(sql.matches('?').count(), 4, "the range, bound twice");
        let range = [Arg::Seconds(100), Arg::Seconds(200)];
        assert_eq!(copy.args, [range.clone(), range.clone()].concat());
        let days = lacking_days_sql(wanted, 100, 200);
        assert_eq!(
            days.text,
            "SELECT toUInt32(intDiv(toUInt32(conversion_time), 86400)) AS day, count() \
             FROM conversions FINAL WHERE bitAnd(subs_carried, 5) != 5 \
             AND conversion_time >= toDateTime(?) AND conversion_time < toDateTime(?) \
             GROUP BY day ORDER BY day"
        );
        assert_eq!(days.args, range);
    }
}
