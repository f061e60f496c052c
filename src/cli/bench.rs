//! `goneaway bench`: the harness's own costs (server spawn, the proxy), printed for
//! people. Numbers here are never asserted on.

use std::time::Duration;

use crate::error::{EXIT_HARNESS, EXIT_OK};
use crate::{RunOptions, Suite};

fn median(mut d: Vec<Duration>) -> Duration {
    d.sort();
    d[d.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}

/// `median (min–max)`: one figure and how much it moved between trials.
fn spread(mut d: Vec<Duration>) -> String {
    d.sort();
    let (lo, hi) = (d[0].as_secs_f64() * 1e3, d[d.len() - 1].as_secs_f64() * 1e3);
    format!("{} ({lo:.0}–{hi:.0})", ms(median(d)))
}

pub(super) async fn bench(trials: usize) -> i32 {
    outln!("server spawn -> ready, {trials} trial(s) each, median (min–max)");
    let t = match crate::server::process::measure_spawn(trials).await {
        Ok(t) => t,
        Err(e) => {
            eprintln!("goneaway: bench: {e}");
            return EXIT_HARNESS;
        }
    };
    let cached = median(t.cached.iter().map(|t| t.total()).collect());
    let fresh = median(t.fresh.iter().map(|t| t.total()).collect());
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-9);
    outln!("  server                    {}", t.version);
    use crate::server::process::SpawnTrial;
    let all = |trials: &[SpawnTrial], part: fn(&SpawnTrial) -> Duration| {
        spread(trials.iter().map(part).collect())
    };
    outln!(
        "  process, cached datadir   {}: copy {} + start {}",
        all(&t.cached, |t| t.total()),
        all(&t.cached, |t| t.prepare),
        all(&t.cached, |t| t.ready)
    );
    outln!(
        "  process, fresh install    {}: install {} + start {}",
        all(&t.fresh, |t| t.total()),
        all(&t.fresh, |t| t.prepare),
        all(&t.fresh, |t| t.ready)
    );
    outln!("  fresh / cached            {:.1}x", ratio(fresh, cached));
    #[cfg(feature = "docker")]
    match crate::server::docker::measure_spawn(trials).await {
        Ok(d) => {
            let docker = median(d.iter().map(|t| t.total).collect());
            let ready = median(d.iter().map(|t| t.start_to_ready).collect());
            outln!(
                "  docker, local image       {} (docker start -> ready {})",
                ms(docker),
                ms(ready)
            );
            outln!("  docker / process cached   {:.1}x", ratio(docker, cached));
        }
        Err(e) => outln!("  docker                    not measured: {e}"),
    }
    #[cfg(not(feature = "docker"))]
    outln!(
        "  docker                    not measured: {}",
        crate::server::ServerError::DockerDisabled
    );
    proxy_bench().await
}

/// The proxy with no toxics: raw passthrough on an echo server, then the same MySQL
/// workload direct and through the proxy.
async fn proxy_bench() -> i32 {
    outln!("proxy with no toxics vs direct");
    match crate::proxy::bench::bench_passthrough(Default::default()).await {
        Ok(r) => {
            outln!(
                "  echo throughput           {:.2}x direct",
                r.throughput_ratio
            );
            outln!(
                "  echo round trip p50       {:.0} us direct, {:.0} us proxied",
                r.direct_p50.as_secs_f64() * 1e6,
                r.proxied_p50.as_secs_f64() * 1e6
            );
        }
        Err(e) => outln!("  echo                      not measured: {e}"),
    }
    let text = r#"
        description = "the same workload direct and through the proxy"
        [pool]
        max_connections = 4
        [workload]
        workers = 4
        duration = "4s"
        think = "0s"
        mix = { ping = 1, select = 3 }
        [expect]
        verdict = "valid"
    "#;
    let direct = Suite::from_toml(text, "bench", "bench-direct").expect("bench suite");
    let mut proxied = direct.clone();
    proxied.proxy = Some(crate::suite::ProxySpec::default());
    let (a, b) = match (
        crate::run(&direct, RunOptions::default()).await,
        crate::run(&proxied, RunOptions::default()).await,
    ) {
        (Ok(a), Ok(b)) => (a.measured, b.measured),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("goneaway: bench: {e}");
            return EXIT_HARNESS;
        }
    };
    outln!(
        "  mysql throughput          {:.0}/s direct, {:.0}/s proxied: {:.2}x",
        a.throughput,
        b.throughput,
        b.throughput / a.throughput.max(1e-9)
    );
    outln!(
        "  mysql request p50         {:.0} us direct, {:.0} us proxied: +{:.0} us",
        a.latency_ms.p50 * 1e3,
        b.latency_ms.p50 * 1e3,
        (b.latency_ms.p50 - a.latency_ms.p50) * 1e3
    );
    EXIT_OK
}
