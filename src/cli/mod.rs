//! The command line: argument definitions and what each command prints. The library does
//! the work; this module only chooses, prints and maps outcomes to exit codes.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::error::{EXIT_HARNESS, EXIT_OK, EXIT_UNMET, Error};
use crate::server::BackendKind;
use crate::suite::{BUILTIN, Suite};
use crate::{Report, RunOptions};

#[derive(Parser, Debug)]
#[command(name = "goneaway", version, about = "Chaos harness for MySQL client connection pools", long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// List the built-in suites: name, expected verdict, what goes wrong.
    List,
    /// Compare saved reports: what changed (exit 1) and what drifted beyond noise.
    ///
    /// OLD and NEW are each a report.json, a report directory, a suite's directory (its
    /// `latest`), or a whole report directory (suites are then matched by name).
    Diff {
        /// The earlier report(s).
        old: PathBuf,
        /// The later report(s).
        new: PathBuf,
        /// Print the diff as JSON.
        #[arg(long)]
        json: bool,
        /// Exit 1 also when a measured figure drifted beyond the thresholds.
        #[arg(long)]
        fail_on_drift: bool,
        #[command(flatten)]
        thresholds: crate::report::diff::Thresholds,
    },
    /// Run suites (built-in names or .toml files) and print checked reports.
    Run {
        /// Suite names or paths; see `goneaway list`.
        suites: Vec<String>,
        /// Run every built-in suite.
        #[arg(long, conflicts_with = "suites")]
        all: bool,
        /// Seed for the schedule and the workload; printed with every report.
        #[arg(long)]
        seed: Option<u64>,
        /// Run on another backend than the suite names.
        #[arg(long, value_parser = parse_backend)]
        backend: Option<BackendKind>,
        /// Print the report as JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Also write a JUnit XML report (one testcase per suite) for CI.
        #[arg(long, value_name = "PATH")]
        junit: Option<PathBuf>,
        /// Where reports are saved (`<dir>/<suite>/latest` points at the newest).
        #[arg(long, env = "GONEAWAY_REPORT_DIR", default_value = "goneaway-reports")]
        report_dir: PathBuf,
        /// Do not save reports.
        #[arg(long)]
        no_save: bool,
        /// How many suites run at once (each has its own server; most of a run is waiting).
        #[arg(long, short = 'j', default_value_t = 8)]
        jobs: usize,
    },
    /// Measure the harness itself: server spawn -> ready with the cached datadir vs a
    /// fresh install, printed as a ratio.
    Bench {
        /// Servers started each way; the median is reported.
        #[arg(long, default_value_t = 5)]
        trials: usize,
    },
    /// Remove containers, networks and temp dirs left by goneaway runs whose process is
    /// gone.
    Gc,
    /// Serve the Toxiproxy HTTP API (and its proxies) for anyone's tests, until Ctrl-C.
    Proxy {
        /// Address of the HTTP API; proxies listen where their definitions say.
        #[arg(long, default_value = "127.0.0.1:8474")]
        listen: std::net::SocketAddr,
    },
    /// Generate fault schedules around a base suite, run each, and shrink what breaks
    /// its expectations to a minimal suite file.
    Explore(crate::explore::command::ExploreArgs),
    /// Check suite files without running them; prints the lint.
    Check {
        /// Suite paths or built-in names.
        #[arg(required = true)]
        suites: Vec<String>,
    },
}

fn parse_backend(s: &str) -> Result<BackendKind, String> {
    s.parse()
}

/// Run the CLI; returns the process exit code.
pub async fn main(cli: Cli) -> i32 {
    match cli.command {
        Command::List => list(),
        Command::Diff {
            old,
            new,
            json,
            fail_on_drift,
            thresholds,
        } => diff(&old, &new, json, fail_on_drift, &thresholds),
        Command::Check { suites } => check(&suites),
        Command::Explore(args) => crate::explore::command::command(args).await,
        Command::Bench { trials } => bench(trials.max(1)).await,
        Command::Gc => gc().await,
        Command::Proxy { listen } => {
            eprintln!("goneaway proxy: Toxiproxy API on http://{listen} (Ctrl-C to stop)");
            match crate::proxy::serve_forever(listen).await {
                Ok(()) => EXIT_OK,
                Err(e) => {
                    eprintln!("goneaway: proxy: {e}");
                    EXIT_HARNESS
                }
            }
        }
        Command::Run {
            suites,
            all,
            seed,
            backend,
            json,
            junit,
            report_dir,
            no_save,
            jobs,
        } => {
            let names: Vec<String> = if all {
                BUILTIN.iter().map(|(n, _)| n.to_string()).collect()
            } else {
                suites
            };
            if names.is_empty() {
                eprintln!("goneaway: name a suite to run (see `goneaway list`), or pass --all");
                return EXIT_HARNESS;
            }
            let save = (!no_save).then_some(report_dir);
            run(names, seed, backend, json, junit, save, jobs.max(1)).await
        }
    }
}

