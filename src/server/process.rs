//! Process backend: a local `mariadbd`/`mysqld` in a private temp dir.
//!
//! Starting a server has to be cheap (suites and tests start many), so the slow part,
//! initializing a datadir (`mariadb-install-db`, 1-2 s), is done once per server version
//! into a cache and copied per server (tens of ms). Spawn to ready is then ~0.2 s.
//!
//! The harness owns the server completely and must leave nothing behind, even when it is
//! SIGKILLed. Three independent guards make sure of that:
//! - the server gets `PR_SET_PDEATHSIG(SIGKILL)`, spawned from one long-lived thread
//!   (PDEATHSIG fires when the *spawning thread* exits, so a tokio blocking-pool thread,
//!   which retires after 10 s idle, would kill the server mid-run);
//! - a watchdog shell per server, in its own session, holds the read end of a pipe whose
//!   write end only the harness holds; when the harness dies the pipe hits EOF and the
//!   watchdog kills the server and removes its temp dir;
//! - at start, temp dirs of harness processes that no longer exist are swept.
//!
//! The server runs in its own process group so a terminal Ctrl-C reaches only the
//! harness, which then heals faults and cleans up in order.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex as StdMutex, Once, mpsc};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rand::Rng;
use rand::distr::Alphanumeric;
use sqlx::{ConnectOptions, Connection};
use tokio::sync::{Mutex, oneshot};

use super::{Action, BackendKind, ConnectInfo, Server, ServerError, ServerSpec};

/// The database the application user owns.
pub const DATABASE: &str = "goneaway";
/// The user the pool under test connects as (ALL on `goneaway.*`).
pub const APP_USER: &str = "goneaway";
/// The user the harness connects as for KILL / SET GLOBAL (ALL on `*.*`, over TCP).
pub const ADMIN_USER: &str = "goneaway_admin";

/// How long a spawned server may take to answer before we give up.
const READY_BOUND: Duration = Duration::from_secs(30);
/// How long an orderly shutdown may take before it becomes a SIGKILL.
const SHUTDOWN_BOUND: Duration = Duration::from_secs(30);
/// Bump when the options a template is initialized with change, so old caches are not used.
const TEMPLATE_FORMAT: &str = "t1";
/// A small redo log keeps the template (and every copy of it) small: ~22 MB instead of
/// ~114 MB with the default 96 MB log. Servers start with the same size so InnoDB does
/// not resize the log at every start.
const INIT_LOG_FILE_SIZE: &str = "4M";
/// A marker file in every server temp dir, so the sweep only ever deletes our own dirs.
const MARKER: &str = ".goneaway-process";
/// Written by the harness after every spawn; the watchdog and the sweep kill by it.
const PID_FILE: &str = "server.pid";
/// Where the server's stdout/stderr go (option parsing errors can land here).
const STDERR_LOG: &str = "stderr.log";
const ERROR_LOG: &str = "error.log";
/// Options the backend sets itself; a suite setting one of them would break the harness.
const MANAGED: &[&str] = &[
    "datadir",
    "socket",
    "port",
    "bind_address",
    "pid_file",
    "log_error",
    "user",
    "basedir",
    "no_defaults",
    "defaults_file",
    "defaults_extra_file",
    "skip_name_resolve",
    "skip_networking",
    "tmpdir",
];

/// Which server family a binary belongs to; they initialize and configure differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    MariaDb,
    MySql,
}

/// A server binary and what `--version` said about it.
#[derive(Debug, Clone)]
struct Binary {
    path: PathBuf,
    /// e.g. `10.11.19-MariaDB-0+deb12u1`.
    version: String,
    flavor: Flavor,
}

