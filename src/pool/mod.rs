//! Pool: the client under test.
//!
//! The workload only sees the small [`Pool`] / [`Conn`] traits, so any client can be
//! tested. sqlx's `MySqlPool` implements them (see [`sqlx`](self::sqlx)), whether the
//! harness built it from a [`PoolSpec`] or the user built it in their own code;
//! mysql_async's `Pool` is the second in-process client (see
//! [`mysql_async`](self::mysql_async)), built from its own words.

pub mod mysql_async;
pub mod sqlx;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use crate::history::OpError;

/// What one request asks of a connection. `table` is the run's writes table
/// (`id BIGINT PRIMARY KEY, worker INT`), named by the server handle: runs sharing a
/// server each get their own.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    /// A round trip with no table access (`SELECT 1` / COM_PING).
    Ping,
    /// A primary-key lookup.
    Select { table: Arc<str>, id: i64 },
    /// Insert a row whose id the harness remembers (the durability check reads it back).
    Insert {
        table: Arc<str>,
        id: i64,
        worker: u32,
    },
    /// BEGIN; insert; read it back; COMMIT.
    Transaction {
        table: Arc<str>,
        id: i64,
        worker: u32,
    },
    /// `SELECT SLEEP(s)`: something active for a KILL to hit.
    Sleep(Duration),
    /// `BEGIN`: the following statements run in one transaction, on this connection.
    Begin,
    /// `COMMIT` of what `Begin` opened.
    Commit,
    /// `ROLLBACK` of what `Begin` opened (after a step failed).
    Rollback,
}

/// A connection checked out of a pool; dropping it returns it.
#[async_trait]
pub trait Conn: Send {
    async fn run(&mut self, statement: Statement) -> Result<(), OpError>;
}

/// The client under test.
#[async_trait]
pub trait Pool: Send + Sync + 'static {
    /// Check a connection out. The pool's own checkout timeout applies; the harness adds
    /// its op timeout around this call.
    async fn acquire(&self) -> Result<Box<dyn Conn>, OpError>;
    /// Open connections and how many of them are idle.
    fn stats(&self) -> PoolStats;
    /// The settings the pool actually runs with, read back from the pool itself when the
    /// client allows it. The lint uses these, not what the suite meant to set.
    fn settings(&self) -> Option<PoolSpec>;
    /// Close every connection; called once the run is over.
    async fn close(&self);
    /// Why the pool can no longer be trusted to report what its client did (an adapter
    /// process that died, hung or spoke garbage). The run then ends with a harness error
    /// instead of a verdict.
    fn broken(&self) -> Option<String> {
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStats {
    pub size: u32,
    pub idle: u32,
}

/// How the pool goneaway builds reaches the server (`[pool] transport`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// TCP to 127.0.0.1 (through the proxy when there is one).
    #[default]
    Tcp,
    /// The process backend's unix socket: a closed peer shows as a broken pipe or an
    /// end of file on a socket file, not a TCP reset.
    Socket,
}

/// Which words a pool was described with; reports and lint speak the user's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Vocabulary {
    Sqlalchemy,
    Sqlx,
    /// mysql_async's words (`[client] kind = "mysql-async"`); the lint's view of them is
    /// [`mysql_async::MysqlAsyncSettings::pool_spec`].
    MysqlAsync,
    /// Go's database/sql with go-sql-driver/mysql (read back by its adapter).
    GoSql,
    /// HikariCP (read back by its adapter).
    Hikari,
    /// Node's `mysql` pool (read back by its adapter).
    NodeMysql,
}

/// A pool configuration in sqlx terms, remembering which vocabulary it came from.
///
/// SQLAlchemy words come with SQLAlchemy's defaults (pool_size 5, max_overflow 10,
/// pool_timeout 30 s, no recycle, no pre-ping, idle connections kept forever); sqlx
/// words with sqlx's (max 10, min 0, acquire 30 s, idle 10 min, lifetime 30 min,
/// test_before_acquire on). A suite that says `pool_pre_ping` gets exactly SQLAlchemy's
/// behaviour for everything it does not say.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolSpec {
    pub vocabulary: Vocabulary,
    pub max_connections: u32,
    pub min_connections: u32,
    /// [`PoolSpec::NO_CHECKOUT_TIMEOUT`] for a pool whose checkout waits forever.
    #[serde(with = "humantime_serde")]
    pub acquire_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Option<Duration>,
    #[serde(with = "humantime_serde")]
    pub max_lifetime: Option<Duration>,
    pub test_before_acquire: bool,
}

impl PoolSpec {
    /// The `acquire_timeout` of a pool that has none (mysql_async's `get_conn` waits
    /// until a connection is free).
    pub const NO_CHECKOUT_TIMEOUT: Duration = Duration::MAX;

