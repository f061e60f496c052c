//! Checkers on hand-built histories: each case is a story told as a history.

use super::predict::Outcome;
use super::*;
use crate::history::{
    FaultKind, FaultRecord, Observed, OpError, OpKind, PoolSample, Session, SessionSample,
    StatusSample, ToxicCounts,
};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn op(worker: u32, start: u64, end: u64, error: Option<ErrorClass>) -> OpRecord {
    OpRecord {
        worker,
        seq: start,
        kind: OpKind::Select,
        start: ms(start),
        end: ms(end),
        error: error.map(|c| OpError::new(c, format!("raw {c}"))),
        phase: None,
        inserted: vec![],
        leaked: false,
        step: None,
        waited: None,
    }
}

fn kind_of(name: &str) -> FaultKind {
    match name.split('#').next().unwrap() {
        "idle" | "night" | "quiet" => FaultKind::Idle,
        "dba" => FaultKind::WaitTimeout,
        "sort" => FaultKind::SetGlobal,
        "crash" => FaultKind::Crash,
        "pause" => FaultKind::Pause,
        "cut" => FaultKind::Cut,
        "kill" => FaultKind::Kill,
        "reset" => FaultKind::ResetPeer,
        "latency" => FaultKind::Latency,
        "ro" => FaultKind::ReadOnly,
        other => panic!("no kind for test fault `{other}`"),
    }
}

/// A fault that took effect when planned; one that never heals is a setting kept to the
/// end.
fn fault(name: &str, start: u64, healed: Option<u64>) -> FaultRecord {
    let kind = kind_of(name);
    FaultRecord {
        name: name.into(),
        kind,
        detail: String::new(),
        planned: ms(start),
        start: ms(start),
        lasts: match healed {
            Some(h) if h == start => Lasts::Instant,
            Some(h) => Lasts::For(ms(h - start)),
            None => Lasts::UntilEnd,
        },
        healed: healed.map(ms),
        error: None,
        applied: true,
        skipped: false,
        observed: match kind {
            FaultKind::WaitTimeout => Observed::Setting {
                variable: "wait_timeout".into(),
                old: "28800".into(),
                new: "2".into(),
                first_session: 100,
            },
            FaultKind::SetGlobal => Observed::Setting {
                variable: "sort_buffer_size".into(),
                old: "1".into(),
                new: "2".into(),
                first_session: 100,
            },
            FaultKind::Kill => Observed::Killed { sessions: 2 },
            FaultKind::ResetPeer | FaultKind::Latency => Observed::Toxic {
                counts: Some(ToxicCounts {
                    connections: 1,
                    bytes: 100,
                    events: 1,
                }),
            },
            _ => Observed::Nothing,
        },
    }
}

/// The server's view: a sleeping pool session seen just before `at`, gone at `at` (the
/// evidence that a quiet spell closed something).
fn closed_idle_at(h: &mut History, at: u64) {
    let session = |id, idle_ms| Session {
        id,
        sleeping: true,
        idle_ms,
    };
    h.sessions.push(SessionSample {
        at: ms(at - 200),
        sessions: vec![session(1, 1000)],
        total: 2,
    });
    h.sessions.push(SessionSample {
        at: ms(at),
        sessions: vec![],
        total: 1,
    });
    h.sessions.sort_by_key(|s| s.at);
}

fn history(ops: Vec<OpRecord>, faults: Vec<FaultRecord>) -> History {
    History {
        ops,
        faults,
        samples: vec![],
        sessions: vec![],
        status: vec![],
        workload_end: ms(10_000),
        settled: Some(PoolSample {
            at: ms(10_000),
            size: 4,
            idle: 4,
        }),
        baseline: None,
        final_read: Some(FinalRead::Rows(Default::default())),
        old_primary_read: None,
        interrupted: None,
        workers: 2,
        leak_every: None,
    }
}

fn expect(verdict: Expected) -> Expect {
    Expect {
        verdict,
        errors: BTreeSet::new(),
        tolerate: BTreeSet::new(),
        grace: ms(1000),
        recover_within: ms(2000),
        min_throughput: None,
        windows: BTreeMap::new(),
        failing: BTreeSet::new(),
        per_fault: BTreeMap::new(),
        no_effect: BTreeSet::new(),
        max_server_connections: None,
        fail_within: None,
        lost_in_failover: LostInFailover::Forbidden,
    }
}

fn get<'a>(checks: &'a [CheckResult], name: &str) -> &'a CheckResult {
    checks.iter().find(|c| c.name == name).unwrap()
}

