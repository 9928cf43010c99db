//! The checked runs: an executor plus what judges it, one type per executor.
//!
//! - [`CheckedSeq`]: the sequential driver (what `Sequential::apply_with` judges: the property
//!   check and the failure footprint after every operation, lockdep inside it) and the reference
//!   oracle following it. An operation that leaves unchanged what they read (its [`Snapshot`],
//!   a sink of the state walk) has the findings of the state before it without judging it again.
//!   Sequential script replay, the proptest state machine and reproducer replay
//!   (`tests/tests/support`), the linearizer's sequential orders and the `ops` fuzz target
//!   (`crate::fuzz`, checked against script replay by the corpus test) step through it.
//! - [`CheckedRun`]: the concurrent executor ([`Sched`]) plus the property check at every
//!   quiescent point and the reference oracle ([`Reference`]) on each operation while no two have
//!   overlapped. Concurrent script replay (hence the `schedule` fuzz target) and the simulator
//!   step through it, one [`CheckedRun::round`] at a time.
//!
//! [`judge_seq`] is the judging of one sequential operation after its step (the failure footprint,
//! then the property check of the state reached; [`footprint_verdict`] its first part).
//! `CheckedSeq` judges through its parts, with the footprint its snapshot takes in the walk
//! that compares the state, and the explorer's sequential space (`sim/src/explore/seq.rs`)
//! through it, with the footprint of the parent taken
//! once per expanded state and the property check left to the search, which checks each
//! distinct state once (the check depends on the state alone, and most edges lead to a state
//! already seen). The explorer runs no oracle: the oracle's picture depends on the path, not on
//! the state a search keys. The interleaving space steps `CheckedRun` with its judges off for the
//! same reason and checks its new states itself.
//!
//! Findings of a concurrent run go to the executor's one set ([`Sched::findings`], deduplicated
//! by (property, function)) in the order they were raised within a step: the step's own (lock
//! coverage, lockdep, livelock), then the oracle's verdict on an operation that finished, then the
//! check of the quiescent state.

use crate::check::{check, footprint_into, Footprint};
use crate::decide::Decider;
use crate::observe::Call;
use crate::oracle::Reference;
use crate::sched::{Completion, Sched, StepOutcome};
use crate::seq::Sequential;
use ftsim_core::errno::Errno;
use ftsim_core::footprint::FootprintSink;
use ftsim_core::ids::Tid;
use ftsim_core::kernel::Kernel;
use ftsim_core::op::Op;
use ftsim_core::property::Violation;
use ftsim_core::protocol::Protocol;
use ftsim_core::step::{Faults, OpResult, Status};
use ftsim_core::walk::{
    fields, walk_kernel, Buf, Compare, Exact, Field, Fields, Identity, Scope, Tee, COUNTERS,
    EXECUTOR,
};
use ftsim_core::world::World;
use std::ops::{Deref, DerefMut};

/// The executor with its judges. Everything of the executor is reachable through it (`Deref`);
/// [`CheckedRun::step`] is the executor's step followed by the judging.
#[derive(Clone, Debug)]
pub struct CheckedRun {
    pub exec: Sched,
    /// Check the properties whenever no operation is in flight.
    pub check_at_quiescence: bool,
    /// The reference oracle, judging each operation while no two have overlapped (it judges
    /// sequential runs); the first overlap retires it for the rest of the run.
    pub oracle: Option<Reference>,
}

impl CheckedRun {
    pub fn new(world: &World, proto: Protocol, threads: usize) -> CheckedRun {
        CheckedRun {
            exec: Sched::new(world, proto, threads),
            check_at_quiescence: true,
            oracle: Some(Reference::new(world, &proto)),
        }
    }

    /// One step of thread `t` ([`Sched::step`]), then the oracle's verdict if an operation
    /// finished and the property check if the state is quiescent.
    pub fn step(&mut self, t: Tid) -> StepOutcome {
        let e = &self.exec;
        if e.threads.status(t) == Status::Idle
            && (0..e.lanes.len()).any(|u| u != t as usize && e.threads.busy(u as Tid))
        {
            self.oracle = None;
        }
        let out = self.exec.step(t);
        if let StepOutcome::Finished(c) = &out {
            self.judge(c);
        }
        if self.check_at_quiescence && self.exec.threads.quiescent() {
            for v in check(&self.exec.k) {
                self.exec.record(v);
            }
        }
        out
    }

