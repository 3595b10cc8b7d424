//! ClickHouse sink throughput against `clickhouse-client` inserting the same rows from files.
//!
//! The rows come from the benchmark traffic joined in memory by the core join (clicks plus the
//! conversions and unattributed rows their postbacks end in), so both sides insert exactly what
//! the joiner would write.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clickmatch_clickhouse::{
    ClickHouseSettings, ClickHouseSink, ClickRow, ConversionRow, UnattributedRow,
};
use clickmatch_core::join::{MemoryStore, PartitionJoin};
use clickmatch_core::records::{ClickRecord, Outcome};
use serde::{Deserialize, Serialize};

use crate::traffic::{Record, Traffic};

/// What the joiner hands its sink for benchmark traffic: the clicks and the outcomes their
/// postbacks end in, with the insert time the rows' `latency_ms` is measured against.
pub struct Batch {
    pub clicks: Vec<ClickRecord>,
    pub outcomes: Vec<Outcome>,
    pub now_ms: u64,
}

impl Batch {
    /// Rows the batch writes.
    pub fn len(&self) -> usize {
        self.clicks.len() + self.outcomes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The same rows, owned, for the reference's files.
    pub fn rows(&self) -> Rows {
        let mut rows = Rows {
            clicks: self.clicks.iter().map(ClickRow::new).collect(),
            conversions: Vec::new(),
            unattributed: Vec::new(),
        };
        for outcome in &self.outcomes {
            match outcome {
                Outcome::Attributed(c) => rows.conversions.push(ConversionRow::new(c, self.now_ms)),
                Outcome::Unattributed(u) => {
                    rows.unattributed.push(UnattributedRow::new(u, self.now_ms))
                }
            }
        }
        rows
    }
}

/// Rows of the three tables.
pub struct Rows {
    pub clicks: Vec<ClickRow>,
    pub conversions: Vec<ConversionRow>,
    pub unattributed: Vec<UnattributedRow>,
}

/// The batch `clicks` clicks of benchmark traffic (one postback per two clicks) end in.
pub fn batch(clicks: u64, seed: u64) -> anyhow::Result<Batch> {
    let config = Traffic::bench_config();
    let mut traffic = Traffic::new(&config, seed);
    let now = crate::unix_ms();
    let plan = traffic.kafka_plan(clicks, 0.5, now - 3_600_000, 3_000_000);
    let account = &config.account;
    let mut join = PartitionJoin::new(MemoryStore::default());
    let mut batch = Batch {
        clicks: Vec::new(),
        outcomes: Vec::new(),
        now_ms: now,
    };
    for (position, record) in plan.into_iter().enumerate() {
        match record {
            Record::Click(click) => {
                let expired = join.on_click(account, &click)?;
                batch.outcomes.extend(expired.into_iter().map(|(_, o)| o));
                batch.clicks.push(click);
            }
            Record::Postback(postback, _) => {
                let received = postback.received_ms;
                if let Some(o) = join.on_postback(account, postback, position as i64, received)? {
                    batch.outcomes.push(o);
                }
            }
        }
    }
    let rest = join.advance(account, true, now + 3_600_000)?;
    batch.outcomes.extend(rest.into_iter().map(|(_, o)| o));
    Ok(batch)
}

/// Consolidates the heap after [`batch`] freed its join state (millions of small blocks), so
/// that glibc does not do it (0.5-0.8 s) inside the first timed insert's first large allocation.
pub fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only reorganises the allocator's free lists; no pointer is involved.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct InsertResult {
    pub rows: usize,
    pub seconds: f64,
    pub rows_per_s: f64,
    pub batches: usize,
}

