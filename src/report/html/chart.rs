//! The picture of a run: one SVG, one time axis, three panels (a lane per worker, the
//! pool's counts, request latency), fault windows shaded across all of them and markers
//! where a check failed. Built as an element tree with the `svg` crate (which escapes
//! every attribute and text, raw error messages included); colours come from the page's
//! stylesheet through class names, which keeps the file small.

use std::collections::{BTreeMap, HashSet};

use svg::Document;
use svg::node::element::path::Data;
use svg::node::element::{Circle, Group, Line, Path, Rectangle, Text, Title};

use crate::report::timeline::{Mark, Request, Timeline, Window, statement};

/// The drawing's width in SVG units; the page scales it to the window.
const WIDTH: f64 = 1400.0;
const LEFT: f64 = 118.0;
const RIGHT: f64 = 24.0;
const POOL_H: f64 = 130.0;
const LATENCY_H: f64 = 170.0;
const PANEL_GAP: f64 = 30.0;
/// Above this many requests, neighbouring successes in a lane that fit in a few pixels
/// together are drawn as one bar (each bar says how many it stands for), so that about
/// this many bars are drawn: each costs ~150 bytes with its hover text.
pub const BAR_BUDGET: usize = 1_000;
/// At most about this many latency points: when more requests fall on distinct pixels,
/// points are kept one per cell of a coarser grid.
pub const POINT_BUDGET: usize = 2_000;

/// The drawn picture and what was simplified to draw it.
pub struct Chart {
    pub svg: String,
    /// Request bars drawn, and how many requests they stand for in all.
    pub bars: usize,
    pub bar_requests: usize,
    /// Latency points drawn (one per pixel a request's latency falls on).
    pub points: usize,
    /// What was left out or merged, in words, for the page to say.
    pub notes: Vec<String>,
}

