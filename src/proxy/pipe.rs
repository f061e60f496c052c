//! The per-connection pipe: two directions, each one task-free future that reads from
//! one socket, runs the bytes through that direction's current toxic chain, and writes
//! them to the other socket.
//!
//! Why this shape: pool connections live for minutes, so a toxic added, updated or
//! removed must reach connections that are already open. Each direction holds a
//! `watch::Receiver` of its chain and re-reads it before every step; bytes wait in a
//! small queue with the time they were read, and the release time of the head of the
//! queue is computed from the chain *as it is now*. Removing a 10 s latency therefore
//! releases a waiting chunk at once, and adding a black hole swallows the next chunk.
//! Both directions run inside the connection's one task (no spawned helpers), so
//! cancelling the connection drops everything with it.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use super::toxic::{Chain, ToxicKind};

const READ_BUF: usize = 32 * 1024;
/// Bytes a direction holds back (under latency, say) before it stops reading and lets
/// TCP push back on the sender.
const MAX_QUEUED: usize = 4 * 1024 * 1024;
/// How long the proxy waits for the upstream to accept a connection.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Attribute durations are capped (30 days) so that adding them to an `Instant` cannot
/// overflow, whatever a client sends.
const MAX_MS: u64 = 30 * 24 * 3600 * 1000;

fn ms(v: u64) -> Duration {
    Duration::from_millis(v.min(MAX_MS))
}

fn us(v: u64) -> Duration {
    Duration::from_micros(v.min(MAX_MS.saturating_mul(1000)))
}

/// How a direction (or the whole connection) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// The source closed cleanly and the close was passed on (half-close).
    Eof,
    /// Close the whole connection (timeout, limit_data, proxy disabled).
    Close,
    /// Reset the whole connection: SO_LINGER 0 on both sockets, then close (RST).
    Reset,
}

struct Chunk {
    data: Vec<u8>,
    pos: usize,
    read_at: Instant,
    /// Drawn once per chunk so that jitter does not change when the plan is recomputed.
    seed: u64,
}

/// What one connection direction remembers about one toxic.
struct ToxicState {
    version: u64,
    /// The toxicity roll: does this toxic act on this connection?
    active: bool,
    /// When this connection first saw this version of the toxic.
    since: Instant,
    /// bandwidth: when the virtual link is free again.
    bw_free: Option<Instant>,
    /// limit_data: bytes passed so far (kept across updates, as Toxiproxy does).
    transmitted: u64,
    /// slicer: the next piece may not leave before this.
    slicer_next: Option<Instant>,
    /// slicer: the size drawn for the next piece.
    slice_len: Option<usize>,
    /// reset_peer: when data (or the close) first reached the toxic.
    reset_armed: Option<Instant>,
    /// This direction is already in the toxic's count of connections it acted on.
    counted: bool,
}

