//! The suites shipped in `suites/`, compiled in so `goneaway run <name>` works from any
//! directory. A test keeps this list and the directory in step.

macro_rules! builtin {
    ($($name:literal),* $(,)?) => {
        /// `(name, toml text)` of every built-in suite.
        pub const BUILTIN: &[(&str, &str)] = &[
            $(($name, include_str!(concat!("../../suites/", $name, ".toml")))),*
        ];
    };
}

builtin![
    "idle-expiry-stale-pool",
    "idle-expiry-recycle",
    "idle-expiry-pre-ping",
    "wait-timeout-lowered",
    "kill-idle",
    "kill-active",
    "server-restart",
    "server-crash",
    "server-pause",
    "leaked-checkouts",
    "leaked-checkouts-fixed",
    "max-connections",
    "network-partition",
    "network-cut-short",
    "network-cut-long",
    "network-reset",
    "blackhole-no-timeouts",
    "half-open",
    "latency-spike",
    "limit-data-mid-result",
    "read-only-window",
    "failover-stale-pool",
    "failover-recycled-pool",
    "outage-flask-ignored-config",
    "outage-flask-engine-options",
    "sqlalchemy-leaked-sessions",
    "sqlalchemy-leaked-sessions-fixed",
    "sqlalchemy-pre-ping",
    "sqlalchemy-recycle",
];

pub fn builtin_names() -> Vec<&'static str> {
    BUILTIN.iter().map(|(n, _)| *n).collect()
}
