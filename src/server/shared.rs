//! What every backend needs from the machine it runs on, written once: who owns a thing
//! and whether that owner still runs, private temp dirs and their sweep, the cache and
//! state dirs, free ports, passwords, unix socket paths, and running async code from
//! `Drop`.
//!
//! Ownership is how goneaway cleans up after a harness that was killed: whatever it
//! leaves (a temp dir, a container, a journal of changed settings) names its [`Owner`],
//! and whoever finds it later removes or replays it once that owner is gone.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Once, OnceLock};

use rand::Rng;

use super::ServerError;

/// A marker file in every temp dir of ours, so the sweep only ever deletes our own dirs.
/// It holds the owner's start time (empty in dirs of older versions).
pub(crate) const MARKER: &str = ".goneaway-process";
/// A process a temp dir keeps alive (a server); the sweep and the watchdog kill by it.
pub(crate) const PID_FILE: &str = "server.pid";
/// Longest unix socket path we create: `sun_path` holds 108 bytes with its NUL.
const MAX_SOCKET_PATH: usize = 100;

/// The process that created something, as precise as the machine allows: a pid alone may
/// be reused, so its start time (clock ticks since boot) and the host go with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub pid: u32,
    /// `None` when it could not be read (then liveness rests on the pid alone).
    pub start: Option<u64>,
    /// Empty when unknown (then the owner counts as local).
    pub host: String,
}

impl Owner {
    /// This process.
    pub fn me() -> Owner {
        static ME: OnceLock<Owner> = OnceLock::new();
        ME.get_or_init(|| {
            let pid = std::process::id();
            Owner {
                pid,
                start: process_start(pid),
                host: hostname(),
            }
        })
        .clone()
    }

    /// Whether it still runs. On another host, or not sure: alive, so cleanup only ever
    /// removes what it is sure of.
    pub fn is_alive(&self) -> bool {
        if !self.host.is_empty() && self.host != hostname() {
            return true;
        }
        if !pid_alive(self.pid) {
            return false;
        }
        // The pid may have been reused by another process since.
        match (self.start, process_start(self.pid)) {
            (Some(then), Some(now)) => then == now,
            _ => true,
        }
    }

    /// As labels (docker) or key/value lines (journals): `pid`, `start`, `host`.
    pub fn to_map(&self, prefix: &str) -> HashMap<String, String> {
        let mut map = HashMap::from([
            (format!("{prefix}pid"), self.pid.to_string()),
            (format!("{prefix}host"), self.host.clone()),
        ]);
        if let Some(start) = self.start {
            map.insert(format!("{prefix}start"), start.to_string());
        }
        map
    }

    /// Read back from [`Owner::to_map`]; `None` without a readable pid.
    pub fn from_map(map: &HashMap<String, String>, prefix: &str) -> Option<Owner> {
        let get = |k: &str| map.get(&format!("{prefix}{k}"));
        Some(Owner {
            pid: get("pid")?.parse().ok()?,
            start: get("start").and_then(|s| s.parse().ok()),
            host: get("host").cloned().unwrap_or_default(),
        })
    }
}

fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 sends nothing; it only checks that the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// A process's start time in clock ticks since boot (`/proc/<pid>/stat` field 22).
fn process_start(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; fields after it follow the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn hostname() -> String {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default()
    })
    .clone()
}

/// Send `sig` to `pid`.
pub(crate) fn signal(pid: u32, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: kill has no memory-safety preconditions; a bad pid only yields an error.
    if unsafe { libc::kill(pid as libc::pid_t, sig) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

// ---- temp dirs ----

/// A temp dir named `goneaway-<our pid>-…` with the marker in it, so the sweep can
/// remove it once we are gone. The first call sweeps dirs of dead harnesses.
pub(crate) fn private_tempdir() -> Result<tempfile::TempDir, ServerError> {
    static SWEEP: Once = Once::new();
    SWEEP.call_once(|| {
        sweep_stale_dirs();
    });
    let me = Owner::me();
    let dir = tempfile::Builder::new()
        .prefix(&format!("goneaway-{}-", me.pid))
        .tempdir()
        .map_err(|e| ServerError::io("creating a temp dir", e))?;
    let start = me.start.map(|s| s.to_string()).unwrap_or_default();
    fs::write(dir.path().join(MARKER), start)
        .map_err(|e| ServerError::io(format!("writing {}", dir.path().display()), e))?;
    Ok(dir)
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
        if pid == me {
            continue;
        }
        let dir = entry.path();
        // Only ours: the marker, or empty (killed before the marker was written).
        let empty = fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_none());
        let marker = fs::read_to_string(dir.join(MARKER));
        if marker.is_err() && !empty {
            continue;
        }
        let owner = Owner {
            pid,
            start: marker.ok().and_then(|s| s.trim().parse().ok()),
            host: String::new(),
        };
        if owner.is_alive() {
            continue;
        }
        kill_pid_of(&dir);
        if fs::remove_dir_all(&dir).is_ok() {
            removed.push(dir);
        }
    }
    removed
}

