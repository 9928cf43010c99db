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
//! States are deduplicated by a 128-bit key: the core's canonical fingerprint
//! ([`ftsim_core::fingerprint`]: serial numbers renumbered, counters left out) of the kernel,
//! combined with the lock-order graph (and, in interleaving mode, the number of operations
//! started, and for states with an operation in flight the kernel's change counter and dirty
//! records, which in-flight frames compare against and the core fingerprint leaves out).
//!
//! Functions that nothing distinguishes are interchangeable: the built-in functions among
//! themselves, and the functions of one module among themselves; so are the tracers. For a
//! state with no operation in flight the key is the minimum, over the permutations π of
//! interchangeable functions and tracers, of the fingerprint of π(state), computed by
//! [`fingerprint_permuted`], which hashes exactly the words [`ftsim_core::fingerprint::fingerprint`]
//! hashes, with every function, tracer, ops slot, lock and address renamed through π (a test
//! checks that the identity permutation reproduces the core fingerprint bit for bit, so the two
//! cannot drift apart). Trying every permutation is factorial, so the candidates are narrowed
//! first, without losing exactness: each function gets a signature that names no other function
//! (its own record, owner state and ops, and order-free sums over every reference to it), the
//! functions of a class are sorted by signature, and only orders that agree with the sort are
//! tried (every permutation of a run of equal signatures). Functions that are *pristine* (in
//! their initial state, with initial ops, and mentioned by no hash, no `direct_functions` entry,
//! no address and no lock) are identical and unreferenced, so permuting them is an automorphism
//! and only one of their orders is tried. Because signatures are invariant under renaming, the
//! candidate set of π(s) is the candidate set of s renamed, and the key is a function of the
//! symmetry orbit: distinct-state counts are orbit counts. States with an operation in flight
//! carry frames the explorer cannot rename and use the identity only (sound, less reduction).
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
//! A transition clones the driver (about 0.3 µs on a 3-function world), runs one operation
//! (about 0.45 µs) and computes the symmetric key (about 0.35 µs: signatures, the candidate
//! renamings' encodings, one 128-bit hash); each new state is also checked (about 0.2 µs).
//! Operations the owner refuses without effect are predicted and skipped (self-loops), and a
//! refusal that leaves the kernel unchanged reuses its parent's key. The deduplication store
//! costs 27–43 bytes per distinct state (a 128-bit key in a hash set plus a parent link); the
//! frontier (two levels of full states) dominates peak memory. `sim/benches/explore.rs` prints
//! the figures.
//!
//! # Determinism and threads
//!
//! Level-synchronous: each level's frontier is cut into contiguous chunks, expanded in parallel
//! against the (read-only) set of earlier states, and merged in chunk order, so every index,
//! count and counterexample is the one a single thread computes: results never depend on
//! `--threads`.

use crate::cli::{self, UsageError, EXIT_CLEAN, EXIT_FOUND, EXIT_INTERNAL};
use crate::sweep::Target;
use ftsim_core::check::{check, footprint};
use ftsim_core::fingerprint::StableHasher;
use ftsim_core::hash::DEAD_IP;
use ftsim_core::ids::{Addr, FnId, ModId, OpsId, OpsOwner, ProgId, ProgKind, Tid, TracerId};
use ftsim_core::kernel::{CallSite, FnState, Kernel, Ops, TracerState};
use ftsim_core::locks::{Lock, LockClass, LockOrder};
use ftsim_core::op::{HashSel, Op};
use ftsim_core::property::{Property, Violation};
use ftsim_core::protocol::{IpmodifyOwnerCall, Protocol, SingleDirectApi};
use ftsim_core::sched::Sched;
use ftsim_core::script::{Line, Script};
use ftsim_core::seq::{Faults, Sequential};
use ftsim_core::world::World;
use std::collections::{BTreeMap, HashSet};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::io::Write;
use std::time::{Duration, Instant};

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

// ------------------------------------------------------------------------------------------
// Configuration and results
// ------------------------------------------------------------------------------------------

