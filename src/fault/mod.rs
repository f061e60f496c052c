//! Fault: one thing that goes wrong, as data.
//!
//! [`Fault::apply`] does it and returns a [`Guard`] with what it saw of its own effect;
//! healing is `guard.heal(..).await`, and a guard dropped without healing (the run
//! failed, Ctrl-C) heals what must not outlive the run on its own. Playing faults in
//! time is the nemesis's job (`crate::nemesis`); this module knows nothing of schedules.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sqlx::Row;
use tokio_util::sync::CancellationToken;

use crate::history::{FaultKind, Observed, ToxicCounts};
use crate::proxy::client::{Client, ClientError, ToxicSpec};
use crate::proxy::toxic::Scope;
use crate::proxy::{Stream, ToxicKind};
use crate::server::{
    Action, BackendKind, Server, ServerError, admin_connect, admin_exec, block_on_own_thread,
    sql_literal,
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
    /// `SET GLOBAL wait_timeout`, in whole seconds. Only sessions opened afterwards get it.
    WaitTimeout { value: Duration },
    /// `SET GLOBAL max_connections`: the server's connection limit.
    MaxConnections { value: u32 },
    /// `SET GLOBAL variable = value` of any other variable, the old value put back on heal.
    SetGlobal { variable: String, value: String },
    /// `SET GLOBAL read_only = ON`: the server refuses writes from users without
    /// SUPER / READ ONLY ADMIN (the app user) until the old value is put back.
    ReadOnly,
    /// The old primary turns read-only (or is stopped), the replica is promoted, and the
    /// proxy (the VIP) sends new connections to it; open ones stay on the old primary
    /// unless `reset`. Permanent: nothing heals a failover.
    Failover { stop: bool, reset: bool },
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
        /// Every connection, only those opened while it lasts (a server that accepts
        /// TCP and never speaks: a black hole in the handshake), or only those already
        /// open.
        connections: Scope,
    },
}

impl Fault {
    /// Whether this fault acts on the proxy between pool and server.
    pub fn needs_proxy(&self) -> bool {
        matches!(
            self,
            Fault::Cut | Fault::Toxic { .. } | Fault::Failover { .. }
        )
    }

    pub fn kind(&self) -> FaultKind {
        match self {
            Fault::Idle => FaultKind::Idle,
            Fault::WaitTimeout { .. } => FaultKind::WaitTimeout,
            Fault::MaxConnections { .. } => FaultKind::MaxConnections,
            Fault::SetGlobal { .. } => FaultKind::SetGlobal,
            Fault::ReadOnly => FaultKind::ReadOnly,
            Fault::Failover { .. } => FaultKind::Failover,
            Fault::Kill { .. } => FaultKind::Kill,
            Fault::Crash => FaultKind::Crash,
            Fault::Restart => FaultKind::Restart,
            Fault::Pause => FaultKind::Pause,
            Fault::Disconnect => FaultKind::Disconnect,
            Fault::Cut => FaultKind::Cut,
            Fault::Toxic {
                kind: ToxicKind::Timeout { timeout: 0 },
                ..
            } => FaultKind::Blackhole,
            Fault::Toxic { kind, .. } => {
                FaultKind::of_toxic(kind.type_name()).expect("every toxic type is a fault kind")
            }
        }
    }

    /// A setting stays in force until the run ends unless it was given a duration.
    pub fn is_setting(&self) -> bool {
        matches!(
            self,
            Fault::WaitTimeout { .. }
                | Fault::MaxConnections { .. }
                | Fault::SetGlobal { .. }
                | Fault::ReadOnly
        )
    }

    /// Why this fault cannot run on a backend, if it cannot.
    pub fn unsupported_on(&self, backend: BackendKind) -> Option<&'static str> {
        // Which backend can do which server action is decided in one place.
        let (act, _) = self.action()?;
        backend.supports(act).reason()
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

