//! A primary and a replica of the process backend, joined by real MariaDB replication
//! (binlog + GTID), so a failover can move the application to a server that really has
//! (or really lacks) the writes the old primary acknowledged.
//!
//! Both servers start from the same template datadir, so the replica needs nothing but
//! the primary's binlog: it replicates from the primary's first event, which creates the
//! harness's users, the database and (later) the writes table. The replica therefore
//! never creates users of its own: the application's credentials work on both, as they
//! do behind a VIP. Ready means the replica's IO and SQL threads run and its GTID
//! position equals the primary's.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use sqlx::{ConnectOptions, Connection, Row};

use super::ProcessServer;
use crate::server::shared::password;
use crate::server::{
    Action, BackendKind, ConnectInfo, Server, ServerError, ServerSpec, admin_connect, admin_exec,
};

/// The user the replica's IO thread logs in to the primary as.
pub const REPL_USER: &str = "goneaway_repl";

/// Settings the replica pair sets itself; a suite setting one would break replication.
pub const REPLICATION_MANAGED: &[&str] = &[
    "log_bin",
    "server_id",
    "relay_log",
    "read_only",
    "skip_slave_start",
    "gtid_domain_id",
    "log_basename",
];

/// How long the replica may take to catch up with the primary before the run gives up.
const CATCH_UP_BOUND: Duration = Duration::from_secs(30);

/// The primary (what the application reaches, the target of every other fault) and its
/// replica.
pub struct ReplicatedServer {
    primary: ProcessServer,
    replica: Arc<ProcessServer>,
    promoted: std::sync::atomic::AtomicBool,
}

impl fmt::Debug for ReplicatedServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplicatedServer")
            .field("primary", &self.primary)
            .field("replica", &self.replica)
            .finish()
    }
}

