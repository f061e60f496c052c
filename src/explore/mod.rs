//! Explore: generate fault schedules for a base suite, run each against a real server,
//! confirm what breaks the expectations by running it again, shrink it to the smallest
//! schedule that still breaks them every time, and write that out as an ordinary suite.
//!
//! The order of work: remembered failures of this base first (`regressions/`), then the
//! generated cases, `jobs` at a time, until `cases` or `budget` runs out; then each
//! failure in turn is confirmed (`confirm` more runs, all must fail, or it is flaky and
//! left alone) and shrunk (every step a confirmed real run, within the shrink budget).
//! A case that only fails because something proved nothing (an `unknown` finding: a
//! generated fault that touched nothing) is inconclusive, never a failure.

pub mod command;
pub mod error;
mod render;
pub mod runner;
pub mod strategy;
pub mod write;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use proptest::strategy::ValueTree;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::history::FaultKind;
use crate::progress::Lines;
use crate::schedule::FaultSpec;
use crate::suite::{BUILTIN, Suite};

pub use error::ExploreError;
pub use runner::{CaseRunner, Outcome, RealRunner};
pub use strategy::Shard;

/// How many cases when neither a count nor a budget is given.
pub const DEFAULT_CASES: usize = 20;

/// A suite to explore around: its checked form and its text without faults, which every
/// case reuses word for word.
#[derive(Debug, Clone)]
pub struct Base {
    pub suite: Suite,
    /// How the user named it (a built-in name or a path), for the reproduce command.
    pub arg: String,
    rest: String,
}

impl Base {
    /// A path, or a built-in name.
    pub fn resolve(name_or_path: &str) -> Result<Base, ExploreError> {
        Base::from_suite(Suite::resolve(name_or_path)?)
    }

    /// A loaded suite; its text is read again from where it came from.
    pub fn from_suite(suite: Suite) -> Result<Base, ExploreError> {
        let text = match suite.origin.strip_prefix("builtin:") {
            Some(name) => BUILTIN
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, t)| t.to_string())
                .ok_or_else(|| ExploreError::Base {
                    base: suite.origin.clone(),
                    why: "no such built-in suite".into(),
                })?,
            None => {
                std::fs::read_to_string(&suite.origin).map_err(|source| ExploreError::Read {
                    path: PathBuf::from(&suite.origin),
                    source,
                })?
            }
        };
        Base::from_text(suite, &text)
    }

    /// A suite and the text it was read from. Checked at once with no faults at all, so
    /// a base whose expectations name its own faults (`windows`) is refused before any
    /// server starts.
    pub fn from_text(suite: Suite, text: &str) -> Result<Base, ExploreError> {
        let arg = suite
            .origin
            .strip_prefix("builtin:")
            .unwrap_or(&suite.origin)
            .to_string();
        let base = Base {
            rest: write::split(text).rest,
            suite,
            arg,
        };
        base.case("", 0, "").map_err(|e| ExploreError::Base {
            base: base.arg.clone(),
            why: format!("without its own faults it is not a suite: {e}"),
        })?;
        Ok(base)
    }

    /// The suite of one case: the base with these `[[fault]]` tables, and its text.
    fn case(&self, comment: &str, seed: u64, faults: &str) -> Result<(Suite, String), Error> {
        let text = write::suite_text(comment, seed, &self.rest, faults);
        let suite = Suite::from_toml(&text, &format!("explore:{}", self.arg), &self.suite.name)?;
        Ok((suite, text))
    }
}

