//! The docker backend against real containers from the local image
//! (`bash ci/build-image.sh`). Without Docker or the image these tests print one line and
//! pass locally; with `CI` set they fail.
#![cfg(feature = "docker")]

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use goneaway::server::docker::{self, DockerServer, LABEL_OWNER_PID, LABEL_SERVER};
use goneaway::server::{Action, BackendKind, Server};
use sqlx::mysql::{MySqlConnection, MySqlPoolOptions};
use sqlx::{ConnectOptions, Row};

async fn docker_ready(test: &str, need_image: bool) -> bool {
    common::docker_ready_or_skip(test, need_image).await
}

use common::{docker_spec as spec, select_one};

async fn connect(server: &DockerServer) -> Result<MySqlConnection, String> {
    match tokio::time::timeout(Duration::from_secs(3), server.app().options().connect()).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(format!("error: {e}")),
        Err(_) => Err("no answer within 3s".into()),
    }
}

fn docker_ids(args: &[&str]) -> Vec<String> {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("run docker");
    assert!(out.status.success(), "docker {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

fn leftovers(server_name: &str) -> (Vec<String>, Vec<String>) {
    let filter = format!("label={LABEL_SERVER}={server_name}");
    (
        docker_ids(&["ps", "-aq", "--filter", &filter]),
        docker_ids(&["network", "ls", "-q", "--filter", &filter]),
    )
}

#[tokio::test]
async fn starts_with_settings_app_and_admin_users() {
    if !docker_ready("starts_with_settings_app_and_admin_users", true).await {
        return;
    }
    let server = DockerServer::start(&spec(&[("wait_timeout", "7"), ("max_connections", "23")]))
        .await
        .unwrap();
    assert_eq!(server.backend(), BackendKind::Docker);
    assert!(server.version().contains("MariaDB"), "{}", server.version());

    let mut app = connect(&server).await.unwrap();
    let row = sqlx::query("SELECT @@wait_timeout, DATABASE(), CURRENT_USER()")
        .fetch_one(&mut app)
        .await
        .unwrap();
    assert_eq!(row.get::<u64, _>(0), 7);
    assert_eq!(row.get::<String, _>(1), "goneaway");
    assert_eq!(row.get::<String, _>(2), "goneaway@%");
    // The app user owns its database.
    sqlx::raw_sql("CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1)")
        .execute(&mut app)
        .await
        .unwrap();

    let mut admin = goneaway::server::admin_connect(&server.admin())
        .await
        .unwrap();
    let max: u64 = sqlx::query_scalar("SELECT @@GLOBAL.max_connections")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert_eq!(max, 23);
    // The admin can do what faults need.
    goneaway::server::admin_exec(&server.admin(), "SET GLOBAL wait_timeout = 9")
        .await
        .unwrap();
    assert_ne!(server.app().password, server.admin().password);

    let labels = docker_ids(&[
        "inspect",
        "-f",
        &format!("{{{{ index .Config.Labels \"{LABEL_OWNER_PID}\" }}}}"),
        server.container_id(),
    ]);
    assert_eq!(labels, vec![std::process::id().to_string()]);
    // Started through testcontainers (through the bridge, on an engine older than its API).
    let managed_by = docker_ids(&[
        "inspect",
        "-f",
        "{{ index .Config.Labels \"org.testcontainers.managed-by\" }}",
        server.container_id(),
    ]);
    assert_eq!(managed_by, vec!["testcontainers".to_string()]);
    // Published on loopback only.
    let bound = docker_ids(&["port", server.container_id(), "3306/tcp"]);
    assert_eq!(
        bound,
        vec![format!("127.0.0.1:{}", server.published().1)],
        "{bound:?}"
    );
    server.close().await.unwrap();
}

#[tokio::test]
async fn crash_then_start_keeps_the_address() {
    if !docker_ready("crash_then_start_keeps_the_address", true).await {
        return;
    }
    let server = DockerServer::start(&spec(&[])).await.unwrap();
    let before = server.app();
    let published = server.published();
    let mut held = connect(&server).await.unwrap();
    select_one(&mut held, Duration::from_secs(3)).await.unwrap();

    server.act(Action::Crash).await.unwrap();
    let seen = select_one(&mut held, Duration::from_secs(5)).await;
    eprintln!("held connection after crash: {seen:?}");
    assert!(seen.is_err());
    assert!(connect(&server).await.is_err(), "a crashed server accepted");

    let t = Instant::now();
    server.act(Action::Start).await.unwrap();
    eprintln!("start after crash took {:?}", t.elapsed());
    assert_eq!(server.app(), before);
    assert_eq!(server.published(), published);
    let mut conn = connect(&server).await.unwrap();
    select_one(&mut conn, Duration::from_secs(3)).await.unwrap();
    // The published port answers too.
    let via_port = server.app().via("127.0.0.1", published.1);
    let mut conn = via_port.options().connect().await.unwrap();
    select_one(&mut conn, Duration::from_secs(3)).await.unwrap();
}

#[tokio::test]
async fn shutdown_then_start_keeps_the_address() {
    if !docker_ready("shutdown_then_start_keeps_the_address", true).await {
        return;
    }
    let server = DockerServer::start(&spec(&[])).await.unwrap();
    let before = server.app();
    let mut held = connect(&server).await.unwrap();

    let t = Instant::now();
    server.act(Action::Shutdown).await.unwrap();
    eprintln!("shutdown took {:?}", t.elapsed());
    let seen = select_one(&mut held, Duration::from_secs(5)).await;
    eprintln!("held connection after shutdown: {seen:?}");
    assert!(seen.is_err());

    server.act(Action::Start).await.unwrap();
    assert_eq!(server.app(), before);
    let mut conn = connect(&server).await.unwrap();
    select_one(&mut conn, Duration::from_secs(3)).await.unwrap();
    // Data survives a graceful restart.
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM mysql.user")
        .fetch_one(
            &mut goneaway::server::admin_connect(&server.admin())
                .await
                .unwrap(),
        )
        .await
        .unwrap();
    assert!(n > 0);
}

#[tokio::test]
async fn pause_freezes_and_resume_recovers() {
    if !docker_ready("pause_freezes_and_resume_recovers", true).await {
        return;
    }
    let server = DockerServer::start(&spec(&[])).await.unwrap();
    let mut held = connect(&server).await.unwrap();
    select_one(&mut held, Duration::from_secs(3)).await.unwrap();

    server.act(Action::Pause).await.unwrap();
    let seen = select_one(&mut held, Duration::from_secs(2)).await;
    eprintln!("held connection while paused: {seen:?}");
    assert_eq!(seen, Err("no answer within 2s".to_string()));
    let fresh = connect(&server).await;
    eprintln!("new connection while paused: {:?}", fresh.as_ref().err());
    assert!(fresh.is_err());

    server.act(Action::Resume).await.unwrap();
    let mut conn = connect(&server).await.unwrap();
    assert_eq!(select_one(&mut conn, Duration::from_secs(3)).await, Ok(1));
}

#[tokio::test]
async fn disconnect_cuts_and_reconnect_restores() {
    if !docker_ready("disconnect_cuts_and_reconnect_restores", true).await {
        return;
    }
    let server = DockerServer::start(&spec(&[])).await.unwrap();
    let before = server.app();
    // A pool as an application would hold it: one connection, no ping before use, so
    // what the network does reaches the query.
    let pool = MySqlPoolOptions::new()
        .max_connections(1)
        .test_before_acquire(false)
        .acquire_timeout(Duration::from_secs(3))
        .connect_with(server.app().options())
        .await
        .unwrap();
    let query = |within: Duration| common::timed_select_one(&pool, within);
    assert_eq!(query(Duration::from_secs(3)).await.0, Ok(1));

    // A short cut while the pooled connection is idle: TCP state lives on both sides.
    server.act(Action::Disconnect).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.act(Action::Reconnect).await.unwrap();
    let short = query(Duration::from_secs(5)).await;
    eprintln!("pooled connection after a 0.5 s idle cut: {short:?}");

    // A cut during use.
    server.act(Action::Disconnect).await.unwrap();
    let during = query(Duration::from_secs(2)).await;
    eprintln!("pooled connection during the cut: {during:?}");
    assert!(during.0.is_err());
    let fresh = connect(&server).await;
    eprintln!("new connection during the cut: {:?}", fresh.as_ref().err());
    assert!(fresh.is_err());

    server.act(Action::Reconnect).await.unwrap();
    assert_eq!(server.app(), before);
    let after = query(Duration::from_secs(10)).await;
    eprintln!("pooled connection after reconnect: {after:?}");
    let again = query(Duration::from_secs(10)).await;
    eprintln!("pooled connection, next query: {again:?}");
    let mut conn = connect(&server).await.unwrap();
    assert_eq!(select_one(&mut conn, Duration::from_secs(3)).await, Ok(1));
}

#[tokio::test]
async fn drop_leaves_no_container_or_network() {
    if !docker_ready("drop_leaves_no_container_or_network", true).await {
        return;
    }
    let server = DockerServer::start(&spec(&[])).await.unwrap();
    let name = server.name().to_string();
    assert_eq!(leftovers(&name).0.len(), 1);
    assert_eq!(leftovers(&name).1.len(), 1);
    drop(server);
    assert_eq!(leftovers(&name), (vec![], vec![]));

    // A paused server too.
    let server = DockerServer::start(&spec(&[])).await.unwrap();
    let name = server.name().to_string();
    server.act(Action::Pause).await.unwrap();
    drop(server);
    assert_eq!(leftovers(&name), (vec![], vec![]));
}

#[tokio::test]
async fn a_panic_leaves_nothing_behind() {
    if !docker_ready("a_panic_leaves_nothing_behind", true).await {
        return;
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let server = DockerServer::start(&spec(&[])).await.unwrap();
        tx.send(server.name().to_string()).unwrap();
        panic!("the test panics while holding {server:?}");
    });
    let name = rx.await.unwrap();
    assert!(task.await.unwrap_err().is_panic());
    assert_eq!(leftovers(&name), (vec![], vec![]));
}

#[test]
fn dropped_outside_a_runtime_leaves_nothing_behind() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    if !runtime.block_on(docker_ready("dropped_outside_a_runtime", true)) {
        return;
    }
    let server = runtime.block_on(DockerServer::start(&spec(&[]))).unwrap();
    drop(runtime);
    let name = server.name().to_string();
    drop(server);
    assert_eq!(leftovers(&name), (vec![], vec![]));
}

