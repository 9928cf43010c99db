//! Exhaustive exploration: exact state counts pinned per preset (a change in the model shows up
//! here as a diff), the shortest counterexamples, the symmetry reduction checked against a plain
//! search and against the model itself, independence from the number of threads (`ftsim
//! explore`'s command line is tested with the binary, in `cli/tests/cli.rs`).

use ftsim_core::fingerprint::fingerprint;
use ftsim_core::machine::Threads;
use ftsim_core::op::Op;
use ftsim_core::property::Property;
use ftsim_core::protocol::{Protocol, PRESETS};
use ftsim_core::world::World;
use ftsim_drive::sched::Sched;
use ftsim_drive::seq::{Faults, Sequential};
use ftsim_sim::explore::{
    self, alphabet, fingerprint_permuted, order_mask, ExploreConfig, ExploreResult, Perm, Scratch,
    Symmetry,
};
use ftsim_sim::sweep::Target;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeSet, HashSet};

fn target(name: &str) -> Target {
    Target {
        name: name.to_string(),
        proto: Protocol::preset(name).unwrap(),
        args: format!("--protocol {name}"),
    }
}

fn run(name: &str, world: World, depth: u32, interleave: bool) -> ExploreResult {
    run_with(name, world, depth, interleave, false)
}

fn run_with(name: &str, world: World, depth: u32, interleave: bool, faults: bool) -> ExploreResult {
    let mut cfg = ExploreConfig::new(target(name), world, depth);
    cfg.interleave = interleave;
    cfg.faults = faults;
    cfg.verify_skips = true;
    explore::explore(&cfg)
}

/// `distinct=N levels=a,b,.. found=property@depth,..`: what a pin compares.
fn summary(out: &ExploreResult) -> String {
    let levels: Vec<String> = out.stats.levels.iter().map(|l| l.new.to_string()).collect();
    let found: Vec<String> = out
        .findings
        .iter()
        .map(|f| format!("{}@{}", f.property, f.depth))
        .collect();
    format!(
        "distinct={} levels={} found={}",
        out.stats.distinct,
        levels.join(","),
        found.join(",")
    )
}

fn check_pins(
    what: &str,
    pins: &[(&str, &str)],
    world: &World,
    depth: u32,
    interleave: bool,
    faults: bool,
) {
    let mut diffs = Vec::new();
    for (name, _) in PRESETS {
        let out = run_with(name, world.clone(), depth, interleave, faults);
        for f in &out.findings {
            assert!(
                f.reproduces,
                "{name}: the counterexample of {} does not replay:\n{}",
                f.property, f.script
            );
        }
        let got = summary(&out);
        match pins.iter().find(|(n, _)| n == name) {
            Some((_, want)) if *want == got => {}
            Some((_, want)) => {
                diffs.push(format!("  {name}:\n    pinned {want}\n    now    {got}"))
            }
            None => diffs.push(format!("  {name}: no pin; now (\"{name}\", \"{got}\"),")),
        }
    }
    assert!(
        diffs.is_empty(),
        "{what}: the model changed (update the pins if that was intended):\n{}",
        diffs.join("\n")
    );
}

/// Sequential mode, 2 functions, 1 tracer, depth 3, symmetry on.
const SEQ_PINS: &[(&str, &str)] = &[
    ("pre", "distinct=1454 levels=1,12,159,1282 found="),
    ("v2", "distinct=2082 levels=1,12,169,1900 found=ipmodify-honoured@3,share-leak@3,lock-coverage@2"),
    ("merged", "distinct=2154 levels=1,12,173,1968 found=ipmodify-honoured@3,exclusivity@3,atomicity@2,lock-recursion@2"),
    ("fixes-2022", "distinct=2119 levels=1,12,172,1934 found=ipmodify-honoured@3"),
    ("rcu-hash-2023", "distinct=1542 levels=1,11,138,1392 found=ipmodify-honoured@3,atomicity@2"),
    ("fixes-2025", "distinct=1645 levels=1,11,140,1493 found=ipmodify-honoured@3"),
    ("alt-rinse-repeat", "distinct=2150 levels=1,12,173,1964 found=ipmodify-honoured@3,exclusivity@3,atomicity@2,lock-recursion@2,lock-coverage@3"),
    ("alt-blocking-peer", "distinct=2164 levels=1,12,173,1978 found=ipmodify-honoured@3,exclusivity@3,atomicity@2,lock-recursion@2,lock-order@2"),
    ("proposed", "distinct=1644 levels=1,11,140,1492 found="),
    ("debian-6.1", "distinct=2119 levels=1,12,172,1934 found=ipmodify-honoured@3,no-lost-program@3,no-lost-callback@3"),
    ("debian-6.12", "distinct=1645 levels=1,11,140,1493 found=ipmodify-honoured@3"),
    ("mainline-2026", "distinct=1432 levels=1,11,137,1283 found=ipmodify-honoured@3"),
];

