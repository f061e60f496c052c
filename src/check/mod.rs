//! Checkers: pure functions from a [`History`] (and the suite's expectations) to
//! verdicts. They never touch a server or a pool; the same history always gives the
//! same verdicts.
//!
//! Each finding has a stable `summary` (no counts, no times: it is what snapshots
//! compare) and a measured `detail` (counts, times, the raw error) for people.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::history::{ErrorClass, FinalRead, History, Lasts, OpRecord};

mod attribution;
mod evidence;
mod predict;

pub use attribution::{Place, blame, overlapping, windows};
pub use evidence::evidence;
pub use predict::outcome;

/// A fault that takes effect more than this after its planned time did not test what the
/// suite says (a kill that waited for a target, a heal that hung).
pub const LATE: Duration = Duration::from_secs(1);

/// Every check by name, in the order reports show them (`server-connections` only when a
/// suite sets `max_server_connections`, `fail-within` only with `fail_within`,
/// `throughput` only when it sets a floor).
pub const CHECKS: [&str; 8] = [
    "run",
    "faults",
    "errors",
    "recovery",
    "pool-baseline",
    "writes",
    "server-connections",
    "fail-within",
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
    /// Faults marked `effect = "none"`: controls that must touch nothing.
    pub no_effect: BTreeSet<String>,
    /// Never more connections open at the server than this, the harness's own excluded.
    pub max_server_connections: Option<u64>,
    /// Every failed checkout or statement failed within this long of starting it.
    pub fail_within: Option<Duration>,
    /// What a failover may lose of the acknowledged writes.
    pub lost_in_failover: LostInFailover,
}

/// Asynchronous replication really loses the writes a replica had not applied when it
/// was promoted; a suite says whether that is a failure, tolerable, or the point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LostInFailover {
    /// Any write lost in failover fails `writes` (the default).
    #[default]
    Forbidden,
    /// Shown, not a failure.
    Allowed,
    /// At least one must be lost (a suite that shows the loss), and it is not a failure.
    Expected,
}

impl LostInFailover {
    pub fn name(self) -> &'static str {
        match self {
            LostInFailover::Forbidden => "forbidden",
            LostInFailover::Allowed => "allowed",
            LostInFailover::Expected => "expected",
        }
    }
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

/// Run every check and compose them.
pub fn check(h: &History, e: &Expect) -> Vec<CheckResult> {
    let mut out = vec![
        run(h),
        faults(h, e),
        errors(h, e),
        recovery(h, e),
        pool_baseline(h),
        writes(h, e),
    ];
    if let Some(max) = e.max_server_connections {
        out.push(server_connections(h, e, max));
    }
    if let Some(bound) = e.fail_within {
        out.push(fail_within(h, bound));
    }
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

/// A fault proves something only if it ran when planned, while the workload ran, and
/// touched something; a control marked `effect = "none"` must touch nothing.
fn faults(h: &History, e: &Expect) -> CheckResult {
    let mut f = Vec::new();
    for r in &h.faults {
        let name = &r.name;
        let spec = name.split('#').next().unwrap_or(name);
        let unknown =
            |summary: String, detail: String| (Verdict::Unknown, finding(summary, detail));
        if r.skipped {
            f.push(unknown(
                format!("fault `{name}` never ran: nothing shows whether the pool survived it"),
                r.detail.clone(),
            ));
            continue;
        }
        if let Some(err) = &r.error {
            f.push(unknown(
                format!("fault `{name}` did not run as planned"),
                err.clone(),
            ));
            if !r.applied {
                continue;
            }
        }
        if r.start >= h.workload_end {
            f.push(unknown(
                format!("fault `{name}` took effect after the workload ended: nothing shows whether the pool survived it"),
                format!("took effect at {}, the workload ended at {}", secs(r.start), secs(h.workload_end)),
            ));
            continue;
        }
        if r.start > r.planned + LATE {
            f.push(unknown(
                format!("fault `{name}` took effect late"),
                format!(
                    "planned at {}, took effect at {} (more than {} late)",
                    secs(r.planned),
                    secs(r.start),
                    humantime::format_duration(LATE)
                ),
            ));
        }
        let ev = evidence(r, h);
        match (ev.touched, e.no_effect.contains(spec)) {
            (false, false) => f.push(unknown(format!("fault `{name}` touched nothing"), ev.what)),
            (true, true) => f.push((
                Verdict::Invalid,
                finding(
                    format!("fault `{name}` was meant to touch nothing, but did"),
                    ev.what,
                ),
            )),
            _ => {}
        }
    }
    if let Some(every) = h.leak_every
        && !h.ops.iter().any(|o| o.leaked)
    {
        f.push((
            Verdict::Unknown,
            finding(
                "the workload's leaks never happened: no request kept its connection",
                format!("leak_every = {every}, {} request(s) made", h.ops.len()),
            ),
        ));
    }
    CheckResult::new("faults", f)
}

/// Failures of one class, placed alike, tolerated there or not.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorGroup<'h> {
    pub class: ErrorClass,
    /// Where they happened, and which fault they are blamed on (see [`blame`]).
    pub place: Place,
    pub tolerated: bool,
    /// In the order they started.
    pub ops: Vec<&'h OpRecord>,
}

