//! Strategies: fault schedules as proptest values. Pure: no server, no clock, no I/O.
//!
//! A schedule is 1..=k faults. Each fault is drawn from the alphabet (the kinds the base
//! suite's backend can do, narrowed by `--faults`), placed inside the workload so that
//! every occurrence heals with room left to see the pool recover. Values are built from
//! independent pieces (kind, duration, a fraction of the free time, parameters, an
//! optional repeat) so that proptest's shrinking means something: fewer faults, shorter
//! durations, earlier times, the first (simplest) parameter of each list, no repeat.

use std::collections::BTreeSet;
use std::time::Duration;

use proptest::prelude::*;
use proptest::strategy::{BoxedStrategy, Union, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use crate::fault::{Fault, KillTarget};
use crate::history::{FaultKind, Lasts};
use crate::proxy::toxic::Scope;
use crate::proxy::{Stream, ToxicKind};
use crate::schedule::{FaultSpec, Repeat};
use crate::server::BackendKind;

/// The kinds exploration can generate, simplest first: proptest's `Union` shrinks towards
/// earlier alternatives. `set_global` is left out: an arbitrary variable is not a fault
/// anyone can name for a generator.
pub const GENERATED: [FaultKind; 17] = [
    FaultKind::Idle,
    FaultKind::Kill,
    FaultKind::Latency,
    FaultKind::WaitTimeout,
    FaultKind::MaxConnections,
    FaultKind::Pause,
    FaultKind::Restart,
    FaultKind::Crash,
    FaultKind::Cut,
    FaultKind::Disconnect,
    FaultKind::Blackhole,
    FaultKind::Bandwidth,
    FaultKind::SlowClose,
    FaultKind::Timeout,
    FaultKind::ResetPeer,
    FaultKind::Slicer,
    FaultKind::LimitData,
];

/// The kinds a base suite allows: everything generated that its backend can do (network
/// faults bring their own proxy), narrowed to `only` when given. The order is always
/// [`GENERATED`]'s, however `only` was written, so the same set gives the same cases.
pub fn alphabet(backend: BackendKind, only: Option<&[FaultKind]>) -> Vec<FaultKind> {
    GENERATED
        .iter()
        .copied()
        .filter(|k| only.is_none_or(|o| o.contains(k)))
        .filter(|k| example(*k).unsupported_on(backend).is_none())
        .collect()
}

/// A representative fault of a kind, to ask the backend whether it can do it.
fn example(kind: FaultKind) -> Fault {
    match kind {
        FaultKind::Crash => Fault::Crash,
        FaultKind::Restart => Fault::Restart,
        FaultKind::Pause => Fault::Pause,
        FaultKind::Disconnect => Fault::Disconnect,
        FaultKind::Cut => Fault::Cut,
        _ => Fault::Idle,
    }
}

/// Where faults may fall: after a warm-up, healed by `horizon` so the rest of the
/// workload shows whether the pool recovered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Geometry {
    pub start: Duration,
    pub horizon: Duration,
}

impl Geometry {
    /// For a workload of this length: faults begin after the first tenth (at most 1 s,
    /// so the pool has connections to lose) and heal by two thirds of it.
    pub fn for_workload(duration: Duration) -> Geometry {
        Geometry {
            start: (duration / 10).min(Duration::from_secs(1)),
            horizon: duration * 2 / 3,
        }
    }

    fn room(&self) -> u64 {
        self.horizon.saturating_sub(self.start).as_millis() as u64
    }
}

/// One generated fault before it is placed: proptest shrinks each piece on its own.
#[derive(Debug, Clone)]
struct Draft {
    fault: Fault,
    /// Milliseconds; 0 for an instant fault (a kill).
    duration: u64,
    /// Where in the free time it starts, in thousandths: shrinks towards the start.
    place: u32,
    /// Extra occurrences and the gap between one heal and the next start.
    repeat: Option<(u32, u64)>,
}

