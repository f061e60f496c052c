//! Every built-in suite against a real server, all at once (each has its own server;
//! most of the time is spent waiting on wait_timeout). Each must meet its expectation,
//! and the stable part of its report must match its snapshot.

mod common;

use goneaway::suite::builtin_names;
use goneaway::{BackendKind, Suite};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_builtin_suite_meets_its_expectation() {
    if !common::mariadb() {
        return;
    }
    let docker = goneaway::server::docker::ready_or_skip("the docker suites", true).await;
    let mut runs = tokio::task::JoinSet::new();
    for name in builtin_names() {
        let suite = Suite::builtin(name).expect("built-in suites parse");
        if suite.server.backend == BackendKind::Docker && !docker {
            continue;
        }
        runs.spawn(async move { (name, suite.run().await) });
    }
    let mut reports = Vec::new();
    while let Some(done) = runs.join_next().await {
        reports.push(done.expect("a suite run panicked"));
    }
    reports.sort_by_key(|(name, _)| *name);
    let mut failed = Vec::new();
    for (name, result) in &reports {
        match result {
            Ok(report) if report.stable.met => {}
            Ok(report) => failed.push(format!("{name}: expectation not met\n{}", report.human())),
            Err(e) => failed.push(format!("{name}: harness error: {e}")),
        }
    }
    assert!(
        failed.is_empty(),
        "{} suite(s) failed:\n\n{}",
        failed.len(),
        failed.join("\n\n")
    );
    for (name, result) in reports {
        insta::assert_yaml_snapshot!(format!("suite-{name}"), result.unwrap().stable);
    }
}
