//! One adapter process, driven over its stdin/stdout (protocol version 1).
//!
//! Requests carry ids, so one process serves every worker at once. Three threads own the
//! pipes (a writer fed by a channel, a reader that routes replies, a stderr tail), so no
//! async task ever blocks on a pipe. The harness keeps every bound: a `stats` poll every
//! 100 ms doubles as a liveness check, and an adapter that dies, hangs, prints garbage or
//! answers an id never asked marks the pool broken; the run then stops with a harness
//! error naming the adapter and its last stderr lines, never a verdict.

use std::collections::{HashMap, VecDeque};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value, json};
use tokio::sync::oneshot;

use super::classify::{WireError, op_error};
use super::{ClientSpec, PROTOCOL};
use crate::history::{ErrorClass, OpError};
use crate::pool::{Conn, Pool, PoolSpec, PoolStats, Statement, Vocabulary};
use crate::server::ConnectInfo;

/// How long an adapter may take to start and build its pool (Python imports included).
const HELLO_TIMEOUT: Duration = Duration::from_secs(30);
/// `stats` and `settings` touch no network: an adapter that cannot answer them this fast
/// is hung, whatever its client is doing.
const LIVENESS: Duration = Duration::from_secs(3);
const POLL: Duration = Duration::from_millis(100);
/// Lines of the adapter's stderr kept for error messages.
const STDERR_LINES: usize = 12;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    #[error(
        "no Python at {} for the SQLAlchemy adapter: run `bash ci/setup.sh` (it makes that venv with the pinned versions) or set GONEAWAY_PYTHON",
        path.display()
    )]
    NoPython { path: std::path::PathBuf },
    #[error("failed {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("failed to start adapter `{adapter}`: {source}")]
    Spawn {
        adapter: String,
        #[source]
        source: io::Error,
    },
    #[error("adapter `{adapter}` failed its handshake: {reason}{}", tail(stderr))]
    Handshake {
        adapter: String,
        reason: String,
        stderr: Vec<String>,
    },
    #[error("adapter `{adapter}` {reason}{}", tail(stderr))]
    Broken {
        adapter: String,
        reason: String,
        stderr: Vec<String>,
    },
    #[error("{client} runs in goneaway's own process, not through an adapter")]
    InProcess { client: String },
    #[error(
        "no {what} for this client's adapter: install the Debian package `{package}` (`bash ci/setup.sh` installs it)"
    )]
    Missing { what: String, package: String },
    #[error("failed {what}: {output}")]
    Build { what: String, output: String },
    #[error("the pool {client} built ({built}) differs from the suite's [pool] ({described})")]
    Mismatch {
        client: String,
        built: String,
        described: String,
    },
}

fn tail(lines: &[String]) -> String {
    if lines.is_empty() {
        "; it wrote nothing on stderr".into()
    } else {
        let body: Vec<String> = lines.iter().map(|l| format!("  | {l}")).collect();
        format!("; its last stderr lines:\n{}", body.join("\n"))
    }
}

type Reply = Result<Map<String, Value>, WireError>;

enum Pending {
    Call(oneshot::Sender<Reply>),
    /// A checkout: if its caller gave up before the answer, the connection goes back.
    Acquire(oneshot::Sender<Reply>),
}

struct Inner {
    name: String,
    next_id: AtomicU64,
    pending: Mutex<HashMap<u64, Pending>>,
    out: Mutex<mpsc::Sender<String>>,
    stderr: Arc<Mutex<VecDeque<String>>>,
    /// The first reason the adapter can no longer be trusted.
    broken: Mutex<Option<String>>,
    /// Set when the harness itself ends the adapter: its exit is then not a failure.
    closing: AtomicBool,
    stats: Mutex<PoolStats>,
}

impl Inner {
    fn stderr(&self) -> Vec<String> {
        lock(&self.stderr).iter().cloned().collect()
    }

    fn fail(&self, reason: String) {
        if self.closing.load(Ordering::SeqCst) {
            return;
        }
        {
            let mut b = lock(&self.broken);
            if b.is_none() {
                tracing::debug!("adapter `{}` {reason}", self.name);
                *b = Some(reason.clone());
            }
        }
        // Wake every waiter: nothing more will come.
        let waiting: Vec<Pending> = lock(&self.pending).drain().map(|(_, p)| p).collect();
        for p in waiting {
            let (Pending::Call(tx) | Pending::Acquire(tx)) = p;
            let _ = tx.send(Err(broken_wire(&reason)));
        }
    }

