//! Comparing two saved reports: what changed in the stable part (a regression, a fix, or
//! some other change) and how far the measured part drifted beyond noise.
//!
//! [`diff`] is a pure function of two [`Report`]s; [`load`] finds reports on disk (a
//! `report.json`, a report directory, a suite directory's `latest`, or a directory of
//! suites); [`DiffSet::human`] renders the result for people. The stable part decides
//! whether anything *changed*; the measured part only says how much it *drifted*, and
//! only beyond the [`Thresholds`], because timing differs on every run.

use std::collections::BTreeMap;
use std::fmt::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Report, Stable, StableLint};
use crate::check::{Expected, Verdict};

/// How far a measured figure may move before a diff calls it drift. A change counts only
/// when it is beyond *both* the relative and the absolute bound, so a 0.3 ms p50 doubling
/// to 0.6 ms is noise, and so is 1 s becoming 1.05 s.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, clap::Args)]
pub struct Thresholds {
    /// Latency (p50, p99) drift: percent of the old value.
    #[arg(long, value_name = "PCT", default_value_t = Thresholds::DEFAULT.latency_pct, value_parser = non_negative)]
    pub latency_pct: f64,
    /// Latency (p50, p99) drift: milliseconds.
    #[arg(long, value_name = "MS", default_value_t = Thresholds::DEFAULT.latency_ms, value_parser = non_negative)]
    pub latency_ms: f64,
    /// Throughput (successful requests/s) drift: percent of the old value.
    #[arg(long, value_name = "PCT", default_value_t = Thresholds::DEFAULT.throughput_pct, value_parser = non_negative)]
    pub throughput_pct: f64,
    /// Per-fault recovery time drift: percent of the old value.
    #[arg(long, value_name = "PCT", default_value_t = Thresholds::DEFAULT.recovery_pct, value_parser = non_negative)]
    pub recovery_pct: f64,
    /// Per-fault recovery time drift: milliseconds.
    #[arg(long, value_name = "MS", default_value_t = Thresholds::DEFAULT.recovery_ms, value_parser = non_negative)]
    pub recovery_ms: f64,
    /// Per-class error count drift: percent of the old count (a class appearing or
    /// vanishing is always drift).
    #[arg(long, value_name = "PCT", default_value_t = Thresholds::DEFAULT.errors_pct, value_parser = non_negative)]
    pub errors_pct: f64,
    /// Per-class error count drift: requests.
    #[arg(long, value_name = "N", default_value_t = Thresholds::DEFAULT.errors_abs, value_parser = non_negative)]
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

fn non_negative(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("`{s}` is not a number >= 0")),
    }
}

/// One value on each side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change<T> {
    pub old: T,
    pub new: T,
}

fn change<T: PartialEq + Clone>(old: &T, new: &T) -> Option<Change<T>> {
    (old != new).then(|| Change {
        old: old.clone(),
        new: new.clone(),
    })
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
    fn of(old: &[String], new: &[String]) -> ListDiff {
        fn minus(a: &[String], b: &[String]) -> Vec<String> {
            let mut left: BTreeMap<&str, usize> = BTreeMap::new();
            for x in b {
                *left.entry(x).or_default() += 1;
            }
            a.iter()
                .filter(|x| match left.get_mut(x.as_str()) {
                    Some(n) if *n > 0 => {
                        *n -= 1;
                        false
                    }
                    _ => true,
                })
                .cloned()
                .collect()
        }
        ListDiff {
            removed: minus(old, new),
            added: minus(new, old),
        }
    }

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

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Same => "unchanged",
            Status::Changed => "CHANGED",
            Status::Fix => "FIXED",
            Status::Regression => "REGRESSION",
        }
    }
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

/// Compare two reports: pure, no I/O.
pub fn diff(old: &Report, new: &Report, t: &Thresholds) -> ReportDiff {
    let stable = diff_stable(&old.stable, &new.stable);
    let status = if stable.is_empty() {
        Status::Same
    } else {
        match (old.stable.met, new.stable.met) {
            (true, false) => Status::Regression,
            (false, true) => Status::Fix,
            _ => Status::Changed,
        }
    };
    let measured = diff_measured(old, new, t);
    let (om, nm) = (&old.measured, &new.measured);
    let context = [
        ("backend", om.backend.clone(), nm.backend.clone()),
        (
            "server_version",
            om.server_version.clone(),
            nm.server_version.clone(),
        ),
        ("pool", om.pool.clone(), nm.pool.clone()),
        ("seed", om.seed.to_string(), nm.seed.to_string()),
    ]
    .into_iter()
    .filter(|(_, o, n)| o != n)
    .map(|(field, old, new)| ContextChange {
        field: field.to_string(),
        old,
        new,
    })
    .collect();
    ReportDiff {
        suite: new.stable.suite.clone(),
        status,
        drift: measured.iter().any(|m| m.drift),
        stable,
        measured,
        context,
    }
}