fn list() -> i32 {
    let width = BUILTIN.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    for (name, _) in BUILTIN {
        match Suite::builtin(name) {
            Ok(s) => {
                let expected = match s.expect.verdict {
                    crate::Expected::Valid => "valid  ",
                    crate::Expected::Invalid => "invalid",
                };
                println!("{name:<width$}  {expected}  {}", s.description);
            }
            Err(e) => {
                eprintln!("goneaway: {e}");
                return EXIT_HARNESS;
            }
        }
    }
    EXIT_OK
}

fn diff(
    old: &std::path::Path,
    new: &std::path::Path,
    json: bool,
    fail_on_drift: bool,
    thresholds: &crate::report::diff::Thresholds,
) -> i32 {
    use crate::report::diff::{DiffSet, load};
    let (o, n) = match (load(old), load(new)) {
        (Ok(o), Ok(n)) => (o, n),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("goneaway: diff: {e}");
            return EXIT_HARNESS;
        }
    };
    let (ol, nl) = (old.display().to_string(), new.display().to_string());
    let Some(set) = DiffSet::of(&ol, &o, &nl, &n, thresholds) else {
        eprintln!("goneaway: diff: no suite has a report in both {ol} and {nl}");
        return EXIT_HARNESS;
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&set).expect("json"));
    } else {
        print!("{}", set.human());
    }
    if set.changed() || (fail_on_drift && set.drift()) {
        EXIT_UNMET
    } else {
        EXIT_OK
    }
}

fn median(mut d: Vec<std::time::Duration>) -> std::time::Duration {
    d.sort();
    d[d.len() / 2]
}

fn ms(d: std::time::Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}

async fn bench(trials: usize) -> i32 {
    println!("server spawn -> ready, {trials} trial(s) each, median");
    let t = match crate::server::process::measure_spawn(trials).await {
        Ok(t) => t,
        Err(e) => {
            eprintln!("goneaway: bench: {e}");
            return EXIT_HARNESS;
        }
    };
    let cached = median(t.cached.iter().map(|t| t.total()).collect());
    let fresh = median(t.fresh.iter().map(|t| t.total()).collect());
    let copy = median(t.cached.iter().map(|t| t.prepare).collect());
    let install = median(t.fresh.iter().map(|t| t.prepare).collect());
    let ratio = |a: std::time::Duration, b: std::time::Duration| {
        a.as_secs_f64() / b.as_secs_f64().max(1e-9)
    };
    println!("  server                    {}", t.version);
    println!(
        "  process, cached datadir   {} (copy {} + start)",
        ms(cached),
        ms(copy)
    );
    println!(
        "  process, fresh install    {} (install {} + start)",
        ms(fresh),
        ms(install)
    );
    println!("  fresh / cached            {:.1}x", ratio(fresh, cached));
    match crate::server::docker::measure_spawn(trials).await {
        Ok(d) => {
            let docker = median(d.iter().map(|t| t.total).collect());
            let ready = median(d.iter().map(|t| t.start_to_ready).collect());
            println!(
                "  docker, local image       {} (docker start -> ready {})",
                ms(docker),
                ms(ready)
            );
            println!("  docker / process cached   {:.1}x", ratio(docker, cached));
        }
        Err(e) => println!("  docker                    not measured: {e}"),
    }
    proxy_bench().await
}

