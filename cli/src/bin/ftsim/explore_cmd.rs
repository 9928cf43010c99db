//! The `ftsim explore` command: its arguments, running it per protocol, and printing the
//! results as text or JSON.

use crate::cli::{self, UsageError, EXIT_CLEAN, EXIT_FOUND, EXIT_INTERNAL};
use ftsim_drive::script::Script;
use ftsim_sim::explore::{
    explore, world, ExploreConfig, ExploreResult, DEPTH_MAX, STATES_MAX_DEFAULT,
};
use ftsim_sim::sweep::Target;
use std::io::Write;

/// `ftsim explore` arguments.
#[derive(clap::Args, Debug)]
pub struct ExploreArgs {
    /// A preset name or a protocol file (default: every preset).
    #[arg(long = "protocol", value_name = "NAME|FILE")]
    pub protocols: Vec<String>,
    /// Override a switch (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Operations per sequence (sequential) or operations started (interleaving).
    #[arg(long)]
    pub depth: u32,
    /// Functions in the world.
    #[arg(long, default_value_t = 2)]
    pub functions: u16,
    /// Tracers in the world.
    #[arg(long, default_value_t = 1)]
    pub tracers: u8,
    /// Put the last M functions in module m0 (adds module-load/unload to the alphabet).
    #[arg(long, default_value_t = 0, value_name = "M")]
    pub module: u16,
    /// Worker threads (results do not depend on it).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Also branch on the step order of up to two in-flight operations.
    #[arg(long)]
    pub interleave: bool,
    /// Do not reduce by symmetry between interchangeable functions and tracers.
    #[arg(long)]
    pub no_symmetry: bool,
    /// Stop after this many distinct states (the result says it is incomplete).
    #[arg(long, default_value_t = STATES_MAX_DEFAULT)]
    pub states_max: u64,
    /// Write each counterexample to DIR/PROTOCOL--PROPERTY.txt.
    #[arg(short = 'o', long = "out", value_name = "DIR")]
    pub out: Option<std::path::PathBuf>,
    /// One JSON object per line: findings, then a summary per protocol.
    #[arg(long)]
    pub json: bool,
    /// Also run the transitions skipped as owner-level refusals and check they change nothing.
    #[arg(long, hide = true)]
    pub verify_skips: bool,
    /// Sequential mode: also run every operation with each single injected fault (a failing
    /// allocation, image build or trylock).
    #[arg(long)]
    pub faults: bool,
}

/// Runs `ftsim explore`.
pub fn run(a: &ExploreArgs) -> Result<i32, UsageError> {
    if a.depth == 0 || a.depth > DEPTH_MAX {
        return Err(UsageError(format!(
            "--depth must be between 1 and {DEPTH_MAX}, found {}",
            a.depth
        )));
    }
    if a.threads == 0 || a.threads > 1024 {
        return Err(UsageError(format!(
            "--threads must be between 1 and 1024, found {}",
            a.threads
        )));
    }
    let world = world(a.functions, a.tracers, a.module).map_err(UsageError)?;
    if a.faults && a.interleave {
        return Err(UsageError(
            "--faults applies to the sequential mode only (not with --interleave)".into(),
        ));
    }
    let targets: Vec<Target> = cli::targets(&a.protocols, &a.sets)?;
    if let Some(dir) = &a.out {
        std::fs::create_dir_all(dir)
            .map_err(|e| UsageError(format!("cannot create {}: {e}", dir.display())))?;
    }
    let mut found = false;
    let mut bad = false;
    let mut o = std::io::stdout().lock();
    for t in targets {
        let cfg = ExploreConfig {
            target: t.clone(),
            world: world.clone(),
            depth: a.depth,
            threads: a.threads,
            interleave: a.interleave,
            symmetry: !a.no_symmetry,
            states_max: a.states_max,
            verify_skips: a.verify_skips,
            faults: a.faults,
        };
        let out = explore(&cfg);
        let mut files = Vec::new();
        for f in &out.findings {
            let file = match &a.out {
                Some(dir) => {
                    let name = format!(
                        "{}--{}.txt",
                        t.name.replace(['/', '+', ',', '=', ' '], "_"),
                        f.property.id()
                    );
                    let path = dir.join(name);
                    std::fs::write(&path, f.script.to_string())
                        .map_err(|e| UsageError(format!("cannot write {}: {e}", path.display())))?;
                    Some(path)
                }
                None => None,
            };
            files.push(file);
        }
        found |= !out.findings.is_empty();
        bad |= out.findings.iter().any(|f| !f.reproduces);
        if a.json {
            print_json(&mut o, &cfg, &out, &files);
        } else {
            print_text(&mut o, &cfg, &out, &files);
        }
    }
    if bad {
        eprintln!("ftsim: internal error: a counterexample does not replay (a bug in ftsim)");
        return Ok(EXIT_INTERNAL);
    }
    Ok(if found { EXIT_FOUND } else { EXIT_CLEAN })
}

pub(super) fn mode(cfg: &ExploreConfig) -> &'static str {
    if cfg.interleave {
        "interleaving"
    } else {
        "sequential"
    }
}

pub(super) fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