/// Find the server binary: `GONEAWAY_MYSQLD`, else `mariadbd`/`mysqld` on PATH, else the
/// usual system paths.
pub fn find_binary() -> Result<PathBuf, ServerError> {
    if let Some(path) = std::env::var_os("GONEAWAY_MYSQLD").filter(|p| !p.is_empty()) {
        // An explicit choice is never silently replaced by another binary.
        let path = PathBuf::from(path);
        return if is_executable(&path) {
            Ok(path)
        } else {
            Err(ServerError::MissingBinary {
                searched: format!("GONEAWAY_MYSQLD={}", path.display()),
            })
        };
    }
    let mut searched = Vec::new();
    for name in ["mariadbd", "mysqld"] {
        if let Some(path) = on_path(name) {
            return Ok(path);
        }
        searched.push(format!("{name} on PATH"));
    }
    for path in [
        "/usr/sbin/mariadbd",
        "/usr/sbin/mysqld",
        "/usr/libexec/mysqld",
    ] {
        if is_executable(Path::new(path)) {
            return Ok(PathBuf::from(path));
        }
        searched.push(path.to_string());
    }
    Err(ServerError::MissingBinary {
        searched: searched.join(", "),
    })
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

/// Ask the binary for its version; also tells MariaDB from MySQL.
async fn probe(path: PathBuf) -> Result<Binary, ServerError> {
    let mut cmd = tokio::process::Command::new(&path);
    cmd.arg("--version").stdin(Stdio::null()).kill_on_drop(true);
    let what = || format!("running {} --version", path.display());
    let out = tokio::time::timeout(Duration::from_secs(10), cmd.output())
        .await
        .map_err(|_| ServerError::Other(format!("{}: no answer within 10s", what())))?
        .map_err(|e| ServerError::io(what(), e))?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "mariadbd  Ver 10.11.19-MariaDB-0+deb12u1 for debian-linux-gnu on x86_64 (Debian 12)"
    let version = text
        .split_whitespace()
        .skip_while(|w| *w != "Ver")
        .nth(1)
        .map(str::to_string)
        .ok_or_else(|| {
            ServerError::Other(format!(
                "{}: no version in its output `{}`",
                what(),
                text.trim()
            ))
        })?;
    let flavor = if text.contains("MariaDB") {
        Flavor::MariaDb
    } else {
        Flavor::MySql
    };
    Ok(Binary {
        path,
        version,
        flavor,
    })
}

// ---------------------------------------------------------------------------------------
// Template datadir cache
// ---------------------------------------------------------------------------------------

pub(crate) fn cache_root() -> Result<PathBuf, ServerError> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("GONEAWAY_CACHE") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = var("XDG_CACHE_HOME") {
        return Ok(PathBuf::from(dir).join("goneaway"));
    }
    if let Some(home) = var("HOME") {
        return Ok(PathBuf::from(home).join(".cache").join("goneaway"));
    }
    Err(ServerError::Other(
        "no cache dir for the template datadir: set GONEAWAY_CACHE, XDG_CACHE_HOME or HOME".into(),
    ))
}

/// The initialized datadir for this binary's version, built on first use. Blocking.
///
/// Many processes (parallel tests) may ask at once: a file lock makes one of them build
/// while the others wait, and the build happens in a temp sibling that is renamed into
/// place, so a half-built template is never visible, even if the builder is killed.
fn ensure_template(bin: &Binary) -> Result<PathBuf, ServerError> {
    let root = cache_root()?;
    fs::create_dir_all(&root)
        .map_err(|e| ServerError::io(format!("creating cache dir {}", root.display()), e))?;
    let name = format!("{}-{TEMPLATE_FORMAT}", sanitize(&bin.version));
    let dest = root.join(&name);
    if dest.is_dir() {
        return Ok(dest);
    }
    let lock_path = root.join(format!("{name}.lock"));
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| ServerError::io(format!("opening {}", lock_path.display()), e))?;
    lock.lock()
        .map_err(|e| ServerError::io(format!("locking {}", lock_path.display()), e))?;
    if dest.is_dir() {
        return Ok(dest); // someone else built it while we waited
    }
    // Leftovers of builds that were killed: we hold the lock, so nobody is using them.
    let partial = format!("{name}.tmp-");
    if let Ok(entries) = fs::read_dir(&root) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&partial) {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
    let tmp = root.join(format!("{partial}{}", std::process::id()));
    let scratch = private_tempdir()?;
    init_datadir(bin, &tmp, scratch.path())?;
    drop(scratch);
    fs::rename(&tmp, &dest).map_err(|e| {
        ServerError::io(
            format!("renaming {} to {}", tmp.display(), dest.display()),
            e,
        )
    })?;
    Ok(dest)
}

