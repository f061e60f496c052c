//! Small helpers for exercising the proxy: an echo upstream and a raw HTTP request.
//! Used by the proxy's tests and by [`super::bench`].

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

/// A TCP echo server on 127.0.0.1: every byte received is sent back; a half-close is
/// answered with a close once everything has been echoed. Dropping it stops it.
pub struct EchoServer {
    addr: SocketAddr,
    token: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl EchoServer {
    pub async fn start() -> io::Result<EchoServer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let token = CancellationToken::new();
        let t = token.clone();
        let task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                tokio::select! {
                    _ = t.cancelled() => break,
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                    accepted = listener.accept() => {
                        let Ok((mut sock, _)) = accepted else { continue };
                        let t = t.clone();
                        conns.spawn(async move {
                            let _ = sock.set_nodelay(true);
                            let (mut r, mut w) = sock.split();
                            tokio::select! {
                                _ = t.cancelled() => {}
                                _ = tokio::io::copy(&mut r, &mut w) => {
                                    let _ = w.shutdown().await;
                                }
                            }
                        });
                    }
                }
            }
            drop(listener);
            while conns.join_next().await.is_some() {}
        });
        Ok(EchoServer {
            addr,
            token,
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop and wait until every echo connection is closed.
    pub async fn shutdown(mut self) {
        self.token.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

/// One HTTP/1.1 request with `Connection: close`; returns the status and the body.
/// Deliberately minimal (no chunked decoding): enough to send requests a typed client
/// refuses to build, such as malformed JSON.
pub async fn raw_http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> io::Result<(u16, String)> {
    let mut sock = TcpStream::connect(addr).await?;
    let body = body.unwrap_or("");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: goneaway-testkit\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    sock.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    sock.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, format!("no status in {head:?}"))
        })?;
    Ok((status, body.to_owned()))
}
