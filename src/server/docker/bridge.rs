//! A bridge to Docker engines older than the API testcontainers speaks.
//!
//! testcontainers 0.28 sends every request at Docker API 1.53 (bollard's default; it
//! never negotiates), and engines before Docker 29 refuse that with "client version 1.53
//! is too new" — Debian 12's docker.io 20.10 speaks 1.41. When the engine is older,
//! goneaway serves a private unix socket that passes each request on to the engine with
//! the version in its path lowered to the engine's, and points testcontainers at it.
//! A current engine gets no bridge.
//!
//! **What it changes in the process.** The only way to choose testcontainers' daemon is
//! the `DOCKER_HOST` environment variable, read each time its client is created. So on an
//! engine older than API 1.53, and only there, the first docker server of the process sets
//! `DOCKER_HOST=unix://<private temp dir>/docker.sock` for the rest of the process's life
//! (the socket's dir is removed at exit, or by the next run's sweep after a kill). Anything
//! else in the process that reads `DOCKER_HOST` afterwards talks to the engine through the
//! bridge too, which relays every request and only lowers the version in its path. On a
//! current engine nothing is set. goneaway's own bollard client keeps talking to the
//! engine directly ([`engine_host`]).
//!
//! **Opting out.** `GONEAWAY_DOCKER_BRIDGE=0` ([`BRIDGE_ENV`]) leaves the environment
//! alone. The consequence: on an engine older than API 1.53 the docker backend cannot
//! create containers, and starting one fails with [`DockerError::BridgeOff`] saying so; on a
//! current engine it changes nothing.
//!
//! Each request gets `Connection: close` so that one connection carries one request and
//! only request heads need reading; after the head, bytes flow both ways untouched
//! (bodies, streamed logs, upgraded exec sessions).

use std::io;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use bollard::{API_DEFAULT_VERSION, Docker};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixListener, UnixStream};

use super::error::DockerError;
use crate::server::ServerError;
use crate::server::shared::{check_socket_path, private_tempdir};

/// The longest request head relayed; Docker's own requests are a few hundred bytes.
const MAX_HEAD: usize = 64 * 1024;

/// Set to `0` to keep goneaway from starting the bridge and setting `DOCKER_HOST`.
pub const BRIDGE_ENV: &str = "GONEAWAY_DOCKER_BRIDGE";

/// `(bridge URL, engine host)` once the bridge runs.
static BRIDGED: OnceLock<(String, String)> = OnceLock::new();

/// The daemon as this process was told to find it: `DOCKER_HOST` (or Docker's default
/// socket), seen through the bridge when `DOCKER_HOST` is the bridge.
pub fn engine_host() -> String {
    let current = std::env::var("DOCKER_HOST")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .unwrap_or_else(|| "unix:///var/run/docker.sock".into());
    match BRIDGED.get() {
        Some((bridge, engine)) if *bridge == current => engine.clone(),
        _ => current,
    }
}

/// Make testcontainers able to talk to the engine `docker` is connected to (negotiated):
/// nothing for an engine that speaks testcontainers' API version, else start the bridge
/// and point `DOCKER_HOST` at it, unless [`BRIDGE_ENV`] is `0`. Idempotent; the bridge
/// lives as long as the process.
pub async fn ensure(docker: &Docker) -> Result<(), ServerError> {
    static DONE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    DONE.get_or_try_init(|| async {
        let engine = docker.client_version();
        if engine >= *API_DEFAULT_VERSION {
            return Ok(());
        }
        let host = engine_host();
        if std::env::var(BRIDGE_ENV).is_ok_and(|v| v.trim() == "0") {
            return Err(DockerError::BridgeOff {
                host,
                engine: engine.to_string(),
                needed: API_DEFAULT_VERSION.to_string(),
                env: BRIDGE_ENV,
            }
            .into());
        }
        let upstream = Upstream::parse(&host)?;
        let socket = start(upstream, (engine.major_version, engine.minor_version))?;
        let url = format!("unix://{}", socket.display());
        tracing::debug!(
            "docker engine speaks API {engine}, testcontainers {API_DEFAULT_VERSION}; \
             bridging through {url}"
        );
        let _ = BRIDGED.set((url.clone(), host));
        // SAFETY: set once per process (the OnceCell), before goneaway's first
        // testcontainers call. std serialises its own reads of the environment; no code
        // of goneaway's reads it through libc on another thread.
        unsafe { std::env::set_var("DOCKER_HOST", &url) };
        Ok(())
    })
    .await
    .map(|_| ())
}

/// Where the engine listens.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Upstream {
    Unix(PathBuf),
    Tcp(String),
}

