//! External backend: a server the user owns, reached by URL.
//!
//! The harness cannot crash or pause it; it can only do what SQL can (KILL, SET GLOBAL).
//! Everything a run changes (the suite's settings, globals set by faults, the run's own
//! writes table) is written in a [`Journal`] before it is changed, and put back when the
//! server handle drops, or, if the harness is killed, by the journal's watchdog, `goneaway
//! gc` or the next run: a run never leaves someone's server reconfigured.

use async_trait::async_trait;

use super::journal::{Journal, Turn, replay_orphans, run_suffix, take_turn};
use super::{Action, BackendKind, ConnectInfo, Server, ServerError, ServerSpec, admin_connect};

/// The prefix of the per-run writes table; `goneaway gc` drops those of dead runs.
pub const WRITES_TABLE_PREFIX: &str = "goneaway_writes_";

#[derive(Debug)]
pub struct ExternalServer {
    info: ConnectInfo,
    version: String,
    /// This run's table, so runs sharing the server never touch each other's rows and the
    /// table goes with the run.
    writes_table: String,
    journal: Journal,
    /// Last field: released only after `drop` has put the server back.
    _turn: Turn,
}

impl ExternalServer {
    pub async fn attach(spec: &ServerSpec) -> Result<Self, ServerError> {
        let url = spec.url.as_deref().ok_or_else(|| {
            ServerError::Other(
                "the external backend needs `url = \"mysql://user:pass@host:port/db\"` in [server]"
                    .into(),
            )
        })?;
        let info = parse_url(url)?;
        // Before anything is read, replayed or connected (a connection opened before the
        // wait could outlive another run's lowered wait_timeout): see [`Turn`].
        let turn = take_turn(&info).await?;
        let mut conn = admin_connect(&info).await?;
        let version: String = sqlx::query_scalar("SELECT VERSION()")
            .fetch_one(&mut conn)
            .await
            .map_err(|e| ServerError::Sql {
                sql: "SELECT VERSION()".into(),
                target: format!("{info:?}"),
                message: e.to_string(),
            })?;
        // A run killed earlier may have left this server changed: put it back first, so
        // the values this run journals are the ones the user had.
        for replayed in replay_orphans(Some(&info)).await {
            match replayed {
                Ok(r) => tracing::warn!(
                    "put back {} setting(s) a killed goneaway run left on {}",
                    r.statements,
                    r.server
                ),
                Err(e) => tracing::warn!("{e}"),
            }
        }
        let suffix = run_suffix();
        let writes_table = format!("{WRITES_TABLE_PREFIX}{suffix}");
        let journal = Journal::open(&info, &suffix)?;
        journal.record(format!(
            "DROP TABLE IF EXISTS `{}`.`{writes_table}`",
            info.database.replace('`', "``")
        ))?;
        let server = ExternalServer {
            info,
            version,
            writes_table,
            journal,
            _turn: turn,
        };
        for (key, value) in &spec.settings {
            server.set_global(key, value).await?;
        }
        Ok(server)
    }
}

/// Split a `mysql://user:pass@host:port/db` URL into its parts.
pub fn parse_url(raw: &str) -> Result<ConnectInfo, ServerError> {
    let bad = |why: &str| {
        ServerError::Other(format!(
            "bad server url `{}`: {why}; expected mysql://user:password@host:port/database",
            redact(raw)
        ))
    };
    let url = url::Url::parse(raw).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "mysql" | "mariadb") {
        return Err(bad("scheme must be mysql://"));
    }
    let decode = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let host = url.host_str().unwrap_or_default().to_string();
    if host.is_empty() || url.username().is_empty() {
        return Err(bad("host and user are required"));
    }
    Ok(ConnectInfo {
        host,
        port: url.port().unwrap_or(3306),
        user: decode(url.username()),
        password: decode(url.password().unwrap_or_default()),
        database: url.path().trim_start_matches('/').to_string(),
    })
}

fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => match url[s + 3..at].split_once(':') {
            Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
            None => url.to_string(),
        },
        _ => url.to_string(),
    }
}

#[async_trait]
impl Server for ExternalServer {
    fn backend(&self) -> BackendKind {
        BackendKind::External
    }
    fn version(&self) -> String {
        self.version.clone()
    }
    fn app(&self) -> ConnectInfo {
        self.info.clone()
    }
    fn admin(&self) -> ConnectInfo {
        self.info.clone()
    }
    fn journal(&self) -> Option<&Journal> {
        Some(&self.journal)
    }
    fn writes_table(&self) -> String {
        self.writes_table.clone()
    }
    async fn act(&self, action: Action) -> Result<(), ServerError> {
        Err(ServerError::Unsupported {
            backend: BackendKind::External,
            action: action.name(),
        })
    }
}

impl Drop for ExternalServer {
    fn drop(&mut self) {
        let journal = &self.journal;
        // Drop may run on a runtime thread: restore on a thread with a runtime of its own
        // (scoped, so it may borrow the journal), joined before drop returns.
        let restore = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .ok()?;
                    Some(rt.block_on(journal.restore()))
                })
                .join()
                .ok()
                .flatten()
        });
        match restore {
            Some(Ok(())) => {}
            Some(Err(e)) => tracing::warn!(
                "could not put back what the run changed on {:?} ({e}); its journal's watchdog, \
                 `goneaway gc` or the next run will",
                self.info
            ),
            None => tracing::warn!(
                "putting back what the run changed on {:?} panicked",
                self.info
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let i = parse_url("mysql://app:s3cr%3Aet@db.example:3307/shop?ssl-mode=disabled").unwrap();
        assert_eq!(
            (
                i.user.as_str(),
                i.password.as_str(),
                i.host.as_str(),
                i.port,
                i.database.as_str()
            ),
            ("app", "s3cr:et", "db.example", 3307, "shop")
        );
        let i = parse_url("mysql://root@127.0.0.1/").unwrap();
        assert_eq!((i.port, i.password.as_str()), (3306, ""));
        let e = parse_url("postgres://a:secret@h/db")
            .unwrap_err()
            .to_string();
        assert!(e.contains("mysql://") && !e.contains("secret"), "{e}");
    }
}
