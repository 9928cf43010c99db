//! The reference state machine: the generators of SPEC §7 (worlds, operations, faults) with the
//! oracle as the reference, and the core under the checked sequential run as the system under
//! test (module docs of `state_machine.rs`).

use super::support::Checked;
use super::{verdict, ANY};
use ftsim_core::ids::{FnId, ModId, ProgKind, TracerId};
use ftsim_core::op::{HashSel, Op};
use ftsim_core::protocol::{Protocol, PRESETS};
use ftsim_core::world::World;
use ftsim_drive::oracle::Reference;
use ftsim_drive::seq::Faults;
use proptest::prelude::*;
use proptest::strategy::Union;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest};
use std::fmt;

/// One step: an operation and the faults injected into it.
#[derive(Clone)]
pub struct Step {
    pub op: Op,
    pub faults: Faults,
}

impl fmt::Debug for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.op, self.faults)
    }
}

/// The reference state: the preset, the world and the oracle's predicted picture.
#[derive(Clone)]
pub struct RefState {
    pub preset: usize,
    pub world: World,
    pub model: Reference,
}

impl fmt::Debug for RefState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "protocol {} / {}", PRESETS[self.preset].0, self.world)
    }
}

pub(crate) fn proto(preset: usize) -> Protocol {
    Protocol::preset(PRESETS[preset].0).expect("preset")
}

/// Worlds of 2 to 6 functions, about half of them in one of two modules, one or two tracers.
pub(crate) fn worlds() -> impl Strategy<Value = World> {
    let label = prop_oneof![2 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8)];
    (2u16..=6, proptest::collection::vec(label, 6), 1u8..=2).prop_map(|(n, labels, tracers)| {
        let mut w = World {
            functions: n,
            tracers,
            modules: Vec::new(),
        };
        let mut order: Vec<u8> = Vec::new();
        for f in 0..n {
            let l = labels[f as usize];
            if l == 0 {
                continue;
            }
            let i = order.iter().position(|x| *x == l).unwrap_or_else(|| {
                order.push(l);
                w.modules.push(Vec::new());
                order.len() - 1
            });
            w.modules[i].push(FnId(f));
        }
        w
    })
}

/// Every operation kind over the world, weighted as the module docs say.
pub(crate) fn ops(w: &World) -> BoxedStrategy<Op> {
    let n = w.functions;
    let f = move || (0..n).prop_map(FnId);
    let kind = || {
        prop_oneof![
            Just(ProgKind::Fentry),
            Just(ProgKind::Fexit),
            Just(ProgKind::FmodRet)
        ]
    };
    let tracers = w.tracers;
    let t = move || (0..tracers).prop_map(TracerId);
    let which = || prop_oneof![Just(HashSel::Filter), Just(HashSel::Notrace)];
    let set = move || proptest::collection::vec(f(), 0..=2);
    let mut arms: Vec<(u32, BoxedStrategy<Op>)> = vec![
        (4, f().prop_map(Op::KlpEnable).boxed()),
        (2, f().prop_map(Op::KlpDisable).boxed()),
        (
            4,
            (kind(), f()).prop_map(|(k, f)| Op::BpfLink(k, f)).boxed(),
        ),
        (
            2,
            (kind(), f()).prop_map(|(k, f)| Op::BpfUnlink(k, f)).boxed(),
        ),
        (4, f().prop_map(Op::KprobeArm).boxed()),
        (2, f().prop_map(Op::KprobeDisarm).boxed()),
        (
            2,
            (t(), set(), set())
                .prop_map(|(tracer, filter, notrace)| Op::TracerRegister {
                    tracer,
                    filter,
                    notrace,
                })
                .boxed(),
        ),
        (
            2,
            (t(), which(), f())
                .prop_map(|(tracer, which, func)| Op::TracerSet {
                    tracer,
                    which,
                    add: true,
                    func,
                })
                .boxed(),
        ),
        (
            1,
            (t(), which(), f())
                .prop_map(|(tracer, which, func)| Op::TracerSet {
                    tracer,
                    which,
                    add: false,
                    func,
                })
                .boxed(),
        ),
        (1, t().prop_map(Op::TracerUnregister).boxed()),
        (3, f().prop_map(Op::DirectRegister).boxed()),
        (1, f().prop_map(Op::DirectModify).boxed()),
        (2, f().prop_map(Op::DirectUnregister).boxed()),
    ];
    let mods = w.modules.len() as u8;
    if mods > 0 {
        arms.push((4, (0..mods).prop_map(|m| Op::ModuleLoad(ModId(m))).boxed()));
        arms.push((
            2,
            (0..mods).prop_map(|m| Op::ModuleUnload(ModId(m))).boxed(),
        ));
    }
    Union::new_weighted(arms).boxed()
}

/// No fault in seven steps of eight; else one fault of one kind at decision 0..4.
pub(crate) fn faults() -> impl Strategy<Value = Faults> {
    let one = (0u8..3, 0u32..4).prop_map(|(kind, i)| {
        let mut f = Faults::NONE;
        match kind {
            0 => f.allocs = 1 << i,
            1 => f.builds = 1 << i,
            _ => f.trylocks = 1 << i,
        }
        f
    });
    prop_oneof![7 => Just(Faults::NONE), 1 => one]
}

/// The state machine of preset `P` (or of a drawn preset for [`ANY`]), with faults injected when
/// `F`.
pub struct Machine<const P: usize, const F: bool>;

impl<const P: usize, const F: bool> ReferenceStateMachine for Machine<P, F> {
    type State = RefState;
    type Transition = Step;

    fn init_state() -> BoxedStrategy<RefState> {
        let preset = if P == ANY {
            (0..PRESETS.len()).boxed()
        } else {
            Just(P).boxed()
        };
        (preset, worlds())
            .prop_map(|(preset, world)| {
                let model = Reference::new(&world, &proto(preset));
                RefState {
                    preset,
                    world,
                    model,
                }
            })
            .boxed()
    }

    fn transitions(state: &RefState) -> BoxedStrategy<Step> {
        let faults = if F {
            faults().boxed()
        } else {
            Just(Faults::NONE).boxed()
        };
        (ops(&state.world), faults)
            .prop_map(|(op, faults)| Step { op, faults })
            .boxed()
    }

    fn apply(mut state: RefState, step: &Step) -> RefState {
        state.model.apply(&step.op);
        state
    }

    fn preconditions(state: &RefState, step: &Step) -> bool {
        step.op.check_world(&state.world).is_ok()
    }
}

/// The system under test: the core under the sequential driver, with the oracle following it.
pub struct Sut {
    preset: usize,
    checked: Checked,
    stuck: bool,
}

impl<const P: usize, const F: bool> StateMachineTest for Machine<P, F> {
    type SystemUnderTest = Sut;
    type Reference = Machine<P, F>;

    fn init_test(r: &RefState) -> Sut {
        Sut {
            preset: r.preset,
            checked: Checked::new(&r.world, proto(r.preset)),
            stuck: false,
        }
    }

    fn apply(mut sut: Sut, _r: &RefState, step: Step) -> Sut {
        if sut.stuck {
            return sut;
        }
        let s = sut.checked.step(&step.op, step.faults);
        sut.stuck = s.stuck;
        let known = verdict(PRESETS[sut.preset].0);
        let new: Vec<String> = s
            .all()
            .filter(|v| !known.contains(&v.property))
            .map(|v| v.to_string())
            .collect();
        assert!(
            new.is_empty(),
            "{} at `{step:?}`: {}",
            PRESETS[sut.preset].0,
            new.join("; ")
        );
        sut
    }
}
