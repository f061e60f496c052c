//! The pure comparison of two reports, or of two sets of them matched by suite name.

use std::collections::BTreeMap;

use super::load::Loaded;
use super::model::{
    Change, CheckDiff, ContextChange, DiffSet, LintDiff, ListDiff, Metric, ReportDiff, StableDiff,
    Status, Thresholds, Trend,
};
use crate::report::{Report, Stable, StableLint};

fn change<T: PartialEq + Clone>(old: &T, new: &T) -> Option<Change<T>> {
    (old != new).then(|| Change {
        old: old.clone(),
        new: new.clone(),
    })
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
}
