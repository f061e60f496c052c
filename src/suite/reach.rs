//! Whether a `[workload] requests` cap lets the workload reach its faults. A cap used up
//! before a fault starts means the fault never runs, and one used up before it heals
//! leaves nothing to show recovery: either way the suite says it tests something it
//! does not (issue 9, honest verdicts).
//!
//! Each worker issues at most one request per *period*, so the cap of `n` requests
//! across `w` workers cannot be used up before `(ceil(n / w) - 1) * period`, plus the
//! time `idle` faults hold every worker back.
//!
//! - Open loop (`rate` set): the period is the rate's timetable, `w / rate` (or
//!   `think + hold` when that is longer). On a server that keeps up, the cap is used up
//!   exactly then, so a cap that ends the timetable before the last fault *starts* is
//!   refused. Ending between a start and its heal is only a warning: the fault itself
//!   may slow requests down (a cut makes checkouts wait) and stretch the timetable.
//! - Closed loop: the period is `think + hold` plus however long the server takes,
//!   which no one knows before the run. With a floor of 1 ms per request this gives the
//!   earliest end only, so a cap that *might* run out is always a warning.

use std::time::Duration;

use crate::fault::Fault;
use crate::schedule::FaultSpec;
use crate::workload::WorkloadSpec;

/// The least a closed-loop request is assumed to take on a fast local server.
const CLOSED_LOOP_FLOOR: Duration = Duration::from_millis(1);

/// A cap that may be used up before a fault starts or heals.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Shortfall {
    /// Known before the run: refuse. Otherwise a warning.
    pub decided: bool,
    pub requests: u64,
    /// When the cap is used up, at the earliest.
    pub ends: Duration,
    pub fault: String,
    /// Whether the cap ends before the fault starts (it never runs) or only before
    /// it heals.
    pub before_start: bool,
    /// When the fault's last occurrence starts or heals.
    pub at: Duration,
    /// The smallest cap that lasts past `at`.
    pub needed: u64,
}

impl Shortfall {
    pub fn message(&self, w: &WorkloadSpec) -> String {
        let secs = |d: Duration| format!("{:.1}s", d.as_secs_f64());
        let event = if self.before_start {
            format!(
                "before fault `{}` starts at {}: it would never run",
                self.fault,
                secs(self.at)
            )
        } else {
            format!(
                "before fault `{}` heals at {}: nothing would show recovery",
                self.fault,
                secs(self.at)
            )
        };
        let (pace, assuming) = match w.rate {
            Some(rate) => (format!("at rate = {rate}/s"), String::new()),
            None => (
                "with no `rate`".to_string(),
                format!(
                    " on a server that answers within 1 ms ({} workers, think {})",
                    w.workers,
                    humantime::format_duration(w.think)
                ),
            ),
        };
        let verdict = match (self.decided, w.rate) {
            (true, _) => String::new(),
            (false, Some(_)) => {
                "; the fault may slow requests and stretch the timetable, so this is a warning"
                    .into()
            }
            (false, None) => "; a closed loop's pace is the server's, so this is a warning".into(),
        };
        format!(
            "[workload] requests = {} {pace} may be used up after about {}{assuming}, {event}{verdict}; raise `requests` to at least {} or leave it out",
            self.requests,
            secs(self.ends),
            self.needed
        )
    }
}

/// The first way the cap falls short: before the last fault starts, else before the
/// last heal.
pub(crate) fn shortfall(w: &WorkloadSpec, faults: &[FaultSpec]) -> Option<Shortfall> {
    let requests = w.requests?;
    let workers = u64::from(w.workers.max(1));
    let busy = w.think + w.hold;
    let period = match w.rate {
        Some(rate) => (f64::from(w.workers) / rate).max(busy.as_secs_f64()),
        None => (busy + CLOSED_LOOP_FLOOR).as_secs_f64(),
    };
    let idle = idle_time(faults).as_secs_f64();
    let ends = (requests.div_ceil(workers) - 1) as f64 * period + idle;
    // Smallest n with (ceil(n / w) - 1) * period + idle > t.
    let needed = |t: Duration| {
        let rounds = ((t.as_secs_f64() - idle) / period).floor() as u64 + 1;
        workers.saturating_mul(rounds).saturating_add(1)
    };
    let short = |f: &FaultSpec, at: Duration, before_start: bool| Shortfall {
        decided: before_start && w.rate.is_some(),
        requests,
        ends: Duration::from_secs_f64(ends),
        fault: f.name.clone(),
        before_start,
        at,
        needed: needed(at),
    };
    let (last_start, start) = faults
        .iter()
        .map(|f| (f, latest_start(f)))
        .max_by_key(|(_, t)| *t)?;
    if ends <= start.as_secs_f64() {
        return Some(short(last_start, start, true));
    }
    let (last_heal, heal) = faults
        .iter()
        .map(|f| (f, f.latest_heal()))
        .max_by_key(|(_, t)| *t)?;
    (ends <= heal.as_secs_f64()).then(|| short(last_heal, heal, false))
}

/// When the last occurrence of a fault starts, before jitter.
fn latest_start(f: &FaultSpec) -> Duration {
    f.at + f.repeat.map_or(Duration::ZERO, |r| r.every * r.times)
}

/// The most time `idle` faults can hold every worker back: every occurrence in full.
fn idle_time(faults: &[FaultSpec]) -> Duration {
    faults
        .iter()
        .filter(|f| matches!(f.fault, Fault::Idle))
        .map(|f| {
            let occurrences = f.repeat.map_or(0, |r| r.times).saturating_add(1);
            f.duration() * occurrences
        })
        .sum()
}
