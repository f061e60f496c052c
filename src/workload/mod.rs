//! Workload: what the application does with the pool. It writes the history and nothing
//! else: it never looks at faults or verdicts.
//!
//! Each worker is a request loop. A request checks out `checkouts_per_request`
//! connections (the first for a `before_request` hook that pings, held while the handler
//! checks out its own), runs one operation from the mix, holds, gives the connections
//! back (or leaks one, the missing `session.close()`), then thinks. Every checkout and
//! every statement has the harness's own timeout, so a client that would hang forever
//! leaves a recorded `timeout` instead of a hung run.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::history::{ErrorClass, OpError, OpKind, OpRecord, Phase, Recorder};
use crate::pool::{Conn, Pool, Statement};

/// The checked `[workload]` of a suite.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadSpec {
    pub workers: u32,
    pub duration: Duration,
    /// Stop after this many requests in all, if it comes before `duration`.
    pub requests: Option<u64>,
    /// Requests per second across all workers (open loop); `None` is a closed loop.
    pub rate: Option<f64>,
    pub think: Duration,
    pub hold: Duration,
    pub op_timeout: Duration,
    pub checkouts_per_request: u32,
    pub mix: BTreeMap<OpKind, u32>,
    /// How long a `sleep` operation sleeps on the server.
    pub sleep: Duration,
    /// Every n-th request of each worker never gives its connection back.
    pub leak_every: Option<u64>,
    /// Requests of several steps on one checkout instead of one operation from `mix`.
    pub request: Option<RequestSpec>,
}

/// A request that holds one connection across several statements and waits (`[workload]
/// steps`): check out, select, call something slow, insert, commit, give it back.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestSpec {
    pub steps: Vec<Step>,
    /// `BEGIN` before the first step and `COMMIT` after the last, on the same connection.
    pub transaction: bool,
}

/// The most steps one request may have (each insert of a request needs its own id).
pub const MAX_STEPS: usize = 16;

/// One step of a [`RequestSpec`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step {
    Ping,
    Select,
    Insert,
    /// `SELECT SLEEP`: busy on the server.
    Sleep(Duration),
    /// The application does something else (an HTTP call, an upload) while it holds the
    /// connection: idle on the server, checked out in the pool.
    Wait(Duration),
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Ping => f.write_str("ping"),
            Step::Select => f.write_str("select"),
            Step::Insert => f.write_str("insert"),
            Step::Sleep(d) => write!(f, "sleep {}", humantime::format_duration(*d)),
            Step::Wait(d) => write!(f, "wait {}", humantime::format_duration(*d)),
        }
    }
}

impl std::str::FromStr for Step {
    type Err = String;
    fn from_str(s: &str) -> Result<Step, String> {
        let s = s.trim();
        let (word, rest) = s.split_once(char::is_whitespace).unwrap_or((s, ""));
        let rest = rest.trim();
        let duration = |d: &str| -> Result<Duration, String> {
            let d = humantime::parse_duration(d).map_err(|e| {
                format!("`{s}`: invalid duration \"{d}\" ({e}); write it like \"3s\"")
            })?;
            if d.is_zero() || d > Duration::from_secs(3600) {
                return Err(format!(
                    "`{s}`: a step's duration must be above 0 and at most 1h"
                ));
            }
            Ok(d)
        };
        match (word, rest) {
            ("ping", "") => Ok(Step::Ping),
            ("select", "") => Ok(Step::Select),
            ("insert", "") => Ok(Step::Insert),
            ("sleep", d) if !d.is_empty() => Ok(Step::Sleep(duration(d)?)),
            ("wait", d) if !d.is_empty() => Ok(Step::Wait(duration(d)?)),
            _ => Err(format!(
                "unknown step `{s}`; a step is `ping`, `select`, `insert`, `sleep <duration>` (SELECT SLEEP on the server) or `wait <duration>` (the application busy elsewhere, holding the connection)"
            )),
        }
    }
}

impl RequestSpec {
    /// The longest a request can take besides its statements' own time.
    pub fn waits(&self) -> Duration {
        self.steps
            .iter()
            .map(|s| match s {
                Step::Wait(d) | Step::Sleep(d) => *d,
                _ => Duration::ZERO,
            })
            .sum()
    }
}

