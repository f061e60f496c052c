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
    /// What the server's own counters saw (`SHOW GLOBAL STATUS`), when sampled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerCounts>,
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
    /// From the fault taking effect to the end of the first failure blamed on it: how
    /// soon the application heard.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "humantime_serde"
    )]
    pub first_error: Option<Duration>,
    /// The longest any request overlapping the fault (or its grace) waited: for a
    /// failure, its failing checkout or statement; for a success, the whole request.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "humantime_serde"
    )]
    pub longest_wait: Option<Duration>,
}

/// The server's side of the run, from its own counters; the harness's sessions are
/// taken off where the counter is a current count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerCounts {
    /// Most connections open at once besides the harness's, as sampled.
    pub peak_connections: u64,
    #[serde(with = "humantime_serde")]
    pub peak_at: Duration,
    /// `Threads_connected` at its highest sample, the harness's included.
    pub peak_threads_connected: u64,
    /// Connections opened during the run (`Connections`, summed across restarts), the
    /// harness's own included.
    pub connections_opened: u64,
    /// `Aborted_clients` during the run: connections that ended without a proper close.
    pub aborted_clients: u64,
    /// `Aborted_connects` during the run: attempts that failed before a session began.
    pub aborted_connects: u64,
    /// `Max_used_connections` at its highest: the server's own high-water mark, which also
    /// catches spikes between samples (the harness's included).
    pub max_used_connections: u64,
    pub samples: u64,
}

impl ServerCounts {
    fn of(h: &History) -> Option<ServerCounts> {
        let peak = h
            .status
            .iter()
            .max_by_key(|s| (s.others(), std::cmp::Reverse(s.at)))?;
        // A counter grows while the server runs and starts again from 0 after a restart:
        // a drop is a restart, and what was counted since then is the new value.
        let grown = |f: fn(&crate::history::StatusSample) -> u64| {
            h.status
                .windows(2)
                .map(|w| {
                    let (a, b) = (f(&w[0]), f(&w[1]));
                    if b >= a { b - a } else { b }
                })
                .sum()
        };
        Some(ServerCounts {
            peak_connections: peak.others(),
            peak_at: peak.at,
            peak_threads_connected: h.status.iter().map(|s| s.threads_connected).max()?,
            connections_opened: grown(|s| s.connections),
            aborted_clients: grown(|s| s.aborted_clients),
            aborted_connects: grown(|s| s.aborted_connects),
            max_used_connections: h.status.iter().map(|s| s.max_used_connections).max()?,
            samples: h.status.len() as u64,
        })
    }
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
        let ws = check::windows(h);
        let blamed: Vec<(&str, &crate::history::OpRecord)> = h
            .failures()
            .filter_map(|o| Some((check::blame(o, &ws, e).window?.name.as_str(), o)))
            .collect();
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
                    first_error: blamed
                        .iter()
                        .filter(|(w, _)| *w == f.name)
                        .map(|(_, o)| o.end.saturating_sub(f.start))
                        .min(),
                    longest_wait: f
                        .applied
                        .then(|| {
                            let until = f.healed.unwrap_or(h.workload_end) + e.grace;
                            h.ops
                                .iter()
                                .filter(|o| o.end >= f.start && o.start <= until)
                                .map(|o| {
                                    if o.ok() {
                                        o.end.saturating_sub(o.start)
                                    } else {
                                        check::waited(o)
                                    }
                                })
                                .max()
                        })
                        .flatten(),
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
            server: ServerCounts::of(h),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Ending, Recorder, StatusSample};

    #[test]
    fn server_counts_add_up_across_a_restart() {
        let mut h = Recorder::new().freeze(Ending::default());
        let s =
            |at: u64, threads: u64, harness: u64, connections: u64, aborted: u64| StatusSample {
                at: Duration::from_millis(at),
                threads_connected: threads,
                connections,
                aborted_clients: aborted,
                aborted_connects: 0,
                max_used_connections: threads.max(12),
                harness,
            };
        assert_eq!(ServerCounts::of(&h), None);
        // 100 -> 110 connections, a restart (counters from 0), then 0 -> 16 -> 20.
        h.status = vec![
            s(0, 5, 1, 100, 3),
            s(200, 6, 1, 110, 4),
            s(400, 2, 1, 0, 0),
            s(600, 17, 1, 16, 0),
            s(800, 9, 1, 20, 1),
        ];
        let c = ServerCounts::of(&h).unwrap();
        assert_eq!(c.peak_connections, 16);
        assert_eq!(c.peak_at, Duration::from_millis(600));
        assert_eq!(c.peak_threads_connected, 17);
        // 10 before the restart, the 16 counted since it, 4 more.
        assert_eq!(c.connections_opened, 30);
        assert_eq!(c.aborted_clients, 2);
        assert_eq!(c.max_used_connections, 17);
        assert_eq!(c.samples, 5);
    }
}