impl Upstream {
    fn parse(host: &str) -> Result<Upstream, ServerError> {
        if let Some(path) = host.strip_prefix("unix://") {
            Ok(Upstream::Unix(PathBuf::from(path)))
        } else if let Some(addr) = host
            .strip_prefix("tcp://")
            .or_else(|| host.strip_prefix("http://"))
        {
            Ok(Upstream::Tcp(addr.trim_end_matches('/').to_string()))
        } else {
            Err(DockerError::Unbridgeable {
                host: host.to_string(),
                needed: API_DEFAULT_VERSION.to_string(),
            }
            .into())
        }
    }

    async fn relay(&self, client: UnixStream, head: Vec<u8>) -> io::Result<()> {
        match self {
            Upstream::Unix(path) => pipe(client, UnixStream::connect(path).await?, head).await,
            Upstream::Tcp(addr) => pipe(client, TcpStream::connect(addr).await?, head).await,
        }
    }
}

/// Bind the bridge's socket in a private temp dir and serve it on a thread of its own
/// (a test's runtime ends with the test; the bridge must not).
fn start(upstream: Upstream, engine: (usize, usize)) -> Result<PathBuf, ServerError> {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    // Removed at exit by `remove_dir`, after a kill by the process backend's sweep.
    let dir = private_tempdir()?.keep();
    let _ = DIR.set(dir.clone());
    extern "C" fn remove_dir() {
        if let Some(dir) = DIR.get() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    // SAFETY: registers a plain function that only removes a directory.
    unsafe { libc::atexit(remove_dir) };

    let path = dir.join("docker.sock");
    check_socket_path(&path, "the docker bridge")?;
    let std_listener = std::os::unix::net::UnixListener::bind(&path)
        .map_err(|e| ServerError::io(format!("binding {}", path.display()), e))?;
    std_listener
        .set_nonblocking(true)
        .map_err(|e| ServerError::io(format!("configuring {}", path.display()), e))?;
    std::thread::Builder::new()
        .name("goneaway-docker-bridge".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => return tracing::warn!("docker bridge: no runtime: {e}"),
            };
            runtime.block_on(serve(std_listener, upstream, engine));
        })
        .map_err(|e| ServerError::io("starting the docker bridge thread", e))?;
    Ok(path)
}

async fn serve(
    listener: std::os::unix::net::UnixListener,
    upstream: Upstream,
    engine: (usize, usize),
) {
    let listener = match UnixListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => return tracing::warn!("docker bridge: {e}"),
    };
    loop {
        let client = match listener.accept().await {
            Ok((client, _)) => client,
            Err(e) => {
                // Out of descriptors, say: wait instead of spinning.
                tracing::warn!("docker bridge: accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let upstream = upstream.clone();
        tokio::spawn(async move {
            if let Err(e) = bridge_one(client, &upstream, engine).await {
                tracing::debug!("docker bridge: {e}");
            }
        });
    }
}

async fn bridge_one(
    mut client: UnixStream,
    upstream: &Upstream,
    engine: (usize, usize),
) -> io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_HEAD {
            return Err(io::Error::other("request head over 64 KiB"));
        }
        if client.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
    };
    let mut head = rewrite_head(&buf[..end], engine);
    // Body bytes that came with the head.
    head.extend_from_slice(&buf[end..]);
    upstream.relay(client, head).await
}

async fn pipe(
    mut client: UnixStream,
    mut server: impl AsyncRead + AsyncWrite + Unpin,
    head: Vec<u8>,
) -> io::Result<()> {
    server.write_all(&head).await?;
    tokio::io::copy_bidirectional(&mut client, &mut server).await?;
    Ok(())
}

