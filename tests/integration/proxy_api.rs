//! Conformance of the embedded server with the Toxiproxy 2.x HTTP API, driven through
//! `toxiproxy_rust` 0.1.6 itself wherever it can express the request, and through a
//! raw HTTP request where it cannot (POST /proxies, single-toxic GET/update/DELETE,
//! reset_peer, and every malformed request).

use std::sync::Arc;

use goneaway::proxy::{API_VERSION, ProxyServer};
use goneaway::testkit::{EchoServer, raw_http};
use serde_json::{Value, json};
use toxiproxy_rust::client::Client as Tp;
use toxiproxy_rust::proxy::ProxyPack;

struct Api {
    server: ProxyServer,
    tp: Arc<Tp>,
    echo: EchoServer,
}

impl Api {
    async fn start() -> Api {
        let server = ProxyServer::start("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let addr = server.addr();
        // toxiproxy_rust is blocking: build and use it off the async worker threads.
        let tp = tokio::task::spawn_blocking(move || Arc::new(Tp::new(addr)))
            .await
            .unwrap();
        let echo = EchoServer::start().await.unwrap();
        Api { server, tp, echo }
    }

    /// Run a toxiproxy_rust call on the blocking pool.
    async fn tp<T: Send + 'static>(&self, f: impl FnOnce(&Tp) -> T + Send + 'static) -> T {
        let tp = self.tp.clone();
        tokio::task::spawn_blocking(move || f(&tp)).await.unwrap()
    }

    async fn raw(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        let (status, body) = raw_http(self.server.addr(), method, path, body)
            .await
            .unwrap();
        let v = if body.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&body).unwrap_or(Value::String(body))
        };
        (status, v)
    }

    fn upstream(&self) -> String {
        self.echo.addr().to_string()
    }

    async fn populate_one(&self, name: &str) -> ProxyPack {
        let (name, up) = (name.to_owned(), self.upstream());
        let mut got = self
            .tp(move |tp| {
                tp.populate(vec![ProxyPack::new(name, "127.0.0.1:0".into(), up)])
                    .unwrap()
            })
            .await;
        got.remove(0).proxy_pack
    }

    async fn finish(self) {
        let tp = self.tp;
        tokio::task::spawn_blocking(move || drop(tp)).await.unwrap();
        self.server.shutdown().await;
        self.echo.shutdown().await;
    }
}

fn err(status: u16, message: &str) -> Value {
    json!({"error": message, "status": status})
}

#[tokio::test]
async fn version() {
    let api = Api::start().await;
    let body = api.tp(|tp| tp.version().unwrap()).await;
    assert_eq!(body, format!("{{\"version\": \"{API_VERSION}\"}}\n"));
    let (status, v) = api.raw("GET", "/version", None).await;
    assert_eq!((status, v), (200, json!({ "version": API_VERSION })));
    assert!(api.tp(|tp| tp.is_running()).await);
    api.finish().await;
}

