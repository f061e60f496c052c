//! The server-side suites again, unchanged, on the docker backend: a kill is a container
//! kill, a pause is the cgroup freezer. Fails (not skips) under CI without Docker or the
//! image (`bash ci/build-image.sh`).
#![cfg(feature = "docker")]

use crate::common;

use goneaway::{BackendKind, Suite};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn server_suites_meet_their_expectations_on_docker() {
    if !common::docker_ready_or_skip("docker suites", true).await {
        return;
    }
    let suites = [
        "server-restart",
        "server-crash",
        "server-pause",
        "kill-active",
        "idle-expiry-stale-pool",
    ]
    .into_iter()
    .map(|name| {
        (
            name,
            Suite::builtin(name)
                .unwrap()
                .with_backend(BackendKind::Docker)
                .expect("runs on docker"),
        )
    })
    .collect();
    for (name, report) in common::run_all_met(suites).await {
        assert_eq!(report.measured.backend, "docker");
        insta::assert_yaml_snapshot!(format!("docker-{name}"), report.stable);
    }
}
