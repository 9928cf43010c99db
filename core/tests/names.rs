//! One name per frame (issue 13): every entry of the frame registry (`frames!` in
//! `core/src/frames.rs`) is `X(path::X)`, the variant named like its struct, and `X` is the
//! CamelCase of the kernel function its `Step::NAME` gives (`__ftrace_hash_update_ipmodify` ->
//! `FtraceHashUpdateIpmodify`); a frame that keeps a program counter keeps it in `XPc`, an enum
//! named after the frame, never in a bare number. Read from the source text, like `imports.rs`.

use std::collections::BTreeMap;
use std::path::Path;

/// Frames whose `NAME` is no identifier, with the one name they carry: `ops->ops_func` is the
/// indirect call through an ops, not a function of that name.
const NOT_CAMEL_CASE: &[(&str, &str)] = &[("OpsFunc", "ops->ops_func")];

/// The CamelCase of a kernel function's name: leading underscores dropped, each part between
/// `_` or `+` capitalized.
fn camel(name: &str) -> String {
    name.trim_start_matches('_')
        .split(['_', '+'])
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn sources(dir: &Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(std::fs::read_to_string(&p).unwrap());
        }
    }
}

/// `(variant, struct)` of every registry entry.
fn registry(frames_rs: &str) -> Vec<(String, String)> {
    let start = frames_rs.find("frames! {\n").expect("the frames! registry");
    let body = &frames_rs[start + "frames! {\n".len()..];
    let body = &body[..body.find("\n}").unwrap()];
    body.lines()
        .map(|l| {
            let l = l.trim().trim_end_matches(',');
            let (var, path) = l.split_once('(').expect("`Variant(path)`");
            let ty = path.trim_end_matches(')').rsplit("::").next().unwrap();
            (var.to_string(), ty.to_string())
        })
        .collect()
}

/// Every `impl Step for X { const NAME: &'static str = "..."; ... }` and every frame struct's
/// `pc` field type, over all sources.
fn names_and_pcs(srcs: &[String]) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let (mut names, mut pcs) = (BTreeMap::new(), BTreeMap::new());
    for s in srcs {
        for (i, _) in s.match_indices("impl Step for ") {
            let rest = &s[i + "impl Step for ".len()..];
            let ty = rest.split(' ').next().unwrap().to_string();
            let q = rest.find("const NAME: &'static str = \"").unwrap() + 28;
            let name = rest[q..q + rest[q..].find('"').unwrap()].to_string();
            names.insert(ty, name);
        }
        for (i, _) in s.match_indices("pub struct ") {
            let rest = &s[i + "pub struct ".len()..];
            let ty = rest.split(' ').next().unwrap().to_string();
            let fields = &rest[..rest.find("\n}").unwrap()];
            if let Some(l) = fields.lines().find(|l| l.trim_start().starts_with("pc: ")) {
                pcs.insert(
                    ty,
                    l.trim()
                        .trim_start_matches("pc: ")
                        .trim_end_matches(',')
                        .into(),
                );
            }
        }
    }
    (names, pcs)
}

#[test]
fn a_frame_is_named_after_its_kernel_function() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut srcs = Vec::new();
    sources(&src, &mut srcs);
    let frames_rs = std::fs::read_to_string(src.join("frames.rs")).unwrap();
    let reg = registry(&frames_rs);
    assert!(reg.len() > 40, "the registry lists every frame: {reg:?}");
    let (names, pcs) = names_and_pcs(&srcs);
    for (var, ty) in &reg {
        assert_eq!(
            var, ty,
            "registry entry {var}({ty}): the variant is named like its struct"
        );
        let name = names
            .get(ty)
            .unwrap_or_else(|| panic!("{ty} implements Step"));
        match NOT_CAMEL_CASE.iter().find(|(t, _)| t == ty) {
            Some((_, n)) => assert_eq!(name, n, "{ty}'s NAME"),
            None => assert_eq!(
                &camel(name),
                ty,
                "{ty} is not named after its NAME `{name}`"
            ),
        }
        if let Some(pc) = pcs.get(ty) {
            assert_eq!(pc, &format!("{ty}Pc"), "{ty}'s program counter");
        }
    }
    assert!(
        pcs.len() > 35,
        "the frames with a program counter are found: {pcs:?}"
    );
}

#[test]
fn camel_case_of_kernel_names() {
    assert_eq!(
        camel("__ftrace_hash_update_ipmodify"),
        "FtraceHashUpdateIpmodify"
    );
    assert_eq!(camel("ftrace_set_filter+notrace"), "FtraceSetFilterNotrace");
    assert_eq!(camel("klp_enable_patch"), "KlpEnablePatch");
}