/// Keep a version string usable as a directory name.
fn sanitize(version: &str) -> String {
    version
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._+-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Initialize a fresh datadir at `datadir` (must not exist yet). Blocking.
///
/// `tmpdir` must be private: concurrent bootstraps sharing /tmp were seen to fail
/// ("Could not remove temporary table '/tmp/#sql-temptable-…'", then
/// "Unknown table 'mysql.tmp_user_sys'") in about one of four runs.
fn init_datadir(bin: &Binary, datadir: &Path, tmpdir: &Path) -> Result<(), ServerError> {
    let mut cmd = match bin.flavor {
        Flavor::MariaDb => {
            let tool = find_install_db(&bin.path)?;
            let mut cmd = Command::new(&tool);
            // --no-defaults must come first; a user's ~/.my.cnf must not leak into the template.
            cmd.arg("--no-defaults");
            // The script finds the server relative to basedir: point it at our binary's tree.
            if let Some(base) = bin.path.parent().and_then(Path::parent) {
                cmd.arg(format!("--basedir={}", base.display()));
            }
            cmd.arg(format!("--datadir={}", datadir.display()))
                .arg(format!("--tmpdir={}", tmpdir.display()))
                .arg("--auth-root-authentication-method=normal")
                .arg("--skip-test-db")
                .arg(format!("--innodb-log-file-size={INIT_LOG_FILE_SIZE}"))
                .arg("--innodb-buffer-pool-size=16M");
            cmd
        }
        Flavor::MySql => {
            let mut cmd = Command::new(&bin.path);
            cmd.arg("--no-defaults")
                .arg("--initialize-insecure")
                .arg(format!("--datadir={}", datadir.display()))
                .arg(format!("--tmpdir={}", tmpdir.display()));
            cmd
        }
    };
    if is_root() {
        cmd.arg("--user=root");
    }
    cmd.stdin(Stdio::null());
    let command = format!("{cmd:?}");
    let out = cmd
        .output()
        .map_err(|e| ServerError::io(format!("running {command}"), e))?;
    if !out.status.success() || !datadir.join("mysql").is_dir() {
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        let _ = fs::remove_dir_all(datadir);
        // Its `[ERROR]` lines alone say only "Aborting": show the whole story.
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let log_tail = lines[lines.len().saturating_sub(15)..]
            .iter()
            .map(|l| format!("\n  {l}"))
            .collect();
        return Err(ServerError::Init {
            command,
            status: out.status.to_string(),
            log_tail,
        });
    }
    Ok(())
}

fn find_install_db(server: &Path) -> Result<PathBuf, ServerError> {
    let names = ["mariadb-install-db", "mysql_install_db"];
    let dir = server.parent().unwrap_or(Path::new("/"));
    let prefix = dir.parent().unwrap_or(dir);
    for name in names {
        for candidate in [
            dir.join(name),
            prefix.join("bin").join(name),
            prefix.join("scripts").join(name),
        ] {
            if is_executable(&candidate) {
                return Ok(candidate);
            }
        }
    }
    for name in names {
        if let Some(path) = on_path(name) {
            return Ok(path);
        }
    }
    Err(ServerError::MissingBinary {
        searched: format!(
            "mariadb-install-db or mysql_install_db next to {} or on PATH",
            server.display()
        ),
    })
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

// ---------------------------------------------------------------------------------------
// Spawning: one long-lived thread, so PR_SET_PDEATHSIG means "the harness died"
// ---------------------------------------------------------------------------------------

struct SpawnJob {
    cmd: Command,
    reply: oneshot::Sender<io::Result<Child>>,
}

/// The spawner thread's inbox. The sender lives in a static and is never dropped, so the
/// thread never exits while the process runs: PDEATHSIG then fires only when the whole
/// harness dies.
static SPAWNER: StdMutex<Option<mpsc::Sender<SpawnJob>>> = StdMutex::new(None);

pub(crate) async fn spawn_on_spawner(cmd: Command) -> io::Result<Child> {
    let inbox = {
        let mut guard = SPAWNER.lock().unwrap_or_else(|e| e.into_inner());
        match guard.as_ref() {
            Some(tx) => tx.clone(),
            None => {
                let (tx, rx) = mpsc::channel::<SpawnJob>();
                std::thread::Builder::new()
                    .name("goneaway-spawner".into())
                    .spawn(move || {
                        for mut job in rx {
                            let _ = job.reply.send(job.cmd.spawn());
                        }
                    })?;
                *guard = Some(tx.clone());
                tx
            }
        }
    };
    let (reply, answer) = oneshot::channel();
    inbox
        .send(SpawnJob { cmd, reply })
        .map_err(|_| io::Error::other("the spawner thread is gone"))?;
    answer
        .await
        .map_err(|_| io::Error::other("the spawner thread dropped a spawn request"))?
}

/// Send `sig` to `pid`.
fn signal(pid: u32, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: kill has no memory-safety preconditions; a bad pid only yields an error.
    if unsafe { libc::kill(pid as libc::pid_t, sig) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

// ---------------------------------------------------------------------------------------
// The per-server temp dir and its watchdog
// ---------------------------------------------------------------------------------------

/// Runs in its own session; stdin is the read end of a pipe only the harness can write.
/// `cat` returns at EOF, i.e. when the harness closed its end (normal drop, after it
/// cleaned up itself) or died. Then kill the server, if the pid still is *this* server
/// (its command line names this dir), wait for it to go, and remove the dir.
const WATCHDOG_SCRIPT: &str = r#"
cat >/dev/null
d=$1
pid=$(cat "$d/server.pid" 2>/dev/null)
if [ -n "$pid" ] && grep -qaF -- "$d" "/proc/$pid/cmdline" 2>/dev/null; then
  kill -CONT "$pid" 2>/dev/null
  kill -KILL "$pid" 2>/dev/null
  i=0
  while [ $i -lt 100 ] && grep -qaF -- "$d" "/proc/$pid/cmdline" 2>/dev/null; do
    sleep 0.05
    i=$((i+1))
  done
fi
rm -rf -- "$d"
"#;

struct Watchdog {
    /// Closing this (drop or harness death) is the watchdog's signal to clean up.
    writer: Option<io::PipeWriter>,
    child: Option<Child>,
}

impl Watchdog {
    fn spawn(dir: &Path) -> Result<Watchdog, ServerError> {
        // std creates both ends close-on-exec: no other child (the server included) can
        // hold the write end open and keep the watchdog from seeing EOF.
        let (reader, writer) =
            io::pipe().map_err(|e| ServerError::io("creating the watchdog pipe", e))?;
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(WATCHDOG_SCRIPT)
            .arg("goneaway-watchdog")
            .arg(dir)
            .stdin(Stdio::from(reader))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: setsid is async-signal-safe. Its own session keeps the watchdog out of
        // the terminal's Ctrl-C and hangup, so it outlives the harness it guards.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| ServerError::io("spawning the watchdog /bin/sh", e))?;
        Ok(Watchdog {
            writer: Some(writer),
            child: Some(child),
        })
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.writer.take());
        // Reap it (it exits within milliseconds once it sees EOF) so no zombie piles up
        // in a harness that starts many servers; bounded so drop can never hang.
        if let Some(mut child) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                match child.try_wait() {
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(2))
                    }
                    Ok(None) => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    _ => break,
                }
            }
        }
    }
}

