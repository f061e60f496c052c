//! Writing: generated faults as `[[fault]]` tables, and whole suite files made of a base
//! suite's text with its own faults taken out and these put in.
//!
//! Every case exploration runs is built by parsing the text this module writes, so the
//! file a user gets back is, byte for byte, the suite that failed: `goneaway check`
//! accepts it because the explorer's own run already did.

use std::fmt::Write as _;
use std::time::Duration;

use crate::fault::{Fault, KillTarget};
use crate::history::Lasts;
use crate::proxy::{Stream, ToxicKind};
use crate::schedule::FaultSpec;

/// A suite's text cut in two: everything but its `[[fault]]` tables (and its top-level
/// `seed`, which each case sets), and those tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    pub rest: String,
    pub faults: String,
}

fn header(line: &str) -> Option<&str> {
    let t = line.trim_start();
    t.starts_with('[').then_some(t)
}

/// Line by line: a `[[fault]]` header opens a fault table, any other header closes it.
/// Suites are flat TOML (no multi-line values that start a line with `[`), which is what
/// makes a line scan enough.
pub fn split(text: &str) -> Split {
    let mut rest = String::new();
    let mut faults = String::new();
    let (mut in_fault, mut top) = (false, true);
    for line in text.lines() {
        if let Some(h) = header(line) {
            top = false;
            in_fault = h.starts_with("[[fault]]");
        }
        let key = line.trim_start();
        if top && key.starts_with("seed") && key[4..].trim_start().starts_with('=') {
            continue;
        }
        let out = if in_fault { &mut faults } else { &mut rest };
        out.push_str(line);
        out.push('\n');
    }
    Split { rest, faults }
}

/// Milliseconds, which the suite format reads back exactly.
fn ms(d: Duration) -> String {
    format!("\"{}ms\"", d.as_millis())
}

/// Seconds for people: `2.35s`, `300ms`.
pub fn secs(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        return format!("{}ms", d.as_millis());
    }
    let s = format!("{:.3}", d.as_secs_f64());
    format!("{}s", s.trim_end_matches('0').trim_end_matches('.'))
}

fn target(t: KillTarget) -> &'static str {
    match t {
        KillTarget::Idle => "idle",
        KillTarget::Active => "active",
        KillTarget::All => "all",
    }
}

fn stream(streams: &[Stream]) -> &'static str {
    match streams {
        [Stream::Upstream] => "upstream",
        [Stream::Downstream] => "downstream",
        _ => "both",
    }
}

/// `{ latency = 300, jitter = 0 }`: Toxiproxy's names and units, as the suite reads them.
fn attributes(kind: &ToxicKind) -> String {
    match kind.attributes_json() {
        serde_json::Value::Object(map) => {
            let pairs: Vec<String> = map.iter().map(|(k, v)| format!("{k} = {v}")).collect();
            format!("{{ {} }}", pairs.join(", "))
        }
        other => other.to_string(),
    }
}

/// One `[[fault]]` table.
pub fn fault_table(f: &FaultSpec) -> String {
    let mut t = String::from("[[fault]]\n");
    let kind = f.fault.kind();
    let _ = writeln!(t, "kind = \"{}\"", kind.name());
    let _ = writeln!(t, "name = \"{}\"", f.name);
    let _ = writeln!(t, "at = {}", ms(f.at));
    if let Lasts::For(d) = f.lasts {
        let _ = writeln!(t, "duration = {}", ms(d));
    }
    match &f.fault {
        Fault::Kill { target: k } => {
            let _ = writeln!(t, "target = \"{}\"", target(*k));
        }
        Fault::WaitTimeout { value } => {
            let _ = writeln!(t, "value = \"{}s\"", value.as_secs());
        }
        Fault::MaxConnections { value } => {
            let _ = writeln!(t, "value = {value}");
        }
        Fault::SetGlobal { variable, value } => {
            let _ = writeln!(t, "variable = \"{variable}\"\nvalue = \"{value}\"");
        }
        Fault::Toxic {
            kind: toxic,
            streams,
            toxicity,
            connections,
        } => {
            if !matches!(toxic, ToxicKind::Timeout { timeout: 0 }) {
                let _ = writeln!(t, "attributes = {}", attributes(toxic));
            }
            let _ = writeln!(t, "stream = \"{}\"", stream(streams));
            let _ = writeln!(t, "toxicity = {toxicity:?}");
            if *connections != crate::proxy::toxic::Scope::All {
                let _ = writeln!(t, "connections = \"{}\"", connections.as_str());
            }
        }
        Fault::Idle
        | Fault::Crash
        | Fault::Restart
        | Fault::Pause
        | Fault::Disconnect
        | Fault::Cut
        | Fault::ReadOnly => {}
        Fault::Failover { stop, reset } => {
            if *stop {
                let _ = writeln!(t, "old_primary = \"stopped\"");
            }
            if *reset {
                let _ = writeln!(t, "reset = true");
            }
        }
    }
    if let Some(r) = f.repeat {
        let _ = writeln!(
            t,
            "repeat = {{ every = {}, times = {} }}",
            ms(r.every),
            r.times
        );
    }
    if !f.jitter.is_zero() {
        let _ = writeln!(t, "jitter = {}", ms(f.jitter));
    }
    if !f.tolerate.is_empty() {
        let list: Vec<String> = f.tolerate.iter().map(|c| format!("\"{c}\"")).collect();
        let _ = writeln!(t, "tolerate = [{}]", list.join(", "));
    }
    if f.expect_no_effect {
        t.push_str("effect = \"none\"\n");
    }
    t
}

