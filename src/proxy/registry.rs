//! The proxies a server holds, and every operation the HTTP API offers on them.
//!
//! Semantics follow Toxiproxy 2.x (its README and api.go were read, not copied): status
//! codes, error messages, default toxic names, populate's create-or-replace, and
//! update's restart when `listen` or `upstream` change. Deliberate differences are
//! listed in `proxy/mod.rs`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio::sync::{Mutex, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use super::pipe::run_connection;
use super::toxic::{Chain, ChainToxic, Scope, Stream, Toxic, ToxicKind, parse_toxicity};

/// How long stopping a proxy waits for its connections to finish closing.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// An API error: Toxiproxy's `{"error": "...", "status": N}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }
    fn bad_body(detail: impl std::fmt::Display) -> Self {
        ApiError::new(400, format!("bad request body: {detail}"))
    }
    fn missing(field: &str) -> Self {
        ApiError::new(400, format!("missing required field: {field}"))
    }
    fn proxy_not_found() -> Self {
        ApiError::new(404, "proxy not found")
    }
    fn toxic_not_found() -> Self {
        ApiError::new(404, "toxic not found")
    }
    pub fn to_json(&self) -> Value {
        json!({"error": self.message, "status": self.status})
    }
}

fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_body("EOF"));
    }
    serde_json::from_slice(body).map_err(ApiError::bad_body)
}

/// Apply a toxic request body's `attributes` on top of `kind` and return its toxicity,
/// `toxicity` when the body gives none. Creation starts from the zero toxic and 1.0, an
/// update from the toxic's current values.
fn apply_body(
    obj: &Map<String, Value>,
    kind: &mut ToxicKind,
    toxicity: f32,
) -> Result<f32, ApiError> {
    match obj.get("attributes") {
        None | Some(Value::Null) => {}
        Some(Value::Object(attrs)) => kind.apply_attributes(attrs).map_err(ApiError::bad_body)?,
        Some(other) => {
            return Err(ApiError::bad_body(format!(
                "attributes must be an object, got {}",
                json_kind(other)
            )));
        }
    }
    match obj.get("toxicity") {
        None | Some(Value::Null) => Ok(toxicity),
        Some(v) => parse_toxicity(v).map_err(ApiError::bad_body),
    }
}

fn parse_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match parse_json(body)? {
        Value::Object(m) => Ok(m),
        other => Err(ApiError::bad_body(format!(
            "expected a JSON object, got {}",
            json_kind(&other)
        ))),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn get_str(obj: &Map<String, Value>, key: &str) -> Result<Option<String>, ApiError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(ApiError::bad_body(format!(
            "field {key:?} must be a string, got {}",
            json_kind(other)
        ))),
    }
}

fn get_bool(obj: &Map<String, Value>, key: &str) -> Result<Option<bool>, ApiError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(ApiError::bad_body(format!(
            "field {key:?} must be a boolean, got {}",
            json_kind(other)
        ))),
    }
}

/// Everything binds 127.0.0.1 unless told otherwise: an empty listen is a free local port.
fn default_listen(listen: Option<String>) -> String {
    listen
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| "127.0.0.1:0".to_owned())
}

/// Resolve a listen address the way Toxiproxy compares them (so `localhost:8080` and
/// `127.0.0.1:8080` are the same listen).
async fn resolve_listen(listen: &str) -> Result<String, ApiError> {
    let mut addrs = tokio::net::lookup_host(listen)
        .await
        .map_err(|e| ApiError::new(400, format!("invalid listen address {listen:?}: {e}")))?;
    addrs
        .next()
        .map(|a| a.to_string())
        .ok_or_else(|| ApiError::new(400, format!("invalid listen address {listen:?}")))
}

struct Running {
    token: CancellationToken,
    /// The accept loop; it owns the connections (a `JoinSet`) and ends only once they
    /// have all closed, so awaiting it means the proxy is fully down.
    accept: JoinHandle<()>,
}