#[tokio::test]
async fn populate_list_show_and_replace() {
    let api = Api::start().await;
    let up = api.upstream();
    let up2 = up.clone();
    let created = api
        .tp(move |tp| {
            tp.populate(vec![
                ProxyPack::new("a".into(), "127.0.0.1:0".into(), up2.clone()),
                ProxyPack::new("b".into(), "localhost:0".into(), up2),
            ])
            .unwrap()
        })
        .await;
    assert_eq!(created.len(), 2);
    for p in &created {
        assert!(p.proxy_pack.enabled);
        assert!(p.proxy_pack.toxics.is_empty());
        assert!(
            !p.proxy_pack.listen.ends_with(":0"),
            "{}",
            p.proxy_pack.listen
        );
    }
    let a_listen = created[0].proxy_pack.listen.clone();

    let all = api.tp(|tp| tp.all().unwrap()).await;
    let mut names: Vec<_> = all.keys().cloned().collect();
    names.sort();
    assert_eq!(names, ["a", "b"]);

    let (status, shown) = api.raw("GET", "/proxies/a", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        shown,
        json!({"name": "a", "listen": a_listen, "upstream": up, "enabled": true, "toxics": []})
    );
    let (status, listed) = api.raw("GET", "/proxies", None).await;
    assert_eq!(status, 200);
    assert_eq!(listed["a"], shown);

    // Same listen and upstream: kept as is, toxics and all.
    api.tp(|tp| {
        tp.find_proxy("a")
            .unwrap()
            .with_latency("upstream".into(), 5, 0, 1.0);
    })
    .await;
    let (l, u) = (a_listen.clone(), up.clone());
    let again = api
        .tp(move |tp| tp.populate(vec![ProxyPack::new("a".into(), l, u)]).unwrap())
        .await;
    assert_eq!(again[0].proxy_pack.toxics.len(), 1, "kept, not replaced");

    // A different upstream replaces it.
    let (status, body) = api
        .raw(
            "POST",
            "/populate",
            Some(
                &json!([{"name": "a", "listen": a_listen, "upstream": "127.0.0.1:9"}]).to_string(),
            ),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(body["proxies"][0]["upstream"], "127.0.0.1:9");
    assert_eq!(body["proxies"][0]["toxics"], json!([]));

    // Validation happens before anything is created.
    let bad = json!([{"name": "c", "upstream": up}, {"upstream": up}]).to_string();
    let (status, body) = api.raw("POST", "/populate", Some(&bad)).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "missing required field: name at proxy 2");
    assert_eq!(body["status"], 400);
    let bad = json!([{"name": "c"}]).to_string();
    let (status, body) = api.raw("POST", "/populate", Some(&bad)).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "missing required field: upstream at proxy 1");
    let (status, _) = api.raw("POST", "/populate", Some("{\"name\": 1}")).await;
    assert_eq!(status, 400);
    let (status, body) = api.raw("POST", "/populate", Some("[{")).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("bad request body")
    );
    assert!(!api.tp(|tp| tp.all().unwrap()).await.contains_key("c"));
    api.finish().await;
}

#[tokio::test]
async fn create_proxy_statuses() {
    let api = Api::start().await;
    let up = api.upstream();
    let body = json!({"name": "db", "listen": "127.0.0.1:0", "upstream": up}).to_string();
    let (status, created) = api.raw("POST", "/proxies", Some(&body)).await;
    assert_eq!(status, 201);
    assert_eq!(created["name"], "db");
    assert_eq!(created["enabled"], true);
    assert_eq!(created["toxics"], json!([]));
    assert_ne!(created["listen"], "127.0.0.1:0");

    let (status, v) = api.raw("POST", "/proxies", Some(&body)).await;
    assert_eq!((status, v), (409, err(409, "proxy already exists")));

    let (status, v) = api
        .raw(
            "POST",
            "/proxies",
            Some(&json!({"upstream": up}).to_string()),
        )
        .await;
    assert_eq!((status, v), (400, err(400, "missing required field: name")));
    let (status, v) = api
        .raw("POST", "/proxies", Some(&json!({"name": "x"}).to_string()))
        .await;
    assert_eq!(
        (status, v),
        (400, err(400, "missing required field: upstream"))
    );
    let (status, v) = api.raw("POST", "/proxies", Some("{not json")).await;
    assert_eq!(status, 400);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with("bad request body: ")
    );
    let (status, v) = api.raw("POST", "/proxies", None).await;
    assert_eq!((status, v), (400, err(400, "bad request body: EOF")));

    // The port is taken (by the API itself): Toxiproxy answers 500 with the listen error.
    let taken = json!({"name": "clash", "listen": api.server.addr().to_string(), "upstream": up});
    let (status, v) = api.raw("POST", "/proxies", Some(&taken.to_string())).await;
    assert_eq!(status, 500);
    assert!(
        v["error"].as_str().unwrap().starts_with("listen tcp "),
        "{v}"
    );
    assert_eq!(v["status"], 500);

    // Created disabled: not listening, listen shown as given.
    let off = json!({"name": "off", "listen": "127.0.0.1:0", "upstream": up, "enabled": false});
    let (status, v) = api.raw("POST", "/proxies", Some(&off.to_string())).await;
    assert_eq!(status, 201);
    assert_eq!(v["enabled"], false);
    api.finish().await;
}