/// The next thing a direction does; the toxic that causes it (its uid) is named so that
/// the toxic's own counts say what it did.
enum Action {
    Write { len: usize, bw: Vec<(u64, Instant)> },
    Drop { by: u64, arm_reset: bool },
    Close { by: Option<u64> },
    Reset { by: u64 },
    Eof { delayed_by: Vec<u64> },
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn latency_delay(latency: u64, jitter: u64, seed: u64) -> Duration {
    let latency = latency.min(MAX_MS) as i128;
    let jitter = jitter.min(MAX_MS);
    let mut total = latency;
    if jitter > 0 {
        let r = splitmix(seed) % (2 * jitter);
        total += r as i128 - jitter as i128;
    }
    Duration::from_millis(total.max(0) as u64)
}

/// One direction of a connection.
pub(crate) struct Pump<R, W> {
    src: R,
    dst: W,
    chain_rx: watch::Receiver<Arc<Chain>>,
    chain_open: bool,
    chain: Arc<Chain>,
    states: HashMap<u64, ToxicState>,
    queue: VecDeque<Chunk>,
    queued: usize,
    eof_at: Option<Instant>,
    rng: SmallRng,
    buf: Box<[u8]>,
    /// When the connection was accepted: a toxic scoped to new or established
    /// connections compares it with when the toxic was added.
    opened: std::time::Instant,
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Pump<R, W> {
    pub(crate) fn new(
        src: R,
        dst: W,
        chain_rx: watch::Receiver<Arc<Chain>>,
        opened: std::time::Instant,
    ) -> Self {
        Pump {
            src,
            dst,
            chain_rx,
            chain_open: true,
            chain: Arc::new(Chain::default()),
            states: HashMap::new(),
            queue: VecDeque::new(),
            queued: 0,
            eof_at: None,
            rng: SmallRng::from_rng(&mut rand::rng()),
            buf: vec![0u8; READ_BUF].into_boxed_slice(),
            opened,
        }
    }

    /// Pick up the newest chain, if it changed, and bring per-toxic state in line.
    fn refresh_chain(&mut self, now: Instant) {
        let latest = self.chain_rx.borrow_and_update().clone();
        if Arc::ptr_eq(&latest, &self.chain) {
            return;
        }
        self.chain = latest;
        let chain = self.chain.clone();
        self.states
            .retain(|uid, _| chain.toxics.iter().any(|t| t.uid == *uid));
        for t in &chain.toxics {
            let roll =
                self.rng.random::<f32>() < t.toxicity && t.scope.admits(self.opened, t.added);
            match self.states.get_mut(&t.uid) {
                Some(st) if st.version == t.version => {}
                Some(st) => {
                    st.version = t.version;
                    st.active = roll;
                    st.since = now;
                    st.slice_len = None;
                    st.reset_armed = None;
                }
                None => {
                    self.states.insert(
                        t.uid,
                        ToxicState {
                            version: t.version,
                            active: roll,
                            since: now,
                            bw_free: None,
                            transmitted: 0,
                            slicer_next: None,
                            slice_len: None,
                            reset_armed: None,
                            counted: false,
                        },
                    );
                }
            }
        }
    }

    /// What the head of the queue does next, and when, under the current chain.
    fn head_step(&mut self) -> Option<(Instant, Action)> {
        let head = self.queue.front()?;
        let remaining = head.data.len() - head.pos;
        let (read_at, seed) = (head.read_at, head.seed);
        let chain = self.chain.clone();

        // Pass 1: how big a piece may leave now.
        let mut len = remaining;
        for t in &chain.toxics {
            let Some(st) = self.states.get_mut(&t.uid) else {
                continue;
            };
            if !st.active {
                continue;
            }
            match t.kind {
                ToxicKind::Timeout { .. } | ToxicKind::ResetPeer { .. } => break,
                ToxicKind::Bandwidth { rate } if rate > 0 => {
                    // Toxiproxy sends a slow link's data in 100 ms portions.
                    len = len.min(rate.saturating_mul(100).max(1) as usize);
                }
                ToxicKind::Slicer {
                    average_size,
                    size_variation,
                    ..
                } => {
                    let rng = &mut self.rng;
                    let piece = *st.slice_len.get_or_insert_with(|| {
                        let avg = average_size.max(1) as i64;
                        let var = size_variation.min(average_size) as i64;
                        let off = if var > 0 {
                            rng.random_range(-var..=var)
                        } else {
                            0
                        };
                        (avg + off).max(1) as usize
                    });
                    len = len.min(piece);
                }
                ToxicKind::LimitData { bytes } => {
                    let allowed = bytes.saturating_sub(st.transmitted);
                    if allowed > 0 {
                        len = len.min(usize::try_from(allowed).unwrap_or(usize::MAX));
                    }
                }
                _ => {}
            }
        }

        // Pass 2: when that piece may leave, stage by stage.
        let mut at = read_at;
        let mut bw = Vec::new();
        for t in &chain.toxics {
            let Some(st) = self.states.get(&t.uid) else {
                continue;
            };
            if !st.active {
                continue;
            }
            match t.kind {
                ToxicKind::Latency { latency, jitter } => {
                    at += latency_delay(latency, jitter, seed ^ splitmix(t.uid));
                }
                ToxicKind::Bandwidth { rate } if rate > 0 => {
                    let start = st.bw_free.map_or(at, |free| free.max(at));
                    // rate KB/s = rate bytes per ms.
                    at = start + Duration::from_nanos(len as u64 * 1_000_000 / rate);
                    bw.push((t.uid, at));
                }
                ToxicKind::Slicer { .. } => {
                    if let Some(next) = st.slicer_next {
                        at = at.max(next);
                    }
                }
                ToxicKind::Timeout { .. } => {
                    return Some((
                        at,
                        Action::Drop {
                            by: t.uid,
                            arm_reset: false,
                        },
                    ));
                }
                ToxicKind::ResetPeer { .. } => {
                    return Some((
                        at,
                        Action::Drop {
                            by: t.uid,
                            arm_reset: true,
                        },
                    ));
                }
                ToxicKind::LimitData { bytes } if st.transmitted >= bytes => {
                    return Some((at, Action::Close { by: Some(t.uid) }));
                }
                _ => {}
            }
        }
        Some((at, Action::Write { len, bw }))
    }

    /// The earliest thing this direction has to do.
    fn plan(&mut self) -> Option<(Instant, Action)> {
        let mut best = self.head_step();
        let mut consider = |at: Instant, action: Action| {
            if best.as_ref().is_none_or(|(b, _)| at < *b) {
                best = Some((at, action));
            }
        };
        let queue_empty = self.queue.is_empty();
        let mut eof_at = self.eof_at.filter(|_| queue_empty);
        let mut delayed_by = Vec::new();
        for t in &self.chain.toxics {
            let Some(st) = self.states.get(&t.uid) else {
                continue;
            };
            if !st.active {
                continue;
            }
            match t.kind {
                ToxicKind::Timeout { timeout } if timeout > 0 => {
                    consider(st.since + ms(timeout), Action::Close { by: Some(t.uid) });
                }
                ToxicKind::ResetPeer { timeout } => {
                    // Data, or the close itself, arms the reset.
                    if let Some(armed) = st.reset_armed.or(eof_at) {
                        consider(armed + ms(timeout), Action::Reset { by: t.uid });
                        eof_at = None;
                    }
                }
                ToxicKind::SlowClose { delay } => {
                    if let Some(e) = eof_at.as_mut() {
                        *e += ms(delay);
                        if delay > 0 {
                            delayed_by.push(t.uid);
                        }
                    }
                }
                _ => {}
            }
        }
        if let Some(at) = eof_at {
            consider(at, Action::Eof { delayed_by });
        }
        best
    }

    /// The stats of a toxic acting on this direction, counting the direction once.
    fn acted(&mut self, uid: u64) -> Option<Arc<super::toxic::ToxicStats>> {
        let t = self.chain.toxics.iter().find(|t| t.uid == uid)?;
        let st = self.states.get_mut(&uid)?;
        if !st.counted {
            st.counted = true;
            t.stats.connection();
        }
        Some(t.stats.clone())
    }

    async fn perform(&mut self, action: Action) -> Option<End> {
        match action {
            Action::Write { len, bw } => {
                let head = self.queue.front_mut().expect("a write needs a head chunk");
                if self
                    .dst
                    .write_all(&head.data[head.pos..head.pos + len])
                    .await
                    .is_err()
                {
                    return Some(End::Reset);
                }
                head.pos += len;
                if head.pos == head.data.len() {
                    self.queue.pop_front();
                }
                self.queued -= len;
                let after = Instant::now();
                let mut limit_reached = None;
                let mut shaped = Vec::new();
                for t in &self.chain.toxics {
                    let Some(st) = self.states.get_mut(&t.uid) else {
                        continue;
                    };
                    if !st.active {
                        continue;
                    }
                    match t.kind {
                        ToxicKind::Slicer { delay, .. } => {
                            st.slicer_next = Some(after + us(delay));
                            st.slice_len = None;
                            shaped.push(t.uid);
                        }
                        ToxicKind::LimitData { bytes } => {
                            st.transmitted += len as u64;
                            if st.transmitted >= bytes {
                                limit_reached = Some(t.uid);
                            }
                        }
                        ToxicKind::Latency { latency, jitter } if latency > 0 || jitter > 0 => {
                            shaped.push(t.uid);
                        }
                        ToxicKind::Bandwidth { rate } if rate > 0 => shaped.push(t.uid),
                        _ => {}
                    }
                }
                for uid in shaped {
                    if let Some(stats) = self.acted(uid) {
                        stats.bytes(len);
                    }
                }
                for (uid, free) in bw {
                    if let Some(st) = self.states.get_mut(&uid) {
                        st.bw_free = Some(free);
                    }
                }
                let uid = limit_reached?;
                if let Some(stats) = self.acted(uid) {
                    stats.event();
                }
                Some(End::Close)
            }
            Action::Drop { by, arm_reset } => {
                if let Some(chunk) = self.queue.pop_front() {
                    let n = chunk.data.len() - chunk.pos;
                    self.queued -= n;
                    if let Some(stats) = self.acted(by) {
                        stats.bytes(n);
                    }
                }
                if let Some(st) = arm_reset.then(|| self.states.get_mut(&by)).flatten() {
                    st.reset_armed.get_or_insert_with(Instant::now);
                }
                None
            }
            Action::Close { by } => {
                if let Some(stats) = by.and_then(|uid| self.acted(uid)) {
                    stats.event();
                }
                Some(End::Close)
            }
            Action::Reset { by } => {
                if let Some(stats) = self.acted(by) {
                    stats.event();
                }
                Some(End::Reset)
            }
            Action::Eof { delayed_by } => {
                for uid in delayed_by {
                    if let Some(stats) = self.acted(uid) {
                        stats.event();
                    }
                }
                let _ = self.dst.shutdown().await;
                Some(End::Eof)
            }
        }
    }

    pub(crate) async fn run(mut self) -> End {
        loop {
            self.refresh_chain(Instant::now());
            let next = self.plan();
            let now = Instant::now();
            let wake = match next {
                Some((at, action)) if at <= now => {
                    if let Some(end) = self.perform(action).await {
                        return end;
                    }
                    continue;
                }
                Some((at, _)) => Some(at),
                None => None,
            };
            let can_read = self.eof_at.is_none() && self.queued < MAX_QUEUED;
            tokio::select! {
                biased;
                changed = self.chain_rx.changed(), if self.chain_open => {
                    if changed.is_err() {
                        // The proxy is gone; its cancellation closes this connection.
                        self.chain_open = false;
                    }
                }
                _ = sleep_until(wake.unwrap_or(now)), if wake.is_some() => {}
                read = self.src.read(&mut self.buf), if can_read => match read {
                    Ok(0) => self.eof_at = Some(Instant::now()),
                    Ok(n) => {
                        self.queue.push_back(Chunk {
                            data: self.buf[..n].to_vec(),
                            pos: 0,
                            read_at: Instant::now(),
                            seed: self.rng.random(),
                        });
                        self.queued += n;
                    }
                    Err(_) => return End::Reset,
                },
                // Unreachable in practice (an empty queue without EOF can always read),
                // but a select with every branch off would panic: end cleanly instead.
                else => return End::Close,
            }
        }
    }
}

/// Serve one accepted client: connect upstream, pump both ways until the server side
/// ends, a toxic closes or resets the connection, or `token` is cancelled (proxy
/// disabled, deleted, or the server dropped).
pub(crate) async fn run_connection(
    mut client: TcpStream,
    upstream: String,
    up: watch::Receiver<Arc<Chain>>,
    down: watch::Receiver<Arc<Chain>>,
    token: CancellationToken,
) {
    let opened = std::time::Instant::now();
    let connect = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(upstream.as_str()));
    let mut server = tokio::select! {
        _ = token.cancelled() => return,
        r = connect => match r {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::debug!(%upstream, error = %e, "proxy: upstream refused, closing client");
                return;
            }
            Err(_) => {
                tracing::debug!(%upstream, "proxy: upstream connect timed out, closing client");
                return;
            }
        },
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);