#[test]
fn a_quiet_healthy_run_is_valid() {
    let h = history(vec![op(0, 0, 5, None), op(1, 0, 5, None)], vec![]);
    let checks = check(&h, &expect(Expected::Valid));
    assert_eq!(overall(&checks), Verdict::Valid);
    assert!(judge(&h, &expect(Expected::Valid), &checks).met);
}

#[test]
fn errors_inside_a_window_are_tolerated_only_if_listed() {
    let h = history(
        vec![
            op(0, 3000, 3010, Some(ErrorClass::LostConnection)),
            op(0, 4000, 4010, None),
            op(1, 4000, 4010, None),
        ],
        vec![fault("crash", 2990, Some(3500))],
    );
    let mut e = expect(Expected::Valid);
    assert_eq!(get(&check(&h, &e), "errors").verdict, Verdict::Invalid);
    e.tolerate.insert(ErrorClass::LostConnection);
    assert_eq!(get(&check(&h, &e), "errors").verdict, Verdict::Valid);
    // A fault's own tolerance works only for that fault.
    let mut e = expect(Expected::Valid);
    e.per_fault
        .insert("crash".into(), BTreeSet::from([ErrorClass::LostConnection]));
    assert_eq!(get(&check(&h, &e), "errors").verdict, Verdict::Valid);
    e.per_fault = BTreeMap::from([("pause".into(), BTreeSet::from([ErrorClass::LostConnection]))]);
    assert_eq!(get(&check(&h, &e), "errors").verdict, Verdict::Invalid);
}

#[test]
fn grace_extends_a_window_and_no_further() {
    let mut e = expect(Expected::Valid);
    e.tolerate.insert(ErrorClass::GoneAway);
    let within = history(
        vec![op(0, 4400, 4410, Some(ErrorClass::GoneAway))],
        vec![fault("idle", 1000, Some(3500))],
    );
    assert_eq!(get(&check(&within, &e), "errors").verdict, Verdict::Valid);
    let after = history(
        vec![op(0, 4600, 4610, Some(ErrorClass::GoneAway))],
        vec![fault("idle", 1000, Some(3500))],
    );
    let c = check(&after, &e);
    assert_eq!(get(&c, "errors").verdict, Verdict::Invalid);
    assert_eq!(
        get(&c, "errors").findings[0].summary,
        "the application saw gone_away (MySQL server has gone away (2006)) outside any fault window"
    );
}

#[test]
fn an_error_is_blamed_on_the_most_recent_fault() {
    let h = history(
        vec![op(0, 12_000, 12_005, Some(ErrorClass::GoneAway))],
        vec![fault("dba", 1000, None), fault("night", 9000, Some(12_000))],
    );
    let h = History {
        workload_end: ms(16_000),
        ..h
    };
    let c = check(&h, &expect(Expected::Valid));
    assert!(
        get(&c, "errors").findings[0]
            .summary
            .ends_with("during `night`")
    );
}

#[test]
fn recovery_is_measured_per_worker_after_each_heal() {
    let slow = history(
        vec![
            op(0, 3600, 3610, None),
            op(1, 3600, 6000, Some(ErrorClass::Timeout)),
            op(1, 6000, 6010, None),
        ],
        vec![fault("pause", 1000, Some(3500))],
    );
    let c = get(&check(&slow, &expect(Expected::Valid)), "recovery").clone();
    assert_eq!(c.verdict, Verdict::Invalid);
    assert_eq!(
        c.findings[0].summary,
        "worker 1 took longer than 2s to recover after `pause`"
    );

    let never = history(
        vec![
            op(0, 3600, 3610, None),
            op(1, 3600, 3700, Some(ErrorClass::ConnectRefused)),
        ],
        vec![fault("crash", 1000, Some(3500))],
    );
    assert!(
        get(&check(&never, &expect(Expected::Valid)), "recovery").findings[0]
            .summary
            .contains("never recovered")
    );

    let unseen = history(
        vec![op(0, 3600, 3610, None)],
        vec![fault("crash", 1000, Some(3500))],
    );
    let c = check(&unseen, &expect(Expected::Valid));
    assert_eq!(
        get(&c, "recovery").verdict,
        Verdict::Unknown,
        "a worker with no request after the heal proves nothing"
    );
    let j = judge(&unseen, &expect(Expected::Valid), &c);
    assert!(!j.met, "Unknown never passes");
}