/// Durations per kind, in milliseconds: long enough to matter, short enough for a run of
/// a few seconds. The low end is where shrinking goes.
fn duration_ms(kind: FaultKind) -> std::ops::RangeInclusive<u64> {
    match kind {
        FaultKind::Kill => 0..=0,
        FaultKind::Idle => 500..=5_000,
        FaultKind::WaitTimeout | FaultKind::MaxConnections => 1_000..=5_000,
        _ => 300..=3_000,
    }
}

/// Streams a toxic acts on, simplest (what the server sends back, Toxiproxy's default)
/// first.
fn streams() -> impl Strategy<Value = Vec<Stream>> {
    prop::sample::select(vec![
        vec![Stream::Downstream],
        vec![Stream::Upstream],
        vec![Stream::Upstream, Stream::Downstream],
    ])
}

/// Share of connections a toxic touches: all first, never zero (a toxic of 0 touches
/// nothing and would only ever be inconclusive).
fn toxicity() -> impl Strategy<Value = f32> {
    prop::sample::select(vec![1.0f32, 0.75, 0.5])
}

fn toxic(kind: impl Strategy<Value = ToxicKind> + 'static) -> BoxedStrategy<Fault> {
    (kind, streams(), toxicity())
        .prop_map(|(kind, streams, toxicity)| Fault::Toxic {
            kind,
            streams,
            toxicity,
            connections: Scope::All,
        })
        .boxed()
}

/// The fault itself, with its parameters.
fn fault(kind: FaultKind) -> BoxedStrategy<Fault> {
    match kind {
        FaultKind::Idle => Just(Fault::Idle).boxed(),
        FaultKind::Kill => {
            prop::sample::select(vec![KillTarget::Idle, KillTarget::All, KillTarget::Active])
                .prop_map(|target| Fault::Kill { target })
                .boxed()
        }
        FaultKind::WaitTimeout => (1u64..=5)
            .prop_map(|s| Fault::WaitTimeout {
                value: Duration::from_secs(s),
            })
            .boxed(),
        FaultKind::MaxConnections => (1u32..=10)
            .prop_map(|value| Fault::MaxConnections { value })
            .boxed(),
        FaultKind::SetGlobal => unreachable!("set_global is never generated"),
        // Not in GENERATED yet: adding a kind there changes what every seed draws.
        FaultKind::ReadOnly => unreachable!("read_only is not generated"),
        FaultKind::Failover => unreachable!("failover is not generated"),
        FaultKind::Crash => Just(Fault::Crash).boxed(),
        FaultKind::Restart => Just(Fault::Restart).boxed(),
        FaultKind::Pause => Just(Fault::Pause).boxed(),
        FaultKind::Disconnect => Just(Fault::Disconnect).boxed(),
        FaultKind::Cut => Just(Fault::Cut).boxed(),
        // Both ways, as the suite format's default for a black hole.
        FaultKind::Blackhole => toxicity()
            .prop_map(|toxicity| Fault::Toxic {
                kind: ToxicKind::Timeout { timeout: 0 },
                streams: vec![Stream::Upstream, Stream::Downstream],
                toxicity,
                connections: Scope::All,
            })
            .boxed(),
        FaultKind::Latency => toxic(
            (50u64..=1_000, 0u64..=100)
                .prop_map(|(latency, jitter)| ToxicKind::Latency { latency, jitter }),
        ),
        FaultKind::Bandwidth => toxic((1u64..=100).prop_map(|rate| ToxicKind::Bandwidth { rate })),
        FaultKind::SlowClose => {
            toxic((100u64..=2_000).prop_map(|delay| ToxicKind::SlowClose { delay }))
        }
        // Above 0, which would be the black hole, a kind of its own.
        FaultKind::Timeout => {
            toxic((100u64..=2_000).prop_map(|timeout| ToxicKind::Timeout { timeout }))
        }
        FaultKind::ResetPeer => {
            toxic((0u64..=1_000).prop_map(|timeout| ToxicKind::ResetPeer { timeout }))
        }
        FaultKind::Slicer => toxic((1u64..=64, 0u64..=16, 0u64..=1_000).prop_map(
            |(average_size, size_variation, delay)| ToxicKind::Slicer {
                average_size,
                size_variation: size_variation.min(average_size.saturating_sub(1)),
                delay,
            },
        )),
        FaultKind::LimitData => {
            toxic((100u64..=5_000).prop_map(|bytes| ToxicKind::LimitData { bytes }))
        }
    }
}

