//! The journal: what a run changed on a server the user owns, written down *before* each
//! change, so the server is put back as it was found even if the harness is killed.
//!
//! A journal is an undo log in plain SQL, newest change first, in
//! `<cache>/journals/<host>_<port>/<run>.sql`, beside a `<run>.cnf` (mode 0600) with the
//! admin credentials the run was given. Three things replay it, whichever comes first:
//! - the run itself when its server handle drops (normal end, error, Ctrl-C, panic);
//! - a watchdog process started with the journal, which survives `kill -9` of the harness
//!   and runs the file through the `mariadb`/`mysql` command-line client;
//! - `goneaway gc`, and the next run against the same server, for journals whose owner is
//!   gone (no client installed, the server was unreachable when the watchdog tried).
//!
//! Replaying is idempotent (`SET GLOBAL` of the value found, `DROP TABLE IF EXISTS`), so
//! two of them racing do no harm. A journal is removed once replayed in full.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use super::admin::{admin_connect, exec_on};
use super::shared::{Owner, cache_root};
use super::watchdog::Watchdog;
use super::{ConnectInfo, ServerError};

const OWNER_LINE: &str = "-- owner ";

/// On the harness's death: replay the journal with the command-line client, and remove
/// it (and its credentials) only if every statement succeeded; otherwise gc or the next
/// run retries.
const WATCHDOG_SCRIPT: &str = r#"
cat >/dev/null
sql=$1; cnf=$2; client=$3
[ -f "$sql" ] || exit 0
if "$client" --defaults-file="$cnf" --connect-timeout=10 --force <"$sql"; then
  rm -f -- "$sql" "$cnf"
  rmdir -- "${sql%/*}" 2>/dev/null
fi
"#;

/// One run's journal on one server.
pub struct Journal {
    admin: ConnectInfo,
    sql: PathBuf,
    cnf: PathBuf,
    /// Undo statements, newest first.
    undo: Mutex<Vec<String>>,
    watchdog: Mutex<Option<Watchdog>>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal").field("sql", &self.sql).finish()
    }
}

/// A journal's file and its server, as `goneaway gc` reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replayed {
    pub journal: PathBuf,
    /// `user@host:port`.
    pub server: String,
    /// How many undo statements ran.
    pub statements: usize,
}

/// `<cache>/journals`.
fn root() -> Result<PathBuf, ServerError> {
    Ok(cache_root()?.join("journals"))
}

/// The directory of one server's journals: one server, one key, whoever connects to it.
fn server_dir(admin: &ConnectInfo) -> Result<PathBuf, ServerError> {
    Ok(root()?.join(server_key(admin)))
}

