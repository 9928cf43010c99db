//! A deterministic concurrent executor: threads with queues of owner-level operations whose steps
//! interleave at the points the core yields. Locks have real mutex semantics (a blocked thread is
//! not runnable until its lock is free), deadlocks are found as wait-for cycles and lock order is
//! checked lockdep-style over the whole run. Which runnable thread steps next is the caller's
//! decision (the simulator's generator, fuzzer bytes, a recorded schedule, the explorer's
//! branching): the executor itself never chooses. It judges nothing beyond the findings raised
//! inside steps and by lockdep: the property check at quiescent points and the reference oracle
//! are the checked run's ([`crate::checked::CheckedRun`]).

use crate::decide::{Both, Decider, FaultPlan};
use crate::exec::{advance, Advance};
use crate::findings::Findings;
use crate::lockdep;
use ftsim_core::errno::Errno;
use ftsim_core::ids::Tid;
use ftsim_core::kernel::Kernel;
use ftsim_core::locks::LockOrder;
use ftsim_core::machine::Threads;
use ftsim_core::op::Op;
use ftsim_core::property::{Property, Violation};
use ftsim_core::protocol::Protocol;
use ftsim_core::step::Faults;
use ftsim_core::step::{Request, Status};
use ftsim_core::world::World;
use smallvec::SmallVec;
use std::collections::VecDeque;

/// Weak fairness for `msleep` (SPEC §5.3: the BPF callback's and proposed's cleanup's
/// `msleep(1)` after a failed trylock): a sleeping thread lets the others run first, but once
/// other threads have taken this many steps while it slept, it is *due* and runs next. One
/// millisecond is long beside a critical section (a few steps here), so the bound is a few
/// operations' worth of steps; a schedule that passes over a due sleeper (a recorded schedule may)
/// is unfair, and `livelock` is judged only on fair schedules: a retry bound hit because the
/// scheduler never let the sleeper run measures the scheduler, not the protocol.
pub const SLEEP_STEPS_MAX: u32 = 16;

/// Weak fairness for the threads that are not asleep: one that could step (ready) and is passed
/// over for this many steps of the others in a row has been starved by the scheduler (PCT's
/// strict priorities do it by design, a recorded schedule may too), and `livelock` is not judged
/// on that run. Nothing is forced: the scheduler keeps its freedom for the safety properties.
pub const FAIR_STEPS_MAX: u32 = 48;

/// Per-thread bookkeeping of the executor.
#[derive(Clone, Debug, Default)]
pub struct Lane {
    pub queue: VecDeque<(Op, Faults)>,
    /// The fault plan of the operation in flight.
    plan: FaultPlan,
    /// Finished operations with their results.
    pub done: Vec<(Op, Result<(), Errno>)>,
    /// Waiting forever (asked for a lock it holds, or part of a deadlock).
    pub stuck: bool,
    /// Steps other threads took while this one slept (`msleep`).
    slept: u32,
    /// Steps other threads took in a row while this one could step and was not asleep.
    passed: u32,
}

/// One finished operation, for callers that react to completions (the oracle, the simulator).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    pub tid: Tid,
    pub op: Op,
    pub result: Result<(), Errno>,
    pub contended: bool,
    pub faulted: bool,
}

/// What one scheduling step did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepOutcome {
    /// The thread advanced and is still in its operation.
    Progress,
    /// The thread finished an operation.
    Finished(Completion),
}

#[derive(Clone, Debug)]
pub struct Sched {
    pub k: Kernel,
    /// Thread `t` of each lane, beside the kernel.
    pub threads: Threads,
    pub lanes: Vec<Lane>,
    pub order: LockOrder,
    /// Findings so far, deduplicated by (property, function).
    pub findings: Findings,
    /// Scheduling steps taken.
    pub steps: u64,
    /// Some step passed over a due sleeper ([`SLEEP_STEPS_MAX`]), or a ready thread was passed
    /// over [`FAIR_STEPS_MAX`] steps in a row: from then on `livelock` is not judged.
    pub unfair: bool,
}

