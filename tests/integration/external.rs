//! The external backend: a server the user owns, given by URL. Here a process server
//! stands in for it; the harness may only use SQL on it and must put back every global
//! it changed.

use crate::common;

use goneaway::server::{self, ServerSpec};
use goneaway::{Suite, Verdict};

async fn global(url: &str, name: &str) -> String {
    use sqlx::Connection;
    let mut c = sqlx::MySqlConnection::connect(url).await.unwrap();
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT CAST(@@GLOBAL.{name} AS CHAR)"
    )))
    .fetch_one(&mut c)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn sql_faults_run_on_an_external_server_and_its_settings_come_back() {
    if !common::mariadb() {
        return;
    }
    let owned = server::start(&ServerSpec::default()).await.unwrap();
    let url = owned.admin().url();
    let before = globals(&url).await;

    let suite = Suite::from_toml(
        &format!(
            r#"
            description = "a lowered wait_timeout, a squeeze and a kill on a server we do not own"
            [server]
            backend = "external"
            url = "{url}"
            interactive_timeout = 600
            [pool]
            max_connections = 12
            acquire_timeout = "3s"
            [workload]
            workers = 12
            duration = "10s"
            rate = 60
            hold = "150ms"
            # Each fault must touch something (issue 9): the kill makes the pool open
            # sessions after the lowering, the night lets them idle past it, and the
            # pool's 12 connections reach the squeezed limit.
            [[fault]]
            kind = "wait_timeout"
            at = "1s"
            value = "2s"
            [[fault]]
            kind = "kill"
            target = "all"
            at = "1500ms"
            [[fault]]
            kind = "idle"
            name = "night"
            at = "2500ms"
            duration = "3s"
            [[fault]]
            kind = "max_connections"
            at = "6500ms"
            duration = "2s"
            value = 10
            [expect]
            verdict = "valid"
            tolerate = ["lost_connection", "killed", "gone_away"]
            recover_within = "3s"
            "#
        ),
        "inline",
        "external",
    )
    .unwrap();
    let report = suite.run().await.unwrap();
    report.assert_expected();
    let details: Vec<&str> = report
        .measured
        .faults
        .iter()
        .map(|f| f.detail.as_str())
        .collect();
    assert!(
        details[0].starts_with("SET GLOBAL wait_timeout = 2"),
        "{details:?}"
    );
    assert!(details[1].contains("all pool sessions"), "{details:?}");
    assert!(
        details[3].starts_with("SET GLOBAL max_connections = 10"),
        "{details:?}"
    );
    // The open loop kept its rate outside the night: about 60 requests a second for 7s.
    assert!(
        report.measured.requests > 250 && report.measured.requests < 700,
        "{}",
        report.measured.requests
    );

    // Everything the run changed is back as it was, including the suite's own setting.
    assert_eq!(globals(&url).await, before);
    assert_eq!(global(&url, "interactive_timeout").await, "28800");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_external_server_is_a_clear_harness_error() {
    // Nothing listens on port 9 of loopback: refused at once, no hang.
    let suite = Suite::from_toml(
        r#"
        description = "nobody home"
        [server]
        backend = "external"
        url = "mysql://app:secret@127.0.0.1:9/shop"
        [workload]
        duration = "2s"
        [expect]
        verdict = "valid"
        "#,
        "inline",
        "unreachable",
    )
    .unwrap();
    let err = suite.run().await.expect_err("must not run").to_string();
    assert!(
        err.starts_with("server: cannot connect to mysql://app:***@127.0.0.1:9/shop"),
        "{err}"
    );
    assert!(!err.contains("secret"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_pool_that_never_answers_is_a_recorded_timeout_not_a_hang() {
    if !common::mariadb() {
        return;
    }
    // The server freezes for longer than the op timeout, and the pool has no checkout
    // timeout to speak of: only the harness's op timeout stands between it and a hang.
    let suite = Suite::from_toml(
        r#"
        description = "a pool that would wait forever on a frozen server"
        [pool]
        max_connections = 2
        acquire_timeout = "1h"
        [workload]
        workers = 2
        duration = "6s"
        op_timeout = "1s"
        [[fault]]
        kind = "pause"
        at = "1s"
        duration = "3s"
        [expect]
        verdict = "invalid"
        errors = ["timeout"]
        "#,
        "inline",
        "frozen",
    )
    .unwrap();
    let report = suite.run().await.unwrap();
    report.assert_expected();
    assert_eq!(report.stable.verdict, Verdict::Invalid);
}

// ---- kill -9 of the harness: the user's server is left as it was found ----

const BIN: &str = env!("CARGO_BIN_EXE_goneaway");

/// The writes tables goneaway runs have in the user's database.
/// The globals the suites below change: (wait_timeout, max_connections).
async fn globals(url: &str) -> (String, String) {
    (
        global(url, "wait_timeout").await,
        global(url, "max_connections").await,
    )
}

async fn run_tables(url: &str) -> Vec<String> {
    use sqlx::Connection;
    let mut c = sqlx::MySqlConnection::connect(url).await.unwrap();
    sqlx::query_scalar(
        "SELECT table_name FROM information_schema.tables \
         WHERE table_schema = DATABASE() AND table_name LIKE 'goneaway\\_writes\\_%'",
    )
    .fetch_all(&mut c)
    .await
    .unwrap()
}

/// A suite that lowers wait_timeout and max_connections on the user's server for long
/// enough to be killed in the middle.
fn long_external_suite(dir: &std::path::Path, url: &str) -> std::path::PathBuf {
    external_suite(dir, "external-long", url, 2, "60s")
}

/// Start `goneaway run` on `suite`, wait until it has changed the server, SIGKILL it.
async fn kill_mid_run(suite: &std::path::Path, url: &str, cache: &std::path::Path, path_env: &str) {
    let mut child = std::process::Command::new(BIN)
        .args(["run", suite.to_str().unwrap(), "--no-save"])
        .env("GONEAWAY_CACHE", cache)
        .env("PATH", path_env)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if global(url, "max_connections").await == "20" && !run_tables(url).await.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the run never changed the server"
        );
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    tokio::time::sleep(std::time::Duration::from_secs(1)).await; // into the workload
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
}

/// Poll until the server is as it was before, at most `within`; what differs otherwise.
async fn back_as_found(
    url: &str,
    before: &(String, String),
    within: std::time::Duration,
) -> Result<(), String> {
    let deadline = std::time::Instant::now() + within;
    loop {
        let now = globals(url).await;
        let tables = run_tables(url).await;
        if now == *before && tables.is_empty() {
            return Ok(());
        }
        if std::time::Instant::now() >= deadline {
            return Err(format!(
                "after {within:?}: (wait_timeout, max_connections) = {now:?}, was {before:?}; \
                 tables left: {tables:?}"
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

fn journals_in(cache: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for dir in std::fs::read_dir(cache.join("journals"))
        .into_iter()
        .flatten()
        .flatten()
    {
        for f in std::fs::read_dir(dir.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            found.push(f.path());
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_of_the_harness_leaves_the_users_server_as_it_was_found() {
    if !common::mariadb() {
        return;
    }
    let owned = server::start(&ServerSpec::default()).await.unwrap();
    let url = owned.admin().url();
    let before = globals(&url).await;
    let dir = tempfile::tempdir().unwrap();
    let suite = long_external_suite(dir.path(), &url);
    let cache = dir.path().join("cache");

    // With a mariadb client on PATH, the journal's watchdog puts everything back.
    let path_env = std::env::var("PATH").unwrap_or_default();
    kill_mid_run(&suite, &url, &cache, &path_env).await;
    back_as_found(&url, &before, std::time::Duration::from_secs(20))
        .await
        .unwrap_or_else(|e| panic!("the watchdog did not restore the server: {e}"));
    assert_eq!(journals_in(&cache), Vec::<std::path::PathBuf>::new());

    // Without one (an empty PATH), the journal stays until `goneaway gc` replays it.
    kill_mid_run(&suite, &url, &cache, "").await;
    assert_eq!(
        global(&url, "max_connections").await,
        "20",
        "nothing restored it yet"
    );
    assert_eq!(
        journals_in(&cache).len(),
        2,
        "the journal and its credentials stay"
    );
    let out = std::process::Command::new(BIN)
        .arg("gc")
        .env("GONEAWAY_CACHE", &cache)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("put back 3 change(s)"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    back_as_found(&url, &before, std::time::Duration::from_secs(5))
        .await
        .unwrap_or_else(|e| panic!("gc did not restore the server: {e}"));
    assert_eq!(journals_in(&cache), Vec::<std::path::PathBuf>::new());

    // Killed again without a client: the next run against the server replays it first.
    kill_mid_run(&suite, &url, &cache, "").await;
    let quick = dir.path().join("after-a-kill.toml");
    std::fs::write(
        &quick,
        format!(
            r#"
            description = "a short run after a killed one"
            [server]
            backend = "external"
            url = "{url}"
            [workload]
            duration = "1s"
            [expect]
            verdict = "valid"
            "#
        ),
    )
    .unwrap();
    let out = std::process::Command::new(BIN)
        .args(["run", quick.to_str().unwrap(), "--no-save"])
        .env("GONEAWAY_CACHE", &cache)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    back_as_found(&url, &before, std::time::Duration::from_secs(5))
        .await
        .unwrap_or_else(|e| panic!("the next run did not restore the server: {e}"));
}

/// A suite on the external server at `url` that changes its globals for `duration`.
fn external_suite(
    dir: &std::path::Path,
    name: &str,
    url: &str,
    wait: u32,
    duration: &str,
) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            r#"
            description = "changes globals on a server we do not own, for {duration}"
            [server]
            backend = "external"
            url = "{url}"
            wait_timeout = {wait}
            max_connections = 20
            [pool]
            max_connections = 2
            [workload]
            workers = 2
            duration = "{duration}"
            rate = 20
            mix = {{ insert = 1, select = 1 }}
            [expect]
            verdict = "valid"
            "#
        ),
    )
    .unwrap();
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn overlapping_runs_on_one_external_server_take_turns_and_leave_it_as_found() {
    if !common::mariadb() {
        return;
    }
    let owned = server::start(&ServerSpec::default()).await.unwrap();
    let url = owned.admin().url();
    let before = globals(&url).await;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let first = external_suite(dir.path(), "first", &url, 2, "3s");
    // Longer, so it would end last: had it run alongside, it would have journaled the
    // first run's wait_timeout as the one it found and left it behind.
    let second = external_suite(dir.path(), "second", &url, 3, "4s");
    let run = |suite: &std::path::Path| {
        std::process::Command::new(BIN)
            .args(["run", suite.to_str().unwrap(), "--no-save"])
            .env("GONEAWAY_CACHE", &cache)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let a = run(&first);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while global(&url, "wait_timeout").await != "2" {
        assert!(
            std::time::Instant::now() < deadline,
            "the first run never changed the server"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let b = run(&second);
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    for out in [&a, &b] {
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let waited = String::from_utf8_lossy(&b.stderr);
    assert!(
        waited.contains("waiting for goneaway run pid") && waited.contains("take turns"),
        "the second run did not wait its turn: {waited}"
    );
    back_as_found(&url, &before, std::time::Duration::from_secs(5))
        .await
        .unwrap_or_else(|e| panic!("overlapping runs left the server changed: {e}"));
}
