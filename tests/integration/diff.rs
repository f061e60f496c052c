//! `goneaway diff`: the pure comparison of two reports, its rendering, and the command
//! (path resolution, exit codes 0/1/2).
//!
//! The fixtures under `tests/reports/` are real saved reports (`goneaway run … --report-dir`)
//! laid out as a report directory is: `<suite>/<time>-seed<N>/report.json` and a `latest`
//! link. `baseline/` is one run of four suites. `regressed/` holds:
//! - `idle-expiry-pre-ping`: a real run of that suite with `pool_pre_ping = false`, so
//!   the valid suite turns invalid: verdict flipped, a new error class (`gone_away`), a
//!   new lint;
//! - `idle-expiry-stale-pool`: a real re-run, stable part unchanged;
//! - `kill-active`: the baseline edited by hand: every latency doubled and a tolerated
//!   `killed` error class added (stable part unchanged: drift only);
//! - `max-connections`: a suite the baseline does not have (and `leaked-checkouts` is
//!   missing).
//!
//! `bad/` holds unreadable input. No assert here depends on timing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use goneaway::Report;
use goneaway::Verdict;
use goneaway::report::diff::{DiffSet, Loaded, Status, Thresholds, Trend, diff, load, read_report};

const BIN: &str = env!("CARGO_BIN_EXE_goneaway");

fn fixture(side: &str, suite: &str) -> Report {
    read_report(
        &Path::new("tests/reports")
            .join(side)
            .join(suite)
            .join("latest/report.json"),
    )
    .unwrap()
}

fn t() -> Thresholds {
    Thresholds::default()
}

fn metric<'a>(
    d: &'a goneaway::report::diff::ReportDiff,
    name: &str,
) -> &'a goneaway::report::diff::Metric {
    d.measured
        .iter()
        .find(|m| m.metric == name)
        .unwrap_or_else(|| panic!("no metric {name} in {:#?}", d.measured))
}

// ---------------------------------------------------------------------------------------
// The pure function.

#[test]
fn a_report_against_itself_is_unchanged_without_drift() {
    for suite in ["idle-expiry-stale-pool", "kill-active", "leaked-checkouts"] {
        let r = fixture("baseline", suite);
        let d = diff(&r, &r, &t());
        assert_eq!(d.status, Status::Same, "{suite}");
        assert!(d.stable.is_empty(), "{suite}: {:#?}", d.stable);
        assert!(!d.drift, "{suite}: {:#?}", d.measured);
        assert!(d.context.is_empty());
        assert!(d.measured.iter().all(|m| m.delta == Some(0.0)));
    }
}

#[test]
fn a_valid_suite_turning_invalid_is_a_regression_with_every_stable_change_named() {
    let (old, new) = (
        fixture("baseline", "idle-expiry-pre-ping"),
        fixture("regressed", "idle-expiry-pre-ping"),
    );
    let d = diff(&old, &new, &t());
    assert_eq!(d.status, Status::Regression);
    let s = &d.stable;
    let v = s.verdict.as_ref().expect("verdict changed");
    assert_eq!((v.old, v.new), (Verdict::Valid, Verdict::Invalid));
    let met = s.met.as_ref().expect("met changed");
    assert_eq!((met.old, met.new), (true, false));
    assert!(s.expected.is_none() && s.suite.is_none() && s.faults.is_empty());
    assert_eq!(s.unmet.removed, Vec::<String>::new());
    assert_eq!(s.unmet.added.len(), 1);
    assert!(s.unmet.added[0].contains("gone_away"), "{:?}", s.unmet);
    // Only the errors check changed, and it gained one finding.
    assert_eq!(s.checks.len(), 1, "{:#?}", s.checks);
    let c = &s.checks[0];
    assert_eq!(c.name, "errors");
    assert_eq!(
        (c.old, c.new),
        (Some(Verdict::Valid), Some(Verdict::Invalid))
    );
    assert!(c.findings.removed.is_empty());
    assert_eq!(
        c.findings.added,
        ["the application saw gone_away (MySQL server has gone away (2006)) during `night`"]
    );
    // The lint that predicts it appeared, and the run confirmed it.
    assert_eq!(s.lint.len(), 1);
    assert_eq!(s.lint[0].rule, "stale-connections");
    assert!(s.lint[0].old.is_none());
    assert_eq!(
        s.lint[0].new.as_ref().unwrap().outcome.as_deref(),
        Some("confirmed")
    );
    // Measured: the new error class is drift, always, and worse.
    let e = metric(&d, "errors.gone_away");
    assert_eq!((e.old, e.new), (Some(0.0), Some(4.0)));
    assert!(e.drift);
    assert_eq!(e.trend, Some(Trend::Worse));
    // Context: the one pool setting that changed.
    let pool = d
        .context
        .iter()
        .find(|c| c.field == "pool")
        .expect("pool changed");
    assert!(pool.old.contains("pool_pre_ping=true") && pool.new.contains("pool_pre_ping=false"));
    assert!(!d.context.iter().any(|c| c.field == "seed"), "same seed");
}

