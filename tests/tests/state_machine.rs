//! The oracle against the core (issue 3): a proptest-state-machine test with the oracle
//! ([`ftsim_drive::oracle::Reference`]) as the reference state machine and the core under the
//! sequential driver as the system under test, and the verdict of every preset.
//!
//! After each step the oracle judges the core's result and the call of every function, and the
//! core's own property checks run (`Sequential::apply_with`); a finding is any violation either
//! reports.
//!
//! # Generators
//!
//! Generic, written from SPEC §7 and nothing else: no generator, weight or precondition names a
//! known scenario, and the only precondition is that an operation names functions, tracers and
//! modules of the world (it keeps shrunk worlds consistent).
//!
//! - Worlds: 2 to 6 functions, each built in with weight 2 or in one of two loadable modules with
//!   weight 1 each (so about half live in modules); one or two tracers.
//! - Operations: each owner kind of SPEC §7 (livepatch, BPF, kprobe, tracer, direct user,
//!   module) gets the same total weight, 6, so that no kind dominates; within a kind, the
//!   operations that add an owner or an entry get twice the weight of those that remove one
//!   (4 : 2), so states with several owners on one function are common without being forced
//!   (tracer: register 2, hash add 2, hash remove 1, unregister 1; direct user: register 3,
//!   modify 1, unregister 2). Functions, program kinds, tracers, modules and hashes are uniform;
//!   tracer filter and notrace sets have 0 to 2 entries, duplicates allowed. Module operations
//!   exist only in worlds that have modules.
//! - Faults (in the searches with faults): one step in eight carries one injected fault (an allocation, an image build or a
//!   trylock, the n-th of its kind in the operation with n uniform in 0..4), so that failure
//!   paths are exercised without drowning the fault-free runs the policy judges.
//! - Sequences of 1 to 32 steps; shrinking deletes steps, simplifies each (faults to none, indices
//!   towards 0, operations towards the first alternative) and shrinks the world.
//!
//! # Tests
//!
//! - `verdict_<preset>`: two searches with fixed seeds, one without faults ([`VERDICT_CASES`]
//!   cases) and one with faults ([`VERDICT_FAULT_CASES`] cases). The properties found must equal
//!   the preset's entry in [`VERDICTS`]: those found without faults, and those found only with
//!   faults. For each property the search is re-run failing on that property only (the
//!   fault-free search when it found it), proptest shrinks the case, a greedy pass makes it
//!   1-minimal (it removes any single step, fault, module with the steps naming it, unnamed
//!   function or tracer while the property still shows: proptest-state-machine deletes steps
//!   before it simplifies them, so a step simplified late can become removable), and the result
//!   must equal the committed reproducer `corpus/reproducers/<preset>--<property>.txt`
//!   (replayed by `reproducers.rs`). A new finding shows up as a changed verdict, a fix as a
//!   property leaving it. A search that meets a panic in the core fails with the shrunk script.
//! - `no_finding_outside_the_verdicts`: the plain proptest-state-machine test (any preset,
//!   faults on): a finding outside its preset's verdict fails, and proptest persists the case in
//!   `tests/proptest-regressions/state_machine.txt`.
//!
//! The budgets are not a saturation point: deeper searches find more properties with faults
//! (a fault in a cleanup path leaves a stale filter entry behind, and later operations trip
//! over it). `FTSIM_VERDICT_CASES=65536` shows them.
//!
//! # Knobs
//!
//! - `FTSIM_ORACLE_CASES=N` (default 64) and `FTSIM_ORACLE_SEED=S` (default fixed) for
//!   `no_finding_outside_the_verdicts`: `FTSIM_ORACLE_CASES=100000 cargo test --release -p
//!   ftsim-tests --test state_machine no_finding` explores further.
//! - `FTSIM_VERDICT_CASES=N` runs both verdict searches with N cases; the verdicts are still
//!   asserted, the reproducers are not compared.
//! - `FTSIM_BLESS=1` makes the verdict tests print the verdicts they find and (re)write the
//!   reproducer files instead of asserting; paste the verdicts into [`VERDICTS`].