/// Interleaving mode, 1 function, no tracer, two operations.
const INTER_PINS: &[(&str, &str)] = &[
    ("pre", "distinct=4351 levels=1,12,138,153,196,254,332,407,448,438,441,440,346,243,139,79,57,47,43,34,22,18,18,18,18,9,0 found="),
    ("v2", "distinct=5205 levels=1,12,138,153,196,254,332,426,521,576,580,537,448,360,210,98,61,60,43,29,26,24,24,24,21,15,12,12,9,3,0 found=lock-coverage@20"),
    ("merged", "distinct=5114 levels=1,12,138,153,196,254,332,426,521,576,580,537,448,360,210,95,57,54,40,25,19,16,16,16,14,10,6,2,0 found=lock-recursion@13"),
    ("fixes-2022", "distinct=5111 levels=1,12,138,153,196,254,332,426,521,576,580,537,448,360,211,96,58,55,41,25,19,16,16,16,14,8,2,0 found="),
    ("rcu-hash-2023", "distinct=3897 levels=1,10,106,125,144,179,223,275,339,402,427,428,395,332,196,86,49,47,36,24,19,16,16,13,7,2,0 found=atomicity@23"),
    ("fixes-2025", "distinct=3915 levels=1,10,106,125,144,179,223,275,339,402,427,428,395,332,196,86,49,47,36,24,19,16,16,16,14,8,2,0 found="),
    ("alt-rinse-repeat", "distinct=4710 levels=1,12,138,153,196,254,332,426,520,540,520,476,370,276,156,76,55,51,34,19,17,16,16,16,16,14,8,2,0 found=lock-recursion@13"),
    ("alt-blocking-peer", "distinct=5114 levels=1,12,138,153,196,254,332,426,521,576,580,537,448,360,210,95,57,54,40,25,19,16,16,16,14,10,6,2,0 found=lock-recursion@13,lock-order@17"),
    ("proposed", "distinct=5433 levels=1,10,106,125,144,179,223,271,323,387,462,499,499,498,455,404,315,191,82,46,46,34,20,17,16,16,16,14,10,8,8,6,2,0 found="),
    ("debian-6.1", "distinct=5111 levels=1,12,138,153,196,254,332,426,521,576,580,537,448,360,211,96,58,55,41,25,19,16,16,16,14,8,2,0 found="),
    ("debian-6.12", "distinct=3923 levels=1,10,106,125,144,179,223,275,339,402,427,428,395,332,196,86,49,47,36,24,19,16,16,16,14,10,6,2,0 found="),
    ("mainline-2026", "distinct=2728 levels=1,10,106,125,144,179,223,275,336,348,328,236,124,62,50,49,36,22,20,20,16,10,6,2,0 found="),
];

#[test]
fn sequential_state_counts_are_pinned() {
    check_pins(
        "sequential, 2 functions, 1 tracer, depth 3",
        SEQ_PINS,
        &explore::world(2, 1, 0).unwrap(),
        3,
        false,
        false,
    );
}

/// Sequential mode with single faults, 1 function in a module, 1 tracer, depth 3.
const FAULT_PINS: &[(&str, &str)] = &[
    ("pre", "distinct=222 levels=1,4,23,194 found=atomicity@3"),
    ("v2", "distinct=235 levels=1,4,23,207 found=atomicity@3,share-leak@3,lock-coverage@3"),
    ("merged", "distinct=238 levels=1,4,23,210 found=atomicity@2,share-leak@3,lock-recursion@3"),
    ("fixes-2022", "distinct=228 levels=1,4,23,200 found=atomicity@3,share-leak@3"),
    ("rcu-hash-2023", "distinct=183 levels=1,4,21,157 found=atomicity@3,share-leak@3"),
    ("fixes-2025", "distinct=187 levels=1,4,21,161 found=atomicity@3,share-leak@3"),
    ("alt-rinse-repeat", "distinct=242 levels=1,4,23,214 found=atomicity@2,share-leak@3,lock-recursion@3"),
    ("alt-blocking-peer", "distinct=232 levels=1,4,23,204 found=atomicity@2,share-leak@3,lock-recursion@3,lock-order@3"),
    ("proposed", "distinct=182 levels=1,4,21,156 found="),
    ("debian-6.1", "distinct=228 levels=1,4,23,200 found=atomicity@3,share-leak@3"),
    ("debian-6.12", "distinct=187 levels=1,4,21,161 found=atomicity@3,share-leak@3"),
    ("mainline-2026", "distinct=176 levels=1,4,20,151 found=atomicity@3,share-leak@3"),
];