/// How to explore.
pub struct Options {
    /// Fixes every generated case; printed in the reproduce command.
    pub seed: u64,
    /// At most this many cases (of the unsharded sequence).
    pub cases: Option<usize>,
    /// Start no case after this long.
    pub budget: Option<Duration>,
    /// Runs at once (each has its own server).
    pub jobs: usize,
    /// Only these kinds; `None`: every kind the backend can do.
    pub faults: Option<Vec<FaultKind>>,
    /// Most faults in one generated schedule.
    pub max_faults: usize,
    pub shard: Shard,
    /// Extra runs a failure must also fail to count.
    pub confirm: u32,
    /// Start no new case once this many have failed: each failure costs a shrink.
    pub max_failures: Option<usize>,
    /// Shrinking stops after this many steps or this long, per failure.
    pub shrink_steps: Option<u32>,
    pub shrink_time: Option<Duration>,
    /// Where explorations and their regressions live (`<dir>/explore/<base>/`); `None`
    /// writes nothing and replays nothing.
    pub report_dir: Option<PathBuf>,
    /// Write minimal suites here instead of the exploration's own directory.
    pub out: Option<PathBuf>,
    /// Cancel to stop: running cases heal and stop, what was explored is reported.
    pub cancel: CancellationToken,
    /// Show progress: a line per running case and a total line (only when stderr is a
    /// terminal and `CI` is unset).
    pub progress: bool,
    /// Runs one case; [`RealRunner`] unless a test stands in.
    pub runner: Arc<dyn CaseRunner>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            seed: rand::random(),
            cases: None,
            budget: None,
            jobs: 1,
            faults: None,
            max_faults: 3,
            shard: Shard::ALL,
            confirm: 3,
            max_failures: None,
            shrink_steps: Some(64),
            shrink_time: Some(Duration::from_secs(600)),
            report_dir: None,
            out: None,
            cancel: CancellationToken::new(),
            progress: false,
            runner: Arc::new(RealRunner),
        }
    }
}

/// How long shrinking one failure may take: a time, a number of steps, or both
/// (`5m`, `40`, `5m,40`); whichever runs out first stops it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ShrinkBudget {
    pub time: Option<Duration>,
    pub steps: Option<u32>,
}

impl std::str::FromStr for ShrinkBudget {
    type Err = String;

    fn from_str(s: &str) -> Result<ShrinkBudget, String> {
        let mut b = ShrinkBudget::default();
        for part in s.split(',').map(str::trim) {
            if let Ok(n) = part.parse::<u32>() {
                b.steps = Some(n);
            } else if let Ok(d) = humantime::parse_duration(part) {
                b.time = Some(d);
            } else {
                return Err(format!(
                    "shrink budget `{part}`: expected a duration (5m), a number of steps (40), or both (5m,40)"
                ));
            }
        }
        Ok(b)
    }
}

/// `kill,crash,latency` -> kinds.
pub fn parse_kinds(list: &str) -> Result<Vec<FaultKind>, ExploreError> {
    let known = || {
        strategy::GENERATED
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|name| {
            strategy::GENERATED
                .iter()
                .copied()
                .find(|k| k.name() == name)
                .ok_or_else(|| ExploreError::UnknownKind(name.to_string(), known()))
        })
        .collect()
}

/// What an exploration found.
#[derive(Debug, Clone, Serialize)]
pub struct Exploration {
    pub base: String,
    pub seed: u64,
    /// `i/n`.
    pub shard: String,
    pub alphabet: Vec<String>,
    /// Generated cases run (replays not counted).
    pub cases: usize,
    /// Remembered failures replayed first.
    pub replayed: usize,
    pub passed: usize,
    pub confirmed: Vec<Confirmed>,
    pub flaky: Vec<Flaky>,
    pub inconclusive: Vec<Inconclusive>,
    /// Stopped by Ctrl-C (or the caller's cancel) before it was done.
    pub interrupted: bool,
    #[serde(with = "humantime_serde")]
    pub elapsed: Duration,
    /// The command that explores exactly these cases again.
    pub reproduce: String,
    /// Where this exploration wrote its suites.
    pub dir: Option<PathBuf>,
}

impl Exploration {
    /// No case broke the expectations (flaky and inconclusive cases are reported, not
    /// failures).
    pub fn ok(&self) -> bool {
        self.confirmed.is_empty()
    }

