//! Evidence of effect: what each fault touched, read off the history.
//!
//! A fault that touched nothing proves nothing: a latency toxic added during a quiet
//! spell delays no byte, a pause between requests freezes nobody, a night shorter than
//! `wait_timeout` closes no connection. Each kind has one rule, from the fault's own
//! observation (sessions killed, the proxy's counts) and the history (requests in
//! flight, the pool's connections, the server's sessions as sampled).

use std::time::Duration;

use crate::history::{
    ErrorClass, FaultKind, FaultRecord, History, Observed, OpKind, SessionSample,
};

/// What one fault touched.
#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    pub touched: bool,
    /// What it touched, or what it did not, in words (with numbers: measured).
    pub what: String,
}

fn yes(what: String) -> Evidence {
    Evidence {
        touched: true,
        what,
    }
}

fn no(what: String) -> Evidence {
    Evidence {
        touched: false,
        what,
    }
}

/// How far past a window's heal the server's sessions are still looked at: the sampler's
/// period, so a session closed at the very end is seen gone.
const SAMPLE_SLACK: Duration = Duration::from_millis(500);

/// What `f` touched, judged by its kind's rule.
pub fn evidence(f: &FaultRecord, h: &History) -> Evidence {
    let end = f.healed.unwrap_or(h.workload_end).max(f.start);
    let in_flight = h
        .ops
        .iter()
        .filter(|o| o.start <= end && o.end >= f.start)
        .count();
    let open_before = h
        .samples
        .iter()
        .rev()
        .find(|s| s.at <= f.start)
        .map_or(0, |s| s.size);
    let requests = |n: usize| {
        if n == 1 {
            "1 request".to_string()
        } else {
            format!("{n} requests")
        }
    };
    match f.kind {
        FaultKind::Idle => {
            let closed = vanished_idle(&h.sessions, f.start, end + SAMPLE_SLACK);
            if h.sessions.is_empty() {
                no("the server's sessions were not sampled, so nothing shows a connection was closed while idle".into())
            } else if closed.is_empty() {
                no("no pool connection was closed while the workers were idle: every session outlived the quiet spell".into())
            } else {
                yes(format!(
                    "{} idle pool connection(s) closed during it",
                    closed.len()
                ))
            }
        }
        FaultKind::WaitTimeout => match &f.observed {
            Observed::Setting {
                first_session, new, ..
            } => {
                let limit = Duration::from_secs(new.parse().unwrap_or(0));
                match idled_past(&h.sessions, *first_session, limit, f.start, end) {
                    Some(id) => yes(format!(
                        "session {id}, opened after the change, idled past the new wait_timeout of {}s",
                        limit.as_secs()
                    )),
                    None => no(format!(
                        "no session opened after the change idled {}s: nothing was subject to the new wait_timeout",
                        limit.as_secs()
                    )),
                }
            }
            _ => no("the change was not observed".into()),
        },
        FaultKind::MaxConnections => {
            let limit: u32 = match &f.observed {
                Observed::Setting { new, .. } => new.parse().unwrap_or(u32::MAX),
                _ => u32::MAX,
            };
            let peak = h
                .sessions
                .iter()
                .filter(|s| s.at >= f.start && s.at <= end)
                .map(|s| s.total)
                .max()
                .unwrap_or(0);
            let refused = h
                .failures()
                .filter(|o| o.start >= f.start && o.start <= end)
                .any(|o| o.class() == Some(ErrorClass::TooManyConnections));
            if refused || peak >= limit {
                yes(format!(
                    "the server's connections reached the limit of {limit} (peak {peak})"
                ))
            } else {
                no(format!(
                    "the server never had {limit} connections open (peak {peak}): the limit was never reached"
                ))
            }
        }
        FaultKind::SetGlobal => {
            if in_flight > 0 {
                yes(format!("{} ran while it was in force", requests(in_flight)))
            } else {
                no("no request ran while it was in force".into())
            }
        }
        FaultKind::ReadOnly => {
            // Only a write can meet a read-only server: reads prove nothing.
            let writes: Vec<_> = h
                .ops
                .iter()
                .filter(|o| matches!(o.kind, OpKind::Insert | OpKind::Transaction))
                .filter(|o| o.start <= end && o.end >= f.start)
                .collect();
            let refused = writes
                .iter()
                .filter(|o| o.class() == Some(ErrorClass::ReadOnly))
                .count();
            if writes.is_empty() {
                no("no write was attempted while it was in force: nothing could be refused".into())
            } else {
                yes(format!(
                    "{} write request(s) attempted while it was in force, {refused} refused as read_only",
                    writes.len()
                ))
            }
        }
        FaultKind::Failover => match &f.observed {
            Observed::Failover {
                stale_sessions,
                reset,
                ..
            } => {
                // Requests the old primary served after the move: refused writes show it.
                let refused = h
                    .ops
                    .iter()
                    .filter(|o| o.start >= f.start && o.class() == Some(ErrorClass::ReadOnly))
                    .count();
                let stayed = if *reset {
                    "closed by the move".to_string()
                } else {
                    format!(
                        "left on the old primary ({refused} request(s) refused read_only there afterwards)"
                    )
                };
                if stale_sessions.is_empty() && in_flight == 0 {
                    no("the pool had no session on the old primary and no request was in flight when it moved".into())
                } else {
                    yes(format!(
                        "{} pool session(s) on the old primary at the move, {stayed}; sessions {:?}",
                        stale_sessions.len(),
                        &stale_sessions[..stale_sessions.len().min(8)]
                    ))
                }
            }
            _ => no("the failover was not observed".into()),
        },
        FaultKind::Kill => match f.observed {
            Observed::Killed { sessions } if sessions > 0 => {
                yes(format!("{sessions} session(s) killed"))
            }
            _ => no("no session was killed".into()),
        },
        FaultKind::Crash | FaultKind::Restart | FaultKind::Cut => {
            if open_before > 0 || in_flight > 0 {
                yes(format!(
                    "{open_before} pool connection(s) open and {} in flight or waiting",
                    requests(in_flight)
                ))
            } else {
                no("the pool had no connection open and no request was in flight".into())
            }
        }
        FaultKind::Pause | FaultKind::Disconnect => {
            if in_flight > 0 {
                yes(format!(
                    "{} in flight or waiting during it",
                    requests(in_flight)
                ))
            } else {
                no("no request was in flight during it: nothing waited on the server".into())
            }
        }
        _ => match f.observed {
            Observed::Toxic { counts: Some(c) } if c.touched() => yes(format!(
                "the proxy counted {} byte(s) acted on and {} connection(s) closed, reset or held on {} connection direction(s)",
                c.bytes, c.events, c.connections
            )),
            Observed::Toxic { counts: Some(_) } => {
                no("the proxy counted no byte and no connection the toxic acted on".into())
            }
            // A proxy that does not count (a real Toxiproxy): traffic through it is the
            // best the history can show.
            _ if in_flight > 0 => yes(format!(
                "the proxy does not count; {} crossed it meanwhile",
                requests(in_flight)
            )),
            _ => no("no request crossed the proxy while the toxic was on".into()),
        },
    }
}