    fn broken(&self) -> Option<String> {
        lock(&self.broken).clone()
    }

    fn send(&self, msg: Value) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let mut msg = msg;
        msg["id"] = json!(id);
        let _ = lock(&self.out).send(msg.to_string());
        id
    }

    fn request(&self, msg: Value, acquire: bool) -> (u64, oneshot::Receiver<Reply>) {
        let (tx, rx) = oneshot::channel();
        // Register before sending, so a fast answer always finds its waiter.
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        lock(&self.pending).insert(
            id,
            if acquire {
                Pending::Acquire(tx)
            } else {
                Pending::Call(tx)
            },
        );
        let mut msg = msg;
        msg["id"] = json!(id);
        if let Some(reason) = self.broken() {
            if let Some(Pending::Call(tx) | Pending::Acquire(tx)) = lock(&self.pending).remove(&id)
            {
                let _ = tx.send(Err(broken_wire(&reason)));
            }
        } else {
            let _ = lock(&self.out).send(msg.to_string());
        }
        (id, rx)
    }

    async fn call(&self, msg: Value, limit: Option<Duration>) -> Reply {
        let op = msg["op"].as_str().unwrap_or("?").to_string();
        let (id, rx) = self.request(msg, false);
        let answer = match limit {
            Some(limit) => match tokio::time::timeout(limit, rx).await {
                Ok(a) => a,
                Err(_) => {
                    lock(&self.pending).remove(&id);
                    let reason = format!(
                        "did not answer `{op}` within {}: it is hung",
                        humantime::format_duration(limit)
                    );
                    self.fail(reason.clone());
                    return Err(broken_wire(&reason));
                }
            },
            None => rx.await,
        };
        answer.unwrap_or_else(|_| Err(broken_wire("the adapter is gone")))
    }

    /// Route one line from the adapter's stdout.
    fn route(&self, line: &str) {
        let msg: Map<String, Value> = match serde_json::from_str(line) {
            Ok(Value::Object(m)) => m,
            _ => {
                return self.fail(format!(
                    "printed something that is not a protocol message: `{}`",
                    clip(line)
                ));
            }
        };
        let Some(id) = msg.get("id").and_then(Value::as_u64) else {
            return self.fail(format!("answered without an id: `{}`", clip(line)));
        };
        let reply: Reply = match msg.get("ok") {
            Some(Value::Bool(true)) => Ok(msg.clone()),
            Some(Value::Bool(false)) => match msg.get("error").cloned().map(serde_json::from_value)
            {
                Some(Ok(e)) => Err(e),
                _ => {
                    return self.fail(format!(
                        "sent an error without a readable `error`: `{}`",
                        clip(line)
                    ));
                }
            },
            _ => return self.fail(format!("answered without `ok`: `{}`", clip(line))),
        };
        let waiting = lock(&self.pending).remove(&id);
        match waiting {
            Some(Pending::Call(tx)) => {
                let _ = tx.send(reply);
            }
            Some(Pending::Acquire(tx)) => {
                if let Err(Ok(late)) = tx.send(reply) {
                    // The worker's op timeout gave up on this checkout: return it.
                    if let Some(conn) = late.get("conn").cloned() {
                        self.send(json!({"op": "release", "conn": conn}));
                    }
                }
            }
            // Asked and already given up on (a timed-out call, a release): fine.
            None if id < self.next_id.load(Ordering::SeqCst) => {}
            None => self.fail(format!("answered id {id}, which was never asked")),
        }
    }
}

fn clip(s: &str) -> String {
    let s = s.trim_end();
    if s.chars().count() > 200 {
        format!("{}…", s.chars().take(200).collect::<String>())
    } else {
        s.to_string()
    }
}

