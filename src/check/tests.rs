//! Checkers on hand-built histories: each case is a story told as a history.

use super::*;
use crate::history::{FaultRecord, OpError, OpKind, PoolSample};

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
    }
}

fn fault(name: &str, start: u64, healed: Option<u64>) -> FaultRecord {
    FaultRecord {
        name: name.into(),
        kind: name.split('#').next().unwrap().into(),
        detail: String::new(),
        start: ms(start),
        healed: healed.map(ms),
        error: None,
    }
}

fn history(ops: Vec<OpRecord>, faults: Vec<FaultRecord>) -> History {
    History {
        ops,
        faults,
        samples: vec![],
        workload_end: ms(10_000),
        settled: Some(PoolSample {
            at: ms(10_000),
            size: 4,
            idle: 4,
        }),
        baseline: None,
        final_read: Some(FinalRead::Rows(Default::default())),
        interrupted: None,
        workers: 2,
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
    let h = history(
        vec![
            op(0, 5500, 5510, Some(ErrorClass::GoneAway)),
            op(0, 5600, 5610, None),
            op(1, 5600, 5610, None),
        ],
        vec![fault("night", 2000, Some(5500))],
    );
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
    let clean = history(
        vec![op(0, 5600, 5610, None), op(1, 5600, 5610, None)],
        vec![fault("night", 2000, Some(5500))],
    );
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
    let mut f = fault("kill", 1000, None);
    f.error = Some("no idle sessions".into());
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