#[test]
fn leaks_are_named_where_they_were_checked_out() {
    let mut leaked = op(1, 2000, 2005, None);
    leaked.leaked = true;
    leaked.seq = 7;
    let mut h = history(vec![op(0, 0, 5, None), leaked], vec![]);
    h.settled = Some(PoolSample {
        at: ms(10_000),
        size: 4,
        idle: 3,
    });
    let c = get(&check(&h, &expect(Expected::Valid)), "pool-baseline").clone();
    assert_eq!(c.verdict, Verdict::Invalid);
    assert!(
        c.findings[0]
            .detail
            .contains("worker 1 request #7 (select) at 2.00s"),
        "{}",
        c.findings[0].detail
    );
    h.settled = None;
    assert_eq!(
        get(&check(&h, &expect(Expected::Valid)), "pool-baseline").verdict,
        Verdict::Unknown
    );
}

#[test]
fn acknowledged_writes_must_be_read_back() {
    let mut w = op(0, 0, 5, None);
    w.inserted = vec![11, 12];
    let mut failed = op(0, 10, 15, Some(ErrorClass::LostConnection));
    failed.inserted = vec![13];
    let mut h = history(vec![w, failed], vec![]);
    h.final_read = Some(FinalRead::Rows([11].into()));
    let c = get(&check(&h, &expect(Expected::Valid)), "writes").clone();
    assert_eq!(c.verdict, Verdict::Invalid);
    assert!(
        c.findings[0]
            .detail
            .starts_with("1 of 2 acknowledged inserts missing"),
        "{}",
        c.findings[0].detail
    );
    h.final_read = Some(FinalRead::Rows([11, 12].into()));
    assert_eq!(
        get(&check(&h, &expect(Expected::Valid)), "writes").verdict,
        Verdict::Valid,
        "an unacknowledged write may be lost"
    );
    h.final_read = Some(FinalRead::Failed("down".into()));
    assert_eq!(
        get(&check(&h, &expect(Expected::Valid)), "writes").verdict,
        Verdict::Unknown
    );
}

#[test]
fn a_negative_control_must_catch_what_it_names() {
    let mut h = history(
        vec![
            op(0, 5500, 5510, Some(ErrorClass::GoneAway)),
            op(0, 5600, 5610, None),
            op(1, 5600, 5610, None),
        ],
        vec![fault("night", 2000, Some(5500))],
    );
    closed_idle_at(&mut h, 4000);
    let mut e = expect(Expected::Invalid);
    e.errors.insert(ErrorClass::GoneAway);
    e.windows
        .insert("night".into(), BTreeSet::from([ErrorClass::GoneAway]));
    let c = check(&h, &e);
    let j = judge(&h, &e, &c);
    assert!(j.met, "{:?}", j.unmet);

    // Caught, but not for the reason it claims: not met.
    let mut e2 = e.clone();
    e2.errors = BTreeSet::from([ErrorClass::CheckoutTimeout]);
    let j = judge(&h, &e2, &c);
    assert!(!j.met);
    assert!(j.unmet[0].contains("checkout_timeout"), "{:?}", j.unmet);

    // A negative control that passes is a failed test.
    let mut clean = history(
        vec![op(0, 5600, 5610, None), op(1, 5600, 5610, None)],
        vec![fault("night", 2000, Some(5500))],
    );
    closed_idle_at(&mut clean, 4000);
    let j = judge(&clean, &e, &check(&clean, &e));
    assert!(!j.met);
    assert!(j.unmet.iter().any(|u| u.contains("nothing was caught")));
    assert!(
        j.unmet
            .iter()
            .any(|u| u.contains("window `night`: expected errors [gone_away] but saw none"))
    );
}

#[test]
fn an_interrupted_run_is_unknown_and_fails_either_expectation() {
    let mut h = history(vec![op(0, 0, 5, Some(ErrorClass::GoneAway))], vec![]);
    h.interrupted = Some("Ctrl-C".into());
    let mut e = expect(Expected::Invalid);
    e.errors.insert(ErrorClass::GoneAway);
    let c = check(&h, &e);
    assert_eq!(get(&c, "run").verdict, Verdict::Unknown);
    assert!(!judge(&h, &e, &c).met);
    assert!(!judge(&h, &expect(Expected::Valid), &c).met);
}

#[test]
fn a_fault_that_did_nothing_makes_the_run_unknown() {
    let mut f = fault("kill", 1000, Some(1000));
    f.error = Some("no idle sessions".into());
    f.applied = false;
    let h = history(vec![op(0, 0, 5, None), op(1, 0, 5, None)], vec![f]);
    let c = check(&h, &expect(Expected::Valid));
    assert_eq!(overall(&c), Verdict::Unknown);
    assert!(!judge(&h, &expect(Expected::Valid), &c).met);
}