    /// One scheduling round: the thread `d` picks steps ([`CheckedRun::step`]); when no thread
    /// can step but some are unfinished, the wait-for cycle is looked for (a `deadlock` finding if
    /// there is one, `Sched::detect_deadlock`) and the run is over.
    pub fn round(&mut self, d: &mut impl Decider) -> Round {
        let runnable = self.exec.runnable();
        if runnable.is_empty() {
            if self.exec.unfinished() {
                self.exec.detect_deadlock();
                return Round::Stalled;
            }
            return Round::Idle;
        }
        let e = &self.exec;
        let t = d.pick(&runnable, &|w| (w as usize) < e.lanes.len() && e.ready(w));
        let started = self.exec.threads.status(t) == Status::Idle;
        let out = self.step(t);
        Round::Stepped { t, started, out }
    }

    /// The oracle's verdict on an operation that ran alone.
    fn judge(&mut self, c: &Completion) {
        let Some(model) = self.oracle.as_mut() else {
            return;
        };
        let calls = crate::observe::calls(&self.exec.k);
        let out = OpResult {
            result: c.result,
            violations: Vec::new(),
            contended: c.contended,
            faulted: c.faulted,
            stuck: false,
        };
        for v in model.step(&c.op, &out, &calls) {
            self.exec.record(v);
        }
    }
}

/// What one scheduling round did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Round {
    /// Thread `t` took a step; `started`: the step started its next operation.
    Stepped {
        t: Tid,
        started: bool,
        out: StepOutcome,
    },
    /// No thread could step, but some had work: they wait forever (a deadlock, if the wait-for
    /// graph has a cycle). The run is over.
    Stalled,
    /// No thread could step and none had work.
    Idle,
}

impl Deref for CheckedRun {
    type Target = Sched;
    fn deref(&self) -> &Sched {
        &self.exec
    }
}

impl DerefMut for CheckedRun {
    fn deref_mut(&mut self) -> &mut Sched {
        &mut self.exec
    }
}

/// Judges one operation of the sequential driver after its step ([`Sequential::run`], whose
/// outcome `out` carries the findings raised inside the step), as `Sequential::apply_with` does:
/// nothing more after a step that left the driver stuck; for an operation that failed, the
/// failure footprint (atomicity, SPEC §3.6) of the state it ran from, `before` (`None`: not
/// judged), against the state `k` it left (taken into the buffer `after`); then, with
/// `check_state`, the property check of `k`. The explorer's sequential space judges through it;
/// [`CheckedSeq::step`] through its two parts, [`footprint_verdict`] and the check, with the
/// footprint its snapshot takes (see the module docs).
#[inline]
pub fn judge_seq(
    out: &mut OpResult,
    op: &Op,
    before: Option<&Footprint>,
    k: &Kernel,
    after: &mut Footprint,
    check_state: bool,
) {
    if out.stuck {
        return;
    }
    if let (Some(before), Err(_)) = (before, out.result) {
        footprint_into(k, after);
        footprint_verdict(out, op, before, after);
    }
    if check_state {
        out.violations.extend(check(k));
    }
}

/// The sequential driver (the system under test) and the reference oracle that follows it.
/// Each step compares with the state the last one left ([`Snapshot`]); the driver is reached
/// through [`CheckedSeq::seq`] (read) and [`CheckedSeq::seq_mut`] (a change made there is
/// taken into the snapshot before the next step), so the snapshot cannot go stale.
#[derive(Clone, Debug)]
pub struct CheckedSeq {
    seq: Sequential,
    /// The driver was handed out mutably since the snapshot was taken.
    stale: bool,
    pub model: Reference,
    /// Let the oracle judge every operation (else the core's own checks only); turn it off
    /// before the first step, or through [`CheckedSeq::restart`].
    pub consult_oracle: bool,
    last: Snapshot,
}

/// What one operation of a [`CheckedSeq`] produced.
#[derive(Clone, Debug)]
pub struct Stepped {
    pub result: Result<(), Errno>,
    /// Found by the core's checks (SPEC §3 over the state, atomicity footprint, locks).
    pub core: Vec<Violation>,
    /// Found by comparing with the oracle.
    pub oracle: Vec<Violation>,
    /// The core is stuck (lock recursion): nothing further can run.
    pub stuck: bool,
}

