//! The Go, Java and Node pools' settings as their adapters read them back, in each
//! library's own words: a [`PoolSpec`] for the lint, and every word read back for the
//! report (a lint needs six numbers; a user wants to see `readTimeout` too).

use std::time::Duration;

use serde_json::{Map, Value};

use crate::pool::{FOREVER, PoolSpec, Vocabulary};

/// The vocabularies these adapters report settings in.
pub const VOCABULARIES: [&str; 3] = ["database/sql", "hikaricp", "node-mysql"];

/// `settings` of one of [`VOCABULARIES`] as the pool it describes.
pub fn read(vocabulary: &str, s: &Value) -> Result<PoolSpec, String> {
    let num = |k: &str| -> Result<f64, String> {
        s.get(k)
            .and_then(Value::as_f64)
            .ok_or_else(|| format!("reported settings without a number `{k}`: {s}"))
    };
    let flag = |k: &str| -> Result<bool, String> {
        s.get(k)
            .and_then(Value::as_bool)
            .ok_or_else(|| format!("reported settings without a boolean `{k}`: {s}"))
    };
    // Each library's "no limit": 0 (and below) for a count or a duration.
    let count = |k: &str| -> Result<u32, String> {
        let n = num(k)?;
        Ok(if n <= 0.0 { u32::MAX } else { n as u32 })
    };
    let secs = |k: &str| -> Result<Option<Duration>, String> {
        let v = num(k)?;
        Ok((v > 0.0).then(|| Duration::from_secs_f64(v)))
    };
    let millis = |k: &str| -> Result<Option<Duration>, String> {
        let v = num(k)?;
        Ok((v > 0.0).then(|| Duration::from_secs_f64(v / 1000.0)))
    };
    match vocabulary {
        "database/sql" => Ok(PoolSpec {
            vocabulary: Vocabulary::GoSql,
            max_connections: count("max_open_conns")?,
            min_connections: 0,
            acquire_timeout: secs("checkout_context_timeout")?.unwrap_or(FOREVER),
            idle_timeout: secs("conn_max_idle_time")?,
            max_lifetime: secs("conn_max_lifetime")?,
            // go-sql-driver's checkConnLiveness finds a closed socket before writing, but
            // on a checked-out *sql.Conn it answers "driver: bad connection" to the app
            // instead of handing out another connection: not a pre-ping.
            test_before_acquire: false,
        }),
        "hikaricp" => {
            let max = num("maximumPoolSize")? as u32;
            // HikariCP's own rules: minimumIdle below 0 (unset) means maximumPoolSize, and
            // idleTimeout retires nothing unless minimumIdle < maximumPoolSize.
            let min = match num("minimumIdle")? {
                n if n < 0.0 => max,
                n => (n as u32).min(max),
            };
            let idle = if min < max {
                millis("idleTimeout")?
            } else {
                None
            };
            Ok(PoolSpec {
                vocabulary: Vocabulary::Hikari,
                max_connections: max,
                min_connections: min,
                acquire_timeout: millis("connectionTimeout")?.unwrap_or(FOREVER),
                idle_timeout: idle,
                max_lifetime: millis("maxLifetime")?,
                // getConnection() checks a connection idle for more than 500 ms with
                // isValid() (or connectionTestQuery) before handing it out.
                test_before_acquire: true,
            })
        }
        "node-mysql" => Ok(PoolSpec {
            vocabulary: Vocabulary::NodeMysql,
            max_connections: count("connectionLimit")?,
            min_connections: 0,
            acquire_timeout: if flag("waitForConnections")? {
                // Queued getConnection() calls wait with no timeout of their own
                // (acquireTimeout bounds only the connect or ping of one connection).
                FOREVER
            } else {
                Duration::ZERO
            },
            idle_timeout: None,
            max_lifetime: None,
            // getConnection() pings a free connection and drops it if the ping fails.
            test_before_acquire: true,
        }),
        other => Err(format!("no vocabulary {other:?}")),
    }
}

/// Every setting the adapter read back, `word=value` in the library's words, sorted.
pub fn line(settings: &Map<String, Value>) -> String {
    settings
        .iter()
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}={s}"),
            v => format!("{k}={v}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_settings_as_database_sql_reads_them() {
        // What the Go adapter reported for database/sql (Go 1.19.8) with
        // max_open_conns = 4, conn_max_idle_time = "1s" and nothing else set.
        let s = json!({"checkConnLiveness": true, "checkout_context_timeout": -1,
            "conn_max_idle_time": 1, "conn_max_lifetime": 0, "max_idle_conns": 2,
            "max_open_conns": 4, "readTimeout": 3, "timeout": 0, "writeTimeout": 0});
        let p = read("database/sql", &s).unwrap();
        assert_eq!(
            p.to_string(),
            "max_open_conns=4 conn_max_lifetime=never conn_max_idle_time=1s checkout_context_timeout=none"
        );
        assert_eq!(p.acquire_timeout, FOREVER);
        // 0 is "unlimited" to SetMaxOpenConns.
        let s = json!({"checkout_context_timeout": 2, "conn_max_idle_time": 0,
            "conn_max_lifetime": 0, "max_open_conns": 0});
        let p = read("database/sql", &s).unwrap();
        assert_eq!(p.max_connections, u32::MAX);
        assert_eq!(p.acquire_timeout, Duration::from_secs(2));
        let Value::Object(m) = json!({"readTimeout": 3, "a": "x"}) else {
            unreachable!()
        };
        assert_eq!(line(&m), "a=x readTimeout=3");
    }

    #[test]
    fn hikari_idle_timeout_only_applies_below_maximum_pool_size() {
        let s = json!({"maximumPoolSize": 4, "minimumIdle": -1, "connectionTimeout": 1000,
            "maxLifetime": 1800000, "idleTimeout": 600000});
        let p = read("hikaricp", &s).unwrap();
        assert_eq!((p.min_connections, p.idle_timeout), (4, None));
        let s = json!({"maximumPoolSize": 4, "minimumIdle": 1, "connectionTimeout": 1000,
            "maxLifetime": 0, "idleTimeout": 600000});
        let p = read("hikaricp", &s).unwrap();
        assert_eq!(p.idle_timeout, Some(Duration::from_secs(600)));
        assert_eq!(p.max_lifetime, None);
        assert!(read("hikaricp", &json!({"maximumPoolSize": 4})).is_err());
    }

    #[test]
    fn node_mysql_waits_for_good_unless_told_not_to() {
        let s = json!({"connectionLimit": 10, "waitForConnections": true});
        assert_eq!(read("node-mysql", &s).unwrap().acquire_timeout, FOREVER);
        let s = json!({"connectionLimit": 10, "waitForConnections": false});
        assert_eq!(
            read("node-mysql", &s).unwrap().acquire_timeout,
            Duration::ZERO
        );
    }
}
