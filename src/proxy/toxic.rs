//! Toxics as data: the seven Toxiproxy types, their attributes, and their JSON form.
//!
//! A toxic here is only a description. What it does to bytes lives in `pipe.rs`, which
//! re-reads the current chain of these descriptions for every chunk, so a change made
//! through the API reaches connections that are already open.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use serde_json::{Map, Value, json};

use crate::history::ToxicCounts;

/// Which way bytes flow through a proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// client -> server
    Upstream,
    /// server -> client
    Downstream,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Upstream => "upstream",
            Stream::Downstream => "downstream",
        }
    }

    /// Toxiproxy accepts the direction case-insensitively.
    pub fn parse(s: &str) -> Option<Stream> {
        match s.to_ascii_lowercase().as_str() {
            "upstream" => Some(Stream::Upstream),
            "downstream" => Some(Stream::Downstream),
            _ => None,
        }
    }
}

/// Which connections a toxic acts on: goneaway's extension (`"connections"` in a toxic's
/// JSON; Toxiproxy has none and acts on every connection). `new` is a server that
/// accepts TCP and never speaks to connections opened while it lasts (a black hole in
/// the handshake), `established` spares them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scope {
    #[default]
    All,
    /// Only connections opened after the toxic was added.
    New,
    /// Only connections already open when the toxic was added.
    Established,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::All => "all",
            Scope::New => "new",
            Scope::Established => "established",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "all" => Some(Scope::All),
            "new" => Some(Scope::New),
            "established" => Some(Scope::Established),
            _ => None,
        }
    }

    /// Whether a connection opened at `opened` is subject to a toxic added at `added`.
    pub fn admits(self, opened: Instant, added: Instant) -> bool {
        match self {
            Scope::All => true,
            Scope::New => opened >= added,
            Scope::Established => opened < added,
        }
    }
}

/// One toxic's type and attributes, with Toxiproxy's attribute names and units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToxicKind {
    /// Delay every chunk by `latency` ± `jitter` milliseconds.
    Latency { latency: u64, jitter: u64 },
    /// At most `rate` KB/s (1 KB = 1000 bytes); 0 means unlimited.
    Bandwidth { rate: u64 },
    /// Hold the close (FIN) back for `delay` ms.
    SlowClose { delay: u64 },
    /// Swallow all data; close after `timeout` ms, or never when 0 (the black hole).
    Timeout { timeout: u64 },
    /// On data, wait `timeout` ms, then reset both sides (RST via SO_LINGER 0).
    ResetPeer { timeout: u64 },
    /// Cut data into pieces of `average_size` ± `size_variation` bytes, `delay` µs apart.
    Slicer {
        average_size: u64,
        size_variation: u64,
        delay: u64,
    },
    /// Pass `bytes` bytes, then close the connection.
    LimitData { bytes: u64 },
}

/// The type names Toxiproxy registers, in the order its README lists them.
pub const TOXIC_TYPES: [&str; 7] = [
    "latency",
    "bandwidth",
    "slow_close",
    "timeout",
    "reset_peer",
    "slicer",
    "limit_data",
];