    /// JUnit XML for CI: a failing testcase per confirmed failure (its unmet reasons,
    /// minimal schedule and written suite), or one passing testcase for the exploration.
    pub fn junit(&self) -> crate::report::junit::Junit {
        let mut j = crate::report::junit::Junit::new();
        let common = [
            ("seed", self.seed.to_string()),
            ("reproduce", self.reproduce.clone()),
        ];
        if self.confirmed.is_empty() {
            j.add_explored(&format!("{} exploration", self.base), None, &common);
        }
        for (k, c) in self.confirmed.iter().enumerate() {
            let body = format!(
                "minimal schedule:\n  {}\nfailed checks: {}\nsuite: {}\n\n{}",
                c.schedule.join("\n  "),
                c.checks.join(", "),
                c.path
                    .as_ref()
                    .map_or("(not written)".into(), |p| p.display().to_string()),
                c.text
            );
            let mut props = common.to_vec();
            props.push(("run_seed", c.run_seed.to_string()));
            j.add_explored(
                &format!("{} minimal-{}", self.base, k + 1),
                Some((&c.unmet.join("; "), &body)),
                &props,
            );
        }
        j
    }
}

/// A failure that happened every time it was run, shrunk.
#[derive(Debug, Clone, Serialize)]
pub struct Confirmed {
    /// `case 17`, or `regression <file>`.
    pub case: String,
    /// The seed each of its runs used (written into its suite).
    pub run_seed: u64,
    /// The minimal schedule, in words.
    pub schedule: Vec<String>,
    #[serde(skip)]
    pub faults: Vec<FaultSpec>,
    /// Faults in the schedule as first generated.
    pub found_with: usize,
    /// Real runs shrinking took (each a candidate schedule).
    pub shrink_steps: u32,
    /// How many times the minimal schedule was run, all failing.
    pub runs: u32,
    /// Checks that came out invalid in its last run.
    pub checks: Vec<String>,
    pub unmet: Vec<String>,
    /// The suite file written for it.
    pub path: Option<PathBuf>,
    /// That file's text.
    #[serde(skip)]
    pub text: String,
}

/// A case that failed some of its runs but not all: reported, never shrunk.
#[derive(Debug, Clone, Serialize)]
pub struct Flaky {
    pub case: String,
    pub run_seed: u64,
    pub schedule: Vec<String>,
    pub failed: u32,
    pub runs: u32,
}

/// A case whose run proved nothing (its only unmet reasons are `unknown` findings).
#[derive(Debug, Clone, Serialize)]
pub struct Inconclusive {
    pub case: String,
    pub schedule: Vec<String>,
    /// Why it proved nothing.
    pub unmet: Vec<String>,
}

/// One case ready to run.
struct Case {
    label: String,
    /// Its name on a progress line: the label, a replay by its file name only.
    tag: String,
    /// Its index in the generated sequence; `None` for a replay.
    index: Option<usize>,
    seed: u64,
    faults: Vec<FaultSpec>,
    suite: Suite,
}

/// Explore around `base`. Failures come back in [`Exploration::confirmed`]; `Err` is for
/// an exploration that could not be done (a bad base, a harness error, a file not
/// written).
pub async fn explore(base: &Base, options: Options) -> Result<Exploration, ExploreError> {
    Explorer::new(base, options)?.go().await
}

struct Explorer<'b> {
    base: &'b Base,
    o: Options,
    alphabet: Vec<FaultKind>,
    started: Instant,
    /// `<report_dir>/explore/<base>`.
    home: Option<PathBuf>,
    dir: Option<PathBuf>,
    /// A line per running case above the status line, only on a terminal outside CI.
    progress: Option<Lines>,
}

