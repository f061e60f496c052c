//! The Go, Java and Node adapters: their runtimes and libraries found where Debian puts
//! them (no other registry is reachable from here), and the Go and Java ones compiled
//! once per source and toolchain, cached by that hash, so later runs start at once.
//!
//! A missing runtime or library is one error naming the Debian package to install.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::ClientError;

pub const GO_ADAPTER: &str = include_str!("go_adapter.go");
pub const NODE_ADAPTER: &str = include_str!("node_adapter.js");
pub const JAVA_ADAPTER: &str = include_str!("GoneawayAdapter.java");

/// Where Debian's Go packages put their sources (GOPATH layout).
const GOPATH: &str = "/usr/share/gocode";
const GO_DRIVER: &str = "/usr/share/gocode/src/github.com/go-sql-driver/mysql";
/// Where Debian's node-* packages put their modules.
const NODE_MODULES: &str = "/usr/share/nodejs";
/// Where Debian's Java libraries put their jars.
const JARS: &str = "/usr/share/java";
/// A compile that takes longer than this is stuck: every step is bounded.
const BUILD_LIMIT: Duration = Duration::from_secs(300);

fn missing(what: &str, package: &str) -> ClientError {
    ClientError::Missing {
        what: what.into(),
        package: package.into(),
    }
}

/// The output of a short command, or `None` when it could not run.
fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    Some(text.trim().to_string())
}

/// FNV-1a, 64 bits: a cache key that stays the same across Rust versions.
pub(crate) fn fnv(parts: &[&str]) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for part in parts {
        for b in part.bytes().chain([0]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100000001b3);
        }
    }
    format!("{h:016x}")
}

fn cache_dir(name: &str) -> PathBuf {
    let root = crate::server::cache_root().unwrap_or_else(|_| std::env::temp_dir());
    root.join(format!("adapters-{}", env!("CARGO_PKG_VERSION")))
        .join(name)
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> ClientError {
    move |source| ClientError::Io { what, source }
}

/// The version of a Debian package, or "unknown".
fn package_version(package: &str) -> String {
    output("dpkg-query", &["-W", "-f", "${Version}", package])
        .filter(|v| !v.is_empty() && !v.contains("no packages found"))
        .unwrap_or_else(|| "unknown".into())
}

/// Build `product` in `dir` once: under an exclusive lock (concurrent runs wait for the
/// first build instead of racing it), skipped when it is already there.
fn build_once(
    dir: &Path,
    product: &str,
    build: impl FnOnce(&Path) -> Result<(), ClientError>,
) -> Result<PathBuf, ClientError> {
    let done = dir.join(product);
    if done.exists() {
        return Ok(done);
    }
    std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    let lock_path = dir.join(".lock");
    let lock = std::fs::File::create(&lock_path)
        .map_err(io(format!("creating {}", lock_path.display())))?;
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a file descriptor this function owns; released when it closes.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(io(format!("locking {}", lock_path.display()))(
            std::io::Error::last_os_error(),
        ));
    }
    if done.exists() {
        return Ok(done);
    }
    let work = dir.join(format!("build.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(io(format!("creating {}", work.display())))?;
    let built = build(&work);
    let result = built.and_then(|()| {
        std::fs::rename(work.join(product), &done)
            .map_err(io(format!("moving the build into {}", done.display())))
    });
    let _ = std::fs::remove_dir_all(&work);
    result.map(|()| done)
}

/// Run a compiler, bounded in time; its output is the error when it fails.
fn compile(what: &str, mut cmd: Command) -> Result<(), ClientError> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(io(format!("starting {what}")))?;
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child
            .try_wait()
            .map_err(io(format!("waiting for {what}")))?
        {
            break s;
        }
        if start.elapsed() > BUILD_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(ClientError::Build {
                what: what.into(),
                output: format!(
                    "took longer than {}",
                    humantime::format_duration(BUILD_LIMIT)
                ),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    if status.success() {
        return Ok(());
    }
    let mut text = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut text);
    }
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut text);
    }
    Err(ClientError::Build {
        what: what.into(),
        output: text.trim().to_string(),
    })
}