/// One exploration.
#[derive(Clone, Debug)]
pub struct Config {
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

impl Config {
    /// Sequential mode, one thread, symmetry on.
    pub fn new(target: Target, world: World, depth: u32) -> Config {
        Config {
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
    /// Largest frontier (states held in memory at once, two levels).
    pub frontier_peak: u64,
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

#[derive(Clone, Debug)]
pub struct Outcome {
    pub stats: Stats,
    /// One per violated property, in [`Property::ALL`] order.
    pub findings: Vec<Finding>,
    pub alphabet: Vec<Op>,
}

// ------------------------------------------------------------------------------------------
// The alphabet
// ------------------------------------------------------------------------------------------

/// Every operation a transition may run, in a fixed order (see the module docs).
pub fn alphabet(world: &World, proto: &Protocol) -> Vec<Op> {
    let mut v = Vec::new();
    for f in world.fns() {
        v.push(Op::KlpEnable(f));
        v.push(Op::KlpDisable(f));
        for kind in ProgKind::ALL {
            v.push(Op::BpfLink(kind, f));
            v.push(Op::BpfUnlink(kind, f));
        }
        v.push(Op::KprobeArm(f));
        v.push(Op::KprobeDisarm(f));
        if proto.single_direct_api != SingleDirectApi::Absent {
            v.push(Op::DirectRegister(f));
            v.push(Op::DirectModify(f));
            v.push(Op::DirectUnregister(f));
        }
    }
    for t in (0..world.tracers).map(TracerId) {
        v.push(Op::TracerRegister {
            tracer: t,
            filter: vec![],
            notrace: vec![],
        });
        for f in world.fns() {
            v.push(Op::TracerRegister {
                tracer: t,
                filter: vec![f],
                notrace: vec![],
            });
            v.push(Op::TracerRegister {
                tracer: t,
                filter: vec![],
                notrace: vec![f],
            });
        }
        for f in world.fns() {
            for which in [HashSel::Filter, HashSel::Notrace] {
                for add in [true, false] {
                    v.push(Op::TracerSet {
                        tracer: t,
                        which,
                        add,
                        func: f,
                    });
                }
            }
        }
        v.push(Op::TracerUnregister(t));
    }
    for m in 0..world.modules.len() {
        v.push(Op::ModuleLoad(ModId(m as u8)));
        v.push(Op::ModuleUnload(ModId(m as u8)));
    }
    v
}

// ------------------------------------------------------------------------------------------
// Symmetry: renamed fingerprints and the canonical key
// ------------------------------------------------------------------------------------------

/// A renaming of functions and tracers (old id -> new id), within their symmetry classes.
/// Fixed-size and `Copy`, so that trying renamings allocates nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Perm {
    n: u8,
    nt: u8,
    f: [u16; FUNCTIONS_MAX as usize],
    finv: [u16; FUNCTIONS_MAX as usize],
    t: [u8; TRACERS_MAX as usize],
    tinv: [u8; TRACERS_MAX as usize],
}

impl Perm {
    pub fn identity(functions: usize, tracers: usize) -> Perm {
        assert!(
            functions <= FUNCTIONS_MAX as usize && tracers <= TRACERS_MAX as usize,
            "[explore internal bug] world too large to rename"
        );
        let mut p = Perm {
            n: functions as u8,
            nt: tracers as u8,
            f: [0; FUNCTIONS_MAX as usize],
            finv: [0; FUNCTIONS_MAX as usize],
            t: [0; TRACERS_MAX as usize],
            tinv: [0; TRACERS_MAX as usize],
        };
        for i in 0..functions {
            p.f[i] = i as u16;
            p.finv[i] = i as u16;
        }
        for i in 0..tracers {
            p.t[i] = i as u8;
            p.tinv[i] = i as u8;
        }
        p
    }

    /// The renaming sending function `i` to `f[i]` and tracer `j` to `t[j]` (both permutations).
    pub fn new(f: Vec<u16>, t: Vec<u8>) -> Perm {
        let mut p = Perm::identity(f.len(), t.len());
        p.f[..f.len()].copy_from_slice(&f);
        p.t[..t.len()].copy_from_slice(&t);
        p.set_inverse();
        p
    }

    fn set_inverse(&mut self) {
        for old in 0..self.n as usize {
            self.finv[self.f[old] as usize] = old as u16;
        }
        for old in 0..self.nt as usize {
            self.tinv[self.t[old] as usize] = old as u8;
        }
    }

    pub fn is_identity(&self) -> bool {
        (0..self.n as usize).all(|i| self.f[i] == i as u16)
            && (0..self.nt as usize).all(|i| self.t[i] == i as u8)
    }

    /// New function ids, by old id.
    pub fn functions(&self) -> &[u16] {
        &self.f[..self.n as usize]
    }

    /// Old function ids, by new id.
    fn finv(&self) -> &[u16] {
        &self.finv[..self.n as usize]
    }

    /// Old tracer ids, by new id.
    fn tinv(&self) -> &[u8] {
        &self.tinv[..self.nt as usize]
    }

    fn fun(&self, f: FnId) -> FnId {
        FnId(self.f[f.0 as usize])
    }

    fn owner(&self, o: OpsOwner) -> OpsOwner {
        match o {
            OpsOwner::Klp(f) => OpsOwner::Klp(self.fun(f)),
            OpsOwner::Bpf(f) => OpsOwner::Bpf(self.fun(f)),
            OpsOwner::Tracer(t) => OpsOwner::Tracer(TracerId(self.t[t.0 as usize])),
            other => other,
        }
    }

    fn owner_inv(&self, o: OpsOwner) -> OpsOwner {
        match o {
            OpsOwner::Klp(f) => OpsOwner::Klp(FnId(self.finv[f.0 as usize])),
            OpsOwner::Bpf(f) => OpsOwner::Bpf(FnId(self.finv[f.0 as usize])),
            OpsOwner::Tracer(t) => OpsOwner::Tracer(TracerId(self.tinv[t.0 as usize])),
            other => other,
        }
    }

    fn slot(&self, k: &Kernel, id: OpsId) -> OpsId {
        let l = &k.info.layout;
        l.id(self.owner(l.owner(id)))
    }

    fn lock(&self, k: &Kernel, l: Lock) -> Lock {
        match l {
            Lock::Tr(f) => Lock::Tr(self.fun(f)),
            Lock::Regex(o) => Lock::Regex(self.slot(k, o)),
            other => other,
        }
    }

    /// The renamed op (for printing a path in another frame).
    pub fn op(&self, op: &Op) -> Op {
        let f = |x: &FnId| self.fun(*x);
        let t = |x: &TracerId| TracerId(self.t[x.0 as usize]);
        match op {
            Op::KlpEnable(x) => Op::KlpEnable(f(x)),
            Op::KlpDisable(x) => Op::KlpDisable(f(x)),
            Op::BpfLink(kd, x) => Op::BpfLink(*kd, f(x)),
            Op::BpfUnlink(kd, x) => Op::BpfUnlink(*kd, f(x)),
            Op::KprobeArm(x) => Op::KprobeArm(f(x)),
            Op::KprobeDisarm(x) => Op::KprobeDisarm(f(x)),
            Op::TracerRegister {
                tracer,
                filter,
                notrace,
            } => Op::TracerRegister {
                tracer: t(tracer),
                filter: filter.iter().map(f).collect(),
                notrace: notrace.iter().map(f).collect(),
            },
            Op::TracerSet {
                tracer,
                which,
                add,
                func,
            } => Op::TracerSet {
                tracer: t(tracer),
                which: *which,
                add: *add,
                func: f(func),
            },
            Op::TracerUnregister(x) => Op::TracerUnregister(t(x)),
            Op::DirectRegister(x) => Op::DirectRegister(f(x)),
            Op::DirectModify(x) => Op::DirectModify(f(x)),
            Op::DirectUnregister(x) => Op::DirectUnregister(f(x)),
            Op::ModuleLoad(m) => Op::ModuleLoad(*m),
            Op::ModuleUnload(m) => Op::ModuleUnload(*m),
        }
    }
}

/// Mirrors the serial renumbering of the core fingerprint, under a renaming.
#[derive(Default)]
struct Canon {
    progs: Vec<ProgId>,
    addrs: Vec<Addr>,
}

impl Canon {
    fn clear(&mut self) {
        self.progs.clear();
        self.addrs.clear();
    }
    fn prog(&mut self, p: ProgId) -> u64 {
        match self.progs.iter().position(|x| *x == p) {
            Some(i) => i as u64,
            None => {
                self.progs.push(p);
                self.progs.len() as u64 - 1
            }
        }
    }
    fn addr(&mut self, k: &Kernel, p: &Perm, a: Addr) -> u64 {
        match a {
            Addr::Image { tr, serial }
                if k.tr(tr)
                    .cur_image
                    .as_ref()
                    .is_some_and(|im| im.serial == serial) =>
            {
                (1 << 40) | p.fun(tr).0 as u64
            }
            Addr::Sample { f, .. } if k.fstate(f).direct_user == Some(a) => {
                (2 << 40) | p.fun(f).0 as u64
            }
            _ => {
                let i = match self.addrs.iter().position(|x| *x == a) {
                    Some(i) => i,
                    None => {
                        self.addrs.push(a);
                        self.addrs.len() - 1
                    }
                };
                let tr = match a {
                    Addr::Image { tr, .. } => p.fun(tr).0 as u64,
                    Addr::Sample { f, .. } => 0x8000 | p.fun(f).0 as u64,
                };
                (3 << 40) | (tr << 16) | i as u64
            }
        }
    }
}

/// Reusable buffers of one worker.
#[derive(Default)]
pub struct Scratch {
    canon: Canon,
    pairs: Vec<(u16, u16)>,
    entries: Vec<(u16, usize)>,
    words: Vec<u64>,
    best: Vec<u64>,
    sig_f: Vec<u64>,
    sig_t: Vec<u64>,
    acc: Vec<u64>,
    mentioned: Vec<bool>,
    pristine_f: Vec<bool>,
    pristine_t: Vec<bool>,
    order: Vec<u16>,
    torder: Vec<u8>,
    perms: Vec<Perm>,
    runs: Vec<(bool, usize, usize)>,
    run_members: Vec<u16>,
    /// Renamings tried, for statistics.
    pub renamings: u64,
    /// Transitions skipped as owner-level refusals (self-loops).
    pub skipped: u64,
}

/// Records the words a [`StableHasher`] would mix, with the same mapping of `write_*` calls to
/// words, so that derived `Hash` impls (locks, frames) contribute exactly what they contribute
/// to the core fingerprint.
struct Words<'a>(&'a mut Vec<u64>);

impl Hasher for Words<'_> {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.0
                .push(u64::from_le_bytes(w) ^ ((chunk.len() as u64) << 56));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.0.push(i as u64 | 0x100);
    }
    fn write_u16(&mut self, i: u16) {
        self.0.push(i as u64 | 0x2_0000);
    }
    fn write_u32(&mut self, i: u32) {
        self.0.push(i as u64 | 0x4_0000_0000);
    }
    fn write_u64(&mut self, i: u64) {
        self.0.push(i);
    }
    fn write_usize(&mut self, i: usize) {
        self.0.push(i as u64);
    }
}

fn push_pairs(
    out: &mut Vec<u64>,
    raw: &[(u16, u16)],
    p: &Perm,
    tag: u64,
    buf: &mut Vec<(u16, u16)>,
) {
    buf.clear();
    buf.extend(raw.iter().map(|&(ip, n)| {
        if ip == DEAD_IP {
            (ip, n)
        } else {
            (p.f[ip as usize], n)
        }
    }));
    buf.sort_unstable();
    for &(ip, n) in buf.iter() {
        out.push(ip as u64 | (n as u64) << 16 | tag << 40);
    }
}

