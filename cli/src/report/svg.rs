//! The timeline picture of one reproducer's run, as a standalone SVG document (see the
//! module docs of [`report`](super)).

use super::esc;
use ftsim_core::errno::fmt_result;
use ftsim_core::ids::OpsLayout;
use ftsim_core::kernel::CallSite;
use ftsim_core::locks::{Lock, LockClass};
use ftsim_core::op::{Op, OpKind};
use ftsim_core::step::EventKind;
use ftsim_core::Kernel;
use ftsim_drive::script::Script;
use std::collections::BTreeMap;
use std::fmt::Write as _;

pub(super) fn actor(op: &Op) -> String {
    match op {
        Op::TracerRegister { tracer, .. }
        | Op::TracerSet { tracer, .. }
        | Op::TracerUnregister(tracer) => format!("tracer {tracer}"),
        _ => match op.kind() {
            OpKind::Livepatch => "livepatch".into(),
            OpKind::Bpf => "BPF trampoline".into(),
            OpKind::Kprobe => "kprobes".into(),
            OpKind::Tracer => "tracer".into(),
            OpKind::Direct => "direct user".into(),
            OpKind::Module => "modules".into(),
        },
    }
}

pub(super) fn lock_color(l: Lock) -> &'static str {
    match l.class() {
        LockClass::Direct => "#d62728",
        LockClass::Ftrace => "#1f77b4",
        LockClass::Klp => "#9467bd",
        LockClass::Kprobe => "#8c564b",
        LockClass::TraceTypes => "#e377c2",
        LockClass::Tr => "#2ca02c",
        LockClass::Regex => "#7f7f7f",
    }
}

pub(super) enum Mark {
    Callback(String),
    Errno(String, String),
    Fault(String),
    Warn(String),
    Site(String),
}

pub(super) struct Span {
    lane: usize,
    x0: usize,
    x1: Option<usize>,
    label: String,
    result: Option<String>,
    ok: bool,
}

pub(super) struct Bar {
    lane: usize,
    lock: Lock,
    x0: usize,
    x1: Option<usize>,
}

pub(super) const LEFT: usize = 190;
pub(super) const SLOT: usize = 14;
/// Room above the lanes: finding labels (stacked when several appear at once) and step numbers.
pub(super) const TOP_MIN: usize = 54;
pub(super) const OP_ROW: usize = 24;
pub(super) const LOCK_ROW: usize = 13;
pub(super) const LANE_GAP: usize = 8;

/// What the replay showed, placed on slots: lanes, operations, locks held, marks and findings.
pub(super) struct Timeline {
    lanes: Vec<String>,
    /// The locks each lane held at some point, in the order of first acquisition (one row each).
    lane_locks: Vec<Vec<Lock>>,
    spans: Vec<Span>,
    bars: Vec<Bar>,
    /// (lane, slot, mark); the lane is [`SITES_LANE`] for rewritten call sites.
    marks: Vec<(usize, usize, Mark)>,
    findings: Vec<(usize, String)>,
    /// The slot where each scheduling step begins, and the thread it ran.
    steps: Vec<(usize, u8)>,
    /// The next free slot (the width of the timeline in slots).
    x: usize,
}

/// The lane of the call sites (drawn below the actors' lanes).
pub(super) const SITES_LANE: usize = usize::MAX;

/// The state of the walk over the replay's events.
pub(super) struct Walk {
    tl: Timeline,
    concurrent: bool,
    layout: OpsLayout,
    /// The lane of each thread's current operation.
    cur: BTreeMap<u8, usize>,
    open_span: BTreeMap<u8, usize>,
    open_bar: BTreeMap<Lock, usize>,
    /// The kernel functions each thread is inside, innermost last.
    entered: BTreeMap<u8, Vec<&'static str>>,
}

impl Walk {
    fn lane_of(&mut self, name: String) -> usize {
        match self.tl.lanes.iter().position(|l| *l == name) {
            Some(i) => i,
            None => {
                self.tl.lanes.push(name);
                self.tl.lane_locks.push(Vec::new());
                self.tl.lanes.len() - 1
            }
        }
    }

    /// A mark on thread `t`'s current lane, taking one slot; nothing without a current lane.
    fn mark(&mut self, t: u8, m: Mark) {
        if let Some(&lane) = self.cur.get(&t) {
            self.tl.marks.push((lane, self.tl.x, m));
            self.tl.x += 1;
        }
    }

