//! The same content as Markdown, with the timelines as image links into `svg/`.

use super::text::{body_text, cell_text, explore_rows, ops_text, sources_text, EXPLORE_HEAD};
use super::{not_replaying, stem, FindingsReport};
use ftsim_core::property::Property;
use std::fmt::Write as _;

/// The same content as Markdown, with the timelines as image links into `svg/`.
pub fn markdown(r: &FindingsReport) -> String {
    let mut o = String::new();
    md_head(&mut o, r);
    md_matrix(&mut o, r);
    md_findings(&mut o, r);
    md_not_replaying(&mut o, r);
    md_reproducers(&mut o, r);
    o
}

/// The title, the sources and the exhaustive search figures.
fn md_head(o: &mut String, r: &FindingsReport) {
    let _ = writeln!(
        o,
        "# ftsim findings: livepatch (IPMODIFY) and BPF trampolines (DIRECT) sharing a function\n"
    );
    let _ = writeln!(o, "Every protocol version as the kernel code behaves, flaws included; findings in flawed versions are expected. Sources: **sim** the seeded sweep (seeds that violate the property), **exh** the exhaustive search (length of the shortest counterexample), **exh∥** the exhaustive search over interleavings of two operations (scheduling steps), **proptest** a committed reproducer found against the oracle.\n");
    for line in sources_text(r) {
        let _ = writeln!(o, "- {line}");
    }
    let _ = writeln!(o, "\n| {} |", EXPLORE_HEAD.join(" | "));
    let _ = writeln!(o, "|{}", "---|".repeat(EXPLORE_HEAD.len()));
    for row in explore_rows(r) {
        let _ = writeln!(o, "| {} |", row.join(" | "));
    }
}

/// The matrix.
fn md_matrix(o: &mut String, r: &FindingsReport) {
    let _ = writeln!(o, "\n## Protocol × property\n");
    let _ = write!(o, "| property |");
    for t in &r.targets {
        let _ = write!(o, " {} |", t.name);
    }
    let _ = writeln!(o);
    let _ = write!(o, "|---|");
    for _ in &r.targets {
        let _ = write!(o, "---|");
    }
    let _ = writeln!(o);
    for p in Property::ALL {
        let _ = write!(o, "| {} |", p.id());
        for ti in 0..r.targets.len() {
            match r.cells.get(&(ti, p)).filter(|c| c.found()) {
                Some(c) => {
                    let _ = write!(
                        o,
                        " [{}](#{}) |",
                        cell_text(c).join("<br>"),
                        stem(&r.targets[ti], p)
                    );
                }
                None => {
                    let _ = write!(o, " · |");
                }
            }
        }
        let _ = writeln!(o);
    }
}

/// The findings: per cell the shortest reproducer, with its timeline as an image link.
fn md_findings(o: &mut String, r: &FindingsReport) {
    let _ = writeln!(o, "\n## Findings");
    for ((ti, p), c) in &r.cells {
        let t = &r.targets[*ti];
        let s = stem(t, *p);
        let Some(best) = c.shortest() else {
            let _ = writeln!(
                o,
                "\n### {} / {}\n<a id=\"{s}\"></a>\n\nNo reproducer of this finding replays (see below).",
                t.name,
                p.id()
            );
            continue;
        };
        let _ = writeln!(
            o,
            "\n### {} / {} ({})\n<a id=\"{s}\"></a>\n",
            t.name,
            p.id(),
            p.class()
        );
        let _ = writeln!(o, "{}\n", best.detail);
        let _ = writeln!(
            o,
            "Shortest reproducer: {} from **{}** ({}). Replay: `ftsim replay repro/{s}.txt`\n",
            ops_text(best.script.lines.len()),
            best.source.name(),
            best.note
        );
        let _ = writeln!(o, "```\n{}```\n", body_text(&best.script));
        let _ = writeln!(o, "![timeline of {s}](svg/{s}.svg)");
        for e in c.evidence.iter().filter(|e| !std::ptr::eq(*e, best)) {
            let _ = writeln!(
                o,
                "\n- also **{}**: {}{}",
                e.source.name(),
                e.note,
                if e.reproduces {
                    ""
                } else {
                    " (does not replay)"
                }
            );
        }
    }
}

/// Consistency: reproducers that do not replay.
fn md_not_replaying(o: &mut String, r: &FindingsReport) {
    let bad = not_replaying(r);
    if !bad.is_empty() {
        let _ = writeln!(o, "\n## Reproducers that do not replay\n");
        let _ = writeln!(o, "Reported by a source but not shown by `ftsim replay`: an inconsistency to investigate; not used as shortest reproducers.\n");
        for ((ti, p), e) in bad {
            let _ = writeln!(
                o,
                "- {} / {} from **{}**: {}",
                r.targets[ti].name,
                p.id(),
                e.source.name(),
                e.note
            );
        }
    }
}

/// The committed reproducers.
fn md_reproducers(o: &mut String, r: &FindingsReport) {
    let _ = writeln!(o, "\n## Committed proptest reproducers\n");
    if r.reproducers.is_empty() {
        let _ = writeln!(o, "None found in {}.", r.reproducers_dir.display());
    }
    for f in &r.reproducers {
        let exp: Vec<String> = f
            .expect
            .iter()
            .map(|(p, ok)| format!("{p}: {}", if *ok { "reproduced" } else { "NOT reproduced" }))
            .collect();
        let _ = writeln!(
            o,
            "- `{}` ({}): {}",
            f.path.display(),
            f.protocol,
            exp.join(", ")
        );
    }
}
