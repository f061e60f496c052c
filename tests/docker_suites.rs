//! The server-side suites again, unchanged, on the docker backend: a kill is a container
//! kill, a pause is the cgroup freezer. Fails (not skips) under CI without Docker or the
//! image (`bash ci/build-image.sh`).

use goneaway::{BackendKind, Suite};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn server_suites_meet_their_expectations_on_docker() {
    if !goneaway::server::docker::ready_or_skip("docker suites", true).await {
        return;
    }
    let mut runs = tokio::task::JoinSet::new();
    for name in [
        "server-restart",
        "server-crash",
        "server-pause",
        "kill-active",
        "idle-expiry-stale-pool",
    ] {
        runs.spawn(async move {
            let suite = Suite::builtin(name)
                .unwrap()
                .with_backend(BackendKind::Docker)
                .expect("runs on docker");
            (name, suite.run().await)
        });
    }
    let mut reports = Vec::new();
    while let Some(done) = runs.join_next().await {
        reports.push(done.expect("a suite run panicked"));
    }
    reports.sort_by_key(|(name, _)| *name);
    let mut failed = Vec::new();
    for (name, result) in &reports {
        match result {
            Ok(r) if r.stable.met => assert_eq!(r.measured.backend, "docker"),
            Ok(r) => failed.push(format!("{name}: expectation not met\n{}", r.human())),
            Err(e) => failed.push(format!("{name}: harness error: {e}")),
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
    for (name, result) in reports {
        insta::assert_yaml_snapshot!(format!("docker-{name}"), result.unwrap().stable);
    }
}