/// The words the core fingerprint hashes for π(k), in order: the encoding of [`fingerprint`](ftsim_core::fingerprint::fingerprint)
/// with every function, tracer, ops slot, lock and address renamed by `p`. Feeding them to a
/// [`StableHasher`] gives [`fingerprint`](ftsim_core::fingerprint::fingerprint) of π(k) (for the identity: of `k`; a test checks it).
/// Only meaningful for a non-identity `p` when no thread has an operation in flight (frames are
/// encoded as they are).
pub fn encode(k: &Kernel, p: &Perm, sc: &mut Scratch, out: &mut Vec<u64>) {
    out.clear();
    let c = &mut sc.canon;
    c.clear();
    for &old in p.finv() {
        let s = &k.fns[old as usize];
        let r = &s.rec;
        out.push(
            r.present as u64
                | (r.disabled as u64) << 1
                | (r.ipmodify as u64) << 2
                | (r.direct as u64) << 3
                | (r.count as u64) << 8,
        );
        match r.site {
            CallSite::Nop => out.push(0),
            CallSite::Caller => out.push(1),
            CallSite::Direct(a) => {
                let x = c.addr(k, p, a);
                out.push(2 | x << 2)
            }
        }
        out.push(s.klp_stack as u64 | (s.klp_registered as u64) << 16 | (s.kprobes as u64) << 20);
        out.push(s.direct_user.is_some() as u64 | (s.direct_busy as u64) << 1);
        let tr = &s.tr;
        out.push(
            tr.links.len() as u64
                | (tr.flags.call_orig as u64) << 8
                | (tr.flags.orig_stack as u64) << 9
                | (tr.flags.share as u64) << 10
                | (tr.indirect_call as u64) << 11,
        );
        for (kind, pr) in &tr.links {
            let x = c.prog(*pr);
            out.push(*kind as u64 | x << 4);
        }
        match &tr.cur_image {
            None => out.push(0xdead),
            Some(im) => {
                out.push(
                    im.call_orig as u64
                        | (im.orig_stack as u64) << 1
                        | (im.progs.len() as u64) << 2,
                );
                for pr in &im.progs {
                    let x = c.prog(*pr);
                    out.push(x);
                }
            }
        }
    }
    let layout = k.info.layout;
    let ident = p.is_identity();
    for j in 0..k.ops.len() {
        let old = if ident {
            j
        } else {
            layout.id(p.owner_inv(layout.owner(OpsId(j as u16)))).0 as usize
        };
        let o = &k.ops[old];
        out.push(
            o.flags as u64
                | (o.func_set as u64) << 16
                | (o.trampoline_set as u64) << 17
                | (o.hash_of.map_or(0xffff, |x| p.slot(k, x).0) as u64) << 18,
        );
        if ident {
            for &(ip, n) in o.filter.raw() {
                out.push(ip as u64 | (n as u64) << 16 | 1 << 40);
            }
            for &(ip, n) in o.notrace.raw() {
                out.push(ip as u64 | (n as u64) << 16 | 2 << 40);
            }
        } else {
            push_pairs(out, o.filter.raw(), p, 1, &mut sc.pairs);
            push_pairs(out, o.notrace.raw(), p, 2, &mut sc.pairs);
        }
        match o.direct_call {
            None => out.push(0),
            Some(a) => {
                let x = sc.canon.addr(k, p, a);
                out.push(1 | x << 1)
            }
        }
    }
    let c = &mut sc.canon;
    out.push(0xabcd);
    for op in &k.ops_list {
        out.push(p.slot(k, *op).0 as u64);
    }
    out.push(0xbcde);
    // direct_functions is kept sorted by ip, newest first within an ip: renamed, sort stably by
    // the new ip.
    let entries = k.direct_functions.entries();
    sc.entries.clear();
    sc.entries
        .extend(entries.iter().enumerate().map(|(i, e)| (p.fun(e.ip).0, i)));
    sc.entries.sort_unstable();
    for &(ip, i) in &sc.entries {
        let x = c.addr(k, p, entries[i].addr);
        out.push(ip as u64 | x << 16);
    }
    for m in &k.modules {
        out.push(
            m.loaded as u64
                | (m.live as u64) << 1
                | (m.busy as u64) << 2
                | (m.klp_seen as u64) << 3,
        );
    }
    for &old in p.tinv() {
        out.push(k.tracers[old as usize].registered as u64);
    }
    out.push(k.kprobe_ftrace_enabled as u64);
    for (l, t) in &k.locks {
        p.lock(k, *l).hash(&mut Words(out));
        out.push(*t as u64);
    }
    for th in &k.threads {
        let mut w = Words(out);
        th.stack.hash(&mut w);
        th.pending.hash(&mut w);
        th.stuck.hash(&mut w);
    }
    if k.threads.iter().any(|th| !th.stack.is_empty()) {
        out.push(k.gen);
    }
}

/// The core fingerprint of π(k) (see [`encode`]).
pub fn fingerprint_permuted(k: &Kernel, p: &Perm) -> u128 {
    let mut sc = Scratch::default();
    let mut words = Vec::new();
    encode(k, p, &mut sc, &mut words);
    let mut h = StableHasher::default();
    for w in words {
        h.word(w);
    }
    h.finish128()
}

const SECRET: [u64; 4] = [
    0xa076_1d64_78bd_642f,
    0xe703_7ed1_a0b4_28db,
    0x8ebc_6af0_9c88_c6e3,
    0x5899_65cc_7537_4cc3,
];

#[inline]
fn mum(a: u64, b: u64) -> u64 {
    let r = (a as u128).wrapping_mul(b as u128);
    (r as u64) ^ ((r >> 64) as u64)
}

/// A fast 128-bit hash of a word sequence (two multiply-fold lanes, wyhash style, with a full
/// final mix): the deduplication key of an encoding.
pub fn hash128(words: &[u64]) -> u128 {
    let mut a = SECRET[0] ^ words.len() as u64;
    let mut b = SECRET[1];
    let mut it = words.chunks_exact(2);
    for pair in &mut it {
        let (w0, w1) = (pair[0], pair[1]);
        a = mum(w0 ^ SECRET[0], w1 ^ a ^ SECRET[1]);
        b = mum(w1 ^ b ^ SECRET[2], w0 ^ SECRET[3]);
    }
    if let [w] = it.remainder() {
        a = mum(*w ^ SECRET[0], a ^ SECRET[1]);
        b = mum(b ^ SECRET[2], *w ^ SECRET[3]);
    }
    let lo = mix(mum(a ^ SECRET[2], b ^ SECRET[3]));
    let hi = mix(mum(b ^ SECRET[0], a ^ SECRET[1]) ^ words.len() as u64);
    (hi as u128) << 64 | lo as u128
}

/// The symmetry classes of a world and its initial state.
pub struct Symmetry {
    /// Classes of interchangeable functions (built-in; one per module), each ascending.
    classes: Vec<Vec<u16>>,
    tracers: usize,
    functions: usize,
    init_fns: Vec<FnState>,
    init_ops: Vec<Ops>,
    enabled: bool,
    identity: Perm,
    /// `permutations(n)` for small n.
    orders: Vec<Vec<Vec<u8>>>,
}

#[inline]
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A cheap order-sensitive accumulation for signatures.
#[inline]
fn acc(h: u64, w: u64) -> u64 {
    mum(h ^ w ^ SECRET[0], SECRET[1] ^ w.rotate_left(29))
}

/// How an address relates to function `f`, in words that name no function.
fn rel(k: &Kernel, a: Addr, f: usize) -> u64 {
    match a {
        Addr::Image { tr, serial } => {
            let cur = k
                .tr(tr)
                .cur_image
                .as_ref()
                .is_some_and(|im| im.serial == serial);
            1 | ((tr.0 as usize == f) as u64) << 1 | (cur as u64) << 2
        }
        Addr::Sample { f: g, .. } => {
            let cur = k.fstate(g).direct_user == Some(a);
            8 | ((g.0 as usize == f) as u64) << 1 | (cur as u64) << 2
        }
    }
}

fn addr_fn(a: Addr) -> usize {
    match a {
        Addr::Image { tr, .. } => tr.0 as usize,
        Addr::Sample { f, .. } => f.0 as usize,
    }
}

impl Symmetry {
    pub fn new(world: &World, proto: Protocol, enabled: bool) -> Symmetry {
        let k0 = Kernel::new(world, proto);
        let builtin: Vec<u16> = world
            .fns()
            .filter(|f| world.module_of(*f).is_none())
            .map(|f| f.0)
            .collect();
        let mut classes = vec![builtin];
        for m in &world.modules {
            classes.push(m.iter().map(|f| f.0).collect());
        }
        classes.retain(|c| c.len() > 1);
        Symmetry {
            classes,
            tracers: world.tracers as usize,
            functions: world.functions as usize,
            init_fns: k0.fns.clone(),
            init_ops: k0.ops.clone(),
            enabled,
            identity: Perm::identity(world.functions as usize, world.tracers as usize),
            orders: (0..=6).map(permutations).collect(),
        }
    }

    /// Whether any renaming is possible at all.
    fn trivial(&self) -> bool {
        !self.enabled || (self.classes.is_empty() && self.tracers < 2)
    }

    /// The canonical key of a kernel (see the module docs): the hash of the smallest encoding
    /// over the candidate renamings.
    pub fn key(&self, k: &Kernel, sc: &mut Scratch) -> u128 {
        let quiet = k.locks.is_empty()
            && k.threads
                .iter()
                .all(|th| th.stack.is_empty() && th.pending.is_none());
        let mut best = std::mem::take(&mut sc.best);
        if self.trivial() || !quiet {
            encode(k, &self.identity, sc, &mut best);
        } else {
            self.candidates(k, sc);
            let perms = std::mem::take(&mut sc.perms);
            let mut words = std::mem::take(&mut sc.words);
            for (i, p) in perms.iter().enumerate() {
                if i == 0 {
                    encode(k, p, sc, &mut best);
                } else {
                    encode(k, p, sc, &mut words);
                    if words < best {
                        std::mem::swap(&mut words, &mut best);
                    }
                }
            }
            sc.renamings += perms.len() as u64;
            sc.words = words;
            sc.perms = perms;
        }
        let key = hash128(&best);
        sc.best = best;
        key
    }

