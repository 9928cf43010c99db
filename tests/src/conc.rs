//! A concurrent driver of the core's steps over real mutexes (issue 6): `std::sync` normally,
//! `loom::sync` under `--cfg loom`, so loom can enumerate every interleaving of the lock protocol.
//!
//! # How a thread runs an operation
//!
//! The model memory (the [`Kernel`]) sits behind one mutex that is used only to take a step
//! atomically. Each kernel lock the core names (`direct_mutex`, `ftrace_lock`, every `tr->mutex`,
//! `klp_mutex`, every `regex_lock`, ...) is a real [`LockCell`] (a `Mutex<bool>` plus a
//! `Condvar`, so that ownership can cross step boundaries). One step of thread `t`:
//!
//! 1. under the model mutex: answer the previous request (or start the operation), run the core
//!    until it asks for the next decision, drain the findings the core raised inside the step
//!    (lock coverage among them), and note which kernel locks the step released, in order; for a
//!    blocking request check recursion and lockdep's order rule ([`LockOrder`], carried over from
//!    the setup);
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
//! So a thread blocked in the kernel is a thread blocked on a real mutex: with loom an order
//! cycle between two paths is a deadlock that loom itself detects and reports
//! (`"deadlock; threads = ..."`). Without loom, the driver finds wait-for cycles itself (under the
//! model mutex, where the wait-for graph is consistent), aborts the other threads and reports
//! [`Execution::deadlock`]. The threads share the driver's state through `std::sync::Arc`, not
//! loom's, so that loom's deadlock panic unwinds cleanly and can be caught
//! (`model::expect_deadlock`, loom only).
//!
//! # What an execution is checked against
//!
//! [`verify`]: (1) [`Linearizer`]: the execution is *linearizable* to its operations. Every operation
//! that failed because a trylock found its lock taken (`-EAGAIN` from contention) must leave no
//! trace; the others must match some sequential order (respecting each thread's program order)
//! run on the sequential driver from the same setup: the same result for every operation, the
//! same [`observable`] state, and no finding the sequential order does not have, except the
//! tolerated [`Property::ShareLeak`] (SPEC §3.6), which contention can cause and which is
//! reported apart. (2) [`expectations`]: what the owners can check from their own bookkeeping
//! (contention fails only with `-EAGAIN` and leaves no livepatch/kprobe behind; a patched or
//! probed function is redirected; every linked program runs). (3) the reference oracle of issue 3
//! (`ftsim_core::oracle::Model`, which knows the policy and not the code) follows the setup and
//! the explaining order, then judges the operations that failed from contention with the calls of
//! the final state; what it reports is part of the verdict (`oracle:property@function`). Then the
//! test pins, per scenario and preset, the set of outcomes and findings over all executions
//! ([`CASES`], [`Expect`]).
//!
//! # Running
//!
//! ```text
//! # every scenario under every preset (55 tests, 15-30 s on two shared cores):
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
//! ([`Case::preemptions`], overridden by `LOOM_MAX_PREEMPTIONS`); loom's branch bound
//! `model::BRANCHES_MAX`; the core bounds its retry loops (`RETRIES_MAX`, a `livelock` finding)
//! and the driver bounds the steps of one operation ([`STEPS_PER_OP_MAX`]). Measured on two
//! shared cores: a two-thread scenario takes 0.1-0.8 s per preset at bound 3 (1.5k-8.5k
//! executions), the three-thread one about 1 s per preset at bound 2 (3k-6k executions). Bound 4
//! for every two-thread scenario took 2 min, bound 5 7 min, bound 3 for the three-thread one
//! 5 min; all found exactly the pinned verdicts.

use ftsim_core::check::check;
use ftsim_core::errno::Errno;
use ftsim_core::findings::Findings;
use ftsim_core::ids::{Addr, FnId, OpsId, Tid};
use ftsim_core::kernel::{fl, CallSite, Kernel};
use ftsim_core::lockdep;
use ftsim_core::locks::{Lock, LockOrder};
use ftsim_core::observe::{call, calls, Body, Tramp};
use ftsim_core::op::Op;
use ftsim_core::oracle::Model as Reference;
use ftsim_core::property::{Property, Violation};
use ftsim_core::protocol::Protocol;
use ftsim_core::seq::{Outcome, Sequential};
use ftsim_core::step::{Event, EventKind, Request, Status};
use ftsim_core::world::World;
use std::collections::{BTreeSet, HashMap};
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

/// Most threads one execution may use (loom's own limit is 4 besides the main thread).
pub const THREADS_MAX: usize = 4;

/// Most scheduling steps one thread takes for one operation; a thread that reaches it is a
/// runaway retry loop in the model, reported as `livelock` rather than hanging the test.
pub const STEPS_PER_OP_MAX: u32 = 10_000;

/// A kernel mutex whose ownership can cross step boundaries: `locked` is the mutex, the std or
/// loom `Mutex` only guards the flag.
pub struct LockCell {
    locked: Mutex<bool>,
    freed: Condvar,
}

/// A thread gave up waiting because another thread found a deadlock (std driver only).
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
            #[cfg(not(loom))]
            if abort.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(Aborted);
            }
            g = self.freed.wait(g).unwrap();
        }
        let _ = abort;
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

    /// Wakes every waiter so it can see the abort flag (std driver only).
    #[cfg(not(loom))]
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
    /// The thread found a wait-for cycle when it went to sleep on a lock.
    Cycle(Tid, String),
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
            Entry::Cycle(t, d) => write!(f, "t{t} !! wait-for cycle: {d}"),
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

/// The state behind the model mutex.
struct Model {
    k: Kernel,
    order: LockOrder,
    findings: Findings,
    /// The lock each thread sleeps on, if any (for the wait-for graph).
    waits: Vec<Option<Lock>>,
}

impl Model {
    fn record(&mut self, v: Violation) {
        self.findings.insert(v);
    }

    /// The wait-for cycle through `t`, if `t` now sleeping closes one.
    fn wait_cycle(&self, t: Tid) -> Option<String> {
        let cycle = lockdep::wait_cycle(&self.k, t, |x| self.waits[x as usize])?;
        (cycle[0].0 == t).then(|| lockdep::describe(&self.k, &cycle))
    }
}

/// Everything the threads share.
struct Shared {
    model: Mutex<Model>,
    cells: Vec<LockCell>,
    functions: u16,
    journal: Journal,
    /// Set by the std driver when it finds a deadlock, so blocked threads give up.
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

/// What one operation of one thread did.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpOutcome {
    pub op: Op,
    pub result: Result<(), Errno>,
    /// A trylock of the operation found its lock taken.
    pub contended: bool,
}

impl OpOutcome {
    /// Failed because of contention: must leave no trace.
    pub fn dropped(&self) -> bool {
        self.contended && self.result.is_err()
    }
}