fn diff_stable(old: &Stable, new: &Stable) -> StableDiff {
    let mut checks = Vec::new();
    let mut names: Vec<&str> = new.checks.iter().map(|c| c.name.as_str()).collect();
    for c in &old.checks {
        if !names.contains(&c.name.as_str()) {
            names.push(&c.name);
        }
    }
    for name in names {
        let o = old.checks.iter().find(|c| c.name == name);
        let n = new.checks.iter().find(|c| c.name == name);
        let findings = ListDiff::of(
            o.map_or(&[][..], |c| &c.findings),
            n.map_or(&[][..], |c| &c.findings),
        );
        let (ov, nv) = (o.map(|c| c.verdict), n.map(|c| c.verdict));
        if ov != nv || !findings.is_empty() {
            checks.push(CheckDiff {
                name: name.to_string(),
                old: ov,
                new: nv,
                findings,
            });
        }
    }

    // Lints match by rule, then by position among lints of that rule: a changed pool
    // setting rewrites a lint's message, and the diff should say so, not add + remove.
    let keyed = |ls: &[StableLint]| -> Vec<((String, usize), StableLint)> {
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        ls.iter()
            .map(|l| {
                let n = seen.entry(&l.rule).or_default();
                *n += 1;
                ((l.rule.clone(), *n), l.clone())
            })
            .collect()
    };
    let (ol, nl) = (keyed(&old.lint), keyed(&new.lint));
    let mut lint = Vec::new();
    for (key, o) in &ol {
        let n = nl.iter().find(|(k, _)| k == key).map(|(_, l)| l);
        if n != Some(o) {
            lint.push(LintDiff {
                rule: key.0.clone(),
                old: Some(o.clone()),
                new: n.cloned(),
            });
        }
    }
    for (key, n) in &nl {
        if !ol.iter().any(|(k, _)| k == key) {
            lint.push(LintDiff {
                rule: key.0.clone(),
                old: None,
                new: Some(n.clone()),
            });
        }
    }

    StableDiff {
        suite: change(&old.suite, &new.suite),
        description: change(&old.description, &new.description),
        expected: change(&old.expected, &new.expected),
        verdict: change(&old.verdict, &new.verdict),
        met: change(&old.met, &new.met),
        unmet: ListDiff::of(&old.unmet, &new.unmet),
        checks,
        lint,
        faults: ListDiff::of(&old.faults, &new.faults),
    }
}

/// `|new - old|` beyond both bounds.
fn beyond(old: f64, new: f64, pct: f64, abs: f64) -> bool {
    let d = (new - old).abs();
    d > abs && d > old.abs() * pct / 100.0
}

fn metric(
    name: String,
    unit: &str,
    old: f64,
    new: f64,
    drift: bool,
    higher_is_worse: bool,
) -> Metric {
    Metric {
        metric: name,
        unit: unit.to_string(),
        old: Some(old),
        new: Some(new),
        delta: Some(new - old),
        ratio: (old != 0.0).then(|| new / old),
        drift,
        trend: drift.then_some(if (new > old) == higher_is_worse {
            Trend::Worse
        } else {
            Trend::Better
        }),
    }
}