impl Sched {
    pub fn new(world: &World, proto: Protocol, threads: usize) -> Sched {
        Sched {
            k: Kernel::new(world, proto),
            threads: Threads::new(threads),
            lanes: vec![Lane::default(); threads],
            order: LockOrder::default(),
            findings: Findings::new(),
            steps: 0,
            unfair: false,
        }
    }

    /// The executor over a state `k` some other run left quiescent (a setup run sequentially),
    /// with the lock order recorded so far: the thread driver over real mutexes
    /// (`ftsim-tests`' `conc.rs`) continues a sequential setup so.
    pub fn resume(k: Kernel, order: LockOrder, threads: usize) -> Sched {
        assert!(
            k.locks.is_empty(),
            "[core internal bug] resuming from a state with locks held"
        );
        Sched {
            k,
            threads: Threads::new(threads),
            lanes: vec![Lane::default(); threads],
            order,
            findings: Findings::new(),
            steps: 0,
            unfair: false,
        }
    }

    /// Queues an operation on thread `t`.
    pub fn push(&mut self, t: Tid, op: Op, faults: Faults) {
        self.lanes[t as usize].queue.push_back((op, faults));
    }

    /// Whether thread `t` could take a step now, sleeping or not. A recorded schedule may step
    /// any ready thread; [`Sched::runnable`] is what a fair driver chooses from.
    pub fn ready(&self, t: Tid) -> bool {
        let lane = &self.lanes[t as usize];
        if lane.stuck {
            return false;
        }
        match self.threads.status(t) {
            Status::Idle => !lane.queue.is_empty(),
            Status::Wants(Request::Lock(l)) => self.k.lock_holder(l).is_none(),
            Status::Wants(_) => true,
            Status::Done(_) => unreachable!(),
        }
    }

    fn sleeping(&self, t: Tid) -> bool {
        self.threads.status(t) == Status::Wants(Request::Sleep)
    }

    /// Whether thread `t` can take a step now.
    pub fn can_step(&self, t: Tid) -> bool {
        self.runnable().contains(&t)
    }

    /// A sleeping thread that has let the others run for [`SLEEP_STEPS_MAX`] steps.
    fn due(&self, t: Tid) -> bool {
        self.sleeping(t) && self.lanes[t as usize].slept >= SLEEP_STEPS_MAX && self.ready(t)
    }

    /// Threads that can take a step now, in ascending order: the due sleepers if there are any
    /// (weak fairness, [`SLEEP_STEPS_MAX`]); else the threads that are not sleeping; else the
    /// sleepers (a sleeping thread lets the others run first). Among sleepers, the one asleep
    /// the longest wakes first (one `msleep` is as long as another).
    pub fn runnable(&self) -> SmallVec<[Tid; 8]> {
        let ready: SmallVec<[Tid; 8]> = (0..self.lanes.len() as Tid)
            .filter(|&t| self.ready(t))
            .collect();
        let longest = |v: SmallVec<[Tid; 8]>| -> SmallVec<[Tid; 8]> {
            let most = v.iter().map(|&t| self.lanes[t as usize].slept).max();
            v.into_iter()
                .filter(|&t| Some(self.lanes[t as usize].slept) == most)
                .collect()
        };
        if ready.iter().any(|&t| self.due(t)) {
            longest(ready.into_iter().filter(|&t| self.due(t)).collect())
        } else if ready.iter().any(|&t| !self.sleeping(t)) {
            ready.into_iter().filter(|&t| !self.sleeping(t)).collect()
        } else {
            // Only sleepers: time passes, and the one asleep the longest wakes first.
            longest(ready)
        }
    }

    /// Some thread has an operation in flight or queued.
    pub fn unfinished(&self) -> bool {
        (0..self.lanes.len()).any(|t| {
            self.threads.busy(t as Tid) || (!self.lanes[t].queue.is_empty() && !self.lanes[t].stuck)
        })
    }

