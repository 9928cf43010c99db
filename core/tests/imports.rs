//! No import ring in the model (issue 13): the graph of which module of `core/src` and
//! `drive/src` names which (`use crate::...` lines and inline `crate::...` paths, and in `drive`
//! the `ftsim_core::...` paths into the core; comments and `#[cfg(test)]` modules left out) is
//! acyclic, a module and its own submodules counting as one node. The two crates are one graph:
//! their module names are distinct, and the layers run across the crate line (the core holds
//! layers 1-5, `ftsim-drive` 6-8, [`each_crate_holds_its_layers`]; the core cannot name the drive,
//! Cargo refuses the cycle, and the test refuses the path too).
//!
//! Some modules are read as one node, and an edge may be excused, each named here:
//! - [`PROGRAM`]: the frame registry (`frames.rs`) and the frame bodies (`ftrace.rs`, `direct.rs`,
//!   `owners/`) are one node. A body's step returns `Flow::Call(Frame)` and `Frame` enumerates
//!   every body: the registry is the sum type of kernel functions that call one another
//!   (`register_ftrace_function` calls an owner's `ops_func`, the owner calls
//!   `modify_ftrace_direct`). Inside it, ftrace reaches the owners only through their dispatch
//!   (`owners/mod.rs`), never an owner's module ([`ftrace_reaches_owners_through_the_dispatch`]).
//! - [`EXCUSED`]: none. The last one, `kernel -> machine` (`Kernel` owned the threads), went when
//!   the threads became executor state (`machine::Threads`, kept beside the kernel). An excused
//!   edge that is gone fails the test, so an excuse cannot outlive its edge.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The frame registry and the frame bodies: one node.
const PROGRAM: &[&str] = &["frames", "ftrace", "direct", "owners"];

/// Edges left out of the cycle check, each with why (none today).
const EXCUSED: &[(&str, &str, &str)] = &[];

type Graph = BTreeMap<String, BTreeSet<String>>;

/// The module path of a file under `src`: `owners/bpf.rs` is `owners::bpf`, `owners/mod.rs` is
/// `owners`, `lib.rs` is the crate root (the empty path).
fn module_of(rel: &Path) -> String {
    let mut parts: Vec<String> = rel
        .with_extension("")
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts.join("::")
}

/// The source without comments and without its `#[cfg(test)] mod tests` (tests may use any
/// module).
fn code(src: &str) -> String {
    let src = match src.find("#[cfg(test)]\nmod tests") {
        Some(i) => &src[..i],
        None => src,
    };
    src.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `crate::a::b::...` path in `code`, resolved to the longest prefix that is a module.
fn references(code: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = references_via(code, "crate::", modules);
    out.extend(references_via(code, "ftsim_core::", modules));
    out.extend(references_via(code, "ftsim_drive::", modules));
    out
}

/// Every `{prefix}a::b::...` path in `code` (`prefix` a crate's name and `::`), resolved to the
/// longest prefix that is a module.
fn references_via(code: &str, prefix: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find(prefix) {
        let before = rest[..i].chars().last();
        rest = &rest[i + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // `foo_crate::` is not `crate::` (`$crate::` is)
        }
        let path: Vec<&str> = rest
            .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .next()
            .unwrap_or("")
            .split("::")
            .filter(|s| !s.is_empty())
            .collect();
        for n in (1..=path.len()).rev() {
            let m = path[..n].join("::");
            if modules.contains(&m) {
                out.insert(m);
                break;
            }
        }
    }
    out
}

/// The node a module belongs to: its top-level module, or the program.
fn node(module: &str) -> String {
    let top = module.split("::").next().unwrap_or("");
    if PROGRAM.contains(&top) {
        "<program>".to_string()
    } else {
        top.to_string()
    }
}

/// Every `.rs` file under `src`, with its module path.
fn modules_under(src: &Path) -> Vec<(String, std::path::PathBuf)> {
    let mut files = Vec::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push((module_of(p.strip_prefix(src).unwrap()), p));
            }
        }
    }
    files
}

