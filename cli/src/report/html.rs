//! The self-contained HTML page (no JavaScript, no external resources).

use super::text::{body_text, cell_text, explore_rows, ops_text, sources_text, EXPLORE_HEAD};
use super::{esc, not_replaying, stem, Evidence, FindingsReport};
use ftsim_core::property::Property;
use std::collections::BTreeMap;
use std::fmt::Write as _;

pub(super) const CSS: &str = r#"
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px; color: #222; max-width: 1500px; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #ddd; } h3 { font-size: 15px; margin-top: 26px; }
table.matrix { border-collapse: collapse; font-size: 12px; }
table.matrix th, table.matrix td { border: 1px solid #ccc; padding: 3px 6px; text-align: center; vertical-align: middle; }
table.matrix th.prop { text-align: left; white-space: nowrap; }
td.none { color: #aaa; background: #f3faf3; }
td.behaviour, td.state, td.locking { background: #fde0dc; }
td.tolerated { background: #fff4cc; }
td a { color: #222; text-decoration: none; display: block; }
td span { display: block; white-space: nowrap; }
pre { background: #f6f8fa; padding: 8px 10px; border: 1px solid #e1e4e8; font-size: 12px; overflow-x: auto; }
div.timeline { overflow-x: auto; border: 1px solid #e1e4e8; margin: 6px 0 12px 0; }
p.note, li { font-size: 13px; }
.small { font-size: 12px; color: #555; }
.bad { color: #c62828; font-weight: bold; }
"#;

/// The HTML page: XHTML-compatible markup, so it also parses as XML.
pub fn html(r: &FindingsReport, svgs: &BTreeMap<(usize, Property), String>) -> String {
    let mut o = String::new();
    html_head(&mut o, r);
    html_matrix(&mut o, r);
    html_findings(&mut o, r, svgs);
    html_not_replaying(&mut o, r);
    html_reproducers(&mut o, r);
    let _ = writeln!(o, "</body></html>");
    o
}

/// The head, the sources and the exhaustive search figures.
fn html_head(o: &mut String, r: &FindingsReport) {
    let _ = writeln!(o, "<!DOCTYPE html>");
    let _ = writeln!(
        o,
        r#"<html xmlns="http://www.w3.org/1999/xhtml" lang="en">"#
    );
    let _ = writeln!(
        o,
        "<head><meta charset=\"utf-8\"/><title>ftsim findings</title><style>{CSS}</style></head>"
    );
    let _ = writeln!(o, "<body>");
    let _ = writeln!(o, "<h1>ftsim findings: livepatch (IPMODIFY) and BPF trampolines (DIRECT) sharing a function</h1>");
    let _ = writeln!(
        o,
        "<p class=\"note\">Every protocol version as the kernel code behaves, flaws included; findings in flawed versions are expected. Sources: <b>sim</b> the seeded sweep (seeds that violate the property), <b>exh</b> the exhaustive search (length of the shortest counterexample), <b>exh∥</b> the exhaustive search over interleavings of two operations (scheduling steps), <b>proptest</b> a committed reproducer found against the oracle. Click a cell for its reproducer and timeline.</p>"
    );
    let _ = writeln!(o, "<ul>");
    for line in sources_text(r) {
        let _ = writeln!(o, "<li class=\"small\">{}</li>", esc(&line));
    }
    let _ = writeln!(o, "</ul>");
    let _ = writeln!(
        o,
        "<details><summary class=\"small\">exhaustive search figures</summary><table class=\"matrix\"><tr>"
    );
    for h in EXPLORE_HEAD {
        let _ = write!(o, "<th>{h}</th>");
    }
    let _ = writeln!(o, "</tr>");
    for row in explore_rows(r) {
        let cells: String = row.iter().map(|c| format!("<td>{}</td>", esc(c))).collect();
        let _ = writeln!(o, "<tr>{cells}</tr>");
    }
    let _ = writeln!(o, "</table></details>");
}

/// The matrix.
fn html_matrix(o: &mut String, r: &FindingsReport) {
    let _ = writeln!(o, "<h2>Protocol × property</h2>");
    let _ = writeln!(o, "<table class=\"matrix\"><tr><th>property</th>");
    for t in &r.targets {
        let _ = write!(o, "<th>{}</th>", esc(&t.name));
    }
    let _ = writeln!(o, "</tr>");
    for p in Property::ALL {
        let _ = write!(
            o,
            "<tr><th class=\"prop\">{} <span class=\"small\">{}</span></th>",
            p.id(),
            p.class()
        );
        for ti in 0..r.targets.len() {
            match r.cells.get(&(ti, p)).filter(|c| c.found()) {
                Some(c) => {
                    let spans: String = cell_text(c)
                        .iter()
                        .map(|s| format!("<span>{}</span>", esc(s)))
                        .collect();
                    let _ = write!(
                        o,
                        "<td class=\"{}\"><a href=\"#{}\">{spans}</a></td>",
                        p.class(),
                        stem(&r.targets[ti], p)
                    );
                }
                None => {
                    let _ = write!(o, "<td class=\"none\">·</td>");
                }
            }
        }
        let _ = writeln!(o, "</tr>");
    }
    let _ = writeln!(o, "</table>");
}

/// The findings: per cell the shortest reproducer, its timeline and the others.
fn html_findings(o: &mut String, r: &FindingsReport, svgs: &BTreeMap<(usize, Property), String>) {
    let _ = writeln!(o, "<h2>Findings</h2>");
    for ((ti, p), c) in &r.cells {
        let t = &r.targets[*ti];
        let Some(best) = c.shortest() else {
            let _ = writeln!(
                o,
                "<h3 id=\"{}\">{} / {}</h3><p class=\"note bad\">No reproducer of this finding replays (see below).</p>",
                stem(t, *p),
                esc(&t.name),
                p.id()
            );
            continue;
        };
        let _ = writeln!(
            o,
            "<h3 id=\"{}\">{} / {} <span class=\"small\">({})</span></h3>",
            stem(t, *p),
            esc(&t.name),
            p.id(),
            p.class()
        );
        let _ = writeln!(o, "<p class=\"note\">{}</p>", esc(&best.detail));
        let _ = writeln!(
            o,
            "<p class=\"small\">Shortest reproducer: {} from <b>{}</b> ({}). Replay: <code>ftsim replay repro/{}.txt</code></p>",
            ops_text(best.script.lines.len()),
            best.source.name(),
            esc(&best.note),
            esc(&stem(t, *p))
        );
        let _ = writeln!(o, "<pre>{}</pre>", esc(&body_text(&best.script)));
        if let Some(svg) = svgs.get(&(*ti, *p)) {
            let _ = writeln!(o, "<div class=\"timeline\">{svg}</div>");
        }
        let others: Vec<&Evidence> = c
            .evidence
            .iter()
            .filter(|e| !std::ptr::eq(*e, best))
            .collect();
        if !others.is_empty() {
            let _ = writeln!(
                o,
                "<details><summary class=\"small\">{} other reproducer(s)</summary>",
                others.len()
            );
            for e in others {
                let _ = writeln!(
                    o,
                    "<p class=\"small\"><b>{}</b>: {}{}</p><pre>{}</pre>",
                    e.source.name(),
                    esc(&e.note),
                    if e.reproduces {
                        ""
                    } else {
                        " <span class=\"bad\">(does not replay)</span>"
                    },
                    esc(&body_text(&e.script))
                );
            }
            let _ = writeln!(o, "</details>");
        }
    }
}

/// Consistency: reproducers that do not replay.
fn html_not_replaying(o: &mut String, r: &FindingsReport) {
    let bad = not_replaying(r);
    if !bad.is_empty() {
        let _ = writeln!(o, "<h2>Reproducers that do not replay</h2>");
        let _ = writeln!(
            o,
            "<p class=\"note bad\">These were reported by a source but do not show their property when replayed with <code>ftsim replay</code>: an inconsistency between that source and the replay, to investigate. They are not used as shortest reproducers.</p><ul>"
        );
        for ((ti, p), e) in bad {
            let _ = writeln!(
                o,
                "<li>{} / {} from <b>{}</b>: {}</li>",
                esc(&r.targets[ti].name),
                p.id(),
                e.source.name(),
                esc(&e.note)
            );
        }
        let _ = writeln!(o, "</ul>");
    }
}

/// The committed reproducers.
fn html_reproducers(o: &mut String, r: &FindingsReport) {
    let _ = writeln!(o, "<h2>Committed proptest reproducers</h2>");
    if r.reproducers.is_empty() {
        let _ = writeln!(
            o,
            "<p class=\"note\">None found in {}.</p>",
            esc(&r.reproducers_dir.display().to_string())
        );
    } else {
        let _ = writeln!(o, "<ul>");
        for f in &r.reproducers {
            let exp: Vec<String> = f
                .expect
                .iter()
                .map(|(p, ok)| {
                    if *ok {
                        format!("{p}: reproduced")
                    } else {
                        format!("{p}: NOT reproduced")
                    }
                })
                .collect();
            let _ = writeln!(
                o,
                "<li><code>{}</code> ({}): {}<br/><span class=\"small\">{}</span></li>",
                esc(&f.path.display().to_string()),
                esc(&f.protocol),
                esc(&exp.join(", ")),
                esc(&f.provenance.join(" "))
            );
        }
        let _ = writeln!(o, "</ul>");
    }
}