/// SIGKILL the process whose pid file is in `dir`, if that pid still is that process
/// (its command line names the dir).
fn kill_pid_of(dir: &Path) {
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

/// `path` if a unix socket can be bound there, else an error that says what to do.
pub(crate) fn check_socket_path(path: &Path, what: &str) -> Result<(), ServerError> {
    if path.as_os_str().len() >= MAX_SOCKET_PATH {
        return Err(ServerError::Other(format!(
            "socket path {} for {what} is too long for a unix socket; set TMPDIR to a shorter dir",
            path.display()
        )));
    }
    Ok(())
}

// ---- cache and state dirs ----

/// Where goneaway keeps what is worth keeping between runs: the template datadirs and
/// the journals of settings changed on servers the user owns. `$GONEAWAY_CACHE`, else
/// `$XDG_CACHE_HOME/goneaway`, else `~/.cache/goneaway`.
pub fn cache_root() -> Result<PathBuf, ServerError> {
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
        "no cache dir for goneaway: set GONEAWAY_CACHE, XDG_CACHE_HOME or HOME".into(),
    ))
}

// ---- small helpers ----

/// A port nobody is listening on right now (a server may still lose a race for it;
/// callers retry).
pub(crate) fn free_port() -> Result<u16, ServerError> {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| ServerError::io("finding a free port on 127.0.0.1", e))
}

/// A generated password: 24 letters and digits, none that read alike (safe in URLs,
/// shell arguments and environment variables).
pub(crate) fn password() -> String {
    const CHARS: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..24)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

/// Run blocking setup work off the runtime's threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ServerError> + Send + 'static,
) -> Result<T, ServerError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ServerError::Other(format!("a blocking setup task failed: {e}")))?
}

/// Run a future to completion from synchronous code, such as `Drop`, which may run on a
/// runtime thread (where blocking on that runtime deadlocks) or on none: a thread with a
/// runtime of its own works in both. `None` if that runtime could not start or the
/// future panicked.
pub fn block_on_own_thread<T: Send + 'static>(
    f: impl Future<Output = T> + Send + 'static,
) -> Option<T> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        Some(rt.block_on(f))
    })
    .join()
    .ok()
    .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive_and_a_dead_pid_is_not() {
        assert!(Owner::me().is_alive());
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let dead = Owner {
            pid,
            start: None,
            host: hostname(),
        };
        assert!(!dead.is_alive());
        let elsewhere = Owner {
            host: "another-host".into(),
            ..dead.clone()
        };
        assert!(elsewhere.is_alive());
        let reused = Owner {
            start: Some(1),
            ..Owner::me()
        };
        assert!(!reused.is_alive(), "same pid, another start time");
    }

    #[test]
    fn owners_survive_a_round_trip_through_labels() {
        let me = Owner::me();
        assert_eq!(Owner::from_map(&me.to_map("x."), "x."), Some(me));
        assert_eq!(Owner::from_map(&HashMap::new(), "x."), None);
    }

    #[test]
    fn passwords_are_long_and_differ() {
        let (a, b) = (password(), password());
        assert_eq!(a.len(), 24);
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn long_socket_paths_are_refused() {
        assert!(check_socket_path(Path::new("/tmp/a.sock"), "x").is_ok());
        let long = PathBuf::from(format!("/tmp/{}/a.sock", "d".repeat(100)));
        let err = check_socket_path(&long, "the docker bridge")
            .unwrap_err()
            .to_string();
        assert!(err.contains("too long") && err.contains("TMPDIR"), "{err}");
    }
}