impl ReplicatedServer {
    /// Start the primary (binlog on, server_id 1), create the replication user, start
    /// the replica (server_id 2, read-only) pointed at it with GTID, and wait until the
    /// replica has caught up.
    pub async fn start(spec: &ServerSpec, delay: Duration) -> Result<Self, ServerError> {
        for key in spec.settings.keys() {
            if REPLICATION_MANAGED.contains(&key.replace('-', "_").as_str()) {
                return Err(ServerError::Other(format!(
                    "server setting `{key}` is managed by the replica pair (replication needs its own value) and cannot be set"
                )));
            }
        }
        let with = |extra: &[(&str, &str)]| {
            let mut s = spec.settings.clone();
            for (k, v) in extra {
                s.insert((*k).to_string(), (*v).to_string());
            }
            s
        };
        let binlog: &[(&str, &str)] = &[("log_bin", "goneaway-bin"), ("server_id", "1")];
        let primary = ProcessServer::start_with(&with(binlog), None).await?;
        let repl_password = password();
        for sql in [
            format!("CREATE USER '{REPL_USER}'@'127.0.0.1' IDENTIFIED BY '{repl_password}'"),
            format!("GRANT REPLICATION SLAVE ON *.* TO '{REPL_USER}'@'127.0.0.1'"),
        ] {
            admin_exec(&primary.admin(), &sql)
                .await
                .map_err(|e| ServerError::Other(e.to_string().replace(&repl_password, "***")))?;
        }
        let replica_settings = with(&[
            ("log_bin", "goneaway-bin"),
            ("server_id", "2"),
            ("relay_log", "goneaway-relay"),
            // A restart of the replica must not resume replication behind our back.
            ("skip_slave_start", "ON"),
        ]);
        let replica = ProcessServer::start_with(&replica_settings, Some(&primary)).await?;
        let change = format!(
            "CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = {}, MASTER_USER = '{REPL_USER}', \
             MASTER_PASSWORD = '{repl_password}', MASTER_USE_GTID = slave_pos, MASTER_DELAY = {}, \
             MASTER_CONNECT_RETRY = 1",
            primary.port(),
            delay.as_secs()
        );
        // Over the replica's socket as root, which still has no password: the primary's
        // (and its users) arrive with replication.
        let root = sqlx::mysql::MySqlConnectOptions::new()
            .socket(replica.launch.socket())
            .username("root");
        let mut conn = root.connect().await.map_err(|e| ServerError::Connect {
            target: format!("root@{}", replica.launch.socket().display()),
            message: e.to_string(),
        })?;
        for sql in [
            "SET GLOBAL read_only = ON".to_string(),
            change,
            "START SLAVE".to_string(),
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone()))
                .execute(&mut conn)
                .await
                .map_err(|e| ServerError::Sql {
                    sql: sql.replace(&repl_password, "***"),
                    target: format!("root@{}", replica.launch.socket().display()),
                    message: e.to_string(),
                })?;
        }
        let _ = conn.close().await;
        let pair = ReplicatedServer {
            primary,
            replica: Arc::new(replica),
            promoted: Default::default(),
        };
        pair.catch_up(delay + CATCH_UP_BOUND).await?;
        Ok(pair)
    }

    /// The primary: what the application reaches and every other fault targets.
    pub fn primary(&self) -> &ProcessServer {
        &self.primary
    }

    /// The replica, started read-only and following the primary.
    pub fn standby(&self) -> &ProcessServer {
        &self.replica
    }

    /// Wait until the replica's threads run and its GTID position is the primary's.
    async fn catch_up(&self, bound: Duration) -> Result<(), ServerError> {
        let started = Instant::now();
        let mut last: String;
        loop {
            match replication_state(&self.primary.admin(), &self.replica.admin()).await {
                Ok(state) if state.caught_up() => return Ok(()),
                Ok(state) if !state.error.is_empty() => {
                    return Err(ServerError::Other(format!(
                        "replication from 127.0.0.1:{} to 127.0.0.1:{} failed: {}",
                        self.primary.port(),
                        self.replica.port(),
                        state.error
                    )));
                }
                Ok(state) => last = state.to_string(),
                Err(e) => last = e.to_string(),
            }
            if started.elapsed() > bound {
                return Err(ServerError::NotReady {
                    addr: format!("127.0.0.1:{}", self.replica.port()),
                    waited: bound,
                    detail: format!("the replica did not catch up with the primary: {last}"),
                    log_tail: String::new(),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// What the replica says of its replication, and where the primary is.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicationState {
    pub io_running: String,
    pub sql_running: String,
    pub replica_pos: String,
    pub primary_pos: String,
    /// The IO or SQL thread's last error, if any.
    pub error: String,
}

impl ReplicationState {
    pub fn caught_up(&self) -> bool {
        self.io_running == "Yes"
            && self.sql_running == "Yes"
            && self.replica_pos == self.primary_pos
    }
}

impl fmt::Display for ReplicationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "IO thread {}, SQL thread {}, replica at GTID `{}`, primary at `{}`",
            self.io_running, self.sql_running, self.replica_pos, self.primary_pos
        )
    }
}

/// Read both sides' replication state (each over its own admin connection).
pub async fn replication_state(
    primary: &ConnectInfo,
    replica: &ConnectInfo,
) -> Result<ReplicationState, ServerError> {
    let sql_error = |sql: &str, target: &ConnectInfo, e: sqlx::Error| ServerError::Sql {
        sql: sql.into(),
        target: format!("{target:?}"),
        message: e.to_string(),
    };
    let mut p = admin_connect(primary).await?;
    let q = "SELECT CAST(@@GLOBAL.gtid_binlog_pos AS CHAR)";
    let primary_pos: Option<String> = sqlx::query_scalar(q)
        .fetch_one(&mut p)
        .await
        .map_err(|e| sql_error(q, primary, e))?;
    let _ = p.close().await;
    let mut r = admin_connect(replica).await?;
    let q = "SHOW SLAVE STATUS";
    let status = sqlx::raw_sql(q)
        .fetch_optional(&mut r)
        .await
        .map_err(|e| sql_error(q, replica, e))?;
    let text = |row: &sqlx::mysql::MySqlRow, col: &str| -> String {
        row.try_get::<Option<String>, _>(col)
            .ok()
            .flatten()
            .or_else(|| {
                row.try_get::<Option<Vec<u8>>, _>(col)
                    .ok()
                    .flatten()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
            })
            .unwrap_or_default()
    };
    let (io_running, sql_running, error) = match &status {
        Some(row) => {
            let errors: Vec<String> = ["Last_IO_Error", "Last_SQL_Error"]
                .iter()
                .map(|c| text(row, c))
                .filter(|e| !e.is_empty())
                .collect();
            (
                text(row, "Slave_IO_Running"),
                text(row, "Slave_SQL_Running"),
                errors.join("; "),
            )
        }
        None => ("No".into(), "No".into(), String::new()),
    };
    let q = "SELECT CAST(@@GLOBAL.gtid_slave_pos AS CHAR)";
    let replica_pos: Option<String> = sqlx::query_scalar(q)
        .fetch_one(&mut r)
        .await
        .map_err(|e| sql_error(q, replica, e))?;
    let _ = r.close().await;
    Ok(ReplicationState {
        io_running,
        sql_running,
        replica_pos: replica_pos.unwrap_or_default(),
        primary_pos: primary_pos.unwrap_or_default(),
        error,
    })
}

#[async_trait]
impl Server for ReplicatedServer {
    fn backend(&self) -> BackendKind {
        BackendKind::Process
    }

    fn version(&self) -> String {
        self.primary.version()
    }

    fn app(&self) -> ConnectInfo {
        self.primary.app()
    }

    fn admin(&self) -> ConnectInfo {
        self.primary.admin()
    }

    async fn act(&self, action: Action) -> Result<(), ServerError> {
        self.primary.act(action).await
    }

    fn replica(&self) -> Option<Arc<dyn Server>> {
        Some(self.replica.clone())
    }

    async fn sync_replica(&self) -> Result<(), ServerError> {
        self.catch_up(CATCH_UP_BOUND).await
    }

    async fn promote_replica(&self) -> Result<ConnectInfo, ServerError> {
        // No waiting for the relay log: an asynchronous failover promotes what the
        // replica has, and whatever it had not applied is lost with RESET SLAVE ALL.
        let admin = self.replica.admin();
        let mut conn = admin_connect(&admin).await?;
        for sql in [
            "STOP SLAVE",
            "RESET SLAVE ALL",
            "SET GLOBAL read_only = OFF",
        ] {
            crate::server::admin::exec_on(&mut conn, &admin, sql).await?;
        }
        let _ = conn.close().await;
        self.promoted
            .store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(self.replica.app())
    }

    fn promoted(&self) -> Option<Arc<dyn Server>> {
        self.promoted
            .load(std::sync::atomic::Ordering::SeqCst)
            .then(|| self.replica.clone() as Arc<dyn Server>)
    }
}
