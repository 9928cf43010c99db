//! `ftsim`: sweep seeds over protocols, replay and shrink failing runs, list the versions.
//!
//! Exit codes: 0 nothing found, 1 something found, 2 bad input, 3 internal error; 141 when the
//! reader of standard output went away (as SIGPIPE would).

use clap::{Args, Parser, Subcommand};

mod cli;
mod explore_cmd;
mod kernel_cmd;
mod report_cmd;
use cli::{UsageError, EXIT_CLEAN, EXIT_FOUND, EXIT_INTERNAL, EXIT_USAGE};
use ftsim_core::property::Property;
use ftsim_core::protocol::{Protocol, PRESETS, SWITCHES};
use ftsim_drive::script::Script;
use ftsim_sim::shrink::shrink;
use ftsim_sim::sim::{run_seed, EVENTS_DEFAULT, EVENTS_MAX};
use ftsim_sim::sweep::{self, replay_command, SeedSet, Target};
use ftsim_sim::trace;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

/// Seeds per protocol in the default sweep (about a minute on two cores).
const DEFAULT_SEEDS: u64 = 200_000;

#[derive(Parser)]
#[command(
    name = "ftsim",
    version,
    about = "Deterministic simulator for ftrace IPMODIFY/DIRECT sharing (livepatch + BPF trampolines)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Sweep seeds over protocols and print the verdict table (default: every preset).
    Run(RunArgs),
    /// Rerun a seed, or a reproducer file.
    Replay(ReplayArgs),
    /// Minimize a failing seed (or reproducer file) to a reproducer file.
    Shrink(ShrinkArgs),
    /// Exhaustive bounded exploration: every operation sequence up to a depth, shortest
    /// counterexample per property.
    Explore(explore_cmd::ExploreArgs),
    /// Write the findings report (HTML and Markdown): sweep, exhaustive search, proptest
    /// reproducers, with a timeline picture per finding.
    Report(report_cmd::ReportArgs),
    /// Run a reproducer file on a real Linux kernel under QEMU and print, step by step, the
    /// model's prediction beside what the kernel did; or, with --random N, a differential
    /// campaign of N random scripts. Exit 0 agree, 1 differ, 2 bad input (also: a script the
    /// real harness cannot perform), 3 the machinery failed.
    Kernel(kernel_cmd::KernelArgs),
    /// List the presets and their switches.
    Versions {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
struct ProtoArgs {
    /// A preset name or a protocol file (`base = "<preset>"` plus `switch = value` lines).
    #[arg(long = "protocol", value_name = "NAME|FILE")]
    protocols: Vec<String>,
    /// Override a switch for every protocol (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    proto: ProtoArgs,
    /// Seeds to run: A..B (B excluded), A..=B, or one seed.
    #[arg(long)]
    seeds: Option<String>,
    /// Run only shard i of n of the seeds (i/n), for batch systems; JSON lines merge by concatenation.
    #[arg(long)]
    shard: Option<String>,
    /// Simulated events (scheduling steps) per seed.
    #[arg(long, default_value_t = EVENTS_DEFAULT)]
    events: u64,
    /// Worker threads (results do not depend on it).
    #[arg(long)]
    jobs: Option<usize>,
    /// One JSON object per line: findings, then a summary.
    #[arg(long)]
    json: bool,
    /// Stop at the first seed (in seed order) that finds something.
    #[arg(long)]
    stop_on_first: bool,
    /// Run every seed twice and compare a hash of every decision and event.
    #[arg(long)]
    self_check: bool,
    /// Do not shrink the representative of each finding.
    #[arg(long)]
    no_shrink: bool,
    /// Judge only the presets README calls clean (CLEAN_PRESETS): exit 1 when one of them has a
    /// finding (each printed on standard error with its replay commands), 0 otherwise, whatever
    /// the other presets find. This is what CI asserts.
    #[arg(long)]
    assert_clean: bool,
    /// Write each shrunk reproducer to DIR/<protocol>--<property>.txt.
    #[arg(short = 'o', long = "out", value_name = "DIR")]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct ReplayArgs {
    /// A reproducer file (instead of --protocol and --seed).
    file: Option<PathBuf>,
    #[command(flatten)]
    proto: ProtoArgs,
    #[arg(long)]
    seed: Option<u64>,
    #[arg(long, default_value_t = EVENTS_DEFAULT)]
    events: u64,
    /// Print the timeline: step, thread, what it did, locks held.
    #[arg(long)]
    trace: bool,
}

#[derive(Args)]
struct ShrinkArgs {
    /// A reproducer file to shrink (instead of --protocol and --seed).
    file: Option<PathBuf>,
    #[command(flatten)]
    proto: ProtoArgs,
    #[arg(long)]
    seed: Option<u64>,
    #[arg(long, default_value_t = EVENTS_DEFAULT)]
    events: u64,
    /// The property to keep (default: the first one found).
    #[arg(long)]
    property: Option<String>,
    /// Where to write the reproducer (default: standard output).
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    out: Option<PathBuf>,
}

/// `print!` panics when the reader of standard output has gone (`ftsim replay ... | head`).
/// That is no bug of ftsim: stop quietly, as a command killed by SIGPIPE does.
fn broken_pipe(payload: &(dyn std::any::Any + Send)) -> bool {
    let msg = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("");
    msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe")
}

fn main() {
    let cli = Cli::parse();
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !broken_pipe(info.payload()) {
            hook(info);
        }
    }));
    let code = match std::panic::catch_unwind(move || dispatch(cli)) {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => {
            eprintln!("ftsim: error: {e}");
            EXIT_USAGE
        }
        // 128 + SIGPIPE, what a shell reports for a command the signal stopped.
        Err(p) if broken_pipe(p.as_ref()) => 141,
        Err(_) => {
            eprintln!(
                "ftsim: internal error (a bug in ftsim; please report it with the command line)"
            );
            EXIT_INTERNAL
        }
    };
    std::process::exit(code);
}

