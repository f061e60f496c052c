//! The terminal rendering of a report: what happened, what failed and why, first.

use std::fmt::Write;

use super::Report;
use crate::check::{Expected, Verdict};

fn verdict(v: Verdict) -> &'static str {
    match v {
        Verdict::Valid => "valid",
        Verdict::Invalid => "invalid",
        Verdict::Unknown => "unknown",
    }
}

fn mark(v: Verdict) -> &'static str {
    match v {
        Verdict::Valid => "ok  ",
        Verdict::Invalid => "FAIL",
        Verdict::Unknown => "??  ",
    }
}

pub fn human(r: &Report) -> String {
    let (s, m) = (&r.stable, &r.measured);
    let mut o = String::new();
    let expected = match s.expected {
        Expected::Valid => "valid",
        Expected::Invalid => "invalid (negative control)",
    };
    let _ = writeln!(o, "suite     {} — {}", s.suite, s.description);
    let _ = writeln!(o, "server    {} {}", m.backend, m.server_version);
    let _ = writeln!(o, "pool      {}", m.pool);
    let _ = writeln!(
        o,
        "workload  {} requests in {:.1}s, {} ok, {} failed, {:.1} ok/s, latency p50 {:.1}ms p99 {:.1}ms max {:.1}ms",
        m.requests,
        m.workload.as_secs_f64(),
        m.ok,
        m.failed,
        m.throughput,
        m.latency_ms.p50,
        m.latency_ms.p99,
        m.latency_ms.max
    );
    let _ = writeln!(
        o,
        "pool use  peak {} in use of {} open",
        m.pool_peak_in_use, m.pool_peak_size
    );
    if let Some(c) = &m.server {
        let _ = writeln!(
            o,
            "server saw peak {} connections besides the harness's (at {:.2}s; the pool's own peak: {} open), {} opened during the run, aborted {} clients / {} connects, Max_used_connections {} (harness included)",
            c.peak_connections,
            c.peak_at.as_secs_f64(),
            m.pool_peak_size,
            c.connections_opened,
            c.aborted_clients,
            c.aborted_connects,
            c.max_used_connections
        );
    }
    if !s.lint.is_empty() {
        let _ = writeln!(o, "\nlint (before the run)");
        for l in &s.lint {
            let outcome = match (&l.predicts, &l.outcome) {
                (Some(c), Some(out)) => format!(" -> predicts {c}: {out}"),
                (Some(c), None) => format!(" -> predicts {c}"),
                _ => String::new(),
            };
            let _ = writeln!(o, "  {}: {}{}", l.rule, l.message, outcome);
        }
    }
    if !m.faults.is_empty() {
        let _ = writeln!(o, "\nfaults");
        for f in &m.faults {
            let healed = f.healed.map_or("never healed".to_string(), |h| {
                format!("healed {:.2}s", h.as_secs_f64())
            });
            let recovery = match (f.recovery, f.not_recovered) {
                (Some(r), _) => format!(", recovered in {:.2}s", r.as_secs_f64()),
                (None, 0) => String::new(),
                (None, k) => format!(", {k} worker(s) did not recover"),
            };
            let timing = match (f.first_error, f.longest_wait) {
                (Some(e), Some(w)) => format!(
                    ", first error after {:.2}s, longest wait {:.2}s",
                    e.as_secs_f64(),
                    w.as_secs_f64()
                ),
                (None, Some(w)) => format!(", longest wait {:.2}s", w.as_secs_f64()),
                _ => String::new(),
            };
            let late = match f.planned {
                Some(p) if f.start > p + crate::check::LATE => {
                    format!(" (planned {:.2}s: late)", p.as_secs_f64())
                }
                _ => String::new(),
            };
            let _ = writeln!(
                o,
                "  {:<16} at {:.2}s{late}, {}{}{}: {}",
                f.name,
                f.start.as_secs_f64(),
                healed,
                recovery,
                timing,
                f.detail
            );
            if !f.evidence.is_empty() {
                let _ = writeln!(o, "  {:<16} effect: {}", "", f.evidence);
            }
            if let Some(e) = &f.error {
                let _ = writeln!(o, "  {:<16} error: {e}", "");
            }
        }
    }
    if !m.errors.is_empty() {
        let _ = writeln!(o, "\nerrors the application saw");
        for e in &m.errors {
            let place = &e.place;
            let tol = if e.tolerated {
                "tolerated"
            } else {
                "NOT tolerated"
            };
            let _ = writeln!(
                o,
                "  {:<20} {:>5}x {place}, {tol}; first at {:.2}s: {}",
                e.class.name(),
                e.count,
                e.first_at.as_secs_f64(),
                e.first_message
            );
        }
    }
    let _ = writeln!(o, "\nchecks");
    for c in &s.checks {
        let _ = writeln!(o, "  {} {}", mark(c.verdict), c.name);
        for f in m.findings.iter().filter(|f| f.check == c.name) {
            let _ = writeln!(o, "       {}\n       ({})", f.summary, f.detail);
        }
    }
    let _ = writeln!(
        o,
        "\nverdict   {} (expected {expected})",
        verdict(s.verdict)
    );
    if s.met {
        let _ = writeln!(o, "result    expectations MET");
    } else {
        let _ = writeln!(o, "result    expectations NOT met:");
        for u in &s.unmet {
            let _ = writeln!(o, "            - {u}");
        }
    }
    let _ = writeln!(o, "reproduce {}", m.reproduce);
    o
}
