//! `goneaway run --backend docker` as a user runs it: a finished or interrupted (Ctrl-C)
//! run leaves no container, network or temp dir (the engine bridge's included), and after
//! a SIGKILL `goneaway gc` removes what the killed run left. Without Docker or the image these tests print one
//! line and pass locally; with `CI` set they fail.
#![cfg(feature = "docker")]

use crate::common;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use goneaway::server::docker::LABEL_OWNER_PID;

const BIN: &str = env!("CARGO_BIN_EXE_goneaway");

fn docker_ready(test: &str) -> bool {
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(common::docker_ready_or_skip(test, true))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Containers and networks labelled with `pid` as their owner.
fn owned_by(pid: u32) -> Vec<String> {
    let filter = format!("label={LABEL_OWNER_PID}={pid}");
    let mut ids = Vec::new();
    for args in [
        vec!["ps", "-aq", "--filter", filter.as_str()],
        vec!["network", "ls", "-q", "--filter", filter.as_str()],
    ] {
        let out = Command::new("docker").args(&args).output().unwrap();
        ids.extend(text(&out.stdout).lines().map(str::to_string));
    }
    ids
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// The run's stdout, once its exit code is `code` (else fail with both outputs).
fn exited_with(out: &Output, code: i32) -> String {
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    stdout
}

fn goneaway(args: &[&str], tmp: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .env("TMPDIR", tmp)
        .output()
        .unwrap()
}

#[test]
fn a_docker_run_leaves_nothing_behind() {
    if !docker_ready("a_docker_run_leaves_nothing_behind") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = goneaway(
        &["run", "server-crash", "--backend", "docker", "--no-save"],
        tmp.path(),
    );
    let stdout = exited_with(&out, 0);
    assert!(stdout.contains("server    docker"), "{stdout}");
    assert_eq!(entries(tmp.path()), Vec::<String>::new());
}

/// Start a docker run of `suite` and return once its container and network exist and
/// its workload has run for a while.
fn start_docker_run(suite: &str, tmp: &Path) -> Child {
    let child = Command::new(BIN)
        .args(["run", suite, "--backend", "docker", "--no-save"])
        .env("TMPDIR", tmp)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while owned_by(child.id()).len() < 2 {
        assert!(Instant::now() < deadline, "no container appeared");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2)); // into the workload
    child
}

#[test]
fn ctrl_c_of_a_docker_run_leaves_nothing_behind() {
    if !docker_ready("ctrl_c_of_a_docker_run_leaves_nothing_behind") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let child = start_docker_run("server-pause", tmp.path());
    let pid = child.id();
    // SAFETY: signals our own child.
    unsafe { libc::kill(pid as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    // An interrupted run meets no expectation.
    let stdout = exited_with(&out, 1);
    assert!(stdout.contains("verdict   unknown"), "{stdout}");
    assert_eq!(owned_by(pid), Vec::<String>::new());
    assert_eq!(entries(tmp.path()), Vec::<String>::new());
}

#[test]
fn sigkill_of_a_docker_run_leaves_what_gc_removes() {
    if !docker_ready("sigkill_of_a_docker_run_leaves_what_gc_removes") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut child = start_docker_run("server-pause", tmp.path());
    let pid = child.id();
    // SAFETY: signals our own child.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    child.wait().unwrap();
    // Nothing could clean up after a SIGKILL.
    assert_eq!(owned_by(pid).len(), 2, "its container and network remain");

    let out = goneaway(&["gc"], tmp.path());
    let stdout = exited_with(&out, 0);
    assert_eq!(owned_by(pid), Vec::<String>::new(), "{stdout}");
    assert_eq!(entries(tmp.path()), Vec::<String>::new(), "{stdout}");
}
