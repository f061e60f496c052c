//! Where a run is, told as it happens: for progress displays. The run calls the observer
//! at each step; nothing the observer does reaches back into the run (it gets a copy of
//! the step and returns nothing).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// One step of a run, in the order they come (faults may overlap).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// Starting the server, the proxy and the pool.
    StartingServer,
    /// The workload has started; it is planned to last `expected`.
    Running { expected: Duration },
    /// A fault took effect.
    FaultActive { name: String },
    /// A fault is being healed (a restart can take a while).
    Healing { name: String },
    /// A fault has healed.
    Healed { name: String },
    /// The workload is over: settling the pool, reading writes back, checking.
    Checking,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::StartingServer => f.write_str("starting server"),
            Step::Running { .. } => f.write_str("running"),
            Step::FaultActive { name } => write!(f, "fault `{name}` active"),
            Step::Healing { name } => write!(f, "healing `{name}`"),
            Step::Healed { name } => write!(f, "`{name}` healed"),
            Step::Checking => f.write_str("checking"),
        }
    }
}

/// A callback told each [`Step`] of a run; cheap to clone. It is called on the run's
/// own tasks: it must return quickly.
#[derive(Clone)]
pub struct Observer(Arc<dyn Fn(Step) + Send + Sync>);

impl Observer {
    pub fn new(f: impl Fn(Step) + Send + Sync + 'static) -> Self {
        Observer(Arc::new(f))
    }

    pub(crate) fn tell(&self, step: Step) {
        (self.0)(step)
    }
}

impl fmt::Debug for Observer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Observer")
    }
}

/// Tell `step` to the observer, if there is one.
pub(crate) fn tell(observer: &Option<Observer>, step: Step) {
    if let Some(o) = observer {
        o.tell(step);
    }
}
