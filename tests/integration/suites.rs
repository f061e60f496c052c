//! Every built-in suite against a real server, all at once (each has its own server;
//! most of the time is spent waiting on wait_timeout). Each must meet its expectation,
//! and the stable part of its report must match its snapshot.

use crate::common;

use goneaway::builtin_names;
use goneaway::{BackendKind, Suite};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_builtin_suite_meets_its_expectation() {
    if !common::mariadb() {
        return;
    }
    #[cfg(feature = "docker")]
    let docker = common::docker_ready_or_skip("the docker suites", true).await;
    #[cfg(not(feature = "docker"))]
    let docker = false;
    let suites = builtin_names()
        .into_iter()
        .map(|name| (name, Suite::builtin(name).expect("built-in suites parse")))
        .filter(|(_, s)| docker || s.server.backend != BackendKind::Docker)
        .filter(|(_, s)| common::client_ready(s))
        .collect();
    for (name, report) in common::run_all_met(suites).await {
        insta::assert_yaml_snapshot!(format!("suite-{name}"), report.stable);
    }
}
