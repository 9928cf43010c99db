//! Simulator throughput (prints figures; not a timed test).
//!
//! `cargo bench -p ftsim-sim --bench sim`
//!
//! 1. Simulated events (scheduling steps) per second on one core, per preset.
//! 2. A sweep of 10,000 seeds of 200 events on two cores (`--jobs 2`, no shrinking), per preset.

use ftsim_core::protocol::{Protocol, PRESETS};
use ftsim_sim::sim::run_seed;
use ftsim_sim::sweep::{self, SeedSet, Target};
use std::time::Instant;

fn main() {
    println!("one core, 2,000 seeds x 200 events:");
    for (name, _) in PRESETS {
        let p = Protocol::preset(name).unwrap();
        let t0 = Instant::now();
        let mut events = 0;
        for seed in 0..2_000 {
            events += run_seed(p, seed, 200, false).events;
        }
        let s = t0.elapsed().as_secs_f64();
        println!(
            "  {name:<18} {:>10.0} events/s  {:>8.0} seeds/s",
            events as f64 / s,
            2000.0 / s
        );
    }
    println!("two cores (--jobs 2), 10,000 seeds x 200 events, no shrinking:");
    for (name, _) in PRESETS {
        let cfg = sweep::SweepConfig {
            targets: vec![Target {
                name: name.to_string(),
                proto: Protocol::preset(name).unwrap(),
                args: String::new(),
            }],
            seeds: SeedSet::range(0, 10_000),
            events: 200,
            jobs: 2,
            stop_on_first: false,
            self_check: false,
            shrink: false,
        };
        let out = sweep::sweep(&cfg, &|_, _| {});
        let s = out.elapsed.as_secs_f64();
        println!(
            "  {name:<18} {s:>6.2} s  {:>10.0} events/s",
            out.events as f64 / s
        );
    }
}