fn broken_wire(reason: &str) -> WireError {
    WireError {
        code: None,
        kind: "adapter".into(),
        message: format!("the adapter is broken: {reason}"),
        class: Some(ErrorClass::Other.name().into()),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A pool served by an adapter process: the client under test.
pub struct AdapterPool {
    inner: Arc<Inner>,
    child: Mutex<Option<Child>>,
    poller: tokio::task::JoinHandle<()>,
    settings: Option<PoolSpec>,
    /// Configuration keys the client never read (Flask-SQLAlchemy's old keys, …).
    pub ignored: Vec<String>,
    /// "sqlalchemy 2.1.9 on pymysql 1.2.4", as the adapter introduced itself.
    pub client: String,
    /// Every setting read back, in the library's own words, where that says more than
    /// the [`PoolSpec`] (the Go, Java and Node adapters; SQLAlchemy's pool words plus the
    /// `connect_args` timeouts read back from a live DBAPI connection).
    pub words: Option<String>,
}

impl AdapterPool {
    /// Start the adapter for `spec`, hand it the connection details and the pool the
    /// suite describes, and read back what the client really built.
    pub async fn start(
        spec: &ClientSpec,
        info: &ConnectInfo,
        pool: Option<&PoolSpec>,
    ) -> Result<AdapterPool, ClientError> {
        Self::launch(spec, info, pool, true).await
    }

    /// [`start`](Self::start) with no server behind `info` (`goneaway check`): the hello
    /// says so, and the adapter connects to nothing.
    pub(crate) async fn start_offline(
        spec: &ClientSpec,
        info: &ConnectInfo,
        pool: Option<&PoolSpec>,
    ) -> Result<AdapterPool, ClientError> {
        Self::launch(spec, info, pool, false).await
    }

    async fn launch(
        spec: &ClientSpec,
        info: &ConnectInfo,
        pool: Option<&PoolSpec>,
        server: bool,
    ) -> Result<AdapterPool, ClientError> {
        // A first run may compile the adapter (seconds): off the async workers.
        let argv = {
            let spec = spec.clone();
            tokio::task::spawn_blocking(move || super::command(&spec))
                .await
                .map_err(|e| ClientError::Io {
                    what: "preparing the adapter".into(),
                    source: io::Error::other(e.to_string()),
                })??
        };
        let name = match &spec.kind {
            super::ClientKind::Command(_) => argv.join(" "),
            _ => format!("{} ({})", argv.join(" "), spec.kind.mode()),
        };
        let (child, inner) = spawn(&argv, &name).await?;
        let mut this = AdapterPool {
            inner: inner.clone(),
            child: Mutex::new(Some(child)),
            poller: tokio::spawn(async {}),
            settings: None,
            ignored: vec![],
            client: String::new(),
            words: None,
        };
        let hello = json!({
            "op": "hello",
            "protocol": PROTOCOL,
            "mode": spec.kind.mode(),
            "driver": spec.driver,
            "host": info.host,
            "port": info.port,
            "user": info.user,
            "password": info.password,
            "database": info.database,
            "url": info.url(),
            "server": server,
            "pool": pool.map(pool_words),
            "config": spec.config,
        });
        let handshake = |reason: String| ClientError::Handshake {
            adapter: name.clone(),
            reason,
            stderr: inner.stderr(),
        };
        let reply = match inner.call(hello, Some(HELLO_TIMEOUT)).await {
            Ok(r) => r,
            Err(e) => {
                // Let the stderr thread catch up with a traceback before quoting it.
                tokio::time::sleep(Duration::from_millis(200)).await;
                // The adapter's own answer says more than its exit right after it.
                let mut reason = if e.kind == "adapter" {
                    inner.broken().unwrap_or(e.message)
                } else {
                    format!("{}: {}", e.kind, e.message)
                };
                if reason.contains("does not exist on target class com.zaxxer.hikari") {
                    reason.push_str(
                        " (HikariCP refuses a property name it has no setter for: this version does not have that setting; keepaliveTime, for one, arrived in HikariCP 4.0)",
                    );
                }
                if reason.contains("ModuleNotFoundError")
                    && !matches!(spec.kind, super::ClientKind::Command(_))
                {
                    reason.push_str(
                        " (run `bash ci/setup.sh` for the pinned packages, or point GONEAWAY_PYTHON at a Python that has them)",
                    );
                }
                return Err(handshake(reason));
            }
        };
        let protocol = reply.get("protocol").and_then(Value::as_u64);
        if protocol != Some(PROTOCOL as u64) {
            return Err(handshake(format!(
                "it speaks protocol {}, goneaway speaks {PROTOCOL}",
                protocol.map_or("(none)".into(), |p| p.to_string())
            )));
        }
        let text = |k: &str| {
            reply
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string()
        };
        this.client = format!(
            "{} {} on {}",
            text("client"),
            text("version"),
            text("driver")
        );
        let settings = inner
            .call(json!({"op": "settings"}), Some(LIVENESS))
            .await
            .map_err(|e| ClientError::Broken {
                adapter: name.clone(),
                reason: format!("could not report its settings: {}", e.message),
                stderr: inner.stderr(),
            })?;
        this.settings = read_settings(&settings).map_err(|reason| ClientError::Broken {
            adapter: name.clone(),
            reason,
            stderr: inner.stderr(),
        })?;
        this.words = settings
            .get("vocabulary")
            .and_then(Value::as_str)
            .filter(|v| super::words::VOCABULARIES.contains(v))
            .and_then(|_| settings.get("settings"))
            .and_then(Value::as_object)
            .map(super::words::line);
        if let (Some(spec), Some(args)) = (&this.settings, settings.get("connect_args")) {
            this.words = Some(format!("{spec} {}", connect_args_line(args)));
        }
        this.ignored = settings
            .get("ignored")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        if let (Some(described), Some(built)) = (pool, &this.settings)
            && described.effective() != built.effective()
        {
            return Err(ClientError::Mismatch {
                client: this.client.clone(),
                built: built.to_string(),
                described: described.to_string(),
            });
        }
        this.poll_stats().await;
        this.poller = tokio::spawn(poll(inner));
        Ok(this)
    }

    async fn poll_stats(&self) {
        refresh(&self.inner).await;
    }

    fn kill(&self) {
        self.inner.closing.store(true, Ordering::SeqCst);
        if let Some(mut child) = lock(&self.child).take() {
            // Its own process group: anything it started goes too.
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The suite's pool in its own words, numbers in seconds, as the adapter's keyword
/// arguments: SQLAlchemy's `pool_recycle = -1` means never.
fn pool_words(p: &PoolSpec) -> Value {
    let secs = |d: Option<Duration>| d.map_or(json!(-1), |d| json!(d.as_secs_f64()));
    match p.vocabulary {
        Vocabulary::Sqlalchemy => json!({
            "pool_size": p.min_connections,
            "max_overflow": p.max_connections - p.min_connections,
            "pool_timeout": p.acquire_timeout.as_secs_f64(),
            "pool_recycle": secs(p.max_lifetime),
            "pool_pre_ping": p.test_before_acquire,
        }),
        Vocabulary::Sqlx => json!({
            "max_connections": p.max_connections,
            "min_connections": p.min_connections,
            "acquire_timeout": p.acquire_timeout.as_secs_f64(),
            "idle_timeout": secs(p.idle_timeout),
            "max_lifetime": secs(p.max_lifetime),
            "test_before_acquire": p.test_before_acquire,
        }),
        // Runs in process, never through an adapter.
        Vocabulary::MysqlAsync => Value::Null,
        // Configured in [client.config] in their own words; a suite never gives them a
        // [pool] (see suite::client).
        Vocabulary::GoSql | Vocabulary::Hikari | Vocabulary::NodeMysql => Value::Null,
    }
}

/// The adapter's `settings` answer as a [`PoolSpec`]; `settings: null` is "not readable".
fn read_settings(reply: &Map<String, Value>) -> Result<Option<PoolSpec>, String> {
    let Some(s) = reply.get("settings").filter(|s| !s.is_null()) else {
        return Ok(None);
    };
    let num = |k: &str| -> Result<f64, String> {
        s.get(k)
            .and_then(Value::as_f64)
            .ok_or_else(|| format!("reported settings without a number `{k}`: {s}"))
    };
    let never = |k: &str| -> Result<Option<Duration>, String> {
        let v = num(k)?;
        Ok((v >= 0.0).then(|| Duration::from_secs_f64(v)))
    };
    let flag = |k: &str| -> Result<bool, String> {
        s.get(k)
            .and_then(Value::as_bool)
            .ok_or_else(|| format!("reported settings without a boolean `{k}`: {s}"))
    };
    match reply.get("vocabulary").and_then(Value::as_str) {
        Some("sqlalchemy") => Ok(Some(PoolSpec::sqlalchemy(
            Some(num("pool_size")? as u32),
            Some(num("max_overflow")?.max(0.0) as u32),
            Some(Some(Duration::from_secs_f64(num("pool_timeout")?))),
            Some(never("pool_recycle")?),
            Some(flag("pool_pre_ping")?),
            None,
        ))),
        Some("sqlx") => Ok(Some(PoolSpec::sqlx(
            Some(num("max_connections")? as u32),
            Some(num("min_connections")? as u32),
            Some(Duration::from_secs_f64(num("acquire_timeout")?)),
            Some(never("idle_timeout")?),
            Some(never("max_lifetime")?),
            Some(flag("test_before_acquire")?),
        ))),
        Some(v) if super::words::VOCABULARIES.contains(&v) => super::words::read(v, s).map(Some),
        other => Err(format!(
            "reported settings in an unknown vocabulary {other:?}: expected \"sqlalchemy\" or \"sqlx\""
        )),
    }
}

/// The SQLAlchemy adapter's `connect_args` answer for the report's pool line: the
/// driver's timeouts as read back from a live connection, any other key as passed, or
/// everything as passed with the reason it could not be read.
fn connect_args_line(v: &Value) -> String {
    let map = |k: &str| v.get(k).and_then(Value::as_object);
    let empty = Map::new();
    let passed = map("passed").unwrap_or(&empty);
    match map("read") {
        Some(read) => {
            let mut out = format!("connect_args: {}", super::words::line(read));
            // A read-back value the suite set differently (a driver that rounds or
            // caps it) is worth a word; 1 and 1.0 are the same setting.
            let differs: Map<String, Value> = passed
                .iter()
                .filter(|(k, p)| {
                    read.get(*k).is_some_and(|r| {
                        r != *p && !(r.as_f64().is_some() && r.as_f64() == p.as_f64())
                    })
                })
                .map(|(k, p)| (k.clone(), p.clone()))
                .collect();
            if !differs.is_empty() {
                out += &format!(" (the suite passed {})", super::words::line(&differs));
            }
            let other: Map<String, Value> = passed
                .iter()
                .filter(|(k, _)| !read.contains_key(*k))
                .map(|(k, p)| (k.clone(), p.clone()))
                .collect();
            if !other.is_empty() {
                out += &format!(
                    " (also passed, not read back: {})",
                    super::words::line(&other)
                );
            }
            out
        }
        None => format!(
            "connect_args: {} as passed (not read back: {})",
            super::words::line(passed),
            v.get("unread")
                .and_then(Value::as_str)
                .unwrap_or("the driver does not expose them")
        ),
    }
}

async fn refresh(inner: &Inner) {
    if let Ok(r) = inner.call(json!({"op": "stats"}), Some(LIVENESS)).await {
        let n = |k: &str| r.get(k).and_then(Value::as_u64).unwrap_or(0) as u32;
        *lock(&inner.stats) = PoolStats {
            size: n("open"),
            idle: n("idle"),
        };
    }
}

/// The client's own counts, every [`POLL`]; a `stats` that goes unanswered marks the
/// adapter hung.
async fn poll(inner: Arc<Inner>) {
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while inner.broken().is_none() && !inner.closing.load(Ordering::SeqCst) {
        tick.tick().await;
        refresh(&inner).await;
    }
}

/// Start the process: its own process group, `PR_SET_PDEATHSIG` from the harness's
/// long-lived spawner thread (so it dies with the harness, even after `kill -9`), and
/// one thread per pipe.
async fn spawn(argv: &[String], name: &str) -> Result<(Child, Arc<Inner>), ClientError> {
    let spawn_err = |source| ClientError::Spawn {
        adapter: name.to_string(),
        source,
    };
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| spawn_err(io::Error::other("the command is empty")))?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Ctrl-C in a terminal reaches the harness, which then ends the adapter in order.
        .process_group(0);
    let parent = std::process::id();
    // SAFETY: prctl and getppid are async-signal-safe; nothing here allocates.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::getppid() as u32 != parent {
                return Err(io::Error::other("the harness exited during spawn"));
            }
            Ok(())
        });
    }
    let mut child = crate::server::process::spawn_on_spawner(cmd)
        .await
        .map_err(spawn_err)?;
    let (stdin, stdout, stderr) = (
        child.stdin.take().expect("piped"),
        child.stdout.take().expect("piped"),
        child.stderr.take().expect("piped"),
    );
    let (tx, rx) = mpsc::channel::<String>();
    let inner = Arc::new(Inner {
        name: name.to_string(),
        next_id: AtomicU64::new(0),
        pending: Mutex::new(HashMap::new()),
        out: Mutex::new(tx),
        stderr: Arc::new(Mutex::new(VecDeque::new())),
        broken: Mutex::new(None),
        closing: AtomicBool::new(false),
        stats: Mutex::new(PoolStats::default()),
    });
    let thread = |what: &str| std::thread::Builder::new().name(format!("goneaway-adapter-{what}"));
    let io_err = |e| ClientError::Io {
        what: "starting an adapter pipe thread".into(),
        source: e,
    };
    {
        let inner = inner.clone();
        thread("writer")
            .spawn(move || {
                let mut stdin = stdin;
                for line in rx {
                    if stdin
                        .write_all(line.as_bytes())
                        .and_then(|()| stdin.write_all(b"\n"))
                        .and_then(|()| stdin.flush())
                        .is_err()
                    {
                        inner.fail("stopped reading its stdin".into());
                        return;
                    }
                }
            })
            .map_err(io_err)?;
    }
    {
        let tail = inner.stderr.clone();
        thread("stderr")
            .spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let mut t = lock(&tail);
                    if t.len() == STDERR_LINES {
                        t.pop_front();
                    }
                    t.push_back(line);
                }
            })
            .map_err(io_err)?;
    }
    {
        let inner = inner.clone();
        thread("reader")
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    match line {
                        Ok(l) if l.trim().is_empty() => {}
                        Ok(l) => inner.route(&l),
                        Err(e) => return inner.fail(format!("stdout could not be read: {e}")),
                    }
                }
                // Give the stderr thread a moment to take in the last lines it wrote.
                std::thread::sleep(Duration::from_millis(100));
                inner.fail("exited (its stdout closed)".into());
            })
            .map_err(io_err)?;
    }
    Ok((child, inner))
}

