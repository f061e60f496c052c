//! The embedded proxy forwards bytes exactly, and toxics change connections that are
//! already open. Driven through `goneaway::proxy::client::Client` (toxiproxy_rust
//! underneath) against a local echo server. Timing asserts are generous bounds only.

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use goneaway::proxy::client::{Client, ProxyInfo, ToxicSpec};
use goneaway::proxy::{ProxyServer, Stream, ToxicKind};
use goneaway::testkit::{EchoServer, raw_http};
use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const GENEROUS: Duration = Duration::from_secs(10);

struct Rig {
    server: ProxyServer,
    echo: EchoServer,
    client: Client,
    proxy: ProxyInfo,
}

async fn rig() -> Rig {
    let server = ProxyServer::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let echo = EchoServer::start().await.unwrap();
    let client = Client::new(&server.api_url()).unwrap();
    let proxy = client
        .create_proxy("echo", "127.0.0.1:0", &echo.addr().to_string())
        .await
        .unwrap();
    assert!(proxy.listen.starts_with("127.0.0.1:"));
    assert!(!proxy.listen.ends_with(":0"), "port 0 must be replaced");
    Rig {
        server,
        echo,
        client,
        proxy,
    }
}

impl Rig {
    async fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(&self.proxy.listen).await.unwrap();
        s.set_nodelay(true).unwrap();
        s
    }

    async fn add(&self, spec: ToxicSpec) {
        self.client.add_toxic("echo", spec).await.unwrap();
    }

    async fn shutdown(self) {
        self.server.shutdown().await;
        self.echo.shutdown().await;
    }
}

/// Send `msg` and read the same number of bytes back; returns the reply and the time.
async fn round_trip(s: &mut TcpStream, msg: &[u8]) -> (Vec<u8>, Duration) {
    let start = Instant::now();
    s.write_all(msg).await.unwrap();
    let mut buf = vec![0u8; msg.len()];
    tokio::time::timeout(GENEROUS, s.read_exact(&mut buf))
        .await
        .expect("round trip timed out")
        .unwrap();
    (buf, start.elapsed())
}

/// Write everything, half-close, and read until EOF, concurrently.
async fn echo_all(s: TcpStream, payload: &[u8]) -> Vec<u8> {
    let (mut r, mut w) = s.into_split();
    let write = async {
        w.write_all(payload).await.unwrap();
        w.shutdown().await.unwrap();
    };
    let read = async {
        let mut got = Vec::with_capacity(payload.len());
        r.read_to_end(&mut got).await.unwrap();
        got
    };
    let ((), got) =
        tokio::time::timeout(Duration::from_secs(60), async { tokio::join!(write, read) })
            .await
            .expect("echo through the proxy timed out");
    got
}

fn latency(ms: u64) -> ToxicKind {
    ToxicKind::Latency {
        latency: ms,
        jitter: 0,
    }
}

