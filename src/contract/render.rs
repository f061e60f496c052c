//! The table in words: for a terminal, as Markdown for a README or a CI page, and its
//! stable part (outcome, failed checks, error classes) for snapshots.

use std::fmt::Write;
use std::time::Duration;

use super::{Cell, Outcome, Table};

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// A failed cell's reason in a word or two, from its failed checks.
fn why(c: &Cell) -> String {
    if c.outcome != Outcome::Fail {
        return String::new();
    }
    if c.hung() {
        return "hangs".into();
    }
    let mut words: Vec<&str> = c
        .failed_checks()
        .iter()
        .map(|check| match *check {
            "errors" => "errors",
            "fail-within" => "slow to fail",
            "recovery" => "no recovery",
            "pool-baseline" => "stranded",
            "writes" => "lost writes",
            other => other,
        })
        .collect();
    words.dedup();
    words.join(", ")
}

/// The short label in the grid: `pass`, `FAIL hangs`, `unknown`, `error`.
fn label(c: &Cell) -> String {
    match c.outcome {
        Outcome::Fail => format!("FAIL {}", why(c)).trim_end().to_string(),
        o => o.word().to_string(),
    }
}

/// What the application saw and how long it waited, in one line.
fn measured(c: &Cell) -> String {
    if c.outcome == Outcome::Error {
        return c.reasons.first().cloned().unwrap_or_default();
    }
    let mut parts = Vec::new();
    if c.errors.is_empty() {
        parts.push("no error".to_string());
    } else {
        let errors: Vec<String> = c
            .errors
            .iter()
            .map(|(class, n)| format!("{} {n}", class.name()))
            .collect();
        parts.push(errors.join(", "));
    }
    if let Some(d) = c.first_error {
        parts.push(format!("first error {}", secs(d)));
    }
    if let Some(d) = c.longest_wait {
        parts.push(format!("longest wait {}", secs(d)));
    }
    match (c.recovery, c.not_recovered) {
        (_, n) if n > 0 => parts.push(format!("{n} worker(s) never recovered")),
        (Some(d), _) => parts.push(format!("recovered in {}", secs(d))),
        (None, _) => {}
    }
    parts.join(" · ")
}

/// The library and versions a client's cells ran with: the parenthesised end of the
/// pool line (`(mysql 2.18.1 on node 20.20.2, settings read back …)`), or all of it.
fn library(c: &Cell) -> &str {
    let l = c.library.as_str();
    if !l.ends_with(')') {
        return l;
    }
    // The parenthesis that the last `)` closes; the versions may hold their own.
    let mut depth = 0;
    for (i, ch) in l.char_indices().rev() {
        match ch {
            ')' => depth += 1,
            '(' => {
                depth -= 1;
                if depth == 0 {
                    return &l[i + 1..l.len() - 1];
                }
            }
            _ => {}
        }
    }
    l
}

fn rows(t: &Table) -> impl Iterator<Item = (&(String, String), &[Cell])> {
    t.rows.iter().zip(t.cells.chunks(t.faults.len().max(1)))
}