struct ProxyState {
    name: String,
    listen: String,
    upstream: String,
    enabled: bool,
    /// In insertion order; shown upstream first, then downstream, like Toxiproxy.
    toxics: Vec<Toxic>,
    up: watch::Sender<Arc<Chain>>,
    down: watch::Sender<Arc<Chain>>,
    /// Where the accept loop sends each new connection: `upstream`, changed in place by
    /// an update with `keep_connections` (open connections keep theirs).
    route: watch::Sender<String>,
    running: Option<Running>,
}

impl ProxyState {
    fn new(name: String, listen: String, upstream: String) -> Self {
        ProxyState {
            name,
            listen,
            route: watch::Sender::new(upstream.clone()),
            upstream,
            enabled: false,
            toxics: Vec::new(),
            up: watch::Sender::new(Arc::new(Chain::default())),
            down: watch::Sender::new(Arc::new(Chain::default())),
            running: None,
        }
    }

    fn ordered_toxics(&self) -> impl Iterator<Item = &Toxic> {
        let up = self.toxics.iter().filter(|t| t.stream == Stream::Upstream);
        let down = self
            .toxics
            .iter()
            .filter(|t| t.stream == Stream::Downstream);
        up.chain(down)
    }

    fn toxics_json(&self) -> Value {
        Value::Array(self.ordered_toxics().map(Toxic::to_json).collect())
    }

    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": self.toxics_json(),
        })
    }

    fn find_toxic(&self, name: &str) -> Option<usize> {
        self.toxics.iter().position(|t| t.name == name)
    }

    /// Hand every open connection the new chains.
    fn publish(&self) {
        for (stream, tx) in [
            (Stream::Upstream, &self.up),
            (Stream::Downstream, &self.down),
        ] {
            let toxics = self
                .toxics
                .iter()
                .filter(|t| t.stream == stream)
                .map(|t| ChainToxic {
                    uid: t.uid,
                    version: t.version,
                    toxicity: t.toxicity,
                    kind: t.kind.clone(),
                    stats: t.stats.clone(),
                    scope: t.scope,
                    added: t.added,
                })
                .collect();
            tx.send_replace(Arc::new(Chain { toxics }));
        }
    }

    /// Listen and accept. The real address replaces `listen` (port 0 becomes a port, and
    /// a later re-enable listens on that same port again).
    async fn start(&mut self, root: &CancellationToken) -> Result<(), ApiError> {
        if self.running.is_some() {
            return Ok(());
        }
        let listener = TcpListener::bind(self.listen.as_str())
            .await
            .map_err(|e| ApiError::new(500, format!("listen tcp {}: bind: {e}", self.listen)))?;
        if let Ok(addr) = listener.local_addr() {
            self.listen = addr.to_string();
        }
        let token = root.child_token();
        self.route.send_replace(self.upstream.clone());
        let accept = tokio::spawn(accept_loop(
            listener,
            self.name.clone(),
            self.route.subscribe(),
            self.up.subscribe(),
            self.down.subscribe(),
            token.clone(),
        ));
        self.running = Some(Running { token, accept });
        self.enabled = true;
        Ok(())
    }

    /// Stop listening and close every connection; returns once they are closed.
    async fn stop(&mut self) {
        self.enabled = false;
        if let Some(run) = self.running.take() {
            run.token.cancel();
            let abort = run.accept.abort_handle();
            if tokio::time::timeout(STOP_WAIT, run.accept).await.is_err() {
                // Aborting the accept loop drops its JoinSet, which aborts the connections.
                tracing::warn!(proxy = %self.name, "proxy: connections slow to close; aborting them");
                abort.abort();
            }
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    name: String,
    route: watch::Receiver<String>,
    up: watch::Receiver<Arc<Chain>>,
    down: watch::Receiver<Arc<Chain>>,
    token: CancellationToken,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = token.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((client, peer)) => {
                    tracing::debug!(proxy = %name, %peer, "proxy: accepted client");
                    // Read per connection: a moved upstream takes only new ones.
                    let upstream = route.borrow().clone();
                    connections.spawn(run_connection(
                        client,
                        upstream,
                        up.clone(),
                        down.clone(),
                        token.clone(),
                    ));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(proxy = %name, error = %e, "proxy: accept failed");
                    tokio::select! {
                        _ = token.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                    }
                }
            },
        }
    }
    // New connections are refused from here on; the open ones see the cancellation.
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// All proxies of one server.
pub(crate) struct Registry {
    proxies: Mutex<BTreeMap<String, ProxyState>>,
    root: CancellationToken,
    uids: AtomicU64,
}

