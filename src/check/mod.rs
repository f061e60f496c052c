//! Checkers: pure functions from a [`History`] (and the suite's expectations) to
//! verdicts. They never touch a server or a pool; the same history always gives the
//! same verdicts.
//!
//! Each finding has a stable `summary` (no counts, no times: it is what snapshots
//! compare) and a measured `detail` (counts, times, the raw error) for people.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::history::{ErrorClass, FinalRead, History, OpRecord};

/// Every check by name, in the order reports show them (`throughput` only when a suite
/// sets a floor).
pub const CHECKS: [&str; 6] = [
    "run",
    "faults",
    "errors",
    "recovery",
    "pool-baseline",
    "writes",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expected {
    Valid,
    Invalid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Valid,
    Unknown,
    Invalid,
}

/// The checked `[expect]` of a suite.
#[derive(Debug, Clone, PartialEq)]
pub struct Expect {
    pub verdict: Expected,
    /// For negative controls: classes that must reach the application.
    pub errors: BTreeSet<ErrorClass>,
    /// Classes the application may see inside a fault window (plus grace).
    pub tolerate: BTreeSet<ErrorClass>,
    /// How long after a fault heals its window stays open for tolerance.
    pub grace: Duration,
    /// Every worker must complete a request within this long after each heal.
    pub recover_within: Duration,
    pub min_throughput: Option<f64>,
    /// Exactly which classes each named fault's windows must show.
    pub windows: BTreeMap<String, BTreeSet<ErrorClass>>,
    /// For negative controls: checks that must come out Invalid.
    pub failing: BTreeSet<String>,
    /// Classes tolerated in one fault's windows only, by fault name.
    pub per_fault: BTreeMap<String, BTreeSet<ErrorClass>>,
}

impl Expect {
    pub const DEFAULT_GRACE: Duration = Duration::from_secs(2);
    pub const DEFAULT_RECOVERY: Duration = Duration::from_secs(10);
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// Stable: what went wrong, without numbers.
    pub summary: String,
    /// Measured: how often, when, the raw error.
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckResult {
    pub name: &'static str,
    pub verdict: Verdict,
    pub findings: Vec<Finding>,
}

impl CheckResult {
    fn new(name: &'static str, findings: Vec<(Verdict, Finding)>) -> Self {
        let verdict = findings
            .iter()
            .map(|(v, _)| *v)
            .max()
            .unwrap_or(Verdict::Valid);
        CheckResult {
            name,
            verdict,
            findings: findings.into_iter().map(|(_, f)| f).collect(),
        }
    }
}

fn finding(summary: impl Into<String>, detail: impl Into<String>) -> Finding {
    Finding {
        summary: summary.into(),
        detail: detail.into(),
    }
}

/// A fault's window: from when it was applied to when it healed (or the workload
/// ended, for one that never healed).
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// Occurrence name, e.g. `kill#2`.
    pub name: String,
    /// The suite's fault name, e.g. `kill`.
    pub fault: String,
    pub kind: String,
    pub start: Duration,
    pub end: Duration,
}

pub fn windows(h: &History) -> Vec<Window> {
    h.faults
        .iter()
        .map(|f| Window {
            name: f.name.clone(),
            fault: f.name.split('#').next().unwrap_or(&f.name).to_string(),
            kind: f.kind.clone(),
            start: f.start,
            end: f.healed.unwrap_or(h.workload_end.max(f.start)),
        })
        .collect()
}

/// Every window (extended by `grace`) an operation overlaps.
pub fn windows_of<'w>(
    op: &OpRecord,
    windows: &'w [Window],
    grace: Duration,
) -> impl Iterator<Item = &'w Window> {
    let (start, end) = (op.start, op.end);
    windows
        .iter()
        .filter(move |w| end >= w.start && start <= w.end + grace)
}

/// The window an operation is blamed on: the most recent fault it overlaps (a kill
/// during a lowered setting is about the kill).
pub fn window_of<'w>(op: &OpRecord, windows: &'w [Window], grace: Duration) -> Option<&'w Window> {
    windows_of(op, windows, grace).max_by_key(|w| w.start)
}

