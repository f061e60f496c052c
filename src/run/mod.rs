//! Run: one suite, top to bottom. Start the server, build (or take) the pool, play the
//! workload and the schedule into one history, then check it and report. Nothing here
//! decides a verdict; it only makes the history happen and hands it on.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::check;
use crate::client::{ClientKind, ClientSpec};
use crate::error::Error;
use crate::fault::{FaultCx, HarnessSessions, NetPath};
use crate::history::{Ending, FinalRead, PoolSample, Recorder, Session, StatusSample};
use crate::lint;
use crate::nemesis::Nemesis;
use crate::pool::{Pool, PoolSpec, Transport};
use crate::proxy::ProxyServer;
use crate::proxy::client::Client;
use crate::report::{Context, Report};
use crate::schedule;
use crate::server::{self, Action, ConnectInfo, Server, admin_connect, admin_exec};
use crate::suite::ProxySpec;
use crate::suite::Suite;
use crate::workload::{self, Gate, IdSpace};

mod observe;
pub use observe::{Observer, Step};

/// Builds the pool under test once the server is up and its address is known.
pub type PoolFactory =
    Box<dyn FnOnce(ConnectInfo) -> BoxFuture<'static, Result<Arc<dyn Pool>, String>> + Send>;

/// How to run a suite.
pub struct RunOptions {
    /// Overrides the suite's seed; `None` uses the suite's, or a fresh one.
    pub seed: Option<u64>,
    /// Cancel to stop early (Ctrl-C): faults heal, the report is marked unknown.
    pub cancel: CancellationToken,
    /// `None`: build a sqlx pool from the suite's `[pool]`.
    pub pool: Option<PoolFactory>,
    /// Told each step of the run as it happens (progress displays).
    pub observer: Option<Observer>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            seed: None,
            cancel: CancellationToken::new(),
            pool: None,
            observer: None,
        }
    }
}

impl RunOptions {
    /// Test a pool the user builds, the way their application builds it.
    pub fn with_pool<F, Fut, P, E>(mut self, factory: F) -> Self
    where
        F: FnOnce(ConnectInfo) -> Fut + Send + 'static,
        Fut: Future<Output = Result<P, E>> + Send + 'static,
        P: Pool,
        E: std::fmt::Display,
    {
        self.pool = Some(Box::new(move |info| {
            Box::pin(async move {
                factory(info)
                    .await
                    .map(|p| Arc::new(p) as Arc<dyn Pool>)
                    .map_err(|e| e.to_string())
            })
        }));
        self
    }
}

impl Suite {
    /// Run with the pool the suite describes.
    pub async fn run(&self) -> Result<Report, Error> {
        run(self, RunOptions::default()).await
    }

    /// Run against a pool the user builds from the server's connection details.
    pub async fn run_with_pool<F, Fut, P, E>(&self, factory: F) -> Result<Report, Error>
    where
        F: FnOnce(ConnectInfo) -> Fut + Send + 'static,
        Fut: Future<Output = Result<P, E>> + Send + 'static,
        P: Pool,
        E: std::fmt::Display,
    {
        run(self, RunOptions::default().with_pool(factory)).await
    }
}

/// How long past the workload a run may take (setup, heals, the final read) before the
/// harness gives up on it: every run is bounded.
const SLACK: Duration = Duration::from_secs(120);

