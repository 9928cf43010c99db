//! The model's prediction of a sequential script, in the terms the guest observes: per
//! operation its result, after it, per function, what one call runs (SPEC §3 `call(f)`).

use super::observe::{GuestBody, Observed, StepResult};
use ftsim_core::ids::Addr;
use ftsim_core::ids::{FnId, OpsOwner, ProgId};
use ftsim_core::kernel::Kernel;
use ftsim_core::op::Op;
use ftsim_core::property::Violation;
use ftsim_core::protocol::Protocol;
use ftsim_core::world::World;
use ftsim_drive::observe::{self, Body as ModelBody, Tramp};
use ftsim_drive::seq::Sequential;
use std::collections::BTreeMap;

/// One step of the prediction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PredictedStep {
    pub op: Op,
    pub result: StepResult,
    /// After the operation, per function.
    pub calls: Vec<Observed>,
    /// Properties the model says this operation broke (for the side-by-side print).
    pub violations: Vec<Violation>,
}

/// The prediction for a whole script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prediction {
    /// Before the first operation, per function.
    pub initial: Vec<Observed>,
    pub steps: Vec<PredictedStep>,
    /// The first step (0: before the first operation) after which a call meets a registered ops
    /// with a NULL `func` (`Call::null_func`): the kernel WARNs and calls `ftrace_kill()`, after
    /// which every registration fails with `-ENODEV`. The model does not follow a dead ftrace:
    /// nothing after that observation is predicted.
    pub killed_at: Option<usize>,
}

/// What a call of `f` runs in the model, named like the guest names it: programs by the
/// operation number that linked them, tracers as `tN`, the livepatch by its stack depth.
pub fn observed(k: &Kernel, f: FnId, progs: &BTreeMap<ProgId, usize>) -> Observed {
    let Some(c) = observe::call(k, f) else {
        // Only vmlinux functions are mapped (map::check_performable), which are always live.
        unreachable!("[ftsim internal bug] a mapped function has no live text")
    };
    let body = match c.body {
        ModelBody::Original => GuestBody::Original,
        ModelBody::Redirected(op) => match k.owner(op) {
            OpsOwner::Klp(g) => GuestBody::Klp(k.fstate(g).klp_stack),
            OpsOwner::Kprobe => GuestBody::Kprobe,
            _ => GuestBody::Garbage,
        },
        ModelBody::Freed => GuestBody::Garbage,
    };
    let mut ps: Vec<usize> = c
        .progs()
        .iter()
        .map(|p| {
            *progs
                .get(p)
                .expect("[ftsim internal bug] a program no bpf-link made")
        })
        .collect();
    ps.sort_unstable();
    let mut tracers: Vec<u8> = c
        .callbacks
        .iter()
        .filter_map(|o| match k.owner(*o) {
            OpsOwner::Tracer(t) => Some(t.0),
            _ => None,
        })
        .collect();
    tracers.sort_unstable();
    // the single-ip direct user's trampolines: the live one, or one it left (`Freed`)
    let direct = match &c.tramp {
        Some(Tramp::Sample { .. }) => Some("current".to_string()),
        Some(Tramp::Freed {
            addr: Addr::Sample { .. },
        }) => Some("stale".to_string()),
        _ => None,
    };
    Observed {
        body,
        progs: ps.iter().map(|n| n.to_string()).collect(),
        tracers: tracers.iter().map(|t| format!("t{t}")).collect(),
        direct,
    }
}

/// Runs `ops` on the model of `proto` one after another (operation numbers are 1-based).
pub fn predict(proto: Protocol, world: &World, ops: &[Op]) -> Prediction {
    let mut s = Sequential::new(world, proto);
    let mut progs: BTreeMap<ProgId, usize> = BTreeMap::new();
    let calls = |s: &Sequential, progs: &BTreeMap<ProgId, usize>| -> Vec<Observed> {
        world.fns().map(|f| observed(&s.k, f, progs)).collect()
    };
    let kills = |s: &Sequential| {
        world
            .fns()
            .any(|f| observe::call(&s.k, f).is_some_and(|c| c.null_func))
    };
    let initial = calls(&s, &progs);
    let mut killed_at = kills(&s).then_some(0);
    let mut steps = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let before = s.k.next_prog;
        let out = s.apply(op);
        for p in before + 1..=s.k.next_prog {
            progs.insert(ProgId(p), i + 1);
        }
        let result = match out.result {
            Ok(()) => StepResult::Ok,
            Err(e) => StepResult::Err(e.name().to_string()),
        };
        steps.push(PredictedStep {
            op: op.clone(),
            result,
            calls: calls(&s, &progs),
            violations: out.violations,
        });
        if killed_at.is_none() && kills(&s) {
            killed_at = Some(i + 1);
        }
        if out.stuck || killed_at.is_some() {
            break;
        }
    }
    Prediction {
        initial,
        steps,
        killed_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(text: &str) -> Vec<Op> {
        text.lines().map(|l| l.parse().unwrap()).collect()
    }

    #[test]
    fn merged_bypasses_the_livepatch_and_fixes_2025_does_not() {
        let w = World::new(1);
        let script = ops("klp-enable f0\nbpf-link fentry f0\nbpf-link fexit f0");
        let merged = predict(Protocol::preset("merged").unwrap(), &w, &script);
        let last = &merged.steps[2].calls[0];
        assert_eq!(last.body, GuestBody::Original);
        assert_eq!(last.progs, vec!["2", "3"]);
        let fixed = predict(Protocol::preset("fixes-2025").unwrap(), &w, &script);
        assert_eq!(fixed.steps[2].calls[0].body, GuestBody::Klp(1));
        assert_eq!(fixed.initial[0].to_string(), "body=original");
    }

    #[test]
    fn names_stacked_patches_kprobes_and_tracers() {
        let w = World::new(2);
        let p = Protocol::preset("fixes-2025").unwrap();
        let s = predict(
            p,
            &w,
            &ops("klp-enable f0\nklp-enable f0\nkprobe-arm f1\ntracer-register t1 filter={f0} notrace={}\nklp-disable f0\nkprobe-arm f0"),
        );
        assert_eq!(s.steps[1].calls[0].body, GuestBody::Klp(2));
        assert_eq!(s.steps[2].calls[1].body, GuestBody::Kprobe);
        assert_eq!(s.steps[3].calls[0].tracers, vec!["t1"]);
        assert_eq!(s.steps[4].calls[0].body, GuestBody::Klp(1));
        assert_eq!(s.steps[5].result, StepResult::Err("EBUSY".into()));
    }
}
