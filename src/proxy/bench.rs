//! What the proxy costs with no toxics: throughput and round-trip latency through it,
//! compared with the same echo workload connected directly.
//!
//! The numbers belong in reports and benchmarks, never in pass/fail asserts (they
//! depend on the machine and its load).

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::ProxyServer;
use super::testkit::{EchoServer, raw_http};

/// How much work one benchmark run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BenchOptions {
    /// Bytes echoed through one connection for the throughput figure.
    pub bulk_bytes: usize,
    /// Round trips of `ping_size` bytes for the latency figure.
    pub pings: usize,
    pub ping_size: usize,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            bulk_bytes: 64 * 1024 * 1024,
            pings: 2000,
            ping_size: 64,
        }
    }
}

/// Direct vs proxied, on the same echo server.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BenchReport {
    /// Echoed bytes per second (each byte crosses the link twice).
    pub direct_bytes_per_sec: f64,
    pub proxied_bytes_per_sec: f64,
    /// proxied / direct throughput (1.0 = free; lower = the proxy slows bulk data).
    pub throughput_ratio: f64,
    pub direct_p50: Duration,
    pub proxied_p50: Duration,
    /// proxied p50 - direct p50 (saturating at zero).
    pub added_p50: Duration,
    /// proxied p50 / direct p50 (1.0 = free).
    pub latency_ratio: f64,
}

fn bench_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("proxy benchmark: {e}"))
}

async fn bulk(addr: SocketAddr, bytes: usize) -> io::Result<Duration> {
    let sock = TcpStream::connect(addr).await?;
    sock.set_nodelay(true)?;
    let (mut r, mut w) = sock.into_split();
    let block = vec![0x5au8; 64 * 1024];
    let start = Instant::now();
    let write = async {
        let mut left = bytes;
        while left > 0 {
            let n = left.min(block.len());
            w.write_all(&block[..n]).await?;
            left -= n;
        }
        w.shutdown().await
    };
    let read = async {
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = 0usize;
        loop {
            let n = r.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            got += n;
        }
        Ok::<_, io::Error>(got)
    };
    let (w, got) = tokio::join!(write, read);
    w?;
    let got = got?;
    if got != bytes {
        return Err(bench_err(format!("echoed {got} of {bytes} bytes")));
    }
    Ok(start.elapsed())
}

async fn p50_round_trip(addr: SocketAddr, pings: usize, size: usize) -> io::Result<Duration> {
    let mut sock = TcpStream::connect(addr).await?;
    sock.set_nodelay(true)?;
    let msg = vec![0xa5u8; size.max(1)];
    let mut buf = vec![0u8; msg.len()];
    let mut times = Vec::with_capacity(pings.max(1));
    for _ in 0..pings.max(1) {
        let start = Instant::now();
        sock.write_all(&msg).await?;
        sock.read_exact(&mut buf).await?;
        times.push(start.elapsed());
    }
    times.sort();
    Ok(times[times.len() / 2])
}

/// Measure the proxy with no toxics against a direct connection to a local echo server.
/// Starts (and stops) its own echo server and proxy server on 127.0.0.1.
pub async fn bench_passthrough(opts: BenchOptions) -> io::Result<BenchReport> {
    let echo = EchoServer::start().await?;
    let server = ProxyServer::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .map_err(bench_err)?;
    let body =
        json!({"name": "bench", "listen": "127.0.0.1:0", "upstream": echo.addr().to_string()});
    let (status, created) =
        raw_http(server.addr(), "POST", "/proxies", Some(&body.to_string())).await?;
    if status != 201 {
        return Err(bench_err(format!(
            "creating the proxy: http {status}: {created}"
        )));
    }
    let created: Value = serde_json::from_str(&created).map_err(bench_err)?;
    let proxied: SocketAddr = created["listen"]
        .as_str()
        .and_then(|l| l.parse().ok())
        .ok_or_else(|| bench_err(format!("no listen address in {created}")))?;
    let direct = echo.addr();

    // Warm both paths once, then measure; alternate to spread machine noise evenly.
    bulk(direct, 1 << 20).await?;
    bulk(proxied, 1 << 20).await?;
    let direct_bulk = bulk(direct, opts.bulk_bytes).await?;
    let proxied_bulk = bulk(proxied, opts.bulk_bytes).await?;
    let direct_p50 = p50_round_trip(direct, opts.pings, opts.ping_size).await?;
    let proxied_p50 = p50_round_trip(proxied, opts.pings, opts.ping_size).await?;

    server.shutdown().await;
    echo.shutdown().await;

    let rate = |d: Duration| opts.bulk_bytes as f64 / d.as_secs_f64().max(1e-9);
    let (direct_rate, proxied_rate) = (rate(direct_bulk), rate(proxied_bulk));
    Ok(BenchReport {
        direct_bytes_per_sec: direct_rate,
        proxied_bytes_per_sec: proxied_rate,
        throughput_ratio: proxied_rate / direct_rate,
        direct_p50,
        proxied_p50,
        added_p50: proxied_p50.saturating_sub(direct_p50),
        latency_ratio: proxied_p50.as_secs_f64() / direct_p50.as_secs_f64().max(1e-9),
    })
}