    fn start(&mut self, t: u8, op: &Op) {
        let name = if self.concurrent {
            format!("t{t} · {}", actor(op))
        } else {
            actor(op)
        };
        let lane = self.lane_of(name);
        self.cur.insert(t, lane);
        self.open_span.insert(t, self.tl.spans.len());
        self.tl.spans.push(Span {
            lane,
            x0: self.tl.x,
            x1: None,
            label: op.to_string(),
            result: None,
            ok: true,
        });
        self.tl.x += 1;
    }

    fn acquire(&mut self, t: u8, l: Lock) {
        if let Some(&lane) = self.cur.get(&t) {
            if !self.tl.lane_locks[lane].contains(&l) {
                self.tl.lane_locks[lane].push(l);
            }
            self.open_bar.insert(l, self.tl.bars.len());
            self.tl.bars.push(Bar {
                lane,
                lock: l,
                x0: self.tl.x,
                x1: None,
            });
            self.tl.x += 1;
        }
    }

    fn event(&mut self, t: u8, e: &EventKind) {
        let x = self.tl.x;
        match e {
            EventKind::Start(op) => self.start(t, op),
            EventKind::Finish(res) => {
                if let Some(i) = self.open_span.remove(&t) {
                    let s = &mut self.tl.spans[i];
                    s.x1 = Some(x);
                    s.result = Some(fmt_result(*res));
                    s.ok = res.is_ok();
                }
                // Room for the result label.
                self.tl.x += 3;
            }
            EventKind::Enter(name) => self.entered.entry(t).or_default().push(name),
            EventKind::Leave(name, ret) => {
                self.entered.entry(t).or_default().pop();
                if let Err(e) = ret {
                    let m = Mark::Errno(format!("{name}() returns -{e}"), format!("-{e}"));
                    self.mark(t, m);
                }
            }
            EventKind::Acquire(l) => self.acquire(t, *l),
            EventKind::Release(l) => {
                if let Some(i) = self.open_bar.remove(l) {
                    self.tl.bars[i].x1 = Some(x);
                    self.tl.x += 1;
                }
            }
            EventKind::TryFailed(l) => self.mark(t, Mark::Fault(format!("trylock {l}: taken"))),
            EventKind::AllocFailed(s) => {
                self.mark(t, Mark::Fault(format!("allocation {} fails", s.name())))
            }
            EventKind::BuildFailed(f) => {
                self.mark(t, Mark::Fault(format!("image build of {f} fails")))
            }
            EventKind::Callback(ops, cmd) => {
                let inside = self
                    .entered
                    .get(&t)
                    .and_then(|v| v.last())
                    .map_or(String::new(), |n| format!(" (from {n})"));
                let owner = self.layout.owner(*ops);
                self.mark(t, Mark::Callback(format!("{owner} <- {cmd}{inside}")));
            }
            EventKind::Site(f, site) => {
                let s = match site {
                    CallSite::Nop => "nop".to_string(),
                    CallSite::Caller => "ftrace_caller".to_string(),
                    CallSite::Direct(a) => format!("direct {a}"),
                };
                self.tl
                    .marks
                    .push((SITES_LANE, x, Mark::Site(format!("{f}: {s}"))));
                self.tl.x += 1;
            }
            EventKind::Warn(w) => self.mark(t, Mark::Warn(format!("WARN: {w}"))),
        }
    }
}

/// Replays `script` and places what happened on slots.
pub(super) fn timeline(script: &Script) -> Timeline {
    let r = script.replay_traced();
    let mut w = Walk {
        tl: Timeline {
            lanes: Vec::new(),
            lane_locks: Vec::new(),
            spans: Vec::new(),
            bars: Vec::new(),
            marks: Vec::new(),
            findings: Vec::new(),
            steps: Vec::new(),
            x: 0,
        },
        concurrent: script.is_concurrent(),
        layout: Kernel::new(&script.world, script.proto).info.layout,
        cur: BTreeMap::new(),
        open_span: BTreeMap::new(),
        open_bar: BTreeMap::new(),
        entered: BTreeMap::new(),
    };
    for step in &r.timeline {
        if let Some(t) = step.tid {
            w.tl.steps.push((w.tl.x, t));
            for e in &step.events {
                w.event(t, e);
            }
        }
        for v in &step.findings {
            w.tl.findings.push((w.tl.x, v.to_string()));
        }
        if !step.findings.is_empty() {
            w.tl.x += 1;
        }
    }
    w.tl
}

