//! Exhaustive bounded exploration (`ftsim explore`): every owner-level operation sequence up to a
//! depth, breadth first, deduplicated by the canonical state fingerprint and reduced by symmetry,
//! with every property checked in every state and the *shortest* counterexample of each violated
//! property written as a reproducer script.
//!
//! # The state space
//!
//! **Sequential mode** (default). A state is the [`Sequential`] driver: the kernel model at
//! quiescence plus the lockdep order graph the run has built so far (it decides future
//! `lock-order` findings, so it is part of the state). A transition runs one operation of the
//! alphabet to completion, without faults. Depth `D` explores every sequence of at most `D`
//! operations. A state where the model got stuck (lock recursion) has no successor.
//!
//! **Interleaving mode** (`--interleave`). A state is the concurrent executor [`Sched`] with two
//! threads, plus the number of operations started so far. A transition either starts an
//! operation of the alphabet on the lowest idle thread (while fewer than `D` were started) or
//! steps a thread that has an operation in flight to its next lock boundary. So at most two
//! operations are in flight, every order of their steps is explored, and depth `D` bounds the
//! number of operations; breadth-first levels are scheduling steps, so a counterexample is the
//! shortest in steps. Starting only on the lowest idle thread is the thread symmetry (thread ids
//! are interchangeable when idle).
//!
//! # The alphabet
//!
//! For a world of `K` functions `f0..` (the last `M` of them in module `m0` with `--module M`)
//! and `T` tracers `t0..`, in this order (see [`alphabet`]):
//!
//! - per function f: `klp-enable f`, `klp-disable f`, `bpf-link KIND f` and `bpf-unlink KIND f`
//!   for KIND in fentry, fexit, fmod_ret, `kprobe-arm f`, `kprobe-disarm f`, and when the version
//!   has the single-ip direct API `direct-register f`, `direct-modify f`, `direct-unregister f`;
//! - per tracer t: `tracer-register t` with (filter, notrace) = ({}, {}), ({f}, {}) and ({}, {f})
//!   for every f, then per f `tracer-filter-add`, `tracer-filter-remove`, `tracer-notrace-add`,
//!   `tracer-notrace-remove`, and `tracer-unregister t`;
//! - with a module: `module-load m0`, `module-unload m0`.
//!
//! # Deduplication and symmetry
//!
//! States are deduplicated by a 128-bit key (stored as a 64-bit fingerprint, see [`bfs`]): the
//! core's canonical fingerprint ([`ftsim_core::fingerprint`]: serial numbers renumbered,
//! counters left out but for the change counter and the dirty records while an operation is in
//! flight, which in-flight frames compare against) of the kernel and its threads, combined with
//! the lock-order graph (and, in interleaving mode, the number of operations started and the
//! stuck lanes).
//!
//! Functions that nothing distinguishes are interchangeable: the built-in functions among
//! themselves, and the functions of one module among themselves; so are the tracers. For a
//! state with no operation in flight the key is a function of its symmetry orbit that tells
//! orbits apart: two states share a key exactly when a renaming π of interchangeable functions
//! and tracers maps the fingerprint of one to the other's. One walk of the state (`parts`)
//! splits what the fingerprint sees into per-function parts, each written so that it names no
//! function (the function itself as "this function", and every reference to it from elsewhere,
//! such as a static ops slot's hash entry or a `direct_functions` entry of its ip, recorded in
//! its part), per-tracer parts and a rest that names nothing renamed, and hashes each part once.
//! The key is then the hash of the function parts sorted within each class, the tracer parts
//! and the rest (the least over the orders of the tracers, with what each tracer says about each
//! function read in that order): sorting the parts is the canonical renaming, and no renamed
//! state is encoded. A state whose parts cannot be written so (a function's part names another
//! function, an address is stale, two functions share a program: *tangled*, a property of the
//! orbit) takes the key of the full encoding instead: the least, over candidate renamings, of
//! the fingerprint of π(state), computed by [`fingerprint_permuted`], which hashes exactly the
//! words [`ftsim_core::fingerprint::fingerprint`] hashes, with every function, tracer, ops slot,
//! lock and address renamed through π (a test checks that the identity permutation reproduces
//! the core fingerprint bit for bit, so the two cannot drift apart). The candidates are narrowed
//! without losing exactness by signatures from the same walk: each function's part written with
//! "another function" where it names one, sorted within the class, and only orders that agree
//! with the sort are tried (every permutation of a run of equal signatures); functions that are
//! *free* (their part names nothing else and nothing names them) with equal parts are
//! interchangeable by an automorphism of the state, and only one of their orders is tried. The
//! test `keys_are_the_orbits` in `sim/tests/explore.rs` checks, both ways, that the key
//! partitions reachable states exactly into orbits found by trying every renaming: distinct-state
//! counts are orbit counts. States with an operation in flight carry frames the explorer cannot
//! rename and use the identity only (sound, less reduction).
//!
//! Symmetry reduction is sound when the model treats interchangeable functions alike. The model
//! iterates hashes in ip order (SPEC notes this stands in for bucket order), which could break
//! that in principle; the test `symmetry_agrees_with_plain_search` in `sim/tests/explore.rs`
//! explores with and without reduction and checks the reduced count equals the number of orbits
//! of the plain search and that both find the same properties at the same depths. `--no-symmetry`
//! switches it off.
//!
//! # What is checked
//!
//! Every new state: [`check`] (SPEC §3 at quiescence) and, in interleaving mode, deadlock when no
//! thread can step. Every transition: the findings raised inside its steps (lock coverage,
//! recursion, lock order, livelock, accounting warnings) and, in sequential mode, the atomicity
//! footprint of a failed operation, exactly as [`Sequential::apply`] does. Availability is the
//! oracle's verdict and is not judged here. The first finding of each property in breadth-first
//! order is a shortest counterexample; it is replayed with [`Script::replay`] and reported with
//! whether it reproduces.
//!
//! # Cost
//!
//! A transition copies the driver into a buffer reused for every successor of the state being
//! expanded (no allocation: the successor is only lent to the engine, [`Edge`]), runs one
//! operation and computes the symmetric key (one walk hashing the per-function parts, a sort,
//! one 128-bit hash); each new state is also checked. By instructions (callgrind, 3 functions,
//! depth 4, symmetry on, at 4c163d8 with the key from parts): the operation about 39%, the key
//! 35% (its walk 30%), the check 8%.
//! Operations the owner refuses without effect are predicted and skipped (self-loops), and a
//! refusal that leaves the kernel unchanged reuses its parent's key. A successor's key
//! re-walks only the functions whose own sections differ from its parent's (`parts`,
//! *Successors*; without symmetry the fingerprint's words per function, `encode::plain_key`),
//! and the copy into the buffer of the next successor skips what that comparison found equal
//! (callgrind, 3 functions, 1 tracer, depth 4, at 5fd0b17: symmetry on 1.492 G -> 1.441 G
//! instructions, off 6.609 G -> 6.505 G). The deduplication store
//! keeps a 64-bit fingerprint of the key in a hash set and a parent link per distinct state
//! (the collision probability is in [`bfs`]'s docs); the frontier keeps no states, only their
//! indices: a worker rebuilds each state it expands by replaying the last transition of its
//! path from its parent. `sim/benches/explore.rs` prints the figures.
//!
//! # Determinism and threads
//!
//! Level-synchronous: each level's frontier is cut into contiguous chunks, expanded in parallel
//! against the (read-only) set of earlier states, and merged in chunk order, so every index,
//! count and counterexample is the one a single thread computes: results never depend on
//! `--threads`.
//!
//! # Files
//!
//! `space` holds the public [`Space`] trait the engine ([`bfs`]) is generic over,
//! [`Edge`] and the [`alphabet`]; `seq` and `inter` are the two spaces; `encode` the renamed
//! fingerprint ([`encode`], [`Perm`], [`hash128`]); `symmetry` the canonical key ([`Symmetry`]);
//! `parts` the walk's split into per-function parts, the key from them and the signatures; `os`
//! the `/proc` probes. The `ftsim explore` command line and printing are the binary's
//! (`cli/src/bin/ftsim/explore_cmd.rs`).
//!
//! [`Sequential`]: ftsim_drive::seq::Sequential
//! [`Sequential::apply`]: ftsim_drive::seq::Sequential::apply
//! [`Sched`]: ftsim_drive::sched::Sched
//! [`check`]: ftsim_drive::check::check