/// A server's private temp dir, removed by the harness on drop or by the watchdog.
struct Scratch {
    dir: Option<tempfile::TempDir>,
    watchdog: Option<Watchdog>,
    path: PathBuf,
}

impl Scratch {
    fn new() -> Result<Scratch, ServerError> {
        let dir = private_tempdir()?;
        let path = dir.path().to_path_buf();
        let tmp = path.join("tmp");
        fs::create_dir(&tmp)
            .map_err(|e| ServerError::io(format!("creating {}", tmp.display()), e))?;
        // A unix socket path must fit in sun_path (108 bytes).
        let socket = path.join("mysqld.sock");
        if socket.as_os_str().len() >= 100 {
            return Err(ServerError::Other(format!(
                "socket path {} is too long for a unix socket; set TMPDIR to a shorter dir",
                socket.display()
            )));
        }
        let watchdog = Watchdog::spawn(&path)?;
        Ok(Scratch {
            dir: Some(dir),
            watchdog: Some(watchdog),
            path,
        })
    }
}

/// A temp dir named `goneaway-<our pid>-…` with the marker in it, so the sweep can
/// remove it once we are gone. The first call sweeps dirs of dead harnesses.
pub(crate) fn private_tempdir() -> Result<tempfile::TempDir, ServerError> {
    static SWEEP: Once = Once::new();
    SWEEP.call_once(|| {
        sweep_stale_dirs();
    });
    let dir = tempfile::Builder::new()
        .prefix(&format!("goneaway-{}-", std::process::id()))
        .tempdir()
        .map_err(|e| ServerError::io("creating a temp dir", e))?;
    fs::write(dir.path().join(MARKER), b"")
        .map_err(|e| ServerError::io(format!("writing {}", dir.path().display()), e))?;
    Ok(dir)
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // The harness cleans up first; the watchdog then finds nothing left to do.
        if let Some(dir) = self.dir.take() {
            let _ = dir.close();
        }
        drop(self.watchdog.take());
    }
}

/// Remove temp dirs left by harness processes that no longer exist (and kill their
/// servers): the last line of defence when both PDEATHSIG and the watchdog were defeated.
/// The dirs removed.
pub fn sweep_stale_dirs() -> Vec<PathBuf> {
    let me = std::process::id();
    let mut removed = Vec::new();
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return removed;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("goneaway-"))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let dir = entry.path();
        // Only ours: the marker, or empty (killed before the marker was written).
        let empty = fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_none());
        if !dir.join(MARKER).exists() && !empty {
            continue;
        }
        kill_server_of(&dir);
        if fs::remove_dir_all(&dir).is_ok() {
            removed.push(dir);
        }
    }
    removed
}

/// SIGKILL the server whose pid file is in `dir`, if that pid still is that server.
fn kill_server_of(dir: &Path) {
    let Some(pid) = fs::read_to_string(dir.join(PID_FILE))
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
    else {
        return;
    };
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let needle = dir.as_os_str().as_encoded_bytes();
    if cmdline.windows(needle.len()).any(|w| w == needle) {
        let _ = signal(pid, libc::SIGKILL);
    }
}

// ---------------------------------------------------------------------------------------
// One server process
// ---------------------------------------------------------------------------------------

/// Everything needed to (re)start the same server.
#[derive(Debug, Clone)]
struct Launch {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    /// `--key=value`: our defaults the suite did not override, then the suite's settings.
    options: Vec<String>,
}

/// Where the server's logs stood before a spawn, so errors show only this run's lines.
#[derive(Debug, Clone, Copy, Default)]
struct LogMark {
    error_log: u64,
    stderr: u64,
}

impl Launch {
    fn new(
        bin: &Binary,
        dir: &Path,
        settings: &BTreeMap<String, String>,
    ) -> Result<Self, ServerError> {
        let normalized: BTreeMap<String, &String> = settings
            .iter()
            .map(|(k, v)| (k.replace('-', "_"), v))
            .collect();
        for key in normalized.keys() {
            if key.is_empty() || key.contains(['=', ' ']) {
                return Err(ServerError::Other(format!(
                    "bad server setting name `{key}`"
                )));
            }
            if MANAGED.contains(&key.as_str()) {
                return Err(ServerError::Other(format!(
                    "server setting `{key}` is managed by the process backend and cannot be set"
                )));
            }
        }
        let defaults: &[(&str, &str)] = match bin.flavor {
            Flavor::MariaDb => &[
                // Small and fast to start; a suite that cares sets its own.
                ("innodb_buffer_pool_size", "16M"),
                ("innodb_log_file_size", INIT_LOG_FILE_SIZE),
                ("innodb_temp_data_file_path", "ibtmp1:1M:autoextend"),
            ],
            // X protocol would listen on 33060 in every server and collide.
            Flavor::MySql => &[("innodb_buffer_pool_size", "16M"), ("mysqlx", "OFF")],
        };
        let mut options: Vec<String> = defaults
            .iter()
            .filter(|(k, _)| !normalized.contains_key(*k))
            .map(|(k, v)| format!("--{k}={v}"))
            .collect();
        options.extend(settings.iter().map(|(k, v)| format!("--{k}={v}")));
        Ok(Launch {
            bin: bin.path.clone(),
            dir: dir.to_path_buf(),
            port: 0,
            options,
        })
    }