fn dispatch(cli: Cli) -> Result<i32, UsageError> {
    match cli.cmd {
        Cmd::Run(a) => run(a),
        Cmd::Replay(a) => replay(a),
        Cmd::Shrink(a) => shrink_cmd(a),
        Cmd::Explore(a) => explore_cmd::run(&a),
        Cmd::Report(a) => report_cmd::run(&a),
        Cmd::Versions { json } => Ok(versions(json)),
        Cmd::Kernel(a) => kernel_cmd::run(a),
    }
}

fn targets(p: &ProtoArgs) -> Result<Vec<Target>, UsageError> {
    cli::targets(&p.protocols, &p.sets)
}

fn one_target(p: &ProtoArgs) -> Result<Target, UsageError> {
    match p.protocols.as_slice() {
        [one] => cli::target(one, &p.sets),
        [] => Err(UsageError("--protocol is required with --seed".into())),
        _ => Err(UsageError("give one --protocol".into())),
    }
}

fn check_events(n: u64) -> Result<(), UsageError> {
    if n == 0 || n > EVENTS_MAX {
        return Err(UsageError(format!(
            "--events must be between 1 and {EVENTS_MAX}, found {n}"
        )));
    }
    Ok(())
}

fn run(a: RunArgs) -> Result<i32, UsageError> {
    let cfg = sweep_config(&a)?;
    if !a.json {
        let names: Vec<&str> = cfg.targets.iter().map(|t| t.name.as_str()).collect();
        println!(
            "ftsim run: {} x seeds {} ({} events per seed, {} jobs{})",
            names.join(", "),
            cfg.seeds,
            cfg.events,
            cfg.jobs,
            if cfg.self_check { ", self-check" } else { "" }
        );
    }
    let out = sweep_with_progress(&cfg);
    if !out.nondeterministic.is_empty() {
        for (p, s) in &out.nondeterministic {
            eprintln!(
                "ftsim: internal error: seed {s} of {p} is not deterministic (two runs disagree)"
            );
        }
        return Ok(EXIT_INTERNAL);
    }
    let files = write_reproducers(a.out.as_deref(), &cfg, &out)?;
    if a.json {
        print_json(&cfg, &out, &files);
    } else {
        print_table(&cfg, &out, &files);
    }
    if a.assert_clean {
        return Ok(assert_clean(&cfg, &out));
    }
    Ok(if out.cells.is_empty() {
        EXIT_CLEAN
    } else {
        EXIT_FOUND
    })
}

/// The sweep `ftsim run` asks for (and creates `-o DIR`).
fn sweep_config(a: &RunArgs) -> Result<sweep::SweepConfig, UsageError> {
    check_events(a.events)?;
    let targets = targets(&a.proto)?;
    let mut seeds = match &a.seeds {
        Some(s) => cli::seeds(s)?,
        None => SeedSet::range(0, DEFAULT_SEEDS),
    };
    if let Some(s) = &a.shard {
        seeds = cli::shard(seeds, s)?;
    }
    if seeds.is_empty() {
        return Err(UsageError("this shard has no seeds".into()));
    }
    if let Some(dir) = &a.out {
        std::fs::create_dir_all(dir)
            .map_err(|e| UsageError(format!("cannot create {}: {e}", dir.display())))?;
    }
    let jobs = cli::jobs(a.jobs)?;
    Ok(sweep::SweepConfig {
        targets,
        seeds,
        events: a.events,
        jobs,
        stop_on_first: a.stop_on_first,
        self_check: a.self_check,
        shrink: !a.no_shrink,
    })
}

