//! The `ftsim report` command: its arguments and running it.

use crate::cli::{self, UsageError, EXIT_CLEAN, EXIT_FOUND, EXIT_INTERNAL};
use ftsim_cli::report::{build, not_replaying, write, ReportConfig, Source, REPORT_SEEDS};
use ftsim_sim::explore;
use ftsim_sim::sim::{EVENTS_DEFAULT, EVENTS_MAX};
use ftsim_sim::sweep::{SeedSet, Target};
use std::path::PathBuf;

/// `ftsim report` arguments.
#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// Output directory (written: index.html, report.md, svg/*.svg, repro/*.txt).
    #[arg(
        short = 'o',
        long = "out",
        value_name = "DIR",
        default_value = "report"
    )]
    pub out: PathBuf,
    /// A preset name or a protocol file (default: every preset).
    #[arg(long = "protocol", value_name = "NAME|FILE")]
    pub protocols: Vec<String>,
    /// Override a switch (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Seeds of the sweep: A..B, A..=B or one seed (default 0..2000).
    #[arg(long)]
    pub seeds: Option<String>,
    /// Simulated events per seed.
    #[arg(long, default_value_t = EVENTS_DEFAULT)]
    pub events: u64,
    /// Worker threads for the sweep and the exhaustive search.
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Depth of the sequential exhaustive search.
    #[arg(long, default_value_t = 3)]
    pub depth: u32,
    /// Functions of the sequential exhaustive search.
    #[arg(long, default_value_t = 2)]
    pub functions: u16,
    /// Tracers of the sequential exhaustive search.
    #[arg(long, default_value_t = 1)]
    pub tracers: u8,
    /// Operations of the interleaving search (one function, no tracer); 0 skips it.
    #[arg(long, default_value_t = 3)]
    pub interleave_depth: u32,
    /// Sequential exhaustive search without injected faults (by default every operation is
    /// also run with each single failing allocation, image build or trylock).
    #[arg(long)]
    pub no_faults: bool,
    /// Directory of committed proptest reproducers.
    #[arg(long, value_name = "DIR", default_value = "corpus/reproducers")]
    pub reproducers: PathBuf,
}

/// Runs `ftsim report`.
pub fn run(a: &ReportArgs) -> Result<i32, UsageError> {
    let targets: Vec<Target> = cli::targets(&a.protocols, &a.sets)?;
    let seeds = match &a.seeds {
        Some(s) => cli::seeds(s)?,
        None => SeedSet::range(0, REPORT_SEEDS),
    };
    if a.events == 0 || a.events > EVENTS_MAX {
        return Err(UsageError(format!(
            "--events must be between 1 and {}, found {}",
            EVENTS_MAX, a.events
        )));
    }
    if a.depth == 0 || a.depth > explore::DEPTH_MAX {
        return Err(UsageError(format!(
            "--depth must be between 1 and {}, found {}",
            explore::DEPTH_MAX,
            a.depth
        )));
    }
    explore::world(a.functions, a.tracers, 0).map_err(UsageError)?;
    let jobs = cli::jobs(a.jobs)?;
    let cfg = ReportConfig {
        targets,
        seeds: Some(seeds),
        events: a.events,
        jobs,
        depth: a.depth,
        functions: a.functions,
        tracers: a.tracers,
        interleave_depth: a.interleave_depth,
        faults: !a.no_faults,
        reproducers: a.reproducers.clone(),
    };
    eprintln!(
        "ftsim report: sweep of seeds {} per protocol, exhaustive depth {} (interleaving {}), reproducers from {}",
        seeds,
        a.depth,
        a.interleave_depth,
        a.reproducers.display()
    );
    let r = build(&cfg);
    write(&r, &a.out).map_err(|e| {
        UsageError(format!(
            "cannot write the report to {}: {e}",
            a.out.display()
        ))
    })?;
    let findings = r.cells.values().filter(|c| c.found()).count();
    println!(
        "wrote {} ({} findings over {} protocols) and {}",
        a.out.join("index.html").display(),
        findings,
        r.targets.len(),
        a.out.join("report.md").display()
    );
    let mut internal = false;
    for ((ti, p), e) in not_replaying(&r) {
        eprintln!(
            "ftsim: warning: the {} reproducer of {} / {p} does not replay ({})",
            e.source.name(),
            r.targets[ti].name,
            e.note
        );
        internal |= matches!(e.source, Source::Exhaustive | Source::Interleaving);
    }
    if internal {
        eprintln!(
            "ftsim: internal error: an exhaustive counterexample does not replay (a bug in ftsim)"
        );
        return Ok(EXIT_INTERNAL);
    }
    Ok(if findings > 0 { EXIT_FOUND } else { EXIT_CLEAN })
}