#[tokio::test]
async fn gc_removes_what_a_dead_owner_left() {
    if !docker_ready("gc_removes_what_a_dead_owner_left", true).await {
        return;
    }
    let live = DockerServer::start(&spec(&[])).await.unwrap();
    // A pid that no longer runs.
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let tag = format!("gc-test-{}-{dead}", std::process::id());
    let owner = format!("{LABEL_OWNER_PID}={dead}");
    let server = format!("{LABEL_SERVER}={tag}");
    docker_ids(&[
        "network", "create", "--label", &owner, "--label", &server, &tag,
    ]);
    docker_ids(&[
        "create",
        "--name",
        &tag,
        "--network",
        &tag,
        "--label",
        &owner,
        "--label",
        &server,
        docker::DEFAULT_IMAGE,
    ]);
    assert_eq!(leftovers(&tag).0.len(), 1);

    let report = docker::gc().await.unwrap();
    eprintln!("{report:?}");
    assert!(report.containers.contains(&tag), "{report:?}");
    assert!(report.networks.contains(&tag), "{report:?}");
    assert_eq!(leftovers(&tag), (vec![], vec![]));
    // A live owner's server is untouched.
    assert_eq!(leftovers(live.name()).0.len(), 1);
    let mut conn = connect(&live).await.unwrap();
    select_one(&mut conn, Duration::from_secs(3)).await.unwrap();
}

