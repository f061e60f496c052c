//! The timeline: what `report.html` draws, saved beside the report as `timeline.json` so
//! an old run can be drawn again without re-running anything (`goneaway render`).
//!
//! It is a copy of the history cut down to what a picture needs (every request's worker,
//! times, outcome and attribution; fault windows; pool and server counts) plus the places
//! where a check failed, worked out once here from the history and the checks. The
//! report's JSON does not carry it: it can hold thousands of requests, and `--json` output
//! and the snapshotted report stay what they were.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::check::{self, CheckResult, Expect, Verdict, WorkerRecovery};
use crate::history::{ErrorClass, History, Lasts, OpKind, Phase};

/// The file it is saved as, beside `report.json`.
pub const FILE: &str = "timeline.json";

/// More requests than this are not all kept: every failure is, and successes are thinned
/// evenly (`omitted` says how many were left out). A 20 s run of the built-in suites makes
/// a few thousand.
pub const MAX_REQUESTS: usize = 50_000;

/// Markers per check at most; the text report names the rest.
const MAX_MARKS: usize = 50;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    pub workers: u32,
    /// When the workload stopped issuing requests, in µs from the start of the run.
    pub workload_end_us: u64,
    /// How long a fault's window stays open after its heal.
    pub grace_us: u64,
    /// The bound on each worker's recovery after a heal.
    pub recover_within_us: u64,
    /// The server settings the suite asked for (`wait_timeout`, `max_connections`, …).
    #[serde(default)]
    pub server_settings: BTreeMap<String, String>,
    pub requests: Vec<Request>,
    /// Successful requests left out because the run made more than [`MAX_REQUESTS`].
    #[serde(default)]
    pub omitted: u64,
    /// Distinct error messages; a request names its own by index.
    pub messages: Vec<String>,
    pub faults: Vec<Window>,
    /// The pool's own counts, as it reported them (every 100 ms).
    pub pool: Vec<PoolPoint>,
    /// The server's view of the pool's sessions (every 200 ms), when sampled.
    #[serde(default)]
    pub server: Vec<ServerPoint>,
    /// Where a check failed.
    pub marks: Vec<Mark>,
}

/// One application request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub worker: u32,
    pub seq: u64,
    pub kind: OpKind,
    pub start_us: u64,
    pub end_us: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<ErrorClass>,
    /// Index into [`Timeline::messages`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// For a failure: where it fell (`during `crash``, …) and whether the suite allows it there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tolerated: bool,
    /// Ids it inserted (the statement's parameters).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inserted: Vec<i64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub leaked: bool,
}

impl Request {
    pub fn ok(&self) -> bool {
        self.class.is_none()
    }
}

/// One fault occurrence's window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub name: String,
    pub kind: String,
    pub detail: String,
    pub planned_us: u64,
    pub start_us: u64,
    /// `None`: never healed (the run was cut short) or kept to the end of the workload.
    pub healed_us: Option<u64>,
    /// Done at once (a kill): a line, not a band.
    pub instant: bool,
    pub applied: bool,
    pub skipped: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What it touched, as the evidence rules read it.
    #[serde(default)]
    pub evidence: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PoolPoint {
    pub at_us: u64,
    pub open: u32,
    pub idle: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ServerPoint {
    pub at_us: u64,
    /// The pool's sessions the server listed.
    pub sessions: u32,
    /// Of those, sleeping (idle in the pool).
    pub sleeping: u32,
}

/// A place where a check failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mark {
    pub at_us: u64,
    /// The lane it belongs to; `None` for the whole run (lost writes, throughput).
    pub worker: Option<u32>,
    pub check: String,
    pub text: String,
}

fn us(d: Duration) -> u64 {
    d.as_micros().min(u64::MAX as u128) as u64
}

/// The statement a request of this kind sends (see `pool::sqlx` and the adapter
/// protocol, which run the same SQL on the run's writes table).
pub fn statement(kind: OpKind) -> &'static str {
    match kind {
        OpKind::Ping => "SELECT 1",
        OpKind::Select => "SELECT id, worker FROM goneaway_writes WHERE id = ?",
        OpKind::Insert => "INSERT INTO goneaway_writes (id, worker) VALUES (?, ?)",
        OpKind::Transaction => "BEGIN; INSERT INTO goneaway_writes …; SELECT COUNT(*) …; COMMIT",
        OpKind::Sleep => "SELECT SLEEP(?)",
        OpKind::Request => "one checkout running the suite's [workload] steps",
    }
}

