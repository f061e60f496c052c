//! A typed async client for a Toxiproxy API (goneaway's embedded server or a real
//! Toxiproxy), built on `toxiproxy_rust` 0.1.6.
//!
//! Facts about `toxiproxy_rust` 0.1.6 this wrapper is shaped by:
//! - It is blocking (reqwest 0.11 blocking): building its client or making a call on a
//!   tokio worker thread panics in debug builds. Every call here runs in
//!   `spawn_blocking`, and the inner clients are built there too, lazily.
//! - Its global `TOXIPROXY` is fixed to `127.0.0.1:8474`. This wrapper never uses it:
//!   it builds its own `toxiproxy_rust::client::Client::new(addr)` for the API's
//!   socket address, so any `http://host:port` works, including a random port. What
//!   the crate cannot express is a base path, `https`, or credentials: such URLs are
//!   refused with [`ClientError::BadUrl`]. It also resolves the host once, when built.
//! - It ignores HTTP status codes for updates and deletes, and panics on a transport
//!   error while adding a toxic. The wrapper checks the proxy exists first, reads the
//!   result back, and retries an idempotent request directly to get the server's reason
//!   when a call did not take effect.
//! - It has no call for creating a proxy without replace semantics (create goes through
//!   `populate`, create-or-replace), for `reset_peer` or custom toxic names, for
//!   updating a toxic, or for removing one toxic. It has no generic toxic call either.
//!   Those few requests go straight to the same API with reqwest 0.11 blocking (the
//!   HTTP stack `toxiproxy_rust` itself uses), in the same `spawn_blocking` discipline.

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use toxiproxy_rust::proxy::ProxyPack;
use toxiproxy_rust::toxic::ToxicPack;

use super::toxic::{Scope, Stream, ToxicKind};

/// Errors of [`Client`]; every message names the proxy or toxic involved.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid toxiproxy api url {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("toxiproxy api at {url} did not answer {op}: {detail}")]
    Unreachable {
        url: String,
        op: &'static str,
        detail: String,
    },
    #[error("proxy {proxy:?} not found")]
    ProxyNotFound { proxy: String },
    #[error("toxic {toxic:?} not found on proxy {proxy:?}")]
    ToxicNotFound { proxy: String, toxic: String },
    #[error("toxic {toxic:?} already exists on proxy {proxy:?}")]
    ToxicExists { proxy: String, toxic: String },
    #[error("{op} {target} refused with http {status}: {message}")]
    Rejected {
        op: &'static str,
        target: String,
        status: u16,
        message: String,
    },
    #[error("{op} {target} failed: {detail}")]
    Failed {
        op: &'static str,
        target: String,
        detail: String,
    },
}

/// A proxy as the API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyInfo {
    pub name: String,
    /// The real listen address (a requested port 0 shows the chosen port).
    pub listen: String,
    pub upstream: String,
    pub enabled: bool,
    pub toxics: Vec<ToxicInfo>,
}

/// A toxic as the API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToxicInfo {
    pub name: String,
    pub stream: Stream,
    pub toxicity: f32,
    pub kind: ToxicKind,
}

/// A toxic to add: type and attributes, direction, toxicity, and an optional name
/// (default `<type>_<stream>`, as Toxiproxy names it).
#[derive(Debug, Clone, PartialEq)]
pub struct ToxicSpec {
    pub name: Option<String>,
    pub stream: Stream,
    pub toxicity: f32,
    pub kind: ToxicKind,
    /// Which connections it acts on (goneaway's extension; a real Toxiproxy has no such
    /// field, and adding a narrowed toxic to one is refused).
    pub connections: Scope,
}

impl ToxicSpec {
    pub fn new(stream: Stream, kind: ToxicKind) -> Self {
        ToxicSpec {
            name: None,
            stream,
            toxicity: 1.0,
            kind,
            connections: Scope::All,
        }
    }

    pub fn on_connections(mut self, scope: Scope) -> Self {
        self.connections = scope;
        self
    }

    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    pub fn with_toxicity(mut self, toxicity: f32) -> Self {
        self.toxicity = toxicity;
        self
    }

