//! The one executor step: what `Sequential` (one thread) and `Sched` (many) do to a thread when
//! it is its turn. Answer its pending request the way every executor answers ([`answer`], with
//! the thread's [`Decider`]), run it to its next request or to the end of its operation
//! (`Thread::run`), and validate the blocking request it ends with as lockdep does, at the
//! request (`lockdep::validate`): a lock the thread holds is a `lock-recursion` finding, and the
//! thread waits forever; a dependency cycle is a `lock-order` finding (`lockdep.rs`: the one
//! policy for recursion, deadlock, lock order and livelock, and where it stands against the
//! kernel's lockdep). The thread driver over real mutexes steps through it too
//! (`Sched::step_with`).
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
    if let Some(req) = th.pending {
        let ok = answer(k, t, req, d);
        th.answer(k, t, ok);
    }
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
    if let Some(req) = th.pending {
        let ok = answer(k, t, req, d);
        th.answer(k, t, ok);
    }
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
