//! The evidence: what `build` runs (the sweep, the exhaustive searches, the committed
//! reproducers) and the cells of protocol × property it collects.

use ftsim_core::property::{Property, Violation};
use ftsim_core::world::World;
use ftsim_drive::script::Script;
use ftsim_sim::explore;
use ftsim_sim::sweep::{self, SeedSet, Target};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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
pub struct FindingsReport {
    pub targets: Vec<Target>,
    pub cells: BTreeMap<(usize, Property), CellReport>,
    pub sweep: Option<(SeedSet, sweep::SweepResult)>,
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
pub struct ReportConfig {
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
    script.replay().findings.into_vec()
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
pub fn build(cfg: &ReportConfig) -> FindingsReport {
    let mut cells = Cells::new();
    let sweep = add_sweep(cfg, &mut cells);
    let world = explore::world(cfg.functions, cfg.tracers, 0)
        .expect("[report internal bug] the explore world was validated by the caller");
    let explored = add_searches(cfg, &world, &mut cells);
    let reproducers = add_reproducers(cfg, &mut cells);
    FindingsReport {
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

type Cells = BTreeMap<(usize, Property), CellReport>;

/// 1. The sweep (unless `cfg.seeds` is `None`): a cell per property a seed violates.
fn add_sweep(cfg: &ReportConfig, cells: &mut Cells) -> Option<(SeedSet, sweep::SweepResult)> {
    cfg.seeds.map(|seeds| {
        let sc = sweep::SweepConfig {
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
    })
}

/// 2. The exhaustive searches: sequential on `world`, and interleaving on one function.
fn add_searches(
    cfg: &ReportConfig,
    world: &World,
    cells: &mut Cells,
) -> Vec<(Explored, Option<Explored>)> {
    let mut explored = Vec::new();
    for (ti, t) in cfg.targets.iter().enumerate() {
        let mut ec = explore::ExploreConfig::new(t.clone(), world.clone(), cfg.depth);
        ec.threads = cfg.jobs;
        ec.faults = cfg.faults;
        let out = explore::explore(&ec);
        add_explore(cells, ti, &out, Source::Exhaustive, cfg.depth);
        let seq = Explored {
            stats: out.stats.clone(),
            findings: out.findings.len(),
        };
        let inter = (cfg.interleave_depth > 0).then(|| {
            let w1 = explore::world(1, 0, 0).unwrap();
            let mut ic = explore::ExploreConfig::new(t.clone(), w1, cfg.interleave_depth);
            ic.threads = cfg.jobs;
            ic.interleave = true;
            let out = explore::explore(&ic);
            add_explore(cells, ti, &out, Source::Interleaving, cfg.interleave_depth);
            Explored {
                stats: out.stats.clone(),
                findings: out.findings.len(),
            }
        });
        explored.push((seq, inter));
    }
    explored
}

/// 3. The committed proptest reproducers: a cell per expected property a file reproduces.
fn add_reproducers(cfg: &ReportConfig, cells: &mut Cells) -> Vec<ReproducerFile> {
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
    reproducers
}

fn add_explore(
    cells: &mut Cells,
    ti: usize,
    out: &explore::ExploreResult,
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
