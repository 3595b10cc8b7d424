//! What the command line accepts: the commands and their options (clap).

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use clickmatch_cli::report;
use clickmatch_testbed::local_server::Engine;

/// clickmatch attributes ad conversions to clicks: ingest records clicks and raw postbacks into
/// Kafka, the joiner matches them within each offer's attribution window and writes attributed
/// and unattributed conversions (with the precise reason) to ClickHouse.
///
/// Configuration: one TOML file (--config or CLICKMATCH_CONFIG; see config/demo.toml) plus
/// CLICKMATCH_<SECTION>_<KEY> environment overrides, e.g. CLICKMATCH_CLICKHOUSE_URL.
/// Enrichment: [enrichment] geoip_db and asn_db (MaxMind-format .mmdb files you supply, replaced
/// in place without a restart) and user_agent give each click country, region, city, ASN,
/// device type, OS, browser and a bot flag (CLICKMATCH_ENRICHMENT_GEOIP_DB, …).
/// Logs: CLICKMATCH_LOG (e.g. `info`, `clickmatch_joiner=debug`).
/// Hot reload: `ingest`, `join`, `outbound` and `dev --serve --config FILE` re-read the file on
/// SIGHUP or when it changes; an invalid file is refused (logged) and the running one stays.
#[derive(Debug, Parser)]
#[command(name = "clickmatch", version, about, long_about)]
pub struct Cli {
    /// Configuration file (TOML).
    #[arg(long, global = true, env = "CLICKMATCH_CONFIG")]
    pub(super) config: Option<PathBuf>,
    #[command(subcommand)]
    pub(super) command: Command,
}

