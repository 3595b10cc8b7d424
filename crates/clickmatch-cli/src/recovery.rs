//! `clickmatch reprocess` and `clickmatch upload`: the operator's loop closed from the command
//! line. Both are dry runs by default (what the current configuration predicts, nothing sent);
//! `--apply` publishes the records to the postbacks topic, waits for the joiner's decisions in
//! ClickHouse (`recovered`) and prints those. `clickmatch_recovery` does the work.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clickmatch_clickhouse::{ClickHouseSettings, RecoveryReader, ReprocessFilter};
use clickmatch_config::Config;
use clickmatch_core::reason::hint_text;
use clickmatch_kafka::Publisher;
use clickmatch_recovery::{
    await_decisions, decision_times, plan_reprocess, plan_upload, publish, LineResult, Planned,
    Summary,
};

/// `clickmatch reprocess`'s options.
#[derive(Debug, clap::Args)]
pub struct ReprocessCli {
    /// Postbacks received within this long before now, e.g. 24h, 7d (default 7d).
    #[arg(long, conflicts_with_all = ["from", "to"])]
    pub since: Option<String>,
    /// Received from this UTC time on (RFC 3339, e.g. 2026-12-01T00:00:00Z).
    #[arg(long)]
    pub from: Option<String>,
    /// Received up to this UTC time (default: now).
    #[arg(long, requires = "from")]
    pub to: Option<String>,
    /// Only postbacks to this route (`global` for /postback).
    #[arg(long)]
    pub route: Option<String>,
    /// Only postbacks with this current reason (unknown_route, malformed_click_id, ...).
    #[arg(long)]
    pub reason: Option<String>,
    /// At most this many postbacks, oldest first.
    #[arg(long)]
    pub limit: Option<u64>,
    /// Send them (default: dry run).
    #[arg(long)]
    pub apply: bool,
    /// How long --apply waits for the joiner's decisions.
    #[arg(long, default_value_t = 30)]
    pub timeout_secs: u64,
    /// Overrides clickhouse.url.
    #[arg(long)]
    pub clickhouse_url: Option<String>,
}

impl ReprocessCli {
    pub fn into_args(self) -> ReprocessArgs {
        ReprocessArgs {
            since: self.since,
            from: self.from,
            to: self.to,
            route: self.route,
            reason: self.reason,
            limit: self.limit,
            apply: self.apply,
            timeout: Duration::from_secs(self.timeout_secs),
        }
    }
}

/// Which stored postbacks `reprocess` takes.
#[derive(Debug, Clone, Default)]
pub struct ReprocessArgs {
    /// `--since`: received within this long before now (default 7 days).
    pub since: Option<String>,
    /// `--from` / `--to`: RFC 3339 times (`2026-12-01T00:00:00Z`, `2026-12-01 00:00:00` UTC).
    pub from: Option<String>,
    pub to: Option<String>,
    pub route: Option<String>,
    pub reason: Option<String>,
    pub limit: Option<u64>,
    pub apply: bool,
    /// How long `--apply` waits for the joiner's decisions.
    pub timeout: Duration,
}

