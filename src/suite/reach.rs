//! Whether a `[workload] requests` cap lets the workload run until its faults have
//! healed. A cap used up before the last heal ends the run early: the suite then says
//! it tests recovery from a fault and shows nothing of it (issue 9, honest verdicts).
//!
//! Each worker issues at most one request per *period*, so the cap of `n` requests
//! across `w` workers cannot be used up before `(ceil(n / w) - 1) * period`, plus the
//! time `idle` faults hold every worker back.
//!
//! - Open loop (`rate` set): the period is the rate's timetable, `w / rate` (or
//!   `think + hold` when that is longer). On a server that keeps up, the cap is used up
//!   exactly then, so a cap that ends the timetable before a heal is refused.
//! - Closed loop: the period is `think + hold` plus however long the server takes,
//!   which no one knows before the run. With a floor of 1 ms per request this gives the
//!   earliest end only, so a cap that *might* run out is a warning, not a refusal.

use std::time::Duration;

use crate::fault::Fault;
use crate::schedule::FaultSpec;
use crate::workload::WorkloadSpec;

/// The least a closed-loop request is assumed to take on a fast local server.
const CLOSED_LOOP_FLOOR: Duration = Duration::from_millis(1);

/// A cap that may be used up before a fault heals.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Shortfall {
    /// Known before the run (open loop): refuse. Otherwise a warning.
    pub decided: bool,
    pub requests: u64,
    /// When the cap is used up, at the earliest.
    pub ends: Duration,
    pub fault: String,
    pub heals: Duration,
    /// The smallest cap that lasts past the heal.
    pub needed: u64,
}

impl Shortfall {
    pub fn message(&self, w: &WorkloadSpec) -> String {
        let secs = |d: Duration| format!("{:.1}s", d.as_secs_f64());
        match w.rate {
            Some(rate) => format!(
                "[workload] requests = {} at rate = {rate}/s are used up after about {}, before fault `{}` heals at {}: the run would end without showing recovery; raise `requests` to at least {} or leave it out",
                self.requests,
                secs(self.ends),
                self.fault,
                secs(self.heals),
                self.needed
            ),
            None => format!(
                "[workload] requests = {} with no `rate` may be used up after about {} on a server that answers within 1 ms ({} workers, think {}), before fault `{}` heals at {}; a closed loop's pace depends on the server, so this is a warning, not a refusal: set `rate`, or raise `requests` to at least {}",
                self.requests,
                secs(self.ends),
                w.workers,
                humantime::format_duration(w.think),
                self.fault,
                secs(self.heals),
                self.needed
            ),
        }
    }
}

/// The fault healing last, if the cap may run out before it.
pub(crate) fn shortfall(w: &WorkloadSpec, faults: &[FaultSpec]) -> Option<Shortfall> {
    let requests = w.requests?;
    let last = faults.iter().max_by_key(|f| f.latest_heal())?;
    let heals = last.latest_heal();
    let workers = u64::from(w.workers.max(1));
    let busy = w.think + w.hold;
    let period = match w.rate {
        Some(rate) => (f64::from(w.workers) / rate).max(busy.as_secs_f64()),
        None => (busy + CLOSED_LOOP_FLOOR).as_secs_f64(),
    };
    let idle = idle_time(faults).as_secs_f64();
    let rounds = requests.div_ceil(workers) - 1;
    let ends = rounds as f64 * period + idle;
    if ends > heals.as_secs_f64() {
        return None;
    }
    // Smallest n with (ceil(n / w) - 1) * period + idle > heals.
    let rounds_needed = ((heals.as_secs_f64() - idle) / period).floor() as u64 + 1;
    Some(Shortfall {
        decided: w.rate.is_some(),
        requests,
        ends: Duration::from_secs_f64(ends),
        fault: last.name.clone(),
        heals,
        needed: workers.saturating_mul(rounds_needed).saturating_add(1),
    })
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