#[path = "state_machine/minimize.rs"]
mod minimize;
#[path = "state_machine/reference.rs"]
mod reference;
mod support;
use ftsim_core::property::{Property, Violation};
use ftsim_core::protocol::PRESETS;
use ftsim_drive::script::Script;
use minimize::minimize;
use proptest::test_runner::{
    Config, FileFailurePersistence, RngAlgorithm, RngSeed, TestCaseError, TestError, TestRunner,
};
use proptest_state_machine::{prop_state_machine, ReferenceStateMachine};
use reference::{proto, Machine, RefState, Step};
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::PathBuf;
use support::Checked;

/// The properties each preset violates, found with [`VERDICT_SEED`] and [`VERDICT_CASES`]:
/// (preset, found without injected faults, found only when faults are injected).
pub const VERDICTS: &[(&str, &[&str], &[&str])] = &[
    ("pre", &[], &["accounting", "atomicity", "availability"]),
    (
        "v2",
        &[
            "ipmodify-honoured",
            "exclusivity",
            "atomicity",
            "share-leak",
            "lock-coverage",
        ],
        &["accounting", "availability"],
    ),
    (
        "merged",
        &[
            "ipmodify-honoured",
            "exclusivity",
            "atomicity",
            "share-leak",
            "availability",
            "lock-recursion",
        ],
        &["accounting"],
    ),
    (
        "fixes-2022",
        &[
            "ipmodify-honoured",
            "exclusivity",
            "atomicity",
            "share-leak",
        ],
        &["no-lost-callback", "accounting", "availability"],
    ),
    (
        "rcu-hash-2023",
        &[
            "ipmodify-honoured",
            "atomicity",
            "share-leak",
            "availability",
        ],
        &["no-lost-callback", "accounting"],
    ),
    (
        "fixes-2025",
        &["ipmodify-honoured", "atomicity", "share-leak"],
        &["accounting", "availability"],
    ),
    (
        "alt-rinse-repeat",
        &[
            "ipmodify-honoured",
            "exclusivity",
            "atomicity",
            "share-leak",
            "availability",
            "lock-recursion",
            "lock-coverage",
        ],
        &["accounting"],
    ),
    (
        "alt-blocking-peer",
        &[
            "ipmodify-honoured",
            "exclusivity",
            "atomicity",
            "share-leak",
            "availability",
            "lock-recursion",
            "lock-order",
        ],
        &["accounting"],
    ),
    ("proposed", &[], &[]),
    (
        "debian-6.1",
        &[
            "ipmodify-honoured",
            "no-lost-program",
            "no-lost-callback",
            "exclusivity",
            "atomicity",
            "share-leak",
        ],
        &["accounting", "availability"],
    ),
    (
        "debian-6.12",
        &["ipmodify-honoured", "atomicity", "share-leak"],
        &["exclusivity", "accounting", "availability"],
    ),
    (
        "mainline-2026",
        &[
            "ipmodify-honoured",
            "accounting",
            "atomicity",
            "share-leak",
            "availability",
            "lock-coverage",
        ],
        &["no-lost-callback"],
    ),
];

/// Cases of the fault-free verdict search per preset.
pub const VERDICT_CASES: u32 = 16_384;
/// Cases of the verdict search with faults per preset (a smaller budget keeps the whole file
/// near a minute on two cores; see the module docs for what a deeper search adds).
pub const VERDICT_FAULT_CASES: u32 = 8_192;
/// The seed of the verdict search (the preset's index is added).
pub const VERDICT_SEED: u64 = 0x0f75_11ed_0000;
/// Steps per case.
const STEPS: std::ops::RangeInclusive<usize> = 1..=32;
/// Upper bound on shrink iterations of one search.
const SHRINK_ITERS_MAX: u32 = 20_000;
/// `Machine<ANY, _>` draws the preset too.
const ANY: usize = usize::MAX;