pub async fn run(suite: &Suite, opts: RunOptions) -> Result<Report, Error> {
    let seed = opts.seed.or(suite.seed).unwrap_or_else(rand::random);
    let started_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let setup_start = Instant::now();
    let observer = opts.observer.clone();
    observe::tell(&observer, Step::StartingServer);
    tracing::debug!(suite = %suite.name, backend = %suite.server.backend, seed, "starting the server");
    let server: Arc<dyn Server> = Arc::from(server::start(&suite.server).await?);
    tracing::debug!(
        suite = %suite.name,
        version = %server.version(),
        address = %format!("{}:{}", server.app().host, server.app().port),
        "server ready"
    );
    prepare_schema(server.as_ref()).await?;
    // The writes table must be on the replica too before anything can fail over to it.
    server.sync_replica().await?;
    // With a proxy, the pool's traffic goes through it; the harness's own admin
    // connections (faults, the final read) never do.
    let net = match &suite.proxy {
        Some(spec) => Some(Net::start(spec, &server.app(), &suite.name).await?),
        None => None,
    };
    let app = match &net {
        Some(n) => server.app().via(&n.host, n.port),
        None => server.app(),
    };

    // Faults that begin before the pool is built are applied now, so the pool is created
    // while the server is unreachable; they start the run's clock. Without one the clock
    // starts after the pool is built, as always.
    let gate = Gate::new();
    let harness_sessions = HarnessSessions::default();
    let fault_cx = FaultCx {
        server: server.clone(),
        app_user: app.user.clone(),
        gate: gate.clone(),
        net: net.as_ref().map(|n| n.path.clone()),
        harness_sessions: harness_sessions.clone(),
    };
    let (early_plan, plan): (Vec<_>, Vec<_>) = schedule::plan(&suite.faults, seed)
        .into_iter()
        .partition(|p| p.before_pool);
    let early_recorder = (!early_plan.is_empty()).then(Recorder::new);
    let mut early = Vec::new();
    if let Some(recorder) = &early_recorder {
        let nemesis = Nemesis {
            cx: fault_cx.clone(),
            recorder: recorder.clone(),
            observer: observer.clone(),
        };
        for p in early_plan {
            early.push(nemesis.begin(p).await);
        }
    }

    // A client in another process (an adapter) speaks for itself: its settings are read
    // back from the live pool, and the keys it never read are reported.
    let mut adapter_lints = Vec::new();
    let mut adapter_client = None;
    // An in-process client describes itself in its own words, read back from it.
    let mut described = None;
    let mut adapter_words = None;
    let socket = match suite.transport {
        Transport::Tcp => None,
        Transport::Socket => Some(server.app_socket().ok_or_else(|| {
            Error::Harness(format!(
                "[pool] transport = \"socket\": the {} backend has no unix socket for the application",
                server.backend()
            ))
        })?),
    };
    let (pool, configured): (Arc<dyn Pool>, Option<PoolSpec>) = match (opts.pool, &suite.client) {
        (Some(_), _) if socket.is_some() => {
            return Err(Error::Harness(
                "[pool] transport = \"socket\" is for the pool goneaway builds; your pool factory is handed a TCP address (ConnectInfo)".into(),
            ));
        }
        (Some(factory), _) => (factory(app.clone()).await.map_err(Error::Pool)?, None),
        (
            None,
            Some(ClientSpec {
                kind: ClientKind::MysqlAsync(words),
                ..
            }),
        ) => {
            let started = crate::pool::mysql_async::start(words, &app)?;
            described = Some(format!(
                "{} (mysql_async {}, built by goneaway, read back from the live pool)",
                started.settings,
                crate::pool::mysql_async::VERSION
            ));
            (started.pool, None)
        }
        (None, Some(client)) => {
            let pool = crate::client::AdapterPool::start(client, &app, suite.pool.as_ref()).await?;
            adapter_lints.extend(lint::ignored(&pool.client, &pool.ignored, pool.settings()));
            adapter_client = Some(pool.client.clone());
            adapter_words = pool.words.clone();
            (Arc::new(pool), None)
        }
        (None, None) => {
            let spec = suite
                .pool
                .clone()
                .unwrap_or_else(|| PoolSpec::sqlx(None, None, None, None, None, None));
            let options = match &socket {
                Some(path) => app.options().socket(path),
                None => app.options(),
            };
            let pool = crate::pool::sqlx::build(&spec, options).map_err(Error::Pool)?;
            (Arc::new(pool), Some(spec))
        }
    };
    // Lint what the pool really is; a user's pool speaks for itself.
    let actual = pool.settings();
    match &actual {
        Some(a) => tracing::debug!(suite = %suite.name, "pool settings read back: {a}"),
        None => tracing::debug!(suite = %suite.name, "the pool's settings are not readable"),
    }
    let pool_spec = configured.clone().or(actual.clone());
    let mut lints = adapter_lints;
    if let Some(p) = &pool_spec {
        lints.extend(lint::lint(p, &suite.server, &suite.workload, &suite.faults));
    }
    let pool_desc = match described {
        Some(d) => d,
        None => match (&configured, &actual) {
            (Some(c), _) if socket.is_some() => {
                format!(
                    "{c} (sqlx {}, built by goneaway, over the unix socket)",
                    crate::pool::sqlx::VERSION
                )
            }
            (Some(c), _) => format!(
                "{c} (sqlx {}, built by goneaway)",
                crate::pool::sqlx::VERSION
            ),
            (None, Some(a)) if adapter_client.is_some() => format!(
                "{} ({}, settings read back from the live pool)",
                adapter_words.unwrap_or_else(|| a.to_string()),
                adapter_client.as_deref().unwrap_or_default()
            ),
            (None, Some(a)) => format!("{a} (your pool, settings read back from it)"),
            (None, None) => match &adapter_client {
                Some(c) => format!("{c} (settings not readable)"),
                None => "your pool (settings not readable)".to_string(),
            },
        },
    };
    let setup = setup_start.elapsed();

    let recorder = early_recorder.unwrap_or_default();
    let ids = IdSpace {
        run: (seed % 9_000) as i64 + 1,
        table: server.writes_table().into(),
    };
    let baseline = {
        let s = pool.stats();
        recorder.sample(s.size, s.idle)
    };
    let until = CancellationToken::new();
    let deadline_cancel = opts.cancel.child_token();
    let nemesis = Nemesis {
        cx: fault_cx,
        recorder: recorder.clone(),
        observer: observer.clone(),
    };
    let sampler = {
        let (pool, recorder, until) = (pool.clone(), recorder.clone(), until.clone());
        let deadline_cancel = deadline_cancel.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tokio::select! {
                    _ = until.cancelled() => return,
                    _ = tick.tick() => {
                        // A broken adapter cannot say what its client did: stop the run.
                        if pool.broken().is_some() {
                            deadline_cancel.cancel();
                        }
                        let s = pool.stats();
                        recorder.sample(s.size, s.idle);
                    }
                }
            }
        })
    };
    let sessions = tokio::spawn(sample_sessions(
        server.clone(),
        app.user.clone(),
        recorder.clone(),
        harness_sessions,
        until.clone(),
    ));
    let bound = suite.workload.duration + SLACK;
    let watchdog = {
        let cancel = deadline_cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(bound).await;
            cancel.cancel();
        })
    };
    let mut workload_end = Duration::ZERO;
    observe::tell(
        &observer,
        Step::Running {
            expected: suite.workload.duration,
        },
    );
    let (leaked, ()) = tokio::join!(
        async {
            let leaked = workload::run(
                &suite.workload,
                pool.clone(),
                recorder.clone(),
                gate.clone(),
                ids.clone(),
                seed,
                deadline_cancel.clone(),
            )
            .await;
            workload_end = recorder.now();
            until.cancel();
            observe::tell(&observer, Step::Checking);
            leaked
        },
        nemesis.run(plan, early, deadline_cancel.clone(), until.clone()),
    );
    sampler.abort();
    sessions.abort();
    if let Some(why) = pool.broken() {
        drop(leaked);
        drop(nemesis);
        if let Some(net) = net {
            net.close().await;
        }
        return Err(Error::Pool(why));
    }
    let interrupted = if opts.cancel.is_cancelled() {
        Some("interrupted (Ctrl-C or the caller cancelled the run)".to_string())
    } else if deadline_cancel.is_cancelled() {
        Some(format!(
            "the run exceeded its bound of {}",
            humantime::format_duration(bound)
        ))
    } else {
        None
    };
    watchdog.abort();

    let settled = if interrupted.is_none() {
        Some(settle(pool.as_ref(), &recorder, leaked.0.len() as u32).await)
    } else {
        None
    };
    tracing::debug!(suite = %suite.name, "workload over at {workload_end:?}; pool settled at {settled:?}");
    drop(leaked);
    pool.close().await;
    let (final_read, old_primary_read) = match (&interrupted, server.promoted()) {
        (Some(_), _) => (None, None),
        (None, None) => (Some(final_read(server.as_ref(), ids).await), None),
        // After a failover the writes are looked for on the new primary; the old one is
        // read too (started again if the failover stopped it), for what only it has.
        (None, Some(new)) => {
            let on_new = final_read(new.as_ref(), ids.clone()).await;
            if server.supports(Action::Start) {
                // "already running" (it was made read-only, not stopped) is fine.
                let _ = server.act(Action::Start).await;
            }
            let on_old = final_read(server.as_ref(), ids).await;
            (Some(on_new), Some(on_old))
        }
    };
    if let Some(FinalRead::Rows(rows)) = &final_read {
        tracing::debug!(suite = %suite.name, "read {} row(s) back for the durability check", rows.len());
    }
    let history = recorder.freeze(Ending {
        workload_end,
        settled,
        baseline: Some(baseline),
        final_read,
        old_primary_read,
        interrupted,
        workers: suite.workload.workers,
        leak_every: suite.workload.leak_every,
    });
    let server_version = server.version();
    drop(nemesis);
    if let Some(net) = net {
        net.close().await;
    }
    drop(server);

    let checks = check::check(&history, &suite.expect);
    let judgement = check::judge(&history, &suite.expect, &checks);
    let mut reproduce = format!(
        "goneaway run {} --seed {seed}",
        suite
            .origin
            .strip_prefix("builtin:")
            .unwrap_or(&suite.origin)
    );
    if suite.server.backend != suite.declared_backend {
        reproduce.push_str(&format!(" --backend {}", suite.server.backend));
    }
    let cx = Context {
        suite: suite.name.clone(),
        description: suite.description.clone(),
        expect: &suite.expect,
        backend: suite.server.backend.to_string(),
        reproduce,
        seed,
        server_version,
        pool: pool_desc,
        started_at,
        setup,
        lint: lints,
        server_settings: suite.server.settings.clone(),
    };
    Ok(Report::build(cx, &history, &checks, judgement))
}