impl Stepped {
    /// The core's findings, then the oracle's.
    pub fn all(&self) -> impl Iterator<Item = &Violation> {
        self.core.iter().chain(&self.oracle)
    }
}

impl CheckedSeq {
    pub fn new(world: &World, proto: Protocol) -> CheckedSeq {
        let seq = Sequential::new(world, proto);
        let last = Snapshot::of(&seq.k);
        CheckedSeq {
            seq,
            stale: false,
            model: Reference::new(world, &proto),
            consult_oracle: true,
            last,
        }
    }

    /// Starts over from a fresh kernel of `world` under `proto`, as [`CheckedSeq::new`] does,
    /// in place: the snapshot keeps its buffers (a harness running many short inputs allocates
    /// none of them once warm). `oracle` sets [`CheckedSeq::consult_oracle`]; without it the
    /// oracle is not set up again (turning it on later in the run would consult a stale one).
    pub fn restart(&mut self, world: &World, proto: Protocol, oracle: bool) {
        self.seq = Sequential::new(world, proto);
        self.consult_oracle = oracle;
        if oracle {
            self.model = Reference::new(world, &proto);
        }
        self.resnap();
    }

    /// The sequential driver.
    pub fn seq(&self) -> &Sequential {
        &self.seq
    }

    /// The sequential driver, to change its state outside a step (the next step takes the
    /// change into the snapshot first).
    pub fn seq_mut(&mut self) -> &mut Sequential {
        self.stale = true;
        &mut self.seq
    }

    /// Takes the snapshot of the state as it is now (nothing judged in it yet).
    fn resnap(&mut self) {
        self.last.refresh(&self.seq.k);
        self.last.found = None;
        self.last.calls.clear();
        self.stale = false;
    }

    /// Runs `op` with `faults` on the core, checks the properties and the failure footprint (as
    /// `Sequential::apply_with` does), then lets the oracle judge the outcome and the call of
    /// every function.
    pub fn step(&mut self, op: &Op, faults: Faults) -> Stepped {
        self.step_keeping(op, faults, &|_| true)
    }

    /// [`CheckedSeq::step`], keeping only the findings `keep` accepts (a harness's filter,
    /// applied before a finding is copied). The result is `Sequential::apply_with`'s, computed
    /// faster: an operation that leaves unchanged what the check, the footprint and the calls read
    /// ([`Checked`]) has the findings of the state before it, the check's found again without
    /// running it, no footprint to compare, and the same calls for the oracle.
    pub fn step_keeping(
        &mut self,
        op: &Op,
        faults: Faults,
        keep: &dyn Fn(&Violation) -> bool,
    ) -> Stepped {
        if self.stale {
            self.resnap();
        }
        let mut out = self.seq.run(op, faults);
        if !out.violations.is_empty() {
            out.violations.retain(|v| keep(v));
        }
        let changed = !out.stuck && self.last.judge(&self.seq, op, &mut out, keep);
        let oracle = if self.consult_oracle {
            if changed || self.last.calls.is_empty() {
                self.last.calls = crate::observe::calls(&self.seq.k);
            }
            let mut v = self.model.step(op, &out, &self.last.calls);
            if !v.is_empty() {
                v.retain(|v| keep(v));
            }
            v
        } else {
            Vec::new()
        };
        Stepped {
            result: out.result,
            core: out.violations,
            oracle,
            stuck: out.stuck,
        }
    }
}

/// The state a [`CheckedSeq`] last judged, as the words of the state walk over what the check,
/// the footprint and the calls read ([`Checked`]), with its footprint (both from one walk,
/// [`Tee`]), what the check found in it and the calls of every function; refreshed in place (no
/// allocation once warm) only when an operation changed it.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    words: Vec<u64>,
    foot: Footprint,
    /// The footprint before a failed operation (a buffer: swapped with `foot`).
    before: Footprint,
    /// What the check found in the state; `None` until it ran.
    found: Option<Vec<Violation>>,
    /// The calls of every function in the state; empty until the oracle asked.
    calls: Vec<Option<Call>>,
}

