//! The summary of several runs: one row per suite as a line when it finishes; at the end
//! the rows not met and the met ones packed to the screen's width (`--verbose`: every
//! row); and every row as Markdown for CI pages (`--markdown`, `GITHUB_STEP_SUMMARY`),
//! which scroll.

use std::fmt::Write;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use crate::Report;
use crate::check::{Expected, Verdict};

/// How one suite's run ended, in the summary's words.
pub(super) struct Row {
    pub suite: String,
    pub outcome: Outcome,
    /// Wall time of the run, server start to report.
    pub duration: Duration,
    /// Where its report was saved (its directory).
    pub saved: Option<PathBuf>,
}

pub(super) enum Outcome {
    Report {
        verdict: Verdict,
        expected: Expected,
        met: bool,
        unmet: Vec<String>,
    },
    /// The harness could not run it (exit 2): no verdict.
    Error(String),
}

fn verdict(v: Verdict) -> &'static str {
    match v {
        Verdict::Valid => "valid",
        Verdict::Invalid => "invalid",
        Verdict::Unknown => "unknown",
    }
}

fn expected(e: Expected) -> &'static str {
    match e {
        Expected::Valid => "valid",
        Expected::Invalid => "invalid",
    }
}

/// `text` cut to about `max` characters, on a character boundary.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

impl Row {
    pub fn of(suite: &str, result: &Result<Report, crate::Error>, duration: Duration) -> Row {
        Row {
            suite: suite.to_string(),
            outcome: match result {
                Ok(r) => Outcome::Report {
                    verdict: r.stable.verdict,
                    expected: r.stable.expected,
                    met: r.stable.met,
                    unmet: r.stable.unmet.clone(),
                },
                Err(e) => Outcome::Error(e.to_string()),
            },
            duration,
            saved: None,
        }
    }

    pub fn met(&self) -> bool {
        matches!(self.outcome, Outcome::Report { met: true, .. })
    }

    /// Why it was not met, in a few words: the first reason, and how many more.
    pub fn reason(&self, max: usize) -> String {
        match &self.outcome {
            Outcome::Report { unmet, .. } if !unmet.is_empty() => {
                let more = match unmet.len() - 1 {
                    0 => String::new(),
                    n => format!(" (+{n} more)"),
                };
                format!("{}{more}", cut(&unmet[0], max))
            }
            Outcome::Report { .. } => String::new(),
            Outcome::Error(e) => cut(e, max),
        }
    }

    /// One aligned line: suite, verdict, expected, met, duration, the reason.
    pub fn line(&self, width: usize) -> String {
        let secs = format!("{:.1}s", self.duration.as_secs_f64());
        match &self.outcome {
            Outcome::Report {
                verdict: v,
                expected: e,
                met,
                ..
            } => {
                let met = if *met { "met" } else { "NOT MET" };
                let line = format!(
                    "{:<width$} {:<8} expected {:<8} {:<8} {secs:>6}  {}",
                    self.suite,
                    verdict(*v),
                    expected(*e),
                    met,
                    self.reason(60)
                );
                line.trim_end().to_string()
            }
            Outcome::Error(_) => format!(
                "{:<width$} harness error                       {secs:>6}  {}",
                self.suite,
                self.reason(60)
            ),
        }
    }
}

/// How the summary at the end of `run` is laid out.
#[derive(Clone, Copy, Debug)]
pub(super) enum Layout {
    /// A row per suite (`--verbose`).
    Full,
    /// A row per suite not met; the met ones packed into lines of at most `width`
    /// columns, so a run of every built-in suite fits on one screen.
    Compact { width: usize },
}

/// The summary at the end of `run` for several suites: rows, then a total that ends with
/// the run's wall time `took`.
pub(super) fn text(rows: &[Row], layout: Layout, took: Duration) -> String {
    let (full, met): (Vec<&Row>, Vec<&Row>) = match layout {
        Layout::Full => (rows.iter().collect(), Vec::new()),
        Layout::Compact { .. } => rows.iter().partition(|r| !r.met()),
    };
    let name = full
        .iter()
        .map(|r| r.suite.chars().count())
        .max()
        .unwrap_or(0)
        .max(5);
    let mut o = String::from("summary\n");
    for r in &full {
        let _ = writeln!(o, "  {}", r.line(name));
    }
    if let Layout::Compact { width } = layout
        && !met.is_empty()
    {
        let entries: Vec<String> = met
            .iter()
            .map(|r| format!("{} {}", r.suite, short(r.duration)))
            .collect();
        // Below rows not met, say what these are; alone, the total says it.
        let lead = if full.is_empty() { "  " } else { "  met: " };
        for line in pack(&entries, lead, width) {
            let _ = writeln!(o, "{line}");
        }
    }
    let _ = writeln!(o, "{}", total(rows, took));
    o
}