    /// Signatures, pristine flags, and the candidate renamings (into `sc.perms`).
    fn candidates(&self, k: &Kernel, sc: &mut Scratch) {
        self.signatures(k, sc);
        let nt = self.tracers;
        // Base renaming: each class sorted by (pristine last, signature, id); runs of equal
        // signatures (members kept in `sc.run_members`) are tried in every order.
        let mut base = self.identity;
        sc.runs.clear();
        sc.run_members.clear();
        for class in &self.classes {
            sc.order.clear();
            sc.order.extend(class.iter().copied());
            let (sig, pr) = (&sc.sig_f, &sc.pristine_f);
            sc.order
                .sort_unstable_by_key(|&f| (pr[f as usize], sig[f as usize], f));
            for (j, &f) in sc.order.iter().enumerate() {
                base.f[f as usize] = class[j];
            }
            let mut j = 0;
            while j < sc.order.len() {
                let f = sc.order[j] as usize;
                let mut e = j + 1;
                while e < sc.order.len()
                    && !pr[f]
                    && !pr[sc.order[e] as usize]
                    && sig[sc.order[e] as usize] == sig[f]
                {
                    e += 1;
                }
                if e - j > 1 {
                    sc.runs.push((false, sc.run_members.len(), e - j));
                    sc.run_members.extend_from_slice(&sc.order[j..e]);
                }
                j = e;
            }
        }
        if nt > 1 {
            sc.torder.clear();
            sc.torder.extend(0..nt as u8);
            let (sig, pr) = (&sc.sig_t, &sc.pristine_t);
            sc.torder
                .sort_unstable_by_key(|&t| (pr[t as usize], sig[t as usize], t));
            for (j, &t) in sc.torder.iter().enumerate() {
                base.t[t as usize] = j as u8;
            }
            let mut j = 0;
            while j < nt {
                let t = sc.torder[j] as usize;
                let mut e = j + 1;
                while e < nt
                    && !pr[t]
                    && !pr[sc.torder[e] as usize]
                    && sig[sc.torder[e] as usize] == sig[t]
                {
                    e += 1;
                }
                if e - j > 1 {
                    sc.runs.push((true, sc.run_members.len(), e - j));
                    sc.run_members
                        .extend(sc.torder[j..e].iter().map(|&x| x as u16));
                }
                j = e;
            }
        }
        base.set_inverse();
        sc.perms.clear();
        sc.perms.push(base);
        // For each run, every order of its members over the slots the base gives them.
        for r in 0..sc.runs.len() {
            let (is_t, off, len) = sc.runs[r];
            let members = &sc.run_members[off..off + len];
            let mut slots = [0usize; FUNCTIONS_MAX as usize];
            for (i, &m) in members.iter().enumerate() {
                slots[i] = if is_t {
                    base.t[m as usize] as usize
                } else {
                    base.f[m as usize] as usize
                };
            }
            let orders = self.orders(len);
            let before = sc.perms.len();
            'grow: for pi in 0..before {
                for ord in orders.iter().skip(1) {
                    if sc.perms.len() >= PERMS_MAX {
                        break 'grow;
                    }
                    let mut q = sc.perms[pi];
                    for (i, &m) in members.iter().enumerate() {
                        if is_t {
                            q.t[m as usize] = slots[ord[i] as usize] as u8;
                        } else {
                            q.f[m as usize] = slots[ord[i] as usize] as u16;
                        }
                    }
                    q.set_inverse();
                    sc.perms.push(q);
                }
            }
        }
    }

    /// Every order of `len` items (the identity first).
    fn orders(&self, len: usize) -> std::borrow::Cow<'_, [Vec<u8>]> {
        match self.orders.get(len) {
            Some(v) => std::borrow::Cow::Borrowed(v.as_slice()),
            None => std::borrow::Cow::Owned(permutations(len)),
        }
    }

    /// Per function and tracer: a signature that names no function or tracer, and whether it
    /// is pristine (see the module docs).
    fn signatures(&self, k: &Kernel, sc: &mut Scratch) {
        let n = self.functions;
        let layout = k.info.layout;
        sc.acc.clear();
        sc.acc.resize(n, 0);
        sc.mentioned.clear();
        sc.mentioned.resize(n, false);
        // References from every ops' hashes, as order-free sums.
        for (j, o) in k.ops.iter().enumerate() {
            if o.filter.is_empty() && o.notrace.is_empty() && o.direct_call.is_none() {
                continue;
            }
            let owner = layout.owner(OpsId(j as u16));
            for (tag, raw) in [(1u64, o.filter.raw()), (2u64, o.notrace.raw())] {
                for &(ip, cnt) in raw {
                    if ip == DEAD_IP {
                        continue;
                    }
                    let f = ip as usize;
                    sc.mentioned[f] = true;
                    let who = match owner {
                        OpsOwner::Klp(g) => 100 + (g.0 as usize == f) as u64,
                        OpsOwner::Bpf(g) => 102 + (g.0 as usize == f) as u64,
                        OpsOwner::Tracer(_) => 104 + (o.flags as u64) * 8,
                        _ => j as u64,
                    };
                    sc.acc[f] = sc.acc[f].wrapping_add(mix(who | tag << 20 | (cnt as u64) << 24));
                }
            }
            if let Some(a) = o.direct_call {
                sc.mentioned[addr_fn(a)] = true;
            }
        }
        let mut prev: Option<FnId> = None;
        let mut idx = 0u64;
        for e in k.direct_functions.entries() {
            idx = if prev == Some(e.ip) { idx + 1 } else { 0 };
            prev = Some(e.ip);
            let f = e.ip.0 as usize;
            sc.mentioned[f] = true;
            sc.mentioned[addr_fn(e.addr)] = true;
            sc.acc[f] = sc.acc[f].wrapping_add(mix(0x300 | idx << 12 | rel(k, e.addr, f) << 24));
        }
        for s in &k.fns {
            if let CallSite::Direct(a) = s.rec.site {
                sc.mentioned[addr_fn(a)] = true;
            }
            if let Some(a) = s.direct_user {
                sc.mentioned[addr_fn(a)] = true;
            }
        }
        let pos = |id: OpsId| -> u64 {
            k.ops_list
                .iter()
                .position(|x| *x == id)
                .map_or(0xff, |i| i as u64)
        };
        sc.sig_f.clear();
        sc.pristine_f.clear();
        for f in 0..n {
            let s = &k.fns[f];
            let fid = FnId(f as u16);
            let klp = layout.id(OpsOwner::Klp(fid));
            let bpf = layout.id(OpsOwner::Bpf(fid));
            let pristine = !sc.mentioned[f]
                && *s == self.init_fns[f]
                && *k.op(klp) == self.init_ops[klp.0 as usize]
                && *k.op(bpf) == self.init_ops[bpf.0 as usize];
            sc.pristine_f.push(pristine);
            if pristine {
                sc.sig_f.push(0);
                continue;
            }
            let r = &s.rec;
            let mut h = acc(
                0,
                r.present as u64
                    | (r.disabled as u64) << 1
                    | (r.ipmodify as u64) << 2
                    | (r.direct as u64) << 3
                    | (r.count as u64) << 8,
            );
            h = acc(
                h,
                match r.site {
                    CallSite::Nop => 0,
                    CallSite::Caller => 1,
                    CallSite::Direct(a) => 2 | rel(k, a, f) << 2,
                },
            );
            h = acc(
                h,
                s.klp_stack as u64 | (s.klp_registered as u64) << 16 | (s.kprobes as u64) << 20,
            );
            h = acc(h, s.direct_user.map_or(0, |a| 1 | rel(k, a, f) << 1));
            let tr = &s.tr;
            h = acc(
                h,
                tr.links.len() as u64
                    | (tr.flags.call_orig as u64) << 8
                    | (tr.flags.orig_stack as u64) << 9
                    | (tr.flags.share as u64) << 10
                    | (tr.indirect_call as u64) << 11,
            );
            for (kind, _) in &tr.links {
                h = acc(h, *kind as u64);
            }
            h = acc(
                h,
                match &tr.cur_image {
                    None => 0xdead,
                    Some(im) => {
                        im.call_orig as u64
                            | (im.orig_stack as u64) << 1
                            | (im.progs.len() as u64) << 2
                    }
                },
            );
            for id in [klp, bpf] {
                let o = k.op(id);
                let hash_of = match o.hash_of {
                    None => 0,
                    Some(x) if x == id => 1,
                    Some(x) => match layout.owner(x) {
                        OpsOwner::Klp(g) | OpsOwner::Bpf(g) if g == fid => 2,
                        _ => 3, // another function's ops or a static one
                    },
                };
                h = acc(
                    h,
                    o.flags as u64
                        | (o.func_set as u64) << 16
                        | (o.trampoline_set as u64) << 17
                        | hash_of << 18
                        | (o.filter.len() as u64) << 24
                        | (o.filter.dead() as u64) << 36
                        | (o.notrace.len() as u64) << 44
                        | (o.notrace.dead() as u64) << 52,
                );
                h = acc(
                    h,
                    o.direct_call.map_or(0, |a| 1 | rel(k, a, f) << 1) | pos(id) << 8,
                );
            }
            sc.sig_f.push(h.wrapping_add(sc.acc[f]));
        }
        sc.sig_t.clear();
        sc.pristine_t.clear();
        for t in 0..self.tracers {
            let id = layout.id(OpsOwner::Tracer(TracerId(t as u8)));
            let o = k.op(id);
            sc.pristine_t
                .push(k.tracers[t] == TracerState::default() && *o == self.init_ops[id.0 as usize]);
            let mut sum = 0u64;
            for (tag, raw) in [(1u64, o.filter.raw()), (2u64, o.notrace.raw())] {
                for &(ip, cnt) in raw {
                    let who = if ip == DEAD_IP {
                        0
                    } else {
                        sc.sig_f[ip as usize] ^ (sc.pristine_f[ip as usize] as u64)
                    };
                    sum = sum.wrapping_add(mix(who ^ mix(tag << 20 | cnt as u64)));
                }
            }
            let h = acc(
                acc(
                    0,
                    k.tracers[t].registered as u64 | (o.flags as u64) << 8 | pos(id) << 24,
                ),
                sum,
            );
            sc.sig_t.push(h);
        }
    }
}