impl Default for WorkloadSpec {
    fn default() -> Self {
        WorkloadSpec {
            workers: 4,
            duration: Duration::from_secs(10),
            requests: None,
            rate: None,
            think: Duration::from_millis(20),
            hold: Duration::ZERO,
            op_timeout: Duration::from_secs(10),
            checkouts_per_request: 1,
            mix: BTreeMap::from([
                (OpKind::Ping, 1),
                (OpKind::Select, 3),
                (OpKind::Insert, 2),
                (OpKind::Transaction, 1),
            ]),
            sleep: Duration::from_secs(1),
            leak_every: None,
            request: None,
        }
    }
}

/// Opens and closes the workload: closed, workers finish the request in hand and wait.
/// The `idle` fault closes it to make the whole application go quiet.
#[derive(Clone, Debug)]
pub struct Gate(Arc<watch::Sender<bool>>);

impl Gate {
    pub fn new() -> Self {
        Gate(Arc::new(watch::Sender::new(true)))
    }
    pub fn close(&self) {
        self.0.send_replace(false);
    }
    pub fn open(&self) {
        self.0.send_replace(true);
    }
    async fn wait_open(&self) {
        let mut rx = self.0.subscribe();
        let _ = rx.wait_for(|open| *open).await;
    }
}

impl Default for Gate {
    fn default() -> Self {
        Self::new()
    }
}

/// Connections the workload checked out and never returned; the run drops them once
/// the pool's state after the workload has been recorded.
#[derive(Default)]
pub struct Leaked(pub Vec<Box<dyn Conn>>);

/// Where one run's rows go: its writes table, and ids with a per-run prefix.
#[derive(Debug, Clone)]
pub struct IdSpace {
    pub run: i64,
    pub table: Arc<str>,
}

impl IdSpace {
    const PER_RUN: i64 = 10_000_000_000_000;
    const PER_WORKER: i64 = 1_000_000_000;
    pub fn id(&self, worker: u32, seq: u64) -> i64 {
        self.run * Self::PER_RUN + (worker as i64 + 1) * Self::PER_WORKER + seq as i64
    }
    /// Every id this run can produce lies in `start..end`.
    pub fn range(&self) -> (i64, i64) {
        (self.run * Self::PER_RUN, (self.run + 1) * Self::PER_RUN)
    }
}