fn diff_measured(old: &Report, new: &Report, t: &Thresholds) -> Vec<Metric> {
    let (om, nm) = (&old.measured, &new.measured);
    let mut out = vec![metric(
        "throughput".into(),
        "ok/s",
        om.throughput,
        nm.throughput,
        beyond(om.throughput, nm.throughput, t.throughput_pct, 0.0),
        false,
    )];
    for (p, o, n) in [
        ("p50", om.latency_ms.p50, nm.latency_ms.p50),
        ("p99", om.latency_ms.p99, nm.latency_ms.p99),
    ] {
        out.push(metric(
            format!("latency.{p}"),
            "ms",
            o,
            n,
            beyond(o, n, t.latency_pct, t.latency_ms),
            true,
        ));
    }

    // Error counts per class, summed over the windows they fell in.
    let mut classes: BTreeMap<crate::ErrorClass, (u64, u64)> = BTreeMap::new();
    for e in &om.errors {
        classes.entry(e.class).or_default().0 += e.count;
    }
    for e in &nm.errors {
        classes.entry(e.class).or_default().1 += e.count;
    }
    for (class, (o, n)) in classes {
        let (o, n) = (o as f64, n as f64);
        let drift = ((o == 0.0) != (n == 0.0)) || beyond(o, n, t.errors_pct, t.errors_abs);
        out.push(metric(
            format!("errors.{class}"),
            "requests",
            o,
            n,
            drift,
            true,
        ));
    }

    // Recovery per fault occurrence present on both sides; one only on one side is a
    // change of the stable fault list already.
    for of in &om.faults {
        let Some(nf) = nm.faults.iter().find(|f| f.name == of.name) else {
            continue;
        };
        let ms = |d: Option<std::time::Duration>| d.map(|d| d.as_secs_f64() * 1e3);
        match (ms(of.recovery), ms(nf.recovery)) {
            (Some(o), Some(n)) => out.push(metric(
                format!("recovery.{}", of.name),
                "ms",
                o,
                n,
                beyond(o, n, t.recovery_pct, t.recovery_ms),
                true,
            )),
            (None, None) => {}
            (o, n) => out.push(Metric {
                metric: format!("recovery.{}", of.name),
                unit: "ms".into(),
                old: o,
                new: n,
                delta: None,
                ratio: None,
                drift: true,
                trend: Some(if n.is_none() {
                    Trend::Worse
                } else {
                    Trend::Better
                }),
            }),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Finding reports on disk.

/// Why a path could not be read as reports: one line, naming the file.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadError {
    pub path: PathBuf,
    pub what: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.what)
    }
}

impl std::error::Error for LoadError {}

fn load_error(path: &Path, what: impl Into<String>) -> LoadError {
    LoadError {
        path: path.to_path_buf(),
        what: what.into(),
    }
}

fn io_error(path: &Path, e: &std::io::Error) -> LoadError {
    let what = match e.kind() {
        std::io::ErrorKind::NotFound => "does not exist".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    };
    load_error(path, what)
}

/// Reports found at a path.
#[derive(Debug, Clone, PartialEq)]
pub enum Loaded {
    /// One report: a `report.json`, a report directory, or a suite directory's newest.
    One(PathBuf, Box<Report>),
    /// A directory of suite directories (a `--report-dir`), each's newest report, by
    /// suite name.
    Many(BTreeMap<String, (PathBuf, Report)>),
}

/// Read one `report.json`.
pub fn read_report(path: &Path) -> Result<Report, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|e| io_error(path, &e))?;
    serde_json::from_str(&text).map_err(|e| load_error(path, format!("not a goneaway report: {e}")))
}

/// Find the reports at `path`: a `report.json` file; a directory holding one; a suite's
/// directory (its `latest`, or else its newest report directory); or a directory of such
/// suite directories.
pub fn load(path: &Path) -> Result<Loaded, LoadError> {
    let meta = std::fs::metadata(path).map_err(|e| io_error(path, &e))?;
    if !meta.is_dir() {
        return Ok(Loaded::One(
            path.to_path_buf(),
            Box::new(read_report(path)?),
        ));
    }
    if let Some(file) = newest_in_suite_dir(path)? {
        let report = read_report(&file)?;
        return Ok(Loaded::One(file, Box::new(report)));
    }
    let mut many = BTreeMap::new();
    for sub in subdirs(path)? {
        if let Some(file) = newest_in_suite_dir(&sub)? {
            let report = read_report(&file)?;
            many.entry(report.stable.suite.clone())
                .or_insert((file, report));
        }
    }
    if many.is_empty() {
        return Err(load_error(
            path,
            "no report.json, `latest` link or suite directories with reports in it",
        ));
    }
    Ok(Loaded::Many(many))
}

fn subdirs(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| io_error(dir, &e))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    out.sort();
    Ok(out)
}

