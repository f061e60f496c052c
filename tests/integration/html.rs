//! `report.html`: saved with every report, self-contained, a parseable page whose picture
//! has one bar per request and one window per fault of the run, drawn again identically by
//! `goneaway render` from the saved data alone.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use goneaway::Report;
use goneaway::report::diff::read_report;
use goneaway::report::timeline::{Request, Timeline};
use scraper::{Html, Selector};

const BIN: &str = env!("CARGO_BIN_EXE_goneaway");

/// A small real run kept as a fixture (2 workers, 3 s, a KILL of active sessions that the
/// suite does not tolerate): its report, timeline and all.
const FIXTURE: &str = "tests/reports/timeline/kill-untolerated/2026-12-01T163933Z-seed7";

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Parse as a browser would; a page with parse errors fails.
fn parse(html: &str) -> Html {
    let doc = Html::parse_document(html);
    assert!(doc.errors.is_empty(), "parse errors: {:?}", doc.errors);
    doc
}

fn select<'a>(doc: &'a Html, css: &str) -> Vec<scraper::ElementRef<'a>> {
    doc.select(&Selector::parse(css).unwrap()).collect()
}

/// How many requests the page's bars stand for (a merged bar says how many).
fn requests_drawn(doc: &Html) -> usize {
    select(doc, "rect.req")
        .iter()
        .map(|b| b.attr("data-n").map_or(1, |n| n.parse::<usize>().unwrap()))
        .sum()
}

/// Nothing the page needs comes from elsewhere: no script, no stylesheet link, no
/// external image or font.
fn assert_self_contained(doc: &Html, html: &str) {
    assert!(select(doc, "script, link, img, iframe, object").is_empty());
    for el in select(doc, "*") {
        for (name, value) in el.value().attrs() {
            assert!(
                !matches!(name, "src" | "href" | "xlink:href"),
                "external reference {name}={value}"
            );
        }
    }
    assert!(!html.contains("@import") && !html.contains("url("));
}

#[test]
fn a_fixed_report_draws_every_request_fault_and_failed_check() {
    let report = read_report(&Path::new(FIXTURE).join("report.json")).unwrap();
    let t = report
        .timeline
        .as_ref()
        .expect("the fixture has its timeline");
    let html = report.html();
    let doc = parse(&html);
    assert_self_contained(&doc, &html);
    assert_eq!(select(&doc, "rect.req").len(), t.requests.len());
    assert_eq!(t.requests.len() as u64, report.measured.requests);
    assert_eq!(
        select(&doc, "g.fault-window").len(),
        report.measured.faults.len()
    );
    assert_eq!(select(&doc, "g.mark").len(), t.marks.len());
    assert!(!t.marks.is_empty(), "the fixture's errors check failed");

    // The structure, not the coordinates: what a reader finds on the page.
    let texts = |css: &str| -> Vec<String> {
        select(&doc, css)
            .iter()
            .map(|e| e.text().collect::<String>().trim().to_string())
            .collect()
    };
    let bars_by_class = {
        let mut m = std::collections::BTreeMap::<String, usize>::new();
        for b in select(&doc, "rect.req") {
            *m.entry(b.attr("class").unwrap().to_string()).or_default() += 1;
        }
        m
    };
    let structure = serde_json::json!({
        "title": texts("head > title"),
        "hovers": select(&doc, "rect.req > title").iter().map(|e| e.text().collect::<String>()).collect::<Vec<_>>(),
        "headings": texts("h1, h2"),
        "badges": texts("header .badge"),
        "unmet": texts("ul.unmet-list li"),
        "lanes": texts("text.lane-label"),
        "bars": bars_by_class,
        "fault_labels": texts("text.fault-label"),
        "marks": select(&doc, "g.mark > title").iter().map(|e| e.text().collect::<String>()).collect::<Vec<_>>(),
        "panels": texts("text.panel-title"),
        "legend": texts("text.legend"),
        "table_rows": {
            "faults": select(&doc, "table.faults tr").len(),
            "errors": select(&doc, "table.errors tr").len(),
            "checks": select(&doc, "table.checks tr").len(),
        },
    });
    insta::assert_yaml_snapshot!("html-fixed-report-structure", structure);

    // Pure: the same data draws the same page.
    assert_eq!(report.html(), html);
}

#[test]
fn a_report_saved_before_timelines_still_renders_its_summary() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        Path::new(FIXTURE).join("report.json"),
        dir.path().join("report.json"),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["render", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("has no timeline.json"));
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    let doc = parse(&html);
    assert!(select(&doc, "svg").is_empty());
    assert!(html.contains("saved without a timeline"));
}

#[test]
fn render_refuses_what_is_not_a_report_in_one_line() {
    let out = Command::new(BIN)
        .args(["render", "tests/reports/bad/truncated.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(
            "goneaway: render: tests/reports/bad/truncated.json: not a goneaway report"
        ),
        "{stderr}"
    );
}

