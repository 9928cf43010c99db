//! Replays every reproducer committed under `corpus/reproducers/` and asserts that each property
//! on its `expect` line reproduces. Sequential reproducers are judged by the core's checks and
//! by the oracle (the verdict search of `state_machine.rs` wrote them that way); concurrent ones
//! by the core's checks.

mod support;

use ftsim_core::property::Property;
use ftsim_drive::script::Script;
use std::path::PathBuf;

fn reproducer_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../corpus/reproducers");
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(d) => d
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "txt"))
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
}

#[test]
fn every_reproducer_reproduces() {
    let mut failures = Vec::new();
    for path in reproducer_files() {
        let text = std::fs::read_to_string(&path).unwrap();
        let script = Script::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            !script.expect.is_empty(),
            "{}: no `expect` line",
            path.display()
        );
        let found: Vec<Property> = if script.is_concurrent() {
            script
                .replay()
                .findings
                .iter()
                .map(|v| v.property)
                .collect()
        } else {
            support::replay(&script)
                .iter()
                .map(|v| v.property)
                .collect()
        };
        for p in &script.expect {
            if !found.contains(p) {
                failures.push(format!("{}: expected {p}, found {found:?}", path.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_reproducer_that_no_longer_reproduces_fails() {
    // The replay must be able to fail: a clean sequence does not show what it is said to show.
    let script = Script::parse(
        "protocol merged\nworld functions=2\nexpect ipmodify-honoured\nklp-enable f0\n",
    )
    .unwrap();
    let found = support::replay(&script);
    assert!(
        found
            .iter()
            .all(|v| v.property != Property::IpmodifyHonoured),
        "{found:?}"
    );
}