/// The selection `args` names: `[from, to)` in Unix seconds, route and reason.
pub fn filter(args: &ReprocessArgs, now: SystemTime) -> anyhow::Result<ReprocessFilter> {
    let seconds = |t: SystemTime| -> u32 {
        let s = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        u32::try_from(s).unwrap_or(u32::MAX)
    };
    let time = |flag: &str, text: &str| {
        humantime::parse_rfc3339_weak(text).with_context(|| {
            format!("{flag} {text:?}: expected a UTC time such as 2026-12-01T00:00:00Z")
        })
    };
    let (from, to) = match (&args.since, &args.from, &args.to) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            bail!("--since and --from/--to select the same thing: give one of them")
        }
        (_, Some(from), to) => {
            let to = to.as_deref().map(|t| time("--to", t)).transpose()?;
            (time("--from", from)?, to.unwrap_or(now))
        }
        (_, None, Some(_)) => bail!("--to needs --from"),
        (since, None, None) => {
            let since = since.as_deref().unwrap_or("7d");
            let span = humantime::parse_duration(since).with_context(|| {
                format!("--since {since:?}: expected a duration such as 24h, 7d or 2w")
            })?;
            (now.checked_sub(span).unwrap_or(UNIX_EPOCH), now)
        }
    };
    if from >= to {
        bail!("the time range is empty: --from must be before --to");
    }
    if let Some(reason) = &args.reason {
        if clickmatch_core::Reason::from_name(reason).is_none() {
            let names: Vec<&str> = clickmatch_core::Reason::ALL
                .iter()
                .map(|r| r.as_str())
                .collect();
            bail!("--reason {reason:?}: expected one of {}", names.join(", "));
        }
    }
    Ok(ReprocessFilter {
        from_s: seconds(from),
        // The last second counts whole: `--to` is inclusive of its second.
        to_s: seconds(to).saturating_add(1),
        route: args.route.clone(),
        reason: args.reason.clone(),
    })
}

/// `clickmatch reprocess`: the text to print.
pub async fn reprocess(
    config: &Config,
    settings: &ClickHouseSettings,
    args: &ReprocessArgs,
) -> anyhow::Result<String> {
    let filter = filter(args, SystemTime::now())?;
    let reader = RecoveryReader::new(settings)?;
    let planned = plan_reprocess(&reader, &config.account, &filter, args.limit).await?;
    let mut out = format!(
        "reprocess: {} unattributed postback(s) received {} to {} UTC, route {}, reason {}\n",
        planned.len(),
        humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(filter.from_s.into())),
        humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(filter.to_s.into())),
        filter.route.as_deref().unwrap_or("any"),
        filter.reason.as_deref().unwrap_or("any"),
    );
    if planned.is_empty() {
        out.push_str("nothing to reprocess\n");
        return Ok(out);
    }
    let results = run(config, &reader, &planned, args.apply, args.timeout).await?;
    out.push_str(&Summary::of(&planned, &results).render());
    out.push_str(&footer(&results, args.apply));
    Ok(out)
}

/// `clickmatch upload`: the text to print, and whether every line was (or would be) attributed.
pub async fn upload(
    config: &Config,
    settings: &ClickHouseSettings,
    file: &Path,
    route: Option<&str>,
    apply: bool,
    timeout: Duration,
) -> anyhow::Result<(String, bool)> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let lines = clickmatch_import::parse_conversions(&bytes, &file.display().to_string())
        .map_err(|e| anyhow::anyhow!("refused, nothing uploaded: {e}"))?;
    let reader = RecoveryReader::new(settings)?;
    let planned = plan_upload(&reader, &config.account, route, &lines).await?;
    let results = run(config, &reader, &planned, apply, timeout).await?;
    let mut out = String::new();
    for result in &results {
        out.push_str(&line_text(result));
    }
    out.push_str(&Summary::of(&planned, &results).render());
    out.push_str(&footer(&results, apply));
    let all_attributed = results.iter().all(|r| {
        matches!(
            r.result.as_str(),
            "attributed" | "status_update" | "unchanged"
        )
    });
    Ok((out, all_attributed))
}

/// Predicts, or publishes and reads the decisions back.
async fn run(
    config: &Config,
    reader: &RecoveryReader,
    planned: &[Planned],
    apply: bool,
    timeout: Duration,
) -> anyhow::Result<Vec<LineResult>> {
    if !apply {
        return Ok(planned.iter().map(LineResult::predicted).collect());
    }
    let ids: Vec<String> = planned
        .iter()
        .map(|p| p.record.postback_id.clone())
        .collect();
    let before = decision_times(reader, &ids).await?;
    let publisher = Publisher::new(&config.kafka.bootstrap_servers, &config.kafka.properties)
        .context("kafka producer")?;
    publish(&publisher, &config.kafka.postbacks_topic, planned).await?;
    let decided = await_decisions(reader, &ids, &before, timeout).await?;
    Ok(planned
        .iter()
        .map(|p| LineResult::decided(p, decided.get(&p.record.postback_id)))
        .collect())
}

