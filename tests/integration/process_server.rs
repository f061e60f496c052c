//! The process backend against a real `mariadbd`: start, users, settings, every action,
//! and that nothing is left behind, also when the harness itself is SIGKILLed.
//!
//! Some tests re-invoke this test binary as a child (`--exact <helper>`) with
//! `GONEAWAY_TEST_ROLE` set: to play a harness that gets SIGKILLed, and to change an
//! environment variable without racing the other tests in this process.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use goneaway::server::process::{self, ProcessServer};
use goneaway::server::{Action, BackendKind, ConnectInfo, Server, ServerError, ServerSpec};
use sqlx::mysql::MySqlConnection;
use sqlx::{ConnectOptions, Connection, Row};

const ROLE: &str = "GONEAWAY_TEST_ROLE";

/// Whether a server binary is installed. Locally a missing one skips with one line; with
/// `CI` set it fails, so CI can never go green by skipping every server test.
fn have_server() -> bool {
    match process::find_binary() {
        Ok(_) => true,
        Err(e) if std::env::var_os("CI").is_some() => panic!("CI is set and {e}"),
        Err(e) => {
            println!("skipping: {e}");
            false
        }
    }
}

fn spec(settings: &[(&str, &str)]) -> ServerSpec {
    ServerSpec {
        backend: BackendKind::Process,
        settings: settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..ServerSpec::default()
    }
}

async fn connect(info: &ConnectInfo) -> Result<MySqlConnection, String> {
    match tokio::time::timeout(Duration::from_secs(10), info.options().connect()).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(format!("connect {info:?}: {e}")),
        Err(_) => Err(format!("connect {info:?}: timed out")),
    }
}

async fn int(conn: &mut MySqlConnection, sql: &'static str) -> i64 {
    // MariaDB reports system variables as BIGINT UNSIGNED, COUNT(*) as BIGINT.
    let row = sqlx::query(sql)
        .fetch_one(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    row.try_get::<i64, _>(0)
        .or_else(|_| row.try_get::<u64, _>(0).map(|v| v as i64))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Alive means it exists and is not a zombie (a dead process waiting to be reaped holds
/// no port, file or memory; here PID 1 reaps orphans only every few seconds).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => !matches!(
            stat.rsplit(')')
                .next()
                .and_then(|s| s.trim().chars().next()),
            Some('Z') | Some('X')
        ),
    }
}

/// Pids of live processes whose command line mentions `dir`.
fn processes_mentioning(dir: &Path) -> Vec<u32> {
    let needle = dir.as_os_str().as_encoded_bytes();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if cmdline.windows(needle.len()).any(|w| w == needle) && alive(pid) {
            found.push(pid);
        }
    }
    found
}

fn assert_gone(dir: &Path, pid: u32) {
    assert!(!alive(pid), "server pid {pid} still alive");
    assert!(!dir.exists(), "temp dir {} still exists", dir.display());
    assert_eq!(processes_mentioning(dir), Vec::<u32>::new());
}

