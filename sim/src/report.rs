//! The findings report (`ftsim report`): runs the seeded sweep, the exhaustive search at a small
//! bound and replays the committed proptest reproducers, then writes one self-contained HTML page
//! (no JavaScript, no external resources) and the same as Markdown: the protocol × property
//! matrix and, for every finding, the shortest reproducer with a timeline picture of its run.
//!
//! # Sources
//!
//! - **sim**: `ftsim run` over `--seeds` (default 0..2000) with shrinking; a cell counts the seeds
//!   that violate the property.
//! - **exhaustive**: `ftsim explore` in sequential mode (`--depth`, default 3, on `--functions`
//!   functions and `--tracers` tracers, with single injected faults unless `--no-faults`) and in
//!   interleaving mode (`--interleave-depth`
//!   operations on one function, default 3; 0 skips it); a cell gives the length of the shortest
//!   counterexample (operations; scheduling steps for interleavings).
//! - **proptest**: every `corpus/reproducers/*.txt` (or `--reproducers DIR`) is replayed with
//!   [`Script::replay`] (the core's checks and the oracle, [`ftsim_core::oracle::Model`]), and
//!   counts for the properties on its `expect` line that it reproduces.
//!
//! # The timeline picture
//!
//! One lane per actor (per owner for sequential reproducers, per thread and owner for concurrent
//! ones), time running to the right one slot per event of [`Script::replay_traced`]: the
//! operation as a band from its start to its result (errno in red), each lock held as a bar from
//! its `Acquire` to its `Release` (a bar still open at the end was never released), owner
//! callbacks as diamonds, errnos returned inside the kernel as red ticks, injected faults and
//! failed trylocks as orange crosses, rewritten call sites in a lane of their own, and every
//! finding as a red line where it appeared. Hovering shows details (`<title>`; no script).

use crate::cli::{self, UsageError, EXIT_CLEAN, EXIT_FOUND, EXIT_INTERNAL};
use crate::explore;
use crate::sim::EVENTS_DEFAULT;
use crate::sweep::{self, SeedSet, Target};
use ftsim_core::errno::fmt_result;
use ftsim_core::ids::OpsLayout;
use ftsim_core::locks::{Lock, LockClass};
use ftsim_core::machine::EventKind;
use ftsim_core::op::{Op, OpKind};
use ftsim_core::property::{Property, Violation};
use ftsim_core::script::Script;
use ftsim_core::Kernel;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Default seeds of the report's sweep (the full `ftsim run` default is larger).
pub const REPORT_SEEDS: u64 = 2_000;

/// `ftsim report` arguments.
#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// Output directory (written: index.html, report.md, svg/*.svg, repro/*.txt).
    #[arg(
        short = 'o',
        long = "out",
        value_name = "DIR",
        default_value = "report"
    )]
    pub out: PathBuf,
    /// A preset name or a protocol file (default: every preset).
    #[arg(long = "protocol", value_name = "NAME|FILE")]
    pub protocols: Vec<String>,
    /// Override a switch (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Seeds of the sweep: A..B, A..=B or one seed (default 0..2000).
    #[arg(long)]
    pub seeds: Option<String>,
    /// Simulated events per seed.
    #[arg(long, default_value_t = EVENTS_DEFAULT)]
    pub events: u64,
    /// Worker threads for the sweep and the exhaustive search.
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Depth of the sequential exhaustive search.
    #[arg(long, default_value_t = 3)]
    pub depth: u32,
    /// Functions of the sequential exhaustive search.
    #[arg(long, default_value_t = 2)]
    pub functions: u16,
    /// Tracers of the sequential exhaustive search.
    #[arg(long, default_value_t = 1)]
    pub tracers: u8,
    /// Operations of the interleaving search (one function, no tracer); 0 skips it.
    #[arg(long, default_value_t = 3)]
    pub interleave_depth: u32,
    /// Sequential exhaustive search without injected faults (by default every operation is
    /// also run with each single failing allocation, image build or trylock).
    #[arg(long)]
    pub no_faults: bool,
    /// Directory of committed proptest reproducers.
    #[arg(long, value_name = "DIR", default_value = "corpus/reproducers")]
    pub reproducers: PathBuf,
}

/// Where a finding comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    Exhaustive,
    Interleaving,
    Proptest,
    Sim,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Exhaustive => "exhaustive",
            Source::Interleaving => "exhaustive, interleaved",
            Source::Proptest => "proptest",
            Source::Sim => "sim",
        }
    }
}

/// One reproducer of a (protocol, property) cell.
#[derive(Clone, Debug)]
pub struct Evidence {
    pub source: Source,
    pub script: Script,
    /// What was violated, as the source reported it.
    pub detail: String,
    /// Where it comes from: seeds, depth, file.
    pub note: String,
    /// Replaying `script` shows the property.
    pub reproduces: bool,
}

/// A (protocol, property) cell of the matrix.
#[derive(Clone, Debug, Default)]
pub struct CellReport {
    /// Seeds of the sweep that violate it.
    pub sim_seeds: Option<u64>,
    /// Shortest sequential counterexample, in operations.
    pub exhaustive: Option<usize>,
    /// Shortest interleaved counterexample, in scheduling steps.
    pub interleaving: Option<usize>,
    /// A committed proptest reproducer shows it.
    pub proptest: bool,
    pub evidence: Vec<Evidence>,
}

