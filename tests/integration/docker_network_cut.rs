//! What a pooled connection sees across a docker network cut (Disconnect/Reconnect on the
//! default container route). The observations are printed (`--nocapture`) for the
//! network-cut suite to build on; the asserts are only that the pool recovers.
#![cfg(feature = "docker")]

use crate::common;

use std::time::{Duration, Instant};

use goneaway::server::docker::DockerServer;
use goneaway::server::{Action, Server};
use sqlx::mysql::MySqlPoolOptions;
use sqlx::{ConnectOptions, MySqlPool};

use common::docker_spec as spec;

/// What `SELECT 1` on `pool` gave, and after how long: `ok after 1.20ms`.
async fn query(pool: &MySqlPool, within: Duration) -> String {
    let (result, took) = common::timed_select_one(pool, within).await;
    let what = result.map_or_else(|e| e, |_| "ok".to_string());
    format!("{what} after {took:.2?}")
}

#[tokio::test]
async fn what_a_pool_sees_across_a_cut() {
    if !common::docker_ready_or_skip("what_a_pool_sees_across_a_cut", true).await {
        return;
    }
    let server = DockerServer::start(&spec(&[("wait_timeout", "3")]))
        .await
        .unwrap();
    let options = server.app().options();
    let plain = MySqlPoolOptions::new()
        .max_connections(1)
        .test_before_acquire(false)
        .acquire_timeout(Duration::from_secs(2))
        .connect_with(options.clone())
        .await
        .unwrap();
    let pinged = MySqlPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(2))
        .connect_with(options)
        .await
        .unwrap();
    let within = Duration::from_secs(4);

    server.act(Action::Disconnect).await.unwrap();
    let t = Instant::now();
    let fresh = tokio::time::timeout(within, server.app().options().connect()).await;
    eprintln!(
        "cut, new connection: {} after {:.2?}",
        match fresh {
            Ok(Ok(_)) => "connected".to_string(),
            Ok(Err(e)) => e.to_string(),
            Err(_) => "no answer".to_string(),
        },
        t.elapsed()
    );
    eprintln!("cut, no pre-ping: {}", query(&plain, within).await);
    eprintln!("cut, pre-ping: {}", query(&pinged, within).await);
    server.act(Action::Reconnect).await.unwrap();
    eprintln!(
        "healed after ~4 s, no pre-ping: {}",
        query(&plain, Duration::from_secs(10)).await
    );
    eprintln!(
        "healed after ~4 s, pre-ping: {}",
        query(&pinged, Duration::from_secs(10)).await
    );

    // A cut longer than wait_timeout (3 s) while idle: the server's close cannot reach
    // the client until the network heals.
    assert_eq!(query(&plain, within).await.split(' ').next(), Some("ok"));
    assert_eq!(query(&pinged, within).await.split(' ').next(), Some("ok"));
    server.act(Action::Disconnect).await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    server.act(Action::Reconnect).await.unwrap();
    eprintln!(
        "idle cut 5 s > wait_timeout, no pre-ping: {}",
        query(&plain, Duration::from_secs(10)).await
    );
    eprintln!(
        "idle cut 5 s > wait_timeout, pre-ping: {}",
        query(&pinged, Duration::from_secs(10)).await
    );
    let last_plain = query(&plain, Duration::from_secs(10)).await;
    let last_pinged = query(&pinged, Duration::from_secs(10)).await;
    eprintln!("next query: no pre-ping {last_plain}; pre-ping {last_pinged}");
    assert!(last_plain.starts_with("ok"), "{last_plain}");
    assert!(last_pinged.starts_with("ok"), "{last_pinged}");
}
