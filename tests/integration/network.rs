//! Network toxics no built-in suite uses, run live through the proxy: each is applied
//! to the pool's open connections and healed.

use crate::common;

use goneaway::Suite;

#[tokio::test(flavor = "multi_thread")]
async fn bandwidth_and_slow_close_slow_the_pool_without_errors() {
    if !common::mariadb() {
        return;
    }
    let suite = Suite::from_toml(
        r#"
        description = "a squeezed link, then closes held back: slower, never wrong"
        [pool]
        max_connections = 4
        acquire_timeout = "5s"
        max_lifetime = "1s"        # connections are recycled (closed) during the slow_close
        [workload]
        workers = 2
        duration = "7s"
        mix = { select = 1, insert = 1 }
        [[fault]]
        kind = "bandwidth"
        attributes = { rate = 1 }  # 1 KB/s
        at = "1s"
        duration = "2s"
        [[fault]]
        kind = "slow_close"
        attributes = { delay = 500 }
        stream = "both"
        at = "3.5s"
        duration = "1.5s"
        [expect]
        verdict = "valid"
        recover_within = "3s"
        "#,
        "inline",
        "bandwidth-slow-close",
    )
    .unwrap();
    let report = suite.run().await.unwrap();
    report.assert_expected();
    let details: Vec<&str> = report
        .measured
        .faults
        .iter()
        .map(|f| f.detail.as_str())
        .collect();
    assert_eq!(
        details,
        [
            "bandwidth toxic rate=1 on downstream, toxicity 1",
            "slow_close toxic delay=500 on upstream and downstream, toxicity 1"
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fault_dropped_without_healing_still_removes_its_toxic() {
    use goneaway::Fault;
    use goneaway::proxy::client::Client;
    use goneaway::proxy::{ProxyServer, Stream, ToxicKind};
    use goneaway::server::{self, ServerSpec};
    use goneaway::testkit::Gate;
    use goneaway::testkit::{FaultCx, NetPath};

    if !common::mariadb() {
        return;
    }
    let server: std::sync::Arc<dyn server::Server> =
        server::start(&ServerSpec::default()).await.unwrap().into();
    let proxy = ProxyServer::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let client = Client::new(&proxy.api_url()).unwrap();
    let app = server.app();
    client
        .create_proxy("db", "127.0.0.1:0", &format!("{}:{}", app.host, app.port))
        .await
        .unwrap();
    let cx = FaultCx {
        server,
        app_user: app.user.clone(),
        gate: Gate::new(),
        net: Some(NetPath {
            client: client.clone(),
            proxy: "db".into(),
        }),
        harness_sessions: Default::default(),
    };
    let fault = Fault::Toxic {
        kind: ToxicKind::Latency {
            latency: 100,
            jitter: 0,
        },
        streams: vec![Stream::Downstream, Stream::Upstream],
        toxicity: 1.0,
        connections: Default::default(),
    };
    let guard = fault
        .apply(&cx, &tokio_util::sync::CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(client.toxics("db").await.unwrap().len(), 2);
    // The run was cut short: the guard goes without `heal()` (a real Toxiproxy would
    // otherwise keep the toxics after the harness is gone).
    drop(guard);
    assert!(client.toxics("db").await.unwrap().is_empty());
}