impl<'b> Explorer<'b> {
    fn new(base: &'b Base, o: Options) -> Result<Explorer<'b>, ExploreError> {
        let backend = base.suite.server.backend;
        let alphabet = strategy::alphabet(backend, o.faults.as_deref());
        if alphabet.is_empty() {
            return Err(ExploreError::EmptyAlphabet {
                backend: backend.to_string(),
                asked: o
                    .faults
                    .iter()
                    .flatten()
                    .map(|k| k.name())
                    .collect::<Vec<_>>()
                    .join(","),
                known: strategy::GENERATED.map(|k| k.name()).join(", "),
            });
        }
        let home = o
            .report_dir
            .as_ref()
            .map(|d| d.join("explore").join(&base.suite.name));
        let stamp = humantime::format_rfc3339_seconds(SystemTime::now())
            .to_string()
            .replace(':', "");
        let dir = o.out.clone().or_else(|| {
            home.as_ref()
                .map(|h| h.join(format!("{stamp}-seed{}", o.seed)))
        });
        // Wide enough for a confirmation's label, so most phases line up.
        let width = format!(
            "case {} confirm {}/{}",
            o.cases.unwrap_or(99),
            o.confirm,
            o.confirm
        )
        .len();
        Ok(Explorer {
            base,
            progress: o
                .progress
                .then(|| Lines::new(width))
                .flatten()
                .map(with_status),
            o,
            alphabet,
            started: Instant::now(),
            home,
            dir,
        })
    }

    fn reproduce(&self) -> String {
        let mut cmd = format!("goneaway explore {} --seed {}", self.base.arg, self.o.seed);
        match (self.o.cases, self.o.budget) {
            (Some(n), _) => cmd.push_str(&format!(" --cases {n}")),
            (None, Some(b)) => {
                cmd.push_str(&format!(" --budget {}", humantime::format_duration(b)))
            }
            (None, None) => {}
        }
        if let Some(f) = &self.o.faults {
            let names: Vec<&str> = f.iter().map(|k| k.name()).collect();
            cmd.push_str(&format!(" --faults {}", names.join(",")));
        }
        if self.o.shard != Shard::ALL {
            cmd.push_str(&format!(
                " --shard {}/{}",
                self.o.shard.index, self.o.shard.count
            ));
        }
        if self.o.confirm != 3 {
            cmd.push_str(&format!(" --confirm {}", self.o.confirm));
        }
        if let Some(m) = self.o.max_failures {
            cmd.push_str(&format!(" --max-failures {m}"));
        }
        if self.o.max_faults != 3 {
            cmd.push_str(&format!(" --max-faults {}", self.o.max_faults));
        }
        cmd
    }

    fn out_of_time(&self) -> bool {
        self.o.cancel.is_cancelled() || self.o.budget.is_some_and(|b| self.started.elapsed() >= b)
    }

    fn show(&self, line: &str) {
        if let Some(bar) = self.progress.as_ref().and_then(Lines::total) {
            bar.set_message(line.to_string());
        }
    }

    /// The seed of the runs of generated case `index`: each case its own, all from the
    /// exploration's.
    fn run_seed(&self, index: usize) -> u64 {
        self.o.seed.wrapping_add(index as u64)
    }

    fn generated(&self, index: usize, faults: Vec<FaultSpec>) -> Result<Case, ExploreError> {
        let seed = self.run_seed(index);
        let (suite, _) = self
            .base
            .case("", seed, &write::fault_tables(&faults))
            .map_err(|source| ExploreError::Run {
                case: format!("case {index}"),
                source,
            })?;
        Ok(Case {
            label: format!("case {index}"),
            tag: format!("case {index}"),
            index: Some(index),
            seed,
            faults,
            suite,
        })
    }

    /// Remembered failures of this base, by file name.
    fn replays(&self) -> Result<Vec<Case>, ExploreError> {
        let Some(dir) = self.home.as_ref().map(|h| h.join("regressions")) else {
            return Ok(vec![]);
        };
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Ok(vec![]);
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        let mut cases = Vec::new();
        for path in paths {
            let text = std::fs::read_to_string(&path).map_err(|source| ExploreError::Read {
                path: path.clone(),
                source,
            })?;
            // Its faults and seed, on today's base: a fixed pool should pass them.
            let old = Suite::from_toml(&text, &path.display().to_string(), "regression")?;
            let seed = old.seed.unwrap_or(self.o.seed);
            let label = format!("regression {}", path.display());
            let (suite, _) = self
                .base
                .case("", seed, &write::split(&text).faults)
                .map_err(|source| ExploreError::Run {
                    case: label.clone(),
                    source,
                })?;
            let file = path.file_name().unwrap_or_default().to_string_lossy();
            cases.push(Case {
                tag: format!("regression {file}"),
                label,
                index: None,
                seed,
                faults: old.faults,
                suite,
            });
        }
        Ok(cases)
    }

    /// Run `case` once; on a terminal its line, labelled `what`, shows the run's phase.
    async fn run_once(&self, case: &Case, what: &str) -> Result<Outcome, ExploreError> {
        let (_line, observer) = match &self.progress {
            Some(lines) => {
                let (line, observer) = lines.line(what, case.suite.workload.duration);
                (Some(line), Some(observer))
            }
            None => (None, None),
        };
        self.o
            .runner
            .run(&case.suite, case.seed, self.o.cancel.clone(), observer)
            .await
            .map_err(|source| ExploreError::Run {
                case: case.label.clone(),
                source,
            })
    }

    /// Run `case` `n` more times, `jobs` at once, labelled `what k/n`; how many failed,
    /// and the last failure.
    async fn rerun(
        &self,
        case: &Case,
        n: u32,
        what: &str,
    ) -> Result<(u32, Option<Outcome>), ExploreError> {
        let mut runs = futures::stream::iter(1..=n)
            .map(|k| async move { self.run_once(case, &format!("{what} {k}/{n}")).await })
            .buffer_unordered(self.o.jobs.max(1));
        let (mut failed, mut last) = (0, None);
        while let Some(out) = runs.next().await {
            let out = out?;
            if out.failed() {
                failed += 1;
                last = Some(out);
            }
        }
        Ok((failed, last))
    }

    async fn go(self) -> Result<Exploration, ExploreError> {
        let replays = self.replays()?;
        let replayed = replays.len();
        let strategy = strategy::schedules(
            &self.alphabet,
            self.o.max_faults,
            strategy::Geometry::for_workload(self.base.suite.workload.duration),
        );
        let limit = match (self.o.cases, self.o.budget) {
            (None, None) => Some(DEFAULT_CASES),
            (n, _) => n,
        };
        let mut generator = strategy::Cases::new(strategy, self.o.seed, self.o.shard);
        let mut queue = replays.into_iter();
        let mut trees: HashMap<usize, Box<dyn ValueTree<Value = Vec<FaultSpec>>>> = HashMap::new();
        let mut failed: Vec<(Case, Outcome)> = Vec::new();
        let (mut cases, mut passed, mut interrupted) = (0, 0, false);
        let mut inconclusive = Vec::new();
        let total = limit.map(|n| (0..n).filter(|i| self.o.shard.keeps(*i)).count() + replayed);

        // Phase 1: every case once, `jobs` at a time.
        let mut running: FuturesUnordered<BoxFuture<'_, (Case, Result<Outcome, ExploreError>)>> =
            FuturesUnordered::new();
        let mut exhausted = false;
        let mut done = 0usize;
        // The running cases borrow the explorer; `self` itself is still owned here.
        let this = &self;
        loop {
            let enough = self.o.max_failures.is_some_and(|m| failed.len() >= m);
            while !exhausted && !enough && running.len() < self.o.jobs.max(1) && !self.out_of_time()
            {
                let case = match queue.next() {
                    Some(c) => c,
                    None => {
                        let g = generator.next().expect("the generator never ends");
                        if limit.is_some_and(|n| g.index >= n) {
                            exhausted = true;
                            break;
                        }
                        let case = self.generated(g.index, g.tree.current())?;
                        trees.insert(g.index, g.tree);
                        case
                    }
                };
                running.push(Box::pin(async move {
                    let out = this.run_once(&case, &case.tag).await;
                    (case, out)
                }));
            }
            let total_s = total.map_or("?".to_string(), |t| t.to_string());
            self.show(&format!(
                "explore {}: case {done}/{total_s}, {} failed so far",
                self.base.arg,
                failed.len()
            ));
            let Some((case, out)) = running.next().await else {
                break;
            };
            done += 1;
            let out = out?;
            // A run cut short by Ctrl-C explored nothing: it is not counted as a case.
            if case.index.is_some() && out != Outcome::Interrupted {
                cases += 1;
            }
            match out {
                Outcome::Met => {
                    passed += 1;
                    case.index.map(|i| trees.remove(&i));
                }
                Outcome::Inconclusive { unmet } => {
                    inconclusive.push(Inconclusive {
                        case: case.label.clone(),
                        schedule: case.faults.iter().map(write::describe).collect(),
                        unmet,
                    });
                    case.index.map(|i| trees.remove(&i));
                }
                Outcome::Interrupted => interrupted = true,
                out @ Outcome::Failed { .. } => {
                    failed.push((case, out));
                }
            }
        }
        drop(running);

        // Phase 2: confirm each failure, shrink the confirmed ones.
        failed.sort_by_key(|(c, _)| c.index.map_or(0, |i| i + 1));
        let mut confirmed = Vec::new();
        let mut flaky = Vec::new();
        for (case, first) in failed {
            if self.o.cancel.is_cancelled() {
                interrupted = true;
                break;
            }
            self.show(&format!(
                "explore {}: confirming {}",
                self.base.arg, case.label
            ));
            let what = format!("{} confirm", case.tag);
            let (again, last) = self.rerun(&case, self.o.confirm, &what).await?;
            let runs = self.o.confirm + 1;
            if self.o.cancel.is_cancelled() {
                interrupted = true;
                break;
            }
            if again < self.o.confirm {
                flaky.push(Flaky {
                    case: case.label.clone(),
                    run_seed: case.seed,
                    schedule: case.faults.iter().map(write::describe).collect(),
                    failed: again + 1,
                    runs,
                });
                continue;
            }
            let last = last.unwrap_or(first);
            let tree = case.index.and_then(|i| trees.remove(&i));
            let found = self.shrink(case, last, tree).await?;
            confirmed.push(found);
        }
        if let Some(lines) = &self.progress {
            lines.finish();
        }
        interrupted |= self.o.cancel.is_cancelled();
        // Number the written files in the order they are reported.
        for (k, c) in confirmed.iter_mut().enumerate() {
            self.save(k + 1, c)?;
        }
        Ok(Exploration {
            base: self.base.arg.clone(),
            seed: self.o.seed,
            shard: format!("{}/{}", self.o.shard.index, self.o.shard.count),
            alphabet: self.alphabet.iter().map(|k| k.name().to_string()).collect(),
            cases,
            replayed,
            passed,
            confirmed,
            flaky,
            inconclusive,
            interrupted,
            elapsed: self.started.elapsed(),
            reproduce: self.reproduce(),
            dir: self.dir.clone(),
        })
    }

    /// Whether `case` still fails every time: once, and if it did, `confirm` more; its
    /// runs are labelled `what`.
    async fn still_fails(&self, case: &Case, what: &str) -> Result<Option<Outcome>, ExploreError> {
        let first = self.run_once(case, what).await?;
        if !first.failed() {
            return Ok(None);
        }
        let confirm = format!("{what} confirm");
        let (again, last) = self.rerun(case, self.o.confirm, &confirm).await?;
        Ok((again == self.o.confirm).then(|| last.unwrap_or(first)))
    }

    /// proptest's own search: simplify while it still fails, complicate when a step went
    /// too far, stop when neither moves (or the shrink budget is spent). Every step is a
    /// real, confirmed run; the result is the last schedule that failed every time.
    async fn shrink(
        &self,
        mut best: Case,
        mut outcome: Outcome,
        tree: Option<Box<dyn ValueTree<Value = Vec<FaultSpec>>>>,
    ) -> Result<Confirmed, ExploreError> {
        let found_with = best.faults.len();
        let mut steps = 0u32;
        if let Some(mut tree) = tree {
            let index = best.index.expect("only generated cases have trees");
            let started = Instant::now();
            let mut more = tree.simplify();
            while more {
                let spent = self.o.shrink_steps.is_some_and(|n| steps >= n)
                    || self.o.shrink_time.is_some_and(|t| started.elapsed() >= t)
                    || self.o.cancel.is_cancelled();
                if spent {
                    break;
                }
                steps += 1;
                let candidate = self.generated(index, tree.current())?;
                self.show(&format!(
                    "explore {}: shrinking {}, step {steps}, {} fault(s)",
                    self.base.arg,
                    best.label,
                    candidate.faults.len()
                ));
                let what = format!("{} shrink step {steps}", best.tag);
                match self.still_fails(&candidate, &what).await? {
                    Some(out) => {
                        best = candidate;
                        outcome = out;
                        more = tree.simplify();
                    }
                    None => more = tree.complicate(),
                }
            }
        }
        let (checks, unmet) = match outcome {
            Outcome::Failed { checks, unmet } => (checks, unmet),
            _ => unreachable!("only failures are shrunk"),
        };
        Ok(Confirmed {
            case: best.label.clone(),
            run_seed: best.seed,
            schedule: best.faults.iter().map(write::describe).collect(),
            found_with,
            shrink_steps: steps,
            runs: self.o.confirm + 1,
            checks,
            unmet,
            path: None,
            text: String::new(),
            faults: best.faults,
        })
    }

    /// Render a confirmed failure as a suite; write it as `minimal-<k>.toml` and, when
    /// it is new, remember it in `regressions/` for the next exploration of this base.
    fn save(&self, k: usize, c: &mut Confirmed) -> Result<(), ExploreError> {
        let checks = if c.checks.is_empty() {
            "none invalid (an expectation of the base was not met)".to_string()
        } else {
            c.checks.join(", ")
        };
        let comment = format!(
            "Found by goneaway explore: base {}, exploration seed {}, {}, run seed {}.\n\
             Shrunk from {} fault(s) in {} step(s); the schedule below failed {}/{} runs.\n\
             Failed checks: {checks}.\n\
             Reproduce: goneaway run <this file>\n\
             Explore again: {}\n",
            self.base.arg,
            self.o.seed,
            c.case,
            c.run_seed,
            c.found_with,
            c.shrink_steps,
            c.runs,
            c.runs,
            self.reproduce(),
        );
        let (_, text) = self
            .base
            .case(&comment, c.run_seed, &write::fault_tables(&c.faults))
            .map_err(|source| ExploreError::Run {
                case: c.case.clone(),
                source,
            })?;
        c.text = text;
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        let path = dir.join(format!("minimal-{k}.toml"));
        write_file(&path, &c.text)?;
        c.path = Some(path);
        if let (Some(home), false) = (&self.home, c.case.starts_with("regression")) {
            let name = format!("seed{}-{}.toml", self.o.seed, c.case.replace(' ', ""));
            write_file(&home.join("regressions").join(name), &c.text)?;
        }
        Ok(())
    }
}

/// The exploration's status line under the cases' lines: its spinner and words.
fn with_status(mut lines: Lines) -> Lines {
    let bar = lines.set_total(indicatif::ProgressBar::new_spinner());
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner:.green} {msg} [{elapsed}]")
            .expect("a valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    lines
}

fn write_file(path: &Path, text: &str) -> Result<(), ExploreError> {
    let err = |source| ExploreError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    std::fs::write(path, text).map_err(err)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::run::{Observer, Step};

    const BASE: &str = r#"description = "a stand-in base for progress lines"

[server]
wait_timeout = "2s"

[pool]
max_connections = 4

[workload]
workers = 2
duration = "6s"

[expect]
verdict = "valid"
"#;

    fn base() -> Base {
        let suite = Suite::from_toml(BASE, "watched.toml", "watched").unwrap();
        Base::from_text(suite, BASE).unwrap()
    }

    /// Stands in for every run: tells its observer, if it got one, that a fault is
    /// active, notes what the progress lines said then, and fails every run of `case 0`.
    struct Watched {
        lines: Lines,
        fails: u64,
        /// Per run: whether it got an observer, and the lines shown during it.
        seen: Mutex<Vec<(bool, Vec<String>)>>,
    }

    impl CaseRunner for Watched {
        fn run<'a>(
            &'a self,
            suite: &'a Suite,
            seed: u64,
            _cancel: CancellationToken,
            observer: Option<Observer>,
        ) -> BoxFuture<'a, Result<Outcome, Error>> {
            if let Some(o) = &observer {
                o.tell(Step::Running {
                    expected: suite.workload.duration,
                });
                o.tell(Step::FaultActive {
                    name: "kill".into(),
                });
            }
            let shown = self.lines.shown();
            self.seen.lock().unwrap().push((observer.is_some(), shown));
            let out = if seed == self.fails {
                Outcome::Failed {
                    checks: vec!["errors".into()],
                    unmet: vec!["errors: a stand-in failure".into()],
                }
            } else {
                Outcome::Met
            };
            Box::pin(async move { Ok(out) })
        }
    }

    fn watched(lines: Lines, seed: u64) -> (Arc<Watched>, Options) {
        let runner = Arc::new(Watched {
            lines,
            fails: seed,
            seen: Mutex::default(),
        });
        let options = Options {
            seed,
            cases: Some(2),
            faults: Some(vec![FaultKind::Kill, FaultKind::Latency]),
            confirm: 2,
            shrink_steps: Some(2),
            runner: runner.clone(),
            ..Options::default()
        };
        (runner, options)
    }

    #[tokio::test]
    async fn every_run_of_a_case_gets_its_own_labelled_line() {
        let lines = Lines::hidden(20);
        let (runner, options) = watched(lines.clone(), 7);
        let base = base();
        let mut explorer = Explorer::new(&base, options).unwrap();
        explorer.progress = Some(with_status(lines.clone()));
        let found = explorer.go().await.unwrap();
        assert_eq!(found.confirmed.len(), 1, "{}", found.human());
        // Shrinking ran, so its lines are in what follows.
        assert_eq!(found.confirmed[0].shrink_steps, 2);

        let line = |label: String| (true, vec![format!("{label} fault `kill` active (of 6s)")]);
        let mut want: Vec<_> = [
            "case 0",
            "case 1",
            "case 0 confirm 1/2",
            "case 0 confirm 2/2",
        ]
        .map(|l| line(l.to_string()))
        .into();
        for step in 1..=found.confirmed[0].shrink_steps {
            want.push(line(format!("case 0 shrink step {step}")));
            for k in 1..=2 {
                want.push(line(format!("case 0 shrink step {step} confirm {k}/2")));
            }
        }
        assert_eq!(*runner.seen.lock().unwrap(), want);
        // Every case's line is gone with its run.
        assert!(lines.shown().is_empty(), "{:?}", lines.shown());
    }

    #[tokio::test]
    async fn without_progress_no_run_is_observed() {
        let (runner, mut options) = watched(Lines::hidden(20), 7);
        options.progress = false;
        explore(&base(), options).await.unwrap();
        let seen = runner.seen.lock().unwrap();
        assert!(seen.len() >= 4, "{seen:?}");
        assert!(seen.iter().all(|(given, shown)| !given && shown.is_empty()));
    }

    #[test]
    fn shrink_budget_reads_time_steps_or_both() {
        let both: ShrinkBudget = "5m,40".parse().unwrap();
        assert_eq!(both.time, Some(Duration::from_secs(300)));
        assert_eq!(both.steps, Some(40));
        assert_eq!("12".parse::<ShrinkBudget>().unwrap().time, None);
        assert!("soon".parse::<ShrinkBudget>().is_err());
    }

    #[test]
    fn kinds_parse_and_unknown_ones_are_named() {
        assert_eq!(
            parse_kinds("kill, latency").unwrap(),
            [FaultKind::Kill, FaultKind::Latency]
        );
        let e = parse_kinds("kill,set_global").unwrap_err().to_string();
        assert!(e.starts_with("unknown fault kind `set_global`"), "{e}");
    }
}
