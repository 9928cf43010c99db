//! The seeded discrete-event simulator.
//!
//! One `u64` seed derives everything through `ChaCha8Rng`, one sub-stream per purpose (swarm
//! options, world, scheduler, faults, and one per actor), so adding an actor does not shift
//! another's choices. Per seed, *swarm* selection switches whole kinds of actors and faults on or
//! off and picks the scheduling policy. Actors issue owner-level operations at simulated times;
//! the operations run as the core's steps on the core's concurrent executor ([`Sched`]), which
//! the scheduler drives one step at a time. Every decision is recorded, so a run is replayable
//! from its seed, and the run up to any finding is a reproducer [`Script`].

use ftsim_core::fingerprint::StableHasher;
use ftsim_core::ids::{FnId, ModId, ProgKind, Tid, TracerId};
use ftsim_core::op::{HashSel, Op};
use ftsim_core::property::Violation;
use ftsim_core::protocol::Protocol;
use ftsim_core::step::EventKind;
use ftsim_core::world::World;
use ftsim_drive::checked::{CheckedRun, Round};
use ftsim_drive::decide::Decider;
use ftsim_drive::sched::StepOutcome;
use ftsim_drive::script::{Line, Script};
use ftsim_drive::seq::Faults;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::fmt::{self, Write as _};

/// Default simulated events (scheduling steps) per seed.
pub const EVENTS_DEFAULT: u64 = 200;
/// Most events per seed the command line accepts.
pub const EVENTS_MAX: u64 = 10_000_000;
/// Extra steps a run may take after its budget to let in-flight operations finish.
pub const DRAIN_STEPS_MAX: u64 = 10_000;

/// Sub-stream ids: one generator per purpose.
mod stream {
    pub const SWARM: u64 = 1;
    pub const WORLD: u64 = 2;
    pub const SCHED: u64 = 3;
    pub const FAULTS: u64 = 4;
    pub const ACTOR0: u64 = 100;
}

fn rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream);
    r
}

/// The kinds of actors (SPEC §7's owners).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ActorKind {
    Livepatch,
    Bpf,
    Kprobe,
    Tracer,
    Direct,
    Modules,
}

impl ActorKind {
    pub const ALL: [ActorKind; 6] = [
        ActorKind::Livepatch,
        ActorKind::Bpf,
        ActorKind::Kprobe,
        ActorKind::Tracer,
        ActorKind::Direct,
        ActorKind::Modules,
    ];
    pub fn name(self) -> &'static str {
        match self {
            ActorKind::Livepatch => "livepatch",
            ActorKind::Bpf => "bpf",
            ActorKind::Kprobe => "kprobe",
            ActorKind::Tracer => "tracer",
            ActorKind::Direct => "direct",
            ActorKind::Modules => "modules",
        }
    }
}

/// How the scheduler picks the next thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchedPolicy {
    /// Uniformly among the runnable threads.
    Random,
    /// PCT: random thread priorities, the highest runnable runs; at a few random points of the
    /// whole run (`--events`) the running thread drops to the lowest priority. The executor keeps
    /// every schedule weakly fair for sleepers ([`ftsim_drive::sched::SLEEP_STEPS_MAX`]).
    Pct { change_points: u8 },
}

/// Everything a seed derives before the run starts (printed first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    pub world: World,
    /// Actors, by kind, in thread order.
    pub actors: Vec<ActorKind>,
    pub policy: SchedPolicy,
    /// Largest think time between two operations of one actor, in steps.
    pub think_max: u32,
    /// Per-decision failure probabilities, in 1/1000.
    pub alloc_fail_permille: u32,
    pub build_fail_permille: u32,
    pub trylock_busy_permille: u32,
}

impl fmt::Display for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let actors: Vec<&str> = self.actors.iter().map(|a| a.name()).collect();
        let policy = match self.policy {
            SchedPolicy::Random => "random".to_string(),
            SchedPolicy::Pct { change_points } => format!("pct/{change_points}"),
        };
        write!(
            f,
            "{} actors={} scheduler={policy} think_max={} faults: alloc={}‰ build={}‰ trylock-busy={}‰",
            self.world,
            actors.join(","),
            self.think_max,
            self.alloc_fail_permille,
            self.build_fail_permille,
            self.trylock_busy_permille
        )
    }
}