/// The Go adapter: a binary built from [`GO_ADAPTER`] against Debian's
/// go-sql-driver/mysql in GOPATH mode (no module proxy needed).
pub fn go() -> Result<Vec<String>, ClientError> {
    let version = output("go", &["version"])
        .filter(|v| v.starts_with("go version"))
        .ok_or_else(|| missing("Go toolchain (`go`) on PATH", "golang-go"))?;
    if !Path::new(GO_DRIVER).join("driver.go").is_file() {
        return Err(missing(
            &format!("go-sql-driver/mysql in {GO_DRIVER}"),
            "golang-github-go-sql-driver-mysql-dev",
        ));
    }
    let driver = package_version("golang-github-go-sql-driver-mysql-dev");
    // The upstream version, without Debian's revision: what a Go user would name.
    let upstream = driver.split('-').next().unwrap_or(&driver).to_string();
    let dir = cache_dir(&format!("go-{}", fnv(&[GO_ADAPTER, &version, &driver])));
    let cache = cache_dir("go-build");
    let bin = build_once(&dir, "go-adapter", |work| {
        let src = work.join("main.go");
        std::fs::write(&src, GO_ADAPTER).map_err(io(format!("writing {}", src.display())))?;
        let mut cmd = Command::new("go");
        cmd.current_dir(work)
            .args(["build", "-o", "go-adapter", "-ldflags"])
            .arg(format!("-X main.driverVersion={upstream}"))
            .arg("main.go")
            .env("GOPATH", GOPATH)
            .env("GO111MODULE", "off")
            .env("GOFLAGS", "")
            .env("GOCACHE", &cache)
            // Nothing may be fetched: the driver comes from Debian's package.
            .env("GOPROXY", "off");
        compile("building the Go adapter", cmd)
    })?;
    Ok(vec![bin.display().to_string()])
}

/// The Node adapter: [`NODE_ADAPTER`] run by `node`, loading Debian's `mysql` module.
pub fn node() -> Result<Vec<String>, ClientError> {
    output("node", &["--version"])
        .filter(|v| v.starts_with('v'))
        .ok_or_else(|| missing("Node.js (`node`) on PATH", "nodejs"))?;
    if !Path::new(NODE_MODULES).join("mysql/package.json").is_file() {
        return Err(missing(
            &format!("the `mysql` module in {NODE_MODULES}"),
            "node-mysql",
        ));
    }
    let file = super::write_adapter("node_adapter.js", NODE_ADAPTER)?;
    Ok(vec![
        "node".into(),
        file.display().to_string(),
        NODE_MODULES.into(),
    ])
}

/// The jars the Java adapter runs with, each with the package that installs it.
const JAVA_JARS: [(&str, &str); 4] = [
    ("HikariCP.jar", "libhikaricp-java"),
    ("mariadb-java-client.jar", "libmariadb-java"),
    ("slf4j-api.jar", "libslf4j-java"),
    ("slf4j-simple.jar", "libslf4j-java"),
];

/// The Java adapter: [`JAVA_ADAPTER`] compiled once with `javac` against Debian's
/// HikariCP and MariaDB Connector/J, run by `java`.
pub fn java() -> Result<Vec<String>, ClientError> {
    let javac = output("javac", &["-J-XX:-UsePerfData", "-version"])
        .filter(|v| v.starts_with("javac"))
        .ok_or_else(|| missing("a JDK (`javac`) on PATH", "default-jdk-headless"))?;
    output("java", &["-XX:-UsePerfData", "-version"])
        .filter(|v| v.contains("version"))
        .ok_or_else(|| missing("Java (`java`) on PATH", "default-jdk-headless"))?;
    let mut jars = Vec::new();
    for (jar, package) in JAVA_JARS {
        let path = Path::new(JARS).join(jar);
        if !path.is_file() {
            return Err(missing(&path.display().to_string(), package));
        }
        jars.push(path.display().to_string());
    }
    let classpath = jars.join(":");
    // An upgraded jar rebuilds too: the packages' versions are part of the key.
    let packages: Vec<String> = JAVA_JARS.iter().map(|(_, p)| package_version(p)).collect();
    let dir = cache_dir(&format!(
        "java-{}",
        fnv(&[JAVA_ADAPTER, &javac, &classpath, &packages.join(" ")])
    ));
    let classes = build_once(&dir, "classes", |work| {
        let src = work.join("GoneawayAdapter.java");
        std::fs::write(&src, JAVA_ADAPTER).map_err(io(format!("writing {}", src.display())))?;
        let mut cmd = Command::new("javac");
        cmd.current_dir(work)
            .args([
                "-J-XX:-UsePerfData",
                "-nowarn",
                "-cp",
                &classpath,
                "-d",
                "classes",
            ])
            .arg("GoneawayAdapter.java");
        compile("compiling the Java adapter", cmd)
    })?;
    // The upstream versions, without Debian's revision.
    let version = |package: &str| {
        let v = package_version(package);
        v.split('-').next().unwrap_or(&v).to_string()
    };
    Ok(vec![
        "java".into(),
        // A short-lived JVM: start fast rather than optimise for hours.
        "-XX:TieredStopAtLevel=1".into(),
        "-XX:+UseSerialGC".into(),
        // No /tmp/hsperfdata_<user> left behind: nothing here reads the JVM's perf data.
        "-XX:-UsePerfData".into(),
        "-Xss512k".into(),
        format!("-Dgoneaway.hikaricp={}", version("libhikaricp-java")),
        format!("-Dgoneaway.mariadb={}", version("libmariadb-java")),
        // HikariCP logs through slf4j: warnings on stderr, where the harness keeps the tail.
        "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn".into(),
        "-cp".into(),
        format!("{}:{classpath}", classes.display()),
        "GoneawayAdapter".into(),
    ])
}
