//! The command line's definitions (clap). Only `cli` knows clap: the library's types
//! stay plain data, converted from these.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::report::diff::Thresholds;
use crate::server::BackendKind;

#[derive(Parser, Debug)]
#[command(name = "goneaway", version, about = "Chaos harness for MySQL client connection pools", long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// List the built-in suites: name, expected verdict, what goes wrong.
    List,
    /// Compare saved reports: what changed (exit 1) and what drifted beyond noise.
    ///
    /// OLD and NEW are each a report.json, a report directory, a suite's directory (its
    /// `latest`), or a whole report directory (suites are then matched by name).
    Diff {
        /// The earlier report(s).
        old: PathBuf,
        /// The later report(s).
        new: PathBuf,
        /// Print the diff as JSON.
        #[arg(long)]
        json: bool,
        /// Exit 1 also when a measured figure drifted beyond the thresholds.
        #[arg(long)]
        fail_on_drift: bool,
        /// Also write an HTML page: the diff, then each suite's old and new timelines
        /// side by side on one time axis.
        #[arg(long, value_name = "PATH")]
        html: Option<PathBuf>,
        #[command(flatten)]
        thresholds: ThresholdArgs,
    },
    /// Draw a saved report's `report.html` again, from its `report.json` and
    /// `timeline.json` (nothing is re-run).
    Render {
        /// A report directory or its report.json, a suite's directory (its `latest`), or a
        /// whole report directory (each suite's newest report).
        report: PathBuf,
        /// Write the page here instead of beside the report (one report only).
        #[arg(long, value_name = "PATH")]
        out: Option<PathBuf>,
    },
    /// Run suites (built-in names or .toml files) and print checked reports.
    Run {
        /// Suite names or paths; see `goneaway list`.
        suites: Vec<String>,
        /// Run every built-in suite.
        #[arg(long, conflicts_with = "suites")]
        all: bool,
        /// Seed for the schedule and the workload; printed with every report.
        #[arg(long)]
        seed: Option<u64>,
        /// Run on another backend than the suite names.
        #[arg(long, value_parser = parse_backend)]
        backend: Option<BackendKind>,
        /// Print the report as JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Also write a JUnit XML report (one testcase per suite) for CI.
        #[arg(long, value_name = "PATH")]
        junit: Option<PathBuf>,
        /// Also write the summary as a Markdown table (it is appended to
        /// `GITHUB_STEP_SUMMARY` too whenever that is set).
        #[arg(long, value_name = "PATH")]
        markdown: Option<PathBuf>,
        /// With several suites, print every full report, not only those whose
        /// expectations were not met.
        #[arg(long, short = 'v')]
        verbose: bool,
        /// Where reports are saved (`<dir>/<suite>/latest` points at the newest).
        #[arg(long, env = "GONEAWAY_REPORT_DIR", default_value = "goneaway-reports")]
        report_dir: PathBuf,
        /// Do not save reports.
        #[arg(long)]
        no_save: bool,
        /// How many suites run at once (each has its own server; most of a run is waiting).
        #[arg(long, short = 'j', default_value_t = 8)]
        jobs: usize,
    },
    /// Run one fixed battery of faults against every client (its library defaults and its
    /// recommended configuration) and print the table: clients as rows, faults as columns.
    Contract(ContractArgs),
    /// Measure the harness itself: server spawn -> ready with the cached datadir vs a
    /// fresh install, printed as a ratio.
    Bench {
        /// Servers started each way; the median is reported.
        #[arg(long, default_value_t = 5)]
        trials: usize,
    },
    /// Remove containers, networks and temp dirs left by goneaway runs whose process is
    /// gone, and put back the settings and tables they changed on servers you own.
    Gc,
    /// Serve the Toxiproxy HTTP API (and its proxies) for anyone's tests, until Ctrl-C.
    Proxy {
        /// Address of the HTTP API; proxies listen where their definitions say.
        #[arg(long, default_value = "127.0.0.1:8474")]
        listen: std::net::SocketAddr,
    },
    /// Generate fault schedules around a base suite, run each, and shrink what breaks
    /// its expectations to a minimal suite file.
    Explore(crate::explore::command::ExploreArgs),
    /// Check suite files without running them; prints the lint.
    Check {
        /// Suite paths or built-in names.
        #[arg(required = true)]
        suites: Vec<String>,
    },
}

