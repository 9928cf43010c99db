//! A concurrent driver of the core's steps over real mutexes (issue 6): `std::sync` normally,
//! `loom::sync` under `--cfg loom`, so loom can enumerate every interleaving of the lock protocol.
//!
//! # How a thread runs an operation
//!
//! The model sits behind one mutex that is used only to take a step atomically: the core's
//! concurrent executor ([`Sched`], resumed from the setup's state and lock order), each thread's
//! operations queued on its lane. Each kernel lock the core names (`direct_mutex`,
//! `ftrace_lock`, every `tr->mutex`, `klp_mutex`, every `regex_lock`, ...) is a real
//! [`LockCell`] (a `Mutex<bool>` plus a `Condvar`, so that ownership can cross step boundaries).
//! The driver is a thin wrapper over the core's one executor step: it steps, and carries the
//! requests out on the real mutexes. One step of thread `t`:
//!
//! 1. under the model mutex: `Sched::step_with`, the core's step (`exec::advance`): start the
//!    next operation or answer the pending request (a blocking lock, which the thread has taken,
//!    is granted; a trylock is answered with what the real `try_lock` found, [`RealTrylock`]),
//!    run the core to its next request, validate a blocking request as lockdep does before the
//!    thread blocks on its cell (recursion, then lock order: `lockdep::validate`), and record the
//!    findings raised inside the step; then note which kernel locks the step released, in order,
//!    and apply the core's stall rule (below);
//! 2. release the cells of the locks the step released, one by one in the order the core released
//!    them. Each release is a loom operation, hence a point where loom may switch threads: between
//!    two `mutex_unlock`s of one step another thread can take the first lock and find the second
//!    still taken, as in the kernel (this is how a livepatch's PEER trylock can find `tr->mutex`
//!    taken by a BPF link that already released `direct_mutex`). The model's state is then the
//!    state after the whole step, which is fine: what the step wrote after the first unlock is
//!    protected by the locks still held;
//! 3. carry out the request: block on the cell (`Lock`), `try_lock` it (`TryLock`), yield to the
//!    other threads (`Sleep`, `msleep()` in the kernel: loom's `yield_now` runs the thread again
//!    only when no other thread can run), or answer allocations and image builds with success
//!    (no fault injection here).
//!
//! So a thread blocked in the kernel is a thread blocked on a real mutex. The policies are the
//! core's (`ftsim_drive::lockdep`): a thread that asks for a lock it holds is a `lock-recursion`
//! finding and stops, holding its locks; when after a step no thread can step but some have work
//! (the core's stall: every unfinished thread waits for a lock the model says is held, or is
//! stuck), the run is over, with the wait-for cycle as a `deadlock` finding if there is one
//! (`Sched::detect_deadlock`): the driver aborts the threads blocked on a cell and reports
//! [`Execution::stalled`] and [`Execution::deadlock`]. This holds under loom too; loom's own
//! deadlock detector (`"deadlock; threads = ..."`) fires only if the driver misses a stall. The
//! model's lock table lags the cells (a lock is granted in the model at the step after its cell
//! was taken, released in the model before its cell), so a stall the model sees is real, and the
//! last thread to block or finish sees it. The threads share the driver's state through
//! `std::sync::Arc`, not loom's, so that a loom panic unwinds cleanly.
//!
//! # What an execution is checked against
//!
//! [`verify`]: (1) [`Linearizer`]: the execution is *linearizable* to its operations. Every operation
//! that failed because a trylock found its lock taken (`-EAGAIN` from contention) must leave no
//! trace; the others must match some sequential order (respecting each thread's program order)
//! run on the sequential driver from the same setup: the same result for every operation, the
//! same [`observable`] state, and no finding the sequential order does not have, except the
//! tolerated `share-leak` (SPEC §3.6), which contention can cause and which is
//! reported apart. (2) [`expectations`]: what the owners can check from their own bookkeeping
//! (contention fails only with `-EAGAIN` and leaves no livepatch/kprobe behind; a patched or
//! probed function is redirected; every linked program runs). (3) the reference oracle of issue 3
//! (`ftsim_drive::oracle::Reference`, which knows the policy and not the code) follows the setup and
//! the explaining order, then judges the operations that failed from contention with the calls of
//! the final state; what it reports is part of the verdict (`oracle:property@function`). Then the
//! test pins, per scenario and preset, the set of outcomes and findings over all executions
//! ([`crate::cases::CASES`], [`crate::cases::Expect`]). The linearizer and the owners' checks are
//! the core's (`ftsim_drive::linearize`), so that any driver of concurrent runs can use them.
//!
//! # Running
//!
//! ```text
//! # every scenario under every preset (73 tests and the recursion test, 70-90 s on two shared cores):
//! RUSTFLAGS="--cfg loom" cargo test -p ftsim-tests --test loom --release
//! # one scenario, every preset; or one scenario under one preset, with its summary:
//! RUSTFLAGS="--cfg loom" cargo test -p ftsim-tests --test loom --release modify_vs_klp_enable::
//! RUSTFLAGS="--cfg loom" cargo test -p ftsim-tests --test loom --release -- --exact modify_vs_klp_enable::merged --nocapture
//! # explore deeper than the pinned bound (the pins must still hold exactly):
//! LOOM_MAX_PREEMPTIONS=4 RUSTFLAGS="--cfg loom" cargo test -p ftsim-tests --test loom --release
//! # replay a failing interleaving: record the path of every iteration, then rerun: loom starts at
//! # the failing one and the test prints its interleaving (our journal) again at once
//! LOOM_CHECKPOINT_FILE=/tmp/loom.json LOOM_CHECKPOINT_INTERVAL=1 RUSTFLAGS="--cfg loom" \
//!     cargo test -p ftsim-tests --test loom --release -- --exact modify_vs_klp_enable::alt_blocking_peer --nocapture
//! # re-pin after a deliberate model change (prints `Expect` lines for CASES; read them first)
//! FTSIM_LOOM_PIN=1 RUSTFLAGS="--cfg loom" cargo test -p ftsim-tests --test loom --release -- --nocapture
//! ```
//!
//! Bounds: preemption bound 3 for two-thread scenarios and 2 for the three-thread one
//! ([`crate::cases::Case::preemptions`], overridden by `LOOM_MAX_PREEMPTIONS`); loom's branch bound
//! `model::BRANCHES_MAX`; the core bounds its retry loops (`RETRIES_MAX`, a `livelock` finding,
//! judged on fair schedules); the driver's bound on the steps of one operation
//! ([`STEPS_PER_OP_MAX`]) guards against a core bug. Measured on two
//! shared cores: a two-thread scenario takes 0.1-0.8 s per preset at bound 3 (1.5k-8.5k
//! executions), the three-thread one about 1 s per preset at bound 2 (3k-6k executions). Bound 4
//! for every two-thread scenario took 2 min, bound 5 7 min, bound 3 for the three-thread one
//! 5 min; all found exactly the pinned verdicts.

