//! `goneaway explore`: the loop with stand-in runners (flaky, inconclusive, shrinking,
//! replay; no server), then two live explorations on a real server: the outage's pool
//! must be caught and shrunk to one fault, the fixed pool must not be.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use goneaway::explore::{Base, Options, Outcome, explore};
use goneaway::{Error, Fault, FaultKind, KillTarget, Lasts, Suite};

use crate::common;

/// The pool from the outage, as it shipped, expecting to survive whatever comes.
const OUTAGE: &str = r#"description = "the outage's pool as shipped: pool_recycle 2h outlives wait_timeout 2s, no pre-ping"

[server]
wait_timeout = "2s"

[pool]
pool_size = 5
max_overflow = 10
pool_timeout = "30s"
pool_recycle = "2h"
pool_pre_ping = false

[workload]
workers = 4
duration = "6s"
think = "50ms"
op_timeout = "40s"

[expect]
verdict = "valid"
tolerate = ["killed"]
"#;

/// The same service fixed: pre-ping, recycle below wait_timeout, short timeouts; a
/// session killed mid-query may fail that request.
const ROBUST: &str = r#"description = "the outage's pool fixed: pre-ping, pool_recycle below wait_timeout, short timeouts"

[server]
wait_timeout = "2s"

[pool]
pool_size = 5
max_overflow = 10
pool_timeout = "5s"
pool_recycle = "1s"
pool_pre_ping = true

[workload]
workers = 4
duration = "6s"
think = "50ms"
op_timeout = "10s"

[expect]
verdict = "valid"
tolerate = ["killed", "lost_connection", "gone_away"]
"#;

fn base(dir: &Path, name: &str, text: &str) -> Base {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    Base::resolve(path.to_str().unwrap()).unwrap()
}

fn failed() -> Outcome {
    Outcome::Failed {
        checks: vec!["errors".into()],
        unmet: vec!["errors: a stand-in failure".into()],
    }
}

/// Options with no server: `runner` stands in for every run.
fn standin(
    dir: &Path,
    runner: impl Fn(&Suite, u64) -> Result<Outcome, Error> + Send + Sync + 'static,
) -> Options {
    Options {
        seed: 7,
        cases: Some(4),
        faults: Some(vec![FaultKind::Idle, FaultKind::Kill, FaultKind::Latency]),
        report_dir: Some(dir.to_path_buf()),
        runner: Arc::new(runner),
        ..Options::default()
    }
}

fn idle_over(s: &Suite, limit: Duration) -> bool {
    s.faults
        .iter()
        .any(|f| f.fault == Fault::Idle && f.duration() > limit)
}