    /// Do it. Returns the guard that heals it, with what was done and seen. `stop` ends
    /// a search for something to hit (the workload is over: too late to matter).
    pub async fn apply(&self, cx: &FaultCx, stop: &CancellationToken) -> Result<Guard, FaultError> {
        let guard = |heal, detail: String, observed| Guard {
            heal: Some(heal),
            cx: cx.clone(),
            applied: Applied {
                detail,
                observed,
                took_effect: None,
            },
        };
        match self {
            Fault::Idle => {
                cx.gate.close();
                Ok(guard(
                    Heal::Open,
                    "all workers idle".into(),
                    Observed::Nothing,
                ))
            }
            Fault::WaitTimeout { value } => {
                set_global(cx, "wait_timeout", value.as_secs().to_string()).await
            }
            Fault::MaxConnections { value } => {
                set_global(cx, "max_connections", value.to_string()).await
            }
            Fault::SetGlobal { variable, value } => set_global(cx, variable, value.clone()).await,
            // The same journaled path as every setting: an external server gets its old
            // value back even after kill -9 of the harness.
            Fault::ReadOnly => set_global(cx, "read_only", "ON".into()).await,
            Fault::Failover { stop, reset } => {
                let (observed, detail) = failover(cx, *stop, *reset).await?;
                Ok(guard(Heal::Nothing, detail, observed))
            }
            Fault::Kill { target } => {
                let (killed, at) = kill(cx, *target, stop).await?;
                let mut g = guard(
                    Heal::Nothing,
                    format!(
                        "KILL CONNECTION of {killed} {} pool sessions",
                        target.name()
                    ),
                    Observed::Killed {
                        sessions: killed as u64,
                    },
                );
                g.applied.took_effect = Some(at);
                Ok(g)
            }
            Fault::Crash | Fault::Restart | Fault::Pause | Fault::Disconnect => {
                let (act, heal) = self.action().expect("process faults have actions");
                cx.server.act(act).await?;
                Ok(guard(
                    Heal::Act(heal),
                    format!("server {}", act.name()),
                    Observed::Nothing,
                ))
            }
            Fault::Cut => {
                let net = cx.net()?;
                net.client.disable(&net.proxy).await.map_err(proxy_error)?;
                Ok(guard(
                    Heal::Enable,
                    format!("proxy `{}` disabled", net.proxy),
                    Observed::Nothing,
                ))
            }
            Fault::Toxic {
                kind,
                streams,
                toxicity,
                connections,
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
                        .with_toxicity(*toxicity)
                        .on_connections(*connections);
                    // Whatever was added before a failure still comes off on drop.
                    let applied = net.client.add_toxic(&net.proxy, spec).await;
                    if let Err(e) = applied {
                        drop(guard(Heal::Toxics(added), String::new(), Observed::Nothing));
                        return Err(proxy_error(e));
                    }
                    added.push(name);
                }
                let on: Vec<&str> = streams.iter().map(|s| s.as_str()).collect();
                let scope = match connections {
                    Scope::All => String::new(),
                    Scope::New => ", connections opened while it lasts only".into(),
                    Scope::Established => ", connections already open only".into(),
                };
                let detail = format!(
                    "{} toxic {} on {}, toxicity {}{scope}",
                    self.kind(),
                    attributes(kind),
                    on.join(" and "),
                    toxicity
                );
                Ok(guard(
                    Heal::Toxics(added),
                    detail,
                    Observed::Toxic { counts: None },
                ))
            }
        }
    }
}

/// `SET GLOBAL variable = value` on one admin connection, noting that connection's id:
/// every session opened afterwards has a larger one, which is how the checkers tell the
/// sessions a new `wait_timeout` applies to.
async fn set_global(cx: &FaultCx, variable: &str, value: String) -> Result<Guard, FaultError> {
    let admin = cx.server.admin();
    let mut conn = admin_connect(&admin).await?;
    let sql_error = |sql: &str, e: sqlx::Error| ServerError::Sql {
        sql: sql.to_string(),
        target: format!("{admin:?}"),
        message: e.to_string(),
    };
    // The held connection must outlive a wait_timeout this run lowers.
    let keep = "SET SESSION wait_timeout = 28800";
    sqlx::raw_sql(keep)
        .execute(&mut conn)
        .await
        .map_err(|e| sql_error(keep, e))?;
    let me: u64 = sqlx::query_scalar("SELECT CONNECTION_ID()")
        .fetch_one(&mut conn)
        .await
        .map_err(|e| sql_error("SELECT CONNECTION_ID()", e))?;
    // Journaled first on a server the run does not own, so even a kill -9 puts it back.
    let old = cx.server.set_global_on(&mut conn, variable, &value).await?;
    let restore = format!("SET GLOBAL {variable} = {}", sql_literal(&old));
    // The connection stays open until the heal: a lowered max_connections would refuse
    // the new one a heal needs (a non-SUPER admin on someone else's server gets no
    // reserved connection).
    cx.harness_sessions.insert(me as i64);
    Ok(Guard {
        heal: Some(Heal::Sql(restore, Some((me as i64, conn)))),
        cx: cx.clone(),
        applied: Applied {
            detail: format!("SET GLOBAL {variable} = {value} (was {old})"),
            observed: Observed::Setting {
                variable: variable.to_string(),
                old,
                new: value,
                first_session: me as i64 + 1,
            },
            took_effect: None,
        },
    })
}