mod bfs;
mod encode;
mod inter;
mod os;
mod parts;
mod seq;
mod space;
mod symmetry;

pub use bfs::{bfs, Search};
pub use encode::{encode, fingerprint_permuted, hash128, Perm, Scratch};
use inter::{InterSpace, START};
pub use os::{cpu_seconds, peak_rss_bytes};
use seq::seq_label_parts;
pub use seq::{SeqSpace, SeqState};
pub use space::{alphabet, Edge, Space};
pub use symmetry::{order_mask, Symmetry, SIGNATURE_IGNORES};

use crate::sweep::Target;
use ftsim_core::ids::Tid;
use ftsim_core::op::Op;
use ftsim_core::property::{Property, Violation};
use ftsim_core::world::World;
use ftsim_drive::script::{Line, Script};
use ftsim_drive::seq::Faults;
use std::time::Duration;

/// Most functions an exploration world may have (the state space is exponential anyway).
pub const FUNCTIONS_MAX: u16 = 12;
/// Most tracers.
pub const TRACERS_MAX: u8 = 4;
/// Largest depth accepted.
pub const DEPTH_MAX: u32 = 64;
/// Default bound on distinct states; reaching it stops the search (reported as incomplete).
pub const STATES_MAX_DEFAULT: u64 = 200_000_000;
/// Threads of the interleaving mode: "up to two in-flight operations".
pub const INTERLEAVE_THREADS: usize = 2;
/// Breadth-first levels the interleaving mode may take (a guard; each operation's steps are
/// bounded by the core's retry bounds).
pub const STEPS_MAX: u32 = 100_000;
/// With faults: the highest decision index (per kind, per operation) a fault is injected at.
pub const FAULT_INDEX_MAX: u32 = 16;
/// Most symmetry permutations tried for one state; past it the key is still sound (a fingerprint
/// of a renaming of the state), only no longer guaranteed to be the same for the whole orbit.
pub const PERMS_MAX: usize = 720;