fn draft(kind: FaultKind) -> BoxedStrategy<Draft> {
    (
        fault(kind),
        duration_ms(kind),
        0u32..=1_000,
        // One case in five repeats: a pool that survives one kill may not survive three.
        prop::option::weighted(0.2, (1u32..=2, 200u64..=2_000)),
    )
        .prop_map(|(fault, duration, place, repeat)| Draft {
            fault,
            duration,
            place,
            repeat,
        })
        .boxed()
}

/// Put a draft in time: the whole of it (every repeat) heals by the horizon. A repeat
/// that does not fit is dropped, a duration that does not fit is cut.
fn place(d: Draft, index: usize, g: Geometry) -> FaultSpec {
    let room = g.room();
    let mut duration = d.duration.min(room);
    let mut repeat = d.repeat.map(|(times, gap)| Repeat {
        every: Duration::from_millis(duration + gap),
        times,
    });
    let span = |r: &Option<Repeat>, dur: u64| {
        dur + r.map_or(0, |r| r.every.as_millis() as u64 * r.times as u64)
    };
    // Heal strictly before the horizon, which itself is before the workload's end: a
    // repeat that would reach it is dropped first, then a duration that would is cut.
    if span(&repeat, duration) >= room {
        repeat = None;
    }
    if duration >= room {
        duration = room.saturating_sub(1);
    }
    let free = room.saturating_sub(span(&repeat, duration) + 1);
    let at = g.start + Duration::from_millis(free * d.place as u64 / 1_000);
    let kind = d.fault.kind();
    FaultSpec {
        name: format!("{}-{}", kind.name().replace('_', "-"), index + 1),
        lasts: if duration == 0 {
            Lasts::Instant
        } else {
            Lasts::For(Duration::from_millis(duration))
        },
        fault: d.fault,
        at,
        repeat,
        jitter: Duration::ZERO,
        tolerate: BTreeSet::new(),
        expect_no_effect: false,
        before_pool: false,
    }
}

/// Schedules of 1..=`max_faults` faults from `alphabet`, placed by `g`. Shrinking removes
/// faults first (proptest's vec tree), then simplifies each one.
pub fn schedules(
    alphabet: &[FaultKind],
    max_faults: usize,
    g: Geometry,
) -> BoxedStrategy<Vec<FaultSpec>> {
    assert!(!alphabet.is_empty(), "the caller checks the alphabet");
    let one = Union::new(alphabet.iter().map(|k| draft(*k)));
    prop::collection::vec(one, 1..=max_faults.max(1))
        .prop_map(move |drafts| {
            drafts
                .into_iter()
                .enumerate()
                .map(|(i, d)| place(d, i, g))
                .collect()
        })
        .boxed()
}

/// A runner whose random stream is fixed by `seed`: the same seed draws the same cases.
pub fn runner(seed: u64) -> TestRunner {
    let mut bytes = [0u8; 32];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        // Four different words, so seeds that differ only high up still differ everywhere.
        chunk.copy_from_slice(
            &(seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_le_bytes(),
        );
    }
    TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &bytes),
    )
}

/// A generated case: its index in the unsharded sequence and the tree to shrink from.
pub struct Generated {
    pub index: usize,
    pub tree: Box<dyn ValueTree<Value = Vec<FaultSpec>>>,
}

