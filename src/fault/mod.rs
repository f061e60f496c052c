//! Fault: one thing that goes wrong, as data.
//!
//! [`Fault::apply`] does it and returns a [`Guard`]; healing is `guard.heal().await`, and
//! a guard dropped without healing (the run failed, Ctrl-C) heals what must not outlive
//! the run on its own. The [`Nemesis`] plays a schedule of faults and records each one
//! in the history, in the same stream as the operations.

use std::sync::Arc;
use std::time::Duration;

use sqlx::Row;
use tokio_util::sync::CancellationToken;

use std::sync::atomic::{AtomicU64, Ordering};

use crate::history::{FaultId, Recorder};
use crate::proxy::client::{Client, ClientError, ToxicSpec};
use crate::proxy::{Stream, ToxicKind};
use crate::schedule::Planned;
use crate::server::{
    Action, BackendKind, Server, ServerError, admin_connect, admin_exec, block_on_own_thread,
    global, sql_literal,
};
use crate::workload::Gate;

/// Which of the pool's sessions a KILL hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillTarget {
    /// Sessions sitting in the pool (`Command = Sleep`).
    Idle,
    /// Sessions running a statement.
    Active,
    All,
}

impl KillTarget {
    fn name(self) -> &'static str {
        match self {
            KillTarget::Idle => "idle",
            KillTarget::Active => "active",
            KillTarget::All => "all",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Every worker stops issuing requests (the night before the outage); the server
    /// closes connections idle longer than `wait_timeout` meanwhile.
    Idle,
    /// `SET GLOBAL variable = value`, the old value put back on heal. Only sessions
    /// opened afterwards see a new `wait_timeout`.
    SetGlobal { variable: String, value: String },
    /// `KILL CONNECTION` of the pool's sessions, found through the processlist.
    Kill { target: KillTarget },
    /// SIGKILL; started again on heal.
    Crash,
    /// Orderly shutdown; started again on heal.
    Restart,
    /// Frozen (SIGSTOP); resumed on heal.
    Pause,
    /// The network between harness and server cut at the kernel level (docker): packets
    /// vanish, no reset, like a real partition; reconnected on heal.
    Disconnect,
    /// The proxy between pool and server stops: open connections are closed, new ones
    /// refused; enabled again on heal.
    Cut,
    /// A Toxiproxy toxic on the path between pool and server, on each stream listed;
    /// removed on heal. A `timeout` of 0 is the black hole.
    Toxic {
        kind: ToxicKind,
        streams: Vec<Stream>,
        toxicity: f32,
    },
}

impl Fault {
    /// The kinds a suite may name.
    pub const KINDS: [&'static str; 18] = [
        "idle",
        "wait_timeout",
        "set_global",
        "kill",
        "crash",
        "restart",
        "pause",
        "max_connections",
        "disconnect",
        "cut",
        "blackhole",
        "latency",
        "bandwidth",
        "slow_close",
        "timeout",
        "reset_peer",
        "slicer",
        "limit_data",
    ];

    /// Whether this fault acts on the proxy between pool and server.
    pub fn needs_proxy(&self) -> bool {
        matches!(self, Fault::Cut | Fault::Toxic { .. })
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Idle => "idle",
            Fault::SetGlobal { variable, .. } if variable == "wait_timeout" => "wait_timeout",
            Fault::SetGlobal { variable, .. } if variable == "max_connections" => "max_connections",
            Fault::SetGlobal { .. } => "set_global",
            Fault::Kill { .. } => "kill",
            Fault::Crash => "crash",
            Fault::Restart => "restart",
            Fault::Pause => "pause",
            Fault::Disconnect => "disconnect",
            Fault::Cut => "cut",
            Fault::Toxic {
                kind: ToxicKind::Timeout { timeout: 0 },
                ..
            } => "blackhole",
            Fault::Toxic { kind, .. } => kind.type_name(),
        }
    }