/// Runs the sweep, with a progress bar on a terminal for more than 200 runs.
fn sweep_with_progress(cfg: &sweep::SweepConfig) -> sweep::SweepResult {
    let total = cfg.targets.len() as u64 * cfg.seeds.len();
    let bar = (std::io::stderr().is_terminal() && total > 200).then(|| {
        let b = ProgressBar::new(total);
        b.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} runs {elapsed} eta {eta}").unwrap(),
        );
        b
    });
    let progress = |done: u64, _total: u64| {
        if let Some(b) = &bar {
            b.set_position(done);
        }
    };
    let out = sweep::sweep(cfg, &progress);
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    out
}

/// Writes each cell's reproducer to `dir/PROTOCOL--PROPERTY.txt`; the file of each cell.
fn write_reproducers(
    dir: Option<&std::path::Path>,
    cfg: &sweep::SweepConfig,
    out: &sweep::SweepResult,
) -> Result<Vec<Option<PathBuf>>, UsageError> {
    let mut files = Vec::new();
    for c in &out.cells {
        if let (Some(dir), Some(r)) = (dir, &c.reproducer) {
            let name = format!(
                "{}--{}.txt",
                cfg.targets[c.target]
                    .name
                    .replace(['/', '+', ',', '='], "_"),
                c.property.id()
            );
            let path = dir.join(name);
            std::fs::write(&path, r.to_string())
                .map_err(|e| UsageError(format!("cannot write {}: {e}", path.display())))?;
            files.push(Some(path));
        } else {
            files.push(None);
        }
    }
    Ok(files)
}

/// `--assert-clean`: the exit code, and the broken verdicts (or the clean ones) on stderr.
fn assert_clean(cfg: &sweep::SweepConfig, out: &sweep::SweepResult) -> i32 {
    let failures = sweep::clean_verdict_failures(cfg, out);
    for f in &failures {
        eprintln!("ftsim: verdict broken: {f}");
    }
    let clean: Vec<&str> = cfg
        .targets
        .iter()
        .filter(|t| t.claimed_clean())
        .map(|t| t.name.as_str())
        .collect();
    if failures.is_empty() {
        eprintln!(
            "ftsim: --assert-clean: no finding in the presets claimed clean ({})",
            if clean.is_empty() {
                "none of them ran".to_string()
            } else {
                clean.join(", ")
            }
        );
    }
    if failures.is_empty() {
        EXIT_CLEAN
    } else {
        EXIT_FOUND
    }
}

fn print_table(cfg: &sweep::SweepConfig, out: &sweep::SweepResult, files: &[Option<PathBuf>]) {
    let mut o = std::io::stdout().lock();
    let width = cfg
        .targets
        .iter()
        .map(|t| t.name.len())
        .max()
        .unwrap_or(8)
        .max(6);
    let _ = write!(o, "\n{:<19}", "property");
    for t in &cfg.targets {
        let _ = write!(o, " {:>width$}", t.name);
    }
    let _ = writeln!(o);
    for p in Property::ALL {
        let _ = write!(o, "{:<19}", p.id());
        for ti in 0..cfg.targets.len() {
            let n = out
                .cells
                .iter()
                .find(|c| c.target == ti && c.property == p)
                .map(|c| c.seeds);
            match n {
                Some(n) => {
                    let _ = write!(o, " {n:>width$}");
                }
                None => {
                    let _ = write!(o, " {:>width$}", ".");
                }
            }
        }
        let _ = writeln!(o);
    }
    let _ = writeln!(o, "(cells: seeds that violate the property; `.`: none)");
    for (c, file) in out.cells.iter().zip(files) {
        let t = &cfg.targets[c.target];
        let s = c.reproducer.as_ref().unwrap_or(&c.found.script);
        let _ = writeln!(
            o,
            "\n== {} / {} ({} of {} seeds)",
            t.name,
            c.property,
            c.seeds,
            cfg.seeds.len()
        );
        let _ = writeln!(o, "   {}", c.found.violation);
        let _ = writeln!(
            o,
            "   shortest reproducer ({} ops{}):",
            s.lines.len(),
            if s.is_concurrent() {
                ", concurrent"
            } else {
                ""
            }
        );
        for line in s.to_string().lines().filter(|l| {
            !l.starts_with('#') && !l.starts_with("protocol") && !l.starts_with("world")
        }) {
            let _ = writeln!(o, "     {line}");
        }
        let _ = writeln!(o, "   replay: {}", replay_command(t, c.seed, cfg.events));
        if let Some(f) = file {
            let _ = writeln!(o, "   replay the reproducer: ftsim replay {}", f.display());
        }
    }
    let secs = out.elapsed.as_secs_f64();
    let _ = writeln!(
        o,
        "\n{} runs, {} events ({:.0} events/s), {} ops, {} findings in {:.1}s",
        out.runs,
        out.events,
        out.events as f64 / secs.max(1e-9),
        out.ops,
        out.cells.len(),
        secs
    );
}

