//! The concurrent driver of `ftsim_tests::conc` on real `std` threads (no loom): every loom
//! scenario a few hundred times, so the driver itself is exercised by a plain `cargo test`.
//! Real threads sample interleavings; loom (`tests/loom.rs`) enumerates them. What the samples
//! show must stay within what loom pinned for the scenario.
#![cfg(not(loom))]

use ftsim_core::protocol::{Protocol, PRESETS};
use ftsim_tests::cases::Scenario;
use ftsim_tests::cases::{Expect, CASES};
use ftsim_tests::conc::run_std;

/// Executions per (scenario, preset).
const ITERATIONS: usize = 200;

#[test]
fn every_case_stays_within_what_loom_pinned() {
    let mut total = 0;
    let mut contended = 0;
    for c in CASES {
        for (preset, _) in PRESETS {
            let proto = Protocol::preset(preset).unwrap();
            let s = c.scenario();
            match c.expect(preset) {
                Expect::NotApplicable => assert!(
                    s.prepare(proto).is_err(),
                    "{} under {preset} is pinned as not applicable",
                    c.name
                ),
                Expect::Deadlock => {
                    // Real threads may or may not hit the deadlock; the driver must detect it
                    // when they do (and not hang), and verify every other execution.
                    let r = run_std(&s, proto, ITERATIONS).unwrap();
                    println!(
                        "{} under {preset}: {} of {} executions deadlocked",
                        c.name, r.deadlocks, r.executions
                    );
                    total += r.executions;
                }
                Expect::Outcomes { .. } => {
                    let r = run_std(&s, proto, ITERATIONS).unwrap();
                    assert_eq!(
                        r.deadlocks,
                        0,
                        "{} under {preset} deadlocked on real threads: {}",
                        c.name,
                        r.summary()
                    );
                    c.check_report(preset, &r, false)
                        .unwrap_or_else(|e| panic!("{e}"));
                    contended += r
                        .verdicts
                        .iter()
                        .filter(|v| v.compact.contains('*'))
                        .count();
                    total += r.executions;
                }
            }
        }
    }
    println!("{total} executions; {contended} distinct contended verdicts");
}

/// The std driver finds the deadlock of the blocking PEER callback (livepatch disable holds
/// direct_mutex and waits for tr->mutex in DISABLE_PEER; the unlink holds tr->mutex and waits for
/// direct_mutex) and aborts the threads instead of hanging. Real threads meet in that order in
/// most executions of this scenario; the test tries until they do.
#[test]
fn blocking_peer_deadlock_is_detected_without_hanging() {
    let c = CASES
        .iter()
        .find(|c| c.name == "unlink_vs_klp_disable")
        .unwrap();
    let proto = Protocol::preset("alt-blocking-peer").unwrap();
    for _ in 0..50 {
        let r = run_std(&c.scenario(), proto, 100).unwrap();
        if let Some(d) = &r.deadlock_example {
            println!(
                "{} of {} executions deadlocked, e.g. {d}",
                r.deadlocks, r.executions
            );
            assert!(
                d.contains("`klp-disable f0` waits for tr(f0)->mutex"),
                "{d}"
            );
            assert!(
                d.contains("`bpf-unlink fentry f0` waits for direct_mutex"),
                "{d}"
            );
            return;
        }
    }
    panic!("5000 executions on real threads never deadlocked");
}

/// Lock recursion on real threads is the core's finding, not a panic: `merged`'s
/// `ftrace_modify_direct_caller` registers its stub with the locking `register_ftrace_function`
/// while holding `direct_mutex` (corpus/reproducers/readme-merged--lock-recursion.txt). The
/// recursing thread is stuck holding `direct_mutex` (as `Sched` leaves it); the livepatch on the
/// other thread either finishes first or waits for that lock forever. Either way the run stalls
/// without a wait-for cycle, the driver ends it (no hang), and the stalled runs have
/// `lock-recursion`, never `deadlock`.
#[test]
fn lock_recursion_is_a_finding_and_the_run_stalls() {
    let s = Scenario::new(
        1,
        &["direct-register f0"],
        &["direct-modify f0", "klp-enable f0"],
    );
    let r = run_std(&s, Protocol::preset("merged").unwrap(), 100).unwrap();
    println!("{}", r.summary());
    assert_eq!((r.stalls, r.deadlocks), (100, 0), "{}", r.summary());
    assert!(
        r.stall_findings.contains("lock-recursion"),
        "{}",
        r.summary()
    );
    assert!(!r.stall_findings.contains("deadlock"), "{}", r.summary());
    assert!(r.verdicts.is_empty());
}
