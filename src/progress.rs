//! Live lines on a terminal (indicatif), shared by `run` and `explore`: a line per running
//! run with its phase and time, above an optional total line the caller styles and
//! updates. Drawn only when stderr is a terminal and `CI` is unset ([`wanted`]); callers
//! print plain lines otherwise. The phases come from the run through its [`Observer`];
//! this module only draws what it is told.

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::run::{Observer, Step};

/// Whether to draw: a person is watching stderr, and this is not a CI log.
pub(crate) fn wanted() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("CI").is_none()
}

/// The lines being drawn. Cheap to clone: clones draw on the same screen.
#[derive(Clone)]
pub(crate) struct Lines {
    multi: MultiProgress,
    total: Option<ProgressBar>,
    /// Labels are padded to this, so the phases line up.
    width: usize,
    /// The runs' lines now shown, so a test can read what a person would see.
    live: Arc<Mutex<Live>>,
}

/// The runs' lines by when they started (indicatif's bars have no identity to compare).
#[derive(Default)]
struct Live {
    next: u64,
    bars: BTreeMap<u64, ProgressBar>,
}

impl Lines {
    /// `None` when nothing should be drawn (see [`wanted`]).
    pub fn new(width: usize) -> Option<Lines> {
        wanted().then(|| Lines::on(MultiProgress::new(), width))
    }

    /// Lines that draw nowhere but keep their text: for tests.
    #[cfg(test)]
    pub fn hidden(width: usize) -> Lines {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::hidden());
        Lines::on(multi, width)
    }

    fn on(multi: MultiProgress, width: usize) -> Lines {
        Lines {
            multi,
            total: None,
            width,
            live: Arc::default(),
        }
    }

    /// Put `bar` last, below every run's line; the caller keeps moving it.
    pub fn set_total(&mut self, bar: ProgressBar) -> ProgressBar {
        let bar = self.multi.add(bar);
        self.total = Some(bar.clone());
        bar
    }

    /// The total line, once set.
    pub fn total(&self) -> Option<&ProgressBar> {
        self.total.as_ref()
    }

    /// A line for a run that starts now, labelled `label`, planned to last `expected`;
    /// its observer moves it through the run's phases. Dropping the [`Line`] removes it.
    pub fn line(&self, label: &str, expected: Duration) -> (Line, Observer) {
        let expected = humantime::format_duration(expected).to_string();
        // Dressed while it draws nowhere, so its first frame on screen has every word.
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
        bar.set_style(
            ProgressStyle::with_template(&format!(
                "{{spinner:.green}} {{prefix:<{}}} {{msg}} [{{elapsed}}]",
                self.width
            ))
            .expect("a valid template"),
        );
        bar.set_prefix(label.to_string());
        bar.set_message(Phase::default().describe(&expected));
        let bar = match &self.total {
            Some(total) => self.multi.insert_before(total, bar),
            None => self.multi.add(bar),
        };
        bar.enable_steady_tick(Duration::from_millis(120));
        let state = Arc::new(Mutex::new(Phase::default()));
        let shown = bar.clone();
        let observer = Observer::new(move |step| {
            // Time from here on is the workload's, against its planned length.
            if matches!(step, Step::Running { .. }) {
                shown.reset_elapsed();
            }
            let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
            s.apply(step);
            shown.set_message(s.describe(&expected));
        });
        let id = {
            let mut live = self.lock_live();
            let id = live.next;
            live.next += 1;
            live.bars.insert(id, bar.clone());
            id
        };
        let line = Line {
            bar,
            id,
            lines: self.clone(),
        };
        (line, observer)
    }

    /// Print a line above the bars.
    pub fn println(&self, line: &str) {
        let _ = self.multi.println(line);
    }

    /// Clear everything, the total line too.
    pub fn finish(&self) {
        if let Some(total) = &self.total {
            total.finish_and_clear();
        }
        let _ = self.multi.clear();
    }

    /// Each run's line as a person reads it: `label phase`.
    #[cfg(test)]
    pub fn shown(&self) -> Vec<String> {
        self.lock_live()
            .bars
            .values()
            .map(|b| format!("{} {}", b.prefix(), b.message()))
            .collect()
    }

    fn lock_live(&self) -> std::sync::MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One run's line; gone from the screen when dropped, also when the run is (an error
/// elsewhere, Ctrl-C), so no line outlives its run.
pub(crate) struct Line {
    bar: ProgressBar,
    /// Its key in [`Live`].
    id: u64,
    lines: Lines,
}

impl Drop for Line {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
        self.lines.multi.remove(&self.bar);
        self.lines.lock_live().bars.remove(&self.id);
    }
}

/// Where one run is, as its line says it.
#[derive(Default)]
pub(crate) struct Phase {
    step: Option<Step>,
    active: BTreeSet<String>,
    healing: BTreeSet<String>,
}

impl Phase {
    pub fn apply(&mut self, step: Step) {
        match &step {
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
        // Faults overlap the running step; the line keeps saying which run step it is.
        if !matches!(
            step,
            Step::FaultActive { .. } | Step::Healing { .. } | Step::Healed { .. }
        ) {
            self.step = Some(step);
        }
    }

    /// The line's words; `expected` is the workload's planned length.
    pub fn describe(&self, expected: &str) -> String {
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
    fn a_line_follows_the_run_through_its_phases() {
        let mut p = Phase::default();
        let mut say = |step| {
            p.apply(step);
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

    #[test]
    fn overlapping_faults_are_all_named_and_healing_comes_first() {
        let mut p = Phase::default();
        p.apply(Step::Running {
            expected: Duration::from_secs(6),
        });
        p.apply(Step::FaultActive {
            name: "kill".into(),
        });
        p.apply(Step::FaultActive {
            name: "latency".into(),
        });
        assert_eq!(p.describe("6s"), "fault `kill`, `latency` active (of 6s)");
        p.apply(Step::Healing {
            name: "kill".into(),
        });
        assert_eq!(p.describe("6s"), "healing `kill` (of 6s)");
        p.apply(Step::Healed {
            name: "kill".into(),
        });
        assert_eq!(p.describe("6s"), "fault `latency` active (of 6s)");
    }

    #[test]
    fn a_line_is_labelled_moved_by_its_observer_and_gone_when_dropped() {
        let lines = Lines::hidden(8);
        let (line, observer) = lines.line("case 3", Duration::from_secs(6));
        assert_eq!(lines.shown(), ["case 3 starting server"]);
        observer.tell(Step::Running {
            expected: Duration::from_secs(6),
        });
        observer.tell(Step::FaultActive {
            name: "kill".into(),
        });
        assert_eq!(lines.shown(), ["case 3 fault `kill` active (of 6s)"]);
        let (other, _) = lines.line("case 4", Duration::from_secs(6));
        assert_eq!(lines.shown().len(), 2);
        drop(line);
        assert_eq!(lines.shown(), ["case 4 starting server"]);
        drop(other);
        assert!(lines.shown().is_empty());
    }
}