/// `entries` in as few lines of at most `width` columns as their order allows: the first
/// line starts with `lead`, the others are indented as far. An entry wider than a line
/// gets one of its own. Not columns: the suite names (9 to 36 characters today) leave
/// aligned columns half empty, and 64 of them would not fit on a screen.
fn pack(entries: &[String], lead: &str, width: usize) -> Vec<String> {
    const GAP: &str = "   ";
    let indent = " ".repeat(lead.chars().count());
    let mut lines = Vec::new();
    let mut line = lead.to_string();
    let mut empty = true;
    for entry in entries {
        let cols = line.chars().count() + GAP.len() + entry.chars().count();
        if !empty && cols > width {
            lines.push(std::mem::replace(&mut line, indent.clone()));
            empty = true;
        }
        if !empty {
            line.push_str(GAP);
        }
        line.push_str(entry);
        empty = false;
    }
    lines.push(line);
    lines
}

/// The last line: how many met, what kind, what did not, and how long it all took.
fn total(rows: &[Row], took: Duration) -> String {
    let n = rows.len();
    let met = rows.iter().filter(|r| r.met()).count();
    let errors = rows
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Error(_)))
        .count();
    let took = short(took);
    let counted = |parts: [(usize, &str); 2]| {
        parts
            .iter()
            .filter(|(k, _)| *k > 0)
            .map(|(k, what)| format!("{k} {what}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if met == n {
        let valid = rows
            .iter()
            .filter(|r| {
                matches!(
                    r.outcome,
                    Outcome::Report {
                        expected: Expected::Valid,
                        ..
                    }
                )
            })
            .count();
        let kinds = counted([(valid, "valid"), (n - valid, "invalid as expected")]);
        format!("{n} suites, all met their expectations ({kinds}), {took}")
    } else {
        let missed = counted([
            (n - met - errors, "NOT met"),
            (errors, "could not run: harness error"),
        ]);
        format!("{met} of {n} suites met their expectations ({missed}), {took}")
    }
}

/// A duration in a few characters: `3.6s`, `42s`, `4m12s`, `1h02m`.
fn short(d: Duration) -> String {
    if d.as_secs_f64() < 9.95 {
        return format!("{:.1}s", d.as_secs_f64());
    }
    let s = d.as_secs_f64().round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

/// A Markdown cell: no line breaks, no column separators.
fn cell(s: &str) -> String {
    s.replace('\n', " ").replace('|', "\\|")
}

/// `to` as seen from `dir`, when both can be resolved; else `to` as it is.
fn relative(dir: &Path, to: &Path) -> PathBuf {
    let (Ok(dir), Ok(to)) = (std::path::absolute(dir), std::path::absolute(to)) else {
        return to.to_path_buf();
    };
    let (a, b): (Vec<Component>, Vec<Component>) =
        (dir.components().collect(), to.components().collect());
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::new();
    for _ in common..a.len() {
        out.push("..");
    }
    for c in &b[common..] {
        out.push(c);
    }
    out
}

/// The summary as a Markdown table; links to each saved report's page, relative to
/// `dir` (where the Markdown file is written).
pub(super) fn markdown(rows: &[Row], dir: Option<&Path>) -> String {
    let met = rows.iter().filter(|r| r.met()).count();
    let mut o = String::new();
    let _ = writeln!(
        o,
        "### goneaway: {met} of {} suites met their expectations\n",
        rows.len()
    );
    o.push_str("| suite | verdict | expected | met | duration | why not met | report |\n");
    o.push_str("|---|---|---|---|---:|---|---|\n");
    for r in rows {
        let (v, e, m, why) = match &r.outcome {
            Outcome::Report {
                verdict: v,
                expected: e,
                met,
                unmet,
            } => (
                verdict(*v),
                expected(*e),
                if *met { "✅ met" } else { "❌ **NOT met**" },
                unmet.join("; "),
            ),
            Outcome::Error(err) => ("—", "—", "⚠️ harness error", err.clone()),
        };
        let report = match &r.saved {
            Some(d) => {
                let page = d.join(crate::report::HTML_FILE);
                let target = dir.map_or(page.clone(), |dir| relative(dir, &page));
                // A link target is not a cell: percent-encode what would end it.
                let target = target
                    .display()
                    .to_string()
                    .replace('%', "%25")
                    .replace(' ', "%20")
                    .replace('|', "%7C")
                    .replace(')', "%29");
                format!("[report.html]({target})")
            }
            None => String::new(),
        };
        let _ = writeln!(
            o,
            "| `{}` | {v} | {e} | {m} | {:.1}s | {} | {report} |",
            cell(&r.suite),
            r.duration.as_secs_f64(),
            cell(&why)
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(suite: &str, met: bool, unmet: &[&str]) -> Row {
        Row {
            suite: suite.into(),
            outcome: Outcome::Report {
                verdict: if met {
                    Verdict::Valid
                } else {
                    Verdict::Invalid
                },
                expected: Expected::Valid,
                met,
                unmet: unmet.iter().map(|s| s.to_string()).collect(),
            },
            duration: Duration::from_millis(12_345),
            saved: Some(PathBuf::from("reports/a|b/2026-seed1")),
        }
    }

    #[test]
    fn a_line_says_why_in_a_few_words() {
        let r = row(
            "kill-idle",
            false,
            &[
                "errors: the application saw gone_away (MySQL server has gone away (2006)) outside any fault window",
                "recovery: worker 1 never recovered",
            ],
        );
        let line = r.line(12);
        assert!(
            line.starts_with("kill-idle    invalid  expected valid    NOT MET   12.3s  errors: the application saw gone_away"),
            "{line}"
        );
        assert!(line.ends_with("… (+1 more)"), "{line}");
        assert_eq!(
            row("x", true, &[]).line(1),
            "x valid    expected valid    met       12.3s"
        );
    }

    /// The 64 built-in suites' names on 2026-12-01: a fixed list, so adding a suite does
    /// not change the snapshots (the fit of today's list is checked below).
    const NAMES: &str = "blackhole-no-timeouts db-down-at-start-no-timeouts db-down-at-start \
        db-down-fail-fast db-down-no-timeouts failover-recycled-pool failover-stale-pool \
        go-blackhole-read-timeout go-idle-expiry-idle-time go-idle-expiry-stale-pool \
        go-kill-idle go-server-restart half-open handshake-blackhole-no-timeouts \
        handshake-blackhole held-across-wait-short held-across-wait-timeout \
        hikaricp-blackhole-socket-timeout hikaricp-idle-expiry hikaricp-kill-idle \
        hikaricp-server-restart idle-expiry-pre-ping idle-expiry-recycle \
        idle-expiry-stale-pool-socket idle-expiry-stale-pool kill-active kill-idle-socket \
        kill-idle latency-spike leaked-checkouts-fixed leaked-checkouts limit-data-mid-result \
        max-connections mysql-async-abs-conn-ttl mysql-async-blackhole \
        mysql-async-idle-expiry-conn-ttl-off mysql-async-idle-expiry mysql-async-kill-idle \
        mysql-async-network-reset mysql-async-server-restart network-cut-long \
        network-cut-short network-partition network-reset node-blackhole node-idle-expiry \
        node-kill-idle node-server-restart outage-flask-engine-options \
        outage-flask-ignored-config read-only-window restart-connection-storm-bounded \
        restart-connection-storm server-crash server-pause server-restart-socket \
        server-restart sqlalchemy-held-across-wait-short sqlalchemy-held-across-wait-timeout \
        sqlalchemy-leaked-sessions-fixed sqlalchemy-leaked-sessions sqlalchemy-pre-ping \
        sqlalchemy-recycle wait-timeout-lowered";

    /// Every name met, negative controls (every third) expecting invalid, durations
    /// spread from seconds to minutes.
    fn all_met<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<Row> {
        names
            .into_iter()
            .enumerate()
            .map(|(i, name)| {
                let control = i % 3 == 0;
                Row {
                    suite: name.into(),
                    outcome: Outcome::Report {
                        verdict: if control {
                            Verdict::Invalid
                        } else {
                            Verdict::Valid
                        },
                        expected: if control {
                            Expected::Invalid
                        } else {
                            Expected::Valid
                        },
                        met: true,
                        unmet: Vec::new(),
                    },
                    duration: Duration::from_millis(2_300 + (i as u64 * 37_717) % 140_000),
                    saved: None,
                }
            })
            .collect()
    }

    /// Snapshots of the summary live with the others, under tests/snapshots.
    fn snapshot(name: &str, text: &str) {
        insta::with_settings!({ snapshot_path => "../../tests/snapshots" }, {
            insta::assert_snapshot!(name, text);
        });
    }

    const WALL: Duration = Duration::from_secs(11 * 60 + 2);

    #[test]
    fn every_suite_met_fits_on_one_screen() {
        let rows = all_met(NAMES.split_whitespace());
        assert_eq!(rows.len(), 64);
        let out = text(&rows, Layout::Compact { width: 100 }, WALL);
        assert!(
            out.lines().count() <= 25,
            "{} lines:\n{out}",
            out.lines().count()
        );
        assert!(out.lines().all(|l| l.chars().count() <= 100), "{out}");
        assert!(
            out.ends_with(
                "64 suites, all met their expectations (42 valid, 22 invalid as expected), 11m02s\n"
            ),
            "{out}"
        );
        // Each suite is named once, with its duration.
        for r in &rows {
            let entry = format!("{} {}", r.suite, short(r.duration));
            assert!(out.contains(&entry), "{entry} in {out}");
        }
        snapshot("summary_all_met_width_100", &out);
    }

    #[test]
    fn todays_builtin_suites_fit_on_one_screen() {
        // Not the fixed list: the suites this build ships, so a new one that breaks the
        // fit shows up here.
        let rows = all_met(crate::suite::builtin_names());
        let out = text(&rows, Layout::Compact { width: 100 }, WALL);
        assert!(
            out.lines().count() <= 25,
            "{} lines:\n{out}",
            out.lines().count()
        );
    }

    #[test]
    fn unmet_suites_get_full_rows_before_the_met_ones() {
        let mut rows = all_met(NAMES.split_whitespace().take(20));
        rows[10] = row(
            "go-kill-idle",
            false,
            &[
                "errors: the application saw gone_away (MySQL server has gone away (2006)) outside any fault window",
                "recovery: worker 1 never recovered",
            ],
        );
        rows[19] = Row {
            suite: "hikaricp-kill-idle".into(),
            outcome: Outcome::Error("adapter exited before it answered: java not found".into()),
            duration: Duration::from_millis(800),
            saved: None,
        };
        let out = text(&rows, Layout::Compact { width: 100 }, WALL);
        let lines: Vec<&str> = out.lines().collect();
        assert!(
            lines[1].starts_with("  go-kill-idle       invalid "),
            "{out}"
        );
        assert!(
            lines[2].starts_with("  hikaricp-kill-idle harness error"),
            "{out}"
        );
        assert!(lines[3].starts_with("  met: "), "{out}");
        assert!(
            !lines[3..].iter().any(|l| l.contains("go-kill-idle ")),
            "{out}"
        );
        assert_eq!(
            *lines.last().unwrap(),
            "18 of 20 suites met their expectations (1 NOT met, 1 could not run: harness error), 11m02s"
        );
        snapshot("summary_two_unmet_width_100", &out);
    }

    #[test]
    fn verbose_lists_every_row() {
        let mut rows = all_met(["kill-idle", "server-crash", "half-open"]);
        rows[1] = row(
            "server-crash",
            false,
            &["recovery: worker 1 never recovered"],
        );
        let out = text(&rows, Layout::Full, Duration::from_millis(7_250));
        assert_eq!(
            out,
            "summary\n\
             \x20 kill-idle    invalid  expected invalid  met        2.3s\n\
             \x20 server-crash invalid  expected valid    NOT MET   12.3s  recovery: worker 1 never recovered\n\
             \x20 half-open    valid    expected valid    met       77.7s\n\
             2 of 3 suites met their expectations (1 NOT met), 7.2s\n"
        );
    }

    #[test]
    fn packing_wraps_at_the_width_and_keeps_a_wide_entry_whole() {
        let entries: Vec<String> = [
            "aaaa 1s",
            "bbbb 2s",
            "a-name-wider-than-the-line 3s",
            "c 4s",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            pack(&entries, "  met: ", 24),
            [
                "  met: aaaa 1s   bbbb 2s",
                "       a-name-wider-than-the-line 3s",
                "       c 4s"
            ]
        );
    }

    #[test]
    fn durations_are_short() {
        let s = |ms| short(Duration::from_millis(ms));
        assert_eq!(
            [
                s(3_640),
                s(9_960),
                s(42_400),
                s(59_600),
                s(252_000),
                s(3_725_000)
            ],
            ["3.6s", "10s", "42s", "1m00s", "4m12s", "1h02m"]
        );
    }

    #[test]
    fn markdown_escapes_cells_and_links_reports_relative_to_the_file() {
        let md = markdown(
            &[row("a|b", false, &["errors: x | y"]), row("c", true, &[])],
            Some(Path::new("reports")),
        );
        assert!(md.starts_with("### goneaway: 1 of 2 suites met their expectations\n"));
        assert!(
            md.contains("| `a\\|b` | invalid | valid | ❌ **NOT met** | 12.3s | errors: x \\| y | [report.html](a%7Cb/2026-seed1/report.html) |"),
            "{md}"
        );
        assert_eq!(md.lines().count(), 6, "{md}");
    }
}