    /// Why this fault cannot run on a backend, if it cannot.
    pub fn unsupported_on(&self, backend: BackendKind) -> Option<&'static str> {
        match (self, backend) {
            (Fault::Crash | Fault::Restart | Fault::Pause, BackendKind::External) => Some(
                "an external server is not the harness's to crash, restart or pause; \
                 only SQL-level faults (idle, wait_timeout, set_global, kill, max_connections) work there",
            ),
            (Fault::Disconnect, BackendKind::Process | BackendKind::External) => Some(
                "a kernel-level network cut needs a server on a network of its own: use backend = \"docker\"",
            ),
            _ => None,
        }
    }

    fn action(&self) -> Option<(Action, Action)> {
        match self {
            Fault::Crash => Some((Action::Crash, Action::Start)),
            Fault::Restart => Some((Action::Shutdown, Action::Start)),
            Fault::Pause => Some((Action::Pause, Action::Resume)),
            Fault::Disconnect => Some((Action::Disconnect, Action::Reconnect)),
            _ => None,
        }
    }

    /// Do it. Returns the guard that heals it and a description of what was done.
    pub async fn apply(&self, cx: &FaultCx) -> Result<(Guard, String), FaultError> {
        let guard = |heal| Guard {
            heal: Some(heal),
            cx: cx.clone(),
        };
        match self {
            Fault::Idle => {
                cx.gate.close();
                Ok((guard(Heal::Open), "all workers idle".into()))
            }
            Fault::SetGlobal { variable, value } => {
                let admin = cx.server.admin();
                let old = global(&admin, variable).await?;
                admin_exec(&admin, &format!("SET GLOBAL {variable} = {value}")).await?;
                let restore = format!("SET GLOBAL {variable} = {}", sql_literal(&old));
                Ok((
                    guard(Heal::Sql(restore)),
                    format!("SET GLOBAL {variable} = {value} (was {old})"),
                ))
            }
            Fault::Kill { target } => {
                let killed = kill(cx, *target).await?;
                Ok((
                    guard(Heal::Nothing),
                    format!(
                        "KILL CONNECTION of {killed} {} pool sessions",
                        target.name()
                    ),
                ))
            }
            Fault::Crash | Fault::Restart | Fault::Pause | Fault::Disconnect => {
                let (act, heal) = self.action().expect("process faults have actions");
                cx.server.act(act).await?;
                Ok((guard(Heal::Act(heal)), format!("server {}", act.name())))
            }
            Fault::Cut => {
                let net = cx.net()?;
                net.client.disable(&net.proxy).await.map_err(proxy_error)?;
                Ok((
                    guard(Heal::Enable),
                    format!("proxy `{}` disabled", net.proxy),
                ))
            }
            Fault::Toxic {
                kind,
                streams,
                toxicity,
            } => {
                let net = cx.net()?;
                let mut added = Vec::new();
                for stream in streams {
                    static SEQ: AtomicU64 = AtomicU64::new(1);
                    let name = format!(
                        "goneaway-{}-{}-{}",
                        self.kind(),
                        stream.as_str(),
                        SEQ.fetch_add(1, Ordering::Relaxed)
                    );
                    let spec = ToxicSpec::new(*stream, kind.clone())
                        .named(&name)
                        .with_toxicity(*toxicity);
                    // Whatever was added before a failure still comes off on drop.
                    let applied = net.client.add_toxic(&net.proxy, spec).await;
                    if let Err(e) = applied {
                        drop(guard(Heal::Toxics(added)));
                        return Err(proxy_error(e));
                    }
                    added.push(name);
                }
                let on: Vec<&str> = streams.iter().map(|s| s.as_str()).collect();
                let detail = format!(
                    "{} toxic {} on {}",
                    self.kind(),
                    attributes(kind),
                    on.join(" and ")
                );
                Ok((guard(Heal::Toxics(added)), detail))
            }
        }
    }
}