/// The swarm: whole kinds of actors and faults on or off, world shape and scheduler, per seed.
pub fn derive_options(seed: u64) -> Options {
    let mut w = rng(seed, stream::WORLD);
    let functions = w.random_range(1..=4u16);
    let mut world = World::new(functions);
    if functions > 1 && w.random_bool(0.5) {
        world = world.with_module(&[functions - 1]);
    }
    let mut r = rng(seed, stream::SWARM);
    let mut kinds: Vec<ActorKind> = ActorKind::ALL
        .into_iter()
        .filter(|_| r.random_bool(0.6))
        .collect();
    if world.modules.is_empty() {
        kinds.retain(|k| *k != ActorKind::Modules);
    }
    if kinds.is_empty() {
        kinds.push(ActorKind::ALL[r.random_range(0..ActorKind::ALL.len() - 1)]);
    }
    let mut actors = Vec::new();
    for k in kinds {
        let n = match k {
            ActorKind::Bpf | ActorKind::Tracer | ActorKind::Livepatch => r.random_range(1..=2),
            _ => 1,
        };
        actors.extend(std::iter::repeat_n(k, n));
    }
    world.tracers = actors
        .iter()
        .filter(|a| **a == ActorKind::Tracer)
        .count()
        .max(1) as u8;
    let policy = if r.random_bool(0.5) {
        SchedPolicy::Random
    } else {
        SchedPolicy::Pct {
            change_points: r.random_range(0..=3),
        }
    };
    let think_max = [0, 4, 32][r.random_range(0..3)];
    let alloc_fail_permille = if r.random_bool(0.25) { 30 } else { 0 };
    let build_fail_permille = if r.random_bool(0.25) { 30 } else { 0 };
    let trylock_busy_permille = if r.random_bool(0.25) { 300 } else { 0 };
    Options {
        world,
        actors,
        policy,
        think_max,
        alloc_fail_permille,
        build_fail_permille,
        trylock_busy_permille,
    }
}

/// One actor: its kind, its own generator, and what it holds (so that removals target holdings).
#[derive(Clone, Debug)]
struct Actor {
    kind: ActorKind,
    rng: ChaCha8Rng,
    /// Index among actors of the same kind (tracers own tracer `t{index}`).
    index: u8,
    held: Vec<Op>,
    next_issue: u64,
}

fn pick<T: Copy>(r: &mut ChaCha8Rng, xs: &[T]) -> T {
    xs[r.random_range(0..xs.len())]
}

impl Actor {
    /// The actors of `kinds`, in thread order: each its own sub-stream, tracers numbered by
    /// kind (`t{index}`).
    fn all(seed: u64, kinds: &[ActorKind]) -> Vec<Actor> {
        let mut counts = [0u8; 6];
        kinds
            .iter()
            .enumerate()
            .map(|(i, &kind)| {
                let ki = ActorKind::ALL.iter().position(|k| *k == kind).unwrap();
                let index = counts[ki];
                counts[ki] += 1;
                Actor {
                    kind,
                    rng: rng(seed, stream::ACTOR0 + i as u64),
                    index,
                    held: Vec::new(),
                    next_issue: 0,
                }
            })
            .collect()
    }

    /// The next operation: add something (weight 1) or take back something it holds (weight 1),
    /// arguments uniform over the world.
    fn next_op(&mut self, w: &World) -> Op {
        let r = &mut self.rng;
        let f = FnId(r.random_range(0..w.functions));
        let remove = !self.held.is_empty() && r.random_bool(0.5);
        let held = |r: &mut ChaCha8Rng, held: &Vec<Op>| held[r.random_range(0..held.len())].clone();
        match self.kind {
            ActorKind::Livepatch => match remove {
                true => match held(r, &self.held) {
                    Op::KlpEnable(g) => Op::KlpDisable(g),
                    _ => unreachable!(),
                },
                false => Op::KlpEnable(f),
            },
            ActorKind::Bpf => match remove {
                true => match held(r, &self.held) {
                    Op::BpfLink(k, g) => Op::BpfUnlink(k, g),
                    _ => unreachable!(),
                },
                false => Op::BpfLink(pick(r, &ProgKind::ALL), f),
            },
            ActorKind::Kprobe => match remove {
                true => match held(r, &self.held) {
                    Op::KprobeArm(g) => Op::KprobeDisarm(g),
                    _ => unreachable!(),
                },
                false => Op::KprobeArm(f),
            },
            ActorKind::Direct => match (remove, r.random_range(0..3)) {
                (true, 0) => match held(r, &self.held) {
                    Op::DirectRegister(g) => Op::DirectModify(g),
                    _ => unreachable!(),
                },
                (true, _) => match held(r, &self.held) {
                    Op::DirectRegister(g) => Op::DirectUnregister(g),
                    _ => unreachable!(),
                },
                (false, _) => Op::DirectRegister(f),
            },
            ActorKind::Modules => {
                let m = ModId(r.random_range(0..w.modules.len()) as u8);
                if self.held.contains(&Op::ModuleLoad(m)) {
                    Op::ModuleUnload(m)
                } else {
                    Op::ModuleLoad(m)
                }
            }
            ActorKind::Tracer => {
                let t = TracerId(self.index);
                let registered = !self.held.is_empty();
                let set = |r: &mut ChaCha8Rng, p: f64| -> Vec<FnId> {
                    w.fns().filter(|_| r.random_bool(p)).collect()
                };
                if !registered {
                    return Op::TracerRegister {
                        tracer: t,
                        filter: set(r, 0.4),
                        notrace: set(r, 0.15),
                    };
                }
                match r.random_range(0..6) {
                    0 => Op::TracerUnregister(t),
                    1 | 2 => Op::TracerSet {
                        tracer: t,
                        which: HashSel::Filter,
                        add: true,
                        func: f,
                    },
                    3 => Op::TracerSet {
                        tracer: t,
                        which: HashSel::Filter,
                        add: false,
                        func: f,
                    },
                    4 => Op::TracerSet {
                        tracer: t,
                        which: HashSel::Notrace,
                        add: true,
                        func: f,
                    },
                    _ => Op::TracerSet {
                        tracer: t,
                        which: HashSel::Notrace,
                        add: false,
                        func: f,
                    },
                }
            }
        }
    }