/// The asserted verdict of a preset: the properties found without faults, and those found
/// only with faults.
fn verdict_split(preset: &str) -> (BTreeSet<Property>, BTreeSet<Property>) {
    let (_, free, faulty) = VERDICTS
        .iter()
        .find(|(n, _, _)| *n == preset)
        .expect("every preset has a verdict");
    let set = |v: &[&str]| v.iter().map(|p| p.parse().expect("property id")).collect();
    (set(free), set(faulty))
}

/// Every property in the verdict of a preset.
fn verdict(preset: &str) -> BTreeSet<Property> {
    let (mut free, faulty) = verdict_split(preset);
    free.extend(faulty);
    free
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, found `{v}`"))
    })
}

/// proptest's regression file (relative to this crate, where `cargo test` runs): committed data,
/// not ignored by git; proptest replays every case in it before the novel cases of
/// `no_finding_outside_the_verdicts`, so a case that once failed is run by every `cargo test`.
const REGRESSIONS: &str = "proptest-regressions/state_machine.txt";

fn any_preset_config() -> Config {
    Config {
        cases: env_u64("FTSIM_ORACLE_CASES").unwrap_or(64) as u32,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(env_u64("FTSIM_ORACLE_SEED").unwrap_or(VERDICT_SEED)),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(REGRESSIONS))),
        max_shrink_iters: SHRINK_ITERS_MAX,
        ..Config::default()
    }
}

prop_state_machine! {
    #![proptest_config(any_preset_config())]
    #[test]
    fn no_finding_outside_the_verdicts(sequential STEPS => Machine<ANY, true>);
}

// ----- the verdict search --------------------------------------------------------------------

type Case = (
    RefState,
    Vec<Step>,
    Option<std::sync::Arc<std::sync::atomic::AtomicUsize>>,
);

/// The seed of the search of a preset, with or without faults.
fn search_seed(preset: usize, faults: bool) -> u64 {
    VERDICT_SEED + preset as u64 + if faults { 0x100 } else { 0 }
}

fn search_config(seed: u64, cases: u32) -> Config {
    Config {
        cases,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        max_shrink_iters: SHRINK_ITERS_MAX,
        max_shrink_time: 0,
        max_local_rejects: 65_536,
        max_global_rejects: 65_536,
        fork: false,
        timeout: 0,
        verbose: 0,
        ..Config::default()
    }
}

/// Runs one case, stopping at the first step with a finding `stop` accepts; returns every
/// property seen, and whether it stopped.
fn run_case(case: &Case, stop: impl Fn(&Violation) -> bool) -> (BTreeSet<Property>, bool) {
    let (init, steps, seen) = case;
    let mut c = Checked::new(&init.world, proto(init.preset));
    let mut props = BTreeSet::new();
    for s in steps {
        if let Some(n) = seen {
            n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        let st = c.step(&s.op, s.faults);
        props.extend(st.all().map(|v| v.property));
        if st.all().any(&stop) {
            return (props, true);
        }
        if st.stuck {
            break;
        }
    }
    (props, false)
}

/// Every property the first `cases` cases of preset `P` (with faults when `F`) violate.
fn survey<const P: usize, const F: bool>(cases: u32) -> BTreeSet<Property> {
    let found = RefCell::new(BTreeSet::new());
    let mut runner = TestRunner::new(search_config(search_seed(P, F), cases));
    let r = runner.run(&Machine::<P, F>::sequential_strategy(STEPS), |case| {
        found.borrow_mut().extend(run_case(&case, |_| false).0);
        Ok(())
    });
    // The test never fails a case: an error is a panic inside the core, shrunk by proptest.
    if let Err(TestError::Fail(why, (init, steps, _))) = r {
        let ops = steps.iter().map(|s| (s.op.clone(), s.faults)).collect();
        let script = Script::sequential(proto(P), init.world.clone(), ops);
        panic!(
            "[core internal bug] {} panicked: {why}; replay:\n{script}",
            PRESETS[P].0
        );
    }
    found.into_inner()
}

/// The shrunk sequence of the first case of preset `P` (with faults when `F`) that violates
/// `target`, as a reproducer.
fn reproducer<const P: usize, const F: bool>(target: Property, cases: u32) -> String {
    let seed = search_seed(P, F);
    let mut runner = TestRunner::new(search_config(seed, cases));
    let err = runner
        .run(&Machine::<P, F>::sequential_strategy(STEPS), |case| {
            if run_case(&case, |v| v.property == target).1 {
                Err(TestCaseError::fail(target.id()))
            } else {
                Ok(())
            }
        })
        .expect_err("the survey found this property");
    let TestError::Fail(_, case) = err else {
        panic!("search aborted: {err}")
    };
    let (world, steps) = minimize(P, case.0.world.clone(), case.1.clone(), target);
    let name = PRESETS[P].0;
    let mut script = Script::sequential(
        proto(P),
        world.clone(),
        steps.iter().map(|s| (s.op.clone(), s.faults)).collect(),
    );
    script.expect = vec![target];
    // Who reports it, and how, on the shrunk sequence.
    let mut c = Checked::new(&world, proto(P));
    let mut why = None;
    for s in &steps {
        let st = c.step(&s.op, s.faults);
        let by_core = st.core.iter().find(|v| v.property == target);
        let by_oracle = st.oracle.iter().find(|v| v.property == target);
        if let Some((v, by)) = by_core
            .map(|v| (v, "the core's checks report"))
            .or(by_oracle.map(|v| (v, "the oracle reports")))
        {
            why = Some(format!("at `{s:?}` {by} {v}"));
            break;
        }
    }
    let why = why.expect("the shrunk sequence reproduces");
    let faults = if F { "with" } else { "without" };
    format!(
        "# {name} violates {target}: found by tests/tests/state_machine.rs {faults} faults\n\
         # (seed {seed:#x}, {cases} cases), shrunk and minimized;\n\
         # {why}\n{script}"
    )
}

fn reproducer_path(preset: &str, p: Property) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../corpus/reproducers")
        .join(format!("{preset}--{}.txt", p.id()))
}