/// Run every check and compose them.
pub fn check(h: &History, e: &Expect) -> Vec<CheckResult> {
    let mut out = vec![
        run(h),
        faults(h),
        errors(h, e),
        recovery(h, e),
        pool_baseline(h),
        writes(h),
    ];
    if let Some(floor) = e.min_throughput {
        out.push(throughput(h, floor));
    }
    out
}

/// Invalid beats Unknown beats Valid.
pub fn overall(checks: &[CheckResult]) -> Verdict {
    checks
        .iter()
        .map(|c| c.verdict)
        .max()
        .unwrap_or(Verdict::Unknown)
}

fn run(h: &History) -> CheckResult {
    let mut f = Vec::new();
    if let Some(why) = &h.interrupted {
        f.push((
            Verdict::Unknown,
            finding("the run was cut short", why.clone()),
        ));
    }
    if h.ops.is_empty() {
        f.push((
            Verdict::Unknown,
            finding("the workload made no requests", "nothing was observed"),
        ));
    }
    CheckResult::new("run", f)
}

/// A fault that failed to apply or heal means the run did not test what it claims.
fn faults(h: &History) -> CheckResult {
    let f = h
        .faults
        .iter()
        .filter_map(|r| {
            r.error.as_ref().map(|e| {
                (
                    Verdict::Unknown,
                    finding(
                        format!("fault `{}` did not run as planned", r.name),
                        e.clone(),
                    ),
                )
            })
        })
        .collect();
    CheckResult::new("faults", f)
}

/// Failures of one class, blamed on one window (or none), tolerated there or not.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorGroup<'h> {
    pub class: ErrorClass,
    /// The window the failures are blamed on (see [`window_of`]), or `None`.
    pub window: Option<String>,
    pub tolerated: bool,
    /// In the order they started.
    pub ops: Vec<&'h OpRecord>,
}

/// Every failure the application saw, grouped: the one attribution the errors check,
/// the judgement and the report all read.
pub fn error_groups<'h>(h: &'h History, e: &Expect) -> Vec<ErrorGroup<'h>> {
    let ws = windows(h);
    let mut groups: BTreeMap<(ErrorClass, Option<String>, bool), Vec<&OpRecord>> = BTreeMap::new();
    for op in h.failures() {
        let class = op.class().expect("failures have a class");
        let window = window_of(op, &ws, e.grace).map(|w| w.name.clone());
        groups
            .entry((class, window, tolerated(op, class, &ws, e)))
            .or_default()
            .push(op);
    }
    groups
        .into_iter()
        .map(|((class, window, tolerated), ops)| ErrorGroup {
            class,
            window,
            tolerated,
            ops,
        })
        .collect()
}

fn errors(h: &History, e: &Expect) -> CheckResult {
    let f = error_groups(h, e)
        .into_iter()
        .filter(|g| !g.tolerated)
        .map(|g| {
            let place = match &g.window {
                Some(w) => format!("during `{w}`"),
                None => "outside any fault window".to_string(),
            };
            let first = g.ops[0];
            let detail = format!(
                "{} request(s); first at {} on worker {} ({}): {}",
                g.ops.len(),
                secs(first.start),
                first.worker,
                first.kind,
                first
                    .error
                    .as_ref()
                    .map(|e| e.message.as_str())
                    .unwrap_or_default()
            );
            let class = g.class;
            (
                Verdict::Invalid,
                finding(
                    format!("the application saw {class} ({}) {place}", class.symptom()),
                    detail,
                ),
            )
        })
        .collect();
    CheckResult::new("errors", f)
}

