//! sqlx's `MySqlPool` as the client under test, and how its errors map onto the taxonomy.

use std::io::ErrorKind;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::mysql::{MySql, MySqlConnectOptions, MySqlDatabaseError, MySqlPool, MySqlPoolOptions};
use sqlx::pool::PoolConnection;
use sqlx::{AssertSqlSafe, Connection};

use super::{Conn, Pool, PoolSpec, PoolStats, Statement, Vocabulary};
use crate::history::{ErrorClass, OpError};

/// The version of sqlx this goneaway is built with (Cargo.lock pins it), for reports.
pub const VERSION: &str = "0.9.0";

/// Build a pool exactly as the spec says. The pool connects lazily, as applications'
/// pools do, so a server that is down at startup is a recorded error, not a crash.
pub fn build(spec: &PoolSpec, connect: MySqlConnectOptions) -> Result<MySqlPool, String> {
    let pool = MySqlPoolOptions::new()
        .max_connections(spec.max_connections)
        .min_connections(spec.min_connections)
        .acquire_timeout(spec.acquire_timeout)
        .idle_timeout(spec.idle_timeout)
        .max_lifetime(spec.max_lifetime)
        .test_before_acquire(spec.test_before_acquire)
        .connect_lazy_with(connect);
    // The bug that started this project was a setting that silently did not apply; read
    // every one back and refuse to run a pool that is not the one described.
    let actual = read_back(&pool, spec.vocabulary);
    if actual.effective() != spec.effective() {
        return Err(format!(
            "the pool sqlx built ({actual}) differs from the suite's ({spec})"
        ));
    }
    Ok(pool)
}

fn read_back(pool: &MySqlPool, vocabulary: Vocabulary) -> PoolSpec {
    let o = pool.options();
    PoolSpec {
        vocabulary,
        max_connections: o.get_max_connections(),
        min_connections: o.get_min_connections(),
        acquire_timeout: o.get_acquire_timeout(),
        idle_timeout: o.get_idle_timeout(),
        max_lifetime: o.get_max_lifetime(),
        test_before_acquire: o.get_test_before_acquire(),
    }
}

#[async_trait]
impl Pool for MySqlPool {
    async fn acquire(&self) -> Result<Box<dyn Conn>, OpError> {
        match MySqlPool::acquire(self).await {
            Ok(c) => Ok(Box::new(SqlxConn(c))),
            Err(e) => Err(error(&e)),
        }
    }

    fn stats(&self) -> PoolStats {
        PoolStats {
            size: self.size(),
            idle: self.num_idle() as u32,
        }
    }

    fn settings(&self) -> Option<PoolSpec> {
        Some(read_back(self, Vocabulary::Sqlx))
    }

    async fn close(&self) {
        // Bounded: close() waits for checked-out connections, and a leaked or hung one
        // would otherwise hold the run open.
        let _ = tokio::time::timeout(Duration::from_secs(5), MySqlPool::close(self)).await;
    }
}

struct SqlxConn(PoolConnection<MySql>);

#[async_trait]
impl Conn for SqlxConn {
    async fn run(&mut self, statement: Statement) -> Result<(), OpError> {
        let conn = &mut *self.0;
        let result: Result<(), sqlx::Error> = async {
            match statement {
                Statement::Ping => conn.ping().await,
                Statement::Select { table, id } => sqlx::query(AssertSqlSafe(format!(
                    "SELECT id, worker FROM {table} WHERE id = ?"
                )))
                .bind(id)
                .fetch_optional(&mut *conn)
                .await
                .map(drop),
                Statement::Insert { table, id, worker } => sqlx::query(AssertSqlSafe(format!(
                    "INSERT INTO {table} (id, worker) VALUES (?, ?)"
                )))
                .bind(id)
                .bind(worker)
                .execute(&mut *conn)
                .await
                .map(drop),
                Statement::Transaction { table, id, worker } => {
                    let mut tx = Connection::begin(&mut *conn).await?;
                    sqlx::query(AssertSqlSafe(format!(
                        "INSERT INTO {table} (id, worker) VALUES (?, ?)"
                    )))
                    .bind(id)
                    .bind(worker)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query(AssertSqlSafe(format!(
                        "SELECT COUNT(*) FROM {table} WHERE id = ?"
                    )))
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?;
                    tx.commit().await
                }
                Statement::Sleep(d) => sqlx::query("SELECT SLEEP(?)")
                    .bind(d.as_secs_f64())
                    .fetch_one(&mut *conn)
                    .await
                    .map(drop),
                // As text, the way an application's `session.begin()` reaches the server;
                // sqlx's own Transaction type would end it when this call returns.
                Statement::Begin => sqlx::raw_sql("BEGIN").execute(&mut *conn).await.map(drop),
                Statement::Commit => sqlx::raw_sql("COMMIT").execute(&mut *conn).await.map(drop),
                Statement::Rollback => sqlx::raw_sql("ROLLBACK")
                    .execute(&mut *conn)
                    .await
                    .map(drop),
            }
        }
        .await;
        result.map_err(|e| error(&e))
    }
}

