//! What keeps a server from outliving the harness: the spawner thread (so
//! `PR_SET_PDEATHSIG` means "the harness died"), and the per-server temp dir with its
//! watchdog, which kills the server and removes the dir after a `kill -9` of the harness.

use std::fs;
use std::io;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::{Mutex as StdMutex, mpsc};

use tokio::sync::oneshot;

use super::launch::SOCKET;
use crate::server::ServerError;
use crate::server::shared::{check_socket_path, private_tempdir};
use crate::server::watchdog::Watchdog;

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

/// A server's private temp dir, removed by the harness on drop or by the watchdog.
pub(super) struct Scratch {
    dir: Option<tempfile::TempDir>,
    watchdog: Option<Watchdog>,
    pub(super) path: PathBuf,
}

impl Scratch {
    pub(super) fn new() -> Result<Scratch, ServerError> {
        let dir = private_tempdir()?;
        let path = dir.path().to_path_buf();
        let tmp = path.join("tmp");
        fs::create_dir(&tmp)
            .map_err(|e| ServerError::io(format!("creating {}", tmp.display()), e))?;
        check_socket_path(&path.join(SOCKET), "the server")?;
        let watchdog = Watchdog::spawn(WATCHDOG_SCRIPT, &[path.as_os_str()])?;
        Ok(Scratch {
            dir: Some(dir),
            watchdog: Some(watchdog),
            path,
        })
    }
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
