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
//! The explorer steps the bare executors (it judges the core's properties on its own edges, and
//! the oracle's picture depends on the path, not on the state it keys); the `ops` fuzz target
//! has a faster equivalent of `CheckedSeq` that skips the checks of an unchanged state
//! (`sim/src/harness`, checked against script replay by the corpus test).
//!
//! Findings of a concurrent run go to the executor's one set ([`Sched::findings`], deduplicated
//! by (property, function)) in the order they were raised within a step: the step's own (lock
//! coverage, lockdep, livelock), then the oracle's verdict on an operation that finished, then the
//! check of the quiescent state.

use crate::check::check;
use crate::decide::Decider;
use crate::oracle::Reference;
use crate::sched::{Completion, Sched, StepOutcome};
use crate::seq::Sequential;
use ftsim_core::errno::Errno;
use ftsim_core::ids::Tid;
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

    /// Runs `op` with `faults` on the core (`Sequential::apply_with`), then lets the oracle judge
    /// the outcome and the call of every function.
    pub fn step(&mut self, op: &Op, faults: Faults) -> Stepped {
        let out = self.seq.apply_with(op, faults);
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
