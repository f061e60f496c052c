//! Suite: one scenario, read from TOML and checked before anything starts.
//!
//! Parsing happens in two steps: serde reads the file into [`raw`] structs that reject
//! unknown keys and keep spans, then [`Suite::from_toml`] turns them into checked types
//! owned by the modules that use them. Every complaint names the file, line, column and
//! field, and says what is allowed.

mod builtin;
mod client;
mod mysql_async;
mod raw;
mod reach;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde_spanned::Spanned;

use crate::check::{Expect, Expected};
use crate::fault::{Fault, KillTarget};
use crate::history::Lasts;
use crate::history::{ErrorClass, OpKind};
use crate::pool::{PoolSpec, Transport, Vocabulary};
use crate::schedule::{FaultSpec, Repeat};
use crate::server::{BackendKind, ReplicaSpec, ServerSpec};
use crate::workload::{MAX_STEPS, RequestSpec, Step, WorkloadSpec};

pub use builtin::{BUILTIN, builtin_names};
use raw::{RawFault, RawPool, RawSuite, S};

/// A checked scenario: everything a run needs, nothing left to interpret.
#[derive(Debug, Clone)]
pub struct Suite {
    pub name: String,
    pub description: String,
    /// Where it came from: a path, or `builtin:<name>`.
    pub origin: String,
    /// The suite's own seed; a run may override it.
    pub seed: Option<u64>,
    pub server: ServerSpec,
    /// The backend the file names; `server.backend` may differ after `with_backend`.
    pub declared_backend: BackendKind,
    /// `None`: the pool is built by the user (library use) or sqlx defaults.
    pub pool: Option<PoolSpec>,
    /// `[client]`: the client under test in another process; `None` is sqlx.
    pub client: Option<crate::client::ClientSpec>,
    /// A proxy between pool and server: `[proxy]`, or implied by a network fault.
    pub proxy: Option<ProxySpec>,
    /// How goneaway's own pool reaches the server: TCP, or the process backend's socket.
    pub transport: Transport,
    pub workload: WorkloadSpec,
    pub faults: Vec<FaultSpec>,
    pub expect: Expect,
}

/// Where the pool's traffic goes through a Toxiproxy-compatible proxy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProxySpec {
    /// A real Toxiproxy server's API URL; `None` serves the API in process.
    pub url: Option<String>,
}

/// Something about a suite that may make a run prove less than it says, but that only
/// the run can tell (see [`Suite::warnings`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuiteWarning {
    /// A short name, like a lint rule's.
    pub rule: &'static str,
    pub message: String,
}

/// A suite that could not be read; displays as `file:line:col: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SuiteError {
    pub origin: String,
    /// 1-based line and column, when the problem has a place.
    pub position: Option<(usize, usize)>,
    pub message: String,
}

impl fmt::Display for SuiteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some((line, col)) => write!(f, "{}:{line}:{col}: {}", self.origin, self.message),
            None => write!(f, "{}: {}", self.origin, self.message),
        }
    }
}

impl Suite {
    /// Read and check a suite file.
    pub fn load(path: impl AsRef<Path>) -> Result<Suite, SuiteError> {
        let path = path.as_ref();
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| SuiteError {
            origin: origin.clone(),
            position: None,
            message: format!("cannot read suite file: {e}"),
        })?;
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("suite");
        Suite::from_toml(&text, &origin, stem)
    }

    /// A suite shipped with goneaway, by name (see `goneaway list`).
    pub fn builtin(name: &str) -> Result<Suite, SuiteError> {
        let text = BUILTIN
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| *t)
            .ok_or_else(|| SuiteError {
                origin: name.to_string(),
                position: None,
                message: format!(
                    "no built-in suite named `{name}` and no such file; built-in suites: {}",
                    builtin_names().join(", ")
                ),
            })?;
        Suite::from_toml(text, &format!("builtin:{name}"), name)
    }

    /// A path if it exists, else a built-in name.
    pub fn resolve(name_or_path: &str) -> Result<Suite, SuiteError> {
        let path = Path::new(name_or_path);
        if path.exists() || name_or_path.ends_with(".toml") {
            Suite::load(path)
        } else {
            Suite::builtin(name_or_path)
        }
    }

    /// Parse and check suite text; `default_name` is used when the file has no `name`.
    pub fn from_toml(text: &str, origin: &str, default_name: &str) -> Result<Suite, SuiteError> {
        let cx = Cx { text, origin };
        let raw: RawSuite = toml::from_str(text).map_err(|e| {
            // toml's own message already says which key and what was expected.
            cx.err_at(
                e.span().map(|s| s.start),
                e.message().trim_end().to_string(),
            )
        })?;
        cx.check(raw, default_name)
    }

    /// What cannot be decided before a run but may make it prove less than the suite
    /// says; `goneaway check` prints these beside the lint. Today: a `requests` cap that
    /// may run out before the last fault starts (closed loop) or heals (see `reach`; an
    /// open loop's cap that ends before a fault starts is refused outright).
    pub fn warnings(&self) -> Vec<SuiteWarning> {
        reach::shortfall(&self.workload, &self.faults)
            .filter(|s| !s.decided)
            .map(|s| SuiteWarning {
                rule: "requests-cap",
                message: s.message(&self.workload),
            })
            .into_iter()
            .collect()
    }

    /// Run the same scenario on another backend, checking that its faults are possible
    /// there.
    pub fn with_backend(mut self, backend: BackendKind) -> Result<Suite, SuiteError> {
        if backend == BackendKind::External && self.server.url.is_none() {
            return Err(SuiteError {
                origin: self.origin.clone(),
                position: None,
                message: "--backend external needs `url` in [server]".into(),
            });
        }
        if self.transport == Transport::Socket && backend != BackendKind::Process {
            return Err(SuiteError {
                origin: self.origin.clone(),
                position: None,
                message: format!(
                    "[pool] transport = \"socket\" needs the process backend (the harness owns that server's unix socket), not {backend}"
                ),
            });
        }
        if self.server.replica.is_some() && backend != BackendKind::Process {
            return Err(SuiteError {
                origin: self.origin.clone(),
                position: None,
                message: format!(
                    "this suite has a replica (`[server] replica = true`), which only the process backend can start so far, not --backend {backend}"
                ),
            });
        }
        self.server.backend = backend;
        for f in &self.faults {
            if let Some(why) = f.fault.unsupported_on(backend) {
                return Err(SuiteError {
                    origin: self.origin.clone(),
                    position: None,
                    message: format!(
                        "fault `{}` cannot run on the {backend} backend: {why}",
                        f.name
                    ),
                });
            }
        }
        Ok(self)
    }
}

/// The most extra occurrences a `repeat` may ask for.
const MAX_REPEAT: u32 = 1000;

/// Checking context: the text (to turn spans into lines) and where it came from.
struct Cx<'a> {
    text: &'a str,
    origin: &'a str,
}

