//! Lint: before the run, compare the pool's settings with the server's and the
//! workload's, and say what will break. Each finding may predict an error class; the
//! report then says whether the run confirmed or refuted it.

use std::time::Duration;

use serde::Serialize;

use crate::fault::{Fault, KillTarget};
use crate::history::ErrorClass;
use crate::pool::{PoolSpec, Setting};
use crate::schedule::FaultSpec;
use crate::server::ServerSpec;
use crate::workload::{Step, WorkloadSpec};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Lint {
    pub rule: &'static str,
    pub message: String,
    /// The class this configuration should produce, and where, if it predicts one.
    pub predicts: Option<Prediction>,
}

/// A class the run should show, and the place that would show it: the run confirms a
/// lint only there (see `check::outcome`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    pub class: ErrorClass,
    pub place: Where,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Where {
    /// In (or just after) the windows of these faults, by suite name.
    Faults(Vec<String>),
    /// Anywhere in the run (think gaps between every request, every request's checkouts).
    Anywhere,
    /// After the first leaked checkout.
    AfterLeaks,
    /// Once the server's connections reach this limit.
    ServerLimit(u32),
}

fn predict(class: ErrorClass, place: Where) -> Option<Prediction> {
    Some(Prediction { class, place })
}

fn fmt(d: Duration) -> String {
    // A client with no checkout timeout of its own waits for good.
    if d >= crate::pool::FOREVER {
        return "forever".into();
    }
    humantime::format_duration(d).to_string()
}

fn opt(d: Option<Duration>) -> String {
    d.map_or("never".into(), fmt)
}

