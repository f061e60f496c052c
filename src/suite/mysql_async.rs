//! `[pool]` for `[client] kind = "mysql-async"`: mysql_async's own words, checked so that
//! every key the suite writes has the effect it says. A word of another vocabulary is
//! refused with mysql_async's nearest word (or why it has none), never ignored.

use std::time::Duration;

use super::raw::{RawPool, S};
use super::{Cx, R};
use crate::pool::mysql_async::{DEFAULT_POOL_MAX, DEFAULT_POOL_MIN, MysqlAsyncSpec};

impl Cx<'_> {
    /// The first mysql_async word in `[pool]`, for a suite that did not ask for mysql_async.
    pub(super) fn no_mysql_async_words(&self, raw: &S<RawPool>) -> R<()> {
        let p = raw.get_ref();
        let words = [
            at("pool_min", &p.pool_min),
            at("pool_max", &p.pool_max),
            at("inactive_connection_ttl", &p.inactive_connection_ttl),
            at("ttl_check_interval", &p.ttl_check_interval),
            at("abs_conn_ttl", &p.abs_conn_ttl),
            at("abs_conn_ttl_jitter", &p.abs_conn_ttl_jitter),
            at("conn_ttl", &p.conn_ttl),
            at("reset_connection", &p.reset_connection),
            at("tcp_keepalive", &p.tcp_keepalive),
        ];
        match words.iter().find_map(|(w, at)| at.map(|at| (w, at))) {
            Some((word, at)) => Err(self.err_at(
                Some(at),
                format!(
                    "[pool] {word} is mysql_async's word: add `[client] kind = \"mysql-async\"` to test mysql_async, \
                     or use SQLAlchemy or sqlx words for goneaway's sqlx pool"
                ),
            )),
            None => Ok(()),
        }
    }

    /// mysql_async's words from `[pool]` (none: the library's defaults for everything).
    pub(super) fn mysql_async_pool(&self, raw: Option<&S<RawPool>>) -> R<MysqlAsyncSpec> {
        let Some(raw) = raw else {
            return Ok(MysqlAsyncSpec::default());
        };
        let p = raw.get_ref();
        // Other vocabularies' words, with what mysql_async calls that setting.
        let foreign: [(&str, Option<usize>, &str); 11] = [
            (
                "pool_size",
                start(&p.pool_size),
                "its idle floor is `pool_min`",
            ),
            (
                "min_connections",
                start(&p.min_connections),
                "its idle floor is `pool_min`",
            ),
            (
                "max_overflow",
                start(&p.max_overflow),
                "its limit is `pool_max`",
            ),
            (
                "max_connections",
                start(&p.max_connections),
                "its limit is `pool_max`",
            ),
            (
                "pool_timeout",
                start(&p.pool_timeout),
                "it has no checkout timeout: get_conn waits until a connection is free (the harness's op_timeout bounds it here)",
            ),
            (
                "acquire_timeout",
                start(&p.acquire_timeout),
                "it has no checkout timeout: get_conn waits until a connection is free (the harness's op_timeout bounds it here)",
            ),
            (
                "pool_recycle",
                start(&p.pool_recycle),
                "a connection's age limit is `abs_conn_ttl`",
            ),
            (
                "max_lifetime",
                start(&p.max_lifetime),
                "a connection's age limit is `abs_conn_ttl`",
            ),
            (
                "idle_timeout",
                start(&p.idle_timeout),
                "idle connections above pool_min close after `inactive_connection_ttl`; any idle one is not handed out after `conn_ttl`",
            ),
            (
                "pool_pre_ping",
                start(&p.pool_pre_ping),
                "it has no switch: every checkout of an idle connection checks its socket for a close first",
            ),
            (
                "test_before_acquire",
                start(&p.test_before_acquire),
                "it has no switch: every checkout of an idle connection checks its socket for a close first",
            ),
        ];
        if let Some((word, at, hint)) = foreign.iter().find(|f| f.1.is_some()) {
            return Err(self.err_at(
                *at,
                format!("[pool] {word} is not a mysql_async setting: {hint}"),
            ));
        }
        let spec = MysqlAsyncSpec {
            pool_min: p.pool_min.as_ref().map(|v| *v.get_ref()),
            pool_max: p.pool_max.as_ref().map(|v| *v.get_ref()),
            inactive_connection_ttl: dur(&p.inactive_connection_ttl),
            ttl_check_interval: dur(&p.ttl_check_interval),
            abs_conn_ttl: dur(&p.abs_conn_ttl),
            abs_conn_ttl_jitter: dur(&p.abs_conn_ttl_jitter),
            conn_ttl: dur(&p.conn_ttl),
            reset_connection: p.reset_connection.as_ref().map(|v| *v.get_ref()),
            tcp_keepalive: dur(&p.tcp_keepalive),
        };
        let min = spec.pool_min.unwrap_or(DEFAULT_POOL_MIN);
        let max = spec.pool_max.unwrap_or(DEFAULT_POOL_MAX);
        if max == 0 {
            return Err(self.err_at(
                start(&p.pool_max),
                "[pool] pool_max = 0 allows no connections at all; it must be at least 1".into(),
            ));
        }
        if min > max {
            let (at, why) = match (&p.pool_min, &p.pool_max) {
                (Some(at), Some(_)) => (at, format!("pool_min ({min}) is above pool_max ({max})")),
                (Some(at), None) => (
                    at,
                    format!(
                        "pool_min ({min}) is above mysql_async's default pool_max ({max}); set pool_max too"
                    ),
                ),
                (None, Some(at)) => (
                    at,
                    format!(
                        "pool_max ({max}) is below mysql_async's default pool_min ({min}); set pool_min too"
                    ),
                ),
                (None, None) => unreachable!("the defaults are 10 and 100"),
            };
            return Err(self.err(at, format!("[pool] {why}")));
        }
        if let Some(v) = &p.ttl_check_interval {
            if v.get_ref().0 < Duration::from_secs(1) {
                return Err(self.err(
                    v,
                    "[pool] ttl_check_interval below 1s is replaced by mysql_async's default (30s) without a word; write at least \"1s\"",
                ));
            }
            let ttl_on = spec.inactive_connection_ttl.is_some_and(|d| !d.is_zero())
                || spec.abs_conn_ttl.is_some();
            if !ttl_on {
                return Err(self.err(
                    v,
                    "[pool] ttl_check_interval has no effect here: mysql_async only runs that check when inactive_connection_ttl is above 0 or abs_conn_ttl is set",
                ));
            }
        }
        if let Some(v) = &p.abs_conn_ttl_jitter {
            if spec.abs_conn_ttl.is_none() {
                return Err(self.err(
                    v,
                    "[pool] abs_conn_ttl_jitter has no effect without abs_conn_ttl (mysql_async adds it to that)",
                ));
            }
            if v.get_ref().0.subsec_nanos() != 0 {
                return Err(self.err(
                    v,
                    "[pool] abs_conn_ttl_jitter counts whole seconds in mysql_async (the fraction would be dropped); write e.g. \"2s\"",
                ));
            }
        }
        if let Some(v) = &p.tcp_keepalive
            && v.get_ref().0 < Duration::from_secs(1)
        {
            return Err(self.err(
                v,
                "[pool] tcp_keepalive is the idle time before TCP keepalive probes, which the kernel counts in whole seconds; write at least \"1s\"",
            ));
        }
        Ok(spec)
    }
}

fn start<T>(v: &Option<S<T>>) -> Option<usize> {
    v.as_ref().map(|v| v.span().start)
}

fn at<T>(word: &'static str, v: &Option<S<T>>) -> (&'static str, Option<usize>) {
    (word, start(v))
}

fn dur(v: &Option<S<super::raw::Dur>>) -> Option<Duration> {
    v.as_ref().map(|v| v.get_ref().0)
}
