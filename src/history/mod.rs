//! History: everything that happened during a run, in the order it happened.
//!
//! It is the single input of checking. Workers and the nemesis append to it through a
//! [`Recorder`]; once the run is over it is frozen into a [`History`] and never changes.
//! Times are offsets from the start of the run so that histories compare across runs.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// What kind of failure an operation met, in the words users search for.
///
/// The mapping from client errors lives with each client (see `pool::sqlx`); this is
/// the shared vocabulary the checkers and reports speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// CR_SERVER_GONE_ERROR 2006: the server had already closed the connection
    /// before the command was sent.
    GoneAway,
    /// CR_SERVER_LOST 2013: the connection dropped while waiting for the reply.
    LostConnection,
    /// ER_CLIENT_INTERACTION_TIMEOUT 4031 (MySQL >= 8.0.24).
    InteractionTimeout,
    /// ER_CONNECTION_KILLED 1927 / ER_QUERY_INTERRUPTED 1317.
    Killed,
    /// ER_SERVER_SHUTDOWN 1053.
    ServerShutdown,
    /// ER_CON_COUNT_ERROR 1040.
    TooManyConnections,
    /// A write reached a read-only server: ER_OPTION_PREVENTS_STATEMENT 1290 (naming
    /// `--read-only`), ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION 1792, ER_READ_ONLY_MODE
    /// 1836. An old primary after a failover answers this way.
    ReadOnly,
    /// The pool gave up waiting for a connection (sqlx `PoolTimedOut`).
    CheckoutTimeout,
    /// CR_CONN_HOST_ERROR 2003: nothing listening.
    ConnectRefused,
    /// The harness's own per-operation timeout fired: the client would have hung.
    Timeout,
    /// Anything else; the raw text is kept in the record.
    Other,
}

impl ErrorClass {
    pub const ALL: [ErrorClass; 11] = [
        ErrorClass::GoneAway,
        ErrorClass::LostConnection,
        ErrorClass::InteractionTimeout,
        ErrorClass::Killed,
        ErrorClass::ServerShutdown,
        ErrorClass::TooManyConnections,
        ErrorClass::ReadOnly,
        ErrorClass::CheckoutTimeout,
        ErrorClass::ConnectRefused,
        ErrorClass::Timeout,
        ErrorClass::Other,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ErrorClass::GoneAway => "gone_away",
            ErrorClass::LostConnection => "lost_connection",
            ErrorClass::InteractionTimeout => "interaction_timeout",
            ErrorClass::Killed => "killed",
            ErrorClass::ServerShutdown => "server_shutdown",
            ErrorClass::TooManyConnections => "too_many_connections",
            ErrorClass::ReadOnly => "read_only",
            ErrorClass::CheckoutTimeout => "checkout_timeout",
            ErrorClass::ConnectRefused => "connect_refused",
            ErrorClass::Timeout => "timeout",
            ErrorClass::Other => "other",
        }
    }

    /// What a user would see in their logs for this class.
    pub fn symptom(self) -> &'static str {
        match self {
            ErrorClass::GoneAway => "MySQL server has gone away (2006)",
            ErrorClass::LostConnection => "Lost connection to MySQL server during query (2013)",
            ErrorClass::InteractionTimeout => "client interaction timeout (4031)",
            ErrorClass::Killed => "connection or query killed (1927/1317)",
            ErrorClass::ServerShutdown => "server shutdown in progress (1053)",
            ErrorClass::TooManyConnections => "too many connections (1040)",
            ErrorClass::ReadOnly => "the server is read-only (1290/1792/1836)",
            ErrorClass::CheckoutTimeout => "pool checkout timed out",
            ErrorClass::ConnectRefused => "can't connect to MySQL server (2003)",
            ErrorClass::Timeout => "operation hung past the harness's op timeout",
            ErrorClass::Other => "other error",
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for ErrorClass {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ErrorClass::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = ErrorClass::ALL.iter().map(|c| c.name()).collect();
                format!(
                    "unknown error class `{s}`; expected one of {}",
                    names.join(", ")
                )
            })
    }
}

/// A classified client error: the class plus the client's own words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpError {
    pub class: ErrorClass,
    pub message: String,
}

impl OpError {
    pub fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        OpError {
            class,
            message: message.into(),
        }
    }
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.class, self.message)
    }
}

/// What an application request did with the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    Ping,
    Select,
    Insert,
    Transaction,
    Sleep,
    /// A request of several steps on one checkout (`[workload] steps`).
    Request,
}

