//! Shared by the integration tests.
#![allow(dead_code)]

/// Whether a MySQL-compatible server binary is here to test against. With `CI` set a
/// missing server is a failure, never a skip: a green CI must mean the suites ran.
pub fn mariadb() -> bool {
    match goneaway::server::process::find_binary() {
        Ok(_) => true,
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!("CI is set, so this test may not skip: {e}")
        }
        Err(e) => {
            eprintln!("skipped (no server binary; CI would fail here): {e}");
            false
        }
    }
}

/// Whether the Python stack for the real-client suites is here (`bash ci/setup.sh`).
/// With `CI` set its absence is a failure, never a skip.
pub fn python() -> bool {
    match goneaway::testkit::python() {
        Ok(_) => true,
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!("CI is set, so this test may not skip: {e}")
        }
        Err(e) => {
            eprintln!("skipped (CI would fail here): {e}");
            false
        }
    }
}

/// Whether the runtime and library the suite's client needs are here (and its adapter
/// builds): Python for the SQLAlchemy ones, Debian's Go, Node or Java packages for the
/// others. With `CI` set their absence is a failure, never a skip.
pub fn client_ready(suite: &goneaway::Suite) -> bool {
    let Some(client) = &suite.client else {
        return true;
    };
    // In process: ready when built in (a build without the feature cannot run it).
    if client.kind.mode() == "mysql-async" {
        return cfg!(feature = "mysql-async");
    }
    match goneaway::testkit::adapter_command(client) {
        Ok(_) => true,
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!("CI is set, so this test may not skip: {e}")
        }
        Err(e) => {
            eprintln!("skipped (CI would fail here): {e}");
            false
        }
    }
}

/// At most 8 runs at once in this test binary, as `goneaway run --all` does: on 2 cores,
/// 54 servers (and the adapters) at once starve the pools' own timers and make timing
/// suites flake. The built-in suites and the contract's battery share it.
pub static SLOTS: std::sync::LazyLock<std::sync::Arc<tokio::sync::Semaphore>> =
    std::sync::LazyLock::new(|| std::sync::Arc::new(tokio::sync::Semaphore::new(8)));

/// Run suites concurrently (each has its own server), then fail with every unmet
/// expectation at once, each with its whole report. Returns the reports by name.
pub async fn run_all_met(
    suites: Vec<(&'static str, goneaway::Suite)>,
) -> Vec<(&'static str, goneaway::Report)> {
    let slots = SLOTS.clone();
    let mut runs = tokio::task::JoinSet::new();
    for (name, suite) in suites {
        let slots = slots.clone();
        runs.spawn(async move {
            let _slot = slots.acquire_owned().await.expect("never closed");
            (name, suite.run().await)
        });
    }
    let mut results = Vec::new();
    while let Some(done) = runs.join_next().await {
        results.push(done.expect("a suite run panicked"));
    }
    results.sort_by_key(|(name, _)| *name);
    let mut failed = Vec::new();
    let mut reports = Vec::new();
    for (name, result) in results {
        match result {
            Ok(report) if report.stable.met => reports.push((name, report)),
            Ok(report) => failed.push(format!("{name}: expectation not met\n{}", report.human())),
            Err(e) => failed.push(format!("{name}: harness error: {e}")),
        }
    }
    assert!(
        failed.is_empty(),
        "{} suite(s) failed:\n\n{}",
        failed.len(),
        failed.join("\n\n")
    );
    reports
}

/// For tests that need the docker backend: `true` to go on. Locally, a missing daemon or
/// image (when `need_image`) prints one line on stderr and gives `false`, so the test can
/// return; when the environment variable `CI` is set it panics instead, so CI cannot pass
/// by skipping.
#[cfg(feature = "docker")]
pub async fn docker_ready_or_skip(test: &str, need_image: bool) -> bool {
    use goneaway::server::ServerError;
    use goneaway::server::docker::{DockerError, check_available};
    let check = match check_available(None).await {
        Err(ServerError::Docker(DockerError::ImageMissing { .. })) if !need_image => Ok(()),
        other => other,
    };
    match check {
        Ok(()) => true,
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!("{test}: the docker backend must run in CI: {e}")
        }
        Err(e) => {
            eprintln!("skipping {test}: {e}");
            false
        }
    }
}

/// A docker-backend server spec with these settings.
pub fn docker_spec(settings: &[(&str, &str)]) -> goneaway::server::ServerSpec {
    goneaway::server::ServerSpec {
        backend: goneaway::server::BackendKind::Docker,
        settings: settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    }
}

/// `SELECT 1` through `executor` (a pool or a connection), bounded by `within`: the value,
/// or what went wrong.
pub async fn select_one<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::MySql>,
    within: std::time::Duration,
) -> Result<i64, String> {
    let query = sqlx::query_scalar::<_, i64>("SELECT 1").fetch_one(executor);
    match tokio::time::timeout(within, query).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("error: {e:?}")),
        Err(_) => Err(format!("no answer within {within:?}")),
    }
}

/// [`select_one`] and how long it took.
pub async fn timed_select_one<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::MySql>,
    within: std::time::Duration,
) -> (Result<i64, String>, std::time::Duration) {
    let started = std::time::Instant::now();
    let result = select_one(executor, within).await;
    (result, started.elapsed())
}

/// Run the calling test again in a process of its own with `envs` set: for the few tests
/// that need process-wide state (environment variables read once) inside the one
/// integration binary. Returns true in that child (run the test's body there), false in
/// the parent, which has already checked that the child passed.
pub fn in_own_process(module: &str, test: &str, envs: &[(&str, &str)]) -> bool {
    const CHILD: &str = "GONEAWAY_TEST_CHILD";
    if std::env::var(CHILD).as_deref() == Ok(test) {
        return true;
    }
    // libtest names a test by its module path inside the test crate.
    let name = match module.split_once("::") {
        Some((_, module)) => format!("{module}::{test}"),
        None => test.to_string(),
    };
    let status = std::process::Command::new(std::env::current_exe().expect("current exe"))
        .args(["--exact", &name, "--nocapture", "--test-threads=1"])
        .env(CHILD, test)
        .envs(envs.iter().copied())
        .stdin(std::process::Stdio::null())
        .status()
        .expect("spawn the test binary again");
    assert!(status.success(), "{name} failed in its own process");
    false
}

/// A process-server spec with these server settings.
pub fn server_spec(settings: &[(&str, &str)]) -> goneaway::server::ServerSpec {
    goneaway::server::ServerSpec {
        settings: settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    }
}

/// A server with no settings, the embedded proxy in front of it (proxy `db`), the
/// proxy's API client, and the app's connection details through the proxy.
pub async fn proxied() -> (
    Box<dyn goneaway::server::Server>,
    goneaway::proxy::ProxyServer,
    goneaway::proxy::client::Client,
    goneaway::server::ConnectInfo,
) {
    let s = goneaway::server::start(&server_spec(&[])).await.unwrap();
    let proxy = goneaway::proxy::ProxyServer::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let client = goneaway::proxy::client::Client::new(&proxy.api_url()).unwrap();
    let app = s.app();
    let info = client
        .create_proxy("db", "127.0.0.1:0", &format!("{}:{}", app.host, app.port))
        .await
        .unwrap();
    let (host, port) = info.listen.rsplit_once(':').unwrap();
    let via = app.via(host, port.parse().unwrap());
    (s, proxy, client, via)
}