impl ToxicKind {
    /// The zero-valued toxic of a type (Go's zero value: a missing attribute is 0).
    pub fn zero(type_name: &str) -> Option<ToxicKind> {
        Some(match type_name {
            "latency" => ToxicKind::Latency {
                latency: 0,
                jitter: 0,
            },
            "bandwidth" => ToxicKind::Bandwidth { rate: 0 },
            "slow_close" => ToxicKind::SlowClose { delay: 0 },
            "timeout" => ToxicKind::Timeout { timeout: 0 },
            "reset_peer" => ToxicKind::ResetPeer { timeout: 0 },
            "slicer" => ToxicKind::Slicer {
                average_size: 0,
                size_variation: 0,
                delay: 0,
            },
            "limit_data" => ToxicKind::LimitData { bytes: 0 },
            _ => return None,
        })
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            ToxicKind::Latency { .. } => "latency",
            ToxicKind::Bandwidth { .. } => "bandwidth",
            ToxicKind::SlowClose { .. } => "slow_close",
            ToxicKind::Timeout { .. } => "timeout",
            ToxicKind::ResetPeer { .. } => "reset_peer",
            ToxicKind::Slicer { .. } => "slicer",
            ToxicKind::LimitData { .. } => "limit_data",
        }
    }

    fn slots(&mut self) -> Vec<(&'static str, &mut u64)> {
        match self {
            ToxicKind::Latency { latency, jitter } => {
                vec![("latency", latency), ("jitter", jitter)]
            }
            ToxicKind::Bandwidth { rate } => vec![("rate", rate)],
            ToxicKind::SlowClose { delay } => vec![("delay", delay)],
            ToxicKind::Timeout { timeout } => vec![("timeout", timeout)],
            ToxicKind::ResetPeer { timeout } => vec![("timeout", timeout)],
            ToxicKind::Slicer {
                average_size,
                size_variation,
                delay,
            } => vec![
                ("average_size", average_size),
                ("size_variation", size_variation),
                ("delay", delay),
            ],
            ToxicKind::LimitData { bytes } => vec![("bytes", bytes)],
        }
    }

    /// Overwrite the attributes named in `attrs`; others keep their value (this is how
    /// both creation, starting from zero, and a partial update work).
    ///
    /// Stricter than Toxiproxy on purpose: an unknown attribute name is an error (a typo
    /// such as `latancy` would otherwise silently give a toxic that does nothing), and
    /// values must be non-negative integers.
    pub fn apply_attributes(&mut self, attrs: &Map<String, Value>) -> Result<(), String> {
        let type_name = self.type_name();
        let mut slots = self.slots();
        for (key, value) in attrs {
            let Some((_, slot)) = slots.iter_mut().find(|(name, _)| name == key) else {
                let known: Vec<&str> = slots.iter().map(|(n, _)| *n).collect();
                return Err(format!(
                    "unknown attribute {key:?} for toxic type {type_name} (known: {})",
                    known.join(", ")
                ));
            };
            match value.as_u64() {
                Some(v) => **slot = v,
                None => {
                    return Err(format!(
                        "attribute {key:?} must be a non-negative integer, got {value}"
                    ));
                }
            }
        }
        Ok(())
    }

    /// The `attributes` object as Toxiproxy shows it.
    pub fn attributes_json(&self) -> Value {
        let mut copy = self.clone();
        let map: Map<String, Value> = copy
            .slots()
            .into_iter()
            .map(|(name, v)| (name.to_owned(), json!(*v)))
            .collect();
        Value::Object(map)
    }
}

/// A toxic as the API knows it.
#[derive(Debug, Clone)]
pub(crate) struct Toxic {
    pub name: String,
    pub stream: Stream,
    pub toxicity: f32,
    pub kind: ToxicKind,
    /// Unique for the server's lifetime; a connection keys its per-toxic state on it.
    pub uid: u64,
    /// Changes on every update, so a connection knows to re-roll toxicity and restart
    /// the toxic's timers, as Toxiproxy restarts a toxic's pipe on update.
    pub version: u64,
    /// What the toxic has done so far, across its connections and updates.
    pub stats: Arc<ToxicStats>,
    /// Which connections it acts on, by when they opened relative to `added`.
    pub scope: Scope,
    pub added: Instant,
}

/// A toxic's own counts, updated by every connection it acts on: the evidence that a
/// network fault touched something (a latency toxic added during a quiet spell delays
/// no byte, and a run must not pass on it).
#[derive(Debug, Default)]
pub(crate) struct ToxicStats {
    connections: AtomicU64,
    bytes: AtomicU64,
    events: AtomicU64,
}

