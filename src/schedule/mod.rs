//! Schedule: where faults fall in time. Pure: the same suite and seed always give the
//! same plan, which is what makes a printed seed reproduce a run.

use std::collections::BTreeSet;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::fault::Fault;
use crate::history::{ErrorClass, Lasts};

/// One `[[fault]]` of a suite, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultSpec {
    pub name: String,
    pub fault: Fault,
    pub at: Duration,
    /// How long the fault lasts: a duration, instant (a kill), or until the workload
    /// ends (a setting given no duration).
    pub lasts: Lasts,
    pub repeat: Option<Repeat>,
    /// Each occurrence moves later by up to this much, drawn from the seed.
    pub jitter: Duration,
    /// Error classes tolerated in this fault's window on top of the suite's.
    pub tolerate: BTreeSet<ErrorClass>,
    /// `effect = "none"`: a control that must touch nothing (a quiet spell under the old
    /// setting, say).
    pub expect_no_effect: bool,
    /// In force before the pool is built (`before_pool = true`): the pool is created
    /// while the server is unreachable.
    pub before_pool: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Repeat {
    pub every: Duration,
    /// Extra occurrences after the first.
    pub times: u32,
}

impl FaultSpec {
    /// The latest moment an occurrence of this fault can heal.
    pub fn latest_heal(&self) -> Duration {
        let extra = self.repeat.map_or(Duration::ZERO, |r| r.every * r.times);
        self.at + extra + self.jitter + self.duration()
    }

    /// How long one occurrence lasts (zero for instant and until-the-end faults).
    pub fn duration(&self) -> Duration {
        match self.lasts {
            Lasts::For(d) => d,
            Lasts::Instant | Lasts::UntilEnd => Duration::ZERO,
        }
    }
}

/// A fault occurrence placed in time.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    /// `name`, or `name#k` for the k-th repetition (from 1).
    pub name: String,
    /// The suite's fault name this occurrence came from.
    pub spec: String,
    pub fault: Fault,
    pub at: Duration,
    pub lasts: Lasts,
    /// Applied before the pool is built (see [`FaultSpec::before_pool`]).
    pub before_pool: bool,
}

/// Expand repeats and draw jitter; sorted by time.
pub fn plan(faults: &[FaultSpec], seed: u64) -> Vec<Planned> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut out = Vec::new();
    for f in faults {
        let times = f.repeat.map_or(0, |r| r.times);
        for k in 0..=times {
            let base = f.at + f.repeat.map_or(Duration::ZERO, |r| r.every * k);
            let jitter = if f.jitter.is_zero() {
                Duration::ZERO
            } else {
                Duration::from_micros(rng.random_range(0..=f.jitter.as_micros() as u64))
            };
            out.push(Planned {
                name: if times == 0 {
                    f.name.clone()
                } else {
                    format!("{}#{}", f.name, k + 1)
                },
                spec: f.name.clone(),
                fault: f.fault.clone(),
                at: base + jitter,
                lasts: f.lasts,
                before_pool: f.before_pool,
            });
        }
    }
    out.sort_by_key(|p| p.at);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn spec(at: u64, every: u64, times: u32, jitter: u64) -> FaultSpec {
        FaultSpec {
            name: "f".into(),
            fault: Fault::Pause,
            at: Duration::from_millis(at),
            lasts: Lasts::For(Duration::from_millis(100)),
            repeat: (times > 0).then_some(Repeat {
                every: Duration::from_millis(every),
                times,
            }),
            jitter: Duration::from_millis(jitter),
            tolerate: BTreeSet::new(),
            expect_no_effect: false,
            before_pool: false,
        }
    }

    #[test]
    fn repeats_are_named_and_spaced() {
        let p = plan(&[spec(1000, 500, 2, 0)], 7);
        let got: Vec<_> = p
            .iter()
            .map(|p| (p.name.as_str(), p.at.as_millis()))
            .collect();
        assert_eq!(got, [("f#1", 1000), ("f#2", 1500), ("f#3", 2000)]);
    }

    proptest! {
        #[test]
        fn same_seed_same_plan(seed: u64, at in 0u64..5000, every in 200u64..2000, times in 0u32..5, jitter in 0u64..300) {
            let s = [spec(at, every, times, jitter)];
            prop_assert_eq!(plan(&s, seed), plan(&s, seed));
        }

        #[test]
        fn occurrences_stay_within_their_bounds(seed: u64, at in 0u64..5000, every in 200u64..2000, times in 0u32..5, jitter in 0u64..300) {
            let s = spec(at, every, times, jitter);
            let p = plan(std::slice::from_ref(&s), seed);
            prop_assert_eq!(p.len(), times as usize + 1);
            for o in &p {
                prop_assert!(o.at >= s.at);
                prop_assert!(o.at + s.duration() <= s.latest_heal());
            }
        }
    }
}