type R<T> = Result<T, SuiteError>;

impl Cx<'_> {
    fn position(&self, offset: usize) -> (usize, usize) {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, col)
    }

    fn err_at(&self, offset: Option<usize>, message: String) -> SuiteError {
        SuiteError {
            origin: self.origin.to_string(),
            position: offset.map(|o| self.position(o)),
            message: one_line(message),
        }
    }

    fn err<T>(&self, at: &Spanned<T>, message: impl Into<String>) -> SuiteError {
        self.err_at(Some(at.span().start), message.into())
    }

    /// A required field that is not there, reported at the table it belongs in (its
    /// header), or at the top of the file for top-level keys and missing tables.
    fn missing(&self, table: Option<std::ops::Range<usize>>, message: &str) -> SuiteError {
        self.err_at(Some(table.map_or(0, |t| t.start)), message.into())
    }

    fn check(&self, raw: RawSuite, default_name: &str) -> R<Suite> {
        let name = match &raw.name {
            Some(n) => {
                let ok = !n.get_ref().is_empty()
                    && n.get_ref()
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
                if !ok {
                    return Err(self.err(
                        n,
                        "`name` must be lowercase letters, digits and dashes, like \"idle-expiry\"",
                    ));
                }
                n.get_ref().clone()
            }
            None => default_name.to_string(),
        };
        let Some(raw_description) = &raw.description else {
            return Err(self.missing(
                None,
                "missing `description` at the top of the file (before any [table]); add `description = \"one line: what goes wrong\"`",
            ));
        };
        let description = raw_description.get_ref().trim().to_string();
        if description.is_empty() || description.contains('\n') {
            return Err(self.err(
                raw_description,
                "`description` must be one non-empty line saying what goes wrong",
            ));
        }
        let server = self.server(&raw.server)?;
        // mysql_async's words are read by its client (`suite::mysql_async`), not as a
        // sqlx pool.
        let in_process_client = raw.client.as_ref().is_some_and(|c| {
            c.get_ref()
                .kind
                .as_ref()
                .is_some_and(|k| k.get_ref() == "mysql-async")
        });
        let pool = match &raw.pool {
            Some(p) if !in_process_client => Some(self.pool(p)?),
            _ => None,
        };
        let client = raw
            .client
            .as_ref()
            .map(|c| self.client(c, raw.pool.as_ref(), pool.as_ref()))
            .transpose()?;
        let Some(raw_workload) = &raw.workload else {
            return Err(self.missing(
                None,
                "missing the [workload] table; add `[workload]` with at least `duration = \"10s\"` (how long the application runs)",
            ));
        };
        let workload = self.workload(raw_workload)?;
        let mut faults = Vec::new();
        for f in &raw.faults {
            faults.push(self.fault(f, &server, &workload)?);
        }
        if let Some(short) = reach::shortfall(&workload, &faults)
            && short.decided
        {
            let at = raw_workload
                .get_ref()
                .requests
                .as_ref()
                .expect("a shortfall needs a requests cap");
            return Err(self.err(at, short.message(&workload)));
        }
        let mut names = BTreeSet::new();
        for (f, raw_f) in faults.iter().zip(&raw.faults) {
            if !names.insert(f.name.clone()) {
                return Err(self.err(
                    raw_f,
                    format!("two faults are named `{}`; give one a `name`", f.name),
                ));
            }
        }
        let proxy = match &raw.proxy {
            Some(p) => Some(ProxySpec {
                url: p.get_ref().url.as_ref().map(|u| u.get_ref().clone()),
            }),
            None => faults
                .iter()
                .any(|f| f.fault.needs_proxy())
                .then(ProxySpec::default),
        };
        if let Some(url) = raw.proxy.as_ref().and_then(|p| p.get_ref().url.as_ref()) {
            if let Err(e) = crate::proxy::client::Client::new(url.get_ref()) {
                return Err(self.err(url, format!("[proxy] url: {e}")));
            }
            // Only goneaway's own proxy tells new connections from established ones.
            if let Some(c) = raw.faults.iter().find_map(|f| {
                f.get_ref()
                    .connections
                    .as_ref()
                    .filter(|c| c.get_ref() != "all")
            }) {
                return Err(self.err(c, "`connections` is goneaway's extension to the Toxiproxy API: a real Toxiproxy (`[proxy] url`) acts on every connection; remove `url` to use the embedded proxy"));
            }
        }
        let transport = self.transport(&raw, &server, proxy.is_some())?;
        // A real Toxiproxy restarts a proxy whose upstream changes: the open connections
        // would be reset whatever the suite says.
        if let Some(url) = raw.proxy.as_ref().and_then(|p| p.get_ref().url.as_ref())
            && let Some(raw_f) = faults
                .iter()
                .zip(&raw.faults)
                .find(|(f, _)| matches!(f.fault, Fault::Failover { reset: false, .. }))
                .map(|(_, r)| r)
        {
            let _ = url;
            return Err(self.err(raw_f, "a failover that keeps open connections on the old primary needs goneaway's own proxy (a real Toxiproxy closes them when its upstream moves): remove [proxy] url, or set `reset = true`"));
        }
        let Some(raw_expect) = &raw.expect else {
            return Err(self.missing(
                None,
                "missing the [expect] table; add `[expect]` with at least `verdict = \"valid\"` (or \"invalid\" for a negative control)",
            ));
        };
        let mut expect = self.expect(raw_expect, &faults)?;
        expect.per_fault = faults
            .iter()
            .map(|f| (f.name.clone(), f.tolerate.clone()))
            .collect();
        expect.no_effect = faults
            .iter()
            .filter(|f| f.expect_no_effect)
            .map(|f| f.name.clone())
            .collect();
        Ok(Suite {
            name,
            description,
            origin: self.origin.to_string(),
            seed: raw.seed.map(|s| s.into_inner()),
            declared_backend: server.backend,
            server,
            pool,
            client,
            proxy,
            transport,
            workload,
            faults,
            expect,
        })
    }

    /// `[pool] transport`: the socket is the process backend's own, and the pool reaches
    /// it directly (no proxy can stand between) with goneaway's own pool (an adapter is
    /// handed a host and a port).
    fn transport(&self, raw: &RawSuite, server: &ServerSpec, proxied: bool) -> R<Transport> {
        let Some(t) = raw
            .pool
            .as_ref()
            .and_then(|p| p.get_ref().transport.as_ref())
        else {
            return Ok(Transport::Tcp);
        };
        match t.get_ref().as_str() {
            "tcp" => Ok(Transport::Tcp),
            "socket" => {
                let why = if server.backend != BackendKind::Process {
                    Some(format!("the {} backend has no socket the harness owns; use backend = \"process\"", server.backend))
                } else if proxied {
                    Some("network faults need the proxy, which speaks TCP; use server faults (idle, kill, restart, crash, pause) with the socket".to_string())
                } else if raw.client.is_some() {
                    Some("a [client] (an adapter, mysql_async) is handed a host and port; the socket is for goneaway's own sqlx pool".to_string())
                } else {
                    None
                };
                match why {
                    Some(why) => Err(self.err(t, format!("[pool] transport = \"socket\": {why}"))),
                    None => Ok(Transport::Socket),
                }
            }
            other => Err(self.err(
                t,
                format!("[pool] transport `{other}`: expected \"tcp\" or \"socket\" (the process backend's unix socket)"),
            )),
        }
    }

    fn server(&self, raw: &raw::RawServer) -> R<ServerSpec> {
        let backend = match &raw.backend {
            Some(b) => b
                .get_ref()
                .parse()
                .map_err(|e: String| self.err(b, format!("[server] backend: {e}")))?,
            None => BackendKind::Process,
        };
        match (&backend, &raw.url) {
            (BackendKind::External, None) => {
                let at = raw
                    .backend
                    .as_ref()
                    .expect("external is only set explicitly");
                return Err(self.err(at, "the external backend needs `url = \"mysql://user:password@host:port/db\"` in [server]"));
            }
            (BackendKind::Process | BackendKind::Docker, Some(url)) => {
                return Err(self.err(url, "`url` is only for backend = \"external\"; the process and docker backends start their own server"));
            }
            _ => {}
        }
        let mut settings = BTreeMap::new();
        for (key, value) in &raw.settings {
            let rendered = render_setting(key, value).map_err(|why| {
                // Flattened keys lose their spans; find the key's line in the text.
                // When the key is written some other way (an inline table, `server.x = ...`),
                // the file's start still gives the complaint a place.
                let offset = find_key(self.text, "server", key).unwrap_or(0);
                self.err_at(Some(offset), format!("[server] {key}: {why}"))
            })?;
            settings.insert(key.replace('-', "_"), rendered);
        }
        let replica = self.replica(raw, backend, &settings)?;
        Ok(ServerSpec {
            backend,
            settings,
            url: raw.url.as_ref().map(|u| u.get_ref().clone()),
            image: raw.image.as_ref().map(|i| i.get_ref().clone()),
            replica,
        })
    }

    /// `replica = true` (and its `replica_delay`): a second server of the process
    /// backend that replicates the first. Replication needs its own `log_bin`,
    /// `server_id`, … so a suite may not set them beside it.
    fn replica(
        &self,
        raw: &raw::RawServer,
        backend: BackendKind,
        settings: &BTreeMap<String, String>,
    ) -> R<Option<ReplicaSpec>> {
        let on = raw.replica.as_ref().filter(|r| *r.get_ref());
        let Some(on) = on else {
            if let Some(d) = &raw.replica_delay {
                return Err(self.err(d, "[server] replica_delay needs `replica = true`"));
            }
            return Ok(None);
        };
        if backend != BackendKind::Process {
            return Err(self.err(
                on,
                format!("[server] replica = true: only the process backend can start a replica so far, not {backend}; use backend = \"process\""),
            ));
        }
        for key in settings.keys() {
            if crate::server::process::REPLICATION_MANAGED.contains(&key.as_str()) {
                let offset = find_key(self.text, "server", key).unwrap_or(on.span().start);
                return Err(self.err_at(
                    Some(offset),
                    format!("[server] {key} is set by the harness when `replica = true` (replication needs its own value); remove it"),
                ));
            }
        }
        let delay = match &raw.replica_delay {
            Some(d) if d.get_ref().0.subsec_nanos() != 0 => {
                return Err(self.err(
                    d,
                    "[server] replica_delay is whole seconds (MariaDB's MASTER_DELAY), like \"2s\"",
                ));
            }
            Some(d) => d.get_ref().0,
            None => Duration::ZERO,
        };
        Ok(Some(ReplicaSpec { delay }))
    }

    fn pool(&self, raw: &S<RawPool>) -> R<PoolSpec> {
        self.no_mysql_async_words(raw)?;
        let p = raw.get_ref();
        // Each pair names one sqlx setting in both vocabularies: setting both is a
        // contradiction, not a preference.
        let pairs: [(&str, Option<usize>, &str, Option<usize>); 5] = [
            (
                "pool_size",
                p.pool_size.as_ref().map(|s| s.span().start),
                "min_connections",
                p.min_connections.as_ref().map(|s| s.span().start),
            ),
            (
                "max_overflow",
                p.max_overflow.as_ref().map(|s| s.span().start),
                "max_connections",
                p.max_connections.as_ref().map(|s| s.span().start),
            ),
            (
                "pool_timeout",
                p.pool_timeout.as_ref().map(|s| s.span().start),
                "acquire_timeout",
                p.acquire_timeout.as_ref().map(|s| s.span().start),
            ),
            (
                "pool_recycle",
                p.pool_recycle.as_ref().map(|s| s.span().start),
                "max_lifetime",
                p.max_lifetime.as_ref().map(|s| s.span().start),
            ),
            (
                "pool_pre_ping",
                p.pool_pre_ping.as_ref().map(|s| s.span().start),
                "test_before_acquire",
                p.test_before_acquire.as_ref().map(|s| s.span().start),
            ),
        ];
        let sqla_used: Vec<&str> = pairs
            .iter()
            .filter(|p| p.1.is_some())
            .map(|p| p.0)
            .collect();
        let sqlx_used: Vec<(&str, usize)> = pairs
            .iter()
            .filter_map(|p| p.3.map(|at| (p.2, at)))
            .collect();
        if let (Some(a), Some((b, at))) = (sqla_used.first(), sqlx_used.first()) {
            return Err(self.err_at(
                Some(*at),
                format!(
                    "[pool] mixes SQLAlchemy (`{a}`) and sqlx (`{b}`) words for the same settings; \
                     use one vocabulary (see the table in the README)"
                ),
            ));
        }
        let spec = if !sqla_used.is_empty() {
            PoolSpec::sqlalchemy(
                self.sqlalchemy_count(p.pool_size.as_ref(), "pool_size")?,
                self.sqlalchemy_count(p.max_overflow.as_ref(), "max_overflow")?,
                p.pool_timeout.as_ref().map(|v| v.get_ref().0),
                p.pool_recycle.as_ref().map(|v| v.get_ref().0),
                p.pool_pre_ping.as_ref().map(|v| *v.get_ref()),
                p.idle_timeout.as_ref().map(|v| v.get_ref().0.map(|d| d.0)),
            )
        } else {
            PoolSpec::sqlx(
                p.max_connections.as_ref().map(|v| *v.get_ref()),
                p.min_connections.as_ref().map(|v| *v.get_ref()),
                p.acquire_timeout.as_ref().map(|v| v.get_ref().0),
                p.idle_timeout.as_ref().map(|v| v.get_ref().0.map(|d| d.0)),
                p.max_lifetime.as_ref().map(|v| v.get_ref().0.map(|d| d.0)),
                p.test_before_acquire.as_ref().map(|v| *v.get_ref()),
            )
        };
        if spec.max_connections == 0 {
            return Err(self.err(
                raw,
                "[pool] allows no connections at all; the maximum must be at least 1",
            ));
        }
        if spec.min_connections > spec.max_connections {
            let word = if spec.vocabulary == Vocabulary::Sqlalchemy {
                "pool_size"
            } else {
                "min_connections"
            };
            return Err(self.err(
                raw,
                format!(
                    "[pool] {word} ({}) is above the maximum ({})",
                    spec.min_connections, spec.max_connections
                ),
            ));
        }
        if spec.acquire_timeout.is_zero() {
            return Err(self.err(raw, "[pool] a checkout timeout of 0 fails every checkout; give it a duration like \"5s\""));
        }
        Ok(spec)
    }

    /// SQLAlchemy's `pool_size` or `max_overflow`. Its "no limit" values (`pool_size =
    /// 0`, `max_overflow = -1`) have no sqlx counterpart: mapping them to any number
    /// would test a different pool, so they are refused with that explanation.
    fn sqlalchemy_count(&self, v: Option<&S<i64>>, key: &str) -> R<Option<u32>> {
        let Some(v) = v else { return Ok(None) };
        let n = *v.get_ref();
        let no_limit = match key {
            "pool_size" => n == 0,
            _ => n == -1,
        };
        if no_limit {
            return Err(self.err(
                v,
                format!(
                    "[pool] {key} = {n} means \"no limit\" in SQLAlchemy's QueuePool, which goneaway's pool (sqlx, always bounded) cannot reproduce; write the most connections your application may really open, e.g. `pool_size = 20` and `max_overflow = 0`"
                ),
            ));
        }
        u32::try_from(n).map(Some).map_err(|_| {
            self.err(
                v,
                format!(
                    "[pool] {key} must be a whole number from {} to {}",
                    u32::from(key == "pool_size"),
                    u32::MAX
                ),
            )
        })
    }

    fn workload(&self, raw: &S<raw::RawWorkload>) -> R<WorkloadSpec> {
        let w = raw.get_ref();
        let Some(duration) = &w.duration else {
            return Err(self.missing(
                Some(raw.span()),
                "missing `duration` in [workload]; add `duration = \"10s\"` (how long the application runs)",
            ));
        };
        let mut spec = WorkloadSpec {
            duration: duration.get_ref().0,
            ..WorkloadSpec::default()
        };
        if spec.duration.is_zero() {
            return Err(self.err(duration, "[workload] duration must be more than 0"));
        }
        if let Some(n) = &w.workers {
            if *n.get_ref() == 0 || *n.get_ref() > 1000 {
                return Err(self.err(n, "[workload] workers must be between 1 and 1000"));
            }
            spec.workers = *n.get_ref();
        }
        if let Some(n) = &w.requests {
            if *n.get_ref() == 0 {
                return Err(self.err(
                    n,
                    "[workload] requests must be at least 1 (leave it out for no cap)",
                ));
            }
            spec.requests = Some(*n.get_ref());
        }
        if let Some(r) = &w.rate {
            if !(r.get_ref().is_finite() && *r.get_ref() > 0.0) {
                return Err(self.err(
                    r,
                    "[workload] rate is requests per second across all workers and must be above 0",
                ));
            }
            spec.rate = Some(*r.get_ref());
        }
        if let Some(d) = &w.think {
            spec.think = d.get_ref().0;
        }
        if let Some(d) = &w.hold {
            spec.hold = d.get_ref().0;
        }
        if let Some(d) = &w.op_timeout {
            if d.get_ref().0.is_zero() {
                return Err(self.err(d, "[workload] op_timeout must be more than 0: it is what turns a hang into a recorded `timeout`"));
            }
            spec.op_timeout = d.get_ref().0;
        }
        if let Some(n) = &w.checkouts_per_request {
            if !(1..=4).contains(n.get_ref()) {
                return Err(self.err(n, "[workload] checkouts_per_request must be 1 to 4"));
            }
            spec.checkouts_per_request = *n.get_ref();
        }
        if let Some(d) = &w.sleep {
            spec.sleep = d.get_ref().0;
        }
        if let Some(n) = &w.leak_every {
            // The upper bound keeps "requests until the pool is drained" (leak_every x
            // connections) within u64; a run never gets near it anyway.
            if !(1..=u64::from(u32::MAX)).contains(n.get_ref()) {
                return Err(self.err(
                    n,
                    format!(
                        "[workload] leak_every must be from 1 (every request leaks) to {}",
                        u32::MAX
                    ),
                ));
            }
            spec.leak_every = Some(*n.get_ref());
        }
        if let Some(mix) = &w.mix {
            let mut weights = BTreeMap::new();
            for (k, v) in mix.get_ref() {
                let kind = OpKind::ALL
                    .into_iter()
                    .find(|o| o.name() == k)
                    .ok_or_else(|| {
                        let names: Vec<_> = OpKind::ALL.iter().map(|o| o.name()).collect();
                        self.err(
                            mix,
                            format!(
                                "[workload] mix: unknown operation `{k}`; expected {}",
                                names.join(", ")
                            ),
                        )
                    })?;
                weights.insert(kind, *v);
            }
            if weights.values().all(|w| *w == 0) {
                return Err(self.err(mix, "[workload] mix gives every operation weight 0"));
            }
            spec.mix = weights;
        }
        self.sleep(raw, &spec)?;
        spec.request = self.request(raw, &spec)?;
        Ok(spec)
    }

    /// `steps` (and `transaction`): one request holding its connection across several
    /// statements and waits. It replaces `mix`, so the two cannot be combined.
    fn request(&self, raw: &S<raw::RawWorkload>, spec: &WorkloadSpec) -> R<Option<RequestSpec>> {
        let w = raw.get_ref();
        let Some(list) = &w.steps else {
            if let Some(t) = &w.transaction {
                return Err(self.err(t, "[workload] transaction applies to `steps`, and there are none; add `steps = [\"select\", \"wait 3s\", \"insert\"]` or remove `transaction`"));
            }
            return Ok(None);
        };
        if let Some(mix) = &w.mix {
            return Err(self.err(mix, "[workload] `mix` and `steps` both say what a request does; keep one (`steps` is one request of several statements on one checkout)"));
        }
        if let Some(sleep) = &w.sleep {
            return Err(self.err(sleep, "[workload] `sleep` is for the mix's sleep operation; with `steps`, write the step as `\"sleep 1s\"`"));
        }
        if list.get_ref().is_empty() || list.get_ref().len() > MAX_STEPS {
            return Err(self.err(
                list,
                format!("[workload] steps must list 1 to {MAX_STEPS} steps"),
            ));
        }
        let mut steps = Vec::new();
        for s in list.get_ref() {
            let step: Step = s
                .get_ref()
                .parse()
                .map_err(|e: String| self.err(s, format!("[workload] steps: {e}")))?;
            steps.push(step);
        }
        if steps.iter().all(|s| matches!(s, Step::Wait(_))) {
            return Err(self.err(list, "[workload] steps only wait: a request must run at least one statement on the connection it holds"));
        }
        let request = RequestSpec {
            steps,
            transaction: w.transaction.as_ref().is_some_and(|t| *t.get_ref()),
        };
        if request.waits() >= spec.duration {
            return Err(self.err(
                list,
                format!(
                    "[workload] one request waits and sleeps {} in all but the workload lasts {}: a worker would spend the whole run in one request; make the steps shorter than `duration`",
                    humantime::format_duration(request.waits()),
                    humantime::format_duration(spec.duration)
                ),
            ));
        }
        Ok(Some(request))
    }

    /// A `sleep` operation must be able to do what the suite says. Absurd values are
    /// refused like every duration (see [`raw::Dur::MAX`]); beyond that, `sleep` is
    /// checked against the mix that uses it. A sleep longer than `op_timeout` is fine:
    /// the workload bounds a sleep statement by `op_timeout + sleep`.
    fn sleep(&self, raw: &S<raw::RawWorkload>, spec: &WorkloadSpec) -> R<()> {
        let w = raw.get_ref();
        let sleeps = spec.mix.get(&OpKind::Sleep).is_some_and(|n| *n > 0);
        match (&w.sleep, sleeps) {
            (Some(at), false) => Err(self.err(
                at,
                "[workload] sleep is set but `mix` gives `sleep` no weight, so no operation would sleep; add it to the mix (e.g. `mix = { sleep = 1, select = 3 }`) or remove `sleep`",
            )),
            (Some(at), true) if at.get_ref().0.is_zero() => Err(self.err(
                at,
                "[workload] sleep = 0 makes every `sleep` operation return at once; give it a duration like \"1s\"",
            )),
            (_, true) if spec.sleep >= spec.duration => {
                let message = format!(
                    "[workload] a `sleep` operation sleeps {} but the workload lasts {}: a worker would spend the whole run in one statement; make `sleep` shorter than `duration`",
                    humantime::format_duration(spec.sleep),
                    humantime::format_duration(spec.duration)
                );
                let at = (w.sleep.as_ref().map(|s| s.span()))
                    .or(w.mix.as_ref().map(|m| m.span()))
                    .unwrap_or(raw.span());
                Err(self.err_at(Some(at.start), message))
            }
            _ => Ok(()),
        }
    }

    fn fault(&self, f: &S<RawFault>, server: &ServerSpec, workload: &WorkloadSpec) -> R<FaultSpec> {
        let raw = f.get_ref();
        let Some(raw_kind) = &raw.kind else {
            return Err(self.missing(
                Some(f.span()),
                &format!(
                    "missing `kind` in [[fault]]; add `kind = \"...\"`, one of {}",
                    crate::history::FaultKind::ALL.map(|k| k.name()).join(", ")
                ),
            ));
        };
        let before_pool = raw.before_pool.as_ref().is_some_and(|b| *b.get_ref());
        let kind = raw_kind.get_ref().as_str();
        let at = match (&raw.at, before_pool) {
            (Some(at), false) => at.get_ref().0,
            (None, false) => {
                return Err(self.missing(
                    Some(f.span()),
                    "missing `at` in [[fault]]; add `at = \"2s\"` (when it starts, from the workload's start)",
                ));
            }
            (None, true) => Duration::ZERO,
            (Some(at), true) => {
                if !at.get_ref().0.is_zero() {
                    return Err(self.err(at, "a fault with `before_pool = true` starts before the pool is built, at 0s; remove `at`"));
                }
                Duration::ZERO
            }
        };
        if before_pool {
            let b = raw.before_pool.as_ref().expect("set");
            if matches!(kind, "idle" | "kill") {
                return Err(self.err(b, format!("`before_pool`: a `{kind}` before the pool exists has nothing to act on; use it with a fault that makes the server unreachable (cut, blackhole, crash, restart, pause)")));
            }
            if raw.repeat.is_some() || raw.jitter.is_some() {
                return Err(self.err(
                    b,
                    "`before_pool` is one occurrence at 0s: remove `repeat` and `jitter`",
                ));
            }
            if raw.duration.is_none() {
                return Err(self.err(b, "`before_pool` needs `duration`: how long the server stays unreachable after the pool is built"));
            }
        }
        let duration = raw.duration.as_ref().map(|d| d.get_ref().0);
        let no = |field: &str, present: bool, at: usize| -> R<()> {
            if present {
                Err(self.err_at(
                    Some(at),
                    format!("`{field}` is not a parameter of fault kind `{kind}`"),
                ))
            } else {
                Ok(())
            }
        };
        let span = |o: Option<usize>| o.unwrap_or(f.span().start);
        let target_at = span(raw.target.as_ref().map(|t| t.span().start));
        let variable_at = span(raw.variable.as_ref().map(|t| t.span().start));
        let value_at = span(raw.value.as_ref().map(|t| t.span().start));
        let need_duration = |what: &str| -> R<Duration> {
            match duration {
                Some(d) if !d.is_zero() => Ok(d),
                _ => Err(self.err(
                    raw_kind,
                    format!("fault kind `{kind}` needs `duration` ({what})"),
                )),
            }
        };
        let fault = match kind {
            "idle" => {
                need_duration("how long every worker stays idle")?;
                no("target", raw.target.is_some(), target_at)?;
                no("variable", raw.variable.is_some(), variable_at)?;
                no("value", raw.value.is_some(), value_at)?;
                Fault::Idle
            }
            "kill" => {
                no("variable", raw.variable.is_some(), variable_at)?;
                no("value", raw.value.is_some(), value_at)?;
                let target = match raw.target.as_ref().map(|t| t.get_ref().as_str()) {
                    Some("idle") => KillTarget::Idle,
                    Some("active") => KillTarget::Active,
                    Some("all") | None => KillTarget::All,
                    Some(other) => {
                        return Err(self.err_at(
                            Some(target_at),
                            format!("kill target `{other}`: expected idle, active or all"),
                        ));
                    }
                };
                Fault::Kill { target }
            }
            "wait_timeout" | "set_global" => {
                no("target", raw.target.is_some(), target_at)?;
                let variable = if kind == "wait_timeout" {
                    no("variable", raw.variable.is_some(), variable_at)?;
                    "wait_timeout".to_string()
                } else {
                    let v = raw.variable.as_ref().ok_or_else(|| {
                        self.err(raw_kind, "fault kind `set_global` needs `variable`")
                    })?;
                    let ok = v
                        .get_ref()
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_');
                    if !ok || v.get_ref().is_empty() {
                        return Err(self.err(
                            v,
                            "`variable` must be a server variable name like \"wait_timeout\"",
                        ));
                    }
                    v.get_ref().clone()
                };
                let value = raw.value.as_ref().ok_or_else(|| {
                    self.err(raw_kind, format!("fault kind `{kind}` needs `value`"))
                })?;
                let rendered = render_setting(&variable, value.get_ref())
                    .map_err(|why| self.err(value, format!("`value`: {why}")))?;
                // The two settings the checkers reason about get their own typed faults,
                // whichever way the suite spells them.
                match variable.as_str() {
                    "wait_timeout" => Fault::WaitTimeout {
                        value: Duration::from_secs(rendered.parse().map_err(|_| {
                            self.err(value, "`value`: wait_timeout is a whole number of seconds, like \"2s\" or 2")
                        })?),
                    },
                    "max_connections" => Fault::MaxConnections {
                        value: rendered.parse().map_err(|_| {
                            self.err(value, "`value`: max_connections is a whole number of connections")
                        })?,
                    },
                    // Turning read_only on is the `read_only` fault, with its attribution
                    // and evidence; turning it off is an ordinary setting.
                    "read_only"
                        if ["ON", "1", "TRUE"].contains(&rendered.to_uppercase().as_str()) =>
                    {
                        Fault::ReadOnly
                    }
                    _ => Fault::SetGlobal {
                        variable,
                        value: rendered,
                    },
                }
            }
            "max_connections" => {
                no("target", raw.target.is_some(), target_at)?;
                no("variable", raw.variable.is_some(), variable_at)?;
                let value = raw.value.as_ref().ok_or_else(|| {
                    self.err(
                        raw_kind,
                        "fault kind `max_connections` needs `value` (the server's new limit)",
                    )
                })?;
                let n = value
                    .get_ref()
                    .as_integer()
                    .filter(|n| (1..=100_000).contains(n))
                    .ok_or_else(|| {
                        self.err(
                            value,
                            "`value` must be a whole number of connections, at least 1",
                        )
                    })?;
                Fault::MaxConnections { value: n as u32 }
            }
            "failover" => {
                no("target", raw.target.is_some(), target_at)?;
                no("variable", raw.variable.is_some(), variable_at)?;
                no("value", raw.value.is_some(), value_at)?;
                if let Some(d) = &raw.duration {
                    return Err(self.err(d, "a failover is permanent: it has no `duration` (the replica stays primary to the end)"));
                }
                if server.replica.is_none() {
                    return Err(self.err(
                        raw_kind,
                        "fault `failover` needs a replica to promote: add `replica = true` to [server]",
                    ));
                }
                let stop = match raw.old_primary.as_ref().map(|o| o.get_ref().as_str()) {
                    None | Some("read_only") => false,
                    Some("stopped") => true,
                    Some(other) => {
                        let at = raw.old_primary.as_ref().expect("written");
                        return Err(self.err(at, format!("old_primary `{other}`: expected read_only (it stays up, refusing writes) or stopped (shut down)")));
                    }
                };
                let reset = raw.reset.as_ref().is_some_and(|r| *r.get_ref());
                Fault::Failover { stop, reset }
            }
            "read_only" => {
                // A window when given a duration; otherwise in force to the end, like
                // every setting.
                no("target", raw.target.is_some(), target_at)?;
                no("variable", raw.variable.is_some(), variable_at)?;
                no("value", raw.value.is_some(), value_at)?;
                Fault::ReadOnly
            }
            "crash" | "restart" | "pause" | "disconnect" => {
                no("target", raw.target.is_some(), target_at)?;
                no("variable", raw.variable.is_some(), variable_at)?;
                no("value", raw.value.is_some(), value_at)?;
                match kind {
                    "crash" => {
                        need_duration("how long the server stays down before it is started again")?;
                        Fault::Crash
                    }
                    "restart" => {
                        need_duration("how long the server stays down before it is started again")?;
                        Fault::Restart
                    }
                    "disconnect" => {
                        need_duration("how long the network stays cut")?;
                        Fault::Disconnect
                    }
                    _ => {
                        need_duration("how long the server stays frozen")?;
                        Fault::Pause
                    }
                }
            }
            network
                if network == "cut"
                    || network == "blackhole"
                    || crate::proxy::toxic::TOXIC_TYPES.contains(&network) =>
            {
                no("target", raw.target.is_some(), target_at)?;
                no("variable", raw.variable.is_some(), variable_at)?;
                no("value", raw.value.is_some(), value_at)?;
                need_duration("how long the network misbehaves")?;
                self.network(raw, raw_kind)?
            }
            other => {
                return Err(self.err(
                    raw_kind,
                    format!(
                        "unknown fault kind `{other}`; expected one of {}",
                        crate::history::FaultKind::ALL.map(|k| k.name()).join(", ")
                    ),
                ));
            }
        };
        if !matches!(fault, Fault::Failover { .. }) {
            for (field, at) in [
                (
                    "old_primary",
                    raw.old_primary.as_ref().map(|s| s.span().start),
                ),
                ("reset", raw.reset.as_ref().map(|s| s.span().start)),
            ] {
                if let Some(at) = at {
                    no(field, true, at)?;
                }
            }
        }
        // Toxic parameters belong to toxics only; a cut stops the whole proxy.
        if !matches!(fault, Fault::Toxic { .. }) {
            let toxic_params = [
                ("stream", raw.stream.as_ref().map(|s| s.span().start)),
                (
                    "attributes",
                    raw.attributes.as_ref().map(|s| s.span().start),
                ),
                ("toxicity", raw.toxicity.as_ref().map(|s| s.span().start)),
                (
                    "connections",
                    raw.connections.as_ref().map(|s| s.span().start),
                ),
            ];
            for (field, at) in toxic_params {
                if let Some(at) = at {
                    no(field, true, at)?;
                }
            }
        }
        if let Some(why) = fault.unsupported_on(server.backend) {
            return Err(self.err(
                raw_kind,
                format!(
                    "fault `{kind}` cannot run on the {} backend: {why}",
                    server.backend
                ),
            ));
        }
        let repeat = match &raw.repeat {
            Some(rs) => {
                let r = rs.get_ref();
                let (Some(every), Some(times)) = (&r.every, &r.times) else {
                    return Err(self.missing(
                        Some(rs.span()),
                        "`repeat` needs both `every` and `times`; write `repeat = { every = \"5s\", times = 2 }` (times counts the extra occurrences)",
                    ));
                };
                Some(Repeat {
                    every: every.get_ref().0,
                    times: *times.get_ref(),
                })
            }
            None => None,
        };
        if let (Some(r), Some(rs)) = (&repeat, &raw.repeat) {
            if r.times == 0 || r.every.is_zero() {
                return Err(self.err(rs, "`repeat` needs `every` > 0 and `times` >= 1 (times counts the extra occurrences)"));
            }
            // Every occurrence is planned, recorded and reported one by one.
            if r.times > MAX_REPEAT {
                return Err(self.err(rs, format!("`repeat.times` is at most {MAX_REPEAT}: every occurrence is planned and reported one by one")));
            }
            if r.every < duration.unwrap_or_default() {
                return Err(self.err(rs, "`repeat.every` is shorter than the fault's `duration`: occurrences would overlap"));
            }
        }
        let jitter = raw
            .jitter
            .as_ref()
            .map(|j| j.get_ref().0)
            .unwrap_or_default();
        let tolerate = match &raw.tolerate {
            Some(list) => self.classes(list)?,
            None => BTreeSet::new(),
        };
        let name = raw
            .name
            .as_ref()
            .map(|n| n.get_ref().clone())
            .unwrap_or_else(|| kind.to_string());
        let lasts = match duration {
            Some(d) if !d.is_zero() => Lasts::For(d),
            _ if fault.is_setting() => Lasts::UntilEnd,
            _ => Lasts::Instant,
        };
        let expect_no_effect = match &raw.effect {
            None => false,
            Some(e) if e.get_ref() == "none" => true,
            Some(e) if e.get_ref() == "some" => false,
            Some(e) => {
                return Err(self.err(
                    e,
                    format!(
                        "`effect` is \"none\" (a control that must touch nothing) or \"some\" (the default), not \"{}\"",
                        e.get_ref()
                    ),
                ));
            }
        };
        let spec = FaultSpec {
            name,
            fault,
            at,
            lasts,
            repeat,
            jitter,
            tolerate,
            expect_no_effect,
            before_pool,
        };
        let last_heal = spec.latest_heal();
        if last_heal >= workload.duration {
            return Err(self.err_at(
                Some(raw.at.as_ref().map_or(f.span().start, |a| a.span().start)),
                format!(
                    "fault `{}` may last until {} but the workload ends at {}; nothing would show whether the pool recovered (lengthen [workload] duration)",
                    spec.name,
                    humantime::format_duration(last_heal),
                    humantime::format_duration(workload.duration)
                ),
            ));
        }
        Ok(spec)
    }

    /// A network fault: `cut`, or a toxic with Toxiproxy's attribute names and units.
    fn network(&self, raw: &RawFault, raw_kind: &S<String>) -> R<Fault> {
        let kind = raw_kind.get_ref().as_str();
        use crate::proxy::{Stream, ToxicKind};
        if kind == "cut" {
            return Ok(Fault::Cut);
        }
        // The black hole swallows both ways unless told otherwise; other toxics act on
        // what the server sends back, as Toxiproxy's do by default.
        let default_stream = if kind == "blackhole" {
            "both"
        } else {
            "downstream"
        };
        let streams = match raw
            .stream
            .as_ref()
            .map_or(default_stream, |s| s.get_ref().as_str())
        {
            "upstream" => vec![Stream::Upstream],
            "downstream" => vec![Stream::Downstream],
            "both" => vec![Stream::Upstream, Stream::Downstream],
            other => {
                let at = raw
                    .stream
                    .as_ref()
                    .expect("only a written stream can be wrong");
                return Err(self.err(at, format!("stream `{other}`: expected upstream (pool -> server), downstream (server -> pool) or both")));
            }
        };
        let toxicity = match &raw.toxicity {
            Some(t) if !(0.0..=1.0).contains(t.get_ref()) => {
                return Err(self.err(
                    t,
                    "`toxicity` is the share of connections affected, from 0 to 1",
                ));
            }
            // As f32, the type the proxy keeps: 1e-50 is a zero too.
            Some(t) if *t.get_ref() as f32 == 0.0 => {
                return Err(self.err(
                    t,
                    "`toxicity = 0` affects no connection, so this fault could never fire; give the share of connections it should hit (1 = every connection, the default) or remove the fault",
                ));
            }
            Some(t) => *t.get_ref() as f32,
            None => 1.0,
        };
        let type_name = if kind == "blackhole" { "timeout" } else { kind };
        let mut toxic = ToxicKind::zero(type_name).expect("kinds listed above are toxic types");
        if let Some(attrs) = &raw.attributes {
            if kind == "blackhole" {
                return Err(self.err(attrs, "a blackhole has no attributes (it is a `timeout` toxic of 0: use kind = \"timeout\" to close after a while)"));
            }
            let json: serde_json::Map<String, serde_json::Value> = attrs
                .get_ref()
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        serde_json::to_value(v).unwrap_or(serde_json::Value::Null),
                    )
                })
                .collect();
            toxic
                .apply_attributes(&json)
                .map_err(|e| self.err(attrs, format!("`attributes`: {e}")))?;
        }
        // The attribute that defines each toxic must be given; a zero would do nothing.
        let needed = match type_name {
            "latency" => Some("latency"),
            "bandwidth" => Some("rate"),
            "slow_close" => Some("delay"),
            "slicer" => Some("average_size"),
            "limit_data" => Some("bytes"),
            _ => None,
        };
        if let Some(attr) = needed {
            let given = raw
                .attributes
                .as_ref()
                .is_some_and(|a| a.get_ref().contains_key(attr));
            if !given {
                return Err(self.err(raw_kind, format!("fault kind `{kind}` needs `attributes = {{ {attr} = ... }}` (Toxiproxy's units)")));
            }
        }
        let connections = match &raw.connections {
            None => crate::proxy::toxic::Scope::All,
            Some(c) => crate::proxy::toxic::Scope::parse(c.get_ref()).ok_or_else(|| {
                self.err(
                    c,
                    format!(
                        "connections `{}`: expected all, new (only connections opened while the fault lasts: a server that accepts TCP and never speaks) or established (only those already open)",
                        c.get_ref()
                    ),
                )
            })?,
        };
        Ok(Fault::Toxic {
            kind: toxic,
            streams,
            toxicity,
            connections,
        })
    }

    fn classes(&self, list: &S<Vec<S<String>>>) -> R<BTreeSet<ErrorClass>> {
        list.get_ref()
            .iter()
            .map(|c| {
                c.get_ref()
                    .parse::<ErrorClass>()
                    .map_err(|e| self.err(c, e))
            })
            .collect()
    }

    fn expect(&self, raw: &S<raw::RawExpect>, faults: &[FaultSpec]) -> R<Expect> {
        let e = raw.get_ref();
        let Some(raw_verdict) = &e.verdict else {
            return Err(self.missing(
                Some(raw.span()),
                "missing `verdict` in [expect]; add `verdict = \"valid\"`, or `\"invalid\"` for a negative control",
            ));
        };
        let verdict = match raw_verdict.get_ref().as_str() {
            "valid" => Expected::Valid,
            "invalid" => Expected::Invalid,
            other => {
                return Err(self.err(
                    raw_verdict,
                    format!("[expect] verdict `{other}`: expected \"valid\" or \"invalid\""),
                ));
            }
        };
        let errors = match &e.errors {
            Some(list) => self.classes(list)?,
            None => BTreeSet::new(),
        };
        if verdict == Expected::Valid && !errors.is_empty() {
            let at = e.errors.as_ref().unwrap();
            return Err(self.err(at, "[expect] errors lists classes the app must see, which contradicts verdict = \"valid\"; move them to `tolerate`"));
        }
        if verdict == Expected::Invalid && errors.is_empty() && e.failing.is_none() {
            return Err(self.err(raw_verdict, "[expect] a negative control (verdict = \"invalid\") must say what it catches: `errors = [...]` or `failing = [...]`"));
        }
        let tolerate = match &e.tolerate {
            Some(list) => self.classes(list)?,
            None => BTreeSet::new(),
        };
        let mut windows = BTreeMap::new();
        if let Some(w) = &e.windows {
            for (name, classes) in w.get_ref() {
                if !faults.iter().any(|f| &f.name == name) {
                    let names: Vec<_> = faults.iter().map(|f| f.name.as_str()).collect();
                    return Err(self.err(
                        w,
                        format!(
                            "[expect] windows: no fault named `{name}`; faults are: {}",
                            names.join(", ")
                        ),
                    ));
                }
                let set = classes
                    .iter()
                    .map(|c| {
                        c.get_ref()
                            .parse::<ErrorClass>()
                            .map_err(|e| self.err(c, e))
                    })
                    .collect::<R<BTreeSet<_>>>()?;
                windows.insert(name.clone(), set);
            }
        }
        let mut failing = BTreeSet::new();
        if let Some(list) = &e.failing {
            for c in list.get_ref() {
                if c.get_ref() == "server-connections" && e.max_server_connections.is_none() {
                    return Err(self.err(
                        c,
                        "[expect] failing: `server-connections` runs only with `max_server_connections = N` in [expect]; add it",
                    ));
                }
                if c.get_ref() == "fail-within" && e.fail_within.is_none() {
                    return Err(self.err(
                        c,
                        "[expect] failing: `fail-within` runs only with `fail_within = \"2s\"` in [expect]; add it",
                    ));
                }
                if !crate::check::CHECKS.contains(&c.get_ref().as_str()) {
                    return Err(self.err(
                        c,
                        format!(
                            "[expect] failing: unknown check `{}`; checks are {}",
                            c.get_ref(),
                            crate::check::CHECKS.join(", ")
                        ),
                    ));
                }
                failing.insert(c.get_ref().clone());
            }
        }
        let grace = e
            .grace
            .as_ref()
            .map(|g| g.get_ref().0)
            .unwrap_or(Expect::DEFAULT_GRACE);
        let min_throughput = match &e.min_throughput {
            Some(t) if !(t.get_ref().is_finite() && *t.get_ref() >= 0.0) => {
                return Err(self.err(
                    t,
                    "[expect] min_throughput must be a finite number >= 0 (successful requests per second), like 20.0",
                ));
            }
            t => t.as_ref().map(|t| *t.get_ref()),
        };
        let max_server_connections = match &e.max_server_connections {
            Some(n) if *n.get_ref() == 0 => {
                return Err(self.err(
                    n,
                    "[expect] max_server_connections must be at least 1 (the most connections the server may see from the application, the harness's own not counted)",
                ));
            }
            n => n.as_ref().map(|n| *n.get_ref()),
        };
        let fail_within = match &e.fail_within {
            Some(d) if d.get_ref().0.is_zero() => {
                return Err(self.err(
                    d,
                    "[expect] fail_within must be more than 0: how long a failing checkout or statement may take to fail",
                ));
            }
            d => d.as_ref().map(|d| d.get_ref().0),
        };
        Ok(Expect {
            verdict,
            errors,
            tolerate,
            grace,
            recover_within: e
                .recover_within
                .as_ref()
                .map(|r| r.get_ref().0)
                .unwrap_or(Expect::DEFAULT_RECOVERY),
            min_throughput,
            windows,
            failing,
            per_fault: BTreeMap::new(),
            no_effect: BTreeSet::new(),
            max_server_connections,
            fail_within,
            lost_in_failover: match &e.lost_in_failover {
                None => crate::check::LostInFailover::Forbidden,
                Some(l) => match l.get_ref().as_str() {
                    "forbidden" => crate::check::LostInFailover::Forbidden,
                    "allowed" => crate::check::LostInFailover::Allowed,
                    "expected" => crate::check::LostInFailover::Expected,
                    other => {
                        return Err(self.err(l, format!("[expect] lost_in_failover `{other}`: expected forbidden (the default), allowed or expected")));
                    }
                },
            },
        })
    }
}

