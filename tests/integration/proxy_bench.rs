//! The passthrough benchmark runs and reports sane figures. Numbers are printed, not
//! asserted: `cargo test --release --test proxy_bench -- --ignored --nocapture`.

use goneaway::testkit::{BenchOptions, bench_passthrough};

#[tokio::test]
async fn bench_passthrough_reports_finite_ratios() {
    let r = bench_passthrough(BenchOptions {
        bulk_bytes: 2 << 20,
        pings: 50,
        ping_size: 16,
    })
    .await
    .unwrap();
    assert!(
        r.throughput_ratio.is_finite() && r.throughput_ratio > 0.0,
        "{r:?}"
    );
    assert!(
        r.latency_ratio.is_finite() && r.latency_ratio > 0.0,
        "{r:?}"
    );
    assert!(r.proxied_bytes_per_sec > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check; run on a quiet machine"]
async fn bench_passthrough_full() {
    let r = bench_passthrough(BenchOptions::default()).await.unwrap();
    println!(
        "direct {:.0} MB/s, proxied {:.0} MB/s, ratio {:.2}; p50 direct {:?}, proxied {:?}, added {:?}, ratio {:.2}",
        r.direct_bytes_per_sec / 1e6,
        r.proxied_bytes_per_sec / 1e6,
        r.throughput_ratio,
        r.direct_p50,
        r.proxied_p50,
        r.added_p50,
        r.latency_ratio
    );
}
