//! Causal attribution: which fault an error the application saw is blamed on.
//!
//! An error is blamed on a fault only if it started inside that fault's window (or its
//! grace after the heal) **and** its class is one that kind of fault can cause. A
//! `set_global` of an unrelated variable causes nothing; a lowered `wait_timeout` causes
//! stale-connection errors only once a session opened after it can have idled that long;
//! a crash causes lost connections, not checkout errors of another pool. The table is the
//! README's "When a run proves nothing" table, and the one place that knows it.

use std::time::Duration;

use crate::history::{ErrorClass, FaultKind, History, Lasts, Observed, OpRecord};

use super::Expect;

use ErrorClass as E;

/// The error classes a fault of this kind can cause in the application.
pub fn causes(kind: FaultKind) -> &'static [ErrorClass] {
    match kind {
        // The server closes what idled past wait_timeout; the pool hands it out anyway.
        FaultKind::Idle | FaultKind::WaitTimeout => {
            &[E::GoneAway, E::LostConnection, E::InteractionTimeout]
        }
        FaultKind::MaxConnections => &[E::TooManyConnections, E::CheckoutTimeout],
        // Any other variable: nothing goneaway can tie to it.
        FaultKind::SetGlobal => &[],
        // Writes refused; reads and connections go on as before.
        FaultKind::ReadOnly => &[E::ReadOnly],
        // The old primary refuses writes (read-only) or goes away (stopped); a reset
        // move breaks the open connections; new ones may wait while the proxy moves.
        FaultKind::Failover => &[
            E::ReadOnly,
            E::LostConnection,
            E::GoneAway,
            E::ConnectRefused,
            E::ServerShutdown,
            E::Killed,
            E::CheckoutTimeout,
        ],
        FaultKind::Kill => &[E::Killed, E::LostConnection, E::GoneAway],
        FaultKind::Crash | FaultKind::Restart => &[
            E::LostConnection,
            E::GoneAway,
            E::ConnectRefused,
            E::Killed,
            E::ServerShutdown,
            E::CheckoutTimeout,
        ],
        FaultKind::Pause => &[E::Timeout, E::CheckoutTimeout, E::LostConnection],
        FaultKind::Disconnect => &[
            E::Timeout,
            E::CheckoutTimeout,
            E::LostConnection,
            E::GoneAway,
        ],
        // A client with no checkout timeout waits on refused connects until the
        // application's own deadline (the harness's op timeout): a hang, not an error.
        FaultKind::Cut => &[
            E::LostConnection,
            E::GoneAway,
            E::ConnectRefused,
            E::CheckoutTimeout,
            E::Timeout,
        ],
        FaultKind::Blackhole | FaultKind::Timeout => &[
            E::Timeout,
            E::CheckoutTimeout,
            E::LostConnection,
            E::GoneAway,
        ],
        FaultKind::Latency | FaultKind::Bandwidth | FaultKind::Slicer => {
            &[E::Timeout, E::CheckoutTimeout]
        }
        FaultKind::SlowClose => &[E::Timeout, E::CheckoutTimeout, E::LostConnection],
        FaultKind::ResetPeer | FaultKind::LimitData => {
            &[E::GoneAway, E::LostConnection, E::CheckoutTimeout]
        }
    }
}

/// A fault's window: from when it took effect to when it healed (or the workload ended,
/// for one that never healed).
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// Occurrence name, e.g. `kill#2`.
    pub name: String,
    /// The suite's fault name, e.g. `kill`.
    pub fault: String,
    pub kind: FaultKind,
    pub start: Duration,
    pub end: Duration,
    /// A setting in force until the end: it opens no run-long window for the suite's
    /// tolerance.
    pub persistent: bool,
    /// Nothing it causes can show before this (a lowered wait_timeout needs a session
    /// opened after it to idle that long).
    pub earliest: Duration,
}

