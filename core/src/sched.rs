//! A deterministic concurrent executor: threads with queues of owner-level operations whose steps
//! interleave at the points the core yields. Locks have real mutex semantics (a blocked thread is
//! not runnable until its lock is free), deadlocks are found as wait-for cycles, lock order is
//! checked lockdep-style over the whole run, and the properties are checked at every quiescent
//! point. Which runnable thread steps next is the caller's decision (the simulator's generator,
//! fuzzer bytes, a recorded schedule, the explorer's branching): the executor itself never chooses.

use crate::check::check;
use crate::errno::Errno;
use crate::ids::Tid;
use crate::kernel::Kernel;
use crate::locks::{Lock, LockOrder};
use crate::machine::{Request, Status};
use crate::op::Op;
use crate::oracle::Model;
use crate::property::{Property, Violation};
use crate::protocol::Protocol;
use crate::seq::{Faults, Outcome};
use crate::world::World;
use smallvec::SmallVec;
use std::collections::VecDeque;

/// Per-thread bookkeeping of the executor.
#[derive(Clone, Debug, Default)]
pub struct Lane {
    pub queue: VecDeque<(Op, Faults)>,
    cur_faults: Faults,
    counters: [u32; 3],
    /// Finished operations with their results.
    pub done: Vec<(Op, Result<(), Errno>)>,
    /// Waiting forever (asked for a lock it holds, or part of a deadlock).
    pub stuck: bool,
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
    pub lanes: Vec<Lane>,
    pub order: LockOrder,
    /// Findings so far, deduplicated by (property, function).
    pub findings: Vec<Violation>,
    /// Scheduling steps taken.
    pub steps: u64,
    /// Check the properties whenever no operation is in flight.
    pub check_at_quiescence: bool,
    /// The reference oracle, judging each operation while no two have overlapped (it judges
    /// sequential runs); the first overlap retires it for the rest of the run.
    pub oracle: Option<Model>,
}