/// A long busy run: far more requests than bars. Every request is still accounted for,
/// the page says it merged bars, and it stays small.
#[test]
fn a_busy_run_is_downsampled_and_says_so() {
    let mut report: Report = read_report(&Path::new(FIXTURE).join("report.json")).unwrap();
    let mut t: Timeline = report.timeline.take().unwrap();
    let template = t.requests.iter().find(|r| r.ok()).unwrap().clone();
    let mut requests = Vec::new();
    // 16 workers, 20 s, a request every 4 ms each: 80 000 requests.
    for w in 0..16u32 {
        for i in 0..5_000u64 {
            let start = i * 4_000 + w as u64 * 100;
            requests.push(Request {
                worker: w,
                seq: i,
                start_us: start,
                end_us: start + 900 + (i % 7) * 300,
                ..template.clone()
            });
        }
    }
    let n = requests.len();
    t.workers = 16;
    t.workload_end_us = 20_000_000;
    t.requests = requests;
    report.timeline = Some(t);
    let html = report.html();
    let doc = parse(&html);
    assert_eq!(requests_drawn(&doc), n);
    let bars = select(&doc, "rect.req").len();
    assert!(bars < n / 10, "{bars} bars for {n} requests");
    assert!(
        html.contains("Downsampled:"),
        "the page says it merged bars"
    );
    assert!(
        html.len() < 400_000,
        "{} KB for a 20 s run of 80 000 requests",
        html.len() / 1024
    );
}

fn report_dirs(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for suite in std::fs::read_dir(root).unwrap().flatten() {
        for run in std::fs::read_dir(suite.path()).unwrap().flatten() {
            if run.file_name() != "latest" {
                out.push(run.path());
            }
        }
    }
    out
}

/// The issue's own acceptance run: `goneaway run server-crash` saves a page that shows
/// the crash window, the requests that failed in it, and a bar for every request.
#[test]
fn server_crash_saves_a_self_contained_timeline() {
    if !common::mariadb() {
        return;
    }
    let reports = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["run", "server-crash", "--report-dir"])
        .arg(reports.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let dirs = report_dirs(reports.path());
    assert_eq!(dirs.len(), 1);
    let dir = &dirs[0];
    for f in ["report.json", "report.txt", "report.html", "timeline.json"] {
        assert!(dir.join(f).is_file(), "{f} saved");
    }
    let stdout = text(&out.stdout);
    let page = dir.join("report.html");
    assert!(
        stdout
            .trim_end()
            .ends_with(&format!("timeline  {}", page.display())),
        "the text report ends with the page's path: {stdout}"
    );
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.len() < 400_000, "{} KB", html.len() / 1024);
    let doc = parse(&html);
    assert_self_contained(&doc, &html);
    let report = read_report(&dir.join("report.json")).unwrap();
    assert_eq!(requests_drawn(&doc) as u64, report.measured.requests);
    assert_eq!(
        select(&doc, "g.fault-window").len(),
        report.measured.faults.len()
    );
    assert_eq!(
        select(&doc, "g.fault-window")[0].attr("data-fault"),
        Some("crash")
    );
    // Requests ran into the outage (they failed, or waited it out), and every failure is
    // placed at the crash on hover.
    let t = report.timeline.as_ref().expect("saved with its timeline");
    let crash = &t.faults[0];
    let healed = crash.healed_us.expect("the crash healed");
    assert!(
        t.requests
            .iter()
            .any(|q| q.end_us >= crash.start_us && q.start_us <= healed),
        "a request ran into the crash"
    );
    for bar in select(&doc, "rect.req.err") {
        let hover: String = bar.text().collect();
        assert!(hover.contains("`crash`"), "{hover}");
    }
    // The pool panel has its three lines and the server's own count.
    for series in ["s-open", "s-idle", "s-inuse", "s-server"] {
        assert_eq!(select(&doc, &format!("path.{series}")).len(), 1, "{series}");
    }

    // `render` draws the same page again from the saved data alone.
    let again = reports.path().join("again.html");
    let out = Command::new(BIN)
        .args(["render", dir.to_str().unwrap(), "--out"])
        .arg(&again)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(&again).unwrap(), html);
}

/// `goneaway diff --html`: the diff's text, then the old and new timelines of each suite
/// side by side, each with all of its requests and faults.
#[test]
fn diff_html_puts_both_runs_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("diff.html");
    let out = Command::new(BIN)
        .args(["diff", FIXTURE, FIXTURE, "--html"])
        .arg(&page)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).ends_with(&format!("timeline  {}\n", page.display())),
        "{}",
        text(&out.stdout)
    );
    let html = std::fs::read_to_string(&page).unwrap();
    let doc = parse(&html);
    assert_self_contained(&doc, &html);
    let report = read_report(&Path::new(FIXTURE).join("report.json")).unwrap();
    let sides = select(&doc, "div.side");
    assert_eq!(sides.len(), 2);
    for side in sides {
        let bars = side.select(&Selector::parse("rect.req").unwrap()).count();
        assert_eq!(bars as u64, report.measured.requests);
        let windows = side
            .select(&Selector::parse("g.fault-window").unwrap())
            .count();
        assert_eq!(windows, report.measured.faults.len());
    }
    assert!(
        select(&doc, "pre.diff")[0]
            .text()
            .collect::<String>()
            .contains("kill-untolerated")
    );
}