#[derive(Debug, Subcommand)]
pub(super) enum Command {
    /// The embedded default: in-process broker, local ClickHouse, ingest and joiner in one
    /// process, demo traffic through real HTTP, then a report read back from ClickHouse. When
    /// [enrichment] names no database, dev writes demo .mmdb files into --data-dir/enrichment,
    /// trusts X-Forwarded-For from loopback, and its clicks come from five countries on
    /// desktops, phones and tablets.
    Dev(DevArgs),
    /// Serve the HTTP ingest (clicks, postbacks, metrics).
    Ingest {
        /// Listen address; overrides ingest.listen.
        #[arg(long)]
        listen: Option<String>,
    },
    /// Run the stream joiner (consumer group member) writing to ClickHouse.
    Join {
        /// Also serve /metrics and /healthz on this address.
        #[arg(long)]
        metrics_listen: Option<String>,
    },
    /// Run the outbound dispatcher: fires each attributed conversion's traffic-source postback
    /// (the campaign's postback_url) from the outbound topic, with retries, backoff and an
    /// Idempotency-Key header, recording every attempt in ClickHouse (outbound_deliveries).
    /// SIGHUP (or a change of the file) reloads campaigns, as for ingest and join.
    Outbound {
        /// Also serve /metrics and /healthz on this address.
        #[arg(long)]
        metrics_listen: Option<String>,
    },
    /// Create or upgrade the ClickHouse database and tables (idempotent), and record the
    /// account currency and rate age ([account] currency, max_rate_age_days) for the views.
    Migrate {
        /// Overrides clickhouse.url.
        #[arg(long)]
        clickhouse_url: Option<String>,
    },
    /// Exchange rates: `rates import FILE` loads the ECB's euro reference rates.
    Rates {
        #[command(subcommand)]
        command: RatesCommand,
    },
    /// Spend that is not per click: `costs import FILE.csv`.
    Costs {
        #[command(subcommand)]
        command: CostsCommand,
    },
    /// Compare a network's conversion export (CSV) with clickmatch's conversions.
    ///
    /// Conversions are matched by transaction ID, else by click ID. Lists matched conversions
    /// whose payout or status differ, conversions only in the export (with what clickmatch did with their click ID:
    /// unattributed and why, click recorded but never posted back, or never received) and
    /// conversions only here. Payouts are compared in the export's currency against the payout
    /// as the postback sent it. Exit status: 0 when the discrepancies (differences + only in
    /// the network + only here) are at most --max-differences, 1 when more (for cron), 2 when
    /// the comparison could not be made (bad option or export, ClickHouse unreachable).
    Reconcile(ReconcileArgs),
    /// Decide stored unattributed postbacks again under the current configuration.
    ///
    /// After a route was added, an alias fixed, foreign IDs accepted (reload the joiner
    /// first). A dry run by default: a before → after table by reason and hint, predicted against the clicks
    /// and conversions in ClickHouse. --apply sends them through the postbacks topic with their
    /// original postback ID and receive time; the joiner decides them like any postback (the
    /// window from the original time, dedup against existing conversions; applying twice
    /// changes nothing) and the table shows its decisions. Attributed ones leave
    /// unattributed_current and the figures; unattributed keeps the history.
    Reprocess(clickmatch_cli::recovery::ReprocessCli),
    /// Send conversions a network reported but never posted back, from a CSV file.
    ///
    /// CSV columns click_id, payout, currency, txid, event, status, time (click_id and time
    /// required; time as 2026-12-04 13:05:00 UTC, RFC 3339 or Unix seconds), through the same
    /// path as postbacks. A dry run by default with a result per line; --apply sends them
    /// and prints the joiner's decision per line. A bad line refuses the whole file
    /// (file:line:column named): nothing partial is sent. Uploading a line again changes
    /// nothing. Exit status 1 when a line is not attributed.
    Upload {
        /// The CSV file.
        file: PathBuf,
        /// Route whose parameters and rules apply (`global` for /postback, the default).
        #[arg(long)]
        route: Option<String>,
        /// Send the conversions (default: dry run).
        #[arg(long)]
        apply: bool,
        /// How long --apply waits for the joiner's decisions.
        #[arg(long, default_value_t = 30)]
        timeout_secs: u64,
        /// Overrides clickhouse.url.
        #[arg(long)]
        clickhouse_url: Option<String>,
    },
    /// A report: clicks, conversions, revenue, cost, profit, ROI, CR, EPC and unattributed
    /// postbacks grouped by any dimensions, in any IANA time zone, read from the base tables
    /// (docs/reports.md). Example: `clickmatch report --group-by campaign,sub1,country --from
    /// 2026-12-01 --to 2026-12-07 --tz Europe/Berlin --filter country=DE --sort -revenue`
    Report(ReportArgs),
    /// Give conversions written before they carried subs their click's subs.
    ///
    /// Conversions written before migration 0011, or before a sub was added to [joiner]
    /// conversion_subs, lack it: a report using that sub over their range reads every click
    /// of it instead of the conversions alone. This writes each one's latest version again
    /// with its click's subs (same version: it replaces the original; no figure changes), day
    /// by day in UTC (CLICKMATCH_LOG=info shows each day). A dry run by default (counts only);
    /// --apply writes. Safe to run again and beside a running joiner.
    CarrySubs {
        /// First day (UTC, YYYY-MM-DD), inclusive. Default: the first conversion.
        #[arg(long)]
        from: Option<String>,
        /// Last day (UTC, YYYY-MM-DD), exclusive. Default: after the last conversion.
        #[arg(long)]
        to: Option<String>,
        /// Subs to carry, e.g. `sub1,sub2`. Default: [joiner] conversion_subs.
        #[arg(long)]
        subs: Option<String>,
        /// Write the copies (default: dry run).
        #[arg(long)]
        apply: bool,
        /// Overrides clickhouse.url.
        #[arg(long)]
        clickhouse_url: Option<String>,
    },
    /// A standalone local Kafka-protocol broker (librdkafka's mock cluster) on a fixed port,
    /// with clickmatch's topics created, for multi-process local runs and tests. SIGUSR1 takes
    /// it down (connections closed and refused), SIGUSR2 brings it back.
    Broker {
        #[arg(long, default_value = "127.0.0.1:9092")]
        listen: String,
        /// Partitions of each topic (both topics get the same count).
        #[arg(long, default_value_t = 4)]
        partitions: i32,
    },
    /// Run a ClickHouse server in a folder of its own on loopback until interrupted (used by
    /// the test suite and `dev`).
    LocalClickhouse {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 8123)]
        http_port: u16,
        #[arg(long, default_value_t = 9000)]
        tcp_port: u16,
        /// `server`: a clickhouse-server binary (Debian's 18.16). `chdb`: ClickHouse 26.9, the
        /// clickhouse-local of PyPI's chdb-core (scripts/test installs the pinned version) run
        /// by python3, for testing on a current release; no Keeper.
        #[arg(long, default_value = "server")]
        engine: Engine,
    },
    /// Print the postback URLs to paste into a network: the global one and each route's, with
    /// clickmatch's generic macros; with --network, the exact URL for that network's dashboard
    /// (its own macros in the route's parameters; notes on stderr).
    PostbackUrl {
        /// Only this route (`global` for /postback); with --network: this route, else global.
        #[arg(long)]
        route: Option<String>,
        /// Public base URL; overrides ingest.public_url.
        #[arg(long)]
        base_url: Option<String>,
        /// Network preset: tune (hasoffers), cake, everflow, affise, impact, adcombo,
        /// maxbounty, awin, admitad, clickbank, voluum, redtrack, keitaro, binom, prosper202,
        /// clickflare.
        #[arg(long)]
        network: Option<String>,
    },
    /// Print an offer link with clickmatch's {click_id} placed in the sub-parameter the network
    /// echoes back (aff_sub for TUNE, s2 for CAKE, ...): the URL for a campaign.
    OfferUrl {
        /// Network preset (see postback-url --help).
        #[arg(long)]
        network: String,
        /// The offer link from the network.
        #[arg(long)]
        url: String,
    },
    /// Fire one test click (marked is_test) and one postback, exactly as the offer's network
    /// would, through a running deployment; report where it landed in ClickHouse, or why not.
    /// Exit status 0 only when the conversion landed attributed as expected.
    TestConversion {
        /// The offer to test (a campaign for it makes the click).
        #[arg(long)]
        offer: String,
        /// Route to post to (`global` for /postback); default: the offer's route, else global.
        #[arg(long)]
        route: Option<String>,
        /// Network preset; default: the offer's `network`.
        #[arg(long)]
        network: Option<String>,
        /// Ingest base URL; overrides ingest.public_url.
        #[arg(long)]
        ingest_url: Option<String>,
        /// Overrides clickhouse.url.
        #[arg(long)]
        clickhouse_url: Option<String>,
        /// How long to wait for the row in ClickHouse.
        #[arg(long, default_value_t = 30)]
        timeout_secs: u64,
    },
}