/// Drive the pool until the workload's time or request count is used up, or `cancel`.
pub async fn run(
    spec: &WorkloadSpec,
    pool: Arc<dyn Pool>,
    recorder: Recorder,
    gate: Gate,
    ids: IdSpace,
    seed: u64,
    cancel: CancellationToken,
) -> Leaked {
    let shared = Arc::new(Shared {
        spec: spec.clone(),
        pool,
        recorder,
        gate,
        ids,
        issued: AtomicU64::new(0),
        leaked: std::sync::Mutex::new(Leaked::default()),
        deadline: tokio::time::Instant::now() + spec.duration,
    });
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..spec.workers {
        let shared = shared.clone();
        let cancel = cancel.clone();
        let rng =
            SmallRng::seed_from_u64(seed ^ (u64::from(w) + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        workers.spawn(async move { shared.worker(w, rng, cancel).await });
    }
    while workers.join_next().await.is_some() {}
    let shared = Arc::into_inner(shared).expect("all workers have finished");
    shared
        .leaked
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
}

struct Shared {
    spec: WorkloadSpec,
    pool: Arc<dyn Pool>,
    recorder: Recorder,
    gate: Gate,
    ids: IdSpace,
    issued: AtomicU64,
    leaked: std::sync::Mutex<Leaked>,
    deadline: tokio::time::Instant,
}

impl Shared {
    async fn worker(&self, w: u32, mut rng: SmallRng, cancel: CancellationToken) {
        let total: u32 = self.spec.mix.values().sum();
        // Open loop: each worker keeps its share of the rate, whatever the server does.
        let mut ticks = self.spec.rate.map(|r| {
            let period = Duration::from_secs_f64(f64::from(self.spec.workers) / r);
            let mut i = tokio::time::interval(period);
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            i
        });
        // Which of a worker's requests leak is fixed by the seed: every n-th of its own,
        // from a phase drawn from its own stream (so workers do not leak in lockstep).
        let leak_phase = self.spec.leak_every.map(|every| rng.random_range(0..every));
        let mut seq = 0u64;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep_until(self.deadline) => return,
                _ = async {
                    self.gate.wait_open().await;
                    if let Some(t) = ticks.as_mut() { t.tick().await; }
                } => {}
            }
            let n = self.issued.fetch_add(1, Ordering::Relaxed) + 1;
            if self.spec.requests.is_some_and(|max| n > max) {
                return;
            }
            let kind = match self.spec.request {
                Some(_) => OpKind::Request,
                None => pick(&self.spec.mix, total, &mut rng),
            };
            let leak = self
                .spec
                .leak_every
                .zip(leak_phase)
                .is_some_and(|(every, phase)| (seq + phase) % every == every - 1);
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = self.request(w, seq, kind, leak) => {}
            }
            seq += 1;
            // Thinking never runs past the workload's end.
            if !self.spec.think.is_zero() {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep_until(self.deadline) => return,
                    _ = tokio::time::sleep(self.spec.think) => {}
                }
            }
        }
    }

    async fn request(&self, worker: u32, seq: u64, kind: OpKind, leak: bool) {
        let start = self.recorder.now();
        let id = self.ids.id(worker, seq);
        let statement = match kind {
            OpKind::Ping => Statement::Ping,
            // Look up a row this worker may have written; a miss is still a real lookup.
            OpKind::Select => Statement::Select {
                table: self.ids.table.clone(),
                id: self.ids.id(worker, seq / 2),
            },
            OpKind::Insert => Statement::Insert {
                table: self.ids.table.clone(),
                id,
                worker,
            },
            OpKind::Transaction => Statement::Transaction {
                table: self.ids.table.clone(),
                id,
                worker,
            },
            OpKind::Sleep => Statement::Sleep(self.spec.sleep),
            // Its steps are run below; a ping stands in for "one statement".
            OpKind::Request => Statement::Ping,
        };
        let mut inserted = match &statement {
            Statement::Insert { id, .. } | Statement::Transaction { id, .. } => vec![*id],
            _ => vec![],
        };
        let mut failed_step = None;
        // How long the checkout or statement that failed had been running.
        let mut waited = Duration::ZERO;
        let mut held: Vec<Box<dyn Conn>> = Vec::new();
        let mut outcome: Result<(), (Phase, OpError)> = Ok(());
        for c in 0..self.spec.checkouts_per_request {
            match bounded(self.spec.op_timeout, self.pool.acquire(), &mut waited).await {
                Ok(mut conn) => {
                    // Extra checkouts stand for a before_request hook touching the database.
                    if c + 1 < self.spec.checkouts_per_request
                        && let Err(e) =
                            bounded(self.spec.op_timeout, conn.run(Statement::Ping), &mut waited)
                                .await
                    {
                        outcome = Err((Phase::Query, e));
                        break;
                    }
                    held.push(conn);
                }
                Err(e) => {
                    outcome = Err((Phase::Checkout, e));
                    break;
                }
            }
        }
        if outcome.is_ok()
            && let Some(request) = &self.spec.request
        {
            let conn = held.last_mut().expect("at least one checkout per request");
            let (result, ids) = self
                .steps(request, conn.as_mut(), worker, seq, &mut waited)
                .await;
            inserted = ids;
            if let Err((step, e)) = result {
                failed_step = Some(step);
                outcome = Err((Phase::Query, e));
            }
            if outcome.is_ok() && !self.spec.hold.is_zero() {
                tokio::time::sleep(self.spec.hold).await;
            }
        } else if outcome.is_ok() {
            let conn = held.last_mut().expect("at least one checkout per request");
            let timeout = self.spec.op_timeout
                + if kind == OpKind::Sleep {
                    self.spec.sleep
                } else {
                    Duration::ZERO
                };
            outcome = bounded(timeout, conn.run(statement), &mut waited)
                .await
                .map_err(|e| (Phase::Query, e));
            if outcome.is_ok() && !self.spec.hold.is_zero() {
                tokio::time::sleep(self.spec.hold).await;
            }
        }
        let leaked = leak && outcome.is_ok();
        if leaked && let Some(conn) = held.pop() {
            self.leaked
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .0
                .push(conn);
        }
        drop(held);
        let (phase, error) = match outcome {
            Ok(()) => (None, None),
            Err((p, e)) => (Some(p), Some(e)),
        };
        self.recorder.op(OpRecord {
            worker,
            seq,
            kind,
            start,
            end: self.recorder.now(),
            error,
            phase,
            inserted,
            leaked,
            step: failed_step,
            waited: phase.map(|_| waited),
        });
    }

    /// Run a request's steps on one connection, each statement bounded by the op timeout.
    /// Returns the ids it inserted and, if a step failed, which (`2: insert`, counted from
    /// 1; `begin` and `commit` are named as such). A failed transaction is rolled back,
    /// best effort, before the connection goes back to the pool.
    async fn steps(
        &self,
        request: &RequestSpec,
        conn: &mut dyn Conn,
        worker: u32,
        seq: u64,
        waited: &mut Duration,
    ) -> (Result<(), (String, OpError)>, Vec<i64>) {
        let limit = self.spec.op_timeout;
        let mut inserted = Vec::new();
        if request.transaction
            && let Err(e) = bounded(limit, conn.run(Statement::Begin), waited).await
        {
            return (Err(("begin".into(), e)), inserted);
        }
        for (i, step) in request.steps.iter().enumerate() {
            let statement = match *step {
                Step::Wait(d) => {
                    tokio::time::sleep(d).await;
                    continue;
                }
                Step::Ping => Statement::Ping,
                Step::Select => Statement::Select {
                    table: self.ids.table.clone(),
                    id: self.ids.id(worker, seq / 2 * MAX_STEPS as u64),
                },
                Step::Insert => {
                    let id = self.ids.id(worker, seq * MAX_STEPS as u64 + i as u64);
                    inserted.push(id);
                    Statement::Insert {
                        table: self.ids.table.clone(),
                        id,
                        worker,
                    }
                }
                Step::Sleep(d) => Statement::Sleep(d),
            };
            let extra = match step {
                Step::Sleep(d) => *d,
                _ => Duration::ZERO,
            };
            if let Err(e) = bounded(limit + extra, conn.run(statement), waited).await {
                if request.transaction {
                    let mut ignored = Duration::ZERO;
                    let _ = bounded(limit, conn.run(Statement::Rollback), &mut ignored).await;
                }
                return (Err((format!("{}: {step}", i + 1), e)), inserted);
            }
        }
        if request.transaction
            && let Err(e) = bounded(limit, conn.run(Statement::Commit), waited).await
        {
            return (Err(("commit".into(), e)), inserted);
        }
        (Ok(()), inserted)
    }
}