use ftsim_core::ids::Tid;
use ftsim_core::kernel::{CallSite, Kernel};
use ftsim_core::locks::{Lock, LockOrder};
use ftsim_core::op::Op;
use ftsim_core::protocol::Protocol;
use ftsim_core::step::{Event, EventKind, Faults, Request, Status};
use ftsim_drive::check::check;
use ftsim_drive::checked::CheckedSeq;
use ftsim_drive::decide::Decider;
use ftsim_drive::sched::{Sched, StepOutcome};
use std::fmt::{self, Write as _};

/// The synchronization primitives: loom's under `--cfg loom`, std's otherwise.
pub mod sync {
    #[cfg(loom)]
    pub use loom::sync::{Condvar, Mutex, MutexGuard};
    #[cfg(loom)]
    pub use loom::thread;
    #[cfg(not(loom))]
    pub use std::sync::{Condvar, Mutex, MutexGuard};
    #[cfg(not(loom))]
    pub use std::thread;
}

use std::sync::Arc;
use sync::{Condvar, Mutex};

pub use crate::cases::{Report, Scenario};
pub use ftsim_drive::linearize::{
    expectations, finding_id, show_result, Execution, Linearizer, OpOutcome, Verdict,
};

/// The linearizability check of a scenario's executions ([`Linearizer`]), against the
/// [`observable`] state.
pub fn linearizer(start: &CheckedSeq, threads: &[Vec<Op>]) -> Linearizer {
    Linearizer::new(start, threads, observable)
}