    fn datadir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("mysqld.sock")
    }

    fn mark(&self) -> LogMark {
        let len = |name| fs::metadata(self.dir.join(name)).map_or(0, |m| m.len());
        LogMark {
            error_log: len(ERROR_LOG),
            stderr: len(STDERR_LOG),
        }
    }

    /// The server's log lines written since `mark`: its errors if it logged any, else
    /// the last lines. Prefixed with a newline, or empty.
    fn log_tail(&self, mark: LogMark) -> String {
        let read_from = |name: &str, offset: u64| -> String {
            let mut text = String::new();
            if let Ok(mut f) = File::open(self.dir.join(name)) {
                let _ = f.seek(SeekFrom::Start(offset));
                let mut bytes = Vec::new();
                let _ = f.read_to_end(&mut bytes);
                text = String::from_utf8_lossy(&bytes).into_owned();
            }
            text
        };
        let mut text = read_from(ERROR_LOG, mark.error_log);
        text.push_str(&read_from(STDERR_LOG, mark.stderr));
        tail_of(&text)
    }

    async fn spawn(&self) -> Result<Child, ServerError> {
        let log_path = self.dir.join(STDERR_LOG);
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| ServerError::io(format!("opening {}", log_path.display()), e))?;
        let log2 = log
            .try_clone()
            .map_err(|e| ServerError::io(format!("opening {}", log_path.display()), e))?;
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", self.datadir().display()))
            .arg(format!("--socket={}", self.socket().display()))
            .arg(format!("--port={}", self.port))
            .arg("--bind-address=127.0.0.1")
            .arg(format!(
                "--pid-file={}",
                self.dir.join("mysqld.pid").display()
            ))
            .arg(format!(
                "--log-error={}",
                self.dir.join(ERROR_LOG).display()
            ))
            // Private, like install-db's: servers share no temp files, and theirs go
            // away with the dir.
            .arg(format!("--tmpdir={}", self.dir.join("tmp").display()))
            .arg("--skip-name-resolve");
        if is_root() {
            cmd.arg("--user=root");
        }
        cmd.args(&self.options)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            // Ctrl-C in a terminal goes to the foreground group: the harness, not the server.
            .process_group(0);
        let parent = std::process::id();
        // SAFETY: prctl and getppid are async-signal-safe; nothing here allocates.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                    return Err(io::Error::last_os_error());
                }
                // The harness may have died between fork and prctl: then nobody is left
                // to send the death signal, so do not start at all.
                if libc::getppid() as u32 != parent {
                    return Err(io::Error::other("the harness exited during spawn"));
                }
                Ok(())
            });
        }
        let child = spawn_on_spawner(cmd)
            .await
            .map_err(|e| ServerError::io(format!("spawning {}", self.bin.display()), e))?;
        let pid_file = self.dir.join(PID_FILE);
        if let Err(e) = fs::write(&pid_file, child.id().to_string()) {
            drop(Running::new(child)); // kills it: unguarded by the watchdog is not ok
            return Err(ServerError::io(
                format!("writing {}", pid_file.display()),
                e,
            ));
        }
        Ok(child)
    }

    /// Spawn and wait until root can log in over the socket.
    async fn start(&self, root_password: Option<&str>) -> Result<Running, ServerError> {
        let mark = self.mark();
        let mut run = Running::new(self.spawn().await?);
        self.wait_ready(&mut run, root_password, mark).await?;
        Ok(run)
    }

    /// Poll a real login over the unix socket: no fixed sleep, bounded, and a server that
    /// exits (bad option, port in use) is reported with its own log lines.
    async fn wait_ready(
        &self,
        run: &mut Running,
        root_password: Option<&str>,
        mark: LogMark,
    ) -> Result<(), ServerError> {
        let options = root_options(&self.socket(), root_password);
        let started = Instant::now();
        loop {
            if let Some(status) = run.try_wait()? {
                return Err(ServerError::Exited {
                    status: status.to_string(),
                    log_tail: self.log_tail(mark),
                });
            }
            match tokio::time::timeout(Duration::from_secs(2), options.connect()).await {
                Ok(Ok(conn)) => {
                    let _ = conn.close().await;
                    return Ok(());
                }
                // Clients racing a restart may hold every slot (even root's extra one):
                // the server is up, which is all readiness means.
                Ok(Err(sqlx::Error::Database(e))) if is_con_count(&*e) => {
                    return Ok(());
                }
                // The server answered and refused: waiting longer will not help.
                Ok(Err(sqlx::Error::Database(e))) => {
                    return Err(ServerError::Connect {
                        target: format!("root@{}", self.socket().display()),
                        message: e.to_string(),
                    });
                }
                _ => {}
            }
            if started.elapsed() > READY_BOUND {
                return Err(ServerError::NotReady {
                    addr: self.socket().display().to_string(),
                    waited: READY_BOUND,
                    detail: "no successful login over the unix socket".into(),
                    log_tail: self.log_tail(mark),
                });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Start, retrying when something else took the port between our probe and the
    /// server's bind. `fresh_port` picks a new port per try (first start); otherwise the
    /// same port is retried, as clients expect the server back at the same address.
    async fn start_retrying(
        &mut self,
        root_password: Option<&str>,
        fresh_port: bool,
    ) -> Result<Running, ServerError> {
        let mut tries = 0;
        loop {
            if fresh_port {
                self.port = free_port()?;
            }
            match self.start(root_password).await {
                Err(e) if tries < 4 && is_addr_in_use(&e) => {
                    tries += 1;
                    if !fresh_port {
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                }
                other => return other,
            }
        }
    }
}

/// ER_CON_COUNT_ERROR (1040): "Too many connections".
fn is_con_count(e: &dyn sqlx::error::DatabaseError) -> bool {
    e.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
        .is_some_and(|e| e.number() == 1040)
}

fn is_addr_in_use(e: &ServerError) -> bool {
    matches!(e, ServerError::Exited { log_tail, .. }
        if log_tail.contains("Address already in use") || log_tail.contains("Bind on TCP/IP port"))
}

/// A port nobody is listening on right now (the server may still lose a race for it;
/// see [`Launch::start_retrying`]).
fn free_port() -> Result<u16, ServerError> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| ServerError::io("finding a free port on 127.0.0.1", e))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| ServerError::io("finding a free port on 127.0.0.1", e))
}

