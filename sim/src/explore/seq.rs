//! The sequential space: a state is the [`Sequential`] driver at quiescence plus its lockdep
//! order graph; a transition runs one operation of the alphabet (with at most one fault).

use ftsim_core::kernel::Kernel;
use ftsim_core::op::Op;
use ftsim_core::property::Violation;
use ftsim_core::protocol::Protocol;
use ftsim_core::world::World;
use ftsim_drive::check::{check, footprint_into};
use ftsim_drive::checked::judge_seq;
use ftsim_drive::seq::{Faults, Sequential};

use super::symmetry::combine;
use super::{alphabet, Edge, ExploreConfig, Scratch, Space, Symmetry, FAULT_INDEX_MAX};

/// The sequential space (see the module docs of [`super`]); public so that a benchmark can
/// drive the same transitions from another checker.
pub struct SeqSpace {
    pub(super) world: World,
    pub(super) proto: Protocol,
    pub(super) alphabet: Vec<Op>,
    pub(super) sym: Symmetry,
    /// Run the transitions predicted to be self-loops anyway and check the prediction.
    pub(super) verify_skips: bool,
    pub(super) faults: bool,
}

/// An operation the owner refuses before any kernel code runs, with nothing changed: a
/// transition back to the same state that raises nothing (SPEC §7 and the owner-level table of
/// `core/src/op.rs`). Only judged at quiescence (sequential mode), where no lock is held, so the
/// owner's own mutex adds no lock-order edge. `verify_skips` (the tests) checks every prediction.
pub(super) fn self_loop(k: &Kernel, op: &Op) -> bool {
    match op {
        Op::KlpDisable(f) => k.fstate(*f).klp_stack == 0,
        Op::BpfUnlink(kind, f) => !k.tr(*f).links.iter().any(|(x, _)| x == kind),
        Op::KprobeDisarm(f) => k.fstate(*f).kprobes == 0,
        Op::TracerRegister { tracer, .. } => k.tracers[tracer.0 as usize].registered,
        Op::TracerUnregister(t) => !k.tracers[t.0 as usize].registered,
        Op::DirectRegister(f) => k.fstate(*f).direct_user.is_some(),
        Op::DirectModify(f) | Op::DirectUnregister(f) => k.fstate(*f).direct_user.is_none(),
        Op::ModuleLoad(m) => {
            let st = k.modules[m.0 as usize];
            st.loaded || st.busy
        }
        Op::ModuleUnload(m) => {
            let st = k.modules[m.0 as usize];
            st.busy || !st.loaded
        }
        _ => false,
    }
}

/// A state of the sequential mode: the driver, with its key and lock-order mask cached.
#[derive(Clone)]
pub struct SeqState {
    s: Sequential,
    key: u128,
    mask: u64,
}

/// A single fault: the `idx`-th allocation (kind 0), image build (1) or trylock (2) fails.
pub(super) fn fault(kind: u32, idx: u32) -> Faults {
    let mut f = Faults::NONE;
    match kind {
        0 => f.allocs = 1 << idx,
        1 => f.builds = 1 << idx,
        _ => f.trylocks = 1 << idx,
    }
    f
}

/// The label of a transition: the operation's index, and its fault (kind + 1, index).
pub(super) fn seq_label(op: usize, f: Faults) -> u32 {
    let (kind, bits) = if f.allocs != 0 {
        (1, f.allocs)
    } else if f.builds != 0 {
        (2, f.builds)
    } else if f.trylocks != 0 {
        (3, f.trylocks)
    } else {
        (0, 0)
    };
    op as u32 | kind << 16 | bits.trailing_zeros().min(31) << 20
}

pub(super) fn seq_label_parts(l: u32) -> (usize, Faults) {
    let op = (l & 0xffff) as usize;
    let idx = (l >> 20) & 0x1f;
    let f = match (l >> 16) & 0xf {
        1 => fault(0, idx),
        2 => fault(1, idx),
        3 => fault(2, idx),
        _ => Faults::NONE,
    };
    (op, f)
}

impl SeqState {
    /// The state's deduplication key (the symmetric key when symmetry is on).
    pub fn key(&self) -> u128 {
        self.key
    }
}