type ApiResult = Result<(u16, Value), ApiError>;

impl Registry {
    pub(crate) fn new(root: CancellationToken) -> Self {
        Registry {
            proxies: Mutex::new(BTreeMap::new()),
            root,
            uids: AtomicU64::new(1),
        }
    }

    fn next_uid(&self) -> u64 {
        self.uids.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) async fn list(&self) -> ApiResult {
        let proxies = self.proxies.lock().await;
        let map: Map<String, Value> = proxies
            .iter()
            .map(|(name, p)| (name.clone(), p.to_json()))
            .collect();
        Ok((200, Value::Object(map)))
    }

    pub(crate) async fn create(&self, body: &[u8]) -> ApiResult {
        let obj = parse_object(body)?;
        let name = get_str(&obj, "name")?.unwrap_or_default();
        if name.is_empty() {
            return Err(ApiError::missing("name"));
        }
        let upstream = get_str(&obj, "upstream")?.unwrap_or_default();
        if upstream.is_empty() {
            return Err(ApiError::missing("upstream"));
        }
        let listen = default_listen(get_str(&obj, "listen")?);
        let enabled = get_bool(&obj, "enabled")?.unwrap_or(true);

        let mut proxies = self.proxies.lock().await;
        if proxies.contains_key(&name) {
            return Err(ApiError::new(409, "proxy already exists"));
        }
        let mut proxy = ProxyState::new(name.clone(), listen, upstream);
        if enabled {
            proxy.start(&self.root).await?;
        }
        let shown = proxy.to_json();
        proxies.insert(name, proxy);
        Ok((201, shown))
    }

    /// Create or replace a list of proxies. On error the status is the error's and the
    /// body carries the proxies handled so far, as Toxiproxy does.
    pub(crate) async fn populate(&self, body: &[u8]) -> (u16, Value) {
        match self.populate_inner(body).await {
            Ok(shown) => (201, json!({ "proxies": shown })),
            Err((err, shown)) => {
                let mut body = err.to_json();
                body["proxies"] = Value::Array(shown);
                (err.status, body)
            }
        }
    }

    async fn populate_inner(&self, body: &[u8]) -> Result<Vec<Value>, (ApiError, Vec<Value>)> {
        let fail = |e: ApiError| (e, Vec::new());
        let items = match parse_json(body).map_err(fail)? {
            Value::Array(items) => items,
            other => {
                return Err(fail(ApiError::bad_body(format!(
                    "expected a JSON array of proxies, got {}",
                    json_kind(&other)
                ))));
            }
        };
        // Check everything before touching anything.
        let mut wanted = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let Value::Object(obj) = item else {
                return Err(fail(ApiError::bad_body(format!(
                    "proxy {} is not a JSON object",
                    i + 1
                ))));
            };
            let name = get_str(obj, "name").map_err(fail)?.unwrap_or_default();
            if name.is_empty() {
                return Err(fail(ApiError::missing(&format!("name at proxy {}", i + 1))));
            }
            let upstream = get_str(obj, "upstream").map_err(fail)?.unwrap_or_default();
            if upstream.is_empty() {
                return Err(fail(ApiError::missing(&format!(
                    "upstream at proxy {}",
                    i + 1
                ))));
            }
            let listen = default_listen(get_str(obj, "listen").map_err(fail)?);
            let enabled = get_bool(obj, "enabled").map_err(fail)?.unwrap_or(true);
            wanted.push((name, listen, upstream, enabled));
        }

