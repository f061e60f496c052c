//! Running one case: by default a real run (own server, own proxy), or anything else that
//! says whether a suite met its expectations, so the loop can be tested with a stand-in.

use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::check::Verdict;
use crate::error::Error;
use crate::report::Report;
use crate::run::{Observer, RunOptions};
use crate::suite::Suite;

/// What one run of a case showed.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Met,
    /// Expectations not met for a reason other than an `unknown` finding.
    Failed {
        /// The checks that came out invalid.
        checks: Vec<String>,
        /// Every unmet reason, `unknown` ones included.
        unmet: Vec<String>,
    },
    /// Not met, but only because something proved nothing (a generated fault that
    /// touched nothing): not a bug in the pool.
    Inconclusive {
        unmet: Vec<String>,
    },
    /// The run was cut short (Ctrl-C): says nothing either way.
    Interrupted,
}

impl Outcome {
    /// Read a report: reasons that come from `unknown` checks do not make a failure.
    pub fn of(report: &Report) -> Outcome {
        let s = &report.stable;
        if s.met {
            return Outcome::Met;
        }
        let unknown: Vec<String> = s
            .checks
            .iter()
            .filter(|c| c.verdict == Verdict::Unknown)
            .flat_map(|c| {
                c.findings
                    .iter()
                    .map(move |f| format!("{}: unknown: {f}", c.name))
            })
            .collect();
        let real: Vec<&String> = s.unmet.iter().filter(|u| !unknown.contains(u)).collect();
        if real.is_empty() {
            Outcome::Inconclusive {
                unmet: s.unmet.clone(),
            }
        } else {
            Outcome::Failed {
                checks: s
                    .checks
                    .iter()
                    .filter(|c| c.verdict == Verdict::Invalid)
                    .map(|c| c.name.clone())
                    .collect(),
                unmet: s.unmet.clone(),
            }
        }
    }

    pub fn failed(&self) -> bool {
        matches!(self, Outcome::Failed { .. })
    }
}

/// Runs one case. `seed` is the run's seed (jitter, each worker's operations); the run
/// tells `observer`, when there is one, each step it reaches (the explorer's progress
/// lines).
pub trait CaseRunner: Send + Sync {
    fn run<'a>(
        &'a self,
        suite: &'a Suite,
        seed: u64,
        cancel: CancellationToken,
        observer: Option<Observer>,
    ) -> BoxFuture<'a, Result<Outcome, Error>>;
}

/// The real thing: `goneaway::run` with the suite's own pool.
pub struct RealRunner;

impl CaseRunner for RealRunner {
    fn run<'a>(
        &'a self,
        suite: &'a Suite,
        seed: u64,
        cancel: CancellationToken,
        observer: Option<Observer>,
    ) -> BoxFuture<'a, Result<Outcome, Error>> {
        Box::pin(async move {
            let opts = RunOptions {
                seed: Some(seed),
                cancel: cancel.clone(),
                pool: None,
                observer,
            };
            let report = crate::run(suite, opts).await?;
            if cancel.is_cancelled() {
                return Ok(Outcome::Interrupted);
            }
            Ok(Outcome::of(&report))
        })
    }
}

/// Any closure from a suite and seed to an outcome is a runner (tests use this); it has
/// no steps to tell.
impl<F> CaseRunner for F
where
    F: Fn(&Suite, u64) -> Result<Outcome, Error> + Send + Sync,
{
    fn run<'a>(
        &'a self,
        suite: &'a Suite,
        seed: u64,
        _cancel: CancellationToken,
        _observer: Option<Observer>,
    ) -> BoxFuture<'a, Result<Outcome, Error>> {
        let out = self(suite, seed);
        Box::pin(async move { out })
    }
}