/// Most threads one execution may use (loom's own limit is 4 besides the main thread).
pub const THREADS_MAX: usize = 4;

/// Most scheduling steps one thread takes for one operation. The core bounds every retry loop
/// (`kernel::RETRIES_MAX`, its `livelock` finding), so an operation that reaches this is an
/// internal bug, reported as one rather than hanging the test.
pub const STEPS_PER_OP_MAX: u32 = 10_000;

/// A kernel mutex whose ownership can cross step boundaries: `locked` is the mutex, the std or
/// loom `Mutex` only guards the flag.
pub struct LockCell {
    locked: Mutex<bool>,
    freed: Condvar,
}

/// A thread gave up waiting because the run stalled (another thread's step found it).
#[derive(Debug)]
pub struct Aborted;

impl LockCell {
    fn new() -> LockCell {
        LockCell {
            locked: Mutex::new(false),
            freed: Condvar::new(),
        }
    }

    /// Blocks until the lock is free, then takes it. Under loom a thread that waits forever here
    /// is what loom's deadlock detector sees.
    fn lock(&self, abort: &std::sync::atomic::AtomicBool) -> Result<(), Aborted> {
        let mut g = self.locked.lock().unwrap();
        while *g {
            if abort.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(Aborted);
            }
            g = self.freed.wait(g).unwrap();
        }
        *g = true;
        Ok(())
    }

    /// `mutex_trylock`: takes the lock if it is free.
    fn try_lock(&self) -> bool {
        let mut g = self.locked.lock().unwrap();
        if *g {
            return false;
        }
        *g = true;
        true
    }

    fn unlock(&self) {
        let mut g = self.locked.lock().unwrap();
        assert!(*g, "[driver internal bug] unlocking a free lock cell");
        *g = false;
        drop(g);
        self.freed.notify_one();
    }

    /// Wakes every waiter so it can see the abort flag.
    fn wake_all(&self) {
        let _g = self.locked.lock().unwrap();
        self.freed.notify_all();
    }
}

/// One line of an execution's journal: which thread did what, in the order the steps ran.
#[derive(Clone, Debug)]
pub enum Entry {
    /// A core event of the step (start, calls, lock acquire/release, callbacks, ...).
    Core(Event),
    /// The thread asks the driver for this and will now carry it out.
    Wants(Tid, Request),
    /// The thread asked for a lock it holds (`lock-recursion`) and waits forever.
    Stuck(Tid),
    /// After the thread's step no thread could step while some had work (the core's stall):
    /// the wait-for cycle, if there is one.
    Stall(Tid, Option<String>),
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Entry::Core(e) => match &e.kind {
                EventKind::Start(op) => write!(f, "t{} start `{op}`", e.tid),
                EventKind::Finish(r) => write!(f, "t{} finish {}", e.tid, show_result(*r)),
                EventKind::Enter(name) => write!(f, "t{}   enter {name}", e.tid),
                EventKind::Leave(name, r) => {
                    let r = match r {
                        Ok(v) => v.to_string(),
                        Err(e) => e.name().to_string(),
                    };
                    write!(f, "t{}   leave {name} = {r}", e.tid)
                }
                EventKind::Acquire(l) => write!(f, "t{}   acquire {l}", e.tid),
                EventKind::Release(l) => write!(f, "t{}   release {l}", e.tid),
                EventKind::TryFailed(l) => write!(f, "t{}   trylock {l} failed", e.tid),
                EventKind::AllocFailed(site) => {
                    write!(f, "t{}   alloc {} failed", e.tid, site.name())
                }
                EventKind::BuildFailed(x) => write!(f, "t{}   build tramp({x}) failed", e.tid),
                EventKind::Callback(ops, cmd) => {
                    write!(f, "t{}   ops_func(ops#{}, {cmd})", e.tid, ops.0)
                }
                EventKind::Site(x, site) => {
                    let site = match site {
                        CallSite::Nop => "nop".to_string(),
                        CallSite::Caller => "ftrace_caller".to_string(),
                        CallSite::Direct(a) => format!("direct call to {a}"),
                    };
                    write!(f, "t{}   call site of {x}: {site}", e.tid)
                }
                EventKind::Warn(w) => write!(f, "t{}   WARN {w}", e.tid),
            },
            Entry::Wants(t, r) => write!(f, "t{t} -> {r}"),
            Entry::Stuck(t) => write!(f, "t{t} !! lock recursion: stuck for ever"),
            Entry::Stall(t, Some(d)) => write!(f, "t{t} !! stall, wait-for cycle: {d}"),
            Entry::Stall(t, None) => write!(f, "t{t} !! stall, no wait-for cycle"),
        }
    }
}