#[test]
fn throughput_floor_is_checked_only_when_set() {
    let h = history(
        (0..10).map(|i| op(0, i * 100, i * 100 + 5, None)).collect(),
        vec![],
    );
    let mut e = expect(Expected::Valid);
    assert!(check(&h, &e).iter().all(|c| c.name != "throughput"));
    e.min_throughput = Some(5.0);
    assert_eq!(
        get(&check(&h, &e), "throughput").verdict,
        Verdict::Invalid,
        "10 requests in 10s is 1/s"
    );
    e.min_throughput = Some(0.5);
    assert_eq!(get(&check(&h, &e), "throughput").verdict, Verdict::Valid);
}

#[test]
fn failing_lists_every_check_a_negative_control_may_fail() {
    // Checkout timeouts while the network was down, and a worker that never came back.
    let h = history(
        vec![
            op(0, 2500, 3500, Some(ErrorClass::CheckoutTimeout)),
            op(0, 7000, 7005, None),
            op(1, 7000, 7100, Some(ErrorClass::ConnectRefused)),
        ],
        vec![fault("cut", 2000, Some(6000))],
    );
    let mut e = expect(Expected::Invalid);
    e.errors.insert(ErrorClass::CheckoutTimeout);
    e.failing.insert("errors".into());
    let c = check(&h, &e);
    let j = judge(&h, &e, &c);
    assert!(!j.met);
    assert!(
        j.unmet
            .iter()
            .any(|u| u.starts_with("recovery: worker 1 never recovered")),
        "{:?}",
        j.unmet
    );
    e.failing.insert("recovery".into());
    assert!(judge(&h, &e, &check(&h, &e)).met);
}

// The dishonest runs of issue 9, told as histories.

#[test]
fn a_setting_kept_to_the_end_tolerates_nothing_it_cannot_cause() {
    // `set_global sort_buffer_size` at 0 with no duration, tolerate gone_away.
    let h = history(
        vec![
            op(0, 3000, 3010, Some(ErrorClass::GoneAway)),
            op(1, 3000, 3010, None),
        ],
        vec![fault("sort", 0, None)],
    );
    let mut e = expect(Expected::Valid);
    e.tolerate.insert(ErrorClass::GoneAway);
    let c = check(&h, &e);
    let errors = get(&c, "errors");
    assert_eq!(errors.verdict, Verdict::Invalid);
    assert_eq!(
        errors.findings[0].summary,
        "the application saw gone_away (MySQL server has gone away (2006)) during `sort`, which cannot cause it"
    );
    // Even a lowered wait_timeout, which can cause it, opens no run-long window for the
    // suite's tolerance; the fault's own `tolerate` does.
    let h = history(
        vec![op(0, 5000, 5010, Some(ErrorClass::GoneAway))],
        vec![fault("dba", 0, None)],
    );
    assert_eq!(get(&check(&h, &e), "errors").verdict, Verdict::Invalid);
    e.per_fault
        .insert("dba".into(), BTreeSet::from([ErrorClass::GoneAway]));
    assert_eq!(get(&check(&h, &e), "errors").verdict, Verdict::Valid);
}

#[test]
fn a_lowered_wait_timeout_is_blamed_only_once_a_session_can_have_idled_that_long() {
    // wait_timeout 2s from 1s: a gone_away at 1.5s is not its doing.
    let h = history(
        vec![op(0, 1500, 1510, Some(ErrorClass::GoneAway))],
        vec![fault("dba", 1000, None)],
    );
    let mut e = expect(Expected::Valid);
    e.per_fault
        .insert("dba".into(), BTreeSet::from([ErrorClass::GoneAway]));
    assert_eq!(get(&check(&h, &e), "errors").verdict, Verdict::Invalid);
}

#[test]
fn a_fault_that_never_ran_or_ran_late_or_after_the_workload_proves_nothing() {
    let ops = vec![op(0, 0, 100, None), op(1, 0, 100, None)];
    let mut skipped = fault("crash", 3000, Some(4000));
    skipped.skipped = true;
    skipped.applied = false;
    skipped.healed = None;
    let h = History {
        workload_end: ms(200),
        ..history(ops.clone(), vec![skipped])
    };
    let c = check(&h, &expect(Expected::Valid));
    assert_eq!(get(&c, "faults").verdict, Verdict::Unknown);
    assert!(get(&c, "faults").findings[0].summary.contains("never ran"));

    let mut late = fault("kill", 3000, Some(6050));
    late.start = ms(6050);
    let h = history(
        vec![op(0, 6100, 6110, None), op(1, 6100, 6110, None)],
        vec![late],
    );
    let c = check(&h, &expect(Expected::Valid));
    assert_eq!(
        get(&c, "faults").findings[0].summary,
        "fault `kill` took effect late"
    );

    let after = fault("kill", 9000, Some(9000));
    let h = History {
        workload_end: ms(6000),
        ..history(ops, vec![after])
    };
    let c = check(&h, &expect(Expected::Valid));
    assert!(
        get(&c, "faults").findings[0]
            .summary
            .contains("after the workload ended")
    );
}

