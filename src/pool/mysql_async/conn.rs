//! Build a mysql_async `Pool` from the suite's words, read its options back, and drive it
//! through the harness's [`Pool`] / [`Conn`] traits.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mysql_async::prelude::Queryable;
use mysql_async::{Opts, OptsBuilder, PoolConstraints, PoolOpts, TxOpts};

use super::{MysqlAsyncError, MysqlAsyncSettings, MysqlAsyncSpec, Started, VERSION};
use crate::history::OpError;
use crate::pool::{Conn, Pool, PoolSpec, PoolStats, Statement};
use crate::server::ConnectInfo;

/// The options the pool is built from: the suite's words, the library's defaults for
/// the rest. `prefer_socket` is turned off: on a loopback address mysql_async would
/// otherwise ask the server for its unix socket and reconnect through it, around the
/// proxy (the suite tests a TCP path, as to a remote server).
pub(super) fn opts(spec: &MysqlAsyncSpec, info: &ConnectInfo) -> Opts {
    let mut pool = PoolOpts::default();
    if spec.pool_min.is_some() || spec.pool_max.is_some() {
        let d = pool.constraints();
        let min = spec.pool_min.unwrap_or(d.min());
        let max = spec.pool_max.unwrap_or(d.max());
        // The suite checker refuses min > max and max = 0; should one slip through, the
        // read-back comparison stops the run instead of a panic here.
        if let Some(c) = PoolConstraints::new(min, max) {
            pool = pool.with_constraints(c);
        }
    }
    if let Some(d) = spec.inactive_connection_ttl {
        pool = pool.with_inactive_connection_ttl(d);
    }
    if let Some(d) = spec.ttl_check_interval {
        pool = pool.with_ttl_check_interval(d);
    }
    if let Some(d) = spec.abs_conn_ttl {
        pool = pool.with_abs_conn_ttl(Some(d));
    }
    if let Some(d) = spec.abs_conn_ttl_jitter {
        pool = pool.with_abs_conn_ttl_jitter(Some(d));
    }
    if let Some(b) = spec.reset_connection {
        pool = pool.with_reset_connection(b);
    }
    let mut b = OptsBuilder::default()
        .ip_or_hostname(info.host.clone())
        .tcp_port(info.port)
        .user(Some(info.user.clone()))
        .pass(Some(info.password.clone()))
        .db_name(Some(info.database.clone()))
        .prefer_socket(false)
        .pool_opts(pool);
    if let Some(d) = spec.conn_ttl {
        b = b.conn_ttl(d);
    }
    if let Some(d) = spec.tcp_keepalive {
        b = b.tcp_keepalive(Some(d));
    }
    Opts::from(b)
}

/// Every setting as the options say. mysql_async's `Pool` has no getter for its options,
/// but `Opts` is one shared `Arc` inside and `Pool::new(opts)` keeps that very value
/// (read in mysql_async 0.37.1's source), so the `Opts` kept beside the pool are the
/// live pool's own: this reads what the pool runs with, defaults included.
pub(super) fn read_back(o: &Opts) -> MysqlAsyncSettings {
    let p = o.pool_opts();
    MysqlAsyncSettings {
        pool_min: p.constraints().min(),
        pool_max: p.constraints().max(),
        inactive_connection_ttl: p.inactive_connection_ttl(),
        ttl_check_interval: p.ttl_check_interval(),
        abs_conn_ttl: p.abs_conn_ttl(),
        abs_conn_ttl_jitter: p.abs_conn_ttl_jitter(),
        conn_ttl: o.conn_ttl(),
        reset_connection: p.reset_connection(),
        tcp_keepalive: o.tcp_keepalive(),
        prefer_socket: o.prefer_socket(),
    }
}