/// The journal of the last execution, kept outside the model (a plain std mutex that is never
/// held across a loom operation) so it survives loom's deadlock panic and can be printed.
#[derive(Clone, Default)]
pub struct Journal(std::sync::Arc<std::sync::Mutex<Vec<Entry>>>);

impl Journal {
    fn clear(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
    fn push(&self, e: Entry) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(e);
    }
    fn extend(&self, es: impl IntoIterator<Item = Entry>) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend(es);
    }
    /// The journal, one entry per line.
    pub fn render(&self) -> String {
        let j = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut s = String::new();
        for e in j.iter() {
            let _ = writeln!(s, "  {e}");
        }
        s
    }
}

/// Everything the threads share.
struct Shared {
    /// The model behind the model mutex: the core's concurrent executor, with each thread's
    /// operations queued on its lane; a thread steps only its own lane.
    model: Mutex<Sched>,
    cells: Vec<LockCell>,
    functions: u16,
    journal: Journal,
    /// Set when the run stalls (the core's stall: no thread can step, some have work), so that
    /// the threads blocked on a cell give up.
    abort: std::sync::atomic::AtomicBool,
    /// Std driver: the threads start their first operation together, to make overlap likely.
    #[cfg(not(loom))]
    gate: std::sync::Barrier,
}

impl Shared {
    fn cell(&self, l: Lock) -> &LockCell {
        let i = match l {
            Lock::Direct => 0,
            Lock::Ftrace => 1,
            Lock::Klp => 2,
            Lock::Kprobe => 3,
            Lock::TraceTypes => 4,
            Lock::Tr(f) => 5 + f.0 as usize,
            Lock::Regex(o) => 5 + self.functions as usize + o.0 as usize,
        };
        &self.cells[i]
    }
}

/// The decider of a thread over real mutexes: its trylock fails when the real `try_lock` of the
/// cell found it taken; nothing else fails (no injected faults here), and which thread steps is
/// the OS's or loom's business.
#[derive(Default)]
struct RealTrylock {
    /// The cell of the pending trylock was found taken.
    taken: bool,
}

impl Decider for RealTrylock {
    fn fails(&mut self, _t: Tid, req: Request) -> bool {
        matches!(req, Request::TryLock(_)) && std::mem::take(&mut self.taken)
    }
}