fn line_text(result: &LineResult) -> String {
    let line = result.line.unwrap_or_default();
    let what = if result.decided { "" } else { " (predicted)" };
    match result.result.as_str() {
        "unattributed" => format!(
            "line {line}: unattributed{what}: {} ({}): {}\n",
            result.reason,
            result.hint,
            hint_text(&result.hint)
        ),
        "pending" => format!("line {line}: pending: published, not decided yet\n"),
        other => format!(
            "line {line}: {other}{what}, conversion {}\n",
            result.conversion_id
        ),
    }
}

fn footer(results: &[LineResult], apply: bool) -> String {
    if !apply {
        return "dry run: nothing was sent. Predicted with the current configuration against \
                the clicks and conversions in ClickHouse; the joiner decides (a click still \
                arriving, or another postback in between, can change it). --apply sends them.\n"
            .to_string();
    }
    let pending: Vec<&str> = results
        .iter()
        .filter(|r| !r.decided)
        .map(|r| r.postback_id.as_str())
        .collect();
    if pending.is_empty() {
        return "applied: every record decided by the joiner (above).\n".to_string();
    }
    format!(
        "applied; {} record(s) not decided within the wait (joiner lagging or stopped?). Check \
         later: SELECT postback_id, outcome, reason, hint FROM recovered FINAL WHERE \
         postback_id IN ('{}'), or apply again (it changes nothing that was decided).\n",
        pending.len(),
        pending
            .iter()
            .take(10)
            .copied()
            .collect::<Vec<_>>()
            .join("', '")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(s)
    }

    #[test]
    fn time_ranges_from_since_or_from_to() {
        let now = at(1_764_900_000);
        let args = ReprocessArgs::default();
        let f = filter(&args, now).unwrap();
        assert_eq!(
            (f.from_s, f.to_s),
            (1_764_900_000 - 7 * 86_400, 1_764_900_001)
        );
        let args = ReprocessArgs {
            since: Some("2h".into()),
            route: Some("sale2".into()),
            reason: Some("unknown_route".into()),
            ..ReprocessArgs::default()
        };
        let f = filter(&args, now).unwrap();
        assert_eq!(f.from_s, 1_764_900_000 - 7_200);
        assert_eq!(f.route.as_deref(), Some("sale2"));
        let args = ReprocessArgs {
            from: Some("2025-12-01T00:00:00Z".into()),
            to: Some("2025-12-02 00:00:00".into()),
            ..ReprocessArgs::default()
        };
        let f = filter(&args, now).unwrap();
        assert_eq!((f.from_s, f.to_s), (1_764_547_200, 1_764_633_601));

        for (bad, says) in [
            (
                ReprocessArgs {
                    since: Some("soon".into()),
                    ..Default::default()
                },
                "--since",
            ),
            (
                ReprocessArgs {
                    from: Some("yesterday".into()),
                    ..Default::default()
                },
                "--from",
            ),
            (
                ReprocessArgs {
                    to: Some("2025-12-01T00:00:00Z".into()),
                    ..Default::default()
                },
                "--to needs --from",
            ),
            (
                ReprocessArgs {
                    reason: Some("nope".into()),
                    ..Default::default()
                },
                "expected one of unauthorized",
            ),
            (
                ReprocessArgs {
                    since: Some("1d".into()),
                    from: Some("2025-12-01T00:00:00Z".into()),
                    ..Default::default()
                },
                "give one",
            ),
            (
                ReprocessArgs {
                    from: Some("2025-12-02T00:00:00Z".into()),
                    to: Some("2025-12-01T00:00:00Z".into()),
                    ..Default::default()
                },
                "empty",
            ),
        ] {
            let error = filter(&bad, now).unwrap_err().to_string();
            assert!(error.contains(says), "{error}");
        }
    }
}