    /// Updates holdings after an operation finished.
    fn finished(&mut self, op: &Op, ok: bool) {
        if !ok {
            return;
        }
        let undo = |held: &mut Vec<Op>, target: &Op| {
            if let Some(i) = held.iter().position(|h| h == target) {
                held.remove(i);
            }
        };
        match op {
            Op::KlpEnable(_)
            | Op::BpfLink(..)
            | Op::KprobeArm(_)
            | Op::DirectRegister(_)
            | Op::ModuleLoad(_) => self.held.push(op.clone()),
            Op::TracerRegister { .. } => self.held.push(op.clone()),
            Op::TracerUnregister(_) => self.held.clear(),
            Op::KlpDisable(f) => undo(&mut self.held, &Op::KlpEnable(*f)),
            Op::BpfUnlink(k, f) => undo(&mut self.held, &Op::BpfLink(*k, *f)),
            Op::KprobeDisarm(f) => undo(&mut self.held, &Op::KprobeArm(*f)),
            Op::DirectUnregister(f) => undo(&mut self.held, &Op::DirectRegister(*f)),
            Op::ModuleUnload(m) => undo(&mut self.held, &Op::ModuleLoad(*m)),
            _ => {}
        }
    }
}

/// One finding of a run: the violation and the step at which it first appeared.
#[derive(Clone, Debug)]
pub struct Found {
    pub violation: Violation,
    pub step: u64,
    /// The run up to this finding, replayable.
    pub script: Script,
}

/// A finished run.
#[derive(Clone, Debug)]
pub struct Run {
    pub seed: u64,
    pub options: Options,
    pub found: Vec<Found>,
    /// Scheduling steps taken.
    pub events: u64,
    /// Operations completed.
    pub ops: u64,
    /// A hash of every decision and every event of the run (the determinism self-check).
    pub digest: u128,
    /// The timeline, when asked for.
    pub trace: Option<String>,
}

/// Runs one seed.
pub fn run_seed(proto: Protocol, seed: u64, events: u64, trace: bool) -> Run {
    let options = derive_options(seed);
    let mut sim = Sim::new(proto, seed, options, events, trace);
    sim.run(events);
    sim.finish()
}

struct Sim {
    proto: Protocol,
    seed: u64,
    options: Options,
    sched: CheckedRun,
    actors: Vec<Actor>,
    policy: PolicyDecider,
    fault_rng: ChaCha8Rng,
    time: u64,
    lines: Vec<Line>,
    schedule: Vec<Tid>,
    found: Vec<Found>,
    digest: StableHasher,
    trace: Option<String>,
    ops_done: u64,
}