#[test]
fn the_same_change_backwards_is_a_fix() {
    let d = diff(
        &fixture("regressed", "idle-expiry-pre-ping"),
        &fixture("baseline", "idle-expiry-pre-ping"),
        &t(),
    );
    assert_eq!(d.status, Status::Fix);
    assert_eq!(d.stable.checks[0].findings.removed.len(), 1);
    assert!(d.stable.lint[0].new.is_none());
    let e = metric(&d, "errors.gone_away");
    assert!(e.drift);
    assert_eq!(e.trend, Some(Trend::Better));
}

#[test]
fn doubled_latency_and_a_tolerated_new_error_class_are_drift_not_a_change() {
    let d = diff(
        &fixture("baseline", "kill-active"),
        &fixture("regressed", "kill-active"),
        &t(),
    );
    assert_eq!(d.status, Status::Same, "{:#?}", d.stable);
    assert!(d.drift);
    for p in ["latency.p50", "latency.p99"] {
        let m = metric(&d, p);
        assert!(m.drift, "{m:?}");
        assert_eq!(m.trend, Some(Trend::Worse));
        assert!((m.ratio.unwrap() - 2.0).abs() < 1e-9, "{m:?}");
    }
    let killed = metric(&d, "errors.killed");
    assert_eq!(
        (killed.old, killed.new, killed.drift),
        (Some(0.0), Some(3.0), true)
    );
    // Unchanged figures are compared and shown as such.
    for m in ["throughput", "errors.lost_connection", "recovery.kill#1"] {
        let m = metric(&d, m);
        assert!(!m.drift && m.delta == Some(0.0), "{m:?}");
    }
}

fn tweak(f: impl FnOnce(&mut Report)) -> (Report, Report) {
    let old = fixture("baseline", "idle-expiry-stale-pool");
    let mut new = old.clone();
    f(&mut new);
    (old, new)
}

#[test]
fn latency_drifts_only_beyond_both_the_relative_and_the_absolute_bound() {
    // p50 is about 0.5 ms: doubling it is +100% but under 1 ms, so noise.
    let (old, new) = tweak(|r| r.measured.latency_ms.p50 *= 2.0);
    assert!(old.measured.latency_ms.p50 < 1.0);
    let d = diff(&old, &new, &t());
    assert!(!metric(&d, "latency.p50").drift);
    assert!(!d.drift);
    // With no absolute bound it is drift.
    let strict = Thresholds {
        latency_ms: 0.0,
        ..t()
    };
    assert!(metric(&diff(&old, &new, &strict), "latency.p50").drift);
    // +1.5 ms on p50 is beyond both.
    let (old, new) = tweak(|r| r.measured.latency_ms.p50 += 1.5);
    let d = diff(&old, &new, &t());
    assert!(metric(&d, "latency.p50").drift);
    // p99 a little faster: +/- 10% is noise both ways.
    let (old, new) = tweak(|r| r.measured.latency_ms.p99 *= 0.9);
    assert!(!diff(&old, &new, &t()).drift);
}

#[test]
fn throughput_drifts_beyond_ten_percent_by_default() {
    let (old, new) = tweak(|r| r.measured.throughput *= 0.95);
    assert!(!diff(&old, &new, &t()).drift);
    let (old, new) = tweak(|r| r.measured.throughput *= 0.85);
    let d = diff(&old, &new, &t());
    let m = metric(&d, "throughput");
    assert!(m.drift);
    assert_eq!(m.trend, Some(Trend::Worse));
    let (old, new) = tweak(|r| r.measured.throughput *= 1.5);
    assert_eq!(
        metric(&diff(&old, &new, &t()), "throughput").trend,
        Some(Trend::Better)
    );
}