/// Run this test binary's `test` with `ROLE=role`, stdout piped.
fn child(test: &str, role: &str, envs: &[(&str, &str)]) -> std::process::Child {
    // libtest names a test by its module path inside the test crate
    // (`process_server::child_role_…` in the integration binary).
    let name = match module_path!().split_once("::") {
        Some((_, module)) => format!("{module}::{test}"),
        None => test.to_string(),
    };
    Command::new(std::env::current_exe().expect("current exe"))
        .args(["--exact", &name, "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child test binary")
}

fn role_is(role: &str) -> bool {
    std::env::var(ROLE).as_deref() == Ok(role)
}

#[tokio::test]
async fn start_gives_working_app_and_admin_users_with_suite_settings() {
    if !have_server() {
        return;
    }
    // Through the public entry point, as a suite would.
    let server =
        goneaway::server::start(&spec(&[("wait_timeout", "2"), ("max_connections", "20")]))
            .await
            .expect("start");
    assert_eq!(server.backend(), BackendKind::Process);
    assert!(server.version().contains("MariaDB") || !server.version().is_empty());

    let app = server.app();
    assert_eq!(
        (app.host.as_str(), app.database.as_str()),
        ("127.0.0.1", "goneaway")
    );
    let mut conn = connect(&app).await.expect("app connects");
    assert_eq!(int(&mut conn, "SELECT @@wait_timeout").await, 2);
    // The app user owns its database.
    sqlx::raw_sql("CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1)")
        .execute(&mut conn)
        .await
        .expect("app creates a table in goneaway");
    conn.close().await.unwrap();

    let admin = server.admin();
    assert_eq!(admin.port, app.port);
    let mut conn = connect(&admin).await.expect("admin connects");
    assert_eq!(int(&mut conn, "SELECT @@GLOBAL.max_connections").await, 20);
    // Admin can do what faults need.
    sqlx::raw_sql("SET GLOBAL wait_timeout = 3")
        .execute(&mut conn)
        .await
        .expect("admin sets a global");
    conn.close().await.unwrap();

    // install-db's passwordless root@127.0.0.1 must not survive.
    let root = ConnectInfo {
        user: "root".into(),
        password: String::new(),
        ..admin.clone()
    };
    assert!(connect(&root).await.is_err(), "passwordless root over TCP");

    for action in [Action::Disconnect, Action::Reconnect] {
        assert!(!server.supports(action));
        assert!(matches!(
            server.act(action).await,
            Err(ServerError::Unsupported { .. })
        ));
    }
    for action in [
        Action::Crash,
        Action::Shutdown,
        Action::Start,
        Action::Pause,
        Action::Resume,
    ] {
        assert!(server.supports(action));
    }
}

#[tokio::test]
async fn crash_then_start_comes_back_on_the_same_port_with_the_data() {
    if !have_server() {
        return;
    }
    let server = ProcessServer::start(&spec(&[])).await.expect("start");
    let app = server.app();
    let mut conn = connect(&app).await.unwrap();
    sqlx::raw_sql("CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1)")
        .execute(&mut conn)
        .await
        .unwrap();
    let before = server.pid().await.expect("running");

    server.act(Action::Crash).await.expect("crash");
    assert!(!alive(before), "crash reaps the server");
    assert_eq!(server.pid().await, None);
    assert!(
        sqlx::query("SELECT 1").execute(&mut conn).await.is_err(),
        "a connection to a crashed server fails"
    );
    // Down: only Start makes sense.
    for action in [
        Action::Crash,
        Action::Shutdown,
        Action::Pause,
        Action::Resume,
    ] {
        let err = server
            .act(action)
            .await
            .expect_err("acting on a down server");
        assert!(err.to_string().contains("it is down"), "{err}");
    }

    let began = Instant::now();
    server.act(Action::Start).await.expect("start again");
    println!("restart after crash ready in {:?}", began.elapsed());
    assert_eq!(server.port(), app.port);
    assert_ne!(server.pid().await, Some(before));
    let mut conn = connect(&server.app()).await.expect("app reconnects");
    assert_eq!(int(&mut conn, "SELECT COUNT(*) FROM t").await, 1);

    let err = server.act(Action::Start).await.expect_err("start twice");
    assert!(err.to_string().contains("already running"), "{err}");
}

#[tokio::test]
async fn start_on_a_taken_port_says_so_and_can_be_retried() {
    if !have_server() {
        return;
    }
    let server = ProcessServer::start(&spec(&[])).await.expect("start");
    server.act(Action::Crash).await.unwrap();
    let squatter = std::net::TcpListener::bind(("127.0.0.1", server.port())).unwrap();
    let err = server.act(Action::Start).await.expect_err("port is taken");
    println!("{err}");
    assert!(err.to_string().contains("Address already in use"), "{err}");
    assert_eq!(server.pid().await, None);
    drop(squatter);
    server.act(Action::Start).await.expect("port free again");
    let mut conn = connect(&server.app()).await.expect("app reconnects");
    assert_eq!(int(&mut conn, "SELECT 1").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_servers_start_at_once_on_distinct_ports() {
    if !have_server() {
        return;
    }
    let spec = spec(&[]);
    let starts = (0..6).map(|_| ProcessServer::start(&spec));
    let servers: Vec<ProcessServer> = futures::future::join_all(starts)
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .expect("all start");
    let mut ports: Vec<u16> = servers.iter().map(|s| s.port()).collect();
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), servers.len());
    for server in &servers {
        let mut conn = connect(&server.app()).await.expect("app connects");
        assert_eq!(int(&mut conn, "SELECT 1").await, 1);
    }
}

#[tokio::test]
async fn shutdown_then_start() {
    if !have_server() {
        return;
    }
    let server = ProcessServer::start(&spec(&[])).await.expect("start");
    let before = server.pid().await.expect("running");
    server.act(Action::Shutdown).await.expect("shutdown");
    assert!(!alive(before));
    assert_eq!(server.pid().await, None);
    assert!(connect(&server.app()).await.is_err(), "nothing listens");
    server.act(Action::Start).await.expect("start again");
    let mut conn = connect(&server.app()).await.expect("app reconnects");
    assert_eq!(int(&mut conn, "SELECT 1").await, 1);

    // A paused server still shuts down (it needs SIGCONT to act on SIGTERM) and crashes.
    for action in [Action::Shutdown, Action::Crash] {
        server.act(Action::Pause).await.unwrap();
        let pid = server.pid().await.unwrap();
        tokio::time::timeout(Duration::from_secs(20), server.act(action))
            .await
            .expect("bounded")
            .unwrap_or_else(|e| panic!("{action:?} while paused: {e}"));
        assert!(!alive(pid));
        server.act(Action::Start).await.expect("start again");
    }
    let mut conn = connect(&server.app()).await.expect("app reconnects");
    assert_eq!(int(&mut conn, "SELECT 1").await, 1);
}

#[tokio::test]
async fn pause_freezes_queries_and_resume_brings_them_back() {
    if !have_server() {
        return;
    }
    let server = ProcessServer::start(&spec(&[])).await.expect("start");
    let mut conn = connect(&server.app()).await.unwrap();

    server.act(Action::Pause).await.expect("pause");
    let frozen = tokio::time::timeout(
        Duration::from_secs(1),
        sqlx::query("SELECT 1").execute(&mut conn),
    )
    .await;
    assert!(frozen.is_err(), "a query to a paused server must hang");
    let err = server.act(Action::Pause).await.expect_err("pause twice");
    assert!(err.to_string().contains("already paused"), "{err}");

    server.act(Action::Resume).await.expect("resume");
    let mut conn = connect(&server.app()).await.expect("connects after resume");
    assert_eq!(int(&mut conn, "SELECT 1").await, 1);
    let err = server.act(Action::Resume).await.expect_err("resume twice");
    assert!(err.to_string().contains("not paused"), "{err}");

    // Dropping a paused server still cleans up (SIGCONT, SIGKILL, reap).
    server.act(Action::Pause).await.unwrap();
    let (dir, pid) = (server.dir().to_path_buf(), server.pid().await.unwrap());
    drop(server);
    assert_gone(&dir, pid);
}

#[tokio::test]
async fn drop_leaves_no_process_and_no_dir() {
    if !have_server() {
        return;
    }
    for _ in 0..3 {
        let began = Instant::now();
        let server = ProcessServer::start(&spec(&[])).await.expect("start");
        println!(
            "full start (datadir, spawn, ready, users) in {:?}",
            began.elapsed()
        );
        drop(server);
    }
    let server = ProcessServer::start(&spec(&[])).await.expect("start");
    let dir = server.dir().to_path_buf();
    let pid = server.pid().await.expect("running");
    assert!(dir.join("data").is_dir());
    assert!(dir.starts_with(std::env::temp_dir()));
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with(&format!("goneaway-{}-", std::process::id())),
        "{name}"
    );
    assert_eq!(processes_mentioning(&dir.join("data")), vec![pid]);
    drop(server);
    assert_gone(&dir, pid);
}