/// The request head with a too-new API version in its path lowered to `engine`, and
/// `Connection: close` unless it asks for an upgrade (exec and attach hijack the
/// connection; it is not reused either way).
fn rewrite_head(head: &[u8], engine: (usize, usize)) -> Vec<u8> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut out = String::with_capacity(head.len() + 32);
    out.push_str(&rewrite_request_line(request_line, engine));
    out.push_str("\r\n");
    let mut upgrade = false;
    for line in lines.filter(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            out.push_str(line);
            out.push_str("\r\n");
            continue;
        };
        if name.trim().eq_ignore_ascii_case("connection") {
            if value.to_ascii_lowercase().contains("upgrade") {
                upgrade = true;
            } else {
                continue;
            }
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    if !upgrade {
        out.push_str("Connection: close\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// `GET /v1.53/containers/json HTTP/1.1` → `GET /v1.41/containers/json HTTP/1.1` on a
/// 1.41 engine; an unversioned or old-enough path is left alone.
fn rewrite_request_line(line: &str, engine: (usize, usize)) -> String {
    let mut parts = line.splitn(3, ' ');
    let (Some(method), Some(target), Some(protocol)) = (parts.next(), parts.next(), parts.next())
    else {
        return line.to_string();
    };
    let Some(rest) = target.strip_prefix("/v") else {
        return line.to_string();
    };
    let Some((version, tail)) = rest.split_once('/') else {
        return line.to_string();
    };
    let Some((major, minor)) = version
        .split_once('.')
        .and_then(|(a, b)| Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?)))
    else {
        return line.to_string();
    };
    if (major, minor) <= engine {
        return line.to_string();
    }
    format!("{method} /v{}.{}/{tail} {protocol}", engine.0, engine.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in engine: answers each connection's first request with its request head,
    /// then the body it was sent, and closes.
    async fn echo_engine(listener: UnixListener) {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let end = loop {
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    if conn.read_buf(&mut buf).await.unwrap() == 0 {
                        return;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..end]).to_string();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .map_or(0, |n| n.trim().parse().unwrap());
                while buf.len() < end + length {
                    conn.read_buf(&mut buf).await.unwrap();
                }
                let body = format!("{head}{}", String::from_utf8_lossy(&buf[end..]));
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                conn.write_all(reply.as_bytes()).await.unwrap();
            });
        }
    }

    #[tokio::test]
    async fn requests_reach_the_engine_lowered_and_replies_come_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let engine_path = dir.path().join("engine.sock");
        tokio::spawn(echo_engine(UnixListener::bind(&engine_path).unwrap()));
        let bridge_path = dir.path().join("bridge.sock");
        let listener = std::os::unix::net::UnixListener::bind(&bridge_path).unwrap();
        listener.set_nonblocking(true).unwrap();
        tokio::spawn(serve(listener, Upstream::Unix(engine_path), (1, 41)));

        let body = "x".repeat(100_000);
        let mut conn = UnixStream::connect(&bridge_path).await.unwrap();
        let request = format!(
            "POST /v1.53/containers/create HTTP/1.1\r\nHost: docker\r\n\
             Connection: keep-alive\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        conn.write_all(request.as_bytes()).await.unwrap();
        let mut reply = String::new();
        tokio::time::timeout(Duration::from_secs(10), conn.read_to_string(&mut reply))
            .await
            .expect("the bridge closes after one request")
            .unwrap();
        let (head, echoed) = reply.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
        assert!(
            echoed.starts_with("POST /v1.41/containers/create HTTP/1.1\r\n"),
            "{echoed:.200}"
        );
        assert!(echoed.contains("Connection: close\r\n"), "{echoed:.200}");
        assert!(!echoed.contains("keep-alive"), "{echoed:.200}");
        assert!(
            echoed.ends_with(&format!("\r\n\r\n{body}")),
            "the body arrives whole"
        );
    }

    #[test]
    fn a_newer_version_is_lowered_to_the_engines() {
        assert_eq!(
            rewrite_request_line("GET /v1.53/containers/json?all=1 HTTP/1.1", (1, 41)),
            "GET /v1.41/containers/json?all=1 HTTP/1.1"
        );
        assert_eq!(
            rewrite_request_line("POST /v2.0/x HTTP/1.1", (1, 41)),
            "POST /v1.41/x HTTP/1.1"
        );
    }

    #[test]
    fn older_and_unversioned_paths_are_left_alone() {
        for line in [
            "GET /v1.41/info HTTP/1.1",
            "GET /v1.24/info HTTP/1.1",
            "GET /_ping HTTP/1.1",
            "GET /version HTTP/1.1",
            "GET /vfoo/bar HTTP/1.1",
            "garbage",
        ] {
            assert_eq!(rewrite_request_line(line, (1, 41)), line);
        }
    }

    #[test]
    fn heads_get_connection_close_once() {
        let head = b"POST /v1.53/containers/create?name=a HTTP/1.1\r\nHost: docker\r\n\
                     connection: keep-alive\r\nContent-Length: 2\r\n\r\n";
        let out = String::from_utf8(rewrite_head(head, (1, 41))).unwrap();
        assert_eq!(
            out,
            "POST /v1.41/containers/create?name=a HTTP/1.1\r\nHost: docker\r\n\
             Content-Length: 2\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn upgrades_keep_their_connection_header() {
        let head = b"POST /v1.53/exec/x/start HTTP/1.1\r\nConnection: Upgrade\r\n\
                     Upgrade: tcp\r\n\r\n";
        let out = String::from_utf8(rewrite_head(head, (1, 41))).unwrap();
        assert_eq!(
            out,
            "POST /v1.41/exec/x/start HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
        );
    }

    #[test]
    fn hosts_parse() {
        assert_eq!(
            Upstream::parse("unix:///var/run/docker.sock").unwrap(),
            Upstream::Unix("/var/run/docker.sock".into())
        );
        assert_eq!(
            Upstream::parse("tcp://127.0.0.1:2375").unwrap(),
            Upstream::Tcp("127.0.0.1:2375".into())
        );
        assert!(Upstream::parse("npipe:////./pipe/docker_engine").is_err());
    }
}
