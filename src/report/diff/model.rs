//! The diff's data: what [`compare`](super::compare) produces, what `--json` prints and
//! what [`render`](super::render) shows. No logic beyond small predicates.

use serde::{Deserialize, Serialize};

use crate::check::{Expected, Verdict};
use crate::report::StableLint;

/// How far a measured figure may move before a diff calls it drift. A change counts only
/// when it is beyond *both* the relative and the absolute bound, so a 0.3 ms p50 doubling
/// to 0.6 ms is noise, and so is 1 s becoming 1.05 s. Plain data: the command line's
/// flags for it live in `cli`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Latency (p50, p99) drift: percent of the old value.
    pub latency_pct: f64,
    /// Latency (p50, p99) drift: milliseconds.
    pub latency_ms: f64,
    /// Throughput (successful requests/s) drift: percent of the old value.
    pub throughput_pct: f64,
    /// Per-fault recovery time drift: percent of the old value.
    pub recovery_pct: f64,
    /// Per-fault recovery time drift: milliseconds.
    pub recovery_ms: f64,
    /// Per-class error count drift: percent of the old count (a class appearing or
    /// vanishing is always drift).
    pub errors_pct: f64,
    /// Per-class error count drift: requests.
    pub errors_abs: f64,
}

impl Thresholds {
    pub const DEFAULT: Thresholds = Thresholds {
        latency_pct: 20.0,
        latency_ms: 1.0,
        throughput_pct: 10.0,
        recovery_pct: 20.0,
        recovery_ms: 100.0,
        errors_pct: 50.0,
        errors_abs: 2.0,
    };
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds::DEFAULT
    }
}

/// One value on each side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change<T> {
    pub old: T,
    pub new: T,
}

/// Entries of a list only on one side (as a multiset, in their original order).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ListDiff {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub added: Vec<String>,
}

impl ListDiff {
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.added.is_empty()
    }
}

/// What a change of the stable part amounts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The stable parts are equal.
    Same,
    /// The stable part changed but whether expectations were met did not.
    Changed,
    /// Expectations were not met before and are now.
    Fix,
    /// Expectations were met before and are not now.
    Regression,
}

/// A check whose verdict or findings differ; `None` on the side it is absent from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckDiff {
    pub name: String,
    pub old: Option<Verdict>,
    pub new: Option<Verdict>,
    #[serde(flatten)]
    pub findings: ListDiff,
}

/// A lint (matched by rule, then by order within the rule) that differs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LintDiff {
    pub rule: String,
    pub old: Option<StableLint>,
    pub new: Option<StableLint>,
}

/// Everything in the stable part that differs. Empty means the stable parts are equal.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct StableDiff {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite: Option<Change<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<Change<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<Change<Expected>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Change<Verdict>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub met: Option<Change<bool>>,
    #[serde(default, skip_serializing_if = "ListDiff::is_empty")]
    pub unmet: ListDiff,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckDiff>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lint: Vec<LintDiff>,
    #[serde(default, skip_serializing_if = "ListDiff::is_empty")]
    pub faults: ListDiff,
}

impl StableDiff {
    pub fn is_empty(&self) -> bool {
        self == &StableDiff::default()
    }
}

/// Which way a measured change goes for the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trend {
    Better,
    Worse,
}

/// One measured figure on both sides. `None` means "never" (a fault no worker recovered
/// from); an error class absent on one side counts 0 there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    /// `throughput`, `latency.p50`, `latency.p99`, `errors.<class>`,
    /// `recovery.<fault occurrence>`.
    pub metric: String,
    /// `ok/s`, `ms` or `requests`.
    pub unit: String,
    pub old: Option<f64>,
    pub new: Option<f64>,
    /// `new - old`, when both are known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<f64>,
    /// `new / old`, when both are known and `old` is not 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio: Option<f64>,
    /// Beyond the thresholds: drift rather than noise.
    pub drift: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trend: Option<Trend>,
}

/// A measured-context field that differs: not a change or drift in itself, but the
/// likely reason for one (`pool`, `server_version`, `backend`, `seed`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContextChange {
    pub field: String,
    pub old: String,
    pub new: String,
}

/// The difference between two reports of (usually) the same suite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportDiff {
    pub suite: String,
    pub status: Status,
    /// Some measured figure moved beyond the thresholds.
    pub drift: bool,
    pub stable: StableDiff,
    /// Every compared figure, drift or not.
    pub measured: Vec<Metric>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub context: Vec<ContextChange>,
}

/// Suite by suite differences between two sets of reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiffSet {
    pub old: String,
    pub new: String,
    pub thresholds: Thresholds,
    pub suites: Vec<ReportDiff>,
    /// Suites with a report only under `old` / only under `new`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub only_old: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub only_new: Vec<String>,
}

impl DiffSet {
    /// A stable part differs, or a suite is on one side only.
    pub fn changed(&self) -> bool {
        self.suites.iter().any(|d| d.status != Status::Same)
            || !self.only_old.is_empty()
            || !self.only_new.is_empty()
    }

    /// Some measured figure drifted beyond the thresholds.
    pub fn drift(&self) -> bool {
        self.suites.iter().any(|d| d.drift)
    }
}