impl Sim {
    fn new(proto: Protocol, seed: u64, options: Options, events: u64, trace: bool) -> Sim {
        let mut sched = CheckedRun::new(&options.world, proto, options.actors.len());
        if trace {
            sched.k.trace = Some(Vec::new());
        }
        let actors = Actor::all(seed, &options.actors);
        let mut sched_rng = rng(seed, stream::SCHED);
        let n = options.actors.len();
        let priorities: Vec<u32> = (0..n).map(|_| sched_rng.random_range(1000..2000)).collect();
        // Change points anywhere in the run, so a long run does not end in strict priority.
        let change_at = match options.policy {
            SchedPolicy::Pct { change_points } => (0..change_points)
                .map(|_| sched_rng.random_range(0..events.max(1)))
                .collect(),
            SchedPolicy::Random => Vec::new(),
        };
        let policy = options.policy;
        let mut s = Sim {
            proto,
            seed,
            options,
            sched,
            actors,
            policy: PolicyDecider {
                policy,
                rng: sched_rng,
                priorities,
                change_at,
                time: 0,
            },
            fault_rng: rng(seed, stream::FAULTS),
            time: 0,
            lines: Vec::new(),
            schedule: Vec::new(),
            found: Vec::new(),
            digest: StableHasher::default(),
            trace: trace.then(String::new),
            ops_done: 0,
        };
        if let Some(t) = s.trace.as_mut() {
            let _ = writeln!(t, "seed={} protocol={} {}", seed, proto, s.options);
        }
        s
    }

    fn faults(&mut self) -> Faults {
        let o = &self.options;
        let mut f = Faults::NONE;
        for (mask, p) in [
            (&mut f.allocs, o.alloc_fail_permille),
            (&mut f.builds, o.build_fail_permille),
            (&mut f.trylocks, o.trylock_busy_permille),
        ] {
            if p == 0 {
                continue;
            }
            for i in 0..8 {
                if self.fault_rng.random_range(0..1000) < p {
                    *mask |= 1 << i;
                }
            }
        }
        f
    }

    /// Idle actors whose time has come queue their next operation.
    fn issue(&mut self) {
        for i in 0..self.actors.len() {
            let t = i as Tid;
            if self.sched.threads.busy(t)
                || !self.sched.lanes[i].queue.is_empty()
                || self.actors[i].next_issue > self.time
            {
                continue;
            }
            let op = self.actors[i].next_op(&self.options.world);
            let faults = self.faults();
            self.digest.word(0x1000 + i as u64);
            self.digest.write_str_stable(&op.to_string());
            self.sched.push(t, op.clone(), faults);
            self.lines.push(Line { tid: t, op, faults });
        }
    }

    fn run(&mut self, events: u64) {
        let budget = events;
        loop {
            let draining = self.sched.steps >= budget;
            if draining
                && (!self.sched.unfinished() || self.sched.steps >= budget + DRAIN_STEPS_MAX)
            {
                break;
            }
            if !draining {
                self.issue();
            }
            let before = self.sched.findings.len();
            self.policy.time = self.time;
            let (t, out) = match self.sched.round(&mut self.policy) {
                Round::Stepped { t, out, .. } => (t, out),
                Round::Stalled => {
                    self.collect(before);
                    break; // every remaining thread waits forever
                }
                Round::Idle if draining => break,
                Round::Idle => {
                    // Nothing to do until the next actor wakes up.
                    let next = self
                        .actors
                        .iter()
                        .map(|a| a.next_issue)
                        .min()
                        .unwrap_or(self.time + 1);
                    self.time = next.max(self.time + 1);
                    continue;
                }
            };
            self.schedule.push(t);
            self.digest.word(0x2000 + t as u64);
            self.time += 1;
            if let Some(tr) = self.trace.as_mut() {
                render_step(tr, &mut self.sched, self.time, t);
            }
            if let StepOutcome::Finished(c) = out {
                self.ops_done += 1;
                self.digest.word(match c.result {
                    Ok(()) => 0x3000,
                    Err(e) => 0x3000 + e.value() as u64,
                });
                let a = &mut self.actors[t as usize];
                a.finished(&c.op, c.result.is_ok());
                let think = if self.options.think_max == 0 {
                    0
                } else {
                    a.rng.random_range(0..=self.options.think_max)
                };
                a.next_issue = self.time + think as u64;
            }
            self.collect(before);
        }
    }

    /// Records the findings that appeared since `before`, each with the run so far as its script.
    fn collect(&mut self, before: usize) {
        let new: Vec<Violation> = self.sched.findings[before..].to_vec();
        for v in new {
            self.digest.write_str_stable(&v.to_string());
            if let Some(tr) = self.trace.as_mut() {
                let _ = writeln!(tr, "{:>6}  !! {v}", self.time);
            }
            let script = Script {
                proto: self.proto,
                world: self.options.world.clone(),
                expect: vec![v.property],
                lines: self.lines.clone(),
                schedule: Some(self.schedule.clone()),
            };
            self.found.push(Found {
                violation: v,
                step: self.sched.steps,
                script,
            });
        }
    }

