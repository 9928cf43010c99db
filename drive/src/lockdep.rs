//! Lockdep's checks on a blocking acquisition, and deadlock as a wait-for cycle: one
//! implementation and one policy for every executor. `exec::advance` is the step of the
//! sequential driver ([`crate::seq`]), of the scheduler ([`crate::sched`]) and, through
//! `Sched::step_with`, of the thread driver over real std/loom mutexes in `ftsim-tests`
//! (`conc.rs`), which only carries the requests out on real mutexes.
//!
//! - *recursion and lock order, at the request*: a blocking request (`Request::Lock`) is
//!   validated when the thread makes it, before it is granted or waits ([`validate`], called by
//!   `exec::advance` on the request the step ends with), as lockdep validates it:
//!   `__mutex_lock_common` calls `mutex_acquire_nest` (`lock_acquire` -> `__lock_acquire` ->
//!   `validate_chain`) before it tries or waits for the mutex (6.12
//!   `kernel/locking/mutex.c:609`, then `__mutex_trylock` at 612, the wait list at 642;
//!   `lockdep.c:5236`). `validate_chain` first runs `check_deadlock` (lockdep.c:3919): a lock
//!   the thread holds is a `lock-recursion` finding, and the thread is stuck for ever holding its
//!   locks (a real mutex would hang; the others carry on). Then `check_prevs_add` (3932) adds the
//!   dependencies held -> new, by lock class over the whole run ([`order`]), and one that closes
//!   a cycle is a `lock-order` finding even if no run deadlocks. A recursion adds no dependency
//!   (`validate_chain` returns at 3922 before `check_prevs_add`). So a thread that never gets
//!   its lock (a waiter of a deadlock, a run that ends first) has added its dependencies: the
//!   waiter that closes a wait-for cycle reports the circular dependency before it sleeps, as
//!   lockdep does, and the `deadlock` follows. A trylock is validated neither way:
//!   `validate_chain` skips `hlock->trylock` (lockdep.c:3899, "trylock can be done in any
//!   order"), and `mutex_trylock` calls `mutex_acquire` only once it has the lock (mutex.c:1100);
//!   a trylock of a lock the thread holds fails (`exec::answer`: the lock is not free), as
//!   `__mutex_trylock` does. A lock taken by trylock is a held lock like any other for the
//!   validation of later requests (`check_deadlock` walks every held lock; `check_prevs_add`
//!   adds from the trylock entries above the first blocking one, lockdep.c:3313). The model adds
//!   an edge from every held lock, lockdep only from the nearest blocking one and the trylocks
//!   above it ("connected to them indirectly", 3313): the same reachability, so the same cycles.
//!   What the model does not copy: lockdep turns itself off after its first report
//!   (`debug_locks_off_graph_unlock`, e.g. lockdep.c:3039); the model keeps recording, one
//!   finding per (property, function).
//! - *recursion by class*: lockdep's `check_deadlock` compares classes, not instances
//!   (`hlock_class(prev) != hlock_class(next)`, lockdep.c:3094): a blocking request for another
//!   instance of a class the thread holds (`tr(f1)->mutex` under `tr(f0)->mutex`: every
//!   `tr->mutex` is one class, `mutex_init` at `kernel/bpf/trampoline.c:170`) is its "possible
//!   recursive locking detected" report too (`print_deadlock_bug`, 3034), although no thread
//!   hangs: a `lock-recursion` finding, the thread carries on (the mutex is another one) and, as
//!   `validate_chain` returns before `check_prevs_add`, the request adds no dependency. Its two
//!   exceptions do not arise here: a held `nest_lock` (3114) and subclasses
//!   (`mutex_lock_nested`) are used by none of the model's locks (6.12 `trampoline.c` and
//!   `kernel/trace/ftrace.c` take `tr->mutex` and `regex_lock` with plain `mutex_lock`). With the
//!   model's frames no thread holds two instances of a class at once (each `tr->mutex` and each
//!   `regex_lock` is released before the next is taken; the PEER callback that takes a
//!   `tr->mutex` runs under `direct_mutex` for an IPMODIFY registration, which no thread holding
//!   a `tr->mutex` makes): a probe that panicked on such a request found none in `ftsim run
//!   --seeds 0..20000` over every preset, `ftsim explore --depth 4 --module 1` and `ftsim
//!   explore --interleave --depth 3 --functions 2 --tracers 0`, so the rule moves no pin;
//!   `tests::another_instance_of_a_held_class_is_lockdeps_recursion` holds it. (One
//!   simplification: a statically initialised `regex_lock`, `global_ops`' `INIT_OPS_HASH` at
//!   ftrace.c:1079, has a class of its own in lockdep, keyed by its address, lockdep.c:999; the
//!   model has one `regex_lock` class, which can only matter once two are nested.)
//! - *deadlock*: when no thread can step but some have work (a stall), the wait-for cycle if
//!   there is one (`Sched::detect_deadlock`, [`wait_cycle`]): the `deadlock` finding, and the run
//!   is over. The thread driver applies the rule after every step, under its model mutex, and
//!   ends a stalled run itself (loom's own deadlock detector is left to catch a driver bug).
//! - *livelock*: the core bounds every retry loop (`kernel::RETRIES_MAX`, a `livelock` finding),
//!   judged only on fair schedules (`sched::SLEEP_STEPS_MAX`, `sched::FAIR_STEPS_MAX`). The
//!   thread driver's step bound (`STEPS_PER_OP_MAX`) is an internal-bug guard, not a finding.