/// The proxy a run routes the pool through: goneaway's embedded one, or a real Toxiproxy.
struct Net {
    embedded: Option<ProxyServer>,
    path: NetPath,
    host: String,
    port: u16,
}

impl Net {
    async fn start(spec: &ProxySpec, server: &ConnectInfo, suite: &str) -> Result<Net, Error> {
        let (embedded, api) = match &spec.url {
            Some(url) => (None, url.clone()),
            None => {
                let p = ProxyServer::start("127.0.0.1:0".parse().expect("an address"))
                    .await
                    .map_err(|e| Error::Harness(format!("cannot start the embedded proxy: {e}")))?;
                let api = p.api_url();
                (Some(p), api)
            }
        };
        let client = Client::new(&api).map_err(|e| Error::Harness(format!("proxy: {e}")))?;
        let name = format!("goneaway-{suite}-{}", std::process::id());
        let upstream = format!("{}:{}", server.host, server.port);
        let info = client
            .create_proxy(&name, "127.0.0.1:0", &upstream)
            .await
            .map_err(|e| Error::Harness(format!("cannot create proxy `{name}` at {api}: {e}")))?;
        tracing::debug!(proxy = %name, listen = %info.listen, upstream = %upstream, "proxy created");
        let addr: std::net::SocketAddr = info.listen.parse().map_err(|_| {
            Error::Harness(format!(
                "proxy `{name}` listens on `{}`, not an address",
                info.listen
            ))
        })?;
        Ok(Net {
            embedded,
            path: NetPath {
                client,
                proxy: name,
            },
            host: addr.ip().to_string(),
            port: addr.port(),
        })
    }