/// A sqlx error as an [`OpError`]: its class plus sqlx's own words.
pub fn error(e: &sqlx::Error) -> OpError {
    OpError::new(classify(e), e.to_string())
}

/// Map a sqlx error onto the taxonomy.
///
/// sqlx does not say whether a command had left the client when the socket failed, so
/// the io error kind stands in for it: a reset or broken pipe means the peer had already
/// closed the connection when the command arrived (the server was *gone*: 2006), while
/// an end of stream or abort means the connection died while the reply was awaited
/// (*lost*: 2013). Captured from MariaDB 10.11: an idle connection past `wait_timeout`
/// fails its next query with `ConnectionReset`; a connection cut or killed mid-query
/// ends in `UnexpectedEof`.
pub fn classify(e: &sqlx::Error) -> ErrorClass {
    match e {
        sqlx::Error::PoolTimedOut => ErrorClass::CheckoutTimeout,
        sqlx::Error::Io(io) => classify_io(io.kind()),
        sqlx::Error::Database(db) => match db.try_downcast_ref::<MySqlDatabaseError>() {
            Some(my) => classify_server(my.number(), my.message()).unwrap_or(ErrorClass::Other),
            None => ErrorClass::Other,
        },
        // sqlx reports a packet that arrives where it expected another (e.g. the error
        // packet a killed session leaves behind) as a protocol error.
        sqlx::Error::Protocol(msg) if msg.contains("1927") || msg.contains("killed") => {
            ErrorClass::Killed
        }
        _ => ErrorClass::Other,
    }
}

/// Classes by io error kind (see [`classify`] for why kinds stand in for "sent or not").
pub fn classify_io(kind: ErrorKind) -> ErrorClass {
    match kind {
        // NotFound: a unix socket whose file is gone (the server is down), MySQL's 2002
        // "Can't connect through socket": nothing listening, as 2003 is over TCP. sqlx
        // retries only ConnectionRefused, so this one reaches the caller at once.
        ErrorKind::ConnectionRefused | ErrorKind::NotFound => ErrorClass::ConnectRefused,
        ErrorKind::ConnectionReset | ErrorKind::BrokenPipe | ErrorKind::NotConnected => {
            ErrorClass::GoneAway
        }
        ErrorKind::UnexpectedEof | ErrorKind::ConnectionAborted => ErrorClass::LostConnection,
        ErrorKind::TimedOut => ErrorClass::Timeout,
        _ => ErrorClass::Other,
    }
}

/// Classes by MySQL/MariaDB error number and, where one number means several things,
/// the server's message: 1290 (ER_OPTION_PREVENTS_STATEMENT) is the read-only refusal
/// only when it names `--read-only` (or `--super-read-only`); other options
/// (`--secure-file-priv`, `--skip-grant-tables`) send the same number.
pub fn classify_server(number: u16, message: &str) -> Option<ErrorClass> {
    match number {
        1290 if message.contains("read-only") || message.contains("read_only") => {
            Some(ErrorClass::ReadOnly)
        }
        1290 => None,
        n => classify_number(n),
    }
}