#[test]
fn sequential_state_counts_with_faults_are_pinned() {
    check_pins(
        "sequential with single faults, 1 function in module m0, 1 tracer, depth 3",
        FAULT_PINS,
        &explore::world(1, 1, 1).unwrap(),
        3,
        false,
        true,
    );
}

#[test]
fn interleaving_state_counts_are_pinned() {
    check_pins(
        "interleaving, 1 function, 0 tracers, 2 operations",
        INTER_PINS,
        &explore::world(1, 0, 0).unwrap(),
        2,
        true,
        false,
    );
}

#[test]
fn single_faults_reach_the_failure_paths() {
    // merged: an image allocation failing in the first link leaves the ops' callback and
    // trampoline set (a later register gets -EINVAL): found in one operation.
    let w = explore::world(1, 0, 0).unwrap();
    let out = run_with("merged", w.clone(), 1, false, true);
    let f = out
        .findings
        .iter()
        .find(|f| f.property == Property::Atomicity)
        .expect("a failing allocation breaks atomicity in merged");
    assert_eq!(f.depth, 1);
    assert!(f.reproduces, "{}", f.script);
    assert!(!f.script.lines[0].faults.is_none(), "{}", f.script);
    // Without faults one operation breaks nothing.
    assert!(run_with("merged", w, 1, false, false).findings.is_empty());
}

#[test]
fn merged_bypasses_the_livepatch_in_three_operations() {
    // SELF answers 0 for an fentry-only image without setting SHARE; the fexit rebuild goes
    // through modify, which makes no IPMODIFY check: the trampoline calls the original body.
    let out = run("merged", explore::world(2, 1, 0).unwrap(), 3, false);
    let f = out
        .findings
        .iter()
        .find(|f| f.property == Property::IpmodifyHonoured)
        .expect("merged violates ipmodify-honoured within 3 operations");
    let ops: Vec<String> = f.script.lines.iter().map(|l| l.op.to_string()).collect();
    assert_eq!(
        ops,
        ["klp-enable f0", "bpf-link fentry f0", "bpf-link fexit f0"]
    );
    assert_eq!(f.depth, 3);
    assert!(f.reproduces);
    // Nothing shorter exists: at depth 2 the property holds everywhere.
    let out = run("merged", explore::world(2, 1, 0).unwrap(), 2, false);
    assert!(out
        .findings
        .iter()
        .all(|f| f.property != Property::IpmodifyHonoured));
}

#[test]
fn blocking_peer_deadlocks_with_three_operations_interleaved() {
    let out = run(
        "alt-blocking-peer",
        explore::world(1, 0, 0).unwrap(),
        3,
        true,
    );
    let f = out
        .findings
        .iter()
        .find(|f| f.property == Property::Deadlock)
        .expect("alt-blocking-peer deadlocks");
    assert!(f.script.is_concurrent());
    assert!(f.reproduces, "{}", f.script);
    assert_eq!(f.script.lines.len(), 3, "{}", f.script);
    // merged uses a trylock in the PEER callback: no deadlock at the same bound.
    let out = run("merged", explore::world(1, 0, 0).unwrap(), 3, true);
    assert!(out
        .findings
        .iter()
        .all(|f| f.property != Property::Deadlock));
}

/// Every figure that does not measure time or memory, and every counterexample.
fn figures(out: &ExploreResult) -> String {
    let s = &out.stats;
    let found: Vec<String> = out
        .findings
        .iter()
        .map(|f| {
            format!(
                "{} {} {} {}",
                f.states, f.transitions, f.violation, f.script
            )
        })
        .collect();
    format!(
        "{} explored={} terminal={} skipped={} renamings={} levels={:?} frontier={}/{} B {}",
        summary(out),
        s.explored,
        s.terminal,
        s.skipped,
        s.renamings,
        s.levels,
        s.frontier_peak,
        s.frontier_bytes,
        found.join("\n")
    )
}

