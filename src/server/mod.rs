//! Server: a MySQL-compatible server the harness owns (or borrows), and what can be done
//! to it.
//!
//! Backends differ in how a server is started and what can happen to it; they share one
//! small trait so faults are written once. SQL-level faults (KILL, SET GLOBAL) go through
//! [`Server::admin`] and work on every backend; process-level ones are [`Action`]s a
//! backend may or may not support.

pub mod docker;
pub mod external;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// Which kind of server a suite runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    /// A local `mariadbd`/`mysqld` in a private temp dir (the default).
    #[default]
    Process,
    /// A container via testcontainers.
    Docker,
    /// A server the user owns, given by URL; only SQL-level faults.
    External,
}

impl BackendKind {
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Process => "process",
            BackendKind::Docker => "docker",
            BackendKind::External => "external",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for BackendKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "process" => Ok(BackendKind::Process),
            "docker" => Ok(BackendKind::Docker),
            "external" => Ok(BackendKind::External),
            _ => Err(format!(
                "unknown backend `{s}`; expected process, docker or external"
            )),
        }
    }
}

/// What to start: the checked `[server]` part of a suite.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServerSpec {
    pub backend: BackendKind,
    /// Server options as `mysqld --key=value` would take them, values already rendered
    /// (durations in whole seconds). Passed on the command line (process, docker) or with
    /// `SET GLOBAL` (external, restored afterwards).
    pub settings: BTreeMap<String, String>,
    /// For `external`: the URL of a user with privileges to KILL and SET GLOBAL.
    pub url: Option<String>,
    /// For `docker`: the image to run.
    pub image: Option<String>,
}

impl ServerSpec {
    /// The server's `wait_timeout`, or MySQL's default of 8 h.
    pub fn wait_timeout(&self) -> Duration {
        self.seconds("wait_timeout")
            .unwrap_or(Duration::from_secs(28_800))
    }

    /// The server's `max_connections`, or MariaDB's default of 151.
    pub fn max_connections(&self) -> u32 {
        self.settings
            .get("max_connections")
            .and_then(|v| v.parse().ok())
            .unwrap_or(151)
    }

    fn seconds(&self, key: &str) -> Option<Duration> {
        self.settings
            .get(key)
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_secs)
    }
}

/// How to reach a server as one user.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectInfo {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub database: String,
}

impl ConnectInfo {
    /// `mysql://user:password@host:port/database`.
    pub fn url(&self) -> String {
        format!(
            "mysql://{}:{}@{}:{}/{}",
            self.user, self.password, self.host, self.port, self.database
        )
    }

    /// The same user and database through another address (a proxy in front).
    pub fn via(&self, host: &str, port: u16) -> ConnectInfo {
        ConnectInfo {
            host: host.to_string(),
            port,
            ..self.clone()
        }
    }

    pub fn options(&self) -> sqlx::mysql::MySqlConnectOptions {
        sqlx::mysql::MySqlConnectOptions::new()
            .host(&self.host)
            .port(self.port)
            .username(&self.user)
            .password(&self.password)
            .database(&self.database)
    }
}

// Passwords stay out of logs and reports.
impl fmt::Debug for ConnectInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "mysql://{}:***@{}:{}/{}",
            self.user, self.host, self.port, self.database
        )
    }
}

/// Something that can happen to a server process as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// SIGKILL: no shutdown, connections die with a reset.
    Crash,
    /// Orderly shutdown (SIGTERM / `SHUTDOWN`): clients may see 1053 first.
    Shutdown,
    /// Start again after Crash or Shutdown, same address, and wait until ready.
    Start,
    /// Freeze the server (SIGSTOP / cgroup freezer): sockets stay open, nothing answers.
    Pause,
    /// Undo Pause.
    Resume,
    /// Cut the network between harness and server at the kernel level (docker).
    Disconnect,
    /// Undo Disconnect.
    Reconnect,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Crash => "crash",
            Action::Shutdown => "shutdown",
            Action::Start => "start",
            Action::Pause => "pause",
            Action::Resume => "resume",
            Action::Disconnect => "disconnect",
            Action::Reconnect => "reconnect",
        }
    }
}

#[derive(Debug, thiserror::Error)]
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
        "cannot reach the docker daemon at {host} ({detail}); start it or use --backend process"
    )]
    DockerUnavailable { host: String, detail: String },
    #[error("docker image {image} is not on this machine; {hint}")]
    ImageMissing { image: String, hint: String },
    #[error("cannot publish the server on {addr}: the port is taken by another process ({detail})")]
    PortConflict { addr: String, detail: String },
    #[error("docker {what} failed: {message}")]
    Docker { what: String, message: String },
    #[error("{0}")]
    Other(String),
}

impl ServerError {
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        ServerError::Io {
            what: what.into(),
            source,
        }
    }
}

/// A running server. Dropping it stops the server and removes everything it left on
/// disk (for external servers: restores the settings the harness changed).
#[async_trait]
pub trait Server: Send + Sync + fmt::Debug {
    fn backend(&self) -> BackendKind;
    /// e.g. `10.11.19-MariaDB-0+deb12u1`.
    fn version(&self) -> String;
    /// How the application (the pool under test) connects.
    fn app(&self) -> ConnectInfo;
    /// How the harness connects for admin SQL (KILL, SET GLOBAL, the final read).
    fn admin(&self) -> ConnectInfo;
    fn supports(&self, action: Action) -> bool;
    /// Do `action`; `Start` returns once the server answers again.
    async fn act(&self, action: Action) -> Result<(), ServerError>;
}

/// Start (or attach to) the server a spec describes.
pub async fn start(spec: &ServerSpec) -> Result<Box<dyn Server>, ServerError> {
    match spec.backend {
        BackendKind::Process => Err(ServerError::Unsupported {
            backend: BackendKind::Process,
            action: "start yet (the process backend is being built)",
        }),
        BackendKind::External => Ok(Box::new(external::ExternalServer::attach(spec).await?)),
        BackendKind::Docker => Ok(Box::new(docker::DockerServer::start(spec).await?)),
    }
}

/// Run one admin statement on a fresh connection. A fresh connection per statement keeps
/// faults independent of each other: a crash cannot poison an admin pool.
pub async fn admin_exec(admin: &ConnectInfo, sql: &str) -> Result<(), ServerError> {
    use sqlx::Connection;
    let mut conn = admin_connect(admin).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(&mut conn)
        .await
        .map_err(|e| ServerError::Sql {
            sql: sql.to_string(),
            target: format!("{admin:?}"),
            message: e.to_string(),
        })?;
    let _ = conn.close().await;
    Ok(())
}

/// Connect as admin, bounded in time so an unreachable or frozen server cannot hang us.
pub async fn admin_connect(
    admin: &ConnectInfo,
) -> Result<sqlx::mysql::MySqlConnection, ServerError> {
    use sqlx::ConnectOptions;
    let options = admin.options();
    match tokio::time::timeout(Duration::from_secs(10), options.connect()).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(ServerError::Connect {
            target: format!("{admin:?}"),
            message: e.to_string(),
        }),
        Err(_) => Err(ServerError::Connect {
            target: format!("{admin:?}"),
            message: "no answer within 10s".to_string(),
        }),
    }
}
