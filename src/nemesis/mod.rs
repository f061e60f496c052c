//! Nemesis: plays a schedule of faults against the run and records each one in the
//! history, in the same stream as the operations: when it was planned, when it really
//! took effect, what it saw of its own effect, and when it healed.
//!
//! It never starts a fault after the workload has ended (nothing would show whether the
//! pool survived it): such a fault is recorded as skipped, and the checkers say so.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::fault::{FaultCx, Guard};
use crate::history::{FaultId, Lasts, Recorder};
use crate::run::{Observer, Step};
use crate::schedule::Planned;

pub struct Nemesis {
    pub cx: FaultCx,
    pub recorder: Recorder,
    /// Told when each fault takes effect and heals (progress displays only).
    pub observer: Option<Observer>,
}

/// A fault applied ahead of the rest (before the pool was built), waiting to be held and
/// healed by [`Nemesis::run`]. Dropped unplayed, its guard heals what must not outlive
/// the run.
pub struct Begun {
    id: FaultId,
    planned: Planned,
    guard: Option<Guard>,
}

impl Nemesis {
    /// Run every planned fault; returns when all have healed, or at cancellation (then
    /// the guards still held heal on drop). `workload_done` fires when the workload has
    /// stopped: faults not yet applied are skipped, and faults still in force heal.
    pub async fn run(
        &self,
        plan: Vec<Planned>,
        early: Vec<Begun>,
        cancel: CancellationToken,
        workload_done: CancellationToken,
    ) {
        let start = self.recorder.started();
        // Faults applied before the pool was built: only their hold and heal are left.
        let held = early.into_iter().map(|b| {
            let (cancel, done) = (cancel.clone(), workload_done.clone());
            async move {
                if let Some(guard) = b.guard {
                    // Its time runs from when it took effect, not from the pool's build.
                    let hold = match b.planned.lasts {
                        Lasts::For(d) => d.saturating_sub(self.recorder.now()),
                        _ => Duration::ZERO,
                    };
                    self.hold(b.id, &b.planned.name, hold, guard, cancel, done)
                        .await;
                }
            }
        });
        let held = futures::future::join_all(held);
        let tasks = plan.into_iter().map(|p| {
            let (cancel, done) = (cancel.clone(), workload_done.clone());
            async move {
                let id = self
                    .recorder
                    .fault_planned(&p.name, p.fault.kind(), p.at, p.lasts);
                let at = tokio::time::Instant::from_std(start + p.at);
                tokio::select! {
                    _ = tokio::time::sleep_until(at) => {}
                    _ = cancel.cancelled() => {
                        return self.recorder.fault_skipped(id, "the run was cut short before its time".into());
                    }
                    _ = done.cancelled() => {
                        let why = format!(
                            "never applied: the workload had ended at {:.2}s, before its time {:.2}s",
                            self.recorder.now().as_secs_f64(),
                            p.at.as_secs_f64()
                        );
                        return self.recorder.fault_skipped(id, why);
                    }
                }
                self.play(id, &p, cancel, done).await;
            }
        });
        futures::future::join(futures::future::join_all(tasks), held).await;
    }

    /// Apply a fault that begins before the pool is built, now; [`Nemesis::run`] holds and
    /// heals it with the rest.
    pub async fn begin(&self, p: Planned) -> Begun {
        let id = self
            .recorder
            .fault_planned(&p.name, p.fault.kind(), p.at, p.lasts);
        let guard = self.apply(id, &p, &CancellationToken::new()).await;
        Begun {
            id,
            planned: p,
            guard,
        }
    }

    async fn play(
        &self,
        id: FaultId,
        p: &Planned,
        cancel: CancellationToken,
        done: CancellationToken,
    ) {
        if let Some(guard) = self.apply(id, p, &done).await {
            let hold = match p.lasts {
                Lasts::Instant => Duration::ZERO,
                Lasts::For(d) => d,
                Lasts::UntilEnd => Duration::MAX,
            };
            self.hold(id, &p.name, hold, guard, cancel, done).await;
        }
    }

    /// Apply and record it; `None` when applying failed (recorded too).
    async fn apply(&self, id: FaultId, p: &Planned, done: &CancellationToken) -> Option<Guard> {
        let asked = self.recorder.now();
        let guard = match p.fault.apply(&self.cx, done).await {
            Ok(guard) => guard,
            Err(e) => {
                tracing::debug!(fault = %p.name, "applying the fault failed: {e}");
                self.recorder.fault_error(id, format!("apply failed: {e}"));
                return None;
            }
        };
        let applied = guard.applied();
        let took_effect = applied.took_effect.map_or(asked, |t| {
            t.saturating_duration_since(self.recorder.started())
        });
        self.recorder.fault_applied(
            id,
            took_effect,
            applied.detail.clone(),
            applied.observed.clone(),
        );
        tracing::debug!(fault = %p.name, "fault applied at {took_effect:?}: {}", applied.detail);
        self.tell(Step::FaultActive {
            name: p.name.clone(),
        });
        Some(guard)
    }

    async fn hold(
        &self,
        id: FaultId,
        name: &str,
        hold: Duration,
        guard: Guard,
        cancel: CancellationToken,
        done: CancellationToken,
    ) {
        // Whatever the plan says, a fault heals once the workload is over: what it does
        // afterwards can show nothing.
        if !hold.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(hold.min(Duration::from_secs(86_400))) => {}
                _ = done.cancelled() => {}
                _ = cancel.cancelled() => return self.heal_late(id, guard).await,
            }
        }
        self.heal(id, name, guard).await;
    }

    fn tell(&self, step: Step) {
        if let Some(o) = &self.observer {
            o.tell(step);
        }
    }

    async fn heal(&self, id: FaultId, name: &str, guard: Guard) {
        tracing::debug!(fault = %name, "healing");
        self.tell(Step::Healing {
            name: name.to_string(),
        });
        let recorder = self.recorder.clone();
        match guard.heal(move || recorder.fault_healed(id)).await {
            Ok(Some(observed)) => self.recorder.fault_observed(id, observed),
            Ok(None) => {}
            Err(e) => self.recorder.fault_error(id, format!("heal failed: {e}")),
        }
        tracing::debug!(fault = %name, "healed");
        self.tell(Step::Healed {
            name: name.to_string(),
        });
    }

    /// Cancelled mid-fault: heal now, but the record keeps no heal time (the run was cut).
    async fn heal_late(&self, id: FaultId, guard: Guard) {
        if let Err(e) = guard.heal(|| ()).await {
            self.recorder
                .fault_error(id, format!("heal after interruption failed: {e}"));
        }
    }
}
