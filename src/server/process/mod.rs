//! Process backend: a local `mariadbd`/`mysqld` in a private temp dir.
//!
//! Starting a server has to be cheap (suites and tests start many), so the slow part,
//! initializing a datadir (`mariadb-install-db`, 1-2 s), is done once per server version
//! into a cache and copied per server (tens of ms). Spawn to ready is then ~0.2 s.
//!
//! The harness owns the server completely and must leave nothing behind, even when it is
//! SIGKILLed. Three independent guards make sure of that:
//! - the server gets `PR_SET_PDEATHSIG(SIGKILL)`, spawned from one long-lived thread
//!   (PDEATHSIG fires when the *spawning thread* exits, so a tokio blocking-pool thread,
//!   which retires after 10 s idle, would kill the server mid-run);
//! - a watchdog shell per server, in its own session, holds the read end of a pipe whose
//!   write end only the harness holds; when the harness dies the pipe hits EOF and the
//!   watchdog kills the server and removes its temp dir;
//! - at start, temp dirs of harness processes that no longer exist are swept.
//!
//! The server runs in its own process group so a terminal Ctrl-C reaches only the
//! harness, which then heals faults and cleans up in order.

mod bench;
mod binary;
mod clone;
mod launch;
mod reaper;
mod replica;
mod template;

pub use crate::server::shared::sweep_stale_dirs;
pub use bench::{SpawnTimes, SpawnTrial, measure_spawn};
pub use binary::find_binary;
pub(crate) use reaper::spawn_on_spawner;
pub use replica::{
    REPL_USER, REPLICATION_MANAGED, ReplicatedServer, ReplicationState, replication_state,
};

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::Mutex;

use self::binary::probe;
use self::launch::{Launch, Running, create_users};
use self::reaper::Scratch;
use self::template::{copy_template, ensure_template};
use super::shared::{blocking, password};
use super::{Action, BackendKind, ConnectInfo, Server, ServerError, ServerSpec};

/// The database the application user owns.
pub const DATABASE: &str = "goneaway";
/// The user the pool under test connects as (ALL on `goneaway.*`).
pub const APP_USER: &str = "goneaway";
/// The user the harness connects as for KILL / SET GLOBAL (ALL on `*.*`, over TCP).
pub const ADMIN_USER: &str = "goneaway_admin";

/// How long a spawned server may take to answer before we give up.
const READY_BOUND: Duration = Duration::from_secs(30);
/// How long an orderly shutdown may take before it becomes a SIGKILL.
const SHUTDOWN_BOUND: Duration = Duration::from_secs(30);

/// A `mariadbd`/`mysqld` the harness spawned in a private temp dir.
pub struct ProcessServer {
    version: String,
    launch: Launch,
    root_password: String,
    app: ConnectInfo,
    admin: ConnectInfo,
    /// `None` while the server is down (after Crash or Shutdown).
    run: Mutex<Option<Running>>,
    scratch: Scratch,
}

// Passwords stay out of logs.
impl fmt::Debug for ProcessServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessServer")
            .field("version", &self.version)
            .field("port", &self.launch.port)
            .field("dir", &self.scratch.path)
            .finish()
    }
}

impl ProcessServer {
    /// Start a fresh server with the spec's settings, ready for the app and admin users.
    pub async fn start(spec: &ServerSpec) -> Result<ProcessServer, ServerError> {
        Self::start_with(&spec.settings, None).await
    }

    /// Start with these settings. A replica (`replica_of`) creates no users of its own:
    /// the primary's arrive with replication, so it answers to the primary's credentials
    /// on its own port, as a server behind a VIP does.
    async fn start_with(
        settings: &BTreeMap<String, String>,
        replica_of: Option<&ProcessServer>,
    ) -> Result<ProcessServer, ServerError> {
        let bin = probe(find_binary()?).await?;
        let template = {
            let bin = bin.clone();
            blocking(move || ensure_template(&bin)).await?
        };
        let scratch = blocking(Scratch::new).await?;
        let mut launch = Launch::new(&bin, &scratch.path, settings)?;
        copy_template(template, launch.datadir()).await?;
        let run = launch.start_retrying(None, true).await?;
        if let Some(primary) = replica_of {
            let on_port = |c: &ConnectInfo| ConnectInfo {
                port: launch.port,
                ..c.clone()
            };
            return Ok(ProcessServer {
                version: bin.version,
                root_password: primary.root_password.clone(),
                app: on_port(&primary.app),
                admin: on_port(&primary.admin),
                launch,
                run: Mutex::new(Some(run)),
                scratch,
            });
        }

        let root_password = password();
        let admin = ConnectInfo {
            host: "127.0.0.1".into(),
            port: launch.port,
            user: ADMIN_USER.into(),
            password: password(),
            database: DATABASE.into(),
        };
        let app = ConnectInfo {
            user: APP_USER.into(),
            password: password(),
            ..admin.clone()
        };
        create_users(&launch.socket(), &root_password, &admin, &app).await?;
        Ok(ProcessServer {
            version: bin.version,
            launch,
            root_password,
            app,
            admin,
            run: Mutex::new(Some(run)),
            scratch,
        })
    }