    /// Remove our proxy (a real Toxiproxy outlives the run) and stop the embedded one.
    async fn close(self) {
        if self.embedded.is_none()
            && let Err(e) = self.path.client.delete_proxy(&self.path.proxy).await
        {
            tracing::warn!("could not remove proxy `{}`: {e}", self.path.proxy);
        }
        if let Some(p) = self.embedded {
            p.shutdown().await;
        }
    }
}

async fn prepare_schema(server: &dyn Server) -> Result<(), Error> {
    let app = server.app();
    let table = format!("`{}`.{}", app.database, server.writes_table());
    admin_exec(
        &server.admin(),
        &format!("CREATE TABLE IF NOT EXISTS {table} (id BIGINT PRIMARY KEY, worker INT NOT NULL) ENGINE=InnoDB"),
    )
    .await?;
    Ok(())
}

/// Wait (briefly) until the pool has taken back everything the workload returned: sqlx
/// may still be pinging a released connection in the background.
async fn settle(pool: &dyn Pool, recorder: &Recorder, leaked: u32) -> PoolSample {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        let s = pool.stats();
        let in_use = s.size.saturating_sub(s.idle);
        if in_use <= leaked || tokio::time::Instant::now() >= deadline {
            return recorder.sample(s.size, s.idle);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Read back this run's rows (for the durability check) and remove them. Retries for a
/// while: the last fault may have just restarted the server.
async fn final_read(server: &dyn Server, ids: IdSpace) -> FinalRead {
    let admin = server.admin();
    let table = format!("`{}`.{}", server.app().database, server.writes_table());
    let (lo, hi) = ids.range();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut last = String::new();
    while tokio::time::Instant::now() < deadline {
        match admin_connect(&admin).await {
            Ok(mut conn) => {
                let sql = format!("SELECT id FROM {table} WHERE id >= ? AND id < ?");
                match sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
                    .bind(lo)
                    .bind(hi)
                    .fetch_all(&mut conn)
                    .await
                {
                    Ok(rows) => {
                        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                            "DELETE FROM {table} WHERE id >= ? AND id < ?"
                        )))
                        .bind(lo)
                        .bind(hi)
                        .execute(&mut conn)
                        .await;
                        return FinalRead::Rows(rows.into_iter().collect());
                    }
                    Err(e) => last = e.to_string(),
                }
            }
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    FinalRead::Failed(format!(
        "could not read the writes table back within 30s: {last}"
    ))
}

/// How often the server's sessions are listed.
const SESSION_PERIOD: Duration = Duration::from_millis(200);

/// List the app user's sessions on the server every [`SESSION_PERIOD`], through the
/// harness's own admin connection (never the proxy), into the history: the server's side
/// of what the pool did, which is how the checkers see connections closed behind the
/// pool's back. Bounded in every step; while the server is down or frozen it records
/// nothing and tries again.
async fn sample_sessions(
    server: Arc<dyn Server>,
    user: String,
    recorder: Recorder,
    own: HarnessSessions,
    until: CancellationToken,
) {
    const STEP: Duration = Duration::from_secs(1);
    let admin = server.admin();
    let mut conn: Option<sqlx::mysql::MySqlConnection> = None;
    // MariaDB lists idle time in milliseconds; MySQL only in seconds.
    let mut millis = true;
    let mut tick = tokio::time::interval(SESSION_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = until.cancelled() => return,
            _ = tick.tick() => {}
        }
        if conn.is_none() {
            conn = match tokio::time::timeout(STEP, admin_connect(&admin)).await {
                Ok(Ok(mut c)) => {
                    let id: Option<u64> = sqlx::query_scalar("SELECT CONNECTION_ID()")
                        .fetch_one(&mut c)
                        .await
                        .ok();
                    if let Some(id) = id {
                        own.insert(id as i64);
                    }
                    Some(c)
                }
                _ => None,
            };
        }
        let Some(c) = conn.as_mut() else { continue };
        let time = if millis {
            "CAST(TIME_MS AS UNSIGNED)"
        } else {
            "TIME * 1000"
        };
        let sql = format!(
            "SELECT ID, USER, COMMAND, {time} FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID()"
        );
        let rows = tokio::time::timeout(
            STEP,
            sqlx::query_as::<_, (i64, Option<String>, Option<String>, u64)>(sqlx::AssertSqlSafe(
                sql,
            ))
            .fetch_all(&mut *c),
        )
        .await;
        match rows {
            Ok(Ok(rows)) => {
                let total = rows.len() as u32 + 1;
                let sessions: Vec<Session> = rows
                    .into_iter()
                    .filter(|(id, u, _, _)| {
                        u.as_deref() == Some(user.as_str()) && !own.contains(*id)
                    })
                    .map(|(id, _, command, ms)| Session {
                        id,
                        sleeping: command.as_deref() == Some("Sleep"),
                        idle_ms: ms,
                    })
                    .collect();
                let harness = u64::from(total) - sessions.len() as u64;
                recorder.sessions(sessions, total);
                // Right after the list, on the same connection: the counters then describe
                // (nearly) the same moment, so the harness's share can be taken off.
                match tokio::time::timeout(STEP, server_status(c, harness)).await {
                    Ok(Ok(sample)) => recorder.status(sample),
                    Ok(Err(_)) | Err(_) => conn = None,
                }
            }
            Ok(Err(e)) => {
                if millis && e.to_string().contains("TIME_MS") {
                    millis = false;
                } else {
                    conn = None;
                }
            }
            Err(_) => conn = None,
        }
    }
}

/// The server's connection counters (`SHOW GLOBAL STATUS`); `harness` is how many of the
/// open connections are the harness's own.
async fn server_status(
    conn: &mut sqlx::mysql::MySqlConnection,
    harness: u64,
) -> Result<StatusSample, sqlx::Error> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SHOW GLOBAL STATUS WHERE Variable_name IN ('Threads_connected', 'Connections', 'Aborted_clients', 'Aborted_connects', 'Max_used_connections')",
    )
    .fetch_all(conn)
    .await?;
    let get = |name: &str| {
        rows.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0)
    };
    Ok(StatusSample {
        at: Duration::ZERO,
        threads_connected: get("Threads_connected"),
        connections: get("Connections"),
        aborted_clients: get("Aborted_clients"),
        aborted_connects: get("Aborted_connects"),
        max_used_connections: get("Max_used_connections"),
        harness,
    })
}