/// Runs `threads[t]` on thread `t`, concurrently, from the state `start` (which must be
/// quiescent) and the lock order recorded so far, and returns what happened. Every step is
/// journaled into `journal` (cleared first), which outlives a loom panic.
pub fn execute(
    start: &Kernel,
    order: &LockOrder,
    threads: &[Vec<Op>],
    journal: &Journal,
) -> Execution {
    assert!(
        threads.len() <= THREADS_MAX,
        "at most {THREADS_MAX} threads"
    );
    assert!(
        start.locks.is_empty(),
        "the start state must be quiescent (no lock held)"
    );
    journal.clear();
    let mut k = start.clone();
    k.trace = Some(Vec::new());
    let functions = k.fns.len() as u16;
    let ncells = 5 + functions as usize + k.ops.len();
    let mut sched = Sched::resume(k, order.clone(), threads.len());
    for (t, ops) in threads.iter().enumerate() {
        for op in ops {
            sched.push(t as Tid, op.clone(), Faults::NONE);
        }
    }
    let shared = Arc::new(Shared {
        model: Mutex::new(sched),
        cells: (0..ncells).map(|_| LockCell::new()).collect(),
        functions,
        journal: journal.clone(),
        abort: std::sync::atomic::AtomicBool::new(false),
        #[cfg(not(loom))]
        gate: std::sync::Barrier::new(threads.len()),
    });
    let handles: Vec<_> = (0..threads.len())
        .map(|t| {
            let sh = shared.clone();
            sync::thread::spawn(move || run_thread(&sh, t as Tid))
        })
        .collect();
    let mut outcomes = Vec::new();
    let mut stall = None;
    for h in handles {
        match h.join() {
            Ok((outs, s)) => {
                outcomes.push(outs);
                stall = stall.or(s);
            }
            Err(p) => std::panic::resume_unwind(p),
        }
    }
    let mut m = shared.model.lock().unwrap();
    m.k.trace = None;
    if stall.is_none() {
        assert!(
            m.threads.quiescent(),
            "[driver internal bug] threads joined with operations in flight"
        );
        assert!(
            m.k.locks.is_empty(),
            "kernel locks still held at the end: {:?}",
            m.k.locks
        );
        for v in check(&m.k) {
            m.record(v);
        }
    }
    Execution {
        outcomes,
        k: m.k.clone(),
        findings: m.findings.clone(),
        stalled: stall.is_some(),
        deadlock: stall.flatten(),
    }
}

/// What one step left the thread with.
enum Next {
    /// It finished an operation and has another one to start.
    Start,
    /// It finished its last operation.
    Finished,
    Wants(Request),
    /// It asked for a lock it holds (the core's `lock-recursion`): it waits forever, holding
    /// its locks.
    Stuck,
    /// After this step no thread can step and some have work: the run is over, with the
    /// wait-for cycle if there is one (`Sched::detect_deadlock`, a `deadlock` finding).
    Stalled(Option<String>),
}

/// One step of `t` under the model mutex (`Sched::step_with`, the core's executor step: start or
/// answer, run to the next request, the findings, recursion), then the release of the cells of
/// the locks the step released and the core's stall rule.
fn step(
    sh: &Shared,
    t: Tid,
    real: &mut RealTrylock,
    held: &mut Vec<Lock>,
    outs: &mut Vec<OpOutcome>,
) -> Next {
    let mut m = sh.model.lock().unwrap();
    let out = m.step_with(t, real);
    let trace = m.k.trace.as_mut().map(std::mem::take).unwrap_or_default();
    // The cells are released in the order the core released the locks, one loom operation each:
    // between two releases of one step another thread may take the first lock and find the
    // second still taken, as it can in the kernel between two mutex_unlock calls.
    let released: Vec<Lock> = trace
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::Release(l) => Some(l),
            _ => None,
        })
        .collect();
    for l in &released {
        let i = held.iter().position(|h| h == l);
        let i = i.unwrap_or_else(|| {
            panic!("[driver internal bug] t{t} released {l} the driver did not give it")
        });
        held.remove(i);
    }
    sh.journal.extend(trace.into_iter().map(Entry::Core));
    if let StepOutcome::Finished(c) = out {
        let still: Vec<Lock> = m.k.held_by(t).collect();
        assert!(
            still.is_empty(),
            "[finding] `{}` finished holding {still:?}",
            c.op
        );
        outs.push(OpOutcome {
            op: c.op,
            result: c.result,
            contended: c.contended,
        });
    }
    let mut next = if m.lanes[t as usize].stuck {
        if let Status::Wants(req) = m.threads.status(t) {
            sh.journal.push(Entry::Wants(t, req));
        }
        sh.journal.push(Entry::Stuck(t));
        Next::Stuck
    } else {
        match m.threads.status(t) {
            Status::Idle if m.lanes[t as usize].queue.is_empty() => Next::Finished,
            Status::Idle => Next::Start,
            Status::Wants(req) => {
                sh.journal.push(Entry::Wants(t, req));
                Next::Wants(req)
            }
            Status::Done(_) => unreachable!("[driver internal bug] t{t} left done"),
        }
    };
    if m.runnable().is_empty() && m.unfinished() {
        let cycle = m.detect_deadlock().map(|v| v.detail);
        sh.journal.push(Entry::Stall(t, cycle.clone()));
        next = Next::Stalled(cycle);
    }
    drop(m);
    for l in released {
        sh.cell(l).unlock();
    }
    next
}

