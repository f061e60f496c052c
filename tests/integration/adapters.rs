//! The Go, Node and Java adapters against a real server: a drained pool gives each
//! library's own checkout error, `steps` requests run in one transaction on the real
//! connection, the settings come back in the library's words, keys the library does not
//! have are named before the run, the build is cached, and a missing runtime names the
//! Debian package to install. The fault suites (`suites/go-*`, …) run in `suites.rs`.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use crate::common;
use goneaway::pool::{Conn, Pool, Statement};
use goneaway::{ErrorClass, Suite, Verdict};

const BIN: &str = env!("CARGO_BIN_EXE_goneaway");

/// A suite on `kind` with `config` (TOML lines), `body` appended.
fn suite(kind: &str, config: &str, body: &str) -> String {
    format!(
        "description = \"an adapter under test\"\n\n[client]\nkind = \"{kind}\"\n\n[client.config]\n{config}\n{body}"
    )
}

/// Whether the server and this client's runtime are here; under `CI` their absence fails.
fn ready(text: &str) -> Option<Suite> {
    if !common::mariadb() {
        return None;
    }
    let s = Suite::from_toml(text, "adapter.toml", "adapter").expect("the test suite parses");
    common::client_ready(&s).then_some(s)
}

/// Two workers, every request leaks its connection into a pool of 2: the third
/// checkout waits on the library's own limit.
const DRAIN: &str = r#"
[workload]
workers = 2
duration = "4s"
think = "100ms"
op_timeout = "8s"
leak_every = 1

[expect]
verdict = "invalid"
errors = ["checkout_timeout"]
"#;