/// `goneaway contract`'s flags.
#[derive(Args, Debug)]
pub struct ContractArgs {
    /// Only these clients (repeat or comma-separate); default: all six.
    #[arg(long = "client", value_delimiter = ',')]
    pub clients: Vec<String>,
    /// Only these configurations: defaults, recommended.
    #[arg(long = "config", value_delimiter = ',')]
    pub configs: Vec<String>,
    /// Only these faults (columns).
    #[arg(long = "fault", value_delimiter = ',')]
    pub faults: Vec<String>,
    /// Replace a client's recommended configuration with your own file, holding only
    /// [client], [client.config] and [pool]: CLIENT=PATH (repeatable).
    #[arg(long, value_name = "CLIENT=PATH")]
    pub recommended: Vec<String>,
    /// Print the table as JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also write the table as Markdown (appended to `GITHUB_STEP_SUMMARY` too when set).
    #[arg(long, value_name = "PATH")]
    pub markdown: Option<PathBuf>,
    /// Where cells and their reports are saved.
    #[arg(
        long,
        env = "GONEAWAY_CONTRACT_DIR",
        default_value = "goneaway-reports/contract"
    )]
    pub dir: PathBuf,
    /// Reuse saved cells whose battery text, configuration and goneaway version are
    /// unchanged; run only the rest.
    #[arg(long)]
    pub resume: bool,
    /// Every cell's seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// How many cells run at once.
    #[arg(long, short = 'j', default_value_t = 6)]
    pub jobs: usize,
}

fn parse_backend(s: &str) -> Result<BackendKind, String> {
    s.parse()
}

/// `goneaway diff`'s noise thresholds, as flags; see [`Thresholds`].
#[derive(Args, Debug, Clone, Copy)]
pub struct ThresholdArgs {
    /// Latency (p50, p99) drift: percent of the old value.
    #[arg(long, value_name = "PCT", default_value_t = Thresholds::DEFAULT.latency_pct, value_parser = non_negative)]
    pub latency_pct: f64,
    /// Latency (p50, p99) drift: milliseconds.
    #[arg(long, value_name = "MS", default_value_t = Thresholds::DEFAULT.latency_ms, value_parser = non_negative)]
    pub latency_ms: f64,
    /// Throughput (successful requests/s) drift: percent of the old value.
    #[arg(long, value_name = "PCT", default_value_t = Thresholds::DEFAULT.throughput_pct, value_parser = non_negative)]
    pub throughput_pct: f64,
    /// Per-fault recovery time drift: percent of the old value.
    #[arg(long, value_name = "PCT", default_value_t = Thresholds::DEFAULT.recovery_pct, value_parser = non_negative)]
    pub recovery_pct: f64,
    /// Per-fault recovery time drift: milliseconds.
    #[arg(long, value_name = "MS", default_value_t = Thresholds::DEFAULT.recovery_ms, value_parser = non_negative)]
    pub recovery_ms: f64,
    /// Per-class error count drift: percent of the old count (a class appearing or
    /// vanishing is always drift).
    #[arg(long, value_name = "PCT", default_value_t = Thresholds::DEFAULT.errors_pct, value_parser = non_negative)]
    pub errors_pct: f64,
    /// Per-class error count drift: requests.
    #[arg(long, value_name = "N", default_value_t = Thresholds::DEFAULT.errors_abs, value_parser = non_negative)]
    pub errors_abs: f64,
}

impl ThresholdArgs {
    // A method rather than `From`: a trait impl on the library's public type would make
    // this CLI type part of the library's API.
    pub fn thresholds(self) -> Thresholds {
        let a = self;
        Thresholds {
            latency_pct: a.latency_pct,
            latency_ms: a.latency_ms,
            throughput_pct: a.throughput_pct,
            recovery_pct: a.recovery_pct,
            recovery_ms: a.recovery_ms,
            errors_pct: a.errors_pct,
            errors_abs: a.errors_abs,
        }
    }
}

fn non_negative(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("`{s}` is not a number >= 0")),
    }
}
