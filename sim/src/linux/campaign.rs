//! Side by side: the model's prediction against what the kernel did, for one reproducer file
//! (`ftsim kernel FILE`) and for a differential campaign of random scripts
//! (`ftsim kernel --random N`), many scripts per boot.

use super::map::{self, unperformable, Kernel};
use super::observe::{BootRun, Observed, ScriptRun, StepResult};
use super::plan::{self, PlanScript};
use super::predict::{predict, Prediction};
use super::qemu::{Machine, Machinery};
use crate::sim::{sequential_ops, ActorKind};
use ftsim_core::ids::OpsOwner;
use ftsim_core::op::{HashSel, Op};
use ftsim_core::protocol::Protocol;
use ftsim_core::world::World;
use std::fmt::Write as _;
use std::path::Path;

/// What the guest's cleanup says when ftrace_kill() has run (`kernel/guest/ftsim-guest.c`).
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

fn machine_line(m: &Machine, proto: &str) -> String {
    format!(
        "kernel {} ({}), accel {} ({}), model preset {proto}",
        m.kernel,
        m.release,
        m.accel.name(),
        m.accel_why
    )
}

fn calibration(b: &BootRun, functions: usize) -> Result<(), Machinery> {
    for f in 0..functions {
        match b.calibration.iter().find(|(g, _)| *g == f) {
            Some((_, Ok(()))) => {}
            Some((_, Err(why))) => {
                return Err(Machinery(format!(
                    "calibration of f{f} ({}): {why}",
                    map::FUNCTIONS[f].0
                )))
            }
            None => {
                return Err(Machinery(format!(
                    "calibration of f{f} did not report{}",
                    b.machinery
                        .as_ref()
                        .map(|m| format!(" (guest: {m})"))
                        .unwrap_or_default()
                )))
            }
        }
    }
    Ok(())
}