/// Messages quote what the suite wrote, and a TOML string may hold any character
/// (`"lost_c\nnection"`): escape control characters so a complaint stays one line.
fn one_line(message: String) -> String {
    if !message.contains(char::is_control) {
        return message;
    }
    message
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Render one server setting as `mysqld --key=value` takes it. `*_timeout` settings may be
/// written as durations ("2s", "8h") and become whole seconds.
fn render_setting(key: &str, value: &toml::Value) -> Result<String, String> {
    match value {
        toml::Value::Integer(n) => Ok(n.to_string()),
        toml::Value::Float(f) => Ok(f.to_string()),
        toml::Value::Boolean(b) => Ok(if *b { "ON" } else { "OFF" }.to_string()),
        toml::Value::String(s) if key.ends_with("timeout") => {
            let d = humantime::parse_duration(s).map_err(|e| format!("invalid duration \"{s}\" ({e}); write it like \"2s\" or \"8h\", or as whole seconds"))?;
            if d.subsec_nanos() != 0 || d.is_zero() {
                return Err(format!(
                    "\"{s}\" is not a whole number of seconds above 0; the server counts {key} in seconds"
                ));
            }
            Ok(d.as_secs().to_string())
        }
        toml::Value::String(s) => {
            if s.chars()
                .any(|c| c.is_control() || c == '\'' || c == '"' || c == ';')
            {
                return Err(
                    "value may not contain quotes, semicolons or control characters".into(),
                );
            }
            Ok(s.clone())
        }
        _ => Err("value must be a number, a boolean or a string".into()),
    }
}

/// Byte offset of `key` inside `[table]`, for keys serde flattened without spans. A
/// dotted (`key.sub = 1`) or quoted key counts by its first part.
fn find_key(text: &str, table: &str, key: &str) -> Option<usize> {
    let mut offset = 0;
    let mut inside = false;
    for line in text.split_inclusive('\n') {
        let t = line.trim();
        if t.starts_with('[') {
            inside = t.trim_start_matches('[').trim_end_matches(']').trim() == table;
        } else if inside
            && t.split(['=', ' ', '.'])
                .next()
                .map(|k| k.trim_matches(['"', '\'']))
                == Some(key)
        {
            return Some(offset + line.len() - line.trim_start().len());
        }
        offset += line.len();
    }
    None
}

#[cfg(test)]
mod tests;