#[test]
fn error_counts_are_summed_per_class_and_a_vanished_class_is_drift() {
    // 4 -> 5: noise. 4 -> 12: drift. 4 -> 0: the class vanished.
    for (count, drift) in [(5, false), (12, true)] {
        let (old, new) = tweak(|r| r.measured.errors[0].count = count);
        assert_eq!(
            metric(&diff(&old, &new, &t()), "errors.gone_away").drift,
            drift
        );
    }
    let (old, new) = tweak(|r| r.measured.errors.clear());
    let d = diff(&old, &new, &t());
    let m = metric(&d, "errors.gone_away");
    assert_eq!(
        (m.new, m.drift, m.trend),
        (Some(0.0), true, Some(Trend::Better))
    );
    // The same class in two windows counts once, summed.
    let (old, new) = tweak(|r| {
        let mut e = r.measured.errors[0].clone();
        e.window = None;
        e.count = 1;
        r.measured.errors.push(e);
    });
    let d = diff(&old, &new, &t());
    assert_eq!(metric(&d, "errors.gone_away").new, Some(5.0));
    assert_eq!(
        d.measured
            .iter()
            .filter(|m| m.metric.starts_with("errors."))
            .count(),
        1
    );
}

#[test]
fn a_fault_no_worker_recovered_from_is_drift() {
    let (old, new) = tweak(|r| r.measured.faults[0].recovery = None);
    let d = diff(&old, &new, &t());
    let m = metric(&d, "recovery.night");
    assert_eq!((m.new, m.drift, m.trend), (None, true, Some(Trend::Worse)));
    // 52 ms -> 120 ms: beyond 20% but within 100 ms, so noise.
    let (old, new) = tweak(|r| r.measured.faults[0].recovery = Some(Duration::from_millis(120)));
    assert!(!diff(&old, &new, &t()).drift);
    let (old, new) = tweak(|r| r.measured.faults[0].recovery = Some(Duration::from_millis(900)));
    assert!(metric(&diff(&old, &new, &t()), "recovery.night").drift);
}

#[test]
fn stable_changes_that_keep_expectations_met_are_changes() {
    // A different finding with the same verdicts.
    let (old, new) = tweak(|r| {
        r.stable.checks[2].findings[0] =
            "the application saw gone_away (MySQL server has gone away (2006)) during `dawn`".into()
    });
    let d = diff(&old, &new, &t());
    assert_eq!(d.status, Status::Changed);
    assert_eq!(d.stable.checks[0].findings.removed.len(), 1);
    assert_eq!(d.stable.checks[0].findings.added.len(), 1);
    // The faults list changed.
    let (old, new) = tweak(|r| r.stable.faults.push("second-night (idle)".into()));
    let d = diff(&old, &new, &t());
    assert_eq!(d.status, Status::Changed);
    assert_eq!(d.stable.faults.added, ["second-night (idle)"]);
    // A lint outcome flipped: one entry with both sides.
    let (old, new) = tweak(|r| r.stable.lint[0].outcome = Some("refuted".into()));
    let d = diff(&old, &new, &t());
    assert_eq!(d.status, Status::Changed);
    assert_eq!(d.stable.lint.len(), 1);
    let l = &d.stable.lint[0];
    assert_eq!(
        l.old.as_ref().unwrap().outcome.as_deref(),
        Some("confirmed")
    );
    assert_eq!(l.new.as_ref().unwrap().outcome.as_deref(), Some("refuted"));
    // A check only on one side (a throughput floor added).
    let (old, new) = tweak(|r| {
        r.stable.checks.push(goneaway::report::StableCheck {
            name: "throughput".into(),
            verdict: Verdict::Valid,
            findings: vec![],
        })
    });
    let d = diff(&old, &new, &t());
    assert_eq!(d.stable.checks[0].name, "throughput");
    assert_eq!(
        (d.stable.checks[0].old, d.stable.checks[0].new),
        (None, Some(Verdict::Valid))
    );
}

#[test]
fn a_diff_serializes_and_reads_back() {
    let d = diff(
        &fixture("baseline", "idle-expiry-pre-ping"),
        &fixture("regressed", "idle-expiry-pre-ping"),
        &t(),
    );
    let json = serde_json::to_value(&d).unwrap();
    assert_eq!(json["status"], "regression");
    assert_eq!(json["stable"]["verdict"]["new"], "invalid");
    let back: goneaway::report::diff::ReportDiff = serde_json::from_value(json).unwrap();
    assert_eq!(back, d);
}

// ---------------------------------------------------------------------------------------
// Loading and rendering.

