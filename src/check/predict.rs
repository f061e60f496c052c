//! Whether the run confirmed a lint's prediction: only by the class it predicted, where it
//! predicted it. A gone_away from a reset does not confirm a stale-connection lint about
//! a night, and a leak lint is not confirmed by a cut when nothing leaked.

use serde::{Deserialize, Serialize};

use crate::history::{ErrorClass, History};
use crate::lint::{Prediction, Where};

use super::{Expect, blame, windows};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The class appeared where it was predicted.
    Confirmed,
    /// That place was exercised and the class did not appear there.
    Refuted,
    /// The run never exercised that place.
    NotExercised,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Confirmed => "confirmed",
            Outcome::Refuted => "refuted",
            Outcome::NotExercised => "not exercised",
        }
    }
}

/// Judge one prediction against the history.
pub fn outcome(p: &Prediction, h: &History, e: &Expect) -> Outcome {
    let ws = windows(h);
    let of_class = |class: ErrorClass| h.failures().filter(move |o| o.class() == Some(class));
    let (seen, exercised) = match &p.place {
        Where::Faults(names) => {
            let mine: Vec<_> = ws.iter().filter(|w| names.contains(&w.fault)).collect();
            let seen = of_class(p.class).any(|o| {
                blame(o, &ws, e)
                    .window
                    .is_some_and(|w| names.contains(&w.fault))
            });
            // The place is exercised when the pool was used again after the gap, inside
            // the window's grace (that is when a stale connection shows).
            let exercised = mine.iter().any(|w| {
                h.ops
                    .iter()
                    .any(|o| o.start >= w.start && o.start <= w.end + e.grace)
            });
            (seen, exercised)
        }
        Where::Anywhere => (of_class(p.class).next().is_some(), !h.ops.is_empty()),
        Where::AfterLeaks => {
            let first = h.ops.iter().filter(|o| o.leaked).map(|o| o.start).min();
            match first {
                Some(t) => (of_class(p.class).any(|o| o.start >= t), true),
                None => (false, false),
            }
        }
        Where::ServerLimit(limit) => {
            let seen = of_class(p.class).next().is_some();
            let peak = h.sessions.iter().map(|s| s.total).max().unwrap_or(0);
            (seen, seen || peak >= *limit)
        }
    };
    match (seen, exercised) {
        (true, _) => Outcome::Confirmed,
        (false, true) => Outcome::Refuted,
        (false, false) => Outcome::NotExercised,
    }
}
