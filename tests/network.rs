//! Network toxics no built-in suite uses, run live through the proxy: each is applied
//! to the pool's open connections and healed.

mod common;

use goneaway::Suite;

#[tokio::test(flavor = "multi_thread")]
async fn bandwidth_and_slow_close_slow_the_pool_without_errors() {
    if !common::mariadb() {
        return;
    }
    let suite = Suite::from_toml(
        r#"
        description = "a squeezed link, then closes held back: slower, never wrong"
        [pool]
        max_connections = 4
        acquire_timeout = "5s"
        max_lifetime = "1s"        # connections are recycled (closed) during the slow_close
        [workload]
        workers = 2
        duration = "7s"
        mix = { select = 1, insert = 1 }
        [[fault]]
        kind = "bandwidth"
        attributes = { rate = 1 }  # 1 KB/s
        at = "1s"
        duration = "2s"
        [[fault]]
        kind = "slow_close"
        attributes = { delay = 500 }
        stream = "both"
        at = "3.5s"
        duration = "1.5s"
        [expect]
        verdict = "valid"
        recover_within = "3s"
        "#,
        "inline",
        "bandwidth-slow-close",
    )
    .unwrap();
    let report = suite.run().await.unwrap();
    report.assert_expected();
    let details: Vec<&str> = report
        .measured
        .faults
        .iter()
        .map(|f| f.detail.as_str())
        .collect();
    assert_eq!(
        details,
        [
            "bandwidth toxic rate=1 on downstream",
            "slow_close toxic delay=500 on upstream and downstream"
        ]
    );
}