impl SeqSpace {
    /// The sequential space `cfg` describes (its `faults` and `verify_skips` included).
    pub fn new(cfg: &ExploreConfig) -> SeqSpace {
        let proto = cfg.target.proto;
        SeqSpace {
            world: cfg.world.clone(),
            proto,
            alphabet: alphabet(&cfg.world, &proto),
            sym: Symmetry::new(&cfg.world, proto, cfg.symmetry),
            verify_skips: cfg.verify_skips,
            faults: cfg.faults,
        }
    }

    /// The indices of the operations a fault-free transition from `st` runs, in alphabet
    /// order: none from a stuck state, and none predicted to be a self-loop (see
    /// [`self_loop`]); [`Space::expand`] emits exactly these (and, with faults, more).
    pub fn enabled<'a>(&'a self, st: &'a SeqState) -> impl Iterator<Item = usize> + 'a {
        let k = &st.s.k;
        (0..self.alphabet.len()).filter(move |&i| !st.s.stuck && !self_loop(k, &self.alphabet[i]))
    }

    /// The fault-free transition that runs operation `i` from `st`: the state it leads to.
    pub fn step(&self, st: &SeqState, i: usize, sc: &mut Scratch) -> SeqState {
        sc.fp_parent_valid = false;
        let mut next = st.clone();
        self.transition(st, i, Faults::NONE, sc, &mut next, false)
            .expect("[explore internal bug] a fault-free transition emits its edge");
        next
    }

    /// The key of `s` with lock-order mask `mask`; with `parent`, of a successor of it, from
    /// the parent's parts kept in `sc` ([`Symmetry::key_with`]).
    fn key_of(&self, parent: Option<&Kernel>, s: &Sequential, mask: u64, sc: &mut Scratch) -> u128 {
        let key = self.sym.key_with(parent, &s.k, s.threads(), sc);
        combine(key, &[mask, s.stuck as u64])
    }

    /// Runs operation `i` with `faults` from `st` in `c`, which holds a copy of `st` (see
    /// [`copy_state`]), and returns the transition's violations and whether it is terminal. With
    /// a fault: `None` when the operation never reached the faulted decision (`c` is then left
    /// changed). `after`: the key from the parent's parts kept in `sc` (one expansion's
    /// successors; see [`Symmetry::key_with`]), checked against the key from scratch in debug
    /// builds (the tests).
    fn transition(
        &self,
        st: &SeqState,
        i: usize,
        faults: Faults,
        sc: &mut Scratch,
        c: &mut SeqState,
        after: bool,
    ) -> Option<(Vec<Violation>, bool)> {
        let s = &st.s;
        let op = &self.alphabet[i];
        let mut out = c.s.run(op, faults);
        if !faults.is_none() {
            let hit = if faults.trylocks != 0 {
                out.contended
            } else {
                out.faulted
            };
            if !hit {
                return None;
            }
        }
        let mask = c.s.order.mask();
        // A failed operation that left the kernel as it was (a refusal) leads back to this
        // state, and has an unchanged atomicity footprint; otherwise it is judged as every
        // checked sequential run judges it (`judge_seq`), against the parent's footprint, taken
        // once per expansion (the successor's goes to a reused buffer). The property check of
        // the state reached is the search's, once per distinct state (`Space::check`).
        // `c` was a copy of `st` before the run (`copy_state`, or a clone), so the kernels are
        // compared only where the run wrote (`Kernel::eq_parent`). Any operation that leaves
        // the kernel, the thread and the lock order as they were, failed or not (a tracer
        // removing an ip its filter does not hold succeeds), keeps the parent's key: the key
        // is a function of those alone (checked against a key from scratch in debug builds).
        let same = !out.stuck && c.s.k.eq_parent(&s.k) && c.s.th == s.th;
        let before = if !out.stuck && out.result.is_err() && !same {
            if !sc.fp_parent_valid {
                footprint_into(&s.k, &mut sc.fp_parent);
                sc.fp_parent_valid = true;
            }
            Some(&sc.fp_parent)
        } else {
            None
        };
        judge_seq(&mut out, op, before, &c.s.k, &mut sc.fp_child, false);
        let violations = out.violations;
        c.key = if same && mask == st.mask {
            debug_assert_eq!(
                st.key,
                self.key_of(None, &c.s, mask, &mut Scratch::default()),
                "[explore internal bug] `{op}` left the state as it was, with another key"
            );
            st.key
        } else if after {
            let key = self.key_of(Some(&s.k), &c.s, mask, sc);
            debug_assert_eq!(
                key,
                self.key_of(None, &c.s, mask, &mut Scratch::default()),
                "[explore internal bug] `{op}`: the key from the parent's parts went stale"
            );
            key
        } else {
            self.key_of(None, &c.s, mask, sc)
        };
        c.mask = mask;
        Some((violations, out.stuck))
    }

