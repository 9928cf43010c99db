//! The one executor step: what `Sequential` (one thread) and `Sched` (many) do to a thread when
//! it is its turn. Answer its pending request the way every executor answers ([`answer`], with
//! the thread's [`Decider`]), run it to its next request or to the end of its operation
//! (`Thread::run`), and validate the blocking request it ends with as lockdep does, at the
//! request (`lockdep::validate`): a lock the thread holds is a `lock-recursion` finding, and the
//! thread waits forever; a dependency cycle is a `lock-order` finding (`lockdep.rs`: the one
//! policy for recursion, deadlock, lock order and livelock, and where it stands against the
//! kernel's lockdep). The thread driver over real mutexes steps through it too
//! (`Sched::step_with`). The sequential driver, which answers every request at once, takes the
//! same step with the answers given inside the thread's run ([`run_to_end`]: the same `answer`
//! and `lockdep::validate`, in the same order; `run_to_end_is_advance_in_a_loop` holds the two
//! to one another).
//!
//! Starting an operation, choosing the thread, draining the step's findings and judging the
//! state are the callers' (the executors and the checked runs, `checked.rs`).

use crate::decide::Decider;
use crate::lockdep;
use ftsim_core::errno::Errno;
use ftsim_core::ids::Tid;
use ftsim_core::kernel::Kernel;
use ftsim_core::locks::LockOrder;
use ftsim_core::machine::Thread;
use ftsim_core::property::Violation;
use ftsim_core::step::{Request, Status};

/// What one step left the thread with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Advance {
    /// It waits for this decision (a `Lock`: until the lock is free).
    Wants(Request),
    /// Its operation finished.
    Done(Result<(), Errno>),
    /// It asked for a lock it holds: it is marked stuck (`Thread::stuck`) and never runs again.
    Recursion(Violation),
}

/// One step of `th`, thread `t` of kernel `k`, which has an operation in flight: answers its
/// pending request (none right after `Thread::start`), then runs it until it needs the next
/// decision.
#[inline]
pub fn advance(
    k: &mut Kernel,
    th: &mut Thread,
    order: &mut LockOrder,
    t: Tid,
    d: &mut impl Decider,
) -> Advance {
    answer_pending(k, th, t, d);
    match th.run(k, t) {
        Status::Done(r) => Advance::Done(r),
        Status::Wants(Request::Lock(l)) => match lockdep::validate(order, k, t, l) {
            Ok(()) => Advance::Wants(Request::Lock(l)),
            Err(v) => {
                th.stuck = true;
                Advance::Recursion(v)
            }
        },
        Status::Wants(req) => Advance::Wants(req),
        Status::Idle => unreachable!("[core internal bug] thread {t} went idle without finishing"),
    }
}

/// [`advance`] over and over until the operation of `th` ends, for an executor that steps one
/// thread and answers every request at once (the sequential driver): each request is validated
/// and answered as `advance` would, in the same order, but inside the thread's run
/// (`Thread::run_with`), which so is entered once per operation, not once per request. Never
/// `Wants`: it returns once the operation finishes or recurses on a lock.
#[inline]
pub fn run_to_end(
    k: &mut Kernel,
    th: &mut Thread,
    order: &mut LockOrder,
    t: Tid,
    d: &mut impl Decider,
) -> Advance {
    answer_pending(k, th, t, d);
    let mut recursion = None;
    let status = th.run_with(k, t, |k, req| {
        if let Request::Lock(l) = req {
            if let Err(v) = lockdep::validate(order, k, t, l) {
                recursion = Some(v);
                return None;
            }
        }
        Some(answer(k, t, req, d))
    });
    if let Some(v) = recursion {
        th.stuck = true;
        return Advance::Recursion(v);
    }
    match status {
        Status::Done(r) => Advance::Done(r),
        Status::Wants(req) => {
            unreachable!("[core internal bug] thread {t} left waiting for {req} though answered")
        }
        Status::Idle => unreachable!("[core internal bug] thread {t} went idle without finishing"),
    }
}