    /// The name the toxic will have on the server.
    pub fn name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| default_toxic_name(&self.kind, self.stream))
    }

    fn to_json(&self) -> Value {
        let mut v = json!({
            "name": self.name(),
            "type": self.kind.type_name(),
            "stream": self.stream.as_str(),
            "toxicity": self.toxicity,
            "attributes": self.kind.attributes_json(),
        });
        if self.connections != Scope::All {
            v["connections"] = json!(self.connections.as_str());
        }
        v
    }
}

fn default_toxic_name(kind: &ToxicKind, stream: Stream) -> String {
    format!("{}_{}", kind.type_name(), stream.as_str())
}

fn proxy_target(proxy: &str) -> String {
    format!("proxy {proxy:?}")
}

fn toxic_target(proxy: &str, toxic: &str) -> String {
    format!("toxic {toxic:?} on proxy {proxy:?}")
}

fn toxic_from_pack(pack: &ToxicPack) -> Result<ToxicInfo, String> {
    let stream = Stream::parse(&pack.stream)
        .ok_or_else(|| format!("toxic {:?} has unknown stream {:?}", pack.name, pack.stream))?;
    let mut kind = ToxicKind::zero(&pack.r#type)
        .ok_or_else(|| format!("toxic {:?} has unknown type {:?}", pack.name, pack.r#type))?;
    let attrs = pack
        .attributes
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    kind.apply_attributes(&attrs)
        .map_err(|e| format!("toxic {:?}: {e}", pack.name))?;
    Ok(ToxicInfo {
        name: pack.name.clone(),
        stream,
        toxicity: pack.toxicity,
        kind,
    })
}

fn toxic_from_json(v: &Value) -> Result<ToxicInfo, String> {
    let pack: ToxicPack =
        serde_json::from_value(v.clone()).map_err(|e| format!("unexpected toxic json: {e}"))?;
    toxic_from_pack(&pack)
}

fn proxy_from_pack(pack: &ProxyPack) -> Result<ProxyInfo, String> {
    Ok(ProxyInfo {
        name: pack.name.clone(),
        listen: pack.listen.clone(),
        upstream: pack.upstream.clone(),
        enabled: pack.enabled,
        toxics: pack
            .toxics
            .iter()
            .map(toxic_from_pack)
            .collect::<Result<_, _>>()?,
    })
}

/// The `toxiproxy_rust` helpers take attributes as `u32`.
fn fits_u32(kind: &ToxicKind) -> bool {
    kind.attributes_json().as_object().is_some_and(|m| {
        m.values()
            .all(|v| v.as_u64().is_some_and(|n| n <= u32::MAX as u64))
    })
}

struct Inner {
    url: String,
    addr: SocketAddr,
    tp: Mutex<Option<Arc<toxiproxy_rust::client::Client>>>,
    http: Mutex<Option<reqwest::blocking::Client>>,
}

impl Inner {
    /// The `toxiproxy_rust` client for this API (built on first use, on a blocking
    /// thread; rebuilt if a call panicked and poisoned its lock).
    fn tp(&self) -> Arc<toxiproxy_rust::client::Client> {
        let mut slot = self.tp.lock().unwrap_or_else(|p| p.into_inner());
        slot.get_or_insert_with(|| Arc::new(toxiproxy_rust::client::Client::new(self.addr)))
            .clone()
    }

    fn forget_tp(&self) {
        *self.tp.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    fn unreachable(&self, op: &'static str, detail: impl Into<String>) -> ClientError {
        ClientError::Unreachable {
            url: self.url.clone(),
            op,
            detail: detail.into(),
        }
    }

    /// Turn a `toxiproxy_rust` error string into a typed error.
    fn tp_err(&self, op: &'static str, target: String, detail: String) -> ClientError {
        let transport = ["GET error", "POST error", "DELETE error"]
            .iter()
            .any(|p| detail.starts_with(p));
        if transport {
            self.unreachable(op, detail)
        } else {
            ClientError::Failed { op, target, detail }
        }
    }

    /// Fetch a proxy handle through `toxiproxy_rust`, telling "no such proxy" apart
    /// from other failures.
    fn handle(
        &self,
        op: &'static str,
        proxy: &str,
    ) -> Result<toxiproxy_rust::proxy::Proxy, ClientError> {
        let tp = self.tp();
        match tp.find_proxy(proxy) {
            Ok(p) => Ok(p),
            Err(detail) => match tp.all() {
                Ok(all) if !all.contains_key(proxy) => Err(ClientError::ProxyNotFound {
                    proxy: proxy.to_owned(),
                }),
                _ => Err(self.tp_err(op, proxy_target(proxy), detail)),
            },
        }
    }

    /// A request `toxiproxy_rust` has no call for. Returns status and JSON body.
    fn raw(
        &self,
        op: &'static str,
        method: reqwest::Method,
        segments: &[&str],
        body: Option<Value>,
    ) -> Result<(u16, Value), ClientError> {
        let client = {
            let mut slot = self.http.lock().unwrap_or_else(|p| p.into_inner());
            slot.get_or_insert_with(|| {
                reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(30))
                    .build()
                    .unwrap_or_else(|_| reqwest::blocking::Client::new())
            })
            .clone()
        };
        let mut url = reqwest::Url::parse(&format!("http://{}/", self.addr))
            .map_err(|e| self.unreachable(op, e.to_string()))?;
        url.path_segments_mut()
            .map_err(|_| self.unreachable(op, "url cannot take a path"))?
            .extend(segments);
        let mut req = client
            .request(method, url)
            .header("Content-Type", "application/json");
        if let Some(body) = body {
            req = req.body(body.to_string());
        }
        let resp = req
            .send()
            .map_err(|e| self.unreachable(op, e.to_string()))?;
        let status = resp.status().as_u16();
        let text = resp
            .text()
            .map_err(|e| self.unreachable(op, e.to_string()))?;
        let value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok((status, value))
    }

    /// Map an error status from the API to a typed error.
    fn api_error(
        &self,
        op: &'static str,
        proxy: &str,
        toxic: Option<&str>,
        status: u16,
        body: &Value,
    ) -> ClientError {
        let message = body
            .get("error")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| body.to_string());
        let (p, t) = (proxy.to_owned(), toxic.map(str::to_owned));
        match (status, message.as_str(), t) {
            (404, "proxy not found", _) => ClientError::ProxyNotFound { proxy: p },
            (404, "toxic not found", Some(toxic)) => ClientError::ToxicNotFound { proxy: p, toxic },
            (409, _, Some(toxic)) => ClientError::ToxicExists { proxy: p, toxic },
            (_, _, t) => ClientError::Rejected {
                op,
                target: match t {
                    Some(t) => toxic_target(proxy, &t),
                    None => proxy_target(proxy),
                },
                status,
                message,
            },
        }
    }

    fn raw_add_toxic(&self, proxy: &str, spec: &ToxicSpec) -> Result<ToxicInfo, ClientError> {
        let name = spec.name();
        let (status, body) = self.raw(
            "add toxic",
            reqwest::Method::POST,
            &["proxies", proxy, "toxics"],
            Some(spec.to_json()),
        )?;
        if !(200..300).contains(&status) {
            return Err(self.api_error("add", proxy, Some(&name), status, &body));
        }
        // A proxy that does not know the extension acts on every connection: take the
        // toxic off again and say so, rather than test something else.
        if spec.connections != Scope::All
            && body.get("connections").and_then(Value::as_str) != Some(spec.connections.as_str())
        {
            let _ = self.raw(
                "remove toxic",
                reqwest::Method::DELETE,
                &["proxies", proxy, "toxics", &name],
                None,
            );
            return Err(ClientError::Failed {
                op: "add",
                target: toxic_target(proxy, &name),
                detail: format!(
                    "the proxy does not support `connections = \"{}\"` (goneaway's extension; a real Toxiproxy acts on every connection): use goneaway's embedded proxy",
                    spec.connections.as_str()
                ),
            });
        }
        toxic_from_json(&body).map_err(|detail| ClientError::Failed {
            op: "add",
            target: toxic_target(proxy, &name),
            detail,
        })
    }

    fn add_toxic(&self, proxy: &str, spec: &ToxicSpec) -> Result<ToxicInfo, ClientError> {
        let name = spec.name();
        let default_name = spec.name.as_deref().is_none_or(|n| n == name)
            && name == default_toxic_name(&spec.kind, spec.stream);
        let has_helper =
            !matches!(spec.kind, ToxicKind::ResetPeer { .. }) && spec.connections == Scope::All;
        if !(default_name && has_helper && fits_u32(&spec.kind)) {
            return self.raw_add_toxic(proxy, spec);
        }
        let handle = self.handle("add toxic", proxy)?;
        let existing = handle
            .toxics()
            .map_err(|d| self.tp_err("add toxic", proxy_target(proxy), d))?;
        if existing.iter().any(|t| t.name == name) {
            return Err(ClientError::ToxicExists {
                proxy: proxy.to_owned(),
                toxic: name,
            });
        }
        let stream = spec.stream.as_str().to_owned();
        let tox = spec.toxicity;
        let v = |x: u64| x as u32; // fits_u32 checked above
        let call = std::panic::catch_unwind(AssertUnwindSafe(|| match spec.kind {
            ToxicKind::Latency { latency, jitter } => {
                handle.with_latency(stream, v(latency), v(jitter), tox);
            }
            ToxicKind::Bandwidth { rate } => {
                handle.with_bandwidth(stream, v(rate), tox);
            }
            ToxicKind::SlowClose { delay } => {
                handle.with_slow_close(stream, v(delay), tox);
            }
            ToxicKind::Timeout { timeout } => {
                handle.with_timeout(stream, v(timeout), tox);
            }
            ToxicKind::Slicer {
                average_size,
                size_variation,
                delay,
            } => {
                handle.with_slicer(stream, v(average_size), v(size_variation), v(delay), tox);
            }
            ToxicKind::LimitData { bytes } => {
                handle.with_limit_data(stream, v(bytes), tox);
            }
            ToxicKind::ResetPeer { .. } => unreachable!("reset_peer goes the raw way"),
        }));
        if let Err(panic) = call {
            // toxiproxy_rust panics on a transport error and leaves its lock poisoned.
            self.forget_tp();
            let detail = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "toxiproxy_rust panicked".to_owned());
            return Err(self.unreachable("add toxic", detail));
        }
        // toxiproxy_rust ignores the status: read the toxic back to know it exists.
        let after = handle
            .toxics()
            .map_err(|d| self.tp_err("add toxic", proxy_target(proxy), d))?;
        if let Some(pack) = after.iter().find(|t| t.name == name) {
            let info = toxic_from_pack(pack).map_err(|detail| ClientError::Failed {
                op: "add",
                target: toxic_target(proxy, &name),
                detail,
            })?;
            if info.kind == spec.kind && info.stream == spec.stream {
                return Ok(info);
            }
        }
        // Not created: ask again directly (safe, nothing was created) to learn why.
        self.raw_add_toxic(proxy, spec)
    }
}

/// An async client for one Toxiproxy API.
///
/// Cheap to clone. Needs a tokio runtime (any flavour) for its calls; all blocking
/// work happens on tokio's blocking pool.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.inner.url)
            .field("addr", &self.inner.addr)
            .finish()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // The inner reqwest clients join a thread when dropped; keep that off the async
        // worker threads when we can.
        if Arc::strong_count(&self.inner) == 1
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            let inner = self.inner.clone();
            handle.spawn_blocking(move || drop(inner));
        }
    }
}