/// What the property check, the footprint and the calls read: every field but the protocol
/// (fixed for a run), the executor's (locks, threads) and the counters.
pub struct Checked;

impl Scope for Checked {
    const IGNORES: Fields = fields(&[Field::Proto]) | EXECUTOR | COUNTERS;
}

impl Snapshot {
    fn of(k: &Kernel) -> Snapshot {
        let mut s = Snapshot::default();
        s.refresh(k);
        s
    }

    /// Whether every field that the check, the footprint and the calls read is unchanged.
    fn same(&self, k: &Kernel) -> bool {
        let mut cmp = Compare::new(&self.words);
        walk_kernel(
            k,
            &Identity,
            &mut Buf::default(),
            &mut Exact::<Checked, _>::new(&mut cmp),
        );
        cmp.equal()
    }

    fn refresh(&mut self, k: &Kernel) {
        self.words.clear();
        walk_kernel(
            k,
            &Identity,
            &mut Buf::default(),
            &mut Tee(
                Exact::<Checked, _>::new(&mut self.words),
                FootprintSink::new(k, &mut self.foot),
            ),
        );
    }

    /// Judges the state `s` reached by `op` (not stuck): the footprint if it failed, then the
    /// property check, into `out`. Returns whether the state changed (it is the snapshot now).
    fn judge(
        &mut self,
        s: &Sequential,
        op: &Op,
        out: &mut OpResult,
        keep: &dyn Fn(&Violation) -> bool,
    ) -> bool {
        if let Some(found) = self.found.as_ref().filter(|_| self.same(&s.k)) {
            out.violations
                .extend(found.iter().filter(|v| keep(v)).cloned());
            return false;
        }
        let failed = out.result.is_err();
        if failed {
            std::mem::swap(&mut self.foot, &mut self.before);
        }
        self.refresh(&s.k);
        if failed && s.check_atomicity {
            let start = out.violations.len();
            footprint_verdict(out, op, &self.before, &self.foot);
            if out.violations.len() > start && !keep(&out.violations[start]) {
                out.violations.truncate(start);
            }
        }
        let found = check(&s.k);
        out.violations
            .extend(found.iter().filter(|v| keep(v)).cloned());
        self.found = Some(found);
        true
    }
}

/// The footprint a checked run's snapshot takes of `k` (beside its words, in one walk; for the
/// walk's coverage test).
pub fn snapshot_footprint(k: &Kernel) -> Footprint {
    Snapshot::of(k).foot
}

/// Whether `a` and `b` agree on what a checked run's snapshot compares (for the walk's coverage
/// test).
pub fn snapshot_same(a: &Kernel, b: &Kernel) -> bool {
    Snapshot::of(a).same(b)
}

/// The failure footprint's verdict on failed operation `op` (atomicity, SPEC §3.6): the state it
/// ran from, `before`, against the state it left, `after`, both taken already ([`judge_seq`]
/// takes `after`; a [`CheckedSeq`] has both from its snapshot's walks).
#[inline]
pub fn footprint_verdict(out: &mut OpResult, op: &Op, before: &Footprint, after: &Footprint) {
    // Equal footprints compare to nothing; the comparison names what changed.
    if before != after {
        out.violations
            .extend(before.compare(after, &op.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state changed outside a step (through `seq_mut`) is the one the next step is judged
    /// from: a refused operation after it raises exactly what the plain driver raises, and
    /// nothing about a change it did not make.
    #[test]
    fn a_change_through_seq_mut_is_taken_into_the_snapshot() {
        let world = World::new(2);
        let proto = Protocol::MERGED;
        let mut c = CheckedSeq::new(&world, proto);
        c.consult_oracle = false;
        let enable: Op = "klp-enable f1".parse().unwrap();
        let refused: Op = "klp-disable f0".parse().unwrap();
        assert!(c.step(&refused, Faults::NONE).result.is_err());
        let mut other = Sequential::new(&world, proto);
        assert!(other.apply(&enable).result.is_ok());
        c.seq_mut().k = other.k.clone();
        let out = c.step(&refused, Faults::NONE);
        let plain = other.apply(&refused);
        assert!(out.result.is_err() && plain.result.is_err());
        assert_eq!(out.core, plain.violations);
        assert!(out.core.is_empty(), "{:?}", out.core);
    }
}
