//! A watchdog: a small `/bin/sh` process that outlives the harness and cleans up after it.
//!
//! It runs in its own session (out of the terminal's Ctrl-C and hangup) with stdin the
//! read end of a pipe whose write end only the harness holds. Its script starts with
//! `cat >/dev/null`, which returns at EOF: when the harness dropped the watchdog (after
//! cleaning up itself, so the script finds nothing left to do) or died, `kill -9`
//! included. Then the script does what the harness could not. No code of the harness
//! runs after its death, and a shell and coreutils are everywhere the servers are.

use std::ffi::OsStr;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::ServerError;

pub(crate) struct Watchdog {
    /// Closing this (drop or harness death) is the watchdog's signal to clean up.
    writer: Option<io::PipeWriter>,
    child: Option<Child>,
}

impl Watchdog {
    /// Run `script` with `args` ($1, $2, …) under `/bin/sh`; its stdin hits EOF when
    /// this is dropped or the harness dies.
    pub(crate) fn spawn(script: &str, args: &[&OsStr]) -> Result<Watchdog, ServerError> {
        // std creates both ends close-on-exec: no other child (the server included) can
        // hold the write end open and keep the watchdog from seeing EOF.
        let (reader, writer) =
            io::pipe().map_err(|e| ServerError::io("creating the watchdog pipe", e))?;
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(script)
            .arg("goneaway-watchdog")
            .args(args)
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
