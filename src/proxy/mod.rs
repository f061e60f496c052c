//! The network between pool and server: a Toxiproxy-compatible proxy served by goneaway
//! itself, and a typed client that drives it (or a real Toxiproxy) through
//! `toxiproxy_rust`.
//!
//! - `pipe`: per-connection forwarding; each direction re-reads its toxic chain from a
//!   `watch` channel, so toxics added, updated or removed reach open connections.
//! - `registry`: the proxies and the API's operations on them.
//! - `api`: the HTTP API (axum), Toxiproxy 2.x paths, JSON shapes and status codes.
//! - [`server`]: [`ProxyServer`] and [`serve_forever`].
//! - [`client`]: [`client::Client`], a typed async wrapper over `toxiproxy_rust`.
//! - `bench`: passthrough throughput and latency against a direct connection (for
//!   `goneaway bench`).
//! - `testkit`: an echo upstream and a raw HTTP helper for tests and benchmarks (for the
//!   crate's own tests through `goneaway::testkit`, not part of the public API).
//!
//! Where this server deliberately differs from Toxiproxy 2.12:
//! - Removing a `timeout` toxic lets data flow again on open connections (Toxiproxy
//!   closes them). A black hole that heals is what a frozen network looks like to a
//!   pool, and the harness needs both halves; data swallowed meanwhile stays lost.
//! - Toxic attributes must be known names with non-negative integer values, and
//!   `toxicity` must lie in [0, 1]; Toxiproxy silently ignores unknown attributes.
//! - An empty `listen` means `127.0.0.1:0` (Toxiproxy: all interfaces).
//! - A client's half-close is passed on as a half-close (FIN) after its data, and
//!   replies still flow back; Toxiproxy closes the whole connection. A server's close
//!   closes the whole connection, as in Toxiproxy, so a client writing afterwards gets
//!   a reset just as on a direct connection.
//! - A created toxic is answered with 200, as Toxiproxy does (proxies: 201).
//! - No `/metrics` endpoint.
//! - An update may carry `"keep_connections": true` with a new `upstream`: only new
//!   connections go there, open ones keep their old upstream (a moved VIP or DNS
//!   name). Without it, an upstream change restarts the proxy and closes its
//!   connections, as Toxiproxy does.

mod api;
pub(crate) mod bench;
pub mod client;
mod pipe;
mod registry;
pub mod server;
pub(crate) mod testkit;
pub mod toxic;

use std::net::SocketAddr;

pub use api::API_VERSION;
pub use server::{ProxyServer, serve_forever, serve_until};
pub use toxic::{Stream, ToxicKind};

/// Errors of the embedded proxy server.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The API address could not be bound.
    #[error("cannot listen for the proxy api on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}