        let mut proxies = self.proxies.lock().await;
        let mut shown = Vec::new();
        for (name, listen, upstream, enabled) in wanted {
            if let Some(existing) = proxies.get_mut(&name) {
                let same_listen = existing.listen == listen
                    || resolve_listen(&listen).await.ok().as_deref() == Some(&existing.listen);
                if same_listen && existing.upstream == upstream {
                    shown.push(existing.to_json());
                    continue;
                }
                existing.stop().await;
            }
            let mut proxy = ProxyState::new(name.clone(), listen, upstream);
            if enabled && let Err(e) = proxy.start(&self.root).await {
                return Err((e, shown));
            }
            shown.push(proxy.to_json());
            proxies.insert(name, proxy);
        }
        Ok(shown)
    }

    pub(crate) async fn show(&self, name: &str) -> ApiResult {
        let proxies = self.proxies.lock().await;
        let proxy = proxies.get(name).ok_or_else(ApiError::proxy_not_found)?;
        Ok((200, proxy.to_json()))
    }

    pub(crate) async fn update(&self, name: &str, body: &[u8]) -> ApiResult {
        let mut proxies = self.proxies.lock().await;
        let proxy = proxies
            .get_mut(name)
            .ok_or_else(ApiError::proxy_not_found)?;
        let obj = parse_object(body)?;
        let listen = get_str(&obj, "listen")?.filter(|l| !l.is_empty());
        let upstream = get_str(&obj, "upstream")?.filter(|u| !u.is_empty());
        let enabled = get_bool(&obj, "enabled")?.unwrap_or(proxy.enabled);
        // goneaway's extension: move the upstream for new connections only, as a moved
        // VIP or DNS name does; open connections stay where they are.
        let keep = get_bool(&obj, "keep_connections")?.unwrap_or(false);

        let listen_differs = match &listen {
            None => false,
            Some(l) if *l == proxy.listen => false,
            Some(l) => resolve_listen(l).await? != proxy.listen,
        };
        let upstream_differs = upstream.as_ref().is_some_and(|u| *u != proxy.upstream);
        if upstream_differs && keep && !listen_differs {
            let u = upstream.expect("it differs");
            proxy.route.send_replace(u.clone());
            proxy.upstream = u;
        } else if listen_differs || upstream_differs {
            // A new address or upstream restarts the proxy and drops its connections.
            proxy.stop().await;
            if let Some(l) = listen {
                proxy.listen = l;
            }
            if let Some(u) = upstream {
                proxy.upstream = u;
            }
        }
        if enabled != proxy.enabled {
            if enabled {
                proxy.start(&self.root).await?;
            } else {
                proxy.stop().await;
            }
        }
        Ok((200, proxy.to_json()))
    }

    pub(crate) async fn delete(&self, name: &str) -> ApiResult {
        let mut proxies = self.proxies.lock().await;
        let mut proxy = proxies.remove(name).ok_or_else(ApiError::proxy_not_found)?;
        proxy.stop().await;
        Ok((204, Value::Null))
    }

    pub(crate) async fn toxics(&self, name: &str) -> ApiResult {
        let proxies = self.proxies.lock().await;
        let proxy = proxies.get(name).ok_or_else(ApiError::proxy_not_found)?;
        Ok((200, proxy.toxics_json()))
    }

    pub(crate) async fn add_toxic(&self, name: &str, body: &[u8]) -> ApiResult {
        let mut proxies = self.proxies.lock().await;
        let proxy = proxies
            .get_mut(name)
            .ok_or_else(ApiError::proxy_not_found)?;
        let obj = parse_object(body)?;
        let stream_s = get_str(&obj, "stream")?.unwrap_or_else(|| "downstream".to_owned());
        let stream = Stream::parse(&stream_s).ok_or_else(|| {
            ApiError::new(
                400,
                "stream was invalid, can be either upstream or downstream",
            )
        })?;
        let type_name = get_str(&obj, "type")?.unwrap_or_default();
        let toxic_name = get_str(&obj, "name")?
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| format!("{type_name}_{}", stream.as_str()));
        let mut kind =
            ToxicKind::zero(&type_name).ok_or_else(|| ApiError::new(400, "invalid toxic type"))?;
        if proxy.find_toxic(&toxic_name).is_some() {
            return Err(ApiError::new(409, "toxic already exists"));
        }
        let toxicity = apply_body(&obj, &mut kind, 1.0)?;
        let scope = match get_str(&obj, "connections")? {
            None => Scope::All,
            Some(s) => Scope::parse(&s).ok_or_else(|| {
                ApiError::bad_body(format!(
                    "connections `{s}`: expected all, new or established"
                ))
            })?,
        };
        let uid = self.next_uid();
        let toxic = Toxic {
            name: toxic_name,
            stream,
            toxicity,
            kind,
            uid,
            version: uid,
            stats: Default::default(),
            scope,
            added: std::time::Instant::now(),
        };
        let shown = toxic.to_json();
        proxy.toxics.push(toxic);
        proxy.publish();
        // Toxiproxy answers a created toxic with 200, not 201.
        Ok((200, shown))
    }

    pub(crate) async fn show_toxic(&self, name: &str, toxic: &str) -> ApiResult {
        let proxies = self.proxies.lock().await;
        let proxy = proxies.get(name).ok_or_else(ApiError::proxy_not_found)?;
        let i = proxy
            .find_toxic(toxic)
            .ok_or_else(ApiError::toxic_not_found)?;
        Ok((200, proxy.toxics[i].to_json()))
    }

    pub(crate) async fn toxic_stats(&self, name: &str, toxic: &str) -> ApiResult {
        let proxies = self.proxies.lock().await;
        let proxy = proxies.get(name).ok_or_else(ApiError::proxy_not_found)?;
        let i = proxy
            .find_toxic(toxic)
            .ok_or_else(ApiError::toxic_not_found)?;
        Ok((200, proxy.toxics[i].stats_json()))
    }

    pub(crate) async fn update_toxic(&self, name: &str, toxic: &str, body: &[u8]) -> ApiResult {
        let mut proxies = self.proxies.lock().await;
        let proxy = proxies
            .get_mut(name)
            .ok_or_else(ApiError::proxy_not_found)?;
        let i = proxy
            .find_toxic(toxic)
            .ok_or_else(ApiError::toxic_not_found)?;
        let obj = parse_object(body)?;
        let mut kind = proxy.toxics[i].kind.clone();
        let toxicity = apply_body(&obj, &mut kind, proxy.toxics[i].toxicity)?;
        let version = self.next_uid();
        let t = &mut proxy.toxics[i];
        t.kind = kind;
        t.toxicity = toxicity;
        t.version = version;
        let shown = t.to_json();
        proxy.publish();
        Ok((200, shown))
    }

    pub(crate) async fn delete_toxic(&self, name: &str, toxic: &str) -> ApiResult {
        let mut proxies = self.proxies.lock().await;
        let proxy = proxies
            .get_mut(name)
            .ok_or_else(ApiError::proxy_not_found)?;
        let i = proxy
            .find_toxic(toxic)
            .ok_or_else(ApiError::toxic_not_found)?;
        proxy.toxics.remove(i);
        proxy.publish();
        Ok((204, Value::Null))
    }

    /// Enable every proxy and remove every toxic, in both directions.
    pub(crate) async fn reset(&self) -> ApiResult {
        let mut proxies = self.proxies.lock().await;
        for proxy in proxies.values_mut() {
            if !proxy.enabled {
                proxy.start(&self.root).await?;
            }
            proxy.toxics.clear();
            proxy.publish();
        }
        Ok((204, Value::Null))
    }

    /// Stop every proxy and wait for its connections to close.
    pub(crate) async fn stop_all(&self) {
        let mut proxies = self.proxies.lock().await;
        for proxy in proxies.values_mut() {
            proxy.stop().await;
        }
    }
}
