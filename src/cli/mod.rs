//! The command line: argument definitions and what each command prints. The library does
//! the work; this module only chooses, prints and maps outcomes to exit codes.
//!
//! - `args`: the clap definitions;
//! - `run`, `bench`: the two long commands; the short ones are below.

mod args;
mod bench;
mod contract;
mod progress;
mod run;
mod summary;

use clap::Parser;

use crate::error::{EXIT_HARNESS, EXIT_OK, EXIT_UNMET};
use crate::suite::{BUILTIN, Suite};
use args::{Cli, Command};

/// The `goneaway` binary: parse the process's arguments, run the command, return the
/// exit code. Logging goes to stderr, filtered by `GONEAWAY_LOG` or `RUST_LOG`.
pub fn main() -> i32 {
    let cli = Cli::parse();
    // `GONEAWAY_LOG`, else `RUST_LOG` (`RUST_LOG=goneaway=debug` shows each step the
    // harness takes); always to stderr, so `--json` output stays clean.
    let filter = tracing_subscriber::EnvFilter::try_from_env("GONEAWAY_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| "warn,sqlx=error".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("goneaway: cannot start the async runtime: {e}");
            return EXIT_HARNESS;
        }
    };
    let code = runtime.block_on(dispatch(cli));
    // Servers and proxies are dropped inside the runtime; shut it down before exiting.
    drop(runtime);
    code
}

/// Run one command; returns the process exit code.
async fn dispatch(cli: Cli) -> i32 {
    match cli.command {
        Command::List => list(),
        Command::Diff {
            old,
            new,
            json,
            fail_on_drift,
            html,
            thresholds,
        } => diff(
            &old,
            &new,
            json,
            fail_on_drift,
            html.as_deref(),
            &thresholds.thresholds(),
        ),
        Command::Check { suites } => check(&suites).await,
        Command::Render { report, out } => render(&report, out.as_deref()),
        Command::Explore(args) => crate::explore::command::command(args).await,
        Command::Contract(args) => contract::contract(args).await,
        Command::Bench { trials } => bench::bench(trials.max(1)).await,
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
            markdown,
            verbose,
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
            let out = run::Output {
                json,
                junit,
                markdown,
                save: (!no_save).then_some(report_dir),
                verbose,
            };
            run::run(names, seed, backend, out, jobs.max(1)).await
        }
    }
}

fn list() -> i32 {
    let width = BUILTIN.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    let mut rows = Vec::new();
    for (name, _) in BUILTIN {
        match Suite::builtin(name) {
            Ok(s) => {
                let expected = match s.expect.verdict {
                    crate::Expected::Valid => "valid  ",
                    crate::Expected::Invalid => "invalid",
                };
                // The client under test: a real one through an adapter, or sqlx.
                let client = s.client.as_ref().map_or("sqlx".into(), |c| c.to_string());
                rows.push((name, expected, client, s.description));
            }
            Err(e) => {
                eprintln!("goneaway: {e}");
                return EXIT_HARNESS;
            }
        }
    }
    let cw = rows.iter().map(|r| r.2.len()).max().unwrap_or(0);
    for (name, expected, client, description) in rows {
        outln!("{name:<width$}  {expected}  {client:<cw$}  {description}");
    }
    EXIT_OK
}

fn diff(
    old: &std::path::Path,
    new: &std::path::Path,
    json: bool,
    fail_on_drift: bool,
    html: Option<&std::path::Path>,
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
        outln!("{}", serde_json::to_string_pretty(&set).expect("json"));
    } else {
        out!("{}", set.human());
    }
    if let Some(path) = html {
        let pairs = pairs(&o, &n);
        let title = format!("goneaway diff: {ol} → {nl}");
        let page = crate::report::html_diff(&title, &set.human(), &pairs);
        if let Err(e) = std::fs::write(path, page) {
            eprintln!("goneaway: diff: cannot write {}: {e}", path.display());
            return EXIT_HARNESS;
        }
        if json {
            eprintln!("timeline  {}", path.display());
        } else {
            outln!("timeline  {}", path.display());
        }
    }
    if set.changed() || (fail_on_drift && set.drift()) {
        EXIT_UNMET
    } else {
        EXIT_OK
    }
}

/// The reports of the suites found on both sides, old and new, by suite name (one
/// report on each side is one pair whatever its name).
fn pairs<'a>(
    old: &'a crate::report::diff::Loaded,
    new: &'a crate::report::diff::Loaded,
) -> Vec<crate::report::HtmlPair<'a>> {
    use crate::report::diff::Loaded;
    let all = |l: &'a Loaded| -> Vec<&'a crate::Report> {
        match l {
            Loaded::One(_, r) => vec![r.as_ref()],
            Loaded::Many(m) => m.values().map(|(_, r)| r).collect(),
        }
    };
    let (o, n) = (all(old), all(new));
    if let ([o], [n]) = (o.as_slice(), n.as_slice()) {
        return vec![crate::report::HtmlPair { old: o, new: n }];
    }
    o.iter()
        .filter_map(|o| {
            n.iter()
                .find(|n| n.stable.suite == o.stable.suite)
                .map(|n| crate::report::HtmlPair { old: o, new: n })
        })
        .collect()
}

