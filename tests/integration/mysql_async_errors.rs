//! mysql_async's errors, provoked live against a real MariaDB, and the class goneaway's
//! classifier gives each. The texts are snapshotted: they are what a user greps their
//! logs for, and the classifier's rules (`src/pool/mysql_async/classify.rs`) rest on
//! them.

use crate::common;

use std::time::Duration;

use goneaway::pool::mysql_async::{MysqlAsyncSpec, classify};
use goneaway::server::{self, Action, ConnectInfo, ServerSpec};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, PoolConstraints, PoolOpts};

fn spec(settings: &[(&str, &str)]) -> ServerSpec {
    common::server_spec(settings)
}

/// Plain TCP to `info`, as goneaway's pool connects (no unix socket).
fn opts(info: &ConnectInfo) -> OptsBuilder {
    OptsBuilder::default()
        .ip_or_hostname(info.host.clone())
        .tcp_port(info.port)
        .user(Some(info.user.clone()))
        .pass(Some(info.password.clone()))
        .db_name(Some(info.database.clone()))
        .prefer_socket(false)
}

/// What a user sees, and its class: the snapshotted line.
fn seen(e: &mysql_async::Error) -> String {
    format!("{} => {}", e, classify(e))
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_past_wait_timeout_on_a_bare_connection() {
    if !common::mariadb() {
        return;
    }
    let s = server::start(&spec(&[("wait_timeout", "1")]))
        .await
        .unwrap();
    let mut c = Conn::new(Opts::from(opts(&s.app()))).await.unwrap();
    c.query_drop("SELECT 1").await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let e = c
        .query_drop("SELECT 1")
        .await
        .expect_err("the server closed the idle connection");
    insta::assert_snapshot!("idle_past_wait_timeout", seen(&e));
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_of_an_idle_session() {
    if !common::mariadb() {
        return;
    }
    let s = server::start(&spec(&[])).await.unwrap();
    let mut c = Conn::new(Opts::from(opts(&s.app()))).await.unwrap();
    let id = c.id();
    server::admin_exec(&s.admin(), &format!("KILL CONNECTION {id}"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let e = c.query_drop("SELECT 1").await.expect_err("killed");
    insta::assert_snapshot!("kill_idle", seen(&e));
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_of_an_active_session() {
    if !common::mariadb() {
        return;
    }
    let s = server::start(&spec(&[])).await.unwrap();
    let mut c = Conn::new(Opts::from(opts(&s.app()))).await.unwrap();
    let id = c.id();
    let admin = s.admin();
    let killer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        server::admin_exec(&admin, &format!("KILL CONNECTION {id}"))
            .await
            .unwrap();
    });
    let e = c.query_drop("SELECT SLEEP(5)").await.expect_err("killed");
    killer.await.unwrap();
    insta::assert_snapshot!("kill_active", seen(&e));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shutdown_under_a_query() {
    if !common::mariadb() {
        return;
    }
    let s = server::start(&spec(&[])).await.unwrap();
    let mut c = Conn::new(Opts::from(opts(&s.app()))).await.unwrap();
    let query = tokio::spawn(async move { c.query_drop("SELECT SLEEP(10)").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.act(Action::Shutdown).await.unwrap();
    let e = query.await.unwrap().expect_err("the server went down");
    insta::assert_snapshot!("shutdown_mid_query", seen(&e));
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_listening() {
    if !common::mariadb() {
        return;
    }
    let s = server::start(&spec(&[])).await.unwrap();
    s.act(Action::Crash).await.unwrap();
    let e = Conn::new(Opts::from(opts(&s.app())))
        .await
        .expect_err("the server is down");
    insta::assert_snapshot!("connection_refused", seen(&e));
}

#[tokio::test(flavor = "multi_thread")]
async fn over_the_server_limit() {
    if !common::mariadb() {
        return;
    }
    let s = server::start(&spec(&[("max_connections", "10")]))
        .await
        .unwrap();
    let mut held = Vec::new();
    let e = loop {
        match Conn::new(Opts::from(opts(&s.app()))).await {
            Ok(c) if held.len() < 20 => held.push(c),
            Ok(_) => panic!("the server accepted 20 connections with max_connections = 10"),
            Err(e) => break e,
        }
    };
    insta::assert_snapshot!("too_many_connections", seen(&e));
}

/// mysql_async has no checkout timeout: a drained pool's get_conn waits as long as it
/// takes, so only the caller's deadline ends it (goneaway records `timeout`).
#[tokio::test(flavor = "multi_thread")]
async fn a_drained_pool_waits_forever() {
    if !common::mariadb() {
        return;
    }
    let s = server::start(&spec(&[])).await.unwrap();
    let pool = mysql_async::Pool::new(
        opts(&s.app())
            .pool_opts(PoolOpts::default().with_constraints(PoolConstraints::new(1, 1).unwrap())),
    );
    let held = pool.get_conn().await.unwrap();
    let waited = tokio::time::timeout(Duration::from_secs(2), pool.get_conn()).await;
    assert!(waited.is_err(), "a drained pool answered: {waited:?}");
    drop(held);
    let _ = tokio::time::timeout(Duration::from_secs(5), pool.disconnect()).await;
}

/// goneaway's pool reads its settings back from the options mysql_async holds, and the
/// words a suite sets are the ones it runs with.
#[tokio::test(flavor = "multi_thread")]
async fn the_pool_runs_with_what_the_suite_says() {
    if !common::mariadb() {
        return;
    }
    let s = server::start(&spec(&[])).await.unwrap();
    let words = MysqlAsyncSpec {
        pool_min: Some(1),
        pool_max: Some(3),
        abs_conn_ttl: Some(Duration::from_secs(7)),
        ..Default::default()
    };
    let started = goneaway::pool::mysql_async::start(&words, &s.app()).unwrap();
    assert_eq!(
        started.settings.to_string(),
        "pool_min=1 pool_max=3 inactive_connection_ttl=0s ttl_check_interval=30s \
         abs_conn_ttl=7s abs_conn_ttl_jitter=none conn_ttl=wait_timeout \
         reset_connection=true tcp_keepalive=none prefer_socket=false"
    );
    let mut c = started.pool.acquire().await.unwrap();
    c.run(goneaway::pool::Statement::Ping).await.unwrap();
    drop(c);
    started.pool.close().await;
}

// ---- through goneaway's proxy ----

use goneaway::proxy::client::ToxicSpec;
use goneaway::proxy::{Stream, ToxicKind};

#[tokio::test(flavor = "multi_thread")]
async fn a_reset_by_the_network() {
    if !common::mariadb() {
        return;
    }
    let (_s, _proxy, client, via) = common::proxied().await;
    let mut c = Conn::new(Opts::from(opts(&via))).await.unwrap();
    client
        .add_toxic(
            "db",
            ToxicSpec::new(Stream::Upstream, ToxicKind::ResetPeer { timeout: 0 }),
        )
        .await
        .unwrap();
    let e = c.query_drop("SELECT 1").await.expect_err("reset");
    insta::assert_snapshot!("reset_peer", seen(&e));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cut_under_a_query() {
    if !common::mariadb() {
        return;
    }
    let (_s, _proxy, client, via) = common::proxied().await;
    let mut c = Conn::new(Opts::from(opts(&via))).await.unwrap();
    let query = tokio::spawn(async move { c.query_drop("SELECT SLEEP(5)").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    client.disable("db").await.unwrap();
    let e = query.await.unwrap().expect_err("the path went away");
    insta::assert_snapshot!("cut_mid_query", seen(&e));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_black_hole_never_answers() {
    if !common::mariadb() {
        return;
    }
    let (_s, _proxy, client, via) = common::proxied().await;
    let mut c = Conn::new(Opts::from(opts(&via))).await.unwrap();
    client
        .add_toxic(
            "db",
            ToxicSpec::new(Stream::Downstream, ToxicKind::Timeout { timeout: 0 }),
        )
        .await
        .unwrap();
    // mysql_async has no read timeout: only the caller's own deadline ends this.
    let hung = tokio::time::timeout(Duration::from_secs(1), c.query_drop("SELECT 1")).await;
    assert!(hung.is_err(), "a black hole must hang, got {hung:?}");
}