/// Searches preset `P`, then asserts its verdict and its reproducers (or rewrites them with
/// `FTSIM_BLESS=1`).
fn check_verdict<const P: usize>() {
    let name = PRESETS[P].0;
    let custom = env_u64("FTSIM_VERDICT_CASES").map(|n| n as u32);
    let cases = |faults: bool| match (custom, faults) {
        (Some(n), _) => n,
        (None, false) => VERDICT_CASES,
        (None, true) => VERDICT_FAULT_CASES,
    };
    let started = std::time::Instant::now();
    let free = survey::<P, false>(cases(false));
    let faulty: BTreeSet<Property> = survey::<P, true>(cases(true))
        .difference(&free)
        .copied()
        .collect();
    let ids = |s: &BTreeSet<Property>| s.iter().map(|p| p.id()).collect::<Vec<_>>();
    let bless = std::env::var_os("FTSIM_BLESS").is_some();
    if bless {
        eprintln!(
            "verdict {name} ({}+{} cases, {:?}): without faults {:?}, only with faults {:?}",
            cases(false),
            cases(true),
            started.elapsed(),
            ids(&free),
            ids(&faulty)
        );
        remove_stale_reproducers(name, &free, &faulty);
    } else {
        assert_eq!(
            (&free, &faulty),
            (&verdict_split(name).0, &verdict_split(name).1),
            "verdict of {name} changed: without faults {:?}, only with faults {:?}",
            ids(&free),
            ids(&faulty)
        );
    }
    let all = free
        .iter()
        .map(|p| (*p, false))
        .chain(faulty.iter().map(|p| (*p, true)));
    for (p, with_faults) in all {
        let text = if with_faults {
            reproducer::<P, true>(p, cases(true))
        } else {
            reproducer::<P, false>(p, cases(false))
        };
        let path = reproducer_path(name, p);
        if bless {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &text).unwrap();
            continue;
        }
        if custom.is_some() {
            continue; // the committed reproducers come from the default budget
        }
        let committed =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            committed,
            text,
            "{} differs from the shrunk sequence the search finds now",
            path.display()
        );
    }
}