#[test]
fn drop_works_without_a_runtime() {
    if !have_server() {
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt
        .block_on(ProcessServer::start(&spec(&[])))
        .expect("start");
    let pid = rt.block_on(server.pid()).expect("running");
    let dir = server.dir().to_path_buf();
    drop(rt);
    assert!(
        alive(pid),
        "the server outlives the runtime that started it"
    );
    drop(server);
    assert_gone(&dir, pid);
}

#[tokio::test]
async fn unknown_setting_fails_with_the_servers_own_words() {
    if !have_server() {
        return;
    }
    let err = ProcessServer::start(&spec(&[("no_such_option", "1")]))
        .await
        .expect_err("an unknown option must not be ignored");
    let text = err.to_string();
    println!("{text}");
    assert!(matches!(err, ServerError::Exited { .. }), "{text}");
    assert!(
        text.contains("unknown variable 'no_such_option=1'"),
        "{text}"
    );
}

#[tokio::test]
async fn settings_the_backend_manages_are_refused() {
    if !have_server() {
        return;
    }
    let err = ProcessServer::start(&spec(&[("port", "3306")]))
        .await
        .expect_err("port is ours");
    assert!(err.to_string().contains("`port`"), "{err}");
}

#[test]
fn missing_binary_is_a_clear_error() {
    // In a child process: setting GONEAWAY_MYSQLD here would race the other tests.
    let out = child(
        "child_role_expect_missing_binary",
        "missing",
        &[("GONEAWAY_MYSQLD", "/nonexistent")],
    )
    .wait_with_output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains(
            "MISSING no MySQL server binary found (looked for GONEAWAY_MYSQLD=/nonexistent)"
        ),
        "{stdout}"
    );
}

