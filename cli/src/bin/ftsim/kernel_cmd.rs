//! `ftsim kernel`: reproducers and campaigns on real kernels (`ftsim_sim::linux`).

use crate::cli::{self, UsageError, EXIT_CLEAN, EXIT_FOUND, EXIT_INTERNAL};
use clap::Args;
use ftsim_core::protocol::Protocol;
use ftsim_drive::script::Script;
use ftsim_sim::linux::campaign::{self, Campaign, Tally};
use ftsim_sim::linux::qemu::{self, Machine, Machinery};
use ftsim_sim::linux::side::{self, TableRow};
use ftsim_sim::linux::{check_performable, map, RealKernel};
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct KernelArgs {
    /// Sequential reproducer files (instead of --random); several run in one boot and print a
    /// table (agreement, and whether each file's expected finding is confirmed on the kernel).
    pub files: Vec<PathBuf>,
    /// The real kernel: 6.1 or 6.12 (pinned in kernel/pins.env).
    #[arg(long)]
    pub kernel: String,
    /// Compare with this preset or protocol file instead of the kernel's own preset.
    #[arg(long = "protocol", value_name = "NAME|FILE")]
    pub protocol: Option<String>,
    /// A differential campaign of N random sequential scripts.
    #[arg(long, value_name = "N")]
    pub random: Option<u64>,
    /// The campaign's seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Campaign scripts per boot.
    #[arg(long, default_value_t = 50)]
    pub batch: usize,
    /// Where the campaign writes its disagreements (default: target/kernel/disagreements).
    #[arg(short = 'o', long = "out", value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// With several FILEs: skip (and list) the ones the real harness cannot perform instead of
    /// refusing them.
    #[arg(long)]
    pub skip_unperformable: bool,
    /// One JSON object (file) or one per line (campaign).
    #[arg(long)]
    pub json: bool,
}

/// What a command needs: the kernel, the protocol the prediction uses and its name.
struct Setup {
    kernel: RealKernel,
    proto: Protocol,
    proto_name: String,
    json: bool,
}

pub fn run(a: KernelArgs) -> Result<i32, UsageError> {
    let kernel = RealKernel::parse(&a.kernel).map_err(UsageError)?;
    let proto_name = a
        .protocol
        .clone()
        .unwrap_or_else(|| kernel.preset().to_string());
    let proto = cli::target(&proto_name, &[])?.proto;
    let s = Setup {
        kernel,
        proto,
        proto_name,
        json: a.json,
    };
    match (a.files.as_slice(), a.random) {
        ([_, ..], Some(_)) => Err(UsageError("give FILEs or --random N, not both".into())),
        ([], None) => Err(UsageError("give a reproducer FILE or --random N".into())),
        ([path], None) => one(&s, path),
        (files, None) => table(&s, files, a.skip_unperformable),
        ([], Some(n)) => random(&s, n, a.seed, a.batch, a.out.as_deref()),
    }
}

fn machinery(e: Machinery) -> Result<i32, UsageError> {
    eprintln!("ftsim kernel: machinery failed: {e}");
    Ok(EXIT_INTERNAL)
}

