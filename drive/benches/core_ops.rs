//! Throughput of the core through the sequential driver (prints figures; not a timed test).
//!
//! `cargo bench -p ftsim-drive --bench core_ops`
//!
//! 1. Owner-level operations per second on a 64-function world, mixed workload, one core, with
//!    and without the property check after each operation.
//! 2. One register + unregister of a single-function filter on 50,000 records versus 100 records
//!    (the kernel walks every record; the model must not).

use ftsim_core::ids::{FnId, ProgKind, TracerId};
use ftsim_core::op::HashSel;
use ftsim_core::{Op, Protocol, World};
use ftsim_drive::seq::{Faults, Sequential};
use std::hint::black_box;
use std::time::Instant;

/// A fixed pseudo-random mixed workload (xorshift; the bench owns its generator, the core has none).
fn workload(functions: u16, n: usize) -> Vec<Op> {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..n)
        .map(|_| {
            let r = next();
            let f = FnId((r >> 8) as u16 % functions);
            let t = TracerId((r >> 24) as u8 % 2);
            let kind = ProgKind::ALL[(r >> 32) as usize % 3];
            match r % 12 {
                0 => Op::KlpEnable(f),
                1 => Op::KlpDisable(f),
                2 | 3 => Op::BpfLink(kind, f),
                4 | 5 => Op::BpfUnlink(kind, f),
                6 => Op::KprobeArm(f),
                7 => Op::KprobeDisarm(f),
                8 => Op::TracerSet {
                    tracer: t,
                    which: HashSel::Filter,
                    add: true,
                    func: f,
                },
                9 => Op::TracerSet {
                    tracer: t,
                    which: HashSel::Filter,
                    add: false,
                    func: f,
                },
                10 => Op::TracerRegister {
                    tracer: t,
                    filter: vec![f],
                    notrace: vec![],
                },
                _ => Op::TracerUnregister(t),
            }
        })
        .collect()
}

fn ops_per_s(checked: bool) -> f64 {
    let ops = workload(64, 200_000);
    let mut best = 0.0f64;
    for _ in 0..3 {
        let mut s = Sequential::new(&World::new(64), Protocol::MERGED);
        s.check_atomicity = checked;
        let t0 = Instant::now();
        for op in &ops {
            let out = if checked {
                s.apply(op)
            } else {
                s.run(op, Faults::NONE)
            };
            black_box(&out);
            if out.stuck {
                s = Sequential::new(&World::new(64), Protocol::MERGED);
            }
        }
        best = best.max(ops.len() as f64 / t0.elapsed().as_secs_f64());
    }
    best
}

fn register_unregister_ns(records: u16) -> f64 {
    let mut s = Sequential::new(&World::new(records), Protocol::MERGED);
    let f = FnId(records / 2);
    let (reg, unreg) = (Op::KlpEnable(f), Op::KlpDisable(f));
    let rounds = 20_000;
    let mut best = f64::MAX;
    for _ in 0..3 {
        let t0 = Instant::now();
        for _ in 0..rounds {
            black_box(s.run(&reg, Faults::NONE));
            black_box(s.run(&unreg, Faults::NONE));
        }
        best = best.min(t0.elapsed().as_nanos() as f64 / rounds as f64);
    }
    best
}

fn main() {
    let fast = ops_per_s(false);
    let checked = ops_per_s(true);
    println!("sequential driver, 64 functions, mixed workload (merged):");
    println!("  owner-level ops/s, no checks:          {fast:>12.0}");
    println!("  owner-level ops/s, checks after each:  {checked:>12.0}");
    let small = register_unregister_ns(100);
    let large = register_unregister_ns(50_000);
    println!(
        "livepatch enable+disable of one function (register + unregister, single-function filter):"
    );
    println!("  100 records:     {small:>10.0} ns");
    println!("  50,000 records:  {large:>10.0} ns");
    println!("  ratio:           {:>10.2}", large / small);
}