    fn finish(self) -> Run {
        Run {
            seed: self.seed,
            options: self.options,
            found: self.found,
            events: self.sched.steps,
            ops: self.ops_done,
            digest: self.digest.finish128(),
            trace: self.trace,
        }
    }
}

/// The simulator's scheduling policy as a decider: which runnable thread steps (faults are
/// drawn per operation into its fault plan, [`Sim::faults`]).
struct PolicyDecider {
    policy: SchedPolicy,
    rng: ChaCha8Rng,
    /// PCT: the threads' priorities, and the times at which the running one's drops.
    priorities: Vec<u32>,
    change_at: Vec<u64>,
    /// The simulated time of the step being decided.
    time: u64,
}

impl Decider for PolicyDecider {
    fn pick(&mut self, runnable: &[Tid], _ready: &dyn Fn(Tid) -> bool) -> Tid {
        match self.policy {
            SchedPolicy::Random => runnable[self.rng.random_range(0..runnable.len())],
            SchedPolicy::Pct { .. } => {
                let best = *runnable
                    .iter()
                    .max_by_key(|&&t| (self.priorities[t as usize], t))
                    .unwrap();
                if self.change_at.contains(&self.time) {
                    self.priorities[best as usize] = self.rng.random_range(0..1000);
                }
                best
            }
        }
    }
}

trait WriteStable {
    fn write_str_stable(&mut self, s: &str);
}

impl WriteStable for StableHasher {
    fn write_str_stable(&mut self, s: &str) {
        std::hash::Hasher::write(self, s.as_bytes());
    }
}

/// Appends the timeline line of one step.
fn render_step(out: &mut String, sched: &mut CheckedRun, time: u64, t: Tid) {
    let events: Vec<EventKind> = sched
        .k
        .trace
        .as_mut()
        .map(std::mem::take)
        .unwrap_or_default()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    let held: Vec<_> = sched.k.held_by(t).collect();
    crate::trace::line(out, &sched.k.info.layout, time, t, &events, &held, &[]);
}

/// Most redraws of one actor's operation that a sequential driver refused.
pub const REDRAWS_MAX: u32 = 16;

/// A random sequential script drawn by the simulator's own actors (the same generic generators
/// and swarm as [`run_seed`]), for drivers that run one operation at a time, such as the
/// real-kernel campaign. The swarm is [`derive_options`] of `seed` without modules and without
/// the actor kinds outside `kinds`. Each step a uniformly chosen actor draws its next
/// operation; `allowed` refuses what the driver cannot perform in the model's current state (the
/// actor draws again, at most [`REDRAWS_MAX`] times, then passes). Holdings follow the model's
/// results, as in the simulator.
pub fn sequential_ops(
    proto: Protocol,
    seed: u64,
    kinds: &[ActorKind],
    ops: usize,
    allowed: impl Fn(&ftsim_core::kernel::Kernel, &Op) -> bool,
) -> (World, Vec<Op>) {
    let options = derive_options(seed);
    let mut world = options.world.clone();
    world.modules.clear();
    let mut chosen: Vec<ActorKind> = options
        .actors
        .iter()
        .copied()
        .filter(|k| kinds.contains(k))
        .collect();
    if chosen.is_empty() {
        chosen.push(kinds[(seed % kinds.len() as u64) as usize]);
    }
    world.tracers = chosen
        .iter()
        .filter(|a| **a == ActorKind::Tracer)
        .count()
        .max(1) as u8;
    let mut actors = Actor::all(seed, &chosen);
    let mut pick_rng = rng(seed, stream::SCHED);
    let mut s = ftsim_drive::seq::Sequential::new(&world, proto);
    s.check_atomicity = false;
    let mut out = Vec::new();
    let mut passes = 0;
    while out.len() < ops && passes <= ops * 4 {
        let a = pick_rng.random_range(0..actors.len());
        let mut op = None;
        for _ in 0..REDRAWS_MAX {
            let o = actors[a].next_op(&world);
            if allowed(&s.k, &o) {
                op = Some(o);
                break;
            }
        }
        let Some(op) = op else {
            passes += 1;
            continue;
        };
        let r = s.run(&op, Faults::NONE);
        actors[a].finished(&op, r.result.is_ok());
        out.push(op);
        if r.stuck {
            break;
        }
    }
    (world, out)
}
