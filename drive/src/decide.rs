//! The decisions a driver makes, and the one way an executor answers a request.
//!
//! The core never chooses (ARCHITECTURE's first invariant). What it cannot decide is which thread
//! steps next and whether an allocation, an image build or a trylock fails: that is a
//! [`Decider`]. The executors (`seq.rs` for one thread, `sched.rs` for many) carry out the
//! mechanics the same way, in `exec::answer`: a blocking lock is granted once free (lockdep's
//! checks ran when it was requested, `exec::advance`); a trylock takes its lock if it is free and the decider does not make it find the
//! lock taken; an allocation or a build succeeds unless the decider fails it; `msleep` is
//! answered at once (when it runs is the scheduling's business).
//!
//! The deciders: a fault plan of one operation ([`FaultPlan`], what reproducer lines and the
//! simulator's swarm draw), a recorded schedule (`script.rs`), the simulator's random and PCT
//! policies (`sim/src/sim.rs`), the explorer's branching (every choice, not one), and, for the
//! thread driver over std/loom mutexes (`tests/src/conc.rs`), the OS or loom scheduler itself
//! and its real trylocks (the answers of its real mutexes, no injected faults), combined with
//! the fault plan by [`Both`] (`Sched::step_with`).
//!
//! The one policy for recursion, deadlock, lock order and livelock that every executor applies
//! is in `lockdep.rs`.

use ftsim_core::ids::Tid;
use ftsim_core::step::{Faults, Request};

/// Which thread steps, and which decisions fail.
pub trait Decider {
    /// The thread that steps next, given the threads that can (ascending; never empty; the
    /// executor's fair choice, `Sched::runnable`). A decider may name another thread for which
    /// `ready` is true (a recorded schedule does: a sleeper it recorded stepping).
    fn pick(&mut self, runnable: &[Tid], ready: &dyn Fn(Tid) -> bool) -> Tid {
        let _ = ready;
        runnable[0]
    }
    /// Whether thread `t`'s allocation or build request fails, or its trylock finds the lock
    /// taken (called once per such request, in order; never for `Lock` or `Sleep`).
    fn fails(&mut self, t: Tid, req: Request) -> bool {
        let _ = (t, req);
        false
    }
}

/// The fault plan of one operation being carried out: its [`Faults`] and how many decisions of
/// each kind it has made (decisions are numbered from 0 within the operation).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FaultPlan {
    pub faults: Faults,
    /// Allocations, builds and trylocks decided so far.
    taken: [u32; 3],
}

impl FaultPlan {
    pub fn new(faults: Faults) -> FaultPlan {
        FaultPlan {
            faults,
            taken: [0; 3],
        }
    }
}

impl Decider for FaultPlan {
    fn fails(&mut self, _t: Tid, req: Request) -> bool {
        let (i, mask) = match req {
            Request::Alloc(_) => (0, self.faults.allocs),
            Request::Build(_) => (1, self.faults.builds),
            Request::TryLock(_) => (2, self.faults.trylocks),
            Request::Lock(_) | Request::Sleep => return false,
        };
        let n = self.taken[i];
        self.taken[i] += 1;
        n < 32 && mask & (1 << n) != 0
    }
}

/// Decides nothing: every decision the trait's default (the fair choice, no failure).
impl Decider for () {}

/// Two deciders' failures: a request fails if either fails it. Both are asked, `.0` first, so a
/// fault plan counts every decision of its operation. `pick` is `.0`'s.
pub struct Both<'a, A: ?Sized, B: ?Sized>(pub &'a mut A, pub &'a mut B);

impl<A: Decider + ?Sized, B: Decider + ?Sized> Decider for Both<'_, A, B> {
    fn pick(&mut self, runnable: &[Tid], ready: &dyn Fn(Tid) -> bool) -> Tid {
        self.0.pick(runnable, ready)
    }
    fn fails(&mut self, t: Tid, req: Request) -> bool {
        let a = self.0.fails(t, req);
        let b = self.1.fails(t, req);
        a || b
    }
}