/// Configuration keys the client never read: said, and silently without effect. Read
/// by the adapter from the live client, so this is measured, not a list of known keys.
pub fn ignored(client: &str, keys: &[String], actual: Option<PoolSpec>) -> Option<Lint> {
    if keys.is_empty() {
        return None;
    }
    let runs = actual.map_or(String::new(), |a| format!("; the pool runs with {a}"));
    let hint = if client.starts_with("flask-sqlalchemy") {
        " (Flask-SQLAlchemy 3 reads pool settings only from SQLALCHEMY_ENGINE_OPTIONS)"
    } else if client.starts_with("mysql ") {
        " (mysql's createPool copies only the options it knows, without a word for the rest)"
    } else if client.starts_with("hikaricp") {
        " (MariaDB Connector/J does not list them among its properties and drops them without a word)"
    } else if client.starts_with("database/sql") {
        " (go-sql-driver/mysql's DSN parser did not know them: it would have sent them to the server as session variables)"
    } else {
        ""
    };
    Some(Lint {
        rule: "ignored-settings",
        message: format!(
            "{client} never read {}: they have no effect{runs}{hint}",
            keys.iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        predicts: None,
    })
}

/// Lint one configuration. `pool` is what the pool really runs with.
pub fn lint(
    pool: &PoolSpec,
    server: &ServerSpec,
    workload: &WorkloadSpec,
    faults: &[FaultSpec],
) -> Vec<Lint> {
    let mut out = Vec::new();
    let wait = server.wait_timeout();
    let lowered = faults.iter().find_map(|f| match &f.fault {
        Fault::WaitTimeout { value } => Some((f, *value)),
        _ => None,
    });
    // The wait_timeout the pool's sessions carry at time t. Sessions keep the value they
    // were opened with; the pool's own sessions are all opened after a lowering only once
    // it has recycled them (its lifetime later), so a quiet spell before that is still
    // under the old value.
    // A kill of the pool's sleeping sessions after the lowering has the same effect
    // sooner: the pool reopens them, under the new value.
    let reopened = |t: Duration, since: Duration| {
        faults.iter().any(|k| {
            matches!(
                k.fault,
                Fault::Kill {
                    target: KillTarget::Idle | KillTarget::All
                }
            ) && k.at >= since
                && k.at < t
        })
    };
    let carried = |t: Duration| match (lowered, pool.max_lifetime) {
        (Some((f, value)), Some(life)) if t >= f.at + life => value.min(wait),
        (Some((f, value)), _) if reopened(t, f.at) => value.min(wait),
        _ => wait,
    };
    let shortest = lowered.map_or(wait, |(_, l)| l.min(wait));
    let nights: Vec<&FaultSpec> = faults
        .iter()
        .filter(|f| f.fault == Fault::Idle && f.duration() > carried(f.at))
        .collect();
    let think_gap = workload.think > shortest;

    let outlives = |d: Option<Duration>| d.is_none_or(|d| d >= shortest);
    if !pool.test_before_acquire && outlives(pool.max_lifetime) && outlives(pool.idle_timeout) {
        let lifetime = pool.word(Setting::Lifetime);
        let message = format!(
            "{lifetime} ({}) and {} ({}) outlive the server's wait_timeout ({}) and {} is off: \
             a connection idle longer than {} is closed by the server while the pool still hands it out",
            opt(pool.max_lifetime),
            pool.word(Setting::Idle),
            opt(pool.idle_timeout),
            fmt(shortest),
            pool.word(Setting::PrePing),
            fmt(shortest),
        );
        let (message, predicts) = if think_gap {
            (
                format!(
                    "{message}; every worker idles {} between requests, so expect gone_away throughout",
                    fmt(workload.think)
                ),
                predict(ErrorClass::GoneAway, Where::Anywhere),
            )
        } else if !nights.is_empty() {
            let named: Vec<String> = nights
                .iter()
                .map(|f| format!("`{}` ({} idle)", f.name, fmt(f.duration())))
                .collect();
            (
                format!(
                    "{message}; the workload idles past it in {}, so expect gone_away there",
                    named.join(", ")
                ),
                predict(
                    ErrorClass::GoneAway,
                    Where::Faults(nights.iter().map(|f| f.name.clone()).collect()),
                ),
            )
        } else {
            (
                format!("{message}; this workload never idles that long under that setting"),
                None,
            )
        };
        out.push(Lint {
            rule: "stale-connections",
            message,
            predicts,
        });
    }

    if let Some((f, value)) = lowered {
        out.push(Lint {
            rule: "lowered-wait-timeout",
            message: format!(
                "`{}` lowers wait_timeout to {} at {}: only sessions opened after that get it; \
                 connections already in the pool keep {}",
                f.name,
                fmt(value),
                fmt(f.at),
                fmt(wait)
            ),
            predicts: None,
        });
    }

    let server_max = faults
        .iter()
        .find_map(|f| match &f.fault {
            Fault::MaxConnections { value } => Some(*value),
            _ => None,
        })
        .map_or(server.max_connections(), |m| {
            m.min(server.max_connections())
        });
    if pool.max_connections > server_max {
        out.push(Lint {
            rule: "pool-exceeds-server-limit",
            message: format!(
                "the pool may open {} connections ({}) but the server allows {} (max_connections): \
                 opening the rest fails",
                pool.max_connections,
                pool.word(Setting::Max),
                server_max
            ),
            predicts: predict(
                ErrorClass::TooManyConnections,
                Where::ServerLimit(server_max),
            ),
        });
    }

    // A pool with no checkout timeout (mysql_async) starves until the harness's own
    // op_timeout gives up: that is a `timeout`, not a `checkout_timeout`.
    let (waits, until, starved) = if pool.acquire_timeout == PoolSpec::NO_CHECKOUT_TIMEOUT {
        let forever = format!(
            "forever ({}): only the harness's op_timeout ({}) ends it",
            pool.word(Setting::Acquire),
            fmt(workload.op_timeout)
        );
        (forever.clone(), forever, ErrorClass::Timeout)
    } else {
        let timeout = format!(
            "{} ({})",
            pool.word(Setting::Acquire),
            fmt(pool.acquire_timeout)
        );
        (
            format!("out {timeout}"),
            format!("until {timeout} runs out"),
            ErrorClass::CheckoutTimeout,
        )
    };
    if let Some(every) = workload.leak_every {
        out.push(Lint {
            rule: "leaked-checkouts",
            message: format!(
                "1 request in {every} keeps its connection: after about {} requests all {} connections \
                 are gone and every checkout waits {waits}",
                every * u64::from(pool.max_connections),
                pool.max_connections,
            ),
            predicts: predict(starved, Where::AfterLeaks),
        });
    }

    let k = workload.checkouts_per_request;
    if k > 1 && workload.workers * (k - 1) >= pool.max_connections {
        out.push(Lint {
            rule: "nested-checkouts",
            message: format!(
                "each request holds {} connections at once and {} workers can together hold all {}: \
                 requests wait on each other {until}",
                k,
                workload.workers,
                pool.max_connections,
            ),
            predicts: predict(starved, Where::Anywhere),
        });
    }

    if workload.op_timeout < pool.acquire_timeout
        && pool.acquire_timeout != PoolSpec::NO_CHECKOUT_TIMEOUT
    {
        out.push(Lint {
            rule: "op-timeout-below-checkout-timeout",
            message: format!(
                "the harness gives up after {} but the pool waits {} ({}) for a connection: \
                 a starved checkout shows as `timeout`, not `checkout_timeout`",
                fmt(workload.op_timeout),
                fmt(pool.acquire_timeout),
                pool.word(Setting::Acquire)
            ),
            predicts: None,
        });
    }

    // A request that holds its connection idle longer than wait_timeout: nothing the pool
    // does at checkout (recycle, pre-ping) reaches a connection already checked out.
    let held = workload.request.as_ref().and_then(|r| {
        r.steps
            .iter()
            .filter_map(|s| match s {
                Step::Wait(d) => Some(*d),
                _ => None,
            })
            .max()
    });
    if let Some(held) = held.filter(|d| *d > wait) {
        out.push(Lint {
            rule: "held-past-wait-timeout",
            message: format!(
                "a request holds its connection idle for {} (a `wait` step) but the server's wait_timeout is {}: the server closes the session mid-request, and neither {} ({}) nor {} ({}) looks at a connection already checked out; expect gone_away at the step after the wait",
                fmt(held),
                fmt(wait),
                pool.word(Setting::Lifetime),
                opt(pool.max_lifetime),
                pool.word(Setting::PrePing),
                pool.test_before_acquire
            ),
            predicts: predict(ErrorClass::GoneAway, Where::Anywhere),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn server(wait: u64) -> ServerSpec {
        ServerSpec {
            settings: [("wait_timeout".to_string(), wait.to_string())].into(),
            ..Default::default()
        }
    }

    fn idle(secs: f64) -> FaultSpec {
        FaultSpec {
            name: "night".into(),
            fault: Fault::Idle,
            at: Duration::from_secs(1),
            lasts: crate::history::Lasts::For(Duration::from_secs_f64(secs)),
            repeat: None,
            jitter: Duration::ZERO,
            tolerate: BTreeSet::new(),
            expect_no_effect: false,
            before_pool: false,
        }
    }

    #[test]
    fn the_story_config_predicts_gone_away() {
        let pool = PoolSpec::sqlalchemy(
            Some(5),
            Some(10),
            None,
            Some(Some(Duration::from_secs(7200))),
            None,
            None,
        );
        let l = lint(&pool, &server(2), &WorkloadSpec::default(), &[idle(3.5)]);
        let stale = l
            .iter()
            .find(|l| l.rule == "stale-connections")
            .expect("flagged");
        assert_eq!(
            stale.predicts,
            predict(ErrorClass::GoneAway, Where::Faults(vec!["night".into()]))
        );
        assert!(
            stale.message.contains("pool_recycle (2h)")
                && stale.message.contains("wait_timeout (2s)"),
            "{}",
            stale.message
        );
    }

    #[test]
    fn a_kill_after_a_lowering_reopens_sessions_under_the_new_value() {
        // Flask-SQLAlchemy's real pool: recycle 7200 s, no pre-ping. wait_timeout is
        // lowered at 1 s; the night at 5 s comes after a kill of the idle sessions at
        // 3 s (the pool reopens them, carrying 2 s), so it is stale; without the kill the
        // sessions still carry 8 h and nothing is predicted.
        let pool = PoolSpec::sqlalchemy(
            Some(5),
            Some(10),
            None,
            Some(Some(Duration::from_secs(7200))),
            None,
            None,
        );
        let at = |f: FaultSpec, name: &str, secs: u64| FaultSpec {
            name: name.into(),
            at: Duration::from_secs(secs),
            ..f
        };
        let lower = at(
            FaultSpec {
                fault: Fault::WaitTimeout {
                    value: Duration::from_secs(2),
                },
                lasts: crate::history::Lasts::UntilEnd,
                ..idle(0.0)
            },
            "dba",
            1,
        );
        let kill = at(
            FaultSpec {
                fault: Fault::Kill {
                    target: KillTarget::Idle,
                },
                lasts: crate::history::Lasts::Instant,
                ..idle(0.0)
            },
            "churn",
            3,
        );
        let night = at(idle(3.5), "night", 5);
        let stale = |faults: &[FaultSpec]| {
            lint(&pool, &server(28800), &WorkloadSpec::default(), faults)
                .into_iter()
                .find(|l| l.rule == "stale-connections")
                .and_then(|l| l.predicts)
        };
        assert_eq!(
            stale(&[lower.clone(), kill, night.clone()]),
            predict(ErrorClass::GoneAway, Where::Faults(vec!["night".into()]))
        );
        assert_eq!(stale(&[lower, night]), None);
    }

    #[test]
    fn ignored_keys_are_named() {
        assert_eq!(ignored("flask-sqlalchemy 3.1.1", &[], None), None);
        let l = ignored(
            "flask-sqlalchemy 3.1.1",
            &["SQLALCHEMY_POOL_RECYCLE".into()],
            None,
        )
        .expect("a lint");
        assert_eq!(l.rule, "ignored-settings");
        assert!(
            l.message.contains("`SQLALCHEMY_POOL_RECYCLE`"),
            "{}",
            l.message
        );
        assert!(
            l.message.contains("SQLALCHEMY_ENGINE_OPTIONS"),
            "{}",
            l.message
        );
    }

    #[test]
    fn either_fix_silences_it() {
        let recycle = PoolSpec::sqlalchemy(
            None,
            None,
            None,
            Some(Some(Duration::from_secs(1))),
            None,
            None,
        );
        let pre_ping = PoolSpec::sqlalchemy(
            None,
            None,
            None,
            Some(Some(Duration::from_secs(7200))),
            Some(true),
            None,
        );
        for pool in [recycle, pre_ping] {
            let l = lint(&pool, &server(2), &WorkloadSpec::default(), &[idle(3.5)]);
            assert!(l.iter().all(|l| l.rule != "stale-connections"), "{l:?}");
        }
    }

    #[test]
    fn no_idle_gap_means_no_prediction() {
        let pool = PoolSpec::sqlx(None, None, None, Some(None), Some(None), Some(false));
        let l = lint(&pool, &server(2), &WorkloadSpec::default(), &[]);
        assert_eq!(
            l.iter()
                .find(|l| l.rule == "stale-connections")
                .unwrap()
                .predicts,
            None
        );
    }

    #[test]
    fn a_request_held_past_wait_timeout_predicts_gone_away_whatever_the_pool() {
        // Recycle below wait_timeout and pre-ping on: the textbook fixes.
        let pool = PoolSpec::sqlalchemy(
            Some(2),
            Some(2),
            None,
            Some(Some(Duration::from_secs(1))),
            Some(true),
            None,
        );
        let request = |wait: u64| WorkloadSpec {
            request: Some(crate::workload::RequestSpec {
                steps: vec![
                    Step::Select,
                    Step::Wait(Duration::from_secs(wait)),
                    Step::Insert,
                ],
                transaction: true,
            }),
            ..Default::default()
        };
        let held = |w: &WorkloadSpec| {
            lint(&pool, &server(2), w, &[])
                .into_iter()
                .find(|l| l.rule == "held-past-wait-timeout")
        };
        let l = held(&request(3)).expect("flagged");
        assert_eq!(l.predicts, predict(ErrorClass::GoneAway, Where::Anywhere));
        assert!(l.message.contains("pool_recycle (1s)"), "{}", l.message);
        assert_eq!(held(&request(1)), None);
    }

    #[test]
    fn leaks_and_limits() {
        let pool = PoolSpec::sqlalchemy(
            Some(5),
            Some(10),
            Some(Some(Duration::from_secs(1))),
            None,
            Some(true),
            None,
        );
        let w = WorkloadSpec {
            leak_every: Some(3),
            ..Default::default()
        };
        let mut s = server(28800);
        s.settings.insert("max_connections".into(), "10".into());
        let rules: Vec<_> = lint(&pool, &s, &w, &[])
            .into_iter()
            .map(|l| (l.rule, l.predicts.map(|p| p.class)))
            .collect();
        assert!(
            rules.contains(&("leaked-checkouts", Some(ErrorClass::CheckoutTimeout))),
            "{rules:?}"
        );
        assert!(
            rules.contains(&(
                "pool-exceeds-server-limit",
                Some(ErrorClass::TooManyConnections)
            )),
            "{rules:?}"
        );
    }

    #[test]
    fn a_pool_with_no_checkout_timeout_starves_into_timeout() {
        // mysql_async's defaults as the lint sees them.
        let pool = PoolSpec {
            vocabulary: crate::pool::Vocabulary::MysqlAsync,
            max_connections: 100,
            min_connections: 10,
            acquire_timeout: PoolSpec::NO_CHECKOUT_TIMEOUT,
            idle_timeout: None,
            max_lifetime: None,
            test_before_acquire: true,
        };
        let w = WorkloadSpec {
            leak_every: Some(3),
            ..Default::default()
        };
        let l = lint(&pool, &server(2), &w, &[idle(3.5)]);
        let leak = l
            .iter()
            .find(|l| l.rule == "leaked-checkouts")
            .expect("flagged");
        assert_eq!(
            leak.predicts.as_ref().map(|p| p.class),
            Some(ErrorClass::Timeout)
        );
        assert!(leak.message.contains("waits forever"), "{}", leak.message);
        assert!(
            l.iter()
                .all(|l| l.rule != "stale-connections"
                    && l.rule != "op-timeout-below-checkout-timeout"),
            "{l:?}"
        );
    }
}
