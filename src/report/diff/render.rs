//! The diff for people: one block per suite, then a summary.

use std::fmt::Write;

use super::model::{
    ContextChange, DiffSet, ListDiff, Metric, ReportDiff, Status, Thresholds, Trend,
};
use crate::check::{Expected, Verdict};
use crate::report::StableLint;

impl DiffSet {
    /// The diff for people.
    pub fn human(&self) -> String {
        render(self)
    }
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
