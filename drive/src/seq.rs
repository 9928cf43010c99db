//! The sequential driver: runs one owner-level operation to completion, no contention. For tests,
//! proptest and fuzzing. Locks are always free (a thread asking for a lock it holds is a
//! `lock-recursion` finding and leaves the model stuck); the lock order of every acquisition is
//! recorded lockdep-style; allocation, build and trylock decisions come from a [`Faults`] plan
//! ([`FaultPlan`]); each request is validated and answered as the one executor step
//! (`exec::advance`) does in the concurrent executor, inside the thread's run
//! ([`run_to_end`]).

use crate::check::{check, footprint};
use crate::decide::FaultPlan;
use crate::exec::{run_to_end, Advance};
use ftsim_core::errno::Errno;
use ftsim_core::frames::Frame;
use ftsim_core::kernel::Kernel;
use ftsim_core::locks::LockOrder;
use ftsim_core::machine::Thread;
use ftsim_core::op::Op;
use ftsim_core::protocol::Protocol;
pub use ftsim_core::step::{Faults, OpResult};
use ftsim_core::world::World;

/// Runs owner-level operations one at a time.
#[derive(Clone, Debug)]
pub struct Sequential {
    pub k: Kernel,
    /// The one thread, thread 0.
    pub th: Thread,
    pub order: LockOrder,
    /// Check the footprint of failed operations (atomicity); costs two snapshots per operation.
    pub check_atomicity: bool,
    pub stuck: bool,
}

impl Sequential {
    pub fn new(world: &World, proto: Protocol) -> Sequential {
        Sequential {
            k: Kernel::new(world, proto),
            th: Thread::default(),
            order: LockOrder::default(),
            check_atomicity: true,
            stuck: false,
        }
    }

    /// The threads, as the state walk takes them: the one.
    pub fn threads(&self) -> &[Thread] {
        std::slice::from_ref(&self.th)
    }

    /// Runs `op` to completion without faults and checks the properties afterwards.
    pub fn apply(&mut self, op: &Op) -> OpResult {
        self.apply_with(op, Faults::NONE)
    }

    /// Runs `op` with the given faults and checks the properties afterwards.
    pub fn apply_with(&mut self, op: &Op, faults: Faults) -> OpResult {
        let before = (self.check_atomicity && !self.stuck).then(|| footprint(&self.k));
        let mut out = self.run(op, faults);
        if out.stuck {
            return out;
        }
        if let (Some(before), Err(_)) = (before, out.result) {
            if let Some(v) = before.compare(&footprint(&self.k), &op.to_string()) {
                out.violations.push(v);
            }
        }
        out.violations.extend(check(&self.k));
        out
    }

    /// Runs `op` to completion; only the findings raised inside steps (locks, livelock) are
    /// reported. The fast path for benchmarks and search.
    pub fn run(&mut self, op: &Op, faults: Faults) -> OpResult {
        if self.stuck {
            return OpResult {
                result: Err(Errno::EBUSY),
                violations: Vec::new(),
                contended: false,
                faulted: false,
                stuck: true,
            };
        }
        self.th.start(&mut self.k, 0, op.clone());
        self.finish(faults)
    }

    /// Runs a raw kernel-level frame to completion on thread 0 (kernel-level tests), as
    /// [`Sequential::run`] runs an operation.
    pub fn run_frame(&mut self, frame: Frame, faults: Faults) -> OpResult {
        assert!(
            !self.stuck,
            "[core internal bug] running a frame on a stuck model"
        );
        self.th.start_frame(frame);
        self.finish(faults)
    }

    /// Steps thread 0, just started, until its operation finishes or it recurses on a lock.
    fn finish(&mut self, faults: Faults) -> OpResult {
        let t = 0;
        let mut plan = FaultPlan::new(faults);
        let mut violations = Vec::new();
        let result = match run_to_end(&mut self.k, &mut self.th, &mut self.order, t, &mut plan) {
            Advance::Done(r) => r,
            Advance::Recursion(v) => {
                violations.push(v);
                self.stuck = true;
                violations.append(&mut self.k.violations);
                return OpResult {
                    result: Err(Errno::EBUSY),
                    violations,
                    contended: false,
                    faulted: false,
                    stuck: true,
                };
            }
            Advance::Wants(req) => {
                unreachable!("[core internal bug] the sequential driver left {req} unanswered")
            }
        };
        violations.append(&mut self.k.violations);
        let th = &self.th;
        OpResult {
            result,
            violations,
            contended: th.contended,
            faulted: th.faulted,
            stuck: false,
        }
    }
}