#[tokio::test]
async fn a_flaky_case_is_reported_flaky_and_not_shrunk() {
    let dir = tempfile::tempdir().unwrap();
    let b = base(dir.path(), "outage", OUTAGE);
    let calls = Arc::new(AtomicU32::new(0));
    let counted = calls.clone();
    // Fails on every other run: the first run fails, its confirmations alternate.
    let mut o = standin(dir.path(), move |_: &Suite, _| {
        let n = counted.fetch_add(1, Ordering::SeqCst);
        Ok(if n.is_multiple_of(2) {
            failed()
        } else {
            Outcome::Met
        })
    });
    o.cases = Some(1);
    let found = explore(&b, o).await.unwrap();
    assert!(found.ok(), "{}", found.human());
    assert!(found.confirmed.is_empty());
    assert_eq!(found.flaky.len(), 1, "{}", found.human());
    assert_eq!((found.flaky[0].failed, found.flaky[0].runs), (2, 4));
    // One run and three confirmations, and no shrinking after them.
    assert_eq!(calls.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn inconclusive_cases_are_counted_and_never_fail() {
    let dir = tempfile::tempdir().unwrap();
    let b = base(dir.path(), "outage", OUTAGE);
    let o = standin(dir.path(), |_: &Suite, _| {
        Ok(Outcome::Inconclusive {
            unmet: vec!["faults: unknown: `idle-1` touched nothing".into()],
        })
    });
    let found = explore(&b, o).await.unwrap();
    assert!(found.ok());
    assert_eq!((found.cases, found.inconclusive.len()), (4, 4));
}

#[tokio::test]
async fn shrinking_finds_the_shortest_idle_that_still_fails() {
    // Stands in for the outage: any quiet spell longer than wait_timeout (2 s) fails.
    let dir = tempfile::tempdir().unwrap();
    let b = base(dir.path(), "outage", OUTAGE);
    let mut o = standin(dir.path(), |s: &Suite, _| {
        Ok(if idle_over(s, Duration::from_secs(2)) {
            failed()
        } else {
            Outcome::Met
        })
    });
    o.cases = Some(40);
    o.max_failures = Some(1);
    o.confirm = 1;
    o.shrink_steps = None;
    let found = explore(&b, o).await.unwrap();
    assert_eq!(found.confirmed.len(), 1, "{}", found.human());
    let c = &found.confirmed[0];
    assert_eq!(c.faults.len(), 1, "{}", found.human());
    let f = &c.faults[0];
    assert_eq!(f.fault, Fault::Idle);
    assert_eq!(f.lasts, Lasts::For(Duration::from_millis(2001)));
    assert!(f.repeat.is_none());
    // CI sees the confirmed failure as one failing testcase.
    let xml = found.junit().to_xml();
    let report = quick_junit::Report::deserialize_from_str(&xml).unwrap();
    let cases = &report.test_suites[0].test_cases;
    assert_eq!(cases.len(), 1, "{xml}");
    assert!(
        matches!(
            cases[0].status,
            quick_junit::TestCaseStatus::NonSuccess {
                kind: quick_junit::NonSuccessKind::Failure,
                ..
            }
        ),
        "{xml}"
    );

    // Written, remembered, and replayed first by the next exploration of this base.
    let path = c.path.as_ref().expect("a report directory was given");
    assert_eq!(std::fs::read_to_string(path).unwrap(), c.text);
    let again = explore(
        &b,
        Options {
            cases: Some(0),
            ..standin(dir.path(), |s: &Suite, _| {
                Ok(if idle_over(s, Duration::from_secs(2)) {
                    failed()
                } else {
                    Outcome::Met
                })
            })
        },
    )
    .await
    .unwrap();
    assert_eq!((again.replayed, again.cases), (1, 0));
    assert_eq!(again.confirmed.len(), 1, "{}", again.human());
    assert!(again.confirmed[0].case.starts_with("regression "));
}

#[tokio::test]
async fn goneaway_check_accepts_a_written_suite() {
    let dir = tempfile::tempdir().unwrap();
    let b = base(dir.path(), "outage", OUTAGE);
    let mut o = standin(dir.path(), |_: &Suite, _| Ok(failed()));
    o.cases = Some(1);
    o.confirm = 1;
    o.shrink_steps = Some(3);
    let found = explore(&b, o).await.unwrap();
    let path = found.confirmed[0].path.clone().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_goneaway"))
        .arg("check")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        found.confirmed[0].text
    );
    let text = &found.confirmed[0].text;
    assert!(
        text.starts_with("# Found by goneaway explore: base "),
        "{text}"
    );
    assert!(
        text.contains("seed = ") && text.contains("[[fault]]"),
        "{text}"
    );
}

#[tokio::test]
async fn a_cancelled_exploration_says_so_and_does_not_pass() {
    let dir = tempfile::tempdir().unwrap();
    let b = base(dir.path(), "outage", OUTAGE);
    let o = standin(dir.path(), |_: &Suite, _| Ok(Outcome::Met));
    o.cancel.cancel();
    let found = explore(&b, o).await.unwrap();
    assert!(found.interrupted && found.cases == 0, "{}", found.human());
    assert!(found.human().contains("interrupted"));
}

#[tokio::test]
async fn a_bad_fault_list_is_one_clear_error() {
    let e = goneaway::explore::parse_kinds("kill,nap").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("unknown fault kind `nap` in --faults"),
        "{e}"
    );
}

/// The live options both pools are explored with: the same seed, cases and alphabet.
fn live(dir: &Path) -> Options {
    Options {
        seed: 7,
        cases: Some(3),
        jobs: 1,
        faults: Some(vec![FaultKind::Idle, FaultKind::Kill, FaultKind::Latency]),
        confirm: 1,
        max_failures: Some(1),
        shrink_steps: Some(8),
        report_dir: Some(dir.to_path_buf()),
        ..Options::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_outage_pool_is_caught_and_shrunk_to_one_fault() {
    if !common::mariadb() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let b = base(dir.path(), "outage", OUTAGE);
    let found = explore(&b, live(dir.path())).await.unwrap();
    assert!(!found.ok(), "{}", found.human());
    let c = &found.confirmed[0];
    assert_eq!(c.faults.len(), 1, "{}", found.human());
    let one = &c.faults[0];
    // A connection idles the quiet spell plus the think (50 ms) before it: a spell a
    // little under wait_timeout already goes stale, and the shrinker finds that edge.
    let stale = match &one.fault {
        Fault::Idle => {
            one.duration() + Duration::from_millis(50)
                > Duration::from_secs(2) - Duration::from_millis(100)
        }
        Fault::Kill { target } => *target == KillTarget::Idle,
        _ => false,
    };
    assert!(stale, "not the outage's failure: {}", found.human());

    // The written file is an ordinary suite that fails the same way when run.
    let suite = Suite::load(c.path.as_ref().unwrap()).unwrap();
    let report = suite.run().await.unwrap();
    match Outcome::of(&report) {
        Outcome::Failed { checks, .. } => assert_eq!(checks, c.checks, "{}", report.human()),
        other => panic!(
            "the written suite did not fail: {other:?}\n{}",
            report.human()
        ),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_fixed_pool_survives_the_same_cases() {
    if !common::mariadb() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let b = base(dir.path(), "robust", ROBUST);
    let found = explore(&b, live(dir.path())).await.unwrap();
    assert!(found.ok(), "{}", found.human());
    assert!(found.flaky.is_empty(), "{}", found.human());
    assert_eq!(found.cases, 3);
}