/// Removes the reproducers of `preset` for properties no longer in its verdict.
fn remove_stale_reproducers(preset: &str, free: &BTreeSet<Property>, faulty: &BTreeSet<Property>) {
    let dir = reproducer_path(preset, Property::Atomicity)
        .parent()
        .unwrap()
        .to_path_buf();
    for e in std::fs::read_dir(&dir).into_iter().flatten() {
        let path = e.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let prop = file
            .strip_prefix(&format!("{preset}--"))
            .and_then(|r| r.strip_suffix(".txt"))
            .and_then(|r| r.parse::<Property>().ok());
        if prop.is_some_and(|p| !free.contains(&p) && !faulty.contains(&p)) {
            std::fs::remove_file(&path).unwrap();
        }
    }
}

#[test]
fn verdict_pre() {
    check_verdict::<0>();
}

#[test]
fn verdict_v2() {
    check_verdict::<1>();
}

#[test]
fn verdict_merged() {
    check_verdict::<2>();
}

#[test]
fn verdict_fixes_2022() {
    check_verdict::<3>();
}

#[test]
fn verdict_rcu_hash_2023() {
    check_verdict::<4>();
}

#[test]
fn verdict_fixes_2025() {
    check_verdict::<5>();
}

#[test]
fn verdict_alt_rinse_repeat() {
    check_verdict::<6>();
}

#[test]
fn verdict_alt_blocking_peer() {
    check_verdict::<7>();
}

#[test]
fn verdict_proposed() {
    check_verdict::<8>();
}

#[test]
fn verdict_debian_6_1() {
    check_verdict::<9>();
}

#[test]
fn verdict_debian_6_12() {
    check_verdict::<10>();
}

#[test]
fn verdict_mainline_2026() {
    check_verdict::<11>();
}

#[test]
fn verdict_tests_cover_the_presets_in_order() {
    let names: Vec<&str> = PRESETS.iter().map(|p| p.0).collect();
    let verdicts: Vec<&str> = VERDICTS.iter().map(|v| v.0).collect();
    for (n, free, faulty) in VERDICTS {
        assert!(
            free.iter().all(|p| !faulty.contains(p)),
            "{n}: a property is listed twice"
        );
    }
    assert_eq!(
        names, verdicts,
        "one verdict per preset, in PRESETS order (verdict_<preset> indexes PRESETS)"
    );
}

#[test]
fn committed_reproducers_are_exactly_the_verdicts() {
    // `<preset>--<property>.txt` files are this file's; others (`fuzz-...`) belong to other
    // searches and are only replayed.
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../corpus/reproducers");
    let ours = |name: &String| {
        PRESETS
            .iter()
            .any(|(p, _)| name.starts_with(&format!("{p}--")))
    };
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(ours)
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let mut want: Vec<String> = VERDICTS
        .iter()
        .flat_map(|(n, free, faulty)| {
            free.iter()
                .chain(faulty.iter())
                .map(move |p| format!("{n}--{p}.txt"))
        })
        .collect();
    want.sort();
    assert_eq!(files, want);
}

#[test]
fn clean_presets_have_no_verdict() {
    for n in ftsim_core::protocol::CLEAN_PRESETS {
        let (_, free, faulty) = VERDICTS.iter().find(|v| v.0 == *n).unwrap();
        assert!(
            free.is_empty() && faulty.is_empty(),
            "{n} is in CLEAN_PRESETS but proptest finds {free:?} {faulty:?}"
        );
    }
}

/// The regression file is there for proptest to replay, and every entry is one proptest reads
/// (a `cc <seed>` line): a file proptest cannot parse would be skipped with a warning only.
#[test]
fn regression_file_is_data_proptest_replays() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(REGRESSIONS);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (it is committed data)", path.display()));
    let gitignore =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.gitignore"))
            .unwrap_or_default();
    assert!(
        !gitignore
            .lines()
            .any(|l| l.contains("proptest-regressions")),
        ".gitignore must not hide the regression files"
    );
    for line in text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        let seed = line
            .strip_prefix("cc ")
            .map(|r| r.split(" #").next().unwrap().trim());
        assert!(
            seed.is_some_and(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_hexdigit())),
            "{}: not a proptest entry: {line}",
            path.display()
        );
    }
}