    /// Records a finding, deduplicated by (property, function); `livelock` only while the
    /// schedule has been fair ([`SLEEP_STEPS_MAX`]).
    pub fn record(&mut self, v: Violation) {
        if v.property == Property::Livelock && self.unfair {
            return;
        }
        self.findings.insert(v);
    }

    /// Takes one step of thread `t` (which must be runnable): starts its next operation, or
    /// answers its pending request, then runs it to its next request.
    pub fn step(&mut self, t: Tid) -> StepOutcome {
        self.step_with(t, &mut ())
    }

    /// [`Sched::step`] where `d` decides too: a request fails if the operation's fault plan or
    /// `d` fails it (`decide::Both`). The thread driver over real mutexes passes the answer its
    /// real trylock got.
    pub fn step_with(&mut self, t: Tid, d: &mut impl Decider) -> StepOutcome {
        assert!(
            self.ready(t),
            "[core internal bug] stepping thread {t} that cannot step"
        );
        self.steps += 1;
        let ti = t as usize;
        if !self.due(t) && (0..self.lanes.len() as Tid).any(|u| self.due(u)) {
            self.unfair = true;
        }
        for u in 0..self.lanes.len() {
            if u == ti {
                continue;
            }
            if self.sleeping(u as Tid) {
                let l = &mut self.lanes[u];
                l.slept = l.slept.saturating_add(1);
            } else if self.ready(u as Tid) {
                let l = &mut self.lanes[u];
                l.passed = l.passed.saturating_add(1);
                if l.passed > FAIR_STEPS_MAX {
                    self.unfair = true;
                }
            } else {
                self.lanes[u].passed = 0;
            }
        }
        self.lanes[ti].slept = 0;
        self.lanes[ti].passed = 0;
        if self.threads.status(t) == Status::Idle {
            let (op, faults) = self.lanes[ti].queue.pop_front().unwrap();
            self.lanes[ti].plan = FaultPlan::new(faults);
            self.threads.start(&mut self.k, t, op);
        }
        let op = self.threads[ti].op.clone();
        let mut d = Both(&mut self.lanes[ti].plan, d);
        let next = advance(
            &mut self.k,
            &mut self.threads[ti],
            &mut self.order,
            t,
            &mut d,
        );
        for v in std::mem::take(&mut self.k.violations) {
            self.record(v);
        }
        match next {
            Advance::Done(result) => {
                let th = &self.threads[ti];
                let c = Completion {
                    tid: t,
                    op: op.unwrap(),
                    result,
                    contended: th.contended,
                    faulted: th.faulted,
                };
                self.lanes[ti].done.push((c.op.clone(), result));
                StepOutcome::Finished(c)
            }
            Advance::Recursion(v) => {
                self.record(v);
                self.lanes[ti].stuck = true;
                StepOutcome::Progress
            }
            Advance::Wants(_) => StepOutcome::Progress,
        }
    }