#[tokio::test]
async fn update_and_delete_proxy() {
    let api = Api::start().await;
    let p = api.populate_one("db").await;

    api.tp(|tp| tp.find_proxy("db").unwrap().disable().unwrap())
        .await;
    let shown = api.tp(|tp| tp.find_proxy("db").unwrap()).await;
    assert!(!shown.proxy_pack.enabled);
    assert_eq!(shown.proxy_pack.listen, p.listen, "address kept while down");
    api.tp(|tp| tp.find_proxy("db").unwrap().enable().unwrap())
        .await;
    assert!(
        api.tp(|tp| tp.find_proxy("db").unwrap())
            .await
            .proxy_pack
            .enabled
    );

    // PATCH works like POST; a new upstream restarts the proxy on the same listen.
    let (status, v) = api
        .raw(
            "PATCH",
            "/proxies/db",
            Some(&json!({"upstream": "127.0.0.1:9"}).to_string()),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(v["upstream"], "127.0.0.1:9");
    assert_eq!(v["enabled"], true);
    assert_eq!(v["listen"], p.listen);

    let (status, v) = api
        .raw("POST", "/proxies/db", Some("{\"enabled\": \"yes\"}"))
        .await;
    assert_eq!(status, 400, "{v}");
    let (status, v) = api
        .raw("POST", "/proxies/nope", Some("{\"enabled\": false}"))
        .await;
    assert_eq!((status, v), (404, err(404, "proxy not found")));
    let (status, v) = api.raw("GET", "/proxies/nope", None).await;
    assert_eq!((status, v), (404, err(404, "proxy not found")));
    assert!(api.tp(|tp| tp.find_proxy("nope")).await.is_err());

    api.tp(|tp| tp.find_proxy("db").unwrap().delete().unwrap())
        .await;
    assert!(api.tp(|tp| tp.all().unwrap()).await.is_empty());
    let (status, v) = api.raw("DELETE", "/proxies/db", None).await;
    assert_eq!((status, v), (404, err(404, "proxy not found")));
    let p2 = api.populate_one("again").await;
    let (status, v) = api.raw("DELETE", "/proxies/again", None).await;
    assert_eq!((status, v), (204, Value::Null));
    let _ = p2;
    api.finish().await;
}

#[tokio::test]
async fn every_toxic_type_through_toxiproxy_rust() {
    let api = Api::start().await;
    api.populate_one("db").await;
    api.tp(|tp| {
        let p = tp.find_proxy("db").unwrap();
        p.with_latency("downstream".into(), 100, 10, 1.0)
            .with_bandwidth("upstream".into(), 64, 0.5)
            .with_slow_close("downstream".into(), 200, 1.0)
            .with_timeout("upstream".into(), 0, 1.0)
            .with_slicer("upstream".into(), 64, 8, 10, 1.0)
            .with_limit_data("downstream".into(), 4096, 1.0);
    })
    .await;
    // toxiproxy_rust has no reset_peer helper: a raw request adds it.
    let body = json!({"type": "reset_peer", "stream": "downstream", "attributes": {"timeout": 50}});
    let (status, v) = api
        .raw("POST", "/proxies/db/toxics", Some(&body.to_string()))
        .await;
    assert_eq!(status, 200, "Toxiproxy answers a new toxic with 200: {v}");
    assert_eq!(
        v,
        json!({"name": "reset_peer_downstream", "type": "reset_peer", "stream": "downstream",
               "toxicity": 1.0, "attributes": {"timeout": 50}})
    );

    let toxics = api
        .tp(|tp| tp.find_proxy("db").unwrap().toxics().unwrap())
        .await;
    let names: Vec<_> = toxics.iter().map(|t| t.name.as_str()).collect();
    // Upstream first, then downstream, each in the order added.
    assert_eq!(
        names,
        [
            "bandwidth_upstream",
            "timeout_upstream",
            "slicer_upstream",
            "latency_downstream",
            "slow_close_downstream",
            "limit_data_downstream",
            "reset_peer_downstream",
        ]
    );
    let by_name = |n: &str| toxics.iter().find(|t| t.name == n).unwrap();
    assert_eq!(by_name("latency_downstream").attributes["latency"], 100);
    assert_eq!(by_name("latency_downstream").attributes["jitter"], 10);
    assert_eq!(by_name("bandwidth_upstream").toxicity, 0.5);
    assert_eq!(by_name("slicer_upstream").attributes["size_variation"], 8);
    assert_eq!(by_name("limit_data_downstream").attributes["bytes"], 4096);
    assert_eq!(by_name("timeout_upstream").r#type, "timeout");

    // The proxy shows the same toxics.
    let shown = api.tp(|tp| tp.find_proxy("db").unwrap()).await;
    assert_eq!(shown.proxy_pack.toxics.len(), 7);

    // Single toxic: show, update (attributes and toxicity, partial), delete.
    let (status, v) = api
        .raw("GET", "/proxies/db/toxics/latency_downstream", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(v["attributes"], json!({"latency": 100, "jitter": 10}));
    let (status, v) = api
        .raw(
            "POST",
            "/proxies/db/toxics/latency_downstream",
            Some(&json!({"attributes": {"latency": 7}, "toxicity": 0.25}).to_string()),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(v["attributes"], json!({"latency": 7, "jitter": 10}));
    assert_eq!(v["toxicity"], 0.25);
    let (status, _) = api
        .raw(
            "PATCH",
            "/proxies/db/toxics/latency_downstream",
            Some("{\"toxicity\": 1}"),
        )
        .await;
    assert_eq!(status, 200);
    let (status, v) = api
        .raw("DELETE", "/proxies/db/toxics/slicer_upstream", None)
        .await;
    assert_eq!((status, v), (204, Value::Null));

    api.tp(|tp| tp.find_proxy("db").unwrap().delete_all_toxics().unwrap())
        .await;
    let (status, v) = api.raw("GET", "/proxies/db/toxics", None).await;
    assert_eq!((status, v), (200, json!([])));
    api.finish().await;
}

#[tokio::test]
async fn toxic_defaults_and_errors() {
    let api = Api::start().await;
    api.populate_one("db").await;
    let post = |body: Value| {
        let body = body.to_string();
        let addr = api.server.addr();
        async move {
            let (s, b) = raw_http(addr, "POST", "/proxies/db/toxics", Some(&body))
                .await
                .unwrap();
            (
                s,
                serde_json::from_str::<Value>(&b).unwrap_or(Value::String(b)),
            )
        }
    };

    // Defaults: downstream, toxicity 1, name <type>_<stream>, attributes 0.
    let (s, v) = post(json!({"type": "latency"})).await;
    assert_eq!(s, 200);
    assert_eq!(
        v,
        json!({"name": "latency_downstream", "type": "latency", "stream": "downstream",
               "toxicity": 1.0, "attributes": {"latency": 0, "jitter": 0}})
    );
    let (s, v) = post(json!({"type": "latency"})).await;
    assert_eq!((s, v), (409, err(409, "toxic already exists")));
    // Names are unique across both directions.
    let (s, _) =
        post(json!({"name": "latency_downstream", "type": "timeout", "stream": "upstream"})).await;
    assert_eq!(s, 409);
    // toxiproxy_rust silently ignores the 409 (a documented limitation).
    api.tp(|tp| {
        tp.find_proxy("db")
            .unwrap()
            .with_latency("downstream".into(), 1, 1, 1.0);
    })
    .await;

    let (s, v) = post(json!({"type": "earthquake"})).await;
    assert_eq!((s, v), (400, err(400, "invalid toxic type")));
    let (s, v) = post(json!({"type": "latency", "stream": "sideways"})).await;
    assert_eq!(
        (s, v),
        (
            400,
            err(
                400,
                "stream was invalid, can be either upstream or downstream"
            )
        )
    );
    let (s, v) =
        post(json!({"type": "latency", "stream": "upstream", "attributes": {"latancy": 5}})).await;
    assert_eq!(s, 400);
    assert!(v["error"].as_str().unwrap().contains("latancy"), "{v}");
    let (s, _) =
        post(json!({"type": "latency", "stream": "upstream", "attributes": {"latency": "5"}}))
            .await;
    assert_eq!(s, 400);
    let (s, _) =
        post(json!({"type": "latency", "stream": "upstream", "attributes": {"latency": -1}})).await;
    assert_eq!(s, 400);
    let (s, _) = post(json!({"type": "latency", "stream": "upstream", "toxicity": 2})).await;
    assert_eq!(s, 400);
    let (s, _) = post(json!({"type": "latency", "stream": "upstream", "attributes": [1]})).await;
    assert_eq!(s, 400);
    let (s, v) = api
        .raw("POST", "/proxies/db/toxics", Some("{\"type\":"))
        .await;
    assert_eq!(s, 400);
    assert!(v["error"].as_str().unwrap().starts_with("bad request body"));

    // Unknown proxy or toxic.
    for (method, path) in [
        ("GET", "/proxies/nope/toxics"),
        ("POST", "/proxies/nope/toxics"),
        ("GET", "/proxies/nope/toxics/x"),
        ("POST", "/proxies/nope/toxics/x"),
        ("DELETE", "/proxies/nope/toxics/x"),
    ] {
        let (s, v) = api.raw(method, path, Some("{}")).await;
        assert_eq!(
            (s, v),
            (404, err(404, "proxy not found")),
            "{method} {path}"
        );
    }
    for method in ["GET", "POST", "DELETE"] {
        let (s, v) = api.raw(method, "/proxies/db/toxics/none", Some("{}")).await;
        assert_eq!((s, v), (404, err(404, "toxic not found")), "{method}");
    }
    let (s, _) = api
        .raw(
            "POST",
            "/proxies/db/toxics/latency_downstream",
            Some("{\"attributes\": {\"rate\": 1}}"),
        )
        .await;
    assert_eq!(s, 400, "latency has no rate attribute");
    api.finish().await;
}

#[tokio::test]
async fn reset_enables_everything_and_removes_toxics_in_both_directions() {
    let api = Api::start().await;
    api.populate_one("a").await;
    api.populate_one("b").await;
    api.tp(|tp| {
        let a = tp.find_proxy("a").unwrap();
        a.with_latency("upstream".into(), 10, 0, 1.0)
            .with_latency("downstream".into(), 10, 0, 1.0);
        tp.find_proxy("b").unwrap().disable().unwrap();
    })
    .await;
    api.tp(|tp| tp.reset().unwrap()).await;
    let all = api.tp(|tp| tp.all().unwrap()).await;
    for p in all.values() {
        assert!(p.proxy_pack.enabled, "{} still disabled", p.proxy_pack.name);
        assert!(
            p.proxy_pack.toxics.is_empty(),
            "{} kept toxics",
            p.proxy_pack.name
        );
    }
    let (s, v) = api.raw("POST", "/reset", None).await;
    assert_eq!((s, v), (204, Value::Null));
    api.finish().await;
}

#[tokio::test]
async fn browsers_unknown_routes_and_wrong_methods() {
    let api = Api::start().await;
    let addr = api.server.addr();
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    sock.write_all(
        b"GET /proxies HTTP/1.1\r\nHost: x\r\nUser-Agent: Mozilla/5.0\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut resp = String::new();
    sock.read_to_string(&mut resp).await.unwrap();
    assert!(resp.starts_with("HTTP/1.1 403"), "{resp}");

    let (s, v) = api.raw("GET", "/nothing/here", None).await;
    assert_eq!(s, 404);
    assert_eq!(v["status"], 404);
    let (s, v) = api.raw("DELETE", "/proxies", None).await;
    assert_eq!(s, 405);
    assert_eq!(v["status"], 405);
    api.finish().await;
}