/// For a terminal: the grid of outcomes, then each cell's measurements, then the
/// libraries measured.
pub fn text(t: &Table) -> String {
    let mut out = String::new();
    let server = t
        .cells
        .iter()
        .find(|c| !c.server.is_empty())
        .map(|c| c.server.as_str())
        .unwrap_or("no server");
    let _ = writeln!(
        out,
        "contract: {} configuration(s) × {} fault(s) on {server}\n",
        t.rows.len(),
        t.faults.len()
    );
    let client_w = t
        .rows
        .iter()
        .map(|(c, _)| c.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let config_w = t
        .rows
        .iter()
        .map(|(_, k)| k.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let widths: Vec<usize> = t
        .faults
        .iter()
        .enumerate()
        .map(|(i, f)| {
            rows(t)
                .map(|(_, cells)| cells.get(i).map(|c| label(c).len()).unwrap_or(0))
                .max()
                .unwrap_or(0)
                .max(f.len())
        })
        .collect();
    let mut line = format!("{:client_w$}  {:config_w$}", "client", "config");
    for (f, w) in t.faults.iter().zip(&widths) {
        let _ = write!(line, "  {f:w$}");
    }
    let _ = writeln!(out, "{}", line.trim_end());
    for ((client, config), cells) in rows(t) {
        let mut line = format!("{client:client_w$}  {config:config_w$}");
        for (c, w) in cells.iter().zip(&widths) {
            let _ = write!(line, "  {:w$}", label(c));
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    let fault_w = t.faults.iter().map(|f| f.len()).max().unwrap_or(0);
    for ((client, config), cells) in rows(t) {
        let _ = writeln!(out, "\n{client} {config}");
        for c in cells {
            let _ = writeln!(
                out,
                "  {:fault_w$}  {:7}  {}",
                c.fault,
                c.outcome.word(),
                measured(c)
            );
        }
    }
    out.push_str("\nmeasured with\n");
    let mut seen = Vec::new();
    for c in &t.cells {
        if !c.library.is_empty() && !seen.contains(&(&c.client, &c.config)) {
            seen.push((&c.client, &c.config));
            let _ = writeln!(out, "  {} {}: {}", c.client, c.config, c.library);
        }
    }
    out
}

/// The table as Markdown: one row per configuration, one column per fault, each cell its
/// outcome and measurements.
pub fn markdown(t: &Table) -> String {
    let mut out = String::new();
    let _ = write!(out, "| client | config |");
    for f in &t.faults {
        let _ = write!(out, " {f} |");
    }
    out.push('\n');
    out.push_str("|---|---|");
    out.push_str(&"---|".repeat(t.faults.len()));
    out.push('\n');
    for ((client, config), cells) in rows(t) {
        let _ = write!(out, "| {client} | {config} |");
        for c in cells {
            let mark = match c.outcome {
                Outcome::Pass => "✅ pass".to_string(),
                Outcome::Fail => format!("❌ {}", label(c)),
                Outcome::Unknown => "❔ unknown".to_string(),
                Outcome::Error => "⚠️ error".to_string(),
            };
            let detail = measured(c).replace('|', "\\|").replace(" · ", "<br>");
            let _ = write!(out, " {mark}<br>{detail} |");
        }
        out.push('\n');
    }
    let mut seen = Vec::new();
    out.push('\n');
    for c in &t.cells {
        if !c.library.is_empty() && !seen.contains(&&c.client) {
            seen.push(&c.client);
            let _ = writeln!(out, "- **{}**: {}", c.client, library(c));
        }
    }
    out
}

/// What is the same on every run: each cell's outcome, failed checks, and the classes of
/// the errors that broke the contract. (Which tolerated errors a restart shows depends on
/// what was in flight when it came: not stable.)
pub fn stable(t: &Table) -> String {
    let mut out = String::new();
    for ((client, config), cells) in rows(t) {
        for c in cells {
            let classes: Vec<&str> = c.broke.iter().map(|class| class.name()).collect();
            let _ = write!(out, "{client} {config} {}: {}", c.fault, c.outcome.word());
            let checks = c.failed_checks();
            if !checks.is_empty() {
                let _ = write!(out, " [{}]", checks.join(", "));
            }
            if !classes.is_empty() {
                let _ = write!(out, " ({})", classes.join(", "));
            }
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::ErrorClass;

    fn cell(client: &str, config: &str, fault: &str, outcome: Outcome) -> Cell {
        Cell {
            client: client.into(),
            config: config.into(),
            fault: fault.into(),
            outcome,
            reasons: Vec::new(),
            errors: Vec::new(),
            broke: Vec::new(),
            first_error: None,
            longest_wait: None,
            recovery: Some(Duration::from_millis(300)),
            not_recovered: 0,
            library: "connectionLimit=10 (mysql 2.18.1 on node 20.20.2, settings read back from the live pool)".into(),
            server: "process 10.11.19-MariaDB".into(),
            seed: 1,
            report: None,
            key: "k".into(),
        }
    }

    fn table() -> Table {
        let mut hang = cell("node-mysql", "defaults", "blackhole", Outcome::Fail);
        hang.reasons = vec![
            "errors: the application saw timeout during `blackhole`".into(),
            "pool-baseline: the pool never took back connections".into(),
        ];
        hang.errors = vec![(ErrorClass::Timeout, 4)];
        hang.broke = vec![ErrorClass::Timeout];
        hang.first_error = Some(Duration::from_millis(10_020));
        hang.longest_wait = Some(Duration::from_secs(10));
        hang.recovery = None;
        hang.not_recovered = 2;
        let mut ok = cell("node-mysql", "defaults", "restart", Outcome::Pass);
        ok.errors = vec![
            (ErrorClass::LostConnection, 3),
            (ErrorClass::ConnectRefused, 9),
        ];
        ok.first_error = Some(Duration::from_millis(40));
        ok.longest_wait = Some(Duration::from_millis(1500));
        let mut err = cell("node-mysql", "recommended", "blackhole", Outcome::Error);
        err.reasons = vec!["client: node-mysql adapter: no node | on PATH".into()];
        err.library = String::new();
        let slow = cell("node-mysql", "recommended", "restart", Outcome::Unknown);
        Table {
            faults: vec!["blackhole".into(), "restart".into()],
            rows: vec![
                ("node-mysql".into(), "defaults".into()),
                ("node-mysql".into(), "recommended".into()),
            ],
            cells: vec![hang, ok, err, slow],
        }
    }

    #[test]
    fn the_library_is_the_last_parenthesis_whole() {
        let mut c = cell("hikaricp", "defaults", "restart", Outcome::Pass);
        c.library = "maximumPoolSize=8 (hikaricp 2.7.9 on mariadb-java-client 2.7.6 (Java 17.0.15), settings read back from the live pool)".into();
        assert_eq!(
            library(&c),
            "hikaricp 2.7.9 on mariadb-java-client 2.7.6 (Java 17.0.15), settings read back from the live pool"
        );
        c.library = "your pool".into();
        assert_eq!(library(&c), "your pool");
    }

    #[test]
    fn the_table_as_text_markdown_and_its_stable_part() {
        let t = table();
        insta::assert_snapshot!("contract_text", text(&t));
        insta::assert_snapshot!("contract_markdown", markdown(&t));
        insta::assert_snapshot!("contract_stable", stable(&t));
    }
}