async fn drained(kind: &str, config: &str) -> String {
    let Some(s) = ready(&suite(kind, config, DRAIN)) else {
        return String::new();
    };
    let report = s.run().await.expect("the run completes");
    assert!(report.stable.met, "{}", report.human());
    let e = report
        .measured
        .errors
        .iter()
        .find(|e| e.class == ErrorClass::CheckoutTimeout)
        .unwrap_or_else(|| panic!("a checkout_timeout: {}", report.human()));
    e.first_message.clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn go_a_drained_pool_times_out_its_checkout_context() {
    let m = drained(
        "go-database-sql",
        "max_open_conns = 2\ncheckout_context_timeout = \"500ms\"",
    )
    .await;
    assert!(m.is_empty() || m == "context deadline exceeded", "{m}");
}

#[tokio::test(flavor = "multi_thread")]
async fn node_a_drained_pool_refuses_the_checkout_when_told_not_to_wait() {
    let m = drained(
        "node-mysql",
        "connectionLimit = 2\nwaitForConnections = false",
    )
    .await;
    assert!(m.is_empty() || m == "No connections available.", "{m}");
}

#[tokio::test(flavor = "multi_thread")]
async fn hikaricp_a_drained_pool_times_out_after_connection_timeout() {
    let m = drained("hikaricp", "maximumPoolSize = 2\nconnectionTimeout = 500").await;
    assert!(
        m.is_empty()
            || (m.starts_with(
                "HikariPool-1 - Connection is not available, request timed out after"
            )),
        "{m}"
    );
}

async fn run_ok(kind: &str, c: &mut Box<dyn Conn>, st: Statement) {
    let what = format!("{st:?}");
    c.run(st)
        .await
        .unwrap_or_else(|e| panic!("{kind}: {what}: {e:?}"));
}

/// The transaction statements on the one connection an adapter's pool holds, watched
/// from a connection of the harness's own: nothing shows before the commit, a rollback
/// leaves nothing, autocommit is back afterwards, and a connection returned inside a
/// transaction (the harness gave up on the request) comes out of the pool again without
/// it, its insert never committed.
async fn transactions_on_the_real_connection(kind: &str, one_connection: &str) {
    let Some(s) = ready(&suite(kind, one_connection, SHORT)) else {
        return;
    };
    let server = goneaway::server::start(&common::server_spec(&[]))
        .await
        .unwrap();
    let table: Arc<str> = format!("`{}`.txn", server.app().database).into();
    goneaway::server::admin_exec(
        &server.admin(),
        &format!("CREATE TABLE {table} (id BIGINT PRIMARY KEY, worker INT NOT NULL) ENGINE=InnoDB"),
    )
    .await
    .unwrap();
    let admin = server.admin();
    let committed = || {
        let (admin, table) = (admin.clone(), table.clone());
        async move {
            let mut c = goneaway::server::admin_connect(&admin).await.unwrap();
            sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!(
                "SELECT id FROM {table} ORDER BY id"
            )))
            .fetch_all(&mut c)
            .await
            .unwrap()
        }
    };
    let insert = |id| Statement::Insert {
        table: table.clone(),
        id,
        worker: 1,
    };
    let pool =
        goneaway::testkit::AdapterPool::start(s.client.as_ref().unwrap(), &server.app(), None)
            .await
            .unwrap();
    // Bounded: database/sql's Conn.Close waits forever for a transaction left open.
    let acquire = || async {
        tokio::time::timeout(Duration::from_secs(10), pool.acquire())
            .await
            .unwrap_or_else(|_| panic!("{kind}: no connection within 10s"))
            .unwrap()
    };
    let mut c = acquire().await;
    run_ok(kind, &mut c, Statement::Begin).await;
    run_ok(kind, &mut c, insert(1)).await;
    let select = Statement::Select {
        table: table.clone(),
        id: 1,
    };
    run_ok(kind, &mut c, select).await;
    assert_eq!(
        committed().await,
        [0i64; 0],
        "{kind}: seen before the commit"
    );
    run_ok(kind, &mut c, Statement::Commit).await;
    assert_eq!(committed().await, [1], "{kind}: after the commit");
    run_ok(kind, &mut c, Statement::Begin).await;
    run_ok(kind, &mut c, insert(2)).await;
    run_ok(kind, &mut c, Statement::Rollback).await;
    run_ok(kind, &mut c, insert(3)).await;
    assert_eq!(
        committed().await,
        [1, 3],
        "{kind}: rolled back, then autocommit"
    );
    run_ok(kind, &mut c, Statement::Begin).await;
    run_ok(kind, &mut c, insert(4)).await;
    drop(c); // returned inside the transaction
    let mut c = acquire().await;
    run_ok(kind, &mut c, insert(5)).await;
    assert_eq!(
        committed().await,
        [1, 3, 5],
        "{kind}: the pool handed the connection out again inside the old transaction"
    );
    drop(c);
    pool.close().await;
    assert_eq!(
        committed().await,
        [1, 3, 5],
        "{kind}: after the pool closed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn go_runs_begin_commit_and_rollback_on_one_conn() {
    transactions_on_the_real_connection("go-database-sql", "max_open_conns = 1").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn node_runs_begin_commit_and_rollback_on_one_conn() {
    transactions_on_the_real_connection("node-mysql", "connectionLimit = 1").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hikaricp_runs_begin_commit_and_rollback_on_one_conn() {
    transactions_on_the_real_connection("hikaricp", "maximumPoolSize = 1").await;
}

/// Every request inserts, holds its connection 200 ms, reads, and commits.
const IN_A_TRANSACTION: &str = r#"
[workload]
workers = 2
duration = "3s"
think = "50ms"
op_timeout = "5s"
steps = ["insert", "wait 200ms", "select"]
transaction = true

[expect]
verdict = "valid"
"#;

async fn steps_in_a_transaction(kind: &str) {
    let Some(s) = ready(&suite(kind, "", IN_A_TRANSACTION)) else {
        return;
    };
    let report = s.run().await.expect("the run completes");
    assert!(report.stable.met, "{kind}: {}", report.human());
    let m = &report.measured;
    assert!(m.ok > 0 && m.failed == 0, "{kind}: {}", report.human());
    // Every successful request inserted: the writes check read committed rows back.
    let writes = report.stable.checks.iter().find(|c| c.name == "writes");
    assert_eq!(writes.map(|c| c.verdict), Some(Verdict::Valid), "{kind}");
}

#[tokio::test(flavor = "multi_thread")]
async fn go_steps_in_a_transaction_commit() {
    steps_in_a_transaction("go-database-sql").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn node_steps_in_a_transaction_commit() {
    steps_in_a_transaction("node-mysql").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hikaricp_steps_in_a_transaction_commit() {
    steps_in_a_transaction("hikaricp").await;
}

/// suites/held-across-wait-timeout.toml on these clients: the server closes the session
/// during the 3 s wait, after the insert and before the read.
const HELD_PAST_WAIT_TIMEOUT: &str = r#"
[server]
wait_timeout = "2s"

[workload]
workers = 2
duration = "5s"
think = "100ms"
op_timeout = "5s"
steps = ["insert", "wait 3s", "select"]
transaction = true

[expect]
verdict = "invalid"
failing = ["errors"]
"#;

async fn held_past_wait_timeout(kind: &str) {
    let Some(s) = ready(&suite(kind, "", HELD_PAST_WAIT_TIMEOUT)) else {
        return;
    };
    let report = s.run().await.expect("the run completes");
    assert!(report.stable.met, "{kind}: {}", report.human());
    let classes: Vec<ErrorClass> = report.measured.errors.iter().map(|e| e.class).collect();
    assert!(
        !classes.is_empty()
            && classes
                .iter()
                .all(|c| matches!(c, ErrorClass::GoneAway | ErrorClass::LostConnection)),
        "{kind}: {}",
        report.human()
    );
    // The failed requests had inserted before the wait; their transactions died with the
    // session. Counted as acknowledged, those rows would be missing from the read-back.
    let timeline = report.timeline.as_ref().expect("a timeline");
    let failed: Vec<_> = timeline.requests.iter().filter(|r| !r.ok()).collect();
    assert!(
        !failed.is_empty() && failed.iter().all(|r| !r.inserted.is_empty()),
        "{kind}: {}",
        report.human()
    );
    let writes = report.stable.checks.iter().find(|c| c.name == "writes");
    assert_eq!(writes.map(|c| c.verdict), Some(Verdict::Valid), "{kind}");
}

#[tokio::test(flavor = "multi_thread")]
async fn go_a_transaction_held_past_wait_timeout_fails_and_rolls_back() {
    held_past_wait_timeout("go-database-sql").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn node_a_transaction_held_past_wait_timeout_fails_and_rolls_back() {
    held_past_wait_timeout("node-mysql").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hikaricp_a_transaction_held_past_wait_timeout_fails_and_rolls_back() {
    held_past_wait_timeout("hikaricp").await;
}

/// `goneaway check` on a suite file: (exit code, stdout, stderr).
fn check(text: &str, path: Option<&str>) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("adapter.toml");
    std::fs::write(&file, text).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["check", file.to_str().unwrap()]);
    if let Some(p) = path {
        cmd.env("PATH", p);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const SHORT: &str = "[workload]\nduration = \"2s\"\n\n[expect]\nverdict = \"valid\"\n";

#[test]
fn go_settings_are_read_back_and_unknown_keys_named_before_the_run() {
    let text = suite(
        "go-database-sql",
        "max_open_conns = 4\nconn_max_idle_time = \"1s\"\nreadTimeout = \"3s\"\npool_recycle = 30",
        SHORT,
    );
    if ready(&text).is_none() {
        return;
    }
    let (code, out, err) = check(&text, None);
    assert_eq!(code, Some(0), "{out}{err}");
    // The DSN parser put `pool_recycle` among the session variables it would SET: it is
    // no setting of database/sql or the driver.
    assert!(out.contains("ignored-settings"), "{out}");
    assert!(out.contains("`pool_recycle`"), "{out}");
    assert!(
        out.contains("max_open_conns=4 conn_max_lifetime=never conn_max_idle_time=1s"),
        "the pool as database/sql runs it: {out}"
    );
}

#[test]
fn node_options_mysql_does_not_have_are_named_before_the_run() {
    // `idleTimeout` and `maxIdle` are mysql2's pool options; mysql 2.18 drops them.
    // `queryTimeout` is the adapter's own, passed to every query: never ignored.
    let text = suite(
        "node-mysql",
        "connectionLimit = 4\nidleTimeout = 60000\nmaxIdle = 2\nqueryTimeout = 1500",
        SHORT,
    );
    if ready(&text).is_none() {
        return;
    }
    let (code, out, err) = check(&text, None);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("ignored-settings"), "{out}");
    assert!(
        out.contains("never read `idleTimeout`, `maxIdle`:"),
        "{out}"
    );
    assert!(out.contains("connectionLimit=4"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn node_query_timeout_is_read_back_and_refused_unless_milliseconds() {
    let Some(s) = ready(&suite(
        "node-mysql",
        "connectionLimit = 2\nqueryTimeout = 1500",
        SHORT,
    )) else {
        return;
    };
    let report = s.run().await.expect("the run completes");
    assert!(report.stable.met, "{}", report.human());
    assert!(
        report.measured.pool.contains(" queryTimeout=1500 "),
        "read back into the pool line: {}",
        report.measured.pool
    );
    assert!(
        !report.human().contains("ignored-settings"),
        "{}",
        report.human()
    );
    // A duration string is not what node-mysql's `timeout` takes: one clear error, exit 2.
    let (code, out, err) = check(&suite("node-mysql", "queryTimeout = \"1s\"", SHORT), None);
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(
        err.contains("queryTimeout must be a whole number of milliseconds (0: none), not \"1s\""),
        "{err}"
    );
}

#[test]
fn hikaricp_refuses_a_property_its_version_does_not_have() {
    // keepaliveTime arrived in HikariCP 4.0; Debian ships 2.7.9, whose own property
    // binding refuses the name.
    let text = suite(
        "hikaricp",
        "maximumPoolSize = 4\nkeepaliveTime = 30000",
        SHORT,
    );
    if ready(&text).is_none() {
        return;
    }
    let (code, out, err) = check(&text, None);
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(
        err.contains("Property keepaliveTime does not exist on target class com.zaxxer.hikari.HikariDataSource"),
        "{err}"
    );
    assert!(err.contains("arrived in HikariCP 4.0"), "{err}");
}

#[test]
fn hikaricp_settings_are_what_it_validated_and_driver_properties_are_checked() {
    // maxLifetime below 30 s is reset to 30 min by HikariCP's own validation (with only a
    // log line): the read-back shows what the pool runs with.
    let text = suite(
        "hikaricp",
        "maximumPoolSize = 4\nmaxLifetime = 10000\n\"dataSource.cacheResultSetMetadata\" = true\nurlParameters = \"socketTimeout=2000\"",
        SHORT,
    );
    if ready(&text).is_none() {
        return;
    }
    let (code, out, err) = check(&text, None);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("maxLifetime=30m"), "{out}");
    assert!(out.contains("`dataSource.cacheResultSetMetadata`"), "{out}");
}

#[test]
fn a_built_adapter_is_cached_by_its_source() {
    let text = suite("go-database-sql", "max_open_conns = 2", SHORT);
    let Some(s) = ready(&text) else { return };
    let client = s.client.as_ref().unwrap();
    let first = goneaway::testkit::adapter_command(client).unwrap();
    let built = std::fs::metadata(&first[0]).unwrap().modified().unwrap();
    let again = goneaway::testkit::adapter_command(client).unwrap();
    assert_eq!(first, again);
    assert_eq!(
        std::fs::metadata(&again[0]).unwrap().modified().unwrap(),
        built,
        "not rebuilt"
    );
}

#[test]
fn a_missing_runtime_names_the_debian_package() {
    // No runtime on PATH: whatever is installed, each kind names its package.
    let empty = tempfile::tempdir().unwrap();
    for (kind, package) in [
        ("go-database-sql", "golang-go"),
        ("node-mysql", "nodejs"),
        ("hikaricp", "default-jdk-headless"),
    ] {
        let (code, out, err) = check(
            &suite(kind, "", SHORT),
            Some(empty.path().to_str().unwrap()),
        );
        assert_eq!(code, Some(2), "{out}{err}");
        assert!(
            err.contains(&format!("install the Debian package `{package}`")),
            "{kind}: {err}"
        );
    }
}

#[test]
fn their_words_go_in_client_config_not_pool() {
    for kind in ["go-database-sql", "node-mysql", "hikaricp"] {
        let text = format!(
            "description = \"d\"\n[client]\nkind = \"{kind}\"\n[pool]\nmax_connections = 4\n{SHORT}"
        );
        let e = Suite::from_toml(&text, "x.toml", "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("[client.config]"), "{e}");
        assert!(e.starts_with("x.toml:4:1:"), "{e}");
    }
}

/// Pids of `parent`'s children whose command line mentions goneaway's adapters dir.
fn adapters_of(parent: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let status = std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
        let ppid = status
            .lines()
            .find_map(|l| l.strip_prefix("PPid:"))
            .and_then(|p| p.trim().parse::<u32>().ok());
        let cmd = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if ppid == Some(parent) && String::from_utf8_lossy(&cmd).contains("/adapters-") {
            found.push(pid);
        }
    }
    found
}

#[test]
fn sigkill_of_the_harness_leaves_no_go_node_or_java_adapter() {
    use std::time::{Duration, Instant};
    for (kind, config) in [
        ("go-database-sql", "max_open_conns = 4"),
        ("node-mysql", "connectionLimit = 4"),
        ("hikaricp", "maximumPoolSize = 4"),
    ] {
        let text = suite(
            kind,
            config,
            "[workload]\nduration = \"30s\"\nthink = \"50ms\"\n\n[expect]\nverdict = \"valid\"\n",
        );
        if ready(&text).is_none() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("long.toml");
        std::fs::write(&file, &text).unwrap();
        let mut child = Command::new(BIN)
            .args(["run", file.to_str().unwrap(), "--no-save"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let adapters = loop {
            let a = adapters_of(child.id());
            if !a.is_empty() {
                break a;
            }
            assert!(Instant::now() < deadline, "{kind}: no adapter appeared");
            std::thread::sleep(Duration::from_millis(50));
        };
        std::thread::sleep(Duration::from_secs(1)); // into the workload
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        child.wait().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left: Vec<&u32> = adapters
                .iter()
                .filter(|p| std::path::Path::new(&format!("/proc/{p}")).exists())
                .collect();
            if left.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{kind}: adapter left behind: {left:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