/// Module -> the modules it names, over every `.rs` file under the `src` folders (the crate
/// roots, `lib.rs`, left out: they declare every module).
fn module_graph(srcs: &[std::path::PathBuf]) -> BTreeMap<String, BTreeSet<String>> {
    let files: Vec<(String, std::path::PathBuf)> =
        srcs.iter().flat_map(|s| modules_under(s)).collect();
    let files: Vec<_> = files.into_iter().filter(|(m, _)| !m.is_empty()).collect();
    let modules: BTreeSet<String> = files.iter().map(|(m, _)| m.clone()).collect();
    assert_eq!(
        modules.len(),
        files.len(),
        "two files of core/src and drive/src have one module path"
    );
    files
        .iter()
        .map(|(m, p)| {
            let refs = references(&code(&std::fs::read_to_string(p).unwrap()), &modules);
            (m.clone(), refs)
        })
        .collect()
}

/// The node graph: an edge between two nodes for every reference between their modules.
fn node_graph(modules: &BTreeMap<String, BTreeSet<String>>) -> Graph {
    let mut g = Graph::new();
    for (m, refs) in modules {
        if m.is_empty() {
            continue; // lib.rs declares every module
        }
        let a = node(m);
        g.entry(a.clone()).or_default();
        for r in refs {
            let b = node(r);
            if b != a {
                g.entry(a.clone()).or_default().insert(b);
            }
        }
    }
    g
}

/// A cycle of `g`, if it has one.
fn cycle(g: &Graph) -> Option<Vec<String>> {
    // 0 unvisited, 1 on the stack, 2 done
    fn dfs(g: &Graph, v: &str, mark: &mut BTreeMap<String, u8>, stack: &mut Vec<String>) -> bool {
        mark.insert(v.to_string(), 1);
        stack.push(v.to_string());
        for w in g.get(v).into_iter().flatten() {
            match mark.get(w).copied().unwrap_or(0) {
                1 => {
                    let i = stack.iter().position(|x| x == w).unwrap();
                    stack.drain(..i);
                    stack.push(w.clone());
                    return true;
                }
                0 if dfs(g, w, mark, stack) => return true,
                _ => {}
            }
        }
        stack.pop();
        mark.insert(v.to_string(), 2);
        false
    }
    let mut mark = BTreeMap::new();
    for v in g.keys() {
        let mut stack = Vec::new();
        if mark.get(v).copied().unwrap_or(0) == 0 && dfs(g, v, &mut mark, &mut stack) {
            return Some(stack);
        }
    }
    None
}

fn core_src() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn drive_src() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../drive/src")
}

/// Both crates' sources, one graph.
fn both() -> BTreeMap<String, BTreeSet<String>> {
    module_graph(&[core_src(), drive_src()])
}

#[test]
fn core_has_no_import_cycle() {
    let mut g = node_graph(&both());
    for (a, b, why) in EXCUSED {
        let edge = g.get_mut(*a).is_some_and(|s| s.remove(*b));
        assert!(
            edge,
            "the excused edge {a} -> {b} ({why}) is gone: remove it from EXCUSED"
        );
    }
    if let Some(c) = cycle(&g) {
        panic!(
            "import cycle in core/src and drive/src: {} (each arrow: a `crate::` or \
             `ftsim_core::` path in the first module's code naming the second)",
            c.join(" -> ")
        );
    }
}

#[test]
fn ftrace_reaches_owners_through_the_dispatch() {
    let modules = module_graph(&[core_src()]);
    let mut seen = 0;
    for (m, refs) in &modules {
        let top = m.split("::").next().unwrap_or("");
        if top != "ftrace" && top != "direct" {
            continue;
        }
        seen += 1;
        let owners: Vec<&String> = refs.iter().filter(|r| r.starts_with("owners::")).collect();
        assert!(
            owners.is_empty(),
            "{m} names {owners:?}: reach an owner through owners/mod.rs"
        );
    }
    assert!(seen >= 2, "no ftrace or direct module found under core/src");
}