#[test]
fn suites_are_matched_by_name_and_the_text_rendering_is_stable() {
    let (o, n) = ("tests/reports/baseline", "tests/reports/regressed");
    let set = DiffSet::of(
        o,
        &load(Path::new(o)).unwrap(),
        n,
        &load(Path::new(n)).unwrap(),
        &t(),
    )
    .unwrap();
    assert_eq!(set.only_old, ["leaked-checkouts"]);
    assert_eq!(set.only_new, ["max-connections"]);
    let status: Vec<(&str, Status)> = set
        .suites
        .iter()
        .map(|d| (d.suite.as_str(), d.status))
        .collect();
    assert_eq!(
        status,
        [
            ("idle-expiry-pre-ping", Status::Regression),
            ("idle-expiry-stale-pool", Status::Same),
            ("kill-active", Status::Same),
        ]
    );
    assert!(set.changed() && set.drift());
    insta::assert_snapshot!("diff-baseline-regressed", set.human());
}

#[test]
fn a_path_may_be_a_report_file_a_report_directory_or_a_suite_directory() {
    let suite = Path::new("tests/reports/baseline/kill-active");
    let real = std::fs::canonicalize(suite.join("latest")).unwrap();
    for p in [
        suite.to_path_buf(),
        suite.join("latest"),
        real.clone(),
        real.join("report.json"),
    ] {
        match load(&p).unwrap() {
            Loaded::One(file, r) => {
                assert_eq!(
                    std::fs::canonicalize(file).unwrap(),
                    real.join("report.json")
                );
                assert_eq!(r.stable.suite, "kill-active");
            }
            Loaded::Many(_) => panic!("{} is one report", p.display()),
        }
    }
    match load(Path::new("tests/reports/regressed")).unwrap() {
        Loaded::Many(m) => assert_eq!(
            m.keys().collect::<Vec<_>>(),
            [
                "idle-expiry-pre-ping",
                "idle-expiry-stale-pool",
                "kill-active",
                "max-connections"
            ]
        ),
        Loaded::One(..) => panic!("a report directory holds many suites"),
    }
}

fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("diff")
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn copy_report(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    std::fs::copy(from.join("report.json"), to.join("report.json")).unwrap();
}

#[test]
fn a_suite_directory_without_latest_means_its_newest_report() {
    let dir = scratch("no-latest").join("kill-active");
    copy_report(
        Path::new("tests/reports/baseline/kill-active/latest"),
        &dir.join("2026-11-25T211930Z-seed1"),
    );
    copy_report(
        Path::new("tests/reports/regressed/kill-active/latest"),
        &dir.join("2026-11-25T213000Z-seed1"),
    );
    match load(&dir).unwrap() {
        Loaded::One(file, r) => {
            assert!(
                file.starts_with(dir.join("2026-11-25T213000Z-seed1")),
                "{}",
                file.display()
            );
            assert_eq!(*r, fixture("regressed", "kill-active"));
        }
        Loaded::Many(_) => panic!("one suite"),
    }
}

