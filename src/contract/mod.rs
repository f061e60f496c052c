//! Contract: one fixed battery of faults run against every client, as one table.
//!
//! Each fault is a scenario whose `[expect]` is the contract a pool should keep: every
//! failure reaches the application within its timeouts, the pool works again within a
//! bound after the fault, no connection is left stranded, and no error reaches the
//! application where nothing was down. Each client is measured with its library's
//! defaults and with the configuration its own documentation recommends. A cell is one
//! run of the ordinary kind ([`crate::run`]); it passes when that run is valid, and
//! `unknown` never passes.
//!
//! Cells are independent, so they run a few at a time, and each result is saved with a
//! key of the cell's text: a later run with `--resume` reuses what is still current.

mod battery;
mod render;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::check::Verdict;
use crate::history::ErrorClass;
use crate::{Report, RunOptions};
pub use battery::{Battery, CONFIGS, CellSpec, Config, ContractError, Fault, Fragment};
pub use render::{markdown, stable, text};

/// How a cell came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The run was valid: the client kept the contract under this fault.
    Pass,
    /// The run was invalid: see the cell's reasons.
    Fail,
    /// The run could not tell (a fault that touched nothing, a cut-short run).
    Unknown,
    /// The harness could not run the cell (no verdict).
    Error,
}

impl Outcome {
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "FAIL",
            Outcome::Unknown => "unknown",
            Outcome::Error => "error",
        }
    }
}

/// One client configuration under one fault, as measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    pub client: String,
    pub config: String,
    pub fault: String,
    pub outcome: Outcome,
    /// The checks that failed (or could not tell), with their first finding; the harness's
    /// error for [`Outcome::Error`].
    pub reasons: Vec<String>,
    /// Errors that reached the application, by class, in the taxonomy's order.
    pub errors: Vec<(ErrorClass, u64)>,
    /// The classes of those that broke the contract (not allowed where they fell).
    #[serde(default)]
    pub broke: Vec<ErrorClass>,
    /// From the fault taking effect to the application's first error.
    #[serde(default, with = "humantime_serde")]
    pub first_error: Option<Duration>,
    /// The longest checkout or statement while the fault (or its grace) lasted.
    #[serde(default, with = "humantime_serde")]
    pub longest_wait: Option<Duration>,
    /// From the heal to every worker's lasting success (only when all recovered).
    #[serde(default, with = "humantime_serde")]
    pub recovery: Option<Duration>,
    /// Workers that never recovered after a fault.
    pub not_recovered: u32,
    /// The client and its versions, as the pool or adapter named them.
    pub library: String,
    /// The server it ran against: backend and version.
    pub server: String,
    pub seed: u64,
    /// Where the full report was saved.
    #[serde(default)]
    pub report: Option<PathBuf>,
    /// See [`CellSpec::key`].
    pub key: String,
}

impl Cell {
    fn of(spec: &CellSpec, r: &Report) -> Cell {
        let outcome = match r.stable.verdict {
            Verdict::Valid => Outcome::Pass,
            Verdict::Invalid => Outcome::Fail,
            Verdict::Unknown => Outcome::Unknown,
        };
        let reasons = r
            .stable
            .checks
            .iter()
            .filter(|c| c.verdict != Verdict::Valid)
            .map(|c| match c.findings.first() {
                Some(f) => format!("{}: {f}", c.name),
                None => c.name.clone(),
            })
            .collect();
        let mut by_class: BTreeMap<ErrorClass, u64> = BTreeMap::new();
        let mut broke = Vec::new();
        for e in &r.measured.errors {
            *by_class.entry(e.class).or_default() += e.count;
            if !e.tolerated && !broke.contains(&e.class) {
                broke.push(e.class);
            }
        }
        broke.sort();
        let faults = &r.measured.faults;
        let not_recovered = faults.iter().map(|f| f.not_recovered).sum();
        Cell {
            client: spec.client.clone(),
            config: spec.config.clone(),
            fault: spec.fault.clone(),
            outcome,
            reasons,
            errors: by_class.into_iter().collect(),
            broke,
            first_error: faults.iter().filter_map(|f| f.first_error).min().map(ms),
            longest_wait: faults.iter().filter_map(|f| f.longest_wait).max().map(ms),
            recovery: if not_recovered == 0 {
                faults.iter().filter_map(|f| f.recovery).max().map(ms)
            } else {
                None
            },
            not_recovered,
            library: r.measured.pool.clone(),
            server: format!("{} {}", r.measured.backend, r.measured.server_version),
            seed: r.measured.seed,
            report: None,
            key: spec.key.clone(),
        }
    }

    fn error(spec: &CellSpec, e: &crate::Error, seed: u64) -> Cell {
        Cell {
            client: spec.client.clone(),
            config: spec.config.clone(),
            fault: spec.fault.clone(),
            outcome: Outcome::Error,
            reasons: vec![e.to_string()],
            errors: Vec::new(),
            broke: Vec::new(),
            first_error: None,
            longest_wait: None,
            recovery: None,
            not_recovered: 0,
            library: String::new(),
            server: String::new(),
            seed,
            report: None,
            key: spec.key.clone(),
        }
    }

    /// The application hung: the harness's own op timeout ended a request.
    pub fn hung(&self) -> bool {
        self.errors.iter().any(|(c, _)| *c == ErrorClass::Timeout)
    }

