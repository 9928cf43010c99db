//! The command line: exit codes 0/1/2, errors that name the problem, JSON lines with the
//! documented keys, and a printed replay command that reproduces its finding.

use std::process::Command;

fn ftsim(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ftsim"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn command_line_exit_codes_and_errors() {
    let (c, _, e) = ftsim(&["run", "--protocol", "nonsense"]);
    assert_eq!(c, 2);
    assert!(e.contains("unknown protocol `nonsense`"), "{e}");
    let (c, _, e) = ftsim(&["run", "--protocol", "merged", "--set", "peer_scan=sideways"]);
    assert_eq!(c, 2);
    assert!(e.contains("unknown value `sideways`"), "{e}");
    let (c, _, e) = ftsim(&["run", "--seeds", "5..3"]);
    assert_eq!(c, 2);
    assert!(e.contains("empty"), "{e}");
    let (c, _, e) = ftsim(&["run", "--seeds", "99999999999999999999"]);
    assert_eq!(c, 2);
    assert!(e.contains("bad --seeds"), "{e}");
    let (c, _, e) = ftsim(&["replay", "/nonexistent/file.txt"]);
    assert_eq!(c, 2);
    assert!(e.contains("cannot read"), "{e}");
    // A clean run exits 0, a run with findings 1, with JSON lines ending in a summary.
    let (c, out, _) = ftsim(&[
        "run",
        "--protocol",
        "pre",
        "--seeds",
        "0..3",
        "--json",
        "--no-shrink",
    ]);
    assert!(c == 0 || c == 1);
    let last = out.lines().last().unwrap();
    let v: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(v["kind"], "summary");
    let (c, out, _) = ftsim(&[
        "run",
        "--protocol",
        "merged",
        "--seeds",
        "0..200",
        "--json",
        "--no-shrink",
    ]);
    assert_eq!(c, 1);
    let finding: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    for key in [
        "kind", "protocol", "seed", "property", "class", "ops", "replay",
    ] {
        assert!(!finding[key].is_null(), "missing {key}: {finding}");
    }
    // The replay command it prints reproduces the property.
    let replay: Vec<String> = finding["replay"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .skip(1)
        .map(String::from)
        .collect();
    let args: Vec<&str> = replay.iter().map(|s| s.as_str()).collect();
    let (c, out, _) = ftsim(&args);
    assert_eq!(c, 1);
    assert!(out.contains(finding["property"].as_str().unwrap()), "{out}");
}

#[test]
fn bad_reproducer_file_is_a_usage_error() {
    let dir = std::env::temp_dir().join(format!("ftsim-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("bad.txt");
    std::fs::write(&f, "protocol merged\nworld functions=2\nklp-enable f9\n").unwrap();
    let (c, _, e) = ftsim(&["replay", f.to_str().unwrap()]);
    assert_eq!(c, 2);
    assert!(e.contains("only 2 functions"), "{e}");
}
