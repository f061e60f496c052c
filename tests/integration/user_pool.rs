//! The library as a user's dev-dependency: test *your* pool factory against a scenario,
//! in your own `#[tokio::test]`. Written the way a user would write it.

use crate::common;

use std::time::Duration;

use goneaway::{ConnectInfo, ErrorClass, Suite, Verdict};
use sqlx::mysql::MySqlPoolOptions;

/// A team's pool factory, with pre-ping on: survives the server closing idle connections.
async fn careful_pool(db: ConnectInfo) -> Result<sqlx::MySqlPool, sqlx::Error> {
    MySqlPoolOptions::new()
        .max_connections(5)
        .test_before_acquire(true)
        .connect(&db.url())
        .await
}

/// The factory from the outage: no pre-ping, connections kept for hours.
async fn outage_pool(db: ConnectInfo) -> Result<sqlx::MySqlPool, sqlx::Error> {
    MySqlPoolOptions::new()
        .max_connections(5)
        .min_connections(4)
        .test_before_acquire(false)
        .max_lifetime(Duration::from_secs(7200))
        .idle_timeout(None)
        .connect(&db.url())
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pre_pinging_pool_survives_idle_expiry() {
    if !common::mariadb() {
        return;
    }
    let report = Suite::builtin("idle-expiry-pre-ping")
        .unwrap()
        .run_with_pool(careful_pool)
        .await
        .unwrap();
    report.assert_expected();
    assert!(
        report
            .measured
            .pool
            .contains("your pool, settings read back from it"),
        "{}",
        report.measured.pool
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_outage_pool_is_caught_and_the_lint_reads_its_real_settings() {
    if !common::mariadb() {
        return;
    }
    // The same scenario, but the pool is the one from the outage.
    let report = Suite::builtin("idle-expiry-pre-ping")
        .unwrap()
        .run_with_pool(outage_pool)
        .await
        .unwrap();
    assert!(
        !report.stable.met,
        "a stale pool must fail a suite that expects no errors:\n{}",
        report.human()
    );
    assert_eq!(report.stable.verdict, Verdict::Invalid);
    assert!(
        report
            .measured
            .errors
            .iter()
            .any(|e| e.class == ErrorClass::GoneAway && !e.tolerated),
        "{}",
        report.human()
    );
    // The lint judged the pool the user built, not the suite's [pool].
    let stale = report
        .stable
        .lint
        .iter()
        .find(|l| l.rule == "stale-connections")
        .expect("the lint saw it coming");
    assert!(
        stale.message.contains("max_lifetime (2h)"),
        "{}",
        stale.message
    );
    assert_eq!(stale.outcome.as_deref(), Some("confirmed"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_suite_can_live_inside_the_test() {
    if !common::mariadb() {
        return;
    }
    let suite = Suite::from_toml(
        r#"
        description = "our checkout path survives a killed session mid-request"
        [pool]
        max_connections = 4
        acquire_timeout = "3s"
        [workload]
        workers = 2
        duration = "5s"
        mix = { sleep = 1 }
        sleep = "500ms"
        [[fault]]
        kind = "kill"
        target = "active"
        at = "1s"
        [expect]
        verdict = "valid"
        tolerate = ["lost_connection", "killed"]
        recover_within = "2s"
        "#,
        "inline",
        "kill-mid-request",
    )
    .unwrap();
    let report = suite.run().await.unwrap();
    report.assert_expected();
    assert!(
        report.measured.faults[0]
            .detail
            .contains("active pool sessions"),
        "{:?}",
        report.measured.faults
    );
}
