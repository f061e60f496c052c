//! `goneaway run`: check every suite first, run them a few at a time, print and save
//! the reports, and map the outcome to the exit code.

use std::path::PathBuf;
use std::sync::Arc;

use crate::error::{EXIT_HARNESS, EXIT_OK, EXIT_UNMET, Error};
use crate::server::BackendKind;
use crate::{Report, RunOptions, Suite};

pub(super) async fn run(
    names: Vec<String>,
    seed: Option<u64>,
    backend: Option<BackendKind>,
    json: bool,
    junit: Option<PathBuf>,
    save: Option<PathBuf>,
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
    if many && !json {
        eprintln!("running {} suites, {} at a time", suites.len(), jobs);
    }
    let limit = Arc::new(tokio::sync::Semaphore::new(jobs));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, suite) in suites.into_iter().enumerate() {
        let (limit, cancel) = (limit.clone(), cancel.clone());
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await.expect("never closed");
            if cancel.is_cancelled() {
                return (
                    i,
                    suite.name.clone(),
                    Err(Error::Harness("not started: interrupted".into())),
                );
            }
            let opts = RunOptions {
                seed,
                cancel,
                pool: None,
            };
            let result = crate::run(&suite, opts).await;
            (i, suite.name.clone(), result)
        });
    }
    let mut results: Vec<(usize, String, Result<Report, Error>)> = Vec::new();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(r) => {
                if many && !json {
                    let status = match &r.2 {
                        Ok(rep) if rep.stable.met => "met".to_string(),
                        Ok(_) => "NOT met".to_string(),
                        Err(_) => "harness error".to_string(),
                    };
                    eprintln!("  finished {:<28} {status}", r.1);
                }
                results.push(r);
            }
            Err(e) => {
                eprintln!("goneaway: a run panicked: {e}");
                return EXIT_HARNESS;
            }
        }
    }
    results.sort_by_key(|r| r.0);
    let mut code = EXIT_OK;
    let mut summary = Vec::new();
    let mut json_reports = Vec::new();
    let mut cases = crate::report::junit::Junit::new();
    for (i, name, result) in results {
        match &result {
            Ok(report) => cases.add_report(report),
            Err(e) => cases.add_error(&name, &backends[i], &e.to_string()),
        };
        match result {
            Ok(report) => {
                let saved = save.as_ref().map(|dir| report.save(dir));
                if json {
                    json_reports.push(serde_json::to_value(&report).expect("reports serialize"));
                } else {
                    println!("{}", report.human());
                }
                if let Some(Err(e)) = &saved {
                    eprintln!("goneaway: could not save the report of {name}: {e}");
                } else if let Some(Ok(path)) = &saved
                    && !json
                {
                    println!("saved     {}\n", path.display());
                }
                if !report.stable.met && code == EXIT_OK {
                    code = EXIT_UNMET;
                }
                summary.push(format!(
                    "{:<28} {:<8} expected {:<8} {}",
                    name,
                    format!("{:?}", report.stable.verdict).to_lowercase(),
                    format!("{:?}", report.stable.expected).to_lowercase(),
                    if report.stable.met { "met" } else { "NOT MET" }
                ));
            }
            Err(e) => {
                eprintln!("goneaway: {name}: {e}");
                summary.push(format!("{name:<28} harness error: {e}"));
                code = EXIT_HARNESS;
            }
        }
    }
    if let Some(path) = &junit
        && let Err(e) = cases.write(path)
    {
        eprintln!("goneaway: could not write {}: {e}", path.display());
        code = EXIT_HARNESS;
    }
    if json {
        let out = if json_reports.len() == 1 {
            json_reports.remove(0)
        } else {
            serde_json::Value::Array(json_reports)
        };
        println!("{}", serde_json::to_string_pretty(&out).expect("json"));
    } else if many {
        println!("summary");
        for line in summary {
            println!("  {line}");
        }
    }
    code
}