/// The proxy with no toxics: raw passthrough on an echo server, then the same MySQL
/// workload direct and through the proxy.
async fn proxy_bench() -> i32 {
    println!("proxy with no toxics vs direct");
    match crate::proxy::bench::bench_passthrough(Default::default()).await {
        Ok(r) => {
            println!(
                "  echo throughput           {:.2}x direct",
                r.throughput_ratio
            );
            println!(
                "  echo round trip p50       {:.0} us direct, {:.0} us proxied",
                r.direct_p50.as_secs_f64() * 1e6,
                r.proxied_p50.as_secs_f64() * 1e6
            );
        }
        Err(e) => println!("  echo                      not measured: {e}"),
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
    println!(
        "  mysql throughput          {:.0}/s direct, {:.0}/s proxied: {:.2}x",
        a.throughput,
        b.throughput,
        b.throughput / a.throughput.max(1e-9)
    );
    println!(
        "  mysql request p50         {:.0} us direct, {:.0} us proxied: +{:.0} us",
        a.latency_ms.p50 * 1e3,
        b.latency_ms.p50 * 1e3,
        (b.latency_ms.p50 - a.latency_ms.p50) * 1e3
    );
    EXIT_OK
}

async fn gc() -> i32 {
    let dirs = crate::server::process::sweep_stale_dirs();
    println!("removed {} temp dir(s) of dead goneaway runs", dirs.len());
    for dir in &dirs {
        println!("  {}", dir.display());
    }
    match crate::server::docker::gc().await {
        Ok(r) => {
            println!(
                "removed {} container(s) and {} network(s) of dead goneaway runs; kept {} of live ones",
                r.containers.len(),
                r.networks.len(),
                r.kept
            );
            for name in r.containers.iter().chain(&r.networks) {
                println!("  {name}");
            }
            EXIT_OK
        }
        Err(e) => {
            eprintln!("goneaway: gc: {e}");
            EXIT_HARNESS
        }
    }
}

fn check(names: &[String]) -> i32 {
    let mut code = EXIT_OK;
    for name in names {
        match Suite::resolve(name) {
            Ok(s) => {
                println!(
                    "{}: ok ({} fault(s), expects {:?})",
                    s.origin,
                    s.faults.len(),
                    s.expect.verdict
                );
                if let Some(pool) = &s.pool {
                    for l in crate::lint::lint(pool, &s.server, &s.workload, &s.faults) {
                        let p = l
                            .predicts
                            .map_or(String::new(), |p| format!(" -> predicts {}", p.class));
                        println!("  lint {}: {}{p}", l.rule, l.message);
                    }
                }
            }
            Err(e) => {
                eprintln!("{e}");
                code = EXIT_HARNESS;
            }
        }
    }
    code
}

async fn run(
    names: Vec<String>,
    seed: Option<u64>,
    backend: Option<BackendKind>,
    json: bool,
    junit: Option<PathBuf>,
    save: Option<PathBuf>,
    jobs: usize,
) -> i32 {
    // Check every suite before starting any server: a typo should cost nothing.
    let mut suites = Vec::new();
    for name in &names {
        let suite = Suite::resolve(name).and_then(|s| match backend {
            Some(b) => s.with_backend(b),
            None => Ok(s),
        });
        match suite {
            Ok(s) => suites.push(s),
            Err(e) => {
                eprintln!("{e}");
                return EXIT_HARNESS;
            }
        }
    }
    let cancel = CancellationToken::new();
    {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!(
                    "\ngoneaway: interrupted; healing faults and stopping servers (Ctrl-C again to force)"
                );
                cancel.cancel();
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        });
    }
    let backends: Vec<String> = suites
        .iter()
        .map(|s| s.server.backend.to_string())
        .collect();
    let many = suites.len() > 1;
    if many && !json {
        eprintln!("running {} suites, {} at a time", suites.len(), jobs);
    }
    let limit = Arc::new(tokio::sync::Semaphore::new(jobs));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, suite) in suites.into_iter().enumerate() {
        let (limit, cancel) = (limit.clone(), cancel.clone());
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await.expect("never closed");
            if cancel.is_cancelled() {
                return (
                    i,
                    suite.name.clone(),
                    Err(Error::Harness("not started: interrupted".into())),
                );
            }
            let opts = RunOptions {
                seed,
                cancel,
                pool: None,
            };
            let result = crate::run(&suite, opts).await;
            (i, suite.name.clone(), result)
        });
    }
    let mut results: Vec<(usize, String, Result<Report, Error>)> = Vec::new();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(r) => {
                if many && !json {
                    let status = match &r.2 {
                        Ok(rep) if rep.stable.met => "met".to_string(),
                        Ok(_) => "NOT met".to_string(),
                        Err(_) => "harness error".to_string(),
                    };
                    eprintln!("  finished {:<28} {status}", r.1);
                }
                results.push(r);
            }
            Err(e) => {
                eprintln!("goneaway: a run panicked: {e}");
                return EXIT_HARNESS;
            }
        }
    }
    results.sort_by_key(|r| r.0);
    let mut code = EXIT_OK;
    let mut summary = Vec::new();
    let mut json_reports = Vec::new();
    let mut cases = crate::report::junit::Junit::new();
    for (i, name, result) in results {
        match &result {
            Ok(report) => cases.add_report(report),
            Err(e) => cases.add_error(&name, &backends[i], &e.to_string()),
        };
        match result {
            Ok(report) => {
                let saved = save.as_ref().map(|dir| report.save(dir));
                if json {
                    json_reports.push(serde_json::to_value(&report).expect("reports serialize"));
                } else {
                    println!("{}", report.human());
                }
                if let Some(Err(e)) = &saved {
                    eprintln!("goneaway: could not save the report of {name}: {e}");
                } else if let Some(Ok(path)) = &saved
                    && !json
                {
                    println!("saved     {}\n", path.display());
                }
                if !report.stable.met && code == EXIT_OK {
                    code = EXIT_UNMET;
                }
                summary.push(format!(
                    "{:<28} {:<8} expected {:<8} {}",
                    name,
                    format!("{:?}", report.stable.verdict).to_lowercase(),
                    format!("{:?}", report.stable.expected).to_lowercase(),
                    if report.stable.met { "met" } else { "NOT MET" }
                ));
            }
            Err(e) => {
                eprintln!("goneaway: {name}: {e}");
                summary.push(format!("{name:<28} harness error: {e}"));
                code = EXIT_HARNESS;
            }
        }
    }
    if let Some(path) = &junit
        && let Err(e) = cases.write(path)
    {
        eprintln!("goneaway: could not write {}: {e}", path.display());
        code = EXIT_HARNESS;
    }
    if json {
        let out = if json_reports.len() == 1 {
            json_reports.remove(0)
        } else {
            serde_json::Value::Array(json_reports)
        };
        println!("{}", serde_json::to_string_pretty(&out).expect("json"));
    } else if many {
        println!("summary");
        for line in summary {
            println!("  {line}");
        }
    }
    code
}
