//! `goneaway explore`: its arguments and what it prints. The loop is the library's
//! ([`super::explore`]); this only parses, wires Ctrl-C and maps the result to an exit
//! code.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::{Base, Options, RealRunner, Shard, ShrinkBudget, parse_kinds};
use crate::error::{EXIT_HARNESS, EXIT_OK, EXIT_UNMET};

#[derive(clap::Args, Debug)]
pub struct ExploreArgs {
    /// The base suite (a built-in name or a .toml file): server, pool, workload and
    /// expectations; its own faults are replaced by generated ones.
    pub base: String,
    /// Try this many generated schedules (default 20 when no --budget is given).
    #[arg(long)]
    pub cases: Option<usize>,
    /// Start no new case after this long (`10m`, `90s`).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub budget: Option<Duration>,
    /// Fixes every generated schedule; printed with the command that reproduces the run.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Cases run at once (each has its own server).
    #[arg(long, short = 'j', default_value_t = 1)]
    pub jobs: usize,
    /// Only these fault kinds, comma-separated (`kill,crash,latency`).
    #[arg(long)]
    pub faults: Option<String>,
    /// Most faults in one generated schedule.
    #[arg(long, default_value_t = 3)]
    pub max_faults: usize,
    /// Run only the i-th of n parts of the case list (`2/4`), for a CI matrix.
    #[arg(long, default_value = "1/1")]
    pub shard: Shard,
    /// Extra runs a failure must also fail to be confirmed (else it is flaky).
    #[arg(long, default_value_t = 3)]
    pub confirm: u32,
    /// Start no new case once this many have failed (each failure costs a shrink).
    #[arg(long)]
    pub max_failures: Option<usize>,
    /// Per failure: at most this long and/or this many steps (`5m`, `40`, `5m,40`).
    #[arg(long, default_value = "10m,64")]
    pub shrink_budget: ShrinkBudget,
    /// Write minimal suites here (default: the exploration's own directory).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Explorations live in `<dir>/explore/<base>/`, remembered failures in its
    /// `regressions/`.
    #[arg(long, env = "GONEAWAY_REPORT_DIR", default_value = "goneaway-reports")]
    pub report_dir: PathBuf,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also write JUnit XML: a testcase per confirmed failure (or one passing one).
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,
}

pub async fn command(args: ExploreArgs) -> i32 {
    let base = match Base::resolve(&args.base) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("goneaway: {e}");
            return EXIT_HARNESS;
        }
    };
    let faults = match args.faults.as_deref().map(parse_kinds).transpose() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("goneaway: {e}");
            return EXIT_HARNESS;
        }
    };
    let cancel = crate::cli::cancel_on_ctrl_c(
        "healing faults, stopping servers and reporting what was explored",
    );
    let options = Options {
        seed: args.seed.unwrap_or_else(rand::random),
        cases: args.cases,
        budget: args.budget,
        jobs: args.jobs.max(1),
        faults,
        max_faults: args.max_faults.max(1),
        shard: args.shard,
        confirm: args.confirm,
        max_failures: args.max_failures,
        shrink_steps: args.shrink_budget.steps,
        shrink_time: args.shrink_budget.time,
        report_dir: Some(args.report_dir),
        out: args.out,
        cancel,
        progress: !args.json,
        runner: Arc::new(RealRunner),
    };
    match super::explore(&base, options).await {
        Ok(found) => {
            if let Some(path) = &args.junit
                && let Err(e) = found.junit().write(path)
            {
                eprintln!("goneaway: cannot write {}: {e}", path.display());
                return EXIT_HARNESS;
            }
            if args.json {
                match serde_json::to_string_pretty(&found) {
                    Ok(j) => outln!("{j}"),
                    Err(e) => {
                        eprintln!("goneaway: failed to render the result as JSON: {e}");
                        return EXIT_HARNESS;
                    }
                }
            } else {
                out!("{}", found.human());
            }
            // An interrupted exploration proved less than it was asked to: like an
            // interrupted run, it does not pass.
            if found.ok() && !found.interrupted {
                EXIT_OK
            } else {
                EXIT_UNMET
            }
        }
        Err(e) => {
            eprintln!("goneaway: {e}");
            EXIT_HARNESS
        }
    }
}