#[async_trait]
impl Pool for AdapterPool {
    async fn acquire(&self) -> Result<Box<dyn Conn>, OpError> {
        let (_, rx) = self.inner.request(json!({"op": "acquire"}), true);
        let reply = rx
            .await
            .unwrap_or_else(|_| Err(broken_wire("the adapter is gone")));
        match reply {
            Ok(r) => match r.get("conn").cloned() {
                Some(conn) if !conn.is_null() => Ok(Box::new(AdapterConn {
                    inner: self.inner.clone(),
                    conn,
                })),
                _ => {
                    let reason = "answered `acquire` without a `conn`".to_string();
                    self.inner.fail(reason.clone());
                    Err(op_error(&broken_wire(&reason)))
                }
            },
            Err(e) => Err(op_error(&e)),
        }
    }

    fn stats(&self) -> PoolStats {
        *lock(&self.inner.stats)
    }

    fn settings(&self) -> Option<PoolSpec> {
        self.settings.clone()
    }

    async fn close(&self) {
        // Bounded: a hung adapter is killed anyway when the pool is dropped.
        let _ = tokio::time::timeout(
            Duration::from_secs(5),
            self.inner.call(json!({"op": "close"}), None),
        )
        .await;
        self.inner.closing.store(true, Ordering::SeqCst);
    }