#[tokio::test]
async fn passthrough_is_byte_exact() {
    let rig = rig().await;
    let payload: Vec<u8> = (0..300_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    let got = echo_all(rig.connect().await, &payload).await;
    assert!(
        got == payload,
        "echo differs: {} vs {} bytes",
        got.len(),
        payload.len()
    );
    rig.shutdown().await;
}

#[tokio::test]
async fn a_toxic_added_to_an_open_connection_changes_it_and_removing_heals_it() {
    let rig = rig().await;
    let mut conn = rig.connect().await;
    let (reply, before) = round_trip(&mut conn, b"ping").await;
    assert_eq!(reply, b"ping");
    assert!(before < Duration::from_secs(1), "no toxic yet: {before:?}");

    rig.add(ToxicSpec::new(Stream::Downstream, latency(1500)))
        .await;
    let (reply, slowed) = round_trip(&mut conn, b"pong").await;
    assert_eq!(reply, b"pong");
    assert!(
        slowed >= Duration::from_millis(1400),
        "latency not applied: {slowed:?}"
    );

    rig.client
        .remove_toxic("echo", "latency_downstream")
        .await
        .unwrap();
    let (reply, after) = round_trip(&mut conn, b"pang").await;
    assert_eq!(reply, b"pang");
    assert!(
        after < Duration::from_secs(1),
        "latency not removed: {after:?}"
    );
    rig.shutdown().await;
}

#[tokio::test]
async fn updating_a_toxic_reaches_an_open_connection() {
    let rig = rig().await;
    let mut conn = rig.connect().await;
    rig.add(ToxicSpec::new(Stream::Upstream, latency(1))).await;
    let (_, fast) = round_trip(&mut conn, b"a").await;
    assert!(fast < Duration::from_secs(1), "{fast:?}");
    let updated = rig
        .client
        .update_toxic("echo", "latency_upstream", Some(latency(1500)), None)
        .await
        .unwrap();
    assert_eq!(updated.kind, latency(1500));
    let (_, slow) = round_trip(&mut conn, b"b").await;
    assert!(
        slow >= Duration::from_millis(1400),
        "update not applied: {slow:?}"
    );
    rig.shutdown().await;
}

#[tokio::test]
async fn black_hole_swallows_data_and_removing_it_lets_data_flow_again() {
    for stream in [Stream::Upstream, Stream::Downstream] {
        let rig = rig().await;
        let mut conn = rig.connect().await;
        assert_eq!(round_trip(&mut conn, b"warm").await.0, b"warm");

        rig.add(ToxicSpec::new(stream, ToxicKind::Timeout { timeout: 0 }))
            .await;
        conn.write_all(b"lost").await.unwrap();
        let mut buf = [0u8; 16];
        let r = tokio::time::timeout(Duration::from_millis(700), conn.read(&mut buf)).await;
        assert!(
            r.is_err(),
            "{stream:?}: the black hole let data through: {r:?}"
        );

        rig.client
            .remove_toxic("echo", &format!("timeout_{}", stream.as_str()))
            .await
            .unwrap();
        let (reply, _) = round_trip(&mut conn, b"back").await;
        assert_eq!(reply, b"back", "{stream:?}: swallowed bytes must stay lost");
        rig.shutdown().await;
    }
}

/// goneaway's `connections` extension: a toxic for new connections only leaves the open
/// ones alone (the black hole in the handshake), one for established connections only
/// spares the new ones; a plain toxic never shows the field, as in Toxiproxy.
#[tokio::test]
async fn a_toxic_scoped_to_new_or_established_connections_spares_the_others() {
    use goneaway::proxy::toxic::Scope;
    for scope in [Scope::New, Scope::Established] {
        let rig = rig().await;
        let mut before = rig.connect().await;
        assert_eq!(round_trip(&mut before, b"warm").await.0, b"warm");
        rig.add(
            ToxicSpec::new(Stream::Downstream, ToxicKind::Timeout { timeout: 0 })
                .on_connections(scope),
        )
        .await;
        let mut after = rig.connect().await;
        let (hit, spared) = match scope {
            Scope::New => (&mut after, &mut before),
            _ => (&mut before, &mut after),
        };
        assert_eq!(
            round_trip(spared, b"spared").await.0,
            b"spared",
            "{scope:?}"
        );
        hit.write_all(b"lost").await.unwrap();
        let mut buf = [0u8; 16];
        let r = tokio::time::timeout(Duration::from_millis(500), hit.read(&mut buf)).await;
        assert!(r.is_err(), "{scope:?}: the toxic let data through: {r:?}");
        let (status, body) = raw_http(
            rig.server.addr(),
            "GET",
            "/proxies/echo/toxics/timeout_downstream",
            None,
        )
        .await
        .unwrap();
        assert_eq!(status, 200);
        assert!(
            body.contains(&format!("\"connections\":\"{}\"", scope.as_str())),
            "{body}"
        );
        rig.shutdown().await;
    }
    let rig = rig().await;
    rig.add(ToxicSpec::new(
        Stream::Downstream,
        ToxicKind::Latency {
            latency: 1,
            jitter: 0,
        },
    ))
    .await;
    let (_, body) = raw_http(rig.server.addr(), "GET", "/proxies/echo/toxics", None)
        .await
        .unwrap();
    assert!(!body.contains("connections"), "{body}");
    rig.shutdown().await;
}

async fn expect_closed(conn: &mut TcpStream) -> Result<(), std::io::Error> {
    let mut buf = [0u8; 64];
    loop {
        match tokio::time::timeout(GENEROUS, conn.read(&mut buf))
            .await
            .expect("connection was not closed")
        {
            Ok(0) => return Ok(()),
            Ok(_) => continue,
            Err(e) => return Err(e),
        }
    }
}

#[tokio::test]
async fn disabling_drops_open_connections_and_refuses_new_ones_until_enabled() {
    let rig = rig().await;
    let mut conn = rig.connect().await;
    assert_eq!(round_trip(&mut conn, b"up").await.0, b"up");

    rig.client.disable("echo").await.unwrap();
    assert!(!rig.client.proxy("echo").await.unwrap().enabled);
    let _ = expect_closed(&mut conn).await; // EOF or reset: either way, gone
    let refused = TcpStream::connect(&rig.proxy.listen).await;
    assert_eq!(
        refused.map(|_| ()).unwrap_err().kind(),
        ErrorKind::ConnectionRefused
    );

    rig.client.enable("echo").await.unwrap();
    let back = rig.client.proxy("echo").await.unwrap();
    assert!(back.enabled);
    assert_eq!(
        back.listen, rig.proxy.listen,
        "re-enabled on the same address"
    );
    let mut conn = rig.connect().await;
    assert_eq!(round_trip(&mut conn, b"again").await.0, b"again");
    rig.shutdown().await;
}

async fn refuses(addr: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match TcpStream::connect(addr).await {
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => return true,
            _ if Instant::now() > deadline => return false,
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

#[tokio::test]
async fn dropping_the_server_closes_its_listeners_and_connections() {
    let rig = rig().await;
    let mut conn = rig.connect().await;
    assert_eq!(round_trip(&mut conn, b"hi").await.0, b"hi");
    let api = rig.server.addr().to_string();
    let listen = rig.proxy.listen.clone();
    drop(rig.server);
    let _ = expect_closed(&mut conn).await;
    assert!(refuses(&api).await, "api port still listening");
    assert!(refuses(&listen).await, "proxy port still listening");
}

#[tokio::test]
async fn shutdown_closes_everything_before_returning() {
    let rig = rig().await;
    let mut conn = rig.connect().await;
    let api = rig.server.addr().to_string();
    let listen = rig.proxy.listen.clone();
    rig.server.shutdown().await;
    for addr in [&api, &listen] {
        let e = TcpStream::connect(addr).await.map(|_| ()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{addr}");
    }
    let _ = expect_closed(&mut conn).await;
}

#[tokio::test]
async fn an_unreachable_upstream_closes_the_client() {
    let server = ProxyServer::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let client = Client::new(&server.api_url()).unwrap();
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap().to_string();
    drop(dead);
    let p = client
        .create_proxy("dead", "127.0.0.1:0", &dead_addr)
        .await
        .unwrap();
    let mut conn = TcpStream::connect(&p.listen).await.unwrap();
    let _ = expect_closed(&mut conn).await;
    server.shutdown().await;
}

/// Every task the server spawned (accept loops, connections, the API and its HTTP
/// connections) is gone after shutdown, and after a plain drop.
#[test]
fn no_task_outlives_the_server() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let metrics = tokio::runtime::Handle::current().metrics();
        let base = metrics.num_alive_tasks();
        for graceful in [true, false] {
            let echo = EchoServer::start().await.unwrap();
            let server = ProxyServer::start("127.0.0.1:0".parse().unwrap())
                .await
                .unwrap();
            let body = serde_json::json!({"name": "p", "listen": "127.0.0.1:0", "upstream": echo.addr().to_string()});
            let (status, created) =
                raw_http(server.addr(), "POST", "/proxies", Some(&body.to_string()))
                    .await
                    .unwrap();
            assert_eq!(status, 201);
            let created: serde_json::Value = serde_json::from_str(&created).unwrap();
            let listen = created["listen"].as_str().unwrap().to_owned();
            let mut conns = Vec::new();
            for _ in 0..3 {
                let mut c = TcpStream::connect(&listen).await.unwrap();
                assert_eq!(round_trip(&mut c, b"x").await.0, b"x");
                conns.push(c);
            }
            let toxic = r#"{"type": "latency", "attributes": {"latency": 50}}"#;
            let (status, _) = raw_http(server.addr(), "POST", "/proxies/p/toxics", Some(toxic))
                .await
                .unwrap();
            assert_eq!(status, 200);
            assert!(metrics.num_alive_tasks() > base);
            if graceful {
                server.shutdown().await;
            } else {
                drop(server);
            }
            echo.shutdown().await;
            drop(conns);
            let deadline = Instant::now() + Duration::from_secs(5);
            while metrics.num_alive_tasks() > base && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert_eq!(
                metrics.num_alive_tasks(),
                base,
                "tasks left behind (graceful: {graceful})"
            );
        }
    });
}

/// What a client sees when the server closes under it: the bytes before the close,
/// then what its next writes and reads return.
async fn observe_server_close(addr: &str) -> Vec<String> {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    let mut seen = Vec::new();
    let mut got = Vec::new();
    let r = tokio::time::timeout(GENEROUS, conn.read_to_end(&mut got))
        .await
        .unwrap();
    seen.push(format!(
        "read {:?} then {:?}",
        got,
        r.map(|_| ()).map_err(|e| e.kind())
    ));
    for _ in 0..2 {
        let w = conn.write_all(b"SELECT 1").await;
        seen.push(format!("write {:?}", w.map_err(|e| e.kind())));
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut buf = [0u8; 8];
        let r = conn.read(&mut buf).await;
        seen.push(format!("read {:?}", r.map_err(|e| e.kind())));
    }
    seen
}

/// A server that closes (MySQL at `wait_timeout`, after KILL, on shutdown) must look
/// the same through the proxy as directly, whether it closes cleanly or with a reset.
#[tokio::test]
async fn a_server_close_looks_the_same_through_the_proxy_as_directly() {
    for reset in [false, true] {
        let closer = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let closer_addr = closer.local_addr().unwrap();
        let task = tokio::spawn(async move {
            while let Ok((mut s, _)) = closer.accept().await {
                let _ = s.write_all(b"bye").await;
                if reset {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    let _ = s.set_zero_linger();
                }
                drop(s); // a full close, as a server process does
            }
        });
        let server = ProxyServer::start("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let client = Client::new(&server.api_url()).unwrap();
        let p = client
            .create_proxy("closer", "127.0.0.1:0", &closer_addr.to_string())
            .await
            .unwrap();
        let direct = observe_server_close(&closer_addr.to_string()).await;
        let proxied = observe_server_close(&p.listen).await;
        assert_eq!(proxied, direct, "reset: {reset}");
        server.shutdown().await;
        task.abort();
    }
}

#[tokio::test]
async fn limit_data_passes_that_many_bytes_then_closes() {
    let rig = rig().await;
    rig.add(ToxicSpec::new(
        Stream::Downstream,
        ToxicKind::LimitData { bytes: 10 },
    ))
    .await;
    let mut conn = rig.connect().await;
    conn.write_all(&[7u8; 100]).await.unwrap();
    let mut got = Vec::new();
    let r = tokio::time::timeout(GENEROUS, conn.read_to_end(&mut got))
        .await
        .unwrap();
    assert!(r.is_ok() || got.len() == 10, "{r:?}");
    assert_eq!(got, vec![7u8; 10]);
    rig.shutdown().await;
}

#[tokio::test]
async fn timeout_with_a_value_swallows_then_closes() {
    let rig = rig().await;
    let mut conn = rig.connect().await;
    let start = Instant::now();
    rig.add(ToxicSpec::new(
        Stream::Upstream,
        ToxicKind::Timeout { timeout: 400 },
    ))
    .await;
    conn.write_all(b"never echoed").await.unwrap();
    let mut got = Vec::new();
    let _ = tokio::time::timeout(GENEROUS, conn.read_to_end(&mut got))
        .await
        .expect("connection must close after the timeout");
    assert!(got.is_empty(), "data must be swallowed: {got:?}");
    assert!(start.elapsed() >= Duration::from_millis(350));
    rig.shutdown().await;
}

#[tokio::test]
async fn reset_peer_resets_the_connection() {
    let rig = rig().await;
    let mut conn = rig.connect().await;
    rig.add(ToxicSpec::new(
        Stream::Upstream,
        ToxicKind::ResetPeer { timeout: 100 },
    ))
    .await;
    conn.write_all(b"query").await.unwrap();
    let err = expect_closed(&mut conn)
        .await
        .expect_err("a reset, not a clean close");
    assert_eq!(err.kind(), ErrorKind::ConnectionReset);
    rig.shutdown().await;
}

#[tokio::test]
async fn slow_close_holds_the_close_back() {
    let rig = rig().await;
    rig.add(ToxicSpec::new(
        Stream::Downstream,
        ToxicKind::SlowClose { delay: 800 },
    ))
    .await;
    let conn = rig.connect().await;
    let start = Instant::now();
    let got = echo_all(conn, b"bye").await;
    assert_eq!(got, b"bye");
    assert!(
        start.elapsed() >= Duration::from_millis(700),
        "close not delayed: {:?}",
        start.elapsed()
    );
    rig.shutdown().await;
}

#[tokio::test]
async fn bandwidth_limits_the_rate() {
    let rig = rig().await;
    rig.add(ToxicSpec::new(
        Stream::Downstream,
        ToxicKind::Bandwidth { rate: 100 },
    ))
    .await;
    let payload = vec![3u8; 50_000]; // 0.5 s at 100 KB/s
    let start = Instant::now();
    let got = echo_all(rig.connect().await, &payload).await;
    assert_eq!(got, payload);
    assert!(
        start.elapsed() >= Duration::from_millis(400),
        "not limited: {:?}",
        start.elapsed()
    );
    rig.shutdown().await;
}

#[tokio::test]
async fn toxicity_zero_leaves_connections_alone() {
    let rig = rig().await;
    rig.add(ToxicSpec::new(Stream::Downstream, latency(1500)).with_toxicity(0.0))
        .await;
    let mut conn = rig.connect().await;
    let (_, t) = round_trip(&mut conn, b"lucky").await;
    assert!(t < Duration::from_secs(1), "toxicity 0 applied: {t:?}");
    rig.shutdown().await;
}

/// Toxics added, updated and removed while bytes are in flight never lose, duplicate
/// or reorder a byte. The writer keeps streaming until every change is done, so the
/// changes always overlap the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_toxic_changes_mid_stream_keep_bytes_exact() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn byte(i: usize) -> u8 {
        (i ^ (i >> 9)) as u8
    }
    let rig = rig().await;
    let conn = rig.connect().await;
    let (mut r, mut w) = conn.into_split();
    let done = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn({
        let done = done.clone();
        async move {
            let mut sent = 0usize;
            let mut last_rounds = 50; // keep going a little after the last change
            while last_rounds > 0 {
                if done.load(Ordering::Relaxed) {
                    last_rounds -= 1;
                }
                let block: Vec<u8> = (sent..sent + 4096).map(byte).collect();
                w.write_all(&block).await.unwrap();
                sent += block.len();
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            w.shutdown().await.unwrap();
            sent
        }
    });
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        r.read_to_end(&mut got).await.unwrap();
        got
    });
    let c = &rig.client;
    let jittery = ToxicKind::Latency {
        latency: 5,
        jitter: 5,
    };
    let slicer = ToxicKind::Slicer {
        average_size: 300,
        size_variation: 200,
        delay: 20,
    };
    for round in 0..3 {
        let s = if round % 2 == 0 {
            Stream::Upstream
        } else {
            Stream::Downstream
        };
        c.add_toxic("echo", ToxicSpec::new(s, jittery.clone()))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(40)).await;
        c.add_toxic("echo", ToxicSpec::new(s, slicer.clone()))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(40)).await;
        let name = format!("latency_{}", s.as_str());
        c.update_toxic("echo", &name, Some(latency(1)), None)
            .await
            .unwrap();
        c.add_toxic(
            "echo",
            ToxicSpec::new(s, ToxicKind::Bandwidth { rate: 20_000 }),
        )
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(40)).await;
        c.remove_toxic("echo", &format!("slicer_{}", s.as_str()))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(40)).await;
        c.remove_all_toxics("echo").await.unwrap();
    }
    done.store(true, Ordering::Relaxed);
    let sent = tokio::time::timeout(Duration::from_secs(60), writer)
        .await
        .unwrap()
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.len(), sent);
    let first_bad = got.iter().enumerate().position(|(i, b)| *b != byte(i));
    assert_eq!(first_bad, None, "bytes changed under live toxic changes");
    rig.shutdown().await;
}