/// Round to a tenth of a unit: coordinates finer than that only cost bytes.
fn r(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

struct Axis {
    span_us: f64,
}

impl Axis {
    fn x(&self, t_us: u64) -> f64 {
        r(LEFT + (t_us as f64 / self.span_us).min(1.0) * (WIDTH - LEFT - RIGHT))
    }
    fn px_per_us(&self) -> f64 {
        (WIDTH - LEFT - RIGHT) / self.span_us
    }
}

fn secs(us: u64) -> String {
    format!("{:.2}s", us as f64 / 1e6)
}

fn ms(us: u64) -> String {
    let v = us as f64 / 1e3;
    if v >= 100.0 {
        format!("{v:.0} ms")
    } else {
        format!("{v:.1} ms")
    }
}

fn text(x: f64, y: f64, class: &str, content: impl Into<String>) -> Text {
    Text::new(content)
        .set("x", r(x))
        .set("y", r(y))
        .set("class", class)
}

fn hline(x1: f64, x2: f64, y: f64, class: &str) -> Line {
    Line::new()
        .set("x1", r(x1))
        .set("x2", r(x2))
        .set("y1", r(y))
        .set("y2", r(y))
        .set("class", class)
}

fn vline(x: f64, y1: f64, y2: f64, class: &str) -> Line {
    Line::new()
        .set("x1", r(x))
        .set("x2", r(x))
        .set("y1", r(y1))
        .set("y2", r(y2))
        .set("class", class)
}

/// A tick step in seconds that gives at most about 15 ticks.
fn tick_step(span_s: f64) -> f64 {
    [
        0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
    ]
    .into_iter()
    .find(|s| span_s / s <= 15.0)
    .unwrap_or(7200.0)
}

fn lane_height(workers: u32) -> f64 {
    match workers {
        0..=8 => 24.0,
        9..=24 => 16.0,
        n => (480.0 / n as f64).max(3.0),
    }
}

/// Place fault labels in rows so that they do not overlap; returns each one's row.
fn label_rows(ws: &[(f64, f64)]) -> (Vec<usize>, usize) {
    let mut ends: Vec<f64> = Vec::new();
    let mut rows = Vec::new();
    for &(x, width) in ws {
        let row = ends.iter().position(|&e| e < x).unwrap_or(ends.len());
        if row == ends.len() {
            ends.push(0.0);
        }
        ends[row] = x + width;
        rows.push(row);
    }
    (rows, ends.len().max(1))
}

pub fn chart(t: &Timeline) -> Chart {
    chart_over(t, t.span_us())
}

/// The picture on a time axis of `span_us` (at least the timeline's own): two runs drawn
/// over the same span compare at a glance.
pub fn chart_over(t: &Timeline, span_us: u64) -> Chart {
    let axis = Axis {
        span_us: span_us.max(t.span_us()) as f64,
    };
    let mut notes = Vec::new();
    let lane_h = lane_height(t.workers);
    let workers = t
        .workers
        .max(t.requests.iter().map(|r| r.worker + 1).max().unwrap_or(0))
        .max(1);

    // Fault labels first: their rows decide where the lanes start.
    let labels: Vec<String> = t.faults.iter().map(|f| fault_label(f, t)).collect();
    let placed: Vec<(f64, f64)> = t
        .faults
        .iter()
        .zip(&labels)
        .map(|(f, l)| {
            (
                axis.x(shown_start(f)),
                l.chars().count() as f64 * 6.2 + 12.0,
            )
        })
        .collect();
    let (rows, nrows) = label_rows(&placed);
    let lanes_top = 8.0 + nrows as f64 * 15.0 + 4.0;
    let lanes_bottom = lanes_top + workers as f64 * lane_h;
    let pool_top = lanes_bottom + PANEL_GAP;
    let pool_bottom = pool_top + POOL_H;
    let lat_top = pool_bottom + PANEL_GAP;
    let lat_bottom = lat_top + LATENCY_H;
    let height = lat_bottom + 34.0;

    let mut doc = Document::new()
        .set("viewBox", (0, 0, WIDTH as i64, height.ceil() as i64))
        .set("class", "timeline")
        .set("role", "img")
        .set("font-family", "sans-serif");

    // Grid and time axis.
    let span_s = axis.span_us / 1e6;
    let step = tick_step(span_s);
    let mut grid = Group::new().set("class", "grid");
    let mut k = 0;
    loop {
        let s = k as f64 * step;
        if s > span_s + 1e-9 {
            break;
        }
        let x = axis.x((s * 1e6) as u64);
        grid = grid.add(vline(x, lanes_top, lat_bottom, "tick")).add(text(
            x,
            lat_bottom + 16.0,
            "tick-label",
            format!("{s}s"),
        ));
        k += 1;
    }
    grid = grid.add(text(
        WIDTH - RIGHT,
        lat_bottom + 30.0,
        "axis-title end",
        "time since the run started",
    ));
    doc = doc.add(grid);

    // Lanes and request bars.
    // Successes closer together than this share a bar: wide enough that the lanes hold
    // about BAR_BUDGET bars in all.
    let merge_px = (t.requests.len() > BAR_BUDGET)
        .then(|| ((WIDTH - LEFT - RIGHT) * workers as f64 / BAR_BUDGET as f64).max(3.0));
    let bars = request_bars(t, &axis, lanes_top, lane_h, workers, merge_px);
    let drawn = bars.iter().filter(|b| b.n > 0).count();
    let stood_for: usize = bars.iter().map(|b| b.n).sum();
    if drawn < t.requests.len() {
        notes.push(format!(
            "{} requests are drawn as {drawn} bars: neighbouring successes in a lane that fit in {:.0} px (of {:.0}) share a bar (hover says how many)",
            t.requests.len(),
            merge_px.unwrap_or(0.0),
            WIDTH - LEFT - RIGHT
        ));
    }
    if t.omitted > 0 {
        notes.push(format!(
            "{} successful requests were left out of the saved timeline (it keeps at most {}; every failure is kept)",
            t.omitted,
            crate::report::timeline::MAX_REQUESTS
        ));
    }
    let mut lanes = Group::new().set("class", "lanes");
    for w in 0..workers {
        let y = lanes_top + w as f64 * lane_h;
        lanes = lanes
            .add(
                Rectangle::new()
                    .set("x", LEFT)
                    .set("y", r(y))
                    .set("width", r(WIDTH - LEFT - RIGHT))
                    .set("height", r(lane_h))
                    .set("class", if w % 2 == 0 { "lane" } else { "lane alt" }),
            )
            .add(text(
                LEFT - 8.0,
                y + lane_h / 2.0 + 4.0,
                "lane-label end",
                format!("worker {w}"),
            ));
    }
    doc = doc.add(lanes);
    // Fault windows, over the lanes, under the requests.
    let mut faults = Group::new().set("class", "faults");
    for ((f, label), row) in t.faults.iter().zip(&labels).zip(&rows) {
        faults = faults.add(fault_window(
            f,
            t,
            &axis,
            label,
            8.0 + *row as f64 * 15.0 + 11.0,
            lanes_top,
            lat_bottom,
        ));
    }
    doc = doc.add(faults);

    let mut requests = Group::new().set("class", "requests");
    for b in bars {
        requests = requests.add(b.rect);
    }
    doc = doc.add(requests);

    // Marks where a check failed, above the bars.
    let mut marks = Group::new().set("class", "marks");
    for m in &t.marks {
        marks = marks.add(mark(m, &axis, lanes_top, lane_h, workers));
    }
    doc = doc.add(marks);

    doc = doc.add(pool_panel(t, &axis, pool_top, pool_bottom));
    let (latency, points) = latency_panel(t, &axis, lat_top, lat_bottom, &mut notes);
    doc = doc.add(latency);

    Chart {
        svg: doc.to_string(),
        bars: drawn,
        bar_requests: stood_for,
        points,
        notes,
    }
}

/// Where a window starts on the picture: when it took effect, or, never applied, when it
/// was planned.
fn shown_start(f: &Window) -> u64 {
    if f.applied { f.start_us } else { f.planned_us }
}

fn fault_label(f: &Window, t: &Timeline) -> String {
    if f.skipped {
        return format!("{} (skipped)", f.name);
    }
    if !f.applied {
        return format!("{} (failed to apply)", f.name);
    }
    let grace = format!("{:.1}s grace", t.grace_us as f64 / 1e6);
    match (f.instant, f.healed_us) {
        (true, _) => format!("{} at {}, {grace}", f.name, secs(f.start_us)),
        (false, Some(h)) => format!("{} {} → {}, {grace}", f.name, secs(f.start_us), secs(h)),
        (false, None) => format!("{} from {} (never healed)", f.name, secs(f.start_us)),
    }
}

fn fault_window(
    f: &Window,
    t: &Timeline,
    axis: &Axis,
    label: &str,
    label_y: f64,
    top: f64,
    bottom: f64,
) -> Group {
    let x0 = axis.x(shown_start(f));
    let mut hover = format!("fault `{}` ({})", f.name, f.kind);
    if f.applied {
        hover.push_str(&format!(
            "\napplied {} (planned {})",
            secs(f.start_us),
            secs(f.planned_us)
        ));
        match f.healed_us {
            Some(h) if !f.instant => hover.push_str(&format!("\nhealed {}", secs(h))),
            Some(_) => {}
            None => hover.push_str("\nnever healed before the run ended"),
        }
        hover.push_str(&format!(
            "\nerrors within {:.1}s after the heal are still blamed on it (grace)",
            t.grace_us as f64 / 1e6
        ));
    }
    for line in [&f.detail, &f.evidence] {
        if !line.is_empty() {
            hover.push('\n');
            hover.push_str(line);
        }
    }
    if let Some(e) = &f.error {
        hover.push_str(&format!("\nerror: {e}"));
    }
    let mut g = Group::new()
        .set("class", "fault-window")
        .set("data-fault", f.name.as_str())
        .add(Title::new(hover));
    if f.applied {
        let heal = match (f.instant, f.healed_us) {
            (true, _) => f.start_us,
            (false, Some(h)) => h,
            (false, None) => axis.span_us as u64,
        };
        let x1 = axis.x(heal).max(x0 + 2.0);
        g = g.add(
            Rectangle::new()
                .set("x", x0)
                .set("y", r(top))
                .set("width", r(x1 - x0))
                .set("height", r(bottom - top))
                .set("class", "fault"),
        );
        if f.instant || f.healed_us.is_some() {
            let xg = axis.x(heal + t.grace_us);
            g = g.add(
                Rectangle::new()
                    .set("x", x1)
                    .set("y", r(top))
                    .set("width", r((xg - x1).max(0.0)))
                    .set("height", r(bottom - top))
                    .set("class", "grace"),
            );
        }
        g = g.add(vline(x0, label_y - 10.0, bottom, "fault-edge"));
    } else {
        g = g.add(vline(x0, label_y - 10.0, bottom, "fault-edge unapplied"));
    }
    g.add(text(x0 + 3.0, label_y, "fault-label", label))
}

/// One bar: the rectangle, and how many requests it stands for.
struct Bar {
    rect: Rectangle,
    n: usize,
}

fn request_bars(
    t: &Timeline,
    axis: &Axis,
    top: f64,
    lane_h: f64,
    workers: u32,
    merge_px: Option<f64>,
) -> Vec<Bar> {
    let mut by_lane: BTreeMap<u32, Vec<&Request>> = BTreeMap::new();
    for q in &t.requests {
        by_lane.entry(q.worker).or_default().push(q);
    }
    let pad = (lane_h * 0.15).min(3.0);
    let mut out = Vec::new();
    for w in 0..workers {
        let y = r(top + w as f64 * lane_h + pad);
        let h = r(lane_h - 2.0 * pad);
        let lane = by_lane.remove(&w).unwrap_or_default();
        let mut i = 0;
        while i < lane.len() {
            let q = lane[i];
            // A run of successes that fits in a few pixels becomes one bar.
            let mut j = i + 1;
            if let Some(merge_px) = merge_px.filter(|_| q.ok()) {
                while j < lane.len()
                    && lane[j].ok()
                    && (lane[j].end_us.saturating_sub(q.start_us)) as f64 * axis.px_per_us()
                        < merge_px
                {
                    j += 1;
                }
            }
            let run = &lane[i..j];
            let last = run[run.len() - 1];
            let x0 = axis.x(q.start_us);
            // A failure stays visible however short it was.
            let x1 = axis.x(last.end_us).max(x0 + if q.ok() { 1.0 } else { 3.0 });
            let mut class = match q.class {
                None => "req ok".to_string(),
                Some(c) => format!("req err c-{}", c.name()),
            };
            if q.class.is_some() && !q.tolerated {
                class.push_str(" bad");
            }
            if q.leaked {
                class.push_str(" leaked");
            }
            let hover = if run.len() == 1 {
                request_hover(q, t)
            } else {
                let slowest = run.iter().map(|q| q.end_us - q.start_us).max().unwrap_or(0);
                format!(
                    "worker {w}, {} successful requests #{}–#{}, {} → {}, slowest {}",
                    run.len(),
                    q.seq,
                    last.seq,
                    secs(q.start_us),
                    secs(last.end_us),
                    ms(slowest)
                )
            };
            let mut rect = Rectangle::new()
                .set("x", x0)
                .set("y", y)
                .set("width", r(x1 - x0))
                .set("height", h)
                .set("class", class);
            if run.len() > 1 {
                rect = rect.set("data-n", run.len());
            }
            out.push(Bar {
                rect: rect.add(Title::new(hover)),
                n: run.len(),
            });
            i = j;
        }
    }
    out
}

fn request_hover(q: &Request, t: &Timeline) -> String {
    let outcome = match q.class {
        None => "ok".to_string(),
        Some(c) => c.to_string(),
    };
    let mut s = format!(
        "worker {} #{} {}, {} → {} ({}): {outcome}\n{}",
        q.worker,
        q.seq,
        q.kind,
        secs(q.start_us),
        secs(q.end_us),
        ms(q.end_us - q.start_us),
        statement(q.kind)
    );
    if let Some(c) = q.class {
        // The row ids only where something went wrong: they cost bytes on every bar.
        if !q.inserted.is_empty() {
            let ids: Vec<String> = q.inserted.iter().map(|i| i.to_string()).collect();
            s.push_str(&format!(" [id {}]", ids.join(", ")));
        }
        let at = match q.phase {
            Some(crate::history::Phase::Checkout) => " at checkout",
            Some(crate::history::Phase::Query) => " in the query",
            None => "",
        };
        let place = q.place.as_deref().unwrap_or("");
        let allowed = if q.tolerated {
            "tolerated"
        } else {
            "NOT tolerated"
        };
        s.push_str(&format!("\n{c}{at} {place}, {allowed} ({})", c.symptom()));
        if let Some(m) = q.message.and_then(|i| t.messages.get(i)) {
            s.push('\n');
            s.push_str(m);
        }
    }
    if q.leaked {
        s.push_str("\nkept its connection: never returned to the pool");
    }
    s
}

fn mark(m: &Mark, axis: &Axis, top: f64, lane_h: f64, workers: u32) -> Group {
    let x = axis.x(m.at_us);
    let (y0, y1) = match m.worker {
        Some(w) if w < workers => (top + w as f64 * lane_h, top + (w as f64 + 1.0) * lane_h),
        _ => (top, top + workers as f64 * lane_h),
    };
    let tip = Data::new()
        .move_to((r(x - 5.0), r(y0 - 1.0)))
        .line_to((r(x + 5.0), r(y0 - 1.0)))
        .line_to((r(x), r(y0 + 7.0)))
        .close();
    Group::new()
        .set("class", "mark")
        .set("data-check", m.check.as_str())
        .add(Title::new(format!(
            "check `{}` failed here ({}): {}",
            m.check,
            secs(m.at_us),
            m.text
        )))
        .add(vline(x, y0, y1, "mark-line"))
        .add(Path::new().set("d", tip).set("class", "mark-tip"))
}

/// A step line through `(t, value)` points: only the points where the value changes.
fn steps(points: &[(u64, u32)], axis: &Axis, y: impl Fn(f64) -> f64, end_us: u64) -> Data {
    let mut data = Data::new();
    let mut last: Option<u32> = None;
    for &(t, v) in points {
        let x = axis.x(t);
        match last {
            None => data = data.move_to((x, r(y(v as f64)))),
            Some(prev) if prev != v => {
                data = data.horizontal_line_to(x).vertical_line_to(r(y(v as f64)))
            }
            Some(_) => continue,
        }
        last = Some(v);
    }
    if last.is_some() {
        data = data.horizontal_line_to(axis.x(end_us));
    }
    data
}

fn pool_panel(t: &Timeline, axis: &Axis, top: f64, bottom: f64) -> Group {
    let max = t
        .pool
        .iter()
        .map(|p| p.open)
        .chain(t.server.iter().map(|s| s.sessions))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let y = |v: f64| bottom - v / (max * 1.1) * (bottom - top);
    let mut g = Group::new().set("class", "panel pool").add(
        Rectangle::new()
            .set("x", LEFT)
            .set("y", r(top))
            .set("width", r(WIDTH - LEFT - RIGHT))
            .set("height", r(bottom - top))
            .set("class", "frame"),
    );
    g = g.add(text(LEFT - 8.0, top - 10.0, "panel-title end", "pool"));
    // Integer ticks on the count axis.
    let step = ((max / 4.0).ceil()).max(1.0);
    let mut v = 0.0;
    while v <= max * 1.1 {
        g = g.add(hline(LEFT, WIDTH - RIGHT, y(v), "hgrid")).add(text(
            LEFT - 8.0,
            y(v) + 4.0,
            "tick-label end",
            format!("{v}"),
        ));
        v += step;
    }
    let end = axis.span_us as u64;
    type Series<'a> = (&'a str, &'a str, Vec<(u64, u32)>);
    let series: [Series; 3] = [
        (
            "open",
            "s-open",
            t.pool.iter().map(|p| (p.at_us, p.open)).collect(),
        ),
        (
            "idle",
            "s-idle",
            t.pool.iter().map(|p| (p.at_us, p.idle)).collect(),
        ),
        (
            "in use",
            "s-inuse",
            t.pool
                .iter()
                .map(|p| (p.at_us, p.open.saturating_sub(p.idle)))
                .collect(),
        ),
    ];
    let mut legend: Vec<(&str, &str)> = Vec::new();
    for (name, class, pts) in series {
        g = g.add(
            Path::new()
                .set("d", steps(&pts, axis, y, end))
                .set("class", format!("series {class}")),
        );
        legend.push((name, class));
    }
    if !t.server.is_empty() {
        let pts: Vec<(u64, u32)> = t.server.iter().map(|s| (s.at_us, s.sessions)).collect();
        g = g.add(
            Path::new()
                .set("d", steps(&pts, axis, y, end))
                .set("class", "series s-server"),
        );
        legend.push(("server sessions", "s-server"));
    }
    let mut x = LEFT + 8.0;
    for (name, class) in legend {
        g = g
            .add(hline(x, x + 16.0, top - 14.0, &format!("series {class}")))
            .add(text(x + 20.0, top - 10.0, "legend", name));
        x += 34.0 + name.len() as f64 * 6.5;
    }
    g
}

/// Latency panel: every request's duration as a point on a log scale (failures coloured
/// by class), and p50/p99 of the successful ones per second of the run.
fn latency_panel(
    t: &Timeline,
    axis: &Axis,
    top: f64,
    bottom: f64,
    notes: &mut Vec<String>,
) -> (Group, usize) {
    let lat = |q: &Request| (q.end_us.saturating_sub(q.start_us)).max(1) as f64 / 1e3;
    let max_ms = t.requests.iter().map(lat).fold(1.0_f64, f64::max);
    let min_ms = t.requests.iter().map(lat).fold(max_ms, f64::min);
    let lo = 10f64.powf(min_ms.max(0.01).log10().floor());
    let hi = 10f64.powf(max_ms.log10().ceil()).max(lo * 10.0);
    let y = |v: f64| {
        let f = (v.max(lo).log10() - lo.log10()) / (hi.log10() - lo.log10());
        bottom - f * (bottom - top)
    };
    let mut g = Group::new().set("class", "panel latency").add(
        Rectangle::new()
            .set("x", LEFT)
            .set("y", r(top))
            .set("width", r(WIDTH - LEFT - RIGHT))
            .set("height", r(bottom - top))
            .set("class", "frame"),
    );
    g = g.add(text(LEFT - 8.0, top - 10.0, "panel-title end", "latency"));
    let mut d = lo;
    while d <= hi * 1.001 {
        let label = if d >= 1000.0 {
            format!("{}s", d / 1000.0)
        } else {
            format!("{d}ms")
        };
        g = g.add(hline(LEFT, WIDTH - RIGHT, y(d), "hgrid")).add(text(
            LEFT - 8.0,
            y(d) + 4.0,
            "tick-label end",
            label,
        ));
        d *= 10.0;
    }
    // One point per pixel and class: more would draw the same picture bigger. Past the
    // budget, one per cell of a coarser grid.
    let mut cell = 1.0;
    let keep = |cell: f64| -> Vec<&Request> {
        let mut seen = HashSet::new();
        t.requests
            .iter()
            .filter(|q| {
                let (x, yy) = (axis.x(q.end_us), y(lat(q)));
                seen.insert((
                    (x / cell) as i64,
                    (yy / cell) as i64,
                    q.class.map_or("ok", |c| c.name()),
                ))
            })
            .collect()
    };
    let mut kept = keep(cell);
    while kept.len() > POINT_BUDGET && cell < 64.0 {
        cell *= 2.0;
        kept = keep(cell);
    }
    if cell > 1.0 {
        notes.push(format!(
            "{} latency points are drawn for {} requests: one per {cell:.0}×{cell:.0} px cell and class",
            kept.len(),
            t.requests.len()
        ));
    }
    let mut pts = Group::new().set("class", "points");
    let points = kept.len();
    for q in kept {
        pts = pts.add(
            Circle::new()
                .set("cx", axis.x(q.end_us).round())
                .set("cy", y(lat(q)).round())
                .set("r", if q.ok() { 2 } else { 3 })
                .set(
                    "class",
                    match q.class {
                        None => "pt ok".to_string(),
                        Some(c) => format!("pt err c-{}", c.name()),
                    },
                ),
        );
    }
    g = g.add(pts);
    // p50 and p99 of successful requests, per second of the run (by when they ended).
    let mut per_sec: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    for q in t.requests.iter().filter(|q| q.ok()) {
        per_sec
            .entry(q.end_us / 1_000_000)
            .or_default()
            .push(lat(q));
    }
    for (p, class, name) in [(0.5, "s-p50", "p50"), (0.99, "s-p99", "p99")] {
        let mut data = Data::new();
        let mut prev: Option<u64> = None;
        for (s, v) in per_sec.iter_mut() {
            v.sort_by(f64::total_cmp);
            let q = v[((v.len() - 1) as f64 * p).round() as usize];
            let (x0, x1) = (axis.x(s * 1_000_000), axis.x((s + 1) * 1_000_000));
            data = if prev.is_some_and(|p| p + 1 == *s) {
                data.vertical_line_to(r(y(q)))
            } else {
                data.move_to((x0, r(y(q))))
            };
            data = data.horizontal_line_to(x1);
            prev = Some(*s);
        }
        g = g.add(
            Path::new()
                .set("d", data)
                .set("class", format!("series {class}"))
                .add(Title::new(format!(
                    "{name} latency of the successful requests that ended in each second"
                ))),
        );
    }
    let mut x = LEFT + 8.0;
    for (name, class) in [("p50 per second", "s-p50"), ("p99 per second", "s-p99")] {
        g = g
            .add(hline(x, x + 16.0, top - 14.0, &format!("series {class}")))
            .add(text(x + 20.0, top - 10.0, "legend", name));
        x += 34.0 + name.len() as f64 * 6.5;
    }
    g = g.add(text(
        x + 10.0,
        top - 10.0,
        "legend",
        "· a request (log scale; failures coloured by class)",
    ));
    (g, points)
}