/// Reads a reproducer and checks that the harness performs it (the error names the line).
fn load(path: &Path, kernel: RealKernel) -> Result<(Script, Result<(), String>), UsageError> {
    let at = |e: String| UsageError(format!("{}: {e}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| at(e.to_string()))?;
    let script = Script::parse(&text).map_err(at)?;
    let ok = check_performable(&script, kernel, Some(&map::op_line_numbers(&text)));
    Ok((script, ok))
}

fn prepare(s: &Setup) -> Result<Machine, Machinery> {
    qemu::prepare(s.kernel, s.json)
}

fn one(s: &Setup, path: &Path) -> Result<i32, UsageError> {
    let (script, ok) = load(path, s.kernel)?;
    ok.map_err(|e| UsageError(format!("{}: {e}", path.display())))?;
    let m = match prepare(s) {
        Ok(m) => m,
        Err(e) => return machinery(e),
    };
    let ops: Vec<_> = script.lines.iter().map(|l| l.op.clone()).collect();
    let file_proto = script.proto.to_string();
    match side::run_file(&m, s.proto, &script.world, &ops, &s.proto_name, &file_proto) {
        Ok(r) => {
            if s.json {
                println!("{}", r.json);
            } else {
                print!("{}", r.text);
            }
            Ok(if r.agree { EXIT_CLEAN } else { EXIT_FOUND })
        }
        Err(e) if e.0.starts_with("not performable") => {
            Err(UsageError(format!("{}: {}", path.display(), e.0)))
        }
        Err(e) => machinery(e),
    }
}

fn table(s: &Setup, files: &[PathBuf], skip: bool) -> Result<i32, UsageError> {
    let mut rows = Vec::new();
    for path in files {
        let (script, ok) = load(path, s.kernel)?;
        if let Err(e) = ok {
            if skip {
                eprintln!("ftsim kernel: skipped {}: {e}", path.display());
                continue;
            }
            return Err(UsageError(format!("{}: {e}", path.display())));
        }
        rows.push(TableRow {
            name: path.display().to_string(),
            expect: script.expect.clone(),
            world: script.world.clone(),
            ops: script.lines.iter().map(|l| l.op.clone()).collect(),
        });
    }
    if rows.is_empty() {
        return Err(UsageError(
            "no reproducer the real harness can perform".into(),
        ));
    }
    let m = match prepare(s) {
        Ok(m) => m,
        Err(e) => return machinery(e),
    };
    match side::run_table(&m, s.proto, &s.proto_name, &rows) {
        Ok((text, all, json)) => {
            if s.json {
                println!("{json}");
            } else {
                print!("{text}");
            }
            Ok(if all { EXIT_CLEAN } else { EXIT_FOUND })
        }
        Err(e) => machinery(e),
    }
}

fn random(
    s: &Setup,
    n: u64,
    seed: u64,
    batch: usize,
    out: Option<&Path>,
) -> Result<i32, UsageError> {
    if n == 0 {
        return Err(UsageError("--random needs at least one script".into()));
    }
    let m = match prepare(s) {
        Ok(m) => m,
        Err(e) => return machinery(e),
    };
    let started = std::time::Instant::now();
    eprintln!(
        "ftsim kernel: {n} random scripts, seed {seed}, kernel {} ({}), accel {} ({}), model {}",
        s.kernel,
        m.release,
        m.accel.name(),
        m.accel_why,
        s.proto_name
    );
    let c = Campaign {
        scripts: n,
        seed,
        batch,
    };
    let tally = match campaign::campaign(&m, s.proto, &c, &mut |l| eprintln!("ftsim kernel: {l}")) {
        Ok(t) => t,
        Err(e) => return machinery(e),
    };
    let secs = started.elapsed().as_secs_f64();
    let dir = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| qemu::cache().join("disagreements"));
    let files = campaign::write_disagreements(&dir, s.kernel, seed, &tally)
        .map_err(|e| UsageError(format!("{}: {e}", dir.display())))?;
    print_tally(s, &m, n, seed, secs, &tally, &files);
    Ok(if tally.differ.is_empty() && tally.machinery.is_empty() {
        EXIT_CLEAN
    } else if tally.differ.is_empty() {
        EXIT_INTERNAL
    } else {
        EXIT_FOUND
    })
}

fn print_tally(
    s: &Setup,
    m: &Machine,
    n: u64,
    seed: u64,
    secs: f64,
    tally: &Tally,
    files: &[String],
) {
    if s.json {
        println!(
            "{}",
            serde_json::json!({
                "kernel": s.kernel.name(), "release": m.release, "preset": s.proto_name,
                "accel": m.accel.name(), "scripts": n, "seed": seed,
                "agree": tally.agree, "differ": tally.differ.len(),
                "not_performed": tally.not_performed.len(),
                "machinery": tally.machinery.len(), "operations": tally.ops, "warned": tally.warned,
                "boots": tally.boots, "seconds": secs, "disagreements": files,
            })
        );
        return;
    }
    println!(
        "kernel {} ({}), model {}, accel {}, seed {seed}",
        s.kernel,
        m.release,
        s.proto_name,
        m.accel.name()
    );
    println!(
        "  scripts        {n:>6}   ({} operations, {} boots, {secs:.0} s)",
        tally.ops, tally.boots
    );
    println!("  agree          {:>6}", tally.agree);
    println!("  differ         {:>6}", tally.differ.len());
    println!("  not performed  {:>6}", tally.not_performed.len());
    println!("  machinery      {:>6}", tally.machinery.len());
    println!(
        "  (scripts during which the kernel logged a warning or an oops: {})",
        tally.warned
    );
    for (i, why) in &tally.not_performed {
        println!("  script {i} not performed: {why}");
    }
    for (i, why) in &tally.machinery {
        println!("  script {i} machinery: {why}");
    }
    for (f, (_, _, _, d)) in files.iter().zip(&tally.differ) {
        println!("  differs: {f} ({})", d[0]);
    }
}