/// `f`, or a recorded `timeout` if it has not answered within `limit`: a client that
/// would hang forever leaves a record instead of a hung run. `waited` is set to how long
/// it took, answer or not.
async fn bounded<T>(
    limit: Duration,
    f: impl Future<Output = Result<T, OpError>>,
    waited: &mut Duration,
) -> Result<T, OpError> {
    let began = tokio::time::Instant::now();
    let result = tokio::time::timeout(limit, f).await;
    *waited = began.elapsed();
    match result {
        Ok(r) => r,
        Err(_) => Err(OpError::new(
            ErrorClass::Timeout,
            format!(
                "no answer within the op timeout of {}",
                humantime::format_duration(limit)
            ),
        )),
    }
}

fn pick(mix: &BTreeMap<OpKind, u32>, total: u32, rng: &mut SmallRng) -> OpKind {
    let mut r = rng.random_range(0..total);
    for (kind, weight) in mix {
        if r < *weight {
            return *kind;
        }
        r -= weight;
    }
    unreachable!("weights sum to total")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_in_range() {
        let ids = IdSpace {
            run: 42,
            table: "t".into(),
        };
        let (lo, hi) = ids.range();
        let a = ids.id(0, 0);
        let b = ids.id(1, 0);
        let c = ids.id(0, 1);
        assert!(a != b && a != c && b != c);
        for id in [a, b, c, ids.id(999, 999_999_999)] {
            assert!((lo..hi).contains(&id));
        }
    }

    #[test]
    fn steps_parse_and_print_the_same() {
        for (text, step) in [
            ("select", Step::Select),
            (" ping ", Step::Ping),
            ("insert", Step::Insert),
            ("sleep 500ms", Step::Sleep(Duration::from_millis(500))),
            ("wait 1m 30s", Step::Wait(Duration::from_secs(90))),
        ] {
            assert_eq!(text.parse::<Step>(), Ok(step));
            assert_eq!(step.to_string().parse::<Step>(), Ok(step));
        }
        for bad in ["wait", "select 1s", "wait 0s", "wait 2h", "nap 1s", ""] {
            assert!(bad.parse::<Step>().is_err(), "{bad}");
        }
    }

    #[test]
    fn pick_follows_weights() {
        let mix = BTreeMap::from([(OpKind::Ping, 0), (OpKind::Select, 1)]);
        let mut rng = SmallRng::seed_from_u64(1);
        for _ in 0..100 {
            assert_eq!(pick(&mix, 1, &mut rng), OpKind::Select);
        }
    }
}