impl OpKind {
    /// The operations a `mix` may weigh; a `request` is described by `steps` instead.
    pub const ALL: [OpKind; 5] = [
        OpKind::Ping,
        OpKind::Select,
        OpKind::Insert,
        OpKind::Transaction,
        OpKind::Sleep,
    ];

    pub fn name(self) -> &'static str {
        match self {
            OpKind::Ping => "ping",
            OpKind::Select => "select",
            OpKind::Insert => "insert",
            OpKind::Transaction => "transaction",
            OpKind::Sleep => "sleep",
            OpKind::Request => "request",
        }
    }
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where in a request an error surfaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Waiting for the pool to hand out a connection.
    Checkout,
    /// Running SQL on a connection the pool handed out.
    Query,
}

/// One application request: zero or more checkouts and one operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpRecord {
    pub worker: u32,
    /// The worker's request counter, from 0.
    pub seq: u64,
    pub kind: OpKind,
    #[serde(with = "humantime_serde")]
    pub start: Duration,
    #[serde(with = "humantime_serde")]
    pub end: Duration,
    /// `None` when the request succeeded.
    pub error: Option<OpError>,
    pub phase: Option<Phase>,
    /// Ids of rows this request inserted; they count as acknowledged only if it succeeded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inserted: Vec<i64>,
    /// The request kept its connection and never gave it back (the missing
    /// `session.close()`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub leaked: bool,
    /// For a request of several steps that failed in one: which, e.g. `3: insert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// For a failure: how long the checkout or statement that failed had been running
    /// when it failed (the application's wait for that error).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "humantime_serde"
    )]
    pub waited: Option<Duration>,
}

impl OpRecord {
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
    pub fn class(&self) -> Option<ErrorClass> {
        self.error.as_ref().map(|e| e.class)
    }
}

/// What kind of fault a record is about: the vocabulary the attribution table and the
/// evidence rules branch on (see `check::causes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    Idle,
    WaitTimeout,
    MaxConnections,
    SetGlobal,
    Kill,
    Crash,
    Restart,
    Pause,
    Disconnect,
    Cut,
    /// `SET GLOBAL read_only = ON`: writes refused until it heals.
    ReadOnly,
    /// The replica promoted and the proxy (the VIP) moved to it.
    Failover,
    Blackhole,
    Latency,
    Bandwidth,
    SlowClose,
    Timeout,
    ResetPeer,
    Slicer,
    LimitData,
}

impl FaultKind {
    pub const ALL: [FaultKind; 20] = [
        FaultKind::Idle,
        FaultKind::WaitTimeout,
        FaultKind::SetGlobal,
        FaultKind::Kill,
        FaultKind::Crash,
        FaultKind::Restart,
        FaultKind::Pause,
        FaultKind::MaxConnections,
        FaultKind::Disconnect,
        FaultKind::Cut,
        FaultKind::ReadOnly,
        FaultKind::Failover,
        FaultKind::Blackhole,
        FaultKind::Latency,
        FaultKind::Bandwidth,
        FaultKind::SlowClose,
        FaultKind::Timeout,
        FaultKind::ResetPeer,
        FaultKind::Slicer,
        FaultKind::LimitData,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Idle => "idle",
            FaultKind::WaitTimeout => "wait_timeout",
            FaultKind::MaxConnections => "max_connections",
            FaultKind::SetGlobal => "set_global",
            FaultKind::Kill => "kill",
            FaultKind::Crash => "crash",
            FaultKind::Restart => "restart",
            FaultKind::Pause => "pause",
            FaultKind::Disconnect => "disconnect",
            FaultKind::Cut => "cut",
            FaultKind::ReadOnly => "read_only",
            FaultKind::Failover => "failover",
            FaultKind::Blackhole => "blackhole",
            FaultKind::Latency => "latency",
            FaultKind::Bandwidth => "bandwidth",
            FaultKind::SlowClose => "slow_close",
            FaultKind::Timeout => "timeout",
            FaultKind::ResetPeer => "reset_peer",
            FaultKind::Slicer => "slicer",
            FaultKind::LimitData => "limit_data",
        }
    }

    /// A toxic's kind by its Toxiproxy type name (`timeout` stays `timeout`; the black
    /// hole is told apart by its caller).
    pub fn of_toxic(type_name: &str) -> Option<FaultKind> {
        FaultKind::ALL
            .into_iter()
            .find(|k| k.name() == type_name && k.is_toxic())
    }

    pub fn is_toxic(self) -> bool {
        matches!(
            self,
            FaultKind::Blackhole
                | FaultKind::Latency
                | FaultKind::Bandwidth
                | FaultKind::SlowClose
                | FaultKind::Timeout
                | FaultKind::ResetPeer
                | FaultKind::Slicer
                | FaultKind::LimitData
        )
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a proxy counted of one toxic's work (goneaway's embedded proxy counts; a real
/// Toxiproxy does not, and then the history's requests stand in).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToxicCounts {
    /// Connection directions the toxic acted on.
    pub connections: u64,
    /// Bytes it delayed, throttled, sliced or swallowed.
    pub bytes: u64,
    /// Connections it closed or reset, or whose close it held back.
    pub events: u64,
}

