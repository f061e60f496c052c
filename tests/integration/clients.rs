//! Real clients through adapters: the README's minimal adapter, adapters that misbehave
//! (a harness error naming them, never a verdict or a hang), `kill -9` of the harness
//! (no adapter left), and the ground truth: the real SQLAlchemy and the sqlx emulation
//! in SQLAlchemy's words give the same verdicts on the same scenarios.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common;
use goneaway::{Error, Suite};

const BIN: &str = env!("CARGO_BIN_EXE_goneaway");

/// The Python stack `ci/setup.sh` installs; with `CI` set its absence fails the test.
fn python() -> Option<PathBuf> {
    if common::python() {
        goneaway::testkit::python().ok()
    } else {
        None
    }
}

fn ready() -> Option<PathBuf> {
    if !common::mariadb() {
        return None;
    }
    python()
}

/// The adapter the README shows, exactly as printed there.
fn readme_adapter() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let after = readme
        .split_once("<!-- minimal-adapter -->\n```python\n")
        .expect("the README marks its minimal adapter")
        .1;
    after
        .split_once("```")
        .expect("a closed code block")
        .0
        .to_string()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn adapter_suite(argv: &[&str], duration: &str) -> String {
    let argv: Vec<String> = argv.iter().map(|a| format!("{a:?}")).collect();
    format!(
        r#"
description = "an adapter under test"

[client]
command = [{}]

[workload]
workers = 2
duration = "{duration}"
think = "50ms"
op_timeout = "5s"

[expect]
verdict = "valid"
"#,
        argv.join(", ")
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_readme_adapter_is_driven_like_any_pool() {
    let Some(py) = ready() else { return };
    let dir = tempfile::tempdir().unwrap();
    let adapter = write(dir.path(), "minimal_adapter.py", &readme_adapter());
    let text = adapter_suite(
        &[py.to_str().unwrap(), "-u", adapter.to_str().unwrap()],
        "3s",
    );
    let suite = Suite::from_toml(&text, "readme-adapter.toml", "readme-adapter").unwrap();
    let report = suite.run().await.expect("the README's adapter runs");
    assert!(report.stable.met, "{}", report.human());
    assert!(report.measured.ok > 0, "{}", report.human());
    assert!(
        report.measured.pool.contains("pymysql-list"),
        "the adapter's own name is shown: {}",
        report.measured.pool
    );
}

/// A fake adapter that speaks the protocol until its first `acquire`, then does `bad`.
fn fake(bad: &str) -> String {
    format!(
        r#"
import json, sys, time
def reply(m):
    sys.stdout.write(json.dumps(m) + "\n"); sys.stdout.flush()
for line in sys.stdin:
    req = json.loads(line)
    op = req["op"]
    if op == "hello":
        reply({{"id": req["id"], "ok": True, "protocol": 1, "client": "fake", "version": "0", "driver": "none"}})
    elif op == "settings":
        reply({{"id": req["id"], "ok": True, "settings": None}})
    elif op == "stats":
        reply({{"id": req["id"], "ok": True, "open": 0, "idle": 0, "in_use": 0}})
    elif op == "acquire":
        print("fake adapter: about to misbehave", file=sys.stderr, flush=True)
{bad}
    else:
        reply({{"id": req["id"], "ok": True}})
"#
    )
}

const CRASH: &str = "        print('fake adapter: simulated crash', file=sys.stderr, flush=True)\n        sys.exit(3)";
const HANG: &str = "        time.sleep(3600)";
const GARBAGE: &str = "        print('this is not json', flush=True)";
const UNKNOWN_ID: &str = "        reply({'id': 987654, 'ok': True, 'conn': 1})";

async fn misbehaving(bad: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let adapter = write(dir.path(), "fake_adapter.py", &fake(bad));
    let text = adapter_suite(&["python3", "-u", adapter.to_str().unwrap()], "20s");
    let suite = Suite::from_toml(&text, "fake.toml", "fake").unwrap();
    let started = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(60), suite.run())
        .await
        .expect("a misbehaving adapter never hangs the run");
    match result {
        Err(e @ Error::Pool(_)) => {
            let msg = e.to_string();
            assert!(msg.contains("fake_adapter.py"), "names the adapter: {msg}");
            assert!(
                msg.contains("fake adapter: about to misbehave"),
                "quotes its stderr: {msg}"
            );
            // Stopped early, not at the end of the 20 s workload.
            assert!(started.elapsed() < Duration::from_secs(20), "{msg}");
            msg
        }
        Err(e) => panic!("expected a pool (adapter) error, got: {e}"),
        Ok(r) => panic!("a broken adapter gave a verdict:\n{}", r.human()),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_adapter_that_crashes_is_a_harness_error_with_its_stderr() {
    if ready().is_none() {
        return;
    }
    let msg = misbehaving(CRASH).await;
    // Whichever the harness notices first: the exit, or the pipe the dead process no
    // longer reads (a clean-clone CI run saw the second).
    assert!(
        msg.contains("exited") || msg.contains("stopped reading its stdin"),
        "{msg}"
    );
    assert!(msg.contains("fake adapter: simulated crash"), "{msg}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_adapter_that_hangs_is_a_harness_error() {
    if ready().is_none() {
        return;
    }
    let msg = misbehaving(HANG).await;
    assert!(msg.contains("hung"), "{msg}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_adapter_that_prints_garbage_or_unknown_ids_is_a_harness_error() {
    if ready().is_none() {
        return;
    }
    let msg = misbehaving(GARBAGE).await;
    assert!(
        msg.contains("not a protocol message: `this is not json`"),
        "{msg}"
    );
    let msg = misbehaving(UNKNOWN_ID).await;
    assert!(msg.contains("id 987654, which was never asked"), "{msg}");
}

#[test]
fn the_cli_exits_2_when_the_adapter_crashes() {
    if ready().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let adapter = write(dir.path(), "fake_adapter.py", &fake(CRASH));
    let suite = write(
        dir.path(),
        "crash.toml",
        &adapter_suite(&["python3", "-u", adapter.to_str().unwrap()], "20s"),
    );
    let out = Command::new(BIN)
        .args(["run", suite.to_str().unwrap(), "--no-save"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("fake adapter: simulated crash"), "{stderr}");
}

#[test]
fn list_shows_the_client_of_every_suite() {
    let out = Command::new(BIN).arg("list").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = |name: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} listed: {stdout}"))
            .to_string()
    };
    assert!(line("outage-flask-ignored-config").contains("flask-sqlalchemy on pymysql"));
    assert!(line("sqlalchemy-pre-ping").contains("sqlalchemy on mysqlclient"));
    assert!(line("idle-expiry-stale-pool").contains(" sqlx "));
}

fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(needle) {
                found.push(format!("{}: {cmd}", entry.file_name().to_string_lossy()));
            }
        }
    }
    found
}

#[test]
fn sigkill_of_the_harness_leaves_no_adapter() {
    let Some(py) = ready() else { return };
    let dir = tempfile::tempdir().unwrap();
    let adapter = write(dir.path(), "minimal_adapter.py", &readme_adapter());
    let needle = adapter.to_str().unwrap().to_string();
    let suite = write(
        dir.path(),
        "long.toml",
        &adapter_suite(&[py.to_str().unwrap(), "-u", &needle], "30s"),
    );
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["run", suite.to_str().unwrap(), "--no-save"])
        .env("TMPDIR", tmp.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while processes_mentioning(&needle).is_empty() {
        assert!(Instant::now() < deadline, "no adapter appeared");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(1)); // into the workload
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = processes_mentioning(&needle);
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "adapter left behind: {left:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One scenario in SQLAlchemy's words, run on the real SQLAlchemy (`client`) or on
/// the sqlx emulation (no `[client]`).
fn scenario(body: &str, real: bool) -> Suite {
    let client = if real {
        "[client]\nkind = \"sqlalchemy\"\ndriver = \"pymysql\"\n"
    } else {
        ""
    };
    let text = format!("description = \"ground truth\"\n{client}{body}");
    Suite::from_toml(&text, "ground-truth.toml", "ground-truth").unwrap()
}

const IDLE_PAST_WAIT_TIMEOUT: &str = r#"
[server]
wait_timeout = "2s"

[pool]
pool_size = 2
max_overflow = 0
pool_timeout = "5s"
pool_recycle = "2h"
pool_pre_ping = false

[workload]
workers = 2
duration = "8s"
think = "50ms"
op_timeout = "20s"

[[fault]]
kind = "idle"
name = "night"
at = "2s"
duration = "3.5s"

[expect]
verdict = "invalid"
errors = ["gone_away"]
"#;

const TWO_LEAKS: &str = r#"
[pool]
pool_size = 2
max_overflow = 0
pool_timeout = "1s"
pool_pre_ping = true

[workload]
workers = 2
duration = "5s"
think = "50ms"
op_timeout = "5s"
leak_every = 1

[expect]
verdict = "invalid"
errors = ["checkout_timeout"]
failing = ["errors", "pool-baseline"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn real_sqlalchemy_and_the_emulation_agree() {
    if ready().is_none() {
        return;
    }
    let pre_ping = IDLE_PAST_WAIT_TIMEOUT
        .replace("pool_pre_ping = false", "pool_pre_ping = true")
        .replace(
            "verdict = \"invalid\"\nerrors = [\"gone_away\"]",
            "verdict = \"valid\"",
        );
    let cases = [
        ("idle past wait_timeout", IDLE_PAST_WAIT_TIMEOUT.to_string()),
        ("idle past wait_timeout, pre-ping", pre_ping),
        ("two leaked checkouts of 2 + 0", TWO_LEAKS.to_string()),
    ];
    let mut runs = tokio::task::JoinSet::new();
    for (name, body) in cases {
        for real in [true, false] {
            let suite = scenario(&body, real);
            runs.spawn(async move { (name, real, suite.run().await) });
        }
    }
    let mut results = std::collections::BTreeMap::new();
    while let Some(done) = runs.join_next().await {
        let (name, real, report) = done.unwrap();
        let report = report.unwrap_or_else(|e| panic!("{name} (real: {real}): {e}"));
        results.insert((name, real), report);
    }
    for (name, _) in [
        ("idle past wait_timeout", ()),
        ("idle past wait_timeout, pre-ping", ()),
        ("two leaked checkouts of 2 + 0", ()),
    ] {
        let real = &results[&(name, true)];
        let emulated = &results[&(name, false)];
        assert!(
            real.stable.met,
            "{name}, real SQLAlchemy:\n{}",
            real.human()
        );
        assert!(
            emulated.stable.met,
            "{name}, sqlx emulation:\n{}",
            emulated.human()
        );
        // The same checks fail with the same findings (classes and where they were
        // seen), and the lint reads the same settings back from both pools.
        assert_eq!(
            real.stable,
            emulated.stable,
            "{name}: the verdicts differ\nreal:\n{}\nemulated:\n{}",
            real.human(),
            emulated.human()
        );
    }
}

#[test]
fn a_client_table_that_cannot_work_is_one_clear_message() {
    let load = |client: &str, pool: &str| {
        let text = format!(
            "description = \"d\"\n{client}\n{pool}\n[workload]\nduration = \"1s\"\n\n[expect]\nverdict = \"valid\"\n"
        );
        Suite::from_toml(&text, "c.toml", "c")
            .expect_err("refused")
            .to_string()
    };
    let cases = [
        (
            "[client]\nkind = \"hikari\"",
            "",
            "c.toml:3:8: [client] kind `hikari`: expected sqlalchemy, flask-sqlalchemy, go-database-sql, node-mysql, hikaricp or mysql-async (or `command` for your own adapter)",
        ),
        (
            "[client]\nkind = \"sqlalchemy\"\ncommand = [\"x\"]",
            "",
            "[client] takes `kind`",
        ),
        (
            "[client]\nkind = \"sqlalchemy\"\ndriver = \"mysql-connector\"",
            "",
            "driver `mysql-connector`: expected pymysql or mysqlclient",
        ),
        (
            "[client]\nkind = \"sqlalchemy\"",
            "[pool]\nmax_connections = 3",
            "use its words (pool_size",
        ),
        (
            "[client]\nkind = \"flask-sqlalchemy\"",
            "[pool]\npool_size = 3",
            "put the keys in [client.config]",
        ),
        (
            "[client]\nkind = \"flask-sqlalchemy\"\n[client.config]\nSQLALCHEMY_DATABASE_URI = \"mysql://x\"",
            "",
            "SQLALCHEMY_DATABASE_URI is supplied by goneaway",
        ),
        ("[client]\ncommand = []", "", "[client] command is empty"),
        (
            "[client]\nkind = \"sqlalchemy\"\nflavour = 1",
            "",
            "unknown field `flavour`",
        ),
    ];
    for (client, pool, want) in cases {
        let got = load(client, pool);
        assert!(got.contains(want), "{client}: {got}");
        assert!(got.starts_with("c.toml:"), "names the file and line: {got}");
    }
}

#[test]
fn check_shows_the_ignored_flask_keys_before_any_run() {
    if python().is_none() {
        return;
    }
    let out = Command::new(BIN)
        .args([
            "check",
            "outage-flask-ignored-config",
            "outage-flask-engine-options",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let (ignored, fixed) = stdout
        .split_once("builtin:outage-flask-engine-options")
        .expect("both suites checked");
    for key in [
        "SQLALCHEMY_POOL_RECYCLE",
        "SQLALCHEMY_POOL_SIZE",
        "SQLALCHEMY_MAX_OVERFLOW",
    ] {
        assert!(ignored.contains(&format!("`{key}`")), "{stdout}");
    }
    assert!(ignored.contains("pool_recycle=2h"), "{stdout}");
    assert!(ignored.contains("-> predicts gone_away"), "{stdout}");
    assert!(!fixed.contains("ignored-settings"), "{stdout}");
    assert!(!fixed.contains("stale-connections"), "{stdout}");
}

fn connect_args_suite(driver: &str, args: &str) -> String {
    format!(
        "description = \"connect_args\"\n[client]\nkind = \"sqlalchemy\"\ndriver = \"{driver}\"\n[client.config]\nconnect_args = {{ {args} }}\n[pool]\npool_size = 2\nmax_overflow = 0\n[workload]\nworkers = 2\nduration = \"1s\"\n[expect]\nverdict = \"valid\"\n"
    )
}

#[test]
fn check_names_a_connect_args_key_the_driver_does_not_know() {
    if python().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (driver, args, want) in [
        (
            "pymysql",
            "read_timout = 5",
            "connect_args `read_timout`: PyMySQL",
        ),
        (
            "pymysql",
            "read_timeout = 0",
            "connect_args `read_timeout` = 0 refused by PyMySQL 1.2.4: read_timeout should be > 0",
        ),
        (
            "mysqlclient",
            "read_timout = 5",
            "connect_args `read_timout` = 5 refused by mysqlclient",
        ),
        // mysqlclient's timeouts are C ints: its TypeError does not name the key, we do.
        (
            "mysqlclient",
            "connect_timeout = 1, read_timeout = 1.5",
            "connect_args `read_timeout` = 1.5 refused by mysqlclient",
        ),
    ] {
        let file = write(dir.path(), "c.toml", &connect_args_suite(driver, args));
        let out = Command::new(BIN).arg("check").arg(&file).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{driver} {args}: {stderr}");
        assert!(stderr.contains(want), "{driver} {args}: {stderr}");
    }
    let file = write(
        dir.path(),
        "c.toml",
        &connect_args_suite("mysqlclient", "read_timeout = 3"),
    );
    let out = Command::new(BIN).arg("check").arg(&file).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn connect_args_are_read_back_from_a_live_connection() {
    if ready().is_none() {
        return;
    }
    // Values no driver default has, so an echo of a default cannot pass.
    for driver in ["pymysql", "mysqlclient"] {
        let text = connect_args_suite(
            driver,
            "read_timeout = 7, write_timeout = 8, connect_timeout = 9",
        );
        let suite = Suite::from_toml(&text, "c.toml", "c").unwrap();
        let report = suite.run().await.expect("runs");
        assert!(report.stable.met, "{}", report.human());
        assert!(
            report
                .measured
                .pool
                .contains("connect_args: connect_timeout=9 read_timeout=7 write_timeout=8 ("),
            "{driver}: {}",
            report.measured.pool
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_checkout_the_harness_gave_up_on_is_returned_when_it_arrives() {
    if ready().is_none() {
        return;
    }
    // One connection, held 1.5 s by each request; the other worker's checkout outlives
    // its 1 s op timeout inside QueuePool (pool_timeout 3 s) and is granted later, to
    // nobody. Unless the harness returns it, the pool loses its only connection and
    // the run ends with it checked out (pool-baseline fails).
    let text = r#"
description = "late checkouts are returned"

[client]
kind = "sqlalchemy"

[pool]
pool_size = 1
max_overflow = 0
pool_timeout = 3

[workload]
workers = 2
duration = "6s"
hold = "1500ms"
think = "10ms"
op_timeout = "1s"

[expect]
verdict = "invalid"
errors = ["timeout"]
failing = ["errors"]
"#;
    let suite = Suite::from_toml(text, "late.toml", "late").unwrap();
    let report = suite.run().await.expect("runs");
    assert!(report.stable.met, "{}", report.human());
}

#[test]
fn a_missing_python_says_to_run_setup() {
    if !common::mariadb() {
        return;
    }
    let out = Command::new(BIN)
        .args(["run", "sqlalchemy-recycle", "--no-save"])
        .env("GONEAWAY_PYTHON", "/nonexistent/goneaway/python")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("/nonexistent/goneaway/python") && stderr.contains("bash ci/setup.sh"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
}