/// Redraw saved reports' pages; prints each page's path.
fn render(path: &std::path::Path, out: Option<&std::path::Path>) -> i32 {
    use crate::report::diff::{Loaded, load};
    let found: Vec<(std::path::PathBuf, crate::Report)> = match load(path) {
        Ok(Loaded::One(file, report)) => vec![(file, *report)],
        Ok(Loaded::Many(many)) => many.into_values().collect(),
        Err(e) => {
            eprintln!("goneaway: render: {e}");
            return EXIT_HARNESS;
        }
    };
    if out.is_some() && found.len() > 1 {
        eprintln!(
            "goneaway: render: {} holds {} reports; --out takes one (name a suite's directory)",
            path.display(),
            found.len()
        );
        return EXIT_HARNESS;
    }
    for (file, report) in found {
        let target = match out {
            Some(o) => o.to_path_buf(),
            None => file.with_file_name(crate::report::HTML_FILE),
        };
        if let Err(e) = std::fs::write(&target, report.html()) {
            eprintln!("goneaway: render: cannot write {}: {e}", target.display());
            return EXIT_HARNESS;
        }
        if report.timeline.is_none() {
            eprintln!(
                "goneaway: render: {} has no timeline.json beside it (saved before timelines were recorded): the page has its summary only",
                file.display()
            );
        }
        outln!("{}", target.display());
    }
    EXIT_OK
}

async fn gc() -> i32 {
    let dirs = crate::server::process::sweep_stale_dirs();
    outln!("removed {} temp dir(s) of dead goneaway runs", dirs.len());
    for dir in &dirs {
        outln!("  {}", dir.display());
    }
    // Settings and tables that killed runs left on servers the user owns.
    let mut code = EXIT_OK;
    for replayed in crate::server::replay_orphans(None).await {
        match replayed {
            Ok(r) => outln!(
                "put back {} change(s) a dead goneaway run made on {}",
                r.statements,
                r.server
            ),
            Err(e) => {
                eprintln!("goneaway: gc: {e}");
                code = EXIT_HARNESS;
            }
        }
    }
    code.max(docker_gc().await)
}

#[cfg(not(feature = "docker"))]
async fn docker_gc() -> i32 {
    outln!("no containers to look for: this goneaway is built without its `docker` feature");
    EXIT_OK
}

#[cfg(feature = "docker")]
async fn docker_gc() -> i32 {
    match crate::server::docker::gc().await {
        Ok(r) => {
            outln!(
                "removed {} container(s) and {} network(s) of dead goneaway runs; kept {} of live ones",
                r.containers.len(),
                r.networks.len(),
                r.kept
            );
            for name in r.containers.iter().chain(&r.networks) {
                outln!("  {name}");
            }
            EXIT_OK
        }
        Err(e) => {
            eprintln!("goneaway: gc: {e}");
            EXIT_HARNESS
        }
    }
}

async fn check(names: &[String]) -> i32 {
    let mut code = EXIT_OK;
    for name in names {
        match Suite::resolve(name) {
            Ok(s) => {
                outln!(
                    "{}: ok ({} fault(s), expects {:?})",
                    s.origin,
                    s.faults.len(),
                    s.expect.verdict
                );
                for w in s.warnings() {
                    outln!("  warn {}: {}", w.rule, w.message);
                }
                // A real client is asked what it builds; nothing connects to a server.
                let (pool, mut lints) = match &s.client {
                    Some(crate::client::ClientSpec {
                        kind: crate::client::ClientKind::MysqlAsync(words),
                        ..
                    }) => match crate::pool::mysql_async::preview(words) {
                        Ok(settings) => {
                            outln!(
                                "  pool mysql_async {} {settings} (read back from the options it is built from)",
                                crate::pool::mysql_async::VERSION
                            );
                            (Some(settings.pool_spec()), vec![])
                        }
                        Err(e) => {
                            eprintln!("{}: {e}", s.origin);
                            code = EXIT_HARNESS;
                            continue;
                        }
                    },
                    Some(c) => match crate::client::preview(c, s.pool.as_ref()).await {
                        Ok((pool, lint)) => (pool, lint.into_iter().collect()),
                        Err(e) => {
                            eprintln!("{}: {e}", s.origin);
                            code = EXIT_HARNESS;
                            continue;
                        }
                    },
                    None => (s.pool.clone(), vec![]),
                };
                if let Some(pool) = &pool {
                    lints.extend(crate::lint::lint(pool, &s.server, &s.workload, &s.faults));
                }
                for l in lints {
                    let p = l
                        .predicts
                        .map_or(String::new(), |p| format!(" -> predicts {}", p.class));
                    outln!("  lint {}: {}{p}", l.rule, l.message);
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

/// A token cancelled by the first Ctrl-C (the run then heals, cleans up and reports,
/// doing `what`); a second Ctrl-C exits at once.
pub(crate) fn cancel_on_ctrl_c(what: &'static str) -> tokio_util::sync::CancellationToken {
    let cancel = tokio_util::sync::CancellationToken::new();
    let token = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\ngoneaway: interrupted; {what} (Ctrl-C again to force)");
            token.cancel();
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
    cancel
}

/// Markdown for a CI page: to `path` when asked (`for_file` is given its directory, for
/// links relative to it), and appended to the GitHub Actions job summary whenever
/// `GITHUB_STEP_SUMMARY` names one. Each is tried; the first failure is returned.
pub(crate) fn write_markdown(
    path: Option<&std::path::Path>,
    for_file: impl FnOnce(&std::path::Path) -> String,
    for_step: impl FnOnce() -> String,
) -> Result<(), String> {
    let mut result = Ok(());
    if let Some(path) = path {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        let md = for_file(dir);
        result = std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(path, md))
            .map_err(|e| format!("could not write {}: {e}", path.display()));
    }
    if let Some(step) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|v| !v.is_empty()) {
        let step = std::path::PathBuf::from(step);
        use std::io::Write;
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&step)
            .and_then(|mut f| f.write_all(format!("{}\n", for_step()).as_bytes()))
            .map_err(|e| {
                format!(
                    "could not append to GITHUB_STEP_SUMMARY ({}): {e}",
                    step.display()
                )
            });
        result = result.and(appended);
    }
    result
}
