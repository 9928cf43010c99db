//! The simulator: search finds a violation, the printed seed and the shrunk file replay it,
//! runs are deterministic, sweeps do not depend on the number of jobs, and the command line
//! exits 0/1/2 as documented.

use ftsim_core::property::Property;
use ftsim_core::Protocol;
use ftsim_drive::script::Script;
use ftsim_sim::shrink::shrink;
use ftsim_sim::sim::run_seed;
use ftsim_sim::sweep::{self, SeedSet, Target};

fn target(name: &str) -> Target {
    Target {
        name: name.into(),
        proto: Protocol::preset(name).unwrap(),
        args: format!("--protocol {name}"),
    }
}

#[test]
fn search_replay_and_shrink_round_trip() {
    // merged: search seeds until one violates ipmodify-honoured.
    let p = Protocol::MERGED;
    let (seed, found) = (0..2000u64)
        .find_map(|s| {
            let run = run_seed(p, s, 200, false);
            run.found
                .into_iter()
                .find(|f| f.violation.property == Property::IpmodifyHonoured)
                .map(|f| (s, f))
        })
        .expect("a merged seed violating ipmodify-honoured within 2000 seeds");
    // Replaying the seed finds the same property at the same step.
    let again = run_seed(p, seed, 200, false);
    let f2 = again
        .found
        .iter()
        .find(|f| f.violation.property == Property::IpmodifyHonoured)
        .unwrap();
    assert_eq!(f2.step, found.step);
    assert_eq!(f2.violation, found.violation);
    // The run's script replays it, and so does the shrunk file after a text round trip.
    assert!(found.script.replay().has(Property::IpmodifyHonoured));
    let (small, _) = shrink(&found.script, Property::IpmodifyHonoured);
    assert!(small.lines.len() <= found.script.lines.len());
    let text = small.to_string();
    let parsed = Script::parse(&text).unwrap();
    assert!(parsed.replay().has(Property::IpmodifyHonoured), "{text}");
}

#[test]
fn same_seed_same_digest_and_trace() {
    for name in ["merged", "alt-blocking-peer", "fixes-2025"] {
        let p = Protocol::preset(name).unwrap();
        for seed in [1u64, 42, 977] {
            let a = run_seed(p, seed, 300, true);
            let b = run_seed(p, seed, 300, true);
            assert_eq!(a.digest, b.digest, "{name} seed {seed}");
            assert_eq!(a.trace, b.trace, "{name} seed {seed}");
            assert_eq!(a.events, b.events);
        }
    }
}

#[test]
fn sweep_does_not_depend_on_jobs() {
    let cfg = |jobs| sweep::SweepConfig {
        targets: vec![target("merged"), target("v2")],
        seeds: SeedSet::range(100, 260),
        events: 150,
        jobs,
        stop_on_first: false,
        self_check: false,
        shrink: false,
    };
    let summary = |o: &sweep::SweepResult| -> Vec<(usize, Property, u64, u64, String)> {
        o.cells
            .iter()
            .map(|c| {
                (
                    c.target,
                    c.property,
                    c.seeds,
                    c.seed,
                    c.found.script.to_string(),
                )
            })
            .collect()
    };
    let a = sweep::sweep(&cfg(1), &|_, _| {});
    let b = sweep::sweep(&cfg(3), &|_, _| {});
    assert!(!a.cells.is_empty());
    assert_eq!(summary(&a), summary(&b));
    assert_eq!((a.runs, a.events, a.ops), (b.runs, b.events, b.ops));
    // stop-on-first too: the first seed in order, whatever the jobs.
    let first = |jobs| {
        let mut c = cfg(jobs);
        c.stop_on_first = true;
        let o = sweep::sweep(&c, &|_, _| {});
        (o.runs, summary(&o))
    };
    assert_eq!(first(1), first(3));
}

#[test]
fn shards_partition_the_seeds() {
    let all = SeedSet::range(10, 33);
    let mut seen: Vec<u64> = Vec::new();
    for i in 0..4 {
        let s = SeedSet {
            shard: i,
            shards: 4,
            ..all
        };
        seen.extend((0..s.len()).map(|k| s.nth(k)));
    }
    seen.sort();
    assert_eq!(seen, (10..33).collect::<Vec<_>>());
}

#[test]
fn every_sweep_reproducer_replays() {
    let cfg = sweep::SweepConfig {
        targets: vec![
            target("merged"),
            target("fixes-2025"),
            target("alt-blocking-peer"),
        ],
        seeds: SeedSet::range(0, 150),
        events: 200,
        jobs: 2,
        stop_on_first: false,
        self_check: false,
        shrink: true,
    };
    let out = sweep::sweep(&cfg, &|_, _| {});
    assert!(out.cells.len() > 5);
    for c in &out.cells {
        let r = c.reproducer.as_ref().unwrap();
        let again = Script::parse(&r.to_string()).unwrap();
        assert!(
            again.replay().has(c.property),
            "{} / {}:\n{r}",
            cfg.targets[c.target].name,
            c.property
        );
        assert!(r.lines.len() <= c.found.script.lines.len());
    }
}