#[test]
fn results_do_not_depend_on_threads() {
    for (interleave, faults) in [(false, false), (true, false), (false, true)] {
        let world = explore::world(2, 1, 0).unwrap();
        let depth = if interleave { 2 } else { 3 };
        let mut cfg = ExploreConfig::new(target("merged"), world, depth);
        cfg.interleave = interleave;
        cfg.faults = faults;
        let one = explore::explore(&cfg);
        // Levels of many states, cut into chunks that find the same states.
        assert!(one.stats.levels.iter().any(|l| l.expanded >= 64));
        for threads in [2, 3, 8] {
            cfg.threads = threads;
            let many = explore::explore(&cfg);
            assert_eq!(figures(&one), figures(&many), "--threads {threads}");
            assert_eq!(one.stats.store_bytes, many.stats.store_bytes);
        }
    }
}

/// Reachable states of random runs: sequential ones, and concurrent ones with operations in
/// flight (frames, held locks).
fn sample_kernels(name: &str, world: &World, n: usize) -> Vec<(ftsim_core::Kernel, Threads)> {
    let proto = Protocol::preset(name).unwrap();
    let ops = alphabet(world, &proto);
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut out = Vec::new();
    while out.len() < n {
        let mut s = Sequential::new(world, proto);
        for _ in 0..rng.random_range(0..7) {
            s.run(&ops[rng.random_range(0..ops.len())], Faults::NONE);
        }
        out.push((s.k, Threads::from(vec![s.th])));
        let mut c = Sched::new(world, proto, 2);
        for _ in 0..rng.random_range(0..40) {
            let t = rng.random_range(0..2u8);
            if !c.threads.busy(t) && c.lanes[t as usize].queue.is_empty() {
                c.push(t, ops[rng.random_range(0..ops.len())].clone(), Faults::NONE);
            }
            let r = c.runnable();
            if r.is_empty() {
                break;
            }
            c.step(r[rng.random_range(0..r.len())]);
        }
        out.push((c.k, c.threads));
    }
    out
}

#[test]
fn identity_encoding_is_the_core_fingerprint() {
    // The explorer's renamed encoding must hash exactly what the core fingerprint hashes; if the
    // core fingerprint gains a field, this fails until `explore::encode` follows.
    for world in [
        explore::world(3, 2, 0).unwrap(),
        explore::world(3, 1, 2).unwrap(),
    ] {
        for (name, _) in PRESETS {
            for (k, th) in sample_kernels(name, &world, 200) {
                let id = Perm::identity(world.functions as usize, world.tracers as usize);
                assert_eq!(
                    fingerprint_permuted(&k, &th, &id),
                    fingerprint(&k, &th),
                    "{name}: {k:?} {th:?}"
                );
            }
        }
    }
}

#[test]
fn renaming_commutes_with_the_model() {
    // Symmetry reduction is sound when running renamed operations from the initial state gives
    // the renamed state: check it on random sequences, for every preset, with a module.
    let world = explore::world(3, 2, 0).unwrap();
    let modw = explore::world(4, 1, 2).unwrap(); // f2, f3 in m0
    let cases: [(&World, Vec<u16>, Vec<u8>); 4] = [
        (&world, vec![1, 2, 0], vec![1, 0]),
        (&world, vec![0, 2, 1], vec![0, 1]),
        (&world, vec![2, 0, 1], vec![1, 0]),
        (&modw, vec![1, 0, 3, 2], vec![0]),
    ];
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for (name, _) in PRESETS {
        let proto = Protocol::preset(name).unwrap();
        for (w, f, t) in &cases {
            let p = Perm::new(f.clone(), t.clone());
            let sym = Symmetry::new(w, proto, true);
            let mut sc = Scratch::default();
            let ops = alphabet(w, &proto);
            for _ in 0..150 {
                let mut a = Sequential::new(w, proto);
                let mut b = Sequential::new(w, proto);
                let mut seq = Vec::new();
                for _ in 0..rng.random_range(1..7) {
                    let op = &ops[rng.random_range(0..ops.len())];
                    seq.push(op.to_string());
                    let ra = a.apply(op);
                    let rb = b.apply(&p.op(op));
                    assert_eq!(ra.result, rb.result, "{name} {f:?}: {seq:?}");
                    let pa: BTreeSet<Property> = ra.violations.iter().map(|v| v.property).collect();
                    let pb: BTreeSet<Property> = rb.violations.iter().map(|v| v.property).collect();
                    assert_eq!(pa, pb, "{name} {f:?}: {seq:?}");
                    if ra.stuck {
                        break;
                    }
                }
                if a.stuck {
                    continue; // frames in flight are not renamed
                }
                assert_eq!(
                    sym.key(&a.k, a.threads(), &mut sc),
                    sym.key(&b.k, b.threads(), &mut sc),
                    "{name} renaming {f:?}/{t:?} of {seq:?}: the symmetric key is not invariant"
                );
                assert_eq!(
                    fingerprint_permuted(&a.k, a.threads(), &p),
                    fingerprint(&b.k, b.threads()),
                    "{name} renaming {f:?}/{t:?} of {seq:?}"
                );
                assert_eq!(order_mask(&a.order), order_mask(&b.order));
            }
        }
    }
}

