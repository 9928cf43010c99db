//! Exhaustive exploration throughput (prints figures; not a timed test).
//!
//! `cargo bench -p ftsim-sim --bench explore`
//!
//! 1. Issue 14's configuration (merged, 3 functions, 1 tracer, no module, sequential, depth 5,
//!    one core), with and without symmetry reduction: distinct states per second (wall and
//!    CPU), peak memory per distinct state (the deduplication store and the frontier as the
//!    explorer counts them, each at its largest, and the process's peak RSS), and the same
//!    model checked by a
//!    [stateright] breadth-first search in the same run, with the ratios. Both must count the
//!    same distinct states (asserted).
//! 2. The same exploration with two worker threads (`--threads 2`) and its speed-up.
//! 3. Every preset, one core, symmetry on.
//! 4. The cost of each piece of a transition on a sample of reachable states: cloning the
//!    driver, running an operation, the core fingerprint, the symmetric key, the property check.
//! 5. Interleaving mode, merged, 2 functions.
//!
//! Each search of 1-3 runs in a child process of its own (this binary again, with
//! `FTSIM_BENCH_CHILD` set), so that its peak RSS (`VmHWM`) and CPU time are its own.
//!
//! The stateright model is ftsim's own sequential space ([`SeqSpace`]): a state is the
//! explorer's state (the `Sequential` driver with its key), hashed and compared by the
//! explorer's key (so the symmetric key when symmetry is on, and stateright's fingerprint is a
//! hash of it), an action is an operation of the alphabet that [`SeqSpace::enabled`] allows,
//! the next state is [`SeqSpace::step`] (the explorer's own transition: the driver clone, the
//! operation, the key), and one `always` property runs the explorer's property check. Two
//! differences favour stateright: it checks properties only on the states it expands (not on
//! the last level, which holds most states), and it keeps no parent links (its paths live in
//! its queue). A `sometimes` property that never holds keeps it from stopping early once the
//! `always` property has a counterexample. stateright runs on one thread: its parallel search
//! is not level-synchronous, so the depth at which it first meets a state, and with it the
//! count at a depth bound, may differ from a breadth-first one.
//!
//! Environment: `FTSIM_BENCH_DEPTH` overrides the sequential depth (default 5);
//! `FTSIM_BENCH_FUNCTIONS` and `FTSIM_BENCH_TRACERS` the world of section 4 (default 3 and 1).
//! `FTSIM_BENCH_ONLY=issue` runs sections 1 and 2 only, `FTSIM_BENCH_ONLY=costs` section 4 only
//! (where the symmetric key is measured both ways: one full encoding per candidate renaming, and
//! from per-function parts).
//!
//! [stateright]: https://docs.rs/stateright

use ftsim_core::fingerprint::fingerprint;
use ftsim_core::protocol::{Protocol, PRESETS};
use ftsim_drive::check::check;
use ftsim_drive::seq::{Faults, Sequential};
use ftsim_sim::explore::{
    self, alphabet, cpu_seconds, peak_rss_bytes, ExploreConfig, Scratch, SeqSpace, SeqState, Space,
    Symmetry,
};
use ftsim_sim::sweep::Target;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::cell::RefCell;
use std::hash::{Hash, Hasher};
use std::hint::black_box;
use std::time::Instant;

const CHILD: &str = "FTSIM_BENCH_CHILD";

fn target(name: &str) -> Target {
    Target {
        name: name.to_string(),
        proto: Protocol::preset(name).unwrap(),
        args: format!("--protocol {name}"),
    }
}

fn config(preset: &str, symmetry: bool, threads: usize, depth: u32) -> ExploreConfig {
    let world = explore::world(3, 1, 0).unwrap();
    let mut cfg = ExploreConfig::new(target(preset), world, depth);
    cfg.symmetry = symmetry;
    cfg.threads = threads;
    cfg
}

/// The stateright model over the explorer's own sequential space.
struct Model {
    space: SeqSpace,
}

#[derive(Clone)]
struct State(SeqState);

impl Hash for State {
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write_u128(self.0.key());
    }
}

impl PartialEq for State {
    fn eq(&self, o: &State) -> bool {
        self.0.key() == o.0.key()
    }
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "state {:032x}", self.0.key())
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

impl stateright::Model for Model {
    type State = State;
    type Action = usize;