/// A thread: its lane's operations one after another, each request carried out on the real
/// mutexes. Returns their outcomes, and the stall if this thread's step found one.
fn run_thread(sh: &Shared, t: Tid) -> (Vec<OpOutcome>, Option<Option<String>>) {
    let mut outs = Vec::new();
    let mut held: Vec<Lock> = Vec::new();
    let mut real = RealTrylock::default();
    let mut steps = 0u32;
    #[cfg(not(loom))]
    sh.gate.wait();
    loop {
        steps += 1;
        assert!(
            steps <= STEPS_PER_OP_MAX,
            "[core internal bug] t{t}: an operation took {STEPS_PER_OP_MAX} steps, but the core \
             bounds every retry loop (RETRIES_MAX)"
        );
        let next = step(sh, t, &mut real, &mut held, &mut outs);
        // Std driver: give the other threads a chance between steps (loom decides by itself).
        #[cfg(not(loom))]
        std::thread::yield_now();
        match next {
            Next::Start => steps = 0,
            Next::Finished | Next::Stuck => return (outs, None),
            Next::Stalled(cycle) => {
                abort_all(sh);
                return (outs, Some(cycle));
            }
            Next::Wants(Request::Lock(l)) => {
                if sh.cell(l).lock(&sh.abort).is_err() {
                    return (outs, None);
                }
                held.push(l);
            }
            Next::Wants(Request::TryLock(l)) => {
                real.taken = !sh.cell(l).try_lock();
                if !real.taken {
                    held.push(l);
                }
            }
            Next::Wants(Request::Sleep) => msleep(),
            Next::Wants(Request::Alloc(_) | Request::Build(_)) => {}
        }
    }
}

/// `msleep()`: let the other threads run first. loom's `yield_now` is exactly the core's contract
/// for `Request::Sleep`: a yielded thread is scheduled again only when no other thread can run.
#[cfg(loom)]
fn msleep() {
    loom::thread::yield_now();
}

/// `msleep(1)` on real threads: a millisecond, as the kernel sleeps at least.
#[cfg(not(loom))]
fn msleep() {
    std::thread::sleep(std::time::Duration::from_millis(1));
}

/// The run stalled: every thread blocked on a cell gives up.
fn abort_all(sh: &Shared) {
    sh.abort.store(true, std::sync::atomic::Ordering::SeqCst);
    for c in &sh.cells {
        c.wake_all();
    }
}

// ----- the observable state ------------------------------------------------------------------

pub use crate::observable::observable;

// ----- the verdict ---------------------------------------------------------------------------

/// What every execution must satisfy, whatever the protocol and scenario:
/// - it is linearizable ([`Linearizer::judge`]): no finding (lock coverage among them) that the
///   sequential runs of the same operations do not have, except the tolerated `share-leak`;
/// - [`expectations`]: what the owners were told is what a call of each function does.
///
/// Which findings a protocol has at all is pinned by the caller ([`crate::cases::Expect`]).
pub fn verify(oracle: &Linearizer, e: &Execution, journal: &Journal) -> Verdict {
    let fail = |why: String| -> ! { panic!("{why}\n  interleaving:\n{}", journal.render()) };
    let v = oracle.judge(e).unwrap_or_else(|why| fail(why));
    if let Err(why) = expectations(e) {
        fail(format!("{why}\n  outcomes: {}", e.outcome_line()));
    }
    v
}