impl CellReport {
    pub fn found(&self) -> bool {
        !self.evidence.is_empty()
    }

    /// The shortest reproducer: fewest operations, then fewest scheduling steps, then by source.
    pub fn shortest(&self) -> Option<&Evidence> {
        self.evidence
            .iter()
            .filter(|e| e.reproduces)
            .min_by_key(|e| {
                (
                    e.script.lines.len(),
                    e.script.schedule.as_ref().map_or(0, |s| s.len()),
                    e.source,
                )
            })
    }
}

/// A replayed proptest reproducer.
#[derive(Clone, Debug)]
pub struct ReproducerFile {
    pub path: PathBuf,
    pub protocol: String,
    /// Its `expect` properties, each with whether the replay shows it.
    pub expect: Vec<(Property, bool)>,
    /// The comment lines at its top (where it was found).
    pub provenance: Vec<String>,
}

/// Everything the report shows.
#[derive(Clone, Debug)]
pub struct Report {
    pub targets: Vec<Target>,
    pub cells: BTreeMap<(usize, Property), CellReport>,
    pub sweep: Option<(SeedSet, sweep::Outcome)>,
    /// Per target: the sequential and the interleaving explorations (statistics, findings).
    pub explored: Vec<(Explored, Option<Explored>)>,
    pub explore_world: String,
    pub depth: u32,
    pub faults: bool,
    pub interleave_depth: u32,
    pub reproducers: Vec<ReproducerFile>,
    pub reproducers_dir: PathBuf,
}

/// The figures of one exploration.
#[derive(Clone, Debug)]
pub struct Explored {
    pub stats: explore::Stats,
    pub findings: usize,
}

/// What `build` runs.
#[derive(Clone, Debug)]
pub struct Config {
    pub targets: Vec<Target>,
    /// `None` skips the sweep.
    pub seeds: Option<SeedSet>,
    pub events: u64,
    pub jobs: usize,
    pub depth: u32,
    pub functions: u16,
    pub tracers: u8,
    pub interleave_depth: u32,
    /// Single injected faults in the sequential exhaustive search.
    pub faults: bool,
    pub reproducers: PathBuf,
}

/// Every finding of a replay: the core's checks, and for sequential scripts (and concurrent
/// ones until two operations overlap) the oracle's verdicts, as [`Script::replay`] gives them
/// (and `tests/tests/reproducers.rs` judges the committed reproducers).
pub fn replay_with_oracle(script: &Script) -> Vec<Violation> {
    script.replay().findings
}

fn read_reproducers(dir: &Path) -> Vec<(PathBuf, String, Script)> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(d) => d
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "txt"))
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
        .into_iter()
        .filter_map(|p| {
            let text = std::fs::read_to_string(&p).ok()?;
            let s = Script::parse(&text).ok()?;
            Some((p, text, s))
        })
        .collect()
}

/// Runs every source and collects the cells.
pub fn build(cfg: &Config) -> Report {
    let mut cells: BTreeMap<(usize, Property), CellReport> = BTreeMap::new();
    // 1. The sweep.
    let sweep = cfg.seeds.map(|seeds| {
        let sc = sweep::Config {
            targets: cfg.targets.clone(),
            seeds,
            events: cfg.events,
            jobs: cfg.jobs,
            stop_on_first: false,
            self_check: false,
            shrink: true,
        };
        let out = sweep::sweep(&sc, &|_, _| {});
        for c in &out.cells {
            let script = c
                .reproducer
                .clone()
                .unwrap_or_else(|| c.found.script.clone());
            let reproduces = script.replay().has(c.property);
            let cell = cells.entry((c.target, c.property)).or_default();
            cell.sim_seeds = Some(c.seeds);
            cell.evidence.push(Evidence {
                source: Source::Sim,
                script,
                detail: c.found.violation.to_string(),
                note: format!(
                    "{} of {} seeds; {}",
                    c.seeds,
                    seeds.len(),
                    sweep::replay_command(&cfg.targets[c.target], c.seed, cfg.events)
                ),
                reproduces,
            });
        }
        (seeds, out)
    });
    // 2. The exhaustive searches.
    let world = explore::world(cfg.functions, cfg.tracers, 0)
        .expect("[report internal bug] the explore world was validated by the caller");
    let mut explored = Vec::new();
    for (ti, t) in cfg.targets.iter().enumerate() {
        let mut ec = explore::Config::new(t.clone(), world.clone(), cfg.depth);
        ec.threads = cfg.jobs;
        ec.faults = cfg.faults;
        let out = explore::explore(&ec);
        add_explore(&mut cells, ti, &out, Source::Exhaustive, cfg.depth);
        let seq = Explored {
            stats: out.stats.clone(),
            findings: out.findings.len(),
        };
        let inter = (cfg.interleave_depth > 0).then(|| {
            let w1 = explore::world(1, 0, 0).unwrap();
            let mut ic = explore::Config::new(t.clone(), w1, cfg.interleave_depth);
            ic.threads = cfg.jobs;
            ic.interleave = true;
            let out = explore::explore(&ic);
            add_explore(
                &mut cells,
                ti,
                &out,
                Source::Interleaving,
                cfg.interleave_depth,
            );
            Explored {
                stats: out.stats.clone(),
                findings: out.findings.len(),
            }
        });
        explored.push((seq, inter));
    }
    // 3. The committed proptest reproducers.
    let mut reproducers = Vec::new();
    for (path, text, script) in read_reproducers(&cfg.reproducers) {
        let found = replay_with_oracle(&script);
        let provenance: Vec<String> = text
            .lines()
            .take_while(|l| l.starts_with('#'))
            .filter(|l| !l.starts_with("# ftsim reproducer"))
            .map(|l| l.trim_start_matches('#').trim().to_string())
            .collect();
        let target = cfg.targets.iter().position(|t| t.proto == script.proto);
        let mut expect = Vec::new();
        for p in &script.expect {
            let v = found.iter().find(|v| v.property == *p);
            expect.push((*p, v.is_some()));
            if let (Some(ti), Some(v)) = (target, v) {
                let cell = cells.entry((ti, *p)).or_default();
                cell.proptest = true;
                cell.evidence.push(Evidence {
                    source: Source::Proptest,
                    script: script.clone(),
                    detail: v.to_string(),
                    note: format!("{} ({})", path.display(), provenance.join(" ")),
                    reproduces: true,
                });
            }
        }
        let protocol = match script.proto.preset_name() {
            Some(n) => n.to_string(),
            None => script.proto.describe(),
        };
        reproducers.push(ReproducerFile {
            path,
            protocol,
            expect,
            provenance,
        });
    }
    Report {
        targets: cfg.targets.clone(),
        cells,
        sweep,
        explored,
        explore_world: world.to_string(),
        depth: cfg.depth,
        faults: cfg.faults,
        interleave_depth: cfg.interleave_depth,
        reproducers,
        reproducers_dir: cfg.reproducers.clone(),
    }
}