/// Answers the request `th` waits on, if any (none right after `Thread::start`), the one way
/// ([`answer`]).
#[inline(always)]
fn answer_pending(k: &mut Kernel, th: &mut Thread, t: Tid, d: &mut impl Decider) {
    if let Some(req) = th.pending {
        let ok = answer(k, t, req, d);
        th.answer(k, t, ok);
    }
}

/// The executor's answer to thread `t`'s request `req`, validated when it was made (`advance`):
/// `true` grants or succeeds. A blocking `Lock` is granted once free (the executor steps the
/// thread only then).
pub fn answer(k: &Kernel, t: Tid, req: Request, d: &mut impl Decider) -> bool {
    match req {
        Request::Lock(_) => true,
        Request::TryLock(l) => {
            let busy = d.fails(t, req);
            !busy && k.lock_holder(l).is_none()
        }
        Request::Alloc(_) | Request::Build(_) => !d.fails(t, req),
        Request::Sleep => true,
    }
}

#[cfg(test)]
mod tests {
    use super::{advance, Advance};
    use crate::decide::FaultPlan;
    use crate::seq::{Faults, Sequential};
    use ftsim_core::op::Op;
    use ftsim_core::protocol::{Protocol, PRESETS};
    use ftsim_core::world::World;

    /// The sequential driver's step (`run_to_end`, requests answered inside the run) does what
    /// `advance` in a loop does: the same result, findings, kernel, thread and lock order, over
    /// every preset and operation sequences with faults.
    #[test]
    fn run_to_end_is_advance_in_a_loop() {
        let ops: Vec<Op> = [
            "klp-enable f0",
            "klp-disable f0",
            "bpf-link fentry f0",
            "bpf-link fexit f1",
            "bpf-unlink fentry f0",
            "kprobe-arm f0",
            "kprobe-disarm f0",
            "direct-register f0",
            "direct-modify f0",
            "direct-unregister f0",
            "tracer-register t0 filter={f0} notrace={}",
            "tracer-filter-add t0 f1",
            "tracer-unregister t0",
        ]
        .iter()
        .map(|s| s.parse().expect("a valid operation"))
        .collect();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let (mut ops_run, mut recursions) = (0, 0);
        for (name, _) in PRESETS {
            let proto = Protocol::preset(name).expect("a preset");
            for _ in 0..100 {
                let mut a = Sequential::new(&World::new(2), proto);
                let mut b = a.clone();
                for _ in 0..10 {
                    if a.stuck {
                        break;
                    }
                    let op = &ops[next() as usize % ops.len()];
                    let mut faults = Faults::NONE;
                    match next() % 4 {
                        0 => faults.allocs = 1 << (next() % 3),
                        1 => faults.trylocks = 1 << (next() % 3),
                        _ => {}
                    }
                    let out = a.run(op, faults);
                    b.th.start(&mut b.k, 0, op.clone());
                    let mut plan = FaultPlan::new(faults);
                    let stepped = loop {
                        match advance(&mut b.k, &mut b.th, &mut b.order, 0, &mut plan) {
                            Advance::Wants(_) => {}
                            end => break end,
                        }
                    };
                    match stepped {
                        Advance::Done(r) => assert_eq!(out.result, r, "{name}: `{op}`"),
                        Advance::Recursion(v) => {
                            recursions += 1;
                            assert!(out.stuck && out.violations.contains(&v), "{name}: `{op}`");
                            b.stuck = true;
                        }
                        Advance::Wants(_) => unreachable!(),
                    }
                    b.k.violations.clear();
                    assert!(
                        a.k == b.k
                            && a.th == b.th
                            && a.order.mask() == b.order.mask()
                            && a.stuck == b.stuck,
                        "{name}: `{op}` with {faults:?} left the two steps apart"
                    );
                    assert_eq!(a.k.gen, b.k.gen);
                    ops_run += 1;
                }
            }
        }
        // The comparison met both ends of a step: finished operations and recursions.
        assert!(
            ops_run > 10_000 && recursions > 0,
            "{ops_run} operations compared, {recursions} recursions"
        );
    }
}
