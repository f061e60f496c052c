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
    let before = (
        global(&url, "wait_timeout").await,
        global(&url, "max_connections").await,
    );

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
    assert_eq!(
        (
            global(&url, "wait_timeout").await,
            global(&url, "max_connections").await
        ),
        before
    );
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