fn root_options(socket: &Path, password: Option<&str>) -> sqlx::mysql::MySqlConnectOptions {
    let options = sqlx::mysql::MySqlConnectOptions::new()
        .socket(socket)
        .username("root");
    match password {
        Some(p) => options.password(p),
        None => options,
    }
}

/// The last lines of a log, its `[ERROR]` lines first if it has any. Prefixed with a
/// newline, or empty.
fn tail_of(text: &str) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let errors: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.contains("[ERROR]"))
        .collect();
    let chosen = if errors.is_empty() { &lines } else { &errors };
    let start = chosen.len().saturating_sub(12);
    chosen[start..].iter().map(|l| format!("\n  {l}")).collect()
}

/// A spawned server. Dropping it kills and reaps the process, so a cancelled future or
/// an early return can never leave a server running.
struct Running {
    child: Child,
    paused: bool,
    exited: bool,
}

impl Running {
    fn new(child: Child) -> Self {
        Running {
            child,
            paused: false,
            exited: false,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn try_wait(&mut self) -> Result<Option<ExitStatus>, ServerError> {
        let status = self
            .child
            .try_wait()
            .map_err(|e| ServerError::io(format!("waiting for server pid {}", self.pid()), e))?;
        self.exited |= status.is_some();
        Ok(status)
    }

    /// Poll until the process exits, at most `bound`.
    async fn wait_exit(&mut self, bound: Duration) -> Result<Option<ExitStatus>, ServerError> {
        let deadline = Instant::now() + bound;
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn signal(&self, sig: libc::c_int, what: &str) -> Result<(), ServerError> {
        signal(self.pid(), sig)
            .map_err(|e| ServerError::io(format!("sending {what} to server pid {}", self.pid()), e))
    }

    /// SIGKILL and reap, without a runtime.
    fn kill_now(&mut self) {
        if self.exited {
            return;
        }
        if self.paused {
            let _ = signal(self.pid(), libc::SIGCONT);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.exited = true;
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill_now();
    }
}

// ---------------------------------------------------------------------------------------
// The backend
// ---------------------------------------------------------------------------------------

/// A `mariadbd`/`mysqld` the harness spawned in a private temp dir.
pub struct ProcessServer {
    version: String,
    launch: Launch,
    root_password: String,
    app: ConnectInfo,
    admin: ConnectInfo,
    /// `None` while the server is down (after Crash or Shutdown).
    run: Mutex<Option<Running>>,
    scratch: Scratch,
}

// Passwords stay out of logs.
impl fmt::Debug for ProcessServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessServer")
            .field("version", &self.version)
            .field("port", &self.launch.port)
            .field("dir", &self.scratch.path)
            .finish()
    }
}

impl ProcessServer {
    /// Start a fresh server with the spec's settings, ready for the app and admin users.
    pub async fn start(spec: &ServerSpec) -> Result<ProcessServer, ServerError> {
        let bin = probe(find_binary()?).await?;
        let template = {
            let bin = bin.clone();
            blocking(move || ensure_template(&bin)).await?
        };
        let scratch = blocking(Scratch::new).await?;
        let mut launch = Launch::new(&bin, &scratch.path, &spec.settings)?;
        copy_template(template, launch.datadir()).await?;
        let run = launch.start_retrying(None, true).await?;

        let root_password = password();
        let admin = ConnectInfo {
            host: "127.0.0.1".into(),
            port: launch.port,
            user: ADMIN_USER.into(),
            password: password(),
            database: DATABASE.into(),
        };
        let app = ConnectInfo {
            user: APP_USER.into(),
            password: password(),
            ..admin.clone()
        };
        create_users(&launch.socket(), &root_password, &admin, &app).await?;
        Ok(ProcessServer {
            version: bin.version,
            launch,
            root_password,
            app,
            admin,
            run: Mutex::new(Some(run)),
            scratch,
        })
    }

    /// The server's private temp dir (datadir, socket, logs). Gone after drop.
    pub fn dir(&self) -> &Path {
        &self.scratch.path
    }

    /// The TCP port, the same across Crash/Shutdown and Start.
    pub fn port(&self) -> u16 {
        self.launch.port
    }

    /// The server's pid, or `None` while it is down.
    pub async fn pid(&self) -> Option<u32> {
        let mut run = self.run.lock().await;
        refresh(&mut run);
        run.as_ref().map(Running::pid)
    }

    fn state_error(&self, action: Action, state: &'static str) -> ServerError {
        ServerError::State {
            action: action.name(),
            addr: format!("127.0.0.1:{}", self.launch.port),
            state,
        }
    }
}

/// Forget a server that exited on its own (so it counts as down).
fn refresh(run: &mut Option<Running>) {
    if let Some(r) = run.as_mut()
        && !matches!(r.try_wait(), Ok(None))
    {
        *run = None;
    }
}

#[async_trait]
impl Server for ProcessServer {
    fn backend(&self) -> BackendKind {
        BackendKind::Process
    }

    fn version(&self) -> String {
        self.version.clone()
    }

    fn app(&self) -> ConnectInfo {
        self.app.clone()
    }

    fn admin(&self) -> ConnectInfo {
        self.admin.clone()
    }

    fn supports(&self, action: Action) -> bool {
        !matches!(action, Action::Disconnect | Action::Reconnect)
    }

    async fn act(&self, action: Action) -> Result<(), ServerError> {
        let mut run = self.run.lock().await;
        refresh(&mut run);
        match action {
            Action::Crash => {
                let Some(mut r) = run.take() else {
                    return Err(self.state_error(action, "down"));
                };
                r.kill_now();
                Ok(())
            }
            Action::Shutdown => {
                let Some(mut r) = run.take() else {
                    return Err(self.state_error(action, "down"));
                };
                r.signal(libc::SIGTERM, "SIGTERM")?;
                if r.paused {
                    // A stopped process only acts on SIGTERM once it runs again.
                    r.signal(libc::SIGCONT, "SIGCONT")?;
                    r.paused = false;
                }
                if r.wait_exit(SHUTDOWN_BOUND).await?.is_none() {
                    tracing::warn!(
                        pid = r.pid(),
                        "server ignored SIGTERM for {SHUTDOWN_BOUND:?}; killing it"
                    );
                    r.kill_now();
                }
                Ok(())
            }
            Action::Start => {
                if run.is_some() {
                    return Err(self.state_error(action, "already running"));
                }
                let mut launch = self.launch.clone();
                *run = Some(
                    launch
                        .start_retrying(Some(&self.root_password), false)
                        .await?,
                );
                Ok(())
            }
            Action::Pause => match run.as_mut() {
                None => Err(self.state_error(action, "down")),
                Some(r) if r.paused => Err(self.state_error(action, "already paused")),
                Some(r) => {
                    r.signal(libc::SIGSTOP, "SIGSTOP")?;
                    r.paused = true;
                    wait_stopped(r.pid()).await;
                    Ok(())
                }
            },
            Action::Resume => match run.as_mut() {
                None => Err(self.state_error(action, "down")),
                Some(r) if !r.paused => Err(self.state_error(action, "not paused")),
                Some(r) => {
                    r.signal(libc::SIGCONT, "SIGCONT")?;
                    r.paused = false;
                    Ok(())
                }
            },
            Action::Disconnect | Action::Reconnect => Err(ServerError::Unsupported {
                backend: BackendKind::Process,
                action: action.name(),
            }),
        }
    }
}

impl Drop for ProcessServer {
    fn drop(&mut self) {
        // Server first (SIGCONT if paused, SIGKILL, reap), then its dir, then the
        // watchdog: all synchronous, so this works with or without a runtime.
        if let Some(mut r) = self.run.get_mut().take() {
            r.kill_now();
        }
    }
}

/// SIGSTOP is delivered asynchronously; return once the kernel shows the process stopped,
/// so a query sent right after Pause really meets a frozen server. Bounded.
async fn wait_stopped(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // "pid (comm) S ...": the state follows the last ')'.
        let state = stat
            .rsplit(')')
            .next()
            .and_then(|s| s.trim().chars().next());
        if matches!(state, Some('T') | Some('t') | None) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ServerError> + Send + 'static,
) -> Result<T, ServerError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ServerError::Other(format!("a blocking setup task failed: {e}")))?
}

