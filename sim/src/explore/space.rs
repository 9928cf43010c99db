//! The search space: the public trait the breadth-first search is generic over, one
//! successor ([`Edge`]), and the alphabet of operations a transition may run.

use super::Scratch;
use ftsim_core::ids::{ModId, ProgKind, TracerId};
use ftsim_core::op::{HashSel, Op};
use ftsim_core::property::Violation;
use ftsim_core::protocol::{Protocol, SingleDirectApi};
use ftsim_core::world::World;

/// Every operation a transition may run, in a fixed order (see the module docs).
pub fn alphabet(world: &World, proto: &Protocol) -> Vec<Op> {
    let mut v = Vec::new();
    for f in world.fns() {
        v.push(Op::KlpEnable(f));
        v.push(Op::KlpDisable(f));
        for kind in ProgKind::ALL {
            v.push(Op::BpfLink(kind, f));
            v.push(Op::BpfUnlink(kind, f));
        }
        v.push(Op::KprobeArm(f));
        v.push(Op::KprobeDisarm(f));
        if proto.single_direct_api != SingleDirectApi::Absent {
            v.push(Op::DirectRegister(f));
            v.push(Op::DirectModify(f));
            v.push(Op::DirectUnregister(f));
        }
    }
    for t in (0..world.tracers).map(TracerId) {
        v.push(Op::TracerRegister {
            tracer: t,
            filter: vec![],
            notrace: vec![],
        });
        for f in world.fns() {
            v.push(Op::TracerRegister {
                tracer: t,
                filter: vec![f],
                notrace: vec![],
            });
            v.push(Op::TracerRegister {
                tracer: t,
                filter: vec![],
                notrace: vec![f],
            });
        }
        for f in world.fns() {
            for which in [HashSel::Filter, HashSel::Notrace] {
                for add in [true, false] {
                    v.push(Op::TracerSet {
                        tracer: t,
                        which,
                        add,
                        func: f,
                    });
                }
            }
        }
        v.push(Op::TracerUnregister(t));
    }
    for m in 0..world.modules.len() {
        v.push(Op::ModuleLoad(ModId(m as u8)));
        v.push(Op::ModuleUnload(ModId(m as u8)));
    }
    v
}

/// One successor. The state is lent: a space may build every successor in one reused buffer
/// (the engine only checks a new state and forgets it; [`Space::replay`] gives states to keep).
pub struct Edge<'a, S> {
    pub label: u32,
    pub key: u128,
    pub next: &'a S,
    /// No successor may be taken from it.
    pub terminal: bool,
    pub violations: Vec<Violation>,
}

pub trait Space: Sync {
    type State: Clone + Send + Sync;
    fn root(&self) -> Self::State;
    fn key(&self, s: &Self::State, sc: &mut Scratch) -> u128;
    /// The successors of `s`, in a fixed order.
    fn expand(
        &self,
        s: &Self::State,
        sc: &mut Scratch,
        emit: &mut dyn FnMut(Edge<'_, Self::State>),
    );
    /// The state the transition `label` of [`Space::expand`] leads to from `s`, computed again
    /// (the breadth-first engine keeps no states in its frontier; it replays their paths).
    fn replay(&self, s: &Self::State, label: u32, sc: &mut Scratch) -> Self::State;
    /// The properties a new state violates.
    fn check(&self, s: &Self::State) -> Vec<Violation>;
}
