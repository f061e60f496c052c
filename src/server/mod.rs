//! Server: a MySQL-compatible server the harness owns (or borrows), and what can be done
//! to it.
//!
//! Backends differ in how a server is started and what can happen to it; they share one
//! small trait so faults are written once. SQL-level faults (KILL, SET GLOBAL) go through
//! [`Server::admin`] and work on every backend; process-level ones are [`Action`]s a
//! backend may or may not support.

mod admin;
mod capability;
#[cfg(feature = "docker")]
pub mod docker;
mod error;
pub mod external;
mod journal;
pub mod process;
mod shared;
mod watchdog;

pub use admin::{admin_connect, admin_exec, global, sql_literal, verify_settings};
pub use capability::{Capability, capabilities};
pub use error::ServerError;
pub use journal::{Journal, Replayed, replay_orphans};
pub use shared::{Owner, block_on_own_thread, cache_root};

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
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
    /// A replica beside the server (`[server] replica = true`): process backend only.
    pub replica: Option<ReplicaSpec>,
}

/// How the replica follows its primary.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReplicaSpec {
    /// MariaDB's `MASTER_DELAY`: the replica applies each event this long after the
    /// primary wrote it (whole seconds), so a failover loses the last writes for sure.
    pub delay: Duration,
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
    pub const ALL: [Action; 7] = [
        Action::Crash,
        Action::Shutdown,
        Action::Start,
        Action::Pause,
        Action::Resume,
        Action::Disconnect,
        Action::Reconnect,
    ];

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

/// The writes table of a server the harness throws away after the run.
pub const WRITES_TABLE: &str = "goneaway_writes";

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
    /// The server's unix socket, when the application may connect through it (the
    /// process backend: the harness owns the server and its socket).
    fn app_socket(&self) -> Option<std::path::PathBuf> {
        None
    }
    /// Whether [`Server::act`] can do `action` here ([`BackendKind::supports`] says why not).
    fn supports(&self, action: Action) -> bool {
        self.backend().supports(action).is_supported()
    }
    /// Do `action`; `Start` returns once the server answers again.
    async fn act(&self, action: Action) -> Result<(), ServerError>;

    /// The replica of a server started with one (`[server] replica = true`): a server of
    /// its own, reachable with the same credentials on another port.
    fn replica(&self) -> Option<Arc<dyn Server>> {
        None
    }

    /// Promote the replica (stop replication, forget the primary, writable) and make it
    /// the server the final read reads. Returns its address.
    async fn promote_replica(&self) -> Result<ConnectInfo, ServerError> {
        Err(ServerError::Other(
            "this server has no replica to promote; add `replica = true` to [server]".into(),
        ))
    }

    /// The promoted replica, once [`Server::promote_replica`] ran.
    fn promoted(&self) -> Option<Arc<dyn Server>> {
        None
    }

    /// Wait until the replica has applied everything the primary has (after the
    /// harness's own setup writes); nothing to do without a replica.
    async fn sync_replica(&self) -> Result<(), ServerError> {
        Ok(())
    }

    /// Where changes to a server that outlives the run are written down first (the
    /// external backend); `None` for a server the harness throws away.
    fn journal(&self) -> Option<&Journal> {
        None
    }

    /// The table the workload writes and the final read reads back.
    fn writes_table(&self) -> String {
        WRITES_TABLE.to_string()
    }

    /// `SET GLOBAL name = value`, the old value journaled first (when the server has a
    /// journal) so it is put back even if the harness is killed. Returns the old value.
    async fn set_global(&self, name: &str, value: &str) -> Result<String, ServerError> {
        let mut conn = admin_connect(&self.admin()).await?;
        self.set_global_on(&mut conn, name, value).await
    }

    /// [`Server::set_global`] on an admin connection the caller holds (a fault keeps it
    /// to heal through, since a lowered limit may refuse a new one).
    async fn set_global_on(
        &self,
        conn: &mut sqlx::mysql::MySqlConnection,
        name: &str,
        value: &str,
    ) -> Result<String, ServerError> {
        let admin = self.admin();
        let old = admin::global_on(conn, &admin, name).await?;
        if let Some(journal) = self.journal() {
            journal.record(format!("SET GLOBAL {name} = {}", sql_literal(&old)))?;
        }
        admin::exec_on(conn, &admin, &format!("SET GLOBAL {name} = {value}")).await?;
        Ok(old)
    }
}

/// Start (or attach to) the server a spec describes, and check it took every setting.
pub async fn start(spec: &ServerSpec) -> Result<Box<dyn Server>, ServerError> {
    let server = start_backend(spec).await?;
    verify_settings(server.as_ref(), &spec.settings).await?;
    Ok(server)
}

async fn start_backend(spec: &ServerSpec) -> Result<Box<dyn Server>, ServerError> {
    if let Some(replica) = &spec.replica {
        if spec.backend != BackendKind::Process {
            return Err(ServerError::Other(format!(
                "a replica (`[server] replica = true`) can only be started by the process backend so far, not the {} backend; use backend = \"process\"",
                spec.backend
            )));
        }
        return Ok(Box::new(
            process::ReplicatedServer::start(spec, replica.delay).await?,
        ));
    }
    match spec.backend {
        BackendKind::Process => Ok(Box::new(process::ProcessServer::start(spec).await?)),
        BackendKind::External => Ok(Box::new(external::ExternalServer::attach(spec).await?)),
        #[cfg(feature = "docker")]
        BackendKind::Docker => {
            collect_docker_garbage().await;
            Ok(Box::new(docker::DockerServer::start(spec).await?))
        }
        #[cfg(not(feature = "docker"))]
        BackendKind::Docker => Err(ServerError::DockerDisabled),
    }
}

#[cfg(feature = "docker")]
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