#[tokio::test]
async fn a_missing_image_names_the_build_command() {
    if !docker_ready("a_missing_image_names_the_build_command", false).await {
        return;
    }
    if std::env::var_os(docker::IMAGE_ENV).is_some() {
        eprintln!("skipping: {} overrides the image", docker::IMAGE_ENV);
        return;
    }
    let mut spec = spec(&[]);
    spec.image = Some("goneaway/mariadb:no-such-tag".into());
    let err = DockerServer::start(&spec).await.unwrap_err().to_string();
    assert_eq!(
        err,
        "docker image goneaway/mariadb:no-such-tag is not on this machine; \
         build it with `bash ci/build-image.sh`"
    );
}

#[tokio::test]
async fn a_server_that_never_gets_ready_says_why() {
    if !docker_ready("a_server_that_never_gets_ready_says_why", true).await {
        return;
    }
    // An option mariadbd refuses: it exits at once and the message carries its log.
    let err = DockerServer::start(&spec(&[("no_such_option", "1")]))
        .await
        .unwrap_err()
        .to_string();
    eprintln!("{err}");
    let first = err.lines().next().unwrap();
    assert!(first.starts_with("server exited during start"), "{err}");
    assert!(err.contains("unknown variable 'no_such_option=1'"), "{err}");
}

#[tokio::test]
async fn spawn_is_measured() {
    if !docker_ready("spawn_is_measured", true).await {
        return;
    }
    let timings = docker::measure_spawn(3).await.unwrap();
    assert_eq!(timings.len(), 3);
    for t in &timings {
        eprintln!(
            "docker spawn: total {:?}, start to ready {:?}",
            t.total, t.start_to_ready
        );
        assert!(t.start_to_ready <= t.total);
    }
}

#[tokio::test]
async fn a_taken_port_is_named_on_start() {
    if !docker_ready("a_taken_port_is_named_on_start", true).await {
        return;
    }
    let server = DockerServer::start(&spec(&[])).await.unwrap();
    server.act(Action::Shutdown).await.unwrap();
    let (host, port) = server.published();
    let squatter = std::net::TcpListener::bind((host.as_str(), port)).unwrap();
    let err = server.act(Action::Start).await.unwrap_err().to_string();
    eprintln!("{err}");
    assert!(
        err.starts_with(&format!(
            "cannot publish the server on 127.0.0.1:{port}: the port is taken by another process"
        )),
        "{err}"
    );
    drop(squatter);
    server.act(Action::Start).await.unwrap();
    let mut conn = connect(&server).await.unwrap();
    assert_eq!(select_one(&mut conn, Duration::from_secs(3)).await, Ok(1));
}

