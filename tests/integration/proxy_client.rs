//! The typed client: URL handling, typed results, and errors that name what failed.

use goneaway::proxy::client::{Client, ClientError, ToxicSpec};
use goneaway::proxy::{ProxyServer, Stream, ToxicKind};
use goneaway::testkit::EchoServer;

fn lowercase_and_names(e: &ClientError, what: &str) {
    let msg = e.to_string();
    assert!(
        msg.chars().next().unwrap().is_lowercase(),
        "message should start lowercase: {msg}"
    );
    assert!(msg.contains(what), "message should name {what}: {msg}");
}

#[test]
fn urls_toxiproxy_rust_cannot_reach_are_refused_up_front() {
    for url in [
        "https://127.0.0.1:8474",
        "http://127.0.0.1:8474/toxiproxy",
        "http://user:pw@127.0.0.1:8474",
        "http://127.0.0.1:8474/?x=1",
        "not a url at all",
    ] {
        let e = Client::new(url).unwrap_err();
        assert!(matches!(e, ClientError::BadUrl { .. }), "{url}: {e}");
        lowercase_and_names(&e, "url");
    }
    for url in [
        "http://127.0.0.1:8474",
        "http://127.0.0.1:8474/",
        "127.0.0.1:8474",
    ] {
        let c = Client::new(url).unwrap();
        assert_eq!(c.api_url(), "http://127.0.0.1:8474");
    }
}

#[tokio::test]
async fn nothing_listening_is_unreachable_not_a_panic() {
    // A port that was free a moment ago.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let c = Client::new(&format!("http://127.0.0.1:{port}")).unwrap();
    assert!(!c.is_running().await);
    let e = c.version().await.unwrap_err();
    assert!(matches!(e, ClientError::Unreachable { .. }), "{e}");
    lowercase_and_names(&e, &port.to_string());
    let e = c
        .add_toxic(
            "db",
            ToxicSpec::new(Stream::Upstream, ToxicKind::Timeout { timeout: 0 }),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Unreachable { .. }), "{e}");
}

#[tokio::test]
async fn typed_round_trip_and_named_errors() {
    let server = ProxyServer::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let echo = EchoServer::start().await.unwrap();
    let c = Client::new(&server.api_url()).unwrap();
    assert!(c.is_running().await);
    assert_eq!(c.version().await.unwrap(), goneaway::proxy::API_VERSION);

    let p = c
        .create_proxy("db", "127.0.0.1:0", &echo.addr().to_string())
        .await
        .unwrap();
    assert_eq!(p.name, "db");
    assert!(p.enabled);

    // Every type, each through the path that fits it.
    let kinds = [
        ToxicKind::Latency {
            latency: 5,
            jitter: 1,
        },
        ToxicKind::Bandwidth { rate: 1000 },
        ToxicKind::SlowClose { delay: 1 },
        ToxicKind::Slicer {
            average_size: 100,
            size_variation: 10,
            delay: 5,
        },
        ToxicKind::LimitData { bytes: 1 << 20 },
        ToxicKind::ResetPeer { timeout: 10 },
    ];
    for kind in kinds.clone() {
        let info = c
            .add_toxic(
                "db",
                ToxicSpec::new(Stream::Downstream, kind.clone()).with_toxicity(0.0),
            )
            .await
            .unwrap();
        assert_eq!(info.kind, kind);
        assert_eq!(info.name, format!("{}_downstream", kind.type_name()));
        assert_eq!(info.toxicity, 0.0);
    }
    let named = c
        .add_toxic(
            "db",
            ToxicSpec::new(Stream::Upstream, ToxicKind::Timeout { timeout: 0 })
                .named("freeze")
                .with_toxicity(0.0),
        )
        .await
        .unwrap();
    assert_eq!(named.name, "freeze");
    assert_eq!(c.toxics("db").await.unwrap().len(), kinds.len() + 1);
    assert_eq!(
        c.toxics("db").await.unwrap()[0].name,
        "freeze",
        "upstream first"
    );

    // Duplicates: toxiproxy_rust would ignore the 409; the wrapper says so.
    let e = c
        .add_toxic(
            "db",
            ToxicSpec::new(
                Stream::Downstream,
                ToxicKind::Latency {
                    latency: 1,
                    jitter: 0,
                },
            ),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::ToxicExists { .. }), "{e}");
    lowercase_and_names(&e, "latency_downstream");
    lowercase_and_names(&e, "\"db\"");

    let e = c
        .update_toxic("db", "nope", None, Some(0.5))
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::ToxicNotFound { .. }), "{e}");
    lowercase_and_names(&e, "nope");
    let e = c.remove_toxic("db", "nope").await.unwrap_err();
    assert!(matches!(e, ClientError::ToxicNotFound { .. }), "{e}");
    let e = c
        .update_toxic("db", "freeze", Some(ToxicKind::Bandwidth { rate: 1 }), None)
        .await
        .unwrap_err();
    assert!(
        matches!(e, ClientError::Rejected { status: 400, .. }),
        "{e}"
    );
    lowercase_and_names(&e, "freeze");

    for e in [
        c.proxy("ghost").await.unwrap_err(),
        c.disable("ghost").await.unwrap_err(),
        c.enable("ghost").await.unwrap_err(),
        c.delete_proxy("ghost").await.unwrap_err(),
        c.toxics("ghost").await.unwrap_err(),
        c.remove_all_toxics("ghost").await.unwrap_err(),
        c.remove_toxic("ghost", "x").await.unwrap_err(),
        c.add_toxic(
            "ghost",
            ToxicSpec::new(Stream::Upstream, ToxicKind::Timeout { timeout: 0 }),
        )
        .await
        .unwrap_err(),
        c.add_toxic(
            "ghost",
            ToxicSpec::new(Stream::Upstream, ToxicKind::ResetPeer { timeout: 0 }),
        )
        .await
        .unwrap_err(),
    ] {
        assert!(matches!(e, ClientError::ProxyNotFound { .. }), "{e}");
        lowercase_and_names(&e, "ghost");
    }

    c.remove_toxic("db", "freeze").await.unwrap();
    c.remove_all_toxics("db").await.unwrap();
    assert!(c.toxics("db").await.unwrap().is_empty());

    // Enabling cannot take when the port was taken meanwhile: the server's reason shows.
    c.disable("db").await.unwrap();
    let squatter = tokio::net::TcpListener::bind(&p.listen).await.unwrap();
    let e = c.enable("db").await.unwrap_err();
    assert!(
        matches!(e, ClientError::Rejected { status: 500, .. }),
        "{e}"
    );
    lowercase_and_names(&e, "\"db\"");
    lowercase_and_names(&e, "listen tcp");
    drop(squatter);
    c.enable("db").await.unwrap();

    c.add_toxic(
        "db",
        ToxicSpec::new(
            Stream::Upstream,
            ToxicKind::Latency {
                latency: 1,
                jitter: 0,
            },
        ),
    )
    .await
    .unwrap();
    c.disable("db").await.unwrap();
    c.reset().await.unwrap();
    let p = c.proxy("db").await.unwrap();
    assert!(p.enabled && p.toxics.is_empty());
    assert_eq!(c.proxies().await.unwrap().len(), 1);
    c.delete_proxy("db").await.unwrap();
    assert!(c.proxies().await.unwrap().is_empty());

    drop(c);
    server.shutdown().await;
    echo.shutdown().await;
}
