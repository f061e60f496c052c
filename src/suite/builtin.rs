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
    "mysql-async-idle-expiry",
    "mysql-async-idle-expiry-conn-ttl-off",
    "mysql-async-abs-conn-ttl",
    "mysql-async-kill-idle",
    "mysql-async-server-restart",
    "mysql-async-network-reset",
    "mysql-async-blackhole",
    "go-idle-expiry-stale-pool",
    "go-idle-expiry-idle-time",
    "go-kill-idle",
    "go-server-restart",
    "go-blackhole-read-timeout",
    "node-idle-expiry",
    "node-kill-idle",
    "node-server-restart",
    "node-blackhole",
    "node-blackhole-query-timeout",
    "hikaricp-idle-expiry",
    "hikaricp-kill-idle",
    "hikaricp-server-restart",
    "hikaricp-blackhole-socket-timeout",
    "sqlalchemy-blackhole-read-timeout",
    "restart-connection-storm",
    "restart-connection-storm-bounded",
    "held-across-wait-timeout",
    "held-across-wait-short",
    "sqlalchemy-held-across-wait-timeout",
    "sqlalchemy-held-across-wait-short",
    "db-down-fail-fast",
    "db-down-no-timeouts",
    "db-down-at-start",
    "db-down-at-start-no-timeouts",
    "handshake-blackhole",
    "handshake-blackhole-no-timeouts",
    "idle-expiry-stale-pool-socket",
    "kill-idle-socket",
    "server-restart-socket",
];

pub fn builtin_names() -> Vec<&'static str> {
    BUILTIN.iter().map(|(n, _)| *n).collect()
}
