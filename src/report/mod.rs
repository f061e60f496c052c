//! Report: the checked result of a run, in two parts.
//!
//! The *stable* part (verdicts, what went wrong where, lint outcomes) is the same on
//! every run of a healthy suite, so it is what snapshots compare. The *measured* part
//! (counts, latencies, recovery times, raw errors) is shown and saved but never
//! snapshotted raw.

pub mod diff;
mod html;
pub mod junit;
mod render;
pub mod timeline;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::check::{self, CheckResult, Expect, Expected, Judgement, Verdict};
use crate::history::{ErrorClass, History};
use crate::lint::Lint;
pub use html::FILE as HTML_FILE;
pub(crate) use html::{Pair as HtmlPair, diff_page as html_diff};
pub use timeline::Timeline;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub stable: Stable,
    pub measured: Measured,
    /// What `report.html` draws. Saved as its own `timeline.json` beside `report.json`
    /// (it can hold thousands of requests), so it is not part of the report's JSON;
    /// `None` for a report loaded from a `report.json` alone.
    #[serde(skip)]
    pub timeline: Option<Timeline>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stable {
    pub suite: String,
    pub description: String,
    pub expected: Expected,
    pub verdict: Verdict,
    pub met: bool,
    /// Why the expectation was not met.
    pub unmet: Vec<String>,
    pub checks: Vec<StableCheck>,
    /// Faults that ran, by name and kind.
    pub faults: Vec<String>,
    pub lint: Vec<StableLint>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StableCheck {
    pub name: String,
    pub verdict: Verdict,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StableLint {
    pub rule: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicts: Option<ErrorClass>,
    /// `confirmed`, `refuted` or `not exercised` by the run, for lints that predict
    /// something.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    pub seed: u64,
    pub backend: String,
    pub server_version: String,
    pub pool: String,
    pub started_at: String,
    #[serde(with = "humantime_serde")]
    pub setup: Duration,
    #[serde(with = "humantime_serde")]
    pub workload: Duration,
    pub requests: u64,
    pub ok: u64,
    pub failed: u64,
    /// Successful requests per second.
    pub throughput: f64,
    pub latency_ms: Latency,
    pub errors: Vec<ErrorCount>,
    pub faults: Vec<FaultOutcome>,
    pub pool_peak_in_use: u32,
    pub pool_peak_size: u32,
    /// Requests that kept their connection, as (worker, request number).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub leaked: Vec<(u32, u64)>,
    pub findings: Vec<MeasuredFinding>,
    pub reproduce: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Latency {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorCount {
    pub class: ErrorClass,
    /// The fault it is blamed on, or none.
    pub window: Option<String>,
    /// Where it fell, in words: `during `crash``, `after `crash` (grace)`, …
    #[serde(default)]
    pub place: String,
    pub count: u64,
    pub tolerated: bool,
    #[serde(with = "humantime_serde")]
    pub first_at: Duration,
    pub first_message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultOutcome {
    pub name: String,
    pub kind: String,
    pub detail: String,
    /// When the schedule asked for it.
    #[serde(default, with = "humantime_serde")]
    pub planned: Option<Duration>,
    /// When it took effect.
    #[serde(with = "humantime_serde")]
    pub start: Duration,
    #[serde(with = "humantime_serde")]
    pub healed: Option<Duration>,
    pub error: Option<String>,
    /// What it touched (or did not), as the evidence rules read it.
    #[serde(default)]
    pub evidence: String,
    /// The slowest worker's time from heal to its lasting recovery, only when every
    /// worker recovered.
    #[serde(with = "humantime_serde")]
    pub recovery: Option<Duration>,
    /// Workers that did not recover (or made no request) after the heal.
    #[serde(default)]
    pub not_recovered: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeasuredFinding {
    pub check: String,
    pub summary: String,
    pub detail: String,
}

/// What the report needs to know besides the history and verdicts; the run hands it over
/// (the report never sees the suite).
pub struct Context<'a> {
    pub suite: String,
    pub description: String,
    pub expect: &'a Expect,
    pub backend: String,
    /// The command that reproduces the run.
    pub reproduce: String,
    pub seed: u64,
    pub server_version: String,
    pub pool: String,
    pub started_at: String,
    pub setup: Duration,
    pub lint: Vec<Lint>,
    /// The server settings the suite asked for, for the timeline's header.
    pub server_settings: BTreeMap<String, String>,
}

impl Report {
    pub fn build(
        cx: Context<'_>,
        h: &History,
        checks: &[CheckResult],
        judgement: Judgement,
    ) -> Report {
        let e = cx.expect;
        let complete = h.interrupted.is_none();
        let stable = Stable {
            suite: cx.suite.clone(),
            description: cx.description.clone(),
            expected: e.verdict,
            verdict: judgement.verdict,
            met: judgement.met,
            unmet: judgement.unmet,
            checks: checks
                .iter()
                .map(|c| StableCheck {
                    name: c.name.to_string(),
                    verdict: c.verdict,
                    findings: c.findings.iter().map(|f| f.summary.clone()).collect(),
                })
                .collect(),
            faults: h
                .faults
                .iter()
                .map(|f| format!("{} ({})", f.name, f.kind))
                .collect(),
            lint: cx
                .lint
                .iter()
                .map(|l| StableLint {
                    rule: l.rule.to_string(),
                    message: l.message.clone(),
                    predicts: l.predicts.as_ref().map(|p| p.class),
                    outcome: l
                        .predicts
                        .as_ref()
                        .filter(|_| complete)
                        .map(|p| check::outcome(p, h, e).name().to_string()),
                })
                .collect(),
        };
        let ok = h.ops.iter().filter(|o| o.ok()).count() as u64;
        let errors: Vec<ErrorCount> = check::error_groups(h, e)
            .into_iter()
            .map(|g| ErrorCount {
                class: g.class,
                window: g.place.blamed().map(str::to_string),
                place: g.place.describe(),
                count: g.ops.len() as u64,
                tolerated: g.tolerated,
                first_at: g.ops[0].start,
                first_message: g.ops[0]
                    .error
                    .as_ref()
                    .map(|e| e.message.clone())
                    .unwrap_or_default(),
            })
            .collect();
        let mut latencies: Vec<f64> = h
            .ops
            .iter()
            .filter(|o| o.ok())
            .map(|o| (o.end - o.start).as_secs_f64() * 1e3)
            .collect();
        latencies.sort_by(f64::total_cmp);
        let pct = |p: f64| {
            if latencies.is_empty() {
                0.0
            } else {
                latencies[((latencies.len() - 1) as f64 * p).round() as usize]
            }
        };
        let recoveries = check::recoveries(h, e);
        let faults = h
            .faults
            .iter()
            .map(|f| {
                let rec = recoveries.iter().find(|r| r.fault == f.name);
                FaultOutcome {
                    name: f.name.clone(),
                    kind: f.kind.to_string(),
                    detail: f.detail.clone(),
                    planned: Some(f.planned),
                    start: f.start,
                    healed: f.healed,
                    error: f.error.clone(),
                    evidence: if f.applied {
                        check::evidence(f, h).what
                    } else {
                        String::new()
                    },
                    recovery: rec.and_then(|r| r.all_within()),
                    not_recovered: rec.map_or(0, |r| r.not_recovered() as u32),
                }
            })
            .collect();
        let timeline = Timeline::build(h, e, checks, cx.server_settings);
        let reproduce = cx.reproduce;
        let measured = Measured {
            seed: cx.seed,
            backend: cx.backend,
            server_version: cx.server_version,
            pool: cx.pool,
            started_at: cx.started_at,
            setup: cx.setup,
            workload: h.workload_end,
            requests: h.ops.len() as u64,
            ok,
            failed: h.ops.len() as u64 - ok,
            throughput: ok as f64 / h.workload_end.as_secs_f64().max(1e-3),
            latency_ms: Latency {
                p50: pct(0.5),
                p95: pct(0.95),
                p99: pct(0.99),
                max: pct(1.0),
            },
            errors,
            faults,
            pool_peak_in_use: h.samples.iter().map(|s| s.in_use()).max().unwrap_or(0),
            pool_peak_size: h.samples.iter().map(|s| s.size).max().unwrap_or(0),
            leaked: h
                .ops
                .iter()
                .filter(|o| o.leaked)
                .map(|o| (o.worker, o.seq))
                .collect(),
            findings: checks
                .iter()
                .flat_map(|c| {
                    c.findings.iter().map(|f| MeasuredFinding {
                        check: c.name.to_string(),
                        summary: f.summary.clone(),
                        detail: f.detail.clone(),
                    })
                })
                .collect(),
            reproduce,
        };
        Report {
            stable,
            measured,
            timeline: Some(timeline),
        }
    }

    /// The report for people, as the terminal shows it.
    pub fn human(&self) -> String {
        render::human(self)
    }

    /// Panic with the whole report unless the suite's expectations were met. For tests.
    #[track_caller]
    pub fn assert_expected(&self) {
        if !self.stable.met {
            panic!(
                "suite `{}` did not meet its expectations\n\n{}",
                self.stable.suite,
                self.human()
            );
        }
    }

    /// The report as one self-contained HTML page: the header and, when the report has
    /// its timeline, the picture of the run. A pure function of the report's data.
    pub fn html(&self) -> String {
        html::page(self)
    }

    /// Save as `<dir>/<suite>/<time>/report.{json,txt,html}` (and `timeline.json`, what
    /// the HTML draws) and point `<dir>/<suite>/latest` at it. Returns the directory
    /// written.
    pub fn save(&self, dir: &Path) -> std::io::Result<PathBuf> {
        let stamp = self.measured.started_at.replace(':', "");
        let suite_dir = dir.join(&self.stable.suite);
        let mut out = suite_dir.join(format!("{stamp}-seed{}", self.measured.seed));
        let mut n = 1;
        while out.exists() {
            n += 1;
            out = suite_dir.join(format!("{stamp}-seed{}-{n}", self.measured.seed));
        }
        std::fs::create_dir_all(&out)?;
        let json = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(out.join("report.json"), json + "\n")?;
        let html_path = out.join(html::FILE);
        let mut text = self.human();
        text.push_str(&format!("timeline  {}\n", html_path.display()));
        std::fs::write(out.join("report.txt"), text)?;
        if let Some(t) = &self.timeline {
            let json = serde_json::to_string(t).map_err(std::io::Error::other)?;
            std::fs::write(out.join(timeline::FILE), json + "\n")?;
        }
        std::fs::write(&html_path, self.html())?;
        let latest = suite_dir.join("latest");
        let _ = std::fs::remove_file(&latest);
        let target = out.file_name().expect("a directory name");
        #[cfg(unix)]
        std::os::unix::fs::symlink(target, &latest)?;
        Ok(out)
    }
}
