//! The comparison of a prediction with what the kernel did, step by step.

use super::observe::{Observed, ScriptRun, StepResult};
use super::predict::Prediction;

/// What the guest's cleanup says when ftrace_kill() has run (`kernel/guest/observe.c`).
pub const FTRACE_DEAD: &str = "ftrace is dead";

/// One place where the kernel did something else than the model predicted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diff {
    /// Operation number (0: before the first).
    pub step: usize,
    /// `result` or the function (`f0`, ...).
    pub what: String,
    pub model: String,
    pub kernel: String,
}

impl std::fmt::Display for Diff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "step {} {}: model {}, kernel {}",
            self.step, self.what, self.model, self.kernel
        )
    }
}

/// Compares a prediction with what the guest reported for the same script. `Err` when the
/// guest could not perform a step (the reason, naming the operation).
pub fn compare(pred: &Prediction, run: &ScriptRun, functions: usize) -> Result<Vec<Diff>, String> {
    let mut diffs = Vec::new();
    for (n, r) in &run.results {
        if let StepResult::Cannot(why) = r {
            return Err(format!("operation {n}: the guest cannot perform it: {why}"));
        }
    }
    let none = "no answer".to_string();
    for n in 0..=pred.steps.len() {
        if n > 0 {
            let want = &pred.steps[n - 1].result;
            let got = run.results.get(&n);
            if got != Some(want) {
                diffs.push(Diff {
                    step: n,
                    what: "result".into(),
                    model: want.to_string(),
                    kernel: got.map(|g| g.to_string()).unwrap_or_else(|| none.clone()),
                });
            }
        }
        let want: &[Observed] = if n == 0 {
            &pred.initial
        } else {
            &pred.steps[n - 1].calls
        };
        let got = run.calls.get(&n);
        for (f, w) in want.iter().enumerate().take(functions) {
            let g = got.and_then(|c| c.get(f));
            if g != Some(w) {
                diffs.push(Diff {
                    step: n,
                    what: format!("f{f}"),
                    model: w.to_string(),
                    kernel: g.map(|g| g.to_string()).unwrap_or_else(|| none.clone()),
                });
            }
        }
    }
    // After a kill (`Prediction::killed_at`) the kernel cannot be back in its initial state:
    // the cleanup must find ftrace dead, and nothing else left behind is judged.
    let cleanup = |model: &str, kernel: String| Diff {
        step: pred.steps.len() + 1,
        what: "cleanup".into(),
        model: model.into(),
        kernel,
    };
    match (&run.clean, pred.killed_at) {
        (Some(Ok(())), None) => {}
        (Some(Err(what)), Some(_)) if what.contains(FTRACE_DEAD) => {}
        (Some(Err(what)), None) => diffs.push(cleanup("initial state", what.clone())),
        (Some(Ok(())), Some(_)) => diffs.push(cleanup(FTRACE_DEAD, "initial state".into())),
        (Some(Err(what)), Some(_)) => diffs.push(cleanup(FTRACE_DEAD, what.clone())),
        (None, _) => diffs.push(cleanup("a report", none.clone())),
    }
    Ok(diffs)
}

/// The kernel's warnings during a script, deduplicated, in step order.
pub fn kernel_said(run: &ScriptRun) -> String {
    let mut seen: Vec<String> = Vec::new();
    for (n, lines) in &run.kernel_said {
        for l in lines {
            let step = if *n == usize::MAX {
                "cleanup".to_string()
            } else {
                format!("step {n}")
            };
            let l = format!("{step}: {l}");
            if !seen.contains(&l) {
                seen.push(l);
            }
        }
    }
    seen.join("; ")
}

/// Properties a call or an errno shows directly on the real kernel; the others (record flags,
/// hashes, locks) are judged by the model that agrees with every observation.
pub fn observable(p: ftsim_core::property::Property) -> bool {
    matches!(
        p.id(),
        "ipmodify-honoured" | "no-lost-program" | "no-lost-callback" | "availability"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linux::observe::{BootRun, GuestBody};
    use crate::linux::predict::predict;
    use ftsim_core::op::Op;
    use ftsim_core::protocol::Protocol;
    use ftsim_core::world::World;

    #[test]
    fn compare_finds_each_kind_of_difference() {
        let p = Protocol::preset("merged").unwrap();
        let w = World::new(1);
        let ops: Vec<Op> = ["klp-enable f0", "bpf-link fentry f0", "bpf-link fexit f0"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let pred = predict(p, &w, &ops);
        let text = "@@ftsim script 0\n\
@@ftsim call 0 f0 body=original progs= tracers=\n\
@@ftsim op 1 ok\n@@ftsim call 1 f0 body=klp:1 progs= tracers=\n\
@@ftsim op 2 ok\n@@ftsim call 2 f0 body=klp:1 progs=2 tracers=\n\
@@ftsim op 3 ok\n@@ftsim call 3 f0 body=klp:1 progs=2,3 tracers=\n\
@@ftsim clean 0 ok\n";
        let b = BootRun::parse(text).unwrap();
        let d = compare(&pred, &b.scripts[&0], 1).unwrap();
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].step, 3);
        assert_eq!(d[0].model, "body=original progs=2,3");
        // the same run agrees with fixes-2025
        let fixed = predict(Protocol::preset("fixes-2025").unwrap(), &w, &ops);
        assert!(compare(&fixed, &b.scripts[&0], 1).unwrap().is_empty());
        assert_eq!(fixed.steps[2].calls[0].body, GuestBody::Klp(1));
        // a step the guest could not perform is not a difference
        let cannot = BootRun::parse("@@ftsim script 0\n@@ftsim op 1 cannot why not\n").unwrap();
        assert!(compare(&fixed, &cannot.scripts[&0], 1)
            .unwrap_err()
            .contains("why not"));
        // silence is a difference
        let silent = BootRun::parse("@@ftsim script 0\n@@ftsim clean 0 ok\n").unwrap();
        assert!(!compare(&fixed, &silent.scripts[&0], 1).unwrap().is_empty());
    }
}
