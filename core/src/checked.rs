//! The checked concurrent run: the executor ([`Sched`]) plus what judges it — the property check
//! at every quiescent point and the reference oracle ([`Model`]) on each operation while no two
//! have overlapped. Script replay and the simulator step through it; the explorer steps the bare
//! executor (it judges the core's properties on its own edges, and the oracle's picture depends on
//! the path, not on the state it keys).
//!
//! Findings go to the executor's one set ([`Sched::findings`], deduplicated by (property,
//! function)) in the order they were raised within a step: the step's own (lock coverage,
//! lockdep, livelock), then the oracle's verdict on an operation that finished, then the check of
//! the quiescent state.

use crate::check::check;
use crate::decide::Decider;
use crate::ids::Tid;
use crate::oracle::Model;
use crate::protocol::Protocol;
use crate::sched::{Completion, Sched, StepOutcome};
use crate::step::{Outcome, Status};
use crate::world::World;
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
    pub oracle: Option<Model>,
}

impl CheckedRun {
    pub fn new(world: &World, proto: Protocol, threads: usize) -> CheckedRun {
        CheckedRun {
            exec: Sched::new(world, proto, threads),
            check_at_quiescence: true,
            oracle: Some(Model::new(world, &proto)),
        }
    }

    /// One step of thread `t` ([`Sched::step`]), then the oracle's verdict if an operation
    /// finished and the property check if the state is quiescent.
    pub fn step(&mut self, t: Tid) -> StepOutcome {
        let e = &self.exec;
        if e.k.status(t) == Status::Idle
            && (0..e.lanes.len()).any(|u| u != t as usize && e.k.busy(u as Tid))
        {
            self.oracle = None;
        }
        let out = self.exec.step(t);
        if let StepOutcome::Finished(c) = &out {
            self.judge(c);
        }
        if self.check_at_quiescence && self.exec.k.quiescent() {
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
        let started = self.exec.k.status(t) == Status::Idle;
        let out = self.step(t);
        Round::Stepped { t, started, out }
    }

    /// The oracle's verdict on an operation that ran alone.
    fn judge(&mut self, c: &Completion) {
        let Some(model) = self.oracle.as_mut() else {
            return;
        };
        let calls = crate::observe::calls(&self.exec.k);
        let out = Outcome {
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