    pub fn sqlalchemy(
        pool_size: Option<u32>,
        max_overflow: Option<u32>,
        pool_timeout: Option<Option<Duration>>,
        pool_recycle: Option<Option<Duration>>,
        pool_pre_ping: Option<bool>,
        idle_timeout: Option<Option<Duration>>,
    ) -> PoolSpec {
        let size = pool_size.unwrap_or(5);
        PoolSpec {
            vocabulary: Vocabulary::Sqlalchemy,
            // Saturating: a suite may write u32::MAX for each; the sum is "very many".
            max_connections: size.saturating_add(max_overflow.unwrap_or(10)),
            min_connections: size,
            // SQLAlchemy has no "wait forever"; -1 there means the 30 s default is kept.
            acquire_timeout: pool_timeout.flatten().unwrap_or(Duration::from_secs(30)),
            idle_timeout: idle_timeout.flatten(),
            max_lifetime: pool_recycle.flatten(),
            test_before_acquire: pool_pre_ping.unwrap_or(false),
        }
    }

    pub fn sqlx(
        max_connections: Option<u32>,
        min_connections: Option<u32>,
        acquire_timeout: Option<Duration>,
        idle_timeout: Option<Option<Duration>>,
        max_lifetime: Option<Option<Duration>>,
        test_before_acquire: Option<bool>,
    ) -> PoolSpec {
        PoolSpec {
            vocabulary: Vocabulary::Sqlx,
            max_connections: max_connections.unwrap_or(10),
            min_connections: min_connections.unwrap_or(0),
            acquire_timeout: acquire_timeout.unwrap_or(Duration::from_secs(30)),
            idle_timeout: idle_timeout.unwrap_or(Some(Duration::from_secs(600))),
            max_lifetime: max_lifetime.unwrap_or(Some(Duration::from_secs(1800))),
            test_before_acquire: test_before_acquire.unwrap_or(true),
        }
    }

    /// The word this pool's vocabulary uses for a setting.
    pub fn word(&self, setting: Setting) -> &'static str {
        use Setting::*;
        match (self.vocabulary, setting) {
            (Vocabulary::Sqlalchemy, Max) => "pool_size + max_overflow",
            (Vocabulary::Sqlalchemy, Min) => "pool_size",
            (Vocabulary::Sqlalchemy, Acquire) => "pool_timeout",
            (Vocabulary::Sqlalchemy, Lifetime) => "pool_recycle",
            (Vocabulary::Sqlalchemy, Idle) => "idle_timeout",
            (Vocabulary::Sqlalchemy, PrePing) => "pool_pre_ping",
            (Vocabulary::Sqlx, Max) => "max_connections",
            (Vocabulary::Sqlx, Min) => "min_connections",
            (Vocabulary::Sqlx, Acquire) => "acquire_timeout",
            (Vocabulary::Sqlx, Lifetime) => "max_lifetime",
            (Vocabulary::Sqlx, Idle) => "idle_timeout",
            (Vocabulary::Sqlx, PrePing) => "test_before_acquire",
            (Vocabulary::MysqlAsync, Max) => "pool_max",
            (Vocabulary::MysqlAsync, Min) => "pool_min",
            (Vocabulary::MysqlAsync, Acquire) => {
                "get_conn's wait (mysql_async has no checkout timeout)"
            }
            (Vocabulary::MysqlAsync, Lifetime) => "abs_conn_ttl",
            (Vocabulary::MysqlAsync, Idle) => "conn_ttl",
            (Vocabulary::MysqlAsync, PrePing) => "the socket check at checkout (always on)",
            (Vocabulary::GoSql, Max) => "max_open_conns",
            (Vocabulary::GoSql, Min) => "min (database/sql keeps none open)",
            (Vocabulary::GoSql, Acquire) => "checkout_context_timeout",
            (Vocabulary::GoSql, Lifetime) => "conn_max_lifetime",
            (Vocabulary::GoSql, Idle) => "conn_max_idle_time",
            (Vocabulary::GoSql, PrePing) => "a pre-ping (database/sql has none)",
            (Vocabulary::Hikari, Max) => "maximumPoolSize",
            (Vocabulary::Hikari, Min) => "minimumIdle",
            (Vocabulary::Hikari, Acquire) => "connectionTimeout",
            (Vocabulary::Hikari, Lifetime) => "maxLifetime",
            (Vocabulary::Hikari, Idle) => "idleTimeout",
            (Vocabulary::Hikari, PrePing) => "the alive check on borrow",
            (Vocabulary::NodeMysql, Max) => "connectionLimit",
            (Vocabulary::NodeMysql, Min) => "min (mysql keeps none open)",
            (Vocabulary::NodeMysql, Acquire) => "the checkout wait (waitForConnections)",
            (Vocabulary::NodeMysql, Lifetime) => "a lifetime (mysql has none)",
            (Vocabulary::NodeMysql, Idle) => "an idle timeout (mysql has none)",
            (Vocabulary::NodeMysql, PrePing) => "the ping on acquire",
        }
    }

    /// The same settings in sqlx words, to compare with what a built pool reports.
    pub fn effective(&self) -> (u32, u32, Duration, Option<Duration>, Option<Duration>, bool) {
        (
            self.max_connections,
            self.min_connections,
            self.acquire_timeout,
            self.idle_timeout,
            self.max_lifetime,
            self.test_before_acquire,
        )
    }
}

