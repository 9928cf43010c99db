//! One meaning per type name (issue 13): no two public types of the workspace's libraries and
//! binary (`core/src`, `drive/src`, `sim/src`, `cli/src` with the report and the `ftsim` binary,
//! `tests/src`) share a name, so that `Config`, `Outcome` or `Model` cannot again mean a sweep's,
//! a harness's and an exploration's configuration at once. Read from the source text, like
//! `core/tests/names.rs`: every `pub struct`, `pub enum`, `pub trait`, `pub type` and
//! `pub union` (plain `pub`; `pub(crate)` and `pub(super)` stay inside their crate or module).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Names two public types may still share, each with why.
const SHARED: &[(&str, &str)] = &[];

/// The directories whose public types are scanned, from the workspace root.
const ROOTS: &[&str] = &["core/src", "drive/src", "sim/src", "cli/src", "tests/src"];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The names of the public types a source text declares, with their line numbers.
fn public_types(src: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    for (n, line) in src.lines().enumerate() {
        let Some(rest) = line.trim_start().strip_prefix("pub ") else {
            continue;
        };
        let Some(rest) = ["struct ", "enum ", "trait ", "type ", "union "]
            .iter()
            .find_map(|k| rest.strip_prefix(k))
        else {
            continue;
        };
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.push((name, n + 1));
        }
    }
    out
}

/// Every public type name with the places (file:line) that declare one.
fn declarations() -> BTreeMap<String, Vec<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in ROOTS {
        let mut files = Vec::new();
        sources(&root.join(r), &mut files);
        for f in files {
            let src = std::fs::read_to_string(&f).unwrap();
            let shown = f.strip_prefix(&root).unwrap().display().to_string();
            for (name, line) in public_types(&src) {
                by_name
                    .entry(name)
                    .or_default()
                    .push(format!("{shown}:{line}"));
            }
        }
    }
    by_name
}

/// The names declared more than once and not in `shared`.
fn duplicates(
    by_name: &BTreeMap<String, Vec<String>>,
    shared: &[(&str, &str)],
) -> Vec<(String, Vec<String>)> {
    by_name
        .iter()
        .filter(|(name, at)| at.len() > 1 && !shared.iter().any(|(s, _)| s == name))
        .map(|(name, at)| (name.clone(), at.clone()))
        .collect()
}

#[test]
fn no_two_public_types_share_a_name() {
    let by_name = declarations();
    // One type of each root: a root the scan misses (a crate moved) fails here.
    for name in [
        "Kernel",
        "SweepConfig",
        "ReportConfig",
        "ExploreArgs",
        "Scenario",
    ] {
        assert!(
            by_name.contains_key(name),
            "the scan finds the workspace's types: {name} not seen"
        );
    }
    let dups = duplicates(&by_name, SHARED);
    let shown: Vec<String> = dups
        .iter()
        .map(|(name, at)| format!("{name}: {}", at.join(", ")))
        .collect();
    assert!(
        dups.is_empty(),
        "public types sharing a name (rename one, or list it in SHARED with why):\n{}",
        shown.join("\n")
    );
}

#[test]
fn every_shared_name_is_still_shared() {
    let by_name = declarations();
    for (name, why) in SHARED {
        assert!(!why.is_empty(), "{name}: say why it is shared");
        assert!(
            by_name.get(*name).is_some_and(|at| at.len() > 1),
            "{name} is no longer shared: drop it from SHARED"
        );
    }
}

#[test]
fn a_shared_name_is_seen() {
    let src = "pub struct Config {\n}\n    pub enum Config { A }\npub(crate) struct Hidden;\n";
    let by_name: BTreeMap<String, Vec<String>> =
        public_types(src)
            .into_iter()
            .fold(BTreeMap::new(), |mut m, (name, line)| {
                m.entry(name).or_default().push(format!("x.rs:{line}"));
                m
            });
    assert_eq!(
        duplicates(&by_name, &[]),
        vec![(
            "Config".to_string(),
            vec!["x.rs:1".to_string(), "x.rs:3".to_string()]
        )]
    );
    assert!(duplicates(&by_name, &[("Config", "test")]).is_empty());
    assert!(!by_name.contains_key("Hidden"));
}