#[test]
fn faults_with_no_effect_are_unknown() {
    let busy = || vec![op(0, 0, 9000, None), op(1, 0, 9000, None)];
    // A toxic whose proxy counted nothing.
    let mut quiet = fault("latency", 2000, Some(4000));
    quiet.observed = Observed::Toxic {
        counts: Some(ToxicCounts::default()),
    };
    let c = check(&history(busy(), vec![quiet]), &expect(Expected::Valid));
    assert_eq!(get(&c, "faults").verdict, Verdict::Unknown);
    assert_eq!(
        get(&c, "faults").findings[0].summary,
        "fault `latency` touched nothing"
    );
    // A proxy that does not count: requests that crossed it meanwhile stand in.
    let mut real = fault("latency", 2000, Some(4000));
    real.observed = Observed::Toxic { counts: None };
    let c = check(
        &history(busy(), vec![real.clone()]),
        &expect(Expected::Valid),
    );
    assert_eq!(get(&c, "faults").verdict, Verdict::Valid);
    let c = check(
        &history(
            vec![
                op(0, 0, 100, None),
                op(0, 5000, 5010, None),
                op(1, 5000, 5010, None),
            ],
            vec![real],
        ),
        &expect(Expected::Valid),
    );
    assert_eq!(get(&c, "faults").verdict, Verdict::Unknown);
    // A pause between requests froze nobody.
    let gap = vec![
        op(0, 0, 100, None),
        op(0, 3000, 3010, None),
        op(1, 3000, 3010, None),
    ];
    let c = check(
        &history(gap, vec![fault("pause", 1000, Some(1300))]),
        &expect(Expected::Valid),
    );
    assert_eq!(get(&c, "faults").verdict, Verdict::Unknown);
    // A night that closed no connection (wait_timeout 8h): the sessions were there all along.
    let mut h = history(busy(), vec![fault("night", 2000, Some(3000))]);
    for at in [1900, 2500, 3100] {
        h.sessions.push(SessionSample {
            at: ms(at),
            sessions: vec![Session {
                id: 1,
                sleeping: true,
                idle_ms: 500,
            }],
            total: 2,
        });
    }
    let c = check(&h, &expect(Expected::Valid));
    assert_eq!(get(&c, "faults").verdict, Verdict::Unknown);
    closed_idle_at(&mut h, 2800);
    assert_eq!(
        get(&check(&h, &expect(Expected::Valid)), "faults").verdict,
        Verdict::Valid
    );
}

#[test]
fn a_control_marked_effect_none_must_touch_nothing() {
    let mut h = history(
        vec![
            op(0, 0, 100, None),
            op(1, 5000, 5010, None),
            op(0, 5000, 5010, None),
        ],
        vec![fault("quiet", 2000, Some(3000))],
    );
    let mut e = expect(Expected::Valid);
    e.no_effect.insert("quiet".into());
    assert_eq!(get(&check(&h, &e), "faults").verdict, Verdict::Valid);
    closed_idle_at(&mut h, 2500);
    let c = check(&h, &e);
    assert_eq!(get(&c, "faults").verdict, Verdict::Invalid);
    assert_eq!(
        get(&c, "faults").findings[0].summary,
        "fault `quiet` was meant to touch nothing, but did"
    );
}

#[test]
fn leaks_that_never_happened_prove_nothing() {
    let mut h = history(vec![op(0, 0, 5, None), op(1, 0, 5, None)], vec![]);
    h.leak_every = Some(500);
    let c = check(&h, &expect(Expected::Valid));
    assert_eq!(get(&c, "faults").verdict, Verdict::Unknown);
    h.ops[1].leaked = true;
    assert_eq!(
        get(&check(&h, &expect(Expected::Valid)), "faults").verdict,
        Verdict::Valid
    );
}