impl Sched {
    pub fn new(world: &World, proto: Protocol, threads: usize) -> Sched {
        let mut k = Kernel::new(world, proto);
        k.ensure_threads(threads);
        Sched {
            k,
            lanes: vec![Lane::default(); threads],
            order: LockOrder::default(),
            findings: Vec::new(),
            steps: 0,
            check_at_quiescence: true,
            oracle: Some(Model::new(world, &proto)),
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
        match self.k.status(t) {
            Status::Idle => !lane.queue.is_empty(),
            Status::Wants(Request::Lock(l)) => self.k.lock_holder(l).is_none(),
            Status::Wants(_) => true,
            Status::Done(_) => unreachable!(),
        }
    }

    fn sleeping(&self, t: Tid) -> bool {
        self.k.status(t) == Status::Wants(Request::Sleep)
    }

    /// Whether thread `t` can take a step now.
    pub fn can_step(&self, t: Tid) -> bool {
        self.runnable().contains(&t)
    }

    /// Threads that can take a step now, in ascending order. A sleeping thread (`msleep`) is
    /// runnable only when no other thread is.
    pub fn runnable(&self) -> SmallVec<[Tid; 8]> {
        let ready: SmallVec<[Tid; 8]> = (0..self.lanes.len() as Tid)
            .filter(|&t| self.ready(t))
            .collect();
        if ready.iter().any(|&t| !self.sleeping(t)) {
            ready.into_iter().filter(|&t| !self.sleeping(t)).collect()
        } else {
            ready
        }
    }

    /// Some thread has an operation in flight or queued.
    pub fn unfinished(&self) -> bool {
        (0..self.lanes.len()).any(|t| {
            self.k.busy(t as Tid) || (!self.lanes[t].queue.is_empty() && !self.lanes[t].stuck)
        })
    }

    /// Records a finding, deduplicated by (property, function).
    pub fn record(&mut self, v: Violation) {
        if !self
            .findings
            .iter()
            .any(|x| x.property == v.property && x.func == v.func)
        {
            self.findings.push(v);
        }
    }

    /// Takes one step of thread `t` (which must be runnable): starts its next operation, or
    /// answers its pending request, then runs it to its next request.
    pub fn step(&mut self, t: Tid) -> StepOutcome {
        assert!(
            self.ready(t),
            "[core internal bug] stepping thread {t} that cannot step"
        );
        self.steps += 1;
        let ti = t as usize;
        match self.k.status(t) {
            Status::Idle => {
                if (0..self.lanes.len()).any(|u| u != ti && self.k.busy(u as Tid)) {
                    self.oracle = None;
                }
                let (op, faults) = self.lanes[ti].queue.pop_front().unwrap();
                self.lanes[ti].cur_faults = faults;
                self.lanes[ti].counters = [0; 3];
                self.k.start(t, op);
            }
            Status::Wants(req) => {
                let ok = self.decide(t, req);
                self.k.answer(t, ok);
            }
            Status::Done(_) => unreachable!(),
        }
        let op = self.k.threads[ti].op.clone();
        let status = self.k.run(t);
        for v in std::mem::take(&mut self.k.violations) {
            self.record(v);
        }
        let out = match status {
            Status::Done(result) => {
                let th = &self.k.threads[ti];
                let c = Completion {
                    tid: t,
                    op: op.unwrap(),
                    result,
                    contended: th.contended,
                    faulted: th.faulted,
                };
                self.lanes[ti].done.push((c.op.clone(), result));
                self.judge(&c);
                StepOutcome::Finished(c)
            }
            Status::Wants(Request::Lock(l)) if self.k.holds(t, l) => {
                self.record(Violation::new(
                    Property::LockRecursion,
                    None,
                    format!("{l} acquired while already held"),
                ));
                self.lanes[ti].stuck = true;
                self.k.mark_stuck(t);
                StepOutcome::Progress
            }
            _ => StepOutcome::Progress,
        };
        if self.check_at_quiescence && self.k.quiescent() {
            for v in check(&self.k) {
                self.record(v);
            }
        }
        out
    }

    /// The oracle's verdict on an operation that ran alone.
    fn judge(&mut self, c: &Completion) {
        let Some(model) = self.oracle.as_mut() else {
            return;
        };
        let calls: Vec<_> = (0..self.k.fns.len() as u16)
            .map(|f| crate::observe::call(&self.k, crate::ids::FnId(f)))
            .collect();
        let out = Outcome {
            result: c.result,
            violations: Vec::new(),
            contended: c.contended,
            faulted: c.faulted,
            stuck: false,
        };
        for v in model.step(&c.op, &out, &calls) {
            self.record(v);
        }
    }

    fn decide(&mut self, t: Tid, req: Request) -> bool {
        let ti = t as usize;
        let f = self.lanes[ti].cur_faults;
        let mut nth = |i: usize, mask: u32| {
            let n = self.lanes[ti].counters[i];
            self.lanes[ti].counters[i] += 1;
            n < 32 && mask & (1 << n) != 0
        };
        match req {
            Request::Lock(l) => {
                self.order_check(t, l);
                true
            }
            Request::TryLock(l) => {
                let forced = nth(2, f.trylocks);
                !forced && self.k.lock_holder(l).is_none()
            }
            Request::Alloc(_) => !nth(0, f.allocs),
            Request::Build(_) => !nth(1, f.builds),
            Request::Sleep => true,
        }
    }

    fn order_check(&mut self, t: Tid, l: Lock) {
        let held: SmallVec<[_; 8]> = self.k.held_by(t).map(|h| h.class()).collect();
        if let Some(cycle) = self.order.acquire(held.into_iter(), l.class()) {
            let names: Vec<&str> = cycle.iter().map(|c| c.name()).collect();
            self.record(Violation::new(
                Property::LockOrder,
                None,
                format!("lock order cycle {}", names.join(" -> ")),
            ));
        }
    }

    /// When no thread can step but some are unfinished: the wait-for cycle, if there is one.
    /// Reports `deadlock` and marks the threads of the cycle stuck.
    pub fn detect_deadlock(&mut self) -> Option<Violation> {
        let n = self.lanes.len();
        let waits_for = |s: &Sched, t: usize| -> Option<(Lock, usize)> {
            match s.k.status(t as Tid) {
                Status::Wants(Request::Lock(l)) => s.k.lock_holder(l).map(|h| (l, h as usize)),
                _ => None,
            }
        };
        for start in 0..n {
            let mut path = vec![start];
            let mut cur = start;
            while let Some((_, next)) = waits_for(self, cur) {
                if let Some(pos) = path.iter().position(|&x| x == next) {
                    let cycle = &path[pos..];
                    if cycle.len() == 1 {
                        break; // recursion, reported already
                    }
                    let desc: Vec<String> = cycle
                        .iter()
                        .map(|&x| {
                            let (l, _) = waits_for(self, x).unwrap();
                            let op = self.k.threads[x]
                                .op
                                .as_ref()
                                .map(|o| o.to_string())
                                .unwrap_or_default();
                            format!("t{x} `{op}` waits for {l}")
                        })
                        .collect();
                    for &x in cycle {
                        self.lanes[x].stuck = true;
                        self.k.mark_stuck(x as Tid);
                    }
                    let v = Violation::new(Property::Deadlock, None, desc.join("; "));
                    self.record(v.clone());
                    return Some(v);
                }
                path.push(next);
                cur = next;
            }
        }
        None
    }

    /// Runs to completion choosing, at each point, `choose(runnable)` (an index into it).
    pub fn run_with(&mut self, mut choose: impl FnMut(&[Tid]) -> usize, steps_max: u64) {
        while self.steps < steps_max {
            let r = self.runnable();
            if r.is_empty() {
                if self.unfinished() {
                    self.detect_deadlock();
                }
                return;
            }
            let i = choose(&r).min(r.len() - 1);
            self.step(r[i]);
        }
    }
}