/// Where things go on the picture.
pub(super) struct Geometry {
    /// Per finding: how many labels of findings at the same slot come before it.
    stack: Vec<usize>,
    top: usize,
    lane_y: Vec<usize>,
    has_sites: bool,
    sites_y: usize,
    legend_y: usize,
    width: usize,
    height: usize,
}

pub(super) fn geometry(tl: &Timeline) -> Geometry {
    let has_sites = tl.marks.iter().any(|m| m.0 == SITES_LANE);
    // Findings at the same slot stack their labels.
    let mut stack: Vec<usize> = Vec::new();
    for (i, (slot, _)) in tl.findings.iter().enumerate() {
        let n = tl.findings[..i].iter().filter(|(s, _)| s == slot).count();
        stack.push(n);
    }
    let top = TOP_MIN + stack.iter().max().map_or(0, |m| m * 12);
    // Lane geometry.
    let mut lane_y = Vec::new();
    let mut y = top;
    for locks in &tl.lane_locks {
        lane_y.push(y);
        y += OP_ROW + locks.len() * LOCK_ROW + LANE_GAP + 4;
    }
    let sites_y = y;
    if has_sites {
        y += OP_ROW + LANE_GAP;
    }
    let legend_y = y + 6;
    Geometry {
        stack,
        top,
        lane_y,
        has_sites,
        sites_y,
        legend_y,
        height: legend_y + 40,
        width: (LEFT + (tl.x + 1) * SLOT + 140).max(800),
    }
}

/// The x of the middle of a slot.
pub(super) fn sx(slot: usize) -> usize {
    LEFT + slot * SLOT + SLOT / 2
}

/// The timeline of a script's run as a standalone SVG document (see the module docs).
pub fn timeline_svg(script: &Script) -> String {
    let tl = timeline(script);
    let g = geometry(&tl);
    let mut o = String::new();
    let (width, height) = (g.width, g.height);
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="monospace" font-size="10">"#
    );
    let _ = writeln!(
        o,
        r#"<title>{}</title>"#,
        esc(&format!(
            "timeline of {} operations, {}",
            script.lines.len(),
            script.proto.preset_name().unwrap_or("custom protocol")
        ))
    );
    let _ = writeln!(
        o,
        r##"<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>"##
    );
    if script.is_concurrent() {
        draw_steps(&mut o, &tl, &g);
    }
    draw_lanes(&mut o, &tl, &g);
    draw_spans(&mut o, &tl, &g);
    draw_bars(&mut o, &tl, &g);
    draw_marks(&mut o, &tl, &g);
    draw_findings(&mut o, &tl, &g);
    draw_legend(&mut o, g.legend_y);
    o.push_str("</svg>\n");
    o
}

/// Scheduling steps (concurrent scripts): a grid with the thread that stepped.
pub(super) fn draw_steps(o: &mut String, tl: &Timeline, g: &Geometry) {
    let top = g.top;
    for (i, (sx0, t)) in tl.steps.iter().enumerate() {
        let gx = LEFT + sx0 * SLOT;
        let _ = writeln!(
            o,
            r##"<line x1="{gx}" y1="{}" x2="{gx}" y2="{}" stroke="#dddddd"/>"##,
            top - 10,
            g.legend_y - 6
        );
        let _ = writeln!(
            o,
            r##"<text x="{}" y="{}" fill="#888888" font-size="8">{}<title>scheduling step {} runs t{t}</title></text>"##,
            gx + 1,
            top - 12,
            t,
            i + 1
        );
    }
    let _ = writeln!(
        o,
        r##"<text x="8" y="{}" fill="#888888">thread stepping:</text>"##,
        top - 12
    );
}

