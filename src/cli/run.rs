//! `goneaway run`: check every suite first, run them a few at a time, print and save
//! the reports, and map the outcome to the exit code.
//!
//! One suite prints its full report. Several print a line each as they finish, then the
//! full reports of those whose expectations were not met (`--verbose`: all of them), then
//! the summary (also as Markdown with `--markdown` or `GITHUB_STEP_SUMMARY`). On a
//! terminal, where a screen is the limit, a met suite's line is only counted in the live
//! total and the summary packs the met suites together; off it (CI, pipes) the lines are
//! a log and every one stays.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use super::progress::Tally;
use super::summary::{self, Layout, Row};
use crate::error::{EXIT_HARNESS, EXIT_OK, EXIT_UNMET, Error};
use crate::server::BackendKind;
use crate::{Report, RunOptions, Suite};

/// What `run` prints and writes besides running.
pub(super) struct Output {
    pub json: bool,
    pub junit: Option<PathBuf>,
    pub markdown: Option<PathBuf>,
    pub save: Option<PathBuf>,
    pub verbose: bool,
}

pub(super) async fn run(
    names: Vec<String>,
    seed: Option<u64>,
    backend: Option<BackendKind>,
    out: Output,
    jobs: usize,
) -> i32 {
    // Check every suite before starting any server: a typo should cost nothing.
    let mut suites = Vec::new();
    for name in &names {
        let suite = Suite::resolve(name).and_then(|s| match backend {
            Some(b) => s.with_backend(b),
            None => Ok(s),
        });
        match suite {
            Ok(s) => suites.push(s),
            Err(e) => {
                eprintln!("{e}");
                return EXIT_HARNESS;
            }
        }
    }
    let cancel = super::cancel_on_ctrl_c("healing faults and stopping servers");
    let backends: Vec<String> = suites
        .iter()
        .map(|s| s.server.backend.to_string())
        .collect();
    let many = suites.len() > 1;
    let json = out.json;
    if many && !json {
        eprintln!("running {} suites, {} at a time", suites.len(), jobs);
    }
    let width = suites.iter().map(|s| s.name.len()).max().unwrap_or(0);
    // Live progress on a terminal; plain lines otherwise (and never with --json).
    let progress = if json {
        None
    } else {
        super::progress::Progress::new(suites.len(), width).map(Arc::new)
    };
    let began = Instant::now();
    let limit = Arc::new(tokio::sync::Semaphore::new(jobs));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, suite) in suites.into_iter().enumerate() {
        let (limit, cancel, progress) = (limit.clone(), cancel.clone(), progress.clone());
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await.expect("never closed");
            let started = Instant::now();
            let (bar, observer) = match &progress {
                Some(p) => {
                    let (bar, observer) = p.suite(&suite.name, suite.workload.duration);
                    (Some(bar), Some(observer))
                }
                None => (None, None),
            };
            if cancel.is_cancelled() {
                return (
                    i,
                    suite.name.clone(),
                    Err(Error::Harness("not started: interrupted".into())),
                    started.elapsed(),
                    bar,
                );
            }
            let opts = RunOptions {
                seed,
                cancel,
                pool: None,
                observer,
            };
            let result = crate::run(&suite, opts).await;
            (i, suite.name.clone(), result, started.elapsed(), bar)
        });
    }
    let mut results: Vec<(usize, String, Result<Report, Error>, Row)> = Vec::new();
    let mut tally = Tally::default();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok((i, name, result, took, bar)) => {
                let row = Row::of(&name, &result, took);
                match (row.met(), &result) {
                    (true, _) => tally.met += 1,
                    (false, Ok(_)) => tally.not_met += 1,
                    (false, Err(_)) => tally.errors += 1,
                }
                match (&progress, bar) {
                    (Some(p), Some(bar)) => {
                        p.done(bar, &tally);
                        // On a screen a met suite only moves the total; what went wrong
                        // stays in view.
                        if many && (!row.met() || out.verbose) {
                            p.println(&format!("  {}", row.line(width)));
                        }
                    }
                    _ if many && !json => eprintln!("  {}", row.line(width)),
                    _ => {}
                }
                results.push((i, name, result, row));
            }
            Err(e) => {
                eprintln!("goneaway: a run panicked: {e}");
                return EXIT_HARNESS;
            }
        }
    }
    if let Some(p) = &progress {
        p.finish();
    }
    results.sort_by_key(|r| r.0);
    let mut code = EXIT_OK;
    let mut rows = Vec::new();
    let mut json_reports = Vec::new();
    let mut cases = crate::report::junit::Junit::new();
    for (i, name, result, mut row) in results {
        match &result {
            Ok(report) => cases.add_report(report),
            Err(e) => cases.add_error(&name, &backends[i], &e.to_string()),
        };
        match result {
            Ok(report) => {
                let saved = out.save.as_ref().map(|dir| report.save(dir));
                // Several suites: the full report only where it says what went wrong.
                let full = !many || out.verbose || !report.stable.met;
                if json {
                    json_reports.push(serde_json::to_value(&report).expect("reports serialize"));
                } else if full {
                    outln!("{}", report.human());
                }
                match &saved {
                    Some(Err(e)) => {
                        eprintln!("goneaway: could not save the report of {name}: {e}")
                    }
                    Some(Ok(path)) => {
                        if !json && full {
                            outln!(
                                "saved     {}\ntimeline  {}\n",
                                path.display(),
                                path.join(crate::report::HTML_FILE).display()
                            );
                        }
                        row.saved = Some(path.clone());
                    }
                    None => {}
                }
                if !report.stable.met && code == EXIT_OK {
                    code = EXIT_UNMET;
                }
            }
            Err(e) => {
                eprintln!("goneaway: {name}: {e}");
                code = EXIT_HARNESS;
            }
        }
        rows.push(row);
    }
    if let Some(path) = &out.junit
        && let Err(e) = cases.write(path)
    {
        eprintln!("goneaway: could not write {}: {e}", path.display());
        code = EXIT_HARNESS;
    }
    // The job summary page is not beside the reports: its links are as saved.
    let markdown = super::write_markdown(
        out.markdown.as_deref(),
        |dir| summary::markdown(&rows, Some(dir)),
        || summary::markdown(&rows, None),
    );
    if let Err(e) = markdown {
        eprintln!("goneaway: {e}");
        code = EXIT_HARNESS;
    }
    if json {
        let out = if json_reports.len() == 1 {
            json_reports.remove(0)
        } else {
            serde_json::Value::Array(json_reports)
        };
        outln!("{}", serde_json::to_string_pretty(&out).expect("json"));
    } else if many {
        let layout = if out.verbose {
            Layout::Full
        } else {
            Layout::Compact {
                width: screen_width(),
            }
        };
        out!("{}", summary::text(&rows, layout, began.elapsed()));
    }
    code
}

/// Columns for the compact summary: `$COLUMNS` when set (the shell's word), else stdout's
/// terminal, else 100 (a file or a pipe: wide enough to read, narrow enough to print).
fn screen_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|&c| c > 0)
        .or_else(|| {
            console::Term::stdout()
                .size_checked()
                .map(|(_, cols)| usize::from(cols))
        })
        .unwrap_or(100)
}
