//! The suite file exactly as written: serde structs that reject unknown keys and keep
//! spans, so every later complaint can point at a line. Nothing outside `suite` sees
//! these types.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer};
use serde_spanned::Spanned;

pub type S<T> = Spanned<T>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSuite {
    pub name: Option<S<String>>,
    // Required fields are `Option`s here so that a missing one is reported by the
    // checker, which knows which table it belongs in and what to write, instead of
    // serde's bare "missing field" at 1:1.
    pub description: Option<S<String>>,
    pub seed: Option<S<u64>>,
    #[serde(default)]
    pub server: RawServer,
    pub proxy: Option<S<RawProxy>>,
    pub pool: Option<S<RawPool>>,
    pub client: Option<S<RawClient>>,
    pub workload: Option<S<RawWorkload>>,
    #[serde(default, rename = "fault")]
    pub faults: Vec<S<RawFault>>,
    pub expect: Option<S<RawExpect>>,
}

/// `[server]`: a few keys of ours, every other key is a server setting.
#[derive(Debug, Default, Deserialize)]
pub struct RawServer {
    pub backend: Option<S<String>>,
    pub url: Option<S<String>>,
    pub image: Option<S<String>>,
    /// A replica beside the server, joined by MariaDB replication (process backend).
    pub replica: Option<S<bool>>,
    /// MASTER_DELAY of that replica.
    pub replica_delay: Option<S<Dur>>,
    #[serde(flatten)]
    pub settings: BTreeMap<String, toml::Value>,
}

/// `[proxy]`: put a Toxiproxy between pool and server (implied by network faults).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProxy {
    /// A real Toxiproxy's API; default: goneaway's embedded one.
    pub url: Option<S<String>>,
}

/// `[pool]` in one vocabulary; the checked form decides which one was meant.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPool {
    // SQLAlchemy words.
    // Signed: SQLAlchemy gives `pool_size = 0` and `max_overflow = -1` a meaning (no
    // limit) that the checker explains instead of serde's "expected u32".
    pub pool_size: Option<S<i64>>,
    pub max_overflow: Option<S<i64>>,
    pub pool_timeout: Option<S<Seconds>>,
    pub pool_recycle: Option<S<Seconds>>,
    pub pool_pre_ping: Option<S<bool>>,
    // sqlx words.
    pub max_connections: Option<S<u32>>,
    pub min_connections: Option<S<u32>>,
    pub acquire_timeout: Option<S<Dur>>,
    pub idle_timeout: Option<S<Never<Dur>>>,
    pub max_lifetime: Option<S<Never<Dur>>>,
    pub test_before_acquire: Option<S<bool>>,
    // mysql_async words (its connection-URL parameters), for `[client] kind =
    // "mysql-async"` only: see `suite::mysql_async`.
    pub pool_min: Option<S<usize>>,
    pub pool_max: Option<S<usize>>,
    pub inactive_connection_ttl: Option<S<Dur>>,
    pub ttl_check_interval: Option<S<Dur>>,
    pub abs_conn_ttl: Option<S<Dur>>,
    pub abs_conn_ttl_jitter: Option<S<Dur>>,
    pub conn_ttl: Option<S<Dur>>,
    pub reset_connection: Option<S<bool>>,
    pub tcp_keepalive: Option<S<Dur>>,
    /// `tcp` (default) or `socket` (the process backend's unix socket).
    pub transport: Option<S<String>>,
}

/// `[client]`: which client is under test (default: sqlx). See `suite::client`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClient {
    pub kind: Option<S<String>>,
    pub command: Option<S<Vec<String>>>,
    pub driver: Option<S<String>>,
    pub config: Option<S<toml::Table>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWorkload {
    pub workers: Option<S<u32>>,
    pub duration: Option<S<Dur>>,
    pub requests: Option<S<u64>>,
    pub rate: Option<S<f64>>,
    pub think: Option<S<Dur>>,
    pub hold: Option<S<Dur>>,
    pub op_timeout: Option<S<Dur>>,
    pub checkouts_per_request: Option<S<u32>>,
    pub mix: Option<S<BTreeMap<String, u32>>>,
    pub sleep: Option<S<Dur>>,
    pub leak_every: Option<S<u64>>,
    /// A request of several steps on one checkout, instead of `mix`.
    pub steps: Option<S<Vec<S<String>>>>,
    pub transaction: Option<S<bool>>,
}