impl ToxicCounts {
    pub fn touched(&self) -> bool {
        self.bytes > 0 || self.events > 0
    }
}

impl std::ops::Add for ToxicCounts {
    type Output = ToxicCounts;
    fn add(self, o: ToxicCounts) -> ToxicCounts {
        ToxicCounts {
            connections: self.connections + o.connections,
            bytes: self.bytes + o.bytes,
            events: self.events + o.events,
        }
    }
}

/// What a fault saw of its own effect when it acted (what the history cannot show by
/// itself); the checkers combine it with the requests, pool and server samples.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "observed")]
pub enum Observed {
    #[default]
    Nothing,
    /// Sessions a KILL hit.
    Killed { sessions: u64 },
    /// A global changed. Sessions with an id at or above `first_session` were opened
    /// after the change (ids only grow while the server runs).
    Setting {
        variable: String,
        old: String,
        new: String,
        first_session: i64,
    },
    /// The proxy's own counts for the toxics of this fault, read before removing them;
    /// `None` when the proxy does not count.
    Toxic { counts: Option<ToxicCounts> },
    /// A failover: the pool's sessions on the old primary at the move (they stay there
    /// unless `reset`), and where new connections go from then on.
    Failover {
        stale_sessions: Vec<i64>,
        new_primary: String,
        reset: bool,
    },
}

/// How long a fault lasts, as planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lasts {
    /// Done at once (a kill).
    Instant,
    /// Healed after this long.
    #[serde(with = "humantime_serde")]
    For(Duration),
    /// In force until the workload ends (a lowered setting with no `duration`).
    UntilEnd,
}

/// A fault as it happened: when it was planned, when it took effect, what it touched and
/// when it healed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRecord {
    /// The schedule's name for this occurrence, e.g. `kill-idle#2`.
    pub name: String,
    pub kind: FaultKind,
    /// Human description with parameters, e.g. `KILL CONNECTION of 4 idle pool sessions`.
    pub detail: String,
    /// When the schedule asked for it.
    #[serde(with = "humantime_serde")]
    pub planned: Duration,
    /// When it took effect (a kill that had to wait for a target is later than planned).
    #[serde(with = "humantime_serde")]
    pub start: Duration,
    pub lasts: Lasts,
    /// When the fault was healed; `None` if it never healed (the run was cut short).
    #[serde(with = "humantime_serde")]
    pub healed: Option<Duration>,
    /// Why applying or healing failed, if it did.
    pub error: Option<String>,
    /// It took effect (applying it did not fail).
    #[serde(default)]
    pub applied: bool,
    /// It never ran: the workload had ended before its time came.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skipped: bool,
    #[serde(default)]
    pub observed: Observed,
}

/// The pool's sessions as the server listed them at one moment (the harness's own admin
/// connection reads the processlist; it never goes through the proxy).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionSample {
    #[serde(with = "humantime_serde")]
    pub at: Duration,
    /// The app user's sessions.
    pub sessions: Vec<Session>,
    /// Every connection the server had open, the harness's included.
    pub total: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub id: i64,
    /// `Command = Sleep`: sitting idle in the pool.
    pub sleeping: bool,
    /// How long it has been in its current state.
    pub idle_ms: u64,
}

