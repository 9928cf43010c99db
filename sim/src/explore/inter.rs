//! The interleaving space: a state is the concurrent executor with two threads, stepped as the
//! checked concurrent run steps it ([`CheckedRun::step`], its judges off: the explorer judges
//! its new states itself, [`Space::check`]), and the number of operations started; a transition
//! starts an operation or steps a thread.

use ftsim_core::ids::Tid;
use ftsim_core::op::Op;
use ftsim_core::property::Violation;
use ftsim_core::protocol::Protocol;
use ftsim_core::world::World;
use ftsim_drive::check::check;
use ftsim_drive::checked::CheckedRun;
use ftsim_drive::seq::Faults;

use super::symmetry::combine;
use super::{order_mask, Edge, Scratch, Space, Symmetry, INTERLEAVE_THREADS};

/// A state of the interleaving mode.
#[derive(Clone)]
pub(super) struct Inter {
    s: CheckedRun,
    started: u8,
}

pub(super) const START: u32 = 1 << 31;

pub(super) fn label_start(t: Tid, op: usize) -> u32 {
    START | (t as u32) << 16 | op as u32
}

pub(super) fn label_step(t: Tid) -> u32 {
    t as u32
}

pub(super) struct InterSpace {
    pub(super) world: World,
    pub(super) proto: Protocol,
    pub(super) alphabet: Vec<Op>,
    pub(super) sym: Symmetry,
    pub(super) depth: u32,
}

impl InterSpace {
    fn step(&self, s: &Inter, t: Tid, start: Option<usize>) -> (Inter, Vec<Violation>) {
        let mut c = s.clone();
        c.s.findings.clear();
        if let Some(i) = start {
            c.s.push(t, self.alphabet[i].clone(), Faults::NONE);
            c.started += 1;
        }
        CheckedRun::step(&mut c.s, t);
        for lane in &mut c.s.lanes {
            lane.done.clear();
        }
        let v = std::mem::take(&mut c.s.findings).into_vec();
        (c, v)
    }
}

impl Space for InterSpace {
    type State = Inter;

    fn root(&self) -> Inter {
        // The checked run without its judges: the oracle's abstract picture depends on the path,
        // and is not part of the key, so the explorer judges the core's properties only
        // (availability is the oracle's, judged by the sweep and the proptest state machine),
        // and it checks them once per new state ([`Space::check`]), not on every edge.
        let mut s = CheckedRun::new(&self.world, self.proto, INTERLEAVE_THREADS);
        s.check_at_quiescence = false;
        s.oracle = None;
        Inter { s, started: 0 }
    }

    fn key(&self, st: &Inter, sc: &mut Scratch) -> u128 {
        // The kernel and its threads through the one walk: mid-operation, the fingerprint
        // reads the change counter (which in-flight frames compare after an unlocked callback)
        // and the records touched but not yet written back. Beside them, the explorer's own
        // bookkeeping: the lockdep order, the operations started and the stuck lanes.
        let stuck =
            st.s.lanes
                .iter()
                .enumerate()
                .fold(0u64, |m, (i, l)| m | (l.stuck as u64) << i);
        combine(
            self.sym.key(&st.s.k, &st.s.threads, sc),
            &[order_mask(&st.s.order), st.started as u64 + 1, stuck],
        )
    }

    fn expand(&self, st: &Inter, sc: &mut Scratch, emit: &mut dyn FnMut(Edge<'_, Inter>)) {
        let n = st.s.lanes.len() as Tid;
        for t in 0..n {
            if st.s.threads.busy(t) && st.s.can_step(t) {
                let (c, violations) = self.step(st, t, None);
                let key = self.key(&c, sc);
                emit(Edge {
                    label: label_step(t),
                    key,
                    next: &c,
                    terminal: false,
                    violations,
                });
            }
        }
        if (st.started as u32) < self.depth {
            let idle = (0..n).find(|&t| !st.s.threads.busy(t) && !st.s.lanes[t as usize].stuck);
            if let Some(t) = idle {
                for i in 0..self.alphabet.len() {
                    let (c, violations) = self.step(st, t, Some(i));
                    let key = self.key(&c, sc);
                    emit(Edge {
                        label: label_start(t, i),
                        key,
                        next: &c,
                        terminal: false,
                        violations,
                    });
                }
            }
        }
    }

    fn replay(&self, st: &Inter, label: u32, _sc: &mut Scratch) -> Inter {
        let t = ((label & !START) >> 16) as Tid;
        if label & START != 0 {
            self.step(st, t, Some((label & 0xffff) as usize)).0
        } else {
            self.step(st, label as Tid, None).0
        }
    }

    fn check(&self, st: &Inter) -> Vec<Violation> {
        let s = &st.s;
        let mut v = Vec::new();
        if s.threads.quiescent() {
            v = check(&s.k);
        }
        let n = s.lanes.len() as Tid;
        let waiting = (0..n).any(|t| s.threads.busy(t) && !s.lanes[t as usize].stuck);
        let can = (0..n).any(|t| s.threads.busy(t) && s.can_step(t));
        if waiting && !can {
            let mut c = s.clone();
            if let Some(d) = c.detect_deadlock() {
                v.push(d);
            }
        }
        v
    }
}