#[test]
fn an_error_is_blamed_on_a_fault_that_can_cause_it_not_the_one_whose_grace_it_fell_in() {
    // A night 2–5s under wait_timeout 8h and a reset at 5.5s: the reset's gone_away falls
    // in the night's grace but is the reset's.
    let mut h = history(
        vec![
            op(0, 5600, 5610, Some(ErrorClass::GoneAway)),
            op(0, 7000, 7010, None),
            op(1, 7000, 7010, None),
        ],
        vec![
            fault("night", 2000, Some(5000)),
            fault("reset", 5500, Some(5800)),
        ],
    );
    closed_idle_at(&mut h, 3000);
    let mut e = expect(Expected::Invalid);
    e.errors.insert(ErrorClass::GoneAway);
    e.windows
        .insert("night".into(), BTreeSet::from([ErrorClass::GoneAway]));
    let j = judge(&h, &e, &check(&h, &e));
    assert!(!j.met);
    assert!(
        j.unmet
            .iter()
            .any(|u| u == "window `night`: expected errors [gone_away] but saw none"),
        "{:?}",
        j.unmet
    );
    // After a heal, inside the grace: labelled so.
    let h = history(
        vec![op(0, 4400, 4410, Some(ErrorClass::LostConnection))],
        vec![fault("crash", 1000, Some(4000))],
    );
    let g = error_groups(&h, &expect(Expected::Valid));
    assert_eq!(g[0].place.describe(), "after `crash` (grace)");
}

#[test]
fn recovery_means_staying_recovered() {
    // After `kill` a worker succeeds once, then fails on every request; the failures
    // fall in an earlier reset's long grace, which must not hide them.
    let mut e = expect(Expected::Valid);
    e.grace = ms(30_000);
    e.tolerate.insert(ErrorClass::LostConnection);
    let mut ops = vec![op(0, 4100, 4110, None)];
    for t in (4200..9000).step_by(200) {
        ops.push(op(0, t, t + 10, Some(ErrorClass::LostConnection)));
    }
    ops.push(op(1, 4100, 4110, None));
    let h = history(
        ops,
        vec![
            fault("reset", 1000, Some(2000)),
            fault("kill", 4000, Some(4000)),
        ],
    );
    let c = check(&h, &e);
    let rec = get(&c, "recovery");
    assert_eq!(rec.verdict, Verdict::Invalid);
    assert!(
        rec.findings
            .iter()
            .any(|f| f.summary == "worker 0 never recovered after `kill`"),
        "{:?}",
        rec.findings
    );
    // The report then says how many workers did not recover, not a time.
    let r = recoveries(&h, &e);
    let kill = r.iter().find(|r| r.fault == "kill").unwrap();
    assert_eq!(kill.all_within(), None);
    assert_eq!(kill.not_recovered(), 1);
    // Failures explained by a fault that began after the success are that fault's.
    let h = history(
        vec![
            op(0, 4100, 4110, None),
            op(0, 6000, 6010, Some(ErrorClass::LostConnection)),
            op(0, 6500, 6510, None),
            op(1, 4100, 4110, None),
            op(1, 6500, 6510, None),
        ],
        vec![
            fault("kill", 4000, Some(4000)),
            fault("crash", 5900, Some(6200)),
        ],
    );
    let r = recoveries(&h, &e);
    assert_eq!(r[0].all_within(), Some(ms(110)));
}

#[test]
fn a_prediction_is_confirmed_only_where_it_was_made() {
    use crate::lint::{Prediction, Where};
    let e = expect(Expected::Invalid);
    // A leak lint with no leak: not exercised, whatever checkout timeouts a cut caused.
    let h = history(
        vec![op(0, 2500, 3500, Some(ErrorClass::CheckoutTimeout))],
        vec![fault("cut", 2000, Some(5000))],
    );
    let leak = Prediction {
        class: ErrorClass::CheckoutTimeout,
        place: Where::AfterLeaks,
    };
    assert_eq!(outcome(&leak, &h, &e), Outcome::NotExercised);
    // A stale-connection lint about a night: a gone_away blamed on a reset does not
    // confirm it; a quiet night that was used afterwards refutes it.
    let mut h = history(
        vec![
            op(0, 5600, 5610, Some(ErrorClass::GoneAway)),
            op(1, 5100, 5110, None),
        ],
        vec![
            fault("night", 2000, Some(5000)),
            fault("reset", 5500, Some(5800)),
        ],
    );
    closed_idle_at(&mut h, 3000);
    let night = Prediction {
        class: ErrorClass::GoneAway,
        place: Where::Faults(vec!["night".into()]),
    };
    assert_eq!(outcome(&night, &h, &e), Outcome::Refuted);
    h.ops[0].start = ms(5050);
    h.ops[0].end = ms(5060);
    assert_eq!(outcome(&night, &h, &e), Outcome::Confirmed);
}

