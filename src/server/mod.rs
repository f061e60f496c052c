//! Server: a MySQL-compatible server the harness owns (or borrows), and what can be done
//! to it.
//!
//! Backends differ in how a server is started and what can happen to it; they share one
//! small trait so faults are written once. SQL-level faults (KILL, SET GLOBAL) go through
//! [`Server::admin`] and work on every backend; process-level ones are [`Action`]s a
//! backend may or may not support.

pub mod docker;
pub mod external;
pub mod process;

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
        "the server runs with {key} = {got}, not {wanted} as the suite says \
         (servers clamp out-of-range values silently; MariaDB's max_connections is at least 10)"
    )]
    Setting {
        key: String,
        wanted: String,
        got: String,
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

/// Start (or attach to) the server a spec describes, and check it took every setting.
pub async fn start(spec: &ServerSpec) -> Result<Box<dyn Server>, ServerError> {
    let server = start_backend(spec).await?;
    verify_settings(server.as_ref(), &spec.settings).await?;
    Ok(server)
}

async fn start_backend(spec: &ServerSpec) -> Result<Box<dyn Server>, ServerError> {
    match spec.backend {
        BackendKind::Process => Ok(Box::new(process::ProcessServer::start(spec).await?)),
        BackendKind::External => Ok(Box::new(external::ExternalServer::attach(spec).await?)),
        BackendKind::Docker => {
            collect_docker_garbage().await;
            Ok(Box::new(docker::DockerServer::start(spec).await?))
        }
    }
}

/// Once per process, before the first container: remove what killed harnesses left
/// behind (their owner pid is gone), so a `kill -9` costs one run, not a leak.
async fn collect_docker_garbage() {
    static DONE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    DONE.get_or_init(|| async {
        match docker::gc().await {
            Ok(r) if !(r.containers.is_empty() && r.networks.is_empty()) => tracing::warn!(
                "removed leftovers of earlier runs: containers {:?}, networks {:?}",
                r.containers,
                r.networks
            ),
            Ok(_) => {}
            // Starting the container will say what is wrong with the daemon.
            Err(e) => tracing::debug!("docker gc before the run: {e}"),
        }
    })
    .await;
}

/// Run a future to completion from synchronous code, such as `Drop`, which may run on a
/// runtime thread (where blocking on that runtime deadlocks) or on none: a thread with a
/// runtime of its own works in both. `None` if that runtime could not start or the
/// future panicked.
pub fn block_on_own_thread<T: Send + 'static>(
    f: impl Future<Output = T> + Send + 'static,
) -> Option<T> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        Some(rt.block_on(f))
    })
    .join()
    .ok()
    .flatten()
}

/// A value as an SQL literal: numbers as they are, anything else quoted.
pub fn sql_literal(value: &str) -> String {
    if value.parse::<f64>().is_ok() {
        value.to_string()
    } else {
        format!("'{}'", value.replace('\'', "''"))
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

/// A server variable's global value as text (`CAST` keeps every type readable).
pub async fn global(admin: &ConnectInfo, variable: &str) -> Result<String, ServerError> {
    let mut conn = admin_connect(admin).await?;
    global_on(&mut conn, admin, variable).await
}

async fn global_on(
    conn: &mut sqlx::mysql::MySqlConnection,
    admin: &ConnectInfo,
    variable: &str,
) -> Result<String, ServerError> {
    let sql = format!("SELECT CAST(@@GLOBAL.{variable} AS CHAR)");
    let value: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone()))
        .fetch_one(conn)
        .await
        .map_err(|e| ServerError::Sql {
            sql,
            target: format!("{admin:?}"),
            message: e.to_string(),
        })?;
    Ok(value.unwrap_or_default())
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

/// Read every setting back from the running server. Servers clamp out-of-range values
/// without a word (MariaDB raises `max_connections = 4` to 10); a suite run against a
/// server configured otherwise than it says would test the wrong thing.
pub async fn verify_settings(
    server: &dyn Server,
    settings: &BTreeMap<String, String>,
) -> Result<(), ServerError> {
    if settings.is_empty() {
        return Ok(());
    }
    let admin = server.admin();
    let mut conn = admin_connect(&admin).await?;
    for (key, want) in settings {
        let sql = format!("SELECT CAST(@@GLOBAL.{key} AS CHAR)");
        // Options that are not global variables (startup-only flags) cannot be read back.
        let Ok(got) = sqlx::query_scalar::<_, Option<String>>(sqlx::AssertSqlSafe(sql))
            .fetch_one(&mut conn)
            .await
        else {
            continue;
        };
        let got = got.unwrap_or_default();
        if !same_setting(want, &got) {
            return Err(ServerError::Setting {
                key: key.clone(),
                wanted: want.clone(),
                got,
            });
        }
    }
    Ok(())
}

/// Compare a setting as written with the server's value: numbers (with K/M/G suffixes)
/// numerically, ON/OFF as booleans, the rest without regard to case.
fn same_setting(want: &str, got: &str) -> bool {
    fn number(s: &str) -> Option<f64> {
        let s = s.trim();
        let (digits, mult) = match s.chars().last()?.to_ascii_uppercase() {
            'K' => (&s[..s.len() - 1], 1024.0),
            'M' => (&s[..s.len() - 1], 1024.0 * 1024.0),
            'G' => (&s[..s.len() - 1], 1024.0 * 1024.0 * 1024.0),
            _ => (s, 1.0),
        };
        digits.parse::<f64>().ok().map(|n| n * mult)
    }
    fn boolean(s: &str) -> Option<bool> {
        match s.to_ascii_uppercase().as_str() {
            "ON" | "TRUE" | "1" => Some(true),
            "OFF" | "FALSE" | "0" => Some(false),
            _ => None,
        }
    }
    match (number(want), number(got), boolean(want), boolean(got)) {
        (Some(a), Some(b), _, _) => (a - b).abs() < 1e-9,
        (_, _, Some(a), Some(b)) => a == b,
        _ => want.eq_ignore_ascii_case(got),
    }
}

#[cfg(test)]
mod tests {
    use super::same_setting;

    #[test]
    fn literals_are_quoted_unless_numbers() {
        assert_eq!(super::sql_literal("28800"), "28800");
        assert_eq!(super::sql_literal("0.5"), "0.5");
        assert_eq!(super::sql_literal("utf8mb4"), "'utf8mb4'");
        assert_eq!(super::sql_literal("it's"), "'it''s'");
    }

    #[test]
    fn settings_compare_as_the_server_prints_them() {
        assert!(same_setting("2", "2"));
        assert!(same_setting("16M", "16777216"));
        assert!(same_setting("ON", "1"));
        assert!(same_setting("utf8mb4", "UTF8MB4"));
        assert!(
            !same_setting("4", "10"),
            "a clamped value is not the value asked for"
        );
    }
}
