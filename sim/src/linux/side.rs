//! Side by side: `ftsim kernel FILE` (one script, step by step) and `ftsim kernel FILE...` (a
//! table: agreement, and whether each file's expected finding is confirmed on the kernel).

use super::compare::{compare, kernel_said, observable, Diff, FTRACE_DEAD};
use super::map;
use super::observe::ScriptRun;
use super::plan::{self, PlanScript};
use super::predict::{predict, Prediction};
use super::qemu::{Machine, Machinery};
use super::runner::{calibration, machine_line, run_scripts, GuestOutcome};
use ftsim_core::op::Op;
use ftsim_core::protocol::Protocol;
use ftsim_core::world::World;
use std::fmt::Write as _;

/// The outcome of `ftsim kernel FILE`.
pub struct FileRun {
    pub text: String,
    pub json: serde_json::Value,
    pub agree: bool,
}

/// One script's prediction beside the kernel's run.
struct Side<'a> {
    m: &'a Machine,
    preset: &'a str,
    pred: Prediction,
    run: ScriptRun,
    diffs: Vec<Diff>,
    /// Why the guest stopped inside the script, if it did.
    stopped: Option<String>,
    functions: usize,
}

impl Side<'_> {
    fn agree(&self) -> bool {
        self.diffs.is_empty() && self.stopped.is_none()
    }

    /// What a call of each function ran after step `n`, as the kernel reported it.
    fn kernel_calls(&self, n: usize) -> Vec<String> {
        (0..self.functions)
            .map(|f| {
                self.run
                    .calls
                    .get(&n)
                    .and_then(|c| c.get(f))
                    .map(|o| o.to_string())
                    .unwrap_or_else(|| "no answer".into())
            })
            .collect()
    }

    fn kernel_result(&self, n: usize) -> String {
        self.run
            .results
            .get(&n)
            .map(|r| r.to_string())
            .unwrap_or_else(|| "no answer".into())
    }
}

/// Runs one sequential script on the kernel and renders the side-by-side comparison.
pub fn run_file(
    m: &Machine,
    proto: Protocol,
    world: &World,
    ops: &[Op],
    preset: &str,
    file_protocol: &str,
) -> Result<FileRun, Machinery> {
    let pred = predict(proto, world, ops);
    let guest = m
        .dir
        .join("guest")
        .canonicalize()
        .map_err(|e| Machinery(e.to_string()))?;
    let script = PlanScript {
        id: 0,
        ops: ops.to_vec(),
    };
    let boot = m.boot(&plan::plan(&guest, &[script]))?;
    calibration(&boot, map::FUNCTIONS.len())?;
    let run = boot.scripts.get(&0).cloned().unwrap_or_default();
    let stopped = match (&run.clean, &boot.machinery) {
        (None, Some(why)) => Some(why.clone()),
        (None, None) => Some("the guest stopped".to_string()),
        _ => None,
    };
    let diffs = compare(&pred, &run, world.functions as usize)
        .map_err(|why| Machinery(format!("not performable: {why}")))?;
    let side = Side {
        m,
        preset,
        pred,
        run,
        diffs,
        stopped,
        functions: world.functions as usize,
    };
    Ok(FileRun {
        text: render_text(&side, file_protocol),
        json: render_json(&side),
        agree: side.agree(),
    })
}

fn row(t: &mut String, n: usize, op: &str, model: &str, kernel: &str) {
    let mark = if model == kernel { " " } else { "≠" };
    let _ = writeln!(
        t,
        "{mark} {n:>3}  {op:<44} model {model:<34} kernel {kernel}"
    );
}

fn render_text(s: &Side, file_protocol: &str) -> String {
    let (pred, run, preset) = (&s.pred, &s.run, s.preset);
    let mut t = String::new();
    let _ = writeln!(t, "{}", machine_line(s.m, preset));
    let _ = writeln!(
        t,
        "(the file's protocol is {file_protocol}; the prediction is {preset}'s{})",
        if preset == s.m.kernel.preset() {
            ", the preset read from this kernel's sources"
        } else {
            ""
        }
    );
    for (f, k) in s.kernel_calls(0).iter().enumerate() {
        let name = format!("  f{f} ({})", map::FUNCTIONS[f].0);
        row(&mut t, 0, &name, &pred.initial[f].to_string(), k);
    }
    for (i, step) in pred.steps.iter().enumerate() {
        let n = i + 1;
        let op = step.op.to_string();
        row(
            &mut t,
            n,
            &op,
            &step.result.to_string(),
            &s.kernel_result(n),
        );
        for (f, k) in s.kernel_calls(n).iter().enumerate() {
            row(&mut t, n, &format!("  f{f}"), &step.calls[f].to_string(), k);
        }
        for v in &step.violations {
            let _ = writeln!(t, "       model finding: {}", v.property.id());
        }
        if pred.killed_at == Some(n) {
            let _ = writeln!(t, "       model: a call meets a registered ops with a NULL func: FTRACE_WARN_ON -> ftrace_kill(); nothing further is predicted");
        }
        for l in run.kernel_said.get(&n).into_iter().flatten() {
            let _ = writeln!(t, "       kernel said: {l}");
        }
    }
    for l in run.kernel_said.get(&usize::MAX).into_iter().flatten() {
        let _ = writeln!(t, "       kernel said during the cleanup: {l}");
    }
    if let Some(why) = &s.stopped {
        let _ = writeln!(t, "≠ the guest stopped: {why}");
    }
    match &run.clean {
        Some(Ok(())) => {}
        Some(Err(w)) if pred.killed_at.is_some() && w.contains(FTRACE_DEAD) => {
            let _ = writeln!(t, "  cleanup: {w}, as the model predicted");
        }
        Some(Err(w)) => {
            let _ = writeln!(
                t,
                "≠ cleanup: the kernel was not back in its initial state: {w}"
            );
        }
        None => {
            let _ = writeln!(t, "≠ cleanup: no answer");
        }
    }
    if s.agree() {
        let steps = pred.steps.len();
        let _ = writeln!(
            t,
            "verdict: the kernel agrees with {preset} ({steps} steps)"
        );
    } else {
        let n = s.diffs.len();
        let _ = writeln!(
            t,
            "verdict: the kernel differs from {preset} in {n} places:"
        );
        for d in &s.diffs {
            let _ = writeln!(t, "  {d}");
        }
    }
    t
}