/// Writes `batch` through the joiner's sink, as the joiner does (`write_at`, rows built while
/// they are serialized), in batches of `batch_rows` rows (clicks and outcomes in proportion),
/// one batch after the other.
pub async fn write_with_sink(
    settings: &ClickHouseSettings,
    batch: &Batch,
    batch_rows: usize,
) -> anyhow::Result<InsertResult> {
    let sink = ClickHouseSink::new(settings)?;
    let total = batch.len();
    let batches = total.div_ceil(batch_rows.max(1)).max(1);
    let cut = |len: usize, b: usize| (len * b / batches)..(len * (b + 1) / batches);
    let started = Instant::now();
    for b in 0..batches {
        let clicks = &batch.clicks[cut(batch.clicks.len(), b)];
        let outcomes = &batch.outcomes[cut(batch.outcomes.len(), b)];
        let written = sink.write_at(clicks, outcomes, batch.now_ms).await?;
        anyhow::ensure!(written.total() == clicks.len() + outcomes.len());
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(InsertResult {
        rows: total,
        seconds,
        rows_per_s: total as f64 / seconds,
        batches,
    })
}

/// One TSV value.
fn tsv(value: &serde_json::Value, datetime: bool, decimal: bool, out: &mut String) {
    match value {
        serde_json::Value::String(s) => {
            for ch in s.chars() {
                match ch {
                    '\t' => out.push_str("\\t"),
                    '\n' => out.push_str("\\n"),
                    '\\' => out.push_str("\\\\"),
                    _ => out.push(ch),
                }
            }
        }
        serde_json::Value::Bool(b) => out.push(if *b { '1' } else { '0' }),
        serde_json::Value::Number(n) if datetime => {
            let secs = n.as_i64().unwrap_or(0);
            out.push_str(&datetime_text(secs));
        }
        serde_json::Value::Number(n) if decimal => {
            let m = n.as_i64().unwrap_or(0);
            let sign = if m < 0 { "-" } else { "" };
            out.push_str(&format!(
                "{sign}{}.{:06}",
                m.unsigned_abs() / 1_000_000,
                m.unsigned_abs() % 1_000_000
            ));
        }
        other => out.push_str(&other.to_string()),
    }
}

/// `YYYY-MM-DD hh:mm:ss` in UTC (the server's time zone here) for Unix seconds.
pub fn datetime_text(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Writes rows as TSV (columns in the returned order) to `path`.
fn write_tsv<T: Serialize>(rows: &[T], path: &Path) -> anyhow::Result<Vec<String>> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut columns: Vec<String> = Vec::new();
    let mut line = String::new();
    for row in rows {
        let value = serde_json::to_value(row)?;
        let object = value.as_object().expect("rows are structs");
        if columns.is_empty() {
            columns = object.keys().cloned().collect();
        }
        line.clear();
        for (i, column) in columns.iter().enumerate() {
            if i > 0 {
                line.push('\t');
            }
            let datetime = column.ends_with("_time");
            let decimal = column == "payout";
            tsv(&object[column], datetime, decimal, &mut line);
        }
        line.push('\n');
        file.write_all(line.as_bytes())?;
    }
    file.flush()?;
    Ok(columns)
}

/// A file of one table's rows for clickhouse-client.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableFile {
    pub table: String,
    pub columns: Vec<String>,
    pub path: PathBuf,
    pub rows: usize,
}

/// Writes the rows as one TSV file per table into `dir`.
pub fn write_files(batch: &Batch, dir: &Path) -> anyhow::Result<Vec<TableFile>> {
    std::fs::create_dir_all(dir)?;
    let rows = batch.rows();
    let mut files = Vec::new();
    let mut add = |table: &str, columns: Vec<String>, n: usize| {
        if n > 0 {
            files.push(TableFile {
                table: table.into(),
                columns,
                path: dir.join(format!("{table}.tsv")),
                rows: n,
            });
        }
    };
    let c = write_tsv(&rows.clicks, &dir.join("clicks.tsv"))?;
    add("clicks", c, rows.clicks.len());
    let c = write_tsv(&rows.conversions, &dir.join("conversions.tsv"))?;
    add("conversions", c, rows.conversions.len());
    let c = write_tsv(&rows.unattributed, &dir.join("unattributed.tsv"))?;
    add("unattributed", c, rows.unattributed.len());
    Ok(files)
}

/// `clickhouse-client` inserting each file, one process per table at the same time (the sink
/// inserts the three tables concurrently too), pinned to `cpus`.
pub fn insert_with_client(
    tcp_port: u16,
    database: &str,
    files: &[TableFile],
    cpus: Option<&str>,
) -> anyhow::Result<InsertResult> {
    let started = Instant::now();
    let mut children = Vec::new();
    for file in files {
        let query = format!(
            "INSERT INTO {database}.{} ({}) FORMAT TabSeparated",
            file.table,
            file.columns.join(", ")
        );
        let mut command = crate::procs::command("clickhouse-client", cpus);
        command
            .arg("--host")
            .arg("127.0.0.1")
            .arg("--port")
            .arg(tcp_port.to_string())
            .arg("--query")
            .arg(query)
            .stdin(std::fs::File::open(&file.path)?)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        children.push(command.spawn()?);
    }
    for child in children {
        let out = child.wait_with_output()?;
        anyhow::ensure!(
            out.status.success(),
            "clickhouse-client failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let seconds = started.elapsed().as_secs_f64();
    let rows: usize = files.iter().map(|f| f.rows).sum();
    Ok(InsertResult {
        rows,
        seconds,
        rows_per_s: rows as f64 / seconds,
        batches: files.len(),
    })
}

/// Rows in the three tables of the settings' database.
pub async fn count_rows(settings: &ClickHouseSettings) -> anyhow::Result<u64> {
    let client = settings.client();
    let mut total = 0;
    for table in ["clicks", "conversions", "unattributed"] {
        let n: u64 = client
            .query(&format!("SELECT count() FROM {table}"))
            .fetch_one()
            .await?;
        total += n;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_and_rows() {
        assert_eq!(datetime_text(0), "1970-01-01 00:00:00");
        assert_eq!(datetime_text(1_795_000_000), "2026-11-18 11:06:40");
        let batch = batch(2000, 3).unwrap();
        let rows = batch.rows();
        assert_eq!(rows.clicks.len(), 2000);
        assert!(rows.conversions.len() > 800, "{}", rows.conversions.len());
        assert!(!rows.unattributed.is_empty());
        assert_eq!(
            rows.clicks.len() + rows.conversions.len() + rows.unattributed.len(),
            batch.len()
        );
        let dir = tempfile::tempdir().unwrap();
        let files = write_files(&batch, dir.path()).unwrap();
        assert_eq!(files.len(), 3);
        let text = std::fs::read_to_string(&files[1].path).unwrap();
        assert!(text.lines().count() == rows.conversions.len());
    }
}