impl fmt::Display for OpOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` = {}", self.op, show_result(self.result))?;
        if self.contended {
            write!(f, " (contended)")?;
        }
        Ok(())
    }
}

/// `ok` or the errno's name.
pub fn show_result(r: Result<(), Errno>) -> &'static str {
    match r {
        Ok(()) => "ok",
        Err(e) => e.name(),
    }
}

/// The result of one concurrent execution.
pub struct Execution {
    /// Per thread, its operations in program order (shorter if the thread was aborted).
    pub outcomes: Vec<Vec<OpOutcome>>,
    /// The final state.
    pub k: Kernel,
    /// Findings raised inside steps, lockdep's order rule, and `check` on the final state;
    /// deduplicated by (property, function).
    pub findings: Findings,
    /// The wait-for cycle the std driver found (never set under loom: loom panics first).
    pub deadlock: Option<String>,
}

/// A finding as `property@function` (or just the property).
pub fn finding_id(v: &Violation) -> String {
    match v.func {
        Some(f) => format!("{}@{f}", v.property),
        None => v.property.to_string(),
    }
}

impl Execution {
    /// The outcomes in thread order: `ok`, an errno name, `*` when contended.
    pub fn compact(&self) -> String {
        let v: Vec<String> = self
            .outcomes
            .iter()
            .flatten()
            .map(|o| {
                format!(
                    "{}{}",
                    show_result(o.result),
                    if o.contended { "*" } else { "" }
                )
            })
            .collect();
        v.join(" ")
    }

    /// One line per operation.
    pub fn outcome_line(&self) -> String {
        let v: Vec<String> = self
            .outcomes
            .iter()
            .enumerate()
            .flat_map(|(t, ops)| ops.iter().map(move |o| format!("t{t} {o}")))
            .collect();
        v.join(", ")
    }
}

/// Runs `threads[t]` on thread `t`, concurrently, from the state `start` (which must be
/// quiescent), and returns what happened. Every step is journaled into `journal` (cleared
/// first), which outlives a loom panic.
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
    assert!(start.quiescent(), "the start state must be quiescent");
    journal.clear();
    let mut k = start.clone();
    k.ensure_threads(threads.len());
    k.trace = Some(Vec::new());
    let functions = k.fns.len() as u16;
    let ncells = 5 + functions as usize + k.ops.len();
    let shared = Arc::new(Shared {
        model: Mutex::new(Model {
            k,
            order: order.clone(),
            findings: Findings::new(),
            waits: vec![None; threads.len()],
        }),
        cells: (0..ncells).map(|_| LockCell::new()).collect(),
        functions,
        journal: journal.clone(),
        abort: std::sync::atomic::AtomicBool::new(false),
        #[cfg(not(loom))]
        gate: std::sync::Barrier::new(threads.len()),
    });
    let handles: Vec<_> = threads
        .iter()
        .enumerate()
        .map(|(t, ops)| {
            let sh = shared.clone();
            let ops = ops.clone();
            sync::thread::spawn(move || run_thread(&sh, t as Tid, &ops))
        })
        .collect();
    let mut outcomes = Vec::new();
    let mut deadlock = None;
    for h in handles {
        match h.join() {
            Ok((outs, dl)) => {
                outcomes.push(outs);
                deadlock = deadlock.or(dl);
            }
            Err(p) => std::panic::resume_unwind(p),
        }
    }
    let mut m = shared.model.lock().unwrap();
    m.k.trace = None;
    if deadlock.is_none() {
        assert!(
            m.k.quiescent(),
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
        deadlock,
    }
}

/// What one step left the thread with.
enum Next {
    Done(OpOutcome),
    Wants(Request),
    /// The std driver found a deadlock through this thread.
    #[cfg_attr(loom, allow(dead_code))]
    Deadlock(String),
}

/// One step of `t` under the model mutex: start or answer, run, drain findings, release the
/// cells of the locks the step released, and check a blocking request.
fn step(sh: &Shared, t: Tid, op: &Op, starting: bool, answer: bool, held: &mut Vec<Lock>) -> Next {
    let mut m = sh.model.lock().unwrap();
    m.waits[t as usize] = None;
    if starting {
        m.k.start(t, op.clone());
    } else {
        m.k.answer(t, answer);
    }
    let status = m.k.run(t);
    for v in std::mem::take(&mut m.k.violations) {
        m.record(v);
    }
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
    let next = match status {
        Status::Done(result) => {
            let still: Vec<Lock> = m.k.held_by(t).collect();
            assert!(
                still.is_empty(),
                "[finding] `{op}` finished holding {still:?}"
            );
            let contended = m.k.threads[t as usize].contended;
            Next::Done(OpOutcome {
                op: op.clone(),
                result,
                contended,
            })
        }
        Status::Wants(req) => {
            sh.journal.push(Entry::Wants(t, req));
            if let Request::Lock(l) = req {
                blocking_checks(&mut m, sh, t, l)
            } else {
                Next::Wants(req)
            }
        }
        Status::Idle => unreachable!("[driver internal bug] thread {t} idle inside an operation"),
    };
    drop(m);
    for l in released {
        sh.cell(l).unlock();
    }
    next
}

/// Recursion and lock order for a blocking acquisition; the wait-for cycle it may close.
fn blocking_checks(m: &mut Model, sh: &Shared, t: Tid, l: Lock) -> Next {
    if m.k.holds(t, l) {
        let op = m.k.threads[t as usize]
            .op
            .as_ref()
            .map(|o| o.to_string())
            .unwrap_or_default();
        panic!(
            "[finding] lock-recursion: t{t} `{op}` acquires {l} while already holding it\n{}",
            sh.journal.render()
        );
    }
    if let Some(v) = lockdep::order(&mut m.order, &m.k, t, l) {
        m.record(v);
    }
    m.waits[t as usize] = Some(l);
    if let Some(cycle) = m.wait_cycle(t) {
        sh.journal.push(Entry::Cycle(t, cycle.clone()));
        // Under loom the thread goes to sleep anyway: loom's own detector must report it.
        #[cfg(not(loom))]
        return Next::Deadlock(cycle);
    }
    Next::Wants(Request::Lock(l))
}

/// A thread: its operations one after another. Returns their outcomes, and the deadlock if this
/// thread found one (std driver).
fn run_thread(sh: &Shared, t: Tid, ops: &[Op]) -> (Vec<OpOutcome>, Option<String>) {
    let mut outs = Vec::new();
    let mut held: Vec<Lock> = Vec::new();
    #[cfg(not(loom))]
    sh.gate.wait();
    for op in ops {
        let mut starting = true;
        let mut answer = true;
        let mut steps = 0u32;
        loop {
            steps += 1;
            assert!(
                steps <= STEPS_PER_OP_MAX,
                "[finding] livelock: `{op}` took {STEPS_PER_OP_MAX} steps"
            );
            let next = step(sh, t, op, starting, answer, &mut held);
            starting = false;
            // Std driver: give the other threads a chance between steps (loom decides by itself).
            #[cfg(not(loom))]
            std::thread::yield_now();
            match next {
                Next::Done(o) => {
                    outs.push(o);
                    break;
                }
                Next::Wants(Request::Lock(l)) => {
                    if sh.cell(l).lock(&sh.abort).is_err() {
                        return (outs, None);
                    }
                    held.push(l);
                    answer = true;
                }
                Next::Wants(Request::TryLock(l)) => {
                    answer = sh.cell(l).try_lock();
                    if answer {
                        held.push(l);
                    }
                }
                Next::Wants(Request::Sleep) => {
                    msleep();
                    answer = true;
                }
                Next::Wants(Request::Alloc(_) | Request::Build(_)) => answer = true,
                Next::Deadlock(cycle) => {
                    abort_all(sh);
                    return (outs, Some(cycle));
                }
            }
        }
    }
    (outs, None)
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

#[cfg(not(loom))]
fn abort_all(sh: &Shared) {
    sh.abort.store(true, std::sync::atomic::Ordering::SeqCst);
    for c in &sh.cells {
        c.wake_all();
    }
}

#[cfg(loom)]
fn abort_all(_sh: &Shared) {
    unreachable!("[driver internal bug] the loom driver never aborts: loom reports deadlocks");
}

// ----- the observable state ------------------------------------------------------------------

fn norm_addr(a: Addr) -> String {
    match a {
        Addr::Image { tr, .. } => format!("tramp({tr})"),
        Addr::Sample { .. } => "sample".into(),
    }
}

fn prog_kinds(k: &Kernel, f: FnId, progs: &[ftsim_core::ids::ProgId]) -> Vec<String> {
    progs
        .iter()
        .map(|p| {
            let kind = k
                .tr(f)
                .links
                .iter()
                .find(|(_, q)| q == p)
                .map(|(kind, _)| kind.to_string());
            kind.unwrap_or_else(|| "unlinked".into())
        })
        .collect()
}

fn owner_name(k: &Kernel, o: OpsId) -> String {
    k.owner(o).to_string()
}

/// The state a linearization must reproduce, as one canonical text: per function its record,
/// what a call executes ([`call`]) and the owners' bookkeeping; per ops its flags and hashes; the
/// ops list; direct_functions; modules and tracers. Left out, because they depend on the order
/// in which equivalent steps ran and not on what the design promises: image serials and program
/// ids (programs are named by kind), and the sharing state (`tr->flags` SHARE, v2's
/// `indirect_call`, `SHARE_IPMODIFY`, and the image's ORIG_STACK bit): a trampoline left sharing
/// is the tolerated `share-leak` (SPEC §3.6), and what ORIG_STACK changes is in the call's body.
pub fn observable(k: &Kernel) -> String {
    let mut s = String::new();
    for i in 0..k.fns.len() {
        let f = FnId(i as u16);
        let st = k.fstate(f);
        let r = st.rec;
        let site = match r.site {
            CallSite::Nop => "nop".to_string(),
            CallSite::Caller => "caller".to_string(),
            CallSite::Direct(a) => format!("direct {}", norm_addr(a)),
        };
        let _ = write!(
            s,
            "{f}: rec present={} disabled={} count={} ipmodify={} direct={} site={site};",
            r.present, r.disabled, r.count, r.ipmodify, r.direct
        );
        if let Some(c) = call(k, f) {
            let cbs: Vec<String> = c.callbacks.iter().map(|o| owner_name(k, *o)).collect();
            let tramp = match &c.tramp {
                None => "none".to_string(),
                Some(Tramp::Image {
                    addr,
                    call_orig,
                    progs,
                    ..
                }) => {
                    format!(
                        "{} call_orig={call_orig} progs={:?}",
                        norm_addr(*addr),
                        prog_kinds(k, f, progs)
                    )
                }
                Some(Tramp::Sample { .. }) => "sample".to_string(),
                Some(Tramp::Freed { addr }) => format!("freed {}", norm_addr(*addr)),
            };
            let body = match c.body {
                Body::Original => "original".to_string(),
                Body::Redirected(o) => format!("target of {}", owner_name(k, o)),
                Body::Freed => "garbage".to_string(),
            };
            let _ = write!(s, " call callbacks={cbs:?} tramp={tramp} body={body};");
        }
        let links: Vec<String> = st
            .tr
            .links
            .iter()
            .map(|(kind, _)| kind.to_string())
            .collect();
        let image = st
            .tr
            .cur_image
            .as_ref()
            .map(|im| (im.call_orig, prog_kinds(k, f, &im.progs)));
        let dfs: Vec<String> = k
            .direct_functions
            .all_for(f)
            .map(|e| norm_addr(e.addr))
            .collect();
        let _ = writeln!(
            s,
            " klp_stack={} klp_registered={} kprobes={} direct_user={} links={links:?} image={image:?} call_orig={} direct_functions={dfs:?}",
            st.klp_stack,
            st.klp_registered,
            st.kprobes,
            st.direct_user.is_some(),
            st.tr.flags.call_orig,
        );
    }
    for (i, o) in k.ops.iter().enumerate() {
        let id = OpsId(i as u16);
        let flags = o.flags & !fl::SHARE_IPMODIFY;
        if flags == 0
            && o.filter.is_empty()
            && o.notrace.is_empty()
            && !o.func_set
            && !o.trampoline_set
        {
            continue;
        }
        let _ = writeln!(
            s,
            "{}: flags={} filter={:?} notrace={:?} func={} trampoline={} direct_call={:?} hash_of={:?}",
            owner_name(k, id),
            fl::names(flags),
            o.filter,
            o.notrace,
            o.func_set,
            o.trampoline_set,
            o.direct_call.map(norm_addr),
            o.hash_of.map(|h| owner_name(k, h)),
        );
    }
    let list: Vec<String> = k.ops_list.iter().map(|o| owner_name(k, *o)).collect();
    let _ = writeln!(s, "ftrace_ops_list={list:?}");
    let _ = writeln!(
        s,
        "modules={:?} tracers={:?} kprobe_ftrace_enabled={}",
        k.modules, k.tracers, k.kprobe_ftrace_enabled
    );
    s
}

// ----- the verdict -----------------------------------------------------------------------------

/// One sequential order of the operations that did not fail from contention.
#[derive(Clone, Debug)]
struct Candidate {
    /// (thread, index in the thread) in the order run.
    order: Vec<(usize, usize)>,
    results: HashMap<(usize, usize), Result<(), Errno>>,
    observable: String,
    findings: Findings,
    /// The reference oracle after the order, and what it found along it.
    reference: Reference,
    oracle: Vec<Violation>,
}

/// How an execution was explained.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Verdict {
    /// The outcomes in thread order, compact: `ok`, an errno name, with `*` when the operation
    /// was contended (a trylock found its lock taken), e.g. `ok EAGAIN*`.
    pub compact: String,
    /// The findings, compact: property identifier and function, e.g. `share-leak@f0`.
    pub finding_ids: BTreeSet<String>,
    /// The outcomes, in thread order.
    pub outcomes: String,
    /// The sequential order that explains the execution, e.g. `t1 klp-enable f0; t0 bpf-link fexit f0`.
    pub order: String,
    /// Operations that failed from contention and left no trace.
    pub dropped: Vec<String>,
    /// Findings of the execution (those explained by the order, and the tolerated ones).
    pub findings: Vec<String>,
    /// Tolerated findings (`share-leak`) the sequential order does not have, as
    /// `property@function`: caused by contention.
    pub contention_tolerated: Vec<String>,
    /// What the reference oracle (`ftsim_core::oracle`) says about the outcomes and the calls
    /// along the explaining order (in `finding_ids` as `oracle:property@function`).
    pub oracle: Vec<String>,
}

/// The linearizability verdict for one scenario: built once from the setup state and the threads'
/// operations, then asked about every execution. Sequential orders are computed once per set of
/// dropped operations and cached.
pub struct Linearizer {
    start: Start,
    threads: Vec<Vec<Op>>,
    cache: std::sync::Mutex<HashMap<Vec<bool>, std::sync::Arc<Vec<Candidate>>>>,
}

impl Linearizer {
    /// `start` is the state after the setup operations ([`Scenario::prepare`]).
    pub fn new(start: &Start, threads: &[Vec<Op>]) -> Linearizer {
        Linearizer {
            start: start.clone(),
            threads: threads.to_vec(),
            cache: Default::default(),
        }
    }

    fn candidates(&self, dropped: &[bool]) -> std::sync::Arc<Vec<Candidate>> {
        if let Some(c) = self.cache.lock().unwrap().get(dropped) {
            return c.clone();
        }
        let mut included: Vec<Vec<usize>> = vec![Vec::new(); self.threads.len()];
        let mut n = 0;
        for (t, ops) in self.threads.iter().enumerate() {
            for i in 0..ops.len() {
                if !dropped[n] {
                    included[t].push(i);
                }
                n += 1;
            }
        }
        let mut out = Vec::new();
        let mut order = Vec::new();
        let mut next = vec![0usize; self.threads.len()];
        self.interleavings(&included, &mut next, &mut order, &mut out);
        let out = std::sync::Arc::new(out);
        self.cache
            .lock()
            .unwrap()
            .insert(dropped.to_vec(), out.clone());
        out
    }

    fn interleavings(
        &self,
        inc: &[Vec<usize>],
        next: &mut [usize],
        order: &mut Vec<(usize, usize)>,
        out: &mut Vec<Candidate>,
    ) {
        let mut any = false;
        for t in 0..inc.len() {
            if next[t] < inc[t].len() {
                any = true;
                order.push((t, inc[t][next[t]]));
                next[t] += 1;
                self.interleavings(inc, next, order, out);
                next[t] -= 1;
                order.pop();
            }
        }
        if !any {
            out.push(self.run_order(order));
        }
    }

    fn run_order(&self, order: &[(usize, usize)]) -> Candidate {
        let Start {
            mut seq,
            mut reference,
        } = self.start.clone();
        let mut results = HashMap::new();
        let mut findings = Findings::new();
        let mut oracle = Vec::new();
        for &(t, i) in order {
            let op = &self.threads[t][i];
            let out = seq.apply(op);
            results.insert((t, i), out.result);
            findings.extend(out.violations.iter().cloned());
            oracle.extend(reference.step(op, &out, &calls(&seq.k)));
        }
        Candidate {
            order: order.to_vec(),
            results,
            observable: observable(&seq.k),
            findings,
            reference,
            oracle,
        }
    }

    fn show_order(&self, order: &[(usize, usize)]) -> String {
        let v: Vec<String> = order
            .iter()
            .map(|&(t, i)| format!("t{t} {}", self.threads[t][i]))
            .collect();
        v.join("; ")
    }

    /// The reference oracle's verdict (`ftsim_core::oracle`, issue 3) on the execution explained
    /// by candidate `c`: what it found along the order, then the operations that failed from
    /// contention, judged last (they left no trace, so where they go does not matter) with the
    /// calls of the final state.
    fn reference_verdict(&self, c: &Candidate, e: &Execution) -> Vec<Violation> {
        let mut v = c.oracle.clone();
        let mut reference = c.reference.clone();
        let final_calls = calls(&e.k);
        for o in e.outcomes.iter().flatten().filter(|o| o.dropped()) {
            let out = Outcome {
                result: o.result,
                violations: Vec::new(),
                contended: true,
                faulted: false,
                stuck: false,
            };
            v.extend(reference.step(&o.op, &out, &final_calls));
        }
        v
    }

    /// Explains `e` by a sequential order, or says why none fits.
    pub fn judge(&self, e: &Execution) -> Result<Verdict, String> {
        if let Some(d) = &e.deadlock {
            return Err(format!("deadlock: {d}"));
        }
        let mut dropped = Vec::new();
        let mut dropped_names = Vec::new();
        for (t, ops) in self.threads.iter().enumerate() {
            assert_eq!(
                e.outcomes[t].len(),
                ops.len(),
                "[driver internal bug] thread {t} did not finish"
            );
            for o in &e.outcomes[t] {
                dropped.push(o.dropped());
                if o.dropped() {
                    dropped_names.push(format!("t{t} {}", o.op));
                }
            }
        }
        let obs = observable(&e.k);
        let cands = self.candidates(&dropped);
        // `livelock` is a verdict only on fair schedules (a sleeper runs again within a bound):
        // loom's `yield_now` keeps that contract, the OS scheduler of real threads does not (a
        // loaded machine can leave a woken thread off the CPU for every retry window).
        let tolerated =
            |p: Property| p == Property::ShareLeak || (cfg!(not(loom)) && p == Property::Livelock);
        let mut near = Vec::new();
        for c in cands.iter() {
            let results_match = c
                .order
                .iter()
                .all(|(t, i)| Some(&e.outcomes[*t][*i].result) == c.results.get(&(*t, *i)));
            if !results_match {
                continue;
            }
            if c.observable != obs {
                near.push(format!(
                    "order `{}`: same results, different state:\n{}",
                    self.show_order(&c.order),
                    diff(&c.observable, &obs)
                ));
                continue;
            }
            let extra: Vec<&Violation> = e
                .findings
                .iter()
                .filter(|v| !tolerated(v.property) && !c.findings.contains(v.property, v.func))
                .collect();
            if !extra.is_empty() {
                let ex: Vec<String> = extra.iter().map(|v| v.to_string()).collect();
                near.push(format!(
                    "order `{}`: same state, but findings only the concurrent run has: {}",
                    self.show_order(&c.order),
                    ex.join("; ")
                ));
                continue;
            }
            let contention_tolerated = e
                .findings
                .iter()
                .filter(|v| tolerated(v.property) && !c.findings.contains(v.property, v.func))
                .map(finding_id)
                .collect();
            let oracle = self.reference_verdict(c, e);
            let mut finding_ids: BTreeSet<String> = e.findings.iter().map(finding_id).collect();
            finding_ids.extend(oracle.iter().map(|v| format!("oracle:{}", finding_id(v))));
            return Ok(Verdict {
                compact: e.compact(),
                finding_ids,
                oracle: oracle.iter().map(|v| v.to_string()).collect(),
                outcomes: e.outcome_line(),
                order: self.show_order(&c.order),
                dropped: dropped_names,
                findings: e.findings.iter().map(|v| v.to_string()).collect(),
                contention_tolerated,
            });
        }
        Err(format!(
            "no sequential order of the operations that did not fail from contention explains the execution\n  outcomes: {}\n  findings: {:?}\n{}",
            e.outcome_line(),
            e.findings.iter().map(|v| v.to_string()).collect::<Vec<_>>(),
            if near.is_empty() { "  (no order gives the same results)".to_string() } else { near.join("\n") }
        ))
    }
}

/// The lines of `b` that differ from `a`.
fn diff(a: &str, b: &str) -> String {
    let mut s = String::new();
    for (x, y) in a.lines().zip(b.lines()) {
        if x != y {
            let _ = writeln!(s, "    sequential: {x}\n    concurrent: {y}");
        }
    }
    s
}

// ----- scenarios ---------------------------------------------------------------------------------

/// The state a scenario's threads start from: the sequential driver (kernel state and lockdep's
/// order graph) and the reference oracle, both after the setup.
#[derive(Clone, Debug)]
pub struct Start {
    pub seq: Sequential,
    pub reference: Reference,
}

/// A small concurrent scenario: a world, setup operations run sequentially first, then one list
/// of operations per thread.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub world: World,
    pub setup: Vec<Op>,
    pub threads: Vec<Vec<Op>>,
}

impl Scenario {
    /// `threads` are `;`-separated operations per thread.
    pub fn new(functions: u16, setup: &[&str], threads: &[&str]) -> Scenario {
        let parse = |s: &str| {
            s.parse::<Op>()
                .unwrap_or_else(|e| panic!("bad op `{s}`: {e}"))
        };
        Scenario {
            world: World::new(functions),
            setup: setup.iter().map(|s| parse(s)).collect(),
            threads: threads
                .iter()
                .map(|t| t.split(';').map(|s| parse(s.trim())).collect())
                .collect(),
        }
    }

    /// The state after the setup, or the setup operation that failed (the scenario does not
    /// apply to this protocol). Findings of the setup are the protocol's own business: the
    /// sequential orders the verdict compares with start from the same state, and so does the
    /// reference oracle, which followed the setup.
    pub fn prepare(&self, proto: Protocol) -> Result<Start, String> {
        let mut seq = Sequential::new(&self.world, proto);
        let mut reference = Reference::new(&self.world, &proto);
        for op in &self.setup {
            let out = seq.apply(op);
            if out.result.is_err() {
                return Err(format!("setup `{op}` = {}", show_result(out.result)));
            }
            reference.step(op, &out, &calls(&seq.k));
        }
        Ok(Start { seq, reference })
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let setup: Vec<String> = self.setup.iter().map(|o| o.to_string()).collect();
        write!(f, "setup [{}]", setup.join("; "))?;
        for (t, ops) in self.threads.iter().enumerate() {
            let v: Vec<String> = ops.iter().map(|o| o.to_string()).collect();
            write!(f, " | t{t} [{}]", v.join("; "))?;
        }
        Ok(())
    }
}

/// What every execution must satisfy, whatever the protocol and scenario:
/// - it is linearizable ([`Linearizer::judge`]): no finding (lock coverage among them) that the
///   sequential runs of the same operations do not have, except the tolerated `share-leak`;
/// - [`expectations`]: what the owners were told is what a call of each function does.
///
/// Which findings a protocol has at all is pinned by the caller ([`Expect`]).
pub fn verify(oracle: &Linearizer, e: &Execution, journal: &Journal) -> Verdict {
    let fail = |why: String| -> ! { panic!("{why}\n  interleaving:\n{}", journal.render()) };
    let v = oracle.judge(e).unwrap_or_else(|why| fail(why));
    if let Err(why) = expectations(e) {
        fail(format!("{why}\n  outcomes: {}", e.outcome_line()));
    }
    v
}

/// The verdict the owners can check themselves, from their own bookkeeping and the outcomes
/// they observed:
/// - an operation fails from contention only with `-EAGAIN`, and leaves no trace: a livepatch
///   that failed so is not on its function's stack and its ops is not registered; a kprobe that
///   failed so is not armed;
/// - every function with an enabled livepatch or an armed IPMODIFY kprobe ends its calls in the
///   redirected target, never in the original body (SPEC §3.1);
/// - a call of a function with an installed trampoline runs every linked program (SPEC §3.2).
pub fn expectations(e: &Execution) -> Result<(), String> {
    let k = &e.k;
    for o in e.outcomes.iter().flatten().filter(|o| o.dropped()) {
        if o.result != Err(Errno::EAGAIN) {
            return Err(format!("{o}: contention must fail with EAGAIN"));
        }
        let trace = match o.op {
            Op::KlpEnable(f) => {
                let st = k.fstate(f);
                let ops = k.op(k.id(ftsim_core::ids::OpsOwner::Klp(f)));
                (st.klp_stack > 0 || st.klp_registered || ops.flags != 0).then(|| {
                    format!(
                        "klp_stack={} klp_registered={} ops flags={}",
                        st.klp_stack,
                        st.klp_registered,
                        fl::names(ops.flags)
                    )
                })
            }
            Op::KprobeArm(f) => {
                (k.fstate(f).kprobes > 0).then(|| format!("{} kprobes armed", k.fstate(f).kprobes))
            }
            _ => None,
        };
        if let Some(t) = trace {
            return Err(format!("{o} left a trace: {t}"));
        }
    }
    for i in 0..k.fns.len() {
        let f = FnId(i as u16);
        let Some(c) = call(k, f) else { continue };
        let st = k.fstate(f);
        let patched = st.klp_stack > 0 && st.klp_registered;
        if (patched || st.kprobes > 0) && !matches!(c.body, Body::Redirected(_)) {
            return Err(format!(
                "{f} has {} but its call ends in {:?}",
                if patched {
                    "an enabled livepatch"
                } else {
                    "an armed kprobe"
                },
                c.body
            ));
        }
        if st.tr.cur_image.is_some() {
            let lost: Vec<String> = st
                .tr
                .links
                .iter()
                .filter(|(_, p)| !c.progs().contains(p))
                .map(|(kind, _)| kind.to_string())
                .collect();
            if !lost.is_empty() {
                return Err(format!("{f}: linked {lost:?} programs do not run"));
            }
        }
    }
    Ok(())
}

/// Everything the executions of one scenario under one protocol produced.
#[derive(Debug, Default)]
pub struct Report {
    /// Executions run (loom's iterations, or the std iterations).
    pub executions: usize,
    /// The distinct verdicts, i.e. the distinct (outcomes, explaining order, findings).
    pub verdicts: BTreeSet<Verdict>,
    /// Std driver: executions that deadlocked, with one wait-for cycle.
    pub deadlocks: usize,
    pub deadlock_example: Option<String>,
    pub elapsed: std::time::Duration,
}

impl Report {
    /// The distinct compact outcomes (`ok EAGAIN*`).
    pub fn outcomes(&self) -> BTreeSet<String> {
        self.verdicts.iter().map(|v| v.compact.clone()).collect()
    }
    /// Every finding seen (`property@function`).
    pub fn findings(&self) -> BTreeSet<String> {
        self.verdicts
            .iter()
            .flat_map(|v| v.finding_ids.iter().cloned())
            .collect()
    }
    /// The tolerated findings that only contention caused.
    pub fn contention_tolerated(&self) -> BTreeSet<String> {
        self.verdicts
            .iter()
            .flat_map(|v| v.contention_tolerated.iter().cloned())
            .collect()
    }
    /// A summary for the test output: every distinct verdict with the order that explains it.
    pub fn summary(&self) -> String {
        let mut s = format!("{} executions in {:.2?}", self.executions, self.elapsed);
        for v in &self.verdicts {
            let _ = write!(s, "\n  {} ~ [{}]", v.outcomes, v.order);
            if !v.findings.is_empty() {
                let _ = write!(s, "\n      findings: {}", v.findings.join("; "));
            }
            if !v.oracle.is_empty() {
                let _ = write!(s, "\n      oracle: {}", v.oracle.join("; "));
            }
            if !v.contention_tolerated.is_empty() {
                let _ = write!(
                    s,
                    "\n      caused by contention only: {}",
                    v.contention_tolerated.join(", ")
                );
            }
        }
        if self.deadlocks > 0 {
            let _ = write!(
                s,
                "\n  {} deadlocks, e.g. {}",
                self.deadlocks,
                self.deadlock_example.as_deref().unwrap_or("")
            );
        }
        s
    }
}

// ----- the catalogue ---------------------------------------------------------------------------

/// What a scenario does under one protocol, pinned: loom explores every interleaving (within the
/// bound) and must find exactly this; the std driver samples and must stay inside it.
#[derive(Clone, Copy, Debug)]
pub enum Expect {
    /// A setup operation fails under this protocol (e.g. `pre` cannot have a livepatch and a
    /// trampoline on one function), so the scenario does not apply.
    NotApplicable,
    /// Some interleaving deadlocks; loom reports it.
    Deadlock,
    /// Deadlock-free, with exactly these compact outcomes (thread order, `*` = contended), these
    /// findings over all executions, and these tolerated findings caused only by contention.
    Outcomes {
        outcomes: &'static [&'static str],
        findings: &'static [&'static str],
        contention: &'static [&'static str],
    },
}

/// `Expect::Outcomes`, short enough for one line of a table.
pub const fn out(
    outcomes: &'static [&'static str],
    findings: &'static [&'static str],
    contention: &'static [&'static str],
) -> Expect {
    Expect::Outcomes {
        outcomes,
        findings,
        contention,
    }
}

/// One scenario with its expectation per preset.
pub struct Case {
    pub name: &'static str,
    /// What it shows, for the test output.
    pub about: &'static str,
    pub functions: u16,
    pub setup: &'static [&'static str],
    /// One `;`-separated list of operations per thread.
    pub threads: &'static [&'static str],
    /// loom's preemption bound for this scenario (`LOOM_MAX_PREEMPTIONS` overrides it).
    pub preemptions: usize,
    /// Per preset (every preset of [`ftsim_core::protocol::PRESETS`] must be listed).
    pub expect: &'static [(&'static str, Expect)],
}

impl Case {
    pub fn scenario(&self) -> Scenario {
        Scenario::new(self.functions, self.setup, self.threads)
    }

    /// The expectation for a preset.
    pub fn expect(&self, preset: &str) -> Expect {
        let e = self.expect.iter().find(|(p, _)| *p == preset);
        e.unwrap_or_else(|| {
            panic!(
                "case `{}` has no expectation for preset `{preset}`",
                self.name
            )
        })
        .1
    }

    /// Checks a report against the expectation for `preset`.
    pub fn check_report(&self, preset: &str, r: &Report, exhaustive: bool) -> Result<(), String> {
        let Expect::Outcomes {
            outcomes,
            findings,
            contention,
        } = self.expect(preset)
        else {
            return Err(format!(
                "`{}` under {preset}: expected {:?}, but it ran to the end",
                self.name,
                self.expect(preset)
            ));
        };
        let set = |v: &[&str]| -> BTreeSet<String> { v.iter().map(|s| s.to_string()).collect() };
        let (want_o, want_f, want_c) = (set(outcomes), set(findings), set(contention));
        let got_c = r.contention_tolerated();
        let ok = if exhaustive {
            r.outcomes() == want_o && r.findings() == want_f && got_c == want_c
        } else {
            r.outcomes().is_subset(&want_o)
                && r.findings().is_subset(&want_f)
                && got_c.is_subset(&want_c)
        };
        if ok {
            return Ok(());
        }
        Err(format!(
            "`{}` under {preset} ({}):\n  outcomes: got {:?}, pinned {:?}\n  findings: got {:?}, pinned {:?}\n  from contention: got {:?}, pinned {:?}\n{}",
            self.name,
            if exhaustive { "must equal" } else { "must be within" },
            r.outcomes(),
            want_o,
            r.findings(),
            want_f,
            got_c,
            want_c,
            r.summary()
        ))
    }
}

/// The scenarios of issue 6, with what loom found for every preset (outcomes in thread order;
/// `*`: a trylock of the operation found its lock taken). What the pins say:
/// - the trylock presets never deadlock; the livepatch or kprobe side fails with `-EAGAIN` when
///   its PEER trylock finds `tr->mutex` taken, and leaves no trace (`ok EAGAIN*`); a contended
///   livepatch disable still succeeds (`ok*`) but its DISABLE_PEER is lost, so the trampoline stays
///   in sharing mode (`share-leak`, caused only by contention) in merged .. fixes-2025,
///   alt-rinse-repeat and the Debian trees; `proposed` retries the DISABLE_PEER and has none;
/// - `alt-blocking-peer` deadlocks when the trampoline is already registered (a second link, or
///   an unlink, holds `tr->mutex` and waits for `direct_mutex`, while the livepatch holds
///   `direct_mutex` and waits for `tr->mutex` in PEER / DISABLE_PEER); a first link cannot
///   deadlock (its ops is not enabled while it waits for `direct_mutex`, so no PEER is sent to it),
///   but lockdep's order rule reports the cycle (`lock-order`);
/// - findings that sequential runs have as well, pinned here as the protocol's own (`oracle:`
///   marks what the reference oracle of `ftsim_core::oracle` reports): `v2`'s
///   trampoline sets `SHARE_IPMODIFY` on its registered ops without `ftrace_lock`
///   (`lock-coverage`), and never sends DISABLE (`share-leak`); `rcu-hash-2023`'s register failure
///   leaves its direct_functions entry, so a fexit link after a livepatch fails with `EBUSY` on
///   the retry (`atomicity`, and `oracle:availability`: the shared policy allows it).
pub const CASES: &[Case] = &[
    Case {
        name: "link_fexit_vs_klp_enable",
        about:
            "BPF fexit link (first image) against livepatch enable on f0; both orders of arrival",
        functions: 1,
        setup: &[],
        threads: &["bpf-link fexit f0", "klp-enable f0"],
        preemptions: 3,
        expect: &[
            ("pre", out(&["EBUSY ok", "ok EBUSY"], &[], &[])),
            ("v2", out(&["ok EAGAIN*", "ok ok"], &["lock-coverage"], &[])),
            ("merged", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("fixes-2022", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            (
                "rcu-hash-2023",
                out(
                    &["EBUSY ok", "ok EAGAIN*", "ok ok"],
                    &["atomicity@f0", "oracle:availability@f0"],
                    &[],
                ),
            ),
            ("fixes-2025", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("alt-rinse-repeat", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("alt-blocking-peer", out(&["ok ok"], &["lock-order"], &[])),
            ("proposed", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("debian-6.1", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("debian-6.12", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("mainline-2026", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
        ],
    },
    Case {
        name: "link_fentry_vs_klp_enable",
        about: "BPF fentry link (no CALL_ORIG) against livepatch enable on f0",
        functions: 1,
        setup: &[],
        threads: &["bpf-link fentry f0", "klp-enable f0"],
        preemptions: 3,
        expect: &[
            ("pre", out(&["EBUSY ok", "ok EBUSY"], &[], &[])),
            ("v2", out(&["ok EAGAIN*", "ok ok"], &["lock-coverage"], &[])),
            ("merged", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("fixes-2022", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("rcu-hash-2023", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("fixes-2025", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("alt-rinse-repeat", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("alt-blocking-peer", out(&["ok ok"], &["lock-order"], &[])),
            ("proposed", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("debian-6.1", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("debian-6.12", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("mainline-2026", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
        ],
    },
    Case {
        name: "modify_vs_klp_enable",
        about: "a second link (fexit, modify of a registered trampoline) against livepatch enable",
        functions: 1,
        setup: &["bpf-link fentry f0"],
        threads: &["bpf-link fexit f0", "klp-enable f0"],
        preemptions: 3,
        expect: &[
            ("pre", out(&["ok EBUSY"], &[], &[])),
            ("v2", out(&["ok EAGAIN*", "ok ok"], &["lock-coverage"], &[])),
            ("merged", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("fixes-2022", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("rcu-hash-2023", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("fixes-2025", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("alt-rinse-repeat", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("alt-blocking-peer", Expect::Deadlock),
            ("proposed", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("debian-6.1", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("debian-6.12", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("mainline-2026", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
        ],
    },
    Case {
        name: "unlink_vs_klp_disable",
        about: "livepatch disable against BPF unlink (the trampoline keeps an fexit image)",
        functions: 1,
        setup: &["bpf-link fentry f0", "bpf-link fexit f0", "klp-enable f0"],
        threads: &["klp-disable f0", "bpf-unlink fentry f0"],
        preemptions: 3,
        expect: &[
            ("pre", Expect::NotApplicable),
            ("v2", out(&["ok ok"], &["share-leak@f0"], &[])),
            (
                "merged",
                out(&["ok ok", "ok* ok"], &["share-leak@f0"], &["share-leak@f0"]),
            ),
            (
                "fixes-2022",
                out(&["ok ok", "ok* ok"], &["share-leak@f0"], &["share-leak@f0"]),
            ),
            (
                "rcu-hash-2023",
                out(&["ok ok", "ok* ok"], &["share-leak@f0"], &["share-leak@f0"]),
            ),
            (
                "fixes-2025",
                out(&["ok ok", "ok* ok"], &["share-leak@f0"], &["share-leak@f0"]),
            ),
            (
                "alt-rinse-repeat",
                out(&["ok ok", "ok* ok"], &["share-leak@f0"], &["share-leak@f0"]),
            ),
            ("alt-blocking-peer", Expect::Deadlock),
            ("proposed", out(&["ok ok", "ok* ok"], &[], &[])),
            (
                "debian-6.1",
                out(&["ok ok", "ok* ok"], &["share-leak@f0"], &["share-leak@f0"]),
            ),
            (
                "debian-6.12",
                out(&["ok ok", "ok* ok"], &["share-leak@f0"], &["share-leak@f0"]),
            ),
            (
                "mainline-2026",
                out(&["ok ok", "ok* ok"], &["share-leak@f0"], &["share-leak@f0"]),
            ),
        ],
    },
    Case {
        name: "link_fexit_vs_kprobe_arm",
        about: "BPF fexit link against an IPMODIFY kprobe arm on f0",
        functions: 1,
        setup: &[],
        threads: &["bpf-link fexit f0", "kprobe-arm f0"],
        preemptions: 3,
        expect: &[
            ("pre", out(&["EBUSY ok", "ok EBUSY"], &[], &[])),
            ("v2", out(&["ok EAGAIN*", "ok ok"], &["lock-coverage"], &[])),
            ("merged", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("fixes-2022", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            (
                "rcu-hash-2023",
                out(
                    &["EBUSY ok", "ok EAGAIN*", "ok ok"],
                    &["atomicity@f0", "oracle:availability@f0"],
                    &[],
                ),
            ),
            ("fixes-2025", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("alt-rinse-repeat", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("alt-blocking-peer", out(&["ok ok"], &["lock-order"], &[])),
            ("proposed", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("debian-6.1", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("debian-6.12", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("mainline-2026", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
        ],
    },
    Case {
        name: "three_owners",
        about: "BPF fexit link, livepatch enable and IPMODIFY kprobe arm on f0, three threads",
        functions: 1,
        setup: &[],
        threads: &["bpf-link fexit f0", "klp-enable f0", "kprobe-arm f0"],
        preemptions: 2,
        expect: &[
            (
                "pre",
                out(
                    &["EBUSY EBUSY ok", "EBUSY ok EBUSY", "ok EBUSY EBUSY"],
                    &[],
                    &[],
                ),
            ),
            (
                "v2",
                out(
                    &[
                        "ok EAGAIN* EAGAIN*",
                        "ok EAGAIN* ok",
                        "ok EBUSY ok",
                        "ok ok EAGAIN*",
                        "ok ok EBUSY",
                    ],
                    &["lock-coverage"],
                    &[],
                ),
            ),
            (
                "merged",
                out(
                    &[
                        "ok EAGAIN* EAGAIN*",
                        "ok EAGAIN* ok",
                        "ok EBUSY ok",
                        "ok ok EAGAIN*",
                        "ok ok EBUSY",
                    ],
                    &[],
                    &[],
                ),
            ),
            (
                "fixes-2022",
                out(
                    &[
                        "ok EAGAIN* EAGAIN*",
                        "ok EAGAIN* ok",
                        "ok EBUSY ok",
                        "ok ok EAGAIN*",
                        "ok ok EBUSY",
                    ],
                    &[],
                    &[],
                ),
            ),
            (
                "rcu-hash-2023",
                out(
                    &[
                        "EBUSY EBUSY ok",
                        "EBUSY ok EBUSY",
                        "ok EAGAIN* EAGAIN*",
                        "ok EAGAIN* ok",
                        "ok EBUSY ok",
                        "ok ok EAGAIN*",
                        "ok ok EBUSY",
                    ],
                    &["atomicity@f0", "oracle:availability@f0"],
                    &[],
                ),
            ),
            (
                "fixes-2025",
                out(
                    &[
                        "ok EAGAIN* EAGAIN*",
                        "ok EAGAIN* ok",
                        "ok EBUSY ok",
                        "ok ok EAGAIN*",
                        "ok ok EBUSY",
                    ],
                    &[],
                    &[],
                ),
            ),
            (
                "alt-rinse-repeat",
                out(
                    &[
                        "ok EAGAIN* EAGAIN*",
                        "ok EAGAIN* ok",
                        "ok EBUSY ok",
                        "ok ok EAGAIN*",
                        "ok ok EBUSY",
                    ],
                    &[],
                    &[],
                ),
            ),
            (
                "alt-blocking-peer",
                out(&["ok EBUSY ok", "ok ok EBUSY"], &["lock-order"], &[]),
            ),
            (
                "proposed",
                out(
                    &[
                        "ok EAGAIN* EAGAIN*",
                        "ok EAGAIN* ok",
                        "ok EBUSY ok",
                        "ok ok EAGAIN*",
                        "ok ok EBUSY",
                    ],
                    &[],
                    &[],
                ),
            ),
            (
                "debian-6.1",
                out(
                    &[
                        "ok EAGAIN* EAGAIN*",
                        "ok EAGAIN* ok",
                        "ok EBUSY ok",
                        "ok ok EAGAIN*",
                        "ok ok EBUSY",
                    ],
                    &[],
                    &[],
                ),
            ),
            (
                "debian-6.12",
                out(
                    &[
                        "ok EAGAIN* EAGAIN*",
                        "ok EAGAIN* ok",
                        "ok EBUSY ok",
                        "ok ok EAGAIN*",
                        "ok ok EBUSY",
                    ],
                    &[],
                    &[],
                ),
            ),
            (
                "mainline-2026",
                out(
                    &[
                        "ok EAGAIN* EAGAIN*",
                        "ok EAGAIN* ok",
                        "ok EBUSY ok",
                        "ok ok EAGAIN*",
                        "ok ok EBUSY",
                    ],
                    &[],
                    &[],
                ),
            ),
        ],
    },
];

// ----- the drivers of whole scenarios ------------------------------------------------------------

/// The std driver: runs the scenario `iterations` times on real threads.
#[cfg(not(loom))]
pub fn run_std(s: &Scenario, proto: Protocol, iterations: usize) -> Result<Report, String> {
    let seq = s.prepare(proto)?;
    let oracle = Linearizer::new(&seq, &s.threads);
    let journal = Journal::default();
    let mut report = Report::default();
    let t0 = std::time::Instant::now();
    for _ in 0..iterations {
        let e = execute(&seq.seq.k, &seq.seq.order, &s.threads, &journal);
        report.executions += 1;
        if let Some(d) = e.deadlock {
            report.deadlocks += 1;
            report
                .deadlock_example
                .get_or_insert(format!("{d}\n{}", journal.render()));
            continue;
        }
        report.verdicts.insert(verify(&oracle, &e, &journal));
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

    /// Runs every interleaving (within `preemptions`) and verifies each execution; panics with
    /// the failing interleaving on the first execution that does not verify.
    pub fn explore(s: &Scenario, proto: Protocol, preemptions: usize) -> Result<Report, String> {
        let seq = s.prepare(proto)?;
        let oracle = std::sync::Arc::new(Linearizer::new(&seq, &s.threads));
        let start = std::sync::Arc::new((seq.seq.k.clone(), seq.seq.order.clone()));
        let threads = s.threads.clone();
        let journal = Journal::default();
        let verdicts = std::sync::Arc::new(std::sync::Mutex::new(BTreeSet::new()));
        let executions = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let t0 = std::time::Instant::now();
        {
            let (verdicts, executions, journal) =
                (verdicts.clone(), executions.clone(), journal.clone());
            builder(preemptions).check(move || {
                let e = execute(&start.0, &start.1, &threads, &journal);
                let v = verify(&oracle, &e, &journal);
                executions.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                verdicts.lock().unwrap().insert(v);
            });
        }
        let verdicts = std::mem::take(&mut *verdicts.lock().unwrap());
        Ok(Report {
            executions: executions.load(std::sync::atomic::Ordering::Relaxed),
            verdicts,
            elapsed: t0.elapsed(),
            ..Report::default()
        })
    }

    /// Runs the scenario under loom expecting loom to report a deadlock. Returns loom's message
    /// and the interleaving (the journal of the deadlocked execution), or an error when loom
    /// explored every interleaving without a deadlock.
    ///
    /// loom reports a deadlock by panicking out of the model. The driver shares its state through
    /// `std::sync::Arc` (not loom's, whose destructor needs a running loom thread), so nothing
    /// panics again while the panic unwinds and it can be caught here.
    pub fn expect_deadlock(
        s: &Scenario,
        proto: Protocol,
        preemptions: usize,
    ) -> Result<(String, String), String> {
        let seq = s.prepare(proto)?;
        let oracle = Linearizer::new(&seq, &s.threads);
        let start = std::sync::Arc::new((seq.seq.k.clone(), seq.seq.order.clone(), oracle));
        let threads = s.threads.clone();
        let journal = Journal::default();
        let j = journal.clone();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            builder(preemptions).check(move || {
                let (k, order, oracle) = &*start;
                // The executions before the deadlock must verify like any other.
                let e = execute(k, order, &threads, &j);
                verify(oracle, &e, &j);
            })
        }));
        match r {
            Ok(()) => Err("loom explored every interleaving and found no deadlock".into()),
            Err(p) => {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "<non-string panic>".into());
                Ok((msg, journal.render()))
            }
        }
    }
}