/// The settings a pool has, independent of vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    Max,
    Min,
    Acquire,
    Lifetime,
    Idle,
    PrePing,
}

impl fmt::Display for PoolSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = |d: Option<Duration>| {
            d.map_or("never".to_string(), |d| {
                humantime::format_duration(d).to_string()
            })
        };
        match self.vocabulary {
            Vocabulary::Sqlalchemy => write!(
                f,
                "pool_size={} max_overflow={} pool_timeout={} pool_recycle={} pool_pre_ping={}{}",
                self.min_connections,
                self.max_connections - self.min_connections,
                humantime::format_duration(self.acquire_timeout),
                d(self.max_lifetime),
                self.test_before_acquire,
                self.idle_timeout.map_or(String::new(), |i| format!(
                    " idle_timeout={}",
                    humantime::format_duration(i)
                )),
            ),
            Vocabulary::Sqlx => write!(
                f,
                "max_connections={} min_connections={} acquire_timeout={} idle_timeout={} max_lifetime={} test_before_acquire={}",
                self.max_connections,
                self.min_connections,
                humantime::format_duration(self.acquire_timeout),
                d(self.idle_timeout),
                d(self.max_lifetime),
                self.test_before_acquire,
            ),
            // Only what the lint reads; the report shows every setting read back
            // (`mysql_async::MysqlAsyncSettings`).
            Vocabulary::MysqlAsync => write!(
                f,
                "pool_min={} pool_max={} abs_conn_ttl={}",
                self.min_connections,
                self.max_connections,
                d(self.max_lifetime),
            ),
            // Each adapter reads back more than this; `client::words` says the rest.
            Vocabulary::GoSql => write!(
                f,
                "max_open_conns={} conn_max_lifetime={} conn_max_idle_time={} checkout_context_timeout={}",
                unlimited(self.max_connections),
                d(self.max_lifetime),
                d(self.idle_timeout),
                forever(self.acquire_timeout),
            ),
            Vocabulary::Hikari => write!(
                f,
                "maximumPoolSize={} minimumIdle={} connectionTimeout={} maxLifetime={} idleTimeout={}",
                self.max_connections,
                self.min_connections,
                humantime::format_duration(self.acquire_timeout),
                d(self.max_lifetime),
                d(self.idle_timeout),
            ),
            Vocabulary::NodeMysql => write!(
                f,
                "connectionLimit={} checkout wait={}",
                unlimited(self.max_connections),
                forever(self.acquire_timeout),
            ),
        }
    }
}

/// A checkout wait this long is a client that waits for good (no timeout of its own).
pub const FOREVER: Duration = Duration::from_secs(365 * 24 * 3600);

fn forever(d: Duration) -> String {
    if d >= FOREVER {
        "none".into()
    } else {
        humantime::format_duration(d).to_string()
    }
}

fn unlimited(n: u32) -> String {
    if n == u32::MAX {
        "unlimited".into()
    } else {
        n.to_string()
    }
}

/// The version Cargo.lock pins for a package, so a client's `VERSION` constant (shown in
/// reports) is tested against what is really built.
#[cfg(test)]
pub(crate) fn locked_version(package: &str) -> Option<&'static str> {
    let name = format!("name = \"{package}\"\n");
    include_str!("../../Cargo.lock")
        .split("[[package]]")
        .find(|p| p.contains(&name))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = ")))
        .map(|v| v.trim_matches('"'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlalchemy_defaults_are_sqlalchemys() {
        let p = PoolSpec::sqlalchemy(
            None,
            None,
            None,
            Some(Some(Duration::from_secs(7200))),
            None,
            None,
        );
        assert_eq!(p.max_connections, 15);
        assert_eq!(p.min_connections, 5);
        assert_eq!(p.acquire_timeout, Duration::from_secs(30));
        assert_eq!(p.max_lifetime, Some(Duration::from_secs(7200)));
        assert_eq!(
            p.idle_timeout, None,
            "SQLAlchemy never retires idle connections"
        );
        assert!(!p.test_before_acquire, "pool_pre_ping is off by default");
    }

    #[test]
    fn sqlx_defaults_are_sqlxs() {
        let p = PoolSpec::sqlx(None, None, None, None, None, None);
        assert_eq!(
            p.effective(),
            (
                10,
                0,
                Duration::from_secs(30),
                Some(Duration::from_secs(600)),
                Some(Duration::from_secs(1800)),
                true
            )
        );
        let p = PoolSpec::sqlx(Some(3), None, None, Some(None), Some(None), Some(false));
        assert_eq!(
            (p.idle_timeout, p.max_lifetime, p.test_before_acquire),
            (None, None, false)
        );
    }

    #[test]
    fn displays_in_its_own_vocabulary() {
        let p = PoolSpec::sqlalchemy(
            Some(5),
            Some(10),
            None,
            Some(Some(Duration::from_secs(7200))),
            Some(false),
            None,
        );
        assert_eq!(
            p.to_string(),
            "pool_size=5 max_overflow=10 pool_timeout=30s pool_recycle=2h pool_pre_ping=false"
        );
    }
}
