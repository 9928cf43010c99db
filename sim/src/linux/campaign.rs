//! The differential campaign (`ftsim kernel --random N`): random sequential scripts from the
//! simulator's own actors, many per boot, and the agreement tally.

use super::compare::{compare, Diff};
use super::map::{unperformable, RealKernel};
use super::plan::PlanScript;
use super::predict::predict;
use super::qemu::{Machine, Machinery};
use super::runner::{run_scripts, GuestOutcome};
use crate::sim::{sequential_ops, ActorKind};
use ftsim_core::ids::OpsOwner;
use ftsim_core::op::{HashSel, Op};
use ftsim_core::protocol::Protocol;
use ftsim_core::world::World;
use std::fmt::Write as _;
use std::path::Path;

/// The actor kinds whose operations the harness performs on `kernel`.
pub fn kinds(kernel: RealKernel) -> Vec<ActorKind> {
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
pub fn performable_now(kernel: RealKernel, k: &ftsim_core::kernel::Kernel, op: &Op) -> bool {
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
pub fn campaign_script(kernel: RealKernel, proto: Protocol, seed: u64, i: u64) -> (World, Vec<Op>) {
    let s = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(i.wrapping_mul(0xBF58_476D_1CE4_E5B9));
    let len = 1 + (s >> 7) as usize % SCRIPT_OPS_MAX;
    sequential_ops(proto, s, &kinds(kernel), len, |k, op| {
        performable_now(kernel, k, op)
    })
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
            GuestOutcome::Stopped(_, why) => tally.machinery.push((i, why.clone())),
            GuestOutcome::Ran(run) => {
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
    kernel: RealKernel,
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
    kernel: RealKernel,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn campaign_scripts_are_deterministic_and_performable() {
        let p = Protocol::preset("fixes-2025").unwrap();
        for i in 0..200 {
            let (w, ops) = campaign_script(RealKernel::V6_12, p, 7, i);
            assert_eq!(
                campaign_script(RealKernel::V6_12, p, 7, i),
                (w.clone(), ops.clone())
            );
            assert!(!ops.is_empty() && ops.len() <= SCRIPT_OPS_MAX);
            let s = ftsim_drive::script::Script::sequential(
                p,
                w,
                ops.iter()
                    .map(|o| (o.clone(), Default::default()))
                    .collect(),
            );
            crate::linux::map::check_performable(&s, RealKernel::V6_12, None).unwrap();
        }
        // the generic generators reach every owner the harness maps
        let all: Vec<Op> = (0..200)
            .flat_map(|i| campaign_script(RealKernel::V6_12, p, 7, i).1)
            .collect();
        let p61 = Protocol::preset("fixes-2022").unwrap();
        let on61: Vec<Op> = (0..200)
            .flat_map(|i| campaign_script(RealKernel::V6_1, p61, 7, i).1)
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
}