fn print_json(cfg: &sweep::SweepConfig, out: &sweep::SweepResult, files: &[Option<PathBuf>]) {
    let mut o = std::io::stdout().lock();
    for (c, file) in out.cells.iter().zip(files) {
        let t = &cfg.targets[c.target];
        let s = c.reproducer.as_ref().unwrap_or(&c.found.script);
        let v = serde_json::json!({
            "kind": "finding",
            "protocol": t.name,
            "seed": c.seed,
            "seeds": c.seeds,
            "property": c.property.id(),
            "class": c.property.class(),
            "function": c.found.violation.func.map(|f| f.to_string()),
            "detail": c.found.violation.detail,
            "ops": s.lines.len(),
            "replay": replay_command(t, c.seed, cfg.events),
            "reproducer": s.to_string(),
            "file": file.as_ref().map(|f| f.display().to_string()),
        });
        let _ = writeln!(o, "{v}");
    }
    let v = serde_json::json!({
        "kind": "summary",
        "protocols": cfg.targets.iter().map(|t| t.name.clone()).collect::<Vec<_>>(),
        "seeds": cfg.seeds.len(),
        "runs": out.runs,
        "events": out.events,
        "ops": out.ops,
        "findings": out.cells.len(),
        "elapsed_s": out.elapsed.as_secs_f64(),
    });
    let _ = writeln!(o, "{v}");
}

/// A reproducer file, with `--set` overrides applied on top of its own protocol.
fn read_script(path: &PathBuf, sets: &[String]) -> Result<Script, UsageError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| UsageError(format!("cannot read {}: {e}", path.display())))?;
    let mut s = Script::parse(&text).map_err(|e| UsageError(format!("{}: {e}", path.display())))?;
    cli::apply_sets(&mut s.proto, sets)?;
    Ok(s)
}

fn replay(a: ReplayArgs) -> Result<i32, UsageError> {
    check_events(a.events)?;
    if let Some(path) = &a.file {
        if a.seed.is_some() || !a.proto.protocols.is_empty() {
            return Err(UsageError(
                "give either a reproducer FILE or --protocol and --seed".into(),
            ));
        }
        let s = read_script(path, &a.proto.sets)?;
        println!(
            "replay {}: protocol={} {}",
            path.display(),
            s.proto,
            s.world
        );
        let r = if a.trace {
            s.replay_traced()
        } else {
            s.replay()
        };
        if a.trace {
            let layout = ftsim_core::Kernel::new(&s.world, s.proto).info.layout;
            print!("{}", trace::replay(&layout, &r));
        }
        for (t, op, res) in &r.results {
            println!("  t{t} {op} => {}", ftsim_core::errno::fmt_result(*res));
        }
        for v in &r.findings {
            println!("!! {v}");
        }
        for p in &s.expect {
            let ok = r.has(*p);
            println!(
                "expected {p}: {}",
                if ok { "reproduced" } else { "NOT reproduced" }
            );
        }
        return Ok(if r.findings.is_empty() {
            EXIT_CLEAN
        } else {
            EXIT_FOUND
        });
    }
    let seed = a
        .seed
        .ok_or_else(|| UsageError("give a reproducer FILE, or --protocol and --seed".into()))?;
    let t = one_target(&a.proto)?;
    let run = run_seed(t.proto, seed, a.events, a.trace);
    println!("seed={seed} protocol={} {}", t.name, run.options);
    if let Some(tr) = &run.trace {
        print!(
            "{}",
            tr.lines()
                .skip(1)
                .map(|l| format!("{l}\n"))
                .collect::<String>()
        );
    }
    for f in &run.found {
        println!("!! step {}: {}", f.step, f.violation);
    }
    println!(
        "{} events, {} ops, {} findings, digest {:032x}",
        run.events,
        run.ops,
        run.found.len(),
        run.digest
    );
    Ok(if run.found.is_empty() {
        EXIT_CLEAN
    } else {
        EXIT_FOUND
    })
}

