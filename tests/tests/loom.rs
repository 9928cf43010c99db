//! loom: every interleaving of the lock protocol for small scenarios (issue 6), within a
//! preemption bound, over every preset. Compiled only with `RUSTFLAGS="--cfg loom"`.
//!
//! One test per (scenario, preset), named `<scenario>::<preset>` (dashes become underscores):
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test -p ftsim-tests --test loom --release                   # all
//! RUSTFLAGS="--cfg loom" cargo test -p ftsim-tests --test loom --release modify_vs_klp_enable:: # one scenario
//! RUSTFLAGS="--cfg loom" cargo test -p ftsim-tests --test loom --release -- --exact modify_vs_klp_enable::merged --nocapture
//! ```
//!
//! The scenarios and what is pinned for each preset are in [`ftsim_tests::cases::CASES`]; the
//! driver and the verdict in [`ftsim_tests::conc`].
#![cfg(loom)]

use ftsim_core::protocol::{Protocol, PRESETS};
use ftsim_tests::cases::{Case, Expect, CASES};
use ftsim_tests::conc::model;

fn case(name: &str) -> &'static Case {
    CASES
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no case `{name}`"))
}

/// With `FTSIM_LOOM_PIN=1` a test prints what it found as the `Expect` to pin in
/// `cases::CASES` instead of checking (for re-pinning after a deliberate model change; read the
/// summary before pasting).
fn pin(c: &Case, preset: &str, proto: Protocol) {
    let s = c.scenario();
    let pinned = if s.prepare(proto).is_err() {
        "Expect::NotApplicable".to_string()
    } else {
        let r = model::explore(&s, proto, c.preemptions).unwrap();
        println!("  {}", r.summary());
        if r.deadlocks > 0 {
            return println!("PIN {} (\"{preset}\", Expect::Deadlock),", c.name);
        }
        format!(
            "out(&{:?}, &{:?}, &{:?})",
            Vec::from_iter(r.outcomes()),
            Vec::from_iter(r.findings()),
            Vec::from_iter(r.contention_tolerated())
        )
    };
    println!("PIN {} (\"{preset}\", {pinned}),", c.name);
}

/// Runs one scenario under one preset and checks it against its pinned expectation.
fn run(name: &str, preset_ident: &str) {
    let c = case(name);
    // `fixes_2025` names `fixes-2025`; a name with a dot (`debian-6.1`) is passed as it is.
    let preset = match Protocol::preset(preset_ident) {
        Some(_) => preset_ident.to_string(),
        None => preset_ident.replace('_', "-"),
    };
    let proto = Protocol::preset(&preset).unwrap_or_else(|| panic!("no preset `{preset}`"));
    let s = c.scenario();
    let bound = model::bound(c.preemptions);
    println!(
        "{name} under {preset}: {} ({s}); preemption bound {bound}",
        c.about
    );
    if std::env::var_os("FTSIM_LOOM_PIN").is_some() {
        return pin(c, &preset, proto);
    }
    match c.expect(&preset) {
        Expect::NotApplicable => {
            let why = s
                .prepare(proto)
                .map(|_| ())
                .expect_err("the scenario is pinned as not applicable, but its setup succeeds");
            println!("  not applicable: {why}");
        }
        Expect::Deadlock => {
            // Every interleaving runs; those that do not stall must verify like any other.
            let r = model::explore(&s, proto, c.preemptions)
                .unwrap_or_else(|e| panic!("{name} under {preset}: {e}"));
            println!("  {}", r.summary());
            assert!(
                r.deadlocks > 0,
                "{name} under {preset} is pinned to deadlock, but no interleaving did"
            );
            assert!(
                r.stall_findings.contains("deadlock"),
                "a deadlocked run must have the `deadlock` finding: {:?}",
                r.stall_findings
            );
        }
        Expect::Outcomes { .. } => {
            let r = model::explore(&s, proto, c.preemptions)
                .unwrap_or_else(|e| panic!("{name} under {preset}: {e}"));
            println!("  {}", r.summary());
            if let Err(e) = c.check_report(&preset, &r, bound >= c.preemptions) {
                panic!("{e}");
            }
        }
    }
}

/// Every case lists every preset, and every preset has a test below.
#[test]
fn every_case_covers_every_preset() {
    for c in CASES {
        for (p, _) in PRESETS {
            let _ = c.expect(p);
        }
    }
}

/// Lock recursion under loom is the core's finding, and the driver ends the stalled run itself
/// (loom's deadlock detector would fail the model): `merged`'s `ftrace_modify_direct_caller`
/// takes `direct_mutex` again through `register_ftrace_function`
/// (corpus/reproducers/readme-merged--lock-recursion.txt); the livepatch on the other thread
/// finishes first or waits for that lock forever. Every interleaving stalls without a wait-for
/// cycle, with `lock-recursion` and without `deadlock`. No scenario of `CASES` reaches a
/// recursion (the old driver panicked there).
#[test]
fn lock_recursion_is_a_finding_and_the_run_stalls() {
    let s = ftsim_tests::cases::Scenario::new(
        1,
        &["direct-register f0"],
        &["direct-modify f0", "klp-enable f0"],
    );
    let r = model::explore(&s, Protocol::preset("merged").unwrap(), 3).unwrap();
    println!("{}", r.summary());
    assert!(r.executions > 1);
    assert_eq!((r.stalls, r.deadlocks), (r.executions, 0));
    assert!(r.stall_findings.contains("lock-recursion"));
    assert!(!r.stall_findings.contains("deadlock"));
}

macro_rules! loom_case {
    ($name:ident) => {
        mod $name {
            #[test]
            fn pre() {
                super::run(stringify!($name), "pre");
            }
            #[test]
            fn v2() {
                super::run(stringify!($name), "v2");
            }
            #[test]
            fn merged() {
                super::run(stringify!($name), "merged");
            }
            #[test]
            fn fixes_2022() {
                super::run(stringify!($name), "fixes_2022");
            }
            #[test]
            fn rcu_hash_2023() {
                super::run(stringify!($name), "rcu_hash_2023");
            }
            #[test]
            fn fixes_2025() {
                super::run(stringify!($name), "fixes_2025");
            }
            #[test]
            fn alt_rinse_repeat() {
                super::run(stringify!($name), "alt_rinse_repeat");
            }
            #[test]
            fn alt_blocking_peer() {
                super::run(stringify!($name), "alt_blocking_peer");
            }
            #[test]
            fn proposed() {
                super::run(stringify!($name), "proposed");
            }
            #[test]
            fn debian_6_1() {
                super::run(stringify!($name), "debian-6.1");
            }
            #[test]
            fn debian_6_12() {
                super::run(stringify!($name), "debian-6.12");
            }
            #[test]
            fn mainline_2026() {
                super::run(stringify!($name), "mainline-2026");
            }
        }
    };
}

loom_case!(link_fexit_vs_klp_enable);
loom_case!(link_fentry_vs_klp_enable);
loom_case!(modify_vs_klp_enable);
loom_case!(unlink_vs_klp_disable);
loom_case!(link_fexit_vs_kprobe_arm);
loom_case!(three_owners);