fn status(at: u64, threads_connected: u64, harness: u64, connections: u64) -> StatusSample {
    StatusSample {
        at: ms(at),
        threads_connected,
        connections,
        aborted_clients: 0,
        aborted_connects: 0,
        max_used_connections: threads_connected,
        harness,
    }
}

#[test]
fn server_connections_counts_what_the_server_saw_without_the_harness() {
    let mut e = expect(Expected::Valid);
    e.max_server_connections = Some(8);
    let ops = vec![op(0, 0, 9000, None), op(1, 0, 9000, None)];
    // Not asked for: no such check.
    let h = history(ops.clone(), vec![]);
    assert!(
        check(&h, &expect(Expected::Valid))
            .iter()
            .all(|c| c.name != "server-connections")
    );
    // Never sampled: nothing shows it held.
    assert_eq!(
        get(&check(&h, &e), "server-connections").verdict,
        Verdict::Unknown
    );
    // 10 open, 2 of them the harness's: 8 is within the bound.
    let mut h = history(ops.clone(), vec![fault("crash", 3000, Some(4000))]);
    h.status = vec![status(1000, 10, 2, 20), status(2000, 9, 1, 25)];
    assert_eq!(
        get(&check(&h, &e), "server-connections").verdict,
        Verdict::Valid
    );
    // A reconnect storm right after the heal: 14 besides the harness's.
    h.status.push(status(4200, 16, 2, 5));
    let c = check(&h, &e);
    let sc = get(&c, "server-connections");
    assert_eq!(sc.verdict, Verdict::Invalid);
    assert_eq!(
        sc.findings[0].summary,
        "the server had more than 8 connections open besides the harness's"
    );
    assert!(
        sc.findings[0]
            .detail
            .starts_with("peak 14 at 4.20s (after `crash`, grace)"),
        "{}",
        sc.findings[0].detail
    );
}

#[test]
fn fail_within_catches_a_wait_for_an_error_longer_than_the_bound() {
    let mut e = expect(Expected::Valid);
    e.fail_within = Some(ms(1500));
    e.tolerate.insert(ErrorClass::CheckoutTimeout);
    e.tolerate.insert(ErrorClass::Timeout);
    let cut = fault("cut", 2000, Some(5000));
    // Checkouts that gave up after 1s: fast failures, valid.
    let fast = vec![
        op(0, 2100, 3100, Some(ErrorClass::CheckoutTimeout)),
        op(1, 2100, 3100, Some(ErrorClass::CheckoutTimeout)),
        op(0, 5200, 5210, None),
        op(1, 5200, 5210, None),
    ];
    let h = history(fast, vec![cut.clone()]);
    assert_eq!(get(&check(&h, &e), "fail-within").verdict, Verdict::Valid);
    // One hung until the harness's op timeout (5s): the application would have hung.
    let mut hung = op(1, 2100, 7100, Some(ErrorClass::Timeout));
    hung.waited = Some(ms(5000));
    let h = history(
        vec![
            op(0, 2100, 3100, Some(ErrorClass::CheckoutTimeout)),
            hung,
            op(0, 7200, 7210, None),
            op(1, 7200, 7210, None),
        ],
        vec![cut],
    );
    let c = check(&h, &e);
    let f = get(&c, "fail-within");
    assert_eq!(f.verdict, Verdict::Invalid);
    assert_eq!(
        f.findings[0].summary,
        "the application waited longer than 1s 500ms for an error"
    );
    assert!(
        f.findings[0]
            .detail
            .starts_with("1 of 2 failed request(s); longest 5.00s (timeout, worker 1"),
        "{}",
        f.findings[0].detail
    );
    // A failing statement after a long wait inside the request is measured from the
    // statement, not from the checkout.
    let mut late = op(0, 2100, 6100, Some(ErrorClass::GoneAway));
    late.waited = Some(ms(3));
    assert_eq!(waited(&late), ms(3));
}