#[test]
fn unreadable_input_names_the_file_and_what_is_wrong() {
    let e = load(Path::new("tests/reports/bad/truncated.json")).unwrap_err();
    assert_eq!(e.path, Path::new("tests/reports/bad/truncated.json"));
    assert!(
        e.what
            .starts_with("not a goneaway report: EOF while parsing"),
        "{e}"
    );
    let e = load(Path::new("tests/reports/bad/not-a-report.json")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "tests/reports/bad/not-a-report.json: not a goneaway report: missing field `stable` at line 4 column 1"
    );
    let e = load(Path::new("tests/reports/nowhere")).unwrap_err();
    assert_eq!(e.to_string(), "tests/reports/nowhere: does not exist");
    let e = load(Path::new("tests/reports/bad")).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("tests/reports/bad: no report.json"),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------
// The command.

fn goneaway(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn exit_0_when_only_measured_figures_drift_unless_fail_on_drift() {
    let args = [
        "diff",
        "tests/reports/baseline/idle-expiry-stale-pool",
        "tests/reports/regressed/idle-expiry-stale-pool",
    ];
    let out = goneaway(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("idle-expiry-stale-pool  unchanged; measured drift"),
        "{stdout}"
    );
    assert!(stdout.contains("latency.p99"), "{stdout}");

    let out = goneaway(&[&args[..], &["--fail-on-drift"]].concat());
    assert_eq!(out.status.code(), Some(1));
    // p99 went +54%: with a looser bound it is noise, and nothing fails.
    let out = goneaway(&[&args[..], &["--fail-on-drift", "--latency-pct", "60"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("within noise"));
}

#[test]
fn exit_1_for_a_regression_and_for_suites_on_one_side() {
    let out = goneaway(&["diff", "tests/reports/baseline", "tests/reports/regressed"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("idle-expiry-pre-ping  REGRESSION: expectations were met, now NOT met"),
        "{stdout}"
    );
    assert!(stdout.contains("only old  leaked-checkouts"), "{stdout}");
    assert!(stdout.contains("only new  max-connections"), "{stdout}");
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));

    // A single report file against a suite directory (its `latest`).
    let out = goneaway(&[
        "diff",
        "tests/reports/baseline/idle-expiry-pre-ping/latest/report.json",
        "tests/reports/regressed/idle-expiry-pre-ping",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("context   pool: pool_pre_ping=true -> pool_pre_ping=false")
    );

    // A directory of suites against one suite: matched by name, the rest one-sided.
    let out = goneaway(&[
        "diff",
        "tests/reports/baseline",
        "tests/reports/regressed/kill-active",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("kill-active  unchanged; measured drift"),
        "{stdout}"
    );
    assert!(
        stdout.contains("only old  idle-expiry-pre-ping, idle-expiry-stale-pool, leaked-checkouts"),
        "{stdout}"
    );
}

#[test]
fn exit_0_for_the_same_report_reached_two_ways() {
    let out = goneaway(&[
        "diff",
        "tests/reports/baseline",
        "tests/reports/baseline/kill-active/latest",
    ]);
    // The other three baseline suites are one-sided.
    assert_eq!(out.status.code(), Some(1));
    let out = goneaway(&[
        "diff",
        "tests/reports/baseline/kill-active",
        "tests/reports/baseline/kill-active/latest/report.json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let out = goneaway(&["diff", "tests/reports/baseline", "tests/reports/baseline"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout)
            .contains("0 regression(s), 0 fix(es), 0 changed, 4 unchanged; measured drift in 0")
    );
}

#[test]
fn json_output_is_the_diff_set() {
    let out = goneaway(&[
        "diff",
        "--json",
        "tests/reports/baseline",
        "tests/reports/regressed",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let set: DiffSet = serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    assert_eq!(set.suites.len(), 3);
    assert_eq!(set.suites[0].status, Status::Regression);
    assert_eq!(set.only_new, ["max-connections"]);
    assert_eq!(set.thresholds, Thresholds::default());
}

#[test]
fn exit_2_with_one_line_for_unreadable_input() {
    let broken = scratch("broken-latest").join("kill-active");
    std::fs::create_dir_all(&broken).unwrap();
    std::os::unix::fs::symlink("2026-01-01T000000Z-seed1", broken.join("latest")).unwrap();
    let broken_arg = broken.to_str().unwrap().to_string();
    let cases: [(&str, &str, String); 5] = [
        (
            "tests/reports/bad/truncated.json",
            "tests/reports/baseline",
            "goneaway: diff: tests/reports/bad/truncated.json: not a goneaway report: EOF while parsing".into(),
        ),
        (
            "tests/reports/baseline",
            "tests/reports/bad/not-a-report.json",
            "goneaway: diff: tests/reports/bad/not-a-report.json: not a goneaway report: missing field `stable`".into(),
        ),
        (
            "tests/reports/nowhere",
            "tests/reports/baseline",
            "goneaway: diff: tests/reports/nowhere: does not exist".into(),
        ),
        (
            "tests/reports/baseline",
            &broken_arg,
            format!("goneaway: diff: {broken_arg}/latest: broken link (points at 2026-01-01T000000Z-seed1)"),
        ),
        (
            "tests/reports/baseline/leaked-checkouts",
            "tests/reports/regressed",
            "goneaway: diff: no suite has a report in both tests/reports/baseline/leaked-checkouts and tests/reports/regressed".into(),
        ),
    ];
    for (old, new, want) in cases {
        let out = goneaway(&["diff", old, new]);
        assert_eq!(out.status.code(), Some(2), "{old} {new}");
        let stderr = text(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with(&want), "{stderr}\nwanted: {want}");
        assert!(out.stdout.is_empty());
    }
    // A threshold that makes no sense is a usage error.
    let out = goneaway(&[
        "diff",
        "--latency-pct",
        "-1",
        "tests/reports/baseline",
        "tests/reports/baseline",
    ]);
    assert_eq!(out.status.code(), Some(2));
}