    fn init_states(&self) -> Vec<State> {
        vec![State(self.space.root())]
    }

    fn actions(&self, s: &State, actions: &mut Vec<usize>) {
        actions.extend(self.space.enabled(&s.0));
    }

    fn next_state(&self, s: &State, i: usize) -> Option<State> {
        SCRATCH.with(|sc| Some(State(self.space.step(&s.0, i, &mut sc.borrow_mut()))))
    }

    fn properties(&self) -> Vec<stateright::Property<Self>> {
        vec![
            stateright::Property::always("check", |m: &Model, s: &State| {
                m.space.check(&s.0).is_empty()
            }),
            stateright::Property::sometimes("never", |_: &Model, _: &State| false),
        ]
    }
}

/// What one search measured.
#[derive(Clone, Copy, Default)]
struct Run {
    distinct: u64,
    explored: u64,
    wall_s: f64,
    cpu_s: f64,
    rss: u64,
    /// The explorer's deduplication store at its largest, bytes (0 for stateright).
    store: u64,
    /// The explorer's largest frontier, states (0 for stateright).
    frontier: u64,
    /// The explorer's frontier at its largest, bytes (0 for stateright).
    frontier_bytes: u64,
}

impl Run {
    fn print(&self) -> String {
        format!(
            "RESULT {} {} {} {} {} {} {} {}",
            self.distinct,
            self.explored,
            self.wall_s,
            self.cpu_s,
            self.rss,
            self.store,
            self.frontier,
            self.frontier_bytes
        )
    }

    fn parse(line: &str) -> Option<Run> {
        let f: Vec<&str> = line.strip_prefix("RESULT ")?.split(' ').collect();
        Some(Run {
            distinct: f.first()?.parse().ok()?,
            explored: f.get(1)?.parse().ok()?,
            wall_s: f.get(2)?.parse().ok()?,
            cpu_s: f.get(3)?.parse().ok()?,
            rss: f.get(4)?.parse().ok()?,
            store: f.get(5)?.parse().ok()?,
            frontier: f.get(6)?.parse().ok()?,
            frontier_bytes: f.get(7)?.parse().ok()?,
        })
    }

    fn per_cpu_s(&self) -> f64 {
        self.distinct as f64 / self.cpu_s.max(1e-9)
    }

    fn per_s(&self) -> f64 {
        self.distinct as f64 / self.wall_s.max(1e-9)
    }

    fn line(&self, name: &str) {
        let d = self.distinct.max(1) as f64;
        let store = if self.store > 0 {
            format!(
                "  store {:>4.1} + frontier {:>4.1} = {:>4.1} B/state",
                self.store as f64 / d,
                self.frontier_bytes as f64 / d,
                (self.store + self.frontier_bytes) as f64 / d
            )
        } else {
            String::new()
        };
        let frontier = if self.frontier > 0 {
            format!("  frontier {} states", self.frontier)
        } else {
            String::new()
        };
        println!(
            "  {name:<24} {:>8} distinct {:>8} explored  {:>6.2} s wall {:>6.2} CPU-s  {:>8.0} distinct/s {:>8.0} per CPU-s ({:>5.2} us CPU/state)  peak RSS {:>7.1} MiB = {:>5.0} B/state{store}{frontier}",
            self.distinct,
            self.explored,
            self.wall_s,
            self.cpu_s,
            self.per_s(),
            self.per_cpu_s(),
            self.cpu_s / d * 1e6,
            self.rss as f64 / 1048576.0,
            self.rss as f64 / d,
        );
    }
}