    fn broken(&self) -> Option<String> {
        self.inner.broken().map(|reason| {
            ClientError::Broken {
                adapter: self.inner.name.clone(),
                reason,
                stderr: self.inner.stderr(),
            }
            .to_string()
        })
    }
}

impl Drop for AdapterPool {
    fn drop(&mut self) {
        self.poller.abort();
        self.kill();
    }
}

struct AdapterConn {
    inner: Arc<Inner>,
    conn: Value,
}

#[async_trait]
impl Conn for AdapterConn {
    async fn run(&mut self, statement: Statement) -> Result<(), OpError> {
        let s = match statement {
            Statement::Ping => json!({"kind": "ping"}),
            Statement::Select { id, table } => {
                json!({"kind": "select", "id": id, "table": &*table})
            }
            Statement::Insert { id, worker, table } => {
                json!({"kind": "insert", "id": id, "worker": worker, "table": &*table})
            }
            Statement::Transaction { id, worker, table } => {
                json!({"kind": "transaction", "id": id, "worker": worker, "table": &*table})
            }
            Statement::Sleep(d) => json!({"kind": "sleep", "seconds": d.as_secs_f64()}),
            Statement::Begin => json!({"kind": "begin"}),
            Statement::Commit => json!({"kind": "commit"}),
            Statement::Rollback => json!({"kind": "rollback"}),
        };
        self.inner
            .call(
                json!({"op": "run", "conn": self.conn, "statement": s}),
                None,
            )
            .await
            .map(drop)
            .map_err(|e| op_error(&e))
    }
}