/// `cp -a` keeps it simple and uses reflinks where the filesystem has them.
async fn copy_template(template: PathBuf, datadir: PathBuf) -> Result<(), ServerError> {
    let mut cmd = tokio::process::Command::new("cp");
    cmd.arg("-a")
        .arg("--reflink=auto")
        .arg(&template)
        .arg(&datadir)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let what = format!("copying {} to {}", template.display(), datadir.display());
    let out = cmd.output().await.map_err(|e| ServerError::io(&what, e))?;
    if !out.status.success() {
        return Err(ServerError::Other(format!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

fn password() -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(24)
        .map(char::from)
        .collect()
}

/// Over the socket as root (no password yet): lock root down, drop the other passwordless
/// root accounts `install-db` creates (root@127.0.0.1, root@::1, root@<hostname>), and
/// create the admin and app users.
async fn create_users(
    socket: &Path,
    root_password: &str,
    admin: &ConnectInfo,
    app: &ConnectInfo,
) -> Result<(), ServerError> {
    let target = format!("root@{}", socket.display());
    let mut conn =
        root_options(socket, None)
            .connect()
            .await
            .map_err(|e| ServerError::Connect {
                target: target.clone(),
                message: e.to_string(),
            })?;
    let sql_err = |sql: &str, e: sqlx::Error| ServerError::Sql {
        sql: sql
            .replace(root_password, "***")
            .replace(&admin.password, "***")
            .replace(&app.password, "***"),
        target: target.clone(),
        message: e.to_string(),
    };
    let extra = "SELECT user, host FROM mysql.user \
                 WHERE (user = 'root' AND host <> 'localhost') OR user = ''";
    let extra_users: Vec<(String, String)> = sqlx::query_as(extra)
        .fetch_all(&mut conn)
        .await
        .map_err(|e| sql_err(extra, e))?;
    let mut statements: Vec<String> = extra_users
        .iter()
        .map(|(user, host)| format!("DROP USER '{user}'@'{host}'"))
        .collect();
    statements.extend([
        format!("CREATE DATABASE IF NOT EXISTS `{DATABASE}`"),
        format!(
            "CREATE USER '{}'@'127.0.0.1' IDENTIFIED BY '{}'",
            admin.user, admin.password
        ),
        format!(
            "GRANT ALL PRIVILEGES ON *.* TO '{}'@'127.0.0.1' WITH GRANT OPTION",
            admin.user
        ),
        format!(
            "CREATE USER '{}'@'127.0.0.1' IDENTIFIED BY '{}'",
            app.user, app.password
        ),
        format!(
            "GRANT ALL PRIVILEGES ON `{DATABASE}`.* TO '{}'@'127.0.0.1'",
            app.user
        ),
        format!("ALTER USER 'root'@'localhost' IDENTIFIED BY '{root_password}'"),
    ]);
    for sql in &statements {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone()))
            .execute(&mut conn)
            .await
            .map_err(|e| sql_err(sql, e))?;
    }
    let _ = conn.close().await;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Bench hook
// ---------------------------------------------------------------------------------------

/// One server start, split in its two parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpawnTrial {
    /// Making the datadir: copying the cached template, or running install-db.
    pub prepare: Duration,
    /// Spawn until root logs in over the socket.
    pub ready: Duration,
}

impl SpawnTrial {
    pub fn total(&self) -> Duration {
        self.prepare + self.ready
    }
}

/// Server start times with the cached template datadir vs a fresh `install-db` one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpawnTimes {
    pub version: String,
    pub cached: Vec<SpawnTrial>,
    pub fresh: Vec<SpawnTrial>,
}