/// One exploration.
#[derive(Clone, Debug)]
pub struct ExploreConfig {
    pub target: Target,
    pub world: World,
    pub depth: u32,
    pub threads: usize,
    pub interleave: bool,
    pub symmetry: bool,
    pub states_max: u64,
    /// Run the transitions predicted to be owner-level refusals anyway and check the prediction
    /// (tests; slower).
    pub verify_skips: bool,
    /// Sequential mode: also run every operation with each single injected fault (one failing
    /// allocation, image build or trylock), see [`FAULT_INDEX_MAX`].
    pub faults: bool,
}

impl ExploreConfig {
    /// Sequential mode, one thread, symmetry on.
    pub fn new(target: Target, world: World, depth: u32) -> ExploreConfig {
        ExploreConfig {
            target,
            world,
            depth,
            threads: 1,
            interleave: false,
            symmetry: true,
            states_max: STATES_MAX_DEFAULT,
            verify_skips: false,
            faults: false,
        }
    }
}

/// The world `ftsim explore` uses: `functions` built-in functions (the last `module` of them in
/// module `m0`) and `tracers` tracers.
pub fn world(functions: u16, tracers: u8, module: u16) -> Result<World, String> {
    if functions == 0 || functions > FUNCTIONS_MAX {
        return Err(format!(
            "--functions must be between 1 and {FUNCTIONS_MAX}, found {functions}"
        ));
    }
    if tracers > TRACERS_MAX {
        return Err(format!(
            "--tracers must be at most {TRACERS_MAX}, found {tracers}"
        ));
    }
    if module > functions {
        return Err(format!(
            "--module {module} needs at least {module} functions, found {functions}"
        ));
    }
    let mut w = World::new(functions);
    w.tracers = tracers;
    if module > 0 {
        let fns: Vec<u16> = (functions - module..functions).collect();
        w = w.with_module(&fns);
    }
    w.validate()?;
    Ok(w)
}

/// Per breadth-first level: states in the frontier that was expanded, and new states found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Level {
    pub expanded: u64,
    pub new: u64,
}

