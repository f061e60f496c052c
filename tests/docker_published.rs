//! The docker backend with `GONEAWAY_DOCKER_ADDRESS=published`: the pool reaches the
//! server through the pinned published port on 127.0.0.1 (what rootless Docker and
//! non-Linux hosts get). One test in its own binary, because it sets the variable.
#![cfg(feature = "docker")]

mod common;

use std::time::Duration;

use goneaway::server::docker::{self, DockerServer, Route};
use goneaway::server::{Action, BackendKind, Server, ServerSpec};
use sqlx::ConnectOptions;
use sqlx::mysql::MySqlPoolOptions;

#[test]
fn published_address_survives_every_action() {
    // SAFETY: the only test in this binary, before any runtime or other thread starts.
    unsafe { std::env::set_var(docker::ADDRESS_ENV, "published") };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        if !common::docker_ready_or_skip("published_address_survives_every_action", true).await {
            return;
        }
        let spec = ServerSpec {
            backend: BackendKind::Docker,
            ..Default::default()
        };
        let server = DockerServer::start(&spec).await.unwrap();
        assert_eq!(server.route(), Route::Published);
        let before = server.app();
        assert_eq!(
            (before.host.clone(), before.port),
            server.published(),
            "the pool is given the published address"
        );
        let pool = MySqlPoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(3))
            .connect_with(server.app().options())
            .await
            .unwrap();
        let query = |within: Duration| common::timed_select_one(&pool, within);
        let fresh = || async {
            tokio::time::timeout(Duration::from_secs(3), server.app().options().connect())
                .await
                .map_err(|_| "no answer within 3s".to_string())
                .and_then(|r| r.map_err(|e| e.to_string()))
        };
        assert_eq!(query(Duration::from_secs(3)).await.0, Ok(1));

        server.act(Action::Disconnect).await.unwrap();
        let during = query(Duration::from_secs(2)).await;
        eprintln!("published: pooled connection during the cut: {during:?}");
        assert!(during.0.is_err());
        let new = fresh().await;
        eprintln!(
            "published: new connection during the cut: {:?}",
            new.as_ref().err()
        );
        assert!(new.is_err());
        server.act(Action::Reconnect).await.unwrap();
        assert_eq!(server.app(), before);
        let after = query(Duration::from_secs(5)).await;
        eprintln!("published: pooled connection after reconnect: {after:?}");
        let again = query(Duration::from_secs(5)).await;
        eprintln!("published: pooled connection, next query: {again:?}");
        assert!(fresh().await.is_ok());

        server.act(Action::Crash).await.unwrap();
        server.act(Action::Start).await.unwrap();
        assert_eq!(server.app(), before);
        assert!(fresh().await.is_ok());
        server.close().await.unwrap();
    });
}