/// Concurrent findings shrink as far as sequential ones: the alt-blocking-peer deadlock of a
/// seeded run (dozens of operations on several threads) comes out as the two operations that
/// deadlock, on threads numbered 0 and 1, and it still replays; the merged lock-recursion, which
/// needs no concurrency, comes out sequential.
#[test]
fn concurrent_findings_shrink_to_their_core() {
    let p = Protocol::preset("alt-blocking-peer").unwrap();
    let (found, big) = (0..2000u64)
        .find_map(|s| {
            let run = run_seed(p, s, 200, false);
            run.found
                .into_iter()
                .find(|f| f.violation.property == Property::Deadlock)
                .map(|f| (f.script.clone(), f.script.lines.len()))
        })
        .expect("a deadlock within 2000 seeds");
    let (small, _) = shrink(&found, Property::Deadlock);
    assert!(small.is_concurrent(), "{small}");
    assert!(small.lines.len() <= 3 && small.lines.len() < big, "{small}");
    let mut seen = Vec::new();
    for l in &small.lines {
        if !seen.contains(&l.tid) {
            assert_eq!(
                l.tid as usize,
                seen.len(),
                "threads numbered by first line: {small}"
            );
            seen.push(l.tid);
        }
    }
    assert!(small.replay().has(Property::Deadlock), "{small}");
    let p = Protocol::preset("merged").unwrap();
    let found = (0..2000u64)
        .find_map(|s| {
            let run = run_seed(p, s, 200, false);
            run.found
                .into_iter()
                .find(|f| {
                    f.violation.property == Property::LockRecursion && f.script.is_concurrent()
                })
                .map(|f| f.script)
        })
        .expect("a concurrent run with lock-recursion");
    let (small, _) = shrink(&found, Property::LockRecursion);
    assert!(!small.is_concurrent(), "sequential is preferred: {small}");
    assert!(small.lines.len() <= 2, "{small}");
}

/// `proposed` pays for what it removes: a link allocates its unlink's image (`tramp-reserve`)
/// and an add allocates its removal's slot (`remove-slot`); when those fail, the operation fails
/// with ENOMEM and leaves no trace (the oracle and the state checks find nothing).
#[test]
fn proposed_pays_for_what_it_removes() {
    for (ops, failing) in [
        ("bpf-link fentry f0 !alloc=0", "bpf-link fentry f0"),
        ("klp-enable f0\nkprobe-arm f0 !alloc=1", "kprobe-arm f0"),
    ] {
        let text = format!("protocol proposed\nworld functions=1 tracers=1\n{ops}\n");
        let s = Script::parse(&text).unwrap();
        let r = s.replay_traced();
        let (_, op, res) = r.results.last().unwrap();
        assert_eq!(op.to_string(), failing);
        assert_eq!(*res, Err(ftsim_core::errno::Errno::ENOMEM), "{text}");
        assert!(r.findings.is_empty(), "{text}: {:?}", r.findings);
        let sites: Vec<String> = r
            .timeline
            .iter()
            .flat_map(|t| t.events.iter().map(|e| format!("{e:?}")))
            .collect();
        let want = if failing.starts_with("bpf") {
            "TrampReserve"
        } else {
            "RemoveSlot"
        };
        assert!(
            sites.iter().any(|e| e.contains(want)),
            "{text}: no {want} allocation in {sites:?}"
        );
    }
}

/// The timeline of a deadlocking replay ends with the stall, which no thread took: it names no
/// thread and no held locks (it used to print as a step of t0 holding nothing, though t0 held
/// `tr(f0)->mutex` in the wait-for cycle the same line reports).
#[test]
fn a_traced_deadlock_ends_with_a_stall_of_no_thread() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../corpus/reproducers/readme-alt-blocking-peer--deadlock.txt"
    ))
    .unwrap();
    let s = Script::parse(&text).unwrap();
    let r = s.replay_traced();
    assert!(r.has(Property::Deadlock));
    let last = r.timeline.last().unwrap();
    assert_eq!(last.tid, None);
    assert!(last
        .findings
        .iter()
        .any(|v| v.property == Property::Deadlock));
    assert!(r.timeline[..r.timeline.len() - 1]
        .iter()
        .all(|step| step.tid.is_some()));
    let layout = ftsim_core::kernel::Kernel::new(&s.world, s.proto)
        .info
        .layout;
    let text = ftsim_sim::trace::replay(&layout, &r);
    let stall = text.lines().rev().find(|l| l.contains("  --  ")).unwrap();
    assert!(stall.ends_with("stall: no thread can step"), "{text}");
    assert!(!text.contains("t0    [holds: ]"), "{text}");
}