use ftsim_core::ids::Tid;
use ftsim_core::kernel::Kernel;
use ftsim_core::locks::{Lock, LockOrder};
use ftsim_core::machine::Thread;
use ftsim_core::property::{Property, Violation};

/// Lockdep's `validate_chain` for thread `t`'s blocking request for `l`, at the request (the
/// module doc): `Err` with the `lock-recursion` finding if `t` holds `l` (`check_deadlock`; no
/// dependency is added); the finding without `Err` (the thread carries on, no dependency) if it
/// holds another instance of `l`'s class; else the dependencies on what `t` holds are recorded in `order`
/// (`check_prevs_add`), and a cycle they close is a `lock-order` finding among the kernel's
/// in-step findings (`Kernel::violate`), which the executor drains with the step's own.
pub fn validate(order: &mut LockOrder, k: &mut Kernel, t: Tid, l: Lock) -> Result<(), Violation> {
    // One pass over what `t` holds: the instance itself (`check_deadlock`, which wins), the first
    // other instance of its class, and whether some held class has no edge to it yet (only then
    // can `check_prevs_add` add a dependency or close a cycle).
    let class = l.class();
    let mut other = None;
    let mut adds = false;
    for h in k.held_by(t) {
        if h == l {
            return Err(recursion(l));
        }
        let c = h.class();
        if c == class {
            other = other.or(Some(h));
        } else if !order.has_edge(c, class) {
            adds = true;
        }
    }
    if let Some(h) = other {
        k.violate(class_recursion(l, h));
        return Ok(());
    }
    if adds {
        if let Some(v) = order_cycle(order, k, t, l) {
            k.violate(v);
        }
    }
    Ok(())
}

/// Thread `t` asking for `l` while holding it already: the `lock-recursion` finding.
#[cold]
fn recursion(l: Lock) -> Violation {
    Violation::new(
        Property::LockRecursion,
        None,
        format!("{l} acquired while already held"),
    )
}

/// Thread `t` asking for `l` while holding `h`, another instance of its class: lockdep's
/// recursion report all the same (by class, the module doc), though the thread does not hang.
#[cold]
fn class_recursion(l: Lock, h: Lock) -> Violation {
    Violation::new(
        Property::LockRecursion,
        None,
        format!("{l} acquired while {h} of its class is held"),
    )
}

/// Records in `order` that `t` asks for `l` while holding what it holds (lockdep's order rule,
/// by lock class); the `lock-order` finding if this request closes a cycle.
fn order_cycle(order: &mut LockOrder, k: &Kernel, t: Tid, l: Lock) -> Option<Violation> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use ftsim_core::ids::FnId;
    use ftsim_core::locks::LockClass;
    use ftsim_core::protocol::Protocol;
    use ftsim_core::world::World;

    /// Lockdep's `check_deadlock` is by class: `tr(f1)->mutex` asked for under `tr(f0)->mutex`
    /// is a `lock-recursion` finding though the thread does not hang, and adds no dependency;
    /// the same instance is the recursion that leaves the thread stuck (`Err`). No frame nests
    /// two instances of a class today (the module doc): this is what a new one would meet.
    #[test]
    fn another_instance_of_a_held_class_is_lockdeps_recursion() {
        let mut k = Kernel::new(&World::new(2), Protocol::preset("merged").unwrap());
        let mut order = LockOrder::default();
        k.locks.push((Lock::Tr(FnId(0)), 0));
        assert_eq!(validate(&mut order, &mut k, 0, Lock::Tr(FnId(1))), Ok(()));
        let v = std::mem::take(&mut k.violations);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].property, Property::LockRecursion);
        assert!(order.edges().is_empty(), "{:?}", order.edges());
        let err = validate(&mut order, &mut k, 0, Lock::Tr(FnId(0))).unwrap_err();
        assert_eq!(err.property, Property::LockRecursion);
        assert_eq!(validate(&mut order, &mut k, 0, Lock::Direct), Ok(()));
        assert!(k.violations.is_empty(), "{:?}", k.violations);
        assert_eq!(order.edges(), vec![(LockClass::Tr, LockClass::Direct)]);
        assert_eq!(validate(&mut order, &mut k, 1, Lock::Tr(FnId(1))), Ok(()));
        assert!(
            k.violations.is_empty(),
            "another thread: {:?}",
            k.violations
        );
    }
}