impl Client {
    /// A client for the API at `api_url`: `http://host:port` (a trailing `/` is fine;
    /// `host:port` alone is read as `http://host:port`). The host is resolved now.
    pub fn new(api_url: &str) -> Result<Client, ClientError> {
        let bad = |reason: &str| ClientError::BadUrl {
            url: api_url.to_owned(),
            reason: reason.to_owned(),
        };
        let full = if api_url.contains("://") {
            api_url.to_owned()
        } else {
            format!("http://{api_url}")
        };
        let url = url::Url::parse(&full).map_err(|e| bad(&e.to_string()))?;
        if url.scheme() != "http" {
            return Err(bad(
                "toxiproxy_rust speaks plain http only (no https or other schemes)",
            ));
        }
        if !(url.path().is_empty() || url.path() == "/")
            || url.query().is_some()
            || url.fragment().is_some()
        {
            return Err(bad(
                "toxiproxy_rust cannot address an api below a path; give only http://host:port",
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("toxiproxy_rust cannot send credentials"));
        }
        let host = url.host_str().ok_or_else(|| bad("no host"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = url.port_or_known_default().unwrap_or(80);
        // Prefer IPv4: everything here binds 127.0.0.1, and `localhost` may list ::1 first.
        let addrs: Vec<SocketAddr> = (host, port)
            .to_socket_addrs()
            .map_err(|e| bad(&format!("cannot resolve host: {e}")))?
            .collect();
        let addr = addrs
            .iter()
            .find(|a| a.is_ipv4())
            .or(addrs.first())
            .copied()
            .ok_or_else(|| bad("host resolves to no address"))?;
        Ok(Client {
            inner: Arc::new(Inner {
                url: format!("http://{addr}"),
                addr,
                tp: Mutex::new(None),
                http: Mutex::new(None),
            }),
        })
    }

    /// The API's base URL as this client uses it (`http://<resolved addr>`).
    pub fn api_url(&self) -> &str {
        &self.inner.url
    }

    async fn blocking<T: Send + 'static>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Inner) -> Result<T, ClientError> + Send + 'static,
    ) -> Result<T, ClientError> {
        tracing::debug!(api = %self.inner.url, "proxy: {op}");
        let inner = self.inner.clone();
        match tokio::task::spawn_blocking(move || f(&inner)).await {
            Ok(r) => {
                if let Err(e) = &r {
                    tracing::debug!(api = %self.inner.url, "proxy: {op} failed: {e}");
                }
                r
            }
            Err(e) => {
                self.inner.forget_tp();
                Err(self
                    .inner
                    .unreachable(op, format!("client task failed: {e}")))
            }
        }
    }

    /// The server's version string (`/version`).
    pub async fn version(&self) -> Result<String, ClientError> {
        self.blocking("version", |i| {
            let body = i
                .tp()
                .version()
                .map_err(|d| i.tp_err("version", "server".into(), d))?;
            // Toxiproxy >= 2.6 answers {"version": "..."}; older ones plain text.
            Ok(serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v.get("version").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_else(|| body.trim().to_owned()))
        })
        .await
    }

    /// Whether something accepts connections on the API's address.
    pub async fn is_running(&self) -> bool {
        self.blocking("is_running", |i| Ok(i.tp().is_running()))
            .await
            .unwrap_or(false)
    }

    /// Create a proxy (through `populate`, the only create `toxiproxy_rust` has):
    /// `listen` may use port 0, and the answer carries the real address.
    ///
    /// Populate is create-or-replace: a proxy of that name with the same listen and
    /// upstream is kept as it is, toxics included; one with a different listen or
    /// upstream is replaced (its connections close). A `listen` with port 0 never
    /// equals a bound address, so repeating the call with port 0 replaces the proxy
    /// on a new port.
    pub async fn create_proxy(
        &self,
        name: &str,
        listen: &str,
        upstream: &str,
    ) -> Result<ProxyInfo, ClientError> {
        let (name, listen, upstream) = (name.to_owned(), listen.to_owned(), upstream.to_owned());
        self.blocking("create proxy", move |i| {
            let created = i
                .tp()
                .populate(vec![ProxyPack::new(name.clone(), listen, upstream)])
                .map_err(|d| i.tp_err("create", proxy_target(&name), d))?;
            let proxy = created
                .iter()
                .find(|p| p.proxy_pack.name == name)
                .ok_or_else(|| ClientError::Failed {
                    op: "create",
                    target: proxy_target(&name),
                    detail: "the server's answer did not list the proxy".into(),
                })?;
            proxy_from_pack(&proxy.proxy_pack).map_err(|detail| ClientError::Failed {
                op: "create",
                target: proxy_target(&name),
                detail,
            })
        })
        .await
    }

    /// One proxy with its toxics.
    pub async fn proxy(&self, name: &str) -> Result<ProxyInfo, ClientError> {
        let name = name.to_owned();
        self.blocking("get proxy", move |i| {
            let h = i.handle("get", &name)?;
            proxy_from_pack(&h.proxy_pack).map_err(|detail| ClientError::Failed {
                op: "get",
                target: proxy_target(&name),
                detail,
            })
        })
        .await
    }

    /// Every proxy, sorted by name.
    pub async fn proxies(&self) -> Result<Vec<ProxyInfo>, ClientError> {
        self.blocking("list proxies", |i| {
            let all: HashMap<_, _> = i
                .tp()
                .all()
                .map_err(|d| i.tp_err("list", "proxies".into(), d))?;
            let mut out = all
                .values()
                .map(|p| proxy_from_pack(&p.proxy_pack))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|detail| ClientError::Failed {
                    op: "list",
                    target: "proxies".into(),
                    detail,
                })?;
            out.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(out)
        })
        .await
    }

    /// Delete a proxy, closing its connections.
    pub async fn delete_proxy(&self, name: &str) -> Result<(), ClientError> {
        let name = name.to_owned();
        self.blocking("delete proxy", move |i| {
            i.handle("delete", &name)?
                .delete()
                .map_err(|d| i.tp_err("delete", proxy_target(&name), d))
        })
        .await
    }

    async fn set_enabled(&self, name: &str, enabled: bool) -> Result<(), ClientError> {
        let name = name.to_owned();
        let op = if enabled { "enable" } else { "disable" };
        self.blocking(op, move |i| {
            let h = i.handle(op, &name)?;
            let r = if enabled { h.enable() } else { h.disable() };
            r.map_err(|d| i.tp_err(op, proxy_target(&name), d))?;
            // toxiproxy_rust ignores the status: check, and if it did not take, repeat
            // the (idempotent) update directly to get the server's reason.
            let now = i.handle(op, &name)?;
            if now.proxy_pack.enabled == enabled {
                return Ok(());
            }
            let (status, body) = i.raw(
                op,
                reqwest::Method::POST,
                &["proxies", &name],
                Some(json!({ "enabled": enabled })),
            )?;
            if (200..300).contains(&status) {
                Ok(())
            } else {
                Err(i.api_error(op, &name, None, status, &body))
            }
        })
        .await
    }

    /// Point a proxy at another upstream. As in Toxiproxy, the proxy restarts and its
    /// open connections are closed, unless `keep_connections` (goneaway's extension,
    /// which a real Toxiproxy ignores): then only new connections go to the new
    /// upstream and open ones stay where they are, as after a moved VIP or DNS name.
    pub async fn set_upstream(
        &self,
        name: &str,
        upstream: &str,
        keep_connections: bool,
    ) -> Result<(), ClientError> {
        let (name, upstream) = (name.to_owned(), upstream.to_owned());
        let op = "set upstream";
        self.blocking(op, move |i| {
            let (status, body) = i.raw(
                op,
                reqwest::Method::POST,
                &["proxies", &name],
                Some(json!({ "upstream": upstream, "keep_connections": keep_connections })),
            )?;
            if !(200..300).contains(&status) {
                return Err(i.api_error(op, &name, None, status, &body));
            }
            if body.get("upstream").and_then(Value::as_str) != Some(upstream.as_str()) {
                return Err(ClientError::Failed {
                    op,
                    target: proxy_target(&name),
                    detail: format!("the proxy still says upstream {}", body["upstream"]),
                });
            }
            Ok(())
        })
        .await
    }

    /// Take a proxy down: open connections are closed and new ones refused.
    pub async fn disable(&self, name: &str) -> Result<(), ClientError> {
        self.set_enabled(name, false).await
    }

    /// Bring a proxy back up on its address.
    pub async fn enable(&self, name: &str) -> Result<(), ClientError> {
        self.set_enabled(name, true).await
    }

    /// Add a toxic. Uses the `toxiproxy_rust` helper for the type when there is one and
    /// the name is the default; otherwise (reset_peer, custom names) a direct request.
    pub async fn add_toxic(&self, proxy: &str, spec: ToxicSpec) -> Result<ToxicInfo, ClientError> {
        let proxy = proxy.to_owned();
        self.blocking("add toxic", move |i| i.add_toxic(&proxy, &spec))
            .await
    }

    /// Change a toxic's attributes (those `kind` carries; its type must match) and/or
    /// toxicity. Open connections pick the change up at once.
    pub async fn update_toxic(
        &self,
        proxy: &str,
        toxic: &str,
        kind: Option<ToxicKind>,
        toxicity: Option<f32>,
    ) -> Result<ToxicInfo, ClientError> {
        let (proxy, toxic) = (proxy.to_owned(), toxic.to_owned());
        self.blocking("update toxic", move |i| {
            let mut body = serde_json::Map::new();
            if let Some(k) = &kind {
                body.insert("attributes".into(), k.attributes_json());
            }
            if let Some(t) = toxicity {
                body.insert("toxicity".into(), json!(t));
            }
            let (status, resp) = i.raw(
                "update toxic",
                reqwest::Method::POST,
                &["proxies", &proxy, "toxics", &toxic],
                Some(Value::Object(body)),
            )?;
            if !(200..300).contains(&status) {
                return Err(i.api_error("update", &proxy, Some(&toxic), status, &resp));
            }
            toxic_from_json(&resp).map_err(|detail| ClientError::Failed {
                op: "update",
                target: toxic_target(&proxy, &toxic),
                detail,
            })
        })
        .await
    }

    /// What a toxic has done so far, as goneaway's embedded proxy counts it; `None` from
    /// a proxy that does not count (a real Toxiproxy answers 404 for the call).
    pub async fn toxic_counts(
        &self,
        proxy: &str,
        toxic: &str,
    ) -> Result<Option<crate::history::ToxicCounts>, ClientError> {
        let (proxy, toxic) = (proxy.to_owned(), toxic.to_owned());
        self.blocking("read toxic stats", move |i| {
            let (status, resp) = i.raw(
                "read toxic stats",
                reqwest::Method::GET,
                &["proxies", &proxy, "toxics", &toxic, "stats"],
                None,
            )?;
            if !(200..300).contains(&status) {
                return Ok(None);
            }
            let n = |k: &str| resp.get(k).and_then(Value::as_u64);
            Ok(match (n("connections"), n("bytes"), n("events")) {
                (Some(connections), Some(bytes), Some(events)) => {
                    Some(crate::history::ToxicCounts {
                        connections,
                        bytes,
                        events,
                    })
                }
                _ => None,
            })
        })
        .await
    }

    /// Remove one toxic.
    pub async fn remove_toxic(&self, proxy: &str, toxic: &str) -> Result<(), ClientError> {
        let (proxy, toxic) = (proxy.to_owned(), toxic.to_owned());
        self.blocking("remove toxic", move |i| {
            let (status, resp) = i.raw(
                "remove toxic",
                reqwest::Method::DELETE,
                &["proxies", &proxy, "toxics", &toxic],
                None,
            )?;
            if (200..300).contains(&status) {
                Ok(())
            } else {
                Err(i.api_error("remove", &proxy, Some(&toxic), status, &resp))
            }
        })
        .await
    }

    /// Remove every toxic of one proxy.
    pub async fn remove_all_toxics(&self, proxy: &str) -> Result<(), ClientError> {
        let proxy = proxy.to_owned();
        self.blocking("remove toxics", move |i| {
            i.handle("remove toxics of", &proxy)?
                .delete_all_toxics()
                .map_err(|d| i.tp_err("remove toxics of", proxy_target(&proxy), d))
        })
        .await
    }

    /// The toxics of one proxy, upstream first.
    pub async fn toxics(&self, proxy: &str) -> Result<Vec<ToxicInfo>, ClientError> {
        let proxy = proxy.to_owned();
        self.blocking("list toxics", move |i| {
            let packs = i
                .handle("list toxics of", &proxy)?
                .toxics()
                .map_err(|d| i.tp_err("list toxics of", proxy_target(&proxy), d))?;
            packs
                .iter()
                .map(toxic_from_pack)
                .collect::<Result<_, _>>()
                .map_err(|detail| ClientError::Failed {
                    op: "list toxics of",
                    target: proxy_target(&proxy),
                    detail,
                })
        })
        .await
    }

    /// Enable every proxy and remove every toxic.
    pub async fn reset(&self) -> Result<(), ClientError> {
        self.blocking("reset", |i| {
            let tp = i.tp();
            tp.reset()
                .map_err(|d| i.tp_err("reset", "all proxies".into(), d))?;
            // toxiproxy_rust ignores the status; check, and repeat directly for the reason.
            let all = tp
                .all()
                .map_err(|d| i.tp_err("reset", "all proxies".into(), d))?;
            if all
                .values()
                .all(|p| p.proxy_pack.enabled && p.proxy_pack.toxics.is_empty())
            {
                return Ok(());
            }
            let (status, body) = i.raw("reset", reqwest::Method::POST, &["reset"], None)?;
            if (200..300).contains(&status) {
                Ok(())
            } else {
                Err(i.api_error("reset", "(all)", None, status, &body))
            }
        })
        .await
    }
}