/// The report a directory stands for when it is a report directory or a suite's
/// directory; `None` when it is neither.
fn newest_in_suite_dir(dir: &Path) -> Result<Option<PathBuf>, LoadError> {
    let direct = dir.join("report.json");
    if direct.exists() {
        return Ok(Some(direct));
    }
    let latest = dir.join("latest");
    if latest.symlink_metadata().is_ok() {
        if !latest.exists() {
            let target = std::fs::read_link(&latest)
                .map(|t| format!(" (points at {})", t.display()))
                .unwrap_or_default();
            return Err(load_error(&latest, format!("broken link{target}")));
        }
        return Ok(Some(latest.join("report.json")));
    }
    // A suite directory without `latest`: its newest report (names start with the time).
    Ok(subdirs(dir)?
        .into_iter()
        .map(|d| d.join("report.json"))
        .rfind(|f| f.is_file()))
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
    /// Compare what two paths hold. Two single reports are compared whatever their suite
    /// names; otherwise suites are matched by name. `None` when no suite is on both sides.
    pub fn of(
        old_label: &str,
        old: &Loaded,
        new_label: &str,
        new: &Loaded,
        t: &Thresholds,
    ) -> Option<DiffSet> {
        let mut set = DiffSet {
            old: old_label.to_string(),
            new: new_label.to_string(),
            thresholds: *t,
            suites: Vec::new(),
            only_old: Vec::new(),
            only_new: Vec::new(),
        };
        if let (Loaded::One(_, o), Loaded::One(_, n)) = (old, new) {
            set.suites.push(diff(o, n, t));
            return Some(set);
        }
        let by_name = |l: &Loaded| -> BTreeMap<String, Report> {
            match l {
                Loaded::One(_, r) => [(r.stable.suite.clone(), (**r).clone())].into(),
                Loaded::Many(m) => m.iter().map(|(k, (_, r))| (k.clone(), r.clone())).collect(),
            }
        };
        let (o, n) = (by_name(old), by_name(new));
        for (name, or) in &o {
            match n.get(name) {
                Some(nr) => set.suites.push(diff(or, nr, t)),
                None => set.only_old.push(name.clone()),
            }
        }
        set.only_new = n.keys().filter(|k| !o.contains_key(*k)).cloned().collect();
        (!set.suites.is_empty()).then_some(set)
    }

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

    /// The diff for people.
    pub fn human(&self) -> String {
        render(self)
    }
}

// ---------------------------------------------------------------------------------------
// Rendering.

fn verdict(v: Option<Verdict>) -> &'static str {
    match v {
        Some(Verdict::Valid) => "valid",
        Some(Verdict::Invalid) => "invalid",
        Some(Verdict::Unknown) => "unknown",
        None => "(absent)",
    }
}

fn expected(e: Expected) -> &'static str {
    match e {
        Expected::Valid => "valid",
        Expected::Invalid => "invalid",
    }
}

fn value(v: Option<f64>, unit: &str) -> String {
    match (v, unit) {
        (None, _) => "never".into(),
        (Some(v), "requests") => format!("{v:.0}"),
        (Some(v), "ms") if v >= 1000.0 => format!("{:.2} s", v / 1e3),
        (Some(v), unit) => format!("{v:.2} {unit}"),
    }
}

fn lint_line(l: &StableLint) -> String {
    let p = match (&l.predicts, &l.outcome) {
        (Some(c), Some(o)) => format!(" -> predicts {c}: {o}"),
        (Some(c), None) => format!(" -> predicts {c}"),
        _ => String::new(),
    };
    format!("{}{p}", l.message)
}

fn list(o: &mut String, label: &str, l: &ListDiff) {
    let mut first = true;
    for (sign, x) in l
        .removed
        .iter()
        .map(|x| ('-', x))
        .chain(l.added.iter().map(|x| ('+', x)))
    {
        let head = if first { label } else { "" };
        first = false;
        let _ = writeln!(o, "  {head:<10}{sign} {x}");
    }
}

fn thresholds_line(t: &Thresholds) -> String {
    format!(
        "latency ±{}% and ±{} ms, throughput ±{}%, recovery ±{}% and ±{} ms, errors ±{}% and ±{}",
        t.latency_pct,
        t.latency_ms,
        t.throughput_pct,
        t.recovery_pct,
        t.recovery_ms,
        t.errors_pct,
        t.errors_abs
    )
}

fn render(set: &DiffSet) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "old       {}", set.old);
    let _ = writeln!(o, "new       {}", set.new);
    let _ = writeln!(o, "noise     {}", thresholds_line(&set.thresholds));
    for d in &set.suites {
        let _ = writeln!(o);
        render_one(&mut o, d);
    }
    let count = |s: Status| set.suites.iter().filter(|d| d.status == s).count();
    let drifted = set.suites.iter().filter(|d| d.drift).count();
    let _ = writeln!(
        o,
        "\nsummary   {} suite(s) compared: {} regression(s), {} fix(es), {} changed, {} unchanged; measured drift in {}",
        set.suites.len(),
        count(Status::Regression),
        count(Status::Fix),
        count(Status::Changed),
        count(Status::Same),
        drifted
    );
    if !set.only_old.is_empty() {
        let _ = writeln!(o, "only old  {}", set.only_old.join(", "));
    }
    if !set.only_new.is_empty() {
        let _ = writeln!(o, "only new  {}", set.only_new.join(", "));
    }
    o
}