/// The lanes: background, actor name, one label per lock row; and the call sites' lane.
pub(super) fn draw_lanes(o: &mut String, tl: &Timeline, g: &Geometry) {
    let width = g.width;
    for (i, name) in tl.lanes.iter().enumerate() {
        let ly = g.lane_y[i];
        let lh = OP_ROW + tl.lane_locks[i].len() * LOCK_ROW + 4;
        let fill = if i % 2 == 0 { "#f4f6fa" } else { "#fafafa" };
        let _ = writeln!(
            o,
            r##"<rect x="0" y="{ly}" width="{width}" height="{lh}" fill="{fill}"/>"##
        );
        let _ = writeln!(
            o,
            r##"<text x="6" y="{}" font-weight="bold" font-size="11">{}</text>"##,
            ly + 15,
            esc(name)
        );
        for (j, l) in tl.lane_locks[i].iter().enumerate() {
            let _ = writeln!(
                o,
                r##"<text x="{}" y="{}" text-anchor="end" fill="{}" font-size="9">{}</text>"##,
                LEFT - 6,
                ly + OP_ROW + j * LOCK_ROW + 9,
                lock_color(*l),
                esc(&l.to_string())
            );
        }
    }
    if g.has_sites {
        let sites_y = g.sites_y;
        let _ = writeln!(
            o,
            r##"<rect x="0" y="{sites_y}" width="{width}" height="{OP_ROW}" fill="#f7f3ea"/>"##
        );
        let _ = writeln!(
            o,
            r##"<text x="6" y="{}" font-weight="bold" font-size="11">call sites</text>"##,
            sites_y + 15
        );
    }
}

/// Operations: a band from start to result, the result after it.
pub(super) fn draw_spans(o: &mut String, tl: &Timeline, g: &Geometry) {
    for s in &tl.spans {
        let ly = g.lane_y[s.lane];
        let x0 = LEFT + s.x0 * SLOT;
        let x1 = LEFT + s.x1.unwrap_or(tl.x) * SLOT + SLOT;
        let stroke = if s.ok { "#4a6fa5" } else { "#c62828" };
        let _ = writeln!(
            o,
            r##"<rect x="{x0}" y="{}" width="{}" height="16" rx="3" fill="#dce6f5" stroke="{stroke}"><title>{}</title></rect>"##,
            ly + 3,
            x1 - x0,
            esc(&format!(
                "{} => {}",
                s.label,
                s.result.as_deref().unwrap_or("never finished")
            ))
        );
        let _ = writeln!(
            o,
            r##"<text x="{}" y="{}" font-size="10">{}</text>"##,
            x0 + 3,
            ly + 15,
            esc(&s.label)
        );
        let (txt, color) = match &s.result {
            Some(r) => (r.clone(), if s.ok { "#2e7d32" } else { "#c62828" }),
            None => ("(never finished)".to_string(), "#c62828"),
        };
        let _ = writeln!(
            o,
            r##"<text x="{}" y="{}" font-weight="bold" fill="{color}" font-size="10">{}</text>"##,
            x1 + 3,
            ly + 15,
            esc(&txt)
        );
    }
}

/// Locks held: one bar per hold, dashed when never released.
pub(super) fn draw_bars(o: &mut String, tl: &Timeline, g: &Geometry) {
    for b in &tl.bars {
        let ly = g.lane_y[b.lane];
        let row = tl.lane_locks[b.lane]
            .iter()
            .position(|l| *l == b.lock)
            .unwrap();
        let x0 = sx(b.x0);
        let x1 = sx(b.x1.unwrap_or(tl.x));
        let yb = ly + OP_ROW + row * LOCK_ROW + 1;
        let held = match b.x1 {
            Some(_) => format!("{} held", b.lock),
            None => format!("{} held, never released", b.lock),
        };
        let _ = writeln!(
            o,
            r##"<rect x="{x0}" y="{yb}" width="{}" height="9" fill="{}" fill-opacity="0.75"{}><title>{}</title></rect>"##,
            (x1 - x0).max(2),
            lock_color(b.lock),
            if b.x1.is_none() {
                r##" stroke="#000000" stroke-dasharray="3,2""##
            } else {
                ""
            },
            esc(&held)
        );
    }
}