    /// The failed checks' names, e.g. `errors, recovery`.
    pub fn failed_checks(&self) -> Vec<&str> {
        if self.outcome == Outcome::Error {
            return Vec::new();
        }
        self.reasons
            .iter()
            .map(|r| r.split(':').next().unwrap_or(r))
            .collect()
    }
}

/// To the millisecond: what a table shows, and what saved cells need.
fn ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}

/// How to run a battery.
#[derive(Debug, Clone)]
pub struct Options {
    /// Cells at once (each has its own server; most of a cell is waiting).
    pub jobs: usize,
    /// Instead of `jobs`: a limit shared with other work (a test binary running suites
    /// beside the battery), a permit per cell.
    pub limit: Option<Arc<tokio::sync::Semaphore>>,
    /// Every cell's seed, so a table can be measured again exactly.
    pub seed: u64,
    /// Where cells and their reports are saved; `None` saves nothing.
    pub dir: Option<PathBuf>,
    /// Reuse saved cells whose key still matches instead of running them again.
    pub resume: bool,
    pub cancel: CancellationToken,
}

/// The measured table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table {
    /// Fault names, in column order.
    pub faults: Vec<String>,
    /// `(client, config)`, in row order.
    pub rows: Vec<(String, String)>,
    /// Row-major, one per row and fault.
    pub cells: Vec<Cell>,
}

impl Table {
    pub fn cell(&self, client: &str, config: &str, fault: &str) -> Option<&Cell> {
        self.cells
            .iter()
            .find(|c| c.client == client && c.config == config && c.fault == fault)
    }

    /// Every cell passed.
    pub fn kept(&self) -> bool {
        self.cells.iter().all(|c| c.outcome == Outcome::Pass)
    }
}

fn cell_path(dir: &Path, spec: &CellSpec) -> PathBuf {
    dir.join("cells").join(format!("{}.json", spec.id()))
}

/// A saved cell for this spec, if its key still matches.
fn saved(dir: &Path, spec: &CellSpec) -> Option<Cell> {
    let text = std::fs::read_to_string(cell_path(dir, spec)).ok()?;
    let cell: Cell = serde_json::from_str(&text).ok()?;
    (cell.key == spec.key && matches!(cell.outcome, Outcome::Pass | Outcome::Fail)).then_some(cell)
}

fn save(dir: &Path, spec: &CellSpec, cell: &Cell) -> std::io::Result<()> {
    let path = cell_path(dir, spec);
    std::fs::create_dir_all(path.parent().expect("cells/"))?;
    let text = serde_json::to_string_pretty(cell).expect("cells serialize");
    std::fs::write(path, text)
}

/// What a caller hears as cells finish: the cell, whether it was reused, and how many
/// are done of how many.
pub type OnCell<'a> = dyn FnMut(&Cell, bool, usize, usize) + Send + 'a;

/// Run every cell (a few at a time) and put the table together. Only a pass or a fail
/// is saved for `resume`: an unknown or an error is measured again next time.
pub async fn run(
    battery: &Battery,
    opts: &Options,
    on_cell: &mut OnCell<'_>,
) -> Result<Table, ContractError> {
    let specs = battery.cells()?;
    let total = specs.len();
    let limit = match &opts.limit {
        Some(shared) => shared.clone(),
        None => Arc::new(tokio::sync::Semaphore::new(opts.jobs.max(1))),
    };
    let mut tasks = tokio::task::JoinSet::new();
    let mut cells: Vec<Option<Cell>> = vec![None; total];
    let mut done = 0;
    for (i, spec) in specs.into_iter().enumerate() {
        if opts.resume
            && let Some(dir) = &opts.dir
            && let Some(cell) = saved(dir, &spec)
        {
            done += 1;
            on_cell(&cell, true, done, total);
            cells[i] = Some(cell);
            continue;
        }
        let (limit, opts) = (limit.clone(), opts.clone());
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await.expect("never closed");
            let run_opts = RunOptions {
                seed: Some(opts.seed),
                cancel: opts.cancel.clone(),
                ..RunOptions::default()
            };
            let cell = if opts.cancel.is_cancelled() {
                Cell::error(
                    &spec,
                    &crate::Error::Harness("not started: interrupted".into()),
                    opts.seed,
                )
            } else {
                match crate::run(&spec.suite, run_opts).await {
                    Ok(report) => {
                        let mut cell = Cell::of(&spec, &report);
                        if let Some(dir) = &opts.dir {
                            cell.report = report.save(&dir.join("reports")).ok();
                            if matches!(cell.outcome, Outcome::Pass | Outcome::Fail)
                                && let Err(e) = save(dir, &spec, &cell)
                            {
                                tracing::warn!("could not save contract cell {}: {e}", spec.id());
                            }
                        }
                        cell
                    }
                    Err(e) => Cell::error(&spec, &e, opts.seed),
                }
            };
            (i, cell)
        });
    }
    while let Some(joined) = tasks.join_next().await {
        let (i, cell) = joined.map_err(|e| ContractError::Panicked(e.to_string()))?;
        done += 1;
        on_cell(&cell, false, done, total);
        cells[i] = Some(cell);
    }
    let mut rows = Vec::new();
    for c in &battery.configs {
        rows.push((c.client.clone(), c.config.clone()));
    }
    Ok(Table {
        faults: battery.faults.iter().map(|f| f.name.clone()).collect(),
        rows,
        cells: cells
            .into_iter()
            .map(|c| c.expect("every cell ran"))
            .collect(),
    })
}