/// Every permutation of `0..n`, in lexicographic order (the identity first), at most
/// [`PERMS_MAX`].
fn permutations(n: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut cur: Vec<u8> = (0..n as u8).collect();
    while out.len() < PERMS_MAX {
        out.push(cur.clone());
        // next_permutation
        let Some(i) = (0..n.saturating_sub(1))
            .rev()
            .find(|&i| cur[i] < cur[i + 1])
        else {
            return out;
        };
        let j = (i + 1..n).rev().find(|&j| cur[j] > cur[i]).unwrap();
        cur.swap(i, j);
        cur[i + 1..].reverse();
    }
    out
}

/// The lockdep order graph as a bit mask (edge a -> b at bit 7a + b).
pub fn order_mask(o: &LockOrder) -> u64 {
    let idx = |c: LockClass| LockClass::ALL.iter().position(|x| *x == c).unwrap() as u64;
    o.edges()
        .into_iter()
        .fold(0, |m, (a, b)| m | 1 << (idx(a) * 7 + idx(b)))
}

fn combine(fp: u128, extra: &[u64]) -> u128 {
    if extra.iter().all(|&x| x == 0) {
        return fp;
    }
    let mut h = StableHasher::default();
    h.word(fp as u64);
    h.word((fp >> 64) as u64);
    for &x in extra {
        h.word(x);
    }
    h.finish128()
}

// ------------------------------------------------------------------------------------------
// The two state spaces
// ------------------------------------------------------------------------------------------

/// One successor.
struct Edge<S> {
    label: u32,
    key: u128,
    next: S,
    /// No successor may be taken from it.
    terminal: bool,
    violations: Vec<Violation>,
}

trait Space: Sync {
    type State: Clone + Send + Sync;
    fn root(&self) -> Self::State;
    fn key(&self, s: &Self::State, sc: &mut Scratch) -> u128;
    /// The successors of `s`, in a fixed order.
    fn expand(&self, s: &Self::State, sc: &mut Scratch, emit: &mut dyn FnMut(Edge<Self::State>));
    /// The properties a new state violates.
    fn check(&self, s: &Self::State) -> Vec<Violation>;
}

struct SeqSpace {
    world: World,
    proto: Protocol,
    alphabet: Vec<Op>,
    sym: Symmetry,
    /// Run the transitions predicted to be self-loops anyway and check the prediction.
    verify_skips: bool,
    faults: bool,
}

/// An operation the owner refuses before any kernel code runs, with nothing changed: a
/// transition back to the same state that raises nothing (SPEC §7 and the owner-level table of
/// `core/src/op.rs`). Only judged at quiescence (sequential mode), where no lock is held, so the
/// owner's own mutex adds no lock-order edge. `verify_skips` (the tests) checks every prediction.
fn self_loop(k: &Kernel, op: &Op) -> bool {
    match op {
        Op::KlpDisable(f) => k.fstate(*f).klp_stack == 0,
        Op::BpfUnlink(kind, f) => !k.tr(*f).links.iter().any(|(x, _)| x == kind),
        Op::KprobeDisarm(f) => k.fstate(*f).kprobes == 0,
        Op::TracerRegister { tracer, .. } => k.tracers[tracer.0 as usize].registered,
        Op::TracerUnregister(t) => !k.tracers[t.0 as usize].registered,
        Op::DirectRegister(f) => k.fstate(*f).direct_user.is_some(),
        Op::DirectModify(f) | Op::DirectUnregister(f) => k.fstate(*f).direct_user.is_none(),
        Op::ModuleLoad(m) => {
            let st = k.modules[m.0 as usize];
            st.loaded || st.busy
        }
        Op::ModuleUnload(m) => {
            let st = k.modules[m.0 as usize];
            st.busy || !st.loaded
        }
        _ => false,
    }
}

/// A state of the sequential mode: the driver, with its key and lock-order mask cached.
#[derive(Clone)]
struct SeqState {
    s: Sequential,
    key: u128,
    mask: u64,
}

/// A single fault: the `idx`-th allocation (kind 0), image build (1) or trylock (2) fails.
fn fault(kind: u32, idx: u32) -> Faults {
    let mut f = Faults::NONE;
    match kind {
        0 => f.allocs = 1 << idx,
        1 => f.builds = 1 << idx,
        _ => f.trylocks = 1 << idx,
    }
    f
}

/// The label of a transition: the operation's index, and its fault (kind + 1, index).
fn seq_label(op: usize, f: Faults) -> u32 {
    let (kind, bits) = if f.allocs != 0 {
        (1, f.allocs)
    } else if f.builds != 0 {
        (2, f.builds)
    } else if f.trylocks != 0 {
        (3, f.trylocks)
    } else {
        (0, 0)
    };
    op as u32 | kind << 16 | bits.trailing_zeros().min(31) << 20
}

fn seq_label_parts(l: u32) -> (usize, Faults) {
    let op = (l & 0xffff) as usize;
    let idx = (l >> 20) & 0x1f;
    let f = match (l >> 16) & 0xf {
        1 => fault(0, idx),
        2 => fault(1, idx),
        3 => fault(2, idx),
        _ => Faults::NONE,
    };
    (op, f)
}

impl SeqSpace {
    fn key_of(&self, s: &Sequential, mask: u64, sc: &mut Scratch) -> u128 {
        combine(self.sym.key(&s.k, sc), &[mask, s.stuck as u64])
    }

    /// Runs operation `i` with `faults` from `st` and emits the edge. With a fault: false (and
    /// nothing emitted) when the operation never reached the faulted decision.
    fn transition(
        &self,
        st: &SeqState,
        i: usize,
        faults: Faults,
        sc: &mut Scratch,
        emit: &mut dyn FnMut(Edge<SeqState>),
    ) -> bool {
        let s = &st.s;
        let op = &self.alphabet[i];
        let mut c = s.clone();
        let out = c.run(op, faults);
        if !faults.is_none() {
            let hit = if faults.trylocks != 0 {
                out.contended
            } else {
                out.faulted
            };
            if !hit {
                return false;
            }
        }
        let mut violations = out.violations;
        let mask = order_mask(&c.order);
        // A failed operation that left the kernel as it was (a refusal) leads back to this
        // state, and has an unchanged atomicity footprint; otherwise the footprint is compared
        // as `Sequential::apply` does.
        let unchanged = !out.stuck && out.result.is_err() && c.k == s.k;
        if !out.stuck && out.result.is_err() && !unchanged {
            if let Some(v) = footprint(&s.k).compare(&footprint(&c.k), &op.to_string()) {
                violations.push(v);
            }
        }
        let key = if unchanged && mask == st.mask {
            st.key
        } else {
            self.key_of(&c, mask, sc)
        };
        emit(Edge {
            label: seq_label(i, faults),
            key,
            terminal: out.stuck,
            next: SeqState { s: c, key, mask },
            violations,
        });
        true
    }
}

impl Space for SeqSpace {
    type State = SeqState;

    fn root(&self) -> SeqState {
        let mut s = Sequential::new(&self.world, self.proto);
        s.check_atomicity = false;
        let mask = order_mask(&s.order);
        let key = self.key_of(&s, mask, &mut Scratch::default());
        SeqState { s, key, mask }
    }

    fn key(&self, s: &SeqState, _sc: &mut Scratch) -> u128 {
        s.key
    }