/// Fail over: note the pool's sessions on the old primary, turn it read-only (or stop
/// it), promote the replica, and move the proxy's upstream to it.
async fn failover(cx: &FaultCx, stop: bool, reset: bool) -> Result<(Observed, String), FaultError> {
    let net = cx.net()?;
    let mut conn = admin_connect(&cx.server.admin()).await?;
    let stale: Vec<i64> = app_sessions(cx, &mut conn)
        .await?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let _ = sqlx::Connection::close(conn).await;
    let old = if stop {
        cx.server.act(Action::Shutdown).await?;
        "stopped"
    } else {
        cx.server.set_global("read_only", "ON").await?;
        "read-only"
    };
    let new = cx.server.promote_replica().await?;
    let upstream = format!("{}:{}", new.host, new.port);
    net.client
        .set_upstream(&net.proxy, &upstream, !reset)
        .await
        .map_err(proxy_error)?;
    let detail = format!(
        "old primary {old}, replica at {upstream} promoted, proxy `{}` moved to it; {} pool session(s) on the old primary {}",
        net.proxy,
        stale.len(),
        if reset {
            "closed by the move"
        } else {
            "left there"
        }
    );
    Ok((
        Observed::Failover {
            stale_sessions: stale,
            new_primary: upstream,
            reset,
        },
        detail,
    ))
}

/// What faults may touch: the server, the app user's name (to find its sessions), the
/// workload's gate (for idle gaps) and the proxy between pool and server, if any.
#[derive(Clone)]
pub struct FaultCx {
    pub server: Arc<dyn Server>,
    pub app_user: String,
    pub gate: Gate,
    pub net: Option<NetPath>,
    /// The harness's own sessions (the one listing the server's sessions, those held to
    /// heal a setting): on an external server they may share the app's user, and they
    /// are never a kill's target.
    pub harness_sessions: HarnessSessions,
}

/// Session ids the harness itself holds on the server.
#[derive(Clone, Debug, Default)]
pub struct HarnessSessions(Arc<std::sync::Mutex<std::collections::BTreeSet<i64>>>);

impl HarnessSessions {
    pub fn insert(&self, id: i64) {
        self.lock().insert(id);
    }
    pub fn remove(&self, id: i64) {
        self.lock().remove(&id);
    }
    pub fn contains(&self, id: i64) -> bool {
        self.lock().contains(&id)
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeSet<i64>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
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
    /// Run this statement, on the held admin connection if it is still alive.
    Sql(String, Option<(i64, sqlx::mysql::MySqlConnection)>),
    Act(Action),
    Enable,
    Toxics(Vec<String>),
}

/// What applying a fault did and saw.
#[derive(Debug, Clone)]
pub struct Applied {
    /// Human description with parameters.
    pub detail: String,
    pub observed: Observed,
    /// When it took effect, if not when it was asked (a kill that waited for a target).
    pub took_effect: Option<Instant>,
}

/// Heals a fault. Heal explicitly with [`Guard::heal`]; dropping an unhealed guard still
/// reopens the workload gate and undoes SQL settings and proxy changes (which could
/// outlive the run on an external server or a real Toxiproxy). A crashed or paused server
/// is not revived on drop: its backend tears it down right after.
pub struct Guard {
    heal: Option<Heal>,
    cx: FaultCx,
    applied: Applied,
}

impl Guard {
    pub fn applied(&self) -> &Applied {
        &self.applied
    }