fn recovery(h: &History, e: &Expect) -> CheckResult {
    let mut f = Vec::new();
    for fault in &h.faults {
        // Settings kept until the end heal after the workload: nothing to recover from.
        let Some(healed) = fault.healed.filter(|t| *t < h.workload_end) else {
            continue;
        };
        for w in 0..h.workers {
            let after: Vec<&OpRecord> = h
                .ops
                .iter()
                .filter(|o| o.worker == w && o.start >= healed)
                .collect();
            let name = &fault.name;
            match h.first_success_after(w, healed) {
                Some(op) if op.end - healed <= e.recover_within => {}
                Some(op) => f.push((
                    Verdict::Invalid,
                    finding(
                        format!(
                            "worker {w} took longer than {} to recover after `{name}`",
                            humantime::format_duration(e.recover_within)
                        ),
                        format!("first success {} after the heal", secs(op.end - healed)),
                    ),
                )),
                None if after.is_empty() => f.push((
                    Verdict::Unknown,
                    finding(
                        format!("worker {w} made no request after `{name}` healed"),
                        "recovery was not observed; leave more workload after the last fault",
                    ),
                )),
                None => f.push((
                    Verdict::Invalid,
                    finding(
                        format!("worker {w} never recovered after `{name}`"),
                        format!("{} request(s) after the heal, all failed", after.len()),
                    ),
                )),
            }
        }
    }
    CheckResult::new("recovery", f)
}

fn pool_baseline(h: &History) -> CheckResult {
    let Some(settled) = h.settled else {
        return CheckResult::new(
            "pool-baseline",
            vec![(
                Verdict::Unknown,
                finding(
                    "the pool's state after the workload was not recorded",
                    "the run ended before it settled",
                ),
            )],
        );
    };
    let leaks: Vec<&OpRecord> = h.ops.iter().filter(|o| o.leaked).collect();
    let mut f = Vec::new();
    if !leaks.is_empty() {
        let places: Vec<String> = leaks
            .iter()
            .take(5)
            .map(|o| {
                format!(
                    "worker {} request #{} ({}) at {}",
                    o.worker,
                    o.seq,
                    o.kind,
                    secs(o.start)
                )
            })
            .collect();
        let more = leaks.len().saturating_sub(places.len());
        let detail = format!(
            "{} connection(s) still checked out after the workload ({} open, {} idle); checked out and never returned by: {}{}",
            settled.in_use(),
            settled.size,
            settled.idle,
            places.join("; "),
            if more > 0 {
                format!("; and {more} more")
            } else {
                String::new()
            }
        );
        f.push((
            Verdict::Invalid,
            finding("connections were checked out and never returned", detail),
        ));
    }
    let stranded = settled.in_use().saturating_sub(leaks.len() as u32);
    if stranded > 0 {
        // The application gave these back; the client never put them back in the pool
        // (sqlx pings a returned connection without a timeout, so one whose request was
        // abandoned mid-reply can wait forever).
        f.push((
            Verdict::Invalid,
            finding(
                "the pool never took back connections the application had returned",
                format!("{stranded} connection(s) in use after the workload with no request holding them ({} open, {} idle)", settled.size, settled.idle),
            ),
        ));
    }
    CheckResult::new("pool-baseline", f)
}

fn writes(h: &History) -> CheckResult {
    let acked = h.acknowledged_ids();
    let f = match &h.final_read {
        _ if acked.is_empty() => vec![],
        None => vec![(
            Verdict::Unknown,
            finding(
                "acknowledged writes were not read back",
                "the run ended before the final read",
            ),
        )],
        Some(FinalRead::Failed(why)) => {
            vec![(
                Verdict::Unknown,
                finding("acknowledged writes could not be read back", why.clone()),
            )]
        }
        Some(FinalRead::Rows(rows)) => {
            let lost: Vec<i64> = acked.difference(rows).copied().collect();
            if lost.is_empty() {
                vec![]
            } else {
                vec![(
                    Verdict::Invalid,
                    finding(
                        "acknowledged writes were lost",
                        format!(
                            "{} of {} acknowledged inserts missing, e.g. ids {:?}",
                            lost.len(),
                            acked.len(),
                            &lost[..lost.len().min(5)]
                        ),
                    ),
                )]
            }
        }
    };
    CheckResult::new("writes", f)
}

fn throughput(h: &History, floor: f64) -> CheckResult {
    let ok = h.ops.iter().filter(|o| o.ok()).count() as f64;
    let secs_run = h.workload_end.as_secs_f64().max(1e-3);
    let rate = ok / secs_run;
    let f = if rate < floor {
        vec![(
            Verdict::Invalid,
            finding(
                format!("throughput fell below {floor} successful requests/s"),
                format!("{rate:.1} requests/s over {secs_run:.1}s"),
            ),
        )]
    } else {
        vec![]
    };
    CheckResult::new("throughput", f)
}