/// Every state reachable in at most `depth` operations, by a plain breadth-first search.
fn plain_states(name: &str, world: &World, depth: u32) -> Vec<Sequential> {
    let proto = Protocol::preset(name).unwrap();
    let ops = alphabet(world, &proto);
    let key = |s: &Sequential| {
        (
            fingerprint(&s.k, s.threads()),
            order_mask(&s.order),
            s.stuck,
        )
    };
    let mut root = Sequential::new(world, proto);
    root.check_atomicity = false;
    let mut seen = HashSet::new();
    seen.insert(key(&root));
    let mut all = vec![root.clone()];
    let mut frontier = vec![root];
    for _ in 0..depth {
        let mut next = Vec::new();
        for s in &frontier {
            if s.stuck {
                continue;
            }
            for op in &ops {
                let mut c = s.clone();
                c.run(op, Faults::NONE);
                if seen.insert(key(&c)) {
                    next.push(c);
                }
            }
        }
        all.extend(next.iter().cloned());
        frontier = next;
    }
    all
}

/// The explorer keys a successor from its parent's parts (without symmetry: its parent's
/// per-function words), walking only the functions whose sections changed
/// (`Symmetry::key_after`): over every transition of a plain search, with and without symmetry,
/// that key is the key from scratch (a stale part, say of a function whose
/// change the comparison missed or one whose part reads another function's state, fails it).
#[test]
fn keys_from_the_parents_parts_are_the_keys_from_scratch() {
    let cases = [
        (
            explore::world(2, 1, 0).unwrap(),
            3,
            &["merged", "pre", "mainline-2026"][..],
        ),
        (explore::world(2, 2, 0).unwrap(), 2, &["merged", "v2"][..]),
        (
            explore::world(3, 1, 2).unwrap(),
            2,
            &["merged", "fixes-2025"][..],
        ),
    ];
    for (world, depth, names) in cases {
        for (&name, symmetry) in names.iter().flat_map(|n| [(n, true), (n, false)]) {
            let proto = Protocol::preset(name).unwrap();
            let sym = Symmetry::new(&world, proto, symmetry);
            let ops = alphabet(&world, &proto);
            let (mut sc, mut fresh) = (Scratch::default(), Scratch::default());
            let mut quiet = 0;
            for s in plain_states(name, &world, depth - 1)
                .iter()
                .filter(|s| !s.stuck)
            {
                for op in &ops {
                    let mut c = s.clone();
                    c.run(op, Faults::NONE);
                    let after = sym.key_after(&s.k, &c.k, c.threads(), &mut sc);
                    let scratch = sym.key(&c.k, c.threads(), &mut fresh);
                    assert_eq!(after, scratch, "{name} {world} symmetry={symmetry}: `{op}`");
                    quiet += (c.k.locks.is_empty()
                        && c.threads()
                            .iter()
                            .all(|t| t.stack.is_empty() && t.pending.is_none()))
                        as u64;
                }
            }
            // Each quiet successor walks its parent's own parts (or words, without symmetry),
            // and those of its functions that changed: both paths are taken.
            let (kept, walked) = sc.own_parts();
            let parents = world.functions as u64 * quiet;
            assert!(
                kept > 0 && walked > parents,
                "{name} {world}: {kept} own parts kept, {walked} walked ({parents} of parents)"
            );
        }
    }
}