/// Every failure the application saw, grouped: the one attribution the errors check,
/// the judgement and the report all read.
pub fn error_groups<'h>(h: &'h History, e: &Expect) -> Vec<ErrorGroup<'h>> {
    let ws = windows(h);
    let mut groups: BTreeMap<(ErrorClass, Place, bool), Vec<&OpRecord>> = BTreeMap::new();
    for op in h.failures() {
        let class = op.class().expect("failures have a class");
        let b = blame(op, &ws, e);
        groups
            .entry((class, b.place, b.tolerated))
            .or_default()
            .push(op);
    }
    groups
        .into_iter()
        .map(|((class, place, tolerated), ops)| ErrorGroup {
            class,
            place,
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
            let place = g.place.describe();
            let first = g.ops[0];
            let kind = match &first.step {
                Some(step) => format!("{}, at step {step}", first.kind),
                None => first.kind.to_string(),
            };
            let detail = format!(
                "{} request(s); first at {} on worker {} ({kind}): {}",
                g.ops.len(),
                secs(first.start),
                first.worker,
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

/// How each worker came back after one fault healed.
#[derive(Debug, Clone, PartialEq)]
pub struct Recovery {
    /// The fault occurrence.
    pub fault: String,
    pub healed: Duration,
    /// Per worker: how long after the heal its lasting recovery began, or why not.
    pub workers: Vec<WorkerRecovery>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WorkerRecovery {
    /// Succeeded this long after the heal and stayed recovered.
    After(Duration),
    /// Made no request after the heal.
    Unseen,
    /// Never succeeded for good: every success was followed by a failure no other
    /// fault explains.
    Never { attempts: usize },
}

impl Recovery {
    /// The slowest worker's recovery, only when every worker recovered.
    pub fn all_within(&self) -> Option<Duration> {
        self.workers
            .iter()
            .map(|w| match w {
                WorkerRecovery::After(d) => Some(*d),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .map(|ds| ds.into_iter().max().unwrap_or_default())
    }

    pub fn not_recovered(&self) -> usize {
        self.workers
            .iter()
            .filter(|w| !matches!(w, WorkerRecovery::After(_)))
            .count()
    }
}

/// Recovery after every fault that healed while the workload still ran (settings kept to
/// the end have nothing to recover from). A worker has recovered at its first success
/// after the heal that no later failure undoes, unless that failure is explained by
/// another fault: one open at that moment, or one that began after the success.
pub fn recoveries(h: &History, e: &Expect) -> Vec<Recovery> {
    let ws = windows(h);
    h.faults
        .iter()
        .filter(|f| f.applied && f.lasts != Lasts::UntilEnd)
        .filter_map(|f| Some((f, f.healed?)))
        .filter(|(_, healed)| *healed < h.workload_end)
        .map(|(f, healed)| {
            let workers = (0..h.workers)
                .map(|w| {
                    let after: Vec<&OpRecord> = h
                        .ops
                        .iter()
                        .filter(|o| o.worker == w && o.start >= healed)
                        .collect();
                    if after.is_empty() {
                        return WorkerRecovery::Unseen;
                    }
                    let explained = |fail: &OpRecord, success: &OpRecord| {
                        let class = fail.class().expect("a failure");
                        overlapping(fail, &ws, e.grace).any(|g| {
                            g.name != f.name
                                && attribution::can_blame(g, fail, class)
                                && (fail.start <= g.end || g.start >= success.start)
                        })
                    };
                    after
                        .iter()
                        .enumerate()
                        .filter(|(_, o)| o.ok())
                        .find(|(i, s)| {
                            after[i + 1..]
                                .iter()
                                .filter(|o| !o.ok())
                                .all(|fail| explained(fail, s))
                        })
                        .map_or(
                            WorkerRecovery::Never {
                                attempts: after.len(),
                            },
                            |(_, s)| WorkerRecovery::After(s.end - healed),
                        )
                })
                .collect();
            Recovery {
                fault: f.name.clone(),
                healed,
                workers,
            }
        })
        .collect()
}

fn recovery(h: &History, e: &Expect) -> CheckResult {
    let mut f = Vec::new();
    for fault in &h.faults {
        // A fault still in force when the workload ended: nothing shows recovery.
        if fault.applied
            && fault.lasts != Lasts::UntilEnd
            && fault.healed.is_none_or(|t| t >= h.workload_end)
        {
            f.push((
                Verdict::Unknown,
                finding(
                    format!("`{}` healed only after the workload ended", fault.name),
                    "recovery was not observed; leave workload after the fault",
                ),
            ));
        }
    }
    for r in recoveries(h, e) {
        let name = &r.fault;
        for (w, how) in r.workers.iter().enumerate() {
            match how {
                WorkerRecovery::After(d) if *d <= e.recover_within => {}
                WorkerRecovery::After(d) => f.push((
                    Verdict::Invalid,
                    finding(
                        format!(
                            "worker {w} took longer than {} to recover after `{name}`",
                            humantime::format_duration(e.recover_within)
                        ),
                        format!("lasting success {} after the heal", secs(*d)),
                    ),
                )),
                WorkerRecovery::Unseen => f.push((
                    Verdict::Unknown,
                    finding(
                        format!("worker {w} made no request after `{name}` healed"),
                        "recovery was not observed; leave more workload after the last fault",
                    ),
                )),
                WorkerRecovery::Never { attempts } => f.push((
                    Verdict::Invalid,
                    finding(
                        format!("worker {w} never recovered after `{name}`"),
                        format!(
                            "{attempts} request(s) after the heal; no success lasted (a later failure no other fault explains)"
                        ),
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

/// Ids with the time their request ended, for a report (at most five, then a count).
fn ids_and_times(h: &History, ids: &BTreeSet<i64>) -> String {
    let mut shown: Vec<String> = h
        .ops
        .iter()
        .filter(|o| o.ok())
        .flat_map(|o| o.inserted.iter().map(move |id| (id, o)))
        .filter(|(id, _)| ids.contains(id))
        .take(5)
        .map(|(id, o)| {
            format!(
                "id {id} (acknowledged at {} to worker {})",
                secs(o.end),
                o.worker
            )
        })
        .collect();
    if ids.len() > shown.len() {
        shown.push(format!("and {} more", ids.len() - shown.len()));
    }
    shown.join(", ")
}

fn writes(h: &History, e: &Expect) -> CheckResult {
    let acked = h.acknowledged_ids();
    // After a failover: the new primary must have them; what only the old one has was
    // lost in failover (acknowledged by a primary whose replica never applied it).
    if let Some(old) = &h.old_primary_read {
        return CheckResult::new("writes", failover_writes(h, e, &acked, old));
    }
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

/// The server's side of the pool: the connections it had open, the harness's own taken
/// off, never above the suite's bound. A pool can look bounded from the inside while the
/// server sees a storm (a reconnect per waiting request after an outage).
fn server_connections(h: &History, e: &Expect, max: u64) -> CheckResult {
    let Some(peak) = h
        .status
        .iter()
        .max_by_key(|s| (s.others(), std::cmp::Reverse(s.at)))
    else {
        return CheckResult::new(
            "server-connections",
            vec![(
                Verdict::Unknown,
                finding(
                    "the server's connection count was never sampled",
                    "no SHOW GLOBAL STATUS sample was recorded (the server never answered the harness's admin connection)",
                ),
            )],
        );
    };
    let over: Vec<_> = h.status.iter().filter(|s| s.others() > max).collect();
    let f = match over.first() {
        None => vec![],
        Some(first) => vec![(
            Verdict::Invalid,
            finding(
                format!("the server had more than {max} connections open besides the harness's"),
                format!(
                    "peak {} at {}{} (Threads_connected {}, of which {} the harness's); first over {max} at {}{}; {} of {} samples over",
                    peak.others(),
                    secs(peak.at),
                    during(h, e, peak.at),
                    peak.threads_connected,
                    peak.harness,
                    secs(first.at),
                    during(h, e, first.at),
                    over.len(),
                    h.status.len()
                ),
            ),
        )],
    };
    CheckResult::new("server-connections", f)
}

/// Fail fast, or hang? Every failure must have reached the application within `bound`
/// of the checkout or statement that failed starting (HikariCP's "database down"
/// question). A harness `timeout` is a hang by definition: it waited the op timeout.
fn fail_within(h: &History, bound: Duration) -> CheckResult {
    let slow: Vec<&OpRecord> = h.failures().filter(|o| waited(o) > bound).collect();
    let f = match slow.iter().max_by_key(|o| waited(o)) {
        None => vec![],
        Some(worst) => vec![(
            Verdict::Invalid,
            finding(
                format!(
                    "the application waited longer than {} for an error",
                    humantime::format_duration(bound)
                ),
                format!(
                    "{} of {} failed request(s); longest {} ({}, worker {} at {}): {}",
                    slow.len(),
                    h.failures().count(),
                    secs(waited(worst)),
                    worst.class().map_or("?", |c| c.name()),
                    worst.worker,
                    secs(worst.start),
                    worst
                        .error
                        .as_ref()
                        .map(|e| e.message.as_str())
                        .unwrap_or_default()
                ),
            ),
        )],
    };
    CheckResult::new("fail-within", f)
}

/// How long the application waited for a failure (the whole request when the record does
/// not say).
pub fn waited(o: &OpRecord) -> Duration {
    o.waited.unwrap_or(o.end.saturating_sub(o.start))
}

/// ` (during `restart`)`, ` (after `restart` (grace))` or nothing: where a moment falls.
fn during(h: &History, e: &Expect, t: Duration) -> String {
    let ws = windows(h);
    let inside = ws.iter().rev().find(|w| w.start <= t && t <= w.end);
    let after = ws.iter().rev().find(|w| w.end < t && t <= w.end + e.grace);
    match (inside, after) {
        (Some(w), _) => format!(" (during `{}`)", w.name),
        (None, Some(w)) => format!(" (after `{}`, grace)", w.name),
        _ => String::new(),
    }
}

fn failover_writes(
    h: &History,
    e: &Expect,
    acked: &BTreeSet<i64>,
    old: &FinalRead,
) -> Vec<(Verdict, Finding)> {
    let (new_rows, old_rows) = match (&h.final_read, old) {
        (Some(FinalRead::Rows(n)), FinalRead::Rows(o)) => (n, o),
        (Some(FinalRead::Failed(why)), _) | (_, FinalRead::Failed(why)) => {
            return vec![(
                Verdict::Unknown,
                finding(
                    "acknowledged writes could not be read back from both primaries",
                    why.clone(),
                ),
            )];
        }
        (None, _) => {
            return vec![(
                Verdict::Unknown,
                finding(
                    "acknowledged writes were not read back",
                    "the run ended before the final read",
                ),
            )];
        }
    };
    let missing: BTreeSet<i64> = acked.difference(new_rows).copied().collect();
    let in_failover: BTreeSet<i64> = missing.intersection(old_rows).copied().collect();
    let lost: BTreeSet<i64> = missing.difference(old_rows).copied().collect();
    let mut f = Vec::new();
    if !lost.is_empty() {
        f.push((
            Verdict::Invalid,
            finding(
                "acknowledged writes were lost: on neither the new primary nor the old one",
                format!(
                    "{} of {} acknowledged inserts: {}",
                    lost.len(),
                    acked.len(),
                    ids_and_times(h, &lost)
                ),
            ),
        ));
    }
    let detail = |ids: &BTreeSet<i64>| {
        format!(
            "{} of {} acknowledged inserts are on the old primary only (asynchronous replication had not applied them when the replica was promoted): {}",
            ids.len(),
            acked.len(),
            ids_and_times(h, ids)
        )
    };
    match (e.lost_in_failover, in_failover.is_empty()) {
        (LostInFailover::Forbidden, false) => f.push((
            Verdict::Invalid,
            finding(
                "acknowledged writes were lost in failover",
                detail(&in_failover),
            ),
        )),
        // Always said, lost or not, so the stable part of the report does not depend
        // on a race the suite allows.
        (LostInFailover::Allowed, none) => f.push((
            Verdict::Valid,
            finding(
                "writes lost in failover are allowed by the suite",
                if none {
                    format!(
                        "none was: all {} acknowledged inserts reached the new primary",
                        acked.len()
                    )
                } else {
                    detail(&in_failover)
                },
            ),
        )),
        (LostInFailover::Expected, false) => f.push((
            Verdict::Valid,
            finding(
                format!(
                    "acknowledged writes were lost in failover ({} by the suite)",
                    e.lost_in_failover.name()
                ),
                detail(&in_failover),
            ),
        )),
        (LostInFailover::Expected, true) => f.push((
            Verdict::Invalid,
            finding(
                "the suite expects writes lost in failover, and none was",
                format!(
                    "all {} acknowledged inserts reached the new primary",
                    acked.len()
                ),
            ),
        )),
        _ => {}
    }
    f
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
            .filter(|op| blame(op, &ws, e).window.is_some_and(|w| &w.fault == fault))
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