/// In a child: runs the search `spec` names ("ftsim|stateright PRESET SYMMETRY THREADS DEPTH")
/// and prints its [`Run`].
fn child(spec: &str) {
    let f: Vec<&str> = spec.split(' ').collect();
    let cfg = config(
        f[1],
        f[2] == "1",
        f[3].parse().unwrap(),
        f[4].parse().unwrap(),
    );
    let run = if f[0] == "ftsim" {
        let s = explore::explore(&cfg).stats;
        Run {
            distinct: s.distinct,
            explored: s.explored,
            wall_s: s.elapsed.as_secs_f64(),
            cpu_s: s.cpu_s.unwrap_or(0.0),
            rss: s.peak_rss_bytes.unwrap_or(0),
            store: s.store_bytes,
            frontier: s.frontier_peak,
            frontier_bytes: s.frontier_bytes,
        }
    } else {
        use stateright::{Checker, Model as _};
        let cpu0 = cpu_seconds().unwrap_or(0.0);
        let t = Instant::now();
        let c = Model {
            space: SeqSpace::new(&cfg),
        }
        .checker()
        .threads(cfg.threads)
        // stateright's initial state has depth 1, and a state at the target depth is
        // generated (and counted) but not expanded.
        .target_max_depth(cfg.depth as usize + 1)
        .spawn_bfs()
        .join();
        Run {
            distinct: c.unique_state_count() as u64,
            explored: c.state_count() as u64,
            wall_s: t.elapsed().as_secs_f64(),
            cpu_s: cpu_seconds().unwrap_or(0.0) - cpu0,
            rss: peak_rss_bytes().unwrap_or(0),
            store: 0,
            frontier: 0,
            frontier_bytes: 0,
        }
    };
    println!("{}", run.print());
}

