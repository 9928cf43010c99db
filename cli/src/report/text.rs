//! What the HTML page and the Markdown share: escaping, file stems, cell and source texts.

use super::{CellReport, FindingsReport};
use ftsim_core::property::Property;
use ftsim_drive::script::Script;
use ftsim_sim::sweep::Target;

/// Escapes text for XML (and HTML).
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

/// The file-name stem of a cell: `<protocol>--<property>`.
pub fn stem(target: &Target, p: Property) -> String {
    format!(
        "{}--{}",
        target
            .name
            .replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_"),
        p.id()
    )
}

pub(super) fn cell_text(c: &CellReport) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(n) = c.sim_seeds {
        v.push(format!("sim {n}"));
    }
    if let Some(d) = c.exhaustive {
        v.push(format!("exh {d} op{}", if d == 1 { "" } else { "s" }));
    }
    if let Some(d) = c.interleaving {
        v.push(format!("exh∥ {d} steps"));
    }
    if c.proptest {
        v.push("proptest".into());
    }
    v
}

pub(super) fn ops_text(n: usize) -> String {
    format!("{n} operation{}", if n == 1 { "" } else { "s" })
}

pub(super) fn body_text(s: &Script) -> String {
    let mut t = String::new();
    for l in s.to_string().lines() {
        if l.starts_with("# ftsim reproducer") {
            continue;
        }
        t.push_str(l);
        t.push('\n');
    }
    t
}

pub(super) fn sources_text(r: &FindingsReport) -> Vec<String> {
    let mut v = Vec::new();
    match &r.sweep {
        Some((seeds, out)) => v.push(format!(
            "sim: seeds {seeds} per protocol, {} runs, {} events, {:.1}s",
            out.runs,
            out.events,
            out.elapsed.as_secs_f64()
        )),
        None => v.push("sim: not run".into()),
    }
    v.push(format!(
        "exhaustive: sequential on {} to depth {}{}; interleavings of up to two in-flight operations on one function, {}",
        r.explore_world,
        r.depth,
        if r.faults {
            ", every operation also with each single injected fault"
        } else {
            ""
        },
        if r.interleave_depth == 0 {
            "not run".to_string()
        } else {
            format!("{} operations", r.interleave_depth)
        }
    ));
    v.push(format!(
        "proptest: {} committed reproducers in {}",
        r.reproducers.len(),
        r.reproducers_dir.display()
    ));
    v
}

/// Rows of the exploration table: protocol, mode, distinct, explored, seconds, findings.
pub(super) fn explore_rows(r: &FindingsReport) -> Vec<[String; 6]> {
    let mut rows = Vec::new();
    for (t, (seq, inter)) in r.targets.iter().zip(&r.explored) {
        for (mode, e) in [("sequential", Some(seq)), ("interleaving", inter.as_ref())] {
            let Some(e) = e else { continue };
            rows.push([
                t.name.clone(),
                mode.to_string(),
                format!(
                    "{}{}",
                    e.stats.distinct,
                    if e.stats.truncated {
                        " (incomplete)"
                    } else {
                        ""
                    }
                ),
                e.stats.explored.to_string(),
                format!("{:.2}", e.stats.elapsed.as_secs_f64()),
                e.findings.to_string(),
            ]);
        }
    }
    rows
}

pub(super) const EXPLORE_HEAD: [&str; 6] = [
    "protocol",
    "mode",
    "distinct states",
    "states explored",
    "seconds",
    "properties violated",
];
