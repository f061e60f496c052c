//! External backend: a server the user owns, reached by URL.
//!
//! The harness cannot crash or pause it; it can only do what SQL can (KILL, SET GLOBAL).
//! Settings from the suite are applied with `SET GLOBAL` and the old values are put back
//! when the server handle is dropped, so a run never leaves someone's server reconfigured.

use std::sync::Mutex;

use async_trait::async_trait;

use super::{
    Action, BackendKind, ConnectInfo, Server, ServerError, ServerSpec, admin_connect, admin_exec,
    block_on_own_thread, global, sql_literal,
};

#[derive(Debug)]
pub struct ExternalServer {
    info: ConnectInfo,
    version: String,
    /// `(name, value before the run)` of every global the harness changed.
    restore: Mutex<Vec<(String, String)>>,
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
        let mut conn = admin_connect(&info).await?;
        let version: String = sqlx::query_scalar("SELECT VERSION()")
            .fetch_one(&mut conn)
            .await
            .map_err(|e| ServerError::Sql {
                sql: "SELECT VERSION()".into(),
                target: format!("{info:?}"),
                message: e.to_string(),
            })?;
        let server = ExternalServer {
            info,
            version,
            restore: Mutex::new(Vec::new()),
        };
        for (key, value) in &spec.settings {
            let old = global(&server.info, key).await?;
            admin_exec(&server.info, &format!("SET GLOBAL {key} = {value}")).await?;
            server
                .restore
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((key.clone(), old));
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
    async fn act(&self, action: Action) -> Result<(), ServerError> {
        Err(ServerError::Unsupported {
            backend: BackendKind::External,
            action: action.name(),
        })
    }
}

impl Drop for ExternalServer {
    fn drop(&mut self) {
        let restore = std::mem::take(&mut *self.restore.lock().unwrap_or_else(|e| e.into_inner()));
        if restore.is_empty() {
            return;
        }
        let info = self.info.clone();
        block_on_own_thread(async move {
            for (key, old) in restore {
                let sql = format!("SET GLOBAL {key} = {}", sql_literal(&old));
                if let Err(e) = admin_exec(&info, &sql).await {
                    tracing::warn!("could not restore {key} on {info:?}: {e}");
                }
            }
        });
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
