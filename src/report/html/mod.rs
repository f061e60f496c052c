//! `report.html`: one self-contained page per report (no script, no external style or
//! font), drawn from the saved report data only, so `goneaway render` can redraw an old
//! run. The page is a minijinja template (`page.html`, auto-escaped); the picture is an
//! SVG built in `chart`.

mod chart;

use serde::Serialize;

use super::Report;
use crate::check::{Expected, Verdict};

/// The file a report's page is saved as.
pub const FILE: &str = "report.html";

const TEMPLATE: &str = include_str!("page.html");
const DIFF_TEMPLATE: &str = include_str!("diff.html");
/// The stylesheet both pages inline (no external file: a page must open offline).
const STYLE: &str = include_str!("style.html");

/// What the template shows, already in words: the template only lays it out.
#[derive(Serialize)]
struct Page<'a> {
    title: String,
    suite: &'a str,
    description: &'a str,
    verdict: &'static str,
    expected: &'static str,
    met: bool,
    unmet: &'a [String],
    seed: u64,
    reproduce: &'a str,
    started_at: &'a str,
    server: String,
    server_settings: Vec<(String, String)>,
    pool: &'a str,
    workload: String,
    lint: Vec<LintRow>,
    checks: Vec<CheckRow>,
    faults: Vec<FaultRow>,
    errors: Vec<ErrorRow>,
    classes: Vec<(&'static str, &'static str)>,
    chart: Option<ChartView>,
    version: &'static str,
}

#[derive(Serialize)]
struct LintRow {
    rule: String,
    message: String,
    predicts: Option<String>,
    outcome: Option<String>,
    /// `confirmed`, `refuted` or `not` (exercised): the badge's colour.
    outcome_class: String,
}

#[derive(Serialize)]
struct CheckRow {
    name: String,
    verdict: &'static str,
    findings: Vec<(String, String)>,
}

#[derive(Serialize)]
struct FaultRow {
    name: String,
    kind: String,
    when: String,
    recovery: String,
    detail: String,
    evidence: String,
    error: Option<String>,
}

#[derive(Serialize)]
struct ErrorRow {
    class: String,
    count: u64,
    place: String,
    tolerated: bool,
    first_at: String,
    first_message: String,
}

#[derive(Serialize)]
struct ChartView {
    bars: usize,
    requests: usize,
    points: usize,
    server_sessions: bool,
    notes: Vec<String>,
}

fn verdict(v: Verdict) -> &'static str {
    match v {
        Verdict::Valid => "valid",
        Verdict::Invalid => "invalid",
        Verdict::Unknown => "unknown",
    }
}