/// The windows of the faults that took effect.
pub fn windows(h: &History) -> Vec<Window> {
    h.faults
        .iter()
        .filter(|f| f.applied && !f.skipped)
        .map(|f| {
            let lag = match (&f.kind, &f.observed) {
                (FaultKind::WaitTimeout, Observed::Setting { new, .. }) => {
                    Duration::from_secs(new.parse().unwrap_or(0))
                }
                _ => Duration::ZERO,
            };
            Window {
                name: f.name.clone(),
                fault: f.name.split('#').next().unwrap_or(&f.name).to_string(),
                kind: f.kind,
                start: f.start,
                end: f.healed.unwrap_or(h.workload_end.max(f.start)),
                persistent: f.lasts == Lasts::UntilEnd,
                earliest: f.start + lag,
            }
        })
        .collect()
}

/// Every window (extended by `grace`) an operation overlaps.
pub fn overlapping<'w>(
    op: &OpRecord,
    windows: &'w [Window],
    grace: Duration,
) -> impl Iterator<Item = &'w Window> {
    let (start, end) = (op.start, op.end);
    windows
        .iter()
        .filter(move |w| end >= w.start && start <= w.end + grace)
}

/// Where a failure is placed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Place {
    /// Inside the window of a fault that can cause it.
    During(String),
    /// After that fault healed, within the grace period.
    AfterHeal(String),
    /// Inside windows of faults none of which can cause it (the most recent named).
    NotCausedBy(String),
    /// No fault window at all.
    Outside,
}

impl Place {
    /// The fault occurrence it is blamed on, if any.
    pub fn blamed(&self) -> Option<&str> {
        match self {
            Place::During(w) | Place::AfterHeal(w) => Some(w),
            _ => None,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Place::During(w) => format!("during `{w}`"),
            Place::AfterHeal(w) => format!("after `{w}` (grace)"),
            Place::NotCausedBy(w) => format!("during `{w}`, which cannot cause it"),
            Place::Outside => "outside any fault window".into(),
        }
    }
}

/// One failure's attribution: the window it is blamed on and whether the suite
/// tolerates it there.
#[derive(Debug, Clone)]
pub struct Blame<'w> {
    pub window: Option<&'w Window>,
    pub place: Place,
    pub tolerated: bool,
}

/// Whether `w` can be blamed for a failure of `class` in `op`.
pub fn can_blame(w: &Window, op: &OpRecord, class: ErrorClass) -> bool {
    causes(w.kind).contains(&class) && op.end >= w.earliest
}

/// Whether the suite tolerates `class` in window `w`: the fault's own `tolerate`, or the
/// suite's (which does not reach a setting left in force to the end).
pub fn tolerates(w: &Window, class: ErrorClass, e: &Expect) -> bool {
    e.per_fault
        .get(&w.fault)
        .is_some_and(|t| t.contains(&class))
        || (!w.persistent && e.tolerate.contains(&class))
}

/// Blame one failure: among the windows it overlaps whose kind can cause its class,
/// prefer one that tolerates it, then the most recent.
pub fn blame<'w>(op: &OpRecord, ws: &'w [Window], e: &Expect) -> Blame<'w> {
    let class = op.class().expect("only failures are blamed");
    let over: Vec<&Window> = overlapping(op, ws, e.grace).collect();
    let chosen = over
        .iter()
        .filter(|w| can_blame(w, op, class))
        .max_by_key(|w| (tolerates(w, class, e), w.start))
        .copied();
    match chosen {
        Some(w) => Blame {
            window: Some(w),
            place: if op.start <= w.end {
                Place::During(w.name.clone())
            } else {
                Place::AfterHeal(w.name.clone())
            },
            tolerated: tolerates(w, class, e),
        },
        None => Blame {
            window: None,
            place: match over.iter().max_by_key(|w| w.start) {
                Some(w) => Place::NotCausedBy(w.name.clone()),
                None => Place::Outside,
            },
            tolerated: false,
        },
    }
}