fn toxic_strategy() -> impl Strategy<Value = ToxicKind> {
    prop_oneof![
        // Bounded so the worst case (many tiny slices, each delayed) stays well under a
        // second per case: 64 KB in 16-byte slices 50 µs apart is about 0.2 s.
        (16u64..3000, 0u64..3000, 0u64..50).prop_map(|(a, v, d)| ToxicKind::Slicer {
            average_size: a,
            size_variation: v.min(a.saturating_sub(1)),
            delay: d,
        }),
        (0u64..15, 0u64..10).prop_map(|(l, j)| ToxicKind::Latency {
            latency: l,
            jitter: j
        }),
        (2000u64..20000).prop_map(|rate| ToxicKind::Bandwidth { rate }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Whatever slicer, latency and bandwidth do to timing, the bytes are the same.
    #[test]
    fn forwarding_is_byte_exact_under_timing_toxics(
        size in 0usize..64_000,
        seed in any::<u8>(),
        toxics in prop::collection::vec((toxic_strategy(), any::<bool>()), 1..4),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (got, payload) = rt.block_on(async {
            let rig = rig().await;
            for (i, (kind, up)) in toxics.into_iter().enumerate() {
                let stream = if up { Stream::Upstream } else { Stream::Downstream };
                rig.add(ToxicSpec::new(stream, kind).named(format!("t{i}"))).await;
            }
            let payload: Vec<u8> = (0..size).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect();
            let got = echo_all(rig.connect().await, &payload).await;
            rig.shutdown().await;
            (got, payload)
        });
        prop_assert_eq!(got.len(), payload.len());
        prop_assert!(got == payload);
    }
}

/// A server that says `tag` to every client it accepts, then echoes.
async fn tagged(tag: u8) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                if s.write_all(&[tag]).await.is_err() {
                    return;
                }
                let mut buf = [0u8; 64];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, task)
}