#[test]
fn a_server_outlives_the_runtime_that_started_it() {
    // proptest builds a runtime per case while a server is shared across cases.
    let first = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    if !first.block_on(docker_ready(
        "a_server_outlives_the_runtime_that_started_it",
        true,
    )) {
        return;
    }
    let server = first.block_on(DockerServer::start(&spec(&[]))).unwrap();
    drop(first);
    for _ in 0..2 {
        let next = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        next.block_on(async {
            server.act(Action::Crash).await.unwrap();
            server.act(Action::Start).await.unwrap();
            let mut conn = connect(&server).await.unwrap();
            assert_eq!(select_one(&mut conn, Duration::from_secs(3)).await, Ok(1));
        });
    }
}

#[tokio::test]
async fn faults_compose_in_any_order() {
    if !docker_ready("faults_compose_in_any_order", true).await {
        return;
    }
    let server = DockerServer::start(&spec(&[])).await.unwrap();
    let before = server.app();
    let answers = || async {
        let mut conn = connect(&server).await?;
        select_one(&mut conn, Duration::from_secs(3)).await
    };
    // A frozen server is killed and comes back.
    server.act(Action::Pause).await.unwrap();
    server.act(Action::Crash).await.unwrap();
    server.act(Action::Start).await.unwrap();
    assert_eq!(answers().await, Ok(1));
    // Restarted while cut off: Reconnect returns once it answers.
    server.act(Action::Disconnect).await.unwrap();
    server.act(Action::Shutdown).await.unwrap();
    server.act(Action::Start).await.unwrap();
    assert!(answers().await.is_err());
    server.act(Action::Reconnect).await.unwrap();
    assert_eq!(answers().await, Ok(1));
    // Reconnected while down, then started.
    server.act(Action::Disconnect).await.unwrap();
    server.act(Action::Crash).await.unwrap();
    server.act(Action::Reconnect).await.unwrap();
    server.act(Action::Start).await.unwrap();
    assert_eq!(answers().await, Ok(1));
    // Paused and cut off at once, healed in the other order.
    server.act(Action::Pause).await.unwrap();
    server.act(Action::Disconnect).await.unwrap();
    server.act(Action::Resume).await.unwrap();
    server.act(Action::Reconnect).await.unwrap();
    assert_eq!(answers().await, Ok(1));
    assert_eq!(server.app(), before);
}

#[tokio::test]
async fn official_image_names_get_their_environment() {
    if !docker_ready("official_image_names_get_their_environment", true).await {
        return;
    }
    if std::env::var_os(docker::IMAGE_ENV).is_some() {
        eprintln!("skipping: {} overrides the image", docker::IMAGE_ENV);
        return;
    }
    // The local image accepts MYSQL_* as well as MARIADB_* variables, so tagged with an
    // official-looking name it exercises the official images' code paths (not their
    // double start, which needs the real images).
    for (tag, flavor) in [
        ("goneaway-test/mysql:8", docker::Flavor::MySql),
        ("goneaway-test/mariadb:11", docker::Flavor::MariaDb),
    ] {
        docker_ids(&["tag", docker::DEFAULT_IMAGE, tag]);
        let mut spec = spec(&[("wait_timeout", "5")]);
        spec.image = Some(tag.into());
        let started = DockerServer::start(&spec).await;
        docker_ids(&["rmi", tag]);
        let server = started.unwrap();
        assert_eq!(server.flavor(), flavor);
        let mut conn = connect(&server).await.unwrap();
        let wait: u64 = sqlx::query_scalar("SELECT @@wait_timeout")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(wait, 5);
        goneaway::server::admin_exec(&server.admin(), "SELECT 1")
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn an_image_that_cannot_be_pulled_says_so() {
    if !docker_ready("an_image_that_cannot_be_pulled_says_so", false).await {
        return;
    }
    if std::env::var_os(docker::IMAGE_ENV).is_some() {
        eprintln!("skipping: {} overrides the image", docker::IMAGE_ENV);
        return;
    }
    let mut spec = spec(&[]);
    spec.image = Some("mysql:0.0-goneaway-no-such-tag".into());
    let err = DockerServer::start(&spec).await.unwrap_err().to_string();
    eprintln!("{err}");
    assert!(
        err.starts_with(
            "docker image mysql:0.0-goneaway-no-such-tag is not on this machine; pulling it failed ("
        ),
        "{err}"
    );
    assert!(err.ends_with(&format!(
        "build the local one with `{}`",
        docker::BUILD_COMMAND
    )));
    assert_eq!(err.lines().count(), 1);
}
