//! The greedy pass after proptest's shrinking that makes a reproducer 1-minimal: remove any
//! single step, fault, module, unnamed function or unnamed tracer while the property still shows.

use super::reference::{proto, Step};
use super::support::Checked;
use ftsim_core::ids::{FnId, ModId};
use ftsim_core::op::Op;
use ftsim_core::property::Property;
use ftsim_core::world::World;
use ftsim_drive::seq::Faults;

/// Whether running `steps` on `world` under preset `p` shows `target`.
fn shows(p: usize, world: &World, steps: &[Step], target: Property) -> bool {
    let mut c = Checked::new(world, proto(p));
    for s in steps {
        let st = c.step(&s.op, s.faults);
        if st.all().any(|v| v.property == target) {
            return true;
        }
        if st.stuck {
            return false;
        }
    }
    false
}

/// Most rounds of [`minimize`] (each removes at least one step, fault, module, function or
/// tracer, so the bound is never reached on generated cases).
const MINIMIZE_ROUNDS_MAX: usize = 64;

/// After proptest's shrinking (which deletes steps before it simplifies them, so an operation
/// simplified late can become removable), a greedy pass to a 1-minimal reproducer: remove any
/// single step, fault, module (with the steps that name it), unnamed function or unnamed tracer
/// as long as the property still shows.
pub(crate) fn minimize(
    p: usize,
    mut world: World,
    mut steps: Vec<Step>,
    target: Property,
) -> (World, Vec<Step>) {
    for _ in 0..MINIMIZE_ROUNDS_MAX {
        let mut changed = false;
        let mut accept = |w: World, s: Vec<Step>, world: &mut World, steps: &mut Vec<Step>| {
            if shows(p, &w, &s, target) {
                *world = w;
                *steps = s;
                changed = true;
            }
        };
        for i in (0..steps.len()).rev() {
            let mut s = steps.clone();
            s.remove(i);
            accept(world.clone(), s, &mut world, &mut steps);
        }
        for i in 0..steps.len() {
            if !steps[i].faults.is_none() {
                let mut s = steps.clone();
                s[i].faults = Faults::NONE;
                accept(world.clone(), s, &mut world, &mut steps);
            }
        }
        for m in (0..world.modules.len()).rev() {
            let (w, s) = dissolve_module(&world, &steps, m);
            accept(w, s, &mut world, &mut steps);
        }
        for f in (0..world.functions).rev() {
            if let Some((w, s)) = drop_function(&world, &steps, FnId(f)) {
                accept(w, s, &mut world, &mut steps);
            }
        }
        let tracer_named = |s: &Step| match &s.op {
            Op::TracerRegister { tracer, .. }
            | Op::TracerSet { tracer, .. }
            | Op::TracerUnregister(tracer) => tracer.0 + 1 >= world.tracers,
            _ => false,
        };
        if world.tracers > 1 && !steps.iter().any(tracer_named) {
            let w = World {
                tracers: world.tracers - 1,
                ..world.clone()
            };
            accept(w, steps.clone(), &mut world, &mut steps);
        }
        if !changed {
            break;
        }
    }
    (world, steps)
}

/// `op` with its functions and modules renamed.
fn rename(op: &Op, f: &dyn Fn(FnId) -> FnId, m: &dyn Fn(ModId) -> ModId) -> Op {
    let set = |v: &Vec<FnId>| v.iter().map(|x| f(*x)).collect();
    match op {
        Op::KlpEnable(x) => Op::KlpEnable(f(*x)),
        Op::KlpDisable(x) => Op::KlpDisable(f(*x)),
        Op::BpfLink(k, x) => Op::BpfLink(*k, f(*x)),
        Op::BpfUnlink(k, x) => Op::BpfUnlink(*k, f(*x)),
        Op::KprobeArm(x) => Op::KprobeArm(f(*x)),
        Op::KprobeDisarm(x) => Op::KprobeDisarm(f(*x)),
        Op::TracerRegister {
            tracer,
            filter,
            notrace,
        } => Op::TracerRegister {
            tracer: *tracer,
            filter: set(filter),
            notrace: set(notrace),
        },
        Op::TracerSet {
            tracer,
            which,
            add,
            func,
        } => Op::TracerSet {
            tracer: *tracer,
            which: *which,
            add: *add,
            func: f(*func),
        },
        Op::TracerUnregister(t) => Op::TracerUnregister(*t),
        Op::DirectRegister(x) => Op::DirectRegister(f(*x)),
        Op::DirectModify(x) => Op::DirectModify(f(*x)),
        Op::DirectUnregister(x) => Op::DirectUnregister(f(*x)),
        Op::ModuleLoad(x) => Op::ModuleLoad(m(*x)),
        Op::ModuleUnload(x) => Op::ModuleUnload(m(*x)),
    }
}

/// The world without module `m` (its functions built in) and the steps without those naming it.
fn dissolve_module(world: &World, steps: &[Step], m: usize) -> (World, Vec<Step>) {
    let mut w = world.clone();
    w.modules.remove(m);
    let down = |x: ModId| if x.0 as usize > m { ModId(x.0 - 1) } else { x };
    let s = steps
        .iter()
        .filter(|s| !matches!(s.op, Op::ModuleLoad(x) | Op::ModuleUnload(x) if x.0 as usize == m))
        .map(|s| Step {
            op: rename(&s.op, &|f| f, &down),
            faults: s.faults,
        })
        .collect();
    (w, s)
}

/// The world without function `f`, when no step names it, no module becomes empty and the
/// world keeps two functions.
fn drop_function(world: &World, steps: &[Step], f: FnId) -> Option<(World, Vec<Step>)> {
    let named = |op: &Op| match op {
        Op::TracerRegister {
            filter, notrace, ..
        } => filter.contains(&f) || notrace.contains(&f),
        _ => op.func() == Some(f),
    };
    if world.functions <= 2 || steps.iter().any(|s| named(&s.op)) {
        return None;
    }
    let down = |x: FnId| if x > f { FnId(x.0 - 1) } else { x };
    let mut w = world.clone();
    w.functions -= 1;
    for m in &mut w.modules {
        m.retain(|x| *x != f);
        if m.is_empty() {
            return None;
        }
        for x in m.iter_mut() {
            *x = down(*x);
        }
    }
    let s = steps
        .iter()
        .map(|s| Step {
            op: rename(&s.op, &down, &|m| m),
            faults: s.faults,
        })
        .collect();
    Some((w, s))
}