// ----- the drivers of whole scenarios ------------------------------------------------------------

/// The verdict on `e` ([`verify`]), or none when it stalled (a deadlock, or a thread stuck on a
/// lock it holds: the run is over with operations unfinished, and its findings say why).
pub fn judge(oracle: &Linearizer, e: &Execution, journal: &Journal) -> Option<Verdict> {
    (!e.stalled).then(|| verify(oracle, e, journal))
}

/// The std driver: runs the scenario `iterations` times on real threads.
#[cfg(not(loom))]
pub fn run_std(s: &Scenario, proto: Protocol, iterations: usize) -> Result<Report, String> {
    let seq = s.prepare(proto)?;
    let oracle = linearizer(&seq, &s.threads);
    let journal = Journal::default();
    let mut report = Report::default();
    let t0 = std::time::Instant::now();
    for _ in 0..iterations {
        let e = execute(&seq.seq().k, &seq.seq().order, &s.threads, &journal);
        let v = judge(&oracle, &e, &journal);
        report.add(&e, v, || journal.render());
    }
    report.elapsed = t0.elapsed();
    Ok(report)
}

/// Loom: every interleaving of the scenario within a preemption bound.
#[cfg(loom)]
pub mod model {
    use super::*;

    /// loom's per-execution bound on scheduling branches. Every step and every kernel lock is a
    /// loom operation, so executions are longer than loom's default of 1000 allows; an execution
    /// that reaches this bound is a runaway and loom fails it.
    pub const BRANCHES_MAX: usize = 20_000;

    /// A loom builder from the environment (`LOOM_MAX_PREEMPTIONS`, `LOOM_CHECKPOINT_FILE`,
    /// `LOOM_CHECKPOINT_INTERVAL`, `LOOM_MAX_PERMUTATIONS`, `LOOM_MAX_BRANCHES`, ...), with
    /// `preemptions` as the preemption bound when `LOOM_MAX_PREEMPTIONS` is not set.
    pub fn builder(preemptions: usize) -> loom::model::Builder {
        let mut b = loom::model::Builder::new();
        if b.preemption_bound.is_none() {
            b.preemption_bound = Some(preemptions);
        }
        if std::env::var_os("LOOM_MAX_BRANCHES").is_none() {
            b.max_branches = BRANCHES_MAX;
        }
        b
    }

    /// The preemption bound in force for a scenario that asks for `preemptions`.
    pub fn bound(preemptions: usize) -> usize {
        builder(preemptions).preemption_bound.unwrap_or(preemptions)
    }

    /// Runs every interleaving (within `preemptions`) and verifies each execution that did not
    /// stall; panics with the failing interleaving on the first execution that does not verify.
    /// The executions that stalled (the core's stall rule, found by the driver: a deadlock, a
    /// thread stuck on a lock it holds) are counted in the report with their findings. loom's
    /// own deadlock detector fires only if the driver misses a stall (a driver bug).
    pub fn explore(s: &Scenario, proto: Protocol, preemptions: usize) -> Result<Report, String> {
        let seq = s.prepare(proto)?;
        let oracle = std::sync::Arc::new(linearizer(&seq, &s.threads));
        let start = std::sync::Arc::new((seq.seq().k.clone(), seq.seq().order.clone()));
        let threads = s.threads.clone();
        let journal = Journal::default();
        let report = std::sync::Arc::new(std::sync::Mutex::new(Report::default()));
        let t0 = std::time::Instant::now();
        {
            let (report, journal) = (report.clone(), journal.clone());
            builder(preemptions).check(move || {
                let e = execute(&start.0, &start.1, &threads, &journal);
                let v = judge(&oracle, &e, &journal);
                report.lock().unwrap().add(&e, v, || journal.render());
            });
        }
        let mut r = std::mem::take(&mut *report.lock().unwrap());
        r.elapsed = t0.elapsed();
        Ok(r)
    }
}