#[tokio::test]
async fn child_role_expect_missing_binary() {
    if !role_is("missing") {
        return;
    }
    let err = ProcessServer::start(&spec(&[]))
        .await
        .expect_err("no binary at /nonexistent");
    assert!(matches!(err, ServerError::MissingBinary { .. }), "{err}");
    println!("MISSING {err}");
}

#[test]
fn sigkilled_harness_leaves_no_server_and_no_dir() {
    if !have_server() {
        return;
    }
    let mut harness = child("child_role_hold_a_server", "hold", &[]);
    let stdout = harness.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // libtest prints "test <name> ... " on the same line first.
            if let Some((_, rest)) = line.split_once("HELD ") {
                let _ = tx.send(rest.trim().to_string());
            }
        }
    });
    let held = rx.recv_timeout(Duration::from_secs(60));
    let Ok(held) = held else {
        let _ = harness.kill();
        let _ = harness.wait();
        panic!("the child harness never reported its server");
    };
    let (dir, pid) = held.split_once(' ').unwrap();
    let dir = PathBuf::from(dir);
    let pid: u32 = pid.parse().unwrap();
    assert!(alive(pid) && dir.is_dir());

    harness.kill().unwrap(); // SIGKILL: no destructor runs in the child
    harness.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    // The watchdog (whose command line names the dir) may still be exiting.
    while (alive(pid) || dir.exists() || !processes_mentioning(&dir).is_empty())
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_gone(&dir, pid);
}

#[tokio::test]
async fn child_role_hold_a_server() {
    if !role_is("hold") {
        return;
    }
    let server = ProcessServer::start(&spec(&[])).await.expect("start");
    println!(
        "HELD {} {}",
        server.dir().display(),
        server.pid().await.unwrap()
    );
    // Until the parent SIGKILLs us.
    loop {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}

#[test]
fn start_sweeps_dirs_of_dead_harnesses() {
    if !have_server() {
        return;
    }
    // A pid that surely is dead: a child we already reaped.
    let mut gone = Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    let stale = std::env::temp_dir().join(format!("goneaway-{dead}-sweeptest"));
    std::fs::create_dir_all(stale.join("data")).unwrap();
    std::fs::write(stale.join(".goneaway-process"), b"").unwrap();
    // Not ours (no marker): must survive the sweep.
    let foreign = std::env::temp_dir().join(format!("goneaway-{dead}-notours"));
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("keep"), b"").unwrap();

    // The sweep runs once per process, at its first start: use a fresh process.
    let out = child("child_role_start_once", "start_once", &[])
        .wait_with_output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let kept = foreign.exists();
    let _ = std::fs::remove_dir_all(&foreign);
    assert!(out.status.success(), "{stdout}");
    assert!(!stale.exists(), "stale dir {} not swept", stale.display());
    assert!(kept, "a dir without the marker was swept");
}

#[tokio::test]
async fn child_role_start_once() {
    if !role_is("start_once") {
        return;
    }
    drop(ProcessServer::start(&spec(&[])).await.expect("start"));
}

#[tokio::test]
async fn server_outlives_the_threads_that_started_it() {
    if !have_server() {
        return;
    }
    // PDEATHSIG fires when the spawning *thread* exits; a tokio blocking-pool thread
    // retires after 10 s idle. The server must not die with it.
    let server = ProcessServer::start(&spec(&[])).await.expect("start");
    let pid = server.pid().await.unwrap();
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert!(alive(pid), "server died with an idle thread");
    let mut conn = connect(&server.app()).await.expect("still answers");
    assert_eq!(int(&mut conn, "SELECT 1").await, 1);
}

#[tokio::test]
async fn measure_spawn_reports_both_ways() {
    if !have_server() {
        return;
    }
    let trials = std::env::var("GONEAWAY_SPAWN_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let times = process::measure_spawn(trials).await.expect("measure");
    assert_eq!((times.cached.len(), times.fresh.len()), (trials, trials));
    for (way, list) in [("cached", &times.cached), ("fresh", &times.fresh)] {
        for t in list {
            println!(
                "{} {way}: prepare {:?} + spawn->ready {:?} = {:?}",
                times.version,
                t.prepare,
                t.ready,
                t.total()
            );
        }
    }
}