#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Transitions computed (successor states generated, duplicates included).
    pub explored: u64,
    /// Distinct states (symmetry orbits with symmetry on), the initial state included.
    pub distinct: u64,
    /// Distinct states without successors: stuck in a lock recursion (sequential mode).
    pub terminal: u64,
    /// Distinct states per level (index = depth; level 0 is the initial state).
    pub levels: Vec<Level>,
    pub elapsed: Duration,
    /// `VmHWM` of the process after the search, in bytes (Linux), if readable.
    pub peak_rss_bytes: Option<u64>,
    /// Bytes of the deduplication store (key set and parent links) at its largest.
    pub store_bytes: u64,
    /// Largest frontier (states of two levels: the one expanded and the next).
    pub frontier_peak: u64,
    /// Bytes of the frontier at its largest (two levels of state indices; the states are
    /// rebuilt by replay, see [`bfs`]).
    pub frontier_bytes: u64,
    /// Stopped at `states_max`.
    pub truncated: bool,
    /// Transitions not computed because the operation is refused at owner level without effect
    /// (a self-loop; sequential mode).
    pub skipped: u64,
    /// Renamings tried by the symmetry reduction.
    pub renamings: u64,
    /// CPU seconds the process spent during the search (all threads), if readable.
    pub cpu_s: Option<f64>,
}

impl Stats {
    pub fn distinct_per_s(&self) -> f64 {
        self.distinct as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
    pub fn explored_per_s(&self) -> f64 {
        self.explored as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
    /// Peak resident memory divided by distinct states.
    pub fn rss_per_state(&self) -> Option<f64> {
        self.peak_rss_bytes
            .map(|b| b as f64 / self.distinct.max(1) as f64)
    }
    pub fn store_per_state(&self) -> f64 {
        self.store_bytes as f64 / self.distinct.max(1) as f64
    }
}

/// The shortest counterexample of one property.
#[derive(Clone, Debug)]
pub struct Finding {
    pub property: Property,
    pub violation: Violation,
    /// Operations (sequential) or scheduling steps (interleaving) of the counterexample.
    pub depth: usize,
    pub script: Script,
    /// Distinct states in which the property is violated.
    pub states: u64,
    /// Transitions that raised it.
    pub transitions: u64,
    /// Replaying the script shows the property.
    pub reproduces: bool,
}

/// What one exploration found: its statistics, the findings and the alphabet it ran.
#[derive(Clone, Debug)]
pub struct ExploreResult {
    pub stats: Stats,
    /// One per violated property, in [`Property::ALL`] order.
    pub findings: Vec<Finding>,
    pub alphabet: Vec<Op>,
}

/// Runs the exploration described by `cfg`.
pub fn explore(cfg: &ExploreConfig) -> ExploreResult {
    let proto = cfg.target.proto;
    let alphabet = alphabet(&cfg.world, &proto);
    let sym = Symmetry::new(&cfg.world, proto, cfg.symmetry);
    let search = if cfg.interleave {
        let space = InterSpace {
            world: cfg.world.clone(),
            proto,
            alphabet: alphabet.clone(),
            sym,
            depth: cfg.depth,
        };
        bfs(&space, cfg, STEPS_MAX)
    } else {
        bfs(&SeqSpace::new(cfg), cfg, cfg.depth)
    };
    let mut findings = Vec::new();
    for (p, h) in &search.hits {
        let mut path = if h.parent == u32::MAX {
            Vec::new()
        } else {
            search.path(h.parent)
        };
        if h.depth > 0 {
            path.push(h.label);
        }
        let (lines, schedule) = if cfg.interleave {
            interleaved_lines(&alphabet, &path)
        } else {
            let lines = path
                .iter()
                .map(|&l| {
                    let (op, faults) = seq_label_parts(l);
                    Line {
                        tid: 0,
                        op: alphabet[op].clone(),
                        faults,
                    }
                })
                .collect();
            (lines, None)
        };
        let script = Script {
            proto,
            world: cfg.world.clone(),
            expect: vec![*p],
            lines,
            schedule,
        };
        let reproduces = script.replay().has(*p);
        findings.push(Finding {
            property: *p,
            violation: h.violation.clone(),
            depth: h.depth,
            script,
            states: h.states,
            transitions: h.transitions,
            reproduces,
        });
    }
    ExploreResult {
        stats: search.stats,
        findings,
        alphabet,
    }
}

/// The lines and schedule of an interleaving path.
fn interleaved_lines(alphabet: &[Op], path: &[u32]) -> (Vec<Line>, Option<Vec<Tid>>) {
    let mut lines = Vec::new();
    let mut schedule = Vec::new();
    for &l in path {
        let t = ((l & !START) >> 16) as Tid;
        if l & START != 0 {
            lines.push(Line {
                tid: t,
                op: alphabet[(l & 0xffff) as usize].clone(),
                faults: Faults::NONE,
            });
            schedule.push(t);
        } else {
            schedule.push(l as Tid);
        }
    }
    (lines, Some(schedule))
}
