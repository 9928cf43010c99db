//! Lockdep's checks on a blocking acquisition, and deadlock as a wait-for cycle: one
//! implementation for every executor (the sequential driver, the scheduler, the thread driver in
//! `ftsim-tests`).
//!
//! The policies the executors apply to the answers still differ where their pins depend on it,
//! each a named policy (the answers themselves are one function, `decide::answer`):
//! - *recursion*: a `lock-recursion` finding that leaves the thread stuck in [`crate::seq`] and
//!   [`crate::sched`] (the model carries on with the other threads; the default sweep and the
//!   proptest verdicts count it), a panic in the thread driver (a real mutex would hang the
//!   test; no loom case reaches it);
//! - *deadlock*: the scheduler looks for a wait-for cycle when no thread can step (a stall, the
//!   simulator's and replay's `deadlock` row), the thread driver when a thread goes to sleep on a
//!   lock (the cycle through that thread; under loom, loom finds it first);
//! - *lock order*: checked when a blocking lock is granted in [`crate::seq`] and
//!   [`crate::sched`] (`decide::answer`), when it is requested in the thread driver (as lockdep
//!   does, before the thread sleeps). Checking at the request in the scheduler too would report
//!   `lock-order` on runs that now only deadlock: `alt-blocking-peer`'s row of the default sweep
//!   moves (seeds 0..20000: 4,165 -> 6,324 seeds), so the pin keeps the grant point;
//! - *livelock*: the core bounds every retry loop (`kernel::RETRIES_MAX`, a `livelock` finding,
//!   judged only on fair schedules, `sched::SLEEP_STEPS_MAX`); the thread driver also bounds the
//!   steps of one operation (`STEPS_PER_OP_MAX`) so that a runaway loop fails a test instead of
//!   hanging it.

use crate::ids::Tid;
use crate::kernel::Kernel;
use crate::locks::{Lock, LockOrder};
use crate::machine::Thread;
use crate::property::{Property, Violation};

/// Thread `t` acquiring `l` while holding it already: the `lock-recursion` finding.
pub fn recursion(k: &Kernel, t: Tid, l: Lock) -> Option<Violation> {
    k.holds(t, l).then(|| {
        Violation::new(
            Property::LockRecursion,
            None,
            format!("{l} acquired while already held"),
        )
    })
}

/// Records in `order` that `t` acquires `l` while holding what it holds (lockdep's order rule,
/// by lock class); the `lock-order` finding if this acquisition closes a cycle.
pub fn order(order: &mut LockOrder, k: &Kernel, t: Tid, l: Lock) -> Option<Violation> {
    let cycle = order.acquire(k.held_by(t).map(|h| h.class()), l.class())?;
    let names: Vec<&str> = cycle.iter().map(|c| c.name()).collect();
    Some(Violation::new(
        Property::LockOrder,
        None,
        format!("lock order cycle {}", names.join(" -> ")),
    ))
}

/// The wait-for cycle reached from thread `from`, following "thread `t` sleeps on `waits(t)`,
/// which its holder holds": each thread of the cycle with the lock it waits for, starting at the
/// first thread of the cycle the walk reaches. A cycle of one thread is a recursion.
pub fn wait_cycle(
    k: &Kernel,
    from: Tid,
    waits: impl Fn(Tid) -> Option<Lock>,
) -> Option<Vec<(Tid, Lock)>> {
    let mut path: Vec<(Tid, Lock)> = Vec::new();
    let mut cur = from;
    loop {
        let l = waits(cur)?;
        let holder = k.lock_holder(l)?;
        path.push((cur, l));
        if let Some(pos) = path.iter().position(|&(x, _)| x == holder) {
            return Some(path.split_off(pos));
        }
        cur = holder;
    }
}

/// A wait-for cycle as `t0 `op` waits for lock; t1 ...`.
pub fn describe(threads: &[Thread], cycle: &[(Tid, Lock)]) -> String {
    let desc: Vec<String> = cycle
        .iter()
        .map(|&(x, l)| {
            let op = threads[x as usize].op.as_ref();
            let op = op.map(|o| o.to_string()).unwrap_or_default();
            format!("t{x} `{op}` waits for {l}")
        })
        .collect();
    desc.join("; ")
}