/// A change of any one of a function's own sections (its state, its livepatch's ops slot, its
/// trampoline's) is seen by the key from the parent's parts (or words, without symmetry): it is
/// the key from scratch, and another key than the parent's (in the walk's coverage test the mutated slot is f0's
/// livepatch's alone).
#[test]
fn keys_from_the_parents_parts_see_every_own_section() {
    use ftsim_core::ids::{FnId, OpsOwner};
    use ftsim_core::kernel::fl;
    let world = explore::world(3, 1, 0).unwrap();
    let states = plain_states("merged", &world, 2);
    for (parent, symmetry) in states
        .iter()
        .filter(|s| !s.stuck)
        .flat_map(|s| [(s, true), (s, false)])
    {
        let sym = Symmetry::new(&world, Protocol::MERGED, symmetry);
        let th = parent.threads();
        let before = sym.key(&parent.k, th, &mut Scratch::default());
        for f in 0..world.functions {
            let mut mutations = [parent.k.clone(), parent.k.clone(), parent.k.clone()];
            mutations[0].fns[f as usize].klp_stack += 1;
            for (k, owner) in mutations[1..]
                .iter_mut()
                .zip([OpsOwner::Klp(FnId(f)), OpsOwner::Bpf(FnId(f))])
            {
                let id = k.id(owner);
                k.op_mut(id).flags ^= fl::PERMANENT;
            }
            for (i, k) in mutations.iter().enumerate() {
                let after = sym.key_after(&parent.k, k, th, &mut Scratch::default());
                let scratch = sym.key(k, th, &mut Scratch::default());
                assert_eq!(after, scratch, "f{f} mutation {i} symmetry={symmetry}");
                assert_ne!(after, before, "f{f} mutation {i} symmetry={symmetry}");
            }
        }
    }
}

#[test]
fn symmetry_agrees_with_plain_search() {
    // Reduced counts are orbit counts of the plain search; the plain search without reduction
    // is what the engine counts with --no-symmetry; both find the same properties at the same
    // depths.
    for (world, depth) in [
        (explore::world(2, 2, 0).unwrap(), 3),
        (explore::world(3, 1, 2).unwrap(), 2),
    ] {
        for name in ["merged", "v2", "fixes-2025"] {
            let states = plain_states(name, &world, depth);
            let proto = Protocol::preset(name).unwrap();
            let sym = Symmetry::new(&world, proto, true);
            let mut sc = Scratch::default();
            // States stuck in a lock recursion keep their frames and are keyed without renaming:
            // compare the others.
            let orbits: HashSet<(u128, u64)> = states
                .iter()
                .filter(|s| !s.stuck)
                .map(|s| (sym.key(&s.k, s.threads(), &mut sc), order_mask(&s.order)))
                .collect();
            let mut cfg = ExploreConfig::new(target(name), world.clone(), depth);
            cfg.symmetry = false;
            let plain = explore::explore(&cfg);
            cfg.symmetry = true;
            let reduced = explore::explore(&cfg);
            assert_eq!(plain.stats.distinct, states.len() as u64, "{name} {world}");
            assert_eq!(
                reduced.stats.distinct - reduced.stats.terminal,
                orbits.len() as u64,
                "{name} {world}"
            );
            assert!(reduced.stats.distinct < plain.stats.distinct);
            let depths = |o: &ExploreResult| -> Vec<(Property, usize)> {
                o.findings.iter().map(|f| (f.property, f.depth)).collect()
            };
            assert_eq!(depths(&plain), depths(&reduced), "{name} {world}");
        }
    }
}

#[test]
fn the_alphabet_is_documented_and_complete() {
    let w = explore::world(2, 1, 1).unwrap();
    let a = alphabet(&w, &Protocol::MERGED);
    let text: Vec<String> = a.iter().map(|o| o.to_string()).collect();
    // 13 per function with the single-ip API, 6K+2 per tracer, 2 per module.
    assert_eq!(a.len(), 2 * 13 + (6 * 2 + 2) + 2, "{text:?}");
    for needle in [
        "klp-enable f1",
        "bpf-unlink fmod_ret f0",
        "direct-modify f1",
        "tracer-register t0 filter={f1} notrace={}",
        "tracer-register t0 filter={} notrace={f0}",
        "tracer-notrace-remove t0 f1",
        "module-unload m0",
    ] {
        assert!(
            text.iter().any(|t| t == needle),
            "{needle} missing: {text:?}"
        );
    }
    let a = alphabet(&w, &Protocol::FIXES_2025);
    assert!(a.iter().all(|o| !matches!(o, Op::DirectRegister(_))));
}