/// All the tables, a blank line apart.
pub fn fault_tables(faults: &[FaultSpec]) -> String {
    faults
        .iter()
        .map(fault_table)
        .collect::<Vec<_>>()
        .join("\n")
}

/// A whole suite: `comment` (each line made a TOML comment), the run's `seed`, the base's
/// text without its faults, and `faults` (TOML tables) just before `[expect]` (or at the
/// end), where a reader looks for them.
pub fn suite_text(comment: &str, seed: u64, rest: &str, faults: &str) -> String {
    let mut out = String::new();
    for line in comment.lines() {
        out.push_str(if line.is_empty() { "#" } else { "# " });
        out.push_str(line);
        out.push('\n');
    }
    let _ = writeln!(out, "seed = {seed}");
    let faults = faults.trim_end();
    let mut placed = false;
    for line in rest.lines() {
        if !placed && header(line).is_some_and(|h| h.starts_with("[expect]")) {
            out.push_str(faults);
            out.push_str("\n\n");
            placed = true;
        }
        out.push_str(line);
        out.push('\n');
    }
    if !placed {
        out.push('\n');
        out.push_str(faults);
        out.push('\n');
    }
    out
}

/// One fault in words, for the summary.
pub fn describe(f: &FaultSpec) -> String {
    let what = match &f.fault {
        Fault::Idle => "all workers idle".to_string(),
        Fault::WaitTimeout { value } => format!("wait_timeout lowered to {}", secs(*value)),
        Fault::MaxConnections { value } => format!("max_connections lowered to {value}"),
        Fault::SetGlobal { variable, value } => format!("SET GLOBAL {variable} = {value}"),
        Fault::Kill { target: k } => format!("KILL CONNECTION of {} pool sessions", target(*k)),
        Fault::Crash => "server crash (SIGKILL)".into(),
        Fault::Restart => "server restart".into(),
        Fault::Pause => "server paused (SIGSTOP)".into(),
        Fault::Disconnect => "network disconnected".into(),
        Fault::Cut => "proxy cut".into(),
        Fault::ReadOnly => "server read-only".into(),
        Fault::Failover { stop, reset } => format!(
            "failover to the replica (old primary {}{})",
            if *stop { "stopped" } else { "read-only" },
            if *reset { ", connections reset" } else { "" }
        ),
        Fault::Toxic {
            kind: toxic,
            streams,
            toxicity,
            ..
        } => {
            let attrs = match toxic {
                ToxicKind::Timeout { timeout: 0 } => String::new(),
                _ => format!(" {}", attributes(toxic)),
            };
            format!(
                "{} toxic{attrs} on {}, toxicity {toxicity:?}",
                f.fault.kind(),
                stream(streams)
            )
        }
    };
    let mut s = format!("{}: {what} at {}", f.name, secs(f.at));
    if let Lasts::For(d) = f.lasts {
        let _ = write!(s, " for {}", secs(d));
    }
    if let Some(r) = f.repeat {
        let _ = write!(s, ", {} more every {}", r.times, secs(r.every));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explore::strategy::{Cases, Geometry, Shard, alphabet, schedules};
    use crate::server::BackendKind;
    use crate::suite::Suite;

    const BASE: &str = "# the outage\nname = \"outage\"\nseed = 3\ndescription = \"d\"\n\n[server]\nwait_timeout = \"2s\"\n\n[workload]\nworkers = 2\nduration = \"9s\"\n\n[[fault]]\nkind = \"idle\"\nat = \"2s\"\nduration = \"3s\"\n\n[expect]\nverdict = \"valid\"\n";

    #[test]
    fn split_takes_out_faults_and_the_seed() {
        let s = split(BASE);
        assert!(!s.rest.contains("[[fault]]") && !s.rest.contains("seed"));
        assert!(s.rest.contains("[expect]") && s.rest.contains("[workload]"));
        assert!(s.faults.starts_with("[[fault]]\nkind = \"idle\""));
    }

    #[test]
    fn generated_faults_read_back_as_themselves() {
        // Every kind, many draws: what is written is exactly what was generated.
        let strategy = schedules(
            &alphabet(BackendKind::Docker, None),
            3,
            Geometry::for_workload(Duration::from_secs(9)),
        );
        let rest = split(BASE).rest;
        for g in Cases::new(strategy, 5, Shard::ALL).take(200) {
            let faults = g.tree.current();
            let text = suite_text("found by a test\n\nline", 9, &rest, &fault_tables(&faults));
            let text = text.replace("[server]\n", "[server]\nbackend = \"docker\"\n");
            let suite =
                Suite::from_toml(&text, "t.toml", "t").unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(suite.faults, faults, "{text}");
            assert_eq!(suite.seed, Some(9));
        }
    }

    #[test]
    fn words_name_the_fault() {
        let strategy = schedules(
            &[crate::history::FaultKind::Kill],
            1,
            Geometry::for_workload(Duration::from_secs(9)),
        );
        let g = Cases::new(strategy, 1, Shard::ALL).next().unwrap();
        let words = describe(&g.tree.current()[0]);
        assert!(words.starts_with("kill-1: KILL CONNECTION of "), "{words}");
    }
}