fn render_one(o: &mut String, d: &ReportDiff) {
    let s = &d.stable;
    let headline = match d.status {
        Status::Regression => ": expectations were met, now NOT met",
        Status::Fix => ": expectations were not met, now met",
        Status::Changed => ": the stable part differs",
        Status::Same => "",
    };
    let drift = if d.drift { "; measured drift" } else { "" };
    let _ = writeln!(o, "{}  {}{headline}{drift}", d.suite, d.status.label());
    if let Some(c) = &s.suite {
        let _ = writeln!(o, "  {:<10}{} -> {}", "suite", c.old, c.new);
    }
    if let Some(c) = &s.description {
        let _ = writeln!(o, "  {:<10}- {}", "describes", c.old);
        let _ = writeln!(o, "  {:<10}+ {}", "", c.new);
    }
    if let Some(c) = &s.expected {
        let _ = writeln!(
            o,
            "  {:<10}{} -> {}",
            "expected",
            expected(c.old),
            expected(c.new)
        );
    }
    if let Some(c) = &s.verdict {
        let _ = writeln!(
            o,
            "  {:<10}{} -> {}",
            "verdict",
            verdict(Some(c.old)),
            verdict(Some(c.new))
        );
    }
    if let Some(c) = &s.met {
        let yn = |b: bool| if b { "met" } else { "NOT met" };
        let _ = writeln!(o, "  {:<10}{} -> {}", "result", yn(c.old), yn(c.new));
    }
    list(o, "unmet", &s.unmet);
    for c in &s.checks {
        let _ = writeln!(
            o,
            "  {:<10}{}: {} -> {}",
            "check",
            c.name,
            verdict(c.old),
            verdict(c.new)
        );
        for (sign, f) in c
            .findings
            .removed
            .iter()
            .map(|x| ('-', x))
            .chain(c.findings.added.iter().map(|x| ('+', x)))
        {
            let _ = writeln!(o, "  {:<12}{sign} {f}", "");
        }
    }
    for l in &s.lint {
        match (&l.old, &l.new) {
            (Some(a), Some(b)) if a.message == b.message => {
                let show = |l: &StableLint| match (&l.predicts, &l.outcome) {
                    (Some(c), Some(out)) => format!("predicts {c}: {out}"),
                    (Some(c), None) => format!("predicts {c}"),
                    _ => "predicts nothing".into(),
                };
                let _ = writeln!(o, "  {:<10}{}: {} -> {}", "lint", l.rule, show(a), show(b));
            }
            (a, b) => {
                let _ = writeln!(o, "  {:<10}{}", "lint", l.rule);
                if let Some(a) = a {
                    let _ = writeln!(o, "  {:<12}- {}", "", lint_line(a));
                }
                if let Some(b) = b {
                    let _ = writeln!(o, "  {:<12}+ {}", "", lint_line(b));
                }
            }
        }
    }
    list(o, "faults", &s.faults);
    let drifted: Vec<&Metric> = d.measured.iter().filter(|m| m.drift).collect();
    if drifted.is_empty() {
        let _ = writeln!(o, "  {:<10}within noise", "measured");
    } else {
        for (i, m) in drifted.iter().enumerate() {
            let head = if i == 0 { "measured" } else { "" };
            let change = if m.unit == "requests" && m.old == Some(0.0) {
                "new".to_string()
            } else if m.unit == "requests" && m.new == Some(0.0) {
                "gone".to_string()
            } else if let Some(r) = m.ratio {
                format!("{:+.0}%", (r - 1.0) * 100.0)
            } else {
                String::new()
            };
            let trend = match m.trend {
                Some(Trend::Worse) => "worse",
                Some(Trend::Better) => "better",
                None => "",
            };
            let _ = writeln!(
                o,
                "  {head:<10}{:<24} {:>10} -> {:<10} {:>6}  {trend}",
                m.metric,
                value(m.old, &m.unit),
                value(m.new, &m.unit),
                change
            );
        }
    }
    for c in &d.context {
        let _ = writeln!(o, "  {:<10}{}: {}", "context", c.field, context_change(c));
    }
}

/// `old -> new`, or for settings lists that differ in a few words (the pool line), only
/// those words.
fn context_change(c: &ContextChange) -> String {
    let (o, n): (Vec<&str>, Vec<&str>) = (
        c.old.split_whitespace().collect(),
        c.new.split_whitespace().collect(),
    );
    if o.len() > 1 && o.len() == n.len() {
        let words: Vec<String> = o
            .iter()
            .zip(&n)
            .filter(|(a, b)| a != b)
            .map(|(a, b)| format!("{a} -> {b}"))
            .collect();
        if words.len() < o.len() {
            return words.join(", ");
        }
    }
    format!("{} -> {}", c.old, c.new)
}
