//! mysql_async's `Pool` as a second in-process client under test, in its own words.
//!
//! A suite says `[client] kind = "mysql-async"` and writes `[pool]` with mysql_async's
//! own names (its connection-URL parameters): `pool_min`, `pool_max`,
//! `inactive_connection_ttl`, `ttl_check_interval`, `abs_conn_ttl`, `abs_conn_ttl_jitter`,
//! `conn_ttl`, `reset_connection`, `tcp_keepalive`. A key left out keeps the library's
//! default, and what the report shows is read back from the `Opts` the live pool holds,
//! never copied from the suite.
//!
//! The words are checked here whether or not the crate is built in (the `mysql-async`
//! feature), so a suite is valid or not the same way in every build; building and
//! driving the pool ([`MysqlAsyncPool`]) and classifying its errors ([`classify`]) need
//! the feature.

#[cfg(feature = "mysql-async")]
pub mod classify;
#[cfg(feature = "mysql-async")]
mod conn;

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use super::{PoolSpec, Vocabulary};

#[cfg(feature = "mysql-async")]
pub use classify::{classify, error};
#[cfg(feature = "mysql-async")]
pub use conn::MysqlAsyncPool;

/// The version of mysql_async this goneaway is built with (Cargo.lock pins it).
pub const VERSION: &str = "0.37.1";

/// mysql_async's default `PoolConstraints` (`DEFAULT_POOL_CONSTRAINTS`), known without
/// the crate so a suite is checked the same in every build (a test compares them).
pub const DEFAULT_POOL_MIN: usize = 10;
pub const DEFAULT_POOL_MAX: usize = 100;

/// `[pool]` in mysql_async's words. `None`: the library's default.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct MysqlAsyncSpec {
    /// `PoolConstraints` min: idle connections the pool keeps (library default 10).
    pub pool_min: Option<usize>,
    /// `PoolConstraints` max: connections open at once (library default 100).
    pub pool_max: Option<usize>,
    /// Connections above `pool_min` idle longer than this are closed (default 0: closed
    /// as soon as they are returned).
    pub inactive_connection_ttl: Option<Duration>,
    /// How often the pool looks for connections to close (default 30 s; only runs when
    /// `inactive_connection_ttl` or `abs_conn_ttl` is set).
    pub ttl_check_interval: Option<Duration>,
    /// Close a connection this long after it was opened, even below `pool_min` (default
    /// off).
    pub abs_conn_ttl: Option<Duration>,
    /// Up to this much added to each connection's `abs_conn_ttl` (default none).
    pub abs_conn_ttl_jitter: Option<Duration>,
    /// A connection idle longer than this is not handed out again (default: the
    /// `wait_timeout` the session read from the server when it connected; 0 = never).
    pub conn_ttl: Option<Duration>,
    /// `COM_RESET_CONNECTION` when a connection is returned (default true).
    pub reset_connection: Option<bool>,
    /// TCP keepalive on each connection (default off).
    pub tcp_keepalive: Option<Duration>,
}

/// What a mysql_async pool runs with, every value resolved: read back from the `Opts`
/// the live pool holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MysqlAsyncSettings {
    pub pool_min: usize,
    pub pool_max: usize,
    pub inactive_connection_ttl: Duration,
    pub ttl_check_interval: Duration,
    pub abs_conn_ttl: Option<Duration>,
    pub abs_conn_ttl_jitter: Option<Duration>,
    /// `None`: the session's own `wait_timeout`.
    pub conn_ttl: Option<Duration>,
    pub reset_connection: bool,
    pub tcp_keepalive: Option<Duration>,
    /// Always false in goneaway: on a loopback address mysql_async would otherwise
    /// reconnect through the server's unix socket and bypass the proxy (a remote server,
    /// the case under test, has no socket to prefer).
    pub prefer_socket: bool,
}

/// Why a mysql_async client could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MysqlAsyncError {
    #[error(
        "the mysql-async client is not built into this goneaway: its `mysql-async` cargo \
         feature is off; turn it on (`goneaway = {{ …, features = [\"mysql-async\"] }}`, or \
         drop `default-features = false`), or test another client"
    )]
    Disabled,
    #[error("the pool mysql_async built ({built}) differs from the suite's [pool] ({described})")]
    Mismatch { built: String, described: String },
}