impl Drop for AdapterConn {
    fn drop(&mut self) {
        // Returned when the harness says so; the adapter waits for a statement still
        // running on it before closing it.
        self.inner.send(json!({"op": "release", "conn": self.conn}));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn settings_read_back_in_sqlalchemys_words() {
        // What the SQLAlchemy adapter reported for Flask-SQLAlchemy 3.1.1 configured with
        // the ignored SQLALCHEMY_POOL_* keys.
        let r = reply(json!({"id": 2, "ok": true, "vocabulary": "sqlalchemy",
            "settings": {"pool_size": 5, "max_overflow": 10, "pool_timeout": 30.0,
                         "pool_recycle": 7200, "pool_pre_ping": false},
            "ignored": ["SQLALCHEMY_MAX_OVERFLOW"]}));
        let spec = read_settings(&r).unwrap().expect("readable");
        assert_eq!(
            spec.to_string(),
            "pool_size=5 max_overflow=10 pool_timeout=30s pool_recycle=2h pool_pre_ping=false"
        );
        // -1 is SQLAlchemy's "never recycle".
        let r = reply(
            json!({"vocabulary": "sqlalchemy", "settings": {"pool_size": 2,
            "max_overflow": 0, "pool_timeout": 1, "pool_recycle": -1, "pool_pre_ping": true}}),
        );
        assert_eq!(read_settings(&r).unwrap().unwrap().max_lifetime, None);
        // Round trip: what the harness sends in hello reads back as the same pool.
        let sent = PoolSpec::sqlalchemy(
            Some(3),
            Some(2),
            Some(Some(Duration::from_secs(4))),
            Some(None),
            Some(true),
            None,
        );
        let r = reply(json!({"vocabulary": "sqlalchemy", "settings": pool_words(&sent)}));
        assert_eq!(read_settings(&r).unwrap(), Some(sent));
    }

    #[test]
    fn connect_args_read_back_in_the_pool_line() {
        // What the adapter reported for PyMySQL 1.2.4 with connect_args
        // { read_timeout = 1, write_timeout = 1, connect_timeout = 1 }.
        let v = json!({"read": {"connect_timeout": 1, "read_timeout": 1, "write_timeout": 1},
            "unread": null,
            "passed": {"read_timeout": 1, "write_timeout": 1, "connect_timeout": 1}});
        assert_eq!(
            connect_args_line(&v),
            "connect_args: connect_timeout=1 read_timeout=1 write_timeout=1"
        );
        // A driver keeps its own value (whole seconds) and a key with no getter.
        let v = json!({"read": {"connect_timeout": "none", "read_timeout": 1, "write_timeout": "none"},
            "passed": {"read_timeout": 1.5, "charset": "utf8mb4"}});
        assert_eq!(
            connect_args_line(&v),
            "connect_args: connect_timeout=none read_timeout=1 write_timeout=none (the suite passed read_timeout=1.5) (also passed, not read back: charset=utf8mb4)"
        );
        // No server at startup (goneaway check): as passed, and why.
        let v = json!({"read": null, "unread": "no connection at startup: x",
            "passed": {"read_timeout": 1}});
        assert_eq!(
            connect_args_line(&v),
            "connect_args: read_timeout=1 as passed (not read back: no connection at startup: x)"
        );
    }

    #[test]
    fn unreadable_or_malformed_settings() {
        assert_eq!(read_settings(&reply(json!({"settings": null}))), Ok(None));
        let err = read_settings(&reply(
            json!({"vocabulary": "hikari", "settings": {"maximumPoolSize": 10}}),
        ))
        .unwrap_err();
        assert!(err.contains("unknown vocabulary"), "{err}");
        let err = read_settings(&reply(
            json!({"vocabulary": "sqlalchemy", "settings": {"pool_size": 5}}),
        ))
        .unwrap_err();
        assert!(err.contains("`max_overflow`"), "{err}");
    }
}