impl Timeline {
    pub fn build(
        h: &History,
        e: &Expect,
        checks: &[CheckResult],
        server_settings: BTreeMap<String, String>,
    ) -> Timeline {
        // Attribution of every failure, as the errors check reads it.
        let mut blamed: HashMap<(u32, u64), (String, bool)> = HashMap::new();
        for g in check::error_groups(h, e) {
            for op in &g.ops {
                blamed.insert((op.worker, op.seq), (g.place.describe(), g.tolerated));
            }
        }
        let mut messages: Vec<String> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let successes = h.ops.iter().filter(|o| o.ok()).count();
        let failures = h.ops.len() - successes;
        // Keep every k-th success when there are too many (failures are always kept).
        let room = MAX_REQUESTS.saturating_sub(failures).max(1);
        let every = successes.div_ceil(room).max(1);
        let mut nth_success = 0usize;
        let mut omitted = 0u64;
        let mut requests = Vec::with_capacity(h.ops.len().min(MAX_REQUESTS));
        for o in &h.ops {
            if o.ok() {
                nth_success += 1;
                if !(nth_success - 1).is_multiple_of(every) {
                    omitted += 1;
                    continue;
                }
            }
            let message = o.error.as_ref().map(|err| {
                *index.entry(err.message.clone()).or_insert_with(|| {
                    messages.push(err.message.clone());
                    messages.len() - 1
                })
            });
            let (place, tolerated) = match blamed.get(&(o.worker, o.seq)) {
                Some((p, t)) => (Some(p.clone()), *t),
                None => (None, false),
            };
            requests.push(Request {
                worker: o.worker,
                seq: o.seq,
                kind: o.kind,
                start_us: us(o.start),
                end_us: us(o.end),
                class: o.class(),
                message,
                phase: o.phase,
                place,
                tolerated,
                inserted: o.inserted.clone(),
                leaked: o.leaked,
            });
        }
        let faults = h
            .faults
            .iter()
            .map(|f| Window {
                name: f.name.clone(),
                kind: f.kind.to_string(),
                detail: f.detail.clone(),
                planned_us: us(f.planned),
                start_us: us(f.start),
                healed_us: f.healed.map(us),
                instant: f.lasts == Lasts::Instant,
                applied: f.applied,
                skipped: f.skipped,
                error: f.error.clone(),
                evidence: if f.applied {
                    check::evidence(f, h).what
                } else {
                    String::new()
                },
            })
            .collect();
        let pool = h
            .samples
            .iter()
            .map(|s| PoolPoint {
                at_us: us(s.at),
                open: s.size,
                idle: s.idle,
            })
            .collect();
        let server = h
            .sessions
            .iter()
            .map(|s| ServerPoint {
                at_us: us(s.at),
                sessions: s.sessions.len() as u32,
                sleeping: s.sessions.iter().filter(|x| x.sleeping).count() as u32,
            })
            .collect();
        Timeline {
            workers: h.workers,
            workload_end_us: us(h.workload_end),
            grace_us: us(e.grace),
            recover_within_us: us(e.recover_within),
            server_settings,
            requests,
            omitted,
            messages,
            faults,
            pool,
            server,
            marks: marks(h, e, checks),
        }
    }

    /// The end of the picture's time axis: the workload's end, or anything later.
    pub fn span_us(&self) -> u64 {
        let last_req = self.requests.iter().map(|r| r.end_us).max().unwrap_or(0);
        let last_heal = self
            .faults
            .iter()
            .filter_map(|f| f.healed_us.map(|h| h + self.grace_us))
            .max()
            .unwrap_or(0);
        self.workload_end_us.max(last_req).max(last_heal).max(1_000)
    }
}

/// Where each failed check failed: the first disallowed error of each kind, each worker
/// that did not recover in time (at the end of its allowance), each leaked checkout (where
/// it was checked out), and run-wide findings at the end of the workload.
fn marks(h: &History, e: &Expect, checks: &[CheckResult]) -> Vec<Mark> {
    let failed = |name: &str| {
        checks
            .iter()
            .any(|c| c.name == name && c.verdict != Verdict::Valid)
    };
    let mut out = Vec::new();
    for g in check::error_groups(h, e)
        .into_iter()
        .filter(|g| !g.tolerated)
    {
        let first = g.ops[0];
        out.push(Mark {
            at_us: us(first.start),
            worker: Some(first.worker),
            check: "errors".into(),
            text: format!(
                "first {} {} ({} request(s)): not allowed there",
                g.class,
                g.place.describe(),
                g.ops.len()
            ),
        });
    }
    if failed("recovery") {
        for r in check::recoveries(h, e) {
            for (w, how) in r.workers.iter().enumerate() {
                let text = match how {
                    WorkerRecovery::After(d) if *d <= e.recover_within => continue,
                    WorkerRecovery::After(d) => format!(
                        "worker {w} recovered only {:.2}s after `{}` healed (allowed {:.2}s)",
                        d.as_secs_f64(),
                        r.fault,
                        e.recover_within.as_secs_f64()
                    ),
                    WorkerRecovery::Unseen => {
                        format!("worker {w} made no request after `{}` healed", r.fault)
                    }
                    WorkerRecovery::Never { attempts } => format!(
                        "worker {w} never recovered after `{}` ({attempts} request(s) after the heal)",
                        r.fault
                    ),
                };
                out.push(Mark {
                    at_us: us((r.healed + e.recover_within).min(h.workload_end)),
                    worker: Some(w as u32),
                    check: "recovery".into(),
                    text,
                });
            }
        }
    }
    if failed("pool-baseline") {
        for o in h.ops.iter().filter(|o| o.leaked).take(MAX_MARKS) {
            out.push(Mark {
                at_us: us(o.start),
                worker: Some(o.worker),
                check: "pool-baseline".into(),
                text: format!(
                    "worker {} request #{} ({}) checked a connection out here and never returned it",
                    o.worker, o.seq, o.kind
                ),
            });
        }
    }
    // Checks with no place in time: lost writes, throughput, an unfinished run.
    for c in checks
        .iter()
        .filter(|c| c.verdict != Verdict::Valid)
        .filter(|c| !matches!(c.name, "errors" | "recovery" | "pool-baseline"))
    {
        for f in &c.findings {
            out.push(Mark {
                at_us: us(h.workload_end),
                worker: None,
                check: c.name.to_string(),
                text: format!("{}: {}", f.summary, f.detail),
            });
        }
    }
    let mut per_check: BTreeMap<String, usize> = BTreeMap::new();
    out.retain(|m| {
        let n = per_check.entry(m.check.clone()).or_default();
        *n += 1;
        *n <= MAX_MARKS
    });
    out
}