/// The outcome of `ftsim kernel FILE`.
pub struct FileRun {
    pub text: String,
    pub json: serde_json::Value,
    pub agree: bool,
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
    let p = plan::plan(
        &guest,
        &[PlanScript {
            id: 0,
            ops: ops.to_vec(),
        }],
    );
    let boot = m.boot(&p)?;
    calibration(&boot, map::FUNCTIONS.len())?;
    let run = boot.scripts.get(&0).cloned().unwrap_or_default();
    let stopped = match (&run.clean, &boot.machinery) {
        (None, Some(why)) => Some(why.clone()),
        (None, None) => Some("the guest stopped".to_string()),
        _ => None,
    };
    let diffs = match compare(&pred, &run, world.functions as usize) {
        Ok(d) => d,
        Err(why) => return Err(Machinery(format!("not performable: {why}"))),
    };
    let mut t = String::new();
    let _ = writeln!(t, "{}", machine_line(m, preset));
    let _ = writeln!(
        t,
        "(the file's protocol is {file_protocol}; the prediction is {preset}'s{})",
        if preset == m.kernel.preset() {
            ", the preset read from this kernel's sources"
        } else {
            ""
        }
    );
    let funcs = world.functions as usize;
    let row = |t: &mut String, n: usize, op: &str, model: &str, kernel: &str| {
        let mark = if model == kernel { " " } else { "≠" };
        let _ = writeln!(
            t,
            "{mark} {n:>3}  {op:<44} model {model:<34} kernel {kernel}"
        );
    };
    let calls_of = |n: usize| -> Vec<String> {
        (0..funcs)
            .map(|f| {
                run.calls
                    .get(&n)
                    .and_then(|c| c.get(f))
                    .map(|o| o.to_string())
                    .unwrap_or_else(|| "no answer".into())
            })
            .collect()
    };
    let initial = calls_of(0);
    for (f, k) in initial.iter().enumerate() {
        row(
            &mut t,
            0,
            &format!("  f{f} ({})", map::FUNCTIONS[f].0),
            &pred.initial[f].to_string(),
            k,
        );
    }
    for (i, s) in pred.steps.iter().enumerate() {
        let n = i + 1;
        let kr = run
            .results
            .get(&n)
            .map(|r| r.to_string())
            .unwrap_or_else(|| "no answer".into());
        row(&mut t, n, &s.op.to_string(), &s.result.to_string(), &kr);
        let kc = calls_of(n);
        for (f, k) in kc.iter().enumerate() {
            row(&mut t, n, &format!("  f{f}"), &s.calls[f].to_string(), k);
        }
        for v in &s.violations {
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
    if let Some(why) = &stopped {
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
    for o in boot
        .other
        .iter()
        .filter(|l| l.contains("WARNING") || l.contains("BUG"))
    {
        let _ = writeln!(t, "  kernel said: {o}");
    }
    let agree = diffs.is_empty() && stopped.is_none();
    if agree {
        let _ = writeln!(
            t,
            "verdict: the kernel agrees with {preset} ({} steps)",
            ops.len()
        );
    } else {
        let _ = writeln!(
            t,
            "verdict: the kernel differs from {preset} in {} places:",
            diffs.len()
        );
        for d in &diffs {
            let _ = writeln!(t, "  {d}");
        }
    }
    let json = serde_json::json!({
        "kernel": m.kernel.name(),
        "release": m.release,
        "accel": m.accel.name(),
        "preset": preset,
        "agree": agree,
        "steps": pred.steps.iter().enumerate().map(|(i, s)| {
            let n = i + 1;
            serde_json::json!({
                "op": s.op.to_string(),
                "model": {"result": s.result.to_string(),
                          "calls": s.calls.iter().map(|c| c.to_string()).collect::<Vec<_>>()},
                "kernel": {"result": run.results.get(&n).map(|r| r.to_string()),
                           "calls": calls_of(n)},
                "model_findings": s.violations.iter().map(|v| v.property.id()).collect::<Vec<_>>(),
            })
        }).collect::<Vec<_>>(),
        "diffs": diffs.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        "stopped": stopped,
        "kernel_said": kernel_said(&run),
    });
    Ok(FileRun {
        text: t,
        json,
        agree,
    })
}

/// The actor kinds whose operations the harness performs on `kernel`.
pub fn kinds(kernel: Kernel) -> Vec<ActorKind> {
    let mut k = vec![
        ActorKind::Livepatch,
        ActorKind::Bpf,
        ActorKind::Kprobe,
        ActorKind::Tracer,
    ];
    if kernel.has_single_direct_api() {
        k.push(ActorKind::Direct);
    }
    k
}

/// Most operations of one campaign script.
pub const SCRIPT_OPS_MAX: usize = 8;

/// What the harness performs in the model's current state: the mapped operations, and within
/// the guest's bounds (three stacked livepatches and three kprobes per function; a registered
/// tracer's filter never emptied, which would trace every function).
pub fn performable_now(kernel: Kernel, k: &ftsim_core::kernel::Kernel, op: &Op) -> bool {
    if unperformable(op, kernel).is_some() {
        return false;
    }
    match op {
        Op::KlpEnable(f) => k.fstate(*f).klp_stack < 3,
        Op::KprobeArm(f) => k.fstate(*f).kprobes < 3,
        Op::TracerSet {
            tracer,
            which: HashSel::Filter,
            add: false,
            ..
        } => {
            !k.tracers[tracer.0 as usize].registered
                || k.op(k.id(OpsOwner::Tracer(*tracer))).filter.len() > 1
        }
        _ => true,
    }
}

/// The i-th script of campaign `seed` on `kernel`.
pub fn campaign_script(kernel: Kernel, proto: Protocol, seed: u64, i: u64) -> (World, Vec<Op>) {
    let s = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(i.wrapping_mul(0xBF58_476D_1CE4_E5B9));
    let len = 1 + (s >> 7) as usize % SCRIPT_OPS_MAX;
    sequential_ops(proto, s, &kinds(kernel), len, |k, op| {
        performable_now(kernel, k, op)
    })
}

/// What became of one script of [`run_scripts`].
#[derive(Clone, Debug)]
pub enum Outcome {
    /// The guest ran it to its cleanup.
    Ran(ScriptRun),
    /// The guest stopped inside it (the driver failed, the guest timed out or the kernel
    /// crashed): what it had reported, and why it stopped (the kernel's last words included).
    Stopped(ScriptRun, String),
}

/// Runs `scripts` (`PlanScript::id` = index), up to `batch` per boot. A script that leaves the
/// kernel dirty, or inside which the guest stops, ends its boot: the next one starts on a fresh
/// kernel, so one broken kernel state never leaks into another script.
pub fn run_scripts(
    m: &Machine,
    scripts: &[PlanScript],
    batch: usize,
    log: &mut dyn FnMut(&str),
) -> Result<(Vec<Outcome>, u64), Machinery> {
    let guest = m
        .dir
        .join("guest")
        .canonicalize()
        .map_err(|e| Machinery(e.to_string()))?;
    let mut out: Vec<Outcome> = Vec::new();
    let mut boots = 0;
    let mut idle_boots = 0;
    while out.len() < scripts.len() {
        let chunk = &scripts[out.len()..(out.len() + batch.max(1)).min(scripts.len())];
        let boot = m.boot(&plan::plan(&guest, chunk))?;
        boots += 1;
        calibration(&boot, map::FUNCTIONS.len())?;
        let before = out.len();
        for s in chunk {
            let run = boot.scripts.get(&s.id).cloned().unwrap_or_default();
            match &run.clean {
                Some(Ok(())) => out.push(Outcome::Ran(run)),
                Some(Err(_)) => {
                    out.push(Outcome::Ran(run));
                    break;
                }
                None => {
                    if boot.scripts.contains_key(&s.id) || before == out.len() {
                        let why = boot
                            .machinery
                            .clone()
                            .unwrap_or_else(|| "the guest stopped".into());
                        out.push(Outcome::Stopped(run, why));
                    }
                    break;
                }
            }
        }
        if out.len() == before {
            idle_boots += 1;
            if idle_boots >= 2 {
                return Err(Machinery(format!(
                    "two boots in a row ran no script: {}",
                    boot.machinery.unwrap_or_else(|| "no answer".into())
                )));
            }
        } else {
            idle_boots = 0;
        }
        log(&format!(
            "{}/{} scripts, {boots} boots",
            out.len(),
            scripts.len()
        ));
    }
    Ok((out, boots))
}

/// Options of a campaign.
pub struct Campaign {
    pub scripts: u64,
    pub seed: u64,
    /// Scripts per boot.
    pub batch: usize,
}

/// The campaign's tally.
#[derive(Default)]
pub struct Tally {
    pub agree: u64,
    pub differ: Vec<(u64, World, Vec<Op>, Vec<Diff>)>,
    pub not_performed: Vec<(u64, String)>,
    pub machinery: Vec<(u64, String)>,
    pub ops: u64,
    pub boots: u64,
    /// Scripts during which the kernel logged a warning or an oops.
    pub warned: u64,
}

/// Runs the campaign; progress lines go to `log`.
pub fn campaign(
    m: &Machine,
    proto: Protocol,
    c: &Campaign,
    log: &mut dyn FnMut(&str),
) -> Result<Tally, Machinery> {
    let scripts: Vec<(World, Vec<Op>)> = (0..c.scripts)
        .map(|i| campaign_script(m.kernel, proto, c.seed, i))
        .collect();
    let plans: Vec<PlanScript> = scripts
        .iter()
        .enumerate()
        .map(|(i, (_, ops))| PlanScript {
            id: i,
            ops: ops.clone(),
        })
        .collect();
    let (outcomes, boots) = run_scripts(m, &plans, c.batch, log)?;
    let mut tally = Tally {
        boots,
        ..Tally::default()
    };
    for (i, ((w, ops), o)) in scripts.iter().zip(&outcomes).enumerate() {
        let i = i as u64;
        match o {
            Outcome::Stopped(_, why) => tally.machinery.push((i, why.clone())),
            Outcome::Ran(run) => {
                tally.ops += ops.len() as u64;
                if !run.kernel_said.is_empty() {
                    tally.warned += 1;
                }
                let pred = predict(proto, w, ops);
                match compare(&pred, run, w.functions as usize) {
                    Ok(d) if d.is_empty() => tally.agree += 1,
                    Ok(d) => tally.differ.push((i, w.clone(), ops.clone(), d)),
                    Err(why) => tally.not_performed.push((i, why)),
                }
            }
        }
    }
    Ok(tally)
}

/// A disagreement as a reproducer file: the kernel's preset, the world, the operations, and
/// what differed, as comments.
pub fn disagreement_file(
    kernel: Kernel,
    seed: u64,
    i: u64,
    w: &World,
    ops: &[Op],
    diffs: &[Diff],
) -> String {
    let mut s = String::from("# ftsim reproducer\n");
    let _ = writeln!(
        s,
        "# the real kernel {kernel} differs from the model (ftsim kernel --random .. --seed {seed}, script {i}):"
    );
    for d in diffs {
        let _ = writeln!(s, "#   {d}");
    }
    let _ = writeln!(s, "# replay: ftsim kernel THIS_FILE --kernel {kernel}");
    let _ = writeln!(s, "protocol {}", kernel.preset());
    let _ = writeln!(s, "{w}");
    for op in ops {
        let _ = writeln!(s, "{op}");
    }
    s
}

/// Writes the disagreements under `dir`, returns the paths.
pub fn write_disagreements(
    dir: &Path,
    kernel: Kernel,
    seed: u64,
    t: &Tally,
) -> std::io::Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    let mut out = Vec::new();
    for (i, w, ops, diffs) in &t.differ {
        let p = dir.join(format!("kernel-{kernel}--seed{seed}-script{i}.txt"));
        std::fs::write(&p, disagreement_file(kernel, seed, *i, w, ops, diffs))?;
        out.push(p.display().to_string());
    }
    Ok(out)
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
            Outcome::Stopped(_, why) => (false, format!("the guest stopped: {why}")),
            Outcome::Ran(run) => match compare(&pred, run, r.world.functions as usize) {
                Ok(d) if d.is_empty() => (true, "agree".to_string()),
                Ok(d) => (false, format!("differ: {}", d[0])),
                Err(why) => (false, format!("not performed: {why}")),
            },
        };
        let said = match &outcomes[i] {
            Outcome::Ran(run) | Outcome::Stopped(run, _) => kernel_said(run),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linux::observe::Body;

    #[test]
    fn campaign_scripts_are_deterministic_and_performable() {
        let p = Protocol::preset("fixes-2025").unwrap();
        for i in 0..200 {
            let (w, ops) = campaign_script(Kernel::V6_12, p, 7, i);
            assert_eq!(
                campaign_script(Kernel::V6_12, p, 7, i),
                (w.clone(), ops.clone())
            );
            assert!(!ops.is_empty() && ops.len() <= SCRIPT_OPS_MAX);
            let s = ftsim_core::script::Script::sequential(
                p,
                w,
                ops.iter()
                    .map(|o| (o.clone(), Default::default()))
                    .collect(),
            );
            map::check_performable(&s, Kernel::V6_12, None).unwrap();
        }
        // the generic generators reach every owner the harness maps
        let all: Vec<Op> = (0..200)
            .flat_map(|i| campaign_script(Kernel::V6_12, p, 7, i).1)
            .collect();
        let p61 = Protocol::preset("fixes-2022").unwrap();
        let on61: Vec<Op> = (0..200)
            .flat_map(|i| campaign_script(Kernel::V6_1, p61, 7, i).1)
            .collect();
        assert!(on61
            .iter()
            .any(|o| o.to_string().starts_with("direct-modify")));
        assert!(!all.iter().any(|o| o.to_string().starts_with("direct-")));
        for want in [
            "klp-enable",
            "klp-disable",
            "bpf-link",
            "bpf-unlink",
            "kprobe-arm",
            "tracer-register",
            "tracer-filter-add",
        ] {
            assert!(
                all.iter().any(|o| o.to_string().starts_with(want)),
                "{want}"
            );
        }
    }

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
        assert_eq!(fixed.steps[2].calls[0].body, Body::Klp(1));
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
