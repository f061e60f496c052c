//! Finding the server binary and what it is: `GONEAWAY_MYSQLD`, else `mariadbd`/`mysqld`
//! on PATH, else the usual system paths; `--version` tells MariaDB from MySQL.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::server::ServerError;

/// Which server family a binary belongs to; they initialize and configure differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flavor {
    MariaDb,
    MySql,
}

/// A server binary and what `--version` said about it.
#[derive(Debug, Clone)]
pub(super) struct Binary {
    pub(super) path: PathBuf,
    /// e.g. `10.11.19-MariaDB-0+deb12u1`.
    pub(super) version: String,
    pub(super) flavor: Flavor,
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
pub(super) async fn probe(path: PathBuf) -> Result<Binary, ServerError> {
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

pub(super) fn find_install_db(server: &Path) -> Result<PathBuf, ServerError> {
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

pub(super) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}