/// Marks; errno labels of neighbouring marks alternate between two heights.
pub(super) fn draw_marks(o: &mut String, tl: &Timeline, g: &Geometry) {
    let mut last_errno: BTreeMap<usize, (usize, usize)> = BTreeMap::new();
    for (lane, slot, m) in &tl.marks {
        let cx = sx(*slot);
        let cy = if *lane == SITES_LANE {
            g.sites_y + 12
        } else {
            g.lane_y[*lane] + 11
        };
        match m {
            Mark::Callback(t) => {
                let _ = writeln!(
                    o,
                    r##"<polygon points="{},{} {},{} {},{} {},{}" fill="#7b1fa2"><title>{}</title></polygon>"##,
                    cx,
                    cy - 7,
                    cx + 6,
                    cy,
                    cx,
                    cy + 7,
                    cx - 6,
                    cy,
                    esc(&format!("owner callback: {t}"))
                );
            }
            Mark::Errno(t, short) => {
                let level = match last_errno.get(lane) {
                    Some(&(s, lv)) if slot - s < 4 => 1 - lv,
                    _ => 0,
                };
                last_errno.insert(*lane, (*slot, level));
                let _ = writeln!(
                    o,
                    r##"<g><title>{}</title><polygon points="{},{} {},{} {},{}" fill="#c62828"/><text x="{}" y="{}" fill="#c62828" font-size="8">{}</text></g>"##,
                    esc(t),
                    cx - 4,
                    cy - 9,
                    cx + 4,
                    cy - 9,
                    cx,
                    cy - 3,
                    cx - 4,
                    cy - 11 - level * 9,
                    esc(short)
                );
            }
            Mark::Fault(t) => {
                let _ = writeln!(
                    o,
                    r##"<g stroke="#ef6c00" stroke-width="2"><title>{}</title><line x1="{}" y1="{}" x2="{}" y2="{}"/><line x1="{}" y1="{}" x2="{}" y2="{}"/></g>"##,
                    esc(t),
                    cx - 5,
                    cy - 5,
                    cx + 5,
                    cy + 5,
                    cx - 5,
                    cy + 5,
                    cx + 5,
                    cy - 5
                );
            }
            Mark::Warn(t) => {
                let _ = writeln!(
                    o,
                    r##"<polygon points="{},{} {},{} {},{}" fill="#fbc02d" stroke="#8d6e00"><title>{}</title></polygon>"##,
                    cx,
                    cy - 7,
                    cx + 6,
                    cy + 5,
                    cx - 6,
                    cy + 5,
                    esc(t)
                );
            }
            Mark::Site(t) => {
                let _ = writeln!(
                    o,
                    r##"<g><title>{}</title><circle cx="{cx}" cy="{cy}" r="4" fill="#795548"/><text x="{}" y="{}" font-size="8" fill="#5d4037">{}</text></g>"##,
                    esc(&format!("call site of {t}")),
                    cx + 5,
                    cy + 3,
                    esc(t)
                );
            }
        }
    }
}

/// Findings: a dashed red line where each appeared, its label stacked at the top.
pub(super) fn draw_findings(o: &mut String, tl: &Timeline, g: &Geometry) {
    for (i, (slot, text)) in tl.findings.iter().enumerate() {
        let fx = LEFT + slot * SLOT + SLOT / 2;
        let _ = writeln!(
            o,
            r##"<line x1="{fx}" y1="{}" x2="{fx}" y2="{}" stroke="#d50000" stroke-width="2" stroke-dasharray="5,3"><title>{}</title></line>"##,
            g.top - 4,
            g.legend_y - 6,
            esc(text)
        );
        let label = text.split(':').next().unwrap_or(text);
        let _ = writeln!(
            o,
            r##"<text x="{}" y="{}" fill="#d50000" font-weight="bold" font-size="10">{}<title>{}</title></text>"##,
            fx + 3,
            12 + g.stack[i] * 12,
            esc(label),
            esc(text)
        );
    }
}

/// The legend, at height `ly`.
pub(super) fn draw_legend(o: &mut String, ly: usize) {
    let _ = writeln!(
        o,
        r##"<g font-size="9"><rect x="6" y="{}" width="18" height="9" fill="#dce6f5" stroke="#4a6fa5"/><text x="28" y="{}">operation (start to result)</text><rect x="190" y="{}" width="18" height="9" fill="#1f77b4" fill-opacity="0.75"/><text x="212" y="{}">lock held (one row per lock)</text><polygon points="376,{} 382,{} 376,{} 370,{}" fill="#7b1fa2"/><text x="388" y="{}">owner callback</text><polygon points="480,{} 488,{} 484,{}" fill="#c62828"/><text x="492" y="{}">errno returned</text><text x="580" y="{}" fill="#ef6c00" font-weight="bold">x</text><text x="590" y="{}">fault / trylock taken</text><line x1="712" y1="{}" x2="712" y2="{}" stroke="#d50000" stroke-width="2" stroke-dasharray="5,3"/><text x="718" y="{}">finding</text></g>"##,
        ly + 2,
        ly + 10,
        ly + 2,
        ly + 10,
        ly,
        ly + 6,
        ly + 12,
        ly + 6,
        ly + 10,
        ly + 2,
        ly + 2,
        ly + 8,
        ly + 10,
        ly + 10,
        ly + 10,
        ly - 2,
        ly + 12,
        ly + 10
    );
}
