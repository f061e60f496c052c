//! Client: a pool in another process, driven over a pipe by the adapter protocol.
//!
//! The harness keeps deciding when to check out, run and return; the adapter only does
//! what it is told with the real client library and reports back that client's own
//! errors, counts and settings. So a verdict about SQLAlchemy is measured on SQLAlchemy,
//! not on sqlx speaking SQLAlchemy's words. The protocol is in the README ("Adapter
//! protocol"); [`adapter`] speaks it, [`classify`] maps what crosses it onto the taxonomy.

pub mod adapter;
pub mod classify;
mod runtime;
pub(crate) use runtime::fnv;
pub mod words;

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

pub use adapter::{AdapterPool, ClientError};

/// The version of the adapter protocol this harness speaks.
pub const PROTOCOL: u32 = 1;

/// The SQLAlchemy adapter, shipped inside the binary and written out at run time.
pub const SQLALCHEMY_ADAPTER: &str = include_str!("sqlalchemy_adapter.py");

/// Where `ci/setup.sh` puts the pinned Python stack.
pub const DEFAULT_VENV: &str = "/opt/goneaway-venv";

/// Which client a suite puts under test (`[client]`); without one, sqlx.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClientSpec {
    pub kind: ClientKind,
    /// The Python driver under SQLAlchemy: `pymysql` (default) or `mysqlclient`.
    pub driver: Option<String>,
    /// Handed to the adapter as written: Flask config keys, a user adapter's own words.
    pub config: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientKind {
    /// A real SQLAlchemy engine (QueuePool) built from the suite's `[pool]` words.
    Sqlalchemy,
    /// A real Flask app with Flask-SQLAlchemy, configured by Flask config keys.
    FlaskSqlalchemy,
    /// The user's own adapter: this command speaks the protocol on stdin/stdout.
    Command(Vec<String>),
    /// mysql_async's pool, in this process (no adapter), from `[pool]` in its words.
    MysqlAsync(crate::pool::mysql_async::MysqlAsyncSpec),
    /// Go's database/sql with go-sql-driver/mysql, configured in Go's words.
    GoDatabaseSql,
    /// Node's `mysql` pool, configured with createPool's options.
    NodeMysql,
    /// HikariCP with MariaDB Connector/J, configured with HikariCP's property names.
    Hikaricp,
}

impl ClientKind {
    /// The `mode` the hello message carries.
    pub fn mode(&self) -> &'static str {
        match self {
            ClientKind::Sqlalchemy => "sqlalchemy",
            ClientKind::FlaskSqlalchemy => "flask-sqlalchemy",
            ClientKind::Command(_) => "command",
            ClientKind::MysqlAsync(_) => "mysql-async",
            ClientKind::GoDatabaseSql => "go-database-sql",
            ClientKind::NodeMysql => "node-mysql",
            ClientKind::Hikaricp => "hikaricp",
        }
    }

    /// The built-in adapters configured in their library's own words in
    /// `[client.config]` (never `[pool]`), with no driver to choose.
    pub fn own_words(&self) -> bool {
        matches!(
            self,
            ClientKind::GoDatabaseSql | ClientKind::NodeMysql | ClientKind::Hikaricp
        )
    }
}

impl fmt::Display for ClientSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ClientKind::Command(argv) => write!(f, "adapter `{}`", argv.join(" ")),
            ClientKind::MysqlAsync(_) => write!(
                f,
                "mysql_async {} (in process)",
                crate::pool::mysql_async::VERSION
            ),
            k if k.own_words() => f.write_str(k.mode()),
            k => write!(
                f,
                "{} on {}",
                k.mode(),
                self.driver.as_deref().unwrap_or("pymysql")
            ),
        }
    }
}

/// What the client builds from `spec`, without a server: its settings as read back from
/// the live pool object and the lint for the keys it never read (`goneaway check`). The
/// SQLAlchemy adapters connect lazily, and the hello says there is no server (so
/// `connect_args` are not read back from a connection): nothing is dialled.
pub async fn preview(
    spec: &ClientSpec,
    pool: Option<&crate::pool::PoolSpec>,
) -> Result<(Option<crate::pool::PoolSpec>, Option<crate::lint::Lint>), ClientError> {
    use crate::pool::Pool;
    let nowhere = crate::server::ConnectInfo {
        host: "127.0.0.1".into(),
        port: 9,
        user: "goneaway".into(),
        password: String::new(),
        database: "goneaway".into(),
    };
    let adapter = AdapterPool::start_offline(spec, &nowhere, pool).await?;
    let settings = adapter.settings();
    let lint = crate::lint::ignored(&adapter.client, &adapter.ignored, settings.clone());
    adapter.close().await;
    Ok((settings, lint))
}

/// The Python that runs the built-in adapters: `GONEAWAY_PYTHON`, else the venv that
/// `ci/setup.sh` makes. Missing is one clear error, never a fallback to whatever
/// `python3` is on PATH (it would test other versions than the README states).
pub fn python() -> Result<PathBuf, ClientError> {
    let path = match std::env::var_os("GONEAWAY_PYTHON").filter(|v| !v.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(DEFAULT_VENV).join("bin").join("python"),
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(ClientError::NoPython { path })
    }
}

/// The command line that starts the adapter for `spec`, writing the built-in adapter
/// file out first when it is one of ours.
pub fn command(spec: &ClientSpec) -> Result<Vec<String>, ClientError> {
    match &spec.kind {
        ClientKind::Command(argv) => Ok(argv.clone()),
        ClientKind::MysqlAsync(_) => Err(ClientError::InProcess {
            client: spec.to_string(),
        }),
        ClientKind::Sqlalchemy | ClientKind::FlaskSqlalchemy => {
            let python = python()?;
            let file = write_adapter("sqlalchemy_adapter.py", SQLALCHEMY_ADAPTER)?;
            Ok(vec![
                python.display().to_string(),
                // Unbuffered: replies must leave as soon as they are written.
                "-u".into(),
                file.display().to_string(),
            ])
        }
        ClientKind::GoDatabaseSql => runtime::go(),
        ClientKind::NodeMysql => runtime::node(),
        ClientKind::Hikaricp => runtime::java(),
    }
}

/// Write a shipped adapter to a file named by its content's hash in goneaway's cache dir
/// (the server templates' too; the temp dir without one), once: two builds of goneaway
/// with different adapters on one machine never run each other's. Concurrent runs write
/// the same bytes through a rename, so none ever reads a half-written file.
pub(crate) fn write_adapter(name: &str, text: &str) -> Result<PathBuf, ClientError> {
    let root = crate::server::cache_root().unwrap_or_else(|_| std::env::temp_dir());
    let dir = root.join(format!("adapters-{}", env!("CARGO_PKG_VERSION")));
    let (stem, ext) = name.rsplit_once('.').unwrap_or((name, ""));
    let path = dir.join(format!("{stem}-{}.{ext}", fnv(&[text])));
    if std::fs::read_to_string(&path).is_ok_and(|t| t == text) {
        return Ok(path);
    }
    let io = |e| ClientError::Io {
        what: format!("writing the adapter to {}", path.display()),
        source: e,
    };
    std::fs::create_dir_all(&dir).map_err(io)?;
    let tmp = dir.join(format!("{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)?;
    Ok(path)
}