fn add_explore(
    cells: &mut BTreeMap<(usize, Property), CellReport>,
    ti: usize,
    out: &explore::Outcome,
    source: Source,
    bound: u32,
) {
    for f in &out.findings {
        let cell = cells.entry((ti, f.property)).or_default();
        let unit = match source {
            Source::Interleaving => {
                cell.interleaving = Some(f.depth);
                "scheduling steps"
            }
            _ => {
                cell.exhaustive = Some(f.depth);
                "operations"
            }
        };
        cell.evidence.push(Evidence {
            source,
            script: f.script.clone(),
            detail: f.violation.to_string(),
            note: format!(
                "shortest within {bound} operations: {} {unit}; {} violating states of {} ({} transitions)",
                f.depth, f.states, out.stats.distinct, f.transitions
            ),
            reproduces: f.reproduces,
        });
    }
}

// ------------------------------------------------------------------------------------------
// The timeline picture
// ------------------------------------------------------------------------------------------

/// Escapes text for XML (and HTML).
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

fn actor(op: &Op) -> String {
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

fn lock_color(l: Lock) -> &'static str {
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

enum Mark {
    Callback(String),
    Errno(String, String),
    Fault(String),
    Warn(String),
    Site(String),
}

struct Span {
    lane: usize,
    x0: usize,
    x1: Option<usize>,
    label: String,
    result: Option<String>,
    ok: bool,
}

struct Bar {
    lane: usize,
    lock: Lock,
    x0: usize,
    x1: Option<usize>,
}

const LEFT: usize = 190;
const SLOT: usize = 14;
/// Room above the lanes: finding labels (stacked when several appear at once) and step numbers.
const TOP_MIN: usize = 54;
const OP_ROW: usize = 24;
const LOCK_ROW: usize = 13;
const LANE_GAP: usize = 8;

/// The timeline of a script's run as a standalone SVG document (see the module docs).
pub fn timeline_svg(script: &Script) -> String {
    let r = script.replay_traced();
    let layout: OpsLayout = Kernel::new(&script.world, script.proto).info.layout;
    let concurrent = script.is_concurrent();
    let mut lanes: Vec<String> = Vec::new();
    let mut lane_locks: Vec<Vec<Lock>> = Vec::new();
    let mut cur: BTreeMap<u8, usize> = BTreeMap::new();
    let mut spans: Vec<Span> = Vec::new();
    let mut open_span: BTreeMap<u8, usize> = BTreeMap::new();
    let mut bars: Vec<Bar> = Vec::new();
    let mut open_bar: BTreeMap<Lock, usize> = BTreeMap::new();
    let mut marks: Vec<(usize, usize, Mark)> = Vec::new();
    let mut findings: Vec<(usize, String)> = Vec::new();
    let mut steps: Vec<(usize, u8)> = Vec::new();
    let mut entered: BTreeMap<u8, Vec<&'static str>> = BTreeMap::new();
    let mut x = 0usize;
    let sites_lane = usize::MAX;
    let lane_of =
        |lanes: &mut Vec<String>, lane_locks: &mut Vec<Vec<Lock>>, name: String| match lanes
            .iter()
            .position(|l| *l == name)
        {
            Some(i) => i,
            None => {
                lanes.push(name);
                lane_locks.push(Vec::new());
                lanes.len() - 1
            }
        };
    for step in &r.timeline {
        let t = step.tid;
        steps.push((x, t));
        for e in &step.events {
            match e {
                EventKind::Start(op) => {
                    let name = if concurrent {
                        format!("t{t} · {}", actor(op))
                    } else {
                        actor(op)
                    };
                    let lane = lane_of(&mut lanes, &mut lane_locks, name);
                    cur.insert(t, lane);
                    open_span.insert(t, spans.len());
                    spans.push(Span {
                        lane,
                        x0: x,
                        x1: None,
                        label: op.to_string(),
                        result: None,
                        ok: true,
                    });
                    x += 1;
                }
                EventKind::Finish(res) => {
                    if let Some(i) = open_span.remove(&t) {
                        spans[i].x1 = Some(x);
                        spans[i].result = Some(fmt_result(*res));
                        spans[i].ok = res.is_ok();
                    }
                    // Room for the result label.
                    x += 3;
                }
                EventKind::Enter(name) => entered.entry(t).or_default().push(name),
                EventKind::Leave(name, ret) => {
                    entered.entry(t).or_default().pop();
                    if let Err(e) = ret {
                        if let Some(&lane) = cur.get(&t) {
                            marks.push((
                                lane,
                                x,
                                Mark::Errno(format!("{name}() returns -{e}"), format!("-{e}")),
                            ));
                            x += 1;
                        }
                    }
                }
                EventKind::Acquire(l) => {
                    if let Some(&lane) = cur.get(&t) {
                        if !lane_locks[lane].contains(l) {
                            lane_locks[lane].push(*l);
                        }
                        open_bar.insert(*l, bars.len());
                        bars.push(Bar {
                            lane,
                            lock: *l,
                            x0: x,
                            x1: None,
                        });
                        x += 1;
                    }
                }
                EventKind::Release(l) => {
                    if let Some(i) = open_bar.remove(l) {
                        bars[i].x1 = Some(x);
                        x += 1;
                    }
                }
                EventKind::TryFailed(l) => {
                    if let Some(&lane) = cur.get(&t) {
                        marks.push((lane, x, Mark::Fault(format!("trylock {l}: taken"))));
                        x += 1;
                    }
                }
                EventKind::AllocFailed(s) => {
                    if let Some(&lane) = cur.get(&t) {
                        marks.push((
                            lane,
                            x,
                            Mark::Fault(format!("allocation {} fails", s.name())),
                        ));
                        x += 1;
                    }
                }
                EventKind::BuildFailed(f) => {
                    if let Some(&lane) = cur.get(&t) {
                        marks.push((lane, x, Mark::Fault(format!("image build of {f} fails"))));
                        x += 1;
                    }
                }
                EventKind::Callback(ops, cmd) => {
                    if let Some(&lane) = cur.get(&t) {
                        let inside = entered
                            .get(&t)
                            .and_then(|v| v.last())
                            .map_or(String::new(), |n| format!(" (from {n})"));
                        marks.push((
                            lane,
                            x,
                            Mark::Callback(format!("{} <- {cmd}{inside}", layout.owner(*ops))),
                        ));
                        x += 1;
                    }
                }
                EventKind::Site(f, site) => {
                    let s = match site {
                        ftsim_core::kernel::CallSite::Nop => "nop".to_string(),
                        ftsim_core::kernel::CallSite::Caller => "ftrace_caller".to_string(),
                        ftsim_core::kernel::CallSite::Direct(a) => format!("direct {a}"),
                    };
                    marks.push((sites_lane, x, Mark::Site(format!("{f}: {s}"))));
                    x += 1;
                }
                EventKind::Warn(w) => {
                    if let Some(&lane) = cur.get(&t) {
                        marks.push((lane, x, Mark::Warn(format!("WARN: {w}"))));
                        x += 1;
                    }
                }
            }
        }
        for v in &step.findings {
            findings.push((x, v.to_string()));
        }
        if !step.findings.is_empty() {
            x += 1;
        }
    }
    let has_sites = marks.iter().any(|m| m.0 == sites_lane);
    // Findings at the same slot stack their labels.
    let mut stack: Vec<usize> = Vec::new();
    for (i, (slot, _)) in findings.iter().enumerate() {
        let n = findings[..i].iter().filter(|(s, _)| s == slot).count();
        stack.push(n);
    }
    let top = TOP_MIN + stack.iter().max().map_or(0, |m| m * 12);
    // Lane geometry.
    let mut lane_y = Vec::new();
    let mut y = top;
    for locks in &lane_locks {
        lane_y.push(y);
        y += OP_ROW + locks.len() * LOCK_ROW + LANE_GAP + 4;
    }
    let sites_y = y;
    if has_sites {
        y += OP_ROW + LANE_GAP;
    }
    let legend_y = y + 6;
    let height = legend_y + 40;
    let width = (LEFT + (x + 1) * SLOT + 140).max(800);
    let sx = |slot: usize| LEFT + slot * SLOT + SLOT / 2;
    let mut o = String::new();
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
    // Scheduling steps (concurrent scripts): a grid with the thread that stepped.
    if concurrent {
        for (i, (sx0, t)) in steps.iter().enumerate() {
            let gx = LEFT + sx0 * SLOT;
            let _ = writeln!(
                o,
                r##"<line x1="{gx}" y1="{}" x2="{gx}" y2="{}" stroke="#dddddd"/>"##,
                top - 10,
                legend_y - 6
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
    // Lanes.
    for (i, name) in lanes.iter().enumerate() {
        let ly = lane_y[i];
        let lh = OP_ROW + lane_locks[i].len() * LOCK_ROW + 4;
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
        for (j, l) in lane_locks[i].iter().enumerate() {
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
    if has_sites {
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
    // Operations.
    for s in &spans {
        let ly = lane_y[s.lane];
        let x0 = LEFT + s.x0 * SLOT;
        let x1 = LEFT + s.x1.unwrap_or(x) * SLOT + SLOT;
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
    // Locks held.
    for b in &bars {
        let ly = lane_y[b.lane];
        let row = lane_locks[b.lane]
            .iter()
            .position(|l| *l == b.lock)
            .unwrap();
        let x0 = sx(b.x0);
        let x1 = sx(b.x1.unwrap_or(x));
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
    // Marks; errno labels of neighbouring marks alternate between two heights.
    let mut last_errno: BTreeMap<usize, (usize, usize)> = BTreeMap::new();
    for (lane, slot, m) in &marks {
        let cx = sx(*slot);
        let cy = if *lane == sites_lane {
            sites_y + 12
        } else {
            lane_y[*lane] + 11
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
    // Findings.
    for (i, (slot, text)) in findings.iter().enumerate() {
        let fx = LEFT + slot * SLOT + SLOT / 2;
        let _ = writeln!(
            o,
            r##"<line x1="{fx}" y1="{}" x2="{fx}" y2="{}" stroke="#d50000" stroke-width="2" stroke-dasharray="5,3"><title>{}</title></line>"##,
            top - 4,
            legend_y - 6,
            esc(text)
        );
        let label = text.split(':').next().unwrap_or(text);
        let _ = writeln!(
            o,
            r##"<text x="{}" y="{}" fill="#d50000" font-weight="bold" font-size="10">{}<title>{}</title></text>"##,
            fx + 3,
            12 + stack[i] * 12,
            esc(label),
            esc(text)
        );
    }
    // Legend.
    let ly = legend_y;
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
    o.push_str("</svg>\n");
    o
}

// ------------------------------------------------------------------------------------------
// HTML and Markdown
// ------------------------------------------------------------------------------------------

/// The file-name stem of a cell: `<protocol>--<property>`.
pub fn stem(target: &Target, p: Property) -> String {
    format!(
        "{}--{}",
        target
            .name
            .replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_"),
        p.id()
    )
}

fn cell_text(c: &CellReport) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(n) = c.sim_seeds {
        v.push(format!("sim {n}"));
    }
    if let Some(d) = c.exhaustive {
        v.push(format!("exh {d} op{}", if d == 1 { "" } else { "s" }));
    }
    if let Some(d) = c.interleaving {
        v.push(format!("exh∥ {d} steps"));
    }
    if c.proptest {
        v.push("proptest".into());
    }
    v
}

fn ops_text(n: usize) -> String {
    format!("{n} operation{}", if n == 1 { "" } else { "s" })
}

fn body_text(s: &Script) -> String {
    let mut t = String::new();
    for l in s.to_string().lines() {
        if l.starts_with("# ftsim reproducer") {
            continue;
        }
        t.push_str(l);
        t.push('\n');
    }
    t
}

const CSS: &str = r#"
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px; color: #222; max-width: 1500px; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #ddd; } h3 { font-size: 15px; margin-top: 26px; }
table.matrix { border-collapse: collapse; font-size: 12px; }
table.matrix th, table.matrix td { border: 1px solid #ccc; padding: 3px 6px; text-align: center; vertical-align: middle; }
table.matrix th.prop { text-align: left; white-space: nowrap; }
td.none { color: #aaa; background: #f3faf3; }
td.behaviour, td.state, td.locking { background: #fde0dc; }
td.tolerated { background: #fff4cc; }
td a { color: #222; text-decoration: none; display: block; }
td span { display: block; white-space: nowrap; }
pre { background: #f6f8fa; padding: 8px 10px; border: 1px solid #e1e4e8; font-size: 12px; overflow-x: auto; }
div.timeline { overflow-x: auto; border: 1px solid #e1e4e8; margin: 6px 0 12px 0; }
p.note, li { font-size: 13px; }
.small { font-size: 12px; color: #555; }
.bad { color: #c62828; font-weight: bold; }
"#;

/// The HTML page: XHTML-compatible markup, so it also parses as XML.
pub fn html(r: &Report, svgs: &BTreeMap<(usize, Property), String>) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "<!DOCTYPE html>");
    let _ = writeln!(
        o,
        r#"<html xmlns="http://www.w3.org/1999/xhtml" lang="en">"#
    );
    let _ = writeln!(
        o,
        "<head><meta charset=\"utf-8\"/><title>ftsim findings</title><style>{CSS}</style></head>"
    );
    let _ = writeln!(o, "<body>");
    let _ = writeln!(o, "<h1>ftsim findings: livepatch (IPMODIFY) and BPF trampolines (DIRECT) sharing a function</h1>");
    let _ = writeln!(
        o,
        "<p class=\"note\">Every protocol version as the kernel code behaves, flaws included; findings in flawed versions are expected. Sources: <b>sim</b> the seeded sweep (seeds that violate the property), <b>exh</b> the exhaustive search (length of the shortest counterexample), <b>exh∥</b> the exhaustive search over interleavings of two operations (scheduling steps), <b>proptest</b> a committed reproducer found against the oracle. Click a cell for its reproducer and timeline.</p>"
    );
    let _ = writeln!(o, "<ul>");
    for line in sources_text(r) {
        let _ = writeln!(o, "<li class=\"small\">{}</li>", esc(&line));
    }
    let _ = writeln!(o, "</ul>");
    let _ = writeln!(
        o,
        "<details><summary class=\"small\">exhaustive search figures</summary><table class=\"matrix\"><tr>"
    );
    for h in EXPLORE_HEAD {
        let _ = write!(o, "<th>{h}</th>");
    }
    let _ = writeln!(o, "</tr>");
    for row in explore_rows(r) {
        let cells: String = row.iter().map(|c| format!("<td>{}</td>", esc(c))).collect();
        let _ = writeln!(o, "<tr>{cells}</tr>");
    }
    let _ = writeln!(o, "</table></details>");
    // The matrix.
    let _ = writeln!(o, "<h2>Protocol × property</h2>");
    let _ = writeln!(o, "<table class=\"matrix\"><tr><th>property</th>");
    for t in &r.targets {
        let _ = write!(o, "<th>{}</th>", esc(&t.name));
    }
    let _ = writeln!(o, "</tr>");
    for p in Property::ALL {
        let _ = write!(
            o,
            "<tr><th class=\"prop\">{} <span class=\"small\">{}</span></th>",
            p.id(),
            p.class()
        );
        for ti in 0..r.targets.len() {
            match r.cells.get(&(ti, p)).filter(|c| c.found()) {
                Some(c) => {
                    let spans: String = cell_text(c)
                        .iter()
                        .map(|s| format!("<span>{}</span>", esc(s)))
                        .collect();
                    let _ = write!(
                        o,
                        "<td class=\"{}\"><a href=\"#{}\">{spans}</a></td>",
                        p.class(),
                        stem(&r.targets[ti], p)
                    );
                }
                None => {
                    let _ = write!(o, "<td class=\"none\">·</td>");
                }
            }
        }
        let _ = writeln!(o, "</tr>");
    }
    let _ = writeln!(o, "</table>");
    // The findings.
    let _ = writeln!(o, "<h2>Findings</h2>");
    for ((ti, p), c) in &r.cells {
        let t = &r.targets[*ti];
        let Some(best) = c.shortest() else {
            let _ = writeln!(
                o,
                "<h3 id=\"{}\">{} / {}</h3><p class=\"note bad\">No reproducer of this finding replays (see below).</p>",
                stem(t, *p),
                esc(&t.name),
                p.id()
            );
            continue;
        };
        let _ = writeln!(
            o,
            "<h3 id=\"{}\">{} / {} <span class=\"small\">({})</span></h3>",
            stem(t, *p),
            esc(&t.name),
            p.id(),
            p.class()
        );
        let _ = writeln!(o, "<p class=\"note\">{}</p>", esc(&best.detail));
        let _ = writeln!(
            o,
            "<p class=\"small\">Shortest reproducer: {} from <b>{}</b> ({}). Replay: <code>ftsim replay repro/{}.txt</code></p>",
            ops_text(best.script.lines.len()),
            best.source.name(),
            esc(&best.note),
            esc(&stem(t, *p))
        );
        let _ = writeln!(o, "<pre>{}</pre>", esc(&body_text(&best.script)));
        if let Some(svg) = svgs.get(&(*ti, *p)) {
            let _ = writeln!(o, "<div class=\"timeline\">{svg}</div>");
        }
        let others: Vec<&Evidence> = c
            .evidence
            .iter()
            .filter(|e| !std::ptr::eq(*e, best))
            .collect();
        if !others.is_empty() {
            let _ = writeln!(
                o,
                "<details><summary class=\"small\">{} other reproducer(s)</summary>",
                others.len()
            );
            for e in others {
                let _ = writeln!(
                    o,
                    "<p class=\"small\"><b>{}</b>: {}{}</p><pre>{}</pre>",
                    e.source.name(),
                    esc(&e.note),
                    if e.reproduces {
                        ""
                    } else {
                        " <span class=\"bad\">(does not replay)</span>"
                    },
                    esc(&body_text(&e.script))
                );
            }
            let _ = writeln!(o, "</details>");
        }
    }
    // Consistency.
    let bad = not_replaying(r);
    if !bad.is_empty() {
        let _ = writeln!(o, "<h2>Reproducers that do not replay</h2>");
        let _ = writeln!(
            o,
            "<p class=\"note bad\">These were reported by a source but do not show their property when replayed with <code>ftsim replay</code>: an inconsistency between that source and the replay, to investigate. They are not used as shortest reproducers.</p><ul>"
        );
        for ((ti, p), e) in bad {
            let _ = writeln!(
                o,
                "<li>{} / {} from <b>{}</b>: {}</li>",
                esc(&r.targets[ti].name),
                p.id(),
                e.source.name(),
                esc(&e.note)
            );
        }
        let _ = writeln!(o, "</ul>");
    }
    // The reproducers.
    let _ = writeln!(o, "<h2>Committed proptest reproducers</h2>");
    if r.reproducers.is_empty() {
        let _ = writeln!(
            o,
            "<p class=\"note\">None found in {}.</p>",
            esc(&r.reproducers_dir.display().to_string())
        );
    } else {
        let _ = writeln!(o, "<ul>");
        for f in &r.reproducers {
            let exp: Vec<String> = f
                .expect
                .iter()
                .map(|(p, ok)| {
                    if *ok {
                        format!("{p}: reproduced")
                    } else {
                        format!("{p}: NOT reproduced")
                    }
                })
                .collect();
            let _ = writeln!(
                o,
                "<li><code>{}</code> ({}): {}<br/><span class=\"small\">{}</span></li>",
                esc(&f.path.display().to_string()),
                esc(&f.protocol),
                esc(&exp.join(", ")),
                esc(&f.provenance.join(" "))
            );
        }
        let _ = writeln!(o, "</ul>");
    }
    let _ = writeln!(o, "</body></html>");
    o
}

fn sources_text(r: &Report) -> Vec<String> {
    let mut v = Vec::new();
    match &r.sweep {
        Some((seeds, out)) => v.push(format!(
            "sim: seeds {seeds} per protocol, {} runs, {} events, {:.1}s",
            out.runs,
            out.events,
            out.elapsed.as_secs_f64()
        )),
        None => v.push("sim: not run".into()),
    }
    v.push(format!(
        "exhaustive: sequential on {} to depth {}{}; interleavings of up to two in-flight operations on one function, {}",
        r.explore_world,
        r.depth,
        if r.faults {
            ", every operation also with each single injected fault"
        } else {
            ""
        },
        if r.interleave_depth == 0 {
            "not run".to_string()
        } else {
            format!("{} operations", r.interleave_depth)
        }
    ));
    v.push(format!(
        "proptest: {} committed reproducers in {}",
        r.reproducers.len(),
        r.reproducers_dir.display()
    ));
    v
}

/// Rows of the exploration table: protocol, mode, distinct, explored, seconds, findings.
fn explore_rows(r: &Report) -> Vec<[String; 6]> {
    let mut rows = Vec::new();
    for (t, (seq, inter)) in r.targets.iter().zip(&r.explored) {
        for (mode, e) in [("sequential", Some(seq)), ("interleaving", inter.as_ref())] {
            let Some(e) = e else { continue };
            rows.push([
                t.name.clone(),
                mode.to_string(),
                format!(
                    "{}{}",
                    e.stats.distinct,
                    if e.stats.truncated {
                        " (incomplete)"
                    } else {
                        ""
                    }
                ),
                e.stats.explored.to_string(),
                format!("{:.2}", e.stats.elapsed.as_secs_f64()),
                e.findings.to_string(),
            ]);
        }
    }
    rows
}

const EXPLORE_HEAD: [&str; 6] = [
    "protocol",
    "mode",
    "distinct states",
    "states explored",
    "seconds",
    "properties violated",
];

/// The same content as Markdown, with the timelines as image links into `svg/`.
pub fn markdown(r: &Report) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "# ftsim findings: livepatch (IPMODIFY) and BPF trampolines (DIRECT) sharing a function\n"
    );
    let _ = writeln!(o, "Every protocol version as the kernel code behaves, flaws included; findings in flawed versions are expected. Sources: **sim** the seeded sweep (seeds that violate the property), **exh** the exhaustive search (length of the shortest counterexample), **exh∥** the exhaustive search over interleavings of two operations (scheduling steps), **proptest** a committed reproducer found against the oracle.\n");
    for line in sources_text(r) {
        let _ = writeln!(o, "- {line}");
    }
    let _ = writeln!(o, "\n| {} |", EXPLORE_HEAD.join(" | "));
    let _ = writeln!(o, "|{}", "---|".repeat(EXPLORE_HEAD.len()));
    for row in explore_rows(r) {
        let _ = writeln!(o, "| {} |", row.join(" | "));
    }
    let _ = writeln!(o, "\n## Protocol × property\n");
    let _ = write!(o, "| property |");
    for t in &r.targets {
        let _ = write!(o, " {} |", t.name);
    }
    let _ = writeln!(o);
    let _ = write!(o, "|---|");
    for _ in &r.targets {
        let _ = write!(o, "---|");
    }
    let _ = writeln!(o);
    for p in Property::ALL {
        let _ = write!(o, "| {} |", p.id());
        for ti in 0..r.targets.len() {
            match r.cells.get(&(ti, p)).filter(|c| c.found()) {
                Some(c) => {
                    let _ = write!(
                        o,
                        " [{}](#{}) |",
                        cell_text(c).join("<br>"),
                        stem(&r.targets[ti], p)
                    );
                }
                None => {
                    let _ = write!(o, " · |");
                }
            }
        }
        let _ = writeln!(o);
    }
    let _ = writeln!(o, "\n## Findings");
    for ((ti, p), c) in &r.cells {
        let t = &r.targets[*ti];
        let s = stem(t, *p);
        let Some(best) = c.shortest() else {
            let _ = writeln!(
                o,
                "\n### {} / {}\n<a id=\"{s}\"></a>\n\nNo reproducer of this finding replays (see below).",
                t.name,
                p.id()
            );
            continue;
        };
        let _ = writeln!(
            o,
            "\n### {} / {} ({})\n<a id=\"{s}\"></a>\n",
            t.name,
            p.id(),
            p.class()
        );
        let _ = writeln!(o, "{}\n", best.detail);
        let _ = writeln!(
            o,
            "Shortest reproducer: {} from **{}** ({}). Replay: `ftsim replay repro/{s}.txt`\n",
            ops_text(best.script.lines.len()),
            best.source.name(),
            best.note
        );
        let _ = writeln!(o, "```\n{}```\n", body_text(&best.script));
        let _ = writeln!(o, "![timeline of {s}](svg/{s}.svg)");
        for e in c.evidence.iter().filter(|e| !std::ptr::eq(*e, best)) {
            let _ = writeln!(
                o,
                "\n- also **{}**: {}{}",
                e.source.name(),
                e.note,
                if e.reproduces {
                    ""
                } else {
                    " (does not replay)"
                }
            );
        }
    }
    let bad = not_replaying(r);
    if !bad.is_empty() {
        let _ = writeln!(o, "\n## Reproducers that do not replay\n");
        let _ = writeln!(o, "Reported by a source but not shown by `ftsim replay`: an inconsistency to investigate; not used as shortest reproducers.\n");
        for ((ti, p), e) in bad {
            let _ = writeln!(
                o,
                "- {} / {} from **{}**: {}",
                r.targets[ti].name,
                p.id(),
                e.source.name(),
                e.note
            );
        }
    }
    let _ = writeln!(o, "\n## Committed proptest reproducers\n");
    if r.reproducers.is_empty() {
        let _ = writeln!(o, "None found in {}.", r.reproducers_dir.display());
    }
    for f in &r.reproducers {
        let exp: Vec<String> = f
            .expect
            .iter()
            .map(|(p, ok)| format!("{p}: {}", if *ok { "reproduced" } else { "NOT reproduced" }))
            .collect();
        let _ = writeln!(
            o,
            "- `{}` ({}): {}",
            f.path.display(),
            f.protocol,
            exp.join(", ")
        );
    }
    o
}

/// Writes `index.html`, `report.md`, `svg/<cell>.svg` and `repro/<cell>.txt` into `dir`.
pub fn write(r: &Report, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir.join("svg"))?;
    std::fs::create_dir_all(dir.join("repro"))?;
    let mut svgs = BTreeMap::new();
    let mut written = Vec::new();
    for ((ti, p), c) in &r.cells {
        let Some(best) = c.shortest() else { continue };
        let s = stem(&r.targets[*ti], *p);
        let svg = timeline_svg(&best.script);
        let path = dir.join("svg").join(format!("{s}.svg"));
        std::fs::write(&path, &svg)?;
        written.push(path);
        let mut script = best.script.clone();
        script.expect = vec![*p];
        let path = dir.join("repro").join(format!("{s}.txt"));
        std::fs::write(&path, script.to_string())?;
        written.push(path);
        svgs.insert((*ti, *p), svg);
    }
    let path = dir.join("index.html");
    std::fs::write(&path, html(r, &svgs))?;
    written.push(path);
    let path = dir.join("report.md");
    std::fs::write(&path, markdown(r))?;
    written.push(path);
    Ok(written)
}

/// Reproducers that do not show their property when replayed (listed in the report).
pub fn not_replaying(r: &Report) -> Vec<((usize, Property), &Evidence)> {
    r.cells
        .iter()
        .flat_map(|(k, c)| c.evidence.iter().filter(|e| !e.reproduces).map(|e| (*k, e)))
        .collect()
}

/// Runs `ftsim report`.
pub fn run(a: &ReportArgs) -> Result<i32, UsageError> {
    let targets: Vec<Target> = cli::targets(&a.protocols, &a.sets)?;
    let seeds = match &a.seeds {
        Some(s) => cli::seeds(s)?,
        None => SeedSet::range(0, REPORT_SEEDS),
    };
    if a.events == 0 || a.events > crate::sim::EVENTS_MAX {
        return Err(UsageError(format!(
            "--events must be between 1 and {}, found {}",
            crate::sim::EVENTS_MAX,
            a.events
        )));
    }
    if a.depth == 0 || a.depth > explore::DEPTH_MAX {
        return Err(UsageError(format!(
            "--depth must be between 1 and {}, found {}",
            explore::DEPTH_MAX,
            a.depth
        )));
    }
    explore::world(a.functions, a.tracers, 0).map_err(UsageError)?;
    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if jobs == 0 || jobs > 1024 {
        return Err(UsageError(format!(
            "--jobs must be between 1 and 1024, found {jobs}"
        )));
    }
    let cfg = Config {
        targets,
        seeds: Some(seeds),
        events: a.events,
        jobs,
        depth: a.depth,
        functions: a.functions,
        tracers: a.tracers,
        interleave_depth: a.interleave_depth,
        faults: !a.no_faults,
        reproducers: a.reproducers.clone(),
    };
    eprintln!(
        "ftsim report: sweep of seeds {} per protocol, exhaustive depth {} (interleaving {}), reproducers from {}",
        seeds,
        a.depth,
        a.interleave_depth,
        a.reproducers.display()
    );
    let r = build(&cfg);
    write(&r, &a.out).map_err(|e| {
        UsageError(format!(
            "cannot write the report to {}: {e}",
            a.out.display()
        ))
    })?;
    let findings = r.cells.values().filter(|c| c.found()).count();
    println!(
        "wrote {} ({} findings over {} protocols) and {}",
        a.out.join("index.html").display(),
        findings,
        r.targets.len(),
        a.out.join("report.md").display()
    );
    let mut internal = false;
    for ((ti, p), e) in not_replaying(&r) {
        eprintln!(
            "ftsim: warning: the {} reproducer of {} / {p} does not replay ({})",
            e.source.name(),
            r.targets[ti].name,
            e.note
        );
        internal |= matches!(e.source, Source::Exhaustive | Source::Interleaving);
    }
    if internal {
        eprintln!(
            "ftsim: internal error: an exhaustive counterexample does not replay (a bug in ftsim)"
        );
        return Ok(EXIT_INTERNAL);
    }
    Ok(if findings > 0 { EXIT_FOUND } else { EXIT_CLEAN })
}