    fn expand(&self, st: &SeqState, sc: &mut Scratch, emit: &mut dyn FnMut(Edge<SeqState>)) {
        let s = &st.s;
        if s.stuck {
            return;
        }
        for (i, op) in self.alphabet.iter().enumerate() {
            if self_loop(&s.k, op) {
                sc.skipped += 1;
                if self.verify_skips {
                    let mut c = s.clone();
                    let out = c.run(op, Faults::NONE);
                    let mask = order_mask(&c.order);
                    assert!(
                        out.result.is_err()
                            && out.violations.is_empty()
                            && !out.stuck
                            && mask == st.mask
                            && self.key_of(&c, mask, sc) == st.key,
                        "[explore internal bug] `{op}` was predicted to be refused without effect, \
                         but it returned {:?}, raised {:?} or changed the state",
                        out.result,
                        out.violations
                    );
                }
                continue;
            }
            self.transition(st, i, Faults::NONE, sc, emit);
            if !self.faults {
                continue;
            }
            // Each single fault, in decision order, while the operation reaches that decision.
            for kind in 0..3 {
                for idx in 0..FAULT_INDEX_MAX {
                    let f = fault(kind, idx);
                    if !self.transition(st, i, f, sc, emit) {
                        break;
                    }
                }
            }
        }
    }

    fn check(&self, s: &SeqState) -> Vec<Violation> {
        if s.s.stuck {
            Vec::new()
        } else {
            check(&s.s.k)
        }
    }
}

/// A state of the interleaving mode.
#[derive(Clone)]
struct Inter {
    s: Sched,
    started: u8,
}

const START: u32 = 1 << 31;

fn label_start(t: Tid, op: usize) -> u32 {
    START | (t as u32) << 16 | op as u32
}

fn label_step(t: Tid) -> u32 {
    t as u32
}

struct InterSpace {
    world: World,
    proto: Protocol,
    alphabet: Vec<Op>,
    sym: Symmetry,
    depth: u32,
}

impl InterSpace {
    fn step(&self, s: &Inter, t: Tid, start: Option<usize>) -> (Inter, Vec<Violation>) {
        let mut c = s.clone();
        c.s.findings.clear();
        if let Some(i) = start {
            c.s.push(t, self.alphabet[i].clone(), Faults::NONE);
            c.started += 1;
        }
        c.s.step(t);
        for lane in &mut c.s.lanes {
            lane.done.clear();
        }
        let v = std::mem::take(&mut c.s.findings);
        (c, v)
    }
}

impl Space for InterSpace {
    type State = Inter;

    fn root(&self) -> Inter {
        let mut s = Sched::new(&self.world, self.proto, INTERLEAVE_THREADS);
        s.check_at_quiescence = false;
        // The oracle's abstract picture depends on the path, and is not part of the key: the
        // explorer judges the core's properties only (availability is the oracle's, judged by
        // the sweep and the proptest state machine).
        s.oracle = None;
        Inter { s, started: 0 }
    }

    fn key(&self, st: &Inter, sc: &mut Scratch) -> u128 {
        let k = &st.s.k;
        let quiet = k.quiescent();
        // In-flight frames may hold a copy of the change counter (the rinse-and-repeat
        // accounting compares it after an unlocked callback), which the core fingerprint leaves
        // out; records touched but not yet written back are left out too.
        let gen = if !quiet && self.proto.ipmodify_owner_call == IpmodifyOwnerCall::UnlockAndRetry {
            k.gen
        } else {
            0
        };
        let dirty = k
            .dirty
            .iter()
            .fold(0u64, |m, f| m.wrapping_mul(31).wrapping_add(f.0 as u64 + 1));
        let stuck =
            st.s.lanes
                .iter()
                .enumerate()
                .fold(0u64, |m, (i, l)| m | (l.stuck as u64) << i);
        combine(
            self.sym.key(k, sc),
            &[
                order_mask(&st.s.order),
                st.started as u64 + 1,
                gen,
                dirty,
                stuck,
            ],
        )
    }

    fn expand(&self, st: &Inter, sc: &mut Scratch, emit: &mut dyn FnMut(Edge<Inter>)) {
        let n = st.s.lanes.len() as Tid;
        for t in 0..n {
            if st.s.k.busy(t) && st.s.can_step(t) {
                let (c, violations) = self.step(st, t, None);
                let key = self.key(&c, sc);
                emit(Edge {
                    label: label_step(t),
                    key,
                    next: c,
                    terminal: false,
                    violations,
                });
            }
        }
        if (st.started as u32) < self.depth {
            let idle = (0..n).find(|&t| !st.s.k.busy(t) && !st.s.lanes[t as usize].stuck);
            if let Some(t) = idle {
                for i in 0..self.alphabet.len() {
                    let (c, violations) = self.step(st, t, Some(i));
                    let key = self.key(&c, sc);
                    emit(Edge {
                        label: label_start(t, i),
                        key,
                        next: c,
                        terminal: false,
                        violations,
                    });
                }
            }
        }
    }

    fn check(&self, st: &Inter) -> Vec<Violation> {
        let s = &st.s;
        let mut v = Vec::new();
        if s.k.quiescent() {
            v = check(&s.k);
        }
        let n = s.lanes.len() as Tid;
        let waiting = (0..n).any(|t| s.k.busy(t) && !s.lanes[t as usize].stuck);
        let can = (0..n).any(|t| s.k.busy(t) && s.can_step(t));
        if waiting && !can {
            let mut c = s.clone();
            if let Some(d) = c.detect_deadlock() {
                v.push(d);
            }
        }
        v
    }
}

// ------------------------------------------------------------------------------------------
// The breadth-first engine
// ------------------------------------------------------------------------------------------

/// Keys are already uniform 128-bit hashes: use their low bits.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ b as u64;
        }
    }
    fn write_u128(&mut self, i: u128) {
        self.0 = i as u64;
    }
}

type KeySet = HashSet<u128, BuildHasherDefault<KeyHasher>>;

/// Properties as bits, in [`Property::ALL`] order.
type Props = u16;

fn bit(p: Property) -> Props {
    1 << Property::ALL.iter().position(|x| *x == p).unwrap()
}

/// The property bits of `vs`; the violations of properties not in `have` move to `first`
/// (one per property), and join `have`.
fn props_of(vs: Vec<Violation>, have: &mut Props, first: &mut Vec<Violation>) -> Props {
    let mut m = 0;
    for v in vs {
        let b = bit(v.property);
        m |= b;
        if *have & b == 0 {
            *have |= b;
            first.push(v);
        }
    }
    m
}

/// One result of a worker, in generation order. Violations are kept only for the first
/// occurrence of a property in the chunk (no later one can be the first of the level).
struct Rec<S> {
    parent: u32,
    label: u32,
    /// Properties raised by the transition.
    props: Props,
    /// Present when the transition leads to a state new to this chunk.
    new: Option<New<S>>,
    /// The violations of `props` and `new.props` seen first here.
    first: Vec<Violation>,
}

struct New<S> {
    key: u128,
    /// Boxed: most records of the last level carry none, and should stay small.
    state: Option<Box<S>>,
    terminal: bool,
    /// Properties the new state violates.
    props: Props,
}

/// The first hit of a property: where it was found.
struct Hit {
    parent: u32,
    label: u32,
    depth: usize,
    violation: Violation,
    states: u64,
    transitions: u64,
}

struct Search {
    links: Vec<(u32, u32)>,
    keys: KeySet,
    hits: BTreeMap<Property, Hit>,
    found: Props,
    stats: Stats,
}

impl Search {
    fn note(
        &mut self,
        parent: u32,
        label: u32,
        depth: usize,
        props: Props,
        first: &[Violation],
        state: bool,
    ) {
        if props == 0 {
            return;
        }
        for (i, p) in Property::ALL.iter().enumerate() {
            if props & 1 << i == 0 {
                continue;
            }
            if self.found & 1 << i == 0 {
                let v = first
                    .iter()
                    .find(|v| v.property == *p)
                    .expect("[explore internal bug] the first violation of a property was dropped");
                self.found |= 1 << i;
                self.hits.insert(
                    *p,
                    Hit {
                        parent,
                        label,
                        depth,
                        violation: v.clone(),
                        states: 0,
                        transitions: 0,
                    },
                );
            }
            let h = self.hits.get_mut(p).unwrap();
            if state {
                h.states += 1;
            } else {
                h.transitions += 1;
            }
        }
    }

    fn path(&self, mut i: u32) -> Vec<u32> {
        let mut v = Vec::new();
        while i != 0 {
            let (p, l) = self.links[i as usize];
            v.push(l);
            i = p;
        }
        v.reverse();
        v
    }

    fn store_bytes(&self) -> u64 {
        (self.keys.capacity() * (std::mem::size_of::<u128>() + 1)
            + self.links.capacity() * std::mem::size_of::<(u32, u32)>()) as u64
    }
}

/// What a worker hands back for its chunk.
struct Chunk<S> {
    recs: Vec<Rec<S>>,
    explored: u64,
    skipped: u64,
    renamings: u64,
}