pub(super) fn start(spec: &MysqlAsyncSpec, info: &ConnectInfo) -> Result<Started, MysqlAsyncError> {
    let opts = opts(spec, info);
    let settings = read_back(&opts);
    // A setting that did not apply is the bug this project exists for: refuse to run a
    // pool that is not the one the suite describes (mysql_async silently replaces a
    // ttl_check_interval below 1 s with 30 s, for one).
    if !spec.matches(&settings) {
        return Err(MysqlAsyncError::Mismatch {
            built: settings.to_string(),
            described: spec.to_string(),
        });
    }
    let pool = MysqlAsyncPool {
        pool: mysql_async::Pool::new(opts.clone()),
        opts,
    };
    Ok(Started {
        pool: Arc::new(pool),
        settings,
    })
}

/// mysql_async's pool under test.
pub struct MysqlAsyncPool {
    pool: mysql_async::Pool,
    /// The pool's own options (the same `Arc`).
    opts: Opts,
}

impl MysqlAsyncPool {
    /// The library under test, for the report.
    pub fn client() -> String {
        format!("mysql_async {VERSION}")
    }
}

#[async_trait]
impl Pool for MysqlAsyncPool {
    async fn acquire(&self) -> Result<Box<dyn Conn>, OpError> {
        // No checkout timeout of its own: get_conn waits until a connection is free or
        // a new one is made; the harness's op timeout bounds it.
        match self.pool.get_conn().await {
            Ok(c) => Ok(Box::new(MysqlAsyncConn(c))),
            Err(e) => Err(super::error(&e)),
        }
    }

    fn stats(&self) -> PoolStats {
        // The pool's own gauges: connections that exist (being opened, idle or checked
        // out) and those idle in the pool.
        let m = self.pool.metrics();
        let load = |a: &std::sync::atomic::AtomicUsize| {
            u32::try_from(a.load(std::sync::atomic::Ordering::Relaxed)).unwrap_or(u32::MAX)
        };
        PoolStats {
            size: load(&m.connection_count),
            idle: load(&m.connections_in_pool),
        }
    }

    fn settings(&self) -> Option<PoolSpec> {
        Some(read_back(&self.opts).pool_spec())
    }

    async fn close(&self) {
        // Bounded: disconnect waits for every checked-out connection to come back, and
        // one stuck in a black hole never would.
        let _ = tokio::time::timeout(Duration::from_secs(5), self.pool.clone().disconnect()).await;
    }
}

struct MysqlAsyncConn(mysql_async::Conn);

#[async_trait]
impl Conn for MysqlAsyncConn {
    async fn run(&mut self, statement: Statement) -> Result<(), OpError> {
        let conn = &mut self.0;
        // Statements with parameters go as prepared statements, as an application's
        // `exec_*` calls do (mysql_async caches them per connection).
        let result: mysql_async::Result<()> = async {
            match statement {
                Statement::Ping => conn.ping().await,
                Statement::Select { table, id } => conn
                    .exec_first::<(i64, i32), _, _>(
                        format!("SELECT id, worker FROM {table} WHERE id = ?"),
                        (id,),
                    )
                    .await
                    .map(drop),
                Statement::Insert { table, id, worker } => {
                    conn.exec_drop(
                        format!("INSERT INTO {table} (id, worker) VALUES (?, ?)"),
                        (id, worker),
                    )
                    .await
                }
                Statement::Transaction { table, id, worker } => {
                    let mut tx = conn.start_transaction(TxOpts::default()).await?;
                    tx.exec_drop(
                        format!("INSERT INTO {table} (id, worker) VALUES (?, ?)"),
                        (id, worker),
                    )
                    .await?;
                    tx.exec_first::<i64, _, _>(
                        format!("SELECT COUNT(*) FROM {table} WHERE id = ?"),
                        (id,),
                    )
                    .await?;
                    tx.commit().await
                }
                Statement::Sleep(d) => conn.exec_drop("SELECT SLEEP(?)", (d.as_secs_f64(),)).await,
                // A request's steps: text, as an application's own BEGIN would go.
                Statement::Begin => conn.query_drop("BEGIN").await,
                Statement::Commit => conn.query_drop("COMMIT").await,
                Statement::Rollback => conn.query_drop("ROLLBACK").await,
            }
        }
        .await;
        result.map_err(|e| super::error(&e))
    }
}