#[derive(Debug, Subcommand)]
pub(super) enum RatesCommand {
    /// Load an ECB euro reference-rate file into exchange_rates: eurofxref-daily.xml,
    /// eurofxref-hist.xml, eurofxref-hist-90d.xml, eurofxref.csv or eurofxref-hist.csv.
    /// Idempotent; a bad line refuses the whole file (file:line:column named).
    Import {
        file: PathBuf,
        /// Overrides clickhouse.url.
        #[arg(long)]
        clickhouse_url: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub(super) enum CostsCommand {
    /// Load a cost CSV (columns `date` or `hour`, `campaign`, `amount`, `currency`, optional
    /// `source` and `sub1`…`sub10`) into costs. Importing a campaign and period again replaces
    /// the earlier import; a bad line refuses the whole file (file:line:column named).
    Import {
        file: PathBuf,
        /// Overrides clickhouse.url.
        #[arg(long)]
        clickhouse_url: Option<String>,
    },
}

#[derive(Debug, clap::Args)]
pub(super) struct ReconcileArgs {
    /// The network's conversion export, CSV with a header line.
    #[arg(long, value_name = "FILE.csv")]
    pub(super) report: PathBuf,
    /// The export's network: tune (hasoffers), everflow or cake, whose export columns are
    /// known (README, "Reconciliation"). Without it: clickmatch's own columns click_id, txid,
    /// payout, currency, status, time, event.
    #[arg(long)]
    pub(super) network: Option<String>,
    /// Columns of the export, over the network's: FIELD=COLUMN,… with FIELD one of click_id,
    /// txid, payout, currency, status, time, event, e.g. click_id=aff_sub2,payout=Revenue.
    #[arg(long, value_name = "FIELD=COLUMN,…")]
    pub(super) columns: Option<String>,
    /// Start of the period whose conversions here are compared (default: the export's first
    /// conversion time); a time in --tz, or with an offset.
    #[arg(long)]
    pub(super) from: Option<String>,
    /// End of the period (default: the export's last conversion time plus an hour).
    #[arg(long)]
    pub(super) to: Option<String>,
    /// Time zone of the export's times without an offset (the account's zone the network
    /// exported in), an IANA name.
    #[arg(long, default_value = "UTC")]
    pub(super) tz: String,
    /// Only these offers' conversions can be "only here" (repeatable); default: the offers the
    /// configuration gives --network, else every offer.
    #[arg(long = "offer", value_name = "OFFER")]
    pub(super) offers: Vec<String>,
    /// Payouts further apart than this, in the export's currency, differ.
    #[arg(long, default_value = "0.01")]
    pub(super) tolerance: rust_decimal::Decimal,
    /// Discrepancies allowed before the exit status is 1.
    #[arg(long, default_value_t = 0)]
    pub(super) max_differences: usize,
    /// `table` (default) or `json`: {"matched", "differences", "only_network", "only_here", …}.
    #[arg(long, value_enum, default_value_t = ReconcileFormat::Table)]
    pub(super) format: ReconcileFormat,
    /// Overrides clickhouse.url.
    #[arg(long)]
    pub(super) clickhouse_url: Option<String>,
}

#[derive(Debug, clap::Args)]
pub(super) struct ReportArgs {
    /// Dimensions, comma-separated: campaign, source, offer, network (the offer's, from the
    /// configuration), route, event, status, sub1…sub10, country, device_type, os, browser,
    /// hour, day (at most 6).
    #[arg(long, default_value = "campaign")]
    pub(super) group_by: String,
    /// Start (inclusive): a day YYYY-MM-DD in --tz, or an RFC 3339 time. Default: the start of
    /// the day six days ago (seven days with today).
    #[arg(long)]
    pub(super) from: Option<String>,
    /// End (exclusive): a day YYYY-MM-DD in --tz counts whole, or an RFC 3339 time. Default:
    /// now. At most 93 days after --from.
    #[arg(long)]
    pub(super) to: Option<String>,
    /// IANA time zone of the days and hours (UTC, Europe/Berlin, Asia/Kolkata, …).
    #[arg(long, default_value = "UTC")]
    pub(super) tz: String,
    /// DIMENSION=VALUE: only rows with that value (exact; an empty value matches rows without
    /// one). Repeat it: values of one dimension match any, different dimensions all.
    #[arg(long, value_name = "DIMENSION=VALUE")]
    pub(super) filter: Vec<String>,
    /// Column to sort by, `-` first for descending: a figure (clicks, conversions, revenue,
    /// cost, profit, roi, cr, epc, unattributed, unvalued) or a grouped dimension.
    #[arg(long, default_value = "-revenue", allow_hyphen_values = true)]
    pub(super) sort: String,
    /// At most this many rows (1 to 10000); the totals cover every row.
    #[arg(long, default_value_t = 100)]
    pub(super) limit: usize,
    #[arg(long, value_enum, default_value = "table")]
    pub(super) format: report::Format,
    /// Overrides clickhouse.url.
    #[arg(long)]
    pub(super) clickhouse_url: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum ReconcileFormat {
    Table,
    Json,
}

#[derive(Debug, clap::Args)]
pub(super) struct DevArgs {
    /// Keep the pipeline running after the report, for manual tries (Ctrl-C stops it).
    #[arg(long)]
    pub(super) serve: bool,
    /// HTTP address of ingest.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub(super) listen: String,
    /// ClickHouse to use; when nothing answers there and clickhouse-server is installed, dev
    /// starts its own on that port in --data-dir.
    #[arg(long, default_value = "http://127.0.0.1:8123")]
    pub(super) clickhouse_url: String,
    /// Folder for the ClickHouse server dev starts and the demo enrichment databases.
    #[arg(long, default_value = ".clickmatch-dev")]
    pub(super) data_dir: PathBuf,
    /// Skip the demo traffic (with --serve: an empty pipeline to try by hand).
    #[arg(long)]
    pub(super) no_demo: bool,
}

impl Cli {
    pub fn default_log_filter(&self) -> &'static str {
        match self.command {
            Command::Dev(_)
            | Command::PostbackUrl { .. }
            | Command::OfferUrl { .. }
            | Command::TestConversion { .. }
            | Command::Reconcile(_)
            | Command::Reprocess(_)
            | Command::Upload { .. }
            | Command::CarrySubs { .. } => "warn",
            _ => "info",
        }
    }
}