fn shrink_cmd(a: ShrinkArgs) -> Result<i32, UsageError> {
    check_events(a.events)?;
    let want: Option<Property> = a
        .property
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(UsageError)?;
    let (script, property) = if let Some(path) = &a.file {
        if a.seed.is_some() || !a.proto.protocols.is_empty() {
            return Err(UsageError(
                "give either a reproducer FILE or --protocol and --seed".into(),
            ));
        }
        let s = read_script(path, &a.proto.sets)?;
        let r = s.replay();
        let p = match want.or_else(|| s.expect.first().copied()) {
            Some(p) if r.has(p) => p,
            Some(p) => {
                eprintln!(
                    "ftsim: {} does not reproduce {p}: nothing to shrink",
                    path.display()
                );
                return Ok(EXIT_CLEAN);
            }
            None => match r.findings.first() {
                Some(v) => v.property,
                None => {
                    eprintln!("ftsim: {} finds nothing: nothing to shrink", path.display());
                    return Ok(EXIT_CLEAN);
                }
            },
        };
        (s, p)
    } else {
        let seed = a
            .seed
            .ok_or_else(|| UsageError("give a reproducer FILE, or --protocol and --seed".into()))?;
        let t = one_target(&a.proto)?;
        let run = run_seed(t.proto, seed, a.events, false);
        let found = match want {
            Some(p) => run.found.iter().find(|f| f.violation.property == p),
            None => run.found.first(),
        };
        let Some(found) = found else {
            eprintln!(
                "ftsim: seed {seed} of {} finds {}: nothing to shrink",
                t.name,
                want.map_or("nothing".into(), |p| format!("no {p}"))
            );
            return Ok(EXIT_CLEAN);
        };
        (found.script.clone(), found.violation.property)
    };
    let before = script.lines.len();
    let (small, replays) = shrink(&script, property);
    let text = small.to_string();
    match &a.out {
        Some(path) => {
            std::fs::write(path, &text)
                .map_err(|e| UsageError(format!("cannot write {}: {e}", path.display())))?;
            eprintln!(
                "{property}: {before} ops -> {} ops in {replays} replays; wrote {}",
                small.lines.len(),
                path.display()
            );
            eprintln!("replay it: ftsim replay {}", path.display());
        }
        None => {
            print!("{text}");
            eprintln!(
                "{property}: {before} ops -> {} ops in {replays} replays",
                small.lines.len()
            );
        }
    }
    Ok(EXIT_FOUND)
}

fn versions(json: bool) -> i32 {
    if json {
        let list: Vec<serde_json::Value> = PRESETS
            .iter()
            .map(|(n, d)| {
                let p = Protocol::preset(n).unwrap();
                let sw: serde_json::Map<String, serde_json::Value> = p
                    .switches()
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), serde_json::Value::String(v)))
                    .collect();
                let (base, diff) = p.closest_other_preset(n);
                let diff: serde_json::Map<String, serde_json::Value> = diff
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), serde_json::Value::String(v)))
                    .collect();
                serde_json::json!({
                    "name": n,
                    "description": d,
                    "clean": ftsim_core::protocol::CLEAN_PRESETS.contains(n),
                    "switches": sw,
                    "closest": {"preset": base, "differs": diff},
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(list));
        return EXIT_CLEAN;
    }
    println!("presets (* claimed clean: CI fails on any finding in them):");
    for (n, d) in PRESETS {
        let mark = if ftsim_core::protocol::CLEAN_PRESETS.contains(n) {
            "*"
        } else {
            " "
        };
        println!(" {mark}{n:<18} {d}");
    }
    println!("\neach preset against the closest other preset:");
    for (n, _) in PRESETS {
        let (base, diff) = Protocol::preset(n).unwrap().closest_other_preset(n);
        let sets: Vec<String> = diff.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("  {n:<18} = {base} + {}", sets.join(", "));
    }
    let width = PRESETS.iter().map(|(n, _)| n.len()).max().unwrap_or(8);
    print!("\n{:<28}", "switch");
    for (n, _) in PRESETS {
        print!(" {n:>width$}");
    }
    println!();
    for s in SWITCHES {
        print!("{:<28}", s.name);
        for (n, _) in PRESETS {
            let v = Protocol::preset(n)
                .unwrap()
                .switches()
                .into_iter()
                .find(|(k, _)| *k == s.name)
                .unwrap()
                .1;
            print!(" {v:>width$}");
        }
        println!();
    }
    println!("\nswitches (values; SPEC section):");
    for s in SWITCHES {
        println!("  {:<28} {}  [{}]", s.name, s.doc, s.values.join(", "));
    }
    EXIT_CLEAN
}