impl MysqlAsyncSpec {
    /// Whether `actual` is what this spec asks for: every key the suite set has the value
    /// it set (the rest is the library's to decide).
    pub fn matches(&self, actual: &MysqlAsyncSettings) -> bool {
        fn same<T: PartialEq>(want: &Option<T>, got: &T) -> bool {
            want.as_ref().is_none_or(|w| w == got)
        }
        same(&self.pool_min, &actual.pool_min)
            && same(&self.pool_max, &actual.pool_max)
            && same(
                &self.inactive_connection_ttl,
                &actual.inactive_connection_ttl,
            )
            && same(&self.ttl_check_interval, &actual.ttl_check_interval)
            && (self.abs_conn_ttl.is_none() || self.abs_conn_ttl == actual.abs_conn_ttl)
            && (self.abs_conn_ttl_jitter.is_none()
                || self.abs_conn_ttl_jitter == actual.abs_conn_ttl_jitter)
            && (self.conn_ttl.is_none() || self.conn_ttl == actual.conn_ttl)
            && same(&self.reset_connection, &actual.reset_connection)
            && (self.tcp_keepalive.is_none() || self.tcp_keepalive == actual.tcp_keepalive)
    }
}

impl MysqlAsyncSettings {
    /// These settings for the lint, which speaks sqlx's five settings: `pool_max` and
    /// `pool_min` are the bounds; there is no checkout timeout (`get_conn` waits for a
    /// free connection however long it takes: [`PoolSpec::NO_CHECKOUT_TIMEOUT`]);
    /// `abs_conn_ttl` is the lifetime; `conn_ttl` (0 = never) is the idle limit checked
    /// at checkout; and every checkout of an idle connection first checks its socket for
    /// a close the server sent, which is what a pre-ping is for.
    pub fn pool_spec(&self) -> PoolSpec {
        PoolSpec {
            vocabulary: Vocabulary::MysqlAsync,
            max_connections: u32::try_from(self.pool_max).unwrap_or(u32::MAX),
            min_connections: u32::try_from(self.pool_min).unwrap_or(u32::MAX),
            acquire_timeout: PoolSpec::NO_CHECKOUT_TIMEOUT,
            idle_timeout: self.conn_ttl.filter(|d| !d.is_zero()),
            max_lifetime: self.abs_conn_ttl,
            test_before_acquire: true,
        }
    }
}

fn dur(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

fn opt(d: Option<Duration>, none: &str) -> String {
    d.map_or(none.to_string(), dur)
}

impl fmt::Display for MysqlAsyncSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pool_min={} pool_max={} inactive_connection_ttl={} ttl_check_interval={} \
             abs_conn_ttl={} abs_conn_ttl_jitter={} conn_ttl={} reset_connection={} \
             tcp_keepalive={} prefer_socket={}",
            self.pool_min,
            self.pool_max,
            dur(self.inactive_connection_ttl),
            dur(self.ttl_check_interval),
            opt(self.abs_conn_ttl, "none"),
            opt(self.abs_conn_ttl_jitter, "none"),
            opt(self.conn_ttl, "wait_timeout"),
            self.reset_connection,
            opt(self.tcp_keepalive, "none"),
            self.prefer_socket,
        )
    }
}

impl fmt::Display for MysqlAsyncSpec {
    /// Only what the suite set, in its words.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut words = Vec::new();
        let mut put = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                words.push(format!("{k}={v}"));
            }
        };
        put("pool_min", self.pool_min.map(|n| n.to_string()));
        put("pool_max", self.pool_max.map(|n| n.to_string()));
        put(
            "inactive_connection_ttl",
            self.inactive_connection_ttl.map(dur),
        );
        put("ttl_check_interval", self.ttl_check_interval.map(dur));
        put("abs_conn_ttl", self.abs_conn_ttl.map(dur));
        put("abs_conn_ttl_jitter", self.abs_conn_ttl_jitter.map(dur));
        put("conn_ttl", self.conn_ttl.map(dur));
        put(
            "reset_connection",
            self.reset_connection.map(|b| b.to_string()),
        );
        put("tcp_keepalive", self.tcp_keepalive.map(dur));
        if words.is_empty() {
            f.write_str("library defaults")
        } else {
            f.write_str(&words.join(" "))
        }
    }
}

/// A pool built for a run, and what it runs with as read back from it.
pub struct Started {
    pub pool: std::sync::Arc<dyn super::Pool>,
    pub settings: MysqlAsyncSettings,
}