    let end = {
        let (client_r, client_w) = client.split();
        let (server_r, server_w) = server.split();
        let up = Pump::new(client_r, server_w, up, opened).run();
        let down = Pump::new(server_r, client_w, down, opened).run();
        tokio::pin!(up, down);
        let mut up_done = false;
        loop {
            tokio::select! {
                _ = token.cancelled() => break End::Close,
                // A client's half-close is passed on, and its replies still flow back.
                e = &mut up, if !up_done => match e {
                    End::Eof => up_done = true,
                    other => break other,
                },
                // The server closed (after its last bytes and FIN went through): close
                // the client side fully too, as the server did. The client's next write
                // then meets a reset, exactly as on a direct connection (a `gone_away`,
                // not a silent EOF that only shows on the following read).
                e = &mut down => break match e {
                    End::Eof => End::Close,
                    other => other,
                },
            }
        }
    };
    if end == End::Reset {
        let _ = client.set_zero_linger();
        let _ = server.set_zero_linger();
    }
    // Both sockets close here.
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_bounds_and_never_goes_negative() {
        for seed in 0..1000 {
            let d = latency_delay(10, 5, seed);
            assert!(d >= Duration::from_millis(5) && d < Duration::from_millis(15));
            let d = latency_delay(1, 50, seed);
            assert!(d < Duration::from_millis(51));
        }
        assert_eq!(latency_delay(u64::MAX, 0, 1), Duration::from_millis(MAX_MS));
    }
}