    /// When no thread can step but some are unfinished: the wait-for cycle, if there is one.
    /// Reports `deadlock` and marks the threads of the cycle stuck.
    pub fn detect_deadlock(&mut self) -> Option<Violation> {
        let waits = |t: Tid| match self.threads.status(t) {
            Status::Wants(Request::Lock(l)) => Some(l),
            _ => None,
        };
        let cycle = (0..self.lanes.len() as Tid)
            .filter_map(|start| lockdep::wait_cycle(&self.k, start, waits))
            .find(|c| c.len() > 1)?; // a cycle of one: recursion, reported already
        for &(x, _) in &cycle {
            self.lanes[x as usize].stuck = true;
            self.threads.mark_stuck(x);
        }
        let v = Violation::new(
            Property::Deadlock,
            None,
            lockdep::describe(&self.threads, &cycle),
        );
        self.record(v.clone());
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ftsim_core::ids::FnId;
    use ftsim_core::locks::Lock;

    fn op(s: &str) -> Op {
        s.parse().unwrap()
    }

    /// A sleeper is passed over while others can run, but only for [`SLEEP_STEPS_MAX`] of their
    /// steps; then it runs next. A schedule that passes over a due sleeper is unfair, and
    /// `livelock` is no longer judged on it.
    #[test]
    fn sleepers_are_due_after_a_bounded_number_of_steps() {
        let mut s = Sched::new(&World::new(1), Protocol::FIXES_2025, 2);
        for o in [
            "bpf-link fexit f0",
            "kprobe-arm f0",
            "tracer-register t0 filter={} notrace={}",
        ] {
            s.push(0, op(o), Faults::NONE);
            while s.threads.busy(0) || !s.lanes[0].queue.is_empty() {
                s.step(0);
            }
        }
        // The cleanup's DISABLE_PEER finds tr->mutex taken (forced) and sleeps (in the BPF
        // callback, direct_mutex held); t1 changes a tracer's filter meanwhile (no direct_mutex).
        let busy = Faults {
            trylocks: 1,
            ..Faults::NONE
        };
        s.push(0, op("kprobe-disarm f0"), busy);
        while !s.sleeping(0) {
            s.step(0);
        }
        for i in 0..SLEEP_STEPS_MAX {
            s.push(1, op("tracer-filter-add t0 f0"), Faults::NONE);
            s.push(1, op("tracer-filter-remove t0 f0"), Faults::NONE);
            assert_eq!(s.runnable().as_slice(), &[1], "step {i}: the sleeper waits");
            s.step(1);
        }
        assert_eq!(s.runnable().as_slice(), &[0], "the sleeper is due");
        assert!(!s.unfair);
        let mut unfair = s.clone();
        unfair.step(1);
        assert!(unfair.unfair, "passing over a due sleeper is unfair");
        unfair.record(Violation::new(Property::Livelock, None, "x"));
        assert!(unfair
            .findings
            .iter()
            .all(|v| v.property != Property::Livelock));
        s.step(0);
        assert!(s.lanes[0].slept == 0 && !s.unfair);
        s.record(Violation::new(Property::Livelock, None, "x"));
        assert!(s.findings.iter().any(|v| v.property == Property::Livelock));
    }

    /// Lockdep validates a blocking request before the thread waits (`lockdep.rs`): under
    /// `alt-blocking-peer` a BPF link (`tr->mutex`, then `direct_mutex`) and a kprobe whose PEER
    /// callback takes `tr->mutex` under `direct_mutex` wait for each other. The kprobe's request
    /// for `tr->mutex` closes the order cycle and is never granted: `lock-order` is reported at
    /// that request, while the kprobe waits, and the stall is then the `deadlock`. (Checked at
    /// the grant, the run would report the deadlock only.)
    #[test]
    fn a_request_that_closes_an_order_cycle_is_reported_before_it_waits() {
        let mut s = Sched::new(
            &World::new(1),
            Protocol::preset("alt-blocking-peer").unwrap(),
            2,
        );
        s.push(0, op("bpf-link fentry f0"), Faults::NONE);
        s.push(0, op("bpf-link fexit f0"), Faults::NONE);
        s.push(1, op("kprobe-arm f0"), Faults::NONE);
        let tr = Request::Lock(Lock::Tr(FnId(0)));
        for _ in 0..12 {
            s.step(0);
        }
        while s.threads.status(1) != Status::Wants(tr) {
            assert!(!s.findings.has(Property::LockOrder), "{:?}", s.findings);
            s.step(1);
        }
        assert_eq!(s.k.lock_holder(Lock::Tr(FnId(0))), Some(0));
        assert!(s.findings.has(Property::LockOrder), "{:?}", s.findings);
        while let Some(&t) = s.runnable().first() {
            s.step(t);
        }
        assert_eq!(s.threads.status(1), Status::Wants(tr), "never granted");
        assert!(s.detect_deadlock().is_some());
        assert!(s.findings.has(Property::Deadlock));
    }
}
