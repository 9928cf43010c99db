//! Sweeping seeds over protocols: runs seeds in parallel, keeps per (protocol, property) the
//! number of seeds that violate it and the shortest run that does, shrinks that run to a
//! reproducer, and reports a verdict table. Results never depend on the number of jobs: work is
//! indexed, and every aggregate is order-independent (counts, and minima under a total order).

use crate::shrink::shrink;
use crate::sim::{run_seed, Found};
use ftsim_core::property::Property;
use ftsim_core::protocol::{Protocol, CLEAN_PRESETS};
use ftsim_drive::script::Script;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A protocol under test, with the command-line arguments that name it.
#[derive(Clone, Debug)]
pub struct Target {
    pub name: String,
    pub proto: Protocol,
    /// e.g. `--protocol merged` or `--protocol my.proto --set peer_scan=none`.
    pub args: String,
}

impl Target {
    /// The preset this target was named by on the command line (`--protocol NAME`, with or
    /// without `--set` overrides), if it was named by a preset rather than a file.
    pub fn preset(&self) -> Option<&str> {
        let name = self.args.strip_prefix("--protocol ")?.split(' ').next()?;
        Protocol::preset(name).map(|_| name)
    }

    /// Named by a preset README calls clean ([`CLEAN_PRESETS`]). Overrides do not change that:
    /// `--protocol proposed --set ...` is how a test stands in for a regression of `proposed`.
    pub fn claimed_clean(&self) -> bool {
        self.preset().is_some_and(|n| CLEAN_PRESETS.contains(&n))
    }
}

/// A range of seeds, optionally one shard of it (every `shards`-th seed from the `shard`-th).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeedSet {
    pub lo: u64,
    pub hi: u64,
    pub shard: u64,
    pub shards: u64,
}

impl SeedSet {
    pub fn range(lo: u64, hi: u64) -> SeedSet {
        SeedSet {
            lo,
            hi,
            shard: 0,
            shards: 1,
        }
    }
    pub fn len(&self) -> u64 {
        let n = self.hi - self.lo;
        n / self.shards + u64::from(n % self.shards > self.shard)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn nth(&self, k: u64) -> u64 {
        self.lo + k * self.shards + self.shard
    }
}

impl std::fmt::Display for SeedSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}..{}", self.lo, self.hi)?;
        if self.shards > 1 {
            write!(f, " shard {}/{}", self.shard, self.shards)?;
        }
        Ok(())
    }
}

impl SeedSet {
    /// The command-line arguments that name this set (`--seeds A..B`, plus `--shard i/n`).
    pub fn args(&self) -> String {
        let mut a = format!("--seeds {}..{}", self.lo, self.hi);
        if self.shards > 1 {
            a.push_str(&format!(" --shard {}/{}", self.shard, self.shards));
        }
        a
    }
}

/// What a sweep runs: each target over each seed.
#[derive(Clone, Debug)]
pub struct SweepConfig {
    pub targets: Vec<Target>,
    pub seeds: SeedSet,
    pub events: u64,
    pub jobs: usize,
    pub stop_on_first: bool,
    pub self_check: bool,
    pub shrink: bool,
}

/// One verdict cell: a protocol violates a property.
#[derive(Clone, Debug)]
pub struct Cell {
    pub target: usize,
    pub property: Property,
    /// Seeds (runs) that violated it.
    pub seeds: u64,
    /// The representative: the run with the fewest operations up to the finding (then lowest seed).
    pub seed: u64,
    pub found: Found,
    /// The shrunk reproducer, when shrinking ran.
    pub reproducer: Option<Script>,
}

impl Cell {
    pub fn ops(&self) -> usize {
        self.reproducer
            .as_ref()
            .unwrap_or(&self.found.script)
            .lines
            .len()
    }
}

/// What a sweep found: the verdict cells and the totals.
#[derive(Clone, Debug, Default)]
pub struct SweepResult {
    pub cells: Vec<Cell>,
    pub runs: u64,
    pub events: u64,
    pub ops: u64,
    pub elapsed: Duration,
    /// Seeds whose two runs disagreed in the self-check: an internal error.
    pub nondeterministic: Vec<(String, u64)>,
}

/// The key that orders representatives: fewest operations, then earliest step, then lowest seed.
fn rank(f: &Found, seed: u64) -> (usize, u64, u64) {
    (f.script.lines.len(), f.step, seed)
}

/// One run's work index, first finding per property, events and operations.
type ItemResult = (usize, Vec<Found>, u64, u64);

/// Order-independent aggregation of runs into cells.
#[derive(Default)]
struct Agg {
    cells: BTreeMap<(usize, Property), Cell>,
    runs: u64,
    events: u64,
    ops: u64,
}

impl Agg {
    fn add(&mut self, ti: usize, seed: u64, firsts: Vec<Found>, events: u64, ops: u64) {
        self.runs += 1;
        self.events += events;
        self.ops += ops;
        for f in firsts {
            let key = (ti, f.violation.property);
            match self.cells.get_mut(&key) {
                Some(c) => {
                    c.seeds += 1;
                    if rank(&f, seed) < rank(&c.found, c.seed) {
                        c.seed = seed;
                        c.found = f;
                    }
                }
                None => {
                    let property = f.violation.property;
                    self.cells.insert(
                        key,
                        Cell {
                            target: ti,
                            property,
                            seeds: 1,
                            seed,
                            found: f,
                            reproducer: None,
                        },
                    );
                }
            }
        }
    }
}