/// Every renaming a world's symmetry allows: the built-in functions among themselves, each
/// module's among themselves, the tracers among themselves.
fn renamings(world: &World) -> Vec<Perm> {
    let n = world.functions as usize;
    let mut classes: Vec<Vec<u16>> = vec![world
        .fns()
        .filter(|f| world.module_of(*f).is_none())
        .map(|f| f.0)
        .collect()];
    classes.extend(
        world
            .modules
            .iter()
            .map(|m| m.iter().map(|f| f.0).collect()),
    );
    fn orders(n: usize) -> Vec<Vec<usize>> {
        if n == 0 {
            return vec![vec![]];
        }
        let mut out = Vec::new();
        for o in orders(n - 1) {
            for i in 0..=o.len() {
                let mut p = o.clone();
                p.insert(i, n - 1);
                out.push(p);
            }
        }
        out
    }
    let mut fs: Vec<Vec<u16>> = vec![(0..n as u16).collect()];
    for c in &classes {
        fs = fs
            .iter()
            .flat_map(|f| {
                orders(c.len()).into_iter().map(move |o| {
                    let mut g = f.clone();
                    for (i, &j) in o.iter().enumerate() {
                        g[c[i] as usize] = c[j];
                    }
                    g
                })
            })
            .collect();
    }
    let ts = orders(world.tracers as usize);
    fs.iter()
        .flat_map(|f| {
            ts.iter()
                .map(|t| Perm::new(f.clone(), t.iter().map(|&x| x as u8).collect()))
        })
        .collect()
}

/// The symmetric key partitions the reachable states exactly into their orbits: two states
/// share a key if and only if a renaming of one has the other's fingerprint (found by trying
/// every renaming). The "if" is canonicity: seen to fail with the signatures of 6a8f6f2, whose
/// pristine test compared the next serials the fingerprint leaves out (under `pre`, 4 states
/// with another key than the first state of their orbit). The "only if" is exactness: a key
/// that merged two orbits fails it; so does one that ignores a field (`tests/tests/walk.rs`).
#[test]
fn keys_are_the_orbits() {
    let cases = [
        (
            explore::world(2, 1, 0).unwrap(),
            3,
            &["pre", "merged", "mainline-2026"][..],
        ),
        (explore::world(2, 2, 0).unwrap(), 2, &["merged", "v2"][..]),
        (
            explore::world(3, 1, 2).unwrap(),
            2,
            &["merged", "fixes-2025"][..],
        ),
    ];
    for (world, depth, names) in cases {
        let group = renamings(&world);
        // Parts on (the default), and off: every state keyed by the least encoding over the
        // candidate renamings, as tangled states are.
        for (&name, parts) in names.iter().flat_map(|n| [(n, true), (n, false)]) {
            let proto = Protocol::preset(name).unwrap();
            let sym = Symmetry::new(&world, proto, true).with_parts(parts);
            let mut sc = Scratch::default();
            let mut orbit_of_key = std::collections::HashMap::new();
            let mut key_of_orbit = std::collections::HashMap::new();
            let (mut merged, mut split) = (0, 0);
            for s in plain_states(name, &world, depth)
                .iter()
                .filter(|s| !s.stuck)
            {
                let th = s.threads();
                let orbit = group
                    .iter()
                    .map(|p| fingerprint_permuted(&s.k, th, p))
                    .min()
                    .unwrap();
                let orbit = (orbit, order_mask(&s.order));
                let key = (sym.key(&s.k, th, &mut sc), order_mask(&s.order));
                merged += (*orbit_of_key.entry(key).or_insert(orbit) != orbit) as usize;
                split += (*key_of_orbit.entry(orbit).or_insert(key) != key) as usize;
            }
            assert_eq!(
                (merged, split),
                (0, 0),
                "{name} {world} parts={parts}: states of (distinct orbits, one orbit) under (one key, distinct keys)"
            );
            assert!(key_of_orbit.len() > 100, "{name} {world}: too few orbits");
        }
    }
}