/// One `[[fault]]`. Flat on purpose: which parameters a kind takes is checked after
/// parsing, so a misplaced one gets "`target` is not a parameter of `crash`" instead of
/// serde's generic enum message.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFault {
    pub kind: Option<S<String>>,
    pub name: Option<S<String>>,
    pub at: Option<S<Dur>>,
    pub duration: Option<S<Dur>>,
    pub repeat: Option<S<RawRepeat>>,
    pub jitter: Option<S<Dur>>,
    pub tolerate: Option<S<Vec<S<String>>>>,
    /// `"none"`: a control that must touch nothing.
    pub effect: Option<S<String>>,
    /// In force before the pool is built: the pool is created while it lasts.
    pub before_pool: Option<S<bool>>,
    // Kind-specific parameters.
    pub target: Option<S<String>>,
    pub variable: Option<S<String>>,
    pub value: Option<S<toml::Value>>,
    // Failover parameters.
    pub old_primary: Option<S<String>>,
    pub reset: Option<S<bool>>,
    // Network (toxic) parameters, with Toxiproxy's names and units.
    pub stream: Option<S<String>>,
    pub attributes: Option<S<toml::Table>>,
    pub toxicity: Option<S<f64>>,
    /// `all` (default), `new` (opened while it lasts) or `established` (already open).
    pub connections: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRepeat {
    pub every: Option<S<Dur>>,
    pub times: Option<S<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExpect {
    pub verdict: Option<S<String>>,
    pub errors: Option<S<Vec<S<String>>>>,
    pub tolerate: Option<S<Vec<S<String>>>>,
    pub grace: Option<S<Dur>>,
    pub recover_within: Option<S<Dur>>,
    pub min_throughput: Option<S<f64>>,
    pub windows: Option<S<BTreeMap<String, Vec<S<String>>>>>,
    /// After a failover: `forbidden` (default), `allowed` or `expected`.
    pub lost_in_failover: Option<S<String>>,
    pub failing: Option<S<Vec<S<String>>>>,
    pub max_server_connections: Option<S<u64>>,
    pub fail_within: Option<S<Dur>>,
}

/// A humantime duration written as a string: "500ms", "2s", "1h 30m".
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dur(pub Duration);

impl Dur {
    /// The longest duration a suite may write. Beyond it nothing a suite does is
    /// meaningful and arithmetic starts to break: MariaDB's `SELECT SLEEP(1e11)` returns
    /// at once (its nanosecond deadline overflows), and a deadline of `now + 300000000000y`
    /// overflows the clock. A year is far above any real setting (MariaDB caps
    /// `wait_timeout` at 365 days too); "never" is how to say "no limit".
    pub const MAX: Duration = Duration::from_secs(365 * 24 * 3600);

    fn bounded<E: de::Error>(d: Duration, written: &str) -> Result<Dur, E> {
        if d > Dur::MAX {
            Err(too_long(written))
        } else {
            Ok(Dur(d))
        }
    }
}

fn too_long<E: de::Error>(written: &str) -> E {
    E::custom(format!(
        "duration {written} is longer than a year; goneaway refuses absurd durations (the server and the clock cannot honour them): use a realistic value, or \"never\" where the setting allows it"
    ))
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a duration string like \"500ms\", \"2s\" or \"1h\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Dur, E> {
                let d = humantime::parse_duration(s).map_err(|e| {
                    E::custom(format!(
                        "invalid duration \"{s}\" ({e}); write durations like \"500ms\", \"2s\" or \"1h\""
                    ))
                })?;
                Dur::bounded(d, &format!("\"{s}\""))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Dur, E> {
                Err(E::custom(format!(
                    "a bare number ({n}) is ambiguous as a duration; write it with a unit, like \"{n}s\" or \"{n}ms\""
                )))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Dur, E> {
                Err(E::custom(format!(
                    "a bare number ({n}) is ambiguous as a duration; write it with a unit, like \"{n}s\""
                )))
            }
        }
        d.deserialize_any(V)
    }
}

/// SQLAlchemy's durations: whole seconds as a number (`pool_recycle = 3600`, `-1` for
/// never) or a humantime string.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Seconds(pub Option<Duration>);

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Seconds;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("seconds as a number (-1 for never) or a duration string like \"2h\"")
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Seconds, E> {
                match n {
                    -1 => Ok(Seconds(None)),
                    n if n >= 0 => Dur::bounded(Duration::from_secs(n as u64), &format!("{n} s"))
                        .map(|d| Seconds(Some(d.0))),
                    n => Err(E::custom(format!(
                        "{n} is not a number of seconds; use -1 for never"
                    ))),
                }
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Seconds, E> {
                if n >= 0.0 && n.is_finite() {
                    // Bounded before converting: from_secs_f64 panics above u64 seconds.
                    if n > Dur::MAX.as_secs_f64() {
                        return Err(too_long(&format!("{n} s")));
                    }
                    Ok(Seconds(Some(Duration::from_secs_f64(n))))
                } else {
                    Err(E::custom(format!("{n} is not a number of seconds")))
                }
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Seconds, E> {
                if s == "never" {
                    return Ok(Seconds(None));
                }
                Dur::deserialize(de::value::StrDeserializer::<E>::new(s))
                    .map(|d| Seconds(Some(d.0)))
            }
        }
        d.deserialize_any(V)
    }
}

/// A value or the string "never" (sqlx's `None`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Never<T>(pub Option<T>);

impl<'de> Deserialize<'de> for Never<Dur> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Never<Dur>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a duration string like \"10m\", or \"never\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Never<Dur>, E> {
                if s == "never" {
                    return Ok(Never(None));
                }
                Dur::deserialize(de::value::StrDeserializer::<E>::new(s)).map(|d| Never(Some(d)))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Never<Dur>, E> {
                Dur::deserialize(de::value::I64Deserializer::<E>::new(n)).map(|d| Never(Some(d)))
            }
        }
        d.deserialize_any(V)
    }
}