fn expand_chunk<P: Space>(
    space: &P,
    chunk: &[(u32, P::State)],
    keys: &KeySet,
    found: Props,
    keep: bool,
) -> Chunk<P::State> {
    let mut sc = Scratch::default();
    let mut local: KeySet = KeySet::default();
    let mut recs = Vec::new();
    let mut explored = 0;
    let mut have = found;
    for (parent, s) in chunk {
        space.expand(s, &mut sc, &mut |e: Edge<P::State>| {
            explored += 1;
            let mut first = Vec::new();
            let props = props_of(e.violations, &mut have, &mut first);
            if keys.contains(&e.key) || !local.insert(e.key) {
                if props != 0 {
                    recs.push(Rec {
                        parent: *parent,
                        label: e.label,
                        props,
                        new: None,
                        first,
                    });
                }
                return;
            }
            let sprops = props_of(space.check(&e.next), &mut have, &mut first);
            recs.push(Rec {
                parent: *parent,
                label: e.label,
                props,
                new: Some(New {
                    key: e.key,
                    state: (keep && !e.terminal).then(|| Box::new(e.next)),
                    terminal: e.terminal,
                    props: sprops,
                }),
                first,
            });
        });
    }
    Chunk {
        recs,
        explored,
        skipped: sc.skipped,
        renamings: sc.renamings,
    }
}

/// One level on one thread: the same decisions as [`expand_chunk`] followed by the merge, made
/// in place (no records, one key lookup per transition).
fn expand_inline<P: Space>(
    space: &P,
    frontier: &[(u32, P::State)],
    search: &mut Search,
    keep: bool,
    depth: usize,
    next: &mut Vec<(u32, P::State)>,
) -> u64 {
    let mut sc = Scratch::default();
    let mut new = 0u64;
    let mut first = Vec::new();
    for (parent, s) in frontier {
        space.expand(s, &mut sc, &mut |e: Edge<P::State>| {
            search.stats.explored += 1;
            first.clear();
            let mut have = search.found;
            let props = props_of(e.violations, &mut have, &mut first);
            search.note(*parent, e.label, depth, props, &first, false);
            if !search.keys.insert(e.key) {
                return;
            }
            let idx = search.links.len() as u32;
            search.links.push((*parent, e.label));
            new += 1;
            search.stats.terminal += e.terminal as u64;
            first.clear();
            let mut have = search.found;
            let sprops = props_of(space.check(&e.next), &mut have, &mut first);
            search.note(*parent, e.label, depth, sprops, &first, true);
            if keep && !e.terminal {
                next.push((idx, e.next));
            }
        });
    }
    search.stats.skipped += sc.skipped;
    search.stats.renamings += sc.renamings;
    new
}

fn bfs<P: Space>(space: &P, cfg: &Config, max_levels: u32) -> Search {
    let start = Instant::now();
    let cpu0 = cpu_seconds();
    let mut sc = Scratch::default();
    let root = space.root();
    let mut search = Search {
        links: vec![(u32::MAX, 0)],
        keys: KeySet::default(),
        hits: BTreeMap::new(),
        found: 0,
        stats: Stats::default(),
    };
    search.keys.insert(space.key(&root, &mut sc));
    let mut first = Vec::new();
    let props = props_of(space.check(&root), &mut 0, &mut first);
    search.note(u32::MAX, 0, 0, props, &first, true);
    search.stats.levels.push(Level {
        expanded: 0,
        new: 1,
    });
    let mut frontier: Vec<(u32, P::State)> = vec![(0, root)];
    let threads = cfg.threads.max(1);
    let mut level = 0u32;
    while !frontier.is_empty() && level < max_levels {
        level += 1;
        let depth = level as usize;
        // The last level's states are checked but never expanded: do not keep them.
        let keep = level < max_levels;
        if threads == 1 {
            let expanded = frontier.len() as u64;
            let mut next = Vec::new();
            let new = expand_inline(space, &frontier, &mut search, keep, depth, &mut next);
            drop(frontier);
            frontier = next;
            if finish_level(
                &mut search,
                expanded,
                new,
                frontier.len(),
                cfg,
                level,
                max_levels,
            ) {
                break;
            }
            continue;
        }
        let keys = &search.keys;
        let found = search.found;
        let chunks: Vec<Chunk<P::State>> = if frontier.len() < 2 {
            vec![expand_chunk(space, &frontier, keys, found, keep)]
        } else {
            // Small chunks handed out in order balance the load; merging them in index order
            // keeps the result independent of the number of threads.
            let size = frontier.len().div_ceil(threads * 8).max(1);
            let parts: Vec<&[(u32, P::State)]> = frontier.chunks(size).collect();
            let next = std::sync::atomic::AtomicUsize::new(0);
            let slots: Vec<std::sync::Mutex<Option<Chunk<P::State>>>> =
                parts.iter().map(|_| std::sync::Mutex::new(None)).collect();
            std::thread::scope(|s| {
                for _ in 0..threads {
                    s.spawn(|| loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= parts.len() {
                            break;
                        }
                        let c = expand_chunk(space, parts[i], keys, found, keep);
                        *slots[i].lock().unwrap() = Some(c);
                    });
                }
            });
            slots
                .into_iter()
                .map(|m| m.into_inner().unwrap().unwrap())
                .collect()
        };
        let expanded = frontier.len() as u64;
        drop(frontier);
        let mut next: Vec<(u32, P::State)> = Vec::new();
        let mut new = 0u64;
        for c in chunks {
            search.stats.explored += c.explored;
            search.stats.skipped += c.skipped;
            search.stats.renamings += c.renamings;
            for r in c.recs {
                search.note(r.parent, r.label, depth, r.props, &r.first, false);
                let Some(n) = r.new else { continue };
                if !search.keys.insert(n.key) {
                    continue; // found first by an earlier chunk of this level
                }
                let idx = search.links.len() as u32;
                search.links.push((r.parent, r.label));
                new += 1;
                search.stats.terminal += n.terminal as u64;
                search.note(r.parent, r.label, depth, n.props, &r.first, true);
                if let Some(s) = n.state {
                    next.push((idx, *s));
                }
            }
        }
        frontier = next;
        if finish_level(
            &mut search,
            expanded,
            new,
            frontier.len(),
            cfg,
            level,
            max_levels,
        ) {
            break;
        }
    }
    search.stats.distinct = search.links.len() as u64;
    search.stats.elapsed = start.elapsed();
    search.stats.cpu_s = match (cpu0, cpu_seconds()) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    search.stats.peak_rss_bytes = peak_rss_bytes();
    search
}

/// User plus system CPU time of the process so far, from `/proc/self/stat` (Linux).
pub fn cpu_seconds() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may contain spaces).
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Records a finished level; true when the search must stop (`states_max`).
fn finish_level(
    search: &mut Search,
    expanded: u64,
    new: u64,
    next: usize,
    cfg: &Config,
    level: u32,
    max_levels: u32,
) -> bool {
    search.stats.levels.push(Level { expanded, new });
    search.stats.frontier_peak = search.stats.frontier_peak.max(expanded + next as u64);
    search.stats.store_bytes = search.stats.store_bytes.max(search.store_bytes());
    if search.links.len() as u64 >= cfg.states_max {
        search.stats.truncated = next > 0 && level < max_levels;
        return true;
    }
    false
}

/// `VmHWM` from `/proc/self/status`, in bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

// ------------------------------------------------------------------------------------------
// Running an exploration
// ------------------------------------------------------------------------------------------

