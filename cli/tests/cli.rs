//! The command line: exit codes 0/1/2, errors that name the problem, JSON lines with the
//! documented keys, a printed replay command that reproduces its finding, and `ftsim explore`'s
//! arguments, exit codes and written counterexamples.

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

/// `.ci/sweep`, the CI step, with `FTSIM` pointing at this build: exit code, standard output
/// and error.
fn ci_sweep(lo: u64, hi: u64, args: &[&str]) -> (i32, String) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = std::env::temp_dir().join(format!(
        "ftsim-ci-sweep-{}-{lo}-{}.jsonl",
        std::process::id(),
        args.len()
    ));
    let o = Command::new("bash")
        .arg(root.join(".ci/sweep"))
        .arg(lo.to_string())
        .arg(hi.to_string())
        .args(args)
        .env("FTSIM", env!("CARGO_BIN_EXE_ftsim"))
        .env("FTSIM_SWEEP_OUT", &out)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&out);
    (
        o.status.code().unwrap(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

/// CI fails when a preset README calls clean gets a finding: a switch of `proposed` turned back
/// to fixes-2025's value stands in for a regression (it reintroduces the kprobe finding of
/// README, `readme-fixes-2025--ipmodify-honoured.txt`), and the failure names the commands that
/// replay it. Findings in the presets that are not claimed clean do not fail CI.
#[test]
fn ci_sweep_fails_on_a_finding_in_a_clean_preset() {
    let broken = [
        "--protocol",
        "proposed",
        "--set",
        "set_filter_notifies_peer=false",
    ];
    let (c, out) = ci_sweep(0, 300, &broken);
    assert_eq!(c, 1, "{out}");
    assert!(out.contains("sweep FAILED"), "{out}");
    assert!(
        out.contains("is claimed clean (CLEAN_PRESETS) but violates ipmodify-honoured"),
        "{out}"
    );
    assert!(
        out.contains(
            "replay the sweep: ftsim run --protocol proposed --set set_filter_notifies_peer=false --seeds 0..300 --events 200"
        ),
        "{out}"
    );
    // The printed seed replay reproduces the finding.
    let line = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("replay the seed:"))
        .expect("a seed replay command");
    let args: Vec<&str> = line.split_whitespace().skip(1).collect();
    let (c, o, _) = ftsim(&args);
    assert_eq!(c, 1, "{o}");
    assert!(o.contains("ipmodify-honoured"), "{o}");
    // The same seeds of the presets as they are: proposed clean, merged's findings only counted.
    let (c, out) = ci_sweep(0, 300, &["--protocol", "proposed", "--protocol", "merged"]);
    assert_eq!(c, 0, "{out}");
    assert!(out.contains("the presets claimed clean are clean"), "{out}");
    // Bad input is a failure too, not a pass.
    let (c, out) = ci_sweep(0, 10, &["--protocol", "nonsense"]);
    assert_eq!(c, 1, "{out}");
}

/// `.ci/run` runs the asserting sweep, and README's verdict tables and CI section agree with the
/// one list of clean presets: every clean preset has a column of `.` in both tables.
#[test]
fn readme_and_ci_follow_the_clean_presets() {
    use ftsim_core::protocol::CLEAN_PRESETS;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let ci = std::fs::read_to_string(root.join(".ci/run")).unwrap();
    assert!(
        ci.contains("bash .ci/sweep \"$base\""),
        ".ci/run no longer runs .ci/sweep"
    );
    let sweep = std::fs::read_to_string(root.join(".ci/sweep")).unwrap();
    assert!(
        sweep.contains("--assert-clean"),
        ".ci/sweep does not assert"
    );
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let listed: Vec<String> = CLEAN_PRESETS.iter().map(|n| format!("`{n}`")).collect();
    let claim = format!(
        "presets claimed clean (`CLEAN_PRESETS`): {}.",
        listed.join(", ")
    );
    assert!(readme.contains(&claim), "README must say: {claim}");
    // The proptest table: `| property | pre | ... |` rows.
    let rows: Vec<Vec<&str>> = readme
        .lines()
        .skip_while(|l| !l.starts_with("| property |"))
        .take_while(|l| l.starts_with('|'))
        .map(|l| l.trim_matches('|').split('|').map(str::trim).collect())
        .collect();
    // The simulator table: whitespace-separated, from `property` to the `(cells:` line.
    let sim: Vec<Vec<&str>> = readme
        .lines()
        .skip_while(|l| !(l.starts_with("property ") && l.contains("proposed")))
        .take_while(|l| !l.starts_with("(cells:"))
        .map(|l| l.split_whitespace().collect())
        .collect();
    for (table, name) in [(&rows, "proptest"), (&sim, "simulator")] {
        assert!(table.len() > 5, "README's {name} table not found");
        for n in CLEAN_PRESETS {
            let col = table[0]
                .iter()
                .position(|h| h == n)
                .unwrap_or_else(|| panic!("README's {name} table has no column {n}"));
            for row in &table[1..] {
                if row.first().is_some_and(|c| c.starts_with("---")) {
                    continue;
                }
                assert_eq!(row[col], ".", "README's {name} table: {n} / {}", row[0]);
            }
        }
    }
}

/// `ftsim kernel` refuses what the real harness cannot perform before anything boots: exit 2,
/// naming the problem and the line. (No VM here: every case fails before QEMU starts.)
#[test]
fn kernel_refuses_unperformable_input_before_booting() {
    let dir = std::env::temp_dir().join(format!("ftsim-kernel-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let conc = write(
        "conc.txt",
        "protocol merged\nworld functions=1 tracers=1\nklp-enable f0\nt1: bpf-link fexit f0\n",
    );
    let fault = write(
        "fault.txt",
        "protocol merged\nworld functions=1 tracers=1\nklp-enable f0\nbpf-link fexit f0 !alloc=0\n",
    );
    let module = write(
        "module.txt",
        "protocol merged\nworld functions=2 tracers=1 module=m0:f1\nmodule-load m0\n",
    );
    let direct = write(
        "direct.txt",
        "protocol merged\nworld functions=1 tracers=1\ndirect-register f0\n",
    );
    // Each case: the arguments (`{conc}` and the like name the files above) and what the error
    // must say.
    let cases: &[(&str, &str)] = &[
        ("kernel {conc} --kernel 5.4", "unknown kernel `5.4`"),
        (
            "kernel {conc} --kernel 6.12 --protocol fixes-2025",
            "line 4",
        ),
        (
            "kernel {fault} --kernel 6.1 --protocol fixes-2022",
            "injects faults",
        ),
        (
            "kernel {module} --kernel 6.1 --protocol fixes-2022",
            "modules",
        ),
        (
            "kernel {direct} --kernel 6.12 --protocol fixes-2025",
            "no single-ip direct API",
        ),
        (
            "kernel --kernel 6.12 --protocol fixes-2025",
            "give a reproducer FILE",
        ),
        (
            "kernel {conc} --kernel 6.12 --random 3 --protocol fixes-2025",
            "not both",
        ),
        (
            "kernel --kernel 6.12 --random 0 --protocol fixes-2025",
            "at least one",
        ),
        (
            "kernel /nonexistent.txt --kernel 6.12 --protocol fixes-2025",
            "/nonexistent.txt",
        ),
    ];
    let files = [
        ("{conc}", &conc),
        ("{fault}", &fault),
        ("{module}", &module),
        ("{direct}", &direct),
    ];
    for (line, want) in cases {
        let args: Vec<&str> = line
            .split_whitespace()
            .map(|a| {
                files
                    .iter()
                    .find(|(k, _)| *k == a)
                    .map_or(a, |(_, p)| p.as_str())
            })
            .collect();
        let (c, _, e) = ftsim(&args);
        assert_eq!(c, 2, "{args:?}: {e}");
        assert!(e.contains(want), "{args:?}: {e}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_reader_that_goes_away_stops_ftsim_quietly() {
    // `ftsim replay ... --trace | head -1`: the trace is far longer than a pipe buffer.
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_ftsim"))
        .args([
            "replay",
            "--protocol",
            "merged",
            "--seed",
            "3",
            "--events",
            "5000",
            "--trace",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("seed=3 protocol=merged"), "{first}");
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "stderr: {err}");
    assert!(err.is_empty(), "no panic message, no internal error: {err}");
}

#[test]
fn replay_applies_set_to_a_reproducer_file() {
    // The kprobe's silent ftrace_set_filter_ip (fixes-2025) is fixed by proposed's
    // set_filter_notifies_peer: with the override the file's finding is gone.
    let file = "../corpus/reproducers/readme-fixes-2025--ipmodify-honoured.txt";
    let (code, out, _) = ftsim(&["replay", file]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("expected ipmodify-honoured: reproduced"),
        "{out}"
    );
    let (code, out, err) = ftsim(&["replay", file, "--set", "set_filter_notifies_peer=true"]);
    assert!(
        out.contains("protocol=fixes-2025+set_filter_notifies_peer=true"),
        "{out}{err}"
    );
    assert!(
        out.contains("expected ipmodify-honoured: NOT reproduced"),
        "{out}"
    );
    assert_eq!(code, 0, "{out}");
    let (code, _, err) = ftsim(&["replay", file, "--set", "no_such_switch=1"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown switch `no_such_switch`"), "{err}");
}

#[test]
fn explore_command_line() {
    let (c, _, e) = ftsim(&["explore", "--depth", "0"]);
    assert_eq!(c, 2, "{e}");
    assert!(e.contains("--depth"), "{e}");
    let (c, _, e) = ftsim(&["explore", "--depth", "2", "--functions", "99"]);
    assert_eq!(c, 2);
    assert!(e.contains("--functions"), "{e}");
    let (c, _, e) = ftsim(&["explore", "--depth", "2", "--protocol", "nope"]);
    assert_eq!(c, 2);
    assert!(e.contains("unknown protocol"), "{e}");
    // A clean bound exits 0.
    let (c, out, _) = ftsim(&["explore", "--protocol", "fixes-2025", "--depth", "1"]);
    assert_eq!(c, 0, "{out}");
    assert!(out.contains("distinct"), "{out}");
    // Findings exit 1; JSON lines end with a summary; written counterexamples replay.
    let dir = std::env::temp_dir().join(format!("ftsim-explore-{}", std::process::id()));
    let (c, out, e) = ftsim(&[
        "explore",
        "--protocol",
        "merged",
        "--depth",
        "3",
        "--functions",
        "1",
        "--tracers",
        "0",
        "--json",
        "-o",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(c, 1, "{e}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let last = lines.last().unwrap();
    assert_eq!(last["kind"], "summary");
    assert!(last["distinct"].as_u64().unwrap() > 0);
    let f = lines
        .iter()
        .find(|l| l["property"] == "ipmodify-honoured")
        .unwrap();
    assert_eq!(f["depth"], 3);
    assert_eq!(f["reproduces"], true);
    let file = f["file"].as_str().unwrap();
    let (c, out, _) = ftsim(&["replay", file]);
    assert_eq!(c, 1);
    assert!(
        out.contains("expected ipmodify-honoured: reproduced"),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The scripts and README build and run the binary from this package: every `cargo build
/// --release` of `.ci/run` and `kernel/smoke.sh` (which then run `target/release/ftsim`) and
/// every `cargo run --release` of README names `-p ftsim-cli` (a script still building
/// `ftsim-sim` would build no binary, and run a stale one or none).
#[test]
fn scripts_build_the_binary_from_this_package() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let this = format!("-p {}", env!("CARGO_PKG_NAME"));
    for (file, cmd) in [
        (".ci/run", "cargo build --release"),
        ("kernel/smoke.sh", "cargo build --release"),
        ("README.md", "cargo run --release"),
    ] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let lines: Vec<&str> = text.lines().filter(|l| l.contains(cmd)).collect();
        assert!(!lines.is_empty(), "{file}: no `{cmd}` line");
        for l in lines {
            assert!(l.contains(&this), "{file}: `{l}` does not name `{this}`");
        }
    }
}