    /// Heal. `healed` is called at the moment the fault stops acting, before anything can
    /// observe it healed (the gate reopens after it), so the heal time the history keeps
    /// is never later than the first request it lets through. Returns what the fault saw
    /// of its effect by the end, when it has more to say than at apply (a toxic's counts).
    pub async fn heal(mut self, healed: impl FnOnce()) -> Result<Option<Observed>, FaultError> {
        let Some(heal) = self.heal.take() else {
            return Ok(None);
        };
        match heal {
            Heal::Nothing => healed(),
            Heal::Open => {
                healed();
                self.cx.gate.open();
            }
            Heal::Sql(sql, held) => {
                let on_held = match held {
                    Some((id, mut conn)) => {
                        self.cx.harness_sessions.remove(id);
                        let done = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone()))
                            .execute(&mut conn)
                            .await
                            .is_ok();
                        let _ = sqlx::Connection::close(conn).await;
                        done
                    }
                    None => false,
                };
                // The held connection may have died (a restart, a kill): a fresh one then.
                if !on_held {
                    admin_exec(&self.cx.server.admin(), &sql).await?;
                }
                healed();
            }
            Heal::Act(action) => {
                self.cx.server.act(action).await?;
                healed();
            }
            Heal::Enable => {
                let net = self.cx.net()?;
                net.client.enable(&net.proxy).await.map_err(proxy_error)?;
                healed();
            }
            Heal::Toxics(names) => {
                let net = self.cx.net()?;
                // Read what each toxic did before it goes: its counts go with it.
                let mut counts: Option<ToxicCounts> = Some(ToxicCounts::default());
                for name in &names {
                    let c = net
                        .client
                        .toxic_counts(&net.proxy, name)
                        .await
                        .unwrap_or(None);
                    counts = counts.zip(c).map(|(a, b)| a + b);
                }
                for name in names {
                    net.client
                        .remove_toxic(&net.proxy, &name)
                        .await
                        .map_err(proxy_error)?;
                }
                healed();
                return Ok(Some(Observed::Toxic { counts }));
            }
        }
        Ok(None)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        match self.heal.take() {
            Some(Heal::Open) => self.cx.gate.open(),
            // Settings and proxy changes may outlive the run (an external server, a real
            // Toxiproxy): undo them now.
            Some(heal @ (Heal::Sql(..) | Heal::Enable | Heal::Toxics(_))) => {
                let guard = Guard {
                    heal: Some(heal),
                    cx: self.cx.clone(),
                    applied: self.applied.clone(),
                };
                if let Some(Err(e)) = block_on_own_thread(guard.heal(|| ())) {
                    tracing::warn!("could not heal a fault on the way out: {e}");
                }
            }
            _ => {}
        }
    }
}

/// The pool's sessions on the server, by id and command (`Sleep` when idle): the app
/// user's, without the harness's own (which may share that user on an external server).
async fn app_sessions(
    cx: &FaultCx,
    conn: &mut sqlx::MySqlConnection,
) -> Result<Vec<(i64, String)>, FaultError> {
    let sql = "SELECT ID, COMMAND FROM information_schema.PROCESSLIST WHERE USER = ? AND ID <> CONNECTION_ID()";
    let rows = sqlx::query(sql)
        .bind(&cx.app_user)
        .fetch_all(conn)
        .await
        .map_err(|e| ServerError::Sql {
            sql: sql.into(),
            target: format!("{:?}", cx.server.admin()),
            message: e.to_string(),
        })?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let id: i64 = r.try_get("ID").ok()?;
            let command: String = r.try_get("COMMAND").unwrap_or_default();
            (!cx.harness_sessions.contains(id)).then_some((id, command))
        })
        .collect())
}

/// KILL the app user's sessions matching `target`. A kill that finds nothing to hit
/// waits briefly for one (active sessions come and go), then says so: a fault that did
/// nothing must not let a suite pass.
async fn kill(
    cx: &FaultCx,
    target: KillTarget,
    stop: &CancellationToken,
) -> Result<(usize, Instant), FaultError> {
    let admin = cx.server.admin();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        let mut conn = admin_connect(&admin).await?;
        let ids: Vec<i64> = app_sessions(cx, &mut conn)
            .await?
            .into_iter()
            .filter(|(_, command)| match target {
                KillTarget::Idle => command == "Sleep",
                KillTarget::Active => command != "Sleep",
                KillTarget::All => true,
            })
            .map(|(id, _)| id)
            .collect();
        if !ids.is_empty() {
            let at = Instant::now();
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
            if killed > 0 {
                return Ok((killed, at));
            }
        }
        if stop.is_cancelled() {
            return Err(FaultError::NoEffect(format!(
                "no {} sessions of user `{}` to kill before the workload ended",
                target.name(),
                cx.app_user
            )));
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(FaultError::NoEffect(format!(
                "no {} sessions of user `{}` to kill within 3s",
                target.name(),
                cx.app_user
            )));
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            _ = stop.cancelled() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::history::FaultKind;

    #[test]
    fn every_toxic_type_is_a_fault_kind() {
        for t in crate::proxy::toxic::TOXIC_TYPES {
            assert!(
                FaultKind::of_toxic(t).is_some(),
                "{t} is missing from FaultKind"
            );
        }
    }
}
