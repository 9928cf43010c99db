//! Replays the checked-in fuzz corpora on stable, through the same harness functions the
//! cargo-fuzz targets call (`ftsim_sim::harness`), without libFuzzer:
//!
//! - `corpus/ops/*`, `corpus/schedule/*`: libFuzzer inputs (raw bytes, minimized with
//!   `cargo fuzz cmin`). Every one must decode and be accepted (libFuzzer keeps no rejected
//!   input), run deterministically, and its printed reproducer must parse back and replay to the
//!   same properties through `harness::replay_reference` (the plain, slow path: `Script::replay`,
//!   what `ftsim replay` runs, with the core's checks and the oracle). Findings are fine here:
//!   the bytes choose any preset, and most presets have findings; the targets panic on them, this
//!   test checks the harness reports them faithfully.
//! - `corpus/parse/*`: text; no parser may panic and whatever parses must round-trip.
//! - `corpus/reproducers/fuzz-<preset>--<property>.txt`: minimized fuzz crashes turned into
//!   reproducer files (each says in its comments what it found); each must still find its
//!   property. (The other files of that directory have their own replay test.)

use ftsim_core::property::Property;
use ftsim_drive::script::Script;
use ftsim_sim::harness::{
    self, HarnessConfig, HarnessOutcome, HarnessVerdict, OpsInput, ParseInput, ScheduleInput,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn corpus_dir(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../corpus")
        .join(sub)
}

fn files(sub: &str) -> Vec<PathBuf> {
    let dir = corpus_dir(sub);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    v.sort();
    v
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// Runs every file of a byte corpus through `run`, checks determinism and that the reproducer
/// replays to the same properties; returns how many files found each property.
fn replay_bytes<T>(
    sub: &str,
    run: impl Fn(&T) -> HarnessVerdict,
) -> (usize, BTreeMap<Property, usize>)
where
    T: for<'a> harness::arbitrary::Arbitrary<'a>,
{
    let paths = files(sub);
    assert!(!paths.is_empty(), "corpus/{sub} is empty");
    let mut found: BTreeMap<Property, usize> = BTreeMap::new();
    for p in &paths {
        let bytes = std::fs::read(p).unwrap();
        let input: T = harness::decode(&bytes)
            .unwrap_or_else(|e| panic!("corpus/{sub}/{}: does not decode: {e}", name(p)));
        let out = match run(&input) {
            HarnessVerdict::Ran(out) => out,
            HarnessVerdict::Rejected(why) => panic!(
                "corpus/{sub}/{}: rejected ({why}); libFuzzer keeps no rejected input",
                name(p)
            ),
        };
        let again = run(&input).outcome().cloned().unwrap();
        assert_eq!(
            out.script,
            again.script,
            "corpus/{sub}/{}: not deterministic",
            name(p)
        );
        assert_eq!(
            out.findings,
            again.findings,
            "corpus/{sub}/{}: not deterministic",
            name(p)
        );
        check_reproducer(&format!("corpus/{sub}/{}", name(p)), &out);
        for prop in out.properties() {
            *found.entry(prop).or_default() += 1;
        }
    }
    (paths.len(), found)
}

/// The reproducer text parses back to the same script and replays to the same properties.
fn check_reproducer(what: &str, out: &HarnessOutcome) {
    let text = out.script.to_string();
    let script = Script::parse(&text)
        .unwrap_or_else(|e| panic!("{what}: reproducer does not parse: {e}\n{text}"));
    assert_eq!(
        script, out.script,
        "{what}: reproducer does not round-trip\n{text}"
    );
    let mut props: Vec<Property> = harness::replay_reference(&script)
        .iter()
        .map(|v| v.property)
        .collect();
    props.sort();
    props.dedup();
    assert_eq!(
        props,
        out.properties(),
        "{what}: replaying the reproducer finds other properties\n{text}"
    );
}

fn summary(sub: &str, n: usize, found: &BTreeMap<Property, usize>) {
    let f: Vec<String> = found.iter().map(|(p, c)| format!("{p}={c}")).collect();
    eprintln!(
        "corpus/{sub}: {n} inputs; inputs with findings, by property: {}",
        f.join(" ")
    );
}

#[test]
fn ops_corpus_replays() {
    let (n, found) =
        replay_bytes::<OpsInput>("ops", |i| harness::run_ops(i, &HarnessConfig::default()));
    summary("ops", n, &found);
}

#[test]
fn schedule_corpus_replays() {
    let (n, found) = replay_bytes::<ScheduleInput>("schedule", |i| {
        harness::run_schedule(i, &HarnessConfig::default())
    });
    summary("schedule", n, &found);
}

#[test]
fn parse_corpus_never_panics() {
    let paths = files("parse");
    assert!(!paths.is_empty(), "corpus/parse is empty");
    let (mut scripts, mut protocols) = (0, 0);
    for p in &paths {
        let bytes = std::fs::read(p).unwrap();
        let input: ParseInput = harness::decode(&bytes).unwrap();
        let parsed = harness::run_parse(&input)
            .unwrap_or_else(|why| panic!("corpus/parse/{}: rejected ({why})", name(p)));
        scripts += parsed.script as usize;
        protocols += parsed.protocol_file as usize;
    }
    eprintln!(
        "corpus/parse: {} inputs, {scripts} parse as scripts, {protocols} as protocol files",
        paths.len()
    );
    assert!(
        scripts > 0 && protocols > 0,
        "the parse corpus should hold valid scripts and protocol files too"
    );
}

/// `fuzz-<preset>--<property>.txt`: the property it was named after is expected, and found.
#[test]
fn fuzz_reproducers_still_reproduce() {
    for p in files("reproducers")
        .into_iter()
        .filter(|p| name(p).starts_with("fuzz-"))
    {
        let what = format!("corpus/reproducers/{}", name(&p));
        let text = std::fs::read_to_string(&p).unwrap();
        let script = Script::parse(&text).unwrap_or_else(|e| panic!("{what}: {e}"));
        let stem = name(&p).trim_end_matches(".txt").to_string();
        let (preset, prop) = stem["fuzz-".len()..]
            .split_once("--")
            .unwrap_or_else(|| panic!("{what}: name is not fuzz-<preset>--<property>.txt"));
        let prop: Property = prop.parse().unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(
            text.lines()
                .any(|l| l.trim() == format!("protocol {preset}")),
            "{what}: not for preset {preset}"
        );
        assert!(
            script.expect.contains(&prop),
            "{what}: its `expect` line does not name {prop}"
        );
        let found = harness::replay_reference(&script);
        for e in &script.expect {
            assert!(
                found.iter().any(|v| v.property == *e),
                "{what}: no longer finds {e}; found {found:?}"
            );
        }
    }
}