/// `host_port`, safe as a file name.
fn server_key(admin: &ConnectInfo) -> String {
    format!("{}_{}", admin.host, admin.port)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn describe(admin: &ConnectInfo) -> String {
    format!("{}@{}:{}", admin.user, admin.host, admin.port)
}

impl Journal {
    /// Start an empty journal for run `run` on the server `admin` reaches, and its
    /// watchdog when a command-line client is installed.
    pub fn open(admin: &ConnectInfo, run: &str) -> Result<Journal, ServerError> {
        let dir = server_dir(admin)?;
        let error = |message: String| ServerError::Journal {
            server: describe(admin),
            path: dir.display().to_string(),
            message,
        };
        fs::create_dir_all(&dir).map_err(|e| error(format!("creating it: {e}")))?;
        let _ = fs::set_permissions(&dir, fs::Permissions::from_mode(0o700));
        let journal = Journal {
            admin: admin.clone(),
            sql: dir.join(format!("{run}.sql")),
            cnf: dir.join(format!("{run}.cnf")),
            undo: Mutex::new(Vec::new()),
            watchdog: Mutex::new(None),
        };
        write_private(&journal.cnf, &client_options(admin))?;
        journal.write(&[])?;
        match client() {
            Some(client) => {
                let args = [
                    journal.sql.as_os_str(),
                    journal.cnf.as_os_str(),
                    client.as_os_str(),
                ];
                *journal.watchdog.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(Watchdog::spawn(WATCHDOG_SCRIPT, &args)?);
            }
            None => tracing::warn!(
                "no mariadb/mysql client on PATH: if this run is killed, settings it changed on \
                 {} are put back by `goneaway gc` or the next run against that server",
                describe(admin)
            ),
        }
        Ok(journal)
    }

    /// Write `undo` down before the change it undoes is made.
    pub fn record(&self, undo: String) -> Result<(), ServerError> {
        let mut list = self.undo.lock().unwrap_or_else(|e| e.into_inner());
        list.insert(0, undo);
        self.write(&list)
    }

    fn write(&self, undo: &[String]) -> Result<(), ServerError> {
        let owner = Owner::me();
        let mut text = format!(
            "-- goneaway journal: what a run changed on {}, newest first; replay to undo\n\
             {OWNER_LINE}pid={} start={} host={}\n",
            describe(&self.admin),
            owner.pid,
            owner.start.map(|s| s.to_string()).unwrap_or_default(),
            owner.host
        );
        for statement in undo {
            text.push_str(statement);
            text.push_str(";\n");
        }
        write_private(&self.sql, &text)
    }

    /// Put everything back now; the journal is removed when every statement succeeded.
    pub async fn restore(&self) -> Result<(), ServerError> {
        let undo = self.undo.lock().unwrap_or_else(|e| e.into_inner()).clone();
        replay(&self.admin, &undo).await?;
        remove(&self.sql, &self.cnf);
        Ok(())
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        // The owner restored (or failed to) before this; the watchdog then sees EOF and
        // finds the journal gone, or replays what is left.
        drop(
            self.watchdog
                .get_mut()
                .unwrap_or_else(|e| e.into_inner())
                .take(),
        );
    }
}

/// How long a run waits for its turn at an external server before giving up.
const TURN_WAIT: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// A run's turn at a server the user owns, held for the whole run.
///
/// Globals are server-wide: a second run lowering `wait_timeout` would change the first
/// run's test under it, and each would journal the other's value as the one it found,
/// so whichever finished last would leave the other's value behind for good. So runs
/// against one server take turns: an exclusive `flock` on `<server dir>/turn`, which the
/// kernel releases if the harness dies (the next run then replays its journal first).
/// The lock files live in `<cache>/turns/`, apart from the journals.
#[derive(Debug)]
pub struct Turn {
    _file: fs::File,
}

/// Wait (bounded) for this process's turn at the server `admin` reaches.
pub async fn take_turn(admin: &ConnectInfo) -> Result<Turn, ServerError> {
    let admin = admin.clone();
    super::shared::blocking(move || take_turn_blocking(&admin, TURN_WAIT)).await
}

fn take_turn_blocking(
    admin: &ConnectInfo,
    bound: std::time::Duration,
) -> Result<Turn, ServerError> {
    use std::io::{Read, Seek};
    let dir = cache_root()?.join("turns");
    let path = dir.join(server_key(admin));
    let error = |message: String| ServerError::Journal {
        server: describe(admin),
        path: path.display().to_string(),
        message,
    };
    fs::create_dir_all(&dir).map_err(|e| error(format!("creating its directory: {e}")))?;
    let mut file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|e| error(format!("opening it: {e}")))?;
    let started = std::time::Instant::now();
    let mut said = false;
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(fs::TryLockError::WouldBlock) => {}
            Err(fs::TryLockError::Error(e)) => return Err(error(format!("locking it: {e}"))),
        }
        let mut holder = String::new();
        let _ = file
            .rewind()
            .and_then(|()| file.read_to_string(&mut holder));
        let holder = match holder.trim() {
            "" => "another goneaway run".to_string(),
            pid => format!("goneaway run pid {pid}"),
        };
        if started.elapsed() > bound {
            return Err(error(format!(
                "{holder} has held this server for {} and this run gave up waiting; runs \
                 against one external server take turns because globals are server-wide",
                humantime::format_duration(bound)
            )));
        }
        if !said {
            said = true;
            tracing::warn!(
                "waiting for {holder} to finish with {}: runs against one external server \
                 take turns (globals are server-wide)",
                describe(admin)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = file.set_len(0);
    let _ = file.rewind();
    let _ = write!(file, "{}", std::process::id());
    Ok(Turn { _file: file })
}

/// Run undo statements in order, every one even if one fails; the first error.
async fn replay(admin: &ConnectInfo, undo: &[String]) -> Result<(), ServerError> {
    if undo.is_empty() {
        return Ok(());
    }
    let mut conn = admin_connect(admin).await?;
    let mut first_error = None;
    for statement in undo {
        if let Err(e) = exec_on(&mut conn, admin, statement).await {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Replay the journals of runs that are gone: of the server `only` reaches, or of every
/// server. Journals that cannot be replayed now (server unreachable) stay for next time.
pub async fn replay_orphans(only: Option<&ConnectInfo>) -> Vec<Result<Replayed, ServerError>> {
    let dirs: Vec<PathBuf> = match only {
        Some(admin) => server_dir(admin).into_iter().collect(),
        None => root()
            .ok()
            .and_then(|r| fs::read_dir(r).ok())
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default(),
    };
    let mut done = Vec::new();
    for dir in dirs {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let sql = entry.path();
            if sql.extension().is_none_or(|e| e != "sql") {
                continue;
            }
            let Ok(text) = fs::read_to_string(&sql) else {
                continue;
            };
            if parse_owner(&text).is_none_or(|o| o.is_alive()) {
                continue;
            }
            done.push(replay_file(&sql, &text).await);
        }
    }
    done
}

async fn replay_file(sql: &Path, text: &str) -> Result<Replayed, ServerError> {
    let cnf = sql.with_extension("cnf");
    let error = |server: String, message: String| ServerError::Journal {
        server,
        path: sql.display().to_string(),
        message,
    };
    let admin = fs::read_to_string(&cnf)
        .ok()
        .and_then(|t| parse_client_options(&t))
        .ok_or_else(|| {
            error(
                "an unknown server".into(),
                format!(
                    "its credentials {} are missing or unreadable",
                    cnf.display()
                ),
            )
        })?;
    let undo: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with("--") && !l.trim().is_empty())
        .map(|l| l.trim_end_matches(';').to_string())
        .collect();
    replay(&admin, &undo)
        .await
        .map_err(|e| error(describe(&admin), e.to_string()))?;
    remove(sql, &cnf);
    Ok(Replayed {
        journal: sql.to_path_buf(),
        server: describe(&admin),
        statements: undo.len(),
    })
}

/// A replayed journal and its credentials; the server's dir too once it is empty.
fn remove(sql: &Path, cnf: &Path) {
    let _ = fs::remove_file(sql);
    let _ = fs::remove_file(cnf);
    if let Some(dir) = sql.parent() {
        let _ = fs::remove_dir(dir); // fails, as it should, while other runs' journals are there
    }
}

fn parse_owner(text: &str) -> Option<Owner> {
    let line = text.lines().find_map(|l| l.strip_prefix(OWNER_LINE))?;
    let map: HashMap<String, String> = line
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Owner::from_map(&map, "")
}

/// Written whole to a temp sibling, synced, then renamed: a reader (or a crash) never
/// sees half a journal.
fn write_private(path: &Path, text: &str) -> Result<(), ServerError> {
    let tmp = path.with_extension("tmp");
    let open = || {
        fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
    };
    let result = (|| {
        // Another run's cleanup may have just removed the (then empty) server dir.
        let mut file = match open() {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
                open()?
            }
            other => other?,
        };
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    result.map_err(|e| ServerError::Journal {
        server: String::new(),
        path: path.display().to_string(),
        message: format!("writing it: {e}"),
    })
}

/// An option file for the command-line client (`--defaults-file`): only these options,
/// never the user's `~/.my.cnf`. TCP even for `localhost`, as sqlx connects.
fn client_options(admin: &ConnectInfo) -> String {
    let quote = |v: &str| format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""));
    format!(
        "[client]\nhost={}\nport={}\nuser={}\npassword={}\nprotocol=tcp\n",
        quote(&admin.host),
        admin.port,
        quote(&admin.user),
        quote(&admin.password)
    )
}

fn parse_client_options(text: &str) -> Option<ConnectInfo> {
    let unquote = |v: &str| -> String {
        let v = v.trim();
        match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            Some(inner) => inner.replace("\\\"", "\"").replace("\\\\", "\\"),
            None => v.to_string(),
        }
    };
    let map: HashMap<&str, String> = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim(), unquote(v)))
        .collect();
    Some(ConnectInfo {
        host: map.get("host")?.clone(),
        port: map.get("port")?.parse().ok()?,
        user: map.get("user")?.clone(),
        password: map.get("password").cloned().unwrap_or_default(),
        database: String::new(),
    })
}

/// The command-line client the watchdog replays with, if one is on `PATH`.
fn client() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    ["mariadb", "mysql"].iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| {
                fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            })
    })
}

/// A per-run suffix, unique across processes and runs: `<pid>_<ms since epoch, hex>_<n>`.
pub fn run_suffix() -> String {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    format!(
        "{}_{ms:x}_{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_survive_the_option_file() {
        let admin = ConnectInfo {
            host: "db.example".into(),
            port: 3307,
            user: "ad\"min".into(),
            password: "p\\a\"ss word".into(),
            database: String::new(),
        };
        assert_eq!(parse_client_options(&client_options(&admin)), Some(admin));
    }

    #[test]
    fn the_owner_line_reads_back() {
        let me = Owner::me();
        let text = format!(
            "-- goneaway journal\n{OWNER_LINE}pid={} start={} host={}\nSET GLOBAL x = 1;\n",
            me.pid,
            me.start.unwrap_or_default(),
            me.host
        );
        assert_eq!(parse_owner(&text).map(|o| o.pid), Some(me.pid));
        assert!(parse_owner(&text).is_some_and(|o| o.is_alive()));
        assert_eq!(parse_owner("SET GLOBAL x = 1;"), None);
    }
}
