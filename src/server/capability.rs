//! Which backend can do what to its server, decided here and nowhere else. Suites are
//! checked against it before a run (a fault a backend cannot do is a suite error with
//! the reason below) and [`Server::act`](super::Server::act) refuses the same actions.

use super::{Action, BackendKind};

/// Whether a backend can do an [`Action`], and why not when it cannot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    Supported,
    /// The reason, written for a suite author: what stands in the way and what to use.
    Unsupported(&'static str),
}

impl Capability {
    pub fn is_supported(self) -> bool {
        self == Capability::Supported
    }

    /// The reason it cannot, if it cannot.
    pub fn reason(self) -> Option<&'static str> {
        match self {
            Capability::Supported => None,
            Capability::Unsupported(why) => Some(why),
        }
    }
}

const NOT_OURS: &str = "an external server is not the harness's to crash, restart or pause; \
     only SQL-level faults (idle, wait_timeout, set_global, kill, max_connections) work there";
const NO_NETWORK: &str = "a kernel-level network cut needs a server on a network of its own: \
     use backend = \"docker\"";

impl BackendKind {
    /// Whether this backend can do `action` to its server.
    pub fn supports(self, action: Action) -> Capability {
        use Action::*;
        match (self, action) {
            (BackendKind::Docker, _) => Capability::Supported,
            (BackendKind::Process, Disconnect | Reconnect) => Capability::Unsupported(NO_NETWORK),
            (BackendKind::Process, Crash | Shutdown | Start | Pause | Resume) => {
                Capability::Supported
            }
            (BackendKind::External, Disconnect | Reconnect) => Capability::Unsupported(NO_NETWORK),
            (BackendKind::External, Crash | Shutdown | Start | Pause | Resume) => {
                Capability::Unsupported(NOT_OURS)
            }
        }
    }
}

/// The whole table, every backend by every action (for docs and `goneaway` output).
pub fn capabilities() -> Vec<(BackendKind, Action, Capability)> {
    let backends = [
        BackendKind::Process,
        BackendKind::Docker,
        BackendKind::External,
    ];
    backends
        .into_iter()
        .flat_map(|b| Action::ALL.into_iter().map(move |a| (b, a, b.supports(a))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_says_what_each_backend_can_do() {
        let can = |b: BackendKind| -> Vec<&str> {
            capabilities()
                .into_iter()
                .filter(|(k, _, c)| *k == b && c.is_supported())
                .map(|(_, a, _)| a.name())
                .collect()
        };
        assert_eq!(
            can(BackendKind::Process),
            ["crash", "shutdown", "start", "pause", "resume"]
        );
        assert_eq!(can(BackendKind::Docker).len(), Action::ALL.len());
        assert!(can(BackendKind::External).is_empty());
        let why = BackendKind::Process.supports(Action::Disconnect).reason();
        assert!(why.is_some_and(|w| w.contains("use backend = \"docker\"")));
    }
}