#[test]
fn a_read_only_window_is_blamed_for_read_only_only_and_needs_a_write_in_it() {
    let write = |worker, start, end, error| OpRecord {
        kind: OpKind::Insert,
        ..op(worker, start, end, error)
    };
    let h = history(
        vec![
            write(0, 2100, 2110, Some(ErrorClass::ReadOnly)),
            op(1, 2100, 2110, Some(ErrorClass::LostConnection)),
            write(0, 4100, 4110, None),
            op(1, 4100, 4110, None),
        ],
        vec![fault("ro", 2000, Some(4000))],
    );
    let mut e = expect(Expected::Valid);
    e.per_fault
        .insert("ro".into(), BTreeSet::from([ErrorClass::ReadOnly]));
    let groups = error_groups(&h, &e);
    let ro = groups
        .iter()
        .find(|g| g.class == ErrorClass::ReadOnly)
        .unwrap();
    assert_eq!(ro.place, Place::During("ro".into()));
    assert!(ro.tolerated);
    // A read-only server does not drop connections.
    let lost = groups
        .iter()
        .find(|g| g.class == ErrorClass::LostConnection)
        .unwrap();
    assert_eq!(lost.place, Place::NotCausedBy("ro".into()));
    let c = check(&h, &e);
    assert_eq!(get(&c, "faults").verdict, Verdict::Valid);
    // Only reads in the window: nothing was there to refuse.
    let h = history(
        vec![
            op(0, 2100, 2110, None),
            write(0, 4100, 4110, None),
            op(1, 4100, 4110, None),
        ],
        vec![fault("ro", 2000, Some(4000))],
    );
    let c = check(&h, &e);
    assert_eq!(get(&c, "faults").verdict, Verdict::Unknown);
    assert!(
        get(&c, "faults").findings[0]
            .detail
            .contains("no write was attempted")
    );
}

#[test]
fn after_a_failover_writes_only_the_old_primary_has_were_lost_in_failover() {
    let insert = |worker, start, ids: Vec<i64>| OpRecord {
        kind: OpKind::Insert,
        inserted: ids,
        ..op(worker, start, start + 5, None)
    };
    let rows = |ids: &[i64]| FinalRead::Rows(ids.iter().copied().collect());
    let mut h = history(
        vec![
            insert(0, 100, vec![1]),
            insert(1, 200, vec![2]),
            insert(0, 300, vec![3]),
        ],
        vec![],
    );
    // 1 replicated; 2 acknowledged by the old primary, never applied by the replica;
    // 3 on neither.
    h.final_read = Some(rows(&[1]));
    h.old_primary_read = Some(rows(&[1, 2]));
    let mut e = expect(Expected::Valid);
    let w = get(&check(&h, &e), "writes").clone();
    assert_eq!(w.verdict, Verdict::Invalid);
    let summaries: Vec<&str> = w.findings.iter().map(|f| f.summary.as_str()).collect();
    assert_eq!(
        summaries,
        [
            "acknowledged writes were lost: on neither the new primary nor the old one",
            "acknowledged writes were lost in failover"
        ]
    );
    assert!(
        w.findings[1]
            .detail
            .contains("id 2 (acknowledged at 0.20s to worker 1)"),
        "{}",
        w.findings[1].detail
    );
    // Allowed: said either way (the snapshot must not depend on the race), no failure.
    e.lost_in_failover = LostInFailover::Allowed;
    h.final_read = Some(rows(&[1, 3]));
    h.old_primary_read = Some(rows(&[1, 2, 3]));
    let w = get(&check(&h, &e), "writes").clone();
    assert_eq!(w.verdict, Verdict::Valid);
    assert_eq!(
        w.findings[0].summary,
        "writes lost in failover are allowed by the suite"
    );
    assert!(
        w.findings[0].detail.contains("id 2"),
        "{}",
        w.findings[0].detail
    );
    h.final_read = Some(rows(&[1, 2, 3]));
    let w = get(&check(&h, &e), "writes").clone();
    assert_eq!(
        w.findings[0].summary,
        "writes lost in failover are allowed by the suite"
    );
    assert!(w.findings[0].detail.starts_with("none was"));
    // Expected: shown, not a failure.
    h.final_read = Some(rows(&[1, 3]));
    h.old_primary_read = Some(rows(&[1, 2, 3]));
    e.lost_in_failover = LostInFailover::Expected;
    let w = get(&check(&h, &e), "writes").clone();
    assert_eq!(w.verdict, Verdict::Valid);
    assert_eq!(
        w.findings[0].summary,
        "acknowledged writes were lost in failover (expected by the suite)"
    );
    // Expected but none lost: the suite did not show what it says.
    h.final_read = Some(rows(&[1, 2, 3]));
    assert_eq!(get(&check(&h, &e), "writes").verdict, Verdict::Invalid);
    e.lost_in_failover = LostInFailover::Forbidden;
    assert_eq!(get(&check(&h, &e), "writes").verdict, Verdict::Valid);
}
