//! The embedded Toxiproxy-compatible server: the HTTP API plus every proxy it creates.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::ProxyError;
use super::api;
use super::registry::Registry;

/// How long a graceful shutdown waits for the HTTP API to finish its requests.
const API_SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// A running Toxiproxy-compatible server: the HTTP API on [`ProxyServer::addr`] and the
/// proxies created through it.
///
/// [`ProxyServer::shutdown`] stops everything and returns once every listener and
/// connection is closed. Dropping the server instead cancels everything at once: the
/// listeners and connections close within moments, on the runtime's next turn (drop is
/// synchronous and cannot wait for that).
pub struct ProxyServer {
    addr: SocketAddr,
    registry: Arc<Registry>,
    root: CancellationToken,
    api: Option<JoinHandle<()>>,
}

impl ProxyServer {
    /// Start the API on `listen` (port 0 picks a free port; see [`ProxyServer::addr`]).
    /// Must be called inside a tokio runtime, which then runs the API and the proxies.
    pub async fn start(listen: SocketAddr) -> Result<ProxyServer, ProxyError> {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| ProxyError::Bind {
                addr: listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| ProxyError::Bind {
            addr: listen,
            source,
        })?;
        let root = CancellationToken::new();
        let registry = Arc::new(Registry::new(root.clone()));
        let app = api::router(registry.clone());
        let stop = root.clone().cancelled_owned();
        let api = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
            {
                tracing::warn!(error = %e, "proxy api server ended with an error");
            }
        });
        tracing::debug!(%addr, "proxy api listening");
        Ok(ProxyServer {
            addr,
            registry,
            root,
            api: Some(api),
        })
    }

    /// The address the API listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API's base URL, e.g. `http://127.0.0.1:8474`, for [`super::client::Client::new`].
    pub fn api_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop the API and every proxy; returns once their listeners and connections are
    /// closed.
    pub async fn shutdown(mut self) {
        self.root.cancel();
        self.registry.stop_all().await;
        if let Some(api) = self.api.take() {
            let abort = api.abort_handle();
            if tokio::time::timeout(API_SHUTDOWN_WAIT, api).await.is_err() {
                abort.abort();
            }
        }
    }
}

impl Drop for ProxyServer {
    fn drop(&mut self) {
        // Cancelling stops every accept loop (listeners close, connections close) and
        // starts the API's graceful shutdown, which closes its listener and idle
        // keep-alive connections; none of it needs this handle any more.
        self.root.cancel();
    }
}

impl std::fmt::Debug for ProxyServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Serve the API on `listen` until `stop` completes, then shut down gracefully.
pub async fn serve_until(
    listen: SocketAddr,
    stop: impl Future<Output = ()>,
) -> Result<(), ProxyError> {
    let server = ProxyServer::start(listen).await?;
    tracing::info!(api = %server.api_url(), "toxiproxy-compatible api listening");
    stop.await;
    server.shutdown().await;
    Ok(())
}

/// Serve the API on `listen` until Ctrl-C or SIGTERM: what `goneaway proxy --listen`
/// runs. Every proxy and connection is closed before this returns.
pub async fn serve_forever(listen: SocketAddr) -> Result<(), ProxyError> {
    serve_until(listen, shutdown_signal()).await
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