/// Render the page. Pure: the same report gives the same bytes.
pub fn page(r: &Report) -> String {
    let (s, m) = (&r.stable, &r.measured);
    let drawn = r.timeline.as_ref().map(chart::chart);
    let page = Page {
        title: format!(
            "goneaway: {} — {}{}",
            s.suite,
            verdict(s.verdict),
            if s.met { "" } else { " (expectations NOT met)" }
        ),
        suite: &s.suite,
        description: &s.description,
        verdict: verdict(s.verdict),
        expected: match s.expected {
            Expected::Valid => "valid",
            Expected::Invalid => "invalid (negative control)",
        },
        met: s.met,
        unmet: &s.unmet,
        seed: m.seed,
        reproduce: &m.reproduce,
        started_at: &m.started_at,
        server: format!("{} {}", m.backend, m.server_version),
        server_settings: r
            .timeline
            .as_ref()
            .map(|t| t.server_settings.clone().into_iter().collect())
            .unwrap_or_default(),
        pool: &m.pool,
        workload: format!(
            "{} requests in {:.1}s, {} ok, {} failed, {:.1} ok/s; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; pool peak {} in use of {} open",
            m.requests,
            m.workload.as_secs_f64(),
            m.ok,
            m.failed,
            m.throughput,
            m.latency_ms.p50,
            m.latency_ms.p99,
            m.latency_ms.max,
            m.pool_peak_in_use,
            m.pool_peak_size
        ),
        lint: s
            .lint
            .iter()
            .map(|l| LintRow {
                rule: l.rule.clone(),
                message: l.message.clone(),
                predicts: l.predicts.map(|c| c.to_string()),
                outcome: l.outcome.clone(),
                outcome_class: l
                    .outcome
                    .as_deref()
                    .and_then(|o| o.split(' ').next())
                    .unwrap_or_default()
                    .to_string(),
            })
            .collect(),
        checks: s
            .checks
            .iter()
            .map(|c| CheckRow {
                name: c.name.clone(),
                verdict: verdict(c.verdict),
                findings: m
                    .findings
                    .iter()
                    .filter(|f| f.check == c.name)
                    .map(|f| (f.summary.clone(), f.detail.clone()))
                    .collect(),
            })
            .collect(),
        faults: m
            .faults
            .iter()
            .map(|f| FaultRow {
                name: f.name.clone(),
                kind: f.kind.clone(),
                when: match f.healed {
                    Some(h) => format!("{:.2}s → {:.2}s", f.start.as_secs_f64(), h.as_secs_f64()),
                    None => format!("{:.2}s, never healed", f.start.as_secs_f64()),
                },
                recovery: match (f.recovery, f.not_recovered) {
                    (Some(d), _) => format!("{:.2}s", d.as_secs_f64()),
                    (None, 0) => String::new(),
                    (None, k) => format!("{k} worker(s) did not recover"),
                },
                detail: f.detail.clone(),
                evidence: f.evidence.clone(),
                error: f.error.clone(),
            })
            .collect(),
        errors: m
            .errors
            .iter()
            .map(|e| ErrorRow {
                class: e.class.to_string(),
                count: e.count,
                place: e.place.clone(),
                tolerated: e.tolerated,
                first_at: format!("{:.2}s", e.first_at.as_secs_f64()),
                first_message: e.first_message.clone(),
            })
            .collect(),
        classes: crate::history::ErrorClass::ALL
            .iter()
            .map(|c| (c.name(), c.symptom()))
            .collect(),
        chart: drawn.as_ref().map(|c| ChartView {
            bars: c.bars,
            requests: c.bar_requests,
            points: c.points,
            server_sessions: r.timeline.as_ref().is_some_and(|t| !t.server.is_empty()),
            notes: c.notes.clone(),
        }),
        version: env!("CARGO_PKG_VERSION"),
    };
    let mut env = minijinja::Environment::new();
    env.add_template("page.html", TEMPLATE)
        .expect("the page template parses");
    env.add_template("style.html", STYLE)
        .expect("the stylesheet parses");
    let ctx = minijinja::context! {
        page => minijinja::Value::from(minijinja::value::Serde(&page)),
        // The SVG is built (and escaped) by the `svg` crate: insert it as is.
        svg => minijinja::Value::from_safe_string(drawn.map(|c| c.svg).unwrap_or_default()),
    };
    env.get_template("page.html")
        .and_then(|t| t.render(ctx))
        .expect("the page template renders any report")
}

/// One suite's two runs, for the diff page.
pub struct Pair<'a> {
    pub old: &'a Report,
    pub new: &'a Report,
}

#[derive(Serialize)]
struct PairView {
    suite: String,
    sides: Vec<SideView>,
}

#[derive(Serialize)]
struct SideView {
    label: &'static str,
    verdict: &'static str,
    met: bool,
    seed: u64,
    started_at: String,
    summary: String,
    svg: Option<minijinja::Value>,
}

/// `goneaway diff --html`: the diff's text, then each suite's old and new runs side by
/// side on one time axis. Pure, like [`page`].
pub fn diff_page(title: &str, diff_text: &str, pairs: &[Pair<'_>]) -> String {
    let views: Vec<PairView> = pairs
        .iter()
        .map(|p| {
            // One axis for both sides: the longer of the two runs.
            let span = [p.old, p.new]
                .iter()
                .filter_map(|r| r.timeline.as_ref().map(|t| t.span_us()))
                .max()
                .unwrap_or(0);
            let side = |label: &'static str, r: &Report| {
                let m = &r.measured;
                SideView {
                    label,
                    verdict: verdict(r.stable.verdict),
                    met: r.stable.met,
                    seed: m.seed,
                    started_at: m.started_at.clone(),
                    summary: format!(
                        "{} requests, {} failed, {:.1} ok/s, p99 {:.1} ms",
                        m.requests, m.failed, m.throughput, m.latency_ms.p99
                    ),
                    svg: r.timeline.as_ref().map(|t| {
                        minijinja::Value::from_safe_string(chart::chart_over(t, span).svg)
                    }),
                }
            };
            PairView {
                suite: p.new.stable.suite.clone(),
                sides: vec![side("old", p.old), side("new", p.new)],
            }
        })
        .collect();
    let mut env = minijinja::Environment::new();
    env.add_template("style.html", STYLE)
        .expect("the stylesheet parses");
    env.add_template("diff.html", DIFF_TEMPLATE)
        .expect("the diff template parses");
    let ctx = minijinja::context! {
        title => title,
        diff => diff_text,
        pairs => minijinja::Value::from(minijinja::value::Serde(&views)),
        version => env!("CARGO_PKG_VERSION"),
    };
    env.get_template("diff.html")
        .and_then(|t| t.render(ctx))
        .expect("the diff template renders any pair of reports")
}