async fn first_byte(s: &mut TcpStream) -> u8 {
    let mut b = [0u8; 1];
    tokio::time::timeout(GENEROUS, s.read_exact(&mut b))
        .await
        .expect("an answer")
        .expect("a byte");
    b[0]
}

#[tokio::test]
async fn a_moved_upstream_takes_new_connections_only_unless_told_to_reset() {
    let server = ProxyServer::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let client = Client::new(&server.api_url()).unwrap();
    let (a, ta) = tagged(b'A').await;
    let (b, tb) = tagged(b'B').await;
    let proxy = client.create_proxy("vip", "127.0.0.1:0", &a).await.unwrap();
    let mut old = TcpStream::connect(&proxy.listen).await.unwrap();
    assert_eq!(first_byte(&mut old).await, b'A');

    client.set_upstream("vip", &b, true).await.unwrap();
    assert_eq!(client.proxy("vip").await.unwrap().upstream, b);
    let mut new = TcpStream::connect(&proxy.listen).await.unwrap();
    assert_eq!(
        first_byte(&mut new).await,
        b'B',
        "a new connection goes to B"
    );
    // The old connection is still on A, and still works.
    old.write_all(b"x").await.unwrap();
    assert_eq!(first_byte(&mut old).await, b'x');

    // Toxiproxy's own update: the proxy restarts and every open connection closes.
    client.set_upstream("vip", &a, false).await.unwrap();
    for s in [&mut old, &mut new] {
        let mut buf = [0u8; 8];
        let closed = tokio::time::timeout(GENEROUS, s.read(&mut buf)).await;
        assert!(
            matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
            "closed by the restart: {closed:?}"
        );
    }
    let mut again = TcpStream::connect(&proxy.listen).await.unwrap();
    assert_eq!(first_byte(&mut again).await, b'A');
    server.shutdown().await;
    ta.abort();
    tb.abort();
}