impl ToxicStats {
    /// A connection direction this toxic acts on for the first time.
    pub fn connection(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }
    /// Bytes delayed, throttled, sliced or swallowed.
    pub fn bytes(&self, n: usize) {
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
    }
    /// A connection closed or reset by the toxic, or whose close it held back.
    pub fn event(&self) {
        self.events.fetch_add(1, Ordering::Relaxed);
    }
    pub fn counts(&self) -> ToxicCounts {
        ToxicCounts {
            connections: self.connections.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            events: self.events.load(Ordering::Relaxed),
        }
    }
}

impl Toxic {
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "attributes": self.kind.attributes_json(),
            "name": self.name,
            "type": self.kind.type_name(),
            "stream": self.stream.as_str(),
            "toxicity": self.toxicity,
        });
        // Shown only when narrowed, so a plain toxic looks exactly like Toxiproxy's.
        if self.scope != Scope::All {
            v["connections"] = json!(self.scope.as_str());
        }
        v
    }

    /// goneaway's extension (`GET …/toxics/{name}/stats`); Toxiproxy has no such call.
    pub fn stats_json(&self) -> Value {
        let c = self.stats.counts();
        json!({ "connections": c.connections, "bytes": c.bytes, "events": c.events })
    }
}

/// What one direction of a connection consults for every chunk: the toxics of that
/// direction in chain order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Chain {
    pub toxics: Vec<ChainToxic>,
}

#[derive(Debug, Clone)]
pub(crate) struct ChainToxic {
    pub uid: u64,
    pub version: u64,
    pub toxicity: f32,
    pub kind: ToxicKind,
    pub stats: Arc<ToxicStats>,
    pub scope: Scope,
    pub added: Instant,
}

/// Parse a toxicity value: a number in [0, 1].
pub(crate) fn parse_toxicity(v: &Value) -> Result<f32, String> {
    match v.as_f64() {
        Some(t) if (0.0..=1.0).contains(&t) => Ok(t as f32),
        _ => Err(format!("toxicity must be a number from 0 to 1, got {v}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_round_trips_its_attributes() {
        for t in TOXIC_TYPES {
            let mut k = ToxicKind::zero(t).unwrap();
            assert_eq!(k.type_name(), t);
            let attrs = k.attributes_json();
            let obj = attrs.as_object().unwrap().clone();
            let ones: Map<String, Value> = obj.keys().map(|k| (k.clone(), json!(1))).collect();
            k.apply_attributes(&ones).unwrap();
            for v in k.attributes_json().as_object().unwrap().values() {
                assert_eq!(v, &json!(1));
            }
        }
    }

    #[test]
    fn unknown_and_negative_attributes_are_refused() {
        let mut k = ToxicKind::zero("latency").unwrap();
        let bad: Map<String, Value> = [("latancy".to_owned(), json!(5))].into_iter().collect();
        assert!(k.apply_attributes(&bad).unwrap_err().contains("latancy"));
        let neg: Map<String, Value> = [("latency".to_owned(), json!(-5))].into_iter().collect();
        assert!(k.apply_attributes(&neg).is_err());
        let float: Map<String, Value> = [("latency".to_owned(), json!(1.5))].into_iter().collect();
        assert!(k.apply_attributes(&float).is_err());
    }

    #[test]
    fn scopes_tell_new_connections_from_established_ones() {
        let before = Instant::now();
        let added = before + std::time::Duration::from_millis(5);
        let after = added + std::time::Duration::from_millis(5);
        assert!(Scope::All.admits(before, added) && Scope::All.admits(after, added));
        assert!(!Scope::New.admits(before, added) && Scope::New.admits(after, added));
        assert!(Scope::Established.admits(before, added));
        assert!(!Scope::Established.admits(after, added));
        for s in [Scope::All, Scope::New, Scope::Established] {
            assert_eq!(Scope::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn streams_parse_case_insensitively() {
        assert_eq!(Stream::parse("UpStream"), Some(Stream::Upstream));
        assert_eq!(Stream::parse("sideways"), None);
    }
}
