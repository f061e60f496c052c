//! Live progress of `run` on a terminal: per running suite its phase and time (the
//! shared [`Lines`]), and for several suites a total line (done, met, not met, time) that
//! stands in for the met suites' finish lines. Only when stderr is a terminal and `CI` is
//! unset; otherwise nothing is drawn and the caller prints plain lines.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::progress::{Line, Lines};
use crate::run::Observer;

pub(super) struct Progress {
    lines: Lines,
    total: Option<ProgressBar>,
}

impl Progress {
    /// `None` when nothing should be drawn (see [`crate::progress::wanted`]).
    pub fn new(suites: usize, width: usize) -> Option<Progress> {
        let mut lines = Lines::new(width)?;
        let total = (suites > 1).then(|| {
            let bar = lines.set_total(ProgressBar::new(suites as u64));
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
        Some(Progress { lines, total })
    }

    /// A line for a suite that starts now; its observer moves it through its phases.
    pub fn suite(&self, name: &str, expected: Duration) -> (Line, Observer) {
        self.lines.line(name, expected)
    }

    /// Print a line above the bars.
    pub fn println(&self, line: &str) {
        self.lines.println(line);
    }

    /// A suite ended: drop its line, count it in the total.
    pub fn done(&self, line: Line, so_far: &Tally) {
        drop(line);
        if let Some(total) = &self.total {
            total.inc(1);
            total.set_message(tally(so_far));
        }
    }

    pub fn finish(&self) {
        self.lines.finish();
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
}