/// Start `trials` servers each way (the template itself is built before timing starts).
pub async fn measure_spawn(trials: usize) -> Result<SpawnTimes, ServerError> {
    let bin = probe(find_binary()?).await?;
    let template = {
        let bin = bin.clone();
        blocking(move || ensure_template(&bin)).await?
    };
    let mut times = SpawnTimes {
        version: bin.version.clone(),
        cached: Vec::with_capacity(trials),
        fresh: Vec::with_capacity(trials),
    };
    for _ in 0..trials {
        for cached in [true, false] {
            let scratch = blocking(Scratch::new).await?;
            let mut launch = Launch::new(&bin, &scratch.path, &BTreeMap::new())?;
            let began = Instant::now();
            if cached {
                copy_template(template.clone(), launch.datadir()).await?;
            } else {
                let (bin, datadir, tmp) = (bin.clone(), launch.datadir(), scratch.path.join("tmp"));
                blocking(move || init_datadir(&bin, &datadir, &tmp)).await?;
            }
            let prepared = Instant::now();
            let run = launch.start_retrying(None, true).await?;
            let trial = SpawnTrial {
                prepare: prepared - began,
                ready: prepared.elapsed(),
            };
            drop(run);
            drop(scratch);
            if cached {
                times.cached.push(trial);
            } else {
                times.fresh.push(trial);
            }
        }
    }
    Ok(times)
}