/// What faults may touch: the server, the app user's name (to find its sessions), the
/// workload's gate (for idle gaps) and the proxy between pool and server, if any.
#[derive(Clone)]
pub struct FaultCx {
    pub server: Arc<dyn Server>,
    pub app_user: String,
    pub gate: Gate,
    pub net: Option<NetPath>,
}

/// The proxy the pool's traffic goes through, driven only through its HTTP API.
#[derive(Clone)]
pub struct NetPath {
    pub client: Client,
    pub proxy: String,
}

impl FaultCx {
    fn net(&self) -> Result<&NetPath, FaultError> {
        self.net.as_ref().ok_or_else(|| {
            FaultError::Proxy("this run has no proxy between pool and server".into())
        })
    }
}

fn proxy_error(e: ClientError) -> FaultError {
    FaultError::Proxy(e.to_string())
}

/// Toxiproxy's attributes of a toxic, as `name=value` pairs.
fn attributes(kind: &ToxicKind) -> String {
    match kind.attributes_json() {
        serde_json::Value::Object(map) => map
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    #[error(transparent)]
    Server(#[from] ServerError),
    #[error("{0}")]
    NoEffect(String),
    #[error("proxy: {0}")]
    Proxy(String),
}

enum Heal {
    Nothing,
    Open,
    Sql(String),
    Act(Action),
    Enable,
    Toxics(Vec<String>),
}

/// Heals a fault. Heal explicitly with [`Guard::heal`]; dropping an unhealed guard still
/// reopens the workload gate and undoes SQL settings and proxy changes (which could
/// outlive the run on an external server or a real Toxiproxy). A crashed or paused server is not revived on drop: its backend
/// tears it down right after.
pub struct Guard {
    heal: Option<Heal>,
    cx: FaultCx,
}

impl Guard {
    pub async fn heal(mut self) -> Result<(), FaultError> {
        match self.heal.take() {
            None | Some(Heal::Nothing) => Ok(()),
            Some(Heal::Open) => {
                self.cx.gate.open();
                Ok(())
            }
            Some(Heal::Sql(sql)) => Ok(admin_exec(&self.cx.server.admin(), &sql).await?),
            Some(Heal::Act(action)) => Ok(self.cx.server.act(action).await?),
            Some(Heal::Enable) => {
                let net = self.cx.net()?;
                net.client.enable(&net.proxy).await.map_err(proxy_error)
            }
            Some(Heal::Toxics(names)) => {
                let net = self.cx.net()?;
                for name in names {
                    net.client
                        .remove_toxic(&net.proxy, &name)
                        .await
                        .map_err(proxy_error)?;
                }
                Ok(())
            }
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        match self.heal.take() {
            Some(Heal::Open) => self.cx.gate.open(),
            // Settings and proxy changes may outlive the run (an external server, a real
            // Toxiproxy): undo them now.
            Some(heal @ (Heal::Sql(_) | Heal::Enable | Heal::Toxics(_))) => {
                let guard = Guard {
                    heal: Some(heal),
                    cx: self.cx.clone(),
                };
                if let Some(Err(e)) = block_on_own_thread(guard.heal()) {
                    tracing::warn!("could not heal a fault on the way out: {e}");
                }
            }
            _ => {}
        }
    }
}

/// KILL the app user's sessions matching `target`. A kill that finds nothing to hit
/// waits briefly for one (active sessions come and go), then says so: a fault that did
/// nothing must not let a suite pass.
async fn kill(cx: &FaultCx, target: KillTarget) -> Result<usize, FaultError> {
    let admin = cx.server.admin();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        let mut conn = admin_connect(&admin).await?;
        let sql = "SELECT ID, COMMAND FROM information_schema.PROCESSLIST WHERE USER = ? AND ID <> CONNECTION_ID()";
        let rows = sqlx::query(sql)
            .bind(&cx.app_user)
            .fetch_all(&mut conn)
            .await
            .map_err(|e| ServerError::Sql {
                sql: sql.into(),
                target: format!("{admin:?}"),
                message: e.to_string(),
            })?;
        let ids: Vec<i64> = rows
            .iter()
            .filter(|r| {
                let command: String = r.try_get("COMMAND").unwrap_or_default();
                match target {
                    KillTarget::Idle => command == "Sleep",
                    KillTarget::Active => command != "Sleep",
                    KillTarget::All => true,
                }
            })
            .filter_map(|r| r.try_get::<i64, _>("ID").ok())
            .collect();
        if !ids.is_empty() {
            let mut killed = 0;
            for id in ids {
                // The session may have ended between the read and the kill; that is fine.
                let kill = format!("KILL CONNECTION {id}");
                if sqlx::raw_sql(sqlx::AssertSqlSafe(kill))
                    .execute(&mut conn)
                    .await
                    .is_ok()
                {
                    killed += 1;
                }
            }
            return Ok(killed);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(FaultError::NoEffect(format!(
                "no {} sessions of user `{}` to kill within 3s",
                target.name(),
                cx.app_user
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Plays a schedule: applies each fault at its time, heals it after its duration, and
/// records both in the history.
pub struct Nemesis {
    pub cx: FaultCx,
    pub recorder: Recorder,
}

impl Nemesis {
    /// Run every planned fault; returns when all have healed, or at cancellation (then
    /// the guards still held heal on drop). Faults without a duration that stay until the
    /// end (a lowered setting) heal when `until` fires.
    pub async fn run(
        &self,
        plan: Vec<Planned>,
        cancel: CancellationToken,
        until: CancellationToken,
    ) {
        let start = self.recorder.started();
        let tasks = plan.into_iter().map(|p| {
            let cancel = cancel.clone();
            let until = until.clone();
            async move {
                let at = tokio::time::Instant::from_std(start + p.at);
                tokio::select! {
                    _ = tokio::time::sleep_until(at) => {}
                    _ = cancel.cancelled() => return,
                }
                self.play(&p, cancel, until).await;
            }
        });
        futures::future::join_all(tasks).await;
    }

    async fn play(&self, p: &Planned, cancel: CancellationToken, until: CancellationToken) {
        let id = self.recorder.fault_started(&p.name, p.fault.kind(), "");
        let (guard, detail) = match p.fault.apply(&self.cx).await {
            Ok(applied) => applied,
            Err(e) => {
                self.recorder.fault_error(id, format!("apply failed: {e}"));
                return;
            }
        };
        self.recorder.fault_detail(id, detail);
        match p.duration {
            Some(d) => {
                tokio::select! {
                    _ = tokio::time::sleep(d) => {}
                    _ = cancel.cancelled() => return self.heal_late(id, guard).await,
                }
            }
            None if matches!(p.fault, Fault::SetGlobal { .. }) => {
                tokio::select! {
                    _ = until.cancelled() => {}
                    _ = cancel.cancelled() => return self.heal_late(id, guard).await,
                }
            }
            None => {}
        }
        self.heal(id, guard).await;
    }

    async fn heal(&self, id: FaultId, guard: Guard) {
        match guard.heal().await {
            Ok(()) => self.recorder.fault_healed(id),
            Err(e) => self.recorder.fault_error(id, format!("heal failed: {e}")),
        }
    }

    /// Cancelled mid-fault: heal now, but the record keeps no heal time (the run was cut).
    async fn heal_late(&self, id: FaultId, guard: Guard) {
        if let Err(e) = guard.heal().await {
            self.recorder
                .fault_error(id, format!("heal after interruption failed: {e}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Fault;

    #[test]
    fn every_toxic_type_is_a_fault_kind() {
        for t in crate::proxy::toxic::TOXIC_TYPES {
            assert!(
                Fault::KINDS.contains(&t),
                "{t} is missing from Fault::KINDS"
            );
        }
    }
}