/// The checks can fail: a ring is found, and a path inside a comment does not count.
#[test]
fn the_cycle_check_sees_a_ring() {
    let modules: BTreeSet<String> = ["a", "b", "c", "owners::bpf", "owners"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let refs = references(
        &code("use crate::b::X;\n// crate::c\nfn f() { ftsim_core::owners::bpf::g() }"),
        &modules,
    );
    assert_eq!(
        refs,
        ["b", "owners::bpf"].iter().map(|s| s.to_string()).collect()
    );
    let mut g = Graph::new();
    for (a, b) in [("a", "b"), ("b", "c"), ("c", "a")] {
        g.entry(a.into()).or_default().insert(b.into());
    }
    assert_eq!(cycle(&g).map(|c| c.len()), Some(4)); // a -> b -> c -> a
    g.get_mut("c").unwrap().clear();
    assert_eq!(cycle(&g), None);
    assert_eq!(module_of(Path::new("owners/mod.rs")), "owners");
    assert_eq!(module_of(Path::new("owners/bpf.rs")), "owners::bpf");
    assert_eq!(node("owners::bpf"), "<program>");
}

/// ARCHITECTURE.md's layers of `core/src` (1-5, [`CORE_LAYERS`]) and `drive/src` (6-8), top (1)
/// to bottom: a module's code names only modules of its own layer or of the layers above
/// ([`core_imports_follow_the_layers`]).
const LAYERS: &[(&str, u8)] = &[
    // 1 vocabulary
    ("step", 1),
    ("ids", 1),
    ("errno", 1),
    ("locks", 1),
    ("op", 1),
    ("property", 1),
    ("protocol", 1),
    ("world", 1),
    // 2 state
    ("kernel", 2),
    ("hash", 2),
    ("slots", 2),
    ("copy", 2),
    // 3 frames: the registry and the bodies, one node
    ("<program>", 3),
    // 4 interpreter
    ("machine", 4),
    // 5 projections
    ("walk", 5),
    ("fingerprint", 5),
    ("footprint", 5),
    // 6 judging
    ("check", 6),
    ("observe", 6),
    ("oracle", 6),
    ("lockdep", 6),
    ("findings", 6),
    // 7 executor
    ("exec", 7),
    ("decide", 7),
    ("seq", 7),
    ("sched", 7),
    // 8 checked runs
    ("checked", 8),
    ("linearize", 8),
    ("script", 8),
    // feature `fuzz`: the fuzz harness over the checked runs
    ("fuzz", 8),
];

/// The core holds layers 1 to this one; `ftsim-drive` the others.
const CORE_LAYERS: u8 = 5;

fn layer(node: &str) -> u8 {
    match LAYERS.iter().find(|(n, _)| *n == node) {
        Some((_, l)) => *l,
        None => panic!(
            "{node} (core/src or drive/src) has no layer: place it in LAYERS here and in \
             ARCHITECTURE.md's Layers"
        ),
    }
}

#[test]
fn core_imports_follow_the_layers() {
    let mut g = node_graph(&both());
    for (a, b, _) in EXCUSED {
        g.get_mut(*a).map(|s| s.remove(*b));
    }
    let mut wrong = Vec::new();
    for (a, refs) in &g {
        for b in refs {
            if layer(b) > layer(a) {
                wrong.push(format!(
                    "{a} (layer {}) -> {b} (layer {})",
                    layer(a),
                    layer(b)
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "core/src or drive/src names a lower layer (ARCHITECTURE.md, Layers): {}",
        wrong.join("; ")
    );
}

/// The crate line is a layer line: every module of `core/src` is in layers 1 to [`CORE_LAYERS`],
/// every module of `drive/src` below them, so the core is the model and nothing that drives it.
#[test]
fn each_crate_holds_its_layers() {
    let mut wrong = Vec::new();
    for (src, core) in [(core_src(), true), (drive_src(), false)] {
        let modules = module_graph(&[src]);
        assert!(modules.len() >= 10, "too few modules found");
        for m in modules.keys() {
            let l = layer(&node(m));
            if (l <= CORE_LAYERS) != core {
                let krate = if core { "core" } else { "drive" };
                wrong.push(format!("{krate}/src: {m} (layer {l})"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "a module in the wrong crate (core: layers 1-{CORE_LAYERS}, drive: the rest): {}",
        wrong.join("; ")
    );
}
