//! The error classifier against errors produced live by a real server: each scenario is
//! made to happen, and the class sqlx's error lands in is asserted.

use crate::common;

use std::time::Duration;

use goneaway::ErrorClass;
use goneaway::pool::sqlx::classify;
use goneaway::server::{self, Action, ServerSpec};
use sqlx::mysql::MySqlPoolOptions;
use sqlx::{Connection, Executor};

fn spec(settings: &[(&str, &str)]) -> ServerSpec {
    common::server_spec(settings)
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_past_wait_timeout_is_gone_away() {
    if !common::mariadb() {
        return;
    }
    let s = server::start(&spec(&[("wait_timeout", "1")]))
        .await
        .unwrap();
    let pool = MySqlPoolOptions::new()
        .max_connections(1)
        .test_before_acquire(false)
        .connect(&s.app().url())
        .await
        .unwrap();
    pool.execute("SELECT 1").await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let e = pool
        .execute("SELECT 1")
        .await
        .expect_err("the server closed the idle connection");
    assert_eq!(classify(&e), ErrorClass::GoneAway, "{e:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_mid_query_is_lost_connection() {
    if !common::mariadb() {
        return;
    }
    let s = server::start(&spec(&[])).await.unwrap();
    let mut victim = sqlx::MySqlConnection::connect(&s.app().url())
        .await
        .unwrap();
    let id: u64 = sqlx::query_scalar("SELECT CONNECTION_ID()")
        .fetch_one(&mut victim)
        .await
        .unwrap();
    let admin = s.admin();
    let killer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        server::admin_exec(&admin, &format!("KILL CONNECTION {id}"))
            .await
            .unwrap();
    });
    let e = sqlx::query("SELECT SLEEP(5)")
        .fetch_one(&mut victim)
        .await
        .expect_err("killed");
    killer.await.unwrap();
    assert!(
        matches!(
            classify(&e),
            ErrorClass::LostConnection | ErrorClass::Killed
        ),
        "{e:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_listening_is_connect_refused() {
    if !common::mariadb() {
        return;
    }
    let s = server::start(&spec(&[])).await.unwrap();
    s.act(Action::Crash).await.unwrap();
    let e = sqlx::MySqlConnection::connect(&s.app().url())
        .await
        .expect_err("server is down");
    assert_eq!(classify(&e), ErrorClass::ConnectRefused, "{e:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_drained_pool_is_checkout_timeout() {
    if !common::mariadb() {
        return;
    }
    let s = server::start(&spec(&[])).await.unwrap();
    let pool = MySqlPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_millis(500))
        .connect(&s.app().url())
        .await
        .unwrap();
    let _a = pool.acquire().await.unwrap();
    let _b = pool.acquire().await.unwrap();
    let e = pool.acquire().await.expect_err("both held");
    assert_eq!(classify(&e), ErrorClass::CheckoutTimeout, "{e:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn over_the_server_limit_is_too_many_connections() {
    if !common::mariadb() {
        return;
    }
    let s = server::start(&spec(&[("max_connections", "10")]))
        .await
        .unwrap();
    let mut held = Vec::new();
    let err = loop {
        match sqlx::MySqlConnection::connect(&s.app().url()).await {
            Ok(c) if held.len() < 20 => held.push(c),
            Ok(_) => panic!("the server accepted 20 connections with max_connections = 10"),
            Err(e) => break e,
        }
    };
    assert_eq!(classify(&err), ErrorClass::TooManyConnections, "{err:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_write_to_a_read_only_server_is_read_only() {
    if !common::mariadb() {
        return;
    }
    let s = server::start(&spec(&[])).await.unwrap();
    server::admin_exec(
        &s.admin(),
        "CREATE TABLE goneaway.ro (id BIGINT PRIMARY KEY) ENGINE=InnoDB",
    )
    .await
    .unwrap();
    let mut conn = sqlx::MySqlConnection::connect(&s.app().url())
        .await
        .unwrap();
    // A write in a READ ONLY transaction (the server itself writable): 1792.
    conn.execute("START TRANSACTION READ ONLY").await.unwrap();
    let e = conn
        .execute("INSERT INTO ro VALUES (1)")
        .await
        .expect_err("a read-only transaction refuses writes");
    assert_eq!(classify(&e), ErrorClass::ReadOnly, "{e:?}");
    assert_eq!(
        e.to_string(),
        "error returned from database: 1792 (25006): Cannot execute statement in a READ ONLY transaction"
    );
    conn.execute("ROLLBACK").await.unwrap();
    // The server turned read-only under an open connection (an old primary after a
    // failover): the app user has no SUPER / READ ONLY ADMIN, so 1290 naming the option.
    s.set_global("read_only", "ON").await.unwrap();
    conn.execute("SELECT 1").await.expect("reads still work");
    let e = conn
        .execute("INSERT INTO ro VALUES (2)")
        .await
        .expect_err("a read-only server refuses writes");
    assert_eq!(classify(&e), ErrorClass::ReadOnly, "{e:?}");
    assert_eq!(
        e.to_string(),
        "error returned from database: 1290 (HY000): The MariaDB server is running with the --read-only option so it cannot execute this statement"
    );
    // Inside a transaction the same refusal comes at the write, not at BEGIN.
    let mut tx = conn.begin().await.expect("BEGIN is not a write");
    let e = tx
        .execute("INSERT INTO ro VALUES (3)")
        .await
        .expect_err("refused");
    assert_eq!(classify(&e), ErrorClass::ReadOnly, "{e:?}");
    drop(tx);
    // MariaDB 10.11 did not send 1836 (ER_READ_ONLY_MODE) in any scenario tried by
    // hand (innodb_read_only gives 1036 / 1005 instead); it is classified by number.
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shutdown_mid_query_is_seen_by_the_client() {
    if !common::mariadb() {
        return;
    }
    let s = server::start(&spec(&[])).await.unwrap();
    let mut victim = sqlx::MySqlConnection::connect(&s.app().url())
        .await
        .unwrap();
    let query = tokio::spawn(async move {
        sqlx::query("SELECT SLEEP(10)")
            .fetch_one(&mut victim)
            .await
            .map(drop)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.act(Action::Shutdown).await.unwrap();
    let e = query
        .await
        .unwrap()
        .expect_err("the server went down under the query");
    // MariaDB kills running statements on shutdown: 1927 or the socket closing.
    assert!(
        matches!(
            classify(&e),
            ErrorClass::Killed | ErrorClass::ServerShutdown | ErrorClass::LostConnection
        ),
        "{e:?}"
    );
}

// ---- through the proxy: what each network fault looks like to sqlx ----

use goneaway::proxy::client::{Client, ToxicSpec};
use goneaway::proxy::{ProxyServer, Stream, ToxicKind};

/// A server, the embedded proxy in front of it, and the app's URL through the proxy.
async fn proxied() -> (Box<dyn server::Server>, ProxyServer, Client, String) {
    let (s, proxy, client, via) = common::proxied().await;
    (s, proxy, client, via.url())
}

/// A connection through the proxy, then `kind` on its `stream`; the first part keeps the
/// server and proxy alive.
async fn connected_with_toxic(
    stream: Stream,
    kind: ToxicKind,
) -> (
    (Box<dyn server::Server>, ProxyServer),
    sqlx::MySqlConnection,
) {
    let (s, proxy, client, url) = proxied().await;
    let conn = sqlx::MySqlConnection::connect(&url).await.unwrap();
    client
        .add_toxic("db", ToxicSpec::new(stream, kind))
        .await
        .unwrap();
    ((s, proxy), conn)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cut_mid_query_is_lost_connection() {
    if !common::mariadb() {
        return;
    }
    let (_s, _proxy, client, url) = proxied().await;
    let mut conn = sqlx::MySqlConnection::connect(&url).await.unwrap();
    let query = tokio::spawn(async move {
        sqlx::query("SELECT SLEEP(5)")
            .fetch_one(&mut conn)
            .await
            .map(drop)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    client.disable("db").await.unwrap();
    let e = query
        .await
        .unwrap()
        .expect_err("the path went away under the query");
    assert_eq!(classify(&e), ErrorClass::LostConnection, "{e:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reset_is_gone_away() {
    if !common::mariadb() {
        return;
    }
    let (_keep, mut conn) =
        connected_with_toxic(Stream::Upstream, ToxicKind::ResetPeer { timeout: 0 }).await;
    let e = sqlx::query("SELECT 1")
        .fetch_one(&mut conn)
        .await
        .expect_err("reset");
    assert_eq!(classify(&e), ErrorClass::GoneAway, "{e:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_closed_mid_result_is_lost_connection() {
    if !common::mariadb() {
        return;
    }
    let (_keep, mut conn) =
        connected_with_toxic(Stream::Downstream, ToxicKind::LimitData { bytes: 100 }).await;
    // A result far larger than 100 bytes: the connection dies inside it.
    let e = sqlx::query("SELECT REPEAT('x', 5000)")
        .fetch_one(&mut conn)
        .await
        .expect_err("cut mid-result");
    assert_eq!(classify(&e), ErrorClass::LostConnection, "{e:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_black_hole_never_answers() {
    if !common::mariadb() {
        return;
    }
    let (_keep, mut conn) =
        connected_with_toxic(Stream::Downstream, ToxicKind::Timeout { timeout: 0 }).await;
    // sqlx has no read timeout: only the caller's own deadline ends this.
    let hung = tokio::time::timeout(
        Duration::from_secs(1),
        sqlx::query("SELECT 1").fetch_one(&mut conn),
    )
    .await;
    assert!(hung.is_err(), "a black hole must hang, got {hung:?}");
}
