//! Exhaustive exploration throughput (prints figures; not a timed test).
//!
//! `cargo bench -p ftsim-sim --bench explore`
//!
//! 1. Sequential mode on a 3-function world (one tracer, no module), one core, per preset: states
//!    explored (transitions) and distinct states per second, peak memory and memory per state.
//! 2. The same with two worker threads (`--threads 2`), for merged.
//! 3. The cost of each piece of a transition on a sample of reachable states: cloning the
//!    driver, running an operation, the core fingerprint, the symmetric key, the property check.
//! 4. Interleaving mode, merged, 2 functions.
//!
//! `FTSIM_BENCH_DEPTH` overrides the sequential depth (default 5).

use ftsim_core::check::check;
use ftsim_core::fingerprint::fingerprint;
use ftsim_core::protocol::{Protocol, PRESETS};
use ftsim_core::seq::{Faults, Sequential};
use ftsim_sim::explore::{self, alphabet, Config, Scratch, Symmetry};
use ftsim_sim::sweep::Target;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::hint::black_box;
use std::time::Instant;

fn target(name: &str) -> Target {
    Target {
        name: name.to_string(),
        proto: Protocol::preset(name).unwrap(),
        args: format!("--protocol {name}"),
    }
}

fn line(name: &str, out: &explore::Outcome) {
    let s = &out.stats;
    let cpu = s.cpu_s.unwrap_or(0.0).max(1e-9);
    println!(
        "  {name:<18} {:>9} distinct {:>10} explored {:>6.2}s  {:>9.0} distinct/s ({:>7.0} per CPU-s) {:>9.0} explored/s  peak {:>7.1} MiB  {:>5.0} B/state (RSS)  {:>4.1} B/state (store)",
        s.distinct,
        s.explored,
        s.elapsed.as_secs_f64(),
        s.distinct_per_s(),
        s.distinct as f64 / cpu,
        s.explored_per_s(),
        s.peak_rss_bytes.unwrap_or(0) as f64 / 1048576.0,
        s.rss_per_state().unwrap_or(0.0),
        s.store_per_state(),
    );
}

fn per_ns(label: &str, n: usize, t: Instant) {
    println!(
        "    {label:<44} {:>8.0} ns",
        t.elapsed().as_nanos() as f64 / n as f64
    );
}

fn breakdown(name: &str) {
    let proto = Protocol::preset(name).unwrap();
    let world = explore::world(3, 1, 0).unwrap();
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
    println!(
        "  cost per state ({name}, 3 functions, {n} sampled states, mean over {reps} rounds):"
    );
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
            black_box(fingerprint(&s.k));
        }
    }
    per_ns("core fingerprint", n * reps, t);
    let sym = Symmetry::new(&world, proto, true);
    let mut sc = Scratch::default();
    let t = Instant::now();
    for _ in 0..reps {
        for s in &states {
            black_box(sym.key(&s.k, &mut sc));
        }
    }
    per_ns(
        "symmetric key (signatures + min over renamings)",
        n * reps,
        t,
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
    let depth: u32 = std::env::var("FTSIM_BENCH_DEPTH")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let world = explore::world(3, 1, 0).unwrap();
    println!("sequential, {world}, depth {depth}, one core:");
    for (name, _) in PRESETS {
        let cfg = Config::new(target(name), world.clone(), depth);
        line(name, &explore::explore(&cfg));
    }
    println!("sequential, {world}, depth {depth}, --threads 2:");
    let mut cfg = Config::new(target("merged"), world.clone(), depth);
    cfg.threads = 2;
    line("merged", &explore::explore(&cfg));
    breakdown("merged");
    let w2 = explore::world(2, 1, 0).unwrap();
    println!("interleaving, {w2}, depth 2, one core:");
    let mut cfg = Config::new(target("merged"), w2, 2);
    cfg.interleave = true;
    line("merged", &explore::explore(&cfg));
}