/// Whether a run met its suite's expectations, and why not.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Judgement {
    pub verdict: Verdict,
    pub met: bool,
    /// Stable reasons the expectation was not met; empty when met.
    pub unmet: Vec<String>,
}

/// Compare the verdicts with what the suite expected. `Unknown` never passes, not even
/// for a negative control.
pub fn judge(h: &History, e: &Expect, checks: &[CheckResult]) -> Judgement {
    let verdict = overall(checks);
    let mut unmet = Vec::new();
    for c in checks.iter().filter(|c| c.verdict == Verdict::Unknown) {
        for f in &c.findings {
            unmet.push(format!("{}: unknown: {}", c.name, f.summary));
        }
    }
    match e.verdict {
        Expected::Valid => {
            for c in checks.iter().filter(|c| c.verdict == Verdict::Invalid) {
                for f in &c.findings {
                    unmet.push(format!("{}: {}", c.name, f.summary));
                }
            }
        }
        Expected::Invalid => {
            if verdict != Verdict::Invalid {
                unmet.push(
                    "expected the run to be invalid (a negative control), but nothing was caught"
                        .into(),
                );
            }
            let seen = disallowed_classes(h, e);
            for class in &e.errors {
                if !seen.contains(class) {
                    unmet.push(format!(
                        "expected the application to see {class} ({}), it did not",
                        class.symptom()
                    ));
                }
            }
            for name in &e.failing {
                if !checks
                    .iter()
                    .any(|c| c.name == name && c.verdict == Verdict::Invalid)
                {
                    unmet.push(format!("expected check `{name}` to fail, it did not"));
                }
            }
            // `failing` is the whole list: a negative control that also breaks something
            // else (say, never recovers) is not the failure it claims to show.
            if !e.failing.is_empty() {
                let listed = e.failing.iter().cloned().collect::<Vec<_>>().join(", ");
                for c in checks
                    .iter()
                    .filter(|c| c.verdict == Verdict::Invalid && !e.failing.contains(c.name))
                {
                    for f in &c.findings {
                        unmet.push(format!(
                            "{}: {} (only {listed} were expected to fail)",
                            c.name, f.summary
                        ));
                    }
                }
            }
        }
    }
    let ws = windows(h);
    for (fault, want) in &e.windows {
        let got: BTreeSet<ErrorClass> = h
            .failures()
            .filter(|op| windows_of(op, &ws, e.grace).any(|w| &w.fault == fault))
            .filter_map(|op| op.class())
            .collect();
        if &got != want {
            unmet.push(format!(
                "window `{fault}`: expected errors {} but saw {}",
                classes(want),
                classes(&got)
            ));
        }
    }
    Judgement {
        verdict,
        met: unmet.is_empty(),
        unmet,
    }
}

/// Classes the application saw that the suite does not tolerate where they happened.
pub fn disallowed_classes(h: &History, e: &Expect) -> BTreeSet<ErrorClass> {
    error_groups(h, e)
        .into_iter()
        .filter(|g| !g.tolerated)
        .map(|g| g.class)
        .collect()
}

/// Whether a failure is allowed: inside some fault window (plus grace) whose tolerance,
/// the suite's or the fault's own, includes its class.
pub fn tolerated(op: &OpRecord, class: ErrorClass, ws: &[Window], e: &Expect) -> bool {
    windows_of(op, ws, e.grace).any(|w| {
        e.tolerate.contains(&class)
            || e.per_fault
                .get(&w.fault)
                .is_some_and(|t| t.contains(&class))
    })
}

fn classes(set: &BTreeSet<ErrorClass>) -> String {
    if set.is_empty() {
        "none".into()
    } else {
        format!(
            "[{}]",
            set.iter().map(|c| c.name()).collect::<Vec<_>>().join(", ")
        )
    }
}

fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

#[cfg(test)]
mod tests;
