//! JUnit XML for CI systems: one testsuite `goneaway`, one testcase per suite run.
//!
//! A suite whose expectations were not met is a `failure` (message: the unmet reasons;
//! body: the human report); a run the harness could not finish is an `error`. The
//! testcase's time is the workload's duration; its properties carry what reproduces it.

use std::path::Path;

use quick_junit::{NonSuccessKind, Property, TestCase, TestCaseStatus, TestSuite};

use super::Report;

/// The name of the one testsuite (and of the report).
pub const SUITE: &str = "goneaway";

/// A JUnit report being collected, one testcase per suite run.
#[derive(Debug, Clone)]
pub struct Junit {
    suite: TestSuite,
}

impl Default for Junit {
    fn default() -> Self {
        Junit::new()
    }
}

impl Junit {
    pub fn new() -> Self {
        Junit {
            suite: TestSuite::new(SUITE),
        }
    }

    /// A finished run: success when its expectations were met, a failure otherwise.
    pub fn add_report(&mut self, r: &Report) -> &mut Self {
        let status = if r.stable.met {
            TestCaseStatus::success()
        } else {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            let message = if r.stable.unmet.is_empty() {
                "expectations not met".to_string()
            } else {
                r.stable.unmet.join("; ")
            };
            s.set_message(message)
                .set_type("expectations not met")
                .set_description(r.human());
            s
        };
        let (s, m) = (&r.stable, &r.measured);
        let mut case = TestCase::new(s.suite.as_str(), status);
        case.set_classname(m.backend.as_str())
            .set_time(m.workload)
            .add_properties([
                Property::new("verdict", lower(&s.verdict)),
                Property::new("expected", lower(&s.expected)),
                Property::new("seed", m.seed.to_string()),
                Property::new("server_version", m.server_version.as_str()),
                Property::new("reproduce", m.reproduce.as_str()),
            ]);
        self.add(case)
    }

    /// A run the harness could not finish (a server that did not start, an
    /// interruption before the run began, …).
    pub fn add_error(&mut self, suite: &str, backend: &str, error: &str) -> &mut Self {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
        status.set_message(error).set_type("harness error");
        let mut case = TestCase::new(suite, status);
        case.set_classname(backend);
        self.add(case)
    }

    /// One finding of an exploration: a confirmed failure (`failure` with its unmet
    /// reasons and the minimal schedule), or, when nothing broke, one passing testcase.
    pub fn add_explored(
        &mut self,
        name: &str,
        failure: Option<(&str, &str)>,
        properties: &[(&str, String)],
    ) -> &mut Self {
        let status = match failure {
            None => TestCaseStatus::success(),
            Some((message, body)) => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(message)
                    .set_type("confirmed failure")
                    .set_description(body);
                s
            }
        };
        let mut case = TestCase::new(name, status);
        case.set_classname("explore").add_properties(
            properties
                .iter()
                .map(|(k, v)| Property::new(*k, v.as_str())),
        );
        self.add(case)
    }

    fn add(&mut self, case: TestCase) -> &mut Self {
        let total = self.suite.time.unwrap_or_default() + case.time.unwrap_or_default();
        self.suite.set_time(total);
        self.suite.add_test_case(case);
        self
    }

    /// The XML document.
    pub fn to_xml(&self) -> String {
        let mut report = quick_junit::Report::new(SUITE);
        report.add_test_suite(self.suite.clone());
        report
            .to_string()
            .expect("serializing to a String does not fail")
    }

    /// Write the XML document to `path`, creating its parent directory.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, self.to_xml())
    }
}

fn lower<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}