/// The server's own counters at one moment (`SHOW GLOBAL STATUS`, read through the
/// harness's admin connection right after the processlist): what the server saw of the
/// pool, whatever the pool says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusSample {
    #[serde(with = "humantime_serde")]
    pub at: Duration,
    /// `Threads_connected`: every connection open now, the harness's included.
    pub threads_connected: u64,
    /// `Connections`: connection attempts since the server started (a restart resets it).
    pub connections: u64,
    /// `Aborted_clients`: connections that ended without a proper close.
    pub aborted_clients: u64,
    /// `Aborted_connects`: attempts that failed before a session began.
    pub aborted_connects: u64,
    /// `Max_used_connections`: the most open at once since the server started.
    pub max_used_connections: u64,
    /// Of `threads_connected`, the harness's own sessions as the processlist read just
    /// before listed them (its listing connection, held setting connections, other users).
    pub harness: u64,
}

impl StatusSample {
    /// Connections at the server that are not the harness's.
    pub fn others(&self) -> u64 {
        self.threads_connected.saturating_sub(self.harness)
    }
}

/// What the pool said about itself at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolSample {
    #[serde(with = "humantime_serde")]
    pub at: Duration,
    pub size: u32,
    pub idle: u32,
}

impl PoolSample {
    pub fn in_use(&self) -> u32 {
        self.size.saturating_sub(self.idle)
    }
}

/// What the harness read back after the workload, for the durability check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FinalRead {
    /// The ids found in the writes table.
    Rows(BTreeSet<i64>),
    /// The read itself failed; durability is then unknown.
    Failed(String),
}

/// Frozen record of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub ops: Vec<OpRecord>,
    pub faults: Vec<FaultRecord>,
    pub samples: Vec<PoolSample>,
    /// The server's view of the pool's sessions, sampled through the run.
    #[serde(default)]
    pub sessions: Vec<SessionSample>,
    /// The server's connection counters, sampled through the run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub status: Vec<StatusSample>,
    /// When the workload stopped issuing requests.
    #[serde(with = "humantime_serde")]
    pub workload_end: Duration,
    /// Pool state after the workload finished and returned everything it meant to return
    /// (leaked connections are still held at this point).
    pub settled: Option<PoolSample>,
    /// The pool's idle count at the start, before the workload (its baseline).
    pub baseline: Option<PoolSample>,
    pub final_read: Option<FinalRead>,
    /// After a failover, `final_read` is of the new primary and this of the old one: a
    /// write acknowledged there and missing on the new primary was lost in failover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_primary_read: Option<FinalRead>,
    /// Set when the run was cut short (Ctrl-C, a harness error); checkers then say Unknown.
    pub interrupted: Option<String>,
    pub workers: u32,
    /// The workload's `leak_every`: leaks are chaos the workload injects, so a run that
    /// planned them must show one.
    #[serde(default)]
    pub leak_every: Option<u64>,
}

impl History {
    /// Acknowledged inserts: ids from requests that succeeded.
    pub fn acknowledged_ids(&self) -> BTreeSet<i64> {
        self.ops
            .iter()
            .filter(|o| o.ok())
            .flat_map(|o| o.inserted.iter().copied())
            .collect()
    }

    /// A worker's first successful request that started at or after `t`.
    pub fn first_success_after(&self, worker: u32, t: Duration) -> Option<&OpRecord> {
        self.ops
            .iter()
            .find(|o| o.worker == worker && o.start >= t && o.ok())
    }

    pub fn failures(&self) -> impl Iterator<Item = &OpRecord> {
        self.ops.iter().filter(|o| !o.ok())
    }
}

#[derive(Debug, Default)]
struct Log {
    ops: Vec<OpRecord>,
    faults: Vec<FaultRecord>,
    samples: Vec<PoolSample>,
    sessions: Vec<SessionSample>,
    status: Vec<StatusSample>,
}

/// Append-only handle to the history of a running run; cheap to clone.
#[derive(Debug, Clone)]
pub struct Recorder {
    start: Instant,
    log: Arc<Mutex<Log>>,
}

/// Index of a fault in the history, to mark it healed later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultId(usize);

impl Recorder {
    pub fn new() -> Self {
        Self::starting_at(Instant::now())
    }

    pub fn starting_at(start: Instant) -> Self {
        Recorder {
            start,
            log: Arc::default(),
        }
    }

    /// Time since the run started.
    pub fn now(&self) -> Duration {
        self.start.elapsed()
    }

    pub fn started(&self) -> Instant {
        self.start
    }

    pub fn op(&self, record: OpRecord) {
        self.lock().ops.push(record);
    }

    pub fn sample(&self, size: u32, idle: u32) -> PoolSample {
        let sample = PoolSample {
            at: self.now(),
            size,
            idle,
        };
        self.lock().samples.push(sample);
        sample
    }

