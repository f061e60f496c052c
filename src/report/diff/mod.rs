//! Comparing two saved reports: what changed in the stable part (a regression, a fix, or
//! some other change) and how far the measured part drifted beyond noise.
//!
//! [`diff`] is a pure function of two [`Report`](crate::Report)s; [`load`] finds reports
//! on disk (a `report.json`, a report directory, a suite directory's `latest`, or a
//! directory of suites); [`DiffSet::human`] renders the result for people. The stable
//! part decides whether anything *changed*; the measured part only says how much it
//! *drifted*, and only beyond the [`Thresholds`], because timing differs on every run.
//!
//! - `model`: the diff's data (what `--json` prints);
//! - `compare`: the pure comparison;
//! - `load`: finding reports on disk;
//! - `render`: the text for people.

mod compare;
mod load;
mod model;
mod render;

pub use compare::diff;
pub use load::{LoadError, Loaded, load, read_report};
pub use model::{
    Change, CheckDiff, ContextChange, DiffSet, LintDiff, ListDiff, Metric, ReportDiff, StableDiff,
    Status, Thresholds, Trend,
};
