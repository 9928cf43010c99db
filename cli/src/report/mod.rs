//! The findings report (`ftsim report`): runs the seeded sweep, the exhaustive search at a small
//! bound and replays the committed proptest reproducers, then writes one self-contained HTML page
//! (no JavaScript, no external resources) and the same as Markdown: the protocol × property
//! matrix and, for every finding, the shortest reproducer with a timeline picture of its run.
//!
//! # Sources
//!
//! - **sim**: `ftsim run` over `--seeds` (default 0..2000) with shrinking; a cell counts the seeds
//!   that violate the property.
//! - **exhaustive**: `ftsim explore` in sequential mode (`--depth`, default 3, on `--functions`
//!   functions and `--tracers` tracers, with single injected faults unless `--no-faults`) and in
//!   interleaving mode (`--interleave-depth`
//!   operations on one function, default 3; 0 skips it); a cell gives the length of the shortest
//!   counterexample (operations; scheduling steps for interleavings).
//! - **proptest**: every `corpus/reproducers/*.txt` (or `--reproducers DIR`) is replayed with
//!   [`Script::replay`] (the core's checks and the oracle, [`ftsim_drive::oracle::Reference`]), and
//!   counts for the properties on its `expect` line that it reproduces.
//!
//! # The timeline picture
//!
//! One lane per actor (per owner for sequential reproducers, per thread and owner for concurrent
//! ones), time running to the right one slot per event of [`Script::replay_traced`]: the
//! operation as a band from its start to its result (errno in red), each lock held as a bar from
//! its `Acquire` to its `Release` (a bar still open at the end was never released), owner
//! callbacks as diamonds, errnos returned inside the kernel as red ticks, injected faults and
//! failed trylocks as orange crosses, rewritten call sites in a lane of their own, and every
//! finding as a red line where it appeared. Hovering shows details (`<title>`; no script).

mod evidence;
mod html;
mod markdown;
mod svg;
mod text;

pub use evidence::{
    build, replay_with_oracle, CellReport, Evidence, Explored, FindingsReport, ReportConfig,
    ReproducerFile, Source,
};
pub use html::html;
pub use markdown::markdown;
pub use svg::timeline_svg;
pub use text::{esc, stem};

use ftsim_core::property::Property;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Default seeds of the report's sweep (the full `ftsim run` default is larger).
pub const REPORT_SEEDS: u64 = 2_000;

/// Writes `index.html`, `report.md`, `svg/<cell>.svg` and `repro/<cell>.txt` into `dir`.
pub fn write(r: &FindingsReport, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir.join("svg"))?;
    std::fs::create_dir_all(dir.join("repro"))?;
    let mut svgs = BTreeMap::new();
    let mut written = Vec::new();
    for ((ti, p), c) in &r.cells {
        let Some(best) = c.shortest() else { continue };
        let s = stem(&r.targets[*ti], *p);
        let svg = timeline_svg(&best.script);
        let path = dir.join("svg").join(format!("{s}.svg"));
        std::fs::write(&path, &svg)?;
        written.push(path);
        let mut script = best.script.clone();
        script.expect = vec![*p];
        let path = dir.join("repro").join(format!("{s}.txt"));
        std::fs::write(&path, script.to_string())?;
        written.push(path);
        svgs.insert((*ti, *p), svg);
    }
    let path = dir.join("index.html");
    std::fs::write(&path, html(r, &svgs))?;
    written.push(path);
    let path = dir.join("report.md");
    std::fs::write(&path, markdown(r))?;
    written.push(path);
    Ok(written)
}

/// Reproducers that do not show their property when replayed (listed in the report).
pub fn not_replaying(r: &FindingsReport) -> Vec<((usize, Property), &Evidence)> {
    r.cells
        .iter()
        .flat_map(|(k, c)| c.evidence.iter().filter(|e| !e.reproduces).map(|e| (*k, e)))
        .collect()
}
