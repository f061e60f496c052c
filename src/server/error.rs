//! What can go wrong with a server, on any backend. Docker's own failures are a
//! [`DockerError`](super::docker::DockerError) inside [`ServerError::Docker`].

use std::time::Duration;

use super::BackendKind;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    #[error(
        "no MySQL server binary found (looked for {searched}); install one with \
         `apt-get install -y mariadb-server`, or set GONEAWAY_MYSQLD to a mariadbd/mysqld path"
    )]
    MissingBinary { searched: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("server at {addr} did not become ready within {waited:?}: {detail}{log_tail}")]
    NotReady {
        addr: String,
        waited: Duration,
        detail: String,
        /// The server's last log lines, prefixed with a newline, or empty.
        log_tail: String,
    },
    #[error("server exited during start ({status}){log_tail}")]
    Exited { status: String, log_tail: String },
    #[error("sql `{sql}` on {target} failed: {message}")]
    Sql {
        sql: String,
        target: String,
        message: String,
    },
    #[error("cannot connect to {target}: {message}")]
    Connect { target: String, message: String },
    #[error("the {backend} backend cannot {action}")]
    Unsupported {
        backend: BackendKind,
        action: &'static str,
    },
    #[error(
        "the server runs with {key} = {got}, not {wanted} as the suite says \
         (servers clamp out-of-range values silently; MariaDB's max_connections is at least 10)"
    )]
    Setting {
        key: String,
        wanted: String,
        got: String,
    },
    /// The docker backend's own failures (daemon, image, container, network).
    #[cfg(feature = "docker")]
    #[error(transparent)]
    Docker(#[from] super::docker::DockerError),
    #[error(
        "the docker backend is not built into this goneaway: its `docker` cargo feature is off; \
         turn it on (`goneaway = {{ …, features = [\"docker\"] }}`, or drop \
         `default-features = false`), or use backend = \"process\""
    )]
    DockerDisabled,
    #[error("{0}")]
    Other(String),
    #[error("cannot {action} the server at {addr}: it is {state}")]
    State {
        action: &'static str,
        addr: String,
        state: &'static str,
    },
    #[error("initializing a datadir with {command} failed ({status}){log_tail}")]
    Init {
        command: String,
        status: String,
        log_tail: String,
    },
    #[error("journal of settings changed on {server} at {path}: {message}")]
    Journal {
        server: String,
        path: String,
        message: String,
    },
}

impl ServerError {
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        ServerError::Io {
            what: what.into(),
            source,
        }
    }
}
