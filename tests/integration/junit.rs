//! JUnit XML for CI: one testsuite `goneaway`, one testcase per suite run. The XML is
//! read back with quick-junit's own parser, so what is asserted is what CI reads.

use crate::common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use goneaway::Report;
use goneaway::report::junit::Junit;
use quick_junit::{NonSuccessKind, TestCaseStatus};

const BIN: &str = env!("CARGO_BIN_EXE_goneaway");

fn fixture(side: &str, suite: &str) -> Report {
    goneaway::report::diff::read_report(
        &Path::new("tests/reports")
            .join(side)
            .join(suite)
            .join("latest/report.json"),
    )
    .unwrap()
}

fn parse(xml: &str) -> quick_junit::Report {
    quick_junit::Report::deserialize_from_str(xml).unwrap_or_else(|e| panic!("{e}\n{xml}"))
}

#[test]
fn a_met_report_an_unmet_one_and_a_harness_error() {
    let met = fixture("baseline", "idle-expiry-stale-pool");
    let unmet = fixture("regressed", "idle-expiry-pre-ping");
    assert!(met.stable.met && !unmet.stable.met);
    let mut j = Junit::new();
    j.add_report(&met).add_report(&unmet).add_error(
        "server-crash",
        "docker",
        "server: docker is not running",
    );
    let xml = j.to_xml();
    let r = parse(&xml);
    assert_eq!(
        (r.tests, r.failures, r.errors, r.skipped),
        (3, 1, 1, 0),
        "{xml}"
    );
    assert_eq!(r.test_suites.len(), 1);
    let s = &r.test_suites[0];
    assert_eq!(s.name.as_str(), "goneaway");
    assert_eq!((s.tests, s.failures, s.errors), (3, 1, 1));
    let names: Vec<&str> = s.test_cases.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "idle-expiry-stale-pool",
            "idle-expiry-pre-ping",
            "server-crash"
        ]
    );

    let ok = &s.test_cases[0];
    assert!(matches!(ok.status, TestCaseStatus::Success { .. }));
    assert_eq!(ok.classname.as_ref().unwrap().as_str(), "process");
    // time = the workload's duration (serialized in ms precision).
    let t = ok.time.unwrap();
    assert!(t.abs_diff(met.measured.workload) < Duration::from_millis(1));
    let seed = ok
        .properties
        .iter()
        .find(|p| p.name.as_str() == "seed")
        .unwrap();
    assert_eq!(seed.value.as_str(), met.measured.seed.to_string());

    match &s.test_cases[1].status {
        TestCaseStatus::NonSuccess {
            kind,
            message,
            description,
            ..
        } => {
            assert_eq!(*kind, NonSuccessKind::Failure);
            assert_eq!(
                message.as_ref().unwrap().as_str(),
                unmet.stable.unmet.join("; ")
            );
            let body = description.as_ref().unwrap().as_str();
            assert_eq!(body.trim_end(), unmet.human().trim_end());
            assert!(body.contains("result    expectations NOT met:"), "{body}");
        }
        other => panic!("an unmet suite is a failure: {other:?}"),
    }

    let err = &s.test_cases[2];
    assert_eq!(err.classname.as_ref().unwrap().as_str(), "docker");
    match &err.status {
        TestCaseStatus::NonSuccess { kind, message, .. } => {
            assert_eq!(*kind, NonSuccessKind::Error);
            assert_eq!(
                message.as_ref().unwrap().as_str(),
                "server: docker is not running"
            );
        }
        other => panic!("a harness error is an error: {other:?}"),
    }
}

#[test]
fn every_met_report_is_a_success() {
    let mut j = Junit::new();
    for suite in [
        "idle-expiry-stale-pool",
        "idle-expiry-pre-ping",
        "kill-active",
        "leaked-checkouts",
    ] {
        j.add_report(&fixture("baseline", suite));
    }
    let xml = j.to_xml();
    let r = parse(&xml);
    assert_eq!((r.tests, r.failures, r.errors), (4, 0, 0), "{xml}");
    assert!(
        !xml.contains("<failure") && !xml.contains("<error"),
        "{xml}"
    );
    // The suite's time is the sum of its cases'.
    let sum: Duration = r.test_suites[0]
        .test_cases
        .iter()
        .map(|c| c.time.unwrap())
        .sum();
    let total = r.test_suites[0].time.unwrap();
    assert!(total.abs_diff(sum) < Duration::from_millis(5));
}

#[test]
fn run_junit_records_a_harness_error_without_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ci/junit.xml");
    let out = Command::new(BIN)
        .args(["run", "kill-idle", "--no-save", "--junit"])
        .arg(&path)
        .env("GONEAWAY_MYSQLD", "/nonexistent/mariadbd")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let xml = std::fs::read_to_string(&path).expect("the XML is written even then");
    let r = parse(&xml);
    assert_eq!((r.tests, r.failures, r.errors), (1, 0, 1), "{xml}");
    let case = &r.test_suites[0].test_cases[0];
    assert_eq!(case.name.as_str(), "kill-idle");
    assert_eq!(case.classname.as_ref().unwrap().as_str(), "process");
}

#[test]
fn run_junit_has_one_case_per_suite_run() {
    if !common::mariadb() {
        return;
    }
    // The stale pool twice: as shipped (a negative control, met) and told to expect no
    // errors (not met).
    let dir = tempfile::tempdir().unwrap();
    let text = goneaway::BUILTIN
        .iter()
        .find(|(n, _)| *n == "idle-expiry-stale-pool")
        .unwrap()
        .1;
    let hopeful = text.replace(
        "verdict = \"invalid\"\nerrors = [\"gone_away\"]\nwindows = { night = [\"gone_away\"] }",
        "verdict = \"valid\"",
    );
    assert_ne!(hopeful, text);
    let suite = dir.path().join("stale-but-hopeful.toml");
    std::fs::write(&suite, hopeful).unwrap();
    let path = dir.path().join("junit.xml");
    let out = Command::new(BIN)
        .args(["run", "idle-expiry-stale-pool"])
        .arg(&suite)
        .args(["--no-save", "--seed", "3", "--junit"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let xml = std::fs::read_to_string(&path).unwrap();
    let r = parse(&xml);
    assert_eq!((r.tests, r.failures, r.errors), (2, 1, 0), "{xml}");
    let cases = &r.test_suites[0].test_cases;
    assert_eq!(cases[0].name.as_str(), "idle-expiry-stale-pool");
    assert!(matches!(cases[0].status, TestCaseStatus::Success { .. }));
    assert_eq!(cases[1].name.as_str(), "stale-but-hopeful");
    match &cases[1].status {
        TestCaseStatus::NonSuccess {
            kind: NonSuccessKind::Failure,
            message,
            ..
        } => assert!(
            message.as_ref().unwrap().as_str().contains("gone_away"),
            "{message:?}"
        ),
        other => panic!("{other:?}"),
    }
}