/// Build the pool (lazily: nothing connects until the first checkout) and read back what
/// it runs with; a pool that is not what the suite says is refused.
pub fn start(
    spec: &MysqlAsyncSpec,
    info: &crate::server::ConnectInfo,
) -> Result<Started, MysqlAsyncError> {
    #[cfg(feature = "mysql-async")]
    {
        conn::start(spec, info)
    }
    #[cfg(not(feature = "mysql-async"))]
    {
        let _ = (spec, info);
        Err(MysqlAsyncError::Disabled)
    }
}

/// What the pool would run with, without a server (`goneaway check`).
pub fn preview(spec: &MysqlAsyncSpec) -> Result<MysqlAsyncSettings, MysqlAsyncError> {
    #[cfg(feature = "mysql-async")]
    {
        let nowhere = crate::server::ConnectInfo {
            host: "127.0.0.1".into(),
            port: 9,
            user: "goneaway".into(),
            password: String::new(),
            database: "goneaway".into(),
        };
        Ok(conn::read_back(&conn::opts(spec, &nowhere)))
    }
    #[cfg(not(feature = "mysql-async"))]
    {
        let _ = spec;
        Err(MysqlAsyncError::Disabled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> MysqlAsyncSettings {
        MysqlAsyncSettings {
            pool_min: 10,
            pool_max: 100,
            inactive_connection_ttl: Duration::ZERO,
            ttl_check_interval: Duration::from_secs(30),
            abs_conn_ttl: None,
            abs_conn_ttl_jitter: None,
            conn_ttl: None,
            reset_connection: true,
            tcp_keepalive: None,
            prefer_socket: false,
        }
    }

    #[test]
    fn settings_display_and_lint_mapping() {
        let s = defaults();
        assert_eq!(
            s.to_string(),
            "pool_min=10 pool_max=100 inactive_connection_ttl=0s ttl_check_interval=30s \
             abs_conn_ttl=none abs_conn_ttl_jitter=none conn_ttl=wait_timeout \
             reset_connection=true tcp_keepalive=none prefer_socket=false"
        );
        assert!(MysqlAsyncSpec::default().matches(&s));
        let p = s.pool_spec();
        assert_eq!((p.max_connections, p.min_connections), (100, 10));
        assert_eq!(p.acquire_timeout, PoolSpec::NO_CHECKOUT_TIMEOUT);
        assert_eq!((p.idle_timeout, p.max_lifetime), (None, None));
        let zero = MysqlAsyncSettings {
            conn_ttl: Some(Duration::ZERO),
            ..defaults()
        };
        assert_eq!(zero.pool_spec().idle_timeout, None, "conn_ttl 0 is never");
    }

    #[test]
    fn a_set_key_must_be_read_back() {
        let spec = MysqlAsyncSpec {
            abs_conn_ttl: Some(Duration::from_secs(1)),
            ..Default::default()
        };
        let mut s = MysqlAsyncSettings {
            abs_conn_ttl: Some(Duration::from_secs(1)),
            ..defaults()
        };
        assert!(spec.matches(&s));
        s.abs_conn_ttl = None;
        assert!(!spec.matches(&s));
        assert_eq!(spec.to_string(), "abs_conn_ttl=1s");
        assert_eq!(MysqlAsyncSpec::default().to_string(), "library defaults");
    }

    #[test]
    fn version_is_the_locked_one() {
        assert_eq!(
            crate::pool::locked_version("mysql_async"),
            Some(VERSION),
            "update VERSION with Cargo.lock"
        );
    }

    #[cfg(not(feature = "mysql-async"))]
    #[test]
    fn without_the_feature_it_says_so_in_one_line() {
        let info = crate::server::ConnectInfo {
            host: "127.0.0.1".into(),
            port: 9,
            user: "u".into(),
            password: String::new(),
            database: "d".into(),
        };
        let e = start(&MysqlAsyncSpec::default(), &info)
            .err()
            .expect("disabled");
        assert_eq!(e, MysqlAsyncError::Disabled);
        assert!(e.to_string().contains("`mysql-async` cargo feature is off"));
        assert!(!e.to_string().contains('\n'));
    }

    // What a pool built from no words reads back is the crate's own defaults.
    #[cfg(feature = "mysql-async")]
    #[test]
    fn read_back_defaults_are_the_crates() {
        assert_eq!(preview(&MysqlAsyncSpec::default()), Ok(defaults()));
        let c = ::mysql_async::DEFAULT_POOL_CONSTRAINTS;
        assert_eq!((c.min(), c.max()), (DEFAULT_POOL_MIN, DEFAULT_POOL_MAX));
    }
}
