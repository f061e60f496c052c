//! Live progress of `run` on a terminal (indicatif): per running suite its phase and time,
//! and for several suites a total line (done, met, not met, time) that stands in for the
//! met suites' finish lines. Only when stderr is a terminal and `CI` is unset;
//! otherwise nothing is drawn and the caller prints plain lines. The phases come from the
//! run itself through its [`Observer`]; this module only draws what it is told.

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::run::{Observer, Step};

pub(super) struct Progress {
    multi: MultiProgress,
    total: Option<ProgressBar>,
    width: usize,
}

/// Whether to draw: a person is watching stderr, and this is not a CI log.
pub(super) fn wanted() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("CI").is_none()
}

impl Progress {
    /// `None` when nothing should be drawn (see [`wanted`]).
    pub fn new(suites: usize, width: usize) -> Option<Progress> {
        if !wanted() {
            return None;
        }
        let multi = MultiProgress::new();
        let total = (suites > 1).then(|| {
            let bar = multi.add(ProgressBar::new(suites as u64));
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:30.cyan/blue} {pos}/{len} done, {msg} [{elapsed}]",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
            bar.set_message(tally(&Tally::default()));
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Some(Progress {
            multi,
            total,
            width,
        })
    }

    /// A line for a suite that starts now; its observer moves it through its phases.
    pub fn suite(&self, name: &str, expected: Duration) -> (ProgressBar, Observer) {
        let bar = match &self.total {
            Some(total) => self.multi.insert_before(total, ProgressBar::new_spinner()),
            None => self.multi.add(ProgressBar::new_spinner()),
        };
        bar.set_style(
            ProgressStyle::with_template(&format!(
                "{{spinner:.green}} {{prefix:<{}}} {{msg}} [{{elapsed}}]",
                self.width
            ))
            .expect("a valid template"),
        );
        bar.set_prefix(name.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        let expected = humantime::format_duration(expected).to_string();
        let state = Arc::new(Mutex::new(Phase::default()));
        let shown = bar.clone();
        let observer = Observer::new(move |step| {
            let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
            s.apply(step, &shown);
            shown.set_message(s.describe(&expected));
        });
        bar.set_message("starting server");
        (bar, observer)
    }

    /// Print a line above the bars.
    pub fn println(&self, line: &str) {
        let _ = self.multi.println(line);
    }

    /// A suite ended: drop its line, count it in the total.
    pub fn done(&self, bar: &ProgressBar, so_far: &Tally) {
        bar.finish_and_clear();
        self.multi.remove(bar);
        if let Some(total) = &self.total {
            total.inc(1);
            total.set_message(tally(so_far));
        }
    }

    pub fn finish(&self) {
        if let Some(total) = &self.total {
            total.finish_and_clear();
        }
        let _ = self.multi.clear();
    }
}

/// How the suites that ended so far ended.
#[derive(Default)]
pub(super) struct Tally {
    pub met: usize,
    pub not_met: usize,
    /// The harness could not run them.
    pub errors: usize,
}

/// The total line's words after "k/n done, ".
fn tally(t: &Tally) -> String {
    let mut s = format!("{} met, {} not met", t.met, t.not_met);
    if t.errors > 0 {
        let plural = if t.errors == 1 { "" } else { "s" };
        s.push_str(&format!(", {} harness error{plural}", t.errors));
    }
    s
}

/// What a suite's line says.
#[derive(Default)]
struct Phase {
    step: Option<Step>,
    active: BTreeSet<String>,
    healing: BTreeSet<String>,
}

impl Phase {
    fn apply(&mut self, step: Step, bar: &ProgressBar) {
        match &step {
            // Time from here on is the workload's, against its planned length.
            Step::Running { .. } => bar.reset_elapsed(),
            Step::FaultActive { name } => {
                self.active.insert(name.clone());
            }
            Step::Healing { name } => {
                self.active.remove(name);
                self.healing.insert(name.clone());
            }
            Step::Healed { name } => {
                self.healing.remove(name);
            }
            _ => {}
        }
        if !matches!(
            step,
            Step::FaultActive { .. } | Step::Healing { .. } | Step::Healed { .. }
        ) {
            self.step = Some(step);
        }
    }

    fn describe(&self, expected: &str) -> String {
        let quote = |s: &BTreeSet<String>| {
            s.iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match &self.step {
            Some(Step::Running { .. }) if !self.healing.is_empty() => {
                format!("healing {} (of {expected})", quote(&self.healing))
            }
            Some(Step::Running { .. }) if !self.active.is_empty() => {
                format!("fault {} active (of {expected})", quote(&self.active))
            }
            Some(Step::Running { .. }) => format!("running (of {expected})"),
            Some(step) => step.to_string(),
            None => "starting server".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_total_line_counts_met_not_met_and_errors() {
        let mut t = Tally::default();
        assert_eq!(tally(&t), "0 met, 0 not met");
        t.met = 37;
        t.not_met = 2;
        assert_eq!(tally(&t), "37 met, 2 not met");
        t.errors = 1;
        assert_eq!(tally(&t), "37 met, 2 not met, 1 harness error");
    }

    #[test]
    fn a_line_follows_the_run_through_its_phases() {
        let bar = ProgressBar::hidden();
        let mut p = Phase::default();
        let mut say = |step| {
            p.apply(step, &bar);
            p.describe("10s")
        };
        assert_eq!(say(Step::StartingServer), "starting server");
        let running = Step::Running {
            expected: Duration::from_secs(10),
        };
        assert_eq!(say(running), "running (of 10s)");
        let name = || "crash".to_string();
        assert_eq!(
            say(Step::FaultActive { name: name() }),
            "fault `crash` active (of 10s)"
        );
        assert_eq!(
            say(Step::Healing { name: name() }),
            "healing `crash` (of 10s)"
        );
        assert_eq!(say(Step::Healed { name: name() }), "running (of 10s)");
        assert_eq!(say(Step::Checking), "checking");
    }
}
