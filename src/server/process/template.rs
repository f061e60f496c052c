//! The template datadir cache: a datadir initialized once per server version and copied
//! for every server, so a start costs a copy instead of an install (1-2 s).

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::binary::{Binary, Flavor, find_install_db, is_root};
use super::clone::{clone_tree, sparsify};
use crate::server::ServerError;
use crate::server::shared::{blocking, cache_root, private_tempdir};
/// Bump when the options a template is initialized with change, so old caches are not used.
/// t2: zero runs punched out (sparse), copied in process. t3: no sys schema, empty help
/// tables.
const TEMPLATE_FORMAT: &str = "t3";
/// A small redo log keeps the template (and every copy of it) small: ~22 MB instead of
/// ~114 MB with the default 96 MB log. Servers start with the same size so InnoDB does
/// not resize the log at every start.
pub(super) const INIT_LOG_FILE_SIZE: &str = "4M";

/// The initialized datadir for this binary's version, built on first use. Blocking.
///
/// Many processes (parallel tests) may ask at once: a file lock makes one of them build
/// while the others wait, and the build happens in a temp sibling that is renamed into
/// place, so a half-built template is never visible, even if the builder is killed.
pub(super) fn ensure_template(bin: &Binary) -> Result<PathBuf, ServerError> {
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
    trim(bin, &tmp, scratch.path())?;
    drop(scratch);
    sparsify(&tmp)
        .map_err(|e| ServerError::io(format!("punching holes in {}", tmp.display()), e))?;
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
pub(super) fn init_datadir(bin: &Binary, datadir: &Path, tmpdir: &Path) -> Result<(), ServerError> {
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
        return Err(failed(command, &out, datadir));
    }
    Ok(())
}

/// A datadir tool that failed: the half-made datadir removed, and the tool's whole output
/// kept (its `[ERROR]` lines alone say only "Aborting").
fn failed(command: String, out: &std::process::Output, datadir: &Path) -> ServerError {
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    let _ = fs::remove_dir_all(datadir);
    ServerError::Init {
        command,
        status: out.status.to_string(),
        log_tail: tail(&text),
    }
}

/// What a harness server never uses but every copy would pay for: the `sys` schema (104
/// view files) and the help tables' rows. Without them a copy moves 3.7 MB in 95 files
/// instead of 6.6 MB in 199, about a third less time. MariaDB only: its install script
/// cannot leave them out, so a `--bootstrap` pass removes them.
const TRIM_SQL: &str = "DROP DATABASE IF EXISTS sys;
TRUNCATE TABLE mysql.help_topic;
TRUNCATE TABLE mysql.help_keyword;
TRUNCATE TABLE mysql.help_relation;
TRUNCATE TABLE mysql.help_category;
";

fn trim(bin: &Binary, datadir: &Path, tmpdir: &Path) -> Result<(), ServerError> {
    if bin.flavor != Flavor::MariaDb {
        return Ok(());
    }
    let mut cmd = Command::new(&bin.path);
    cmd.arg("--no-defaults")
        .arg("--bootstrap")
        .arg(format!("--datadir={}", datadir.display()))
        .arg(format!("--tmpdir={}", tmpdir.display()))
        .arg(format!("--innodb-log-file-size={INIT_LOG_FILE_SIZE}"))
        .arg("--innodb-buffer-pool-size=16M");
    if is_root() {
        cmd.arg("--user=root");
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let command = format!("{cmd:?}");
    let io = |e| ServerError::io(format!("running {command}"), e);
    let mut child = cmd.spawn().map_err(io)?;
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        stdin.write_all(TRIM_SQL.as_bytes()).map_err(io)?;
    } // dropped: end of input ends the bootstrap
    let out = child.wait_with_output().map_err(io)?;
    if !out.status.success() || datadir.join("sys").exists() {
        return Err(failed(command, &out, datadir));
    }
    Ok(())
}

/// The last lines of a tool's output, each on its own indented line.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(15)..]
        .iter()
        .map(|l| format!("\n  {l}"))
        .collect()
}

/// Copy the template to a server's datadir: reflinks where the filesystem has them,
/// else only its data (see [`clone`](super::clone)).
pub(super) async fn copy_template(template: PathBuf, datadir: PathBuf) -> Result<(), ServerError> {
    blocking(move || {
        clone_tree(&template, &datadir).map(drop).map_err(|e| {
            ServerError::io(
                format!("copying {} to {}", template.display(), datadir.display()),
                e,
            )
        })
    })
    .await
}
