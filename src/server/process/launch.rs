//! One server process: its command line, spawn, readiness, restart on the same port,
//! logs for error messages, and the first login that creates the harness's users.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use sqlx::{ConnectOptions, Connection};

use super::binary::{Binary, Flavor, is_root};
use super::reaper::spawn_on_spawner;
use super::template::INIT_LOG_FILE_SIZE;
use super::{DATABASE, READY_BOUND};
use crate::server::shared::{PID_FILE, free_port, signal};
use crate::server::{ConnectInfo, ServerError};

/// The server's unix socket, in its temp dir.
pub(super) const SOCKET: &str = "mysqld.sock";
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

/// Everything needed to (re)start the same server.
#[derive(Debug, Clone)]
pub(super) struct Launch {
    bin: PathBuf,
    dir: PathBuf,
    pub(super) port: u16,
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
    pub(super) fn new(
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
                // Buffered I/O. A copied datadir's pages are still dirty in the page cache,
                // and InnoDB's O_DIRECT reads (its default) first wait for them to be
                // written back: that made a start from the template 3x slower than one
                // from a fresh install (measured by `goneaway bench`). Commits still
                // fsync, and a SIGKILLed server loses nothing the kernel holds.
                ("innodb_flush_method", "fsync"),
                // `loose-`: the variable is 10.8+, an older server only warns.
                ("loose_innodb_log_file_buffering", "ON"),
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

    pub(super) fn datadir(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub(super) fn socket(&self) -> PathBuf {
        self.dir.join(SOCKET)
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
    pub(super) async fn start(&self, root_password: Option<&str>) -> Result<Running, ServerError> {
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
    pub(super) async fn start_retrying(
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
pub(super) struct Running {
    child: Child,
    pub(super) paused: bool,
    exited: bool,
}

impl Running {
    pub(super) fn new(child: Child) -> Self {
        Running {
            child,
            paused: false,
            exited: false,
        }
    }

    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(super) fn try_wait(&mut self) -> Result<Option<ExitStatus>, ServerError> {
        let status = self
            .child
            .try_wait()
            .map_err(|e| ServerError::io(format!("waiting for server pid {}", self.pid()), e))?;
        self.exited |= status.is_some();
        Ok(status)
    }

    /// Poll until the process exits, at most `bound`.
    pub(super) async fn wait_exit(
        &mut self,
        bound: Duration,
    ) -> Result<Option<ExitStatus>, ServerError> {
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

    pub(super) fn signal(&self, sig: libc::c_int, what: &str) -> Result<(), ServerError> {
        signal(self.pid(), sig)
            .map_err(|e| ServerError::io(format!("sending {what} to server pid {}", self.pid()), e))
    }

    /// SIGKILL and reap, without a runtime.
    pub(super) fn kill_now(&mut self) {
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

/// Over the socket as root (no password yet): lock root down, drop the other passwordless
/// root accounts `install-db` creates (root@127.0.0.1, root@::1, root@<hostname>), and
/// create the admin and app users.
pub(super) async fn create_users(
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
        // The same application user over the unix socket (`[pool] transport = "socket"`),
        // where the server sees the host as `localhost`.
        format!(
            "CREATE USER '{}'@'localhost' IDENTIFIED BY '{}'",
            app.user, app.password
        ),
        format!(
            "GRANT ALL PRIVILEGES ON `{DATABASE}`.* TO '{}'@'localhost'",
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