    /// Runs operation `i` with `faults` from `st` in the buffer `c` and emits the edge; false
    /// (and nothing emitted) as [`SeqSpace::transition`] says.
    fn emit_transition(
        &self,
        st: &SeqState,
        i: usize,
        faults: Faults,
        sc: &mut Scratch,
        c: &mut SeqState,
        emit: &mut dyn FnMut(Edge<'_, SeqState>),
    ) -> bool {
        copy_state(c, st);
        let Some((violations, terminal)) = self.transition(st, i, faults, sc, c, true) else {
            return false;
        };
        emit(Edge {
            label: seq_label(i, faults),
            key: c.key,
            terminal,
            next: c,
            violations,
        });
        true
    }
}

/// `dst = src.clone()`, reusing `dst`'s allocations (a transition is run in one buffer per
/// expanded state, which holds a copy of `src` with one transition's writes): the kernel by
/// [`Kernel::restore_from`] (only what the transition wrote), the thread by its own
/// `copy_from`. Every field is named, so a new field of the state cannot be forgotten.
fn copy_state(dst: &mut SeqState, src: &SeqState) {
    let SeqState { s, key, mask } = src;
    let Sequential {
        k,
        th,
        order,
        check_atomicity,
        stuck,
    } = s;
    dst.s.k.restore_from(k);
    dst.s.th.copy_from(th);
    dst.s.order.clone_from(order);
    dst.s.check_atomicity = *check_atomicity;
    dst.s.stuck = *stuck;
    dst.key = *key;
    dst.mask = *mask;
}

impl Space for SeqSpace {
    type State = SeqState;

    fn root(&self) -> SeqState {
        let mut s = Sequential::new(&self.world, self.proto);
        s.check_atomicity = false;
        let mask = s.order.mask();
        let key = self.key_of(None, &s, mask, &mut Scratch::default());
        SeqState { s, key, mask }
    }

    fn key(&self, s: &SeqState, _sc: &mut Scratch) -> u128 {
        s.key
    }

    fn expand(&self, st: &SeqState, sc: &mut Scratch, emit: &mut dyn FnMut(Edge<'_, SeqState>)) {
        let s = &st.s;
        if s.stuck {
            return;
        }
        // Every successor is built in this one buffer.
        let mut c = st.clone();
        sc.fp_parent_valid = false;
        sc.own_parent_valid = false;
        for (i, op) in self.alphabet.iter().enumerate() {
            if self_loop(&s.k, op) {
                sc.skipped += 1;
                if self.verify_skips {
                    let mut c = s.clone();
                    let out = c.run(op, Faults::NONE);
                    let mask = c.order.mask();
                    assert!(
                        out.result.is_err()
                            && out.violations.is_empty()
                            && !out.stuck
                            && mask == st.mask
                            && self.key_of(None, &c, mask, sc) == st.key,
                        "[explore internal bug] `{op}` was predicted to be refused without effect, \
                         but it returned {:?}, raised {:?} or changed the state",
                        out.result,
                        out.violations
                    );
                }
                continue;
            }
            self.emit_transition(st, i, Faults::NONE, sc, &mut c, emit);
            if !self.faults {
                continue;
            }
            // Each single fault, in decision order, while the operation reaches that decision.
            for kind in 0..3 {
                for idx in 0..FAULT_INDEX_MAX {
                    let f = fault(kind, idx);
                    if !self.emit_transition(st, i, f, sc, &mut c, emit) {
                        break;
                    }
                }
            }
        }
    }

    fn replay(&self, st: &SeqState, label: u32, sc: &mut Scratch) -> SeqState {
        let (i, faults) = seq_label_parts(label);
        sc.fp_parent_valid = false;
        let mut next = st.clone();
        self.transition(st, i, faults, sc, &mut next, false)
            .expect("[explore internal bug] a replayed transition emits no edge");
        next
    }

    fn check(&self, s: &SeqState) -> Vec<Violation> {
        if s.s.stuck {
            Vec::new()
        } else {
            check(&s.s.k)
        }
    }
}
