//! The summary of several runs: one row per suite, as a line when it finishes, as the
//! table at the end, and as Markdown for CI pages (`--markdown`, `GITHUB_STEP_SUMMARY`).

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

/// The table at the end of `run` for several suites, with a total.
pub(super) fn text(rows: &[Row]) -> String {
    let width = rows.iter().map(|r| r.suite.len()).max().unwrap_or(0).max(5);
    let mut o = String::from("summary\n");
    for r in rows {
        let _ = writeln!(o, "  {}", r.line(width));
    }
    let met = rows.iter().filter(|r| r.met()).count();
    let errors = rows
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Error(_)))
        .count();
    let _ = write!(o, "{met} of {} suites met their expectations", rows.len());
    if errors > 0 {
        let _ = write!(o, "; {errors} could not run (harness error)");
    }
    o.push('\n');
    o
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