    pub fn sessions(&self, sessions: Vec<Session>, total: u32) {
        let at = self.now();
        self.lock().sessions.push(SessionSample {
            at,
            sessions,
            total,
        });
    }

    /// The server's counters as read now (`at` is set here).
    pub fn status(&self, mut sample: StatusSample) {
        sample.at = self.now();
        self.lock().status.push(sample);
    }

    /// A fault the schedule asked for at `planned`; its start is set when it takes effect.
    pub fn fault_planned(
        &self,
        name: &str,
        kind: FaultKind,
        planned: Duration,
        lasts: Lasts,
    ) -> FaultId {
        let mut log = self.lock();
        log.faults.push(FaultRecord {
            name: name.to_string(),
            kind,
            detail: String::new(),
            planned,
            start: planned,
            lasts,
            healed: None,
            error: None,
            applied: false,
            skipped: false,
            observed: Observed::Nothing,
        });
        FaultId(log.faults.len() - 1)
    }

    /// The fault took effect at `at` (a time from [`Recorder::now`]).
    pub fn fault_applied(&self, id: FaultId, at: Duration, detail: String, observed: Observed) {
        let mut log = self.lock();
        let f = &mut log.faults[id.0];
        f.start = at;
        f.detail = detail;
        f.observed = observed;
        f.applied = true;
    }

    pub fn fault_observed(&self, id: FaultId, observed: Observed) {
        self.lock().faults[id.0].observed = observed;
    }

    pub fn fault_skipped(&self, id: FaultId, why: String) {
        let mut log = self.lock();
        let f = &mut log.faults[id.0];
        f.skipped = true;
        f.detail = why;
    }

    pub fn fault_healed(&self, id: FaultId) {
        let now = self.start.elapsed();
        self.lock().faults[id.0].healed = Some(now);
    }

    pub fn fault_error(&self, id: FaultId, error: String) {
        let mut log = self.lock();
        let slot = &mut log.faults[id.0].error;
        match slot {
            Some(prev) => *prev = format!("{prev}; {error}"),
            None => *slot = Some(error),
        }
    }

    /// Snapshot of what has been recorded so far, in a History with the given ending.
    pub fn freeze(&self, ending: Ending) -> History {
        let log = self.lock();
        let mut ops = log.ops.clone();
        ops.sort_by_key(|o| (o.start, o.worker, o.seq));
        History {
            ops,
            faults: log.faults.clone(),
            samples: log.samples.clone(),
            sessions: log.sessions.clone(),
            status: log.status.clone(),
            workload_end: ending.workload_end,
            settled: ending.settled,
            baseline: ending.baseline,
            final_read: ending.final_read,
            old_primary_read: ending.old_primary_read,
            interrupted: ending.interrupted,
            workers: ending.workers,
            leak_every: ending.leak_every,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        // A worker that panicked mid-append leaves a valid Vec behind; keep recording.
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

/// How the run ended; the parts of the history that are not a stream of events.
#[derive(Debug, Clone, Default)]
pub struct Ending {
    pub workload_end: Duration,
    pub settled: Option<PoolSample>,
    pub baseline: Option<PoolSample>,
    pub final_read: Option<FinalRead>,
    pub old_primary_read: Option<FinalRead>,
    pub interrupted: Option<String>,
    pub workers: u32,
    pub leak_every: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_names_round_trip() {
        for c in ErrorClass::ALL {
            assert_eq!(c.name().parse::<ErrorClass>().unwrap(), c);
            assert_eq!(
                serde_json::to_string(&c).unwrap(),
                format!("\"{}\"", c.name())
            );
        }
        assert!(
            "gone away"
                .parse::<ErrorClass>()
                .unwrap_err()
                .contains("gone_away")
        );
    }

    #[test]
    fn acknowledged_ids_only_count_successes() {
        let rec = Recorder::new();
        let op = |error: Option<OpError>, ids: Vec<i64>| OpRecord {
            worker: 0,
            seq: 0,
            kind: OpKind::Insert,
            start: Duration::ZERO,
            end: Duration::ZERO,
            error,
            phase: None,
            inserted: ids,
            leaked: false,
            step: None,
            waited: None,
        };
        rec.op(op(None, vec![1, 2]));
        rec.op(op(
            Some(OpError::new(ErrorClass::LostConnection, "eof")),
            vec![3],
        ));
        let h = rec.freeze(Ending::default());
        assert_eq!(h.acknowledged_ids(), BTreeSet::from([1, 2]));
    }
}
