//! A server with a replica (`[server] replica = true`): two real mariadbd joined by
//! MariaDB replication (binlog + GTID), the harness's users arriving on the replica
//! with replication, and nothing left behind when the pair is dropped.

use crate::common;

use std::time::Duration;

use goneaway::server::process::{ReplicatedServer, replication_state};
use goneaway::server::{self, ReplicaSpec, Server, ServerSpec, admin_exec};
use goneaway::{ErrorClass, pool::sqlx::classify};
use sqlx::{Connection, Executor};

fn spec(delay: u64) -> ServerSpec {
    ServerSpec {
        replica: Some(ReplicaSpec {
            delay: Duration::from_secs(delay),
        }),
        ..Default::default()
    }
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !matches!(
                s.rsplit(')').next().and_then(|s| s.trim().chars().next()),
                Some('Z' | 'X')
            )
        })
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_follows_its_primary_and_refuses_the_apps_writes() {
    if !common::mariadb() {
        return;
    }
    let pair = ReplicatedServer::start(&spec(0), Duration::ZERO)
        .await
        .unwrap();
    let replica = pair.replica().expect("a pair has a replica");
    assert_ne!(pair.app().port, replica.app().port);
    assert_eq!(pair.app().password, replica.app().password, "same users");
    let state = replication_state(&pair.admin(), &replica.admin())
        .await
        .unwrap();
    assert!(state.caught_up(), "{state}");
    assert!(state.primary_pos.starts_with("0-1-"), "{state}");

    admin_exec(
        &pair.admin(),
        "CREATE TABLE goneaway.r (id BIGINT PRIMARY KEY) ENGINE=InnoDB",
    )
    .await
    .unwrap();
    let mut app = sqlx::MySqlConnection::connect(&pair.app().url())
        .await
        .unwrap();
    app.execute("INSERT INTO r VALUES (1), (2)").await.unwrap();
    pair.sync_replica().await.unwrap();

    // The app's own credentials work on the replica (a VIP move needs nothing else);
    // it sees the rows and may not write: the replica is read-only until promoted.
    let mut on_replica = sqlx::MySqlConnection::connect(&replica.app().url())
        .await
        .unwrap();
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM r")
        .fetch_one(&mut on_replica)
        .await
        .unwrap();
    assert_eq!(n, 2);
    let e = on_replica
        .execute("INSERT INTO r VALUES (3)")
        .await
        .expect_err("the replica is read-only");
    assert_eq!(classify(&e), ErrorClass::ReadOnly, "{e:?}");
    drop((app, on_replica));

    let dirs = [
        pair.primary().dir().to_path_buf(),
        pair.standby().dir().to_path_buf(),
    ];
    let pids = [
        pair.primary().pid().await.unwrap(),
        pair.standby().pid().await.unwrap(),
    ];
    drop(replica);
    drop(pair);
    for (dir, pid) in dirs.iter().zip(pids) {
        assert!(!alive(pid), "server pid {pid} still alive");
        assert!(!dir.exists(), "{} still exists", dir.display());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delayed_replica_is_behind_until_the_delay_passes() {
    if !common::mariadb() {
        return;
    }
    let s = server::start(&spec(1)).await.unwrap();
    let replica = s.replica().unwrap();
    admin_exec(
        &s.admin(),
        "CREATE TABLE goneaway.d (id BIGINT PRIMARY KEY) ENGINE=InnoDB",
    )
    .await
    .unwrap();
    // MASTER_DELAY = 1: right after the write the replica has not applied it.
    let state = replication_state(&s.admin(), &replica.admin())
        .await
        .unwrap();
    assert!(!state.caught_up(), "{state}");
    assert_eq!(state.io_running, "Yes", "{state}");
    s.sync_replica().await.unwrap();
    let state = replication_state(&s.admin(), &replica.admin())
        .await
        .unwrap();
    assert!(state.caught_up(), "{state}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_is_refused_where_it_cannot_be_built() {
    let spec = ServerSpec {
        backend: server::BackendKind::External,
        url: Some("mysql://u:p@127.0.0.1:1/db".into()),
        ..spec(0)
    };
    let e = server::start(&spec).await.unwrap_err().to_string();
    assert!(
        e.contains("only be started by the process backend") && e.contains("external"),
        "{e}"
    );
}

/// The other way to fail over: the old primary is shut down. Its sessions break, the
/// pool reconnects through the moved address to the promoted replica, and the final
/// read starts the old primary again to compare what each has.
#[tokio::test(flavor = "multi_thread")]
async fn a_failover_that_stops_the_old_primary_moves_the_pool_to_the_replica() {
    if !common::mariadb() {
        return;
    }
    let text = r#"
description = "failover with the old primary stopped"
[server]
replica = true
[pool]
max_connections = 4
acquire_timeout = "5s"
[workload]
workers = 4
duration = "6s"
think = "20ms"
op_timeout = "10s"
mix = { insert = 2, select = 1 }
[[fault]]
kind = "failover"
name = "move"
at = "2s"
old_primary = "stopped"
tolerate = ["lost_connection", "gone_away", "killed", "server_shutdown", "connect_refused", "checkout_timeout"]
[expect]
verdict = "valid"
grace = "3s"
recover_within = "3s"
lost_in_failover = "allowed"
"#;
    let suite = goneaway::Suite::from_toml(text, "stopped.toml", "stopped").unwrap();
    let report = suite.run().await.unwrap();
    assert!(report.stable.met, "{}", report.human());
    let fault = &report.measured.faults[0];
    assert!(
        fault
            .detail
            .starts_with("old primary stopped, replica at 127.0.0.1:"),
        "{}",
        fault.detail
    );
    // Writes went on after the move, to the promoted replica, and were read back there.
    let writes = report
        .stable
        .checks
        .iter()
        .find(|c| c.name == "writes")
        .unwrap();
    assert_eq!(
        writes.verdict,
        goneaway::Verdict::Valid,
        "{}",
        report.human()
    );
    assert!(
        report.measured.failed < report.measured.ok,
        "{}",
        report.human()
    );
}