/// Which part of the case list to keep: the `index`-th (from 1) of `count` shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    pub const ALL: Shard = Shard { index: 1, count: 1 };

    pub fn keeps(&self, case: usize) -> bool {
        case % self.count as usize == (self.index - 1) as usize
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || format!("shard `{s}`: expected i/n with 1 <= i <= n, like 2/4");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (u32, u32) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if index == 0 || count == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

/// The generator of one exploration: the whole unsharded sequence is always drawn, so a
/// shard's cases are the same cases the unsharded run has at those indices.
pub struct Cases {
    strategy: BoxedStrategy<Vec<FaultSpec>>,
    runner: TestRunner,
    shard: Shard,
    next: usize,
}

impl Cases {
    pub fn new(strategy: BoxedStrategy<Vec<FaultSpec>>, seed: u64, shard: Shard) -> Cases {
        Cases {
            strategy,
            runner: runner(seed),
            shard,
            next: 0,
        }
    }
}

impl Iterator for Cases {
    type Item = Generated;

    fn next(&mut self) -> Option<Generated> {
        loop {
            let index = self.next;
            self.next += 1;
            let tree = self
                .strategy
                .new_tree(&mut self.runner)
                .expect("schedule strategies never reject");
            if self.shard.keeps(index) {
                return Some(Generated { index, tree });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strategy() -> BoxedStrategy<Vec<FaultSpec>> {
        let a = alphabet(BackendKind::Process, None);
        schedules(&a, 3, Geometry::for_workload(Duration::from_secs(9)))
    }

    fn draw(seed: u64, shard: Shard, n: usize) -> Vec<(usize, Vec<FaultSpec>)> {
        Cases::new(strategy(), seed, shard)
            .take(n)
            .map(|g| (g.index, g.tree.current()))
            .collect()
    }

    #[test]
    fn same_seed_same_cases() {
        assert_eq!(draw(7, Shard::ALL, 30), draw(7, Shard::ALL, 30));
        assert_ne!(draw(7, Shard::ALL, 30), draw(8, Shard::ALL, 30));
    }

    #[test]
    fn shards_partition_the_unsharded_run() {
        let all = draw(11, Shard::ALL, 24);
        let mut union = Vec::new();
        for index in 1..=4 {
            let shard = Shard { index, count: 4 };
            let part = draw(11, shard, 6);
            assert!(part.iter().all(|(i, _)| shard.keeps(*i)));
            union.extend(part);
        }
        union.sort_by_key(|(i, _)| *i);
        assert_eq!(union, all);
    }

    #[test]
    fn shard_parses_and_refuses() {
        assert_eq!("2/4".parse(), Ok(Shard { index: 2, count: 4 }));
        for bad in ["0/4", "5/4", "2", "a/b", "1/0"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn alphabet_follows_the_backend_and_the_filter() {
        let process = alphabet(BackendKind::Process, None);
        assert!(!process.contains(&FaultKind::Disconnect));
        assert!(process.contains(&FaultKind::Crash));
        let external = alphabet(BackendKind::External, None);
        assert!(!external.contains(&FaultKind::Crash));
        let only = [FaultKind::Latency, FaultKind::Kill];
        assert_eq!(
            alphabet(BackendKind::Process, Some(&only)),
            [FaultKind::Kill, FaultKind::Latency]
        );
    }

    proptest! {
        // Regression seeds live beside this file, not in a top-level folder.
        #![proptest_config(ProptestConfig {
            failure_persistence: Some(Box::new(
                proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"),
            )),
            ..ProptestConfig::default()
        })]
        #[test]
        fn every_fault_heals_before_the_horizon(seed: u64) {
            let g = Geometry::for_workload(Duration::from_secs(9));
            for (_, faults) in draw(seed, Shard::ALL, 4) {
                prop_assert!(!faults.is_empty() && faults.len() <= 3);
                for f in &faults {
                    prop_assert!(f.at >= g.start);
                    prop_assert!(f.latest_heal() < g.horizon, "{f:?}");
                    if let Fault::Toxic { toxicity, .. } = f.fault {
                        prop_assert!(toxicity > 0.0);
                    }
                }
            }
        }

        #[test]
        fn shrinking_never_grows(seed: u64) {
            let mut g = Cases::new(strategy(), seed, Shard::ALL).next().unwrap();
            let before = g.tree.current();
            if g.tree.simplify() {
                let after = g.tree.current();
                prop_assert!(after.len() <= before.len());
            }
        }
    }
}