/// Sessions that vanished between two samples inside `[from, to]` while they were last
/// seen sleeping: idle connections something closed (the server's wait_timeout, a kill,
/// the pool retiring them).
pub fn vanished_idle(samples: &[SessionSample], from: Duration, to: Duration) -> Vec<i64> {
    vanishings(samples)
        .filter(|v| v.at >= from && v.at <= to)
        .map(|v| v.id)
        .collect()
}

struct Vanished {
    id: i64,
    at: Duration,
    /// The most it can have idled when it went.
    idle: Duration,
}

fn vanishings(samples: &[SessionSample]) -> impl Iterator<Item = Vanished> + '_ {
    samples.windows(2).flat_map(|pair| {
        let (a, b) = (&pair[0], &pair[1]);
        a.sessions
            .iter()
            .filter(|s| s.sleeping && !b.sessions.iter().any(|t| t.id == s.id))
            .map(move |s| Vanished {
                id: s.id,
                at: b.at,
                idle: Duration::from_millis(s.idle_ms) + (b.at - a.at),
            })
            .collect::<Vec<_>>()
    })
}

/// A session with an id at or above `first` (opened after a change) that idled about
/// `limit`: seen sleeping that long (less one sample period), or gone while sleeping
/// with at least that long behind it.
fn idled_past(
    samples: &[SessionSample],
    first: i64,
    limit: Duration,
    from: Duration,
    to: Duration,
) -> Option<i64> {
    let period = SAMPLE_SLACK / 2;
    for s in samples
        .iter()
        .filter(|s| s.at >= from && s.at <= to + SAMPLE_SLACK)
    {
        for x in s.sessions.iter().filter(|x| x.id >= first && x.sleeping) {
            let idle = Duration::from_millis(x.idle_ms);
            if idle + period >= limit {
                return Some(x.id);
            }
        }
    }
    vanishings(samples)
        .filter(|v| v.id >= first && v.at >= from && v.at <= to + SAMPLE_SLACK)
        .find(|v| v.idle >= limit)
        .map(|v| v.id)
}