    /// The server's private temp dir (datadir, socket, logs). Gone after drop.
    pub fn dir(&self) -> &Path {
        &self.scratch.path
    }

    /// The TCP port, the same across Crash/Shutdown and Start.
    pub fn port(&self) -> u16 {
        self.launch.port
    }

    /// The server's pid, or `None` while it is down.
    pub async fn pid(&self) -> Option<u32> {
        let mut run = self.run.lock().await;
        refresh(&mut run);
        run.as_ref().map(Running::pid)
    }

    fn state_error(&self, action: Action, state: &'static str) -> ServerError {
        ServerError::State {
            action: action.name(),
            addr: format!("127.0.0.1:{}", self.launch.port),
            state,
        }
    }
}

/// Forget a server that exited on its own (so it counts as down).
fn refresh(run: &mut Option<Running>) {
    if let Some(r) = run.as_mut()
        && !matches!(r.try_wait(), Ok(None))
    {
        *run = None;
    }
}

#[async_trait]
impl Server for ProcessServer {
    fn backend(&self) -> BackendKind {
        BackendKind::Process
    }

    fn version(&self) -> String {
        self.version.clone()
    }

    fn app(&self) -> ConnectInfo {
        self.app.clone()
    }

    fn admin(&self) -> ConnectInfo {
        self.admin.clone()
    }

    fn app_socket(&self) -> Option<std::path::PathBuf> {
        Some(self.launch.socket())
    }

    async fn act(&self, action: Action) -> Result<(), ServerError> {
        let mut run = self.run.lock().await;
        refresh(&mut run);
        match action {
            Action::Crash => {
                let Some(mut r) = run.take() else {
                    return Err(self.state_error(action, "down"));
                };
                r.kill_now();
                Ok(())
            }
            Action::Shutdown => {
                let Some(mut r) = run.take() else {
                    return Err(self.state_error(action, "down"));
                };
                r.signal(libc::SIGTERM, "SIGTERM")?;
                if r.paused {
                    // A stopped process only acts on SIGTERM once it runs again.
                    r.signal(libc::SIGCONT, "SIGCONT")?;
                    r.paused = false;
                }
                if r.wait_exit(SHUTDOWN_BOUND).await?.is_none() {
                    tracing::warn!(
                        pid = r.pid(),
                        "server ignored SIGTERM for {SHUTDOWN_BOUND:?}; killing it"
                    );
                    r.kill_now();
                }
                Ok(())
            }
            Action::Start => {
                if run.is_some() {
                    return Err(self.state_error(action, "already running"));
                }
                let mut launch = self.launch.clone();
                *run = Some(
                    launch
                        .start_retrying(Some(&self.root_password), false)
                        .await?,
                );
                Ok(())
            }
            Action::Pause => match run.as_mut() {
                None => Err(self.state_error(action, "down")),
                Some(r) if r.paused => Err(self.state_error(action, "already paused")),
                Some(r) => {
                    r.signal(libc::SIGSTOP, "SIGSTOP")?;
                    r.paused = true;
                    wait_stopped(r.pid()).await;
                    Ok(())
                }
            },
            Action::Resume => match run.as_mut() {
                None => Err(self.state_error(action, "down")),
                Some(r) if !r.paused => Err(self.state_error(action, "not paused")),
                Some(r) => {
                    r.signal(libc::SIGCONT, "SIGCONT")?;
                    r.paused = false;
                    Ok(())
                }
            },
            Action::Disconnect | Action::Reconnect => Err(ServerError::Unsupported {
                backend: BackendKind::Process,
                action: action.name(),
            }),
        }
    }
}

impl Drop for ProcessServer {
    fn drop(&mut self) {
        // Server first (SIGCONT if paused, SIGKILL, reap), then its dir, then the
        // watchdog: all synchronous, so this works with or without a runtime.
        if let Some(mut r) = self.run.get_mut().take() {
            r.kill_now();
        }
    }
}

/// SIGSTOP is delivered asynchronously; return once the kernel shows the process stopped,
/// so a query sent right after Pause really meets a frozen server. Bounded.
async fn wait_stopped(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // "pid (comm) S ...": the state follows the last ')'.
        let state = stat
            .rsplit(')')
            .next()
            .and_then(|s| s.trim().chars().next());
        if matches!(state, Some('T') | Some('t') | None) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