/// Runs the exploration described by `cfg`.
pub fn explore(cfg: &Config) -> Outcome {
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
        let space = SeqSpace {
            world: cfg.world.clone(),
            proto,
            alphabet: alphabet.clone(),
            sym,
            verify_skips: cfg.verify_skips,
            faults: cfg.faults,
        };
        bfs(&space, cfg, cfg.depth)
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
    Outcome {
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

// ------------------------------------------------------------------------------------------
// Command line
// ------------------------------------------------------------------------------------------

/// `ftsim explore` arguments.
#[derive(clap::Args, Debug)]
pub struct ExploreArgs {
    /// A preset name or a protocol file (default: every preset).
    #[arg(long = "protocol", value_name = "NAME|FILE")]
    pub protocols: Vec<String>,
    /// Override a switch (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Operations per sequence (sequential) or operations started (interleaving).
    #[arg(long)]
    pub depth: u32,
    /// Functions in the world.
    #[arg(long, default_value_t = 2)]
    pub functions: u16,
    /// Tracers in the world.
    #[arg(long, default_value_t = 1)]
    pub tracers: u8,
    /// Put the last M functions in module m0 (adds module-load/unload to the alphabet).
    #[arg(long, default_value_t = 0, value_name = "M")]
    pub module: u16,
    /// Worker threads (results do not depend on it).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Also branch on the step order of up to two in-flight operations.
    #[arg(long)]
    pub interleave: bool,
    /// Do not reduce by symmetry between interchangeable functions and tracers.
    #[arg(long)]
    pub no_symmetry: bool,
    /// Stop after this many distinct states (the result says it is incomplete).
    #[arg(long, default_value_t = STATES_MAX_DEFAULT)]
    pub states_max: u64,
    /// Write each counterexample to DIR/PROTOCOL--PROPERTY.txt.
    #[arg(short = 'o', long = "out", value_name = "DIR")]
    pub out: Option<std::path::PathBuf>,
    /// One JSON object per line: findings, then a summary per protocol.
    #[arg(long)]
    pub json: bool,
    /// Also run the transitions skipped as owner-level refusals and check they change nothing.
    #[arg(long, hide = true)]
    pub verify_skips: bool,
    /// Sequential mode: also run every operation with each single injected fault (a failing
    /// allocation, image build or trylock).
    #[arg(long)]
    pub faults: bool,
}

/// Runs `ftsim explore`.
pub fn run(a: &ExploreArgs) -> Result<i32, UsageError> {
    if a.depth == 0 || a.depth > DEPTH_MAX {
        return Err(UsageError(format!(
            "--depth must be between 1 and {DEPTH_MAX}, found {}",
            a.depth
        )));
    }
    if a.threads == 0 || a.threads > 1024 {
        return Err(UsageError(format!(
            "--threads must be between 1 and 1024, found {}",
            a.threads
        )));
    }
    let world = world(a.functions, a.tracers, a.module).map_err(UsageError)?;
    if a.faults && a.interleave {
        return Err(UsageError(
            "--faults applies to the sequential mode only (not with --interleave)".into(),
        ));
    }
    let targets: Vec<Target> = cli::targets(&a.protocols, &a.sets)?;
    if let Some(dir) = &a.out {
        std::fs::create_dir_all(dir)
            .map_err(|e| UsageError(format!("cannot create {}: {e}", dir.display())))?;
    }
    let mut found = false;
    let mut bad = false;
    let mut o = std::io::stdout().lock();
    for t in targets {
        let cfg = Config {
            target: t.clone(),
            world: world.clone(),
            depth: a.depth,
            threads: a.threads,
            interleave: a.interleave,
            symmetry: !a.no_symmetry,
            states_max: a.states_max,
            verify_skips: a.verify_skips,
            faults: a.faults,
        };
        let out = explore(&cfg);
        let mut files = Vec::new();
        for f in &out.findings {
            let file = match &a.out {
                Some(dir) => {
                    let name = format!(
                        "{}--{}.txt",
                        t.name.replace(['/', '+', ',', '=', ' '], "_"),
                        f.property.id()
                    );
                    let path = dir.join(name);
                    std::fs::write(&path, f.script.to_string())
                        .map_err(|e| UsageError(format!("cannot write {}: {e}", path.display())))?;
                    Some(path)
                }
                None => None,
            };
            files.push(file);
        }
        found |= !out.findings.is_empty();
        bad |= out.findings.iter().any(|f| !f.reproduces);
        if a.json {
            print_json(&mut o, &cfg, &out, &files);
        } else {
            print_text(&mut o, &cfg, &out, &files);
        }
    }
    if bad {
        eprintln!("ftsim: internal error: a counterexample does not replay (a bug in ftsim)");
        return Ok(EXIT_INTERNAL);
    }
    Ok(if found { EXIT_FOUND } else { EXIT_CLEAN })
}

fn mode(cfg: &Config) -> &'static str {
    if cfg.interleave {
        "interleaving"
    } else {
        "sequential"
    }
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

/// The summary lines (also used by the report).
pub fn summary(cfg: &Config, out: &Outcome) -> String {
    let s = &out.stats;
    let _ = cfg;
    let mut t = format!(
        "{} states explored ({} self-loops skipped), {} distinct{} in {:.2}s: {:.0} distinct/s, {:.0} explored/s",
        s.explored,
        s.skipped,
        s.distinct,
        if s.truncated {
            " (stopped at --states-max: INCOMPLETE)"
        } else {
            ""
        },
        s.elapsed.as_secs_f64(),
        s.distinct_per_s(),
        s.explored_per_s(),
    );
    if let Some(cpu) = s.cpu_s.filter(|c| *c > 0.0) {
        t.push_str(&format!(
            "\nCPU {:.2}s: {:.0} distinct per CPU-second",
            cpu,
            s.distinct as f64 / cpu
        ));
    }
    match s.peak_rss_bytes {
        Some(b) => t.push_str(&format!(
            "\npeak memory {:.1} MiB (VmHWM), {:.0} B per distinct state; dedup store {:.1} B per state; largest frontier {} states",
            mib(b),
            s.rss_per_state().unwrap_or(0.0),
            s.store_per_state(),
            s.frontier_peak
        )),
        None => t.push_str(&format!(
            "\npeak memory unknown; dedup store {:.1} B per state; largest frontier {} states",
            s.store_per_state(),
            s.frontier_peak
        )),
    }
    t
}

fn print_text(
    o: &mut impl Write,
    cfg: &Config,
    out: &Outcome,
    files: &[Option<std::path::PathBuf>],
) {
    let _ = writeln!(
        o,
        "ftsim explore: protocol={} {} depth={} mode={}{} symmetry={} threads={} alphabet={} ops",
        cfg.target.name,
        cfg.world,
        cfg.depth,
        mode(cfg),
        if cfg.faults { " faults=single" } else { "" },
        if cfg.symmetry { "on" } else { "off" },
        cfg.threads,
        out.alphabet.len()
    );
    let levels: Vec<String> = out.stats.levels.iter().map(|l| l.new.to_string()).collect();
    let _ = writeln!(
        o,
        "  new states per level ({}): {}",
        if cfg.interleave {
            "steps"
        } else {
            "operations"
        },
        levels.join(" ")
    );
    for line in summary(cfg, out).lines() {
        let _ = writeln!(o, "  {line}");
    }
    if out.findings.is_empty() {
        let _ = writeln!(o, "  no property violated within the bound");
    }
    for (f, file) in out.findings.iter().zip(files) {
        let _ = writeln!(
            o,
            "  == {} at depth {} ({} states, {} transitions){}",
            f.property,
            f.depth,
            f.states,
            f.transitions,
            if f.reproduces {
                ""
            } else {
                "  [DOES NOT REPLAY: internal error]"
            }
        );
        let _ = writeln!(o, "     {}", f.violation);
        for line in body_lines(&f.script) {
            let _ = writeln!(o, "     {line}");
        }
        if let Some(p) = file {
            let _ = writeln!(o, "     replay: ftsim replay {}", p.display());
        }
    }
    let _ = writeln!(o);
}

/// The operation and schedule lines of a script (without the header).
pub fn body_lines(s: &Script) -> Vec<String> {
    s.to_string()
        .lines()
        .filter(|l| {
            !l.starts_with('#')
                && !l.starts_with("protocol")
                && !l.starts_with("world")
                && !l.starts_with("set ")
                && !l.starts_with("expect")
        })
        .map(str::to_string)
        .collect()
}

fn print_json(
    o: &mut impl Write,
    cfg: &Config,
    out: &Outcome,
    files: &[Option<std::path::PathBuf>],
) {
    for (f, file) in out.findings.iter().zip(files) {
        let v = serde_json::json!({
            "kind": "finding",
            "protocol": cfg.target.name,
            "mode": mode(cfg),
            "property": f.property.id(),
            "class": f.property.class(),
            "function": f.violation.func.map(|x| x.to_string()),
            "detail": f.violation.detail,
            "depth": f.depth,
            "states": f.states,
            "transitions": f.transitions,
            "reproduces": f.reproduces,
            "reproducer": f.script.to_string(),
            "file": file.as_ref().map(|p| p.display().to_string()),
        });
        let _ = writeln!(o, "{v}");
    }
    let s = &out.stats;
    let v = serde_json::json!({
        "kind": "summary",
        "protocol": cfg.target.name,
        "mode": mode(cfg),
        "world": cfg.world.to_string(),
        "depth": cfg.depth,
        "symmetry": cfg.symmetry,
        "faults": cfg.faults,
        "threads": cfg.threads,
        "alphabet": out.alphabet.len(),
        "explored": s.explored,
        "distinct": s.distinct,
        "levels": s.levels.iter().map(|l| l.new).collect::<Vec<_>>(),
        "truncated": s.truncated,
        "elapsed_s": s.elapsed.as_secs_f64(),
        "distinct_per_s": s.distinct_per_s(),
        "explored_per_s": s.explored_per_s(),
        "peak_rss_bytes": s.peak_rss_bytes,
        "store_bytes_per_state": s.store_per_state(),
        "frontier_peak": s.frontier_peak,
        "skipped": s.skipped,
        "renamings": s.renamings,
        "cpu_s": s.cpu_s,
        "findings": out.findings.len(),
    });
    let _ = writeln!(o, "{v}");
}