/// Classes by MySQL/MariaDB error number (see [`classify_server`] for 1290, which needs
/// the message too).
pub fn classify_number(number: u16) -> Option<ErrorClass> {
    Some(match number {
        2006 => ErrorClass::GoneAway,
        2013 => ErrorClass::LostConnection,
        4031 => ErrorClass::InteractionTimeout,
        1927 | 1317 => ErrorClass::Killed,
        1053 => ErrorClass::ServerShutdown,
        1040 => ErrorClass::TooManyConnections,
        2002 | 2003 => ErrorClass::ConnectRefused,
        // 1792: a write in a READ ONLY transaction; 1836: ER_READ_ONLY_MODE (MySQL's
        // InnoDB read-only mode).
        1792 | 1836 => ErrorClass::ReadOnly,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_is_the_locked_one() {
        assert_eq!(
            crate::pool::locked_version("sqlx"),
            Some(VERSION),
            "update VERSION with Cargo.lock"
        );
    }

    // Each io error below is the one sqlx returned against MariaDB 10.11 in the scenario
    // named (see tests/integration/classify.rs, which reproduces them live).
    #[test]
    fn io_errors_seen_against_mariadb() {
        let io = |k: ErrorKind, m: &str| sqlx::Error::Io(std::io::Error::new(k, m));
        // Idle past wait_timeout, test_before_acquire(false): first query.
        assert_eq!(
            classify(&io(
                ErrorKind::ConnectionReset,
                "Connection reset by peer (os error 104)"
            )),
            ErrorClass::GoneAway
        );
        // KILL CONNECTION or a crash while the query was running.
        assert_eq!(
            classify(&io(ErrorKind::UnexpectedEof, "unexpected end of file")),
            ErrorClass::LostConnection
        );
        // Server down, pool opening a new connection.
        assert_eq!(
            classify(&io(
                ErrorKind::ConnectionRefused,
                "Connection refused (os error 111)"
            )),
            ErrorClass::ConnectRefused
        );
        assert_eq!(
            classify(&io(ErrorKind::BrokenPipe, "Broken pipe (os error 32)")),
            ErrorClass::GoneAway
        );
        // Over the unix socket: idle past wait_timeout (a write to the closed socket),
        // and a checkout while the server is down (its socket file is gone).
        assert_eq!(
            classify(&io(
                ErrorKind::NotFound,
                "No such file or directory (os error 2)"
            )),
            ErrorClass::ConnectRefused
        );
        assert_eq!(
            classify(&sqlx::Error::PoolTimedOut),
            ErrorClass::CheckoutTimeout
        );
        assert_eq!(
            classify(&sqlx::Error::Protocol("unexpected packet".into())),
            ErrorClass::Other
        );
    }

    #[test]
    fn server_error_numbers() {
        assert_eq!(classify_number(1927), Some(ErrorClass::Killed));
        assert_eq!(classify_number(1317), Some(ErrorClass::Killed));
        assert_eq!(classify_number(4031), Some(ErrorClass::InteractionTimeout));
        assert_eq!(classify_number(1053), Some(ErrorClass::ServerShutdown));
        assert_eq!(classify_number(1040), Some(ErrorClass::TooManyConnections));
        assert_eq!(classify_number(1064), None);
        assert_eq!(classify_number(1792), Some(ErrorClass::ReadOnly));
        assert_eq!(classify_number(1836), Some(ErrorClass::ReadOnly));
    }

    #[test]
    fn only_the_read_only_option_makes_1290_read_only() {
        // MariaDB 10.11's text, captured in tests/integration/classify.rs.
        let text = "The MariaDB server is running with the --read-only option so it cannot execute this statement";
        assert_eq!(classify_server(1290, text), Some(ErrorClass::ReadOnly));
        let mysql = "The MySQL server is running with the --super-read-only option so it cannot execute this statement";
        assert_eq!(classify_server(1290, mysql), Some(ErrorClass::ReadOnly));
        let other = "The MariaDB server is running with the --secure-file-priv option so it cannot execute this statement";
        assert_eq!(classify_server(1290, other), None);
        assert_eq!(
            classify_server(1040, ""),
            Some(ErrorClass::TooManyConnections)
        );
    }
}