/// Runs `spec` (see [`child`]) in a child process.
fn spawn(spec: &str) -> Run {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .env(CHILD, spec)
        .output()
        .expect("cannot run the bench binary again");
    let stdout = String::from_utf8_lossy(&out.stdout);
    match stdout.lines().find_map(Run::parse) {
        Some(r) if out.status.success() => r,
        _ => panic!(
            "the child `{spec}` failed ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

fn issue_configuration(depth: u32) -> [Run; 2] {
    let world = explore::world(3, 1, 0).unwrap();
    println!("issue 14: merged, {world}, sequential, depth {depth}, one core:");
    let mut one = [Run::default(); 2];
    for (i, sym) in [true, false].into_iter().enumerate() {
        let on = if sym { "on" } else { "off" };
        println!(" symmetry {on}:");
        let ft = spawn(&format!("ftsim merged {} 1 {depth}", sym as u8));
        ft.line("ftsim explore");
        let sr = spawn(&format!("stateright merged {} 1 {depth}", sym as u8));
        sr.line("stateright BFS");
        assert_eq!(
            ft.distinct, sr.distinct,
            "ftsim and stateright count different distinct states (symmetry {on})"
        );
        println!(
            "  ratio: ftsim is {:.2}x stateright in CPU time per state ({:.2}x in wall time), and uses {:.3}x its peak RSS",
            sr.cpu_s / ft.cpu_s.max(1e-9),
            sr.wall_s / ft.wall_s.max(1e-9),
            ft.rss as f64 / sr.rss.max(1) as f64,
        );
        one[i] = ft;
    }
    one
}

fn two_threads(depth: u32, one: [Run; 2]) {
    let world = explore::world(3, 1, 0).unwrap();
    println!("issue 14: merged, {world}, sequential, depth {depth}, --threads 2:");
    for (i, sym) in [true, false].into_iter().enumerate() {
        let on = if sym { "on" } else { "off" };
        let r = spawn(&format!("ftsim merged {} 2 {depth}", sym as u8));
        r.line(&format!("ftsim, symmetry {on}"));
        assert_eq!(r.distinct, one[i].distinct, "--threads 2 changed the count");
        println!(
            "  speed-up over one thread: {:.2}x in wall time",
            one[i].wall_s / r.wall_s.max(1e-9)
        );
    }
}

fn per_ns(label: &str, n: usize, t: Instant) {
    println!(
        "    {label:<44} {:>8.0} ns",
        t.elapsed().as_nanos() as f64 / n as f64
    );
}

fn breakdown(name: &str) {
    let proto = Protocol::preset(name).unwrap();
    let env = |name: &str, default: u16| {
        std::env::var(name)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    let (functions, tracers) = (
        env("FTSIM_BENCH_FUNCTIONS", 3),
        env("FTSIM_BENCH_TRACERS", 1),
    );
    let world = explore::world(functions, tracers as u8, 0).unwrap();
    let ops = alphabet(&world, &proto);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    // A sample of reachable states: random walks of up to 5 operations.
    let mut states = Vec::new();
    while states.len() < 2000 {
        let mut s = Sequential::new(&world, proto);
        s.check_atomicity = false;
        for _ in 0..rng.random_range(0..6) {
            let op = &ops[rng.random_range(0..ops.len())];
            s.run(op, Faults::NONE);
        }
        if !s.stuck {
            states.push(s);
        }
    }
    let n = states.len();
    let reps = 20;
    println!("  cost per state ({name}, {world}, {n} sampled states, mean over {reps} rounds):");
    let t = Instant::now();
    for _ in 0..reps {
        for s in &states {
            black_box(s.clone());
        }
    }
    per_ns("clone the driver (Sequential)", n * reps, t);
    let t = Instant::now();
    let mut runs = 0;
    for _ in 0..reps / 4 {
        for (i, s) in states.iter().enumerate() {
            let mut c = s.clone();
            black_box(c.run(&ops[i % ops.len()], Faults::NONE));
            runs += 1;
        }
    }
    per_ns("clone + run one operation", runs, t);
    let t = Instant::now();
    for _ in 0..reps {
        for s in &states {
            black_box(fingerprint(&s.k, s.threads()));
        }
    }
    per_ns("core fingerprint", n * reps, t);
    // The key both ways, in alternating rounds (so that a change in the machine's load
    // weighs on both alike).
    let syms = [false, true].map(|parts| Symmetry::new(&world, proto, true).with_parts(parts));
    let mut scs = [Scratch::default(), Scratch::default()];
    let mut took = [std::time::Duration::ZERO; 2];
    for _ in 0..reps {
        for i in 0..2 {
            let t = Instant::now();
            for s in &states {
                black_box(syms[i].key(&s.k, s.threads(), &mut scs[i]));
            }
            took[i] += t.elapsed();
        }
    }
    for (i, label) in [
        "symmetric key, one full encoding per renaming",
        "symmetric key, from per-function parts",
    ]
    .iter()
    .enumerate()
    {
        println!(
            "    {label:<44} {:>8.0} ns",
            took[i].as_nanos() as f64 / (n * reps) as f64
        );
    }
    let sc = &scs[1];
    println!(
        "      (parts where there are 2+ candidates and no part names another function: {:.0}% of the keys; {:.2} renamings per key)",
        100.0 * sc.keys_from_parts as f64 / sc.keys as f64,
        sc.renamings as f64 / sc.keys as f64
    );
    let t = Instant::now();
    for _ in 0..reps {
        for s in &states {
            black_box(s.order.edges());
        }
    }
    per_ns("lock-order edges (LockOrder::edges)", n * reps, t);
    let t = Instant::now();
    for _ in 0..reps {
        for s in &states {
            black_box(check(&s.k));
        }
    }
    per_ns("property check (check)", n * reps, t);
    println!(
        "    size_of Kernel {} B, Sequential {} B (plus heap: functions, ops, threads)",
        std::mem::size_of::<ftsim_core::Kernel>(),
        std::mem::size_of::<Sequential>()
    );
}

fn main() {
    if let Ok(spec) = std::env::var(CHILD) {
        child(&spec);
        return;
    }
    let depth: u32 = std::env::var("FTSIM_BENCH_DEPTH")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    println!(
        "(the machine may be shared: CPU seconds per state are the steadier figure; each search runs in its own process)"
    );
    if std::env::var("FTSIM_BENCH_ONLY").as_deref() == Ok("costs") {
        breakdown("merged");
        return;
    }
    let one = issue_configuration(depth);
    two_threads(depth, one);
    if std::env::var("FTSIM_BENCH_ONLY").as_deref() == Ok("issue") {
        return;
    }
    let world = explore::world(3, 1, 0).unwrap();
    println!("sequential, {world}, depth {depth}, one core, symmetry on, every preset:");
    for (name, _) in PRESETS {
        spawn(&format!("ftsim {name} 1 1 {depth}")).line(name);
    }
    breakdown("merged");
    let w2 = explore::world(2, 1, 0).unwrap();
    println!("interleaving, {w2}, depth 2, one core:");
    let mut cfg = ExploreConfig::new(target("merged"), w2, 2);
    cfg.interleave = true;
    let s = explore::explore(&cfg).stats;
    println!(
        "  merged {} distinct {} explored {:.2} s wall {:.2} CPU-s",
        s.distinct,
        s.explored,
        s.elapsed.as_secs_f64(),
        s.cpu_s.unwrap_or(0.0)
    );
}
