//! The readable timeline: one line per step with the thread, what it did (operation started,
//! kernel functions entered, locks taken and released, owner callbacks, injected faults, call
//! sites rewritten, warnings, the result) and the locks it holds afterwards.

use ftsim_core::errno::fmt_result;
use ftsim_core::ids::{OpsLayout, Tid};
use ftsim_core::locks::Lock;
use ftsim_core::property::Violation;
use ftsim_core::step::EventKind;
use ftsim_drive::script::Replay;
use std::fmt::Write as _;

/// Renders one event; `None` for events the timeline leaves out.
pub fn event(layout: &OpsLayout, e: &EventKind) -> Option<String> {
    Some(match e {
        EventKind::Start(op) => format!("start `{op}`"),
        EventKind::Finish(r) => format!("=> {}", fmt_result(*r)),
        EventKind::Enter(name) => format!("{name}()"),
        EventKind::Leave(..) => return None,
        EventKind::Acquire(l) => format!("+{l}"),
        EventKind::Release(l) => format!("-{l}"),
        EventKind::TryFailed(l) => format!("trylock {l} BUSY"),
        EventKind::AllocFailed(s) => format!("alloc {} FAILS", s.name()),
        EventKind::BuildFailed(f) => format!("build tramp({f}) FAILS"),
        EventKind::Callback(ops, cmd) => format!("{}<-{cmd}", layout.owner(*ops)),
        EventKind::Site(f, site) => format!("{f}:site={site:?}"),
        EventKind::Warn(w) => format!("WARN({w})"),
    })
}

/// One timeline line.
pub fn line(
    out: &mut String,
    layout: &OpsLayout,
    step: u64,
    t: Tid,
    events: &[EventKind],
    held: &[Lock],
    findings: &[Violation],
) {
    let parts: Vec<String> = events.iter().filter_map(|e| event(layout, e)).collect();
    let held: Vec<String> = held.iter().map(|l| l.to_string()).collect();
    let _ = writeln!(
        out,
        "{step:>6}  t{t:<2} {}  [holds: {}]",
        parts.join(" "),
        held.join(", ")
    );
    for v in findings {
        let _ = writeln!(out, "{step:>6}  !! {v}");
    }
}

/// The timeline of a traced script replay.
pub fn replay(layout: &OpsLayout, r: &Replay) -> String {
    let mut out = String::new();
    for (i, s) in r.timeline.iter().enumerate() {
        let step = i as u64 + 1;
        match s.tid {
            Some(t) => line(&mut out, layout, step, t, &s.events, &s.held, &s.findings),
            None => {
                let _ = writeln!(out, "{step:>6}  --  stall: no thread can step");
                for v in &s.findings {
                    let _ = writeln!(out, "{step:>6}  !! {v}");
                }
            }
        }
    }
    out
}
