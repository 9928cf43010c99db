//! The checked runs: an executor plus what judges it, one type per executor.
//!
//! - [`CheckedSeq`]: the sequential driver (`Sequential::apply_with`: the property check and the
//!   failure footprint after every operation, lockdep inside it) and the reference oracle
//!   following it. Sequential script replay, the proptest state machine and reproducer replay
//!   (`tests/tests/support`), and the linearizer's sequential orders step through it.
//! - [`CheckedRun`]: the concurrent executor ([`Sched`]) plus the property check at every
//!   quiescent point and the reference oracle ([`Reference`]) on each operation while no two have
//!   overlapped. Concurrent script replay (hence the `schedule` fuzz target) and the simulator
//!   step through it, one [`CheckedRun::round`] at a time.
//!
//! [`judge_seq`] is the judging of one sequential operation after its step (the failure footprint,
//! then the property check of the state reached). `CheckedSeq` judges through it, and so does the
//! explorer's sequential space (`sim/src/explore/seq.rs`), with the footprint of the parent taken
//! once per expanded state and the property check left to the search, which checks each
//! distinct state once (the check depends on the state alone, and most edges lead to a state
//! already seen). The explorer runs no oracle: the oracle's picture depends on the path, not on
//! the state a search keys. The interleaving space steps the bare concurrent executor for the
//! same reason and checks its quiescent states on its own edges. The `ops` fuzz target has a
//! faster equivalent of `CheckedSeq` that skips the checks of an unchanged state
//! (`sim/src/harness`, checked against script replay by the corpus test).
//!
//! Findings of a concurrent run go to the executor's one set ([`Sched::findings`], deduplicated
//! by (property, function)) in the order they were raised within a step: the step's own (lock
//! coverage, lockdep, livelock), then the oracle's verdict on an operation that finished, then the
//! check of the quiescent state.

use crate::check::{check, footprint, footprint_into, Footprint};
use crate::decide::Decider;
use crate::oracle::Reference;
use crate::sched::{Completion, Sched, StepOutcome};
use crate::seq::Sequential;
use ftsim_core::errno::Errno;
use ftsim_core::ids::Tid;
use ftsim_core::kernel::Kernel;
use ftsim_core::op::Op;
use ftsim_core::property::Violation;
use ftsim_core::protocol::Protocol;
use ftsim_core::step::{Faults, OpResult, Status};
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
/// `check_state`, the property check of `k`. [`CheckedSeq::step`] and the explorer's sequential
/// space judge through it (see the module docs).
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
        // Equal footprints compare to nothing; the comparison names what changed.
        if before != after {
            out.violations
                .extend(before.compare(after, &op.to_string()));
        }
    }
    if check_state {
        out.violations.extend(check(k));
    }
}

/// The sequential driver (the system under test) and the reference oracle that follows it.
#[derive(Clone, Debug)]
pub struct CheckedSeq {
    pub seq: Sequential,
    pub model: Reference,
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
        CheckedSeq {
            seq: Sequential::new(world, proto),
            model: Reference::new(world, &proto),
        }
    }

    /// Runs `op` with `faults` on the core and judges it ([`judge_seq`]: the failure footprint
    /// when `check_atomicity` is set, the property check), then lets the oracle judge the outcome
    /// and the call of every function.
    pub fn step(&mut self, op: &Op, faults: Faults) -> Stepped {
        let s = &mut self.seq;
        let before = (s.check_atomicity && !s.stuck).then(|| footprint(&s.k));
        let mut out = s.run(op, faults);
        let mut after = Footprint::default();
        judge_seq(&mut out, op, before.as_ref(), &s.k, &mut after, true);
        let calls = crate::observe::calls(&self.seq.k);
        let oracle = self.model.step(op, &out, &calls);
        Stepped {
            result: out.result,
            core: out.violations,
            oracle,
            stuck: out.stuck,
        }
    }
}
