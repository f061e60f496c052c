//! The command line as a user meets it: exit codes, one-line errors, JSON, and nothing
//! left behind when the harness is interrupted or killed.

use crate::common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_goneaway");

fn goneaway(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("GONEAWAY_REPORT_DIR", reports())
        .output()
        .unwrap()
}

fn reports() -> std::path::PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-reports")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn list_names_every_builtin_suite_with_its_expectation() {
    let out = goneaway(&["list"]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), goneaway::builtin_names().len());
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("idle-expiry-stale-pool") && l.contains("invalid")),
        "{stdout}"
    );
}

#[test]
fn a_reader_that_stops_early_is_not_a_panic() {
    // `goneaway list | head -1`: the read end is closed before goneaway writes.
    let mut child = Command::new(BIN)
        .arg("list")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_malformed_suite_is_one_line_and_exit_2() {
    let out = goneaway(&["check", "tests/bad-suites/unknown-pool-key.toml"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr
            .starts_with("tests/bad-suites/unknown-pool-key.toml:4:1: unknown field `pool_recyle`"),
        "{stderr}"
    );
    // run refuses it the same way, before starting anything.
    let out = goneaway(&["run", "tests/bad-suites/unknown-pool-key.toml"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn an_unknown_suite_name_lists_the_known_ones() {
    let out = goneaway(&["run", "idle-expiry-stael-pool"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("built-in suites: idle-expiry-stale-pool,"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn check_prints_the_lint() {
    let out = goneaway(&["check", "idle-expiry-stale-pool"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stdout).contains("lint stale-connections"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn check_warns_of_a_closed_loop_cap_that_may_end_before_a_fault_heals() {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("closed-loop-cap.toml");
    std::fs::write(
        &path,
        "description = \"20 requests, no rate, a kill at 3s\"\n[workload]\nduration = \"10s\"\nrequests = 20\n[[fault]]\nkind = \"kill\"\nat = \"3s\"\n[expect]\nverdict = \"valid\"\n",
    )
    .unwrap();
    let out = goneaway(&["check", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(
            "  warn requests-cap: [workload] requests = 20 with no `rate` may be used up"
        ),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn a_missing_server_binary_says_how_to_install_one() {
    let out = Command::new(BIN)
        .args(["run", "kill-idle", "--no-save"])
        .env("GONEAWAY_MYSQLD", "/nonexistent/mariadbd")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("apt-get install -y mariadb-server"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn json_report_and_exit_1_when_an_expectation_fails() {
    if !common::mariadb() {
        return;
    }
    // The stale pool, told to expect no errors: the run must say it failed, and why.
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("stale-but-hopeful.toml");
    let text_in = goneaway::BUILTIN
        .iter()
        .find(|(n, _)| *n == "idle-expiry-stale-pool")
        .unwrap()
        .1;
    let hopeful = text_in.replace(
        "verdict = \"invalid\"\nerrors = [\"gone_away\"]\nwindows = { night = [\"gone_away\"] }",
        "verdict = \"valid\"",
    );
    assert_ne!(hopeful, text_in);
    std::fs::write(&suite, hopeful).unwrap();
    let out = goneaway(&["run", suite.to_str().unwrap(), "--json", "--seed", "7"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report: goneaway::Report =
        serde_json::from_slice(&out.stdout).expect("stdout is one JSON report");
    assert!(!report.stable.met);
    assert_eq!(report.measured.seed, 7);
    assert!(
        report.stable.unmet.iter().any(|u| u.contains("gone_away")),
        "{:?}",
        report.stable.unmet
    );
    assert!(report.measured.reproduce.ends_with("--seed 7"));
    let latest = reports()
        .join("stale-but-hopeful")
        .join("latest")
        .join("report.json");
    assert!(
        latest.exists(),
        "the report is saved with a latest link: {}",
        latest.display()
    );
}

/// Processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) {
            let cmd = text(&cmd).replace('\0', " ");
            if cmd.contains(needle) && !cmd.contains("cli-") {
                found.push(format!("{}: {cmd}", entry.file_name().to_string_lossy()));
            }
        }
    }
    found
}

/// Start `goneaway run` with a private TMPDIR and wait until its server is up.
fn start_run(suite: &str, tmp: &Path) -> std::process::Child {
    let child = Command::new(BIN)
        .args(["run", suite, "--no-save"])
        .env("TMPDIR", tmp)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let needle = tmp.to_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    while processes_mentioning(&format!("--datadir={needle}")).is_empty() {
        assert!(Instant::now() < deadline, "no server appeared");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(2)); // into the workload
    child
}

fn assert_nothing_left(tmp: &Path) {
    let needle = format!("--datadir={}", tmp.display());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let procs = processes_mentioning(&needle);
        let files: Vec<_> = std::fs::read_dir(tmp)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        if procs.is_empty() && files.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "left behind: processes {procs:?}, files {files:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sigkill_of_the_harness_leaves_no_server_and_no_temp_dir() {
    if !common::mariadb() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut child = start_run("server-pause", tmp.path());
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    assert_nothing_left(tmp.path());
}

#[test]
fn ctrl_c_heals_stops_and_reports_unknown() {
    if !common::mariadb() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let child = start_run("idle-expiry-pre-ping", tmp.path());
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "an interrupted run meets no expectation\n{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("verdict   unknown"), "{stdout}");
    assert!(stdout.contains("the run was cut short"), "{stdout}");
    assert_nothing_left(tmp.path());
}

#[test]
fn goneaway_proxy_serves_the_toxiproxy_api_to_any_client() {
    use goneaway::proxy::client::Client;
    use goneaway::testkit::EchoServer;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let api = format!("127.0.0.1:{port}");
    let mut child = Command::new(BIN)
        .args(["proxy", "--listen", &api])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let listen = rt.block_on(async {
        let client = Client::new(&format!("http://{api}")).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !client.is_running().await {
            assert!(Instant::now() < deadline, "goneaway proxy did not answer");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(client.version().await.unwrap().starts_with("2."));
        let echo = EchoServer::start().await.unwrap();
        let p = client
            .create_proxy("echo", "127.0.0.1:0", &echo.addr().to_string())
            .await
            .unwrap();
        let mut sock = tokio::net::TcpStream::connect(&p.listen).await.unwrap();
        sock.write_all(b"through the proxy").await.unwrap();
        let mut back = [0u8; 17];
        sock.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"through the proxy");
        p.listen
    });
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "Ctrl-C stops it cleanly");
    for addr in [api.as_str(), listen.as_str()] {
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "{addr} still listens after the proxy stopped"
        );
    }
}

/// Built without the `docker` feature (`cargo test --no-default-features`), a suite that
/// asks for the docker backend is one line saying how to turn it on, and exit 2.
#[cfg(not(feature = "docker"))]
#[test]
fn a_docker_suite_without_the_docker_feature_says_how_to_turn_it_on() {
    let out = goneaway(&["run", "network-partition", "--no-save"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("the docker backend is not built into this goneaway")
            && stderr.contains("features = [\"docker\"]"),
        "{stderr}"
    );
}

/// Two tiny suites, one met and one not: a line each as they finish, the full report only
/// of the one not met, the summary (that one in full, the met one packed), and every row
/// as Markdown (to the file asked for and to GITHUB_STEP_SUMMARY). `--verbose` prints both
/// full reports and a full row each. Two met: the summary packs both to `$COLUMNS`.
#[test]
fn several_suites_print_a_compact_summary_and_markdown() {
    if !common::mariadb() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let quiet = "[workload]\nworkers = 2\nduration = \"1s\"\nthink = \"50ms\"\n[expect]\n";
    let ok = dir.path().join("quiet-ok.toml");
    let wrong = dir.path().join("quiet-wrong.toml");
    std::fs::write(
        &ok,
        format!("description = \"a quiet run\"\n{quiet}verdict = \"valid\"\n"),
    )
    .unwrap();
    std::fs::write(
        &wrong,
        format!("description = \"a quiet run that claims to catch gone_away\"\n{quiet}verdict = \"invalid\"\nerrors = [\"gone_away\"]\n"),
    )
    .unwrap();
    let md = dir.path().join("ci").join("summary.md");
    let step = dir.path().join("step-summary.md");
    let reports = dir.path().join("reports");
    let out = Command::new(BIN)
        .args([
            "run",
            ok.to_str().unwrap(),
            wrong.to_str().unwrap(),
            "--markdown",
        ])
        .arg(&md)
        .arg("--report-dir")
        .arg(&reports)
        .env("GITHUB_STEP_SUMMARY", &step)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    // As they finish: one line each, verdict, expectation, met, duration, why not.
    for line in [
        "  quiet-ok    valid    expected valid    met ",
        "  quiet-wrong valid    expected invalid  NOT MET ",
    ] {
        assert_eq!(stderr.matches(line).count(), 1, "{line:?} in {stderr}");
    }
    assert!(
        stderr
            .contains("s  expected the run to be invalid (a negative control), but no… (+1 more)"),
        "{stderr}"
    );
    // Not a terminal: plain lines, no progress drawing.
    assert!(!stderr.contains('\x1b'), "{stderr:?}");
    // The full report of the one not met only, then the table.
    assert!(stdout.starts_with("suite     quiet-wrong — "), "{stdout}");
    assert!(!stdout.contains("suite     quiet-ok"), "{stdout}");
    // The summary: the one not met in full, the met one packed, the total.
    let table = &stdout[stdout.find("\nsummary\n").expect("a summary") + 1..];
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "{table}");
    assert!(
        lines[1].starts_with("  quiet-wrong valid    expected invalid  NOT MET "),
        "{table}"
    );
    assert!(
        lines[2].starts_with("  met: quiet-ok ") && lines[2].ends_with('s'),
        "{table}"
    );
    assert!(
        lines[3].starts_with("1 of 2 suites met their expectations (1 NOT met), "),
        "{table}"
    );

    let markdown = std::fs::read_to_string(&md).unwrap();
    assert!(markdown.starts_with("### goneaway: 1 of 2 suites met their expectations\n"));
    let rows: Vec<&str> = markdown.lines().filter(|l| l.starts_with("| `")).collect();
    assert_eq!(rows.len(), 2, "{markdown}");
    assert!(
        rows[0].starts_with("| `quiet-ok` | valid | valid | ✅ met |"),
        "{markdown}"
    );
    assert!(
        rows[1].contains("| ❌ **NOT met** |") && rows[1].contains("nothing was caught"),
        "{markdown}"
    );
    // Links are relative to the Markdown file and lead to the saved pages.
    for row in rows {
        let link = row
            .rsplit("](")
            .next()
            .unwrap()
            .trim_end_matches(" |")
            .trim_end_matches(')');
        assert!(link.starts_with("../reports/"), "{link}");
        assert!(md.parent().unwrap().join(link).is_file(), "{link}");
    }
    let appended = std::fs::read_to_string(&step).unwrap();
    assert!(
        appended.starts_with("### goneaway: 1 of 2 suites met"),
        "{appended}"
    );

    let out = Command::new(BIN)
        .args([
            "run",
            ok.to_str().unwrap(),
            wrong.to_str().unwrap(),
            "--verbose",
            "--no-save",
        ])
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("suite     quiet-ok — ") && stdout.contains("suite     quiet-wrong — "),
        "{stdout}"
    );
    // And the summary has a full row for each.
    let table = &stdout[stdout.find("\nsummary\n").expect("a summary") + 1..];
    assert!(
        table.contains("\n  quiet-ok    valid    expected valid    met ")
            && table.contains("\n  quiet-wrong valid    expected invalid  NOT MET "),
        "{table}"
    );

    // All met: no full report, the suites packed to $COLUMNS, and a total that says so.
    let too = dir.path().join("quiet-ok-too.toml");
    std::fs::copy(&ok, &too).unwrap();
    let out = Command::new(BIN)
        .args([
            "run",
            ok.to_str().unwrap(),
            too.to_str().unwrap(),
            "--no-save",
        ])
        .env("COLUMNS", "30")
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    // Off a terminal every finish line stays: a log, not a screen.
    assert_eq!(stderr.matches(" met ").count(), 2, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert_eq!(lines[0], "summary", "{stdout}");
    // "  quiet-ok 1.9s   quiet-ok-too 1.9s" is wider than 30 columns.
    assert!(lines[1].starts_with("  quiet-ok "), "{stdout}");
    assert!(lines[2].starts_with("  quiet-ok-too "), "{stdout}");
    assert!(
        lines[3].starts_with("2 suites, all met their expectations (2 valid), "),
        "{stdout}"
    );
}

/// `RUST_LOG=goneaway=debug` says what the harness does, step by step, on stderr only:
/// `--json` output stays one JSON document.
#[test]
fn debug_logs_go_to_stderr_and_never_into_json() {
    if !common::mariadb() {
        return;
    }
    let out = Command::new(BIN)
        .args([
            "run",
            "tests/reports/timeline/kill-untolerated.toml",
            "--json",
            "--no-save",
        ])
        .env("RUST_LOG", "goneaway=debug")
        .env_remove("GONEAWAY_LOG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report: goneaway::Report =
        serde_json::from_slice(&out.stdout).expect("stdout is one JSON report");
    assert_eq!(report.stable.suite, "kill-untolerated");
    let stderr = text(&out.stderr);
    for step in [
        "starting the server",
        "server ready",
        "pool settings read back: max_connections=4",
        "fault applied at",
        "healing fault=kill",
        "healed fault=kill",
        "pool settled at",
        "row(s) back for the durability check",
    ] {
        assert!(stderr.contains(step), "{step:?} in {stderr}");
    }
}