fn render_json(s: &Side) -> serde_json::Value {
    let steps: Vec<serde_json::Value> = s
        .pred
        .steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let n = i + 1;
            serde_json::json!({
                "op": step.op.to_string(),
                "model": {"result": step.result.to_string(),
                          "calls": step.calls.iter().map(|c| c.to_string()).collect::<Vec<_>>()},
                "kernel": {"result": s.run.results.get(&n).map(|r| r.to_string()),
                           "calls": s.kernel_calls(n)},
                "model_findings": step.violations.iter().map(|v| v.property.id()).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::json!({
        "kernel": s.m.kernel.name(),
        "release": s.m.release,
        "accel": s.m.accel.name(),
        "preset": s.preset,
        "agree": s.agree(),
        "steps": steps,
        "diffs": s.diffs.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        "stopped": s.stopped,
        "kernel_said": kernel_said(&s.run),
    })
}

/// One reproducer of a table run.
pub struct TableRow {
    pub name: String,
    pub expect: Vec<ftsim_core::property::Property>,
    pub world: World,
    pub ops: Vec<Op>,
}

/// Runs many sequential reproducers in one boot; per file: does the kernel agree with the
/// model of its preset, and is the file's expected finding confirmed (the agreeing model flags
/// it) or refuted (it does not)? Returns the Markdown table and whether every file agreed.
pub fn run_table(
    m: &Machine,
    proto: Protocol,
    preset: &str,
    rows: &[TableRow],
) -> Result<(String, bool, serde_json::Value), Machinery> {
    let scripts: Vec<PlanScript> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| PlanScript {
            id: i,
            ops: r.ops.clone(),
        })
        .collect();
    let (outcomes, _) = run_scripts(m, &scripts, scripts.len(), &mut |_| {})?;
    let mut t = String::new();
    let _ = writeln!(t, "{}", machine_line(m, preset));
    let _ = writeln!(
        t,
        "| reproducer | expects | kernel {} vs {preset} | finding on {} |",
        m.kernel, m.kernel
    );
    let _ = writeln!(t, "|---|---|---|---|");
    let mut all = true;
    let mut json = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let pred = predict(proto, &r.world, &r.ops);
        let flagged: Vec<_> = pred
            .steps
            .iter()
            .flat_map(|s| s.violations.iter().map(|v| v.property))
            .collect();
        let (agree, mut cmp) = match &outcomes[i] {
            GuestOutcome::Stopped(_, why) => (false, format!("the guest stopped: {why}")),
            GuestOutcome::Ran(run) => match compare(&pred, run, r.world.functions as usize) {
                Ok(d) if d.is_empty() => (true, "agree".to_string()),
                Ok(d) => (false, format!("differ: {}", d[0])),
                Err(why) => (false, format!("not performed: {why}")),
            },
        };
        let said = match &outcomes[i] {
            GuestOutcome::Ran(run) | GuestOutcome::Stopped(run, _) => kernel_said(run),
        };
        if !said.is_empty() {
            cmp.push_str(&format!(" (kernel said: {said})"));
        }
        all &= agree;
        let verdicts: Vec<String> = r
            .expect
            .iter()
            .map(|p| {
                let shown = flagged.contains(p);
                match (agree, shown, observable(*p)) {
                    (false, _, _) => format!("{}: undecided (the model differs)", p.id()),
                    (true, false, _) if pred.killed_at.is_some() => format!(
                        "{}: not reached (ftrace was killed at step {} first)",
                        p.id(),
                        pred.killed_at.unwrap_or(0)
                    ),
                    (true, true, true) => format!("{}: confirmed", p.id()),
                    (true, true, false) => format!(
                        "{}: confirmed by the agreeing model (not observable by a call)",
                        p.id()
                    ),
                    (true, false, _) => format!("{}: refuted", p.id()),
                }
            })
            .collect();
        let exp: Vec<&str> = r.expect.iter().map(|p| p.id()).collect();
        let _ = writeln!(
            t,
            "| `{}` | {} | {} | {} |",
            r.name,
            exp.join(", "),
            cmp,
            verdicts.join("; ")
        );
        json.push(serde_json::json!({"file": r.name, "agree": agree, "compare": cmp, "verdicts": verdicts}));
    }
    Ok((t, all, serde_json::Value::Array(json)))
}