/// The summary lines (also used by the report).
pub fn summary(cfg: &ExploreConfig, out: &ExploreResult) -> String {
    let s = &out.stats;
    let _ = cfg;
    let mut t = format!(
        "{} states explored ({} self-loops skipped), {} distinct{} in {:.2}s: {:.0} distinct/s, {:.0} explored/s",
        s.explored,
        s.skipped,
        s.distinct,
        if s.truncated {
            " (stopped at --states-max: INCOMPLETE)"
        } else {
            ""
        },
        s.elapsed.as_secs_f64(),
        s.distinct_per_s(),
        s.explored_per_s(),
    );
    if let Some(cpu) = s.cpu_s.filter(|c| *c > 0.0) {
        t.push_str(&format!(
            "\nCPU {:.2}s: {:.0} distinct per CPU-second",
            cpu,
            s.distinct as f64 / cpu
        ));
    }
    match s.peak_rss_bytes {
        Some(b) => t.push_str(&format!(
            "\npeak memory {:.1} MiB (VmHWM), {:.0} B per distinct state; dedup store {:.1} B per state; largest frontier {} states",
            mib(b),
            s.rss_per_state().unwrap_or(0.0),
            s.store_per_state(),
            s.frontier_peak
        )),
        None => t.push_str(&format!(
            "\npeak memory unknown; dedup store {:.1} B per state; largest frontier {} states",
            s.store_per_state(),
            s.frontier_peak
        )),
    }
    t
}

pub(super) fn print_text(
    o: &mut impl Write,
    cfg: &ExploreConfig,
    out: &ExploreResult,
    files: &[Option<std::path::PathBuf>],
) {
    let _ = writeln!(
        o,
        "ftsim explore: protocol={} {} depth={} mode={}{} symmetry={} threads={} alphabet={} ops",
        cfg.target.name,
        cfg.world,
        cfg.depth,
        mode(cfg),
        if cfg.faults { " faults=single" } else { "" },
        if cfg.symmetry { "on" } else { "off" },
        cfg.threads,
        out.alphabet.len()
    );
    let levels: Vec<String> = out.stats.levels.iter().map(|l| l.new.to_string()).collect();
    let _ = writeln!(
        o,
        "  new states per level ({}): {}",
        if cfg.interleave {
            "steps"
        } else {
            "operations"
        },
        levels.join(" ")
    );
    for line in summary(cfg, out).lines() {
        let _ = writeln!(o, "  {line}");
    }
    if out.findings.is_empty() {
        let _ = writeln!(o, "  no property violated within the bound");
    }
    for (f, file) in out.findings.iter().zip(files) {
        let _ = writeln!(
            o,
            "  == {} at depth {} ({} states, {} transitions){}",
            f.property,
            f.depth,
            f.states,
            f.transitions,
            if f.reproduces {
                ""
            } else {
                "  [DOES NOT REPLAY: internal error]"
            }
        );
        let _ = writeln!(o, "     {}", f.violation);
        for line in body_lines(&f.script) {
            let _ = writeln!(o, "     {line}");
        }
        if let Some(p) = file {
            let _ = writeln!(o, "     replay: ftsim replay {}", p.display());
        }
    }
    let _ = writeln!(o);
}

/// The operation and schedule lines of a script (without the header).
pub fn body_lines(s: &Script) -> Vec<String> {
    s.to_string()
        .lines()
        .filter(|l| {
            !l.starts_with('#')
                && !l.starts_with("protocol")
                && !l.starts_with("world")
                && !l.starts_with("set ")
                && !l.starts_with("expect")
        })
        .map(str::to_string)
        .collect()
}

pub(super) fn print_json(
    o: &mut impl Write,
    cfg: &ExploreConfig,
    out: &ExploreResult,
    files: &[Option<std::path::PathBuf>],
) {
    for (f, file) in out.findings.iter().zip(files) {
        let v = serde_json::json!({
            "kind": "finding",
            "protocol": cfg.target.name,
            "mode": mode(cfg),
            "property": f.property.id(),
            "class": f.property.class(),
            "function": f.violation.func.map(|x| x.to_string()),
            "detail": f.violation.detail,
            "depth": f.depth,
            "states": f.states,
            "transitions": f.transitions,
            "reproduces": f.reproduces,
            "reproducer": f.script.to_string(),
            "file": file.as_ref().map(|p| p.display().to_string()),
        });
        let _ = writeln!(o, "{v}");
    }
    let s = &out.stats;
    let v = serde_json::json!({
        "kind": "summary",
        "protocol": cfg.target.name,
        "mode": mode(cfg),
        "world": cfg.world.to_string(),
        "depth": cfg.depth,
        "symmetry": cfg.symmetry,
        "faults": cfg.faults,
        "threads": cfg.threads,
        "alphabet": out.alphabet.len(),
        "explored": s.explored,
        "distinct": s.distinct,
        "levels": s.levels.iter().map(|l| l.new).collect::<Vec<_>>(),
        "truncated": s.truncated,
        "elapsed_s": s.elapsed.as_secs_f64(),
        "distinct_per_s": s.distinct_per_s(),
        "explored_per_s": s.explored_per_s(),
        "peak_rss_bytes": s.peak_rss_bytes,
        "store_bytes_per_state": s.store_per_state(),
        "frontier_peak": s.frontier_peak,
        "skipped": s.skipped,
        "renamings": s.renamings,
        "cpu_s": s.cpu_s,
        "findings": out.findings.len(),
    });
    let _ = writeln!(o, "{v}");
}