/// Runs the sweep. `progress` is called with (runs done, runs total) from worker threads.
pub fn sweep(cfg: &SweepConfig, progress: &(dyn Fn(u64, u64) + Sync)) -> SweepResult {
    let start = Instant::now();
    let per = cfg.seeds.len() as usize;
    let total = cfg.targets.len() * per;
    let next = AtomicUsize::new(0);
    let done = AtomicU64::new(0);
    // With --stop-on-first: the lowest work index that found something; later items are dropped,
    // so the result is the same whatever the number of jobs.
    let first_hit = AtomicUsize::new(usize::MAX);
    let agg: Mutex<Agg> = Mutex::new(Agg::default());
    let stopped: Mutex<Vec<ItemResult>> = Mutex::new(Vec::new());
    let bad: Mutex<Vec<(String, u64)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..cfg.jobs.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total || (cfg.stop_on_first && i > first_hit.load(Ordering::Relaxed)) {
                    break;
                }
                let (ti, si) = (i / per, i % per);
                let (target, seed) = (&cfg.targets[ti], cfg.seeds.nth(si as u64));
                let run = run_seed(target.proto, seed, cfg.events, false);
                if cfg.self_check {
                    let again = run_seed(target.proto, seed, cfg.events, false);
                    if again.digest != run.digest {
                        bad.lock().unwrap().push((target.name.clone(), seed));
                    }
                }
                if cfg.stop_on_first && !run.found.is_empty() {
                    first_hit.fetch_min(i, Ordering::Relaxed);
                }
                // Keep the first finding of each property in this run.
                let mut firsts: Vec<Found> = Vec::new();
                for f in run.found {
                    if !firsts
                        .iter()
                        .any(|x| x.violation.property == f.violation.property)
                    {
                        firsts.push(f);
                    }
                }
                if cfg.stop_on_first {
                    stopped
                        .lock()
                        .unwrap()
                        .push((i, firsts, run.events, run.ops));
                } else {
                    agg.lock()
                        .unwrap()
                        .add(ti, seed, firsts, run.events, run.ops);
                }
                progress(done.fetch_add(1, Ordering::Relaxed) + 1, total as u64);
            });
        }
    });
    let mut agg = agg.into_inner().unwrap();
    if cfg.stop_on_first {
        let cutoff = first_hit.into_inner();
        for (i, firsts, events, ops) in stopped.into_inner().unwrap() {
            if i <= cutoff {
                agg.add(
                    i / per,
                    cfg.seeds.nth((i % per) as u64),
                    firsts,
                    events,
                    ops,
                );
            }
        }
    }
    let mut out = SweepResult {
        runs: agg.runs,
        events: agg.events,
        ops: agg.ops,
        ..SweepResult::default()
    };
    out.cells = agg.cells.into_values().collect();
    if cfg.shrink {
        shrink_cells(&mut out.cells, cfg.jobs);
    }
    let mut bad = bad.into_inner().unwrap();
    bad.sort();
    out.nondeterministic = bad;
    out.elapsed = start.elapsed();
    out
}

/// Shrinks every cell's representative, in parallel.
fn shrink_cells(cells: &mut [Cell], jobs: usize) {
    let next = AtomicUsize::new(0);
    let shrunk: Mutex<Vec<(usize, Script)>> = Mutex::new(Vec::new());
    let view: &[Cell] = cells;
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= view.len() {
                    break;
                }
                let (script, _) = shrink(&view[i].found.script, view[i].property);
                shrunk.lock().unwrap().push((i, script));
            });
        }
    });
    for (i, s) in shrunk.into_inner().unwrap() {
        cells[i].reproducer = Some(s);
    }
}

/// The findings of the sweep that break a verdict README claims: one message per (target,
/// property) cell of a target named by a clean preset ([`Target::claimed_clean`]), with the
/// commands that replay the sweep and the seed. Empty when every clean preset stayed clean.
pub fn clean_verdict_failures(cfg: &SweepConfig, out: &SweepResult) -> Vec<String> {
    out.cells
        .iter()
        .filter(|c| cfg.targets[c.target].claimed_clean())
        .map(|c| {
            let t = &cfg.targets[c.target];
            format!(
                "`{}` is claimed clean (CLEAN_PRESETS) but violates {} in {} of {} seeds: {}\n  \
                 replay the sweep: ftsim run {} {} --events {}\n  \
                 replay the seed:  {}",
                t.name,
                c.property,
                c.seeds,
                cfg.seeds.len(),
                c.found.violation,
                t.args,
                cfg.seeds.args(),
                cfg.events,
                replay_command(t, c.seed, cfg.events)
            )
        })
        .collect()
}

/// The replay command of a seed.
pub fn replay_command(t: &Target, seed: u64, events: u64) -> String {
    format!("ftsim replay {} --seed {seed} --events {events}", t.args)
}
