//! What an exploration prints: a summary, then each confirmed failure with its minimal
//! schedule, what failed and where its suite file is.

use std::fmt::Write as _;

use super::Exploration;
use super::write::secs;

impl Exploration {
    pub fn human(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "explored  {} (seed {}, shard {}, faults {})",
            self.base,
            self.seed,
            self.shard,
            self.alphabet.join(",")
        );
        let _ = writeln!(
            s,
            "cases     {} run{}, {} passed, {} confirmed, {} flaky, {} inconclusive, in {}{}",
            self.cases,
            if self.replayed > 0 {
                format!(" (+{} remembered replayed first)", self.replayed)
            } else {
                String::new()
            },
            self.passed,
            self.confirmed.len(),
            self.flaky.len(),
            self.inconclusive.len(),
            secs(self.elapsed),
            if self.interrupted {
                " (interrupted: only part was explored)"
            } else {
                ""
            }
        );
        // Not failures: a generated fault that touched nothing proves nothing either way.
        for i in &self.inconclusive {
            let _ = writeln!(
                s,
                "          {} proved nothing: {}",
                i.case,
                i.unmet.first().map_or("", String::as_str)
            );
        }
        for (k, c) in self.confirmed.iter().enumerate() {
            let _ = writeln!(
                s,
                "\nfailure {} ({}, run seed {}): failed {}/{} runs; shrunk from {} fault(s) in {} step(s) to:",
                k + 1,
                c.case,
                c.run_seed,
                c.runs,
                c.runs,
                c.found_with,
                c.shrink_steps
            );
            for f in &c.schedule {
                let _ = writeln!(s, "  {f}");
            }
            let _ = writeln!(s, "  failed checks: {}", or_none(&c.checks.join(", ")));
            for u in &c.unmet {
                let _ = writeln!(s, "    {u}");
            }
            match &c.path {
                Some(p) => {
                    let _ = writeln!(s, "  suite: {} (goneaway run {0})", p.display());
                }
                None => s.push_str("  suite: not written (no report directory)\n"),
            }
        }
        for f in &self.flaky {
            let _ = writeln!(
                s,
                "\nflaky {} (run seed {}): failed {}/{} runs, not shrunk:",
                f.case, f.run_seed, f.failed, f.runs
            );
            for line in &f.schedule {
                let _ = writeln!(s, "  {line}");
            }
        }
        let _ = writeln!(
            s,
            "\nresult    {}",
            if self.ok() {
                "no case broke the expectations"
            } else {
                "expectations BROKEN by a confirmed schedule"
            }
        );
        let _ = writeln!(s, "reproduce {}", self.reproduce);
        s
    }
}

fn or_none(s: &str) -> &str {
    if s.is_empty() { "none invalid" } else { s }
}
